//! Head-to-head full listing under cloud limits, plus incremental and reconcile cost.
//!
//! One in-process demo portal (cloud limits on, calibrated cost model, `--time-scale`), the
//! same portal for every client, one after another, each starting on fresh budgets (the bench
//! waits one operating window between clients):
//! - b24ch, `crm.item.list` (entityTypeId 2, `*` + `UF_*`: what `crm_deal` is loaded with);
//! - b24ch, `crm_deal` as `serve` loads it: `crm.item.list` joined with its companion
//!   `crm.deal.list` (legacy-only fields and half the shared columns, on the second budget);
//! - b24ch, `crm.deal.list` (`*` + `UF_*`: the method and select the peers use);
//! - fast_bitrix24 `get_all('crm.deal.list', {'select': ['*', 'UF_*']})` (subprocess);
//! - b24pysdk `call_list_fast('crm.deal.list', …)` (subprocess);
//! - b24ch incremental pass (0.1% of the deals modified) and reconcile ID listing.
//!
//! The Python clients run on the portal's clock (`scripts/bench/scaled_clock.py`), as b24ch's
//! governor does (`clock_scale`). Numbers come from the portal's own counters.
//!
//! `cargo run --release --example bench_listing -- --deals 100000 --time-scale 100`
use anyhow::Context;
use b24ch::bitrix::governor::GovernorConfig;
use b24ch::bitrix::{AuthConfig, Client, ClientConfig, Governor, ListRequest, list};
use b24ch::config::Secret;
use bitrix24_emulator::{
    self, BatchBilling, CostModel, DataSizes, LimitsConfig, NestedFigures, PortalConfig,
};
use clap::Parser;
use futures::StreamExt;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value_t = 100_000)]
    deals: u64,
    /// Simulated portal seconds per real second (every client's clock runs at this scale).
    #[arg(long, default_value_t = 100.0)]
    time_scale: f64,
    /// `per-method` (docs, server source), `whole-batch-a|b|c` (a batch billed to the `batch`
    /// key; nested figures of the nested method / of the `batch` key's running total /
    /// absent; `whole-batch` = a) or `both`.
    #[arg(long, default_value = "per-method")]
    billing: String,
    /// Scale factor on every cost coefficient of the portal's cost model.
    #[arg(long, default_value_t = 1.0)]
    cost: f64,
    /// Python of the venv with fast-bitrix24 and b24pysdk (scripts/bench/setup_peers.sh).
    #[arg(long, default_value = ".build/pyenv/bin/python")]
    python: PathBuf,
    /// Comma-separated: item,pipeline,deal,fast,pysdk,incremental
    #[arg(long, default_value = "item,pipeline,deal,fast,pysdk,incremental")]
    run: String,
    /// Kill a peer that has not finished after this many real seconds.
    #[arg(long, default_value_t = 1800)]
    peer_timeout_secs: u64,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Debug, Clone, serde::Serialize)]
struct Row {
    client: String,
    rows: u64,
    unique_ids: u64,
    wall_secs: f64,
    portal_secs: f64,
    http_requests: u64,
    list_commands: u64,
    count_queries: u64,
    operating_secs: f64,
    http_503: u64,
    http_429: u64,
    /// Operating seconds of the method that spent the most (the budget that binds).
    busiest_method_secs: f64,
    /// Operating seconds billed per key.
    per_key: std::collections::BTreeMap<String, f64>,
    error: Option<String>,
}

impl Row {
    fn op_ms_per_row(&self) -> f64 {
        1000.0 * self.operating_secs / self.rows.max(1) as f64
    }
    fn rows_per_sec(&self) -> f64 {
        self.rows as f64 / self.wall_secs.max(1e-9)
    }
}

struct Bench {
    portal: bitrix24_emulator::RunningPortal,
    scale: f64,
    window_secs: f64,
}

impl Bench {
    fn control(&self) -> &bitrix24_emulator::PortalControl {
        self.portal.control()
    }

    /// One operating window (plus a margin) so the next client starts on fresh budgets and an
    /// empty leaky bucket, then zeroed counters.
    async fn fresh(&self) {
        let real = (self.window_secs + 30.0) / self.scale;
        tokio::time::sleep(Duration::from_secs_f64(real)).await;
        self.control().reset_counters();
    }

    fn client(&self) -> anyhow::Result<Arc<Client>> {
        let gov = Governor::new(GovernorConfig {
            clock_scale: self.scale,
            ..GovernorConfig::standard()
        });
        let cfg = ClientConfig::new(AuthConfig::Webhook {
            url: Secret::new(self.portal.webhook_url()),
        });
        Ok(Arc::new(Client::new(cfg, gov)?))
    }

