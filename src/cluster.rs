//! This node among the others on one PostgreSQL database: it holds a lease
//! and renews it, and ends the runs of nodes whose lease ran out (killed,
//! powered off), as a single node ends its own at restart. It hears what
//! the other nodes' commits carry (`Notice`s): their runs, announced to this
//! node's run-list streams, and cancels of runs this node executes.
//! Watchers of another node's run follow it through the same notices (see
//! `http::ws`). With SQLite there is one node and none of this runs.

use crate::scheduler::Scheduler;
use crate::store::postgres::PgStore;
use crate::store::{Notice, NoticeFeed, Store};
use crate::stream::StreamMessage;
use crate::trace::Status;
use crate::trace::bus::EventBus;
use anyhow::Result;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

/// How often the runs this node put in the shared queue are read again
/// when no notice came.
const RECHECK_SHARED: Duration = Duration::from_secs(5);

pub struct Cluster {
    store: Arc<PgStore>,
    node: String,
    /// Every notice other nodes' commits carry (and this node's own).
    pub notices: NoticeFeed,
    stop: CancellationToken,
    /// The scheduler, once `relay` is given it: what a lost lease cancels.
    scheduler: std::sync::OnceLock<Arc<Scheduler>>,
}

impl Cluster {
    /// Join the nodes on `store`'s database as `node`, when it is
    /// PostgreSQL; None on SQLite.
    pub async fn join(store: &Store, node: &str, lease: Duration) -> Result<Option<Arc<Cluster>>> {
        let Some(pg) = store.postgres() else { return Ok(None) };
        pg.take_lease(node, lease).await?;
        let stop = CancellationToken::new();
        let notices = pg.listen(stop.clone());
        let cluster = Arc::new(Cluster {
            store: pg.clone(),
            node: node.to_string(),
            notices,
            stop,
            scheduler: std::sync::OnceLock::new(),
        });
        tokio::spawn(cluster.clone().keep_lease(lease));
        Ok(Some(cluster))
    }

