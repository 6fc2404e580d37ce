//! The Bitrix24 REST client: JSON POST, governor admission, bounded retries with backoff,
//! OAuth refresh on `expired_token`, strict parsing (a truncated or non-JSON body is an error,
//! never an empty page) and redaction of every secret from errors and logs.
use super::auth::{Auth, AuthConfig, OAuthConfig};
use super::batch::{Batch, BatchResponse, CommandOutcome};
use super::envelope::{Response, TimeInfo, parse_answer};
use super::error::{BitrixError, ErrorClass};
use super::governor::{Billed, Governor, Observation, infer_billing};
use crate::config::{PortalAuth, Secret, redact};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Parses one HTTP answer (method, status, body) into a response with a result of shape `R`.
type ParseFn<R> = fn(&str, u16, &[u8]) -> Result<Response<R>, BitrixError>;

/// Client construction options.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub auth: AuthConfig,
    /// Per-request timeout (the cloud cuts requests at 60 s).
    pub request_timeout: Duration,
    pub user_agent: String,
}

impl ClientConfig {
    pub fn new(auth: AuthConfig) -> Self {
        Self {
            auth,
            request_timeout: Duration::from_secs(90),
            user_agent: concat!("b24ch/", env!("CARGO_PKG_VERSION")).into(),
        }
    }

    /// From the validated config; the demo portal has no auth of its own here.
    pub fn from_config(cfg: &crate::config::Config) -> Result<Self, BitrixError> {
        let auth = match &cfg.portal {
            PortalAuth::Demo => {
                return Err(BitrixError::Usage(
                    "no portal configured: start the demo portal and use its webhook URL".into(),
                ));
            }
            PortalAuth::Webhook { url } => AuthConfig::Webhook { url: url.clone() },
            PortalAuth::OAuth {
                portal_url,
                client_id,
                client_secret,
                access_token,
                refresh_token,
                oauth_server,
            } => AuthConfig::OAuth(OAuthConfig {
                portal_url: portal_url.clone(),
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                access_token: access_token.clone(),
                refresh_token: refresh_token.clone(),
                oauth_server: oauth_server.clone(),
                state_dir: Some(cfg.state_dir.clone()),
            }),
        };
        Ok(Self {
            request_timeout: cfg.limits.request_timeout,
            ..Self::new(auth)
        })
    }
}

