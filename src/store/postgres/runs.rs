//! Stored runs, their spans and logs, and a run's events rebuilt for replay.

use super::PgStore;
use super::rows::{LOG_COLUMNS, RUN_COLUMNS, SPAN_COLUMNS, all, log_from_row, run_from_row, span_from_row, status};
use crate::store::records::{RunFilter, RunRecord, SubflowRun};
use crate::store::replay;
use crate::trace::{LogLine, RunEvent, Span, Status};
use anyhow::Result;
use deadpool_postgres::GenericClient;

async fn run_of(client: &impl GenericClient, run_id: &str) -> Result<Option<RunRecord>> {
    let statement = client.prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = $1")).await?;
    client.query_opt(&statement, &[&run_id]).await?.as_ref().map(run_from_row).transpose()
}

impl PgStore {
    pub async fn run(&self, run_id: &str) -> Result<Option<RunRecord>> {
        run_of(&self.client().await?, run_id).await
    }

    pub async fn runs(&self, filter: RunFilter) -> Result<Vec<RunRecord>> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM runs
                 WHERE ($1::text IS NULL OR flow = $1) AND ($2::text IS NULL OR status = $2)
                   AND ($3::int8 IS NULL OR created_us < $3)
                   AND ($5::text IS NULL OR strpos(lower(flow COLLATE \"C\"), $5) > 0)
                   AND ($6::text IS NULL OR run_id = $6 OR first_run_id = $6)
                   AND ($7::text IS NULL OR workspace = $7)
                 ORDER BY created_us DESC, run_id DESC LIMIT $4"
            ))
            .await?;
        let rows = client
            .query(
                &statement,
                &[
                    &filter.flow,
                    &filter.status.map(Status::as_str),
                    &filter.before_us,
                    &i64::from(filter.limit),
                    &filter.flow_contains.as_deref().map(str::to_ascii_lowercase),
                    &filter.first_run_id,
                    &filter.workspace,
                ],
            )
            .await?;
        all(rows, run_from_row)
    }

    /// The latest `limit` times flow `name` ran as a subflow and finished,
    /// newest first.
    pub async fn subflow_runs(&self, name: &str, limit: u32) -> Result<Vec<SubflowRun>> {
        let client = self.client().await?;
        let rows = super::rows(
            &client,
            "SELECT run_id, span_id, status, start_us, end_us FROM spans
                 WHERE kind = 'subflow' AND name = $1 AND end_us IS NOT NULL
                 ORDER BY start_us DESC LIMIT $2",
            &[&name, &i64::from(limit)],
        )
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SubflowRun {
                    run_id: row.try_get(0)?,
                    span_id: super::unsigned(row.try_get(1)?, "span_id")?,
                    status: status(row, 2)?,
                    start_us: row.try_get(3)?,
                    end_us: row.try_get(4)?,
                })
            })
            .collect()
    }

    pub async fn spans(&self, run_id: &str) -> Result<Vec<Span>> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!("SELECT {SPAN_COLUMNS} FROM spans WHERE run_id = $1 ORDER BY span_id"))
            .await?;
        let rows = all(client.query(&statement, &[&run_id]).await?, span_from_row)?;
        Ok(rows.into_iter().map(|(span, _, _)| span).collect())
    }

    pub async fn logs(&self, run_id: &str, after_seq: u64) -> Result<Vec<LogLine>> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!("SELECT {LOG_COLUMNS} FROM logs WHERE run_id = $1 AND seq > $2 ORDER BY seq"))
            .await?;
        all(client.query(&statement, &[&run_id, &(after_seq as i64)]).await?, log_from_row)
    }

    /// A stored run's events after `after_seq`, at most `limit` of them (see
    /// the SQLite backend's `replay_page`), read in one snapshot.
    pub async fn replay_page(
        &self,
        run_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Option<(RunRecord, Vec<RunEvent>)>> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let Some(mut run) = run_of(&tx, run_id).await? else { return Ok(None) };
        let (after, page) = (after_seq as i64, limit as i64);
        let starts = super::rows(
            &tx,
            &format!(
                "SELECT {SPAN_COLUMNS} FROM spans WHERE run_id = $1 AND start_seq > $2 ORDER BY start_seq LIMIT $3"
            ),
            &[&run_id, &after, &page],
        )
        .await?;
        let ends = super::rows(
            &tx,
            &format!("SELECT {SPAN_COLUMNS} FROM spans WHERE run_id = $1 AND end_seq > $2 ORDER BY end_seq LIMIT $3"),
            &[&run_id, &after, &page],
        )
        .await?;
        let logs = super::rows(
            &tx,
            &format!("SELECT {LOG_COLUMNS} FROM logs WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"),
            &[&run_id, &after, &page],
        )
        .await?;
        let mut events = replay::page_events(
            all(starts, span_from_row)?,
            all(ends, span_from_row)?,
            all(logs, log_from_row)?,
            limit,
        );
        let last_stored: i64 = super::one_row(
            &tx,
            "SELECT GREATEST(COALESCE((SELECT MAX(start_seq) FROM spans WHERE run_id = $1), 0),
                                 COALESCE((SELECT MAX(end_seq) FROM spans WHERE run_id = $1), 0),
                                 COALESCE((SELECT MAX(seq) FROM logs WHERE run_id = $1), 0))",
            &[&run_id],
        )
        .await?
        .try_get(0)?;
        let last_stored = last_stored as u64;
        let needs_closed = events.is_empty() || (run.status.is_final() && run.last_seq == 0);
        if needs_closed {
            let closed = super::rows(
                &tx,
                &format!(
                    "SELECT {SPAN_COLUMNS} FROM spans WHERE run_id = $1 AND end_seq IS NULL AND status != 'running'
                         ORDER BY span_id DESC"
                ),
                &[&run_id],
            )
            .await?;
            let closed = all(closed, span_from_row)?;
            if run.status.is_final() && run.last_seq == 0 {
                run.last_seq = last_stored + closed.len() as u64 + 1;
            }
            if events.is_empty() {
                events = replay::recovered_events(closed, last_stored, after_seq);
            }
        }
        tx.commit().await?;
        Ok(Some((run, events)))
    }
}
