//! What the status page shows, computed once per request from the statistics, the catalog and
//! the governor: the page (`html.rs`) renders it, `/status/json` serialises it as is.
use super::state::AppState;
use crate::pipeline::stats::{LoadError, LoadRecord, Refusal};
use crate::schema::now_ms;
use serde::Serialize;

/// The page reloads itself this often.
pub(super) const REFRESH_SECS: u64 = 15;
/// How many recent loads each entity shows as marks.
const RECENT_MARKS: usize = 12;

#[derive(Debug, Serialize)]
pub(super) struct StatusView {
    pub generated_ms: u64,
    /// The portal without secrets.
    pub portal: String,
    pub serving_since_ms: u64,
    pub refresh_secs: u64,
    pub entities: Vec<EntityStatus>,
    pub keys: Vec<KeyStatus>,
    pub requests: RequestStatus,
    pub problems: Vec<Problem>,
}

/// How current an entity's table is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Health {
    /// The last complete load is within its schedule (plus slack).
    Fresh,
    /// The last load failed (its error is shown).
    Failing,
    /// No complete load for longer than its schedule allows.
    Late,
    /// Not loaded yet, and `serve` has not run long enough for that to be late.
    Waiting,
    /// Turned off in the config.
    Off,
}

impl Health {
    pub(super) fn label(self) -> &'static str {
        match self {
            Health::Fresh => "fresh",
            Health::Failing => "failing",
            Health::Late => "late",
            Health::Waiting => "waiting",
            Health::Off => "off",
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct EntityStatus {
    pub entity: String,
    pub title: String,
    pub schedule: String,
    pub schedule_secs: u64,
    pub health: Health,
    /// Seconds since the last complete load.
    pub age_secs: Option<u64>,
    /// Older than this is late.
    pub due_secs: u64,
    /// The last rows load, complete or not.
    pub last_load: Option<LoadRecord>,
    /// Cursor of the last complete load (unix seconds, portal clock).
    pub cursor: Option<i64>,
    pub day: DaySummary,
    /// The latest loads (rows and ID lists), oldest first.
    pub recent: Vec<LoadRecord>,
    pub error: Option<LoadError>,
}

/// The loads of the last 24 hours.
#[derive(Debug, Default, Serialize)]
pub(super) struct DaySummary {
    pub loads_ok: u64,
    pub loads_failed: u64,
    pub rows: u64,
    pub requests: u64,
    pub operating_secs: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum KeyState {
    /// Within its budget.
    Ok,
    /// At or above b24ch's own ceiling: calls wait for the window to move on.
    Full,
    /// The portal answered 429 for it: no call until the pause ends.
    Paused,
}

/// One billing key of the governor (a method, or `batch`).
#[derive(Debug, Serialize)]
pub(super) struct KeyStatus {
    pub key: String,
    pub used_secs: f64,
    /// The portal's operating limit per window; `None` where none is enforced.
    pub limit_secs: Option<f64>,
    /// b24ch's ceiling (the limit less its safety margin).
    pub budget_secs: Option<f64>,
    pub calls: u64,
    /// Times calls waited for this key's budget (or its pause).
    pub waits: u64,
    pub state: KeyState,
    /// Seconds the pause still lasts (portal clock).
    pub paused_for_secs: Option<f64>,
    /// Why it waits or waited, in words.
    pub reason: Option<String>,
}

/// The request-rate side of the governor, over all keys.
#[derive(Debug, Serialize)]
pub(super) struct RequestStatus {
    pub rate_per_sec: Option<f64>,
    pub bucket_level: f64,
    pub bucket_capacity: f64,
    pub requests: u64,
    pub bucket_waits: u64,
    pub bucket_wait_secs: f64,
    pub operating_waits: u64,
    pub operating_wait_secs: f64,
    pub retries: u64,
    pub http_503: u64,
    pub http_429: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Severity {
    Error,
    Warning,
}

/// Something an operator should know about, with what to do.
#[derive(Debug, Serialize)]
pub(super) struct Problem {
    pub severity: Severity,
    /// The entity or billing key concerned.
    pub subject: String,
    pub title: String,
    /// The details; for a failed load the portal's own words.
    pub detail: String,
    pub remedy: String,
    pub at_ms: Option<u64>,
}

impl StatusView {
    pub(super) fn build(state: &AppState) -> Self {
        let now = now_ms();
        let stats = &state.stats;
        let entities = entity_statuses(state, now);
        let governor = state.client.governor();
        let snap = governor.snapshot();
        let safety = governor.config().safety;
        let portal_now = governor.server_now();
        let keys: Vec<KeyStatus> = snap
            .methods
            .iter()
            .map(|m| key_status(m, snap.operating_limit_secs, safety, portal_now))
            .collect();
        let c = &snap.counters;
        let requests = RequestStatus {
            rate_per_sec: snap.rate_per_sec,
            bucket_level: snap.bucket_level,
            bucket_capacity: snap.bucket_capacity,
            requests: c.requests,
            bucket_waits: c.bucket_waits,
            bucket_wait_secs: c.bucket_wait_secs,
            operating_waits: c.operating_waits,
            operating_wait_secs: c.operating_wait_secs,
            retries: c.retries,
            http_503: c.http_503,
            http_429: c.http_429,
        };
        let mut problems = problems(
            &stats.refusals(),
            &entities,
            &keys,
            &state.config.clickhouse.database,
        );
        problems.extend(state.catalog().unavailable.iter().map(unavailable_problem));
        problems.sort_by_key(|p| p.severity);
        StatusView {
            generated_ms: now,
            portal: state.client.portal_label(),
            serving_since_ms: stats.started_ms,
            refresh_secs: REFRESH_SECS,
            entities,
            keys,
            requests,
            problems,
        }
    }
}

fn entity_statuses(state: &AppState, now: u64) -> Vec<EntityStatus> {
    let stats = state.stats.entities();
    let mut history = state.stats.history();
    let up_secs = now.saturating_sub(state.stats.started_ms) / 1000;
    state
        .catalog()
        .entities
        .iter()
        .map(|e| {
            let settings = state.config.entity(&e.name);
            let s = stats
                .iter()
                .find(|s| s.entity == e.name)
                .cloned()
                .unwrap_or_default();
            let loads = history.remove(&e.name).unwrap_or_default();
            let schedule_secs = settings.schedule.as_duration().as_secs().max(1);
            let due_secs = due(schedule_secs);
            let age_secs = s.last_success_ms.map(|ms| now.saturating_sub(ms) / 1000);
            let health = if !settings.enabled {
                Health::Off
            } else if s.last_error.is_some() {
                Health::Failing
            } else {
                match age_secs {
                    Some(a) if a <= due_secs => Health::Fresh,
                    None if up_secs <= due_secs => Health::Waiting,
                    _ => Health::Late,
                }
            };
            EntityStatus {
                entity: e.name.clone(),
                title: e.title.clone(),
                schedule: settings.schedule.sql(),
                schedule_secs,
                health,
                age_secs,
                due_secs,
                last_load: loads.iter().rev().find(|r| r.kind == "rows").cloned(),
                cursor: s.last_watermark,
                day: day_summary(&loads),
                recent: loads[loads.len().saturating_sub(RECENT_MARKS)..].to_vec(),
                error: s.last_error,
            }
        })
        .collect()
}

/// A load is late once two refresh periods (at least a period and a minute) passed without
/// one: ClickHouse's refreshes drift by their own duration and `RANDOMIZE FOR`.
fn due(schedule_secs: u64) -> u64 {
    (2 * schedule_secs).max(schedule_secs + 60)
}

fn day_summary(loads: &[LoadRecord]) -> DaySummary {
    let mut d = DaySummary::default();
    for r in loads {
        if r.ok {
            d.loads_ok += 1;
        } else {
            d.loads_failed += 1;
        }
        d.rows += r.figures.rows;
        d.requests += r.figures.requests;
        d.operating_secs += r.figures.operating_secs;
    }
    d
}

fn key_status(
    m: &crate::bitrix::governor::MethodBudget,
    limit: Option<f64>,
    safety: f64,
    portal_now: f64,
) -> KeyStatus {
    let budget = limit.map(|l| l * (1.0 - safety));
    let paused_for = m
        .blocked_until
        .map(|until| until - portal_now)
        .filter(|s| *s > 0.0);
    let (state, reason) = if let Some(secs) = paused_for {
        (
            KeyState::Paused,
            Some(format!(
                "paused {}: the portal answered 429 OPERATION_TIME_LIMIT (this key's operating time is spent)",
                in_secs(secs)
            )),
        )
    } else if budget.is_some_and(|b| m.used >= b) {
        (
            KeyState::Full,
            Some(
                "budget spent: calls wait until older operating time leaves the 10-minute window"
                    .to_string(),
            ),
        )
    } else if m.waits > 0 {
        (
            KeyState::Ok,
            Some(format!(
                "waited {} for its operating budget",
                plural(m.waits, "time")
            )),
        )
    } else {
        (KeyState::Ok, None)
    };
    KeyStatus {
        key: m.key.clone(),
        used_secs: m.used,
        limit_secs: limit,
        budget_secs: budget,
        calls: m.calls,
        waits: m.waits,
        state,
        paused_for_secs: paused_for,
        reason,
    }
}

/// An entity the portal cannot serve: no table is loaded until the portal serves it again.
fn unavailable_problem(u: &crate::catalog::Unavailable) -> Problem {
    let code = if u.code.is_empty() {
        "no code"
    } else {
        u.code.as_str()
    };
    Problem {
        severity: Severity::Warning,
        subject: u.entity.clone(),
        title: "not served by the portal".to_string(),
        detail: format!("{} answered {code}: {}", u.method, u.message),
        remedy: u.hint.clone(),
        at_ms: None,
    }
}

fn problems(
    refusals: &[Refusal],
    entities: &[EntityStatus],
    keys: &[KeyStatus],
    database: &str,
) -> Vec<Problem> {
    let mut out: Vec<Problem> = refusals
        .iter()
        .rev()
        .map(|r| Problem {
            severity: Severity::Error,
            subject: r.subject.clone(),
            title: format!("{} refused", r.action),
            detail: r.reason.clone(),
            remedy: r.remedy.clone(),
            at_ms: Some(r.at_ms),
        })
        .collect();
    for e in entities {
        if let Some(err) = &e.error {
            let what = if err.kind == "ids" {
                "ID list for deletions failed"
            } else {
                "load failed"
            };
            out.push(Problem {
                severity: Severity::Error,
                subject: e.entity.clone(),
                title: what.to_string(),
                detail: err.message.clone(),
                remedy: err.remedy.clone(),
                at_ms: Some(err.at_ms),
            });
        } else if e.health == Health::Late {
            let since = e
                .age_secs
                .map(|a| format!("the last complete load was {} ago", duration(a as f64)))
                .unwrap_or_else(|| "it has not loaded since b24ch started".to_string());
            out.push(Problem {
                severity: Severity::Warning,
                subject: e.entity.clone(),
                title: "late".to_string(),
                detail: format!("{since}; its schedule is every {}", e.schedule.to_lowercase()),
                remedy: format!(
                    "ClickHouse runs this load: see SELECT * FROM system.view_refreshes WHERE database = '{database}' AND view = '{}_load' (its exception, next refresh), or run SYSTEM REFRESH VIEW {database}.{}_load",
                    e.entity, e.entity
                ),
                at_ms: None,
            });
        }
    }
    for k in keys.iter().filter(|k| k.state == KeyState::Paused) {
        out.push(Problem {
            severity: Severity::Warning,
            subject: k.key.clone(),
            title: format!(
                "paused {}",
                k.paused_for_secs.map(in_secs).unwrap_or_default()
            ),
            detail: "The portal answered 429 OPERATION_TIME_LIMIT: this key's operating time for the 10-minute window is spent, so b24ch sends no call on it until the portal's reset.".into(),
            remedy: "Nothing to do now: loads on this key resume by themselves. If it keeps happening, schedule the heavy entities less often ([entities.NAME] schedule) or lower [limits] operating_seconds_per_10min.".into(),
            at_ms: None,
        });
    }
    out.sort_by_key(|p| p.severity);
    out
}

/// "in 1 min 5 s".
fn in_secs(secs: f64) -> String {
    format!("for {} more", duration(secs))
}

/// A duration a person reads at a glance: `42 s`, `3 min 5 s`, `2 h 10 min`, `3 d 4 h`.
pub(super) fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => match s % 60 {
            0 => format!("{} min", s / 60),
            r => format!("{} min {r} s", s / 60),
        },
        3600..86400 => match (s % 3600) / 60 {
            0 => format!("{} h", s / 3600),
            m => format!("{} h {m} min", s / 3600),
        },
        _ => match (s % 86400) / 3600 {
            0 => format!("{} d", s / 86400),
            h => format!("{} d {h} h", s / 86400),
        },
    }
}

pub(super) fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{} {word}s", group(n))
    }
}

