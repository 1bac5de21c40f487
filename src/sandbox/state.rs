//! What a sandbox instance owns (`HostState`), what a run's instances share
//! (`RunShared`: the quotas and the run's books, `Ledger`, with its span
//! recorder and usage), and what every instance is made from (`SandboxCore`).
//! These refer to each other, so they live together. Also the limits
//! wasmtime asks the host about: memory, tables, and the epoch tick that
//! counts CPU time.

use super::bindings::FlowGuestPre;
use super::engine::{EpochTicker, TICK};
use super::env::RunEnv;
use super::journal::InstanceJournal;
use super::quotas::{Quota, QuotaExceeded, Quotas, Usage};
use crate::trace::Recorder;
use crate::trace::bus::Committed;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, StoreContextMut, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// A busy guest yields to the async runtime this often, so timers, cancels
/// and other runs on the same thread get their turn.
const YIELD_EVERY_TICKS: u64 = 10;

/// Most events of one run the store may have yet to commit before the
/// run's guest waits: a span is two, so about 2,000 spans. The memory this
/// allows is this many events per run at once (`--max-concurrent` bounds
/// the runs), whatever pace a flow keeps.
pub const MAX_EVENTS_AHEAD: u64 = 4096;

/// A table may not grow past this (CPython needs ~200k function slots).
const MAX_TABLE_ELEMENTS: usize = 262_144;

/// What every instance is made from; shared by all runs of a `Sandbox`.
pub(crate) struct SandboxCore {
    /// The warm pool first, then the burst pool if there is one.
    pub pools: Vec<InstancePool>,
    /// One permit per slot of all pools: an instance waits for a free slot
    /// instead of failing when every pool is full.
    pub instance_slots: tokio::sync::Semaphore,
    /// The permits `instance_slots` was made with.
    pub max_instances: usize,
    /// Counts every instance taken, for whoever watches for idleness.
    pub instances_started: std::sync::atomic::AtomicU64,
    /// Drives CPU accounting, time slices and wall-time checks; lives as long
    /// as anything can still run.
    pub _ticker: EpochTicker,
}

/// One engine's instance pool and the guest ready to instantiate in it.
pub(crate) struct InstancePool {
    pub engine: Engine,
    pub pre: FlowGuestPre<HostState>,
    /// One permit per slot of this pool.
    pub free_slots: tokio::sync::Semaphore,
}

/// The guest broke the host-call protocol (closed a span it does not own,
/// sent malformed JSON, ...). Ends the run as failed; flow code cannot catch it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GuestProtocolError(pub String);

pub(super) fn protocol_error(message: impl Into<String>) -> wasmtime::Error {
    wasmtime::Error::new(GuestProtocolError(message.into()))
}

/// State shared by every instance of one run.
pub(crate) struct RunShared {
    pub quotas: Quotas,
    pub env: RunEnv,
    pub core: Arc<SandboxCore>,
    ledger: Mutex<Ledger>,
    /// What the store has committed of the run's events (none when no
    /// store keeps them, as for the CLI).
    committed: Option<Committed>,
    /// Journal entries handed to the run's sink, and of those, how many are
    /// known stored (counted for durable runs' write-ahead rule).
    journal_appended: AtomicU64,
    journal_stored: AtomicU64,
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
    pub(super) fn charge_host_time(&mut self, quotas: &Quotas, spent: std::time::Duration) -> wasmtime::Result<()> {
        self.host_cpu_us += u64::try_from(spent.as_micros()).unwrap_or(u64::MAX);
        if self.cpu_time_ms() > quotas.cpu_time_ms {
            return Err(wasmtime::Error::new(QuotaExceeded::new(Quota::CpuTime, quotas.cpu_time_ms)));
        }
        Ok(())
    }

    /// Add `amount` to what the run used of a quota the host counts up
    /// (service calls, log bytes, stored bytes). What would go past the
    /// limit is refused, not counted, and ends the run.
    pub(super) fn charge(&mut self, quotas: &Quotas, quota: Quota, amount: u64) -> Result<(), QuotaExceeded> {
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
    pub(super) fn keep(&mut self, quotas: &Quotas, bytes: usize) -> Result<(), QuotaExceeded> {
        self.charge(quotas, Quota::StoredBytes, bytes as u64)
    }

    /// Whether the `spans` quota leaves room for one more span; checked under
    /// the same lock that then opens it (the recorder counts spans).
    pub(super) fn room_for_a_span(&self, quotas: &Quotas) -> wasmtime::Result<()> {
        if self.recorder.spans_started() >= quotas.spans {
            return Err(wasmtime::Error::new(QuotaExceeded::new(Quota::Spans, quotas.spans)));
        }
        Ok(())
    }
}

impl RunShared {
    pub fn new(
        quotas: Quotas,
        env: RunEnv,
        core: Arc<SandboxCore>,
        recorder: Recorder,
        committed: Option<Committed>,
    ) -> RunShared {
        let ledger = Ledger { recorder, usage: Usage::default(), memory_in_use: 0, cpu_ticks: 0, host_cpu_us: 0 };
        RunShared {
            quotas,
            env,
            core,
            ledger: Mutex::new(ledger),
            committed,
            journal_appended: AtomicU64::new(0),
            journal_stored: AtomicU64::new(0),
        }
    }

