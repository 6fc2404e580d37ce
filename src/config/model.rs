//! The config file as written by the user (TOML), before secrets are resolved.
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    /// Where b24ch keeps its state (rotated OAuth tokens, last catalog, governor state).
    pub state_dir: Option<PathBuf>,
    #[serde(default)]
    pub portal: RawPortal,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub clickhouse: RawClickHouse,
    #[serde(default)]
    pub proxy: RawProxy,
    #[serde(default)]
    pub exec: RawExec,
    #[serde(default)]
    pub events: RawEvents,
    /// Per-entity settings; the key `default` applies to every entity not listed.
    #[serde(default)]
    pub entities: BTreeMap<String, RawEntity>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPortal {
    /// Inbound webhook URL `https://portal/rest/USER/CODE/`; secret (may be `env:VAR`).
    pub webhook_url: Option<String>,
    pub oauth: Option<RawOAuth>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOAuth {
    pub portal_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    pub oauth_server: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub plan: Option<String>,
    pub requests_per_second: Option<f64>,
    pub burst: Option<f64>,
    pub operating_seconds_per_10min: Option<f64>,
    pub max_concurrent_requests: Option<u32>,
    pub request_timeout_secs: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClickHouse {
    pub url: Option<String>,
    pub database: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub ca_cert: Option<PathBuf>,
    pub secure: Option<bool>,
    pub cluster: Option<String>,
    /// An existing read-only user the `enum_labels` dictionary reads its table as (no
    /// password); unset: `apply` creates `b24ch_dict_<database>`.
    pub dictionary_user: Option<String>,
    /// Seconds to open a connection to ClickHouse.
    pub connect_timeout_secs: Option<u64>,
    /// Seconds ClickHouse may take to answer one call (a statement, a query, an INSERT's end).
    pub request_timeout_secs: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProxy {
    pub listen: Option<String>,
    /// The URL ClickHouse uses to reach `serve` (differs from `listen` behind NAT/containers).
    pub public_url: Option<String>,
    pub token: Option<String>,
    pub autopilot_interval: Option<String>,
    /// Certificate chain (PEM) `serve` presents; with `tls_key` it listens with HTTPS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Accept plain HTTP on a non-loopback `listen` address.
    pub allow_plain_http: Option<bool>,
    /// Seconds a client has to send a complete request head (slow-loris guard).
    pub header_timeout_secs: Option<u64>,
    /// Seconds a client has to send a whole request body, from its head.
    pub body_timeout_secs: Option<u64>,
    /// Seconds a response may wait for a client that stopped reading before it is cut.
    pub stall_timeout_secs: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEvents {
    /// Bind offline events for the loaded entities and read the queue (OAuth app only).
    pub offline: Option<bool>,
    /// The shortest wait between reads of the offline queue while changes arrive (default
    /// `5 SECOND`).
    pub poll_interval: Option<String>,
    /// The longest a change may take to reach ClickHouse (default `14 SECOND`).
    pub max_delay: Option<String>,
    /// The application token online events must carry (`auth.application_token`); secret
    /// (may be `env:VAR`). Without it `POST /v1/events` is refused.
    pub application_token: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExec {
    /// Methods `b24_call` may run (replaces the built-in list of read methods).
    pub call_methods: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEntity {
    pub enabled: Option<bool>,
    pub schedule: Option<String>,
    pub reconcile_schedule: Option<String>,
    /// Rows loaded this recently are left out of a reconcile (default `5 MINUTE`).
    pub reconcile_safety: Option<String>,
    /// First wait before ClickHouse retries a failed refresh (default `5 SECOND`; doubles).
    pub retry_backoff: Option<String>,
    /// Let one reconcile tombstone any number of rows (default false: see `DeleteGuard`).
    pub allow_mass_delete: Option<bool>,
    /// A reconcile refuses to tombstone more than this share of the live rows (percent)…
    pub max_delete_percent: Option<f64>,
    /// …when that is also more than this many rows.
    pub max_delete_rows: Option<u64>,
    pub fields: Option<Vec<String>>,
    /// How long `<entity>_history` keeps a version (e.g. `365 DAY`); absent = forever.
    pub history_ttl: Option<String>,
}
