//! A stored run's events rebuilt for watchers that join late: each span's
//! start (as `running`) and end, and its log lines, in seq order. Both
//! backends read the rows in one snapshot and build the page here.

use crate::trace::{LogLine, RunEvent, Span, Status};

/// A span row and the seqs of its start and end events.
pub(crate) type SpanRow = (Span, u64, Option<u64>);

/// The events after the cursor among the first `limit` starts, ends and
/// log lines after it (each read in its own seq order), at most `limit`.
pub(crate) fn page_events(starts: Vec<SpanRow>, ends: Vec<SpanRow>, logs: Vec<LogLine>, limit: usize) -> Vec<RunEvent> {
    let mut events: Vec<RunEvent> = Vec::with_capacity(starts.len() + ends.len() + logs.len());
    for (mut span, seq, _) in starts {
        span.status = Status::Running;
        span.end_us = None;
        span.error = None;
        events.push(RunEvent::SpanStarted { seq, span });
    }
    for (span, _, end_seq) in ends {
        events.push(RunEvent::SpanEnded { seq: end_seq.unwrap_or_default(), span });
    }
    events.extend(logs.into_iter().map(RunEvent::Log));
    events.sort_by_key(RunEvent::seq);
    events.truncate(limit);
    events
}

/// Past the stored events: the spans crash recovery closed, which never had
/// an end event, numbered after the last stored seq (innermost first, as
/// `closed` is ordered).
pub(crate) fn recovered_events(closed: Vec<SpanRow>, last_stored: u64, after_seq: u64) -> Vec<RunEvent> {
    (last_stored + 1..)
        .zip(closed)
        .filter(|(seq, _)| *seq > after_seq)
        .map(|(seq, (span, _, _))| RunEvent::SpanEnded { seq, span })
        .collect()
}
