//! The sandbox: CPython compiled to WebAssembly, run in wasmtime with a fresh
//! instance per run and the host functions of `runtime/wit/flow.wit` as its
//! only doors out.
//!
//! `Sandbox::describe` reports the flows a module declares; `Sandbox::run`
//! runs one, records its spans through the run's event sink, journals every
//! answer the host gives it (`journal`, `journal_wasi`), enforces its
//! quotas and returns a `RunReport`.

mod bounds;
mod described;
mod engine;
mod env;
mod host;
mod instance;
mod journal;
mod journal_wasi;
mod quotas;
mod rpc;
mod run;
mod state;
mod subflow;

pub use bounds::{ATTR_MAX_BYTES, NAME_MAX_BYTES, clip_str};
pub use engine::{
    EngineOptions, GUEST_COMPONENT, GUEST_SOURCE_HASH, WASMTIME_VERSION, artefact_path, default_cache_dir,
};
pub use env::{
    BoxFuture, CallContext, CallFailure, CallingRun, FlowResolver, ModuleFlows, NoServices, ResolvedFlow, RunEnv,
    ServiceCaller,
};
pub use journal::{Entry as JournalEntry, JournalSink, Replay, ReplayDiverged, RpcOutcome};
pub use quotas::{FlagUnit, MIB, QUOTAS, Quota, QuotaDef, QuotaExceeded, Quotas, Usage};
pub use run::{RunReport, RunRequest};
pub use state::MAX_EVENTS_AHEAD;

use crate::flowdef::{FlowInfo, ModuleError};
use anyhow::Result;
use engine::PoolKind;
use instance::{GuestCall, Outcome, run_guest};
use state::{HostState, InstancePool, Role, RunShared, SandboxCore};
use std::path::PathBuf;
use std::sync::Arc;
use wasmtime::Engine;
use wasmtime::component::{Component, HasSelf, Linker};

