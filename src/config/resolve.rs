//! Validation: raw TOML → [`Config`], with secrets resolved from the environment.
use super::model::{RawConfig, RawEntity, RawLimits, RawOAuth};
use super::secret::Secret;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One config problem: which key, what is wrong, what to do.
#[derive(Debug, thiserror::Error)]
#[error("config error in `{key}`: {problem}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// How b24ch authenticates against the portal.
#[derive(Debug, Clone)]
pub enum PortalAuth {
    /// No portal configured: the embedded demo portal is used.
    Demo,
    Webhook {
        url: Secret,
    },
    OAuth {
        portal_url: String,
        client_id: String,
        client_secret: Secret,
        access_token: Secret,
        refresh_token: Secret,
        oauth_server: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Standard,
    Enterprise,
    OnPremise,
}

/// Limits the governor keeps under; presets by plan, overridable one by one.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsConfig {
    pub plan: Plan,
    /// `None` = no request-rate limit (on-premise default).
    pub requests_per_second: Option<f64>,
    pub burst: f64,
    /// `None` = no operating-time limit (on-premise default).
    pub operating_seconds_per_10min: Option<f64>,
    pub max_concurrent_requests: u32,
    /// A Bitrix24 request slower than this is abandoned and retried (the cloud cuts at 60 s).
    pub request_timeout: std::time::Duration,
}

#[derive(Debug, Clone)]
pub struct ClickHouseConfig {
    pub url: String,
    pub database: String,
    pub user: String,
    pub password: Secret,
    pub ca_cert: Option<PathBuf>,
    pub secure: bool,
    pub cluster: Option<String>,
    /// `clickhouse.dictionary_user`: the user the `enum_labels` dictionary reads as.
    pub dictionary_user: DictionaryUser,
    pub timeouts: ClickHouseTimeouts,
}

/// Who the `enum_labels` dictionary reads its table as. Never b24ch's own user: its password
/// would have to be written into the dictionary's DDL, readable by everyone who may
/// `SHOW CREATE` it. A passwordless user that can log in only from this host, read-only, with
/// `SELECT` on that one table instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DictionaryUser {
    /// `apply` creates this user (`b24ch_dict_<database>`) and its one grant.
    Create(String),
    /// `clickhouse.dictionary_user`: made by the administrator (as `Create` would), used as is.
    Existing(String),
}

impl DictionaryUser {
    pub fn name(&self) -> &str {
        match self {
            Self::Create(n) | Self::Existing(n) => n,
        }
    }
}

/// Every call to ClickHouse is bounded (a server that accepts and never answers must not
/// hang `apply`, `sync` or `serve`'s autopilot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClickHouseTimeouts {
    /// `clickhouse.connect_timeout_secs` (default 10).
    pub connect: std::time::Duration,
    /// `clickhouse.request_timeout_secs` (default 300): one statement or query, one chunk of
    /// an INSERT, and the INSERT's final answer.
    pub request: std::time::Duration,
}

impl Default for ClickHouseTimeouts {
    fn default() -> Self {
        Self {
            connect: std::time::Duration::from_secs(10),
            request: std::time::Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub listen: std::net::SocketAddr,
    pub public_url: String,
    pub token: Secret,
    pub autopilot_interval: Schedule,
    pub transport: Transport,
    pub timeouts: ServeTimeouts,
}

/// How long `serve` waits for a client, so a slow or silent one cannot hold a connection (or
/// an entity's load slot) forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeTimeouts {
    /// `proxy.header_timeout_secs` (default 60): from the connection (or the end of the last
    /// response) to a complete request head. Longer than ClickHouse's HTTP keep-alive (10–30 s)
    /// so an idle pooled connection is closed by ClickHouse, not under a request.
    pub header: std::time::Duration,
    /// `proxy.body_timeout_secs` (default 60): from the request head to the end of its body.
    pub body: std::time::Duration,
    /// `proxy.stall_timeout_secs` (default 300): a response the client has not read from for
    /// this long is cut, which ends the load and frees its slot.
    pub stall: std::time::Duration,
}

impl Default for ServeTimeouts {
    fn default() -> Self {
        Self {
            header: std::time::Duration::from_secs(60),
            body: std::time::Duration::from_secs(60),
            stall: std::time::Duration::from_secs(300),
        }
    }
}

/// How `serve` speaks to ClickHouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// HTTPS with the certificate chain and key from these PEM files (re-read when they change).
    Tls(TlsFiles),
    /// Plain HTTP: on a loopback `listen` address always, elsewhere only when
    /// `proxy.allow_plain_http = true` says the user accepts clear text on the network.
    Plain { allow_non_loopback: bool },
}

