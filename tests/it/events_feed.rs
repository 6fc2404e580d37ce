//! Bitrix24 events as a change feed, against the demo portal and a real ClickHouse:
//! - offline queue, push: edits, additions and deletions reach `_current` cell by cell after
//!   one lease, with no ID scan and a handful of requests;
//! - crash safety: `b24ch events` killed (SIGKILL) between writing the rows and clearing the
//!   queue; the next run reads its lease again, nothing is lost, the duplicates are harmless;
//! - a read whose answer was lost (the portal leased, the client never learned the lease):
//!   the lease is found and adopted, nothing is lost;
//! - a burst of 10,000 changes at ≤ 1 portal request per 50 changed rows;
//! - online events into `serve` (`POST /v1/events`, pull mode): the portal's own delivery with
//!   the right application token is applied; a wrong token is refused and writes nothing.
use crate::common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use b24ch::bitrix::Client;
use b24ch::clickhouse::Connection;
use b24ch::clickhouse::apply::{self, Mode};
use b24ch::clickhouse::plan::selected_columns;
use b24ch::commands::serve;
use b24ch::config::{Config, from_toml_str};
use b24ch::encode::Format;
use b24ch::events::feed::Feed;
use b24ch::events::sink;
use b24ch::pipeline::EntityJob;
use b24ch::sync::{self, Progress};
use bitrix24_emulator::{DataSizes, Fault, FaultKind, PortalConfig, PortalControl, RunningPortal};
use common::pull::{Pull, wait_until};
use common::truth;
use local_clickhouse::LocalClickHouse;
use serde_json::{Map, json};

const SCALE: f64 = 50.0;

fn sizes(deals: u64) -> DataSizes {
    DataSizes {
        deals,
        leads: 20,
        contacts: 40,
        companies: 10,
        ..common::pull::sizes(20)
    }
}

/// The config of an OAuth app on `p` loading `entities`, writing into `db`.
fn config_toml(
    p: &RunningPortal,
    ch: &LocalClickHouse,
    db: &str,
    state: &Path,
    entities: &[&str],
) -> String {
    let o = p.control().config().oauth;
    let mut t = format!(
        "state_dir = {:?}\n[portal.oauth]\nportal_url = \"{base}\"\noauth_server = \"{base}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\naccess_token = \"{}\"\nrefresh_token = \"{}\"\n\n[clickhouse]\nurl = \"{}\"\ndatabase = \"{db}\"\n\n[events]\noffline = true\npoll_interval = \"1 SECOND\"\n\n[entities.default]\nenabled = false\n",
        state.display().to_string(),
        o.client_id,
        o.client_secret,
        o.access_token,
        o.refresh_token,
        ch.http_url(),
        base = p.base_url(),
    );
    for e in entities {
        t.push_str(&format!("\n[entities.{e}]\nenabled = true\n"));
    }
    t
}

struct Env {
    ch: &'static LocalClickHouse,
    db: String,
    portal: RunningPortal,
    config: Arc<Config>,
    client: Arc<Client>,
    conn: Connection,
    state: tempfile::TempDir,
}

impl Env {
    async fn start(prefix: &str, deals: u64, entities: &[&str]) -> Env {
        Env::start_scaled(prefix, deals, entities, SCALE).await
    }

