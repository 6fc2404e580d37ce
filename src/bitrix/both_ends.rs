//! A big listing read from both ends at once, when the portal bills whole batches to one key.
//!
//! Under whole-batch billing (learned from the portal's figures, `governor::Billing`) every
//! chained `batch` is billed to the `batch` key, while a plain call is billed to its own
//! method: two budgets within the one request bucket. One sequential stream can only use them
//! in turn (a plain page fills the gap between two batches), so a big listing runs two
//! streams: the usual chain of batches ascending by ID from the bottom (`listing::Chain`), and
//! plain pages descending by ID from the top (`order ID DESC`, `<ID` cursor, `start=-1`: still
//! COUNT-free), meeting in the middle. See docs/architecture.md, invariant 5.
//!
//! Every row is yielded once: both sides clip their pages against a shared [`Frontier`] under
//! one lock, and a page is handed on in the same locked step that moves the frontier, so no
//! row is claimed by a side without being delivered. Nothing is missed: the ascending side has
//! read every row up to `asc_covered`, the descending side every row from `desc_low` up to
//! `desc_top`; they have met when a page of one side reaches into the other's range. Rows
//! created while the listing runs get ids above `desc_top`: the ascending chain reads on from
//! there until a page shorter than 50 rows proves the end, as a plain listing does.
//!
//! The companion columns of every row are still read in batches (`pipeline::companion`): with
//! the descending side keeping the request bucket busy, a plain call per 50 rows would cost
//! more bucket time than the `batch` budget it spares.
use super::client::Client;
use super::error::BitrixError;
use super::governor::{BATCH_KEY, Evidence};
use super::listing::{
    Chain, ListRequest, PAGE_SIZE, Page, base_params, filter_mut, malformed, raw_rows, row_id,
    set_order, shaped,
};
use super::methods::{FilterStyle, MethodSpec};
use super::raw::RawRow;
use async_stream::try_stream;
use futures::Stream;
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// Rows the ascending side must still expect before a descending side pays: below this the
/// listing fits a few batches and one stream is as fast.
const MIN_ROWS_LEFT: f64 = 5_000.0;
/// Selected fields up to which a listing counts as narrow (see [`pays`]).
const NARROW_SELECT: usize = 4;
/// Pages of the descending side read but not yet taken by the consumer (bounds memory).
const DESC_PAGES_AHEAD: usize = 100;
/// How often a batch held back for balance looks at the bill again.
const BALANCE_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// Lists `req` (an ID-chained method) from both ends where that spreads the bill over two
/// budgets; otherwise as one ascending chain.
pub(super) fn list(
    client: Arc<Client>,
    spec: &'static MethodSpec,
    req: ListRequest,
) -> impl Stream<Item = Result<Page, BitrixError>> {
    try_stream! {
        let mut chain = Chain::new(spec, &req);
        let frontier = Arc::new(Mutex::new(Frontier::default()));
        let (tx, mut rx) = mpsc::unbounded_channel::<Result<(Page, OwnedSemaphorePermit), BitrixError>>();
        let mut descent: Option<DescentTask> = None;
        let mut bill = AscendingBill::start(&client);
        loop {
            let Some(low) = lock(&frontier).unmet_low() else {
                break;
            };
            chain.set_cap(low.map(|l| l - 1));
            // A batch waits while the `batch` key carries more than the key the descending
            // side's plain pages pay (under `both` billing: more than any key): the bill stays
            // split, leaving the shared `batch` budget to other loads.
            let rest = bill.rest(&client, &chain);
            lock(&frontier).companion_plain = client.governor().spread_under_both(rest);
            while descent.as_ref().is_some_and(DescentTask::running)
                && client.governor().batch_should_yield_to(spec.list, rest)
            {
                if let Ok(Some(item)) = tokio::time::timeout(BALANCE_POLL, rx.recv()).await {
                    yield item?.0;
                }
            }
            lock(&frontier).asc_planned = chain.planned_reach();
            let Some(pages) = chain.next_batch(&client).await? else {
                break;
            };
            bill.rows += pages.iter().map(|p| p.rows.len()).sum::<usize>();
            let mut met = false;
            for page in pages {
                // The guard must be gone before `?` (an await point in this stream).
                let clipped = lock(&frontier).clip_ascending(spec, page.rows);
                let (kept, now_met) = clipped?;
                met |= now_met;
                if !kept.is_empty() {
                    yield Page::new(kept);
                }
            }
            while let Ok(item) = rx.try_recv() {
                yield item?.0;
            }
            if met || chain.done() {
                break;
            }
            if descent.is_none() && pays(&client, &req, &chain) {
                tracing::debug!(method = spec.list, "listing from both ends");
                descent = Some(DescentTask::spawn(&client, spec, &req, &frontier, tx.clone()));
            }
        }
        // Rows created meanwhile lie above the top the descending side started from.
        let top = lock(&frontier).finish();
        if let Some(top) = top.filter(|_| !chain.done()) {
            chain.skip_to(top);
            while let Some(pages) = chain.next_batch(&client).await? {
                for page in pages {
                    yield page;
                }
            }
        }
        drop(descent);
        drop(tx);
        while let Some(item) = rx.recv().await {
            yield item?.0;
        }
    }
}

