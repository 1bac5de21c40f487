//! The run's journal: every answer the host gives the guest, in the order
//! each instance received them. Nothing a flow does outside its own memory
//! escapes the host — service calls, subflows, clock reads, random bytes
//! and sleeps all cross a host function or a WASI import the host provides
//! (`journal_wasi`) — and WebAssembly is deterministic given the same
//! answers, so the journal is what replaying a run needs.
//!
//! Each instance of a run writes its own stream: the run's first instance
//! is `0`, and the k-th subflow an instance starts is its stream followed
//! by `.k`, so subflows running side by side never interleave their
//! entries and each stream's order is the instance's own. Entries are
//! charged to the run's `journal_bytes` quota and handed to the run's
//! `JournalSink` (the store's writer, batched with the run's spans).

use super::quotas::{Quota, QuotaExceeded};
use super::state::RunShared;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// One answer the host gave an instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// `wasi:clocks/wall-clock.now`.
    WallClock { seconds: u64, nanoseconds: u32 },
    /// `wasi:clocks/monotonic-clock.now`, in ns since the instance started.
    MonotonicClock { ns: u64 },
    /// The seed of every random byte the instance gets (`wasi:random`, secure
    /// and insecure alike), as hex: 32 bytes from the operating system, taken
    /// at the instance's first ask, keying a ChaCha20 stream. One entry
    /// stands for them all, however many the guest asks for.
    RandomSeed { hex: String },
    /// A sleep: a monotonic-clock subscription for `ns` from when it was made
    /// (a duration, or an instant turned into one).
    Sleep { ns: u64 },
    /// A service call: which, a digest of its parameters (to tell the same
    /// call from another), and what the flow was told.
    Rpc { call: String, params_sha256: String, outcome: RpcOutcome },
    /// A subflow: which flow and version ran, with what input, and how it ended.
    Subflow {
        flow: String,
        version: Option<u32>,
        input_sha256: String,
        outcome: Result<String, String>,
        duration_us: u64,
    },
}

impl Entry {
    /// What kind of answer it is, as the journal spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            Entry::WallClock { .. } => "wall_clock",
            Entry::MonotonicClock { .. } => "monotonic_clock",
            Entry::RandomSeed { .. } => "random_seed",
            Entry::Sleep { .. } => "sleep",
            Entry::Rpc { .. } => "rpc",
            Entry::Subflow { .. } => "subflow",
        }
    }

    /// What tells this call from another of its kind, for a replay to
    /// check it makes the same one: the service and a digest of its
    /// parameters, or the flow and a digest of its input.
    fn request(&self) -> Option<(&str, &str)> {
        match self {
            Entry::Rpc { call, params_sha256, .. } => Some((call, params_sha256)),
            Entry::Subflow { flow, input_sha256, .. } => Some((flow, input_sha256)),
            _ => None,
        }
    }
}

/// A replay went where its journal does not: the flow asked the host for
/// something other than what the original run was given at that place.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ReplayDiverged(pub String);

/// Why a replay is not answered at a place.
#[derive(Clone, Debug, PartialEq)]
pub enum Unanswered {
    Diverged(ReplayDiverged),
    /// The original ran out of its `journal_bytes` quota at this place, so
    /// its answer was never written: the replay ends as the original did.
    JournalFull(QuotaExceeded),
}

impl From<Unanswered> for wasmtime::Error {
    fn from(unanswered: Unanswered) -> wasmtime::Error {
        match unanswered {
            Unanswered::Diverged(diverged) => wasmtime::Error::new(diverged),
            Unanswered::JournalFull(exceeded) => wasmtime::Error::new(exceeded),
        }
    }
}

/// The journal of a run, answering a replay of it: each instance's
/// stream by name, its entries by index. A place with no entry is one the
/// original was never answered at (a call still going when it was
/// cancelled or ran out of a quota): a replay that reaches it diverges there.
///
/// A durable run resumed after a crash is answered from its own journal
/// the same way, except that a place with no entry is answered live (and
/// written there): the run goes on from where its journal ends.
pub struct Replay {
    pub of_run: String,
    streams: HashMap<String, std::collections::BTreeMap<u32, Entry>>,
    /// Resuming run `of_run` itself rather than replaying it.
    resume: bool,
    /// When the original ended on its `journal_bytes` quota (this limit):
    /// the answers its journal lacks are the ones it could not write.
    journal_full: Option<u64>,
}