pub struct Client {
    http: reqwest::Client,
    auth: Auth,
    governor: Arc<Governor>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("portal", &self.auth.portal_label())
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(cfg: ClientConfig, governor: Arc<Governor>) -> Result<Self, BitrixError> {
        let http = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            .connect_timeout(Duration::from_secs(15))
            .user_agent(cfg.user_agent)
            // A renamed portal answers 302; following it naively loses the POST body
            // (docs/bitrix24-api.md §1.1).
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| BitrixError::Usage(format!("HTTP client: {}", e.without_url())))?;
        Ok(Self {
            http,
            auth: Auth::new(cfg.auth)?,
            governor,
        })
    }

    pub fn governor(&self) -> &Arc<Governor> {
        &self.governor
    }

    /// The portal without secrets (`https://host/rest/1/***/`).
    pub fn portal_label(&self) -> String {
        self.auth.portal_label()
    }

    /// Calls one method. Retryable failures are retried with backoff up to the governor's
    /// `max_attempts`; the error then names the last failure.
    pub async fn call(&self, method: &str, params: &Value) -> Result<Response, BitrixError> {
        let resp = self
            .call_billed(method, params, &[Billed::new(method, 1)])
            .await?;
        Ok(resp)
    }

    /// Sends a batch and splits its answer per command. Operating figures of the outer answer
    /// and of every sub-result feed the governor.
    pub async fn batch(&self, batch: &Batch) -> Result<BatchResponse, BitrixError> {
        if batch.is_empty() {
            return Err(BitrixError::Usage("empty batch".into()));
        }
        let outer = self
            .call_billed("batch", &batch.to_params(), &billed(batch))
            .await?;
        let resp = BatchResponse::parse(batch, outer)?;
        self.observe_batch(batch, &resp);
        Ok(resp)
    }

    /// Feeds the governor every billing key's figure of a batch answer: each nested method's
    /// highest figure (per-method billing grows them command by command) and the outer
    /// `batch` one (whole-batch billing). The commands' `processing` times say how each key's
    /// growth splits, so the governor learns the dearest command's cost, not the batch's.
    fn observe_batch<R>(&self, batch: &Batch, resp: &BatchResponse<R>) {
        let mut per_method: BTreeMap<&str, KeyFigures> = BTreeMap::new();
        let mut all = KeyFigures::default();
        let mut nested = Vec::new();
        for (name, outcome) in resp.outcomes() {
            let Some(method) = batch.method_of(name) else {
                continue;
            };
            match outcome {
                CommandOutcome::Ok(r) => {
                    all.add(&r.time);
                    if let Some(op) = r.time.operating {
                        nested.push(op);
                        per_method.entry(method).or_default().add(&r.time);
                    }
                }
                CommandOutcome::Err(e) => match e.class() {
                    ErrorClass::OperatingLimit => self.governor.on_operating_limit(method),
                    ErrorClass::RateLimited => self.governor.on_rate_limited(),
                    _ => {}
                },
                CommandOutcome::Missing => {}
            }
        }
        let mut observations: Vec<Observation> = per_method
            .into_iter()
            .filter_map(|(k, f)| f.observation(k, f.operating))
            .collect();
        if let Some(op) = resp.time.operating {
            all.reset_at = resp.time.operating_reset_at;
            observations.extend(all.observation("batch", Some(op)));
        }
        self.governor.observe(&observations);
        self.governor
            .observe_billing(infer_billing(resp.time.operating, &nested));
    }

    /// [`Self::batch`] for listing pages: commands' results stay raw JSON one level deep
    /// (rows are not parsed into `Value`s; see [`super::raw`]).
    pub async fn batch_raw(
        &self,
        batch: &Batch,
    ) -> Result<BatchResponse<super::raw::RawResult>, BitrixError> {
        if batch.is_empty() {
            return Err(BitrixError::Usage("empty batch".into()));
        }
        let outer = self
            .call_billed_as("batch", &batch.to_params(), &billed(batch), parse_answer)
            .await?;
        let resp = super::raw::split_batch(batch, outer)?;
        self.observe_batch(batch, &resp);
        Ok(resp)
    }

    /// [`Self::call`] with the result kept raw one level deep.
    pub async fn call_raw(
        &self,
        method: &str,
        params: &Value,
    ) -> Result<Response<super::raw::RawResult>, BitrixError> {
        self.call_billed_as(method, params, &[Billed::new(method, 1)], parse_answer)
            .await
    }

    async fn call_billed(
        &self,
        method: &str,
        params: &Value,
        keys: &[Billed],
    ) -> Result<Response, BitrixError> {
        self.call_billed_as(method, params, keys, parse_answer)
            .await
    }

    async fn call_billed_as<R>(
        &self,
        method: &str,
        params: &Value,
        keys: &[Billed],
        parse: ParseFn<R>,
    ) -> Result<Response<R>, BitrixError> {
        let max_attempts = self.governor.config().max_attempts.max(1);
        let mut attempt = 0;
        // Two: a pair adopted from another process's refresh may itself have expired since.
        let mut refreshes = 0u32;
        loop {
            attempt += 1;
            let permit = self.governor.acquire(keys).await;
            let token = self.auth.access().await;
            super::meter::count_request();
            let outcome = self
                .send_once(method, params, token.as_ref().map(|t| &t.0), parse)
                .await;
            let err = match outcome {
                Ok(resp) => {
                    self.observe_time(method, &resp.time);
                    super::meter::count_processing(resp.time.processing.unwrap_or(0.0));
                    drop(permit);
                    return Ok(resp);
                }
                Err(e) => e,
            };
            drop(permit);
            match err.class() {
                ErrorClass::ExpiredToken if refreshes < 2 => {
                    let generation = token.map(|t| t.1).unwrap_or(0);
                    self.auth.refresh(&self.http, generation).await?;
                    refreshes += 1;
                    // A refresh is not a failed attempt of the call itself.
                    attempt -= 1;
                    continue;
                }
                ErrorClass::RateLimited => self.governor.on_rate_limited(),
                ErrorClass::OperatingLimit => self.governor.on_operating_limit(method),
                _ => {}
            }
            if !err.is_retryable() {
                return Err(err);
            }
            if attempt >= max_attempts {
                return Err(BitrixError::RetriesExhausted {
                    method: method.to_string(),
                    attempts: attempt,
                    last: Box::new(err),
                });
            }
            self.governor.on_retry();
            tracing::warn!(method, attempt, error = %err, "retrying Bitrix24 call");
            if err.class() != ErrorClass::OperatingLimit {
                // 429 waits in the governor until the reset; everything else backs off here.
                self.governor.backoff(attempt).await;
            }
        }
    }

    /// The clock of every answer; the operating figure of a plain call (one command). A
    /// batch's outer figure is fed with its commands' split by [`Self::observe_batch`].
    fn observe_time(&self, method: &str, time: &TimeInfo) {
        if let Some(finish) = time.finish.or(time.start) {
            self.governor.observe_clock(finish);
        }
        if method == "batch" {
            return;
        }
        if let Some(op) = time.operating {
            self.governor
                .observe(&[Observation::single(method, op, time.operating_reset_at)]);
        }
    }

    async fn send_once<R>(
        &self,
        method: &str,
        params: &Value,
        token: Option<&Secret>,
        parse: ParseFn<R>,
    ) -> Result<Response<R>, BitrixError> {
        let mut body = match params {
            Value::Object(m) => m.clone(),
            Value::Null => Map::new(),
            _ => {
                return Err(BitrixError::Usage(format!(
                    "{method}: parameters must be a JSON object"
                )));
            }
        };
        if let Some(t) = token {
            body.insert("auth".into(), Value::String(t.expose().to_string()));
        }
        let sent = self
            .http
            .post(self.auth.method_url(method))
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&Value::Object(body))
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => return Err(self.transport(method, &e).await),
        };
        let status = resp.status().as_u16();
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return Err(self.transport(method, &e).await),
        };
        parse(method, status, &bytes)
    }

    async fn transport(&self, method: &str, e: &reqwest::Error) -> BitrixError {
        let secrets = self.auth.secrets().await;
        let refs: Vec<&Secret> = secrets.iter().collect();
        BitrixError::Transport {
            method: method.to_string(),
            message: redact(&error_chain(e), &refs),
        }
    }
}

