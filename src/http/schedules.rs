//! `/api/schedules`: make, list and remove schedules (runs of a flow at
//! the times a cron pattern names; `crate::schedules` starts them).

use super::AppState;
use super::error::{AppError, JsonBody};
use crate::sandbox::Quotas;
use crate::schedules::{ScheduleError, rfc3339};
use crate::store::StoredSchedule;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    flow: String,
    /// 5 fields, or 6 with seconds first.
    cron: String,
    #[serde(default = "empty_input")]
    input: Value,
    /// The IANA time zone the pattern is read in; UTC when left out.
    timezone: Option<String>,
}

fn empty_input() -> Value {
    json!({})
}

fn answer(schedule: &StoredSchedule) -> Value {
    json!({
        "schedule_id": schedule.schedule_id,
        "flow": schedule.flow,
        "cron": schedule.cron,
        "input": schedule.input,
        "timezone": schedule.timezone,
        "next": rfc3339(schedule.next_us),
        "next_us": schedule.next_us,
        "created_us": schedule.created_us,
    })
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Response, AppError> {
    let quotas = Quotas::default().capped_by(&state.max_quotas);
    let made =
        crate::schedules::create(&state.store, &body.flow, &body.cron, body.input, body.timezone.as_deref(), &quotas);
    let schedule = made.await.map_err(|e| match e {
        ScheduleError::Invalid(message) => AppError::bad_request("invalid_schedule", message),
        ScheduleError::NoFlow(_) => AppError::not_found(e.to_string()),
        ScheduleError::Input(message) => AppError::bad_request("invalid_input", message),
        ScheduleError::Store(error) => error.into(),
    })?;
    Ok((StatusCode::CREATED, Json(answer(&schedule))).into_response())
}

pub async fn list(State(state): State<Arc<AppState>>) -> Result<Response, AppError> {
    let schedules: Vec<Value> = state.store.schedules().await?.iter().map(answer).collect();
    Ok(Json(json!({ "schedules": schedules })).into_response())
}

pub async fn remove(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Response, AppError> {
    if state.store.remove_schedule(&id).await? {
        Ok(Json(json!({ "schedule_id": id, "removed": true })).into_response())
    } else {
        Err(AppError::not_found("no schedule with this id"))
    }
}
