//! Events: bound handlers, the offline queue and the outbox of online events, fed by changes
//! to portal rows. The event methods (`event.bind` / `event.unbind` / `event.get`,
//! `event.offline.get|clear|error|list`) are in `methods/events.rs`; the POSTs of online events
//! to handler URLs in `running.rs`.
//!
//! Modelled on the REST module's own code (`rest/lib/api/event.php`, `rest/lib/eventoffline.php`)
//! and the docs (`api-reference/events/*.md`):
//! - the queue keeps **one record per object and event** (`MESSAGE_ID` = hash of the event
//!   name and data, merged on `(MESSAGE_ID, CONNECTOR_ID, PROCESS_ID)`): a change to an object
//!   whose record is waiting updates that record's time; a change while its record is leased
//!   by a reader (`PROCESS_ID` set) adds a new record, so nothing is lost between a read and
//!   its `event.offline.clear`;
//! - online events are POSTed once to each bound handler; a failed delivery is not retried
//!   ("Bitrix24 does not resend an event if the handler did not respond").
//!
//! Where real portals may differ, [`EventSettings`] switches: whether a queued record carries
//! the event data (`EVENT_DATA: {"FIELDS": {"ID": …}}`) or `false` as in the docs' example, how
//! online events are encoded (form fields as PHP's `http_build_query`, or JSON), and whether
//! the plan has `rest_offline_extended`.
use std::hash::Hasher;

use serde::{Deserialize, Serialize};
use serde_json::{Value as SJ, json};

use super::model::PortalData;

/// Whether a queued record carries its event's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfflineEventData {
    /// `EVENT_DATA: {"FIELDS": {"ID": "42"}}`, `EVENT_ADDITIONAL: {"user_id": "1"}` (what the
    /// module stores: the serialized event parameters).
    #[default]
    Fields,
    /// `EVENT_DATA: false`, `EVENT_ADDITIONAL: false`, as in the docs' example
    /// (`event.offline.get.json` fixture): the reader learns only which kind of object changed.
    Empty,
}

/// How a queue record's `TIMESTAMP_X` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfflineTimestamp {
    /// RFC 3339 with the portal's offset, as in the docs' example (`2024-07-18T12:32:31+02:00`).
    #[default]
    Iso,
    /// The site's own format, without an offset (`18.07.2024 12:32:31`): the docs do not
    /// promise the ISO form for this method.
    Site,
}

/// How an online event is encoded in the POST to the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnlineFormat {
    /// `application/x-www-form-urlencoded`, nested keys `data[FIELDS][ID]` (PHP).
    #[default]
    Form,
    /// `application/json`, as the docs print the payload.
    Json,
}

/// The event switches in force (control API `/_control/events/settings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSettings {
    pub offline_event_data: OfflineEventData,
    pub online_format: OnlineFormat,
    /// The plan feature `rest_offline_extended` (`clear=0` and `process_id`).
    pub offline_extended: bool,
    #[serde(default)]
    pub offline_timestamp: OfflineTimestamp,
    /// Whether `event.offline.list` applies its `filter`; off, it lists every record (a module
    /// whose filter sanitizing drops the condition).
    #[serde(default = "yes")]
    pub offline_list_filter: bool,
}

fn yes() -> bool {
    true
}

impl Default for EventSettings {
    fn default() -> Self {
        EventSettings {
            offline_event_data: OfflineEventData::default(),
            online_format: OnlineFormat::default(),
            offline_extended: true,
            offline_timestamp: OfflineTimestamp::default(),
            offline_list_filter: true,
        }
    }
}

/// A bound handler.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Handler {
    pub id: u64,
    pub event: String,
    /// Handler URL; empty for an offline binding.
    pub handler: String,
    pub auth_type: u64,
    pub offline: bool,
    pub connector_id: String,
}

/// One record of the offline queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OfflineRecord {
    pub id: u64,
    /// Portal time of the latest change (unix seconds).
    pub ts: f64,
    pub event_name: String,
    pub event_data: SJ,
    pub message_id: String,
    /// Empty: not leased.
    pub process_id: String,
    pub error: bool,
    pub connector_id: String,
}

/// An online event waiting to be POSTed.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub url: String,
    pub body: Vec<u8>,
    pub content_type: &'static str,
}

