//! `POST /api/runs/{id}/replay`: run an ended run again in a fresh sandbox,
//! every host call answered from its journal — no service called, no sleep
//! waited, the original's clock and random values — as a new run with
//! `replay_of`. With `{"source"}`, a changed module is replayed against the
//! run's journal instead, to see where it would go another way.

use super::AppState;
use super::error::{AppError, Body, QueryParams, parse_json};
use super::runs::{StartQuery, answer, submit};
use crate::library::pick_flow;
use crate::sandbox::{ModuleFlows, Replay};
use crate::scheduler::{Attempt, Client, StartRun};
use crate::store::{Trigger, sha256_hex};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    /// A module to replay in place of the one the run ran.
    source: Option<String>,
}

pub async fn replay(
    State(state): State<Arc<AppState>>,
    client: Option<Extension<Client>>,
    Path(run_id): Path<String>,
    QueryParams(query): QueryParams<StartQuery>,
    Body(body): Body,
) -> Result<Response, AppError> {
    let body: ReplayBody =
        if body.iter().all(u8::is_ascii_whitespace) { ReplayBody::default() } else { parse_json(&body)? };
    let run =
        state.store.run(&run_id).await?.ok_or_else(|| AppError::not_found(format!("no run with id '{run_id}'")))?;
    if !run.status.is_final() {
        return Err(AppError::new(
            StatusCode::CONFLICT,
            "not_ended",
            format!("run '{run_id}' is {}; a run is replayed once it has ended", run.status),
        ));
    }
    let rows = state.store.journal(&run_id).await?;
    let rows = rows.into_iter().map(|row| (row.stream, row.index, row.entry)).collect();
    let journal = Replay::new(run_id.clone(), rows).map_err(|problem| {
        AppError::new(
            StatusCode::CONFLICT,
            "unreadable_journal",
            format!("run '{run_id}' cannot be replayed: {problem}"),
        )
    })?;
    let changed = body.source.is_some();
    let source: Arc<str> = match body.source {
        Some(source) => Arc::from(source),
        None => Arc::from(state.store.source(&run.source_sha256).await?.ok_or_else(|| {
            AppError::new(StatusCode::CONFLICT, "unreadable_journal", "the run's source is no longer stored")
        })?),
    };
    let flows = super::flows::describe(&state, &source, &run.quotas).await?;
    let info = pick_flow(&flows, Some(&run.flow))
        .cloned()
        .map_err(|e| AppError::bad_request("unknown_flow", format!("the source {e}")))?;
    // A stored version's subflows are found in the library, as they were;
    // source sent from the editor (or a changed module) finds its own first.
    let stored_version = run.version.filter(|_| !changed);
    let module = stored_version.is_none().then(|| ModuleFlows { source: source.clone(), flows });
    let input = run.input_object();
    let start = StartRun {
        info,
        version: stored_version,
        source_sha256: sha256_hex(&source),
        source,
        input,
        narrow_services: None,
        quotas: run.quotas.clone(),
        module,
        client: client.map(|Extension(client)| client),
        claimed: false,
        trigger: Trigger::Replay { replay_of: run_id },
        attempt: Attempt::default(),
        replay: Some(Arc::new(journal)),
    };
    let submitted = submit(&state, start)?;
    answer(&state, submitted, query.wait).await
}
