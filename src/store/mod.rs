//! The store: everything the server keeps, behind one interface with two
//! databases under it, chosen at start. SQLite (one file in the data
//! directory) is the embedded default; PostgreSQL lets several nodes share
//! one library, one queue of records and one stream of events. No SQL lives
//! outside this module.
//!
//! Shared by both: the records (`records`), the writes a run makes and how a
//! batch of them is settled (`writes`), how a stored run's events are
//! rebuilt for late watchers (`replay`), and the search query language
//! (`words`).
//!
//! A query is written once, for both databases, with `sql` (`query!` with
//! `$1`-style placeholders, `Store::rows`, `Store::execute`,
//! `Store::transaction`), in a module here named after what it keeps
//! (`secrets`, `tenancy`); `statements_written_once_run_alike_on_both` and
//! `both_databases_migrate_to_the_same_schema` hold the two engines to it.
//! What is written per backend (`sqlite`, `postgres`) is what the engines
//! really do differently (the writers, leases and notices, the shared
//! queue, search) and the queries not yet moved to `sql`.

mod columns;
mod health;
pub mod postgres;
mod records;
mod replay;
mod secrets;
pub mod sql;
mod sqlite;
mod tenancy;
mod words;
mod writes;

pub use health::{BackOff, DatabaseHealth, RETRY_AFTER_SECS, is_unavailable};
pub use postgres::{Notice, NoticeFeed};
pub use records::{
    ClaimedRun, DueRetry, FlowRemoved, FlowSummary, FlowVersion, JournalRow, KvFull, Launch, PendingRetry, Pruning,
    RunFilter, RunRecord, SaveRefused, SavedFlow, SavedFlowsBound, Saver, SearchHit, SlotClaim, StoredFlow, StoredHook,
    StoredSchedule, StoredSecret, StoredService, SubflowRun, Trigger, hook_fingerprint, sha256_hex,
};
pub use tenancy::{AuditEntry, AuditFilter, StoredKey, StoredWorkspace, WorkspaceInUse};
pub use words::{fts_query, search_words, tsquery};
pub use writes::{Published, Write};

use crate::flowdef::FlowInfo;
use crate::trace::{LogLine, RunEvent, Span};
use anyhow::Result;
use postgres::PgStore;
use serde_json::Value;
use sql::{Query, Row, Tx};
use sqlite::SqliteStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which database to use.
#[derive(Clone, Debug, PartialEq)]
pub enum Database {
    /// A SQLite file (the embedded default: `hero_logic.db` in the data dir).
    Sqlite(PathBuf),
    /// A PostgreSQL URL, `postgres://user@host:port/db`.
    Postgres(String),
}

impl Database {
    /// `--database URL` when given, else the SQLite file in `data_dir`.
    pub fn choose(url: Option<&str>, data_dir: &Path) -> Result<Database> {
        match url.map(str::trim) {
            None | Some("") => Ok(Database::Sqlite(data_dir.join("hero_logic.db"))),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(Database::Postgres(url.to_string()))
            }
            Some(url) if url.starts_with("sqlite://") => Ok(Database::Sqlite(PathBuf::from(&url["sqlite://".len()..]))),
            // Said without the rest of the URL, which may hold a password.
            Some(url) => anyhow::bail!(
                "--database: a '{}' URL is neither postgres://USER@HOST:PORT/DB nor sqlite://PATH",
                url.split(':').next().unwrap_or_default()
            ),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Database::Postgres(_))
    }
}

pub struct Store {
    backend: Backend,
}

enum Backend {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PgStore>),
}

