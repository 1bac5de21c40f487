//! Workspaces, keys and roles, attacked as a tenant would: every route
//! against every role, another workspace's objects, revoked and made-up
//! keys, and the audit log. The real server on a free port, on SQLite and
//! PostgreSQL.

use super::server_support::{Response, Server, eventually};
use crate::on_both_backends;
use hero_logic::http::access::ROUTES;
use serde_json::{Value, json};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;

const GREET: &str = include_str!("../../examples/flows/greet.py");
const TOKEN: &str = "operator-token";
const OPERATOR: (&str, &str) = ("Authorization", "Bearer operator-token");

/// A server with a token, so that nobody without a credential is the
/// operator, as on any server shared by tenants.
fn shared_server() -> Server {
    Server::start(&["--token", TOKEN])
}

fn as_operator(server: &Server, method: &str, path: &str, body: &Value) -> Response {
    let body = if body.is_null() { String::new() } else { body.to_string() };
    server.request(method, path, &[OPERATOR, ("Content-Type", "application/json")], body.as_bytes())
}

fn with_key(server: &Server, key: &str, method: &str, path: &str, body: &Value) -> Response {
    let bearer = format!("Bearer {key}");
    let body = if body.is_null() { String::new() } else { body.to_string() };
    server.request(method, path, &[("Authorization", &bearer), ("Content-Type", "application/json")], body.as_bytes())
}

fn make_workspace(server: &Server, name: &str) {
    let made = as_operator(server, "POST", "/api/workspaces", &json!({"name": name}));
    assert_eq!(made.status, 201, "{}", made.text());
}

/// A new key of `role` in `workspace`, made by the operator: (id, key).
fn make_key(server: &Server, workspace: &str, role: &str) -> (String, String) {
    let made =
        as_operator(server, "POST", &format!("/api/workspaces/{workspace}/keys"), &json!({"name": role, "role": role}));
    assert_eq!(made.status, 201, "{}", made.text());
    let made = made.json();
    (made["key_id"].as_str().unwrap().to_string(), made["key"].as_str().unwrap().to_string())
}

fn code(response: &Response) -> String {
    response.json()["error"]["code"].as_str().unwrap_or_default().to_string()
}

