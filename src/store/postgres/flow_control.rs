//! Runs' journals; retries waiting for their time, and the places of
//! concurrency limits, shared by every node. A retry is claimed like a schedule's tick (one
//! conditional UPDATE); a place is given under a transaction-scoped
//! advisory lock on its flow and key, so two nodes never count the same
//! free place.

use super::PgStore;
use super::text;
use crate::store::records::{DueRetry, JournalRow, Launch, SlotClaim};
use anyhow::Result;

impl PgStore {
    pub async fn journal(&self, run_id: &str) -> Result<Vec<JournalRow>> {
        let client = self.client().await?;
        let sql = "SELECT stream, idx, entry FROM journal WHERE run_id = $1 ORDER BY stream COLLATE \"C\", idx";
        let rows = super::rows(&client, sql, &[&run_id]).await?;
        rows.iter()
            .map(|row| {
                let entry: &str = row.try_get(2)?;
                Ok(JournalRow {
                    stream: row.try_get(0)?,
                    index: super::unsigned(i64::from(row.try_get::<_, i32>(1)?), "idx")?,
                    entry: serde_json::from_str(entry)?,
                })
            })
            .collect()
    }

    pub async fn durable_runs(&self, node: &str) -> Result<Vec<String>> {
        let client = self.client().await?;
        let rows = super::rows(
            &client,
            "SELECT run_id FROM runs WHERE status IN ('queued', 'running') AND durable AND node = $1
             ORDER BY created_us",
            &[&node],
        )
        .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    pub async fn resume_launch(&self, run_id: &str, node: &str) -> Result<Option<Launch>> {
        let client = self.client().await?;
        let row = super::row(
            &client,
            // Only a run this node holds: its own from before it died, or one
            // its sweep took from a node that is gone (never another's).
            "UPDATE runs SET resumes = resumes + CASE WHEN status = 'running' THEN 1 ELSE 0 END
             WHERE run_id = $1 AND durable AND status IN ('queued', 'running') AND node = $2 RETURNING launch",
            &[&run_id, &node],
        )
        .await?;
        let Some(row) = row else { return Ok(None) };
        let launch: Option<&str> = row.try_get(0)?;
        launch.map(|launch| Ok(serde_json::from_str(launch)?)).transpose()
    }

    pub async fn due_retries(&self, now_us: i64) -> Result<Vec<DueRetry>> {
        let client = self.client().await?;
        let rows = super::rows(
            &client,
            "SELECT run_id, due_us, launch FROM retries WHERE due_us <= $1 ORDER BY due_us LIMIT 100",
            &[&now_us],
        )
        .await?;
        rows.iter()
            .map(|row| {
                let launch: &str = row.try_get(2)?;
                Ok(DueRetry { run_id: row.try_get(0)?, due_us: row.try_get(1)?, launch: serde_json::from_str(launch)? })
            })
            .collect()
    }

    pub async fn claim_retry(&self, run_id: &str, due_us: i64, until_us: i64) -> Result<bool> {
        let client = self.client().await?;
        let changed = super::exec(
            &client,
            "UPDATE retries SET due_us = $3 WHERE run_id = $1 AND due_us = $2",
            &[&run_id, &due_us, &until_us],
        )
        .await?;
        Ok(changed == 1)
    }

    pub async fn retry_due(&self, run_id: &str) -> Result<Option<i64>> {
        let client = self.client().await?;
        let row = super::row(&client, "SELECT due_us FROM retries WHERE run_id = $1", &[&run_id]).await?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    }

    pub async fn drop_retry(&self, run_id: &str) -> Result<bool> {
        let client = self.client().await?;
        Ok(super::exec(&client, "DELETE FROM retries WHERE run_id = $1", &[&run_id]).await? > 0)
    }

    pub async fn enter_slot(&self, claim: SlotClaim) -> Result<bool> {
        let slot_key = text(&claim.slot_key);
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        super::exec(
            &tx,
            "SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(1) || $2, 0))",
            &[&claim.flow, &slot_key],
        )
        .await?;
        super::exec(
            &tx,
            "INSERT INTO run_slots (run_id, flow, slot_key, created_us, held) VALUES ($1, $2, $3, $4, FALSE)
             ON CONFLICT (run_id) DO NOTHING",
            &[&claim.run_id, &claim.flow, &slot_key, &claim.created_us],
        )
        .await?;
        // Places of runs that ended without giving theirs back (their node
        // died, and another ended its runs) are free.
        super::exec(
            &tx,
            "DELETE FROM run_slots s USING runs r
             WHERE s.flow = $1 AND s.slot_key = $2 AND r.run_id = s.run_id AND r.status NOT IN ('queued', 'running')",
            &[&claim.flow, &slot_key],
        )
        .await?;
        let counts = super::one_row(
            &tx,
            "SELECT count(*) FILTER (WHERE held),
                    count(*) FILTER (WHERE NOT held AND (created_us < $3 OR (created_us = $3 AND run_id < $4))),
                    bool_or(held AND run_id = $4)
             FROM run_slots WHERE flow = $1 AND slot_key = $2",
            &[&claim.flow, &slot_key, &claim.created_us, &claim.run_id],
        )
        .await?;
        let (held, ahead): (i64, i64) = (counts.try_get(0)?, counts.try_get(1)?);
        let mine = counts.try_get::<_, Option<bool>>(2)?.unwrap_or(false);
        // First come, first served: the runs waiting longer go first.
        let granted = mine || held + ahead < i64::from(claim.limit);
        if granted && !mine {
            super::exec(&tx, "UPDATE run_slots SET held = TRUE WHERE run_id = $1", &[&claim.run_id]).await?;
        }
        tx.commit().await?;
        Ok(granted)
    }

    pub async fn sweep_slots(&self) -> Result<u64> {
        let client = self.client().await?;
        super::exec(
            &client,
            "DELETE FROM run_slots s USING runs r WHERE r.run_id = s.run_id AND r.status NOT IN ('queued', 'running')",
            &[],
        )
        .await
    }

    pub async fn leave_slot(&self, run_id: &str) -> Result<()> {
        let client = self.client().await?;
        super::exec(&client, "DELETE FROM run_slots WHERE run_id = $1", &[&run_id]).await?;
        Ok(())
    }
}
