//! HTTP layer: routes, auth, parameter merging, limits, faults, envelope and delays.

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Path, Request, State as AxState};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::{any, get, post};
use serde_json::{Value as SJ, json};

use super::billing::{bill, call_scaled, operating_blocked, time_object};
use super::config::SmartStageHistory;
use super::control::{PortalControl, UserFieldSpec};
use super::json_out::{J, error_code};
use super::methods::{self, Ctx, MethodError, Outcome};
use super::oauth::{self, AuthError};
use super::params::{self, PVal};
use super::state::{Fault, FaultKind};
use super::{batch, faults};

const BODY_LIMIT: usize = 32 * 1024 * 1024;

pub(crate) fn router(control: PortalControl) -> Router {
    Router::new()
        .route("/rest/{user}/{code}/{method}", any(webhook))
        .route("/rest/{method}", any(oauth_call))
        .route("/oauth/token", any(oauth_token))
        .route("/oauth/token/", any(oauth_token))
        .route("/_control/counters", get(c_counters))
        .route("/_control/counters/reset", post(c_reset))
        .route("/_control/ground_truth", get(c_truth_all))
        .route("/_control/ground_truth/{table}", get(c_truth))
        .route("/_control/catalog", get(c_catalog))
        .route("/_control/config", get(c_config))
        .route("/_control/rows/modify", post(c_modify))
        .route("/_control/rows/delete", post(c_delete))
        .route("/_control/rows/add", post(c_add))
        .route("/_control/smart_process/add", post(c_sp_add))
        .route("/_control/smart_process/remove", post(c_sp_remove))
        .route("/_control/user_field/add", post(c_uf_add))
        .route("/_control/enum_option/add", post(c_enum_add))
        .route("/_control/faults", get(c_faults).post(c_fault_add))
        .route("/_control/faults/clear", post(c_faults_clear))
        .route("/_control/clock", get(c_clock))
        .route("/_control/clock/advance", post(c_clock_advance))
        .route("/_control/crm_admin", post(c_crm_admin))
        .route("/_control/availability", get(c_availability))
        .route("/_control/methods", post(c_methods))
        .route("/_control/stage_history", post(c_stage_history))
        .route("/_control/scopes", post(c_scopes))
        .route("/_control/billing", get(c_billing).post(c_billing_set))
        .route("/_control/events", get(c_events))
        .route("/_control/events/settings", post(c_event_settings))
        .fallback(not_found)
        .with_state(control)
}

