//! The pull pipeline end to end: a demo portal, `serve`, `apply` and ClickHouse's refreshable
//! views; every `_current` view equals the portal's ground truth cell by cell, before and after
//! the portal changes (modified and deleted rows, a new smart process, a new user field).
//! 5,000 deals (and the other tables in proportion) by default; `B24CH_PULL_DEALS` for more.
use crate::common;

use std::time::Instant;

use b24ch::encode::Format;
use bitrix24_emulator::{PortalConfig, UserFieldSpec};
use common::pull::{Pull, sizes};
use common::truth;
use serde_json::{Map, json};

fn portal(deals: u64) -> PortalConfig {
    PortalConfig {
        sizes: sizes(deals),
        time_scale: 200.0,
        ..PortalConfig::default()
    }
}

/// Every cell equal; pipeline 0 must be there.
async fn check(p: &Pull) {
    truth::assert_equal(&p.mismatches().await);
    assert_eq!(
        p.q(&format!(
            "SELECT count() FROM `{}`.crm_category_current WHERE ID = 0",
            p.db
        ))
        .await,
        "1",
        "the default deal pipeline (ID 0) is a row, not a watermark"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_views_equal_the_portal_before_and_after_changes() {
    let deals: u64 = std::env::var("B24CH_PULL_DEALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000);
    let t0 = Instant::now();
    let p = Pull::start("pull_eq", portal(deals), Format::Parquet, "").await;
    let report = p.autopilot().await;
    assert!(report.created_tables.contains(&"crm_deal".to_string()));
    for e in [
        "crm_deal",
        "crm_lead",
        "crm_contact",
        "crm_company",
        "crm_dynamic_128",
        "crm_stagehistory_dynamic_128",
        "user",
        "department",
        "crm_status",
    ] {
        assert!(p.entities().contains(&e.to_string()), "{e} not planned");
    }
    // apply created every view; each refreshes once on creation.
    p.wait_all().await;
    let loaded = t0.elapsed();
    check(&p).await;
    assert_eq!(
        p.q(&format!("SELECT count() FROM `{}`.crm_deal_current", p.db))
            .await,
        deals.to_string()
    );
    for e in p.entities() {
        assert!(
            p.refresh_state(&format!("{e}_load"))
                .await
                .starts_with("Scheduled"),
            "{e}"
        );
    }
    eprintln!("first load of {deals} deals and the rest: {loaded:?}");

    // The portal changes.
    let c = p.control();
    let modified: Vec<u64> = (1..=50).map(|i| i * (deals / 50)).collect();
    let mut set = Map::new();
    set.insert("TITLE".into(), json!("Изменено \"pull\" 'q' \\ 🚀"));
    set.insert("OPPORTUNITY".into(), json!("1234567.89"));
    assert_eq!(c.modify_rows("deal", &modified, &set, None).unwrap(), 50);
    let deleted: Vec<u64> = (1..=10).map(|i| i * (deals / 10) - 3).collect();
    assert_eq!(c.delete_rows("deal", &deleted).unwrap(), 10);
    let etid = c.add_smart_process(None, "Новый процесс", 500).unwrap();
    let uf = c
        .add_user_field(
            "deal",
            &UserFieldSpec {
                code: Some("UF_CRM_PULL_TAGS".into()),
                user_type: "enumeration".into(),
                multiple: true,
                label: Some("Теги".into()),
                fill: true,
            },
        )
        .unwrap();

    let t1 = Instant::now();
    let report = p.autopilot().await;
    let new_table = format!("crm_dynamic_{etid}");
    assert!(report.created_tables.contains(&new_table), "{report:?}");
    assert!(
        report.added_columns.contains(&format!("crm_deal.{uf}")),
        "{report:?}"
    );
    p.cycle().await;
    eprintln!("autopilot + one load/reconcile cycle: {:?}", t1.elapsed());
    check(&p).await;
    // The new column is filled, the deleted rows are gone and the new table is complete.
    let filled = p
        .q(&format!(
            "SELECT countIf(notEmpty(`{uf}`)) FROM `{}`.crm_deal_current",
            p.db
        ))
        .await;
    assert_ne!(filled, "0");
    assert_eq!(
        p.q(&format!(
            "SELECT count() FROM `{}`.`{new_table}_current`",
            p.db
        ))
        .await,
        "500"
    );
    eprintln!("total: {:?}", t0.elapsed());
}
