//! Durable runs (`@flow(durable=True)`): a server killed with `kill -9`
//! mid-run, started again, resumes the run from its journal — every
//! service call answered before the kill is not made again (at most the
//! one in flight is), the run keeps its id and its one span tree, and it
//! ends with the right output. With PostgreSQL, another node takes the run
//! over once the dead node's lease runs out. A durable run the server stops
//! with after its grace is suspended, and resumed at the next start.

use super::server_support::{Server, eventually, request};
use super::services::{Killed, spawn_service};
use crate::on_both_backends;
use hero_logic::throwaway_postgres::fresh_database;
use serde_json::{Value, json};
use std::collections::HashMap;

const LEDGER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/services/ledger.py");

const FLOW: &str = r#"
import random
import time

from hero_logic import flow, services


@flow(name="payouts", services=["ledger"], durable=True, inputs={"calls": "integer", "pause": "number"})
def payouts(calls, pause):
    """Add 1, 2, ... `calls` to the ledger, one call per step."""
    drawn = random.random()
    total = 0
    for i in range(calls):
        with flow.step(f"add {i + 1}") as s:
            total = services.ledger.add(amount=i + 1)["total"]
            s.set(total=total)
        print("added", i + 1)
        time.sleep(pause)
    return {"total": total, "drawn": drawn}
"#;

/// The ledger service, registered on `server` as `ledger`, and its address.
fn ledger(server: &Server) -> (Killed, String) {
    let (child, url) = spawn_service(LEDGER, &["--port", "0"], &[]);
    assert_eq!(server.post_json("/api/services", &json!({"name": "ledger", "url": url})).status, 201);
    (Killed(child), url)
}

/// How many times the ledger received each call, by Idempotency-Key.
fn received(url: &str) -> HashMap<String, u64> {
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "calls", "params": {}});
    let answer = request(addr, "POST", "/", &[("Content-Type", "application/json")], body.to_string().as_bytes());
    let by_key = answer.json()["result"]["by_key"].clone();
    serde_json::from_value(by_key).unwrap()
}

/// Each call of `run_id` the ledger received once, but at most one twice
/// (the one in flight at the kill); `calls` of them.
fn made_once_each(url: &str, run_id: &str, calls: usize) {
    made_once_each_of_flight(url, run_id, calls, 1);
}

/// The run ended `ok` with every step once, in one tree, and every log line
/// once. (Its total is the ledger's, which other runs add to too.)
fn ended_whole(server: &Server, run_id: &str, calls: u64) -> Value {
    let run = server.get(&format!("/api/runs/{run_id}")).json();
    assert_eq!(run["status"], "ok", "{run}");
    assert_eq!(run["durable"], true);
    let spans = server.spans(run_id);
    let steps: Vec<&str> = spans.iter().filter(|s| s["kind"] == "step").map(|s| s["name"].as_str().unwrap()).collect();
    let expected: Vec<String> = (1..=calls).map(|i| format!("add {i}")).collect();
    assert_eq!(steps, expected, "each step once, in order");
    assert_eq!(spans.iter().filter(|s| s["kind"] == "rpc").count() as u64, calls);
    assert!(spans.iter().all(|s| s["status"] == "ok"), "{spans:#?}");
    let root = spans[0]["span_id"].clone();
    assert!(spans[1..].iter().all(|s| s["parent_id"].is_u64()), "one tree");
    assert!(spans.iter().filter(|s| s["kind"] == "step").all(|s| s["parent_id"] == root));
    let logs = server.get(&format!("/api/runs/{run_id}/logs")).json()["logs"].as_array().unwrap().clone();
    let added: Vec<String> = logs.iter().map(|l| l["text"].as_str().unwrap().trim().to_string()).collect();
    let expected: Vec<String> = (1..=calls).map(|i| format!("added {i}")).collect();
    assert_eq!(added, expected, "each log line once");
    // A watcher joining now is told every event once, in order.
    let events = server.events(run_id, 0).all();
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    run
}

on_both_backends! {
    #[test]
    fn a_durable_run_killed_mid_way_resumes_at_the_next_start_making_each_call_once() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut server = Server::start_on(&data, &[]);
        let (_service, url) = ledger(&server);
        let run_id = server.start_run(json!({"source": FLOW, "input": {"calls": 20, "pause": 0.1}}));
        eventually("8 calls to be made", || received(&url).len() >= 8);
        server.kill();
        let before = received(&url).len();
        assert!(before < 20, "killed mid-way");

        let server = Server::start_on(&data, &[]);
        eventually("the run to be resumed and end", || server.run_status(run_id.as_str()) == "ok");
        let run = ended_whole(&server, &run_id, 20);
        assert_eq!((run["resumes"].clone(), run["output"]["total"].clone()), (json!(1), json!(210)), "{run}");
        assert!(server.get("/metrics").text().contains("hero_logic_runs_resumed_total 1\n"));
        made_once_each(&url, &run_id, 20);
        // Every run can be replayed; a resumed one too, from its whole journal.
        let replay = server.post_json(&format!("/api/runs/{run_id}/replay?wait=true"), &json!({})).json();
        assert_eq!((replay["status"].clone(), replay["output"].clone()), (json!("ok"), run["output"].clone()), "{replay}");
        made_once_each(&url, &run_id, 20);
    }

    #[test]
    fn a_durable_run_the_server_stops_with_is_suspended_and_resumed_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut server = Server::start_on(&data, &["--shutdown-grace", "0"]);
        let (_service, url) = ledger(&server);
        let run_id = server.start_run(json!({"source": FLOW, "input": {"calls": 12, "pause": 0.1}}));
        eventually("4 calls to be made", || received(&url).len() >= 4);
        assert_eq!(server.terminate().code(), Some(0));
        assert!(received(&url).len() < 12, "stopped mid-way");

        let server = Server::start_on(&data, &[]);
        eventually("the run to be resumed and end", || server.run_status(run_id.as_str()) == "ok");
        let run = ended_whole(&server, &run_id, 12);
        assert_eq!((run["resumes"].clone(), run["output"]["total"].clone()), (json!(1), json!(78)), "{run}");
        made_once_each(&url, &run_id, 12);
    }
}

