//! Loads and reconciles that fail in the middle — a portal fault mid-listing, `serve` stopped
//! mid-stream — leave no watermark and no tombstone, and the next successful refresh ends in
//! equality with the portal (`docs/architecture.md`, invariants 1, 2 and 4).
use crate::common;

use std::time::Duration;

use b24ch::encode::Format;
use bitrix24_emulator::{Fault, FaultKind, PortalConfig};
use common::pull::{Pull, sizes, wait_until};
use common::truth;
use serde_json::Map;

const DEALS: u64 = 8_000; // 4 chained batches of 2,500 rows: room to fail in the middle

/// Only deals are loaded (the rest is covered by pull_equality).
const ONLY_DEALS: &str = "enabled = false\n[entities.crm_deal]\nenabled = true\n";

fn portal() -> PortalConfig {
    PortalConfig {
        sizes: sizes(DEALS),
        time_scale: 200.0,
        ..PortalConfig::default()
    }
}

fn fault(kind: FaultKind) -> Fault {
    Fault {
        kind,
        method: Some("batch".into()),
        probability: None,
        remaining: None,
    }
}

fn batches(p: &Pull) -> u64 {
    p.control()
        .counters()
        .per_method
        .get("batch")
        .copied()
        .unwrap_or(0)
}

/// Slows every batch, waits until `pages` more batches were served after `start` ran, then
/// calls `break_it` while the listing is still going.
async fn in_the_middle(p: &Pull, pages: u64, break_it: impl FnOnce(&Pull)) {
    let before = batches(p);
    wait_until("batches served", Duration::from_secs(60), || async {
        batches(p) >= before + pages
    })
    .await;
    break_it(p);
}

/// Waits until the view's current refresh attempt has failed (`system.view_refreshes`).
async fn wait_failed(p: &Pull, view: &str) -> String {
    let q = format!(
        "SELECT exception FROM system.view_refreshes WHERE database = '{}' AND view = '{view}'",
        p.db
    );
    let started = std::time::Instant::now();
    loop {
        let st = p.ch.query(&q).await.unwrap_or_default().trim().to_string();
        if !st.is_empty() {
            return st;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "timed out waiting for {view} to fail"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Refreshes until a refresh succeeds (a retry of the failed one may be pending).
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

async fn deal_equality(p: &Pull) {
    truth::assert_equal(&p.mismatches().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_fault_mid_listing_fails_the_load_and_the_reconcile_cleanly() {
    let p = Pull::start("pull_fault", portal(), Format::JsonEachRow, ONLY_DEALS).await;
    let c = p.control();
    // The cursor trap: row 1 lands first and is modified far in the future; a cursor taken
    // from what landed would skip every other row for good.
    let future = c.now() as i64 + 10_000_000;
    c.modify_rows("deal", &[1], &Map::new(), Some(future))
        .unwrap();
    c.inject_fault(fault(FaultKind::Slow { delay_ms: 300 }));
    // apply creates the load view, whose first (full) refresh starts at once.
    p.autopilot().await;
    in_the_middle(&p, 2, |p| {
        p.control().clear_faults();
        p.control().inject_fault(fault(FaultKind::ConnectionReset));
    })
    .await;
    wait_failed(&p, "crm_deal_load").await;
    assert_eq!(
        p.watermarks("crm_deal").await,
        0,
        "a failed load wrote a watermark"
    );
    c.clear_faults();
    refresh_ok(&p, "crm_deal_load").await;
    assert!(p.watermarks("crm_deal").await >= 1);
    deal_equality(&p).await;

    // A reconcile whose ID listing breaks in the middle writes no tombstone.
    c.delete_rows("deal", &[5, 6, DEALS - 1]).unwrap();
    c.inject_fault(fault(FaultKind::Slow { delay_ms: 300 }));
    p.q(&format!(
        "SYSTEM REFRESH VIEW `{}`.crm_deal_reconcile",
        p.db
    ))
    .await;
    in_the_middle(&p, 2, |p| {
        p.control().clear_faults();
        p.control().inject_fault(fault(FaultKind::InternalError));
    })
    .await;
    wait_failed(&p, "crm_deal_reconcile").await;
    let tombstones = format!(
        "SELECT count() FROM `{}`.crm_deal WHERE _is_deleted = 1",
        p.db
    );
    assert_eq!(
        p.q(&tombstones).await,
        "0",
        "a failed ID listing wrote tombstones"
    );
    c.clear_faults();
    refresh_ok(&p, "crm_deal_reconcile").await;
    assert_eq!(p.q(&tombstones).await, "3");
    deal_equality(&p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stopped_mid_stream_fails_the_load_and_a_restart_catches_up() {
    let mut p = Pull::start("pull_stop", portal(), Format::Parquet, ONLY_DEALS).await;
    p.control()
        .inject_fault(fault(FaultKind::Slow { delay_ms: 300 }));
    p.autopilot().await;
    in_the_middle(&p, 2, |_| {}).await;
    p.stop_serve();
    wait_failed(&p, "crm_deal_load").await;
    assert_eq!(
        p.watermarks("crm_deal").await,
        0,
        "a cut stream wrote a watermark"
    );
    p.control().clear_faults();
    p.restart_serve().await;
    refresh_ok(&p, "crm_deal_load").await;
    deal_equality(&p).await;

    // Stopped in the middle of an incremental load that follows changes.
    let c = p.control();
    let mut set = Map::new();
    set.insert("TITLE".into(), serde_json::json!("после рестарта"));
    c.modify_rows("deal", &(1..=3000).collect::<Vec<_>>(), &set, None)
        .unwrap();
    let marks = p.watermarks("crm_deal").await;
    c.inject_fault(fault(FaultKind::Slow { delay_ms: 300 }));
    p.q(&format!("SYSTEM REFRESH VIEW `{}`.crm_deal_load", p.db))
        .await;
    in_the_middle(&p, 1, |_| {}).await;
    p.stop_serve();
    wait_failed(&p, "crm_deal_load").await;
    assert_eq!(p.watermarks("crm_deal").await, marks);
    p.control().clear_faults();
    p.restart_serve().await;
    refresh_ok(&p, "crm_deal_load").await;
    deal_equality(&p).await;
}
