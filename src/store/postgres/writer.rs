//! The node's one writer: a task that applies queued writes in batches, one
//! transaction per batch, spans and log lines each as one multi-row insert.
//! The transaction also tells the other nodes what it holds (`NOTIFY`), so
//! they hear of an event only once it is committed.

use super::nodes::Notice;
use super::text;
use crate::store::health::{BackOff, DatabaseHealth, is_transient, is_unavailable};
use crate::store::records::{RunRecord, Trigger};
use crate::store::writes::{Committed, MAX_BATCH, Write, merge_short_spans, settle};
use crate::trace::ErrorInfo;
use anyhow::Context;
use deadpool_postgres::{Pool, Transaction};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc::UnboundedReceiver;

// Nearly every message is a write: boxing them would cost an allocation
// per span to save memory only on the rare flush.
#[allow(clippy::large_enum_variant)]
/// What the writer task is sent.
pub enum Message {
    Write(Write),
    /// Answered once everything queued before it is committed.
    Flush(Committed),
    /// Commit what came before and stop.
    Close,
}

pub(super) async fn run_writer(
    pool: Pool,
    node: Arc<OnceLock<String>>,
    health: Arc<DatabaseHealth>,
    mut queue: UnboundedReceiver<Message>,
) {
    let mut batch: Vec<Message> = Vec::with_capacity(MAX_BATCH);
    loop {
        match queue.recv().await {
            Some(first) => batch.push(first),
            None => return,
        }
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(message) => batch.push(message),
                Err(_) => break,
            }
        }
        let mut writes: Vec<Write> = Vec::with_capacity(batch.len());
        let mut flushes: Vec<Committed> = Vec::new();
        let mut closing = false;
        for message in batch.drain(..) {
            match message {
                Message::Write(write) => writes.push(write),
                Message::Flush(reply) => flushes.push(reply),
                Message::Close => closing = true,
            }
        }
        let outcome = if writes.is_empty() { Ok(()) } else { apply(&pool, node.get(), &health, &writes).await };
        settle(writes, &outcome);
        for reply in flushes {
            let _ = reply.send(outcome.clone());
        }
        if closing {
            return;
        }
    }
}

/// How many times a batch the database refused for a reason other than an
/// outage (a race it lost, a statement it rejected) is written again.
const REFUSED_AGAIN: u32 = 3;

/// Write a batch in one transaction, exactly once, however long the
/// database is away: while it cannot be reached (refused, restarting, a
/// connection lost, a standby not yet promoted) the batch is kept and
/// written again with back-off, and the writes queued behind it wait, so
/// everything is written in order. The runs making them slow down as the
/// writer falls behind (`keep_pace`), so what waits is bounded. Whether a
/// commit whose answer was lost happened, the database says (`txid_status`),
/// asked until it answers: a batch is written again only when it surely was
/// not. A batch the database refuses outright is rolled back whole and
/// reported; nothing is half-written.
async fn apply(pool: &Pool, node: Option<&String>, health: &DatabaseHealth, writes: &[Write]) -> Result<(), String> {
    let mut back_off = BackOff::default();
    let mut refused = 0;
    // A transaction whose commit was sent but not answered.
    let mut unanswered: Option<i64> = None;
    loop {
        let attempt = match unanswered {
            Some(xid) => match commit_status(pool, xid).await {
                Ok(Some(true)) => return Ok(()),
                Ok(Some(false)) => {
                    unanswered = None;
                    tracing::warn!(xid, "a batch was not committed; writing it again");
                    write_once(pool, node, writes).await
                }
                // Still in progress: its connection's end is not yet known.
                Ok(None) => Err(Failed::Committing { error: anyhow::anyhow!("transaction {xid} is in progress"), xid }),
                Err(error) => Err(Failed::Writing(error)),
            },
            None => write_once(pool, node, writes).await,
        };
        let error = match attempt {
            Ok(()) => {
                health.answered();
                return Ok(());
            }
            Err(Failed::Committing { error, xid }) => {
                unanswered = Some(xid);
                error
            }
            Err(Failed::Writing(error)) => error,
        };
        if is_unavailable(&error) || unanswered.is_some() {
            health.unreachable(&error);
            back_off.wait().await;
            continue;
        }
        health.answered();
        refused += 1;
        if refused > REFUSED_AGAIN || !(is_transient(&error) || refused == 1) {
            // The batch is rolled back whole; nothing is half-written.
            tracing::error!(error = format!("{error:#}"), "the store could not write a batch");
            return Err(format!("the store could not write: {error:#}"));
        }
        tracing::warn!(error = format!("{error:#}"), "a batch failed before its commit; writing it again");
    }
}

