//! The event bus: what watchers of runs subscribe to.
//!
//! The store is a run's log; the bus only keeps its newest events. Events
//! reach the bus after the store has committed them, so every event a live
//! run has published is in the store, and the bus need not hold them all: it
//! keeps a tail of at most `TAIL_BYTES` per run, serialized once, in order.
//! A watcher reads from its own cursor and waits for the next `seq`; one
//! that is behind the tail (it joined late, or reads slowly) reads the older
//! events from the store. So joining at any moment gives everything so far
//! and then live events with no gap and no duplicate, a slow watcher never
//! slows the run, and what a live run costs in memory does not grow with its
//! length or its watchers.
//!
//! Run-level events (a run queued, started, finished) go to everyone through
//! one broadcast channel, for live run lists.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{broadcast, watch};

/// The bytes of newest events each live run keeps for its watchers. The
/// newest event is kept whatever its size.
pub const TAIL_BYTES: usize = 1 << 20;

/// What a watcher gets for "events after seq N".
#[derive(Debug, PartialEq)]
pub enum Read {
    /// The next events, in order (none yet when empty).
    Events(Vec<Arc<str>>),
    /// The next event has left the tail: read it from the store. The tail
    /// begins at seq `kept_from`.
    FromStore { kept_from: u64 },
}

/// The newest events of a run: `events[i]` has seq `first_seq + i`.
struct Tail {
    first_seq: u64,
    events: VecDeque<Arc<str>>,
    bytes: usize,
}

/// The events of one live run.
pub struct RunChannel {
    tail: RwLock<Tail>,
    /// The seq of the latest event, and whether the run has finished.
    latest: watch::Sender<(u64, bool)>,
    /// Bytes held by every run's tail, for `/metrics`.
    held: Arc<AtomicUsize>,
}

impl RunChannel {
    fn new(held: Arc<AtomicUsize>) -> RunChannel {
        RunChannel {
            tail: RwLock::new(Tail { first_seq: 1, events: VecDeque::new(), bytes: 0 }),
            latest: watch::channel((0, false)).0,
            held,
        }
    }

    /// Append the event with the next seq, dropping the oldest beyond
    /// `TAIL_BYTES` (the store holds them).
    fn push(&self, event: Arc<str>) -> u64 {
        let mut tail = self.tail.write().unwrap_or_else(|p| p.into_inner());
        tail.bytes += event.len();
        self.held.fetch_add(event.len(), Ordering::Relaxed);
        tail.events.push_back(event);
        while tail.bytes > TAIL_BYTES && tail.events.len() > 1 {
            let dropped = tail.events.pop_front().expect("more than one event");
            tail.bytes -= dropped.len();
            self.held.fetch_sub(dropped.len(), Ordering::Relaxed);
            tail.first_seq += 1;
        }
        tail.first_seq + tail.events.len() as u64 - 1
    }

    /// Append the event with the next seq; it must be committed to the store.
    pub fn publish(&self, event: Arc<str>) {
        let seq = self.push(event);
        self.latest.send_modify(|latest| latest.0 = seq);
    }

    /// Append the last event and mark the run finished.
    pub fn finish(&self, event: Arc<str>) {
        let seq = self.push(event);
        self.latest.send_replace((seq, true));
    }

    /// Events with seq greater than `after`, at most `limit` of them.
    pub fn read_after(&self, after: u64, limit: usize) -> Read {
        let tail = self.tail.read().unwrap_or_else(|p| p.into_inner());
        if after + 1 < tail.first_seq {
            return Read::FromStore { kept_from: tail.first_seq };
        }
        let start = ((after + 1 - tail.first_seq) as usize).min(tail.events.len());
        Read::Events(tail.events.range(start..).take(limit).cloned().collect())
    }

    /// Wait until there is an event after `after` or the run has finished;
    /// returns (latest seq, finished).
    pub async fn wait_after(&self, after: u64) -> (u64, bool) {
        let mut latest = self.latest.subscribe();
        let result = latest.wait_for(|(seq, finished)| *seq > after || *finished).await;
        result.map(|state| *state).unwrap_or((after, true))
    }

    pub fn is_finished(&self) -> bool {
        self.latest.borrow().1
    }

    /// How far the store has got with this run's events, for the run to
    /// wait on when it is too far ahead.
    pub fn committed(&self) -> Committed {
        Committed(self.latest.subscribe())
    }
}

