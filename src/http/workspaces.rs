//! `/api/workspaces`: the operator makes, lists and removes workspaces and
//! sets their limits; a workspace's admin (or the operator) makes, lists
//! and revokes its keys. `GET /api/whoami` tells any caller where it acts
//! and with which role. Every change is in the audit log.

use super::AppState;
use super::access::ROLE_TABLE;
use super::audit::Who;
use super::error::{AppError, Body, JsonBody, parse_json};
use crate::sandbox::Quotas;
use crate::store::StoredKey;
use crate::tenancy::{DEFAULT_WORKSPACE, MAX_WORKSPACE_NAME, Role, is_workspace_name, keys};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

/// The longest name a key may be given.
const MAX_KEY_NAME: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    name: String,
}

pub async fn whoami(who: Who) -> Json<Value> {
    let caller = &who.caller;
    let roles: Vec<Value> =
        ROLE_TABLE.iter().map(|(role, adds)| json!({"role": role, "adds": adds, "held": caller.may(*role)})).collect();
    Json(json!({
        "workspace": caller.workspace,
        "role": caller.role,
        "operator": caller.is_operator(),
        "key_id": caller.key_id(),
        "roles": roles,
    }))
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    who: Who,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<impl IntoResponse, AppError> {
    if !is_workspace_name(&body.name) {
        return Err(AppError::bad_request(
            "invalid_workspace",
            format!(
                "a workspace name is lower-case letters, digits, - and _, starting with a letter, at most {MAX_WORKSPACE_NAME} characters"
            ),
        ));
    }
    if !state.store.create_workspace(&body.name, crate::trace::now_us()).await? {
        return Err(AppError::new(
            StatusCode::CONFLICT,
            "workspace_exists",
            format!("a workspace named '{}' exists", body.name),
        ));
    }
    who.record_in(&state, &body.name, "workspace.create", &body.name, json!({})).await?;
    let made = state.store.workspace(&body.name).await?;
    Ok((StatusCode::CREATED, Json(json!(made))))
}

pub async fn list(State(state): State<Arc<AppState>>) -> Result<Json<Value>, AppError> {
    Ok(Json(json!({ "workspaces": state.store.workspaces().await? })))
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    who: Who,
    Path(name): Path<String>,
) -> Result<Json<Value>, AppError> {
    if name == DEFAULT_WORKSPACE {
        return Err(AppError::bad_request("default_workspace", "the workspace 'default' cannot be removed"));
    }
    match state.store.remove_workspace(&name).await? {
        None => Err(no_such_workspace(&name)),
        Some(Err(in_use)) => Err(AppError::new(
            StatusCode::CONFLICT,
            "workspace_not_empty",
            format!("the workspace '{name}' still holds {}; remove them first", in_use.holds),
        )),
        Some(Ok(())) => {
            state.keyring.forget_all();
            who.record_in(&state, &name, "workspace.remove", &name, json!({})).await?;
            Ok(Json(json!({ "name": name, "removed": true })))
        }
    }
}

/// What the operator may set for a workspace. The numbers are kept with
/// it; `quotas` caps what its runs may ask for, under the server's maxima.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_concurrent: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_queued: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quotas: Option<Value>,
}

pub async fn set_limits(
    State(state): State<Arc<AppState>>,
    who: Who,
    Path(name): Path<String>,
    JsonBody(limits): JsonBody<Limits>,
) -> Result<Json<Value>, AppError> {
    if limits.max_concurrent == Some(0) || limits.max_queued == Some(0) {
        return Err(AppError::bad_request("invalid_limits", "max_concurrent and max_queued are at least 1"));
    }
    if let Some(quotas) = &limits.quotas {
        let quotas: Quotas = serde_json::from_value(quotas.clone())
            .map_err(|e| AppError::bad_request("invalid_limits", format!("quotas: {e}")))?;
        quotas.check().map_err(|problem| AppError::bad_request("invalid_limits", format!("quotas: {problem}")))?;
    }
    let limits = json!(limits);
    if !state.store.set_workspace_limits(&name, &limits).await? {
        return Err(no_such_workspace(&name));
    }
    who.record_in(&state, &name, "workspace.limits", &name, limits.clone()).await?;
    Ok(Json(json!({ "name": name, "limits": limits })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyBody {
    name: String,
    role: String,
}

pub async fn create_key(
    State(state): State<Arc<AppState>>,
    who: Who,
    Path(workspace): Path<String>,
    Body(body): Body,
) -> Result<impl IntoResponse, AppError> {
    // Another workspace is a 404 before anything of the request is read.
    let workspace = the_callers(&state, &who, workspace).await?;
    let body: CreateKeyBody = parse_json(&body)?;
    let Some(role) = Role::parse(&body.role) else {
        return Err(AppError::bad_request(
            "invalid_role",
            format!("role must be one of viewer, runner, developer, admin, not '{}'", clip(&body.role)),
        ));
    };
    if body.name.trim().is_empty()
        || body.name.chars().count() > MAX_KEY_NAME
        || body.name.chars().any(char::is_control)
    {
        return Err(AppError::bad_request(
            "invalid_key_name",
            format!("a key's name is 1 to {MAX_KEY_NAME} characters, none of them control characters"),
        ));
    }
    let made = keys::generate();
    let stored = StoredKey {
        key_id: made.key_id.clone(),
        workspace: workspace.clone(),
        name: body.name.clone(),
        role,
        digest: made.digest,
        created_us: crate::trace::now_us(),
        revoked_us: None,
    };
    state.store.save_key(&stored).await?;
    who.record_in(&state, &workspace, "key.create", &made.key_id, json!({"name": body.name, "role": role})).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "key_id": made.key_id,
            "key": made.key,
            "name": body.name,
            "role": role,
            "workspace": workspace,
        })),
    ))
}

pub async fn list_keys(
    State(state): State<Arc<AppState>>,
    who: Who,
    Path(workspace): Path<String>,
) -> Result<Json<Value>, AppError> {
    let workspace = the_callers(&state, &who, workspace).await?;
    Ok(Json(json!({ "keys": state.store.keys(&workspace).await? })))
}

pub async fn revoke_key(
    State(state): State<Arc<AppState>>,
    who: Who,
    Path((workspace, key_id)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let workspace = the_callers(&state, &who, workspace).await?;
    if !state.store.revoke_key(&workspace, &key_id, crate::trace::now_us()).await? {
        return Err(AppError::not_found(format!("no key '{}' in this workspace", clip(&key_id))));
    }
    state.keyring.forget_key(&key_id);
    who.record_in(&state, &workspace, "key.revoke", &key_id, json!({})).await?;
    Ok(Json(json!({ "key_id": key_id, "revoked": true })))
}

/// The workspace a keys route names, when the caller may manage its keys:
/// the operator any that exists, an admin its own. Any other is a 404, as
/// one that does not exist, so a key learns nothing of other workspaces.
async fn the_callers(state: &AppState, who: &Who, workspace: String) -> Result<String, AppError> {
    let reachable = if who.caller.is_operator() {
        state.store.workspace(&workspace).await?.is_some()
    } else {
        who.caller.workspace == workspace
    };
    if reachable { Ok(workspace) } else { Err(no_such_workspace(&workspace)) }
}

fn no_such_workspace(name: &str) -> AppError {
    AppError::not_found(format!("no such workspace: {}", clip(name)))
}

fn clip(text: &str) -> &str {
    crate::sandbox::clip_str(text, 128)
}
