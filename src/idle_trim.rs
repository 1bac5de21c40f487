//! Giving memory back after a burst. The allocator keeps what a thousand
//! runs' host state freed in its arenas (hundreds of MiB measured after
//! `hero_logic bench --only waiting`); once no instance is alive, the
//! server asks it to return those free pages to the system. The sandbox's
//! burst pool returns its slots' memory by itself (`sandbox::engine`).

use crate::sandbox::Sandbox;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the server looks whether it has gone idle.
const LOOK_EVERY: Duration = Duration::from_secs(2);

/// Until `stop`: whenever instances have run since the last look and none
/// is alive now, trim the allocator.
pub fn spawn(sandbox: Sandbox, stop: CancellationToken) {
    tokio::spawn(async move {
        let mut trimmed_at = sandbox.instances_started();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(LOOK_EVERY) => {}
            }
            let started = sandbox.instances_started();
            if started != trimmed_at && sandbox.instances_alive() == 0 {
                trimmed_at = started;
                // A few milliseconds of the allocator walking its arenas,
                // off the async workers.
                let _ = tokio::task::spawn_blocking(trim_allocator).await;
            }
        }
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_allocator() {
    // SAFETY: malloc_trim only releases memory the allocator holds free; it
    // is thread-safe and has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_allocator() {}
