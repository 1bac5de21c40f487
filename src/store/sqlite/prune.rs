//! Removing old finished runs with their spans and logs (retention).

use super::SqliteStore;
use crate::store::records::Pruning;
use anyhow::Result;
use rusqlite::{OptionalExtension, params};

impl SqliteStore {
    /// Remove at most `pruning.batch` finished runs it names, with their
    /// spans and logs, in one transaction on the writer; how many.
    pub async fn prune_runs(&self, pruning: Pruning) -> Result<u64> {
        self.job(move |conn| {
            let tx = conn.transaction()?;
            // The oldest run of the newest N: runs created before it go.
            let cutoff: Option<(i64, String)> = match pruning.keep_newest {
                Some(keep) => tx
                    .query_row(
                        "SELECT created_us, run_id FROM runs ORDER BY created_us DESC, run_id DESC LIMIT 1 OFFSET ?1",
                        [keep.saturating_sub(1)],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .optional()?,
                None => None,
            };
            let (cutoff_us, cutoff_id) = cutoff.unzip();
            let doomed: Vec<String> = {
                let mut statement = tx.prepare_cached(
                    "SELECT run_id FROM runs
                     WHERE status NOT IN ('queued', 'running')
                       AND run_id NOT IN (SELECT run_id FROM retries)
                       AND ((?1 IS NOT NULL AND (created_us, run_id) < (?1, ?2)) OR end_us < ?3)
                     LIMIT ?4",
                )?;
                let rows = statement
                    .query_map(params![cutoff_us, cutoff_id, pruning.ended_before_us, pruning.batch], |row| {
                        row.get(0)
                    })?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            for run_id in &doomed {
                tx.execute("DELETE FROM spans WHERE run_id = ?1", [run_id])?;
                tx.execute("DELETE FROM logs WHERE run_id = ?1", [run_id])?;
                tx.execute("DELETE FROM journal WHERE run_id = ?1", [run_id])?;
                tx.execute("DELETE FROM runs WHERE run_id = ?1", [run_id])?;
            }
            tx.commit()?;
            Ok(doomed.len() as u64)
        })
        .await?
        .map_err(|e: rusqlite::Error| e.into())
    }
}