/// Who can read what `serve` sends, given `listen` and the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    Tls,
    /// Plain HTTP on a loopback address: only this machine can connect.
    Loopback,
    /// Plain HTTP reachable from the network, accepted by `proxy.allow_plain_http = true`.
    PlainAllowed,
    /// Plain HTTP reachable from the network without that consent: `serve` refuses to start.
    PlainRefused,
}

impl ProxyConfig {
    pub fn exposure(&self) -> Exposure {
        match self.transport {
            Transport::Tls(_) => Exposure::Tls,
            _ if self.listen.ip().to_canonical().is_loopback() => Exposure::Loopback,
            Transport::Plain {
                allow_non_loopback: true,
            } => Exposure::PlainAllowed,
            Transport::Plain {
                allow_non_loopback: false,
            } => Exposure::PlainRefused,
        }
    }

    /// Why plain HTTP on a network address is dangerous, and the ways out.
    pub fn plain_http_risk(&self) -> String {
        format!(
            "serve would listen on {} with plain HTTP, so the bearer token and every CRM row cross the network in clear text; set proxy.tls_cert and proxy.tls_key (PEM) to serve HTTPS, or listen on 127.0.0.1 behind a TLS-terminating reverse proxy, or set proxy.allow_plain_http = true to accept the risk",
            self.listen
        )
    }
}

/// `proxy.tls_cert` and `proxy.tls_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A ClickHouse refresh interval such as `5 MINUTE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub count: u32,
    pub unit: TimeUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.split_whitespace();
        let (Some(n), Some(u), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "`{text}` is not a schedule; write a number and a unit, e.g. `5 MINUTE`"
            ));
        };
        let count: u32 = n
            .parse()
            .ok()
            .filter(|c| *c > 0)
            .ok_or_else(|| format!("`{n}` is not a positive whole number (in `{text}`)"))?;
        let unit = match u.to_ascii_uppercase().trim_end_matches('S') {
            "SECOND" => TimeUnit::Second,
            "MINUTE" => TimeUnit::Minute,
            "HOUR" => TimeUnit::Hour,
            "DAY" => TimeUnit::Day,
            "WEEK" => TimeUnit::Week,
            _ => {
                return Err(format!(
                    "unknown unit `{u}`; use SECOND, MINUTE, HOUR, DAY or WEEK"
                ));
            }
        };
        Ok(Self { count, unit })
    }

    /// As ClickHouse's `REFRESH EVERY` expects it.
    pub fn sql(&self) -> String {
        let unit = match self.unit {
            TimeUnit::Second => "SECOND",
            TimeUnit::Minute => "MINUTE",
            TimeUnit::Hour => "HOUR",
            TimeUnit::Day => "DAY",
            TimeUnit::Week => "WEEK",
        };
        format!("{} {unit}", self.count)
    }

    pub fn as_duration(&self) -> std::time::Duration {
        let secs = match self.unit {
            TimeUnit::Second => 1,
            TimeUnit::Minute => 60,
            TimeUnit::Hour => 3600,
            TimeUnit::Day => 86_400,
            TimeUnit::Week => 604_800,
        };
        std::time::Duration::from_secs(u64::from(self.count) * secs)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EntitySettings {
    pub enabled: bool,
    pub schedule: Schedule,
    pub reconcile_schedule: Schedule,
    /// Rows loaded within this window before a reconcile are not compared with its ID list
    /// (a row created after the list was taken is never tombstoned); default 5 minutes.
    pub reconcile_safety: Schedule,
    /// ClickHouse's first wait before it retries a failed refresh; each retry doubles it.
    pub retry_backoff: Schedule,
    /// How many tombstones one reconcile may write (see [`DeleteGuard`]).
    pub delete_guard: DeleteGuard,
    /// `None` = every field.
    pub fields: Option<Vec<String>>,
    /// How long `<entity>_history` keeps a version; `None` = forever.
    pub history_ttl: Option<Schedule>,
}

impl EntitySettings {
    /// `reconcile_safety` in milliseconds; a window too long to count compares no row (the
    /// safe side: nothing is tombstoned).
    pub fn reconcile_safety_ms(&self) -> u64 {
        u64::try_from(self.reconcile_safety.as_duration().as_millis()).unwrap_or(u64::MAX)
    }
}

/// How many rows one reconcile may tombstone before it refuses. A complete but wrong ID list
/// (the webhook user lost CRM rights, a filter changed, an empty page from a permission
/// quirk) would otherwise delete rows that nothing brings back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DeleteGuard {
    /// `allow_mass_delete = true`: any number.
    Off,
    /// Refuse deleting every live row, or more than `percent` % of them when that is also
    /// more than `rows` rows.
    Limit { percent: f64, rows: u64 },
}

