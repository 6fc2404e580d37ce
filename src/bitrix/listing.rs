//! COUNT-free listing, page by page.
//!
//! For methods that filter by `>ID` (see `methods.rs`): `start=-1`, `order ID ASC`, and up to 50
//! pages chained inside one `batch` through `$result[p{k-1}][49][ID]` (for `crm.item`
//! `$result[p{k-1}][items][49][id]`): up to 2,500 rows per HTTP request without COUNT.
//!
//! The short-page problem: when page k-1 has fewer than 50 rows its `[49]` does not exist and
//! the server substitutes a partial value, so page k and later ones ran with a broken filter.
//! They are never read: pages are consumed in order and the first page with fewer than 50 rows
//! ends the listing. Every page is also checked to be strictly ascending and above the cursor,
//! so a method that ignored the filter or the order fails loudly instead of duplicating rows.
//!
//! To waste as few chained pages past the end as possible, the first batch also carries a
//! `probe` command (same filter, `ID DESC`, ids only): it gives the highest id (and, with fewer
//! than 50 matches, the exact id set), and later chains are sized to what is left plus one page
//! that proves the end. The first batch itself is blind (the probe's answer arrives with it), so
//! it chains only [`FIRST_CHAIN`] pages: a table of up to 199 rows is read in one request with at
//! most 3 pages past its end (a blind 49-page chain wasted up to 48 on every small table, and
//! pages after a short one run with a broken `>ID` filter whose cost is the server's business).
//! Big tables lose nothing: the probe sizes every later chain to 50 pages until the end, so
//! 100,000 rows still take 41 requests. The governor reserves per nested command, so the small
//! first batch does not under-reserve the full ones after it (see BENCHMARKS.md).
use super::batch::{Batch, CommandOutcome, result_ref};
use super::client::Client;
use super::envelope::Response;
use super::error::{BitrixError, ErrorClass};
use super::governor::{BATCH_KEY, Evidence, Request, command_kind};
use super::known_owners::KnownOwners;
use super::methods::{FilterStyle, MethodSpec, OrderStyle, Paging, TypeScope, spec};
use super::raw::{RawResult, RawRow};
use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Rows per page: fixed by the server (`IRestService::LIST_LIMIT`).
pub const PAGE_SIZE: usize = 50;
/// Requests the bucket must have free before a listing spends one on a plain page only to
/// balance budgets (never enough to make a batch behind it wait).
const SPARE_REQUESTS: f64 = 10.0;
/// Below this share of the `batch` key's budget left, listings balance onto plain pages (as
/// companion reads do, `pipeline::companion`).
const BATCH_KEY_BUSY: f64 = 0.5;

/// Pages chained in the first (blind) batch of any listing, full, id-only or incremental.
const FIRST_CHAIN: usize = 4;
/// Consecutive batches that made no progress because of retryable command errors.
const MAX_STALLED_BATCHES: u32 = 8;

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    /// Key of the methods table: `crm.item`, `crm.lead`, `user`…
    pub method_key: String,
    pub entity_type_id: Option<u32>,
    /// Fields to select (`select` syntax of the method); empty = every field.
    pub select: Vec<String>,
    /// Only rows whose cursor field is `>=` this (the caller includes its lookback).
    pub modified_since: Option<DateTime<FixedOffset>>,
    /// Only the primary key (deletion reconciliation).
    pub ids_only: bool,
    /// More filter conditions, in the method's filter syntax.
    pub extra_filter: Map<String, Value>,
    /// Owners already held, for a full per-owner listing (`super::owners`).
    pub known_owners: Option<Arc<KnownOwners>>,
}

/// One page of rows as the portal returned them: each row is its JSON text (normalisation
/// reads it without building a `Value`; [`RawRow::get`] / [`RawRow::to_map`] for others).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    pub rows: Vec<RawRow>,
    /// Its companion columns are to be read with plain calls too: set by a listing from both
    /// ends on its plain pages where it spreads under `both` billing
    /// (`Governor::spread_under_both`, `pipeline::companion`).
    pub companion_plain: bool,
}

impl Page {
    pub fn new(rows: Vec<RawRow>) -> Self {
        Self {
            rows,
            companion_plain: false,
        }
    }
}

