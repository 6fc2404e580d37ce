//! The Bitrix24 client, governor and listing against the in-process demo portal (limits on).
//!
//! The scale tests print their measured numbers. CI runs them at 5,000 rows per table; the
//! benchmark runs them in release at 100,000 (BENCHMARKS.md):
//! `B24CH_LISTING_ROWS=100000 cargo test --release --test it -- --nocapture --test-threads 1 bitrix_listing`.
use b24ch::bitrix::governor::{BatchBilling as GovBilling, GovernorConfig};
use b24ch::bitrix::listing::PAGE_SIZE;
use b24ch::bitrix::{AuthConfig, BitrixError, Client, ClientConfig, Governor, ListRequest, list};
use b24ch::config::Secret;
use b24ch::schema::Cell;
use bitrix24_emulator::{
    self, BatchBilling, DataSizes, Fault, FaultKind, LimitsConfig, NestedFigures, PortalConfig,
    RunningPortal,
};
use chrono::DateTime;
use futures::StreamExt;
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

const SCALE: f64 = 100.0;

/// Rows per table of the scale tests: `B24CH_LISTING_ROWS`, else 5,000 (two full chains and
/// the one that finds the end: every path of the listing, at a CI-sized cost).
fn scale_rows() -> u64 {
    std::env::var("B24CH_LISTING_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000)
}

/// Requests a COUNT-free listing of `rows` needs: full 2,500-row chains, plus one for the
/// chain that finds the end, plus `slack`.
fn chain_requests(rows: u64, slack: u64) -> u64 {
    rows / 2500 + 1 + slack
}

/// `deals` deals; the other tables stay small (the portal generates every row up front).
fn sizes(deals: u64) -> DataSizes {
    DataSizes {
        deals,
        ..DataSizes::default()
    }
}

/// `rows` rows in each of deals, leads, contacts and companies.
fn sizes_each(rows: u64) -> DataSizes {
    DataSizes {
        deals: rows,
        leads: rows,
        contacts: rows,
        companies: rows,
        ..DataSizes::default()
    }
}

async fn portal(sizes: DataSizes, billing: BatchBilling) -> RunningPortal {
    portal_reporting(sizes, billing, NestedFigures::default()).await
}

/// [`portal`] reporting nested figures the `nested` way.
async fn portal_reporting(
    sizes: DataSizes,
    billing: BatchBilling,
    nested: NestedFigures,
) -> RunningPortal {
    let cfg = PortalConfig {
        sizes,
        limits: LimitsConfig {
            enabled: true,
            rate_per_sec: 2.0,
            burst: 50.0,
            operating_limit_secs: 480.0,
            window_secs: 600,
            batch_billing: billing,
            nested_figures: nested,
        },
        time_scale: SCALE,
        ..Default::default()
    };
    bitrix24_emulator::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn governor() -> Arc<Governor> {
    Governor::new(GovernorConfig {
        clock_scale: SCALE,
        ..GovernorConfig::standard()
    })
}

fn webhook_client(p: &RunningPortal) -> Arc<Client> {
    let cfg = ClientConfig::new(AuthConfig::Webhook {
        url: Secret::new(p.webhook_url()),
    });
    Arc::new(Client::new(cfg, governor()).unwrap())
}

fn deals() -> ListRequest {
    ListRequest {
        method_key: "crm.item".into(),
        entity_type_id: Some(2),
        ..Default::default()
    }
}

fn id_of(row: &Map<String, Value>) -> u64 {
    let v = row
        .get("id")
        .or_else(|| row.get("ID"))
        .expect("row has an id");
    match v {
        Value::Number(n) => n.as_u64().unwrap(),
        Value::String(s) => s.parse().unwrap(),
        other => panic!("bad id {other}"),
    }
}

/// Lists everything, asserting no id repeats; returns ids in order.
async fn collect_ids(client: Arc<Client>, req: ListRequest) -> Result<Vec<u64>, BitrixError> {
    let mut ids = Vec::new();
    let mut s = Box::pin(list(client, req));
    while let Some(page) = s.next().await {
        ids.extend(page?.rows.iter().map(|r| id_of(&r.to_map())));
    }
    Ok(ids)
}

fn truth_ids(p: &RunningPortal, table: &str) -> Vec<u64> {
    p.control()
        .ground_truth(table)
        .unwrap()
        .iter()
        .map(id_of)
        .collect()
}

/// Every id of `truth` listed once, in any order (a big listing under whole-batch billing is
/// read from both ends; each side checks its own order).
fn assert_exactly_once(listed: &[u64], truth: &[u64]) {
    let set: BTreeSet<u64> = listed.iter().copied().collect();
    assert_eq!(set.len(), listed.len(), "an id was listed twice");
    let truth: BTreeSet<u64> = truth.iter().copied().collect();
    assert!(set == truth, "listed ids differ from the ground truth");
}

#[tokio::test]
async fn small_portal_every_list_method_matches_ground_truth() {
    let p = portal(DataSizes::default(), BatchBilling::PerMethod).await;
    let c = webhook_client(&p);
    assert_exactly_once(
        &collect_ids(c.clone(), deals()).await.unwrap(),
        &truth_ids(&p, "deal"),
    );
    for (key, table) in [
        ("crm.lead", "lead"),
        ("crm.contact", "contact"),
        ("crm.company", "company"),
        ("user", "user"),
    ] {
        let req = ListRequest {
            method_key: key.into(),
            ..Default::default()
        };
        let ids = collect_ids(c.clone(), req).await.unwrap();
        assert_exactly_once(&ids, &truth_ids(&p, table));
    }
    let spa = ListRequest {
        method_key: "crm.item".into(),
        entity_type_id: Some(128),
        ..Default::default()
    };
    assert_exactly_once(
        &collect_ids(c.clone(), spa).await.unwrap(),
        &truth_ids(&p, "dynamic_128"),
    );
    let counters = p.control().counters();
    assert_eq!(counters.count_queries, 0, "{counters:?}");
    assert_eq!(counters.query_limit_exceeded, 0);
    assert_eq!(counters.operation_time_limit, 0);
}

/// `crm_category` is one listing over several entity types: deal pipelines, then those of
/// every smart process the portal has at listing time (ids unique across types).
#[tokio::test]
async fn pipelines_of_deals_and_every_smart_process_in_one_listing() {
    let p = portal(DataSizes::default(), BatchBilling::PerMethod).await;
    let c = webhook_client(&p);
    let pipelines = || ListRequest {
        method_key: "crm.category".into(),
        ..Default::default()
    };
    let sorted = |mut v: Vec<u64>| {
        v.sort_unstable();
        v
    };
    let ids = collect_ids(c.clone(), pipelines()).await.unwrap();
    let set: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(set.len(), ids.len(), "a pipeline id was listed twice");
    assert_eq!(sorted(ids), sorted(truth_ids(&p, "category")));

    let types = |rows: &[Map<String, Value>]| -> BTreeSet<u64> {
        rows.iter()
            .filter_map(|r| r.get("entityTypeId").and_then(Value::as_u64))
            .collect()
    };
    let listed_rows = || async {
        let mut rows = Vec::new();
        let mut s = Box::pin(list(c.clone(), pipelines()));
        while let Some(page) = s.next().await {
            rows.extend(page.unwrap().rows.iter().map(|r| r.to_map()));
        }
        rows
    };
    assert_eq!(
        types(&listed_rows().await),
        BTreeSet::from([2, 31, 128, 130, 132])
    );
    // A smart process added or removed since discovery is followed at listing time.
    p.control().remove_smart_process(130).unwrap();
    let added = p.control().add_smart_process(None, "Later", 2).unwrap();
    let rows = listed_rows().await;
    assert_eq!(
        types(&rows),
        BTreeSet::from([2, 31, 128, 132, u64::from(added)])
    );
    assert_eq!(
        sorted(rows.iter().map(id_of).collect()),
        sorted(truth_ids(&p, "category"))
    );
}

/// What one listing cost, from the portal's own counters.
#[derive(Debug)]
struct Measured {
    rows: usize,
    http_requests: u64,
    count_queries: u64,
    http_503: u64,
    http_429: u64,
    wall_secs: f64,
}

impl Measured {
    fn rows_per_request(&self) -> f64 {
        self.rows as f64 / self.http_requests.max(1) as f64
    }

    fn print(&self, what: &str) {
        println!(
            "[extraction] {what}: rows={} http_requests={} rows_per_request={:.0} count_queries={} \
             503={} 429={} wall={:.1}s rows_per_sec={:.0}",
            self.rows,
            self.http_requests,
            self.rows_per_request(),
            self.count_queries,
            self.http_503,
            self.http_429,
            self.wall_secs,
            self.rows as f64 / self.wall_secs.max(1e-9)
        );
    }

    /// The bounds every listing must keep.
    fn assert_within_limits(&self) {
        assert_eq!(self.http_429, 0, "{self:?}");
        assert!(
            (self.http_503 as f64) < 0.01 * self.http_requests as f64,
            "{self:?}"
        );
        assert_eq!(self.count_queries, 0, "{self:?}");
    }
}

fn measure(p: &RunningPortal, rows: usize, started: Instant) -> Measured {
    let c = p.control().counters();
    Measured {
        rows,
        http_requests: c.requests_total,
        count_queries: c.count_queries,
        http_503: c.query_limit_exceeded,
        http_429: c.operation_time_limit,
        wall_secs: started.elapsed().as_secs_f64(),
    }
}

async fn full_deal_listing(billing: BatchBilling) {
    let rows = scale_rows();
    let p = portal(sizes(rows), billing).await;
    let c = webhook_client(&p);
    let truth = truth_ids(&p, "deal");
    p.control().reset_counters();
    let started = Instant::now();
    let ids = collect_ids(c.clone(), deals()).await.unwrap();
    let m = measure(&p, ids.len(), started);
    m.print(&format!(
        "full listing, {rows} deals, all fields + UF, {billing:?}"
    ));
    assert_exactly_once(&ids, &truth);
    m.assert_within_limits();
    // Under whole-batch billing a listing this big also reads plain pages from the top (a
    // second budget, see `a_big_listing_under_whole_batch_billing_is_read_from_both_ends`).
    if billing == BatchBilling::PerMethod || rows <= 5_000 {
        assert!(m.http_requests <= chain_requests(rows, 1), "{m:?}");
    }
    let snap = c.governor().snapshot();
    println!(
        "[extraction] governor: {}",
        serde_json::to_string(&snap).unwrap()
    );
    let expected = match billing {
        BatchBilling::PerMethod => GovBilling::PerMethod,
        BatchBilling::WholeBatch => GovBilling::WholeBatch,
        BatchBilling::Both => GovBilling::Both,
    };
    assert_eq!(snap.billing, expected);
}

/// Under every billing that bills batches to the `batch` key (whole-batch with each way of
/// reporting nested figures, and both) a big listing is read from both ends at once: chained
/// batches ascending and plain pages descending (billed to the method's own key). Rows added
/// and deleted while it runs: every row listed once, none missed, none invented; through the
/// pipeline, every row joins its companion's columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_listing_under_whole_batch_billing_is_read_from_both_ends() {
    for (billing, nested) in [
        (BatchBilling::WholeBatch, NestedFigures::Own),
        (BatchBilling::WholeBatch, NestedFigures::BatchTotal),
        (BatchBilling::WholeBatch, NestedFigures::Absent),
        (BatchBilling::Both, NestedFigures::Own),
    ] {
        read_from_both_ends(billing, nested).await;
    }
}

async fn read_from_both_ends(billing: BatchBilling, nested: NestedFigures) {
    let p = portal_reporting(sizes(12_000), billing, nested).await;
    let c = webhook_client(&p);
    let before: BTreeSet<u64> = truth_ids(&p, "deal").into_iter().collect();
    p.control().reset_counters();
    let (mut listed, mut added) = (Vec::new(), Vec::new());
    let mut pages = Box::pin(list(c.clone(), deals()));
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        listed.extend(page.rows.iter().map(|r| id_of(&r.to_map())));
        if added.is_empty() && listed.len() >= 2_500 {
            added = p.control().add_rows("deal", 30).unwrap();
            let top = *before.last().unwrap();
            p.control()
                .delete_rows("deal", &[top / 2, top / 2 + 1, top - 1])
                .unwrap();
        }
    }
    assert_eq!(added.len(), 30);
    let set: BTreeSet<u64> = listed.iter().copied().collect();
    assert_eq!(set.len(), listed.len(), "an id was listed twice");
    let after: BTreeSet<u64> = truth_ids(&p, "deal").into_iter().collect();
    let missed: Vec<_> = after.difference(&set).take(10).collect();
    assert!(missed.is_empty(), "missed {missed:?}");
    let known: BTreeSet<u64> = before.iter().chain(&added).copied().collect();
    assert!(set.is_subset(&known), "an id was invented");
    // The descending side ran: one stream takes a request per 2,500 rows, plain pages one
    // per 50; where batches are billed to `batch` alone, they are billed to the method's key.
    let counters = p.control().counters();
    assert!(
        counters.requests_total > 2 * chain_requests(12_000, 1),
        "{billing:?} {nested:?}: {counters:?}"
    );
    if billing == BatchBilling::WholeBatch {
        let billed = |key: &str| counters.operating_secs.get(key).copied().unwrap_or(0.0);
        let plain_share = billed("crm.item.list") / (billed("batch") + billed("crm.item.list"));
        assert!(plain_share > 0.1, "{nested:?}: {counters:?}");
    }
    assert_eq!(counters.count_queries, 0);
    assert_eq!(counters.operation_time_limit, 0);

    // The same through the pipeline: the companion (`crm.deal.list`) fills its columns on
    // rows of both sides.
    let catalog = b24ch::catalog::discover(&c).await.unwrap();
    let entity = catalog.entity("crm_deal").unwrap().clone();
    let job = Arc::new(
        b24ch::pipeline::EntityJob::new(entity.clone(), b24ch::schema::table_columns(&entity))
            .unwrap(),
    );
    let id = job.columns.iter().position(|c| c.name == "ID").unwrap();
    let truth: BTreeSet<u64> = truth_ids(&p, "deal").into_iter().collect();
    p.control().reset_counters();
    let rows = b24ch::pipeline::typed_rows(c.clone(), job.clone(), None, chrono::Duration::zero());
    let mut rows = Box::pin(rows);
    let mut seen = BTreeSet::new();
    while let Some(page) = rows.next().await {
        for row in page.unwrap().rows {
            let key = match &row[id] {
                Cell::Int(v) => *v as u64,
                Cell::UInt(v) => *v,
                other => panic!("id {other:?}"),
            };
            if key != 0 {
                // (0 is the watermark row.)
                assert!(seen.insert(key), "row {key} twice");
            }
        }
    }
    // A row whose companion columns did not join would have been left out of the load.
    assert!(seen == truth, "typed rows differ from the portal's deals");
    let counters = p.control().counters();
    assert_eq!(counters.operation_time_limit, 0, "{counters:?}");
}

