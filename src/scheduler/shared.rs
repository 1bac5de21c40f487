//! The nodes' shared queue, from this node's side. A run accepted while
//! every place here is taken is stored with no node and `launch` (how to
//! start it); it counts against this node's queue and its client's share
//! until some node claims it. Each node claims the oldest waiting run
//! whenever it has a free place: when one frees, when a notice says a run
//! joined the queue, and once a second in case a notice was missed.
//! Whoever waits here for such a run's end (`?wait=true`) is told when a
//! notice says its record is final, whichever node executed it.

use super::{Client, Counted, Scheduler, StartRun, Submitted};
use crate::cluster::Cluster;
use crate::store::{ClaimedRun, Notice, RunRecord, Write};
use crate::stream::StreamMessage;
use crate::trace::Status;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{OwnedSemaphorePermit, oneshot};

/// How often the shared queue is looked at when no notice says so.
const CLAIM_EVERY: Duration = Duration::from_secs(1);

/// A run this node put in the shared queue, until it ends.
pub(super) struct SharedWait {
    /// Told the run's final record.
    done: Option<oneshot::Sender<Result<RunRecord, String>>>,
    client: Option<Client>,
    /// Still counted as waiting here (no node has claimed it yet).
    waiting: bool,
}

impl Scheduler {
    /// Take part in the shared queue of the nodes of `cluster`.
    pub fn join_cluster(self: &Arc<Self>, cluster: Arc<Cluster>) {
        if self.cluster.set(cluster.clone()).is_ok() {
            let scheduler = self.clone();
            tokio::spawn(async move { scheduler.claim_loop(cluster).await });
        }
    }

    /// Put a run in the shared queue (no node has a place for it here).
    pub(super) fn queue_shared(&self, mut run: RunRecord, start: StartRun) -> Submitted {
        run.node = None;
        let launch = start.launch();
        let (done, finished) = oneshot::channel();
        self.shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(run.run_id.clone(), SharedWait { done: Some(done), client: start.client, waiting: true });
        self.store.write(Write::RunCreated {
            run: Box::new(run.clone()),
            source: start.source,
            launch: Some(Box::new(launch)),
        });
        self.bus.announce(&run.workspace, StreamMessage::RunQueued(&run).to_text());
        Submitted { run, finished }
    }

    /// Cancel a run this node does not execute: in the shared queue, here
    /// and now; on another node, by asking that node. False with one node.
    pub async fn cancel_elsewhere(&self, run_id: &str) -> anyhow::Result<bool> {
        let Some(cluster) = self.cluster.get() else { return Ok(false) };
        let error = crate::trace::ErrorInfo::cancelled("the run was cancelled before it started");
        match cluster.store().cancel_waiting(run_id, &error).await? {
            // Its waiter and its client's place, at once rather than when
            // the notice comes round.
            Some(run) => self.shared_run_changed(&run),
            None => cluster.store().notify(Notice::Cancel { run_id: run_id.to_string() }).await?,
        }
        Ok(true)
    }

    /// Whether this node put the run in the shared queue and it has not ended.
    pub fn is_shared_wait(&self, run_id: &str) -> bool {
        self.shared.lock().unwrap_or_else(|p| p.into_inner()).contains_key(run_id)
    }

    /// A run this node put in the shared queue changed (as read after a
    /// notice): once claimed it no longer counts as waiting here; once
    /// ended, whoever waits for it is told.
    pub fn shared_run_changed(&self, run: &RunRecord) {
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        let Some(wait) = shared.get_mut(&run.run_id) else { return };
        // A claim of this node's own is counted as the run is handed its
        // worker (`start_claimed`), not when it is read back: read first, it
        // would leave the run counted nowhere until then, and a claim given
        // back (`unclaim`) would leave it so for good.
        let claimed_elsewhere = run.node.as_ref().is_some_and(|node| *node != self.config.node);
        if claimed_elsewhere || run.status != Status::Queued {
            self.stop_counting_shared(wait);
        }
        if run.status.is_final() {
            if let Some(done) = wait.done.take() {
                let _ = done.send(Ok(run.clone()));
            }
            shared.remove(&run.run_id);
        }
    }

    /// A run this node put in the shared queue waits there no more.
    fn stop_counting_shared(&self, wait: &mut SharedWait) {
        if std::mem::take(&mut wait.waiting) {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            if let Some(client) = wait.client {
                self.give_client_place(client);
            }
        }
    }

    /// The runs this node put in the shared queue that have not ended.
    pub fn shared_waits(&self) -> Vec<String> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
    }

    async fn claim_loop(self: Arc<Self>, cluster: Arc<Cluster>) {
        let mut notices = cluster.notices.subscribe();
        loop {
            // The place is taken only once a run is claimed, so a run this
            // node accepts meanwhile never finds its place held by a look at
            // an empty queue.
            while !self.shutting_down.load(Ordering::SeqCst) && self.permits.available_permits() > 0 {
                let claimed = match cluster.store().claim_queued(&self.config.node).await {
                    Ok(Some(claimed)) => claimed,
                    Ok(None) => break,
                    Err(error) => {
                        tracing::warn!(error = format!("{error:#}"), "claiming a run from the shared queue failed");
                        break;
                    }
                };
                match self.permits.clone().try_acquire_owned() {
                    Ok(place) if !self.shutting_down.load(Ordering::SeqCst) => self.start_claimed(claimed, place),
                    // Its place was taken meanwhile, or this node began to
                    // shut down: the run goes back for a node with room.
                    _ => {
                        if let Err(error) = cluster.store().unclaim(&claimed.run.run_id).await {
                            tracing::warn!(error = format!("{error:#}"), "giving a claimed run back failed");
                        }
                        break;
                    }
                }
            }
            // Wait for a reason to look at the queue again.
            let tick = tokio::time::sleep(CLAIM_EVERY);
            tokio::pin!(tick);
            loop {
                tokio::select! {
                    _ = self.freed.notified() => break,
                    notice = notices.recv() => match notice {
                        Ok(Notice::Queued | Notice::Resync) | Err(RecvError::Lagged(_)) => break,
                        Ok(_) => {}
                        Err(RecvError::Closed) => return,
                    },
                    _ = &mut tick => break,
                    _ = cluster.stopped() => return,
                }
            }
        }
    }

    /// Execute a run claimed from the shared queue in the place taken for it.
    fn start_claimed(self: &Arc<Self>, claimed: ClaimedRun, place: OwnedSemaphorePermit) {
        let ClaimedRun { run, source, launch } = claimed;
        // A run this node accepted itself leaves its queue and its client's
        // share now that the place taken for it stands for it (taken first,
        // so it is never counted nowhere).
        if let Some(wait) = self.shared.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&run.run_id) {
            self.stop_counting_shared(wait);
        }
        let start = StartRun::from_stored(&run, launch, Arc::from(source));
        let counted = Counted::holding(place, start.client);
        // Whoever waits for it hears of its end through the store's notices,
        // on whichever node that is (this one too).
        let (done, _) = oneshot::channel();
        self.start_here(run, start, counted, done);
    }
}
