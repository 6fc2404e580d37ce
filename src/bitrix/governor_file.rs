//! A [`GovernorStore`] shared by every b24ch process of one portal: `serve`, `sync` and the
//! short-lived processes ClickHouse starts (`b24ch exec …`).
//!
//! The state is one JSON file in the state dir (`governor-<portal>.json`). Every
//! [`GovernorStore::update`] takes an exclusive `flock` on a sibling lock file, reads the
//! state, applies the change and writes it back (temp file + rename, so a crash never leaves a
//! torn file), then releases the lock. Admission decisions therefore see every other process's
//! requests: together they never exceed the portal's bucket or operating budget.
//!
//! Reservations (estimated cost of calls admitted but not answered yet) belong to a process.
//! The file records each process's share by pid and start time (a pid is reused by the
//! system; the pair is not); a process that died with calls in flight (killed by ClickHouse
//! after a timeout, say) has its share released by the next process that finds it gone, so a
//! crash never leaks budget.
//!
//! The lock is waited for at most [`LOCK_TIMEOUT`], on a thread the async runtime was told
//! blocks. When the file cannot be used (lock timeout, read-only dir, a failed write) the
//! store logs loudly, keeps working on the last state it read (not on a blank one, which
//! would forget the budget already spent) and tries the file again after [`RETRY_AFTER`].
use super::governor::{GovernorState, GovernorStore};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest a process waits for another's lock on the state file.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(5);
/// After a failure the file is tried again this much later (meanwhile: the last state read).
pub const RETRY_AFTER: Duration = Duration::from_secs(10);

/// Errors of the file-backed store (logged, never surfaced: the governor falls back).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("governor state {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("governor state {path}: another process held the lock for more than {waited:?}")]
    LockTimeout { path: String, waited: Duration },
}

/// What the file holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct FileContent {
    #[serde(default)]
    state: GovernorState,
    /// Reservations per process ([`owner_id`] → billing key → reserved cost).
    #[serde(default)]
    owners: BTreeMap<String, BTreeMap<String, f64>>,
}

/// The cross-process store.
pub struct FileStore {
    path: PathBuf,
    lock_path: PathBuf,
    /// This process in `owners`: pid and start time.
    me: String,
    lock_timeout: Duration,
    retry_after: Duration,
    /// The last state read from (or written to) the file; used while the file cannot be.
    last: Mutex<GovernorState>,
    /// Set while the file is unusable: when to try it again.
    retry_at: Mutex<Option<Instant>>,
}

impl FileStore {
    /// The store of one portal inside `state_dir` (created if missing). `portal` is any
    /// stable, secret-free name of the portal, e.g. its host.
    pub fn for_portal(state_dir: &Path, portal: &str) -> Self {
        let slug: String = portal
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Self::at(state_dir.join(format!("governor-{slug}.json")))
    }

    /// The store for the portal at `portal_url` (webhook or portal URL; only its host and
    /// port name the file, so no secret ends up in a file name).
    pub fn for_portal_url(state_dir: &Path, portal_url: &str) -> Option<Self> {
        let url = reqwest::Url::parse(portal_url).ok()?;
        let host = url.host_str()?;
        let name = match url.port_or_known_default() {
            Some(p) => format!("{host}_{p}"),
            None => host.to_string(),
        };
        Some(Self::for_portal(state_dir, &name))
    }

    /// A store at an explicit path (`<path>.lock` is the lock file).
    pub fn at(path: PathBuf) -> Self {
        let mut lock = path.clone().into_os_string();
        lock.push(".lock");
        Self {
            path,
            lock_path: PathBuf::from(lock),
            me: owner_id(std::process::id()),
            lock_timeout: LOCK_TIMEOUT,
            retry_after: RETRY_AFTER,
            last: Mutex::new(GovernorState::default()),
            retry_at: Mutex::new(None),
        }
    }

