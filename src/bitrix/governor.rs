//! One governor per portal, shared (behind an `Arc`) by every concurrent use in the process.
//!
//! It keeps b24ch under both Bitrix24 limits (`docs/bitrix24-api.md` §4; batch billing §3):
//! - the request **leaky bucket** (503 `QUERY_LIMIT_EXCEEDED`): each request reserves its
//!   place on arrival, so concurrent listings share it in arrival order, and waits holding no
//!   lock (a waiter its task has suspended cannot keep the others out);
//! - the per-method **operating budget** (429 `OPERATION_TIME_LIMIT`), kept per *billing key*
//!   from the `time.operating` / `operating_reset_at` figures the portal sends.
//!
//! Which key bills a request is learned per portal from those figures, never assumed (sources
//! disagree, `bitrix24-api.md` §3): a plain call is its method's; a batch is the `batch` key's
//! when its top-level figure is above 0, and its nested methods' when their own figures grow
//! command by command. Nested `result_time` figures are read as what they turn out to be: each
//! method's own, the `batch` key's running total, or absent ([`read_batch`]); the reading is
//! redone with every answer, so a change is followed. A request reserves on each key it is
//! billed to, and pauses only when that key's reported figures leave no room for it; a pause
//! never outlasts the key's reported reset, and is logged once with its evidence.
//! - Costs are estimated **per key and per command kind** (method + `select`): the dearest
//!   command's `processing` times the key's operating/processing ratio, learned only from growth
//!   no other call overlapped; a first figure (another process's usage) is a baseline, not a
//!   cost.
//!
//! Time is the portal's clock (anchored on `time.finish`, advanced by the local monotonic clock
//! times `clock_scale`), so `operating_reset_at` is comparable and an emulator running faster
//! than real time is followed. State lives behind [`GovernorStore`] so a cross-process store
//! (file + flock in the state dir) can replace the in-memory one.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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

/// What the portal's figures have shown about one question so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    #[default]
    Unknown,
    Yes,
    No,
}

/// What the `operating` figure of each nested `result_time` entry of a batch answer means.
/// Undocumented, and portals differ (`bitrix24-api.md` §3), so it is read from the figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NestedReport {
    #[default]
    Unknown,
    /// Each entry is its own method's accumulated figure.
    OwnMethod,
    /// Every entry is the `batch` key's running total (this batch's cost so far included).
    BatchTotal,
    /// Entries carry no `operating`.
    Absent,
}

/// How this portal bills a `batch`, learned from its figures and re-learned with every answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Billing {
    /// Whether a batch is billed to the key `batch` (its top-level `time.operating` is above 0).
    pub batch_key: Evidence,
    /// Whether a batch's commands are billed to their own methods (their own figures grow
    /// command by command).
    pub nested_keys: Evidence,
    pub nested_report: NestedReport,
}

impl Billing {
    /// The keys a request is charged to: a plain call to its method; a batch to `batch` and
    /// to each nested method, except where the figures showed that key is not billed.
    fn keys<'r>(&self, request: &'r Request) -> BTreeMap<&'r str, Vec<(&'r str, u32)>> {
        let mut keys: BTreeMap<&str, Vec<(&str, u32)>> = BTreeMap::new();
        let all = || request.commands.iter().map(|c| (c.kind.as_str(), c.count));
        if !request.batch {
            for c in &request.commands {
                keys.entry(c.method.as_str())
                    .or_default()
                    .push((c.kind.as_str(), c.count));
            }
            return keys;
        }
        if self.batch_key != Evidence::No {
            keys.entry(BATCH_KEY).or_default().extend(all());
        }
        if self.nested_keys != Evidence::No {
            for c in &request.commands {
                keys.entry(c.method.as_str())
                    .or_default()
                    .push((c.kind.as_str(), c.count));
            }
        }
        keys
    }

    /// The summary shown to users.
    pub fn summary(&self) -> BatchBilling {
        match (self.batch_key, self.nested_keys) {
            (Evidence::Yes, Evidence::Yes) => BatchBilling::Both,
            (Evidence::Yes, _) => BatchBilling::WholeBatch,
            (_, Evidence::Yes) => BatchBilling::PerMethod,
            _ => BatchBilling::Unknown,
        }
    }
}

/// How the portal appears to bill `batch` calls (a summary of [`Billing`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchBilling {
    #[default]
    Unknown,
    /// Nested calls grow their own methods' figures (docs, server source).
    PerMethod,
    /// The outer `batch` figure grows, the nested methods' do not (field measurement).
    WholeBatch,
    /// Both grow.
    Both,
}

/// The billing key of whole-batch billing.
pub const BATCH_KEY: &str = "batch";

/// Budget state of one billing key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MethodState {
    /// Last `operating` figure the portal reported (accumulated over its window).
    pub used: f64,
    pub reset_at: Option<f64>,
    /// Portal time of the last figure reported for this key.
    #[serde(default)]
    pub figure_at: Option<f64>,
    /// Estimated cost of calls admitted but not answered yet.
    pub reserved: f64,
    /// Estimated cost of one command of each kind billed to this key: rises at once to a
    /// dearer command seen (under-reserving risks a 429 that blocks the method), decays
    /// slowly otherwise. Learned only from this key's own figures.
    #[serde(default)]
    pub estimates: BTreeMap<String, f64>,
    /// Operating seconds the portal bills per second of reported `processing` on this key,
    /// learned from answers no other call on the key overlapped (1 until then).
    #[serde(default)]
    pub ratio: Option<f64>,
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
    /// What is still billed at `now`. Baskets are forgotten a minute after they left the
    /// window: under concurrency an answer the portal produced just before a basket expired
    /// may be read after one produced just after, and must still be compared with a model
    /// that counts that basket (else its figure reads as growth the size of the basket).
    fn in_window(&mut self, now: f64, window_secs: f64) -> f64 {
        let first = first_live_minute(now, window_secs);
        self.baskets.retain(|(minute, _)| *minute >= first - 1);
        self.live(now, window_secs).map(|(_, s)| s).sum()
    }

    /// Baskets in the window at `now`, oldest first.
    fn live(&self, now: f64, window_secs: f64) -> impl Iterator<Item = &(i64, f64)> {
        let first = first_live_minute(now, window_secs);
        self.baskets
            .iter()
            .filter(move |(minute, _)| *minute >= first)
    }

    /// When the oldest basket still in the window at `now` leaves it.
    fn next_expiry(&self, now: f64, window_secs: f64) -> Option<f64> {
        let n = window_minutes(window_secs);
        self.live(now, window_secs)
            .next()
            .map(|(m, _)| ((m + n) * 60) as f64 + 0.01)
    }

    /// The estimate of one command of `kind`; a kind not seen yet on this key is taken at the
    /// dearest kind seen (0 while the key never grew).
    fn estimate(&self, kind: &str) -> f64 {
        self.estimates
            .get(kind)
            .copied()
            .unwrap_or_else(|| self.estimates.values().copied().fold(0.0, f64::max))
    }

    fn learn(&mut self, kind: &str, cost: f64) {
        let e = self.estimates.entry(kind.to_string()).or_insert(0.0);
        *e = if cost >= *e {
            cost
        } else {
            0.6 * *e + 0.4 * cost
        };
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
    /// How the portal bills, as learned so far.
    #[serde(default)]
    pub learned: Billing,
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
    pub learned: Billing,
    pub methods: Vec<MethodBudget>,
    pub counters: Counters,
}

#[derive(Debug, Clone, Serialize)]
pub struct MethodBudget {
    pub key: String,
    pub used: f64,
    pub left: Option<f64>,
    /// The dearest kind's estimate per command.
    pub estimate_per_command: f64,
    pub estimates: BTreeMap<String, f64>,
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
    /// Share of the key's growth taken by one command of each kind (the dearest of that
    /// kind; equal shares when the answer does not say how the cost splits).
    pub shares: Vec<(String, f64)>,
    /// The dearest command's `processing` per kind, and the commands' total; empty / 0 when
    /// the answer does not give every command's.
    pub processing: Vec<(String, f64)>,
    pub processing_total: f64,
}

impl Observation {
    /// The figure of a plain call: one command of `kind`.
    pub fn single(key: &str, kind: &str, operating: f64, reset_at: Option<f64>) -> Self {
        Self {
            key: key.to_string(),
            operating,
            reset_at,
            shares: vec![(kind.to_string(), 1.0)],
            processing: Vec::new(),
            processing_total: 0.0,
        }
    }

