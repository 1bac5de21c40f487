//! Retention: finished runs past `--retain-runs` (the newest N kept) or
//! `--retain-days` are removed with their spans and logs, a small batch
//! per transaction with a pause between, so the writer (and the runs it
//! serves) never waits long behind a prune.

use crate::store::{Pruning, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Runs removed per transaction.
const BATCH_RUNS: u32 = 50;
/// The pause between two batches, so writes queued meanwhile go first.
const BETWEEN_BATCHES: Duration = Duration::from_millis(20);
/// How often the store is looked at for runs to remove.
const EVERY: Duration = Duration::from_secs(2);
const US_PER_DAY: i64 = 86_400_000_000;

/// What to keep; `None` for both keeps everything (the default).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Retention {
    /// Keep at most the newest this many runs (unfinished ones are never removed).
    pub runs: Option<u64>,
    /// Remove finished runs that ended more than this many days ago.
    pub days: Option<u32>,
}

impl Retention {
    pub fn keeps_everything(&self) -> bool {
        self.runs.is_none() && self.days.is_none()
    }

    fn pruning(&self, now_us: i64) -> Pruning {
        Pruning {
            keep_newest: self.runs,
            ended_before_us: self.days.map(|days| now_us - i64::from(days) * US_PER_DAY),
            batch: BATCH_RUNS,
        }
    }
}

/// Prune now and every few seconds until `stop` is cancelled.
pub fn spawn(store: Arc<Store>, retention: Retention, stop: CancellationToken) {
    if retention.keeps_everything() {
        return;
    }
    tokio::spawn(async move {
        loop {
            if let Err(error) = prune(&store, retention, &stop).await {
                tracing::warn!(error = format!("{error:#}"), "pruning old runs failed; trying again later");
            }
            tokio::select! {
                _ = tokio::time::sleep(EVERY) => {}
                _ = stop.cancelled() => return,
            }
        }
    });
}

/// Remove what `retention` does not keep, a batch at a time; how many runs.
pub async fn prune(store: &Store, retention: Retention, stop: &CancellationToken) -> anyhow::Result<u64> {
    let mut removed = 0;
    loop {
        let pruning = retention.pruning(crate::trace::now_us());
        let batch = store.prune_runs(pruning).await?;
        removed += batch;
        if batch < u64::from(BATCH_RUNS) || stop.is_cancelled() {
            if removed > 0 {
                tracing::info!(runs = removed, "old runs removed with their spans and logs");
            }
            return Ok(removed);
        }
        tokio::time::sleep(BETWEEN_BATCHES).await;
    }
}
