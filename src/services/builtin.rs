//! Built-in services, in-process, described by OpenRPC documents like any
//! registered service: `kv` (a key-value store scoped per flow) and
//! `library` (search over the stored flows).

use super::grants::{Capability, Grants};
use crate::flowdef::{FlowInfo, check_answer};
use crate::library::{AddError, add_described_as};
use crate::sandbox::ATTR_MAX_BYTES;
use crate::sandbox::{CallContext, CallFailure};
use crate::store::{RunFilter, SaveRefused, SavedFlowsBound, Saver, Store};
use crate::trace::clip_json;
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
                {"name": "list", "summary": "The stored flows' latest versions, by name (at most 1,000).", "params": [], "result": {"name": "flows", "schema": {"type": "array"}}},
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

/// The largest answer a built-in gives, as for registered services.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// Flows `flows.list` answers with at most (the library may hold many more;
/// `library.search` finds the rest).
const LISTED_FLOWS: usize = 1000;

/// An answer within `MAX_ANSWER_BYTES`, or a clear refusal.
pub fn bounded(answer: Value) -> Result<Value, CallFailure> {
    let size = serde_json::to_string(&answer).map_or(0, |text| text.len());
    if size > MAX_ANSWER_BYTES {
        return Err(CallFailure::Transport(format!(
            "the answer is {size} bytes, more than the {MAX_ANSWER_BYTES} a built-in gives; ask for less"
        )));
    }
    Ok(answer)
}

/// Whether the calling run holds `capability`: every flow from its root
/// down to the caller was granted it, and none of them is a flow another
/// flow stored under a granted name (a grant is the operator's word for
/// the flow the operator stored).
async fn holds(store: &Arc<Store>, grants: &Grants, context: &CallContext<'_>, capability: Capability) -> bool {
    for flow in context.chain {
        if !grants.allows(flow, capability) || store.saved_by_a_flow(flow).await.unwrap_or(true) {
            return false;
        }
    }
    true
}

/// The flow whose runs the caller asks about, when it may read them: its
/// own, or any when its run holds `runs.read_any`.
async fn readable_runs(
    store: &Arc<Store>,
    grants: &Grants,
    context: &CallContext<'_>,
    target: &str,
) -> Result<String, CallFailure> {
    if target == context.flow || holds(store, grants, context, Capability::RunsReadAny).await {
        return Ok(target.to_string());
    }
    Err(CallFailure::NotAllowed(format!(
        "flow '{}' may read its own runs only, not those of '{target}' (the operator can grant {})",
        context.flow,
        Capability::RunsReadAny.name()
    )))
}

/// A flow may save only flows that call no more than it may itself, so it
/// cannot write itself a way past its own `services=[...]`.
fn within_callers_services(context: &CallContext<'_>, flows: &[FlowInfo]) -> Result<(), CallFailure> {
    if context.allowed.iter().any(|s| s == "*") {
        return Ok(());
    }
    for flow in flows {
        if let Some(extra) = flow.services.iter().find(|s| !context.allowed.contains(s)) {
            return Err(CallFailure::NotAllowed(format!(
                "flow '{}' declares service '{extra}', which '{}' may not call itself",
                flow.name, context.flow
            )));
        }
    }
    Ok(())
}

/// The JSON-RPC error code of a `kv` write past the flow's limit.
pub const KV_FULL: i64 = -32010;

/// The JSON-RPC error code of a `flows.save` past a bound on saved flows.
pub const SAVED_FLOWS_FULL: i64 = -32011;

/// Flows one run may store through `flows.save` (every flow of every module
/// it saves, stored or unchanged, subflows included), so one run cannot
/// fill the library in a loop.
pub const FLOWS_SAVED_PER_RUN: u64 = 20;

/// Flow names one flow may have stored through `flows.save` in the library.
pub const SAVED_FLOWS_PER_FLOW: u64 = 100;

/// Flow names flow code may have stored in the library altogether
/// (`serve --max-saved-flows`): flows that save flows that save flows are
/// bounded too.
pub const SAVED_FLOWS: u64 = 1000;

/// `SAVED_FLOWS_PER_FLOW` each, within `library` altogether.
pub fn saved_flows_bound(library: u64) -> SavedFlowsBound {
    SavedFlowsBound { per_flow: SAVED_FLOWS_PER_FLOW.min(library), library }
}

/// What the built-ins let flows keep in the store.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Bytes of keys and values each flow may hold in `kv`.
    pub kv_bytes_per_flow: u64,
    /// Flows flow code may store through `flows.save`.
    pub saved_flows: SavedFlowsBound,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { kv_bytes_per_flow: super::KV_BYTES_PER_FLOW, saved_flows: saved_flows_bound(SAVED_FLOWS) }
    }
}

