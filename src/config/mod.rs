//! Configuration: the TOML file, secrets from environment variables, and validation.
//!
//! [`load`] turns a file into a validated [`Config`]; every problem becomes one
//! [`ConfigError`] naming the key and what to do, and the CLI exits with code 2.
pub mod import;
mod model;
mod resolve;
mod secret;

pub use resolve::{
    ClickHouseConfig, Config, ConfigError, EntitySettings, Exposure, LimitsConfig, Plan,
    PortalAuth, ProxyConfig, Schedule, TlsFiles, Transport, from_toml_str, load,
};
pub use secret::{Secret, redact};

/// An error caused by the user's input (config, arguments): exit code 2, not 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

#[cfg(test)]
mod tests;
