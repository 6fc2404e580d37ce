//! The event methods: `event.bind` / `event.unbind` / `event.get` and the offline queue
//! (`event.offline.get|clear|error|list`); the queue itself is `events.rs`.
//!
//! Modelled on the REST module's own code (`rest/lib/api/event.php`, `rest/lib/eventoffline.php`)
//! and the docs (`api-reference/events/*.md`):
//! - app (OAuth) context only: a webhook gets `WRONG_AUTH_TYPE`;
//! - `event.offline.get` orders by `TIMESTAMP_X ASC` by default, leases up to `limit` (50)
//!   unleased records to a new 32-character `process_id` (parallel readers get disjoint sets)
//!   and deletes them at once unless `clear=0`; called **with** a `process_id`, it returns the
//!   records already leased to it (a reader that crashed can read them again), and leases
//!   nothing new; `clear=0` needs the plan feature `rest_offline_extended`;
//! - leased records are never handed to another reader; they are purged after
//!   `PROCESS_ID_LIFETIME` (2,952,000 s).

use super::super::events::{
    EventSettings, Handler, OfflineEventData, OfflineRecord, OfflineTimestamp, known_event,
};
use super::super::hash::mix;
use super::super::json_out::J;
use super::super::method_error::MethodError;
use super::super::params::PVal;
use super::super::render::{iso_datetime, site_datetime};
use super::super::state::State;
use super::outcome::{Outcome, Success};

/// Seconds after which leased records are purged (`EventOfflineTable::PROCESS_ID_LIFETIME`).
pub(crate) const PROCESS_ID_LIFETIME: f64 = 2_952_000.0;
/// `event.offline.get` default `limit`.
const LIST_LIMIT: i64 = 50;

/// Whether `method` is one of the event methods.
pub(crate) fn is_event_method(method: &str) -> bool {
    matches!(
        method,
        "event.bind"
            | "event.unbind"
            | "event.get"
            | "event.offline.get"
            | "event.offline.clear"
            | "event.offline.error"
            | "event.offline.list"
    )
}

fn wrong_auth_type() -> MethodError {
    MethodError::new(
        401,
        "WRONG_AUTH_TYPE",
        "Current authorization type is denied for this method",
    )
}

fn arg_error(description: &str) -> MethodError {
    MethodError::new(400, "ERROR_ARGUMENT", description)
}

/// Runs an event method; `oauth` = called with an application token (not a webhook).
pub(crate) fn call(
    st: &mut State,
    offset: i32,
    method: &str,
    params: &PVal,
    oauth: bool,
    cost: f64,
) -> Outcome {
    if !oauth {
        return Outcome::err(wrong_auth_type(), cost);
    }
    purge(st);
    let r = match method {
        "event.bind" => bind(st, params),
        "event.unbind" => unbind(st, params),
        "event.get" => Ok(Success::plain(handlers_json(st))),
        "event.offline.get" => offline_get(st, offset, params),
        "event.offline.clear" => offline_clear(st, params),
        "event.offline.error" => offline_error(st, params),
        "event.offline.list" => offline_list(st, offset, params),
        _ => Err(MethodError::new(
            404,
            "ERROR_METHOD_NOT_FOUND",
            "Method not found!",
        )),
    };
    match r {
        Ok(s) => Outcome::ok(s, cost, 0),
        Err(e) => Outcome::err(e, cost),
    }
}

fn purge(st: &mut State) {
    let cutoff = st.clock.now() - PROCESS_ID_LIFETIME;
    st.events
        .queue
        .retain(|r| r.process_id.is_empty() || r.ts >= cutoff);
}

fn text(params: &PVal, key: &str) -> String {
    params
        .get_ci(key)
        .and_then(PVal::to_text)
        .unwrap_or_default()
}

fn connector(params: &PVal) -> String {
    text(params, "auth_connector")
}

