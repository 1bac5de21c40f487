//! The run's open spans. The host, not the guest, owns them: the host issues
//! span ids, picks each span's parent, and closes whatever is left open.
//!
//! Open spans form a tree rather than one stack, because a run can have
//! several branches going at once: service calls made together, and subflows
//! run side by side, each with its own steps. Each sandbox instance keeps the
//! stack of its own steps (`HostState`); the recorder only checks that a span
//! is closed after its children.

use super::{ErrorInfo, EventSink, LogLine, LogStream, RunEvent, Span, SpanKind, Status, now_us};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// Why a request to close a span was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpanStackError {
    #[error("span {0} is not open")]
    NotOpen(u64),
    #[error("span {span} still has span {child} open inside it; close spans in the reverse order they were opened")]
    ChildrenOpen { span: u64, child: u64 },
}

pub struct Recorder {
    run_id: String,
    /// Ids are issued here and never reused within a run. A child's id is
    /// always greater than its parent's, which `close_under` relies on.
    next_span_id: u64,
    /// Every event of the run gets the next one; no gaps.
    next_seq: u64,
    /// Open spans by id. A span's parent is open for as long as it is.
    open: BTreeMap<u64, Span>,
    sink: EventSink,
    /// Spans opened so far, for the `spans` quota.
    spans_started: u64,
    /// For a durable run resumed after a crash: what its first life stored.
    earlier: Option<Earlier>,
    /// Open spans whose end is stored already: closed without an event.
    quiet: HashSet<u64>,
    /// Emits nothing more (a durable run suspended as the server stops).
    muted: bool,
}

/// What a resumed run stored before the crash. A resumed run does again
/// what it did, in the same order within each span (the journal answers it
/// as before), so the span it opens as the k-th child of its kind, name and
/// call under a parent is the stored one in that place: it keeps that
/// span's id and emits no event the store holds already. Past what was
/// stored, the tree goes on under the same spans with new ids and seqs.
struct Earlier {
    /// Stored spans by place, in the order they started.
    places: HashMap<Place, VecDeque<u64>>,
    /// Stored spans as they started, by id.
    started: HashMap<u64, Span>,
    /// Stored spans whose end is stored too.
    ended: HashSet<u64>,
    /// How many log lines each span has stored.
    logs: HashMap<u64, usize>,
}

/// Where a span opens: its parent, kind and name, and for a service call
/// or a subflow what it was called with (calls made side by side may open
/// their spans in another order after a resume).
type Place = (Option<u64>, SpanKind, String, String);

fn place(parent: Option<u64>, kind: SpanKind, name: &str, attrs: &Map<String, Value>) -> Place {
    let called_with = match kind {
        SpanKind::Rpc => attrs.get("params"),
        SpanKind::Subflow => attrs.get("input"),
        SpanKind::Flow | SpanKind::Step => None,
    };
    (parent, kind, name.to_owned(), called_with.map(Value::to_string).unwrap_or_default())
}

impl Recorder {
    pub fn new(run_id: String, sink: EventSink) -> Recorder {
        Recorder {
            run_id,
            next_span_id: 1,
            next_seq: 1,
            open: BTreeMap::new(),
            sink,
            spans_started: 0,
            earlier: None,
            quiet: HashSet::new(),
            muted: false,
        }
    }

    /// The recorder of a durable run resumed after a crash, whose stored
    /// events (in seq order) are `earlier`: the same tree, continued.
    pub fn resuming(run_id: String, sink: EventSink, earlier: &[RunEvent]) -> Recorder {
        let mut recorder = Recorder::new(run_id, sink);
        let mut stored =
            Earlier { places: HashMap::new(), started: HashMap::new(), ended: HashSet::new(), logs: HashMap::new() };
        for event in earlier {
            recorder.next_seq = recorder.next_seq.max(event.seq() + 1);
            match event {
                RunEvent::SpanStarted { span, .. } => {
                    recorder.next_span_id = recorder.next_span_id.max(span.span_id + 1);
                    let place = place(span.parent_id, span.kind, &span.name, &span.attrs);
                    stored.places.entry(place).or_default().push_back(span.span_id);
                    stored.started.insert(span.span_id, span.clone());
                }
                RunEvent::SpanEnded { span, .. } => {
                    stored.ended.insert(span.span_id);
                }
                RunEvent::Log(line) => *stored.logs.entry(line.span_id).or_default() += 1,
            }
        }
        recorder.earlier = Some(stored);
        recorder
    }

