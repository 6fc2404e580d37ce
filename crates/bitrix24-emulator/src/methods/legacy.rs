//! Legacy CRM methods: `crm.{deal,lead,contact,company}.{list,get,fields,userfield.list}`,
//! `crm.activity.list`, `crm.deal.contact.items.get`. Stringly-typed output.

use super::super::json_out::J;
use super::super::method_error::MethodError;
use super::super::model::{FieldDef, Kind, LegacyVis, Table, Val};
use super::super::params::PVal;
use super::super::query::{self, Cond, Query, split_op};
use super::super::render::{self, Cell};
use super::super::store::PortalData;
use super::ctx::{Ctx, array_param, start_param};
use super::outcome::{Outcome, Success};

pub(super) fn entity_table(entity: &str) -> Option<&'static str> {
    match entity {
        "deal" => Some("deal"),
        "lead" => Some("lead"),
        "contact" => Some("contact"),
        "company" => Some("company"),
        _ => None,
    }
}

fn missing_table(ctx: &Ctx, _table: &str) -> Outcome {
    Outcome::err(
        MethodError::legacy("Failed to get list. General error."),
        ctx.shared.cfg.cost.call_secs,
    )
}

pub(super) fn cell<'a>(ctx: &'a Ctx, t: &'a Table, id: u64) -> Cell<'a> {
    Cell {
        table: &t.name,
        entity_type_id: t.entity_type_id.unwrap_or(0),
        id,
        offset: ctx.offset(),
        style: ctx.shared.cfg.render,
    }
}

/// Build legacy filter conditions; unknown keys are silently dropped (`internalizeFilterFields`).
fn legacy_conds(t: &Table, filter: Option<&PVal>, offset: i32) -> Vec<Cond> {
    let Some(filter) = filter else { return vec![] };
    filter
        .entries()
        .iter()
        .filter_map(|(k, v)| {
            let (op, name) = split_op(k);
            let idx = t
                .fields
                .iter()
                .position(|f| f.code == name && f.legacy != LegacyVis::None)?;
            let f = t.fields.get(idx)?;
            // LIKE is rewritten to `=` for status/contact/company fields (restservice.php).
            let op = match (op, f.api_type.as_str()) {
                (
                    query::Op::Contains | query::Op::Like,
                    "crm_status" | "crm_contact" | "crm_company",
                ) => query::Op::Eq,
                _ => op,
            };
            Some(Cond::new(f, idx, op, v, offset))
        })
        .collect()
}

fn render_row(
    ctx: &Ctx,
    data: &PortalData,
    t: &Table,
    id: u64,
    cols: &[usize],
    get_mode: bool,
) -> J {
    let c = cell(ctx, t, id);
    let mut out = Vec::with_capacity(cols.len());
    for &i in cols {
        let Some(f) = t.fields.get(i) else { continue };
        let v = data.value(t, id, f);
        if f.kind == Kind::Fm && matches!(&v, Val::Fm(x) if x.is_empty()) {
            continue; // multifield keys come only from fetched FM rows
        }
        out.push((f.code.clone(), render::legacy(f, &v, &c, get_mode)));
    }
    J::Obj(out)
}

pub(super) fn list(ctx: &mut Ctx, table: &str, params: &PVal) -> Outcome {
    let cost = ctx.shared.cfg.cost.clone();
    let Some(t) = ctx.st.data.tables.get(table) else {
        return missing_table(ctx, table);
    };
    let filter = array_param(params, "filter");
    if let Some(f) = filter
        && !f.is_arr()
        && f.to_text().is_some_and(|s| !s.is_empty())
    {
        return Outcome::err(
            MethodError::legacy("Parameter 'filter' must be array."),
            cost.call_secs,
        );
    }
    let order_param = array_param(params, "order");
    if let Some(o) = order_param
        && !o.is_arr()
        && o.to_text().is_some_and(|s| !s.is_empty())
    {
        return Outcome::err(
            MethodError::legacy("Parameter 'order' must be array."),
            cost.call_secs,
        );
    }
    let mut order = query::parse_order(order_param, |k| {
        t.fields
            .iter()
            .position(|f| f.code.eq_ignore_ascii_case(k) && f.legacy != LegacyVis::None)
    });
    if order.is_empty() && table == "activity" {
        // crm.activity.list sorts by START_TIME by default.
        order.extend(t.field_index("START_TIME").map(|i| (i, true)));
    }
    let q = Query {
        conds: legacy_conds(t, filter, ctx.offset()),
        order,
        start: start_param(params),
        exact_offset: false,
    };
    let cols = query::legacy_select(t, array_param(params, "select"));
    let data = &ctx.st.data;
    let page = query::run(data, t, &q);
    let rows: Vec<J> = page
        .ids
        .iter()
        .map(|id| render_row(ctx, data, t, *id, &cols, false))
        .collect();
    Outcome::listed(rows, &page, &cost, cols.len())
}