/// Each method of `Store`, handed to the backend in use.
macro_rules! delegate {
    ($( $(#[$doc:meta])* pub async fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty; )*) => {
        $(
            $(#[$doc])*
            pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                match &self.backend {
                    Backend::Sqlite(store) => store.$name($($arg),*).await,
                    Backend::Postgres(store) => store.$name($($arg),*).await,
                }
            }
        )*
    };
}

impl Store {
    /// Open (or create) the database, bring its schema up to date, and start
    /// the writer. With SQLite, runs a previous process left unfinished are
    /// marked `interrupted` (with PostgreSQL, that is the nodes' leases' job).
    pub async fn open(database: &Database) -> Result<Store> {
        let backend = match database {
            Database::Sqlite(path) => {
                let path = path.clone();
                let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path)).await??;
                Backend::Sqlite(Arc::new(store))
            }
            Database::Postgres(url) => Backend::Postgres(Arc::new(PgStore::open(url).await?)),
        };
        Ok(Store { backend })
    }

    /// The PostgreSQL backend, for what only several nodes need (leases,
    /// notices); None on SQLite.
    pub fn postgres(&self) -> Option<&Arc<PgStore>> {
        match &self.backend {
            Backend::Postgres(store) => Some(store),
            Backend::Sqlite(_) => None,
        }
    }

    /// Every row `query` answers, read beside the writer (on SQLite, from
    /// the last commit; on PostgreSQL, from a pooled connection).
    pub async fn rows(&self, query: Query) -> Result<Vec<Row>> {
        match &self.backend {
            Backend::Sqlite(store) => store.rows(query).await,
            Backend::Postgres(store) => store.rows(query).await,
        }
    }

    /// The one row `query` answers, if any.
    pub async fn row(&self, query: Query) -> Result<Option<Row>> {
        Ok(self.rows(query).await?.into_iter().next())
    }

    /// Run one statement that changes rows, as its own transaction; the
    /// number of rows it changed.
    pub async fn execute(&self, statement: Query) -> Result<u64> {
        self.transaction(move |tx| tx.execute(&statement)).await
    }

    /// Run `body` as one transaction, committed when it returns `Ok` and
    /// rolled back when it returns an error. On SQLite it runs on the
    /// writer's connection, after the writes queued before it.
    pub async fn transaction<T: Send + 'static>(
        &self,
        body: impl FnOnce(&mut dyn Tx) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        match &self.backend {
            Backend::Sqlite(store) => store.transaction(body).await,
            Backend::Postgres(store) => store.transaction(body).await,
        }
    }

    /// Whether the database can be reached, as this process last found it
    /// (SQLite, a file, always can).
    pub fn health(&self) -> Arc<DatabaseHealth> {
        static EMBEDDED: std::sync::LazyLock<Arc<DatabaseHealth>> = std::sync::LazyLock::new(Default::default);
        match &self.backend {
            Backend::Postgres(store) => store.health.clone(),
            Backend::Sqlite(_) => EMBEDDED.clone(),
        }
    }

    /// Ask the database whether it answers now (and note what it said);
    /// SQLite always does.
    pub async fn probe(&self) -> bool {
        match &self.backend {
            Backend::Postgres(store) => store.probe().await,
            Backend::Sqlite(_) => true,
        }
    }

    /// Queue a write; it is committed with the next batch.
    pub fn write(&self, write: Write) {
        match &self.backend {
            Backend::Sqlite(store) => store.write(write),
            Backend::Postgres(store) => store.write(write),
        }
    }

    /// Store every flow `source` declares, as the operator; one transaction
    /// for the module.
    pub async fn save_module(&self, source: String, flows: Vec<FlowInfo>) -> Result<Vec<SavedFlow>> {
        Ok(self.save_module_as(source, flows, Saver::Operator).await??)
    }

    delegate! {
        /// Wait until everything queued so far is committed; an error when
        /// the last batch could not be written (or the writer has stopped).
        pub async fn flush(&self) -> Result<()>;
        /// Commit what is queued and stop the writer. Later writes are dropped.
        pub async fn close(&self) -> ();

        pub async fn run(&self, run_id: &str) -> Result<Option<RunRecord>>;
        pub async fn runs(&self, filter: RunFilter) -> Result<Vec<RunRecord>>;
        /// The latest `limit` times flow `name` ran as a subflow and
        /// finished, newest first.
        pub async fn subflow_runs(&self, name: &str, limit: u32) -> Result<Vec<SubflowRun>>;
        pub async fn spans(&self, run_id: &str) -> Result<Vec<Span>>;
        /// Remove finished runs `pruning` names, with their spans and logs,
        /// at most `pruning.batch` in one transaction; how many.
        pub async fn prune_runs(&self, pruning: Pruning) -> Result<u64>;
        pub async fn logs(&self, run_id: &str, after_seq: u64) -> Result<Vec<LogLine>>;
        /// A stored run's events after `after_seq`, at most `limit` of them,
        /// in seq order, for watchers joining late: each span's start (as
        /// `running`) and end, and its log lines. Spans closed by crash
        /// recovery, which never had an end event, come last, with seqs
        /// after the last stored one. Read a page at a time, in one
        /// snapshot, so a watcher of a huge run holds one page, and a live
        /// run's page has no gap. `None`: no such run.
        pub async fn replay_page(&self, run_id: &str, after_seq: u64, limit: usize) -> Result<Option<(RunRecord, Vec<RunEvent>)>>;

        /// Store every flow `source` declares on behalf of `saver`: all or
        /// none, refused whole when a flow may not replace one of them, or
        /// may not add as many new flows (`SavedFlowsBound`).
        pub async fn save_module_as(&self, source: String, flows: Vec<FlowInfo>, saver: Saver) -> Result<Result<Vec<SavedFlow>, SaveRefused>>;
        /// A flow's latest version, or `version` when given.
        pub async fn flow(&self, name: &str, version: Option<u32>) -> Result<Option<StoredFlow>>;
        pub async fn flow_versions(&self, name: &str) -> Result<Vec<FlowVersion>>;
        /// Whether the latest version of `name` was stored by a flow through
        /// `flows.save` rather than by the operator (false when there is none).
        pub async fn saved_by_a_flow(&self, name: &str) -> Result<bool>;
        /// The first `limit` flow names, in order (for "unknown flow" messages).
        pub async fn flow_names(&self, limit: usize) -> Result<Vec<String>>;
        /// Every flow's latest version, by name.
        pub async fn flows(&self) -> Result<Vec<FlowSummary>>;
        /// Is this module source the latest version of a flow it declares?
        /// Then storing it again would change nothing.
        pub async fn is_latest_source(&self, source: &str) -> Result<bool>;
        /// A stored module source by its SHA-256 (every run keeps its source's).
        pub async fn source(&self, sha256: &str) -> Result<Option<String>>;
        /// Remove every version of a flow, and its webhooks and schedules,
        /// in one transaction; its runs stay.
        pub async fn delete_flow(&self, name: &str) -> Result<FlowRemoved>;
        /// Full-text search over the latest version of every flow, in plain
        /// words (see `words`), best first.
        pub async fn search_flows(&self, query: &str, limit: u32) -> Result<Vec<SearchHit>>;
        /// The same search ranking every flow that matches, without an index
        /// that stops early (on SQLite, FTS5 alone): what `search_flows` is
        /// held to.
        pub async fn search_flows_ranking_every_match(&self, query: &str, limit: u32) -> Result<Vec<SearchHit>>;
        /// What search would be without its index: the flows whose sources
        /// hold most of the words, by reading every source (the baseline
        /// the benchmark compares with).
        pub async fn scan_sources(&self, text: &str, limit: u32) -> Result<Vec<String>>;

        /// Register (or replace) a service.
        pub async fn save_service(&self, service: StoredService) -> Result<()>;
        pub async fn services(&self) -> Result<Vec<StoredService>>;
        pub async fn service(&self, name: &str) -> Result<Option<StoredService>>;
        /// Returns whether there was such a service.
        pub async fn remove_service(&self, name: &str) -> Result<bool>;


        /// Store a new webhook, when its flow is stored (false when not: a
        /// trigger never outlives its flow, even when made as it is removed).
        pub async fn save_hook(&self, hook: StoredHook) -> Result<bool>;
        pub async fn hook(&self, hook_id: &str) -> Result<Option<StoredHook>>;
        /// A flow's webhooks, oldest first.
        pub async fn hooks(&self, flow: &str) -> Result<Vec<StoredHook>>;
        /// Returns whether there was such a webhook.
        pub async fn remove_hook(&self, hook_id: &str) -> Result<bool>;

        /// Store a new schedule, when its flow is stored (false when not, as
        /// for webhooks).
        pub async fn save_schedule(&self, schedule: StoredSchedule) -> Result<bool>;
        /// Every schedule, oldest first.
        pub async fn schedules(&self) -> Result<Vec<StoredSchedule>>;
        /// Returns whether there was such a schedule.
        pub async fn remove_schedule(&self, schedule_id: &str) -> Result<bool>;
        /// The schedules due at `now_us` (next due then or before).
        pub async fn due_schedules(&self, now_us: i64) -> Result<Vec<StoredSchedule>>;
        /// Move a schedule's next tick from `due_us` to `next_us`, when it is
        /// still `due_us`: true for the one node (or pass) that claims the
        /// tick, false for every other.
        pub async fn claim_tick(&self, schedule_id: &str, due_us: i64, next_us: i64) -> Result<bool>;

        /// A run's journal, each instance's stream in order.
        pub async fn journal(&self, run_id: &str) -> Result<Vec<JournalRow>>;
        /// Unfinished durable runs node `node` is to resume (with SQLite,
        /// every one: there is one node).
        pub async fn durable_runs(&self, node: &str) -> Result<Vec<String>>;
        /// Count a resume of durable run `run_id` by node `node` (a run that
        /// had not started is not counted) and return how to start it; None
        /// when it is no longer an unfinished durable run (on PostgreSQL,
        /// one this node holds).
        pub async fn resume_launch(&self, run_id: &str, node: &str) -> Result<Option<Launch>>;
        /// Next attempts due at `now_us`, the most overdue first (at most 100).
        pub async fn due_retries(&self, now_us: i64) -> Result<Vec<DueRetry>>;
        /// Move a next attempt's time from `due_us` to `until_us`, when it is
        /// still `due_us`: true for the one node that claims it. The attempt's
        /// `RunCreated` removes it; until then the later time is a lease.
        pub async fn claim_retry(&self, run_id: &str, due_us: i64, until_us: i64) -> Result<bool>;
        /// When the next attempt after run `run_id` is due, if one waits.
        pub async fn retry_due(&self, run_id: &str) -> Result<Option<i64>>;
        /// Forget the next attempt after run `run_id`; whether one waited.
        pub async fn drop_retry(&self, run_id: &str) -> Result<bool>;
        /// Ask for a place under a concurrency limit (the first call puts the
        /// run in line): true once it holds one. Ask again when a place may
        /// have freed; `leave_slot` when the run ends or stops waiting.
        pub async fn enter_slot(&self, claim: SlotClaim) -> Result<bool>;
        pub async fn leave_slot(&self, run_id: &str) -> Result<()>;
        /// Give back the places of runs that have ended (a process died
        /// with them in hand); how many.
        pub async fn sweep_slots(&self) -> Result<u64>;

        pub async fn kv_get(&self, flow: &str, key: &str) -> Result<Option<Value>>;
        /// Set a key, unless the flow would then hold more than `limit` bytes
        /// of keys and values (a write that shrinks what it holds always goes).
        pub async fn kv_set(&self, flow: &str, key: &str, value: &Value, limit: u64) -> Result<Result<(), KvFull>>;
        /// Returns whether the key was there.
        pub async fn kv_delete(&self, flow: &str, key: &str) -> Result<bool>;
        /// Bytes of keys and values a flow holds in `kv`.
        pub async fn kv_bytes(&self, flow: &str) -> Result<u64>;
        /// Keys of a flow starting with `prefix`, in order.
        pub async fn kv_keys(&self, flow: &str, prefix: &str, limit: u32) -> Result<Vec<String>>;
    }
}

