//! A real third-party client (fast_bitrix24 from PyPI) against the emulator.
//!
//! Needs the venv from `scripts/python_testenv.sh`. Without it the test is skipped with a
//! message, unless `B24CH_REQUIRE_PY` is set (CI), in which case it fails.

use std::path::Path;
use std::process::Command;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_bitrix24_lists_all_deals_and_is_throttled() {
    let root = WORKSPACE;
    let python = Path::new(root).join(".build/pyenv/bin/python");
    if !python.exists() {
        if std::env::var_os("B24CH_REQUIRE_PY").is_some() {
            panic!(
                "B24CH_REQUIRE_PY is set but {} is missing: run scripts/python_testenv.sh",
                python.display()
            );
        }
        eprintln!(
            "SKIPPED: {} missing; run scripts/python_testenv.sh (set B24CH_REQUIRE_PY to make this fail)",
            python.display()
        );
        return;
    }
    // Cloud limits on a real-time clock: the client must pace itself like on a real portal.
    let mut cfg = bitrix24_emulator::PortalConfig::default();
    cfg.sizes.deals = 300;
    cfg.cost.max_real_delay_secs = 0.05;
    let p = portal(cfg).await;
    let script = Path::new(root).join("tests/python/fast_bitrix24_client.py");
    let (webhook, base) = (p.webhook_url(), p.base_url());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .arg(webhook)
            .arg(base)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "python client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("ALL PASSED"));
    let c = p.control().counters();
    assert!(
        c.query_limit_exceeded >= 10,
        "the naive burst must have been throttled"
    );
    p.shutdown().await;
}
