//! `rows` and `ids`: the data endpoints ClickHouse pulls.
//!
//! The first page is fetched before the response starts, so an upstream failure at the
//! start becomes a proper 502/503. A failure later **aborts** the body (the connection is
//! closed without the final chunk), which fails ClickHouse's INSERT: a broken load never
//! looks complete (`docs/architecture.md`, invariants 2 and 4).
use super::error::ApiError;
use super::state::{AppState, BUSY_RETRY_AFTER_SECS, Busy, LoadSlot, MAX_CONCURRENT_LOADS};
use crate::bitrix::{BitrixError, ErrorClass, Meter};
use crate::encode::{Format, RowEncoder};
use crate::pipeline::stats::{LoadFigures, LoadKind};
use crate::pipeline::{self, EntityJob, PipelineError, TypedPage};
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use chrono::{DateTime, NaiveDateTime, Utc};
use futures::{Stream, StreamExt};
use std::sync::Arc;

/// Maps a failure before the first byte to the status of the HTTP contract.
pub(super) fn upstream_error(e: &PipelineError) -> ApiError {
    match e {
        PipelineError::Bitrix(b) => bitrix_error(b),
        PipelineError::UnknownMethod { .. } => ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("b24ch: {e}"),
        ),
    }
}

fn bitrix_error(e: &BitrixError) -> ApiError {
    let code = e.code().filter(|c| !c.is_empty()).unwrap_or("no code");
    match e.class() {
        ErrorClass::RateLimited | ErrorClass::OperatingLimit => ApiError::unavailable(
            format!("b24ch: Bitrix24 limit reached ({code}); retry later: {e}"),
            60,
        ),
        _ => ApiError::bad_gateway(format!("b24ch: upstream Bitrix24 error {code}: {e}")),
    }
}

/// `modified_since`: unix seconds, `YYYY-MM-DD hh:mm:ss` (UTC) or RFC 3339; `0`/empty = all.
pub(super) fn parse_since(text: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(t) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let parsed = if let Ok(secs) = t.parse::<i64>() {
        if secs == 0 {
            return Ok(None);
        }
        DateTime::from_timestamp(secs, 0)
    } else if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        Some(d.with_timezone(&Utc))
    } else {
        NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S")
            .ok()
            .map(|n| n.and_utc())
    };
    let bad = || {
        ApiError::bad_request(format!(
            "b24ch: modified_since={t:?} is not a date between 2000 and 2100; give unix seconds, `YYYY-MM-DD hh:mm:ss` (UTC) or RFC 3339"
        ))
    };
    let d = parsed.ok_or_else(bad)?;
    let year = d.format("%Y").to_string().parse::<i32>().unwrap_or(0);
    if !(2000..=2100).contains(&year) {
        return Err(bad());
    }
    Ok(Some(d))
}

/// One load being served: what it costs (metered), how long it runs, and the single log
/// line and statistics record it ends with, whatever the outcome.
struct LoadTrack {
    state: Arc<AppState>,
    entity: String,
    kind: LoadKind,
    meter: Arc<Meter>,
    started: std::time::Instant,
}

impl LoadTrack {
    fn start(state: Arc<AppState>, entity: &str, kind: LoadKind) -> Self {
        state.stats.load_started(entity);
        Self {
            state,
            entity: entity.to_string(),
            kind,
            meter: Meter::new(),
            started: std::time::Instant::now(),
        }
    }

    fn figures(&self, rows: u64, invalid: u64, cursor: Option<i64>) -> LoadFigures {
        LoadFigures {
            rows,
            invalid,
            requests: self.meter.requests(),
            operating_secs: self.meter.operating_secs(),
            duration_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            cursor,
        }
    }

    fn finished(&self, rows: u64, invalid: u64, cursor: Option<i64>) {
        let f = self.figures(rows, invalid, cursor);
        tracing::info!(
            entity = %self.entity,
            kind = %self.kind,
            rows = f.rows,
            invalid = f.invalid,
            requests = f.requests,
            operating_secs = format_args!("{:.3}", f.operating_secs),
            duration_ms = f.duration_ms,
            cursor = %cursor_text(f.cursor),
            "load served"
        );
        self.state.stats.load_finished(&self.entity, self.kind, f);
    }

