//! A real third-party client (fast_bitrix24 from PyPI) against the emulator.
//!
//! Needs the venv from `scripts/python_testenv.sh`. Without it the test fails, unless
//! `B24CH_SKIP_PY=1` asks to skip it on purpose.

use std::path::Path;
use std::process::Command;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_bitrix24_lists_all_deals_and_is_throttled() {
    let root = WORKSPACE;
    let python = Path::new(root).join(".build/pyenv/bin/python");
    // A missing client fails the test: a skipped test proves nothing. Skipping is an explicit
    // choice (`B24CH_SKIP_PY=1`), never the default.
    if !python.exists() {
        if std::env::var_os("B24CH_SKIP_PY").is_some() {
            eprintln!(
                "SKIPPED (B24CH_SKIP_PY is set): {} missing",
                python.display()
            );
            return;
        }
        panic!(
            "{} is missing: run scripts/python_testenv.sh (or set B24CH_SKIP_PY=1 to skip on purpose)",
            python.display()
        );
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
