//! Retention: `serve --retain-runs N` keeps at most the newest N runs; an
//! older one, with its spans and logs, is gone (404).

use super::server_support::{Server, eventually};
use crate::on_both_backends;
use serde_json::json;

const GREET: &str = include_str!("../../examples/flows/greet.py");

on_both_backends! {
    #[test]
    fn retention_keeps_at_most_n_runs_and_a_pruned_run_is_404() {
        let server = Server::start(&["--retain-runs", "3"]);
        assert_eq!(server.upload(GREET).status, 201);
        let ids: Vec<String> = (0..7)
            .map(|i| {
                let run = server.run_wait(json!({"flow": "greet", "input": {"who": format!("n{i}")}}));
                run["run_id"].as_str().unwrap().to_string()
            })
            .collect();
        eventually("only the newest 3 runs are left", || {
            server.get("/api/runs?limit=100").json()["runs"].as_array().unwrap().len() <= 3
        });
        let left: Vec<String> = server.get("/api/runs?limit=100").json()["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|run| run["run_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(left, ids[4..].iter().rev().cloned().collect::<Vec<_>>(), "the newest, newest first");
        for pruned in &ids[..4] {
            for path in [format!("/api/runs/{pruned}"), format!("/api/runs/{pruned}/spans"), format!("/api/runs/{pruned}/logs")] {
                assert_eq!(server.get(&path).status, 404, "{path}");
            }
        }
        assert_eq!(server.get(&format!("/api/runs/{}/spans", ids[6])).status, 200);
    }
}

#[test]
fn retention_of_zero_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = super::support::hero_logic()
        .args(["serve", "--addr", "127.0.0.1:0", "--retain-runs", "0", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!dir.path().join("data").exists(), "refused before anything is made");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--retain-runs and --retain-days must be at least 1"));
}
