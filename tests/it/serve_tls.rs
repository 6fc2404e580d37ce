//! `serve` over HTTPS, end to end: a CA made here, a local ClickHouse that trusts it
//! (`openSSL.client.caConfig`, nothing else), refreshable views pulling every entity over
//! https and equal to the portal; a certificate from another CA, for another name or an
//! expired one fails the refresh with a clear exception and lands no row; certificates rotate while serving; plain
//! HTTP on a network address is refused; `b24ch check` reports dates and name coverage.
use crate::common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use b24ch::commands::demo_tls::{DemoCa, Issued, write_private};
use b24ch::commands::serve;
use b24ch::config::{TlsFiles, from_toml_str};
use b24ch::encode::Format;
use b24ch::portal;
use b24ch::serve::tls::Reload;
use bitrix24_emulator::PortalConfig;
use common::pull::{Pull, sizes, wait_until};
use common::truth;
use local_clickhouse::{LocalClickHouse, LocalClickHouseOptions};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Map, json};

const ONLY_DEALS: &str = "enabled = false\n[entities.crm_deal]\nenabled = true\n";
const DAY: Duration = Duration::from_secs(86_400);

/// The CA the test ClickHouse trusts, and where its files live.
struct Pki {
    ca: DemoCa,
    dir: PathBuf,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = common::test_data_dir("pki");
        std::fs::create_dir_all(&dir).unwrap();
        let ca = DemoCa::new("b24ch test CA").unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        Pki { ca, dir }
    })
}

static CH: tokio::sync::OnceCell<LocalClickHouse> = tokio::sync::OnceCell::const_new();

extern "C" fn stop_ch_at_exit() {
    if let Some(ch) = CH.get() {
        ch.request_stop();
    }
}

/// A local ClickHouse of this test process whose outgoing HTTPS trusts only [`pki`]'s CA.
async fn clickhouse() -> &'static LocalClickHouse {
    CH.get_or_init(|| async {
        let opts = LocalClickHouseOptions {
            client_ca: Some(pki().dir.join("ca.pem")),
            ..LocalClickHouseOptions::new(common::test_data_dir("tls"))
        };
        let ch = match LocalClickHouse::start(opts).await {
            Ok(ch) => ch,
            Err(e) => panic!("cannot start the test ClickHouse: {e}"),
        };
        // SAFETY: registers a plain `extern "C" fn` with libc's atexit; it runs once at exit.
        unsafe { libc::atexit(stop_ch_at_exit) };
        ch
    })
    .await
}

/// A certificate for serve on 127.0.0.1 valid from `from` to `until` (relative to now).
fn issue(ca: &DemoCa, names: &[&str], from: i32, until: i32) -> Issued {
    let at = |days: i32| {
        let d = DAY * days.unsigned_abs();
        if days < 0 {
            SystemTime::now() - d
        } else {
            SystemTime::now() + d
        }
    };
    ca.issue(names, at(from), at(until)).unwrap()
}

/// Writes (or replaces, each file by an atomic rename as renewal tools do) serve's files.
fn install(dir: &Path, issued: &Issued) -> TlsFiles {
    std::fs::create_dir_all(dir).unwrap();
    let files = TlsFiles {
        cert: dir.join("serve.pem"),
        key: dir.join("serve.key"),
    };
    let tmp = dir.join(".new");
    std::fs::write(&tmp, &issued.cert_pem).unwrap();
    std::fs::rename(&tmp, &files.cert).unwrap();
    write_private(&tmp, issued.key_pem.as_bytes()).unwrap();
    std::fs::rename(&tmp, &files.key).unwrap();
    files
}

fn der(issued: &Issued) -> Vec<u8> {
    CertificateDer::from_pem_slice(issued.cert_pem.as_bytes())
        .unwrap()
        .to_vec()
}

/// The end-entity certificate serve presents to a client trusting `ca_pem` (TLS `version`).
async fn presented(
    addr: SocketAddr,
    ca_pem: &str,
    version: &'static rustls::SupportedProtocolVersion,
) -> Result<Vec<u8>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(
        rustls::crypto::aws_lc_rs::default_provider().into(),
    )
    .with_protocol_versions(&[version])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let certs = tls
        .get_ref()
        .1
        .peer_certificates()
        .ok_or("no certificate")?;
    Ok(certs[0].to_vec())
}

async fn wait_presented(p: &Pull, expected: &[u8]) {
    let addr = p.serve().addr;
    let ca = pki().ca.pem();
    wait_until(
        "serve to present the new certificate",
        Duration::from_secs(60),
        || async {
            presented(addr, ca, &rustls::version::TLS13)
                .await
                .as_deref()
                == Ok(expected)
        },
    )
    .await;
}

