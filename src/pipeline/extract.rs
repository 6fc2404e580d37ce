//! Extraction of one entity as typed rows: Bitrix24 listing → normalisation, page by page.
//!
//! Used by every way rows leave b24ch (`serve`, `sync`, executable modes). A complete
//! incremental-capable load ends with the **watermark row** (see `clickhouse::ddl`).
use super::companion::{CompanionJob, PrimaryRows};
pub use super::error::PipelineError;
use crate::bitrix::known_owners::KnownOwners;
use crate::bitrix::{self, BitrixError, Client, ListRequest, Page, RawRow};
use crate::catalog::Entity;
use crate::schema::WATERMARK_ID;
use crate::schema::{
    Cell, ChType, Column, NormalizeIssue, NormalizedRow, RowNormalizer, ServiceValues,
    cursor_column, primary_key_column,
};
use chrono::{DateTime, Duration, FixedOffset, Utc};
use futures::{Stream, StreamExt};
use serde_json::Value;
use std::sync::Arc;

/// How far before the last watermark an incremental load starts: covers rows committed
/// late within the same seconds and small clock differences (`docs/architecture.md`, invariant 3).
pub const DEFAULT_LOOKBACK: Duration = Duration::seconds(120);

/// One entity's extraction plan: which columns, how the portal encodes values.
#[derive(Debug, Clone)]
pub struct EntityJob {
    pub entity: Entity,
    pub columns: Arc<Vec<Column>>,
    normalizer: Arc<RowNormalizer>,
    spec: &'static bitrix::MethodSpec,
    pub(super) companion: Option<Arc<CompanionJob>>,
    /// Owners already held, for a full load of a per-owner table (`bitrix::owners`).
    known_owners: Option<Arc<KnownOwners>>,
    /// Whether pages carry the keys the portal listed ([`TypedPage::listed`]): only a full
    /// `sync` load uses them, and reading them is one more pass over each row.
    keep_listing: bool,
}

impl EntityJob {
    pub fn new(entity: Entity, columns: Vec<Column>) -> Result<Self, PipelineError> {
        let spec = bitrix::spec(&entity.method).ok_or_else(|| PipelineError::UnknownMethod {
            entity: entity.name.clone(),
            method: entity.method.clone(),
        })?;
        let normalizer = RowNormalizer::new(&columns, spec.value_style, &entity.name);
        let companion = CompanionJob::new(&entity, &columns)?.map(Arc::new);
        Ok(Self {
            entity,
            columns: Arc::new(columns),
            normalizer: Arc::new(normalizer),
            spec,
            companion,
            known_owners: None,
            keep_listing: false,
        })
    }

    /// The job with owners taken from the owner tables for its full loads (see
    /// `sync::with_known_owners`).
    pub fn with_known_owners(mut self, owners: Arc<KnownOwners>) -> Self {
        self.known_owners = Some(owners);
        self
    }

    /// The job with the listed keys on its pages (see [`TypedPage::listed`]).
    pub fn keeping_listing(mut self) -> Self {
        self.keep_listing = true;
        self
    }

