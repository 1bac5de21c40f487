//! `GET /healthz`, `GET /metrics` and `GET /api/quotas`.

use super::AppState;
use crate::sandbox::QUOTAS;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::json;
use std::sync::Arc;

pub async fn healthz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    axum::Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "runs_queued": state.scheduler.queued(),
        "runs_running": state.scheduler.running(),
    }))
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
    let body = state.metrics.render(state.scheduler.queued(), state.scheduler.running(), state.bus.held_bytes());
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body)
}
