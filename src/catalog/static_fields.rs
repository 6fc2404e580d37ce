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

/// Fields an entity's rows carry that its `*.fields` answer leaves out: product rows have
/// `priceAccount` and `xmlId` (EN crm-item-productrow-fields.md, "the response does not
/// contain"), plus the owner time b24ch adds; each is added unless the portal describes it.
pub(super) fn add_undescribed(entity: &str, fields: &mut Vec<Field>) {
    let extra: &[(&str, &str, &str, &str)] = match entity {
        "crm_productrow" => &[
            (
                "PRICE_ACCOUNT",
                "priceAccount",
                "double",
                "Price in account currency",
            ),
            ("XML_ID", "xmlId", "string", "External code"),
            // Not a product-row field: the owner's modification time, which b24ch copies into
            // each row (`bitrix::productrows`), the cursor of incremental loads.
            (
                "OWNER_UPDATED_TIME",
                "ownerUpdatedTime",
                "datetime",
                "Owner modified at",
            ),
        ],
        // Not an address field: the key b24ch composes (`bitrix::methods::COMPOSITE_KEYS`).
        "crm_address" => &[(
            "ADDRESS_KEY",
            "ADDRESS_KEY",
            "string",
            "Key: ENTITY_TYPE_ID:ENTITY_ID:TYPE_ID",
        )],
        _ => &[],
    };
    for (code, api, ty, label) in extra {
        if fields.iter().any(|f| f.code == *code || f.api_name == *api) {
            continue;
        }
        let mut f = field(code, ty, false, label);
        f.api_name = (*api).to_string();
        fields.push(f);
    }
}

