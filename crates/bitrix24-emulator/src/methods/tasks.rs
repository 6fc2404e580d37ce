//! Task methods: `tasks.task.list`, `tasks.task.getFields`, `task.item.userfield.getlist`,
//! `task.elapseditem.getlist`
//! (official docs: tasks-task-list.md, tasks-task-get-fields.md, fields.md,
//! user-field/task-item-user-field-get-list.md; the docs fixture `tasks.task.list.json`).
//!
//! A controller method: `{"tasks": [...]}`, camelCase keys (user fields too: `ufCrmTask`) while
//! `filter`, `order` and `select` take upper-case codes; values are strings, datetimes ISO with
//! the portal offset; `start=-1` skips COUNT and prints neither `next` nor `total`.

use super::super::json_out::J;
use super::super::method_error::MethodError;
use super::super::model::{FieldDef, Kind, Table, Val};
use super::super::params::PVal;
use super::super::query::{self, Cond, Query, split_op};
use super::super::render::{self, Cell};
use super::super::work::{DURATION_TYPES, ZERO_WHEN_EMPTY, task_default, task_enum_values};
use super::ctx::{Ctx, array_param, start_param};
use super::legacy::cell;
use super::outcome::{Outcome, Success};

const TABLE: &str = "task";

/// Fields `order` accepts (tasks-task-list.md); any other is the documented error.
const SORTABLE: &[&str] = &[
    "ID",
    "TITLE",
    "TIME_SPENT_IN_LOGS",
    "DATE_START",
    "CREATED_DATE",
    "CHANGED_DATE",
    "CLOSED_DATE",
    "ACTIVITY_DATE",
    "START_DATE_PLAN",
    "END_DATE_PLAN",
    "DEADLINE",
    "REAL_STATUS",
    "STATUS_COMPLETE",
    "PRIORITY",
    "MARK",
    "CREATED_BY_LAST_NAME",
    "RESPONSIBLE_LAST_NAME",
    "GROUP_ID",
    "TIME_ESTIMATE",
    "ALLOW_CHANGE_DEADLINE",
    "ALLOW_TIME_TRACKING",
    "MATCH_WORK_TIME",
    "FAVORITE",
    "SORTING",
    "IS_PINNED",
    "IS_PINNED_IN_GROUP",
];

/// System user fields: naming one in `select` returns all three (fields.md).
const SYSTEM_UFS: &[&str] = &["UF_CRM_TASK", "UF_TASK_WEBDAV_FILES", "UF_MAIL_MESSAGE"];

/// Method names arrive lower-cased (the REST server is case-insensitive).
pub(super) fn exists(method: &str) -> bool {
    matches!(
        method,
        "tasks.task.list"
            | "tasks.task.getfields"
            | "task.item.userfield.getlist"
            | "task.elapseditem.getlist"
            | "task.stages.get"
    )
}

pub(super) fn call(ctx: &mut Ctx, method: &str, params: &PVal) -> Option<Outcome> {
    Some(match method {
        "tasks.task.list" => list(ctx, params),
        "tasks.task.getfields" => get_fields(ctx),
        "task.item.userfield.getlist" => userfield_list(ctx),
        "task.elapseditem.getlist" => elapsed_list(ctx, params),
        "task.stages.get" => stages_get(ctx, params),
        _ => return None,
    })
}