/// Whether transaction `xid` was committed (None: it is still in progress).
async fn commit_status(pool: &Pool, xid: i64) -> anyhow::Result<Option<bool>> {
    let client = pool.get().await.context("get a PostgreSQL connection")?;
    let status = super::row(&client, "SELECT txid_status($1)", &[&xid]).await?;
    match status.and_then(|row| row.get::<_, Option<String>>(0)).as_deref() {
        Some("committed") => Ok(Some(true)),
        Some("aborted") => Ok(Some(false)),
        Some("in progress") => Ok(None),
        other => anyhow::bail!("the database cannot say whether transaction {xid} was committed ({other:?})"),
    }
}

/// One try at writing the batch, on a connection from the pool.
async fn write_once(pool: &Pool, node: Option<&String>, writes: &[Write]) -> Result<(), Failed> {
    let mut client = pool.get().await.context("get a PostgreSQL connection").map_err(Failed::Writing)?;
    let tx = client.transaction().await.map_err(|error| Failed::Writing(error.into()))?;
    write_batch(tx, node, writes).await
}

/// Where a batch failed: before its commit (nothing was committed), or in
/// it (transaction `xid` may have been committed or not).
enum Failed {
    Writing(anyhow::Error),
    Committing { error: anyhow::Error, xid: i64 },
}

async fn write_batch(tx: Transaction<'_>, node: Option<&String>, writes: &[Write]) -> Result<(), Failed> {
    let xid = stage_batch(&tx, node, writes).await.map_err(Failed::Writing)?;
    tx.commit().await.map_err(|error| Failed::Committing { error: error.into(), xid })
}

