//! Every version kept: `<entity>_history` and `<entity>_as_of(ts)` against the portal's own
//! history of edits, cell by cell. Edit in the demo portal, sync, edit again, sync: at each
//! moment the as-of view equals the portal's snapshot taken then.
use crate::common;

use std::sync::Arc;

use b24ch::bitrix::Client;
use b24ch::clickhouse::Connection;
use b24ch::clickhouse::apply::{self, Mode};
use b24ch::clickhouse::plan::selected_columns;
use b24ch::config::{Config, from_toml_str};
use b24ch::encode::Format;
use b24ch::pipeline::EntityJob;
use b24ch::portal;
use b24ch::sync::{self, Progress};
use bitrix24_emulator::{PortalConfig, PortalControl, UserFieldSpec};
use common::pull::sizes;
use common::truth;
use local_clickhouse::LocalClickHouse;
use serde_json::{Map, Value, json};

/// `b24ch sync crm_deal`: converge, load, reconcile (no safety window).
async fn sync_deals(conn: &Connection, cfg: &Config, client: &Arc<Client>) -> apply::ApplyReport {
    let catalog = b24ch::catalog::discover(client).await.unwrap();
    let report = apply::apply_mode(conn, cfg, &catalog, Format::Parquet, Mode::Push)
        .await
        .unwrap();
    let e = catalog.entity("crm_deal").unwrap().clone();
    let job =
        Arc::new(EntityJob::new(e.clone(), selected_columns(&e, &cfg.entity(&e.name))).unwrap());
    let t = apply::target(cfg);
    sync::load(
        conn,
        &t,
        client.clone(),
        job.clone(),
        &Progress::hidden("crm_deal"),
    )
    .await
    .unwrap();
    sync::reconcile(conn, &t, client.clone(), job, 0)
        .await
        .unwrap();
    report
}

/// ClickHouse's clock now (UTC, ms), a moment to ask the as-of view about.
async fn moment(ch: &LocalClickHouse) -> String {
    // Versions loaded in the same millisecond as the moment count as before it; the pause
    // keeps the next step's versions strictly after.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let m = ch.query("SELECT toString(now64(3, 'UTC'))").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    m.trim().to_string()
}