    /// The primary list method's knowledge.
    pub fn spec(&self) -> &'static bitrix::MethodSpec {
        self.spec
    }

    /// Normalises one primary row (companion columns stay empty).
    pub fn normalize(
        &self,
        raw: &RawRow,
        service: &ServiceValues,
    ) -> Result<NormalizedRow, PipelineError> {
        self.normalizer
            .normalize_json(raw.json(), service)
            .map_err(|e| {
                BitrixError::Malformed {
                    method: self.entity.method.clone(),
                    status: 200,
                    message: format!("a row is not a JSON object: {e}"),
                }
                .into()
            })
    }

    /// Whether every load lists the whole table one owner (or parent) per command: no
    /// modification time to load by, and a cost that grows with the owners, not the changes
    /// (timeline comments, activity bindings). A one-shot `sync all` loads such a table only
    /// when its schedule says it is due (`sync::last_whole_load`); the schedule defaults to
    /// hourly (`config::WHOLE_PER_OWNER_TABLES`).
    pub fn whole_per_owner(&self) -> bool {
        !self.incremental() && self.spec.whole_per_owner()
    }

    /// Whether loads can be incremental (a cursor column and a numeric key for the watermark).
    pub fn incremental(&self) -> bool {
        self.cursor_index().is_some() && self.numeric_key()
    }

    fn cursor_index(&self) -> Option<usize> {
        let c = cursor_column(&self.columns)?;
        self.columns.iter().position(|x| x.name == c.name)
    }

    fn key_index(&self) -> Option<usize> {
        let k = primary_key_column(&self.columns)?;
        self.columns.iter().position(|x| x.name == k.name)
    }

    /// The row key the primary key column is read from.
    fn key_api(&self) -> Option<&str> {
        self.key_index().and_then(|i| self.columns[i].api_name())
    }

    fn numeric_key(&self) -> bool {
        primary_key_column(&self.columns)
            .is_some_and(|k| matches!(k.ch_type.strip_nullable().0, ChType::Int64 | ChType::UInt64))
    }

    /// The `select` list: every field column's API name (money parts share one), except the
    /// columns the companion fills.
    fn select(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (i, c) in self.columns.iter().enumerate() {
            if self.companion.as_ref().is_some_and(|cj| cj.fills(i)) {
                continue;
            }
            if let Some(api) = c.api_name() {
                // Methods whose row keys are derived from the codes are asked by code.
                let code = self.entity.fields.iter().find(|f| f.api_name == api);
                let name = self.spec.select_name(code.map_or(api, |f| &f.code), api);
                if !out.iter().any(|x| x == name) {
                    out.push(name.to_string());
                }
            }
        }
        out
    }

    pub(super) fn list_request(
        &self,
        modified_since: Option<DateTime<FixedOffset>>,
        ids_only: bool,
    ) -> ListRequest {
        ListRequest {
            method_key: self.entity.method.clone(),
            entity_type_id: self.entity.entity_type_id,
            select: if ids_only { Vec::new() } else { self.select() },
            modified_since,
            ids_only,
            extra_filter: Default::default(),
            known_owners: self.known_owners.clone(),
        }
    }
}

impl PrimaryRows for EntityJob {
    fn spec(&self) -> &'static bitrix::MethodSpec {
        EntityJob::spec(self)
    }
    fn normalize(
        &self,
        raw: &RawRow,
        service: &ServiceValues,
    ) -> Result<NormalizedRow, PipelineError> {
        EntityJob::normalize(self, raw, service)
    }
}

/// One page of typed rows.
#[derive(Debug, Default)]
pub struct TypedPage {
    pub rows: Vec<Vec<Cell>>,
    pub issues: Vec<NormalizeIssue>,
    /// The primary keys of the rows the portal listed for this page, read before any companion
    /// join (which leaves out a row that changed between its two reads): what a full load
    /// saw, for the deletion reconcile (`sync::FullListing`).
    pub listed: Vec<Value>,
    /// Listed rows without a primary key (or an entity without one): the listing cannot stand
    /// in for an ID scan. Both are filled only for a job [`EntityJob::keeping_listing`].
    pub unkeyed: usize,
    /// Set on the last page of a complete incremental-capable load: the cursor the next
    /// load may start from (unix seconds, portal clock).
    pub watermark: Option<i64>,
}

/// Rows of the entity modified at or after `since - lookback` (all rows if `None`), typed,
/// ending with the watermark row. Errors end the stream with an `Err`.
pub fn typed_rows(
    client: Arc<Client>,
    job: Arc<EntityJob>,
    since: Option<DateTime<Utc>>,
    lookback: Duration,
) -> impl Stream<Item = Result<TypedPage, PipelineError>> {
    // Methods whose rows appear after their cursor time reach further back (methods table).
    let lookback = lookback.max(Duration::seconds(job.spec.min_lookback_secs()));
    let from = if job.incremental() {
        since.map(|s| (s - lookback).fixed_offset())
    } else {
        None
    };
    let req = job.list_request(from, false);
    let governor = client.governor().clone();
    // The watermark is the portal's clock when the first page came back: whatever was
    // modified before is in this listing; whatever is modified later has a later
    // modification time. The next load's lookback covers the first request's duration.
    let started = Arc::new(std::sync::OnceLock::new());
    let first_seen = started.clone();
    let first_governor = governor.clone();
    // Pages of one batch answer arrive together: they are joined with the companion together,
    // and one group's join runs while the listing reads the next.
    let pages = bitrix::list(client.clone(), req)
        .ready_chunks(64)
        .inspect(move |_| {
            first_seen.get_or_init(|| first_governor.server_now() as i64);
        })
        .map({
            let job = job.clone();
            move |group| typed_group(client.clone(), job.clone(), group)
        })
        .buffered(2);
    async_stream::try_stream! {
        futures::pin_mut!(pages);
        while let Some(page) = pages.next().await {
            yield page?;
        }
        if job.incremental() {
            let watermark = started
                .get()
                .copied()
                .unwrap_or_else(|| governor.server_now() as i64);
            yield TypedPage {
                rows: vec![watermark_row(&job, watermark)],
                watermark: Some(watermark),
                ..TypedPage::default()
            };
        }
    }
}