/// `crm.stagehistory.list` rows (EN crm-stage-history-list.md): leads carry `STATUS_*`, the
/// other types `CATEGORY_ID` / `STAGE_*`.
pub(super) fn stage_history(entity_type_id: u32) -> Vec<Field> {
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
pub(super) fn user_type(code: &str) -> (&'static str, bool) {
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
pub(super) fn is_letter_char(entity: &str, code: &str) -> bool {
    matches!((entity, code), ("crm_status", "SEMANTICS"))
}

/// Types of `department.get` fields.
pub(super) fn department_type(code: &str) -> (&'static str, bool) {
    match code {
        "ID" | "SORT" | "PARENT" => ("integer", false),
        "UF_HEAD" => ("user", false),
        _ => ("string", false),
    }
}

/// The codes `user.fields` documents (user/user-fields.md), typed by [`user_type`].
const USER_FIELDS: &[&str] = &[
    "ID",
    "XML_ID",
    "ACTIVE",
    "NAME",
    "LAST_NAME",
    "SECOND_NAME",
    "TITLE",
    "EMAIL",
    "LAST_LOGIN",
    "DATE_REGISTER",
    "TIME_ZONE",
    "IS_ONLINE",
    "TIMESTAMP_X",
    "LAST_ACTIVITY_DATE",
    "PERSONAL_GENDER",
    "PERSONAL_PROFESSION",
    "PERSONAL_WWW",
    "PERSONAL_BIRTHDAY",
    "PERSONAL_PHOTO",
    "PERSONAL_ICQ",
    "PERSONAL_PHONE",
    "PERSONAL_FAX",
    "PERSONAL_MOBILE",
    "PERSONAL_PAGER",
    "PERSONAL_STREET",
    "PERSONAL_CITY",
    "PERSONAL_STATE",
    "PERSONAL_ZIP",
    "PERSONAL_COUNTRY",
    "PERSONAL_MAILBOX",
    "PERSONAL_NOTES",
    "WORK_PHONE",
    "WORK_COMPANY",
    "WORK_POSITION",
    "WORK_DEPARTMENT",
    "WORK_WWW",
    "WORK_FAX",
    "WORK_PAGER",
    "WORK_STREET",
    "WORK_MAILBOX",
    "WORK_CITY",
    "WORK_STATE",
    "WORK_ZIP",
    "WORK_COUNTRY",
    "WORK_PROFILE",
    "WORK_LOGO",
    "WORK_NOTES",
    "UF_SKYPE_LINK",
    "UF_ZOOM",
    "UF_EMPLOYMENT_DATE",
    "UF_TIMEMAN",
    "UF_DEPARTMENT",
    "UF_INTERESTS",
    "UF_SKILLS",
    "UF_WEB_SITES",
    "UF_XING",
    "UF_LINKEDIN",
    "UF_TWITTER",
    "UF_SKYPE",
    "UF_DISTRICT",
    "UF_PHONE_INNER",
    "USER_TYPE",
];

/// Used when `user.fields` is not available to the webhook.
pub(super) fn user() -> Vec<Field> {
    USER_FIELDS
        .iter()
        .map(|c| {
            let (t, m) = user_type(c);
            field(c, t, m, c)
        })
        .collect()
}

/// Used when `department.fields` is not available to the webhook.
pub(super) fn department() -> Vec<Field> {
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
/// (older on-prem installs, restricted webhooks): the response examples of the docs pages
/// (bitrix24/b24restdocs api-reference/crm/timeline/activities/activity-base/crm-activity-fields.md,
/// crm/status/crm-status-fields.md, crm/currency/crm-currency-fields.md,
/// crm/universal/category/crm-category-fields.md, user/user-fields.md,
/// departments/department-fields.md; copies in tests/fixtures/b24restdocs).
pub(super) fn fallback(entity: &str) -> Option<Vec<Field>> {
    let list: &[(&str, &str, bool)] = match entity {
        "department" => return Some(department()),
        "user" => return Some(user()),
        "crm_status" => &[
            ("ID", "integer", false),
            ("ENTITY_ID", "string", false),
            ("STATUS_ID", "string", false),
            ("SORT", "integer", false),
            ("NAME", "string", false),
            ("NAME_INIT", "string", false),
            ("SYSTEM", "char", false),
            ("CATEGORY_ID", "integer", false),
            ("COLOR", "string", false),
            ("SEMANTICS", "char", false),
            ("EXTRA", "crm_status_extra", false),
        ],
        "crm_currency" => &[
            ("CURRENCY", "string", false),
            ("AMOUNT_CNT", "int", false),
            ("AMOUNT", "double", false),
            ("BASE", "char", false),
            ("SORT", "int", false),
            ("DATE_UPDATE", "datetime", false),
            ("LID", "string", false),
            ("FORMAT_STRING", "string", false),
            ("FULL_NAME", "string", false),
            ("DEC_POINT", "string", false),
            ("THOUSANDS_SEP", "string", false),
            ("DECIMALS", "int", false),
            ("LANG", "currency_localization", true),
        ],
        "crm_activity" => &[
            ("ID", "integer", false),
            ("OWNER_ID", "integer", false),
            ("OWNER_TYPE_ID", "crm_enum_ownertype", false),
            ("TYPE_ID", "crm_enum_activitytype", false),
            ("PROVIDER_ID", "string", false),
            ("PROVIDER_TYPE_ID", "string", false),
            ("PROVIDER_GROUP_ID", "string", false),
            ("ASSOCIATED_ENTITY_ID", "integer", false),
            ("SUBJECT", "string", false),
            ("START_TIME", "datetime", false),
            ("END_TIME", "datetime", false),
            ("DEADLINE", "datetime", false),
            ("COMPLETED", "char", false),
            ("STATUS", "crm_enum_activitystatus", false),
            ("RESPONSIBLE_ID", "user", false),
            ("PRIORITY", "crm_enum_activitypriority", false),
            ("NOTIFY_TYPE", "crm_enum_activitynotifytype", false),
            ("NOTIFY_VALUE", "integer", false),
            ("DESCRIPTION", "string", false),
            ("DESCRIPTION_TYPE", "crm_enum_contenttype", false),
            ("DIRECTION", "crm_enum_activitydirection", false),
            ("LOCATION", "string", false),
            ("CREATED", "datetime", false),
            ("AUTHOR_ID", "user", false),
            ("LAST_UPDATED", "datetime", false),
            ("EDITOR_ID", "user", false),
            ("SETTINGS", "object", false),
            ("ORIGIN_ID", "string", false),
            ("ORIGINATOR_ID", "string", false),
            ("RESULT_STATUS", "integer", false),
            ("RESULT_STREAM", "integer", false),
            ("RESULT_SOURCE_ID", "string", false),
            ("PROVIDER_PARAMS", "object", false),
            ("PROVIDER_DATA", "string", false),
            ("RESULT_MARK", "integer", false),
            ("RESULT_VALUE", "double", false),
            ("RESULT_SUM", "double", false),
            ("RESULT_CURRENCY_ID", "string", false),
            ("AUTOCOMPLETE_RULE", "integer", false),
            ("BINDINGS", "crm_activity_binding", true),
            ("COMMUNICATIONS", "crm_activity_communication", true),
            ("FILES", "diskfile", true),
            ("WEBDAV_ELEMENTS", "diskfile", true),
            ("IS_INCOMING_CHANNEL", "char", false),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::fields_from_description;

    /// A docs page's `*.fields` response example (tests/fixtures/b24restdocs, see its README).
    fn docs(method: &str) -> serde_json::Value {
        let path = format!(
            "{}/tests/fixtures/b24restdocs/{method}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn shape(fields: &[Field]) -> Vec<(String, String, String, bool)> {
        fields
            .iter()
            .map(|f| {
                (
                    f.code.clone(),
                    f.api_name.clone(),
                    f.bitrix_type.clone(),
                    f.multiple,
                )
            })
            .collect()
    }

    #[test]
    fn described_fallbacks_equal_the_docs_pages() {
        for (entity, method) in [
            ("crm_activity", "crm.activity.fields"),
            ("crm_status", "crm.status.fields"),
            ("crm_currency", "crm.currency.fields"),
            ("crm_category", "crm.category.fields"),
        ] {
            let want = fields_from_description(&docs(method));
            assert!(
                want.len() > 5,
                "{method}: fixture parsed to {} fields",
                want.len()
            );
            let got = fallback(entity).unwrap_or_default();
            assert_eq!(shape(&got), shape(&want), "{entity} vs {method}");
        }
    }

    #[test]
    fn title_map_fallbacks_list_every_documented_code() {
        for (entity, method, typer) in [
            (
                "user",
                "user.fields",
                user_type as fn(&str) -> (&'static str, bool),
            ),
            ("department", "department.fields", department_type),
        ] {
            let want: Vec<(String, String, String, bool)> = fields_from_description(&docs(method))
                .iter()
                .map(|f| {
                    let (t, m) = typer(&f.code);
                    (f.code.clone(), f.api_name.clone(), t.to_string(), m)
                })
                .collect();
            assert!(want.len() >= 5, "{method}");
            assert_eq!(
                shape(&fallback(entity).unwrap_or_default()),
                want,
                "{entity}"
            );
        }
    }

    #[test]
    fn the_activity_fields_the_issue_names_are_there() {
        let f = fallback("crm_activity").unwrap_or_default();
        for code in [
            "ASSOCIATED_ENTITY_ID",
            "NOTIFY_TYPE",
            "NOTIFY_VALUE",
            "DESCRIPTION_TYPE",
            "LOCATION",
            "ORIGINATOR_ID",
            "ORIGIN_ID",
            "RESULT_MARK",
            "RESULT_VALUE",
            "RESULT_SUM",
            "RESULT_CURRENCY_ID",
            "RESULT_STATUS",
            "RESULT_STREAM",
            "RESULT_SOURCE_ID",
            "AUTOCOMPLETE_RULE",
        ] {
            assert!(f.iter().any(|x| x.code == code), "{code}");
        }
    }
}