/// Every row of the batch, written in `tx`, not yet committed; the
/// transaction's id.
async fn stage_batch(tx: &Transaction<'_>, node: Option<&String>, writes: &[Write]) -> anyhow::Result<i64> {
    // Runs another node ended meanwhile (this node's lease ran out and its
    // runs were ended `interrupted`), or took to resume (durable runs):
    // nothing more of theirs is written from here, so their records and
    // trees stay as every watcher was told, and one node writes each run.
    let mut run_ids: Vec<&str> = writes.iter().map(|write| write.run_seq().0).collect();
    run_ids.sort_unstable();
    run_ids.dedup();
    // A durable run another node takes (`interrupt_runs`) waits for this
    // batch, and this batch for a takeover in progress: the check below
    // then sees who holds the run, and the taker reads all this wrote.
    let locked = super::row(
        tx,
        "WITH locked AS (SELECT 1 FROM runs WHERE run_id = ANY($1) AND durable FOR SHARE)
         SELECT txid_current(), (SELECT count(*) FROM locked)",
        &[&run_ids],
    )
    .await?;
    let xid: i64 = locked.context("the lock statement returns a row")?.try_get(0)?;
    let ended: std::collections::HashSet<String> = super::rows(
        tx,
        "SELECT run_id FROM runs WHERE run_id = ANY($1)
             AND (status NOT IN ('queued', 'running') OR ($2::text IS NOT NULL AND node <> $2))",
        &[&run_ids, &node],
    )
    .await?
    .iter()
    .map(|row| row.get(0))
    .collect();
    let merged = merge_short_spans(writes.iter());
    let mut spans = SpanRows::default();
    let mut logs = LogRows::default();
    let mut journal = JournalRows::default();
    let mut notices = Notices::default();
    for (index, write) in writes.iter().enumerate() {
        let (run_id, seq) = write.run_seq();
        if ended.contains(run_id) {
            write.refuse_barrier("the run has ended, or is another node's now");
            continue;
        }
        match (seq, write) {
            // Nobody watches a journal: no notice for it.
            (_, Write::Journal { .. } | Write::JournalCommitted { .. }) => {}
            (Some(seq), _) => notices.event(run_id, seq),
            (None, _) => notices.run(run_id),
        }
        match write {
            Write::RunCreated { run, source, launch } => {
                super::exec(
                    tx,
                    "INSERT INTO sources (sha256, text) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING",
                    &[&run.source_sha256, &text(source)],
                )
                .await?;
                let launch = launch.as_ref().map(serde_json::to_string).transpose()?;
                // Durable runs keep theirs too; only a run without a node waits.
                notices.queued |= launch.is_some() && run.node.is_none();
                insert_run(tx, run, launch.as_deref().map(text)).await?;
                if let Trigger::Retry { retry_of } = &run.trigger {
                    super::exec(tx, "DELETE FROM retries WHERE run_id = $1", &[retry_of]).await?;
                }
            }
            Write::RunStarted { run_id, start_us } => {
                let statement = tx
                    .prepare_cached(
                        "UPDATE runs SET status = 'running', start_us = $2 WHERE run_id = $1 AND status = 'queued'",
                    )
                    .await?;
                tx.execute(&statement, &[run_id, start_us]).await?;
            }
            Write::RunFinished { run, retry, .. } => {
                finish_run(tx, run).await?;
                if let Some(retry) = retry {
                    super::exec(
                        tx,
                        "INSERT INTO retries (run_id, due_us, launch) VALUES ($1, $2, $3)
                         ON CONFLICT (run_id) DO UPDATE SET due_us = EXCLUDED.due_us, launch = EXCLUDED.launch",
                        &[&retry.run_id, &retry.due_us, &text(&serde_json::to_string(&retry.launch)?)],
                    )
                    .await?;
                }
            }
            Write::SpanStarted { .. } if merged.skip_start[index] => {}
            Write::SpanStarted { span, seq, .. } => spans.push(span, Some(*seq), None),
            Write::SpanEnded { span, seq, .. } => spans.push(span, merged.start_seq[index], Some(*seq)),
            Write::Log { line, .. } => logs.push(line),
            Write::Journal { run_id, stream, index, entry } => journal.push(run_id, stream, *index, entry),
            Write::JournalCommitted { .. } => {}
        }
    }
    spans.write(tx).await?;
    logs.write(tx).await?;
    journal.write(tx).await?;
    super::nodes::send(tx, notices.all(node)).await?;
    Ok(xid)
}

async fn insert_run(
    tx: &Transaction<'_>,
    run: &RunRecord,
    launch: Option<std::borrow::Cow<'_, str>>,
) -> anyhow::Result<()> {
    let statement = tx
        .prepare_cached(
            "INSERT INTO runs (run_id, flow, version, source_sha256, status, input, quotas, created_us, node, launch,
                               started_by, attempt, first_run_id, durable, workspace)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .await?;
    tx.execute(
        &statement,
        &[
            &run.run_id,
            &run.flow,
            &run.version.map(|v| v as i32),
            &run.source_sha256,
            &run.status.as_str(),
            &text(&run.input.to_string()),
            &serde_json::to_string(&run.quotas).unwrap_or_default(),
            &run.created_us,
            &run.node,
            &launch,
            &serde_json::to_string(&run.trigger).unwrap_or_default(),
            &(run.attempt as i32),
            &run.first_run_id_if_not_own(),
            &run.durable,
            &run.workspace,
        ],
    )
    .await?;
    Ok(())
}