    /// With the `processing` time of the call.
    pub fn with_processing(mut self, processing: Option<f64>) -> Self {
        if let (Some(p), Some((kind, _))) = (processing, self.shares.first()) {
            self.processing = vec![(kind.clone(), p)];
            self.processing_total = p;
        }
        self
    }
}

/// Commands of one kind in a request. Commands of a kind cost alike (same method, same
/// `select`); see [`command_kind`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub method: String,
    pub kind: String,
    pub count: u32,
}

/// One HTTP request as the governor sees it: a plain call or a batch of commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub batch: bool,
    pub commands: Vec<Command>,
}

impl Request {
    pub fn plain(method: &str, kind: &str) -> Self {
        Self {
            batch: false,
            commands: vec![Command {
                method: method.to_string(),
                kind: kind.to_string(),
                count: 1,
            }],
        }
    }

    /// A batch of `(method, kind)` commands, counted per kind.
    pub fn batch<'a>(commands: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut out: Vec<Command> = Vec::new();
        for (method, kind) in commands {
            match out
                .iter_mut()
                .find(|c| c.method == method && c.kind == kind)
            {
                Some(c) => c.count += 1,
                None => out.push(Command {
                    method: method.to_string(),
                    kind: kind.to_string(),
                    count: 1,
                }),
            }
        }
        Self {
            batch: true,
            commands: out,
        }
    }
}

/// The kind of a command: its method, a short digest of its `select` and the number of
/// columns selected (`method#digest/n`), so pages of one listing share an estimate while an
/// ids-only probe or a narrow companion read keep theirs, and a planner can tell what a
/// column costs on each method ([`Governor::cost_per_column`]).
pub fn command_kind(method: &str, params: &serde_json::Value) -> String {
    let Some(select) = params.get("select").or_else(|| params.get("SELECT")) else {
        return method.to_string();
    };
    let text = select.to_string();
    // FNV-1a: stable across processes and releases (estimates live in the shared state file).
    let digest = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    match select.as_array() {
        Some(cols) => format!("{method}#{:08x}/{}", digest as u32, cols.len()),
        None => format!("{method}#{:08x}", digest as u32),
    }
}

/// The method and number of selected columns of a kind made by [`command_kind`].
fn kind_columns(kind: &str) -> Option<(&str, usize)> {
    let (method, rest) = kind.split_once('#')?;
    let (_, n) = rest.split_once('/')?;
    Some((method, n.parse().ok()?))
}

/// What one command of a batch answer reported.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandFigure {
    pub method: String,
    pub kind: String,
    /// Its `result_time` entry's `operating` / `operating_reset_at`, when present.
    pub operating: Option<f64>,
    pub reset_at: Option<f64>,
    pub processing: Option<f64>,
}

/// The figures of one batch answer: the top-level `time` and every command that ran.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchFigures {
    pub operating: Option<f64>,
    pub reset_at: Option<f64>,
    pub commands: Vec<CommandFigure>,
}

/// What one batch answer says: how figures are reported, which keys grew, and each key's
/// figure.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchReading {
    pub report: NestedReport,
    pub batch_key: Evidence,
    pub nested_keys: Evidence,
    pub observations: Vec<Observation>,
}

/// Figures closer than this are equal (portals print a handful of decimals).
const EPS: f64 = 1e-6;

/// Whether `nested` is the same figure as the top-level `outer` (allowing print rounding).
fn same_figure(nested: f64, outer: f64) -> bool {
    (nested - outer).abs() <= 0.01 + 0.001 * outer.abs()
}

/// A figure per command kind.
type PerKind = Vec<(String, f64)>;

/// Each kind's share of a group of commands' cost (by `processing` when every command has
/// one, else equal shares), and the dearest `processing` per kind with the total.
fn shares(commands: &[&CommandFigure]) -> (PerKind, PerKind, f64) {
    let total: f64 = commands.iter().filter_map(|c| c.processing).sum();
    let by_processing = total > EPS && commands.iter().all(|c| c.processing.is_some());
    let mut out: PerKind = Vec::new();
    let mut dearest: PerKind = Vec::new();
    for c in commands {
        let p = c.processing.unwrap_or(0.0);
        let share = if by_processing {
            p / total
        } else {
            1.0 / commands.len() as f64
        };
        match out.iter_mut().find(|(k, _)| *k == c.kind) {
            Some((_, s)) => *s = s.max(share),
            None => out.push((c.kind.clone(), share)),
        }
        match dearest.iter_mut().find(|(k, _)| *k == c.kind) {
            Some((_, d)) => *d = d.max(p),
            None => dearest.push((c.kind.clone(), p)),
        }
    }
    if !by_processing {
        return (out, Vec::new(), 0.0);
    }
    (out, dearest, total)
}

/// Reads one batch answer. The top-level figure is the `batch` key's. Nested figures are the
/// `batch` key's running total when they reach (at least) the top-level figure, which is
/// above 0 (the batch was billed to `batch`); otherwise each is its own
/// method's. Where the two readings could both fit, the `batch` key's is chosen: charging a
/// running total to a nested method would pause it for nothing.
pub fn read_batch(f: &BatchFigures) -> BatchReading {
    let with_figure: Vec<(&CommandFigure, f64)> = f
        .commands
        .iter()
        .filter_map(|c| c.operating.map(|op| (c, op)))
        .collect();
    let highest = with_figure
        .iter()
        .map(|(_, op)| *op)
        .fold(f64::NEG_INFINITY, f64::max);
    let outer = f.operating;
    let report = match outer {
        _ if with_figure.is_empty() => NestedReport::Absent,
        // A basket may leave the window while the batch runs: the top-level figure, taken
        // at its end, is then below the nested running total (and nested figures after the
        // drop below earlier ones). Read as the `batch` key's, a figure is never charged to
        // a nested method's budget.
        Some(o) if o > EPS && (same_figure(highest, o) || highest > o) => NestedReport::BatchTotal,
        None if with_figure.len() > 1 && one_running_total(&with_figure) => {
            NestedReport::BatchTotal
        }
        _ => NestedReport::OwnMethod,
    };
    let batch_key = match outer {
        Some(o) if o > EPS => Evidence::Yes,
        Some(_) if !f.commands.is_empty() => Evidence::No,
        _ if report == NestedReport::BatchTotal => Evidence::Yes,
        _ => Evidence::Unknown,
    };
    let all: Vec<&CommandFigure> = f.commands.iter().collect();
    let mut observations = Vec::new();
    let batch_figure = outer
        .filter(|o| *o > EPS)
        .or((report == NestedReport::BatchTotal).then_some(highest));
    if let Some(op) = batch_figure {
        let reset_at = f
            .reset_at
            .or_else(|| with_figure.iter().rev().find_map(|(c, _)| c.reset_at));
        let (shares, processing, processing_total) = shares(&all);
        observations.push(Observation {
            key: BATCH_KEY.to_string(),
            operating: op,
            reset_at,
            shares,
            processing,
            processing_total,
        });
    }
    let mut nested_keys = Evidence::Unknown;
    if report == NestedReport::OwnMethod {
        let mut methods: BTreeMap<&str, Vec<(&CommandFigure, f64)>> = BTreeMap::new();
        for (c, op) in &with_figure {
            methods.entry(c.method.as_str()).or_default().push((c, *op));
        }
        for (method, figs) in methods {
            let (first, last) = (figs[0].1, figs[figs.len() - 1].1);
            let top = figs
                .iter()
                .map(|(_, op)| *op)
                .fold(f64::NEG_INFINITY, f64::max);
            let worked: f64 = figs[1..].iter().filter_map(|(c, _)| c.processing).sum();
            if figs.len() > 1 && last > first + EPS {
                nested_keys = Evidence::Yes;
            } else if figs.len() > 1
                && (top - first).abs() <= EPS
                && worked > EPS
                && nested_keys != Evidence::Yes
            {
                nested_keys = Evidence::No;
            }
            let reset_at = figs
                .iter()
                .filter(|(_, op)| *op >= top)
                .find_map(|(c, _)| c.reset_at);
            let of_method: Vec<&CommandFigure> =
                f.commands.iter().filter(|c| c.method == method).collect();
            let (shares, processing, processing_total) = shares(&of_method);
            observations.push(Observation {
                key: method.to_string(),
                operating: top,
                reset_at,
                shares,
                processing,
                processing_total,
            });
        }
    }
    BatchReading {
        report,
        batch_key,
        nested_keys,
        observations,
    }
}

/// Nested figures of different methods rising as one sequence: one key's running total.
fn one_running_total(figs: &[(&CommandFigure, f64)]) -> bool {
    let methods: std::collections::BTreeSet<&str> =
        figs.iter().map(|(c, _)| c.method.as_str()).collect();
    methods.len() > 1 && figs.windows(2).all(|w| w[1].1 > w[0].1 + EPS)
}

