//! The HTTP API: one route module per resource, one `AppError` for every
//! failure, and `app(state)` building the whole router.

pub mod conn;
pub mod error;
mod flows;
pub mod guard;
mod hooks;
mod meta;
mod otlp;
mod replay;
mod runs;
mod schedules;
mod secrets;
mod services;
mod ui;
mod ws;

pub use runs::effective_quotas;

use crate::metrics::Metrics;
use crate::sandbox::Quotas;
use crate::scheduler::Scheduler;
use crate::services::ServiceRegistry;
use crate::store::Store;
use crate::trace::bus::EventBus;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, post};
use error::AppError;
use guard::Guard;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Everything handlers share.
pub struct AppState {
    pub store: Arc<Store>,
    /// This node among others on PostgreSQL; None on SQLite.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    pub scheduler: Arc<Scheduler>,
    pub services: Arc<ServiceRegistry>,
    /// The secrets services' headers name.
    pub secrets: Arc<crate::secrets::Secrets>,
    pub bus: Arc<EventBus>,
    pub metrics: Arc<Metrics>,
    /// The most a run may ask for; requests are capped to these.
    pub max_quotas: Quotas,
    /// WebSocket streams open at once; each holds a permit while it lives,
    /// so a client opening thousands is refused, not served.
    pub stream_slots: Arc<Semaphore>,
    /// Cancelled when the server begins to shut down; ends WebSocket streams.
    pub shutdown: CancellationToken,
}

/// The whole API behind `guard`, which every request passes first.
pub fn app(state: Arc<AppState>, guard: Arc<Guard>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/", get(ui::index))
        .route("/ui/{*path}", get(ui::page_file))
        .route("/vendor/{*path}", get(ui::vendor_file))
        .route("/healthz", get(meta::healthz))
        .route("/readyz", get(meta::readyz))
        .route("/metrics", get(meta::metrics))
        .route("/api/quotas", get(meta::quotas))
        .route("/api/flows", post(flows::upload).get(flows::list))
        .route("/api/flows/search", get(flows::search_or_get).delete(flows::delete_search))
        .route("/api/check", post(flows::check))
        .route("/api/flows/{name}", get(flows::get).delete(flows::delete))
        .route("/api/flows/{name}/hooks", post(hooks::create).get(hooks::list))
        .route("/api/hooks/{id}", axum::routing::delete(hooks::remove))
        .route(
            "/hooks/{id}",
            post(hooks::fire).layer(DefaultBodyLimit::max(hooks::MAX_HOOK_BODY_BYTES.min(max_body_bytes))),
        )
        .route("/api/services", post(services::register).get(services::list))
        .route("/api/services/{name}", axum::routing::delete(services::remove))
        // A POST, though it changes nothing: it makes the server call the
        // service, which no GET may (a foreign page's link or <img> can send one).
        .route("/api/services/{name}/health", post(services::health))
        .route("/api/schedules", post(schedules::create).get(schedules::list))
        .route("/api/schedules/{id}", axum::routing::delete(schedules::remove))
        .route("/api/secrets", post(secrets::set).get(secrets::list))
        .route("/api/secrets/{name}", axum::routing::delete(secrets::remove))
        .route("/api/stubs/hero_logic.pyi", get(services::stubs))
        .route("/api/runs", post(runs::start).get(runs::list))
        .route("/api/runs/{id}", get(runs::get))
        .route("/api/runs/{id}/spans", get(runs::spans))
        .route("/api/runs/{id}/source", get(runs::source))
        .route("/api/runs/{id}/logs", get(runs::logs))
        .route("/api/runs/{id}/cancel", post(runs::cancel))
        .route("/api/runs/{id}/otlp", get(runs::otlp))
        .route("/api/runs/{id}/journal", get(runs::journal))
        .route("/api/runs/{id}/replay", post(replay::replay))
        .route("/api/runs/{id}/events", get(ws::run_events))
        .route("/api/events", get(ws::run_list_events))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(guard, guard::guard))
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
