//! A connection to ClickHouse through the `clickhouse` crate, built from the config.
use super::error::ClickHouseError;
use crate::config::{ClickHouseConfig, Secret, redact};

/// Runs statements; every error text is redacted of the configured secrets.
#[derive(Clone)]
pub struct Connection {
    client: clickhouse::Client,
    secrets: Vec<Secret>,
}

impl Connection {
    /// Connects as configured; with `ca_cert`, TLS trusts that CA (managed ClickHouse clouds).
    pub fn connect(cfg: &ClickHouseConfig) -> Result<Self, ClickHouseError> {
        let Some(ca) = &cfg.ca_cert else {
            return Ok(Self::new(cfg));
        };
        Ok(Self::with_client(super::tls::client_trusting(ca)?, cfg))
    }

    /// Connects with the system's web PKI roots (no custom CA).
    pub fn new(cfg: &ClickHouseConfig) -> Self {
        Self::with_client(clickhouse::Client::default(), cfg)
    }

    fn with_client(client: clickhouse::Client, cfg: &ClickHouseConfig) -> Self {
        let client = client
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

    /// The error with its whole cause chain (the TLS reason hides in a source).
    fn describe(&self, e: &clickhouse::error::Error) -> String {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        self.redact(&text)
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
                message: self.describe(&e),
                statement: self.redact(sql),
            })
    }

    /// Rows of two string columns (catalog queries on `system.*`).
    pub async fn pairs(&self, sql: &str) -> Result<Vec<(String, String)>, ClickHouseError> {
        self.client
            .query(&sql.replace('?', "??"))
            .fetch_all::<(String, String)>()
            .await
            .map_err(|e| ClickHouseError::Query(self.describe(&e)))
    }

    pub async fn version(&self) -> Result<String, ClickHouseError> {
        self.client
            .query("SELECT version()")
            .fetch_one::<String>()
            .await
            .map_err(|e| ClickHouseError::Query(self.describe(&e)))
    }

    pub fn inner(&self) -> &clickhouse::Client {
        &self.client
    }
}
