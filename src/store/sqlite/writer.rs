//! The one writer: a thread that owns the write connection and applies
//! writes in batches, one transaction per batch.

use crate::store::records::{Launch, RunRecord, Trigger};
use crate::store::writes::{Committed, MAX_BATCH, Write, merge_short_spans, settle};
use crate::trace::{ErrorInfo, Span};
use rusqlite::{Connection, params};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

pub type Job = Box<dyn FnOnce(&mut Connection) + Send>;

// Nearly every message is a write: boxing them would cost an allocation
// per span to save memory only on the rare flush.
#[allow(clippy::large_enum_variant)]
/// What the writer thread is sent.
pub enum Message {
    Write(Write),
    /// Work that needs its own transaction and an answer (flow uploads, ...);
    /// it runs after the writes queued before it are committed.
    Job(Job),
    /// Answered once everything queued before it is committed.
    Flush(Committed),
    /// Commit what came before and stop.
    Close,
}

pub fn run_writer(mut conn: Connection, writes: Receiver<Message>) {
    let mut batch: Vec<Message> = Vec::with_capacity(MAX_BATCH);
    loop {
        match writes.recv_timeout(Duration::from_secs(3600)) {
            Ok(first) => batch.push(first),
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        }
        while batch.len() < MAX_BATCH {
            match writes.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        let closing = batch.iter().any(|message| matches!(message, Message::Close));
        apply(&mut conn, &mut batch);
        if closing {
            return;
        }
    }
}

fn apply(conn: &mut Connection, batch: &mut Vec<Message>) {
    let mut writes: Vec<Write> = Vec::with_capacity(batch.len());
    let mut after: Vec<Message> = Vec::new();
    for message in batch.drain(..) {
        match message {
            Message::Write(write) => writes.push(write),
            other => after.push(other),
        }
    }
    let merged = merge_short_spans(writes.iter());
    let result = (|| -> rusqlite::Result<()> {
        let tx = conn.transaction()?;
        for (index, write) in writes.iter().enumerate() {
            store_write(&tx, write, merged.skip_start[index], merged.start_seq[index])?;
        }
        tx.commit()
    })();
    let outcome = result.map_err(|error| {
        // The batch is rolled back whole; nothing is half-written.
        tracing::error!(%error, "the store could not write a batch");
        format!("the store could not write: {error}")
    });
    settle(writes, &outcome);
    // Jobs and flushes come after the writes they follow are settled.
    for message in after {
        match message {
            Message::Job(job) => job(conn),
            Message::Flush(reply) => {
                let _ = reply.send(outcome.clone());
            }
            Message::Write(_) | Message::Close => {}
        }
    }
}

/// One write's rows. `skip_start`: the span also ends in this batch, and
/// its end writes the row once; `start_seq`: that span's start event.
fn store_write(
    tx: &rusqlite::Transaction<'_>,
    write: &Write,
    skip_start: bool,
    start_seq: Option<u64>,
) -> rusqlite::Result<()> {
    match write {
        // One process, so no shared queue: `launch` is for other nodes.
        Write::RunCreated { run, source, launch } => {
            super::flows::ensure_source(tx, &run.source_sha256, source)?;
            insert_run(tx, run, launch.as_deref())?;
            if let Trigger::Retry { retry_of } = &run.trigger {
                tx.prepare_cached("DELETE FROM retries WHERE run_id = ?1")?.execute([retry_of])?;
            }
        }
        Write::RunStarted { run_id, start_us } => {
            tx.prepare_cached("UPDATE runs SET status = 'running', start_us = ?2 WHERE run_id = ?1")?
                .execute(params![run_id, start_us])?;
        }
        Write::RunFinished { run, retry, .. } => {
            finish_run(tx, run)?;
            if let Some(retry) = retry {
                tx.prepare_cached("INSERT OR REPLACE INTO retries (run_id, due_us, launch) VALUES (?1, ?2, ?3)")?
                    .execute(params![
                        retry.run_id,
                        retry.due_us,
                        serde_json::to_string(&retry.launch).unwrap_or_default()
                    ])?;
            }
        }
        Write::SpanStarted { .. } if skip_start => {}
        Write::SpanStarted { span, seq, .. } => upsert_span(tx, span, Some(*seq), None)?,
        Write::SpanEnded { span, seq, .. } => upsert_span(tx, span, start_seq, Some(*seq))?,
        Write::JournalCommitted { .. } => {}
        Write::Journal { run_id, stream, index, entry } => {
            tx.prepare_cached("INSERT OR IGNORE INTO journal (run_id, stream, idx, entry) VALUES (?1, ?2, ?3, ?4)")?
                .execute(params![run_id, &**stream, index, entry])?;
        }
        Write::Log { line, .. } => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO logs (run_id, seq, span_id, ts_us, stream, text) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                line.run_id,
                line.seq,
                line.span_id,
                line.ts_us,
                line.stream.as_str(),
                line.text
            ])?;
        }
    }
    Ok(())
}

