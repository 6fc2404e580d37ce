//! `sonet_group.get` (sonet-group-get.md; the docs' response example is the fixture
//! `sonet_group.get.json`): workgroups and projects under `FILTER`, sorted by `ORDER` (an
//! object, default `ID DESC`), legacy `start` paging (`-1` skips COUNT: `total` 0, no `next`).

use super::super::json_out::J;
use super::super::model::{FieldDef, Table, Val};
use super::super::params::PVal;
use super::super::query::{self, Cond, Query, split_op};
use super::super::render::{self, Cell};
use super::ctx::{Ctx, array_param, start_param};
use super::legacy::cell;
use super::outcome::{Outcome, Success};

const TABLE: &str = "workgroup";

/// Keys printed only when they have a value (a group without an avatar has no `IMAGE`).
const ONLY_WHEN_SET: &[&str] = &["IMAGE"];

pub(super) fn exists(method: &str) -> bool {
    method == "sonet_group.get"
}

pub(super) fn call(ctx: &mut Ctx, method: &str, params: &PVal) -> Option<Outcome> {
    exists(method).then(|| group_get(ctx, params))
}

fn conds(t: &Table, params: &PVal, offset: i32) -> Vec<Cond> {
    let mut out: Vec<Cond> = array_param(params, "filter")
        .map(|f| {
            f.entries()
                .iter()
                .filter_map(|(k, v)| {
                    let (op, name) = split_op(k);
                    let idx = t.fields.iter().position(|f| f.code == name)?;
                    Some(Cond::new(t.fields.get(idx)?, idx, op, v, offset))
                })
                .collect()
        })
        .unwrap_or_default();
    // `GROUP_ID` adds `ID = GROUP_ID`.
    if let (Some(v), Some(idx)) = (params.get("GROUP_ID"), t.field_index("ID"))
        && let Some(f) = t.fields.get(idx)
    {
        out.push(Cond::new(f, idx, query::Op::Eq, v, offset));
    }
    out
}

fn value(f: &FieldDef, v: &Val, c: &Cell) -> J {
    match v {
        Val::Null => J::Null,
        other => render::legacy(f, other, c, false),
    }
}

fn group_get(ctx: &mut Ctx, params: &PVal) -> Outcome {
    let cost = ctx.shared.cfg.cost.clone();
    let Some(t) = ctx.st.data.tables.get(TABLE) else {
        return Outcome::ok(Success::plain(J::List(vec![])), cost.call_secs, 0);
    };
    let mut order = query::parse_order(array_param(params, "order"), |k| {
        t.fields.iter().position(|f| f.code.eq_ignore_ascii_case(k))
    });
    if order.is_empty() {
        // "Default — `ID:'DESC'`".
        order.extend(t.field_index("ID").map(|i| (i, false)));
    }
    let q = Query {
        conds: conds(t, params, ctx.offset()),
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
                    .filter_map(|f| {
                        let v = ctx.st.data.value(t, *id, f);
                        if v.is_null() && ONLY_WHEN_SET.contains(&f.code.as_str()) {
                            return None;
                        }
                        Some((f.code.clone(), value(f, &v, &c)))
                    })
                    .collect(),
            )
        })
        .collect();
    Outcome::listed(rows, &page, &cost, t.fields.len())
}
