//! Raw Bitrix24 rows → typed cells, for every value encoding of bitrix24-api.md §6.3.
//!
//! A value that does not fit its column becomes NULL (or `[]`) in the typed cell, its raw
//! JSON text goes into `_invalid` under the column name, and a [`NormalizeIssue`] names the
//! entity, row ID and field: nothing is lost and nothing is invented. Normalisation never
//! fails and never panics.
use serde_json::{Map, Value};

use super::cell::Cell;
use super::parse;
use super::types::{ChType, Column, ColumnSource, ServiceColumn, ValuePart};
use super::value::{ValueStyle, lookup_value};

/// One value that did not fit its column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizeIssue {
    pub entity: String,
    /// Raw text of the row's primary key (empty if the row has none).
    pub id: String,
    /// Column name.
    pub field: String,
    /// Raw JSON text of the value.
    pub raw: String,
    /// The ClickHouse type it should have fitted.
    pub expected: String,
}

/// One normalised row: a cell per column, in column order.
#[derive(Debug, Clone, PartialEq)]
pub struct NormalizedRow {
    pub cells: Vec<Cell>,
    pub issues: Vec<NormalizeIssue>,
}

/// Values of the service columns for one batch of rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServiceValues {
    /// `dt_inserted`, ms since the epoch.
    pub loaded_at_ms: i64,
    /// `_version`.
    pub version: u64,
    /// `_is_deleted`.
    pub is_deleted: bool,
}

/// The scalar kind a column's values are parsed into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Int,
    UInt,
    Float,
    Decimal { precision: u8, scale: u8 },
    Date,
    DateTime,
    Str,
    MultiField,
}

/// What to do for one column, precomputed once per entity.
#[derive(Debug, Clone)]
enum Plan {
    Field {
        name: String,
        api_name: String,
        part: ValuePart,
        kind: Kind,
        array: bool,
        nullable: bool,
        expected: String,
    },
    Service(ServiceColumn),
}

/// Outcome of parsing one scalar.
enum Parsed {
    Empty,
    Ok(Cell),
    /// A usable value that still lost something (a rounded decimal): kept and reported.
    Lossy(Cell),
    Invalid,
}

/// Normalises rows of one entity.
#[derive(Debug, Clone)]
pub struct RowNormalizer {
    plans: Vec<Plan>,
    style: ValueStyle,
    entity: String,
    /// API name of the primary key, for issue reports.
    id_key: Option<String>,
}

impl RowNormalizer {
    pub fn new(columns: &[Column], style: ValueStyle, entity: &str) -> Self {
        let plans: Vec<Plan> = columns.iter().map(plan_for).collect();
        let id_key = columns
            .iter()
            .find_map(|c| c.api_name().map(str::to_string));
        RowNormalizer {
            plans,
            style,
            entity: entity.to_string(),
            id_key,
        }
    }

    /// Normalises one raw row; `service` fills the service columns.
    pub fn normalize(&self, raw: &Map<String, Value>, service: &ServiceValues) -> NormalizedRow {
        let mut cells = Vec::with_capacity(self.plans.len());
        let mut invalid: Vec<(String, String)> = Vec::new();
        let mut issues = Vec::new();
        for plan in &self.plans {
            let cell = match plan {
                Plan::Service(s) => service_cell(*s, service, &mut invalid),
                Plan::Field {
                    name,
                    api_name,
                    part,
                    kind,
                    array,
                    nullable,
                    expected,
                } => {
                    let value =
                        lookup_value(raw, api_name, name, *kind == Kind::MultiField, self.style);
                    let (cell, bad) = field_cell(value.as_deref(), *kind, *part, *array, *nullable);
                    if bad {
                        let raw_text = value.as_deref().map(json_text).unwrap_or_default();
                        issues.push(NormalizeIssue {
                            entity: self.entity.clone(),
                            id: self.row_id(raw),
                            field: name.clone(),
                            raw: raw_text.clone(),
                            expected: expected.clone(),
                        });
                        invalid.push((name.clone(), raw_text));
                    }
                    cell
                }
            };
            cells.push(cell);
        }
        NormalizedRow { cells, issues }
    }

    fn row_id(&self, raw: &Map<String, Value>) -> String {
        match self.id_key.as_ref().and_then(|k| raw.get(k)) {
            Some(Value::String(s)) => s.clone(),
            Some(v) => json_text(v),
            None => String::new(),
        }
    }
}

fn plan_for(column: &Column) -> Plan {
    let (api_name, part) = match &column.source {
        ColumnSource::Service(s) => return Plan::Service(*s),
        ColumnSource::Field { api_name, part } => (api_name.clone(), *part),
    };
    let (inner, nullable) = column.ch_type.strip_nullable();
    let (base, array) = match inner {
        ChType::Array(elem) => (elem.strip_nullable().0, true),
        other => (other, false),
    };
    Plan::Field {
        name: column.name.clone(),
        api_name,
        part,
        kind: kind_of(base),
        array,
        nullable,
        expected: column.ch_type.sql(),
    }
}

