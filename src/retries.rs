//! Retries: a run of a flow declared with `@flow(retries=N)` that ends
//! with a status its `retry_on` names is run again, as a new run, after its
//! delay. The next attempt is kept in the store with the ended run's final
//! record, in the same transaction, so neither a crash nor a restart loses
//! it. Every node looks for due attempts a few times a second; one is
//! claimed by moving its time on in one conditional UPDATE (as a schedule's
//! tick is), and the attempt's own `RunCreated` removes it, so of several
//! nodes one starts it, once.

use crate::flowdef::RetryPolicy;
use crate::scheduler::{Attempt, Scheduler, StartRun, SubmitError};
use crate::store::{DueRetry, Launch, PendingRetry, RunRecord, Store, Trigger};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often each node looks for due attempts: the most one starts late.
const LOOK_EVERY: Duration = Duration::from_millis(200);

/// How long a node that claimed an attempt has to start it before another
/// node may (the claiming node died between the claim and the start).
const CLAIM_LEASE: Duration = Duration::from_secs(30);

/// When an attempt is refused (the queue is full), how soon it is tried again.
const REFUSED_AGAIN_AFTER: Duration = Duration::from_secs(1);

/// The next attempt after `run`, which has ended; None when its flow's
/// policy does not run it again.
pub fn next_attempt(policy: &RetryPolicy, run: &RunRecord, launch: Launch) -> Option<Box<PendingRetry>> {
    let delay = policy.next_after(run.attempt, run.status)?;
    let ended_us = run.end_us.unwrap_or_else(crate::trace::now_us);
    Some(Box::new(PendingRetry {
        run_id: run.run_id.clone(),
        due_us: ended_us.saturating_add(delay.as_micros() as i64),
        launch,
    }))
}

/// Look for due attempts until `stop` is cancelled.
pub fn spawn(store: Arc<Store>, scheduler: Arc<Scheduler>, stop: CancellationToken) {
    tokio::spawn(async move {
        loop {
            if let Err(error) = start_due(&store, &scheduler).await {
                tracing::warn!(error = format!("{error:#}"), "looking for due retries failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(LOOK_EVERY) => {}
                _ = stop.cancelled() => return,
            }
        }
    });
}

async fn start_due(store: &Store, scheduler: &Arc<Scheduler>) -> anyhow::Result<()> {
    let now = crate::trace::now_us();
    for due in store.due_retries(now).await? {
        let lease_us = now + CLAIM_LEASE.as_micros() as i64;
        if store.claim_retry(&due.run_id, due.due_us, lease_us).await? {
            start(store, scheduler, due, lease_us).await?;
        }
    }
    Ok(())
}

/// Start a claimed attempt: the same flow version and source, input,
/// quotas and services as the attempt before it.
async fn start(store: &Store, scheduler: &Arc<Scheduler>, due: DueRetry, lease_us: i64) -> anyhow::Result<()> {
    let Some(before) = store.run(&due.run_id).await? else {
        // Pruned meanwhile: nothing is left to run again.
        store.drop_retry(&due.run_id).await?;
        return Ok(());
    };
    // A stored version's source comes with it; a stored flow removed since
    // is not run again, nor a flow stored later under its name (its
    // versions are numbered from 1 again, so only the source tells it from
    // the one the attempt before ran).
    let source = match before.version {
        Some(version) => store
            .flow(&before.flow, Some(version))
            .await?
            .filter(|stored| stored.source_sha256 == before.source_sha256)
            .map(|stored| stored.source),
        None => store.source(&before.source_sha256).await?,
    };
    let Some(source) = source else {
        tracing::info!(
            run_id = due.run_id,
            flow = before.flow,
            "the flow or its source is gone; its next attempt is dropped"
        );
        store.drop_retry(&due.run_id).await?;
        return Ok(());
    };
    let DueRetry { run_id, launch, .. } = due;
    // The attempt before, started again: a new run, counted where it waits.
    let mut start = StartRun::from_stored(&before, launch, Arc::from(source));
    start.trigger = Trigger::Retry { retry_of: run_id.clone() };
    start.attempt = Attempt { number: before.attempt + 1, first_run_id: Some(before.first_run_id.clone()) };
    match scheduler.submit(start) {
        Ok(_) => {}
        Err(SubmitError::QueueFull { .. } | SubmitError::ClientQueueFull { .. }) => {
            tracing::info!(run_id, "the next attempt found the queue full; it is tried again shortly");
            let again_us = crate::trace::now_us() + REFUSED_AGAIN_AFTER.as_micros() as i64;
            store.claim_retry(&run_id, lease_us, again_us).await?;
        }
        // Another node (or this one, started again) takes it once the lease ends.
        Err(SubmitError::ShuttingDown) => {}
    }
    Ok(())
}