impl DeleteGuard {
    pub const DEFAULT: Self = Self::Limit {
        percent: 10.0,
        rows: 100,
    };

    /// Whether tombstoning `gone` of `live` live rows is refused.
    pub fn refuses(&self, gone: u64, live: u64) -> bool {
        match *self {
            Self::Off => false,
            Self::Limit { percent, rows } => {
                gone > 0
                    && (gone >= live
                        || (gone > rows && gone as f64 * 100.0 > percent * live as f64))
            }
        }
    }

    /// The limit in words, for refusals.
    pub fn describe(&self) -> String {
        match *self {
            Self::Off => "none (allow_mass_delete = true)".to_string(),
            Self::Limit { percent, rows } => {
                format!("all rows, or more than {percent}% and more than {rows} rows")
            }
        }
    }

    /// What to do about a refusal (names the settings).
    pub fn advice(entity: &str) -> String {
        format!(
            "the ID list may be incomplete (lost CRM rights, a changed filter, a permission quirk); if the portal really deleted them, set `allow_mass_delete = true` (or raise `max_delete_percent` / `max_delete_rows`) in [entities.{entity}], run `b24ch apply`, and reconcile again"
        )
    }

    /// The whole refusal message: `refusal_head`, the counts, `refusal_tail`.
    pub fn refusal(&self, entity: &str, gone: u64, live: u64) -> String {
        format!(
            "{}{gone} of {live}{}",
            Self::REFUSAL_HEAD,
            self.refusal_tail(entity)
        )
    }

    pub const REFUSAL_HEAD: &str = "b24ch: refusing to tombstone ";

    /// What follows "N of M" in a refusal.
    pub fn refusal_tail(&self, entity: &str) -> String {
        format!(
            " live rows of {entity} in one reconcile (limit: {}); {}",
            self.describe(),
            Self::advice(entity)
        )
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub state_dir: PathBuf,
    pub portal: PortalAuth,
    pub limits: LimitsConfig,
    pub clickhouse: ClickHouseConfig,
    pub proxy: ProxyConfig,
    /// Methods `b24_call` may run (`exec.call_methods`); `None`: the built-in read methods
    /// (`bitrix::methods::DEFAULT_CALL_METHODS`).
    pub call_methods: Option<Vec<String>>,
    default_entity: EntitySettings,
    entities: BTreeMap<String, EntitySettings>,
    /// Bitrix24 events as a change feed (`[events]`, `crate::events`).
    pub events: EventsConfig,
}

/// `[events]`: changes within seconds from Bitrix24 events.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// Offline events: bind them and read the queue (needs an OAuth app).
    pub offline: bool,
    /// The shortest wait between queue reads while changes arrive.
    pub poll_interval: Schedule,
    /// The longest a change may take to reach ClickHouse: while few changes arrive, reads
    /// come this far apart less the time a read takes to write them, so each read carries
    /// as many as the bound allows (`events::pace::next_wait`).
    pub max_delay: Schedule,
    /// What `POST /v1/events` requires in `auth.application_token`; `None` = refused.
    pub application_token: Option<Secret>,
}

impl Config {
    /// Settings of one entity (its own section, else `[entities.default]`).
    pub fn entity(&self, name: &str) -> EntitySettings {
        self.entities
            .get(name)
            .cloned()
            .unwrap_or_else(|| self.default_entity.clone())
    }

    /// Every secret of this config, for redacting text before it leaves the process.
    pub fn secrets(&self) -> Vec<&Secret> {
        let mut out = vec![&self.clickhouse.password, &self.proxy.token];
        if let Some(t) = &self.events.application_token {
            out.push(t);
        }
        match &self.portal {
            PortalAuth::Demo => {}
            PortalAuth::Webhook { url } => out.push(url),
            PortalAuth::OAuth {
                client_secret,
                access_token,
                refresh_token,
                ..
            } => out.extend([client_secret, access_token, refresh_token]),
        }
        out
    }
}

/// Reads and validates a config file. A missing path means "all defaults" (demo portal).
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    let Some(path) = path else {
        return from_toml_str("");
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            "--config",
            format!(
                "cannot read {}: {e}; pass an existing file (see config_example.toml)",
                path.display()
            ),
        )
    })?;
    check_permissions(path, &text)?;
    from_toml_str(&text)
}

