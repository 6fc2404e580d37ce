//! `crm.timeline.comment.list` (`timeline.rs`): one owner per call.

use super::super::method_error::MethodError;
use super::super::params::PVal;
use super::super::timeline::{OWNERS, TABLE};
use super::ctx::{Ctx, array_param};
use super::legacy;
use super::outcome::Outcome;

/// `crm.timeline.comment.list`: the owner check, then the legacy list over the comments.
pub(crate) fn list(ctx: &mut Ctx, params: &PVal) -> Outcome {
    let secs = ctx.shared.cfg.cost.call_secs;
    let refuse = |m: &str| Outcome::err(MethodError::legacy(m), secs);
    let filter = array_param(params, "filter");
    let owner_id = filter.and_then(|f| f.get("ENTITY_ID"));
    // One owner: an array (or anything not a positive integer) is refused.
    let owner_id = match owner_id.filter(|v| !v.is_arr()).and_then(PVal::as_i64) {
        Some(id) if id > 0 => id as u64,
        _ => return refuse("ENTITY_ID is not defined or invalid."),
    };
    let owner_type = filter
        .and_then(|f| f.get("ENTITY_TYPE"))
        .and_then(PVal::to_text)
        .map(|s| s.to_ascii_lowercase());
    let Some(owner_type) = owner_type.filter(|t| OWNERS.contains(&t.as_str())) else {
        return refuse("ENTITY_TYPE is not defined or invalid.");
    };
    let exists = ctx
        .st
        .data
        .tables
        .get(owner_type.as_str())
        .is_some_and(|t| t.exists(owner_id));
    if !exists {
        return refuse("Access denied.");
    }
    legacy::list(ctx, TABLE, params)
}
