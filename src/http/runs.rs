//! `/api/runs`: start a run (of a stored flow, or of source from the editor),
//! list and read runs, their spans and logs, cancel one, export it as OTLP.

use super::AppState;
use super::audit::Who;
use super::error::{AppError, JsonBody, QueryParams};
use crate::flowdef::FlowInfo;
use crate::library::{PickError, pick_flow};
use crate::sandbox::{ModuleFlows, Quotas};
use crate::scheduler::{Attempt, StartRun, SubmitError, Submitted};
use crate::store::{RunFilter, RunRecord, Trigger, sha256_hex};
use crate::tenancy::Role;
use crate::trace::Status;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    /// A stored flow, or (with `source`) which flow of the source to run.
    flow: Option<String>,
    version: Option<u32>,
    /// A module's source, run without storing it as a flow (the editor).
    source: Option<String>,
    #[serde(default)]
    input: Value,
    quotas: Option<Value>,
    /// Narrow the services the run's flows may call (never widens).
    services: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartQuery {
    #[serde(default)]
    pub wait: bool,
}

/// The run's quotas: the defaults, overridden by what the request asks,
/// each capped by the server's maxima.
pub fn effective_quotas(requested: Option<Value>, maxima: &Quotas) -> Result<Quotas, AppError> {
    let asked: Quotas = match requested {
        None | Some(Value::Null) => Quotas::default(),
        Some(value @ Value::Object(_)) => serde_json::from_value(value)
            .map_err(|e| AppError::bad_request("invalid_quotas", format!("quotas: {e}")))?,
        Some(_) => return Err(AppError::bad_request("invalid_quotas", "quotas must be a JSON object")),
    };
    asked.check().map_err(|problem| AppError::bad_request("invalid_quotas", format!("quotas: {problem}")))?;
    Ok(asked.capped_by(maxima))
}

pub async fn start(
    State(state): State<Arc<AppState>>,
    who: Who,
    QueryParams(query): QueryParams<StartQuery>,
    JsonBody(body): JsonBody<StartBody>,
) -> Result<Response, AppError> {
    // Source from the editor is code of the caller's own, run with the
    // workspace's services and secrets: a developer's, not a runner's.
    if body.source.is_some() && !who.caller.may(Role::Developer) {
        return Err(AppError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("running source needs the role developer or above; the key's role is {}", who.caller.role),
        ));
    }
    let quotas = effective_quotas(body.quotas, &state.max_quotas)?;
    let (source, version, info, module) = match (body.source, &body.flow) {
        (Some(source), _) => {
            if body.version.is_some() {
                return Err(AppError::bad_request("invalid_request", "version applies to stored flows, not to source"));
            }
            let flows = super::flows::describe(&state, &source, &quotas).await?;
            let info = pick_flow(&flows, body.flow.as_deref()).cloned().map_err(|e| match e {
                PickError::Unknown { .. } => AppError::bad_request("unknown_flow", format!("the source {e}")),
                PickError::Ambiguous { .. } => {
                    AppError::bad_request("ambiguous_flow", format!("the source {e}; name one in \"flow\""))
                }
            })?;
            let source: Arc<str> = Arc::from(source);
            let module = ModuleFlows { source: source.clone(), flows };
            (source, None, info, Some(module))
        }
        (None, Some(name)) => {
            let Some(stored) = state.store.flow(name, body.version).await? else {
                return Err(match body.version {
                    Some(version) => AppError::not_found(format!("flow '{name}' has no version {version}")),
                    None => AppError::not_found(format!("no flow named '{name}'")),
                });
            };
            (Arc::from(stored.source), Some(stored.version), stored.info, None)
        }
        (None, None) => {
            return Err(AppError::bad_request("invalid_request", "name a stored flow in \"flow\", or send \"source\""));
        }
    };
    let input = checked_input(&info, &body.input, &quotas)?;
    let start = StartRun {
        info,
        version,
        source_sha256: sha256_hex(&source),
        source,
        input,
        narrow_services: body.services,
        quotas,
        module,
        client: who.client,
        trigger: Trigger::Api,
        attempt: Attempt::default(),
        replay: None,
        earlier: Vec::new(),
        workspace: who.workspace().to_string(),
    };
    let flow = start.info.name.clone();
    let submitted = submit(&state, start)?;
    let detail = json!({"flow": flow, "version": submitted.run.version});
    who.record(&state, "run.start", &submitted.run.run_id, detail).await?;
    answer(&state, submitted, query.wait).await
}

