//! The CLI on bad configs: one clear message naming the key, exit code 2, no secret echoed.
use std::process::Command;

fn run_check(config_text: &str, mode: u32) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b24ch.toml");
    std::fs::write(&path, config_text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_b24ch"))
        .args(["--config", path.to_str().unwrap(), "check"])
        .env_remove("B24CH_CONFIG")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn bad_configs_exit_2_and_name_the_key() {
    let cases = [
        ("[clickhouse]\nurl = \"tcp://h:9000\"\n", "clickhouse.url"),
        ("[limits]\nplan = \"gold\"\n", "limits.plan"),
        (
            "[entities.crm_deal]\nschedule = \"soon\"\n",
            "entities.crm_deal.schedule",
        ),
        (
            "[portal]\nwebhook_url = \"https://x.bitrix24.com/\"\n",
            "portal.webhook_url",
        ),
        (
            "[proxy]\ntoken = \"env:B24CH_SURELY_UNSET_TOKEN_VAR\"\n",
            "B24CH_SURELY_UNSET_TOKEN_VAR",
        ),
        ("[clickhouse]\nuser = \n", "config file"),
        ("[nonsense]\nx = 1\n", "nonsense"),
    ];
    for (text, expected) in cases {
        let (code, out) = run_check(text, 0o600);
        assert_eq!(code, 2, "config {text:?} gave exit {code}: {out}");
        assert!(
            out.contains(expected),
            "config {text:?}: message should name {expected}: {out}"
        );
        assert!(!out.contains("panicked"), "{out}");
    }
}

#[test]
fn world_readable_file_with_a_literal_secret_is_refused_without_echoing_it() {
    let text = "[portal]\nwebhook_url = \"https://x.bitrix24.com/rest/1/verysecretcode42/\"\n";
    let (code, out) = run_check(text, 0o644);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("chmod 600"), "{out}");
    assert!(!out.contains("verysecretcode42"), "secret leaked: {out}");
}

#[test]
fn missing_config_file_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_b24ch"))
        .args(["--config", "/surely/missing/b24ch.toml", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read /surely/missing/b24ch.toml"),
        "{err}"
    );
}
