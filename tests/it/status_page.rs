//! The status page's way in, over HTTP: the login form, the session cookie's flags and reach
//! (the page and its JSON, never the data endpoints), failed logins paused per client address,
//! one-time login links, logout.
use b24ch::commands::serve;
use b24ch::config::from_toml_str;
use b24ch::portal;
use bitrix24_emulator::{DataSizes, PortalConfig};
use reqwest::header::{COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE};
use std::net::IpAddr;
use std::sync::Arc;

const TOKEN: &str = "page-token-0123456789abcdef";

async fn start() -> (serve::RunningServe, portal::PortalConnection) {
    let mut cfg = from_toml_str(&format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n"
    ))
    .unwrap();
    let demo = PortalConfig {
        sizes: DataSizes {
            deals: 50,
            ..DataSizes::default()
        },
        time_scale: 100.0,
        ..PortalConfig::default()
    };
    let p = portal::connect(&mut cfg, demo).await.unwrap();
    let s = serve::start(Arc::new(cfg), &p).await.unwrap();
    (s, p)
}

/// A client that does not follow redirects (to see them) from `from`.
fn client(from: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(IpAddr::from(from))
        .build()
        .unwrap()
}

async fn login(c: &reqwest::Client, s: &serve::RunningServe, token: &str) -> reqwest::Response {
    c.post(format!("{}/status/login", s.url()))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

/// `b24ch_session=…` from a response's `Set-Cookie`.
fn session_cookie(r: &reqwest::Response) -> (String, String) {
    let set = r
        .headers()
        .get(SET_COOKIE)
        .expect("Set-Cookie")
        .to_str()
        .unwrap()
        .to_string();
    let pair = set.split(';').next().unwrap().trim().to_string();
    (pair, set)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_opens_the_page_and_nothing_else() {
    let (s, _p) = start().await;
    let c = client([127, 0, 0, 1]);
    let root = c.get(format!("{}/", s.url())).send().await.unwrap();
    assert_eq!(root.status(), 303);
    assert_eq!(root.headers()[LOCATION], "/status/");

    let form = c.get(format!("{}/status/", s.url())).send().await.unwrap();
    assert_eq!(form.status(), 401);
    let csp = form.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let html = form.text().await.unwrap();
    assert!(
        html.contains("name=\"token\"") && !html.contains("crm_deal"),
        "{html}"
    );

    let r = login(&c, &s, TOKEN).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/status/");
    let (cookie, set) = session_cookie(&r);
    for flag in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/status",
        "Max-Age=43200",
    ] {
        assert!(set.contains(flag), "{flag} in {set}");
    }
    assert!(!set.contains("Secure"), "plain http on loopback: {set}");
    assert!(!set.contains(TOKEN), "the cookie is not the token: {set}");

    let page = c
        .get(format!("{}/status/", s.url()))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("data-entity=\"crm_deal\""),
        "the page: {html}"
    );
    assert!(!html.contains(TOKEN));
    let json = c
        .get(format!("{}/status/json", s.url()))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 200);
    let v: serde_json::Value = json.json().await.unwrap();
    assert!(
        v["entities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["entity"] == "crm_deal")
    );

    // The data endpoints keep the bearer token: the cookie opens none of them.
    for path in [
        "/v1/entities",
        "/v1/entities/crm_deal/rows",
        "/v1/entities/crm_deal/ids",
        "/v1/meta/entities",
        "/metrics",
        "/v1/dictionaries/crm_status",
    ] {
        let r = c
            .get(format!("{}{path}", s.url()))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} with the page's cookie");
    }
    let no_session = c
        .get(format!("{}/status/json", s.url()))
        .header(COOKIE, "b24ch_session=0123456789abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(no_session.status(), 401, "a made-up session");
    s.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_pause_the_address_with_a_clear_message() {
    let (s, _p) = start().await;
    let a = client([127, 0, 0, 1]);
    for left in (0..5).rev() {
        let r = login(&a, &s, "guess-0123456789").await;
        assert_eq!(r.status(), 401);
        assert!(r.headers().get(SET_COOKIE).is_none());
        let html = r.text().await.unwrap();
        assert!(html.contains("Wrong token."), "{html}");
        if left > 0 {
            assert!(html.contains(&format!("{left} more tr")), "{left}: {html}");
        } else {
            assert!(html.contains("now pause for 5 min"), "{html}");
        }
    }
    let paused = login(&a, &s, TOKEN).await;
    assert_eq!(paused.status(), 429, "even the right token waits");
    let wait: u64 = paused.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&wait), "{wait}");
    let html = paused.text().await.unwrap();
    assert!(
        html.contains("Too many wrong tokens from 127.0.0.1") && html.contains("Try again in"),
        "{html}"
    );
    // Another address is not paused.
    let b = client([127, 0, 0, 2]);
    assert_eq!(login(&b, &s, TOKEN).await.status(), 303);
    s.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session_and_clears_the_cookie() {
    let (s, _p) = start().await;
    let c = client([127, 0, 0, 1]);
    let (cookie, _) = session_cookie(&login(&c, &s, TOKEN).await);
    let out = c
        .post(format!("{}/status/logout", s.url()))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    let (cleared, set) = session_cookie(&out);
    assert_eq!(cleared, "b24ch_session=");
    assert!(
        set.contains("Max-Age=0") && set.contains("Path=/status"),
        "{set}"
    );
    assert!(out.text().await.unwrap().contains("You are logged out."));
    let again = c
        .get(format!("{}/status/", s.url()))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        401,
        "the old cookie no longer opens the page"
    );
    s.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_time_link_logs_in_once_and_leaves_the_address_bar() {
    let (s, _p) = start().await;
    let c = client([127, 0, 0, 1]);
    // The link as printed uses proxy.public_url; here the port is the bound one.
    let link = s.one_time_login_url();
    let path = &link[link.find("/status/login?code=").unwrap()..];
    let first = c.get(format!("{}{path}", s.url())).send().await.unwrap();
    assert_eq!(first.status(), 303);
    assert_eq!(
        first.headers()[LOCATION],
        "/status/",
        "the code leaves the URL"
    );
    let (cookie, _) = session_cookie(&first);
    let page = c
        .get(format!("{}/status/", s.url()))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let second = c.get(format!("{}{path}", s.url())).send().await.unwrap();
    assert_eq!(second.status(), 401, "a link works once");
    assert!(
        second
            .text()
            .await
            .unwrap()
            .contains("used already or has expired")
    );
    s.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_token_still_opens_the_page_for_scripts() {
    let (s, _p) = start().await;
    let r = client([127, 0, 0, 1])
        .get(format!("{}/status/json", s.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let wrong = client([127, 0, 0, 1])
        .get(format!("{}/status/json", s.url()))
        .bearer_auth("page-token-0123456789abcdeX")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    s.stop();
}

mod logs {
    //! `b24ch serve` as a service writes its log to a file: plain text (no colour codes off a
    //! terminal), one line per load with what it did and cost; its stdout names the page.
    use std::io::Read;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    const TOKEN: &str = "log-token-0123456789abcdef";

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn spawn(args: &[&str], webhook: &str) -> Child {
        Command::new(env!("CARGO_BIN_EXE_b24ch"))
            .args(args)
            .env("B24CH_LOG_TEST_TOKEN", TOKEN)
            .env("B24CH_LOG_TEST_WEBHOOK", webhook)
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn wait_http(url: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if reqwest::blocking::get(url).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{url} did not come up");
    }

    fn output(mut child: Child) -> (String, String) {
        let _ = child.kill();
        let _ = child.wait();
        let (mut out, mut err) = (String::new(), String::new());
        if let Some(mut o) = child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (out, err)
    }

    #[test]
    fn serve_logs_one_plain_line_per_load_and_prints_the_page() {
        let portal_port = free_port();
        let portal = spawn(
            &[
                "demo-portal",
                "--listen",
                &format!("127.0.0.1:{portal_port}"),
                "--time-scale",
                "100",
            ],
            "",
        );
        let base = format!("http://127.0.0.1:{portal_port}");
        wait_http(&format!("{base}/_control/counters"));
        let config: serde_json::Value = reqwest::blocking::get(format!("{base}/_control/config"))
            .unwrap()
            .json()
            .unwrap();
        let webhook = config["webhook_url"].as_str().unwrap().to_string();
        let serve_port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("b24ch.toml");
        std::fs::write(
            &cfg,
            format!(
                "[portal]\nwebhook_url = \"env:B24CH_LOG_TEST_WEBHOOK\"\n[proxy]\nlisten = \"127.0.0.1:{serve_port}\"\ntoken = \"env:B24CH_LOG_TEST_TOKEN\"\n"
            ),
        )
        .unwrap();
        let serve = spawn(
            &["--config", cfg.to_str().unwrap(), "serve", "--no-autopilot"],
            &webhook,
        );
        let url = format!("http://127.0.0.1:{serve_port}");
        wait_http(&format!("{url}/healthz"));
        let client = reqwest::blocking::Client::new();
        for path in ["rows?format=JSONEachRow", "ids"] {
            let r = client
                .get(format!("{url}/v1/entities/crm_deal/{path}"))
                .bearer_auth(TOKEN)
                .send()
                .unwrap();
            assert_eq!(r.status(), 200);
            r.text().unwrap();
        }
        let (stdout, log) = output(serve);
        let _ = output(portal);

        assert!(
            stdout.contains(&format!(
                "status page: http://127.0.0.1:{serve_port}/status/  (log in with proxy.token from the config)"
            )),
            "{stdout}"
        );
        assert!(
            !stdout.contains("login?code="),
            "no login link into captured output: {stdout}"
        );
        assert!(!log.contains('\x1b'), "colour codes in a log file: {log}");
        assert!(!log.contains(TOKEN) && !stdout.contains(TOKEN));
        let loads: Vec<&str> = log.lines().filter(|l| l.contains("load served")).collect();
        assert_eq!(loads.len(), 2, "one line per load: {log}");
        let rows = loads
            .iter()
            .find(|l| l.contains("kind=rows"))
            .unwrap_or_else(|| panic!("{loads:?}"));
        for field in [
            "entity=crm_deal",
            "rows=240 ",
            "requests=",
            "operating_secs=",
            "duration_ms=",
            "cursor=20",
        ] {
            assert!(rows.contains(field), "{field} in {rows}");
        }
        assert!(
            loads
                .iter()
                .any(|l| l.contains("kind=ids") && l.contains("cursor=-")),
            "{loads:?}"
        );
    }
}
