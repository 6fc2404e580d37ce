//! One governor per portal, shared (behind an `Arc`) by every concurrent use in the process.
//!
//! It keeps b24ch under both Bitrix24 limits (`docs/bitrix24-api.md` §4; batch billing §3):
//! - the request **leaky bucket** (503 `QUERY_LIMIT_EXCEEDED`), admitted in FIFO order so
//!   concurrent listings share it fairly;
//! - the per-method **operating budget** (429 `OPERATION_TIME_LIMIT`), learned from the
//!   `time.operating` / `operating_reset_at` figures of every response and batch sub-result.
//!   Budgets are kept per *billing key*: the method of a plain call, and for a batch both
//!   `batch` and every nested method. Whichever key the portal actually bills grows, the other
//!   stays flat, so the governor is right under per-method billing (docs) and whole-batch
//!   billing (field measurement) without assuming either.
//! - Costs are estimated **per command**: a request reserves `estimate × commands` on each key
//!   (a plain call is one command of its method; a batch is every nested command on `batch` and
//!   its count of each nested method). A 4-page batch therefore teaches what a 50-page one will
//!   cost, whatever their order.
//!
//! Time is the portal's clock (anchored on `time.finish`, advanced by the local monotonic clock
//! times `clock_scale`), so `operating_reset_at` is comparable and an emulator running faster
//! than real time is followed. State lives behind [`GovernorStore`] so a cross-process store
//! (file + flock in the state dir) can replace the in-memory one.
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};

/// Limits to keep under. Rates and windows are in portal seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct GovernorConfig {
    /// Bucket drain rate; `None` = no request-rate limit (on-premise).
    pub rate_per_sec: Option<f64>,
    pub burst: f64,
    /// Operating budget per method and window; `None` = not enforced (on-premise default).
    pub operating_limit_secs: Option<f64>,
    pub window_secs: f64,
    /// Fraction of each limit kept free as a safety margin.
    pub safety: f64,
    /// Portal seconds per local second: 1 for a real portal, the emulator's `time_scale` in tests.
    pub clock_scale: f64,
    pub max_concurrent: usize,
    /// Attempts per call before a retryable error becomes final.
    pub max_attempts: u32,
}

impl GovernorConfig {
    /// Cloud plans below Enterprise: 2 req/s, burst 50, 480 s per 10 min.
    pub fn standard() -> Self {
        Self {
            rate_per_sec: Some(2.0),
            burst: 50.0,
            operating_limit_secs: Some(480.0),
            window_secs: 600.0,
            safety: 0.1,
            clock_scale: 1.0,
            max_concurrent: 4,
            max_attempts: 8,
        }
    }

    /// Enterprise: 5 req/s, burst 250.
    pub fn enterprise() -> Self {
        Self {
            rate_per_sec: Some(5.0),
            burst: 250.0,
            ..Self::standard()
        }
    }

    /// Self-hosted: no limits unless configured.
    pub fn on_premise() -> Self {
        Self {
            rate_per_sec: None,
            operating_limit_secs: None,
            ..Self::standard()
        }
    }

    /// From the validated `[limits]` section.
    pub fn from_limits(limits: &crate::config::LimitsConfig) -> Self {
        use crate::config::Plan;
        let base = match limits.plan {
            Plan::Standard => Self::standard(),
            Plan::Enterprise => Self::enterprise(),
            Plan::OnPremise => Self::on_premise(),
        };
        Self {
            rate_per_sec: limits.requests_per_second,
            burst: limits.burst,
            operating_limit_secs: limits.operating_seconds_per_10min,
            max_concurrent: limits.max_concurrent_requests.max(1) as usize,
            ..base
        }
    }

    fn bucket_capacity(&self) -> f64 {
        (self.burst * (1.0 - self.safety)).floor().max(1.0)
    }

    fn drain_rate(&self) -> Option<f64> {
        self.rate_per_sec.map(|r| r * (1.0 - self.safety / 2.0))
    }
}

/// How the portal appears to bill `batch` calls, inferred from the figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchBilling {
    #[default]
    Unknown,
    /// Nested calls grow their own methods' figures (docs, server source).
    PerMethod,
    /// The outer `batch` figure grows; sub-results repeat it (field measurement).
    WholeBatch,
}

