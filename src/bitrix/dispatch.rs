//! The entry of every listing: one request per entity type or parent the method's scope
//! covers, each listed the way its method pages (`methods::Paging`): ID chains from both ends
//! (`both_ends`), offsets, unpaged calls, owner chains (`productrows`) and key chains
//! (`keyset`). It sits above those modules so none of them imports it back.
use super::batch::{Batch, CommandOutcome, MAX_COMMANDS};
use super::client::Client;
use super::error::BitrixError;
use super::listing::{
    Chain, ListRequest, Page, base_params, check_total, gone, malformed, raw_rows, resolve, row_id,
    set_order, shaped,
};
use super::methods::{
    MethodSpec, PREDEFINED_TYPES_WITH_PIPELINES, Paging, TypeScope, composite_key, parent_id_key,
    smart_process_type_id, spec,
};
use super::raw::RawRow;
use async_stream::try_stream;
use futures::{Stream, StreamExt};
use serde_json::json;
use std::sync::Arc;

/// Lists `req` page by page. The stream ends only after the last page; any failure is an
/// `Err` item (a broken listing must never look like a complete one).
pub fn list(
    client: Arc<Client>,
    req: ListRequest,
) -> impl Stream<Item = Result<Page, BitrixError>> {
    try_stream! {
        let (batched, reqs) = split_batched(per_type_requests(&client, req).await?);
        for chunk in batched.chunks(MAX_COMMANDS) {
            for page in unpaged_batch(&client, chunk).await? {
                yield page;
            }
        }
        for (req, optional) in reqs {
            let spec = resolve(&req)?;
            match spec.paging {
                Paging::IdChain => {
                    let mut pages = Box::pin(super::both_ends::list(client.clone(), spec, req.clone()));
                    while let Some(page) = pages.next().await {
                        yield page?;
                    }
                }
                Paging::Offset => {
                    let mut start = 0u64;
                    let mut seen = 0u64;
                    loop {
                        let mut params = base_params(spec, &req);
                        set_order(spec, &mut params, "ASC");
                        params.insert("start".into(), json!(start));
                        let r = match client.call_raw(spec.list, &shaped(spec, params)).await {
                            Err(e) if optional && start == 0 && gone(&e) => break,
                            r => r?,
                        };
                        let rows = raw_rows(spec, &r)?;
                        seen += rows.len() as u64;
                        yield Page::new(rows);
                        match r.next {
                            Some(n) if n > start => start = n,
                            Some(_) => Err(malformed(spec, "`next` did not advance"))?,
                            None => {
                                check_total(spec, seen, r.total)?;
                                break;
                            }
                        }
                    }
                }
                Paging::Unpaged => {
                    let params = base_params(spec, &req);
                    let r = match client.call_raw(spec.list, &shaped(spec, params)).await {
                        Err(e) if optional && gone(&e) => continue,
                        r => r?,
                    };
                    yield Page::new(raw_rows(spec, &r)?);
                }
                Paging::OwnerChain => {
                    let mut pages = Box::pin(super::productrows::list(client.clone(), req.clone()));
                    while let Some(page) = pages.next().await {
                        yield page?;
                    }
                }
                Paging::KeyChain => {
                    let mut pages = Box::pin(super::keyset::list(client.clone(), req.clone()));
                    while let Some(page) = pages.next().await {
                        yield page?;
                    }
                }
            }
        }
    }
}

/// One request per `entityTypeId` the method's scope covers (see `TypeScope`), each marked
/// whether its type may have vanished meanwhile (smart processes found at listing time).
async fn per_type_requests(
    client: &Client,
    req: ListRequest,
) -> Result<Vec<(ListRequest, bool)>, BitrixError> {
    let Some(spec) = spec(&req.method_key) else {
        // `resolve` reports the unknown key.
        return Ok(vec![(req, false)]);
    };
    let fixed = match spec.type_scope {
        TypeScope::Own => return Ok(vec![(req, false)]),
        TypeScope::FixedAndSmartProcesses(fixed) => fixed,
        TypeScope::PerParent {
            parent,
            param,
            fixed,
        } => return per_parent_requests(client, req, parent, param, fixed).await,
    };
    let owner_types = client.call("crm.enum.ownertype", &json!({})).await?;
    let smart = owner_types
        .result
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("SYMBOL_CODE")?.as_str())
        .filter_map(|code| {
            smart_process_type_id(code).or_else(|| {
                PREDEFINED_TYPES_WITH_PIPELINES
                    .iter()
                    .find(|(c, _)| *c == code)
                    .map(|(_, eid)| *eid)
            })
        });
    let with_type = |eid: u32| ListRequest {
        entity_type_id: Some(eid),
        ..req.clone()
    };
    let mut out: Vec<(ListRequest, bool)> = fixed.iter().map(|e| (with_type(*e), false)).collect();
    out.extend(smart.map(|e| (with_type(e), true)));
    Ok(out)
}

