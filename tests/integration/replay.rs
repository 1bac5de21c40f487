//! Replay: an ended run run again from its journal, in a fresh sandbox —
//! no service called, no sleep waited, the original's clock and random —
//! ends as the original did, with the same span tree and logs; a module
//! that asks for something else stops with `ReplayDiverged`.

use super::server_support::Server;
use super::services::{Killed, spawn_service};
use crate::on_both_backends;
use serde_json::{Value, json};
use std::time::Instant;

const HEADERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/services/headers.py");

const FLOW: &str = r#"
import random
import time
import uuid

from hero_logic import flow, services


@flow(name="callee", inputs={"n": "integer"})
def callee(n):
    print("callee at", time.time())
    return {"n": n, "pick": random.random()}


@flow(name="replayed", services=["echo"])
def replayed():
    with flow.step("read") as s:
        at = time.time()
        s.set(at=at, pick=random.random(), id=uuid.uuid4().hex)
    time.sleep(1.0)
    with flow.step("call"):
        got = services.echo.received()
        print("the service said", got["headers"].get("idempotency-key"))
        try:
            services.echo.refuse()
        except services.RpcError as error:
            print("refused:", error.code)
    sub = flow.invoke("callee", n=3)
    return {"at": at, "after_sleep": time.monotonic(), "key": got["headers"]["idempotency-key"], "sub": sub}
"#;

/// A run's spans as replay keeps them: kind, name, status, attributes and
/// nesting (by the path of names from the root), times left out; the root's
/// usage attributes (times, CPU) differ by nature.
fn tree(server: &Server, run_id: &str) -> Vec<Value> {
    let spans = server.spans(run_id);
    let path = |span: &Value| {
        let mut names = vec![span["name"].clone()];
        let mut parent = span["parent_id"].clone();
        while let Some(up) = spans.iter().find(|s| s["span_id"] == parent) {
            names.push(up["name"].clone());
            parent = up["parent_id"].clone();
        }
        names
    };
    let mut shapes: Vec<Value> = spans
        .iter()
        .map(|span| {
            let mut attrs = span["attrs"].clone();
            if let Some(attrs) = attrs.as_object_mut() {
                attrs.remove("usage");
            }
            json!({"path": path(span), "kind": span["kind"], "status": span["status"], "attrs": attrs, "error": span["error"]})
        })
        .collect();
    shapes.sort_by_key(|shape| shape.to_string());
    shapes
}

fn logs(server: &Server, run_id: &str) -> Vec<Value> {
    let logs = server.get(&format!("/api/runs/{run_id}/logs")).json()["logs"].as_array().unwrap().clone();
    logs.iter().map(|line| json!([line["stream"], line["text"]])).collect()
}

on_both_backends! {
    #[test]
    fn a_replay_calls_nothing_waits_for_nothing_and_ends_as_the_original() {
        let server = Server::start(&[]);
        let (child, url) = spawn_service(HEADERS, &["--port", "0"], &[]);
        let service = Killed(child);
        assert_eq!(server.post_json("/api/services", &json!({"name": "echo", "url": url})).status, 201);
        let original = server.run_wait(json!({"source": FLOW, "flow": "replayed"}));
        assert_eq!(original["status"], "ok", "{original}");
        let run_id = original["run_id"].as_str().unwrap().to_string();
        // The service is gone: a replay that called it would fail.
        drop(service);

        let started = Instant::now();
        let replay = server.post_json(&format!("/api/runs/{run_id}/replay?wait=true"), &json!({}));
        assert_eq!(replay.status, 200, "{}", replay.text());
        assert!(started.elapsed().as_millis() < 1000, "the replay did not wait out the 1 s sleep");
        let replay = replay.json();
        assert_eq!(replay["status"], "ok", "{replay}");
        assert_eq!(replay["replay_of"], json!(run_id));
        assert_eq!(replay["trigger"], json!({"kind": "replay", "replay_of": run_id}));
        assert_eq!(replay["output"], original["output"], "the same clock, random, answers and subflow");
        assert_eq!(replay["usage"]["rpc_calls"], original["usage"]["rpc_calls"]);
        let replay_id = replay["run_id"].as_str().unwrap();
        assert_eq!(tree(&server, replay_id), tree(&server, &run_id));
        assert_eq!(logs(&server, replay_id), logs(&server, &run_id));
        assert!(logs(&server, replay_id).iter().any(|line| line[1].as_str().unwrap().starts_with("refused: -32001")));
        // Replayed again, from the replay's own journal: the same once more.
        let again = server.post_json(&format!("/api/runs/{replay_id}/replay?wait=true"), &json!({})).json();
        assert_eq!(again["output"], original["output"]);
    }

    #[test]
    fn a_changed_module_stops_with_replay_diverged_naming_the_first_differing_call() {
        let server = Server::start(&[]);
        let (child, url) = spawn_service(HEADERS, &["--port", "0"], &[]);
        let _service = Killed(child);
        assert_eq!(server.post_json("/api/services", &json!({"name": "echo", "url": url})).status, 201);
        let original = server.run_wait(json!({"source": FLOW, "flow": "replayed"}));
        let run_id = original["run_id"].as_str().unwrap();
        let replay = |source: String| {
            server.post_json(&format!("/api/runs/{run_id}/replay?wait=true"), &json!({"source": source})).json()
        };
        for (changed, says) in [
            (FLOW.replace("time.sleep(1.0)", "time.sleep(1.0)\n    time.time()"), "the flow asked for wall_clock; the original asked for rpc"),
            (FLOW.replace("services.echo.refuse()", "services.echo.received()"), "the flow asked for rpc echo.received where the original asked for rpc echo.refuse"),
            (FLOW.replace("n=3", "n=4"), "the flow asked for subflow callee with other arguments than the original"),
            (FLOW.replace("\"after_sleep\": time.monotonic()", "\"after_sleep\": 0"), "instance 0 ended after 7 answers; the original was given 8"),
        ] {
            let diverged = replay(changed);
            assert_eq!(diverged["status"], "failed", "{diverged}");
            assert_eq!(diverged["error"]["type"], "ReplayDiverged", "{diverged}");
            assert!(diverged["error"]["message"].as_str().unwrap().contains(says), "{says}: {diverged}");
        }
        // The same module, sent again, replays.
        assert_eq!(replay(FLOW.to_string())["output"], original["output"]);
    }
}

