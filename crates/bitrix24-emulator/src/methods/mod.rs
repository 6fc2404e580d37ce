//! REST methods. Each returns an [`Outcome`]: the result or an error, plus what it cost.

mod binding;
mod item;
mod legacy;
mod productrow;
mod reference;
mod tasks;
mod telephony;
mod timeline;
mod users;
mod workgroups;

use super::control::{Shared, State};
use super::json_out::J;
use super::params::PVal;
pub(crate) use crate::method_error::MethodError;

/// A successful method result: `result` plus `total`/`next` lifted to the top level.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Success {
    pub result: J,
    pub total: Option<u64>,
    pub next: Option<u64>,
}

impl Success {
    pub(crate) fn plain(result: J) -> Success {
        Success {
            result,
            total: None,
            next: None,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub result: Result<Success, MethodError>,
    /// Simulated operating seconds.
    pub cost: f64,
    pub count_ran: bool,
    pub rows: usize,
}

impl Outcome {
    pub(crate) fn ok(s: Success, cost: f64, rows: usize) -> Outcome {
        Outcome {
            result: Ok(s),
            cost,
            count_ran: false,
            rows,
        }
    }
    /// A page of a counted or COUNT-free listing (`start`, `total`, `next`), billed for its
    /// rows and, when COUNT ran, for the count. Legacy lists answer `total: 0` without COUNT
    /// (`NavRecordCount` null → intval 0).
    pub(crate) fn listed(
        rows: Vec<J>,
        page: &super::query::Page,
        cost: &super::limits::CostModel,
        cols: usize,
    ) -> Outcome {
        let total = Some(page.total.unwrap_or(0));
        Self::page_of(J::List, rows, total, page, cost, cols)
    }

    /// [`Self::listed`] for the listings that answer `{key: [...]}` (`crm.item.list`'s
    /// `items`, `tasks.task.list`'s `tasks`) and no `total` without COUNT.
    pub(crate) fn listed_under(
        key: &'static str,
        rows: Vec<J>,
        page: &super::query::Page,
        cost: &super::limits::CostModel,
        cols: usize,
    ) -> Outcome {
        let wrap = |rows| J::obj([(key, J::List(rows))]);
        Self::page_of(wrap, rows, page.total, page, cost, cols)
    }

    fn page_of(
        wrap: impl FnOnce(Vec<J>) -> J,
        rows: Vec<J>,
        total: Option<u64>,
        page: &super::query::Page,
        cost: &super::limits::CostModel,
        cols: usize,
    ) -> Outcome {
        let n = rows.len();
        let mut secs = cost.page(n, cols);
        if let Some(total) = page.total {
            secs += cost.count(total, cols);
        }
        Outcome {
            result: Ok(Success {
                result: wrap(rows),
                total,
                next: page.next,
            }),
            cost: secs,
            count_ran: page.total.is_some(),
            rows: n,
        }
    }
    pub(crate) fn err(e: MethodError, cost: f64) -> Outcome {
        Outcome {
            result: Err(e),
            cost,
            count_ran: false,
            rows: 0,
        }
    }
}

/// Context handed to every method.
pub(crate) struct Ctx<'a> {
    pub st: &'a mut State,
    pub shared: &'a Shared,
}

impl Ctx<'_> {
    pub(crate) fn offset(&self) -> i32 {
        self.shared.cfg.utc_offset_secs
    }
}

/// Whether a method exists (checked before limits so unknown methods answer 404 at once).
pub(crate) fn exists(method: &str) -> bool {
    if tasks::exists(method) || telephony::exists(method) || workgroups::exists(method) {
        return true;
    }
    if let Some(rest) = method.strip_prefix("crm.")
        && let Some((entity, op)) = rest.split_once('.')
        && legacy::entity_table(entity).is_some()
    {
        return matches!(op, "list" | "get" | "fields" | "userfield.list")
            || (entity == "deal" && op == "contact.items.get");
    }
    if crate::events::is_event_method(method) {
        return true;
    }
    matches!(
        method,
        "crm.item.list"
            | "crm.item.get"
            | "crm.item.fields"
            | "crm.type.list"
            | "crm.enum.ownertype"
            | "crm.status.list"
            | "crm.status.fields"
            | "crm.category.list"
            | "crm.category.fields"
            | "crm.activity.list"
            | "crm.activity.fields"
            | "crm.stagehistory.list"
            | "crm.item.productrow.list"
            | "crm.product.list"
            | "crm.requisite.list"
            | "crm.requisite.fields"
            | "crm.requisite.userfield.list"
            | "crm.requisite.bankdetail.list"
            | "crm.requisite.bankdetail.fields"
            | "crm.address.list"
            | "crm.address.fields"
            | "crm.timeline.comment.list"
            | "crm.activity.binding.list"
            | "crm.timeline.comment.fields"
            | "crm.product.fields"
            | "crm.productsection.list"
            | "crm.productsection.fields"
            | "crm.item.productrow.fields"
            | "crm.currency.list"
            | "crm.currency.fields"
            | "crm.userfield.types"
            | "user.get"
            | "user.fields"
            | "department.get"
            | "department.fields"
            | "batch"
    )
}