impl Replay {
    /// From the rows the store keeps; an error when an entry is not one the
    /// host writes.
    pub fn new(of_run: String, rows: Vec<(String, u32, Value)>) -> Result<Replay, String> {
        let mut streams: HashMap<String, std::collections::BTreeMap<u32, Entry>> = HashMap::new();
        for (stream, index, entry) in rows {
            let entry: Entry = serde_json::from_value(entry)
                .map_err(|e| format!("entry {index} of stream {stream} is not a journal entry: {e}"))?;
            streams.entry(stream).or_default().insert(index, entry);
        }
        Ok(Replay { of_run, streams, resume: false, journal_full: None })
    }

    /// The same journal, answering the run it is of as it resumes.
    pub fn resuming(mut self) -> Replay {
        self.resume = true;
        self
    }

    /// The same journal, of a run that ended on its `journal_bytes` quota
    /// of `limit`: a replay reaching a place the journal does not answer
    /// ends there on that quota, as the original did, rather than being
    /// told it diverged (the original asked for that answer, and could not
    /// journal it).
    pub fn ended_on_journal_quota(mut self, limit: u64) -> Replay {
        self.journal_full = Some(limit);
        self
    }

    /// Whether it answers a resume (live past its entries) rather than a replay.
    pub fn is_resume(&self) -> bool {
        self.resume
    }

    fn entry(&self, stream: &str, index: u32) -> Option<&Entry> {
        self.streams.get(stream)?.get(&index)
    }

    /// How many places the original's instance was given answers up to.
    fn len(&self, stream: &str) -> usize {
        self.streams.get(stream).and_then(|entries| entries.keys().next_back()).map_or(0, |last| *last as usize + 1)
    }
}

/// How a service call ended, as the flow was told: the JSON result, or the
/// `call-error` case and what it carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RpcOutcome {
    Ok(Value),
    Err { case: String, message: String, code: Option<i64>, data: Option<Value> },
}

/// Where a run's journal goes (the store, for runs the server keeps).
pub trait JournalSink: Send + Sync {
    /// Entry `index` of instance `stream`, as JSON.
    fn append(&self, stream: &Arc<str>, index: u32, text: String);

    /// For a durable run, what resolves once every entry appended so far
    /// is stored (the write-ahead rule); None when its entries are only
    /// batched, as for other runs.
    fn stored(&self) -> Option<super::env::BoxFuture<'static, Result<(), String>>> {
        None
    }
}

/// A durable run's journal could not be stored: the run cannot go on
/// without breaking its promise not to repeat what it was answered.
#[derive(Debug, thiserror::Error)]
#[error("the run's journal could not be stored: {0}")]
pub struct JournalNotStored(pub String);

/// One instance's stream of the journal.
pub(crate) struct InstanceJournal {
    /// `0` for the run's first instance; `0.2` for the third subflow it starts.
    pub stream: Arc<str>,
    /// The index of the next entry.
    next: u32,
    /// Subflows this instance has started, which name their streams.
    subflows: u32,
    /// When the run replays another: that run's journal, which answers.
    replay: Option<Arc<Replay>>,
}

impl InstanceJournal {
    pub fn new(stream: Arc<str>, replay: Option<Arc<Replay>>) -> InstanceJournal {
        InstanceJournal { stream, next: 0, subflows: 0, replay }
    }

    /// The place of the next entry, taken now: calls made side by side
    /// (`services.gather`) keep the order the guest asked them in, whatever
    /// order they end in.
    pub fn reserve(&mut self) -> JournalSlot {
        let slot = JournalSlot { stream: self.stream.clone(), index: self.next, replay: self.replay.clone() };
        self.next += 1;
        slot
    }

    /// Whether the next place is answered from the journal rather than live.
    pub fn next_is_replayed(&self) -> bool {
        match &self.replay {
            Some(replay) if replay.resume => replay.entry(&self.stream, self.next).is_some(),
            Some(_) => true,
            None => false,
        }
    }

