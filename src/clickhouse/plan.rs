//! From a catalog entity and its settings to the [`TablePlan`] the DDL is generated from.
use super::ddl::{ColumnDef, TablePlan};
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
                    *w == c.name || c.name.strip_suffix(crate::schema::CURRENCY_SUFFIX) == Some(w)
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
        reconcile_safety_ms: u64::try_from(settings.reconcile_safety.as_duration().as_millis())
            .unwrap_or(u64::MAX),
        delete_guard: settings.delete_guard,
        format,
    }
}
