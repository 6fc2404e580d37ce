//! Second-wave CRM tables (issue #12) equal the demo portal cell by cell, before and after
//! edits, additions and deletions: quotes, new-type invoices and their stage history.
use crate::common;

use std::sync::Arc;

use b24ch::catalog::Catalog;
use b24ch::clickhouse::Connection;
use b24ch::clickhouse::apply::{self, Mode};
use b24ch::clickhouse::plan::selected_columns;
use b24ch::config::{Config, DeleteGuard, from_toml_str};
use b24ch::encode::Format;
use b24ch::pipeline::EntityJob;
use b24ch::portal;
use b24ch::sync::{self, Progress};
use bitrix24_emulator::{
    DataSizes, PortalConfig, PortalControl, ProductRowOwnerArrays, UserFieldSpec,
};
use common::cli::Cli;
use common::truth;
use local_clickhouse::LocalClickHouse;
use serde_json::{Map, json};

/// A small portal: the second-wave tables and just enough of the first wave to reference.
pub(crate) fn small_sizes() -> DataSizes {
    DataSizes {
        deals: 60,
        leads: 20,
        contacts: 30,
        companies: 10,
        activities: 10,
        smart_processes: vec![],
        quotes: 70,
        smart_invoices: 55,
        ..DataSizes::default()
    }
}

/// What [`env`] sets up: the test ClickHouse, a fresh database, the config, the client, the
/// portal's control, the ClickHouse connection, and the portal (kept alive while held).
pub(crate) type Env = (
    &'static LocalClickHouse,
    String,
    Config,
    Arc<b24ch::bitrix::Client>,
    PortalControl,
    Connection,
    portal::PortalConnection,
);

/// A fresh database and the demo portal `demo`, wired as `b24ch sync` wires them.
pub(crate) async fn env(prefix: &str, demo: PortalConfig) -> Env {
    let (ch, db) = common::fresh_database(prefix).await;
    let mut cfg = from_toml_str(&format!(
        "[clickhouse]\nurl = \"{}\"\ndatabase = \"{db}\"\n",
        ch.http_url()
    ))
    .unwrap();
    let portal = portal::connect(&mut cfg, demo).await.unwrap();
    let client = portal.client.clone();
    let control = portal.demo.as_ref().unwrap().control().clone();
    let conn = Connection::connect(&cfg.clickhouse).unwrap();
    (ch, db, cfg, client, control, conn, portal)
}

/// `entity`'s job as `sync` builds it (its configured columns).
fn job_of(cfg: &Config, entity: &b24ch::catalog::Entity) -> Arc<EntityJob> {
    Arc::new(
        EntityJob::new(
            entity.clone(),
            selected_columns(entity, &cfg.entity(&entity.name)),
        )
        .unwrap(),
    )
}

/// One `sync` load of `job`.
async fn load(
    conn: &Connection,
    cfg: &Config,
    client: &Arc<b24ch::bitrix::Client>,
    job: &Arc<EntityJob>,
) -> sync::LoadReport {
    let name = job.entity.name.clone();
    sync::load(
        conn,
        &apply::target(cfg),
        client.clone(),
        job.clone(),
        &Progress::hidden(&name),
    )
    .await
    .unwrap_or_else(|err| panic!("{name}: {err}"))
}

/// Converges the tables, then loads and reconciles `entities` as `b24ch sync <entities…>`
/// does: from a full load's own listing, else by an ID scan.
pub(crate) async fn sync_entities(
    conn: &Connection,
    cfg: &Config,
    client: &Arc<b24ch::bitrix::Client>,
    entities: &[&str],
) -> (Catalog, apply::ApplyReport) {
    let catalog = b24ch::catalog::discover(client).await.unwrap();
    let report = apply::apply_mode(conn, cfg, &catalog, Format::Parquet, Mode::Push)
        .await
        .unwrap();
    let t = apply::target(cfg);
    for name in entities {
        let e = catalog
            .entity(name)
            .unwrap_or_else(|| panic!("{name} not in the catalog: {:?}", catalog.unavailable))
            .clone();
        let job = job_of(cfg, &e);
        let listing = load(conn, cfg, client, &job).await.listing;
        let guard = DeleteGuard::DEFAULT;
        sync::reconcile_after(conn, &t, client.clone(), job, listing.as_ref(), 0, guard)
            .await
            .unwrap_or_else(|err| panic!("{name} reconcile: {err}"));
    }
    (catalog, report)
}

