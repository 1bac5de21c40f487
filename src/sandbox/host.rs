//! `HostState`: everything one sandbox instance owns, and the host functions
//! of `runtime/wit/flow.wit` that the guest calls.
//!
//! What a run shares across its instances (the root flow and its subflows)
//! lives in `RunShared`: the span recorder, the usage counters and the quotas.

use super::bindings::hero_logic::flow::host::{Host, InvokeRequest, RpcRequest, SubflowAnswer};
use super::bounds::{bound_error, clip_attrs, clip_name, clip_value};
use super::engine::TICK;
use super::env::{BoxFuture, CallContext, CallFailure, CallingRun, RunEnv};
use super::instance::{GuestCall, Outcome, SandboxCore, run_guest};
use super::quotas::{Quota, QuotaExceeded, Quotas, Usage};
use crate::flowdef::{FlowInfo, ModuleError};
use crate::trace::{ErrorInfo, LogStream, Recorder, SpanKind, Status};
use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreContextMut, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// A busy guest yields to the async runtime this often, so timers, cancels
/// and other runs on the same thread get their turn.
const YIELD_EVERY_TICKS: u64 = 10;

/// Subflows one `invoke-gather` runs at once, whatever the guest asks for.
/// Each is a whole CPython instance; the memory quota is the real bound.
pub const MAX_CONCURRENT_SUBFLOWS: usize = 16;

/// Service calls one `rpc-gather` has in flight at once: each is a
/// connection to a service, so a flow cannot open thousands at a time.
pub const MAX_CONCURRENT_CALLS: usize = 16;

/// Calls one gather (of services or subflows) may ask for.
pub const MAX_GATHERED: usize = 1000;

/// How many known flow names an "unknown flow" answer lists.
const KNOWN_FLOWS_LISTED: usize = 20;

/// A table may not grow past this (CPython needs ~200k function slots).
const MAX_TABLE_ELEMENTS: usize = 262_144;

/// The guest broke the host-call protocol (closed a span it does not own,
/// sent malformed JSON, ...). Ends the run as failed; flow code cannot catch it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GuestProtocolError(pub String);

fn protocol_error(message: impl Into<String>) -> wasmtime::Error {
    wasmtime::Error::new(GuestProtocolError(message.into()))
}

/// State shared by every instance of one run.
pub(crate) struct RunShared {
    pub quotas: Quotas,
    pub env: RunEnv,
    pub core: Arc<SandboxCore>,
    ledger: Mutex<Ledger>,
}

/// The run's books, behind one lock that is never held across an await.
pub(crate) struct Ledger {
    pub recorder: Recorder,
    pub usage: Usage,
    /// Linear memory held right now by all the run's live instances.
    pub memory_in_use: u64,
    pub cpu_ticks: u64,
    /// Time the host spent on the run's behalf outside the guest (looking
    /// flows up for subflows), counted against its CPU quota too.
    pub host_cpu_us: u64,
}

impl Ledger {
    /// CPU time charged so far: guest ticks and host work, in ms.
    pub fn cpu_time_ms(&self) -> u64 {
        self.cpu_ticks * TICK.as_millis() as u64 + self.host_cpu_us / 1000
    }

    /// Charge host work done for the run to its CPU quota.
    fn charge_host_time(&mut self, quotas: &Quotas, spent: std::time::Duration) -> wasmtime::Result<()> {
        self.host_cpu_us += u64::try_from(spent.as_micros()).unwrap_or(u64::MAX);
        if self.cpu_time_ms() > quotas.cpu_time_ms {
            return Err(wasmtime::Error::new(QuotaExceeded::new(Quota::CpuTime, quotas.cpu_time_ms)));
        }
        Ok(())
    }

    /// Add `amount` to what the run used of a quota the host counts up
    /// (service calls, log bytes, stored bytes). What would go past the
    /// limit is refused, not counted, and ends the run.
    fn charge(&mut self, quotas: &Quotas, quota: Quota, amount: u64) -> Result<(), QuotaExceeded> {
        let Some(used) = self.usage.counted_mut(quota) else {
            debug_assert!(false, "{quota:?} is not counted by charge");
            return Ok(());
        };
        let after = used.saturating_add(amount);
        if after > quotas.get(quota) {
            return Err(QuotaExceeded::new(quota, quotas.get(quota)));
        }
        *used = after;
        Ok(())
    }

