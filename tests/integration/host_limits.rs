//! What a flow, or a module sent to be checked, can make the host do: every
//! instance it causes is charged to it and bounded by the operator's maxima,
//! and a full instance pool makes runs wait, never fail.

use super::server_support::Server;
use serde_json::{Value, json};

/// Sleeps in `n` subflows side by side.
const FAN_OUT: &str = r#"import time
from hero_logic import flow


@flow(name="fan_out", inputs={"n": "integer"})
def fan_out(n):
    results = flow.invoke_many([("nap", {"i": i}) for i in range(n)], concurrency=n)
    return [r.result() for r in results]


@flow(name="nap", inputs={"i": "integer"})
def nap(i):
    time.sleep(0.3)
    return i
"#;

#[test]
fn a_full_instance_pool_makes_runs_wait_instead_of_failing() {
    // Two runs of five subflows each need twelve instances; the pool has six.
    let server = Server::start(&["--max-instances", "6", "--max-concurrent", "2"]);
    let runs: Vec<Value> = std::thread::scope(|scope| {
        let started: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| server.run_wait(json!({"source": FAN_OUT, "flow": "fan_out", "input": {"n": 5}}))))
            .collect();
        started.into_iter().map(|run| run.join().unwrap()).collect()
    });
    for run in runs {
        assert_eq!(run["status"], "ok", "{run}");
        assert_eq!(run["output"], json!([0, 1, 2, 3, 4]));
    }
}

#[test]
fn more_runs_at_once_than_instances_is_refused_at_start() {
    let refusal = serve_refusal(&["--max-concurrent", "10", "--max-instances", "5"]);
    assert!(refusal.contains("--max-concurrent 10 is more than --max-instances 5"), "{refusal}");
}

/// What `serve ARGS` says as it refuses to start: exit 2 and one line.
fn serve_refusal(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let output = super::support::hero_logic()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(args)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

/// Asks the `flows` built-in to describe, eight at once, a module that takes
/// 100 MB while it loads.
const DESCRIBE_FLOOD: &str = r#"from hero_logic import flow, services

HEAVY = "big = bytearray(100 * 1024 * 1024)\n"


@flow(name="describe_flood", services=["flows"])
def describe_flood():
    answers = services.gather(*[services.flows.describe.request(source=HEAVY) for _ in range(8)])
    return len(answers)
"#;

#[test]
fn modules_a_flow_has_described_are_charged_to_its_run() {
    let server = Server::start(&[]);
    let run = server.run_wait(json!({"source": DESCRIBE_FLOOD, "input": {}}));
    assert_eq!(run["status"], "quota_exceeded", "{run}");
    assert_eq!(run["error"]["quota"], "memory");
    assert!(run["usage"]["peak_memory_bytes"].as_u64().unwrap() > 100 * 1024 * 1024, "{run}");
    // The server and other runs go on.
    let ok = server.run_wait(json!({"source": FAN_OUT, "flow": "nap", "input": {"i": 7}}));
    assert_eq!(ok["output"], 7);
}

#[test]
fn checking_a_module_obeys_the_operators_maxima() {
    let server = Server::start(&["--cpu-time", "1", "--wall-time", "5"]);
    let spin = "while True:\n    pass\n";
    let checked = server.request("POST", "/api/check", &[], spin.as_bytes()).json();
    assert_eq!(checked["valid"], false, "{checked}");
    let message = checked["error"]["message"].as_str().unwrap();
    assert!(message.contains("cpu_time") && message.contains("1000"), "{message}");

    let uploaded = server.upload(spin);
    assert_eq!(uploaded.status, 400);
    assert!(uploaded.json()["error"]["message"].as_str().unwrap().contains("cpu_time"));

    // A run of source is loaded under the run's own (smaller) quotas.
    let refused = server.post_json("/api/runs", &json!({"source": spin, "input": {}, "quotas": {"cpu_time_ms": 300}}));
    assert_eq!(refused.status, 400, "{}", refused.text());
    let message = refused.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("cpu_time") && message.contains("300"), "{message}");
}

/// Thirty steps, each failing with a 2 MiB exception that the flow catches.
const ERROR_FLOOD: &str = r#"from hero_logic import flow


@flow(name="error_flood")
def error_flood():
    for i in range(30):
        try:
            with flow.step(f"step {i}", note="n" * 100_000):
                raise ValueError("x" * (2 << 20))
        except ValueError:
            pass
    return "survived"
