//! A Python str may hold a lone surrogate ("\ud800"), which has no UTF-8
//! form, and every string crossing to the host is UTF-8: such strings load,
//! run and arrive with U+FFFD in place of each lone surrogate, never trap.

use super::support::{assert_all_closed, run_json, span};
use serde_json::json;

#[test]
fn a_module_with_lone_surrogates_in_its_literals_and_docstrings_loads_and_runs() {
    let source = r#""""A module docstring with \ud800 in it."""
from hero_logic import flow

x = "\ud800"


@flow(description="says \udfff", inputs={"a": {"type": "string", "default": "d\ud800", "description": "in \udc00"}})
def lone(a):
    """A flow docstring with \ud800 in it."""
    with flow.step("named \ud800"):
        pass
    return {"a": a, "x": x, "doc": lone.__doc__}
"#;
    let (code, report) = run_json(source, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["status"], "ok");
    assert_eq!(
        report["output"],
        json!({"a": "d\u{fffd}", "x": "\u{fffd}", "doc": "A flow docstring with \u{fffd} in it."})
    );
    assert_eq!(span(&report, "named \u{fffd}")["status"], "ok");
}

#[test]
fn outputs_logs_steps_and_calls_with_lone_surrogates_arrive_replaced() {
    let source = r#"from hero_logic import flow, services


@flow(inputs={"x": "string"})
def echo(x):
    return x


@flow()
def chatty():
    print("printed \ud800")
    flow.log("logged", "\udfff")
    with flow.step("step \ud800", attr="v\ud800", **{"k\udc00": 1}) as s:
        s.set(late="\ud83d" + "\ude00")
    one = flow.invoke("echo", x="in \ud800")
    many = flow.invoke_many([("echo", {"x": "many \udfff"})])[0].result()
    try:
        flow.invoke("no such \ud800")
    except LookupError as e:
        unknown = str(e)
    try:
        services.call("svc\ud800", "m\ud800", p="\ud800")
    except PermissionError as e:
        refused = str(e)
    return {"out\ud800": "a\ud800b", "pair": "\ud83d\ude00", "one": one, "many": many, "unknown": unknown, "refused": refused}
"#;
    let (code, report) = run_json(source, &["--flow", "chatty"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["status"], "ok");
    let output = &report["output"];
    assert_eq!(output["out\u{fffd}"], "a\u{fffd}b");
    assert_eq!(output["pair"], "😀", "a high and a low surrogate side by side are one character");
    assert_eq!(output["one"], "in \u{fffd}");
    assert_eq!(output["many"], "many \u{fffd}");
    assert!(output["unknown"].as_str().unwrap().contains("no such \u{fffd}"), "{output:#}");
    assert!(output["refused"].as_str().unwrap().contains("svc\u{fffd}"), "{output:#}");

    let texts: Vec<&str> = report["logs"].as_array().unwrap().iter().map(|l| l["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["printed \u{fffd}", "logged \u{fffd}"]);
    let step = span(&report, "step \u{fffd}");
    assert_eq!(step["attrs"], json!({"attr": "v\u{fffd}", "k\u{fffd}": 1, "late": "😀"}));
    assert_eq!(span(&report, "svc\u{fffd}.m\u{fffd}")["attrs"]["params"], json!({"p": "\u{fffd}"}));
    assert_all_closed(&report);
}

#[test]
fn an_error_with_a_lone_surrogate_fails_the_run_and_its_step_cleanly() {
    let source = r#"from hero_logic import flow


@flow()
def broken():
    with flow.step("fails"):
        raise ValueError("bad \ud800")
"#;
    let (code, report) = run_json(source, &[]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["status"], "failed");
    assert_eq!(report["error"]["type"], "ValueError");
    assert_eq!(report["error"]["message"], "bad \u{fffd}");
    let traceback = report["error"]["traceback"].as_str().unwrap();
    assert!(traceback.trim_end().ends_with("ValueError: bad \u{fffd}"), "{traceback}");
    let step = span(&report, "fails");
    assert_eq!(step["status"], "failed");
    assert_eq!(step["error"]["message"], "bad \u{fffd}");
    assert_all_closed(&report);
}
