//! What a run can reach through its host functions: services to call and
//! flows to invoke. The sandbox only knows these traits; the CLI and the
//! server decide what stands behind them.

use super::quotas::QuotaExceeded;
use crate::flowdef::{FlowInfo, ModuleError};
use crate::trace::ErrorInfo;
use serde_json::{Value, json};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a service call failed; becomes the `err` of the `rpc-call` host
/// function and the `error` of the `rpc` span.
#[derive(Clone, Debug, PartialEq)]
pub enum CallFailure {
    UnknownService {
        service: String,
        known: Vec<String>,
    },
    UnknownMethod {
        service: String,
        method: String,
        known: Vec<String>,
    },
    PermissionDenied {
        service: String,
        allowed: Vec<String>,
    },
    InvalidParams(String),
    /// A built-in refused what the calling flow has no capability for.
    NotAllowed(String),
    /// The service answered with a JSON-RPC error.
    Rpc {
        code: i64,
        message: String,
        data: Value,
    },
    Transport(String),
    Timeout {
        after_ms: u64,
    },
    /// Work done for the call on the run's behalf (describing a module in
    /// its own instance) ran out of one of the run's quotas: the run ends.
    QuotaExceeded(QuotaExceeded),
}

impl CallFailure {
    /// The error the calling flow sees (raised as the `services` exception
    /// of the same name) and its span keeps.
    pub fn to_error(&self, service: &str, method: &str) -> ErrorInfo {
        let target = format!("{service}.{method}");
        let (kind, message, extra) = match self {
            CallFailure::UnknownService { service, known } => (
                "UnknownService",
                if known.is_empty() {
                    format!("unknown service '{service}': no services are registered")
                } else {
                    format!("unknown service '{service}' (registered: {})", known.join(", "))
                },
                json!({}),
            ),
            CallFailure::UnknownMethod { service, method, known } => (
                "UnknownMethod",
                format!("service '{service}' has no method '{method}' (its methods: {})", known.join(", ")),
                json!({}),
            ),
            CallFailure::PermissionDenied { service, allowed } => (
                "PermissionDenied",
                format!(
                    "this flow may not call service '{service}' (it may call: {})",
                    if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") }
                ),
                json!({}),
            ),
            CallFailure::InvalidParams(message) => ("InvalidParams", format!("{target}: {message}"), json!({})),
            CallFailure::NotAllowed(message) => ("PermissionDenied", format!("{target}: {message}"), json!({})),
            CallFailure::Rpc { code, message, data } => {
                ("RpcError", message.clone(), json!({"code": code, "data": data}))
            }
            CallFailure::Transport(message) => ("ServiceUnavailable", format!("{target}: {message}"), json!({})),
            CallFailure::Timeout { after_ms } => {
                ("Timeout", format!("{target} did not answer within {after_ms} ms"), json!({}))
            }
            CallFailure::QuotaExceeded(exceeded) => ("QuotaExceeded", exceeded.to_string(), json!({})),
        };
        let mut error = ErrorInfo::new(kind, message);
        if let Value::Object(extra) = extra {
            error.extra = extra;
        }
        error
    }
}

/// Who is calling a service: services scoped per flow (`kv`) need to know,
/// and built-ins that load modules do it through the run.
#[derive(Clone, Copy)]
pub struct CallContext<'a> {
    pub run_id: &'a str,
    /// The flow whose code made the call (a subflow's own name inside it).
    pub flow: &'a str,
    /// The flows from the run's root down to `flow`: a built-in gives a
    /// capability only when every one of them holds it, so a flow cannot
    /// borrow one by invoking a flow that holds it.
    pub chain: &'a [String],
    /// The services `flow` may call in this run.
    pub allowed: &'a [String],
    /// The calling run: what a built-in does for it is charged to it.
    pub run: &'a dyn CallingRun,
    /// The call's `Idempotency-Key`: the run, the instance and the call's
    /// place in its journal, the same on every replay of the run.
    pub call_key: &'a str,
    /// The calling run's workspace.
    pub workspace: &'a str,
    /// The call's own span, which a callee's spans go under
    /// (`traceparent`).
    pub span_id: u64,
}

/// The run a built-in works for: the instances it causes and the bytes it
/// makes the store keep are the run's, under the run's quotas.
pub trait CallingRun: Send + Sync {
    /// Load a module to report its flows, in an instance of this run (its
    /// memory, CPU and wall time). `Err` only when the run ran out of a
    /// quota doing it (the run ends); a module that does not load is
    /// `Ok(Err(..))`, an answer.
    fn describe<'a>(
        &'a self,
        source: &'a str,
    ) -> BoxFuture<'a, Result<Result<Vec<FlowInfo>, ModuleError>, QuotaExceeded>>;

    /// Count `bytes` the store will keep for this run (a saved module, a kv
    /// value) against its `stored_bytes` quota.
    fn keep(&self, bytes: usize) -> Result<(), QuotaExceeded>;

    /// Count `flows` saved through `flows.save` in the run's usage, unless
    /// that would make more than `limit`: then the number saved so far.
    fn count_flows_saved(&self, flows: u64, limit: u64) -> Result<(), u64>;

    /// Take back `flows` counted by `count_flows_saved` that were not saved.
    fn flows_not_saved(&self, flows: u64);
}

