//! The portal beyond CRM: tasks (and their user fields), call records, workgroups. Field codes, types and titles follow
//! `tasks.task.getFields` and tasks/fields.md of the official docs; rows are printed by
//! `methods/tasks.rs`.

use super::config::DataSizes;
use super::fields::fd;
use super::json_out::J;
use super::model::{FieldDef, Gen, Kind, PortalData, Table, TableKind, UfGen, Val};

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
        task_field("STAGE_ID", "integer", Kind::Int, Gen::GroupStage, "Stage"),
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

/// Append-only tables are dated by an event that precedes the row: a call record is written
/// when the call ends and dated by its start. Rows added now carry that time: (field, seconds
/// before now).
pub(crate) fn appended_time(t: &Table) -> Option<(&'static str, i64)> {
    match t.kind {
        TableKind::Call => Some(("CALL_START_DATE", 3 * 3_600)),
        _ => None,
    }
}

fn plain(code: &str, api_type: &str, kind: Kind, genr: Gen) -> FieldDef {
    fd(code, api_type, kind, genr, code)
}

/// `voximplant.statistic.get` rows, in the docs' example order (voximplant-statistic-get.md).
fn call_fields() -> Vec<FieldDef> {
    let words = |w: &'static [&'static str], null_pct: u8| Gen::Word(w, null_pct);
    vec![
        plain("ID", "integer", Kind::Int, Gen::Id),
        plain("PORTAL_USER_ID", "integer", Kind::Int, Gen::User),
        plain(
            "PORTAL_NUMBER",
            "string",
            Kind::Str,
            words(&["reg133788", "3", "+74951234567"], 0),
        ),
        plain(
            "PHONE_NUMBER",
            "string",
            Kind::Str,
            words(&["+19061234567", "19061234568", "+7 (999) 000-11-22"], 0),
        ),
        plain("CALL_ID", "string", Kind::Str, Gen::Title("externalCall")),
        plain("EXTERNAL_CALL_ID", "string", Kind::Str, Gen::Null),
        plain(
            "CALL_CATEGORY",
            "string",
            Kind::Str,
            words(&["external"], 0),
        ),
        plain(
            "CALL_LOG",
            "string",
            Kind::Str,
            words(
                &["https://storage-gw.example.com/voximplant-logs/x.log?sessionid=1&a=<b>"],
                50,
            ),
        ),
        plain(
            "CALL_DURATION",
            "integer",
            Kind::Int,
            Gen::IntRange(0, 1_800, 0),
        ),
        plain("CALL_START_DATE", "datetime", Kind::DateTime, Gen::Created),
        plain(
            "CALL_RECORD_URL",
            "string",
            Kind::Str,
            words(&["", "https://example.com/rec/1.mp3"], 40),
        ),
        plain("CALL_VOTE", "integer", Kind::Int, Gen::IntRange(0, 5, 50)),
        plain("COST", "double", Kind::Float, Gen::Uf(UfGen::Double)),
        plain(
            "COST_CURRENCY",
            "string",
            Kind::Str,
            words(&["EUR", "RUB", ""], 0),
        ),
        plain(
            "CALL_FAILED_CODE",
            "string",
            Kind::Str,
            words(&["200", "200", "200", "304", "603", "603-S", "486"], 0),
        ),
        plain(
            "CALL_FAILED_REASON",
            "string",
            Kind::Str,
            words(&["", "Decline self", "Success call"], 0),
        ),
        plain(
            "CRM_ENTITY_TYPE",
            "string",
            Kind::Str,
            words(&["CONTACT", "COMPANY", "LEAD"], 20),
        ),
        plain(
            "CRM_ENTITY_ID",
            "integer",
            Kind::Int,
            Gen::IntRange(1, 30, 20),
        ),
        plain(
            "CRM_ACTIVITY_ID",
            "integer",
            Kind::Int,
            Gen::IntRange(1, 300, 30),
        ),
        plain("REST_APP_ID", "integer", Kind::Int, Gen::IntRange(3, 3, 70)),
        plain(
            "REST_APP_NAME",
            "string",
            Kind::Str,
            words(&["REST API Documentation"], 70),
        ),
        plain(
            "TRANSCRIPT_ID",
            "integer",
            Kind::Int,
            Gen::IntRange(1, 100, 80),
        ),
        plain("TRANSCRIPT_PENDING", "string", Kind::YesNo, Gen::YesNo(5)),
        plain(
            "SESSION_ID",
            "integer",
            Kind::Int,
            Gen::IntRange(3_800_000_000, 3_900_000_000, 30),
        ),
        plain("REDIAL_ATTEMPT", "integer", Kind::Int, Gen::Null),
        plain("COMMENT", "string", Kind::Str, Gen::Phrase(80)),
        plain(
            "RECORD_DURATION",
            "integer",
            Kind::Int,
            Gen::IntRange(0, 1_800, 60),
        ),
        // The docs' example prints this one as a JSON number (`"RECORD_FILE_ID": 9079`).
        plain(
            "RECORD_FILE_ID",
            "integer",
            Kind::Int,
            Gen::IntRange(9_000, 9_999, 60),
        ),
        plain("CALL_TYPE", "integer", Kind::Int, Gen::IntRange(1, 5, 0)),
    ]
}

