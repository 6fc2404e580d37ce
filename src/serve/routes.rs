//! The HTTP contract v1 of `serve` (docs/http-contract.md): catalog, schema, rows, ids, ddl, meta.
use super::error::ApiError;
use super::rows;
use super::state::AppState;
use crate::catalog::Entity;
use crate::clickhouse::{apply, ddl, plan};
use crate::encode::Format;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

type Params = Query<HashMap<String, String>>;

/// Rejects unknown query parameters: a typo must not silently mean "everything".
fn check_params(params: &HashMap<String, String>, allowed: &[&str]) -> Result<(), ApiError> {
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::bad_request(format!(
            "b24ch: unknown parameter `{k}`; this endpoint accepts: {}",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

/// The entity named in the path; a 409 in the portal's words for one it refuses; or a 400
/// that lists what exists.
fn entity(state: &AppState, name: &str) -> Result<Entity, ApiError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if let Some(e) = valid.then(|| state.entity(name)).flatten() {
        return Ok(e);
    }
    if let Some(u) = valid
        .then(|| state.catalog().unavailable(name).cloned())
        .flatten()
    {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            format!("b24ch: {}", u.explain()),
        ));
    }
    let known: Vec<String> = state
        .catalog()
        .entities
        .iter()
        .map(|e| e.name.clone())
        .collect();
    Err(ApiError::bad_request(format!(
        "b24ch: unknown entity {:?}; known entities: {}",
        name.chars().take(64).collect::<String>(),
        known.join(", ")
    )))
}

/// The entity named in the path; an unknown name first makes `serve` discover the catalog
/// again (a smart process applied by another process or instance).
async fn fresh_entity(state: &AppState, name: &str) -> Result<Entity, ApiError> {
    if let Ok(e) = entity(state, name) {
        return Ok(e);
    }
    rediscover(state).await?;
    entity(state, name)
}

async fn rediscover(state: &AppState) -> Result<(), ApiError> {
    state
        .rediscover()
        .await
        .map_err(|e| rows::upstream_error(&e.into()))
}

/// The entity, answered only with the column set the load view expects (`schema=`, see
/// `ddl::schema_fingerprint`): on a mismatch the catalog is discovered again, and if it still
/// differs the pull fails with 409 instead of ClickHouse filling the missing columns with
/// defaults.
async fn entity_with_schema(
    state: &AppState,
    name: &str,
    wanted: Option<&str>,
) -> Result<Entity, ApiError> {
    let e = fresh_entity(state, name).await?;
    let Some(wanted) = wanted else {
        return Ok(e);
    };
    if state.fingerprint(&e) == wanted {
        return Ok(e);
    }
    rediscover(state).await?;
    let e = entity(state, name)?;
    let have = state.fingerprint(&e);
    if have == wanted {
        return Ok(e);
    }
    Err(ApiError::new(
        axum::http::StatusCode::CONFLICT,
        format!(
            "b24ch: the load view of {name} expects the column set {:?} but the portal now gives {have}; run `b24ch apply` (or let serve's autopilot run) so the table and its views match the portal",
            wanted.chars().take(32).collect::<String>()
        ),
    ))
}

fn format_param(params: &HashMap<String, String>, default: Format) -> Result<Format, ApiError> {
    match params.get("format") {
        None => Ok(default),
        Some(f) => Format::parse(f).ok_or_else(|| {
            ApiError::bad_request(format!(
                "b24ch: format={f:?} is not supported; use Parquet or JSONEachRow"
            ))
        }),
    }
}

#[derive(Serialize)]
struct EntityInfo {
    entity: String,
    table: String,
    kind: crate::catalog::EntityKind,
    title: String,
    primary_key: String,
    cursor_field: Option<String>,
    schedule: String,
    enabled: bool,
}

fn entity_infos(state: &AppState) -> Vec<EntityInfo> {
    state
        .catalog()
        .entities
        .iter()
        .map(|e| {
            let settings = state.config.entity(&e.name);
            let columns = plan::selected_columns(e, &settings);
            let p = plan::table_plan(e, &columns, &settings, Format::Parquet);
            EntityInfo {
                entity: e.name.clone(),
                table: format!("{}.{}", state.config.clickhouse.database, e.name),
                kind: e.kind,
                title: e.title.clone(),
                primary_key: p.primary_key,
                cursor_field: p.cursor,
                schedule: settings.schedule.sql(),
                enabled: settings.enabled,
            }
        })
        .collect()
}

/// JSON array by default; `format=JSONEachRow` for ClickHouse's `url()`.
fn listing<T: Serialize>(
    items: &[T],
    params: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let each_row = match params.get("format").map(String::as_str) {
        None | Some("JSON") | Some("json") => false,
        Some(f) if f.eq_ignore_ascii_case("JSONEachRow") => true,
        Some(f) => {
            return Err(ApiError::bad_request(format!(
                "b24ch: format={f:?} is not supported here; use JSON or JSONEachRow"
            )));
        }
    };
    if !each_row {
        return Ok(Json(items).into_response());
    }
    let mut body = String::new();
    for item in items {
        body.push_str(&serde_json::to_string(item).unwrap_or_default());
        body.push('\n');
    }
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(resp)
}