    /// Renew the lease three times per lease, and look for nodes whose
    /// lease ran out as often. A renewal that fails (the database is away)
    /// changes nothing here: the runs go on, their writes wait in the
    /// writer. Only a lease found gone (another node swept this one, or
    /// another process took its name) stops them. Nodes are swept only
    /// once this one has reached the database for a whole lease: after an
    /// outage every node's lease may have run out, and each is given the
    /// time to renew its own before any is taken for dead.
    async fn keep_lease(self: Arc<Self>, lease: Duration) {
        let every = (lease / 3).max(Duration::from_millis(200));
        let health = self.store.health.clone();
        let mut reached_since = Some(tokio::time::Instant::now());
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = self.stop.cancelled() => return,
            }
            let renewed = self.store.renew_lease(&self.node, lease).await;
            health.observe(&renewed);
            match renewed {
                Ok(true) => {}
                Ok(false) => self.lease_lost(lease).await,
                Err(error) => {
                    reached_since = None;
                    tracing::warn!(
                        error = format!("{error:#}"),
                        node = self.node,
                        "renewing the node's lease failed; its runs go on and it is tried again"
                    );
                    continue;
                }
            }
            let reached_since = *reached_since.get_or_insert_with(tokio::time::Instant::now);
            if reached_since.elapsed() < lease {
                continue;
            }
            match self.store.sweep_expired().await {
                Ok(swept) => {
                    for (node, runs) in swept.nodes {
                        tracing::warn!(node, runs, "a node's lease ran out; its unfinished runs were ended");
                    }
                    // Before the scheduler is given, the server's start
                    // resumes them (they are this node's now).
                    if let Some(scheduler) = self.scheduler.get() {
                        for run_id in swept.durable {
                            scheduler.resume_by_id(&run_id).await;
                        }
                    }
                }
                Err(error) => tracing::warn!(error = format!("{error:#}"), "looking for nodes that are gone failed"),
            }
        }
    }

    /// The database the nodes share.
    pub fn store(&self) -> &PgStore {
        &self.store
    }

    /// Resolves once this node leaves the cluster.
    pub async fn stopped(&self) {
        self.stop.cancelled().await
    }

    /// Act on what other nodes tell: cancel runs this node executes when
    /// asked, and announce their runs on this node's run-list streams.
    pub fn relay(self: &Arc<Self>, scheduler: Arc<Scheduler>, bus: Arc<EventBus>, store: Arc<Store>) {
        let _ = self.scheduler.set(scheduler.clone());
        let mut notices = self.notices.subscribe();
        let cluster = self.clone();
        tokio::spawn(async move {
            // A notice lost with a connection costs at most this, however
            // busy the notices are.
            let mut recheck = tokio::time::interval(RECHECK_SHARED);
            loop {
                let notice = tokio::select! {
                    notice = notices.recv() => notice,
                    _ = recheck.tick() => Ok(Notice::Resync),
                    _ = cluster.stop.cancelled() => return,
                };
                match notice {
                    Ok(Notice::Cancel { run_id }) => {
                        scheduler.cancel(&run_id);
                    }
                    Ok(Notice::Run { run_id, by }) => {
                        // Read the record only when someone here needs it:
                        // a run-list watcher (for another node's run), or a
                        // waiter for a run this node put in the shared queue.
                        let elsewhere = by.as_deref() != Some(cluster.node.as_str());
                        if (elsewhere && bus.has_run_watchers()) || scheduler.is_shared_wait(&run_id) {
                            cluster.run_changed(&scheduler, &bus, &store, &run_id).await;
                        }
                    }
                    Ok(Notice::Resync) | Err(RecvError::Lagged(_)) => {
                        for run_id in scheduler.shared_waits() {
                            cluster.run_changed(&scheduler, &bus, &store, &run_id).await;
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }

    /// A run's record changed on some node: tell whoever here waits for a
    /// run this node put in the shared queue, and say it on this node's
    /// run-list streams as its node said it on its own (this node's runs
    /// it says itself).
    async fn run_changed(&self, scheduler: &Scheduler, bus: &EventBus, store: &Store, run_id: &str) {
        let run = match store.run(run_id).await {
            Ok(Some(run)) => run,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), run_id, "reading another node's run failed");
                return;
            }
        };
        let queued_here = run.status == Status::Queued && scheduler.is_shared_wait(run_id);
        scheduler.shared_run_changed(&run);
        if run.node.as_deref() == Some(self.node.as_str()) || queued_here {
            return;
        }
        let message = match run.status {
            Status::Queued => StreamMessage::RunQueued(&run),
            Status::Running => StreamMessage::RunStarted(&run),
            _ => StreamMessage::RunListed(&run),
        };
        bus.announce(&run.workspace, message.to_text());
    }

    /// This node's lease is gone: another node took it for dead (it did not
    /// renew in time) and ended its runs `interrupted`, or took its durable
    /// runs to resume; or another process took its name. Only then are the
    /// runs still going here stopped (the store no longer takes their
    /// writes, and a durable run goes on where it was taken), and the name
    /// held again.
    async fn lease_lost(&self, lease: Duration) {
        if let Some(scheduler) = self.scheduler.get() {
            let stopped = scheduler.give_up_all();
            tracing::error!(
                stopped,
                "this node's lease was taken; its runs were ended, or taken to resume, by another node"
            );
        }
        if let Err(error) = self.store.retake_lease(&self.node, lease).await {
            tracing::error!(error = format!("{error:#}"), "holding the node's name again failed");
        }
    }

    /// Stop renewing and give the lease back (after this node's runs are
    /// stored, at a clean shutdown).
    pub async fn leave(&self) {
        self.stop.cancel();
        if let Err(error) = self.store.drop_lease(&self.node).await {
            tracing::warn!(error = format!("{error:#}"), "giving the node's lease back failed");
        }
    }
}
