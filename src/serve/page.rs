//! The status page for people and its login (see `session.rs`):
//!
//! - `GET /` and `GET /status` → `/status/`;
//! - `GET /status/` the page with a session cookie (or a bearer token), else the login form;
//! - `POST /status/login` the form (`token=…`), `GET /status/login?code=…` a one-time link;
//! - `POST /status/logout`;
//! - `GET /status/json` the page's figures as JSON (same auth as the page).
pub use super::auth::PAGE;
use super::auth::bearer_matches;
use super::html::{self, Notice};
use super::session::{FAILURE_WINDOW, Login, MAX_FAILURES};
use super::state::AppState;
use super::view::{StatusView, duration};
use axum::extract::{ConnectInfo, Form, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(to_page))
        .route("/status", get(to_page))
        .route(PAGE, get(status_page))
        .route("/status/json", get(status_json))
        .route("/status/login", get(login_link).post(login))
        .route("/status/logout", post(logout))
}

async fn to_page() -> Redirect {
    Redirect::to(PAGE)
}

/// The client's address for the login rate limit (none when served without connect info).
pub struct ClientAddr(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<super::listener::PeerAddr>>()
                .map(|c| c.0.0.ip()),
        ))
    }
}

fn cookies(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
}

/// A live session cookie, or the bearer token (scripts and the old `curl -H` way).
fn may_view(state: &AppState, headers: &HeaderMap) -> bool {
    state
        .page_auth
        .has_session(cookies(headers), Instant::now())
        || bearer_matches(headers, &state.config.proxy.token)
}

/// Headers every page response carries: nothing cached, no script, no framing, no referrer.
fn page_response(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

fn login_form(status: StatusCode, notice: Notice<'_>) -> Response {
    page_response(status, html::login_page(notice))
}

async fn status_page(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !may_view(&state, &headers) {
        return login_form(StatusCode::UNAUTHORIZED, Notice::None);
    }
    page_response(
        StatusCode::OK,
        html::status_page(&StatusView::build(&state)),
    )
}

async fn status_json(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !may_view(&state, &headers) {
        return super::ApiError::new(
            StatusCode::UNAUTHORIZED,
            "b24ch: log in at /status/ first (or send `Authorization: Bearer <proxy.token>`)",
        )
        .into_response();
    }
    let mut resp = Json(StatusView::build(&state)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A redirect to the page that also sets `cookie`.
fn to_page_with(cookie: &str) -> Response {
    let mut resp = Redirect::to(PAGE).into_response();
    if let Ok(v) = HeaderValue::from_str(cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
}

async fn login(
    State(state): State<Arc<AppState>>,
    ClientAddr(addr): ClientAddr,
    Form(form): Form<LoginForm>,
) -> Response {
    let who = addr.map_or_else(|| "this address".to_string(), |a| a.to_string());
    let outcome = state.page_auth.login(
        addr,
        form.token.trim(),
        &state.config.proxy.token,
        Instant::now(),
    );
    match outcome {
        Login::Ok(id) => {
            tracing::info!(client = %who, "status page: logged in");
            to_page_with(&state.page_auth.set_cookie(&id))
        }
        Login::Wrong { tries_left } => {
            tracing::warn!(client = %who, tries_left, "status page: wrong token");
            let message = match tries_left {
                0 => format!(
                    "Wrong token. That was the {MAX_FAILURES}th wrong try: logins from {who} now pause for {}.",
                    duration(FAILURE_WINDOW.as_secs_f64())
                ),
                n => format!(
                    "Wrong token. {n} more {} from {who} before logins pause for {}.",
                    if n == 1 { "try" } else { "tries" },
                    duration(FAILURE_WINDOW.as_secs_f64())
                ),
            };
            login_form(StatusCode::UNAUTHORIZED, Notice::Error(&message))
        }
        Login::Paused { retry_after } => {
            let message = format!(
                "Too many wrong tokens from {who}: {MAX_FAILURES} within {}. Try again in {}.",
                duration(FAILURE_WINDOW.as_secs_f64()),
                duration(retry_after.as_secs_f64())
            );
            let mut resp = login_form(StatusCode::TOO_MANY_REQUESTS, Notice::Error(&message));
            if let Ok(v) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
    }
}

#[derive(Deserialize)]
struct LoginLink {
    code: Option<String>,
}

/// A one-time link: the code becomes a session and the redirect drops it from the address bar.
async fn login_link(State(state): State<Arc<AppState>>, Query(link): Query<LoginLink>) -> Response {
    let session = link
        .code
        .as_deref()
        .and_then(|c| state.page_auth.redeem(c, Instant::now()));
    match session {
        Some(id) => {
            tracing::info!("status page: logged in with a one-time link");
            to_page_with(&state.page_auth.set_cookie(&id))
        }
        None => login_form(
            StatusCode::UNAUTHORIZED,
            Notice::Error(
                "This login link was used already or has expired (links work once, for 15 minutes). Log in with the token.",
            ),
        ),
    }
}

async fn logout(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    state.page_auth.logout(cookies(&headers));
    let mut resp = login_form(StatusCode::OK, Notice::Info("You are logged out."));
    if let Ok(v) = HeaderValue::from_str(&state.page_auth.clear_cookie()) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}
