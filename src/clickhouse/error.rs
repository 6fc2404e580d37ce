//! Errors of the ClickHouse side (connection, statements, CA certificate, timeouts).

#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    #[error(
        "cannot use the CA certificate {path}: {reason}; give a PEM file with the CA of your ClickHouse (clickhouse.ca_cert)"
    )]
    CaCert { path: String, reason: String },
    #[error("cannot set up TLS towards ClickHouse: {0}")]
    Tls(String),
    #[error("ClickHouse rejected a statement: {message}\nstatement: {statement}")]
    Statement { message: String, statement: String },
    #[error("ClickHouse query failed: {0}")]
    Query(String),
    /// The call was abandoned: the server accepted it but did not answer in time.
    #[error(
        "ClickHouse did not answer within {secs} s (clickhouse.request_timeout_secs); check that the server at clickhouse.url is up and not overloaded, or raise the setting{}",
        statement.as_deref().map(|s| format!("\nstatement: {s}")).unwrap_or_default()
    )]
    Timeout {
        secs: u64,
        statement: Option<String>,
    },
}