pub(crate) async fn live_rows(ch: &LocalClickHouse, db: &str, entity: &str) -> u64 {
    ch.query(&format!("SELECT count() FROM `{db}`.`{entity}_current`"))
        .await
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

const DOCS: [&str; 3] = [
    "crm_quote",
    "crm_smart_invoice",
    "crm_stagehistory_smart_invoice",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotes_and_invoices_equal_the_portal_before_and_after_changes() {
    let demo = PortalConfig {
        sizes: small_sizes(),
        time_scale: 200.0,
        ..PortalConfig::default()
    };
    let (ch, db, cfg, client, c, conn, _portal) = env("wave2_docs", demo).await;
    let enabled: Vec<String> = DOCS.iter().map(|s| s.to_string()).collect();

    let (catalog, _) = sync_entities(&conn, &cfg, &client, &DOCS).await;
    // Quotes have no stage history in the API (crm.stagehistory.list documents 1, 2, 5, 31
    // and smart processes), so no such entity is offered.
    assert!(catalog.entity("crm_stagehistory_quote").is_none());
    let quote = catalog.entity("crm_quote").unwrap();
    assert_eq!(
        (quote.method.as_str(), quote.entity_type_id),
        ("crm.item", Some(7))
    );
    assert!(quote.fields.iter().filter(|f| f.user_field).count() >= 10);
    truth::assert_equal(&truth::compare_all(ch, &db, &c, &catalog, &enabled).await);
    assert_eq!(live_rows(ch, &db, "crm_quote").await, 70);
    assert_eq!(live_rows(ch, &db, "crm_smart_invoice").await, 55);
    assert_eq!(
        live_rows(ch, &db, "crm_stagehistory_smart_invoice").await,
        110
    );

    // Edits, deletions, additions and a new user field.
    let mut set = Map::new();
    set.insert("TITLE".into(), json!("КП \"edited\" 'q' \\ 🚀"));
    set.insert("OPPORTUNITY".into(), json!("1234567.89"));
    assert_eq!(c.modify_rows("quote", &[3, 9, 27], &set, None).unwrap(), 3);
    assert_eq!(
        c.modify_rows("smart_invoice", &[5, 6], &set, None).unwrap(),
        2
    );
    assert_eq!(c.delete_rows("quote", &[1, 2, 70]).unwrap(), 3);
    assert_eq!(c.delete_rows("smart_invoice", &[10]).unwrap(), 1);
    let added = c.add_rows("smart_invoice", 4).unwrap();
    assert_eq!(added, vec![56, 57, 58, 59]);
    c.add_rows("quote", 2).unwrap();
    let uf = c
        .add_user_field(
            "quote",
            &UserFieldSpec {
                code: Some("UF_CRM_QUOTE_TAGS".into()),
                user_type: "enumeration".into(),
                multiple: true,
                label: Some("Теги".into()),
                fill: true,
            },
        )
        .unwrap();
    c.advance_clock(600.0);

    let (catalog, report) = sync_entities(&conn, &cfg, &client, &DOCS).await;
    assert!(
        report.added_columns.contains(&format!("crm_quote.{uf}")),
        "{report:?}"
    );
    truth::assert_equal(&truth::compare_all(ch, &db, &c, &catalog, &enabled).await);
    assert_eq!(live_rows(ch, &db, "crm_quote").await, 69);
    assert_eq!(live_rows(ch, &db, "crm_smart_invoice").await, 58);
}

/// Product rows of deals, leads, quotes and invoices, before and after an edited deal drops a
/// row and gains one, a deal is deleted (its rows go with it) and a quote gains a row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_rows_equal_the_portal_before_and_after_changes() {
    let demo = PortalConfig {
        sizes: small_sizes(),
        time_scale: 200.0,
        ..PortalConfig::default()
    };
    let (ch, db, cfg, client, c, conn, _portal) = env("wave2_prow", demo).await;
    let enabled = vec!["crm_productrow".to_string()];
    // 60 deals × 3 + 20 leads + 70 quotes × 2 + 55 invoices × 2.
    let generated = 60 * 3 + 20 + 70 * 2 + 55 * 2;

    c.reset_counters();
    let (catalog, _) = sync_entities(&conn, &cfg, &client, &["crm_productrow"]).await;
    let counters = c.counters();
    for m in ["crm.item.productrow.list", "crm.item.list"] {
        assert!(
            !counters.count_queries_per_method.contains_key(m),
            "{m} ran COUNT: {counters:?}"
        );
    }
    let prow = catalog.entity("crm_productrow").unwrap();
    for code in [
        "OWNER_ID",
        "OWNER_TYPE",
        "PRICE",
        "PRICE_ACCOUNT",
        "XML_ID",
        "QUANTITY",
    ] {
        assert!(prow.field(code).is_some(), "{code} missing");
    }
    truth::assert_equal(&truth::compare_all(ch, &db, &c, &catalog, &enabled).await);
    assert_eq!(live_rows(ch, &db, "crm_productrow").await, generated);

    let deal5 = c.product_rows_of("deal", 5).unwrap();
    assert_eq!(deal5.len(), 3);
    c.delete_product_row(deal5[1]).unwrap();
    let added = c.add_product_row("deal", 7).unwrap();
    c.add_product_row("quote", 3).unwrap();
    assert_eq!(c.delete_rows("deal", &[9]).unwrap(), 1);
    assert!(c.product_rows_of("deal", 7).unwrap().contains(&added));
    c.advance_clock(600.0);

    // The next load is incremental: only the owners modified since the watermark (deals 5
    // and 7, quote 3) are listed, and only their rows read, in one product-row command.
    let job = job_of(&cfg, prow);
    assert!(job.incremental());
    c.reset_counters();
    let t = apply::target(&cfg);
    load(&conn, &cfg, &client, &job).await;
    let k = c.counters();
    // One command per owner type (deals, quotes) ...
    assert_eq!(
        k.per_method.get("crm.item.productrow.list"),
        Some(&2),
        "{k:?}"
    );
    // ... with deal 5's two rows left, deal 7's four and quote 3's three.
    assert_eq!(
        k.rows_served.get("crm.item.productrow.list"),
        Some(&(2 + 4 + 3))
    );
    // The row deal 5 dropped is gone after the reconcile pass (deletions, invariant 4).
    sync::reconcile(&conn, &t, client.clone(), job, 0)
        .await
        .unwrap();
    truth::assert_equal(&truth::compare_all(ch, &db, &c, &catalog, &enabled).await);
    assert_eq!(
        live_rows(ch, &db, "crm_productrow").await,
        generated - 1 + 2 - 3
    );
}

/// A first product-row load after the owner tables were loaded takes its owners from them
/// plus those the portal changed since their watermarks (`sync::with_known_owners`): one
/// request for every type's changed owners instead of listing every deal. A deal deleted in
/// the portal since (still in `crm_deal`) and one added (not yet there) come out right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_product_row_load_takes_its_owners_from_the_owner_tables() {
    let demo = PortalConfig {
        sizes: DataSizes {
            deals: 1_000,
            ..small_sizes()
        },
        time_scale: 200.0,
        ..PortalConfig::default()
    };
    let (ch, db, cfg, client, c, conn, _portal) = env("wave2_prow_owners", demo).await;
    let owner_tables = ["crm_deal", "crm_lead", "crm_quote", "crm_smart_invoice"];
    let (catalog, _) = sync_entities(&conn, &cfg, &client, &owner_tables).await;
    assert_eq!(c.delete_rows("deal", &[9]).unwrap(), 1);
    let added = c.add_rows("deal", 1).unwrap();
    let new_row = c.add_product_row("deal", added[0]).unwrap();

    let prow = catalog.entity("crm_productrow").unwrap();
    let t = apply::target(&cfg);
    let job = sync::with_known_owners(&conn, &t, &catalog, job_of(&cfg, prow))
        .await
        .unwrap();
    c.reset_counters();
    load(&conn, &cfg, &client, &job).await;
    let k = c.counters();
    let owners_listed = k.rows_served.get("crm.item.list").copied().unwrap_or(0);
    assert!(owners_listed < 50, "{owners_listed} owners listed: {k:?}");
    // `crm.enum.ownertype`, one batch of changed owners, then the rows (3,000 of them at
    // 2,500 a request, plus the halving that finds deal 9 gone).
    assert!(k.requests_total <= 8, "{k:?}");
    let enabled = vec!["crm_productrow".to_string()];
    truth::assert_equal(&truth::compare_all(ch, &db, &c, &catalog, &enabled).await);
    let new_row_loaded: u64 = ch
        .query(&format!(
            "SELECT count() FROM `{db}`.crm_productrow_current WHERE ID = {new_row}"
        ))
        .await
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(new_row_loaded, 1);
}