/// `Converter::toJson`: lower-case, `_x` → `X` (`UF_CRM_TASK` → `ufCrmTask`).
pub(crate) fn row_key(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut upper_next = false;
    for c in code.chars() {
        if c == '_' {
            upper_next = !out.is_empty();
        } else if upper_next {
            out.extend(c.to_uppercase());
            upper_next = false;
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// A field by its code or row key, case-insensitively (`CHANGED_DATE`, `changedDate`).
fn resolve(t: &Table, name: &str) -> Option<usize> {
    t.fields
        .iter()
        .position(|f| f.code.eq_ignore_ascii_case(name) || row_key(&f.code) == name)
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
            let idx = resolve(t, name)?;
            Some(Cond::new(t.fields.get(idx)?, idx, op, v, offset))
        })
        .collect()
}

/// `select`: codes (or row keys); empty = every standard field; `*` standard fields, `UF_*`
/// every user field; a system user field brings the other two. The id always comes first.
fn select(t: &Table, select: Option<&PVal>) -> Vec<usize> {
    let names: Vec<String> = select
        .map(|s| s.values().into_iter().filter_map(PVal::to_text).collect())
        .unwrap_or_default();
    let mut names: Vec<String> = names.into_iter().filter(|n| !n.is_empty()).collect();
    if names.is_empty() {
        names.push("*".into());
    }
    if names
        .iter()
        .any(|n| SYSTEM_UFS.iter().any(|s| s.eq_ignore_ascii_case(n)))
    {
        names.extend(SYSTEM_UFS.iter().map(|s| s.to_string()));
    }
    let mut out: Vec<usize> = t.field_index("ID").into_iter().collect();
    for n in &names {
        let hits: Vec<usize> = match n.as_str() {
            "*" => (0..t.fields.len())
                .filter(|i| !t.fields[*i].is_uf())
                .collect(),
            "UF_*" => (0..t.fields.len())
                .filter(|i| t.fields[*i].is_uf())
                .collect(),
            name => resolve(t, name).into_iter().collect(),
        };
        for i in hits {
            if !out.contains(&i) {
                out.push(i);
            }
        }
    }
    out.sort_unstable();
    out
}

/// One value as `tasks.task.list` prints it: strings, `null` for nothing (`closedBy` `"0"`),
/// `[]` for an empty list, user-field flags `"1"`/`"0"`.
fn value(f: &FieldDef, v: &Val, c: &Cell) -> J {
    match v {
        Val::Null if ZERO_WHEN_EMPTY.contains(&f.code.as_str()) => J::str("0"),
        Val::Null if f.multiple => J::List(Vec::new()),
        Val::Null => J::Null,
        Val::List(items) => J::List(items.iter().map(|x| value(f, x, c)).collect()),
        other => render::legacy(f, other, c, false),
    }
}

fn render_row(ctx: &Ctx, t: &Table, id: u64, cols: &[usize]) -> J {
    let c = cell(ctx, t, id);
    J::Obj(
        cols.iter()
            .filter_map(|i| t.fields.get(*i))
            .map(|f| (row_key(&f.code), value(f, &ctx.st.data.value(t, id, f), &c)))
            .collect(),
    )
}

fn invalid_order(secs: f64) -> Outcome {
    Outcome::err(
        MethodError::new(400, "0", "Invalid sorting key (internal error)"),
        secs,
    )
}

fn list(ctx: &mut Ctx, params: &PVal) -> Outcome {
    let cost = ctx.shared.cfg.cost.clone();
    let Some(t) = ctx.st.data.tables.get(TABLE) else {
        return Outcome::ok(
            Success::plain(J::obj([("tasks", J::List(vec![]))])),
            cost.call_secs,
            0,
        );
    };
    let order_param = array_param(params, "order");
    let mut order = Vec::new();
    for (k, v) in order_param.map(PVal::entries).unwrap_or_default() {
        let sortable = SORTABLE.iter().any(|s| s.eq_ignore_ascii_case(k));
        let Some(i) = resolve(t, k).filter(|_| sortable) else {
            return invalid_order(cost.call_secs);
        };
        let dir = v.to_text().unwrap_or_default();
        order.push((i, !dir.eq_ignore_ascii_case("DESC")));
    }
    if order.is_empty() {
        // "By default, it sorts in descending order by ID."
        order.extend(t.field_index("ID").map(|i| (i, false)));
    }
    let q = Query {
        conds: conds(t, array_param(params, "filter"), ctx.offset()),
        order,
        start: start_param(params),
        exact_offset: false,
    };
    let cols = select(t, array_param(params, "select"));
    let page = query::run(&ctx.st.data, t, &q);
    let rows: Vec<J> = page
        .ids
        .iter()
        .map(|id| render_row(ctx, t, *id, &cols))
        .collect();
    Outcome::listed_under("tasks", rows, &page, &cost, cols.len())
}

/// `{fields: {CODE: {title, type, primary?, required?, values?}}}` (tasks-task-get-fields.md);
/// user fields carry their user type and label.
fn get_fields(ctx: &mut Ctx) -> Outcome {
    let secs = ctx.shared.cfg.cost.call_secs;
    let Some(t) = ctx.st.data.tables.get(TABLE) else {
        return Outcome::ok(
            Success::plain(J::obj([("fields", J::List(vec![]))])),
            secs,
            0,
        );
    };
    let fields = t
        .fields
        .iter()
        .map(|f| (f.code.clone(), describe(f)))
        .collect();
    Outcome::ok(
        Success::plain(J::obj([("fields", J::Obj(fields))])),
        secs,
        0,
    )
}

fn describe(f: &FieldDef) -> J {
    let title = match &f.uf {
        Some(uf) if uf.label.is_empty() => J::Null,
        Some(uf) => J::Str(uf.label.clone()),
        None if f.title.is_empty() => J::Null,
        None => J::Str(f.title.clone()),
    };
    let mut d = vec![
        ("title".to_string(), title),
        ("type".to_string(), J::Str(f.api_type.clone())),
    ];
    if f.code == "ID" {
        d.push(("primary".into(), J::Bool(true)));
    } else if f.required {
        d.push(("required".into(), J::Bool(true)));
    }
    if f.api_type == "enum" {
        let values = match (f.kind, task_enum_values(&f.code)) {
            (_, Some(v)) => J::obj(v.iter().map(|(k, t)| (*k, J::str(*t)))),
            (Kind::YesNo, None) => J::obj([("Y", J::str("Yes")), ("N", J::str("No"))]),
            _ => J::List(DURATION_TYPES.iter().map(|s| J::str(*s)).collect()),
        };
        d.push(("values".into(), values));
    }
    if let Some(v) = task_default(&f.code) {
        d.push(("default".into(), v));
    }
    J::Obj(d)
}

/// Every user field of tasks, system ones included (task-item-user-field-get-list.md).
fn userfield_list(ctx: &mut Ctx) -> Outcome {
    let secs = ctx.shared.cfg.cost.call_secs;
    let yn = |b: bool| J::str(if b { "Y" } else { "N" });
    let items: Vec<J> = ctx
        .st
        .data
        .tables
        .get(TABLE)
        .map(|t| t.fields.iter().filter(|f| f.is_uf()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|f| {
            let uf = f.uf.as_ref()?;
            Some(J::obj([
                ("ID", J::Str(uf.id.to_string())),
                ("ENTITY_ID", J::str("TASKS_TASK")),
                ("FIELD_NAME", J::Str(f.code.clone())),
                ("USER_TYPE_ID", J::Str(uf.user_type_id.clone())),
                ("XML_ID", J::str("")),
                ("SORT", J::Str(uf.sort.to_string())),
                ("MULTIPLE", yn(f.multiple)),
                ("MANDATORY", yn(uf.mandatory)),
                ("SHOW_FILTER", J::str("N")),
                ("SHOW_IN_LIST", J::str("Y")),
                ("EDIT_IN_LIST", J::str("Y")),
                ("IS_SEARCHABLE", J::str("N")),
                ("SETTINGS", uf.settings.clone()),
            ]))
        })
        .collect();
    let n = items.len();
    Outcome::ok(Success::plain(J::List(items)), secs, n)
}

/// CTaskRestService reads its arguments by position, not by name ("follow the specified
/// order of parameters", task-elapsed-item-get-list.md): `[TASKID,] ORDER, FILTER, SELECT,
/// PARAMS`.
fn positional(params: &PVal) -> Vec<&PVal> {
    params
        .entries()
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "auth" | "access_token"))
        .map(|(_, v)| v)
        .collect()
}

