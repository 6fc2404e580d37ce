//! The status page and its login form as HTML. Self-contained (inline CSS, no script, no
//! external resource); `maud` escapes every value, so portal text (titles, error messages)
//! stays text. Bars are HTML boxes in rows of their own with the value printed beside them, so
//! labels cannot run into each other whatever their length.
use super::view::{
    EntityStatus, Health, KeyState, KeyStatus, Problem, RequestStatus, Severity, StatusView,
    duration, group, plural,
};
use crate::pipeline::stats::LoadRecord;
use maud::{DOCTYPE, Markup, PreEscaped, html};

const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;color:#1d2330;background:#f4f6f9}
header{display:flex;align-items:center;gap:16px;padding:10px 24px;background:#1d2b45;color:#fff}
header h1{font-size:20px;margin:0}
header .portal{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px;opacity:.85}
header .updated{margin-left:auto;font-size:13px;opacity:.85}
header button{font:inherit;padding:4px 12px;border:1px solid #8fa3c7;border-radius:4px;background:transparent;color:#fff;cursor:pointer}
main{padding:12px 24px 32px}
h2{font-size:16px;margin:18px 0 8px}
.tiles{display:flex;gap:12px;flex-wrap:wrap}
.tile{background:#fff;border:1px solid #dde3ec;border-radius:6px;padding:8px 14px;min-width:170px}
.tile .big{font-size:22px;font-weight:600}
.tile .sub{font-size:12px;color:#5b6577}
.tile.bad{border-color:#d33c3c;background:#fff3f3}
.tile.warn{border-color:#d99a00;background:#fff9e8}
ul.problems{list-style:none;margin:0;padding:0;display:grid;gap:8px}
.problem{background:#fff;border:1px solid #dde3ec;border-left:5px solid #d99a00;border-radius:4px;padding:8px 12px}
.problem.error{border-left-color:#d33c3c}
.problem .head{display:flex;gap:10px;align-items:baseline;flex-wrap:wrap}
.problem .when{color:#5b6577;font-size:12px}
.problem .detail{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px;margin:4px 0;overflow-wrap:anywhere}
.problem .todo{font-size:13px}
.none{color:#2f7d32}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde3ec}
th,td{padding:5px 8px;border-bottom:1px solid #e8ecf2;text-align:left;vertical-align:top}
th{font-size:12px;font-weight:600;color:#5b6577;background:#f8f9fb;white-space:nowrap}
td.num,th.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.name{font-weight:600;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px}
.title{font-size:12px;color:#5b6577;overflow-wrap:anywhere}
.small{font-size:12px;color:#5b6577}
.pill{display:inline-block;padding:0 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}
.pill.fresh{background:#2f7d32}.pill.failing{background:#d33c3c}.pill.late{background:#c77700}
.pill.waiting{background:#7a8699}.pill.off{background:#aab3c2}
.pill.ok{background:#2f7d32}.pill.full{background:#c77700}.pill.paused{background:#d33c3c}
tr.failing td{background:#fff6f6}tr.late td{background:#fffaf0}
.err{color:#b02a2a;font-size:12.5px;overflow-wrap:anywhere;min-width:14em;max-width:24em}
.nowrap{white-space:nowrap}
.hbar{display:flex;align-items:center;gap:8px;white-space:nowrap}
.hbar .track{position:relative;height:12px;background:#e8ecf2;border-radius:2px;flex:none}
.hbar .fill{position:absolute;left:0;top:0;bottom:0;background:#3b7dd8;border-radius:2px}
.hbar .limit{position:absolute;top:-3px;bottom:-3px;border-left:2px dashed #1d2330}
.hbar .value{font-variant-numeric:tabular-nums}
.fill.ok{background:#3b9a57}.fill.full{background:#d99a00}.fill.paused{background:#d33c3c}
.marks{display:flex;gap:2px;margin-top:3px}
.mark{width:9px;height:9px;border-radius:2px;background:#3b9a57}
.mark.failed{background:#d33c3c}.mark.ids{opacity:.45}
.legend{font-size:12px;color:#5b6577;margin:0 0 6px}
footer{padding:0 24px 24px;font-size:12px;color:#5b6577}
code{font-family:ui-monospace,Menlo,Consolas,monospace}
.login{max-width:440px;margin:80px auto;background:#fff;border:1px solid #dde3ec;border-radius:8px;padding:24px 28px}
.login h1{margin:0 0 12px;font-size:22px}
.login label{display:block;font-weight:600;margin-bottom:4px}
.login input{width:100%;font:inherit;padding:8px;border:1px solid #b8c2d3;border-radius:4px}
.login button{margin-top:12px;font:inherit;padding:8px 18px;border:0;border-radius:4px;background:#1d5fd1;color:#fff;cursor:pointer}
.msg{padding:8px 10px;border-radius:4px;margin-bottom:12px}
.msg.error{background:#fff3f3;border:1px solid #d33c3c}
.msg.info{background:#eef5ff;border:1px solid #8fb3ea}
"#;

/// Width in pixels of the longest bar.
const ROWS_BAR_PX: f64 = 120.0;
const KEY_BAR_PX: f64 = 360.0;

fn page(title: &str, refresh: Option<u64>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(secs) = refresh {
                    meta http-equiv="refresh" content=(secs);
                }
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body { (body) }
        }
    }
}

/// A message shown above the login form.
pub(super) enum Notice<'a> {
    None,
    Info(&'a str),
    Error(&'a str),
}

pub(super) fn login_page(notice: Notice<'_>) -> String {
    let body = html! {
        div.login {
            h1 { "b24ch status" }
            @match notice {
                Notice::None => {},
                Notice::Info(m) => div.msg.info role="status" { (m) },
                Notice::Error(m) => div.msg.error role="alert" { (m) },
            }
            form method="post" action="/status/login" {
                label for="token" { "Proxy token" }
                input #token type="password" name="token" autocomplete="current-password" required autofocus;
                button type="submit" { "Log in" }
            }
            p.small {
                "The token is " code { "proxy.token" } " in b24ch's config ("
                code { "b24ch demo" } " prints the one it made). Logging in opens this page only: "
                code { "/v1/…" } " and " code { "/metrics" } " keep asking for the token as a bearer token."
            }
        }
    };
    page("b24ch status: log in", None, body).into_string()
}

pub(super) fn status_page(v: &StatusView) -> String {
    let title = match v.problems.len() {
        0 => "b24ch status: all fresh".to_string(),
        n => format!("b24ch status: {}", plural(n as u64, "problem")),
    };
    let body = html! {
        header {
            h1 { "b24ch" }
            span.portal { (v.portal) }
            span.updated {
                "updated " (clock(v.generated_ms)) " · refreshes every " (v.refresh_secs) " s"
            }
            form method="post" action="/status/logout" {
                button type="submit" { "Log out" }
            }
        }
        main {
            (tiles(v))
            h2 { "Problems and refused actions" }
            (problems(&v.problems, v.generated_ms))
            h2 { "Entities" }
            (entities(&v.entities, v.generated_ms))
            h2 { "Operating budget per billing key" }
            (keys(&v.keys))
            h2 { "Request rate" }
            (requests(&v.requests))
        }
        footer {
            "This page as JSON: " code { "/status/json" } ". For ClickHouse: "
            code { "/v1/meta/entities" } ", " code { "/v1/meta/governor" } ", "
            code { "/v1/meta/loads" } " (bearer token). Serving since " (clock(v.serving_since_ms)) "."
        }
    };
    page(&title, Some(v.refresh_secs), body).into_string()
}

fn tiles(v: &StatusView) -> Markup {
    let count = |h: Health| v.entities.iter().filter(|e| e.health == h).count();
    let (fresh, failing, late, waiting) = (
        count(Health::Fresh),
        count(Health::Failing),
        count(Health::Late),
        count(Health::Waiting),
    );
    let rows: u64 = v.entities.iter().map(|e| e.day.rows).sum();
    let requests: u64 = v.entities.iter().map(|e| e.day.requests).sum();
    let operating: f64 = v.entities.iter().map(|e| e.day.operating_secs).sum();
    let busiest = v
        .keys
        .iter()
        .filter_map(|k| Some((k, k.used_secs / k.limit_secs.filter(|l| *l > 0.0)?)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let paused = v
        .keys
        .iter()
        .filter(|k| k.state == KeyState::Paused)
        .count();
    let entity_class = if failing > 0 {
        "bad"
    } else if late > 0 {
        "warn"
    } else {
        ""
    };
    let problem_class = match v.problems.first().map(|p| p.severity) {
        Some(Severity::Error) => "bad",
        Some(Severity::Warning) => "warn",
        None => "",
    };
    html! {
        div.tiles #summary {
            div.tile.(entity_class) {
                div.big { (fresh) " of " (v.entities.len()) " fresh" }
                div.sub { (failing) " failing · " (late) " late · " (waiting) " waiting" }
            }
            div.tile.(problem_class) {
                div.big { (plural(v.problems.len() as u64, "problem")) }
                div.sub { "listed below with what to do" }
            }
            div.tile {
                div.big { (group(rows)) " rows" }
                div.sub { "loaded in the last 24 h" }
            }
            div.tile {
                div.big { (plural(requests, "request")) }
                div.sub { (secs(operating)) " of portal time, last 24 h" }
            }
            div.tile.(if paused > 0 { "warn" } else { "" }) {
                @match busiest {
                    Some((k, share)) => {
                        div.big { (format!("{:.0}%", share * 100.0)) " of limit" }
                        div.sub { "busiest key: " (k.key) @if paused > 0 { " · " (paused) " paused" } }
                    }
                    None => {
                        div.big { (plural(v.keys.len() as u64, "billing key")) }
                        div.sub { "no operating limit known yet" }
                    }
                }
            }
        }
    }
}

fn problems(list: &[Problem], now: u64) -> Markup {
    html! {
        @if list.is_empty() {
            p.none #problems { "No problems: every load that ran succeeded and nothing was refused." }
        } @else {
            ul.problems #problems {
                @for p in list {
                    @let sev = match p.severity { Severity::Error => "error", Severity::Warning => "warning" };
                    li.problem.(sev) data-subject=(p.subject) {
                        div.head {
                            span.pill.(if p.severity == Severity::Error { "failing" } else { "late" }) { (sev) }
                            span.name { (p.subject) }
                            b { (p.title) }
                            @if let Some(at) = p.at_ms {
                                span.when { (ago(now, at)) " (" (clock(at)) ")" }
                            }
                        }
                        div.detail { (p.detail) }
                        div.todo { b { "What to do: " } (p.remedy) }
                    }
                }
            }
        }
    }
}

fn entities(list: &[EntityStatus], now: u64) -> Markup {
    let max_rows = list
        .iter()
        .filter_map(|e| e.last_load.as_ref().map(|l| l.figures.rows))
        .max()
        .unwrap_or(0);
    html! {
        table #entities {
            thead {
                tr {
                    th { "Entity" }
                    th { "Freshness" }
                    th { "Rows, last load" }
                    th.num { "Requests" }
                    th.num { "Portal time" }
                    th.num { "Duration" }
                    th { "Last 24 h" }
                    th { "Last error" }
                }
            }
            tbody {
                @for e in list {
                    tr.(e.health.label()) data-entity=(e.entity) data-health=(e.health.label()) {
                        td {
                            div.name { (e.entity) }
                            @if !e.title.is_empty() && e.title != e.entity {
                                div.title { (e.title) }
                            }
                        }
                        td data-field="freshness" {
                            div.nowrap {
                                span.pill.(e.health.label()) { (e.health.label()) }
                                " "
                                (freshness_text(e))
                            }
                            div.small { "every " (duration(e.schedule_secs as f64)) }
                            @if let Some(c) = e.cursor {
                                div.small title="where the next incremental load starts, on the portal's clock" {
                                    "cursor " (clock(u64::try_from(c).unwrap_or(0) * 1000))
                                }
                            }
                        }
                        @match &e.last_load {
                            Some(l) => {
                                td data-field="rows" { (bar(l.figures.rows as f64, max_rows as f64, ROWS_BAR_PX, "", &group(l.figures.rows))) }
                                td.num data-field="requests" { (group(l.figures.requests)) }
                                td.num data-field="operating" { (secs(l.figures.operating_secs)) }
                                td.num data-field="duration" { (secs(l.figures.duration_ms as f64 / 1000.0)) }
                            }
                            None => {
                                td data-field="rows" { span.small { "no load yet" } }
                                td.num data-field="requests" { "–" }
                                td.num data-field="operating" { "–" }
                                td.num data-field="duration" { "–" }
                            }
                        }
                        td data-field="day" {
                            div.small.nowrap {
                                (plural(e.day.loads_ok + e.day.loads_failed, "load"))
                                @if e.day.loads_failed > 0 { ", " (e.day.loads_failed) " failed" }
                            }
                            div.small.nowrap {
                                (group(e.day.rows)) " rows · " (plural(e.day.requests, "request"))
                            }
                            (marks(&e.recent, now))
                        }
                        td data-field="error" {
                            @if let Some(err) = &e.error {
                                div.err { (err.message) }
                                div.small { (ago(now, err.at_ms)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn freshness_text(e: &EntityStatus) -> String {
    match (e.health, e.age_secs) {
        (Health::Off, _) => "turned off".to_string(),
        (_, Some(a)) => format!("{} ago", duration(a as f64)),
        (Health::Waiting, None) => "not loaded yet".to_string(),
        (_, None) => "never loaded".to_string(),
    }
}

/// One square per recent load: green complete, red failed, faded for ID lists.
fn marks(recent: &[LoadRecord], now: u64) -> Markup {
    html! {
        div.marks {
            @for r in recent {
                @let class = match (r.ok, r.kind) {
                    (true, "rows") => "mark",
                    (false, "rows") => "mark failed",
                    (true, _) => "mark ids",
                    (false, _) => "mark failed ids",
                };
                span class=(class) title=(format!(
                    "{} {} · {}: {} rows, {} requests, {}",
                    r.kind,
                    if r.ok { "complete" } else { "failed" },
                    ago(now, r.finished_ms),
                    group(r.figures.rows),
                    group(r.figures.requests),
                    secs(r.figures.duration_ms as f64 / 1000.0)
                )) {}
            }
        }
    }
}

/// A horizontal bar `width_px` long at `max`, filled to `value`, with its value printed beside.
fn bar(value: f64, max: f64, width_px: f64, class: &str, label: &str) -> Markup {
    let fill = if max > 0.0 {
        (value / max).clamp(0.0, 1.0) * width_px
    } else {
        0.0
    };
    html! {
        div.hbar {
            div.track style=(format!("width:{width_px:.0}px")) {
                div.fill.(class) style=(format!("width:{fill:.1}px")) {}
            }
            span.value { (label) }
        }
    }
}

fn keys(list: &[KeyStatus]) -> Markup {
    let limit = list.iter().find_map(|k| k.limit_secs);
    let budget = list.iter().find_map(|k| k.budget_secs);
    let mut sorted: Vec<&KeyStatus> = list.iter().collect();
    sorted.sort_by(|a, b| b.used_secs.total_cmp(&a.used_secs));
    html! {
        @match (limit, budget) {
            (Some(l), Some(b)) => p.legend {
                "Bitrix24 bills the server time of each method (and of " code { "batch" }
                ") within a 10-minute window and blocks a method past " (secs(l))
                ". The bar is that limit; b24ch stops at " (secs(b)) " (dashed line) and waits for older time to leave the window."
            },
            _ => p.legend { "No operating limit is enforced for this portal (self-hosted); the figures show what each key used." },
        }
        @if sorted.is_empty() {
            p.small { "No call has been made yet." }
        } @else {
            table #keys {
                thead {
                    tr {
                        th { "Billing key" }
                        th { "Used in the window" }
                        th { "State" }
                        th.num { "Calls" }
                        th.num { "Waits" }
                        th { "Why it waits" }
                    }
                }
                tbody {
                    @for k in sorted {
                        @let state = match k.state { KeyState::Ok => "ok", KeyState::Full => "full", KeyState::Paused => "paused" };
                        tr data-key=(k.key) data-state=(state) {
                            td.name { (k.key) }
                            td data-field="used" { (key_bar(k, state)) }
                            td { span.pill.(state) { (state) } }
                            td.num data-field="calls" { (group(k.calls)) }
                            td.num data-field="waits" { (group(k.waits)) }
                            td.small { (k.reason.as_deref().unwrap_or("–")) }
                        }
                    }
                }
            }
        }
    }
}

fn key_bar(k: &KeyStatus, state: &str) -> Markup {
    let Some(limit) = k.limit_secs.filter(|l| *l > 0.0) else {
        return html! { span.value { (secs(k.used_secs)) " used (no limit)" } };
    };
    let label = format!(
        "{} of {} ({:.0}%)",
        secs(k.used_secs),
        secs(limit),
        k.used_secs / limit * 100.0
    );
    let fill = (k.used_secs / limit).clamp(0.0, 1.0) * KEY_BAR_PX;
    let mark = k
        .budget_secs
        .map(|b| (b / limit).clamp(0.0, 1.0) * KEY_BAR_PX);
    html! {
        div.hbar {
            div.track style=(format!("width:{KEY_BAR_PX:.0}px")) {
                div.fill.(state) style=(format!("width:{fill:.1}px")) {}
                @if let Some(m) = mark {
                    div.limit style=(format!("left:{m:.1}px")) title="b24ch's ceiling" {}
                }
            }
            span.value { (label) }
        }
    }
}

fn requests(r: &RequestStatus) -> Markup {
    html! {
        div #requests {
            @match r.rate_per_sec {
                Some(rate) => {
                    p.legend {
                        "Bitrix24 drains its request bucket at " (rate) " requests/s; a full bucket answers 503. The bar is b24ch's bucket now (capacity "
                        (r.bucket_capacity) ")."
                    }
                    (bar(r.bucket_level, r.bucket_capacity, KEY_BAR_PX, "ok", &format!("{:.0} of {:.0}", r.bucket_level, r.bucket_capacity)))
                }
                None => p.legend { "No request-rate limit is enforced for this portal." },
            }
            p {
                (plural(r.requests, "request")) " sent · waited "
                (plural(r.bucket_waits, "time")) " (" (secs(r.bucket_wait_secs)) ") for the request rate and "
                (plural(r.operating_waits, "time")) " (" (secs(r.operating_wait_secs)) ") for operating budgets · "
                (r.retries) " retries · portal limit answers: " (r.http_503) " × 503, " (r.http_429) " × 429"
            }
        }
    }
}

fn secs(s: f64) -> String {
    if s == 0.0 || (s.fract() == 0.0 && (10.0..600.0).contains(&s)) {
        format!("{s:.0} s")
    } else if s < 10.0 {
        format!("{s:.2} s")
    } else if s < 600.0 {
        format!("{s:.1} s")
    } else {
        duration(s)
    }
}

fn ago(now: u64, at_ms: u64) -> String {
    format!(
        "{} ago",
        duration(now.saturating_sub(at_ms) as f64 / 1000.0)
    )
}

/// `15:31:02 UTC` (the page has no script to learn the reader's zone).
fn clock(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(0))
        .map(|d| d.format("%H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portal_text_is_escaped() {
        let html = login_page(Notice::Error("<script>alert(1)</script> & \"x\""));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;"));
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn a_bar_prints_its_value_and_stays_in_its_track() {
        let b = bar(300.0, 200.0, 150.0, "", "300").into_string();
        assert!(b.contains("width:150.0px"), "{b}");
        assert!(b.contains(">300<"), "{b}");
        let empty = bar(0.0, 0.0, 150.0, "", "0").into_string();
        assert!(empty.contains("width:0.0px"), "{empty}");
    }
}
