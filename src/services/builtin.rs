//! Built-in services, in-process, described by OpenRPC documents like any
//! registered service: `kv` (a key-value store scoped per flow) and
//! `library` (search over the stored flows).

use super::grants::{Capability, Grants};
use crate::flowdef::check_answer;
use crate::library::{AddError, add_described_as};
use crate::sandbox::{CallContext, CallFailure};
use crate::store::{RunFilter, Saver, Store};
use serde_json::{Value, json};
use std::sync::Arc;

pub const NAMES: [&str; 5] = ["kv", "library", "flows", "runs", "registry"];

/// The OpenRPC document of a built-in service.
pub fn document(name: &str) -> Option<Value> {
    let key = json!({"name": "key", "required": true, "description": "The key, unique within the calling flow.", "schema": {"type": "string", "minLength": 1, "maxLength": 512}});
    match name {
        "kv" => Some(json!({
            "openrpc": "1.2.6",
            "info": {"title": "kv", "version": "1.0.0", "description": "A key-value store, scoped per flow, kept in the server's database."},
            "methods": [
                {"name": "get", "summary": "The value stored under key, or null.", "params": [key], "result": {"name": "value", "schema": {}}},
                {"name": "set", "summary": "Store a JSON value under key.", "params": [key, {"name": "value", "required": true, "schema": {}}], "result": {"name": "ok", "schema": {"type": "boolean"}}},
                {"name": "delete", "summary": "Remove key; true when it was there.", "params": [key], "result": {"name": "deleted", "schema": {"type": "boolean"}}},
                {"name": "list", "summary": "Keys starting with prefix, in order.", "params": [
                    {"name": "prefix", "schema": {"type": "string"}},
                    {"name": "limit", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}
                ], "result": {"name": "keys", "schema": {"type": "array", "items": {"type": "string"}}}}
            ]
        })),
        "library" => Some(json!({
            "openrpc": "1.2.6",
            "info": {"title": "library", "version": "1.0.0", "description": "Search the flows stored in the library."},
            "methods": [
                {"name": "search", "summary": "Flows matching plain words, best first, with scores and snippets.", "params": [
                    {"name": "query", "required": true, "schema": {"type": "string", "maxLength": 1000}},
                    {"name": "limit", "schema": {"type": "integer", "minimum": 1, "maximum": 100}}
                ], "result": {"name": "hits", "schema": {"type": "array"}}}
            ]
        })),
        "flows" => Some(json!({
            "openrpc": "1.2.6",
            "info": {"title": "flows", "version": "1.0.0", "description": "Read, check and store flows of the library."},
            "methods": [
                {"name": "describe", "summary": "Check a module in the sandbox: the flows it declares, or why it is not valid.", "params": [
                    {"name": "source", "required": true, "schema": {"type": "string", "maxLength": 1048576}}
                ], "result": {"name": "described", "schema": {"type": "object"}}},
                {"name": "get", "summary": "A stored flow: source, declared inputs, description, version.", "params": [
                    {"name": "name", "required": true, "schema": {"type": "string"}},
                    {"name": "version", "schema": {"type": "integer", "minimum": 1}}
                ], "result": {"name": "flow", "schema": {}}},
                {"name": "versions", "summary": "The stored versions of a flow.", "params": [
                    {"name": "name", "required": true, "schema": {"type": "string"}}
                ], "result": {"name": "versions", "schema": {"type": "array"}}},
                {"name": "list", "summary": "Every stored flow's latest version.", "params": [], "result": {"name": "flows", "schema": {"type": "array"}}},
                {"name": "save", "summary": "Store a module's flows in the library (a new version when changed).", "params": [
                    {"name": "source", "required": true, "schema": {"type": "string", "maxLength": 1048576}}
                ], "result": {"name": "saved", "schema": {"type": "array"}}}
            ]
        })),
        "runs" => Some(json!({
            "openrpc": "1.2.6",
            "info": {"title": "runs", "version": "1.0.0", "description": "Read recent runs and their spans."},
            "methods": [
                {"name": "recent", "summary": "Recent runs of a flow, newest first.", "params": [
                    {"name": "flow", "required": true, "schema": {"type": "string"}},
                    {"name": "limit", "schema": {"type": "integer", "minimum": 1, "maximum": 200}}
                ], "result": {"name": "runs", "schema": {"type": "array"}}},
                {"name": "subflows", "summary": "Recent times a flow ran as a subflow of another run, newest first: run_id and the subflow's span_id.", "params": [
                    {"name": "flow", "required": true, "schema": {"type": "string"}},
                    {"name": "limit", "schema": {"type": "integer", "minimum": 1, "maximum": 200}}
                ], "result": {"name": "subflows", "schema": {"type": "array"}}},
                {"name": "spans", "summary": "The spans of a run.", "params": [
                    {"name": "run_id", "required": true, "schema": {"type": "string"}}
                ], "result": {"name": "spans", "schema": {"type": "array"}}}
            ]
        })),
        "registry" => Some(json!({
            "openrpc": "1.2.6",
            "info": {"title": "registry", "version": "1.0.0", "description": "The services flows can call, with their methods."},
            "methods": [
                {"name": "list", "summary": "Every service, built-ins first, with its methods and their parameters.", "params": [], "result": {"name": "services", "schema": {"type": "array"}}}
            ]
        })),
        _ => None,
    }
}