fn json_response(status: u16, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = "application/json; charset=utf-8".parse() {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

fn error_body(code: &str, description: &str) -> String {
    J::obj([
        ("error", error_code(code)),
        ("error_description", J::str(description)),
    ])
    .encode()
}

async fn not_found() -> Response {
    json_response(
        404,
        error_body("ERROR_METHOD_NOT_FOUND", "Method not found!"),
    )
}

/// Query + body merged as `CRestUtil::getRequestData` does.
async fn read_params(req: Request) -> (PVal, HeaderMap) {
    let headers = req.headers().clone();
    let query = params::parse_str(req.uri().query().unwrap_or(""));
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return (query, headers);
    }
    let post = if ctype.starts_with("multipart/form-data") {
        let mut root = PVal::Arr(Vec::new());
        if let Ok(mut mp) = Multipart::from_request(req, &()).await {
            while let Ok(Some(field)) = mp.next_field().await {
                let name = field.name().unwrap_or("").to_string();
                if let Ok(text) = field.text().await
                    && !name.is_empty()
                {
                    params::add_field(&mut root, &name, text);
                }
            }
        }
        root
    } else {
        let body = axum::body::to_bytes(req.into_body(), BODY_LIMIT)
            .await
            .unwrap_or_default();
        if ctype.contains("json") {
            // A JSON decode failure is silently ignored.
            serde_json::from_slice::<SJ>(&body).map_or(PVal::Arr(vec![]), |v| params::from_json(&v))
        } else {
            params::parse_str(&String::from_utf8_lossy(&body))
        }
    };
    (params::merge(query, post), headers)
}

fn normalize_method(m: &str) -> String {
    let m = m.to_lowercase();
    let m = m
        .strip_suffix(".json")
        .or_else(|| m.strip_suffix(".xml"))
        .unwrap_or(&m);
    m.to_string()
}

async fn webhook(
    AxState(c): AxState<PortalControl>,
    Path((user, code, method)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    let (params, _) = read_params(req).await;
    let cfg = &c.shared.cfg;
    let auth = if user == cfg.webhook_user_id.to_string() && code == cfg.webhook_code {
        Ok(())
    } else {
        Err(oauth::INVALID_CREDENTIALS)
    };
    handle(&c, &normalize_method(&method), params, auth, vec![]).await
}

async fn oauth_call(
    AxState(c): AxState<PortalControl>,
    Path(method): Path<String>,
    req: Request,
) -> Response {
    let (params, headers) = read_params(req).await;
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|s| s.trim().to_string());
    let token = params
        .get("auth")
        .or_else(|| params.get("access_token"))
        .and_then(PVal::to_text)
        .or(bearer);
    let auth = match &token {
        None => Err(oauth::NO_AUTH),
        Some(t) => {
            let st = c.lock();
            st.oauth.check(t, st.clock.now())
        }
    };
    let inject = token
        .map(|t| vec![("auth".to_string(), PVal::Str(t))])
        .unwrap_or_default();
    handle(&c, &normalize_method(&method), params, auth, inject).await
}

struct Reply {
    status: u16,
    body: String,
    delay: f64,
    fault: Option<FaultKind>,
}

fn count_status(c: &PortalControl, status: u16, code: Option<&str>) {
    let mut st = c.lock();
    *st.counters
        .responses_by_status
        .entry(status.to_string())
        .or_default() += 1;
    if let Some(code) = code {
        *st.counters
            .errors_by_code
            .entry(code.to_string())
            .or_default() += 1;
    }
    match status {
        503 => st.counters.query_limit_exceeded += 1,
        429 => st.counters.operation_time_limit += 1,
        _ => {}
    }
}

fn error_reply(c: &PortalControl, status: u16, code: &str, description: &str) -> Reply {
    count_status(c, status, Some(code));
    tracing::debug!(status, code, "demo portal error response");
    Reply {
        status,
        body: error_body(code, description),
        delay: 0.0,
        fault: None,
    }
}

/// Run one REST request under the state lock and produce the reply (no awaits inside).
fn process(
    c: &PortalControl,
    method: &str,
    params: PVal,
    auth: Result<(), AuthError>,
    inject: Vec<(String, PVal)>,
) -> Reply {
    let shared = &c.shared;
    let cfg = &shared.cfg;
    let (fault, now) = {
        let mut st = c.lock();
        st.counters.requests_total += 1;
        (faults::take(&mut st, method), st.clock.now())
    };
    match &fault {
        Some(FaultKind::QueryLimitExceeded) => {
            return error_reply(c, 503, "QUERY_LIMIT_EXCEEDED", "Too many requests");
        }
        Some(FaultKind::OperationTimeLimit) => {
            return error_reply(
                c,
                429,
                "OPERATION_TIME_LIMIT",
                "Method is blocked due to operation time limit.",
            );
        }
        Some(FaultKind::InternalError) => {
            return error_reply(c, 500, "INTERNAL_SERVER_ERROR", "Internal server error");
        }
        Some(FaultKind::ExpiredToken) => {
            return error_reply(c, 401, oauth::EXPIRED.code, oauth::EXPIRED.description);
        }
        Some(FaultKind::PortalError {
            status,
            code,
            description,
        }) => {
            return error_reply(c, *status, code, description);
        }
        _ => {}
    }
    if let Err(e) = auth {
        return error_reply(c, e.status, e.code, e.description);
    }
    if cfg.limits.enabled {
        let admitted = c
            .lock()
            .bucket
            .try_acquire(now, cfg.limits.rate_per_sec, cfg.limits.burst);
        if !admitted {
            return error_reply(c, 503, "QUERY_LIMIT_EXCEEDED", "Too many requests");
        }
    }
    if !methods::exists(method) {
        return error_reply(c, 404, "ERROR_METHOD_NOT_FOUND", "Method not found!");
    }
    let refusal = c.lock().refusal(method, false, !inject.is_empty());
    if let Some(e) = refusal {
        return error_reply(c, e.status, &e.code, &e.description);
    }
    let mut guard = c.lock();
    guard.app_context = !inject.is_empty();
    let mut ctx = Ctx {
        st: &mut guard,
        shared,
    };
    *ctx.st
        .counters
        .per_method
        .entry(method.to_string())
        .or_default() += 1;
    let whole_batch = method == "batch" && ctx.st.billing.batch_billing.bills_batch_key();
    if (method != "batch" || whole_batch) && operating_blocked(&mut ctx, method, now) {
        drop(guard);
        return error_reply(
            c,
            429,
            "OPERATION_TIME_LIMIT",
            "Method is blocked due to operation time limit.",
        );
    }
    let (result, cost) = if method == "batch" {
        let (res, spent) = batch::run(&mut ctx, &params, &inject, now);
        if whole_batch {
            bill(&mut ctx, method, Some(method), now + spent, spent, false, 0);
        }
        (Ok(methods::Success::plain(res)), spent)
    } else {
        let Some(Outcome {
            result,
            cost,
            count_ran,
            rows,
        }) = call_scaled(&mut ctx, method, &params)
        else {
            drop(guard);
            return error_reply(c, 404, "ERROR_METHOD_NOT_FOUND", "Method not found!");
        };
        bill(
            &mut ctx,
            method,
            Some(method),
            now + cost,
            cost,
            count_ran,
            rows,
        );
        (result, cost)
    };
    let delay = (cost / ctx.st.clock.scale()).min(cfg.cost.max_real_delay_secs);
    match result {
        Ok(s) => {
            let mut env = vec![("result".to_string(), s.result)];
            if let Some(n) = s.next {
                env.push(("next".into(), J::Int(n as i64)));
            }
            if let Some(t) = s.total {
                env.push(("total".into(), J::Int(t as i64)));
            }
            env.push(("time".into(), time_object(&mut ctx, method, now, cost)));
            drop(guard);
            count_status(c, 200, None);
            Reply {
                status: 200,
                body: J::Obj(env).encode(),
                delay,
                fault,
            }
        }
        Err(MethodError {
            status,
            code,
            description,
        }) => {
            drop(guard);
            let mut r = error_reply(c, status, &code, &description);
            r.delay = delay;
            r.fault = fault;
            r
        }
    }
}

async fn handle(
    c: &PortalControl,
    method: &str,
    params: PVal,
    auth: Result<(), AuthError>,
    inject: Vec<(String, PVal)>,
) -> Response {
    let reply = process(c, method, params, auth, inject);
    let mut delay = reply.delay;
    if let Some(FaultKind::Slow { delay_ms }) = &reply.fault {
        delay += *delay_ms as f64 / 1000.0;
    }
    if delay > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(delay)).await;
    }
    match reply.fault {
        Some(FaultKind::ConnectionReset) => {
            // Stream part of the body, then fail the stream so hyper aborts the connection.
            let cut = reply.body.len() / 2;
            let head = Bytes::copy_from_slice(&reply.body.as_bytes()[..cut]);
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(head),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected reset",
                )),
            ];
            let mut r = Response::new(Body::from_stream(futures::stream::iter(chunks)));
            if let Ok(v) = "application/json; charset=utf-8".parse() {
                r.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            r
        }
        Some(FaultKind::TruncatedJson) => {
            let mut cut = reply.body.len() / 2;
            while !reply.body.is_char_boundary(cut) {
                cut -= 1;
            }
            json_response(200, reply.body[..cut].to_string())
        }
        _ => json_response(reply.status, reply.body),
    }
}

