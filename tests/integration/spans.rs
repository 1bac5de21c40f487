//! The span tree the host records: nesting, attributes, logs, failures.

use super::support::{assert_all_closed, run_json, span};
use serde_json::{Value, json};

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
fn a_step_closes_the_steps_left_open_inside_it() {
    let source = r#"from hero_logic import flow

@flow()
def sloppy():
    with flow.step("outer"):
        flow.step("inner").__enter__()
    with flow.step("after"):
        pass
    return "done"
"#;
    let (code, report) = run_json(source, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["status"], "ok");
    let inner = span(&report, "inner");
    assert_eq!(inner["status"], "failed");
    assert_eq!(inner["error"]["type"], "SpanLeftOpen");
    assert_eq!(inner["parent_id"], span(&report, "outer")["span_id"]);
    assert_eq!(span(&report, "outer")["status"], "ok");
    assert_eq!(span(&report, "after")["status"], "ok");
    assert_eq!(span(&report, "after")["parent_id"], report["spans"][0]["span_id"]);
}

const DEEP: &str = r#"from hero_logic import flow

@flow(name="deep")
def deep():
    def down(n):
        with flow.step(f"level {n}"):
            return down(n + 1)
    return down(0)
"#;

#[test]
fn deep_recursion_through_steps_ends_as_a_recursion_error_with_its_traceback() {
    let (code, report) = run_json(DEEP, &[]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["status"], "failed");
    let error = &report["error"];
    assert_eq!(error["type"], "RecursionError", "{error:#}");
    assert!([6, 7].contains(&error["line"].as_u64().unwrap()), "{error:#}");
    let traceback = error["traceback"].as_str().unwrap();
    assert!(traceback.contains("line 8, in deep"), "{traceback}");
    assert!(traceback.contains("line 7, in down\n    return down(n + 1)"), "{traceback}");
    assert!(traceback.contains("[Previous line repeated "), "{traceback}");
    assert!(traceback.trim_end().ends_with("RecursionError: maximum recursion depth exceeded"), "{traceback}");

    // Every level's step is closed, failed with the same error, each inside
    // the one before.
    assert_all_closed(&report);
    let steps: Vec<&Value> = report["spans"].as_array().unwrap().iter().filter(|s| s["kind"] == "step").collect();
    assert!(steps.len() > 100, "{} steps", steps.len());
    let mut parent = &report["spans"][0];
    for (level, step) in steps.iter().enumerate() {
        assert_eq!(step["name"], format!("level {level}"));
        assert_eq!(step["parent_id"], parent["span_id"]);
        assert_eq!(step["status"], "failed", "{step:#}");
        assert_eq!(step["error"]["type"], "RecursionError", "{step:#}");
        parent = step;
    }
}

