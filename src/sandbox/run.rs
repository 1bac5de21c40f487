//! One run from start to finish: the root span, the guest call raced against
//! the wall clock and a cancel, the outcome turned into a status, and every
//! span closed, whatever happened inside.

use super::Sandbox;
use super::bounds::bound_error;
use super::env::RunEnv;
use super::instance::{GuestCall, Outcome, run_guest};
use super::quotas::{Quota, QuotaExceeded, Quotas, Usage};
use super::state::{GuestProtocolError, Role, RunShared};
use crate::flowdef::FlowInfo;
use crate::trace::bus::Committed;
use crate::trace::{ErrorInfo, EventSink, Recorder, RunEvent, SpanKind, Status, now_us};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Everything a run needs. The input must already have been checked against
/// the flow's declared inputs (`FlowInfo::check_input`).
pub struct RunRequest {
    pub run_id: String,
    /// The module's source.
    pub source: Arc<str>,
    /// The flow to run.
    pub flow: String,
    /// Line of the flow's declaration, put on the root span.
    pub line: Option<u32>,
    /// Keyword arguments for the flow.
    pub input: Map<String, Value>,
    /// The services the flow declares (`@flow(services=[...])`).
    pub services: Vec<String>,
    pub quotas: Quotas,
    pub env: RunEnv,
    /// Where spans and log lines go as they happen.
    pub sink: EventSink,
    /// Cancelling it ends the run `cancelled`.
    pub cancel: CancellationToken,
    /// How far the store has got with the run's events, when a store
    /// keeps them: the run waits there rather than run ahead of it.
    pub committed: Option<Committed>,
    /// For a durable run resumed after a crash, the events its first life
    /// stored (in seq order): its tree goes on from them.
    pub earlier: Vec<RunEvent>,
    /// For a durable run: when this is set as the run is cancelled (the
    /// server is stopping), the run is suspended rather than ended: nothing
    /// more of it is recorded, and a later start resumes it.
    pub suspend_on_cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl RunRequest {
    /// A run of `flow` (declared in `source`) with `input` (checked against
    /// its inputs already), a fresh id and its own cancel token; its events
    /// go to the receiver returned.
    pub fn new(
        source: Arc<str>,
        flow: &FlowInfo,
        input: Map<String, Value>,
        quotas: Quotas,
        env: RunEnv,
    ) -> (RunRequest, tokio::sync::mpsc::UnboundedReceiver<RunEvent>) {
        let (sink, events) = tokio::sync::mpsc::unbounded_channel();
        let request = RunRequest {
            run_id: uuid::Uuid::now_v7().to_string(),
            source,
            flow: flow.name.clone(),
            line: flow.line,
            input,
            services: flow.services.clone(),
            quotas,
            env,
            sink,
            cancel: CancellationToken::new(),
            committed: None,
            earlier: Vec::new(),
            suspend_on_cancel: None,
        };
        (request, events)
    }

    /// The same request under the id the caller gave the run already.
    pub fn with_id(mut self, run_id: String) -> RunRequest {
        self.run_id = run_id;
        self
    }

    /// The same request, kept within `MAX_EVENTS_AHEAD` events of what
    /// the store has committed.
    pub fn with_backpressure(mut self, committed: Committed) -> RunRequest {
        self.committed = Some(committed);
        self
    }

    /// The same request, cancelled by `cancel`.
    pub fn with_cancel(mut self, cancel: CancellationToken) -> RunRequest {
        self.cancel = cancel;
        self
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub run_id: String,
    pub flow: String,
    pub status: Status,
    pub output: Option<Value>,
    /// `{type, message, traceback, line, ...}`; `quota` names the quota for
    /// `quota_exceeded` and `timed_out`.
    pub error: Option<ErrorInfo>,
    pub usage: Usage,
    pub start_us: i64,
    pub end_us: i64,
    /// A durable run stopped with the server, neither ended nor recorded
    /// further: a later start resumes it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspended: bool,
}

/// Why the guest call stopped, before it is turned into a status.
enum Ending {
    Guest(Outcome),
    InputTooLarge(QuotaExceeded),
    TimedOut,
    Cancelled,
}

impl Sandbox {
    pub async fn run(&self, request: RunRequest) -> RunReport {
        let started = Instant::now();
        let start_us = now_us();
        let quotas = request.quotas.clone();
        let recorder = match request.earlier.is_empty() {
            true => Recorder::new(request.run_id.clone(), request.sink),
            false => Recorder::resuming(request.run_id.clone(), request.sink, &request.earlier),
        };
        let shared =
            Arc::new(RunShared::new(quotas.clone(), request.env, self.core.clone(), recorder, request.committed));
        let root = shared.ledger().recorder.start(None, SpanKind::Flow, &request.flow, Map::new(), request.line);

        let input_json = Value::Object(request.input).to_string();
        let ending = if input_json.len() as u64 > quotas.input_bytes {
            Ending::InputTooLarge(QuotaExceeded::new(Quota::InputBytes, quotas.input_bytes))
        } else {
            let call = GuestCall::Run { source: request.source, entry: request.flow.clone(), input_json };
            let allowed = shared.env.allowed_services(&request.services).into();
            let chain = Arc::from([request.flow.clone()]);
            let stream = Arc::from("0");
            let role = Role::Run { flow: request.flow.clone(), depth: 0, allowed, under: root, chain, stream };
            tokio::select! {
                outcome = run_guest(shared.clone(), role, call) => Ending::Guest(outcome),
                _ = tokio::time::sleep(quotas.wall_time()) => Ending::TimedOut,
                _ = request.cancel.cancelled() => Ending::Cancelled,
            }
        };
        // The guest future, its Store and every subflow's are gone by now:
        // whatever is still open under the root is closed below.
        let suspended = matches!(ending, Ending::Cancelled)
            && request.suspend_on_cancel.is_some_and(|suspend| suspend.load(std::sync::atomic::Ordering::SeqCst));
        let (status, output, error) = settle(ending, &quotas);

        let mut ledger = shared.ledger();
        if suspended {
            // Its tree stays as stored, open where it was going on.
            ledger.recorder.mute();
        }
        let output_bytes = output.as_ref().map_or(0, |o| o.to_string().len() as u64);
        let leftover_status = if status == Status::Ok { Status::Failed } else { status };
        let leftover_error = if status == Status::Ok { Some(ErrorInfo::left_open()) } else { error.clone() };
        ledger.recorder.close_left_behind(leftover_status, leftover_error.as_ref());
        ledger.recorder.close_under(root, leftover_status, leftover_error.as_ref());
        let usage = Usage {
            wall_time_ms: started.elapsed().as_secs_f64() * 1000.0,
            cpu_time_ms: ledger.cpu_time_ms(),
            spans: ledger.recorder.spans_started(),
            output_bytes,
            ..ledger.usage.clone()
        };
        let attrs = Map::from_iter([("usage".to_string(), json!(usage))]);
        // The root is the only span left, so this cannot be refused.
        let _ = ledger.recorder.end(root, status, attrs, error.clone());
        RunReport {
            run_id: ledger.recorder.run_id().to_string(),
            flow: request.flow,
            status,
            output,
            error,
            usage,
            start_us,
            end_us: now_us(),
            suspended,
        }
    }
}

fn settle(ending: Ending, quotas: &Quotas) -> (Status, Option<Value>, Option<ErrorInfo>) {
    match ending {
        Ending::Guest(Outcome::Returned(text)) => match serde_json::from_str::<Value>(&text) {
            Ok(_) if text.len() as u64 > quotas.output_bytes => {
                let exceeded = QuotaExceeded::new(Quota::OutputBytes, quotas.output_bytes);
                (Status::QuotaExceeded, None, Some(exceeded.to_error()))
            }
            Ok(output) => (Status::Ok, Some(output), None),
            Err(e) => (
                Status::Failed,
                None,
                Some(ErrorInfo::new("OutputError", format!("the guest's output is not JSON: {e}"))),
            ),
        },
        Ending::Guest(Outcome::Raised(error)) => (Status::Failed, None, Some(error)),
        Ending::Guest(Outcome::Trapped(trap)) => {
            let (status, error) = trap_error(&trap);
            (status, None, Some(error))
        }
        Ending::InputTooLarge(exceeded) => (Status::QuotaExceeded, None, Some(exceeded.to_error())),
        Ending::TimedOut => (
            Status::TimedOut,
            None,
            Some(ErrorInfo::quota(
                "TimedOut",
                Quota::WallTime.name(),
                quotas.wall_time_ms,
                format!("the run did not finish within its wall time of {} ms", quotas.wall_time_ms),
            )),
        ),
        Ending::Cancelled => (Status::Cancelled, None, Some(ErrorInfo::cancelled("the run was cancelled"))),
    }
}

/// The status and error object for an instance that trapped, bounded like
/// every error (a broken host call's message quotes what the guest sent).
pub(crate) fn trap_error(trap: &wasmtime::Error) -> (Status, ErrorInfo) {
    let (status, error) = unbounded_trap_error(trap);
    (status, bound_error(error).0)
}

fn unbounded_trap_error(trap: &wasmtime::Error) -> (Status, ErrorInfo) {
    if let Some(exceeded) = trap.downcast_ref::<QuotaExceeded>() {
        return (Status::QuotaExceeded, exceeded.to_error());
    }
    if let Some(lost) = trap.downcast_ref::<super::journal::JournalNotStored>() {
        return (Status::Failed, ErrorInfo::new("JournalNotStored", lost.to_string()));
    }
    if let Some(diverged) = trap.downcast_ref::<super::journal::ReplayDiverged>() {
        return (Status::Failed, ErrorInfo::new("ReplayDiverged", diverged.to_string()));
    }
    if let Some(rejected) = trap.downcast_ref::<GuestProtocolError>() {
        return (Status::Failed, ErrorInfo::new("HostCallRejected", rejected.to_string()));
    }
    if let Some(code) = trap.downcast_ref::<wasmtime::Trap>() {
        return (Status::Failed, ErrorInfo::new("Trap", format!("the sandbox trapped: {code}")));
    }
    (Status::Failed, ErrorInfo::new("SandboxError", format!("{trap:#}")))
}
