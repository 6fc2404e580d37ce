//! Shared state of `serve`: the portal client, the current catalog, load statistics.
use crate::bitrix::Client;
use crate::catalog::{Catalog, Entity};
use crate::clickhouse::plan::selected_columns;
use crate::config::Config;
use crate::pipeline::stats::Stats;
use crate::pipeline::{EntityJob, PipelineError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Loads (rows or ID listings) `serve` runs at once, over every entity: each holds a stream
/// to ClickHouse and a share of the portal's budget.
pub(super) const MAX_CONCURRENT_LOADS: usize = 16;

/// What a pull that found its entity busy (or `serve` full) is told to wait, in seconds.
pub(super) const BUSY_RETRY_AFTER_SECS: u64 = 30;

/// A running load: while it lives no other load of the same kind and entity starts, and it
/// holds one of the [`MAX_CONCURRENT_LOADS`] places. Dropped with the response body.
pub struct LoadSlot {
    running: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    key: String,
    _place: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for LoadSlot {
    fn drop(&mut self) {
        let mut running = match self.running.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        running.remove(&self.key);
    }
}

/// Why a load could not start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Busy {
    /// The same load of this entity is still running (two would pay the portal twice and
    /// race on the watermark).
    Entity(String),
    /// `serve` runs [`MAX_CONCURRENT_LOADS`] loads already.
    Full,
}

/// A catalog refresh asked for by a pull (unknown entity, other column set) runs at most this
/// often; requests in between compare with the catalog they find.
const REDISCOVER_MIN_INTERVAL: Duration = Duration::from_secs(5);

pub struct AppState {
    pub config: Arc<Config>,
    pub client: Arc<Client>,
    pub stats: Arc<Stats>,
    pub lookback: chrono::Duration,
    /// Sessions of the status page.
    pub page_auth: super::session::PageAuth,
    catalog: RwLock<Arc<Catalog>>,
    /// Serialises catalog refreshes asked for by pulls; holds when the last one ran.
    rediscovered: tokio::sync::Mutex<Option<Instant>>,
    running: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    places: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    pub fn new(
        config: Arc<Config>,
        client: Arc<Client>,
        catalog: Catalog,
        stats: Arc<Stats>,
    ) -> Self {
        // Behind HTTPS the session cookie must never travel in clear.
        let secure = config.proxy.public_url.starts_with("https://");
        Self {
            page_auth: super::session::PageAuth::new(secure),
            config,
            client,
            stats,
            lookback: crate::pipeline::extract::DEFAULT_LOOKBACK,
            catalog: RwLock::new(Arc::new(catalog)),
            rediscovered: tokio::sync::Mutex::new(None),
            running: Arc::default(),
            places: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_LOADS)),
        }
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        match self.catalog.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn set_catalog(&self, catalog: Catalog) {
        let mut guard = match self.catalog.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *guard = Arc::new(catalog);
    }

    /// The enabled entity of that name, if the portal has it.
    pub fn entity(&self, name: &str) -> Option<Entity> {
        let catalog = self.catalog();
        catalog
            .entity(name)
            .filter(|_| self.config.entity(name).enabled)
            .cloned()
    }

    /// Discovers the portal's catalog again (another process may have applied a new field or
    /// smart process). One at a time; a request that waited for another's refresh uses it.
    pub async fn rediscover(&self) -> Result<(), crate::bitrix::BitrixError> {
        let before = self.catalog();
        let mut last = self.rediscovered.lock().await;
        if !Arc::ptr_eq(&before, &self.catalog())
            || last.is_some_and(|t| t.elapsed() < REDISCOVER_MIN_INTERVAL)
        {
            return Ok(());
        }
        let catalog = crate::catalog::discover(&self.client).await?;
        let diff = crate::catalog::diff(&before, &catalog);
        if !diff.is_empty() {
            tracing::info!(?diff, "portal catalog changed (found by a pull)");
        }
        self.set_catalog(catalog);
        *last = Some(Instant::now());
        Ok(())
    }

    /// Starts a load of `kind` (`rows`, `ids`) for `entity`, or says why not now.
    pub fn begin_load(&self, kind: &str, entity: &str) -> Result<LoadSlot, Busy> {
        let key = format!("{kind}:{entity}");
        let mut running = match self.running.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if running.contains(&key) {
            return Err(Busy::Entity(entity.to_string()));
        }
        let place = self
            .places
            .clone()
            .try_acquire_owned()
            .map_err(|_| Busy::Full)?;
        running.insert(key.clone());
        Ok(LoadSlot {
            running: self.running.clone(),
            key,
            _place: place,
        })
    }

    /// The column-set fingerprint `serve` answers an entity's rows with (see
    /// [`crate::clickhouse::ddl::schema_fingerprint`]).
    pub fn fingerprint(&self, entity: &Entity) -> String {
        let settings = self.config.entity(&entity.name);
        let columns = selected_columns(entity, &settings);
        let plan = crate::clickhouse::plan::table_plan(
            entity,
            &columns,
            &settings,
            crate::encode::Format::Parquet,
        );
        crate::clickhouse::ddl::schema_fingerprint(&plan.columns)
    }

    /// The extraction job of an entity with the configured field selection.
    pub fn job(&self, entity: Entity) -> Result<EntityJob, PipelineError> {
        let columns = selected_columns(&entity, &self.config.entity(&entity.name));
        EntityJob::new(entity, columns)
    }
}
