//! What one load cost: the HTTP requests it sent and the server time the portal reported for
//! them (`time.processing`, what the operating budget bills). Counted for whatever runs inside
//! [`Meter::measure`]: the meter is task-local, so concurrent loads sharing one client and one
//! governor each count their own (the shared governor's counters cannot tell them apart).
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

tokio::task_local! {
    static CURRENT: Arc<Meter>;
}

#[derive(Debug, Default)]
pub struct Meter {
    requests: AtomicU64,
    /// Microseconds, so an atomic integer can sum them.
    processing_us: AtomicU64,
}

impl Meter {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Runs `f` with every Bitrix24 request it sends counted on this meter.
    pub async fn measure<F: Future>(self: &Arc<Self>, f: F) -> F::Output {
        CURRENT.scope(self.clone(), f).await
    }

    /// HTTP requests sent (retries included: each one went to the portal).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Seconds of server time the portal reported for the answered requests.
    pub fn operating_secs(&self) -> f64 {
        self.processing_us.load(Ordering::Relaxed) as f64 / 1e6
    }
}

/// Called by the client for every request it sends.
pub(crate) fn count_request() {
    let _ = CURRENT.try_with(|m| m.requests.fetch_add(1, Ordering::Relaxed));
}

/// Called by the client with the `time.processing` of every answer.
pub(crate) fn count_processing(secs: f64) {
    if secs.is_finite() && secs > 0.0 {
        let us = (secs * 1e6).round() as u64;
        let _ = CURRENT.try_with(|m| m.processing_us.fetch_add(us, Ordering::Relaxed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_only_inside_its_scope() {
        let a = Meter::new();
        let b = Meter::new();
        count_request();
        a.measure(async {
            count_request();
            count_processing(0.25);
            b.measure(async { count_request() }).await;
            count_processing(f64::NAN);
        })
        .await;
        assert_eq!((a.requests(), b.requests()), (1, 1));
        assert!((a.operating_secs() - 0.25).abs() < 1e-9);
        assert_eq!(b.operating_secs(), 0.0);
    }
}