/// `GET /oauth/token/?grant_type=refresh_token&client_id&client_secret&refresh_token`.
async fn oauth_token(AxState(c): AxState<PortalControl>, req: Request) -> Response {
    let (p, _) = read_params(req).await;
    let text = |k: &str| p.get(k).and_then(PVal::to_text).unwrap_or_default();
    if text("grant_type") != "refresh_token" {
        return json_response(400, error_body("invalid_request", "Unsupported grant_type"));
    }
    let cfg = &c.shared.cfg;
    let mut st = c.lock();
    let now = st.clock.now();
    match st.oauth.refresh(
        &cfg.oauth,
        &text("client_id"),
        &text("client_secret"),
        &text("refresh_token"),
        now,
    ) {
        Ok(i) => {
            let base = &c.shared.base_url;
            let host = base.trim_start_matches("http://").to_string();
            let body = J::obj([
                ("access_token", J::Str(i.access_token)),
                ("client_endpoint", J::Str(format!("{base}/rest/"))),
                ("domain", J::Str(host)),
                ("expires", J::Int(i.expires)),
                ("expires_in", J::Int(i.expires_in)),
                (
                    "member_id",
                    J::Str(format!("{:032x}", super::hash::mix(cfg.seed))),
                ),
                ("refresh_token", J::Str(i.refresh_token)),
                (
                    "scope",
                    J::str("crm,user,department,task,telephony,sonet_group"),
                ),
                ("server_endpoint", J::Str(format!("{base}/oauth/rest/"))),
                ("status", J::str("L")),
                ("user_id", J::Int(i64::from(cfg.webhook_user_id))),
            ]);
            json_response(200, body.encode())
        }
        Err((status, code, desc)) => json_response(status, error_body(code, desc)),
    }
}

