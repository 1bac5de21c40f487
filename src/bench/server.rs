//! The span path through the server: spans recorded and stored per second,
//! and the latency from a span being recorded to a WebSocket client having it.

use super::stats::Latencies;
use crate::server::{ServerConfig, serve};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SPANS: &str = include_str!("../../bench/spans.py");
const PACED: &str = include_str!("../../bench/paced.py");

pub struct ServerFigures {
    pub spans_stored_per_s: f64,
    pub ws_latency: Latencies,
}

pub async fn measure(cache_dir: Option<std::path::PathBuf>, spans: u64, paced_spans: u64) -> Result<ServerFigures> {
    let dir = tempfile::tempdir()?;
    let mut config = ServerConfig::new(dir.path().join("data"));
    config.cache_dir = cache_dir;
    config.max_quotas.spans = spans + 10;
    config.max_quotas.cpu_time_ms = 600_000;
    config.max_quotas.wall_time_ms = 600_000;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, config, async {
        let _ = stopped.await;
    }));

    // Spans recorded and stored: ?wait=true answers once the run, and so
    // every span before it, is committed.
    let quotas = json!({"spans": spans + 10, "cpu_time_ms": 600_000, "wall_time_ms": 600_000});
    let body = json!({"source": SPANS, "input": {"count": spans}, "quotas": quotas});
    let started = Instant::now();
    let run = post(&addr, "/api/runs?wait=true", &body).await?;
    let elapsed = started.elapsed();
    if run["status"] != "ok" {
        bail!("the stored-spans run ended {}", run["status"]);
    }
    let spans_stored_per_s = spans as f64 / elapsed.as_secs_f64();

    // Span recorded (its start_us) to the client holding the event.
    let ws_latency = span_latency(&addr, &addr, paced_spans).await?;
    let _ = stop.send(());
    server.await??;
    Ok(ServerFigures { spans_stored_per_s, ws_latency })
}

/// Span recorded (its start_us) to a watcher on `watch_on` having it, for a
/// paced run on `run_on`.
pub(super) async fn span_latency(run_on: &str, watch_on: &str, count: u64) -> Result<Latencies> {
    use futures_util::StreamExt;
    let quotas = json!({"spans": count + 10});
    let body = json!({"source": PACED, "input": {"count": count}, "quotas": quotas});
    let accepted = post(run_on, "/api/runs", &body).await?;
    let run_id = accepted["run_id"].as_str().context("a run id")?;
    let mut socket = connect_watcher(watch_on, run_id).await?;
    let connected_us = crate::trace::now_us();
    let mut samples = Vec::new();
    while let Some(message) = socket.next().await {
        let tokio_tungstenite::tungstenite::Message::Text(text) = message? else { continue };
        let received_us = crate::trace::now_us();
        let event: serde_json::Value = serde_json::from_str(&text)?;
        if event["type"] == "run_finished" {
            break;
        }
        if event["type"] == "span_started" && event["kind"] == "step" {
            let start_us = event["start_us"].as_i64().unwrap_or(received_us);
            if start_us > connected_us {
                samples.push(Duration::from_micros((received_us - start_us).max(0) as u64));
            }
        }
    }
    Ok(Latencies::new(&samples))
}

/// POST a JSON body and return the JSON answer (one request per connection).
pub(super) async fn post(addr: &str, path: &str, body: &Value) -> Result<Value> {
    request(addr, "POST", path, "application/json", &body.to_string()).await
}

/// GET a JSON answer.
pub(super) async fn get(addr: &str, path: &str) -> Result<Value> {
    request(addr, "GET", path, "application/json", "").await
}

/// Store a module in the library.
pub(super) async fn upload(addr: &str, source: &str) -> Result<Value> {
    request(addr, "POST", "/api/flows", "text/x-python", source).await
}

/// A watcher of one run's events.
pub(super) async fn connect_watcher(
    addr: &str,
    run_id: &str,
) -> Result<tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>> {
    let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/runs/{run_id}/events")).await?;
    Ok(socket)
}

async fn request(addr: &str, method: &str, path: &str, content_type: &str, body: &str) -> Result<Value> {
    let mut stream = TcpStream::connect(addr).await?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").context("an HTTP response")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        bail!("unexpected chunked response");
    }
    Ok(serde_json::from_slice(&raw[split + 4..])?)
}
