//! Webhooks: made for a flow, called by another machine with nothing but
//! the id (no token, any Host, any Origin), the body checked as the flow's
//! input; runs remember what started them.

use super::server_support::{Server, eventually};
use crate::on_both_backends;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;

const GREET: &str = include_str!("../../examples/flows/greet.py");

fn code(response: &super::server_support::Response) -> Value {
    response.json()["error"]["code"].clone()
}

/// POST `body` to `path` as another machine would: under its own Host
/// name, from a page's Origin, without a token. The status and the body.
fn post_from_elsewhere(server: &Server, path: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: hooks.example.com\r\nOrigin: https://ci.example.org\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    let _ = stream.write_all(body);
    let mut raw = String::new();
    let _ = stream.read_to_string(&mut raw);
    let status = raw.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = raw.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default();
    (status, body)
}

/// Reads its own flow's recent runs, as any flow may, and prints them.
const READS_ITS_RUNS: &str = r#"from hero_logic import flow, services

@flow(services=["runs"])
def reads_its_runs():
    recent = services.runs.recent(flow="reads_its_runs")
    print(recent)
    return {run["run_id"]: run["trigger"] for run in recent}
"#;

/// The run once it has ended, read with the token.
fn finished(server: &Server, run_id: &str) -> Value {
    let read = || server.request("GET", &format!("/api/runs/{run_id}"), &[("Authorization", "Bearer s3cret")], b"");
    eventually("the run ends", || !["queued", "running"].contains(&read().json()["status"].as_str().unwrap()));
    read().json()
}

/// What a flow stores under a name another flow had: the old flow's
/// webhook and schedule must not start it.
const TAKER: &str = r#"
from hero_logic import flow, services

NEW = """
from hero_logic import flow

@flow(name="target", inputs={"who": "string"})
def target(who):
    return "taken over"
"""

@flow(name="taker", services=["flows"])
def taker():
    return services.flows.save(source=NEW)
"#;

/// Runs of `flow` a schedule started.
fn scheduled_runs(server: &Server, flow: &str) -> Vec<Value> {
    let runs = server.get(&format!("/api/runs?flow={flow}&limit=500")).json()["runs"].as_array().unwrap().clone();
    runs.into_iter().filter(|run| run["trigger"]["kind"] == "schedule").collect()
}

