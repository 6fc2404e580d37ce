//! `user.get` and `department.get`, with their own sort/paging quirks.

use super::super::json_out::J;
use super::super::model::Val;
use super::super::params::PVal;
use super::super::query::{self, Cond, Query, split_op};
use super::super::render;
use super::ctx::{Ctx, start_param};
use super::legacy::cell;
use super::outcome::{Outcome, Success};

/// Params that are not filter keys in user.get / department.get.
const RESERVED: &[&str] = &[
    "sort",
    "order",
    "start",
    "auth",
    "access_token",
    "ADMIN_MODE",
    "select",
    "SELECT",
    "FILTER",
    "filter",
    "NAME_SEARCH",
];

fn top_level_conds(ctx: &Ctx, table: &str, filter: &PVal) -> Vec<Cond> {
    let Some(t) = ctx.st.data.tables.get(table) else {
        return vec![];
    };
    filter
        .entries()
        .iter()
        .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
        .filter_map(|(k, v)| {
            let (op, name) = split_op(k);
            let idx = t
                .fields
                .iter()
                .position(|f| f.code.eq_ignore_ascii_case(name))?;
            t.fields
                .get(idx)
                .map(|f| Cond::new(f, idx, op, v, ctx.offset()))
        })
        .collect()
}

/// `sort=<FIELD>&order=ASC|DESC`, applied only when both are given.
fn sort_order(ctx: &Ctx, table: &str, params: &PVal) -> Vec<(usize, bool)> {
    let Some(t) = ctx.st.data.tables.get(table) else {
        return vec![];
    };
    let (Some(sort), Some(order)) = (
        params.get("sort").and_then(PVal::to_text),
        params.get("order").and_then(PVal::to_text),
    ) else {
        return vec![];
    };
    t.fields
        .iter()
        .position(|f| f.code.eq_ignore_ascii_case(&sort))
        .map(|i| vec![(i, !order.eq_ignore_ascii_case("DESC"))])
        .unwrap_or_default()
}

pub(super) fn user_get(ctx: &mut Ctx, params: &PVal) -> Outcome {
    let cost = ctx.shared.cfg.cost.clone();
    // A nested FILTER replaces the whole query ("a mistake, but backward compatibility").
    let filter_src = params
        .get("FILTER")
        .or_else(|| params.get("filter"))
        .filter(|f| f.is_arr())
        .unwrap_or(params);
    let conds = top_level_conds(ctx, "user", filter_src);
    let order = sort_order(ctx, "user", params);
    let data = &ctx.st.data;
    let Some(t) = data.tables.get("user") else {
        return Outcome::ok(Success::plain(J::List(vec![])), cost.call_secs, 0);
    };
    let q = Query {
        conds,
        order,
        start: start_param(params),
        exact_offset: true,
    };
    let page = query::run(data, t, &q);
    let rows: Vec<J> = page
        .ids
        .iter()
        .map(|id| {
            let c = cell(ctx, t, *id);
            J::Obj(
                t.fields
                    .iter()
                    .map(|f| (f.code.clone(), render::user(f, &data.value(t, *id, f), &c)))
                    .collect(),
            )
        })
        .collect();
    let n = rows.len();
    let mut secs = cost.page(n, t.fields.len());
    if let Some(total) = page.total {
        secs += cost.count(total, t.fields.len());
    }
    // An empty page comes back as [] without total.
    let total = if n == 0 { None } else { page.total };
    Outcome {
        result: Ok(Success {
            result: J::List(rows),
            total,
            next: page.next,
        }),
        cost: secs,
        count_ran: page.total.is_some(),
        rows: n,
    }
}

pub(super) fn department_get(ctx: &mut Ctx, params: &PVal) -> Outcome {
    let cost = ctx.shared.cfg.cost.clone();
    let conds = top_level_conds(ctx, "department", params);
    let order = sort_order(ctx, "department", params);
    let data = &ctx.st.data;
    let Some(t) = data.tables.get("department") else {
        return Outcome::ok(Success::plain(J::List(vec![])), cost.call_secs, 0);
    };
    let q = Query {
        conds,
        order,
        start: start_param(params),
        exact_offset: false,
    };
    let page = query::run(data, t, &q);
    let rows: Vec<J> = page
        .ids
        .iter()
        .map(|id| {
            let mut o = Vec::new();
            for f in &t.fields {
                let v = data.value(t, *id, f);
                let j = match (f.code.as_str(), &v) {
                    ("SORT", Val::Int(i)) => J::Int(*i),
                    (_, Val::Null) => continue, // root has no PARENT key
                    (_, Val::Int(i)) => J::Str(i.to_string()),
                    (_, Val::Str(s)) => J::Str(s.clone()),
                    _ => J::Null,
                };
                o.push((f.code.clone(), j));
            }
            J::Obj(o)
        })
        .collect();
    let n = rows.len();
    let _ = cell;
    Outcome {
        result: Ok(Success {
            result: J::List(rows),
            total: page.total,
            next: page.next,
        }),
        cost: cost.page(n, 5),
        count_ran: page.total.is_some(),
        rows: n,
    }
}
