//! The portal beyond CRM: tasks (and their user fields). Field codes, types and titles follow
//! `tasks.task.getFields` and tasks/fields.md of the official docs; rows are printed by
//! `methods/tasks.rs`.

use super::DataSizes;
use super::fields::fd;
use super::json_out::J;
use super::model::{FieldDef, Gen, Kind, PortalData, TableKind, UfGen, Val};

/// The values `tasks.task.getFields` lists for an `enum` field (code → value → title).
pub(crate) fn task_enum_values(code: &str) -> Option<&'static [(&'static str, &'static str)]> {
    Some(match code {
        "MARK" => &[("N", "Negative"), ("P", "Positive")],
        "PRIORITY" => &[("2", "High"), ("1", "Medium"), ("0", "Low")],
        "STATUS" => &[
            ("2", "Pending"),
            ("3", "In Progress"),
            ("4", "Awaiting Review"),
            ("5", "Completed"),
            ("6", "Deferred"),
        ],
        _ => return None,
    })
}

/// The `default` `tasks.task.getFields` prints for a field, where it prints one.
pub(crate) fn task_default(code: &str) -> Option<J> {
    Some(match code {
        "PARENT_ID"
        | "GROUP_ID"
        | "STAGE_ID"
        | "SPRINT_ID"
        | "BACKLOG_ID"
        | "COMMENTS_COUNT"
        | "SERVICE_COMMENTS_COUNT"
        | "NEW_COMMENTS_COUNT"
        | "FLOW_ID" => J::Int(0),
        "MARK" | "CLOSED_BY" | "CLOSED_DATE" | "ACTIVITY_DATE" | "DATE_START" | "DEADLINE"
        | "START_DATE_PLAN" | "END_DATE_PLAN" | "GUID" | "XML_ID" | "SUBORDINATE" | "FAVORITE"
        | "EXCHANGE_MODIFIED" | "EXCHANGE_ID" | "OUTLOOK_VERSION" => J::Null,
        "PRIORITY" => J::Int(1),
        "STATUS" => J::Int(2),
        "MULTITASK"
        | "NOT_VIEWED"
        | "REPLICATE"
        | "ALLOW_CHANGE_DEADLINE"
        | "ALLOW_TIME_TRACKING"
        | "TASK_CONTROL"
        | "ADD_IN_REPORT"
        | "FORKED_BY_TEMPLATE_ID"
        | "IS_MUTED"
        | "IS_PINNED"
        | "IS_PINNED_IN_GROUP" => J::str("N"),
        "DURATION_TYPE" => J::str("days"),
        _ => return None,
    })
}

/// `DURATION_TYPE` lists its values as an array, not a map (tasks-task-get-fields.md).
pub(crate) const DURATION_TYPES: &[&str] =
    &["secs", "mins", "hours", "days", "weeks", "months", "years"];

/// Task fields whose empty value is printed `"0"` (`closedBy` "is `0` if the task is not
/// completed", tasks/fields.md).
pub(crate) const ZERO_WHEN_EMPTY: &[&str] = &["CLOSED_BY"];

fn task_field(code: &str, api_type: &str, kind: Kind, genr: Gen, title: &str) -> FieldDef {
    fd(code, api_type, kind, genr, title)
}

fn flag(code: &str, pct: u8, title: &str) -> FieldDef {
    task_field(code, "enum", Kind::YesNo, Gen::YesNo(pct), title)
}

fn int(code: &str, lo: i64, hi: i64, null_pct: u8, title: &str) -> FieldDef {
    task_field(
        code,
        "integer",
        Kind::Int,
        Gen::IntRange(lo, hi, null_pct),
        title,
    )
}

fn datetime(code: &str, genr: Gen, title: &str) -> FieldDef {
    task_field(code, "datetime", Kind::DateTime, genr, title)
}

