//! Errors of the demo portal's public API.

use std::net::SocketAddr;

/// Errors of the demo portal's public API.
#[derive(Debug, thiserror::Error)]
pub enum DemoPortalError {
    #[error("cannot bind demo portal to {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid demo portal config: {0}")]
    Config(String),
    #[error("unknown entity table '{0}'")]
    UnknownTable(String),
    #[error("unknown field '{field}' in table '{table}'")]
    UnknownField { table: String, field: String },
    #[error("invalid value for {field}: {message}")]
    InvalidValue { field: String, message: String },
    #[error("not found: {0}")]
    NotFound(String),
}
