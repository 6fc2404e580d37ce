//! Entities a portal cannot serve (issue 11): a portal without `crm.currency.list` and without
//! stage history of smart processes. Everything else is created and loaded and equals the
//! portal; the refused entities are listed with the portal's own words (catalog, `/v1/meta`,
//! status page, `serve` errors, `b24ch check`, `b24ch sync`); once the portal serves them
//! again, the next rediscovery creates and loads them.
use crate::common;

use std::collections::BTreeSet;

use b24ch::bitrix::governor::GovernorConfig;
use b24ch::bitrix::{AuthConfig, Client, ClientConfig, Governor};
use b24ch::catalog::{Catalog, UnavailableReason};
use b24ch::config::Secret;
use b24ch::encode::Format;
use bitrix24_emulator::{PortalConfig, PortalControl, SmartStageHistory};
use common::cli::Cli;
use common::pull::{Pull, TOKEN, sizes};
use common::truth::{self, Mismatch};

const CURRENCY_LIST: &str = "crm.currency.list";

fn refusing_portal(stage_history: SmartStageHistory) -> PortalConfig {
    PortalConfig {
        sizes: sizes(300),
        time_scale: 200.0,
        missing_methods: vec![CURRENCY_LIST.into()],
        smart_stage_history: stage_history,
        ..PortalConfig::default()
    }
}

/// The stage-history entities of the portal's smart processes that have stages.
fn smart_histories(c: &PortalControl) -> BTreeSet<String> {
    c.tables()
        .into_iter()
        .filter_map(|t| {
            t.strip_prefix("stagehistory_dynamic_")
                .map(|n| format!("crm_stagehistory_dynamic_{n}"))
        })
        .collect()
}

fn unavailable_names(c: &Catalog) -> BTreeSet<String> {
    c.unavailable.iter().map(|u| u.entity.clone()).collect()
}

/// Mismatches, except "no entity for this portal table" for the entities the portal refuses.
fn mismatches_but_refused(all: Vec<Mismatch>, refused: &BTreeSet<String>) -> Vec<Mismatch> {
    all.into_iter()
        .filter(|m| !(refused.contains(&m.entity) && m.actual == "not in the b24ch catalog"))
        .collect()
}

async fn table_exists(p: &Pull, table: &str) -> bool {
    p.q(&format!(
        "SELECT count() FROM system.tables WHERE database = '{}' AND name = '{table}'",
        p.db
    ))
    .await
        == "1"
}

