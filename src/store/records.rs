//! What the store keeps, as the API serves it: the same records whichever
//! database holds them.

use crate::flowdef::FlowInfo;
use crate::sandbox::{Quotas, Usage};
use crate::trace::{ErrorInfo, Status};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One run, whatever its state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub flow: String,
    /// The stored version that ran; None for source sent from the editor.
    pub version: Option<u32>,
    pub source_sha256: String,
    pub status: Status,
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<ErrorInfo>,
    pub usage: Option<Usage>,
    pub quotas: Quotas,
    pub created_us: i64,
    pub start_us: Option<i64>,
    pub end_us: Option<i64>,
    /// The seq of the run's last event (`run_finished`), 0 while it runs.
    pub last_seq: u64,
    /// The node that executes (or executed) the run; None while it waits.
    pub node: Option<String>,
    /// What started it. Runs stored before triggers were kept read as `api`.
    #[serde(default)]
    pub trigger: Trigger,
    /// Which attempt of a flow's retries this run is: 1 for the first.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// The run of attempt 1 (this run's own id when it is that run).
    #[serde(default)]
    pub first_run_id: String,
    /// The run this one replays from its journal (its trigger says so too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_of: Option<String>,
    /// `@flow(durable=True)`: a server that dies with the run in hand does
    /// not end it `interrupted`; the run is resumed from its journal.
    #[serde(default)]
    pub durable: bool,
    /// How many times the run was resumed after the server running it died.
    #[serde(default)]
    pub resumes: u32,
    /// The workspace it runs in: its flows, services, secrets and `kv`
    /// are that workspace's, and only that workspace's callers see it.
    #[serde(default = "default_workspace")]
    pub workspace: String,
}

fn default_workspace() -> String {
    crate::tenancy::DEFAULT_WORKSPACE.to_string()
}

fn first_attempt() -> u32 {
    1
}

impl Trigger {
    /// The trigger as flow code may read it (`runs.recent`): a webhook's id
    /// is a bearer credential that starts runs, so a flow sees only its
    /// fingerprint, which names the hook without opening it.
    pub fn shown_to_flows(&self) -> Value {
        match self {
            Trigger::Webhook { hook_id } => {
                serde_json::json!({"kind": "webhook", "hook_fingerprint": hook_fingerprint(hook_id)})
            }
            other => serde_json::to_value(other).expect("a trigger is plain JSON"),
        }
    }

    /// The run a replay replays.
    pub fn replay_of(&self) -> Option<String> {
        match self {
            Trigger::Replay { replay_of } => Some(replay_of.clone()),
            _ => None,
        }
    }
}

impl RunRecord {
    /// The run's input as the keyword arguments it was called with (an
    /// input stored as anything but an object, as none).
    pub fn input_object(&self) -> serde_json::Map<String, Value> {
        match &self.input {
            Value::Object(input) => input.clone(),
            _ => serde_json::Map::new(),
        }
    }

    /// `first_run_id` as stored: only for the attempts after the first.
    pub(crate) fn first_run_id_if_not_own(&self) -> Option<&str> {
        (self.first_run_id != self.run_id && !self.first_run_id.is_empty()).then_some(self.first_run_id.as_str())
    }
}

/// What started a run, kept with it: `{"kind": "api"}`,
/// `{"kind": "webhook", "hook_id"}`, `{"kind": "schedule", "schedule_id",
/// "tick_us"}`, `{"kind": "retry", "retry_of"}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    /// `POST /api/runs` (the page, the API, a re-run).
    #[default]
    Api,
    /// `POST /hooks/{hook_id}`.
    Webhook { hook_id: String },
    /// A schedule's tick: the time it was due (microseconds since the epoch).
    Schedule { schedule_id: String, tick_us: i64 },
    /// `@flow(retries=…)`: the next attempt after run `retry_of` ended badly.
    Retry { retry_of: String },
    /// `POST /api/runs/{id}/replay`: run `replay_of` again from its journal.
    Replay { replay_of: String },
}

/// A schedule: runs of a flow at the times a cron pattern names.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredSchedule {
    pub schedule_id: String,
    pub flow: String,
    /// 5 fields, or 6 with seconds first, read in `timezone`.
    pub cron: String,
    /// The input of every run it starts.
    pub input: Value,
    /// The IANA time zone the pattern is read in (`UTC` unless one was given).
    pub timezone: String,
    /// When it is next due; claimed by moving it on (`claim_tick`).
    pub next_us: i64,
    pub created_us: i64,
}

