//! The fields of tasks: `tasks.task.getFields` (upper-case codes, `enum`/`array` types, no
//! multiplicity) completed by `task.item.userfield.getlist` (`MULTIPLE` of user fields) and the
//! methods table (`bitrix::methods::TASK_FIELD_TYPES`).
//!
//! Columns are the codes analysts know from the portal (`CREATED_DATE`, `UF_CRM_TASK`); the
//! row key each value is read from is derived from the code (`bitrix::methods::row_key_of_code`),
//! because `tasks.task.list` prints `createdDate`, `ufCrmTask` (tasks/fields.md).
use super::field_description::fields_from_description;
use super::model::Field;
use crate::bitrix::methods::{TASK_FIELD_TYPES, TASK_FIELDS_NOT_LISTED, row_key_of_code};
use serde_json::{Map, Value};

/// Task fields from a `tasks.task.getFields` answer (`{fields: {CODE: {title, type, values}}}`).
pub(super) fn from_description(result: &Value) -> Vec<Field> {
    let raw = descriptions(result);
    fields_from_description(result)
        .into_iter()
        .filter(|f| !TASK_FIELDS_NOT_LISTED.contains(&f.code.as_str()))
        .map(|mut f| {
            f.api_name = row_key_of_code(&f.code);
            f.user_field = f.code.starts_with("UF_");
            let values = raw.and_then(|m| m.get(&f.code)).map(|d| &d["values"]);
            f.bitrix_type = bitrix_type(&f, values);
            if let Some((_, t, multiple)) = TASK_FIELD_TYPES.iter().find(|(c, ..)| *c == f.code) {
                f.bitrix_type = (*t).to_string();
                f.multiple = *multiple;
            }
            f
        })
        .collect()
}

/// `MULTIPLE` of each user field from `task.item.userfield.getlist` (`[{FIELD_NAME, MULTIPLE}]`).
pub(super) fn apply_userfield_list(fields: &mut [Field], list: &Value) {
    for uf in list.as_array().into_iter().flatten() {
        let Some(name) = uf.get("FIELD_NAME").and_then(Value::as_str) else {
            continue;
        };
        if let Some(f) = fields.iter_mut().find(|f| f.code == name) {
            f.multiple = matches!(uf.get("MULTIPLE").and_then(Value::as_str), Some("Y"));
            f.user_field = true;
        }
    }
}

fn descriptions(result: &Value) -> Option<&Map<String, Value>> {
    let inner = result.get("result").unwrap_or(result);
    inner.get("fields").unwrap_or(inner).as_object()
}

/// getFields says `enum` for flags (`{"Y": "Yes", "N": "No"}`), numeric codes (`PRIORITY`,
/// `STATUS`: `{"2": "High", …}`) and words (`MARK`, `DURATION_TYPE`): typed as a flag, an
/// integer and text; `array` is a list of values.
fn bitrix_type(f: &Field, values: Option<&Value>) -> String {
    let t = f.bitrix_type.as_str();
    if t != "enum" {
        return t.to_string();
    }
    let keys: Vec<String> = match values {
        Some(Value::Object(m)) => m.keys().cloned().collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    let flag = !keys.is_empty() && keys.iter().all(|k| k == "Y" || k == "N");
    let numeric = !keys.is_empty()
        && keys
            .iter()
            .all(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()));
    match (flag, numeric) {
        (true, _) => "char",
        (_, true) => "integer",
        _ => "string",
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn get_fields_become_typed_code_columns_read_from_camel_keys() {
        let result = json!({"fields": {
            "ID": {"title": "ID", "type": "integer", "primary": true},
            "TITLE": {"title": "Title", "type": "string", "required": true},
            "PRIORITY": {"title": "Priority", "type": "enum", "values": {"2": "High", "1": "Medium", "0": "Low"}},
            "MARK": {"title": "Rating", "type": "enum", "values": {"N": "Negative", "P": "Positive"}},
            "MULTITASK": {"title": "Multitask", "type": "enum", "values": {"Y": "Yes", "N": "No"}},
            "DURATION_TYPE": {"title": "DURATION_TYPE", "type": "enum", "values": ["secs", "days"]},
            "CLOSED_BY": {"title": "Closed By", "type": "integer"},
            "AUDITORS": {"title": null, "type": "array"},
            "CHECKLIST": {"title": null, "type": "array"},
            "CHANGED_DATE": {"title": "Modification Date", "type": "datetime"},
            "UF_CRM_TASK": {"title": "CRM Entities", "type": "crm"},
            "UF_AUTO_280393876337": {"title": "Budget", "type": "double"}
        }});
        let f = from_description(&result);
        let got: Vec<(&str, &str, &str, bool, bool)> = f
            .iter()
            .map(|f| {
                let (c, a, t) = (f.code.as_str(), f.api_name.as_str(), f.bitrix_type.as_str());
                (c, a, t, f.multiple, f.user_field)
            })
            .collect();
        assert_eq!(
            got,
            [
                ("ID", "id", "integer", false, false),
                ("TITLE", "title", "string", false, false),
                ("PRIORITY", "priority", "integer", false, false),
                ("MARK", "mark", "string", false, false),
                ("MULTITASK", "multitask", "char", false, false),
                ("DURATION_TYPE", "durationType", "string", false, false),
                ("CLOSED_BY", "closedBy", "user", false, false),
                ("AUDITORS", "auditors", "user", true, false),
                ("CHANGED_DATE", "changedDate", "datetime", false, false),
                ("UF_CRM_TASK", "ufCrmTask", "crm", true, true),
                (
                    "UF_AUTO_280393876337",
                    "ufAuto280393876337",
                    "double",
                    false,
                    true
                ),
            ]
        );
        let mut f = f;
        apply_userfield_list(
            &mut f,
            &json!([{"FIELD_NAME": "UF_AUTO_280393876337", "MULTIPLE": "Y"},
                    {"FIELD_NAME": "UF_CRM_TASK", "MULTIPLE": "N"}]),
        );
        assert!(f[10].multiple);
        assert!(
            !f[9].multiple,
            "the portal's own list wins over the default"
        );
    }
}