/// What the ascending side's batches have cost so far, to estimate the rest of them.
struct AscendingBill {
    /// The `batch` key's load when the listing started (other loads may share it).
    batch_at_start: f64,
    rows: usize,
}

impl AscendingBill {
    fn start(client: &Client) -> Self {
        Self {
            batch_at_start: client.governor().key_load(BATCH_KEY),
            rows: 0,
        }
    }

    /// The `batch` key's expected bill for the rows the ascending chain has left, at the cost
    /// per row its batches have had so far (`None` before the first).
    fn rest(&self, client: &Client, chain: &Chain) -> Option<f64> {
        if self.rows == 0 {
            return None;
        }
        let spent = (client.governor().key_load(BATCH_KEY) - self.batch_at_start).max(0.0);
        Some(chain.rows_left()? * spent / self.rows as f64)
    }
}

fn lock(frontier: &Mutex<Frontier>) -> MutexGuard<'_, Frontier> {
    // A side that panicked mid-update leaves the data consistent (updates are single writes).
    frontier.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether a descending side pays: the portal bills batches to the `batch` key, the listing
/// reads whole rows (a page of a few columns, ids for a reconcile or owners for product rows,
/// costs mostly its base, so 50 rows a request lose), the method takes a `<ID` filter in an
/// object, and enough rows are left.
fn pays(client: &Client, req: &ListRequest, chain: &Chain) -> bool {
    let wide = req.select.is_empty() || req.select.len() > NARROW_SELECT;
    client.governor().billing().batch_key == Evidence::Yes
        && !req.ids_only
        && wide
        && chain.spec().filter_style == FilterStyle::Object
        && chain.rows_left().is_some_and(|n| n >= MIN_ROWS_LEFT)
}

/// What each side has read. Ids only grow upwards from `asc_covered` and downwards from
/// `desc_low`; the sides have met once they touch.
#[derive(Debug, Default)]
struct Frontier {
    /// The descending side's pages get their companion columns with plain calls too
    /// (`Governor::spread_under_both`).
    companion_plain: bool,
    /// Every row up to this id has been read by the ascending side.
    asc_covered: Option<i64>,
    /// Every row from `desc_low` up to `desc_top` has been read by the descending side.
    desc_low: Option<i64>,
    desc_top: Option<i64>,
    /// Where the ascending side's batch in flight is expected to reach: the descending side
    /// stops before reading rows that batch reads anyway (a hint; coverage never rests on it).
    asc_planned: Option<i64>,
    met: bool,
    /// The ascending side has ended: the descending one must not claim more rows.
    finished: bool,
}

impl Frontier {
    /// While the sides have not met, `Some` of the lowest id the descending side has read
    /// (`None` inside before it has read any); `None` once they have.
    fn unmet_low(&self) -> Option<Option<i64>> {
        (!self.met).then_some(self.desc_low)
    }

    /// The rows of an ascending page below the descending side's range; `true` when the page
    /// reached into that range (everything below it has now been read).
    fn clip_ascending(
        &mut self,
        spec: &MethodSpec,
        rows: Vec<RawRow>,
    ) -> Result<(Vec<RawRow>, bool), BitrixError> {
        let low = self.desc_low.unwrap_or(i64::MAX);
        let mut kept = Vec::with_capacity(rows.len());
        for row in rows {
            let id = id_of(spec, &row)?;
            if id >= low {
                self.met = true;
                self.asc_covered = Some(low - 1);
                return Ok((kept, true));
            }
            self.asc_covered = Some(id);
            kept.push(row);
        }
        Ok((kept, false))
    }

