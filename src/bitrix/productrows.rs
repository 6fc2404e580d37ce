//! Listing product rows (`crm.item.productrow.list`), COUNT-free, many owners per command.
//!
//! The method only lists rows of named owners: its filter must contain `=ownerType` (the short
//! code of `crm.enum.ownertype`: `D`, `L`, `Q`, `SI`, `T80`) and `=ownerId` (EN
//! crm-item-productrow-list.md). So the owners are listed first (ids only, with the usual
//! COUNT-free `crm.item.list` chain, optionally only those modified since a time), then their
//! rows are read in groups of up to [`GROUP`] owners: `=ownerId` an array, `order id ASC`,
//! `start=-1`, and pages chained inside one `batch` through `>id =
//! $result[prev][productRows][49][id]` exactly like `listing` chains ordinary lists, so a
//! request carries up to 50 full pages whatever the rows per owner. A page shorter than 50
//! rows ends its group; the pages chained after it ran with a broken cursor and are never read.
//!
//! Portals differ on `=ownerId` arrays (the connector notes allow them; the current docs say
//! an array under a prefixed key is `INVALID_ARG_VALUE`): the first refusal of an array
//! switches this listing to one owner per command. An owner deleted between the two listings
//! makes its group answer `ACCESS_DENIED` (the docs' answer for a missing owner): the group is
//! split and a single owner that is still refused is taken as gone. Every page is checked to
//! be ascending, above its cursor and of the group's owners, so a portal that ignored the
//! filter fails loudly instead of filing rows under the wrong owner.
use super::batch::{Batch, CommandOutcome, result_ref};
use super::client::Client;
use super::error::{BitrixError, ErrorClass};
use super::governor::{Request, command_kind};
use super::listing::{ListRequest, PAGE_SIZE, Page, list as list_rows, raw_rows, row_id};
use super::methods::{MethodSpec, PRODUCT_ROW_OWNERS, smart_process_type_id, spec};
use super::raw::RawRow;
use async_stream::try_stream;
use futures::{Stream, StreamExt};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::Arc;

/// Owners per command: bounds the size of one command's query string (PHP parses each
/// command with `parse_str`, subject to `max_input_vars`, 1,000 by default).
pub const GROUP: usize = 500;
/// Commands per `batch`.
const SLOTS: usize = 50;
/// Rows per owner assumed before any are seen (sizes the first chains only).
const FIRST_GUESS_ROWS_PER_OWNER: f64 = 3.0;
/// Consecutive batches without progress because of retryable errors.
const MAX_STALLED_BATCHES: u32 = 8;

/// One owner type that has product rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerType {
    pub entity_type_id: u32,
    /// `SYMBOL_CODE_SHORT` of `crm.enum.ownertype`.
    pub short: String,
    /// A smart process: it may vanish between discovery and listing.
    pub optional: bool,
}

/// The owner types of a `crm.enum.ownertype` answer that have product rows: the predefined
/// ones of [`PRODUCT_ROW_OWNERS`] and every smart process.
pub fn owner_types(ownertype: &Value) -> Vec<OwnerType> {
    ownertype
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let code = t.get("SYMBOL_CODE")?.as_str()?;
            let short = t.get("SYMBOL_CODE_SHORT")?.as_str()?.to_string();
            if let Some(eid) = smart_process_type_id(code) {
                return Some(OwnerType {
                    entity_type_id: eid,
                    short,
                    optional: true,
                });
            }
            let (_, eid) = PRODUCT_ROW_OWNERS.iter().find(|(c, _)| *c == code)?;
            Some(OwnerType {
                entity_type_id: *eid,
                short,
                optional: *eid != 1 && *eid != 2,
            })
        })
        .collect()
}

/// Lists the product rows of every owner (or of owners modified since `req.modified_since`).
pub fn list(
    client: Arc<Client>,
    req: ListRequest,
) -> impl Stream<Item = Result<Page, BitrixError>> {
    try_stream! {
        let spec = rows_spec()?;
        let types = client.call("crm.enum.ownertype", &json!({})).await?;
        let mut lister = RowLister::new(spec);
        // Every type's owners first, so one batch can carry the rows of several types.
        for t in owner_types(&types.result) {
            let owners = owner_ids(&client, &t, &req).await?;
            lister.enqueue(&t.short, owners);
        }
        while let Some(pages) = lister.next_batch(&client).await? {
            for page in pages {
                yield page;
            }
        }
    }
}

