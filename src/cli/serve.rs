//! `hero_logic serve`: the HTTP API and the live span stream.

use super::output::outln;
use super::{CliError, QuotaArgs};
use crate::sandbox::{EngineOptions, Quotas};
use crate::scheduler::SchedulerConfig;
use crate::server::{ServerConfig, serve_when_ready};
use crate::services::Grants;
use crate::store::Database;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free one (the line printed at
    /// start says which).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Where the SQLite database lives.
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
    /// The database: `postgres://user@host:port/db` for several nodes on one
    /// PostgreSQL; without it, SQLite in --data-dir.
    #[arg(long, value_name = "URL", env = "HERO_LOGIC_DATABASE", hide_env_values = true)]
    pub database: Option<String>,
    /// This node's name, kept in every run it executes [default: host name
    /// and process id].
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// With PostgreSQL: a node unheard of for this long is taken for dead,
    /// and the others end its runs `interrupted`.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub node_lease: u64,
    /// Require `Authorization: Bearer TOKEN` on every request but `/healthz`
    /// and the page's files. Needed to listen on a non-loopback address.
    /// Prefer HERO_LOGIC_TOKEN, which stays out of process lists.
    #[arg(long, env = "HERO_LOGIC_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A host name the server answers to besides localhost and its own
    /// addresses (requests naming any other Host are refused, against DNS
    /// rebinding); `.example.com` allows its subdomains. Repeatable.
    #[arg(long = "allowed-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,
    /// Connections served at once; more wait until one ends.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_connections: usize,
    /// Sandbox instances alive at once: runs, their subflows and module
    /// checks. Past it a new instance waits for one to end; it never fails
    /// [default: twice --max-concurrent, at least 256, at most 2048]
    #[arg(long, value_name = "N")]
    pub max_instances: Option<u32>,
    /// A directory whose Unix sockets may be registered as `unix://`
    /// services over HTTP (none by default). Repeatable.
    #[arg(long = "service-socket-dir", value_name = "DIR")]
    pub service_socket_dirs: Vec<PathBuf>,
    /// Give a flow a capability beyond its own things: `FLOW=runs.read_any`
    /// (read any flow's runs) or `FLOW=flows.save_any` (replace any flow
    /// with `flows.save`). Repeatable; `optimize_flow=runs.read_any` holds
    /// by default.
    #[arg(long = "grant", value_name = "FLOW=CAPABILITY")]
    pub grants: Vec<String>,
    /// Bytes of keys and values each flow may keep in the `kv` built-in
    /// (counting every run of it); a write past it is a service error.
    #[arg(long, value_name = "BYTES", default_value_t = crate::services::KV_BYTES_PER_FLOW)]
    pub max_kv_bytes: u64,
    /// Flows flow code may keep in the library through `flows.save`, all
    /// saving flows together (one flow at most 100 of them, one run 20);
    /// a save past it is a service error.
    #[arg(long, value_name = "N", default_value_t = crate::services::SAVED_FLOWS)]
    pub max_saved_flows: u64,
    /// Seconds a client may take to send a request head (and an idle
    /// kept-alive connection stays open), to send the next piece of a body,
    /// or to take the next piece of an answer.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub client_timeout: u64,
    /// WebSocket event streams open at once; more are refused with 503.
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub max_streams: usize,
    /// Runs executing at once [default: 4 per core]
    #[arg(long, value_name = "N")]
    pub max_concurrent: Option<usize>,
    /// Runs waiting for a worker before new ones get HTTP 429 [default: 256]
    #[arg(long, value_name = "N")]
    pub queue_capacity: Option<usize>,
    /// Of those, runs one client (an IPv4 address or IPv6 /64) may have
    /// waiting; more get HTTP 429 [default: a quarter of the queue]
    #[arg(long, value_name = "N")]
    pub queue_per_client: Option<usize>,
    /// Keep at most the newest N runs: older finished runs are removed with
    /// their spans and logs [default: keep every run]
    #[arg(long, value_name = "N")]
    pub retain_runs: Option<u64>,
    /// Remove finished runs that ended more than D days ago, with their
    /// spans and logs [default: keep every run]
    #[arg(long, value_name = "D")]
    pub retain_days: Option<u32>,
    /// Seconds running runs may go on after SIGINT/SIGTERM before they are cancelled.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub shutdown_grace: u64,
    /// The most any run may ask for (a request asking more gets these).
    #[command(flatten)]
    pub max: QuotaArgs,
}

/// The most sandbox instances one process may hold: each reserves address
/// space for its memories (not memory), and 2048 of them stay well within
/// what a 64-bit process can map.
const MAX_INSTANCES: u32 = 2048;

