//! `voximplant.statistic.get` (voximplant-statistic-get.md; the docs' response example is the
//! fixture `voximplant.statistic.get.json`): call records under `FILTER`, sorted by `SORT` +
//! `ORDER` (two strings), legacy `start` paging (`-1` skips COUNT: `total` 0, no `next`).

use super::super::json_out::J;
use super::super::method_error::MethodError;
use super::super::model::{FieldDef, Table, Val};
use super::super::params::PVal;
use super::super::query::{self, Cond, Query, split_op};
use super::super::render::{self, Cell};
use super::ctx::{Ctx, array_param, start_param};
use super::legacy::cell;
use super::outcome::{Outcome, Success};

const TABLE: &str = "telephony_call";

/// Fields printed as JSON numbers rather than strings (the docs' example).
const NUMERIC: &[&str] = &["RECORD_FILE_ID"];

pub(super) fn exists(method: &str) -> bool {
    method == "voximplant.statistic.get"
}

pub(super) fn call(ctx: &mut Ctx, method: &str, params: &PVal) -> Option<Outcome> {
    exists(method).then(|| statistic_get(ctx, params))
}

fn conds(t: &Table, filter: Option<&PVal>, offset: i32) -> Vec<Cond> {
    let Some(filter) = filter else {
        return Vec::new();
    };
    filter
        .entries()
        .iter()
        .filter_map(|(k, v)| {
            let (op, name) = split_op(k);
            let idx = t.fields.iter().position(|f| f.code == name)?;
            Some(Cond::new(t.fields.get(idx)?, idx, op, v, offset))
        })
        .collect()
}

fn value(f: &FieldDef, v: &Val, c: &Cell) -> J {
    match v {
        Val::Int(i) if NUMERIC.contains(&f.code.as_str()) => J::Int(*i),
        Val::Null => J::Null,
        other => render::legacy(f, other, c, false),
    }
}

fn statistic_get(ctx: &mut Ctx, params: &PVal) -> Outcome {
    let cost = ctx.shared.cfg.cost.clone();
    let Some(t) = ctx.st.data.tables.get(TABLE) else {
        return Outcome::ok(Success::plain(J::List(vec![])), cost.call_secs, 0);
    };
    let filter = array_param(params, "filter");
    if let Some(f) = filter
        && !f.is_arr()
        && f.to_text().is_some_and(|s| !s.is_empty())
    {
        return Outcome::err(
            MethodError::legacy("Parameter 'FILTER' must be array."),
            cost.call_secs,
        );
    }
    let text = |k: &str| params.get(k).and_then(PVal::to_text);
    // `SORT`/`ORDER` as the docs name them; other spellings are not sort parameters here.
    let order = match text("SORT") {
        Some(sort) => match t.fields.iter().position(|f| f.code == sort.to_uppercase()) {
            Some(i) => {
                let dir = text("ORDER").unwrap_or_default();
                vec![(i, !dir.eq_ignore_ascii_case("DESC"))]
            }
            None => Vec::new(),
        },
        None => Vec::new(),
    };
    let q = Query {
        conds: conds(t, filter, ctx.offset()),
        order,
        start: start_param(params),
        exact_offset: false,
    };
    let page = query::run(&ctx.st.data, t, &q);
    let rows: Vec<J> = page
        .ids
        .iter()
        .map(|id| {
            let c = cell(ctx, t, *id);
            J::Obj(
                t.fields
                    .iter()
                    .map(|f| (f.code.clone(), value(f, &ctx.st.data.value(t, *id, f), &c)))
                    .collect(),
            )
        })
        .collect();
    Outcome::listed(rows, &page, &cost, t.fields.len())
}