    /// Count `bytes` the store keeps for the run (span names, attributes and
    /// errors, saved modules, kv values) against `stored_bytes`.
    fn keep(&mut self, quotas: &Quotas, bytes: usize) -> Result<(), QuotaExceeded> {
        self.charge(quotas, Quota::StoredBytes, bytes as u64)
    }

    /// Whether the `spans` quota leaves room for one more span; checked under
    /// the same lock that then opens it (the recorder counts spans).
    fn room_for_a_span(&self, quotas: &Quotas) -> wasmtime::Result<()> {
        if self.recorder.spans_started() >= quotas.spans {
            return Err(wasmtime::Error::new(QuotaExceeded::new(Quota::Spans, quotas.spans)));
        }
        Ok(())
    }
}

impl RunShared {
    pub fn new(quotas: Quotas, env: RunEnv, core: Arc<SandboxCore>, recorder: Recorder) -> RunShared {
        let ledger = Ledger { recorder, usage: Usage::default(), memory_in_use: 0, cpu_ticks: 0, host_cpu_us: 0 };
        RunShared { quotas, env, core, ledger: Mutex::new(ledger) }
    }

    pub fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // A panic while holding the lock is a bug already reported; the books
        // themselves stay consistent (every update is a single assignment).
        self.ledger.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What an instance is for.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Role {
    /// Loading a module to report its flows: no spans, services or subflows.
    Describe,
    /// Running `flow`, `depth` subflows below the run's root flow, which may
    /// call the services in `allowed`. Its spans go under span `under`: the
    /// run's root span, or the `subflow` span that started it.
    /// `chain` names the flows from the run's root down to this one: a
    /// capability holds only when every flow in it holds it.
    Run { flow: String, depth: u32, allowed: Arc<[String]>, under: u64, chain: Arc<[String]> },
}

pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub run: Arc<RunShared>,
    role: Role,
    /// This instance's linear memory, returned to the run's total on drop.
    memory_bytes: u64,
    /// Step spans this instance opened and has not closed: it may close only
    /// the innermost of them, never a span the host or another instance owns.
    open_steps: Vec<u64>,
}

impl HostState {
    pub fn new(run: Arc<RunShared>, role: Role) -> HostState {
        // No preopened directories, no environment, no arguments, no network:
        // the host functions are the only doors out.
        let wasi = WasiCtx::builder().allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false).build();
        HostState { wasi, table: ResourceTable::new(), run, role, memory_bytes: 0, open_steps: Vec::new() }
    }

    /// Called by wasmtime whenever the guest has run past its epoch deadline,
    /// that is once per tick of guest execution.
    pub fn on_epoch_tick(&mut self) -> wasmtime::Result<UpdateDeadline> {
        let limit = self.run.quotas.cpu_time_ms;
        let (ticks, spent_ms) = {
            let mut ledger = self.run.ledger();
            ledger.cpu_ticks += 1;
            (ledger.cpu_ticks, ledger.cpu_time_ms())
        };
        if spent_ms > limit {
            return Err(wasmtime::Error::new(QuotaExceeded::new(Quota::CpuTime, limit)));
        }
        if ticks.is_multiple_of(YIELD_EVERY_TICKS) {
            Ok(UpdateDeadline::Yield(1))
        } else {
            Ok(UpdateDeadline::Continue(1))
        }
    }

    fn running_depth(&self, what: &str) -> wasmtime::Result<u32> {
        match self.role {
            Role::Run { depth, .. } => Ok(depth),
            Role::Describe => Err(protocol_error(format!(
                "{what} is only available while a flow runs, not while its module is loaded to be described"
            ))),
        }
    }

    /// The span this instance's next span, service call or log line goes
    /// under: its innermost open step, else the span it runs under.
    fn current_span(&self) -> Option<u64> {
        match self.role {
            Role::Run { under, .. } => Some(self.open_steps.last().copied().unwrap_or(under)),
            Role::Describe => None,
        }
    }
}

