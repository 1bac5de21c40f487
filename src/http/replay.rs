//! `POST /api/runs/{id}/replay`: run an ended run again in a fresh sandbox,
//! every host call answered from its journal — no service called, no sleep
//! waited, the original's clock and random values — as a new run with
//! `replay_of`. With `{"source"}`, a changed module is replayed against the
//! run's journal instead, to see where it would go another way.

use super::AppState;
use super::audit::Who;
use super::error::{AppError, Body, QueryParams, parse_json};
use super::flows::invalid_module;
use super::runs::{StartQuery, answer, submit};
use crate::replays::{ReplayRefused, plan};
use crate::scheduler::{Attempt, StartRun};
use crate::store::{Trigger, sha256_hex};
use crate::tenancy::Role;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    /// A module to replay in place of the one the run ran.
    source: Option<String>,
}

pub async fn replay(
    State(state): State<Arc<AppState>>,
    who: Who,
    Path(run_id): Path<String>,
    QueryParams(query): QueryParams<StartQuery>,
    Body(body): Body,
) -> Result<Response, AppError> {
    let body: ReplayBody =
        if body.iter().all(u8::is_ascii_whitespace) { ReplayBody::default() } else { parse_json(&body)? };
    // Another workspace's run is as unknown as one that never was.
    super::runs::known_run(&state, &who, &run_id).await?;
    // A changed source is code of the caller's own: a developer's.
    if body.source.is_some() && !who.caller.may(Role::Developer) {
        return Err(AppError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "replaying with another source needs the role developer or above; the key's role is {}",
                who.caller.role
            ),
        ));
    }
    let describe = async |source: &str, quotas: &_| state.scheduler.describe(source, quotas).await;
    let plan = plan(&state.store, &run_id, body.source, describe).await.map_err(|refused| match refused {
        ReplayRefused::NoSuchRun(_) => AppError::not_found(refused.to_string()),
        ReplayRefused::NotEnded(..) => AppError::new(StatusCode::CONFLICT, "not_ended", refused.to_string()),
        ReplayRefused::Unreadable(..) => AppError::new(StatusCode::CONFLICT, "unreadable_journal", refused.to_string()),
        ReplayRefused::Module(error) => invalid_module(error),
        ReplayRefused::NoSuchFlow(_) => AppError::bad_request("unknown_flow", refused.to_string()),
        ReplayRefused::Store(error) => error.into(),
    })?;
    let start = StartRun {
        input: plan.run.input_object(),
        source_sha256: sha256_hex(&plan.source),
        info: plan.info,
        version: plan.version,
        source: plan.source,
        narrow_services: None,
        quotas: plan.run.quotas,
        module: plan.module,
        client: who.client,
        trigger: Trigger::Replay { replay_of: run_id.clone() },
        attempt: Attempt::default(),
        replay: Some(Arc::new(plan.journal)),
        earlier: Vec::new(),
        workspace: plan.run.workspace.clone(),
    };
    let submitted = submit(&state, start)?;
    let detail = json!({"replay_of": run_id, "flow": submitted.run.flow});
    who.record(&state, "run.replay", &submitted.run.run_id, detail).await?;
    answer(&state, submitted, query.wait).await
}