/// A file holding literal secrets must not be readable by others (like ssh keys).
fn check_permissions(path: &Path, text: &str) -> Result<(), ConfigError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let has_literal_secret = text.lines().any(|l| {
            let l = l.trim_start();
            [
                "webhook_url",
                "password",
                "token",
                "client_secret",
                "access_token",
                "refresh_token",
            ]
            .iter()
            .any(|k| l.starts_with(k))
                && l.contains('=')
                && !l.contains("\"env:")
        });
        let mode = std::fs::metadata(path)
            .map(|m| m.permissions().mode())
            .unwrap_or(0o600);
        if has_literal_secret && mode & 0o077 != 0 {
            return Err(ConfigError::new(
                "--config",
                format!(
                    "{} holds secrets but is readable by other users (mode {:o}); run `chmod 600 {}` or move the secrets to environment variables (`password = \"env:VAR\"`)",
                    path.display(),
                    mode & 0o777,
                    path.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Parses and validates config text.
pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        ConfigError::new(
            toml_error_key(&e),
            e.message().to_string() + "; see config_example.toml for every key",
        )
    })?;
    resolve(raw)
}

fn toml_error_key(e: &toml::de::Error) -> String {
    // toml reports the span; the message itself names unknown fields, so the key is the file.
    match e.span() {
        Some(span) => format!("config file (bytes {}..{})", span.start, span.end),
        None => "config file".to_string(),
    }
}

/// The tables listed whole, one owner (activity, workgroup) per command, every load: each load costs
/// about as much as their owners' count, not their changes (`docs/architecture.md`, "Timeline
/// comments"). The methods table knows them as `MethodSpec::whole_per_owner`; a test keeps
/// this list equal to it.
pub const WHOLE_PER_OWNER_TABLES: &[&str] =
    &["crm_timeline_comment", "crm_activity_binding", "task_stage"];

/// Their schedule unless the config sets one (for them or in `[entities.default]`).
pub const WHOLE_PER_OWNER_SCHEDULE: Schedule = Schedule {
    count: 1,
    unit: TimeUnit::Hour,
};

fn resolve(raw: RawConfig) -> Result<Config, ConfigError> {
    let state_dir = raw
        .state_dir
        .unwrap_or_else(|| PathBuf::from(".build/state"));
    let portal = resolve_portal(&raw.portal)?;
    let limits = resolve_limits(&raw.limits, &portal)?;
    let clickhouse = resolve_clickhouse(&raw.clickhouse)?;
    let proxy = resolve_proxy(&raw.proxy)?;
    let builtin = EntitySettings {
        enabled: true,
        schedule: Schedule {
            count: 5,
            unit: TimeUnit::Minute,
        },
        reconcile_schedule: Schedule {
            count: 1,
            unit: TimeUnit::Hour,
        },
        reconcile_safety: Schedule {
            count: 5,
            unit: TimeUnit::Minute,
        },
        retry_backoff: Schedule {
            count: 5,
            unit: TimeUnit::Second,
        },
        delete_guard: DeleteGuard::DEFAULT,
        fields: None,
        history_ttl: None,
    };
    let default_entity = match raw.entities.get("default") {
        Some(e) => resolve_entity("entities.default", e, &builtin)?,
        None => builtin,
    };
    let mut entities = BTreeMap::new();
    for (name, e) in raw.entities.iter().filter(|(n, _)| *n != "default") {
        check_entity_name(name)?;
        entities.insert(
            name.clone(),
            resolve_entity(&format!("entities.{name}"), e, &default_entity)?,
        );
    }
    let default_schedule_set = raw
        .entities
        .get("default")
        .is_some_and(|d| d.schedule.is_some());
    for name in WHOLE_PER_OWNER_TABLES {
        let set = raw
            .entities
            .get(*name)
            .is_some_and(|e| e.schedule.is_some());
        if !set && !default_schedule_set {
            entities
                .entry(name.to_string())
                .or_insert_with(|| default_entity.clone())
                .schedule = WHOLE_PER_OWNER_SCHEDULE;
        }
    }
    let call_methods = resolve_call_methods(&raw.exec)?;
    let events = resolve_events(&raw.events, &portal)?;
    Ok(Config {
        state_dir,
        portal,
        limits,
        clickhouse,
        proxy,
        call_methods,
        default_entity,
        entities,
        events,
    })
}

fn resolve_events(
    raw: &super::model::RawEvents,
    portal: &PortalAuth,
) -> Result<EventsConfig, ConfigError> {
    let offline = raw.offline.unwrap_or(false);
    if offline && matches!(portal, PortalAuth::Webhook { .. }) {
        return Err(ConfigError::new(
            "events.offline",
            "offline events need an OAuth app (event.bind works only in application context); configure [portal.oauth], or set events.offline = false and send online events to POST /v1/events from an outgoing webhook",
        ));
    }
    let poll_interval = match &raw.poll_interval {
        Some(s) => Schedule::parse(s).map_err(|e| ConfigError::new("events.poll_interval", e))?,
        None => Schedule {
            count: 5,
            unit: TimeUnit::Second,
        },
    };
    let max_delay = match &raw.max_delay {
        Some(s) => Schedule::parse(s).map_err(|e| ConfigError::new("events.max_delay", e))?,
        None => Schedule {
            count: 14,
            unit: TimeUnit::Second,
        },
    };
    if max_delay.as_duration() < poll_interval.as_duration() {
        return Err(ConfigError::new(
            "events.max_delay",
            "is shorter than events.poll_interval; set it to at least the poll interval (it is the longest wait between reads, the poll interval the shortest)",
        ));
    }
    let application_token = match &raw.application_token {
        Some(v) => {
            let s = secret_value("events.application_token", v)?;
            if s.expose().len() < 16 {
                return Err(ConfigError::new(
                    "events.application_token",
                    "is shorter than 16 characters; copy the application_token Bitrix24 sends with the app's events",
                ));
            }
            Some(s)
        }
        None => None,
    };
    Ok(EventsConfig {
        offline,
        poll_interval,
        max_delay,
        application_token,
    })
}

/// `env:VAR` reads the value from the environment; anything else is the literal value.
fn secret_value(key: &str, value: &str) -> Result<Secret, ConfigError> {
    match value.strip_prefix("env:") {
        Some(var) => std::env::var(var).map(Secret::new).map_err(|_| {
            ConfigError::new(
                key,
                format!("environment variable `{var}` is not set; export it or write the value"),
            )
        }),
        None => Ok(Secret::new(value)),
    }
}

fn plain_value(key: &str, value: &str) -> Result<String, ConfigError> {
    secret_value(key, value).map(|s| s.expose().to_string())
}

fn resolve_portal(raw: &super::model::RawPortal) -> Result<PortalAuth, ConfigError> {
    match (&raw.webhook_url, &raw.oauth) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            "portal",
            "both `webhook_url` and `[portal.oauth]` are set; keep one of them",
        )),
        (Some(url), None) => {
            let url = secret_value("portal.webhook_url", url)?;
            check_webhook_url(url.expose())?;
            Ok(PortalAuth::Webhook { url })
        }
        (None, Some(oauth)) => resolve_oauth(oauth),
        (None, None) => Ok(PortalAuth::Demo),
    }
}