/// Why a request waits for a key's budget: the figures behind the decision.
#[derive(Debug, Clone, PartialEq)]
struct Shortfall {
    used: f64,
    modelled: f64,
    reserved: f64,
    need: f64,
    budget: f64,
    reset_at: Option<f64>,
}

pub struct Governor {
    cfg: GovernorConfig,
    store: Box<dyn GovernorStore>,
    clock: ServerClock,
    inflight: Arc<Semaphore>,
    /// Per key, the end of the pause last logged: concurrent waiters on one key log it once.
    announced: StdMutex<std::collections::HashMap<String, f64>>,
}

/// Admission of one HTTP request; releases its budget reservations when dropped.
pub struct Permit {
    governor: Arc<Governor>,
    reservations: Vec<(String, f64)>,
    _slot: OwnedSemaphorePermit,
}

impl Permit {
    /// Whether this request is the only call on `key` in flight (every admitted call holds
    /// a reservation of at least [`MIN_RESERVATION`] until it is answered).
    fn alone(&self, m: &MethodState, key: &str) -> bool {
        let mine: f64 = self
            .reservations
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, r)| r)
            .sum();
        m.reserved - mine < MIN_RESERVATION / 2.0
    }
}

/// The least a call reserves on each key it is billed to, so calls in flight are visible.
const MIN_RESERVATION: f64 = 1e-6;

impl Drop for Permit {
    fn drop(&mut self) {
        let res = std::mem::take(&mut self.reservations);
        self.governor.store.update(&mut |s| {
            for (k, est) in &res {
                if let Some(m) = s.methods.get_mut(k) {
                    m.reserved = (m.reserved - est).max(0.0);
                    // Rounding must not leave a call "in flight" forever.
                    if m.reserved < MIN_RESERVATION / 2.0 {
                        m.reserved = 0.0;
                    }
                }
            }
        });
    }
}