/// A portal that refuses `=ownerId` arrays (the current docs) is read one owner per command,
/// with the same rows; one that accepts them (the connector notes) many owners per command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_rows_under_both_owner_array_variants() {
    for variant in [
        ProductRowOwnerArrays::Rejected,
        ProductRowOwnerArrays::Accepted,
    ] {
        let demo = PortalConfig {
            sizes: DataSizes {
                deals: 40,
                leads: 5,
                quotes: 5,
                smart_invoices: 5,
                ..small_sizes()
            },
            time_scale: 200.0,
            productrow_owner_arrays: variant,
            ..PortalConfig::default()
        };
        let (ch, db, cfg, client, c, conn, _portal) = env("wave2_prow_var", demo).await;
        c.reset_counters();
        let (catalog, _) = sync_entities(&conn, &cfg, &client, &["crm_productrow"]).await;
        let enabled = vec!["crm_productrow".to_string()];
        truth::assert_equal(&truth::compare_all(ch, &db, &c, &catalog, &enabled).await);
        assert_eq!(
            live_rows(ch, &db, "crm_productrow").await,
            40 * 3 + 5 + 10 + 10
        );
        // The load lists every row once (55 owners); the reconcile takes its ids.
        let commands = c.counters().per_method["crm.item.productrow.list"];
        match variant {
            // One command per owner, plus the refused first attempt.
            ProductRowOwnerArrays::Rejected => {
                assert!((55..2 * 55).contains(&commands), "{commands}")
            }
            // Four owner types, 145 rows: a handful of pages.
            ProductRowOwnerArrays::Accepted => assert!(commands <= 12, "{commands}"),
        }
    }
}

