//! Retries and concurrency limits, as a flow declares them, against the
//! real server on either database, on one node and on two.

use super::server_support::{Response, Server, eventually, request_from};
use crate::on_both_backends;
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::time::Duration;

/// Fails every time; each attempt waits 0.3 s, then 0.6 s, after the last.
const ALWAYS_FAILS: &str = r#"
from hero_logic import flow

@flow(name="always_fails", retries=2, retry_delay=0.3, retry_backoff=2)
def always_fails():
    raise flow.Failed("not today")
"#;

/// Fails on its first `fail_first` attempts (it counts them in `kv`); one
/// charge per customer at a time. The example in docs/flow-control.md.
const CHARGE: &str = include_str!("../../examples/flows/charge.py");

/// Sleeps past its wall-time quota: retried only when `retry_on` says so.
const TIMES_OUT: &str = r#"
import time
from hero_logic import flow

@flow(name="times_out", retries=1)
def times_out():
    time.sleep(5)

@flow(name="times_out_retried", retries=1, retry_on=["timed_out"])
def times_out_retried():
    time.sleep(5)
"#;

/// One run at a time per tenant.
const ONE_AT_A_TIME: &str = r#"
import time
from hero_logic import flow

@flow(name="one_at_a_time", inputs={"tenant": "string", "sleep": "number"}, concurrency=1, concurrency_key="tenant")
def one_at_a_time(tenant, sleep):
    time.sleep(sleep)
    return tenant
"#;

/// The attempts of the run `first`, oldest first.
fn attempts(server: &Server, first: &str) -> Vec<Value> {
    let mut runs = server.get(&format!("/api/runs?first_run_id={first}")).json()["runs"].as_array().unwrap().clone();
    runs.sort_by_key(|run| run["attempt"].as_u64());
    runs
}

fn finished(server: &Server, run_id: &str) -> Value {
    eventually("the run to end", || !matches!(server.run_status(run_id).as_str(), "queued" | "running"));
    server.get(&format!("/api/runs/{run_id}")).json()
}

fn us(run: &Value, field: &str) -> i64 {
    run[field].as_i64().unwrap_or_else(|| panic!("{field} of {run}"))
}

/// Runs that went on at the same time, as pairs of run ids.
fn overlapping(runs: &[Value]) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for (i, a) in runs.iter().enumerate() {
        for b in &runs[i + 1..] {
            if us(a, "start_us") < us(b, "end_us") && us(b, "start_us") < us(a, "end_us") {
                pairs.push((a["run_id"].to_string(), b["run_id"].to_string()));
            }
        }
    }
    pairs
}

/// Holds a place (one at a time) and a worker for half a minute.
const HOG: &str = r#"
import time
from hero_logic import flow

@flow(name="hog", concurrency=1)
def hog():
    time.sleep(30)

@flow(name="sleeper")
def sleeper():
    time.sleep(30)

@flow(name="limited", concurrency=1)
def limited():
    return "ran"
"#;

/// Start a run as the client at `address` (another loopback address is
/// another client).
fn start_from(server: &Server, address: [u8; 4], body: Value) -> Response {
    request_from(Ipv4Addr::from(address), &server.addr, "POST", "/api/runs", body.to_string().as_bytes())
}

fn cancel_all(server: &Server, run_ids: &[String]) {
    for id in run_ids {
        server.request("POST", &format!("/api/runs/{id}/cancel"), &[], b"");
    }
}

fn one_at_a_time(server: &Server, tenant: &str, sleep: f64) -> String {
    server.start_run(json!({"flow": "one_at_a_time", "input": {"tenant": tenant, "sleep": sleep}}))
}

/// Fails once, then waits two seconds for its next attempt.
const RETRIED_LATER: &str = r#"
from hero_logic import flow

@flow(name="retried_later", retries=1, retry_delay=2)
def retried_later():
    raise flow.Failed("not yet")
"#;

