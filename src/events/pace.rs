//! When the feed reads the queue next, and how many changes it expects: the freshness bound
//! (`events.max_delay`) less the time a read takes to write, sooner only for a flood; pages
//! sized for the last flow.
use crate::bitrix::listing::PAGE_SIZE;
use std::time::{Duration, Instant};

/// Pages of 50 changed rows per method and entity read with the queue, at most.
pub(super) const MAX_PAGES: usize = 8;

/// Changes a read aims to carry: reads wait for this many, within `max_delay`. Half of what
/// a read's own pages hold (the other half is room for the lookback and a flow that grows),
/// so waiting longer would only add a fetch by id: one more request and seconds of latency.
/// Every read is one request, so below this flow reads come every `max_delay`, the fewest the
/// freshness bound allows.
pub const ROWS_PER_READ: f64 = (MAX_PAGES * PAGE_SIZE / 2) as f64;

/// What a read is assumed to take from sending to its rows in ClickHouse until one has been
/// timed (`Feed::apply_time`).
pub const APPLY_TIME_GUESS: Duration = Duration::from_secs(2);

/// An entity whose rows changed lately.
#[derive(Debug, Clone, Copy)]
pub(super) struct Activity {
    pub(super) last: Instant,
    /// Rows it changed in the last lease that had any.
    pub(super) rows: usize,
    /// Those rows per portal second of the time that lease covered (unknown at the first
    /// read).
    pub(super) per_sec: Option<f64>,
}

impl Activity {
    /// Rows to expect in a read `elapsed` portal seconds after the previous one: the last
    /// lease's flow over that time, and no fewer than the last lease had.
    pub(super) fn expected(&self, elapsed: f64) -> f64 {
        let flow = self.per_sec.map_or(0.0, |r| r * elapsed);
        flow.max(self.rows as f64)
    }
}

/// What the last cycle's read found, as the pace needs it.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct LastRead {
    pub(super) events: usize,
    /// A full lease: more records are probably waiting.
    pub(super) full: bool,
    /// Time since the read before it (`None` at the first).
    pub(super) since_last_read: Option<Duration>,
}

/// The shortest wait between queue reads, and the longest a change may take to reach
/// ClickHouse (`events.poll_interval`, `events.max_delay`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    pub min: Duration,
    pub max: Duration,
}

impl Pace {
    /// The longest wait between reads: a change made just after a read must still be in
    /// ClickHouse within `max` when the next read takes `apply` to write it.
    pub fn longest_wait(self, apply: Duration) -> Duration {
        self.max.saturating_sub(apply).max(self.min)
    }
}

/// How long after a read's start the next one goes: at once after a full lease (more records
/// wait); the longest wait after an empty read; else the time the last flow of changes takes
/// to bring [`ROWS_PER_READ`] more, within `min` and the longest wait — a trickle waits the
/// longest so that one request carries every change the freshness bound lets it wait for, a
/// flood is read every `min`. A failed cycle (`None`) waits `min`.
pub(super) fn next_wait(pace: Pace, apply: Duration, last: Option<LastRead>) -> Duration {
    let longest = pace.longest_wait(apply);
    let Some(r) = last else {
        return pace.min;
    };
    if r.full {
        return Duration::ZERO;
    }
    if r.events == 0 {
        return longest;
    }
    let Some(period) = r.since_last_read.filter(|p| !p.is_zero()) else {
        return pace.min;
    };
    let per_sec = r.events as f64 / period.as_secs_f64();
    Duration::from_secs_f64(ROWS_PER_READ / per_sec).clamp(pace.min, longest)
}

/// `rows` changed per second over a read's window (`previous` read, this `read`, portal
/// seconds): from the first record's time (`first`) where the records carry one and it falls
/// in the window, else from the previous read; unknown at the first read of records without
/// a time.
pub(super) fn flow_per_sec(
    rows: usize,
    first: Option<f64>,
    (previous, read): (Option<f64>, f64),
) -> Option<f64> {
    let from = match (first, previous) {
        (Some(f), Some(p)) => f.max(p),
        (f, p) => f.or(p)?,
    };
    // Records have whole seconds: a flow seen for less than one counts as one.
    Some(rows as f64 / (read - from).max(1.0))
}

