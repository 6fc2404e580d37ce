//! `b24ch check`: validate the config, test connectivity to the portal and ClickHouse, check
//! serve's transport (certificate dates and names), and list the entities the portal cannot
//! serve (warnings, not failures).
use crate::config::{Config, Exposure, PortalAuth, Transport, redact};
use crate::serve::tls::{CertInfo, ServerCert};
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
    lines.push(check_serve_transport(config));
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

/// How `serve` would listen: refused plain HTTP, or the certificate's validity and names.
fn check_serve_transport(config: &Config) -> CheckLine {
    let proxy = &config.proxy;
    let what = format!("serve {}", proxy.public_url);
    let files = match (&proxy.transport, proxy.exposure()) {
        (Transport::Tls(files), _) => files,
        (_, Exposure::PlainRefused) => return fail(what, proxy.plain_http_risk()),
        (_, Exposure::PlainAllowed) => {
            return CheckLine {
                what,
                status: CheckStatus::Warn,
                detail: format!(
                    "WARNING: plain HTTP on {} (allowed by proxy.allow_plain_http): the token and every CRM row cross the network in clear text",
                    proxy.listen
                ),
            };
        }
        _ => {
            return CheckLine {
                what,
                status: CheckStatus::Ok,
                detail: format!(
                    "plain HTTP on loopback {} (only this machine can connect)",
                    proxy.listen
                ),
            };
        }
    };
    let cert = match ServerCert::read(files) {
        Ok(c) => c,
        Err(e) => return fail(what, e.to_string()),
    };
    let host = reqwest::Url::parse(&proxy.public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string));
    let covered = host.as_deref().is_some_and(|h| cert.covers(h));
    describe_certificate(what, &cert.info, host.as_deref(), covered)
}

fn describe_certificate(
    what: String,
    info: &CertInfo,
    host: Option<&str>,
    covered: bool,
) -> CheckLine {
    let fmt = "%Y-%m-%d %H:%M UTC";
    let mut detail = format!(
        "HTTPS; certificate for {} valid from {} until {}",
        if info.names.is_empty() {
            info.subject.clone()
        } else {
            info.names.join(", ")
        },
        info.not_before.format(fmt),
        info.not_after.format(fmt)
    );
    let now = chrono::Utc::now();
    if let Some(p) = info.validity_problem(now) {
        detail.push_str(&format!("; {p}"));
    }
    let host = host.unwrap_or("(none)");
    if covered {
        detail.push_str(&format!("; covers public_url's host {host}"));
    } else {
        detail.push_str(&format!(
            "; does NOT cover public_url's host {host}, so ClickHouse will refuse it: set proxy.public_url to one of the certificate's names or get a certificate for {host}"
        ));
    }
    CheckLine {
        what,
        status: if covered && info.valid_at(now) {
            CheckStatus::Ok
        } else {
            CheckStatus::Fail
        },
        detail,
    }
}

fn fail(what: String, detail: String) -> CheckLine {
    CheckLine {
        what,
        status: CheckStatus::Fail,
        detail,
    }
}