    fn failed(&self, rows: u64, message: &str, remedy: &str) {
        let f = self.figures(rows, 0, None);
        tracing::error!(
            entity = %self.entity,
            kind = %self.kind,
            rows = f.rows,
            requests = f.requests,
            operating_secs = format_args!("{:.3}", f.operating_secs),
            duration_ms = f.duration_ms,
            cursor = "unchanged",
            error = %message,
            "load failed; the response is cut so ClickHouse's INSERT fails and the cursor stays"
        );
        self.state
            .stats
            .load_failed(&self.entity, self.kind, f, message, remedy);
    }
}

/// A cursor for the log: the portal-clock time, or `-` for a load without one.
fn cursor_text(cursor: Option<i64>) -> String {
    cursor
        .and_then(|c| DateTime::from_timestamp(c, 0))
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "-".into())
}

const ENCODER_REMEDY: &str = "b24ch could not encode the rows: please report it with this message.";

pub(super) async fn rows(
    state: Arc<AppState>,
    job: EntityJob,
    format: Format,
    since: Option<DateTime<Utc>>,
) -> Result<Response, ApiError> {
    let job = Arc::new(job);
    let slot = state.begin_load("rows", &job.entity.name).map_err(busy)?;
    let track = LoadTrack::start(state.clone(), &job.entity.name, "rows");
    let mut pages = Box::pin(pipeline::typed_rows(
        state.client.clone(),
        job.clone(),
        since,
        state.lookback,
    ));
    let first = match track.meter.measure(pages.next()).await {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            track.failed(0, &e.to_string(), e.remedy());
            return Err(upstream_error(&e));
        }
        None => TypedPage::default(),
    };
    let encoder = match RowEncoder::new(format, &job.columns) {
        Ok(enc) => enc,
        Err(e) => {
            track.failed(0, &e.to_string(), ENCODER_REMEDY);
            return Err(ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                e.to_string(),
            ));
        }
    };
    let body = encode_stream(track, encoder, first, pages);
    Ok(stream_response(format.content_type(), hold(slot, body)))
}

fn encode_stream(
    track: LoadTrack,
    mut encoder: RowEncoder,
    first: TypedPage,
    mut pages: impl Stream<Item = Result<TypedPage, PipelineError>> + Unpin + Send + 'static,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    async_stream::stream! {
        let mut rows = 0u64;
        let mut invalid = 0u64;
        let mut watermark = None;
        let mut next: Option<Result<TypedPage, PipelineError>> = Some(Ok(first));
        while let Some(item) = next.take() {
            match item {
                Ok(page) => {
                    rows += page.rows.len() as u64;
                    invalid += page.issues.len() as u64;
                    // Portal values are personal data: the log gets a count per field.
                    let mut per_field: std::collections::BTreeMap<(&str, &str), u64> = std::collections::BTreeMap::new();
                    for issue in &page.issues {
                        *per_field.entry((issue.field.as_str(), issue.expected.as_str())).or_default() += 1;
                    }
                    for ((field, expected), values) in per_field {
                        tracing::warn!(entity = %track.entity, field, expected, values, "values do not fit their column; kept in _invalid");
                    }
                    watermark = page.watermark.or(watermark);
                    match encoder.write_rows(&page.rows) {
                        Ok(bytes) if !bytes.is_empty() => yield Ok(bytes),
                        Ok(_) => {}
                        Err(e) => {
                            track.failed(rows, &e.to_string(), ENCODER_REMEDY);
                            yield Err(std::io::Error::other(e.to_string()));
                            return;
                        }
                    }
                }
                Err(e) => {
                    track.failed(rows, &e.to_string(), e.remedy());
                    yield Err(std::io::Error::other(e.to_string()));
                    return;
                }
            }
            next = track.meter.measure(pages.next()).await;
        }
        match encoder.finish() {
            Ok(tail) => {
                // The watermark row is bookkeeping, not a portal row.
                track.finished(rows.saturating_sub(u64::from(watermark.is_some())), invalid, watermark);
                yield Ok(tail);
            }
            Err(e) => {
                track.failed(rows, &e.to_string(), ENCODER_REMEDY);
                yield Err(std::io::Error::other(e.to_string()));
            }
        }
    }
}