/// A resumed run cancelled while it waits for a worker ends `cancelled`
/// with the spans its first life left open closed; a durable run whose flow
/// was removed from the library meanwhile is still finished.
#[test]
fn a_resumed_run_cancelled_while_it_waits_closes_every_span_and_a_removed_flow_still_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_on(&data, &["--max-concurrent", "2"]);
    let (_service, url) = ledger(&server);
    assert_eq!(server.upload(FLOW).status, 201);
    let finished = server.start_run(json!({"flow": "payouts", "input": {"calls": 10, "pause": 0.1}}));
    let cancelled = server.start_run(json!({"flow": "payouts", "input": {"calls": 40, "pause": 0.02}}));
    eventually("both runs to be mid-way", || {
        let received = received(&url);
        let of = |run: &str| received.keys().filter(|key| key.starts_with(&format!("{run}/"))).count();
        of(&finished) >= 3 && of(&cancelled) >= 3
    });
    assert_eq!(server.request("DELETE", "/api/flows/payouts", &[], b"").status, 200);
    server.kill();

    // One worker: the older run is resumed first, the other waits for it.
    let server = Server::start_on(&data, &["--max-concurrent", "1"]);
    assert_eq!(server.request("POST", &format!("/api/runs/{cancelled}/cancel"), &[], b"").status, 202);
    eventually("the cancelled run to end", || server.run_status(cancelled.as_str()) == "cancelled");
    let run = server.get(&format!("/api/runs/{cancelled}")).json();
    assert_eq!(run["error"]["message"], "the run was cancelled while it waited to be resumed", "{run}");
    let spans = server.spans(&cancelled);
    assert!(spans.len() > 3 && spans.iter().all(|s| s["status"] != "running" && s["end_us"].is_i64()), "{spans:#?}");
    let events = server.events(&cancelled, 0).all();
    assert_eq!(events.last().unwrap()["seq"], run["last_seq"], "the closing events are numbered on");
    eventually("the other run to end", || server.run_status(finished.as_str()) == "ok");
    ended_whole(&server, &finished, 10);
}

/// A run that is not durable still ends `interrupted` at the next start.
#[test]
fn a_run_that_is_not_durable_still_ends_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_on(&data, &[]);
    let (_service, url) = ledger(&server);
    let source = FLOW.replace("durable=True", "durable=False");
    let run_id = server.start_run(json!({"source": source, "input": {"calls": 20, "pause": 0.1}}));
    eventually("2 calls to be made", || received(&url).len() >= 2);
    server.kill();
    let server = Server::start_on(&data, &[]);
    let run = server.get(&format!("/api/runs/{run_id}")).json();
    assert_eq!(
        (run["status"].clone(), run["durable"].clone(), run["resumes"].clone()),
        (json!("interrupted"), json!(false), json!(0))
    );
}

/// With PostgreSQL, a node killed with a durable run in hand: another node
/// takes the run once the lease runs out and ends it, each call made once.
#[test]
fn on_postgresql_another_node_resumes_a_killed_nodes_durable_run() {
    let url = fresh_database();
    let mut a = Server::start_node(&url, "node-a", &["--node-lease", "2"]);
    let b = Server::start_node(&url, "node-b", &["--node-lease", "2"]);
    let (_service, ledger_url) = ledger(&a);
    let run_id = a.start_run(json!({"source": FLOW, "input": {"calls": 20, "pause": 0.1}}));
    eventually("8 calls to be made", || received(&ledger_url).len() >= 8);
    a.kill();
    eventually("node-b to resume the run and end it", || b.run_status(run_id.as_str()) == "ok");
    let run = ended_whole(&b, &run_id, 20);
    assert_eq!((run["node"].clone(), run["resumes"].clone()), (json!("node-b"), json!(1)), "{run}");
    assert_eq!(run["output"]["total"], 210);
    made_once_each(&ledger_url, &run_id, 20);
}

const SIDE_BY_SIDE: &str = r#"
import time

from hero_logic import flow, services