pub async fn run(args: ServeArgs, cache_dir: Option<PathBuf>) -> Result<ExitCode, CliError> {
    let token = args.token.filter(|t| !t.is_empty());
    if !args.addr.ip().is_loopback() && token.is_none() {
        return Err(CliError::Usage(format!(
            "refusing to listen on {} without a token: set --token or HERO_LOGIC_TOKEN, or listen on a loopback address",
            args.addr
        )));
    }
    if args.retain_runs == Some(0) || args.retain_days == Some(0) {
        return Err(CliError::Usage("--retain-runs and --retain-days must be at least 1".into()));
    }
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| CliError::Usage(format!("--data-dir {}: {e}", args.data_dir.display())))?;
    let mut scheduler = SchedulerConfig::default();
    scheduler.max_concurrent = args.max_concurrent.unwrap_or(scheduler.max_concurrent).max(1);
    scheduler.queue_capacity = args.queue_capacity.unwrap_or(scheduler.queue_capacity);
    scheduler.queue_per_client = args.queue_per_client.unwrap_or(scheduler.queue_capacity / 4).max(1);
    if let Some(max_instances) = args.max_instances {
        if !(1..=MAX_INSTANCES).contains(&max_instances) {
            return Err(CliError::Usage(format!(
                "--max-instances must be from 1 to {MAX_INSTANCES}, not {max_instances}"
            )));
        }
        if scheduler.max_concurrent > max_instances as usize {
            return Err(CliError::Usage(format!(
                "--max-concurrent {} is more than --max-instances {max_instances} (every run needs at least one sandbox instance)",
                scheduler.max_concurrent
            )));
        }
    } else if scheduler.max_concurrent > MAX_INSTANCES as usize {
        return Err(CliError::Usage(format!(
            "--max-concurrent must be at most {MAX_INSTANCES} (one sandbox instance each), not {}",
            scheduler.max_concurrent
        )));
    }
    // Room for each run's subflows and module checks beside the runs.
    let max_instances = args.max_instances.unwrap_or_else(|| {
        (scheduler.max_concurrent as u32).saturating_mul(2).clamp(EngineOptions::default().max_instances, MAX_INSTANCES)
    });
    let database =
        Database::choose(args.database.as_deref(), &args.data_dir).map_err(|e| CliError::Usage(format!("{e:#}")))?;
    let node = args.node.unwrap_or_else(crate::server::default_node_name);
    if node.is_empty() || node.len() > 100 || !node.chars().all(|c| c.is_ascii_graphic()) {
        return Err(CliError::Usage(format!(
            "--node '{node}': a name is 1 to 100 visible ASCII characters, without spaces"
        )));
    }
    if !(1..=3600).contains(&args.node_lease) {
        return Err(CliError::Usage(format!("--node-lease must be from 1 to 3600 seconds, not {}", args.node_lease)));
    }
    scheduler.node = node.clone();
    let mut config = ServerConfig::new(args.data_dir);
    config.database = database;
    config.node = node;
    config.node_lease = std::time::Duration::from_secs(args.node_lease);
    config.cache_dir = cache_dir;
    config.token = token;
    config.allowed_hosts = args.allowed_hosts;
    config.connections.max_connections = args.max_connections.clamp(1, 65_536);
    config.connections.client_timeout = std::time::Duration::from_secs(args.client_timeout.max(1));
    config.max_streams = args.max_streams.max(1);
    config.max_instances = max_instances;
    config.kv_bytes_per_flow = args.max_kv_bytes;
    config.saved_flows = args.max_saved_flows;
    for grant in &args.grants {
        let (flow, capability) = Grants::parse_grant(grant).map_err(CliError::Usage)?;
        config.grants.grant(&flow, capability);
    }
    config.service_socket_dirs = args
        .service_socket_dirs
        .iter()
        .map(|dir| {
            std::path::absolute(dir)
                .map_err(|e| CliError::Usage(format!("--service-socket-dir {}: {e}", dir.display())))
        })
        .collect::<Result<_, _>>()?;
    config.scheduler = scheduler;
    config.max_quotas = args.max.apply(Quotas::default()).map_err(CliError::Usage)?;
    config.shutdown_grace = std::time::Duration::from_secs(args.shutdown_grace);
    config.retention = crate::retention::Retention { runs: args.retain_runs, days: args.retain_days };

    let listener = listen(args.addr).map_err(|e| CliError::Usage(format!("cannot listen on {}: {e}", args.addr)))?;
    // Said once the store is open: a second node on a shared database (or
    // a test) may start once this one holds its lease.
    match serve_when_ready(listener, config, shutdown_signal(), |addr| outln!("listening on http://{addr}")).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error) => Err(CliError::Failed(format!("the server stopped: {error:#}"))),
    }
}

/// Connections the kernel holds for the server before it accepts them
/// (capped by the system's `net.core.somaxconn`). A thousand clients may
/// connect in the same millisecond while the server is busy starting
/// runs; past the backlog the kernel drops their handshakes and some end
/// reset. 1024, the usual default, is not enough for that.
const LISTEN_BACKLOG: u32 = 8192;

fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    // As std's bind does: a restarted server may listen again at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(_) => {
            let _ = interrupt.await;
            return;
        }
    };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down");
}