/// Every current primary key, one per line (TabSeparated) or as `{"ID":…}` lines.
pub(super) async fn ids(
    state: Arc<AppState>,
    job: EntityJob,
    json: bool,
) -> Result<Response, ApiError> {
    let job = Arc::new(job);
    let key = crate::schema::primary_key_column(&job.columns)
        .map(|c| c.name.clone())
        .unwrap_or_else(|| "ID".into());
    let slot = state.begin_load("ids", &job.entity.name).map_err(busy)?;
    let track = LoadTrack::start(state.clone(), &job.entity.name, "ids");
    let mut pages = Box::pin(pipeline::ids(state.client.clone(), job));
    let first = match track.meter.measure(pages.next()).await {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            track.failed(0, &e.to_string(), e.remedy());
            return Err(upstream_error(&e));
        }
        None => Vec::new(),
    };
    let body = async_stream::stream! {
        let mut next: Option<Result<Vec<serde_json::Value>, PipelineError>> = Some(Ok(first));
        let mut count = 0u64;
        while let Some(item) = next.take() {
            match item {
                Ok(ids) => {
                    count += ids.len() as u64;
                    yield Ok::<Bytes, std::io::Error>(Bytes::from(id_lines(&ids, &key, json)));
                }
                Err(e) => {
                    // The cut response means no tombstone is written from a partial list.
                    track.failed(count, &e.to_string(), e.remedy());
                    yield Err(std::io::Error::other(e.to_string()));
                    return;
                }
            }
            next = track.meter.measure(pages.next()).await;
        }
        track.finished(count, 0, None);
    };
    let content_type = if json {
        "application/x-ndjson"
    } else {
        "text/tab-separated-values"
    };
    Ok(stream_response(content_type, hold(slot, body)))
}

/// 503 + `Retry-After` for a load that cannot start now.
fn busy(b: Busy) -> ApiError {
    let message = match b {
        Busy::Entity(e) => format!(
            "b24ch: a load of {e} is already running; one at a time per entity, retry after it"
        ),
        Busy::Full => format!(
            "b24ch: {MAX_CONCURRENT_LOADS} loads are running, the most serve runs at once; retry later"
        ),
    };
    ApiError::unavailable(message, BUSY_RETRY_AFTER_SECS)
}

/// The body, keeping `slot` until it ends (or the client goes away).
fn hold(
    slot: LoadSlot,
    body: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    body.map(move |chunk| {
        let _ = &slot;
        chunk
    })
}

fn id_lines(ids: &[serde_json::Value], key: &str, json: bool) -> String {
    let mut out = String::with_capacity(ids.len() * 8);
    for id in ids {
        let text = match id {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if json {
            out.push_str(&serde_json::json!({ key: text }).to_string());
        } else {
            // TabSeparated escaping: IDs are plain, but stay correct for odd keys.
            out.push_str(
                &text
                    .replace('\\', "\\\\")
                    .replace('\t', "\\t")
                    .replace('\n', "\\n"),
            );
        }
        out.push('\n');
    }
    out
}

fn stream_response(
    content_type: &'static str,
    body: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
) -> Response {
    let mut resp = Response::new(Body::from_stream(body));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_unix_iso_and_plain() {
        assert_eq!(parse_since(None).unwrap(), None);
        assert_eq!(parse_since(Some("0")).unwrap(), None);
        let a = parse_since(Some("1714885505")).unwrap().unwrap();
        let b = parse_since(Some("2024-05-05 05:05:05")).unwrap().unwrap();
        let c = parse_since(Some("2024-05-05T08:05:05+03:00"))
            .unwrap()
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
    }

    #[test]
    fn absurd_dates_are_400() {
        for bad in ["yesterday", "99999999999999", "1800-01-01 00:00:00", "-5"] {
            let e = parse_since(Some(bad)).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{bad}");
            assert!(e.message.contains("modified_since"), "{}", e.message);
        }
    }
}
