//! Raw Bitrix24 rows → typed cells, for every value encoding of `docs/bitrix24-api.md` §6.3.
//!
//! A value that does not fit its column becomes NULL (or `[]`) in the typed cell, its raw
//! JSON text goes into `_invalid` under the column name, and a [`NormalizeIssue`] names the
//! entity, row ID and field: nothing is lost and nothing is invented. Normalisation never
//! fails and never panics.
use std::borrow::Cow;

use rustc_hash::FxHashMap;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::cell::Cell;
use super::json::{JsonValue, KeySeed};
use super::parse;
use super::types::{ChType, Column, ColumnSource, ServiceColumn, ValuePart};
use crate::bitrix::methods::ValueStyle;

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
        /// Index of the column's API name among the row slots.
        slot: usize,
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

/// The raw values of one row that normalisation reads, by slot.
type Slots<'a> = Vec<Option<JsonValue<'a>>>;

/// Normalises rows of one entity.
#[derive(Debug, Clone)]
pub struct RowNormalizer {
    plans: Vec<Plan>,
    style: ValueStyle,
    entity: String,
    /// The row keys normalisation reads (column API names, `fm` for typed multifields).
    slot_keys: Vec<String>,
    /// Row key → slot.
    slot_of: FxHashMap<Box<str>, usize>,
    /// Slot of the primary key, for issue reports.
    id_slot: Option<usize>,
    /// Slot of `fm` (typed multifields).
    fm_slot: Option<usize>,
}