/// The store's tests, each on both backends: a SQLite file and a fresh
/// database on the tests' PostgreSQL cluster.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::Quotas;
    use crate::trace::{LogStream, SpanKind, Status};
    use serde_json::{Map, json};

    struct Opened {
        backend: &'static str,
        store: Arc<Store>,
        _dir: Option<tempfile::TempDir>,
    }

    async fn both() -> Vec<Opened> {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = Store::open(&Database::Sqlite(dir.path().join("db"))).await.unwrap();
        let postgres = Store::open(&Database::Postgres(crate::throwaway_postgres::fresh_database())).await.unwrap();
        vec![
            Opened { backend: "sqlite", store: Arc::new(sqlite), _dir: Some(dir) },
            Opened { backend: "postgres", store: Arc::new(postgres), _dir: None },
        ]
    }

    fn run(run_id: &str) -> RunRecord {
        RunRecord {
            run_id: run_id.into(),
            flow: "f".into(),
            version: None,
            source_sha256: sha256_hex("source"),
            status: Status::Queued,
            input: json!({"b": 1, "a": [true, null]}),
            output: None,
            error: None,
            usage: None,
            quotas: Quotas::default(),
            created_us: 1,
            start_us: None,
            end_us: None,
            last_seq: 0,
            node: Some("n1".into()),
            trigger: Trigger::Webhook { hook_id: "h1".into() },
            attempt: 1,
            first_run_id: run_id.into(),
            replay_of: None,
            durable: false,
            resumes: 0,
            workspace: "acme".into(),
        }
    }

    fn span(run_id: &str, span_id: u64, status: Status) -> Span {
        Span {
            run_id: run_id.into(),
            span_id,
            parent_id: (span_id > 1).then_some(1),
            kind: if span_id == 1 { SpanKind::Flow } else { SpanKind::Step },
            name: format!("step {span_id}"),
            status,
            start_us: 1,
            end_us: (status != Status::Running).then_some(2),
            attrs: Map::from_iter([("i".to_string(), json!(span_id))]),
            error: None,
            line: Some(3),
        }
    }

    fn log(run_id: &str, seq: u64, text: &str) -> LogLine {
        LogLine { run_id: run_id.into(), span_id: 1, seq, ts_us: 5, stream: LogStream::Stdout, text: text.into() }
    }

    fn flow_info(name: &str, description: &str) -> FlowInfo {
        serde_json::from_value(json!({
            "name": name, "description": description, "doc": null, "inputs": {}, "services": [], "line": 1,
            "steps": ["fetch"]
        }))
        .unwrap()
    }

    /// A run written as the scheduler writes one, spans short and long,
    /// read back alike from both databases.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_with_its_spans_and_logs_reads_back_the_same_from_either_database() {
        let mut seen = Vec::new();
        for Opened { backend, store, .. } in both().await {
            store.write(Write::RunCreated { launch: None, run: Box::new(run("r1")), source: Arc::from("source") });
            store.write(Write::RunStarted { run_id: "r1".into(), start_us: 2 });
            store.write(Write::SpanStarted { span: span("r1", 1, Status::Running), seq: 1, publish: None });
            store.write(Write::SpanStarted { span: span("r1", 2, Status::Running), seq: 2, publish: None });
            store.flush().await.unwrap();
            // Span 2 ends in a later batch than it started; span 3 in the same.
            store.write(Write::Log { line: log("r1", 3, "hello"), publish: None });
            store.write(Write::SpanEnded { span: span("r1", 2, Status::Ok), seq: 4, publish: None });
            store.write(Write::SpanStarted { span: span("r1", 3, Status::Running), seq: 5, publish: None });
            store.write(Write::SpanEnded { span: span("r1", 3, Status::Failed), seq: 6, publish: None });
            store.write(Write::SpanEnded { span: span("r1", 1, Status::Ok), seq: 7, publish: None });
            let mut finished = run("r1");
            (finished.status, finished.output, finished.start_us, finished.end_us, finished.last_seq) =
                (Status::Ok, Some(json!({"z": 1, "y": 2})), Some(2), Some(9), 8);
            let (stored, committed) = tokio::sync::oneshot::channel();
            store.write(Write::RunFinished { run: Box::new(finished.clone()), stored: Some(stored), retry: None });
            committed.await.unwrap().unwrap();

            let read = store.run("r1").await.unwrap().unwrap();
            assert_eq!(read, finished, "{backend}");
            assert_eq!(serde_json::to_string(&read.output).unwrap(), r#"{"z":1,"y":2}"#, "{backend}: key order kept");
            let spans = store.spans("r1").await.unwrap();
            let statuses: Vec<Status> = spans.iter().map(|s| s.status).collect();
            assert_eq!(statuses, [Status::Ok, Status::Ok, Status::Failed], "{backend}");
            let (_, events) = store.replay_page("r1", 0, 100).await.unwrap().unwrap();
            let seqs: Vec<u64> = events.iter().map(RunEvent::seq).collect();
            assert_eq!(seqs, (1..=7).collect::<Vec<_>>(), "{backend}: every event, in order");
            let (_, page) = store.replay_page("r1", 3, 2).await.unwrap().unwrap();
            assert_eq!(page.iter().map(RunEvent::seq).collect::<Vec<_>>(), [4, 5], "{backend}: a page from a cursor");
            let listed = store.runs(RunFilter { flow: Some("f".into()), limit: 10, ..RunFilter::default() }).await;
            assert_eq!(listed.unwrap().len(), 1, "{backend}");
            assert_eq!(store.logs("r1", 0).await.unwrap()[0].text, "hello", "{backend}");
            seen.push((spans, events.len()));
            store.close().await;
        }
        assert_eq!(seen[0], seen[1], "both databases hold the same run");
    }

    /// Events are committed while a watcher pages through them: every page
    /// must go on from the cursor with no gap, or the watcher, which moves
    /// its cursor to the last event it got, would never see the ones missed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pages_read_while_a_run_writes_have_no_gap() {
        for Opened { backend, store, .. } in both().await {
            store.write(Write::RunCreated { launch: None, run: Box::new(run("live")), source: Arc::from("source") });
            store.flush().await.unwrap();
            let steps = 3000u64;
            let writer = {
                let store = store.clone();
                std::thread::spawn(move || {
                    let mut seq = 0;
                    for id in 2..2 + steps {
                        seq += 1;
                        store.write(Write::SpanStarted { span: span("live", id, Status::Running), seq, publish: None });
                        seq += 1;
                        store.write(Write::Log { line: log("live", seq, "x"), publish: None });
                        seq += 1;
                        store.write(Write::SpanEnded { span: span("live", id, Status::Ok), seq, publish: None });
                        if id % 7 == 0 {
                            std::thread::yield_now();
                        }
                    }
                })
            };
            let total = 3 * steps;
            let mut cursor = 0;
            while cursor < total {
                let (_, events) = store.replay_page("live", cursor, 64).await.unwrap().unwrap();
                for event in events {
                    assert_eq!(event.seq(), cursor + 1, "{backend}: a page goes on from the cursor with no gap");
                    cursor = event.seq();
                }
            }
            writer.join().unwrap();
            store.close().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_library_keeps_versions_owners_and_answers_searches_alike() {
        let mut answers = Vec::new();
        for Opened { backend, store, .. } in both().await {
            let rain = || vec![flow_info("rain_report", "Rainfall report for a city")];
            let saved = store.save_module("# v1\n".into(), rain()).await.unwrap();
            assert_eq!((saved[0].version, saved[0].created), (1, true), "{backend}");
            let again = store.save_module("# v1\n".into(), rain()).await.unwrap();
            assert_eq!((again[0].version, again[0].created), (1, false), "{backend}: unchanged source");
            store.save_module("# v2 about forecasts\n".into(), rain()).await.unwrap();
            store.save_module("# other\n".into(), vec![flow_info("wind", "Wind speeds")]).await.unwrap();
            let refused = store
                .save_module_as(
                    "# x\n".into(),
                    rain(),
                    Saver::Flow("agent".into(), SavedFlowsBound { per_flow: 100, library: 1000 }),
                )
                .await
                .unwrap();
            assert!(refused.is_err(), "{backend}: a flow may not replace the operator's flow");
            assert_eq!(store.flow_versions("rain_report").await.unwrap().len(), 2, "{backend}");
            assert_eq!(store.flow("rain_report", None).await.unwrap().unwrap().source, "# v2 about forecasts\n");
            assert_eq!(store.flow("rain_report", Some(1)).await.unwrap().unwrap().source, "# v1\n", "{backend}");
            assert!(store.is_latest_source("# v2 about forecasts\n").await.unwrap(), "{backend}");
            assert!(!store.is_latest_source("# v1\n").await.unwrap(), "{backend}");
            let names: Vec<String> = store.flows().await.unwrap().into_iter().map(|f| f.name).collect();
            assert_eq!(names, ["rain_report", "wind"], "{backend}");
            assert_eq!(store.flow_names(1).await.unwrap(), ["rain_report"], "{backend}");
            let search = |query: &'static str| {
                let store = store.clone();
                async move { store.search_flows(query, 10).await.unwrap().into_iter().map(|h| h.name).collect::<Vec<_>>() }
            };
            let found = (search("rainfall").await, search("forecast city").await, search("wind rain").await);
            assert_eq!(found.0, ["rain_report"], "{backend}: a stemmed word of the description");
            assert_eq!(found.1, ["rain_report"], "{backend}: source words of the latest version only");
            assert_eq!(search("the").await.len(), 0, "{backend}");
            answers.push(found);
            assert_eq!(store.delete_flow("wind").await.unwrap().versions_removed, 1, "{backend}");
            assert!(search("wind").await.is_empty(), "{backend}: a removed flow is not found");
            store.close().await;
        }
        assert_eq!(answers[0], answers[1], "search answers the same on both");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kv_services_secrets_and_hooks_behave_alike() {
        for Opened { backend, store, .. } in both().await {
            assert_eq!(store.kv_set("f", "a%", &json!("été"), 20).await.unwrap(), Ok(()), "{backend}");
            assert_eq!(store.kv_bytes("f").await.unwrap(), 2 + 7, "{backend}: bytes of UTF-8");
            let full = store.kv_set("f", "b", &json!("0123456789abc"), 20).await.unwrap();
            assert_eq!(full, Err(KvFull { held: 9, wanted: 16, limit: 20 }), "{backend}");
            store.kv_set("f", "ab", &json!(1), 20).await.unwrap().unwrap();
            assert_eq!(store.kv_keys("f", "a%", 10).await.unwrap(), ["a%"], "{backend}: % is not a wildcard");
            assert_eq!(store.kv_keys("f", "a", 10).await.unwrap(), ["a%", "ab"], "{backend}");
            assert_eq!(store.kv_get("f", "a%").await.unwrap(), Some(json!("été")), "{backend}");
            assert!(store.kv_delete("f", "a%").await.unwrap(), "{backend}");
            assert_eq!(store.kv_bytes("f").await.unwrap(), 3, "{backend}");
            let service = StoredService {
                name: "weather".into(),
                url: "http://127.0.0.1:1".into(),
                document: json!({"methods": []}),
                timeout_ms: 10,
                created_us: 1,
                headers: [("Authorization".to_string(), "Bearer {{secret:TOKEN}}".to_string())].into(),
            };
            store.save_service(service.clone()).await.unwrap();
            assert_eq!(store.service("weather").await.unwrap(), Some(service), "{backend}");
            assert!(store.remove_service("weather").await.unwrap(), "{backend}");
            assert!(store.services().await.unwrap().is_empty(), "{backend}");
            let secret = StoredSecret {
                name: "TOKEN".into(),
                key_id: "k1".into(),
                nonce: vec![0, 1, 255],
                sealed: vec![9; 40],
                created_us: 1,
                updated_us: 1,
            };
            store.save_secret(secret.clone()).await.unwrap();
            let replaced = StoredSecret { sealed: vec![8; 41], updated_us: 2, created_us: 5, ..secret.clone() };
            store.save_secret(replaced.clone()).await.unwrap();
            let kept = StoredSecret { created_us: 1, ..replaced };
            assert_eq!(store.secret("TOKEN").await.unwrap(), Some(kept.clone()), "{backend}: created_us kept");
            assert_eq!(store.secrets().await.unwrap(), [kept], "{backend}");
            assert!(store.remove_secret("TOKEN").await.unwrap(), "{backend}");
            assert!(!store.remove_secret("TOKEN").await.unwrap(), "{backend}");
            assert_eq!(store.secret("TOKEN").await.unwrap(), None, "{backend}");
            let hook = StoredHook { hook_id: "abc".into(), flow: "f".into(), created_us: 1 };
            assert!(!store.save_hook(hook.clone()).await.unwrap(), "{backend}: no hook for a flow not stored");
            store.save_module("# f\n".into(), vec![flow_info("f", "d")]).await.unwrap();
            assert!(store.save_hook(hook.clone()).await.unwrap(), "{backend}");
            assert_eq!(store.hook("abc").await.unwrap(), Some(hook.clone()), "{backend}");
            assert_eq!(store.hooks("f").await.unwrap(), [hook], "{backend}");
            assert!(store.hooks("g").await.unwrap().is_empty(), "{backend}");
            assert!(store.remove_hook("abc").await.unwrap(), "{backend}");
            assert_eq!(store.hook("abc").await.unwrap(), None, "{backend}");
            store.close().await;
        }
    }

    /// A statement written once runs alike on both: its values take the
    /// column's type (INTEGER, BIGINT, TEXT), its rows read the same, and
    /// a transaction whose body fails leaves nothing behind.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn statements_written_once_run_alike_on_both() {
        use sql::query;
        for Opened { backend, store, .. } in both().await {
            let insert = |key: &str, value: &str| {
                query!("INSERT INTO kv (flow, key, value, updated_us) VALUES ($1, $2, $3, $4)", "f", key, value, 7_i64)
            };
            assert_eq!(store.execute(insert("a", "x\0y")).await.unwrap(), 1, "{backend}");
            let failed = store
                .transaction(move |tx| {
                    tx.execute(&insert("b", "1"))?;
                    tx.execute(&insert("a", "duplicate"))
                })
                .await;
            assert!(failed.is_err(), "{backend}: a duplicate key fails the transaction");
            let rows =
                store.rows(query!("SELECT key, value, updated_us FROM kv WHERE flow = $1 ORDER BY key", "f")).await;
            let rows = rows.unwrap();
            assert_eq!(rows.len(), 1, "{backend}: the failed transaction's first insert was rolled back");
            assert_eq!(rows[0].get::<String>(0).unwrap(), "a");
            let value: String = rows[0].get(1).unwrap();
            let kept = if backend == "postgres" { "x\u{FFFD}y" } else { "x\0y" };
            assert_eq!(value, kept, "{backend}: PostgreSQL's text holds no NUL");
            assert_eq!(rows[0].get::<u64>(2).unwrap(), 7, "{backend}");
            let any = store.row(query!("SELECT COUNT(*) > 0, COUNT(*) FROM kv WHERE key = $1", "a")).await.unwrap();
            let any = any.unwrap();
            assert!(any.get::<bool>(0).unwrap(), "{backend}: a comparison reads as a boolean");
            assert_eq!(any.get::<i64>(1).unwrap(), 1, "{backend}");
            // `attempt` is an INTEGER: a value is sent as one, and one too
            // large for it is refused rather than cut.
            let attempt = |value: i64| query!("UPDATE runs SET attempt = $1 WHERE run_id = $2", value, "none");
            assert_eq!(store.execute(attempt(2)).await.unwrap(), 0, "{backend}");
            if backend == "postgres" {
                assert!(store.execute(attempt(i64::MAX)).await.is_err(), "{backend}");
            }
            store.close().await;
        }
    }

    /// The tables and columns a migrated database has, each column with
    /// the kind of value it holds and whether it may be null.
    async fn schema_of(backend: &str, store: &Store) -> std::collections::BTreeMap<String, Vec<String>> {
        use sql::query;
        let columns = if backend == "sqlite" {
            query!(
                "SELECT m.name, c.name, lower(c.type), c.\"notnull\" = 1 OR c.pk > 0
                 FROM sqlite_master m, pragma_table_info(m.name) c
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.sql NOT LIKE 'CREATE VIRTUAL%'
                   AND m.name NOT LIKE '%fts%'
                 ORDER BY m.name, c.cid"
            )
        } else {
            query!(
                "SELECT table_name::text, column_name::text, data_type::text, is_nullable = 'NO'
                 FROM information_schema.columns WHERE table_schema = current_schema()
                 ORDER BY table_name, ordinal_position"
            )
        };
        let mut tables = std::collections::BTreeMap::<String, Vec<String>>::new();
        for row in store.rows(columns).await.unwrap() {
            let declared: String = row.get(2).unwrap();
            let kind = match declared.as_str() {
                "integer" | "bigint" | "smallint" => "integer",
                "boolean" => "boolean",
                "text" | "character varying" => "text",
                "blob" | "bytea" => "bytes",
                "real" | "double precision" => "real",
                other => other,
            };
            let null = if row.get::<bool>(3).unwrap() { "not null" } else { "null" };
            tables
                .entry(row.get(0).unwrap())
                .or_default()
                .push(format!("{} {kind} {null}", row.get::<String>(1).unwrap()));
        }
        tables
    }

    /// Both databases migrated to the newest schema hold the same tables
    /// with the same columns, but for what only one engine needs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn both_databases_migrate_to_the_same_schema() {
        let mut schemas = Vec::new();
        for Opened { backend, store, .. } in both().await {
            schemas.push(schema_of(backend, &store).await);
            store.close().await;
        }
        let [sqlite, postgres] = &mut schemas[..] else { unreachable!() };
        // What only one engine has, and why. A table added to one schema
        // and not the other fails here until it is added to both, or here.
        let only = |schema: &mut std::collections::BTreeMap<String, Vec<String>>, tables: &[&str]| {
            let mut found: Vec<String> =
                tables.iter().filter_map(|table| schema.remove(*table).map(|_| table.to_string())).collect();
            found.sort();
            found
        };
        // SQLite keeps its schema version in `PRAGMA user_version`, and
        // its search index in tables of its own (FTS5 for words, postings
        // for ranking); PostgreSQL has a `tsvector` per flow, and the
        // nodes' leases.
        let sqlite_only = ["flow_names", "search_flows", "search_library", "search_postings", "search_terms"];
        let postgres_only = ["flow_search", "nodes", "schema_version"];
        assert_eq!(only(sqlite, &sqlite_only), sqlite_only.map(String::from).to_vec());
        assert_eq!(only(postgres, &postgres_only), postgres_only.map(String::from).to_vec());
        // Columns are named in every query, so their order is free.
        let text = |schema: &std::collections::BTreeMap<String, Vec<String>>| {
            let tables = schema.iter().map(|(table, columns)| {
                let mut columns = columns.clone();
                columns.sort();
                format!("{table}: {}", columns.join(", "))
            });
            tables.collect::<Vec<_>>().join("\n")
        };
        assert_eq!(text(sqlite), text(postgres));
    }

    /// A schedule's tick is claimed once: the second claim of the same due
    /// time (another node's, or a later pass's) changes nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_schedules_tick_is_claimed_once() {
        for Opened { backend, store, .. } in both().await {
            let schedule = StoredSchedule {
                schedule_id: "s1".into(),
                flow: "f".into(),
                cron: "* * * * *".into(),
                input: json!({"a": 1}),
                timezone: "Europe/Brussels".into(),
                next_us: 60_000_000,
                created_us: 1,
            };
            assert!(!store.save_schedule(schedule.clone()).await.unwrap(), "{backend}: no schedule of no flow");
            store.save_module("# f\n".into(), vec![flow_info("f", "d")]).await.unwrap();
            assert!(store.save_schedule(schedule.clone()).await.unwrap(), "{backend}");
            assert!(store.due_schedules(59_999_999).await.unwrap().is_empty(), "{backend}: not yet due");
            assert_eq!(store.due_schedules(60_000_000).await.unwrap(), [schedule], "{backend}");
            assert!(store.claim_tick("s1", 60_000_000, 120_000_000).await.unwrap(), "{backend}");
            assert!(!store.claim_tick("s1", 60_000_000, 120_000_000).await.unwrap(), "{backend}: claimed once");
            assert_eq!(store.schedules().await.unwrap()[0].next_us, 120_000_000, "{backend}");
            assert!(store.remove_schedule("s1").await.unwrap(), "{backend}");
            assert!(store.schedules().await.unwrap().is_empty(), "{backend}");
            store.close().await;
        }
    }

    /// A flow adds new flow names through `flows.save` only within its
    /// bound and the library's; replacing its own flows adds none.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn flows_store_new_flows_only_within_their_bound_and_the_librarys() {
        for Opened { backend, store, .. } in both().await {
            let bound = SavedFlowsBound { per_flow: 3, library: 4 };
            let save = |saver: &str, names: &[&str], source: &str| {
                let flows = names.iter().map(|name| flow_info(name, "d")).collect();
                store.save_module_as(source.to_string(), flows, Saver::Flow(saver.to_string(), bound))
            };
            assert!(save("a", &["a1", "a2"], "# 1\n").await.unwrap().is_ok(), "{backend}");
            let refused = save("a", &["a3", "a4"], "# 2\n").await.unwrap().unwrap_err();
            let expected = SaveRefused::Full { saver: "a".into(), held: 2, adding: 2, limit: 3, whole_library: false };
            assert_eq!(refused, expected, "{backend}");
            assert!(refused.to_string().contains("one flow may store at most 3"), "{backend}: {refused}");
            assert!(store.flow("a3", None).await.unwrap().is_none(), "{backend}: nothing of it was stored");
            assert!(save("a", &["a1", "a2", "a3"], "# 3\n").await.unwrap().is_ok(), "{backend}: one new, two its own");
            assert!(save("a", &["a1", "a2", "a3"], "# 4\n").await.unwrap().is_ok(), "{backend}: new versions add none");
            assert!(save("b", &["b1"], "# 5\n").await.unwrap().is_ok(), "{backend}");
            let refused = save("b", &["b2"], "# 6\n").await.unwrap().unwrap_err();
            let expected = SaveRefused::Full { saver: "b".into(), held: 4, adding: 1, limit: 4, whole_library: true };
            assert_eq!(refused, expected, "{backend}");
            assert!(refused.to_string().contains("--max-saved-flows"), "{backend}: {refused}");
            store.save_module("# op\n".into(), vec![flow_info("operator", "d")]).await.unwrap();
            assert_eq!(store.delete_flow("a3").await.unwrap().versions_removed, 2, "{backend}");
            assert!(save("b", &["b2"], "# 6\n").await.unwrap().is_ok(), "{backend}: room once one is removed");
            store.close().await;
        }
    }

    /// Removing a flow removes its webhooks and schedules in the same
    /// transaction, and says how many; another flow's stay.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn removing_a_flow_removes_its_hooks_and_schedules_with_it() {
        for Opened { backend, store, .. } in both().await {
            store.save_module("# m\n".into(), vec![flow_info("gone", "d"), flow_info("kept", "d")]).await.unwrap();
            let hook = |id: &str, flow: &str| StoredHook { hook_id: id.into(), flow: flow.into(), created_us: 1 };
            let schedule = |id: &str, flow: &str| StoredSchedule {
                schedule_id: id.into(),
                flow: flow.into(),
                cron: "* * * * *".into(),
                input: json!({}),
                timezone: "UTC".into(),
                next_us: 60_000_000,
                created_us: 1,
            };
            for (id, flow) in [("h1", "gone"), ("h2", "gone"), ("h3", "kept")] {
                assert!(store.save_hook(hook(id, flow)).await.unwrap(), "{backend}");
            }
            for (id, flow) in [("s1", "gone"), ("s2", "kept")] {
                assert!(store.save_schedule(schedule(id, flow)).await.unwrap(), "{backend}");
            }
            let removed = store.delete_flow("gone").await.unwrap();
            let expected = FlowRemoved { versions_removed: 1, hooks_removed: 2, schedules_removed: 1 };
            assert_eq!(removed, expected, "{backend}");
            assert_eq!(store.hook("h1").await.unwrap(), None, "{backend}");
            assert!(store.hooks("gone").await.unwrap().is_empty(), "{backend}");
            assert_eq!(store.hooks("kept").await.unwrap(), [hook("h3", "kept")], "{backend}");
            let left: Vec<String> = store.schedules().await.unwrap().into_iter().map(|s| s.schedule_id).collect();
            assert_eq!(left, ["s2"], "{backend}");
            // The name stored again is a new flow: nothing made for the old one starts it.
            store.save_module("# m2\n".into(), vec![flow_info("gone", "d")]).await.unwrap();
            assert_eq!(store.hook("h1").await.unwrap(), None, "{backend}");
            assert!(store.due_schedules(i64::MAX).await.unwrap().iter().all(|s| s.flow == "kept"), "{backend}");
            assert_eq!(store.delete_flow("nothing").await.unwrap(), FlowRemoved::default(), "{backend}");
            store.close().await;
        }
    }

    /// Retention removes finished runs past the newest N, or that ended
    /// before a time, with their spans and logs, a batch at a time; a
    /// running run stays, however old.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pruning_removes_old_finished_runs_with_their_spans_and_logs() {
        for Opened { backend, store, .. } in both().await {
            let mut running = run("r0");
            (running.status, running.created_us) = (Status::Running, 0);
            store.write(Write::RunCreated { launch: None, run: Box::new(running), source: Arc::from("source") });
            for i in 1..=5 {
                let id = format!("r{i}");
                let mut created = run(&id);
                created.created_us = i;
                store.write(Write::RunCreated {
                    launch: None,
                    run: Box::new(created.clone()),
                    source: Arc::from("source"),
                });
                store.write(Write::SpanEnded { span: span(&id, 1, Status::Ok), seq: 1, publish: None });
                store.write(Write::Log { line: log(&id, 2, "x"), publish: None });
                (created.status, created.end_us, created.last_seq) = (Status::Ok, Some(10 * i), 3);
                store.write(Write::RunFinished { run: Box::new(created), stored: None, retry: None });
            }
            store.flush().await.unwrap();
            let keep_two = Pruning { keep_newest: Some(2), ended_before_us: None, batch: 2 };
            assert_eq!(store.prune_runs(keep_two).await.unwrap(), 2, "{backend}: a batch at most");
            assert_eq!(store.prune_runs(keep_two).await.unwrap(), 1, "{backend}");
            assert_eq!(store.prune_runs(keep_two).await.unwrap(), 0, "{backend}");
            let ids = |runs: Vec<RunRecord>| runs.into_iter().map(|r| r.run_id).collect::<Vec<_>>();
            let left = ids(store.runs(RunFilter { limit: 10, ..RunFilter::default() }).await.unwrap());
            assert_eq!(left, ["r5", "r4", "r0"], "{backend}: the newest two, and the running one");
            assert!(store.spans("r1").await.unwrap().is_empty(), "{backend}");
            assert!(store.logs("r1", 0).await.unwrap().is_empty(), "{backend}");
            assert!(store.run("r1").await.unwrap().is_none(), "{backend}");
            let ended_early = Pruning { keep_newest: None, ended_before_us: Some(45), batch: 10 };
            assert_eq!(store.prune_runs(ended_early).await.unwrap(), 1, "{backend}: r4 ended at 40");
            assert_eq!(store.spans("r5").await.unwrap().len(), 1, "{backend}");
            store.close().await;
        }
    }

    /// PostgreSQL's text holds no NUL; a Python string may. The batch
    /// carrying one is written (with U+FFFD in its place), not lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn text_holding_nul_is_stored_on_either_database() {
        for Opened { backend, store, .. } in both().await {
            store.write(Write::RunCreated { launch: None, run: Box::new(run("nul")), source: Arc::from("source\0") });
            let mut named = span("nul", 1, Status::Ok);
            named.name = "a\0b".into();
            store.write(Write::SpanEnded { span: named, seq: 2, publish: None });
            store.write(Write::Log { line: log("nul", 1, "x\0y"), publish: None });
            store.flush().await.unwrap();
            let name = store.spans("nul").await.unwrap()[0].name.clone();
            assert!(name == "a\0b" || name == "a\u{FFFD}b", "{backend}: {name:?}");
            assert_eq!(store.logs("nul", 0).await.unwrap().len(), 1, "{backend}");
            store.close().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nodes_starting_at_once_on_an_empty_database_migrate_it_once() {
        let url = crate::throwaway_postgres::fresh_database();
        let database = Database::Postgres(url);
        let opened = futures_util::future::join_all((0..4).map(|_| Store::open(&database))).await;
        for store in opened {
            let store = store.expect("every node starts");
            store.save_module("# m\n".into(), vec![flow_info("m", "d")]).await.unwrap();
            store.close().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nodes_saving_the_same_flow_at_once_number_its_versions_in_turn() {
        let url = crate::throwaway_postgres::fresh_database();
        let a = Store::open(&Database::Postgres(url.clone())).await.unwrap();
        let b = Store::open(&Database::Postgres(url)).await.unwrap();
        let saves = (0..10).map(|i| {
            let store = if i % 2 == 0 { &a } else { &b };
            store.save_module(format!("# {i}\n"), vec![flow_info("same", "d")])
        });
        for saved in futures_util::future::join_all(saves).await {
            saved.expect("no save fails on a version number another node took");
        }
        let versions: Vec<u32> = a.flow_versions("same").await.unwrap().iter().map(|v| v.version).collect();
        assert_eq!(versions, (1..=10).collect::<Vec<_>>());
    }

    /// A node's lease: a second live process cannot take its name; once the
    /// lease runs out another node ends its runs as a restart would.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_whose_lease_runs_out_has_its_runs_ended_by_another() {
        let url = crate::throwaway_postgres::fresh_database();
        let store = Store::open(&Database::Postgres(url.clone())).await.unwrap();
        let pg = store.postgres().unwrap().clone();
        // Another node sweeps: a node never sweeps itself.
        let other = Store::open(&Database::Postgres(url)).await.unwrap();
        let sweeper = other.postgres().unwrap().clone();
        sweeper.take_lease("b", std::time::Duration::from_secs(60)).await.unwrap();
        pg.take_lease("a", std::time::Duration::from_millis(300)).await.unwrap();
        let refused = pg.take_lease("a", std::time::Duration::from_millis(300)).await;
        assert!(refused.unwrap_err().to_string().contains("held by a running process"));
        let mut held = run("held");
        held.node = Some("a".into());
        store.write(Write::RunCreated { launch: None, run: Box::new(held), source: Arc::from("source") });
        store.write(Write::RunStarted { run_id: "held".into(), start_us: 2 });
        store.write(Write::SpanStarted { span: span("held", 1, Status::Running), seq: 1, publish: None });
        store.flush().await.unwrap();
        assert!(sweeper.sweep_expired().await.unwrap().nodes.is_empty(), "a live lease is not swept");
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        assert!(
            pg.sweep_expired().await.unwrap().nodes.is_empty(),
            "a node paused past its lease does not sweep itself"
        );
        assert_eq!(sweeper.sweep_expired().await.unwrap().nodes, [("a".to_string(), 1)]);
        assert!(sweeper.sweep_expired().await.unwrap().nodes.is_empty(), "a node is swept once");
        let ended = store.run("held").await.unwrap().unwrap();
        assert_eq!((ended.status, ended.last_seq), (Status::Interrupted, 3), "one stored event, one closing, the end");
        assert_eq!(store.spans("held").await.unwrap()[0].status, Status::Interrupted);
        let (_, events) = store.replay_page("held", 0, 10).await.unwrap().unwrap();
        assert_eq!(events.iter().map(RunEvent::seq).collect::<Vec<_>>(), [1]);
        let (_, closing) = store.replay_page("held", 1, 10).await.unwrap().unwrap();
        assert_eq!(closing.iter().map(RunEvent::seq).collect::<Vec<_>>(), [2], "the closing event follows");

        // The node was alive after all (slow to renew): what it writes of the
        // run later does not undo what watchers were told.
        store.write(Write::SpanEnded { span: span("held", 1, Status::Ok), seq: 2, publish: None });
        let mut late = run("held");
        (late.status, late.last_seq, late.node) = (Status::Ok, 3, Some("a".into()));
        store.write(Write::RunFinished { run: Box::new(late), stored: None, retry: None });
        store.flush().await.unwrap();
        assert_eq!(store.run("held").await.unwrap().unwrap().status, Status::Interrupted);
        assert_eq!(store.spans("held").await.unwrap()[0].status, Status::Interrupted);

        // Holding its name again ends nothing it runs from then on; giving
        // the name back ends what it left unfinished.
        pg.retake_lease("a", std::time::Duration::from_secs(60)).await.unwrap();
        let mut later = run("later");
        later.node = Some("a".into());
        store.write(Write::RunCreated { launch: None, run: Box::new(later), source: Arc::from("source") });
        store.write(Write::RunStarted { run_id: "later".into(), start_us: 2 });
        store.flush().await.unwrap();
        pg.retake_lease("a", std::time::Duration::from_secs(60)).await.unwrap();
        assert_eq!(store.run("later").await.unwrap().unwrap().status, Status::Running);
        pg.drop_lease("a").await.unwrap();
        assert_eq!(store.run("later").await.unwrap().unwrap().status, Status::Interrupted);

        // A run of a node with no lease at all (its sweeper died half-way,
        // say) is ended by the next sweep.
        let mut orphan = run("orphan");
        orphan.node = Some("ghost".into());
        store.write(Write::RunCreated { launch: None, run: Box::new(orphan), source: Arc::from("source") });
        store.flush().await.unwrap();
        sweeper.sweep_expired().await.unwrap();
        assert_eq!(store.run("orphan").await.unwrap().unwrap().status, Status::Interrupted);
        store.close().await;
        other.close().await;
    }
}