/// Parameters of the cheapest first page of a listing (ids only where the method selects),
/// shaped exactly as [`list`] sends them: discovery calls it to learn whether the portal
/// serves the method at all for this entity type (`catalog::unavailable`).
pub fn probe_params(spec: &MethodSpec, entity_type_id: Option<u32>) -> Value {
    let req = ListRequest {
        method_key: spec.key.to_string(),
        entity_type_id: spec.fields_entity_type_id(entity_type_id),
        ids_only: true,
        ..ListRequest::default()
    };
    let mut p = base_params(spec, &req);
    match spec.paging {
        // A key chain's probe orders by the key's first part (`IdSpec::filter`).
        Paging::IdChain | Paging::KeyChain => {
            set_order(spec, &mut p, "ASC");
            p.insert("start".into(), json!(-1));
        }
        Paging::Offset => {
            set_order(spec, &mut p, "ASC");
            p.insert("start".into(), json!(0));
        }
        // Never probed: the method lists nothing without owners (see `catalog::discover`).
        Paging::Unpaged | Paging::OwnerChain => {}
    }
    // A per-parent method is probed with the id every caller may read (`entityId 0`).
    if let TypeScope::PerParent { param, .. } = spec.type_scope {
        p.insert(param.to_string(), json!(0));
    }
    shaped(spec, p)
}

/// Parameters of the first page of an ID-chained listing (`order ID ASC`, `start=-1`), to send
/// beside other commands in one `batch`.
pub fn first_page_params(spec: &MethodSpec, req: &ListRequest) -> Value {
    let mut p = base_params(spec, req);
    set_order(spec, &mut p, "ASC");
    p.insert("start".into(), json!(-1));
    shaped(spec, p)
}

/// An offset listing that ends with fewer rows than the portal's `total` skipped rows (a row
/// deleted between pages shifts the offsets): it must fail, or the skipped rows would be
/// tombstoned. More rows than `total` is fine (rows created meanwhile).
pub(super) fn check_total(
    spec: &MethodSpec,
    seen: u64,
    total: Option<u64>,
) -> Result<(), BitrixError> {
    match total {
        Some(total) if seen < total => Err(malformed(
            spec,
            &format!("the listing ended after {seen} rows but the portal reported total {total}"),
        )),
        _ => Ok(()),
    }
}

/// A smart process removed between `crm.enum.ownertype` and its listing answers `NOT_FOUND`.
pub(super) fn gone(e: &BitrixError) -> bool {
    e.class() == ErrorClass::NotFound
}

pub(super) fn resolve(req: &ListRequest) -> Result<&'static MethodSpec, BitrixError> {
    let spec = spec(&req.method_key)
        .ok_or_else(|| BitrixError::Usage(format!("unknown method key `{}`", req.method_key)))?;
    if spec.needs_entity_type_id && req.entity_type_id.is_none() {
        return Err(BitrixError::Usage(format!(
            "{} needs an entityTypeId",
            spec.list
        )));
    }
    if req.modified_since.is_some() && spec.cursor.is_none() {
        return Err(BitrixError::Usage(format!(
            "{} has no modification cursor: list it whole",
            spec.list
        )));
    }
    Ok(spec)
}

pub(super) fn malformed(spec: &MethodSpec, message: &str) -> BitrixError {
    BitrixError::Malformed {
        method: spec.list.to_string(),
        status: 200,
        message: message.to_string(),
    }
}

/// The `select` to send: the caller's (with the id added, the cursor needs it) or every field.
fn select_for(spec: &MethodSpec, req: &ListRequest) -> Vec<String> {
    if req.ids_only {
        return vec![spec.id.filter.to_string()];
    }
    if req.select.is_empty() {
        return spec.default_select();
    }
    let mut s = req.select.clone();
    let has_id = s
        .iter()
        .any(|f| f == "*" || f.eq_ignore_ascii_case(spec.id.filter));
    if !has_id {
        s.insert(0, spec.id.filter.to_string());
    }
    s
}