/// The flow making service calls: its name, what it may call, and the
/// flows from the run's root down to it.
#[derive(Clone, Copy)]
struct Caller<'a> {
    flow: &'a str,
    allowed: &'a [String],
    chain: &'a [String],
}

/// One service call, checked and ready to go.
struct ServiceCall {
    service: String,
    method: String,
    params: Value,
    line: Option<u32>,
}

impl ServiceCall {
    /// Params larger than the run's `input_bytes` are refused before they
    /// are parsed (parsed JSON takes many times its text in memory).
    fn parse(
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
async fn call_service(
    run: Arc<RunShared>,
    caller: &Caller<'_>,
    parent: u64,
    call: ServiceCall,
) -> wasmtime::Result<Result<String, String>> {
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
    let outcome = if allowed.iter().any(|a| a == "*" || *a == call.service) {
        let run_id = run.ledger().recorder.run_id().to_string();
        let calling = RunAccount(run.clone());
        let context = CallContext { run_id: &run_id, flow, chain, allowed, run: &calling };
        run.env.services.call(context, &call.service, &call.method, call.params).await
    } else {
        Err(CallFailure::PermissionDenied { service: call.service.clone(), allowed: allowed.to_vec() })
    };
    if let Err(CallFailure::QuotaExceeded(exceeded)) = outcome {
        // The run's own quota: it ends, and closes this span with the rest.
        return Err(wasmtime::Error::new(exceeded));
    }
    let mut ledger = run.ledger();
    let (status, attrs, answer, error) = match outcome {
        Ok(result) => {
            let (kept, size) = clip_value(result.clone());
            ledger.keep(&run.quotas, size)?;
            (Status::Ok, Map::from_iter([("result".to_string(), kept)]), Ok(result.to_string()), None)
        }
        Err(failure) => {
            // A service's error is bounded like the guest's: its message and
            // data come from outside the host too.
            let (error, size) = bound_error(failure.to_error(&call.service, &call.method));
            ledger.keep(&run.quotas, size)?;
            (Status::Failed, Map::new(), Err(error.to_json_string()), Some(error))
        }
    };
    ledger.recorder.end(span_id, status, attrs, error).map_err(|e| protocol_error(e.to_string()))?;
    Ok(answer)
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

impl Drop for HostState {
    fn drop(&mut self) {
        let mut ledger = self.run.ledger();
        ledger.memory_in_use = ledger.memory_in_use.saturating_sub(self.memory_bytes);
    }
}

/// The epoch callback installed on every store.
pub(crate) fn epoch_callback(mut store: StoreContextMut<'_, HostState>) -> wasmtime::Result<UpdateDeadline> {
    store.data_mut().on_epoch_tick()
}

/// Attribute text past this is not parsed: what is kept is cut at
/// `ATTR_MAX_BYTES` anyway, and parsed JSON takes many times its text.
const ATTRS_PARSED_MAX_BYTES: usize = 64 * 1024;
/// Error text past this is read for its `type` and `line` only. An error is
/// mostly two long strings (message, traceback), which parse into about
/// their own size, so an honest exception of a few MiB is still cut as usual.
const ERROR_PARSED_MAX_BYTES: usize = 16 * 1024 * 1024;

fn parse_attrs(text: &str) -> wasmtime::Result<Map<String, Value>> {
    if text.len() > ATTRS_PARSED_MAX_BYTES {
        let note = format!("{} bytes of attributes, more than the host reads", text.len());
        return Ok(Map::from_iter([("_cut".to_string(), Value::String(note))]));
    }
    parse_object("span attributes", text)
}

fn parse_error(text: &str) -> wasmtime::Result<ErrorInfo> {
    if text.len() <= ERROR_PARSED_MAX_BYTES {
        return Ok(ErrorInfo::from_value(Value::Object(parse_object("span error", text)?)));
    }
    /// The fields kept of an oversized error; serde skips the rest without
    /// keeping it.
    #[derive(serde::Deserialize)]
    struct Brief {
        #[serde(rename = "type")]
        kind: Option<String>,
        line: Option<u64>,
    }
    let brief: Brief =
        serde_json::from_str(text).map_err(|e| protocol_error(format!("span error is not valid JSON: {e}")))?;
    let message = format!("the error object was {} bytes, more than the host reads", text.len());
    let kind = brief.kind.unwrap_or_else(|| "GuestError".into());
    Ok(ErrorInfo { line: brief.line.and_then(|l| u32::try_from(l).ok()), ..ErrorInfo::new(&kind, message) })
}

fn parse_object(what: &str, text: &str) -> wasmtime::Result<Map<String, Value>> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(protocol_error(format!("{what} must be a JSON object"))),
        Err(error) => Err(protocol_error(format!("{what} is not valid JSON: {error}"))),
    }
}

impl Host for HostState {
    async fn rpc_call(
        &mut self,
        service: String,
        method: String,
        params_json: String,
        line: Option<u32>,
    ) -> wasmtime::Result<Result<String, String>> {
        let (Role::Run { flow, allowed, chain, .. }, Some(parent)) = (&self.role, self.current_span()) else {
            return Ok(Err(not_while_describing().to_json_string()));
        };
        let call = ServiceCall::parse(service, method, &params_json, line, &self.run.quotas)?;
        call_service(self.run.clone(), &Caller { flow, allowed, chain }, parent, call).await
    }

