//! Cell-by-cell comparison of ClickHouse's `<entity>_current` views with the demo portal's
//! ground truth.
//!
//! ```ignore
//! let mismatches = truth::compare_all(ch, &db, portal.control(), &catalog).await;
//! truth::assert_equal(&mismatches);
//! ```
//!
//! Ground truth keys are the portal's field codes and are the column names of every entity,
//! whichever method b24ch reads a value with (deals keep `DATE_CREATE`, smart processes their
//! `upperName`s); the column types the design fixes are checked too. Values are
//! read back with `FORMAT JSONEachRow` in the ground truth's canonical form: 64-bit integers
//! as numbers, decimals as strings with their trailing zeros, `DateTime64(0)` as
//! `YYYY-MM-DD hh:mm:ss` (UTC columns), named tuples as objects. Service columns are not
//! compared, except that `_invalid` must be empty (a value that did not fit its column).
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use b24ch::catalog::Catalog;
use bitrix24_emulator::PortalControl;
use local_clickhouse::LocalClickHouse;
use serde_json::{Map, Value};

/// Service columns of every table (never in the ground truth).
pub(crate) const SERVICE_COLUMNS: [&str; 4] =
    ["dt_inserted", "_version", "_is_deleted", "_invalid"];

/// One difference between the portal and ClickHouse.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mismatch {
    pub entity: String,
    /// Primary-key value (`-` for entity-level differences).
    pub id: String,
    pub column: String,
    pub expected: String,
    pub actual: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ID={} {}: expected {} got {}",
            self.entity, self.id, self.column, self.expected, self.actual
        )
    }
}

/// The b24ch entity that holds a portal table (`deal` → `crm_deal`, `user` → `user`).
pub(crate) fn entity_for_table(table: &str) -> String {
    match table {
        "user" | "department" => table.to_string(),
        // Second wave (issue #12), outside CRM: named as in the portal.
        "task" | "task_elapsed_time" | "task_stage" | "telephony_call" | "workgroup" => {
            table.to_string()
        }
        t => format!("crm_{t}"),
    }
}

/// Compares every portal table whose entity is in `enabled`; a portal table without an
/// entity in `catalog` (or without its ClickHouse table) is itself a mismatch.
pub(crate) async fn compare_all(
    ch: &LocalClickHouse,
    db: &str,
    control: &PortalControl,
    catalog: &Catalog,
    enabled: &[String],
) -> Vec<Mismatch> {
    let portal_catalog = control.catalog();
    let mut out = Vec::new();
    for (table, truth) in control.ground_truth_all() {
        let entity = entity_for_table(&table);
        if catalog.entity(&entity).is_none() {
            out.push(Mismatch {
                entity,
                id: "-".into(),
                column: "-".into(),
                expected: format!("an entity for portal table {table}"),
                actual: "not in the b24ch catalog".into(),
            });
            continue;
        };
        if !enabled.contains(&entity) {
            continue;
        }
        let names = column_names(&portal_catalog, &table);
        let files = file_fields(&portal_catalog, &table);
        out.extend(compare_entity(ch, db, &entity, &truth, &names, &files).await);
        out.extend(compare_types(ch, db, &entity, &expected_types(&portal_catalog, &table)).await);
    }
    out
}

