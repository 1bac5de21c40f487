//! `hero_logic serve` on a free port: the HTTP API, the live event stream,
//! the queue, cancel, crash recovery, malformed requests and auth.

use super::server_support::{Server, eventually, request, request_from};
use crate::on_both_backends;
use serde_json::{Value, json};

const GREET: &str = include_str!("../../examples/flows/greet.py");

/// Sleeps `pause` seconds in each of `steps` steps, so runs can be watched.
const SLOW: &str = r#"import time
from hero_logic import flow

@flow(inputs={"steps": "integer", "pause": "number"})
def slow(steps, pause):
    for i in range(steps):
        with flow.step(f"step{i}", index=i):
            print(f"step {i}")
            time.sleep(pause)
    return steps
"#;

/// The final state of every span, from a run's event stream.
fn spans_from_events(events: &[Value]) -> Vec<Value> {
    let mut spans: Vec<Value> = Vec::new();
    for event in events.iter().filter(|e| e["type"] == "span_ended") {
        let mut span = event.clone();
        let fields = span.as_object_mut().unwrap();
        fields.remove("type");
        fields.remove("seq");
        spans.push(span);
    }
    spans.sort_by_key(|s| s["span_id"].as_u64());
    spans
}

fn assert_seqs_complete(events: &[Value]) {
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "no gap, no duplicate");
    assert_eq!(events.last().unwrap()["type"], "run_finished");
}

/// Many short steps, each with a log line, for as long as it is let run.
const BUSY: &str = r#"import time
from hero_logic import flow

@flow(inputs={"steps": "integer"})
def busy(steps):
    for i in range(steps):
        with flow.step(f"step {i}", index=i) as s:
            print(f"line {i}")
            s.set(done=True)
        time.sleep(0.0005)
    return steps
"#;

/// (method, path, headers, body, expected status, expected error code)
type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, Vec<u8>, u16, &'a str);

/// Many steps at once, then asleep until cancelled.
const MANY_THEN_WAIT: &str = r#"import time
from hero_logic import flow

@flow(inputs={"steps": "integer"})
def many_then_wait(steps):
    for i in range(steps):
        with flow.step(f"step {i}", index=i, note="x" * 1000):
            print(f"line {i}")
    time.sleep(600)
"#;

