//! The push path (`b24ch sync`) ends in the same cell-by-cell equality as the pull path:
//! a first sync of every entity, then modifications, deletions, a new smart process and a
//! new multiple-enumeration user field, and a second sync (autopilot + loads + deletions).
use crate::common;

use std::sync::Arc;

use b24ch::catalog::Catalog;
use b24ch::clickhouse::Connection;
use b24ch::clickhouse::apply::{self, Mode};
use b24ch::clickhouse::plan::selected_columns;
use b24ch::config::{Config, from_toml_str};
use b24ch::encode::Format;
use b24ch::pipeline::EntityJob;
use b24ch::portal;
use b24ch::sync::{self, Progress};
use bitrix24_emulator::{PortalConfig, UserFieldSpec};
use common::pull::sizes;
use common::truth;
use serde_json::{Map, json};

/// One `b24ch sync all` pass: converge the tables, then load and reconcile every entity.
async fn sync_all(
    conn: &Connection,
    cfg: &Config,
    client: &Arc<b24ch::bitrix::Client>,
) -> (Catalog, apply::ApplyReport) {
    let catalog = b24ch::catalog::discover(client).await.unwrap();
    let report = apply::apply_mode(conn, cfg, &catalog, Format::Parquet, Mode::Push)
        .await
        .unwrap();
    let t = apply::target(cfg);
    for plan in apply::plans(cfg, &catalog, Format::Parquet) {
        let e = catalog.entity(&plan.entity).unwrap().clone();
        let job = Arc::new(
            EntityJob::new(e.clone(), selected_columns(&e, &cfg.entity(&e.name))).unwrap(),
        );
        sync::load(
            conn,
            &t,
            client.clone(),
            job.clone(),
            &Progress::hidden(&e.name),
        )
        .await
        .unwrap_or_else(|err| panic!("{}: {err}", e.name));
        sync::reconcile(conn, &t, client.clone(), job, 0)
            .await
            .unwrap_or_else(|err| panic!("{} reconcile: {err}", e.name));
    }
    (catalog, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_sync_equals_the_portal_before_and_after_changes() {
    let (ch, db) = common::fresh_database("sync_eq").await;
    let mut cfg = from_toml_str(&format!(
        "[clickhouse]\nurl = \"{}\"\ndatabase = \"{db}\"\n",
        ch.http_url()
    ))
    .unwrap();
    let demo = PortalConfig {
        sizes: sizes(3_000),
        time_scale: 200.0,
        ..PortalConfig::default()
    };
    let portal = portal::connect(&mut cfg, demo).await.unwrap();
    let client = portal.client.clone();
    let c = portal.demo.as_ref().unwrap().control().clone();
    let conn = Connection::connect(&cfg.clickhouse).unwrap();

    let (catalog, _) = sync_all(&conn, &cfg, &client).await;
    let enabled: Vec<String> = apply::plans(&cfg, &catalog, Format::Parquet)
        .into_iter()
        .map(|p| p.entity)
        .collect();
    truth::assert_equal(&truth::compare_all(ch, &db, &c, &catalog, &enabled).await);

    let mut set = Map::new();
    set.insert("TITLE".into(), json!("push \"sync\" 'q' \\ 🚀"));
    set.insert("OPPORTUNITY".into(), json!("7654321.09"));
    let modified: Vec<u64> = (1..=50).map(|i| i * 60).collect();
    assert_eq!(c.modify_rows("deal", &modified, &set, None).unwrap(), 50);
    let deleted: Vec<u64> = (1..=10).map(|i| i * 300 - 7).collect();
    assert_eq!(c.delete_rows("deal", &deleted).unwrap(), 10);
    let etid = c
        .add_smart_process(None, "Новый процесс (push)", 500)
        .unwrap();
    let uf = c
        .add_user_field(
            "deal",
            &UserFieldSpec {
                code: Some("UF_CRM_PUSH_TAGS".into()),
                user_type: "enumeration".into(),
                multiple: true,
                label: Some("Теги".into()),
                fill: true,
            },
        )
        .unwrap();

    let (catalog, report) = sync_all(&conn, &cfg, &client).await;
    assert!(
        report
            .created_tables
            .contains(&format!("crm_dynamic_{etid}")),
        "{report:?}"
    );
    assert!(
        report.added_columns.contains(&format!("crm_deal.{uf}")),
        "{report:?}"
    );
    let enabled: Vec<String> = apply::plans(&cfg, &catalog, Format::Parquet)
        .into_iter()
        .map(|p| p.entity)
        .collect();
    truth::assert_equal(&truth::compare_all(ch, &db, &c, &catalog, &enabled).await);
    let tombstones = ch
        .query(&format!(
            "SELECT count() FROM `{db}`.crm_deal WHERE _is_deleted = 1"
        ))
        .await
        .unwrap();
    assert_eq!(tombstones.trim(), "10");
}