/// Ground-truth key → column name for one portal table: the portal's own code (money UFs add
/// `_CURRENCY`, files `_URL`).
pub(crate) fn column_names(portal_catalog: &Value, table: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let tables = portal_catalog["tables"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let Some(t) = tables.iter().find(|t| t["name"] == table) else {
        return out;
    };
    for f in t["fields"].as_array().cloned().unwrap_or_default() {
        let Some(code) = f["code"].as_str() else {
            continue;
        };
        out.insert(format!("{code}_CURRENCY"), format!("{code}_CURRENCY"));
        out.insert(format!("{code}_URL"), format!("{code}_URL"));
        out.insert(code.to_string(), code.to_string());
    }
    out
}

/// The ClickHouse types design.md fixes for the fields of one portal table, by column, written
/// here independently of b24ch's mapping: id references and files are `UInt64` ids (a file
/// also has its `_URL`), enumerations option ids, dates `Date32`, datetimes
/// `DateTime64(0, 'UTC')`, money user fields `Decimal(18, 2)` with a currency column,
/// multi-fields tuples.
pub(crate) fn expected_types(portal_catalog: &Value, table: &str) -> BTreeMap<String, String> {
    let tables = portal_catalog["tables"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let Some(t) = tables.iter().find(|t| t["name"] == table) else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for f in t["fields"].as_array().cloned().unwrap_or_default() {
        let (Some(code), Some(ty)) = (f["code"].as_str(), f["type"].as_str()) else {
            continue;
        };
        if code == "ID" {
            continue;
        }
        let multiple = f["multiple"].as_bool().unwrap_or(false);
        let wrap = |t: &str| {
            if multiple {
                format!("Array({t})")
            } else {
                format!("Nullable({t})")
            }
        };
        match ty {
            "user" | "employee" | "crm_company" | "crm_contact" | "crm_lead" | "crm_deal"
            | "crm_quote" | "crm_entity" | "enumeration" => {
                out.insert(code.to_string(), wrap("UInt64"));
            }
            "file" => {
                out.insert(code.to_string(), wrap("UInt64"));
                out.insert(format!("{code}_URL"), wrap("String"));
            }
            "date" => {
                out.insert(code.to_string(), wrap("Date32"));
            }
            "datetime" => {
                out.insert(code.to_string(), wrap("DateTime64(0, 'UTC')"));
            }
            "money" => {
                out.insert(code.to_string(), wrap("Decimal(18, 2)"));
                out.insert(
                    format!("{code}_CURRENCY"),
                    "LowCardinality(Nullable(String))".into(),
                );
            }
            "crm_multifield" => {
                out.insert(
                    code.to_string(),
                    "Array(Tuple(value String, value_type String))".into(),
                );
            }
            _ => {}
        }
    }
    out
}

/// Columns whose ClickHouse type is not the expected one.
pub(crate) async fn compare_types(
    ch: &LocalClickHouse,
    db: &str,
    entity: &str,
    expected: &BTreeMap<String, String>,
) -> Vec<Mismatch> {
    let have: BTreeMap<String, String> = ch
        .query(&format!(
            "SELECT name, type FROM system.columns WHERE database = '{db}' AND table = '{entity}'"
        ))
        .await
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        // TSV escapes the quotes of `DateTime64(0, 'UTC')`.
        .map(|(n, t)| (n.to_string(), t.replace("\\'", "'")))
        .collect();
    expected
        .iter()
        .filter(|(c, t)| have.get(*c) != Some(*t))
        .map(|(c, t)| Mismatch {
            entity: entity.to_string(),
            id: "-".into(),
            column: format!("{c} (type)"),
            expected: t.clone(),
            actual: have.get(c).cloned().unwrap_or_else(|| "no column".into()),
        })
        .collect()
}

/// Ground-truth keys of file download paths (`UF_…_URL`): legacy lists and `crm.item` print
/// different paths to one file, so a path is compared by the file it names.
pub(crate) fn file_fields(portal_catalog: &Value, table: &str) -> BTreeSet<String> {
    let tables = portal_catalog["tables"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let Some(t) = tables.iter().find(|t| t["name"] == table) else {
        return BTreeSet::new();
    };
    t["fields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|f| f["type"] == "file")
        .filter_map(|f| f["code"].as_str().map(|c| format!("{c}_URL")))
        .collect()
}

/// Compares one entity's `_current` view with its ground truth rows.
pub(crate) async fn compare_entity(
    ch: &LocalClickHouse,
    db: &str,
    entity: &str,
    truth: &[Map<String, Value>],
    names: &BTreeMap<String, String>,
    files: &BTreeSet<String>,
) -> Vec<Mismatch> {
    let source = format!("`{db}`.`{entity}_current`");
    compare_entity_from(ch, db, entity, &source, truth, names, files).await
}

/// [`compare_entity`] against any relation with the current view's columns (`source`, SQL:
/// e.g. `db.crm_deal_as_of(ts = '…')`).
pub(crate) async fn compare_entity_from(
    ch: &LocalClickHouse,
    db: &str,
    entity: &str,
    source: &str,
    truth: &[Map<String, Value>],
    names: &BTreeMap<String, String>,
    files: &BTreeSet<String>,
) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let entity_level = |column: &str, expected: String, actual: String| Mismatch {
        entity: entity.to_string(),
        id: "-".into(),
        column: column.to_string(),
        expected,
        actual,
    };
    let key = match ch
        .query(&format!(
            "SELECT sorting_key FROM system.tables WHERE database = '{db}' AND name = '{entity}'"
        ))
        .await
    {
        Ok(k) if !k.trim().is_empty() => k.trim().to_string(),
        Ok(_) => {
            out.push(entity_level("-", "a table".into(), "no table".into()));
            return out;
        }
        Err(e) => {
            out.push(entity_level("-", "a table".into(), e.to_string()));
            return out;
        }
    };
    let body = match ch
        .query(&format!(
            "SELECT * EXCEPT (dt_inserted) FROM {source} ORDER BY `{key}` \
             FORMAT JSONEachRow SETTINGS output_format_json_quote_64bit_integers = 0, \
             output_format_json_quote_decimals = 1, output_format_decimal_trailing_zeros = 1, \
             output_format_json_quote_64bit_floats = 0, output_format_json_named_tuples_as_objects = 1, \
             date_time_output_format = 'simple', output_format_json_quote_denormals = 1"
        ))
        .await
    {
        Ok(b) => b,
        Err(e) => {
            out.push(entity_level("-", "a readable view".into(), e.to_string()));
            return out;
        }
    };
    let types: BTreeMap<String, String> = ch
        .query(&format!(
            "SELECT name, type FROM system.columns WHERE database = '{db}' AND table = '{entity}'"
        ))
        .await
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    let mut actual: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut columns: BTreeSet<String> = BTreeSet::new();
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        let row: Map<String, Value> = match serde_json::from_str(line) {
            Ok(r) => r,
            Err(e) => {
                out.push(entity_level(
                    "-",
                    "JSON rows".into(),
                    format!("{e}: {line}"),
                ));
                return out;
            }
        };
        columns.extend(row.keys().cloned());
        actual.insert(key_text(row.get(&key)), row);
    }
    let truth_key = names
        .iter()
        .find(|(_, c)| **c == key)
        .map(|(k, _)| k.clone())
        .unwrap_or_else(|| key.clone());
    // Columns without a ground-truth field, and fields without a column.
    let mapped: BTreeSet<String> = truth
        .iter()
        .flat_map(|r| r.keys())
        .map(|k| names.get(k).cloned().unwrap_or_else(|| k.clone()))
        .collect();
    if !truth.is_empty() && !actual.is_empty() {
        for c in columns
            .iter()
            .filter(|c| !SERVICE_COLUMNS.contains(&c.as_str()))
        {
            if !mapped.contains(c) {
                out.push(entity_level(c, "no such field".into(), "a column".into()));
            }
        }
    }
    let mut missing_columns = BTreeSet::new();
    for want in truth {
        let id = key_text(want.get(&truth_key));
        let Some(have) = actual.remove(&id) else {
            out.push(Mismatch {
                entity: entity.to_string(),
                id,
                column: "<row>".into(),
                expected: "present".into(),
                actual: "missing".into(),
            });
            continue;
        };
        for (k, v) in want {
            let column = names.get(k).cloned().unwrap_or_else(|| k.clone());
            let Some(got) = have.get(&column) else {
                if missing_columns.insert(column.clone()) {
                    out.push(entity_level(&column, format!("{v}"), "no column".into()));
                }
                continue;
            };
            let kind = if files.contains(k) {
                Kind::File
            } else {
                Kind::of(types.get(&column).map(String::as_str).unwrap_or(""))
            };
            if !same_typed(v, got, kind) {
                out.push(Mismatch {
                    entity: entity.to_string(),
                    id: id.clone(),
                    column,
                    expected: v.to_string(),
                    actual: got.to_string(),
                });
            }
        }
        if let Some(inv) = have.get("_invalid")
            && inv.as_object().is_some_and(|m| !m.is_empty())
        {
            out.push(Mismatch {
                entity: entity.to_string(),
                id: id.clone(),
                column: "_invalid".into(),
                expected: "{}".into(),
                actual: inv.to_string(),
            });
        }
    }
    for id in actual.into_keys() {
        out.push(Mismatch {
            entity: entity.to_string(),
            id,
            column: "<row>".into(),
            expected: "absent".into(),
            actual: "present".into(),
        });
    }
    out
}

fn key_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "<no key>".into(),
    }
}