/// Parameters shared by every page: entity type, select, filter (without the id cursor).
pub(super) fn base_params(spec: &MethodSpec, req: &ListRequest) -> Map<String, Value> {
    let mut p = Map::new();
    if let Some(eid) = req.entity_type_id.filter(|_| spec.needs_entity_type_id) {
        p.insert("entityTypeId".into(), json!(eid));
    }
    if spec.takes_select() {
        p.insert("select".into(), json!(select_for(spec, req)));
    }
    let mut filter = req.extra_filter.clone();
    if let (Some(since), Some(cursor)) = (req.modified_since, spec.cursor) {
        filter.insert(
            format!(">={}", cursor.filter),
            json!(since.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)),
        );
    }
    set_filter(spec, &mut p, filter);
    p
}

fn set_filter(spec: &MethodSpec, params: &mut Map<String, Value>, filter: Map<String, Value>) {
    match spec.filter_style {
        FilterStyle::Object | FilterStyle::Positional if !filter.is_empty() => {
            params.insert("filter".into(), Value::Object(filter));
        }
        FilterStyle::UpperObject if !filter.is_empty() => {
            params.insert("FILTER".into(), Value::Object(filter));
        }
        FilterStyle::TopLevel => params.extend(filter),
        _ => {}
    }
}

pub(super) fn filter_mut<'a>(
    spec: &MethodSpec,
    params: &'a mut Map<String, Value>,
) -> &'a mut Map<String, Value> {
    let key = match spec.filter_style {
        FilterStyle::Object | FilterStyle::Positional => "filter",
        FilterStyle::UpperObject => "FILTER",
        FilterStyle::TopLevel => return params,
    };
    let slot = params
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

pub(super) fn set_order(spec: &MethodSpec, params: &mut Map<String, Value>, dir: &str) {
    match spec.order_style {
        OrderStyle::Object => {
            params.insert("order".into(), json!({ spec.id.filter: dir }));
        }
        OrderStyle::SortAndOrder => {
            params.insert("sort".into(), json!(spec.id.filter));
            params.insert("order".into(), json!(dir));
        }
        OrderStyle::UpperObject => {
            params.insert("ORDER".into(), json!({ spec.id.filter: dir }));
        }
        OrderStyle::UpperSortAndOrder => {
            params.insert("SORT".into(), json!(spec.id.filter));
            params.insert("ORDER".into(), json!(dir));
        }
    }
}

/// The parameters as the method takes them: named, or for [`FilterStyle::Positional`] methods
/// `ORDER, FILTER, SELECT, PARAMS` in that order with one page of 50 through `NAV_PARAMS`
/// (they read no `start`). The filter is never empty there: an empty one would vanish from a
/// batch command's query string and shift every later argument, so it is `>ID 0` (all rows).
pub(super) fn shaped(spec: &MethodSpec, mut p: Map<String, Value>) -> Value {
    if spec.filter_style != FilterStyle::Positional {
        return Value::Object(p);
    }
    let filter = match p.remove("filter") {
        Some(Value::Object(f)) if !f.is_empty() => Value::Object(f),
        _ => json!({ format!(">{}", spec.id.filter): 0 }),
    };
    let mut out = Map::new();
    out.insert(
        "ORDER".into(),
        p.remove("order")
            .unwrap_or_else(|| json!({ spec.id.filter: "ASC" })),
    );
    out.insert("FILTER".into(), filter);
    out.insert(
        "SELECT".into(),
        p.remove("select").unwrap_or_else(|| json!(["*"])),
    );
    out.insert(
        "PARAMS".into(),
        json!({"NAV_PARAMS": {"nPageSize": PAGE_SIZE, "iNumPage": 1}}),
    );
    Value::Object(out)
}

/// The rows of one answer according to the method's envelope.
pub fn extract_rows(
    spec: &MethodSpec,
    r: &Response,
) -> Result<Vec<Map<String, Value>>, BitrixError> {
    rows_of(spec, &r.result)
}

