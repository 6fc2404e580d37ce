//! Request cost of the tables outside CRM (issue #12): `task`, `task_elapsed_time`,
//! `task_stage`, `telephony_call`, `workgroup`. For each, on one demo portal with cloud limits and the
//! calibrated cost model: a full load (`typed_rows`, as `serve`/`sync` run it), an incremental
//! load after 0.1 % of the rows changed (where the entity has a cursor) and a reconcile ID
//! listing. Every figure comes from the portal's own counters; each pass starts on zeroed
//! counters and fresh budgets (the bench waits one operating window between passes).
//!
//! `cargo run --example bench_work_tables -- --rows 20000 --time-scale 200` (the figures are the
//! portal's cost model, the same in a debug build; only the wall times differ)
use b24ch::bitrix::governor::GovernorConfig;
use b24ch::bitrix::{AuthConfig, Client, ClientConfig, Governor};
use b24ch::config::Secret;
use b24ch::pipeline::{EntityJob, ids, typed_rows};
use b24ch::schema::table_columns;
use bitrix24_emulator::{BatchBilling, DataSizes, LimitsConfig, PortalConfig, PortalControl};
use clap::Parser;
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
struct Args {
    /// Rows of each table (workgroups: a hundredth of it).
    #[arg(long, default_value_t = 20_000)]
    rows: u64,
    /// Simulated portal seconds per real second.
    #[arg(long, default_value_t = 200.0)]
    time_scale: f64,
    /// `per-method` (docs, server source) or `whole-batch` (one field measurement).
    #[arg(long, default_value = "per-method")]
    billing: String,
}

/// (entity, portal table)
const TABLES: &[(&str, &str)] = &[
    ("task", "task"),
    ("task_elapsed_time", "task_elapsed_time"),
    ("task_stage", "task_stage"),
    ("telephony_call", "telephony_call"),
    ("workgroup", "workgroup"),
];

struct Measured {
    rows: u64,
    requests: u64,
    operating_secs: f64,
    count_queries: u64,
    wall_secs: f64,
}

impl Measured {
    fn line(&self, entity: &str, pass: &str) -> String {
        let per_k = |x: f64| 1000.0 * x / self.rows.max(1) as f64;
        format!(
            "| `{entity}` | {pass} | {} | {} | {} | {:.2} | {:.2} | {:.3} | {:.1} s |",
            self.rows,
            self.requests,
            self.count_queries,
            self.operating_secs,
            per_k(self.requests as f64),
            per_k(self.operating_secs),
            self.wall_secs
        )
    }
}

fn client(url: String, scale: f64) -> anyhow::Result<Arc<Client>> {
    let gov = Governor::new(GovernorConfig {
        clock_scale: scale,
        ..GovernorConfig::standard()
    });
    let cfg = ClientConfig::new(AuthConfig::Webhook {
        url: Secret::new(url),
    });
    Ok(Arc::new(Client::new(cfg, gov)?))
}

/// One operating window plus a margin at `scale`, then zeroed counters.
async fn fresh(control: &PortalControl, scale: f64) {
    tokio::time::sleep(Duration::from_secs_f64(630.0 / scale)).await;
    control.reset_counters();
}

fn measured(control: &PortalControl, rows: u64, t0: Instant) -> Measured {
    let c = control.counters();
    Measured {
        rows,
        requests: c.requests_total,
        operating_secs: c.operating_secs.values().sum(),
        count_queries: c.count_queries,
        wall_secs: t0.elapsed().as_secs_f64(),
    }
}

async fn load(job: Arc<EntityJob>, client: Arc<Client>, since: Option<i64>) -> anyhow::Result<u64> {
    let since = since.and_then(|s| chrono::DateTime::from_timestamp(s, 0));
    let mut pages = Box::pin(typed_rows(
        client,
        job,
        since,
        chrono::Duration::seconds(120),
    ));
    let mut rows = 0u64;
    while let Some(p) = pages.next().await {
        let p = p?;
        // The watermark row is not a portal row.
        rows += p.rows.len() as u64 - u64::from(p.watermark.is_some());
    }
    Ok(rows)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let billing = match args.billing.as_str() {
        "whole-batch" => BatchBilling::WholeBatch,
        _ => BatchBilling::PerMethod,
    };
    let cfg = PortalConfig {
        sizes: DataSizes {
            deals: 10,
            leads: 10,
            contacts: 10,
            companies: 10,
            activities: 10,
            smart_processes: Vec::new(),
            tasks: args.rows,
            task_elapsed: args.rows,
            calls: args.rows,
            workgroups: (args.rows / 100).max(1),
            ..DataSizes::default()
        },
        time_scale: args.time_scale,
        limits: LimitsConfig {
            batch_billing: billing,
            ..LimitsConfig::default()
        },
        ..PortalConfig::default()
    };
    let portal = bitrix24_emulator::start(cfg, "127.0.0.1:0".parse()?).await?;
    let control = portal.control().clone();
    let c = client(portal.webhook_url(), args.time_scale)?;
    let catalog = b24ch::catalog::discover(&c).await?;
    println!(
        "| Table | Pass | Rows | HTTP requests | COUNT | Operating s | Requests / 1,000 rows | Operating s / 1,000 rows | Wall |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (entity, table) in TABLES {
        let e = catalog
            .entity(entity)
            .ok_or_else(|| anyhow::anyhow!("{entity} not in the catalog"))?
            .clone();
        let job = Arc::new(EntityJob::new(e.clone(), table_columns(&e))?);

        fresh(&control, args.time_scale).await;
        let t0 = Instant::now();
        let started = control.now() as i64;
        let rows = load(
            job.clone(),
            client(portal.webhook_url(), args.time_scale)?,
            None,
        )
        .await?;
        println!("{}", measured(&control, rows, t0).line(entity, "full load"));

        if job.incremental() {
            let total = control.ground_truth(table)?.len() as u64;
            let step = 1000;
            let changed: Vec<u64> = (1..=total / step).map(|i| i * step).collect();
            if *table == "telephony_call" {
                control.add_rows(table, changed.len() as u64)?;
            } else {
                control.modify_rows(table, &changed, &Default::default(), None)?;
            }
            fresh(&control, args.time_scale).await;
            let t0 = Instant::now();
            let rows = load(
                job.clone(),
                client(portal.webhook_url(), args.time_scale)?,
                Some(started),
            )
            .await?;
            let label = if *table == "telephony_call" {
                "incremental, 0.1 % new (1-day lookback)"
            } else {
                "incremental, 0.1 % changed"
            };
            println!("{}", measured(&control, rows, t0).line(entity, label));
        }

        fresh(&control, args.time_scale).await;
        let t0 = Instant::now();
        let mut n = 0u64;
        let mut pages = Box::pin(ids(client(portal.webhook_url(), args.time_scale)?, job));
        while let Some(p) = pages.next().await {
            n += p?.len() as u64;
        }
        println!(
            "{}",
            measured(&control, n, t0).line(entity, "reconcile (every ID)")
        );
    }
    portal.shutdown().await;
    Ok(())
}
