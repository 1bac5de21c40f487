//! `hero_logic bench --only postgres`: the store on PostgreSQL, measured
//! beside SQLite in the same run. Runs per second through the HTTP API with
//! four clients (SQLite one node; PostgreSQL one node and two nodes on one
//! database), spans stored per second by each backend's writer, and the
//! latency from a span being recorded on one node to a watcher on another
//! having it. The servers run in this process, as `serve` runs them.
//!
//! The database: `HERO_LOGIC_BENCH_DATABASE=postgres://user@host:port`
//! (one that may create databases), else a throwaway cluster started here
//! as the tests start theirs.

use super::server::{connect_watcher, post, span_latency, upload};
use super::stats::Latencies;
use crate::server::{ServerConfig, serve};
use crate::store::Database;
use crate::throwaway_postgres as cluster;
use anyhow::{Context, Result, bail};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

const TRIVIAL: &str = include_str!("../../bench/server_trivial.py");
const SPANS: &str = include_str!("../../bench/spans.py");

/// Concurrent clients sending runs.
pub(super) const CLIENTS: usize = 4;

pub struct NodeFigures {
    pub sqlite_runs_per_s: f64,
    pub postgres_runs_per_s: f64,
    pub two_nodes_runs_per_s: f64,
    /// CPU PostgreSQL's own processes spent per run (one node), when they
    /// run on this machine: what bounds how many nodes one database serves.
    pub postgres_cpu_ms_per_run: Option<f64>,
    pub sqlite_spans_per_s: f64,
    pub postgres_spans_per_s: f64,
    /// A watcher on the other node, during the spans run: how long after the
    /// run was stored it had the last event.
    pub cross_node_catch_up_ms: f64,
    pub cross_node_latency: Latencies,
    pub same_node_latency: Latencies,
}

/// A server started in this process, and how to stop it.
pub(super) struct Node {
    pub(super) addr: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<()>>,
    _dir: tempfile::TempDir,
}

impl Node {
    pub(super) async fn start(
        database: Option<&str>,
        name: &str,
        cache_dir: Option<std::path::PathBuf>,
        spans: u64,
    ) -> Result<Node> {
        let dir = tempfile::tempdir()?;
        let mut config = ServerConfig::new(dir.path().join("data"));
        if let Some(url) = database {
            config.database = Database::Postgres(url.to_string());
        }
        config.node = name.to_string();
        config.scheduler.node = name.to_string();
        config.cache_dir = cache_dir;
        config.max_quotas.spans = spans + 10;
        config.max_quotas.cpu_time_ms = 600_000;
        config.max_quotas.wall_time_ms = 600_000;
        config.scheduler.queue_capacity = 1024;
        config.scheduler.queue_per_client = 1024;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, config, async {
            let _ = stopped.await;
        }));
        // Ready once it answers.
        let deadline = Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(&addr).await.is_err()
            || post(&addr, "/api/check", &json!({})).await.is_err()
        {
            if Instant::now() > deadline {
                bail!("node {name} did not start");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Node { addr, stop: Some(stop), task, _dir: dir })
    }

    pub(super) async fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await??;
        Ok(())
    }
}

pub async fn measure(cache_dir: Option<std::path::PathBuf>, quick: bool) -> Result<NodeFigures> {
    let runs = if quick { 60 } else { 1500 };
    let spans: u64 = if quick { 5_000 } else { 100_000 };
    let paced: u64 = if quick { 200 } else { 2_000 };
    let database = |_: &str| -> Result<String> {
        match std::env::var("HERO_LOGIC_BENCH_DATABASE") {
            Ok(server) if !server.is_empty() => Ok(cluster::fresh_database_on(&server)),
            _ => Ok(cluster::fresh_database()),
        }
    };

    // Runs per second: SQLite, then PostgreSQL with one node and with two.
    let sqlite = Node::start(None, "bench-sqlite", cache_dir.clone(), spans).await?;
    upload(&sqlite.addr, TRIVIAL).await?;
    let sqlite_runs_per_s = runs_per_second(std::slice::from_ref(&sqlite.addr), runs).await?;

    let url = database("runs")?;
    let one = Node::start(Some(&url), "bench-a", cache_dir.clone(), spans).await?;
    upload(&one.addr, TRIVIAL).await?;
    let cpu_before = postgres_cpu_ms();
    let postgres_runs_per_s = runs_per_second(std::slice::from_ref(&one.addr), runs).await?;
    let postgres_cpu_ms_per_run = match (cpu_before, postgres_cpu_ms()) {
        (Some(before), Some(after)) if after > before => Some((after - before) / runs as f64),
        _ => None,
    };
    let two = Node::start(Some(&url), "bench-b", cache_dir.clone(), spans).await?;
    let two_nodes_runs_per_s = runs_per_second(&[one.addr.clone(), two.addr.clone()], runs).await?;

    // Spans stored per second, and a watcher on the other node keeping up.
    let sqlite_spans_per_s = spans_per_second(&sqlite.addr, spans, None).await?.0;
    let (postgres_spans_per_s, catch_up) = spans_per_second(&one.addr, spans, Some(&two.addr)).await?;
    let cross_node_catch_up_ms = catch_up.context("the cross-node watcher")?.as_secs_f64() * 1000.0;

    // Span to watcher: on the node that runs it, and on the other.
    let same_node_latency = span_latency(&one.addr, &one.addr, paced).await?;
    let cross_node_latency = span_latency(&one.addr, &two.addr, paced).await?;

    for node in [sqlite, one, two] {
        node.stop().await?;
    }
    Ok(NodeFigures {
        sqlite_runs_per_s,
        postgres_runs_per_s,
        two_nodes_runs_per_s,
        postgres_cpu_ms_per_run,
        sqlite_spans_per_s,
        postgres_spans_per_s,
        cross_node_catch_up_ms,
        cross_node_latency,
        same_node_latency,
    })
}