/// `http://` sends the webhook secret or the tokens in clear text: only to this machine.
fn check_transport(key: &str, url: &str) -> Result<(), ConfigError> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Ok(());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            "is an http:// URL to another machine: the secret would cross the network in clear text; use https:// (plain http is accepted only for localhost / 127.0.0.1 / ::1)",
        ))
    }
}

fn check_webhook_url(url: &str) -> Result<(), ConfigError> {
    check_transport("portal.webhook_url", url)?;
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.contains("/rest/")
        && url
            .split("/rest/")
            .nth(1)
            .map(|rest| rest.trim_end_matches('/').split('/').count() == 2)
            .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            "portal.webhook_url",
            "expected an inbound webhook URL like https://example.bitrix24.com/rest/1/abcdef123/ (Bitrix24 → Developer resources → Inbound webhook)",
        ))
    }
}

fn required(key: &str, value: &Option<String>) -> Result<String, ConfigError> {
    value
        .clone()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ConfigError::new(key, "is required for an OAuth app; set it"))
}

fn resolve_oauth(raw: &RawOAuth) -> Result<PortalAuth, ConfigError> {
    let portal_url = plain_value(
        "portal.oauth.portal_url",
        &required("portal.oauth.portal_url", &raw.portal_url)?,
    )?;
    if !portal_url.starts_with("https://") && !portal_url.starts_with("http://") {
        return Err(ConfigError::new(
            "portal.oauth.portal_url",
            "must be a URL like https://example.bitrix24.com",
        ));
    }
    check_transport("portal.oauth.portal_url", &portal_url)?;
    if let Some(server) = &raw.oauth_server {
        check_transport("portal.oauth.oauth_server", server)?;
    }
    let get = |key: &str, v: &Option<String>| -> Result<Secret, ConfigError> {
        secret_value(key, &required(key, v)?)
    };
    Ok(PortalAuth::OAuth {
        portal_url,
        client_id: plain_value(
            "portal.oauth.client_id",
            &required("portal.oauth.client_id", &raw.client_id)?,
        )?,
        client_secret: get("portal.oauth.client_secret", &raw.client_secret)?,
        access_token: get("portal.oauth.access_token", &raw.access_token)?,
        refresh_token: get("portal.oauth.refresh_token", &raw.refresh_token)?,
        oauth_server: raw
            .oauth_server
            .clone()
            .unwrap_or_else(|| "https://oauth.bitrix.info".to_string()),
    })
}