fn bind(st: &mut State, params: &PVal) -> Result<Success, MethodError> {
    let event = text(params, "event").to_uppercase();
    let event_type = text(params, "event_type").to_lowercase();
    let mut handler = text(params, "handler");
    let auth_type = params
        .get_ci("auth_type")
        .and_then(PVal::as_i64)
        .unwrap_or(0)
        .max(0) as u64;
    if event.is_empty() {
        return Err(arg_error("Argument 'EVENT' is null or empty"));
    }
    let offline = match event_type.as_str() {
        "" | "online" => false,
        "offline" => true,
        _ => {
            return Err(arg_error("Value must be one of {online|offline}"));
        }
    };
    if offline {
        handler.clear();
    } else if handler.is_empty() {
        return Err(arg_error("Argument 'HANDLER' is null or empty"));
    } else if !(handler.starts_with("http://") || handler.starts_with("https://")) {
        return Err(MethodError::new(400, "ERROR_ARGUMENT", "Wrong handler URL"));
    }
    if !known_event(&st.data, &event) {
        return Err(MethodError::new(
            400,
            "ERROR_EVENT_NOT_FOUND",
            "Event not found",
        ));
    }
    let connector_id = connector(params);
    let ev = &mut st.events;
    if ev.handlers.iter().any(|h| {
        h.event == event
            && h.handler == handler
            && h.offline == offline
            && h.connector_id == connector_id
            && (offline || h.auth_type == auth_type)
    }) {
        return Err(MethodError::new(
            400,
            "ERROR_CORE",
            "Unable to set event handler: Handler already binded",
        ));
    }
    ev.next_handler += 1;
    ev.handlers.push(Handler {
        id: ev.next_handler,
        event,
        handler,
        auth_type: if offline { 0 } else { auth_type },
        offline,
        connector_id,
    });
    Ok(Success::plain(J::Bool(true)))
}

fn unbind(st: &mut State, params: &PVal) -> Result<Success, MethodError> {
    let event = text(params, "event").to_uppercase();
    let event_type = text(params, "event_type").to_lowercase();
    let handler = text(params, "handler");
    if event.is_empty() {
        return Err(arg_error("Argument 'EVENT' is null or empty"));
    }
    let offline = match event_type.as_str() {
        "" | "online" => false,
        "offline" => true,
        _ => return Err(arg_error("Value must be one of {online|offline}")),
    };
    if !offline && handler.is_empty() {
        return Err(arg_error("Argument 'HANDLER' is null or empty"));
    }
    let connector_id = connector(params);
    let auth_type = params.get_ci("auth_type").and_then(PVal::as_i64);
    let before = st.events.handlers.len();
    st.events.handlers.retain(|h| {
        let hit = h.event == event
            && h.offline == offline
            && (if offline {
                h.connector_id == connector_id
            } else {
                h.handler == handler && auth_type.is_none_or(|a| h.auth_type as i64 == a)
            });
        !hit
    });
    let n = (before - st.events.handlers.len()) as i64;
    Ok(Success::plain(J::obj([("count", J::Int(n))])))
}

fn handlers_json(st: &State) -> J {
    J::List(
        st.events
            .handlers
            .iter()
            .map(|h| {
                if h.offline {
                    J::obj([
                        ("event", J::str(&h.event)),
                        ("connector_id", J::str(&h.connector_id)),
                        ("offline", J::Int(1)),
                    ])
                } else {
                    J::obj([
                        ("event", J::str(&h.event)),
                        ("handler", J::str(&h.handler)),
                        ("auth_type", J::Str(h.auth_type.to_string())),
                        ("offline", J::Int(0)),
                    ])
                }
            })
            .collect(),
    )
}

/// A filter condition on a queue record (`=ID`, `>ID`, `EVENT_NAME`, `<=TIMESTAMP_X`…).
struct Cond {
    field: String,
    op: String,
    value: String,
}

fn parse_filter(params: &PVal, allowed: &[&str]) -> Result<Vec<Cond>, MethodError> {
    let Some(f) = params.get_ci("filter") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (k, v) in f.entries() {
        let split = k
            .find(|c: char| c.is_ascii_alphabetic() || c == '_')
            .unwrap_or(k.len());
        let (op, field) = k.split_at(split);
        let field = field.to_ascii_uppercase();
        if !allowed.contains(&field.as_str()) {
            // The module's sanitizeFilter drops unknown fields.
            continue;
        }
        let Some(value) = v.to_text() else {
            return Err(arg_error(&format!("Argument '{k}' must be a scalar")));
        };
        out.push(Cond {
            field,
            op: if op.is_empty() {
                "=".into()
            } else {
                op.to_string()
            },
            value,
        });
    }
    Ok(out)
}

fn matches(r: &OfflineRecord, conds: &[Cond], offset: i32) -> bool {
    conds.iter().all(|c| {
        let (num, s) = match c.field.as_str() {
            "ID" => (Some(r.id as f64), r.id.to_string()),
            "TIMESTAMP_X" => (Some(r.ts.floor()), iso_datetime(r.ts as i64, offset)),
            "EVENT_NAME" => (None, r.event_name.clone()),
            "MESSAGE_ID" => (None, r.message_id.clone()),
            "PROCESS_ID" => (None, r.process_id.clone()),
            "ERROR" => (
                Some(f64::from(u8::from(r.error))),
                u8::from(r.error).to_string(),
            ),
            _ => return true,
        };
        let want_num = match c.field.as_str() {
            "TIMESTAMP_X" => chrono::DateTime::parse_from_rfc3339(&c.value)
                .ok()
                .map(|d| d.timestamp() as f64),
            _ => c.value.parse::<f64>().ok(),
        };
        let ord = match (num, want_num) {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => Some(s.as_str().cmp(c.value.as_str())),
        };
        let Some(ord) = ord else { return false };
        match c.op.as_str() {
            "=" => ord.is_eq(),
            "!" | "!=" => !ord.is_eq(),
            ">" => ord.is_gt(),
            ">=" => ord.is_ge(),
            "<" => ord.is_lt(),
            "<=" => ord.is_le(),
            _ => false,
        }
    })
}