pub(super) async fn entities(
    State(state): State<Arc<AppState>>,
    Query(p): Params,
) -> Result<Response, ApiError> {
    check_params(&p, &["format"])?;
    listing(&entity_infos(&state), &p)
}

#[derive(Serialize)]
struct ColumnInfo {
    name: String,
    bitrix_type: String,
    clickhouse_type: String,
    nullable: bool,
    label: String,
}

pub(super) async fn schema(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(p): Params,
) -> Result<Response, ApiError> {
    check_params(&p, &["format"])?;
    let e = entity(&state, &name)?;
    let cols: Vec<ColumnInfo> = plan::selected_columns(&e, &state.config.entity(&e.name))
        .into_iter()
        .map(|c| ColumnInfo {
            nullable: c.ch_type.is_nullable(),
            clickhouse_type: c.ch_type.sql(),
            name: c.name,
            bitrix_type: c.bitrix_type,
            label: c.label,
        })
        .collect();
    listing(&cols, &p)
}

pub(super) async fn rows(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    Query(p): Params,
) -> Result<Response, ApiError> {
    check_params(&p, &["format", "modified_since", "schema"])?;
    let e = entity_with_schema(&state, &name, p.get("schema").map(String::as_str)).await?;
    let format = format_param(&p, Format::Parquet)?;
    // Load views send the cursor in a header (their URL is fixed, see `ddl::proxy`).
    let header = headers
        .get(ddl::MODIFIED_SINCE_HEADER)
        .map(|v| v.to_str().unwrap_or("not text"));
    let since = rows::parse_since(p.get("modified_since").map(String::as_str).or(header))?;
    let job = state.job(e).map_err(|e| rows::upstream_error(&e))?;
    rows::rows(state, job, format, since).await
}

pub(super) async fn ids(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(p): Params,
) -> Result<Response, ApiError> {
    check_params(&p, &["format"])?;
    let e = fresh_entity(&state, &name).await?;
    let json = match p.get("format").map(String::as_str) {
        None | Some("TabSeparated") | Some("TSV") => false,
        Some(f) if f.eq_ignore_ascii_case("JSONEachRow") => true,
        Some(f) => {
            return Err(ApiError::bad_request(format!(
                "b24ch: format={f:?} is not supported for ids; use TabSeparated or JSONEachRow"
            )));
        }
    };
    let job = state.job(e).map_err(|e| rows::upstream_error(&e))?;
    rows::ids(state, job, json).await
}

pub(super) async fn entity_ddl(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(p): Params,
) -> Result<Response, ApiError> {
    check_params(&p, &["format"])?;
    let e = entity(&state, &name)?;
    let format = format_param(&p, Format::Parquet)?;
    let settings = state.config.entity(&e.name);
    let columns = plan::selected_columns(&e, &settings);
    let tp = plan::table_plan(&e, &columns, &settings, format);
    let t = apply::target(&state.config);
    let mut stmts = ddl::endpoints(&t, &apply::endpoint(&state.config), &tp);
    stmts.extend(apply::entity_statements(&t, &tp, settings.history_ttl));
    let sql: Vec<String> = stmts
        .into_iter()
        .map(|s| format!("{};\n", s.display))
        .collect();
    Ok(sql.join("\n").into_response())
}

#[derive(Deserialize)]
pub(super) struct MetaPath {
    what: String,
}

pub(super) async fn meta(
    State(state): State<Arc<AppState>>,
    Path(MetaPath { what }): Path<MetaPath>,
    Query(p): Params,
) -> Result<Response, ApiError> {
    check_params(&p, &["format"])?;
    let mut p = p;
    // Meta tables are for `url()`: JSONEachRow unless asked otherwise.
    p.entry("format".into())
        .or_insert_with(|| "JSONEachRow".into());
    match what.as_str() {
        "entities" => listing(&super::meta::entity_rows(&state), &p),
        "governor" => listing(&super::meta::governor_rows(&state), &p),
        "errors" => listing(&state.stats.errors(), &p),
        "loads" => listing(&state.stats.loads(), &p),
        "schema_changes" => listing(&state.stats.schema_changes(), &p),
        "unavailable" => listing(&state.catalog().unavailable, &p),
        other => Err(ApiError::bad_request(format!(
            "b24ch: unknown meta table {:?}; use entities, unavailable, governor, errors, loads or schema_changes",
            other.chars().take(64).collect::<String>()
        ))),
    }
}

pub(super) async fn healthz() -> &'static str {
    "ok\n"
}