// ---- control endpoints ----

fn ok_json(v: SJ) -> Response {
    json_response(200, v.to_string())
}

/// A control-API error (kept small; turned into a 400 response at the end of a handler).
struct CtlErr(String);

impl CtlErr {
    fn response(self) -> Response {
        json_response(400, json!({"error": self.0}).to_string())
    }
}

fn bad_request(msg: impl std::fmt::Display) -> CtlErr {
    CtlErr(msg.to_string())
}

async fn body_json(req: Request) -> Result<SJ, CtlErr> {
    let body = axum::body::to_bytes(req.into_body(), BODY_LIMIT)
        .await
        .map_err(bad_request)?;
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&body).map_err(bad_request)
}

fn field<'a>(v: &'a SJ, k: &str) -> Result<&'a SJ, CtlErr> {
    v.get(k)
        .ok_or_else(|| bad_request(format!("missing '{k}'")))
}

fn ids_of(v: &SJ) -> Result<Vec<u64>, CtlErr> {
    field(v, "ids")?
        .as_array()
        .ok_or_else(|| bad_request("'ids' must be an array"))?
        .iter()
        .map(|x| {
            x.as_u64()
                .ok_or_else(|| bad_request("ids must be integers"))
        })
        .collect()
}

fn str_of<'a>(v: &'a SJ, k: &str) -> Result<&'a str, CtlErr> {
    field(v, k)?
        .as_str()
        .ok_or_else(|| bad_request(format!("'{k}' must be a string")))
}

async fn c_counters(AxState(c): AxState<PortalControl>) -> Response {
    ok_json(serde_json::to_value(c.counters()).unwrap_or(SJ::Null))
}

async fn c_reset(AxState(c): AxState<PortalControl>) -> Response {
    c.reset_counters();
    ok_json(json!({"ok": true}))
}

async fn c_truth_all(AxState(c): AxState<PortalControl>) -> Response {
    ok_json(serde_json::to_value(c.ground_truth_all()).unwrap_or(SJ::Null))
}

async fn c_truth(AxState(c): AxState<PortalControl>, Path(table): Path<String>) -> Response {
    match c.ground_truth(&table) {
        Ok(rows) => ok_json(SJ::Array(rows.into_iter().map(SJ::Object).collect())),
        Err(e) => json_response(404, json!({"error": e.to_string()}).to_string()),
    }
}

