//! The per-run span stack. The host, not the guest, owns it: the host issues
//! span ids, picks each span's parent, and closes whatever is left open.

use super::{EventSink, LogLine, LogStream, RunEvent, Span, SpanKind, Status, now_us};
use serde_json::{Map, Value};

/// Why the guest's request to close a span was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpanStackError {
    #[error("span {0} is not open")]
    NotOpen(u64),
    #[error(
        "span {requested} is not the innermost open span (span {innermost} is); close spans in the order they were opened"
    )]
    NotInnermost { requested: u64, innermost: u64 },
}

pub struct Recorder {
    run_id: String,
    /// Ids are issued here and never reused within a run.
    next_span_id: u64,
    /// Every event of the run gets the next one; no gaps.
    next_seq: u64,
    /// Open spans, outermost first: the top is the parent of the next span.
    stack: Vec<Span>,
    /// Open leaf spans (service calls) that sit beside the stack rather than
    /// on it, so several can be open at once under the same parent.
    leaves: Vec<Span>,
    sink: EventSink,
    /// Spans opened so far, for the `spans` quota.
    spans_started: u64,
}

impl Recorder {
    pub fn new(run_id: String, sink: EventSink) -> Recorder {
        Recorder { run_id, next_span_id: 1, next_seq: 1, stack: Vec::new(), leaves: Vec::new(), sink, spans_started: 0 }
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    pub fn spans_started(&self) -> u64 {
        self.spans_started
    }

    /// How many spans are open; `close_above(depth, ..)` returns to it.
    pub fn depth(&self) -> usize {
        self.stack.len()
    }

    /// The innermost open span, which log lines and new spans attach to.
    pub fn current(&self) -> Option<u64> {
        self.stack.last().map(|span| span.span_id)
    }

    fn next_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    fn emit(&self, event: RunEvent) {
        // A sink whose reader has gone (a CLI that stopped listening) must not
        // stop the run: the events are simply not wanted any more.
        let _ = self.sink.send(event);
    }

    /// Open a span as a child of the innermost open span and return its id.
    pub fn start(&mut self, kind: SpanKind, name: &str, attrs: Map<String, Value>, line: Option<u32>) -> u64 {
        let span = self.open(kind, name, attrs, line);
        let span_id = span.span_id;
        self.stack.push(span);
        span_id
    }

    /// Open a leaf span (it will have no children) under the innermost open
    /// span, without making it the parent of what comes next.
    pub fn start_leaf(&mut self, kind: SpanKind, name: &str, attrs: Map<String, Value>, line: Option<u32>) -> u64 {
        let span = self.open(kind, name, attrs, line);
        let span_id = span.span_id;
        self.leaves.push(span);
        span_id
    }

    /// Close an open leaf span.
    pub fn end_leaf(
        &mut self,
        span_id: u64,
        status: Status,
        attrs: Map<String, Value>,
        error: Option<Value>,
    ) -> Result<(), SpanStackError> {
        let index = self.leaves.iter().position(|s| s.span_id == span_id).ok_or(SpanStackError::NotOpen(span_id))?;
        let span = self.leaves.swap_remove(index);
        self.finish(span, status, attrs, error);
        Ok(())
    }

    fn open(&mut self, kind: SpanKind, name: &str, attrs: Map<String, Value>, line: Option<u32>) -> Span {
        let span_id = self.next_span_id;
        self.next_span_id += 1;
        self.spans_started += 1;
        let span = Span {
            run_id: self.run_id.clone(),
            span_id,
            parent_id: self.current(),
            kind,
            name: name.to_owned(),
            status: Status::Running,
            start_us: now_us(),
            end_us: None,
            attrs,
            error: None,
            line,
        };
        let seq = self.next_seq();
        self.emit(RunEvent::SpanStarted { seq, span: span.clone() });
        span
    }

    /// Close the innermost span, which must be `span_id`.
    pub fn end(
        &mut self,
        span_id: u64,
        status: Status,
        attrs: Map<String, Value>,
        error: Option<Value>,
    ) -> Result<(), SpanStackError> {
        match self.stack.last() {
            Some(top) if top.span_id == span_id => {}
            Some(top) if self.stack.iter().any(|s| s.span_id == span_id) => {
                return Err(SpanStackError::NotInnermost { requested: span_id, innermost: top.span_id });
            }
            _ => return Err(SpanStackError::NotOpen(span_id)),
        }
        self.pop(status, attrs, error);
        Ok(())
    }

    fn pop(&mut self, status: Status, attrs: Map<String, Value>, error: Option<Value>) {
        let Some(span) = self.stack.pop() else { return };
        self.finish(span, status, attrs, error);
    }

    fn finish(&mut self, mut span: Span, status: Status, attrs: Map<String, Value>, error: Option<Value>) {
        span.status = status;
        span.end_us = Some(now_us().max(span.start_us));
        span.attrs.extend(attrs);
        span.error = error;
        let seq = self.next_seq();
        self.emit(RunEvent::SpanEnded { seq, span });
    }

    /// Close every span above `depth`, innermost first, with `status`. This is
    /// how a trap, a timeout, a quota or a cancel still leaves a whole tree.
    pub fn close_above(&mut self, depth: usize, status: Status, error: Option<&Value>) {
        while self.stack.len() > depth {
            let parent = self.stack.last().map(|s| s.span_id);
            while let Some(index) = self.leaves.iter().position(|leaf| leaf.parent_id == parent) {
                let leaf = self.leaves.swap_remove(index);
                self.finish(leaf, status, Map::new(), error.cloned());
            }
            self.pop(status, Map::new(), error.cloned());
        }
    }

    /// Add attributes to the open span `span_id` (no-op if it is not open).
    pub fn set_attrs(&mut self, span_id: u64, attrs: Map<String, Value>) {
        if let Some(span) = self.stack.iter_mut().rev().find(|s| s.span_id == span_id) {
            span.attrs.extend(attrs);
        }
    }

    /// Append a log line to the innermost open span.
    pub fn log(&mut self, stream: LogStream, text: String) {
        let Some(span_id) = self.current() else { return };
        let seq = self.next_seq();
        self.emit(RunEvent::Log(LogLine { run_id: self.run_id.clone(), span_id, seq, ts_us: now_us(), stream, text }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    fn recorder() -> (Recorder, mpsc::UnboundedReceiver<RunEvent>) {
        let (sink, events) = mpsc::unbounded_channel();
        (Recorder::new("r1".into(), sink), events)
    }

    #[test]
    fn parents_follow_the_stack_and_seq_has_no_gaps() {
        let (mut rec, mut events) = recorder();
        let root = rec.start(SpanKind::Flow, "f", Map::new(), None);
        let step = rec.start(SpanKind::Step, "s", Map::new(), Some(3));
        rec.log(LogStream::Stdout, "hi".into());
        rec.end(step, Status::Ok, Map::new(), None).unwrap();
        rec.end(root, Status::Ok, Map::new(), None).unwrap();
        let mut seqs = Vec::new();
        let mut parents = Vec::new();
        while let Ok(event) = events.try_recv() {
            seqs.push(event.seq());
            if let RunEvent::SpanStarted { span, .. } = &event {
                parents.push((span.span_id, span.parent_id));
            }
            if let RunEvent::Log(line) = &event {
                assert_eq!(line.span_id, step);
            }
        }
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
        assert_eq!(parents, vec![(root, None), (step, Some(root))]);
    }

    #[test]
    fn only_the_innermost_span_may_be_closed() {
        let (mut rec, _events) = recorder();
        let root = rec.start(SpanKind::Flow, "f", Map::new(), None);
        let _step = rec.start(SpanKind::Step, "s", Map::new(), None);
        assert!(matches!(rec.end(root, Status::Ok, Map::new(), None), Err(SpanStackError::NotInnermost { .. })));
        assert_eq!(rec.end(99, Status::Ok, Map::new(), None), Err(SpanStackError::NotOpen(99)));
    }

    #[test]
    fn leaves_open_side_by_side_and_are_closed_with_their_parent() {
        let (mut rec, mut events) = recorder();
        let root = rec.start(SpanKind::Flow, "f", Map::new(), None);
        let step = rec.start(SpanKind::Step, "s", Map::new(), None);
        let a = rec.start_leaf(SpanKind::Rpc, "x.a", Map::new(), None);
        let b = rec.start_leaf(SpanKind::Rpc, "x.b", Map::new(), None);
        assert_eq!(rec.current(), Some(step), "leaves are never parents");
        rec.end_leaf(b, Status::Ok, Map::new(), None).unwrap();
        rec.close_above(1, Status::Cancelled, None);
        let ended: Vec<(u64, Option<u64>, Status)> = std::iter::from_fn(|| events.try_recv().ok())
            .filter_map(|e| match e {
                RunEvent::SpanEnded { span, .. } => Some((span.span_id, span.parent_id, span.status)),
                _ => None,
            })
            .collect();
        assert_eq!(
            ended,
            vec![
                (b, Some(step), Status::Ok),
                (a, Some(step), Status::Cancelled),
                (step, Some(root), Status::Cancelled)
            ]
        );
        assert_eq!(rec.end_leaf(a, Status::Ok, Map::new(), None), Err(SpanStackError::NotOpen(a)));
    }

    #[test]
    fn close_above_leaves_no_running_span() {
        let (mut rec, mut events) = recorder();
        rec.start(SpanKind::Flow, "f", Map::new(), None);
        rec.start(SpanKind::Step, "a", Map::new(), None);
        rec.start(SpanKind::Step, "b", Map::new(), None);
        rec.close_above(1, Status::TimedOut, None);
        assert_eq!(rec.depth(), 1);
        let ended: Vec<_> = std::iter::from_fn(|| events.try_recv().ok())
            .filter_map(|e| match e {
                RunEvent::SpanEnded { span, .. } => Some((span.name, span.status)),
                _ => None,
            })
            .collect();
        assert_eq!(ended, vec![("b".into(), Status::TimedOut), ("a".into(), Status::TimedOut)]);
    }
}