    /// The stored span in this place of a resumed run, if the first life
    /// got this far.
    fn stored_span(&mut self, place: Place) -> Option<Span> {
        let earlier = self.earlier.as_mut()?;
        let id = earlier.places.get_mut(&place)?.pop_front()?;
        let span = earlier.started.remove(&id)?;
        if earlier.ended.contains(&id) {
            self.quiet.insert(id);
        }
        Some(span)
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    pub fn spans_started(&self) -> u64 {
        self.spans_started
    }

    /// The seq of the latest event emitted, 0 before any.
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// How many spans are open.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    fn next_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Emit nothing more: the run stops here without its end recorded.
    pub fn mute(&mut self) {
        self.muted = true;
    }

    fn emit(&self, event: RunEvent) {
        if self.muted {
            return;
        }
        // A sink whose reader has gone (a CLI that stopped listening) must not
        // stop the run: the events are simply not wanted any more.
        let _ = self.sink.send(event);
    }

    /// Open a span under `parent` (None for the run's root) and return its id.
    /// A parent that is no longer open is a host bug; the span becomes a root
    /// rather than point at nothing.
    pub fn start(
        &mut self,
        parent: Option<u64>,
        kind: SpanKind,
        name: &str,
        attrs: Map<String, Value>,
        line: Option<u32>,
    ) -> u64 {
        debug_assert!(parent.is_none_or(|p| self.open.contains_key(&p)), "parent span {parent:?} is not open");
        let parent_id = parent.filter(|p| self.open.contains_key(p));
        self.spans_started += 1;
        if self.earlier.is_some()
            && let Some(span) = self.stored_span(place(parent_id, kind, name, &attrs))
        {
            let span_id = span.span_id;
            self.open.insert(span_id, span);
            return span_id;
        }
        let span_id = self.next_span_id;
        self.next_span_id += 1;
        let span = Span {
            run_id: self.run_id.clone(),
            span_id,
            parent_id,
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
        self.open.insert(span_id, span);
        span_id
    }

    /// Close span `span_id`, which must be open and have no open children.
    pub fn end(
        &mut self,
        span_id: u64,
        status: Status,
        attrs: Map<String, Value>,
        error: Option<ErrorInfo>,
    ) -> Result<(), SpanStackError> {
        if !self.open.contains_key(&span_id) {
            return Err(SpanStackError::NotOpen(span_id));
        }
        // Children have greater ids, so only spans after this one can be.
        if let Some(child) = self.open.range(span_id + 1..).find(|(_, s)| s.parent_id == Some(span_id)) {
            return Err(SpanStackError::ChildrenOpen { span: span_id, child: *child.0 });
        }
        let span = self.open.remove(&span_id).expect("checked above");
        self.finish(span, status, attrs, error);
        Ok(())
    }

    fn finish(&mut self, mut span: Span, status: Status, attrs: Map<String, Value>, error: Option<ErrorInfo>) {
        if self.quiet.remove(&span.span_id) {
            return;
        }
        span.status = status;
        span.end_us = Some(now_us().max(span.start_us));
        span.attrs.extend(attrs);
        span.error = error;
        let seq = self.next_seq();
        self.emit(RunEvent::SpanEnded { seq, span });
    }

    /// A resumed run that ends before it reaches again every span its first
    /// life left open (cancelled, out of a quota, diverged; or one that
    /// cannot be resumed at all) closes those too, innermost first, so no
    /// span is left `running`.
    pub fn close_left_behind(&mut self, status: Status, error: Option<&ErrorInfo>) {
        let Some(Earlier { started, ended, .. }) = self.earlier.as_mut() else { return };
        let mut left: Vec<Span> = started.drain().filter(|(id, _)| !ended.contains(id)).map(|(_, span)| span).collect();
        left.sort_by_key(|span| std::cmp::Reverse(span.span_id));
        for span in left {
            self.finish(span, status, Map::new(), error.cloned());
        }
    }

    /// Close every open span inside `span_id` (not `span_id` itself), children
    /// before their parents, with `status`. This is how a trap, a timeout, a
    /// quota or a cancel still leaves a whole tree.
    pub fn close_under(&mut self, span_id: u64, status: Status, error: Option<&ErrorInfo>) {
        // One pass in id order finds every descendant: a parent comes first.
        let mut inside = vec![span_id];
        for (&id, span) in self.open.range(span_id + 1..) {
            if span.parent_id.is_some_and(|parent| inside.contains(&parent)) {
                inside.push(id);
            }
        }
        // Greatest id first: every child before its parent.
        for id in inside.into_iter().skip(1).rev() {
            let span = self.open.remove(&id).expect("collected from the open spans");
            self.finish(span, status, Map::new(), error.cloned());
        }
    }

    /// Append a log line to the open span `span_id`.
    pub fn log(&mut self, span_id: u64, stream: LogStream, text: String) {
        if let Some(stored) = self.earlier.as_mut().and_then(|earlier| earlier.logs.get_mut(&span_id))
            && *stored > 0
        {
            *stored -= 1;
            return;
        }
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

    fn ended(events: &mut mpsc::UnboundedReceiver<RunEvent>) -> Vec<(u64, Option<u64>, Status)> {
        std::iter::from_fn(|| events.try_recv().ok())
            .filter_map(|e| match e {
                RunEvent::SpanEnded { span, .. } => Some((span.span_id, span.parent_id, span.status)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn parents_are_as_given_and_seq_has_no_gaps() {
        let (mut rec, mut events) = recorder();
        let root = rec.start(None, SpanKind::Flow, "f", Map::new(), None);
        let step = rec.start(Some(root), SpanKind::Step, "s", Map::new(), Some(3));
        rec.log(step, LogStream::Stdout, "hi".into());
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
        assert_eq!(rec.open_count(), 0);
    }

    #[test]
    fn a_span_closes_only_after_its_children() {
        let (mut rec, _events) = recorder();
        let root = rec.start(None, SpanKind::Flow, "f", Map::new(), None);
        let step = rec.start(Some(root), SpanKind::Step, "s", Map::new(), None);
        assert_eq!(
            rec.end(root, Status::Ok, Map::new(), None),
            Err(SpanStackError::ChildrenOpen { span: root, child: step })
        );
        assert_eq!(rec.end(99, Status::Ok, Map::new(), None), Err(SpanStackError::NotOpen(99)));
        rec.end(step, Status::Ok, Map::new(), None).unwrap();
        rec.end(root, Status::Ok, Map::new(), None).unwrap();
    }

    #[test]
    fn branches_open_side_by_side_close_in_any_order() {
        let (mut rec, mut events) = recorder();
        let root = rec.start(None, SpanKind::Flow, "f", Map::new(), None);
        let a = rec.start(Some(root), SpanKind::Subflow, "a", Map::new(), None);
        let b = rec.start(Some(root), SpanKind::Subflow, "b", Map::new(), None);
        let a_step = rec.start(Some(a), SpanKind::Step, "a.s", Map::new(), None);
        let b_step = rec.start(Some(b), SpanKind::Step, "b.s", Map::new(), None);
        rec.end(a_step, Status::Ok, Map::new(), None).unwrap();
        rec.end(a, Status::Ok, Map::new(), None).unwrap();
        rec.end(b_step, Status::Ok, Map::new(), None).unwrap();
        rec.end(b, Status::Ok, Map::new(), None).unwrap();
        assert_eq!(
            ended(&mut events),
            vec![
                (a_step, Some(a), Status::Ok),
                (a, Some(root), Status::Ok),
                (b_step, Some(b), Status::Ok),
                (b, Some(root), Status::Ok)
            ]
        );
    }

    #[test]
    fn close_under_closes_children_first_and_only_inside() {
        let (mut rec, mut events) = recorder();
        let root = rec.start(None, SpanKind::Flow, "f", Map::new(), None);
        let a = rec.start(Some(root), SpanKind::Subflow, "a", Map::new(), None);
        let b = rec.start(Some(root), SpanKind::Subflow, "b", Map::new(), None);
        let a_step = rec.start(Some(a), SpanKind::Step, "a.s", Map::new(), None);
        let b_step = rec.start(Some(b), SpanKind::Step, "b.s", Map::new(), None);
        let a_rpc = rec.start(Some(a_step), SpanKind::Rpc, "x.y", Map::new(), None);
        rec.close_under(a, Status::Failed, None);
        assert_eq!(ended(&mut events), vec![(a_rpc, Some(a_step), Status::Failed), (a_step, Some(a), Status::Failed)]);
        rec.close_under(root, Status::TimedOut, None);
        assert_eq!(
            ended(&mut events),
            vec![
                (b_step, Some(b), Status::TimedOut),
                (b, Some(root), Status::TimedOut),
                (a, Some(root), Status::TimedOut)
            ]
        );
        assert_eq!(rec.open_count(), 1, "the root itself stays open");
    }
    /// A resumed run's recorder emits only what its first life did not
    /// store: the spans it opens again keep their ids (an ended one stays
    /// quiet, an open one gets its end), logs are not written twice, and
    /// what is new continues the ids and seqs.
    #[test]
    fn a_resumed_recorder_continues_the_stored_tree_without_repeating_it() {
        fn life(rec: &mut Recorder, resumed: bool) {
            let root = rec.start(None, SpanKind::Flow, "f", Map::new(), None);
            let a = rec.start(Some(root), SpanKind::Step, "a", Map::new(), None);
            rec.log(a, LogStream::Stdout, "in a".into());
            rec.end(a, Status::Ok, Map::new(), None).unwrap();
            let b = rec.start(Some(root), SpanKind::Step, "b", Map::new(), None);
            let params = Map::from_iter([("params".to_string(), Value::from(1))]);
            let call = rec.start(Some(b), SpanKind::Rpc, "s.m", params, None);
            if resumed {
                rec.end(call, Status::Ok, Map::new(), None).unwrap();
                rec.end(b, Status::Ok, Map::new(), None).unwrap();
                let c = rec.start(Some(root), SpanKind::Step, "c", Map::new(), None);
                rec.log(c, LogStream::Stdout, "in c".into());
                rec.end(c, Status::Ok, Map::new(), None).unwrap();
                rec.end(root, Status::Ok, Map::new(), None).unwrap();
            }
        }
        let (mut first, mut stored) = recorder();
        life(&mut first, false);
        let stored: Vec<RunEvent> = std::iter::from_fn(|| stored.try_recv().ok()).collect();
        assert_eq!(stored.len(), 6, "4 starts, a's log and a's end");

        let (sink, mut events) = mpsc::unbounded_channel();
        let mut again = Recorder::resuming("r1".into(), sink, &stored);
        life(&mut again, true);
        let emitted: Vec<(u64, String)> = std::iter::from_fn(|| events.try_recv().ok())
            .map(|event| match event {
                RunEvent::SpanStarted { seq, span } => (seq, format!("start {} #{}", span.name, span.span_id)),
                RunEvent::SpanEnded { seq, span } => (seq, format!("end {} #{}", span.name, span.span_id)),
                RunEvent::Log(line) => (line.seq, format!("log {} on #{}", line.text, line.span_id)),
            })
            .collect();
        let expected = [
            (7, "end s.m #4"),
            (8, "end b #3"),
            (9, "start c #5"),
            (10, "log in c on #5"),
            (11, "end c #5"),
            (12, "end f #1"),
        ];
        assert_eq!(emitted, expected.map(|(seq, what)| (seq, what.to_string())));
        assert_eq!(again.spans_started(), 5);
    }
    /// A resumed run that ends before it opens again the spans its first
    /// life left open closes them too, innermost first.
    #[test]
    fn a_resumed_run_ending_early_closes_the_stored_spans_it_did_not_reach() {
        let (mut first, mut stored) = recorder();
        let root = first.start(None, SpanKind::Flow, "f", Map::new(), None);
        let a = first.start(Some(root), SpanKind::Step, "a", Map::new(), None);
        let inner = first.start(Some(a), SpanKind::Step, "inner", Map::new(), None);
        let stored: Vec<RunEvent> = std::iter::from_fn(|| stored.try_recv().ok()).collect();

        let (sink, mut events) = mpsc::unbounded_channel();
        let mut again = Recorder::resuming("r1".into(), sink, &stored);
        let root_again = again.start(None, SpanKind::Flow, "f", Map::new(), None);
        assert_eq!(root_again, root);
        again.close_left_behind(Status::Cancelled, None);
        again.close_under(root, Status::Cancelled, None);
        again.end(root, Status::Cancelled, Map::new(), None).unwrap();
        assert_eq!(
            ended(&mut events),
            vec![
                (inner, Some(a), Status::Cancelled),
                (a, Some(root), Status::Cancelled),
                (root, None, Status::Cancelled)
            ]
        );
    }
}
