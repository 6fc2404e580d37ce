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

/// `char` fields that hold a letter rather than a Y/N flag, so they stay text: `crm_status`
/// SEMANTICS is `S`, `F` or empty (EN crm-status-fields.md).
pub fn is_letter_char(entity: &str, code: &str) -> bool {
    matches!((entity, code), ("crm_status", "SEMANTICS"))
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

fn fields_of(list: &[(&str, &str, bool)]) -> Vec<Field> {
    list.iter().map(|(c, t, m)| field(c, t, *m, c)).collect()
}

/// Documented fields of entities whose `*.fields` method the portal lacks or denies
/// (older on-prem installs, restricted webhooks). Sources: EN crm-status-list.md,
/// crm-category-list.md, crm-currency-list.md, crm-activity-list.md, user-get.md.
pub fn fallback(entity: &str) -> Option<Vec<Field>> {
    let list: &[(&str, &str, bool)] = match entity {
        "department" => return Some(department()),
        "crm_status" => &[
            ("ID", "integer", false),
            ("ENTITY_ID", "string", false),
            ("STATUS_ID", "string", false),
            ("NAME", "string", false),
            ("NAME_INIT", "string", false),
            ("SORT", "integer", false),
            ("SYSTEM", "char", false),
            ("CATEGORY_ID", "integer", false),
            ("COLOR", "string", false),
            ("SEMANTICS", "string", false),
            ("EXTRA", "string", false),
        ],
        "crm_currency" => &[
            ("CURRENCY", "string", false),
            ("AMOUNT_CNT", "integer", false),
            ("AMOUNT", "double", false),
            ("SORT", "integer", false),
            ("BASE", "char", false),
            ("FULL_NAME", "string", false),
            ("DATE_UPDATE", "datetime", false),
        ],
        "crm_activity" => &[
            ("ID", "integer", false),
            ("OWNER_ID", "integer", false),
            ("OWNER_TYPE_ID", "integer", false),
            ("TYPE_ID", "integer", false),
            ("PROVIDER_ID", "string", false),
            ("PROVIDER_TYPE_ID", "string", false),
            ("SUBJECT", "string", false),
            ("DESCRIPTION", "string", false),
            ("START_TIME", "datetime", false),
            ("END_TIME", "datetime", false),
            ("DEADLINE", "datetime", false),
            ("COMPLETED", "char", false),
            ("STATUS", "integer", false),
            ("RESPONSIBLE_ID", "user", false),
            ("PRIORITY", "integer", false),
            ("DIRECTION", "integer", false),
            ("AUTHOR_ID", "user", false),
            ("EDITOR_ID", "user", false),
            ("CREATED", "datetime", false),
            ("LAST_UPDATED", "datetime", false),
        ],
        "user" => &[
            ("ID", "integer", false),
            ("ACTIVE", "boolean", false),
            ("NAME", "string", false),
            ("LAST_NAME", "string", false),
            ("SECOND_NAME", "string", false),
            ("EMAIL", "string", false),
            ("WORK_POSITION", "string", false),
            ("PERSONAL_GENDER", "string", false),
            ("PERSONAL_BIRTHDAY", "date", false),
            ("DATE_REGISTER", "date", false),
            ("LAST_LOGIN", "datetime", false),
            ("IS_ONLINE", "char", false),
            ("XML_ID", "string", false),
            ("UF_DEPARTMENT", "integer", true),
        ],
        "crm_category" => {
            // Controller API: camelCase keys, upper-case column codes.
            let f = [
                ("id", "ID", "integer"),
                ("name", "NAME", "string"),
                ("sort", "SORT", "integer"),
                ("entityTypeId", "ENTITY_TYPE_ID", "integer"),
                ("isDefault", "IS_DEFAULT", "boolean"),
                ("originId", "ORIGIN_ID", "string"),
                ("originatorId", "ORIGINATOR_ID", "string"),
            ];
            return Some(
                f.iter()
                    .map(|(api, code, t)| Field {
                        api_name: (*api).into(),
                        ..field(code, t, false, code)
                    })
                    .collect(),
            );
        }
        _ => return None,
    };
    Some(fields_of(list))
}