/// `task.elapseditem.getlist` rows (task-elapsed-item-get-list.md), spread over the tasks.
fn elapsed_fields(tasks: u64) -> Vec<FieldDef> {
    let tasks = i64::try_from(tasks.max(1)).unwrap_or(i64::MAX);
    vec![
        plain("ID", "integer", Kind::Int, Gen::Id),
        plain("TASK_ID", "integer", Kind::Int, Gen::IntRange(1, tasks, 0)),
        plain("USER_ID", "integer", Kind::Int, Gen::User),
        plain("COMMENT_TEXT", "string", Kind::Str, Gen::Phrase(30)),
        plain("SECONDS", "integer", Kind::Int, Gen::IntRange(0, 28_800, 0)),
        plain("MINUTES", "integer", Kind::Int, Gen::IntRange(0, 480, 0)),
        plain("SOURCE", "integer", Kind::Int, Gen::IntRange(1, 3, 0)),
        plain("CREATED_DATE", "datetime", Kind::DateTime, Gen::Created),
        plain(
            "DATE_START",
            "datetime",
            Kind::DateTime,
            Gen::Uf(UfGen::DateTime),
        ),
        plain(
            "DATE_STOP",
            "datetime",
            Kind::DateTime,
            Gen::Uf(UfGen::DateTime),
        ),
    ]
}

/// `sonet_group.get` rows, in the docs' example order (sonet-group-get.md); `IMAGE` is printed
/// only for a group with an avatar.
fn workgroup_fields() -> Vec<FieldDef> {
    let flag = |code: &str, pct: u8| plain(code, "string", Kind::YesNo, Gen::YesNo(pct));
    vec![
        plain("ID", "integer", Kind::Int, Gen::Id),
        plain(
            "SITE_ID",
            "string",
            Kind::Str,
            Gen::Const(Val::Str("s1".into())),
        ),
        plain("NAME", "string", Kind::Str, Gen::Title("Проект")),
        plain("DESCRIPTION", "string", Kind::Str, Gen::Phrase(50)),
        plain("DATE_CREATE", "datetime", Kind::DateTime, Gen::Created),
        plain("DATE_UPDATE", "datetime", Kind::DateTime, Gen::Modified),
        flag("ACTIVE", 90),
        flag("VISIBLE", 70),
        flag("OPENED", 30),
        flag("CLOSED", 10),
        plain("SUBJECT_ID", "integer", Kind::Int, Gen::IntRange(1, 2, 0)),
        plain("OWNER_ID", "integer", Kind::Int, Gen::User),
        plain(
            "KEYWORDS",
            "string",
            Kind::Str,
            Gen::Word(&["sales, q3", "scrum"], 60),
        ),
        plain(
            "NUMBER_OF_MEMBERS",
            "integer",
            Kind::Int,
            Gen::IntRange(1, 40, 0),
        ),
        plain("DATE_ACTIVITY", "datetime", Kind::DateTime, Gen::Modified),
        plain(
            "SUBJECT_NAME",
            "string",
            Kind::Str,
            Gen::Word(&["Workgroups", "Рабочие группы"], 0),
        ),
        flag("PROJECT", 60),
        flag("IS_EXTRANET", 10),
        plain(
            "IMAGE",
            "string",
            Kind::Str,
            Gen::Word(&["/upload/resize_cache/socialnetwork/1.png"], 70),
        ),
    ]
}

