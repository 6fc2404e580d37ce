//! Processes that come and go share one budget: two `b24ch exec udf-call` processes with the
//! same state_dir never exceed the portal's request bucket together (the demo portal counts
//! every 503 QUERY_LIMIT_EXCEEDED); with separate state dirs they do.
use bitrix24_emulator::PortalConfig;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

const CALLS_PER_PROCESS: usize = 30;

fn write_config(path: &Path, state_dir: &Path, webhook: &str) {
    std::fs::write(
        path,
        format!(
            "state_dir = {:?}\n[portal]\nwebhook_url = {webhook:?}\n",
            state_dir.display().to_string()
        ),
    )
    .unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// One udf-call process answering CALLS_PER_PROCESS one-row blocks (one request each).
async fn run_process(config: &Path) -> std::process::Output {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_b24ch"))
        .arg("--config")
        .arg(config)
        .args(["exec", "udf-call"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = String::new();
    for i in 0..CALLS_PER_PROCESS {
        input.push_str(&format!("1\ncrm.deal.get\t{{\"id\":{}}}\n", i + 1));
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        CALLS_PER_PROCESS
    );
    out
}

async fn two_processes(shared: bool) -> (u64, u64) {
    let portal = bitrix24_emulator::start(PortalConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
    let state_a = dir.path().join("state-a");
    let state_b = if shared {
        state_a.clone()
    } else {
        dir.path().join("state-b")
    };
    write_config(&a, &state_a, &portal.webhook_url());
    write_config(&b, &state_b, &portal.webhook_url());
    tokio::join!(run_process(&a), run_process(&b));
    let c = portal.control().counters();
    (
        c.query_limit_exceeded,
        c.per_method.get("crm.deal.get").copied().unwrap_or(0),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_sharing_a_state_dir_stay_under_the_bucket_together() {
    let (rejected, calls) = two_processes(true).await;
    assert_eq!(calls, 2 * CALLS_PER_PROCESS as u64);
    assert_eq!(rejected, 0, "shared governor: no 503 QUERY_LIMIT_EXCEEDED");
}

/// The control case: the same load without a shared state goes over the portal's burst, so
/// the test above would fail if the state were not shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_with_separate_state_dirs_overrun_the_bucket() {
    let (rejected, _) = two_processes(false).await;
    assert!(rejected > 0, "expected 503s without a shared governor");
}
