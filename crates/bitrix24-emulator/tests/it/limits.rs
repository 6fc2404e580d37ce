//! Limits, cost-model calibration, OAuth and fault injection.

use crate::support::*;
use bitrix24_emulator::{BatchBilling, DataSizes, Fault, FaultKind, PortalConfig};
use serde_json::json;

fn fixture(name: &str) -> serde_json::Value {
    let p = format!("{WORKSPACE}/tests/fixtures/bitrix24/{name}");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[tokio::test]
async fn leaky_bucket_503_with_real_body() {
    let mut cfg = fast_config();
    cfg.limits.enabled = true;
    cfg.time_scale = 0.001; // the bucket barely drains during the test
    cfg.cost.max_real_delay_secs = 0.0;
    let p = portal(cfg).await;
    let mut statuses = Vec::new();
    for _ in 0..55 {
        statuses.push(call(&m(&p, "crm.status.list"), json!({})).await);
    }
    assert!(statuses[..50].iter().all(|r| r.status == 200));
    let last = &statuses[54];
    assert_eq!(last.status, 503);
    assert_eq!(last.json, fixture("error.QUERY_LIMIT_EXCEEDED.real.json"));
    let c = p.control().counters();
    assert_eq!(c.query_limit_exceeded, 5);
    assert_eq!(c.responses_by_status["503"], 5);
    assert_eq!(c.requests_total, 55);
    // A batch of many commands counts as one request.
    p.control().reset_counters();
    let cmds: serde_json::Map<String, serde_json::Value> = (0..50)
        .map(|i| (format!("c{i}"), json!("crm.status.list")))
        .collect();
    for _ in 0..3 {
        assert_eq!(
            call(&m(&p, "batch"), json!({"cmd": cmds})).await.status,
            200
        );
    }
    assert_eq!(p.control().counters().per_method["crm.status.list"], 150);
    p.shutdown().await;
}

#[tokio::test]
async fn operating_limit_429_per_method_and_reset() {
    let mut cfg = fast_config();
    cfg.limits.enabled = true;
    cfg.limits.operating_limit_secs = 1.0;
    cfg.limits.burst = 10_000.0;
    cfg.time_scale = 1.0;
    cfg.cost.max_real_delay_secs = 0.0;
    let p = portal(cfg).await;
    let first = call(
        &m(&p, "crm.deal.list"),
        json!({"select": ["*", "UF_*"], "start": 0}),
    )
    .await;
    let t = &first.json["time"];
    assert!(t["operating"].as_f64().unwrap() > 0.0);
    assert!(t["operating_reset_at"].as_i64().unwrap() > t["start"].as_f64().unwrap() as i64);
    let mut blocked = None;
    for _ in 0..20 {
        let r = call(
            &m(&p, "crm.deal.list"),
            json!({"select": ["*", "UF_*"], "start": 0}),
        )
        .await;
        if r.status == 429 {
            blocked = Some(r);
            break;
        }
    }
    let blocked = blocked.expect("method must get blocked");
    assert_eq!(
        blocked.json,
        fixture("error.OPERATION_TIME_LIMIT.real.json")
    );
    // Other methods keep working.
    assert_eq!(
        call(&m(&p, "crm.lead.list"), json!({"select": ["ID"]}))
            .await
            .status,
        200
    );
    // Inside a batch the blocked method errors per command, the batch itself is HTTP 200.
    let b = call(
        &m(&p, "batch"),
        json!({"cmd": {"d": "crm.deal.list", "l": "crm.lead.list?select[]=ID"}}),
    )
    .await;
    assert_eq!(b.status, 200);
    assert_eq!(
        b.json["result"]["result_error"]["d"]["error"],
        "OPERATION_TIME_LIMIT"
    );
    assert!(b.json["result"]["result_time"]["l"]["operating"].is_number());
    p.control().advance_clock(601.0);
    assert_eq!(
        call(&m(&p, "crm.deal.list"), json!({"select": ["ID"]}))
            .await
            .status,
        200
    );
    assert!(p.control().counters().operation_time_limit >= 2);
    p.shutdown().await;
}

#[tokio::test]
async fn batch_billing_modes() {
    for (mode, billed) in [
        (BatchBilling::PerMethod, "crm.deal.list"),
        (BatchBilling::WholeBatch, "batch"),
    ] {
        let mut cfg = fast_config();
        cfg.limits.enabled = true;
        cfg.limits.batch_billing = mode;
        let p = portal(cfg).await;
        call(
            &m(&p, "batch"),
            json!({"cmd": {"a": "crm.deal.list?start=0", "b": "crm.deal.list?start=50"}}),
        )
        .await;
        let c = p.control().counters();
        assert!(
            c.operating_secs.get(billed).copied().unwrap_or(0.0) > 0.0,
            "{mode:?}: {:?}",
            c.operating_secs
        );
        assert_eq!(
            c.operating_secs.len(),
            1,
            "{mode:?}: {:?}",
            c.operating_secs
        );
        p.shutdown().await;
    }
}

fn within(actual: f64, expected: f64) -> bool {
    ((actual - expected) / expected).abs() < 0.05
}

/// End-to-end calibration on portals of the published sizes (lazy generation makes them cheap).
#[tokio::test]
async fn cost_model_reproduces_published_measurements() {
    let mut cfg = fast_config();
    cfg.time_scale = 1e9;
    cfg.sizes = DataSizes {
        leads: 2_387_743,
        contacts: 100_000,
        deals: 10,
        companies: 10,
        smart_processes: vec![],
        ..DataSizes::default()
    };
    let p = portal(cfg).await;
    let few = json!(["ID", "TITLE", "STATUS_ID", "OPPORTUNITY", "DATE_CREATE"]);
    let with = call(&m(&p, "crm.lead.list"), json!({"select": few, "start": 0})).await;
    let without = call(
        &m(&p, "crm.lead.list"),
        json!({"select": few, "start": -1, "order": {"ID": "ASC"}, "filter": {">ID": 0}}),
    )
    .await;
    let pw = with.json["time"]["processing"].as_f64().unwrap();
    let pn = without.json["time"]["processing"].as_f64().unwrap();
    assert_eq!(with.json["total"], 2_387_743);
    assert!(within(pw, 49.9), "with COUNT: {pw}");
    assert!(within(pn, 0.097), "without COUNT: {pn}");

    p.control().reset_counters();
    for page in 0..54 {
        let r = call(
            &m(&p, "crm.contact.list"),
            json!({"select": ["*", "UF_*"], "start": page * 50}),
        )
        .await;
        assert_eq!(r.json["result"].as_array().unwrap().len(), 50);
    }
    let with_count = p.control().counters().operating_secs["crm.contact.list"];
    p.control().reset_counters();
    let mut last = 0;
    for _ in 0..54 {
        let r = call(&m(&p, "crm.contact.list"), json!({"select": ["*", "UF_*"], "start": -1, "order": {"ID": "ASC"}, "filter": {">ID": last}})).await;
        last = r.json["result"][49]["ID"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap();
    }
    let c = p.control().counters();
    let without_count = c.operating_secs["crm.contact.list"];
    assert_eq!(c.count_queries, 0);
    assert!(
        within(with_count, 168.75),
        "54 pages with COUNT: {with_count}"
    );
    assert!(
        within(without_count, 32.68),
        "54 pages without COUNT: {without_count}"
    );
    p.shutdown().await;
}

fn oauth_cfg() -> PortalConfig {
    let mut cfg = fast_config();
    cfg.time_scale = 1.0;
    cfg
}

#[tokio::test]
async fn oauth_tokens_expire_and_refresh_rotates() {
    let p = portal(oauth_cfg()).await;
    let o = p.control().config().oauth;
    let url = |method: &str| format!("{}/rest/{method}", p.base_url());
    let r = call(
        &url("crm.deal.list"),
        json!({"auth": o.access_token, "select": ["ID"]}),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = reqwest::Client::new()
        .get(format!("{}?select[]=ID", url("crm.lead.list.json")))
        .bearer_auth(&o.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = call(&url("crm.deal.list"), json!({})).await;
    assert_eq!(
        (r.status, r.json["error"].as_str()),
        (401, Some("NO_AUTH_FOUND"))
    );
    let r = call(&url("crm.deal.list"), json!({"access_token": "nope"})).await;
    assert_eq!(
        (r.status, r.json["error"].as_str()),
        (401, Some("invalid_token"))
    );
    p.control().advance_clock(3601.0);
    let r = call(&url("crm.deal.list"), json!({"auth": o.access_token})).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json,
        json!({"error": "expired_token", "error_description": "The access token provided has expired"})
    );
    let refresh = |token: &str| {
        format!(
            "{}/oauth/token/?grant_type=refresh_token&client_id={}&client_secret={}&refresh_token={token}",
            p.base_url(),
            o.client_id,
            o.client_secret
        )
    };
    let t = get(&refresh(&o.refresh_token)).await;
    assert_eq!(t.status, 200);
    let shape = fixture("oauth.token.refresh.json");
    let keys = |v: &serde_json::Value| {
        v.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(keys(&t.json), keys(&shape));
    assert_eq!(t.json["expires_in"], 3600);
    let access = t.json["access_token"].as_str().unwrap();
    assert_eq!(
        call(&url("crm.deal.list"), json!({"auth": access}))
            .await
            .status,
        200
    );
    let again = get(&refresh(&o.refresh_token)).await;
    assert_eq!(
        (again.status, again.json["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let next = get(&refresh(t.json["refresh_token"].as_str().unwrap())).await;
    assert_eq!(next.status, 200);
    p.shutdown().await;
}

#[tokio::test]
async fn faults_are_injected_as_configured() {
    let p = portal(fast_config()).await;
    let ctl = p.control();
    let fault = |kind, remaining: Option<u32>, method: Option<&str>| Fault {
        kind,
        method: method.map(String::from),
        probability: None,
        remaining,
    };
    ctl.inject_fault(fault(
        FaultKind::QueryLimitExceeded,
        Some(2),
        Some("crm.deal.list"),
    ));
    assert_eq!(
        call(&m(&p, "crm.lead.list"), json!({})).await.status,
        200,
        "other methods unaffected"
    );
    assert_eq!(call(&m(&p, "crm.deal.list"), json!({})).await.status, 503);
    assert_eq!(call(&m(&p, "crm.deal.list"), json!({})).await.status, 503);
    assert_eq!(call(&m(&p, "crm.deal.list"), json!({})).await.status, 200);

    ctl.inject_fault(fault(FaultKind::InternalError, Some(1), None));
    assert_eq!(call(&m(&p, "crm.deal.list"), json!({})).await.status, 500);
    ctl.inject_fault(fault(FaultKind::OperationTimeLimit, Some(1), None));
    assert_eq!(call(&m(&p, "crm.deal.list"), json!({})).await.status, 429);
    ctl.inject_fault(fault(FaultKind::ExpiredToken, Some(1), None));
    let r = call(&m(&p, "crm.deal.list"), json!({})).await;
    assert_eq!(
        (r.status, r.json["error"].as_str()),
        (401, Some("expired_token"))
    );

    ctl.inject_fault(fault(
        FaultKind::PortalError {
            status: 403,
            code: "ACCESS_DENIED".into(),
            description: "Access denied.".into(),
        },
        Some(1),
        Some("crm.currency.list"),
    ));
    let r = call(&m(&p, "crm.currency.list"), json!({})).await;
    assert_eq!(
        (
            r.status,
            r.json["error"].as_str(),
            r.json["error_description"].as_str()
        ),
        (403, Some("ACCESS_DENIED"), Some("Access denied."))
    );
    assert_eq!(
        call(&m(&p, "crm.currency.list"), json!({})).await.status,
        200
    );

    ctl.inject_fault(fault(FaultKind::TruncatedJson, Some(1), None));
    let r = call(&m(&p, "crm.deal.list"), json!({})).await;
    assert_eq!(r.status, 200);
    assert!(
        serde_json::from_str::<serde_json::Value>(&r.text).is_err(),
        "body must be cut"
    );

    ctl.inject_fault(fault(FaultKind::ConnectionReset, Some(1), None));
    let r = reqwest::Client::new()
        .post(m(&p, "crm.deal.list"))
        .json(&json!({}))
        .send()
        .await;
    let broken = match r {
        Err(_) => true,
        Ok(resp) => resp.bytes().await.is_err(),
    };
    assert!(broken, "the body stream must fail");

    ctl.inject_fault(fault(FaultKind::Slow { delay_ms: 300 }, Some(1), None));
    let t0 = std::time::Instant::now();
    assert_eq!(call(&m(&p, "crm.deal.list"), json!({})).await.status, 200);
    assert!(t0.elapsed().as_millis() >= 300);

    ctl.inject_fault(Fault {
        kind: FaultKind::InternalError,
        method: None,
        probability: Some(0.5),
        remaining: None,
    });
    let mut n500 = 0;
    for _ in 0..40 {
        if call(&m(&p, "crm.status.list"), json!({})).await.status == 500 {
            n500 += 1;
        }
    }
    assert!((5..35).contains(&n500), "probability 0.5 gave {n500}/40");
    ctl.clear_faults();
    assert_eq!(call(&m(&p, "crm.status.list"), json!({})).await.status, 200);
    // Faults over HTTP too.
    let r = reqwest::Client::new()
        .post(format!("{}/_control/faults", p.base_url()))
        .json(&json!({"type": "query_limit_exceeded", "remaining": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(call(&m(&p, "crm.status.list"), json!({})).await.status, 503);
    assert!(ctl.counters().faults_injected >= 9);
    p.shutdown().await;
}
