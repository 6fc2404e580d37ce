//! Bearer-token check for every endpoint but `/healthz`, compared in constant time.
use super::error::ApiError;
use crate::config::Secret;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

pub async fn require_token(State(token): State<Secret>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/healthz" || token_matches(&req, &token) {
        next.run(req).await
    } else {
        ApiError::unauthorized().into_response()
    }
}

fn token_matches(req: &Request, token: &Secret) -> bool {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        // `ct_eq` on slices of different lengths is false without an early exit on content.
        Some(p) => bool::from(p.as_bytes().ct_eq(token.expose().as_bytes())),
        None => false,
    }
}
