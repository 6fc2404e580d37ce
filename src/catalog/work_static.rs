//! Field lists of second-wave entities whose methods have no fields method (issue #12):
//! task time records, Kanban stages, telephony call records, workgroups. Codes, types and labels from the official docs' field tables.
use super::model::Field;

fn field(code: &str, bitrix_type: &str, label: &str) -> Field {
    Field {
        code: code.into(),
        api_name: code.into(),
        bitrix_type: bitrix_type.into(),
        multiple: false,
        required: code == "ID",
        user_field: false,
        label: label.into(),
        options: Vec::new(),
    }
}

/// The documented field list of an entity without a fields method, if it is one of these.
pub(super) fn fields(entity: &str) -> Option<Vec<Field>> {
    match entity {
        "telephony_call" => Some(telephony_call()),
        "task_elapsed_time" => Some(task_elapsed_time()),
        "workgroup" => Some(workgroup()),
        "task_stage" => Some(task_stage()),
        "crm_activity_binding" => Some(activity_binding()),
        _ => None,
    }
}

/// `crm.activity.binding.list` rows (`entityTypeId`, `entityId`, crm-activity-binding-list.md),
/// with the activity b24ch adds and the key it composes (`methods::COMPOSITE_KEYS`).
fn activity_binding() -> Vec<Field> {
    [
        (
            "BINDING_KEY",
            "BINDING_KEY",
            "string",
            "Key: activity:entityTypeId:entityId",
        ),
        ("ACTIVITY_ID", "activityId", "integer", "Activity"),
        (
            "ENTITY_TYPE_ID",
            "entityTypeId",
            "integer",
            "CRM object type",
        ),
        ("ENTITY_ID", "entityId", "integer", "CRM object"),
    ]
    .into_iter()
    .map(|(code, api, ty, label)| {
        let mut f = field(code, ty, label);
        f.api_name = api.into();
        f.required = true;
        f
    })
    .collect()
}

/// `voximplant.statistic.get` rows (voximplant-statistic-get.md, "Available Fields" and the
/// response example, which adds `RECORD_FILE_ID`).
fn telephony_call() -> Vec<Field> {
    [
        ("ID", "integer", "ID"),
        ("CALL_ID", "string", "Call identifier"),
        ("EXTERNAL_CALL_ID", "string", "External call identifier"),
        ("CALL_CATEGORY", "string", "Call category"),
        ("PORTAL_USER_ID", "user", "Employee"),
        ("PORTAL_NUMBER", "string", "Line number"),
        ("PHONE_NUMBER", "string", "Subscriber number"),
        (
            "CALL_TYPE",
            "integer",
            "Call type (1 out, 2 in, 3 in redirected, 4 callback, 5 info)",
        ),
        ("CALL_DURATION", "integer", "Duration, s"),
        ("CALL_START_DATE", "datetime", "Call start"),
        ("CALL_LOG", "url", "Call log URL"),
        ("CALL_RECORD_URL", "url", "Recording URL"),
        ("CALL_VOTE", "integer", "Rating"),
        ("COST", "double", "Cost"),
        ("COST_CURRENCY", "string", "Cost currency"),
        (
            "CALL_FAILED_CODE",
            "string",
            "Result code (200 = successful)",
        ),
        ("CALL_FAILED_REASON", "string", "Result"),
        ("CRM_ENTITY_TYPE", "string", "CRM item type"),
        ("CRM_ENTITY_ID", "integer", "CRM item"),
        ("CRM_ACTIVITY_ID", "integer", "CRM activity"),
        ("REST_APP_ID", "integer", "Application"),
        ("REST_APP_NAME", "string", "Application name"),
        ("TRANSCRIPT_ID", "integer", "Transcript"),
        ("TRANSCRIPT_PENDING", "char", "Transcript pending"),
        ("SESSION_ID", "integer", "Telephony session"),
        ("REDIAL_ATTEMPT", "integer", "Redial attempt"),
        ("COMMENT", "string", "Comment"),
        ("RECORD_DURATION", "integer", "Recording duration"),
        ("RECORD_FILE_ID", "integer", "Recording file"),
    ]
    .into_iter()
    .map(|(c, t, l)| field(c, t, l))
    .collect()
}

/// `sonet_group.get` rows (sonet-group-get.md, "Returned Data").
fn workgroup() -> Vec<Field> {
    [
        ("ID", "integer", "ID"),
        ("SITE_ID", "string", "Site"),
        ("NAME", "string", "Name"),
        ("DESCRIPTION", "string", "Description"),
        ("DATE_CREATE", "datetime", "Created"),
        ("DATE_UPDATE", "datetime", "Modified"),
        ("ACTIVE", "char", "Active"),
        ("VISIBLE", "char", "Visible"),
        ("OPENED", "char", "Open to join"),
        ("CLOSED", "char", "Archived"),
        ("SUBJECT_ID", "integer", "Subject"),
        ("OWNER_ID", "user", "Owner"),
        ("KEYWORDS", "string", "Keywords"),
        ("NUMBER_OF_MEMBERS", "integer", "Members"),
        ("DATE_ACTIVITY", "datetime", "Last activity"),
        ("SUBJECT_NAME", "string", "Subject name"),
        ("PROJECT", "char", "Project"),
        ("IS_EXTRANET", "char", "Extranet"),
        ("IMAGE", "url", "Avatar URL"),
    ]
    .into_iter()
    .map(|(c, t, l)| field(c, t, l))
    .collect()
}

/// `task.elapseditem.getlist` rows (task-elapsed-item-get-list.md, the response example).
fn task_elapsed_time() -> Vec<Field> {
    [
        ("ID", "integer", "ID"),
        ("TASK_ID", "integer", "Task"),
        ("USER_ID", "user", "Employee"),
        ("COMMENT_TEXT", "string", "Comment"),
        ("SECONDS", "integer", "Time spent, s"),
        ("MINUTES", "integer", "Time spent, min"),
        ("SOURCE", "integer", "Source"),
        ("CREATED_DATE", "datetime", "Created"),
        ("DATE_START", "datetime", "Started"),
        ("DATE_STOP", "datetime", "Stopped"),
    ]
    .into_iter()
    .map(|(c, t, l)| field(c, t, l))
    .collect()
}

/// `task.stages.get` rows (task-stages-get.md); `ADDITIONAL_FILTER`, `TO_UPDATE` and
/// `TO_UPDATE_ACCESS` are system parameters that are always empty, so no columns.
fn task_stage() -> Vec<Field> {
    [
        ("ID", "integer", "ID"),
        ("TITLE", "string", "Title"),
        ("SORT", "integer", "Sort"),
        ("COLOR", "string", "Color (RGB)"),
        ("SYSTEM_TYPE", "string", "System type"),
        ("ENTITY_ID", "integer", "Workgroup or user"),
        ("ENTITY_TYPE", "string", "G: workgroup, U: user"),
    ]
    .into_iter()
    .map(|(c, t, l)| field(c, t, l))
    .collect()
}