/// Calls registered services on behalf of a run.
pub trait ServiceCaller: Send + Sync {
    fn call<'a>(
        &'a self,
        context: CallContext<'a>,
        service: &'a str,
        method: &'a str,
        params: Value,
    ) -> BoxFuture<'a, Result<Value, CallFailure>>;
}

/// No services at all: every call is an unknown service.
pub struct NoServices;

impl ServiceCaller for NoServices {
    fn call<'a>(
        &'a self,
        _context: CallContext<'a>,
        service: &'a str,
        _method: &'a str,
        _params: Value,
    ) -> BoxFuture<'a, Result<Value, CallFailure>> {
        Box::pin(async move { Err(CallFailure::UnknownService { service: service.to_string(), known: Vec::new() }) })
    }
}

/// A flow that `flow.invoke` can start: its module's source and what it declares.
#[derive(Clone, Debug)]
pub struct ResolvedFlow {
    pub source: Arc<str>,
    pub info: FlowInfo,
    /// The stored version it is, or None for a flow of the run's own module
    /// (its subflow span then says so, and the page shows the right source).
    pub version: Option<u32>,
}

/// Finds flows by name for `flow.invoke`.
pub trait FlowResolver: Send + Sync {
    fn resolve<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Option<ResolvedFlow>>;
    /// The first `limit` names it knows, in order, for the "unknown flow"
    /// message (bounded: a library may hold a hundred thousand).
    fn names(&self, limit: usize) -> BoxFuture<'_, Vec<String>>;
}

/// The flows of one module: what `hero_logic run FILE.py` can invoke.
pub struct ModuleFlows {
    pub source: Arc<str>,
    pub flows: Vec<FlowInfo>,
}

impl ModuleFlows {
    pub fn find(&self, name: &str) -> Option<ResolvedFlow> {
        let info = self.flows.iter().find(|f| f.name == name)?;
        Some(ResolvedFlow { source: self.source.clone(), info: info.clone(), version: None })
    }
}

impl FlowResolver for ModuleFlows {
    fn resolve<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Option<ResolvedFlow>> {
        Box::pin(async move { self.find(name) })
    }

    fn names(&self, limit: usize) -> BoxFuture<'_, Vec<String>> {
        Box::pin(async move {
            let mut names: Vec<String> = self.flows.iter().map(|f| f.name.clone()).collect();
            names.sort();
            names.truncate(limit);
            names
        })
    }
}

/// Everything a run can reach besides its own memory.
#[derive(Clone)]
pub struct RunEnv {
    pub services: Arc<dyn ServiceCaller>,
    pub flows: Arc<dyn FlowResolver>,
    /// When set, the run may call only these services, even where a flow
    /// declares more: a request can narrow what its flows may call, never widen it.
    pub narrow_services: Option<Vec<String>>,
    /// Where the run's journal goes; None keeps none (`hero_logic run`).
    pub journal: Option<Arc<dyn super::journal::JournalSink>>,
    /// For a replay, the journal of the run it replays, which answers every
    /// host call in place of services, subflows' lookups, clocks and random.
    pub replay: Option<Arc<super::journal::Replay>>,
    /// The workspace the run acts in: what the built-ins read and change
    /// for it is that workspace's.
    pub workspace: Arc<str>,
}

impl RunEnv {
    /// The services a flow declaring `declared` may call in this run.
    /// `"*"` among a flow's declared services allows any service.
    pub fn allowed_services(&self, declared: &[String]) -> Vec<String> {
        match &self.narrow_services {
            Some(narrow) if declared.iter().any(|s| s == "*") => narrow.clone(),
            Some(narrow) => declared.iter().filter(|s| narrow.contains(s)).cloned().collect(),
            None => declared.to_vec(),
        }
    }

    /// Nothing to call and nothing to invoke.
    pub fn isolated() -> RunEnv {
        RunEnv {
            services: Arc::new(NoServices),
            flows: Arc::new(ModuleFlows { source: Arc::from(""), flows: Vec::new() }),
            narrow_services: None,
            journal: None,
            replay: None,
            workspace: Arc::from(crate::tenancy::DEFAULT_WORKSPACE),
        }
    }
}