    fn measure(&self, client: &str, rows: u64, unique: u64, t0: Instant, p0: f64) -> Row {
        let c = self.control().counters();
        Row {
            client: client.into(),
            rows,
            unique_ids: unique,
            wall_secs: t0.elapsed().as_secs_f64(),
            portal_secs: self.control().now() - p0,
            http_requests: c.requests_total,
            list_commands: c
                .per_method
                .iter()
                .filter(|(m, _)| m.ends_with(".list"))
                .map(|(_, n)| n)
                .sum(),
            count_queries: c.count_queries,
            operating_secs: c.operating_secs.values().sum(),
            http_503: c.query_limit_exceeded,
            http_429: c.operation_time_limit,
            busiest_method_secs: c.operating_secs.values().copied().fold(0.0, f64::max),
            per_key: c.operating_secs.clone(),
            error: None,
        }
    }

    async fn b24ch(&self, label: &str, req: ListRequest) -> anyhow::Result<Row> {
        self.fresh().await;
        let client = self.client()?;
        let (t0, p0) = (Instant::now(), self.control().now());
        let (rows, ids, error) = drain(list(client, req), |p| {
            p.rows
                .iter()
                .map(|r| {
                    r.get("id")
                        .or_else(|| r.get("ID"))
                        .map(|id| id.to_string().trim_matches('"').to_string())
                        .unwrap_or_default()
                })
                .collect()
        })
        .await;
        let mut row = self.measure(label, rows, ids.len() as u64, t0, p0);
        row.error = error;
        Ok(row)
    }

    /// What `serve` / `sync` run for `crm_deal`: discovery, then the typed rows of the entity
    /// (primary `crm.item.list` joined with its companion `crm.deal.list`).
    async fn pipeline(&self, label: &str) -> anyhow::Result<Row> {
        self.fresh().await;
        let client = self.client()?;
        let (t0, p0) = (Instant::now(), self.control().now());
        let catalog = b24ch::catalog::discover(&client).await?;
        let entity = catalog
            .entity("crm_deal")
            .context("no crm_deal in the catalog")?
            .clone();
        let columns = b24ch::schema::table_columns(&entity);
        let job = Arc::new(b24ch::pipeline::EntityJob::new(entity, columns)?);
        let pages = b24ch::pipeline::typed_rows(client, job, None, chrono::Duration::zero());
        // The watermark page's one row records the load; it is no deal.
        let (rows, ids, error) = drain(pages, |p| match p.watermark {
            Some(_) => Vec::new(),
            None => p.rows.iter().map(|r| format!("{:?}", r.first())).collect(),
        })
        .await;
        let mut row = self.measure(label, rows, ids.len() as u64, t0, p0);
        row.error = error;
        Ok(row)
    }

    async fn peer(&self, python: &PathBuf, script: &str, timeout: u64) -> anyhow::Result<Row> {
        self.fresh().await;
        let (t0, p0) = (Instant::now(), self.control().now());
        let dir = PathBuf::from("scripts/bench");
        let python = std::path::absolute(python)?;
        let child = tokio::process::Command::new(&python)
            .arg(script)
            .arg(self.portal.webhook_url())
            .arg(self.scale.to_string())
            .current_dir(&dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("running {} {script}", python.display()))?;
        let out =
            tokio::time::timeout(Duration::from_secs(timeout), child.wait_with_output()).await;
        let (label, rows, unique, error) = match out {
            Ok(Ok(o)) => {
                let text = String::from_utf8_lossy(&o.stdout);
                let line = text.lines().rev().find(|l| l.starts_with('{'));
                match line.and_then(|l| serde_json::from_str::<Value>(l).ok()) {
                    Some(v) => (
                        v["client"].as_str().unwrap_or(script).to_string(),
                        v["rows"].as_u64().unwrap_or(0),
                        v["unique_ids"].as_u64().unwrap_or(0),
                        v["error"].as_str().map(str::to_string),
                    ),
                    None => (
                        script.to_string(),
                        0,
                        0,
                        Some(format!(
                            "no result line; stderr: {}",
                            String::from_utf8_lossy(&o.stderr)
                                .chars()
                                .rev()
                                .take(600)
                                .collect::<String>()
                                .chars()
                                .rev()
                                .collect::<String>()
                        )),
                    ),
                }
            }
            Ok(Err(e)) => (script.to_string(), 0, 0, Some(e.to_string())),
            Err(_) => (
                script.to_string(),
                0,
                0,
                Some(format!("killed after {timeout} s")),
            ),
        };
        let mut row = self.measure(&label, rows, unique, t0, p0);
        row.error = error;
        Ok(row)
    }
}