    /// Other limits for the lock wait and the retry after a failure (tests).
    pub fn with_timeouts(mut self, lock_timeout: Duration, retry_after: Duration) -> Self {
        self.lock_timeout = lock_timeout;
        self.retry_after = retry_after;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Opens and exclusively locks the lock file, waiting at most `lock_timeout`; the lock
    /// is released when the file is dropped.
    fn lock(&self) -> Result<File, StoreError> {
        if let Some(dir) = self.path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&self.lock_path)
            .map_err(|e| self.io(e))?;
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(TryLockError::WouldBlock) if started.elapsed() < self.lock_timeout => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(StoreError::LockTimeout {
                        path: self.path.display().to_string(),
                        waited: self.lock_timeout,
                    });
                }
                Err(TryLockError::Error(e)) => return Err(self.io(e)),
            }
        }
    }

    fn load(&self) -> Result<FileContent, StoreError> {
        let mut text = String::new();
        match File::open(&self.path) {
            Ok(mut f) => {
                f.read_to_string(&mut text).map_err(|e| self.io(e))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileContent::default()),
            Err(e) => return Err(self.io(e)),
        }
        if text.trim().is_empty() {
            return Ok(FileContent::default());
        }
        Ok(serde_json::from_str(&text).unwrap_or_else(|e| {
            tracing::warn!(path = %self.path.display(), error = %e, "governor state file unreadable; starting afresh");
            FileContent::default()
        }))
    }

    fn save(&self, content: &FileContent) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(content)
            .map_err(|e| self.io(std::io::Error::other(e.to_string())))?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(format!(".tmp{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let mut f = File::create(&tmp).map_err(|e| self.io(e))?;
        f.write_all(&bytes).map_err(|e| self.io(e))?;
        drop(f);
        std::fs::rename(&tmp, &self.path).map_err(|e| self.io(e))
    }

    fn try_update(&self, f: &mut dyn FnMut(&mut GovernorState)) -> Result<(), StoreError> {
        let _lock = self.lock()?;
        let mut content = self.load()?;
        release_dead_owners(&mut content, &self.me);
        let before = reserved_by_key(&content.state);
        f(&mut content.state);
        let after = reserved_by_key(&content.state);
        // Attribute the change of each key's reservation to this process.
        let mine = content.owners.entry(self.me.clone()).or_default();
        for key in before.keys().chain(after.keys()) {
            let delta =
                after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0);
            if delta != 0.0 {
                let v = mine.entry(key.clone()).or_insert(0.0);
                *v = (*v + delta).max(0.0);
            }
        }
        mine.retain(|_, v| *v > 1e-9);
        if mine.is_empty() {
            content.owners.remove(&self.me);
        }
        // Kept before the write: if the write fails, this is the state to go on with.
        *lock_ignoring_poison(&self.last) = content.state.clone();
        self.save(&content)
    }

    /// Whether the file is being skipped after a failure (and it is not time to retry yet).
    fn skipping(&self) -> bool {
        let mut retry = lock_ignoring_poison(&self.retry_at);
        match *retry {
            Some(at) if Instant::now() < at => true,
            Some(_) => {
                *retry = None;
                false
            }
            None => false,
        }
    }

    fn failed(&self, e: &StoreError) {
        let mut retry = lock_ignoring_poison(&self.retry_at);
        if retry.is_none() {
            tracing::error!(error = %e, retry_in_secs = self.retry_after.as_secs(), "governor state cannot be shared through the state dir; this process goes on with the last state it read and tries again");
        }
        *retry = Some(Instant::now() + self.retry_after);
    }
}

fn lock_ignoring_poison<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs blocking file work: on a multi-threaded runtime the runtime is told this thread
/// blocks (its other tasks move on); elsewhere it just runs.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

fn reserved_by_key(s: &GovernorState) -> BTreeMap<String, f64> {
    s.methods
        .iter()
        .filter(|(_, m)| m.reserved != 0.0)
        .map(|(k, m)| (k.clone(), m.reserved))
        .collect()
}

/// A process as `owners` names it: `pid:start` (start time in clock ticks after boot, from
/// `/proc`), or just `pid` where the start time cannot be read.
fn owner_id(pid: u32) -> String {
    match start_time(pid) {
        Some(start) => format!("{pid}:{start}"),
        None => pid.to_string(),
    }
}

/// Field 22 of `/proc/<pid>/stat` (after the parenthesised command name, which may hold
/// spaces): when the process started. `None` off Linux or when the process is gone.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(pid, 0) only checks that the process exists; it sends nothing.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Whether the process an `owners` key names still runs: same pid, and where known the same
/// start time (else the pid now belongs to another process and the share is released).
fn owner_alive(owner: &str) -> bool {
    let (pid, start) = match owner.split_once(':') {
        Some((p, s)) => (p.parse::<u32>().ok(), s.parse::<u64>().ok()),
        None => (owner.parse::<u32>().ok(), None),
    };
    let Some(pid) = pid else {
        return false;
    };
    match (start, start_time(pid)) {
        (Some(want), Some(have)) => want == have,
        _ => pid_alive(pid),
    }
}

/// Gives back the reservations of processes that are gone.
fn release_dead_owners(content: &mut FileContent, me: &str) {
    let dead: Vec<String> = content
        .owners
        .keys()
        .filter(|o| o.as_str() != me && !owner_alive(o))
        .cloned()
        .collect();
    for owner in dead {
        if let Some(keys) = content.owners.remove(&owner) {
            for (key, amount) in keys {
                if let Some(m) = content.state.methods.get_mut(&key) {
                    m.reserved = (m.reserved - amount).max(0.0);
                }
            }
        }
    }
}

