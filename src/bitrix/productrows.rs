//! Listing rows of named owners (`Paging::OwnerChain`), COUNT-free, many owners per command:
//! product rows (`crm.item.productrow.list`) and timeline comments
//! (`crm.timeline.comment.list`, one owner per command); how each names its owners is
//! `methods::OWNER_ROWS`. Product rows:
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
//! split in eight parts, level by level, until the refused owner is alone, and an owner
//! refused alone is taken as gone. Every page is checked to be ascending, above its cursor and of the group's owners, so a portal
//! that ignored the filter fails loudly instead of filing rows under the wrong owner.
use super::batch::{Batch, CommandOutcome, result_ref};
use super::client::Client;
use super::error::{BitrixError, ErrorClass};
use super::governor::{Request, command_kind};
use super::listing::{ListRequest, PAGE_SIZE, Page, raw_rows, resolve, row_id};
use super::methods::{
    MethodSpec, OwnerRowsSpec, OwnerTypes, PRODUCT_ROW_OWNERS, owner_rows, smart_process_type_id,
};
use super::owners::{OwnerType, every_owner};
use super::raw::RawRow;
use async_stream::try_stream;
use futures::Stream;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::Arc;

/// Owners per command: bounds the size of one command's query string (PHP parses each
/// command with `parse_str`, subject to `max_input_vars`, 1,000 by default).
pub const GROUP: usize = 500;
/// Commands per `batch`.
const SLOTS: usize = 50;
/// Parts a group is split into when one of its owners is refused.
const FAN_OUT: usize = 8;
/// Rows per owner assumed before any are seen (sizes the first chains only).
const FIRST_GUESS_ROWS_PER_OWNER: f64 = 3.0;
/// Consecutive batches without progress because of retryable errors.
const MAX_STALLED_BATCHES: u32 = 8;

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

