//! Support shared by the integration test binaries (`mod common;` in each).
//!
//! ClickHouse: one real local server per test binary (per process under nextest), started lazily
//! by the first test that asks, and a fresh database per test:
//!
//! ```ignore
//! let (ch, db) = common::fresh_database("apply").await;
//! let client = ch.client().with_database(&db);
//! ch.query(&format!("CREATE TABLE `{db}`.t (x UInt8) ENGINE = MergeTree ORDER BY x")).await?;
//! ```
//!
//! The server outlives every `#[tokio::test]` runtime (it is a std child process), is sent
//! SIGTERM when the test process exits, and stops by itself if the process dies anyway (the
//! launcher watches `--parent-pid`). Data lives in `target/test-ch/<binary>-<pid>`; directories
//! of dead test processes are removed on the next start.

pub(crate) mod cli;
pub(crate) mod pull;
pub(crate) mod truth;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use local_clickhouse::{LocalClickHouse, LocalClickHouseOptions};

static SHARED: tokio::sync::OnceCell<LocalClickHouse> = tokio::sync::OnceCell::const_new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// `target/test-ch` of this checkout (or `$CARGO_TARGET_DIR/test-ch`).
pub(crate) fn test_ch_root() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("test-ch")
}

/// A fresh, unused data directory for a server of this test process.
pub(crate) fn test_data_dir(tag: &str) -> PathBuf {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "test".to_string());
    let n = NEXT_DB.fetch_add(1, Ordering::Relaxed);
    test_ch_root().join(format!("{binary}-{tag}{n}-{}", std::process::id()))
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: kill(pid, 0) only checks that the process exists; it touches no memory.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

/// Removes data directories left by test processes that are gone (name ends in `-<pid>`) and
/// whose server is gone too (`.server/server.pid`).
fn remove_stale_dirs(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(owner) = name.rsplit('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        let server = std::fs::read_to_string(entry.path().join(".server/server.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok());
        if !pid_alive(owner) && !server.is_some_and(pid_alive) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

extern "C" fn stop_shared_at_exit() {
    if let Some(server) = SHARED.get() {
        server.request_stop();
    }
}

/// The shared server of this test process (started on first use). Panics with the reason (e.g.
/// "run scripts/setup_clickhouse.sh") when it cannot start: tests never skip silently.
pub(crate) async fn clickhouse() -> &'static LocalClickHouse {
    SHARED
        .get_or_init(|| async {
            remove_stale_dirs(&test_ch_root());
            let opts = LocalClickHouseOptions::new(test_data_dir("shared"));
            let server = match LocalClickHouse::start(opts).await {
                Ok(s) => s,
                Err(e) => panic!("cannot start the test ClickHouse: {e}"),
            };
            // SAFETY: registers a plain `extern "C" fn` with libc's atexit; it runs once at exit.
            unsafe { libc::atexit(stop_shared_at_exit) };
            server
        })
        .await
}

/// The shared server and a new, empty Atomic database named `<prefix>_<pid>_<n>`.
pub(crate) async fn fresh_database(prefix: &str) -> (&'static LocalClickHouse, String) {
    let ch = clickhouse().await;
    (ch, fresh_database_on(ch, prefix).await)
}

/// A new, empty Atomic database `<prefix>_<pid>_<n>` on `ch`.
pub(crate) async fn fresh_database_on(ch: &LocalClickHouse, prefix: &str) -> String {
    let clean: String = prefix
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let n = NEXT_DB.fetch_add(1, Ordering::Relaxed);
    let db = format!("t_{clean}_{}_{n}", std::process::id());
    if let Err(e) = ch.query(&format!("CREATE DATABASE `{db}`")).await {
        panic!("CREATE DATABASE {db} failed: {e}");
    }
    db
}

/// A catalog field whose API name is its code.
pub(crate) fn field(code: &str, bitrix_type: &str, multiple: bool) -> b24ch::catalog::Field {
    field_as(code, code, bitrix_type, multiple)
}

/// A catalog field read under another API name (crm.item's camelCase).
pub(crate) fn field_as(
    code: &str,
    api: &str,
    bitrix_type: &str,
    multiple: bool,
) -> b24ch::catalog::Field {
    b24ch::catalog::Field {
        code: code.into(),
        api_name: api.into(),
        bitrix_type: bitrix_type.into(),
        multiple,
        required: false,
        user_field: code.starts_with("UF_"),
        label: code.into(),
        options: Vec::new(),
    }
}

/// The shared Bitrix24 fixtures (real responses from the docs and public captures).
pub(crate) const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bitrix24");