/// The apply time to plan with after one took `took`: a longer one counts at once, a shorter
/// one halves the gap (one quick read does not make the next slow one fit the bound).
pub(super) fn learned_apply(before: Duration, took: Duration) -> Duration {
    if took >= before {
        took
    } else {
        (before + took) / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_feed_reads_as_rarely_as_the_flow_allows_within_its_pace() {
        let pace = Pace {
            min: Duration::from_secs(5),
            max: Duration::from_secs(14),
        };
        // Reads that take 2 s to apply leave 12 s between them.
        let apply = Duration::from_secs(2);
        let longest = Duration::from_secs(12);
        let wait = |events, full, secs: Option<u64>| {
            let r = LastRead {
                events,
                full,
                since_last_read: secs.map(Duration::from_secs),
            };
            next_wait(pace, apply, Some(r))
        };
        assert_eq!(wait(1_000, true, Some(1)), Duration::ZERO);
        assert_eq!(wait(0, false, Some(12)), longest);
        // 20 changes a second: 200 more (what a read's pages hold, with room) take 10 s.
        assert_eq!(wait(200, false, Some(10)), Duration::from_secs(10));
        // 8 a second would take 25 s: the freshness bound comes first.
        assert_eq!(wait(80, false, Some(10)), longest);
        // A trickle waits the longest; a flood is read as often as allowed.
        assert_eq!(wait(3, false, Some(12)), longest);
        assert_eq!(wait(900, false, Some(5)), pace.min);
        // The first read has no flow to go by.
        assert_eq!(wait(3, false, None), pace.min);
        // A failed cycle.
        assert_eq!(next_wait(pace, apply, None), pace.min);
        // Reads slower than the bound still come no closer than the poll interval.
        assert_eq!(pace.longest_wait(Duration::from_secs(20)), pace.min);
    }

    #[test]
    fn pages_are_sized_for_the_flow_over_the_time_since_the_last_read() {
        let a = Activity {
            last: Instant::now(),
            rows: 34,
            per_sec: Some(8.0),
        };
        // The last lease covered 4 s; the next read comes 13 s after the last.
        assert_eq!(a.expected(13.0), 104.0);
        // Never fewer than the last lease brought.
        assert_eq!(a.expected(1.0), 34.0);
        let first = Activity { per_sec: None, ..a };
        assert_eq!(first.expected(13.0), 34.0);
    }

    #[test]
    fn a_flow_is_timed_from_its_first_record() {
        // 26 rows whose first record came 3 s before a read 12 s after the previous one.
        assert_eq!(
            flow_per_sec(26, Some(109.0), (Some(100.0), 112.0)),
            Some(26.0 / 3.0)
        );
        // Records stamped before the previous read (it left them): the window counts.
        assert_eq!(
            flow_per_sec(24, Some(90.0), (Some(100.0), 112.0)),
            Some(2.0)
        );
        // No record time: the whole window; nothing to go by at the first read.
        assert_eq!(flow_per_sec(24, None, (Some(100.0), 112.0)), Some(2.0));
        assert_eq!(flow_per_sec(24, None, (None, 112.0)), None);
        // A first read still times records that carry one.
        assert_eq!(flow_per_sec(24, Some(106.0), (None, 112.0)), Some(4.0));
        // A burst within the read's own second.
        assert_eq!(
            flow_per_sec(5, Some(112.0), (Some(100.0), 112.0)),
            Some(5.0)
        );
    }

    #[test]
    fn a_slow_read_counts_at_once_and_a_quick_one_only_halfway() {
        let s = Duration::from_secs;
        assert_eq!(learned_apply(s(2), s(3)), s(3));
        assert_eq!(learned_apply(s(3), s(1)), s(2));
    }
}
