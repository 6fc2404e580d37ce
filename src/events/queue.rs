//! The portal's offline event queue: `event.bind` / `event.get`, `event.offline.get` with a
//! `process_id` lease, `event.offline.clear` (docs: api-reference/events/*.md; behaviour of
//! the lease from `rest/lib/api/event.php`, see docs/bitrix24-api.md §7).
use super::EventsError;
use crate::bitrix::{Batch, BitrixError, Client};
use serde_json::{Value, json};

/// One queued record.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineEvent {
    pub name: String,
    /// `EVENT_DATA`: `{"FIELDS": {"ID": …}}`, or `false` on portals that keep no data.
    pub data: Value,
    pub message_id: String,
    /// `TIMESTAMP_X` in unix seconds, where it is RFC 3339 as the docs show; used only to
    /// size the next read's pages, never to decide what is written.
    pub at: Option<f64>,
}

/// What one `event.offline.get` returned.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineBatch {
    /// The lease these records are held under (with `clear=0` the portal always names one).
    pub process_id: String,
    pub events: Vec<OfflineEvent>,
}

/// What [`bind`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BindReport {
    pub bound: Vec<String>,
    pub already: Vec<String>,
    /// Events this portal does not know (`ERROR_EVENT_NOT_FOUND`): those entities stay on
    /// their scheduled loads.
    pub unknown: Vec<String>,
}

/// Binds every name as an offline event that is not bound yet.
pub async fn bind(client: &Client, names: &[String]) -> Result<BindReport, BitrixError> {
    let have = client.call("event.get", &json!({})).await?;
    let bound_now: Vec<String> = have
        .result
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| h.get("offline").and_then(as_int) == Some(1))
        .filter_map(|h| h.get("event").and_then(Value::as_str))
        .map(str::to_ascii_uppercase)
        .collect();
    let mut report = BindReport::default();
    for name in names {
        if bound_now.contains(name) {
            report.already.push(name.clone());
            continue;
        }
        match client
            .call(
                "event.bind",
                &json!({"event": name, "event_type": "offline"}),
            )
            .await
        {
            Ok(_) => report.bound.push(name.clone()),
            Err(e) if e.code() == Some("ERROR_EVENT_NOT_FOUND") => {
                tracing::warn!(event = %name, "the portal does not know this event; its entity stays on scheduled loads");
                report.unknown.push(name.clone());
            }
            Err(e) => return Err(e),
        }
    }
    Ok(report)
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Leases up to `limit` records (`clear=0`), or, with `process_id`, reads again the records
/// already leased to it.
pub async fn read(
    client: &Client,
    process_id: Option<&str>,
    limit: u32,
) -> Result<OfflineBatch, EventsError> {
    let resp = client
        .call("event.offline.get", &read_params(process_id, limit))
        .await?;
    parse(&resp.result, process_id)
}

fn read_params(process_id: Option<&str>, limit: u32) -> Value {
    let mut params = json!({"clear": 0, "limit": limit});
    if let Some(p) = process_id {
        params["process_id"] = json!(p);
    }
    params
}

/// A new lease of up to `limit` records, as command `name` of a batch.
pub fn push_read(batch: &mut Batch, name: &str, limit: u32) -> Result<(), BitrixError> {
    batch.push(name, "event.offline.get", read_params(None, limit))
}

/// The clear of lease `process_id`, as command `name` of a batch.
pub fn push_clear(batch: &mut Batch, name: &str, process_id: &str) -> Result<(), BitrixError> {
    batch.push(
        name,
        "event.offline.clear",
        json!({"process_id": process_id}),
    )
}

/// The lease a batch's `event.offline.get` command returned.
pub fn parse_read(result: &Value) -> Result<OfflineBatch, EventsError> {
    parse(result, None)
}

