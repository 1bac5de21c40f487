//! Service calls from a flow: each inside an `rpc` span the host opens and
//! closes, counted against the run's quotas, refused when the flow may not
//! call the service; and what built-ins do on the calling run's account.

use super::bindings::hero_logic::flow::host::{CallError, RpcFailure};
use super::bounds::{bound_error, clip_name, clip_value, parse_object};
use super::env::{BoxFuture, CallContext, CallFailure, CallingRun};
use super::instance::{GuestCall, Outcome, run_guest};
use super::journal::{Entry, JournalSlot, RpcOutcome, digest};
use super::quotas::{Quota, QuotaExceeded, Quotas};
use super::state::{Role, RunShared, protocol_error};
use crate::flowdef::{FlowInfo, ModuleError};
use crate::trace::{ErrorInfo, SpanKind, Status};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Service calls one `rpc-gather` has in flight at once: each is a
/// connection to a service, so a flow cannot open thousands at a time.
pub const MAX_CONCURRENT_CALLS: usize = 16;

/// The flow making service calls: its name, what it may call, and the
/// flows from the run's root down to it.
#[derive(Clone, Copy)]
pub(super) struct Caller<'a> {
    pub flow: &'a str,
    pub allowed: &'a [String],
    pub chain: &'a [String],
}

/// One service call, checked and ready to go.
pub(super) struct ServiceCall {
    service: String,
    method: String,
    params: Value,
    line: Option<u32>,
}

impl ServiceCall {
    /// Params larger than the run's `input_bytes` are refused before they
    /// are parsed (parsed JSON takes many times its text in memory).
    pub(super) fn parse(
        service: String,
        method: String,
        params_json: &str,
        line: Option<u32>,
        quotas: &Quotas,
    ) -> wasmtime::Result<ServiceCall> {
        if params_json.len() as u64 > quotas.input_bytes {
            return Err(wasmtime::Error::new(QuotaExceeded::new(Quota::InputBytes, quotas.input_bytes)));
        }
        let params = Value::Object(parse_object("rpc-call params", params_json)?);
        // The names reach span names and error messages: keep them bounded.
        let (service, method) = (clip_name(&service).to_string(), clip_name(&method).to_string());
        Ok(ServiceCall { service, method, params, line })
    }
}

/// Make one service call inside its own `rpc` span: the host opens and closes
/// the span, counts the call, and refuses services the flow may not call.
pub(super) async fn call_service(
    run: Arc<RunShared>,
    caller: &Caller<'_>,
    parent: u64,
    call: ServiceCall,
    slot: JournalSlot,
) -> wasmtime::Result<Result<String, CallError>> {
    let params_sha256 = digest(&call.params.to_string());
    let name = format!("{}.{}", call.service, call.method);
    // A replay checks it makes the original's call, and is told its answer.
    let replayed = match slot.replayed("rpc", Some((&name, &params_sha256))) {
        Some(Ok(Entry::Rpc { outcome, .. })) => Some(outcome),
        Some(Err(unanswered)) => return Err(unanswered.into()),
        _ => None,
    };
    let journal = |answer: &Result<String, CallError>| {
        let outcome = match answer {
            Ok(result) => RpcOutcome::Ok(serde_json::from_str(result).unwrap_or(Value::Null)),
            Err(error) => rpc_outcome(error),
        };
        slot.write(&run, &Entry::Rpc { call: name.clone(), params_sha256: params_sha256.clone(), outcome })
    };
    let answer = make_call(&run, caller, parent, call, &slot, replayed, journal).await?;
    // A durable run is told only what its journal keeps.
    run.journal_stored().await?;
    Ok(answer)
}

/// The journal's record of a failed call: its `call-error` case and what it carries.
fn rpc_outcome(error: &CallError) -> RpcOutcome {
    let (case, message, code, data) = match error {
        CallError::UnknownService(message) => ("unknown_service", message, None, None),
        CallError::UnknownMethod(message) => ("unknown_method", message, None, None),
        CallError::PermissionDenied(message) => ("permission_denied", message, None, None),
        CallError::InvalidParams(message) => ("invalid_params", message, None, None),
        CallError::RpcError(failure) => (
            "rpc_error",
            &failure.message,
            Some(failure.code),
            Some(serde_json::from_str(&failure.data_json).unwrap_or(Value::Null)),
        ),
        CallError::ServiceUnavailable(message) => ("service_unavailable", message, None, None),
        CallError::ServiceTimeout(message) => ("service_timeout", message, None, None),
        CallError::NotAvailable(message) => ("not_available", message, None, None),
    };
    RpcOutcome::Err { case: case.to_string(), message: message.clone(), code, data }
}