/// What a batch is billed to: `batch` for all its commands, each nested method for its own.
fn billed(batch: &Batch) -> Vec<Billed> {
    let mut keys = vec![Billed::new("batch", batch.len() as u32)];
    keys.extend(
        batch
            .method_counts()
            .into_iter()
            .map(|(m, n)| Billed::new(m, n)),
    );
    keys
}

/// The figures of one billing key across the commands of a batch answer.
#[derive(Debug, Default)]
struct KeyFigures {
    /// Highest accumulated figure (the latest, under per-method billing).
    operating: Option<f64>,
    reset_at: Option<f64>,
    commands: u32,
    processing_sum: f64,
    processing_max: f64,
}

impl KeyFigures {
    fn add(&mut self, t: &TimeInfo) {
        self.commands += 1;
        if let Some(op) = t.operating
            && self.operating.is_none_or(|cur| op >= cur)
        {
            self.operating = Some(op);
            self.reset_at = t.operating_reset_at.or(self.reset_at);
        }
        if let Some(p) = t.processing.filter(|p| p.is_finite() && *p > 0.0) {
            self.processing_sum += p;
            self.processing_max = self.processing_max.max(p);
        }
    }

    /// The observation for `key` at figure `operating`; the dearest command's share of the
    /// growth comes from `processing`, equal shares when the answer has none.
    fn observation(&self, key: &str, operating: Option<f64>) -> Option<Observation> {
        let peak_share = if self.processing_sum > 0.0 {
            self.processing_max / self.processing_sum
        } else {
            1.0 / f64::from(self.commands.max(1))
        };
        Some(Observation {
            key: key.to_string(),
            operating: operating?,
            reset_at: self.reset_at,
            peak_share,
        })
    }
}

/// The error and its sources, without the URL (which may carry the webhook code).
fn error_chain(e: &reqwest::Error) -> String {
    let mut out = if e.is_timeout() {
        "timeout".to_string()
    } else {
        String::new()
    };
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        cur = err.source();
    }
    strip_urls(&out)
}

