//! Reference methods: crm.type.list, crm.enum.ownertype, crm.status.list, crm.category.list,
//! crm.currency.list, crm.userfield.types.

use super::super::json_out::J;
use super::super::method_error::MethodError;
use super::super::model::{Table, Val};
use super::super::params::PVal;
use super::super::query::{self, Cond, PAGE, split_op};
use super::super::render::{self, iso_datetime};
use super::super::store::PortalData;
use super::ctx::{Ctx, array_param, start_param};
use super::legacy::{cell, describe};
use super::outcome::{Outcome, Success};

fn yn(b: bool) -> J {
    J::str(if b { "Y" } else { "N" })
}

/// `crm.type.list`: CRM admins only; `{"types":[…]}`; controller paging.
pub(super) fn type_list(ctx: &mut Ctx, params: &PVal) -> Outcome {
    let secs = ctx.shared.cfg.cost.call_secs;
    if !ctx.st.crm_admin {
        return Outcome::err(
            MethodError::new(400, "ACCESS_DENIED", "Access denied"),
            secs,
        );
    }
    let offset = ctx.offset();
    let allowed = [
        "id",
        "entityTypeId",
        "title",
        "code",
        "createdTime",
        "updatedTime",
    ];
    if let Some(f) = params.get("filter") {
        for (k, _) in f.entries() {
            let (_, name) = split_op(k);
            if !allowed.contains(&name) {
                let msg = format!("Invalid filter: field '{name}' is not allowed in filter");
                return Outcome::err(MethodError::new(400, "INVALID_ARG_VALUE", &msg), secs);
            }
        }
    }
    let want_etid = params
        .get("filter")
        .and_then(|f| f.get("entityTypeId").or_else(|| f.get("=entityTypeId")))
        .and_then(PVal::as_i64);
    let all: Vec<J> = ctx
        .st
        .data
        .types
        .iter()
        .filter(|t| want_etid.is_none_or(|w| i64::from(t.entity_type_id) == w))
        .map(|t| {
            let flags = [
                ("isCategoriesEnabled", true),
                ("isStagesEnabled", true),
                ("isBeginCloseDatesEnabled", true),
                ("isClientEnabled", true),
                ("isUseInUserfieldEnabled", true),
                ("isLinkWithProductsEnabled", false),
                ("isMycompanyEnabled", true),
                ("isDocumentsEnabled", false),
                ("isSourceEnabled", true),
                ("isObserversEnabled", true),
                ("isRecyclebinEnabled", true),
                ("isAutomationEnabled", true),
                ("isBizProcEnabled", false),
                ("isSetOpenPermissions", true),
                ("isPaymentsEnabled", false),
                ("isCountersEnabled", false),
            ];
            let mut o = vec![
                ("id".to_string(), J::Int(i64::from(t.id))),
                ("title".into(), J::Str(t.title.clone())),
                ("code".into(), J::str("")),
                ("createdBy".into(), J::Int(1)),
                ("entityTypeId".into(), J::Int(i64::from(t.entity_type_id))),
                ("customSectionId".into(), J::Null),
            ];
            o.extend(flags.iter().map(|(k, v)| (k.to_string(), yn(*v))));
            o.push((
                "createdTime".into(),
                J::Str(iso_datetime(t.created, offset)),
            ));
            o.push((
                "updatedTime".into(),
                J::Str(iso_datetime(t.updated, offset)),
            ));
            o.push(("updatedBy".into(), J::Int(1)));
            J::Obj(o)
        })
        .collect();
    let start = start_param(params);
    let total = all.len();
    let (page, tot, next) = if start < 0 {
        (all.into_iter().take(PAGE).collect::<Vec<_>>(), None, None)
    } else {
        let off = (start as usize / PAGE) * PAGE;
        let page: Vec<J> = all.into_iter().skip(off).take(PAGE).collect();
        let end = off + page.len();
        (
            page,
            Some(total as u64),
            (end < total).then_some(end as u64),
        )
    };
    let n = page.len();
    Outcome::ok(
        Success {
            result: J::obj([("types", J::List(page))]),
            total: tot,
            next,
        },
        secs,
        n,
    )
}

