//! Schedules and the claiming of their ticks. A tick is claimed by one
//! conditional UPDATE: of nodes racing for it, the first to commit moves
//! `next_us` on, and the others' UPDATE (re-checked on the committed row)
//! changes nothing.

use super::PgStore;
use super::rows::all;
use crate::store::records::StoredSchedule;
use anyhow::{Context, Result};

const COLUMNS: &str = "schedule_id, flow, cron, input, next_us, created_us, timezone";

fn schedule_from_row(row: &tokio_postgres::Row) -> Result<StoredSchedule> {
    let input: &str = row.try_get(3)?;
    Ok(StoredSchedule {
        schedule_id: row.try_get(0)?,
        flow: row.try_get(1)?,
        cron: row.try_get(2)?,
        input: serde_json::from_str(input).context("a schedule's input")?,
        next_us: row.try_get(4)?,
        created_us: row.try_get(5)?,
        timezone: row.try_get(6)?,
    })
}

impl PgStore {
    /// Store a new schedule when its flow is stored (see `save_hook`).
    pub async fn save_schedule(&self, schedule: StoredSchedule) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        super::exec(&tx, "SELECT pg_advisory_xact_lock($1)", &[&super::flows::SAVE_LOCK]).await?;
        let inserted = super::exec(
            &tx,
            &format!(
                "INSERT INTO schedules ({COLUMNS})
                 SELECT $1::text, $2::text, $3::text, $4::text, $5::bigint, $6::bigint, $7::text
                 WHERE EXISTS (SELECT 1 FROM flows WHERE name = $2)"
            ),
            &[
                &schedule.schedule_id,
                &schedule.flow,
                &schedule.cron,
                &super::text(&schedule.input.to_string()),
                &schedule.next_us,
                &schedule.created_us,
                &schedule.timezone,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(inserted > 0)
    }

    pub async fn schedules(&self) -> Result<Vec<StoredSchedule>> {
        let client = self.client().await?;
        let sql = format!("SELECT {COLUMNS} FROM schedules ORDER BY created_us, schedule_id");
        all(super::rows(&client, &sql, &[]).await?, schedule_from_row)
    }

    pub async fn remove_schedule(&self, schedule_id: &str) -> Result<bool> {
        let client = self.client().await?;
        Ok(super::exec(&client, "DELETE FROM schedules WHERE schedule_id = $1", &[&schedule_id]).await? > 0)
    }

    pub async fn due_schedules(&self, now_us: i64) -> Result<Vec<StoredSchedule>> {
        let client = self.client().await?;
        let sql = format!("SELECT {COLUMNS} FROM schedules WHERE next_us <= $1 ORDER BY next_us");
        all(super::rows(&client, &sql, &[&now_us]).await?, schedule_from_row)
    }

    pub async fn claim_tick(&self, schedule_id: &str, due_us: i64, next_us: i64) -> Result<bool> {
        let client = self.client().await?;
        let changed = super::exec(
            &client,
            "UPDATE schedules SET next_us = $3 WHERE schedule_id = $1 AND next_us = $2",
            &[&schedule_id, &due_us, &next_us],
        )
        .await?;
        Ok(changed == 1)
    }
}