on_both_backends! {
    /// A retry waiting when its flow is removed is dropped, and never runs
    /// a flow stored later under the name (whose versions are numbered from
    /// 1 again).
    #[test]
    fn a_retry_of_a_removed_flow_never_runs_a_flow_stored_later_under_its_name() {
        let server = Server::start(&[]);
        assert_eq!(server.upload(RETRIED_LATER).status, 201);
        let first = server.start_run(json!({"flow": "retried_later"}));
        assert_eq!(finished(&server, &first)["status"], "failed");
        assert!(server.get(&format!("/api/runs/{first}")).json()["retry_due_us"].is_i64(), "its retry waits");
        assert_eq!(server.request("DELETE", "/api/flows/retried_later", &[], b"").status, 200);
        let other = RETRIED_LATER.replace("raise flow.Failed(\"not yet\")", "return \"other code ran\"");
        let stored = server.upload(&other);
        assert_eq!(stored.status, 201, "{}", stored.text());
        eventually("the retry to be dropped or started", || {
            server.get(&format!("/api/runs/{first}")).json()["retry_due_us"].is_null()
        });
        let runs = attempts(&server, &first);
        assert_eq!(runs.len(), 1, "no attempt ran the flow stored later: {runs:?}");
    }

    #[test]
    fn a_failing_run_is_attempted_again_after_growing_delays_until_its_retries_are_spent() {
        let server = Server::start(&[]);
        assert_eq!(server.upload(ALWAYS_FAILS).status, 201);
        let first = server.start_run(json!({"flow": "always_fails"}));
        eventually("three attempts", || attempts(&server, &first).len() == 3);
        let runs = attempts(&server, &first);
        for run in &runs {
            finished(&server, run["run_id"].as_str().unwrap());
        }
        let runs = attempts(&server, &first);
        let numbers: Vec<_> = runs.iter().map(|run| run["attempt"].clone()).collect();
        assert_eq!(numbers, [json!(1), json!(2), json!(3)]);
        assert!(runs.iter().all(|run| run["status"] == "failed" && run["first_run_id"] == json!(first)), "{runs:?}");
        assert_eq!(runs[0]["trigger"], json!({"kind": "api"}));
        for (before, after) in runs.iter().zip(&runs[1..]) {
            assert_eq!(after["trigger"], json!({"kind": "retry", "retry_of": before["run_id"]}));
            assert_eq!(after["flow"], before["flow"]);
            assert_eq!(after["source_sha256"], before["source_sha256"]);
        }
        // Attempt k+1 starts no sooner than 0.3 s × 2^(k-1) after attempt k ended.
        assert!(us(&runs[1], "created_us") - us(&runs[0], "end_us") >= 300_000, "{runs:?}");
        assert!(us(&runs[2], "created_us") - us(&runs[1], "end_us") >= 600_000, "{runs:?}");
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(attempts(&server, &first).len(), 3, "no attempt after the retries are spent");
        assert!(server.get(&format!("/api/runs/{first}")).json().get("retry_due_us").is_none());
    }

    #[test]
    fn a_retry_that_succeeds_ends_the_attempts_and_keeps_the_input() {
        let server = Server::start(&[]);
        assert_eq!(server.upload(CHARGE).status, 201);
        let input = json!({"customer": "acme", "cents": 500, "fail_first": 1});
        let first = server.start_run(json!({"flow": "charge", "input": input}));
        eventually("a second attempt", || attempts(&server, &first).len() == 2);
        let second = attempts(&server, &first)[1]["run_id"].as_str().unwrap().to_string();
        let second = finished(&server, &second);
        let output = json!({"customer": "acme", "charged": 500, "attempts": 2});
        assert_eq!((second["status"].clone(), second["output"].clone()), (json!("ok"), output));
        assert_eq!(second["input"], input);
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(attempts(&server, &first).len(), 2, "an ok run is not retried");
    }

    #[test]
    fn timeouts_are_retried_only_when_retry_on_names_them() {
        let server = Server::start(&[]);
        assert_eq!(server.upload(TIMES_OUT).status, 201);
        let quotas = json!({"wall_time_ms": 200});
        let plain = server.start_run(json!({"flow": "times_out", "quotas": quotas}));
        let retried = server.start_run(json!({"flow": "times_out_retried", "quotas": quotas}));
        eventually("the retried one's second attempt", || attempts(&server, &retried).len() == 2);
        let second = finished(&server, attempts(&server, &retried)[1]["run_id"].as_str().unwrap());
        assert_eq!((second["status"].clone(), second["quotas"]["wall_time_ms"].clone()), (json!("timed_out"), json!(200)));
        assert_eq!(finished(&server, &plain)["status"], "timed_out");
        std::thread::sleep(Duration::from_millis(800));
        assert_eq!(attempts(&server, &plain).len(), 1, "timed_out is not retried by default");
    }

    #[test]
    fn a_waiting_retry_can_be_called_off_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut server = Server::start_on(&data, &[]);
        let slow = ALWAYS_FAILS.replace("retry_delay=0.3", "retry_delay=2");
        assert_eq!(server.upload(&slow).status, 201);
        let first = server.start_run(json!({"flow": "always_fails"}));
        let ended = finished(&server, &first);
        let due = ended["retry_due_us"].as_i64().expect("a waiting attempt is shown");
        assert!(due >= us(&ended, "end_us") + 2_000_000, "{ended}");
        // Stopped and started again before it is due: it still starts.
        assert_eq!(server.terminate().code(), Some(0));
        let server = Server::start_on(&data, &[]);
        eventually("the second attempt, after the restart", || attempts(&server, &first).len() == 2);
        let second = attempts(&server, &first)[1]["run_id"].as_str().unwrap().to_string();
        finished(&server, &second);
        let called_off = server.request("POST", &format!("/api/runs/{second}/cancel"), &[], b"");
        assert_eq!((called_off.status, called_off.json()["retry"].clone()), (200, json!("cancelled")), "{}", called_off.text());
        std::thread::sleep(Duration::from_millis(3000));
        assert_eq!(attempts(&server, &first).len(), 2, "the called-off attempt never started");
        let again = server.request("POST", &format!("/api/runs/{second}/cancel"), &[], b"");
        assert_eq!(again.status, 409, "{}", again.text());
    }

    #[test]
    fn runs_over_a_concurrency_limit_wait_queued_and_never_overlap() {
        let server = Server::start(&[]);
        assert_eq!(server.upload(ONE_AT_A_TIME).status, 201);
        // The first run of each tenant holds its place before the others
        // come: two runs accepted a moment apart reach the limit on two
        // workers in either order, and the order promised is the one in
        // which they wait there.
        let first_a = one_at_a_time(&server, "a", 0.6);
        eventually("a's first run to hold its place", || server.run_status(first_a.as_str()) == "running");
        let first_b = one_at_a_time(&server, "b", 0.6);
        eventually("b's first run to hold its place", || server.run_status(first_b.as_str()) == "running");
        let a: Vec<String> =
            std::iter::once(first_a).chain((0..2).map(|_| one_at_a_time(&server, "a", 0.6))).collect();
        let b: Vec<String> = std::iter::once(first_b).chain([one_at_a_time(&server, "b", 0.6)]).collect();
        assert_eq!(server.run_status(a[2].as_str()), "queued", "it waits its turn");
        let cancelled = one_at_a_time(&server, "a", 0.6);
        assert_eq!(server.request("POST", &format!("/api/runs/{cancelled}/cancel"), &[], b"").status, 202);
        let runs_a: Vec<Value> = a.iter().map(|id| finished(&server, id)).collect();
        let runs_b: Vec<Value> = b.iter().map(|id| finished(&server, id)).collect();
        assert!(runs_a.iter().chain(&runs_b).all(|run| run["status"] == "ok"), "none fails: {runs_a:?} {runs_b:?}");
        assert_eq!(overlapping(&runs_a), [], "{runs_a:?}");
        assert_eq!(overlapping(&runs_b), [], "{runs_b:?}");
        // Each tenant has its own place: their first runs went on together.
        assert_eq!(overlapping(&[runs_a[0].clone(), runs_b[0].clone()]).len(), 1, "{runs_a:?} {runs_b:?}");
        // In the order they came.
        let starts: Vec<i64> = runs_a.iter().map(|run| us(run, "start_us")).collect();
        assert!(starts.windows(2).all(|pair| pair[0] < pair[1]), "{starts:?}");
        let cancelled = finished(&server, &cancelled);
        assert_eq!((cancelled["status"].clone(), cancelled["start_us"].clone()), (json!("cancelled"), Value::Null));
        // A place given back by a cancelled waiter or an ended run is free.
        let last = finished(&server, &one_at_a_time(&server, "a", 0.0));
        assert_eq!(last["status"], "ok");
    }

    /// Runs waiting for a place under a concurrency limit count against
    /// their client's share: one client cannot fill the area where such runs
    /// wait (16 places per place of the queue) and have another client's
    /// run of another limited flow refused.
    #[test]
    fn one_client_cannot_fill_the_places_where_limited_runs_wait() {
        let server = Server::start(&["--max-concurrent", "2", "--queue-capacity", "8"]);
        assert_eq!(server.upload(HOG).status, 201);
        let mut accepted = Vec::new();
        let refused = loop {
            let started = start_from(&server, [127, 0, 0, 1], json!({"flow": "hog"}));
            if started.status != 202 {
                break started;
            }
            accepted.push(started.json()["run_id"].as_str().unwrap().to_string());
            assert!(accepted.len() <= 200, "one client had 200 runs accepted");
        };
        assert_eq!((refused.status, refused.json()["error"]["code"].clone()), (429, json!("client_queue_full")), "{}", refused.text());
        // One running, holding one of the two workers; waiting, its share (a
        // quarter of the queue: 2) and a place for the one free worker. At
        // every moment each run is counted once, waiting or holding a worker,
        // so no timing lets one more in or refuses one too soon.
        assert_eq!(accepted.len(), 1 + 2 + 1, "runs of one client accepted");
        let other = start_from(&server, [127, 0, 0, 2], json!({"flow": "limited"}));
        assert_eq!(other.status, 202, "another client's run is accepted: {}", other.text());
        assert_eq!(finished(&server, other.json()["run_id"].as_str().unwrap())["output"], "ran");
        cancel_all(&server, &accepted);
    }

    /// A retry counts against the share of the client whose run it retries:
    /// while it waits for a worker, that client's share is taken.
    #[test]
    fn a_retry_counts_against_the_share_of_the_client_that_started_the_first_attempt() {
        let server = Server::start(&["--max-concurrent", "3", "--queue-per-client", "1"]);
        assert_eq!(server.upload(TIMES_OUT).status, 201);
        assert_eq!(server.upload(HOG).status, 201);
        let (a, c, d) = ([127, 0, 0, 1], [127, 0, 0, 3], [127, 0, 0, 4]);
        let id = |response: Response| response.json()["run_id"].as_str().unwrap().to_string();
        let first = id(start_from(&server, a, json!({"flow": "times_out_retried", "quotas": {"wall_time_ms": 4000}})));
        eventually("the first attempt to run", || server.run_status(first.as_str()) == "running");
        // Other clients hold the other two workers, and wait for the first
        // attempt's: the worker it gives back goes to them, not to its retry.
        let mut others: Vec<String> = (0..2).map(|_| id(start_from(&server, c, json!({"flow": "sleeper"})))).collect();
        eventually("both to run", || others.iter().all(|run| server.run_status(run.as_str()) == "running"));
        others.push(id(start_from(&server, c, json!({"flow": "sleeper"}))));
        others.push(id(start_from(&server, d, json!({"flow": "sleeper"}))));

        eventually("the retry", || attempts(&server, &first).len() == 2);
        let retry = attempts(&server, &first)[1]["run_id"].as_str().unwrap().to_string();
        assert_eq!(server.run_status(retry.as_str()), "queued", "it waits for a worker");
        let probe = start_from(&server, a, json!({"flow": "limited"}));
        assert_eq!((probe.status, probe.json()["error"]["code"].clone()), (429, json!("client_queue_full")), "{}", probe.text());
        cancel_all(&server, &others);
        assert_eq!(finished(&server, &retry)["status"], "timed_out");
        let probe = start_from(&server, a, json!({"flow": "limited"}));
        assert_eq!(probe.status, 202, "its share is free again: {}", probe.text());
    }
}

