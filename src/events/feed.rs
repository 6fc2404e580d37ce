//! The offline-event loop: bind what is new, lease a batch, remember the lease, apply it,
//! clear it.
use super::queue::{self, BindReport, OfflineBatch, OfflineEvent};
use super::sink::{Applied, Sink};
use super::{EventsError, Notice, classify};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Records leased per `event.offline.get` (the portal's default is 50; a larger lease lets one
/// fetch cover more rows).
pub const LEASE_LIMIT: u32 = 1_000;

/// Attempts at an entity's records of one lease, failing each time for a reason retrying
/// cannot fix ([`EventsError::keeps_failing`]), before they are set aside with
/// `event.offline.error` so that they stop holding up the queue.
pub const ATTEMPTS_BEFORE_SETTING_ASIDE: u32 = 3;

/// What one [`Feed::cycle`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    pub events: usize,
    /// Records read again from a lease a previous run left (it stopped before clearing).
    pub resumed: bool,
    pub applied: Applied,
    /// Events that announce no row change of a loaded entity.
    pub ignored_events: usize,
    /// Records set aside as failed (`event.offline.error`); their entities catch up at their
    /// scheduled loads and reconciles.
    pub set_aside: usize,
    /// Event names bound in this cycle (entities the catalog gained).
    pub newly_bound: Vec<String>,
    /// A full lease: more records are probably waiting.
    pub full: bool,
}

pub struct Feed {
    pub sink: Arc<Sink>,
    /// Where the current lease's `process_id` is kept until the lease is cleared.
    lease_file: PathBuf,
    pub limit: u32,
    /// Event names bound (or found bound, or unknown to the portal) so far.
    bound: Mutex<BTreeSet<String>>,
    /// Failed attempts per entity at the records of the current lease.
    failures: Mutex<BTreeMap<String, u32>>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded maps stay consistent even if a holder panicked.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Feed {
    pub fn new(sink: Arc<Sink>, state_dir: &Path) -> Self {
        let host = sink
            .client
            .portal_label()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect::<String>();
        Self {
            sink,
            lease_file: state_dir.join(format!("events-lease-{host}.txt")),
            limit: LEASE_LIMIT,
            bound: Mutex::default(),
            failures: Mutex::default(),
        }
    }

    fn state_err(&self, e: std::io::Error) -> EventsError {
        EventsError::State {
            path: self.lease_file.display().to_string(),
            message: e.to_string(),
        }
    }

    fn saved_lease(&self) -> Result<Option<String>, EventsError> {
        match std::fs::read_to_string(&self.lease_file) {
            Ok(s) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.state_err(e)),
        }
    }

