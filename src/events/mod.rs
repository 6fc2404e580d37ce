//! Bitrix24 events as a change feed: changes reach ClickHouse within seconds instead of at
//! the next scheduled load, and deletions without an ID scan.
//!
//! Two ways in, one path:
//! - **offline events** (an OAuth app): [`queue`] binds `ONCRM…ADD|UPDATE|DELETE` for the
//!   loaded entities and reads the portal's queue with `event.offline.get` (`clear=0`, a
//!   `process_id` lease); [`feed::Feed`] applies a batch and clears it only after the changes
//!   are in ClickHouse (at-least-once). The lease's `process_id` is written to the state
//!   directory before the batch is applied, so a b24ch killed in between reads the same
//!   records again at its next start (`event.offline.get` with that `process_id` returns them):
//!   nothing is lost, and applying a change twice is harmless (`ReplacingMergeTree`);
//! - **online events** (`POST /v1/events`, from an app's handler binding or an outgoing
//!   webhook): [`online`] checks `auth.application_token` in constant time and queues the
//!   change for the same [`sink::Sink`].
//!
//! [`sink::Sink`] turns changes into ClickHouse writes: a deletion becomes a tombstone at once;
//! changed rows are inserted (push) — read in the same request as the queue where their
//! entity changed lately ([`feed`]), else fetched by their ids (one filtered listing per 2,500
//! ids) — or, where ClickHouse pulls, the entity's load view is refreshed and waited for.
//! A record without an id (a portal whose queue keeps no event data) falls back to an
//! incremental load, or a reconcile for deletions. Scheduled loads and the ID reconcile stay
//! as the safety net, at a lower frequency (`[entities.*] schedule`, `reconcile_schedule`).
pub mod feed;
pub mod online;
mod orphans;
mod pace;
pub mod queue;
pub mod sink;

use crate::bitrix::methods::{DYNAMIC_ITEM_EVENTS, ENTITY_EVENTS};
use serde_json::Value;

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// Added or updated: read the row again.
    Upsert,
    Delete,
}

/// One change announced by an event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notice {
    /// b24ch entity (`crm_deal`, `crm_dynamic_128`).
    pub entity: String,
    pub kind: ChangeKind,
    /// The row's id; `None` when the event did not say (the whole entity is looked at).
    pub id: Option<u64>,
}

