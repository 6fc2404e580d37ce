//! `b24ch import-config` on the original connector's example config.cfg
//! (`../shared/fixtures/original-connector/`, copied to tests/fixtures/original-connector):
//! the written b24ch.toml passes `b24ch check` against a demo portal and a real ClickHouse,
//! in both secret modes, every file is mode 0600, and the secrets stay out of the TOML in
//! env mode.
use crate::common;

use std::path::Path;
use std::process::Command;

use bitrix24_emulator::{self, PortalConfig};

const EXAMPLE: &str = include_str!("../fixtures/original-connector/config.cfg");

fn b24ch(args: &[&str], envs: &[(String, String)]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_b24ch"))
        .args(args)
        .env_remove("B24CH_CONFIG")
        .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// `KEY='value'` lines of the env file.
fn env_file(p: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').replace(r"'\''", "'")))
        .collect()
}

/// The example with its portal and ClickHouse replaced by a demo portal and the local
/// ClickHouse (which has no TLS, no CA and a `default` user without password).
fn example_pointing_at(webhook: &str, ch_url: &str) -> String {
    EXAMPLE
        .lines()
        .filter(|l| !l.starts_with("verify_path") && !l.starts_with("clickhouse_password"))
        .map(|l| {
            if l.starts_with("BitrixURL=https://example-portal.bitrix24.ru/rest/") {
                format!("BitrixURL={webhook}")
            } else if l.starts_with("url=") {
                format!("url={ch_url}")
            } else if l.starts_with("clickhouse_user=") {
                "clickhouse_user=default".into()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_example_converts_and_passes_check() {
    let portal = bitrix24_emulator::start(PortalConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (ch, _db) = common::fresh_database("import_cfg").await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.cfg");
    std::fs::write(
        &cfg,
        example_pointing_at(&portal.webhook_url(), &ch.http_url()),
    )
    .unwrap();

    // Secrets as env: references plus an env file.
    let toml = dir.path().join("b24ch.toml");
    let env = dir.path().join("b24ch.env");
    let (code, out) = b24ch(
        &[
            "import-config",
            cfg.to_str().unwrap(),
            "--out",
            toml.to_str().unwrap(),
            "--env-file",
            env.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    for gone in [
        "clickhouse_host",
        "clickhouse_port",
        "batch_size",
        "[BitrixApp]",
    ] {
        assert!(out.contains(gone), "{gone} not reported:\n{out}");
    }
    #[cfg(unix)]
    assert_eq!((mode(&toml), mode(&env)), (0o600, 0o600));
    let text = std::fs::read_to_string(&toml).unwrap();
    assert!(!text.contains("demo0webhook0code"), "{text}");
    assert!(text.contains("env:B24CH_WEBHOOK_URL"), "{text}");
    assert!(
        text.contains("operating_seconds_per_10min = 400.0"),
        "{text}"
    );
    assert!(text.contains("database = \"b24_data\""), "{text}");
    let vars = env_file(&env);
    let (code, out) = b24ch(&["--config", toml.to_str().unwrap(), "check"], &vars);
    assert_eq!(code, 0, "check failed:\n{out}\n{text}");
    assert!(out.contains("portal via inbound webhook"), "{out}");
    // Without the env file the config names the missing variable (exit 2).
    let (code, out) = b24ch(&["--config", toml.to_str().unwrap(), "check"], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("B24CH_WEBHOOK_URL"), "{out}");

    // An existing file is never overwritten.
    let (code, out) = b24ch(
        &[
            "import-config",
            cfg.to_str().unwrap(),
            "--out",
            toml.to_str().unwrap(),
            "--env-file",
            env.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("exists"), "{out}");

    // Secrets inline, in a 0600 file that check accepts as it is.
    let inline = dir.path().join("inline.toml");
    let (code, out) = b24ch(
        &[
            "import-config",
            cfg.to_str().unwrap(),
            "--out",
            inline.to_str().unwrap(),
            "--secrets",
            "inline",
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    #[cfg(unix)]
    assert_eq!(mode(&inline), 0o600);
    let (code, out) = b24ch(&["--config", inline.to_str().unwrap(), "check"], &[]);
    assert_eq!(code, 0, "check failed:\n{out}");
}

#[test]
fn the_untouched_example_keeps_every_setting() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.cfg");
    std::fs::write(&cfg, EXAMPLE).unwrap();
    let toml = dir.path().join("b24ch.toml");
    let env = dir.path().join("b24ch.env");
    let (code, out) = b24ch(
        &[
            "import-config",
            cfg.to_str().unwrap(),
            "--out",
            toml.to_str().unwrap(),
            "--env-file",
            env.to_str().unwrap(),
            "--portal",
            "app",
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    let text = std::fs::read_to_string(&toml).unwrap();
    for want in [
        "url = \"https://rc1a-example.mdb.yandexcloud.net:8443\"",
        "ca_cert = \"/home/analyst/connector_B24_2_clickhouse/YandexInternalRootCA.crt\"",
        "user = \"loader\"",
        "password = \"env:B24CH_CLICKHOUSE_PASSWORD\"",
        "portal_url = \"https://example-portal.bitrix24.ru\"",
        "client_id = \"local.0000000000000000.00000000\"",
        "refresh_token = \"env:B24CH_OAUTH_REFRESH_TOKEN\"",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    for secret in [
        "fake-password-123",
        "fakeclientsecret",
        "fakeaccesstoken",
        "fakerefreshtoken",
    ] {
        assert!(!text.contains(secret), "{secret} in the TOML");
    }
    let vars = env_file(&env);
    assert!(
        vars.contains(&(
            "B24CH_CLICKHOUSE_PASSWORD".into(),
            "fake-password-123".into()
        )),
        "{vars:?}"
    );
    // Bad input: a line that is no key=value, named by number, exit 2.
    let bad = dir.path().join("bad.cfg");
    std::fs::write(&bad, "[Bitrix]\nBitrixURL\n").unwrap();
    let (code, out) = b24ch(
        &[
            "import-config",
            bad.to_str().unwrap(),
            "--out",
            dir.path().join("x.toml").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("line 2"), "{out}");
}