/// One process, so no shared queue: a run's `launch` is kept for a durable
/// run only, which a later start of the server resumes.
fn insert_run(tx: &rusqlite::Transaction<'_>, run: &RunRecord, launch: Option<&Launch>) -> rusqlite::Result<()> {
    let launch = launch.filter(|_| run.durable).map(|launch| serde_json::to_string(launch).unwrap_or_default());
    tx.prepare_cached(
        "INSERT INTO runs (run_id, flow, version, source_sha256, status, input, quotas, created_us, node, started_by,
                           attempt, first_run_id, durable, launch, workspace)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?
    .execute(params![
        run.run_id,
        run.flow,
        run.version,
        run.source_sha256,
        run.status.as_str(),
        run.input.to_string(),
        serde_json::to_string(&run.quotas).unwrap_or_default(),
        run.created_us,
        run.node,
        serde_json::to_string(&run.trigger).unwrap_or_default(),
        run.attempt,
        run.first_run_id_if_not_own(),
        run.durable,
        launch,
        run.workspace
    ])?;
    Ok(())
}

fn finish_run(tx: &rusqlite::Transaction<'_>, run: &RunRecord) -> rusqlite::Result<()> {
    let json = |value: &Option<serde_json::Value>| value.as_ref().map(|v| v.to_string());
    tx.prepare_cached(
        "UPDATE runs SET status = ?2, output = ?3, error = ?4, usage = ?5, start_us = COALESCE(start_us, ?6),
         end_us = ?7, last_seq = ?8 WHERE run_id = ?1",
    )?
    .execute(params![
        run.run_id,
        run.status.as_str(),
        json(&run.output),
        run.error.as_ref().map(ErrorInfo::to_json_string),
        run.usage.as_ref().map(|u| serde_json::to_string(u).unwrap_or_default()),
        run.start_us,
        run.end_us,
        run.last_seq
    ])?;
    Ok(())
}

fn upsert_span(
    tx: &rusqlite::Transaction<'_>,
    span: &Span,
    start_seq: Option<u64>,
    end_seq: Option<u64>,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO spans (run_id, span_id, parent_id, kind, name, status, start_us, end_us, attrs, error, line, start_seq, end_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, COALESCE(?12, 0), ?13)
         ON CONFLICT (run_id, span_id) DO UPDATE SET
            status = excluded.status, end_us = excluded.end_us, attrs = excluded.attrs,
            error = excluded.error, end_seq = COALESCE(excluded.end_seq, spans.end_seq)",
    )?
    .execute(params![
        span.run_id,
        span.span_id,
        span.parent_id,
        span.kind.as_str(),
        span.name,
        span.status.as_str(),
        span.start_us,
        span.end_us,
        serde_json::Value::Object(span.attrs.clone()).to_string(),
        span.error.as_ref().map(ErrorInfo::to_json_string),
        span.line,
        start_seq,
        end_seq
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{SpanKind, Status};

    fn span(span_id: u64, status: Status, end_us: Option<i64>) -> Span {
        Span {
            run_id: "r1".into(),
            span_id,
            parent_id: None,
            kind: SpanKind::Step,
            name: format!("s{span_id}"),
            status,
            start_us: 10,
            end_us,
            attrs: serde_json::Map::new(),
            error: None,
            line: None,
        }
    }

    fn rows(conn: &Connection) -> Vec<(u64, String, u64, Option<u64>)> {
        let mut statement =
            conn.prepare("SELECT span_id, status, start_seq, end_seq FROM spans ORDER BY span_id").unwrap();
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn a_span_started_and_ended_in_one_batch_is_written_once_with_both_seqs() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        let writes = vec![
            Write::SpanStarted { span: span(1, Status::Running, None), seq: 1, publish: None },
            Write::SpanStarted { span: span(2, Status::Running, None), seq: 2, publish: None },
            Write::SpanEnded { span: span(2, Status::Ok, Some(20)), seq: 3, publish: None },
        ];
        assert_eq!(merge_short_spans(writes.iter()).skip_start, [false, true, false]);
        apply(&mut conn, &mut writes.into_iter().map(Message::Write).collect());
        assert_eq!(rows(&conn), [(1, "running".into(), 1, None), (2, "ok".into(), 2, Some(3))]);
        // Span 1 ends in a later batch: its row is updated, its start kept.
        apply(
            &mut conn,
            &mut vec![Message::Write(Write::SpanEnded {
                span: span(1, Status::Failed, Some(30)),
                seq: 4,
                publish: None,
            })],
        );
        assert_eq!(rows(&conn), [(1, "failed".into(), 1, Some(4)), (2, "ok".into(), 2, Some(3))]);
    }

    #[test]
    fn a_batch_that_cannot_be_written_is_reported_to_its_waiters_and_its_events_still_reach_watchers() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        conn.execute_batch("DROP TABLE spans").unwrap(); // every span write now fails
        let bus = crate::trace::bus::EventBus::default();
        let channel = bus.open("r1");
        let (flushed, answer) = tokio::sync::oneshot::channel();
        let publish =
            Some(crate::store::Published { channel: channel.clone(), text: std::sync::Arc::from("{\"seq\":1}") });
        apply(
            &mut conn,
            &mut vec![
                Message::Write(Write::SpanStarted { span: span(1, Status::Running, None), seq: 1, publish }),
                Message::Flush(flushed),
            ],
        );
        let reported = answer.blocking_recv().unwrap();
        assert!(reported.unwrap_err().contains("could not write"), "the waiter is told");
        let read = channel.read_after(0, 10);
        assert_eq!(read, crate::trace::bus::Read::Events(vec![std::sync::Arc::from("{\"seq\":1}")]), "no stall");
    }
}