"#;

fn store_bytes(server: &Server) -> u64 {
    // Files SQLite creates and removes as it goes may vanish while listed.
    let entries = std::fs::read_dir(&server.data_dir).unwrap();
    entries.filter_map(|entry| entry.ok()?.metadata().ok()).map(|metadata| metadata.len()).sum()
}

#[test]
fn what_spans_keep_of_a_flows_strings_is_cut_and_counted() {
    let server = Server::start(&[]);
    // Answered only once the store is open (its files are there).
    assert_eq!(server.get("/healthz").status, 200);
    let before = store_bytes(&server);
    let run = server.run_wait(json!({"source": ERROR_FLOOD, "input": {}}));
    assert_eq!((run["status"].clone(), run["output"].clone()), (json!("ok"), json!("survived")), "{run}");
    let spans = server.get(&format!("/api/runs/{}/spans", run["run_id"].as_str().unwrap())).json();
    let steps: Vec<&Value> = spans["spans"].as_array().unwrap().iter().filter(|s| s["kind"] == "step").collect();
    assert_eq!(steps.len(), 30);
    for step in steps {
        let error = &step["error"];
        assert_eq!(error["type"], "ValueError");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.len() < 4200 && message.ends_with(&format!("(cut at 4096 of {} bytes)", 2 << 20)),
            "{}",
            &message[4000..]
        );
        assert!(error["traceback"].as_str().unwrap().len() < 17 * 1024);
        assert!(step["attrs"].to_string().len() < 4200, "attributes are cut too");
    }
    let used = run["usage"]["stored_bytes"].as_u64().unwrap();
    assert!(used > 30 * 4096 && used < 2 * 1024 * 1024, "{used}");
    let grown = store_bytes(&server).saturating_sub(before);
    println!("HOST-LIMITS error flood: store grew by {grown} bytes, spans kept {used} bytes");
    assert!(grown < 8 * 1024 * 1024, "the store grew by {grown} bytes");

    // With a smaller stored_bytes quota the same flow stops, however it catches.
    let stopped = server.run_wait(json!({"source": ERROR_FLOOD, "input": {}, "quotas": {"stored_bytes": 100_000}}));
    assert_eq!(
        (stopped["status"].clone(), stopped["error"]["quota"].clone()),
        (json!("quota_exceeded"), json!("stored_bytes"))
    );
}

/// A flow that tries what the built-ins should refuse it.
const OVERREACH: &str = r#"from hero_logic import flow, services

CHILD = '''from hero_logic import flow

@flow(name="{name}")
def child():
    return "{text}"
'''


@flow(name="overreach", inputs={"target": "string", "text": "string"}, services=["flows", "runs"])
def overreach(target, text):
    tried = {}
    for what, call in [
        ("save", lambda: services.flows.save(source=CHILD.format(name=target, text=text))),
        ("recent", lambda: services.runs.recent(flow=target)),
        ("own", lambda: services.runs.recent(flow="overreach")),
    ]:
        try:
            call()
            tried[what] = "allowed"
        except PermissionError as refused:
            tried[what] = "refused: " + str(refused)
    return tried
"#;

fn overreach(server: &Server, target: &str, text: &str) -> Value {
    let run = server.run_wait(json!({"flow": "overreach", "input": {"target": target, "text": text}}));
    assert_eq!(run["status"], "ok", "{run}");
    run["output"].clone()
}

#[test]
fn a_flow_replaces_only_its_own_flows_and_reads_only_its_own_runs() {
    let server = Server::start(&[]);
    assert_eq!(server.upload(OVERREACH).status, 201);
    assert_eq!(server.upload(include_str!("../../examples/flows/greet.py")).status, 201);
    server.run_wait(json!({"flow": "greet", "input": {"who": "a"}}));

    // A built-in and a flow the operator stored are not the flow's to replace.
    for target in ["service_check", "greet"] {
        let tried = overreach(&server, target, "planted");
        assert!(tried["save"].as_str().unwrap().starts_with("refused"), "{tried}");
        assert!(tried["save"].as_str().unwrap().contains("flows.save_any"), "{tried}");
        assert!(tried["recent"].as_str().unwrap().contains("runs.read_any"), "{tried}");
        assert_eq!(tried["own"], "allowed");
    }
    let check = server.get("/api/flows/service_check").json();
    assert!(!check["source"].as_str().unwrap().contains("planted"), "the built-in is as it was");

    // A flow it stored itself it may replace, again and again.
    assert_eq!(overreach(&server, "mine", "one")["save"], "allowed");
    assert_eq!(overreach(&server, "mine", "two")["save"], "allowed");
    let mine = server.run_wait(json!({"flow": "mine", "input": {}}));
    assert_eq!(mine["output"], "two");

    // The operator can grant more.
    let granted = Server::start(&["--grant", "overreach=runs.read_any", "--grant", "overreach=flows.save_any"]);
    assert_eq!(granted.upload(OVERREACH).status, 201);
    let tried = overreach(&granted, "service_check", "planted");
    assert_eq!((tried["save"].clone(), tried["recent"].clone()), (json!("allowed"), json!("allowed")), "{tried}");
}