    /// One more journal entry was handed to the sink.
    pub fn journal_appended(&self) {
        self.journal_appended.fetch_add(1, Ordering::SeqCst);
    }

    /// The write-ahead rule of durable runs: wait until every journal entry
    /// the run has written is stored, before an answer reaches the guest or
    /// a call leaves the host. A crash then loses no answer the run acted
    /// on; at most the calls in flight are made again. Free for other runs
    /// (their sink asks for no wait), and when nothing was written since.
    pub async fn journal_stored(&self) -> wasmtime::Result<()> {
        let Some(sink) = &self.env.journal else { return Ok(()) };
        let appended = self.journal_appended.load(Ordering::SeqCst);
        if self.journal_stored.load(Ordering::SeqCst) >= appended {
            return Ok(());
        }
        let Some(stored) = sink.stored() else { return Ok(()) };
        stored.await.map_err(|why| wasmtime::Error::new(super::journal::JournalNotStored(why)))?;
        self.journal_stored.fetch_max(appended, Ordering::SeqCst);
        Ok(())
    }

    /// Back-pressure: while the store is more than `MAX_EVENTS_AHEAD` of
    /// the run's events behind, wait before making more. Only host
    /// functions called by the guest wait here, so the guest is what slows
    /// down; events the host makes itself (closing spans at the end) are
    /// bounded by the spans open.
    pub async fn keep_pace(&self) {
        let Some(committed) = &self.committed else { return };
        let emitted = self.ledger().recorder.last_seq();
        if emitted > MAX_EVENTS_AHEAD {
            committed.reached(emitted - MAX_EVENTS_AHEAD).await;
        }
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
    /// `stream` names the instance's stream of the run's journal.
    Run { flow: String, depth: u32, allowed: Arc<[String]>, under: u64, chain: Arc<[String]>, stream: Arc<str> },
}

pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub run: Arc<RunShared>,
    pub(super) role: Role,
    /// This instance's linear memory, returned to the run's total on drop.
    memory_bytes: u64,
    /// Step spans this instance opened and has not closed: it may close only
    /// the innermost of them, never a span the host or another instance owns.
    pub(super) open_steps: Vec<u64>,
    /// This instance's stream of the run's journal; None while a module is
    /// only loaded to be described.
    pub(super) journal: Option<InstanceJournal>,
    /// Where the instance's monotonic clock starts.
    pub(super) clock_start: std::time::Instant,
    /// The instance's random stream, once it has asked for random bytes.
    pub(super) random: Option<chacha20::ChaCha20>,
}

impl HostState {
    pub fn new(run: Arc<RunShared>, role: Role) -> HostState {
        // No preopened directories, no environment, no arguments, no network:
        // the host functions are the only doors out.
        let wasi = WasiCtx::builder().allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false).build();
        let journal = match &role {
            Role::Run { stream, .. } => Some(InstanceJournal::new(stream.clone(), run.env.replay.clone())),
            Role::Describe => None,
        };
        HostState {
            wasi,
            table: ResourceTable::new(),
            run,
            role,
            memory_bytes: 0,
            open_steps: Vec::new(),
            journal,
            clock_start: std::time::Instant::now(),
            random: None,
        }
    }

    /// The resource table, for host functions the sandbox defines itself.
    pub(super) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// The answer to an ask of `kind` the host answers itself (a clock, the
    /// random seed, a sleep): when replaying, the original's, else `live`'s;
    /// written in this instance's next place in the journal either way
    /// (while a module is only described, `live`'s, not journaled).
    pub(super) fn answer(
        &mut self,
        kind: &'static str,
        live: impl FnOnce() -> super::journal::Entry,
    ) -> wasmtime::Result<super::journal::Entry> {
        let Some(journal) = &mut self.journal else { return Ok(live()) };
        let slot = journal.reserve();
        let entry = match slot.replayed(kind, None) {
            Some(replayed) => replayed.map_err(wasmtime::Error::from)?,
            None => live(),
        };
        slot.write(&self.run, &entry).map_err(wasmtime::Error::new)?;
        Ok(entry)
    }

    /// Whether this instance's next answer comes from a journal (a replay,
    /// or a resume that has not yet gone past what its journal holds).
    pub(super) fn next_is_replayed(&self) -> bool {
        self.journal.as_ref().is_some_and(|journal| journal.next_is_replayed())
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

    pub(super) fn running_depth(&self, what: &str) -> wasmtime::Result<u32> {
        match self.role {
            Role::Run { depth, .. } => Ok(depth),
            Role::Describe => Err(protocol_error(format!(
                "{what} is only available while a flow runs, not while its module is loaded to be described"
            ))),
        }
    }

    /// The span this instance's next span, service call or log line goes
    /// under: its innermost open step, else the span it runs under.
    pub(super) fn current_span(&self) -> Option<u64> {
        match self.role {
            Role::Run { under, .. } => Some(self.open_steps.last().copied().unwrap_or(under)),
            Role::Describe => None,
        }
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