/// A tight operating budget (40 s per 10 min; a 50-page batch costs ~32 s, so one fits per
/// window) so the governor must pause whatever the machine speed under per-method billing;
/// under whole-batch billing the planner reads plain pages (billed to the method) where a
/// batch would pause.
async fn governor_keeps_tight_budget(billing: BatchBilling) {
    let limit = 40.0;
    let cfg = PortalConfig {
        sizes: sizes(10_000),
        limits: LimitsConfig {
            operating_limit_secs: limit,
            batch_billing: billing,
            ..LimitsConfig::default()
        },
        time_scale: SCALE,
        ..Default::default()
    };
    let p = bitrix24_emulator::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let gov = Governor::new(GovernorConfig {
        clock_scale: SCALE,
        operating_limit_secs: Some(limit),
        ..GovernorConfig::standard()
    });
    let c = Arc::new(
        Client::new(
            ClientConfig::new(AuthConfig::Webhook {
                url: Secret::new(p.webhook_url()),
            }),
            gov,
        )
        .unwrap(),
    );
    let truth = truth_ids(&p, "deal");
    p.control().reset_counters();
    let started = Instant::now();
    let ids = collect_ids(c.clone(), deals()).await.unwrap();
    let m = measure(&p, ids.len(), started);
    m.print(&format!("10k deals, operating budget 40 s, {billing:?}"));
    assert_exactly_once(&ids, &truth);
    m.assert_within_limits();
    let snap = c.governor().snapshot();
    let (billed, expected) = match billing {
        BatchBilling::PerMethod => ("crm.item.list", GovBilling::PerMethod),
        BatchBilling::WholeBatch => ("batch", GovBilling::WholeBatch),
        BatchBilling::Both => ("batch", GovBilling::Both),
    };
    assert_eq!(snap.billing, expected);
    let counters = p.control().counters();
    if billing == BatchBilling::WholeBatch {
        // Plain calls are billed to their method even here, a second budget: once a chain
        // would pause for `batch`, the planner reads plain pages instead of waiting.
        let plain = snap.methods.iter().find(|k| k.key == "crm.item.list");
        assert!(plain.is_some_and(|k| k.calls > 0), "{snap:?}");
        let batch = counters.operating_secs.get("batch").copied().unwrap_or(0.0);
        let method = counters
            .operating_secs
            .get("crm.item.list")
            .copied()
            .unwrap_or(0.0);
        assert!(method > 0.0 && batch > 0.0, "{counters:?}");
        return;
    }
    assert!(snap.counters.operating_waits > 0, "{snap:?}");
    let key = snap.methods.iter().find(|k| k.key == billed).unwrap();
    assert!(key.waits > 0 && key.estimate_per_command > 0.0, "{snap:?}");
    // The portal's own bill: several windows' worth of budget spent, never blocked.
    let billed_secs = counters.operating_secs.get(billed).copied().unwrap_or(0.0);
    assert!(billed_secs > 2.0 * limit, "billed {billed_secs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn governor_pauses_before_the_budget_per_method_billing() {
    governor_keeps_tight_budget(BatchBilling::PerMethod).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn governor_pauses_before_the_budget_whole_batch_billing() {
    governor_keeps_tight_budget(BatchBilling::WholeBatch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_listing_of_deals_per_method_billing() {
    full_deal_listing(BatchBilling::PerMethod).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_listing_of_deals_whole_batch_billing() {
    full_deal_listing(BatchBilling::WholeBatch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_listing_of_deals() {
    let rows = scale_rows();
    let p = portal(sizes(rows), BatchBilling::PerMethod).await;
    let c = webhook_client(&p);
    let truth = truth_ids(&p, "deal");
    p.control().reset_counters();
    let started = Instant::now();
    let req = ListRequest {
        ids_only: true,
        ..deals()
    };
    let ids = collect_ids(c, req).await.unwrap();
    let m = measure(&p, ids.len(), started);
    m.print(&format!("id listing, {rows} deals"));
    assert_exactly_once(&ids, &truth);
    m.assert_within_limits();
    assert!(m.http_requests <= chain_requests(rows, 4), "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_pass_100_changed() {
    let rows = scale_rows();
    let p = portal(sizes(rows), BatchBilling::PerMethod).await;
    let c = webhook_client(&p);
    // 100 deals spread over the table, modified "now" on the portal's clock.
    let changed: Vec<u64> = (0..100).map(|i| 7 + i * (rows / 101)).collect();
    let now = p.control().now().floor() as i64;
    let n = p
        .control()
        .modify_rows("deal", &changed, &Map::new(), Some(now))
        .unwrap();
    assert_eq!(n, 100);
    p.control().reset_counters();
    let since = DateTime::from_timestamp(now - 1, 0).unwrap().fixed_offset();
    let started = Instant::now();
    let req = ListRequest {
        modified_since: Some(since),
        ..deals()
    };
    let ids = collect_ids(c, req).await.unwrap();
    let m = measure(&p, ids.len(), started);
    m.print(&format!("incremental pass, 100 of {rows} deals changed"));
    assert_eq!(ids, changed);
    m.assert_within_limits();
    assert!(m.http_requests <= 3, "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_entities_listed_concurrently_share_the_limits() {
    let per_table = scale_rows();
    let p = portal(sizes_each(per_table), BatchBilling::PerMethod).await;
    let c = webhook_client(&p);
    let tables = [
        (deals(), "deal"),
        (
            ListRequest {
                method_key: "crm.lead".into(),
                ..Default::default()
            },
            "lead",
        ),
        (
            ListRequest {
                method_key: "crm.contact".into(),
                ..Default::default()
            },
            "contact",
        ),
        (
            ListRequest {
                method_key: "crm.company".into(),
                ..Default::default()
            },
            "company",
        ),
    ];
    let truths: Vec<Vec<u64>> = tables.iter().map(|(_, t)| truth_ids(&p, t)).collect();
    p.control().reset_counters();
    let started = Instant::now();
    let tasks: Vec<_> = tables
        .iter()
        .map(|(req, _)| tokio::spawn(collect_ids(c.clone(), req.clone())))
        .collect();
    let mut rows = 0;
    for (task, truth) in tasks.into_iter().zip(&truths) {
        let ids = task.await.unwrap().unwrap();
        rows += ids.len();
        assert_exactly_once(&ids, truth);
    }
    let m = measure(&p, rows, started);
    m.print(&format!(
        "four entities concurrently (deal, lead, contact, company), {per_table} each"
    ));
    m.assert_within_limits();
    assert!(m.http_requests <= 4 * chain_requests(per_table, 1), "{m:?}");
}

/// What listing `n` deals cost in requests and `crm.item.list` commands, from the portal's
/// counters: `(requests, commands, wasted)` where wasted = commands that carried no row and
/// were not the probe (pages past the end, including the one proving it).
async fn small_listing_cost(n: u64) -> (u64, u64, u64) {
    let p = portal(sizes(n), BatchBilling::PerMethod).await;
    let c = webhook_client(&p);
    let truth = truth_ids(&p, "deal");
    assert_eq!(truth.len() as u64, n);
    p.control().reset_counters();
    let ids = collect_ids(c, deals()).await.unwrap();
    assert_exactly_once(&ids, &truth);
    let counters = p.control().counters();
    assert_eq!(counters.operation_time_limit, 0, "{counters:?}");
    assert_eq!(counters.count_queries, 0, "{counters:?}");
    let commands = counters
        .per_method
        .get("crm.item.list")
        .copied()
        .unwrap_or(0);
    let pages_with_rows = n.div_ceil(PAGE_SIZE as u64);
    let wasted = commands - 1 - pages_with_rows;
    println!(
        "[listing] {n} deals: requests={} commands={commands} (probe 1, pages with rows \
         {pages_with_rows}, past the end {wasted})",
        counters.requests_total
    );
    (counters.requests_total, commands, wasted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_table_wastes_at_most_three_pages() {
    for n in [1, 49, 120, 199] {
        let (requests, _, wasted) = small_listing_cost(n).await;
        assert_eq!(requests, 1, "{n} deals");
        assert!(wasted <= 3, "{n} deals: {wasted} pages past the end");
    }
    // Past the first chain the probe sizes the rest: one page past the end (the one that
    // proves it), whatever the size.
    let (requests, commands, wasted) = small_listing_cost(3_000).await;
    assert_eq!((requests, commands, wasted), (3, 62, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_mid_listing_lose_no_row() {
    let p = portal(sizes(scale_rows()), BatchBilling::PerMethod).await;
    let c = webhook_client(&p);
    let truth = truth_ids(&p, "deal");
    let mut s = Box::pin(list(c.clone(), deals()));
    let mut ids = Vec::new();
    let mut injected = false;
    while let Some(page) = s.next().await {
        ids.extend(page.unwrap().rows.iter().map(|r| id_of(&r.to_map())));
        // After the first chain: the faults meet the chains that follow.
        if !injected && ids.len() >= 2_500 {
            injected = true;
            for kind in [
                FaultKind::QueryLimitExceeded,
                FaultKind::InternalError,
                FaultKind::TruncatedJson,
                FaultKind::ConnectionReset,
                FaultKind::OperationTimeLimit,
            ] {
                p.control().inject_fault(Fault {
                    kind,
                    method: None,
                    probability: None,
                    remaining: Some(1),
                });
            }
        }
    }
    assert_exactly_once(&ids, &truth);
    let counters = p.control().counters();
    assert_eq!(counters.faults_injected, 5, "{counters:?}");
    assert!(c.governor().snapshot().counters.retries >= 5);
}

#[tokio::test]
async fn final_errors_are_not_retried_and_hide_the_webhook_code() {
    let p = portal(DataSizes::default(), BatchBilling::PerMethod).await;
    let bad = p.webhook_url().replace("demo0webhook0code", "wrongcode123");
    let c = Client::new(
        ClientConfig::new(AuthConfig::Webhook {
            url: Secret::new(bad),
        }),
        governor(),
    )
    .unwrap();
    let err = c
        .call("crm.deal.list", &serde_json::json!({}))
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert_eq!(c.governor().snapshot().counters.retries, 0);
    let text = format!("{err} {err:?}");
    assert!(!text.contains("wrongcode123"), "{text}");
    let ok = webhook_client(&p);
    let err = ok
        .call("crm.nothing.here", &serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.class(), b24ch::bitrix::ErrorClass::MethodNotFound);
    assert_eq!(err.code(), Some("ERROR_METHOD_NOT_FOUND"));
}
