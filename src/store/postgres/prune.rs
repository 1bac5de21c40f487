//! Removing old finished runs with their spans and logs (retention).

use super::PgStore;
use crate::store::records::Pruning;
use anyhow::Result;

impl PgStore {
    /// Remove at most `pruning.batch` finished runs it names, with their
    /// spans and logs, in one transaction; how many. Nodes pruning at once
    /// skip each other's rows rather than wait for them.
    pub async fn prune_runs(&self, pruning: Pruning) -> Result<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let keep = pruning.keep_newest.map(|keep| keep.saturating_sub(1) as i64);
        let cutoff = match keep {
            Some(offset) => super::row(
                &tx,
                "SELECT created_us, run_id FROM runs ORDER BY created_us DESC, run_id DESC LIMIT 1 OFFSET $1",
                &[&offset],
            )
            .await?
            .map(|row| (row.get::<_, i64>(0), row.get::<_, String>(1))),
            None => None,
        };
        let (cutoff_us, cutoff_id) = cutoff.unzip();
        let doomed: Vec<String> = super::rows(
            &tx,
            "SELECT run_id FROM runs
             WHERE status NOT IN ('queued', 'running')
               AND (($1::int8 IS NOT NULL AND (created_us, run_id) < ($1::int8, $2::text)) OR end_us < $3::int8)
             LIMIT $4 FOR UPDATE SKIP LOCKED",
            &[&cutoff_us, &cutoff_id, &pruning.ended_before_us, &i64::from(pruning.batch)],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
        super::exec(&tx, "DELETE FROM spans WHERE run_id = ANY($1)", &[&doomed]).await?;
        super::exec(&tx, "DELETE FROM logs WHERE run_id = ANY($1)", &[&doomed]).await?;
        super::exec(&tx, "DELETE FROM journal WHERE run_id = ANY($1)", &[&doomed]).await?;
        super::exec(&tx, "DELETE FROM runs WHERE run_id = ANY($1)", &[&doomed]).await?;
        tx.commit().await?;
        Ok(doomed.len() as u64)
    }
}
