//! Push sync: b24ch writes rows into ClickHouse itself (for a ClickHouse that cannot reach
//! `serve`), with the same tables, cursor (watermark row), deletions and autopilot as the pull path.
mod insert;
mod progress;

pub use insert::ChunkedInsert;
pub use progress::Progress;

use crate::bitrix::Client;
use crate::bitrix::known_owners::{KnownOwners, OwnerSnapshot};
use crate::bitrix::methods::{crm_entity_type_id, owner_rows};
use crate::catalog::{Catalog, Entity};
use crate::clickhouse::ddl::Target;
use crate::clickhouse::quote::{ident, literal, qualified};
use crate::clickhouse::{ClickHouseError, Connection};
use crate::config::DeleteGuard;
use crate::pipeline::{self, EntityJob, PipelineError};
use crate::schema::WATERMARK_ID;
use crate::schema::{ChType, cursor_column, primary_key_column, table_columns};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
    #[error("{0}")]
    Encode(#[from] crate::encode::EncodeError),
    #[error("insert into {table} failed: {message}")]
    Insert { table: String, message: String },
    /// The reconcile would tombstone more rows than the entity's `DeleteGuard` allows.
    #[error("{0}")]
    MassDelete(String),
}

/// What one load did.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub entity: String,
    pub rows: u64,
    pub invalid: u64,
    pub since: Option<DateTime<Utc>>,
    pub watermark: Option<i64>,
    /// What a full load listed, where it can stand in for the reconcile's ID scan.
    pub listing: Option<FullListing>,
}

/// Every primary key a full (not incremental) load listed, and when it started. A complete
/// listing of the rows is the same evidence as an ID scan of them, so the deletion reconcile
/// right after it needs no second pass over the portal ([`reconcile_listed`]): for per-owner
/// tables (timeline comments) that pass costs as much as the load.
#[derive(Debug, Clone, Default)]
pub struct FullListing {
    keys: HashSet<String>,
    started_ms: u64,
}

impl FullListing {
    fn add(&mut self, keys: Vec<Value>) {
        self.keys.extend(keys.into_iter().map(key_text));
    }
}

