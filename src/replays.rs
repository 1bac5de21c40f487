//! What replaying an ended run needs, found in the store: the run, its
//! journal, the module to run (its own source, or a changed one), the flow
//! as that module declares it, and where its subflows are found. The API
//! (`POST /api/runs/{id}/replay`) and the command line (`hero_logic
//! replay`) both start here.

use crate::flowdef::{FlowInfo, ModuleError};
use crate::library::pick_flow;
use crate::sandbox::{ModuleFlows, Quota, Quotas, Replay};
use crate::store::{RunRecord, Store};
use crate::trace::Status;
use std::sync::Arc;

/// A replay ready to start.
pub struct ReplayPlan {
    /// The run replayed.
    pub run: RunRecord,
    pub journal: Replay,
    pub source: Arc<str>,
    pub info: FlowInfo,
    /// The stored version replayed; None for source (the run's own from the
    /// editor, or a changed module).
    pub version: Option<u32>,
    /// For source, its module's flows, which subflows find first; a stored
    /// version's subflows are found in the library, as they were.
    pub module: Option<ModuleFlows>,
}

/// Why a run cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayRefused {
    #[error("no run with id '{0}'")]
    NoSuchRun(String),
    #[error("run '{0}' is {1}; a run is replayed once it has ended")]
    NotEnded(String, Status),
    #[error("run '{0}' cannot be replayed: {1}")]
    Unreadable(String, String),
    /// The module does not load.
    #[error("{0}")]
    Module(ModuleError),
    /// The module does not declare the run's flow.
    #[error("the source {0}")]
    NoSuchFlow(String),
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

/// The `journal_bytes` limit a run ended on, if it ended on that quota.
fn journal_quota_it_ended_on(run: &RunRecord) -> Option<u64> {
    let error = run.error.as_ref().filter(|_| run.status == Status::QuotaExceeded)?;
    error.limit.filter(|_| error.quota.as_deref() == Some(Quota::JournalBytes.name()))
}

/// Find what replaying run `run_id` needs; `changed` is a module to replay
/// in place of the run's, `describe` how modules are loaded here.
pub async fn plan(
    store: &Store,
    run_id: &str,
    changed: Option<String>,
    describe: impl AsyncFnOnce(&str, &Quotas) -> Result<Vec<FlowInfo>, ModuleError>,
) -> Result<ReplayPlan, ReplayRefused> {
    let run = store.run(run_id).await?.ok_or_else(|| ReplayRefused::NoSuchRun(run_id.to_string()))?;
    if !run.status.is_final() {
        return Err(ReplayRefused::NotEnded(run_id.to_string(), run.status));
    }
    let rows = store.journal(run_id).await?;
    let rows = rows.into_iter().map(|row| (row.stream, row.index, row.entry)).collect();
    let mut journal = Replay::new(run_id.to_string(), rows)
        .map_err(|problem| ReplayRefused::Unreadable(run_id.to_string(), problem))?;
    // The answer it ran out of journal on was never written: the replay
    // stops there as it did, not as a divergence.
    if let Some(limit) = journal_quota_it_ended_on(&run) {
        journal = journal.ended_on_journal_quota(limit);
    }
    let is_changed = changed.is_some();
    let source: Arc<str> =
        match changed {
            Some(source) => Arc::from(source),
            None => Arc::from(store.source(&run.source_sha256).await?.ok_or_else(|| {
                ReplayRefused::Unreadable(run_id.to_string(), "its source is no longer stored".into())
            })?),
        };
    let flows = describe(&source, &run.quotas).await.map_err(ReplayRefused::Module)?;
    let info = pick_flow(&flows, Some(&run.flow)).cloned().map_err(|e| ReplayRefused::NoSuchFlow(e.to_string()))?;
    let version = run.version.filter(|_| !is_changed);
    let module = version.is_none().then(|| ModuleFlows { source: source.clone(), flows });
    Ok(ReplayPlan { run, journal, source, info, version, module })
}
