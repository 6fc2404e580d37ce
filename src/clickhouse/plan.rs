//! From a catalog entity and its settings to the [`TablePlan`] the DDL is generated from.
use super::ddl::{ColumnDef, TablePlan};
use crate::bitrix::methods::{ITEM_TO_LEGACY_CODES, LEGACY_CODE_TYPES};
use crate::catalog::Entity;
use crate::config::EntitySettings;
use crate::encode::Format;
use crate::schema::{ChType, Column, cursor_column, primary_key_column, table_columns};

/// The columns of an entity's table, restricted to the configured field selection
/// (the key and the cursor are always kept).
pub fn selected_columns(entity: &Entity, settings: &EntitySettings) -> Vec<Column> {
    let all = table_columns(entity);
    let Some(wanted) = &settings.fields else {
        return all;
    };
    let key = primary_key_column(&all).map(|c| c.name.clone());
    let cursor = cursor_column(&all).map(|c| c.name.clone());
    all.into_iter()
        .filter(|c| {
            c.service().is_some()
                || Some(&c.name) == key.as_ref()
                || Some(&c.name) == cursor.as_ref()
                || wanted.iter().any(|w| {
                    *w == c.name
                        || c.name.strip_suffix(crate::schema::CURRENCY_SUFFIX) == Some(w)
                        || c.name.strip_suffix(crate::schema::URL_SUFFIX) == Some(w)
                })
        })
        .collect()
}

pub fn table_plan(
    entity: &Entity,
    columns: &[Column],
    settings: &EntitySettings,
    format: Format,
) -> TablePlan {
    let key = primary_key_column(columns);
    let numeric_key =
        key.is_some_and(|c| matches!(c.ch_type.strip_nullable().0, ChType::Int64 | ChType::UInt64));
    TablePlan {
        entity: entity.name.clone(),
        columns: columns
            .iter()
            .map(|c| ColumnDef {
                name: c.name.clone(),
                sql_type: c.ch_type.sql(),
            })
            .collect(),
        primary_key: key.map(|c| c.name.clone()).unwrap_or_else(|| "ID".into()),
        numeric_key,
        cursor: cursor_column(columns).map(|c| c.name.clone()),
        schedule: settings.schedule,
        reconcile_schedule: settings.reconcile_schedule,
        reconcile_safety_ms: settings.reconcile_safety_ms(),
        retry_backoff_ms: u64::try_from(settings.retry_backoff.as_duration().as_millis())
            .unwrap_or(u64::MAX),
        delete_guard: settings.delete_guard,
        format,
        renamed_from: renamed_from(entity, columns),
    }
}

/// Columns of a lead, deal, contact or company table that earlier versions named with the
/// `crm.item` `upperName` (`CREATED_TIME` before `DATE_CREATE`).
fn renamed_from(entity: &Entity, columns: &[Column]) -> Vec<(String, String)> {
    let Some(eid) = legacy_type_of(entity) else {
        return Vec::new();
    };
    ITEM_TO_LEGACY_CODES
        .iter()
        .filter(|(t, _, _)| t.is_none_or(|t| t == eid))
        .filter(|(_, _, new)| columns.iter().any(|c| c.name == *new))
        .map(|(_, old, new)| (old.to_string(), new.to_string()))
        .collect()
}

/// The entity type of a table that carries legacy codes.
fn legacy_type_of(entity: &Entity) -> Option<u32> {
    let eid = entity
        .entity_type_id
        .or_else(|| entity.companion.as_ref().and_then(|c| c.entity_type_id))?;
    LEGACY_CODE_TYPES.contains(&eid).then_some(eid)
}