/// What the column's type allows beyond plain JSON equality.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    /// `String`/`LowCardinality(String)`: the typed schema maps `crm_category` ids to strings
    /// (docs/architecture.md, "Typed schema").
    Text,
    /// `Float64`: a decimal-text ground truth (exchange rates) compares by value.
    Float,
    /// A file download path: names the same owner, field and file.
    File,
    Other,
}

impl Kind {
    pub(crate) fn of(ch_type: &str) -> Kind {
        let t = ch_type
            .trim_start_matches("Array(")
            .trim_start_matches("Nullable(")
            .trim_start_matches("LowCardinality(")
            .trim_start_matches("Nullable(");
        if t.starts_with("String") {
            Kind::Text
        } else if t.starts_with("Float64") {
            Kind::Float
        } else {
            Kind::Other
        }
    }
}

/// (owner id, field, file id) named by a download path: legacy `ownerId=…&fieldName=…&fileId=…`,
/// crm.item `id=…&fieldName=…&fileId=…`.
fn file_named(v: &Value) -> Option<Vec<(String, String, String)>> {
    let parse = |x: &Value| -> Option<(String, String, String)> {
        let query = x.as_str()?.split_once('?')?.1;
        let param = |k: &str| {
            query
                .split('&')
                .find_map(|p| p.strip_prefix(&format!("{k}=")))
                .map(str::to_string)
        };
        Some((
            param("ownerId").or_else(|| param("id"))?,
            param("fieldName")?,
            param("fileId")?,
        ))
    };
    match v {
        Value::Array(a) => a.iter().map(parse).collect(),
        x => parse(x).map(|f| vec![f]),
    }
}