async fn finish_run(tx: &Transaction<'_>, run: &RunRecord) -> anyhow::Result<()> {
    let json = |value: &Option<serde_json::Value>| value.as_ref().map(|v| text(&v.to_string()).into_owned());
    let statement = tx
        .prepare_cached(
            "UPDATE runs SET status = $2, output = $3, error = $4, usage = $5, start_us = COALESCE(start_us, $6),
             end_us = $7, last_seq = $8 WHERE run_id = $1 AND status IN ('queued', 'running')",
        )
        .await?;
    tx.execute(
        &statement,
        &[
            &run.run_id,
            &run.status.as_str(),
            &json(&run.output),
            &run.error.as_ref().map(|e| text(&e.to_json_string()).into_owned()),
            &run.usage.as_ref().map(|u| serde_json::to_string(u).unwrap_or_default()),
            &run.start_us,
            &run.end_us,
            &(run.last_seq as i64),
        ],
    )
    .await?;
    Ok(())
}

/// The span rows of a batch, as columns for one `INSERT ... SELECT FROM
/// UNNEST(...)`. A span is in it once (an upsert may not touch a row twice).
#[derive(Default)]
struct SpanRows {
    at: HashMap<(String, i64), usize>,
    run_id: Vec<String>,
    span_id: Vec<i64>,
    parent_id: Vec<Option<i64>>,
    kind: Vec<&'static str>,
    name: Vec<String>,
    status: Vec<&'static str>,
    start_us: Vec<i64>,
    end_us: Vec<Option<i64>>,
    attrs: Vec<String>,
    error: Vec<Option<String>>,
    line: Vec<Option<i32>>,
    start_seq: Vec<i64>,
    end_seq: Vec<Option<i64>>,
}

impl SpanRows {
    fn push(&mut self, span: &crate::trace::Span, start_seq: Option<u64>, end_seq: Option<u64>) {
        let key = (span.run_id.clone(), span.span_id as i64);
        let attrs = text(&serde_json::Value::Object(span.attrs.clone()).to_string()).into_owned();
        let error = span.error.as_ref().map(|e| text(&ErrorInfo::to_json_string(e)).into_owned());
        if let Some(&index) = self.at.get(&key) {
            self.status[index] = span.status.as_str();
            self.end_us[index] = span.end_us;
            self.attrs[index] = attrs;
            self.error[index] = error;
            self.end_seq[index] = end_seq.map(|s| s as i64).or(self.end_seq[index]);
            return;
        }
        self.at.insert(key, self.run_id.len());
        self.run_id.push(span.run_id.clone());
        self.span_id.push(span.span_id as i64);
        self.parent_id.push(span.parent_id.map(|p| p as i64));
        self.kind.push(span.kind.as_str());
        self.name.push(text(&span.name).into_owned());
        self.status.push(span.status.as_str());
        self.start_us.push(span.start_us);
        self.end_us.push(span.end_us);
        self.attrs.push(attrs);
        self.error.push(error);
        self.line.push(span.line.map(|l| l as i32));
        self.start_seq.push(start_seq.unwrap_or(0) as i64);
        self.end_seq.push(end_seq.map(|s| s as i64));
    }

    async fn write(&self, tx: &Transaction<'_>) -> anyhow::Result<()> {
        if self.run_id.is_empty() {
            return Ok(());
        }
        // A span whose start was committed earlier keeps that start's seq.
        let statement = tx
            .prepare_cached(
                "INSERT INTO spans (run_id, span_id, parent_id, kind, name, status, start_us, end_us, attrs, error,
                                    line, start_seq, end_seq)
                 SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::text[], $5::text[], $6::text[],
                                      $7::int8[], $8::int8[], $9::text[], $10::text[], $11::int4[], $12::int8[],
                                      $13::int8[])
                 ON CONFLICT (run_id, span_id) DO UPDATE SET
                    status = excluded.status, end_us = excluded.end_us, attrs = excluded.attrs,
                    error = excluded.error, end_seq = COALESCE(excluded.end_seq, spans.end_seq)
                 WHERE spans.status = 'running'",
            )
            .await?;
        tx.execute(
            &statement,
            &[
                &self.run_id,
                &self.span_id,
                &self.parent_id,
                &self.kind,
                &self.name,
                &self.status,
                &self.start_us,
                &self.end_us,
                &self.attrs,
                &self.error,
                &self.line,
                &self.start_seq,
                &self.end_seq,
            ],
        )
        .await?;
        Ok(())
    }
}