@flow(name="part", services=["ledger"], inputs={"base": "integer"})
def part(base):
    got = []
    for i in range(3):
        with flow.step(f"part {base} add {i}"):
            got.append(services.ledger.add(amount=base + i)["total"])
        time.sleep(0.1)
    return got


@flow(name="fan_out", services=["ledger"], durable=True)
def fan_out():
    started = time.monotonic()
    with flow.step("pair"):
        pair = services.gather(services.ledger.add.request(amount=1), services.ledger.add.request(amount=2))
    parts = flow.invoke_many([("part", {"base": 10 * k}) for k in range(1, 5)], concurrency=2)
    outputs = [p.output for p in parts]
    with flow.step("last"):
        last = services.ledger.add(amount=3)["total"]
    return {"pair": len(pair), "parts": len(outputs), "last": last, "clock_ran": time.monotonic() >= started}
"#;

/// Calls made side by side and subflows run side by side, killed mid-way:
/// the resumed run finds each of its spans again (not one twice) and makes
/// no answered call again.
#[test]
fn a_durable_run_with_calls_and_subflows_side_by_side_resumes_whole() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_on(&data, &[]);
    let (_service, url) = ledger(&server);
    let run_id = server.start_run(json!({"source": SIDE_BY_SIDE, "flow": "fan_out"}));
    eventually("the subflows to be half done", || received(&url).len() >= 8);
    server.kill();
    assert!(received(&url).len() < 15, "killed mid-way");

    let server = Server::start_on(&data, &[]);
    eventually("the run to be resumed and end", || server.run_status(run_id.as_str()) == "ok");
    let run = server.get(&format!("/api/runs/{run_id}")).json();
    assert_eq!((run["resumes"].clone(), run["output"]["pair"].clone()), (json!(1), json!(2)), "{run}");
    assert_eq!(run["output"]["parts"], 4);
    assert_eq!(run["output"]["clock_ran"], true, "the monotonic clock never went back");
    // 2 + 4 x 3 + 1 calls, each total the ledger's sum of the amounts once.
    let amounts: u64 = 1 + 2 + (1..=4).map(|k| 3 * 10 * k + 3).sum::<u64>() + 3;
    assert_eq!(run["output"]["last"], json!(amounts), "{run}");
    made_once_each_of_flight(&url, &run_id, 15, 2);
    let spans = server.spans(&run_id);
    assert!(spans.iter().all(|s| s["status"] == "ok"), "{spans:#?}");
    let place = |s: &Value| {
        (s["parent_id"].clone(), s["name"].clone(), s["attrs"]["input"].clone(), s["attrs"]["params"].clone())
    };
    let mut places: Vec<_> = spans.iter().map(place).collect();
    places.sort_by_key(|p| format!("{p:?}"));
    let before = places.len();
    places.dedup();
    assert_eq!(places.len(), before, "no span twice: {spans:#?}");
    assert_eq!(spans.iter().filter(|s| s["kind"] == "rpc").count(), 15);
    assert_eq!(spans.iter().filter(|s| s["kind"] == "subflow").count(), 4);
}

/// Like `made_once_each`, for a run with up to `in_flight` calls going at once.
fn made_once_each_of_flight(url: &str, run_id: &str, calls: usize, in_flight: usize) {
    let received = received(url);
    let of_run: Vec<u64> =
        received.iter().filter(|(key, _)| key.starts_with(&format!("{run_id}/"))).map(|(_, n)| *n).collect();
    assert_eq!(of_run.len(), calls, "one key per call: {received:?}");
    assert!(of_run.iter().all(|n| *n <= 2), "{received:?}");
    assert!(of_run.iter().filter(|n| **n == 2).count() <= in_flight, "only calls in flight twice: {received:?}");
}

/// With PostgreSQL, a node that stands still (paused) longer than the
/// database lets a transaction sit idle has its batch in flight ended by the
/// database: the node writes that batch again once it runs, and its durable
/// run ends whole, every event stored once, in order.
#[test]
fn on_postgresql_a_node_paused_mid_batch_writes_the_batch_again_and_loses_nothing() {
    const BUSY: &str = "from hero_logic import flow\n\n@flow(durable=True, inputs={\"n\": \"integer\"})\ndef busy(n):\n    for i in range(n):\n        with flow.step(f\"s{i}\"):\n            print(i)\n    return n\n";
    let server = Server::start_node(&fresh_database(), "node-a", &["--max-spans", "50000"]);
    let run_id = server.start_run(json!({"source": BUSY, "input": {"n": 40000}, "quotas": {"spans": 50000}}));
    eventually("the run to be writing", || server.spans(&run_id).len() > 100);
    server.signal("STOP");
    std::thread::sleep(std::time::Duration::from_secs(6));
    server.signal("CONT");
    eventually("the run to end", || server.run_status(run_id.as_str()) != "running");
    let run = server.get(&format!("/api/runs/{run_id}")).json();
    assert_eq!(run["status"], "ok", "{run}");
    let spans = server.spans(&run_id);
    assert_eq!(spans.len(), 40001);
    assert!(spans.iter().all(|s| s["status"] == "ok" && s["end_us"].is_i64()));
    let events = server.events(&run_id, 0).all();
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "every event once, none missing");
}
