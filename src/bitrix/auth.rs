//! Authentication: an inbound webhook, or an OAuth application whose tokens rotate.
//!
//! OAuth refresh follows the documented flow (docs/bitrix24-api.md §1.2): call with the stored token; on 401
//! `expired_token` refresh via `{oauth_server}/oauth/token/` and repeat. The rotated refresh
//! token replaces the old one, so it is persisted atomically (temp file, fsync, rename) before
//! it is used: losing it would force a manual re-authorisation. Concurrent callers that hit an
//! expired token share one refresh (single flight).
//!
//! Several processes (`serve`, `sync`, the `exec` processes ClickHouse starts) share one app and
//! its token file. A refresh takes an exclusive lock on the file (`<file>.lock`) and re-reads it
//! inside the lock: if another process rotated the pair meanwhile, that pair is adopted instead
//! of refreshing with a refresh token the portal has already replaced. On `invalid_grant` the
//! file is read once more before failing. New tokens go into memory first, then to disk with
//! retries and a loud log: a process never loses the pair it holds.
use super::error::BitrixError;
use crate::config::Secret;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tokio::sync::{Mutex, RwLock};

/// How to reach and authenticate against a portal.
#[derive(Debug, Clone)]
pub enum AuthConfig {
    /// `https://portal/rest/USER/CODE/`: the whole URL is secret.
    Webhook {
        url: Secret,
    },
    OAuth(OAuthConfig),
}

#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// `https://portal.bitrix24.com` (REST calls go to `{portal_url}/rest/{method}`).
    pub portal_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub access_token: Secret,
    pub refresh_token: Secret,
    /// `https://oauth.bitrix.info` in production; the emulator in tests.
    pub oauth_server: String,
    /// Where rotated tokens are kept; `None` = memory only (tests, demo).
    pub state_dir: Option<PathBuf>,
}

/// Tokens as persisted in the state directory.
#[derive(Serialize, Deserialize)]
struct StoredTokens {
    portal_url: String,
    client_id: String,
    access_token: String,
    refresh_token: String,
    expires: Option<i64>,
}

#[derive(Clone)]
struct Tokens {
    access: Secret,
    refresh: Secret,
    /// Bumped on every refresh, so a caller can tell whether someone refreshed meanwhile.
    generation: u64,
}

pub(crate) struct OAuth {
    cfg: OAuthConfig,
    tokens: RwLock<Tokens>,
    refresh_flight: Mutex<()>,
}

/// The authentication in use.
pub(crate) enum Auth {
    Webhook { base: Secret },
    OAuth(Box<OAuth>),
}

impl Auth {
    pub(crate) fn new(cfg: AuthConfig) -> Result<Self, BitrixError> {
        match cfg {
            AuthConfig::Webhook { url } => {
                let mut base = url.expose().trim().to_string();
                if !base.starts_with("http://") && !base.starts_with("https://") {
                    return Err(BitrixError::Usage(
                        "webhook URL must start with http:// or https://".into(),
                    ));
                }
                if !base.ends_with('/') {
                    base.push('/');
                }
                Ok(Auth::Webhook {
                    base: Secret::new(base),
                })
            }
            AuthConfig::OAuth(cfg) => {
                let mut tokens = Tokens {
                    access: cfg.access_token.clone(),
                    refresh: cfg.refresh_token.clone(),
                    generation: 0,
                };
                // A rotated pair from an earlier run is newer than the configured one.
                if let Some(stored) = load_tokens(&cfg)? {
                    tokens.access = Secret::new(stored.access_token);
                    tokens.refresh = Secret::new(stored.refresh_token);
                }
                Ok(Auth::OAuth(Box::new(OAuth {
                    cfg,
                    tokens: RwLock::new(tokens),
                    refresh_flight: Mutex::new(()),
                })))
            }
        }
    }

    /// The URL of a method (may contain the webhook secret: never log it).
    pub(crate) fn method_url(&self, method: &str) -> String {
        match self {
            Auth::Webhook { base } => format!("{}{method}", base.expose()),
            Auth::OAuth(o) => format!("{}/rest/{method}", o.cfg.portal_url.trim_end_matches('/')),
        }
    }

    /// The access token to send (`auth` parameter) and its generation.
    pub(crate) async fn access(&self) -> Option<(Secret, u64)> {
        match self {
            Auth::Webhook { .. } => None,
            Auth::OAuth(o) => {
                let t = o.tokens.read().await;
                Some((t.access.clone(), t.generation))
            }
        }
    }

    /// Every secret this auth holds, for redaction.
    pub(crate) async fn secrets(&self) -> Vec<Secret> {
        match self {
            Auth::Webhook { base } => {
                let mut out = vec![base.clone()];
                // The code segment alone may appear in messages too.
                if let Some(code) = webhook_code(base.expose()) {
                    out.push(Secret::new(code));
                }
                out
            }
            Auth::OAuth(o) => {
                let t = o.tokens.read().await;
                vec![
                    t.access.clone(),
                    t.refresh.clone(),
                    o.cfg.client_secret.clone(),
                ]
            }
        }
    }

