//! One guest call in one fresh instance: a new `Store` from the shared
//! `InstancePre`, used once and dropped, so nothing passes from one run (or
//! subflow) to the next.

use super::bounds::bound_error;
use super::state::{HostState, Role, RunShared, epoch_callback};
use crate::trace::ErrorInfo;
use serde_json::Value;
use std::sync::Arc;
use wasmtime::Store;

pub(crate) enum GuestCall {
    Describe { source: Arc<str> },
    Run { source: Arc<str>, entry: String, input_json: String },
}

/// How a guest call ended.
pub(crate) enum Outcome {
    /// The guest returned a value: JSON text.
    Returned(String),
    /// The guest reported an error (bounded).
    Raised(ErrorInfo),
    /// The instance trapped: a quota, a broken host-call protocol, a crash.
    Trapped(wasmtime::Error),
}

pub(crate) async fn run_guest(run: Arc<RunShared>, role: Role, call: GuestCall) -> Outcome {
    let core = run.core.clone();
    // Declared before the store, so the slot is given back only after the
    // store (and its pool slot) is gone. The wait counts against the run's
    // wall time, like everything else it does.
    let _slot = core.instance_slots.acquire().await.expect("the instance semaphore is never closed");
    // Holding a permit of the whole means some pool has a free slot: every
    // pool permit is taken under a permit of the whole and given back
    // before it. The warm pool is tried first.
    let Some((pool, _pool_slot)) =
        core.pools.iter().find_map(|pool| pool.free_slots.try_acquire().ok().map(|slot| (pool, slot)))
    else {
        unreachable!("a permit of all slots always leaves a free slot in some pool")
    };
    core.instances_started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut store = Store::new(&pool.engine, HostState::new(run, role));
    store.limiter(|state| state);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(epoch_callback);
    let guest = match pool.pre.instantiate_async(&mut store).await {
        Ok(guest) => guest,
        Err(trap) => return Outcome::Trapped(trap),
    };
    let result = match &call {
        GuestCall::Describe { source } => guest.call_describe(&mut store, source).await,
        GuestCall::Run { source, entry, input_json } => guest.call_run(&mut store, source, entry, input_json).await,
    };
    // A replayed instance that asked for fewer answers than the original went another way.
    if result.is_ok()
        && let Some(Err(diverged)) = store.data().journal.as_ref().map(|journal| journal.check_all_asked())
    {
        return Outcome::Trapped(wasmtime::Error::new(diverged));
    }
    match result {
        Ok(Ok(output)) => Outcome::Returned(output),
        // Bounded here, once, for runs, subflows and describes alike.
        Ok(Err(error)) => Outcome::Raised(
            bound_error(match serde_json::from_str::<Value>(&error) {
                Ok(value) => ErrorInfo::from_value(value),
                Err(_) => ErrorInfo::new("GuestError", error),
            })
            .0,
        ),
        Err(trap) => Outcome::Trapped(trap),
    }
}
