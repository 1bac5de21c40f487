//! The benchmark's in-process service: `bench.echo` answers at once, as a
//! built-in service does; `bench.park` holds a run inside a call until the
//! benchmark releases it, to measure what a live run costs.

use crate::sandbox::{BoxFuture, CallContext, CallFailure, ServiceCaller};
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::watch;

pub struct BenchService {
    parked: AtomicUsize,
    release: watch::Sender<bool>,
}

impl BenchService {
    pub fn new() -> BenchService {
        BenchService { parked: AtomicUsize::new(0), release: watch::channel(false).0 }
    }

    /// Runs currently waiting in `bench.park`.
    pub fn parked(&self) -> usize {
        self.parked.load(Ordering::SeqCst)
    }

    pub fn release_all(&self) {
        self.release.send_replace(true);
    }
}

impl ServiceCaller for BenchService {
    fn call<'a>(
        &'a self,
        _context: CallContext<'a>,
        service: &'a str,
        method: &'a str,
        params: Value,
    ) -> BoxFuture<'a, Result<Value, CallFailure>> {
        Box::pin(async move {
            match (service, method) {
                ("bench", "echo") => Ok(params),
                ("bench", "park") => {
                    let mut release = self.release.subscribe();
                    self.parked.fetch_add(1, Ordering::SeqCst);
                    let _ = release.wait_for(|released| *released).await;
                    self.parked.fetch_sub(1, Ordering::SeqCst);
                    Ok(Value::Null)
                }
                ("bench", _) => Err(CallFailure::UnknownMethod {
                    service: service.into(),
                    method: method.into(),
                    known: vec!["echo".into(), "park".into()],
                }),
                _ => Err(CallFailure::UnknownService { service: service.into(), known: vec!["bench".into()] }),
            }
        })
    }
}
