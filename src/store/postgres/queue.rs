//! The nodes' shared queue: runs a node accepted while it had no free place
//! wait in `runs` with no node, and whichever node has a free place first
//! claims the oldest (`FOR UPDATE SKIP LOCKED`: two nodes never claim the
//! same run, and neither waits for the other's claim).

use super::PgStore;
use super::nodes::{Notice, send};
use super::rows::{RUN_COLUMNS, run_from_row};
use crate::store::records::{ClaimedRun, RunRecord};
use crate::trace::ErrorInfo;
use anyhow::{Context, Result};

impl PgStore {
    /// Claim the oldest run waiting in the shared queue for `node`; None
    /// when none waits.
    pub async fn claim_queued(&self, node: &str) -> Result<Option<ClaimedRun>> {
        let columns: String = RUN_COLUMNS.split(", ").map(|c| format!("r.{c}")).collect::<Vec<_>>().join(", ");
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let row = super::row(
            &tx,
            &format!(
                "UPDATE runs r SET node = $1
                     FROM sources s
                     WHERE r.run_id = (SELECT run_id FROM runs WHERE status = 'queued' AND node IS NULL
                                       ORDER BY created_us, run_id LIMIT 1 FOR UPDATE SKIP LOCKED)
                       AND s.sha256 = r.source_sha256
                     RETURNING {columns}, r.launch, s.text"
            ),
            &[&node],
        )
        .await?;
        let Some(row) = row else { return Ok(None) };
        // Read whole before the claim is committed: a run this node cannot
        // start stays in the queue (and the error says why).
        let run = run_from_row(&row)?;
        let columns = RUN_COLUMNS.split(", ").count();
        let launch: Option<&str> = row.try_get(columns)?;
        let launch = serde_json::from_str(launch.context("a queued run has no launch")?)
            .with_context(|| format!("read how to start run {}", run.run_id))?;
        let source = row.try_get(columns + 1)?;
        // The node that accepted it learns it left the queue.
        send(&tx, [Notice::Run { run_id: run.run_id.clone(), by: None }]).await?;
        tx.commit().await?;
        Ok(Some(ClaimedRun { run, source, launch }))
    }

    /// Give back a run claimed but not started (this node began to shut
    /// down meanwhile): it waits for another node again.
    pub async fn unclaim(&self, run_id: &str) -> Result<()> {
        let client = self.client().await?;
        super::exec(&client, "UPDATE runs SET node = NULL WHERE run_id = $1 AND status = 'queued'", &[&run_id]).await?;
        send(&client, [Notice::Queued]).await?;
        Ok(())
    }

    /// Cancel a run still waiting in the shared queue; None when no node
    /// has it waiting (it was claimed, or has ended).
    pub async fn cancel_waiting(&self, run_id: &str, error: &ErrorInfo) -> Result<Option<RunRecord>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let row = super::row(
            &tx,
            &format!(
                "UPDATE runs SET status = 'cancelled', error = $2, end_us = $3, last_seq = 1
                     WHERE run_id = $1 AND status = 'queued' AND node IS NULL
                     RETURNING {RUN_COLUMNS}"
            ),
            &[&run_id, &error.to_json_string(), &crate::trace::now_us()],
        )
        .await?;
        let Some(row) = row else { return Ok(None) };
        send(&tx, [Notice::Run { run_id: run_id.to_string(), by: None }]).await?;
        tx.commit().await?;
        Ok(Some(run_from_row(&row)?))
    }
}
