//! The adversary (issue 6): the whole pull pipeline runs while the portal injects 503, 429,
//! 500, slow responses past the client timeout, connection resets mid-body and truncated
//! JSON at 5–20 % rates, while `serve` is killed and restarted mid-load and ClickHouse is
//! restarted mid-refresh. After the faults stop and one clean cycle runs: every `_current`
//! view equals the portal cell by cell, no live row has a tombstone, and the portal never
//! blocked the webhook for operating time because of b24ch.
use crate::common;

use std::sync::Arc;
use std::time::Duration;

use b24ch::clickhouse::Connection;
use b24ch::commands::serve;
use b24ch::config::from_toml_str;
use b24ch::encode::Format;
use b24ch::portal;
use bitrix24_emulator::{Fault, FaultKind, PortalConfig};
use common::pull::{Pull, TOKEN, free_port, sizes, wait_until};
use common::truth;
use local_clickhouse::{LocalClickHouse, LocalClickHouseOptions};
use serde_json::Map;

fn fault(kind: FaultKind, probability: f64) -> Fault {
    Fault {
        kind,
        method: None,
        probability: Some(probability),
        remaining: None,
    }
}

fn inject_all(p: &Pull) {
    let c = p.control();
    for f in [
        fault(FaultKind::QueryLimitExceeded, 0.10),
        fault(FaultKind::OperationTimeLimit, 0.05),
        fault(FaultKind::InternalError, 0.10),
        fault(FaultKind::Slow { delay_ms: 4_000 }, 0.05),
        fault(FaultKind::ConnectionReset, 0.05),
        fault(FaultKind::TruncatedJson, 0.05),
    ] {
        c.inject_fault(f);
    }
}

async fn start_ch(dir: &std::path::Path, port: u16) -> &'static LocalClickHouse {
    let mut opts = LocalClickHouseOptions::new(dir);
    opts.http_port = port;
    let ch = LocalClickHouse::start(opts).await.unwrap();
    Box::leak(Box::new(ch))
}

/// Refreshes every view of the current entities once, ignoring failures (faults are on).
async fn rough_cycle(p: &Pull) {
    for suffix in ["_load", "_reconcile"] {
        for e in p.entities() {
            let _ =
                p.ch.query(&format!("SYSTEM REFRESH VIEW `{}`.`{e}{suffix}`", p.db))
                    .await;
        }
    }
    for e in p.entities() {
        for suffix in ["_load", "_reconcile"] {
            let _ = p.wait_view(&format!("{e}{suffix}")).await;
        }
    }
}

/// The next few `batch` calls answer slowly (below the 2 s client timeout).
fn slow_next_batches(p: &Pull) {
    p.control().inject_fault(Fault {
        kind: FaultKind::Slow { delay_ms: 1_500 },
        method: Some("batch".into()),
        probability: None,
        remaining: Some(3),
    });
}

/// (loads started, loads finished) of an entity in the running serve.
fn load_state(p: &Pull, entity: &str) -> (Option<u64>, u64) {
    p.serve()
        .state
        .stats
        .entities()
        .into_iter()
        .find(|s| s.entity == entity)
        .map(|s| (s.last_started_ms, s.loads_ok + s.loads_failed))
        .unwrap_or((None, 0))
}

