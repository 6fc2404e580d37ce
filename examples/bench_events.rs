//! Freshness from Bitrix24 events (issue 13), on the demo portal at cloud limits.
//!
//! - `latency`: a local ClickHouse, the demo portal in real time (`time_scale 1`, limits on),
//!   `crm_deal` loaded once, then the offline-event feed (`b24ch events`, push) reading the queue
//!   every `--poll-secs` to `--max-delay-secs` (as the flow of changes allows). One run per
//!   `--delays` value: a fresh feed takes its first read, and that many seconds later `--edits`
//!   edits arrive at `--rate` per second, each on its own deal; then one run of `--deletions`
//!   deletions. For each change: the time from the portal change until `crm_deal_current` shows
//!   it (polled every 50 ms). Portal requests are counted from the first change of a run until
//!   its last is visible.
//! - `burst`: `--burst` deals edited at once; requests until all are in ClickHouse.
//! - `quiet`: operating time (the demo portal's cost model) and requests per hour of a portal
//!   where nothing changes: the feed reading the queue every `--max-delay-secs` (an empty queue
//!   is read that often) plus an hourly incremental load
//!   as the safety net, vs polling with an incremental load every 5 minutes plus the hourly ID
//!   reconcile (the defaults without events).
//!
//! `cargo run --example bench_events -- --phase latency,burst,quiet`
use anyhow::Context;
use b24ch::bitrix::{Client, ClientConfig, Governor, governor::GovernorConfig};
use b24ch::clickhouse::Connection;
use b24ch::clickhouse::apply::{self, Mode};
use b24ch::clickhouse::plan::selected_columns;
use b24ch::config::{Config, from_toml_str};
use b24ch::encode::Format;
use b24ch::events::sink;
use b24ch::pipeline::EntityJob;
use b24ch::sync::{self, Progress};
use bitrix24_emulator::{DataSizes, PortalConfig, PortalControl, RunningPortal};
use clap::Parser;
use local_clickhouse::{LocalClickHouse, LocalClickHouseOptions};
use serde_json::{Map, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value = "latency,burst,quiet")]
    phase: String,
    #[arg(long, default_value_t = 5_000)]
    deals: u64,
    #[arg(long, default_value_t = 200)]
    edits: u64,
    #[arg(long, default_value_t = 50)]
    deletions: u64,
    /// Changes per second arriving in the portal.
    #[arg(long, default_value_t = 4.0)]
    rate: f64,
    /// events.poll_interval (the config's default is 5 s).
    #[arg(long, default_value_t = 5)]
    poll_secs: u64,
    /// events.max_delay (the config's default is 14 s).
    #[arg(long, default_value_t = 14)]
    max_delay_secs: u64,
    /// One run of `--edits` per value: the edits begin this many seconds after the feed's
    /// first (empty) read, i.e. `max_delay` minus this before its next one.
    #[arg(long, default_value = "0,4.3,8.7")]
    delays: String,
    #[arg(long, default_value_t = 2_000)]
    burst: u64,
    #[arg(long, default_value = ".build/bench-events-clickhouse")]
    data_dir: PathBuf,
}

impl Args {
    /// The feed's pace from `--poll-secs` and `--max-delay-secs`.
    fn pace(&self) -> b24ch::events::feed::Pace {
        b24ch::events::feed::Pace {
            min: Duration::from_secs(self.poll_secs),
            max: Duration::from_secs(self.max_delay_secs),
        }
    }
}

struct Setup {
    portal: RunningPortal,
    config: Arc<Config>,
    client: Arc<Client>,
    conn: Connection,
    _state: tempfile::TempDir,
}

