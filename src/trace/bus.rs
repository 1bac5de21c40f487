//! The event bus: what watchers of runs subscribe to.
//!
//! Each live run keeps its events, serialized once, in order. A watcher reads
//! from its own cursor and waits for the next `seq`, so joining at any moment
//! gives everything so far and then live events with no gap and no duplicate,
//! and a slow watcher only falls behind: it never slows the run. A run's
//! history is dropped once the store holds the finished run, from where
//! replay continues.
//!
//! Run-level events (a run queued, started, finished) go to everyone through
//! one broadcast channel, for live run lists.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{broadcast, watch};

/// The events of one live run.
pub struct RunChannel {
    /// Event JSON by seq: `events[i]` has seq `i + 1`.
    events: RwLock<Vec<Arc<str>>>,
    /// The seq of the latest event, and whether the run has finished.
    latest: watch::Sender<(u64, bool)>,
}

impl RunChannel {
    fn new() -> RunChannel {
        RunChannel { events: RwLock::new(Vec::new()), latest: watch::channel((0, false)).0 }
    }

    /// Append the event with the next seq.
    pub fn publish(&self, event: Arc<str>) {
        let seq = {
            let mut events = self.events.write().unwrap_or_else(|p| p.into_inner());
            events.push(event);
            events.len() as u64
        };
        self.latest.send_modify(|latest| latest.0 = seq);
    }

    /// Append the last event and mark the run finished.
    pub fn finish(&self, event: Arc<str>) {
        let seq = {
            let mut events = self.events.write().unwrap_or_else(|p| p.into_inner());
            events.push(event);
            events.len() as u64
        };
        self.latest.send_replace((seq, true));
    }

    /// Events with seq greater than `after`, at most `limit` of them.
    pub fn read_after(&self, after: u64, limit: usize) -> Vec<Arc<str>> {
        let events = self.events.read().unwrap_or_else(|p| p.into_inner());
        let start = (after as usize).min(events.len());
        events[start..].iter().take(limit).cloned().collect()
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
}

pub struct EventBus {
    live: Mutex<HashMap<String, Arc<RunChannel>>>,
    runs: broadcast::Sender<Arc<str>>,
}

impl Default for EventBus {
    fn default() -> EventBus {
        EventBus { live: Mutex::new(HashMap::new()), runs: broadcast::channel(1024).0 }
    }
}

impl EventBus {
    /// Open the channel of a run that is about to start.
    pub fn open(&self, run_id: &str) -> Arc<RunChannel> {
        let channel = Arc::new(RunChannel::new());
        self.live.lock().unwrap_or_else(|p| p.into_inner()).insert(run_id.to_string(), channel.clone());
        channel
    }

    /// The channel of a live run (or one finished but not yet dropped).
    pub fn get(&self, run_id: &str) -> Option<Arc<RunChannel>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).get(run_id).cloned()
    }

    /// Forget a run's history: call once the store holds the finished run.
    pub fn close(&self, run_id: &str) {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).remove(run_id);
    }

    /// Tell every run-list watcher about a run.
    pub fn announce(&self, event: Arc<str>) {
        let _ = self.runs.send(event);
    }

    pub fn subscribe_runs(&self) -> broadcast::Receiver<Arc<str>> {
        self.runs.subscribe()
    }

    pub fn live_runs(&self) -> usize {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}
