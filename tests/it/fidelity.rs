//! Fidelity to the portal (issue 11): the portal's own column codes whichever method reads a
//! value, one meaning for an empty id reference (NULL, never 0) in every table, file user
//! fields typed as id + download path, and tables of an earlier version (crm.item names)
//! renamed in place by the autopilot without a reload.
use crate::common;

use std::sync::Arc;

use b24ch::catalog::{Catalog, Entity};
use b24ch::clickhouse::Connection;
use b24ch::clickhouse::apply::{self, Mode};
use b24ch::clickhouse::plan::selected_columns;
use b24ch::config::{Config, from_toml_str};
use b24ch::encode::Format;
use b24ch::pipeline::EntityJob;
use b24ch::portal;
use b24ch::schema::{ChType, Column, ValuePart, table_columns};
use b24ch::sync::{self, Progress};
use bitrix24_emulator::{PortalConfig, RenderStyle};
use common::pull::Pull;
use common::truth;
use serde_json::{Value, json};

/// The renames from the names earlier versions used for deals (crm.item `upperName`s).
const OLD_DEAL_NAMES: [(&str, &str); 5] = [
    ("DATE_CREATE", "CREATED_TIME"),
    ("DATE_MODIFY", "UPDATED_TIME"),
    ("CREATED_BY_ID", "CREATED_BY"),
    ("MODIFY_BY_ID", "UPDATED_BY"),
    ("MOVED_BY_ID", "MOVED_BY"),
];

/// One `b24ch sync all` pass: converge the tables, then load and reconcile every entity.
async fn sync_all(conn: &Connection, cfg: &Config, client: &Arc<b24ch::bitrix::Client>) -> Catalog {
    let catalog = b24ch::catalog::discover(client).await.unwrap();
    apply::apply_mode(conn, cfg, &catalog, Format::Parquet, Mode::Push)
        .await
        .unwrap();
    let t = apply::target(cfg);
    for plan in apply::plans(cfg, &catalog, Format::Parquet) {
        let e = catalog.entity(&plan.entity).unwrap().clone();
        let job = Arc::new(
            EntityJob::new(e.clone(), selected_columns(&e, &cfg.entity(&e.name))).unwrap(),
        );
        sync::load(conn, &t, client.clone(), job, &Progress::hidden(&e.name))
            .await
            .unwrap_or_else(|err| panic!("{}: {err}", e.name));
    }
    catalog
}

