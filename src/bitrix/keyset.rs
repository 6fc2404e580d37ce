//! COUNT-free listing of rows without an id (`Paging::KeyChain`: `crm.address.list`).
//!
//! The rows are keyed by several integer fields ([`CompositeKey`]). They are ordered by all of
//! them, `start=-1`, and pages are chained inside one `batch` with `>=` on the first part set
//! to the last row's first part (`$result[p{k-1}][49][ENTITY_ID]`). A page therefore starts
//! with the rows of the previous page's last owner again: those at or below the last key read
//! are dropped, so every row is yielded once. Progress needs fewer rows per first-part value
//! than a page (an owner has one address per address type); a full page of one value would
//! repeat forever, so it fails loudly instead. As in `listing`, the first page shorter than
//! 50 rows ends the listing (pages chained after it ran with a broken filter and are never
//! read), and every page is checked to be ascending and within its filter.
//!
//! Each row gets the composed key column (`ENTITY_TYPE_ID:ENTITY_ID:TYPE_ID`), which the
//! tables, the ids endpoint and reconcile use like an id.
use super::batch::{Batch, CommandOutcome, result_ref};
use super::client::Client;
use super::error::BitrixError;
use super::governor::{Request, command_kind};
use super::listing::{
    ListRequest, PAGE_SIZE, Page, base_params, filter_mut, malformed, raw_rows, resolve,
};
use super::methods::{CompositeKey, MethodSpec, composite_key};
use super::raw::RawRow;
use async_stream::try_stream;
use futures::Stream;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Pages of the first (blind) chain; each later chain doubles, up to [`MAX_CHAIN`].
const FIRST_CHAIN: usize = 4;
const MAX_CHAIN: usize = 50;
/// Consecutive batches without progress because of retryable errors.
const MAX_STALLED_BATCHES: u32 = 8;

/// Lists `req` (a [`Paging::KeyChain`](super::methods::Paging) method) page by page.
pub fn list(
    client: Arc<Client>,
    req: ListRequest,
) -> impl Stream<Item = Result<Page, BitrixError>> {
    try_stream! {
        let spec = resolve(&req)?;
        let key = composite_key(spec.key).ok_or_else(|| {
            BitrixError::Usage(format!("methods table has no composite key for `{}`", spec.key))
        })?;
        let mut chain = KeyChain::new(spec, key, &req);
        while let Some(pages) = chain.next_batch(&client).await? {
            for page in pages {
                yield page;
            }
        }
    }
}

struct KeyChain {
    spec: &'static MethodSpec,
    key: &'static CompositeKey,
    base: Map<String, Value>,
    /// The key of the last row yielded.
    last: Option<Vec<i64>>,
    batches: u32,
    stalled: u32,
    done: bool,
}

impl KeyChain {
    fn new(spec: &'static MethodSpec, key: &'static CompositeKey, req: &ListRequest) -> Self {
        let select = select_for(key, req);
        let req = ListRequest {
            select,
            ids_only: false,
            ..req.clone()
        };
        let mut base = base_params(spec, &req);
        let order: Map<String, Value> = key
            .parts
            .iter()
            .map(|p| ((*p).to_string(), json!("ASC")))
            .collect();
        base.insert("order".into(), Value::Object(order));
        base.insert("start".into(), json!(-1));
        Self {
            spec,
            key,
            base,
            last: None,
            batches: 0,
            stalled: 0,
            done: false,
        }
    }

    fn chain_len(&self) -> usize {
        FIRST_CHAIN
            .saturating_mul(1 << self.batches.min(8))
            .min(MAX_CHAIN)
    }

    fn page_params(&self, k: usize) -> Value {
        let mut p = self.base.clone();
        let first = self.key.parts[0];
        let bound = if k == 0 {
            self.last.as_ref().map(|l| json!(l[0]))
        } else {
            let last = (PAGE_SIZE - 1).to_string();
            Some(json!(result_ref(&format!("p{}", k - 1), &[&last, first])))
        };
        if let Some(b) = bound {
            filter_mut(self.spec, &mut p).insert(format!(">={first}"), b);
        }
        Value::Object(p)
    }