/// Lists the rows of every owner (or of owners modified since `req.modified_since`).
pub fn list(
    client: Arc<Client>,
    req: ListRequest,
) -> impl Stream<Item = Result<Page, BitrixError>> {
    try_stream! {
        let spec = resolve(&req)?;
        let owners = owner_rows(spec.key).ok_or_else(|| {
            BitrixError::Usage(format!("methods table has no owners for `{}`", spec.key))
        })?;
        let types = match owners.owner_types {
            OwnerTypes::ProductRowOwners => {
                let types = client.call("crm.enum.ownertype", &json!({})).await?;
                owner_types(&types.result)
            }
            OwnerTypes::Named(named) => named
                .iter()
                .map(|(eid, name)| OwnerType {
                    entity_type_id: *eid,
                    short: (*name).to_string(),
                    optional: false,
                })
                .collect(),
        };
        let mut lister = RowLister::new(spec, owners, &req);
        // Every type's owners first, so one batch can carry the rows of several types.
        let every = every_owner(&client, &types, &req).await?;
        for (t, ids) in types.iter().zip(every) {
            lister.enqueue(&t.short, ids);
        }
        while let Some(pages) = lister.next_batch(&client).await? {
            for page in pages {
                yield page;
            }
        }
    }
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
    owners: &'static OwnerRowsSpec,
    /// The `select` of every command (none for methods that take none).
    select: Option<Vec<String>>,
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
    fn new(spec: &'static MethodSpec, owners: &'static OwnerRowsSpec, req: &ListRequest) -> Self {
        Self {
            spec,
            owners,
            select: select_for(spec, owners, req),
            queue: VecDeque::new(),
            // A method that reads one owner id is never sent several.
            arrays: (!owners.arrays).then_some(false),
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
        filter.insert(self.owners.type_filter.into(), json!(w.short));
        filter.insert(self.owners.id_filter.into(), owners);
        if let Some(c) = cursor {
            filter.insert(format!(">{}", self.spec.id.filter), c);
        }
        let mut p = json!({
            "filter": filter,
            "order": {self.spec.id.filter: "ASC"},
            "start": -1,
        });
        if let Some(select) = &self.select {
            p["select"] = json!(select);
        }
        p
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
                    let mut path = self.spec.rows_path();
                    path.push(&last);
                    path.push(self.spec.id.row);
                    Some(json!(result_ref(&format!("g{i}p{}", k - 1), &path)))
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
                let rows = match self.owners.owner_time {
                    Some(key) => with_owner_times(&w, rows, self.owners, key)?,
                    None => rows,
                };
                progress = true;
                let full = rows.len() >= PAGE_SIZE;
                self.rows_seen += rows.len() as u64;
                pages.push(Page::new(rows));
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
                    last: Box::new(self.malformed("no page of owners' rows could be read")),
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
            tracing::warn!(method = self.spec.list, error = %e, "owners' rows page failed; resuming");
            return Ok(vec![w]);
        }
        let several = w.owners.len() > 1;
        let code = e.code().unwrap_or_default().to_ascii_uppercase();
        let array_refused = several
            && self.arrays != Some(true)
            && matches!(code.as_str(), "INVALID_ARG_VALUE" | "REQUIRED_ARG_MISSING");
        if array_refused {
            tracing::info!(method = self.spec.list, error = %e, "the portal takes one owner per command");
            self.arrays = Some(false);
            let rest: Vec<Work> = self.queue.drain(..).collect();
            return Ok(std::iter::once(w).chain(rest).flat_map(split).collect());
        }
        if e.class() == ErrorClass::AccessDenied {
            if several {
                // An owner deleted since the owner listing (or since the owner table's last
                // reconcile, `super::owners`): find it by splitting the group in [`FAN_OUT`]
                // parts, one batch per level (500 owners: 3 more batches, not 9 of halving).
                return Ok(self.parts(w));
            }
            tracing::debug!(owner_type = %w.short, owner = ?w.owners, "owner gone; no rows");
            self.owners_done += 1;
            return Ok(Vec::new());
        }
        Err(e)
    }

    /// The group in up to [`FAN_OUT`] parts, each keeping the cursor (see [`split`]).
    fn parts(&self, w: Work) -> Vec<Work> {
        w.owners
            .chunks(w.owners.len().div_ceil(FAN_OUT))
            .map(|h| Work {
                short: w.short.clone(),
                owners: h.to_vec(),
                owner_times: w.owner_times.clone(),
                after: w.after,
                pages: self.pages_for(h.len()),
            })
            .collect()
    }

    /// Checks a page continues its group (ascending ids above the cursor, the group's owners)
    /// and advances the cursor.
    fn accept(&self, w: &mut Work, rows: &[RawRow]) -> Result<(), BitrixError> {
        for row in rows {
            let id = row_id(self.spec, row).ok_or_else(|| {
                self.malformed(&format!("a row has no numeric `{}`", self.spec.id.row))
            })?;
            if w.after.is_some_and(|last| id <= last) {
                return Err(self.malformed(&format!(
                    "row {id} after {:?}: the page ignores the >id cursor or the order",
                    w.after
                )));
            }
            let owner = owner_of(row, self.owners);
            let owner_type = row.get(self.owners.type_row);
            let same_type = owner_type
                .as_ref()
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case(&w.short));
            if !owner.is_some_and(|o| w.owners.contains(&o)) || !same_type {
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

/// The owner id a row names.
fn owner_of(row: &RawRow, owners: &OwnerRowsSpec) -> Option<i64> {
    match row.get(owners.id_row)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Each row with its owner's modification time appended under `key`
/// ([`RawRow::with_field`]).
fn with_owner_times(
    w: &Work,
    rows: Vec<RawRow>,
    owners: &OwnerRowsSpec,
    key: &str,
) -> Result<Vec<RawRow>, BitrixError> {
    rows.into_iter()
        .map(|row| {
            let time = owner_of(&row, owners)
                .and_then(|o| w.owner_times.get(&o))
                .cloned()
                .unwrap_or(Value::Null);
            row.with_field(key, &time)
                .ok_or_else(|| BitrixError::Malformed {
                    method: owners.method.into(),
                    status: 200,
                    message: "a row is not a JSON object".into(),
                })
        })
        .collect()
}

/// The `select` of a method that takes one: the caller's columns (or every field) plus what
/// the cursor and the owner check read; ids only = those alone.
fn select_for(spec: &MethodSpec, owners: &OwnerRowsSpec, req: &ListRequest) -> Option<Vec<String>> {
    if !spec.takes_select() {
        return None;
    }
    let needed = [spec.id.filter, owners.type_row, owners.id_row].map(str::to_string);
    let mut out: Vec<String> = if req.ids_only {
        Vec::new()
    } else if req.select.is_empty() {
        spec.default_select()
    } else {
        req.select.clone()
    };
    if out.iter().any(|s| s == "*") {
        return Some(out);
    }
    for n in needed {
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitrix::error::classify;
    use crate::bitrix::methods::spec;

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
        let s = spec("crm.item.productrow").unwrap();
        let req = ListRequest {
            method_key: s.key.into(),
            ..ListRequest::default()
        };
        RowLister::new(s, owner_rows(s.key).unwrap(), &req)
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
        // A bigger group is split in eight, each part keeping the cursor.
        let many: Vec<i64> = (1..=20).collect();
        let parts = l
            .after_failure(work(&many, Some(9)), api("ACCESS_DENIED", "Access denied"))
            .unwrap();
        let owners: Vec<Vec<i64>> = parts.iter().map(|w| w.owners.clone()).collect();
        assert_eq!(owners.len(), 7);
        assert_eq!(owners[0], [1, 2, 3]);
        assert_eq!(owners.concat(), many);
        assert!(parts.iter().all(|w| w.after == Some(9)));
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

    const OWNER_TIME_KEY: &str = "ownerUpdatedTime";

    #[test]
    fn comments_are_read_one_owner_per_command_by_their_own_keys() {
        let s = spec("crm.timeline.comment").unwrap();
        let req = ListRequest {
            method_key: s.key.into(),
            select: vec!["COMMENT".into(), "FILES".into()],
            ..ListRequest::default()
        };
        let mut l = RowLister::new(s, owner_rows(s.key).unwrap(), &req);
        assert_eq!(l.arrays, Some(false));
        l.enqueue("deal", vec![(5, Value::Null), (6, Value::Null)]);
        assert!(l.queue.iter().all(|w| w.owners.len() == 1));
        let p = l.params(&l.queue[0], Some(json!(40)));
        assert_eq!(
            p["filter"],
            json!({"ENTITY_TYPE": "deal", "ENTITY_ID": 5, ">ID": 40})
        );
        assert_eq!(p["order"], json!({"ID": "ASC"}));
        assert_eq!(
            p["select"],
            json!(["COMMENT", "FILES", "ID", "ENTITY_TYPE", "ENTITY_ID"])
        );
        // Rows name their owner in upper case; the type compares without case.
        let mut w = l.queue[0].clone();
        let row = RawRow::from_json(r#"{"ID":"41","ENTITY_ID":"5","ENTITY_TYPE":"DEAL"}"#).unwrap();
        l.accept(&mut w, &[row]).unwrap();
        assert_eq!(w.after, Some(41));
    }

    #[test]
    fn each_row_gets_its_owner_s_time() {
        let w = work(&[1], None);
        let rows = vec![
            RawRow::from_json(r#"{"id":10,"ownerId":1,"ownerType":"D"}"#).unwrap(),
            RawRow::from_json(r#"{"id":11,"ownerId":"9","ownerType":"D"}"#).unwrap(),
        ];
        let owners = owner_rows("crm.item.productrow").unwrap();
        let out = with_owner_times(&w, rows, owners, OWNER_TIME_KEY).unwrap();
        assert_eq!(
            out[0].get(OWNER_TIME_KEY),
            Some(json!("2024-05-01T10:00:00+03:00"))
        );
        assert_eq!(out[1].get(OWNER_TIME_KEY), Some(Value::Null));
        assert_eq!(out[0].get("id"), Some(json!(10)));
    }
}