/// The flow whose runs `caller` asks about, when it may read them: its own,
/// or any with `runs.read_any`.
fn readable_runs(grants: &Grants, caller: &str, target: &str) -> Result<String, CallFailure> {
    if target == caller || grants.allows(caller, Capability::RunsReadAny) {
        return Ok(target.to_string());
    }
    Err(CallFailure::NotAllowed(format!(
        "flow '{caller}' may read its own runs only, not those of '{target}' (the operator can grant {})",
        Capability::RunsReadAny.name()
    )))
}

/// Call a built-in; parameters were already checked against its document.
pub async fn call(
    store: &Arc<Store>,
    grants: &Grants,
    context: CallContext<'_>,
    service: &str,
    method: &str,
    params: &Value,
) -> Result<Value, CallFailure> {
    let text = |name: &str| params.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
    let limit = |default: u64| params.get("limit").and_then(Value::as_u64).unwrap_or(default) as u32;
    let failed = |e: anyhow::Error| CallFailure::Transport(format!("the store failed: {e:#}"));
    let flow = context.flow;
    match (service, method) {
        ("kv", "get") => Ok(store.kv_get(flow, &text("key")).await.map_err(failed)?.unwrap_or(Value::Null)),
        ("kv", "set") => {
            let value = params.get("value").cloned().unwrap_or(Value::Null);
            if value.to_string().len() > 1024 * 1024 {
                return Err(CallFailure::InvalidParams("value: at most 1 MiB of JSON".into()));
            }
            store.kv_set(flow, &text("key"), &value).await.map_err(failed)?;
            Ok(Value::Bool(true))
        }
        ("kv", "delete") => Ok(Value::Bool(store.kv_delete(flow, &text("key")).await.map_err(failed)?)),
        ("kv", "list") => Ok(json!(store.kv_keys(flow, &text("prefix"), limit(100)).await.map_err(failed)?)),
        ("library", "search") => Ok(json!(store.search_flows(&text("query"), limit(10)).await.map_err(failed)?)),
        ("flows", "describe") => {
            let described = context.describer.describe(&text("source")).await.map_err(CallFailure::QuotaExceeded)?;
            Ok(check_answer(described))
        }
        ("flows", "get") => {
            let version = params.get("version").and_then(Value::as_u64).map(|v| v as u32);
            Ok(json!(store.flow(&text("name"), version).await.map_err(failed)?))
        }
        ("flows", "versions") => Ok(json!(store.flow_versions(&text("name")).await.map_err(failed)?)),
        ("flows", "list") => Ok(json!(store.flows().await.map_err(failed)?)),
        ("flows", "save") => {
            let source = text("source");
            let described = context.describer.describe(&source).await.map_err(CallFailure::QuotaExceeded)?;
            let saver = if grants.allows(flow, Capability::FlowsSaveAny) {
                Saver::Operator
            } else {
                Saver::Flow(flow.to_string())
            };
            let saved = add_described_as(store, source, described, saver).await.map_err(|error| match error {
                AddError::Invalid(module) => CallFailure::InvalidParams(format!("source: {module}")),
                AddError::NotOwner(refused) => CallFailure::NotAllowed(format!(
                    "{refused} (a flow replaces only flows it stored itself, unless the operator grants it {})",
                    Capability::FlowsSaveAny.name()
                )),
                AddError::Store(_) => CallFailure::Transport(error.to_string()),
            })?;
            Ok(json!(saved))
        }
        ("runs", "recent") => {
            let target = readable_runs(grants, flow, &text("flow"))?;
            let filter = RunFilter { flow: Some(target), status: None, before_us: None, limit: limit(20) };
            Ok(json!(store.runs(filter).await.map_err(failed)?))
        }
        ("runs", "subflows") => {
            let target = readable_runs(grants, flow, &text("flow"))?;
            Ok(json!(store.subflow_runs(&target, limit(20)).await.map_err(failed)?))
        }
        ("runs", "spans") => {
            let run_id = text("run_id");
            // A run the flow may not read is answered as if it did not exist.
            let run = store.run(&run_id).await.map_err(failed)?;
            match run {
                Some(run) if readable_runs(grants, flow, &run.flow).is_ok() => {
                    Ok(json!(store.spans(&run_id).await.map_err(failed)?))
                }
                Some(_) => Err(CallFailure::NotAllowed(format!(
                    "run '{run_id}' is not a run of flow '{flow}' (reading other flows' runs needs {})",
                    Capability::RunsReadAny.name()
                ))),
                None => Ok(json!([])),
            }
        }
        _ => Err(CallFailure::UnknownMethod { service: service.into(), method: method.into(), known: Vec::new() }),
    }
}
