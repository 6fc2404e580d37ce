//! Field lists where Bitrix24 has no fields method (stage history), and types for the
//! `user.fields` / `department.fields` name → title maps, which carry no types.
use super::model::Field;

fn field(code: &str, bitrix_type: &str, multiple: bool, label: &str) -> Field {
    Field {
        code: code.into(),
        api_name: code.into(),
        bitrix_type: bitrix_type.into(),
        multiple,
        required: code == "ID",
        user_field: false,
        label: label.into(),
        options: Vec::new(),
    }
}

/// `crm.stagehistory.list` rows (EN crm-stage-history-list.md): leads carry `STATUS_*`, the
/// other types `CATEGORY_ID` / `STAGE_*`.
pub fn stage_history(entity_type_id: u32) -> Vec<Field> {
    let mut f = vec![
        field("ID", "integer", false, "ID"),
        field("TYPE_ID", "integer", false, "Change type"),
        field("OWNER_ID", "integer", false, "Item"),
        field("CREATED_TIME", "datetime", false, "Created at"),
    ];
    if entity_type_id == 1 {
        f.push(field("STATUS_ID", "crm_status", false, "Status"));
        f.push(field("STATUS_SEMANTIC_ID", "string", false, "Status group"));
    } else {
        f.push(field("CATEGORY_ID", "crm_category", false, "Pipeline"));
        f.push(field("STAGE_ID", "crm_status", false, "Stage"));
        f.push(field("STAGE_SEMANTIC_ID", "string", false, "Stage group"));
    }
    f
}

/// Types of user fields as `user.get` returns them (fixture `user.get.json`).
/// `TIMESTAMP_X` / `LAST_ACTIVITY_DATE` are ORM objects encoded as `{}`: kept raw.
pub fn user_type(code: &str) -> (&'static str, bool) {
    match code {
        "ID" => ("integer", false),
        "ACTIVE" => ("boolean", false),
        "UF_DEPARTMENT" => ("integer", true),
        "PERSONAL_BIRTHDAY" | "DATE_REGISTER" | "UF_EMPLOYMENT_DATE" => ("date", false),
        "LAST_LOGIN" => ("datetime", false),
        "IS_ONLINE" => ("char", false),
        _ => ("string", false),
    }
}

/// Types of `department.get` fields.
pub fn department_type(code: &str) -> (&'static str, bool) {
    match code {
        "ID" | "SORT" | "PARENT" => ("integer", false),
        "UF_HEAD" => ("user", false),
        _ => ("string", false),
    }
}

/// Used when `department.fields` is not available to the webhook.
pub fn department() -> Vec<Field> {
    ["ID", "NAME", "SORT", "PARENT", "UF_HEAD"]
        .iter()
        .map(|c| {
            let (t, m) = department_type(c);
            field(c, t, m, c)
        })
        .collect()
}
