//! `serve` as an HTTP service: auth on every endpoint but /healthz, validation of names and
//! parameters (400 with a clear message), cheap HEAD, an aborted body on upstream failure,
//! and no secret in any response or log line.
use b24ch::commands::serve;
use b24ch::config::from_toml_str;
use b24ch::portal;
use bitrix24_emulator::{DataSizes, Fault, FaultKind, PortalConfig};
use std::sync::Arc;

const TOKEN: &str = "tok-0123456789abcdef-secret";

async fn start() -> (serve::RunningServe, portal::PortalConnection) {
    let mut cfg = from_toml_str(&format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n[clickhouse]\npassword = \"ch-password-secret-42\"\n"
    ))
    .unwrap();
    let demo = PortalConfig {
        sizes: DataSizes {
            deals: 300,
            ..DataSizes::default()
        },
        time_scale: 100.0,
        ..PortalConfig::default()
    };
    let p = portal::connect(&mut cfg, demo).await.unwrap();
    let s = serve::start(Arc::new(cfg), &p).await.unwrap();
    (s, p)
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_but_healthz_needs_the_token() {
    let (s, _p) = start().await;
    let paths = [
        "/",
        "/metrics",
        "/v1/entities",
        "/v1/entities/crm_deal/schema",
        "/v1/entities/crm_deal/rows",
        "/v1/entities/crm_deal/ids",
        "/v1/entities/crm_deal/ddl",
        "/v1/meta/entities",
        "/v1/meta/governor",
        "/nonexistent",
    ];
    for path in paths {
        let url = format!("{}{path}", s.url());
        let none = http().get(&url).send().await.unwrap();
        assert_eq!(none.status(), 401, "{path} without token");
        let wrong = http()
            .get(&url)
            .bearer_auth("tok-0123456789abcdef-secreX")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{path} with a wrong token");
        let prefix = http()
            .get(&url)
            .bearer_auth(&TOKEN[..10])
            .send()
            .await
            .unwrap();
        assert_eq!(prefix.status(), 401, "{path} with a token prefix");
        let head = http().head(&url).send().await.unwrap();
        assert_eq!(head.status(), 401, "HEAD {path} without token");
    }
    let h = http()
        .get(format!("{}/healthz", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(h.status(), 200);
    let ok = http()
        .get(format!("{}/v1/entities", s.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let body: serde_json::Value = ok.json().await.unwrap();
    assert!(
        body.as_array()
            .unwrap()
            .iter()
            .any(|e| e["entity"] == "crm_deal")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_and_parameters_are_400_with_a_clear_message() {
    let (s, _p) = start().await;
    let cases = [
        ("/v1/entities/crm_nope/rows", "unknown entity"),
        ("/v1/entities/..%2F..%2Fetc%2Fpasswd/rows", "unknown entity"),
        ("/v1/entities/crm_deal%27%3B%20DROP/rows", "unknown entity"),
        (
            &format!("/v1/entities/{}/rows", "x".repeat(5000)),
            "unknown entity",
        ),
        (
            "/v1/entities/crm_deal/rows?modified_since=1800-01-01%2000:00:00",
            "modified_since",
        ),
        (
            "/v1/entities/crm_deal/rows?modified_since=99999999999999999999",
            "modified_since",
        ),
        (
            "/v1/entities/crm_deal/rows?modified_since=yesterday",
            "modified_since",
        ),
        ("/v1/entities/crm_deal/rows?format=CSV", "format"),
        ("/v1/entities/crm_deal/rows?limit=5", "unknown parameter"),
        ("/v1/entities/crm_deal/ids?format=Parquet", "format"),
        ("/v1/meta/secrets", "unknown meta table"),
    ];
    for (path, expected) in cases {
        let r = http()
            .get(format!("{}{path}", s.url()))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, 400, "{path}: {text}");
        assert!(text.contains(expected), "{path}: {text}");
        assert!(text.len() < 4000, "{path}: message is not bounded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_costs_no_bitrix_call_and_a_broken_upstream_aborts_the_body() {
    let (s, p) = start().await;
    let control = p.demo.as_ref().unwrap().control().clone();
    control.reset_counters();
    let r = http()
        .head(format!(
            "{}/v1/entities/crm_deal/rows?format=Parquet",
            s.url()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        control.counters().requests_total,
        0,
        "HEAD reached Bitrix24"
    );

    // An upstream error before the first byte is a 502 naming the Bitrix24 code.
    control.inject_fault(Fault {
        kind: FaultKind::InternalError,
        method: None,
        probability: Some(1.0),
        remaining: Some(1000),
    });
    let r = http()
        .get(format!("{}/v1/entities/crm_deal/rows", s.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert!(r.text().await.unwrap().contains("INTERNAL_SERVER_ERROR"));
    control.clear_faults();

    // Rate limits exhausted before the first byte: 503 with Retry-After.
    control.inject_fault(Fault {
        kind: FaultKind::OperationTimeLimit,
        method: None,
        probability: Some(1.0),
        remaining: Some(1000),
    });
    let r = http()
        .get(format!("{}/v1/entities/crm_deal/ids", s.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(r.status() == 503 || r.status() == 502, "{}", r.status());
    control.clear_faults();

    // A failure after the first page: the body must end with an error, never cleanly.
    let r = http()
        .get(format!(
            "{}/v1/entities/crm_deal/rows?format=JSONEachRow",
            s.url()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let full = r.text().await.unwrap();
    let complete_rows = full.lines().count();
    assert_eq!(complete_rows, 301, "300 deals + the watermark row");

    let big = {
        let mut cfg = PortalConfig::default();
        cfg.sizes.deals = 6000;
        cfg.time_scale = 1000.0;
        cfg
    };
    let mut cfg = from_toml_str(&format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n"
    ))
    .unwrap();
    let p2 = portal::connect(&mut cfg, big).await.unwrap();
    let s2 = serve::start(Arc::new(cfg), &p2).await.unwrap();
    let c2 = p2.demo.as_ref().unwrap().control().clone();
    let mut r = http()
        .get(format!(
            "{}/v1/entities/crm_deal/rows?format=JSONEachRow",
            s2.url()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The first chunk arrived; now every later portal call fails for good.
    let first = r.chunk().await.unwrap();
    assert!(first.is_some());
    c2.inject_fault(Fault {
        kind: FaultKind::InternalError,
        method: None,
        probability: Some(1.0),
        remaining: None,
    });
    let mut ended_with_error = false;
    loop {
        match r.chunk().await {
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(_) => {
                ended_with_error = true;
                break;
            }
        }
    }
    assert!(
        ended_with_error,
        "a broken upstream must abort the body, not end it cleanly"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_any_response() {
    let (s, p) = start().await;
    let webhook_code = p.demo.as_ref().unwrap().control().config().webhook_code;
    let paths = [
        "/",
        "/metrics",
        "/v1/entities",
        "/v1/entities/crm_deal/schema",
        "/v1/entities/crm_deal/ddl",
        "/v1/entities/crm_deal/rows?format=JSONEachRow",
        "/v1/entities/crm_deal/ids",
        "/v1/meta/entities",
        "/v1/meta/governor",
        "/v1/meta/errors",
        "/v1/meta/loads",
        "/v1/entities/crm_nope/rows",
    ];
    for path in paths {
        let r = http()
            .get(format!("{}{path}", s.url()))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let text = r.text().await.unwrap();
        for secret in [TOKEN, "ch-password-secret-42", webhook_code.as_str()] {
            assert!(!text.contains(secret), "{path} leaks a secret");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_was_served() {
    let (s, _p) = start().await;
    let rows = http()
        .get(format!(
            "{}/v1/entities/crm_deal/rows?format=JSONEachRow",
            s.url()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Portal rows only: the cursor (watermark) row, ID 0, is bookkeeping for ClickHouse.
    let served = rows
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("{\"ID\":0,"))
        .count();
    assert_eq!(served, rows.lines().count() - 1, "one watermark row");
    let r = http()
        .get(format!("{}/metrics", s.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = r.text().await.unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no series `{series}` in:\n{text}"))
    };
    assert!(served > 0);
    assert_eq!(
        value("b24ch_rows_served_total{entity=\"crm_deal\"}"),
        served as f64
    );
    assert_eq!(
        value("b24ch_loads_total{entity=\"crm_deal\",outcome=\"ok\"}"),
        1.0
    );
    assert!(value("b24ch_bitrix_requests_total") >= 1.0);
    assert!(text.contains("# TYPE b24ch_operating_used_seconds gauge"));
    assert!(text.trim_end().ends_with("# EOF"));
}