/// What the control API shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EventCounters {
    /// Records ever written to the queue (new or merged into a waiting one).
    pub offline_emitted: u64,
    /// Changes merged into a record that was already waiting.
    pub offline_merged: u64,
    pub online_delivered: u64,
    pub online_failed: u64,
}

#[derive(Debug, Default)]
pub(crate) struct EventsState {
    pub handlers: Vec<Handler>,
    pub queue: Vec<OfflineRecord>,
    pub outbox: Vec<Delivery>,
    pub settings: EventSettings,
    pub counters: EventCounters,
    next_record: u64,
    /// The last handler id `event.bind` gave.
    pub next_handler: u64,
}

/// A change to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    Add,
    Update,
    Delete,
}

impl Change {
    fn suffix(self) -> &'static str {
        match self {
            Change::Add => "ADD",
            Change::Update => "UPDATE",
            Change::Delete => "DELETE",
        }
    }
}

/// The event names of a change to a row of portal table `table`, with the event data.
fn events_for(table: &str, id: u64, change: Change) -> Vec<(String, SJ)> {
    let s = change.suffix();
    match table {
        "deal" | "lead" | "contact" | "company" | "activity" | "quote" | "product" => vec![(
            format!("ONCRM{}{s}", table.to_ascii_uppercase()),
            json!({"FIELDS": {"ID": id.to_string()}}),
        )],
        // api-reference/tasks/events-tasks/on-task-*.md: the id on the side that exists.
        "task" => {
            let (before, after) = match change {
                Change::Add => (json!("undefined"), json!({"ID": id})),
                Change::Update => (json!({"ID": id}), json!({"ID": id})),
                Change::Delete => (json!({"ID": id}), json!("undefined")),
            };
            vec![(
                format!("ONTASK{s}"),
                json!({"FIELDS_BEFORE": before, "FIELDS_AFTER": after,
                    "IS_ACCESSIBLE_BEFORE": "undefined", "IS_ACCESSIBLE_AFTER": "undefined"}),
            )]
        }
        t => match t
            .strip_prefix("dynamic_")
            .and_then(|e| e.parse::<u32>().ok())
        {
            Some(etid) => {
                let data = json!({"FIELDS": {"ID": id, "ENTITY_TYPE_ID": etid}});
                vec![
                    (format!("ONCRMDYNAMICITEM{s}"), data.clone()),
                    (format!("ONCRMDYNAMICITEM{s}_{etid}"), data),
                ]
            }
            None => Vec::new(),
        },
    }
}

/// Whether `event` can be bound on this portal (`ERROR_EVENT_NOT_FOUND` otherwise).
pub(crate) fn known_event(data: &PortalData, event: &str) -> bool {
    let base = [
        "CRMDEAL",
        "CRMLEAD",
        "CRMCONTACT",
        "CRMCOMPANY",
        "CRMACTIVITY",
        "CRMDYNAMICITEM",
        "CRMQUOTE",
        "CRMPRODUCT",
        "TASK",
    ];
    let changes = ["ADD", "UPDATE", "DELETE"];
    if base
        .iter()
        .any(|b| changes.iter().any(|c| event == format!("ON{b}{c}")))
    {
        return true;
    }
    changes.iter().any(|c| {
        event
            .strip_prefix(&format!("ONCRMDYNAMICITEM{c}_"))
            .and_then(|e| e.parse::<u32>().ok())
            .is_some_and(|etid| data.type_for_etid(etid).is_some())
    })
}

/// 32 hex characters from the event name and data (the module uses md5 of the same).
fn message_id(name: &str, data: &SJ) -> String {
    let text = format!("{name}|{data}");
    let mut a = fnv_hasher(0xcbf2_9ce4_8422_2325);
    let mut b = fnv_hasher(0x8422_2325_cbf2_9ce4);
    a.write(text.as_bytes());
    b.write(text.as_bytes());
    b.write(&[0x5a]);
    format!("{:016x}{:016x}", a.finish(), b.finish())
}

struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

fn fnv_hasher(seed: u64) -> Fnv {
    Fnv(seed)
}