/// One group of pages as typed rows: normalised, or joined with the companion's columns.
async fn typed_group(
    client: Arc<Client>,
    job: Arc<EntityJob>,
    group: Vec<Result<Page, BitrixError>>,
) -> Result<TypedPage, PipelineError> {
    let pages = group
        .into_iter()
        .collect::<Result<Vec<Page>, BitrixError>>()?;
    let (listed, unkeyed) = if job.keep_listing {
        listed_keys(&job, pages.iter().flat_map(|p| &p.rows))
    } else {
        (Vec::new(), 0)
    };
    let Some(companion) = &job.companion else {
        let rows: Vec<RawRow> = pages.into_iter().flat_map(|p| p.rows).collect();
        return Ok(TypedPage {
            listed,
            unkeyed,
            ..normalize_page(&job, &rows)?
        });
    };
    let (plain, batched): (Vec<Page>, Vec<Page>) =
        pages.into_iter().partition(|p| p.companion_plain);
    let mut out = TypedPage {
        listed,
        unkeyed,
        ..TypedPage::default()
    };
    for (pages, plain_calls) in [(batched, false), (plain, true)] {
        let rows: Vec<RawRow> = pages.into_iter().flat_map(|p| p.rows).collect();
        if rows.is_empty() {
            continue;
        }
        let part = joined_page(&client, &job, companion, &rows, plain_calls).await?;
        out.rows.extend(part.rows);
        out.issues.extend(part.issues);
    }
    Ok(out)
}

/// The primary keys of listed rows, and how many rows came without one.
fn listed_keys<'a>(job: &EntityJob, rows: impl Iterator<Item = &'a RawRow>) -> (Vec<Value>, usize) {
    let mut keys = Vec::new();
    let mut unkeyed = 0;
    for raw in rows {
        match job.key_api().and_then(|k| raw.get(k)) {
            Some(v) if !v.is_null() => keys.push(v),
            _ => unkeyed += 1,
        }
    }
    (keys, unkeyed)
}

fn normalize_page(job: &EntityJob, rows: &[RawRow]) -> Result<TypedPage, PipelineError> {
    let service = service_values(false);
    let mut out = TypedPage::default();
    out.rows.reserve(rows.len());
    for raw in rows {
        let n = job.normalize(raw, &service)?;
        out.issues.extend(n.issues);
        out.rows.push(n.cells);
    }
    Ok(out)
}

/// Primary rows joined with their companion columns; rows that changed between the two reads
/// are read again once, and left to the next incremental load if they are still changing.
pub(super) async fn joined_page(
    client: &Arc<Client>,
    job: &EntityJob,
    companion: &CompanionJob,
    rows: &[RawRow],
    plain_calls: bool,
) -> Result<TypedPage, PipelineError> {
    let service = service_values(false);
    let first = companion
        .join(client, job, rows, &service, plain_calls)
        .await?;
    let mut out = TypedPage {
        rows: first.rows,
        issues: first.issues,
        ..TypedPage::default()
    };
    if first.unsettled.is_empty() {
        return Ok(out);
    }
    let mut again = job.list_request(None, false);
    again.extra_filter.insert(
        format!("@{}", job.spec.id.filter),
        Value::from(first.unsettled.clone()),
    );
    let reread: Vec<RawRow> = bitrix::list(client.clone(), again)
        .map(|p| p.map(|p| p.rows))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    let second = companion
        .join(client, job, &reread, &service, plain_calls)
        .await?;
    if !second.unsettled.is_empty() {
        tracing::info!(
            entity = %job.entity.name,
            ids = ?second.unsettled,
            "rows changed while being read; the next incremental load reads them"
        );
    }
    out.rows.extend(second.rows);
    out.issues.extend(second.issues);
    Ok(out)
}

