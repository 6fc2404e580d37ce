//! `b24ch check`: validate the config, test connectivity to the portal and ClickHouse, and
//! list the entities the portal cannot serve (warnings, not failures).
use crate::config::{Config, PortalAuth, redact};
use std::time::Duration;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    Ok,
    /// Works, but something needs attention (an entity the portal cannot serve): not a failure.
    Warn,
    Fail,
}

impl CheckStatus {
    /// The label printed in front of the line.
    pub fn label(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok  ",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "FAIL",
        }
    }
}

/// One line of the report.
pub struct CheckLine {
    pub what: String,
    pub status: CheckStatus,
    pub detail: String,
}

impl CheckLine {
    pub fn ok(&self) -> bool {
        self.status != CheckStatus::Fail
    }
}

/// Runs every check; returns the lines (printed by the caller) and whether all passed.
pub async fn run(config: &Config) -> (Vec<CheckLine>, bool) {
    let mut lines = vec![CheckLine {
        what: "config".into(),
        status: CheckStatus::Ok,
        detail: describe_portal(&config.portal),
    }];
    lines.extend(check_portal(config).await);
    lines.push(check_clickhouse(config).await);
    let all_ok = lines.iter().all(CheckLine::ok);
    (lines, all_ok)
}

fn describe_portal(portal: &PortalAuth) -> String {
    match portal {
        PortalAuth::Demo => "valid; no portal configured, the embedded demo portal is used".into(),
        PortalAuth::Webhook { .. } => "valid; portal via inbound webhook".into(),
        PortalAuth::OAuth { portal_url, .. } => format!("valid; portal {portal_url} via OAuth app"),
    }
}

/// One cheap call any user may make (`crm.enum.ownertype`), through the governor; then the
/// catalog, with a line per entity the portal cannot serve.
async fn check_portal(config: &Config) -> Vec<CheckLine> {
    use crate::bitrix::{Client, ClientConfig, Governor, GovernorConfig};
    let what = "portal".to_string();
    if matches!(config.portal, PortalAuth::Demo) {
        return vec![CheckLine {
            what,
            status: CheckStatus::Ok,
            detail: "embedded demo portal (started by demo/serve/sync; nothing to reach)".into(),
        }];
    }
    let client = ClientConfig::from_config(config).and_then(|c| {
        Client::new(
            c,
            Governor::new(GovernorConfig::from_limits(&config.limits)),
        )
    });
    let client = match client {
        Ok(c) => c,
        Err(e) => return vec![fail(what, redact(&e.to_string(), &config.secrets()))],
    };
    let reached = match client
        .call("crm.enum.ownertype", &serde_json::json!({}))
        .await
    {
        Ok(r) => CheckLine {
            what,
            status: CheckStatus::Ok,
            detail: format!(
                "reachable ({}), {} CRM entity types visible",
                client.portal_label(),
                r.result.as_array().map(Vec::len).unwrap_or(0)
            ),
        },
        Err(e) => {
            return vec![fail(
                what,
                format!(
                    "{}; check portal.webhook_url (or the OAuth settings) and the webhook's scopes (crm, user, department)",
                    redact(&e.to_string(), &config.secrets())
                ),
            )];
        }
    };
    let mut lines = vec![reached];
    lines.extend(check_catalog(config, &client).await);
    lines
}

/// Discovers the catalog: how many entities the portal serves, and a warning line (not a
/// failure) per enabled entity it cannot serve, in its own words with what to do.
async fn check_catalog(config: &Config, client: &crate::bitrix::Client) -> Vec<CheckLine> {
    let catalog = match crate::catalog::discover(client).await {
        Ok(c) => c,
        Err(e) => {
            return vec![fail(
                "catalog".into(),
                format!(
                    "cannot read the portal's entities: {}",
                    redact(&e.to_string(), &config.secrets())
                ),
            )];
        }
    };
    let enabled = |name: &str| config.entity(name).enabled;
    let refused: Vec<_> = catalog
        .unavailable
        .iter()
        .filter(|u| enabled(&u.entity))
        .collect();
    let mut lines = vec![CheckLine {
        what: "catalog".into(),
        status: CheckStatus::Ok,
        detail: format!(
            "{} entities available, {} unavailable",
            catalog.entities.iter().filter(|e| enabled(&e.name)).count(),
            refused.len()
        ),
    }];
    lines.extend(refused.into_iter().map(|u| CheckLine {
        what: format!("entity {}", u.entity),
        status: CheckStatus::Warn,
        detail: format!("unavailable: Bitrix24 {}; {}", u.portal_said(), u.hint),
    }));
    lines
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
                status: CheckStatus::Ok,
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
        status: CheckStatus::Fail,
        detail,
    }
}