/// Records a change: into the offline queue for offline bindings, into the outbox for
/// online ones. Returns whether an online delivery is waiting.
pub(crate) fn emit(
    ev: &mut EventsState,
    now: f64,
    ctx: &EmitCtx,
    table: &str,
    id: u64,
    change: Change,
) -> bool {
    let mut online = false;
    for (name, data) in events_for(table, id, change) {
        let bound: Vec<Handler> = ev
            .handlers
            .iter()
            .filter(|h| h.event == name)
            .cloned()
            .collect();
        for h in bound {
            if h.offline {
                queue_offline(ev, now, &name, &data, &h.connector_id);
            } else {
                let body = online_body(&ev.settings, ctx, &h, &name, &data, now);
                ev.outbox.push(body);
                online = true;
            }
        }
    }
    online
}

/// What an online delivery needs to know about the portal.
pub(crate) struct EmitCtx {
    pub base_url: String,
    pub member_id: String,
    pub application_token: String,
    pub access_token: String,
    pub refresh_token: String,
}

fn queue_offline(ev: &mut EventsState, now: f64, name: &str, data: &SJ, connector: &str) {
    let mid = message_id(name, data);
    ev.counters.offline_emitted += 1;
    if let Some(r) = ev
        .queue
        .iter_mut()
        .find(|r| r.message_id == mid && r.connector_id == connector && r.process_id.is_empty())
    {
        r.ts = now;
        r.event_data = data.clone();
        ev.counters.offline_merged += 1;
        return;
    }
    ev.next_record += 1;
    ev.queue.push(OfflineRecord {
        id: ev.next_record,
        ts: now,
        event_name: name.to_string(),
        event_data: data.clone(),
        message_id: mid,
        process_id: String::new(),
        error: false,
        connector_id: connector.to_string(),
    });
}

fn online_body(
    s: &EventSettings,
    ctx: &EmitCtx,
    h: &Handler,
    name: &str,
    data: &SJ,
    now: f64,
) -> Delivery {
    let host = ctx.base_url.trim_start_matches("http://").to_string();
    let auth = json!({
        "access_token": ctx.access_token,
        "expires_in": "3600",
        "scope": "crm",
        "domain": host,
        "server_endpoint": format!("{}/oauth/rest/", ctx.base_url),
        "status": "L",
        "client_endpoint": format!("{}/rest/", ctx.base_url),
        "member_id": ctx.member_id,
        "refresh_token": ctx.refresh_token,
        "application_token": ctx.application_token,
    });
    let payload = json!({
        "event": name,
        "event_handler_id": h.id.to_string(),
        "data": data,
        "ts": (now as i64).to_string(),
        "auth": auth,
    });
    match s.online_format {
        OnlineFormat::Json => Delivery {
            url: h.handler.clone(),
            body: payload.to_string().into_bytes(),
            content_type: "application/json",
        },
        OnlineFormat::Form => {
            let mut pairs = Vec::new();
            flatten("", &payload, &mut pairs);
            let body = pairs
                .iter()
                .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
                .collect::<Vec<_>>()
                .join("&");
            Delivery {
                url: h.handler.clone(),
                body: body.into_bytes(),
                content_type: "application/x-www-form-urlencoded",
            }
        }
    }
}

/// `http_build_query` keys: `data[FIELDS][ID]`.
fn flatten(prefix: &str, v: &SJ, out: &mut Vec<(String, String)>) {
    match v {
        SJ::Object(m) => {
            for (k, x) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}[{k}]")
                };
                flatten(&key, x, out);
            }
        }
        SJ::String(s) => out.push((prefix.to_string(), s.clone())),
        SJ::Null => out.push((prefix.to_string(), String::new())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_32_hex_and_depend_on_name_and_data() {
        let a = message_id("ONCRMDEALUPDATE", &json!({"FIELDS": {"ID": "1"}}));
        let b = message_id("ONCRMDEALUPDATE", &json!({"FIELDS": {"ID": "2"}}));
        let c = message_id("ONCRMDEALDELETE", &json!({"FIELDS": {"ID": "1"}}));
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn form_encoding_nests_like_php() {
        let mut out = Vec::new();
        flatten(
            "",
            &json!({"data": {"FIELDS": {"ID": "7"}}, "ts": "1"}),
            &mut out,
        );
        assert!(out.contains(&("data[FIELDS][ID]".to_string(), "7".to_string())));
        assert_eq!(urlencode("data[FIELDS][ID]"), "data%5BFIELDS%5D%5BID%5D");
    }
}
