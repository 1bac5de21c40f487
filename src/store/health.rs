//! Whether the database can be reached now, and how often it could not:
//! what `/healthz`, `/readyz` and `/metrics` say, and what tells an outage
//! (wait and try again: 503, back-off) from a write the database refuses.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// How long a client is told to wait before trying again (`Retry-After`)
/// while the database is unreachable.
pub const RETRY_AFTER_SECS: u64 = 5;

/// The database's reachability as this process last found it. Whoever
/// talks to the database says how it went (the writer, the lease, the
/// readiness probe); SQLite is always reachable.
#[derive(Debug)]
pub struct DatabaseHealth {
    reachable: AtomicBool,
    /// Outages begun: each time the database went from reachable to not.
    outages: AtomicU64,
}

impl Default for DatabaseHealth {
    fn default() -> DatabaseHealth {
        DatabaseHealth { reachable: AtomicBool::new(true), outages: AtomicU64::new(0) }
    }
}

impl DatabaseHealth {
    pub fn is_reachable(&self) -> bool {
        self.reachable.load(Ordering::SeqCst)
    }

    pub fn outages(&self) -> u64 {
        self.outages.load(Ordering::SeqCst)
    }

    /// The database answered.
    pub fn answered(&self) {
        if !self.reachable.swap(true, Ordering::SeqCst) {
            tracing::warn!("the database is reachable again");
        }
    }

    /// The database could not be reached (`error` says why).
    pub fn unreachable(&self, error: &anyhow::Error) {
        if self.reachable.swap(false, Ordering::SeqCst) {
            self.outages.fetch_add(1, Ordering::SeqCst);
            tracing::error!(
                error = format!("{error:#}"),
                "the database is unreachable; writes are kept and tried again until it is back"
            );
        }
    }

    /// Say how a call to the database went: an error that is an outage
    /// marks it unreachable, an answer (or an error the database gave)
    /// reachable.
    pub fn observe<T>(&self, result: &anyhow::Result<T>) {
        match result {
            Err(error) if is_unavailable(error) => self.unreachable(error),
            _ => self.answered(),
        }
    }
}

/// The pauses between tries while the database is unreachable: 50 ms,
/// doubling up to 2 s. Whoever waits out an outage (the writer with its
/// batch, a call looking up its service) waits the same.
pub struct BackOff {
    next: std::time::Duration,
}

impl Default for BackOff {
    fn default() -> BackOff {
        BackOff { next: BackOff::FIRST }
    }
}

impl BackOff {
    const FIRST: std::time::Duration = std::time::Duration::from_millis(50);
    const MOST: std::time::Duration = std::time::Duration::from_secs(2);

    /// Sleep the next pause, and make the one after it longer.
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(BackOff::MOST);
    }
}

/// Whether `error` says the database could not be reached (refused, lost,
/// restarting, shutting down, a standby not yet promoted): an outage, which
/// passes, rather than a statement it refused.
pub fn is_unavailable(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        if cause.is::<deadpool_postgres::PoolError>() || cause.is::<std::io::Error>() {
            return true;
        }
        let Some(error) = cause.downcast_ref::<tokio_postgres::Error>() else { return false };
        if error.is_closed() {
            return true;
        }
        match error.code() {
            Some(code) => unavailable_state(code.code()),
            // tokio-postgres keeps the kind private; these are its words
            // for a connection that could not be made or did not answer.
            None => {
                let said = error.to_string();
                ["error connecting to server", "timeout waiting for server", "error communicating with the server"]
                    .iter()
                    .any(|prefix| said.starts_with(prefix))
            }
        }
    })
}

/// SQLSTATEs of an outage: a connection exception (class 08), the server
/// shutting down or starting (57P01-57P03), no connection free (53300),
/// and a read-only standby (25006: a failover not yet done).
fn unavailable_state(state: &str) -> bool {
    state.starts_with("08") || matches!(state, "57P01" | "57P02" | "57P03" | "53300" | "25006")
}

/// SQLSTATEs worth trying a batch again for, at once: it lost a race
/// (serialization failure, deadlock) or waited too long for a lock.
pub(crate) fn is_transient(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(tokio_postgres::Error::code)
            .is_some_and(|code| matches!(code.code(), "40001" | "40P01" | "55P03"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_counted_once_until_the_database_answers_again() {
        let health = DatabaseHealth::default();
        let refused = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(is_unavailable(&refused));
        health.observe::<()>(&Err(refused.context("write a batch")));
        health.unreachable(&anyhow::anyhow!("again"));
        assert!(!health.is_reachable());
        health.observe(&Ok(()));
        assert!(health.is_reachable());
        assert_eq!(health.outages(), 1);
        assert!(!is_unavailable(&anyhow::anyhow!("a statement the database refused")));
    }
}
