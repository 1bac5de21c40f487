//! Several `serve` nodes on one PostgreSQL database behave as one service:
//! one library, runs and their live trees readable from any node, a dead
//! node's runs ended by the others.

use super::server_support::{Server, eventually};
use hero_logic::throwaway_postgres::fresh_database;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const RAIN: &str = r#"from hero_logic import flow

@flow(description="Rainfall totals for a city", inputs={"city": "string"})
def rain_report(city):
    with flow.step("measure"):
        print("measuring", city)
    return {"city": city, "mm": 12}
"#;

/// Steps with a log line each and a pause between them, for as long as asked.
const PACED: &str = r#"import time
from hero_logic import flow

@flow(inputs={"steps": "integer", "pause": "number"})
def paced(steps, pause):
    for i in range(steps):
        with flow.step(f"step {i}", index=i):
            print(f"line {i}")
        time.sleep(pause)
    return steps
"#;

fn two_nodes(args: &[&str]) -> (Server, Server) {
    let url = fresh_database();
    (Server::start_node(&url, "node-a", args), Server::start_node(&url, "node-b", args))
}

fn run_of(server: &Server, run_id: &str) -> Value {
    server.get(&format!("/api/runs/{run_id}")).json()
}

#[test]
fn a_flow_uploaded_on_one_node_is_listed_searched_and_run_on_the_other() {
    let (a, b) = two_nodes(&[]);
    assert_eq!(a.upload(RAIN).status, 201);
    let listed = b.get("/api/flows").json();
    assert!(listed["flows"].as_array().unwrap().iter().any(|f| f["name"] == "rain_report"), "{listed}");
    let hits = b.get("/api/flows/search?q=rainfall").json();
    assert_eq!(hits["hits"][0]["name"], "rain_report", "{hits}");
    let ran = b.run_wait(json!({"flow": "rain_report", "input": {"city": "Ghent"}}));
    assert_eq!((ran["status"].clone(), ran["output"]["mm"].clone()), (json!("ok"), json!(12)));
    assert_eq!(ran["node"], "node-b", "the node that executed it");
    let run_id = ran["run_id"].as_str().unwrap();
    assert_eq!(run_of(&a, run_id), ran, "the other node reads the same record");
    assert_eq!(a.spans(run_id), b.spans(run_id));
}

#[test]
fn a_watcher_on_one_node_gets_every_event_of_a_run_on_the_other_live() {
    let (a, b) = two_nodes(&[]);
    let run_id = a.start_run(json!({"source": PACED, "input": {"steps": 400, "pause": 0.002}}));
    // Joined while the run goes on: some events stored, more to come.
    eventually("the run to be under way", || a.spans(&run_id).len() >= 5);
    let events = b.events(&run_id, 0).all();
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "every event once, in order");
    let last = events.last().unwrap();
    assert_eq!((last["type"].clone(), last["status"].clone()), (json!("run_finished"), json!("ok")));
    // 400 steps and the flow: a start and an end each, and 400 log lines.
    assert_eq!(seqs.len(), 401 * 2 + 400 + 1);
    assert_eq!(last["node"], "node-a", "the run_finished message carries the run");
    // Joining from the middle gets the rest only.
    let rest = b.events(&run_id, 600).all();
    assert_eq!(rest.first().unwrap()["seq"], 601);
}

#[test]
fn the_run_list_stream_and_cancel_work_across_nodes() {
    let (a, b) = two_nodes(&[]);
    let url = format!("ws://{}/api/events", b.addr);
    let (mut list, _) = tungstenite::connect(url).expect("open the run list stream");
    let run_id = a.start_run(json!({"source": PACED, "input": {"steps": 1, "pause": 60}}));
    eventually("the step to start", || a.spans(&run_id).len() == 2);
    let cancel = b.request("POST", &format!("/api/runs/{run_id}/cancel"), &[], b"");
    assert_eq!(cancel.status, 202, "{}", cancel.text());
    eventually("the run to be cancelled by its node", || a.run_status(run_id.as_str()) == "cancelled");
    let mut kinds = Vec::new();
    let mut last_status = Value::Null;
    while !kinds.contains(&"run_finished".to_string()) {
        let message = list.read().expect("a message on the run list stream");
        let message: Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
        if message["run"]["run_id"] == run_id.as_str() {
            kinds.push(message["type"].as_str().unwrap().to_string());
            last_status = message["run"]["status"].clone();
        }
    }
    // Each change as this node read it after the commit that made it: a
    // run that starts at once may be first seen started.
    let (last, before) = kinds.split_last().unwrap();
    assert_eq!(last, "run_finished", "{kinds:?}");
    assert!(!before.is_empty() && before.iter().all(|k| k == "run_queued" || k == "run_started"), "{kinds:?}");
    assert_eq!(last_status, "cancelled");
}