fn rows_of(spec: &MethodSpec, result: &Value) -> Result<Vec<Map<String, Value>>, BitrixError> {
    let list = match spec.envelope.key() {
        None => result,
        Some(k) => match result {
            // A result without its envelope is malformed, never an empty page.
            Value::Object(m) => m
                .get(k)
                .ok_or_else(|| malformed(spec, &format!("result has no `{k}`")))?,
            // An empty PHP array is `[]` even where an object is expected.
            Value::Array(a) if a.is_empty() => &Value::Null,
            _ => return Err(malformed(spec, &format!("result has no `{k}`"))),
        },
    };
    let items: Vec<&Value> = match list {
        Value::Null => Vec::new(),
        Value::Array(a) => a.iter().collect(),
        // PHP emits an array with non-sequential keys as an object.
        Value::Object(m) => m.values().collect(),
        _ => return Err(malformed(spec, "rows are not a list")),
    };
    items
        .into_iter()
        .map(|v| match v {
            Value::Object(m) => Ok(m.clone()),
            _ => Err(malformed(spec, "a row is not an object")),
        })
        .collect()
}

/// The rows of one raw answer according to the method's envelope (same rules and errors as
/// [`extract_rows`]).
pub fn raw_rows(spec: &MethodSpec, r: &Response<RawResult>) -> Result<Vec<RawRow>, BitrixError> {
    let nested;
    let list = match spec.envelope.key() {
        None => &r.result,
        Some(k) => match &r.result {
            RawResult::Object(m) => match m.iter().find(|(name, _)| name == k) {
                Some((_, raw)) => {
                    nested = serde_json::from_str::<RawResult>(raw.get())
                        .map_err(|e| malformed(spec, &format!("`{k}`: {e}")))?;
                    &nested
                }
                // A result without its envelope is malformed, never an empty page.
                None => return Err(malformed(spec, &format!("result has no `{k}`"))),
            },
            RawResult::List(a) if a.is_empty() => return Ok(Vec::new()),
            _ => return Err(malformed(spec, &format!("result has no `{k}`"))),
        },
    };
    let items: Vec<&serde_json::value::RawValue> = match list {
        RawResult::Scalar(Value::Null) => Vec::new(),
        RawResult::List(a) => a.iter().map(|r| &**r).collect(),
        RawResult::Object(m) => m.iter().map(|(_, r)| &**r).collect(),
        RawResult::Scalar(_) => return Err(malformed(spec, "rows are not a list")),
    };
    items
        .into_iter()
        .map(|raw| {
            RawRow::from_raw(raw.to_owned())
                .ok_or_else(|| malformed(spec, "a row is not an object"))
        })
        .collect()
}