fn kind_of(t: &ChType) -> Kind {
    match t {
        ChType::Bool => Kind::Bool,
        ChType::Int64 => Kind::Int,
        ChType::UInt64 | ChType::UInt8 => Kind::UInt,
        ChType::Float64 => Kind::Float,
        ChType::Decimal { precision, scale } => Kind::Decimal {
            precision: *precision,
            scale: *scale,
        },
        ChType::Date32 => Kind::Date,
        ChType::DateTime64 { .. } => Kind::DateTime,
        ChType::MultiField => Kind::MultiField,
        // Strings, and any shape a field column should never get: kept as raw text.
        _ => Kind::Str,
    }
}

fn service_cell(s: ServiceColumn, v: &ServiceValues, invalid: &mut Vec<(String, String)>) -> Cell {
    match s {
        ServiceColumn::DtInserted => Cell::DateTime(v.loaded_at_ms),
        ServiceColumn::Version => Cell::UInt(v.version),
        ServiceColumn::IsDeleted => Cell::UInt(u64::from(v.is_deleted)),
        // Service columns come last, so every field has been seen by now.
        ServiceColumn::Invalid => Cell::Map(std::mem::take(invalid)),
    }
}

/// The typed cell of a field, and whether the raw value must be reported.
fn field_cell(
    value: Option<&Value>,
    kind: Kind,
    part: ValuePart,
    array: bool,
    nullable: bool,
) -> (Cell, bool) {
    let Some(value) = value else {
        return (empty_cell(kind, array, nullable), false);
    };
    if kind == Kind::MultiField {
        return multifield_cell(value);
    }
    if array {
        return array_cell(value, kind, part);
    }
    match scalar(value, kind, part) {
        Parsed::Empty => (empty_cell(kind, false, nullable), false),
        Parsed::Ok(c) => (c, false),
        Parsed::Lossy(c) => (c, true),
        Parsed::Invalid => (empty_cell(kind, false, nullable), true),
    }
}

/// NULL, `[]`, or — for the non-nullable primary key only — the type's zero, since the
/// column cannot hold NULL (the raw value is then in `_invalid`).
fn empty_cell(kind: Kind, array: bool, nullable: bool) -> Cell {
    if array {
        return Cell::Array(Vec::new());
    }
    if nullable {
        return Cell::Null;
    }
    match kind {
        Kind::Bool => Cell::Bool(false),
        Kind::Int => Cell::Int(0),
        Kind::UInt => Cell::UInt(0),
        Kind::Float => Cell::Float(0.0),
        Kind::Decimal { .. } => Cell::Decimal(0),
        Kind::Date => Cell::Date(0),
        Kind::DateTime => Cell::DateTime(0),
        Kind::Str => Cell::Str(String::new()),
        Kind::MultiField => Cell::Pairs(Vec::new()),
    }
}

/// Multiple values: a JSON array, an object keyed by ID (PHP assoc arrays), a single
/// scalar (one value), or an empty marker (`false`, `""`, `null`, `{}`, `[]`) → `[]`.
/// Elements that do not fit are dropped from the array and the whole value is reported.
fn array_cell(value: &Value, kind: Kind, part: ValuePart) -> (Cell, bool) {
    let mut out = Vec::new();
    let mut bad = false;
    let mut push = |v: &Value| match scalar(v, kind, part) {
        Parsed::Empty => {}
        Parsed::Ok(c) => out.push(c),
        Parsed::Lossy(c) => {
            out.push(c);
            bad = true;
        }
        Parsed::Invalid => bad = true,
    };
    match value {
        Value::Array(items) => items.iter().for_each(&mut push),
        Value::Object(map) if kind != Kind::Str => map.values().for_each(&mut push),
        // `""` is how `*.get` prints an empty multiple UF.
        Value::Bool(false) | Value::Null => {}
        Value::String(s) if s.is_empty() => {}
        other => push(other),
    }
    (Cell::Array(out), bad)
}

/// One scalar of a column.
fn scalar(value: &Value, kind: Kind, part: ValuePart) -> Parsed {
    if is_empty_marker(value, kind) {
        return Parsed::Empty;
    }
    match part {
        ValuePart::Whole => whole_scalar(value, kind),
        ValuePart::MoneyAmount => money_amount(value, kind),
        ValuePart::MoneyCurrency => money_currency(value),
    }
}

/// `null`, `""`, `{}`, `[]` mean "no value" everywhere; `false` too, except where it is a
/// real value (Bool columns) or must be kept verbatim (raw-text columns).
fn is_empty_marker(value: &Value, kind: Kind) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty() && kind != Kind::Str,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Bool(false) => !matches!(kind, Kind::Bool | Kind::Str),
        _ => false,
    }
}