/// Make the call (or take its replayed answer) inside its span; `journal`
/// writes the answer before the span ends.
async fn make_call(
    run: &Arc<RunShared>,
    caller: &Caller<'_>,
    parent: u64,
    call: ServiceCall,
    slot: &JournalSlot,
    replayed: Option<RpcOutcome>,
    journal: impl FnOnce(&Result<String, CallError>) -> Result<(), QuotaExceeded>,
) -> wasmtime::Result<Result<String, CallError>> {
    let Caller { flow, allowed, chain } = *caller;
    let name = format!("{}.{}", call.service, call.method);
    let span_id = {
        let mut ledger = run.ledger();
        ledger.charge(&run.quotas, Quota::RpcCalls, 1)?;
        ledger.room_for_a_span(&run.quotas)?;
        let (params, size) = clip_value(call.params.clone());
        let name = clip_name(&name);
        ledger.keep(&run.quotas, size + name.len())?;
        let attrs = Map::from_iter([("params".to_string(), params)]);
        ledger.recorder.start(Some(parent), SpanKind::Rpc, name, attrs, call.line)
    };
    let outcome = if let Some(replayed) = replayed {
        Answer::Replayed(replayed)
    } else if allowed.iter().any(|a| a == "*" || *a == call.service) {
        // What a durable run was answered before this call (clocks, random)
        // may be in its parameters: stored before the call leaves.
        run.journal_stored().await?;
        let run_id = run.ledger().recorder.run_id().to_string();
        let calling = RunAccount(run.clone());
        let call_key = slot.call_key(&run_id);
        let workspace = run.env.workspace.clone();
        let context = CallContext {
            run_id: &run_id,
            flow,
            chain,
            allowed,
            run: &calling,
            call_key: &call_key,
            workspace: &workspace,
            span_id,
        };
        Answer::Live(run.env.services.call(context, &call.service, &call.method, call.params).await)
    } else {
        Answer::Live(Err(CallFailure::PermissionDenied { service: call.service.clone(), allowed: allowed.to_vec() }))
    };
    if let Answer::Live(Err(CallFailure::QuotaExceeded(exceeded))) = outcome {
        // The run's own quota: it ends, and closes this span with the rest.
        return Err(wasmtime::Error::new(exceeded));
    }
    let (status, attrs, answer, error) = {
        let mut ledger = run.ledger();
        match outcome {
            Answer::Live(Ok(result)) | Answer::Replayed(RpcOutcome::Ok(result)) => {
                let (kept, size) = clip_value(result.clone());
                ledger.keep(&run.quotas, size)?;
                (Status::Ok, Map::from_iter([("result".to_string(), kept)]), Ok(result.to_string()), None)
            }
            Answer::Live(Err(failure)) => {
                // A service's error is bounded like the guest's: its message and
                // data come from outside the host too.
                let (error, size) = bound_error(failure.to_error(&call.service, &call.method));
                ledger.keep(&run.quotas, size)?;
                (Status::Failed, Map::new(), Err(call_error(&failure, &error)), Some(error))
            }
            Answer::Replayed(RpcOutcome::Err { case, message, code, data }) => {
                let (error, size) = bound_error(replayed_error(&case, message, code, data));
                ledger.keep(&run.quotas, size)?;
                (Status::Failed, Map::new(), Err(replayed_call_error(&case, &error, code)), Some(error))
            }
        }
    };
    // The journal holds the answer before the span showing it ends: a crash
    // between the two leaves the span open, and a resume ends it with the
    // journal's answer rather than show one the flow was not given.
    journal(&answer).map_err(wasmtime::Error::new)?;
    run.ledger().recorder.end(span_id, status, attrs, error).map_err(|e| protocol_error(e.to_string()))?;
    Ok(answer)
}

/// Where a call's answer comes from: the service, or the journal of the
/// run a replay replays.
enum Answer {
    Live(Result<Value, CallFailure>),
    Replayed(RpcOutcome),
}