/// The as-of view at `ts` (without `except` columns) compared with a portal snapshot.
async fn compare_at(
    ch: &LocalClickHouse,
    db: &str,
    c: &PortalControl,
    ts: &str,
    snapshot: &[Map<String, Value>],
    except: &[&str],
) -> Vec<truth::Mismatch> {
    let catalog = c.catalog();
    let mut names = truth::column_names(&catalog, "deal");
    names.retain(|_, col| !except.contains(&col.as_str()));
    let files = truth::file_fields(&catalog, "deal");
    let except_sql = if except.is_empty() {
        String::new()
    } else {
        format!(
            " EXCEPT ({})",
            except
                .iter()
                .map(|e| format!("`{e}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let source = format!("(SELECT *{except_sql} FROM `{db}`.`crm_deal_as_of`(ts = '{ts}'))");
    truth::compare_entity_from(ch, db, "crm_deal", &source, snapshot, &names, &files).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_of_equals_the_portal_snapshot_at_every_moment() {
    let (ch, db) = common::fresh_database("history").await;
    let mut cfg = from_toml_str(&format!(
        "[clickhouse]\nurl = \"{}\"\ndatabase = \"{db}\"\n\n[entities.default]\nenabled = false\n\n[entities.crm_deal]\nenabled = true\nhistory_ttl = \"400 DAY\"\n",
        ch.http_url()
    ))
    .unwrap();
    let demo = PortalConfig {
        sizes: sizes(120),
        time_scale: 200.0,
        ..PortalConfig::default()
    };
    let portal = portal::connect(&mut cfg, demo).await.unwrap();
    let client = portal.client.clone();
    let c = portal.demo.as_ref().unwrap().control().clone();
    let conn = Connection::connect(&cfg.clickhouse).unwrap();

    let report = sync_deals(&conn, &cfg, &client).await;
    assert!(
        report.created_tables.contains(&"crm_deal".to_string()),
        "{report:?}"
    );
    let engine = ch
        .query(&format!(
            "SELECT engine, engine_full FROM system.tables WHERE database = '{db}' AND name = 'crm_deal_history'"
        ))
        .await
        .unwrap();
    assert!(engine.starts_with("MergeTree\t"), "{engine}");
    assert!(engine.contains("toYYYYMM(dt_inserted)"), "{engine}");
    assert!(engine.contains("toIntervalDay(400)"), "{engine}");
    let m0 = moment(ch).await;
    let snap0 = c.ground_truth("deal").unwrap();
    // Two other stages of deal 3's pipeline, for the time-in-stage query.
    let row3 = snap0.iter().find(|r| r["ID"] == json!(3)).unwrap().clone();
    let mut stages: Vec<Value> = snap0
        .iter()
        .filter(|r| r["CATEGORY_ID"] == row3["CATEGORY_ID"] && r["STAGE_ID"] != row3["STAGE_ID"])
        .map(|r| r["STAGE_ID"].clone())
        .collect();
    stages.sort_by_key(|v| v.to_string());
    stages.dedup();
    assert!(stages.len() >= 2, "{stages:?}");

    // First round of edits: values changed, one row deleted.
    let mut set = Map::new();
    set.insert("TITLE".into(), json!("first \"edit\" 'q' 🚀"));
    set.insert("OPPORTUNITY".into(), json!("1234.50"));
    set.insert("STAGE_ID".into(), stages[0].clone());
    assert_eq!(c.modify_rows("deal", &[3, 5, 8], &set, None).unwrap(), 3);
    assert_eq!(c.delete_rows("deal", &[13]).unwrap(), 1);
    sync_deals(&conn, &cfg, &client).await;
    let m1 = moment(ch).await;
    let snap1 = c.ground_truth("deal").unwrap();

    // Second round: the same rows edited again, another deletion, and a new user field that
    // the history must take on too.
    let mut set = Map::new();
    set.insert("TITLE".into(), json!("second edit"));
    set.insert("STAGE_ID".into(), stages[1].clone());
    assert_eq!(c.modify_rows("deal", &[3, 21], &set, None).unwrap(), 2);
    assert_eq!(c.delete_rows("deal", &[5]).unwrap(), 1);
    let uf = c
        .add_user_field(
            "deal",
            &UserFieldSpec {
                code: Some("UF_CRM_HISTORY_NOTE".into()),
                user_type: "string".into(),
                multiple: false,
                label: None,
                fill: true,
            },
        )
        .unwrap();
    let report = sync_deals(&conn, &cfg, &client).await;
    assert!(
        report.added_columns.contains(&format!("crm_deal.{uf}")),
        "{report:?}"
    );
    let m2 = moment(ch).await;
    let snap2 = c.ground_truth("deal").unwrap();
    assert_ne!(snap0, snap1);
    assert_ne!(snap1, snap2);

    // Before the first load nothing was known.
    let none = ch
        .query(&format!(
            "SELECT count() FROM `{db}`.crm_deal_as_of(ts = '2000-01-01 00:00:00')"
        ))
        .await
        .unwrap();
    assert_eq!(none.trim(), "0");
    // Older snapshots lack the new field: it is left out of their comparison.
    let without = |s: &[Map<String, Value>]| -> Vec<Map<String, Value>> {
        s.iter()
            .map(|r| {
                let mut r = r.clone();
                r.remove(&uf);
                r
            })
            .collect()
    };
    truth::assert_equal(&compare_at(ch, &db, &c, &m0, &without(&snap0), &[&uf]).await);
    truth::assert_equal(&compare_at(ch, &db, &c, &m1, &without(&snap1), &[&uf]).await);
    truth::assert_equal(&compare_at(ch, &db, &c, &m2, &snap2, &[]).await);
    // The latest moment is also what `_current` shows.
    truth::assert_equal(
        &truth::compare_entity(
            ch,
            &db,
            "crm_deal",
            &snap2,
            &truth::column_names(&c.catalog(), "deal"),
            &truth::file_fields(&c.catalog(), "deal"),
        )
        .await,
    );
    // Every version is there: 3 loads of row 3 with distinct titles, a tombstone for 13 and 5.
    let versions = ch
        .query(&format!(
            "SELECT ID, groupUniqArray(TITLE) AS t, max(_is_deleted) FROM `{db}`.crm_deal_history WHERE ID IN (3, 5, 13) GROUP BY ID ORDER BY ID FORMAT TSV"
        ))
        .await
        .unwrap();
    let lines: Vec<&str> = versions.lines().collect();
    assert_eq!(lines.len(), 3, "{versions}");
    assert!(
        lines[0].starts_with("3\t")
            && lines[0].contains("second edit")
            && lines[0].contains("first"),
        "{versions}"
    );
    assert!(
        lines[1].ends_with("\t1") && lines[2].ends_with("\t1"),
        "{versions}"
    );
    // The two analyst queries of sql/README.md, as written there.
    let pipeline = readme_query("history:pipeline", &db).replace("2026-03-01 00:00:00", &m1);
    let got = ch.query(&format!("{pipeline} FORMAT TSV")).await.unwrap();
    let mut per_stage: std::collections::BTreeMap<String, u64> = Default::default();
    for l in got.lines() {
        let f: Vec<&str> = l.split('\t').collect();
        *per_stage.entry(f[1].to_string()).or_default() += f[2].parse::<u64>().unwrap();
    }
    let mut want: std::collections::BTreeMap<String, u64> = Default::default();
    for r in &snap1 {
        *want
            .entry(r["STAGE_ID"].as_str().unwrap_or("\\N").to_string())
            .or_default() += 1;
    }
    assert_eq!(per_stage, want);
    let stage_time = readme_query("history:stages", &db);
    let got = ch.query(&format!("{stage_time} FORMAT TSV")).await.unwrap();
    let deal3: Vec<&str> = got.lines().filter(|l| l.starts_with("3\t")).collect();
    assert_eq!(deal3.len(), 3, "{got}");
    for (stage, want) in [
        row3["STAGE_ID"].clone(),
        stages[0].clone(),
        stages[1].clone(),
    ]
    .iter()
    .zip([true, true, true])
    {
        let line = deal3
            .iter()
            .find(|l| l.split('\t').nth(1) == stage.as_str());
        assert_eq!(line.is_some(), want, "{stage} in {deal3:?}");
        let hours: f64 = line.unwrap().split('\t').nth(2).unwrap().parse().unwrap();
        assert!(hours >= 0.0, "{line:?}");
    }
    // A deleted deal keeps the time it spent in its stages before the deletion, and the
    // time after it counts nowhere: deal 13 was deleted right after the first load.
    let deal13: Vec<&str> = got.lines().filter(|l| l.starts_with("13\t")).collect();
    assert_eq!(deal13.len(), 1, "{got}");
    // No watermark row in the history.
    let wm = ch
        .query(&format!(
            "SELECT count() FROM `{db}`.crm_deal_history WHERE ID = 0"
        ))
        .await
        .unwrap();
    assert_eq!(wm.trim(), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_gives_an_existing_table_its_history_filled_from_what_it_holds() {
    let (ch, db) = common::fresh_database("history_late").await;
    let mut cfg = from_toml_str(&format!(
        "[clickhouse]\nurl = \"{}\"\ndatabase = \"{db}\"\n\n[entities.default]\nenabled = false\n\n[entities.crm_deal]\nenabled = true\n",
        ch.http_url()
    ))
    .unwrap();
    let demo = PortalConfig {
        sizes: sizes(60),
        time_scale: 200.0,
        ..PortalConfig::default()
    };
    let portal = portal::connect(&mut cfg, demo).await.unwrap();
    let client = portal.client.clone();
    let c = portal.demo.as_ref().unwrap().control().clone();
    let conn = Connection::connect(&cfg.clickhouse).unwrap();
    sync_deals(&conn, &cfg, &client).await;
    // As an earlier b24ch left it: no history, no feed, no as-of view.
    for stmt in [
        "DROP VIEW `{db}`.crm_deal_as_of",
        "DROP VIEW `{db}`.crm_deal_history_feed",
        "DROP TABLE `{db}`.crm_deal_history",
    ] {
        ch.query(&stmt.replace("{db}", &db)).await.unwrap();
    }
    let report = sync_deals(&conn, &cfg, &client).await;
    assert!(
        report
            .created_tables
            .contains(&"crm_deal_history".to_string()),
        "{report:?}"
    );
    let m = moment(ch).await;
    let snap = c.ground_truth("deal").unwrap();
    truth::assert_equal(&compare_at(ch, &db, &c, &m, &snap, &[]).await);
    // A TTL set later reaches the existing history at the next apply.
    let mut cfg2 = from_toml_str(&format!(
        "[clickhouse]\nurl = \"{}\"\ndatabase = \"{db}\"\n\n[entities.default]\nenabled = false\n\n[entities.crm_deal]\nenabled = true\nhistory_ttl = \"2 WEEK\"\n",
        ch.http_url()
    ))
    .unwrap();
    cfg2.portal = cfg.portal.clone();
    sync_deals(&conn, &cfg2, &client).await;
    let engine = ch
        .query(&format!(
            "SELECT engine_full FROM system.tables WHERE database = '{db}' AND name = 'crm_deal_history'"
        ))
        .await
        .unwrap();
    assert!(engine.contains("toIntervalWeek(2)"), "{engine}");
}

/// The SQL block of sql/README.md that starts with `-- <marker>`, for database `db`.
fn readme_query(marker: &str, db: &str) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sql/README.md")).unwrap();
    let start = readme
        .find(&format!("-- {marker}"))
        .unwrap_or_else(|| panic!("{marker} not in sql/README.md"));
    let block = &readme[start..];
    let end = block.find("```").unwrap();
    block[..end]
        .trim()
        .trim_end_matches(';')
        .replace("b24.", &format!("`{db}`."))
}