/// Budget state of one billing key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MethodState {
    /// Last `operating` figure the portal reported (accumulated over its window).
    pub used: f64,
    pub reset_at: Option<f64>,
    /// Estimated cost of calls admitted but not answered yet.
    pub reserved: f64,
    /// Estimated cost of one command billed to this key: rises at once to a dearer command
    /// seen (under-reserving risks a 429 that blocks the method), decays slowly otherwise.
    /// (Not `estimate`: state files written when that meant one whole call are not reused.)
    #[serde(default)]
    pub estimate_per_command: f64,
    /// Set after a 429: no call before this portal time.
    pub blocked_until: Option<f64>,
    pub calls: u64,
    pub waits: u64,
    /// Local model of the portal's one-minute baskets `(minute, seconds)`, calibrated by every
    /// reported figure: tells how much of the window is still in force at any moment, which the
    /// single `operating_reset_at` (oldest basket only) cannot.
    #[serde(default)]
    pub baskets: Vec<(i64, f64)>,
}

impl MethodState {
    /// Drops baskets that left the window and returns what is still billed.
    fn in_window(&mut self, now: f64, window_secs: f64) -> f64 {
        let n = (window_secs / 60.0).max(1.0) as i64;
        let cur = (now / 60.0).floor() as i64;
        self.baskets.retain(|(minute, _)| *minute > cur - n);
        self.baskets.iter().map(|(_, s)| s).sum()
    }

    /// When the oldest basket leaves the window.
    fn next_expiry(&self, window_secs: f64) -> Option<f64> {
        let n = (window_secs / 60.0).max(1.0) as i64;
        self.baskets
            .first()
            .map(|(m, _)| ((m + n) * 60) as f64 + 0.01)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Counters {
    pub requests: u64,
    pub bucket_waits: u64,
    pub bucket_wait_secs: f64,
    pub operating_waits: u64,
    pub operating_wait_secs: f64,
    pub retries: u64,
    pub http_503: u64,
    pub http_429: u64,
}

/// Everything the governor knows; serializable so a file-backed store can share it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GovernorState {
    pub bucket_level: f64,
    /// Portal time of `bucket_level`.
    pub bucket_at: f64,
    pub methods: BTreeMap<String, MethodState>,
    pub counters: Counters,
    pub billing: BatchBilling,
}

/// Where the state lives. Every change is one `update` so a cross-process implementation can
/// hold a file lock around read-modify-write.
pub trait GovernorStore: Send + Sync {
    fn update(&self, f: &mut dyn FnMut(&mut GovernorState));
    fn read(&self) -> GovernorState;
}

/// The in-process store.
#[derive(Default)]
pub struct MemoryStore(StdMutex<GovernorState>);

impl GovernorStore for MemoryStore {
    fn update(&self, f: &mut dyn FnMut(&mut GovernorState)) {
        // A poisoned lock only means another thread panicked mid-update; the numbers are
        // still the best we have.
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g);
    }

    fn read(&self) -> GovernorState {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A stored bucket time further ahead of this process's clock than this is from another
/// clock (a state file left by an emulator running faster than real time): it is reset.
const STALE_CLOCK_SECS: f64 = 60.0;

/// Runs `f` on the state and returns its result.
fn with_state<R>(store: &dyn GovernorStore, mut f: impl FnMut(&mut GovernorState) -> R) -> R {
    let mut out = None;
    store.update(&mut |s| out = Some(f(s)));
    // `update` always calls the closure exactly once.
    out.unwrap_or_else(|| unreachable!("GovernorStore::update did not run the closure"))
}

/// The portal's clock as seen from here.
struct ServerClock {
    scale: f64,
    anchor: StdMutex<(Instant, f64)>,
}

impl ServerClock {
    fn new(scale: f64) -> Self {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Self {
            scale,
            anchor: StdMutex::new((Instant::now(), unix)),
        }
    }

    fn now(&self) -> f64 {
        let (at, server) = *self.anchor.lock().unwrap_or_else(|p| p.into_inner());
        server + at.elapsed().as_secs_f64() * self.scale
    }

    fn observe(&self, server_time: f64) {
        if server_time.is_finite() && server_time > 0.0 {
            *self.anchor.lock().unwrap_or_else(|p| p.into_inner()) = (Instant::now(), server_time);
        }
    }

    fn local(&self, server_secs: f64) -> Duration {
        Duration::from_secs_f64((server_secs / self.scale).clamp(0.0, 3600.0))
    }
}

/// Observable state for the meta endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct GovernorSnapshot {
    pub bucket_level: f64,
    pub bucket_capacity: f64,
    pub rate_per_sec: Option<f64>,
    pub operating_limit_secs: Option<f64>,
    pub billing: BatchBilling,
    pub methods: Vec<MethodBudget>,
    pub counters: Counters,
}

#[derive(Debug, Clone, Serialize)]
pub struct MethodBudget {
    pub key: String,
    pub used: f64,
    pub left: Option<f64>,
    pub estimate_per_command: f64,
    pub reset_at: Option<f64>,
    pub blocked_until: Option<f64>,
    pub calls: u64,
    pub waits: u64,
}

/// One operating figure reported by the portal for a billing key.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub key: String,
    /// The highest (latest) accumulated figure of the answer for this key.
    pub operating: f64,
    pub reset_at: Option<f64>,
    /// Share of the key's growth taken by its dearest command (`1 / commands` when the answer
    /// does not say how the cost splits).
    pub peak_share: f64,
}

