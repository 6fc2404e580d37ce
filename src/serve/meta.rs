//! What `serve` tells ClickHouse about itself: the meta rows of `/v1/meta/…` for `url()`
//! (the page for people is `page.rs`).
use super::state::AppState;
use serde::Serialize;

#[derive(Serialize)]
pub(super) struct EntityRow {
    pub entity: String,
    pub kind: crate::catalog::EntityKind,
    pub schedule: String,
    pub loads_ok: u64,
    pub loads_failed: u64,
    pub rows_total: u64,
    pub last_rows: u64,
    /// Unix ms of the last successful load.
    pub last_success_ms: Option<u64>,
    /// Seconds since the last successful load's cursor (how far ClickHouse may lag the portal).
    pub lag_seconds: Option<i64>,
    pub last_duration_ms: Option<u64>,
    pub invalid_values: u64,
    pub last_error: Option<String>,
}

pub(super) fn entity_rows(state: &AppState) -> Vec<EntityRow> {
    let stats = state.stats.entities();
    let now_s = chrono::Utc::now().timestamp();
    state
        .catalog()
        .entities
        .iter()
        .map(|e| {
            let s = stats
                .iter()
                .find(|s| s.entity == e.name)
                .cloned()
                .unwrap_or_default();
            let lag = s
                .last_watermark
                .map(|w| now_s - w)
                .or_else(|| s.last_success_ms.map(|ms| now_s - (ms / 1000) as i64));
            EntityRow {
                entity: e.name.clone(),
                kind: e.kind,
                schedule: state.config.entity(&e.name).schedule.sql(),
                loads_ok: s.loads_ok,
                loads_failed: s.loads_failed,
                rows_total: s.rows_total,
                last_rows: s.last_rows,
                last_success_ms: s.last_success_ms,
                lag_seconds: lag,
                last_duration_ms: s.last_duration_ms,
                invalid_values: s.invalid_values,
                last_error: s.last_error.map(|e| e.message),
            }
        })
        .collect()
}

#[derive(Serialize)]
pub(super) struct GovernorRow {
    pub method: String,
    pub operating_used: f64,
    pub operating_left: Option<f64>,
    pub operating_limit: Option<f64>,
    pub reset_at: Option<f64>,
    pub blocked_until: Option<f64>,
    pub calls: u64,
    pub waits: u64,
}

pub(super) fn governor_rows(state: &AppState) -> Vec<GovernorRow> {
    let snap = state.client.governor().snapshot();
    snap.methods
        .into_iter()
        .map(|m| GovernorRow {
            method: m.key,
            operating_used: m.used,
            operating_left: m.left,
            operating_limit: snap.operating_limit_secs,
            reset_at: m.reset_at,
            blocked_until: m.blocked_until,
            calls: m.calls,
            waits: m.waits,
        })
        .collect()
}
