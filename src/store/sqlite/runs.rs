//! Stored runs, their spans and logs, and a run's events rebuilt for replay.

use super::SqliteStore;
use super::rows::{LOG_COLUMNS, RUN_COLUMNS, SPAN_COLUMNS, log_from_row, run_from_row, span_from_row, status};
use crate::store::records::{RunFilter, RunRecord, SubflowRun};
use crate::store::replay::{self, SpanRow};
use crate::trace::{ErrorInfo, LogLine, RunEvent, Span, Status};
use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::Arc;

/// Runs a crashed process left `queued` or `running` end `interrupted`, with
/// their open spans closed the same way; durable runs are left for the
/// server to resume (`resume`). Returns how many runs.
pub(crate) fn mark_interrupted(conn: &mut Connection, now_us: i64) -> rusqlite::Result<usize> {
    let error = ErrorInfo::interrupted().to_json_string();
    let tx = conn.transaction()?;
    // The run's last event is `run_finished`, after its stored events and
    // one closing event per span left open (numbered as replay numbers them).
    tx.execute(
        "UPDATE runs SET last_seq =
             MAX(COALESCE((SELECT MAX(start_seq) FROM spans s WHERE s.run_id = runs.run_id), 0),
                 COALESCE((SELECT MAX(end_seq) FROM spans s WHERE s.run_id = runs.run_id), 0),
                 COALESCE((SELECT MAX(seq) FROM logs l WHERE l.run_id = runs.run_id), 0))
             + (SELECT COUNT(*) FROM spans s WHERE s.run_id = runs.run_id AND s.status = 'running') + 1
         WHERE status IN ('queued', 'running') AND NOT durable",
        [],
    )?;
    tx.execute(
        "UPDATE spans SET status = 'interrupted', end_us = MAX(start_us, ?1), error = ?2
         WHERE status = 'running'
           AND run_id IN (SELECT run_id FROM runs WHERE status IN ('queued', 'running') AND NOT durable)",
        params![now_us, error],
    )?;
    let runs = tx.execute(
        "UPDATE runs SET status = 'interrupted', end_us = ?1, error = ?2
         WHERE status IN ('queued', 'running') AND NOT durable",
        params![now_us, error],
    )?;
    tx.commit()?;
    Ok(runs)
}

fn spans_of(conn: &Connection, run_id: &str) -> rusqlite::Result<Vec<(Span, u64, Option<u64>)>> {
    let mut statement =
        conn.prepare_cached(&format!("SELECT {SPAN_COLUMNS} FROM spans WHERE run_id = ?1 ORDER BY span_id"))?;
    let rows = statement.query_map([run_id], span_from_row)?;
    rows.collect()
}

fn logs_of(conn: &Connection, run_id: &str, after_seq: u64) -> rusqlite::Result<Vec<LogLine>> {
    let mut statement =
        conn.prepare_cached(&format!("SELECT {LOG_COLUMNS} FROM logs WHERE run_id = ?1 AND seq > ?2 ORDER BY seq"))?;
    let rows = statement.query_map(params![run_id, after_seq], log_from_row)?;
    rows.collect()
}