    /// With the portal's clock `scale` times real time (the governor told so too).
    async fn start_scaled(prefix: &str, deals: u64, entities: &[&str], scale: f64) -> Env {
        let (ch, db) = common::fresh_database(prefix).await;
        let demo = bitrix24_emulator::start(
            PortalConfig {
                sizes: sizes(deals),
                time_scale: scale,
                limits: bitrix24_emulator::LimitsConfig {
                    enabled: std::env::var("XLIM").is_err(),
                    ..Default::default()
                },
                ..PortalConfig::default()
            },
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let state = tempfile::tempdir().unwrap();
        let config = from_toml_str(&config_toml(&demo, ch, &db, state.path(), entities)).unwrap();
        let mut governor = b24ch::bitrix::governor::GovernorConfig::from_limits(&config.limits);
        governor.clock_scale = scale;
        let client = Arc::new(
            Client::new(
                b24ch::bitrix::ClientConfig::from_config(&config).unwrap(),
                b24ch::bitrix::Governor::new(governor),
            )
            .unwrap(),
        );
        let config = Arc::new(config);
        let conn = Connection::connect(&config.clickhouse).unwrap();
        Env {
            ch,
            db,
            portal: demo,
            config,
            client,
            conn,
            state,
        }
    }

    fn control(&self) -> &PortalControl {
        self.portal.control()
    }

    /// A first complete load of every enabled entity (push), as `sync` does.
    async fn initial_load(&self) {
        let catalog = b24ch::catalog::discover(&self.client).await.unwrap();
        apply::apply_mode(
            &self.conn,
            &self.config,
            &catalog,
            Format::Parquet,
            Mode::Push,
        )
        .await
        .unwrap();
        let t = apply::target(&self.config);
        for plan in apply::plans(&self.config, &catalog, Format::Parquet) {
            let e = catalog.entity(&plan.entity).unwrap().clone();
            let job = Arc::new(
                EntityJob::new(
                    e.clone(),
                    selected_columns(&e, &self.config.entity(&e.name)),
                )
                .unwrap(),
            );
            sync::load(
                &self.conn,
                &t,
                self.client.clone(),
                job,
                &Progress::hidden(&e.name),
            )
            .await
            .unwrap();
        }
    }

    async fn feed(&self) -> Feed {
        b24ch::commands::events::prepare(
            self.config.clone(),
            self.client.clone(),
            self.conn.clone(),
            sink::Mode::Push,
        )
        .await
        .unwrap()
    }

    /// `_current` of `entity` against the portal, cell by cell.
    async fn assert_equal(&self, entity: &str, table: &str) {
        let c = self.control();
        let catalog = c.catalog();
        let mismatches = truth::compare_entity(
            self.ch,
            &self.db,
            entity,
            &c.ground_truth(table).unwrap(),
            &truth::column_names(&catalog, table),
            &truth::file_fields(&catalog, table),
        )
        .await;
        truth::assert_equal(&mismatches);
    }

    async fn count(&self, sql: &str) -> u64 {
        self.ch
            .query(&sql.replace("{db}", &self.db))
            .await
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

fn title(t: &str) -> Map<String, serde_json::Value> {
    let mut set = Map::new();
    set.insert("TITLE".into(), json!(t));
    set
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_events_bring_edits_additions_and_deletions_without_an_id_scan() {
    let env = Env::start("events_push", 200, &["crm_deal", "crm_contact"]).await;
    env.initial_load().await;
    let feed = env.feed().await;
    let c = env.control();
    let bound: Vec<String> = c.event_handlers().iter().map(|h| h.event.clone()).collect();
    assert!(bound.contains(&"ONCRMDEALDELETE".to_string()), "{bound:?}");
    assert!(
        bound.contains(&"ONCRMCONTACTUPDATE".to_string()),
        "{bound:?}"
    );
    assert!(
        !bound.iter().any(|e| e.starts_with("ONCRMLEAD")),
        "leads are not loaded: {bound:?}"
    );

    assert_eq!(
        c.modify_rows("deal", &[3, 5, 8], &title("edited \"by\" event 🚀"), None)
            .unwrap(),
        3
    );
    assert_eq!(
        c.modify_rows("deal", &[3], &title("edited twice"), None)
            .unwrap(),
        1
    );
    assert_eq!(c.delete_rows("deal", &[13, 21]).unwrap(), 2);
    let added = c.add_rows("deal", 2).unwrap();
    let mut name = Map::new();
    name.insert("NAME".into(), json!("Контакт 'edited'"));
    assert_eq!(c.modify_rows("contact", &[4], &name, None).unwrap(), 1);
    c.reset_counters();
    let r = feed.cycle().await.unwrap();
    // 3 deal edits (deal 3 twice: one record), 2 deletions, 2 additions, 1 contact.
    assert_eq!(r.events, 8, "{r:?}");
    assert_eq!(r.applied.tombstones, 2, "{r:?}");
    assert_eq!(r.applied.rows, 6, "{r:?}");
    env.assert_equal("crm_deal", "deal").await;
    env.assert_equal("crm_contact", "contact").await;
    for id in added {
        assert_eq!(
            env.count(&format!(
                "SELECT count() FROM `{{db}}`.crm_deal_current WHERE ID = {id}"
            ))
            .await,
            1
        );
    }
    feed.settle().await.unwrap();
    let counters = c.counters();
    // get + (deal list, deal companion) + (contact list, contact companion) + clear; no ID scan.
    assert!(counters.requests_total <= 6, "{counters:?}");
    assert!(c.offline_queue().is_empty(), "cleared");
    // A quiet queue: one request, nothing written.
    c.reset_counters();
    let r = feed.cycle().await.unwrap();
    assert_eq!((r.events, c.counters().requests_total), (0, 1));
}

/// While changes trickle in, one request per read carries the clear of the last lease, the
/// next lease and the rows the lately changed entities modified since the last read; what
/// those pages lack (more rows than they hold, a row deleted or changed between the two
/// methods' pages) is fetched by ID. Every state ends equal to the portal, cell by cell.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickle_of_changes_costs_one_request_per_read() {
    let env = Env::start("events_trickle", 400, &["crm_deal", "crm_contact"]).await;
    env.initial_load().await;
    let feed = env.feed().await;
    let c = env.control();
    let edit = |ids: &[u64], t: &str| {
        assert_eq!(
            c.modify_rows("deal", ids, &title(t), None).unwrap(),
            ids.len()
        );
    };
    // The first changes after a quiet spell: the deals' rows are fetched by ID (both methods'
    // pages in one request).
    // Each change comes a while before the next read (the pages reach 2 s before the last
    // read: rows changed just before it are read again).
    edit(&[1, 2, 3], "first");
    c.advance_clock(10.0);
    c.reset_counters();
    let r = feed.cycle().await.unwrap();
    assert_eq!((r.applied.rows, r.rows_with_read), (3, 0), "{r:?}");
    assert_eq!(c.counters().requests_total, 2, "{:?}", c.counters());
    // Now deals are known to change: their changed rows come with the next read.
    let ids: Vec<u64> = (10..40).collect();
    edit(&ids, "trickle");
    c.delete_rows("deal", &[41]).unwrap();
    // A slow flow (30 rows over 100 s): the next read's pages are sized for what it brought,
    // however long (at this clock scale) the checks below take.
    c.advance_clock(100.0);
    c.reset_counters();
    let r = feed.cycle().await.unwrap();
    assert_eq!(c.counters().requests_total, 1, "{:?}", c.counters());
    assert_eq!((r.events, r.rows_with_read), (31, 30), "{r:?}");
    assert_eq!(r.applied.tombstones, 1, "{r:?}");
    env.assert_equal("crm_deal", "deal").await;
    // More rows than the pages planned from the last flow (30 rows: two pages of 50) hold:
    // the rest by ID, both methods' pages in one more request.
    let ids: Vec<u64> = (100..220).collect();
    edit(&ids, "more");
    c.advance_clock(10.0);
    c.reset_counters();
    let r = feed.cycle().await.unwrap();
    assert_eq!((r.applied.rows, r.rows_with_read), (120, 100), "{r:?}");
    assert_eq!(c.counters().requests_total, 2, "{:?}", c.counters());
    env.assert_equal("crm_deal", "deal").await;
    // A contact changes for the first time: by ID, beside the deals' pages.
    let mut name = Map::new();
    name.insert("NAME".into(), json!("trickled"));
    c.modify_rows("contact", &[5], &name, None).unwrap();
    edit(&[300], "last");
    c.advance_clock(10.0);
    let r = feed.cycle().await.unwrap();
    assert_eq!((r.applied.rows, r.rows_with_read), (2, 1), "{r:?}");
    feed.settle().await.unwrap();
    assert!(c.offline_queue().is_empty());
    env.assert_equal("crm_deal", "deal").await;
    env.assert_equal("crm_contact", "contact").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_whose_queue_keeps_no_data_falls_back_to_loads_and_reconciles() {
    let env = Env::start("events_nodata", 120, &["crm_deal"]).await;
    env.initial_load().await;
    let feed = env.feed().await;
    let c = env.control();
    let mut s = c.event_settings();
    s.offline_event_data = bitrix24_emulator::OfflineEventData::Empty;
    c.set_event_settings(s);
    c.modify_rows("deal", &[2, 9], &title("no data in the queue"), None)
        .unwrap();
    c.delete_rows("deal", &[4]).unwrap();
    // The reconcile leaves rows loaded within reconcile_safety (5 minutes) alone: the initial
    // load was just now, so let the deletion be judged on the next pass of the safety net.
    let r = feed.cycle().await.unwrap();
    assert_eq!((r.applied.loads, r.applied.reconciles), (1, 1), "{r:?}");
    assert_eq!(
        env.count(
            "SELECT count() FROM `{db}`.crm_deal_current WHERE TITLE = 'no data in the queue'"
        )
        .await,
        2
    );
    feed.settle().await.unwrap();
    assert!(c.offline_queue().is_empty());
}

/// The feed follows the catalog it is given (`serve` hands it the autopilot's): a smart
/// process created while running gets its events bound at the next cycle and its changes
/// applied. Records of an entity the portal keeps refusing are set aside with
/// `event.offline.error` after three attempts instead of holding up the queue, while the other
/// entities' changes go on; the entity's scheduled load catches up once the portal serves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_binds_new_smart_processes_and_sets_aside_records_that_keep_failing() {
    const ETID: u32 = 150;
    let env = Env::start(
        "events_live",
        60,
        &["crm_deal", "crm_contact", "crm_dynamic_150"],
    )
    .await;
    env.initial_load().await;
    let c = env.control();
    let discovered = Arc::new(b24ch::catalog::discover(&env.client).await.unwrap());
    assert!(discovered.entity("crm_dynamic_150").is_none());
    let served = Arc::new(std::sync::Mutex::new(discovered));
    let source = served.clone();
    let feed = b24ch::commands::events::prepare_on(
        env.config.clone(),
        env.client.clone(),
        env.conn.clone(),
        sink::Mode::Push,
        Arc::new(move || source.lock().unwrap().clone()),
    )
    .await
    .unwrap();
    let r = feed.cycle().await.unwrap();
    assert!(r.newly_bound.is_empty(), "bound at the start: {r:?}");

    // A smart process appears; the autopilot's pass discovers it and creates its table.
    assert_eq!(
        c.add_smart_process(Some(ETID), "Поставки", 4).unwrap(),
        ETID
    );
    *served.lock().unwrap() = Arc::new(b24ch::catalog::discover(&env.client).await.unwrap());
    env.initial_load().await;
    c.reset_counters();
    let r = feed.cycle().await.unwrap();
    assert_eq!(
        r.newly_bound,
        [
            "ONCRMDYNAMICITEMADD_150",
            "ONCRMDYNAMICITEMUPDATE_150",
            "ONCRMDYNAMICITEMDELETE_150"
        ],
        "{r:?}"
    );
    let r = feed.cycle().await.unwrap();
    assert!(r.newly_bound.is_empty(), "nothing new: {r:?}");
    let items: Vec<u64> = c
        .ground_truth("dynamic_150")
        .unwrap()
        .iter()
        .filter_map(|row| {
            let id = row.get("ID").or_else(|| row.get("id"))?;
            id.as_u64().or_else(|| id.as_str()?.parse().ok())
        })
        .collect();
    assert_eq!(items.len(), 4);
    c.modify_rows(
        "dynamic_150",
        &items[..2],
        &title("changed after binding"),
        None,
    )
    .unwrap();
    c.delete_rows("dynamic_150", &items[3..]).unwrap();
    let r = feed.cycle().await.unwrap();
    assert_eq!(
        (r.events, r.applied.rows, r.applied.tombstones),
        (3, 2, 1),
        "{r:?}"
    );
    env.assert_equal("crm_dynamic_150", "dynamic_150").await;

    // The portal stops serving the deals' companion method: their records keep failing.
    c.set_method_available("crm.deal.list", false);
    c.modify_rows("deal", &[3], &title("stuck behind a refusal"), None)
        .unwrap();
    let mut name = Map::new();
    name.insert("NAME".into(), json!("goes on"));
    c.modify_rows("contact", &[4], &name, None).unwrap();
    for attempt in 1..b24ch::events::feed::ATTEMPTS_BEFORE_SETTING_ASIDE {
        let e = feed.cycle().await.unwrap_err();
        assert!(e.keeps_failing(), "attempt {attempt}: {e}");
        assert_eq!(c.offline_queue().len(), 2, "the lease is kept");
    }
    let r = feed.cycle().await.unwrap();
    assert_eq!((r.events, r.set_aside, r.applied.rows), (2, 1, 1), "{r:?}");
    env.assert_equal("crm_contact", "contact").await;
    feed.settle().await.unwrap();
    let left = c.offline_queue();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        left[0].error && left[0].event_name == "ONCRMDEALUPDATE",
        "{left:?}"
    );
    let r = feed.cycle().await.unwrap();
    assert_eq!(r.events, 0, "set-aside records are not leased again: {r:?}");

    // The safety net: once the portal serves the method again, the next load catches up.
    c.set_method_available("crm.deal.list", true);
    env.initial_load().await;
    env.assert_equal("crm_deal", "deal").await;
}

fn b24ch_bin() -> &'static str {
    env!("CARGO_BIN_EXE_b24ch")
}

/// Where the docs leave the queue open, b24ch is right either way: `TIMESTAMP_X` in the site's
/// format without an offset (b24ch cannot time the flow by it, so pages are sized from the
/// reads alone), and an `event.offline.list` that ignores its filter (every record listed;
/// the leases are picked out client-side). Edits still arrive, a lost lease is still adopted,
/// and the table equals the portal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_format_times_and_an_unfiltered_list_change_nothing_that_is_written() {
    let env = Env::start("events_variants", 200, &["crm_deal"]).await;
    env.initial_load().await;
    let c = env.control();
    let mut s = c.event_settings();
    s.offline_timestamp = bitrix24_emulator::OfflineTimestamp::Site;
    s.offline_list_filter = false;
    c.set_event_settings(s);
    let mut feed = env.feed().await;
    feed.orphan_check = Duration::from_secs(1);
    feed.cycle().await.unwrap();
    // Unleased records in the queue too: the unfiltered list shows them, they are no lease.
    assert_eq!(
        c.modify_rows("deal", &[1, 2, 3], &title("lost"), None)
            .unwrap(),
        3
    );
    c.inject_fault(Fault {
        kind: FaultKind::ConnectionReset,
        method: Some("batch".into()),
        probability: None,
        remaining: Some(1),
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(feed.cycle().await.unwrap().events, 0);
    let mut rows = 0;
    for k in 0..6 {
        assert_eq!(
            c.modify_rows("deal", &[10 + k], &title("later"), None)
                .unwrap(),
            1
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = feed.cycle().await.unwrap();
        rows += r.applied.rows;
    }
    // One more read, for the last edit if the last cycle was the adoption.
    tokio::time::sleep(Duration::from_millis(100)).await;
    rows += feed.cycle().await.unwrap().applied.rows;
    assert_eq!(rows, 9, "3 adopted and 6 read as they came");
    feed.settle().await.unwrap();
    assert!(c.offline_queue().is_empty(), "{:?}", c.offline_queue());
    env.assert_equal("crm_deal", "deal").await;
}

/// Quotes, catalog products and tasks announce their changes too (tasks in their own shape:
/// the id in `FIELDS_AFTER`, or `FIELDS_BEFORE` on deletion): edits and deletions arrive from
/// the queue, and each table equals the portal cell by cell.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotes_products_and_tasks_follow_their_change_events() {
    let env = Env::start("events_wave2", 20, &["crm_quote", "crm_product", "task"]).await;
    env.initial_load().await;
    let feed = env.feed().await;
    let c = env.control();
    let set = |field: &str, v: &str| {
        let mut m = Map::new();
        m.insert(field.into(), json!(v));
        m
    };
    assert_eq!(
        c.modify_rows("quote", &[1, 2], &set("TITLE", "q"), None)
            .unwrap(),
        2
    );
    assert_eq!(
        c.modify_rows("product", &[1], &set("NAME", "p"), None)
            .unwrap(),
        1
    );
    assert_eq!(
        c.modify_rows("task", &[1, 2], &set("TITLE", "t"), None)
            .unwrap(),
        2
    );
    for (table, id) in [("quote", 3), ("product", 2), ("task", 3)] {
        c.delete_rows(table, &[id]).unwrap();
    }
    c.advance_clock(10.0);
    let r = feed.cycle().await.unwrap();
    assert_eq!(r.ignored_events, 0, "{r:?}");
    assert_eq!(
        (r.events, r.applied.rows, r.applied.tombstones),
        (8, 5, 3),
        "{r:?}"
    );
    assert_eq!((r.applied.loads, r.applied.reconciles), (0, 0), "{r:?}");
    feed.settle().await.unwrap();
    assert!(c.offline_queue().is_empty());
    for (entity, table) in [
        ("crm_quote", "quote"),
        ("crm_product", "product"),
        ("task", "task"),
    ] {
        env.assert_equal(entity, table).await;
    }
}

/// A read whose answer is lost after the portal leased the records (here the connection
/// drops mid-answer and the client retries, which takes a new, empty lease) leaves a lease
/// nobody will ever clear or be handed again. The feed finds it in `event.offline.list`,
/// adopts it once a second check still sees it, and applies its records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_whose_answer_was_lost_is_adopted_and_nothing_is_lost() {
    let env = Env::start("events_orphan", 200, &["crm_deal"]).await;
    env.initial_load().await;
    let mut feed = env.feed().await;
    // One portal second between checks (at this clock scale, 20 ms of real time).
    feed.orphan_check = Duration::from_secs(1);
    let c = env.control();
    // The first cycle schedules the first check.
    feed.cycle().await.unwrap();
    let ids: Vec<u64> = (1..=5).collect();
    assert_eq!(
        c.modify_rows("deal", &ids, &title("lost"), None).unwrap(),
        5
    );
    c.inject_fault(Fault {
        kind: FaultKind::ConnectionReset,
        method: Some("batch".into()),
        probability: None,
        remaining: Some(1),
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = feed.cycle().await.unwrap();
    assert_eq!(
        r.events, 0,
        "the retried read gets a new, empty lease: {r:?}"
    );
    let q = c.offline_queue();
    assert_eq!(q.len(), 5, "{q:?}");
    assert!(q.iter().all(|r| !r.process_id.is_empty()), "{q:?}");
    // Next cycles: one check sees the lease, the one after adopts it.
    let mut adopted = None;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = feed.cycle().await.unwrap();
        if r.applied.rows > 0 {
            adopted = Some(r);
            break;
        }
    }
    let r = adopted.expect("the lost lease was never adopted");
    assert!(r.resumed, "{r:?}");
    assert_eq!((r.events, r.applied.rows), (5, 5), "{r:?}");
    feed.settle().await.unwrap();
    assert!(c.offline_queue().is_empty(), "{:?}", c.offline_queue());
    assert!(
        c.counters()
            .per_method
            .get("event.offline.list")
            .copied()
            .unwrap_or(0)
            >= 2,
        "{:?}",
        c.counters().per_method
    );
    env.assert_equal("crm_deal", "deal").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_writing_and_clearing_loses_nothing() {
    let env = Env::start("events_crash", 150, &["crm_deal"]).await;
    env.initial_load().await;
    let cfg_path = env.state.path().join("b24ch.toml");
    std::fs::write(
        &cfg_path,
        config_toml(
            &env.portal,
            env.ch,
            &env.db,
            env.state.path(),
            &["crm_deal"],
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cfg_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let run_once = || {
        std::process::Command::new(b24ch_bin())
            .args(["--config", cfg_path.to_str().unwrap(), "events", "--once"])
            .env("B24CH_HOME", env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    };
    // Binds the events (the queue is empty).
    let out = run_once();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = env.control();
    c.modify_rows(
        "deal",
        &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        &title("before the crash"),
        None,
    )
    .unwrap();
    c.delete_rows("deal", &[11, 12]).unwrap();
    // Clearing fails until the fault is lifted: the daemon writes the rows, fails to clear,
    // keeps its lease and tries again every second. It is killed in the middle of that.
    c.inject_fault(Fault {
        kind: FaultKind::PortalError {
            status: 403,
            code: "ACCESS_DENIED".into(),
            description: "Access denied".into(),
        },
        method: Some("event.offline.clear".into()),
        probability: None,
        remaining: None,
    });
    let mut child = std::process::Command::new(b24ch_bin())
        .args(["--config", cfg_path.to_str().unwrap(), "events"])
        .env("B24CH_HOME", env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until(
        "the daemon to try clearing twice",
        Duration::from_secs(60),
        || async {
            // Refused clears are counted by their error code (a fault answers before the method runs).
            c.counters()
                .errors_by_code
                .get("ACCESS_DENIED")
                .copied()
                .unwrap_or(0)
                >= 2
        },
    )
    .await;
    // SIGKILL: no chance to tidy up.
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        env.count("SELECT count() FROM `{db}`.crm_deal_current WHERE TITLE = 'before the crash'")
            .await,
        10,
        "rows were written before the kill"
    );
    let leased = c.offline_queue();
    assert_eq!(leased.len(), 12, "{leased:?}");
    assert!(
        leased.iter().all(|r| !r.process_id.is_empty()),
        "all still leased, none cleared"
    );
    // A change while b24ch is down, to a row whose record is leased: a new record.
    c.modify_rows("deal", &[3], &title("while down"), None)
        .unwrap();
    c.clear_faults();
    let out = run_once();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("12 read (resumed lease)"), "{stdout}");
    let out = run_once();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("events: 1 read"), "{stdout}");
    assert!(c.offline_queue().is_empty());
    env.assert_equal("crm_deal", "deal").await;
    // Duplicates are harmless: the rows were written more than once, `_current` has one each.
    assert!(
        env.count("SELECT count() FROM `{db}`.crm_deal_history WHERE ID = 5")
            .await
            >= 3
    );
    assert_eq!(
        env.count("SELECT count() FROM `{db}`.crm_deal_current WHERE ID = 5")
            .await,
        1
    );
}

/// Rows the burst changes (each edited 5 times: 5 events per row);
/// `B24CH_EVENTS_BURST_ROWS=10000` for the benchmark's 10,000 distinct rows.
fn burst_rows() -> u64 {
    std::env::var("B24CH_EVENTS_BURST_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_ten_thousand_events_costs_one_request_per_fifty_rows_at_most() {
    let n = burst_rows();
    // No first load: rows the feed has never seen are fetched like any other.
    let env = Env::start_scaled("events_burst", n, &["crm_deal"], 2_000.0).await;
    let feed = env.feed().await;
    let c = env.control();
    c.reset_counters();
    let ids: Vec<u64> = (1..=n).collect();
    let mut fetched = 0;
    for round in 1..=5 {
        assert_eq!(
            c.modify_rows("deal", &ids, &title(&format!("burst {round}")), None)
                .unwrap() as u64,
            n
        );
        c.advance_clock(1.0);
        if round == 2 {
            // A lease taken mid-burst: later edits of its rows become new records.
            let r = feed.cycle().await.unwrap();
            fetched += r.applied.rows;
        }
    }
    assert_eq!(
        c.event_counters().offline_emitted,
        5 * n,
        "one event per edit"
    );
    loop {
        let r = feed.cycle().await.unwrap();
        fetched += r.applied.rows;
        if !r.full {
            break;
        }
    }
    feed.settle().await.unwrap();
    let requests = c.counters().requests_total;
    assert!(
        requests * 50 <= n,
        "{requests} portal requests for {n} changed rows ({fetched} fetched)"
    );
    assert_eq!(
        env.count("SELECT count() FROM `{db}`.crm_deal_current WHERE TITLE = 'burst 5'")
            .await,
        n
    );
    assert!(c.offline_queue().is_empty());
    env.assert_equal("crm_deal", "deal").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_events_from_the_portal_reach_serve_and_a_wrong_token_writes_nothing() {
    let portal_cfg = PortalConfig {
        sizes: sizes(80),
        time_scale: SCALE,
        ..PortalConfig::default()
    };
    let token = portal_cfg.application_token();
    let p = Pull::start(
        "events_online",
        portal_cfg,
        Format::Parquet,
        &format!(
            "[events]\napplication_token = \"{token}\"\n[entities.crm_deal]\nenabled = true\n"
        ),
    )
    .await;
    p.autopilot().await;
    p.wait_all().await;
    let c = p.control();
    let url = format!("{}/v1/events", p.serve().url());
    // The portal delivers online events to serve, as an app bound with event.bind would.
    let o = c.config().oauth;
    for e in ["ONCRMDEALUPDATE", "ONCRMDEALDELETE"] {
        let r: serde_json::Value = reqwest::Client::new()
            .post(format!(
                "{}/rest/event.bind",
                p.portal.demo.as_ref().unwrap().base_url()
            ))
            .json(&json!({"auth": o.access_token, "event": e, "handler": url}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["result"], json!(true), "{r}");
    }
    // A forged event: wrong token → 401, nothing queued, nothing written.
    let before = versions(&p).await;
    let forged = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("event=ONCRMDEALDELETE&data%5BFIELDS%5D%5BID%5D=2&auth%5Bapplication_token%5D=0000000000000000ffffffffffffffff")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    let body = forged.text().await.unwrap();
    assert!(!body.contains(&token), "{body}");
    let missing = reqwest::Client::new()
        .post(&url)
        .json(&json!({"event": "ONCRMDEALDELETE", "data": {"FIELDS": {"ID": "2"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 401);
    // The route's own credential opens nothing else: other paths still want the bearer token.
    let other = reqwest::Client::new()
        .get(format!("{}/v1/entities", p.serve().url()))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 401);
    let unknown = reqwest::Client::new()
        .get(format!("{}/nonexistent", p.serve().url()))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 401);
    tokio::time::sleep(b24ch::events::online::GATHER * 3).await;
    assert_eq!(versions(&p).await, before, "a refused event wrote nothing");
    // The portal's own events: an edit and a deletion.
    c.modify_rows("deal", &[6], &title("online edit"), None)
        .unwrap();
    c.delete_rows("deal", &[7]).unwrap();
    let db = p.db.clone();
    wait_until("the online edit and deletion in _current", Duration::from_secs(60), || async {
        p.q(&format!("SELECT countIf(ID = 6 AND TITLE = 'online edit') + 10 * countIf(ID = 7) FROM `{db}`.crm_deal_current"))
            .await
            .trim()
            == "1"
    })
    .await;
    assert_eq!(c.event_counters().online_delivered, 2);
    truth::assert_equal(
        &truth::compare_entity(
            p.ch,
            &p.db,
            "crm_deal",
            &c.ground_truth("deal").unwrap(),
            &truth::column_names(&c.catalog(), "deal"),
            &truth::file_fields(&c.catalog(), "deal"),
        )
        .await,
    );
}

/// `serve` with `[events] offline = true` (an OAuth app, pull mode): its own feed reads the
/// queue, a deletion becomes a tombstone and an edit refreshes the load view; a smart process
/// the autopilot adds while it runs gets its events bound and its changes applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reads_the_offline_queue_and_follows_the_autopilot() {
    let demo = bitrix24_emulator::start(
        PortalConfig {
            sizes: sizes(80),
            ..PortalConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let o = demo.control().config().oauth;
    // Appended inside `[entities.default]`: only the named entities are loaded.
    let extra = format!(
        "enabled = false\n[entities.crm_deal]\nenabled = true\n[entities.crm_dynamic_150]\nenabled = true\n\
         [portal.oauth]\nportal_url = \"{base}\"\noauth_server = \"{base}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\naccess_token = \"{}\"\nrefresh_token = \"{}\"\n\
         [events]\noffline = true\npoll_interval = \"1 SECOND\"\n",
        o.client_id,
        o.client_secret,
        o.access_token,
        o.refresh_token,
        base = demo.base_url(),
    );
    let p = Pull::start(
        "events_serve",
        PortalConfig::default(),
        Format::Parquet,
        &extra,
    )
    .await;
    assert!(p.portal.demo.is_none(), "serve talks to the app's portal");
    p.autopilot().await;
    p.wait_all().await;
    let feed = serve::start_offline_feed(&p.config, &p.portal, p.serve())
        .await
        .unwrap()
        .expect("events.offline starts the feed");
    let c = demo.control();
    let db = p.db.clone();
    c.modify_rows("deal", &[6], &title("offline edit"), None)
        .unwrap();
    c.delete_rows("deal", &[7]).unwrap();
    wait_until("the edit and the deletion in _current", Duration::from_secs(60), || async {
        p.q(&format!("SELECT countIf(ID = 6 AND TITLE = 'offline edit') + 10 * countIf(ID = 7) FROM `{db}`.crm_deal_current"))
            .await
            == "1"
    })
    .await;

    const ETID: u32 = 150;
    c.add_smart_process(Some(ETID), "Поставки", 3).unwrap();
    p.autopilot().await;
    p.wait_all().await;
    wait_until(
        "the new smart process's events bound",
        Duration::from_secs(30),
        || async {
            c.event_handlers()
                .iter()
                .any(|h| h.event == "ONCRMDYNAMICITEMUPDATE_150")
        },
    )
    .await;
    let first = c.ground_truth("dynamic_150").unwrap()[0]
        .get("ID")
        .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
        .unwrap();
    c.modify_rows(
        "dynamic_150",
        &[first],
        &title("edited in a new process"),
        None,
    )
    .unwrap();
    wait_until("the new process's edit in _current", Duration::from_secs(60), || async {
        p.q(&format!("SELECT count() FROM `{db}`.crm_dynamic_150_current WHERE TITLE = 'edited in a new process'"))
            .await
            == "1"
    })
    .await;
    // Cleared once the refresh that carried them into ClickHouse finished.
    wait_until("every record cleared", Duration::from_secs(30), || async {
        c.offline_queue().is_empty()
    })
    .await;
    feed.abort();
    for (entity, table) in [("crm_deal", "deal"), ("crm_dynamic_150", "dynamic_150")] {
        truth::assert_equal(
            &truth::compare_entity(
                p.ch,
                &p.db,
                entity,
                &c.ground_truth(table).unwrap(),
                &truth::column_names(&c.catalog(), table),
                &truth::file_fields(&c.catalog(), table),
            )
            .await,
        );
    }
}

async fn versions(p: &Pull) -> u64 {
    p.q(&format!("SELECT count() FROM `{}`.crm_deal", p.db))
        .await
        .trim()
        .parse()
        .unwrap()
}
