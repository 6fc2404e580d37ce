//! Controller methods: `crm.item.list|get|fields`, `crm.stagehistory.list`. Typed output.

use super::super::config::SmartStageHistory;
use super::super::json_out::J;
use super::super::method_error::MethodError;
use super::super::model::{FieldDef, Kind, Table, Val};
use super::super::params::PVal;
use super::super::query::{self, Cond, Query, split_op};
use super::super::render;
use super::super::store::PortalData;
use super::ctx::{Ctx, start_param};
use super::legacy::{cell, describe};
use super::outcome::{Outcome, Success};

fn etid_param(params: &PVal) -> Option<u32> {
    params
        .get("entityTypeId")
        .or_else(|| params.get("ENTITY_TYPE_ID"))
        .and_then(PVal::as_i64)
        .and_then(|v| u32::try_from(v).ok())
}

fn original_uf(params: &PVal) -> bool {
    params
        .get("useOriginalUfNames")
        .and_then(PVal::to_text)
        .is_some_and(|v| v.eq_ignore_ascii_case("Y") || v == "1" || v.eq_ignore_ascii_case("true"))
}

fn not_found_type(secs: f64) -> Outcome {
    Outcome::err(MethodError::new(400, "NOT_FOUND", "SPA not found"), secs)
}

/// The name a field has in crm.item output (None = not exposed).
fn out_name(f: &FieldDef, original: bool) -> Option<String> {
    if original && f.is_uf() {
        return Some(f.code.clone());
    }
    f.item.clone()
}

fn resolve(t: &Table, name: &str) -> Option<usize> {
    t.fields
        .iter()
        .position(|f| f.item.as_deref() == Some(name) || (f.is_uf() && f.code == name))
}