on_both_backends! {
    #[test]
    fn a_webhook_runs_its_flow_with_its_body_and_a_wrong_id_is_404() {
        let server = Server::start(&["--token", "s3cret"]);
        let token = [("Authorization", "Bearer s3cret"), ("Content-Type", "application/json")];
        assert_eq!(server.request("POST", "/api/flows", &token[..1], GREET.as_bytes()).status, 201);

        let made = server.request("POST", "/api/flows/greet/hooks", &token, b"");
        assert_eq!(made.status, 201, "{}", made.text());
        let hook_id = made.json()["hook_id"].as_str().unwrap().to_string();
        assert_eq!(hook_id.len(), 32, "128 random bits in hex");
        assert!(hook_id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(made.json()["url"], format!("/hooks/{hook_id}"));
        let other = server.request("POST", "/api/flows/greet/hooks", &token, b"").json();
        assert_ne!(other["hook_id"], json!(hook_id), "each webhook its own id");
        let missing = server.request("POST", "/api/flows/nope/hooks", &token, b"");
        assert_eq!((missing.status, code(&missing)), (404, json!("not_found")));

        // Another machine: no token, its own Host name and Origin.
        let url = format!("/hooks/{hook_id}");
        let (status, body) = post_from_elsewhere(&server, &url, br#"{"who": "webhook"}"#);
        assert_eq!(status, 202, "{body}");
        let run_id = serde_json::from_str::<Value>(&body).unwrap()["run_id"].as_str().unwrap().to_string();
        let run = finished(&server, &run_id);
        assert_eq!(run["status"], "ok", "{run}");
        assert_eq!(run["output"]["greeting"], "HELLO WEBHOOK");
        assert_eq!(run["trigger"], json!({"kind": "webhook", "hook_id": hook_id}));

        // The body is the flow's input, checked as any run's.
        for (body, status, error) in [
            (&br#"{"whom": "x"}"#[..], 400, "invalid_input"),
            (br#"{"who": 3}"#, 400, "invalid_input"),
            (br#"["who"]"#, 400, "invalid_input"),
            (br#"{"who": "#, 400, "invalid_json"),
        ] {
            let (got, answer) = post_from_elsewhere(&server, &url, body);
            let answer: Value = serde_json::from_str(&answer).unwrap();
            assert_eq!((got, &answer["error"]["code"]), (status, &json!(error)), "{}", String::from_utf8_lossy(body));
        }
        let huge = format!(r#"{{"who": "{}"}}"#, "x".repeat(1024 * 1024));
        assert_eq!(post_from_elsewhere(&server, &url, huge.as_bytes()).0, 413, "a body is at most 1 MiB");
        for wrong in ["/hooks/00000000000000000000000000000000", "/hooks/x", "/hooks/"] {
            assert_eq!(post_from_elsewhere(&server, wrong, br#"{"who": "x"}"#).0, 404, "{wrong}");
        }

        // Runs started through the API say so.
        let api = server.request("POST", "/api/runs?wait=true", &token, br#"{"flow": "greet", "input": {"who": "a"}}"#);
        assert_eq!(api.json()["trigger"], json!({"kind": "api"}));

        let listed = server.request("GET", "/api/flows/greet/hooks", &token, b"").json();
        let ids: Vec<&Value> = listed["hooks"].as_array().unwrap().iter().map(|h| &h["hook_id"]).collect();
        assert_eq!(ids, [&json!(hook_id), &other["hook_id"]], "oldest first");
        let removed = server.request("DELETE", &format!("/api/hooks/{hook_id}"), &token, b"");
        assert_eq!(removed.status, 200);
        assert_eq!(post_from_elsewhere(&server, &url, br#"{"who": "x"}"#).0, 404, "a removed webhook is gone");
        let again = server.request("DELETE", &format!("/api/hooks/{hook_id}"), &token, b"");
        assert_eq!((again.status, code(&again)), (404, json!("not_found")));
    }

    /// Removing a flow removes its webhooks and schedules with it (and
    /// says how many); a flow stored later under the free name, by flow
    /// code through `flows.save`, is started by none of them.
    #[test]
    fn a_removed_flows_hooks_and_schedules_never_start_a_flow_later_stored_under_its_name() {
        let server = Server::start(&[]);
        assert_eq!(server.upload(&GREET.replace("\"greet\"", "\"target\"")).status, 201);
        assert_eq!(server.upload(GREET).status, 201);
        let hook_id = server.post_json("/api/flows/target/hooks", &json!({})).json()["hook_id"].as_str().unwrap().to_string();
        let every_second = |flow: &str| {
            let made = server.post_json("/api/schedules", &json!({"flow": flow, "cron": "* * * * * *", "input": {"who": "cron"}}));
            assert_eq!(made.status, 201, "{}", made.text());
            made.json()["schedule_id"].as_str().unwrap().to_string()
        };
        every_second("target");
        let ticker = every_second("greet");
        eventually("the schedule of target to fire", || !scheduled_runs(&server, "target").is_empty());

        let removed = server.request("DELETE", "/api/flows/target", &[], b"");
        assert_eq!(removed.status, 200, "{}", removed.text());
        assert_eq!(
            removed.json(),
            json!({"name": "target", "versions_removed": 1, "hooks_removed": 1, "schedules_removed": 1})
        );
        let listed: Vec<Value> = server.get("/api/schedules").json()["schedules"].as_array().unwrap().iter().map(|s| s["schedule_id"].clone()).collect();
        assert_eq!(listed, [json!(ticker)], "only the other flow's schedule is left");

        let taken = server.run_wait(json!({"source": TAKER, "flow": "taker"}));
        assert_eq!(taken["status"], "ok", "{taken}");
        let stored_us = server.get("/api/flows/target").json()["created_us"].as_i64().unwrap();
        assert_eq!(server.get("/api/flows/target/hooks").json()["hooks"], json!([]), "no hook is carried over");
        let fired = server.post_json(&format!("/hooks/{hook_id}"), &json!({"who": "x"}));
        assert_eq!((fired.status, code(&fired)), (404, json!("not_found")), "{}", fired.text());

        // Two ticks of the other schedule after the new flow was stored: the
        // removed one would have fired in them.
        eventually("two ticks after the name was taken", || {
            scheduled_runs(&server, "greet").iter().filter(|run| run["created_us"].as_i64().unwrap() > stored_us).count() >= 2
        });
        let started: Vec<Value> = server.get("/api/runs?flow=target&limit=500").json()["runs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|run| run["created_us"].as_i64().unwrap() > stored_us)
            .cloned()
            .collect();
        assert_eq!(started, Vec::<Value>::new(), "no trigger of the removed flow started the new one");
        let again = server.request("DELETE", "/api/flows/target", &[], b"");
        assert_eq!(again.json(), json!({"name": "target", "versions_removed": 1, "hooks_removed": 0, "schedules_removed": 0}));
    }

    /// A webhook's id starts runs, so flows never read it: `runs.recent`
    /// shows a webhook run's trigger with the hook's fingerprint, which the
    /// hooks API shows beside the id.
    #[test]
    fn a_flow_reading_its_runs_sees_its_webhooks_fingerprint_never_its_id() {
        let server = Server::start(&["--token", "s3cret"]);
        let token = [("Authorization", "Bearer s3cret")];
        assert_eq!(server.request("POST", "/api/flows", &token, READS_ITS_RUNS.as_bytes()).status, 201);
        let made = server.request("POST", "/api/flows/reads_its_runs/hooks", &token, b"").json();
        let hook_id = made["hook_id"].as_str().unwrap().to_string();

        // Two webhook runs: the second reads the first (and, where its own start is stored by then, itself).
        let mut run_ids = Vec::new();
        for _ in 0..2 {
            let (status, body) = post_from_elsewhere(&server, &format!("/hooks/{hook_id}"), b"{}");
            assert_eq!(status, 202, "{body}");
            let run_id = serde_json::from_str::<Value>(&body).unwrap()["run_id"].as_str().unwrap().to_string();
            assert_eq!(finished(&server, &run_id)["status"], "ok");
            run_ids.push(run_id);
        }
        let second = finished(&server, &run_ids[1]);
        // Nothing the flow was told or made holds the id: its output, spans, log lines or journal.
        assert!(!second["output"].to_string().contains(&hook_id), "{second}");
        for part in ["/spans", "/logs", "/journal"] {
            let answer = server.request("GET", &format!("/api/runs/{}{part}", run_ids[1]), &token, b"");
            assert_eq!(answer.status, 200);
            assert!(!answer.text().contains(&hook_id), "{part}: {}", answer.text());
        }
        // It sees the fingerprint the hooks API shows beside the id.
        let fingerprint = made["fingerprint"].as_str().unwrap().to_string();
        assert_eq!(fingerprint.len(), 12, "{made}");
        assert!(!hook_id.contains(&fingerprint), "a digest, not a part of the id");
        let seen = second["output"].as_object().unwrap();
        assert!(seen.contains_key(&run_ids[0]), "{second}");
        for trigger in seen.values() {
            assert_eq!(trigger, &json!({"kind": "webhook", "hook_fingerprint": fingerprint}));
        }
        // The operator's API keeps the id where it showed it: the run's own trigger.
        assert_eq!(second["trigger"], json!({"kind": "webhook", "hook_id": hook_id}));
    }
}

/// The routes that make, list and remove webhooks are guarded like every
/// other: only `POST /hooks/{id}` is open to other machines.
#[test]
fn making_listing_and_removing_webhooks_needs_the_token_and_the_servers_own_page() {
    let server = Server::start(&["--token", "s3cret"]);
    let token = [("Authorization", "Bearer s3cret")];
    assert_eq!(server.request("POST", "/api/flows", &token, GREET.as_bytes()).status, 201);
    let hook_id = server.request("POST", "/api/flows/greet/hooks", &token, b"").json()["hook_id"].clone();
    let hook_id = hook_id.as_str().unwrap();
    let remove = format!("/api/hooks/{hook_id}");
    for (method, path) in [("POST", "/api/flows/greet/hooks"), ("GET", "/api/flows/greet/hooks"), ("DELETE", &remove)] {
        let denied = server.request(method, path, &[], b"");
        assert_eq!((denied.status, code(&denied)), (401, json!("unauthorized")), "{method} {path}");
        let foreign = server.request(method, path, &[token[0], ("Origin", "http://evil.example")], b"");
        assert_eq!((foreign.status, code(&foreign)), (403, json!("forbidden_origin")), "{method} {path}");
    }
    let listed = server.request("GET", "/api/flows/greet/hooks", &token, b"").json();
    assert_eq!(listed["hooks"].as_array().unwrap().len(), 1, "nothing was made or removed");
    // Other methods on a webhook's URL find no route, and reach nothing else.
    let other = server.request("GET", &format!("/hooks/{hook_id}"), &[], b"");
    assert_eq!(other.status, 405);
}