fn deals_item() -> ListRequest {
    ListRequest {
        method_key: "crm.item".into(),
        entity_type_id: Some(2),
        ..Default::default()
    }
}

fn print_table(rows: &[Row], budget_per_window: f64, window: f64) {
    println!(
        "\n| Client | Rows (unique) | Wall s | Portal s | HTTP req | list cmds | COUNT | Operating s | op ms/row | 503 | 429 | Rows/s (wall) | Busiest method op s | Sustainable rows/s | Error |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for r in rows {
        // Each method has its own budget: the one spending the most bounds the rate.
        let sustainable =
            budget_per_window / window / (r.busiest_method_secs / r.rows.max(1) as f64);
        println!(
            "| {} | {} ({}) | {:.1} | {:.0} | {} | {} | {} | {:.1} | {:.2} | {} | {} | {:.0} | {:.1} | {:.1} | {} |",
            r.client,
            r.rows,
            r.unique_ids,
            r.wall_secs,
            r.portal_secs,
            r.http_requests,
            r.list_commands,
            r.count_queries,
            r.operating_secs,
            r.op_ms_per_row(),
            r.http_503,
            r.http_429,
            r.rows_per_sec(),
            r.busiest_method_secs,
            sustainable,
            r.error.as_deref().unwrap_or("")
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // RUST_LOG=b24ch=info shows the governor's pauses with their evidence.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let (billing, nested) = match args.billing.as_str() {
        "per-method" => (BatchBilling::PerMethod, NestedFigures::Own),
        "whole-batch" | "whole-batch-a" => (BatchBilling::WholeBatch, NestedFigures::Own),
        "whole-batch-b" => (BatchBilling::WholeBatch, NestedFigures::BatchTotal),
        "whole-batch-c" => (BatchBilling::WholeBatch, NestedFigures::Absent),
        "both" => (BatchBilling::Both, NestedFigures::Own),
        other => anyhow::bail!(
            "--billing: per-method, whole-batch-a, whole-batch-b, whole-batch-c or both, not {other}"
        ),
    };
    let limits = LimitsConfig {
        batch_billing: billing,
        nested_figures: nested,
        ..LimitsConfig::default()
    };
    let (budget, window) = (limits.operating_limit_secs, limits.window_secs as f64);
    let cfg = PortalConfig {
        sizes: DataSizes {
            deals: args.deals,
            ..DataSizes::default()
        },
        limits,
        time_scale: args.time_scale,
        cost: CostModel {
            scale: args.cost,
            ..CostModel::default()
        },
        ..PortalConfig::default()
    };
    let portal = bitrix24_emulator::start(cfg, "127.0.0.1:0".parse()?).await?;
    let bench = Bench {
        portal,
        scale: args.time_scale,
        window_secs: window,
    };
    let truth = bench.control().ground_truth("deal")?.len();
    println!(
        "portal {} deals, time scale {}, billing {:?}, budget {budget} s / {window} s per method",
        truth, args.time_scale, billing
    );
    let run: Vec<&str> = args.run.split(',').map(str::trim).collect();
    let mut rows = Vec::new();
    let mut emit = |r: Row| {
        println!("{}", serde_json::to_string(&r).unwrap_or_default());
        rows.push(r);
    };
    if run.contains(&"item") {
        emit(bench.b24ch("b24ch crm.item.list", deals_item()).await?);
    }
    if run.contains(&"pipeline") {
        emit(
            bench
                .pipeline("b24ch crm_deal (crm.item + crm.deal)")
                .await?,
        );
    }
    if run.contains(&"deal") {
        let req = ListRequest {
            method_key: "crm.deal".into(),
            ..Default::default()
        };
        emit(bench.b24ch("b24ch crm.deal.list", req).await?);
    }
    if run.contains(&"fast") {
        emit(
            bench
                .peer(
                    &args.python,
                    "peer_fast_bitrix24.py",
                    args.peer_timeout_secs,
                )
                .await?,
        );
    }
    if run.contains(&"pysdk") {
        emit(
            bench
                .peer(&args.python, "peer_b24pysdk.py", args.peer_timeout_secs)
                .await?,
        );
    }
    if run.contains(&"incremental") {
        // 0.1% of the deals, spread over the table, modified now on the portal's clock.
        let n = (args.deals / 1000).max(1);
        let step = (args.deals / n).max(1);
        let changed: Vec<u64> = (0..n).map(|i| 1 + i * step).collect();
        let now = bench.control().now().floor() as i64;
        bench
            .control()
            .modify_rows("deal", &changed, &Map::new(), Some(now))?;
        let since = chrono::DateTime::from_timestamp(now - 1, 0)
            .context("timestamp")?
            .fixed_offset();
        let req = ListRequest {
            modified_since: Some(since),
            ..deals_item()
        };
        emit(
            bench
                .b24ch(&format!("b24ch incremental ({n} changed)"), req)
                .await?,
        );
        let req = ListRequest {
            ids_only: true,
            ..deals_item()
        };
        emit(bench.b24ch("b24ch reconcile (ID listing)", req).await?);
    }
    print_table(&rows, budget, window);
    print_issue16(&rows, billing, budget, window);
    if let Some(path) = args.json {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&json!({
                "deals": truth,
                "time_scale": args.time_scale,
                "billing": args.billing,
                "cost": args.cost,
                "results": rows,
            }))?,
        )?;
    }
    Ok(())
}

