//! Bearer-token check for every endpoint but `/healthz` and the status page (which has its own
//! login, see `page.rs`), compared in constant time. A session cookie is never accepted here.
use super::error::ApiError;
use super::session::token_eq;
use crate::config::Secret;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The status page's address (a session cookie's `Path`).
pub const PAGE: &str = "/status/";

/// The page's paths: they do their own auth (a session or a bearer token) instead of the
/// bearer check.
const PATHS: [&str; 6] = [
    "/",
    "/status",
    PAGE,
    "/status/json",
    "/status/login",
    "/status/logout",
];

pub(super) fn is_page_path(path: &str) -> bool {
    PATHS.contains(&path)
}

pub(super) async fn require_token(
    State(token): State<Secret>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    if path == "/healthz" || is_page_path(path) || bearer_matches(req.headers(), &token) {
        next.run(req).await
    } else {
        ApiError::unauthorized().into_response()
    }
}

/// Whether the request carries `Authorization: Bearer <proxy.token>`.
pub(super) fn bearer_matches(headers: &HeaderMap, token: &Secret) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .is_some_and(|p| token_eq(p, token))
}
