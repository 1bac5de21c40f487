//! The writes a run makes while it goes, queued to the store's one writer
//! and applied in batches, one transaction per batch, so a run never waits
//! on the database and a burst of spans costs one commit. Both backends'
//! writers share what is decided here: which rows a batch writes, and what
//! happens once it is committed (or not).

use super::records::{Launch, PendingRetry, RunRecord};
use crate::trace::bus::RunChannel;
use crate::trace::{LogLine, Span};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Most writes applied in one transaction.
pub(crate) const MAX_BATCH: usize = 8192;

/// Told once a write is committed, or why it could not be: a caller that
/// waits for a write learns when the database does not hold it.
pub type Committed = oneshot::Sender<Result<(), String>>;

/// An event to hand to its run's watchers once the write carrying it is
/// committed: a watcher never sees what the store might lose in a crash.
pub struct Published {
    pub channel: Arc<RunChannel>,
    pub text: Arc<str>,
}

pub enum Write {
    /// A run was accepted (status `queued`); `source` is what it runs.
    /// `launch` is set for a run put in the nodes' shared queue (no node
    /// yet): what any node needs to start it.
    RunCreated {
        run: Box<RunRecord>,
        source: Arc<str>,
        launch: Option<Box<Launch>>,
    },
    RunStarted {
        run_id: String,
        start_us: i64,
    },
    /// The run's final state; `stored` is told once it is committed.
    /// `retry` is its next attempt, kept in the same transaction so that a
    /// crash cannot lose it; the next attempt's `RunCreated` takes it away.
    RunFinished {
        run: Box<RunRecord>,
        stored: Option<Committed>,
        retry: Option<Box<PendingRetry>>,
    },
    /// A span opened (`seq` is its start event) or ended (its end event).
    SpanStarted {
        span: Span,
        seq: u64,
        publish: Option<Published>,
    },
    SpanEnded {
        span: Span,
        seq: u64,
        publish: Option<Published>,
    },
    Log {
        line: LogLine,
        publish: Option<Published>,
    },
    /// An answer the host gave one of the run's instances: entry `index` of
    /// its `stream` of the journal, as JSON.
    Journal {
        run_id: String,
        stream: Arc<str>,
        index: u32,
        entry: String,
    },
    /// Writes nothing: `done` is told once every write queued before it is
    /// committed (a durable run's journal, before an answer reaches the
    /// guest), or that the database does not hold the run's writes. Taken
    /// by whoever tells it.
    JournalCommitted {
        run_id: String,
        done: std::sync::Mutex<Option<Committed>>,
    },
}

impl Write {
    /// A barrier for run `run_id`'s writes queued so far, and what tells
    /// once they are committed.
    pub fn journal_committed(run_id: String) -> (Write, oneshot::Receiver<Result<(), String>>) {
        let (done, committed) = oneshot::channel();
        (Write::JournalCommitted { run_id, done: std::sync::Mutex::new(Some(done)) }, committed)
    }

    /// Tell a `JournalCommitted` barrier its run's writes are not held.
    pub(crate) fn refuse_barrier(&self, why: &str) {
        self.answer_barrier(&Err(why.to_string()));
    }

    /// Tell a `JournalCommitted` barrier how its batch went, once.
    fn answer_barrier(&self, outcome: &Result<(), String>) {
        if let Write::JournalCommitted { done, .. } = self
            && let Some(done) = done.lock().unwrap_or_else(|p| p.into_inner()).take()
        {
            let _ = done.send(outcome.clone());
        }
    }

    /// The run this write belongs to, and the seq of its event if it has one.
    pub(crate) fn run_seq(&self) -> (&str, Option<u64>) {
        match self {
            Write::RunCreated { run, .. } | Write::RunFinished { run, .. } => (&run.run_id, None),
            Write::RunStarted { run_id, .. }
            | Write::Journal { run_id, .. }
            | Write::JournalCommitted { run_id, .. } => (run_id, None),
            Write::SpanStarted { span, seq, .. } | Write::SpanEnded { span, seq, .. } => (&span.run_id, Some(*seq)),
            Write::Log { line, .. } => (&line.run_id, Some(line.seq)),
        }
    }
}

/// After a batch is committed, or rolled back whole: every write's waiter
/// is told the outcome and every event reaches its watchers, in order, so
/// none is dropped with the batch and no stream stalls on a gap.
pub(crate) fn settle(batch: impl IntoIterator<Item = Write>, outcome: &Result<(), String>) {
    for write in batch {
        match write {
            Write::RunFinished { stored: Some(stored), .. } => {
                let _ = stored.send(outcome.clone());
            }
            barrier @ Write::JournalCommitted { .. } => barrier.answer_barrier(outcome),
            Write::SpanStarted { publish, .. } | Write::SpanEnded { publish, .. } | Write::Log { publish, .. } => {
                if let Some(event) = publish {
                    event.channel.publish(event.text);
                }
            }
            Write::RunFinished { stored: None, .. }
            | Write::RunCreated { .. }
            | Write::RunStarted { .. }
            | Write::Journal { .. } => {}
        }
    }
}

/// Spans that start and end within one batch, written once rather than
/// inserted and then updated: most spans are that short, and it halves the
/// span rows the writer touches.
pub(crate) struct MergedSpans {
    /// The start of a span whose end is later in the batch: not written alone.
    pub skip_start: Vec<bool>,
    /// For a span's end, its start's seq when that start was merged into it.
    pub start_seq: Vec<Option<u64>>,
}

pub(crate) fn merge_short_spans<'a>(batch: impl ExactSizeIterator<Item = &'a Write>) -> MergedSpans {
    let mut merged = MergedSpans { skip_start: vec![false; batch.len()], start_seq: vec![None; batch.len()] };
    let mut open: HashMap<(&str, u64), (usize, u64)> = HashMap::new();
    for (index, write) in batch.enumerate() {
        match write {
            Write::SpanStarted { span, seq, .. } => {
                open.insert((span.run_id.as_str(), span.span_id), (index, *seq));
            }
            Write::SpanEnded { span, .. } => {
                if let Some((start_index, seq)) = open.remove(&(span.run_id.as_str(), span.span_id)) {
                    merged.skip_start[start_index] = true;
                    merged.start_seq[index] = Some(seq);
                }
            }
            _ => {}
        }
    }
    merged
}