/// Standard task fields in the order `tasks.task.getFields` lists them.
fn task_fields() -> Vec<FieldDef> {
    let maybe_time = || Gen::Uf(UfGen::DateTime);
    vec![
        task_field("ID", "integer", Kind::Int, Gen::Id, "ID").req(),
        int("PARENT_ID", 0, 40, 0, "Base Task ID"),
        task_field("TITLE", "string", Kind::Str, Gen::Title("Задача"), "Title").req(),
        task_field(
            "DESCRIPTION",
            "string",
            Kind::Str,
            Gen::Phrase(30),
            "Description",
        ),
        // The docs' example prints an empty rating as `""`.
        task_field(
            "MARK",
            "enum",
            Kind::Str,
            Gen::Word(&["", "", "P", "N"], 0),
            "Rating",
        ),
        task_field(
            "PRIORITY",
            "enum",
            Kind::Int,
            Gen::IntRange(0, 2, 0),
            "Priority",
        ),
        task_field(
            "STATUS",
            "enum",
            Kind::Int,
            Gen::IntRange(2, 6, 0),
            "Status",
        ),
        flag("MULTITASK", 10, "Multitask"),
        flag("NOT_VIEWED", 20, ""),
        flag("REPLICATE", 5, "Recurring Task"),
        int("GROUP_ID", 0, 6, 0, "Project"),
        int("STAGE_ID", 0, 4, 0, "Stage"),
        int("SPRINT_ID", 0, 0, 0, "Sprint"),
        int("BACKLOG_ID", 0, 0, 0, "Backlog"),
        task_field("CREATED_BY", "integer", Kind::Int, Gen::User, "Creator").req(),
        datetime("CREATED_DATE", Gen::Created, ""),
        task_field(
            "RESPONSIBLE_ID",
            "integer",
            Kind::Int,
            Gen::User,
            "Participant",
        )
        .req(),
        task_field("ACCOMPLICES", "array", Kind::Int, Gen::Observers, "").multi(),
        task_field("AUDITORS", "array", Kind::Int, Gen::Observers, "").multi(),
        task_field("CHANGED_BY", "integer", Kind::Int, Gen::User, "Modified By"),
        datetime("CHANGED_DATE", Gen::Modified, "Modification Date"),
        task_field(
            "STATUS_CHANGED_BY",
            "integer",
            Kind::Int,
            Gen::User,
            "Status Changed By",
        ),
        datetime("STATUS_CHANGED_DATE", Gen::Moved, "Status Change Date"),
        task_field(
            "CLOSED_BY",
            "integer",
            Kind::Int,
            Gen::Uf(UfGen::Employee),
            "Closed By",
        ),
        datetime("CLOSED_DATE", maybe_time(), "Closure Date"),
        datetime("ACTIVITY_DATE", Gen::Modified, ""),
        datetime("DATE_START", maybe_time(), "Start Date"),
        datetime("DEADLINE", maybe_time(), "Deadline"),
        datetime("START_DATE_PLAN", maybe_time(), "Planned Start"),
        datetime("END_DATE_PLAN", maybe_time(), "Planned Completion"),
        task_field(
            "GUID",
            "string",
            Kind::Str,
            Gen::Word(
                &[
                    "{7B0D3E2A-1C4F-4E8B-9A6D-2F5C8E1B3A7D}",
                    "{0F9E8D7C-6B5A-4938-2716-05F4E3D2C1B0}",
                ],
                0,
            ),
            "GUID",
        ),
        task_field("XML_ID", "string", Kind::Str, Gen::Null, "XML_ID"),
        int("COMMENTS_COUNT", 0, 40, 10, "Number of Comments"),
        int("SERVICE_COMMENTS_COUNT", 0, 8, 0, ""),
        flag("ALLOW_CHANGE_DEADLINE", 50, ""),
        flag("ALLOW_TIME_TRACKING", 60, ""),
        flag("TASK_CONTROL", 30, "Accept Work"),
        flag("ADD_IN_REPORT", 10, "Add to Report"),
        flag("FORKED_BY_TEMPLATE_ID", 5, "Created from Template"),
        int("TIME_ESTIMATE", 0, 36_000, 30, "Estimated Time"),
        int(
            "TIME_SPENT_IN_LOGS",
            0,
            72_000,
            20,
            "Time Spent from Change History",
        ),
        // getFields says `integer`, rows say `Y`/`N` (tasks/fields.md "matchWorkTime").
        task_field(
            "MATCH_WORK_TIME",
            "integer",
            Kind::YesNo,
            Gen::YesNo(40),
            "Skip Weekends",
        ),
        int("FORUM_TOPIC_ID", 1, 9_000, 40, "FORUM_TOPIC_ID"),
        int("FORUM_ID", 11, 11, 0, "FORUM_ID"),
        task_field(
            "SITE_ID",
            "string",
            Kind::Str,
            Gen::Const(Val::Str("s1".into())),
            "SITE_ID",
        ),
        flag("SUBORDINATE", 20, "Subordinate Task"),
        flag("FAVORITE", 10, ""),
        datetime("EXCHANGE_MODIFIED", Gen::Null, "EXCHANGE_MODIFIED"),
        task_field(
            "EXCHANGE_ID",
            "integer",
            Kind::Int,
            Gen::Null,
            "EXCHANGE_ID",
        ),
        int("OUTLOOK_VERSION", 1, 6, 0, "OUTLOOK_VERSION"),
        datetime("VIEWED_DATE", maybe_time(), "Last Viewed Date"),
        task_field(
            "SORTING",
            "double",
            Kind::Float,
            Gen::Uf(UfGen::Double),
            "Sorting Index",
        ),
        int("DURATION_PLAN", 0, 30, 40, "Spent (planned)"),
        int("DURATION_FACT", 0, 30, 40, "Spent (actual)"),
        task_field(
            "DURATION_TYPE",
            "enum",
            Kind::Str,
            Gen::Word(&["days", "hours", "mins"], 0),
            "DURATION_TYPE",
        ),
        flag("IS_MUTED", 5, ""),
        flag("IS_PINNED", 5, ""),
        flag("IS_PINNED_IN_GROUP", 5, ""),
        int("FLOW_ID", 0, 3, 0, "Flow"),
    ]
}

