//! What happened to each entity's loads: read by the meta endpoints, `/metrics` and the
//! status page, written by every load (pull or push).
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

/// How many recent errors, load records, schema changes and refusals are kept in memory.
const RECENT: usize = 200;
/// Per-entity load history kept for the status page: the last day, at most this many loads
/// (an entity refreshed every 5 minutes has 288 a day).
const HISTORY_LOADS: usize = 300;
pub const HISTORY_WINDOW_MS: u64 = 24 * 3600 * 1000;

/// Which endpoint a load served: typed rows, or the ID list of deletion reconciliation.
pub type LoadKind = &'static str;

/// What one load did and cost, whatever its outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LoadFigures {
    pub rows: u64,
    /// Values that did not fit their column (kept in `_invalid`).
    pub invalid: u64,
    /// HTTP requests sent to Bitrix24 (retries included).
    pub requests: u64,
    /// Server time the portal reported for them (what its operating budget bills).
    pub operating_secs: f64,
    pub duration_ms: u64,
    /// The cursor (unix seconds, portal clock) a complete incremental load reached.
    pub cursor: Option<i64>,
}

/// Why a load failed: the message (the portal's words where the portal answered) and what
/// an operator can do about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadError {
    pub at_ms: u64,
    pub kind: LoadKind,
    pub message: String,
    pub remedy: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct EntityStats {
    pub entity: String,
    pub loads_ok: u64,
    pub loads_failed: u64,
    pub rows_total: u64,
    pub last_rows: u64,
    /// Unix ms.
    pub last_started_ms: Option<u64>,
    pub last_success_ms: Option<u64>,
    pub last_duration_ms: Option<u64>,
    /// Cursor (unix seconds, portal clock) the last complete load reached.
    pub last_watermark: Option<i64>,
    /// The last failure, until a load of the same kind succeeds.
    pub last_error: Option<LoadError>,
    pub invalid_values: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadRecord {
    pub entity: String,
    pub kind: LoadKind,
    pub finished_ms: u64,
    pub ok: bool,
    #[serde(flatten)]
    pub figures: LoadFigures,
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorRecord {
    pub at_ms: u64,
    pub entity: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SchemaChange {
    pub at_ms: u64,
    pub entity: String,
    pub change: String,
}

/// Something b24ch refused to do on purpose (a mass deletion, a schema that does not match,
/// an entity the portal no longer offers…), kept so the status page can list it with what to
/// do. Any part of `serve` that refuses an action records it here.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refusal {
    pub at_ms: u64,
    /// The entity (or other subject) concerned.
    pub subject: String,
    /// What was refused, e.g. "deletion reconcile".
    pub action: String,
    /// Why, in words an operator understands.
    pub reason: String,
    /// What to do about it.
    pub remedy: String,
}

#[derive(Default)]
struct Inner {
    entities: BTreeMap<String, EntityStats>,
    history: BTreeMap<String, VecDeque<LoadRecord>>,
    loads: VecDeque<LoadRecord>,
    errors: VecDeque<ErrorRecord>,
    schema_changes: VecDeque<SchemaChange>,
    refusals: VecDeque<Refusal>,
}

/// Shared, cheap to update; every method takes the lock briefly.
pub struct Stats {
    /// Unix ms when these statistics started (the process's start, for `serve`).
    pub started_ms: u64,
    inner: Mutex<Inner>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            started_ms: now_ms(),
            inner: Mutex::default(),
        }
    }
}

use crate::schema::now_ms;

fn push_bounded<T>(q: &mut VecDeque<T>, item: T, cap: usize) {
    if q.len() == cap {
        q.pop_front();
    }
    q.push_back(item);
}