/// On two nodes sharing PostgreSQL, the limit counts the runs of both, and
/// each attempt of a retried run starts once.
#[test]
fn on_two_nodes_the_limit_holds_across_them_and_each_attempt_starts_once() {
    let url = hero_logic::throwaway_postgres::fresh_database();
    let a = Server::start_node(&url, "node-a", &[]);
    let b = Server::start_node(&url, "node-b", &[]);
    assert_eq!(a.upload(ONE_AT_A_TIME).status, 201);
    assert_eq!(a.upload(ALWAYS_FAILS).status, 201);
    let ids: Vec<String> = (0..6).map(|i| one_at_a_time(if i % 2 == 0 { &a } else { &b }, "shared", 0.3)).collect();
    let runs: Vec<Value> = ids.iter().map(|id| finished(&a, id)).collect();
    assert!(runs.iter().all(|run| run["status"] == "ok"), "{runs:?}");
    assert_eq!(overlapping(&runs), [], "{runs:?}");
    let nodes: std::collections::BTreeSet<_> = runs.iter().map(|run| run["node"].to_string()).collect();
    assert_eq!(nodes.len(), 2, "both nodes ran some: {nodes:?}");

    let first = b.start_run(json!({"flow": "always_fails"}));
    eventually("three attempts", || attempts(&a, &first).len() == 3);
    std::thread::sleep(Duration::from_millis(1500));
    let numbers: Vec<_> = attempts(&a, &first).iter().map(|run| run["attempt"].clone()).collect();
    assert_eq!(numbers, [json!(1), json!(2), json!(3)], "each attempt once, whichever node starts it");
}

