//! `b24ch import-config`: the original Python connector's `config.cfg` (INI sections
//! `[Bitrix]`, `[Clickhouse]`, `[ImportSettings]`, `[BitrixApp]`) as an equivalent `b24ch.toml`.
//!
//! Pure conversion: what to write and what has no equivalent. Writing the files (and their
//! 0600 mode) is the command's job (`commands::import_config`).
use std::collections::BTreeMap;

/// Where the secrets of the imported config go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretsMode {
    /// `"env:B24CH_…"` references in the TOML, values in a separate env file.
    Env,
    /// The values inside the TOML itself.
    Inline,
}

/// Which portal credentials to import when the file has both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortalChoice {
    Webhook,
    App,
}

/// The result of a conversion.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// The `b24ch.toml` text.
    pub toml: String,
    /// `VAR=value` lines for the env file (empty in inline mode).
    pub env: Vec<(String, String)>,
    /// What has no equivalent, or changed meaning, one sentence each.
    pub notes: Vec<String>,
}

/// A `config.cfg` that cannot be read.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("config.cfg{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
pub struct ImportError {
    /// The offending line, when one line is to blame.
    pub line: Option<usize>,
    pub message: String,
}

type Ini = BTreeMap<String, BTreeMap<String, String>>;

/// Parses INI the way Python's `configparser` reads the original file: `[section]`,
/// `key=value` or `key: value`, `#`/`;` comment lines; keys are case-insensitive.
fn parse_ini(text: &str) -> Result<Ini, ImportError> {
    let mut out: Ini = BTreeMap::new();
    let mut section: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.trim().to_string());
            out.entry(name.trim().to_string()).or_default();
            continue;
        }
        let Some((key, value)) = line.split_once(['=', ':']) else {
            return Err(ImportError {
                line: Some(i + 1),
                message: "expected `key=value` or `[section]`".into(),
            });
        };
        let Some(s) = &section else {
            return Err(ImportError {
                line: Some(i + 1),
                message: "a key before the first [section]".into(),
            });
        };
        out.entry(s.clone())
            .or_default()
            .insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    Ok(out)
}

/// A TOML string literal.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

struct Writer {
    mode: SecretsMode,
    lines: Vec<String>,
    env: Vec<(String, String)>,
}

impl Writer {
    fn plain(&mut self, key: &str, value: &str) {
        self.lines.push(format!("{key} = {}", quoted(value)));
    }

    fn secret(&mut self, key: &str, var: &str, value: &str) {
        match self.mode {
            SecretsMode::Inline => self.plain(key, value),
            SecretsMode::Env => {
                self.lines
                    .push(format!("{key} = {}", quoted(&format!("env:{var}"))));
                self.env.push((var.to_string(), value.to_string()));
            }
        }
    }
}