impl Observation {
    /// The figure of a plain call: one command.
    pub fn single(key: impl Into<String>, operating: f64, reset_at: Option<f64>) -> Self {
        Self {
            key: key.into(),
            operating,
            reset_at,
            peak_share: 1.0,
        }
    }
}

/// A billing key a request is charged to and how many of its commands the request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Billed {
    pub key: String,
    pub commands: u32,
}

impl Billed {
    pub fn new(key: impl Into<String>, commands: u32) -> Self {
        Self {
            key: key.into(),
            commands: commands.max(1),
        }
    }
}

pub struct Governor {
    cfg: GovernorConfig,
    store: Box<dyn GovernorStore>,
    clock: ServerClock,
    /// FIFO admission to the bucket: tokio's mutex grants the lock in request order.
    admission: Mutex<()>,
    /// FIFO per billing key, so waiters for one method's budget are served in order.
    key_queues: StdMutex<HashMap<String, Arc<Mutex<()>>>>,
    inflight: Arc<Semaphore>,
}

/// Admission of one HTTP request; releases its budget reservations when dropped.
pub struct Permit {
    governor: Arc<Governor>,
    reservations: Vec<(String, f64)>,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let res = std::mem::take(&mut self.reservations);
        self.governor.store.update(&mut |s| {
            for (k, est) in &res {
                if let Some(m) = s.methods.get_mut(k) {
                    m.reserved = (m.reserved - est).max(0.0);
                }
            }
        });
    }
}

enum Decision {
    Go(f64),
    WaitUntil(f64),
}

impl Governor {
    pub fn new(cfg: GovernorConfig) -> Arc<Self> {
        Self::with_store(cfg, Box::<MemoryStore>::default())
    }

    pub fn with_store(cfg: GovernorConfig, store: Box<dyn GovernorStore>) -> Arc<Self> {
        let clock = ServerClock::new(cfg.clock_scale.max(1e-6));
        let inflight = Arc::new(Semaphore::new(cfg.max_concurrent.max(1)));
        Arc::new(Self {
            cfg,
            store,
            clock,
            admission: Mutex::new(()),
            key_queues: StdMutex::new(HashMap::new()),
            inflight,
        })
    }

    pub fn config(&self) -> &GovernorConfig {
        &self.cfg
    }

    /// Current portal time (unix seconds on the portal's clock).
    pub fn server_now(&self) -> f64 {
        self.clock.now()
    }

    /// Waits until a request billed to `billed` may be sent: each key's operating budget
    /// (for its number of commands), a concurrency slot, then the request bucket.
    pub async fn acquire(self: &Arc<Self>, billed: &[Billed]) -> Permit {
        // Sorted and merged, so concurrent requests take the key queues in one order.
        let mut keys: BTreeMap<&str, u32> = BTreeMap::new();
        for b in billed {
            *keys.entry(b.key.as_str()).or_default() += b.commands.max(1);
        }
        let mut reservations = Vec::with_capacity(keys.len());
        for (key, commands) in keys {
            let queue = self.key_queue(key);
            let _turn = queue.lock().await;
            let reserved = self.wait_operating(key, commands).await;
            reservations.push((key.to_string(), reserved));
        }
        // The semaphore is never closed, so acquiring cannot fail; fall back to a fresh one.
        let slot = match self.inflight.clone().acquire_owned().await {
            Ok(p) => p,
            Err(_) => match Arc::new(Semaphore::new(1)).acquire_owned().await {
                Ok(p) => p,
                Err(_) => unreachable!("a fresh semaphore is open"),
            },
        };
        self.wait_bucket().await;
        Permit {
            governor: self.clone(),
            reservations,
            _slot: slot,
        }
    }

