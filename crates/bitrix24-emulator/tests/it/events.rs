//! Events: binding in app context only, the offline queue (one record per object, ordering,
//! the `process_id` lease, re-reading a lease, clear, error) and online delivery to a handler
//! URL with `auth.application_token`, in both encodings.

use std::sync::{Arc, Mutex};

use crate::support::*;
use bitrix24_emulator::{EventSettings, OnlineFormat, RunningPortal};
use serde_json::{Value, json};

struct App<'a> {
    p: &'a RunningPortal,
    token: String,
}

impl App<'_> {
    async fn call(&self, method: &str, mut body: Value) -> Resp {
        body["auth"] = json!(self.token);
        call(&format!("{}/rest/{method}", self.p.base_url()), body).await
    }
}

fn app(p: &RunningPortal) -> App<'_> {
    App {
        p,
        token: p.control().config().oauth.access_token,
    }
}

/// Real time: OAuth tokens must not expire during a test.
fn app_config() -> bitrix24_emulator::PortalConfig {
    let mut cfg = fast_config();
    cfg.time_scale = 1.0;
    cfg
}

fn ids_of(events: &Value) -> Vec<String> {
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["EVENT_DATA"]["FIELDS"]["ID"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn binding_needs_an_app_and_a_known_event() {
    let p = portal(app_config()).await;
    let r = call(
        &m(&p, "event.bind"),
        json!({"event": "ONCRMDEALUPDATE", "event_type": "offline"}),
    )
    .await;
    assert_eq!(r.json["error"], "WRONG_AUTH_TYPE", "{}", r.text);
    let r = call(&m(&p, "event.offline.get"), json!({})).await;
    assert_eq!(r.json["error"], "WRONG_AUTH_TYPE", "{}", r.text);
    let a = app(&p);
    let r = a
        .call(
            "event.bind",
            json!({"event": "onCrmDealUpdate", "event_type": "offline"}),
        )
        .await;
    assert_eq!(r.json["result"], json!(true), "{}", r.text);
    let r = a
        .call(
            "event.bind",
            json!({"event": "ONCRMDEALUPDATE", "event_type": "offline"}),
        )
        .await;
    assert_eq!(
        r.json["error"], "ERROR_CORE",
        "a second identical binding: {}",
        r.text
    );
    let r = a
        .call(
            "event.bind",
            json!({"event": "ONCRMNOSUCHTHING", "event_type": "offline"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["error"].as_str()),
        (400, Some("ERROR_EVENT_NOT_FOUND"))
    );
    let r = a
        .call(
            "event.bind",
            json!({"event": "ONCRMDYNAMICITEMUPDATE_128", "event_type": "offline"}),
        )
        .await;
    assert_eq!(r.json["result"], json!(true), "{}", r.text);
    let r = a
        .call(
            "event.bind",
            json!({"event": "ONCRMDYNAMICITEMUPDATE_999", "event_type": "offline"}),
        )
        .await;
    assert_eq!(
        r.json["error"], "ERROR_EVENT_NOT_FOUND",
        "no such smart process"
    );
    let r = a
        .call("event.bind", json!({"event": "ONCRMDEALDELETE"}))
        .await;
    assert_eq!(
        r.json["error"], "ERROR_ARGUMENT",
        "online needs a handler: {}",
        r.text
    );
    let r = a.call("event.get", json!({})).await;
    assert_eq!(
        r.json["result"],
        json!([
            {"event": "ONCRMDEALUPDATE", "connector_id": "", "offline": 1},
            {"event": "ONCRMDYNAMICITEMUPDATE_128", "connector_id": "", "offline": 1}
        ])
    );
    let r = a
        .call(
            "event.unbind",
            json!({"event": "ONCRMDEALUPDATE", "event_type": "offline"}),
        )
        .await;
    assert_eq!(r.json["result"], json!({"count": 1}));
    p.control()
        .modify_rows("deal", &[1], &Default::default(), None)
        .unwrap();
    assert!(
        p.control().offline_queue().is_empty(),
        "unbound: nothing queued"
    );
    p.shutdown().await;
}

#[tokio::test]
async fn the_queue_keeps_one_record_per_object_and_leases_by_process_id() {
    let p = portal(app_config()).await;
    let c = p.control();
    let a = app(&p);
    for e in ["ONCRMDEALUPDATE", "ONCRMDEALDELETE"] {
        let r = a
            .call("event.bind", json!({"event": e, "event_type": "offline"}))
            .await;
        assert_eq!(r.json["result"], json!(true));
    }
    let none = Default::default();
    // Deal 5 edited three times: one record, its time the latest edit.
    for _ in 0..3 {
        c.modify_rows("deal", &[5], &none, None).unwrap();
        c.advance_clock(10.0);
    }
    c.modify_rows("deal", &[6], &none, None).unwrap();
    c.advance_clock(10.0);
    c.delete_rows("deal", &[7]).unwrap();
    let q = c.offline_queue();
    assert_eq!(q.len(), 3, "{q:?}");
    assert_eq!(c.event_counters().offline_merged, 2);

    // Oldest change first; clear=0 leases the batch to a new process_id.
    let r = a
        .call("event.offline.get", json!({"clear": 0, "limit": 2}))
        .await;
    let pid = r.json["result"]["process_id"].as_str().unwrap().to_string();
    assert_eq!(pid.len(), 32);
    let first = r.json["result"]["events"].clone();
    assert_eq!(ids_of(&first), ["5", "6"], "{}", r.text);
    assert_eq!(first[0]["EVENT_NAME"], "ONCRMDEALUPDATE");
    // A parallel reader gets the rest, never the leased records.
    let r = a.call("event.offline.get", json!({"clear": 0})).await;
    let other = r.json["result"]["process_id"].as_str().unwrap().to_string();
    assert_ne!(other, pid);
    assert_eq!(ids_of(&r.json["result"]["events"]), ["7"]);
    assert_eq!(
        r.json["result"]["events"][0]["EVENT_NAME"],
        "ONCRMDEALDELETE"
    );
    let r = a.call("event.offline.get", json!({"clear": 0})).await;
    assert_eq!(
        r.json["result"]["events"],
        json!([]),
        "everything is leased"
    );

    // Deal 5 changes while its record is leased: a new record, so the change is not lost
    // when the reader clears what it read before.
    c.modify_rows("deal", &[5], &none, None).unwrap();
    let r = a
        .call(
            "event.offline.list",
            json!({"filter": {"EVENT_NAME": "ONCRMDEALUPDATE"}}),
        )
        .await;
    assert_eq!(r.json["total"], 3, "{}", r.text);
    let leased: Vec<&Value> = r.json["result"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["PROCESS_ID"] == pid.as_str())
        .collect();
    assert_eq!(leased.len(), 2);

    // A reader that crashed reads its lease again with its process_id.
    let r = a
        .call("event.offline.get", json!({"process_id": pid, "clear": 0}))
        .await;
    assert_eq!(r.json["result"]["process_id"], pid.as_str());
    assert_eq!(ids_of(&r.json["result"]["events"]), ["5", "6"]);
    let r = a
        .call("event.offline.clear", json!({"process_id": pid}))
        .await;
    assert_eq!(r.json["result"], json!(true));
    let left: Vec<(String, String)> = c
        .offline_queue()
        .iter()
        .map(|r| (r.event_name.clone(), r.process_id.clone()))
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&("ONCRMDEALUPDATE".into(), String::new())));
    assert!(left.contains(&("ONCRMDEALDELETE".into(), other.clone())));

    // clear by MESSAGE_ID needs 32-character ids.
    let r = a
        .call(
            "event.offline.clear",
            json!({"process_id": other, "message_id": ["short"]}),
        )
        .await;
    assert_eq!(r.json["error"], "ERROR_ARGUMENT");
    let r = a.call("event.offline.clear", json!({"id": [1]})).await;
    assert_eq!(r.json["error"], "ERROR_ARGUMENT", "process_id is required");

    // Default clear=1: read and deleted at once, no process_id returned.
    let r = a.call("event.offline.get", json!({})).await;
    assert_eq!(r.json["result"]["process_id"], Value::Null);
    assert_eq!(ids_of(&r.json["result"]["events"]), ["5"]);
    assert_eq!(
        c.offline_queue().len(),
        1,
        "only the other reader's lease is left"
    );
    p.shutdown().await;
}

#[tokio::test]
async fn errors_are_set_aside_and_clear_0_needs_the_extended_plan() {
    let p = portal(app_config()).await;
    let c = p.control();
    let a = app(&p);
    a.call(
        "event.bind",
        json!({"event": "ONCRMLEADUPDATE", "event_type": "offline"}),
    )
    .await;
    c.modify_rows("lead", &[2, 3], &Default::default(), None)
        .unwrap();
    let r = a.call("event.offline.get", json!({"clear": 0})).await;
    let pid = r.json["result"]["process_id"].as_str().unwrap().to_string();
    let bad = r.json["result"]["events"][0]["MESSAGE_ID"].clone();
    let r = a
        .call(
            "event.offline.error",
            json!({"process_id": pid, "message_id": [bad]}),
        )
        .await;
    assert_eq!(r.json["result"], json!(true));
    let r = a
        .call("event.offline.get", json!({"error": 1, "clear": 0}))
        .await;
    assert_eq!(
        r.json["result"]["events"].as_array().unwrap().len(),
        1,
        "{}",
        r.text
    );
    assert_eq!(r.json["result"]["events"][0]["MESSAGE_ID"], bad);

    let mut s = c.event_settings();
    s.offline_extended = false;
    c.set_event_settings(s);
    let r = a.call("event.offline.get", json!({"clear": 0})).await;
    assert_eq!(
        (r.status, r.json["error"].as_str()),
        (403, Some("ACCESS_DENIED")),
        "{}",
        r.text
    );
    let r = a.call("event.offline.get", json!({"limit": 0})).await;
    assert_eq!(r.json["error"], "ERROR_ARGUMENT");
    p.shutdown().await;
}

/// A handler that records what it receives.
async fn receiver() -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let got: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                let ct = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                sink.lock().unwrap().push((ct, body));
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, got)
}

