//! What happened to each entity's loads: read by the meta endpoints, `/metrics` and the
//! status page, written by every load (pull or push).
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

/// How many recent errors and load records are kept in memory.
const RECENT: usize = 200;

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
    pub last_error: Option<String>,
    pub invalid_values: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadRecord {
    pub entity: String,
    pub kind: &'static str,
    pub finished_ms: u64,
    pub rows: u64,
    pub duration_ms: u64,
    pub ok: bool,
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

#[derive(Default)]
struct Inner {
    entities: BTreeMap<String, EntityStats>,
    loads: VecDeque<LoadRecord>,
    errors: VecDeque<ErrorRecord>,
    schema_changes: VecDeque<SchemaChange>,
}

/// Shared, cheap to update; every method takes the lock briefly.
#[derive(Default)]
pub struct Stats {
    inner: Mutex<Inner>,
}

use crate::schema::now_ms;

fn push_bounded<T>(q: &mut VecDeque<T>, item: T) {
    if q.len() == RECENT {
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

    pub fn load_finished(
        &self,
        entity: &str,
        kind: &'static str,
        rows: u64,
        invalid: u64,
        watermark: Option<i64>,
    ) {
        let now = now_ms();
        self.with(|i| {
            let e = entry(i, entity);
            e.loads_ok += 1;
            e.rows_total += rows;
            e.last_rows = rows;
            e.invalid_values += invalid;
            e.last_success_ms = Some(now);
            e.last_duration_ms = e.last_started_ms.map(|s| now.saturating_sub(s));
            if watermark.is_some() {
                e.last_watermark = watermark;
            }
            e.last_error = None;
            let duration_ms = e.last_duration_ms.unwrap_or(0);
            push_bounded(
                &mut i.loads,
                LoadRecord {
                    entity: entity.to_string(),
                    kind,
                    finished_ms: now,
                    rows,
                    duration_ms,
                    ok: true,
                },
            );
        });
    }

    pub fn load_failed(&self, entity: &str, kind: &'static str, rows: u64, message: &str) {
        let now = now_ms();
        self.with(|i| {
            let e = entry(i, entity);
            e.loads_failed += 1;
            e.last_error = Some(message.to_string());
            let duration_ms = e
                .last_started_ms
                .map(|s| now.saturating_sub(s))
                .unwrap_or(0);
            push_bounded(
                &mut i.loads,
                LoadRecord {
                    entity: entity.to_string(),
                    kind,
                    finished_ms: now,
                    rows,
                    duration_ms,
                    ok: false,
                },
            );
            push_bounded(
                &mut i.errors,
                ErrorRecord {
                    at_ms: now,
                    entity: entity.to_string(),
                    message: message.to_string(),
                },
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
            )
        });
    }

    pub fn entities(&self) -> Vec<EntityStats> {
        self.with(|i| i.entities.values().cloned().collect())
    }

    pub fn loads(&self) -> Vec<LoadRecord> {
        self.with(|i| i.loads.iter().cloned().collect())
    }

    pub fn errors(&self) -> Vec<ErrorRecord> {
        self.with(|i| i.errors.iter().cloned().collect())
    }

    pub fn schema_changes(&self) -> Vec<SchemaChange> {
        self.with(|i| i.schema_changes.iter().cloned().collect())
    }
}

fn entry<'a>(i: &'a mut Inner, entity: &str) -> &'a mut EntityStats {
    i.entities
        .entry(entity.to_string())
        .or_insert_with(|| EntityStats {
            entity: entity.to_string(),
            ..Default::default()
        })
}