/// [`same`] with the conversions the column's type implies.
pub(crate) fn same_typed(expected: &Value, actual: &Value, kind: Kind) -> bool {
    if same(expected, actual) {
        return true;
    }
    match (kind, expected, actual) {
        (Kind::File, e, a) => file_named(e).is_some_and(|x| file_named(a) == Some(x)),
        (Kind::Text, Value::Number(n), Value::String(s)) => n.to_string() == *s,
        (Kind::Text, Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(x, y)| same_typed(x, y, kind))
        }
        (Kind::Float, Value::String(s), Value::Number(n)) => s.parse::<f64>().ok() == n.as_f64(),
        _ => false,
    }
}

/// Typed equality of a canonical ground-truth value and a JSONEachRow value.
pub(crate) fn same(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => match (a.as_u64(), b.as_u64()) {
                (Some(x), Some(y)) => x == y,
                _ => a.as_f64() == b.as_f64(),
            },
        },
        (Value::String(a), Value::String(b)) => {
            a == b
                // Raw JSON kept as text (files, addresses): same JSON, whatever the spacing.
                || matches!(
                    (serde_json::from_str::<Value>(a), serde_json::from_str::<Value>(b)),
                    (Ok(x @ (Value::Object(_) | Value::Array(_))), Ok(y)) if x == y
                )
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, x)| b.get(k).is_some_and(|y| same(x, y)))
        }
        (a, b) => a == b,
    }
}

/// Panics with a readable summary (count and one example per entity and column) if any.
pub(crate) fn assert_equal(mismatches: &[Mismatch]) {
    if mismatches.is_empty() {
        return;
    }
    let mut per: BTreeMap<(String, String), (usize, &Mismatch)> = BTreeMap::new();
    for m in mismatches {
        per.entry((m.entity.clone(), m.column.clone()))
            .or_insert((0, m))
            .0 += 1;
    }
    let summary: Vec<String> = per
        .values()
        .map(|(n, m)| format!("  {n:>6} × e.g. {m}"))
        .collect();
    panic!(
        "{} mismatches between the portal and ClickHouse, per entity and column:\n{}",
        mismatches.len(),
        summary.join("\n"),
    );
}
