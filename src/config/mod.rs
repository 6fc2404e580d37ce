//! Configuration: the TOML file, secrets from environment variables, and validation.
//!
//! [`load`] turns a file into a validated [`Config`]; every problem becomes one
//! [`ConfigError`] naming the key and what to do, and the CLI exits with code 2.
pub mod import;
mod model;
mod resolve;
mod secret;

pub use resolve::{
    ClickHouseConfig, ClickHouseTimeouts, Config, ConfigError, DeleteGuard, DictionaryUser,
    EntitySettings, EventsConfig, Exposure, LimitsConfig, Plan, PortalAuth, ProxyConfig, Schedule,
    ServeTimeouts, TimeUnit, TlsFiles, Transport, WHOLE_PER_OWNER_SCHEDULE, WHOLE_PER_OWNER_TABLES,
    from_toml_str, load,
};
pub use secret::{Secret, redact};

/// An error caused by the user's input (config, arguments): exit code 2, not 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

#[cfg(test)]
mod tests;

/// The config file a command uses: `--config`/`$B24CH_CONFIG`, else `./b24ch.toml` if present.
pub fn config_path(given: Option<&std::path::Path>) -> Option<std::path::PathBuf> {
    if let Some(p) = given {
        return Some(p.to_path_buf());
    }
    let local = std::path::PathBuf::from("b24ch.toml");
    local.is_file().then_some(local)
}

/// The config of a command that works on a real portal (`sync`, `serve`, `apply`, `sql`,
/// `check`, `exec`): `--config`/`$B24CH_CONFIG`, else `./b24ch.toml`; it must configure a portal.
/// Only `demo` and `demo-portal` use the embedded demo portal, so a cron line that lost its
/// environment cannot write demo rows into a real database.
pub fn load_portal_config(
    path: Option<&std::path::Path>,
    command: &str,
) -> Result<Config, BadInput> {
    let Some(path) = config_path(path) else {
        return Err(BadInput(format!(
            "b24ch {command} needs a config: pass --config FILE, set B24CH_CONFIG, or put b24ch.toml in the working directory (see config_example.toml); only `b24ch demo` and `b24ch demo-portal` run without one, on the embedded demo portal"
        )));
    };
    let config = load(Some(&path)).map_err(|e| BadInput(e.to_string()))?;
    if matches!(config.portal, PortalAuth::Demo) {
        return Err(BadInput(format!(
            "{} configures no portal: set `portal.webhook_url` or a `[portal.oauth]` section (see config_example.toml); b24ch {command} does not use the embedded demo portal (only `b24ch demo` does)",
            path.display()
        )));
    }
    Ok(config)
}