fn resolve_limits(raw: &RawLimits, portal: &PortalAuth) -> Result<LimitsConfig, ConfigError> {
    let plan = match raw.plan.as_deref() {
        None | Some("standard") => Plan::Standard,
        Some("enterprise") => Plan::Enterprise,
        Some("on-premise") => Plan::OnPremise,
        Some(other) => {
            return Err(ConfigError::new(
                "limits.plan",
                format!("unknown plan `{other}`; use standard, enterprise or on-premise"),
            ));
        }
    };
    let _ = portal;
    let (rate, burst, operating) = match plan {
        Plan::Standard => (Some(2.0), 50.0, Some(480.0)),
        Plan::Enterprise => (Some(5.0), 250.0, Some(480.0)),
        Plan::OnPremise => (None, 50.0, None),
    };
    let positive = |key: &str, v: Option<f64>| -> Result<Option<f64>, ConfigError> {
        match v {
            Some(x) if !(x.is_finite() && x > 0.0) => Err(ConfigError::new(
                key,
                format!("{x} is not a positive number"),
            )),
            other => Ok(other),
        }
    };
    let requests_per_second =
        positive("limits.requests_per_second", raw.requests_per_second)?.or(rate);
    let burst = positive("limits.burst", raw.burst)?.unwrap_or(burst);
    let operating = positive(
        "limits.operating_seconds_per_10min",
        raw.operating_seconds_per_10min,
    )?
    .or(operating);
    if operating.is_some_and(|o| o > 600.0) {
        return Err(ConfigError::new(
            "limits.operating_seconds_per_10min",
            "cannot exceed 600 (a 10-minute window); the cloud limit is 480",
        ));
    }
    let max_concurrent_requests = match raw.max_concurrent_requests {
        Some(0) => {
            return Err(ConfigError::new(
                "limits.max_concurrent_requests",
                "must be at least 1",
            ));
        }
        Some(n) => n,
        None => 4,
    };
    let request_timeout = match raw.request_timeout_secs {
        Some(0) => {
            return Err(ConfigError::new(
                "limits.request_timeout_secs",
                "must be at least 1 (the cloud cuts requests at 60 s; 90 is the default)",
            ));
        }
        Some(n) => std::time::Duration::from_secs(n),
        None => std::time::Duration::from_secs(90),
    };
    Ok(LimitsConfig {
        plan,
        requests_per_second,
        burst,
        operating_seconds_per_10min: operating,
        max_concurrent_requests,
        request_timeout,
    })
}

fn resolve_clickhouse(raw: &super::model::RawClickHouse) -> Result<ClickHouseConfig, ConfigError> {
    let url = match &raw.url {
        Some(u) => plain_value("clickhouse.url", u)?,
        None => "http://127.0.0.1:8123".to_string(),
    };
    let secure = raw.secure.unwrap_or(url.starts_with("https://"));
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ConfigError::new(
            "clickhouse.url",
            format!(
                "`{url}` is not an HTTP(S) URL; b24ch talks to ClickHouse's HTTP interface, e.g. http://127.0.0.1:8123"
            ),
        ));
    }
    if secure && url.starts_with("http://") {
        return Err(ConfigError::new(
            "clickhouse.secure",
            "is true but clickhouse.url is http://; use an https:// URL (port 8443 on most clouds)",
        ));
    }
    if let Some(ca) = &raw.ca_cert
        && !ca.is_file()
    {
        return Err(ConfigError::new(
            "clickhouse.ca_cert",
            format!(
                "{} does not exist; give the path of the CA certificate (PEM) of your ClickHouse cloud",
                ca.display()
            ),
        ));
    }
    let database = raw.database.clone().unwrap_or_else(|| "b24".to_string());
    check_identifier("clickhouse.database", &database)?;
    let dictionary_user = match &raw.dictionary_user {
        Some(u) => {
            check_identifier("clickhouse.dictionary_user", u)?;
            DictionaryUser::Existing(u.clone())
        }
        None => DictionaryUser::Create(format!("b24ch_dict_{database}")),
    };
    Ok(ClickHouseConfig {
        url,
        database,
        user: raw.user.clone().unwrap_or_else(|| "default".to_string()),
        password: secret_value("clickhouse.password", raw.password.as_deref().unwrap_or(""))?,
        ca_cert: raw.ca_cert.clone(),
        secure,
        cluster: raw.cluster.clone(),
        dictionary_user,
        timeouts: ClickHouseTimeouts {
            connect: timeout_secs(
                "clickhouse.connect_timeout_secs",
                raw.connect_timeout_secs,
                ClickHouseTimeouts::default().connect,
            )?,
            request: timeout_secs(
                "clickhouse.request_timeout_secs",
                raw.request_timeout_secs,
                ClickHouseTimeouts::default().request,
            )?,
        },
    })
}

