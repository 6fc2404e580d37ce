//! `b24ch` run as a user runs it, against a portal and ClickHouse a test started.
use std::process::Command;

/// `b24ch` against a portal started here (the CLI as a user runs it).
pub(crate) struct Cli {
    _dir: tempfile::TempDir,
    config: std::path::PathBuf,
    webhook: String,
}

impl Cli {
    pub(crate) fn new(webhook: &str, ch_url: &str, db: &str) -> Cli {
        Cli::with(webhook, ch_url, db, "")
    }

    /// [`Cli::new`] with more config lines after the `[clickhouse]` table.
    pub(crate) fn with(webhook: &str, ch_url: &str, db: &str, extra: &str) -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("b24ch.toml");
        std::fs::write(
            &config,
            format!(
                "state_dir = \"{}\"\n[portal]\nwebhook_url = \"env:B24CH_TEST_WEBHOOK\"\n\
                 [limits]\nplan = \"on-premise\"\n[clickhouse]\nurl = \"{ch_url}\"\ndatabase = \"{db}\"\n{extra}",
                dir.path().join("state").display()
            ),
        )
        .unwrap();
        Cli {
            _dir: dir,
            config,
            webhook: webhook.to_string(),
        }
    }

    /// Exit code and stdout + stderr.
    pub(crate) async fn run(&self, args: &[&str]) -> (i32, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_b24ch"));
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .env("B24CH_TEST_WEBHOOK", &self.webhook)
            .env_remove("B24CH_CONFIG");
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code().unwrap_or(-1), text)
    }
}