    async fn rpc_gather(&mut self, calls: Vec<RpcRequest>) -> wasmtime::Result<Vec<Result<String, String>>> {
        let (Role::Run { flow, allowed, chain, .. }, Some(parent)) = (&self.role, self.current_span()) else {
            return Ok(calls.iter().map(|_| Err(not_while_describing().to_json_string())).collect());
        };
        let caller = Caller { flow, allowed, chain };
        refuse_large_gather("services.gather", calls.len())?;
        let calls = calls
            .into_iter()
            .map(|c| ServiceCall::parse(c.service, c.method, &c.params_json, c.line, &self.run.quotas))
            .collect::<wasmtime::Result<Vec<_>>>()?;
        let pending = calls.into_iter().map(|call| call_service(self.run.clone(), &caller, parent, call));
        // In order, at most MAX_CONCURRENT_CALLS in flight.
        let answers: Vec<_> =
            futures_util::stream::iter(pending).buffered(MAX_CONCURRENT_CALLS).collect::<Vec<_>>().await;
        answers.into_iter().collect()
    }

    async fn span_start(
        &mut self,
        kind: String,
        name: String,
        attrs_json: String,
        line: Option<u32>,
    ) -> wasmtime::Result<u64> {
        self.running_depth("flow.step")?;
        if kind != "step" {
            return Err(protocol_error(format!("a flow may only open 'step' spans, not '{}'", clip_name(&kind))));
        }
        let (attrs, size) = clip_attrs(parse_attrs(&attrs_json)?);
        let name = clip_name(&name);
        let span_id = {
            let mut ledger = self.run.ledger();
            ledger.room_for_a_span(&self.run.quotas)?;
            ledger.keep(&self.run.quotas, size + name.len())?;
            ledger.recorder.start(self.current_span(), SpanKind::Step, name, attrs, line)
        };
        self.open_steps.push(span_id);
        Ok(span_id)
    }

    async fn span_end(
        &mut self,
        id: u64,
        status: String,
        attrs_json: String,
        error_json: Option<String>,
    ) -> wasmtime::Result<()> {
        self.running_depth("flow.step")?;
        let status = match status.as_str() {
            "ok" => Status::Ok,
            "failed" => Status::Failed,
            other => {
                return Err(protocol_error(format!(
                    "a flow may end a span 'ok' or 'failed', not '{}'",
                    clip_name(other)
                )));
            }
        };
        if self.open_steps.last() != Some(&id) {
            return Err(protocol_error(format!("span {id} is not the innermost step this flow has open")));
        }
        let (attrs, mut size) = clip_attrs(parse_attrs(&attrs_json)?);
        let error = match error_json {
            Some(text) => {
                let (error, error_size) = bound_error(parse_error(&text)?);
                size += error_size;
                Some(error)
            }
            None => None,
        };
        let mut ledger = self.run.ledger();
        ledger.keep(&self.run.quotas, size)?;
        ledger.recorder.end(id, status, attrs, error).map_err(|e| protocol_error(e.to_string()))?;
        self.open_steps.pop();
        Ok(())
    }