/// A timeout in whole seconds, at least 1.
fn timeout_secs(
    key: &str,
    raw: Option<u64>,
    default: std::time::Duration,
) -> Result<std::time::Duration, ConfigError> {
    match raw {
        None => Ok(default),
        Some(0) => Err(ConfigError::new(
            key,
            format!(
                "must be at least 1 (seconds; the default is {})",
                default.as_secs()
            ),
        )),
        Some(n) => Ok(std::time::Duration::from_secs(n)),
    }
}

fn resolve_proxy(raw: &super::model::RawProxy) -> Result<ProxyConfig, ConfigError> {
    let listen_text = raw.listen.as_deref().unwrap_or("127.0.0.1:8480");
    let listen: std::net::SocketAddr = listen_text.parse().map_err(|_| {
        ConfigError::new(
            "proxy.listen",
            format!("`{listen_text}` is not an address like 127.0.0.1:8480 or 0.0.0.0:8480"),
        )
    })?;
    let transport = resolve_transport(raw)?;
    let tls = matches!(transport, Transport::Tls(_));
    let public_url = match &raw.public_url {
        Some(u) if u.starts_with("http://") && tls => {
            return Err(ConfigError::new(
                "proxy.public_url",
                format!(
                    "`{u}` is plain http:// but serve listens with TLS (proxy.tls_cert); write https://"
                ),
            ));
        }
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
            u.trim_end_matches('/').to_string()
        }
        Some(u) => {
            return Err(ConfigError::new(
                "proxy.public_url",
                format!(
                    "`{u}` is not an http(s) URL; give the address ClickHouse uses to reach b24ch"
                ),
            ));
        }
        None if tls => format!("https://{listen}"),
        None => format!("http://{listen}"),
    };
    let token = secret_value("proxy.token", raw.token.as_deref().unwrap_or(""))?;
    if !token.is_empty() && token.expose().len() < 16 {
        return Err(ConfigError::new(
            "proxy.token",
            "is shorter than 16 characters; use a long random token (e.g. `openssl rand -hex 24`)",
        ));
    }
    let autopilot_interval =
        Schedule::parse(raw.autopilot_interval.as_deref().unwrap_or("10 MINUTE"))
            .map_err(|e| ConfigError::new("proxy.autopilot_interval", e))?;
    Ok(ProxyConfig {
        listen,
        public_url,
        token,
        autopilot_interval,
        transport,
        timeouts: ServeTimeouts {
            header: timeout_secs(
                "proxy.header_timeout_secs",
                raw.header_timeout_secs,
                ServeTimeouts::default().header,
            )?,
            body: timeout_secs(
                "proxy.body_timeout_secs",
                raw.body_timeout_secs,
                ServeTimeouts::default().body,
            )?,
            stall: timeout_secs(
                "proxy.stall_timeout_secs",
                raw.stall_timeout_secs,
                ServeTimeouts::default().stall,
            )?,
        },
    })
}

/// Both TLS files or neither; `allow_plain_http` only without them.
fn resolve_transport(raw: &super::model::RawProxy) -> Result<Transport, ConfigError> {
    let file = |key: &str, path: &PathBuf, what: &str| {
        if path.is_file() {
            Ok(path.clone())
        } else {
            Err(ConfigError::new(
                key,
                format!("{} does not exist; give the path of {what}", path.display()),
            ))
        }
    };
    match (&raw.tls_cert, &raw.tls_key, raw.allow_plain_http) {
        (Some(_), Some(_), Some(true)) => Err(ConfigError::new(
            "proxy.allow_plain_http",
            "is true but proxy.tls_cert is set, so serve listens with TLS only; remove one of them",
        )),
        (Some(cert), Some(key), _) => Ok(Transport::Tls(TlsFiles {
            cert: file(
                "proxy.tls_cert",
                cert,
                "the server certificate (PEM, chain allowed)",
            )?,
            key: file("proxy.tls_key", key, "the certificate's private key (PEM)")?,
        })),
        (Some(_), None, _) => Err(ConfigError::new(
            "proxy.tls_key",
            "is missing: proxy.tls_cert needs the private key of the certificate (PEM)",
        )),
        (None, Some(_), _) => Err(ConfigError::new(
            "proxy.tls_cert",
            "is missing: proxy.tls_key needs the certificate it belongs to (PEM, chain allowed)",
        )),
        (None, None, allow) => Ok(Transport::Plain {
            allow_non_loopback: allow.unwrap_or(false),
        }),
    }
}