    /// The rows of a descending page above the ascending side's range; `true` when the
    /// descending side is done (it reached that range, or the bottom with a short page).
    fn clip_descending(
        &mut self,
        spec: &MethodSpec,
        rows: Vec<RawRow>,
    ) -> Result<(Vec<RawRow>, bool), BitrixError> {
        if self.met || self.finished {
            return Ok((Vec::new(), true));
        }
        let short = rows.len() < PAGE_SIZE;
        let covered = self.asc_covered.unwrap_or(i64::MIN);
        let mut kept = Vec::with_capacity(rows.len());
        for row in rows {
            let id = id_of(spec, &row)?;
            if id <= covered {
                self.met = true;
                return Ok((kept, true));
            }
            self.desc_top.get_or_insert(id);
            self.desc_low = Some(id);
            kept.push(row);
        }
        if short {
            // Nothing is left below: the ascending side has only the rows above to read.
            self.met = true;
        }
        Ok((kept, short))
    }

    /// Whether the descending side should stop before its next page: the sides met, or the
    /// ascending side's batch in flight is expected to read everything below `desc_low`. (The
    /// ascending side then reads on until it reaches `desc_low`.)
    fn descent_done(&self) -> bool {
        let reached = matches!(
            (self.desc_low, self.asc_planned),
            (Some(low), Some(planned)) if low <= planned
        );
        self.met || self.finished || reached
    }

    /// Ends the descending side; the id above which the ascending side must read on (where
    /// the descending side started), if it ever read a row.
    fn finish(&mut self) -> Option<i64> {
        self.finished = true;
        self.desc_top
    }
}

fn id_of(spec: &MethodSpec, row: &RawRow) -> Result<i64, BitrixError> {
    row_id(spec, row)
        .ok_or_else(|| malformed(spec, &format!("a row has no numeric `{}`", spec.id.row)))
}

type Sender = mpsc::UnboundedSender<Result<(Page, OwnedSemaphorePermit), BitrixError>>;

/// The descending side, running beside the ascending chain; aborted when dropped.
struct DescentTask(tokio::task::JoinHandle<()>);

impl Drop for DescentTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl DescentTask {
    fn running(&self) -> bool {
        !self.0.is_finished()
    }

    fn spawn(
        client: &Arc<Client>,
        spec: &'static MethodSpec,
        req: &ListRequest,
        frontier: &Arc<Mutex<Frontier>>,
        tx: Sender,
    ) -> Self {
        let descent = Descent::new(spec, req);
        let (client, frontier) = (client.clone(), frontier.clone());
        DescentTask(tokio::spawn(descend(client, descent, frontier, tx)))
    }
}

/// Reads plain pages downwards until the sides meet. Each page is clipped and sent in one
/// locked step, so an abort between two awaits never loses a page the frontier counts.
async fn descend(client: Arc<Client>, mut d: Descent, frontier: Arc<Mutex<Frontier>>, tx: Sender) {
    let ahead = Arc::new(Semaphore::new(DESC_PAGES_AHEAD));
    loop {
        let Ok(permit) = ahead.clone().acquire_owned().await else {
            return;
        };
        if lock(&frontier).descent_done() {
            return;
        }
        let more = match d.next(&client).await {
            Ok(rows) => deliver(&frontier, d.spec, rows, permit, &tx),
            Err(e) => {
                let _ = tx.send(Err(e));
                false
            }
        };
        if !more {
            return;
        }
    }
}

/// Clips a descending page and sends what is left, in one locked step; whether to go on.
fn deliver(
    frontier: &Mutex<Frontier>,
    spec: &MethodSpec,
    rows: Vec<RawRow>,
    permit: OwnedSemaphorePermit,
    tx: &Sender,
) -> bool {
    let mut f = lock(frontier);
    match f.clip_descending(spec, rows) {
        Ok((kept, done)) => {
            let page = Page {
                rows: kept,
                companion_plain: f.companion_plain,
            };
            let sent = page.rows.is_empty() || tx.send(Ok((page, permit))).is_ok();
            sent && !done
        }
        Err(e) => {
            let _ = tx.send(Err(e));
            false
        }
    }
}

/// The descending side's cursor: plain pages `order ID DESC`, below the lowest id read.
struct Descent {
    spec: &'static MethodSpec,
    base: Map<String, Value>,
    low: Option<i64>,
}

impl Descent {
    fn new(spec: &'static MethodSpec, req: &ListRequest) -> Self {
        Descent {
            spec,
            base: base_params(spec, req),
            low: None,
        }
    }

    fn params(&self) -> Value {
        let mut p = self.base.clone();
        set_order(self.spec, &mut p, "DESC");
        p.insert("start".into(), json!(-1));
        if let Some(low) = self.low {
            filter_mut(self.spec, &mut p).insert(format!("<{}", self.spec.id.filter), json!(low));
        }
        shaped(self.spec, p)
    }

