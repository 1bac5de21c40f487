//! Running the real binary on flow sources written to temporary files.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Once;

/// One artefact cache for the whole test binary, under target/.
fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("artefacts")
}

pub fn hero_logic() -> Command {
    static WARM: Once = Once::new();
    // Compile the guest once, before tests run in parallel, rather than in
    // every test process at the same time.
    WARM.call_once(|| {
        let status = base_command().arg("--help").status().expect("run hero_logic");
        assert!(status.success());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("warm.py");
        std::fs::write(&file, "from hero_logic import flow\n@flow()\ndef warm():\n    return 1\n").unwrap();
        let output = base_command().arg("run").arg(&file).output().expect("run hero_logic");
        assert!(output.status.success(), "warm-up run failed: {}", String::from_utf8_lossy(&output.stderr));
    });
    base_command()
}

fn base_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hero_logic"));
    command.env("HERO_LOGIC_CACHE_DIR", cache_dir()).env_remove("HERO_LOGIC_LOG");
    command
}

pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("stdout is not one JSON object ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr)
        })
    }
}

/// `hero_logic run <file with source> ARGS...`
pub fn run(source: &str, args: &[&str]) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flow.py");
    std::fs::write(&file, source).unwrap();
    let output = hero_logic().arg("run").arg(&file).args(args).output().expect("run hero_logic");
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `hero_logic run FILE --json ARGS...`, returning the exit code and the object.
pub fn run_json(source: &str, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let ran = run(source, &all);
    (ran.code, ran.json())
}

/// The span named `name` in a run report.
pub fn span<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["spans"]
        .as_array()
        .expect("spans is an array")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no span named {name} in {report:#}"))
}

/// Every span has ended: none is left `running`, all have an end time.
pub fn assert_all_closed(report: &Value) {
    for span in report["spans"].as_array().unwrap() {
        assert_ne!(span["status"], "running", "span left running: {span}");
        assert!(span["end_us"].is_i64(), "span without end: {span}");
    }
}