/// Operating seconds of work a run cost: every method key's bill, plus the `batch` key's
/// where batches are billed to it alone (under `both` it repeats the methods' bill).
fn work_secs(r: &Row, billing: BatchBilling) -> f64 {
    r.per_key
        .iter()
        .filter(|(k, _)| *k != "batch" || billing == BatchBilling::WholeBatch)
        .map(|(_, v)| v)
        .sum()
}

/// The figures issue 16 asks for, per client: operating seconds per 1,000 rows, the busiest
/// key's seconds, sustainable rows/s (rows ÷ busiest key's seconds × budget/window) and the
/// paced time to a complete load (busiest key's seconds ÷ budget × window), each against
/// b24pysdk's in the same run.
fn print_issue16(rows: &[Row], billing: BatchBilling, budget: f64, window: f64) {
    let pysdk = rows.iter().find(|r| r.client.contains("b24pysdk"));
    let sustainable = |r: &Row| r.rows as f64 / r.busiest_method_secs.max(1e-9) * budget / window;
    let paced = |r: &Row| r.busiest_method_secs / budget * window;
    println!(
        "\n| Client | Rows | Op s / 1,000 rows | vs b24pysdk | Busiest key (s) | Sustainable rows/s | vs b24pysdk | Paced time to complete (s) | vs b24pysdk | Portal s measured | 429 | Keys billed |"
    );
    println!("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|");
    for r in rows.iter().filter(|r| r.error.is_none() || r.rows > 0) {
        let op = 1000.0 * work_secs(r, billing) / r.rows.max(1) as f64;
        let (vs_op, vs_sus, vs_paced) = match pysdk.filter(|p| p.rows > 0) {
            Some(p) => (
                format!(
                    "{:.2}×",
                    op / (1000.0 * work_secs(p, billing) / p.rows.max(1) as f64)
                ),
                format!("{:.2}×", sustainable(r) / sustainable(p)),
                format!("{:.2}×", paced(r) / paced(p)),
            ),
            None => ("—".into(), "—".into(), "—".into()),
        };
        let busiest = r
            .per_key
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(k, v)| format!("{v:.1} (`{k}`)"))
            .unwrap_or_default();
        let keys: Vec<String> = r
            .per_key
            .iter()
            .filter(|(_, v)| **v >= 1.0)
            .map(|(k, v)| format!("{k} {v:.0}"))
            .collect();
        println!(
            "| {} | {} | {op:.2} | {vs_op} | {busiest} | {:.1} | {vs_sus} | {:.0} | {vs_paced} | {:.0} | {} | {} |",
            r.client,
            r.rows,
            sustainable(r),
            paced(r),
            r.portal_secs,
            r.http_429,
            keys.join(", ")
        );
    }
}

/// Reads a page stream to its end or first error: rows, distinct row IDs (as `ids_of` names
/// them, one per row) and the error.
async fn drain<P, E: std::fmt::Display>(
    pages: impl futures::Stream<Item = Result<P, E>>,
    ids_of: impl Fn(&P) -> Vec<String>,
) -> (u64, BTreeSet<String>, Option<String>) {
    let mut pages = Box::pin(pages);
    let (mut rows, mut ids) = (0u64, BTreeSet::new());
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => {
                let page_ids = ids_of(&p);
                rows += page_ids.len() as u64;
                ids.extend(page_ids);
            }
            Err(e) => return (rows, ids, Some(e.to_string())),
        }
    }
    (rows, ids, None)
}
