//! Issue 10, item 9: `/v1/dictionaries/*` honours `enabled` and streams.
//!
//! - a source whose entity is disabled in the config is 404 with the setting named, and the
//!   `enum_labels` source leaves out the disabled entities' options (`exec dict` resolves its
//!   source with the same code, `b24ch::dictionaries`);
//! - the answer streams: the first rows reach the client while the portal is still being read,
//!   so a portal failure after them aborts the body (ClickHouse's dictionary load fails) rather
//!   than a buffered answer ending cleanly or never starting.
use b24ch::commands::serve;
use b24ch::config::from_toml_str;
use b24ch::portal;
use bitrix24_emulator::{DataSizes, Fault, FaultKind, PortalConfig};
use std::sync::Arc;

const TOKEN: &str = "dictionaries-test-token-0123456789";

async fn start(deals: u64, extra: &str) -> (serve::RunningServe, portal::PortalConnection) {
    let mut cfg = from_toml_str(&format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n{extra}\n"
    ))
    .unwrap();
    let demo = PortalConfig {
        sizes: DataSizes {
            deals,
            ..DataSizes::default()
        },
        time_scale: 1000.0,
        ..PortalConfig::default()
    };
    let p = portal::connect(&mut cfg, demo).await.unwrap();
    let s = serve::start(Arc::new(cfg), &p).await.unwrap();
    (s, p)
}

async fn get(s: &serve::RunningServe, path: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .get(format!("{}{path}", s.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

/// Entities that have at least one label line in an `enum_labels` answer.
fn label_entities(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["entity"].as_str().unwrap().to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_source_is_404_and_its_labels_are_left_out() {
    // Everything enabled: the sources answer, deals have enumeration labels.
    let (all, _p) = start(100, "").await;
    let (status, users) = get(&all, "/v1/dictionaries/user").await;
    assert_eq!(status, 200, "{users}");
    assert!(users.lines().count() > 0);
    let (status, labels) = get(&all, "/v1/dictionaries/enum_labels").await;
    assert_eq!(status, 200, "{labels}");
    let entities = label_entities(&labels);
    assert!(
        entities.contains("crm_deal") && entities.len() > 1,
        "the demo portal has deal labels and others: {entities:?}"
    );

    let (s, _p) = start(
        100,
        "[entities.user]\nenabled = false\n[entities.crm_deal]\nenabled = false\n",
    )
    .await;
    for name in ["user", "crm_deal"] {
        let (status, text) = get(&s, &format!("/v1/dictionaries/{name}")).await;
        assert_eq!(status, 404, "{name}: {text}");
        assert!(
            text.contains("disabled") && text.contains(&format!("[entities.{name}] enabled")),
            "{name}: {text}"
        );
    }
    // Keyed lookups (CACHE layouts POST their keys) are refused the same way.
    let r = reqwest::Client::new()
        .post(format!(
            "{}/v1/dictionaries/user?format=TabSeparated&columns=ID",
            s.url()
        ))
        .bearer_auth(TOKEN)
        .body("1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let (status, labels) = get(&s, "/v1/dictionaries/enum_labels").await;
    assert_eq!(status, 200, "{labels}");
    let left = label_entities(&labels);
    assert!(
        !left.contains("crm_deal"),
        "labels of a disabled entity: {left:?}"
    );
    assert_eq!(
        left,
        entities
            .iter()
            .filter(|e| *e != "crm_deal")
            .cloned()
            .collect(),
        "the enabled entities keep their labels"
    );

    let (off, _p) = start(100, "[entities.enum_labels]\nenabled = false\n").await;
    let (status, text) = get(&off, "/v1/dictionaries/enum_labels").await;
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("[entities.enum_labels] enabled"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_streams_and_a_later_portal_failure_aborts_it() {
    let (s, p) = start(12_000, "").await;
    let control = p.demo.as_ref().unwrap().control().clone();
    let mut r = reqwest::Client::new()
        .get(format!(
            "{}/v1/dictionaries/crm_deal?format=JSONEachRow",
            s.url()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Rows arrive before the listing is over…
    let first = r.chunk().await.unwrap().expect("a first chunk");
    assert!(!first.is_empty());
    // …so when the portal fails from now on, the body ends with an error, never cleanly.
    control.inject_fault(Fault {
        kind: FaultKind::InternalError,
        method: None,
        probability: Some(1.0),
        remaining: None,
    });
    let mut received = first.len();
    let ended_with_error = loop {
        match r.chunk().await {
            Ok(Some(c)) => received += c.len(),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(
        ended_with_error,
        "a dictionary whose portal failed midway ended cleanly after {received} bytes"
    );
    control.clear_faults();

    // Without a failure the same request is complete: one line per deal.
    let (status, text) = get(&s, "/v1/dictionaries/crm_deal?format=JSONEachRow").await;
    assert_eq!(status, 200);
    assert_eq!(text.lines().count(), 12_000);
}

/// `b24ch exec dict` resolves its source with the same code: a disabled one exits 2 with the
/// setting named; an enabled one prints its rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_dict_refuses_a_disabled_source_too() {
    use std::os::unix::fs::PermissionsExt;
    let portal = bitrix24_emulator::start(
        PortalConfig {
            sizes: DataSizes {
                deals: 20,
                ..DataSizes::default()
            },
            time_scale: 1000.0,
            ..PortalConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("b24ch.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\n[portal]\nwebhook_url = {:?}\n[entities.user]\nenabled = false\n",
            dir.path().join("state").display().to_string(),
            portal.webhook_url()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = |name: &'static str| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_b24ch"))
            .arg("--config")
            .arg(&config)
            .args(["exec", "dict", name, "--catalog-max-age", "0"])
            .env("RUST_LOG", "warn")
            .output()
    };
    let off = run("user").await.unwrap();
    let stderr = String::from_utf8_lossy(&off.stderr);
    assert_eq!(off.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("[entities.user] enabled"), "{stderr}");
    assert!(off.stdout.is_empty());
    let on = run("crm_status").await.unwrap();
    assert!(
        on.status.success(),
        "{}",
        String::from_utf8_lossy(&on.stderr)
    );
    assert!(String::from_utf8_lossy(&on.stdout).lines().count() > 0);
}
