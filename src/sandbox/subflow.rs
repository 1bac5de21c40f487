//! Subflows: `flow.invoke` runs another flow in a fresh instance of the
//! same run, under a `subflow` span, charged to the run's quotas.

use super::bindings::hero_logic::flow::host::{InvokeRequest, SubflowAnswer};
use super::bounds::{clip_name, clip_value, parse_object};
use super::instance::{GuestCall, Outcome, run_guest};
use super::journal::{Entry, JournalSlot, ReplayDiverged, digest};
use super::quotas::{Quota, QuotaExceeded};
use super::state::{HostState, Role, RunShared, protocol_error};
use crate::trace::{ErrorInfo, SpanKind, Status};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Instant;

/// Subflows one `invoke-gather` runs at once, whatever the guest asks for.
/// Each is a whole CPython instance; the memory quota is the real bound.
pub const MAX_CONCURRENT_SUBFLOWS: usize = 16;

/// How many known flow names an "unknown flow" answer lists.
const KNOWN_FLOWS_LISTED: usize = 20;

impl HostState {
    /// Where a subflow started by this instance goes, once the depth quota allows one.
    pub(super) fn subflow_caller(&self) -> wasmtime::Result<SubflowCaller> {
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
pub(super) struct SubflowCaller {
    depth: u32,
    parent: u64,
    chain: Arc<[String]>,
}

/// Where one subflow goes in the journal: the caller's entry for its
/// answer, and the stream of its own instance.
pub(super) struct SubflowPlace {
    pub answer: JournalSlot,
    pub stream: Arc<str>,
}

impl HostState {
    /// The places of the next subflow this instance starts.
    pub(super) fn subflow_place(&mut self) -> wasmtime::Result<SubflowPlace> {
        let journal = self.journal.as_mut().ok_or_else(|| protocol_error("flow.invoke needs a running flow"))?;
        Ok(SubflowPlace { answer: journal.reserve(), stream: journal.next_subflow_stream() })
    }
}

/// Run one subflow in a fresh instance under a `subflow` span. An unknown
/// flow or an input its declaration refuses is an answer (no span, no
/// instance); a trap, such as a quota, is the whole run's and stops the caller.
pub(super) async fn run_subflow(
    run: Arc<RunShared>,
    caller: SubflowCaller,
    call: InvokeRequest,
    place: SubflowPlace,
) -> wasmtime::Result<SubflowAnswer> {
    let input_sha256 = digest(&call.input_json);
    let requested = call.flow.clone();
    // A replay runs the subflow again, its instance answered from its own
    // stream of the journal; it must be the original's and end as it did.
    let replayed = match place.answer.replayed("subflow", Some((&requested, &input_sha256))) {
        Some(Ok(entry)) => Some(entry),
        Some(Err(unanswered)) => return Err(unanswered.into()),
        None => None,
    };
    // It runs again the stored version the journal names, even when the
    // library has a newer one by now.
    let pinned = match &replayed {
        Some(Entry::Subflow { version: Some(version), .. }) => Some(*version),
        _ => None,
    };
    let answer = start_subflow(&run, caller, call, place.stream, pinned).await?;
    let (flow, version) = answer.1.unwrap_or((requested, None));
    let answer = answer.0;
    if let Some(Entry::Subflow { version: was_version, outcome: was_outcome, .. }) = replayed {
        let slot = &place.answer;
        let place = format!("answer {} of instance {}", slot.index, slot.stream);
        if was_version != version {
            let versions = |v: Option<u32>| v.map_or("its module's".to_string(), |v| format!("version {v}"));
            return Err(wasmtime::Error::new(ReplayDiverged(format!(
                "the replay diverged at {place}: subflow {flow} ran {}, the original ran {}",
                versions(version),
                versions(was_version)
            ))));
        }
        if was_outcome != answer.outcome {
            return Err(wasmtime::Error::new(ReplayDiverged(format!(
                "the replay diverged at {place}: subflow {flow} ended otherwise than in the original"
            ))));
        }
    }
    let entry = Entry::Subflow {
        flow,
        version,
        input_sha256,
        outcome: answer.outcome.clone(),
        duration_us: answer.duration_us,
    };
    place.answer.write(&run, &entry).map_err(wasmtime::Error::new)?;
    run.journal_stored().await?;
    Ok(answer)
}

/// The answer, and the flow and version that ran (None when refused).
type Started = (SubflowAnswer, Option<(String, Option<u32>)>);

async fn start_subflow(
    run: &Arc<RunShared>,
    caller: SubflowCaller,
    call: InvokeRequest,
    stream: Arc<str>,
    pinned: Option<u32>,
) -> wasmtime::Result<Started> {
    let refused = |error: ErrorInfo| {
        (SubflowAnswer { outcome: Err(error.to_json_string()), span_id: None, duration_us: 0 }, None)
    };
    let resolver = run.env.flows.clone();
    // Looking a flow up is host work done for the run: charged to its CPU.
    let looking = Instant::now();
    let resolved = match pinned {
        // `name@3` is version 3 of a stored flow.
        Some(version) => {
            let name = call.flow.rsplit_once('@').map_or(call.flow.as_str(), |(name, _)| name);
            resolver.resolve(&format!("{name}@{version}")).await
        }
        None => resolver.resolve(&call.flow).await,
    };
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
        let mut attrs = Map::from_iter([("input".to_string(), input)]);
        // Which module the spans under this one ran in: a stored version
        // (the page shows its source at their lines), or the run's own.
        if let Some(version) = callee.version {
            attrs.insert("flow_version".to_string(), json!(version));
        }
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
        stream,
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
    let ran = Some((callee.info.name.clone(), callee.version));
    Ok((SubflowAnswer { outcome: answer, span_id: Some(span_id), duration_us }, ran))
}