/// What the test expects each route to need, written here and not read
/// from the server's table, so the two are checked against each other.
#[derive(Clone, Copy, Debug)]
enum Needs {
    /// Anyone.
    Open,
    /// The webhook's id only.
    Webhook,
    Operator,
    /// At least this role, in any workspace.
    Role(&'static str),
    /// At least this role, in `default` only (kept there only so far).
    Default(&'static str),
    /// An admin of the workspace in the path, or the operator.
    KeysAdmin,
}

const EXPECTED: &[(&str, &str, Needs)] = &[
    ("GET", "/", Needs::Open),
    ("GET", "/ui/{*path}", Needs::Open),
    ("GET", "/vendor/{*path}", Needs::Open),
    ("GET", "/healthz", Needs::Open),
    ("GET", "/readyz", Needs::Open),
    ("GET", "/metrics", Needs::Operator),
    ("GET", "/api/quotas", Needs::Role("viewer")),
    ("GET", "/api/whoami", Needs::Role("viewer")),
    ("POST", "/api/workspaces", Needs::Operator),
    ("GET", "/api/workspaces", Needs::Operator),
    ("DELETE", "/api/workspaces/{ws}", Needs::Operator),
    ("PUT", "/api/workspaces/{ws}/limits", Needs::Operator),
    ("POST", "/api/workspaces/{ws}/keys", Needs::KeysAdmin),
    ("GET", "/api/workspaces/{ws}/keys", Needs::KeysAdmin),
    ("DELETE", "/api/workspaces/{ws}/keys/{key_id}", Needs::KeysAdmin),
    ("GET", "/api/audit", Needs::Role("admin")),
    ("POST", "/api/flows", Needs::Default("developer")),
    ("GET", "/api/flows", Needs::Default("viewer")),
    ("GET", "/api/flows/search", Needs::Default("viewer")),
    ("DELETE", "/api/flows/search", Needs::Default("developer")),
    ("POST", "/api/check", Needs::Default("developer")),
    ("GET", "/api/flows/{name}", Needs::Default("viewer")),
    ("DELETE", "/api/flows/{name}", Needs::Default("developer")),
    ("POST", "/api/flows/{name}/hooks", Needs::Default("developer")),
    ("GET", "/api/flows/{name}/hooks", Needs::Default("viewer")),
    ("DELETE", "/api/hooks/{id}", Needs::Default("developer")),
    ("POST", "/hooks/{id}", Needs::Webhook),
    ("POST", "/api/services", Needs::Default("developer")),
    ("GET", "/api/services", Needs::Default("viewer")),
    ("DELETE", "/api/services/{name}", Needs::Default("developer")),
    ("POST", "/api/services/{name}/health", Needs::Default("runner")),
    ("POST", "/api/schedules", Needs::Default("developer")),
    ("GET", "/api/schedules", Needs::Default("viewer")),
    ("DELETE", "/api/schedules/{id}", Needs::Default("developer")),
    ("POST", "/api/secrets", Needs::Default("admin")),
    ("GET", "/api/secrets", Needs::Default("admin")),
    ("DELETE", "/api/secrets/{name}", Needs::Default("admin")),
    ("GET", "/api/stubs/hero_logic.pyi", Needs::Default("viewer")),
    ("POST", "/api/runs", Needs::Default("runner")),
    ("GET", "/api/runs", Needs::Role("viewer")),
    ("GET", "/api/runs/{id}", Needs::Role("viewer")),
    ("GET", "/api/runs/{id}/spans", Needs::Role("viewer")),
    ("GET", "/api/runs/{id}/source", Needs::Role("viewer")),
    ("GET", "/api/runs/{id}/logs", Needs::Role("viewer")),
    ("POST", "/api/runs/{id}/cancel", Needs::Role("runner")),
    ("GET", "/api/runs/{id}/otlp", Needs::Role("viewer")),
    ("GET", "/api/runs/{id}/journal", Needs::Role("viewer")),
    ("POST", "/api/runs/{id}/replay", Needs::Default("runner")),
    ("GET", "/api/runs/{id}/events", Needs::Role("viewer")),
    ("GET", "/api/events", Needs::Role("viewer")),
];

const ROLES: [&str; 4] = ["viewer", "runner", "developer", "admin"];

fn rank(role: &str) -> usize {
    ROLES.iter().position(|r| *r == role).unwrap()
}

/// Who asks: a role in a workspace, the operator, or nobody known.
#[derive(Clone, Debug)]
enum Asker {
    Operator,
    Key { workspace: &'static str, role: &'static str, key: String },
    Nobody,
    MadeUpKey,
    RevokedKey(String),
}

impl Asker {
    fn headers(&self) -> Vec<(String, String)> {
        let bearer = |key: &str| vec![("Authorization".to_string(), format!("Bearer {key}"))];
        match self {
            Asker::Operator => bearer(TOKEN),
            Asker::Key { key, .. } | Asker::RevokedKey(key) => bearer(key),
            Asker::Nobody => Vec::new(),
            Asker::MadeUpKey => bearer(&format!("hlk_{}_{}", "0".repeat(16), "ab".repeat(32))),
        }
    }

    /// The status class a request of this asker to a route needing `needs`
    /// gets: `Some(status)` for a refusal, `None` for "let through" (any
    /// answer but 401 and 403). Routes are asked about workspace `acme`.
    fn refusal(&self, needs: Needs) -> Option<u16> {
        match (self, needs) {
            (_, Needs::Open | Needs::Webhook) => None,
            (Asker::Nobody | Asker::MadeUpKey | Asker::RevokedKey(_), _) => Some(401),
            (Asker::Operator, _) => None,
            (Asker::Key { .. }, Needs::Operator) => Some(403),
            (Asker::Key { role, .. }, Needs::Role(needed)) => (rank(role) < rank(needed)).then_some(403),
            (Asker::Key { workspace, role, .. }, Needs::Default(needed)) => {
                (rank(role) < rank(needed) || *workspace != "default").then_some(403)
            }
            // The path names `acme`: another workspace's admin finds none.
            (Asker::Key { role, .. }, Needs::KeysAdmin) if rank(role) < rank("admin") => Some(403),
            (Asker::Key { workspace, .. }, Needs::KeysAdmin) => (*workspace != "acme").then_some(404),
        }
    }
}

/// The route's path with its parameters filled: ids nobody has, so that a
/// request let through changes nothing that matters to the next one.
fn concrete(method: &str, path: &str) -> String {
    // The operator let through to remove a workspace removes none.
    let workspace = if method == "DELETE" && path == "/api/workspaces/{ws}" { "no-such-workspace" } else { "acme" };
    path.replace("{*path}", "nothing-here.js")
        .replace("{ws}", workspace)
        .replace("{key_id}", "0123456789abcdef")
        .replace("{id}", "0000000000000000000000000000dead")
        .replace("{name}", "no_such_thing")
}

/// What the operator sees of everything a request could change.
fn stored_everything(server: &Server) -> Vec<Value> {
    let get = |path: &str| as_operator(server, "GET", path, &Value::Null).json();
    let acme = |path: &str| server.request("GET", path, &[OPERATOR, ("X-Workspace", "acme")], b"").json();
    vec![
        get("/api/flows"),
        get("/api/runs?limit=500"),
        get("/api/services"),
        get("/api/secrets"),
        get("/api/schedules"),
        get("/api/workspaces"),
        get("/api/workspaces/acme/keys"),
        get("/api/workspaces/default/keys"),
        get("/api/audit?limit=500"),
        acme("/api/runs"),
    ]
}

on_both_backends! {
    /// Every route, asked by every role of two workspaces, the operator, no
    /// one, a made-up key and a revoked one: refused exactly where the
    /// table says, with nothing stored changed by a refusal. A route the
    /// server serves without a row here fails the test.
    #[test]
    fn every_route_answers_each_role_as_the_table_says() {
        let server = shared_server();
        make_workspace(&server, "acme");
        assert_eq!(as_operator(&server, "POST", "/api/flows", &Value::Null).status, 400);
        let served: Vec<(String, &str)> = ROUTES.iter().map(|(method, path, _)| (method.to_string(), *path)).collect();
        let expected: Vec<(String, &str)> = EXPECTED.iter().map(|(method, path, _)| (method.to_string(), *path)).collect();
        for route in &served {
            assert!(expected.contains(route), "{route:?} is served but has no row in this test's table");
        }
        for route in &expected {
            assert!(served.contains(route), "{route:?} is in this test's table but not served");
        }

        let mut askers = vec![Asker::Operator, Asker::Nobody, Asker::MadeUpKey];
        for workspace in ["default", "acme"] {
            for role in ROLES {
                askers.push(Asker::Key { workspace, role, key: make_key(&server, workspace, role).1 });
            }
        }
        let (revoked_id, revoked) = make_key(&server, "acme", "admin");
        let revoke = as_operator(&server, "DELETE", &format!("/api/workspaces/acme/keys/{revoked_id}"), &Value::Null);
        assert_eq!(revoke.status, 200, "{}", revoke.text());
        askers.push(Asker::RevokedKey(revoked));

        let ask = |asker: &Asker, method: &str, path: &str| -> Response {
            let headers = asker.headers();
            let mut headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            headers.push(("Content-Type", "application/json"));
            server.request(method, &concrete(method, path), &headers, b"{}")
        };

        // Refusals first, all of them, then nothing stored has changed.
        let before = stored_everything(&server);
        let mut refused = 0;
        for (method, path, needs) in EXPECTED {
            for asker in &askers {
                let Some(status) = asker.refusal(*needs) else { continue };
                let answer = ask(asker, method, path);
                assert_eq!(answer.status, status, "{method} {path} by {asker:?}: {}", answer.text());
                let expected_code = match status {
                    401 => "unauthorized",
                    404 => "not_found",
                    _ if matches!(needs, Needs::Default(_)) && matches!(asker, Asker::Key { workspace: "acme", .. }) => {
                        if code(&answer) == "forbidden" { "forbidden" } else { "workspace_unsupported" }
                    }
                    _ => "forbidden",
                };
                assert_eq!(code(&answer), expected_code, "{method} {path} by {asker:?}: {}", answer.text());
                refused += 1;
            }
        }
        assert!(refused > 300, "{refused} refusals tried");
        assert_eq!(stored_everything(&server), before, "a refused request changed what is stored");

        // Everyone else is let through (the answer is the route's own).
        for (method, path, needs) in EXPECTED {
            for asker in &askers {
                if asker.refusal(*needs).is_some() {
                    continue;
                }
                let answer = ask(asker, method, path);
                assert!(![401, 403].contains(&answer.status), "{method} {path} by {asker:?}: {}", answer.text());
            }
        }
    }

    /// Another workspace's run is a 404 with the body of one that never
    /// existed, on every route that names a run, the streams included; and
    /// the run list (and its stream) of a workspace holds its runs only.
    #[test]
    fn another_workspaces_runs_are_as_unknown_as_runs_that_never_were() {
        let server = shared_server();
        make_workspace(&server, "acme");
        let (_, acme_admin) = make_key(&server, "acme", "admin");
        let (_, default_viewer) = make_key(&server, "default", "viewer");
        assert_eq!(as_operator(&server, "POST", "/api/flows", &Value::Null).status, 400);
        let upload = server.request("POST", "/api/flows", &[OPERATOR, ("Content-Type", "text/x-python")], GREET.as_bytes());
        assert_eq!(upload.status, 201, "{}", upload.text());

        let mut acme_list = run_list_stream(&server, &acme_admin);
        let mut default_list = run_list_stream(&server, &default_viewer);
        let started = as_operator(&server, "POST", "/api/runs?wait=true", &json!({"flow": "greet", "input": {"who": "a"}}));
        assert_eq!(started.status, 200, "{}", started.text());
        let run_id = started.json()["run_id"].as_str().unwrap().to_string();
        let never = "0190c0de-0000-7000-8000-000000000000";

        for (method, suffix) in [
            ("GET", ""),
            ("GET", "/spans"),
            ("GET", "/logs"),
            ("GET", "/journal"),
            ("GET", "/otlp"),
            ("GET", "/source"),
            ("POST", "/cancel"),
        ] {
            let theirs = with_key(&server, &acme_admin, method, &format!("/api/runs/{run_id}{suffix}"), &Value::Null);
            let unknown = with_key(&server, &acme_admin, method, &format!("/api/runs/{never}{suffix}"), &Value::Null);
            assert_eq!((theirs.status, unknown.status), (404, 404), "{method} {suffix}: {}", theirs.text());
            assert_eq!(theirs.text().replace(&run_id, "ID"), unknown.text().replace(never, "ID"), "{method} {suffix}");
            let own = with_key(&server, &default_viewer, "GET", &format!("/api/runs/{run_id}{suffix}"), &Value::Null);
            if method == "GET" {
                assert_eq!(own.status, 200, "{suffix}: {}", own.text());
            }
        }
        assert_eq!(ws_status(&server, &format!("/api/runs/{run_id}/events"), &acme_admin), 404);
        assert_eq!(ws_status(&server, &format!("/api/runs/{run_id}/events"), &default_viewer), 101);
        let listed = with_key(&server, &acme_admin, "GET", "/api/runs", &Value::Null).json();
        assert_eq!(listed["runs"], json!([]), "{listed}");
        let listed = with_key(&server, &default_viewer, "GET", "/api/runs", &Value::Null).json();
        assert_eq!(listed["runs"][0]["run_id"], run_id.as_str());
        let filtered = with_key(&server, &acme_admin, "GET", &format!("/api/runs?first_run_id={run_id}"), &Value::Null);
        assert_eq!(filtered.json()["runs"], json!([]));

        // The default watcher heard the run end; the acme watcher, then,
        // has been sent nothing at all.
        let heard = next_message_within(&mut default_list, Duration::from_secs(30)).expect("the default watcher hears the run");
        assert_eq!(heard["run"]["run_id"], run_id.as_str(), "{heard}");
        while let Some(message) = next_message_within(&mut default_list, Duration::from_millis(500)) {
            assert_eq!(message["run"]["workspace"], "default", "{message}");
        }
        assert_eq!(next_message_within(&mut acme_list, Duration::from_millis(200)), None);
    }

    /// A key is shown once and stored as a digest; its workspace's admin
    /// lists its keys without secrets and makes and revokes them; a revoked
    /// key is refused at once; the audit log says who did what from where,
    /// a workspace's admin seeing its own entries only.
    #[test]
    fn keys_are_shown_once_revoked_at_once_and_every_change_is_audited() {
        let server = shared_server();
        make_workspace(&server, "acme");
        make_workspace(&server, "other");
        let (admin_id, admin) = make_key(&server, "acme", "admin");
        let made = with_key(&server, &admin, "POST", "/api/workspaces/acme/keys", &json!({"name": "ci", "role": "runner"}));
        assert_eq!(made.status, 201, "{}", made.text());
        let made = made.json();
        assert_eq!((made["workspace"].clone(), made["role"].clone(), made["name"].clone()), (json!("acme"), json!("runner"), json!("ci")));
        let (runner_id, runner) = (made["key_id"].as_str().unwrap().to_string(), made["key"].as_str().unwrap().to_string());
        assert!(runner.starts_with(&format!("hlk_{runner_id}_")), "{runner}");

        let whoami = with_key(&server, &runner, "GET", "/api/whoami", &Value::Null).json();
        assert_eq!((whoami["workspace"].clone(), whoami["role"].clone(), whoami["operator"].clone()), (json!("acme"), json!("runner"), json!(false)));
        let listed = with_key(&server, &admin, "GET", "/api/workspaces/acme/keys", &Value::Null);
        assert_eq!(listed.status, 200);
        assert!(!listed.text().contains(&runner[20..]), "a listed key shows its secret: {}", listed.text());
        assert!(!listed.text().contains("digest"), "{}", listed.text());
        let keys = listed.json()["keys"].clone();
        let names: Vec<&str> = keys.as_array().unwrap().iter().map(|k| k["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["admin", "ci"]);
        // Another workspace's keys are not there for this admin.
        let other = with_key(&server, &admin, "GET", "/api/workspaces/other/keys", &Value::Null);
        let none = with_key(&server, &admin, "GET", "/api/workspaces/nope/keys", &Value::Null);
        assert_eq!((other.status, none.status), (404, 404));
        assert_eq!(other.text().replace("other", "X"), none.text().replace("nope", "X"));
        // A key acts in its own workspace only.
        let elsewhere = server.request("GET", "/api/runs", &[("Authorization", &format!("Bearer {admin}")), ("X-Workspace", "other")], b"");
        assert_eq!(elsewhere.status, 403, "{}", elsewhere.text());

        let revoked = with_key(&server, &admin, "DELETE", &format!("/api/workspaces/acme/keys/{runner_id}"), &Value::Null);
        assert_eq!(revoked.status, 200, "{}", revoked.text());
        let refused = with_key(&server, &runner, "GET", "/api/whoami", &Value::Null);
        assert_eq!((refused.status, code(&refused)), (401, "unauthorized".to_string()));
        let again = with_key(&server, &admin, "DELETE", &format!("/api/workspaces/acme/keys/{runner_id}"), &Value::Null);
        assert_eq!(again.status, 404);

        let audit = with_key(&server, &admin, "GET", "/api/audit", &Value::Null);
        assert_eq!(audit.status, 200, "{}", audit.text());
        let entries = audit.json()["entries"].as_array().unwrap().clone();
        let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["key.revoke", "key.create", "key.create", "workspace.create"], "{entries:?}");
        assert!(entries.iter().all(|e| e["workspace"] == "acme"), "{entries:?}");
        assert_eq!((entries[0]["actor"].clone(), entries[0]["key_id"].clone(), entries[0]["key_name"].clone()), (json!("key"), json!(admin_id), json!("admin")));
        assert_eq!((entries[0]["target"].clone(), entries[0]["client"].clone()), (json!(runner_id), json!("127.0.0.1")));
        assert_eq!(entries[2]["actor"], "operator");
        assert!(!audit.text().contains(&runner[20..]), "the audit log holds a key");
        // The operator sees everyone's, or one workspace's.
        let all = as_operator(&server, "GET", "/api/audit", &Value::Null).json();
        let workspaces: std::collections::BTreeSet<&str> = all["entries"].as_array().unwrap().iter().map(|e| e["workspace"].as_str().unwrap()).collect();
        assert_eq!(workspaces.into_iter().collect::<Vec<_>>(), ["acme", "other"]);
        let one = as_operator(&server, "GET", "/api/audit?workspace=other", &Value::Null).json();
        assert_eq!(one["entries"].as_array().unwrap().len(), 1, "{one}");
        // The log has no route that rewrites it.
        assert_eq!(as_operator(&server, "DELETE", "/api/audit", &Value::Null).status, 405);

        // Runs started and cancelled are in it, with who started them.
        let (_, default_runner) = make_key(&server, "default", "runner");
        assert_eq!(server.request("POST", "/api/flows", &[OPERATOR, ("Content-Type", "text/x-python")], GREET.as_bytes()).status, 201);
        let started = with_key(&server, &default_runner, "POST", "/api/runs?wait=true", &json!({"flow": "greet", "input": {"who": "b"}}));
        assert_eq!(started.status, 200, "{}", started.text());
        let run_id = started.json()["run_id"].as_str().unwrap().to_string();
        let entries = as_operator(&server, "GET", "/api/audit?workspace=default", &Value::Null).json()["entries"].clone();
        assert_eq!((entries[0]["action"].clone(), entries[0]["target"].clone(), entries[0]["key_name"].clone()), (json!("run.start"), json!(run_id), json!("runner")));
        assert_eq!(entries[0]["detail"]["flow"], "greet");
        // A runner may not run source of its own.
        let source = with_key(&server, &default_runner, "POST", "/api/runs", &json!({"source": GREET}));
        assert_eq!((source.status, code(&source)), (403, "forbidden".to_string()));
    }

    /// The workspaces' own life: names checked, no two alike, `default`
    /// kept, a removed workspace's keys gone with it, `X-Workspace` naming
    /// where the operator acts.
    #[test]
    fn workspaces_are_made_listed_and_removed_by_the_operator() {
        let server = shared_server();
        let bad = as_operator(&server, "POST", "/api/workspaces", &json!({"name": "Acme Corp"}));
        assert_eq!((bad.status, code(&bad)), (400, "invalid_workspace".to_string()));
        make_workspace(&server, "acme");
        let twice = as_operator(&server, "POST", "/api/workspaces", &json!({"name": "acme"}));
        assert_eq!((twice.status, code(&twice)), (409, "workspace_exists".to_string()));
        let listed = as_operator(&server, "GET", "/api/workspaces", &Value::Null).json();
        let names: Vec<&str> = listed["workspaces"].as_array().unwrap().iter().map(|w| w["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["acme", "default"]);

        let here = server.request("GET", "/api/whoami", &[OPERATOR, ("X-Workspace", "acme")], b"").json();
        assert_eq!((here["workspace"].clone(), here["operator"].clone()), (json!("acme"), json!(true)));
        let nowhere = server.request("GET", "/api/runs", &[OPERATOR, ("X-Workspace", "nope")], b"");
        assert_eq!(nowhere.status, 404, "{}", nowhere.text());
        let malformed = server.request("GET", "/api/runs", &[OPERATOR, ("X-Workspace", "../x")], b"");
        assert_eq!(malformed.status, 400, "{}", malformed.text());

        let limits = as_operator(&server, "PUT", "/api/workspaces/acme/limits", &json!({"max_concurrent": 2, "max_queued": 50}));
        assert_eq!(limits.status, 200, "{}", limits.text());
        let bad_limits = as_operator(&server, "PUT", "/api/workspaces/acme/limits", &json!({"max_concurrent": 0}));
        assert_eq!(bad_limits.status, 400);
        let unknown_field = as_operator(&server, "PUT", "/api/workspaces/acme/limits", &json!({"max_cpu": 2}));
        assert_eq!(unknown_field.status, 400);
        let listed = as_operator(&server, "GET", "/api/workspaces", &Value::Null).json();
        assert_eq!(listed["workspaces"][0]["limits"], json!({"max_concurrent": 2, "max_queued": 50}));

        let (_, key) = make_key(&server, "acme", "viewer");
        assert_eq!(with_key(&server, &key, "GET", "/api/whoami", &Value::Null).status, 200);
        let default = as_operator(&server, "DELETE", "/api/workspaces/default", &Value::Null);
        assert_eq!(default.status, 400);
        let removed = as_operator(&server, "DELETE", "/api/workspaces/acme", &Value::Null);
        assert_eq!(removed.status, 200, "{}", removed.text());
        assert_eq!(with_key(&server, &key, "GET", "/api/whoami", &Value::Null).status, 401);
        assert_eq!(as_operator(&server, "DELETE", "/api/workspaces/acme", &Value::Null).status, 404);
        let audit = as_operator(&server, "GET", "/api/audit?workspace=acme", &Value::Null).json();
        let actions: Vec<&str> = audit["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["workspace.remove", "key.create", "workspace.limits", "workspace.create"]);
    }
}

/// A key revoked on one node is refused on another moments later (each
/// node believes what it looked up of a key for half a second).
#[test]
fn a_key_revoked_on_one_node_is_refused_on_every_node() {
    let url = hero_logic::throwaway_postgres::fresh_database();
    let one = Server::start_node(&url, "one", &["--token", TOKEN]);
    let two = Server::start_node(&url, "two", &["--token", TOKEN]);
    make_workspace(&one, "acme");
    let (key_id, key) = make_key(&one, "acme", "viewer");
    assert_eq!(with_key(&two, &key, "GET", "/api/whoami", &Value::Null).status, 200);
    let revoked = as_operator(&one, "DELETE", &format!("/api/workspaces/acme/keys/{key_id}"), &Value::Null);
    assert_eq!(revoked.status, 200);
    let at = Instant::now();
    assert_eq!(with_key(&one, &key, "GET", "/api/whoami", &Value::Null).status, 401, "at once on the revoking node");
    eventually("the other node to refuse the key", || {
        with_key(&two, &key, "GET", "/api/whoami", &Value::Null).status == 401
    });
    eprintln!("a key revoked on one node was refused on the other after {:?}", at.elapsed());
}

type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;

fn ws_request(server: &Server, path: &str, key: &str) -> tungstenite::handshake::client::Request {
    let mut request = format!("ws://{}{path}", server.addr).into_client_request().unwrap();
    request.headers_mut().insert("Authorization", HeaderValue::from_str(&format!("Bearer {key}")).unwrap());
    request
}

fn run_list_stream(server: &Server, key: &str) -> Socket {
    let (socket, _) = tungstenite::connect(ws_request(server, "/api/events", key)).expect("the run list stream");
    socket
}

fn ws_status(server: &Server, path: &str, key: &str) -> u16 {
    match tungstenite::connect(ws_request(server, path, key)) {
        Ok((mut socket, response)) => {
            let _ = socket.close(None);
            response.status().as_u16()
        }
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("handshake to {path} failed without an HTTP answer: {other}"),
    }
}

/// The next message on a run list stream, or None when none came within
/// `wait`.
fn next_message_within(socket: &mut Socket, wait: Duration) -> Option<Value> {
    if let tungstenite::stream::MaybeTlsStream::Plain(stream) = socket.get_mut() {
        stream.set_read_timeout(Some(wait)).unwrap();
    }
    loop {
        match socket.read() {
            Ok(tungstenite::Message::Text(text)) => return Some(serde_json::from_str(&text).unwrap()),
            Ok(tungstenite::Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// The operator's command line makes workspaces and keys in the data
/// directory a server uses: the key it prints once works there, a revoked
/// one stops working, mistakes exit 2 with one line, and each change is in
/// the audit log as the operator's from the command line.
#[test]
fn the_command_line_makes_workspaces_and_keys_a_server_honours() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cli = |args: &[&str]| super::support::hero_logic().args(args).arg("--data-dir").arg(&data).output().unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).trim().to_string();

    let made = cli(&["workspaces", "add", "acme"]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    for wrong in [
        &["workspaces", "add", "Acme Corp"][..],
        &["workspaces", "add", "acme"],
        &["keys", "add", "ci", "--role", "owner", "--workspace", "acme"],
        &["keys", "add", "ci", "--role", "runner", "--workspace", "nope"],
        &["workspaces", "remove", "default"],
    ] {
        let refused = cli(wrong);
        assert_eq!(refused.status.code(), Some(2), "{wrong:?}: {}", text(&refused.stderr));
        assert_eq!(text(&refused.stderr).lines().count(), 1, "{wrong:?}: {}", text(&refused.stderr));
    }
    let added = cli(&["keys", "add", "ci", "--role", "runner", "--workspace", "acme"]);
    assert!(added.status.success(), "{}", text(&added.stderr));
    let key = text(&added.stdout);
    assert!(key.starts_with("hlk_"), "the key alone on stdout: {key}");
    let listed = cli(&["keys", "list", "--workspace", "acme", "--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["keys"][0]["name"], "ci");
    assert!(!listed.to_string().contains(&key[20..]), "a listed key shows its secret");
    let key_id = listed["keys"][0]["key_id"].as_str().unwrap().to_string();

    let server = Server::start_on(&data, &["--token", TOKEN]);
    let whoami = with_key(&server, &key, "GET", "/api/whoami", &Value::Null);
    assert_eq!(whoami.status, 200, "{}", whoami.text());
    assert_eq!((whoami.json()["workspace"].clone(), whoami.json()["role"].clone()), (json!("acme"), json!("runner")));
    let revoked = cli(&["keys", "revoke", &key_id, "--workspace", "acme"]);
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    eventually("the server to refuse the revoked key", || {
        with_key(&server, &key, "GET", "/api/whoami", &Value::Null).status == 401
    });
    let audit = as_operator(&server, "GET", "/api/audit?workspace=acme", &Value::Null).json();
    let entries = audit["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["key.revoke", "key.create", "workspace.create"], "{audit}");
    assert!(entries.iter().all(|e| e["actor"] == "operator" && e["detail"]["via"] == "command line"), "{audit}");
}