async fn wait_for(got: &Arc<Mutex<Vec<(String, String)>>>, n: usize) -> Vec<(String, String)> {
    for _ in 0..500 {
        if got.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    got.lock().unwrap().clone()
}

#[tokio::test]
async fn online_events_reach_the_handler_with_the_application_token() {
    let p = portal(app_config()).await;
    let c = p.control();
    let a = app(&p);
    let (url, got) = receiver().await;
    let r = a
        .call(
            "event.bind",
            json!({"event": "ONCRMDEALUPDATE", "handler": url}),
        )
        .await;
    assert_eq!(r.json["result"], json!(true), "{}", r.text);
    a.call(
        "event.bind",
        json!({"event": "ONCRMDYNAMICITEMDELETE", "handler": url}),
    )
    .await;
    c.modify_rows("deal", &[11], &Default::default(), None)
        .unwrap();
    let seen = wait_for(&got, 1).await;
    assert_eq!(seen.len(), 1);
    let (ct, body) = &seen[0];
    assert_eq!(ct, "application/x-www-form-urlencoded");
    assert!(body.contains("event=ONCRMDEALUPDATE"), "{body}");
    assert!(body.contains("data%5BFIELDS%5D%5BID%5D=11"), "{body}");
    assert!(
        body.contains(&format!(
            "auth%5Bapplication_token%5D={}",
            c.application_token()
        )),
        "{body}"
    );
    // JSON variant, smart-process deletion.
    c.set_event_settings(EventSettings {
        online_format: OnlineFormat::Json,
        ..c.event_settings()
    });
    c.delete_rows("dynamic_128", &[4]).unwrap();
    let seen = wait_for(&got, 2).await;
    let (ct, body) = &seen[1];
    assert_eq!(ct, "application/json");
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["event"], "ONCRMDYNAMICITEMDELETE");
    assert_eq!(v["data"]["FIELDS"], json!({"ID": 4, "ENTITY_TYPE_ID": 128}));
    assert_eq!(v["auth"]["application_token"], c.application_token());
    assert_eq!(c.event_counters().online_delivered, 2);
    // A handler that is gone: counted, not retried.
    let r = a
        .call(
            "event.bind",
            json!({"event": "ONCRMLEADUPDATE", "handler": "http://127.0.0.1:9/gone"}),
        )
        .await;
    assert_eq!(r.json["result"], json!(true));
    c.modify_rows("lead", &[1], &Default::default(), None)
        .unwrap();
    for _ in 0..500 {
        if c.event_counters().online_failed == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(c.event_counters().online_failed, 1);
    p.shutdown().await;
}