impl GovernorStore for FileStore {
    fn update(&self, f: &mut dyn FnMut(&mut GovernorState)) {
        if self.skipping() {
            return f(&mut lock_ignoring_poison(&self.last));
        }
        // `f` must run exactly once: remember whether the file path got to run it.
        let mut ran = false;
        let result = blocking(|| {
            self.try_update(&mut |s| {
                ran = true;
                f(s)
            })
        });
        if let Err(e) = result {
            self.failed(&e);
            if !ran {
                f(&mut lock_ignoring_poison(&self.last));
            }
        }
    }

    fn read(&self) -> GovernorState {
        if self.skipping() {
            return lock_ignoring_poison(&self.last).clone();
        }
        match blocking(|| self.lock().and_then(|_lock| self.load())) {
            Ok(c) => {
                *lock_ignoring_poison(&self.last) = c.state.clone();
                c.state
            }
            Err(e) => {
                self.failed(&e);
                lock_ignoring_poison(&self.last).clone()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_survives_between_stores_and_dead_owners_release_their_reservations() {
        let dir = tempfile::tempdir().unwrap();
        let a = FileStore::for_portal(dir.path(), "portal.example:443");
        a.update(&mut |s| {
            s.bucket_level = 7.0;
            s.methods
                .entry("crm.deal.list".into())
                .or_default()
                .reserved = 3.0;
        });
        let b = FileStore::for_portal(dir.path(), "portal.example:443");
        assert_eq!(b.read().bucket_level, 7.0);
        // Pretend the reservation belongs to a process that is gone.
        {
            let _l = a.lock().unwrap();
            let mut c = a.load().unwrap();
            let share = c.owners.remove(&a.me).unwrap();
            c.owners.insert((u32::MAX - 1).to_string(), share);
            a.save(&c).unwrap();
        }
        b.update(&mut |_| {});
        let s = b.read();
        assert_eq!(s.methods["crm.deal.list"].reserved, 0.0);
        assert_eq!(s.bucket_level, 7.0);
    }

    #[test]
    fn an_unusable_dir_falls_back_to_memory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let s = FileStore::for_portal(&file, "p");
        let mut runs = 0;
        s.update(&mut |st| {
            runs += 1;
            st.bucket_level = 2.0;
        });
        assert_eq!(runs, 1);
        assert_eq!(s.read().bucket_level, 2.0);
    }

    #[test]
    fn a_reused_pid_does_not_keep_a_dead_process_share() {
        let dir = tempfile::tempdir().unwrap();
        let a = FileStore::for_portal(dir.path(), "p");
        a.update(&mut |s| {
            s.methods.entry("batch".into()).or_default().reserved = 4.0;
        });
        let start = start_time(std::process::id()).expect("/proc is readable here");
        {
            let _l = a.lock().unwrap();
            let mut c = a.load().unwrap();
            let share = c.owners.remove(&a.me).unwrap();
            // Same pid as this (living) process, but another start: a process that is gone.
            c.owners
                .insert(format!("{}:{}", std::process::id(), start + 1), share);
            a.save(&c).unwrap();
        }
        let b = FileStore::for_portal(dir.path(), "p");
        b.update(&mut |_| {});
        assert_eq!(b.read().methods["batch"].reserved, 0.0);
        assert!(owner_alive(&a.me));
        assert!(!owner_alive(&format!(
            "{}:{}",
            std::process::id(),
            start + 1
        )));
    }

    #[test]
    fn a_held_lock_times_out_and_the_last_state_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileStore::for_portal(dir.path(), "p")
            .with_timeouts(Duration::from_millis(20), Duration::ZERO);
        s.update(&mut |st| st.bucket_level = 7.0);
        // Another process holds the lock and never lets go.
        let holder = File::options().write(true).open(&s.lock_path).unwrap();
        holder.lock().unwrap();
        let mut runs = 0;
        s.update(&mut |st| {
            runs += 1;
            st.bucket_level += 1.0;
        });
        assert_eq!(runs, 1);
        // Not a blank state: the budget already spent is remembered.
        assert_eq!(s.read().bucket_level, 8.0);
        // Once the lock is free, the file is used again.
        drop(holder);
        s.update(&mut |st| st.bucket_level += 1.0);
        let other = FileStore::for_portal(dir.path(), "p");
        assert_eq!(other.read().bucket_level, 8.0);
    }

    #[test]
    fn a_failed_write_keeps_the_last_state() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileStore::for_portal(dir.path(), "p").with_timeouts(LOCK_TIMEOUT, RETRY_AFTER);
        s.update(&mut |st| st.bucket_level = 5.0);
        // The state file turns into something that can be neither read nor replaced.
        std::fs::remove_file(s.path()).unwrap();
        std::fs::create_dir(s.path()).unwrap();
        std::fs::write(s.path().join("x"), b"x").unwrap();
        s.update(&mut |st| st.bucket_level += 1.0);
        assert_eq!(s.read().bucket_level, 6.0);
    }
}
