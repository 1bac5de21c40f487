//! The embedded backend: one SQLite file (WAL), one writer thread that
//! batches writes, and a small pool of read connections.

mod flow_control;
mod flows;
mod prune;
mod rows;
mod runs;
mod schedules;
mod schema;
mod search;
mod services;
mod writer;

use super::sql::{self, Query, Row, Tx};
use super::writes::{Committed, Write};
use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread::JoinHandle;
use tokio::sync::oneshot;
use writer::Message;

/// Read connections kept open between reads.
const IDLE_READERS: usize = 4;

pub struct SqliteStore {
    path: PathBuf,
    writes: mpsc::Sender<Message>,
    idle_readers: Mutex<Vec<Connection>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl SqliteStore {
    /// Open (or create) the database at `path`, bring its schema up to date,
    /// mark runs a previous process left unfinished as `interrupted`, and
    /// start the writer.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let mut conn = Connection::open(path).with_context(|| format!("open the database {}", path.display()))?;
        schema::configure(&conn)?;
        schema::migrate(&mut conn).context("migrate the database schema")?;
        search::build_index_if_missing(&mut conn).context("build the library's search index")?;
        let interrupted = runs::mark_interrupted(&mut conn, crate::trace::now_us())?;
        if interrupted > 0 {
            tracing::warn!(interrupted, "runs left unfinished by the previous process were marked interrupted");
        }
        let (writes, queue) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("hero_logic-store".into())
            .spawn(move || writer::run_writer(conn, queue))
            .context("start the store's writer thread")?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writes,
            idle_readers: Mutex::new(Vec::new()),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Queue a write; it is committed with the next batch.
    pub fn write(&self, write: Write) {
        self.send(Message::Write(write));
    }

    fn send(&self, message: Message) {
        // Fails only once the writer has stopped, at shutdown.
        let _ = self.writes.send(message);
    }

    /// Wait until everything queued so far is committed; an error when the
    /// last batch could not be written (or the writer has stopped).
    pub async fn flush(&self) -> Result<()> {
        let (done, committed): (Committed, _) = oneshot::channel();
        self.send(Message::Flush(done));
        match committed.await {
            Ok(result) => result.map_err(anyhow::Error::msg),
            Err(_) => Err(anyhow::anyhow!("the store's writer has stopped")),
        }
    }

    /// Run `job` on the writer's connection, after what is queued before it,
    /// and return its answer.
    async fn job<T: Send + 'static>(&self, job: impl FnOnce(&mut Connection) -> T + Send + 'static) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.send(Message::Job(Box::new(move |conn| {
            let _ = reply.send(job(conn));
        })));
        answer.await.context("the store's writer has stopped")
    }

    /// Run `read` on a read connection, off the async threads.
    async fn read<T: Send + 'static>(
        self: &std::sync::Arc<Self>,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        Ok(self.with_reader(read).await??)
    }

    /// `read`'s answer, whatever it is, from a read connection.
    async fn with_reader<T: Send + 'static>(
        self: &std::sync::Arc<Self>,
        read: impl FnOnce(&Connection) -> T + Send + 'static,
    ) -> Result<T> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = store.reader()?;
            let result = read(&conn);
            store
                .idle_readers
                .lock()
                .map(|mut idle| {
                    if idle.len() < IDLE_READERS {
                        idle.push(conn);
                    }
                })
                .ok();
            Ok(result)
        })
        .await
        .context("a store read panicked")?
    }

    /// Every row `query` answers, on a read connection.
    pub async fn rows(self: &std::sync::Arc<Self>, query: Query) -> Result<Vec<Row>> {
        self.read_any(move |conn| sql::sqlite::rows(conn, &query)).await
    }

    /// `body` as one transaction on the writer's connection.
    pub async fn transaction<T: Send + 'static>(
        &self,
        body: impl FnOnce(&mut dyn Tx) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.job(move |conn| {
            let mut transaction = conn.transaction()?;
            let answer = body(&mut transaction)?;
            transaction.commit()?;
            Ok(answer)
        })
        .await?
    }

    /// `read`, for a reader whose errors are not only SQLite's.
    async fn read_any<T: Send + 'static>(
        self: &std::sync::Arc<Self>,
        read: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.with_reader(read).await?
    }

    fn reader(&self) -> Result<Connection> {
        if let Some(conn) = self.idle_readers.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(conn)
    }

    /// Commit what is queued and stop the writer. Later writes are dropped.
    pub async fn close(&self) -> () {
        if let Err(error) = self.flush().await {
            tracing::error!(error = format!("{error:#}"), "the last writes before closing the store failed");
        }
        let handle = self.writer.lock().ok().and_then(|mut writer| writer.take());
        if let Some(handle) = handle {
            self.send(Message::Close);
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}
