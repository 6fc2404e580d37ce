//! `POST /v1/events`: online events from Bitrix24 (an app's `event.bind` handler or an
//! outgoing webhook). The body is form fields as PHP's `http_build_query` writes them
//! (`data[FIELDS][ID]=…&auth[application_token]=…`) or JSON; either way the
//! `auth.application_token` must equal `events.application_token` (compared in constant
//! time), otherwise 401 and nothing is queued. Accepted changes go to a worker that applies
//! them in batches through the same [`Sink`] as offline events.
use super::sink::Sink;
use super::{Notice, classify};
use crate::config::Secret;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use subtle::ConstantTimeEq;

/// One parsed online event.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineEvent {
    pub event: String,
    pub data: Value,
    pub application_token: String,
}

/// Why a POST was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OnlineError {
    #[error("the body is neither form fields nor JSON with `event`, `data` and `auth`")]
    Unreadable,
    #[error("no `event` in the body")]
    NoEvent,
    #[error("wrong or missing auth.application_token")]
    Token,
}

/// Reads a POST body (JSON when the content type says so, form fields otherwise).
pub fn parse(content_type: &str, body: &[u8]) -> Result<OnlineEvent, OnlineError> {
    let v: Value = if content_type.contains("json") {
        serde_json::from_slice(body).map_err(|_| OnlineError::Unreadable)?
    } else {
        form_to_json(body)
    };
    let event = v
        .get("event")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
        .ok_or(OnlineError::NoEvent)?
        .to_string();
    let application_token = v
        .get("auth")
        .and_then(|a| a.get("application_token"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Ok(OnlineEvent {
        event,
        data: v.get("data").cloned().unwrap_or(Value::Null),
        application_token,
    })
}

/// `a[b][c]=v` pairs into nested objects (PHP `parse_str`, objects only: events need no more).
fn form_to_json(body: &[u8]) -> Value {
    let mut root = Map::new();
    for (k, v) in form_urlencoded::parse(body) {
        let mut path: Vec<String> = Vec::new();
        match k.split_once('[') {
            Some((head, rest)) => {
                path.push(head.to_string());
                path.extend(rest.trim_end_matches(']').split("][").map(str::to_string));
            }
            None => path.push(k.to_string()),
        }
        insert(&mut root, &path, Value::String(v.into_owned()));
    }
    Value::Object(root)
}

fn insert(obj: &mut Map<String, Value>, path: &[String], v: Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        obj.insert(first.clone(), v);
        return;
    }
    let child = obj
        .entry(first.clone())
        .or_insert_with(|| Value::Object(Map::new()));
    if !child.is_object() {
        *child = Value::Object(Map::new());
    }
    if let Value::Object(m) = child {
        insert(m, rest, v);
    }
}

/// Constant-time comparison (no early exit on the first differing byte).
pub fn token_matches(presented: &str, expected: &Secret) -> bool {
    !presented.is_empty()
        && !expected.is_empty()
        && bool::from(presented.as_bytes().ct_eq(expected.expose().as_bytes()))
}

/// Counters of the endpoint.
#[derive(Debug, Default)]
pub struct InboxStats {
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    pub ignored: AtomicU64,
    pub applied_batches: AtomicU64,
    pub failed_batches: AtomicU64,
}

/// The endpoint's state: the token and the queue to the worker.
#[derive(Clone)]
pub struct Inbox {
    token: Secret,
    tx: tokio::sync::mpsc::UnboundedSender<Notice>,
    pub stats: Arc<InboxStats>,
}

/// How long the worker gathers changes before applying them (a burst becomes few fetches).
pub const GATHER: Duration = Duration::from_millis(300);

impl Inbox {
    /// The inbox and its worker, which applies gathered changes through `sink`.
    pub fn start(token: Secret, sink: Arc<Sink>) -> Self {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let stats = Arc::new(InboxStats::default());
        tokio::spawn(worker(rx, sink, stats.clone()));
        Self { token, tx, stats }
    }
}

async fn worker(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Notice>,
    sink: Arc<Sink>,
    stats: Arc<InboxStats>,
) {
    while let Some(first) = rx.recv().await {
        tokio::time::sleep(GATHER).await;
        let mut batch = vec![first];
        while let Ok(n) = rx.try_recv() {
            batch.push(n);
        }
        batch.sort_by(|a, b| (&a.entity, a.kind, a.id).cmp(&(&b.entity, b.kind, b.id)));
        batch.dedup();
        match sink.apply(&batch).await {
            Ok(a) => {
                stats.applied_batches.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    changes = batch.len(),
                    rows = a.rows,
                    tombstones = a.tombstones,
                    "online events applied"
                );
            }
            Err(e) => {
                // Bitrix24 does not resend online events: the scheduled load and the
                // reconcile bring these changes.
                stats.failed_batches.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, changes = batch.len(), "online events could not be applied; the next scheduled load brings them");
            }
        }
    }
}