/// The generated bindings stay private: the rest of the crate sees plain types.
mod bindings {
    wasmtime::component::bindgen!({
        path: "runtime/wit",
        world: "flow-guest",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

/// How to set up a `Sandbox`.
#[derive(Clone, Debug, Default)]
pub struct SandboxOptions {
    pub engine: EngineOptions,
    /// Where compiled guest artefacts are cached; None compiles on every start.
    pub cache_dir: Option<PathBuf>,
}

/// The engine, the compiled guest and the epoch ticker. Cheap to clone;
/// create one per process.
#[derive(Clone)]
pub struct Sandbox {
    core: Arc<SandboxCore>,
    artefact: Option<PathBuf>,
    described: Arc<described::Described>,
}

impl Sandbox {
    pub fn new(options: &SandboxOptions) -> Result<Sandbox> {
        let cache_dir = options.cache_dir.as_deref();
        let (warm_slots, burst_slots) = options.engine.pool_sizes();
        let warm = engine::build_engine(&options.engine, PoolKind::Warm, warm_slots)?;
        let component = engine::load_guest(&warm, cache_dir)?;
        let artefact = cache_dir.map(|dir| engine::artefact_path(&warm, dir));
        let mut pools = vec![instance_pool(warm, &component, warm_slots)?];
        if burst_slots > 0 {
            let burst = engine::build_engine(&options.engine, PoolKind::Burst, burst_slots)?;
            let again = engine::load_guest_again(&burst, &component, cache_dir)?;
            pools.push(instance_pool(burst, &again, burst_slots)?);
        }
        let ticker = engine::EpochTicker::start(pools.iter().map(|pool| pool.engine.clone()).collect());
        let max_instances = (warm_slots + burst_slots) as usize;
        let instance_slots = tokio::sync::Semaphore::new(max_instances);
        let core = Arc::new(SandboxCore {
            pools,
            instance_slots,
            max_instances,
            instances_started: Default::default(),
            _ticker: ticker,
        });
        Ok(Sandbox { core, artefact, described: Default::default() })
    }

    /// Instances alive right now (runs, subflows, module checks).
    pub fn instances_alive(&self) -> usize {
        self.core.max_instances - self.core.instance_slots.available_permits()
    }

    /// Instances started since this sandbox was made.
    pub fn instances_started(&self) -> u64 {
        self.core.instances_started.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Where this sandbox's compiled guest is cached, if it uses a cache.
    pub fn artefact_path(&self) -> Option<&std::path::Path> {
        self.artefact.as_deref()
    }

    /// The flows `source` declares, found by loading it in a fresh instance
    /// under `quotas` (it is untrusted code like any other), or remembered
    /// from loading the same source lately.
    pub async fn describe(&self, source: &str, quotas: &Quotas) -> Result<Vec<FlowInfo>, ModuleError> {
        refuse_empty(source)?;
        let key = described::Described::key(source);
        if let Some(flows) = self.described.get(&key) {
            return Ok(flows.to_vec());
        }
        let described = self.describe_in_an_instance(source, quotas).await;
        if let Ok(flows) = &described {
            self.described.keep(key, flows);
        }
        described
    }

    async fn describe_in_an_instance(&self, source: &str, quotas: &Quotas) -> Result<Vec<FlowInfo>, ModuleError> {
        let (sink, _events) = tokio::sync::mpsc::unbounded_channel();
        let recorder = crate::trace::Recorder::new("describe".into(), sink);
        let shared = Arc::new(RunShared::new(quotas.clone(), RunEnv::isolated(), self.core.clone(), recorder, None));
        let call = GuestCall::Describe { source: Arc::from(source) };
        tokio::select! {
            outcome = run_guest(shared, Role::Describe, call) => described(outcome),
            _ = tokio::time::sleep(quotas.wall_time()) => {
                Err(sandbox_error("TimedOut", format!("loading the module took longer than {} ms", quotas.wall_time_ms)))
            }
        }
    }
}

/// A pool of `slots` instances of `component` in `engine`, with the host
/// functions linked.
fn instance_pool(engine: Engine, component: &Component, slots: u32) -> Result<InstancePool> {
    let mut linker = Linker::<HostState>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    journal_wasi::add_to_linker(&mut linker)?;
    bindings::FlowGuest::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
    let pre = bindings::FlowGuestPre::new(linker.instantiate_pre(component)?)?;
    Ok(InstancePool { engine, pre, free_slots: tokio::sync::Semaphore::new(slots as usize) })
}

/// The refusal of an empty module, before it costs an instance.
pub fn refuse_empty(source: &str) -> Result<(), ModuleError> {
    if source.trim().is_empty() {
        return Err(sandbox_error("EmptyModule", "the module is empty".into()));
    }
    Ok(())
}

/// What a describe call's outcome says about the module.
fn described(outcome: Outcome) -> Result<Vec<FlowInfo>, ModuleError> {
    match outcome {
        Outcome::Returned(json) => {
            let flows: Vec<FlowInfo> = serde_json::from_str(&json).map_err(|e| {
                sandbox_error(
                    "GuestError",
                    format!("the guest described the module in a form the host does not read: {e}"),
                )
            })?;
            // The guest's own checks can be bypassed by the module's code:
            // the host checks what it will store.
            if flows.len() > crate::flowdef::declared_limits::FLOWS_PER_MODULE {
                return Err(sandbox_error("InvalidDeclaration", "a module may declare at most 100 flows".into()));
            }
            for flow in &flows {
                flow.check_declaration().map_err(|problem| sandbox_error("InvalidDeclaration", problem))?;
            }
            Ok(flows)
        }
        Outcome::Raised(error) => Err(ModuleError {
            column: error.extra.get("column").and_then(serde_json::Value::as_u64).map(|c| c as u32),
            kind: error.kind,
            message: error.message,
            line: error.line,
            traceback: error.traceback,
        }),
        Outcome::Trapped(trap) => {
            let error = run::trap_error(&trap).1;
            Err(sandbox_error(&error.kind, format!("loading the module failed: {}", error.message)))
        }
    }
}

fn sandbox_error(kind: &str, message: String) -> ModuleError {
    ModuleError { kind: kind.to_string(), message, line: None, column: None, traceback: None }
}