fn rows_spec() -> Result<&'static MethodSpec, BitrixError> {
    spec("crm.item.productrow")
        .ok_or_else(|| BitrixError::Usage("methods table lacks `crm.item.productrow`".into()))
}

/// The owners of one type with their modification times (COUNT-free `crm.item.list` chain,
/// `select: [id, updatedTime]`); none for a type the portal no longer has (a smart process
/// removed meanwhile, invoices on an old install).
async fn owner_ids(
    client: &Arc<Client>,
    t: &OwnerType,
    req: &ListRequest,
) -> Result<Vec<(i64, Value)>, BitrixError> {
    let item = spec("crm.item")
        .ok_or_else(|| BitrixError::Usage("methods table lacks `crm.item`".into()))?;
    let updated = item
        .cursor
        .ok_or_else(|| BitrixError::Usage("crm.item has no modification cursor".into()))?;
    let owners = ListRequest {
        method_key: "crm.item".into(),
        entity_type_id: Some(t.entity_type_id),
        select: vec![item.id.filter.to_string(), updated.filter.to_string()],
        modified_since: req.modified_since,
        ..ListRequest::default()
    };
    let mut ids = Vec::new();
    let mut pages = Box::pin(list_rows(client.clone(), owners));
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => ids.extend(p.rows.iter().filter_map(|r| {
                Some((row_id(item, r)?, r.get(updated.row).unwrap_or(Value::Null)))
            })),
            Err(e) if t.optional && ids.is_empty() && gone(&e) => {
                tracing::debug!(owner_type = %t.short, error = %e, "owner type not served; no product rows");
                return Ok(Vec::new());
            }
            Err(e) => Err(e)?,
        }
    }
    Ok(ids)
}

fn gone(e: &BitrixError) -> bool {
    matches!(
        e.class(),
        ErrorClass::NotFound | ErrorClass::Unsupported | ErrorClass::MethodNotFound
    )
}

/// Rows still to read for a group of owners of one type.
#[derive(Debug, Clone)]
struct Work {
    short: String,
    owners: Vec<i64>,
    /// Each owner's modification time as its listing gave it, copied into its rows.
    owner_times: Arc<std::collections::HashMap<i64, Value>>,
    /// The last row id read (the `>id` cursor).
    after: Option<i64>,
    /// Pages the next chain for this group should have.
    pages: usize,
}

struct RowLister {
    spec: &'static MethodSpec,
    queue: VecDeque<Work>,
    /// `None` until the portal has answered a command with several owners.
    arrays: Option<bool>,
    rows_seen: u64,
    owners_done: u64,
    stalled: u32,
}

/// What one scheduled chain produced.
enum ChainEnd {
    /// A short page: the group is complete.
    Done,
    /// Every page was full: more rows may follow the cursor.
    More,
    /// A command failed; the group resumes from its cursor (or is split).
    Failed(BitrixError),
}

impl RowLister {
    fn new(spec: &'static MethodSpec) -> Self {
        Self {
            spec,
            queue: VecDeque::new(),
            arrays: None,
            rows_seen: 0,
            owners_done: 0,
            stalled: 0,
        }
    }

    fn rows_per_owner(&self) -> f64 {
        if self.owners_done == 0 {
            FIRST_GUESS_ROWS_PER_OWNER
        } else {
            (self.rows_seen as f64 / self.owners_done as f64).max(0.02)
        }
    }

    fn group_size(&self) -> usize {
        if self.arrays == Some(false) { 1 } else { GROUP }
    }

    fn pages_for(&self, owners: usize) -> usize {
        ((owners as f64 * self.rows_per_owner() / PAGE_SIZE as f64).ceil() as usize).max(1)
    }

    fn enqueue(&mut self, short: &str, owners: Vec<(i64, Value)>) {
        let ids: Vec<i64> = owners.iter().map(|(id, _)| *id).collect();
        let times = Arc::new(
            owners
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        );
        for chunk in ids.chunks(self.group_size()) {
            let pages = self.pages_for(chunk.len());
            self.queue.push_back(Work {
                short: short.to_string(),
                owners: chunk.to_vec(),
                owner_times: times.clone(),
                after: None,
                pages,
            });
        }
    }

    fn params(&self, w: &Work, cursor: Option<Value>) -> Value {
        let owners: Value = match w.owners.as_slice() {
            [one] => json!(one),
            many => json!(many),
        };
        let mut filter = serde_json::Map::new();
        filter.insert("=ownerType".into(), json!(w.short));
        filter.insert("=ownerId".into(), owners);
        if let Some(c) = cursor {
            filter.insert(">id".into(), c);
        }
        json!({"filter": filter, "order": {"id": "ASC"}, "start": -1})
    }