fn invalid_params(secs: f64) -> Outcome {
    Outcome::err(
        MethodError::new(
            400,
            "ERROR_CORE",
            "Invalid method parameters provided (0x000100)",
        ),
        secs,
    )
}

/// Filter fields the docs list (ID, USER_ID, CREATED_DATE) and the task of `TASKID`.
const ELAPSED_FILTERABLE: &[&str] = &["ID", "USER_ID", "CREATED_DATE", "TASK_ID"];

fn elapsed_list(ctx: &mut Ctx, params: &PVal) -> Outcome {
    let cost = ctx.shared.cfg.cost.clone();
    let Some(t) = ctx.st.data.tables.get("task_elapsed_time") else {
        return Outcome::ok(Success::plain(J::List(vec![])), cost.call_secs, 0);
    };
    let mut args = positional(params);
    let task_id = match args.first() {
        Some(v) if !v.is_arr() => {
            let id = v.to_text();
            args.remove(0);
            id
        }
        _ => None,
    };
    if task_id
        .as_deref()
        .is_some_and(|t| t.parse::<u64>().map_or(true, |n| n == 0))
    {
        return invalid_params(cost.call_secs);
    }
    let arg = |i: usize| args.get(i).copied().filter(|v| !matches!(v, PVal::Null));
    if (0..4)
        .any(|i| arg(i).is_some_and(|v| !v.is_arr() && v.to_text().is_some_and(|s| !s.is_empty())))
    {
        return invalid_params(cost.call_secs);
    }
    let order = query::parse_order(arg(0), |k| {
        t.fields.iter().position(|f| f.code.eq_ignore_ascii_case(k))
    });
    let mut conds: Vec<Cond> = arg(1)
        .map(|f| {
            f.entries()
                .iter()
                .filter_map(|(k, v)| {
                    let (op, name) = split_op(k);
                    let name = name.to_uppercase();
                    let idx = ELAPSED_FILTERABLE
                        .contains(&name.as_str())
                        .then(|| t.field_index(&name))??;
                    Some(Cond::new(t.fields.get(idx)?, idx, op, v, ctx.offset()))
                })
                .collect()
        })
        .unwrap_or_default();
    if let (Some(id), Some(idx)) = (task_id, t.field_index("TASK_ID"))
        && let Some(f) = t.fields.get(idx)
    {
        conds.push(Cond::new(
            f,
            idx,
            query::Op::Eq,
            &PVal::Str(id),
            ctx.offset(),
        ));
    }
    let cols: Vec<usize> = {
        let names: Vec<String> = arg(2)
            .map(|s| s.values().into_iter().filter_map(PVal::to_text).collect())
            .unwrap_or_default();
        let all = names.is_empty() || names.iter().any(|n| n == "*");
        (0..t.fields.len())
            .filter(|i| {
                all || t.fields[*i].code == "ID"
                    || names
                        .iter()
                        .any(|n| n.eq_ignore_ascii_case(&t.fields[*i].code))
            })
            .collect()
    };
    let nav = arg(3).and_then(|p| p.get("NAV_PARAMS"));
    let num = |k: &str| nav.and_then(|n| n.get(k)).and_then(PVal::as_i64);
    let size = num("nPageSize").unwrap_or(50).clamp(1, 50);
    let page_no = num("iNumPage").unwrap_or(1).max(1);
    // A navigated CDBResult: the COUNT always runs, and `total` always comes back.
    let q = Query {
        conds,
        order,
        start: (page_no - 1) * size,
        exact_offset: true,
    };
    let page = query::run(&ctx.st.data, t, &q);
    let ids: Vec<u64> = page.ids.iter().copied().take(size as usize).collect();
    let rows: Vec<J> = ids
        .iter()
        .map(|id| {
            let c = cell(ctx, t, *id);
            J::Obj(
                cols.iter()
                    .filter_map(|i| t.fields.get(*i))
                    .map(|f| {
                        let v = ctx.st.data.value(t, *id, f);
                        let j = if v.is_null() {
                            J::Null
                        } else {
                            render::legacy(f, &v, &c, false)
                        };
                        (f.code.clone(), j)
                    })
                    .collect(),
            )
        })
        .collect();
    let n = rows.len();
    let total = page.total.unwrap_or(0);
    let end = (page_no - 1) * size + n as i64;
    let secs = cost.page(n, cols.len()) + cost.count(total, cols.len());
    Outcome {
        result: Ok(Success {
            result: J::List(rows),
            total: Some(total),
            next: (u64::try_from(end).unwrap_or(0) < total)
                .then(|| u64::try_from(end).unwrap_or(0)),
        }),
        cost: secs,
        count_ran: true,
        rows: n,
    }
}

