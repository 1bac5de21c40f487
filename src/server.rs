//! `serve`: wire the store, the sandbox, the scheduler and the HTTP API
//! together on a bound listener, until `shutdown` resolves. Tests call it on
//! port 0 exactly as `main` does.

use crate::http::conn::{ConnectionLimits, serve_connections};
use crate::http::guard::Guard;
use crate::http::keyring::Keyring;
use crate::http::{AppState, app};
use crate::metrics::Metrics;
use crate::sandbox::{EngineOptions, Quotas, Sandbox, SandboxOptions};
use crate::scheduler::{Scheduler, SchedulerConfig};
use crate::services::{Grants, ServiceRegistry};
use crate::store::{Database, Store};
use crate::trace::bus::EventBus;
use anyhow::{Context, Result};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Where the SQLite file lives (and, whatever the database, other files).
    pub data_dir: PathBuf,
    /// The database: the SQLite file in `data_dir` unless told otherwise.
    pub database: Database,
    /// This node's name, kept in every run it executes.
    pub node: String,
    /// With PostgreSQL: how long this node's lease lasts unrenewed, so how
    /// soon the other nodes end the runs of a node that died.
    pub node_lease: Duration,
    /// Where the compiled guest is cached.
    pub cache_dir: Option<PathBuf>,
    /// When set, every route but `/healthz` and the page's files needs
    /// `Authorization: Bearer <token>` (or the WebSocket protocol carrying it).
    pub token: Option<String>,
    /// Host names the server answers to besides `localhost` and its own
    /// addresses (`--allowed-host`); a leading dot allows subdomains.
    pub allowed_hosts: Vec<String>,
    pub connections: ConnectionLimits,
    /// WebSocket streams open at once.
    pub max_streams: usize,
    /// Capabilities the built-in services give flows beyond their own things.
    pub grants: Grants,
    /// Bytes of keys and values each flow may hold in `kv`.
    pub kv_bytes_per_flow: u64,
    /// Flows flow code may keep in the library through `flows.save`.
    pub saved_flows: u64,
    /// Directories `unix://` services registered over HTTP may live in.
    pub service_socket_dirs: Vec<PathBuf>,
    /// Sandbox instances alive at once (runs, their subflows, describes);
    /// past it, a new instance waits for a free one.
    pub max_instances: u32,
    pub scheduler: SchedulerConfig,
    pub max_quotas: Quotas,
    pub max_body_bytes: usize,
    /// How long running runs may go on after a shutdown signal before they
    /// are cancelled.
    pub shutdown_grace: Duration,
    /// Which finished runs are kept (all, by default).
    pub retention: crate::retention::Retention,
}

impl ServerConfig {
    pub fn new(data_dir: PathBuf) -> ServerConfig {
        ServerConfig {
            database: Database::Sqlite(data_dir.join("hero_logic.db")),
            data_dir,
            node: default_node_name(),
            node_lease: Duration::from_secs(10),
            cache_dir: None,
            token: None,
            allowed_hosts: Vec::new(),
            connections: ConnectionLimits::default(),
            max_streams: 512,
            max_instances: EngineOptions::default().max_instances,
            service_socket_dirs: Vec::new(),
            grants: Grants::default(),
            kv_bytes_per_flow: crate::services::KV_BYTES_PER_FLOW,
            saved_flows: crate::services::SAVED_FLOWS,
            scheduler: SchedulerConfig::default(),
            max_quotas: Quotas::default(),
            max_body_bytes: 4 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(10),
            retention: crate::retention::Retention::default(),
        }
    }
}

pub async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    serve_when_ready(listener, config, shutdown, |_| {}).await
}

