//! Schedules: a cron pattern starts runs of a flow, once per tick, on one
//! node or several; deleted, it stops; ticks missed while the server was
//! down run once at start.

use super::server_support::{Server, eventually};
use crate::on_both_backends;
use serde_json::{Value, json};
use std::time::Duration;

const GREET: &str = include_str!("../../examples/flows/greet.py");

fn code(response: &super::server_support::Response) -> Value {
    response.json()["error"]["code"].clone()
}

/// The runs a schedule started, as their triggers.
fn scheduled(server: &Server) -> Vec<Value> {
    server.get("/api/runs?flow=greet&limit=500").json()["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|run| run["trigger"]["kind"] == "schedule")
        .map(|run| run["trigger"].clone())
        .collect()
}

fn every_second(server: &Server) -> String {
    let made =
        server.post_json("/api/schedules", &json!({"flow": "greet", "cron": "* * * * * *", "input": {"who": "cron"}}));
    assert_eq!(made.status, 201, "{}", made.text());
    assert!(made.json()["next"].as_str().unwrap().ends_with('Z'), "{}", made.text());
    made.json()["schedule_id"].as_str().unwrap().to_string()
}

/// Every tick a run started for is a distinct second: none ran twice.
fn once_per_tick(triggers: &[Value]) {
    let mut ticks: Vec<i64> = triggers.iter().map(|t| t["tick_us"].as_i64().unwrap()).collect();
    assert!(ticks.iter().all(|tick| tick % 1_000_000 == 0), "{ticks:?}");
    ticks.sort();
    let count = ticks.len();
    ticks.dedup();
    assert_eq!(ticks.len(), count, "a tick ran more than once: {triggers:?}");
}

on_both_backends! {
    #[test]
    fn a_schedule_every_second_fires_and_stops_when_deleted() {
        let server = Server::start(&[]);
        assert_eq!(server.upload(GREET).status, 201);
        for (body, status, error) in [
            (json!({"flow": "greet", "cron": "* * *"}), 400, "invalid_schedule"),
            (json!({"flow": "greet", "cron": "61 * * * *"}), 400, "invalid_schedule"),
            (json!({"flow": "greet", "cron": "* * * * *", "timezone": "Mars/Olympus"}), 400, "invalid_schedule"),
            (json!({"flow": "greet", "cron": "* * * * *", "input": {"whom": 1}}), 400, "invalid_input"),
            (json!({"flow": "nope", "cron": "* * * * *"}), 404, "not_found"),
            (json!({"flow": "greet"}), 400, "invalid_request"),
        ] {
            let refused = server.post_json("/api/schedules", &body);
            assert_eq!((refused.status, code(&refused)), (status, json!(error)), "{body}: {}", refused.text());
        }
        assert_eq!(server.get("/api/schedules").json()["schedules"], json!([]), "nothing refused was kept");

        let id = every_second(&server);
        eventually("three scheduled runs", || scheduled(&server).len() >= 3);
        let triggers = scheduled(&server);
        assert!(triggers.iter().all(|t| t["schedule_id"] == json!(id)), "{triggers:?}");
        once_per_tick(&triggers);
        let listed = server.get("/api/schedules").json();
        assert_eq!(listed["schedules"][0]["schedule_id"], json!(id));

        let removed = server.request("DELETE", &format!("/api/schedules/{id}"), &[], b"");
        assert_eq!(removed.status, 200);
        // A pattern in a time zone: 9:00 in Kolkata (UTC+5:30, no summer time) is 3:30 UTC.
        let body = json!({"flow": "greet", "cron": "0 9 * * *", "input": {"who": "india"}, "timezone": "Asia/Kolkata"});
        let zoned = server.post_json("/api/schedules", &body);
        assert_eq!((zoned.status, zoned.json()["timezone"].clone()), (201, json!("Asia/Kolkata")), "{}", zoned.text());
        assert!(zoned.json()["next"].as_str().unwrap().ends_with("T03:30:00.000Z"), "{}", zoned.text());
        let zoned_id = zoned.json()["schedule_id"].as_str().unwrap().to_string();
        assert_eq!(server.request("DELETE", &format!("/api/schedules/{zoned_id}"), &[], b"").status, 200);
        std::thread::sleep(Duration::from_millis(1500));
        let after_delete = scheduled(&server).len();
        std::thread::sleep(Duration::from_millis(2500));
        assert_eq!(scheduled(&server).len(), after_delete, "a deleted schedule starts nothing");
        let again = server.request("DELETE", &format!("/api/schedules/{id}"), &[], b"");
        assert_eq!((again.status, code(&again)), (404, json!("not_found")));
    }
}

/// Two nodes on one database both look for due schedules; each tick is
/// claimed by one of them.
#[test]
fn a_schedule_on_two_nodes_fires_once_per_tick() {
    let url = hero_logic::throwaway_postgres::fresh_database();
    let a = Server::start_node(&url, "node-a", &[]);
    let b = Server::start_node(&url, "node-b", &[]);
    assert_eq!(a.upload(GREET).status, 201);
    let id = every_second(&b);
    eventually("five scheduled runs", || scheduled(&a).len() >= 5);
    assert_eq!(a.request("DELETE", &format!("/api/schedules/{id}"), &[], b"").status, 200);
    std::thread::sleep(Duration::from_millis(1500));
    let triggers = scheduled(&a);
    once_per_tick(&triggers);
    let nodes: Vec<Value> = a.get("/api/runs?flow=greet&limit=500").json()["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["node"].clone())
        .collect();
    assert!(nodes.iter().all(|node| node == "node-a" || node == "node-b"), "{nodes:?}");
}

/// Ticks missed while no server was running (an hour of a schedule every
/// minute) start one run at the next start, not sixty.
#[test]
fn ticks_missed_while_down_run_once_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_on(&data, &[]);
    assert_eq!(server.upload(GREET).status, 201);
    let made =
        server.post_json("/api/schedules", &json!({"flow": "greet", "cron": "* * * * *", "input": {"who": "late"}}));
    assert_eq!(made.status, 201);
    assert_eq!(server.terminate().code(), Some(0));
    let an_hour_ago = hero_logic::trace::now_us() - 3_600_000_000;
    let conn = rusqlite::Connection::open(data.join("hero_logic.db")).unwrap();
    conn.execute("UPDATE schedules SET next_us = ?1", [an_hour_ago]).unwrap();
    drop(conn);
    let server = Server::start_on(&data, &[]);
    eventually("the missed ticks' run", || !scheduled(&server).is_empty());
    std::thread::sleep(Duration::from_millis(1000));
    // Runs of ticks from before the hour's end (the first server, briefly
    // up, may have had one of its own).
    let missed: Vec<Value> = scheduled(&server)
        .into_iter()
        .filter(|t| t["tick_us"].as_i64().unwrap() < an_hour_ago + 3_500_000_000)
        .collect();
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert_eq!(missed[0]["tick_us"], json!(an_hour_ago), "the tick that was due");
    let next = server.get("/api/schedules").json()["schedules"][0]["next_us"].as_i64().unwrap();
    assert!(next > hero_logic::trace::now_us(), "next due after now, not at a missed tick");
}

/// The schedule routes obey the guard like every other.
#[test]
fn the_schedule_routes_refuse_foreign_pages_and_callers_without_the_token() {
    let server = Server::start(&["--token", "s3cret"]);
    let token = [("Authorization", "Bearer s3cret")];
    assert_eq!(server.request("POST", "/api/flows", &token, GREET.as_bytes()).status, 201);
    let body = br#"{"flow": "greet", "cron": "0 0 1 1 *", "input": {"who": "x"}}"#;
    for (method, path) in [("POST", "/api/schedules"), ("GET", "/api/schedules"), ("DELETE", "/api/schedules/x")] {
        let json_type = ("Content-Type", "application/json");
        let denied = server.request(method, path, &[json_type], body);
        assert_eq!((denied.status, code(&denied)), (401, json!("unauthorized")), "{method} {path}");
        let foreign = server.request(method, path, &[token[0], json_type, ("Origin", "http://evil.example")], body);
        assert_eq!((foreign.status, code(&foreign)), (403, json!("forbidden_origin")), "{method} {path}");
    }
    let listed = server.request("GET", "/api/schedules", &token, b"").json();
    assert_eq!(listed["schedules"], json!([]), "nothing was made");
}

/// `hero_logic schedules add|list|remove` on a data directory's store,
/// checked as over HTTP.
#[test]
fn the_command_line_adds_lists_and_removes_schedules() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let greet = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/flows/greet.py");
    let cli = |args: &[&str]| super::support::hero_logic().args(args).args(["--data-dir", data]).output().unwrap();
    assert!(cli(&["flows", "add", greet]).status.success());
    let refused = cli(&["schedules", "add", "greet", "* * *"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("5 fields"));
    let wrong_input = cli(&["schedules", "add", "greet", "0 0 1 1 *", "--input", r#"{"whom": 1}"#]);
    assert_eq!(wrong_input.status.code(), Some(2));
    let unknown_zone = cli(&["schedules", "add", "greet", "0 0 1 1 *", "--timezone", "Mars/Olympus"]);
    assert_eq!(unknown_zone.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown_zone.stderr).contains("is not a time zone"));
    let added = cli(&[
        "schedules",
        "add",
        "greet",
        "0 0 1 1 *",
        "--input",
        r#"{"who": "new year"}"#,
        "--timezone",
        "Pacific/Auckland",
    ]);
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    // Midnight on New Year's Day in Auckland is still the 31st in UTC.
    assert!(String::from_utf8_lossy(&added.stdout).contains("-12-31T11:00:00.000Z"), "{:?}", added);
    let listed: Value = serde_json::from_slice(&cli(&["schedules", "list", "--json"]).stdout).unwrap();
    let id = listed["schedules"][0]["schedule_id"].as_str().unwrap().to_string();
    assert_eq!(listed["schedules"][0]["input"], json!({"who": "new year"}));
    assert_eq!(listed["schedules"][0]["timezone"], json!("Pacific/Auckland"));
    assert!(cli(&["schedules", "remove", &id]).status.success());
    assert_eq!(cli(&["schedules", "remove", &id]).status.code(), Some(2), "no such schedule");
}