#[test]
fn replay_refuses_unknown_and_running_runs_with_a_reason() {
    let server = Server::start(&[]);
    let unknown = server.post_json("/api/runs/nope/replay", &json!({}));
    assert_eq!((unknown.status, unknown.json()["error"]["code"].clone()), (404, json!("not_found")));
    let source = "import time\nfrom hero_logic import flow\n\n@flow\ndef slow():\n    time.sleep(5)\n";
    let running = server.start_run(json!({"source": source}));
    super::server_support::eventually("the run to start", || server.run_status(running.as_str()) == "running");
    let refused = server.post_json(&format!("/api/runs/{running}/replay"), &json!({}));
    assert_eq!(
        (refused.status, refused.json()["error"]["code"].clone()),
        (409, json!("not_ended")),
        "{}",
        refused.text()
    );
    let bad =
        server.request("POST", &format!("/api/runs/{running}/replay"), &[("Content-Type", "application/json")], b"{");
    assert_eq!(bad.status, 400);
    server.request("POST", &format!("/api/runs/{running}/cancel"), &[], b"");
}

/// `hero_logic replay RUN_ID` on a data directory: the run again from its
/// journal, printed, exit 0 when it ends as the original did; a changed
/// module (`--source`) that diverges is exit 1 and says where.
#[test]
fn the_command_line_replays_a_run_and_says_where_a_changed_module_diverges() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_on(&data, &[]);
    let source = "import random, time\nfrom hero_logic import flow\n\n@flow\ndef pick():\n    with flow.step(\"wait\"):\n        time.sleep(0.5)\n    return [time.time(), random.random()]\n";
    let original = server.run_wait(json!({"source": source}));
    let run_id = original["run_id"].as_str().unwrap().to_string();
    assert_eq!(server.terminate().code(), Some(0));

    let cli = |args: &[&str]| {
        super::support::hero_logic()
            .arg("replay")
            .args(args)
            .args(["--data-dir", data.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let started = Instant::now();
    let replayed = cli(&[&run_id, "--json"]);
    assert_eq!(replayed.status.code(), Some(0), "{}", String::from_utf8_lossy(&replayed.stderr));
    assert!(started.elapsed().as_secs_f64() < 10.0);
    let printed: Value = serde_json::from_slice(&replayed.stdout).unwrap();
    assert_eq!(printed["output"], original["output"]);
    assert!(printed["spans"].as_array().unwrap().iter().any(|span| span["name"] == "wait"));
    assert!(String::from_utf8_lossy(&replayed.stderr).contains("ended ok as the original did"));
    let tree = cli(&[&run_id]);
    assert!(String::from_utf8_lossy(&tree.stdout).contains("wait"), "{}", String::from_utf8_lossy(&tree.stdout));

    let changed = dir.path().join("changed.py");
    std::fs::write(&changed, source.replace("return [", "time.time()\n    return [")).unwrap();
    let diverged = cli(&[&run_id, "--source", changed.to_str().unwrap()]);
    assert_eq!(diverged.status.code(), Some(1));
    let said = String::from_utf8_lossy(&diverged.stderr);
    assert!(said.contains("ReplayDiverged") && said.contains("the flow asked for wall_clock"), "{said}");
    let unknown = cli(&["no-such-run"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no run with id 'no-such-run'"));
}

/// A subflow runs again as the stored version the journal names, though
/// the library holds a newer one by now.
#[test]
fn a_replay_runs_the_subflow_version_the_original_ran_not_the_latest() {
    let server = Server::start(&[]);
    let callee = |answer: &str| {
        format!(
            "from hero_logic import flow\n\n@flow(inputs={{\"n\": \"integer\"}})\ndef callee(n):\n    return {answer}\n"
        )
    };
    assert_eq!(server.upload(&callee("n * 2")).status, 201);
    let caller = "from hero_logic import flow\n\n@flow\ndef caller():\n    return flow.invoke(\"callee\", n=21)\n";
    assert_eq!(server.upload(caller).status, 201);
    let original = server.run_wait(json!({"flow": "caller"}));
    assert_eq!(original["output"], 42, "{original}");
    assert_eq!(server.upload(&callee("n * 3")).status, 201);
    assert_eq!(server.run_wait(json!({"flow": "caller"}))["output"], 63, "the latest version runs anew");
    let run_id = original["run_id"].as_str().unwrap();
    let replay = server.post_json(&format!("/api/runs/{run_id}/replay?wait=true"), &json!({})).json();
    assert_eq!((replay["status"].clone(), replay["output"].clone()), (json!("ok"), json!(42)), "{replay}");
    let subflow =
        server.spans(replay["run_id"].as_str().unwrap()).into_iter().find(|s| s["kind"] == "subflow").unwrap();
    assert_eq!(subflow["attrs"]["flow_version"], 1);
}