/// The seq of a run's latest event the store has committed (events reach
/// the channel only once committed). A run that has made many more events
/// than this waits here: the store's writer is never more than a bounded
/// number of a run's events behind, and a run that outpaces it is slowed
/// down rather than held in memory.
#[derive(Clone)]
pub struct Committed(watch::Receiver<(u64, bool)>);

impl Committed {
    /// Returns once every event up to `seq` is committed (or the run's
    /// channel is finished or gone, when there is nothing left to wait for).
    pub async fn reached(&self, seq: u64) {
        let done = |&(committed, finished): &(u64, bool)| committed >= seq || finished;
        if done(&self.0.borrow()) {
            return;
        }
        let _ = self.0.clone().wait_for(done).await;
    }
}

impl Drop for RunChannel {
    fn drop(&mut self) {
        let tail = self.tail.get_mut().unwrap_or_else(|p| p.into_inner());
        self.held.fetch_sub(tail.bytes, Ordering::Relaxed);
    }
}

/// A run-list message, and the workspace whose watchers it is for.
#[derive(Clone, Debug)]
pub struct Announcement {
    pub workspace: Arc<str>,
    pub text: Arc<str>,
}

pub struct EventBus {
    live: Mutex<HashMap<String, Arc<RunChannel>>>,
    /// Each run-list message, with the workspace of the run it is about.
    runs: broadcast::Sender<Announcement>,
    held: Arc<AtomicUsize>,
}

impl Default for EventBus {
    fn default() -> EventBus {
        EventBus {
            live: Mutex::new(HashMap::new()),
            runs: broadcast::channel(1024).0,
            held: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl EventBus {
    /// Open the channel of a run that is about to start.
    pub fn open(&self, run_id: &str) -> Arc<RunChannel> {
        let channel = Arc::new(RunChannel::new(self.held.clone()));
        self.live.lock().unwrap_or_else(|p| p.into_inner()).insert(run_id.to_string(), channel.clone());
        channel
    }

    /// Bytes of events the live runs' tails hold now.
    pub fn held_bytes(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// The channel of a live run (or one finished but not yet dropped).
    pub fn get(&self, run_id: &str) -> Option<Arc<RunChannel>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).get(run_id).cloned()
    }

    /// Forget a run's history: call once the store holds the finished run.
    pub fn close(&self, run_id: &str) {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).remove(run_id);
    }

    /// Tell the run-list watchers of `workspace` about one of its runs.
    pub fn announce(&self, workspace: &str, event: Arc<str>) {
        let _ = self.runs.send(Announcement { workspace: Arc::from(workspace), text: event });
    }

    /// Whether anyone watches the run list now.
    pub fn has_run_watchers(&self) -> bool {
        self.runs.receiver_count() > 0
    }

    pub fn subscribe_runs(&self) -> broadcast::Receiver<Announcement> {
        self.runs.subscribe()
    }

    pub fn live_runs(&self) -> usize {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, size: usize) -> Arc<str> {
        let seq = seq.to_string();
        Arc::from(format!("{}{seq}", "0".repeat(size - seq.len())))
    }

    #[test]
    fn the_tail_keeps_the_newest_events_and_sends_older_readers_to_the_store() {
        let bus = EventBus::default();
        let channel = bus.open("run");
        let size = TAIL_BYTES / 4;
        for seq in 1..=10 {
            channel.publish(event(seq, size));
        }
        assert_eq!(bus.held_bytes(), 4 * size, "four events fill the tail");
        assert_eq!(channel.read_after(0, 100), Read::FromStore { kept_from: 7 });
        assert_eq!(channel.read_after(5, 100), Read::FromStore { kept_from: 7 });
        assert_eq!(channel.read_after(6, 2), Read::Events(vec![event(7, size), event(8, size)]));
        assert_eq!(channel.read_after(10, 100), Read::Events(vec![]));
        channel.finish(event(11, TAIL_BYTES * 2));
        assert_eq!(channel.read_after(10, 100), Read::Events(vec![event(11, TAIL_BYTES * 2)]), "the newest stays");
        assert_eq!(channel.read_after(9, 100), Read::FromStore { kept_from: 11 });
        bus.close("run");
        drop(channel);
        assert_eq!(bus.held_bytes(), 0, "a closed run's tail is given back");
    }
}