/// The log lines of a batch, as columns for one insert.
#[derive(Default)]
struct LogRows {
    run_id: Vec<String>,
    seq: Vec<i64>,
    span_id: Vec<i64>,
    ts_us: Vec<i64>,
    stream: Vec<&'static str>,
    text: Vec<String>,
}

impl LogRows {
    fn push(&mut self, line: &crate::trace::LogLine) {
        self.run_id.push(line.run_id.clone());
        self.seq.push(line.seq as i64);
        self.span_id.push(line.span_id as i64);
        self.ts_us.push(line.ts_us);
        self.stream.push(line.stream.as_str());
        self.text.push(text(&line.text).into_owned());
    }

    async fn write(&self, tx: &Transaction<'_>) -> anyhow::Result<()> {
        if self.run_id.is_empty() {
            return Ok(());
        }
        let statement = tx
            .prepare_cached(
                "INSERT INTO logs (run_id, seq, span_id, ts_us, stream, text)
                 SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::text[], $6::text[])
                 ON CONFLICT (run_id, seq) DO NOTHING",
            )
            .await?;
        tx.execute(&statement, &[&self.run_id, &self.seq, &self.span_id, &self.ts_us, &self.stream, &self.text])
            .await?;
        Ok(())
    }
}

/// A batch's journal entries, inserted with one statement.
#[derive(Default)]
struct JournalRows {
    run_id: Vec<String>,
    stream: Vec<String>,
    index: Vec<i32>,
    entry: Vec<String>,
}

impl JournalRows {
    fn push(&mut self, run_id: &str, stream: &str, index: u32, entry: &str) {
        self.run_id.push(run_id.to_string());
        self.stream.push(stream.to_string());
        self.index.push(index as i32);
        self.entry.push(text(entry).into_owned());
    }

    async fn write(&self, tx: &Transaction<'_>) -> anyhow::Result<()> {
        if self.run_id.is_empty() {
            return Ok(());
        }
        let statement = tx
            .prepare_cached(
                "INSERT INTO journal (run_id, stream, idx, entry)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::int4[], $4::text[])
                 ON CONFLICT (run_id, stream, idx) DO NOTHING",
            )
            .await?;
        tx.execute(&statement, &[&self.run_id, &self.stream, &self.index, &self.entry]).await?;
        Ok(())
    }
}

/// What a batch tells the other nodes: for each run, the last seq it
/// committed, and which runs' records changed.
#[derive(Default)]
struct Notices {
    runs: BTreeMap<String, (Option<u64>, bool)>,
    /// A run joined the shared queue: idle nodes claim it.
    queued: bool,
}

impl Notices {
    fn event(&mut self, run_id: &str, seq: u64) {
        let entry = self.runs.entry(run_id.to_string()).or_default();
        entry.0 = Some(entry.0.map_or(seq, |last| last.max(seq)));
    }

    fn run(&mut self, run_id: &str) {
        self.runs.entry(run_id.to_string()).or_default().1 = true;
    }

    fn all(&self, node: Option<&String>) -> Vec<Notice> {
        let notices = self.runs.iter().flat_map(|(run_id, (seq, changed))| {
            let event = seq.map(|seq| Notice::Events { run_id: run_id.clone(), seq });
            let record = changed.then(|| Notice::Run { run_id: run_id.clone(), by: node.cloned() });
            event.into_iter().chain(record)
        });
        notices.chain(self.queued.then_some(Notice::Queued)).collect()
    }
}