/// `select` for crm.item.list: `*` (default), `UF_*`, names; unknown names are dropped.
fn item_select(t: &Table, select: Option<&PVal>) -> (Vec<usize>, bool) {
    let names: Vec<String> = select
        .map(|s| {
            s.values()
                .into_iter()
                .filter_map(PVal::to_text)
                .filter(|n| !n.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let names = if names.is_empty() {
        vec!["*".to_string()]
    } else {
        names
    };
    let star = names.iter().any(|n| n == "*");
    let mut cols: Vec<usize> = t.field_index("ID").into_iter().collect();
    for (i, f) in t.fields.iter().enumerate() {
        if f.item.is_none() || cols.contains(&i) {
            continue;
        }
        let hit = names.iter().any(|n| match n.as_str() {
            "*" => f.kind != Kind::Fm,
            "UF_*" => f.is_uf(),
            name => f.item.as_deref() == Some(name) || f.code == name,
        });
        if hit {
            cols.push(i);
        }
    }
    (cols, star)
}

fn render_item(
    ctx: &Ctx,
    data: &PortalData,
    t: &Table,
    id: u64,
    cols: &[usize],
    star: bool,
    original: bool,
) -> J {
    let c = cell(ctx, t, id);
    let mut out: Vec<(String, J)> = Vec::with_capacity(cols.len() + 2);
    for &i in cols {
        let Some(f) = t.fields.get(i) else { continue };
        let Some(name) = out_name(f, original) else {
            continue;
        };
        out.push((name, render::item(f, &data.value(t, id, f), &c)));
    }
    if star {
        // `fm` comes back only with select *.
        let fm: Vec<J> = t
            .fields
            .iter()
            .filter(|f| f.kind == Kind::Fm)
            .flat_map(|f| match data.value(t, id, f) {
                Val::Fm(v) => match render::item_fm(&v) {
                    J::List(items) => items,
                    _ => vec![],
                },
                _ => vec![],
            })
            .collect();
        if t.fields.iter().any(|f| f.kind == Kind::Fm) {
            out.push(("fm".into(), J::List(fm)));
        }
        out.push((
            "entityTypeId".into(),
            J::Int(i64::from(t.entity_type_id.unwrap_or(0))),
        ));
    }
    J::Obj(out)
}

fn item_conds(t: &Table, filter: Option<&PVal>, offset: i32) -> Result<Vec<Cond>, MethodError> {
    let Some(filter) = filter else {
        return Ok(vec![]);
    };
    let mut out = Vec::new();
    for (k, v) in filter.entries() {
        if k.eq_ignore_ascii_case("logic") {
            continue;
        }
        let (op, name) = split_op(k);
        let idx = resolve(t, name).ok_or_else(|| {
            MethodError::new(
                400,
                "INVALID_ARG_VALUE",
                &format!("Invalid filter: field '{name}' is not allowed in filter"),
            )
        })?;
        if let Some(f) = t.fields.get(idx) {
            out.push(Cond::new(f, idx, op, v, offset));
        }
    }
    Ok(out)
}

pub(super) fn list(ctx: &mut Ctx, params: &PVal) -> Outcome {
    let cost = ctx.shared.cfg.cost.clone();
    let data = &ctx.st.data;
    let Some(t) = etid_param(params).and_then(|e| data.table_for_etid(e)) else {
        return not_found_type(cost.call_secs);
    };
    let conds = match item_conds(t, params.get("filter"), ctx.offset()) {
        Ok(c) => c,
        Err(e) => return Outcome::err(e, cost.call_secs),
    };
    let q = Query {
        conds,
        order: query::parse_order(params.get("order"), |k| resolve(t, k)),
        start: start_param(params),
        exact_offset: false,
    };
    let (cols, star) = item_select(t, params.get("select"));
    let original = original_uf(params);
    let page = query::run(data, t, &q);
    let items: Vec<J> = page
        .ids
        .iter()
        .map(|id| render_item(ctx, data, t, *id, &cols, star, original))
        .collect();
    Outcome::listed_under("items", items, &page, &cost, cols.len())
}

pub(super) fn get(ctx: &mut Ctx, params: &PVal) -> Outcome {
    let cost = ctx.shared.cfg.cost.clone();
    let data = &ctx.st.data;
    let Some(t) = etid_param(params).and_then(|e| data.table_for_etid(e)) else {
        return not_found_type(cost.call_secs);
    };
    let id = params
        .get("id")
        .or_else(|| params.get("ID"))
        .and_then(PVal::as_i64)
        .unwrap_or(0);
    if id <= 0 || !t.exists(id as u64) {
        return Outcome::err(
            MethodError::new(400, "NOT_FOUND", "Element not found"),
            cost.call_secs,
        );
    }
    let (cols, _) = item_select(t, None);
    let item = render_item(ctx, data, t, id as u64, &cols, true, original_uf(params));
    Outcome::ok(
        Success::plain(J::obj([("item", item)])),
        cost.page(1, cols.len()),
        1,
    )
}

pub(super) fn fields(ctx: &mut Ctx, params: &PVal) -> Outcome {
    let secs = ctx.shared.cfg.cost.call_secs;
    let data = &ctx.st.data;
    let Some(t) = etid_param(params).and_then(|e| data.table_for_etid(e)) else {
        return not_found_type(secs);
    };
    let original = original_uf(params);
    let out = t
        .fields
        .iter()
        .filter(|f| f.kind != Kind::Fm)
        .filter_map(|f| out_name(f, original).map(|n| (n, describe(f, true))))
        .collect();
    Outcome::ok(Success::plain(J::obj([("fields", J::Obj(out))])), secs, 0)
}

/// `crm.stagehistory.list`: `{"items":[…]}` with integer ids (docs example).
/// How a portal that keeps no stage history for smart processes answers (see
/// [`SmartStageHistory`]).
fn smart_history_refusal(mode: SmartStageHistory, etid: u32) -> Option<MethodError> {
    let (code, description) = match mode {
        SmartStageHistory::Supported => return None,
        SmartStageHistory::EntityTypeNotSupported => (
            "ENTITY_TYPE_NOT_SUPPORTED",
            format!("Entity type DYNAMIC_{etid} is not supported"),
        ),
        SmartStageHistory::LegacyZero => ("0", format!("DYNAMIC_{etid} entity is not supported")),
        SmartStageHistory::NotFound => ("NOT_FOUND", "entityTypeId is not supported".to_string()),
    };
    Some(MethodError::new(400, code, &description))
}

pub(super) fn stagehistory(ctx: &mut Ctx, params: &PVal) -> Outcome {
    let cost = ctx.shared.cfg.cost.clone();
    // Leads, deals and smart processes have stage history; other types do not.
    let table = match etid_param(params) {
        Some(e @ (1 | 2)) => PortalData::history_table_for(e),
        // New-type invoices have stage history; quotes are not among the documented types.
        Some(e @ super::super::crm_docs::SMART_INVOICE)
            if ctx.st.data.table_for_etid(e).is_some() =>
        {
            PortalData::history_table_for(e)
        }
        Some(super::super::crm_docs::QUOTE) => {
            return Outcome::err(
                MethodError::new(
                    400,
                    "ENTITY_TYPE_NOT_SUPPORTED",
                    "Entity type QUOTE is not supported",
                ),
                cost.call_secs,
            );
        }
        Some(e) if e >= 128 && ctx.st.data.type_for_etid(e).is_some() => {
            if let Some(refusal) = smart_history_refusal(ctx.st.smart_stage_history, e) {
                return Outcome::err(refusal, cost.call_secs);
            }
            PortalData::history_table_for(e)
        }
        _ => {
            return Outcome::err(
                MethodError::new(400, "NOT_FOUND", "entityTypeId is not supported"),
                cost.call_secs,
            );
        }
    };
    let data = &ctx.st.data;
    let Some(t) = data.tables.get(&table) else {
        return Outcome::err(
            MethodError::new(400, "NOT_FOUND", "Not found"),
            cost.call_secs,
        );
    };
    let by_code = |k: &str| t.fields.iter().position(|f| f.code == k);
    let conds: Vec<Cond> = params
        .get("filter")
        .map(|f| {
            f.entries()
                .iter()
                .filter_map(|(k, v)| {
                    let (op, name) = split_op(k);
                    let idx = by_code(name)?;
                    t.fields
                        .get(idx)
                        .map(|fd| Cond::new(fd, idx, op, v, ctx.offset()))
                })
                .collect()
        })
        .unwrap_or_default();
    let q = Query {
        conds,
        order: query::parse_order(params.get("order"), by_code),
        start: start_param(params),
        exact_offset: false,
    };
    let cols: Vec<usize> = match params.get("select") {
        Some(s) if !s.values().is_empty() => {
            let names: Vec<String> = s.values().into_iter().filter_map(PVal::to_text).collect();
            (0..t.fields.len())
                .filter(|i| {
                    t.fields
                        .get(*i)
                        .is_some_and(|f| names.contains(&f.code) || names.iter().any(|n| n == "*"))
                })
                .collect()
        }
        _ => (0..t.fields.len()).collect(),
    };
    let page = query::run(data, t, &q);
    let items: Vec<J> = page
        .ids
        .iter()
        .map(|id| {
            let c = cell(ctx, t, *id);
            J::Obj(
                cols.iter()
                    .filter_map(|i| t.fields.get(*i))
                    .map(|f| (f.code.clone(), render::item(f, &data.value(t, *id, f), &c)))
                    .collect(),
            )
        })
        .collect();
    Outcome::listed_under("items", items, &page, &cost, cols.len())
}