async fn c_catalog(AxState(c): AxState<PortalControl>) -> Response {
    ok_json(c.catalog())
}

async fn c_config(AxState(c): AxState<PortalControl>) -> Response {
    let cfg = c.config();
    let base = c.shared.base_url.clone();
    ok_json(json!({
        "base_url": base,
        "webhook_url": format!("{base}/rest/{}/{}/", cfg.webhook_user_id, cfg.webhook_code),
        "seed": cfg.seed,
        "time_scale": cfg.time_scale,
        "utc_offset_secs": cfg.utc_offset_secs,
        "limits": {"enabled": cfg.limits.enabled, "rate_per_sec": cfg.limits.rate_per_sec, "burst": cfg.limits.burst,
                   "operating_limit_secs": cfg.limits.operating_limit_secs, "window_secs": cfg.limits.window_secs,
                   "billing": c.billing()},
        "oauth": {"client_id": cfg.oauth.client_id, "client_secret": cfg.oauth.client_secret,
                  "access_token": cfg.oauth.access_token, "refresh_token": cfg.oauth.refresh_token},
    }))
}

fn parse_modify_time(v: &SJ) -> Result<Option<i64>, CtlErr> {
    match v.get("modify_time") {
        None | Some(SJ::Null) => Ok(None),
        Some(SJ::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| bad_request("modify_time must be unix seconds")),
        Some(SJ::String(s)) => chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
            .map(|d| Some(d.and_utc().timestamp()))
            .map_err(|_| {
                bad_request("modify_time: use unix seconds or 'YYYY-MM-DD hh:mm:ss' (UTC)")
            }),
        _ => Err(bad_request("bad modify_time")),
    }
}

async fn c_modify(AxState(c): AxState<PortalControl>, req: Request) -> Response {
    let run = async {
        let v = body_json(req).await?;
        let set = v
            .get("set")
            .and_then(SJ::as_object)
            .cloned()
            .unwrap_or_default();
        let n = c
            .modify_rows(
                str_of(&v, "table")?,
                &ids_of(&v)?,
                &set,
                parse_modify_time(&v)?,
            )
            .map_err(bad_request)?;
        Ok::<_, CtlErr>(ok_json(json!({"modified": n})))
    };
    run.await.unwrap_or_else(CtlErr::response)
}

async fn c_delete(AxState(c): AxState<PortalControl>, req: Request) -> Response {
    let run = async {
        let v = body_json(req).await?;
        let n = c
            .delete_rows(str_of(&v, "table")?, &ids_of(&v)?)
            .map_err(bad_request)?;
        Ok::<_, CtlErr>(ok_json(json!({"deleted": n})))
    };
    run.await.unwrap_or_else(CtlErr::response)
}

/// `{"table": "deal", "count": 3}` → `{"ids": [...]}`
async fn c_add(AxState(c): AxState<PortalControl>, req: Request) -> Response {
    let run = async {
        let v = body_json(req).await?;
        let count = field(&v, "count")?
            .as_u64()
            .ok_or_else(|| bad_request("count must be a positive integer"))?;
        let ids = c
            .add_rows(str_of(&v, "table")?, count)
            .map_err(bad_request)?;
        Ok::<_, CtlErr>(ok_json(json!({"ids": ids})))
    };
    run.await.unwrap_or_else(CtlErr::response)
}

async fn c_sp_add(AxState(c): AxState<PortalControl>, req: Request) -> Response {
    let run = async {
        let v = body_json(req).await?;
        let etid = v
            .get("entity_type_id")
            .and_then(SJ::as_u64)
            .map(|x| x as u32);
        let title = v
            .get("title")
            .and_then(SJ::as_str)
            .unwrap_or("Новый смарт-процесс");
        let items = v.get("items").and_then(SJ::as_u64).unwrap_or(0);
        let etid = c
            .add_smart_process(etid, title, items)
            .map_err(bad_request)?;
        Ok::<_, CtlErr>(ok_json(json!({"entity_type_id": etid})))
    };
    run.await.unwrap_or_else(CtlErr::response)
}

