//! Concurrency limits, from a run's side. A run of a flow declared with
//! `@flow(concurrency=K)` waits `queued` until it holds one of the K places
//! of its flow (of its key input's value, with `concurrency_key`), counted
//! in the store so that every node sees the same places. It waits without
//! a worker's place, which other flows' runs may use meanwhile, and asks
//! again whenever a place may have freed: a run here gave one back, a
//! notice says a run changed on another node, or a moment has passed.

use super::{Counted, Scheduler, StartRun};
use crate::store::{Notice, RunRecord, SlotClaim};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::broadcast::{Receiver, error::RecvError};
use tokio_util::sync::CancellationToken;

/// How often a waiting run asks again when nothing says a place freed
/// (a process sharing the database without notices, a lost notice).
const ASK_EVERY: Duration = Duration::from_millis(500);

/// Runs waiting for a place under a concurrency limit a node keeps, per
/// place of its queue (`--queue-capacity`).
pub(super) const WAITING_FOR_PLACES_PER_QUEUE_PLACE: usize = 16;

/// The run was cancelled while it waited for a place.
pub(super) struct CancelledWaiting;

impl Scheduler {
    /// Wait until the run holds a place under its flow's concurrency limit;
    /// None when the flow has no limit. A worker's place taken for the run
    /// (in `counted`) is given back if the run has to wait.
    pub(super) async fn wait_for_slot(
        &self,
        run: &RunRecord,
        start: &StartRun,
        cancel: &CancellationToken,
        counted: &mut Counted,
    ) -> Result<Option<SlotClaim>, CancelledWaiting> {
        // A replay calls nothing: the limit is for runs that do.
        let Some(limit) = start.info.concurrency.as_ref().filter(|_| !start.is_replay()) else { return Ok(None) };
        // Source sent from the editor is not the stored flow of that name:
        // its runs count apart, so trying a module never holds (or takes)
        // the stored flow's places.
        let flow = match run.version {
            Some(_) => run.flow.clone(),
            None => format!("{} (source {})", run.flow, &run.source_sha256[..12.min(run.source_sha256.len())]),
        };
        let claim = SlotClaim {
            run_id: run.run_id.clone(),
            flow,
            slot_key: limit.slot_key(&start.input),
            limit: limit.limit,
            created_us: run.created_us,
        };
        let mut notices = self.cluster.get().map(|cluster| cluster.notices.subscribe());
        let mut waited = false;
        let granted = loop {
            // Listening before asking, so a place freed between the answer
            // and the wait is not missed.
            let freed = self.slot_freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            match self.store.enter_slot(claim.clone()).await {
                Ok(true) => break true,
                Ok(false) => {}
                Err(error) => tracing::warn!(
                    run_id = run.run_id,
                    error = format!("{error:#}"),
                    "asking for a place under a concurrency limit failed"
                ),
            }
            if !waited {
                // Out of the queue while it waits for a place: runs of other
                // flows are not refused for it. It still counts against its
                // client's share, so one client cannot fill the places where
                // runs wait for a place and have everyone else's refused.
                waited = true;
                self.leave_queue(counted);
                self.waiting_for_places.fetch_add(1, Ordering::SeqCst);
            }
            if let Some(place) = counted.place.take() {
                self.give_back_place(place, counted);
            }
            tokio::select! {
                _ = &mut freed => {}
                _ = run_changed(&mut notices) => {}
                _ = tokio::time::sleep(ASK_EVERY) => {}
                _ = cancel.cancelled() => break false,
            }
        };
        if waited {
            self.waiting_for_places.fetch_sub(1, Ordering::SeqCst);
            if granted {
                // Waiting for a worker now, as a queued run does.
                self.waiting.fetch_add(1, Ordering::SeqCst);
                counted.in_queue = true;
            }
        }
        if !granted {
            self.leave_slot(&claim.run_id).await;
            return Err(CancelledWaiting);
        }
        Ok(Some(claim))
    }

    /// Give back a run's place (or its turn in line) and wake the runs
    /// waiting here.
    pub(super) async fn leave_slot(&self, run_id: &str) {
        if let Err(error) = self.store.leave_slot(run_id).await {
            // Freed anyway once the run is stored as ended.
            tracing::warn!(
                run_id,
                error = format!("{error:#}"),
                "giving back a place under a concurrency limit failed"
            );
        }
        self.slot_freed.notify_waiters();
    }
}

/// Until a notice says some run changed (it may have ended and freed a
/// place); never with one node.
async fn run_changed(notices: &mut Option<Receiver<Notice>>) {
    let Some(notices) = notices else { return std::future::pending().await };
    loop {
        match notices.recv().await {
            Ok(Notice::Run { .. } | Notice::Resync) | Err(RecvError::Lagged(_)) => return,
            Ok(_) => {}
            Err(RecvError::Closed) => return std::future::pending().await,
        }
    }
}
