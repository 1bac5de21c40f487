//! The shared backend: PostgreSQL, for several nodes on one database. One
//! writer task per node batches writes as the SQLite writer does (a batch is
//! one transaction, spans and logs as one multi-row insert each); reads go
//! through a pool of connections. Commits that carry events notify the other
//! nodes (`NOTIFY hero_logic`), which is how their watchers follow a run.

mod flow_control;
mod flows;
mod nodes;
mod prune;
mod queue;
mod rows;
mod runs;
mod schedules;
mod schema;
mod search;
mod services;
mod writer;

pub use nodes::{Notice, NoticeFeed};

use super::health::DatabaseHealth;
use super::sql::{self, Query, Tx};
use super::writes::{Committed, Write};
use anyhow::{Context, Result};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use std::borrow::Cow;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use writer::Message;

/// Connections kept for reads and jobs, besides the writer's.
const POOL_SIZE: usize = 12;

pub struct PgStore {
    pool: Pool,
    config: tokio_postgres::Config,
    writes: mpsc::UnboundedSender<Message>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// This node's name, once it holds its lease: the notices its writer
    /// sends say the changes are this node's own.
    node: Arc<OnceLock<String>>,
    /// Drawn at random when the store opens: which process holds a node's
    /// lease, and the `application_name` of each of its connections, so
    /// another process tells a live holder (connected) from a dead one by
    /// what the database sees, never by a process table it may not see.
    instance: String,
    /// Whether the database answers, as the writer, the lease and the
    /// readiness probe last found.
    pub(crate) health: Arc<DatabaseHealth>,
}

/// How long the readiness probe waits for the database's answer.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a connection may sit in an open transaction, doing nothing.
const IDLE_IN_TRANSACTION_MS: u32 = 5000;

impl PgStore {
    /// Connect to `url`, bring the schema up to date (one node at a time),
    /// and start the writer.
    pub async fn open(url: &str) -> Result<PgStore> {
        let mut config = tokio_postgres::Config::from_str(url).context("read the PostgreSQL URL")?;
        // No transaction of a node holds its locks while the node stands
        // still (paused, swapped out): the database ends it, and the nodes
        // waiting on it (a sweep taking a durable run) go on.
        let options = format!(
            "{} -c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}",
            config.get_options().unwrap_or("")
        );
        config.options(options.trim());
        let instance = uuid::Uuid::now_v7().simple().to_string();
        config.application_name(application_name(&instance));
        let manager =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager).max_size(POOL_SIZE).build().context("make the PostgreSQL pool")?;
        let mut client = pool.get().await.map_err(|e| anyhow::anyhow!("connect to PostgreSQL: {e}"))?;
        schema::migrate(&mut client).await.context("migrate the PostgreSQL schema")?;
        drop(client);
        let (writes, queue) = mpsc::unbounded_channel();
        let node = Arc::new(OnceLock::new());
        let health = Arc::new(DatabaseHealth::default());
        let writer = tokio::spawn(writer::run_writer(pool.clone(), node.clone(), health.clone(), queue));
        Ok(PgStore { pool, config, writes, writer: Mutex::new(Some(writer)), node, instance, health })
    }

    async fn client(&self) -> Result<Object> {
        self.pool.get().await.map_err(|error| {
            let error = anyhow::Error::new(error).context("get a PostgreSQL connection");
            self.health.unreachable(&error);
            error
        })
    }

    /// Whether the database answers a query now, within `PROBE_TIMEOUT`.
    pub async fn probe(&self) -> bool {
        let asked = async { exec(&self.client().await?, "SELECT 1", &[]).await };
        let result = match tokio::time::timeout(PROBE_TIMEOUT, asked).await {
            Ok(result) => result,
            Err(_) => Err(anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::TimedOut))
                .context("the database did not answer in time")),
        };
        self.health.observe(&result);
        result.is_ok()
    }

    /// Every row `query` answers, on a pooled connection.
    pub async fn rows(&self, query: Query) -> Result<Vec<sql::Row>> {
        sql::postgres::rows(&self.client().await?, &query).await
    }

    /// `body` as one transaction, driven from a blocking thread.
    pub async fn transaction<T: Send + 'static>(
        &self,
        body: impl FnOnce(&mut dyn Tx) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let mut client = self.client().await?;
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let transaction = runtime.block_on(client.transaction())?;
            let mut tx = sql::postgres::BlockingTx { transaction, runtime: runtime.clone() };
            let answer = body(&mut tx)?;
            runtime.block_on(tx.transaction.commit())?;
            Ok(answer)
        })
        .await
        .context("a store transaction panicked")?
    }

    /// Queue a write; it is committed with the next batch.
    pub fn write(&self, write: Write) {
        // Fails only once the writer has stopped, at shutdown.
        let _ = self.writes.send(Message::Write(write));
    }

    /// Wait until everything queued so far is committed.
    pub async fn flush(&self) -> Result<()> {
        let (done, committed): (Committed, _) = oneshot::channel();
        let _ = self.writes.send(Message::Flush(done));
        match committed.await {
            Ok(result) => result.map_err(anyhow::Error::msg),
            Err(_) => Err(anyhow::anyhow!("the store's writer has stopped")),
        }
    }

    /// Commit what is queued and stop the writer. Later writes are dropped.
    pub async fn close(&self) -> () {
        if let Err(error) = self.flush().await {
            tracing::error!(error = format!("{error:#}"), "the last writes before closing the store failed");
        }
        let handle = self.writer.lock().ok().and_then(|mut writer| writer.take());
        if let Some(handle) = handle {
            let _ = self.writes.send(Message::Close);
            let _ = handle.await;
        }
    }
}

/// What each connection of the process `instance` calls itself, so that
/// `pg_stat_activity` (readable by every role) shows whether it is connected.
fn application_name(instance: &str) -> String {
    format!("hero_logic/{instance}")
}

/// Statements are prepared once per connection and kept (the pool keeps
/// its connections), so a query costs one round trip rather than a parse
/// and an execute.
async fn rows(client: &impl GenericClient, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query(&statement, params).await?)
}

async fn row(client: &impl GenericClient, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query_opt(&statement, params).await?)
}

async fn one_row(client: &impl GenericClient, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query_one(&statement, params).await?)
}

async fn exec(client: &impl GenericClient, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.execute(&statement, params).await?)
}

/// Text as PostgreSQL can hold it: its `text` type has no NUL character,
/// which Python strings (and so span names, log lines, sources) may hold.
/// Each becomes U+FFFD, as an undecodable byte does.
fn text(value: &str) -> Cow<'_, str> {
    if value.contains('\0') { Cow::Owned(value.replace('\0', "\u{FFFD}")) } else { Cow::Borrowed(value) }
}

/// A u32 or u64 column kept as PostgreSQL's signed integers.
fn unsigned<T: TryFrom<i64>>(value: i64, column: &str) -> Result<T> {
    T::try_from(value).map_err(|_| anyhow::anyhow!("column {column} holds {value}, out of range"))
}