/// A load started after `before` and has not finished.
fn in_flight(now: &(Option<u64>, u64), before: &(Option<u64>, u64)) -> bool {
    now.0 > before.0 && now.1 == before.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_restarts_then_one_clean_cycle_ends_in_equality() {
    let dir = common::test_data_dir("faults");
    let ch_port = free_port();
    let ch = start_ch(&dir, ch_port).await;
    let db = "faults".to_string();
    ch.query(&format!("CREATE DATABASE `{db}`")).await.unwrap();
    let port = free_port();
    // Timeline comments and activity bindings cost one command per owner or activity (2,500 and
    // 500 a pass here: 316 s instead of 180 s for this test); their listers' fault handling is
    // the product rows' and the Kanban stages' (both loaded here), and wave2_crm tests them.
    let mut config = from_toml_str(&format!(
        "[clickhouse]\nurl = \"{}\"\ndatabase = \"{db}\"\n\
         [limits]\nrequest_timeout_secs = 2\n\
         [proxy]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n\
         [entities.default]\nschedule = \"1 WEEK\"\nreconcile_schedule = \"1 WEEK\"\nreconcile_safety = \"1 SECOND\"\nretry_backoff = \"1 SECOND\"\n\
         [entities.crm_timeline_comment]\nenabled = false\n[entities.crm_activity_binding]\nenabled = false\n",
        ch.http_url()
    ))
    .unwrap();
    let portal_cfg = PortalConfig {
        sizes: sizes(1_000),
        time_scale: 200.0,
        ..PortalConfig::default()
    };
    let portal = portal::connect(&mut config, portal_cfg).await.unwrap();
    let config = Arc::new(config);
    let serve = serve::start(config.clone(), &portal).await.unwrap();
    let conn = Connection::connect(&config.clickhouse)
        .unwrap()
        .with_secret(&config.proxy.token);
    let mut p = Pull {
        ch,
        db,
        config,
        portal,
        serve: Some(serve),
        conn,
        format: Format::Parquet,
    };

    let t0 = std::time::Instant::now();
    // Faults from the very first load on.
    inject_all(&p);
    p.autopilot().await;
    rough_cycle(&p).await;

    eprintln!(
        "fault_suite: first loads under faults after {:?}",
        t0.elapsed()
    );
    // The portal changes while faults go on.
    let c = p.control().clone();
    let mut set = Map::new();
    set.insert(
        "TITLE".into(),
        serde_json::json!("после сбоя \"fault\" 'x'"),
    );
    c.modify_rows("deal", &[2, 3, 500, 1999], &set, None)
        .unwrap();
    c.delete_rows("deal", &[10, 11, 12]).unwrap();
    c.delete_rows("lead", &[7]).unwrap();
    rough_cycle(&p).await;

    // b24ch killed mid-load and started again: the next batches are slow, so the load is
    // surely in flight (started, not finished) when serve stops.
    slow_next_batches(&p);
    let before = load_state(&p, "crm_deal");
    p.q(&format!("SYSTEM REFRESH VIEW `{}`.crm_deal_load", p.db))
        .await;
    wait_until(
        "the crm_deal load in flight",
        Duration::from_secs(60),
        || async { in_flight(&load_state(&p, "crm_deal"), &before) },
    )
    .await;
    p.stop_serve();
    p.restart_serve().await;
    eprintln!("fault_suite: serve restarted after {:?}", t0.elapsed());

    // ClickHouse restarted mid-refresh (same data directory and port), again with the
    // refresh running and its load in flight in serve.
    slow_next_batches(&p);
    let before = load_state(&p, "crm_lead");
    p.q(&format!("SYSTEM REFRESH VIEW `{}`.crm_lead_load", p.db))
        .await;
    wait_until(
        "the crm_lead load in flight",
        Duration::from_secs(60),
        || async {
            in_flight(&load_state(&p, "crm_lead"), &before)
                && p.refresh_state("crm_lead_load")
                    .await
                    .starts_with("Running")
        },
    )
    .await;
    p.ch.request_stop();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while p.ch.is_running() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!p.ch.is_running(), "ClickHouse did not stop");
    p.ch = start_ch(&dir, ch_port).await;
    // The server loads tables in the background after a start: wait until every refreshable
    // view is back in the refresh system before the test refreshes them.
    let views = 2 * p.entities().len();
    let loaded = format!(
        "SELECT count() FROM system.view_refreshes WHERE database = '{}'",
        p.db
    );
    wait_until(
        "the refreshable views loaded after the restart",
        Duration::from_secs(120),
        || async { p.ch.query(&loaded).await.unwrap_or_default().trim() == views.to_string() },
    )
    .await;
    rough_cycle(&p).await;

    eprintln!("fault_suite: ClickHouse restarted after {:?}", t0.elapsed());
    // Faults stop; one clean cycle.
    let injected = c.counters().faults_by_kind.clone();
    c.clear_faults();
    p.cycle().await;

    eprintln!("fault_suite: clean cycle done after {:?}", t0.elapsed());
    truth::assert_equal(&p.mismatches().await);

    // No tombstone for a row the portal still has, in every entity with a portal table; and
    // the rows deleted under faults (deals and leads) do have theirs.
    let plans = b24ch::clickhouse::apply::plans(&p.config, &p.catalog(), p.format);
    let mut checked = Vec::new();
    for table in c.tables() {
        let e = truth::entity_for_table(&table);
        let Some(plan) = plans.iter().find(|pl| pl.entity == e) else {
            continue;
        };
        let rows = c.ground_truth(&table).unwrap();
        let live: std::collections::BTreeSet<String> = rows
            .iter()
            .filter_map(|r| {
                r.get(&plan.primary_key)
                    .map(|v| v.to_string().trim_matches('"').to_string())
            })
            .collect();
        assert_eq!(
            live.len(),
            rows.len(),
            "{e}: rows without {}",
            plan.primary_key
        );
        let dead = p
            .q(&format!(
                "SELECT DISTINCT toString(`{}`) FROM `{}`.`{e}` WHERE _is_deleted = 1",
                plan.primary_key, p.db
            ))
            .await;
        let dead: Vec<&str> = dead.lines().filter(|l| !l.is_empty()).collect();
        for id in &dead {
            assert!(!live.contains(*id), "{e}: live row {id} has a tombstone");
        }
        let expected: &[&str] = match e.as_str() {
            "crm_deal" => &["10", "11", "12"],
            "crm_lead" => &["7"],
            _ => &[],
        };
        for id in expected {
            assert!(dead.contains(id), "{e}: deleted row {id} has no tombstone");
        }
        checked.push(e);
    }
    for e in ["crm_deal", "crm_lead", "crm_contact", "user", "department"] {
        assert!(
            checked.iter().any(|c| c == e),
            "{e} not checked for tombstones: {checked:?}"
        );
    }

    // Every fault kind really fired, and the only 429s were the injected ones.
    let counters = c.counters();
    for kind in [
        "query_limit_exceeded",
        "operation_time_limit",
        "internal_error",
        "slow",
        "connection_reset",
        "truncated_json",
    ] {
        assert!(
            injected.get(kind).copied().unwrap_or(0) > 0,
            "{kind} never fired: {injected:?}"
        );
    }
    let injected_429 = counters
        .faults_by_kind
        .get("operation_time_limit")
        .copied()
        .unwrap_or(0);
    assert_eq!(
        counters.operation_time_limit, injected_429,
        "the portal blocked a method for operating time because of b24ch"
    );
}
