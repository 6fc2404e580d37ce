//! The offline-event loop: lease a batch, remember the lease, apply it, clear it.
use super::queue::{self, OfflineBatch};
use super::sink::{Applied, Sink};
use super::{EventsError, Notice, classify};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Records leased per `event.offline.get` (the portal's default is 50; a larger lease lets one
/// fetch cover more rows).
pub const LEASE_LIMIT: u32 = 1_000;

/// What one [`Feed::cycle`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    pub events: usize,
    /// Records read again from a lease a previous run left (it stopped before clearing).
    pub resumed: bool,
    pub applied: Applied,
    /// Events that announce no row change of a loaded entity.
    pub ignored_events: usize,
    /// A full lease: more records are probably waiting.
    pub full: bool,
}

pub struct Feed {
    pub sink: Arc<Sink>,
    /// Where the current lease's `process_id` is kept until the lease is cleared.
    lease_file: PathBuf,
    pub limit: u32,
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

    /// One lease: read (again, if a previous run left one), apply, clear.
    pub async fn cycle(&self) -> Result<CycleReport, EventsError> {
        let client = &self.sink.client;
        let saved = self.saved_lease()?;
        let mut report = CycleReport::default();
        let batch: OfflineBatch = match &saved {
            Some(pid) => {
                let b = queue::read(client, Some(pid), self.limit).await?;
                if b.events.is_empty() {
                    // Cleared before the crash, or nothing was leased: start afresh.
                    self.forget_lease()?;
                    queue::read(client, None, self.limit).await?
                } else {
                    tracing::info!(
                        events = b.events.len(),
                        "resuming the event lease a previous run left"
                    );
                    report.resumed = true;
                    b
                }
            }
            None => queue::read(client, None, self.limit).await?,
        };
        report.events = batch.events.len();
        report.full = batch.events.len() >= self.limit as usize;
        if batch.events.is_empty() {
            return Ok(report);
        }
        self.save_lease(&batch.process_id)?;
        let notices: Vec<Notice> = batch
            .events
            .iter()
            .filter_map(|e| classify(&e.name, &e.data))
            .collect();
        report.ignored_events = batch.events.len() - notices.len();
        report.applied = self.sink.apply(&notices).await?;
        // Only now: the changes are in ClickHouse.
        queue::clear(client, &batch.process_id).await?;
        self.forget_lease()?;
        Ok(report)
    }

    /// Runs forever: drains the queue, then waits `interval` between reads. A failed cycle is
    /// logged and retried after `interval` (its lease is kept and read again).
    pub async fn run(&self, interval: Duration) {
        loop {
            match self.cycle().await {
                Ok(r) if r.full => continue,
                Ok(r) => {
                    if r.events > 0 {
                        tracing::info!(
                            events = r.events,
                            rows = r.applied.rows,
                            tombstones = r.applied.tombstones,
                            "event batch applied"
                        );
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "event batch failed; it stays leased and is read again")
                }
            }
            tokio::time::sleep(interval).await;
        }
    }
}