/// `serve`, calling `ready` with the listening address once the store is
/// open (and this node's lease held) and requests are about to be served.
pub async fn serve_when_ready(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(std::net::SocketAddr),
) -> Result<()> {
    if !config.database.is_postgres() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("create the data directory {}", config.data_dir.display()))?;
    }
    let store = Arc::new(Store::open(&config.database).await?);
    let cluster = crate::cluster::Cluster::join(&store, &config.node, config.node_lease).await?;
    let engine = EngineOptions {
        max_instances: config.max_instances,
        warm_instances: warm_instances(config.scheduler.max_concurrent),
        ..EngineOptions::default()
    };
    let sandbox = Sandbox::new(&SandboxOptions { engine, cache_dir: config.cache_dir.clone() })?;
    let loaded = crate::builtin_flows::load(&sandbox, &store).await?;
    let stopping = CancellationToken::new();
    // However this function returns, the tasks it spawned below stop.
    let _stop_tasks_on_return = stopping.clone().drop_guard();
    crate::idle_trim::spawn(sandbox.clone(), stopping.clone());
    crate::retention::spawn(store.clone(), config.retention, stopping.clone());
    tracing::info!(flows = loaded.len(), "built-in flows stored (new or changed)");
    let bus = Arc::new(EventBus::default());
    let metrics = Arc::new(Metrics::default());
    let secrets = Arc::new(crate::secrets::Secrets::new(store.clone(), config.data_dir.clone()));
    let services = Arc::new(
        ServiceRegistry::with_socket_dirs(store.clone(), config.service_socket_dirs.clone())
            .with_grants(config.grants.clone())
            .with_kv_limit(config.kv_bytes_per_flow)
            .with_saved_flows_limit(config.saved_flows)
            .with_secrets(secrets.clone()),
    );
    let scheduler = Arc::new(Scheduler::new(
        sandbox,
        store.clone(),
        bus.clone(),
        metrics.clone(),
        services.clone(),
        // Runs are kept under the name the node's lease is held by.
        SchedulerConfig { node: config.node.clone(), ..config.scheduler.clone() },
    ));
    crate::schedules::spawn(
        store.clone(),
        scheduler.clone(),
        Quotas::default().capped_by(&config.max_quotas),
        stopping.clone(),
    );
    crate::retries::spawn(store.clone(), scheduler.clone(), stopping.clone());
    // Places under concurrency limits held by runs a dead process had in hand.
    match store.sweep_slots().await {
        Ok(0) => {}
        Ok(swept) => tracing::info!(swept, "gave back the places of runs that ended without giving them back"),
        Err(error) => tracing::warn!(error = format!("{error:#}"), "sweeping concurrency places failed"),
    }
    if let Some(cluster) = &cluster {
        cluster.relay(scheduler.clone(), bus.clone(), store.clone());
        scheduler.join_cluster(cluster.clone());
    }
    // Durable runs a process died with, this node's to resume (those a
    // sweep takes later, the cluster resumes as it takes them).
    let resumed = scheduler.resume_left().await;
    if resumed > 0 {
        tracing::info!(resumed, "resumed durable runs left unfinished");
    }
    let keyring = Arc::new(Keyring::new(store.clone()));
    let state = Arc::new(AppState {
        keyring: keyring.clone(),
        cluster: cluster.clone(),
        store: store.clone(),
        scheduler: scheduler.clone(),
        services,
        secrets,
        bus,
        metrics,
        max_quotas: config.max_quotas.clone(),
        stream_slots: Arc::new(tokio::sync::Semaphore::new(config.max_streams.max(1))),
        shutdown: stopping.clone(),
    });

    // On the signal: stop accepting, end the streams, and let runs finish
    // (or cancel them after the grace period) while requests drain.
    let drain = {
        let stopping = stopping.clone();
        let scheduler = scheduler.clone();
        let grace = config.shutdown_grace;
        tokio::spawn(async move {
            stopping.cancelled().await;
            scheduler.shutdown(grace).await;
        })
    };
    {
        let stopping = stopping.clone();
        tokio::spawn(async move {
            shutdown.await;
            stopping.cancel();
        });
    }
    let listen = listener.local_addr().context("read the listening address")?;
    let guard = Arc::new(Guard::new(listen, &config.allowed_hosts, config.token.as_deref()).with_keyring(keyring));
    let app = app(state, guard, config.max_body_bytes);
    ready(listen);
    serve_connections(listener, app, config.connections.clone(), stopping.clone()).await;
    let _ = drain.await;
    store.close().await;
    if let Some(cluster) = cluster {
        cluster.leave().await;
    }
    Ok(())
}

/// How many instance slots stay warm: enough for the runs a node executes
/// at once by default (4 per core) and a subflow or module check beside
/// each. Past them, instances come from the burst pool, which gives memory
/// back when they end (`sandbox::engine`).
fn warm_instances(max_concurrent: usize) -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (2 * max_concurrent.min(4 * cores)).max(8) as u32
}

/// The host's name and the process id: unique among live processes, and a
/// restarted process is a new node (the old one's runs end by its lease).
pub fn default_node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "node".into());
    format!("{host}-{}", std::process::id())
}
