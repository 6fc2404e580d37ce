//! `b24ch check`: validate the config and test connectivity to the portal and ClickHouse.
use crate::config::{Config, PortalAuth, redact};
use std::time::Duration;

/// One line of the report.
pub struct CheckLine {
    pub what: String,
    pub ok: bool,
    pub detail: String,
}

/// Runs every check; returns the lines (printed by the caller) and whether all passed.
pub async fn run(config: &Config) -> (Vec<CheckLine>, bool) {
    let mut lines = vec![CheckLine {
        what: "config".into(),
        ok: true,
        detail: describe_portal(&config.portal),
    }];
    lines.push(check_portal(config).await);
    lines.push(check_clickhouse(config).await);
    let all_ok = lines.iter().all(|l| l.ok);
    (lines, all_ok)
}

fn describe_portal(portal: &PortalAuth) -> String {
    match portal {
        PortalAuth::Demo => "valid; no portal configured, the embedded demo portal is used".into(),
        PortalAuth::Webhook { .. } => "valid; portal via inbound webhook".into(),
        PortalAuth::OAuth { portal_url, .. } => format!("valid; portal {portal_url} via OAuth app"),
    }
}

/// One cheap call any user may make (`crm.enum.ownertype`), through the governor.
async fn check_portal(config: &Config) -> CheckLine {
    use crate::bitrix::{Client, ClientConfig, Governor, GovernorConfig};
    let what = "portal".to_string();
    if matches!(config.portal, PortalAuth::Demo) {
        return CheckLine {
            what,
            ok: true,
            detail: "embedded demo portal (started by demo/serve/sync; nothing to reach)".into(),
        };
    }
    let client = ClientConfig::from_config(config).and_then(|c| {
        Client::new(
            c,
            Governor::new(GovernorConfig::from_limits(&config.limits)),
        )
    });
    let client = match client {
        Ok(c) => c,
        Err(e) => return fail(what, redact(&e.to_string(), &config.secrets())),
    };
    match client
        .call("crm.enum.ownertype", &serde_json::json!({}))
        .await
    {
        Ok(r) => CheckLine {
            what,
            ok: true,
            detail: format!(
                "reachable ({}), {} CRM entity types visible",
                client.portal_label(),
                r.result.as_array().map(Vec::len).unwrap_or(0)
            ),
        },
        Err(e) => fail(
            what,
            format!(
                "{}; check portal.webhook_url (or the OAuth settings) and the webhook's scopes (crm, user, department)",
                redact(&e.to_string(), &config.secrets())
            ),
        ),
    }
}

async fn check_clickhouse(config: &Config) -> CheckLine {
    let ch = &config.clickhouse;
    let what = format!("clickhouse {}", ch.url);
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => return fail(what, format!("cannot build an HTTP client: {e}")),
    };
    let resp = client
        .post(&ch.url)
        .basic_auth(&ch.user, Some(ch.password.expose()))
        .body("SELECT version()")
        .send()
        .await;
    match resp {
        Ok(r) if r.status().is_success() => {
            let version = r.text().await.unwrap_or_default();
            CheckLine {
                what,
                ok: true,
                detail: format!("reachable, version {}", version.trim()),
            }
        }
        Ok(r) => {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            fail(
                what,
                format!(
                    "HTTP {status}: {}; check clickhouse.user / clickhouse.password",
                    redact(body.trim(), &config.secrets())
                ),
            )
        }
        Err(e) => fail(
            what,
            format!(
                "not reachable ({}); check clickhouse.url and that the server runs",
                redact(&e.to_string(), &config.secrets())
            ),
        ),
    }
}

fn fail(what: String, detail: String) -> CheckLine {
    CheckLine {
        what,
        ok: false,
        detail,
    }
}
