//! A connection to ClickHouse through the `clickhouse` crate, built from the config.
use super::error::ClickHouseError;
use crate::config::{ClickHouseConfig, ClickHouseTimeouts, Secret, redact};
use std::future::Future;

/// Runs statements; every error text is redacted of the configured secrets, and every call
/// is bounded by `clickhouse.connect_timeout_secs` / `request_timeout_secs`.
#[derive(Clone)]
pub struct Connection {
    client: clickhouse::Client,
    secrets: Vec<Secret>,
    timeouts: ClickHouseTimeouts,
}

impl Connection {
    /// Connects as configured; with `ca_cert`, TLS trusts that CA (managed ClickHouse clouds),
    /// else the web PKI roots.
    pub fn connect(cfg: &ClickHouseConfig) -> Result<Self, ClickHouseError> {
        let client = super::tls::client(cfg.ca_cert.as_deref(), cfg.timeouts.connect)?
            .with_url(&cfg.url)
            .with_user(&cfg.user)
            .with_password(cfg.password.expose());
        Ok(Self {
            client,
            secrets: vec![cfg.password.clone()],
            timeouts: cfg.timeouts,
        })
    }

    /// Adds secrets that statements may contain (the proxy token in the named collection).
    pub fn with_secret(mut self, secret: &Secret) -> Self {
        self.secrets.push(secret.clone());
        self
    }

    /// The error with its whole cause chain (the TLS reason hides in a source); a connection
    /// that could not be opened in time names the setting.
    fn describe(&self, e: &clickhouse::error::Error) -> String {
        let mut text = e.to_string();
        let mut connect_timed_out = false;
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            connect_timed_out |= s
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
            source = s.source();
        }
        if connect_timed_out {
            text.push_str(&format!(
                " (no connection within {} s, clickhouse.connect_timeout_secs: check clickhouse.url and the network, or raise the setting)",
                self.timeouts.connect.as_secs()
            ));
        }
        self.redact(&text)
    }

    /// `call` bounded by `clickhouse.request_timeout_secs`.
    async fn bounded<T>(
        &self,
        statement: Option<&str>,
        call: impl Future<Output = Result<T, ClickHouseError>>,
    ) -> Result<T, ClickHouseError> {
        tokio::time::timeout(self.timeouts.request, call)
            .await
            .unwrap_or_else(|_| Err(self.timeout_error(statement)))
    }

    fn timeout_error(&self, statement: Option<&str>) -> ClickHouseError {
        ClickHouseError::Timeout {
            secs: self.timeouts.request.as_secs(),
            statement: statement.map(|s| self.redact(s)),
        }
    }

    /// A streamed `INSERT … FORMAT …`: each chunk and the final answer are bounded by
    /// `clickhouse.request_timeout_secs`; an error from it reads well through
    /// [`Connection::insert_error`].
    pub fn insert_formatted(&self, sql: &str) -> clickhouse::insert_formatted::InsertFormatted {
        self.client
            .insert_formatted_with(sql.to_string())
            .with_timeouts(Some(self.timeouts.request), Some(self.timeouts.request))
    }

    /// The text of an INSERT's error (a timeout names the setting).
    pub fn insert_error(&self, e: &clickhouse::error::Error) -> String {
        match e {
            clickhouse::error::Error::TimedOut => self.timeout_error(None).to_string(),
            other => self.describe(other),
        }
    }

    fn redact(&self, text: &str) -> String {
        let refs: Vec<&Secret> = self.secrets.iter().collect();
        redact(text, &refs)
    }

    /// Runs one statement. `?` is the crate's bind placeholder, so literal ones are doubled.
    pub async fn execute(&self, sql: &str) -> Result<(), ClickHouseError> {
        let call = async {
            self.client
                .query(&sql.replace('?', "??"))
                .execute()
                .await
                .map_err(|e| ClickHouseError::Statement {
                    message: self.describe(&e),
                    statement: self.redact(sql),
                })
        };
        self.bounded(Some(sql), call).await
    }

    /// Rows of two string columns (catalog queries on `system.*`).
    pub async fn pairs(&self, sql: &str) -> Result<Vec<(String, String)>, ClickHouseError> {
        let call = async {
            self.client
                .query(&sql.replace('?', "??"))
                .fetch_all::<(String, String)>()
                .await
                .map_err(|e| ClickHouseError::Query(self.describe(&e)))
        };
        self.bounded(Some(sql), call).await
    }

    pub async fn version(&self) -> Result<String, ClickHouseError> {
        let call = async {
            self.client
                .query("SELECT version()")
                .fetch_one::<String>()
                .await
                .map_err(|e| ClickHouseError::Query(self.describe(&e)))
        };
        self.bounded(None, call).await
    }
}