fn stream_tail_bytes(server: &Server) -> u64 {
    let metrics = server.get("/metrics").text();
    let line = metrics.lines().find(|l| l.starts_with("hero_logic_stream_tail_bytes ")).expect("the gauge");
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

// Every test here runs on SQLite and again on PostgreSQL.
on_both_backends! {
    #[test]
    fn upload_run_and_read_back_over_http_and_websocket() {
        let server = Server::start(&[]);
        let uploaded = server.upload(GREET);
        assert_eq!(uploaded.status, 201, "{}", uploaded.text());
        assert_eq!(uploaded.json()["flows"], json!([{"name": "greet", "version": 1, "created": true}]));
        let again = server.upload(GREET);
        assert_eq!((again.status, again.json()["flows"][0]["created"].clone()), (200, json!(false)));
        let changed = server.request(
            "POST",
            "/api/flows",
            &[("Content-Type", "application/json")],
            json!({"source": GREET.replace("hello", "hi")}).to_string().as_bytes(),
        );
        assert_eq!(changed.json()["flows"][0]["version"], 2);

        let listed = server.get("/api/flows").json();
        let greet = listed["flows"].as_array().unwrap().iter().find(|f| f["name"] == "greet").expect("greet is listed");
        assert_eq!(greet["versions"], 2);
        let flow = server.get("/api/flows/greet").json();
        assert_eq!(flow["version"], 2);
        assert!(flow["source"].as_str().unwrap().contains("hi {who}"));
        assert_eq!(flow["info"]["inputs"]["who"]["type"], "string");
        assert_eq!(flow["versions"].as_array().unwrap().len(), 2);
        let first = server.get("/api/flows/greet?version=1").json();
        assert!(first["source"].as_str().unwrap().contains("hello {who}"));

        let response =
            server.post_json("/api/runs?wait=true", &json!({"flow": "greet", "version": 1, "input": {"who": "ada"}}));
        assert_eq!(response.status, 200, "{}", response.text());
        let run = response.json();
        assert_eq!(run["status"], "ok");
        assert_eq!(run["output"], json!({"greeting": "HELLO ADA"}));
        assert_eq!(run["version"], 1);
        let run_id = run["run_id"].as_str().unwrap();
        assert_eq!(server.get(&format!("/api/runs/{run_id}")).json(), run);

        let over_http = server.spans(run_id);
        assert_eq!(over_http.len(), 3);
        let events = server.events(run_id, 0).all();
        assert_seqs_complete(&events);
        assert_eq!(spans_from_events(&events), over_http, "spans over HTTP equal spans over the WebSocket");
        let finished = events.last().unwrap();
        assert_eq!((finished["run_id"].as_str(), finished["status"].clone()), (Some(run_id), json!("ok")));

        let logs = server.get(&format!("/api/runs/{run_id}/logs")).json()["logs"].clone();
        assert_eq!(logs[0]["text"], "shouting");
        assert_eq!(logs[0]["span_id"], over_http[2]["span_id"]);

        let otlp = server.get(&format!("/api/runs/{run_id}/otlp")).json();
        let otlp_spans = otlp["resourceSpans"][0]["scopeSpans"][0]["spans"].as_array().unwrap();
        assert_eq!(otlp_spans.len(), 3);
        assert_eq!(otlp_spans[1]["parentSpanId"], otlp_spans[0]["spanId"]);
        assert_eq!(otlp_spans[0]["traceId"].as_str().unwrap().len(), 32);

        // Source straight from the editor runs without being stored as a flow.
        let edited = server.post_json("/api/runs?wait=true", &json!({"source": SLOW, "input": {"steps": 1, "pause": 0}}));
        assert_eq!(edited.json()["status"], "ok");
        assert_eq!(edited.json()["version"], Value::Null);
        assert_eq!(server.get("/api/flows/slow").status, 404, "editor source is not stored as a flow");

        let runs = server.get("/api/runs?flow=greet").json();
        assert_eq!(runs["runs"].as_array().unwrap().len(), 1);
        let like = server.get("/api/runs?flow_contains=REE").json();
        assert_eq!(like["runs"].as_array().unwrap().iter().map(|r| r["flow"].clone()).collect::<Vec<_>>(), [json!("greet")]);
        assert_eq!(server.get("/api/runs?flow=GREET").json()["runs"], json!([]), "flow is the exact name");
        assert_eq!(server.get("/api/runs?status=ok&limit=1").json()["runs"].as_array().unwrap().len(), 1);
        let metrics = server.get("/metrics").text();
        assert!(metrics.contains("hero_logic_runs_total{status=\"ok\"} 2"), "{metrics}");
        assert!(metrics.contains("hero_logic_queue_depth 0"), "{metrics}");
        assert_eq!(server.get("/healthz").json()["status"], "ok");
    }

    #[test]
    fn a_client_joining_mid_run_gets_the_whole_tree_without_gaps() {
        let server = Server::start(&[]);
        let early = std::thread::scope(|scope| {
            let run_id = server.start_run(json!({"source": SLOW, "input": {"steps": 8, "pause": 0.05}}));
            let early = scope.spawn({
                let mut stream = server.events(&run_id, 0);
                move || stream.all()
            });
            eventually("three spans stored", || server.spans(&run_id).len() >= 3);
            assert_eq!(server.run_status(&run_id), "running");
            let late = server.events(&run_id, 0).all();
            let early = early.join().unwrap();
            assert_seqs_complete(&late);
            assert_eq!(late, early, "a watcher joining mid-run sees exactly what one there from the start saw");
            assert_eq!(spans_from_events(&late), server.spans(&run_id));
            assert_eq!(spans_from_events(&late).len(), 9);

            // Re-joining from a seq gives only what came after it.
            let rejoined = server.events(&run_id, 5).all();
            assert_eq!(rejoined[0]["seq"], 6);
            assert_eq!(rejoined.len(), late.len() - 5);
            late
        });
        assert!(early.iter().any(|e| e["type"] == "log" && e["text"] == "step 7"));
    }

    #[test]
    fn cancel_ends_a_run_cancelled_with_every_span_closed() {
        let server = Server::start(&[]);
        let run_id = server.start_run(json!({"source": SLOW, "input": {"steps": 1, "pause": 60}}));
        eventually("the step to start", || server.spans(&run_id).len() == 2);
        let response = server.request("POST", &format!("/api/runs/{run_id}/cancel"), &[], b"");
        assert_eq!(response.status, 202, "{}", response.text());
        eventually("the run to end", || server.run_status(&run_id) == "cancelled");
        let spans = server.spans(&run_id);
        assert!(spans.iter().all(|s| s["status"] == "cancelled" && s["end_us"].is_i64()), "{spans:#?}");
        let again = server.request("POST", &format!("/api/runs/{run_id}/cancel"), &[], b"");
        assert_eq!((again.status, again.json()["error"]["code"].clone()), (409, json!("already_finished")));
    }

    #[test]
    fn one_client_cannot_fill_the_queue_for_everyone() {
        let server = Server::start(&["--max-concurrent", "1", "--queue-capacity", "8", "--queue-per-client", "2"]);
        let body = json!({"source": SLOW, "input": {"steps": 1, "pause": 60}});
        let running = server.start_run(body.clone());
        eventually("the first run to start", || server.run_status(&running) == "running");
        let waiting = [server.start_run(body.clone()), server.start_run(body.clone())];
        let refused = server.post_json("/api/runs", &body);
        assert_eq!(refused.status, 429, "{}", refused.text());
        assert_eq!(refused.json()["error"]["code"], "client_queue_full");
        assert!(refused.json()["error"]["message"].as_str().unwrap().contains("2 runs waiting"), "{}", refused.text());
        assert_eq!(refused.header("retry-after"), Some("1"));

        // Another address is another client, with its own share of the queue.
        let other = std::net::Ipv4Addr::new(127, 0, 0, 2);
        let from_other = || request_from(other, &server.addr, "POST", "/api/runs", body.to_string().as_bytes());
        let accepted = [from_other(), from_other()];
        for response in &accepted {
            assert_eq!(response.status, 202, "{}", response.text());
        }
        assert_eq!(from_other().json()["error"]["code"], "client_queue_full");

        // Once one of its runs has left the queue, the first client has room again.
        let cancel = server.request("POST", &format!("/api/runs/{}/cancel", waiting[0]), &[], b"");
        assert_eq!(cancel.status, 202);
        eventually("the cancelled run to end", || server.run_status(&waiting[0]) == "cancelled");
        let again = server.start_run(body.clone());
        for run_id in [running, waiting[1].clone(), again] {
            server.request("POST", &format!("/api/runs/{run_id}/cancel"), &[], b"");
        }
        for response in accepted {
            let run_id = response.json()["run_id"].as_str().unwrap().to_string();
            server.request("POST", &format!("/api/runs/{run_id}/cancel"), &[], b"");
        }
    }

    #[test]
    fn a_full_queue_answers_429_with_retry_after() {
        let server = Server::start(&["--max-concurrent", "1", "--queue-capacity", "1"]);
        let body = json!({"source": SLOW, "input": {"steps": 1, "pause": 60}});
        let first = server.start_run(body.clone());
        let second = server.start_run(body.clone());
        let refused = server.post_json("/api/runs", &body);
        assert_eq!(refused.status, 429, "{}", refused.text());
        assert_eq!(refused.json()["error"]["code"], "queue_full");
        assert_eq!(refused.header("retry-after"), Some("1"));
        eventually("one running, one queued", || server.run_status(&first) == "running");
        assert_eq!(server.run_status(&second), "queued");
        assert!(server.get("/metrics").text().contains("hero_logic_runs_rejected_total 1"));
        // A queued run can be cancelled before it ever starts.
        assert_eq!(server.request("POST", &format!("/api/runs/{second}/cancel"), &[], b"").status, 202);
        eventually("the queued run to end", || server.run_status(&second) == "cancelled");
        assert!(server.spans(&second).is_empty());
        assert_eq!(server.request("POST", &format!("/api/runs/{first}/cancel"), &[], b"").status, 202);
    }

    #[test]
    fn a_killed_server_restarts_with_finished_runs_intact_and_cut_runs_interrupted() {
        let mut server = Server::start(&[]);
        server.upload(GREET);
        let finished = server.post_json("/api/runs?wait=true", &json!({"flow": "greet", "input": {"who": "ada"}})).json();
        let finished_id = finished["run_id"].as_str().unwrap().to_string();
        let finished_spans = server.spans(&finished_id);
        let cut = server.start_run(json!({"source": SLOW, "input": {"steps": 3, "pause": 0.2}}));
        eventually("the second step to be stored", || server.spans(&cut).len() >= 3);

        server.kill();
        let data_dir = server.data_dir.clone();
        let restarted = Server::start_on(&data_dir, &[]);

        assert_eq!(restarted.get(&format!("/api/runs/{finished_id}")).json(), finished);
        assert_eq!(restarted.spans(&finished_id), finished_spans);
        let run = restarted.get(&format!("/api/runs/{cut}")).json();
        assert_eq!(run["status"], "interrupted");
        assert_eq!(run["error"]["type"], "Interrupted");
        let cut_spans = restarted.spans(&cut);
        assert_eq!(cut_spans[1]["status"], "ok", "the step that had finished stays ok");
        assert_eq!(cut_spans[0]["status"], "interrupted");
        assert!(cut_spans.iter().all(|s| s["status"] != "running" && s["end_us"].is_i64()), "{cut_spans:#?}");
        let events = restarted.events(&cut, 0).all();
        assert_seqs_complete(&events);
        assert_eq!(events.last().unwrap()["status"], "interrupted");
        assert_eq!(run["last_seq"], events.last().unwrap()["seq"], "the run record and its stream agree");
        assert_eq!(restarted.get("/api/flows/greet").status, 200, "the uploaded flow is still there");
    }


    #[test]
    fn what_a_watcher_saw_before_a_kill_is_what_the_store_holds_after_it() {
        let mut lost = 0;
        let mut seen_total = 0;
        for trial in 0..3 {
            let mut server = Server::start(&[]);
            let run_id = server.start_run(json!({"source": BUSY, "input": {"steps": 100_000}}));
            let mut watcher = server.events(&run_id, 0);
            let mut seen = Vec::new();
            while seen.len() < 400 + trial * 300 {
                seen.push(watcher.next().expect("events while the run goes on"));
            }
            server.kill();
            // What was sent before the kill and not yet read was seen too.
            seen.extend(watcher.all());
            seen_total += seen.len();

            let restarted = Server::start_on(&server.data_dir.clone(), &[]);
            let replayed = restarted.events(&run_id, 0).all();
            assert_seqs_complete(&replayed);
            let by_seq: std::collections::HashMap<u64, &Value> =
                replayed.iter().map(|event| (event["seq"].as_u64().unwrap(), event)).collect();
            for event in &seen {
                let seq = event["seq"].as_u64().unwrap();
                let Some(stored) = by_seq.get(&seq) else {
                    lost += 1;
                    continue;
                };
                // The same event under the same seq: a seq is never reused.
                let same = match event["type"].as_str().unwrap() {
                    "span_ended" => **stored == *event,
                    "span_started" => stored["type"] == "span_started" && stored["span_id"] == event["span_id"],
                    _ => **stored == *event,
                };
                if !same {
                    lost += 1;
                    eprintln!("seq {seq}: watched {event}, stored {stored}");
                }
            }
        }
        println!(
            "KILL-FIGURES {seen_total} events watched over 3 kill -9 trials, {lost} missing or different after restart"
        );
        assert_eq!(lost, 0, "every event a watcher saw is stored, under its seq");
    }

    #[test]
    fn sigterm_lets_running_runs_finish_and_flushes_the_store() {
        let mut server = Server::start(&[]);
        let run_id = server.start_run(json!({"source": SLOW, "input": {"steps": 2, "pause": 0.3}}));
        eventually("the run to start", || server.run_status(&run_id) == "running");
        let status = server.terminate();
        assert!(status.success(), "{status:?}");
        let data_dir = server.data_dir.clone();
        let restarted = Server::start_on(&data_dir, &[]);
        let run = restarted.get(&format!("/api/runs/{run_id}")).json();
        assert_eq!(run["status"], "ok", "{run:#}");
        assert_eq!(restarted.spans(&run_id).len(), 3);
    }


    #[test]
    fn malformed_requests_get_the_right_4xx_and_change_nothing() {
        let server = Server::start(&[]);
        server.upload(GREET);
        let ok_run = server.post_json("/api/runs?wait=true", &json!({"flow": "greet", "input": {"who": "x"}})).json();
        let before =
            (server.get("/api/flows").json(), server.get("/api/runs").json(), server.get("/api/flows/greet").json());
        let json_type = ("Content-Type", "application/json");
        let two_flows = "from hero_logic import flow\n@flow()\ndef a():\n    pass\n@flow()\ndef b():\n    pass\n";
        let huge = vec![b'#'; 5 * 1024 * 1024];
        let big_input = json!({"flow": "greet", "input": {"who": "x".repeat(1_100_000)}}).to_string();
        let run_id = ok_run["run_id"].as_str().unwrap();
        let cases: Vec<Case> = vec![
            (
                "POST",
                "/api/flows".into(),
                vec![],
                b"from hero_logic import flow\n\n@flow()\ndef f(:\n".to_vec(),
                400,
                "invalid_flow",
            ),
            ("POST", "/api/flows".into(), vec![], b"x = 1\n".to_vec(), 400, "invalid_flow"),
            ("POST", "/api/flows".into(), vec![], b"".to_vec(), 400, "invalid_flow"),
            ("POST", "/api/flows".into(), vec![], vec![0xff, 0xfe], 400, "invalid_source"),
            ("POST", "/api/flows".into(), vec![json_type], b"{\"source\": ".to_vec(), 400, "invalid_json"),
            ("POST", "/api/flows".into(), vec![json_type], b"{\"code\": \"x\"}".to_vec(), 400, "invalid_request"),
            ("POST", "/api/flows".into(), vec![], huge, 413, "payload_too_large"),
            ("POST", "/api/runs".into(), vec![json_type], b"{bad".to_vec(), 400, "invalid_json"),
            (
                "POST",
                "/api/runs".into(),
                vec![("Content-Type", "text/plain")],
                b"{}".to_vec(),
                415,
                "unsupported_media_type",
            ),
            ("POST", "/api/runs".into(), vec![json_type], b"{}".to_vec(), 400, "invalid_request"),
            ("POST", "/api/runs".into(), vec![json_type], br#"{"flow": "nope"}"#.to_vec(), 404, "not_found"),
            ("POST", "/api/runs".into(), vec![json_type], br#"{"flow": "greet", "version": 9}"#.to_vec(), 404, "not_found"),
            (
                "POST",
                "/api/runs".into(),
                vec![json_type],
                br#"{"flow": "greet", "input": {}}"#.to_vec(),
                400,
                "invalid_input",
            ),
            (
                "POST",
                "/api/runs".into(),
                vec![json_type],
                br#"{"flow": "greet", "input": [1]}"#.to_vec(),
                400,
                "invalid_input",
            ),
            (
                "POST",
                "/api/runs".into(),
                vec![json_type],
                br#"{"flow": "greet", "inputs": {}}"#.to_vec(),
                400,
                "invalid_request",
            ),
            (
                "POST",
                "/api/runs".into(),
                vec![json_type],
                br#"{"flow": "greet", "input": {"who": "x"}, "quotas": {"wall_time_ms": -1}}"#.to_vec(),
                400,
                "invalid_quotas",
            ),
            (
                "POST",
                "/api/runs".into(),
                vec![json_type],
                br#"{"flow": "greet", "input": {"who": "x"}, "quotas": {"wall_time_ms": 0}}"#.to_vec(),
                400,
                "invalid_quotas",
            ),
            (
                "POST",
                "/api/runs".into(),
                vec![json_type],
                br#"{"flow": "greet", "input": {"who": "x"}, "quotas": {"forever": 1}}"#.to_vec(),
                400,
                "invalid_quotas",
            ),
            (
                "POST",
                "/api/runs".into(),
                vec![json_type],
                br#"{"flow": "greet", "input": {"who": "x"}, "quotas": 5}"#.to_vec(),
                400,
                "invalid_quotas",
            ),
            ("POST", "/api/runs".into(), vec![json_type], big_input.into_bytes(), 413, "input_too_large"),
            (
                "POST",
                "/api/runs".into(),
                vec![json_type],
                json!({"source": two_flows}).to_string().into_bytes(),
                400,
                "ambiguous_flow",
            ),
            (
                "POST",
                "/api/runs".into(),
                vec![json_type],
                json!({"source": "def f(:"}).to_string().into_bytes(),
                400,
                "invalid_flow",
            ),
            (
                "POST",
                "/api/runs?wait=maybe".into(),
                vec![json_type],
                br#"{"flow": "greet"}"#.to_vec(),
                400,
                "invalid_query",
            ),
            ("GET", "/api/runs?status=bogus".into(), vec![], vec![], 400, "invalid_query"),
            ("GET", "/api/runs?limit=0".into(), vec![], vec![], 400, "invalid_query"),
            ("GET", "/api/runs?limit=many".into(), vec![], vec![], 400, "invalid_query"),
            ("GET", "/api/runs/nope".into(), vec![], vec![], 404, "not_found"),
            ("GET", "/api/runs/nope/spans".into(), vec![], vec![], 404, "not_found"),
            ("GET", "/api/runs/nope/logs".into(), vec![], vec![], 404, "not_found"),
            ("GET", "/api/runs/nope/otlp".into(), vec![], vec![], 404, "not_found"),
            ("POST", "/api/runs/nope/cancel".into(), vec![], vec![], 404, "not_found"),
            ("POST", format!("/api/runs/{run_id}/cancel"), vec![], vec![], 409, "already_finished"),
            ("GET", "/api/flows/nope".into(), vec![], vec![], 404, "not_found"),
            ("GET", "/api/flows/greet?version=7".into(), vec![], vec![], 404, "not_found"),
            ("DELETE", "/api/flows/nope".into(), vec![], vec![], 404, "not_found"),
            ("PUT", "/api/flows".into(), vec![], vec![], 405, "method_not_allowed"),
            ("GET", "/api/nothing".into(), vec![], vec![], 404, "not_found"),
        ];
        for (method, path, headers, body, status, code) in cases {
            let response = request(&server.addr, method, &path, &headers, &body);
            let label = format!("{method} {path} {}", String::from_utf8_lossy(&body[..body.len().min(60)]));
            assert_eq!(response.status, status, "{label}: {}", response.text());
            let error = response.json();
            assert_eq!(error["error"]["code"], code, "{label}: {error}");
            assert!(error["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{label}: {error}");
        }
        let syntax = server.upload("from hero_logic import flow\n\n@flow()\ndef f(:\n").json();
        assert_eq!(syntax["error"]["line"], 4, "a syntax error names its line");
        let after =
            (server.get("/api/flows").json(), server.get("/api/runs").json(), server.get("/api/flows/greet").json());
        assert_eq!(after, before, "nothing stored changed");
        assert!(tungstenite::connect(format!("ws://{}/api/runs/nope/events", server.addr)).is_err());
    }

    #[test]
    fn listening_beyond_loopback_without_a_token_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let output = crate::integration::support::hero_logic()
            .args(["serve", "--addr", "0.0.0.0:0", "--data-dir"])
            .arg(dir.path())
            .env_remove("HERO_LOGIC_TOKEN")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("refusing to listen on 0.0.0.0:0 without a token"), "{stderr}");
    }

    #[test]
    fn the_run_list_stream_announces_runs() {
        let server = Server::start(&[]);
        let (mut socket, _) = tungstenite::connect(format!("ws://{}/api/events", server.addr)).unwrap();
        let run = server.post_json("/api/runs?wait=true", &json!({"source": GREET, "input": {"who": "x"}})).json();
        let mut kinds = Vec::new();
        while kinds.len() < 3 {
            if let tungstenite::Message::Text(text) = socket.read().unwrap() {
                let event: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(event["run"]["run_id"], run["run_id"]);
                kinds.push(event["type"].as_str().unwrap().to_string());
            }
        }
        assert_eq!(kinds, ["run_queued", "run_started", "run_finished"]);
    }

    #[test]
    fn a_module_is_checked_without_being_stored_and_a_run_has_its_source() {
        let server = Server::start(&[]);
        let checked = server.request("POST", "/api/check", &[], GREET.as_bytes());
        assert_eq!(checked.status, 200);
        let checked = checked.json();
        assert_eq!((checked["valid"].clone(), checked["flows"][0]["name"].clone()), (json!(true), json!("greet")));
        assert_eq!(checked["flows"][0]["inputs"]["who"]["type"], "string");
        assert_eq!(server.get("/api/flows/greet").status, 404, "checking stores nothing");

        let broken = server.request("POST", "/api/check", &[], b"from hero_logic import flow\n\n@flow()\ndef f(:\n");
        assert_eq!(broken.status, 200, "an invalid module is an answer, not a failed request");
        let broken = broken.json();
        assert_eq!((broken["valid"].clone(), broken["error"]["line"].clone()), (json!(false), json!(4)));
        assert!(broken["error"]["message"].as_str().unwrap().contains("line 4"), "{broken}");

        let ran = server.post_json("/api/runs?wait=true", &json!({"source": GREET, "input": {"who": "ada"}})).json();
        let source = server.get(&format!("/api/runs/{}/source", ran["run_id"].as_str().unwrap())).json();
        assert_eq!(source["source"], GREET);
        assert_eq!(server.get("/api/runs/no-such-run/source").status, 404);
    }



    #[test]
    fn a_live_run_keeps_only_its_newest_events_and_a_late_watcher_still_gets_them_all() {
        // Wall time enough for a loaded machine: the run must still be live
        // when the late watcher joins.
        let server = Server::start(&["--wall-time", "600"]);
        let steps = 1000;
        let body = json!({"source": MANY_THEN_WAIT, "input": {"steps": steps}, "quotas": {"wall_time_ms": 600_000}});
        let run_id = server.start_run(body);
        // The run span, then each step's start, log line and end.
        let published = 1 + 3 * steps;
        let mut early = server.events(&run_id, 0);
        let seen: Vec<Value> = (0..published).map(|_| early.next().expect("an event")).collect();
        let bytes: usize = seen.iter().map(|e| e.to_string().len()).sum();
        assert!(bytes > 2 << 20, "the run published {bytes} bytes: more than a tail holds");

        let held = stream_tail_bytes(&server);
        assert!(held <= 1 << 20, "a live run keeps at most 1 MiB of events, not all {bytes}: {held}");

        let mut late = server.events(&run_id, 0);
        let replayed: Vec<Value> = (0..published).map(|_| late.next().expect("an event")).collect();
        let seqs: Vec<u64> = replayed.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, (1..=published as u64).collect::<Vec<_>>(), "no gap, no duplicate");
        for (watched, got) in seen.iter().zip(&replayed) {
            assert_eq!(
                (&watched["type"], &watched["span_id"], &watched["line"]),
                (&got["type"], &got["span_id"], &got["line"])
            );
            if watched["type"] == "span_ended" {
                assert_eq!(watched, got, "an ended span reads the same from the store as live");
            }
        }
        let mut middle = server.events(&run_id, published as u64 - 5);
        let next = middle.next().unwrap();
        assert_eq!(next["seq"], published as u64 - 4, "a re-join from a seq inside the tail");

        let response = server.request("POST", &format!("/api/runs/{run_id}/cancel"), &[], b"");
        assert_eq!(response.status, 202, "{}", response.text());
        for watcher in [&mut early, &mut late] {
            let rest = watcher.all();
            assert_eq!(rest.last().unwrap()["type"], "run_finished", "{rest:?}");
            assert_eq!(rest.last().unwrap()["status"], "cancelled");
        }
        eventually("the tail to be given back", || stream_tail_bytes(&server) == 0);
    }

    #[test]
    fn the_quota_table_names_every_quota_with_its_default_and_this_servers_maximum() {
        let server = Server::start(&["--max-spans", "50", "--wall-time", "2.5", "--memory-mb", "64"]);
        let table = server.get("/api/quotas").json();
        let rows = table.as_array().unwrap();
        let row = |name: &str| rows.iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("{name} in {table}"));
        assert_eq!(
            (row("spans")["default"].clone(), row("spans")["max"].clone(), row("spans")["field"].clone()),
            (json!(10_000), json!(50), json!("spans"))
        );
        assert_eq!(
            (row("wall_time")["max"].clone(), row("wall_time")["field"].clone()),
            (json!(2500), json!("wall_time_ms"))
        );
        assert_eq!(
            (row("memory")["max"].clone(), row("memory")["usage"].clone()),
            (json!(64 << 20), json!("peak_memory_bytes"))
        );
        // Each row's field is a field of a run's quotas, and its usage one of a run's usage.
        let run = server.post_json("/api/runs?wait=true", &json!({"source": GREET, "input": {"who": "x"}})).json();
        for row in rows {
            assert!(run["quotas"].get(row["field"].as_str().unwrap()).is_some(), "{row}");
            if let Some(usage) = row["usage"].as_str() {
                assert!(run["usage"].get(usage).is_some(), "{row}");
            }
        }
        assert_eq!(run["quotas"]["spans"], 50, "a run gets no more than the maximum");
    }
}