fn id_param(params: &PVal) -> i64 {
    params
        .get("id")
        .or_else(|| params.get("ID"))
        .and_then(PVal::as_i64)
        .unwrap_or(0)
}

pub(super) fn get(ctx: &mut Ctx, table: &str, params: &PVal) -> Outcome {
    let cost = ctx.shared.cfg.cost.clone();
    let id = id_param(params);
    if id <= 0 {
        return Outcome::err(
            MethodError::legacy("ID is not defined or invalid."),
            cost.call_secs,
        );
    }
    let Some(t) = ctx.st.data.tables.get(table) else {
        return missing_table(ctx, table);
    };
    if !t.exists(id as u64) {
        return Outcome::err(MethodError::legacy("Not found"), cost.call_secs);
    }
    let cols: Vec<usize> = t
        .fields
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            matches!(
                f.legacy,
                LegacyVis::List | LegacyVis::GetOnly | LegacyVis::Explicit
            )
        })
        .map(|(i, _)| i)
        .collect();
    let row = render_row(ctx, &ctx.st.data, t, id as u64, &cols, true);
    Outcome::ok(Success::plain(row), cost.page(1, cols.len()), 1)
}

/// A field description (`crm_rest_field_description`).
pub(super) fn describe(f: &FieldDef, item_api: bool) -> J {
    let api_type = if item_api && f.kind == Kind::YesNo {
        "boolean".to_string()
    } else {
        f.api_type.clone()
    };
    let mut d = vec![
        ("type".to_string(), J::Str(api_type)),
        ("isRequired".into(), J::Bool(f.required)),
        ("isReadOnly".into(), J::Bool(f.read_only)),
        ("isImmutable".into(), J::Bool(f.immutable)),
        ("isMultiple".into(), J::Bool(f.multiple)),
        ("isDynamic".into(), J::Bool(f.is_uf())),
    ];
    if f.deprecated {
        d.push(("isDeprecated".into(), J::Bool(true)));
    }
    if let Some(s) = &f.status_type {
        d.push(("statusType".into(), J::Str(s.clone())));
    }
    d.push(("title".into(), J::Str(f.title.clone())));
    if let Some(uf) = &f.uf {
        for k in ["listLabel", "formLabel", "filterLabel"] {
            d.push((k.into(), J::Str(uf.label.clone())));
        }
        if !uf.options.is_empty() {
            let items = uf
                .options
                .iter()
                .map(|o| {
                    J::obj([
                        ("ID", J::Str(o.id.to_string())),
                        ("VALUE", J::Str(o.value.clone())),
                    ])
                })
                .collect();
            d.push(("items".into(), J::List(items)));
        }
        d.push(("settings".into(), uf.settings.clone()));
    } else if let Some(s) = &f.settings {
        d.push(("settings".into(), s.clone()));
    }
    if item_api {
        d.push(("upperName".into(), J::Str(f.item_upper.clone())));
    }
    J::Obj(d)
}

pub(super) fn fields(ctx: &mut Ctx, table: &str) -> Outcome {
    let secs = ctx.shared.cfg.cost.call_secs;
    let Some(t) = ctx.st.data.tables.get(table) else {
        return missing_table(ctx, table);
    };
    let out = t
        .fields
        .iter()
        .filter(|f| f.legacy != LegacyVis::None)
        .map(|f| (f.code.clone(), describe(f, false)))
        .collect();
    Outcome::ok(Success::plain(J::Obj(out)), secs, 0)
}

fn uf_entity_id(data: &PortalData, t: &Table) -> String {
    match t.entity_type_id {
        Some(etid) if etid > 4 => format!("CRM_{}", data.type_for_etid(etid).map_or(0, |x| x.id)),
        _ => format!("CRM_{}", t.name.to_uppercase()),
    }
}

