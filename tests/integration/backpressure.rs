//! Back-pressure from the store to the guest: a run that makes events
//! faster than the store commits them waits for the store, so the writer
//! is never more than a bounded number of a run's events behind and what
//! is queued for it does not grow with the run.

use super::server_support::{Server, eventually};
use crate::on_both_backends;
use serde_json::json;
use std::time::Duration;

/// Spans a run may be ahead of the store: a span is two events.
const SPANS_AHEAD: u64 = hero_logic::sandbox::MAX_EVENTS_AHEAD / 2;

/// Empty steps as fast as the guest can open them, after a pause that lets
/// the test stall the store first.
const MANY_SPANS: &str = r#"import time
from hero_logic import flow

@flow(inputs={"count": "integer"})
def many_spans(count):
    time.sleep(0.5)
    for i in range(count):
        with flow.step("s"):
            pass
    return count
"#;

/// Holds the store's writes off while it lives: an exclusive transaction
/// on the SQLite file, or an exclusive lock on PostgreSQL's `spans` table.
enum StoreStall {
    Sqlite(rusqlite::Connection),
    Postgres { runtime: tokio::runtime::Runtime, client: tokio_postgres::Client },
}

impl StoreStall {
    fn take(server: &Server) -> StoreStall {
        match &server.database {
            None => {
                let connection = rusqlite::Connection::open(server.data_dir.join("hero_logic.db")).unwrap();
                connection.execute_batch("BEGIN EXCLUSIVE").unwrap();
                StoreStall::Sqlite(connection)
            }
            Some(url) => {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                let client = runtime.block_on(async {
                    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
                    tokio::spawn(connection);
                    client.batch_execute("BEGIN; LOCK TABLE spans IN EXCLUSIVE MODE").await.unwrap();
                    client
                });
                StoreStall::Postgres { runtime, client }
            }
        }
    }

    fn release(self) {
        match self {
            StoreStall::Sqlite(connection) => connection.execute_batch("COMMIT").unwrap(),
            StoreStall::Postgres { runtime, client } => runtime.block_on(client.batch_execute("COMMIT")).unwrap(),
        }
    }
}

/// Spans the server has recorded so far (made by runs, stored or not).
fn spans_recorded(server: &Server) -> u64 {
    let metrics = server.get("/metrics").text();
    let line = metrics.lines().find(|l| l.starts_with("hero_logic_spans_total ")).expect("the spans counter");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

on_both_backends! {
    #[test]
    fn a_run_faster_than_a_stalled_store_waits_for_it_then_ends_with_every_span() {
        let server = Server::start(&[]);
        let count = 9000;
        let run_id = server.start_run(json!({"source": MANY_SPANS, "input": {"count": count}}));
        let stall = StoreStall::take(&server);
        let before = spans_recorded(&server);
        std::thread::sleep(Duration::from_secs(3));
        let during = spans_recorded(&server);
        assert!(
            during - before <= SPANS_AHEAD + 2,
            "{} spans were recorded while the store could commit none",
            during - before
        );
        assert!(during - before >= SPANS_AHEAD / 2, "the run went on until it was well ahead of the store");
        let status = server.run_status(run_id.as_str());
        assert!(status == "running" || status == "queued", "the run waits; it does not end: {status}");
        stall.release();

        eventually("the run to end", || !["queued", "running"].contains(&server.run_status(run_id.as_str()).as_str()));
        assert_eq!(server.run_status(run_id.as_str()), "ok");
        let spans = server.spans(run_id.as_str());
        assert_eq!(spans.len(), count + 1, "every step and the flow's own span are stored");
        assert!(spans.iter().all(|s| s["status"] == "ok"));
    }
}
