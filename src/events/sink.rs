//! Changes into ClickHouse: tombstones for deletions at once; changed rows fetched by id and
//! inserted (push), or the entity's load view refreshed (pull).
use super::{ChangeKind, EventsError, Notice};
use crate::bitrix::Batch;
use crate::bitrix::Client;
use crate::catalog::Catalog;
use crate::clickhouse::Connection;
use crate::clickhouse::ddl::{self, Target};
use crate::clickhouse::plan::selected_columns;
use crate::clickhouse::quote::{ident, literal, qualified};
use crate::config::Config;
use crate::pipeline::{self, EntityJob, changed};
use crate::schema::Cell;
use crate::schema::primary_key_column;
use crate::sync::ChunkedInsert;
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// The rows of `upserts` found in `prefetched`, and the ids left to fetch.
fn split_prefetched(
    upserts: &BTreeSet<u64>,
    prefetched: Option<&HashMap<i64, Vec<Cell>>>,
) -> (Vec<Vec<Cell>>, Vec<u64>) {
    let mut have = Vec::new();
    let mut missing = Vec::new();
    for &id in upserts {
        let row = i64::try_from(id)
            .ok()
            .and_then(|i| prefetched.and_then(|p| p.get(&i)));
        match row {
            Some(r) => have.push(r.clone()),
            None => missing.push(id),
        }
    }
    (have, missing)
}

/// Ids per fetch: one listing chains 50 pages of 50 in one batch request.
pub const FETCH_CHUNK: usize = 2_500;

/// Rows already read (typed, by entity and ID), such as the changed rows the feed reads in the
/// same request as the queue (`pipeline::changed`).
pub type Prefetched = BTreeMap<String, HashMap<i64, Vec<Cell>>>;

/// Who moves rows into ClickHouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// b24ch fetches the changed rows and inserts them (`sync`, `b24ch events`).
    Push,
    /// ClickHouse pulls from `serve`: the entity's load view is refreshed and waited for.
    Pull,
}

/// Where the current catalog comes from (it changes under `serve`'s autopilot).
pub type CatalogSource = Arc<dyn Fn() -> Arc<Catalog> + Send + Sync>;

pub struct Sink {
    pub conn: Connection,
    pub client: Arc<Client>,
    pub config: Arc<Config>,
    pub catalog: CatalogSource,
    pub mode: Mode,
}

/// What one [`Sink::apply`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Rows fetched and inserted (push) by id.
    pub rows: u64,
    /// Of `rows`, those already read when the lease was (`Sink::apply_with`).
    pub prefetched_rows: u64,
    pub tombstones: u64,
    /// Load views refreshed (pull) or incremental loads run (push, changes without an id).
    pub loads: u64,
    /// Reconciles run for deletions without an id.
    pub reconciles: u64,
    /// Notices for entities b24ch does not load here.
    pub ignored: u64,
}

impl Applied {
    pub fn add(&mut self, other: &Applied) {
        self.rows += other.rows;
        self.prefetched_rows += other.prefetched_rows;
        self.tombstones += other.tombstones;
        self.loads += other.loads;
        self.reconciles += other.reconciles;
        self.ignored += other.ignored;
    }
}

#[derive(Default)]
struct EntityChanges {
    upserts: BTreeSet<u64>,
    deletes: BTreeSet<u64>,
    upsert_unknown: bool,
    delete_unknown: bool,
}

impl Sink {
    fn target(&self) -> Target {
        crate::clickhouse::apply::target(&self.config)
    }

    /// Writes the changes; returns only when they are in ClickHouse (or fails, having
    /// written some of them: writing them again is harmless).
    pub async fn apply(&self, notices: &[Notice]) -> Result<Applied, EventsError> {
        self.apply_with(notices, &Prefetched::new()).await
    }