/// `runs` trivial runs (`?wait=true`) from four clients spread over `nodes`.
pub(super) async fn runs_per_second(nodes: &[String], runs: usize) -> Result<f64> {
    let body = json!({"flow": "server_trivial", "input": {"n": 21}});
    for addr in nodes {
        for _ in 0..10 {
            post(addr, "/api/runs?wait=true", &body).await?;
        }
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (next, body, addr) = (next.clone(), body.clone(), nodes[client % nodes.len()].clone());
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::SeqCst) < runs {
                    let run = post(&addr, "/api/runs?wait=true", &body).await?;
                    if run["status"] != "ok" {
                        bail!("a trivial run ended {}: {run}", run["status"]);
                    }
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for client in clients {
        client.await??;
    }
    Ok(runs as f64 / started.elapsed().as_secs_f64())
}

/// Spans recorded and stored per second by one run on `addr`; with
/// `watch_on`, a watcher there follows the run, and how long after the run
/// was stored it had every event.
async fn spans_per_second(addr: &str, spans: u64, watch_on: Option<&str>) -> Result<(f64, Option<Duration>)> {
    use futures_util::StreamExt;
    let quotas = json!({"spans": spans + 10, "cpu_time_ms": 600_000, "wall_time_ms": 600_000});
    let body = json!({"source": SPANS, "input": {"count": spans}, "quotas": quotas});
    let Some(watch_on) = watch_on else {
        let started = Instant::now();
        let run = post(addr, "/api/runs?wait=true", &body).await?;
        if run["status"] != "ok" {
            bail!("the spans run ended {}", run["status"]);
        }
        return Ok((spans as f64 / started.elapsed().as_secs_f64(), None));
    };
    let started = Instant::now();
    let accepted = post(addr, "/api/runs", &body).await?;
    let run_id = accepted["run_id"].as_str().context("a run id")?.to_string();
    let mut socket = connect_watcher(watch_on, &run_id).await?;
    let watcher = tokio::spawn(async move {
        while let Some(message) = socket.next().await {
            let tokio_tungstenite::tungstenite::Message::Text(text) = message? else { continue };
            if text.contains("\"run_finished\"") {
                return anyhow::Ok(Instant::now());
            }
        }
        bail!("the watcher's stream ended before the run did")
    });
    // The run is stored once its record says it ended.
    let stored = loop {
        let run = super::server::get(addr, &format!("/api/runs/{run_id}")).await?;
        if run["status"] != "running" && run["status"] != "queued" {
            if run["status"] != "ok" {
                bail!("the spans run ended {}", run["status"]);
            }
            break Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let rate = spans as f64 / (stored - started).as_secs_f64();
    let last_event = watcher.await??;
    Ok((rate, Some(last_event.saturating_duration_since(stored))))
}

/// CPU time (user and system) of every `postgres` process on this machine,
/// in ms; None when /proc cannot be read.
fn postgres_cpu_ms() -> Option<f64> {
    let ticks_per_s = 100.0; // USER_HZ on Linux
    let mut total = 0u64;
    for entry in std::fs::read_dir("/proc").ok()? {
        let path = entry.ok()?.path();
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else { continue };
        let Some((name, rest)) = stat.split_once(") ") else { continue };
        if !name.ends_with("(postgres") {
            continue;
        }
        let fields: Vec<&str> = rest.split(' ').collect();
        // utime and stime: the 14th and 15th fields, 12th and 13th after the name.
        total += fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    }
    Some(total as f64 * 1000.0 / ticks_per_s)
}
