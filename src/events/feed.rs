//! The offline-event loop: bind what is new, lease a batch, remember the lease, apply it,
//! clear it.
//!
//! One request per read while changes trickle in: the clear of the lease applied last, the
//! next lease (`event.offline.get`) and the rows the recently changed entities modified since
//! the last read (`pipeline::changed`) go in one `batch`, in that order, halting at a failure.
//! Rows a lease names that those pages lack are fetched by ID after it. Reads come between
//! `poll_interval` and `max_delay` apart: every `max_delay` while changes trickle in, sooner
//! only when more than [`ROWS_PER_READ`] would pile up ([`next_wait`]).
pub use super::orphans::ORPHAN_CHECK_EVERY;
use super::orphans::OrphanWatch;
pub use super::pace::{APPLY_TIME_GUESS, Pace, ROWS_PER_READ};
use super::pace::{Activity, LastRead, MAX_PAGES, flow_per_sec, learned_apply, next_wait};
use super::queue::{self, BindReport, OfflineBatch, OfflineEvent};
use super::sink::{Applied, Mode, Prefetched, Sink};
use super::{ChangeKind, EventsError, Notice, classify};
use crate::bitrix::batch::{Batch, CommandOutcome, MAX_COMMANDS};
use crate::bitrix::listing::PAGE_SIZE;
use crate::pipeline::changed::ChangedRows;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Records leased per `event.offline.get` (the portal's default is 50; a larger lease lets one
/// fetch cover more rows).
pub const LEASE_LIMIT: u32 = 1_000;

/// Attempts at an entity's records of one lease, failing each time for a reason retrying
/// cannot fix ([`EventsError::keeps_failing`]), before they are set aside with
/// `event.offline.error` so that they stop holding up the queue.
pub const ATTEMPTS_BEFORE_SETTING_ASIDE: u32 = 3;

/// How long an entity's changed rows keep being read with the queue after its last change.
const ACTIVE_FOR: Duration = Duration::from_secs(300);

/// How far before the last read the changed-rows pages start: modification times have whole
/// seconds, and the portal's clock is estimated (a row they miss is fetched by ID).
const SINCE_LOOKBACK_SECS: i64 = 2;

const CLEAR: &str = "clear";
const READ: &str = "queue";

/// What one [`Feed::cycle`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CycleReport {
    pub events: usize,
    /// Records read again from a lease a previous run left (it stopped before clearing).
    pub resumed: bool,
    pub applied: Applied,
    /// Rows that came with the queue read (the rest of `applied.rows` were fetched by ID).
    pub rows_with_read: u64,
    /// Events that announce no row change of a loaded entity.
    pub ignored_events: usize,
    /// Records set aside as failed (`event.offline.error`); their entities catch up at their
    /// scheduled loads and reconciles.
    pub set_aside: usize,
    /// Event names bound in this cycle (entities the catalog gained).
    pub newly_bound: Vec<String>,
    /// A full lease: more records are probably waiting.
    pub full: bool,
    /// Time since the previous read (`None` at the first).
    pub since_last_read: Option<Duration>,
    /// The previous read's start (if any) and this one's, on the portal's clock (unix seconds;
    /// the clock its rows and records are stamped by). `None` where nothing was read.
    portal_window: Option<(Option<f64>, f64)>,
}

impl CycleReport {
    /// What the pace goes by.
    pub(super) fn last_read(&self) -> LastRead {
        LastRead {
            events: self.events,
            full: self.full,
            since_last_read: self.since_last_read,
        }
    }
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
    /// The lease applied last: its clear goes with the next read.
    applied: Mutex<Option<String>>,
    active: Mutex<BTreeMap<String, Activity>>,
    /// When the last read was sent: here, and on the portal's clock (unix seconds).
    last_read: Mutex<Option<(Instant, f64)>>,
    /// How long reads that brought changes took until those were in ClickHouse, lately (the
    /// longest, decaying): reads come this much sooner than `max_delay`.
    apply_time: Mutex<Duration>,
    /// Portal seconds between checks for leases nobody clears ([`ORPHAN_CHECK_EVERY`]).
    pub orphan_check: Duration,
    orphans: Mutex<OrphanWatch>,
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
            applied: Mutex::default(),
            active: Mutex::default(),
            last_read: Mutex::default(),
            apply_time: Mutex::new(APPLY_TIME_GUESS),
            orphan_check: ORPHAN_CHECK_EVERY,
            orphans: Mutex::default(),
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

