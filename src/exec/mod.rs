//! Executable modes: ClickHouse runs `b24ch exec …` itself (stdin/stdout), no `serve` needed.
//!
//! - [`rows`]: the `executable()` table function — an entity's typed rows, exactly as its table's
//!   columns (`exec rows`), and the structure string to declare them (`exec structure`);
//! - [`udf`]: the `b24_call(method, params_json)` executable UDF (`exec udf-call`), which packs the
//!   rows of one block into Bitrix24 `batch` calls of up to 50 commands;
//! - [`dict`]: the executable dictionary source (`exec dict`): reference data loaded whole, or
//!   only the keys a `CACHE` layout misses, from [`crate::dictionaries`] (which also answers
//!   `serve`'s `/v1/dictionaries/{name}` for ClickHouse's HTTP dictionary source).
//!
//! Every process shares the portal's rate and operating budget with `serve` and with the
//! others through the file-backed governor state in `state_dir` (`bitrix::governor_file`).
//!
//! **Where the config comes from**: `--config PATH`, else `$B24CH_CONFIG`, else `b24ch.toml`
//! in the working directory; without one (or without a portal in it) `exec` fails, it never
//! falls back to the embedded demo portal. ClickHouse starts executables
//! with its own working directory and environment, so the wrapper script installed in
//! `user_scripts` (see `clickhouse_config/`) passes `--config` with an absolute path; relative
//! paths inside the config (`state_dir`) are relative to that working directory — make them
//! absolute.
pub mod dict;
pub mod rows;
pub mod udf;

pub use crate::dictionaries::{parse_offset, parse_since};
pub(crate) use crate::encode::tsv;

