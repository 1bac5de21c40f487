//! `serve`: wire the store, the sandbox, the scheduler and the HTTP API
//! together on a bound listener, until `shutdown` resolves. Tests call it on
//! port 0 exactly as `main` does.

use crate::http::{AppState, app};
use crate::metrics::Metrics;
use crate::sandbox::{Quotas, Sandbox, SandboxOptions};
use crate::scheduler::{Scheduler, SchedulerConfig};
use crate::services::ServiceRegistry;
use crate::store::Store;
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
    /// Where the SQLite file lives.
    pub data_dir: PathBuf,
    /// Where the compiled guest is cached.
    pub cache_dir: Option<PathBuf>,
    pub token: Option<String>,
    pub scheduler: SchedulerConfig,
    pub max_quotas: Quotas,
    pub max_body_bytes: usize,
    /// How long running runs may go on after a shutdown signal before they
    /// are cancelled.
    pub shutdown_grace: Duration,
}

impl ServerConfig {
    pub fn new(data_dir: PathBuf) -> ServerConfig {
        ServerConfig {
            data_dir,
            cache_dir: None,
            token: None,
            scheduler: SchedulerConfig::default(),
            max_quotas: Quotas::default(),
            max_body_bytes: 4 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

pub async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("create the data directory {}", config.data_dir.display()))?;
    let store = Arc::new(Store::open(&config.data_dir.join("hero_logic.db"))?);
    let sandbox = Sandbox::new(&SandboxOptions { cache_dir: config.cache_dir.clone(), ..SandboxOptions::default() })?;
    let loaded = crate::builtin_flows::load(&sandbox, &store).await?;
    tracing::info!(flows = loaded.len(), "built-in flows stored (new or changed)");
    let bus = Arc::new(EventBus::default());
    let metrics = Arc::new(Metrics::default());
    let services = Arc::new(ServiceRegistry::with_sandbox(store.clone(), sandbox.clone()));
    let scheduler = Arc::new(Scheduler::new(
        sandbox.clone(),
        store.clone(),
        bus.clone(),
        metrics.clone(),
        services.clone(),
        config.scheduler.clone(),
    ));
    let stopping = CancellationToken::new();
    let state = Arc::new(AppState {
        store: store.clone(),
        sandbox,
        scheduler: scheduler.clone(),
        services,
        bus,
        metrics,
        max_quotas: config.max_quotas.clone(),
        token: config.token.clone(),
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
    let signal = {
        let stopping = stopping.clone();
        async move {
            shutdown.await;
            stopping.cancel();
        }
    };
    axum::serve(listener, app(state, config.max_body_bytes))
        .with_graceful_shutdown(signal)
        .await
        .context("serve HTTP")?;
    stopping.cancel();
    let _ = drain.await;
    store.close().await;
    Ok(())
}
