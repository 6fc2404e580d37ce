//! REST methods. Each returns an [`Outcome`]: the result or an error, plus what it cost.

mod binding;
mod ctx;
mod events;
mod item;
mod legacy;
mod outcome;
mod productrow;
mod reference;
mod tasks;
mod telephony;
mod timeline;
mod users;
mod workgroups;

pub(crate) use self::ctx::Ctx;
pub(crate) use self::outcome::{Outcome, Success};
use super::params::PVal;
pub(crate) use crate::method_error::MethodError;

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
    if events::is_event_method(method) {
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
    if events::is_event_method(method) {
        let (offset, cost) = (ctx.offset(), ctx.shared.cfg.cost.call_secs);
        let app = ctx.st.app_context;
        return Some(events::call(ctx.st, offset, method, params, app, cost));
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