    fn key_queue(&self, key: &str) -> Arc<Mutex<()>> {
        let mut q = self.key_queues.lock().unwrap_or_else(|p| p.into_inner());
        q.entry(key.to_string()).or_default().clone()
    }

    async fn wait_operating(&self, key: &str, commands: u32) -> f64 {
        let started = self.clock.now();
        let mut waited = false;
        loop {
            let now = self.clock.now();
            let decision = with_state(self.store.as_ref(), |s| self.decide(s, key, commands, now));
            match decision {
                Decision::Go(est) => {
                    if waited {
                        let secs = self.clock.now() - started;
                        self.store.update(&mut |s| {
                            s.counters.operating_waits += 1;
                            s.counters.operating_wait_secs += secs;
                            s.methods.entry(key.to_string()).or_default().waits += 1;
                        });
                        tracing::info!(key, waited_secs = secs, "operating budget wait over");
                    }
                    return est;
                }
                Decision::WaitUntil(t) => {
                    if !waited {
                        tracing::info!(key, until = t, "pausing method: operating budget");
                    }
                    waited = true;
                    tokio::time::sleep(self.clock.local(t - now)).await;
                }
            }
        }
    }

    /// Whether a request carrying `commands` commands billed to `key` may go now (reserving
    /// their estimated cost), or until when to wait.
    fn decide(&self, s: &mut GovernorState, key: &str, commands: u32, now: f64) -> Decision {
        let basket = self.cfg.window_secs / 10.0;
        let m = s.methods.entry(key.to_string()).or_default();
        if let Some(until) = m.blocked_until {
            if until > now {
                return Decision::WaitUntil(until);
            }
            m.blocked_until = None;
        }
        let Some(limit) = self.cfg.operating_limit_secs else {
            return Decision::Go(0.0);
        };
        let budget = limit * (1.0 - self.cfg.safety);
        // Capped at the budget: a request estimated above it still goes once the window is
        // empty, instead of waiting forever.
        let need = (m.estimate_per_command * f64::from(commands)).min(budget);
        let used = m.in_window(now, self.cfg.window_secs);
        if used + m.reserved + need <= budget {
            m.reserved += need;
            m.calls += 1;
            return Decision::Go(need);
        }
        let next = m
            .next_expiry(self.cfg.window_secs)
            .or(m.reset_at.filter(|r| *r > now))
            .unwrap_or(now + basket);
        Decision::WaitUntil(next.max(now + 0.01))
    }

    async fn wait_bucket(&self) {
        let (Some(rate), cap) = (self.cfg.drain_rate(), self.cfg.bucket_capacity()) else {
            self.store.update(&mut |s| s.counters.requests += 1);
            return;
        };
        let _turn = self.admission.lock().await;
        loop {
            let now = self.clock.now();
            let wait = with_state(self.store.as_ref(), |s| {
                // A shared store may hold a time from a process whose clock runs slightly
                // ahead: never move the bucket's time backwards (that would drain it twice),
                // unless it is absurdly ahead (a stale file from another clock).
                if s.bucket_at > now + STALE_CLOCK_SECS {
                    s.bucket_at = now;
                }
                let now = now.max(s.bucket_at);
                let elapsed = now - s.bucket_at;
                s.bucket_level = (s.bucket_level - elapsed * rate).max(0.0);
                s.bucket_at = now;
                if s.bucket_level + 1.0 <= cap {
                    s.bucket_level += 1.0;
                    s.counters.requests += 1;
                    None
                } else {
                    let w = (s.bucket_level + 1.0 - cap) / rate;
                    s.counters.bucket_waits += 1;
                    s.counters.bucket_wait_secs += w;
                    Some(w)
                }
            });
            match wait {
                None => return,
                Some(w) => tokio::time::sleep(self.clock.local(w)).await,
            }
        }
    }

    /// Feeds the portal's clock (`time.finish`).
    pub fn observe_clock(&self, server_time: f64) {
        self.clock.observe(server_time);
    }