enum Decision {
    Go(f64),
    /// Calls in flight hold the budget (or the key's window just turned and its new figure
    /// is on its way): look again shortly. Not a pause the figures call for.
    Hold(f64),
    /// The key's reported figures show the request does not fit before `until`.
    Pause {
        until: f64,
        why: Shortfall,
    },
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
            inflight,
            announced: StdMutex::default(),
        })
    }

    pub fn config(&self) -> &GovernorConfig {
        &self.cfg
    }

    /// Current portal time (unix seconds on the portal's clock).
    pub fn server_now(&self) -> f64 {
        self.clock.now()
    }

    /// How the portal bills, as learned so far.
    pub fn billing(&self) -> Billing {
        self.store.read().learned
    }

    /// Share of `key`'s budget its figures (and calls in flight) leave free now: 1 for a key
    /// with nothing billed, 0 for a full one; `None` when budgets are not enforced.
    pub fn headroom(&self, key: &str) -> Option<f64> {
        let limit = self.cfg.operating_limit_secs?;
        let budget = limit * (1.0 - self.cfg.safety);
        let now = self.clock.now();
        let window = self.cfg.window_secs;
        Some(with_state(self.store.as_ref(), |s| {
            s.methods.get_mut(key).map_or(1.0, |m| {
                let used = m.in_window(now, window) + m.reserved;
                ((budget - used) / budget).clamp(0.0, 1.0)
            })
        }))
    }

    /// Requests the bucket admits now without waiting (`None`: no request-rate limit).
    pub fn bucket_free(&self) -> Option<f64> {
        let rate = self.cfg.drain_rate()?;
        let s = self.store.read();
        let level = (s.bucket_level - (self.clock.now() - s.bucket_at).max(0.0) * rate).max(0.0);
        Some((self.cfg.bucket_capacity() - level).max(0.0))
    }

    /// Whether the `batch` key carries more of the window's bill than `method`'s own key, where
    /// that comparison means something: batches billed to `batch` alone, so `method`'s key holds
    /// only its plain calls. (Where batches are billed to their methods too, `both`, the
    /// method's key carries the batched commands as well: never.)
    pub fn batch_key_ahead_of(&self, method: &str) -> bool {
        let billing = self.billing();
        billing.batch_key == Evidence::Yes
            && billing.nested_keys != Evidence::Yes
            && self.key_load(BATCH_KEY) > self.key_load(method)
    }

    /// Under `both` billing (a batched command is billed to `batch` and to its method), whether
    /// a listing from both ends should spread onto plain calls — plain pages and their
    /// companion reads, two requests per 50 rows that spare only `batch`: while the rest of
    /// the listing (`batched_rest`, its batches' expected bill) fits `batch`'s budget. A
    /// listing that outgrows the window is paced by its methods' keys anyway, and spreading
    /// would make the request bucket its bottleneck.
    pub fn spread_under_both(&self, batched_rest: Option<f64>) -> bool {
        let billing = self.billing();
        if billing.batch_key != Evidence::Yes || billing.nested_keys != Evidence::Yes {
            return false;
        }
        let (Some(limit), Some(rest)) = (self.cfg.operating_limit_secs, batched_rest) else {
            return false;
        };
        self.key_load(BATCH_KEY) + rest <= limit * (1.0 - self.cfg.safety)
    }

    /// Whether a batch of a listing of `method` read from both ends should wait for the plain
    /// pages (`both_ends`): under whole-batch billing while the `batch` key carries more than
    /// `method`'s key (which holds only plain calls); under `both` billing, where the listing
    /// spreads ([`Self::spread_under_both`]), while `batch` is the busiest key of all.
    pub fn batch_should_yield_to(&self, method: &str, batched_rest: Option<f64>) -> bool {
        if self.billing().nested_keys != Evidence::Yes {
            return self.batch_key_ahead_of(method);
        }
        if !self.spread_under_both(batched_rest) {
            return false;
        }
        let now = self.clock.now();
        let window = self.cfg.window_secs;
        with_state(self.store.as_ref(), |s| {
            let mut batch = 0.0;
            let mut others: f64 = 0.0;
            for (key, m) in s.methods.iter_mut() {
                let load = m.in_window(now, window) + m.reserved;
                if key == BATCH_KEY {
                    batch = load;
                } else {
                    others = others.max(load);
                }
            }
            batch > others
        })
    }

    /// Operating seconds billed to `key` within the window, with calls in flight.
    pub fn key_load(&self, key: &str) -> f64 {
        let now = self.clock.now();
        let window = self.cfg.window_secs;
        with_state(self.store.as_ref(), |s| {
            s.methods
                .get_mut(key)
                .map_or(0.0, |m| m.in_window(now, window) + m.reserved)
        })
    }

    /// Operating seconds one selected column costs in one command of `method`, as measured:
    /// the widest kind of the method learned on any key (its own, or `batch` under
    /// whole-batch billing), its estimate divided by its columns. `None` until measured. The
    /// estimates live in the governor state, so they are shared through the state file with
    /// every process of the portal and survive a restart.
    pub fn cost_per_column(&self, method: &str) -> Option<f64> {
        let s = self.store.read();
        s.methods
            .values()
            .flat_map(|m| m.estimates.iter())
            .filter_map(|(kind, est)| {
                let (m, n) = kind_columns(kind)?;
                (m == method && n > 1 && *est > EPS).then_some((n, *est / n as f64))
            })
            .max_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)))
            .map(|(_, per_column)| per_column)
    }

    /// Whether `request` would pause for an operating budget if sent now: a key it is billed
    /// to (as learned) is blocked, or its figures, calls in flight and the request's estimate
    /// exceed the budget. Reserves nothing; lets a planner pick a request that goes at once.
    pub fn would_pause(&self, request: &Request) -> bool {
        let Some(limit) = self.cfg.operating_limit_secs else {
            return false;
        };
        let budget = limit * (1.0 - self.cfg.safety);
        let now = self.clock.now();
        let window = self.cfg.window_secs;
        with_state(self.store.as_ref(), |s| {
            let keys = s.learned.keys(request);
            keys.iter().any(|(key, kinds)| {
                let Some(m) = s.methods.get_mut(*key) else {
                    return false;
                };
                if m.blocked_until.is_some_and(|u| u > now) {
                    return true;
                }
                if m.reset_at.is_some_and(|r| r <= now) {
                    return false;
                }
                let need = kinds
                    .iter()
                    .map(|(kind, n)| m.estimate(kind) * f64::from(*n))
                    .sum::<f64>()
                    .min(budget);
                m.in_window(now, window) + m.reserved + need > budget
            })
        })
    }

    /// How many commands (1..=`max`) the batch `build(n)` may carry without pausing now. A
    /// batch sized to the room left goes at once and the next one takes what the window frees
    /// next, where a full-size batch would wait for the window to turn almost completely
    /// (docs/architecture.md, "Sizing batches to the room left"). At least 1: a single command's
    /// wait is the shortest there is.
    pub fn batch_room(&self, max: usize, build: impl Fn(usize) -> Request) -> usize {
        if max <= 1 || !self.would_pause(&build(max)) {
            return max.max(1);
        }
        // `would_pause` grows with the number of commands: the largest n that fits.
        let (mut fits, mut pauses) = (0usize, max);
        while pauses - fits > 1 {
            let mid = (fits + pauses) / 2;
            if self.would_pause(&build(mid)) {
                pauses = mid;
            } else {
                fits = mid;
            }
        }
        fits.max(1)
    }

    /// Waits until `request` may be sent: the operating budget of every key the portal bills
    /// it to (as learned), a concurrency slot, then the request bucket.
    ///
    /// No lock is held while waiting: a request whose stream is suspended mid-wait (a
    /// listing's next page, prefetched while its rows are joined with a companion's) would
    /// otherwise keep out the very request its task is waiting for, and both would wait
    /// forever. Each decision is taken and reserved atomically in the store instead.
    pub async fn acquire(self: &Arc<Self>, request: &Request) -> Permit {
        let learned = self.store.read().learned;
        let keys = learned.keys(request);
        let mut reservations = Vec::with_capacity(keys.len());
        for (key, kinds) in keys {
            let reserved = self.wait_operating(key, &kinds).await;
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

    /// Whether a pause of `key` until `until` is news: not while a pause already logged for
    /// the key is still running.
    fn announce(&self, key: &str, now: f64, until: f64) -> bool {
        let mut a = self.announced.lock().unwrap_or_else(|p| p.into_inner());
        match a.get(key) {
            Some(&end) if end > now => false,
            _ => {
                a.insert(key.to_string(), until);
                true
            }
        }
    }

    async fn wait_operating(&self, key: &str, kinds: &[(&str, u32)]) -> f64 {
        let started = self.clock.now();
        let mut paused = false;
        // Calls in flight are waited for only so long: one may belong to a stream this very
        // task has suspended (a listing's next page while its rows are joined), and would
        // never be answered while we wait.
        let mut held_since: Option<Instant> = None;
        loop {
            let now = self.clock.now();
            let count_in_flight = held_since.is_none_or(|t| t.elapsed() < MAX_HOLD);
            let decision = with_state(self.store.as_ref(), |s| {
                self.decide(s, key, kinds, now, count_in_flight)
            });
            let until = match decision {
                Decision::Go(est) => {
                    if paused {
                        let secs = self.clock.now() - started;
                        self.store.update(&mut |s| {
                            s.counters.operating_waits += 1;
                            s.counters.operating_wait_secs += secs;
                            s.methods.entry(key.to_string()).or_default().waits += 1;
                        });
                        tracing::debug!(key, waited_secs = secs, "operating budget wait over");
                    }
                    return est;
                }
                Decision::Hold(until) => {
                    tracing::debug!(key, "held: calls in flight hold the budget");
                    held_since.get_or_insert_with(Instant::now);
                    until
                }
                Decision::Pause { until, why } => {
                    if !paused && self.announce(key, now, until) {
                        tracing::info!(
                            key,
                            reported_used = why.used,
                            in_window = why.modelled,
                            in_flight = why.reserved,
                            estimate = why.need,
                            budget = why.budget,
                            reset_at = why.reset_at,
                            until,
                            pause_secs = until - now,
                            "pausing: the portal's figures for this key leave no room for the next request"
                        );
                    }
                    paused = true;
                    until
                }
            };
            tokio::time::sleep(self.clock.local(until - now)).await;
        }
    }

    /// Whether a request carrying `kinds` commands billed to `key` may go now (reserving
    /// their estimated cost), or until when to wait.
    fn decide(
        &self,
        s: &mut GovernorState,
        key: &str,
        kinds: &[(&str, u32)],
        now: f64,
        count_in_flight: bool,
    ) -> Decision {
        let m = s.methods.entry(key.to_string()).or_default();
        if let Some(until) = m.blocked_until {
            if until > now {
                // The portal refused the key (429): its own verdict, until its reset.
                return Decision::Pause {
                    until,
                    why: Shortfall {
                        used: m.used,
                        modelled: m.in_window(now, self.cfg.window_secs),
                        reserved: m.reserved,
                        need: 0.0,
                        budget: self.cfg.operating_limit_secs.unwrap_or(0.0),
                        reset_at: m.reset_at,
                    },
                };
            }
            m.blocked_until = None;
        }
        let Some(limit) = self.cfg.operating_limit_secs else {
            m.reserved += MIN_RESERVATION;
            return Decision::Go(MIN_RESERVATION);
        };
        let budget = limit * (1.0 - self.cfg.safety);
        // Capped at the budget: a request estimated above it still goes once the window is
        // empty, instead of waiting forever.
        let need = kinds
            .iter()
            .map(|(kind, n)| m.estimate(kind) * f64::from(*n))
            .sum::<f64>()
            .min(budget);
        // The reported reset passed: the figures are stale until an answer brings new ones,
        // so one request at a time goes to fetch them (at worst it is the one call the portal
        // lets cross its limit; the next figure then pauses the key).
        let in_flight = if count_in_flight { m.reserved } else { 0.0 };
        if m.reset_at.is_some_and(|r| r <= now) {
            if in_flight >= MIN_RESERVATION / 2.0 {
                tracing::debug!(
                    key,
                    reserved = m.reserved,
                    "stale figures, a call in flight"
                );
                return Decision::Hold(now + HOLD_SECS);
            }
            let need = need.max(MIN_RESERVATION);
            m.reserved += need;
            m.calls += 1;
            return Decision::Go(need);
        }
        let used = m.in_window(now, self.cfg.window_secs);
        if used + in_flight + need <= budget {
            let need = need.max(MIN_RESERVATION);
            m.reserved += need;
            m.calls += 1;
            return Decision::Go(need);
        }
        if used + need <= budget {
            // Only calls in flight are in the way: their answers free or confirm it.
            return Decision::Hold(now + HOLD_SECS);
        }
        // Never past the key's reported reset: then its figures are stale and are re-read.
        let expiry = m.next_expiry(now, self.cfg.window_secs);
        let reset = m.reset_at.filter(|r| *r > now);
        let until = match (expiry, reset) {
            (Some(e), Some(r)) => e.min(r),
            (Some(t), None) | (None, Some(t)) => t,
            (None, None) => now + HOLD_SECS,
        };
        Decision::Pause {
            until: until.max(now + 0.01),
            why: Shortfall {
                used: m.used,
                modelled: used,
                reserved: m.reserved,
                need,
                budget,
                reset_at: m.reset_at,
            },
        }
    }

    /// Takes a place in the request bucket and waits for it. The place is reserved at once
    /// (the level counts the requests sent and those waiting, so waiters go in arrival
    /// order) and the wait holds no lock (see [`Self::acquire`]); a place never used drains
    /// like a request.
    async fn wait_bucket(&self) {
        let (Some(rate), cap) = (self.cfg.drain_rate(), self.cfg.bucket_capacity()) else {
            self.store.update(&mut |s| s.counters.requests += 1);
            return;
        };
        let now = self.clock.now();
        let wait = with_state(self.store.as_ref(), |s| {
            // A shared store may hold a time from a process whose clock runs slightly ahead:
            // never move the bucket's time backwards (that would drain it twice), unless it is
            // absurdly ahead (a stale file from another clock).
            if s.bucket_at > now + STALE_CLOCK_SECS {
                s.bucket_at = now;
            }
            let at = now.max(s.bucket_at);
            s.bucket_level = (s.bucket_level - (at - s.bucket_at) * rate).max(0.0);
            s.bucket_at = at;
            s.bucket_level += 1.0;
            s.counters.requests += 1;
            let over = s.bucket_level - cap;
            (over > 0.0).then(|| {
                // From the bucket's time, which may be ahead of this clock.
                let w = over / rate + (at - now);
                s.counters.bucket_waits += 1;
                s.counters.bucket_wait_secs += w;
                w
            })
        });
        if let Some(w) = wait {
            tokio::time::sleep(self.clock.local(w)).await;
        }
    }

    /// Feeds the portal's clock (`time.finish`).
    pub fn observe_clock(&self, server_time: f64) {
        self.clock.observe(server_time);
    }

    /// Feeds the figure of a plain call's answer (admitted by `permit`): its method's key,
    /// one command of `kind`.
    pub fn observe_plain(
        &self,
        permit: &Permit,
        kind: &str,
        processing: Option<f64>,
        operating: Option<f64>,
        reset_at: Option<f64>,
        method: &str,
    ) {
        if let Some(op) = operating {
            let o = Observation::single(method, kind, op, reset_at).with_processing(processing);
            self.record(&[o], |m, key| permit.alone(m, key));
        }
    }

    /// Feeds a batch answer (admitted by `permit`): learns how the portal bills and reports
    /// (re-learned with every answer, so a change is followed) and records each billed key's
    /// figure.
    pub fn observe_batch(&self, permit: &Permit, figures: &BatchFigures) -> BatchReading {
        self.observe_batch_with(figures, |m, key| permit.alone(m, key))
    }

    fn observe_batch_with(
        &self,
        figures: &BatchFigures,
        alone: impl Fn(&MethodState, &str) -> bool,
    ) -> BatchReading {
        let reading = read_batch(figures);
        let now = self.clock.now();
        let window = self.cfg.window_secs;
        self.store.update(&mut |s| {
            let before = s.learned;
            if reading.batch_key != Evidence::Unknown {
                s.learned.batch_key = reading.batch_key;
            }
            if reading.nested_keys != Evidence::Unknown {
                s.learned.nested_keys = reading.nested_keys;
            }
            s.learned.nested_report = reading.report;
            if s.learned != before {
                tracing::info!(
                    billing = ?s.learned.summary(),
                    batch_key = ?s.learned.batch_key,
                    nested_keys = ?s.learned.nested_keys,
                    nested_figures = ?s.learned.nested_report,
                    "batch billing learned from the portal's figures"
                );
            }
            for o in &reading.observations {
                let m = s.methods.entry(o.key.clone()).or_default();
                let alone = alone(m, &o.key);
                record_figure(m, o, now, window, alone);
            }
        });
        reading
    }

    /// Feeds operating figures reported for billing keys, each the cost of one call that no
    /// other call overlapped.
    pub fn observe(&self, observations: &[Observation]) {
        self.record(observations, |_, _| true);
    }

    fn record(&self, observations: &[Observation], alone: impl Fn(&MethodState, &str) -> bool) {
        let now = self.clock.now();
        let window = self.cfg.window_secs;
        self.store.update(&mut |s| {
            for o in observations {
                let m = s.methods.entry(o.key.clone()).or_default();
                let alone = alone(m, &o.key);
                record_figure(m, o, now, window, alone);
            }
        });
    }

    /// A 503 `QUERY_LIMIT_EXCEEDED`: the portal's bucket is full whatever ours says.
    pub fn on_rate_limited(&self) {
        let cap = self.cfg.bucket_capacity();
        let now = self.clock.now();
        self.store.update(&mut |s| {
            // Full, keeping the places of requests already waiting.
            s.bucket_level = s.bucket_level.max(cap);
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
            // Places of waiting requests count above the capacity; the page shows it full.
            Some(rate) => (s.bucket_level - (now - s.bucket_at).max(0.0) * rate)
                .clamp(0.0, self.cfg.bucket_capacity()),
            None => 0.0,
        };
        let methods = s
            .methods
            .iter()
            .map(|(k, m)| MethodBudget {
                key: k.clone(),
                used: m.used,
                left: self.cfg.operating_limit_secs.map(|l| (l - m.used).max(0.0)),
                estimate_per_command: m.estimates.values().copied().fold(0.0, f64::max),
                estimates: m.estimates.clone(),
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
            billing: s.learned.summary(),
            learned: s.learned,
            methods,
            counters: s.counters,
        }
    }
}

/// Portal seconds between looks while calls in flight hold a key's budget.
const HOLD_SECS: f64 = 1.0;
/// Longest real time a request waits for calls in flight before it counts only the figures.
const MAX_HOLD: Duration = Duration::from_secs(10);

/// Updates a key's budget from a reported figure. Growth since the key's last figure in this
/// window lands in the current basket. A figure with nothing known before it (first answer of
/// a process, or after a quiet window) or in a window that turned (`operating_reset_at` moved)
/// is a baseline: not this request's cost. Figures from concurrent answers can arrive out of
/// order: within one window only growth counts; when the window turned and the figure is
/// lower, the oldest baskets are trimmed to match it.
///
/// Estimates: each kind's dearest `processing` times the key's ratio of operating to
/// processing; the ratio (or, without `processing`, the growth split over the commands) is
/// learned only from growth that is this request's alone (`alone`: no other call on the key
/// in flight), so a concurrent call's cost or another key's total never becomes an estimate.
fn record_figure(m: &mut MethodState, o: &Observation, now: f64, window_secs: f64, alone: bool) {
    let new_window = match (m.reset_at, o.reset_at) {
        (Some(old), Some(new)) => new > old,
        (None, Some(_)) => true,
        _ => false,
    };
    let known = m.figure_at.is_some_and(|t| now - t < window_secs);
    let modelled = m.in_window(now, window_secs);
    let delta = o.operating - modelled;
    let minute = (now / 60.0).floor() as i64;
    let attributable = delta > EPS && known && !new_window && alone;
    if delta > EPS {
        // A baseline's spread over the window is unknown: kept whole until an answer trims it
        // (a pause on it still ends at the reported reset, see `decide`).
        add_to_basket(&mut m.baskets, minute, delta);
    } else if new_window && delta < 0.0 {
        let mut excess = -delta;
        let first = first_live_minute(now, window_secs);
        for (_, secs) in m.baskets.iter_mut().filter(|(minute, _)| *minute >= first) {
            let cut = excess.min(*secs);
            *secs -= cut;
            excess -= cut;
        }
        m.baskets.retain(|(_, secs)| *secs > 0.0);
    }
    if o.processing_total > EPS {
        if attributable {
            let r = delta / o.processing_total;
            let old = m.ratio.unwrap_or(r);
            m.ratio = Some(if r >= old { r } else { 0.6 * old + 0.4 * r });
        }
        let ratio = m.ratio.unwrap_or(1.0);
        for (kind, p) in &o.processing {
            m.learn(kind, p * ratio);
        }
    } else if attributable {
        for (kind, share) in &o.shares {
            m.learn(kind, delta * share.clamp(0.0, 1.0));
        }
    }
    if new_window || o.operating > m.used {
        m.used = o.operating;
    }
    if o.reset_at.is_some() && (new_window || m.reset_at.is_none()) {
        m.reset_at = o.reset_at;
    }
    m.figure_at = Some(m.figure_at.map_or(now, |t| t.max(now)));
}

/// The window's length in one-minute baskets.
fn window_minutes(window_secs: f64) -> i64 {
    (window_secs / 60.0).max(1.0) as i64
}

/// The oldest minute whose basket still counts at `now`.
fn first_live_minute(now: f64, window_secs: f64) -> i64 {
    (now / 60.0).floor() as i64 - window_minutes(window_secs) + 1
}

/// Adds `secs` to the basket of `minute`, keeping baskets in minute order.
fn add_to_basket(baskets: &mut Vec<(i64, f64)>, minute: i64, secs: f64) {
    match baskets.binary_search_by_key(&minute, |(m, _)| *m) {
        Ok(i) => baskets[i].1 += secs,
        Err(i) => baskets.insert(i, (minute, secs)),
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

    const PAGE: &str = "crm.item.list#rows";
    const IDS: &str = "crm.item.list#ids";

    fn plain(method: &str) -> Request {
        Request::plain(method, method)
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
            drop(g.acquire(&plain("m")).await);
        }
        assert_eq!(g.snapshot().counters.bucket_waits, 0);
        drop(g.acquire(&plain("m")).await);
        let snap = g.snapshot();
        assert_eq!(snap.counters.requests, cap + 1);
        assert!(snap.counters.bucket_waits >= 1);
        assert!(snap.bucket_level <= snap.bucket_capacity);
    }

    /// A listing prefetches its next page while its task joins the current one with a
    /// companion's rows: the prefetch's wait is suspended, never polled until the join is
    /// done. It must not keep the join's own request out (with a lock held across the wait,
    /// both waited forever: the bench's 20,000-deal load stalled so under whole-batch billing).
    #[tokio::test]
    async fn a_request_suspended_mid_wait_does_not_keep_the_others_out() {
        let g = Governor::new(GovernorConfig {
            clock_scale: 1.0,
            ..GovernorConfig::standard()
        });
        for _ in 0..g.config().bucket_capacity() as u64 {
            drop(g.acquire(&plain("m")).await);
        }
        let request = plain("m");
        let suspended = g.acquire(&request);
        futures::pin_mut!(suspended);
        // Polled once: it takes its place and starts waiting for the bucket.
        assert!(futures::poll!(suspended.as_mut()).is_pending());
        let other = tokio::time::timeout(Duration::from_secs(10), g.acquire(&plain("m"))).await;
        assert!(
            other.is_ok(),
            "a request waited behind one whose task never polls it"
        );
        assert!(g.snapshot().counters.bucket_waits >= 2);
    }

    #[tokio::test]
    async fn pauses_a_method_before_it_crosses_its_budget() {
        let g = Governor::new(cfg());
        let now = g.server_now();
        let key = "crm.item.list";
        // A baseline, then growth that teaches the cost (40 s per call): 420 of 480 used,
        // budget 432.
        g.observe(&[Observation::single(key, key, 380.0, Some(now + 30.0))]);
        g.observe(&[Observation::single(key, key, 420.0, Some(now + 30.0))]);
        let before = g.server_now();
        drop(g.acquire(&plain(key)).await);
        let waited = g.server_now() - before;
        // It waited for the reported reset, and not past it by more than scheduling slack.
        assert!(waited >= 25.0, "waited {waited} portal s");
        assert!(waited < 30.0 + 10.0, "waited {waited} portal s");
        let snap = g.snapshot();
        assert_eq!(snap.counters.operating_waits, 1);
        // Another method is not held back: no further wait is counted (an event, not a
        // bound on how fast this machine runs).
        drop(g.acquire(&plain("crm.lead.list")).await);
        assert_eq!(g.snapshot().counters.operating_waits, 1);
    }

    #[tokio::test]
    async fn a_429_blocks_the_method_until_its_reset() {
        let g = Governor::new(cfg());
        let now = g.server_now();
        g.observe(&[Observation::single("batch", "k", 10.0, Some(now + 20.0))]);
        g.on_operating_limit("batch");
        let t0 = g.server_now();
        drop(g.acquire(&plain("batch")).await);
        assert!(g.server_now() - t0 >= 15.0);
        assert_eq!(g.snapshot().counters.http_429, 1);
    }

    #[test]
    fn figures_out_of_order_do_not_shrink_usage_within_a_window() {
        let mut m = MethodState::default();
        let o = |op, r| Observation::single("k", "k", op, Some(r));
        record_figure(&mut m, &o(10.0, 700.0), 100.0, 600.0, true);
        record_figure(&mut m, &o(30.0, 700.0), 130.0, 600.0, true);
        record_figure(&mut m, &o(20.0, 700.0), 131.0, 600.0, true);
        assert_eq!(m.used, 30.0);
        // The first figure is a baseline (not this call's cost); the growth after it is; the
        // late, lower figure teaches nothing.
        assert_eq!(m.estimates["k"], 20.0);
        assert_eq!(m.baskets, vec![(1, 10.0), (2, 20.0)]);
        // The first basket left the window: the model follows the figure.
        record_figure(&mut m, &o(20.0, 760.0), 700.0, 600.0, true);
        assert_eq!((m.used, m.reset_at), (20.0, Some(760.0)));
        assert_eq!(m.in_window(700.0, 600.0), 20.0);
        // Eleven minutes later everything has expired.
        assert_eq!(m.in_window(1400.0, 600.0), 0.0);
    }

    #[test]
    fn a_late_answer_from_before_a_basket_expired_is_not_growth() {
        let mut m = MethodState::default();
        let o = |kind, op, r| Observation::single("k", kind, op, Some(r));
        record_figure(&mut m, &o("k", 0.0, 600.0), 5.0, 600.0, true);
        record_figure(&mut m, &o("k", 30.0, 600.0), 10.0, 600.0, true);
        // An answer the portal produced just after minute 0 left the window...
        record_figure(&mut m, &o("k", 1.0, 1200.0), 600.5, 600.0, true);
        // ...and one it produced just before, read afterwards (the clock follows each
        // answer's `time.finish`): its figure still counts minute 0.
        record_figure(&mut m, &o("late", 30.5, 600.0), 599.9, 600.0, true);
        assert!(!m.estimates.contains_key("late"), "{:?}", m.estimates);
        assert_eq!(m.in_window(601.0, 600.0), 1.0);
        // A basket in its grace minute is not waited for.
        assert_eq!(m.next_expiry(601.0, 600.0), Some(1200.01));
    }

    #[test]
    fn a_fresh_processs_first_figure_is_a_baseline_not_a_cost() {
        // The portal has 300 s on the key from an earlier process; this one knows nothing.
        let mut m = MethodState::default();
        let o = |op| Observation {
            key: "batch".into(),
            operating: op,
            reset_at: Some(400.0),
            shares: vec![(PAGE.into(), 0.02)],
            processing: Vec::new(),
            processing_total: 0.0,
        };
        record_figure(&mut m, &o(300.0), 100.0, 600.0, true);
        assert!(m.estimates.is_empty(), "{:?}", m.estimates);
        assert_eq!(m.in_window(100.0, 600.0), 300.0);
        // The next answer's growth is a cost: 50 commands at 0.6 s.
        record_figure(&mut m, &o(330.0), 110.0, 600.0, true);
        assert!((m.estimates[PAGE] - 0.6).abs() < 1e-9);
    }

    fn tight() -> GovernorConfig {
        GovernorConfig {
            operating_limit_secs: Some(60.0),
            ..cfg()
        }
    }

    /// One `decide` on the governor's state (no waiting).
    fn decide(g: &Governor, key: &str, kinds: &[(&str, u32)]) -> Decision {
        let now = g.server_now();
        with_state(g.store.as_ref(), |s| g.decide(s, key, kinds, now, true))
    }

    /// Teaches `key` a figure of `op` now, after a baseline of 0.
    fn teach(g: &Governor, key: &str, op: f64, shares: &[(&str, f64)], reset_in: f64) {
        let now = g.server_now();
        let o = |operating| Observation {
            key: key.into(),
            operating,
            reset_at: Some(now + reset_in),
            shares: shares.iter().map(|(k, s)| (k.to_string(), *s)).collect(),
            processing: Vec::new(),
            processing_total: 0.0,
        };
        g.observe(&[o(0.0)]);
        g.observe(&[o(op)]);
    }

    #[test]
    fn a_batch_reserves_each_kinds_estimate_times_its_commands() {
        let g = Governor::new(tight());
        // A 5-command batch (4 pages at 0.8 s, a probe at 0.02 s) grew the key by 3.22 s.
        teach(
            &g,
            "crm.item.list",
            3.22,
            &[(PAGE, 0.8 / 3.22), (IDS, 0.02 / 3.22)],
            600.0,
        );
        let est = &g.snapshot().methods[0].estimates;
        assert!((est[PAGE] - 0.8).abs() < 1e-9, "{est:?}");
        assert!((est[IDS] - 0.02).abs() < 1e-9, "{est:?}");
        // Budget 54 s (60 less 10 %): a 50-page batch reserves 40 s, not the last call's 3.22.
        assert!(
            matches!(decide(&g, "crm.item.list", &[(PAGE, 50)]), Decision::Go(r) if (r - 40.0).abs() < 1e-9)
        );
        // A second one would cross the budget (3.22 + 40 + 40 > 54), but only because of the
        // first one in flight: held, not paused.
        assert!(matches!(
            decide(&g, "crm.item.list", &[(PAGE, 50)]),
            Decision::Hold(_)
        ));
        // 50 probes (ids only) still fit: 1 s.
        assert!(
            matches!(decide(&g, "crm.item.list", &[(IDS, 50)]), Decision::Go(r) if (r - 1.0).abs() < 1e-9)
        );
        // A kind never seen on the key is taken at the dearest one.
        assert!(
            matches!(decide(&g, "crm.item.list", &[("other", 1)]), Decision::Go(r) if (r - 0.8).abs() < 1e-9)
        );
    }

    #[test]
    fn cost_per_column_is_the_widest_kinds_estimate_per_column() {
        let g = Governor::new(tight());
        assert_eq!(g.cost_per_column("crm.item.list"), None);
        let wide = command_kind(
            "crm.item.list",
            &serde_json::json!({"select": ["a", "b", "c", "d"]}),
        );
        let ids = command_kind("crm.item.list", &serde_json::json!({"select": ["id"]}));
        assert!(wide.ends_with("/4"), "{wide}");
        // Learned on the `batch` key (whole-batch billing): 0.8 s per 4-column page.
        teach(
            &g,
            "batch",
            8.0,
            &[(wide.as_str(), 0.1), (ids.as_str(), 0.001)],
            300.0,
        );
        let per_column = g.cost_per_column("crm.item.list").unwrap();
        assert!((per_column - 0.2).abs() < 1e-9, "{per_column}");
        assert_eq!(g.cost_per_column("crm.deal.list"), None);
    }

    #[test]
    fn would_pause_tells_a_planner_which_request_goes_at_once() {
        let g = Governor::new(tight());
        // Whole-batch billing learned: the `batch` key is nearly spent, the method's is not.
        g.store.update(&mut |s| s.learned.batch_key = Evidence::Yes);
        teach(&g, "batch", 50.0, &[(PAGE, 0.02)], 300.0);
        teach(&g, "crm.item.list", 5.0, &[(PAGE, 1.0)], 300.0);
        let chain = Request::batch((0..6).map(|_| ("crm.item.list", PAGE)));
        let plain = Request::plain("crm.item.list", PAGE);
        // 6 pages at 1 s on `batch`: 50 + 6 > 54 pauses; one plain page on the method: 5 + 5 fits.
        assert!(g.would_pause(&chain));
        assert!(!g.would_pause(&plain));
        // Nothing was reserved by asking.
        assert!(g.store.read().methods.values().all(|m| m.reserved == 0.0));
        // A blocked key pauses whatever its figures say.
        g.on_operating_limit("crm.item.list");
        assert!(g.would_pause(&plain));
    }

    #[test]
    fn a_batch_is_cut_to_the_room_its_key_has_now() {
        let g = Governor::new(tight());
        g.store.update(&mut |s| s.learned.batch_key = Evidence::Yes);
        // `batch` is 50 s into its 54 s budget; a page costs 1 s on it.
        teach(&g, "batch", 50.0, &[(PAGE, 0.02)], 300.0);
        let pages = |n: usize| Request::batch((0..n).map(|_| ("crm.item.list", PAGE)));
        assert_eq!(g.batch_room(50, pages), 4);
        assert_eq!(g.batch_room(3, pages), 3);
        // No room at all: one command, the shortest wait there is.
        teach(&g, "batch", 54.0, &[(PAGE, 0.02)], 300.0);
        assert_eq!(g.batch_room(50, pages), 1);
        // Without an operating limit nothing is cut.
        let free = Governor::new(GovernorConfig {
            operating_limit_secs: None,
            ..cfg()
        });
        assert_eq!(free.batch_room(50, pages), 50);
    }

    #[test]
    fn a_pause_needs_the_keys_figures_and_ends_at_its_reset() {
        let g = Governor::new(tight());
        // 50 s reported of 60 (budget 54), pages at 1 s, reset in 42 s.
        teach(&g, "batch", 50.0, &[(PAGE, 0.02)], 42.0);
        let reset = g.snapshot().methods[0].reset_at.unwrap();
        match decide(&g, "batch", &[(PAGE, 50)]) {
            Decision::Pause { until, why } => {
                assert!(until <= reset, "{until} past the reset {reset}");
                assert_eq!(why.used, 50.0);
                assert_eq!(why.budget, 54.0);
                assert!((why.need - 50.0).abs() < 1e-9, "{why:?}");
                assert_eq!(why.reset_at, Some(reset));
            }
            _ => panic!("expected a pause"),
        }
        // A key with no figures of its own never pauses, whatever other keys report.
        assert!(matches!(
            decide(&g, "crm.activity.list", &[(PAGE, 50)]),
            Decision::Go(r) if r <= MIN_RESERVATION
        ));
    }

    #[test]
    fn once_the_reset_passed_one_request_fetches_fresh_figures() {
        let g = Governor::new(tight());
        teach(&g, "batch", 53.0, &[(PAGE, 0.02)], 0.001);
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(matches!(
            decide(&g, "batch", &[(PAGE, 50)]),
            Decision::Go(_)
        ));
        assert!(matches!(
            decide(&g, "batch", &[(PAGE, 50)]),
            Decision::Hold(_)
        ));
    }

    #[test]
    fn a_call_in_flight_that_is_never_answered_does_not_hold_forever() {
        // A listing's next batch, admitted, then suspended by its own task while the rows
        // are joined: its reservation must not block the join's request for good.
        let g = Governor::new(tight());
        teach(&g, "batch", 10.0, &[(PAGE, 0.02)], 600.0);
        assert!(matches!(
            decide(&g, "batch", &[(PAGE, 120)]),
            Decision::Go(_)
        ));
        assert!(matches!(
            decide(&g, "batch", &[(PAGE, 120)]),
            Decision::Hold(_)
        ));
        let now = g.server_now();
        let d = with_state(g.store.as_ref(), |s| {
            g.decide(s, "batch", &[(PAGE, 120)], now, false)
        });
        assert!(matches!(d, Decision::Go(_)));
    }

    #[test]
    fn the_estimate_rises_at_once_and_decays_slowly() {
        let mut m = MethodState::default();
        let batch = |op, share| Observation {
            key: "k".into(),
            operating: op,
            reset_at: Some(700.0),
            shares: vec![("k".into(), share)],
            processing: Vec::new(),
            processing_total: 0.0,
        };
        record_figure(&mut m, &batch(0.0, 1.0), 100.0, 600.0, true);
        // Ids only: 50 commands at 0.05 s.
        record_figure(&mut m, &batch(2.5, 0.02), 100.0, 600.0, true);
        assert!((m.estimates["k"] - 0.05).abs() < 1e-9);
        // Then full rows: 4 commands at 0.6 s. The next 50-page batch must not be reserved at
        // a blend of the two.
        record_figure(&mut m, &batch(4.9, 0.25), 110.0, 600.0, true);
        assert!((m.estimates["k"] - 0.6).abs() < 1e-9);
        record_figure(&mut m, &batch(7.4, 0.02), 120.0, 600.0, true);
        assert!((m.estimates["k"] - 0.38).abs() < 1e-9);
    }

    /// A batch answer: `pages` commands of `method` at `cost` each, with the outer figure and
    /// each command's nested figure from `nested(i)`.
    fn answer(
        method: &str,
        pages: usize,
        cost: f64,
        outer: Option<f64>,
        nested: impl Fn(usize) -> Option<f64>,
    ) -> BatchFigures {
        BatchFigures {
            operating: outer,
            reset_at: outer.map(|_| 1000.0),
            commands: (0..pages)
                .map(|i| CommandFigure {
                    method: method.into(),
                    kind: format!("{method}#rows"),
                    operating: nested(i),
                    reset_at: nested(i).map(|_| 1000.0),
                    processing: Some(cost),
                })
                .collect(),
        }
    }

    fn keys(r: &BatchReading) -> Vec<(&str, f64)> {
        r.observations
            .iter()
            .map(|o| (o.key.as_str(), o.operating))
            .collect()
    }

    #[test]
    fn per_method_billing_nested_figures_grow_with_their_method() {
        // The batch key stays at 0; crm.deal.list grows command by command from 100.
        let r = read_batch(&answer("crm.deal.list", 4, 0.5, Some(0.0), |i| {
            Some(100.0 + 0.5 * (i + 1) as f64)
        }));
        assert_eq!(r.report, NestedReport::OwnMethod);
        assert_eq!((r.batch_key, r.nested_keys), (Evidence::No, Evidence::Yes));
        assert_eq!(keys(&r), [("crm.deal.list", 102.0)]);
    }

    #[test]
    fn whole_batch_billing_a_nested_figures_of_their_own_flat_keys() {
        let r = read_batch(&answer("crm.deal.list", 4, 0.5, Some(66.0), |_| Some(3.0)));
        assert_eq!(r.report, NestedReport::OwnMethod);
        assert_eq!((r.batch_key, r.nested_keys), (Evidence::Yes, Evidence::No));
        // The method's own (flat) figure stays its own; the batch key gets the outer one.
        assert_eq!(keys(&r), [("batch", 66.0), ("crm.deal.list", 3.0)]);
        let shares = &r.observations[0].shares;
        assert_eq!(shares.len(), 1);
        assert!((shares[0].1 - 0.25).abs() < 1e-9);
    }

    #[test]
    fn whole_batch_billing_b_nested_figures_are_the_batch_running_total() {
        // The case: 64 s before, 4 pages at 0.5 s, every nested entry the batch key's
        // running total (pending included); nothing on crm.activity.list.
        let r = read_batch(&answer("crm.activity.list", 4, 0.5, Some(66.0), |i| {
            Some(64.0 + 0.5 * (i + 1) as f64)
        }));
        assert_eq!(r.report, NestedReport::BatchTotal);
        assert_eq!(r.batch_key, Evidence::Yes);
        assert_eq!(r.nested_keys, Evidence::Unknown);
        assert_eq!(keys(&r), [("batch", 66.0)]);
        // A basket left the window while the batch ran: the top-level figure is lower, and
        // so are the nested figures after the drop.
        let r = read_batch(&answer("crm.activity.list", 4, 0.5, Some(40.0), |i| {
            Some(if i < 2 { 64.0 } else { 38.0 } + 0.5 * (i + 1) as f64)
        }));
        assert_eq!(r.report, NestedReport::BatchTotal);
        assert_eq!(keys(&r), [("batch", 40.0)]);
        // Without a top-level figure, one rising sequence across methods is one key's.
        let mut f = answer("crm.deal.list", 2, 0.5, None, |i| Some(10.0 + i as f64));
        f.commands[1].method = "crm.lead.list".into();
        let r = read_batch(&f);
        assert_eq!(r.report, NestedReport::BatchTotal);
        assert_eq!(keys(&r), [("batch", 11.0)]);
    }

    #[test]
    fn whole_batch_billing_c_no_nested_figures() {
        let r = read_batch(&answer("crm.deal.list", 4, 0.5, Some(66.0), |_| None));
        assert_eq!(r.report, NestedReport::Absent);
        assert_eq!(
            (r.batch_key, r.nested_keys),
            (Evidence::Yes, Evidence::Unknown)
        );
        assert_eq!(keys(&r), [("batch", 66.0)]);
    }

    #[test]
    fn both_billings_grow_both_keys() {
        let r = read_batch(&answer("crm.deal.list", 4, 0.5, Some(66.0), |i| {
            Some(20.0 + 0.5 * (i + 1) as f64)
        }));
        assert_eq!(r.report, NestedReport::OwnMethod);
        assert_eq!((r.batch_key, r.nested_keys), (Evidence::Yes, Evidence::Yes));
        assert_eq!(keys(&r), [("batch", 66.0), ("crm.deal.list", 22.0)]);
    }

    fn batch_of(method: &str, kind: &str, n: usize) -> Request {
        Request::batch((0..n).map(|_| (method, kind)))
    }

    #[test]
    fn a_batch_is_charged_to_the_keys_the_figures_showed_billing() {
        let req = batch_of("crm.deal.list", "d", 3);
        let charged =
            |b: Billing| -> Vec<String> { b.keys(&req).keys().map(|k| k.to_string()).collect() };
        let learn = |batch_key, nested_keys| Billing {
            batch_key,
            nested_keys,
            nested_report: NestedReport::OwnMethod,
        };
        use Evidence::*;
        assert_eq!(charged(Billing::default()), ["batch", "crm.deal.list"]);
        assert_eq!(charged(learn(No, Yes)), ["crm.deal.list"]);
        assert_eq!(charged(learn(Yes, No)), ["batch"]);
        assert_eq!(charged(learn(Yes, Unknown)), ["batch", "crm.deal.list"]);
        assert_eq!(learn(Yes, Yes).summary(), BatchBilling::Both);
        // A plain call is its method's, whatever batches do.
        assert_eq!(
            learn(Yes, No)
                .keys(&plain("crm.deal.list"))
                .into_keys()
                .collect::<Vec<_>>(),
            ["crm.deal.list"]
        );
    }

    #[tokio::test]
    async fn under_variant_b_a_batch_never_pauses_on_the_nested_method() {
        // The bug: whole-batch billing, nested figures = the batch key's running total. A
        // sync's batches of several methods at 66–76 s of 480 on `batch` must not pause.
        let g = Governor::new(cfg());
        let mut total = 0.0;
        for method in ["crm.deal.list", "crm.lead.list", "crm.activity.list"] {
            for _ in 0..3 {
                let before = total;
                let f = answer(method, 5, 0.6, Some(before + 3.0), |i| {
                    Some(before + 0.6 * (i + 1) as f64)
                });
                total += 3.0;
                let permit = g
                    .acquire(&batch_of(method, &format!("{method}#rows"), 5))
                    .await;
                g.observe_batch(&permit, &f);
                drop(permit);
            }
        }
        let learned = g.billing();
        assert_eq!(learned.summary(), BatchBilling::WholeBatch);
        assert_eq!(learned.nested_report, NestedReport::BatchTotal);
        let snap = g.snapshot();
        assert_eq!(snap.counters.operating_waits, 0, "{snap:?}");
        // Only the batch key has figures, and its estimate is one page, not a running total.
        let batch = snap.methods.iter().find(|m| m.key == "batch").unwrap();
        assert!((batch.estimate_per_command - 0.6).abs() < 1e-9, "{batch:?}");
        assert!(
            snap.methods
                .iter()
                .filter(|m| m.key != "batch")
                .all(|m| m.used == 0.0 && m.estimate_per_command == 0.0),
            "{snap:?}"
        );
        // The next full batch (50 pages = 30 s) fits: 27 + 30 of 432.
        let t0 = g.server_now();
        drop(
            g.acquire(&batch_of("crm.activity.list", "crm.activity.list#rows", 50))
                .await,
        );
        assert!(g.server_now() - t0 < 5.0);
        assert_eq!(g.snapshot().counters.operating_waits, 0);
    }

    #[test]
    fn a_listing_spreads_onto_plain_calls_under_both_billing_only_while_its_rest_fits() {
        let g = Governor::new(cfg());
        // `both`: `batch` at 66 s and the nested method's own figures growing (22 s).
        g.observe_batch_with(
            &answer("crm.deal.list", 4, 0.5, Some(66.0), |i| {
                Some(20.0 + 0.5 * (i + 1) as f64)
            }),
            |_, _| true,
        );
        assert_eq!(g.billing().summary(), BatchBilling::Both);
        // `batch` is the busiest key and 66 + 100 fits its budget: spread, and batches wait.
        assert!(g.spread_under_both(Some(100.0)));
        assert!(g.batch_should_yield_to("crm.item.list", Some(100.0)));
        // A rest that outgrows the budget, or one not known yet: neither.
        assert!(!g.spread_under_both(Some(400.0)));
        assert!(!g.batch_should_yield_to("crm.item.list", Some(400.0)));
        assert!(!g.batch_should_yield_to("crm.item.list", None));

        // Whole-batch billing: no spreading of companion reads; a batch waits while `batch`
        // carries more than the method key its plain pages pay, whatever the rest.
        let g = Governor::new(cfg());
        g.observe_batch_with(
            &answer("crm.deal.list", 4, 0.5, Some(66.0), |_| None),
            |_, _| true,
        );
        assert_eq!(g.billing().summary(), BatchBilling::WholeBatch);
        assert!(!g.spread_under_both(Some(100.0)));
        assert!(g.batch_should_yield_to("crm.item.list", None));
    }

    #[test]
    fn billing_is_relearned_when_the_evidence_changes() {
        let g = Governor::new(cfg());
        g.observe_batch_with(
            &answer("crm.deal.list", 4, 0.5, Some(66.0), |_| None),
            |_, _| true,
        );
        assert_eq!(g.billing().summary(), BatchBilling::WholeBatch);
        // The portal now bills per method (batch key back at 0, nested figures growing).
        g.observe_batch_with(
            &answer("crm.deal.list", 4, 0.5, Some(0.0), |i| Some(1.0 + i as f64)),
            |_, _| true,
        );
        assert_eq!(g.billing().summary(), BatchBilling::PerMethod);
        assert_eq!(g.billing().nested_report, NestedReport::OwnMethod);
    }

    #[test]
    fn command_kinds_follow_the_select() {
        let rows = serde_json::json!({"select": ["*", "UF_*"], "filter": {">ID": 5}});
        let rows2 = serde_json::json!({"select": ["*", "UF_*"], "filter": {">ID": 99}});
        let ids = serde_json::json!({"select": ["ID"]});
        assert_eq!(
            command_kind("crm.deal.list", &rows),
            command_kind("crm.deal.list", &rows2)
        );
        assert_ne!(
            command_kind("crm.deal.list", &rows),
            command_kind("crm.deal.list", &ids)
        );
        assert_eq!(command_kind("user.get", &serde_json::json!({})), "user.get");
    }

    #[test]
    fn presets() {
        assert_eq!(GovernorConfig::enterprise().burst, 250.0);
        assert_eq!(GovernorConfig::on_premise().rate_per_sec, None);
        assert!(GovernorConfig::standard().bucket_capacity() < 50.0);
    }
}
