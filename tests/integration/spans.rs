//! The span tree the host records: nesting, attributes, logs, failures.

use super::support::{assert_all_closed, run_json, span};
use serde_json::json;

#[test]
fn nested_steps_carry_attributes_lines_and_logs() {
    let source = r#"from hero_logic import flow

@flow(name="nest", inputs={"n": "integer"})
def nest(n):
    with flow.step("outer", n=n) as outer:
        print("in outer")
        with flow.step("inner", depth=2) as inner:
            flow.log("computing", n * 2)
            inner.set(result=n * 2)
        outer.set(done=True)
    return {"twice": n * 2}
"#;
    let (code, report) = run_json(source, &["--input", r#"{"n": 21}"#]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["status"], "ok");
    assert_eq!(report["output"], json!({"twice": 42}));
    assert_eq!(report["error"], json!(null));

    let root = span(&report, "nest");
    let outer = span(&report, "outer");
    let inner = span(&report, "inner");
    assert_eq!(root["kind"], "flow");
    assert_eq!(root["parent_id"], json!(null));
    assert_eq!(outer["kind"], "step");
    assert_eq!(outer["parent_id"], root["span_id"]);
    assert_eq!(inner["parent_id"], outer["span_id"]);
    assert_eq!(outer["attrs"], json!({"n": 21, "done": true}));
    assert_eq!(inner["attrs"], json!({"depth": 2, "result": 42}));
    assert_eq!(outer["line"], 5);
    assert_eq!(inner["line"], 7);
    assert!(inner["start_us"].as_i64() >= outer["start_us"].as_i64());
    assert!(inner["end_us"].as_i64() <= outer["end_us"].as_i64());

    let logs = report["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 2, "{logs:#?}");
    assert_eq!((logs[0]["stream"].clone(), logs[0]["text"].clone()), (json!("stdout"), json!("in outer")));
    assert_eq!(logs[0]["span_id"], outer["span_id"]);
    assert_eq!((logs[1]["stream"].clone(), logs[1]["text"].clone()), (json!("log"), json!("computing 42")));
    assert_eq!(logs[1]["span_id"], inner["span_id"]);

    // The root's attrs and the report carry what the run used.
    assert_eq!(root["attrs"]["usage"], report["usage"]);
    assert_eq!(report["usage"]["spans"], 3);
    assert_eq!(report["usage"]["log_bytes"], "in outer".len() + "computing 42".len());
    assert!(report["usage"]["peak_memory_bytes"].as_u64().unwrap() > 1 << 20);
}

#[test]
fn an_exception_in_a_step_fails_the_step_and_the_run_with_traceback_and_line() {
    let source = r#"from hero_logic import flow

def helper(x):
    return 10 / x

@flow()
def divide():
    with flow.step("ok-step"):
        pass
    with flow.step("do-divide", by=0):
        helper(0)
    return "never"
"#;
    let (code, report) = run_json(source, &[]);
    assert_eq!(code, 1);
    assert_eq!(report["status"], "failed");
    let error = &report["error"];
    assert_eq!(error["type"], "ZeroDivisionError");
    assert_eq!(error["message"], "division by zero");
    assert_eq!(error["line"], 4, "the innermost line of the flow's own code");
    let traceback = error["traceback"].as_str().unwrap();
    assert!(traceback.starts_with("Traceback (most recent call last):"), "{traceback}");
    assert!(traceback.contains("line 11, in divide") && traceback.contains("helper(0)"), "{traceback}");
    assert!(traceback.contains("return 10 / x"), "{traceback}");
    assert!(traceback.trim_end().ends_with("ZeroDivisionError: division by zero"), "{traceback}");
    assert!(!traceback.contains("hero_logic/"), "SDK frames are left out: {traceback}");

    assert_eq!(span(&report, "ok-step")["status"], "ok");
    let failed = span(&report, "do-divide");
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["type"], "ZeroDivisionError");
    assert_eq!(failed["attrs"], json!({"by": 0}));
    assert_eq!(failed["line"], 10);
    assert_eq!(failed["line"], 10);
    let root = &report["spans"][0];
    assert_eq!(root["status"], "failed");
    assert_eq!(root["error"], report["error"]);
    assert_all_closed(&report);
}

#[test]
fn flow_failed_ends_the_run_with_the_reason_and_no_traceback() {
    let source = r#"from hero_logic import flow

@flow()
def refuse():
    with flow.step("check"):
        raise flow.Failed("the order is already shipped")
"#;
    let (code, report) = run_json(source, &[]);
    assert_eq!(code, 1);
    assert_eq!(report["status"], "failed");
    assert_eq!(report["error"]["type"], "Failed");
    assert_eq!(report["error"]["message"], "the order is already shipped");
    assert_eq!(report["error"]["traceback"], json!(null));
    assert_eq!(report["error"]["line"], 6);
    assert_eq!(span(&report, "check")["status"], "failed");
}

#[test]
fn a_span_the_flow_leaves_open_is_closed_by_the_host() {
    let source = r#"from hero_logic import flow

@flow()
def leaky():
    flow.step("never-closed").__enter__()
    flow.step("nested-open").__enter__()
    return "done"
"#;
    let (code, report) = run_json(source, &[]);
    assert_eq!(code, 0, "the run itself finished: {report:#}");
    assert_eq!(report["status"], "ok");
    assert_all_closed(&report);
    for name in ["never-closed", "nested-open"] {
        let open = span(&report, name);
        assert_eq!(open["status"], "failed");
        assert_eq!(open["error"]["type"], "SpanLeftOpen");
    }
    assert_eq!(span(&report, "nested-open")["parent_id"], span(&report, "never-closed")["span_id"]);
}

#[test]
fn a_flow_cannot_close_a_span_it_does_not_own() {
    // Hostile code can reach the raw host functions through the SDK's module;
    // the host still refuses to let it close the root span.
    let source = r#"from hero_logic._host import host
from hero_logic import flow

@flow()
def forge():
    host.span_end(1, "ok", "{}", None)
"#;
    let (code, report) = run_json(source, &[]);
    assert_eq!(code, 1);
    assert_eq!(report["error"]["type"], "HostCallRejected", "{report:#}");
    assert_all_closed(&report);
}

#[test]
fn output_that_is_not_json_is_a_clear_failure() {
    let source = "from hero_logic import flow\n@flow()\ndef f():\n    return {1, 2}\n";
    let (code, report) = run_json(source, &[]);
    assert_eq!(code, 1);
    assert_eq!(report["error"]["type"], "OutputError");
    assert!(report["error"]["message"].as_str().unwrap().contains("not JSON"));
}

#[test]
fn subflows_in_the_same_module_nest_under_a_subflow_span() {
    let source = r#"from hero_logic import flow

@flow(inputs={"x": "integer"})
def double(x):
    with flow.step("mul"):
        return x * 2

@flow(inputs={"x": "integer"})
def broken(x):
    raise ValueError(f"bad {x}")

@flow()
def parent():
    with flow.step("call"):
        four = flow.invoke("double", x=2)
    try:
        flow.invoke("broken", x=7)
    except flow.SubflowFailed as failure:
        caught = failure.error["message"]
    return {"four": four, "caught": caught}
"#;
    let (code, report) = run_json(source, &["--flow", "parent"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["output"], json!({"four": 4, "caught": "bad 7"}));
    let call = span(&report, "call");
    let double = span(&report, "double");
    assert_eq!(double["kind"], "subflow");
    assert_eq!(double["parent_id"], call["span_id"]);
    assert_eq!(double["line"], 15);
    assert_eq!(span(&report, "mul")["parent_id"], double["span_id"]);
    let broken = span(&report, "broken");
    assert_eq!(broken["status"], "failed");
    assert_eq!(broken["error"]["type"], "ValueError");
    assert_eq!(report["usage"]["subflows"], 2);
}
