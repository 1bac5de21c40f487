//! WebSockets: `/api/runs/{id}/events` streams one run's events, everything
//! so far then live, each exactly once in seq order; `/api/events` streams
//! run-level events for live run lists.

use super::AppState;
use super::audit::Who;
use super::error::{AppError, QueryParams};
use super::guard::WS_PROTOCOL;
use crate::store::{Notice, RunRecord, Store};
use crate::stream::StreamMessage;
use crate::trace::bus::Announcement;
use crate::trace::bus::{Read, RunChannel};
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{OwnedSemaphorePermit, broadcast};
use tokio_util::sync::CancellationToken;

/// Events sent per read of the run's tail.
const BATCH: usize = 512;

/// Events read from the store per page: all a watcher reading a finished
/// run, or one behind a live run's tail, holds at once.
const STORED_PAGE: usize = 4096;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Send only events with a greater seq (re-joining after a lag).
    #[serde(default)]
    from_seq: u64,
}

/// Where a run's events come from: the bus's tail while it is live (older
/// events from the store), the store alone after. A run another node
/// executes is read from the store each time that node's commits say there
/// is more (`Remote`).
enum Source {
    Live(Arc<RunChannel>),
    Stored,
    Remote(broadcast::Receiver<Notice>),
}

/// How long a watcher of another node's run waits for a notice before it
/// reads the store anyway: a notice lost with a connection costs at most this.
const REMOTE_RECHECK: Duration = Duration::from_secs(2);

/// How long a watcher may take to accept one message before it is dropped:
/// a client that stops reading must not hold its place among the streams
/// for ever.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run_events(
    ws: WebSocketUpgrade,
    State(state): State<Arc<AppState>>,
    who: Who,
    Path(run_id): Path<String>,
    QueryParams(query): QueryParams<EventsQuery>,
) -> Result<Response, AppError> {
    // Another workspace's run is as unknown as one that never was.
    super::runs::callers_run(&state, &who, &run_id).await?;
    // The bus keeps a run's channel until the store holds the finished run,
    // so a run missing from the bus is complete in the store.
    let source = match state.bus.get(&run_id) {
        Some(channel) => Source::Live(channel),
        None => {
            // Listening before the store is read: whatever is committed
            // after that read is noticed.
            let notices = state.cluster.as_ref().map(|cluster| cluster.notices.subscribe());
            // Asked once here, so an unknown run is a 404 before the upgrade.
            let (run, _) = state
                .store
                .replay_page(&run_id, 0, 1)
                .await?
                .ok_or_else(|| AppError::not_found(format!("no run with id '{run_id}'")))?;
            match notices {
                Some(notices) if !run.status.is_final() => Source::Remote(notices),
                _ => Source::Stored,
            }
        }
    };
    let slot = stream_slot(&state)?;
    let shutdown = state.shutdown.clone();
    let store = state.store.clone();
    Ok(accept(ws).on_upgrade(move |socket| async move {
        let mut watcher = Watcher { socket, store, run_id, cursor: query.from_seq };
        watcher.stream(source, shutdown).await;
        drop(slot);
    }))
}

/// Send one message; false when the watcher is gone or took longer than
/// `SEND_TIMEOUT` to accept it (then it is dropped).
async fn send(socket: &mut WebSocket, text: &Arc<str>) -> bool {
    let sending = socket.send(Message::Text(Utf8Bytes::from(text.as_ref())));
    matches!(tokio::time::timeout(SEND_TIMEOUT, sending).await, Ok(Ok(())))
}

/// One watcher of one run: its socket and the seq of the last event it was sent.
struct Watcher {
    socket: WebSocket,
    store: Arc<Store>,
    run_id: String,
    cursor: u64,
}

/// How a page read from the store went.
enum Page {
    Sent,
    /// No events after the cursor are stored; the run as stored.
    Empty(Box<RunRecord>),
    /// The watcher is gone, or the store failed.
    Stop,
}

impl Watcher {
    async fn stream(&mut self, source: Source, shutdown: CancellationToken) {
        let go_on = match source {
            Source::Stored => self.stream_stored().await,
            Source::Live(channel) => self.stream_live(&channel, shutdown).await,
            Source::Remote(notices) => self.stream_remote(notices, shutdown).await,
        };
        if go_on {
            let _ = self.socket.send(Message::Close(None)).await;
        }
    }

    /// A finished run, from the store a page at a time; false when the
    /// watcher is gone.
    async fn stream_stored(&mut self) -> bool {
        loop {
            match self.send_stored_page().await {
                Page::Sent => {}
                Page::Stop => return false,
                // The store holds the finished run, so its final record too.
                Page::Empty(run) if run.status.is_final() && run.last_seq > self.cursor => {
                    return send(&mut self.socket, &StreamMessage::RunFinished(&run).to_text()).await;
                }
                Page::Empty(_) => return true,
            }
        }
    }