/// Call a built-in; parameters were already checked against its document.
pub async fn call(
    store: &Arc<Store>,
    grants: &Grants,
    limits: &Limits,
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
            let value_len = value.to_string().len();
            if value_len > 1024 * 1024 {
                return Err(CallFailure::InvalidParams("value: at most 1 MiB of JSON".into()));
            }
            context.run.keep(value_len + text("key").len()).map_err(CallFailure::QuotaExceeded)?;
            let full = store.kv_set(flow, &text("key"), &value, limits.kv_bytes_per_flow).await.map_err(failed)?;
            full.map_err(|full| CallFailure::Rpc {
                code: KV_FULL,
                message: format!(
                    "kv: flow '{flow}' holds {} bytes; this write adds {} and the limit is {} (--max-kv-bytes): delete keys first",
                    full.held, full.wanted, full.limit
                ),
                data: json!({"held": full.held, "wanted": full.wanted, "limit": full.limit}),
            })?;
            Ok(Value::Bool(true))
        }
        ("kv", "delete") => Ok(Value::Bool(store.kv_delete(flow, &text("key")).await.map_err(failed)?)),
        ("kv", "list") => Ok(json!(store.kv_keys(flow, &text("prefix"), limit(100)).await.map_err(failed)?)),
        ("library", "search") => Ok(json!(store.search_flows(&text("query"), limit(10)).await.map_err(failed)?)),
        ("flows", "describe") => {
            let described = context.run.describe(&text("source")).await.map_err(CallFailure::QuotaExceeded)?;
            Ok(check_answer(described))
        }
        ("flows", "get") => {
            let version = params.get("version").and_then(Value::as_u64).map(|v| v as u32);
            Ok(json!(store.flow(&text("name"), version).await.map_err(failed)?))
        }
        ("flows", "versions") => Ok(json!(store.flow_versions(&text("name")).await.map_err(failed)?)),
        ("flows", "list") => {
            let mut flows = store.flows().await.map_err(failed)?;
            flows.truncate(LISTED_FLOWS);
            Ok(json!(flows))
        }
        ("flows", "save") => {
            let source = text("source");
            let described = context.run.describe(&source).await.map_err(CallFailure::QuotaExceeded)?;
            // A new version keeps the source and what it declares.
            let declared = described.as_ref().map_or(0, |flows| serde_json::to_string(flows).map_or(0, |t| t.len()));
            context.run.keep(source.len() + declared).map_err(CallFailure::QuotaExceeded)?;
            // Counted before the save, so saves side by side cannot pass the
            // bound together; taken back if nothing is stored.
            let mut counted = 0;
            let saver = if holds(store, grants, &context, Capability::FlowsSaveAny).await {
                Saver::Operator
            } else {
                if let Ok(flows) = &described {
                    within_callers_services(&context, flows)?;
                    let count = flows.len() as u64;
                    context.run.count_flows_saved(count, FLOWS_SAVED_PER_RUN).map_err(|saved| CallFailure::Rpc {
                        code: SAVED_FLOWS_FULL,
                        message: format!(
                            "flows.save: this run has saved {saved} flows, this module holds {count}, \
                             and one run may save at most {FLOWS_SAVED_PER_RUN}"
                        ),
                        data: json!({"saved": saved, "adding": count, "limit": FLOWS_SAVED_PER_RUN, "per": "run"}),
                    })?;
                    counted = count;
                }
                Saver::Flow(flow.to_string(), limits.saved_flows)
            };
            let saved = add_described_as(store, source, described, saver).await;
            if saved.is_err() {
                context.run.flows_not_saved(counted);
            }
            let saved = saved.map_err(|error| match error {
                AddError::Invalid(module) => CallFailure::InvalidParams(format!("source: {module}")),
                AddError::Refused(refused @ SaveRefused::NotOwner { .. }) => CallFailure::NotAllowed(format!(
                    "{refused} (a flow replaces only flows it stored itself, unless the operator grants it {})",
                    Capability::FlowsSaveAny.name()
                )),
                AddError::Refused(SaveRefused::Full { saver: _, held, adding, limit, whole_library }) => {
                    let message = error.to_string();
                    let per = if whole_library { "library" } else { "flow" };
                    CallFailure::Rpc {
                        code: SAVED_FLOWS_FULL,
                        message: format!("flows.save: {message}"),
                        data: json!({"saved": held, "adding": adding, "limit": limit, "per": per}),
                    }
                }
                AddError::Store(_) => CallFailure::Transport(error.to_string()),
            })?;
            Ok(json!(saved))
        }
        ("runs", "recent") => {
            let target = readable_runs(store, grants, &context, &text("flow")).await?;
            // The runs of the calling run's workspace only.
            let workspace = Some(context.workspace.to_string());
            let filter = RunFilter { flow: Some(target), workspace, limit: limit(20), ..RunFilter::default() };
            let mut runs = store.runs(filter).await.map_err(failed)?;
            // Each run's input and output may be a MiB; a flow reading recent
            // runs gets their shape, cut like span attributes.
            for run in &mut runs {
                run.input = clip_json(std::mem::take(&mut run.input), ATTR_MAX_BYTES);
                run.output = run.output.take().map(|output| clip_json(output, ATTR_MAX_BYTES));
            }
            let shown: Vec<Value> = runs
                .into_iter()
                .map(|run| {
                    let trigger = run.trigger.shown_to_flows();
                    let mut shown = json!(run);
                    shown["trigger"] = trigger;
                    shown
                })
                .collect();
            Ok(json!(shown))
        }
        ("runs", "subflows") => {
            let target = readable_runs(store, grants, &context, &text("flow")).await?;
            Ok(json!(store.subflow_runs(&target, limit(20)).await.map_err(failed)?))
        }
        ("runs", "spans") => {
            let run_id = text("run_id");
            // A run the flow may not read is answered as if it did not exist.
            let run = store.run(&run_id).await.map_err(failed)?;
            let readable = match &run {
                Some(run) => readable_runs(store, grants, &context, &run.flow).await.is_ok(),
                None => false,
            };
            if readable {
                return Ok(json!(store.spans(&run_id).await.map_err(failed)?));
            }
            // The same words whether the run exists or not.
            Err(CallFailure::NotAllowed(format!(
                "flow '{flow}' has no run '{run_id}' it may read (reading other flows' runs needs {})",
                Capability::RunsReadAny.name()
            )))
        }
        _ => Err(CallFailure::UnknownMethod { service: service.into(), method: method.into(), known: Vec::new() }),
    }
}
