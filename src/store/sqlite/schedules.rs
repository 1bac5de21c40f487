//! Schedules and the claiming of their ticks.

use super::SqliteStore;
use crate::store::records::StoredSchedule;
use anyhow::Result;
use rusqlite::params;
use std::sync::Arc;

const COLUMNS: &str = "schedule_id, flow, cron, input, next_us, created_us, timezone";

fn schedule_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredSchedule> {
    Ok(StoredSchedule {
        schedule_id: row.get(0)?,
        flow: row.get(1)?,
        cron: row.get(2)?,
        input: serde_json::from_str(&row.get::<_, String>(3)?).unwrap_or_default(),
        next_us: row.get(4)?,
        created_us: row.get(5)?,
        timezone: row.get(6)?,
    })
}

impl SqliteStore {
    /// Store a new schedule when its flow is stored (see `save_hook`).
    pub async fn save_schedule(&self, schedule: StoredSchedule) -> Result<bool> {
        let inserted = self.job(move |conn| {
            conn.execute(
                &format!(
                    "INSERT INTO schedules ({COLUMNS}) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
                     WHERE EXISTS (SELECT 1 FROM flows WHERE name = ?2)"
                ),
                params![
                    schedule.schedule_id,
                    schedule.flow,
                    schedule.cron,
                    schedule.input.to_string(),
                    schedule.next_us,
                    schedule.created_us,
                    schedule.timezone
                ],
            )
        });
        Ok(inserted.await?? > 0)
    }

    pub async fn schedules(self: &Arc<Self>) -> Result<Vec<StoredSchedule>> {
        self.read(|conn| {
            let mut statement =
                conn.prepare_cached(&format!("SELECT {COLUMNS} FROM schedules ORDER BY created_us, schedule_id"))?;
            let rows = statement.query_map([], schedule_from_row)?;
            rows.collect()
        })
        .await
    }

    pub async fn remove_schedule(&self, schedule_id: &str) -> Result<bool> {
        let schedule_id = schedule_id.to_string();
        Ok(self.job(move |conn| conn.execute("DELETE FROM schedules WHERE schedule_id = ?1", [schedule_id])).await??
            > 0)
    }

    pub async fn due_schedules(self: &Arc<Self>, now_us: i64) -> Result<Vec<StoredSchedule>> {
        self.read(move |conn| {
            let mut statement =
                conn.prepare_cached(&format!("SELECT {COLUMNS} FROM schedules WHERE next_us <= ?1 ORDER BY next_us"))?;
            let rows = statement.query_map([now_us], schedule_from_row)?;
            rows.collect()
        })
        .await
    }

    pub async fn claim_tick(&self, schedule_id: &str, due_us: i64, next_us: i64) -> Result<bool> {
        let schedule_id = schedule_id.to_string();
        let changed = self
            .job(move |conn| {
                conn.execute(
                    "UPDATE schedules SET next_us = ?3 WHERE schedule_id = ?1 AND next_us = ?2",
                    params![schedule_id, due_us, next_us],
                )
            })
            .await??;
        Ok(changed == 1)
    }
}