    async fn log(&mut self, channel: String, message: String) -> wasmtime::Result<()> {
        let Some(span_id) = self.current_span() else {
            // Output while a module is only being described has no run to go to.
            return Ok(());
        };
        let stream = LogStream::parse(&channel).ok_or_else(|| {
            protocol_error(format!("unknown log channel '{}' (stdout, stderr or log)", clip_name(&channel)))
        })?;
        let mut ledger = self.run.ledger();
        ledger.charge(&self.run.quotas, Quota::LogBytes, message.len() as u64)?;
        ledger.recorder.log(span_id, stream, message);
        Ok(())
    }

    async fn invoke(
        &mut self,
        flow: String,
        input_json: String,
        line: Option<u32>,
    ) -> wasmtime::Result<Result<String, String>> {
        let caller = self.subflow_caller()?;
        Ok(run_subflow(self.run.clone(), caller, InvokeRequest { flow, input_json, line }).await?.outcome)
    }

    async fn invoke_gather(
        &mut self,
        calls: Vec<InvokeRequest>,
        concurrency: u32,
    ) -> wasmtime::Result<Vec<SubflowAnswer>> {
        let caller = self.subflow_caller()?;
        refuse_large_gather("flow.invoke_many", calls.len())?;
        let concurrency = (concurrency as usize).clamp(1, MAX_CONCURRENT_SUBFLOWS);
        let mut answers: Vec<Option<SubflowAnswer>> = calls.iter().map(|_| None).collect();
        let run = &self.run;
        let mut running = futures_util::stream::iter(calls.into_iter().enumerate())
            .map(|(index, call)| {
                let caller = caller.clone();
                async move { (index, run_subflow(run.clone(), caller, call).await) }
            })
            .buffer_unordered(concurrency);
        // Taken as they end, not in order, so that a trap in any subflow stops
        // the caller at once; the subflows still going are dropped with
        // `running`, and the run closes their spans with the trap's status.
        while let Some((index, answer)) = running.next().await {
            answers[index] = Some(answer?);
        }
        Ok(answers.into_iter().map(|answer| answer.expect("every call answered")).collect())
    }
}

impl HostState {
    /// Where a subflow started by this instance goes, once the depth quota allows one.
    fn subflow_caller(&self) -> wasmtime::Result<SubflowCaller> {
        let depth = self.running_depth("flow.invoke")?;
        let limit = self.run.quotas.subflow_depth;
        if u64::from(depth) >= limit {
            return Err(wasmtime::Error::new(QuotaExceeded::new(Quota::SubflowDepth, limit)));
        }
        let parent = self.current_span().expect("a running instance has a current span");
        let Role::Run { chain, .. } = &self.role else { unreachable!("running_depth checked the role") };
        Ok(SubflowCaller { depth, parent, chain: chain.clone() })
    }
}

/// The instance starting a subflow: how deep it is, its current span, and
/// the flows from the run's root down to it.
#[derive(Clone)]
struct SubflowCaller {
    depth: u32,
    parent: u64,
    chain: Arc<[String]>,
}

/// Run one subflow in a fresh instance under a `subflow` span. An unknown
/// flow or an input its declaration refuses is an answer (no span, no
/// instance); a trap, such as a quota, is the whole run's and stops the caller.
async fn run_subflow(
    run: Arc<RunShared>,
    caller: SubflowCaller,
    call: InvokeRequest,
) -> wasmtime::Result<SubflowAnswer> {
    let refused =
        |error: ErrorInfo| SubflowAnswer { outcome: Err(error.to_json_string()), span_id: None, duration_us: 0 };
    let resolver = run.env.flows.clone();
    // Looking a flow up is host work done for the run: charged to its CPU.
    let looking = Instant::now();
    let resolved = resolver.resolve(&call.flow).await;
    let Some(callee) = resolved else {
        let known = resolver.names(KNOWN_FLOWS_LISTED).await;
        run.ledger().charge_host_time(&run.quotas, looking.elapsed())?;
        let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
        let message = format!("unknown flow '{}' (known flows: {known})", clip_name(&call.flow));
        return Ok(refused(ErrorInfo::new("UnknownFlow", message)));
    };
    run.ledger().charge_host_time(&run.quotas, looking.elapsed())?;
    // A subflow's input is an input like the run's: within `input_bytes`,
    // checked before it is parsed.
    if call.input_json.len() as u64 > run.quotas.input_bytes {
        return Err(wasmtime::Error::new(QuotaExceeded::new(Quota::InputBytes, run.quotas.input_bytes)));
    }
    let input = Value::Object(parse_object("flow.invoke input", &call.input_json)?);
    let arguments = match callee.info.check_input(&input) {
        Ok(arguments) => arguments,
        Err(problem) => return Ok(refused(ErrorInfo::new("InvalidInput", problem.to_string()))),
    };
    let span_id = {
        let mut ledger = run.ledger();
        ledger.room_for_a_span(&run.quotas)?;
        let (input, size) = clip_value(Value::Object(arguments.clone()));
        ledger.keep(&run.quotas, size)?;
        ledger.usage.subflows += 1;
        ledger.usage.max_subflow_depth = ledger.usage.max_subflow_depth.max(u64::from(caller.depth) + 1);
        let attrs = Map::from_iter([("input".to_string(), input)]);
        ledger.recorder.start(Some(caller.parent), SpanKind::Subflow, &callee.info.name, attrs, call.line)
    };
    let started = Instant::now();
    let guest_call = GuestCall::Run {
        source: callee.source.clone(),
        entry: callee.info.name.clone(),
        input_json: Value::Object(arguments).to_string(),
    };
    let role = Role::Run {
        flow: callee.info.name.clone(),
        depth: caller.depth + 1,
        allowed: run.env.allowed_services(&callee.info.services).into(),
        under: span_id,
        chain: caller.chain.iter().cloned().chain([callee.info.name.clone()]).collect(),
    };
    let outcome = Box::pin(run_guest(run.clone(), role, guest_call)).await;
    let (status, attrs, error, answer) = match outcome {
        Outcome::Returned(output) => {
            let attrs = Map::from_iter([("output_bytes".to_string(), json!(output.len()))]);
            (Status::Ok, attrs, None, Ok(output))
        }
        Outcome::Raised(error) => {
            let answer = Err(error.to_json_string());
            (Status::Failed, Map::new(), Some(error), answer)
        }
        // A quota is the whole run's: stop the caller too, and let the run
        // close every span with the quota's status.
        Outcome::Trapped(trap) => return Err(trap),
    };
    let mut ledger = run.ledger();
    if let Some(error) = &error {
        // Bounded already (every raised error is); the subflow span keeps it.
        ledger.keep(&run.quotas, error.to_json_string().len())?;
    }
    ledger.recorder.close_under(span_id, Status::Failed, Some(&ErrorInfo::left_open()));
    ledger.recorder.end(span_id, status, attrs, error).map_err(|e| protocol_error(e.to_string()))?;
    let duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    Ok(SubflowAnswer { outcome: answer, span_id: Some(span_id), duration_us })
}

/// A gather asks for more calls than one host call may carry.
fn refuse_large_gather(what: &str, calls: usize) -> wasmtime::Result<()> {
    if calls > MAX_GATHERED {
        return Err(protocol_error(format!("{what} takes at most {MAX_GATHERED} calls at once, not {calls}")));
    }
    Ok(())
}

fn not_while_describing() -> ErrorInfo {
    ErrorInfo::new("NotAvailable", "services cannot be called while a module is loaded to be described")
}

impl ResourceLimiter for HostState {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let grow = desired.saturating_sub(current) as u64;
        let limit = self.run.quotas.memory_bytes;
        let mut ledger = self.run.ledger();
        if ledger.memory_in_use + grow > limit {
            // A trap rather than a refused grow: Python would turn a refusal
            // into a MemoryError the flow could catch and carry on from.
            return Err(wasmtime::Error::new(QuotaExceeded::new(Quota::Memory, limit)));
        }
        ledger.memory_in_use += grow;
        ledger.usage.peak_memory_bytes = ledger.usage.peak_memory_bytes.max(ledger.memory_in_use);
        self.memory_bytes += grow;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
