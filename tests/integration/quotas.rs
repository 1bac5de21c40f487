//! Every quota, tripped by a flow written to trip it: the run ends with a
//! named status, every span is closed, and the host goes on.

use super::support::{assert_all_closed, run_json, span};
use serde_json::{Value, json};

fn tripped(source: &str, args: &[&str]) -> Value {
    let (code, report) = run_json(source, args);
    assert_eq!(code, 1, "{report:#}");
    assert_all_closed(&report);
    report
}

fn assert_quota(report: &Value, quota: &str) {
    assert_eq!(report["status"], "quota_exceeded", "{report:#}");
    assert_eq!(report["error"]["type"], "QuotaExceeded");
    assert_eq!(report["error"]["quota"], quota);
    assert_eq!(report["spans"][0]["status"], "quota_exceeded");
}

#[test]
fn wall_time_ends_a_sleeping_flow_as_timed_out() {
    let source = r#"import time
from hero_logic import flow

@flow()
def sleepy():
    with flow.step("nap"):
        time.sleep(30)
"#;
    let report = tripped(source, &["--wall-time", "0.3"]);
    assert_eq!(report["status"], "timed_out");
    assert_eq!(report["error"]["quota"], "wall_time");
    assert_eq!(span(&report, "nap")["status"], "timed_out");
    assert!(report["usage"]["wall_time_ms"].as_f64().unwrap() >= 300.0);
}

#[test]
fn wall_time_ends_a_busy_loop_that_catches_everything() {
    let source = r#"from hero_logic import flow

@flow()
def stubborn():
    with flow.step("spin"):
        while True:
            try:
                while True:
                    pass
            except BaseException:
                pass
"#;
    let report = tripped(source, &["--wall-time", "0.3", "--cpu-time", "20"]);
    assert_eq!(report["status"], "timed_out");
    assert_eq!(span(&report, "spin")["status"], "timed_out");
}

#[test]
fn cpu_time_ends_a_busy_loop() {
    let source = r#"from hero_logic import flow

@flow()
def busy():
    with flow.step("spin"):
        try:
            while True:
                pass
        except BaseException:
            return "escaped"
"#;
    let report = tripped(source, &["--cpu-time", "0.2"]);
    assert_quota(&report, "cpu_time");
    assert_eq!(span(&report, "spin")["status"], "quota_exceeded");
    assert!(report["usage"]["cpu_time_ms"].as_u64().unwrap() >= 200);
}

#[test]
fn memory_ends_a_flow_that_keeps_allocating_even_if_it_catches_memory_error() {
    let source = r#"from hero_logic import flow

@flow()
def hog():
    chunks = []
    with flow.step("allocate"):
        while True:
            try:
                chunks.append(bytearray(4 * 1024 * 1024))
            except MemoryError:
                pass
"#;
    let report = tripped(source, &["--memory-mb", "64"]);
    assert_quota(&report, "memory");
    assert_eq!(span(&report, "allocate")["status"], "quota_exceeded");
    let peak = report["usage"]["peak_memory_bytes"].as_u64().unwrap();
    assert!(peak <= 64 << 20 && peak > 32 << 20, "peak {peak}");
}

#[test]
fn memory_too_small_to_start_is_a_quota_not_a_crash() {
    let source = "from hero_logic import flow\n@flow()\ndef f():\n    return 1\n";
    let report = tripped(source, &["--memory-mb", "1"]);
    assert_quota(&report, "memory");
}

#[test]
fn spans_quota_stops_a_flow_opening_too_many() {
    let source = r#"from hero_logic import flow

@flow()
def many():
    for i in range(100):
        with flow.step(f"s{i}"):
            pass
"#;
    let report = tripped(source, &["--max-spans", "5"]);
    assert_quota(&report, "spans");
    assert_eq!(report["spans"].as_array().unwrap().len(), 5, "root + 4 steps");
}

#[test]
fn log_bytes_quota_stops_a_chatty_flow() {
    let source = r#"from hero_logic import flow

@flow()
def chatty():
    with flow.step("talk"):
        while True:
            print("x" * 100)
"#;
    let report = tripped(source, &["--max-log-bytes", "1000"]);
    assert_quota(&report, "log_bytes");
    assert_eq!(report["logs"].as_array().unwrap().len(), 10);
}

#[test]
fn output_bytes_quota_refuses_a_large_result() {
    let source = "from hero_logic import flow\n@flow()\ndef big():\n    return 'y' * 5000\n";
    let report = tripped(source, &["--max-output-bytes", "1000"]);
    assert_quota(&report, "output_bytes");
    assert_eq!(report["output"], json!(null));
}

#[test]
fn rpc_calls_quota_counts_every_call() {
    let source = r#"from hero_logic import flow, services

@flow(services=["weather"])
def caller():
    for i in range(10):
        try:
            services.weather.forecast(city="Ghent")
        except services.UnknownService:
            pass
"#;
    let report = tripped(source, &["--max-rpc-calls", "3"]);
    assert_quota(&report, "rpc_calls");
    assert_eq!(report["usage"]["rpc_calls"], 3);
    let rpc: Vec<_> = report["spans"].as_array().unwrap().iter().filter(|s| s["kind"] == "rpc").collect();
    assert_eq!(rpc.len(), 3);
    assert_eq!(rpc[0]["name"], "weather.forecast");
    assert_eq!(rpc[0]["status"], "failed");
    assert_eq!(rpc[0]["error"]["type"], "UnknownService");
    assert_eq!(rpc[0]["attrs"]["params"], json!({"city": "Ghent"}));
}

#[test]
fn input_bytes_quota_is_checked_before_the_flow_starts() {
    let source = "from hero_logic import flow\n@flow(inputs={'text': 'string'})\ndef f(text):\n    return len(text)\n";
    let input = json!({"text": "z".repeat(2000)}).to_string();
    let report = tripped(source, &["--input", &input, "--max-input-bytes", "1000"]);
    assert_quota(&report, "input_bytes");
    assert_eq!(report["spans"].as_array().unwrap().len(), 1);
}

#[test]
fn subflow_depth_quota_stops_unbounded_recursion() {
    let source = r#"from hero_logic import flow

@flow(inputs={"n": "integer"})
def dive(n):
    with flow.step(f"level{n}"):
        return flow.invoke("dive", n=n + 1)
"#;
    let report = tripped(source, &["--input", r#"{"n": 0}"#, "--max-subflow-depth", "3"]);
    assert_quota(&report, "subflow_depth");
    let subflows = report["spans"].as_array().unwrap().iter().filter(|s| s["kind"] == "subflow").count();
    assert_eq!(subflows, 3);
    assert_eq!(span(&report, "level3")["status"], "quota_exceeded");
}