/// The row's numeric primary key (the listing cursor).
///
/// Bitrix24 prints the key first (`{"ID":"123",…` / `{"id":123,…`); that prefix is read
/// without scanning the row. Any other shape falls back to reading the key from the row.
/// (A row repeating its key is not something Bitrix24 prints; normalisation would read the
/// last one, this the first.)
pub fn row_id(spec: &MethodSpec, row: &RawRow) -> Option<i64> {
    if let Some(id) = leading_id(row.json(), spec.id.row) {
        return Some(id);
    }
    match row.get(spec.id.row)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `{"<key>":"<digits>"` or `{"<key>":<digits>` followed by `,` or `}`: the digits.
fn leading_id(json: &str, key: &str) -> Option<i64> {
    let rest = json
        .strip_prefix("{\"")?
        .strip_prefix(key)?
        .strip_prefix("\":")?;
    let (digits, after) = match rest.strip_prefix('"') {
        Some(r) => {
            let end = r.find('"')?;
            (&r[..end], &r[end + 1..])
        }
        None => {
            let end = rest.find([',', '}'])?;
            (&rest[..end], &rest[end..])
        }
    };
    let plain =
        !digits.is_empty() && digits.len() <= 18 && digits.bytes().all(|b| b.is_ascii_digit());
    (plain && (after.starts_with(',') || after.starts_with('}')))
        .then(|| digits.parse().ok())
        .flatten()
}

/// State of one chained listing.
pub(super) struct Chain {
    spec: &'static MethodSpec,
    base: Map<String, Value>,
    ids_only_base: Map<String, Value>,
    last_id: Option<i64>,
    first_id: Option<i64>,
    rows_seen: u64,
    probe_max: Option<i64>,
    /// With fewer than 50 matches the probe returns every id there is.
    probe_exact: Option<Vec<i64>>,
    batches: u64,
    stalled: u32,
    done: bool,
    /// The highest id this chain still has to read (rows above are read elsewhere, see
    /// `both_ends`): sizes the chains like the probe's highest id.
    cap: Option<i64>,
}

impl Chain {
    pub(super) fn new(spec: &'static MethodSpec, req: &ListRequest) -> Self {
        let ids_req = ListRequest {
            ids_only: true,
            ..req.clone()
        };
        Self {
            spec,
            base: base_params(spec, req),
            ids_only_base: base_params(spec, &ids_req),
            last_id: None,
            first_id: None,
            rows_seen: 0,
            probe_max: None,
            probe_exact: None,
            batches: 0,
            stalled: 0,
            done: false,
            cap: None,
        }
    }

    pub(super) fn spec(&self) -> &'static MethodSpec {
        self.spec
    }

    /// Whether a page shorter than 50 rows ended the listing.
    pub(super) fn done(&self) -> bool {
        self.done
    }

    pub(super) fn set_cap(&mut self, cap: Option<i64>) {
        self.cap = cap;
    }

    /// Rows the chain expects above its cursor (from the probe, or the cap), if it knows.
    pub(super) fn rows_left(&self) -> Option<f64> {
        let max = self.max_id()?;
        let last = self.last_id.unwrap_or(0);
        Some((max - last).max(0) as f64 * self.density())
    }

    /// The id the next batch is expected to reach (its chain's pages at the density seen).
    pub(super) fn planned_reach(&self) -> Option<i64> {
        let last = self.last_id?;
        let rows = (self.chain_len() * PAGE_SIZE) as f64;
        Some(last.saturating_add((rows / self.density()) as i64))
    }

    /// Continues the listing above `id` (rows up to it were read elsewhere).
    pub(super) fn skip_to(&mut self, id: i64) {
        self.last_id = Some(self.last_id.map_or(id, |last| last.max(id)));
        self.cap = None;
        self.probe_max = Some(self.probe_max.map_or(id, |max| max.min(id)));
        self.probe_exact = None;
    }

    fn max_id(&self) -> Option<i64> {
        match (self.probe_max, self.cap) {
            (Some(m), Some(c)) => Some(m.min(c)),
            (m, c) => m.or(c),
        }
    }

    fn density(&self) -> f64 {
        let last = self.last_id.unwrap_or(0);
        let span = (last - self.first_id.unwrap_or(1) + 1).max(1) as f64;
        (self.rows_seen as f64 / span).clamp(1e-6, 1.0)
    }

    /// How many pages the next batch chains.
    fn chain_len(&self) -> usize {
        if self.batches == 0 {
            return FIRST_CHAIN;
        }
        let last = self.last_id.unwrap_or(0);
        if let Some(ids) = &self.probe_exact {
            let remaining = ids.iter().filter(|i| **i > last).count();
            return (remaining / PAGE_SIZE + 1).clamp(1, 50);
        }
        let Some(max) = self.max_id() else {
            return 50;
        };
        if last >= max {
            // Only rows created since the probe can follow: one page proves the end.
            return 1;
        }
        let est_rows = (max - last) as f64 * self.density();
        ((est_rows / PAGE_SIZE as f64).ceil() as usize + 1).clamp(1, 50)
    }

    fn page_params(&self, k: usize) -> Map<String, Value> {
        let mut p = self.base.clone();
        set_order(self.spec, &mut p, "ASC");
        p.insert("start".into(), json!(-1));
        let key = format!(">{}", self.spec.id.filter);
        let cursor = if k == 0 {
            self.last_id.map(|id| json!(id))
        } else {
            let mut path = self.spec.rows_path();
            let last = (PAGE_SIZE - 1).to_string();
            path.push(&last);
            path.push(self.spec.id.row);
            Some(json!(result_ref(&format!("p{}", k - 1), &path)))
        };
        if let Some(c) = cursor {
            filter_mut(self.spec, &mut p).insert(key, c);
        }
        p
    }

    fn probe_params(&self) -> Map<String, Value> {
        let mut p = self.ids_only_base.clone();
        set_order(self.spec, &mut p, "DESC");
        p.insert("start".into(), json!(-1));
        p
    }

    pub(super) async fn next_batch(
        &mut self,
        client: &Client,
    ) -> Result<Option<Vec<Page>>, BitrixError> {
        if self.done {
            return Ok(None);
        }
        let chain = self.chain_len();
        let probe = self.batches == 0;
        let kind = command_kind(self.spec.list, &Value::Object(self.page_params(0)));
        if self.plain_page_pays(client, &kind, chain + usize::from(probe)) {
            return self.next_plain_page(client).await;
        }
        let chain = self.fit_to_budget(client, &kind, chain, probe);
        let mut batch = Batch::new();
        if probe {
            batch.push(
                "probe",
                self.spec.list,
                shaped(self.spec, self.probe_params()),
            )?;
        }
        for k in 0..chain {
            batch.push(
                format!("p{k}"),
                self.spec.list,
                shaped(self.spec, self.page_params(k)),
            )?;
        }
        let mut resp = client.batch_raw(&batch).await?;
        self.batches += 1;
        if probe {
            self.read_probe(resp.take("probe"))?;
        }
        let mut pages = Vec::with_capacity(chain);
        for k in 0..chain {
            match resp.take(&format!("p{k}")) {
                CommandOutcome::Ok(r) => {
                    let rows = raw_rows(self.spec, &r)?;
                    self.accept(&rows)?;
                    let full = rows.len() >= PAGE_SIZE;
                    pages.push(Page::new(rows));
                    if !full {
                        self.done = true;
                        break;
                    }
                }
                // Later pages were filtered by this one: they are discarded and re-read from
                // the last good cursor once the governor lets the method run again.
                CommandOutcome::Err(e) if e.is_retryable() => {
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
                    return Ok(Some(pages));
                }
                CommandOutcome::Err(e) => return Err(e),
                CommandOutcome::Missing => {
                    return Err(malformed(
                        self.spec,
                        &format!("batch has no answer for p{k}"),
                    ));
                }
            }
        }
        self.stalled = 0;
        Ok(Some(pages))
    }

    /// Whether the next page goes as a plain call instead of a chained batch: the portal bills
    /// whole batches to one `batch` key (learned from its figures) while a plain call is billed
    /// to its own method, a second budget. A plain page (50 rows for one request of the
    /// bucket) goes when it fits its method's budget now and either the chain would have to
    /// pause for the `batch` key (a request beats waiting for the window to turn), or the
    /// `batch` key is past half its budget, carries more than the method's key and the bucket
    /// has requests to spare (both budgets then carry the load, so the sustainable rate is
    /// about theirs together, at no wait). Below half the budget batches alone go: a plain page
    /// carries 50 rows per request where a batch carries 2,500, so balancing a load that fits
    /// the `batch` budget would only make it slower.
    fn plain_page_pays(&self, client: &Client, kind: &str, chain: usize) -> bool {
        let gov = client.governor();
        if gov.billing().batch_key != Evidence::Yes {
            return false;
        }
        if gov.would_pause(&Request::plain(self.spec.list, kind)) {
            return false;
        }
        let chained = Request::batch((0..chain).map(|_| (self.spec.list, kind)));
        if gov.would_pause(&chained) {
            return true;
        }
        let spare = gov.bucket_free().is_none_or(|free| free >= SPARE_REQUESTS);
        let busy = gov
            .headroom(BATCH_KEY)
            .is_some_and(|free| free < BATCH_KEY_BUSY);
        spare && busy && gov.key_load(BATCH_KEY) > gov.key_load(self.spec.list)
    }

    /// `chain` shortened to the pages the operating budget has room for now (never below 1).
    fn fit_to_budget(&self, client: &Client, kind: &str, chain: usize, probe: bool) -> usize {
        let probe_kind =
            probe.then(|| command_kind(self.spec.list, &Value::Object(self.probe_params())));
        client.governor().batch_room(chain, |n| {
            let pages = (0..n).map(|_| (self.spec.list, kind));
            let probe = probe_kind.iter().map(|k| (self.spec.list, k.as_str()));
            Request::batch(probe.chain(pages))
        })
    }

    /// One page read with a plain call, from the cursor. The probe waits for the next batch
    /// (`batches` is not advanced), which sizes the chains from there.
    async fn next_plain_page(&mut self, client: &Client) -> Result<Option<Vec<Page>>, BitrixError> {
        let params = shaped(self.spec, self.page_params(0));
        let r = client.call_raw(self.spec.list, &params).await?;
        let rows = raw_rows(self.spec, &r)?;
        self.accept(&rows)?;
        if rows.len() < PAGE_SIZE {
            self.done = true;
        }
        self.stalled = 0;
        Ok(Some(vec![Page::new(rows)]))
    }

    fn read_probe(&mut self, outcome: CommandOutcome<RawResult>) -> Result<(), BitrixError> {
        match outcome {
            CommandOutcome::Ok(r) => {
                let ids: Vec<i64> = raw_rows(self.spec, &r)?
                    .iter()
                    .filter_map(|row| row_id(self.spec, row))
                    .collect();
                self.probe_max = ids.iter().copied().max();
                if ids.len() < PAGE_SIZE {
                    self.probe_exact = Some(ids);
                }
                Ok(())
            }
            // The probe only sizes chains; without it they stay full length.
            CommandOutcome::Err(e) if e.is_retryable() => Ok(()),
            CommandOutcome::Err(e) => Err(e),
            CommandOutcome::Missing => Ok(()),
        }
    }

    /// Checks a page continues the listing (ascending, above the cursor) and advances it.
    fn accept(&mut self, rows: &[RawRow]) -> Result<(), BitrixError> {
        for row in rows {
            let id = row_id(self.spec, row).ok_or_else(|| {
                malformed(
                    self.spec,
                    &format!("a row has no numeric `{}`", self.spec.id.row),
                )
            })?;
            if self.last_id.is_some_and(|last| id <= last) {
                return Err(malformed(
                    self.spec,
                    &format!(
                        "id {id} after {:?}: the page ignores the >ID cursor or the order",
                        self.last_id
                    ),
                ));
            }
            self.last_id = Some(id);
            self.first_id.get_or_insert(id);
            self.rows_seen += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(key: &str) -> ListRequest {
        ListRequest {
            method_key: key.into(),
            entity_type_id: Some(2),
            ..Default::default()
        }
    }

    #[test]
    fn probes_ask_for_one_page_of_ids_in_each_method_s_own_syntax() {
        let p = probe_params(spec("crm.stagehistory").unwrap(), Some(128));
        assert_eq!(
            p,
            json!({"entityTypeId": 128, "select": ["ID"], "order": {"ID": "ASC"}, "start": -1})
        );
        let p = probe_params(spec("user").unwrap(), None);
        assert_eq!(
            p,
            json!({"select": ["ID"], "sort": "ID", "order": "ASC", "start": -1})
        );
        // Pipelines are listed per type: the probe asks for the first (deals).
        assert_eq!(
            probe_params(spec("crm.category").unwrap(), None)["entityTypeId"],
            2
        );
        assert_eq!(probe_params(spec("crm.status").unwrap(), None), json!({}));
    }

    #[test]
    fn chained_page_refers_to_row_49_of_the_previous_page() {
        let item = spec("crm.item").unwrap();
        let c = Chain::new(item, &req("crm.item"));
        let p = c.page_params(3);
        assert_eq!(p["filter"][">id"], "$result[p2][items][49][id]");
        assert_eq!(p["order"]["id"], "ASC");
        assert_eq!(p["start"], -1);
        assert_eq!(p["entityTypeId"], 2);
        let lead = spec("crm.lead").unwrap();
        let c = Chain::new(lead, &req("crm.lead"));
        assert_eq!(c.page_params(1)["filter"][">ID"], "$result[p0][49][ID]");
        assert!(c.page_params(0).get("filter").is_none());
        assert_eq!(
            c.page_params(0)["select"],
            json!(["*", "UF_*", "PHONE", "EMAIL", "WEB", "IM"])
        );
    }

    #[test]
    fn incremental_filter_and_probe() {
        let mut r = req("crm.lead");
        r.modified_since = DateTime::parse_from_rfc3339("2024-05-01T10:00:00+03:00").ok();
        let c = Chain::new(spec("crm.lead").unwrap(), &r);
        let p = c.page_params(0);
        assert_eq!(p["filter"][">=DATE_MODIFY"], "2024-05-01T10:00:00+03:00");
        let probe = c.probe_params();
        assert_eq!(probe["order"]["ID"], "DESC");
        assert_eq!(probe["select"], json!(["ID"]));
        assert_eq!(
            probe["filter"][">=DATE_MODIFY"],
            "2024-05-01T10:00:00+03:00"
        );
        assert_eq!(c.chain_len(), FIRST_CHAIN);
    }

    #[test]
    fn user_get_uses_sort_order_strings_and_upper_filter() {
        let c = Chain::new(spec("user").unwrap(), &req("user"));
        let p = c.page_params(1);
        assert_eq!(
            (p["sort"].as_str(), p["order"].as_str()),
            (Some("ID"), Some("ASC"))
        );
        assert_eq!(p["FILTER"][">ID"], "$result[p0][49][ID]");
    }

    #[test]
    fn chain_is_sized_from_the_probe() {
        let mut c = Chain::new(spec("crm.lead").unwrap(), &req("crm.lead"));
        c.batches = 1;
        c.probe_max = Some(100_000);
        c.first_id = Some(1);
        c.last_id = Some(97_450);
        c.rows_seen = 97_450;
        assert_eq!(c.chain_len(), 50);
        c.last_id = Some(99_950);
        c.rows_seen = 99_950;
        assert_eq!(c.chain_len(), 2);
        c.last_id = Some(100_000);
        assert_eq!(c.chain_len(), 1);
        c.probe_exact = Some((1..=120).collect());
        c.last_id = Some(0);
        assert_eq!(c.chain_len(), 3);
    }

    #[test]
    fn pages_must_ascend_above_the_cursor() {
        let mut c = Chain::new(spec("crm.lead").unwrap(), &req("crm.lead"));
        let rows = |ids: &[i64]| -> Vec<RawRow> {
            ids.iter()
                .map(|i| RawRow::from_map(json!({"ID": i.to_string()}).as_object().unwrap()))
                .collect()
        };
        c.accept(&rows(&[1, 2, 3])).unwrap();
        assert!(c.accept(&rows(&[3, 4])).is_err());
        assert!(c.accept(&rows(&[10, 9])).is_err());
    }

    #[test]
    fn row_id_prefix_and_fallback() {
        let lead = spec("crm.lead").unwrap();
        let item = spec("crm.item").unwrap();
        let id = |s: &MethodSpec, t: &str| row_id(s, &RawRow::from_json(t).unwrap());
        assert_eq!(id(lead, r#"{"ID":"42","X":1}"#), Some(42));
        assert_eq!(id(item, r#"{"id":42}"#), Some(42));
        assert_eq!(id(lead, r#"{"X":1,"ID":" 43 "}"#), Some(43));
        assert_eq!(id(lead, r#"{"ID":"4\u0032"}"#), Some(42));
        assert_eq!(id(lead, r#"{"ID":-5}"#), Some(-5));
        assert_eq!(id(lead, r#"{"ID":"x"}"#), None);
        assert_eq!(id(lead, r#"{"IDX":"1"}"#), None);
        assert_eq!(leading_id(r#"{"ID":"1"#, "ID"), None);
    }

    #[test]
    fn envelopes_and_php_shapes() {
        let item = spec("crm.item").unwrap();
        assert!(rows_of(item, &json!([])).unwrap().is_empty());
        assert!(rows_of(item, &json!({"items": []})).unwrap().is_empty());
        assert_eq!(
            rows_of(item, &json!({"items": [{"id": 1}]})).unwrap().len(),
            1
        );
        assert!(rows_of(item, &json!({"other": 1})).is_err());
        let status = spec("crm.status").unwrap();
        assert_eq!(
            rows_of(status, &json!({"3": {"ID": "3"}})).unwrap().len(),
            1
        );
        assert!(rows_of(status, &json!("x")).is_err());
    }

    #[test]
    fn offset_listing_shorter_than_total_is_malformed() {
        let dept = spec("department").unwrap();
        assert!(check_total(dept, 49, Some(50)).is_err());
        assert!(check_total(dept, 50, Some(50)).is_ok());
        assert!(check_total(dept, 51, Some(50)).is_ok());
        assert!(check_total(dept, 0, None).is_ok());
    }

    #[test]
    fn requests_are_validated() {
        let mut r = req("crm.status");
        r.modified_since = DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z").ok();
        assert!(resolve(&r).is_err());
        let mut r = req("crm.item");
        r.entity_type_id = None;
        assert!(resolve(&r).is_err());
        assert!(resolve(&req("nope")).is_err());
    }
}