#[test]
fn a_killed_node_has_its_runs_ended_interrupted_by_another_within_the_lease() {
    let url = fresh_database();
    let mut a = Server::start_node(&url, "node-a", &["--node-lease", "2"]);
    let b = Server::start_node(&url, "node-b", &["--node-lease", "2"]);
    let run_id = a.start_run(json!({"source": PACED, "input": {"steps": 3, "pause": 60}}));
    eventually("the step to be stored", || a.spans(&run_id).len() == 2);
    a.kill();
    let killed = Instant::now();
    eventually("the run to be ended by node-b", || b.run_status(run_id.as_str()) == "interrupted");
    let took = killed.elapsed();
    // The lease is 2 s, renewed every 2/3 s and looked at as often.
    assert!(took < Duration::from_secs(8), "noticed after {took:?}");
    let spans = b.spans(&run_id);
    assert_eq!(spans[0]["status"], "interrupted", "the flow's span, open at the kill");
    assert_eq!(spans[1]["status"], "ok", "the step that had ended");
    assert!(spans.iter().all(|s| s["end_us"].is_i64()), "{spans:#?}");
    let events = b.events(&run_id, 0).all();
    let last = events.last().unwrap();
    assert_eq!((last["type"].clone(), last["status"].clone()), (json!("run_finished"), json!("interrupted")));
    assert_eq!(run_of(&b, &run_id)["last_seq"], last["seq"]);
}

#[test]
fn two_nodes_starting_at_once_on_an_empty_database_both_serve() {
    let url = fresh_database();
    let starting: Vec<_> = ["node-a", "node-b"]
        .into_iter()
        .map(|node| {
            let url = url.clone();
            std::thread::spawn(move || Server::start_node(&url, node, &[]))
        })
        .collect();
    let nodes: Vec<Server> = starting.into_iter().map(|s| s.join().unwrap()).collect();
    for node in &nodes {
        let flows = node.get("/api/flows").json();
        assert_eq!(flows["flows"].as_array().unwrap().len(), 6, "the built-in flows, once: {flows}");
    }
}

#[test]
fn a_second_process_cannot_take_a_live_nodes_name() {
    let url = fresh_database();
    let _a = Server::start_node(&url, "node-a", &[]);
    let output = super::support::hero_logic()
        .args(["serve", "--addr", "127.0.0.1:0", "--database", &url, "--node", "node-a"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("node 'node-a' is held by a running process"), "{stderr}");
}

/// A process in another PID namespace (the same host name, its own
/// `/proc`) cannot see a live node's process; it must still be refused the
/// node's name, and the node's runs go on. Needs `unshare` (root).
#[test]
fn a_process_in_another_pid_namespace_cannot_take_a_live_nodes_name() {
    let can_unshare = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !can_unshare {
        eprintln!("skipped: `unshare --pid --fork --mount-proc` is not allowed here (it needs root)");
        return;
    }
    let url = fresh_database();
    let a = Server::start_node(&url, "node-a", &["--node-lease", "2"]);
    let run_id = a.start_run(json!({"source": PACED, "input": {"steps": 1, "pause": 60}}));
    eventually("the run to be running on node-a", || a.run_status(run_id.as_str()) == "running");
    let program = super::support::hero_logic().get_program().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let mut intruder = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(program)
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(["--database", &url, "--node", "node-a", "--node-lease", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(intruder.stdout.take().unwrap()), &mut first_line)
        .unwrap();
    let taken = first_line.starts_with("listening on");
    if taken {
        let _ = intruder.kill();
    }
    let output = intruder.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!taken, "the process in another PID namespace took node-a's name");
    assert!(!output.status.success());
    assert!(stderr.contains("node 'node-a' is held by a running process"), "{stderr}");
    assert_eq!(a.run_status(run_id.as_str()), "running", "node-a's run goes on");
    assert_eq!(a.request("POST", &format!("/api/runs/{run_id}/cancel"), &[], b"").status, 202);
    eventually("the run to be cancelled by node-a", || a.run_status(run_id.as_str()) == "cancelled");
}

#[test]
fn runs_submitted_to_one_busy_node_are_executed_by_whichever_has_a_free_place() {
    let (a, b) = two_nodes(&["--max-concurrent", "1"]);
    let body = json!({"source": PACED, "input": {"steps": 1, "pause": 0.4}});
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let (addr, body) = (a.addr.clone(), body.clone());
            std::thread::spawn(move || {
                super::server_support::request(&addr, "POST", "/api/runs?wait=true", &[], body.to_string().as_bytes())
            })
        })
        .collect();
    let mut nodes = Vec::new();
    for waiter in waiters {
        let response = waiter.join().unwrap();
        assert_eq!(response.status, 200, "{}", response.text());
        let run = response.json();
        assert_eq!(run["status"], "ok", "{run}");
        let spans = b.spans(run["run_id"].as_str().unwrap());
        assert!(spans.iter().all(|s| s["status"] == "ok"), "{spans:#?}");
        nodes.push(run["node"].as_str().unwrap().to_string());
    }
    nodes.sort();
    nodes.dedup();
    assert_eq!(nodes, ["node-a", "node-b"], "all submitted to node-a, executed on both");
}

