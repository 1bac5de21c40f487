//! The database going away for a moment (a PostgreSQL restart, an upgrade,
//! a network blip): nodes ride it out. Runs in flight go on or wait, durable
//! runs continue once their journal is stored, nothing acknowledged is
//! lost, what a watcher saw is what is stored, no run is left `running`,
//! cancel works; and while it is away, requests are answered 503 with
//! `Retry-After`, `/readyz` says not ready and `/metrics` counts it. Each
//! test has a PostgreSQL server of its own, which it restarts.

use super::server_support::{Server, eventually, request};
use super::services::{Killed, spawn_service};
use hero_logic::throwaway_postgres::OwnServer;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const LEDGER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/services/ledger.py");

/// Durable: one ledger call per step, a pause after each.
const PAYOUTS: &str = r#"
import time

from hero_logic import flow, services


@flow(name="payouts", services=["ledger"], durable=True, inputs={"calls": "integer", "pause": "number"})
def payouts(calls, pause):
    total = 0
    for i in range(calls):
        with flow.step(f"add {i + 1}") as s:
            total = services.ledger.add(amount=i + 1)["total"]
            s.set(total=total)
        time.sleep(pause)
    return calls
"#;

/// Not durable: steps with a log line each and a pause between them.
const SLEEPER: &str = r#"
import time

from hero_logic import flow


@flow(name="sleeper", inputs={"steps": "integer", "pause": "number"})
def sleeper(steps, pause):
    for i in range(steps):
        with flow.step(f"step {i}"):
            print(f"line {i}")
        time.sleep(pause)
    return steps
"#;

/// Not durable: many short spans, as fast as the store takes them.
const BUSY: &str = r#"
from hero_logic import flow


@flow(name="busy", inputs={"n": "integer"})
def busy(n):
    for i in range(n):
        with flow.step(f"s{i}"):
            pass
    return n
"#;

/// Fails each time, after a pause: a chain of three attempts.
const FLAKY: &str = r#"
import time

from hero_logic import flow


@flow(name="flaky", retries=2, retry_delay=0.5, inputs={"pause": "number"})
def flaky(pause):
    time.sleep(pause)
    raise flow.Failed("not today")
"#;

/// What a schedule starts every second.
const TICK: &str = r#"
from hero_logic import flow


@flow(name="tick")
def tick():
    with flow.step("tock"):
        return 1
"#;

/// How many times the ledger received each call, by Idempotency-Key.
fn received(url: &str) -> HashMap<String, u64> {
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "calls", "params": {}});
    let answer = request(addr, "POST", "/", &[("Content-Type", "application/json")], body.to_string().as_bytes());
    serde_json::from_value(answer.json()["result"]["by_key"].clone()).unwrap()
}

