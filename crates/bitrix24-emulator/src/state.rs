//! The portal's mutable state behind one lock, and what every request handler shares: the
//! data, clocks and limiters, counters, injected faults, OAuth tokens, availability switches
//! and the event queue.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::config::{BillingSettings, PortalConfig, ProductRowOwnerArrays, SmartStageHistory};
use super::events::EventsState;
use super::limits::{LeakyBucket, OperatingLimiter, SimClock};
use super::method_error::MethodError;
use super::model::PortalData;
use super::oauth::OAuthState;

/// Request and billing counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// HTTP requests to `/rest/...` (a batch is one).
    pub requests_total: u64,
    /// Calls per method, including each nested batch command.
    pub per_method: BTreeMap<String, u64>,
    /// COUNT queries executed (list calls with `start >= 0`).
    pub count_queries: u64,
    pub count_queries_per_method: BTreeMap<String, u64>,
    /// Simulated operating seconds billed per method.
    pub operating_secs: BTreeMap<String, f64>,
    pub rows_served: BTreeMap<String, u64>,
    /// HTTP responses by status code.
    pub responses_by_status: BTreeMap<String, u64>,
    /// Errors by code (top-level and nested), `""` for legacy code-less errors.
    pub errors_by_code: BTreeMap<String, u64>,
    /// HTTP 503 QUERY_LIMIT_EXCEEDED responses.
    pub query_limit_exceeded: u64,
    /// HTTP 429 OPERATION_TIME_LIMIT responses.
    pub operation_time_limit: u64,
    pub faults_injected: u64,
    /// Injected faults by kind (`operation_time_limit`, `connection_reset`…), so tests can
    /// tell the portal's own limit answers from injected ones.
    #[serde(default)]
    pub faults_by_kind: BTreeMap<String, u64>,
}

impl FaultKind {
    /// The `type` name used on the control API.
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::QueryLimitExceeded => "query_limit_exceeded",
            FaultKind::OperationTimeLimit => "operation_time_limit",
            FaultKind::InternalError => "internal_error",
            FaultKind::Slow { .. } => "slow",
            FaultKind::ConnectionReset => "connection_reset",
            FaultKind::TruncatedJson => "truncated_json",
            FaultKind::ExpiredToken => "expired_token",
            FaultKind::PortalError { .. } => "portal_error",
        }
    }
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FaultKind {
    /// HTTP 503 QUERY_LIMIT_EXCEEDED.
    QueryLimitExceeded,
    /// HTTP 429 OPERATION_TIME_LIMIT.
    OperationTimeLimit,
    /// HTTP 500 INTERNAL_SERVER_ERROR.
    InternalError,
    /// Delay the (otherwise normal) response.
    Slow { delay_ms: u64 },
    /// Send part of the body, then abort the connection.
    ConnectionReset,
    /// HTTP 200 with a cut JSON body.
    TruncatedJson,
    /// HTTP 401 expired_token.
    ExpiredToken,
    /// Any other error answer `{"error": code, "error_description": description}`, e.g. a
    /// final `ACCESS_DENIED` the client must not retry.
    PortalError {
        status: u16,
        code: String,
        description: String,
    },
}

/// A fault rule: applies with `probability`, or to the next `remaining` requests (both absent:
/// every request), optionally only for one `method`: its requests, and its commands inside a
/// `batch` (answered as that command's error, as a portal does; transport faults apply to
/// whole requests only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    #[serde(flatten)]
    pub kind: FaultKind,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub probability: Option<f64>,
    #[serde(default)]
    pub remaining: Option<u32>,
}

/// Mutable portal state behind one lock (handlers never hold it across an await).
#[derive(Debug)]
pub(crate) struct State {
    pub data: PortalData,
    pub clock: SimClock,
    pub bucket: LeakyBucket,
    pub operating: OperatingLimiter,
    /// How calls are billed and reported now (starts from the config).
    pub billing: BillingSettings,
    pub counters: Counters,
    pub faults: Vec<Fault>,
    pub oauth: OAuthState,
    pub crm_admin: bool,
    pub rng: u64,
    /// Methods answering `ERROR_METHOD_NOT_FOUND` (lower-case).
    pub missing_methods: BTreeSet<String>,
    pub smart_stage_history: SmartStageHistory,
    pub productrow_owner_arrays: ProductRowOwnerArrays,
    /// Scopes the credentials lack.
    pub denied_scopes: BTreeSet<String>,
    /// Bound handlers, the offline queue and online deliveries.
    pub events: EventsState,
    /// Whether the request being run came with an application token (not a webhook).
    pub app_context: bool,
}

/// The scope a method needs (the `Scope:` line of its docs page); `None` for `batch` and other
/// `basic` methods, which every webhook has.
pub(crate) fn scope_of(method: &str) -> Option<&'static str> {
    match method.split('.').next().unwrap_or_default() {
        "crm" => Some("crm"),
        "user" => Some("user"),
        "department" => Some("department"),
        "tasks" | "task" => Some("task"),
        "voximplant" => Some("telephony"),
        "sonet_group" => Some("sonet_group"),
        _ => None,
    }
}

impl State {
    /// How this portal refuses `method` before running it, if it does: no such method here, or
    /// a scope the credentials lack. `oauth` picks the scope error's wording; inside a batch the
    /// description is empty (docs/bitrix24-api.md §1.6).
    pub(crate) fn refusal(&self, method: &str, in_batch: bool, oauth: bool) -> Option<MethodError> {
        if self.missing_methods.contains(&method.to_ascii_lowercase()) {
            return Some(MethodError::new(
                404,
                "ERROR_METHOD_NOT_FOUND",
                "Method not found!",
            ));
        }
        let scope = scope_of(method)?;
        if !self.denied_scopes.contains(scope) {
            return None;
        }
        let description = match (in_batch, oauth) {
            (true, _) => "",
            (false, false) => {
                "The request requires higher privileges than provided by the webhook token"
            }
            (false, true) => {
                "The request requires higher privileges than provided by the access token"
            }
        };
        Some(MethodError::new(401, "insufficient_scope", description))
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub cfg: PortalConfig,
    pub base_url: String,
    pub state: Mutex<State>,
    /// Wakes the online-event delivery task.
    pub events_wake: tokio::sync::Notify,
}