    /// The next page down, checked to descend below the cursor (a portal that ignored the
    /// filter or the order fails loudly instead of duplicating rows).
    async fn next(&mut self, client: &Client) -> Result<Vec<RawRow>, BitrixError> {
        let r = client.call_raw(self.spec.list, &self.params()).await?;
        let rows = raw_rows(self.spec, &r)?;
        for row in &rows {
            let id = id_of(self.spec, row)?;
            if self.low.is_some_and(|low| id >= low) {
                return Err(malformed(
                    self.spec,
                    &format!(
                        "id {id} after {:?} in a descending listing: the page ignores the <ID \
                         cursor or the order",
                        self.low
                    ),
                ));
            }
            self.low = Some(id);
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitrix::spec;

    fn rows(ids: &[i64]) -> Vec<RawRow> {
        ids.iter()
            .map(|i| RawRow::from_json(&format!(r#"{{"ID":"{i}"}}"#)).unwrap())
            .collect()
    }

    fn ids(spec: &MethodSpec, rows: &[RawRow]) -> Vec<i64> {
        rows.iter().map(|r| row_id(spec, r).unwrap()).collect()
    }

    #[test]
    fn the_sides_split_the_ids_between_them_and_meet_once() {
        let lead = spec("crm.lead").unwrap();
        let mut f = Frontier::default();
        // Before the descending side starts, the ascending one keeps everything.
        let (kept, met) = f.clip_ascending(lead, rows(&[1, 2, 3])).unwrap();
        assert_eq!((ids(lead, &kept), met), (vec![1, 2, 3], false));
        // The top page, then one reaching down to 7.
        let (kept, done) = f
            .clip_descending(lead, rows(&(20..=69).rev().collect::<Vec<_>>()))
            .unwrap();
        assert_eq!((kept.len(), done), (50, false));
        let (kept, done) = f
            .clip_descending(lead, rows(&(7..=19).rev().collect::<Vec<_>>()))
            .unwrap();
        // A short page: nothing is left below 7.
        assert_eq!((kept.len(), done), (13, true));
        assert_eq!(f.unmet_low(), None);
        // An ascending page in flight meanwhile reaches into the descending range: clipped.
        let (kept, met) = f.clip_ascending(lead, rows(&[4, 5, 7, 8])).unwrap();
        assert_eq!((ids(lead, &kept), met), (vec![4, 5], true));
        // Rows above the top are the ascending side's tail.
        assert_eq!(f.finish(), Some(69));
        let (kept, done) = f.clip_descending(lead, rows(&[6])).unwrap();
        assert!(kept.is_empty() && done);
    }

    #[test]
    fn a_descending_page_that_reaches_the_ascending_range_ends_that_side() {
        let lead = spec("crm.lead").unwrap();
        let mut f = Frontier::default();
        f.clip_ascending(lead, rows(&(1..=50).collect::<Vec<_>>()))
            .unwrap();
        let page: Vec<i64> = (11..=110).rev().step_by(2).collect();
        assert_eq!(page.len(), 50);
        let (kept, done) = f.clip_descending(lead, rows(&page)).unwrap();
        assert!(done);
        assert_eq!(*ids(lead, &kept).last().unwrap(), 52);
        assert_eq!(f.unmet_low(), None);
        assert_eq!(f.finish(), Some(110));
    }

    #[test]
    fn the_descending_side_stops_where_the_ascending_batch_in_flight_reaches() {
        let lead = spec("crm.lead").unwrap();
        let mut f = Frontier::default();
        assert!(!f.descent_done());
        f.clip_descending(lead, rows(&(951..=1000).rev().collect::<Vec<_>>()))
            .unwrap();
        f.asc_planned = Some(900);
        assert!(!f.descent_done());
        f.asc_planned = Some(951);
        assert!(f.descent_done());
        // Coverage does not rest on the hint: the sides have not met.
        assert_eq!(f.unmet_low(), Some(Some(951)));
    }

    #[test]
    fn descending_pages_go_below_their_cursor_without_count() {
        let item = spec("crm.item").unwrap();
        let req = ListRequest {
            method_key: "crm.item".into(),
            entity_type_id: Some(2),
            ..Default::default()
        };
        let mut d = Descent::new(item, &req);
        assert_eq!(d.params()["order"]["id"], "DESC");
        assert_eq!(d.params()["start"], -1);
        assert!(d.params().get("filter").is_none());
        d.low = Some(500);
        assert_eq!(d.params()["filter"]["<id"], 500);
    }
}