    /// [`Self::apply`], taking the rows of upserts from `prefetched` where it has them (push
    /// mode) and fetching only the others.
    pub async fn apply_with(
        &self,
        notices: &[Notice],
        prefetched: &Prefetched,
    ) -> Result<Applied, EventsError> {
        let mut by_entity: BTreeMap<&str, EntityChanges> = BTreeMap::new();
        for n in notices {
            let c = by_entity.entry(&n.entity).or_default();
            match (n.kind, n.id) {
                (ChangeKind::Upsert, Some(id)) => {
                    c.upserts.insert(id);
                }
                (ChangeKind::Delete, Some(id)) => {
                    c.deletes.insert(id);
                }
                (ChangeKind::Upsert, None) => c.upsert_unknown = true,
                (ChangeKind::Delete, None) => c.delete_unknown = true,
            }
        }
        let catalog = (self.catalog)();
        let mut applied = Applied::default();
        for (entity, changes) in by_entity {
            let Some(job) = self.job(&catalog, entity)? else {
                applied.ignored += 1;
                continue;
            };
            let have = prefetched.get(entity);
            self.apply_entity(job, changes, have, &mut applied).await?;
        }
        Ok(applied)
    }

    pub(super) fn job(
        &self,
        catalog: &Catalog,
        entity: &str,
    ) -> Result<Option<Arc<EntityJob>>, EventsError> {
        let Some(e) = catalog.entity(entity) else {
            return Ok(None);
        };
        let settings = self.config.entity(entity);
        if !settings.enabled {
            return Ok(None);
        }
        let columns = selected_columns(e, &settings);
        Ok(Some(Arc::new(EntityJob::new(e.clone(), columns)?)))
    }

    async fn apply_entity(
        &self,
        job: Arc<EntityJob>,
        mut c: EntityChanges,
        prefetched: Option<&HashMap<i64, Vec<Cell>>>,
        applied: &mut Applied,
    ) -> Result<(), EventsError> {
        let entity = job.entity.name.clone();
        // Deletions first and at once: a row both changed and deleted is gone.
        if !c.deletes.is_empty() {
            applied.tombstones += self.tombstones(&job, &c.deletes).await?;
            c.upserts.retain(|id| !c.deletes.contains(id));
        }
        let t = self.target();
        match self.mode {
            Mode::Push => {
                let (have, ids) = split_prefetched(&c.upserts, prefetched);
                let n = self.insert(&job, have).await?;
                applied.rows += n;
                applied.prefetched_rows += n;
                let ids = self.fetch_in_one_batch(&job, ids, applied).await?;
                for chunk in ids.chunks(FETCH_CHUNK) {
                    applied.rows += self.fetch_and_insert(&job, chunk).await?;
                }
                let mut listing = None;
                if c.upsert_unknown {
                    let progress = crate::sync::Progress::hidden(&entity);
                    let client = self.client.clone();
                    let r =
                        crate::sync::load(&self.conn, &t, client, job.clone(), &progress).await?;
                    listing = r.listing;
                    applied.loads += 1;
                }
                if c.delete_unknown {
                    let s = self.config.entity(&entity);
                    crate::sync::reconcile_after(
                        &self.conn,
                        &t,
                        self.client.clone(),
                        job.clone(),
                        listing.as_ref(),
                        s.reconcile_safety_ms(),
                        s.delete_guard,
                    )
                    .await?;
                    applied.reconciles += 1;
                }
            }
            Mode::Pull => {
                if !c.upserts.is_empty() || c.upsert_unknown {
                    self.refresh(&ddl::load_view_name(&entity)).await?;
                    applied.loads += 1;
                }
                if c.delete_unknown {
                    self.refresh(&ddl::reconcile_view_name(&entity)).await?;
                    applied.reconciles += 1;
                }
            }
        }
        Ok(())
    }

    /// Tombstones for the live rows among `ids` (rows never loaded need none).
    async fn tombstones(&self, job: &EntityJob, ids: &BTreeSet<u64>) -> Result<u64, EventsError> {
        let t = self.target();
        let table = qualified(&t.database, &job.entity.name);
        let Some(key) = primary_key_column(&job.columns) else {
            return Ok(0);
        };
        let list = ids
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let live = self
            .conn
            .pairs(&format!(
                "SELECT toString(count()), '' FROM {table} FINAL WHERE _is_deleted = 0 AND {} IN ({list})",
                ident(&key.name)
            ))
            .await?;
        let n = live
            .first()
            .and_then(|(c, _)| c.parse::<u64>().ok())
            .unwrap_or(0);
        if n > 0 {
            self.conn
                .execute(&format!(
                    "INSERT INTO {table} {}",
                    ddl::tombstones(&table, &format!("{} IN ({list})", ident(&key.name)))
                ))
                .await?;
        }
        Ok(n)
    }

