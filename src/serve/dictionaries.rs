//! `/v1/dictionaries/{name}`: reference data for ClickHouse's HTTP dictionary source, the
//! same rows `b24ch exec dict` prints (see `crate::exec::dict`).
//!
//! - `GET` — every row; with `modified_since=<time>` only rows modified since then. Declare
//!   `<update_field>modified_since</update_field>` in the source and ClickHouse adds
//!   `modified_since=YYYY-MM-DD hh:mm:ss` (its last update time minus `update_lag`, written in
//!   the ClickHouse server's time zone: pass `update_tz=+03:00` if that is not UTC) on every
//!   reload after the first.
//! - `POST` — only the keys in the body (CACHE / COMPLEX_KEY_CACHE layouts: ClickHouse posts
//!   the keys it misses in the source's format).
//!
//! Parameters: `format` (JSONEachRow default, or TabSeparated), `columns` (comma-separated,
//! required for TabSeparated), `key` (key columns, default the primary key).
use super::error::ApiError;
use super::rows::upstream_error;
use super::state::AppState;
use crate::exec::ExecError;
use crate::exec::dict::{self, DictFormat, DictRequest, DictSource};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;

const PARAMS: &[&str] = &["format", "columns", "key", "modified_since", "update_tz"];

fn list(p: &HashMap<String, String>, name: &str) -> Vec<String> {
    p.get(name)
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn api_error(e: ExecError) -> ApiError {
    match e {
        ExecError::BadInput(m) => ApiError::bad_request(m),
        ExecError::Bitrix(b) => upstream_error(&crate::pipeline::PipelineError::Bitrix(b)),
        ExecError::Pipeline(p) => upstream_error(&p),
        ExecError::Unavailable(m) => ApiError::new(axum::http::StatusCode::CONFLICT, m),
        other => ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("b24ch: {other}"),
        ),
    }
}

pub(super) async fn dictionary(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(p): Query<HashMap<String, String>>,
    method: Method,
    body: Bytes,
) -> Result<Response, ApiError> {
    if let Some(k) = p.keys().find(|k| !PARAMS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "b24ch: unknown parameter `{k}`; this endpoint accepts: {}",
            PARAMS.join(", ")
        )));
    }
    let format = DictFormat::parse(p.get("format").map(String::as_str).unwrap_or("JSONEachRow"))
        .map_err(api_error)?;
    let tz = match p.get("update_tz") {
        Some(t) => Some(
            crate::exec::parse_offset(t)
                .map_err(|m| ApiError::bad_request(format!("b24ch: update_tz: {m}")))?,
        ),
        None => None,
    };
    let since = match p.get("modified_since") {
        Some(t) => crate::exec::parse_since(t, tz)
            .map_err(|m| ApiError::bad_request(format!("b24ch: {m}")))?,
        None => None,
    };
    let catalog = state.catalog();
    let source = DictSource::resolve(&catalog, &state.config, &name).map_err(api_error)?;
    let key = list(&p, "key");
    let keys = if method == Method::POST {
        let text = std::str::from_utf8(&body)
            .map_err(|_| ApiError::bad_request("b24ch: the posted keys are not UTF-8"))?;
        let key_names = if key.is_empty() {
            source.default_key()
        } else {
            key.clone()
        };
        Some(dict::parse_keys(text, format, &key_names).map_err(api_error)?)
    } else {
        None
    };
    let posted = keys.as_ref().map(Vec::len);
    let req = DictRequest {
        format,
        columns: list(&p, "columns"),
        key,
        keys: keys.filter(|k| !k.is_empty()),
        since,
    };
    let mut out = Vec::new();
    if posted != Some(0) {
        let stream = dict::rows(state.client.clone(), source, req);
        futures::pin_mut!(stream);
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.map_err(api_error)?);
        }
    }
    tracing::info!(dictionary = %name, keys = ?posted, modified_since = ?since, bytes = out.len(), "dictionary served");
    let mut resp = out.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    Ok(resp)
}