fn run_of(conn: &Connection, run_id: &str) -> rusqlite::Result<Option<RunRecord>> {
    conn.query_row(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?1"), [run_id], run_from_row).optional()
}

impl SqliteStore {
    pub async fn run(self: &Arc<Self>, run_id: &str) -> Result<Option<RunRecord>> {
        let run_id = run_id.to_string();
        self.read(move |conn| run_of(conn, &run_id)).await
    }

    pub async fn runs(self: &Arc<Self>, filter: RunFilter) -> Result<Vec<RunRecord>> {
        self.read(move |conn| {
            // A run's attempts are found by their index (an `?6 IS NULL OR`
            // would have SQLite scan every run instead).
            let attempts = match filter.first_run_id {
                Some(_) => "AND (run_id = ?6 OR first_run_id = ?6)",
                None => "AND ?6 IS NULL",
            };
            let workspace = match filter.workspace {
                Some(_) => "AND workspace = ?7",
                None => "AND ?7 IS NULL",
            };
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM runs
                 WHERE (?1 IS NULL OR flow = ?1) AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR created_us < ?3)
                   AND (?5 IS NULL OR instr(lower(flow), ?5) > 0)
                   {attempts} {workspace}
                 ORDER BY created_us DESC, run_id DESC LIMIT ?4"
            ))?;
            let rows = statement.query_map(
                params![
                    filter.flow,
                    filter.status.map(Status::as_str),
                    filter.before_us,
                    filter.limit,
                    filter.flow_contains.as_deref().map(str::to_ascii_lowercase),
                    filter.first_run_id,
                    filter.workspace
                ],
                run_from_row,
            )?;
            rows.collect()
        })
        .await
    }

    /// The latest `limit` times flow `name` ran as a subflow and finished,
    /// newest first.
    pub async fn subflow_runs(self: &Arc<Self>, name: &str, limit: u32) -> Result<Vec<SubflowRun>> {
        let name = name.to_string();
        self.read(move |conn| {
            // `kind = 'subflow'` as written here is what lets SQLite use the
            // partial index `spans_by_subflow`.
            let mut statement = conn.prepare_cached(
                "SELECT run_id, span_id, status, start_us, end_us FROM spans
                 WHERE kind = 'subflow' AND name = ?1 AND end_us IS NOT NULL
                 ORDER BY start_us DESC LIMIT ?2",
            )?;
            let rows = statement.query_map(params![name, limit], |row| {
                let status_text: String = row.get(2)?;
                Ok(SubflowRun {
                    run_id: row.get(0)?,
                    span_id: row.get(1)?,
                    status: status(&status_text, 2)?,
                    start_us: row.get(3)?,
                    end_us: row.get(4)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    pub async fn spans(self: &Arc<Self>, run_id: &str) -> Result<Vec<Span>> {
        let run_id = run_id.to_string();
        let spans = self.read(move |conn| spans_of(conn, &run_id)).await?;
        Ok(spans.into_iter().map(|(span, _, _)| span).collect())
    }

    pub async fn logs(self: &Arc<Self>, run_id: &str, after_seq: u64) -> Result<Vec<LogLine>> {
        let run_id = run_id.to_string();
        self.read(move |conn| logs_of(conn, &run_id, after_seq)).await
    }

    /// A stored run's events after `after_seq`, at most `limit` of them, in
    /// seq order, for watchers joining a finished run: each span's start
    /// (as `running`) and end, and its log lines. Spans closed by crash
    /// recovery, which never had an end event, come last, with seqs after
    /// the last stored one. Read a page at a time, so a watcher of a huge
    /// run holds one page, never the whole run. `None`: no such run.
    pub async fn replay_page(
        self: &Arc<Self>,
        run_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Option<(RunRecord, Vec<RunEvent>)>> {
        let run_id = run_id.to_string();
        self.read(move |conn| {
            // One snapshot for every query below: a live run's events are
            // committed while this reads, and a start, end or log line
            // committed between two of the queries would be a gap.
            let snapshot = conn.unchecked_transaction()?;
            let conn = &*snapshot;
            let Some(mut run) = run_of(conn, &run_id)? else { return Ok(None) };
            let page = limit as i64;
            let rows_after = |sql: String| -> rusqlite::Result<Vec<SpanRow>> {
                conn.prepare_cached(&sql)?.query_map(params![run_id, after_seq, page], span_from_row)?.collect()
            };
            let starts = rows_after(format!(
                "SELECT {SPAN_COLUMNS} FROM spans WHERE run_id = ?1 AND start_seq > ?2 ORDER BY start_seq LIMIT ?3"
            ))?;
            let ends = rows_after(format!(
                "SELECT {SPAN_COLUMNS} FROM spans WHERE run_id = ?1 AND end_seq > ?2 ORDER BY end_seq LIMIT ?3"
            ))?;
            let logs = conn
                .prepare_cached(&format!(
                    "SELECT {LOG_COLUMNS} FROM logs WHERE run_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
                ))?
                .query_map(params![run_id, after_seq, page], log_from_row)?
                .collect::<rusqlite::Result<_>>()?;
            let mut events = replay::page_events(starts, ends, logs, limit);
            let last_stored: u64 = conn.query_row(
                "SELECT MAX(COALESCE((SELECT MAX(start_seq) FROM spans WHERE run_id = ?1), 0),
                            COALESCE((SELECT MAX(end_seq) FROM spans WHERE run_id = ?1), 0),
                            COALESCE((SELECT MAX(seq) FROM logs WHERE run_id = ?1), 0))",
                [&run_id],
                |row| row.get(0),
            )?;
            if events.is_empty() {
                let closed = format!(
                    "SELECT {SPAN_COLUMNS} FROM spans WHERE run_id = ?1 AND end_seq IS NULL AND status != 'running'
                     ORDER BY span_id DESC"
                );
                let closed = conn
                    .prepare_cached(&closed)?
                    .query_map([&run_id], span_from_row)?
                    .collect::<rusqlite::Result<_>>()?;
                events = replay::recovered_events(closed, last_stored, after_seq);
            }
            if run.status.is_final() && run.last_seq == 0 {
                let closed: u64 = conn.query_row(
                    "SELECT COUNT(*) FROM spans WHERE run_id = ?1 AND end_seq IS NULL AND status != 'running'",
                    [&run_id],
                    |row| row.get(0),
                )?;
                run.last_seq = last_stored + closed + 1;
            }
            Ok(Some((run, events)))
        })
        .await
    }
}