    /// Runs one batch of chains; `None` when every queued group is read.
    async fn next_batch(&mut self, client: &Client) -> Result<Option<Vec<Page>>, BitrixError> {
        if self.queue.is_empty() {
            return Ok(None);
        }
        let mut batch = Batch::new();
        let mut scheduled: Vec<(Work, usize)> = Vec::new();
        let kind = command_kind(self.spec.list, &self.params(&self.queue[0], None));
        let mut slots = client.governor().batch_room(SLOTS, |n| {
            Request::batch((0..n).map(|_| (self.spec.list, kind.as_str())))
        });
        while slots > 0 {
            let Some(w) = self.queue.pop_front() else {
                break;
            };
            let n = w.pages.clamp(1, slots);
            let i = scheduled.len();
            for k in 0..n {
                let cursor = if k == 0 {
                    w.after.map(Value::from)
                } else {
                    let last = (PAGE_SIZE - 1).to_string();
                    Some(json!(result_ref(
                        &format!("g{i}p{}", k - 1),
                        &["productRows", &last, "id"]
                    )))
                };
                batch.push(format!("g{i}p{k}"), self.spec.list, self.params(&w, cursor))?;
            }
            slots -= n;
            scheduled.push((w, n));
        }
        let mut resp = client.batch_raw(&batch).await?;
        let mut pages = Vec::new();
        let mut progress = false;
        let mut requeue: Vec<Work> = Vec::new();
        for (i, (mut w, n)) in scheduled.into_iter().enumerate() {
            let mut end = ChainEnd::More;
            for k in 0..n {
                let rows = match resp.take(&format!("g{i}p{k}")) {
                    CommandOutcome::Ok(r) => raw_rows(self.spec, &r)?,
                    CommandOutcome::Err(e) => {
                        end = ChainEnd::Failed(e);
                        break;
                    }
                    CommandOutcome::Missing => {
                        end = ChainEnd::Failed(
                            self.malformed(&format!("batch has no answer for g{i}p{k}")),
                        );
                        break;
                    }
                };
                self.accept(&mut w, &rows)?;
                let rows = with_owner_times(&w, rows)?;
                progress = true;
                let full = rows.len() >= PAGE_SIZE;
                self.rows_seen += rows.len() as u64;
                pages.push(Page { rows });
                if !full {
                    end = ChainEnd::Done;
                    break;
                }
            }
            match end {
                ChainEnd::Done => {
                    if w.owners.len() > 1 {
                        self.arrays = Some(true);
                    }
                    self.owners_done += w.owners.len() as u64;
                }
                ChainEnd::More => {
                    // Fewer pages were chained than the group needed, or the estimate was low.
                    w.pages = w.pages.saturating_sub(n).max(1);
                    requeue.push(w);
                }
                ChainEnd::Failed(e) => requeue.extend(self.after_failure(w, e)?),
            }
        }
        for w in requeue.into_iter().rev() {
            self.queue.push_front(w);
        }
        if progress {
            self.stalled = 0;
        } else {
            self.stalled += 1;
            if self.stalled > MAX_STALLED_BATCHES {
                return Err(BitrixError::RetriesExhausted {
                    method: self.spec.list.to_string(),
                    attempts: self.stalled,
                    last: Box::new(self.malformed("no product-row page could be read")),
                });
            }
            client.governor().on_retry();
            client.governor().backoff(self.stalled).await;
        }
        Ok(Some(pages))
    }

    /// What to queue again after a command of group `w` failed.
    fn after_failure(&mut self, w: Work, e: BitrixError) -> Result<Vec<Work>, BitrixError> {
        if e.is_retryable() {
            tracing::warn!(method = self.spec.list, error = %e, "product-row page failed; resuming");
            return Ok(vec![w]);
        }
        let several = w.owners.len() > 1;
        let code = e.code().unwrap_or_default().to_ascii_uppercase();
        let array_refused = several
            && self.arrays != Some(true)
            && matches!(code.as_str(), "INVALID_ARG_VALUE" | "REQUIRED_ARG_MISSING");
        if array_refused {
            tracing::info!(error = %e, "the portal takes one owner per product-row command");
            self.arrays = Some(false);
            let rest: Vec<Work> = self.queue.drain(..).collect();
            return Ok(std::iter::once(w).chain(rest).flat_map(split).collect());
        }
        if e.class() == ErrorClass::AccessDenied {
            if several {
                // An owner deleted since the owner listing: find it one by one.
                return Ok(split(w));
            }
            tracing::debug!(owner_type = %w.short, owner = ?w.owners, "owner gone; no product rows");
            self.owners_done += 1;
            return Ok(Vec::new());
        }
        Err(e)
    }

