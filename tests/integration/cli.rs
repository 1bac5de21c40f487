//! `hero_logic run`: choosing a flow, reading input, exit codes and the
//! human-readable tree.

use super::support::{hero_logic, run};

const TWO_FLOWS: &str = r#"from hero_logic import flow

@flow(inputs={"who": "string", "times": "integer?"})
def greet(who, times):
    return f"hello {who}" * (times or 1)

@flow()
def other():
    return 1
"#;

#[test]
fn the_readme_example_prints_the_tree_and_the_output() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/flows/greet.py");
    let output = hero_logic().args(["run", file, "--input", r#"{"who": "ada"}"#]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("✓ greet ok "), "{stdout}");
    assert!(
        lines[1].starts_with("├─ ✓ build ok ") && lines[1].contains(r#"who="ada""#) && lines[1].contains("length=9")
    );
    assert!(lines[2].starts_with("└─ ✓ shout ok "), "{stdout}");
    assert!(lines[3].trim() == "stdout: shouting", "{stdout}");
    assert_eq!(lines[4], r#"output: {"greeting":"HELLO ADA"}"#);
}

#[test]
fn a_failure_prints_the_exception_its_traceback_and_line() {
    let source =
        "from hero_logic import flow\n\n@flow()\ndef f():\n    with flow.step('boom'):\n        {}['missing']\n";
    let ran = run(source, &[]);
    assert_eq!(ran.code, 1);
    assert!(ran.stdout.contains("✗ boom failed"), "{}", ran.stdout);
    assert!(ran.stdout.contains("KeyError: 'missing' (line 6)"), "{}", ran.stdout);
    assert!(ran.stdout.contains(r#"File "flow.py", line 6, in f"#), "{}", ran.stdout);
    assert!(ran.stdout.trim_end().ends_with("failed: KeyError: 'missing' (line 6)"), "{}", ran.stdout);
}

#[test]
fn several_flows_need_a_name_and_an_unknown_name_lists_them() {
    let ran = run(TWO_FLOWS, &["--input", r#"{"who": "x"}"#]);
    assert_eq!(ran.code, 2);
    assert!(ran.stdout.is_empty());
    assert!(
        ran.stderr.trim_end().ends_with("declares several flows (greet, other); choose one with --flow NAME"),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.stderr.lines().count(), 1, "{}", ran.stderr);

    let ran = run(TWO_FLOWS, &["--flow", "nope"]);
    assert_eq!(ran.code, 2);
    assert!(ran.stderr.contains("declares no flow named 'nope' (it declares: greet, other)"), "{}", ran.stderr);

    let ran = run(TWO_FLOWS, &["--flow", "greet", "--input", r#"{"who": "x", "times": 2}"#, "--json"]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(ran.json()["output"], "hello xhello x");
}

#[test]
fn a_syntax_error_exits_2_naming_the_line() {
    let ran = run("from hero_logic import flow\n\n@flow()\ndef f(:\n    pass\n", &[]);
    assert_eq!(ran.code, 2);
    assert_eq!(ran.stderr.lines().count(), 1, "{}", ran.stderr);
    assert!(ran.stderr.starts_with("error: "), "{}", ran.stderr);
    assert!(ran.stderr.contains("SyntaxError at line 4"), "{}", ran.stderr);
}

#[test]
fn a_module_without_a_flow_exits_2() {
    let ran = run("x = 1\n", &[]);
    assert_eq!(ran.code, 2);
    assert!(ran.stderr.contains("NoFlow: the module declares no flow"), "{}", ran.stderr);
}

#[test]
fn an_error_while_loading_the_module_exits_2_with_its_line() {
    let ran = run("from hero_logic import flow\nimport json\njson.loads('{')\n", &[]);
    assert_eq!(ran.code, 2);
    assert!(ran.stderr.contains("JSONDecodeError at line 3: loading the module failed"), "{}", ran.stderr);
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--flow", "greet", "--input", "{nope"],
            "--input is not valid JSON: key must be a string at line 1 column 2",
        ),
        (
            &["--flow", "greet", "--input", "{}"],
            "invalid input for flow 'greet': missing required input 'who' (string)",
        ),
        (&["--flow", "greet", "--input", r#"{"who": 1}"#], "input 'who' must be a string, not an integer"),
        (&["--flow", "greet", "--input", r#"{"who": "a", "x": 1}"#], "unknown input 'x' (it declares: times, who)"),
        (&["--flow", "greet", "--wall-time", "-1"], "--wall-time must be a positive number of seconds"),
    ];
    for (args, expected) in cases {
        let ran = run(TWO_FLOWS, args);
        assert_eq!(ran.code, 2, "{args:?}: {}", ran.stderr);
        assert_eq!(ran.stderr.lines().count(), 1, "{args:?}: {}", ran.stderr);
        assert!(ran.stderr.contains(expected), "{args:?}: {}", ran.stderr);
    }
}

#[test]
fn a_missing_file_exits_2() {
    let output = hero_logic().args(["run", "/nonexistent/flow.py"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).starts_with("error: cannot read /nonexistent/flow.py"));
}

#[test]
fn an_unknown_flag_exits_2_with_one_line() {
    let output = hero_logic().args(["run", "x.py", "--no-such-flag"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--no-such-flag"), "{stderr}");
}

#[test]
fn help_still_prints_in_full() {
    let output = hero_logic().args(["run", "--help"]).output().unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("--max-rpc-calls"));
}

#[test]
fn a_reader_that_goes_away_early_ends_the_output_quietly() {
    // Far more than a pipe holds, so the writer is still writing when the
    // reader closes its end.
    let source = "from hero_logic import flow\n@flow()\ndef many():\n    for i in range(3000):\n        with flow.step('s'):\n            pass\n";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("many.py");
    std::fs::write(&file, source).unwrap();
    let mut child = hero_logic()
        .arg("run")
        .arg(&file)
        .arg("--json")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr, "", "nothing to say: the reader did not want the rest");
    assert_eq!(output.status.code(), Some(0), "the exit code is still the run's");
}

#[test]
fn serve_exits_2_for_a_bad_data_dir_and_1_when_the_server_cannot_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let output = hero_logic().args(["serve", "--addr", "127.0.0.1:0", "--data-dir"]).arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!((output.status.code(), stderr.lines().count()), (Some(2), 1), "{stderr}");
    assert!(stderr.starts_with("error: --data-dir "), "{stderr}");

    // A database that is not one: the command line was right, the server
    // could not start.
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("hero_logic.db"), vec![b'x'; 4096]).unwrap();
    let output = hero_logic().args(["serve", "--addr", "127.0.0.1:0", "--data-dir"]).arg(&data).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.lines().last().unwrap().starts_with("error: the server stopped: "), "{stderr}");
}