    async fn next_batch(&mut self, client: &Client) -> Result<Option<Vec<Page>>, BitrixError> {
        if self.done {
            return Ok(None);
        }
        let kind = command_kind(self.spec.list, &self.page_params(0));
        let chain = client.governor().batch_room(self.chain_len(), |n| {
            Request::batch((0..n).map(|_| (self.spec.list, kind.as_str())))
        });
        let mut batch = Batch::new();
        for k in 0..chain {
            batch.push(format!("p{k}"), self.spec.list, self.page_params(k))?;
        }
        let mut resp = client.batch_raw(&batch).await?;
        self.batches += 1;
        let mut pages = Vec::with_capacity(chain);
        // The first part every row of page k must reach (its `>=` filter).
        let mut bound = self.last.as_ref().map(|l| l[0]);
        for k in 0..chain {
            let rows = match resp.take(&format!("p{k}")) {
                CommandOutcome::Ok(r) => raw_rows(self.spec, &r)?,
                CommandOutcome::Err(e) if e.is_retryable() => {
                    return self.stalled_on(client, e, pages).await;
                }
                CommandOutcome::Err(e) => return Err(e),
                CommandOutcome::Missing => {
                    return Err(malformed(
                        self.spec,
                        &format!("batch has no answer for p{k}"),
                    ));
                }
            };
            let full = rows.len() >= PAGE_SIZE;
            let keys = rows
                .iter()
                .map(|r| self.row_key(r))
                .collect::<Result<Vec<_>, _>>()?;
            if let (Some(first), Some(end)) = (keys.first(), keys.last())
                && full
                && first[0] == end[0]
                && bound == Some(end[0])
            {
                return Err(malformed(
                    self.spec,
                    &format!(
                        "more than {PAGE_SIZE} rows share {} = {}: this listing cannot page past them",
                        self.key.parts[0], end[0]
                    ),
                ));
            }
            if let Some(b) = bound
                && keys.iter().any(|k| k[0] < b)
            {
                return Err(malformed(
                    self.spec,
                    &format!(
                        "page p{k} has rows below its filter `>={}` {b}",
                        self.key.parts[0]
                    ),
                ));
            }
            bound = keys.last().map(|k| k[0]).or(bound);
            let rows = self.accept(rows, keys)?;
            if full && rows.is_empty() {
                return Err(malformed(
                    self.spec,
                    "a full page brought no row past the cursor: the portal ignores the filter or the order",
                ));
            }
            pages.push(Page::new(rows));
            if !full {
                self.done = true;
                break;
            }
        }
        self.stalled = 0;
        Ok(Some(pages))
    }

    /// A retryable command error: what was read stands, the rest is read again from the
    /// cursor once the governor lets the method run again.
    async fn stalled_on(
        &mut self,
        client: &Client,
        e: BitrixError,
        pages: Vec<Page>,
    ) -> Result<Option<Vec<Page>>, BitrixError> {
        self.stalled = if pages.is_empty() {
            self.stalled + 1
        } else {
            0
        };
        if self.stalled > MAX_STALLED_BATCHES {
            return Err(BitrixError::RetriesExhausted {
                method: self.spec.list.to_string(),
                attempts: self.stalled,
                last: Box::new(e),
            });
        }
        tracing::warn!(method = self.spec.list, error = %e, "page failed; resuming");
        client.governor().on_retry();
        client.governor().backoff(self.stalled.max(1)).await;
        Ok(Some(pages))
    }

    /// The rows above the last key read (the overlap of a `>=` page is dropped), each with the
    /// composed key; rows must ascend.
    fn accept(
        &mut self,
        rows: Vec<RawRow>,
        keys: Vec<Vec<i64>>,
    ) -> Result<Vec<RawRow>, BitrixError> {
        let mut out = Vec::with_capacity(rows.len());
        let mut seen_new = false;
        for (row, key) in rows.into_iter().zip(keys) {
            if self.last.as_ref().is_some_and(|l| key <= *l) {
                if seen_new {
                    return Err(malformed(
                        self.spec,
                        &format!(
                            "row {key:?} after {:?}: the page ignores the order",
                            self.last
                        ),
                    ));
                }
                continue;
            }
            seen_new = true;
            out.push(with_composed_key(self.spec, self.key, row)?);
            self.last = Some(key);
        }
        Ok(out)
    }

    /// The row's key parts in sort order; each must be an integer.
    fn row_key(&self, row: &RawRow) -> Result<Vec<i64>, BitrixError> {
        self.key
            .parts
            .iter()
            .map(|p| {
                int_of(row.get(p)).ok_or_else(|| {
                    malformed(
                        self.spec,
                        &format!("a row has no integer `{p}`, a part of its key"),
                    )
                })
            })
            .collect()
    }
}