/// Errors of the change feed.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error(transparent)]
    Bitrix(#[from] crate::bitrix::BitrixError),
    #[error(transparent)]
    ClickHouse(#[from] crate::clickhouse::ClickHouseError),
    #[error(transparent)]
    Sync(#[from] crate::sync::SyncError),
    #[error(transparent)]
    Pipeline(#[from] crate::pipeline::PipelineError),
    /// The portal answered something the feed cannot read; nothing is cleared.
    #[error(
        "event.offline.get answered an unexpected shape: {0}; nothing was cleared, the records stay in the portal's queue"
    )]
    Malformed(String),
    #[error("cannot keep the event lease in the state directory ({path}): {message}")]
    State { path: String, message: String },
    #[error("the ClickHouse load view {view} did not refresh: {message}")]
    Refresh { view: String, message: String },
}

impl EventsError {
    /// Whether applying the same records again cannot help: the portal refuses their entity
    /// for a reason that stays (rights, a method or type that is gone, a request it rejects),
    /// or their rows cannot be encoded. An outage (network, limits, ClickHouse) is waited out
    /// instead, with the lease kept.
    pub fn keeps_failing(&self) -> bool {
        use crate::bitrix::{BitrixError, ErrorClass as C};
        use crate::pipeline::PipelineError;
        use crate::sync::SyncError;
        let refused = |e: &BitrixError| {
            matches!(
                e.class(),
                C::AccessDenied | C::NotFound | C::MethodNotFound | C::Unsupported | C::BadRequest
            )
        };
        match self {
            EventsError::Bitrix(e)
            | EventsError::Pipeline(PipelineError::Bitrix(e))
            | EventsError::Sync(SyncError::Pipeline(PipelineError::Bitrix(e))) => refused(e),
            EventsError::Pipeline(PipelineError::UnknownMethod { .. })
            | EventsError::Sync(SyncError::Pipeline(PipelineError::UnknownMethod { .. }))
            | EventsError::Sync(SyncError::Encode(_)) => true,
            _ => false,
        }
    }
}

/// The event names of every enabled entity of the catalog.
pub fn names_to_bind(
    config: &crate::config::Config,
    catalog: &crate::catalog::Catalog,
) -> Vec<String> {
    catalog
        .entities
        .iter()
        .filter(|e| config.entity(&e.name).enabled)
        .flat_map(|e| event_names(&e.name))
        .collect()
}

fn change_of(suffix: &str) -> Option<ChangeKind> {
    match suffix {
        "ADD" | "UPDATE" => Some(ChangeKind::Upsert),
        "DELETE" => Some(ChangeKind::Delete),
        _ => None,
    }
}

/// The change an event announces, or `None` for events that are not row changes of an
/// entity b24ch knows (they are cleared and ignored).
pub fn classify(event: &str, data: &Value) -> Option<Notice> {
    let name = event.to_ascii_uppercase();
    let fields = data.get("FIELDS").or_else(|| data.get("fields"));
    let id = event_row_id(data);
    if let Some(rest) = name.strip_prefix(DYNAMIC_ITEM_EVENTS) {
        let (change, etid) = match rest.split_once('_') {
            Some((c, t)) => (c, t.parse::<u32>().ok()),
            None => (rest, None),
        };
        let etid = etid.or_else(|| {
            fields
                .and_then(|f| f.get("ENTITY_TYPE_ID").or_else(|| f.get("entityTypeId")))
                .and_then(as_id)
                .and_then(|e| u32::try_from(e).ok())
        })?;
        return Some(Notice {
            entity: format!("crm_dynamic_{etid}"),
            kind: change_of(change)?,
            id,
        });
    }
    ENTITY_EVENTS.iter().find_map(|(entity, prefix)| {
        let kind = change_of(name.strip_prefix(prefix)?)?;
        Some(Notice {
            entity: (*entity).to_string(),
            kind,
            id,
        })
    })
}

/// The row id an event's data names, in any shape the docs show: `FIELDS.ID` (CRM), task
/// events' `FIELDS_AFTER.ID` / `FIELDS_BEFORE.ID` (the other side is the string
/// `"undefined"`), or a bare `ID` (the timeline comment pages).
fn event_row_id(data: &Value) -> Option<u64> {
    let id_in = |v: &Value| v.get("ID").or_else(|| v.get("id")).and_then(as_id);
    ["FIELDS", "fields", "FIELDS_AFTER", "FIELDS_BEFORE"]
        .iter()
        .filter_map(|k| data.get(k))
        .find_map(id_in)
        .or_else(|| id_in(data))
}

/// An id as events carry it: `"42"` or `42`.
fn as_id(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The events to bind for an entity (none for entities without change events).
pub fn event_names(entity: &str) -> Vec<String> {
    let changes = ["ADD", "UPDATE", "DELETE"];
    if let Some(etid) = entity
        .strip_prefix("crm_dynamic_")
        .and_then(|e| e.parse::<u32>().ok())
    {
        return changes
            .iter()
            .map(|c| format!("{DYNAMIC_ITEM_EVENTS}{c}_{etid}"))
            .collect();
    }
    ENTITY_EVENTS
        .iter()
        .find(|(e, _)| *e == entity)
        .map(|(_, p)| changes.iter().map(|c| format!("{p}{c}")).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classifies_crm_and_smart_process_events() {
        let n = classify("onCrmDealUpdate", &json!({"FIELDS": {"ID": "759"}})).unwrap();
        assert_eq!(
            (n.entity.as_str(), n.kind, n.id),
            ("crm_deal", ChangeKind::Upsert, Some(759))
        );
        let n = classify("ONCRMLEADDELETE", &json!({"FIELDS": {"ID": 3}})).unwrap();
        assert_eq!(
            (n.entity.as_str(), n.kind, n.id),
            ("crm_lead", ChangeKind::Delete, Some(3))
        );
        let n = classify("ONCRMDYNAMICITEMADD_128", &json!(false)).unwrap();
        assert_eq!((n.entity.as_str(), n.id), ("crm_dynamic_128", None));
        let n = classify(
            "ONCRMDYNAMICITEMDELETE",
            &json!({"FIELDS": {"ID": 4, "ENTITY_TYPE_ID": 130}}),
        )
        .unwrap();
        assert_eq!(
            (n.entity.as_str(), n.kind, n.id),
            ("crm_dynamic_130", ChangeKind::Delete, Some(4))
        );
        assert!(classify("ONCRMDYNAMICITEMDELETE", &json!({"FIELDS": {"ID": 4}})).is_none());
        assert!(classify("ONCRMDEALMOVETOCATEGORY", &json!({})).is_none());
        assert!(classify("ONUSERADD", &json!({})).is_none());
    }

    #[test]
    fn classifies_second_wave_events_in_their_documented_shapes() {
        // docs: api-reference/tasks/events-tasks/on-task-{add,update,delete}.md
        let add = json!({"FIELDS_BEFORE": "undefined", "FIELDS_AFTER": {"ID": 123},
            "IS_ACCESSIBLE_BEFORE": "N", "IS_ACCESSIBLE_AFTER": "undefined"});
        let del = json!({"FIELDS_BEFORE": {"ID": 123}, "FIELDS_AFTER": "undefined",
            "IS_ACCESSIBLE_BEFORE": "undefined", "IS_ACCESSIBLE_AFTER": "N"});
        for (event, data, kind) in [
            ("ONTASKADD", &add, ChangeKind::Upsert),
            ("OnTaskUpdate", &add, ChangeKind::Upsert),
            ("ONTASKDELETE", &del, ChangeKind::Delete),
        ] {
            let n = classify(event, data).unwrap();
            assert_eq!((n.entity.as_str(), n.kind, n.id), ("task", kind, Some(123)));
        }
        // crm/quote/events/on-crm-quote-update.md; products keep the CRM shape.
        let n = classify("ONCRMQUOTEUPDATE", &json!({"FIELDS": {"ID": "71"}})).unwrap();
        assert_eq!((n.entity.as_str(), n.id), ("crm_quote", Some(71)));
        let n = classify("ONCRMPRODUCTDELETE", &json!({"FIELDS": {"ID": "5"}})).unwrap();
        assert_eq!(
            (n.entity.as_str(), n.kind, n.id),
            ("crm_product", ChangeKind::Delete, Some(5))
        );
        // A bare `ID`, as the timeline comment pages show.
        assert_eq!(event_row_id(&json!({"ID": 999})), Some(999));
        // Other events of the same prefixes are not row changes of these tables.
        assert!(classify("ONCRMPRODUCTSECTIONADD", &json!({"FIELDS": {"ID": 1}})).is_none());
        assert!(classify("ONTASKCOMMENTADD", &json!({"FIELDS_AFTER": {"ID": 1}})).is_none());
    }

    #[test]
    fn config_refuses_offline_events_on_a_webhook_and_short_tokens() {
        let hook = "[portal]\nwebhook_url = \"https://x.bitrix24.com/rest/1/abcdefgh12345678/\"\n";
        let e =
            crate::config::from_toml_str(&format!("{hook}[events]\noffline = true\n")).unwrap_err();
        assert!(e.to_string().contains("events.offline"), "{e}");
        let e = crate::config::from_toml_str(&format!(
            "{hook}[events]\napplication_token = \"short\"\n"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("events.application_token"), "{e}");
        assert!(
            !e.to_string().contains("short\""),
            "the value is not echoed: {e}"
        );
        let ok = crate::config::from_toml_str(&format!(
            "{hook}[events]\napplication_token = \"0123456789abcdef0123\"\n"
        ))
        .unwrap();
        assert!(
            ok.secrets()
                .iter()
                .any(|s| s.expose() == "0123456789abcdef0123"),
            "redacted like the other secrets"
        );
        assert_eq!(ok.events.poll_interval.as_duration().as_secs(), 5);
        assert_eq!(ok.events.max_delay.as_duration().as_secs(), 14);
        let e = crate::config::from_toml_str(&format!(
            "{hook}[events]\npoll_interval = \"20 SECOND\"\n"
        ))
        .unwrap_err();
        assert!(
            e.to_string().contains("events.max_delay"),
            "a longest wait under the shortest is refused: {e}"
        );
    }

    #[test]
    fn names_to_bind() {
        assert_eq!(
            event_names("crm_deal"),
            ["ONCRMDEALADD", "ONCRMDEALUPDATE", "ONCRMDEALDELETE"]
        );
        assert_eq!(
            event_names("crm_dynamic_128")[2],
            "ONCRMDYNAMICITEMDELETE_128"
        );
        assert_eq!(
            event_names("task"),
            ["ONTASKADD", "ONTASKUPDATE", "ONTASKDELETE"]
        );
        assert!(event_names("user").is_empty());
    }
}
