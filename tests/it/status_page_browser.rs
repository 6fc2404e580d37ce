//! The status page in a real headless browser (Debian chromium driven by playwright-core):
//! it loads, lists every entity of the demo portal, draws its charts, and a screenshot is
//! saved as a test artifact (target/artifacts/status_page.png).
use b24ch::commands::serve;
use b24ch::config::from_toml_str;
use b24ch::portal;
use bitrix24_emulator::PortalConfig;
use std::path::PathBuf;
use std::sync::Arc;

const TOKEN: &str = "status-page-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_shows_every_entity_and_its_charts() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let modules = root.join(".build/node/node_modules");
    assert!(
        modules.join("playwright-core").is_dir()
            && std::path::Path::new("/usr/bin/chromium").exists(),
        "browser test dependencies are missing: run scripts/setup_browser.sh"
    );
    let mut cfg = from_toml_str(&format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n"
    ))
    .unwrap();
    let demo = PortalConfig {
        time_scale: 100.0,
        ..PortalConfig::default()
    };
    let p = portal::connect(&mut cfg, demo).await.unwrap();
    let s = serve::start(Arc::new(cfg), &p).await.unwrap();
    // Two loads so the charts have data.
    let http = reqwest::Client::new();
    for e in ["crm_deal", "crm_lead"] {
        let r = http
            .get(format!(
                "{}/v1/entities/{e}/rows?format=JSONEachRow",
                s.url()
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap();
    }
    let artifacts = root.join("target/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("status_page.png");
    let _ = std::fs::remove_file(&shot);
    let out = tokio::process::Command::new("node")
        .arg(root.join("tests/browser/status_page.mjs"))
        .arg(format!("{}/", s.url()))
        .arg(TOKEN)
        .arg(&shot)
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
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["status"], 200);
    assert_eq!(
        report["errors"].as_array().unwrap().len(),
        0,
        "JS errors: {report}"
    );
    let shown: Vec<String> = report["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    for e in &s.state.catalog().entities {
        assert!(
            shown.contains(&e.name),
            "{} missing from the page: {shown:?}",
            e.name
        );
    }
    assert!(report["rowBars"].as_u64().unwrap() >= 2, "{report}");
    assert!(report["budgetBars"].as_u64().unwrap() >= 1, "{report}");
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 5_000,
        "screenshot saved"
    );
}
