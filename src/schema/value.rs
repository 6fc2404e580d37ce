//! How a method's rows encode values, and where a column's raw value is found in a row.
use std::borrow::Cow;

use serde_json::{Map, Value};

/// The value style of a Bitrix24 list method (the client maps each method to one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ValueStyle {
    /// `crm.deal/lead/contact/company.list`, `crm.activity.list`, `crm.status.list`,
    /// `user.get`, `department.get`…: strings for everything, `""` empty dates, `false` for
    /// an empty multiple UF, `"1"`/`"0"` boolean UFs, multifields under `PHONE`, `EMAIL`…
    #[default]
    Legacy,
    /// `crm.item.*`, `crm.type.*`, `crm.category.*`: JSON numbers, `"Y"`/`"N"` booleans,
    /// `null`s, camelCase keys, multifields in `fm`, file UFs as `{"id","url"}`.
    Typed,
}

/// Multifield kinds that `fm` items carry in `typeId`.
const MULTIFIELD_TYPES: &[&str] = &["PHONE", "EMAIL", "WEB", "IM", "LINK"];

/// The raw value of a column in `row`.
///
/// Typed rows carry multifields only in `fm` (the flat `phone`/`email` keys hold one
/// value), so a `PHONE` column of a typed entity takes the `fm` items whose `typeId` is
/// `PHONE`. A column reading `fm` itself gets every item with `value_type` set to
/// `TYPE:VALUE_TYPE` (`PHONE:WORK`) so that the kind is not lost.
pub fn lookup_value<'a>(
    row: &'a Map<String, Value>,
    api_name: &str,
    column_name: &str,
    multifield: bool,
    style: ValueStyle,
) -> Option<Cow<'a, Value>> {
    let direct = row.get(api_name);
    if !multifield || style == ValueStyle::Legacy {
        return direct.map(Cow::Borrowed);
    }
    if api_name == "fm" {
        return direct.map(|v| Cow::Owned(tag_fm_items(v)));
    }
    if matches!(direct, Some(Value::Array(_))) {
        return direct.map(Cow::Borrowed);
    }
    let kind = MULTIFIELD_TYPES
        .iter()
        .find(|k| k.eq_ignore_ascii_case(column_name))?;
    match row.get("fm") {
        Some(Value::Array(items)) => Some(Cow::Owned(Value::Array(
            items
                .iter()
                .filter(|item| item_type(item).is_some_and(|t| t.eq_ignore_ascii_case(kind)))
                .cloned()
                .collect(),
        ))),
        _ => direct.map(Cow::Borrowed),
    }
}

fn item_type(item: &Value) -> Option<&str> {
    item.get("typeId")
        .or_else(|| item.get("TYPE_ID"))
        .and_then(Value::as_str)
}

/// `fm` items with `valueType` prefixed by their `typeId`.
fn tag_fm_items(fm: &Value) -> Value {
    let Value::Array(items) = fm else {
        return fm.clone();
    };
    Value::Array(
        items
            .iter()
            .map(|item| {
                let mut item = item.clone();
                let tagged = match (
                    item_type(&item),
                    item.get("valueType").and_then(Value::as_str),
                ) {
                    (Some(t), Some(vt)) => Some(format!("{t}:{vt}")),
                    (Some(t), None) => Some(t.to_string()),
                    _ => None,
                };
                if let (Some(tagged), Some(obj)) = (tagged, item.as_object_mut()) {
                    obj.insert("valueType".into(), Value::String(tagged));
                }
                item
            })
            .collect(),
    )
}
