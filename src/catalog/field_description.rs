//! Parser of the `*.fields` response format (`docs/bitrix24-api.md` §6.1) into catalog [`Field`]s.
//!
//! Accepts the whole response (`{"result": …}`), its `result`, or `result.fields`
//! (crm.item.fields wraps the map in `fields`). Values that are plain strings (the
//! `user.fields` name → title map) become fields of unknown type, kept as raw text.
use serde_json::{Map, Value};

use super::{EnumOption, Field};

/// The fields of a `*.fields` response, in the response's key order.
///
/// Never fails: anything that is not a field description is skipped, so a portal
/// adding attributes cannot break discovery.
pub fn fields_from_description(json: &Value) -> Vec<Field> {
    let Some(map) = field_map(json) else {
        return Vec::new();
    };
    let mut fields: Vec<Field> = map
        .iter()
        .filter_map(|(key, desc)| field_from_entry(key, desc))
        .collect();
    // The catalog contract puts the primary key first, whatever the map order is.
    if let Some(pk) = fields.iter().position(|f| f.code == "ID") {
        fields[..=pk].rotate_right(1);
    }
    fields
}

/// Finds the `name → description` map inside the accepted wrappers.
fn field_map(json: &Value) -> Option<&Map<String, Value>> {
    let mut map = json.as_object()?;
    if let Some(inner) = map.get("result").and_then(Value::as_object) {
        map = inner;
    }
    if let Some(inner) = map.get("fields").and_then(Value::as_object) {
        map = inner;
    }
    Some(map)
}

fn field_from_entry(key: &str, desc: &Value) -> Option<Field> {
    match desc {
        Value::String(title) => Some(Field {
            code: upper_code(key, None),
            api_name: key.to_string(),
            bitrix_type: "unknown".into(),
            multiple: false,
            required: false,
            user_field: key.starts_with("UF_"),
            label: title.clone(),
            options: Vec::new(),
        }),
        Value::Object(d) => Some(described_field(key, d)),
        _ => None,
    }
}

fn described_field(key: &str, d: &Map<String, Value>) -> Field {
    let text = |name: &str| {
        d.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let user_field = flag(d.get("isDynamic"));
    // User fields carry their code in `title` and the human name in the labels.
    let label = if user_field {
        text("listLabel")
            .or_else(|| text("formLabel"))
            .or_else(|| text("filterLabel"))
            .or_else(|| text("title"))
    } else {
        text("title")
    }
    .unwrap_or(key)
    .to_string();
    Field {
        code: upper_code(key, text("upperName")),
        api_name: key.to_string(),
        bitrix_type: text("type").unwrap_or("unknown").to_string(),
        multiple: flag(d.get("isMultiple")),
        required: flag(d.get("isRequired")),
        user_field,
        label,
        options: enum_options(d.get("items")),
    }
}

/// `true`, `"Y"`, `"1"`, `1` all mean yes: the formats differ between API generations.
fn flag(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.as_str(), "Y" | "y" | "1" | "true"),
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        _ => false,
    }
}

/// `items: [{"ID": "3157", "VALUE": "…"}]` (ID as string or number).
fn enum_options(items: Option<&Value>) -> Vec<EnumOption> {
    let Some(Value::Array(items)) = items else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let id = match item.get("ID").or_else(|| item.get("id"))? {
                Value::String(s) => s.trim().parse().ok()?,
                Value::Number(n) => n.as_u64()?,
                _ => return None,
            };
            let value = item
                .get("VALUE")
                .or_else(|| item.get("value"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            Some(EnumOption { id, value })
        })
        .collect()
}

/// The ClickHouse column code: `upperName` when given, the key if already upper-case,
/// otherwise the key converted from camelCase the way Bitrix24 does it.
fn upper_code(key: &str, upper_name: Option<&str>) -> String {
    if let Some(u) = upper_name {
        return u.to_string();
    }
    if key.chars().all(|c| !c.is_ascii_lowercase()) {
        return key.to_string();
    }
    camel_to_upper_snake(key)
}

/// `assignedById` → `ASSIGNED_BY_ID`, `parentId1222` → `PARENT_ID_1222`,
/// `ufCrm_1720019876534` → `UF_CRM_1720019876534`, `ufCrm5_1721` → `UF_CRM_5_1721`.
pub fn camel_to_upper_snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 8);
    let mut prev: Option<char> = None;
    for c in key.chars() {
        let boundary = match prev {
            Some(p) => {
                (c.is_ascii_uppercase() && (p.is_ascii_lowercase() || p.is_ascii_digit()))
                    || (c.is_ascii_digit() && p.is_ascii_alphabetic())
            }
            None => false,
        };
        if boundary && !out.ends_with('_') {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
        prev = Some(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_case_conversion_matches_bitrix() {
        assert_eq!(camel_to_upper_snake("assignedById"), "ASSIGNED_BY_ID");
        assert_eq!(camel_to_upper_snake("parentId1222"), "PARENT_ID_1222");
        assert_eq!(
            camel_to_upper_snake("ufCrm_1720019876534"),
            "UF_CRM_1720019876534"
        );
        assert_eq!(camel_to_upper_snake("ufCrm5_1721"), "UF_CRM_5_1721");
        assert_eq!(camel_to_upper_snake("id"), "ID");
    }

    #[test]
    fn flags_accept_every_spelling() {
        assert!(flag(Some(&Value::Bool(true))));
        assert!(flag(Some(&Value::String("Y".into()))));
        assert!(!flag(Some(&Value::String("N".into()))));
        assert!(!flag(None));
    }
}
