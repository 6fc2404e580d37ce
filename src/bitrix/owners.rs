//! The owners a per-owner listing (`Paging::OwnerChain`: product rows, timeline comments)
//! reads the rows of: every owner of each type, with its modification time.
//!
//! Listing owners costs as much as listing any table, 50 ids a command: for 20,000 deals with 3
//! product rows each that is 400 of the 1,600 commands. Where b24ch already holds the owner
//! table (a `sync` that loaded `crm_deal` before `crm_productrow`), a full load takes the owners
//! from there (`super::known_owners::KnownOwners`) plus those the portal changed since that
//! table's watermark (minus the lookback) — which also brings every owner created since. An owner deleted in the
//! portal meanwhile is refused by the row listing and taken as gone (`productrows`), so a stale
//! snapshot costs requests, never rows.
//!
//! The first page of every type's owner listing goes in one `batch`: a portal with many owner
//! types (smart processes) pays one request for all the small ones.
use super::batch::{Batch, CommandOutcome};
use super::both_ends;
use super::client::Client;
use super::error::{BitrixError, ErrorClass};
use super::known_owners::OwnerSnapshot;
use super::listing::row_id;
use super::listing::{ListRequest, PAGE_SIZE, first_page_params, raw_rows};
use super::methods::{MethodSpec, spec};
use super::raw::RawRow;
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// One owner type whose rows are listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerType {
    pub entity_type_id: u32,
    /// `SYMBOL_CODE_SHORT` of `crm.enum.ownertype` (or the method's own name for the type).
    pub short: String,
    /// A smart process: it may vanish between discovery and listing.
    pub optional: bool,
}

/// An owner's id and modification time.
pub type Owner = (i64, Value);

/// The owners of every type, in the order of `types`; none for a type the portal no longer
/// has (a smart process removed meanwhile, invoices on an old install).
pub async fn every_owner(
    client: &Arc<Client>,
    types: &[OwnerType],
    req: &ListRequest,
) -> Result<Vec<Vec<Owner>>, BitrixError> {
    let item = item_spec()?;
    let plans: Vec<(ListRequest, Option<&OwnerSnapshot>)> = types
        .iter()
        .map(|t| plan(item, t, req))
        .collect::<Result<_, _>>()?;
    let mut batch = Batch::new();
    for (i, (r, _)) in plans.iter().enumerate() {
        batch.push(format!("o{i}"), item.list, first_page_params(item, r))?;
    }
    let mut resp = client.batch_raw(&batch).await?;
    let mut out = Vec::with_capacity(types.len());
    for (i, (t, (r, snapshot))) in types.iter().zip(plans).enumerate() {
        let listed = match resp.take(&format!("o{i}")) {
            CommandOutcome::Ok(answer) => {
                let first = owners_of(item, &raw_rows(item, &answer)?)?;
                match first.last() {
                    Some((last, _)) if first.len() >= PAGE_SIZE => {
                        let mut rest = r.clone();
                        rest.extra_filter
                            .insert(format!(">{}", item.id.filter), json!(last));
                        let mut all = first;
                        all.extend(owner_listing(client, t, rest).await?);
                        all
                    }
                    _ => first,
                }
            }
            CommandOutcome::Err(e) if t.optional && gone(&e) => {
                tracing::debug!(owner_type = %t.short, error = %e, "owner type not served; no rows");
                Vec::new()
            }
            CommandOutcome::Err(e) if !e.is_retryable() => return Err(e),
            // Refused for a limit, or missing: the type's whole listing on its own.
            _ => owner_listing(client, t, r).await?,
        };
        out.push(merged(snapshot, listed));
    }
    Ok(out)
}

fn item_spec() -> Result<&'static MethodSpec, BitrixError> {
    spec("crm.item").ok_or_else(|| BitrixError::Usage("methods table lacks `crm.item`".into()))
}

