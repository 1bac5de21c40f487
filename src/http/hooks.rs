//! Webhooks: `POST /api/flows/{name}/hooks` makes one, `GET` lists a flow's,
//! `DELETE /api/hooks/{id}` removes one, and `POST /hooks/{id}` (the only
//! route other machines reach without the token) starts a run of its flow
//! with the JSON body as input.

use super::AppState;
use super::error::{AppError, JsonBody};
use super::runs::{accepted, checked_input, effective_quotas, submit};
use crate::scheduler::{Client, StartRun};
use crate::store::{StoredHook, Trigger};
use crate::tenancy::DEFAULT_WORKSPACE;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Value, json};
use std::sync::Arc;

/// Random bytes in a webhook's id: 128 bits, so guessing one is hopeless.
const HOOK_ID_BYTES: usize = 16;
/// The largest body a webhook takes: inputs are small, and anyone who has
/// the URL may send one.
pub const MAX_HOOK_BODY_BYTES: usize = 1024 * 1024;

fn answer(hook: &StoredHook) -> Value {
    json!({
        "hook_id": hook.hook_id,
        // What flows see of it (`runs.recent`), never the id itself.
        "fingerprint": crate::store::hook_fingerprint(&hook.hook_id),
        "url": format!("/hooks/{}", hook.hook_id),
        "flow": hook.flow,
        "created_us": hook.created_us,
    })
}

async fn flow_must_exist(state: &AppState, name: &str) -> Result<(), AppError> {
    match state.store.flow(name, None).await? {
        Some(_) => Ok(()),
        None => Err(AppError::not_found(format!("no flow named '{name}'"))),
    }
}

pub async fn create(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Result<Response, AppError> {
    let hook = StoredHook {
        hook_id: crate::secrets::random_hex(HOOK_ID_BYTES),
        flow: name,
        created_us: crate::trace::now_us(),
    };
    // Stored only while the flow is: made as it is removed, it is not.
    if !state.store.save_hook(hook.clone()).await? {
        return Err(AppError::not_found(format!("no flow named '{}'", hook.flow)));
    }
    Ok((StatusCode::CREATED, Json(answer(&hook))).into_response())
}

pub async fn list(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Result<Response, AppError> {
    flow_must_exist(&state, &name).await?;
    let hooks: Vec<Value> = state.store.hooks(&name).await?.iter().map(answer).collect();
    Ok(Json(json!({ "hooks": hooks })).into_response())
}

pub async fn remove(State(state): State<Arc<AppState>>, Path(hook_id): Path<String>) -> Result<Response, AppError> {
    if state.store.remove_hook(&hook_id).await? {
        Ok(Json(json!({ "hook_id": hook_id, "removed": true })).into_response())
    } else {
        Err(AppError::not_found("no webhook with this id"))
    }
}

/// Start a run of the hook's flow (its latest version) with the body as
/// input, under the default quotas within the operator's maxima.
pub async fn fire(
    State(state): State<Arc<AppState>>,
    client: Option<Extension<Client>>,
    Path(hook_id): Path<String>,
    JsonBody(input): JsonBody<Value>,
) -> Result<Response, AppError> {
    // Said the same whether the id is malformed or unknown: a caller learns
    // nothing from which.
    let hook = state.store.hook(&hook_id).await?.ok_or_else(|| AppError::not_found("no webhook with this id"))?;
    let Some(stored) = state.store.flow(&hook.flow, None).await? else {
        return Err(AppError::not_found(format!("the flow '{}' of this webhook no longer exists", hook.flow)));
    };
    // Removing a flow removes its hooks in the same transaction, so a hook
    // still stored after the flow was read was made for that very flow, not
    // for one removed meanwhile whose name another flow then took.
    if state.store.hook(&hook_id).await?.is_none() {
        return Err(AppError::not_found("no webhook with this id"));
    }
    let quotas = effective_quotas(None, &state.max_quotas)?;
    let input = checked_input(&stored.info, &input, &quotas)?;
    let client = client.map(|Extension(client)| client);
    let trigger = Trigger::Webhook { hook_id: hook.hook_id };
    let submitted = submit(&state, StartRun::stored(DEFAULT_WORKSPACE, stored, input, quotas, client, trigger))?;
    accepted(&state, &submitted).await
}
