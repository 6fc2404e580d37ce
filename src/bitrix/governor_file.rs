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
//! The file records each process's share by pid; a process that died with calls in flight
//! (killed by ClickHouse after a timeout, say) has its share released by the next process
//! that finds it gone, so a crash never leaks budget.
//!
//! When the file cannot be used (read-only dir, bad permissions) the store logs once and
//! falls back to process-local state: the governor still works, just not across processes.
use super::governor::{GovernorState, GovernorStore, MemoryStore};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Errors of the file-backed store (logged, never surfaced: the governor falls back).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("governor state {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// What the file holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct FileContent {
    #[serde(default)]
    state: GovernorState,
    /// Reservations per process (pid → billing key → reserved cost).
    #[serde(default)]
    owners: BTreeMap<u32, BTreeMap<String, f64>>,
}

/// The cross-process store.
pub struct FileStore {
    path: PathBuf,
    lock_path: PathBuf,
    pid: u32,
    fallback: MemoryStore,
    failed: AtomicBool,
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
            pid: std::process::id(),
            fallback: MemoryStore::default(),
            failed: AtomicBool::new(false),
        }
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

    /// Opens and exclusively locks the lock file; the lock is released when it is dropped.
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
        loop {
            // SAFETY: flock on a file descriptor we own; it touches no memory.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                return Ok(file);
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(self.io(err));
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
        tmp.push(format!(".tmp{}", self.pid));
        let tmp = PathBuf::from(tmp);
        let mut f = File::create(&tmp).map_err(|e| self.io(e))?;
        f.write_all(&bytes).map_err(|e| self.io(e))?;
        drop(f);
        std::fs::rename(&tmp, &self.path).map_err(|e| self.io(e))
    }

    fn try_update(&self, f: &mut dyn FnMut(&mut GovernorState)) -> Result<(), StoreError> {
        let _lock = self.lock()?;
        let mut content = self.load()?;
        release_dead_owners(&mut content, self.pid);
        let before = reserved_by_key(&content.state);
        f(&mut content.state);
        let after = reserved_by_key(&content.state);
        // Attribute the change of each key's reservation to this process.
        let mine = content.owners.entry(self.pid).or_default();
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
            content.owners.remove(&self.pid);
        }
        self.save(&content)
    }

    fn fall_back(&self, e: &StoreError) {
        if !self.failed.swap(true, Ordering::Relaxed) {
            tracing::error!(error = %e, "governor state cannot be shared through the state dir; this process keeps its own budget");
        }
    }
}

fn reserved_by_key(s: &GovernorState) -> BTreeMap<String, f64> {
    s.methods
        .iter()
        .filter(|(_, m)| m.reserved != 0.0)
        .map(|(k, m)| (k.clone(), m.reserved))
        .collect()
}

fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(pid, 0) only checks that the process exists; it sends nothing.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Gives back the reservations of processes that are gone.
fn release_dead_owners(content: &mut FileContent, me: u32) {
    let dead: Vec<u32> = content
        .owners
        .keys()
        .copied()
        .filter(|p| *p != me && !pid_alive(*p))
        .collect();
    for pid in dead {
        if let Some(keys) = content.owners.remove(&pid) {
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
        if self.failed.load(Ordering::Relaxed) {
            return self.fallback.update(f);
        }
        // `f` must run exactly once: remember whether the file path got to run it.
        let mut ran = false;
        let result = self.try_update(&mut |s| {
            ran = true;
            f(s)
        });
        if let Err(e) = result {
            self.fall_back(&e);
            if !ran {
                self.fallback.update(f);
            }
        }
    }

    fn read(&self) -> GovernorState {
        if self.failed.load(Ordering::Relaxed) {
            return self.fallback.read();
        }
        let loaded = self.lock().and_then(|_lock| self.load());
        match loaded {
            Ok(c) => c.state,
            Err(e) => {
                self.fall_back(&e);
                self.fallback.read()
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
            let share = c.owners.remove(&a.pid).unwrap();
            c.owners.insert(u32::MAX - 1, share);
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
}