/// Columns holding ids of other objects: by b24ch's mapping and, independently, by the
/// portal's own field types.
fn id_columns(e: &Entity, portal_catalog: &Value, table: &str) -> Vec<Column> {
    let portal_refs: Vec<String> = portal_catalog["tables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["name"] == table)
        .flat_map(|t| t["fields"].as_array().cloned().unwrap_or_default())
        .filter(|f| {
            matches!(
                f["type"].as_str(),
                Some(
                    "user"
                        | "employee"
                        | "crm_company"
                        | "crm_contact"
                        | "crm_lead"
                        | "crm_deal"
                        | "crm_quote"
                        | "crm_entity"
                        | "file"
                )
            )
        })
        .filter_map(|f| f["code"].as_str().map(str::to_string))
        .collect();
    table_columns(e)
        .into_iter()
        .filter(|c| match &c.source {
            b24ch::schema::ColumnSource::Field { part, .. } => {
                matches!(part, ValuePart::Reference | ValuePart::FileId)
                    || portal_refs.contains(&c.name)
            }
            b24ch::schema::ColumnSource::Service(_) => false,
        })
        .collect()
}

async fn q(ch: &local_clickhouse::LocalClickHouse, sql: &str) -> String {
    match ch.query(sql).await {
        Ok(s) => s.trim().to_string(),
        Err(e) => panic!("{e}\n{sql}"),
    }
}

async fn no_zero_ids_under(style: RenderStyle, tag: &str) {
    let (ch, db) = common::fresh_database(tag).await;
    let mut cfg = from_toml_str(&format!(
        "[clickhouse]\nurl = \"{}\"\ndatabase = \"{db}\"\n",
        ch.http_url()
    ))
    .unwrap();
    let demo = PortalConfig {
        time_scale: 200.0,
        render: style,
        ..PortalConfig::default()
    };
    let portal = portal::connect(&mut cfg, demo).await.unwrap();
    let client = portal.client.clone();
    let c = portal.demo.as_ref().unwrap().control().clone();

    // The portal really sends the variants this test is about.
    let items = client
        .call(
            "crm.item.list",
            &json!({"entityTypeId": 2, "select": ["*", "UF_*"]}),
        )
        .await
        .unwrap();
    let rows = items.result["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        rows.iter().any(|r| r["companyId"] == json!(0)),
        style.item_zero_refs,
        "crm.item.list companyId 0 for a deal without company"
    );
    let leads = client
        .call("crm.lead.list", &json!({"select": ["ID", "COMPANY_ID"]}))
        .await
        .unwrap();
    let leads = leads.result.as_array().cloned().unwrap_or_default();
    assert_eq!(
        leads.iter().any(|r| r["COMPANY_ID"] == json!("0")),
        style.legacy_zero_refs,
        "crm.lead.list COMPANY_ID \"0\" for a lead without company"
    );

    let conn = Connection::connect(&cfg.clickhouse).unwrap();
    let catalog = sync_all(&conn, &cfg, &client).await;
    let enabled: Vec<String> = apply::plans(&cfg, &catalog, Format::Parquet)
        .into_iter()
        .map(|p| p.entity)
        .collect();
    // Names, types and values of every entity equal the portal's.
    truth::assert_equal(&truth::compare_all(ch, &db, &c, &catalog, &enabled).await);

    let portal_catalog = c.catalog();
    let mut checked = 0;
    for table in c.tables() {
        let entity = truth::entity_for_table(&table);
        let Some(e) = catalog.entity(&entity) else {
            panic!("portal table {table} has no entity");
        };
        for col in id_columns(e, &portal_catalog, &table) {
            let cond = match col.ch_type {
                ChType::Array(_) => format!("has(`{}`, 0)", col.name),
                _ => format!("`{}` = 0", col.name),
            };
            let zeros = q(
                ch,
                &format!("SELECT countIf({cond}) FROM `{db}`.`{entity}_current`"),
            )
            .await;
            assert_eq!(zeros, "0", "{entity}.{} holds 0 as an id", col.name);
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} id columns checked");
    // Deals without a company arrived as 0 from crm.item and are NULL.
    let nulls = q(
        ch,
        &format!("SELECT countIf(COMPANY_ID IS NULL) FROM `{db}`.crm_deal_current"),
    )
    .await;
    assert_ne!(nulls, "0");

    // File user fields: a typed id and a download path.
    let deal = catalog.entity("crm_deal").unwrap();
    let file = deal
        .fields
        .iter()
        .find(|f| f.bitrix_type == "file" && !f.multiple)
        .expect("the demo deal has a file user field");
    let row = q(
        ch,
        &format!(
            "SELECT toTypeName(`{0}`), toTypeName(`{0}_URL`), countIf(`{0}` IS NOT NULL), \
             countIf(`{0}_URL` LIKE '/bitrix/%fileId=' || toString(`{0}`) || '%') \
             FROM `{db}`.crm_deal_current GROUP BY 1, 2 FORMAT TSV",
            file.code
        ),
    )
    .await;
    let cols: Vec<&str> = row.split('\t').collect();
    assert_eq!(cols[..2], ["Nullable(UInt64)", "Nullable(String)"], "{row}");
    assert_ne!(cols[2], "0", "{row}");
    assert_eq!(cols[2], cols[3], "every file id has its path: {row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_id_reference_holds_zero_in_any_table() {
    no_zero_ids_under(RenderStyle::default(), "fid_zero").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_id_reference_holds_zero_when_legacy_lists_print_zero_and_files_are_text() {
    let style = RenderStyle {
        item_zero_refs: true,
        legacy_zero_refs: true,
        files_as_text: true,
    };
    no_zero_ids_under(style, "fid_zero_legacy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deal_columns_of_an_earlier_version_are_renamed_in_place_without_a_reload() {
    let p = Pull::start(
        "fid_rename",
        PortalConfig {
            time_scale: 200.0,
            ..PortalConfig::default()
        },
        Format::Parquet,
        "",
    )
    .await;
    p.autopilot().await;
    p.wait_all().await;
    truth::assert_equal(&p.mismatches().await);
    let db = p.db.clone();
    let deals = p
        .q(&format!("SELECT count() FROM `{db}`.crm_deal_current"))
        .await;

    // The table as an earlier version left it: crm.item's names.
    let renames = OLD_DEAL_NAMES
        .iter()
        .map(|(new, old)| format!("RENAME COLUMN `{new}` TO `{old}`"))
        .collect::<Vec<_>>()
        .join(", ");
    p.q(&format!("ALTER TABLE `{db}`.crm_deal {renames}")).await;
    let cursor = p.cursor("crm_deal", "UPDATED_TIME").await;
    assert!(cursor.is_some(), "a complete load left its watermark");
    let watermarks = p.watermarks("crm_deal").await;
    // What the next crm_deal load served (portal rows, watermark excluded). Counting the
    // portal's rows served per method instead would also count discovery's probes.
    let last_load_rows = |p: &Pull| {
        p.serve()
            .state
            .stats
            .entities()
            .iter()
            .find(|e| e.entity == "crm_deal")
            .map(|e| e.last_rows)
            .unwrap_or(0)
    };

    let report = p.autopilot().await;
    let mut renamed = report.renamed_columns.clone();
    renamed.sort();
    let mut want: Vec<String> = OLD_DEAL_NAMES
        .iter()
        .map(|(new, old)| format!("crm_deal.{old} → {new}"))
        .collect();
    want.sort();
    assert_eq!(renamed, want, "{report:?}");
    assert_eq!(report.recreated_views, ["crm_deal_load"], "{report:?}");
    assert!(
        !report
            .added_columns
            .iter()
            .any(|c| c.starts_with("crm_deal.")),
        "{report:?}"
    );
    // The recreated load view refreshes once on creation: an incremental load.
    p.wait_all().await;
    assert_eq!(
        p.cursor("crm_deal", "DATE_MODIFY")
            .await
            .map(|c| c >= cursor.unwrap_or(0)),
        Some(true),
        "the cursor was kept"
    );
    assert_eq!(p.watermarks("crm_deal").await, watermarks + 1);
    let reloaded = last_load_rows(&p);
    assert!(
        reloaded * 4 < deals.parse::<u64>().unwrap(),
        "{reloaded} deals listed again: a reload, not an incremental load"
    );
    let old_left = p
        .q(&format!(
            "SELECT count() FROM system.columns WHERE database = '{db}' AND table = 'crm_deal' \
             AND name IN ('CREATED_TIME', 'UPDATED_TIME', 'CREATED_BY', 'UPDATED_BY', 'MOVED_BY')"
        ))
        .await;
    assert_eq!(old_left, "0");
    truth::assert_equal(&p.mismatches().await);
    // A second pass has nothing left to rename.
    assert!(p.autopilot().await.renamed_columns.is_empty());
}
