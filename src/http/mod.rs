//! The HTTP API: one route module per resource, one `AppError` for every
//! failure, and `app(state)` building the whole router.

pub mod access;
mod audit;
pub mod conn;
pub mod error;
mod flows;
pub mod guard;
mod hooks;
pub mod keyring;
mod meta;
mod otlp;
mod replay;
mod runs;
mod schedules;
mod secrets;
mod services;
mod ui;
mod workspaces;
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
use axum::handler::Handler;
use axum::http::Method;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{MethodFilter, MethodRouter, post};
use error::AppError;
use guard::Guard;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Everything handlers share.
pub struct AppState {
    pub store: Arc<Store>,
    /// Workspace keys and workspaces as this node last looked them up.
    pub keyring: Arc<keyring::Keyring>,
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

/// The whole API behind `guard`, which every request passes first. Each
/// route is added through `Routes`, which refuses one `access::ROUTES` does
/// not name.
pub fn app(state: Arc<AppState>, guard: Arc<Guard>, max_body_bytes: usize) -> Router {
    use Method as M;
    let hook_body_limit = DefaultBodyLimit::max(hooks::MAX_HOOK_BODY_BYTES.min(max_body_bytes));
    Routes::default()
        .route(M::GET, "/", ui::index)
        .route(M::GET, "/ui/{*path}", ui::page_file)
        .route(M::GET, "/vendor/{*path}", ui::vendor_file)
        .route(M::GET, "/healthz", meta::healthz)
        .route(M::GET, "/readyz", meta::readyz)
        .route(M::GET, "/metrics", meta::metrics)
        .route(M::GET, "/api/quotas", meta::quotas)
        .route(M::GET, "/api/whoami", workspaces::whoami)
        .route(M::POST, "/api/workspaces", workspaces::create)
        .route(M::GET, "/api/workspaces", workspaces::list)
        .route(M::DELETE, "/api/workspaces/{ws}", workspaces::remove)
        .route(M::PUT, "/api/workspaces/{ws}/limits", workspaces::set_limits)
        .route(M::POST, "/api/workspaces/{ws}/keys", workspaces::create_key)
        .route(M::GET, "/api/workspaces/{ws}/keys", workspaces::list_keys)
        .route(M::DELETE, "/api/workspaces/{ws}/keys/{key_id}", workspaces::revoke_key)
        .route(M::GET, "/api/audit", audit::list)
        .route(M::POST, "/api/flows", flows::upload)
        .route(M::GET, "/api/flows", flows::list)
        .route(M::GET, "/api/flows/search", flows::search_or_get)
        .route(M::DELETE, "/api/flows/search", flows::delete_search)
        .route(M::POST, "/api/check", flows::check)
        .route(M::GET, "/api/flows/{name}", flows::get)
        .route(M::DELETE, "/api/flows/{name}", flows::delete)
        .route(M::POST, "/api/flows/{name}/hooks", hooks::create)
        .route(M::GET, "/api/flows/{name}/hooks", hooks::list)
        .route(M::DELETE, "/api/hooks/{id}", hooks::remove)
        .route_with(M::POST, "/hooks/{id}", post(hooks::fire).layer(hook_body_limit))
        .route(M::POST, "/api/services", services::register)
        .route(M::GET, "/api/services", services::list)
        .route(M::DELETE, "/api/services/{name}", services::remove)
        // A POST, though it changes nothing: it makes the server call the
        // service, which no GET may (a foreign page's link or <img> can send one).
        .route(M::POST, "/api/services/{name}/health", services::health)
        .route(M::POST, "/api/schedules", schedules::create)
        .route(M::GET, "/api/schedules", schedules::list)
        .route(M::DELETE, "/api/schedules/{id}", schedules::remove)
        .route(M::POST, "/api/secrets", secrets::set)
        .route(M::GET, "/api/secrets", secrets::list)
        .route(M::DELETE, "/api/secrets/{name}", secrets::remove)
        .route(M::GET, "/api/stubs/hero_logic.pyi", services::stubs)
        .route(M::POST, "/api/runs", runs::start)
        .route(M::GET, "/api/runs", runs::list)
        .route(M::GET, "/api/runs/{id}", runs::get)
        .route(M::GET, "/api/runs/{id}/spans", runs::spans)
        .route(M::GET, "/api/runs/{id}/source", runs::source)
        .route(M::GET, "/api/runs/{id}/logs", runs::logs)
        .route(M::POST, "/api/runs/{id}/cancel", runs::cancel)
        .route(M::GET, "/api/runs/{id}/otlp", runs::otlp)
        .route(M::GET, "/api/runs/{id}/journal", runs::journal)
        .route(M::POST, "/api/runs/{id}/replay", replay::replay)
        .route(M::GET, "/api/runs/{id}/events", ws::run_events)
        .route(M::GET, "/api/events", ws::run_list_events)
        .into_router()
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(guard, guard::guard))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

/// The router under construction: a route joins it only with a row in
/// `access::ROUTES`, so none is served without saying who may call it.
#[derive(Default)]
struct Routes {
    router: Router<Arc<AppState>>,
}

impl Routes {
    fn route<H, T>(self, method: Method, path: &'static str, handler: H) -> Routes
    where
        H: Handler<T, Arc<AppState>>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a method axum routes");
        self.route_with(method, path, axum::routing::on(filter, handler))
    }

    fn route_with(self, method: Method, path: &'static str, method_router: MethodRouter<Arc<AppState>>) -> Routes {
        assert!(access::access_for(&method, path).is_some(), "{method} {path} has no row in http::access::ROUTES");
        Routes { router: self.router.route(path, method_router) }
    }

    fn into_router(self) -> Router<Arc<AppState>> {
        self.router
    }
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