/// `--log-format json`: every line the server logs is one JSON object with
/// its time, level, target and message; an unknown format is refused at
/// once, in one line.
#[test]
fn log_lines_can_be_json_objects_one_a_line() {
    let mut server = Server::start_logging(&["--log-format", "json"]);
    let upload = server.request("POST", "/api/flows", &[], GREET.as_bytes());
    assert_eq!(upload.status, 201, "{}", upload.text());
    let run = server.post_json("/api/runs?wait=true", &json!({"flow": "greet", "input": {"who": "ada"}}));
    assert_eq!(run.status, 200, "{}", run.text());
    assert!(server.terminate().success());
    let log = std::fs::read_to_string(server.log.as_ref().unwrap()).unwrap();
    let lines: Vec<&str> = log.lines().filter(|line| !line.trim().is_empty()).collect();
    assert!(lines.len() >= 3, "a debug-level server logs its start, the run and its stop: {log}");
    for line in &lines {
        let object: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for field in ["timestamp", "level", "target"] {
            assert!(object[field].is_string(), "{field} in {line}");
        }
        assert!(object["fields"].is_object(), "fields in {line}");
    }
    assert!(lines.iter().any(|line| line.contains("\"message\"")), "{log}");

    let refused =
        super::support::hero_logic().args(["serve", "--addr", "127.0.0.1:0", "--log-format", "xml"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("xml"), "{stderr}");
}
