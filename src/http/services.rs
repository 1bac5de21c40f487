//! `/api/services`: register, list and remove services; `/api/stubs` serves
//! the Python stubs for the SDK and every service.

use super::AppState;
use super::error::{AppError, JsonBody};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    name: String,
    /// `http://host:port/path`, `https://host/path` or `unix:///path/to.sock`.
    url: String,
    /// The OpenRPC document; without it the host asks the service (`rpc.discover`).
    openrpc: Option<Value>,
    timeout_ms: Option<u64>,
    /// Added to each call; `{{secret:NAME}}` in a value is the secret's value.
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

pub async fn register(
    State(state): State<Arc<AppState>>,
    JsonBody(body): JsonBody<RegisterBody>,
) -> Result<impl IntoResponse, AppError> {
    let info = state
        .services
        .register(&body.name, &body.url, body.openrpc, body.timeout_ms, body.headers)
        .await
        .map_err(|message| AppError::bad_request("invalid_service", message))?;
    Ok((StatusCode::CREATED, Json(info)))
}

pub async fn list(State(state): State<Arc<AppState>>) -> Result<impl IntoResponse, AppError> {
    Ok(Json(json!({ "services": state.services.list().await? })))
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    if state.services.remove(&name).await? {
        Ok(Json(json!({ "name": name, "removed": true })))
    } else {
        Err(AppError::not_found(format!("no registered service named '{name}'")))
    }
}

pub async fn stubs(State(state): State<Arc<AppState>>) -> Result<impl IntoResponse, AppError> {
    let services = state.services.list().await?;
    Ok(([(header::CONTENT_TYPE, "text/x-python; charset=utf-8")], crate::services::python_stubs(&services)))
}

/// `POST /api/services/{name}/health`: `rpc.discover` once, timed, what the
/// Services page shows as health. Not a GET: it makes the server call the
/// service, and the guard holds only requests that can change something
/// (POST, DELETE) to the page's own Origin; a GET may come from a foreign
/// page's link, frame or `<img>`.
pub async fn health(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    match state.services.health(&name).await? {
        Some(health) => Ok(Json(health)),
        None => Err(AppError::not_found(format!("no registered service named '{name}'"))),
    }
}