    /// Checks a page continues its group (ascending ids above the cursor, the group's owners)
    /// and advances the cursor.
    fn accept(&self, w: &mut Work, rows: &[RawRow]) -> Result<(), BitrixError> {
        for row in rows {
            let id = row_id(self.spec, row)
                .ok_or_else(|| self.malformed("a product row has no numeric `id`"))?;
            if w.after.is_some_and(|last| id <= last) {
                return Err(self.malformed(&format!(
                    "row {id} after {:?}: the page ignores the >id cursor or the order",
                    w.after
                )));
            }
            let owner = row.get("ownerId").and_then(|v| match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            });
            let owner_type = row.get("ownerType");
            if !owner.is_some_and(|o| w.owners.contains(&o))
                || owner_type.as_ref().and_then(Value::as_str) != Some(w.short.as_str())
            {
                return Err(self.malformed(&format!(
                    "row {id} belongs to {owner_type:?} {owner:?}, not to the owners asked for"
                )));
            }
            w.after = Some(id);
        }
        Ok(())
    }

    fn malformed(&self, message: &str) -> BitrixError {
        BitrixError::Malformed {
            method: self.spec.list.to_string(),
            status: 200,
            message: message.to_string(),
        }
    }
}

/// One work item per owner. The group's cursor carries over: its rows were read in id order
/// across all its owners, so every row at or below the cursor is already read.
fn split(w: Work) -> Vec<Work> {
    w.owners
        .iter()
        .map(|o| Work {
            short: w.short.clone(),
            owners: vec![*o],
            owner_times: w.owner_times.clone(),
            after: w.after,
            pages: 1,
        })
        .collect()
}

/// The key under which a row carries its owner's modification time (`OWNER_UPDATED_TIME`):
/// rows have no time of their own, and a row changes only through its owner, whose time moves
/// (`crm.item.productrow.*` saves the item), so incremental loads are by owner.
pub const OWNER_TIME_KEY: &str = "ownerUpdatedTime";