const VICTIM: &str = r#"from hero_logic import flow


@flow(name="victim", inputs={"secret": "string"})
def victim(secret):
    with flow.step("handle " + secret):
        return {"echo": secret}
"#;

/// Borrows `optimize_flow`'s `runs.read_any` by invoking it.
const BORROWER: &str = r#"from hero_logic import flow


@flow(name="borrower")
def borrower():
    try:
        return flow.invoke("optimize_flow", flow="victim")
    except flow.SubflowFailed as failed:
        return "refused: " + failed.error["message"]
"#;

#[test]
fn a_flow_cannot_borrow_a_capability_by_invoking_a_flow_that_holds_it() {
    let server = Server::start(&[]);
    assert_eq!(server.upload(VICTIM).status, 201);
    assert_eq!(server.upload(BORROWER).status, 201);
    server.run_wait(json!({"flow": "victim", "input": {"secret": "TOPSECRET-123"}}));
    let run = server.run_wait(json!({"flow": "borrower", "input": {}}));
    assert!(run["output"].as_str().unwrap_or_default().starts_with("refused"), "{run}");
    let spans = server.get(&format!("/api/runs/{}/spans", run["run_id"].as_str().unwrap())).text();
    assert!(!spans.contains("TOPSECRET"), "nothing of the victim's runs reached the borrower's run");
    // Run on its own, optimize_flow holds its grant as before.
    let direct = server.run_wait(json!({"flow": "optimize_flow", "input": {"flow": "victim"}}));
    assert_eq!(direct["status"], "ok", "{direct}");
}

/// Stores a flow under a name the operator granted, then runs it.
const SQUATTER: &str = r#"from hero_logic import flow, services

DEPLOYER = '''from hero_logic import flow, services

@flow(name="deployer", services=["flows"])
def deployer():
    services.flows.save(source='from hero_logic import flow\\n@flow(name="optimize_flow")\\ndef optimize_flow():\\n    return "planted"\\n')
    return "replaced"
'''


@flow(name="squatter", services=["flows"])
def squatter():
    services.flows.save(source=DEPLOYER)
    try:
        return flow.invoke("deployer")
    except flow.SubflowFailed as failed:
        return "refused: " + failed.error["message"]
"#;

#[test]
fn a_granted_name_a_flow_stored_carries_no_grant() {
    let server = Server::start(&["--grant", "deployer=flows.save_any"]);
    assert_eq!(server.upload(SQUATTER).status, 201);
    let run = server.run_wait(json!({"flow": "squatter", "input": {}}));
    assert!(run["output"].as_str().unwrap_or_default().starts_with("refused"), "{run}");
    let optimize = server.get("/api/flows/optimize_flow").json();
    assert!(!optimize["source"].as_str().unwrap().contains("planted"), "the built-in is as it was");
}

#[test]
fn a_flow_saves_only_flows_that_call_no_more_than_it_may() {
    let source = r#"from hero_logic import flow, services

WIDER = 'from hero_logic import flow\n@flow(name="wider", services=["*"])\ndef wider():\n    return 1\n'


@flow(name="narrow", services=["flows"])
def narrow():
    try:
        services.flows.save(source=WIDER)
        return "saved"
    except PermissionError as refused:
        return "refused: " + str(refused)
"#;
    let server = Server::start(&[]);
    let run = server.run_wait(json!({"source": source, "input": {}}));
    assert!(run["output"].as_str().unwrap().contains("declares service '*'"), "{run}");
    assert_eq!(server.get("/api/flows/wider").status, 404);
}