/// The analyst queries of `sql/README.md` ("Sales documents and product rows") run on the
/// loaded demo portal and each returns rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_queries_answer_on_the_demo_portal() {
    let demo = PortalConfig {
        sizes: small_sizes(),
        time_scale: 200.0,
        ..PortalConfig::default()
    };
    let (ch, db, cfg, client, _, conn, _portal) = env("wave2_sql", demo).await;
    let entities = [
        "crm_deal",
        "crm_company",
        "crm_status",
        "crm_productrow",
        "crm_quote",
        "crm_smart_invoice",
        "crm_stagehistory_smart_invoice",
        "crm_product",
        "crm_product_section",
        "crm_requisite",
        "crm_requisite_bank",
        "crm_address",
        "crm_timeline_comment",
        "crm_activity",
        "crm_activity_binding",
    ];
    sync_entities(&conn, &cfg, &client, &entities).await;
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sql/README.md")).unwrap();
    let block = readme
        .split("<!-- wave2-queries -->")
        .nth(1)
        .and_then(|b| b.split("<!-- /wave2-queries -->").next())
        .expect("the README marks its second-wave queries");
    let sql = block.replace("```sql", "").replace("```", "");
    let queries: Vec<&str> = sql
        .split(';')
        .map(str::trim)
        .filter(|q| {
            q.lines()
                .any(|l| !l.trim().is_empty() && !l.trim().starts_with("--"))
        })
        .collect();
    assert_eq!(queries.len(), 11, "{queries:?}");
    for q in queries {
        let q = q.replace("b24.", &format!("`{db}`."));
        let out = ch.query(&q).await.unwrap_or_else(|e| panic!("{e}\n{q}"));
        assert!(!out.trim().is_empty(), "no rows from\n{q}");
    }
}