fn portal(deals: u64) -> PortalConfig {
    PortalConfig {
        sizes: sizes(deals),
        time_scale: 200.0,
        ..PortalConfig::default()
    }
}

async fn deal_rows(p: &Pull) -> String {
    p.q(&format!("SELECT count() FROM `{}`.crm_deal", p.db))
        .await
}

/// Refreshes until a refresh succeeds (a retry of an earlier failure may be pending).
async fn refresh_ok(p: &Pull, view: &str) {
    let mut last = String::new();
    for _ in 0..5 {
        match p.refresh(view).await {
            Ok(()) => return,
            Err(e) => last = e,
        }
    }
    panic!("{view} keeps failing: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entity_pulled_over_https_equals_the_portal() {
    let ch = clickhouse().await;
    let pki = pki();
    let cert = issue(&pki.ca, &["127.0.0.1", "localhost"], -1, 30);
    let files = install(&pki.dir.join("eq"), &cert);
    let deals = 3000;
    let p = Pull::start_on(
        ch,
        Some(&files),
        "tls_eq",
        portal(deals),
        Format::Parquet,
        "",
    )
    .await;
    let url = p.serve().url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    // The generated SQL differs only by the scheme of the URL the views pull from.
    p.autopilot().await;
    let endpoint = b24ch::clickhouse::apply::endpoint(&p.config);
    assert_eq!(endpoint.public_url, url);
    let target = b24ch::clickhouse::apply::target(&p.config);
    let plan = b24ch::clickhouse::apply::plans(&p.config, &p.catalog(), Format::Parquet)
        .into_iter()
        .find(|plan| plan.entity == "crm_deal")
        .unwrap();
    let ddl: Vec<String> = b24ch::clickhouse::ddl::endpoints(&target, &endpoint, &plan)
        .into_iter()
        .map(|s| s.display)
        .collect();
    assert!(
        ddl.iter()
            .all(|s| s.contains(&format!("url = '{url}/v1/entities/crm_deal/"))),
        "{ddl:?}"
    );
    // TLS 1.2 and 1.3 both work; plain HTTP to the TLS port gets no answer.
    for v in [&rustls::version::TLS12, &rustls::version::TLS13] {
        assert_eq!(
            presented(p.serve().addr, pki.ca.pem(), v).await,
            Ok(der(&cert))
        );
    }
    let plain = reqwest::get(format!("http://{}/healthz", p.serve().addr)).await;
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");

    p.wait_all().await;
    truth::assert_equal(&p.mismatches().await);
    assert_eq!(
        p.q(&format!("SELECT count() FROM `{}`.crm_deal_current", p.db))
            .await,
        deals.to_string()
    );
    // An incremental cycle over https after the portal changed.
    let mut set = Map::new();
    set.insert("TITLE".into(), json!("по https"));
    assert_eq!(
        p.control()
            .modify_rows("deal", &[5, 50, 500], &set, None)
            .unwrap(),
        3
    );
    assert_eq!(p.control().delete_rows("deal", &[7]).unwrap(), 1);
    p.cycle().await;
    truth::assert_equal(&p.mismatches().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_fails_the_refresh_with_no_rows_until_replaced() {
    let ch = clickhouse().await;
    let pki = pki();
    let other_ca = DemoCa::new("some other CA").unwrap();
    let dir = pki.dir.join("wrong-ca");
    let files = install(&dir, &issue(&other_ca, &["127.0.0.1"], -1, 30));
    let p = Pull::start_on(
        ch,
        Some(&files),
        "tls_ca",
        portal(500),
        Format::Parquet,
        ONLY_DEALS,
    )
    .await;
    p.autopilot().await;
    let exception = p.wait_failed("crm_deal_load").await;
    assert!(
        exception.contains("certificate verify failed"),
        "unclear exception: {exception}"
    );
    assert_eq!(deal_rows(&p).await, "0", "no row from an untrusted server");

    // The certificate is replaced by one from the trusted CA, while serving.
    let good = issue(&pki.ca, &["127.0.0.1"], -1, 30);
    install(&dir, &good);
    wait_presented(&p, &der(&good)).await;
    refresh_ok(&p, "crm_deal_load").await;
    truth::assert_equal(&p.mismatches().await);
    assert_eq!(
        p.q(&format!("SELECT count() FROM `{}`.crm_deal_current", p.db))
            .await,
        "500"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_fails_the_refresh_with_no_rows() {
    let ch = clickhouse().await;
    let pki = pki();
    let files = install(
        &pki.dir.join("expired"),
        &issue(&pki.ca, &["127.0.0.1"], -30, -1),
    );
    let p = Pull::start_on(
        ch,
        Some(&files),
        "tls_exp",
        portal(300),
        Format::Parquet,
        ONLY_DEALS,
    )
    .await;
    p.autopilot().await;
    let exception = p.wait_failed("crm_deal_load").await;
    assert!(
        exception.contains("certificate verify failed") || exception.contains("expired"),
        "unclear exception: {exception}"
    );
    eprintln!("ClickHouse on an expired certificate: {exception}");
    assert_eq!(
        deal_rows(&p).await,
        "0",
        "no row over an expired certificate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_name_fails_the_refresh_with_no_rows() {
    let ch = clickhouse().await;
    let pki = pki();
    let files = install(
        &pki.dir.join("other-name"),
        &issue(&pki.ca, &["b24ch.example.com"], -1, 30),
    );
    let p = Pull::start_on(
        ch,
        Some(&files),
        "tls_name",
        portal(300),
        Format::Parquet,
        ONLY_DEALS,
    )
    .await;
    p.autopilot().await;
    let exception = p.wait_failed("crm_deal_load").await;
    assert!(
        exception.contains("Unacceptable certificate from 127.0.0.1"),
        "unclear exception: {exception}"
    );
    assert_eq!(
        deal_rows(&p).await,
        "0",
        "no row from a server of another name"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotate_while_serving() {
    let ch = clickhouse().await;
    let pki = pki();
    let dir = pki.dir.join("rotate");
    let first = issue(&pki.ca, &["127.0.0.1"], -1, 30);
    let files = install(&dir, &first);
    let p = Pull::start_on(
        ch,
        Some(&files),
        "tls_rot",
        portal(500),
        Format::Parquet,
        ONLY_DEALS,
    )
    .await;
    p.autopilot().await;
    p.wait_all().await;
    truth::assert_equal(&p.mismatches().await);

    // Renewal: a new key and certificate in the same files, no restart.
    let second = issue(&pki.ca, &["127.0.0.1", "localhost"], -1, 60);
    install(&dir, &second);
    wait_presented(&p, &der(&second)).await;
    let mut set = Map::new();
    set.insert("TITLE".into(), json!("after rotation"));
    p.control()
        .modify_rows("deal", &[1, 2, 3], &set, None)
        .unwrap();
    p.control().delete_rows("deal", &[4]).unwrap();
    p.cycle().await;
    truth::assert_equal(&p.mismatches().await);

    // A renewal caught half written (garbage, or the old key) is not served: the current
    // certificate stays and ClickHouse keeps pulling.
    let cert = p.serve().tls.clone().expect("serve runs with TLS");
    std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\ngarbage").unwrap();
    assert!(matches!(
        cert.reload_if_changed().await,
        Reload::Rejected(_)
    ));
    let third = issue(&pki.ca, &["127.0.0.1"], -1, 90);
    std::fs::write(&files.cert, &third.cert_pem).unwrap();
    assert!(matches!(
        cert.reload_if_changed().await,
        Reload::Rejected(_)
    ));
    assert_eq!(
        presented(p.serve().addr, pki.ca.pem(), &rustls::version::TLS13).await,
        Ok(der(&second))
    );
    refresh_ok(&p, "crm_deal_load").await;
    install(&dir, &third);
    // The background reload may have been first.
    assert!(matches!(
        cert.reload_if_changed().await,
        Reload::Reloaded(_) | Reload::Unchanged
    ));
    assert_eq!(
        presented(p.serve().addr, pki.ca.pem(), &rustls::version::TLS13).await,
        Ok(der(&third))
    );
    refresh_ok(&p, "crm_deal_load").await;
    truth::assert_equal(&p.mismatches().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_on_a_network_address_is_refused_unless_allowed() {
    let port = common::pull::free_port();
    let token = common::pull::TOKEN;
    let text = format!("[proxy]\nlisten = \"0.0.0.0:{port}\"\ntoken = \"{token}\"\n");
    let mut config = from_toml_str(&text).unwrap();
    let conn = portal::connect(&mut config, portal(10)).await.unwrap();
    let webhook = conn.demo.as_ref().unwrap().webhook_url();
    let err = match serve::start(Arc::new(config), &conn).await {
        Ok(_) => panic!("serve started with plain HTTP on 0.0.0.0"),
        Err(e) => e,
    };
    assert_eq!(b24ch::commands::exit_code(&err), 2, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("proxy.tls_cert") && msg.contains("allow_plain_http"),
        "{msg}"
    );

    // Accepted explicitly: serve starts, and says what it risks (at every start).
    let dir = common::test_data_dir("plain");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("b24ch.toml");
    std::fs::write(
        &path,
        format!("{text}allow_plain_http = true\n[portal]\nwebhook_url = \"{webhook}\"\n"),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_b24ch"))
        .args([
            "--config",
            path.to_str().unwrap(),
            "serve",
            "--no-autopilot",
        ])
        .env_remove("B24CH_CONFIG")
        .env("RUST_LOG", "warn,b24ch::commands::serve=info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
        let line = line.unwrap();
        let serving = line.contains("serving");
        seen.push(line);
        if serving {
            break;
        }
    }
    let health = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let log = seen.join("\n");
    assert!(log.contains("serving"), "serve did not start:\n{log}");
    assert!(
        log.contains("WARN") && log.contains("clear text"),
        "no warning about plain HTTP:\n{log}"
    );
    assert!(health.unwrap().status().is_success());
}

/// `b24ch check` with the given serve certificate; returns its `serve` line.
fn check_line(dir: &Path, issued: &Issued) -> String {
    let files = install(dir, issued);
    let config = dir.join("b24ch.toml");
    std::fs::write(
        &config,
        format!(
            "[portal]\nwebhook_url = \"http://127.0.0.1:9/rest/1/unreachable0000000/\"\n[proxy]\nlisten = \"127.0.0.1:8443\"\ntls_cert = {:?}\ntls_key = {:?}\n",
            files.cert.display().to_string(),
            files.key.display().to_string()
        ),
    )
    .unwrap();
    // The webhook URL holds a secret: the config must be private to its owner.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_b24ch"))
        .args(["--config", config.to_str().unwrap(), "check"])
        .env_remove("B24CH_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find(|l| l.contains(" serve https://127.0.0.1:8443: "))
        .unwrap_or_else(|| panic!("no serve line in:\n{stdout}"))
        .to_string()
}

#[test]
fn check_reports_expiry_and_whether_the_names_cover_public_url() {
    let pki = pki();
    let cases = [
        (
            "check-good",
            issue(&pki.ca, &["127.0.0.1", "localhost"], -1, 30),
        ),
        ("check-name", issue(&pki.ca, &["b24ch.example.com"], -1, 30)),
        ("check-expired", issue(&pki.ca, &["127.0.0.1"], -30, -1)),
        ("check-soon", issue(&pki.ca, &["127.0.0.1"], -30, 3)),
    ];
    // Each `check` also retries its unreachable portal for a while: the four run at once.
    let lines: Vec<String> = std::thread::scope(|s| {
        let runs: Vec<_> = cases
            .iter()
            .map(|(dir, issued)| {
                let dir = pki.dir.join(dir);
                s.spawn(move || check_line(&dir, issued))
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let [good, other_name, expired, soon] = &lines[..] else {
        panic!("four check lines expected: {lines:?}");
    };
    assert!(good.starts_with("ok "), "{good}");
    assert!(good.contains("127.0.0.1, localhost"), "{good}");
    assert!(
        good.contains("covers public_url's host 127.0.0.1"),
        "{good}"
    );
    assert!(good.contains("until 20"), "{good}");

    assert!(other_name.starts_with("FAIL"), "{other_name}");
    assert!(other_name.contains("does NOT cover"), "{other_name}");

    assert!(expired.starts_with("FAIL"), "{expired}");
    assert!(expired.contains("expired on"), "{expired}");

    assert!(soon.starts_with("ok "), "{soon}");
    assert!(soon.contains("renew"), "{soon}");
}

#[test]
fn demo_tls_runs_the_whole_pipeline_over_https() {
    let dir = common::test_data_dir("demo");
    let tls_dir = dir.join("tls");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_b24ch"))
        .args([
            "demo",
            "--tls",
            "--deals",
            "200",
            "--time-scale",
            "200",
            "--exit-after-load",
            "--timeout-secs",
            "300",
        ])
        .arg("--data-dir")
        .arg(dir.join("ch"))
        .arg("--tls-dir")
        .arg(&tls_dir)
        .env_remove("B24CH_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("b24ch serve: https://127.0.0.1:"),
        "{stdout}"
    );
    assert!(stdout.contains("Every table is loaded"), "{stdout}");
    assert!(stdout.contains("crm_deal=200 "), "{stdout}");
    let ca = std::fs::read_to_string(tls_dir.join("ca.pem")).unwrap();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(tls_dir.join("serve.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the private key is readable by others");
    }
}