async fn c_sp_remove(AxState(c): AxState<PortalControl>, req: Request) -> Response {
    let run = async {
        let v = body_json(req).await?;
        let etid = field(&v, "entity_type_id")?
            .as_u64()
            .ok_or_else(|| bad_request("entity_type_id"))?;
        c.remove_smart_process(etid as u32).map_err(bad_request)?;
        Ok::<_, CtlErr>(ok_json(json!({"ok": true})))
    };
    run.await.unwrap_or_else(CtlErr::response)
}

async fn c_uf_add(AxState(c): AxState<PortalControl>, req: Request) -> Response {
    let run = async {
        let v = body_json(req).await?;
        let table = str_of(&v, "table")?.to_string();
        let spec: UserFieldSpec = serde_json::from_value(v).map_err(bad_request)?;
        let code = c.add_user_field(&table, &spec).map_err(bad_request)?;
        Ok::<_, CtlErr>(ok_json(json!({"code": code})))
    };
    run.await.unwrap_or_else(CtlErr::response)
}

async fn c_enum_add(AxState(c): AxState<PortalControl>, req: Request) -> Response {
    let run = async {
        let v = body_json(req).await?;
        let id = c
            .add_enum_option(
                str_of(&v, "table")?,
                str_of(&v, "field")?,
                str_of(&v, "value")?,
            )
            .map_err(bad_request)?;
        Ok::<_, CtlErr>(ok_json(json!({"id": id})))
    };
    run.await.unwrap_or_else(CtlErr::response)
}

async fn c_faults(AxState(c): AxState<PortalControl>) -> Response {
    ok_json(serde_json::to_value(c.faults()).unwrap_or(SJ::Null))
}

async fn c_fault_add(AxState(c): AxState<PortalControl>, req: Request) -> Response {
    let run = async {
        let v = body_json(req).await?;
        let f: Fault = serde_json::from_value(v).map_err(bad_request)?;
        c.inject_fault(f);
        Ok::<_, CtlErr>(ok_json(json!({"ok": true})))
    };
    run.await.unwrap_or_else(CtlErr::response)
}

async fn c_faults_clear(AxState(c): AxState<PortalControl>) -> Response {
    c.clear_faults();
    ok_json(json!({"ok": true}))
}

async fn c_clock(AxState(c): AxState<PortalControl>) -> Response {
    ok_json(json!({"now": c.now()}))
}

async fn c_clock_advance(AxState(c): AxState<PortalControl>, req: Request) -> Response {
    let run = async {
        let v = body_json(req).await?;
        let secs = field(&v, "secs")?
            .as_f64()
            .ok_or_else(|| bad_request("secs must be a number"))?;
        c.advance_clock(secs);
        Ok::<_, CtlErr>(ok_json(json!({"now": c.now()})))
    };
    run.await.unwrap_or_else(CtlErr::response)
}

async fn c_crm_admin(AxState(c): AxState<PortalControl>, req: Request) -> Response {
    let run = async {
        let v = body_json(req).await?;
        let admin = field(&v, "admin")?
            .as_bool()
            .ok_or_else(|| bad_request("admin must be a boolean"))?;
        c.set_crm_admin(admin);
        Ok::<_, CtlErr>(ok_json(json!({"ok": true})))
    };
    run.await.unwrap_or_else(CtlErr::response)
}

async fn c_availability(AxState(c): AxState<PortalControl>) -> Response {
    ok_json(c.availability())
}

/// `{"method": "crm.currency.list", "available": false}`
async fn c_methods(AxState(c): AxState<PortalControl>, req: Request) -> Response {
    let run = async {
        let v = body_json(req).await?;
        let method = str_of(&v, "method")?;
        let available = field(&v, "available")?
            .as_bool()
            .ok_or_else(|| bad_request("available must be a boolean"))?;
        c.set_method_available(method, available);
        Ok::<_, CtlErr>(ok_json(c.availability()))
    };
    run.await.unwrap_or_else(CtlErr::response)
}

