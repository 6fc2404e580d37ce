//! `b24ch sync`: push rows into ClickHouse (same tables, cursor, deletions, autopilot as pull).
use crate::catalog::Catalog;
use crate::clickhouse::apply::{self, Mode};
use crate::clickhouse::plan::selected_columns;
use crate::clickhouse::{Connection, ddl::Target};
use crate::config::Config;
use crate::encode::Format;
use crate::pipeline::EntityJob;
use crate::portal::{self, DemoSettings};
use crate::sync::{self, FullListing, LoadReport, Progress};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct SyncArgs {
    /// Entities to load (`all` or none = every enabled entity).
    pub entities: Vec<String>,
    /// Keep running: every entity on its own schedule, deletions on theirs, autopilot on its interval.
    #[arg(long)]
    pub daemon: bool,
    /// Skip the deletion check of a one-shot run.
    #[arg(long)]
    pub no_reconcile: bool,
}

struct Ctx {
    config: Arc<Config>,
    conn: Connection,
    target: Target,
    client: Arc<crate::bitrix::Client>,
}

/// The entities to load. `all` skips the ones the portal refuses, with a warning naming each;
/// asking for one by name is an error in the portal's words with what to do.
fn wanted(catalog: &Catalog, args: &SyncArgs, config: &Config) -> anyhow::Result<Vec<String>> {
    if !all_named(args) {
        if let Some(u) = args.entities.iter().find_map(|e| catalog.unavailable(e)) {
            anyhow::bail!("{}", u.explain());
        }
        if let Some(bad) = args.entities.iter().find(|e| catalog.entity(e).is_none()) {
            let known: Vec<&str> = catalog.entities.iter().map(|e| e.name.as_str()).collect();
            return Err(super::BadInput(format!(
                "unknown entity `{bad}`; the portal has: {}",
                known.join(", ")
            ))
            .into());
        }
    }
    Ok(selected(catalog, args, config))
}

fn all_named(args: &SyncArgs) -> bool {
    args.entities.is_empty() || args.entities.iter().any(|e| e == "all")
}

/// Whether a `sync all` leaves this table for now: it is loaded whole, one owner per command
/// (its cost grows with the owners, not the changes), and its last complete load is younger
/// than its schedule. Naming the entity loads it anyway.
async fn not_due(ctx: &Ctx, job: &EntityJob) -> bool {
    if !job.whole_per_owner() {
        return false;
    }
    let name = &job.entity.name;
    let schedule = ctx.config.entity(name).schedule;
    let last = match sync::last_whole_load(&ctx.conn, &ctx.target, job).await {
        Ok(Some(t)) => t,
        Ok(None) => return false,
        Err(e) => {
            tracing::debug!(entity = %name, error = %e, "last whole load unknown; loading");
            return false;
        }
    };
    let age = (chrono::Utc::now() - last).to_std().unwrap_or_default();
    if age >= schedule.as_duration() {
        return false;
    }
    tracing::info!(
        entity = %name,
        loaded_secs_ago = age.as_secs(),
        schedule = %schedule.sql(),
        "not due: this table is listed whole, one owner per command, and its last complete load is younger than its schedule; `b24ch sync {name}` loads it now"
    );
    true
}

/// The enabled entities of the catalog the arguments name (all of them for `all`).
fn selected(catalog: &Catalog, args: &SyncArgs, config: &Config) -> Vec<String> {
    let all = all_named(args);
    catalog
        .entities
        .iter()
        .filter(|e| config.entity(&e.name).enabled)
        .filter(|e| all || args.entities.contains(&e.name))
        .map(|e| e.name.clone())
        .collect()
}

/// Warns about every enabled entity the portal refuses (a `sync all` skips them).
fn warn_unavailable(catalog: &Catalog, config: &Config) {
    for u in catalog
        .unavailable
        .iter()
        .filter(|u| config.entity(&u.entity).enabled)
    {
        tracing::warn!(entity = %u.entity, "skipped: {}", u.explain());
    }
}

/// Converges the tables (push mode); returns the catalog and the entities to skip.
async fn converge(ctx: &Ctx) -> anyhow::Result<(Catalog, Vec<String>)> {
    let catalog = crate::catalog::discover(&ctx.client).await?;
    let report = apply::apply_mode(
        &ctx.conn,
        &ctx.config,
        &catalog,
        Format::Parquet,
        Mode::Push,
    )
    .await?;
    for (entity, change) in report.changes() {
        tracing::info!(%entity, %change, "schema");
    }
    for problem in report.problems() {
        tracing::error!(%problem, "schema");
    }
    // Entities whose convergence failed are not loaded either (their table may be behind).
    let blocked = report
        .paused_entities()
        .into_iter()
        .chain(
            report
                .failed_entities
                .iter()
                .filter_map(|f| f.split(':').next().map(str::to_string)),
        )
        .collect();
    Ok((catalog, blocked))
}

fn job(ctx: &Ctx, catalog: &Catalog, name: &str) -> anyhow::Result<Arc<EntityJob>> {
    let entity = catalog
        .entity(name)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("entity {name} left the portal"))?;
    let columns = selected_columns(&entity, &ctx.config.entity(name));
    Ok(Arc::new(EntityJob::new(entity, columns)?))
}

/// The job with the owners its owner tables hold, for a per-owner table's first load (else
/// the job as it is; an error here only means the owners are listed from the portal).
async fn owners_known(ctx: &Ctx, catalog: &Catalog, job: Arc<EntityJob>) -> Arc<EntityJob> {
    match sync::with_known_owners(&ctx.conn, &ctx.target, catalog, job.clone()).await {
        Ok(j) => j,
        Err(e) => {
            tracing::debug!(entity = %job.entity.name, error = %e, "owners listed from the portal");
            job
        }
    }
}

