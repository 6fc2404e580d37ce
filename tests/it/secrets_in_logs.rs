//! Everything a b24ch process writes (logs at debug level, JSON logs, errors, `check`
//! output) is searched for the webhook code, the proxy token and the ClickHouse password.
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CODE: &str = "whk9secret9code9x";
const TOKEN: &str = "proxy-token-secret-0123456789";
const PASSWORD: &str = "ch-pass-secret-987";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(args: &[&str], envs: &[(&str, &str)]) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_b24ch"));
    c.args(args)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        c.env(k, v);
    }
    c.spawn().unwrap()
}

fn wait_http(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if reqwest::blocking::get(url).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{url} did not come up");
}

fn output(mut child: Child) -> String {
    let _ = child.kill();
    let _ = child.wait();
    let mut text = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut text);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut text);
    }
    text
}

#[test]
fn no_secret_in_logs_errors_or_output() {
    let portal_port = free_port();
    let portal = spawn(
        &[
            "demo-portal",
            "--listen",
            &format!("127.0.0.1:{portal_port}"),
            "--deals",
            "200",
            "--webhook-code",
            CODE,
            "--time-scale",
            "100",
        ],
        &[],
    );
    let base = format!("http://127.0.0.1:{portal_port}");
    wait_http(&format!("{base}/_control/counters"));

    let serve_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("b24ch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[portal]\nwebhook_url = \"env:B24CH_TEST_WEBHOOK\"\n[clickhouse]\nurl = \"http://127.0.0.1:9\"\npassword = \"env:B24CH_TEST_CH_PW\"\n[proxy]\nlisten = \"127.0.0.1:{serve_port}\"\ntoken = \"env:B24CH_TEST_TOKEN\"\nautopilot_interval = \"1 SECOND\"\n"
        ),
    )
    .unwrap();
    let webhook = format!("{base}/rest/1/{CODE}/");
    let envs = [
        ("B24CH_TEST_WEBHOOK", webhook.as_str()),
        ("B24CH_TEST_CH_PW", PASSWORD),
        ("B24CH_TEST_TOKEN", TOKEN),
    ];
    let cfg_s = cfg.to_str().unwrap();
    let serve_proc = spawn(&["--config", cfg_s, "--log-json", "serve"], &envs);
    let url = format!("http://127.0.0.1:{serve_port}");
    wait_http(&format!("{url}/healthz"));
    let client = reqwest::blocking::Client::new();
    let get = |path: &str, token: &str| {
        client
            .get(format!("{url}{path}"))
            .bearer_auth(token)
            .send()
            .map(|r| r.text().unwrap_or_default())
            .unwrap_or_default()
    };
    get("/v1/entities/crm_deal/rows?format=JSONEachRow", TOKEN);
    get("/v1/entities/crm_deal/ids", TOKEN);
    get("/v1/entities/crm_deal/rows", "wrong-token");
    get("/v1/entities/nope/rows", TOKEN);
    // Upstream failures get logged: make the portal fail every call for a while.
    client
        .post(format!("{base}/_control/faults"))
        .json(&serde_json::json!({"type": "internal_error", "probability": 1.0, "remaining": 3}))
        .send()
        .unwrap();
    get("/v1/entities/crm_lead/rows", TOKEN);
    // The autopilot (every second) fails against the unreachable ClickHouse and logs it.
    std::thread::sleep(Duration::from_millis(2500));
    let serve_log = output(serve_proc);

    let check = Command::new(env!("CARGO_BIN_EXE_b24ch"))
        .args(["--config", cfg_s, "check"])
        .envs(envs)
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    let check_log = String::from_utf8_lossy(&check.stdout).to_string()
        + &String::from_utf8_lossy(&check.stderr);
    // A wrong webhook code: the portal check fails with the Bitrix24 code, not the secret.
    let wrong = format!("{base}/rest/1/wrong{CODE}/");
    let bad_check = Command::new(env!("CARGO_BIN_EXE_b24ch"))
        .args(["--config", cfg_s, "check"])
        .envs(envs)
        .env("B24CH_TEST_WEBHOOK", &wrong)
        .output()
        .unwrap();
    let bad_log = String::from_utf8_lossy(&bad_check.stdout).to_string()
        + &String::from_utf8_lossy(&bad_check.stderr);
    let _ = output(portal);
    assert!(check_log.contains("ok   portal: reachable"), "{check_log}");
    assert!(check_log.contains("FAIL clickhouse"), "{check_log}");
    assert_eq!(check.status.code(), Some(1), "{check_log}");
    assert!(
        bad_log.contains("FAIL portal") && bad_log.contains("INVALID_CREDENTIALS"),
        "{bad_log}"
    );
    assert!(!bad_log.contains(&format!("wrong{CODE}")), "{bad_log}");

    assert!(
        serve_log.contains("load served") || serve_log.contains("ID list served"),
        "the log was captured: {}",
        &serve_log[..serve_log.len().min(2000)]
    );
    assert!(
        serve_log.contains("autopilot"),
        "autopilot failures are logged: {}",
        &serve_log[serve_log.len().saturating_sub(3000)..]
    );
    for (name, text) in [("serve", &serve_log), ("check", &check_log)] {
        for secret in [CODE, TOKEN, PASSWORD] {
            assert!(!text.contains(secret), "{name} output leaks {secret}");
        }
    }
}
