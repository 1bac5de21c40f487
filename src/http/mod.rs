//! The HTTP API: one route module per resource, one `AppError` for every
//! failure, and `app(state)` building the whole router.

pub mod error;
mod flows;
mod meta;
mod otlp;
mod runs;
mod services;
mod ui;
mod ws;

pub use runs::effective_quotas;
pub use ws::MAX_EVENTS_BEHIND;

use crate::metrics::Metrics;
use crate::sandbox::{Quotas, Sandbox};
use crate::scheduler::Scheduler;
use crate::services::ServiceRegistry;
use crate::store::Store;
use crate::trace::bus::EventBus;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use error::AppError;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Everything handlers share.
pub struct AppState {
    pub store: Arc<Store>,
    pub sandbox: Sandbox,
    pub scheduler: Arc<Scheduler>,
    pub services: Arc<ServiceRegistry>,
    pub bus: Arc<EventBus>,
    pub metrics: Arc<Metrics>,
    /// The most a run may ask for; requests are capped to these.
    pub max_quotas: Quotas,
    /// When set, every mutating request needs `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Cancelled when the server begins to shut down; ends WebSocket streams.
    pub shutdown: CancellationToken,
}

pub fn app(state: Arc<AppState>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/", get(ui::index))
        .route("/ui/{*path}", get(ui::page_file))
        .route("/vendor/{*path}", get(ui::vendor_file))
        .route("/healthz", get(meta::healthz))
        .route("/metrics", get(meta::metrics))
        .route("/api/flows", post(flows::upload).get(flows::list))
        .route("/api/flows/search", get(flows::search_or_get).delete(flows::delete_search))
        .route("/api/check", post(flows::check))
        .route("/api/flows/{name}", get(flows::get).delete(flows::delete))
        .route("/api/services", post(services::register).get(services::list))
        .route("/api/services/{name}", axum::routing::delete(services::remove))
        .route("/api/stubs/hero_logic.pyi", get(services::stubs))
        .route("/api/runs", post(runs::start).get(runs::list))
        .route("/api/runs/{id}", get(runs::get))
        .route("/api/runs/{id}/spans", get(runs::spans))
        .route("/api/runs/{id}/source", get(runs::source))
        .route("/api/runs/{id}/logs", get(runs::logs))
        .route("/api/runs/{id}/cancel", post(runs::cancel))
        .route("/api/runs/{id}/otlp", get(runs::otlp))
        .route("/api/runs/{id}/events", get(ws::run_events))
        .route("/api/events", get(ws::run_list_events))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

async fn not_found(request: Request) -> AppError {
    AppError::not_found(format!("no such endpoint: {} {}", request.method(), request.uri().path()))
}

async fn method_not_allowed(request: Request) -> AppError {
    AppError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not allowed on {}", request.method(), request.uri().path()),
    )
}

/// With a token configured, requests that change anything must carry it.
async fn require_token(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let Some(token) = &state.token else { return next.run(request).await };
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match presented {
        Some(presented) if constant_time_eq(presented.as_bytes(), token.as_bytes()) => next.run(request).await,
        Some(_) => AppError::new(StatusCode::UNAUTHORIZED, "unauthorized", "the bearer token is not valid")
            .with_header(header::WWW_AUTHENTICATE, "Bearer")
            .into_response(),
        None => {
            AppError::new(StatusCode::UNAUTHORIZED, "unauthorized", "this request needs Authorization: Bearer <token>")
                .with_header(header::WWW_AUTHENTICATE, "Bearer")
                .into_response()
        }
    }
}

/// Compares without stopping at the first difference, so response times do
/// not reveal how much of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}
