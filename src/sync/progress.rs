//! Progress of long loads: a live bar on a terminal, plain log lines otherwise.
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct Progress {
    entity: String,
    bar: Option<ProgressBar>,
    rows: AtomicU64,
    started: Instant,
    last_log: Mutex<Instant>,
}

impl Progress {
    /// A bar when stderr is a terminal, else a log line every 10 s.
    pub fn new(entity: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>24} {spinner} {pos} rows  {per_sec}  {elapsed}  {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(entity.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            entity: entity.to_string(),
            bar,
            rows: AtomicU64::new(0),
            started: Instant::now(),
            last_log: Mutex::new(Instant::now()),
        }
    }

    /// A progress that shows nothing and logs nothing (tests, daemon loads).
    pub fn hidden(entity: &str) -> Self {
        Self {
            entity: entity.to_string(),
            bar: None,
            rows: AtomicU64::new(0),
            started: Instant::now(),
            // Never due: hidden progress does not log.
            last_log: Mutex::new(Instant::now() + Duration::from_secs(365 * 86_400)),
        }
    }

    pub fn rows(&self, n: u64) {
        let total = self.rows.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(bar) = &self.bar {
            bar.set_position(total);
            return;
        }
        let mut last = match self.last_log.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if last.elapsed() >= Duration::from_secs(10) {
            *last = Instant::now();
            let secs = self.started.elapsed().as_secs_f64().max(0.001);
            tracing::info!(entity = %self.entity, rows = total, rows_per_sec = (total as f64 / secs) as u64, "loading");
        }
    }

    pub fn finish(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_with_message(message.to_string());
        }
    }
}