/// `crm.*.userfield.list`: unpaginated; labels only when `filter[LANG]` is given.
pub(super) fn userfield_list(ctx: &mut Ctx, table: &str, params: &PVal) -> Outcome {
    let secs = ctx.shared.cfg.cost.call_secs;
    let data = &ctx.st.data;
    let Some(t) = data.tables.get(table) else {
        return missing_table(ctx, table);
    };
    let filter = array_param(params, "filter");
    let lang = filter.and_then(|f| f.get("LANG")).is_some();
    let wanted = |k: &str| filter.and_then(|f| f.get(k)).and_then(PVal::to_text);
    let yn = |b: bool| J::str(if b { "Y" } else { "N" });
    let mut items = Vec::new();
    for f in t.fields.iter() {
        let Some(uf) = &f.uf else { continue };
        if wanted("FIELD_NAME").is_some_and(|w| w != f.code)
            || wanted("USER_TYPE_ID").is_some_and(|w| w != uf.user_type_id)
            || wanted("ID").is_some_and(|w| w != uf.id.to_string())
        {
            continue;
        }
        let mut o = vec![
            ("ID".to_string(), J::Str(uf.id.to_string())),
            ("ENTITY_ID".into(), J::Str(uf_entity_id(data, t))),
            ("FIELD_NAME".into(), J::Str(f.code.clone())),
            ("USER_TYPE_ID".into(), J::Str(uf.user_type_id.clone())),
            ("XML_ID".into(), J::Null),
            ("SORT".into(), J::Str(uf.sort.to_string())),
            ("MULTIPLE".into(), yn(f.multiple)),
            ("MANDATORY".into(), yn(uf.mandatory)),
            ("SHOW_FILTER".into(), J::str("E")),
            ("SHOW_IN_LIST".into(), J::str("Y")),
            ("EDIT_IN_LIST".into(), J::str("Y")),
            ("IS_SEARCHABLE".into(), J::str("N")),
            ("SETTINGS".into(), uf.settings.clone()),
        ];
        if lang {
            for k in ["EDIT_FORM_LABEL", "LIST_COLUMN_LABEL", "LIST_FILTER_LABEL"] {
                o.push((k.into(), J::Str(uf.label.clone())));
            }
            o.push(("ERROR_MESSAGE".into(), J::Null));
            o.push(("HELP_MESSAGE".into(), J::Null));
        }
        if uf.user_type_id.starts_with("rest_") {
            o.push(("USER_TYPE_OWNER".into(), J::str("demo.app")));
        }
        if !uf.options.is_empty() {
            let list = uf
                .options
                .iter()
                .map(|x| {
                    J::obj([
                        ("ID", J::Str(x.id.to_string())),
                        ("SORT", J::Str(x.sort.to_string())),
                        ("VALUE", J::Str(x.value.clone())),
                        ("DEF", yn(x.def)),
                        ("XML_ID", J::Str(x.xml_id.clone())),
                    ])
                })
                .collect();
            o.push(("LIST".into(), J::List(list)));
        }
        items.push(J::Obj(o));
    }
    let n = items.len() as u64;
    Outcome::ok(
        Success {
            result: J::List(items),
            total: Some(n),
            next: None,
        },
        secs,
        n as usize,
    )
}

/// `crm.deal.contact.items.get` (ints, first contact is primary).
pub(super) fn deal_contacts(ctx: &mut Ctx, params: &PVal) -> Outcome {
    let secs = ctx.shared.cfg.cost.call_secs;
    let id = id_param(params);
    let data = &ctx.st.data;
    let Some(t) = data
        .tables
        .get("deal")
        .filter(|t| id > 0 && t.exists(id as u64))
    else {
        return Outcome::err(MethodError::legacy("Not found"), secs);
    };
    let ids = t
        .field("CONTACT_IDS")
        .map_or(Val::Null, |f| data.value(t, id as u64, f));
    let list: Vec<J> = match ids {
        Val::List(v) => v
            .iter()
            .enumerate()
            .map(|(i, c)| {
                J::obj([
                    ("CONTACT_ID", J::Int(c.as_i64().unwrap_or(0))),
                    ("SORT", J::Int((i as i64 + 1) * 100)),
                    ("ROLE_ID", J::Int(0)),
                    ("IS_PRIMARY", J::str(if i == 0 { "Y" } else { "N" })),
                ])
            })
            .collect(),
        _ => vec![],
    };
    let n = list.len();
    Outcome::ok(Success::plain(J::List(list)), secs, n)
}