fn whole_scalar(value: &Value, kind: Kind) -> Parsed {
    let ok = |c: Option<Cell>| c.map_or(Parsed::Invalid, Parsed::Ok);
    match kind {
        Kind::Str => Parsed::Ok(Cell::Str(match value {
            Value::String(s) => s.clone(),
            other => json_text(other),
        })),
        Kind::Bool => ok(match value {
            Value::Bool(b) => Some(Cell::Bool(*b)),
            Value::String(s) => parse::parse_bool_text(s).map(Cell::Bool),
            Value::Number(n) => match n.as_u64() {
                Some(0) => Some(Cell::Bool(false)),
                Some(1) => Some(Cell::Bool(true)),
                _ => None,
            },
            _ => None,
        }),
        Kind::Int => ok(match value {
            Value::String(s) => parse::parse_i64_text(s).map(Cell::Int),
            Value::Number(n) => n
                .as_i64()
                .or_else(|| parse::parse_i64_text(&n.to_string()))
                .map(Cell::Int),
            _ => None,
        }),
        Kind::UInt => ok(match value {
            Value::String(s) => parse::parse_u64_text(s).map(Cell::UInt),
            Value::Number(n) => n
                .as_u64()
                .or_else(|| parse::parse_u64_text(&n.to_string()))
                .map(Cell::UInt),
            _ => None,
        }),
        Kind::Float => ok(match value {
            Value::String(s) => parse::parse_f64_text(s).map(Cell::Float),
            Value::Number(n) => n.as_f64().filter(|f| f.is_finite()).map(Cell::Float),
            _ => None,
        }),
        Kind::Decimal { precision, scale } => decimal(value, precision, scale),
        Kind::Date => ok(value.as_str().and_then(parse::parse_date).map(Cell::Date)),
        Kind::DateTime => ok(value
            .as_str()
            .and_then(parse::parse_datetime)
            .map(Cell::DateTime)),
        Kind::MultiField => Parsed::Invalid,
    }
}

/// Decimal from a string or a JSON number. A JSON number went through f64 in serde_json;
/// its shortest round-trip text (`999.9`) is the value Bitrix24 meant.
fn decimal(value: &Value, precision: u8, scale: u8) -> Parsed {
    let parsed = match value {
        Value::String(s) => parse::parse_decimal(s, precision, scale),
        Value::Number(n) => parse::parse_decimal(&n.to_string(), precision, scale),
        _ => None,
    };
    match parsed {
        Some(d) if d.rounded => Parsed::Lossy(Cell::Decimal(d.unscaled)),
        Some(d) => Parsed::Ok(Cell::Decimal(d.unscaled)),
        None => Parsed::Invalid,
    }
}

/// Amount of a money UF: `"123.45|RUB"`, or a bare number / numeric string.
fn money_amount(value: &Value, kind: Kind) -> Parsed {
    match value {
        Value::String(s) => {
            let amount = s.split_once('|').map_or(s.as_str(), |(a, _)| a);
            if amount.trim().is_empty() {
                return Parsed::Empty;
            }
            whole_scalar(&Value::String(amount.to_string()), kind)
        }
        other => whole_scalar(other, kind),
    }
}

/// Currency of a money UF: the text after `|`; absent when the value has none.
fn money_currency(value: &Value) -> Parsed {
    match value.as_str().and_then(|s| s.split_once('|')) {
        Some((_, cur)) if !cur.trim().is_empty() => Parsed::Ok(Cell::Str(cur.trim().to_string())),
        _ => Parsed::Empty,
    }
}

/// `crm_multifield`: legacy `[{ID, VALUE_TYPE, VALUE, TYPE_ID}]`, typed
/// `[{id, valueType, value, typeId}]`, an object keyed by ID, or one plain string.
fn multifield_cell(value: &Value) -> (Cell, bool) {
    let mut pairs = Vec::new();
    let mut bad = false;
    let mut push = |item: &Value| match multifield_item(item) {
        Some(Some(p)) => pairs.push(p),
        Some(None) => {}
        None => bad = true,
    };
    match value {
        Value::Array(items) => items.iter().for_each(&mut push),
        Value::Object(map) if map.contains_key("VALUE") || map.contains_key("value") => push(value),
        Value::Object(map) => map.values().for_each(&mut push),
        Value::String(s) if !s.is_empty() => pairs.push((s.clone(), String::new())),
        Value::Null | Value::Bool(false) | Value::String(_) => {}
        _ => bad = true,
    }
    (Cell::Pairs(pairs), bad)
}

/// `Some(Some(pair))`, `Some(None)` for an empty entry, `None` for an unusable one.
fn multifield_item(item: &Value) -> Option<Option<(String, String)>> {
    let obj = item.as_object()?;
    let value = match obj.get("VALUE").or_else(|| obj.get("value")) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Null) | None => return Some(None),
        Some(_) => return None,
    };
    let value_type = match obj.get("VALUE_TYPE").or_else(|| obj.get("valueType")) {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    Some(Some((value, value_type)))
}

/// Compact JSON text of a raw value (what `_invalid` stores).
pub fn json_text(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