async fn get(p: &Pull, path: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .get(format!("{}{path}", p.serve().url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_path_skips_refused_entities_and_loads_them_once_served() {
    let p = Pull::start(
        "unavail_pull",
        refusing_portal(SmartStageHistory::EntityTypeNotSupported),
        Format::Parquet,
        "",
    )
    .await;
    let histories = smart_histories(p.control());
    assert!(
        !histories.is_empty(),
        "the demo has smart processes with stages"
    );
    let mut refused = histories.clone();
    refused.insert("crm_currency".into());

    // Discovery marked exactly those, with the portal's code and words.
    let cat = p.catalog();
    assert_eq!(unavailable_names(&cat), refused);
    let cur = cat.unavailable("crm_currency").unwrap();
    assert_eq!(cur.reason, UnavailableReason::MethodNotFound);
    assert_eq!(
        (cur.method.as_str(), cur.code.as_str(), cur.message.as_str()),
        (CURRENCY_LIST, "ERROR_METHOD_NOT_FOUND", "Method not found!")
    );
    for h in &histories {
        let u = cat.unavailable(h).unwrap();
        let etid = h.trim_start_matches("crm_stagehistory_dynamic_");
        assert_eq!(u.reason, UnavailableReason::NotSupported, "{h}");
        assert_eq!(u.code, "ENTITY_TYPE_NOT_SUPPORTED", "{h}");
        assert_eq!(
            u.message,
            format!("Entity type DYNAMIC_{etid} is not supported")
        );
        assert!(cat.entity(h).is_none(), "{h} is both available and not");
    }
    for e in [
        "crm_stagehistory_deal",
        "crm_stagehistory_lead",
        "crm_dynamic_128",
        "crm_deal",
    ] {
        assert!(cat.entity(e).is_some(), "{e} must stay available");
    }

    // apply creates everything else; the loads equal the portal.
    let report = p.autopilot().await;
    assert!(report.created_tables.contains(&"crm_deal".to_string()));
    for r in &refused {
        assert!(
            !report.created_tables.contains(r),
            "{r} created: {report:?}"
        );
        assert!(!table_exists(&p, r).await, "{r} has a table");
        assert!(
            !table_exists(&p, &format!("{r}_load")).await,
            "{r} has a load view"
        );
    }
    p.wait_all().await;
    truth::assert_equal(&mismatches_but_refused(p.mismatches().await, &refused));

    // serve: the meta table, the status page and a clear 409 for rows and ids.
    let (status, body) = get(&p, "/v1/meta/unavailable?format=JSON").await;
    assert_eq!(status, 200, "{body}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let listed: BTreeSet<String> = rows
        .iter()
        .map(|r| r["entity"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, refused);
    let row = rows.iter().find(|r| r["entity"] == "crm_currency").unwrap();
    assert_eq!(row["code"], "ERROR_METHOD_NOT_FOUND");
    assert_eq!(row["message"], "Method not found!");
    assert_eq!(row["reason"], "method_not_found");
    for path in ["rows", "ids"] {
        let (status, body) = get(&p, &format!("/v1/entities/crm_currency/{path}")).await;
        assert_eq!(status, 409, "{body}");
        assert!(
            body.contains("crm.currency.list answered ERROR_METHOD_NOT_FOUND: Method not found!"),
            "{body}"
        );
        assert!(
            body.contains("[entities.crm_currency] enabled = false"),
            "{body}"
        );
    }
    let h = histories.iter().next().unwrap();
    let (status, body) = get(&p, &format!("/v1/entities/{h}/rows")).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("is not supported"), "{body}");
    let (_, page) = get(&p, "/status/").await;
    let entry = page
        .split("<li class=\"problem warning\" data-subject=\"crm_currency\">")
        .nth(1)
        .expect("status page lists crm_currency among the problems");
    assert!(
        entry.contains("not served by the portal") && entry.contains("ERROR_METHOD_NOT_FOUND"),
        "status page entry lacks the portal's words: {entry}"
    );

    // The portal serves them again: the next autopilot pass creates and loads them.
    p.control().set_method_available(CURRENCY_LIST, true);
    p.control()
        .set_smart_stage_history(SmartStageHistory::Supported);
    let report = p.autopilot().await;
    for r in &refused {
        assert!(
            report.created_tables.contains(r),
            "{r} not created: {report:?}"
        );
    }
    assert!(p.catalog().unavailable.is_empty());
    p.wait_all().await;
    truth::assert_equal(&p.mismatches().await);
    let currencies = p
        .q(&format!(
            "SELECT count() FROM `{}`.crm_currency_current",
            p.db
        ))
        .await;
    assert_ne!(currencies, "0");
    let (_, body) = get(&p, "/v1/meta/unavailable?format=JSON").await;
    assert_eq!(body.trim(), "[]");

    // Refused again: the existing table and its views are left as they are, not removed.
    p.control().set_method_available(CURRENCY_LIST, false);
    let report = p.autopilot().await;
    assert!(
        !report
            .removed_entities
            .contains(&"crm_currency".to_string()),
        "{report:?}"
    );
    assert!(table_exists(&p, "crm_currency_load").await);
    let comment = p
        .q(&format!(
            "SELECT comment FROM system.tables WHERE database = '{}' AND name = 'crm_currency'",
            p.db
        ))
        .await;
    assert!(!comment.contains("was removed"), "{comment}");
    assert_eq!(
        p.q(&format!(
            "SELECT count() FROM `{}`.crm_currency_current",
            p.db
        ))
        .await,
        currencies
    );
}

fn client(webhook: &str) -> std::sync::Arc<Client> {
    let cfg = ClientConfig::new(AuthConfig::Webhook {
        url: Secret::new(webhook.to_string()),
    });
    let gov = Governor::new(GovernorConfig {
        clock_scale: 200.0,
        ..GovernorConfig::standard()
    });
    std::sync::Arc::new(Client::new(cfg, gov).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_all_skips_refused_entities_and_check_names_them() {
    let (ch, db) = common::fresh_database("unavail_sync").await;
    let mut cfg = refusing_portal(SmartStageHistory::LegacyZero);
    cfg.limits.enabled = false;
    let portal = bitrix24_emulator::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let c = portal.control().clone();
    let cli = Cli::new(&portal.webhook_url(), &ch.http_url(), &db);
    let histories = smart_histories(&c);
    let mut refused = histories.clone();
    refused.insert("crm_currency".into());

    // `sync all`: exit 0, a warning naming each refused entity in the portal's words.
    let (code, out) = cli.run(&["sync"]).await;
    assert_eq!(code, 0, "{out}");
    for r in &refused {
        assert!(
            out.lines()
                .any(|l| l.contains("WARN") && l.contains(&format!("{r} is unavailable"))),
            "no warning for {r}: {out}"
        );
    }
    assert!(
        out.contains("crm.currency.list answered ERROR_METHOD_NOT_FOUND: Method not found!"),
        "{out}"
    );
    assert!(out.contains("answered 0: DYNAMIC_"), "{out}");
    let catalog = b24ch::catalog::discover(&client(&portal.webhook_url()))
        .await
        .unwrap();
    assert_eq!(unavailable_names(&catalog), refused);
    let loaded: Vec<String> = catalog.entities.iter().map(|e| e.name.clone()).collect();
    truth::assert_equal(&mismatches_but_refused(
        truth::compare_all(ch, &db, &c, &catalog, &loaded).await,
        &refused,
    ));

    // Asked for by name: a failure in the portal's words, with what to do.
    let (code, out) = cli.run(&["sync", "crm_currency"]).await;
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("crm_currency is unavailable on this portal"),
        "{out}"
    );
    assert!(
        out.contains("ERROR_METHOD_NOT_FOUND: Method not found!"),
        "{out}"
    );
    assert!(out.contains("enabled = false"), "{out}");

    // `check`: a warn line per refused entity, not a failure.
    let (code, out) = cli.run(&["check"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "warn entity crm_currency: unavailable: Bitrix24 crm.currency.list answered ERROR_METHOD_NOT_FOUND: Method not found!"
        ),
        "{out}"
    );
    for h in &histories {
        let etid = h.trim_start_matches("crm_stagehistory_dynamic_");
        assert!(
            out.contains(&format!(
                "warn entity {h}: unavailable: Bitrix24 crm.stagehistory.list answered 0: DYNAMIC_{etid} entity is not supported"
            )),
            "{out}"
        );
    }

    // A scope taken from the webhook: check says which one to add.
    c.set_scope_denied("department", true);
    let (code, out) = cli.run(&["check"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warn entity department: unavailable: Bitrix24 department.get answered insufficient_scope"),
        "{out}"
    );
    assert!(out.contains("add the `department` scope"), "{out}");
    c.set_scope_denied("department", false);

    // Served again: the next sync creates and loads them; no warning left.
    c.set_method_available(CURRENCY_LIST, true);
    c.set_smart_stage_history(SmartStageHistory::Supported);
    let (code, out) = cli.run(&["sync"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("is unavailable"), "{out}");
    let catalog = b24ch::catalog::discover(&client(&portal.webhook_url()))
        .await
        .unwrap();
    assert!(catalog.unavailable.is_empty());
    let loaded: Vec<String> = catalog.entities.iter().map(|e| e.name.clone()).collect();
    truth::assert_equal(&truth::compare_all(ch, &db, &c, &catalog, &loaded).await);
    portal.shutdown().await;
}
