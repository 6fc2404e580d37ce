//! `/v1/dictionaries/{name}`: reference data for ClickHouse's HTTP dictionary source, the
//! same rows `b24ch exec dict` prints (both from [`crate::dictionaries`]).
//!
//! The answer streams page by page (memory bounded by a page, not by the dictionary). The
//! first chunk is produced before the response starts, so a failure at the start gets its
//! status; a later one aborts the body, so ClickHouse never loads half a dictionary. A source
//! disabled in the config is `404`.
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
use crate::dictionaries::{self as dict, DictError, DictFormat, DictRequest, DictSource};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::Response;
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

fn api_error(e: DictError) -> ApiError {
    match e {
        DictError::BadInput(m) => ApiError::bad_request(m),
        DictError::Disabled(m) => ApiError::new(axum::http::StatusCode::NOT_FOUND, m),
        DictError::Bitrix(b) => upstream_error(&crate::pipeline::PipelineError::Bitrix(b)),
        DictError::Pipeline(p) => upstream_error(&p),
        DictError::Unavailable(m) => ApiError::new(axum::http::StatusCode::CONFLICT, m),
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
            dict::parse_offset(t)
                .map_err(|m| ApiError::bad_request(format!("b24ch: update_tz: {m}")))?,
        ),
        None => None,
    };
    let since = match p.get("modified_since") {
        Some(t) => {
            dict::parse_since(t, tz).map_err(|m| ApiError::bad_request(format!("b24ch: {m}")))?
        }
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
    if posted == Some(0) {
        tracing::info!(dictionary = %name, keys = 0, "dictionary served");
        return Ok(with_type(Response::new(Body::empty()), format));
    }
    let mut stream = Box::pin(dict::rows(state.client.clone(), source, req));
    let first = match stream.next().await {
        Some(chunk) => chunk.map_err(api_error)?,
        None => Bytes::new(),
    };
    let body = async_stream::stream! {
        let mut bytes = first.len();
        yield Ok::<Bytes, DictError>(first);
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) => {
                    bytes += c.len();
                    yield Ok(c);
                }
                Err(e) => {
                    // The body is aborted: ClickHouse's load fails instead of keeping half.
                    tracing::warn!(dictionary = %name, error = %e, "dictionary failed while streaming");
                    yield Err(e);
                    return;
                }
            }
        }
        tracing::info!(dictionary = %name, keys = ?posted, modified_since = ?since, bytes, "dictionary served");
    };
    Ok(with_type(Response::new(Body::from_stream(body)), format))
}

fn with_type(mut resp: Response, format: DictFormat) -> Response {
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    resp
}
