//! Shared state of `serve`: the portal client, the current catalog, load statistics.
use crate::bitrix::Client;
use crate::catalog::{Catalog, Entity};
use crate::clickhouse::plan::selected_columns;
use crate::config::Config;
use crate::pipeline::stats::Stats;
use crate::pipeline::{EntityJob, PipelineError};
use std::sync::{Arc, RwLock};

pub struct AppState {
    pub config: Arc<Config>,
    pub client: Arc<Client>,
    pub stats: Arc<Stats>,
    pub lookback: chrono::Duration,
    /// Sessions of the status page.
    pub page_auth: super::session::PageAuth,
    catalog: RwLock<Arc<Catalog>>,
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

    /// The extraction job of an entity with the configured field selection.
    pub fn job(&self, entity: Entity) -> Result<EntityJob, PipelineError> {
        let columns = selected_columns(&entity, &self.config.entity(&entity.name));
        EntityJob::new(entity, columns)
    }
}