/// `task.stages.get`: the Kanban stages of group `entityId`, an object keyed by stage id with
/// three always-empty system keys (task-stages-get.md). `entityId 0` (the caller's "My plan")
/// has no stages on the demo portal; a group that does not exist is the documented refusal.
fn stages_get(ctx: &mut Ctx, params: &PVal) -> Outcome {
    let secs = ctx.shared.cfg.cost.call_secs;
    let Some(entity) = params
        .get("entityId")
        .or_else(|| params.get("ENTITYID"))
        .and_then(PVal::as_i64)
    else {
        return Outcome::err(
            MethodError::new(400, "ERROR_CORE", "entityId is required"),
            secs,
        );
    };
    let data = &ctx.st.data;
    let group_exists = data
        .tables
        .get("workgroup")
        .is_some_and(|g| u64::try_from(entity).is_ok_and(|id| g.exists(id)));
    if entity != 0 && !group_exists {
        return Outcome::err(
            MethodError::new(
                400,
                "ACCESS_DENIED",
                "You cannot view stages in this group.",
            ),
            secs,
        );
    }
    let Some(t) = data.tables.get("task_stage") else {
        return Outcome::ok(Success::plain(J::List(vec![])), secs, 0);
    };
    let owner = t.field_index("ENTITY_ID");
    let c = cell(ctx, t, 0);
    let mut rows = Vec::new();
    for id in t.ids() {
        let of = |i: usize| t.fields.get(i).map(|f| data.value(t, id, f));
        if owner.and_then(of).and_then(|v| v.as_i64()) != Some(entity) {
            continue;
        }
        let mut o: Vec<(String, J)> = t
            .fields
            .iter()
            .map(|f| {
                let v = data.value(t, id, f);
                let j = if v.is_null() {
                    J::Null
                } else {
                    render::legacy(f, &v, &c, false)
                };
                (f.code.clone(), j)
            })
            .collect();
        o.push(("ADDITIONAL_FILTER".into(), J::List(vec![])));
        o.push(("TO_UPDATE".into(), J::List(vec![])));
        o.push(("TO_UPDATE_ACCESS".into(), J::Null));
        rows.push((id.to_string(), J::Obj(o)));
    }
    let n = rows.len();
    let cost = ctx.shared.cfg.cost.page(n, 10);
    Outcome::ok(Success::plain(J::php_array(rows)), cost, n)
}

#[cfg(test)]
mod tests {
    use super::row_key;

    #[test]
    fn row_keys_follow_the_converter() {
        assert_eq!(row_key("DESCRIPTION_IN_BBCODE"), "descriptionInBbcode");
        assert_eq!(row_key("UF_CRM_TASK"), "ufCrmTask");
        assert_eq!(row_key("UF_AUTO_280393876337"), "ufAuto280393876337");
        assert_eq!(row_key("ID"), "id");
    }
}