/// Wait for `condition` (checked every 20 ms) for up to `limit`.
fn within(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A run's record, or None when the node cannot read it now.
fn run_of(server: &Server, run_id: &str) -> Option<Value> {
    let response = server.get(&format!("/api/runs/{run_id}"));
    (response.status == 200).then(|| response.json())
}

/// What a watcher of a run saw: the status of each span end, by span id.
type SeenEnds = HashMap<u64, String>;

fn watch(server: &Server, run_id: &str) -> std::thread::JoinHandle<SeenEnds> {
    let mut events = server.events(run_id, 0);
    std::thread::spawn(move || {
        let mut ends = SeenEnds::new();
        while let Some(event) = events.next() {
            if event["type"] == "span_ended" {
                ends.insert(event["span_id"].as_u64().unwrap(), event["status"].as_str().unwrap().to_string());
            }
            if event["type"] == "run_finished" {
                break;
            }
        }
        ends
    })
}

/// Durable runs in flight during the restarts, and the calls each makes.
const DURABLE_RUNS: usize = 6;
const CALLS: usize = 40;

/// Every run of each kind, on `nodes` nodes sharing a database that is
/// restarted `restarts` times while they run (and stopped for a while
/// once, when a run is cancelled); afterwards everything acknowledged ended
/// as it would have without the outage.
fn ride_out_restarts(nodes: usize, restarts: usize) {
    let database = OwnServer::start();
    let url = database.fresh_database();
    let servers: Vec<Server> =
        (0..nodes).map(|i| Server::start_node(&url, &format!("node-{i}"), &["--node-lease", "3"])).collect();
    let (service, ledger) = spawn_service(LEDGER, &["--port", "0"], &[]);
    let _service = Killed(service);
    assert_eq!(servers[0].post_json("/api/services", &json!({"name": "ledger", "url": ledger})).status, 201);
    let on = |i: usize| &servers[i % nodes];

    let durable: Vec<(usize, String)> = (0..DURABLE_RUNS)
        .map(|i| (i, on(i).start_run(json!({"source": PAYOUTS, "input": {"calls": CALLS, "pause": 0.05}}))))
        .collect();
    let sleepers: Vec<(usize, String)> = (0..6)
        .map(|i| (i, on(i).start_run(json!({"source": SLEEPER, "input": {"steps": 40, "pause": 0.1}}))))
        .collect();
    let busy: Vec<(usize, String)> =
        (0..3).map(|i| (i, on(i).start_run(json!({"source": BUSY, "input": {"n": 3000}})))).collect();
    let to_cancel = on(1).start_run(json!({"source": SLEEPER, "input": {"steps": 2, "pause": 60}}));
    // Retries and a schedule's ticks in flight too.
    for flow in [FLAKY, TICK] {
        assert_eq!(servers[0].upload(flow).status, 201);
    }
    let chains: Vec<(usize, String)> =
        (0..2).map(|i| (i, on(i).start_run(json!({"flow": "flaky", "input": {"pause": 0.7}})))).collect();
    let schedule = servers[0].post_json("/api/schedules", &json!({"flow": "tick", "cron": "* * * * * *", "input": {}}));
    assert_eq!(schedule.status, 201, "{}", schedule.text());
    let schedule_id = schedule.json()["schedule_id"].as_str().unwrap().to_string();
    // Watchers on the node that runs each run.
    let watchers: Vec<(usize, String, _)> = [&durable[0], &durable[1], &sleepers[0], &busy[0]]
        .into_iter()
        .map(|(i, run_id)| (*i, run_id.clone(), watch(on(*i), run_id)))
        .collect();

    // Each restart once the durable runs have made progress since the last.
    for restart in 0..restarts {
        // Spread over the durable runs' calls, so each falls mid-way.
        let due = (restart + 1) * DURABLE_RUNS * CALLS / (restarts + 2);
        within(Duration::from_secs(60), "the durable runs to make progress", || received(&ledger).len() >= due);
        database.restart();
        if restart == 0 {
            // Stopped for a while: the run is cancelled with the database away.
            within(Duration::from_secs(30), "the run to cancel to be running", || {
                run_of(on(1), &to_cancel).is_some_and(|run| run["status"] == "running")
            });
            database.stop();
            let cancel = on(1).request("POST", &format!("/api/runs/{to_cancel}/cancel"), &[], b"");
            assert_eq!(cancel.status, 202, "{}", cancel.text());
            database.start_again();
        }
    }

    // Every run ends, as it would have.
    let all: Vec<&(usize, String)> = durable.iter().chain(&sleepers).chain(&busy).collect();
    within(Duration::from_secs(90), "every run to end", || {
        all.iter().all(|(i, run_id)| run_of(on(*i), run_id).is_some_and(|run| run["status"] != "running"))
    });
    for (i, run_id) in &all {
        let run = run_of(on(*i), run_id).unwrap();
        assert_eq!(run["status"], "ok", "{run}");
        let spans = on(*i).spans(run_id.as_str());
        assert!(spans.iter().all(|s| s["status"] == "ok" && s["end_us"].is_i64()), "{run_id}: {spans:#?}");
    }
    for (i, run_id) in &durable {
        let spans = on(*i).spans(run_id.as_str());
        assert_eq!(spans.iter().filter(|s| s["kind"] == "rpc").count(), CALLS, "each call once in the tree");
    }
    for (i, run_id) in &busy {
        assert_eq!(on(*i).spans(run_id.as_str()).len(), 3001, "every span stored");
    }
    // Each call made once; one repeat at most per run (the call in flight).
    let received = received(&ledger);
    for (_, run_id) in &durable {
        let of_run: Vec<u64> =
            received.iter().filter(|(key, _)| key.starts_with(&format!("{run_id}/"))).map(|(_, n)| *n).collect();
        assert_eq!(of_run.len(), CALLS, "one key per call: {received:?}");
        assert!(of_run.iter().filter(|n| **n > 1).count() <= 1 && of_run.iter().all(|n| *n <= 2), "{received:?}");
    }
    within(Duration::from_secs(30), "the cancelled run to end", || {
        run_of(on(1), &to_cancel).is_some_and(|run| run["status"] == "cancelled")
    });
    // Each retry chain made exactly its three attempts, each ended once.
    for (i, first) in &chains {
        within(Duration::from_secs(60), "the retry chain to end", || {
            let attempts = on(*i).get(&format!("/api/runs?first_run_id={first}")).json()["runs"].clone();
            attempts.as_array().is_some_and(|runs| runs.len() == 3 && runs.iter().all(|run| run["status"] == "failed"))
        });
        let attempts = on(*i).get(&format!("/api/runs?first_run_id={first}")).json()["runs"].clone();
        let mut numbers: Vec<u64> =
            attempts.as_array().unwrap().iter().map(|run| run["attempt"].as_u64().unwrap()).collect();
        numbers.sort();
        assert_eq!(numbers, [1, 2, 3], "{attempts}");
    }
    // The schedule stops; each of its ticks ran once, and every run ended.
    assert_eq!(servers[0].request("DELETE", &format!("/api/schedules/{schedule_id}"), &[], b"").status, 200);
    let unended = || -> Vec<Value> {
        let runs = servers[0].get("/api/runs?flow=tick&limit=500").json()["runs"].clone();
        let runs = runs.as_array().cloned().expect("the runs list");
        runs.into_iter().filter(|run| matches!(run["status"].as_str(), Some("queued" | "running") | None)).collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !unended().is_empty() {
        assert!(Instant::now() < deadline, "the schedule's runs to end: {:#?}", unended());
        std::thread::sleep(Duration::from_millis(20));
    }
    let ticks = servers[0].get("/api/runs?flow=tick&limit=500").json()["runs"].clone();
    let not_ok: Vec<&Value> = ticks.as_array().unwrap().iter().filter(|run| run["status"] != "ok").collect();
    assert!(not_ok.is_empty(), "every tick's run ended ok: {not_ok:#?}");
    let mut due: Vec<i64> =
        ticks.as_array().unwrap().iter().map(|run| run["trigger"]["tick_us"].as_i64().unwrap()).collect();
    assert!(!due.is_empty(), "the schedule ticked");
    due.sort();
    let before = due.len();
    due.dedup();
    assert_eq!(due.len(), before, "no tick started twice: {ticks}");
    // What each watcher saw is what is stored.
    for (i, run_id, watcher) in watchers {
        let seen = watcher.join().unwrap();
        assert!(!seen.is_empty(), "the watcher of {run_id} saw spans end");
        let stored: HashMap<u64, String> = on(i)
            .spans(run_id.as_str())
            .iter()
            .map(|s| (s["span_id"].as_u64().unwrap(), s["status"].as_str().unwrap().to_string()))
            .collect();
        for (span_id, status) in &seen {
            assert_eq!(stored.get(span_id), Some(status), "span {span_id} of {run_id} as the watcher saw it");
        }
    }
    // No run is left running, in the store or on a node.
    for server in &servers {
        let running = server.get("/api/runs?status=running").json();
        assert_eq!(running["runs"], json!([]), "{running}");
        let metrics = server.get("/metrics").text();
        assert!(metrics.lines().any(|l| l == "hero_logic_runs_running 0"), "{metrics}");
        assert!(metrics.lines().any(|l| l == "hero_logic_database_reachable 1"), "{metrics}");
    }
    // And the nodes take new runs.
    let after = on(0).run_wait(json!({"source": SLEEPER, "input": {"steps": 1, "pause": 0}}));
    assert_eq!(after["status"], "ok", "{after}");
}

#[test]
fn one_node_rides_out_database_restarts_with_runs_in_flight() {
    ride_out_restarts(1, 4);
}

#[test]
fn three_nodes_ride_out_database_restarts_with_runs_in_flight() {
    ride_out_restarts(3, 3);
}

/// While the database is away, a request that needs it is a 503 with
/// `Retry-After` and a clear code, `/healthz` says degraded, `/readyz` not
/// ready, and `/metrics` counts the outage; all is well once it is back.
#[test]
fn while_the_database_is_away_requests_are_503_with_retry_after_and_the_node_is_not_ready() {
    let database = OwnServer::start();
    let node = Server::start_node(&database.fresh_database(), "node-a", &["--node-lease", "3"]);
    assert_eq!(node.get("/readyz").status, 200);
    assert_eq!(node.get("/healthz").json()["status"], "ok");
    database.stop();
    let flows = node.get("/api/flows");
    assert_eq!(flows.status, 503, "{}", flows.text());
    assert_eq!(flows.json()["error"]["code"], "database_unavailable");
    assert_eq!(flows.header("Retry-After"), Some("5"));
    let ready = node.get("/readyz");
    assert_eq!((ready.status, ready.json()["error"]["code"].clone()), (503, json!("database_unavailable")));
    assert!(ready.header("Retry-After").is_some());
    let health = node.get("/healthz");
    assert_eq!(health.status, 200, "the process itself is alive");
    assert_eq!(
        (health.json()["status"].clone(), health.json()["database"].clone()),
        (json!("degraded"), json!("unreachable"))
    );
    let refused = node.post_json("/api/runs", &json!({"source": SLEEPER, "input": {"steps": 1, "pause": 0}}));
    assert_eq!(refused.status, 503, "no run is accepted that could not be stored: {}", refused.text());
    let metrics = node.get("/metrics").text();
    assert!(metrics.lines().any(|l| l == "hero_logic_database_reachable 0"), "{metrics}");
    assert!(metrics.lines().any(|l| l == "hero_logic_database_unavailable_total 1"), "{metrics}");

    database.start_again();
    eventually("the node to be ready again", || node.get("/readyz").status == 200);
    assert_eq!(node.get("/healthz").json()["status"], "ok");
    assert_eq!(node.get("/api/flows").status, 200);
    let ran = node.run_wait(json!({"source": SLEEPER, "input": {"steps": 1, "pause": 0}}));
    assert_eq!(ran["status"], "ok");
}

/// Failover: two nodes on a primary with a synchronous streaming standby,
/// connected through a URL naming both (`target_session_attrs=read-write`).
/// The primary dies and the standby is promoted while runs are in flight:
/// every run ends as it would have, each call made once, none left running.
#[test]
fn two_nodes_ride_out_a_failover_to_a_synchronous_standby() {
    let pair = hero_logic::throwaway_postgres::StandbyPair::start();
    let url = pair.fresh_database();
    let servers: Vec<Server> =
        (0..2).map(|i| Server::start_node(&url, &format!("node-{i}"), &["--node-lease", "3"])).collect();
    let (service, ledger) = spawn_service(LEDGER, &["--port", "0"], &[]);
    let _service = Killed(service);
    assert_eq!(servers[0].post_json("/api/services", &json!({"name": "ledger", "url": ledger})).status, 201);
    let on = |i: usize| &servers[i % 2];
    let durable: Vec<(usize, String)> = (0..4)
        .map(|i| (i, on(i).start_run(json!({"source": PAYOUTS, "input": {"calls": 20, "pause": 0.05}}))))
        .collect();
    let sleepers: Vec<(usize, String)> = (0..4)
        .map(|i| (i, on(i).start_run(json!({"source": SLEEPER, "input": {"steps": 20, "pause": 0.1}}))))
        .collect();
    within(Duration::from_secs(60), "the durable runs to be under way", || received(&ledger).len() >= 12);
    pair.fail_over();

    let all: Vec<&(usize, String)> = durable.iter().chain(&sleepers).collect();
    within(Duration::from_secs(90), "every run to end", || {
        all.iter().all(|(i, run_id)| run_of(on(*i), run_id).is_some_and(|run| run["status"] != "running"))
    });
    for (i, run_id) in &all {
        let run = run_of(on(*i), run_id).unwrap();
        assert_eq!(run["status"], "ok", "{run}");
    }
    let received = received(&ledger);
    for (i, run_id) in &durable {
        let spans = on(*i).spans(run_id.as_str());
        assert_eq!(spans.iter().filter(|s| s["kind"] == "rpc").count(), 20, "each call once in the tree");
        let of_run: Vec<u64> =
            received.iter().filter(|(key, _)| key.starts_with(&format!("{run_id}/"))).map(|(_, n)| *n).collect();
        assert_eq!(of_run.len(), 20, "one key per call: {received:?}");
        assert!(of_run.iter().filter(|n| **n > 1).count() <= 1 && of_run.iter().all(|n| *n <= 2), "{received:?}");
    }
    for server in &servers {
        assert_eq!(server.get("/api/runs?status=running").json()["runs"], json!([]));
    }
}