fn parse(result: &Value, asked: Option<&str>) -> Result<OfflineBatch, EventsError> {
    let process_id = match (result.get("process_id"), asked) {
        (Some(Value::String(p)), _) if !p.is_empty() => p.clone(),
        (_, Some(p)) => p.to_string(),
        _ => {
            return Err(EventsError::Malformed(
                "no process_id with clear=0 (does the plan have rest_offline_extended?)".into(),
            ));
        }
    };
    let Some(list) = result.get("events").and_then(Value::as_array) else {
        return Err(EventsError::Malformed("`events` is not a list".into()));
    };
    let mut events = Vec::with_capacity(list.len());
    for e in list {
        let (Some(name), Some(message_id)) = (
            e.get("EVENT_NAME").and_then(Value::as_str),
            e.get("MESSAGE_ID").and_then(|m| match m {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }),
        ) else {
            return Err(EventsError::Malformed(
                "a record without EVENT_NAME or MESSAGE_ID".into(),
            ));
        };
        events.push(OfflineEvent {
            name: name.to_string(),
            data: e.get("EVENT_DATA").cloned().unwrap_or(Value::Null),
            message_id,
            at: e
                .get("TIMESTAMP_X")
                .and_then(Value::as_str)
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp() as f64),
        });
    }
    Ok(OfflineBatch { process_id, events })
}

/// The leases held in the queue: the `process_id`s of leased records on the first page of
/// `event.offline.list` (oldest first), set-aside records left out. The filter only narrows
/// the page; each record is checked here, so a portal that ignores it costs nothing but reach.
pub async fn leases(client: &Client) -> Result<std::collections::BTreeSet<String>, BitrixError> {
    let resp = client
        .call(
            "event.offline.list",
            &json!({"filter": {"!PROCESS_ID": ""}, "order": {"ID": "ASC"}}),
        )
        .await?;
    Ok(lease_ids(&resp.result))
}

fn lease_ids(result: &Value) -> std::collections::BTreeSet<String> {
    result
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| !r.get("ERROR").is_some_and(is_set))
        .filter_map(|r| r.get("PROCESS_ID").and_then(Value::as_str))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// A flag as the portal may spell it: `1`, `"1"`, `"Y"`, `true`.
fn is_set(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_i64().is_some_and(|i| i != 0),
        Value::String(s) => crate::schema::parse::parse_bool_text(s) == Some(true),
        _ => false,
    }
}

/// Deletes every record leased to `process_id`.
pub async fn clear(client: &Client, process_id: &str) -> Result<(), BitrixError> {
    client
        .call("event.offline.clear", &json!({"process_id": process_id}))
        .await
        .map(drop)
}

/// Sets records of the lease aside as failed (`event.offline.error`): the portal keeps them,
/// marked, out of every later lease (`event.offline.get` with `error=1` lists them), and
/// `event.offline.clear` of the lease leaves them.
pub async fn mark_error(
    client: &Client,
    process_id: &str,
    message_ids: &[String],
) -> Result<(), BitrixError> {
    client
        .call(
            "event.offline.error",
            &json!({"process_id": process_id, "message_id": message_ids}),
        )
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_the_process_ids_of_leased_records_not_set_aside() {
        let page = json!([
            {"ID": "1", "PROCESS_ID": "a", "ERROR": "0"},
            {"ID": "2", "PROCESS_ID": "a", "ERROR": 0},
            {"ID": "3", "PROCESS_ID": "", "ERROR": "0"},
            {"ID": "4", "PROCESS_ID": "b", "ERROR": "1"},
            {"ID": "5", "PROCESS_ID": " c "},
            {"ID": "6", "PROCESS_ID": "d", "ERROR": "Y"}
        ]);
        let ids: Vec<String> = lease_ids(&page).into_iter().collect();
        assert_eq!(ids, ["a", "c"]);
        assert!(lease_ids(&json!({"error": "x"})).is_empty());
    }

    #[test]
    fn parses_the_docs_fixture_shape() {
        let fixture: Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/bitrix24/event.offline.get.json"
        ))
        .unwrap();
        // The docs' example was taken with clear=1 (process_id null): a caller that asked for
        // a lease must be told.
        assert!(matches!(
            parse(&fixture["result"], None),
            Err(EventsError::Malformed(_))
        ));
        let b = parse(&fixture["result"], Some("p")).unwrap();
        assert_eq!(b.events.len(), 1);
        assert_eq!(b.events[0].name, "ONCRMLEADADD");
        assert_eq!(b.events[0].data, Value::Bool(false));
        assert_eq!(b.events[0].message_id, "1");
        // 2024-07-18T12:32:31+02:00
        assert_eq!(b.events[0].at, Some(1_721_298_751.0));
    }
}