/// Each row with its owner's modification time appended ([`RawRow::with_field`]).
fn with_owner_times(w: &Work, rows: Vec<RawRow>) -> Result<Vec<RawRow>, BitrixError> {
    rows.into_iter()
        .map(|row| {
            let owner = match row.get("ownerId") {
                Some(Value::Number(n)) => n.as_i64(),
                Some(Value::String(s)) => s.trim().parse().ok(),
                _ => None,
            };
            let time = owner
                .and_then(|o| w.owner_times.get(&o))
                .cloned()
                .unwrap_or(Value::Null);
            row.with_field(OWNER_TIME_KEY, &time)
                .ok_or_else(|| BitrixError::Malformed {
                    method: "crm.item.productrow.list".into(),
                    status: 200,
                    message: "a product row is not a JSON object".into(),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitrix::error::classify;

    fn api(code: &str, description: &str) -> BitrixError {
        BitrixError::Api {
            method: "crm.item.productrow.list".into(),
            status: 0,
            code: code.into(),
            description: description.into(),
            class: classify(400, code, description),
        }
    }

    fn lister() -> RowLister {
        RowLister::new(rows_spec().unwrap())
    }

    fn work(owners: &[i64], after: Option<i64>) -> Work {
        Work {
            short: "D".into(),
            owners: owners.to_vec(),
            owner_times: Arc::new(
                owners
                    .iter()
                    .map(|o| (*o, json!("2024-05-01T10:00:00+03:00")))
                    .collect(),
            ),
            after,
            pages: 3,
        }
    }

    #[test]
    fn owner_types_are_the_predefined_ones_and_every_smart_process() {
        let types = owner_types(&json!([
            {"ID": 1, "SYMBOL_CODE": "LEAD", "SYMBOL_CODE_SHORT": "L"},
            {"ID": 2, "SYMBOL_CODE": "DEAL", "SYMBOL_CODE_SHORT": "D"},
            {"ID": 3, "SYMBOL_CODE": "CONTACT", "SYMBOL_CODE_SHORT": "C"},
            {"ID": 7, "SYMBOL_CODE": "QUOTE", "SYMBOL_CODE_SHORT": "Q"},
            {"ID": 8, "SYMBOL_CODE": "REQUISITE", "SYMBOL_CODE_SHORT": "RQ"},
            {"ID": 31, "SYMBOL_CODE": "SMART_INVOICE", "SYMBOL_CODE_SHORT": "SI"},
            {"ID": 128, "SYMBOL_CODE": "DYNAMIC_128", "SYMBOL_CODE_SHORT": "T80"},
        ]));
        let got: Vec<(u32, &str, bool)> = types
            .iter()
            .map(|t| (t.entity_type_id, t.short.as_str(), t.optional))
            .collect();
        assert_eq!(
            got,
            [
                (1, "L", false),
                (2, "D", false),
                (7, "Q", true),
                (31, "SI", true),
                (128, "T80", true)
            ]
        );
    }

    #[test]
    fn a_refused_owner_array_switches_to_one_owner_per_command_keeping_the_cursor() {
        let mut l = lister();
        l.queue.push_back(work(&[7, 8], None));
        let out = l
            .after_failure(
                work(&[1, 2, 3], Some(41)),
                api("INVALID_ARG_VALUE", "Invalid filter"),
            )
            .unwrap();
        assert_eq!(l.arrays, Some(false));
        let owners: Vec<(Vec<i64>, Option<i64>)> =
            out.iter().map(|w| (w.owners.clone(), w.after)).collect();
        assert_eq!(
            owners,
            [
                (vec![1], Some(41)),
                (vec![2], Some(41)),
                (vec![3], Some(41)),
                (vec![7], None),
                (vec![8], None)
            ]
        );
        assert!(l.queue.is_empty());
        // Later groups are single owners from the start.
        l.enqueue("Q", vec![(5, Value::Null), (6, Value::Null)]);
        assert!(l.queue.iter().all(|w| w.owners.len() == 1));
    }

    #[test]
    fn access_denied_splits_a_group_and_drops_a_single_gone_owner() {
        let mut l = lister();
        l.arrays = Some(true);
        let split = l
            .after_failure(
                work(&[4, 5], Some(9)),
                api("ACCESS_DENIED", "Access denied"),
            )
            .unwrap();
        assert_eq!(split.len(), 2);
        assert!(
            split
                .iter()
                .all(|w| w.after == Some(9) && w.owners.len() == 1)
        );
        let gone = l
            .after_failure(work(&[5], None), api("ACCESS_DENIED", "Access denied"))
            .unwrap();
        assert!(gone.is_empty());
        // Any other refusal fails the listing rather than losing rows.
        assert!(
            l.after_failure(work(&[5], None), api("INVALID_ARG_VALUE", "bad"))
                .is_err()
        );
    }

    #[test]
    fn rows_must_be_ascending_and_of_the_group_s_owners() {
        let l = lister();
        let row = |id: i64, owner: i64, t: &str| {
            RawRow::from_json(&format!(
                r#"{{"id":{id},"ownerId":{owner},"ownerType":"{t}"}}"#
            ))
            .unwrap()
        };
        let mut w = work(&[1, 2], None);
        l.accept(&mut w, &[row(10, 1, "D"), row(11, 2, "D")])
            .unwrap();
        assert_eq!(w.after, Some(11));
        assert!(
            l.accept(&mut w, &[row(11, 1, "D")]).is_err(),
            "not above the cursor"
        );
        assert!(
            l.accept(&mut w, &[row(12, 3, "D")]).is_err(),
            "another owner"
        );
        assert!(
            l.accept(&mut w, &[row(13, 1, "L")]).is_err(),
            "another owner type"
        );
    }

    #[test]
    fn each_row_gets_its_owner_s_time() {
        let w = work(&[1], None);
        let rows = vec![
            RawRow::from_json(r#"{"id":10,"ownerId":1,"ownerType":"D"}"#).unwrap(),
            RawRow::from_json(r#"{"id":11,"ownerId":"9","ownerType":"D"}"#).unwrap(),
        ];
        let out = with_owner_times(&w, rows).unwrap();
        assert_eq!(
            out[0].get(OWNER_TIME_KEY),
            Some(json!("2024-05-01T10:00:00+03:00"))
        );
        assert_eq!(out[1].get(OWNER_TIME_KEY), Some(Value::Null));
        assert_eq!(out[0].get("id"), Some(json!(10)));
    }
}
