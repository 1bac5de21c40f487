//! `GET /healthz`, `GET /readyz`, `GET /metrics` and `GET /api/quotas`.

use super::AppState;
use super::error::AppError;
use crate::sandbox::QUOTAS;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;
use std::sync::Arc;

/// Liveness: the process answers (always 200), and whether it is
/// `degraded` (its database unreachable: its runs go on, their writes wait).
pub async fn healthz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let reachable = state.store.health().is_reachable();
    axum::Json(json!({
        "status": if reachable { "ok" } else { "degraded" },
        "database": if reachable { "reachable" } else { "unreachable" },
        "version": env!("CARGO_PKG_VERSION"),
        "runs_queued": state.scheduler.queued(),
        "runs_running": state.scheduler.running(),
    }))
}

/// Readiness, for load balancers: 200 when this node can take requests
/// (its database answers now), else 503 with `Retry-After`.
pub async fn readyz(State(state): State<Arc<AppState>>) -> Result<impl IntoResponse, AppError> {
    if state.shutdown.is_cancelled() {
        return Err(AppError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the server is shutting down"));
    }
    if !state.store.probe().await {
        return Err(AppError::database_unavailable());
    }
    Ok(axum::Json(json!({"status": "ready"})))
}

/// Every quota: its name, its field in a run's `quotas`, its default, the
/// most this server grants, its flag and unit, the `usage` field that shows
/// what a run used of it, and its label (the page builds its usage table
/// from this).
pub async fn quotas(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let rows: Vec<_> = QUOTAS
        .iter()
        .map(|def| {
            let mut row = serde_json::to_value(def).unwrap_or_default();
            row["max"] = json!(state.max_quotas.get(def.quota));
            row
        })
        .collect();
    axum::Json(rows)
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let health = state.store.health();
    state.metrics.database(health.is_reachable(), health.outages());
    let body = state.metrics.render(state.scheduler.queued(), state.scheduler.running(), state.bus.held_bytes());
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body)
}