/// Products (with their properties) and sections, before and after an edit, an addition and
/// a deletion; products load incrementally by `TIMESTAMP_X`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn products_and_sections_equal_the_portal_before_and_after_changes() {
    let demo = PortalConfig {
        sizes: DataSizes {
            products: 130,
            product_sections: 7,
            ..small_sizes()
        },
        time_scale: 200.0,
        ..PortalConfig::default()
    };
    let (ch, db, cfg, client, c, conn, _portal) = env("wave2_products", demo).await;
    let tables = ["crm_product", "crm_product_section"];
    let enabled: Vec<String> = tables.iter().map(|s| s.to_string()).collect();

    let (catalog, _) = sync_entities(&conn, &cfg, &client, &tables).await;
    let product = catalog.entity("crm_product").unwrap();
    assert!(product.field("PROPERTY_101").is_some() && product.field("PROPERTY_102").is_some());
    truth::assert_equal(&truth::compare_all(ch, &db, &c, &catalog, &enabled).await);
    assert_eq!(live_rows(ch, &db, "crm_product").await, 130);
    assert_eq!(live_rows(ch, &db, "crm_product_section").await, 7);

    let mut set = Map::new();
    set.insert("NAME".into(), json!("Товар \"edited\" 'q' 🚀"));
    set.insert("PRICE".into(), json!("99.90"));
    assert_eq!(c.modify_rows("product", &[4, 80], &set, None).unwrap(), 2);
    assert_eq!(c.delete_rows("product", &[7]).unwrap(), 1);
    assert_eq!(c.delete_rows("product_section", &[2]).unwrap(), 1);
    assert_eq!(c.add_rows("product", 3).unwrap(), vec![131, 132, 133]);
    c.advance_clock(600.0);

    // The product load is incremental: it reads the 2 edited and the 3 new products.
    let job = job_of(&cfg, product);
    assert!(job.incremental());
    c.reset_counters();
    load(&conn, &cfg, &client, &job).await;
    let k = c.counters();
    // One request: the 5 rows, plus the same 5 ids from the probe that sizes the chain.
    assert_eq!(k.requests_total, 1, "{k:?}");
    assert_eq!(k.rows_served["crm.product.list"], 5 + 5, "{k:?}");
    let (catalog, _) = sync_entities(&conn, &cfg, &client, &tables).await;
    truth::assert_equal(&truth::compare_all(ch, &db, &c, &catalog, &enabled).await);
    assert_eq!(live_rows(ch, &db, "crm_product").await, 132);
    assert_eq!(live_rows(ch, &db, "crm_product_section").await, 6);
}

/// Requisites (with user fields), bank details and addresses, before and after an edit,
/// additions, a deletion and a new user field. Addresses have no ID: they are keyed by owner
/// and address type (`ADDRESS_KEY`), listed COUNT-free and reconciled by that key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requisites_and_bank_details_equal_the_portal_before_and_after_changes() {
    let demo = PortalConfig {
        sizes: DataSizes {
            requisites: 75,
            requisite_banks: 52,
            addresses: 130,
            ..small_sizes()
        },
        time_scale: 200.0,
        ..PortalConfig::default()
    };
    let (ch, db, cfg, client, c, conn, _portal) = env("wave2_rq", demo).await;
    let tables = ["crm_requisite", "crm_requisite_bank", "crm_address"];
    let enabled: Vec<String> = tables.iter().map(|s| s.to_string()).collect();

    let (catalog, _) = sync_entities(&conn, &cfg, &client, &tables).await;
    let rq = catalog.entity("crm_requisite").unwrap();
    assert!(rq.fields.iter().filter(|f| f.user_field).count() >= 10);
    let address = catalog.entity("crm_address").unwrap();
    assert_eq!(address.fields[0].code, "ADDRESS_KEY");
    assert!(address.field("ID").is_none());
    truth::assert_equal(&truth::compare_all(ch, &db, &c, &catalog, &enabled).await);
    assert_eq!(live_rows(ch, &db, "crm_requisite").await, 75);
    assert_eq!(live_rows(ch, &db, "crm_requisite_bank").await, 52);
    assert_eq!(live_rows(ch, &db, "crm_address").await, 130);
    let sorting = ch
        .query(&format!(
            "SELECT sorting_key FROM system.tables WHERE database = '{db}' AND name = 'crm_address'"
        ))
        .await
        .unwrap();
    assert_eq!(sorting.trim(), "ADDRESS_KEY");

    let mut set = Map::new();
    set.insert("RQ_INN".into(), json!("7707083893 \"edited\""));
    assert_eq!(c.modify_rows("requisite", &[3, 60], &set, None).unwrap(), 2);
    assert_eq!(c.delete_rows("requisite_bank", &[1, 52]).unwrap(), 2);
    c.add_rows("requisite", 2).unwrap();
    c.add_rows("requisite_bank", 1).unwrap();
    let mut city = Map::new();
    city.insert("CITY".into(), json!("Санкт-Петербург \"edited\""));
    city.insert("ADDRESS_2".into(), json!(""));
    assert_eq!(c.modify_rows("address", &[2, 99], &city, None).unwrap(), 2);
    assert_eq!(c.delete_rows("address", &[1, 50, 130]).unwrap(), 3);
    c.add_rows("address", 2).unwrap();
    let uf = c
        .add_user_field(
            "requisite",
            &UserFieldSpec {
                code: Some("UF_CRM_RQ_NOTE".into()),
                user_type: "string".into(),
                multiple: false,
                label: Some("Заметка".into()),
                fill: true,
            },
        )
        .unwrap();
    c.advance_clock(600.0);

    c.reset_counters();
    let (catalog, report) = sync_entities(&conn, &cfg, &client, &tables).await;
    let k = c.counters();
    assert_eq!(
        k.count_queries_per_method.get("crm.address.list"),
        None,
        "{k:?}"
    );
    assert!(
        report
            .added_columns
            .contains(&format!("crm_requisite.{uf}")),
        "{report:?}"
    );
    truth::assert_equal(&truth::compare_all(ch, &db, &c, &catalog, &enabled).await);
    assert_eq!(live_rows(ch, &db, "crm_requisite").await, 77);
    assert_eq!(live_rows(ch, &db, "crm_requisite_bank").await, 51);
    assert_eq!(live_rows(ch, &db, "crm_address").await, 129);
}