/// Run a (non-batch) method. `None` = unknown method.
pub(crate) fn call(ctx: &mut Ctx, method: &str, params: &PVal) -> Option<Outcome> {
    if tasks::exists(method) {
        return tasks::call(ctx, method, params);
    }
    if telephony::exists(method) {
        return telephony::call(ctx, method, params);
    }
    if workgroups::exists(method) {
        return workgroups::call(ctx, method, params);
    }
    if let Some(rest) = method.strip_prefix("crm.")
        && let Some((entity, op)) = rest.split_once('.')
        && let Some(table) = legacy::entity_table(entity)
    {
        return match op {
            "list" => Some(legacy::list(ctx, table, params)),
            "get" => Some(legacy::get(ctx, table, params)),
            "fields" => Some(legacy::fields(ctx, table)),
            "userfield.list" => Some(legacy::userfield_list(ctx, table, params)),
            "contact.items.get" if table == "deal" => Some(legacy::deal_contacts(ctx, params)),
            _ => None,
        };
    }
    if crate::events::is_event_method(method) {
        let (offset, cost) = (ctx.offset(), ctx.shared.cfg.cost.call_secs);
        let app = ctx.st.app_context;
        return Some(crate::events::call(
            ctx.st, offset, method, params, app, cost,
        ));
    }
    Some(match method {
        "crm.item.list" => item::list(ctx, params),
        "crm.item.get" => item::get(ctx, params),
        "crm.item.fields" => item::fields(ctx, params),
        "crm.type.list" => reference::type_list(ctx, params),
        "crm.enum.ownertype" => reference::owner_types(ctx),
        "crm.status.list" => reference::status_list(ctx, params),
        "crm.status.fields" => reference::described_fields(ctx, "status"),
        "crm.category.list" => reference::category_list(ctx, params),
        "crm.category.fields" => reference::category_fields(ctx, params),
        "crm.currency.list" => reference::currency_list(ctx),
        "crm.currency.fields" => reference::described_fields(ctx, "currency"),
        "crm.activity.fields" => reference::described_fields(ctx, "activity"),
        "crm.userfield.types" => reference::userfield_types(ctx),
        "crm.activity.list" => legacy::list(ctx, "activity", params),
        "crm.stagehistory.list" => item::stagehistory(ctx, params),
        "crm.item.productrow.list" => productrow::list(ctx, params),
        "crm.item.productrow.fields" => productrow::fields(ctx),
        "crm.product.list" => legacy::list(ctx, "product", params),
        "crm.requisite.list" => legacy::list(ctx, "requisite", params),
        "crm.requisite.fields" => legacy::fields(ctx, "requisite"),
        "crm.requisite.userfield.list" => legacy::userfield_list(ctx, "requisite", params),
        "crm.requisite.bankdetail.list" => legacy::list(ctx, "requisite_bank", params),
        "crm.requisite.bankdetail.fields" => legacy::fields(ctx, "requisite_bank"),
        "crm.address.list" => legacy::list(ctx, "address", params),
        "crm.address.fields" => legacy::fields(ctx, "address"),
        "crm.timeline.comment.list" => timeline::list(ctx, params),
        "crm.activity.binding.list" => binding::list(ctx, params),
        "crm.timeline.comment.fields" => legacy::fields(ctx, super::timeline::TABLE),
        "crm.product.fields" => legacy::fields(ctx, "product"),
        "crm.productsection.list" => legacy::list(ctx, "product_section", params),
        "crm.productsection.fields" => legacy::fields(ctx, "product_section"),
        "user.get" => users::user_get(ctx, params),
        "department.get" => users::department_get(ctx, params),
        "user.fields" => reference::title_map(ctx, "user"),
        "department.fields" => reference::title_map(ctx, "department"),
        _ => return None,
    })
}

/// `CCrmRestHelper::resolveArrayParam`: `filter`, `FILTER`, `Filter`, `arFilter`.
pub(crate) fn array_param<'a>(params: &'a PVal, name: &str) -> Option<&'a PVal> {
    let mut cap = name.to_string();
    if let Some(first) = cap.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    [
        name.to_string(),
        name.to_uppercase(),
        cap.clone(),
        format!("ar{cap}"),
    ]
    .iter()
    .find_map(|k| params.get(k))
}

/// `start` is read only in lowercase by the REST server.
pub(crate) fn start_param(params: &PVal) -> i64 {
    params.get("start").and_then(PVal::as_i64).unwrap_or(0)
}