    /// A replayed instance that ended having asked for fewer answers than
    /// the original: it went another way. (A resumed one went on live.)
    pub fn check_all_asked(&self) -> Result<(), ReplayDiverged> {
        let Some(replay) = self.replay.as_ref().filter(|replay| !replay.resume) else { return Ok(()) };
        let had = replay.len(&self.stream);
        if (self.next as usize) < had {
            return Err(ReplayDiverged(format!(
                "the replay diverged: instance {} ended after {} answers; the original was given {had} (the next was {})",
                self.stream,
                self.next,
                replay.entry(&self.stream, self.next).map_or("?", Entry::kind)
            )));
        }
        Ok(())
    }

    /// The stream of the next subflow this instance starts.
    pub fn next_subflow_stream(&mut self) -> Arc<str> {
        let stream = format!("{}.{}", self.stream, self.subflows);
        self.subflows += 1;
        Arc::from(stream)
    }
}

/// A reserved place in an instance's stream.
#[derive(Clone)]
pub(crate) struct JournalSlot {
    pub stream: Arc<str>,
    pub index: u32,
    replay: Option<Arc<Replay>>,
}

impl JournalSlot {
    /// When replaying, the original's answer in this place, which must be
    /// of `kind` (and, for a call, the same call: `request`); None live,
    /// and in a resume past what the journal holds.
    pub fn replayed(&self, kind: &str, request: Option<(&str, &str)>) -> Option<Result<Entry, Unanswered>> {
        let replay = self.replay.as_ref()?;
        if replay.resume && replay.entry(&self.stream, self.index).is_none() {
            return None;
        }
        let place = format!("answer {} of instance {}", self.index, self.stream);
        let what = match request {
            Some((target, _)) => format!("{kind} {target}"),
            None => kind.to_string(),
        };
        let Some(entry) = replay.entry(&self.stream, self.index) else {
            if let Some(limit) = replay.journal_full {
                return Some(Err(Unanswered::JournalFull(QuotaExceeded::new(Quota::JournalBytes, limit))));
            }
            let error = if (self.index as usize) < replay.len(&self.stream) {
                format!("the replay reached {place} ({what}), which the original run was never answered at")
            } else {
                format!(
                    "the replay diverged at {place}: the flow asked for {what}, and the original run asked for nothing more"
                )
            };
            return Some(Err(Unanswered::Diverged(ReplayDiverged(error))));
        };
        if entry.kind() != kind {
            let error = format!(
                "the replay diverged at {place}: the flow asked for {what}; the original asked for {}",
                entry.kind()
            );
            return Some(Err(Unanswered::Diverged(ReplayDiverged(error))));
        }
        if let (Some((target, digest)), Some((was_target, was_digest))) = (request, entry.request())
            && (target != was_target || digest != was_digest)
        {
            let how = if target == was_target {
                "with other arguments than the original".to_string()
            } else {
                format!("where the original asked for {kind} {was_target}")
            };
            return Some(Err(Unanswered::Diverged(ReplayDiverged(format!(
                "the replay diverged at {place}: the flow asked for {what} {how}"
            )))));
        }
        Some(Ok(entry.clone()))
    }

    /// The `Idempotency-Key` of the service call in this place: the same on
    /// every replay and resume of the run, different for every other call.
    pub fn call_key(&self, run_id: &str) -> String {
        format!("{run_id}/{}/{}", self.stream, self.index)
    }

    /// Write `entry` in this place, charged to the run's `journal_bytes`
    /// (a resumed run's place the journal holds already is not written again).
    pub fn write(&self, run: &RunShared, entry: &Entry) -> Result<(), QuotaExceeded> {
        let Some(sink) = &run.env.journal else { return Ok(()) };
        let text = serde_json::to_string(entry).expect("journal entries serialize");
        run.ledger().charge(&run.quotas, Quota::JournalBytes, text.len() as u64)?;
        if let Some(replay) = self.replay.as_ref().filter(|replay| replay.resume)
            && replay.entry(&self.stream, self.index).is_some()
        {
            return Ok(());
        }
        sink.append(&self.stream, self.index, text);
        run.journal_appended();
        Ok(())
    }
}