    /// Feeds operating figures from one answer (top level and/or batch sub-results).
    pub fn observe(&self, observations: &[Observation]) {
        let now = self.clock.now();
        let window = self.cfg.window_secs;
        self.store.update(&mut |s| {
            for o in observations {
                record_figure(s.methods.entry(o.key.clone()).or_default(), o, now, window);
            }
        });
    }

    /// Records what the figures of a batch answer say about the billing.
    pub fn observe_billing(&self, billing: BatchBilling) {
        if billing != BatchBilling::Unknown {
            self.store.update(&mut |s| s.billing = billing);
        }
    }

    /// A 503 `QUERY_LIMIT_EXCEEDED`: the portal's bucket is full whatever ours says.
    pub fn on_rate_limited(&self) {
        let cap = self.cfg.bucket_capacity();
        let now = self.clock.now();
        self.store.update(&mut |s| {
            s.bucket_level = cap;
            s.bucket_at = now;
            s.counters.http_503 += 1;
        });
    }

    /// A 429 `OPERATION_TIME_LIMIT` for `key`: block it until its next basket reset.
    pub fn on_operating_limit(&self, key: &str) {
        let now = self.clock.now();
        let basket = self.cfg.window_secs / 10.0;
        self.store.update(&mut |s| {
            s.counters.http_429 += 1;
            let m = s.methods.entry(key.to_string()).or_default();
            let until = m.reset_at.filter(|r| *r > now).unwrap_or(now + basket);
            m.blocked_until = Some(until);
        });
    }

    pub fn on_retry(&self) {
        self.store.update(&mut |s| s.counters.retries += 1);
    }

    /// Sleeps before retry `attempt` (1-based): exponential with jitter, in portal seconds.
    pub async fn backoff(&self, attempt: u32) {
        let base = 0.5 * 2f64.powi(attempt.saturating_sub(1).min(6) as i32);
        let jitter = 0.5 + rand::random::<f64>();
        tokio::time::sleep(self.clock.local((base * jitter).min(30.0))).await;
    }

    pub fn snapshot(&self) -> GovernorSnapshot {
        let s = self.store.read();
        let now = self.clock.now();
        let level = match self.cfg.drain_rate() {
            Some(rate) => (s.bucket_level - (now - s.bucket_at).max(0.0) * rate).max(0.0),
            None => 0.0,
        };
        let methods = s
            .methods
            .iter()
            .map(|(k, m)| MethodBudget {
                key: k.clone(),
                used: m.used,
                left: self.cfg.operating_limit_secs.map(|l| (l - m.used).max(0.0)),
                estimate_per_command: m.estimate_per_command,
                reset_at: m.reset_at,
                blocked_until: m.blocked_until.filter(|b| *b > now),
                calls: m.calls,
                waits: m.waits,
            })
            .collect();
        GovernorSnapshot {
            bucket_level: level,
            bucket_capacity: self.cfg.bucket_capacity(),
            rate_per_sec: self.cfg.rate_per_sec,
            operating_limit_secs: self.cfg.operating_limit_secs,
            billing: s.billing,
            methods,
            counters: s.counters,
        }
    }
}

/// Updates a key's budget from a reported figure. Figures from concurrent answers can arrive
/// out of order: within one window only growth counts (new cost lands in the current basket);
/// a later reset time means baskets dropped out, and the oldest modelled baskets are trimmed
/// until the model matches the figure.
fn record_figure(m: &mut MethodState, o: &Observation, now: f64, window_secs: f64) {
    let new_window = match (m.reset_at, o.reset_at) {
        (Some(old), Some(new)) => new > old,
        (None, Some(_)) => true,
        _ => false,
    };
    let modelled = m.in_window(now, window_secs);
    let delta = o.operating - modelled;
    if delta > 0.0 {
        let minute = (now / 60.0).floor() as i64;
        match m.baskets.last_mut() {
            Some((last, secs)) if *last == minute => *secs += delta,
            _ => m.baskets.push((minute, delta)),
        }
        let per_command = delta * o.peak_share.clamp(0.0, 1.0);
        m.estimate_per_command = if per_command >= m.estimate_per_command {
            per_command
        } else {
            0.6 * m.estimate_per_command + 0.4 * per_command
        };
    } else if new_window && delta < 0.0 {
        let mut excess = -delta;
        for (_, secs) in m.baskets.iter_mut() {
            let cut = excess.min(*secs);
            *secs -= cut;
            excess -= cut;
        }
        m.baskets.retain(|(_, secs)| *secs > 0.0);
    }
    if new_window || o.operating > m.used {
        m.used = o.operating;
    }
    if o.reset_at.is_some() && (new_window || m.reset_at.is_none()) {
        m.reset_at = o.reset_at;
    }
}

