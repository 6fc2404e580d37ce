//! Leases nobody clears: a read whose answer was lost after the portal had leased the records
//! (a dropped connection the client retried, a process killed mid-request) leaves them
//! leased to a `process_id` no reader knows, and the portal never hands them out again. The
//! feed lists the queue's leases now and then and adopts one two checks in a row saw.
use std::collections::BTreeSet;
use std::time::Duration;

/// How often (portal seconds) the queue is checked for leases nobody clears
/// (`Feed::orphan_lease`).
pub const ORPHAN_CHECK_EVERY: Duration = Duration::from_secs(300);

/// Leases in the queue that are not this feed's, as seen by the checks so far.
#[derive(Debug, Default)]
pub(super) struct OrphanWatch {
    /// When the next check is due (portal seconds); `None` until the first cycle, which
    /// schedules the first check one interval later.
    pub(super) next_check: Option<f64>,
    /// Leases seen at the last check, not yet adopted.
    suspects: BTreeSet<String>,
}

impl OrphanWatch {
    /// Takes one check's leases (`held`, less `ours`); returns one that the previous check
    /// saw too. A live reader clears its lease within one read interval, so a lease that
    /// outlives two checks is nobody's.
    pub(super) fn adopt(&mut self, held: BTreeSet<String>, ours: &[String]) -> Option<String> {
        let held: BTreeSet<String> = held.into_iter().filter(|p| !ours.contains(p)).collect();
        let found = held.intersection(&self.suspects).next().cloned();
        self.suspects = held;
        if let Some(p) = &found {
            self.suspects.remove(p);
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_adopted_when_two_checks_in_a_row_see_it_and_it_is_not_ours() {
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let mut w = OrphanWatch::default();
        // First sighting: nothing yet (a live reader may clear it before the next check).
        assert_eq!(w.adopt(set(&["a", "b", "mine"]), &["mine".into()]), None);
        // "b" was cleared meanwhile; "a" is still there: adopted.
        assert_eq!(
            w.adopt(set(&["a", "c", "mine"]), &["mine".into()]),
            Some("a".into())
        );
        // "c" was seen once; at the next check it is adopted, and "a" is not offered again.
        assert_eq!(w.adopt(set(&["a", "c"]), &[]), Some("c".into()));
        assert_eq!(w.adopt(set(&[]), &[]), None);
    }
}