/// Which finished runs a prune removes, at most `batch` of them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pruning {
    /// Those older than the newest this many runs (by creation).
    pub keep_newest: Option<u64>,
    /// Those that ended before this time.
    pub ended_before_us: Option<i64>,
    pub batch: u32,
}

/// Hex digits of a webhook's fingerprint: enough to tell a flow's hooks
/// apart, and a one-way digest, so it says nothing of the id.
const HOOK_FINGERPRINT_CHARS: usize = 12;

/// What flows see of a webhook's id (and the hooks API shows beside it, so
/// the operator can tell which hook a flow means): the first hex digits of
/// the id's SHA-256.
pub fn hook_fingerprint(hook_id: &str) -> String {
    let mut digest = sha256_hex(hook_id);
    digest.truncate(HOOK_FINGERPRINT_CHARS);
    digest
}

/// A webhook: an unguessable id that starts runs of one flow.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredHook {
    pub hook_id: String,
    pub flow: String,
    pub created_us: i64,
}

/// What a node needs to start a run another node accepted into the shared
/// queue, beside the run's record and source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Launch {
    /// The flow as its module declares it.
    pub info: FlowInfo,
    /// The request's narrowing of the services its flows may call.
    pub narrow_services: Option<Vec<String>>,
    /// For source sent from the editor, the flows its module declares.
    pub module: Option<Vec<FlowInfo>>,
    /// The client (its address, an IPv6 /64 as its prefix) that asked for
    /// the run: its retries count against that client's share of the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<std::net::IpAddr>,
}

/// The next attempt of a run that ended badly, waiting for its time.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingRetry {
    /// The attempt that ended badly.
    pub run_id: String,
    /// When the next attempt is due (microseconds since the epoch).
    pub due_us: i64,
    /// How to start it (the flow as declared, the services it may call).
    pub launch: Launch,
}

/// One entry of a run's journal: entry `index` of an instance's `stream`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JournalRow {
    pub stream: String,
    pub index: u32,
    pub entry: Value,
}

/// A next attempt found due: the attempt before it, and how to start it.
#[derive(Clone, Debug, PartialEq)]
pub struct DueRetry {
    pub run_id: String,
    pub due_us: i64,
    pub launch: Launch,
}

/// A run asking for a place among the `limit` its flow's concurrency limit
/// allows for `slot_key` (one value of the key input; "" without a key).
/// Places are given in the order runs were created.
#[derive(Clone, Debug, PartialEq)]
pub struct SlotClaim {
    pub run_id: String,
    pub flow: String,
    pub slot_key: String,
    pub limit: u32,
    pub created_us: i64,
}

/// A run taken from the shared queue: its record (now this node's), what
/// it runs, and how to start it.
#[derive(Clone, Debug)]
pub struct ClaimedRun {
    pub run: RunRecord,
    pub source: String,
    pub launch: Launch,
}

/// One stored version of a flow.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredFlow {
    pub name: String,
    pub version: u32,
    pub source: String,
    pub source_sha256: String,
    pub info: FlowInfo,
    pub created_us: i64,
}

/// What an upload did to one flow.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SavedFlow {
    pub name: String,
    pub version: u32,
    /// False when the flow's source was already the latest version.
    pub created: bool,
}

/// What removing a flow removed, in one transaction: its versions and
/// every trigger made for it, so none outlives it to start another flow
/// stored later under the same name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct FlowRemoved {
    pub versions_removed: usize,
    pub hooks_removed: usize,
    pub schedules_removed: usize,
}

/// A flow in the library list: its latest version.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowSummary {
    pub name: String,
    pub version: u32,
    pub description: Option<String>,
    pub info: FlowInfo,
    pub created_us: i64,
    pub versions: u32,
    pub last_run_status: Option<Status>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowVersion {
    pub version: u32,
    pub source_sha256: String,
    pub created_us: i64,
}

pub use crate::text::sha256_hex;

/// Who stores a module: the operator (upload, command line, built-ins), who
/// may replace any flow, or a flow through `flows.save`, which may replace
/// only flows it stored itself and add new ones within a bound.
#[derive(Clone, Debug, PartialEq)]
pub enum Saver {
    Operator,
    Flow(String, SavedFlowsBound),
}

impl Saver {
    /// The `saved_by` column: None for the operator.
    pub(crate) fn flow(&self) -> Option<&str> {
        match self {
            Saver::Operator => None,
            Saver::Flow(name, _) => Some(name),
        }
    }
}

