//! The status page used as a person would, in a real headless browser (Debian chromium driven
//! by playwright-core, tests/browser/status_page.mjs): the login form, a wrong token, the right
//! one, what the page shows (compared with the server's own figures), no overlapping text,
//! every bar with its value, no script error, logout. Screenshots at 1280×800 are kept in
//! target/artifacts/ (paths printed).
//!
//! Loads are pulled over HTTP exactly as ClickHouse's `url()` pulls them.
use b24ch::commands::serve;
use b24ch::config::from_toml_str;
use b24ch::portal;
use bitrix24_emulator::{Fault, FaultKind, PortalConfig};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const TOKEN: &str = "status-page-token-0123456789";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

async fn start(time_scale: f64) -> (serve::RunningServe, portal::PortalConnection) {
    let mut cfg = from_toml_str(&format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n"
    ))
    .unwrap();
    let demo = PortalConfig {
        time_scale,
        ..PortalConfig::default()
    };
    let p = portal::connect(&mut cfg, demo).await.unwrap();
    let s = serve::start(Arc::new(cfg), &p).await.unwrap();
    (s, p)
}

/// Pulls an entity's rows like ClickHouse does; the HTTP status.
async fn pull(s: &serve::RunningServe, entity: &str, what: &str) -> u16 {
    let r = reqwest::Client::new()
        .get(format!(
            "{}/v1/entities/{entity}/{what}?format=JSONEachRow",
            s.url()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let _ = r.text().await;
    status
}

async fn status_json(s: &serve::RunningServe) -> Value {
    reqwest::Client::new()
        .get(format!("{}/status/json", s.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Runs the browser script; its report.
async fn browse(s: &serve::RunningServe, shot: &str) -> Value {
    let modules = root().join(".build/node/node_modules");
    assert!(
        modules.join("playwright-core").is_dir()
            && std::path::Path::new("/usr/bin/chromium").exists(),
        "browser test dependencies are missing: run scripts/setup_browser.sh"
    );
    let artifacts = root().join("target/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let prefix = artifacts.join(shot);
    let shots = [
        prefix.with_extension("png"),
        artifacts.join(format!("{shot}-full.png")),
        artifacts.join(format!("{shot}-login.png")),
    ];
    for p in &shots {
        let _ = std::fs::remove_file(p);
    }
    let out = tokio::process::Command::new("node")
        .arg(root().join("tests/browser/status_page.mjs"))
        .arg(format!("{}/status/", s.url()))
        .arg(TOKEN)
        .arg(&prefix)
        .env("B24CH_NODE_MODULES", &modules)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser script failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    for p in &shots {
        let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        assert!(
            size > 5_000,
            "screenshot {} saved ({size} bytes)",
            p.display()
        );
        eprintln!("status page screenshot: {}", p.display());
    }
    report
}

fn digits(text: &str) -> Option<u64> {
    let d: String = text.chars().filter(char::is_ascii_digit).collect();
    d.parse().ok()
}

/// What every visit must show, whatever the data: the login flow, the cookie's flags, a
/// readable layout, no script error.
fn check_visit(report: &Value) {
    assert_eq!(report["errors"], serde_json::json!([]), "errors: {report}");
    assert_eq!(
        report["unauthorizedLoads"], 3,
        "the login form before, after a wrong token and after logout: {report}"
    );
    assert_eq!(report["loginStatus"], 401, "{report}");
    assert_eq!(report["loginFormShown"], true, "{report}");
    assert_eq!(report["entitiesBeforeLogin"], 0, "no data before login");
    let wrong = report["wrongTokenMessage"].as_str().unwrap();
    assert!(
        wrong.contains("Wrong token") && wrong.contains("4 more tries"),
        "{wrong}"
    );
    assert_eq!(report["pageStatus"], 200, "{report}");
    assert!(
        report["pageUrl"].as_str().unwrap().ends_with("/status/"),
        "{report}"
    );
    let cookies = report["cookies"].as_array().unwrap();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let c = &cookies[0];
    assert_eq!(c["name"], "b24ch_session");
    assert_eq!(c["httpOnly"], true);
    assert_eq!(c["sameSite"], "Strict");
    assert_eq!(c["path"], "/status");
    assert_eq!(report["cookieVisibleToScript"], false);
    assert_eq!(report["metaRefresh"], 15, "the page refreshes itself");
    let layout = &report["layout"];
    assert_eq!(
        layout["overlapCount"], 0,
        "overlapping text: {}",
        layout["overlaps"]
    );
    assert!(layout["textBoxes"].as_u64().unwrap() > 100, "{layout}");
    assert_eq!(layout["tooWide"], false, "no sideways scrolling at 1280 px");
    for bar in layout["bars"].as_array().unwrap() {
        assert!(
            !bar["value"].as_str().unwrap().is_empty() && bar["beside"] == true,
            "every bar prints its value beside it: {bar}"
        );
    }
    assert!(
        report["afterLogout"]
            .as_str()
            .unwrap()
            .contains("logged out"),
        "{report}"
    );
    assert_eq!(report["afterLogoutStatus"], 401);
    assert_eq!(report["afterLogoutEntities"], 0);
}

/// Every entity and billing key of the server's own figures is on the page with its numbers.
fn check_numbers(report: &Value, truth: &Value) {
    let shown = report["entities"].as_array().unwrap();
    for e in truth["entities"].as_array().unwrap() {
        let name = e["entity"].as_str().unwrap();
        let row = shown
            .iter()
            .find(|r| r["entity"] == name)
            .unwrap_or_else(|| panic!("{name} missing from the page"));
        assert_eq!(row["health"], e["health"], "{name}: {row}");
        assert!(
            row["freshness"]
                .as_str()
                .unwrap()
                .contains(e["health"].as_str().unwrap()),
            "{name}: {row}"
        );
        if let Some(last) = e["last_load"].as_object() {
            assert_eq!(
                digits(row["rows"].as_str().unwrap()),
                last["rows"].as_u64(),
                "{name} rows: {row}"
            );
            assert_eq!(
                digits(row["requests"].as_str().unwrap()),
                last["requests"].as_u64(),
                "{name} requests: {row}"
            );
            assert!(row["operating"].as_str().unwrap().ends_with(" s"), "{row}");
            let day = row["day"].as_str().unwrap();
            let n =
                e["day"]["loads_ok"].as_u64().unwrap() + e["day"]["loads_failed"].as_u64().unwrap();
            assert!(day.starts_with(&format!("{n} load")), "{name}: {day}");
            assert_eq!(row["marks"].as_u64(), Some(n.min(12)), "{name}: {row}");
        }
    }
    assert_eq!(
        shown.len(),
        truth["entities"].as_array().unwrap().len(),
        "no other rows"
    );
    let keys = report["keys"].as_array().unwrap();
    let truth_keys = truth["keys"].as_array().unwrap();
    assert!(!truth_keys.is_empty());
    for k in truth_keys {
        let name = k["key"].as_str().unwrap();
        let row = keys
            .iter()
            .find(|r| r["key"] == name)
            .unwrap_or_else(|| panic!("billing key {name} missing from the page"));
        assert_eq!(
            digits(row["calls"].as_str().unwrap()),
            k["calls"].as_u64(),
            "{row}"
        );
        assert_eq!(
            digits(row["waits"].as_str().unwrap()),
            k["waits"].as_u64(),
            "{row}"
        );
        let used = row["used"].as_str().unwrap();
        assert!(
            used.contains(" s of 480 s") && used.ends_with("%)"),
            "used vs the limit: {used}"
        );
        assert_eq!(row["limitDrawn"], 1, "b24ch's ceiling drawn on {name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_shows_every_entity_and_key_with_numbers() {
    let (s, p) = start(100.0).await;
    let portal = p.demo.as_ref().unwrap().control();
    portal.reset_counters();
    let entities: Vec<String> = s
        .state
        .catalog()
        .entities
        .iter()
        .map(|e| e.name.clone())
        .collect();
    for e in &entities {
        assert_eq!(pull(&s, e, "rows").await, 200, "{e}");
    }
    assert_eq!(pull(&s, "crm_deal", "ids").await, 200);
    let truth = status_json(&s).await;

    // The meter counts every request of every load: together, all the portal received.
    let metered: u64 = truth["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["day"]["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(metered, portal.counters().requests_total, "{truth}");
    let deal = truth["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["entity"] == "crm_deal")
        .unwrap();
    assert_eq!(deal["last_load"]["rows"], 240, "every demo deal: {deal}");
    assert_eq!(deal["day"]["loads_ok"], 2, "rows and ids: {deal}");

    let report = browse(&s, "status_page").await;
    check_visit(&report);
    check_numbers(&report, &truth);
    for row in report["entities"].as_array().unwrap() {
        assert_eq!(row["health"], "fresh", "{row}");
        assert_eq!(row["error"], "", "{row}");
    }
    assert!(
        report["summary"]
            .as_str()
            .unwrap()
            .contains(&format!("{n} of {n} fresh", n = entities.len())),
        "{report}"
    );
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    s.stop();
}

const EVIL_TITLE: &str = "<img src=x onerror=alert(1)> & \"Orders\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_shows_a_failing_entity_a_paused_key_and_a_refusal() {
    // Real time, so the governor's pause after a 429 (a minute) outlasts the visit.
    let mut cfg = from_toml_str(&format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n"
    ))
    .unwrap();
    let p = portal::connect(&mut cfg, PortalConfig::default())
        .await
        .unwrap();
    let portal = p.demo.as_ref().unwrap().control();
    portal.add_smart_process(None, EVIL_TITLE, 5).unwrap();
    let s = serve::start(Arc::new(cfg), &p).await.unwrap();

    assert_eq!(pull(&s, "crm_deal", "rows").await, 200);
    // A final answer of the portal: the load fails at once, in the portal's words.
    portal.inject_fault(Fault {
        kind: FaultKind::PortalError {
            status: 403,
            code: "ACCESS_DENIED".into(),
            description: "Access denied.".into(),
        },
        method: Some("crm.currency.list".into()),
        probability: None,
        remaining: None,
    });
    assert_eq!(pull(&s, "crm_currency", "rows").await, 502);
    // A 429 for one key: the governor pauses it; the load waits in the background.
    portal.inject_fault(Fault {
        kind: FaultKind::OperationTimeLimit,
        method: Some("department.get".into()),
        probability: None,
        remaining: Some(1),
    });
    let waiting = {
        let url = format!("{}/v1/entities/department/rows", s.url());
        tokio::spawn(async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(TOKEN)
                .send()
                .await
        })
    };
    let governor = s.state.client.governor().clone();
    let paused =
        || {
            let now = governor.server_now();
            governor.snapshot().methods.iter().any(|m| {
                m.key == "department.get" && m.blocked_until.is_some_and(|u| u > now + 20.0)
            })
        };
    let mut tries = 0;
    while !paused() {
        tries += 1;
        assert!(tries < 600, "department.get was never paused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // What another part of serve records when it refuses an action.
    s.state.stats.refused(
        "crm_deal",
        "deletion reconcile",
        "the ID list would delete 96% of the table's rows",
        "check the portal; if the deletions are real, allow them in the config",
    );

    let report = browse(&s, "status_page_problems").await;
    check_visit(&report);
    let truth = status_json(&s).await;
    check_numbers(&report, &truth);

    let rows = report["entities"].as_array().unwrap();
    let currency = rows.iter().find(|r| r["entity"] == "crm_currency").unwrap();
    assert_eq!(currency["health"], "failing", "{currency}");
    let error = currency["error"].as_str().unwrap();
    assert!(
        error.contains("ACCESS_DENIED") && error.contains("Access denied."),
        "the portal's words: {error}"
    );
    assert!(
        rows.iter().any(|r| r["title"] == EVIL_TITLE),
        "a portal title shows as text, not markup: {rows:?}"
    );
    let key = report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == "department.get")
        .unwrap();
    assert_eq!(key["state"], "paused", "{key}");
    assert!(
        key["reason"]
            .as_str()
            .unwrap()
            .contains("429 OPERATION_TIME_LIMIT")
    );
    let problems = report["problems"].as_array().unwrap();
    let problem = |subject: &str, words: &str| {
        problems
            .iter()
            .any(|p| p["subject"] == subject && p["text"].as_str().unwrap().contains(words))
    };
    assert!(
        problem(
            "crm_currency",
            "What to do: The webhook's user may not read this"
        ),
        "{problems:?}"
    );
    assert!(problem("department.get", "paused for"), "{problems:?}");
    assert!(
        problem("crm_deal", "deletion reconcile refused"),
        "{problems:?}"
    );
    assert_eq!(
        problems[0]["subject"], "crm_deal",
        "errors (the refusal, newest first) before warnings: {problems:?}"
    );
    waiting.abort();
    s.stop();
}