/// Converts the text of a `config.cfg`.
pub fn import(
    text: &str,
    mode: SecretsMode,
    portal: PortalChoice,
) -> Result<Imported, ImportError> {
    let ini = parse_ini(text)?;
    let empty = BTreeMap::new();
    let sec = |name: &str| {
        ini.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map_or(&empty, |(_, v)| v)
    };
    let (bitrix, ch, settings, app) = (
        sec("Bitrix"),
        sec("Clickhouse"),
        sec("ImportSettings"),
        sec("BitrixApp"),
    );
    let mut w = Writer {
        mode,
        lines: vec![
            "# Imported from the original connector's config.cfg by `b24ch import-config`.".into(),
            "# Every key is explained in config_example.toml.".into(),
            String::new(),
            "[portal]".into(),
        ],
        env: Vec::new(),
    };
    let mut notes = Vec::new();
    let webhook = bitrix.get("bitrixurl").filter(|s| !s.is_empty());
    let has_app = app.get("client_id").is_some_and(|s| !s.is_empty());
    match (portal, webhook) {
        (PortalChoice::Webhook, Some(url)) => {
            w.secret("webhook_url", "B24CH_WEBHOOK_URL", url);
            if has_app {
                notes.push("[BitrixApp] not imported: the webhook of [Bitrix] is used (run with --portal app to use the OAuth application instead)".into());
            }
        }
        (PortalChoice::App, _) | (PortalChoice::Webhook, None) if has_app => {
            w.lines.push(String::new());
            w.lines.push("[portal.oauth]".into());
            if let Some(u) = app.get("bitrixurl") {
                w.plain("portal_url", u);
            }
            if let Some(c) = app.get("client_id") {
                w.plain("client_id", c);
            }
            for (key, var) in [
                ("client_secret", "B24CH_OAUTH_CLIENT_SECRET"),
                ("access_token", "B24CH_OAUTH_ACCESS_TOKEN"),
                ("refresh_token", "B24CH_OAUTH_REFRESH_TOKEN"),
            ] {
                if let Some(v) = app.get(key).filter(|v| !v.is_empty()) {
                    w.secret(key, var, v);
                }
            }
            if webhook.is_some() {
                notes.push("[Bitrix] BitrixURL not imported: the OAuth application of [BitrixApp] is used".into());
            }
        }
        _ => notes.push("no portal credentials ([Bitrix] BitrixURL or [BitrixApp]): add portal.webhook_url before running b24ch".into()),
    }

    w.lines.push(String::new());
    w.lines.push("[limits]".into());
    w.plain("plan", "standard");
    if let Some(op) = bitrix.get("operating_limit") {
        match op.parse::<f64>() {
            Ok(v) if v > 0.0 => w.lines.push(format!("operating_seconds_per_10min = {v:?}")),
            _ => {
                return Err(ImportError {
                    line: None,
                    message: format!(
                        "[Bitrix] operating_limit = {op:?} is not a positive number of seconds"
                    ),
                });
            }
        }
    }

    w.lines.push(String::new());
    w.lines.push("[clickhouse]".into());
    if let Some(u) = ch.get("url") {
        w.plain("url", u);
    } else if let Some(host) = ch.get("clickhouse_host") {
        w.plain("url", &format!("https://{host}:8443"));
        notes.push(format!(
            "[Clickhouse] has no url: https://{host}:8443 (the HTTPS interface) assumed; check it"
        ));
    }
    for (from, to) in [("database", "database"), ("clickhouse_user", "user")] {
        if let Some(v) = ch.get(from) {
            w.plain(to, v);
        }
    }
    if let Some(p) = ch.get("clickhouse_password").filter(|p| !p.is_empty()) {
        w.secret("password", "B24CH_CLICKHOUSE_PASSWORD", p);
    }
    if let Some(ca) = ch.get("verify_path").filter(|p| !p.is_empty()) {
        w.plain("ca_cert", ca);
    }
    if let Some(s) = ch.get("secure") {
        match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "on" => w.lines.push("secure = true".into()),
            "false" | "no" | "0" | "off" => w.lines.push("secure = false".into()),
            other => notes.push(format!(
                "[Clickhouse] secure = {other:?} is not True/False: left out (TLS follows the url scheme)"
            )),
        }
    }
    for key in ["clickhouse_host", "clickhouse_port"] {
        if let Some(v) = ch.get(key) {
            notes.push(format!("[Clickhouse] {key} = {v} has no equivalent: b24ch talks to ClickHouse over HTTP(S) only, at clickhouse.url"));
        }
    }
    if let Some(b) = settings.get("batch_size") {
        notes.push(format!("[ImportSettings] batch_size = {b} has no equivalent: b24ch streams every page (up to 2,500 rows per request) straight into ClickHouse"));
    }
    for (name, keys) in &ini {
        let known: &[&str] = match name.to_ascii_lowercase().as_str() {
            "bitrix" => &["bitrixurl", "operating_limit"],
            "clickhouse" => &[
                "url",
                "verify_path",
                "database",
                "clickhouse_host",
                "clickhouse_user",
                "clickhouse_password",
                "clickhouse_port",
                "secure",
            ],
            "importsettings" => &["batch_size"],
            "bitrixapp" => &[
                "bitrixurl",
                "client_id",
                "client_secret",
                "access_token",
                "refresh_token",
            ],
            _ => {
                notes.push(format!(
                    "[{name}] is not a section of the original connector: ignored"
                ));
                continue;
            }
        };
        for k in keys.keys().filter(|k| !known.contains(&k.as_str())) {
            notes.push(format!(
                "[{name}] {k} is unknown to the original connector: ignored"
            ));
        }
    }
    notes.push("the cron job (`main.py -s bitrix -e all_` every 5 minutes) is replaced by refreshable views (`b24ch serve` + `b24ch apply`) or `b24ch sync all`; each entity's schedule is `entities.<name>.schedule` (default 5 MINUTE)".into());
    notes.push("tables keep their names (b24.crm_deal, …) and dt_inserted; b24ch adds _version, _is_deleted, _invalid and the *_current views: run `b24ch apply` against a new database or check existing tables first".into());
    w.lines.push(String::new());
    w.lines.push("[entities.default]".into());
    w.plain("schedule", "5 MINUTE");
    w.lines.push(String::new());
    Ok(Imported {
        toml: w.lines.join("\n"),
        env: w.env,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_toml_str;

    const EXAMPLE: &str = "[Bitrix]\nBitrixURL=https://p.bitrix24.ru/rest/1/code01/\noperating_limit=400\n\n\
        [Clickhouse]\nurl=https://ch.example:8443\nverify_path=/ca.crt\ndatabase=b24_data\n\
        clickhouse_host=ch.example\nclickhouse_user=loader\nclickhouse_password=pw 123\nclickhouse_port=9440\n\n\
        [ImportSettings]\nbatch_size=2500\n\n[BitrixApp]\nBitrixURL=https://p.bitrix24.ru\n\
        client_id=local.1\nclient_secret=cs\naccess_token=at\nrefresh_token=rt\n";

    #[test]
    fn inline_secrets_give_an_equivalent_config() {
        // The CA file must exist for the config to validate.
        let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let text = EXAMPLE.replace("/ca.crt", ca);
        let r = import(&text, SecretsMode::Inline, PortalChoice::Webhook).unwrap();
        assert!(r.env.is_empty());
        let cfg = from_toml_str(&r.toml).unwrap_or_else(|e| panic!("{e}\n{}", r.toml));
        assert_eq!(cfg.clickhouse.database, "b24_data");
        assert_eq!(cfg.clickhouse.user, "loader");
        assert_eq!(cfg.clickhouse.password.expose(), "pw 123");
        assert_eq!(
            cfg.clickhouse.ca_cert.as_deref(),
            Some(std::path::Path::new(ca))
        );
        assert_eq!(cfg.limits.operating_seconds_per_10min, Some(400.0));
        for gone in [
            "clickhouse_host",
            "clickhouse_port",
            "batch_size",
            "[BitrixApp]",
        ] {
            assert!(
                r.notes.iter().any(|n| n.contains(gone)),
                "{gone}: {:?}",
                r.notes
            );
        }
    }

    #[test]
    fn env_mode_keeps_secrets_out_of_the_toml() {
        let r = import(EXAMPLE, SecretsMode::Env, PortalChoice::App).unwrap();
        for secret in ["code01", "pw 123", "cs", "\"at\"", "\"rt\""] {
            assert!(!r.toml.contains(secret), "{secret} in\n{}", r.toml);
        }
        let vars: Vec<&str> = r.env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            vars,
            [
                "B24CH_OAUTH_CLIENT_SECRET",
                "B24CH_OAUTH_ACCESS_TOKEN",
                "B24CH_OAUTH_REFRESH_TOKEN",
                "B24CH_CLICKHOUSE_PASSWORD"
            ]
        );
        assert!(r.toml.contains("client_id = \"local.1\""));
    }

    #[test]
    fn bad_input_names_the_line() {
        let e = import(
            "[Bitrix]\nnot a pair\n",
            SecretsMode::Env,
            PortalChoice::Webhook,
        )
        .unwrap_err();
        assert_eq!(e.line, Some(2));
        let e = import(
            "[Bitrix]\noperating_limit=lots\n",
            SecretsMode::Env,
            PortalChoice::Webhook,
        )
        .unwrap_err();
        assert!(e.message.contains("operating_limit"), "{e}");
    }
}