/// SHA-256 of a JSON value's text, in hex: what tells one call's
/// parameters (or a subflow's input) from another's.
pub(crate) fn digest(text: &str) -> String {
    crate::text::sha256_hex(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slot(replay: &Arc<Replay>, index: u32) -> JournalSlot {
        JournalSlot { stream: Arc::from("0"), index, replay: Some(replay.clone()) }
    }

    /// A replay is told the original's answer at each place, and where the
    /// flow asks for something else, or for what the original never got,
    /// it is told where it went another way.
    #[test]
    fn a_replay_is_answered_by_place_and_told_where_it_diverges() {
        let rows = vec![
            ("0".to_string(), 0, json!({"kind": "sleep", "ns": 5})),
            ("0".to_string(), 2, json!({"kind": "monotonic_clock", "ns": 9})),
        ];
        let replay = Arc::new(Replay::new("r1".into(), rows).unwrap());
        assert_eq!(slot(&replay, 0).replayed("sleep", None), Some(Ok(Entry::Sleep { ns: 5 })));
        let diverged = |index, kind| match slot(&replay, index).replayed(kind, None).unwrap().unwrap_err() {
            Unanswered::Diverged(diverged) => diverged.0,
            other => panic!("{other:?}"),
        };
        assert!(diverged(0, "wall_clock").ends_with("the flow asked for wall_clock; the original asked for sleep"));
        assert!(diverged(1, "wall_clock").contains("which the original run was never answered at"));
        assert!(diverged(3, "sleep").ends_with("and the original run asked for nothing more"));
        let live = JournalSlot { stream: Arc::from("0"), index: 0, replay: None };
        assert_eq!(live.replayed("sleep", None), None, "a live run is answered live");
        assert!(Replay::new("r1".into(), vec![("0".into(), 0, json!({"kind": "nope"}))]).is_err());
    }

    /// Of a run that ran out of its journal quota, the places its journal
    /// does not answer are where it could not write: a replay ends there
    /// on that quota; where the journal answers otherwise, it diverges.
    #[test]
    fn a_replay_of_a_run_that_filled_its_journal_ends_on_the_same_quota() {
        let rows = vec![("0".to_string(), 0, json!({"kind": "sleep", "ns": 5}))];
        let replay = Arc::new(Replay::new("r1".into(), rows).unwrap().ended_on_journal_quota(4096));
        assert_eq!(slot(&replay, 0).replayed("sleep", None), Some(Ok(Entry::Sleep { ns: 5 })));
        let full = Unanswered::JournalFull(QuotaExceeded::new(Quota::JournalBytes, 4096));
        assert_eq!(slot(&replay, 1).replayed("wall_clock", None), Some(Err(full)));
        assert!(matches!(slot(&replay, 0).replayed("wall_clock", None), Some(Err(Unanswered::Diverged(_)))));
    }
    /// A resume is answered from its journal where the journal holds the
    /// answer, and live wherever it does not (a gap, or past its end).
    #[test]
    fn a_resume_is_answered_live_where_its_journal_ends() {
        let rows = vec![
            ("0".to_string(), 0, json!({"kind": "sleep", "ns": 5})),
            ("0".to_string(), 2, json!({"kind": "monotonic_clock", "ns": 9})),
        ];
        let resume = Arc::new(Replay::new("r1".into(), rows).unwrap().resuming());
        assert!(resume.is_resume());
        assert_eq!(slot(&resume, 0).replayed("sleep", None), Some(Ok(Entry::Sleep { ns: 5 })));
        assert_eq!(slot(&resume, 1).replayed("wall_clock", None), None, "a place the crash left unanswered");
        assert_eq!(slot(&resume, 3).replayed("sleep", None), None, "past the journal's end");
        let diverged = slot(&resume, 2).replayed("sleep", None).unwrap().unwrap_err();
        let Unanswered::Diverged(diverged) = diverged else { panic!("{diverged:?}") };
        assert!(diverged.0.ends_with("the flow asked for sleep; the original asked for monotonic_clock"));
        let mut journal = InstanceJournal::new(Arc::from("0"), Some(resume));
        let answered: Vec<bool> = (0..4).map(|_| (journal.next_is_replayed(), journal.reserve()).0).collect();
        assert_eq!(answered, [true, false, true, false]);
        assert_eq!(journal.check_all_asked(), Ok(()), "a resume may ask for fewer answers and go on live");
    }
}
