//! Simulated clock, the request-rate leaky bucket, the per-method operating-time limiter and the
//! calibrated cost model.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

/// Column count of the "few fields" select in the published `crm.lead.list` measurement.
pub(crate) const REF_FEW_COLS: f64 = 5.0;
/// Column count of "all fields + UF" of a contact; equals this emulator's default contact width
/// for `select: ["*", "UF_*"]` (a real contact with ~20 user fields is about as wide).
pub(crate) const REF_ALL_COLS: f64 = 62.0;

/// Published measurements the model is calibrated to (`docs/bitrix24-api.md` §2, with sources).
pub mod published {
    /// `crm.lead.list` on 2,387,743 leads: with COUNT (start=0) vs without (start=-1).
    pub const LEADS_ROWS: f64 = 2_387_743.0;
    pub const LEADS_WITH_COUNT_SECS: f64 = 49.9;
    pub const LEADS_NO_COUNT_SECS: f64 = 0.097;
    /// 100k-contact portal, 2,700 rows (54 pages), all fields + UF.
    pub const CONTACTS_ROWS: f64 = 100_000.0;
    pub const CONTACT_PAGES: f64 = 54.0;
    pub const CONTACTS_WITH_COUNT_SECS: f64 = 168.75;
    pub const CONTACTS_NO_COUNT_SECS: f64 = 32.68;
}

/// Operating seconds a call costs on the simulated server.
///
/// ```text
/// page(rows, cols)  = page_base + rows * cols * row_col            (rows returned, cols selected)
/// count(n, cols)    = n * (count_row + cols * count_row_col)        (n = rows matching the filter)
/// list call         = page(..) + (start >= 0 ? count(..) : 0)
/// other calls       = call_secs (+ page(1, cols) for *.get)
/// ```
/// The four coefficients are solved from the two published measurements (see [`published`]):
/// the page terms from 0.097 s (50 rows × 5 cols) and 32.68/54 s (50 rows × all cols), the count
/// terms from (49.9 − 0.097)/2,387,743 s per lead row at 5 cols and (168.75 − 32.68)/54/100,000 s
/// per contact row at all cols (the COUNT joins the same UF/multifield tables as the select).
#[derive(Debug, Clone, PartialEq)]
pub struct CostModel {
    pub page_base_secs: f64,
    pub row_col_secs: f64,
    pub count_row_secs: f64,
    pub count_row_col_secs: f64,
    pub call_secs: f64,
    /// Factor on every coefficient above (0.5–2): a slower or faster portal. The control API
    /// changes the one in force.
    pub scale: f64,
    /// Real-time cap on the simulated processing delay, so tests stay fast.
    pub max_real_delay_secs: f64,
}

impl Default for CostModel {
    fn default() -> Self {
        use published::*;
        let page_all = CONTACTS_NO_COUNT_SECS / CONTACT_PAGES;
        let row_col = (page_all - LEADS_NO_COUNT_SECS) / (50.0 * (REF_ALL_COLS - REF_FEW_COLS));
        let page_base = LEADS_NO_COUNT_SECS - 50.0 * REF_FEW_COLS * row_col;
        let count_few = (LEADS_WITH_COUNT_SECS - LEADS_NO_COUNT_SECS) / LEADS_ROWS;
        let count_all =
            (CONTACTS_WITH_COUNT_SECS - CONTACTS_NO_COUNT_SECS) / CONTACT_PAGES / CONTACTS_ROWS;
        let count_row_col = (count_all - count_few) / (REF_ALL_COLS - REF_FEW_COLS);
        CostModel {
            page_base_secs: page_base,
            row_col_secs: row_col,
            count_row_secs: count_few - REF_FEW_COLS * count_row_col,
            count_row_col_secs: count_row_col,
            call_secs: 0.02,
            scale: 1.0,
            max_real_delay_secs: 2.0,
        }
    }
}

impl CostModel {
    pub fn page(&self, rows: usize, cols: usize) -> f64 {
        self.page_base_secs + rows as f64 * cols as f64 * self.row_col_secs
    }

    pub fn count(&self, rows: u64, cols: usize) -> f64 {
        rows as f64 * (self.count_row_secs + cols as f64 * self.count_row_col_secs)
    }
}

/// Simulated portal clock: `sim = sim_start + advanced + real_elapsed * scale`.
#[derive(Debug)]
pub(crate) struct SimClock {
    real_start: Instant,
    sim_start: f64,
    scale: f64,
    advanced: f64,
}

impl SimClock {
    pub(crate) fn new(scale: f64) -> SimClock {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        SimClock {
            real_start: Instant::now(),
            sim_start: now,
            scale,
            advanced: 0.0,
        }
    }

    pub(crate) fn now(&self) -> f64 {
        self.sim_start + self.advanced + self.real_start.elapsed().as_secs_f64() * self.scale
    }

    pub(crate) fn scale(&self) -> f64 {
        self.scale
    }