    /// Refreshes the token unless another caller already did since `seen_generation`.
    pub(crate) async fn refresh(
        &self,
        http: &reqwest::Client,
        seen_generation: u64,
    ) -> Result<(), BitrixError> {
        let Auth::OAuth(o) = self else {
            return Err(BitrixError::api(
                "auth",
                401,
                "expired_token",
                "webhook credentials cannot be refreshed",
            ));
        };
        let _flight = o.refresh_flight.lock().await;
        if o.tokens.read().await.generation != seen_generation {
            return Ok(());
        }
        let _file_lock = lock_token_file(&o.cfg).await?;
        let refresh = o.tokens.read().await.refresh.clone();
        // Another process may have refreshed while this one waited for the lock.
        if o.adopt_newer_from_file(&refresh).await? {
            return Ok(());
        }
        let fresh = match request_refresh(http, &o.cfg, &refresh).await {
            Err(BitrixError::OAuth { code, .. })
                if code == "invalid_grant" && o.adopt_newer_from_file(&refresh).await? =>
            {
                return Ok(());
            }
            other => other?,
        };
        // Memory first: this process keeps working whatever happens to the disk.
        {
            let mut t = o.tokens.write().await;
            t.access = Secret::new(fresh.access_token.clone());
            t.refresh = Secret::new(fresh.refresh_token.clone());
            t.generation += 1;
        }
        persist_with_retries(&o.cfg, &fresh).await;
        Ok(())
    }

    /// A printable name of the portal without secrets.
    pub(crate) fn portal_label(&self) -> String {
        match self {
            Auth::Webhook { base } => redact_webhook(base.expose()),
            Auth::OAuth(o) => o.cfg.portal_url.clone(),
        }
    }
}

impl OAuth {
    /// Takes the pair in the token file if it differs from `current` (another process
    /// rotated it); `true` when adopted.
    async fn adopt_newer_from_file(&self, current: &Secret) -> Result<bool, BitrixError> {
        let Some(stored) = load_tokens(&self.cfg)? else {
            return Ok(false);
        };
        if stored.refresh_token == current.expose() || stored.refresh_token.is_empty() {
            return Ok(false);
        }
        let mut t = self.tokens.write().await;
        t.access = Secret::new(stored.access_token);
        t.refresh = Secret::new(stored.refresh_token);
        t.generation += 1;
        tracing::info!(
            generation = t.generation,
            "OAuth tokens taken from the token file (another process refreshed them)"
        );
        Ok(true)
    }
}

/// How long a refresh waits for another process's lock on the token file.
const TOKEN_LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The exclusive lock on the token file (`None` without a state dir), waited for on a
/// blocking thread, at most [`TOKEN_LOCK_TIMEOUT`].
async fn lock_token_file(cfg: &OAuthConfig) -> Result<Option<std::fs::File>, BitrixError> {
    let Some(dir) = &cfg.state_dir else {
        return Ok(None);
    };
    let mut path = token_path(dir, &cfg.portal_url, &cfg.client_id).into_os_string();
    path.push(".lock");
    let path = PathBuf::from(path);
    let dir = dir.clone();
    let locked = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        let started = std::time::Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(std::fs::TryLockError::WouldBlock)
                    if started.elapsed() < TOKEN_LOCK_TIMEOUT =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(std::io::Error::other(format!(
                        "another process held {} for more than {TOKEN_LOCK_TIMEOUT:?}",
                        path.display()
                    )));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(e),
            }
        }
    })
    .await
    .map_err(|e| BitrixError::State(format!("token file lock: {e}")))?;
    locked
        .map(Some)
        .map_err(|e| BitrixError::State(format!("token file lock: {e}")))
}

/// Writes the new pair to the token file, retrying; a failure is logged loudly (the pair is
/// in memory, but other processes and the next start will not find it).
async fn persist_with_retries(cfg: &OAuthConfig, tokens: &StoredTokens) {
    const ATTEMPTS: u32 = 5;
    for attempt in 1..=ATTEMPTS {
        match persist_tokens(cfg, tokens) {
            Ok(()) => {
                tracing::info!("OAuth tokens refreshed and persisted");
                return;
            }
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "OAuth tokens not written yet; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt)))
                    .await;
            }
            Err(e) => tracing::error!(
                error = %e,
                "OAuth tokens could NOT be written to the state dir: this process keeps them in memory, but other processes and the next start will need a new authorisation unless the state dir is fixed"
            ),
        }
    }
}

/// `https://host/rest/1/CODE/` → `CODE`.
fn webhook_code(url: &str) -> Option<String> {
    let after = url.split("/rest/").nth(1)?;
    let code = after.split('/').nth(1)?;
    (!code.is_empty()).then(|| code.to_string())
}