/// The owner listing of one type: every owner, those modified since the caller's time, or —
/// for a full load with a snapshot — those modified since the snapshot.
fn plan<'a>(
    item: &MethodSpec,
    t: &OwnerType,
    req: &'a ListRequest,
) -> Result<(ListRequest, Option<&'a OwnerSnapshot>), BitrixError> {
    let updated = item
        .cursor
        .ok_or_else(|| BitrixError::Usage("crm.item has no modification cursor".into()))?;
    let snapshot = req
        .known_owners
        .as_ref()
        .filter(|_| req.modified_since.is_none())
        .and_then(|k| k.0.get(&t.entity_type_id));
    let owners = ListRequest {
        method_key: item.key.into(),
        entity_type_id: Some(t.entity_type_id),
        select: vec![item.id.filter.to_string(), updated.filter.to_string()],
        modified_since: snapshot.map(|s| s.changed_since).or(req.modified_since),
        ..ListRequest::default()
    };
    Ok((owners, snapshot))
}

/// The snapshot's owners with the portal's fresher entries over them, by id.
fn merged(snapshot: Option<&OwnerSnapshot>, listed: Vec<Owner>) -> Vec<Owner> {
    let Some(s) = snapshot else {
        return listed;
    };
    let mut by_id: HashMap<i64, Value> = s.owners.iter().cloned().collect();
    by_id.extend(listed);
    let mut out: Vec<Owner> = by_id.into_iter().collect();
    out.sort_unstable_by_key(|(id, _)| *id);
    out
}

/// A whole owner listing (COUNT-free `crm.item.list` chain).
async fn owner_listing(
    client: &Arc<Client>,
    t: &OwnerType,
    req: ListRequest,
) -> Result<Vec<Owner>, BitrixError> {
    let item = item_spec()?;
    let mut owners = Vec::new();
    // `crm.item` is listed per the type it is given: an ID chain, no dispatch needed.
    let mut pages = Box::pin(both_ends::list(client.clone(), item, req));
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => owners.extend(owners_of(item, &p.rows)?),
            Err(e) if t.optional && owners.is_empty() && gone(&e) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        }
    }
    Ok(owners)
}

fn owners_of(item: &MethodSpec, rows: &[RawRow]) -> Result<Vec<Owner>, BitrixError> {
    let updated = item.cursor.map_or("updatedTime", |c| c.row);
    rows.iter()
        .map(|r| {
            let id = row_id(item, r).ok_or_else(|| BitrixError::Malformed {
                method: item.list.to_string(),
                status: 200,
                message: "an owner row has no numeric id".into(),
            })?;
            Ok((id, r.get(updated).unwrap_or(Value::Null)))
        })
        .collect()
}

pub(super) fn gone(e: &BitrixError) -> bool {
    matches!(
        e.class(),
        ErrorClass::NotFound | ErrorClass::Unsupported | ErrorClass::MethodNotFound
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitrix::known_owners::KnownOwners;
    use chrono::DateTime;

    #[test]
    fn the_portal_s_changed_owners_replace_the_snapshot_s() {
        let snapshot = OwnerSnapshot {
            owners: vec![(3, json!("old")), (1, json!("old"))],
            changed_since: DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z").unwrap(),
        };
        let listed = vec![(3, json!("new")), (7, json!("new"))];
        assert_eq!(
            merged(Some(&snapshot), listed.clone()),
            vec![(1, json!("old")), (3, json!("new")), (7, json!("new"))]
        );
        assert_eq!(merged(None, listed.clone()), listed);
    }

    #[test]
    fn a_full_load_with_a_snapshot_lists_only_owners_changed_since() {
        let item = item_spec().unwrap();
        let t = OwnerType {
            entity_type_id: 2,
            short: "D".into(),
            optional: false,
        };
        let since = DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z").unwrap();
        let mut known = KnownOwners::default();
        known.0.insert(
            2,
            OwnerSnapshot {
                owners: vec![(1, json!("x"))],
                changed_since: since,
            },
        );
        let mut req = ListRequest {
            known_owners: Some(Arc::new(known)),
            ..ListRequest::default()
        };
        let (r, s) = plan(item, &t, &req).unwrap();
        assert_eq!((r.modified_since, s.is_some()), (Some(since), true));
        // An incremental load lists the owners changed since its own cursor.
        let own = DateTime::parse_from_rfc3339("2024-06-01T00:00:00Z").unwrap();
        req.modified_since = Some(own);
        let (r, s) = plan(item, &t, &req).unwrap();
        assert_eq!((r.modified_since, s.is_none()), (Some(own), true));
    }
}
