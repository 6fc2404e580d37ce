//! Configuration: the TOML file, secrets from environment variables, and validation.
//!
//! [`load`] turns a file into a validated [`Config`]; every problem becomes one
//! [`ConfigError`] naming the key and what to do, and the CLI exits with code 2.
mod model;
mod resolve;
mod secret;

pub use resolve::{
    ClickHouseConfig, Config, ConfigError, DeleteGuard, EntitySettings, LimitsConfig, Plan,
    PortalAuth, ProxyConfig, Schedule, from_toml_str, load,
};
pub use secret::{Secret, redact};

#[cfg(test)]
mod tests;