/// Timeline comments (one owner per command: `crm.timeline.comment.list` reads one
/// `ENTITY_ID`), with files, before and after an edit, additions, a deletion and a deleted
/// owner; no COUNT, and the owners' commands go many to a `batch`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_comments_equal_the_portal_before_and_after_changes() {
    let demo = PortalConfig {
        sizes: DataSizes {
            timeline_comments: 140,
            ..small_sizes()
        },
        time_scale: 200.0,
        ..PortalConfig::default()
    };
    let (ch, db, cfg, client, c, conn, _portal) = env("wave2_comments", demo).await;
    let tables = ["crm_timeline_comment"];
    let enabled: Vec<String> = tables.iter().map(|s| s.to_string()).collect();

    c.reset_counters();
    let (catalog, _) = sync_entities(&conn, &cfg, &client, &tables).await;
    let k = c.counters();
    // Every lead, deal, contact and company is asked once (60 + 20 + 30 + 10 owners), 50
    // commands to a batch: the reconcile takes the ids from the full load's listing.
    assert_eq!(k.per_method["crm.timeline.comment.list"], 120, "{k:?}");
    assert_eq!(
        k.count_queries_per_method.get("crm.timeline.comment.list"),
        None,
        "{k:?}"
    );
    let comment = catalog.entity("crm_timeline_comment").unwrap();
    assert_eq!(comment.field("FILES").map(|f| f.multiple), Some(true));
    truth::assert_equal(&truth::compare_all(ch, &db, &c, &catalog, &enabled).await);
    assert_eq!(live_rows(ch, &db, "crm_timeline_comment").await, 140);
    let with_files: u64 = ch
        .query(&format!(
            "SELECT countIf(length(FILES) > 0 AND length(FILES_URL) = length(FILES)) FROM `{db}`.crm_timeline_comment_current"
        ))
        .await
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(with_files > 10, "{with_files}");

    let mut set = Map::new();
    set.insert("COMMENT".into(), json!("Комментарий \"edited\" 'q' 🚀"));
    assert_eq!(
        c.modify_rows("timeline_comment", &[3, 77], &set, None)
            .unwrap(),
        2
    );
    assert_eq!(c.delete_rows("timeline_comment", &[1, 140]).unwrap(), 2);
    c.add_rows("timeline_comment", 3).unwrap();
    // A deleted deal takes its comments with it.
    let before = c.ground_truth("timeline_comment").unwrap().len();
    assert_eq!(c.delete_rows("deal", &[8]).unwrap(), 1);
    let after = c.ground_truth("timeline_comment").unwrap().len();
    assert!(after < before, "deal 8 had comments: {before} -> {after}");
    c.advance_clock(600.0);

    c.reset_counters();
    let (catalog, _) = sync_entities(&conn, &cfg, &client, &tables).await;
    truth::assert_equal(&truth::compare_all(ch, &db, &c, &catalog, &enabled).await);
    assert_eq!(
        live_rows(ch, &db, "crm_timeline_comment").await,
        after as u64
    );
    // The deletions came from the second full load's listing, without an ID pass.
    assert_eq!(c.counters().per_method["crm.timeline.comment.list"], 119);
}

