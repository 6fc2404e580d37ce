//! Shared helpers for the demo portal integration tests.

use bitrix24_emulator::{PortalConfig, RunningPortal, start};
use serde_json::Value;

pub(crate) async fn portal(cfg: PortalConfig) -> RunningPortal {
    start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

/// A fast portal: simulated time runs 10,000× faster, no limits.
pub(crate) fn fast_config() -> PortalConfig {
    let mut cfg = PortalConfig {
        time_scale: 10_000.0,
        ..PortalConfig::default()
    };
    cfg.limits.enabled = false;
    cfg
}

pub(crate) struct Resp {
    pub status: u16,
    pub text: String,
    pub json: Value,
    pub content_type: String,
}

pub(crate) async fn call(url: &str, body: Value) -> Resp {
    let r = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    to_resp(r).await
}

pub(crate) async fn get(url: &str) -> Resp {
    let r = reqwest::Client::new().get(url).send().await.unwrap();
    to_resp(r).await
}

pub(crate) async fn to_resp(r: reqwest::Response) -> Resp {
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        text,
        json,
        content_type,
    }
}

/// Method URL on the webhook.
pub(crate) fn m(p: &RunningPortal, method: &str) -> String {
    format!("{}{method}", p.webhook_url())
}

/// The workspace root: the shared fixtures (`tests/fixtures/`) and the Python test
/// environment (`.build/pyenv`) live there.
pub(crate) const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