/// Removes anything that looks like a URL from a message.
fn strip_urls(text: &str) -> String {
    text.split_whitespace()
        .map(|w| {
            let bare = w.trim_matches(|c: char| "()\"'".contains(c));
            if bare.starts_with("http://") || bare.starts_with("https://") {
                "<url>"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/bitrix24/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn every_error_fixture_is_classified() {
        let cases = [
            (
                "error.QUERY_LIMIT_EXCEEDED.real.json",
                503,
                ErrorClass::RateLimited,
            ),
            (
                "error.OPERATION_TIME_LIMIT.real.json",
                429,
                ErrorClass::OperatingLimit,
            ),
            ("error.INVALID_CREDENTIALS.json", 401, ErrorClass::Auth),
            ("error.crm.deal.list.400.json", 400, ErrorClass::BadRequest),
            (
                "error.crm.item.get.NOT_FOUND.json",
                400,
                ErrorClass::NotFound,
            ),
            (
                "error.crm.item.list.INVALID_ARG_VALUE.json",
                400,
                ErrorClass::BadRequest,
            ),
            (
                "error.crm.type.list.ACCESS_DENIED.json",
                400,
                ErrorClass::AccessDenied,
            ),
            ("oauth.error.PAYMENT_REQUIRED.json", 402, ErrorClass::Auth),
        ];
        for (file, status, class) in cases {
            let err = parse_answer::<Value>("m", status, &fixture(file)).unwrap_err();
            assert_eq!(err.class(), class, "{file}");
            assert_eq!(err.is_retryable(), class.is_retryable(), "{file}");
        }
    }

    #[test]
    fn truncated_json_is_an_error_not_an_empty_page() {
        let full = fixture("crm.deal.list.json");
        let err = parse_answer::<Value>("crm.deal.list", 200, &full[..full.len() / 2]).unwrap_err();
        assert!(matches!(err, BitrixError::Malformed { .. }));
        assert!(err.is_retryable());
        let err = parse_answer::<Value>("m", 200, b"{\"time\":{}}").unwrap_err();
        assert!(matches!(err, BitrixError::Malformed { .. }));
        let err = parse_answer::<Value>("m", 502, b"<html>Bad gateway</html>").unwrap_err();
        assert!(err.is_retryable());
    }

    #[test]
    fn success_envelope_and_time_accept_int_or_float() {
        let r =
            parse_answer::<Value>("crm.type.list", 200, &fixture("crm.type.list.json")).unwrap();
        assert_eq!(r.total, Some(4));
        assert_eq!(r.time.operating, Some(0.0));
        let r = parse_answer::<Value>(
            "crm.enum.ownertype",
            200,
            &fixture("crm.enum.ownertype.json"),
        )
        .unwrap();
        assert_eq!(r.time.operating_reset_at, Some(1750153784.0));
        let r = parse_answer::<Value>("x", 200, &fixture("crm.userfield.types.json")).unwrap();
        assert!(r.time.start.is_some());
    }

    #[test]
    fn a_key_learns_its_dearest_commands_share_of_the_growth() {
        let t = |op: f64, processing: Option<f64>| TimeInfo {
            operating: Some(op),
            operating_reset_at: Some(700.0),
            processing,
            ..TimeInfo::default()
        };
        // Two pages at 0.6 s and a probe at 0.02 s: the highest figure, the dearest share.
        let mut f = KeyFigures::default();
        for time in [
            t(10.62, Some(0.6)),
            t(10.02, Some(0.02)),
            t(11.22, Some(0.6)),
        ] {
            f.add(&time);
        }
        let o = f.observation("crm.item.list", f.operating).unwrap();
        assert_eq!((o.operating, o.reset_at), (11.22, Some(700.0)));
        assert!((o.peak_share - 0.6 / 1.22).abs() < 1e-9, "{o:?}");
        // Without `processing`, equal shares.
        let mut f = KeyFigures::default();
        for _ in 0..4 {
            f.add(&t(1.0, None));
        }
        assert_eq!(f.observation("batch", Some(3.0)).unwrap().peak_share, 0.25);
        // No figure, no observation.
        assert!(KeyFigures::default().observation("batch", None).is_none());
    }

    #[test]
    fn a_batch_is_billed_to_batch_and_to_each_method_per_command() {
        let mut b = Batch::new();
        b.push("probe", "crm.item.list", serde_json::json!({}))
            .unwrap();
        b.push("p0", "crm.item.list", serde_json::json!({}))
            .unwrap();
        b.push("u", "user.get", serde_json::json!({})).unwrap();
        assert_eq!(
            billed(&b),
            vec![
                Billed::new("batch", 3),
                Billed::new("crm.item.list", 2),
                Billed::new("user.get", 1)
            ]
        );
    }

    #[test]
    fn urls_are_stripped_from_transport_messages() {
        let s = strip_urls("error sending request for url (https://h/rest/1/code/crm.deal.list)");
        assert!(!s.contains("code"), "{s}");
    }

    #[test]
    fn client_debug_hides_the_webhook_code() {
        let c = Client::new(
            ClientConfig::new(AuthConfig::Webhook {
                url: Secret::new("https://p.example/rest/1/topsecretcode/"),
            }),
            Governor::new(super::super::governor::GovernorConfig::standard()),
        )
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("topsecretcode"), "{dbg}");
        assert!(dbg.contains("p.example"));
    }
}