fn resolve_entity(
    key: &str,
    raw: &RawEntity,
    base: &EntitySettings,
) -> Result<EntitySettings, ConfigError> {
    let schedule = |k: &str, v: &Option<String>, d: Schedule| match v {
        Some(s) => Schedule::parse(s).map_err(|e| ConfigError::new(format!("{key}.{k}"), e)),
        None => Ok(d),
    };
    if let Some(fields) = &raw.fields {
        for f in fields {
            if f.is_empty() || !f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(ConfigError::new(
                    format!("{key}.fields"),
                    format!(
                        "`{f}` is not a Bitrix24 field code (letters, digits, `_`), e.g. \"TITLE\" or \"UF_CRM_1721244707107\""
                    ),
                ));
            }
        }
    }
    Ok(EntitySettings {
        enabled: raw.enabled.unwrap_or(base.enabled),
        schedule: schedule("schedule", &raw.schedule, base.schedule)?,
        reconcile_schedule: schedule(
            "reconcile_schedule",
            &raw.reconcile_schedule,
            base.reconcile_schedule,
        )?,
        reconcile_safety: schedule(
            "reconcile_safety",
            &raw.reconcile_safety,
            base.reconcile_safety,
        )?,
        retry_backoff: schedule("retry_backoff", &raw.retry_backoff, base.retry_backoff)?,
        delete_guard: delete_guard(key, raw, base.delete_guard)?,
        fields: raw.fields.clone().or_else(|| base.fields.clone()),
        history_ttl: match &raw.history_ttl {
            Some(s) => Some(
                Schedule::parse(s)
                    .map_err(|e| ConfigError::new(format!("{key}.history_ttl"), e))?,
            ),
            None => base.history_ttl,
        },
    })
}

/// `allow_mass_delete`, `max_delete_percent`, `max_delete_rows`, each inherited from `base`.
fn delete_guard(key: &str, raw: &RawEntity, base: DeleteGuard) -> Result<DeleteGuard, ConfigError> {
    if let Some(p) = raw.max_delete_percent
        && !(p.is_finite() && p > 0.0 && p <= 100.0)
    {
        return Err(ConfigError::new(
            format!("{key}.max_delete_percent"),
            format!("{p} is not a percentage above 0 and at most 100 (default 10)"),
        ));
    }
    // `Off` keeps no numbers of its own: an entity that sets one gets the defaults for the other.
    let (base_percent, base_rows) = match base {
        DeleteGuard::Limit { percent, rows } => (percent, rows),
        DeleteGuard::Off => (10.0, 100),
    };
    let limit = DeleteGuard::Limit {
        percent: raw.max_delete_percent.unwrap_or(base_percent),
        rows: raw.max_delete_rows.unwrap_or(base_rows),
    };
    let sets_limit = raw.max_delete_percent.is_some() || raw.max_delete_rows.is_some();
    Ok(match raw.allow_mass_delete {
        Some(true) => DeleteGuard::Off,
        Some(false) => limit,
        None if base == DeleteGuard::Off && !sets_limit => DeleteGuard::Off,
        None => limit,
    })
}

fn resolve_call_methods(raw: &super::model::RawExec) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(list) = &raw.call_methods else {
        return Ok(None);
    };
    for m in list {
        let ok = !m.is_empty()
            && m.len() <= 128
            && m.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
            && !m.eq_ignore_ascii_case("batch");
        if !ok {
            return Err(ConfigError::new(
                "exec.call_methods",
                format!(
                    "`{}` is not a Bitrix24 method name (letters, digits, `.`, `_`; not `batch`), e.g. \"crm.deal.get\"",
                    m.chars().take(64).collect::<String>()
                ),
            ));
        }
    }
    Ok(Some(list.iter().map(|m| m.to_ascii_lowercase()).collect()))
}

fn check_entity_name(name: &str) -> Result<(), ConfigError> {
    check_identifier(&format!("entities.{name}"), name)
}

fn check_identifier(key: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!(
                "`{name}` is not a valid name: use letters, digits and `_`, not starting with a digit"
            ),
        ))
    }
}