use crate::bitrix::{BitrixError, Client};
use crate::catalog::{Catalog, Entity};
use crate::config::Config;
use crate::pipeline::PipelineError;
use crate::portal::PortalConnection;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Errors of the executable modes.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Bad arguments, config or input rows: exit code 2.
    #[error("{0}")]
    BadInput(String),
    #[error(transparent)]
    Bitrix(#[from] BitrixError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Encode(#[from] crate::encode::EncodeError),
    #[error("b24ch exec: {0}")]
    Io(#[from] std::io::Error),
    #[error("b24ch exec: {0}")]
    Other(String),
    /// The portal refuses the entity (`Catalog::unavailable`): the portal's words, what to do.
    #[error("b24ch: {0}")]
    Unavailable(String),
}

impl From<crate::dictionaries::DictError> for ExecError {
    fn from(e: crate::dictionaries::DictError) -> Self {
        use crate::dictionaries::DictError as D;
        match e {
            D::BadInput(m) | D::Disabled(m) => ExecError::BadInput(m),
            D::Unavailable(m) => ExecError::Unavailable(m),
            D::Bitrix(b) => ExecError::Bitrix(b),
            D::Pipeline(p) => ExecError::Pipeline(p),
            D::Encode(x) => ExecError::Encode(x),
            D::Other(m) => ExecError::Other(m),
        }
    }
}

impl ExecError {
    /// As the CLI's error: bad input keeps exit code 2.
    pub fn into_anyhow(self) -> anyhow::Error {
        match self {
            ExecError::BadInput(m) => crate::config::BadInput(m).into(),
            other => other.into(),
        }
    }
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Reuse the portal's catalog (entities, fields) cached in state_dir for this many
    /// seconds instead of discovering it on every start (0 = always discover).
    #[arg(long, global = true, default_value_t = 600)]
    pub catalog_max_age: u64,
    #[command(subcommand)]
    pub command: ExecCommand,
}

#[derive(Debug, Subcommand)]
pub enum ExecCommand {
    /// Print an entity's typed rows to stdout (for ClickHouse's `executable()` table function).
    Rows(rows::RowsArgs),
    /// Print the structure string of an entity's rows (`executable()`'s third argument).
    Structure(rows::StructureArgs),
    /// Serve `b24_call(method, params_json)` as an executable_pool UDF on stdin/stdout.
    UdfCall(udf::UdfArgs),
    /// Print reference data for an executable dictionary source (all rows, or the keys read
    /// from stdin for CACHE layouts).
    Dict(dict::DictArgs),
}

/// Runs one `b24ch exec` subcommand.
pub async fn run(config: Option<&Path>, args: ExecArgs) -> Result<(), ExecError> {
    let mut config = crate::config::load_portal_config(config, "exec")
        .map_err(|e| ExecError::BadInput(e.to_string()))?;
    let portal = crate::portal::connect(&mut config, crate::portal::DemoSettings::default())
        .await
        .map_err(|e| ExecError::Other(format!("{e:#}")))?;
    let ctx = Context {
        config: Arc::new(config),
        portal,
        catalog_max_age: Duration::from_secs(args.catalog_max_age),
    };
    let result = match args.command {
        ExecCommand::Rows(a) => rows::run(&ctx, a).await,
        ExecCommand::Structure(a) => rows::print_structure(&ctx, a).await,
        ExecCommand::UdfCall(a) => udf::run(&ctx, a).await,
        ExecCommand::Dict(a) => dict::run(&ctx, a).await,
    };
    match result {
        // ClickHouse stopped reading (LIMIT satisfied): not an error.
        Err(ExecError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// What every subcommand needs.
pub struct Context {
    pub config: Arc<Config>,
    pub portal: PortalConnection,
    pub catalog_max_age: Duration,
}

impl Context {
    pub fn client(&self) -> Arc<Client> {
        self.portal.client.clone()
    }

    /// The portal's catalog: cached in state_dir when fresh enough, else discovered (and
    /// cached). The in-process demo portal is always discovered.
    pub async fn catalog(&self) -> Result<Catalog, ExecError> {
        let cache = self.catalog_cache_path();
        if let Some(path) = &cache
            && let Some(c) = read_catalog_cache(path, self.catalog_max_age)
        {
            return Ok(c);
        }
        let catalog = crate::catalog::discover(&self.portal.client)
            .await
            .map_err(|e| ExecError::Other(e.to_string()))?;
        if let Some(path) = &cache {
            write_catalog_cache(path, &catalog);
        }
        Ok(catalog)
    }

    fn catalog_cache_path(&self) -> Option<PathBuf> {
        if self.portal.demo.is_some() || self.catalog_max_age.is_zero() {
            return None;
        }
        let url = match &self.config.portal {
            crate::config::PortalAuth::Webhook { url } => url.expose().to_string(),
            crate::config::PortalAuth::OAuth { portal_url, .. } => portal_url.clone(),
            crate::config::PortalAuth::Demo => return None,
        };
        let parsed = reqwest::Url::parse(&url).ok()?;
        let host = parsed.host_str()?;
        let port = parsed.port_or_known_default().unwrap_or(0);
        let slug: String = format!("{host}_{port}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Some(self.config.state_dir.join(format!("catalog-{slug}.json")))
    }

    /// An entity of the catalog, or a bad-input error listing what exists.
    pub async fn entity(&self, name: &str) -> Result<Entity, ExecError> {
        let catalog = self.catalog().await?;
        find_entity(&catalog, name).cloned()
    }
}

/// The entity named `name`; the portal's words for one it refuses; or an error naming every
/// entity there is.
pub fn find_entity<'a>(catalog: &'a Catalog, name: &str) -> Result<&'a Entity, ExecError> {
    Ok(crate::dictionaries::find_entity(catalog, name)?)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CatalogCache {
    saved_at: i64,
    catalog: Catalog,
}

fn read_catalog_cache(path: &Path, max_age: Duration) -> Option<Catalog> {
    let text = std::fs::read_to_string(path).ok()?;
    let cached: CatalogCache = serde_json::from_str(&text).ok()?;
    let age = chrono::Utc::now().timestamp() - cached.saved_at;
    (age >= 0 && (age as u64) < max_age.as_secs()).then_some(cached.catalog)
}

fn write_catalog_cache(path: &Path, catalog: &Catalog) {
    let cached = CatalogCache {
        saved_at: chrono::Utc::now().timestamp(),
        catalog: catalog.clone(),
    };
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp{}", std::process::id()));
        let bytes = serde_json::to_vec(&cached).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        tracing::warn!(path = %path.display(), error = %e, "cannot cache the catalog");
    }
}