    /// A live run: its tail, and the store for what has left the tail; false
    /// when the watcher is gone.
    async fn stream_live(&mut self, channel: &RunChannel, shutdown: CancellationToken) -> bool {
        loop {
            match channel.read_after(self.cursor, BATCH) {
                Read::FromStore { kept_from } => match self.send_stored_page().await {
                    Page::Sent => {}
                    // Events reach the tail once their batch is committed,
                    // or once it failed (so no stream stalls): those the
                    // store could not write are lost, go on after them.
                    Page::Empty(_) => self.cursor = self.cursor.max(kept_from - 1),
                    Page::Stop => return false,
                },
                Read::Events(batch) if !batch.is_empty() => {
                    for event in &batch {
                        if !send(&mut self.socket, event).await {
                            return false;
                        }
                        self.cursor += 1;
                    }
                }
                Read::Events(_) if channel.is_finished() => return true,
                Read::Events(_) => {
                    tokio::select! {
                        _ = channel.wait_after(self.cursor) => {}
                        _ = shutdown.cancelled() => return true,
                        message = self.socket.recv() => match message {
                            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return false,
                            Some(Ok(_)) => {}
                        },
                    }
                }
            }
        }
    }

    /// Another node's run, from the store, read again whenever a notice
    /// says that node committed more of it; false when the watcher is gone.
    async fn stream_remote(&mut self, mut notices: broadcast::Receiver<Notice>, shutdown: CancellationToken) -> bool {
        loop {
            match self.send_stored_page().await {
                Page::Sent => continue,
                Page::Stop => return false,
                Page::Empty(run) if run.status.is_final() => {
                    return run.last_seq <= self.cursor
                        || send(&mut self.socket, &StreamMessage::RunFinished(&run).to_text()).await;
                }
                Page::Empty(_) => {}
            }
            let recheck = tokio::time::sleep(REMOTE_RECHECK);
            tokio::pin!(recheck);
            loop {
                tokio::select! {
                    notice = notices.recv() => match notice {
                        Ok(Notice::Events { run_id, seq }) if run_id == self.run_id && seq > self.cursor => break,
                        Ok(Notice::Run { run_id, .. }) if run_id == self.run_id => break,
                        Ok(Notice::Resync) | Err(RecvError::Lagged(_)) => break,
                        Ok(_) => {}
                        Err(RecvError::Closed) => return true,
                    },
                    _ = &mut recheck => break,
                    _ = shutdown.cancelled() => return true,
                    message = self.socket.recv() => match message {
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return false,
                        Some(Ok(_)) => {}
                    },
                }
            }
        }
    }

    /// Send the next page of stored events after the cursor.
    async fn send_stored_page(&mut self) -> Page {
        let Ok(Some((run, events))) = self.store.replay_page(&self.run_id, self.cursor, STORED_PAGE).await else {
            return Page::Stop;
        };
        if events.is_empty() {
            return Page::Empty(Box::new(run));
        }
        for event in &events {
            if !send(&mut self.socket, &StreamMessage::Event(event).to_text()).await {
                return Page::Stop;
            }
            self.cursor = event.seq();
        }
        Page::Sent
    }
}

pub async fn run_list_events(
    ws: WebSocketUpgrade,
    State(state): State<Arc<AppState>>,
    who: Who,
) -> Result<Response, AppError> {
    let slot = stream_slot(&state)?;
    let events = state.bus.subscribe_runs();
    let shutdown = state.shutdown.clone();
    let workspace: Arc<str> = Arc::from(who.workspace());
    Ok(accept(ws).on_upgrade(move |socket| async move {
        stream_run_list(socket, events, workspace, shutdown).await;
        drop(slot);
    }))
}

/// A place among the streams open at once, held for the stream's life.
fn stream_slot(state: &AppState) -> Result<OwnedSemaphorePermit, AppError> {
    state.stream_slots.clone().try_acquire_owned().map_err(|_| {
        AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            "the server has as many event streams open as it allows; close one or try again later",
        )
        .with_header(header::RETRY_AFTER, "5")
    })
}

/// Answers with the page's sub-protocol when the client offered it (the page
/// offers it beside the one carrying its token, and a browser closes a
/// socket whose server picked none of those it offered).
fn accept(ws: WebSocketUpgrade) -> WebSocketUpgrade {
    ws.protocols([WS_PROTOCOL])
}

async fn stream_run_list(
    mut socket: WebSocket,
    mut events: tokio::sync::broadcast::Receiver<Announcement>,
    workspace: Arc<str>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            event = events.recv() => match event {
                // Only the watcher's own workspace's runs.
                Ok(announcement) if announcement.workspace != workspace => {}
                Ok(announcement) => {
                    if !send(&mut socket, &announcement.text).await {
                        return;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    if !send(&mut socket, &StreamMessage::Lagged { missed }.to_text()).await {
                        return;
                    }
                }
                Err(RecvError::Closed) => break,
            },
            _ = shutdown.cancelled() => break,
            message = socket.recv() => match message {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}