#[test]
fn declarations_beyond_the_hosts_limits_are_refused_whatever_the_guest_says() {
    let server = Server::start(&[]);
    let long = format!(
        "from hero_logic import flow\n\n@flow(name=\"wordy\", description=\"{}\")\ndef wordy():\n    return 1\n",
        "d".repeat(5000)
    );
    let refused = server.upload(&long);
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(refused.json()["error"]["message"].as_str().unwrap().contains("longer than 4096"));
    // Around the SDK's own checks: a name that is no identifier.
    let sneaky = r#"from hero_logic import flow, _flow

@flow(name="fine")
def fine():
    return 1

spec = _flow.registry[-1]
_flow.registry.append(_flow.FlowSpec(spec.func, "Not An Identifier \u202e" + "N" * 100000, spec.inputs, spec.description, spec.services))
"#;
    let refused = server.upload(sneaky);
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(refused.text().len() < 2000, "the refusal quotes a cut name");
}

#[test]
fn a_broken_host_call_ends_the_run_with_a_bounded_error() {
    let source = r#"from hero_logic import flow
from hero_logic._host import host


@flow(name="broken")
def broken():
    host.log("C" * (5 << 20), "message")
"#;
    let server = Server::start(&[]);
    let run = server.run_wait(json!({"source": source, "input": {}}));
    assert_eq!(
        (run["status"].clone(), run["error"]["type"].clone()),
        (json!("failed"), json!("HostCallRejected")),
        "{run}"
    );
    assert!(run["error"]["message"].as_str().unwrap().len() < 5000);
    assert!(server.get(&format!("/api/runs/{}", run["run_id"].as_str().unwrap())).body.len() < 20_000);
}

#[test]
fn call_params_larger_than_input_bytes_are_refused_before_they_are_read() {
    let source = r#"from hero_logic import flow, services


@flow(name="heavy", services=["kv"])
def heavy():
    services.kv.set(key="a", value="x" * (2 << 20))
"#;
    let server = Server::start(&[]);
    let run = server.run_wait(json!({"source": source, "input": {}}));
    assert_eq!(
        (run["status"].clone(), run["error"]["quota"].clone()),
        (json!("quota_exceeded"), json!("input_bytes")),
        "{run}"
    );
}

/// Keeps `size` bytes under `key` in kv (nothing: deletes it); answers what
/// the kv service said.
const HOARD: &str = r#"from hero_logic import flow, services


@flow(name="hoard", inputs={"key": "string", "size": "integer"}, services=["kv"])
def hoard(key, size):
    try:
        if size == 0:
            return services.kv.delete(key=key)
        return services.kv.set(key=key, value="x" * size)
    except services.RpcError as e:
        return {"code": e.code, "message": str(e), "data": e.data}
"#;

#[test]
fn a_flow_holds_at_most_max_kv_bytes_in_kv_over_all_its_runs() {
    let server = Server::start(&["--max-kv-bytes", "10000"]);
    assert_eq!(server.upload(HOARD).status, 201);
    let hoard = |key: &str, size: u64| {
        let run = server.run_wait(json!({"flow": "hoard", "input": {"key": key, "size": size}}));
        assert_eq!(run["status"], "ok", "{run}");
        run["output"].clone()
    };
    // Each value is its JSON text: the size plus two quotes, and the key.
    assert_eq!(hoard("a", 6000), json!(true));
    let refused = hoard("b", 6000);
    assert_eq!(refused["code"], -32010, "{refused}");
    assert_eq!(refused["data"], json!({"held": 6003, "wanted": 6003, "limit": 10000}));
    assert!(refused["message"].as_str().unwrap().contains("--max-kv-bytes"), "{refused}");

    // Replacing a value counts the difference; a write that shrinks always goes.
    assert_eq!(hoard("a", 9000), json!(true));
    assert_eq!(hoard("a", 20), json!(true));
    assert_eq!(hoard("b", 6000), json!(true));
    assert_eq!(hoard("c", 6000)["code"], -32010);
    // Deleting gives the room back.
    assert_eq!(hoard("b", 0), json!(true));
    assert_eq!(hoard("c", 6000), json!(true));

    // Another flow has its own room.
    let other = HOARD.replace("name=\"hoard\"", "name=\"other_hoard\"");
    assert_eq!(server.upload(&other).status, 201);
    let run = server.run_wait(json!({"flow": "other_hoard", "input": {"key": "a", "size": 9000}}));
    assert_eq!(run["output"], json!(true), "{run}");
}

