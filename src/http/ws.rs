//! WebSockets: `/api/runs/{id}/events` streams one run's events, everything
//! so far then live, each exactly once in seq order; `/api/events` streams
//! run-level events for live run lists.

use super::AppState;
use super::error::{AppError, QueryParams};
use super::guard::WS_PROTOCOL;
use crate::scheduler::run_finished_event;
use crate::store::Store;
use crate::trace::bus::RunChannel;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

/// A watcher further than this many events behind a live run is told it
/// lagged and disconnected; it re-joins with `?from_seq=` where it stopped.
pub const MAX_EVENTS_BEHIND: u64 = 50_000;

/// Events sent per read of the run's history.
const BATCH: usize = 512;

/// Events read from the store per page of a finished run: all a watcher of
/// a stored run holds at once.
const STORED_PAGE: usize = 4096;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Send only events with a greater seq (re-joining after a lag).
    #[serde(default)]
    from_seq: u64,
}

/// Where a run's events come from: the bus while it is live, the store after
/// (read a page at a time).
enum Source {
    Live(Arc<RunChannel>),
    Stored { store: Arc<Store>, run_id: String },
}

/// How long a watcher may take to accept one message before it is dropped:
/// a client that stops reading must not hold the run's history, or its
/// place among the streams, for ever.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run_events(
    ws: WebSocketUpgrade,
    State(state): State<Arc<AppState>>,
    Path(run_id): Path<String>,
    QueryParams(query): QueryParams<EventsQuery>,
) -> Result<Response, AppError> {
    // The bus keeps a run's history until the store holds the finished run,
    // so a run missing from the bus is complete in the store.
    let source = match state.bus.get(&run_id) {
        Some(channel) => Source::Live(channel),
        None => {
            // Asked once here, so an unknown run is a 404 before the upgrade.
            state
                .store
                .replay_page(&run_id, 0, 1)
                .await?
                .ok_or_else(|| AppError::not_found(format!("no run with id '{run_id}'")))?;
            Source::Stored { store: state.store.clone(), run_id }
        }
    };
    let slot = stream_slot(&state)?;
    let shutdown = state.shutdown.clone();
    Ok(accept(ws).on_upgrade(move |socket| async move {
        stream_run(socket, source, query.from_seq, shutdown).await;
        drop(slot);
    }))
}

/// Send one message; false when the watcher is gone or took longer than
/// `SEND_TIMEOUT` to accept it (then it is dropped).
async fn send(socket: &mut WebSocket, text: &Arc<str>) -> bool {
    let sending = socket.send(Message::Text(Utf8Bytes::from(text.as_ref())));
    matches!(tokio::time::timeout(SEND_TIMEOUT, sending).await, Ok(Ok(())))
}

async fn stream_run(mut socket: WebSocket, source: Source, from_seq: u64, shutdown: CancellationToken) {
    match source {
        Source::Stored { store, run_id } => {
            let mut cursor = from_seq;
            loop {
                let Ok(Some((run, events))) = store.replay_page(&run_id, cursor, STORED_PAGE).await else { return };
                if events.is_empty() {
                    if run.status.is_final()
                        && run.last_seq > cursor
                        && !send(&mut socket, &run_finished_event(&run)).await
                    {
                        return;
                    }
                    break;
                }
                for event in &events {
                    let text: Arc<str> = Arc::from(serde_json::to_string(event).unwrap_or_default());
                    if !send(&mut socket, &text).await {
                        return;
                    }
                    cursor = event.seq();
                }
            }
        }
        Source::Live(channel) => {
            let mut cursor = from_seq;
            loop {
                let batch = channel.read_after(cursor, BATCH);
                if !batch.is_empty() {
                    for event in &batch {
                        if !send(&mut socket, event).await {
                            return;
                        }
                        cursor += 1;
                    }
                    let (latest, finished) = channel.wait_after(0).await;
                    if !finished && latest.saturating_sub(cursor) > MAX_EVENTS_BEHIND {
                        let lagged = json!({
                            "type": "lagged",
                            "seq": cursor,
                            "latest": latest,
                            "message": "this watcher fell too far behind; re-join with ?from_seq=<seq>",
                        });
                        let _ = send(&mut socket, &Arc::from(lagged.to_string())).await;
                        break;
                    }
                    continue;
                }
                if channel.is_finished() {
                    break;
                }
                tokio::select! {
                    _ = channel.wait_after(cursor) => {}
                    _ = shutdown.cancelled() => break,
                    message = socket.recv() => match message {
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                        Some(Ok(_)) => {}
                    },
                }
            }
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

pub async fn run_list_events(ws: WebSocketUpgrade, State(state): State<Arc<AppState>>) -> Result<Response, AppError> {
    let slot = stream_slot(&state)?;
    let events = state.bus.subscribe_runs();
    let shutdown = state.shutdown.clone();
    Ok(accept(ws).on_upgrade(move |socket| async move {
        stream_run_list(socket, events, shutdown).await;
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
    mut events: tokio::sync::broadcast::Receiver<Arc<str>>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(text) => {
                    if !send(&mut socket, &text).await {
                        return;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    let lagged = json!({"type": "lagged", "missed": missed, "message": "reload the run list"});
                    if !send(&mut socket, &Arc::from(lagged.to_string())).await {
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