/// Infers the batch billing from one batch answer: the outer figure and the nested ones.
pub fn infer_billing(outer: Option<f64>, nested: &[f64]) -> BatchBilling {
    let (min, max) = nested
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    let nested_grow = nested.len() > 1 && max > min;
    match outer {
        Some(o) if o > 0.0 && !nested_grow => BatchBilling::WholeBatch,
        _ if nested_grow => BatchBilling::PerMethod,
        _ => BatchBilling::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> GovernorConfig {
        GovernorConfig {
            clock_scale: 1000.0,
            ..GovernorConfig::standard()
        }
    }

    #[tokio::test]
    async fn bucket_admits_burst_then_paces() {
        // Real-time clock: at `cfg()`'s 1000× scale a loaded CI machine leaks the bucket by
        // whole requests while the burst is being taken, and the pacing is never needed.
        let g = Governor::new(GovernorConfig {
            clock_scale: 1.0,
            ..GovernorConfig::standard()
        });
        let cap = g.config().bucket_capacity() as u64;
        for _ in 0..cap {
            drop(g.acquire(&[Billed::new("m", 1)]).await);
        }
        assert_eq!(g.snapshot().counters.bucket_waits, 0);
        drop(g.acquire(&[Billed::new("m", 1)]).await);
        let snap = g.snapshot();
        assert_eq!(snap.counters.requests, cap + 1);
        assert!(snap.counters.bucket_waits >= 1);
        assert!(snap.bucket_level <= snap.bucket_capacity);
    }

    #[tokio::test]
    async fn pauses_a_method_before_it_crosses_its_budget() {
        let g = Governor::new(cfg());
        let now = g.server_now();
        let key = "crm.item.list".to_string();
        // Two answers teach the cost (40 s per call) and the usage (420 of 480, budget 432).
        g.observe(&[Observation::single(&key, 380.0, Some(now + 30.0))]);
        g.observe(&[Observation::single(&key, 420.0, Some(now + 30.0))]);
        let before = g.server_now();
        drop(g.acquire(&[Billed::new(key.clone(), 1)]).await);
        let after = g.server_now();
        assert!(after - before >= 25.0, "waited {} portal s", after - before);
        let snap = g.snapshot();
        assert_eq!(snap.counters.operating_waits, 1);
        // Another method is not held back: no further wait is counted (an event, not a
        // bound on how fast this machine runs).
        drop(g.acquire(&[Billed::new("crm.lead.list", 1)]).await);
        assert_eq!(g.snapshot().counters.operating_waits, 1);
    }

    #[tokio::test]
    async fn a_429_blocks_the_method_until_its_reset() {
        let g = Governor::new(cfg());
        let now = g.server_now();
        g.observe(&[Observation::single("batch", 10.0, Some(now + 20.0))]);
        g.on_operating_limit("batch");
        let t0 = g.server_now();
        drop(g.acquire(&[Billed::new("batch", 1)]).await);
        assert!(g.server_now() - t0 >= 15.0);
        assert_eq!(g.snapshot().counters.http_429, 1);
    }

    #[test]
    fn figures_out_of_order_do_not_shrink_usage_within_a_window() {
        let mut m = MethodState::default();
        let o = |op, r| Observation::single("k", op, Some(r));
        record_figure(&mut m, &o(10.0, 700.0), 100.0, 600.0);
        record_figure(&mut m, &o(30.0, 700.0), 130.0, 600.0);
        record_figure(&mut m, &o(20.0, 700.0), 131.0, 600.0);
        assert_eq!(m.used, 30.0);
        // A dearer call raises the estimate at once; the late, lower figure teaches nothing.
        assert_eq!(m.estimate_per_command, 20.0);
        assert_eq!(m.baskets, vec![(1, 10.0), (2, 20.0)]);
        // The first basket left the window: the model follows the figure.
        record_figure(&mut m, &o(20.0, 760.0), 700.0, 600.0);
        assert_eq!((m.used, m.reset_at), (20.0, Some(760.0)));
        assert_eq!(m.in_window(700.0, 600.0), 20.0);
        // Eleven minutes later everything has expired.
        assert_eq!(m.in_window(1400.0, 600.0), 0.0);
    }

    fn tight() -> GovernorConfig {
        GovernorConfig {
            operating_limit_secs: Some(60.0),
            ..cfg()
        }
    }

    /// One `decide` on the governor's state (no waiting).
    fn decide(g: &Governor, key: &str, commands: u32) -> Decision {
        let now = g.server_now();
        with_state(g.store.as_ref(), |s| g.decide(s, key, commands, now))
    }

    #[test]
    fn a_batch_reserves_the_per_command_estimate_times_its_commands() {
        let g = Governor::new(tight());
        let now = g.server_now();
        // A 5-command batch (4 pages at 0.8 s, a probe at 0.02 s) grew the key by 3.22 s.
        g.observe(&[Observation {
            key: "crm.item.list".into(),
            operating: 3.22,
            reset_at: Some(now + 600.0),
            peak_share: 0.8 / 3.22,
        }]);
        let est = g.snapshot().methods[0].estimate_per_command;
        assert!((est - 0.8).abs() < 1e-9, "{est}");
        // Budget 54 s (60 less 10 %): a 50-command batch reserves 40 s, not the last call's 3.22.
        assert!(
            matches!(decide(&g, "crm.item.list", 50), Decision::Go(r) if (r - 40.0).abs() < 1e-9)
        );
        // A second one would cross the budget (3.22 + 40 + 40 > 54): it waits.
        assert!(matches!(
            decide(&g, "crm.item.list", 50),
            Decision::WaitUntil(_)
        ));
        // A plain call (one command) still fits.
        assert!(
            matches!(decide(&g, "crm.item.list", 1), Decision::Go(r) if (r - 0.8).abs() < 1e-9)
        );
    }

    #[test]
    fn a_request_estimated_above_the_budget_goes_once_the_window_is_empty() {
        // 2 s × 50 = 100 s, above the 54 s budget: capped to the budget, so it goes when
        // nothing is billed or reserved…
        let fresh = Governor::new(tight());
        with_state(fresh.store.as_ref(), |s| {
            s.methods
                .entry("k".into())
                .or_default()
                .estimate_per_command = 2.0;
        });
        assert!(matches!(decide(&fresh, "k", 50), Decision::Go(r) if (r - 54.0).abs() < 1e-9));
        // …and waits while anything is.
        let g = Governor::new(tight());
        g.observe(&[Observation::single("k", 2.0, None)]);
        assert!(matches!(decide(&g, "k", 50), Decision::WaitUntil(_)));
    }

    #[test]
    fn the_estimate_rises_at_once_and_decays_slowly() {
        let mut m = MethodState::default();
        let batch = |op, share| Observation {
            key: "k".into(),
            operating: op,
            reset_at: Some(700.0),
            peak_share: share,
        };
        // Ids only: 50 commands at 0.05 s.
        record_figure(&mut m, &batch(2.5, 0.02), 100.0, 600.0);
        assert!((m.estimate_per_command - 0.05).abs() < 1e-9);
        // Then full rows: 4 commands at 0.6 s. The next 50-page batch must not be reserved at
        // a blend of the two.
        record_figure(&mut m, &batch(4.9, 0.25), 110.0, 600.0);
        assert!((m.estimate_per_command - 0.6).abs() < 1e-9);
        record_figure(&mut m, &batch(7.4, 0.02), 120.0, 600.0);
        assert!((m.estimate_per_command - 0.38).abs() < 1e-9);
    }

    #[test]
    fn billing_is_inferred_from_the_figures() {
        assert_eq!(
            infer_billing(Some(12.0), &[12.0, 12.0, 12.0]),
            BatchBilling::WholeBatch
        );
        assert_eq!(
            infer_billing(None, &[1.0, 1.5, 2.0]),
            BatchBilling::PerMethod
        );
        assert_eq!(infer_billing(Some(0.0), &[]), BatchBilling::Unknown);
    }

    #[test]
    fn presets() {
        assert_eq!(GovernorConfig::enterprise().burst, 250.0);
        assert_eq!(GovernorConfig::on_premise().rate_per_sec, None);
        assert!(GovernorConfig::standard().bucket_capacity() < 50.0);
    }
}
