//! The host functions of `runtime/wit/flow.wit`, the guest's only doors
//! out: each reads what the guest sent (bounded) and hands it to the part of
//! the sandbox that does the work (`rpc`, `subflow`, the run's recorder).

use super::bindings::hero_logic::flow::host::{CallError, Host, InvokeRequest, RpcRequest, SubflowAnswer};
use super::bounds::{bound_error, clip_attrs, clip_name, parse_attrs, parse_error};
use super::quotas::Quota;
use super::rpc::{Caller, MAX_CONCURRENT_CALLS, ServiceCall, call_service};
use super::state::{HostState, Role, protocol_error};
use super::subflow::{MAX_CONCURRENT_SUBFLOWS, run_subflow};
use crate::trace::{LogStream, SpanKind, Status};
use futures_util::StreamExt;

/// Calls one gather (of services or subflows) may ask for.
pub const MAX_GATHERED: usize = 1000;

impl Host for HostState {
    async fn rpc_call(
        &mut self,
        service: String,
        method: String,
        params_json: String,
        line: Option<u32>,
    ) -> wasmtime::Result<Result<String, CallError>> {
        self.run.keep_pace().await;
        let (Role::Run { flow, allowed, chain, .. }, Some(parent)) = (&self.role, self.current_span()) else {
            return Ok(Err(not_while_describing()));
        };
        let call = ServiceCall::parse(service, method, &params_json, line, &self.run.quotas)?;
        let slot = self.journal.as_mut().expect("a running instance journals").reserve();
        call_service(self.run.clone(), &Caller { flow, allowed, chain }, parent, call, slot).await
    }

    async fn rpc_gather(&mut self, calls: Vec<RpcRequest>) -> wasmtime::Result<Vec<Result<String, CallError>>> {
        self.run.keep_pace().await;
        let (Role::Run { flow, allowed, chain, .. }, Some(parent)) = (&self.role, self.current_span()) else {
            return Ok(calls.iter().map(|_| Err(not_while_describing())).collect());
        };
        let caller = Caller { flow, allowed, chain };
        refuse_large_gather("services.gather", calls.len())?;
        let calls = calls
            .into_iter()
            .map(|c| ServiceCall::parse(c.service, c.method, &c.params_json, c.line, &self.run.quotas))
            .collect::<wasmtime::Result<Vec<_>>>()?;
        // Each call's place in the journal is the order it was asked in.
        let journal = self.journal.as_mut().expect("a running instance journals");
        let slots: Vec<_> = calls.iter().map(|_| journal.reserve()).collect();
        let pending = calls
            .into_iter()
            .zip(slots)
            .map(|(call, slot)| call_service(self.run.clone(), &caller, parent, call, slot));
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
        self.run.keep_pace().await;
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
        self.run.keep_pace().await;
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
        self.run.keep_pace().await;
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
        self.run.keep_pace().await;
        let caller = self.subflow_caller()?;
        let place = self.subflow_place()?;
        Ok(run_subflow(self.run.clone(), caller, InvokeRequest { flow, input_json, line }, place).await?.outcome)
    }

    async fn invoke_gather(
        &mut self,
        calls: Vec<InvokeRequest>,
        concurrency: u32,
    ) -> wasmtime::Result<Vec<SubflowAnswer>> {
        self.run.keep_pace().await;
        let caller = self.subflow_caller()?;
        refuse_large_gather("flow.invoke_many", calls.len())?;
        let concurrency = (concurrency as usize).clamp(1, MAX_CONCURRENT_SUBFLOWS);
        let mut answers: Vec<Option<SubflowAnswer>> = calls.iter().map(|_| None).collect();
        let places = calls.iter().map(|_| self.subflow_place()).collect::<wasmtime::Result<Vec<_>>>()?;
        let run = &self.run;
        let mut running = futures_util::stream::iter(calls.into_iter().zip(places).enumerate())
            .map(|(index, (call, place))| {
                let caller = caller.clone();
                async move { (index, run_subflow(run.clone(), caller, call, place).await) }
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

/// A gather asks for more calls than one host call may carry.
fn refuse_large_gather(what: &str, calls: usize) -> wasmtime::Result<()> {
    if calls > MAX_GATHERED {
        return Err(protocol_error(format!("{what} takes at most {MAX_GATHERED} calls at once, not {calls}")));
    }
    Ok(())
}

fn not_while_describing() -> CallError {
    CallError::NotAvailable("services cannot be called while a module is loaded to be described".into())
}