    /// A lease a previous run (or a failed cycle) left uncleared and not applied since, if it
    /// still holds records.
    async fn left_lease(&self) -> Result<Option<OfflineBatch>, EventsError> {
        if locked(&self.applied).is_some() {
            return Ok(None);
        }
        let Some(pid) = self.saved_lease()? else {
            return Ok(None);
        };
        let b = queue::read(&self.sink.client, Some(&pid), self.limit).await?;
        if b.events.is_empty() {
            // Cleared before the crash, or nothing was leased.
            self.forget_lease()?;
            return Ok(None);
        }
        tracing::info!(
            events = b.events.len(),
            "resuming the event lease a previous run left"
        );
        Ok(Some(b))
    }

    /// A lease nobody clears, adopted (read again under its `process_id`): one the previous
    /// check saw too, not this feed's. It comes from a read whose answer was lost after the
    /// portal had leased the records (a dropped connection, a retried request, a process
    /// killed mid-request); the portal would never hand those records out again. The lease
    /// applied last is cleared first, so that one lease at a time is kept. A failed check is
    /// logged and tried again at the next one.
    async fn orphan_lease(&self) -> Result<Option<OfflineBatch>, EventsError> {
        let client = &self.sink.client;
        let now = client.governor().server_now();
        {
            let mut w = locked(&self.orphans);
            let first = w.next_check.is_none();
            if w.next_check.is_some_and(|due| now < due) {
                return Ok(None);
            }
            w.next_check = Some(now + self.orphan_check.as_secs_f64());
            if first {
                return Ok(None);
            }
        }
        let held = match queue::leases(client).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "could not list the event queue's leases (event.offline.list); checked again later");
                return Ok(None);
            }
        };
        let ours: Vec<String> = locked(&self.applied)
            .iter()
            .cloned()
            .chain(self.saved_lease()?)
            .collect();
        let Some(pid) = locked(&self.orphans).adopt(held, &ours) else {
            return Ok(None);
        };
        self.settle().await?;
        let b = queue::read(client, Some(&pid), self.limit).await?;
        if b.events.is_empty() {
            // Cleared since the check: nothing to adopt, read the queue as usual.
            return Ok(None);
        }
        tracing::warn!(
            events = b.events.len(),
            "adopting an event lease nobody cleared since the last check (a read whose answer was lost); its records are applied now"
        );
        Ok(Some(b))
    }

    /// One lease: bind what is new, read (again, if a previous run left one), apply. The
    /// lease is cleared with the next read, or by [`Self::settle`]. Records of an entity that
    /// keep failing for a reason retrying cannot fix are set aside after
    /// [`ATTEMPTS_BEFORE_SETTING_ASIDE`] attempts; any other failure keeps the whole lease for
    /// the next cycle.
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
        let left = match self.left_lease().await? {
            Some(b) => Some(b),
            None => self.orphan_lease().await?,
        };
        let (batch, prefetched) = match left {
            Some(b) => {
                report.resumed = true;
                (b, Prefetched::new())
            }
            None => self.read(&mut report).await?,
        };
        report.events = batch.events.len();
        report.full = batch.events.len() >= self.limit as usize;
        if batch.events.is_empty() {
            return Ok(report);
        }
        self.save_lease(&batch.process_id)?;
        let groups = by_entity(&batch.events);
        self.apply(&batch, &groups, &prefetched, &mut report)
            .await?;
        self.note_activity(&groups, report.portal_window);
        *locked(&self.applied) = Some(batch.process_id);
        locked(&self.failures).clear();
        Ok(report)
    }

    /// Clears the lease applied last now instead of with the next read (before stopping).
    pub async fn settle(&self) -> Result<(), EventsError> {
        let Some(pid) = locked(&self.applied).clone() else {
            return Ok(());
        };
        queue::clear(&self.sink.client, &pid).await?;
        *locked(&self.applied) = None;
        self.forget_lease()
    }

    /// One request: the clear of the lease applied last, a new lease, and the changed rows of
    /// the entities that changed lately.
    async fn read(
        &self,
        report: &mut CycleReport,
    ) -> Result<(OfflineBatch, Prefetched), EventsError> {
        let client = &self.sink.client;
        let clearing = locked(&self.applied).clone();
        let mut batch = Batch::new().halt(true);
        if let Some(pid) = &clearing {
            queue::push_clear(&mut batch, CLEAR, pid)?;
        }
        queue::push_read(&mut batch, READ, self.limit)?;
        let plans = self.plans(MAX_COMMANDS - batch.len());
        for (_, plan) in &plans {
            plan.push_into(&mut batch)?;
        }
        let sent_at = Instant::now();
        let mut resp = client.batch_raw(&batch).await?;
        // The portal's own start of this request (the estimate only where it does not say).
        let portal_time = resp
            .time
            .start
            .unwrap_or_else(|| client.governor().server_now());
        let sent = (sent_at, portal_time);
        let previous = *locked(&self.last_read);
        report.since_last_read = previous.map(|(at, _)| sent_at - at);
        report.portal_window = Some((previous.map(|(_, p)| p), portal_time));
        if clearing.is_some() {
            match resp.take(CLEAR) {
                CommandOutcome::Ok(_) => *locked(&self.applied) = None,
                CommandOutcome::Err(e) => return Err(e.into()),
                CommandOutcome::Missing => {
                    return Err(EventsError::Malformed(
                        "the batch answer lacks event.offline.clear".into(),
                    ));
                }
            }
        }
        let lease = match resp.take(READ) {
            CommandOutcome::Ok(r) => queue::parse_read(&r.result.to_value())?,
            CommandOutcome::Err(e) => return Err(e.into()),
            CommandOutcome::Missing => {
                return Err(EventsError::Malformed(
                    "the batch answer lacks event.offline.get".into(),
                ));
            }
        };
        *locked(&self.last_read) = Some(sent);
        if lease.events.is_empty() {
            self.forget_lease()?;
        }
        let mut prefetched = Prefetched::new();
        for (entity, plan) in plans {
            match plan.take(&mut resp) {
                Ok(read) => {
                    prefetched.insert(entity, read.rows);
                }
                Err(e) => {
                    tracing::warn!(%entity, error = %e, "the changed rows read with the queue are unusable; the rows the events name are fetched by ID")
                }
            }
        }
        Ok((lease, prefetched))
    }

    /// Changed-rows pages for the entities that changed lately, within `room` commands (push
    /// mode only: in pull mode ClickHouse reads the rows).
    fn plans(&self, room: usize) -> Vec<(String, ChangedRows)> {
        if self.sink.mode != Mode::Push {
            return Vec::new();
        }
        let Some((_, last_read)) = *locked(&self.last_read) else {
            return Vec::new();
        };
        // On the portal's clock, as estimated (its rows are modified by it).
        let elapsed = self.sink.client.governor().server_now() - last_read;
        let last_read = last_read.floor() as i64;
        let Some(since) = chrono::DateTime::from_timestamp(last_read - SINCE_LOOKBACK_SECS, 0)
        else {
            return Vec::new();
        };
        let active: Vec<(String, Activity)> = {
            let mut a = locked(&self.active);
            a.retain(|_, v| v.last.elapsed() < ACTIVE_FOR);
            a.iter().map(|(k, v)| (k.clone(), *v)).collect()
        };
        let catalog = (self.sink.catalog)();
        let mut room = room;
        let mut out = Vec::new();
        for (i, (entity, activity)) in active.into_iter().enumerate() {
            let Ok(Some(job)) = self.sink.job(&catalog, &entity) else {
                continue;
            };
            // Room for a flow that grew, and for rows read again within the lookback.
            let pages = ((activity.expected(elapsed) * 2.0) as usize)
                .div_ceil(PAGE_SIZE)
                .clamp(1, MAX_PAGES);
            let Some(plan) = ChangedRows::plan(job, since.fixed_offset(), pages, &format!("e{i}"))
            else {
                continue;
            };
            if plan.commands() > room {
                break;
            }
            room -= plan.commands();
            out.push((entity, plan));
        }
        out
    }

    /// Remembers which entities' rows the lease changed, how many, and how fast: over the
    /// time since their first record (a flow that began just before the read is not spread
    /// over the whole wait), or since the previous read where records carry no time.
    fn note_activity(&self, groups: &Groups<'_>, window: Option<(Option<f64>, f64)>) {
        let now = Instant::now();
        let mut active = locked(&self.active);
        for (entity, records) in groups {
            let upserts: Vec<(u64, Option<f64>)> = records
                .iter()
                .filter(|(n, _)| n.kind == ChangeKind::Upsert)
                .filter_map(|(n, e)| Some((n.id?, e.at)))
                .collect();
            let rows: BTreeSet<u64> = upserts.iter().map(|(id, _)| *id).collect();
            if rows.is_empty() {
                continue;
            }
            let first = upserts.iter().filter_map(|(_, at)| *at).reduce(f64::min);
            let per_sec = window.and_then(|w| flow_per_sec(rows.len(), first, w));
            active.insert(
                entity.clone(),
                Activity {
                    last: now,
                    rows: rows.len(),
                    per_sec,
                },
            );
        }
    }

    /// Applies a lease's records, entity by entity.
    async fn apply(
        &self,
        batch: &OfflineBatch,
        groups: &Groups<'_>,
        prefetched: &Prefetched,
        report: &mut CycleReport,
    ) -> Result<(), EventsError> {
        report.ignored_events = batch.events.len() - groups.values().map(Vec::len).sum::<usize>();
        let mut retry = None;
        for (entity, records) in groups {
            let notices: Vec<Notice> = records.iter().map(|(n, _)| n.clone()).collect();
            match self.sink.apply_with(&notices, prefetched).await {
                Ok(a) => {
                    report.rows_with_read += a.prefetched_rows;
                    report.applied.add(&a);
                }
                Err(e) if !e.keeps_failing() => return Err(e),
                Err(e) => {
                    if self.failed_again(entity) < ATTEMPTS_BEFORE_SETTING_ASIDE {
                        tracing::warn!(%entity, error = %e, "event records failed; the lease is read again next cycle");
                        retry.get_or_insert(e);
                        continue;
                    }
                    let ids: Vec<String> =
                        records.iter().map(|(_, e)| e.message_id.clone()).collect();
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
        match retry {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Counts one more failure of `entity`'s records in the current lease.
    fn failed_again(&self, entity: &str) -> u32 {
        let mut f = locked(&self.failures);
        let n = f.entry(entity.to_string()).or_default();
        *n += 1;
        *n
    }

    /// Runs forever: drains the queue, then waits between reads as [`next_wait`] says. A failed
    /// cycle is logged and retried after `pace.min` (its lease is kept and read again).
    pub async fn run(&self, pace: Pace) {
        loop {
            let started = Instant::now();
            let result = self.cycle().await;
            if matches!(&result, Ok(r) if r.events > 0) {
                self.timed_apply(started.elapsed());
            }
            match &result {
                Ok(r) if r.events > 0 => tracing::info!(
                    events = r.events,
                    rows = r.applied.rows,
                    rows_with_read = r.rows_with_read,
                    tombstones = r.applied.tombstones,
                    set_aside = r.set_aside,
                    "event batch applied"
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "event batch failed; it stays leased and is read again")
                }
            }
            let apply = *locked(&self.apply_time);
            let last = result.as_ref().ok().map(CycleReport::last_read);
            let wait = next_wait(pace, apply, last).saturating_sub(started.elapsed());
            tokio::time::sleep(wait).await;
        }
    }

    /// Learns how long a read that brought changes took until they were in ClickHouse.
    fn timed_apply(&self, took: Duration) {
        let mut t = locked(&self.apply_time);
        *t = learned_apply(*t, took);
    }
}

/// The records of a lease that announce row changes, by entity.
type Groups<'a> = BTreeMap<String, Vec<(Notice, &'a OfflineEvent)>>;

fn by_entity(events: &[OfflineEvent]) -> Groups<'_> {
    let mut groups = Groups::new();
    for e in events {
        if let Some(n) = classify(&e.name, &e.data) {
            groups.entry(n.entity.clone()).or_default().push((n, e));
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
