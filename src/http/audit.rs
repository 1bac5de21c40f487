//! The audit log: `Who` (the caller and the client address, as every
//! handler that changes something takes them), `Who::record` appending what
//! was done, and `GET /api/audit` reading it back: a workspace's admin its
//! own entries, the operator everyone's.

use super::AppState;
use super::error::{AppError, QueryParams};
use crate::scheduler::Client;
use crate::store::{AuditEntry, AuditFilter};
use crate::tenancy::{Actor, Caller};
use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Who made a request: the caller the guard admitted, and from where.
#[derive(Clone, Debug)]
pub struct Who {
    pub caller: Caller,
    pub client: Option<Client>,
}

impl<S: Send + Sync> FromRequestParts<S> for Who {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Who, AppError> {
        let caller =
            parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
                AppError::from(anyhow::anyhow!("a route that needs a caller was admitted without one"))
            })?;
        Ok(Who { caller, client: parts.extensions.get::<Client>().copied() })
    }
}

impl Who {
    /// The workspace the request acts in.
    pub fn workspace(&self) -> &str {
        &self.caller.workspace
    }

    /// Append `action` on `target` to the audit log, in the caller's
    /// workspace.
    pub async fn record(&self, state: &AppState, action: &str, target: &str, detail: Value) -> Result<(), AppError> {
        self.record_in(state, &self.caller.workspace, action, target, detail).await
    }

    /// The same, in `workspace` (the operator acting on a workspace it
    /// names in the path).
    pub async fn record_in(
        &self,
        state: &AppState,
        workspace: &str,
        action: &str,
        target: &str,
        detail: Value,
    ) -> Result<(), AppError> {
        let (actor, key_id, key_name) = match &self.caller.actor {
            Actor::Operator => ("operator", None, None),
            Actor::Key { key_id, name } => ("key", Some(key_id.clone()), Some(name.clone())),
        };
        let entry = AuditEntry {
            seq: 0,
            ts_us: crate::trace::now_us(),
            workspace: workspace.to_string(),
            actor: actor.to_string(),
            key_id,
            key_name,
            action: action.to_string(),
            target: target.to_string(),
            detail,
            client: self.client.map(|client| client.to_string()),
        };
        let Err(error) = state.store.append_audit(&entry).await else { return Ok(()) };
        if !crate::store::is_unavailable(&error) {
            tracing::error!(error = format!("{error:#}"), action, target, "the audit log could not be written");
            return Err(AppError::from(error));
        }
        // What was done while the database is away (a cancel of a run in
        // hand) is appended once it is back.
        let store = state.store.clone();
        tokio::spawn(async move {
            let mut back_off = crate::store::BackOff::default();
            loop {
                back_off.wait().await;
                match store.append_audit(&entry).await {
                    Ok(()) => return,
                    Err(error) if crate::store::is_unavailable(&error) => {}
                    Err(error) => {
                        tracing::error!(error = format!("{error:#}"), "the audit log could not be written");
                        return;
                    }
                }
            }
        });
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Entries before this seq (the last page's smallest), newest first.
    before: Option<i64>,
    limit: Option<u32>,
    /// For the operator: one workspace's entries (default: everyone's).
    workspace: Option<String>,
}

const MAX_AUDIT_PAGE: u32 = 500;

pub async fn list(
    State(state): State<Arc<AppState>>,
    who: Who,
    QueryParams(query): QueryParams<AuditQuery>,
) -> Result<Json<Value>, AppError> {
    let workspace = if who.caller.is_operator() { query.workspace } else { Some(who.caller.workspace.clone()) };
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_AUDIT_PAGE);
    let entries = state.store.audit(AuditFilter { workspace, before: query.before, limit }).await?;
    Ok(Json(json!({ "entries": entries })))
}