/// Sorts by the `order` parameter (default `default_field` ASC), ties by ID.
fn sort(records: &mut [OfflineRecord], params: &PVal, default_field: &str) {
    let (field, desc) = params
        .get_ci("order")
        .and_then(|o| o.entries().first().cloned())
        .map(|(k, v)| {
            (
                k.to_ascii_uppercase(),
                v.to_text().unwrap_or_default().eq_ignore_ascii_case("desc"),
            )
        })
        .unwrap_or((default_field.to_string(), false));
    records.sort_by(|a, b| {
        let o = match field.as_str() {
            "TIMESTAMP_X" => a.ts.total_cmp(&b.ts).then(a.id.cmp(&b.id)),
            "EVENT_NAME" => a.event_name.cmp(&b.event_name).then(a.id.cmp(&b.id)),
            "MESSAGE_ID" => a.message_id.cmp(&b.message_id).then(a.id.cmp(&b.id)),
            _ => a.id.cmp(&b.id),
        };
        if desc { o.reverse() } else { o }
    });
}

fn record_json(r: &OfflineRecord, s: &EventSettings, offset: i32, list: bool) -> J {
    let (data, additional) = match s.offline_event_data {
        OfflineEventData::Fields => (
            J::from_serde(&r.event_data),
            J::obj([("user_id", J::str("1"))]),
        ),
        OfflineEventData::Empty => (J::Bool(false), J::Bool(false)),
    };
    let mut pairs = vec![
        ("ID".to_string(), J::Str(r.id.to_string())),
        (
            "TIMESTAMP_X".to_string(),
            J::Str(match s.offline_timestamp {
                OfflineTimestamp::Iso => iso_datetime(r.ts as i64, offset),
                OfflineTimestamp::Site => site_datetime(r.ts as i64, offset),
            }),
        ),
        ("EVENT_NAME".to_string(), J::str(&r.event_name)),
        ("EVENT_DATA".to_string(), data),
        ("EVENT_ADDITIONAL".to_string(), additional),
        ("MESSAGE_ID".to_string(), J::str(&r.message_id)),
    ];
    if list {
        pairs.push(("PROCESS_ID".to_string(), J::str(&r.process_id)));
        pairs.push(("ERROR".to_string(), J::Str(u8::from(r.error).to_string())));
    }
    J::Obj(pairs)
}

