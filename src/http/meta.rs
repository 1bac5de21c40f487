//! `GET /healthz` and `GET /metrics`.

use super::AppState;
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

pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let body = state.metrics.render(state.scheduler.queued(), state.scheduler.running(), state.bus.held_bytes());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