/// Activity bindings (one `crm.activity.binding.list` per activity, keyed by activity and
/// item), before and after a moved binding, additions (a new activity with its bindings), a
/// removed binding and a deleted activity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_bindings_equal_the_portal_before_and_after_changes() {
    let demo = PortalConfig {
        sizes: DataSizes {
            activities: 60,
            ..small_sizes()
        },
        time_scale: 200.0,
        ..PortalConfig::default()
    };
    let (ch, db, cfg, client, c, conn, _portal) = env("wave2_bindings", demo).await;
    let tables = ["crm_activity_binding"];
    let enabled: Vec<String> = tables.iter().map(|s| s.to_string()).collect();

    c.reset_counters();
    let (catalog, _) = sync_entities(&conn, &cfg, &client, &tables).await;
    let k = c.counters();
    // One call per activity (+1 discovery probe): the ids come from the full load's listing.
    assert_eq!(k.per_method["crm.activity.binding.list"], 60 + 1, "{k:?}");
    let binding = catalog.entity("crm_activity_binding").unwrap();
    assert_eq!(binding.fields[0].code, "BINDING_KEY");
    truth::assert_equal(&truth::compare_all(ch, &db, &c, &catalog, &enabled).await);
    assert_eq!(live_rows(ch, &db, "crm_activity_binding").await, 120);

    // A binding moved to another contact is another key: the old one is tombstoned.
    let mut moved = Map::new();
    moved.insert("ENTITY_ID".into(), json!(29));
    assert_eq!(
        c.modify_rows("activity_binding", &[4], &moved, None)
            .unwrap(),
        1
    );
    assert_eq!(c.delete_rows("activity_binding", &[1]).unwrap(), 1);
    assert_eq!(c.add_rows("activity", 1).unwrap(), vec![61]);
    assert_eq!(c.add_rows("activity_binding", 2).unwrap(), vec![121, 122]);
    assert_eq!(c.delete_rows("activity", &[5]).unwrap(), 1);
    c.advance_clock(600.0);

    c.reset_counters();
    let (catalog, _) = sync_entities(&conn, &cfg, &client, &tables).await;
    truth::assert_equal(&truth::compare_all(ch, &db, &c, &catalog, &enabled).await);
    // 60 + 1 added - 1 deleted activities, one pass.
    assert_eq!(c.counters().per_method["crm.activity.binding.list"], 60 + 1);
    // 120 - 1 removed + 2 added - 2 of the deleted activity.
    assert_eq!(live_rows(ch, &db, "crm_activity_binding").await, 119);
}

/// A portal (plan or version) without the product-row, product, address, timeline-comment and
/// activity-binding methods: those tables are reported unavailable with the refusing method,
/// every other second-wave table is still discovered and loads equal to the portal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_product_methods_make_only_those_tables_unavailable() {
    let demo = PortalConfig {
        sizes: small_sizes(),
        time_scale: 200.0,
        missing_methods: vec![
            "crm.item.productrow.fields".into(),
            "crm.item.productrow.list".into(),
            "crm.product.fields".into(),
            "crm.product.list".into(),
            "crm.address.fields".into(),
            "crm.address.list".into(),
            "crm.timeline.comment.fields".into(),
            "crm.timeline.comment.list".into(),
            "crm.activity.binding.list".into(),
        ],
        ..PortalConfig::default()
    };
    let (ch, db, cfg, client, c, conn, _portal) = env("wave2_missing", demo).await;
    let loaded = ["crm_quote", "crm_product_section", "crm_requisite_bank"];
    let (catalog, _) = sync_entities(&conn, &cfg, &client, &loaded).await;
    let refused: Vec<(&str, &str, &str)> = catalog
        .unavailable
        .iter()
        .map(|u| (u.entity.as_str(), u.method.as_str(), u.code.as_str()))
        .collect();
    assert_eq!(
        refused,
        [
            (
                "crm_productrow",
                "crm.item.productrow.fields",
                "ERROR_METHOD_NOT_FOUND"
            ),
            (
                "crm_product",
                "crm.product.fields",
                "ERROR_METHOD_NOT_FOUND"
            ),
            (
                "crm_address",
                "crm.address.fields",
                "ERROR_METHOD_NOT_FOUND"
            ),
            (
                "crm_timeline_comment",
                "crm.timeline.comment.fields",
                "ERROR_METHOD_NOT_FOUND"
            ),
            // No fields method: the list method's probe is what the portal refuses.
            (
                "crm_activity_binding",
                "crm.activity.binding.list",
                "ERROR_METHOD_NOT_FOUND"
            ),
        ]
    );
    assert!(catalog.entity("crm_productrow").is_none() && catalog.entity("crm_product").is_none());
    let enabled: Vec<String> = loaded.iter().map(|s| s.to_string()).collect();
    let mismatches: Vec<_> = truth::compare_all(ch, &db, &c, &catalog, &enabled)
        .await
        .into_iter()
        // The refused tables have no entity, by design.
        .filter(|m| {
            ![
                "crm_productrow",
                "crm_product",
                "crm_address",
                "crm_timeline_comment",
                "crm_activity_binding",
            ]
            .contains(&m.entity.as_str())
        })
        .collect();
    truth::assert_equal(&mismatches);
}