    /// Written and synced before the batch is applied: a crash after this point finds it.
    fn save_lease(&self, pid: &str) -> Result<(), EventsError> {
        use std::io::Write as _;
        if let Some(dir) = self.lease_file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.state_err(e))?;
        }
        let tmp = self.lease_file.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp).map_err(|e| self.state_err(e))?;
        f.write_all(pid.as_bytes()).map_err(|e| self.state_err(e))?;
        f.sync_all().map_err(|e| self.state_err(e))?;
        std::fs::rename(&tmp, &self.lease_file).map_err(|e| self.state_err(e))
    }

    fn forget_lease(&self) -> Result<(), EventsError> {
        match std::fs::remove_file(&self.lease_file) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.state_err(e)),
        }
    }

    /// Binds the events of every loaded entity not bound yet: all of them at the first call,
    /// then those of entities the catalog gains while running (a smart process created while
    /// `serve`'s autopilot runs). Costs nothing when the catalog did not grow.
    pub async fn bind_new(&self) -> Result<BindReport, EventsError> {
        let catalog = (self.sink.catalog)();
        let missing: Vec<String> = {
            let bound = locked(&self.bound);
            super::names_to_bind(&self.sink.config, &catalog)
                .into_iter()
                .filter(|n| !bound.contains(n))
                .collect()
        };
        if missing.is_empty() {
            return Ok(BindReport::default());
        }
        let report = queue::bind(&self.sink.client, &missing).await?;
        locked(&self.bound).extend(
            report
                .bound
                .iter()
                .chain(&report.already)
                .chain(&report.unknown)
                .cloned(),
        );
        Ok(report)
    }

    /// The lease to work on: the one a previous run left, if it still holds records, else a
    /// new one.
    async fn lease(&self, report: &mut CycleReport) -> Result<OfflineBatch, EventsError> {
        let client = &self.sink.client;
        let Some(pid) = self.saved_lease()? else {
            return queue::read(client, None, self.limit).await;
        };
        let b = queue::read(client, Some(&pid), self.limit).await?;
        if b.events.is_empty() {
            // Cleared before the crash, or nothing was leased: start afresh.
            self.forget_lease()?;
            return queue::read(client, None, self.limit).await;
        }
        tracing::info!(
            events = b.events.len(),
            "resuming the event lease a previous run left"
        );
        report.resumed = true;
        Ok(b)
    }

    /// One lease: bind what is new, read (again, if a previous run left one), apply, clear.
    /// Records of an entity that keep failing for a reason retrying cannot fix are set aside
    /// after [`ATTEMPTS_BEFORE_SETTING_ASIDE`] attempts; any other failure keeps the whole
    /// lease for the next cycle.
    pub async fn cycle(&self) -> Result<CycleReport, EventsError> {
        let newly_bound = match self.bind_new().await {
            Ok(r) => r.bound,
            Err(e) => {
                // The queue still holds the other entities' changes: read it anyway.
                tracing::warn!(error = %e, "binding the events of new entities failed; retried next cycle");
                Vec::new()
            }
        };
        if !newly_bound.is_empty() {
            tracing::info!(events = ?newly_bound, "bound the events of entities added since the start");
        }
        let mut report = CycleReport {
            newly_bound,
            ..CycleReport::default()
        };
        let batch = self.lease(&mut report).await?;
        report.events = batch.events.len();
        report.full = batch.events.len() >= self.limit as usize;
        if batch.events.is_empty() {
            return Ok(report);
        }
        self.save_lease(&batch.process_id)?;
        let groups = by_entity(&batch.events);
        report.ignored_events = batch.events.len() - groups.values().map(Vec::len).sum::<usize>();
        let mut retry = None;
        for (entity, records) in groups {
            let notices: Vec<Notice> = records.iter().map(|(n, _)| n.clone()).collect();
            match self.sink.apply(&notices).await {
                Ok(a) => report.applied.add(&a),
                Err(e) if !e.keeps_failing() => return Err(e),
                Err(e) => {
                    if self.failed_again(&entity) < ATTEMPTS_BEFORE_SETTING_ASIDE {
                        tracing::warn!(%entity, error = %e, "event records failed; the lease is read again next cycle");
                        retry.get_or_insert(e);
                        continue;
                    }
                    let ids: Vec<String> = records.iter().map(|(_, m)| m.to_string()).collect();
                    queue::mark_error(&self.sink.client, &batch.process_id, &ids).await?;
                    tracing::error!(
                        %entity,
                        records = ids.len(),
                        error = %e,
                        "event records failed {ATTEMPTS_BEFORE_SETTING_ASIDE} times: set aside in the portal's queue (event.offline.get with error=1 lists them); this entity catches up at its scheduled load and reconcile. {}",
                        remedy(&e)
                    );
                    report.set_aside += ids.len();
                }
            }
        }
        if let Some(e) = retry {
            return Err(e);
        }
        // Only now: the changes are in ClickHouse.
        queue::clear(&self.sink.client, &batch.process_id).await?;
        self.forget_lease()?;
        locked(&self.failures).clear();
        Ok(report)
    }

    /// Counts one more failure of `entity`'s records in the current lease.
    fn failed_again(&self, entity: &str) -> u32 {
        let mut f = locked(&self.failures);
        let n = f.entry(entity.to_string()).or_default();
        *n += 1;
        *n
    }

    /// Runs forever: drains the queue, then waits between reads — `interval` while changes
    /// arrive, twice that once a read found the queue empty (a quiet portal costs half the
    /// reads; the first change after a quiet spell waits at most `2 × interval`). A failed
    /// cycle is logged and retried after `interval` (its lease is kept and read again).
    pub async fn run(&self, interval: Duration) {
        loop {
            let result = self.cycle().await;
            match &result {
                Ok(r) if r.events > 0 => tracing::info!(
                    events = r.events,
                    rows = r.applied.rows,
                    tombstones = r.applied.tombstones,
                    set_aside = r.set_aside,
                    "event batch applied"
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "event batch failed; it stays leased and is read again")
                }
            }
            tokio::time::sleep(next_wait(interval, &result)).await;
        }
    }
}

/// How long the feed waits after a cycle: not at all after a full lease (more records
/// wait), `2 × interval` after an empty read, `interval` otherwise.
pub fn next_wait(interval: Duration, last: &Result<CycleReport, EventsError>) -> Duration {
    match last {
        Ok(r) if r.full => Duration::ZERO,
        Ok(r) if r.events == 0 => interval * 2,
        _ => interval,
    }
}

/// The records of a lease that announce row changes, by entity, with their `MESSAGE_ID`.
fn by_entity(events: &[OfflineEvent]) -> BTreeMap<String, Vec<(Notice, &str)>> {
    let mut groups: BTreeMap<String, Vec<(Notice, &str)>> = BTreeMap::new();
    for e in events {
        if let Some(n) = classify(&e.name, &e.data) {
            groups
                .entry(n.entity.clone())
                .or_default()
                .push((n, e.message_id.as_str()));
        }
    }
    groups
}

fn remedy(e: &EventsError) -> &'static str {
    match e {
        EventsError::Pipeline(p) | EventsError::Sync(crate::sync::SyncError::Pipeline(p)) => {
            p.remedy()
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_feed_reads_at_once_after_a_full_lease_and_half_as_often_when_quiet() {
        let base = Duration::from_secs(5);
        let report = |events, full| {
            Ok(CycleReport {
                events,
                full,
                ..CycleReport::default()
            })
        };
        assert_eq!(next_wait(base, &report(1_000, true)), Duration::ZERO);
        assert_eq!(next_wait(base, &report(3, false)), base);
        assert_eq!(next_wait(base, &report(0, false)), 2 * base);
        let failed = Err(EventsError::Malformed("x".into()));
        assert_eq!(next_wait(base, &failed), base);
    }
}