/// The answer to a request that started a run: 202 with its id, or with
/// `?wait=true` 200 with its final record once the store holds it.
pub async fn answer(state: &AppState, submitted: Submitted, wait: bool) -> Result<Response, AppError> {
    if wait {
        let finished =
            submitted.finished.await.map_err(|_| anyhow::anyhow!("the run's task ended without a result"))?;
        // A run the database does not hold is not reported as if it were.
        let finished = finished.map_err(|error| anyhow::anyhow!("the finished run was not stored: {error}"))?;
        return Ok((StatusCode::OK, Json(finished)).into_response());
    }
    accepted(state, &submitted).await
}

/// `input` checked against the flow's declared inputs, within the run's
/// `input_bytes` quota.
pub fn checked_input(
    info: &FlowInfo,
    input: &Value,
    quotas: &Quotas,
) -> Result<serde_json::Map<String, Value>, AppError> {
    let input_bytes = input.to_string().len() as u64;
    if input_bytes > quotas.input_bytes {
        return Err(AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "input_too_large",
            format!("the input is {input_bytes} bytes; the input_bytes quota is {}", quotas.input_bytes),
        ));
    }
    info.check_input(input).map_err(|e| AppError::bad_request("invalid_input", e.to_string()))
}

/// Hand a run to the scheduler; a full queue is a 429 that says when to try
/// again. While the database is unreachable no run is accepted (503): one
/// accepted could not be stored, nor answered for, until it is back.
pub fn submit(state: &AppState, start: StartRun) -> Result<Submitted, AppError> {
    if !state.store.health().is_reachable() {
        return Err(AppError::database_unavailable());
    }
    state.scheduler.submit(start).map_err(|e| match e {
        SubmitError::QueueFull { retry_after_secs } => {
            AppError::new(StatusCode::TOO_MANY_REQUESTS, "queue_full", "too many runs are waiting; try again shortly")
                .with_header(header::RETRY_AFTER, &retry_after_secs.to_string())
        }
        SubmitError::ClientQueueFull { waiting, retry_after_secs } => AppError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "client_queue_full",
            format!(
                "this client has {waiting} runs waiting, as many as one client may (--queue-per-client); try again once some have started"
            ),
        )
        .with_header(header::RETRY_AFTER, &retry_after_secs.to_string()),
        SubmitError::ShuttingDown => {
            AppError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the server is shutting down")
        }
    })
}

/// The 202 for a run accepted, once the store holds it.
pub async fn accepted(state: &AppState, submitted: &Submitted) -> Result<Response, AppError> {
    // Read-your-writes: once a client has the run id, GET /api/runs/{id} finds it.
    state.store.flush().await?;
    let run_id = submitted.run.run_id.clone();
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/api/runs/{run_id}"))],
        Json(json!({"run_id": run_id, "status": submitted.run.status, "events": format!("/api/runs/{run_id}/events")})),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    flow: Option<String>,
    /// A part of the flow's name, in any case.
    flow_contains: Option<String>,
    status: Option<String>,
    limit: Option<u32>,
    /// `next` from the previous page.
    before: Option<i64>,
    /// The attempts of one run (its id, or any attempt's `first_run_id`).
    first_run_id: Option<String>,
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    who: Who,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<impl IntoResponse, AppError> {
    let status = match query.status.as_deref() {
        None => None,
        Some(name) => Some(Status::parse(name).ok_or_else(|| {
            AppError::bad_request(
                "invalid_query",
                format!("unknown status '{name}' (queued, running, ok, failed, timed_out, cancelled, quota_exceeded, interrupted)"),
            )
        })?),
    };
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(AppError::bad_request("invalid_query", "limit must be between 1 and 500"));
    }
    let filter = RunFilter {
        flow: query.flow,
        flow_contains: query.flow_contains,
        status,
        before_us: query.before,
        first_run_id: query.first_run_id,
        workspace: Some(who.workspace().to_string()),
        limit,
    };
    let runs = state.store.runs(filter).await?;
    let next = if runs.len() == limit as usize { runs.last().map(|r| r.created_us) } else { None };
    Ok(Json(json!({ "runs": runs, "next": next })))
}

/// Whether a run is one of the caller's workspace, asked of the runs this
/// node has in hand first (so a live run's watcher gets in while the
/// database is away), then of the store; a 404 as `known_run`'s otherwise.
pub async fn callers_run(state: &AppState, who: &Who, run_id: &str) -> Result<(), AppError> {
    match state.scheduler.workspace_in_hand(run_id) {
        Some(workspace) if workspace == who.workspace() => Ok(()),
        _ => known_run(state, who, run_id).await.map(drop),
    }
}