/// `{"smart_processes": "supported" | "entity_type_not_supported" | "legacy_zero" | "not_found"}`
async fn c_stage_history(AxState(c): AxState<PortalControl>, req: Request) -> Response {
    let run = async {
        let v = body_json(req).await?;
        let name = str_of(&v, "smart_processes")?;
        let mode = SmartStageHistory::parse(name).ok_or_else(|| {
            bad_request("smart_processes: use supported, entity_type_not_supported, legacy_zero or not_found")
        })?;
        c.set_smart_stage_history(mode);
        Ok::<_, CtlErr>(ok_json(c.availability()))
    };
    run.await.unwrap_or_else(CtlErr::response)
}

/// `{"scope": "user", "denied": true}`
async fn c_scopes(AxState(c): AxState<PortalControl>, req: Request) -> Response {
    let run = async {
        let v = body_json(req).await?;
        let scope = str_of(&v, "scope")?;
        let denied = field(&v, "denied")?
            .as_bool()
            .ok_or_else(|| bad_request("denied must be a boolean"))?;
        c.set_scope_denied(scope, denied);
        Ok::<_, CtlErr>(ok_json(c.availability()))
    };
    run.await.unwrap_or_else(CtlErr::response)
}

async fn c_billing(AxState(c): AxState<PortalControl>) -> Response {
    ok_json(serde_json::to_value(c.billing()).unwrap_or(SJ::Null))
}

/// Changes any of `batch_billing`, `nested_figures`, `cost_scale`; answers the settings now
/// in force.
async fn c_billing_set(AxState(c): AxState<PortalControl>, req: Request) -> Response {
    let run = async {
        let v = body_json(req).await?;
        let mut now = serde_json::to_value(c.billing()).map_err(bad_request)?;
        let (Some(patch), Some(into)) = (v.as_object(), now.as_object_mut()) else {
            return Err(bad_request("expected a JSON object"));
        };
        for (k, val) in patch {
            if !into.contains_key(k) {
                return Err(bad_request(format!(
                    "unknown billing setting '{k}' (batch_billing, nested_figures, cost_scale)"
                )));
            }
            into.insert(k.clone(), val.clone());
        }
        let billing = serde_json::from_value(now).map_err(bad_request)?;
        c.set_billing(billing).map_err(bad_request)?;
        Ok::<_, CtlErr>(ok_json(
            serde_json::to_value(c.billing()).unwrap_or(SJ::Null),
        ))
    };
    run.await.unwrap_or_else(CtlErr::response)
}

/// Handlers, the offline queue, counters, switches and the application token.
async fn c_events(AxState(c): AxState<PortalControl>) -> Response {
    ok_json(json!({
        "settings": c.event_settings(),
        "handlers": c.event_handlers(),
        "queue": c.offline_queue(),
        "counters": c.event_counters(),
        "application_token": c.application_token(),
    }))
}

/// Changes any of `offline_event_data` (`fields`|`empty`), `online_format` (`form`|`json`),
/// `offline_extended` (bool); answers the switches now in force.
async fn c_event_settings(AxState(c): AxState<PortalControl>, req: Request) -> Response {
    let run = async {
        let v = body_json(req).await?;
        let mut now = serde_json::to_value(c.event_settings()).map_err(bad_request)?;
        let (Some(patch), Some(into)) = (v.as_object(), now.as_object_mut()) else {
            return Err(bad_request("expected a JSON object"));
        };
        for (k, val) in patch {
            if !into.contains_key(k) {
                return Err(bad_request(format!(
                    "unknown event setting '{k}' (offline_event_data, online_format, offline_extended)"
                )));
            }
            into.insert(k.clone(), val.clone());
        }
        c.set_event_settings(serde_json::from_value(now).map_err(bad_request)?);
        Ok::<_, CtlErr>(ok_json(
            serde_json::to_value(c.event_settings()).unwrap_or(SJ::Null),
        ))
    };
    run.await.unwrap_or_else(CtlErr::response)
}