/// The route of online events.
pub const PATH: &str = "/v1/events";

/// `POST /v1/events` (no bearer token: Bitrix24 cannot send one; the application token is
/// the credential).
pub fn route(inbox: Inbox) -> axum::routing::MethodRouter {
    post(receive).with_state(inbox)
}

async fn receive(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> Response {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let checked = parse(&ct, &body).and_then(|ev| {
        if token_matches(&ev.application_token, &inbox.token) {
            Ok(ev)
        } else {
            Err(OnlineError::Token)
        }
    });
    let ev = match checked {
        Ok(ev) => ev,
        Err(OnlineError::Token) => {
            inbox.stats.rejected.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("POST /v1/events refused: wrong or missing application token");
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"error": OnlineError::Token.to_string()})),
            )
                .into_response();
        }
        Err(e) => {
            inbox.stats.rejected.fetch_add(1, Ordering::Relaxed);
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": e.to_string()})),
            )
                .into_response();
        }
    };
    match classify(&ev.event, &ev.data).map(|n| inbox.tx.send(n)) {
        Some(Ok(())) => {
            inbox.stats.accepted.fetch_add(1, Ordering::Relaxed);
            (StatusCode::OK, axum::Json(json!({"accepted": true}))).into_response()
        }
        Some(Err(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"error": "the event worker stopped"})),
        )
            .into_response(),
        None => {
            inbox.stats.ignored.fetch_add(1, Ordering::Relaxed);
            (StatusCode::OK, axum::Json(json!({"accepted": false, "reason": "not a row change of an entity b24ch loads"}))).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_php_form_and_json_bodies() {
        let form = b"event=ONCRMDEALUPDATE&event_handler_id=3&data%5BFIELDS%5D%5BID%5D=759&ts=1&auth%5Bapplication_token%5D=abc";
        let e = parse("application/x-www-form-urlencoded", form).unwrap();
        assert_eq!(e.event, "ONCRMDEALUPDATE");
        assert_eq!(e.data, json!({"FIELDS": {"ID": "759"}}));
        assert_eq!(e.application_token, "abc");
        let j = br#"{"event":"ONCRMDEALDELETE","data":{"FIELDS":{"ID":"1"}},"auth":{"application_token":"x"}}"#;
        let e = parse("application/json; charset=utf-8", j).unwrap();
        assert_eq!(e.application_token, "x");
        assert_eq!(
            parse("application/json", b"{"),
            Err(OnlineError::Unreadable)
        );
        assert_eq!(
            parse("application/x-www-form-urlencoded", b"a=1"),
            Err(OnlineError::NoEvent)
        );
        // A task deletion as a form: the id on the side that exists.
        let form = b"event=ONTASKDELETE&data%5BFIELDS_BEFORE%5D%5BID%5D=123&data%5BFIELDS_AFTER%5D=undefined&auth%5Bapplication_token%5D=abc";
        let e = parse("application/x-www-form-urlencoded", form).unwrap();
        let n = super::super::classify(&e.event, &e.data).unwrap();
        assert_eq!(
            (n.entity.as_str(), n.kind, n.id),
            ("task", super::super::ChangeKind::Delete, Some(123))
        );
    }

    #[test]
    fn token_check() {
        let s = Secret::new("0123456789abcdef0123");
        assert!(token_matches("0123456789abcdef0123", &s));
        assert!(!token_matches("0123456789abcdef0124", &s));
        assert!(!token_matches("0123456789abcdef012", &s));
        assert!(!token_matches("", &s));
        assert!(!token_matches("", &Secret::new("")));
    }
}
