//! `crm.item.productrow.list` and `.fields` (EN api-reference/crm/universal/product-rows/):
//! the filter must name the owner (`=ownerType` short code, `=ownerId`); `id` and `productId`
//! filter with prefixes; other keys are ignored; order by `id` or `sort` (default `sort`); 50
//! rows a page; `start=-1` skips COUNT. Whether `=ownerId` takes an array is a portal variant
//! ([`ProductRowOwnerArrays`]): older docs and the connector notes allow it, the current
//! docs say only `@id` takes an array and an array under a prefixed key is `INVALID_ARG_VALUE`.

use super::super::config::ProductRowOwnerArrays;
use super::super::json_out::J;
use super::super::method_error::MethodError;
use super::super::params::PVal;
use super::super::productrows::{TABLE, UNDESCRIBED, etid_of_short};
use super::super::query::{Cond, PAGE, split_op};
use super::super::render::{self, Cell};
use super::ctx::{Ctx, start_param};
use super::legacy::{cell, describe};
use super::outcome::{Outcome, Success};

fn required() -> MethodError {
    MethodError::new(
        400,
        "REQUIRED_ARG_MISSING",
        "Required fields: =ownerType, =ownerId",
    )
}

fn denied() -> MethodError {
    MethodError::new(400, "ACCESS_DENIED", "Access denied")
}

/// The owner ids named by `=ownerId` under the portal's array rule.
fn owner_ids(v: &PVal, arrays: ProductRowOwnerArrays) -> Result<Vec<u64>, MethodError> {
    let scalar = |v: &PVal| {
        v.as_i64()
            .and_then(|i| u64::try_from(i).ok())
            .filter(|i| *i > 0)
    };
    match v {
        PVal::Arr(items) => match arrays {
            ProductRowOwnerArrays::Accepted => {
                let ids: Option<Vec<u64>> = items.iter().map(|(_, x)| scalar(x)).collect();
                ids.filter(|i| !i.is_empty()).ok_or_else(denied)
            }
            ProductRowOwnerArrays::Rejected => Err(MethodError::new(
                400,
                "INVALID_ARG_VALUE",
                "Invalid filter: field 'ownerId' has invalid value",
            )),
        },
        other => scalar(other).map(|i| vec![i]).ok_or_else(denied),
    }
}

pub(super) fn list(ctx: &mut Ctx, params: &PVal) -> Outcome {
    let cost = ctx.shared.cfg.cost.clone();
    let arrays = ctx.st.productrow_owner_arrays;
    let filter = params.get("filter");
    let (Some(owner_type), Some(owner_id)) = (
        filter.and_then(|f| f.get("=ownerType")),
        filter.and_then(|f| f.get("=ownerId")),
    ) else {
        return Outcome::err(required(), cost.call_secs);
    };
    let data = &ctx.st.data;
    let Some(t) = data.tables.get(TABLE) else {
        return Outcome::err(denied(), cost.call_secs);
    };
    let etid = owner_type.to_text().as_deref().and_then(etid_of_short);
    let owners = match owner_ids(owner_id, arrays) {
        Ok(o) => o,
        Err(e) => return Outcome::err(e, cost.call_secs),
    };
    // Every owner must exist and be readable (the docs: ACCESS_DENIED otherwise).
    let Some(etid) = etid.filter(|e| {
        data.table_for_etid(*e)
            .is_some_and(|o| owners.iter().all(|id| o.exists(*id)))
    }) else {
        return Outcome::err(denied(), cost.call_secs);
    };
    let mut conds = Vec::new();
    for (k, v) in filter.map(PVal::entries).unwrap_or_default() {
        let (op, name) = split_op(k);
        let code = match name {
            "id" => "ID",
            "productId" => "PRODUCT_ID",
            // Other keys (and the owner keys, already applied) are ignored, as documented.
            _ => continue,
        };
        if let (Some(idx), Some(f)) = (t.field_index(code), t.field(code)) {
            conds.push(Cond::new(f, idx, op, v, ctx.offset()));
        }
    }
    let mut ids: Vec<u64> = owners
        .iter()
        .flat_map(|o| data.product_rows_of(etid, *o))
        .filter(|id| {
            conds.iter().all(|c| {
                t.fields
                    .get(c.field)
                    .is_some_and(|f| c.matches(&data.value(t, *id, f)))
            })
        })
        .collect();
    let order = order_of(params.get("order"));
    let sort_idx = t.field_index("SORT");
    let key = |id: &u64| -> (i64, u64) {
        let sort = sort_idx
            .and_then(|i| t.fields.get(i))
            .and_then(|f| data.value(t, *id, f).as_i64())
            .unwrap_or(0);
        match order {
            Order::Sort(_) => (sort, *id),
            Order::Id(_) => (0, *id),
        }
    };
    ids.sort_by_key(key);
    if matches!(order, Order::Sort(false) | Order::Id(false)) {
        ids.reverse();
    }
    let start = start_param(params);
    let counting = start >= 0;
    let offset = if counting {
        (start as usize / PAGE) * PAGE
    } else {
        0
    };
    let total = ids.len();
    let page: Vec<u64> = ids.into_iter().skip(offset).take(PAGE).collect();
    let rows: Vec<J> = page.iter().map(|id| render_row(ctx, t, *id)).collect();
    let n = rows.len();
    let mut secs = cost.page(n, t.fields.len());
    if counting {
        secs += cost.count(total as u64, t.fields.len());
    }
    let next = (counting && offset + n < total).then_some((offset + n) as u64);
    Outcome {
        result: Ok(Success {
            result: J::obj([("productRows", J::List(rows))]),
            total: counting.then_some(total as u64),
            next,
        }),
        cost: secs,
        count_ran: counting,
        rows: n,
    }
}

#[derive(Clone, Copy)]
enum Order {
    /// Ascending when true.
    Sort(bool),
    Id(bool),
}

/// `order`: `id` or `sort`, `asc`/`desc`; other keys are ignored; default `sort` ascending.
fn order_of(order: Option<&PVal>) -> Order {
    for (k, v) in order.map(PVal::entries).unwrap_or_default() {
        let asc = !v.to_text().is_some_and(|d| d.eq_ignore_ascii_case("desc"));
        match k.as_str() {
            "id" | "ID" => return Order::Id(asc),
            "sort" | "SORT" => return Order::Sort(asc),
            _ => {}
        }
    }
    Order::Sort(true)
}

fn render_row(ctx: &Ctx, t: &super::super::model::Table, id: u64) -> J {
    let c: Cell = cell(ctx, t, id);
    let data = &ctx.st.data;
    J::Obj(
        t.fields
            .iter()
            .filter_map(|f| {
                let name = f.item.clone()?;
                Some((name, render::item(f, &data.value(t, id, f), &c)))
            })
            .collect(),
    )
}

/// `crm.item.productrow.fields`: `{"fields": {camelName: {…}}}` without `upperName`, and
/// without `priceAccount` and `xmlId` (EN crm-item-productrow-fields.md).
pub(super) fn fields(ctx: &mut Ctx) -> Outcome {
    let secs = ctx.shared.cfg.cost.call_secs;
    let Some(t) = ctx.st.data.tables.get(TABLE) else {
        return Outcome::err(denied(), secs);
    };
    let out = t
        .fields
        .iter()
        .filter(|f| !UNDESCRIBED.contains(&f.code.as_str()))
        .filter_map(|f| Some((f.item.clone()?, describe(f, false))))
        .collect();
    Outcome::ok(Success::plain(J::obj([("fields", J::Obj(out))])), secs, 0)
}