/// A portal without quotes and new-type invoices (an older install: `crm.item.*` answers
/// `NOT_FOUND` for their entityTypeId): those entities and the invoice stage history are
/// reported unavailable; product rows and pipelines of the other types still load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_without_quotes_and_invoices_reports_them_unavailable() {
    let demo = PortalConfig {
        sizes: DataSizes {
            quotes: 0,
            smart_invoices: 0,
            ..small_sizes()
        },
        time_scale: 200.0,
        ..PortalConfig::default()
    };
    let (ch, db, cfg, client, c, conn, _portal) = env("wave2_noinv", demo).await;
    let loaded = ["crm_productrow", "crm_category"];
    let (catalog, _) = sync_entities(&conn, &cfg, &client, &loaded).await;
    let mut refused: Vec<&str> = catalog
        .unavailable
        .iter()
        .map(|u| u.entity.as_str())
        .collect();
    refused.sort_unstable();
    assert_eq!(
        refused,
        [
            "crm_quote",
            "crm_smart_invoice",
            "crm_stagehistory_smart_invoice"
        ]
    );
    let enabled: Vec<String> = loaded.iter().map(|s| s.to_string()).collect();
    truth::assert_equal(&truth::compare_all(ch, &db, &c, &catalog, &enabled).await);
    assert_eq!(live_rows(ch, &db, "crm_productrow").await, 60 * 3 + 20);
}

/// A `sync all` lists a table that is loaded whole, one owner per command (timeline comments,
/// activity bindings), only when its schedule says it is due; naming the table loads it now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_all_lists_per_owner_tables_again_only_when_due() {
    let (ch, db) = common::fresh_database("wave2_due").await;
    let mut demo = PortalConfig {
        sizes: DataSizes {
            timeline_comments: 140,
            activities: 60,
            ..small_sizes()
        },
        time_scale: 200.0,
        ..PortalConfig::default()
    };
    demo.limits.enabled = false;
    let portal = bitrix24_emulator::start(demo, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let c = portal.control().clone();
    let cli = Cli::with(
        &portal.webhook_url(),
        &ch.http_url(),
        &db,
        "[entities.crm_timeline_comment]\nschedule = \"1 HOUR\"\n\
         [entities.crm_activity_binding]\nschedule = \"1 SECOND\"\n",
    );
    let comment_3 = || async {
        ch.query(&format!(
            "SELECT COMMENT FROM `{db}`.crm_timeline_comment_current WHERE ID = 3"
        ))
        .await
        .unwrap()
    };
    let (code, out) = cli.run(&["sync"]).await;
    assert_eq!(code, 0, "{out}");
    // 60 + 20 + 30 + 10 owners.
    assert_eq!(c.counters().per_method["crm.timeline.comment.list"], 120);
    let before = comment_3().await;

    let mut set = Map::new();
    set.insert("COMMENT".into(), json!("edited after the first sync"));
    assert_eq!(
        c.modify_rows("timeline_comment", &[3], &set, None).unwrap(),
        1
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    c.reset_counters();
    let (code, out) = cli.run(&["sync"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("not due") && l.contains("crm_timeline_comment")),
        "{out}"
    );
    let k = c.counters();
    assert_eq!(k.per_method.get("crm.timeline.comment.list"), None, "{k:?}");
    // The bindings' schedule (1 second) has passed: listed again, one call per activity
    // (+1 discovery probe).
    assert_eq!(k.per_method["crm.activity.binding.list"], 60 + 1, "{k:?}");
    assert_eq!(comment_3().await, before);

    c.reset_counters();
    let (code, out) = cli.run(&["sync", "crm_timeline_comment"]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(c.counters().per_method["crm.timeline.comment.list"], 120);
    assert_eq!(comment_3().await.trim(), "edited after the first sync");
}

/// The config's hourly default covers exactly the tables the methods table lists whole, one
/// owner per command.
#[test]
fn the_hourly_default_names_every_table_listed_whole_per_owner() {
    let mut whole: Vec<&str> = b24ch::bitrix::methods::ENTITY_METHODS
        .iter()
        .filter(|(_, key, _)| b24ch::bitrix::spec(key).is_some_and(|s| s.whole_per_owner()))
        .map(|(entity, _, _)| *entity)
        .collect();
    whole.sort();
    let mut listed = b24ch::config::WHOLE_PER_OWNER_TABLES.to_vec();
    listed.sort();
    assert_eq!(whole, listed);
}