fn new_process_id(st: &mut State) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..32)
        .map(|_| {
            st.rng = mix(st.rng.wrapping_add(0x9e37_79b9_7f4a_7c15));
            ALPHABET[(st.rng % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

fn offline_get(st: &mut State, offset: i32, params: &PVal) -> Result<Success, MethodError> {
    let clear = params.get_ci("clear").is_none_or(PVal::truthy);
    let given = params
        .get_ci("process_id")
        .and_then(PVal::to_text)
        .map(|p| p.trim().to_string());
    if !clear && !st.events.settings.offline_extended {
        return Err(MethodError::new(
            403,
            "ACCESS_DENIED",
            "Method is not available on this plan: extended offline events handling",
        ));
    }
    let limit = params
        .get_ci("limit")
        .and_then(PVal::as_i64)
        .unwrap_or(LIST_LIMIT);
    if limit <= 0 {
        return Err(arg_error("Value must be positive integer"));
    }
    let conds = parse_filter(params, &["ID", "TIMESTAMP_X", "EVENT_NAME", "MESSAGE_ID"])?;
    let want_error = params.get_ci("error").is_some_and(PVal::truthy);
    let conn = connector(params);
    let eligible = |r: &OfflineRecord, pid: &str| {
        r.process_id == pid
            && r.error == want_error
            && r.connector_id == conn
            && matches(r, &conds, offset)
    };
    let return_pid = !clear || given.is_some();
    let pid = match given {
        Some(p) => p,
        None => {
            let pid = new_process_id(st);
            let mut free: Vec<OfflineRecord> = st
                .events
                .queue
                .iter()
                .filter(|r| eligible(r, ""))
                .cloned()
                .collect();
            sort(&mut free, params, "TIMESTAMP_X");
            let ids: Vec<u64> = free.iter().take(limit as usize).map(|r| r.id).collect();
            for r in st.events.queue.iter_mut().filter(|r| ids.contains(&r.id)) {
                r.process_id = pid.clone();
            }
            pid
        }
    };
    let mut mine: Vec<OfflineRecord> = st
        .events
        .queue
        .iter()
        .filter(|r| eligible(r, &pid))
        .cloned()
        .collect();
    sort(&mut mine, params, "TIMESTAMP_X");
    mine.truncate(limit as usize);
    let s = st.events.settings;
    let events: Vec<J> = mine
        .iter()
        .map(|r| record_json(r, &s, offset, false))
        .collect();
    if clear && !mine.is_empty() {
        st.events
            .queue
            .retain(|r| !(r.process_id == pid && r.connector_id == conn));
    }
    Ok(Success::plain(J::obj([
        ("process_id", if return_pid { J::Str(pid) } else { J::Null }),
        ("events", J::List(events)),
    ])))
}

fn id_list(params: &PVal, key: &str) -> Result<Option<Vec<String>>, MethodError> {
    match params.get_ci(key) {
        None => Ok(None),
        Some(v) if v.is_arr() => Ok(Some(
            v.values().iter().filter_map(|x| x.to_text()).collect(),
        )),
        Some(_) => Err(arg_error(&format!("Value must be array ({key})"))),
    }
}

fn offline_clear(st: &mut State, params: &PVal) -> Result<Success, MethodError> {
    let Some(pid) = params.get_ci("process_id").and_then(PVal::to_text) else {
        return Err(arg_error("Argument 'PROCESS_ID' is null or empty"));
    };
    let pid = pid.trim().to_string();
    let conn = connector(params);
    let by_message = id_list(params, "message_id")?;
    let by_id = if by_message.is_none() {
        id_list(params, "id")?
    } else {
        None
    };
    if let Some(m) = &by_message
        && m.iter().any(|x| x.trim().len() != 32)
    {
        return Err(arg_error("Value must be array of MESSAGE_ID values"));
    }
    let ids: Option<Vec<u64>> = match by_id {
        Some(v) => Some(
            v.iter()
                .map(|x| x.trim().parse::<u64>().ok().filter(|i| *i > 0))
                .collect::<Option<Vec<u64>>>()
                .ok_or_else(|| arg_error("Value must be array of integers"))?,
        ),
        None => None,
    };
    st.events.queue.retain(|r| {
        let hit = r.process_id == pid
            && r.connector_id == conn
            && ids.as_ref().is_none_or(|l| l.contains(&r.id))
            && by_message
                .as_ref()
                .is_none_or(|l| l.iter().any(|m| m.trim() == r.message_id));
        !hit
    });
    Ok(Success::plain(J::Bool(true)))
}

/// `markError`: the listed messages become one error record each, visible with `error=1`.
fn offline_error(st: &mut State, params: &PVal) -> Result<Success, MethodError> {
    let Some(pid) = params.get_ci("process_id").and_then(PVal::to_text) else {
        return Err(arg_error("Argument 'PROCESS_ID' is null or empty"));
    };
    let Some(list) = id_list(params, "message_id")? else {
        return Err(arg_error("Value must be array of MESSAGE_ID values"));
    };
    let conn = connector(params);
    let q = &mut st.events.queue;
    let hit =
        |r: &OfflineRecord| r.connector_id == conn && !r.error && list.contains(&r.message_id);
    q.retain(|r| !(hit(r) && r.process_id != pid));
    for r in q.iter_mut().filter(|r| hit(r)) {
        r.error = true;
        r.process_id.clear();
    }
    Ok(Success::plain(J::Bool(true)))
}

fn offline_list(st: &mut State, offset: i32, params: &PVal) -> Result<Success, MethodError> {
    let conds = parse_filter(
        params,
        &[
            "ID",
            "TIMESTAMP_X",
            "EVENT_NAME",
            "MESSAGE_ID",
            "PROCESS_ID",
            "ERROR",
        ],
    )?;
    let conn = connector(params);
    let filtered = st.events.settings.offline_list_filter;
    let mut all: Vec<OfflineRecord> = st
        .events
        .queue
        .iter()
        .filter(|r| r.connector_id == conn && (!filtered || matches(r, &conds, offset)))
        .cloned()
        .collect();
    sort(&mut all, params, "ID");
    let start = params
        .get("start")
        .and_then(PVal::as_i64)
        .unwrap_or(0)
        .max(0) as usize;
    let start = start / 50 * 50;
    let total = all.len();
    let s = st.events.settings;
    let page: Vec<J> = all
        .iter()
        .skip(start)
        .take(50)
        .map(|r| record_json(r, &s, offset, true))
        .collect();
    let next = (start + 50 < total).then_some((start + 50) as u64);
    Ok(Success {
        result: J::List(page),
        total: Some(total as u64),
        next,
    })
}