/// The row with its composed key column: the integer parts in `written` order, joined by
/// `:` (`8:7335:1`). Also used for rows listed one parent per call (`listing`).
pub(super) fn with_composed_key(
    spec: &MethodSpec,
    key: &CompositeKey,
    row: RawRow,
) -> Result<RawRow, BitrixError> {
    let parts = key
        .written
        .iter()
        .map(|p| {
            int_of(row.get(p)).map(|v| v.to_string()).ok_or_else(|| {
                malformed(
                    spec,
                    &format!("a row has no integer `{p}`, a part of its key"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    row.with_field(key.column, &json!(parts.join(":")))
        .ok_or_else(|| malformed(spec, "a row is not a JSON object"))
}

fn int_of(v: Option<Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The fields to select: the key parts always (the cursor and the key column need them), the
/// composed column never (the portal does not know it); ids only = the parts alone.
fn select_for(key: &CompositeKey, req: &ListRequest) -> Vec<String> {
    let parts = key.parts.iter().map(|p| p.to_string());
    if req.ids_only {
        return parts.collect();
    }
    if req.select.is_empty() {
        // Every field (`*`), the parts included.
        return Vec::new();
    }
    let mut out: Vec<String> = req
        .select
        .iter()
        .filter(|s| s.as_str() != key.column)
        .cloned()
        .collect();
    for p in parts {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitrix::methods::spec;

    fn chain() -> KeyChain {
        let s = spec("crm.address").unwrap();
        let req = ListRequest {
            method_key: "crm.address".into(),
            select: vec!["ADDRESS_KEY".into(), "CITY".into(), "TYPE_ID".into()],
            ..ListRequest::default()
        };
        KeyChain::new(s, composite_key(s.key).unwrap(), &req)
    }

    fn row(eid: i64, et: i64, t: i64) -> RawRow {
        RawRow::from_json(&format!(
            r#"{{"TYPE_ID":"{t}","ENTITY_TYPE_ID":"{et}","ENTITY_ID":"{eid}","CITY":"x"}}"#
        ))
        .unwrap()
    }

    #[test]
    fn pages_order_by_every_part_and_chain_on_the_first() {
        let c = chain();
        let p = c.page_params(1);
        let order: Vec<&String> = p["order"].as_object().unwrap().keys().collect();
        assert_eq!(order, ["ENTITY_ID", "ENTITY_TYPE_ID", "TYPE_ID"]);
        assert_eq!(p["start"], json!(-1));
        assert_eq!(
            p["filter"][">=ENTITY_ID"],
            json!("$result[p0][49][ENTITY_ID]")
        );
        // The composed column is never asked for; every part is.
        let select: Vec<&str> = p["select"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(!select.contains(&"ADDRESS_KEY"), "{select:?}");
        for part in ["ENTITY_ID", "ENTITY_TYPE_ID", "TYPE_ID", "CITY"] {
            assert!(select.contains(&part), "{select:?}");
        }
        assert!(c.page_params(0)["filter"].get(">=ENTITY_ID").is_none());
    }

    #[test]
    fn the_overlap_is_dropped_and_the_key_composed() {
        let mut c = chain();
        let first = vec![row(1, 8, 1), row(1, 8, 4), row(2, 8, 6)];
        let keys = first.iter().map(|r| c.row_key(r).unwrap()).collect();
        let out = c.accept(first, keys).unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].get("ADDRESS_KEY"), Some(json!("8:1:1")));
        assert_eq!(c.page_params(0)["filter"][">=ENTITY_ID"], json!(2));
        // The next page starts at owner 2 again: its first row is the overlap.
        let next = vec![row(2, 8, 6), row(2, 8, 9), row(3, 1, 1)];
        let keys = next.iter().map(|r| c.row_key(r).unwrap()).collect();
        let out = c.accept(next, keys).unwrap();
        let got: Vec<Value> = out.iter().filter_map(|r| r.get("ADDRESS_KEY")).collect();
        assert_eq!(got, [json!("8:2:9"), json!("1:3:1")]);
        // A row below the cursor after a new one: the portal ignored the order.
        let bad = vec![row(4, 8, 1), row(3, 1, 1)];
        let keys = bad.iter().map(|r| c.row_key(r).unwrap()).collect();
        assert!(c.accept(bad, keys).is_err());
        // A key part that is not an integer fails the page.
        let odd =
            RawRow::from_json(r#"{"TYPE_ID":"1","ENTITY_TYPE_ID":"8","ENTITY_ID":""}"#).unwrap();
        assert!(c.row_key(&odd).is_err());
    }
}