/// The run, when it is one of the caller's workspace: another
/// workspace's run is a 404 with the same body as one that never was.
pub async fn known_run(state: &AppState, who: &Who, run_id: &str) -> Result<RunRecord, AppError> {
    let unknown = || AppError::not_found(format!("no run with id '{}'", crate::sandbox::clip_str(run_id, 128)));
    let run = state.store.run(run_id).await?.ok_or_else(unknown)?;
    if run.workspace != who.workspace() {
        return Err(unknown());
    }
    Ok(run)
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    who: Who,
    Path(run_id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let run = known_run(&state, &who, &run_id).await?;
    let retry_due = match run.status.is_final() {
        true => state.store.retry_due(&run_id).await?,
        false => None,
    };
    let mut answer = serde_json::to_value(&run).map_err(anyhow::Error::from)?;
    // The next attempt waiting for its time, when the flow retries this run.
    if let (Some(due_us), Value::Object(fields)) = (retry_due, &mut answer) {
        fields.insert("retry_due_us".into(), due_us.into());
    }
    Ok(Json(answer))
}

/// The module source the run ran, stored or sent from the editor.
pub async fn source(
    State(state): State<Arc<AppState>>,
    who: Who,
    Path(run_id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let run = known_run(&state, &who, &run_id).await?;
    let source = state.store.source(&run.source_sha256).await?;
    Ok(Json(json!({ "source": source, "source_sha256": run.source_sha256 })))
}

pub async fn spans(
    State(state): State<Arc<AppState>>,
    who: Who,
    Path(run_id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    known_run(&state, &who, &run_id).await?;
    Ok(Json(json!({ "spans": state.store.spans(&run_id).await? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    #[serde(default)]
    after_seq: u64,
}

pub async fn logs(
    State(state): State<Arc<AppState>>,
    who: Who,
    Path(run_id): Path<String>,
    QueryParams(query): QueryParams<LogsQuery>,
) -> Result<impl IntoResponse, AppError> {
    known_run(&state, &who, &run_id).await?;
    Ok(Json(json!({ "logs": state.store.logs(&run_id, query.after_seq).await? })))
}

pub async fn cancel(
    State(state): State<Arc<AppState>>,
    who: Who,
    Path(run_id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    // A run in hand here is cancelled without asking the store, so a
    // cancel works while the database is away.
    if state.scheduler.cancel_in(who.workspace(), &run_id) {
        who.record(&state, "run.cancel", &run_id, json!({})).await?;
        return Ok((StatusCode::ACCEPTED, Json(json!({"run_id": run_id, "status": "cancelling"}))));
    }
    let run = known_run(&state, &who, &run_id).await?;
    let answer = if !run.status.is_final() && state.scheduler.cancel_elsewhere(&run_id).await? {
        // Waiting in the nodes' shared queue, or on another node.
        (StatusCode::ACCEPTED, Json(json!({"run_id": run_id, "status": "cancelling"})))
    } else if run.status.is_final() && state.store.drop_retry(&run_id).await? {
        // An ended run whose next attempt waits: that attempt is called off.
        (StatusCode::OK, Json(json!({"run_id": run_id, "status": run.status, "retry": "cancelled"})))
    } else {
        return Err(AppError::new(
            StatusCode::CONFLICT,
            "already_finished",
            format!("run '{run_id}' has already ended {}", run.status),
        ));
    };
    who.record(&state, "run.cancel", &run_id, json!({"flow": run.flow})).await?;
    Ok(answer)
}

/// The run's journal: every answer the host gave each of its instances.
pub async fn journal(
    State(state): State<Arc<AppState>>,
    who: Who,
    Path(run_id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let run = known_run(&state, &who, &run_id).await?;
    let entries = state.store.journal(&run_id).await?;
    let bytes = run.usage.as_ref().map(|usage| usage.journal_bytes);
    Ok(Json(json!({ "run_id": run_id, "journal_bytes": bytes, "entries": entries })))
}

pub async fn otlp(
    State(state): State<Arc<AppState>>,
    who: Who,
    Path(run_id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let run = known_run(&state, &who, &run_id).await?;
    let spans = state.store.spans(&run_id).await?;
    Ok(Json(super::otlp::export(&run, &spans)))
}
