//! The web page: its pure modules under node's test runner, and the page
//! itself in real headless Chromium against a real server on a free port
//! (`tests/browser/`, whose setup script installs Chromium and playwright-core).

use super::server_support::Server;
use serde_json::json;
use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// 1,000 groups of 100 leaves: 101,001 spans with the root.
const MANY_SPANS: &str = r#"from hero_logic import flow


@flow(name="many_spans", inputs={"groups": "integer"})
def many_spans(groups):
    for g in range(groups):
        with flow.step(f"group {g}"):
            for i in range(100):
                with flow.step(f"leaf {g * 100 + i}"):
                    pass
    return {"spans": groups * 101 + 1}
"#;

#[test]
fn the_pages_modules_pass_their_unit_tests_under_node() {
    let output = Command::new("node").args(["--test", "ui/tests/"]).current_dir(ROOT).output().expect("run node");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}{}", String::from_utf8_lossy(&output.stderr));
    assert!(text.contains("# fail 0"), "{text}");
}

#[test]
fn the_page_in_headless_chromium() {
    let setup = Command::new("bash").arg("tests/browser/setup.sh").current_dir(ROOT).status().expect("run setup.sh");
    assert!(setup.success(), "tests/browser/setup.sh failed");

    let server = Server::start(&["--max-spans", "200000", "--cpu-time", "60", "--wall-time", "120"]);
    let big = server.post_json(
        "/api/runs?wait=true",
        &json!({"source": MANY_SPANS, "input": {"groups": 1000},
                "quotas": {"spans": 101_001, "cpu_time_ms": 60_000, "wall_time_ms": 120_000}}),
    );
    assert_eq!(big.json()["status"], "ok", "{}", big.text());
    let big_run = big.json()["run_id"].as_str().unwrap().to_string();

    // A second server that needs a token, for the page's token prompt.
    let guarded = Server::start(&["--token", "page-s3cret"]);
    let operator = [("Authorization", "Bearer page-s3cret"), ("Content-Type", "application/json")];
    let made =
        guarded.request("POST", "/api/workspaces/default/keys", &operator, br#"{"name": "reader", "role": "viewer"}"#);
    assert_eq!(made.status, 201, "{}", made.text());
    let viewer_key = made.json()["key"].as_str().unwrap().to_string();
    // A real service for the page to register while it is open.
    let service = super::services::Weather::http();

    let screenshots = Path::new(ROOT).join("target/ui-screenshots");
    // Screenshots from an earlier run must not stand in for this one's.
    let _ = std::fs::remove_dir_all(&screenshots);
    let output = Command::new("node")
        .args(["--test", "--test-concurrency=1", "tests/browser/"])
        .current_dir(ROOT)
        .env("HERO_LOGIC_URL", format!("http://{}", server.addr))
        .env("HERO_LOGIC_BIG_RUN", &big_run)
        .env("HERO_LOGIC_TOKEN_URL", format!("http://{}", guarded.addr))
        .env("HERO_LOGIC_TEST_TOKEN", "page-s3cret")
        .env("HERO_LOGIC_TEST_VIEWER_KEY", &viewer_key)
        .env("HERO_LOGIC_SERVICE_URL", &service.url)
        .env("HERO_LOGIC_SCREENSHOTS", &screenshots)
        .output()
        .expect("run node");
    let text = String::from_utf8_lossy(&output.stdout);
    // The figures the big-run test measured, for whoever reads the test log.
    for line in text.lines().filter(|l| l.contains("UI-FIGURES")) {
        println!("{}", line.trim_start_matches(['#', ' ']));
    }
    assert!(output.status.success(), "{text}{}", String::from_utf8_lossy(&output.stderr));
    let views = [
        "library",
        "run-live",
        "run-finished",
        "run-failed",
        "editor-completion",
        "big-run",
        "runs",
        "token-asked",
        "viewer",
        "services-empty",
        "services",
        "run-logs",
        "narrow",
        "subflow-source",
        "big-run-live",
    ];
    let themed = ["library", "runs", "services", "editor"]
        .into_iter()
        .flat_map(|view| [format!("{view}-light"), format!("{view}-dark")]);
    for view in views.into_iter().map(String::from).chain(themed) {
        assert!(screenshots.join(format!("{view}.png")).exists(), "a screenshot of {view}");
    }
}