/// `crm.enum.ownertype`: system types plus `DYNAMIC_{id}` smart processes.
pub(super) fn owner_types(ctx: &mut Ctx) -> Outcome {
    let secs = ctx.shared.cfg.cost.call_secs;
    let fixed: [(i64, &str, &str, &str); 10] = [
        (1, "Lead", "LEAD", "L"),
        (2, "Deal", "DEAL", "D"),
        (3, "Contact", "CONTACT", "C"),
        (4, "Company", "COMPANY", "CO"),
        (5, "Invoice (old version)", "INVOICE", "I"),
        (31, "Invoice", "SMART_INVOICE", "SI"),
        (7, "Quote", "QUOTE", "Q"),
        (8, "Billing Details", "REQUISITE", "RQ"),
        (36, "Document", "SMART_DOCUMENT", "DO"),
        (39, "Company Document", "SMART_B2E_DOC", "SBD"),
    ];
    let entry = |id: i64, name: &str, code: String, short: String| {
        J::obj([
            ("ID", J::Int(id)),
            ("NAME", J::str(name)),
            ("SYMBOL_CODE", J::Str(code)),
            ("SYMBOL_CODE_SHORT", J::Str(short)),
        ])
    };
    let mut out: Vec<J> = fixed
        .iter()
        .map(|(i, n, c, s)| entry(*i, n, c.to_string(), s.to_string()))
        .collect();
    for t in &ctx.st.data.types {
        let e = t.entity_type_id;
        out.push(entry(
            i64::from(e),
            &t.title,
            format!("DYNAMIC_{e}"),
            format!("T{e:x}"),
        ));
    }
    Outcome::ok(Success::plain(J::List(out)), secs, 0)
}

fn material_rows(data: &PortalData, t: &Table) -> Vec<(u64, Vec<Val>)> {
    t.ids()
        .map(|id| (id, t.fields.iter().map(|f| data.value(t, id, f)).collect()))
        .collect()
}

/// `crm.status.list`: unpaginated, legacy strings, EXTRA for stage-like directories.
pub(super) fn status_list(ctx: &mut Ctx, params: &PVal) -> Outcome {
    let secs = ctx.shared.cfg.cost.call_secs;
    let data = &ctx.st.data;
    let Some(t) = data.tables.get("status") else {
        return Outcome::err(MethodError::legacy("Not found"), secs);
    };
    let conds: Vec<Cond> = array_param(params, "filter")
        .map(|f| {
            f.entries()
                .iter()
                .filter_map(|(k, v)| {
                    let (op, name) = split_op(k);
                    let idx = t
                        .fields
                        .iter()
                        .position(|f| f.code == name && !name.starts_with('_'))?;
                    t.fields
                        .get(idx)
                        .map(|fd| Cond::new(fd, idx, op, v, ctx.offset()))
                })
                .collect()
        })
        .unwrap_or_default();
    let order = query::parse_order(array_param(params, "order"), |k| t.field_index(k));
    let q = query::Query {
        conds,
        order,
        start: 0,
        exact_offset: true,
    };
    // Unpaginated: run with a large page by collecting all ids that match.
    let mut ids = Vec::new();
    let mut q2 = q.clone();
    loop {
        let page = query::run(data, t, &q2);
        let next = page.next;
        ids.extend(page.ids);
        match next {
            Some(n) => q2.start = n as i64,
            None => break,
        }
    }
    let rows = material_rows(data, t);
    let items: Vec<J> = ids
        .iter()
        .filter_map(|id| rows.iter().find(|(r, _)| r == id))
        .map(|(id, vals)| {
            let c = cell(ctx, t, *id);
            // EXTRA exists only for stage-like directories: no key for the others.
            let o: Vec<(String, J)> = t
                .fields
                .iter()
                .zip(vals)
                .filter(|(f, v)| {
                    let internal = f.code.starts_with('_');
                    let no_extra = f.code == "EXTRA" && v.is_null();
                    !(internal || no_extra)
                })
                .map(|(f, v)| (f.code.clone(), render::legacy(f, v, &c, false)))
                .collect();
            J::Obj(o)
        })
        .collect();
    let n = items.len();
    Outcome::ok(
        Success {
            result: J::List(items),
            total: Some(n as u64),
            next: None,
        },
        secs,
        n,
    )
}

/// `*.fields` of a reference table in the legacy format (`crm.activity.fields`,
/// `crm.status.fields`, `crm.currency.fields`): exactly the fields its rows carry.
pub(super) fn described_fields(ctx: &mut Ctx, table: &str) -> Outcome {
    let secs = ctx.shared.cfg.cost.call_secs;
    let Some(t) = ctx.st.data.tables.get(table) else {
        return Outcome::err(MethodError::legacy("Not found"), secs);
    };
    let out = t
        .fields
        .iter()
        .filter(|f| !f.code.starts_with('_'))
        .map(|f| (f.code.clone(), describe(f, false)))
        .collect();
    Outcome::ok(Success::plain(J::Obj(out)), secs, 0)
}

/// `user.fields`, `department.fields`: `{CODE: "Title"}` without types.
pub(super) fn title_map(ctx: &mut Ctx, table: &str) -> Outcome {
    let secs = ctx.shared.cfg.cost.call_secs;
    let out = ctx
        .st
        .data
        .tables
        .get(table)
        .map(|t| {
            t.fields
                .iter()
                .map(|f| (f.code.clone(), J::Str(f.title.clone())))
                .collect()
        })
        .unwrap_or_default();
    Outcome::ok(Success::plain(J::Obj(out)), secs, 0)
}

