//! What `serve` shows about itself: meta rows for `url()`, Prometheus metrics, the status page.
use super::state::AppState;
use crate::schema::now_ms;
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Serialize)]
pub struct EntityRow {
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

pub fn entity_rows(state: &AppState) -> Vec<EntityRow> {
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
                last_error: s.last_error,
            }
        })
        .collect()
}

#[derive(Serialize)]
pub struct GovernorRow {
    pub method: String,
    pub operating_used: f64,
    pub operating_left: Option<f64>,
    pub operating_limit: Option<f64>,
    pub reset_at: Option<f64>,
    pub blocked_until: Option<f64>,
    pub calls: u64,
    pub waits: u64,
}

pub fn governor_rows(state: &AppState) -> Vec<GovernorRow> {
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

fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The status page for people: entities with freshness, recent loads as a chart, budget, errors.
pub fn status_page(state: &AppState) -> String {
    let now = now_ms();
    let mut rows = String::new();
    for e in entity_rows(state) {
        let fresh = e
            .last_success_ms
            .map(|ms| format!("{} s ago", now.saturating_sub(ms) / 1000))
            .unwrap_or_else(|| "never".into());
        let _ = write!(
            rows,
            "<tr data-entity=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            html(&e.entity),
            html(&e.entity),
            html(&e.schedule),
            fresh,
            e.rows_total,
            e.loads_failed,
            html(e.last_error.as_deref().unwrap_or(""))
        );
    }
    for u in &state.catalog().unavailable {
        let _ = write!(
            rows,
            "<tr data-entity=\"{}\" data-unavailable=\"{}\"><td>{}</td><td>unavailable</td><td>never</td><td>0</td><td>0</td><td>{}</td></tr>",
            html(&u.entity),
            html(&u.code),
            html(&u.entity),
            html(&u.explain())
        );
    }
    let loads = serde_json::to_string(&state.stats.loads()).unwrap_or_else(|_| "[]".into());
    let budget = serde_json::to_string(&governor_rows(state)).unwrap_or_else(|_| "[]".into());
    let mut errors = String::new();
    for e in state.stats.errors().iter().rev().take(20) {
        let _ = write!(
            errors,
            "<li>{} — {}</li>",
            html(&e.entity),
            html(&e.message)
        );
    }
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>b24ch status</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}</style></head>
<body><h1>b24ch</h1>
<h2>Entities</h2><table id="entities"><tr><th>entity</th><th>schedule</th><th>last load</th><th>rows</th><th>failed loads</th><th>last error</th></tr>{rows}</table>
<h2>Rows loaded</h2><canvas id="rows-chart" width="800" height="200"></canvas>
<h2>Operating budget per method</h2><canvas id="budget-chart" width="800" height="200"></canvas>
<h2>Recent errors</h2><ul id="errors">{errors}</ul>
<script>
const loads = {loads};
const budget = {budget};
function bars(id, items, label, value, max) {{
  const c = document.getElementById(id), g = c.getContext('2d');
  g.clearRect(0, 0, c.width, c.height);
  const w = c.width / Math.max(items.length, 1);
  const top = max || Math.max(1, ...items.map(value));
  items.forEach((it, i) => {{
    const h = (c.height - 20) * value(it) / top;
    g.fillStyle = '#3b7dd8'; g.fillRect(i * w + 2, c.height - 20 - h, w - 4, h);
    g.fillStyle = '#000'; g.font = '10px sans-serif'; g.fillText(label(it), i * w + 2, c.height - 6);
  }});
  c.dataset.bars = items.length;
}}
bars('rows-chart', loads, l => l.entity, l => l.rows);
const spent = budget.filter(b => b.operating_used > 0);
bars('budget-chart', spent.length ? spent : budget, b => b.method, b => b.operating_used, Math.max(1, ...budget.map(b => b.operating_limit || 0)));
</script></body></html>"#
    )
}
