//! `/api/secrets`: set, list (names and dates, never values) and remove
//! the secrets services' headers name.

use super::AppState;
use super::error::{AppError, JsonBody};
use crate::secrets::SecretError;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetBody {
    name: String,
    value: String,
}

impl From<SecretError> for AppError {
    fn from(error: SecretError) -> AppError {
        match error {
            SecretError::Invalid(message) => AppError::bad_request("invalid_secret", message),
            SecretError::Key(message) => {
                tracing::error!(error = message, "the secret key");
                AppError::new(StatusCode::SERVICE_UNAVAILABLE, "secret_key", message)
            }
            SecretError::Store(error) => error.into(),
        }
    }
}

pub async fn set(
    State(state): State<Arc<AppState>>,
    JsonBody(body): JsonBody<SetBody>,
) -> Result<impl IntoResponse, AppError> {
    let summary = state.secrets.set(&body.name, &body.value).await?;
    Ok((StatusCode::CREATED, Json(summary)))
}

pub async fn list(State(state): State<Arc<AppState>>) -> Result<impl IntoResponse, AppError> {
    Ok(Json(json!({ "secrets": state.secrets.list().await? })))
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    if state.secrets.remove(&name).await? {
        Ok(Json(json!({ "name": name, "removed": true })))
    } else {
        Err(AppError::not_found(format!("no secret named '{}'", crate::sandbox::clip_str(&name, 128))))
    }
}