#[test]
fn runs_a_dead_node_had_queued_are_executed_by_another() {
    let url = fresh_database();
    let mut a = Server::start_node(&url, "node-a", &["--max-concurrent", "1", "--node-lease", "2"]);
    let long = a.start_run(json!({"source": PACED, "input": {"steps": 1, "pause": 60}}));
    eventually("the long run to hold node-a's place", || a.run_status(long.as_str()) == "running");
    let queued: Vec<String> =
        (0..2).map(|_| a.start_run(json!({"source": PACED, "input": {"steps": 1, "pause": 0}}))).collect();
    assert!(queued.iter().all(|run_id| a.run_status(run_id.as_str()) == "queued"));
    a.kill();
    let b = Server::start_node(&url, "node-b", &["--node-lease", "2"]);
    for run_id in &queued {
        eventually("the queued run to run on node-b", || b.run_status(run_id.as_str()) == "ok");
        assert_eq!(run_of(&b, run_id)["node"], "node-b");
    }
    eventually("the cut run to be ended", || b.run_status(long.as_str()) == "interrupted");
}

#[test]
fn a_run_waiting_in_the_shared_queue_is_cancelled_from_any_node_and_its_waiter_told() {
    let url = fresh_database();
    let a = Server::start_node(&url, "node-a", &["--max-concurrent", "1"]);
    let b = Server::start_node(&url, "node-b", &["--max-concurrent", "1"]);
    let busy = a.start_run(json!({"source": PACED, "input": {"steps": 1, "pause": 60}}));
    let b_busy = b.start_run(json!({"source": PACED, "input": {"steps": 1, "pause": 60}}));
    eventually("both nodes to be busy", || {
        a.run_status(busy.as_str()) == "running" && b.run_status(b_busy.as_str()) == "running"
    });
    let (addr, body) = (a.addr.clone(), json!({"source": PACED, "input": {"steps": 1, "pause": 0}}));
    let waiter = std::thread::spawn(move || {
        super::server_support::request(&addr, "POST", "/api/runs?wait=true", &[], body.to_string().as_bytes())
    });
    let waiting = || {
        let runs = a.get("/api/runs?status=queued").json();
        runs["runs"].as_array().unwrap().first().map(|run| run["run_id"].as_str().unwrap().to_string())
    };
    eventually("a run to wait in the shared queue", || waiting().is_some());
    let queued = waiting().unwrap();
    assert_eq!(run_of(&a, &queued)["node"], Value::Null, "no node has it yet");
    let cancel = b.request("POST", &format!("/api/runs/{queued}/cancel"), &[], b"");
    assert_eq!(cancel.status, 202, "{}", cancel.text());
    let answer = waiter.join().unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["status"], "cancelled", "the waiter on node-a hears of it");
    assert!(a.spans(queued.as_str()).is_empty(), "it never started");
    for (server, run_id) in [(&a, &busy), (&b, &b_busy)] {
        server.request("POST", &format!("/api/runs/{run_id}/cancel"), &[], b"");
    }
}

#[test]
fn the_command_line_works_on_the_shared_database_and_a_bad_url_is_one_clear_line() {
    let url = fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rain.py");
    std::fs::write(&file, RAIN).unwrap();
    let added =
        super::support::hero_logic().args(["flows", "add"]).arg(&file).args(["--database", &url]).output().unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let node = Server::start_node(&url, "node-a", &[]);
    assert_eq!(node.get("/api/flows/rain_report").status, 200, "the node serves what the command line stored");
    let found = super::support::hero_logic()
        .args(["flows", "search", "rainfall"])
        .env("HERO_LOGIC_DATABASE", &url)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&found.stdout).contains("rain_report"), "{found:?}");

    let refused = super::support::hero_logic().args(["flows", "list", "--database", "mysql://x@y/z"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("a 'mysql' URL is neither postgres://"), "{stderr}");
    assert!(!stderr.contains("x@y"), "the URL, which may hold a password, is not echoed: {stderr}");
    let unreachable = super::support::hero_logic()
        .args(["serve", "--addr", "127.0.0.1:0", "--database", "postgres://nobody@127.0.0.1:1/none"])
        .output()
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(1), "{unreachable:?}");
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("connect to PostgreSQL"), "{unreachable:?}");
}

/// `library.search` answers the same on both databases: the built-in flows,
/// searched in plain words, come back in the same order (BM25 with the same
/// field weights on both).
#[test]
fn library_search_ranks_the_built_in_flows_alike_on_sqlite_and_postgresql() {
    let sqlite = Server::start(&[]);
    let postgres = Server::start_node(&fresh_database(), "node-a", &[]);
    let mut compared = 0;
    for query in ["services check", "optimize a flow", "agent", "report", "search the library", "spans", "versions"] {
        let names = |server: &Server| -> Vec<String> {
            let hits = server.get(&format!("/api/flows/search?q={}", query.replace(' ', "+"))).json();
            hits["hits"].as_array().unwrap().iter().map(|hit| hit["name"].as_str().unwrap().to_string()).collect()
        };
        let (on_sqlite, on_postgres) = (names(&sqlite), names(&postgres));
        assert_eq!(on_sqlite, on_postgres, "'{query}' finds the same flows in the same order");
        compared += on_sqlite.len();
    }
    assert!(compared >= 7, "the queries found flows to compare ({compared})");
}