/// The pipelines table when `entityTypeId` names a type with pipelines (deals, smart
/// processes; not contacts or companies), else the documented `NOT_FOUND`.
fn pipelines_of<'a>(data: &'a PortalData, params: &PVal) -> Result<(&'a Table, i64), MethodError> {
    let etid = params
        .get("entityTypeId")
        .and_then(PVal::as_i64)
        .unwrap_or(0);
    let known = u32::try_from(etid).is_ok_and(|e| e > 0 && data.table_for_etid(e).is_some());
    // Quotes have no pipelines.
    if !known || matches!(etid, 3 | 4 | 7) {
        return Err(MethodError::new(400, "NOT_FOUND", "SPA not found"));
    }
    data.tables
        .get("category")
        .map(|t| (t, etid))
        .ok_or_else(|| MethodError::legacy("Not found"))
}

/// `crm.category.fields`: `{"fields": {camelName: {…, upperName}}}`.
pub(super) fn category_fields(ctx: &mut Ctx, params: &PVal) -> Outcome {
    let secs = ctx.shared.cfg.cost.call_secs;
    let t = match pipelines_of(&ctx.st.data, params) {
        Ok((t, _)) => t,
        Err(e) => return Outcome::err(e, secs),
    };
    let out = t
        .fields
        .iter()
        .filter_map(|f| Some((f.item.clone()?, describe(f, true))))
        .collect();
    Outcome::ok(Success::plain(J::obj([("fields", J::Obj(out))])), secs, 0)
}

/// `crm.category.list`: `{"categories":[…]}`; the default pipeline has no origin keys.
pub(super) fn category_list(ctx: &mut Ctx, params: &PVal) -> Outcome {
    let secs = ctx.shared.cfg.cost.call_secs;
    let data = &ctx.st.data;
    let (t, etid) = match pipelines_of(data, params) {
        Ok(x) => x,
        Err(e) => return Outcome::err(e, secs),
    };
    let mut cats: Vec<J> = Vec::new();
    for (_, v) in material_rows(data, t) {
        if v.get(1).and_then(Val::as_i64) != Some(etid) {
            continue;
        }
        let default = matches!(v.get(4), Some(Val::Bool(true)));
        let mut o = vec![
            (
                "id".to_string(),
                J::Int(v.first().and_then(Val::as_i64).unwrap_or(0)),
            ),
            (
                "name".into(),
                match v.get(2) {
                    Some(Val::Str(s)) => J::Str(s.clone()),
                    _ => J::Null,
                },
            ),
            (
                "sort".into(),
                J::Int(v.get(3).and_then(Val::as_i64).unwrap_or(0)),
            ),
            ("entityTypeId".into(), J::Int(etid)),
            ("isDefault".into(), yn(default)),
        ];
        if !default {
            o.push(("originId".into(), J::str("")));
            o.push(("originatorId".into(), J::str("")));
        }
        cats.push(J::Obj(o));
    }
    let n = cats.len();
    Outcome::ok(
        Success {
            result: J::obj([("categories", J::List(cats))]),
            total: Some(n as u64),
            next: None,
        },
        secs,
        n,
    )
}

pub(super) fn currency_list(ctx: &mut Ctx) -> Outcome {
    let secs = ctx.shared.cfg.cost.call_secs;
    let data = &ctx.st.data;
    let Some(t) = data.tables.get("currency") else {
        return Outcome::err(MethodError::legacy("Not found"), secs);
    };
    let items: Vec<J> = material_rows(data, t)
        .into_iter()
        .map(|(id, vals)| {
            let c = cell(ctx, t, id);
            J::Obj(
                t.fields
                    .iter()
                    .zip(&vals)
                    .map(|(f, v)| (f.code.clone(), render::legacy(f, v, &c, false)))
                    .collect(),
            )
        })
        .collect();
    let n = items.len();
    Outcome::ok(
        Success {
            result: J::List(items),
            total: Some(n as u64),
            next: None,
        },
        secs,
        n,
    )
}

pub(super) fn userfield_types(ctx: &mut Ctx) -> Outcome {
    let secs = ctx.shared.cfg.cost.call_secs;
    let types = [
        ("string", "String"),
        ("integer", "Integer"),
        ("double", "Number"),
        ("boolean", "Yes/No"),
        ("enumeration", "List"),
        ("datetime", "Date/Time"),
        ("date", "Date"),
        ("money", "Money"),
        ("url", "Link"),
        ("address", "Google Maps Address"),
        ("file", "File"),
        ("employee", "Binding to User"),
        ("crm_status", "Binding to CRM Directories"),
        ("iblock_section", "Binding to Information Block Sections"),
        ("iblock_element", "Binding to Information Block Elements"),
        ("crm", "Binding to CRM Entities"),
    ];
    let list = types
        .iter()
        .map(|(id, t)| J::obj([("ID", J::str(*id)), ("title", J::str(*t))]))
        .collect();
    Outcome::ok(Success::plain(J::List(list)), secs, 0)
}
