//! Accepting connections: HTTP/1.1 with upgrades (WebSockets), a cap on
//! connections open at once, and a deadline for each request head, so that
//! slow or idle clients cannot hold the server's sockets and memory.
//!
//! `axum::serve` has neither knob, so this is the small accept loop it would
//! be with them. HTTP/2 is not offered: browsers speak it only over TLS,
//! which a reverse proxy in front terminates.

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How many clients the server holds at once, and how long each may take.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// Connections served at once; past this, new ones wait in the kernel's
    /// backlog until one ends.
    pub max_connections: usize,
    /// How long a client may take to send a request head (and how long an
    /// idle kept-alive connection stays open).
    pub header_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits { max_connections: 1024, header_timeout: Duration::from_secs(10) }
    }
}

/// Serve `app` on `listener` until `stop` is cancelled; then stop accepting,
/// let requests in flight finish, and return once every connection ended.
pub async fn serve_connections(listener: TcpListener, app: Router, limits: ConnectionLimits, stop: CancellationToken) {
    let max = limits.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max));
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = stop.cancelled() => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: wait, then go on,
                    // rather than spin or stop serving.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(
            app.clone().map_request(|request: hyper::Request<Incoming>| request.map(Body::new)),
        );
        let stop = stop.clone();
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
            let connection = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = stop.cancelled() => {
                    // Finish the request in flight, then close.
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    // Every connection holds a slot until it ends: having them all back means
    // every connection has ended.
    let _ = slots.acquire_many(max as u32).await;
}