/// A key as ClickHouse's `toString` writes it.
fn key_text(v: Value) -> String {
    match v {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// The cursor of the last complete load: the watermark row's modification time.
pub async fn cursor(
    conn: &Connection,
    t: &Target,
    job: &EntityJob,
) -> Result<Option<DateTime<Utc>>, ClickHouseError> {
    if !job.incremental() {
        return Ok(None);
    }
    let (Some(c), Some(k)) = (
        cursor_column(&job.columns),
        primary_key_column(&job.columns),
    ) else {
        return Ok(None);
    };
    let rows = conn
        .pairs(&format!(
            "SELECT ifNull(toString(toUnixTimestamp(max({}))), ''), '' FROM {} WHERE {} = {WATERMARK_ID}",
            ident(&c.name),
            qualified(&t.database, &job.entity.name),
            ident(&k.name)
        ))
        .await?;
    Ok(rows
        .first()
        .and_then(|(s, _)| s.parse::<i64>().ok())
        .filter(|s| *s > 0)
        .and_then(|s| DateTime::from_timestamp(s, 0)))
}

/// The job with the owners the owner tables hold, where it lists rows per owner and has no
/// complete load yet (its full load then reads only the owners changed since those tables'
/// watermarks from the portal, `bitrix::owners`). An owner table that is missing, never
/// completed a load or cannot be read is left out: its owners are listed from the portal.
pub async fn with_known_owners(
    conn: &Connection,
    t: &Target,
    catalog: &Catalog,
    job: Arc<EntityJob>,
) -> Result<Arc<EntityJob>, SyncError> {
    let Some(owners) = owner_rows(&job.entity.method) else {
        return Ok(job);
    };
    if cursor(conn, t, &job).await?.is_some() {
        return Ok(job);
    }
    let mut known = KnownOwners::default();
    for entity in &catalog.entities {
        let eid = crm_entity_type_id(&entity.method, entity.entity_type_id);
        let Some(eid) = eid.filter(|e| owners.owner_types.may_own(*e)) else {
            continue;
        };
        match owner_snapshot(conn, t, entity).await {
            Ok(Some(snapshot)) => {
                known.0.insert(eid, snapshot);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(entity = %entity.name, error = %e, "owners listed from the portal")
            }
        }
    }
    if known.0.is_empty() {
        return Ok(job);
    }
    Ok(Arc::new((*job).clone().with_known_owners(Arc::new(known))))
}

/// The live ids and modification times of one owner table, if it has completed a load.
async fn owner_snapshot(
    conn: &Connection,
    t: &Target,
    entity: &Entity,
) -> Result<Option<OwnerSnapshot>, SyncError> {
    let owner = EntityJob::new(entity.clone(), table_columns(entity))?;
    let Some(watermark) = cursor(conn, t, &owner).await? else {
        return Ok(None);
    };
    let (Some(c), Some(k)) = (
        cursor_column(&owner.columns),
        primary_key_column(&owner.columns),
    ) else {
        return Ok(None);
    };
    let rows = conn
        .pairs(&format!(
            "SELECT toString({k}), ifNull(formatDateTime({c}, '%Y-%m-%dT%H:%i:%S+00:00', 'UTC'), '') \
             FROM {} FINAL WHERE _is_deleted = 0 AND {k} != {WATERMARK_ID}",
            qualified(&t.database, &entity.name),
            k = ident(&k.name),
            c = ident(&c.name),
        ))
        .await?;
    let owners = rows
        .into_iter()
        .filter_map(|(id, time)| {
            let time = if time.is_empty() {
                Value::Null
            } else {
                Value::String(time)
            };
            Some((id.parse().ok()?, time))
        })
        .collect();
    Ok(Some(OwnerSnapshot {
        owners,
        changed_since: (watermark - pipeline::extract::DEFAULT_LOOKBACK).fixed_offset(),
    }))
}

/// When the last complete whole load of a table loaded whole every time was, if it has rows:
/// the oldest version among its live rows. Such a load rewrites every row it lists and the
/// reconcile tombstones the rest, so a live row older than that load means it did not complete.
pub async fn last_whole_load(
    conn: &Connection,
    t: &Target,
    job: &EntityJob,
) -> Result<Option<DateTime<Utc>>, ClickHouseError> {
    let rows = conn
        .pairs(&format!(
            "SELECT toString(min(_version)), toString(count()) FROM {} FINAL WHERE _is_deleted = 0",
            qualified(&t.database, &job.entity.name)
        ))
        .await?;
    Ok(rows
        .first()
        .filter(|(_, n)| n != "0")
        .and_then(|(v, _)| v.parse::<i64>().ok())
        .and_then(DateTime::from_timestamp_millis))
}

/// Loads one entity incrementally (or whole) into its table. The rows go as a series of
/// INSERTs, the watermark row in the last: rows written before a failure are true rows (the
/// next load reads them again), and the cursor of a broken load never lands
/// (`docs/architecture.md`, invariant 2).
pub async fn load(
    conn: &Connection,
    t: &Target,
    client: Arc<Client>,
    job: Arc<EntityJob>,
    progress: &Progress,
) -> Result<LoadReport, SyncError> {
    let table = qualified(&t.database, &job.entity.name);
    let since = cursor(conn, t, &job).await?;
    let mut report = LoadReport {
        entity: job.entity.name.clone(),
        since,
        ..Default::default()
    };
    // A full listing of a keyed entity is kept for the reconcile; a row without its key
    // drops it (the reconcile then scans, and says what is wrong).
    let mut listing =
        (since.is_none() && primary_key_column(&job.columns).is_some()).then(|| FullListing {
            started_ms: crate::schema::now_ms(),
            ..FullListing::default()
        });
    let job = match listing {
        Some(_) => Arc::new((*job).clone().keeping_listing()),
        None => job,
    };
    let mut insert = ChunkedInsert::new(conn, &table, &job.columns);
    let pages = pipeline::typed_rows(
        client,
        job.clone(),
        since,
        pipeline::extract::DEFAULT_LOOKBACK,
    );
    futures::pin_mut!(pages);
    while let Some(page) = pages.next().await {
        // An error here drops the rows still buffered, the watermark row among them.
        let page = page?;
        report.rows += page.rows.len() as u64;
        report.invalid += page.issues.len() as u64;
        report.watermark = page.watermark.or(report.watermark);
        if page.unkeyed > 0 {
            listing = None;
        }
        if let Some(l) = listing.as_mut() {
            l.add(page.listed);
        }
        progress.rows(page.rows.len() as u64);
        insert.write(&page.rows).await?;
    }
    insert.flush().await?;
    report.listing = listing;
    report.rows = report
        .rows
        .saturating_sub(u64::from(report.watermark.is_some()));
    Ok(report)
}

/// Writes tombstones for rows that vanished from the portal, with the default
/// [`DeleteGuard`] (see [`reconcile_guarded`]).
pub async fn reconcile(
    conn: &Connection,
    t: &Target,
    client: Arc<Client>,
    job: Arc<EntityJob>,
    safety_ms: u64,
) -> Result<u64, SyncError> {
    reconcile_guarded(conn, t, client, job, safety_ms, DeleteGuard::DEFAULT).await
}

/// Writes tombstones for rows that vanished from the portal. Only a complete ID listing is
/// compared: any listing error returns before anything is written (design invariant 4); so
/// does a pass that would tombstone more rows than `guard` allows.
pub async fn reconcile_guarded(
    conn: &Connection,
    t: &Target,
    client: Arc<Client>,
    job: Arc<EntityJob>,
    safety_ms: u64,
    guard: DeleteGuard,
) -> Result<u64, SyncError> {
    if primary_key_column(&job.columns).is_none() {
        return Ok(0);
    }
    let mut listed: HashSet<String> = HashSet::new();
    let ids = pipeline::ids(client, job.clone());
    futures::pin_mut!(ids);
    while let Some(page) = ids.next().await {
        listed.extend(page?.into_iter().map(key_text));
    }
    let cutoff = crate::schema::now_ms().saturating_sub(safety_ms);
    tombstone_unlisted(conn, t, &job, &listed, cutoff, guard).await
}

/// [`reconcile_guarded`] from what a full load just listed, without a request: only rows
/// written before that load started (and `safety_ms` ago) are compared, so a row another
/// writer added meanwhile is never taken as gone.
pub async fn reconcile_listed(
    conn: &Connection,
    t: &Target,
    job: &EntityJob,
    listing: &FullListing,
    safety_ms: u64,
    guard: DeleteGuard,
) -> Result<u64, SyncError> {
    let cutoff = crate::schema::now_ms()
        .saturating_sub(safety_ms)
        .min(listing.started_ms);
    tombstone_unlisted(conn, t, job, &listing.keys, cutoff, guard).await
}

/// Deletions after a load: from its listing if it was a full one ([`reconcile_listed`]), else
/// by an ID scan ([`reconcile_guarded`]).
pub async fn reconcile_after(
    conn: &Connection,
    t: &Target,
    client: Arc<Client>,
    job: Arc<EntityJob>,
    listing: Option<&FullListing>,
    safety_ms: u64,
    guard: DeleteGuard,
) -> Result<u64, SyncError> {
    match listing {
        Some(l) => reconcile_listed(conn, t, &job, l, safety_ms, guard).await,
        None => reconcile_guarded(conn, t, client, job, safety_ms, guard).await,
    }
}

/// Tombstones the live rows written before `cutoff_ms` whose keys are not in `listed`.
async fn tombstone_unlisted(
    conn: &Connection,
    t: &Target,
    job: &EntityJob,
    listed: &HashSet<String>,
    cutoff_ms: u64,
    guard: DeleteGuard,
) -> Result<u64, SyncError> {
    let Some(key) = primary_key_column(&job.columns).cloned() else {
        return Ok(0);
    };
    let numeric = matches!(
        key.ch_type.strip_nullable().0,
        ChType::Int64 | ChType::UInt64
    );
    let table = qualified(&t.database, &job.entity.name);
    // Only incremental entities have watermark rows; elsewhere key 0 is a real row.
    let watermark = if numeric && job.incremental() {
        format!(" AND {} != {WATERMARK_ID}", ident(&key.name))
    } else {
        String::new()
    };
    // Every live row with whether it is old enough to compare (`1`) or loaded too recently.
    let have = conn
        .pairs(&format!(
            "SELECT toString({}), toString(_version < {cutoff_ms}) FROM {table} FINAL WHERE _is_deleted = 0{watermark}",
            ident(&key.name)
        ))
        .await?;
    let live = have.len() as u64;
    let gone: Vec<String> = have
        .into_iter()
        .filter(|(k, old)| old == "1" && !listed.contains(k))
        .map(|(k, _)| k)
        .collect();
    if guard.refuses(gone.len() as u64, live) {
        return Err(SyncError::MassDelete(guard.refusal(
            &job.entity.name,
            gone.len() as u64,
            live,
        )));
    }
    for chunk in gone.chunks(10_000) {
        let keys = chunk
            .iter()
            .map(|k| if numeric { k.clone() } else { literal(k) })
            .collect::<Vec<_>>()
            .join(", ");
        conn.execute(&format!(
            "INSERT INTO {table} {}",
            crate::clickhouse::ddl::tombstones(
                &table,
                &format!("{} IN ({keys})", ident(&key.name))
            )
        ))
        .await?;
    }
    Ok(gone.len() as u64)
}