/// 1234567 → `1,234,567`.
pub(super) fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(0.4), "0 s");
        assert_eq!(duration(59.0), "59 s");
        assert_eq!(duration(60.0), "1 min");
        assert_eq!(duration(185.0), "3 min 5 s");
        assert_eq!(duration(7800.0), "2 h 10 min");
        assert_eq!(duration(3.0 * 86400.0 + 4.0 * 3600.0), "3 d 4 h");
        assert_eq!(duration(-5.0), "0 s");
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1234567), "1,234,567");
        assert_eq!(plural(1, "wait"), "1 wait");
        assert_eq!(plural(1200, "wait"), "1,200 waits");
    }

    #[test]
    fn late_after_two_periods_or_a_period_and_a_minute() {
        assert_eq!(due(300), 600);
        assert_eq!(due(10), 70);
    }

    fn key(
        used: f64,
        waits: u64,
        blocked_until: Option<f64>,
    ) -> crate::bitrix::governor::MethodBudget {
        crate::bitrix::governor::MethodBudget {
            key: "crm.item.list".into(),
            used,
            left: None,
            estimate_per_command: 0.0,
            estimates: Default::default(),
            reset_at: None,
            blocked_until,
            calls: 3,
            waits,
        }
    }

    #[test]
    fn key_states_and_their_reasons() {
        let ok = key_status(&key(10.0, 0, None), Some(480.0), 0.1, 1000.0);
        assert_eq!((ok.state, ok.reason.as_deref()), (KeyState::Ok, None));
        assert_eq!(ok.budget_secs, Some(432.0));
        let waited = key_status(&key(10.0, 2, None), Some(480.0), 0.1, 1000.0);
        assert!(waited.reason.unwrap().contains("2 times"));
        let full = key_status(&key(432.0, 0, None), Some(480.0), 0.1, 1000.0);
        assert_eq!(full.state, KeyState::Full);
        let paused = key_status(&key(10.0, 1, Some(1060.0)), Some(480.0), 0.1, 1000.0);
        assert_eq!(paused.state, KeyState::Paused);
        assert_eq!(paused.paused_for_secs, Some(60.0));
        assert!(paused.reason.unwrap().contains("429 OPERATION_TIME_LIMIT"));
        let over = key_status(&key(10.0, 1, Some(990.0)), Some(480.0), 0.1, 1000.0);
        assert_eq!(over.state, KeyState::Ok, "a pause in the past is over");
        let unlimited = key_status(&key(1e6, 0, None), None, 0.1, 1000.0);
        assert_eq!(unlimited.state, KeyState::Ok);
    }

    #[test]
    fn problems_list_errors_before_warnings_with_what_to_do() {
        let refusal = Refusal {
            at_ms: 1,
            subject: "crm_deal".into(),
            action: "deletion reconcile".into(),
            reason: "90% of rows would be deleted".into(),
            remedy: "check the portal".into(),
        };
        let paused = key_status(&key(10.0, 1, Some(1060.0)), Some(480.0), 0.1, 1000.0);
        let p = problems(&[refusal], &[], &[paused], "b24");
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].severity, Severity::Error);
        assert_eq!(p[0].title, "deletion reconcile refused");
        assert_eq!(p[1].subject, "crm.item.list");
        assert!(!p[1].remedy.is_empty());
    }
}