/// `https://host/rest/1/CODE/` → `https://host/rest/1/***/`.
pub fn redact_webhook(url: &str) -> String {
    match webhook_code(url) {
        Some(code) => url.replace(&code, "***"),
        None => "***".into(),
    }
}

#[derive(Deserialize)]
struct RefreshAnswer {
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires: Option<i64>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn request_refresh(
    http: &reqwest::Client,
    cfg: &OAuthConfig,
    refresh: &Secret,
) -> Result<StoredTokens, BitrixError> {
    let url = format!("{}/oauth/token/", cfg.oauth_server.trim_end_matches('/'));
    let resp = http
        .get(&url)
        .query(&[
            ("grant_type", "refresh_token"),
            ("client_id", cfg.client_id.as_str()),
            ("client_secret", cfg.client_secret.expose()),
            ("refresh_token", refresh.expose()),
        ])
        .send()
        .await
        .map_err(|e| BitrixError::OAuth {
            status: 0,
            code: "transport".into(),
            description: e.without_url().to_string(),
        })?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.map_err(|e| BitrixError::OAuth {
        status,
        code: "transport".into(),
        description: e.without_url().to_string(),
    })?;
    let answer: RefreshAnswer = serde_json::from_slice(&body).map_err(|e| BitrixError::OAuth {
        status,
        code: "malformed".into(),
        description: format!("refresh answer is not JSON: {e}"),
    })?;
    if let Some(code) = answer.error {
        return Err(BitrixError::OAuth {
            status,
            code,
            description: answer.error_description.unwrap_or_default(),
        });
    }
    match (answer.access_token, answer.refresh_token) {
        (Some(a), Some(r)) if !a.is_empty() && !r.is_empty() => Ok(StoredTokens {
            portal_url: cfg.portal_url.clone(),
            client_id: cfg.client_id.clone(),
            access_token: a,
            refresh_token: r,
            expires: answer.expires,
        }),
        _ => Err(BitrixError::OAuth {
            status,
            code: "malformed".into(),
            description: "refresh answer lacks access_token or refresh_token".into(),
        }),
    }
}

/// The token file of one portal + app inside the state dir.
pub fn token_path(state_dir: &Path, portal_url: &str, client_id: &str) -> PathBuf {
    let slug: String = format!("{portal_url}-{client_id}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    state_dir.join(format!("oauth-{slug}.json"))
}

fn load_tokens(cfg: &OAuthConfig) -> Result<Option<StoredTokens>, BitrixError> {
    let Some(dir) = &cfg.state_dir else {
        return Ok(None);
    };
    let path = token_path(dir, &cfg.portal_url, &cfg.client_id);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            BitrixError::State(format!("{} is not a token file: {e}", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(BitrixError::State(format!("{}: {e}", path.display()))),
    }
}

fn persist_tokens(cfg: &OAuthConfig, tokens: &StoredTokens) -> Result<(), BitrixError> {
    let Some(dir) = &cfg.state_dir else {
        return Ok(());
    };
    let path = token_path(dir, &cfg.portal_url, &cfg.client_id);
    let bytes = serde_json::to_vec_pretty(tokens).map_err(|e| BitrixError::State(e.to_string()))?;
    write_atomically(&path, &bytes)
        .map_err(|e| BitrixError::State(format!("{}: {e}", path.display())))
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the new file, never a
/// torn one: temp file in the same dir, fsync, rename, fsync the dir. Owner-only permissions.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state"),
        std::process::id()
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        // Makes the rename itself durable; not supported everywhere, hence best effort.
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_code_is_redacted() {
        let url = "https://example.bitrix24.com/rest/1/s3cr3tc0de/";
        assert_eq!(
            redact_webhook(url),
            "https://example.bitrix24.com/rest/1/***/"
        );
        assert_eq!(webhook_code(url).as_deref(), Some("s3cr3tc0de"));
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.json");
        write_atomically(&p, b"one").unwrap();
        write_atomically(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn stored_tokens_override_configured_ones() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = OAuthConfig {
            portal_url: "https://p.example".into(),
            client_id: "app.1".into(),
            client_secret: Secret::new("cs"),
            access_token: Secret::new("old-access"),
            refresh_token: Secret::new("old-refresh"),
            oauth_server: "https://oauth.example".into(),
            state_dir: Some(dir.path().to_path_buf()),
        };
        let stored = StoredTokens {
            portal_url: cfg.portal_url.clone(),
            client_id: cfg.client_id.clone(),
            access_token: "new-access".into(),
            refresh_token: "new-refresh".into(),
            expires: None,
        };
        persist_tokens(&cfg, &stored).unwrap();
        let auth = Auth::new(AuthConfig::OAuth(cfg)).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (access, _) = rt.block_on(auth.access()).unwrap();
        assert_eq!(access.expose(), "new-access");
    }
}