/// User fields every portal's tasks have (`task.item.userfield.getlist`), then one demo user
/// field per value type a task column can take: (code, user type, multiple, label, generator).
fn task_user_fields() -> Vec<(&'static str, &'static str, bool, &'static str, UfGen)> {
    vec![
        ("UF_CRM_TASK", "crm", true, "CRM Entities", UfGen::Crm),
        (
            "UF_TASK_WEBDAV_FILES",
            "disk_file",
            true,
            "Upload Files",
            UfGen::Iblock,
        ),
        ("UF_MAIL_MESSAGE", "mail_message", false, "", UfGen::Rest),
        (
            "UF_AUTO_280393876337",
            "string",
            false,
            "Клиент 📝",
            UfGen::Str,
        ),
        (
            "UF_AUTO_512873470211",
            "double",
            false,
            "Budget <h>",
            UfGen::Double,
        ),
        (
            "UF_AUTO_731246540987",
            "boolean",
            false,
            "Billable",
            UfGen::Bool,
        ),
        (
            "UF_AUTO_902315648712",
            "date",
            false,
            "Дата акта",
            UfGen::Date,
        ),
        (
            "UF_AUTO_118273645509",
            "datetime",
            false,
            "Reviewed at",
            UfGen::DateTime,
        ),
        (
            "UF_AUTO_440918273645",
            "enumeration",
            true,
            "Тип 'работ'",
            UfGen::Enum,
        ),
        (
            "UF_AUTO_650193847261",
            "integer",
            false,
            "Story points",
            UfGen::Int,
        ),
    ]
}

impl PortalData {
    /// Adds the tables of tasks.
    pub(crate) fn add_work_tables(&mut self, sizes: &DataSizes) {
        self.insert_lazy("task", TableKind::Task, None, task_fields(), sizes.tasks);
        for (code, user_type, multiple, label, genr) in task_user_fields() {
            let added = self.add_user_field(
                "task",
                "",
                user_type,
                multiple,
                label,
                genr,
                Some(code.to_string()),
            );
            // The mail binding is empty on a demo portal: a mail message is a mailbox's.
            if code == "UF_MAIL_MESSAGE"
                && added.is_some()
                && let Some(f) = self
                    .tables
                    .get_mut("task")
                    .and_then(|t| t.fields.iter_mut().find(|f| f.code == code))
            {
                f.genr = Gen::Null;
            }
        }
    }
}