    /// Jump the simulated clock forward (control API; lets tests expire tokens or windows).
    pub(crate) fn advance(&mut self, secs: f64) {
        if secs.is_finite() && secs > 0.0 {
            self.advanced += secs;
        }
    }
}

/// Leaky bucket: each request adds 1, the level drains at `rate` per second.
#[derive(Debug, Default)]
pub(crate) struct LeakyBucket {
    level: f64,
    last: f64,
}

impl LeakyBucket {
    /// Admit a request at `now` or refuse it (refused requests do not fill the bucket).
    pub(crate) fn try_acquire(&mut self, now: f64, rate: f64, burst: f64) -> bool {
        let elapsed = (now - self.last).max(0.0);
        self.level = (self.level - elapsed * rate).max(0.0);
        self.last = now;
        if self.level + 1.0 > burst {
            return false;
        }
        self.level += 1.0;
        true
    }
}

#[derive(Debug, Clone, Copy)]
struct Basket {
    minute: i64,
    first_call: f64,
    secs: f64,
}

/// Per-method operating time in one-minute baskets over a sliding window.
#[derive(Debug, Default)]
pub(crate) struct OperatingLimiter {
    methods: HashMap<String, VecDeque<Basket>>,
}

impl OperatingLimiter {
    fn prune(q: &mut VecDeque<Basket>, now: f64, window: u64) {
        let baskets = (window / 60).max(1) as i64;
        let cur = (now / 60.0).floor() as i64;
        while q.front().is_some_and(|b| b.minute <= cur - baskets) {
            q.pop_front();
        }
    }

    /// (accumulated operating seconds, reset time of the oldest basket).
    pub(crate) fn state(&mut self, method: &str, now: f64, window: u64) -> (f64, Option<i64>) {
        let Some(q) = self.methods.get_mut(method) else {
            return (0.0, None);
        };
        Self::prune(q, now, window);
        let total = q.iter().map(|b| b.secs).sum();
        let reset = q
            .front()
            .map(|b| (b.first_call + window as f64).floor() as i64);
        (total, reset)
    }

    pub(crate) fn add(&mut self, method: &str, now: f64, secs: f64, window: u64) {
        let q = self.methods.entry(method.to_string()).or_default();
        Self::prune(q, now, window);
        let minute = (now / 60.0).floor() as i64;
        match q.back_mut() {
            Some(b) if b.minute == minute => b.secs += secs,
            _ => q.push_back(Basket {
                minute,
                first_call: now,
                secs,
            }),
        }
    }

    pub(crate) fn reset(&mut self) {
        self.methods.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(actual: f64, expected: f64) -> bool {
        ((actual - expected) / expected).abs() < 0.05
    }

    #[test]
    fn calibration_reproduces_published_figures() {
        use published::*;
        let c = CostModel::default();
        let few = REF_FEW_COLS as usize;
        let all = REF_ALL_COLS as usize;
        let lead_no = c.page(50, few);
        let lead_with = lead_no + c.count(LEADS_ROWS as u64, few);
        assert!(within(lead_no, LEADS_NO_COUNT_SECS), "{lead_no}");
        assert!(within(lead_with, LEADS_WITH_COUNT_SECS), "{lead_with}");
        let contacts_no = CONTACT_PAGES * c.page(50, all);
        let contacts_with = contacts_no + CONTACT_PAGES * c.count(CONTACTS_ROWS as u64, all);
        assert!(within(contacts_no, CONTACTS_NO_COUNT_SECS), "{contacts_no}");
        assert!(
            within(contacts_with, CONTACTS_WITH_COUNT_SECS),
            "{contacts_with}"
        );
        // ~20.9 µs per row for the few-column COUNT, as derived in `docs/bitrix24-api.md` §2.
        assert!(within(c.count(1_000_000, few) / 1e6, 20.9e-6));
        assert!(c.page_base_secs > 0.0 && c.count_row_secs > 0.0);
    }

    #[test]
    fn leaky_bucket_bursts_then_drains() {
        let mut b = LeakyBucket::default();
        let admitted = (0..60).filter(|_| b.try_acquire(100.0, 2.0, 50.0)).count();
        assert_eq!(admitted, 50);
        assert!(!b.try_acquire(100.0, 2.0, 50.0));
        assert!(b.try_acquire(100.5, 2.0, 50.0));
        assert!(!b.try_acquire(100.5, 2.0, 50.0));
    }

    #[test]
    fn operating_window_slides() {
        let mut o = OperatingLimiter::default();
        o.add("crm.deal.list", 6000.0, 100.0, 600);
        o.add("crm.deal.list", 6030.0, 50.0, 600);
        o.add("crm.deal.list", 6200.0, 30.0, 600);
        let (total, reset) = o.state("crm.deal.list", 6200.0, 600);
        assert_eq!(total, 180.0);
        assert_eq!(reset, Some(6600));
        let (total, _) = o.state("crm.deal.list", 6600.0, 600);
        assert_eq!(total, 30.0);
        assert_eq!(o.state("other", 6600.0, 600).0, 0.0);
    }
}
