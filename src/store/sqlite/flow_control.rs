//! Runs' journals; retries waiting for their time, and the places of
//! concurrency limits.
//! On one node every change goes through the writer's connection, one at a
//! time, so a place is never given twice.

use super::SqliteStore;
use crate::store::records::{DueRetry, JournalRow, Launch, SlotClaim};
use anyhow::Result;
use rusqlite::{OptionalExtension, params};
use std::sync::Arc;

impl SqliteStore {
    pub async fn journal(self: &Arc<Self>, run_id: &str) -> Result<Vec<JournalRow>> {
        let run_id = run_id.to_string();
        let rows = self
            .read(move |conn| {
                let mut statement = conn
                    .prepare_cached("SELECT stream, idx, entry FROM journal WHERE run_id = ?1 ORDER BY stream, idx")?;
                let rows = statement.query_map([run_id], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, u32>(1)?, row.get::<_, String>(2)?))
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        rows.into_iter()
            .map(|(stream, index, entry)| Ok(JournalRow { stream, index, entry: serde_json::from_str(&entry)? }))
            .collect()
    }

    pub async fn durable_runs(self: &Arc<Self>, _node: &str) -> Result<Vec<String>> {
        let ids = self
            .read(|conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT run_id FROM runs WHERE status IN ('queued', 'running') AND durable ORDER BY created_us",
                )?;
                let rows = statement.query_map([], |row| row.get(0))?;
                rows.collect::<rusqlite::Result<Vec<String>>>()
            })
            .await?;
        Ok(ids)
    }

    pub async fn resume_launch(&self, run_id: &str, node: &str) -> Result<Option<Launch>> {
        let (run_id, node) = (run_id.to_string(), node.to_string());
        let launch: Option<Option<String>> = self
            .job(move |conn| {
                conn.query_row(
                    "UPDATE runs SET resumes = resumes + (status = 'running'), node = ?2
                     WHERE run_id = ?1 AND durable AND status IN ('queued', 'running') RETURNING launch",
                    params![run_id, node],
                    |row| row.get(0),
                )
                .optional()
            })
            .await??;
        launch.flatten().map(|launch| Ok(serde_json::from_str(&launch)?)).transpose()
    }

    pub async fn due_retries(self: &Arc<Self>, now_us: i64) -> Result<Vec<DueRetry>> {
        let rows = self
            .read(move |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT run_id, due_us, launch FROM retries WHERE due_us <= ?1 ORDER BY due_us LIMIT 100",
                )?;
                let rows = statement
                    .query_map([now_us], |row| Ok((row.get::<_, String>(0)?, row.get(1)?, row.get::<_, String>(2)?)))?;
                rows.collect::<rusqlite::Result<Vec<(String, i64, String)>>>()
            })
            .await?;
        rows.into_iter()
            .map(|(run_id, due_us, launch)| Ok(DueRetry { run_id, due_us, launch: serde_json::from_str(&launch)? }))
            .collect()
    }

    pub async fn claim_retry(&self, run_id: &str, due_us: i64, until_us: i64) -> Result<bool> {
        let run_id = run_id.to_string();
        let changed = self
            .job(move |conn| {
                conn.execute(
                    "UPDATE retries SET due_us = ?3 WHERE run_id = ?1 AND due_us = ?2",
                    params![run_id, due_us, until_us],
                )
            })
            .await??;
        Ok(changed == 1)
    }

    pub async fn retry_due(self: &Arc<Self>, run_id: &str) -> Result<Option<i64>> {
        let run_id = run_id.to_string();
        self.read(move |conn| {
            conn.query_row("SELECT due_us FROM retries WHERE run_id = ?1", [run_id], |row| row.get(0)).optional()
        })
        .await
    }

    pub async fn drop_retry(&self, run_id: &str) -> Result<bool> {
        let run_id = run_id.to_string();
        Ok(self.job(move |conn| conn.execute("DELETE FROM retries WHERE run_id = ?1", [run_id])).await?? > 0)
    }

    pub async fn enter_slot(&self, claim: SlotClaim) -> Result<bool> {
        Ok(self.job(move |conn| enter_slot(conn, &claim)).await??)
    }

    pub async fn sweep_slots(&self) -> Result<u64> {
        let swept = self
            .job(|conn| {
                conn.execute(
                    "DELETE FROM run_slots WHERE run_id IN
                         (SELECT run_id FROM runs WHERE status NOT IN ('queued', 'running'))",
                    [],
                )
            })
            .await??;
        Ok(swept as u64)
    }

    pub async fn leave_slot(&self, run_id: &str) -> Result<()> {
        let run_id = run_id.to_string();
        self.job(move |conn| conn.execute("DELETE FROM run_slots WHERE run_id = ?1", [run_id])).await??;
        Ok(())
    }
}

fn enter_slot(conn: &mut rusqlite::Connection, claim: &SlotClaim) -> rusqlite::Result<bool> {
    let tx = conn.transaction()?;
    tx.prepare_cached(
        "INSERT OR IGNORE INTO run_slots (run_id, flow, slot_key, created_us, held) VALUES (?1, ?2, ?3, ?4, 0)",
    )?
    .execute(params![claim.run_id, claim.flow, claim.slot_key, claim.created_us])?;
    // Places of runs that ended without giving theirs back (the process
    // died with them in hand) are free.
    tx.prepare_cached(
        "DELETE FROM run_slots WHERE flow = ?1 AND slot_key = ?2
             AND run_id IN (SELECT run_id FROM runs WHERE status NOT IN ('queued', 'running'))",
    )?
    .execute(params![claim.flow, claim.slot_key])?;
    let (held, ahead): (i64, i64) = tx
        .prepare_cached(
            "SELECT coalesce(sum(held), 0),
                coalesce(sum(NOT held AND (created_us < ?3 OR (created_us = ?3 AND run_id < ?4))), 0)
         FROM run_slots WHERE flow = ?1 AND slot_key = ?2",
        )?
        .query_row(params![claim.flow, claim.slot_key, claim.created_us, claim.run_id], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    let mine: bool = tx
        .prepare_cached("SELECT held FROM run_slots WHERE run_id = ?1")?
        .query_row([&claim.run_id], |row| row.get(0))?;
    // First come, first served: the runs waiting longer go first.
    let granted = mine || held + ahead < i64::from(claim.limit);
    if granted && !mine {
        tx.prepare_cached("UPDATE run_slots SET held = 1 WHERE run_id = ?1")?.execute([&claim.run_id])?;
    }
    tx.commit()?;
    Ok(granted)
}