/// The rows with these keys (those that still exist), typed, without a watermark row: the
/// change feed's fetch of the rows Bitrix24 events named (`crate::events`). One listing
/// filtered by the keys (`@ID`), chained in batches like any listing, so 2,500 keys cost one
/// request (plus the companion's).
pub fn rows_by_ids(
    client: Arc<Client>,
    job: Arc<EntityJob>,
    ids: Vec<Value>,
) -> impl Stream<Item = Result<TypedPage, PipelineError>> {
    let mut req = job.list_request(None, false);
    req.extra_filter
        .insert(format!("@{}", job.spec.id.filter), Value::from(ids));
    bitrix::list(client.clone(), req)
        .ready_chunks(64)
        .then(move |group| typed_group(client.clone(), job.clone(), group))
}

/// Every current primary key of the entity, page by page (deletion reconciliation).
pub fn ids(
    client: Arc<Client>,
    job: Arc<EntityJob>,
) -> impl Stream<Item = Result<Vec<Value>, PipelineError>> {
    let req = job.list_request(None, true);
    let key_api = job.key_api().unwrap_or("ID").to_string();
    let method = job.spec.list;
    bitrix::list(client, req).map(move |page| {
        // A row without its key is a malformed answer: skipping it would tombstone that row.
        page?
            .rows
            .into_iter()
            .map(|r| match r.get(&key_api) {
                Some(v) if !v.is_null() => Ok(v),
                _ => Err(BitrixError::Malformed {
                    method: method.to_string(),
                    status: 200,
                    message: format!("a row of the ID listing has no `{key_api}`"),
                }
                .into()),
            })
            .collect()
    })
}

pub(super) fn service_values(is_deleted: bool) -> ServiceValues {
    let now = Utc::now().timestamp_millis();
    ServiceValues {
        loaded_at_ms: now,
        version: u64::try_from(now).unwrap_or(0),
        is_deleted,
    }
}

/// The row that records a complete load: key 0, cursor = watermark, defaults elsewhere.
fn watermark_row(job: &EntityJob, watermark: i64) -> Vec<Cell> {
    let service = service_values(false);
    let key = job.key_index();
    let cursor = job.cursor_index();
    job.columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if Some(i) == key {
                match c.ch_type.strip_nullable().0 {
                    ChType::UInt64 => Cell::UInt(WATERMARK_ID as u64),
                    _ => Cell::Int(WATERMARK_ID),
                }
            } else if Some(i) == cursor {
                Cell::DateTime(watermark)
            } else if let Some(s) = c.service() {
                service_cell(s, &service)
            } else {
                default_cell(&c.ch_type)
            }
        })
        .collect()
}

fn service_cell(s: crate::schema::ServiceColumn, v: &ServiceValues) -> Cell {
    use crate::schema::ServiceColumn as S;
    match s {
        S::DtInserted => Cell::DateTime(v.loaded_at_ms),
        S::Version => Cell::UInt(v.version),
        S::IsDeleted => Cell::UInt(u64::from(v.is_deleted)),
        S::Invalid => Cell::Map(Vec::new()),
    }
}

/// The value a non-nullable column takes in the watermark row.
fn default_cell(t: &ChType) -> Cell {
    match t {
        ChType::Nullable(_) => Cell::Null,
        ChType::Bool => Cell::Bool(false),
        ChType::UInt8 | ChType::UInt64 => Cell::UInt(0),
        ChType::Int64 => Cell::Int(0),
        ChType::Float64 => Cell::Float(0.0),
        ChType::Decimal { .. } => Cell::Decimal(0),
        ChType::Date32 => Cell::Date(0),
        ChType::DateTime64 { .. } => Cell::DateTime(0),
        ChType::String | ChType::LowCardinalityString => Cell::Str(String::new()),
        ChType::Array(_) => Cell::Array(Vec::new()),
        ChType::MultiField => Cell::Pairs(Vec::new()),
        ChType::Map => Cell::Map(Vec::new()),
    }
}