/// Sleeps, and says whether an earlier run left a mark in a module every
/// run shares the image of.
const SLEEPER: &str = r#"import time
from hero_logic import flow


@flow(name="sleeper", inputs={"seconds": "number"})
def sleeper(seconds):
    seen = getattr(time, "_mark_of_an_earlier_run", None)
    time._mark_of_an_earlier_run = True
    time.sleep(seconds)
    return seen
"#;

#[test]
fn hundreds_of_runs_waiting_at_once_all_end_ok_each_in_a_fresh_instance() {
    // Without --max-instances the pool follows --max-concurrent. Most of
    // these runs get burst slots (the warm pool holds a few per core); the
    // second round gets slots the first one used and gave back.
    let server = Server::start(&["--max-concurrent", "300"]);
    assert_eq!(server.upload(SLEEPER).status, 201);
    for round in 0..2 {
        let runs: Vec<Value> = std::thread::scope(|scope| {
            let started: Vec<_> = (0..300)
                .map(|_| scope.spawn(|| server.run_wait(json!({"flow": "sleeper", "input": {"seconds": 0.5}}))))
                .collect();
            started.into_iter().map(|run| run.join().unwrap()).collect()
        });
        for run in runs {
            assert_eq!(run["status"], "ok", "round {round}: {run}");
            assert_eq!(run["output"], Value::Null, "round {round}: a run saw another's mark: {run}");
        }
    }
}

#[test]
fn more_runs_at_once_than_any_pool_is_refused_at_start() {
    let refusal = serve_refusal(&["--max-concurrent", "5000"]);
    assert!(refusal.contains("--max-concurrent must be at most 2048"), "{refusal}");
}

/// Saves `count` one-flow modules, each a new name, until refused.
const FILLER: &str = r#"
from hero_logic import flow, services

CHILD = 'from hero_logic import flow\n@flow(name="{name}")\ndef child():\n    return 1\n'


def fill(prefix, count):
    saved = 0
    for i in range(count):
        try:
            services.flows.save(source=CHILD.format(name=f"{prefix}_{i}"))
            saved += 1
        except services.RpcError as e:
            return {"saved": saved, "code": e.code, "message": str(e), "data": e.data}
    return {"saved": saved}


@flow(name="filler", inputs={"count": "integer"}, services=["flows"])
def filler(count):
    return fill("filled", count)


@flow(name="other_filler", inputs={"count": "integer"}, services=["flows"])
def other_filler(count):
    return fill("spare", count)
"#;

crate::on_both_backends! {
    /// One run adds at most 20 flows through `flows.save`, and flow code
    /// at most `--max-saved-flows` altogether; each refusal names its bound,
    /// and the run's usage counts what it saved.
    #[test]
    fn a_flow_cannot_fill_the_library_through_flows_save() {
        let server = Server::start(&["--max-saved-flows", "25"]);
        assert_eq!(server.upload(FILLER).status, 201);
        let run = server.run_wait(json!({"flow": "filler", "input": {"count": 30}}));
        assert_eq!(run["status"], "ok", "{run}");
        let output = &run["output"];
        assert_eq!((output["saved"].clone(), output["code"].clone()), (json!(20), json!(-32011)), "{run}");
        assert!(output["message"].as_str().unwrap().contains("one run may save at most 20"), "{run}");
        assert_eq!(output["data"]["per"], "run", "{run}");
        assert_eq!(run["usage"]["flows_saved"], 20, "{run}");

        let other = server.run_wait(json!({"flow": "other_filler", "input": {"count": 30}}));
        let output = &other["output"];
        assert_eq!((output["saved"].clone(), output["code"].clone()), (json!(5), json!(-32011)), "{other}");
        assert!(output["message"].as_str().unwrap().contains("at most 25 of them (--max-saved-flows)"), "{other}");
        assert_eq!(output["data"]["per"], "library", "{other}");
        let flows = server.get("/api/flows").json()["flows"].as_array().unwrap().clone();
        let saved = flows.iter().filter(|f| ["filled_", "spare_"].iter().any(|p| f["name"].as_str().unwrap().starts_with(p))).count();
        assert_eq!(saved, 25, "what was refused was not stored");
    }
}
