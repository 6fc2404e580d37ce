//! The incremental cursor at its boundary: rows modified in the same second as the last
//! watermark, a little before it (committed late), and while a load is running are all picked
//! up by the next load (docs/architecture.md, invariant 3). The portal clock runs at real speed
//! here, so the portal's DATE_MODIFY and b24ch's watermark share one clock.
use crate::common;

use std::time::Duration;

use b24ch::clickhouse::apply;
use b24ch::encode::Format;
use bitrix24_emulator::{DataSizes, Fault, FaultKind, PortalConfig};
use common::pull::{Pull, wait_until};
use common::truth;
use serde_json::{Map, json};

fn title(t: &str) -> Map<String, serde_json::Value> {
    let mut m = Map::new();
    m.insert("TITLE".into(), json!(t));
    m
}

async fn equal(p: &Pull) {
    truth::assert_equal(&p.mismatches().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_second_and_in_flight_modifications_are_not_missed() {
    let portal = PortalConfig {
        sizes: DataSizes {
            deals: 600,
            ..DataSizes::default()
        },
        time_scale: 1.0,
        ..PortalConfig::default()
    };
    let p = Pull::start(
        "pull_cursor",
        portal,
        Format::Parquet,
        "enabled = false\n[entities.crm_deal]\nenabled = true\n",
    )
    .await;
    p.autopilot().await;
    p.wait_all().await;
    equal(&p).await;
    let cursor = apply::plans(&p.config, &p.catalog(), p.format)
        .into_iter()
        .find(|x| x.entity == "crm_deal")
        .and_then(|x| x.cursor)
        .unwrap();
    let w = p.cursor("crm_deal", &cursor).await.expect("a watermark");
    let c = p.control();
    // Same second as the watermark, one second before, and a minute before (a late commit).
    c.modify_rows("deal", &[10], &title("same second"), Some(w))
        .unwrap();
    c.modify_rows("deal", &[11], &title("second before"), Some(w - 1))
        .unwrap();
    c.modify_rows("deal", &[12], &title("late commit"), Some(w - 60))
        .unwrap();
    p.refresh("crm_deal_load").await.unwrap();
    equal(&p).await;
    let w2 = p.cursor("crm_deal", &cursor).await.unwrap();
    assert!(w2 >= w);

    // Modifications while a load is running: the listing is held at its first request; rows
    // on both sides of where it will be are modified now (the portal's now).
    c.inject_fault(Fault {
        kind: FaultKind::Slow { delay_ms: 1500 },
        method: Some("batch".into()),
        probability: None,
        remaining: Some(1),
    });
    let before = c.counters().faults_injected;
    p.q(&format!("SYSTEM REFRESH VIEW `{}`.crm_deal_load", p.db))
        .await;
    wait_until("the load to start", Duration::from_secs(30), || async {
        c.counters().faults_injected > before
    })
    .await;
    c.modify_rows("deal", &[1, 300, 600], &title("during the load"), None)
        .unwrap();
    // Same second as the previous watermark, written during the load.
    c.modify_rows("deal", &[2], &title("same second, in flight"), Some(w2))
        .unwrap();
    p.wait_view("crm_deal_load").await.unwrap();
    // Whatever that load saw, the next one brings the rest.
    p.refresh("crm_deal_load").await.unwrap();
    equal(&p).await;
    let got = p
        .q(&format!(
            "SELECT groupArray(ID) FROM (SELECT ID FROM `{}`.crm_deal_current WHERE TITLE LIKE '%load' OR TITLE LIKE '%flight' ORDER BY ID)",
            p.db
        ))
        .await;
    assert_eq!(got, "[1,2,300,600]");
}
