//! `/api/flows`: upload or check a module, list the library, read and delete a flow.

use super::AppState;
use super::error::{AppError, Body, QueryParams};
use crate::flowdef::{FlowInfo, ModuleError, check_answer};
use crate::library::{AddError, add_described};
use crate::sandbox::Quotas;
use crate::store::SaveRefused;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The module a request sends: the raw text, or JSON `{"source": ...}`.
fn source_of(headers: &HeaderMap, body: &[u8]) -> Result<String, AppError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.starts_with("application/json") {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Upload {
            source: String,
        }
        let upload: Upload = super::error::parse_json(body)?;
        return Ok(upload.source);
    }
    String::from_utf8(body.to_vec())
        .map_err(|_| AppError::bad_request("invalid_source", "the module source is not UTF-8"))
}

/// A module that cannot be described, as a 400 naming its line.
pub fn invalid_module(error: ModuleError) -> AppError {
    let mut response = AppError::bad_request("invalid_flow", error.one_line()).with_detail("type", json!(error.kind));
    if let Some(line) = error.line {
        response = response.with_detail("line", json!(line));
    }
    if let Some(column) = error.column {
        response = response.with_detail("column", json!(column));
    }
    response
}

impl From<AddError> for AppError {
    fn from(error: AddError) -> AppError {
        match error {
            AddError::Invalid(module) => invalid_module(module),
            AddError::Refused(refused @ SaveRefused::NotOwner { .. }) => {
                AppError::new(StatusCode::FORBIDDEN, "not_owner", refused.to_string())
            }
            AddError::Refused(refused @ SaveRefused::Full { .. }) => {
                AppError::new(StatusCode::FORBIDDEN, "too_many_saved_flows", refused.to_string())
            }
            AddError::Store(error) => AppError::from(error),
        }
    }
}

/// Describe `source` in the sandbox (under `quotas`, in turn with runs):
/// the flows it declares.
pub async fn describe(state: &AppState, source: &str, quotas: &Quotas) -> Result<Vec<FlowInfo>, AppError> {
    state.scheduler.describe(source, quotas).await.map_err(invalid_module)
}

/// The quotas a module is loaded under when it is only checked or stored:
/// the defaults, within the operator's maxima.
fn describe_quotas(state: &AppState) -> Quotas {
    Quotas::default().capped_by(&state.max_quotas)
}

/// Check a module without storing it (the editor asks as the user types):
/// always 200, with `valid` and either the flows or the error and its line.
pub async fn check(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<impl IntoResponse, AppError> {
    let source = source_of(&headers, &body)?;
    Ok(Json(check_answer(state.scheduler.describe(&source, &describe_quotas(&state)).await)))
}

pub async fn upload(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<impl IntoResponse, AppError> {
    let source = source_of(&headers, &body)?;
    let described = state.scheduler.describe(&source, &describe_quotas(&state)).await;
    let saved = add_described(&state.store, source, described).await?;
    let status = if saved.iter().any(|f| f.created) { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(json!({ "flows": saved }))))
}

pub async fn list(State(state): State<Arc<AppState>>) -> Result<impl IntoResponse, AppError> {
    Ok(Json(json!({ "flows": state.store.flows().await? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionQuery {
    version: Option<u32>,
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<VersionQuery>,
) -> Result<impl IntoResponse, AppError> {
    let versions = state.store.flow_versions(&name).await?;
    if versions.is_empty() {
        return Err(AppError::not_found(format!("no flow named '{name}'")));
    }
    let Some(flow) = state.store.flow(&name, query.version).await? else {
        let known: Vec<String> = versions.iter().map(|v| v.version.to_string()).collect();
        return Err(AppError::not_found(format!(
            "flow '{name}' has no version {} (versions: {})",
            query.version.unwrap_or_default(),
            known.join(", ")
        )));
    };
    let mut body = serde_json::to_value(&flow).unwrap_or(Value::Null);
    body["versions"] = json!(versions);
    Ok(Json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    q: Option<String>,
    limit: Option<u32>,
    version: Option<u32>,
}

/// The flow that shares its name with the search route.
const SEARCH: &str = "search";

/// `GET /api/flows/search?q=...` searches the library. The route is fixed, so
/// it would hide a flow named `search`: without `q` it is that flow (with
/// `version` as `GET /api/flows/{name}` takes it).
pub async fn search_or_get(
    state: State<Arc<AppState>>,
    QueryParams(query): QueryParams<SearchQuery>,
) -> Result<Response, AppError> {
    match query.q {
        Some(q) if query.version.is_none() => Ok(search(state, q, query.limit).await?.into_response()),
        Some(_) => Err(AppError::bad_request("invalid_query", "a search takes q and limit, not version")),
        None if query.limit.is_some() => Err(AppError::bad_request("invalid_query", "a search needs q, its words")),
        None => Ok(get(state, Path(SEARCH.to_string()), QueryParams(VersionQuery { version: query.version }))
            .await?
            .into_response()),
    }
}

/// `DELETE /api/flows/search`: the flow named `search` (see `search_or_get`).
pub async fn delete_search(state: State<Arc<AppState>>) -> Result<impl IntoResponse, AppError> {
    delete(state, Path(SEARCH.to_string())).await
}

async fn search(
    State(state): State<Arc<AppState>>,
    q: String,
    limit: Option<u32>,
) -> Result<impl IntoResponse, AppError> {
    if crate::store::fts_query(&q).is_empty() {
        return Err(AppError::bad_request("invalid_query", "the search query has no words"));
    }
    let limit = limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(AppError::bad_request("invalid_query", "limit must be between 1 and 100"));
    }
    let hits = state.store.search_flows(&q, limit).await?;
    Ok(Json(json!({ "query": q, "hits": hits })))
}

/// Remove a flow: every version, and its webhooks and schedules with it,
/// so none of them starts a flow stored later under the same name.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let removed = state.store.delete_flow(&name).await?;
    if removed.versions_removed == 0 {
        return Err(AppError::not_found(format!("no flow named '{name}'")));
    }
    let mut body = serde_json::to_value(removed).unwrap_or(Value::Null);
    body["name"] = json!(name);
    Ok(Json(body))
}