    /// Inserts rows already read; returns how many.
    async fn insert(&self, job: &EntityJob, rows: Vec<Vec<Cell>>) -> Result<u64, EventsError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let t = self.target();
        let table = qualified(&t.database, &job.entity.name);
        let mut insert = ChunkedInsert::new(&self.conn, &table, &job.columns);
        insert.write(&rows).await?;
        insert.flush().await?;
        Ok(insert.sent)
    }

    /// Reads up to [`changed::MAX_IDS`] rows by ID with their companion columns in one
    /// request, and inserts them; returns the ids still to fetch (none, unless a page failed
    /// or a row changed between the two methods' pages).
    async fn fetch_in_one_batch(
        &self,
        job: &Arc<EntityJob>,
        ids: Vec<u64>,
        applied: &mut Applied,
    ) -> Result<Vec<u64>, EventsError> {
        let keys: Vec<i64> = ids.iter().filter_map(|i| i64::try_from(*i).ok()).collect();
        let Some(plan) = changed::ChangedRows::by_ids(job.clone(), &keys, "f") else {
            return Ok(ids);
        };
        let mut batch = Batch::new();
        plan.push_into(&mut batch)?;
        let read = plan.take(&mut self.client.batch_raw(&batch).await?)?;
        if !read.complete {
            return Ok(ids);
        }
        let left = ids
            .iter()
            .copied()
            .filter(|i| {
                i64::try_from(*i)
                    .is_ok_and(|k| read.listed.contains(&k) && !read.rows.contains_key(&k))
            })
            .collect();
        applied.rows += self.insert(job, read.rows.into_values().collect()).await?;
        Ok(left)
    }

    /// Reads the rows with these ids and inserts them; returns how many exist.
    async fn fetch_and_insert(
        &self,
        job: &Arc<EntityJob>,
        ids: &[u64],
    ) -> Result<u64, EventsError> {
        let t = self.target();
        let table = qualified(&t.database, &job.entity.name);
        let ids: Vec<serde_json::Value> = ids.iter().map(|i| serde_json::Value::from(*i)).collect();
        let pages = pipeline::rows_by_ids(self.client.clone(), job.clone(), ids);
        futures::pin_mut!(pages);
        let mut insert = ChunkedInsert::new(&self.conn, &table, &job.columns);
        while let Some(page) = pages.next().await {
            insert.write(&page?.rows).await?;
        }
        insert.flush().await?;
        Ok(insert.sent)
    }

    /// `SYSTEM REFRESH VIEW` and wait; again if the refresh that finished had started before
    /// the request (it may not have seen the change).
    async fn refresh(&self, view: &str) -> Result<(), EventsError> {
        let t = self.target();
        let name = qualified(&t.database, view);
        let err = |message: String| EventsError::Refresh {
            view: view.to_string(),
            message,
        };
        for _ in 0..3 {
            let asked = self
                .conn
                .pairs("SELECT toString(toUnixTimestamp(now())), ''")
                .await?;
            let asked: i64 = asked.first().and_then(|(s, _)| s.parse().ok()).unwrap_or(0);
            self.conn
                .execute(&format!("SYSTEM REFRESH VIEW {name}"))
                .await?;
            self.conn
                .execute(&format!("SYSTEM WAIT VIEW {name}"))
                .await
                .map_err(|e| err(e.to_string()))?;
            let last = self
                .conn
                .pairs(&format!(
                    // Both columns are Nullable (no refresh succeeded yet, no failure).
                    "SELECT ifNull(toString(toUnixTimestamp(last_success_time)), '0'), ifNull(exception, '') FROM system.view_refreshes WHERE database = {} AND view = {}",
                    literal(&t.database),
                    literal(view)
                ))
                .await?;
            match last.first() {
                Some((s, _)) if s.parse::<i64>().unwrap_or(0) >= asked => return Ok(()),
                Some((_, failure)) if !failure.is_empty() => return Err(err(failure.clone())),
                Some(_) => continue,
                None => return Err(err("no such view (run apply)".into())),
            }
        }
        Err(err(
            "three refreshes in a row had started before the request".into(),
        ))
    }
}