#[test]
fn a_flow_that_catches_deep_recursion_through_steps_goes_on() {
    let source = DEEP.replace(
        "    return down(0)\n",
        r#"    try:
        down(0)
    except RecursionError:
        pass
    with flow.step("after"):
        pass
    return random._os.sys.getrecursionlimit()
"#,
    );
    let (code, report) = run_json(&format!("import random\n{source}"), &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["output"], 1000, "the recursion limit is back where it was");
    let after = span(&report, "after");
    assert_eq!(after["status"], "ok");
    assert_eq!(after["parent_id"], report["spans"][0]["span_id"]);
    assert_all_closed(&report);
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

/// Flows for `flow.invoke_many`: `nap` sleeps inside two nested steps, so
/// subflows running side by side overlap in time.
const SIDE_BY_SIDE: &str = r#"import time
from hero_logic import flow

@flow(inputs={"i": "integer"})
def nap(i):
    with flow.step(f"outer{i}"):
        with flow.step(f"inner{i}"):
            print(f"napping {i}")
            time.sleep(0.3)
    if i == 2:
        raise ValueError("two is broken")
    return i * 10

@flow(inputs={"concurrency": "integer"})
def fan_out(concurrency):
    with flow.step("fan"):
        results = flow.invoke_many([("nap", {"i": i}) for i in range(4)] + [("missing", {})], concurrency=concurrency)
    try:
        results[2].result()
    except flow.SubflowFailed as failure:
        raised = failure.error["message"]
    return {
        "outputs": [r.output for r in results],
        "ok": [r.ok for r in results],
        "raised": raised,
        "missing": [type(results[4].error).__name__, results[4].span_id],
        "timed": all(r.duration_ms >= 300 for r in results[:4]),
        "span_ids": [r.span_id for r in results[:4]],
    }
"#;

fn subflow_spans(report: &Value) -> Vec<&Value> {
    report["spans"].as_array().unwrap().iter().filter(|s| s["kind"] == "subflow").collect()
}

fn overlaps(a: &Value, b: &Value) -> bool {
    a["start_us"].as_i64() < b["end_us"].as_i64() && b["start_us"].as_i64() < a["end_us"].as_i64()
}

#[test]
fn invoke_many_runs_subflows_side_by_side_each_with_its_own_tree() {
    let (code, report) = run_json(SIDE_BY_SIDE, &["--flow", "fan_out", "--input", r#"{"concurrency": 4}"#]);
    assert_eq!(code, 0, "{report:#}");
    let output = &report["output"];
    assert_eq!(output["outputs"], json!([0, 10, null, 30, null]));
    assert_eq!(output["ok"], json!([true, true, false, true, false]));
    assert_eq!(output["raised"], "two is broken");
    assert_eq!(output["missing"], json!(["LookupError", null]), "an unknown flow is refused before any span");
    assert_eq!(output["timed"], true);
    assert_all_closed(&report);

    let fan = span(&report, "fan");
    let subflows = subflow_spans(&report);
    assert_eq!(subflows.len(), 4);
    let ids: Vec<&Value> = subflows.iter().map(|s| &s["span_id"]).collect();
    assert_eq!(output["span_ids"].as_array().unwrap().iter().collect::<Vec<_>>(), ids);
    for (i, subflow) in subflows.iter().enumerate() {
        assert_eq!(subflow["parent_id"], fan["span_id"], "every subflow sits beside the others under the step");
        assert_eq!(subflow["attrs"]["input"], json!({"i": i}));
        let outer = span(&report, &format!("outer{i}"));
        let inner = span(&report, &format!("inner{i}"));
        assert_eq!(outer["parent_id"], subflow["span_id"], "each subflow's steps stay in its own branch");
        assert_eq!(inner["parent_id"], outer["span_id"]);
        let logs: Vec<&Value> =
            report["logs"].as_array().unwrap().iter().filter(|l| l["span_id"] == inner["span_id"]).collect();
        assert_eq!(logs.len(), 1, "log lines go to the writer's own step: {logs:?}");
        assert_eq!(logs[0]["text"], format!("napping {i}"));
    }
    assert_eq!(subflows[2]["status"], "failed");
    assert_eq!(subflows[2]["error"]["type"], "ValueError");
    assert!(overlaps(subflows[0], subflows[3]), "four at once: the first and the last overlap");
    assert_eq!(report["usage"]["subflows"], 4);
}

#[test]
fn invoke_many_keeps_to_its_concurrency() {
    let (code, report) = run_json(SIDE_BY_SIDE, &["--flow", "fan_out", "--input", r#"{"concurrency": 2}"#]);
    assert_eq!(code, 0, "{report:#}");
    let subflows = subflow_spans(&report);
    assert!(overlaps(subflows[0], subflows[1]), "two at once");
    // The third starts only when one of the first two has ended.
    let first_end = subflows[..2].iter().map(|s| s["end_us"].as_i64().unwrap()).min().unwrap();
    assert!(subflows[2]["start_us"].as_i64().unwrap() >= first_end, "{subflows:#?}");
    assert!(!subflows.iter().skip(2).any(|s| overlaps(s, subflows[0]) && overlaps(s, subflows[1])));
}

#[test]
fn a_quota_in_one_of_many_subflows_ends_the_run_and_closes_every_branch() {
    let source = r#"import time
from hero_logic import flow

@flow(inputs={"i": "integer"})
def work(i):
    with flow.step(f"work{i}"):
        if i == 1:
            time.sleep(0.5)  # the others are asleep by now
            for n in range(1000):
                with flow.step("tiny"):
                    pass
        time.sleep(600)

@flow()
def many():
    with flow.step("fan"):
        flow.invoke_many([("work", {"i": i}) for i in range(3)], concurrency=3)
    return "unreachable"
"#;
    let (code, report) = run_json(source, &["--flow", "many", "--max-spans", "50"]);
    assert_ne!(code, 0);
    assert_eq!(report["status"], "quota_exceeded", "{report:#}");
    assert_eq!(report["error"]["quota"], "spans");
    assert_all_closed(&report);
    for i in [0, 2] {
        assert_eq!(span(&report, &format!("work{i}"))["status"], "quota_exceeded", "the other branches stop too");
    }
    // Not `timed_out`: the sleeping subflows were dropped, not waited for.
}