/// The calls of an unpaged per-parent listing (one per workgroup) go out up to
/// [`MAX_COMMANDS`] in one `batch`; every other request is listed on its own.
type Requests = Vec<(ListRequest, bool)>;

fn split_batched(reqs: Requests) -> (Requests, Requests) {
    reqs.into_iter().partition(|(r, _)| {
        spec(&r.method_key).is_some_and(|s| {
            s.paging == Paging::Unpaged && matches!(s.type_scope, TypeScope::PerParent { .. })
        })
    })
}

/// One `batch` of unpaged calls, a page each. A command refused for a limit is sent again on
/// its own (the client waits and retries); a parent that vanished meanwhile has no rows.
async fn unpaged_batch(
    client: &Client,
    chunk: &[(ListRequest, bool)],
) -> Result<Vec<Page>, BitrixError> {
    let mut batch = Batch::new();
    let mut specs = Vec::with_capacity(chunk.len());
    for (i, (req, _)) in chunk.iter().enumerate() {
        let spec = resolve(req)?;
        batch.push(
            format!("c{i}"),
            spec.list,
            shaped(spec, base_params(spec, req)),
        )?;
        specs.push(spec);
    }
    let mut resp = client.batch_raw(&batch).await?;
    let mut pages = Vec::with_capacity(chunk.len());
    for (i, ((req, optional), spec)) in chunk.iter().zip(specs).enumerate() {
        let r = match resp.take(&format!("c{i}")) {
            CommandOutcome::Ok(r) => r,
            CommandOutcome::Err(e) if *optional && gone(&e) => continue,
            CommandOutcome::Err(e) if !e.is_retryable() => return Err(e),
            _ => {
                let params = shaped(spec, base_params(spec, req));
                match client.call_raw(spec.list, &params).await {
                    Err(e) if *optional && gone(&e) => continue,
                    r => r?,
                }
            }
        };
        pages.push(Page::new(with_parent_and_key(
            spec,
            req,
            raw_rows(spec, &r)?,
        )?));
    }
    Ok(pages)
}

/// Rows of a per-parent call with the parent's id where they do not name it
/// (`methods::PARENT_ID_KEYS`), then the composed key where the method has one
/// (`methods::COMPOSITE_KEYS`).
fn with_parent_and_key(
    spec: &'static MethodSpec,
    req: &ListRequest,
    rows: Vec<RawRow>,
) -> Result<Vec<RawRow>, BitrixError> {
    let parent = match spec.type_scope {
        TypeScope::PerParent { param, .. } => {
            parent_id_key(spec.key).and_then(|k| Some((k, req.extra_filter.get(param)?.clone())))
        }
        _ => None,
    };
    let key = composite_key(spec.key);
    if parent.is_none() && key.is_none() {
        return Ok(rows);
    }
    rows.into_iter()
        .map(|row| {
            let row = match &parent {
                Some((k, id)) => row
                    .with_field(k, id)
                    .ok_or_else(|| malformed(spec, "a row is not a JSON object"))?,
                None => row,
            };
            match key {
                Some(key) => super::keyset::with_composed_key(spec, key, row),
                None => Ok(row),
            }
        })
        .collect()
}

/// One request per id of the parent entity (`TypeScope::PerParent`), the id in `param`. A
/// parent removed between its listing and its own call is gone, not an error.
async fn per_parent_requests(
    client: &Client,
    req: ListRequest,
    parent: &str,
    param: &str,
    fixed: &[(&str, bool)],
) -> Result<Vec<(ListRequest, bool)>, BitrixError> {
    let parent_spec = spec(parent)
        .ok_or_else(|| BitrixError::Usage(format!("methods table lacks `{parent}`")))?;
    let parent_req = ListRequest {
        method_key: parent.to_string(),
        ids_only: true,
        ..ListRequest::default()
    };
    let mut chain = Chain::new(parent_spec, &parent_req);
    let mut out = Vec::new();
    while let Some(pages) = chain.next_batch(client).await? {
        for row in pages.iter().flat_map(|p| &p.rows) {
            let id = row_id(parent_spec, row)
                .ok_or_else(|| malformed(parent_spec, "a row has no numeric id"))?;
            let mut r = req.clone();
            r.extra_filter.insert(param.to_string(), json!(id));
            for (k, v) in fixed {
                r.extra_filter.insert((*k).to_string(), json!(v));
            }
            out.push((r, true));
        }
    }
    Ok(out)
}
