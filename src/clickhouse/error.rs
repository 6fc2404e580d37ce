//! Errors of the ClickHouse side (connection, statements, CA certificate).

#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    #[error(
        "cannot use the CA certificate {path}: {reason}; give a PEM file with the CA of your ClickHouse (clickhouse.ca_cert)"
    )]
    CaCert { path: String, reason: String },
    #[error("ClickHouse rejected a statement: {message}\nstatement: {statement}")]
    Statement { message: String, statement: String },
    #[error("ClickHouse query failed: {0}")]
    Query(String),
}