/// `task.stages.get` rows (task-stages-get.md): id, title, sort, color, system type, group.
fn stage_fields() -> Vec<FieldDef> {
    vec![
        plain("ID", "integer", Kind::Int, Gen::Null),
        plain("TITLE", "string", Kind::Str, Gen::Null),
        plain("SORT", "integer", Kind::Int, Gen::Null),
        plain("COLOR", "string", Kind::Str, Gen::Null),
        plain("SYSTEM_TYPE", "string", Kind::Str, Gen::Null),
        plain("ENTITY_ID", "integer", Kind::Int, Gen::Null),
        plain("ENTITY_TYPE", "string", Kind::Str, Gen::Null),
    ]
}

/// The Kanban columns every new group gets, the first one the system's `NEW`.
pub(crate) const GROUP_STAGES: &[(&str, &str, Option<&str>)] = &[
    ("New", "00C4FB", Some("NEW")),
    ("В работе", "47D1E2", Some("PROGRESS")),
    ("Review \"QA\"", "FFA900", None),
    ("Done ✅", "75D900", Some("FINISH")),
];

impl PortalData {
    /// Rows that go with deleted ones: a deleted workgroup takes its Kanban stages along.
    pub(crate) fn delete_dependents(&mut self, table: &str, ids: &[u64]) {
        if table != "workgroup" {
            return;
        }
        let Some(t) = self.tables.get("task_stage") else {
            return;
        };
        let Some(owner) = t.field("ENTITY_ID") else {
            return;
        };
        let gone: Vec<u64> = t
            .ids()
            .filter(|id| {
                self.value(t, *id, owner)
                    .as_i64()
                    .and_then(|g| u64::try_from(g).ok())
                    .is_some_and(|g| ids.contains(&g))
            })
            .collect();
        if let Some(t) = self.tables.get_mut("task_stage") {
            for id in gone {
                t.delete(id);
            }
        }
    }

    /// Kanban stages of groups `1..=groups` (a materialized table: ids in creation order).
    fn add_group_stages(&mut self, groups: u64) {
        self.insert_materialized("task_stage", TableKind::TaskStage, stage_fields());
        for g in 1..=groups {
            for (i, (title, color, system)) in GROUP_STAGES.iter().enumerate() {
                let id = self.tables.get("task_stage").map_or(0, |t| t.max_id) + 1;
                self.push_row(
                    "task_stage",
                    vec![
                        Val::Int(i64::try_from(id).unwrap_or(0)),
                        Val::Str((*title).to_string()),
                        Val::Int((i as i64 + 1) * 100),
                        Val::Str((*color).to_string()),
                        system.map_or(Val::Null, |s| Val::Str(s.to_string())),
                        Val::Int(i64::try_from(g).unwrap_or(0)),
                        Val::Str("G".into()),
                    ],
                );
            }
        }
    }
}

impl PortalData {
    /// Adds the tables of tasks, calls and workgroups.
    pub(crate) fn add_work_tables(&mut self, sizes: &DataSizes) {
        self.insert_lazy(
            "workgroup",
            TableKind::Workgroup,
            None,
            workgroup_fields(),
            sizes.workgroups,
        );
        self.add_group_stages(sizes.workgroups);
        self.insert_lazy(
            "telephony_call",
            TableKind::Call,
            None,
            call_fields(),
            sizes.calls,
        );
        self.insert_lazy("task", TableKind::Task, None, task_fields(), sizes.tasks);
        self.insert_lazy(
            "task_elapsed_time",
            TableKind::TaskElapsed,
            None,
            elapsed_fields(sizes.tasks),
            sizes.task_elapsed,
        );
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