/// How many flows flow code may keep in the library through `flows.save`,
/// so a run cannot fill it (each new name also has its own `kv` allowance):
/// flow names each saving flow stored, and those all flows stored together.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SavedFlowsBound {
    pub per_flow: u64,
    /// `serve --max-saved-flows`.
    pub library: u64,
}

/// Why a flow's `flows.save` stored nothing.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum SaveRefused {
    /// The module would replace a flow the saving flow did not store.
    #[error("'{name}' was not stored by flow '{saver}', so it may not replace it")]
    NotOwner { name: String, saver: String },
    /// The module's new flows would take the saving flow (or flow code as a
    /// whole) past `SavedFlowsBound`.
    #[error("{}", full_message(.saver, *.held, *.adding, *.limit, *.whole_library))]
    Full { saver: String, held: u64, adding: u64, limit: u64, whole_library: bool },
}

fn full_message(saver: &str, held: u64, adding: u64, limit: u64, whole_library: bool) -> String {
    if whole_library {
        format!(
            "flows have stored {held} flows in the library through flows.save, this module adds {adding} new ones, \
             and the library holds at most {limit} of them (--max-saved-flows)"
        )
    } else {
        format!(
            "flow '{saver}' has stored {held} flows through flows.save, this module adds {adding} new ones, \
             and one flow may store at most {limit}: remove some of them first"
        )
    }
}

impl SavedFlowsBound {
    /// Whether `adding` new flow names fit beside the `own` names `saver`
    /// stored and the `all` names flows stored together.
    pub(crate) fn check(&self, saver: &str, own: u64, all: u64, adding: u64) -> Result<(), SaveRefused> {
        let full = |held, limit, whole_library| SaveRefused::Full {
            saver: saver.to_string(),
            held,
            adding,
            limit,
            whole_library,
        };
        if own + adding > self.per_flow {
            return Err(full(own, self.per_flow, false));
        }
        if all + adding > self.library {
            return Err(full(all, self.library, true));
        }
        Ok(())
    }
}

/// Which runs to list, newest first.
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    /// Runs of exactly this flow.
    pub flow: Option<String>,
    /// Runs of flows whose name holds this, in any case (ASCII letters).
    pub flow_contains: Option<String>,
    pub status: Option<Status>,
    /// Only runs created before this time (the previous page's `next`).
    pub before_us: Option<i64>,
    /// The attempts of one run: that run and its retries.
    pub first_run_id: Option<String>,
    /// Runs of this workspace only (None: every workspace's, for the
    /// server's own uses).
    pub workspace: Option<String>,
    pub limit: u32,
}

/// One time a flow ran as a subflow: the run it ran in and its `subflow` span.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SubflowRun {
    pub run_id: String,
    pub span_id: u64,
    pub status: Status,
    pub start_us: i64,
    pub end_us: i64,
}

/// A registered JSON-RPC service.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredService {
    pub name: String,
    pub url: String,
    /// Its OpenRPC document.
    pub document: Value,
    pub timeout_ms: u64,
    pub created_us: i64,
    /// Headers added to each call, by name: templates that may name secrets
    /// (`Bearer {{secret:NAME}}`), never their values.
    pub headers: BTreeMap<String, String>,
}

/// A secret as the store keeps it: sealed with the node's key, so the
/// database (its file, a backup, a replica) never holds the value.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredSecret {
    pub name: String,
    /// Which key sealed it (the first bytes of the key's SHA-256), so a node
    /// given another key says so instead of failing to open it.
    pub key_id: String,
    pub nonce: Vec<u8>,
    /// The value, encrypted and authenticated with the name as associated data.
    pub sealed: Vec<u8>,
    pub created_us: i64,
    pub updated_us: i64,
}

/// A `kv` write refused: the flow would hold more than its limit.
#[derive(Debug, PartialEq)]
pub struct KvFull {
    pub held: u64,
    pub wanted: u64,
    pub limit: u64,
}

impl KvFull {
    /// Whether a write taking a flow from `held` to `after` bytes is refused:
    /// only one that grows past the limit (a shrinking write always goes).
    pub(crate) fn check(held: u64, after: u64, limit: u64) -> Result<(), KvFull> {
        if after > limit && after > held { Err(KvFull { held, wanted: after - held, limit }) } else { Ok(()) }
    }
}

/// One hit of a library search.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SearchHit {
    pub name: String,
    pub version: u32,
    pub description: Option<String>,
    /// Relevance: higher is better.
    pub score: f64,
    pub snippet: String,
}
