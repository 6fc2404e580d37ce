//! A connection to ClickHouse through the `clickhouse` crate, built from the config.
use crate::config::{ClickHouseConfig, Secret, redact};

#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    #[error("ClickHouse rejected a statement: {message}\nstatement: {statement}")]
    Statement { message: String, statement: String },
    #[error("ClickHouse query failed: {0}")]
    Query(String),
}

/// Runs statements; every error text is redacted of the configured secrets.
#[derive(Clone)]
pub struct Connection {
    client: clickhouse::Client,
    secrets: Vec<Secret>,
}

impl Connection {
    pub fn new(cfg: &ClickHouseConfig) -> Self {
        let client = clickhouse::Client::default()
            .with_url(&cfg.url)
            .with_user(&cfg.user)
            .with_password(cfg.password.expose());
        Self {
            client,
            secrets: vec![cfg.password.clone()],
        }
    }

    /// Adds secrets that statements may contain (the proxy token in the named collection).
    pub fn with_secret(mut self, secret: &Secret) -> Self {
        self.secrets.push(secret.clone());
        self
    }

    fn redact(&self, text: &str) -> String {
        let refs: Vec<&Secret> = self.secrets.iter().collect();
        redact(text, &refs)
    }

    /// Runs one statement. `?` is the crate's bind placeholder, so literal ones are doubled.
    pub async fn execute(&self, sql: &str) -> Result<(), ClickHouseError> {
        self.client
            .query(&sql.replace('?', "??"))
            .execute()
            .await
            .map_err(|e| ClickHouseError::Statement {
                message: self.redact(&e.to_string()),
                statement: self.redact(sql),
            })
    }

    /// Rows of two string columns (catalog queries on `system.*`).
    pub async fn pairs(&self, sql: &str) -> Result<Vec<(String, String)>, ClickHouseError> {
        self.client
            .query(&sql.replace('?', "??"))
            .fetch_all::<(String, String)>()
            .await
            .map_err(|e| ClickHouseError::Query(self.redact(&e.to_string())))
    }

    pub async fn version(&self) -> Result<String, ClickHouseError> {
        self.client
            .query("SELECT version()")
            .fetch_one::<String>()
            .await
            .map_err(|e| ClickHouseError::Query(self.redact(&e.to_string())))
    }

    pub fn inner(&self) -> &clickhouse::Client {
        &self.client
    }
}
