//! Accepting connections: HTTP/1.1 with upgrades (WebSockets), a cap on
//! connections open at once, and a deadline on every step a client must
//! take (send a request head, send the next piece of a body, take the next
//! piece of an answer), so that slow, idle or greedy clients cannot hold the
//! server's sockets and memory.
//!
//! `axum::serve` has neither knob, so this is the small accept loop it would
//! be with them. HTTP/2 is not offered: browsers speak it only over TLS,
//! which a reverse proxy in front terminates.

use crate::scheduler::Client;
use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
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
    /// idle kept-alive connection stays open), to send the next piece of a
    /// request body, or to take the next piece of an answer.
    pub client_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits { max_connections: 1024, client_timeout: Duration::from_secs(10) }
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
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => (stream, Client::of(peer.ip())),
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
        let client_timeout = limits.client_timeout;
        let service = TowerToHyperService::new(app.clone().map_request(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(|body| Body::new(PacedBody::new(body, client_timeout)));
            request.extensions_mut().insert(client);
            request
        }));
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(client_timeout);
            let stream = PacedWrites::new(stream, client_timeout);
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

/// A request body whose next piece must arrive within a deadline: a client
/// that sends its body a byte at a time cannot hold its connection for ever.
struct PacedBody {
    body: Incoming,
    limit: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl PacedBody {
    fn new(body: Incoming, limit: Duration) -> PacedBody {
        PacedBody { body, limit, deadline: Box::pin(tokio::time::sleep(limit)) }
    }
}

impl hyper::body::Body for PacedBody {
    type Data = hyper::body::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = tokio::time::Instant::now() + self.limit;
                self.deadline.as_mut().reset(next);
                Poll::Ready(frame.map(|frame| frame.map_err(Into::into)))
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err("the client sent its request body too slowly".into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// A connection whose writes must make progress within a deadline: a client
/// that stops reading cannot keep an answer (or a WebSocket stream) and the
/// memory behind it waiting for ever. Reads are not limited here: an idle
/// WebSocket watcher sends nothing, rightly.
struct PacedWrites {
    stream: TcpStream,
    limit: Duration,
    /// Armed while a write waits for the client to take data.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl PacedWrites {
    fn new(stream: TcpStream, limit: Duration) -> PacedWrites {
        PacedWrites { stream, limit, stalled: None }
    }

    /// After a write call: disarm on progress, arm (or check) on a wait.
    fn pace<T>(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.stalled = None;
            return result;
        }
        let limit = self.limit;
        let stalled = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client did not take what the server sent",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for PacedWrites {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for PacedWrites {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.pace(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.pace(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.stream).poll_flush(cx);
        self.pace(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
