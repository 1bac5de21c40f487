//! The six built-in flows, loaded at start, run against the real example
//! service; and the library search they rely on, held to an evaluation set.

use super::server_support::Server;
use super::services::{Killed, Weather, register, spawn_service};
use serde_json::{Value, json};

const WEATHER_REPORT: &str = include_str!("../../examples/flows/weather_report.py");
const GREET: &str = include_str!("../../examples/flows/greet.py");

fn run(server: &Server, flow: &str, input: Value) -> Value {
    let response = server.post_json("/api/runs?wait=true", &json!({"flow": flow, "input": input}));
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

/// The names of the root's direct children, in order.
fn children(spans: &[Value]) -> Vec<String> {
    let root = &spans[0]["span_id"];
    spans.iter().filter(|s| &s["parent_id"] == root).map(|s| s["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn the_six_are_stored_at_start_and_not_again_on_restart() {
    let mut server = Server::start(&[]);
    let names: Vec<(String, u64)> = server.get("/api/flows").json()["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap().to_string(), f["version"].as_u64().unwrap()))
        .collect();
    let expected =
        ["benchmark_flow", "optimize_flow", "pick_version_flow", "service_agent", "service_check", "service_code_gen"];
    assert_eq!(names, expected.iter().map(|n| (n.to_string(), 1)).collect::<Vec<_>>());
    server.kill();
    let data_dir = server.data_dir.clone();
    let again = Server::start_on(&data_dir, &[]);
    assert!(again.get("/api/flows").json()["flows"].as_array().unwrap().iter().all(|f| f["version"] == 1));
}

#[test]
fn service_check_reports_which_services_answer() {
    let weather = Weather::http();
    let server = Server::start(&[]);
    register(&server, "weather", &weather.url, json!({}));
    let document: Value = serde_json::from_str(include_str!("../../examples/services/weather.openrpc.json")).unwrap();
    register(&server, "gone", "http://127.0.0.1:9", json!({"openrpc": document, "timeout_ms": 300}));
    let checked = run(&server, "service_check", json!({}));
    assert_eq!(checked["status"], "ok", "{checked:#}");
    assert_eq!(checked["output"]["checked"], 2);
    assert_eq!(checked["output"]["failing"], json!(["gone"]));
    let weather_report = &checked["output"]["services"][1];
    assert_eq!(weather_report["service"], "weather");
    let methods: Vec<&str> =
        weather_report["checks"].as_array().unwrap().iter().map(|c| c["method"].as_str().unwrap()).collect();
    assert_eq!(methods, ["rpc.discover", "cities"]);
    let spans = server.spans(&checked);
    assert_eq!(children(&spans), ["list", "check gone", "check weather", "summary"]);
    assert!(spans.iter().any(|s| s["name"] == "weather.rpc.discover" && s["status"] == "ok"));
    assert!(spans.iter().any(|s| s["name"] == "gone.rpc.discover" && s["status"] == "failed"));
}

#[test]
fn optimize_flow_reports_where_the_time_goes() {
    let weather = Weather::http();
    let server = Server::start(&[]);
    register(&server, "weather", &weather.url, json!({}));
    server.upload(WEATHER_REPORT);
    for city in ["Ghent", "Oslo", "Lisbon"] {
        assert_eq!(run(&server, "weather_report", json!({"city": city}))["status"], "ok");
    }
    let report = run(&server, "optimize_flow", json!({"flow": "weather_report"}));
    assert_eq!(report["status"], "ok", "{report:#}");
    let output = &report["output"];
    assert_eq!(output["runs"], 3);
    let steps: Vec<&str> = output["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    let mut sorted = steps.clone();
    sorted.sort();
    assert_eq!(sorted, ["compare", "forecast", "remember"]);
    assert!(output["rpc_share"].as_f64().unwrap() > 0.0);
    assert_eq!(children(&server.spans(&report)), ["recent runs", "read spans", "rank", "suggest"]);

    let none = run(&server, "optimize_flow", json!({"flow": "never_ran"}));
    assert_eq!((none["status"].clone(), none["error"]["type"].clone()), (json!("failed"), json!("Failed")));
}

#[test]
fn benchmark_flow_runs_a_flow_n_times_and_keeps_the_result() {
    let server = Server::start(&[]);
    server.upload(GREET);
    let report = run(&server, "benchmark_flow", json!({"flow": "greet", "runs": 5}));
    assert_eq!(report["status"], "ok", "{report:#}");
    let output = &report["output"];
    assert_eq!((output["runs"].clone(), output["failures"].clone()), (json!(5), json!(0)));
    let (p50, p95, max) =
        (output["p50_ms"].as_f64().unwrap(), output["p95_ms"].as_f64().unwrap(), output["max_ms"].as_f64().unwrap());
    assert!(0.0 < p50 && p50 <= p95 && p95 <= max, "{output}");
    let spans = server.spans(&report);
    assert_eq!(children(&spans), ["inputs", "runs", "report"]);
    assert_eq!(spans.iter().filter(|s| s["kind"] == "subflow" && s["name"] == "greet").count(), 5);
    let input = &spans.iter().find(|s| s["name"] == "inputs").unwrap()["attrs"]["input"];
    assert_eq!(input, &json!({"who": "sample"}), "generated from the declared inputs");
    assert!(spans.iter().any(|s| s["name"] == "kv.set" && s["status"] == "ok"));
}

/// Sleeps, so runs side by side overlap; fails on zero.
const NAP: &str = r#"import time
from hero_logic import flow

@flow(inputs={"seconds": {"type": "number", "default": 0.25}})
def nap(seconds):
    with flow.step("sleep"):
        if seconds == 0:
            raise ValueError("no time to sleep")
        time.sleep(seconds)
    return seconds
"#;

#[test]
fn benchmark_flow_runs_side_by_side_up_to_its_concurrency() {
    let server = Server::start(&[]);
    server.upload(NAP);
    let report = run(&server, "benchmark_flow", json!({"flow": "nap", "runs": 4, "concurrency": 4}));
    assert_eq!(report["status"], "ok", "{report:#}");
    let output = &report["output"];
    assert_eq!((output["concurrency"].clone(), output["failures"].clone()), (json!(4), json!(0)));
    assert!(output["p50_ms"].as_f64().unwrap() >= 250.0, "durations are the subflows' own: {output}");
    assert!(output["runs_per_second"].as_f64().unwrap() > 0.0);
    let spans = server.spans(&report);
    let runs_step = spans.iter().find(|s| s["name"] == "runs").unwrap();
    assert_eq!(runs_step["attrs"]["concurrency"], 4);
    let naps: Vec<&Value> = spans.iter().filter(|s| s["kind"] == "subflow").collect();
    assert_eq!(naps.len(), 4);
    assert!(naps.iter().all(|s| s["parent_id"] == runs_step["span_id"]));
    let last_start = naps.iter().map(|s| s["start_us"].as_i64().unwrap()).max().unwrap();
    let first_end = naps.iter().map(|s| s["end_us"].as_i64().unwrap()).min().unwrap();
    assert!(last_start < first_end, "all four were running at once: {naps:#?}");
    let mut sleep_parents: Vec<u64> =
        spans.iter().filter(|s| s["name"] == "sleep").map(|s| s["parent_id"].as_u64().unwrap()).collect();
    sleep_parents.sort_unstable();
    sleep_parents.dedup();
    assert_eq!(sleep_parents.len(), 4, "each run's step sits in its own subflow");

    let failing =
        run(&server, "benchmark_flow", json!({"flow": "nap", "runs": 3, "concurrency": 3, "input": {"seconds": 0}}));
    assert_eq!(failing["status"], "ok", "{failing:#}");
    assert_eq!(failing["output"]["failures"], 3);
    assert_eq!(
        failing["output"]["failed_runs"][0],
        json!({"run": 0, "type": "ValueError", "message": "no time to sleep"})
    );

    let refused = run(&server, "benchmark_flow", json!({"flow": "nap", "concurrency": 17}));
    assert_eq!(refused["status"], "failed");
    assert_eq!(refused["error"]["message"], "concurrency must be between 1 and 16");
}

#[test]
fn optimize_flow_learns_from_runs_as_a_subflow_too() {
    let server = Server::start(&[]);
    server.upload(NAP);
    let input = json!({"flow": "nap", "runs": 3, "concurrency": 3, "input": {"seconds": 0.01}});
    assert_eq!(run(&server, "benchmark_flow", input)["status"], "ok");
    assert_eq!(run(&server, "nap", json!({"seconds": 0.01}))["status"], "ok");
    let report = run(&server, "optimize_flow", json!({"flow": "nap"}));
    assert_eq!(report["status"], "ok", "{report:#}");
    assert_eq!(report["output"]["runs"], 4, "three as subflows of the benchmark, one alone");
    let steps = report["output"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "only nap's own steps, not the benchmark's: {steps:?}");
    assert_eq!((steps[0]["step"].clone(), steps[0]["count"].clone()), (json!("sleep"), json!(4)));
    let spans = server.spans(&report);
    let recent = spans.iter().find(|s| s["name"] == "recent runs").unwrap();
    assert_eq!(recent["attrs"]["as_subflow"], 3);
}

#[test]
fn pick_version_flow_prefers_correct_then_fast() {
    let server = Server::start(&[]);
    server.upload(GREET);
    server.upload(&GREET.replace("text.upper()", "text.lower()"));
    server.upload(&GREET.replace("text.upper()", "1 / 0"));
    let samples = json!([{"input": {"who": "ada"}, "expected": {"greeting": "HELLO ADA"}}, {"input": {"who": "bob"}}]);
    let picked = run(&server, "pick_version_flow", json!({"flow": "greet", "samples": samples}));
    assert_eq!(picked["status"], "ok", "{picked:#}");
    assert_eq!(picked["output"]["best"], 1);
    let scores: Vec<(u64, u64)> = picked["output"]["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["version"].as_u64().unwrap(), s["correct"].as_u64().unwrap()))
        .collect();
    assert_eq!(scores, [(1, 2), (2, 1), (3, 0)]);
    let spans = server.spans(&picked);
    assert_eq!(children(&spans), ["versions", "version 1", "version 2", "version 3", "pick"]);
    let step = spans.iter().find(|s| s["name"] == "version 2").unwrap();
    assert_eq!((step["attrs"]["correct"].clone(), step["attrs"]["of"].clone()), (json!(1), json!(2)));
}

#[test]
fn service_code_gen_writes_a_valid_flow_from_the_documents() {
    let weather = Weather::http();
    let server = Server::start(&[]);
    register(&server, "weather", &weather.url, json!({}));
    let written = run(&server, "service_code_gen", json!({"request": "the forecast for a city over some days"}));
    assert_eq!(written["status"], "ok", "{written:#}");
    assert_eq!(written["output"]["method"], "forecast");
    let source = written["output"]["source"].as_str().unwrap();
    let uploaded = server.upload(source);
    assert_eq!(uploaded.status, 201, "the written flow is a valid module: {source}");
    let name = written["output"]["flow"].as_str().unwrap();
    let ran = run(&server, name, json!({"city": "Oslo", "days": 2}));
    assert_eq!(ran["output"]["days"].as_array().unwrap().len(), 2, "{ran:#}");
    assert_eq!(children(&server.spans(&written)), ["services", "write", "check"]);
}

/// A stand-in for a third-party OpenAI-compatible chat endpoint (the one
/// part of this test hero_logic does not own): it wants the key, keeps the
/// last request in a file, and answers with a fenced flow.
const CHAT_ENDPOINT: &str = r#"
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

ANSWER = """Here it is:
```python
from hero_logic import flow, services


@flow(name="oslo_outlook", inputs={"days": "integer"}, description="Oslo's outlook.", services=["weather"])
def oslo_outlook(days):
    with flow.step("ask"):
        return services.weather.forecast(city="Oslo", days=days)
```
"""

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Authorization") != "Bearer test-key":
            self.send_response(401); self.end_headers(); return
        with open(sys.argv[1], "wb") as seen:
            seen.write(body)
        reply = json.dumps({"model": "stand-in", "choices": [{"message": {"role": "assistant", "content": ANSWER}}], "usage": {"total_tokens": 7}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass

server = HTTPServer(("127.0.0.1", 0), Handler)
print(f"listening on http://127.0.0.1:{server.server_address[1]}/v1", flush=True)
server.serve_forever()
"#;

#[test]
fn service_code_gen_asks_the_llm_service_through_the_openai_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint_script = dir.path().join("chat_endpoint.py");
    std::fs::write(&endpoint_script, CHAT_ENDPOINT).unwrap();
    let seen = dir.path().join("seen.json");
    let (endpoint, endpoint_url) = spawn_service(endpoint_script.to_str().unwrap(), &[seen.to_str().unwrap()], &[]);
    let _endpoint = Killed(endpoint);
    let adapter_script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/services/llm_openai.py");
    let (adapter, adapter_url) = spawn_service(
        adapter_script,
        &["--port", "0", "--url", &endpoint_url, "--model", "small-model"],
        &[("LLM_API_KEY", "test-key")],
    );
    let _adapter = Killed(adapter);
    let weather = Weather::http();
    let server = Server::start(&[]);
    register(&server, "weather", &weather.url, json!({}));
    assert_eq!(register(&server, "llm", &adapter_url, json!({"timeout_ms": 30000})).status, 201);

    let written = run(&server, "service_code_gen", json!({"request": "Oslo's outlook for some days"}));
    assert_eq!(written["status"], "ok", "{written:#}");
    assert_eq!(written["output"]["flow"], "oslo_outlook");
    assert!(written["output"]["source"].as_str().unwrap().starts_with("from hero_logic import flow, services"));
    let spans = server.spans(&written);
    let write = spans.iter().find(|s| s["name"] == "write").unwrap();
    assert_eq!(write["attrs"]["author"], "llm");
    let call = spans.iter().find(|s| s["name"] == "llm.complete").expect("the llm call is an rpc span");
    assert_eq!((call["kind"].clone(), call["status"].clone()), (json!("rpc"), json!("ok")));

    // What reached the endpoint: the model, the request and the services' methods.
    let sent: Value = serde_json::from_slice(&std::fs::read(&seen).unwrap()).unwrap();
    assert_eq!(sent["model"], "small-model");
    let prompt = sent["messages"][0]["content"].as_str().unwrap();
    assert!(prompt.contains("Oslo's outlook") && prompt.contains("forecast"), "{prompt}");
    assert!(!prompt.contains("\"service\": \"llm\""), "the llm is not offered as a service to call");

    // The written flow runs.
    server.upload(written["output"]["source"].as_str().unwrap());
    let ran = run(&server, "oslo_outlook", json!({"days": 2}));
    assert_eq!(ran["output"]["city"], "Oslo", "{ran:#}");
}

#[test]
fn service_agent_searches_the_library_first() {
    let weather = Weather::http();
    let server = Server::start(&[]);
    register(&server, "weather", &weather.url, json!({}));
    server.upload(WEATHER_REPORT);

    // A stored flow matches: the agent runs it with inputs from the request.
    let reused = run(&server, "service_agent", json!({"request": "a weather report forecast for Lisbon"}));
    assert_eq!(reused["status"], "ok", "{reused:#}");
    assert_eq!(reused["output"]["source"], "library");
    assert_eq!(reused["output"]["flow"], "weather_report");
    assert_eq!(reused["output"]["input"], json!({"city": "Lisbon"}));
    let spans_reused = server.spans(&reused);
    assert_eq!(children(&spans_reused)[0], "search library", "the first step is the library search");
    assert_eq!(children(&spans_reused), ["search library", "run match", "summary"]);
    let search = spans_reused.iter().find(|s| s["name"] == "search library").unwrap();
    assert_eq!(search["attrs"]["candidates"][0]["name"], "weather_report");

    // Nothing matches: it has a flow written, stores it, runs it.
    let written = run(&server, "service_agent", json!({"request": "which cities are there"}));
    assert_eq!(written["status"], "ok", "{written:#}");
    assert_eq!(written["output"]["source"], "written");
    assert_eq!(written["output"]["output"], json!(["Ghent", "Lisbon", "Oslo"]));
    let spans_written = server.spans(&written);
    assert_eq!(children(&spans_written), ["search library", "write flow", "run written flow", "summary"]);
    assert!(spans_written.iter().any(|s| s["kind"] == "subflow" && s["name"] == "service_code_gen"));
    assert!(server.get("/api/flows/weather_cities").status == 200, "the written flow is in the library now");
}

#[test]
fn library_search_ranks_what_a_user_would_expect() {
    let server = Server::start(&[]);
    server.upload(WEATHER_REPORT);
    server.upload(GREET);
    let evaluation = [
        ("weather", "weather_report"),
        ("forecast city", "weather_report"),
        ("hello", "greet"),
        ("greeting shout", "greet"),
        ("benchmark", "benchmark_flow"),
        ("slowest steps", "optimize_flow"),
        ("which version is best", "pick_version_flow"),
        ("health of services", "service_check"),
        ("write code for a request", "service_code_gen"),
        ("search the library first", "service_agent"),
        ("forec", "weather_report"),
    ];
    for (query, expected) in evaluation {
        let hits = server.get(&format!("/api/flows/search?q={}", query.replace(' ', "%20"))).json();
        assert_eq!(hits["hits"][0]["name"], expected, "query {query:?}: {hits:#}");
    }
    let snippet = server.get("/api/flows/search?q=gather").json()["hits"][0]["snippet"].as_str().unwrap().to_string();
    assert!(snippet.contains("[gather]"), "{snippet}");
    let bad = server.get("/api/flows/search?q=%22%28%2A");
    assert_eq!((bad.status, bad.json()["error"]["code"].clone()), (400, json!("invalid_query")));
}

#[test]
fn a_flow_named_search_is_reachable_beside_the_search_route() {
    let server = Server::start(&[]);
    let missing = server.get("/api/flows/search");
    assert_eq!((missing.status, missing.json()["error"]["message"].clone()), (404, json!("no flow named 'search'")));
    let source = "from hero_logic import flow\n@flow(description='Look things up.')\ndef search():\n    return 1\n";
    assert_eq!(server.upload(source).status, 201);
    let flow = server.get("/api/flows/search?version=1").json();
    assert_eq!((flow["name"].clone(), flow["version"].clone()), (json!("search"), json!(1)));
    let hits = server.get("/api/flows/search?q=look%20things").json();
    assert_eq!(hits["hits"][0]["name"], "search", "with q it is still a search: {hits:#}");
    let mixed = server.get("/api/flows/search?q=look&version=1");
    assert_eq!((mixed.status, mixed.json()["error"]["code"].clone()), (400, json!("invalid_query")));
    let deleted = server.request("DELETE", "/api/flows/search", &[], b"");
    assert_eq!((deleted.status, deleted.json()["versions_removed"].clone()), (200, json!(1)));
    assert_eq!(server.get("/api/flows/search").status, 404);
}