impl Stats {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        // A poisoned lock only means a panic elsewhere; the counters are still usable.
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut guard)
    }

    pub fn load_started(&self, entity: &str) {
        self.with(|i| {
            let e = entry(i, entity);
            e.last_started_ms = Some(now_ms());
        });
    }

    /// A complete load. Only a `rows` load makes the entity fresh; any kind clears an error
    /// of its own kind.
    pub fn load_finished(&self, entity: &str, kind: LoadKind, figures: LoadFigures) {
        let now = now_ms();
        self.with(|i| {
            let e = entry(i, entity);
            if kind == "rows" {
                e.loads_ok += 1;
                e.rows_total += figures.rows;
                e.last_rows = figures.rows;
                e.invalid_values += figures.invalid;
                e.last_success_ms = Some(now);
                e.last_duration_ms = Some(figures.duration_ms);
                if figures.cursor.is_some() {
                    e.last_watermark = figures.cursor;
                }
            }
            if e.last_error.as_ref().is_some_and(|x| x.kind == kind) {
                e.last_error = None;
            }
            record(i, entity, kind, now, true, figures);
        });
    }

    pub fn load_failed(
        &self,
        entity: &str,
        kind: LoadKind,
        figures: LoadFigures,
        message: &str,
        remedy: &str,
    ) {
        let now = now_ms();
        self.with(|i| {
            let e = entry(i, entity);
            e.loads_failed += 1;
            e.last_error = Some(LoadError {
                at_ms: now,
                kind,
                message: message.to_string(),
                remedy: remedy.to_string(),
            });
            record(i, entity, kind, now, false, figures);
            push_bounded(
                &mut i.errors,
                ErrorRecord {
                    at_ms: now,
                    entity: entity.to_string(),
                    message: message.to_string(),
                },
                RECENT,
            );
        });
    }

    pub fn schema_changed(&self, entity: &str, change: &str) {
        self.with(|i| {
            push_bounded(
                &mut i.schema_changes,
                SchemaChange {
                    at_ms: now_ms(),
                    entity: entity.to_string(),
                    change: change.to_string(),
                },
                RECENT,
            )
        });
    }

    /// Records an action b24ch refused (see [`Refusal`]).
    pub fn refused(&self, subject: &str, action: &str, reason: &str, remedy: &str) {
        self.with(|i| {
            push_bounded(
                &mut i.refusals,
                Refusal {
                    at_ms: now_ms(),
                    subject: subject.to_string(),
                    action: action.to_string(),
                    reason: reason.to_string(),
                    remedy: remedy.to_string(),
                },
                RECENT,
            )
        });
    }

    pub fn entities(&self) -> Vec<EntityStats> {
        self.with(|i| i.entities.values().cloned().collect())
    }

    pub fn loads(&self) -> Vec<LoadRecord> {
        self.with(|i| i.loads.iter().cloned().collect())
    }

    /// Each entity's loads of the last [`HISTORY_WINDOW_MS`], oldest first.
    pub fn history(&self) -> BTreeMap<String, Vec<LoadRecord>> {
        let since = now_ms().saturating_sub(HISTORY_WINDOW_MS);
        self.with(|i| {
            i.history
                .iter()
                .map(|(e, h)| {
                    let recent = h.iter().filter(|r| r.finished_ms >= since).cloned();
                    (e.clone(), recent.collect())
                })
                .collect()
        })
    }

    pub fn errors(&self) -> Vec<ErrorRecord> {
        self.with(|i| i.errors.iter().cloned().collect())
    }

    pub fn schema_changes(&self) -> Vec<SchemaChange> {
        self.with(|i| i.schema_changes.iter().cloned().collect())
    }

    pub fn refusals(&self) -> Vec<Refusal> {
        self.with(|i| i.refusals.iter().cloned().collect())
    }
}

fn record(i: &mut Inner, entity: &str, kind: LoadKind, now: u64, ok: bool, f: LoadFigures) {
    let r = LoadRecord {
        entity: entity.to_string(),
        kind,
        finished_ms: now,
        ok,
        figures: f,
    };
    let h = i.history.entry(entity.to_string()).or_default();
    while h
        .front()
        .is_some_and(|old| old.finished_ms + HISTORY_WINDOW_MS < now)
    {
        h.pop_front();
    }
    push_bounded(h, r.clone(), HISTORY_LOADS);
    push_bounded(&mut i.loads, r, RECENT);
}

fn entry<'a>(i: &'a mut Inner, entity: &str) -> &'a mut EntityStats {
    i.entities
        .entry(entity.to_string())
        .or_insert_with(|| EntityStats {
            entity: entity.to_string(),
            ..Default::default()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(rows: u64) -> LoadFigures {
        LoadFigures {
            rows,
            requests: 2,
            operating_secs: 0.5,
            duration_ms: 10,
            ..Default::default()
        }
    }

    #[test]
    fn an_error_stays_until_a_load_of_its_kind_succeeds() {
        let s = Stats::default();
        s.load_failed("crm_deal", "rows", figures(0), "boom", "wait");
        s.load_finished("crm_deal", "ids", figures(0));
        let e = &s.entities()[0];
        assert_eq!(
            e.last_error.as_ref().map(|x| x.message.as_str()),
            Some("boom")
        );
        assert_eq!(
            e.last_success_ms, None,
            "an ID list does not make rows fresh"
        );
        s.load_finished("crm_deal", "rows", figures(7));
        let e = &s.entities()[0];
        assert!(e.last_error.is_none());
        assert_eq!((e.last_rows, e.loads_ok, e.loads_failed), (7, 1, 1));
        let h = &s.history()["crm_deal"];
        assert_eq!(h.len(), 3);
        assert_eq!(
            (h[2].ok, h[2].figures.rows, h[2].figures.requests),
            (true, 7, 2)
        );
    }

    #[test]
    fn history_is_bounded_per_entity() {
        let s = Stats::default();
        for n in 0..(HISTORY_LOADS as u64 + 5) {
            s.load_finished("crm_deal", "rows", figures(n));
        }
        s.load_finished("crm_lead", "rows", figures(1));
        let h = s.history();
        assert_eq!(h["crm_deal"].len(), HISTORY_LOADS);
        assert_eq!(h["crm_deal"][0].figures.rows, 5, "the oldest went first");
        assert_eq!(
            h["crm_lead"].len(),
            1,
            "a busy entity does not push others out"
        );
    }

    #[test]
    fn refusals_are_kept_for_the_page() {
        let s = Stats::default();
        s.refused(
            "crm_deal",
            "deletion reconcile",
            "90% of rows vanished",
            "check",
        );
        assert_eq!(s.refusals()[0].action, "deletion reconcile");
    }
}