async fn setup(ch: &LocalClickHouse, db: &str, deals: u64, scale: f64) -> anyhow::Result<Setup> {
    ch.query(&format!("DROP DATABASE IF EXISTS `{db}` SYNC"))
        .await?;
    ch.query(&format!("CREATE DATABASE `{db}`")).await?;
    let portal = bitrix24_emulator::start(
        PortalConfig {
            sizes: DataSizes {
                deals,
                leads: 10,
                contacts: 10,
                companies: 10,
                activities: 10,
                smart_processes: vec![],
                ..DataSizes::default()
            },
            time_scale: scale,
            ..PortalConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let o = portal.control().config().oauth;
    let state = tempfile::tempdir()?;
    let config = from_toml_str(&format!(
        "state_dir = {:?}\n[portal.oauth]\nportal_url = \"{base}\"\noauth_server = \"{base}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\naccess_token = \"{}\"\nrefresh_token = \"{}\"\n[clickhouse]\nurl = \"{}\"\ndatabase = \"{db}\"\n[events]\noffline = true\n[entities.default]\nenabled = false\n[entities.crm_deal]\nenabled = true\n",
        state.path().display().to_string(),
        o.client_id,
        o.client_secret,
        o.access_token,
        o.refresh_token,
        ch.http_url(),
        base = portal.base_url(),
    ))?;
    let mut gov = GovernorConfig::from_limits(&config.limits);
    gov.clock_scale = scale;
    let client = Arc::new(Client::new(
        ClientConfig::from_config(&config)?,
        Governor::new(gov),
    )?);
    let config = Arc::new(config);
    let conn = Connection::connect(&config.clickhouse)?;
    Ok(Setup {
        portal,
        config,
        client,
        conn,
        _state: state,
    })
}

impl Setup {
    fn control(&self) -> &PortalControl {
        self.portal.control()
    }

    async fn deal_job(&self) -> anyhow::Result<Arc<EntityJob>> {
        let catalog = b24ch::catalog::discover(&self.client).await?;
        apply::apply_mode(
            &self.conn,
            &self.config,
            &catalog,
            Format::Parquet,
            Mode::Push,
        )
        .await?;
        let e = catalog.entity("crm_deal").context("crm_deal")?.clone();
        let cols = selected_columns(&e, &self.config.entity("crm_deal"));
        Ok(Arc::new(EntityJob::new(e, cols)?))
    }

    async fn load(&self, job: &Arc<EntityJob>) -> anyhow::Result<()> {
        let t = apply::target(&self.config);
        sync::load(
            &self.conn,
            &t,
            self.client.clone(),
            job.clone(),
            &Progress::hidden("crm_deal"),
        )
        .await?;
        Ok(())
    }

    async fn feed(&self) -> anyhow::Result<b24ch::events::feed::Feed> {
        b24ch::commands::events::prepare(
            self.config.clone(),
            self.client.clone(),
            self.conn.clone(),
            sink::Mode::Push,
        )
        .await
    }

    fn operating(&self) -> f64 {
        self.control().counters().operating_secs.values().sum()
    }
}

fn title(t: &str) -> Map<String, serde_json::Value> {
    let mut m = Map::new();
    m.insert("TITLE".into(), json!(t));
    m
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(name: &str, mut v: Vec<f64>) {
    v.sort_by(f64::total_cmp);
    println!(
        "{name}: n={} median {:.2} s, p95 {:.2} s, max {:.2} s",
        v.len(),
        percentile(&v, 0.5),
        percentile(&v, 0.95),
        v.last().copied().unwrap_or(f64::NAN)
    );
}

/// Issues `changes` at `rate` per second and measures each one's time to `_current`.
async fn measure(
    s: &Setup,
    ch: &LocalClickHouse,
    db: &str,
    ids: &[u64],
    rate: f64,
    delete: bool,
) -> anyhow::Result<Vec<f64>> {
    let mut pending: BTreeMap<u64, Instant> = BTreeMap::new();
    let mut done = Vec::new();
    let gap = Duration::from_secs_f64(1.0 / rate);
    let mut next = Instant::now();
    let mut i = 0;
    let started = Instant::now();
    while done.len() < ids.len() {
        // Every change that is due (the loop below takes a while under load).
        while i < ids.len() && Instant::now() >= next {
            let id = ids[i];
            if delete {
                s.control().delete_rows("deal", &[id])?;
            } else {
                s.control()
                    .modify_rows("deal", &[id], &title(&format!("bench {id}")), None)?;
            }
            pending.insert(id, Instant::now());
            i += 1;
            next += gap;
        }
        if !pending.is_empty() {
            let list = pending
                .keys()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let sql = if delete {
                format!("SELECT ID FROM `{db}`.crm_deal_current WHERE ID IN ({list}) FORMAT TSV")
            } else {
                format!(
                    "SELECT ID FROM `{db}`.crm_deal_current WHERE ID IN ({list}) AND TITLE = concat('bench ', toString(ID)) FORMAT TSV"
                )
            };
            let got: Vec<u64> = ch
                .query(&sql)
                .await?
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect();
            let visible: Vec<u64> = if delete {
                pending
                    .keys()
                    .copied()
                    .filter(|id| !got.contains(id))
                    .collect()
            } else {
                got
            };
            for id in visible {
                if let Some(t) = pending.remove(&id) {
                    done.push(t.elapsed().as_secs_f64());
                }
            }
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "changes did not arrive within 30 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(done)
}

/// One flow of changes watched by a fresh feed: the feed starts, takes its first read, and
/// `delay` later the changes begin (so its next read comes `max_delay - delay` into the
/// flow). Requests are counted from the first change until the last is visible.
async fn flow(
    s: &Setup,
    ch: &LocalClickHouse,
    db: &str,
    ids: &[u64],
    args: &Args,
    delay: f64,
    delete: bool,
) -> anyhow::Result<(Vec<f64>, bitrix24_emulator::Counters)> {
    let reads = |s: &Setup| {
        s.control()
            .counters()
            .per_method
            .get("event.offline.get")
            .copied()
            .unwrap_or(0)
    };
    let before = reads(s);
    let feed = Arc::new(s.feed().await?);
    let f = feed.clone();
    let pace = args.pace();
    let task = tokio::spawn(async move { f.run(pace).await });
    let waiting = Instant::now();
    while reads(s) == before {
        anyhow::ensure!(
            waiting.elapsed() < Duration::from_secs(60),
            "the feed did not read the queue within a minute"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_secs_f64(delay)).await;
    s.control().reset_counters();
    let lat = measure(s, ch, db, ids, args.rate, delete).await?;
    let c = s.control().counters();
    task.abort();
    let _ = task.await;
    feed.settle().await?;
    Ok((lat, c))
}

fn print_requests(c: &bitrix24_emulator::Counters, changes: usize) {
    println!(
        "  portal requests {} for {changes} changed rows ({:.2} rows per request); per method {:?}",
        c.requests_total,
        changes as f64 / c.requests_total.max(1) as f64,
        c.per_method
    );
}

async fn latency(ch: &LocalClickHouse, args: &Args) -> anyhow::Result<()> {
    let db = "bench_events_latency";
    let s = setup(ch, db, args.deals, 1.0).await?;
    let job = s.deal_job().await?;
    let t = Instant::now();
    s.load(&job).await?;
    println!(
        "first load of {} deals: {:.1} s",
        args.deals,
        t.elapsed().as_secs_f64()
    );
    let delays: Vec<f64> = args
        .delays
        .split(',')
        .map(|d| d.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .context("--delays takes seconds separated by commas")?;
    anyhow::ensure!(!delays.is_empty(), "--delays names no run");
    let runs = delays.len() as u64;
    anyhow::ensure!(
        runs * args.edits + args.deletions <= args.deals,
        "--deals must cover every run's edits and the deletions"
    );
    let mut all = Vec::new();
    let mut requests = 0;
    let mut edited = Vec::new();
    for (k, delay) in delays.iter().enumerate() {
        let ids: Vec<u64> = (k as u64 * args.edits..(k as u64 + 1) * args.edits)
            .map(|i| 1 + (i * 7919) % args.deals)
            .collect();
        edited.extend_from_slice(&ids);
        let (lat, c) = flow(&s, ch, db, &ids, args, *delay, false).await?;
        all.extend_from_slice(&lat);
        requests += c.requests_total;
        summary(
            &format!(
                "edit → crm_deal_current, {} edits at {}/s starting {delay} s after a read",
                args.edits, args.rate
            ),
            lat,
        );
        print_requests(&c, ids.len());
    }
    let mut uniq = edited.clone();
    uniq.sort_unstable();
    uniq.dedup();
    anyhow::ensure!(uniq.len() == edited.len(), "edit ids must be distinct");
    summary(&format!("all {runs} runs"), all);
    println!(
        "  portal requests {requests} for {} changed rows ({:.2} rows per request)",
        edited.len(),
        edited.len() as f64 / requests.max(1) as f64
    );
    let dels: Vec<u64> = (0..args.deals)
        .map(|i| 1 + (i * 104_729 + 13) % args.deals)
        .filter(|id| !edited.contains(id))
        .take(args.deletions as usize)
        .collect();
    let (lat, c) = flow(&s, ch, db, &dels, args, delays[0], true).await?;
    summary("deletion → gone from crm_deal_current", lat);
    let id_scans = c
        .per_method
        .iter()
        .filter(|(m, _)| m.ends_with(".list"))
        .map(|(_, n)| n)
        .sum::<u64>();
    println!(
        "  portal requests {} for {} deletions; list calls (an ID scan would be ≥ {} of them): {id_scans}; per method {:?}",
        c.requests_total,
        dels.len(),
        args.deals / 50,
        c.per_method
    );
    Ok(())
}

async fn burst(ch: &LocalClickHouse, args: &Args) -> anyhow::Result<()> {
    let db = "bench_events_burst";
    let s = setup(ch, db, args.burst, 1.0).await?;
    let job = s.deal_job().await?;
    s.load(&job).await?;
    let feed = s.feed().await?;
    let ids: Vec<u64> = (1..=args.burst).collect();
    s.control().reset_counters();
    s.control()
        .modify_rows("deal", &ids, &title("burst"), None)?;
    let t = Instant::now();
    let mut rows = 0;
    loop {
        let r = feed.cycle().await?;
        rows += r.applied.rows;
        if !r.full {
            break;
        }
    }
    feed.settle().await?;
    let c = s.control().counters();
    println!(
        "burst of {} edited deals: {rows} rows written in {:.1} s with {} portal requests ({:.0} rows per request); per method {:?}",
        args.burst,
        t.elapsed().as_secs_f64(),
        c.requests_total,
        rows as f64 / c.requests_total.max(1) as f64,
        c.per_method
    );
    Ok(())
}

async fn quiet(ch: &LocalClickHouse, args: &Args) -> anyhow::Result<()> {
    let db = "bench_events_quiet";
    // Real time is not needed to count: the cost model bills each call the same whenever it runs.
    let s = setup(ch, db, args.deals, 100.0).await?;
    let job = s.deal_job().await?;
    s.load(&job).await?;
    let feed = s.feed().await?;
    let t = apply::target(&s.config);

    s.control().reset_counters();
    // A quiet feed reads every `max_delay` less the apply time it assumes (nothing to time).
    let pace = args.pace();
    let every = pace.longest_wait(b24ch::events::feed::APPLY_TIME_GUESS);
    let reads = (3_600.0 / every.as_secs_f64().max(1.0)) as u64;
    for _ in 0..reads {
        // An hour on the portal's clock: the check for lost leases runs on it.
        s.control().advance_clock(every.as_secs_f64());
        feed.cycle().await?;
    }
    let lease_checks = s
        .control()
        .counters()
        .per_method
        .get("event.offline.list")
        .copied()
        .unwrap_or(0);
    s.load(&job).await?;
    let (events_op, events_req) = (s.operating(), s.control().counters().requests_total);

    s.control().reset_counters();
    for _ in 0..12 {
        s.load(&job).await?;
    }
    sync::reconcile(&s.conn, &t, s.client.clone(), job.clone(), 0).await?;
    let (poll_op, poll_req) = (s.operating(), s.control().counters().requests_total);
    println!(
        "quiet hour, {} deals (demo portal's cost model):",
        args.deals
    );
    println!(
        "  events: queue read every {} s ({reads}) + {lease_checks} checks for lost leases + 1 incremental load: {events_op:.1} operating s, {events_req} requests",
        every.as_secs_f64()
    );
    println!(
        "  polling: incremental load every 5 min (12) + hourly ID reconcile: {poll_op:.1} operating s, {poll_req} requests"
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let phases: Vec<&str> = args.phase.split(',').map(str::trim).collect();
    if args.data_dir.exists() {
        std::fs::remove_dir_all(&args.data_dir)?;
    }
    let ch = LocalClickHouse::start(LocalClickHouseOptions::new(&args.data_dir)).await?;
    if phases.contains(&"latency") {
        latency(&ch, &args).await?;
    }
    if phases.contains(&"burst") {
        burst(&ch, &args).await?;
    }
    if phases.contains(&"quiet") {
        quiet(&ch, &args).await?;
    }
    Ok(())
}