impl RowNormalizer {
    pub fn new(columns: &[Column], style: ValueStyle, entity: &str) -> Self {
        let mut slot_keys: Vec<String> = Vec::new();
        let mut slot_for = |key: &str| match slot_keys.iter().position(|k| k == key) {
            Some(i) => i,
            None => {
                slot_keys.push(key.to_string());
                slot_keys.len() - 1
            }
        };
        let plans: Vec<Plan> = columns.iter().map(|c| plan_for(c, &mut slot_for)).collect();
        let id_slot = columns.iter().find_map(|c| c.api_name()).map(&mut slot_for);
        let has_multifield = plans.iter().any(|p| {
            matches!(
                p,
                Plan::Field {
                    kind: Kind::MultiField,
                    ..
                }
            )
        });
        let fm_slot = (style == ValueStyle::Typed && has_multifield).then(|| slot_for("fm"));
        let slot_of = slot_keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.as_str().into(), i))
            .collect();
        RowNormalizer {
            plans,
            style,
            entity: entity.to_string(),
            slot_keys,
            slot_of,
            id_slot,
            fm_slot,
        }
    }

    /// Normalises one raw row; `service` fills the service columns.
    pub fn normalize(&self, raw: &Map<String, Value>, service: &ServiceValues) -> NormalizedRow {
        let slots: Slots = self
            .slot_keys
            .iter()
            .map(|k| raw.get(k).map(JsonValue::from_value))
            .collect();
        self.normalize_slots(&slots, service)
    }

    /// Normalises one row from its JSON text (a JSON object), reading only the keys that
    /// columns need and borrowing strings from `json`. Same result as [`Self::normalize`]
    /// of the parsed row; an error only if `json` is not one JSON object.
    pub fn normalize_json(
        &self,
        json: &str,
        service: &ServiceValues,
    ) -> Result<NormalizedRow, serde_json::Error> {
        let mut slots: Slots = vec![None; self.slot_keys.len()];
        let mut de = serde_json::Deserializer::from_str(json);
        RowSeed {
            slot_keys: &self.slot_keys,
            slot_of: &self.slot_of,
            slots: &mut slots,
        }
        .deserialize(&mut de)?;
        de.end()?;
        Ok(self.normalize_slots(&slots, service))
    }

    fn normalize_slots(
        &self,
        slots: &[Option<JsonValue>],
        service: &ServiceValues,
    ) -> NormalizedRow {
        let mut cells = Vec::with_capacity(self.plans.len());
        let mut invalid: Vec<(String, String)> = Vec::new();
        let mut issues = Vec::new();
        for plan in &self.plans {
            let cell = match plan {
                Plan::Service(s) => service_cell(*s, service, &mut invalid),
                Plan::Field {
                    name,
                    slot,
                    part,
                    kind,
                    array,
                    nullable,
                    expected,
                } => {
                    let value = self.lookup(slots, *slot, name, *kind == Kind::MultiField);
                    let (cell, bad) = field_cell(value.as_deref(), *kind, *part, *array, *nullable);
                    if bad {
                        let raw_text = value.as_deref().map(JsonValue::text).unwrap_or_default();
                        issues.push(NormalizeIssue {
                            entity: self.entity.clone(),
                            id: self.row_id(slots),
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

    /// The raw value of a column. Typed rows carry multifields only in `fm`, so a `PHONE`
    /// column of a typed entity takes the `fm` items whose `typeId` is `PHONE`; a column
    /// reading `fm` itself gets every item with `valueType` set to `TYPE:VALUE_TYPE`.
    fn lookup<'s, 'a>(
        &self,
        slots: &'s [Option<JsonValue<'a>>],
        slot: usize,
        column_name: &str,
        multifield: bool,
    ) -> Option<Cow<'s, JsonValue<'a>>> {
        let direct = slots.get(slot).and_then(Option::as_ref);
        if !multifield || self.style == ValueStyle::Legacy {
            return direct.map(Cow::Borrowed);
        }
        if self.slot_keys.get(slot).is_some_and(|k| k == "fm") {
            return direct.map(|v| Cow::Owned(tag_fm_items(v)));
        }
        if matches!(direct, Some(JsonValue::Array(_))) {
            return direct.map(Cow::Borrowed);
        }
        let kind = MULTIFIELD_TYPES
            .iter()
            .find(|k| k.eq_ignore_ascii_case(column_name))?;
        let fm = self
            .fm_slot
            .and_then(|i| slots.get(i))
            .and_then(Option::as_ref);
        match fm {
            Some(JsonValue::Array(items)) => Some(Cow::Owned(JsonValue::Array(
                items
                    .iter()
                    .filter(|item| item_type(item).is_some_and(|t| t.eq_ignore_ascii_case(kind)))
                    .cloned()
                    .collect(),
            ))),
            _ => direct.map(Cow::Borrowed),
        }
    }

    fn row_id(&self, slots: &[Option<JsonValue>]) -> String {
        match self
            .id_slot
            .and_then(|i| slots.get(i))
            .and_then(Option::as_ref)
        {
            Some(JsonValue::Str(s)) => s.to_string(),
            Some(v) => v.text(),
            None => String::new(),
        }
    }
}

/// Fills the slots of one row object; keys no column reads are skipped unparsed.
struct RowSeed<'r, 'a> {
    slot_keys: &'r [String],
    slot_of: &'r FxHashMap<Box<str>, usize>,
    slots: &'r mut Slots<'a>,
}

impl<'de, 'r> DeserializeSeed<'de> for RowSeed<'r, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, 'r> Visitor<'de> for RowSeed<'r, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a row object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Bitrix24 prints the keys in field order, which is the slots' order: the slot after
        // the last one filled is tried before the hash map.
        let mut next = 0;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let slot = match self.slot_keys.get(next) {
                Some(k) if *k == *key => Some(next),
                _ => self.slot_of.get(key.as_ref()).copied(),
            };
            match slot {
                // A repeated key replaces the earlier value, as in a parsed `Map`.
                Some(i) => {
                    next = i + 1;
                    self.slots[i] = Some(map.next_value::<JsonValue<'de>>()?);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Multifield kinds that `fm` items carry in `typeId`.
const MULTIFIELD_TYPES: &[&str] = &["PHONE", "EMAIL", "WEB", "IM", "LINK"];

fn item_type<'v>(item: &'v JsonValue) -> Option<&'v str> {
    item.get("typeId")
        .or_else(|| item.get("TYPE_ID"))
        .and_then(JsonValue::as_str)
}

/// `fm` items with `valueType` prefixed by their `typeId`.
fn tag_fm_items<'a>(fm: &JsonValue<'a>) -> JsonValue<'a> {
    let JsonValue::Array(items) = fm else {
        return fm.clone();
    };
    JsonValue::Array(
        items
            .iter()
            .map(|item| {
                let mut item = item.clone();
                let tagged = match (
                    item_type(&item),
                    item.get("valueType").and_then(JsonValue::as_str),
                ) {
                    (Some(t), Some(vt)) => Some(format!("{t}:{vt}")),
                    (Some(t), None) => Some(t.to_string()),
                    _ => None,
                };
                if let (Some(tagged), JsonValue::Object(members)) = (tagged, &mut item) {
                    JsonValue::insert(
                        members,
                        Cow::Borrowed("valueType"),
                        JsonValue::Str(Cow::Owned(tagged)),
                    );
                }
                item
            })
            .collect(),
    )
}

fn plan_for(column: &Column, slot_for: &mut impl FnMut(&str) -> usize) -> Plan {
    let (slot, part) = match &column.source {
        ColumnSource::Service(s) => return Plan::Service(*s),
        ColumnSource::Field { api_name, part } => (slot_for(api_name), *part),
    };
    let (inner, nullable) = column.ch_type.strip_nullable();
    let (base, array) = match inner {
        ChType::Array(elem) => (elem.strip_nullable().0, true),
        other => (other, false),
    };
    Plan::Field {
        name: column.name.clone(),
        slot,
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
    value: Option<&JsonValue>,
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
fn array_cell(value: &JsonValue, kind: Kind, part: ValuePart) -> (Cell, bool) {
    let mut out = Vec::new();
    let mut bad = false;
    let mut push = |v: &JsonValue| match scalar(v, kind, part) {
        Parsed::Empty => {}
        Parsed::Ok(c) => out.push(c),
        Parsed::Lossy(c) => {
            out.push(c);
            bad = true;
        }
        Parsed::Invalid => bad = true,
    };
    match value {
        JsonValue::Array(items) => items.iter().for_each(&mut push),
        // One file object where several may be: one file, not a map of them.
        JsonValue::Object(_) if is_file_part(part) && value.get("id").is_some() => push(value),
        JsonValue::Object(map) if kind != Kind::Str || is_file_part(part) => {
            map.iter().map(|(_, v)| v).for_each(&mut push)
        }
        // `""` is how `*.get` prints an empty multiple UF.
        JsonValue::Bool(false) | JsonValue::Null => {}
        JsonValue::Str(s) if s.is_empty() => {}
        other => push(other),
    }
    (Cell::Array(out), bad)
}

/// One scalar of a column.
fn scalar(value: &JsonValue, kind: Kind, part: ValuePart) -> Parsed {
    if is_empty_marker(value, kind) {
        return Parsed::Empty;
    }
    match part {
        ValuePart::Whole => whole_scalar(value, kind),
        ValuePart::Reference if is_zero(value) => Parsed::Empty,
        ValuePart::Reference => whole_scalar(value, kind),
        ValuePart::MoneyAmount => money_amount(value, kind),
        ValuePart::MoneyCurrency => money_currency(value),
        ValuePart::FileId => file_part(value, kind, &["id"]),
        // crm.item: `url`; legacy UFs: `downloadUrl`/`showUrl`; timeline comments: `urlDownload`/`urlShow`.
        ValuePart::FileUrl => file_part(
            value,
            kind,
            &["downloadUrl", "urlDownload", "url", "showUrl", "urlShow"],
        ),
    }
}

fn is_file_part(part: ValuePart) -> bool {
    matches!(part, ValuePart::FileId | ValuePart::FileUrl)
}

/// `0`, `"0"`, `false`: an id reference with no target.
fn is_zero(value: &JsonValue) -> bool {
    match value {
        JsonValue::Number(n) => n.as_f64() == Some(0.0),
        JsonValue::Str(s) => s.trim() == "0",
        JsonValue::Bool(false) => true,
        _ => false,
    }
}

/// One member of a file value: an object (`{"id","url"}` of crm.item, `{"id","showUrl",
/// "downloadUrl"}` of legacy lists), the same object as JSON text, or a bare file id.
/// The first of `keys` present is taken.
fn file_part(value: &JsonValue, kind: Kind, keys: &[&str]) -> Parsed {
    let from_object = |obj: &JsonValue| -> Parsed {
        match keys.iter().find_map(|k| obj.get(k)) {
            None | Some(JsonValue::Null) => Parsed::Empty,
            Some(v) if kind == Kind::UInt && is_zero(v) => Parsed::Empty,
            Some(v) => whole_scalar(v, kind),
        }
    };
    match value {
        JsonValue::Null | JsonValue::Bool(false) => Parsed::Empty,
        JsonValue::Str(s) if s.trim().is_empty() => Parsed::Empty,
        JsonValue::Object(_) => from_object(value),
        JsonValue::Str(s) if s.trim_start().starts_with('{') => {
            match serde_json::from_str::<Value>(s) {
                Ok(v @ Value::Object(_)) => from_object(&JsonValue::from_value(&v)),
                _ => Parsed::Invalid,
            }
        }
        // A bare id: the id column takes it, the path column has none.
        _ if kind == Kind::UInt && is_zero(value) => Parsed::Empty,
        _ if kind == Kind::UInt => whole_scalar(value, kind),
        JsonValue::Number(_) => Parsed::Empty,
        JsonValue::Str(s) if parse::parse_u64_text(s).is_some() => Parsed::Empty,
        _ => Parsed::Invalid,
    }
}

/// `null`, `""`, `{}`, `[]` mean "no value" everywhere; `false` too, except where it is a
/// real value (Bool columns) or must be kept verbatim (raw-text columns).
fn is_empty_marker(value: &JsonValue, kind: Kind) -> bool {
    match value {
        JsonValue::Null => true,
        JsonValue::Str(s) => s.is_empty() && kind != Kind::Str,
        JsonValue::Object(m) => m.is_empty(),
        JsonValue::Array(a) => a.is_empty(),
        JsonValue::Bool(false) => !matches!(kind, Kind::Bool | Kind::Str),
        _ => false,
    }
}

fn whole_scalar(value: &JsonValue, kind: Kind) -> Parsed {
    let ok = |c: Option<Cell>| c.map_or(Parsed::Invalid, Parsed::Ok);
    match kind {
        Kind::Str => Parsed::Ok(Cell::Str(match value {
            JsonValue::Str(s) => s.to_string(),
            other => other.text(),
        })),
        Kind::Bool => ok(match value {
            JsonValue::Bool(b) => Some(Cell::Bool(*b)),
            JsonValue::Str(s) => parse::parse_bool_text(s).map(Cell::Bool),
            JsonValue::Number(n) => match n.as_u64() {
                Some(0) => Some(Cell::Bool(false)),
                Some(1) => Some(Cell::Bool(true)),
                _ => None,
            },
            _ => None,
        }),
        Kind::Int => ok(match value {
            JsonValue::Str(s) => parse::parse_i64_text(s).map(Cell::Int),
            JsonValue::Number(n) => n
                .as_i64()
                .or_else(|| parse::parse_i64_text(&n.to_string()))
                .map(Cell::Int),
            _ => None,
        }),
        Kind::UInt => ok(match value {
            JsonValue::Str(s) => parse::parse_u64_text(s).map(Cell::UInt),
            JsonValue::Number(n) => n
                .as_u64()
                .or_else(|| parse::parse_u64_text(&n.to_string()))
                .map(Cell::UInt),
            _ => None,
        }),
        Kind::Float => ok(match value {
            JsonValue::Str(s) => parse::parse_f64_text(s).map(Cell::Float),
            JsonValue::Number(n) => n.as_f64().filter(|f| f.is_finite()).map(Cell::Float),
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
fn decimal(value: &JsonValue, precision: u8, scale: u8) -> Parsed {
    let parsed = match value {
        JsonValue::Str(s) => parse::parse_decimal(s, precision, scale),
        JsonValue::Number(n) => parse::parse_decimal(&n.to_string(), precision, scale),
        _ => None,
    };
    match parsed {
        Some(d) if d.rounded => Parsed::Lossy(Cell::Decimal(d.unscaled)),
        Some(d) => Parsed::Ok(Cell::Decimal(d.unscaled)),
        None => Parsed::Invalid,
    }
}

/// Amount of a money UF: `"123.45|RUB"`, or a bare number / numeric string.
fn money_amount(value: &JsonValue, kind: Kind) -> Parsed {
    match value {
        JsonValue::Str(s) => {
            let amount = s.split_once('|').map_or(s.as_ref(), |(a, _)| a);
            if amount.trim().is_empty() {
                return Parsed::Empty;
            }
            whole_scalar(&JsonValue::Str(Cow::Borrowed(amount)), kind)
        }
        other => whole_scalar(other, kind),
    }
}

/// Currency of a money UF: the text after `|`; absent when the value has none.
fn money_currency(value: &JsonValue) -> Parsed {
    match value.as_str().and_then(|s| s.split_once('|')) {
        Some((_, cur)) if !cur.trim().is_empty() => Parsed::Ok(Cell::Str(cur.trim().to_string())),
        _ => Parsed::Empty,
    }
}

/// `crm_multifield`: legacy `[{ID, VALUE_TYPE, VALUE, TYPE_ID}]`, typed
/// `[{id, valueType, value, typeId}]`, an object keyed by ID, or one plain string.
fn multifield_cell(value: &JsonValue) -> (Cell, bool) {
    let mut pairs = Vec::new();
    let mut bad = false;
    let mut push = |item: &JsonValue| match multifield_item(item) {
        Some(Some(p)) => pairs.push(p),
        Some(None) => {}
        None => bad = true,
    };
    match value {
        JsonValue::Array(items) => items.iter().for_each(&mut push),
        JsonValue::Object(_) if value.get("VALUE").is_some() || value.get("value").is_some() => {
            push(value)
        }
        JsonValue::Object(map) => map.iter().map(|(_, v)| v).for_each(&mut push),
        JsonValue::Str(s) if !s.is_empty() => pairs.push((s.to_string(), String::new())),
        JsonValue::Null | JsonValue::Bool(false) | JsonValue::Str(_) => {}
        _ => bad = true,
    }
    (Cell::Pairs(pairs), bad)
}

/// `Some(Some(pair))`, `Some(None)` for an empty entry, `None` for an unusable one.
fn multifield_item(item: &JsonValue) -> Option<Option<(String, String)>> {
    let JsonValue::Object(_) = item else {
        return None;
    };
    let obj = item;
    let value = match obj.get("VALUE").or_else(|| obj.get("value")) {
        Some(JsonValue::Str(s)) => s.to_string(),
        Some(JsonValue::Number(n)) => n.to_string(),
        Some(JsonValue::Null) | None => return Some(None),
        Some(_) => return None,
    };
    let value_type = match obj.get("VALUE_TYPE").or_else(|| obj.get("valueType")) {
        Some(JsonValue::Str(s)) => s.to_string(),
        _ => String::new(),
    };
    Some(Some((value, value_type)))
}

/// Compact JSON text of a raw value (what `_invalid` stores).
pub fn json_text(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Entity, EntityKind, Field};
    use crate::schema::types::table_columns;
    use serde_json::json;

    fn field(code: &str, t: &str, multiple: bool) -> Field {
        Field {
            code: code.into(),
            api_name: code.into(),
            bitrix_type: t.into(),
            multiple,
            required: false,
            user_field: code.starts_with("UF_"),
            label: code.into(),
            options: Vec::new(),
        }
    }

    fn normalize(fields: Vec<Field>, row: Value) -> Vec<(String, Cell)> {
        let e = Entity {
            name: "crm_deal".into(),
            kind: EntityKind::Crm,
            title: "Deals".into(),
            method: "crm.item".into(),
            entity_type_id: Some(2),
            fields,
            companion: None,
        };
        let cols = table_columns(&e);
        let n = RowNormalizer::new(&cols, ValueStyle::Typed, "crm_deal");
        let out = n.normalize(row.as_object().unwrap(), &ServiceValues::default());
        assert!(out.issues.is_empty(), "{:?}", out.issues);
        cols.iter()
            .map(|c| c.name.clone())
            .zip(out.cells)
            .filter(|(n, _)| !n.starts_with('_') && n != "dt_inserted")
            .collect()
    }

    #[test]
    fn references_without_target_are_null_but_pipeline_zero_stays() {
        let cells = normalize(
            vec![
                field("ID", "integer", false),
                field("COMPANY_ID", "crm_company", false),
                field("CONTACT_ID", "crm_contact", false),
                field("WEBFORM_ID", "integer", false),
                field("PARENT_ID_128", "crm_entity", false),
                field("ASSIGNED_BY_ID", "user", false),
                field("CATEGORY_ID", "crm_category", false),
                field("CONTACT_IDS", "crm_contact", true),
                field("UF_EMP", "employee", false),
                field("PROBABILITY", "integer", false),
            ],
            json!({"ID": 7, "COMPANY_ID": 0, "CONTACT_ID": "0", "WEBFORM_ID": "",
                   "PARENT_ID_128": false, "ASSIGNED_BY_ID": "5", "CATEGORY_ID": 0,
                   "CONTACT_IDS": [0, 3, "0"], "UF_EMP": "0", "PROBABILITY": 0}),
        );
        let get = |n: &str| cells.iter().find(|(c, _)| c == n).unwrap().1.clone();
        for c in [
            "COMPANY_ID",
            "CONTACT_ID",
            "WEBFORM_ID",
            "PARENT_ID_128",
            "UF_EMP",
        ] {
            assert_eq!(get(c), Cell::Null, "{c}");
        }
        assert_eq!(get("ASSIGNED_BY_ID"), Cell::UInt(5));
        assert_eq!(get("CATEGORY_ID"), Cell::Str("0".into()));
        assert_eq!(get("CONTACT_IDS"), Cell::Array(vec![Cell::UInt(3)]));
        assert_eq!(get("PROBABILITY"), Cell::Int(0));
    }

    #[test]
    fn file_fields_give_id_and_download_path_in_every_shape() {
        let url = "/bitrix/services/main/ajax.php?action=crm.controller.item.getFile&fileId=5001";
        let fields = vec![
            field("ID", "integer", false),
            field("UF_F", "file", false),
            field("UF_M", "file", true),
        ];
        let shapes = [
            json!({"ID": 1, "UF_F": {"id": 5001, "url": url},
                   "UF_M": [{"id": 5001, "url": url}, {"id": "5002", "url": url}]}),
            json!({"ID": 1, "UF_F": format!(r#"{{"id":5001,"url":"{url}"}}"#),
                   "UF_M": [format!(r#"{{"id":5001,"url":"{url}"}}"#),
                            format!(r#"{{"id":5002,"url":"{url}"}}"#)]}),
            json!({"ID": 1, "UF_F": {"id": "5001", "showUrl": "/show", "downloadUrl": url},
                   "UF_M": {"5001": {"id": 5001, "downloadUrl": url},
                            "5002": {"id": 5002, "downloadUrl": url}}}),
        ];
        for row in shapes {
            let cells = normalize(fields.clone(), row);
            let get = |n: &str| cells.iter().find(|(c, _)| c == n).unwrap().1.clone();
            assert_eq!(get("UF_F"), Cell::UInt(5001));
            assert_eq!(get("UF_F_URL"), Cell::Str(url.into()));
            assert_eq!(
                get("UF_M"),
                Cell::Array(vec![Cell::UInt(5001), Cell::UInt(5002)])
            );
            assert_eq!(
                get("UF_M_URL"),
                Cell::Array(vec![Cell::Str(url.into()), Cell::Str(url.into())])
            );
        }
        for empty in [json!(null), json!(false), json!(""), json!({}), json!([])] {
            let cells = normalize(
                fields.clone(),
                json!({"ID": 1, "UF_F": empty, "UF_M": empty}),
            );
            let get = |n: &str| cells.iter().find(|(c, _)| c == n).unwrap().1.clone();
            assert_eq!(get("UF_F"), Cell::Null);
            assert_eq!(get("UF_F_URL"), Cell::Null);
            assert_eq!(get("UF_M"), Cell::Array(vec![]));
        }
        // A single file in a multiple field (one object, not a list).
        let cells = normalize(fields, json!({"ID": 1, "UF_M": {"id": 9, "url": url}}));
        let get = |n: &str| cells.iter().find(|(c, _)| c == n).unwrap().1.clone();
        assert_eq!(get("UF_M"), Cell::Array(vec![Cell::UInt(9)]));
    }
}