/// What a flow declares is checked: in the sandbox with a line to fix, and
/// by the host whatever the module reports.
#[test]
fn bad_retry_and_concurrency_declarations_are_refused_with_a_reason() {
    let server = Server::start(&[]);
    for (declaration, message) in [
        ("retries=-1", "retries must be an integer from 0 to 100"),
        ("retries=2, retry_on=['ok']", "retry_on must be a list of"),
        ("retry_delay=5", "need retries=N"),
        ("retries=1, retry_backoff=0.5", "retry_backoff must be a number from 1 to 10"),
        ("concurrency=0", "concurrency must be an integer from 1 to 10000"),
        ("concurrency=2, concurrency_key='tenant'", "concurrency_key 'tenant' is not one of its inputs"),
        ("concurrency_key='who'", "concurrency_key needs concurrency=K"),
    ] {
        let source = format!(
            "from hero_logic import flow\n\n@flow(name='bad', inputs={{'who': 'string'}}, {declaration})\ndef bad(who):\n    pass\n"
        );
        let refused = server.upload(&source);
        assert_eq!(refused.status, 400, "{declaration}: {}", refused.text());
        assert!(refused.text().contains(message), "{declaration}: {}", refused.text());
    }
    assert_eq!(server.get("/api/flows/bad").status, 404, "nothing refused was stored");
}