/// The error a replayed failure's span keeps: as `CallFailure::to_error`
/// made it for the original, from what the journal kept of it.
fn replayed_error(case: &str, message: String, code: Option<i64>, data: Option<Value>) -> ErrorInfo {
    let kind = match case {
        "unknown_service" => "UnknownService",
        "unknown_method" => "UnknownMethod",
        "permission_denied" => "PermissionDenied",
        "invalid_params" => "InvalidParams",
        "rpc_error" => "RpcError",
        "service_timeout" => "Timeout",
        _ => "ServiceUnavailable",
    };
    let mut error = ErrorInfo::new(kind, message);
    if case == "rpc_error" {
        error.extra.insert("code".into(), code.into());
        error.extra.insert("data".into(), data.unwrap_or(Value::Null));
    }
    error
}

/// What the flow is told of a replayed failure: the original's `call-error` case.
fn replayed_call_error(case: &str, kept: &ErrorInfo, code: Option<i64>) -> CallError {
    let message = kept.message.clone();
    match case {
        "unknown_service" => CallError::UnknownService(message),
        "unknown_method" => CallError::UnknownMethod(message),
        "permission_denied" => CallError::PermissionDenied(message),
        "invalid_params" => CallError::InvalidParams(message),
        "rpc_error" => CallError::RpcError(RpcFailure {
            code: code.unwrap_or_default(),
            message,
            data_json: kept.extra.get("data").map_or_else(|| "null".to_string(), Value::to_string),
        }),
        "service_timeout" => CallError::ServiceTimeout(message),
        "not_available" => CallError::NotAvailable(message),
        _ => CallError::ServiceUnavailable(message),
    }
}

/// What the flow is told of a failed call: the case of `call-error` its
/// `services` exception is raised from, with the message as the span keeps it.
fn call_error(failure: &CallFailure, kept: &ErrorInfo) -> CallError {
    let message = kept.message.clone();
    match failure {
        CallFailure::UnknownService { .. } => CallError::UnknownService(message),
        CallFailure::UnknownMethod { .. } => CallError::UnknownMethod(message),
        CallFailure::PermissionDenied { .. } | CallFailure::NotAllowed(_) => CallError::PermissionDenied(message),
        CallFailure::InvalidParams(_) => CallError::InvalidParams(message),
        CallFailure::Rpc { code, .. } => CallError::RpcError(RpcFailure {
            code: *code,
            message,
            data_json: kept.extra.get("data").map_or_else(|| "null".to_string(), Value::to_string),
        }),
        CallFailure::Transport(_) => CallError::ServiceUnavailable(message),
        CallFailure::Timeout { .. } => CallError::ServiceTimeout(message),
        // Ends the run before the flow is told anything (see above).
        CallFailure::QuotaExceeded(_) => CallError::ServiceUnavailable(message),
    }
}

/// What built-ins do for a run, charged to it: modules they load
/// (`flows.describe`, `flows.save`) run in an instance of the run (its
/// memory, CPU, instance slot and wall time), and what they store counts
/// against its `stored_bytes`, so a flow cannot use them to reach past its quotas.
struct RunAccount(Arc<RunShared>);

impl CallingRun for RunAccount {
    fn keep(&self, bytes: usize) -> Result<(), QuotaExceeded> {
        self.0.ledger().keep(&self.0.quotas, bytes)
    }

    fn count_flows_saved(&self, flows: u64, limit: u64) -> Result<(), u64> {
        let saved = &mut self.0.ledger().usage.flows_saved;
        if saved.saturating_add(flows) > limit {
            return Err(*saved);
        }
        *saved += flows;
        Ok(())
    }

    fn flows_not_saved(&self, flows: u64) {
        let saved = &mut self.0.ledger().usage.flows_saved;
        *saved = saved.saturating_sub(flows);
    }

    fn describe<'a>(
        &'a self,
        source: &'a str,
    ) -> BoxFuture<'a, Result<Result<Vec<FlowInfo>, ModuleError>, QuotaExceeded>> {
        Box::pin(async move {
            if let Err(empty) = super::refuse_empty(source) {
                return Ok(Err(empty));
            }
            let call = GuestCall::Describe { source: Arc::from(source) };
            match run_guest(self.0.clone(), Role::Describe, call).await {
                // The run's own quota ends the run; any other trap is the module's.
                Outcome::Trapped(trap) => match trap.downcast::<QuotaExceeded>() {
                    Ok(exceeded) => Err(exceeded),
                    Err(trap) => Ok(super::described(Outcome::Trapped(trap))),
                },
                outcome => Ok(super::described(outcome)),
            }
        })
    }
}
