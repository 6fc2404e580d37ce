//! `b24ch serve`: the HTTP service ClickHouse pulls typed rows from (contract v1:
//! docs/http-contract.md).
mod auth;
pub mod conn;
mod dictionaries;
mod error;
mod html;
pub mod listener;
mod meta;
mod metrics;
pub mod page;
mod routes;
mod rows;
mod session;
mod state;
pub mod tls;
mod view;

pub use error::ApiError;
pub use state::AppState;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

/// The router with auth (the bearer token on every endpoint but `/healthz` and the status
/// page, which has its own login) and the cheap `HEAD` shortcut.
pub fn router(state: Arc<AppState>) -> Router {
    let token = state.config.proxy.token.clone();
    page::routes()
        .route("/healthz", get(routes::healthz))
        .route("/metrics", get(metrics))
        .route("/v1/entities", get(routes::entities))
        .route("/v1/entities/{entity}/schema", get(routes::schema))
        .route("/v1/entities/{entity}/rows", get(routes::rows))
        .route("/v1/entities/{entity}/ids", get(routes::ids))
        .route("/v1/entities/{entity}/ddl", get(routes::entity_ddl))
        .route("/v1/meta/{what}", get(routes::meta))
        .route(
            "/v1/dictionaries/{name}",
            get(dictionaries::dictionary).post(dictionaries::dictionary),
        )
        .layer(middleware::from_fn(head_shortcut))
        .layer(middleware::from_fn_with_state(token, auth::require_token))
        .with_state(state)
}

/// ClickHouse's `url()` sends `HEAD` before `GET`; answering it from the handlers would run
/// a whole Bitrix24 listing for nothing, so it is answered here at once.
async fn head_shortcut(req: Request, next: Next) -> Response {
    if req.method() == Method::HEAD && !auth::is_page_path(req.uri().path()) {
        return StatusCode::OK.into_response();
    }
    next.run(req).await
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    match metrics::metrics(&state) {
        Ok(text) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics could not be encoded",
        )
            .into_response(),
    }
}
