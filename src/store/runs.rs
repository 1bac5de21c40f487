//! Stored runs, their spans and logs, and a run's events rebuilt for replay.

use super::Store;
use super::rows::{
    LOG_COLUMNS, RUN_COLUMNS, RunRecord, SPAN_COLUMNS, log_from_row, run_from_row, span_from_row, status,
};
use crate::trace::{LogLine, RunEvent, Span, Status};
use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;
use std::sync::Arc;

/// Which runs to list, newest first.
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    pub flow: Option<String>,
    pub status: Option<Status>,
    /// Only runs created before this time (the previous page's `next`).
    pub before_us: Option<i64>,
    pub limit: u32,
}

/// One time a flow ran as a subflow: the run it ran in and its `subflow` span.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SubflowRun {
    pub run_id: String,
    pub span_id: u64,
    pub status: Status,
    pub start_us: i64,
    pub end_us: i64,
}

/// Runs a crashed process left `queued` or `running` end `interrupted`, with
/// their open spans closed the same way. Returns how many runs.
pub(crate) fn mark_interrupted(conn: &mut Connection, now_us: i64) -> rusqlite::Result<usize> {
    let error = json!({
        "type": "Interrupted",
        "message": "the server stopped while the run was going on",
        "traceback": null,
    })
    .to_string();
    let tx = conn.transaction()?;
    tx.execute(
        "UPDATE spans SET status = 'interrupted', end_us = MAX(start_us, ?1), error = ?2
         WHERE status = 'running' AND run_id IN (SELECT run_id FROM runs WHERE status IN ('queued', 'running'))",
        params![now_us, error],
    )?;
    let runs = tx.execute(
        "UPDATE runs SET status = 'interrupted', end_us = ?1, error = ?2 WHERE status IN ('queued', 'running')",
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

impl Store {
    pub async fn run(self: &Arc<Self>, run_id: &str) -> Result<Option<RunRecord>> {
        let run_id = run_id.to_string();
        self.read(move |conn| run_of(conn, &run_id)).await
    }

    pub async fn runs(self: &Arc<Self>, filter: RunFilter) -> Result<Vec<RunRecord>> {
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM runs
                 WHERE (?1 IS NULL OR flow = ?1) AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR created_us < ?3)
                 ORDER BY created_us DESC, run_id DESC LIMIT ?4"
            ))?;
            let rows = statement.query_map(
                params![filter.flow, filter.status.map(Status::as_str), filter.before_us, filter.limit],
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

    /// A stored run's events in seq order, as they were streamed: each span's
    /// start (as `running`) and end, and its log lines. Spans closed by crash
    /// recovery, which never had an end event, get seqs after the last one.
    pub async fn replay(self: &Arc<Self>, run_id: &str) -> Result<Option<(RunRecord, Vec<RunEvent>)>> {
        let run_id = run_id.to_string();
        self.read(move |conn| {
            let Some(run) = run_of(conn, &run_id)? else { return Ok(None) };
            let spans = spans_of(conn, &run_id)?;
            let logs = logs_of(conn, &run_id, 0)?;
            let mut events: Vec<RunEvent> = logs.into_iter().map(RunEvent::Log).collect();
            let mut unsequenced = Vec::new();
            for (span, start_seq, end_seq) in spans {
                let mut started = span.clone();
                started.status = Status::Running;
                started.end_us = None;
                started.error = None;
                events.push(RunEvent::SpanStarted { seq: start_seq, span: started });
                match end_seq {
                    Some(seq) => events.push(RunEvent::SpanEnded { seq, span }),
                    None if span.status.is_final() => unsequenced.push(span),
                    None => {}
                }
            }
            events.sort_by_key(RunEvent::seq);
            let mut next = events.last().map_or(1, |e| e.seq() + 1);
            // Innermost first, as the host closes them.
            unsequenced.sort_by_key(|span| std::cmp::Reverse(span.span_id));
            for span in unsequenced {
                events.push(RunEvent::SpanEnded { seq: next, span });
                next += 1;
            }
            let mut run = run;
            if run.status.is_final() && run.last_seq == 0 {
                run.last_seq = next;
            }
            Ok(Some((run, events)))
        })
        .await
    }
}