async fn load_one(ctx: &Ctx, job: Arc<EntityJob>, show: bool) -> anyhow::Result<LoadReport> {
    let name = job.entity.name.clone();
    let progress = if show {
        Progress::new(&name)
    } else {
        Progress::hidden(&name)
    };
    // This load's own requests and portal time, even while other entities load concurrently.
    let meter = crate::bitrix::Meter::new();
    let started = Instant::now();
    let r = meter
        .measure(sync::load(
            &ctx.conn,
            &ctx.target,
            ctx.client.clone(),
            job,
            &progress,
        ))
        .await;
    let requests = meter.requests();
    let operating_secs = format!("{:.3}", meter.operating_secs());
    let duration_ms = started.elapsed().as_millis() as u64;
    match r {
        Ok(r) => {
            progress.finish("done");
            tracing::info!(entity = %name, rows = r.rows, requests, operating_secs, duration_ms, since = ?r.since, cursor = ?r.watermark, invalid = r.invalid, "load");
            Ok(r)
        }
        Err(e) => {
            progress.finish("failed");
            tracing::error!(entity = %name, requests, operating_secs, duration_ms, error = %e, "load failed; the next run starts from the last complete load");
            Err(e.into())
        }
    }
}

/// Deletions of one entity: from the listing of the full load just done, or by an ID scan.
async fn reconcile_one(
    ctx: &Ctx,
    job: Arc<EntityJob>,
    listing: Option<&FullListing>,
) -> anyhow::Result<()> {
    let name = job.entity.name.clone();
    let settings = ctx.config.entity(&name);
    let source = match listing {
        Some(_) => "the full load's listing",
        None => "an ID scan",
    };
    let r = sync::reconcile_after(
        &ctx.conn,
        &ctx.target,
        ctx.client.clone(),
        job,
        listing,
        settings.reconcile_safety_ms(),
        settings.delete_guard,
    )
    .await;
    match r {
        Ok(n) => {
            tracing::info!(entity = %name, tombstones = n, from = source, "deletions reconciled");
            Ok(())
        }
        Err(e) => {
            tracing::error!(entity = %name, error = %e, "reconcile failed; no tombstone written");
            Err(e.into())
        }
    }
}

pub async fn run(mut config: Config, args: SyncArgs) -> anyhow::Result<()> {
    let portal = portal::connect(&mut config, DemoSettings::default()).await?;
    let conn = Connection::connect(&config.clickhouse)?;
    let ctx = Ctx {
        target: apply::target(&config),
        config: Arc::new(config),
        conn,
        client: portal.client.clone(),
    };
    if args.daemon {
        return daemon(ctx, args).await;
    }
    let (catalog, blocked) = converge(&ctx).await?;
    let names = wanted(&catalog, &args, &ctx.config)?;
    warn_unavailable(&catalog, &ctx.config);
    let mut failed = Vec::new();
    for name in names {
        if blocked.contains(&name) {
            failed.push(format!("{name} (schema needs a decision, see the log)"));
            continue;
        }
        let j = job(&ctx, &catalog, &name)?;
        if all_named(&args) && not_due(&ctx, &j).await {
            continue;
        }
        let j = owners_known(&ctx, &catalog, j).await;
        let ok = match load_one(&ctx, j.clone(), true).await {
            Ok(_) if args.no_reconcile => true,
            Ok(r) => reconcile_one(&ctx, j, r.listing.as_ref()).await.is_ok(),
            Err(_) => false,
        };
        if !ok {
            failed.push(name);
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("sync failed for: {} (see the log above)", failed.join(", "));
    }
    Ok(())
}

/// Every entity on its own schedule; deletions and the autopilot on theirs.
async fn daemon(ctx: Ctx, args: SyncArgs) -> anyhow::Result<()> {
    let (mut catalog, mut blocked) = converge(&ctx).await?;
    wanted(&catalog, &args, &ctx.config)?;
    warn_unavailable(&catalog, &ctx.config);
    let mut next_load: HashMap<String, Instant> = HashMap::new();
    let mut next_reconcile: HashMap<String, Instant> = HashMap::new();
    let mut next_autopilot = Instant::now() + ctx.config.proxy.autopilot_interval.as_duration();
    loop {
        let now = Instant::now();
        if now >= next_autopilot {
            match converge(&ctx).await {
                Ok((c, b)) => {
                    (catalog, blocked) = (c, b);
                    warn_unavailable(&catalog, &ctx.config);
                }
                Err(e) => {
                    tracing::error!(error = %e, "autopilot failed; keeping the previous catalog")
                }
            }
            next_autopilot = now + ctx.config.proxy.autopilot_interval.as_duration();
        }
        // An entity the portal stops serving mid-run is skipped (warned at each autopilot
        // pass) and comes back when it serves it again.
        for name in selected(&catalog, &args, &ctx.config)
            .into_iter()
            .filter(|n| !blocked.contains(n))
        {
            let settings = ctx.config.entity(&name);
            let Ok(j) = job(&ctx, &catalog, &name) else {
                continue;
            };
            let mut listing = None;
            if next_load.get(&name).is_none_or(|t| now >= *t) {
                let j = owners_known(&ctx, &catalog, j.clone()).await;
                listing = load_one(&ctx, j, false).await.ok().and_then(|r| r.listing);
                next_load.insert(
                    name.clone(),
                    Instant::now() + settings.schedule.as_duration(),
                );
            }
            if next_reconcile.get(&name).is_none_or(|t| now >= *t) {
                let _ = reconcile_one(&ctx, j, listing.as_ref()).await;
                next_reconcile.insert(
                    name.clone(),
                    Instant::now() + settings.reconcile_schedule.as_duration(),
                );
            }
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