/// Cancelling a run stops its flow's retries, even where `retry_on` names
/// `cancelled`; a removed flow's waiting attempt never starts; retention
/// keeps a run whose next attempt waits.
#[test]
fn retries_stop_when_cancelled_or_their_flow_is_removed_and_retention_keeps_what_they_need() {
    let server = Server::start(&["--retain-runs", "1"]);
    let endless = r#"
import time
from hero_logic import flow

@flow(name="endless", retries=5, retry_delay=0, retry_on=["failed", "cancelled"])
def endless():
    time.sleep(10)
"#;
    assert_eq!(server.upload(endless).status, 201);
    let first = server.start_run(json!({"flow": "endless"}));
    eventually("the run to start", || server.run_status(first.as_str()) == "running");
    assert_eq!(server.request("POST", &format!("/api/runs/{first}/cancel"), &[], b"").status, 202);
    assert_eq!(finished(&server, &first)["status"], "cancelled");
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(attempts(&server, &first).len(), 1, "a cancel by request ends the chain");

    let slow = ALWAYS_FAILS.replace("retry_delay=0.3", "retry_delay=2");
    assert_eq!(server.upload(&slow).status, 201);
    let doomed = server.start_run(json!({"flow": "always_fails"}));
    finished(&server, &doomed);
    // Newer runs than it, past --retain-runs 1: it stays while its attempt waits.
    for _ in 0..2 {
        assert_eq!(server.run_wait(json!({"flow": "endless", "quotas": {"wall_time_ms": 50}}))["status"], "timed_out");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.get(&format!("/api/runs/{doomed}")).status, 200, "kept for its next attempt");
    assert_eq!(server.request("DELETE", "/api/flows/always_fails", &[], b"").status, 200);
    std::thread::sleep(Duration::from_millis(2500));
    assert!(attempts(&server, &doomed).len() <= 1, "a removed flow is not run again");
}

/// Runs waiting for a place under a concurrency limit wait outside the
/// queue: other flows' runs are not refused for them.
#[test]
fn runs_waiting_for_a_place_leave_the_queue_to_other_flows() {
    // Each client's share of the queue counts its runs waiting for a place
    // too: this one's holds the six.
    let server = Server::start(&["--max-concurrent", "2", "--queue-capacity", "2", "--queue-per-client", "8"]);
    assert_eq!(server.upload(ONE_AT_A_TIME).status, 201);
    let waiting: Vec<String> = (0..6).map(|_| one_at_a_time(&server, "t", 1.0)).collect();
    eventually("five waiting for the place", || {
        waiting.iter().filter(|id| server.run_status(id.as_str()) == "queued").count() == 5
    });
    let other =
        server.run_wait(json!({"source": "from hero_logic import flow\n\n@flow\ndef other():\n    return 1\n"}));
    assert_eq!(other["status"], "ok", "{other}");
    let health = server.get("/healthz").json();
    assert!(health["runs_queued"].as_u64().unwrap() >= 4, "waiting runs are still counted as queued: {health}");
    for id in &waiting {
        server.request("POST", &format!("/api/runs/{id}/cancel"), &[], b"");
    }
}
