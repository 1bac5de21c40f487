//! Secrets: set over the API or the command line, added by the host as a
//! header to a real service's calls, and nowhere else: not in an API
//! answer, a span, a log line, /metrics, the registry flows read, the
//! store's bytes or the server's own logs.

use super::server_support::{Server, request};
use super::services::{Killed, call_service, spawn_service};
use crate::on_both_backends;
use serde_json::{Value, json};
use std::process::Stdio;

const HEADERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/services/headers.py");
const ECHOING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/services/echoing.py");
/// Long and unlike anything else, so finding it anywhere is a leak.
const VALUE: &str = "hl-secret-7f3a9c1e5b2d4086a1c3e5f7";
const ROTATED: &str = "hl-secret-rotated-0b1d3f5a7c9e";
/// A digits-only secret (an account number), which a careless service
/// answers as a JSON number.
const ACCOUNT: &str = "987654321987";
/// Its first nine digits: what a service fits into a 32-bit error code.
const ACCOUNT_PREFIX: &str = "987654321";

/// Reads the echoing service's description as flows can, and what it
/// answers and refuses, keeping all of it in the run's spans, log and output.
const READS_ITS_DESCRIPTION: &str = r#"from hero_logic import flow, services

@flow(services=["echoing", "registry"])
def reads_its_description():
    listed = [s for s in services.registry.list() if s["name"] == "echoing"]
    echoed = services.echoing.echo()
    try:
        services.echoing.refuse()
        refused = None
    except services.RpcError as e:
        refused = {"code": e.code, "message": e.message, "data": e.data}
    with flow.step("seen", listed=listed, echoed=echoed, refused=refused):
        flow.log(str([listed, echoed, refused]))
    return {"listed": listed, "echoed": echoed, "refused": refused}
"#;

const LEAK: &str = r#"from hero_logic import flow, services

@flow(services=["echo", "registry"])
def leak():
    got = services.echo.received()
    print(got)
    with flow.step("echoed", got=got):
        flow.log(str(got))
    try:
        services.echo.refuse()
    except services.RpcError as e:
        refused = {"message": e.message, "data": e.data}
    return {"got": got, "refused": refused, "registry": services.registry.list()}
"#;

/// Keep an answer, to search them all for the value at the end.
fn keep(answers: &mut Vec<(String, String)>, what: &str, response: &super::server_support::Response) {
    answers.push((what.to_string(), response.text()));
}

fn code(response: &super::server_support::Response) -> Value {
    response.json()["error"]["code"].clone()
}

fn bytes_hold(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle.as_bytes())
}

/// Every file under `dir`, read whole.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(files_under(&path));
        } else {
            all.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    all
}

on_both_backends! {
    #[test]
    fn a_secret_reaches_its_service_as_a_header_and_appears_nowhere_else() {
        let mut server = Server::start_logging(&[]);
        let (child, url) = spawn_service(HEADERS, &["--port", "0"], &[]);
        let _service = Killed(child);
        let mut answers: Vec<(String, String)> = Vec::new();

        // Bad input: a precise 400 that never repeats the value.
        for (body, says) in [
            (json!({"name": "1st", "value": VALUE}), "cannot be a secret name"),
            (json!({"name": "API_TOKEN", "value": ""}), "printable ASCII"),
            (json!({"name": "API_TOKEN", "value": format!("{VALUE}\r\nX: y")}), "printable ASCII"),
        ] {
            let refused = server.post_json("/api/secrets", &body);
            assert_eq!((refused.status, code(&refused)), (400, json!("invalid_secret")), "{body}");
            assert!(refused.text().contains(says), "{}", refused.text());
            keep(&mut answers, "refused secret", &refused);
        }
        let unknown_field = server.post_json("/api/secrets", &json!({"name": "A", "value": VALUE, "x": 1}));
        assert_eq!(unknown_field.status, 400);
        keep(&mut answers, "unknown field", &unknown_field);
        let missing = server.post_json(
            "/api/services",
            &json!({"name": "echo", "url": url, "headers": {"Authorization": "Bearer {{secret:API_TOKEN}}"}}),
        );
        assert_eq!((missing.status, code(&missing)), (400, json!("invalid_service")));
        assert!(missing.text().contains("no secret named 'API_TOKEN'"), "{}", missing.text());
        let malformed =
            server.post_json("/api/services", &json!({"name": "echo", "url": url, "headers": {"Host": "x"}}));
        assert_eq!((malformed.status, code(&malformed)), (400, json!("invalid_service")));

        let set = server.post_json("/api/secrets", &json!({"name": "API_TOKEN", "value": VALUE}));
        assert_eq!(set.status, 201, "{}", set.text());
        assert_eq!(set.json()["name"], "API_TOKEN");
        keep(&mut answers, "set", &set);
        let registered = server.post_json(
            "/api/services",
            &json!({"name": "echo", "url": url, "headers": {"Authorization": "Bearer {{secret:API_TOKEN}}"}}),
        );
        assert_eq!(registered.status, 201, "{}", registered.text());
        assert_eq!(registered.json()["headers"], json!(["Authorization"]), "names only");
        keep(&mut answers, "register", &registered);

        let run = server.post_json("/api/runs?wait=true", &json!({"source": LEAK, "flow": "leak", "input": {}}));
        assert_eq!(run.status, 200, "{}", run.text());
        keep(&mut answers, "run", &run);
        let output = &run.json()["output"];
        assert_eq!(run.json()["status"], "ok", "{}", run.text());
        let expected = hero_logic::store::sha256_hex(&format!("Bearer {VALUE}"));
        assert_eq!(output["got"]["authorization_sha256"], expected, "the service received the secret");
        assert_eq!(output["got"]["headers"]["authorization"], "Bearer [redacted]", "an echoed value is redacted");
        assert_eq!(output["refused"]["message"], "refused Bearer [redacted]", "so is one in an error");
        assert_eq!(output["refused"]["data"]["authorization"], "Bearer [redacted]");
        let run_id = run.json()["run_id"].as_str().unwrap().to_string();

        let reads = [
            "/api/secrets".to_string(),
            "/api/services".into(),
            "/api/stubs/hero_logic.pyi".into(),
            "/api/runs".into(),
            format!("/api/runs/{run_id}"),
            format!("/api/runs/{run_id}/spans"),
            format!("/api/runs/{run_id}/logs"),
            format!("/api/runs/{run_id}/otlp"),
            format!("/api/runs/{run_id}/journal"),
            format!("/api/runs/{run_id}/source"),
            "/metrics".into(),
        ];
        for path in &reads {
            let answer = server.get(path);
            assert_eq!(answer.status, 200, "{path}");
            keep(&mut answers, path, &answer);
        }
        // A health check carries the service's headers, as a flow's call does.
        let health = server.request("POST", "/api/services/echo/health", &[], b"");
        assert_eq!(health.json()["ok"], true, "{}", health.text());
        keep(&mut answers, "health", &health);
        let listed = server.get("/api/secrets").json();
        assert_eq!(listed["secrets"][0]["name"], "API_TOKEN");
        assert!(listed["secrets"][0]["created_us"].is_i64() && listed["secrets"][0].get("value").is_none());
        let events = server.events(&run_id, 0).all();
        answers.push(("events".into(), serde_json::to_string(&events).unwrap()));
        assert!(answers.iter().any(|(_, text)| text.contains("[redacted]")), "the redacted echo was looked at");

        // A new value is used from the next call on.
        assert_eq!(server.post_json("/api/secrets", &json!({"name": "API_TOKEN", "value": ROTATED})).status, 201);
        let rotated = server.post_json("/api/runs?wait=true", &json!({"source": LEAK, "flow": "leak", "input": {}}));
        let expected = hero_logic::store::sha256_hex(&format!("Bearer {ROTATED}"));
        assert_eq!(rotated.json()["output"]["got"]["authorization_sha256"], expected);
        keep(&mut answers, "rotated run", &rotated);

        // Removed: the call fails saying which secret, and nothing else.
        let removed = server.request("DELETE", "/api/secrets/API_TOKEN", &[], b"");
        assert_eq!(removed.status, 200);
        let again = server.request("DELETE", "/api/secrets/API_TOKEN", &[], b"");
        assert_eq!((again.status, code(&again)), (404, json!("not_found")));
        let failed = server.post_json("/api/runs?wait=true", &json!({"source": LEAK, "flow": "leak", "input": {}}));
        assert_eq!(failed.json()["status"], "failed", "{}", failed.text());
        assert!(failed.text().contains("secret 'API_TOKEN' is not set"), "{}", failed.text());
        keep(&mut answers, "failed run", &failed);

        for (what, text) in &answers {
            for value in [VALUE, ROTATED] {
                assert!(!text.contains(value), "{what} holds the secret: {text}");
            }
        }
        server.terminate();
        let log = std::fs::read(server.log.as_ref().unwrap()).unwrap();
        assert!(!log.is_empty(), "the server logged at debug level");
        for value in [VALUE, ROTATED] {
            assert!(!bytes_hold(&log, value), "the server's log holds the secret");
        }
        match &server.database {
            None => {
                let files = files_under(&server.data_dir);
                assert!(files.iter().any(|(path, _)| path.ends_with("hero_logic.db")));
                for (path, bytes) in &files {
                    for value in [VALUE, ROTATED] {
                        assert!(!bytes_hold(bytes, value), "{} holds the secret", path.display());
                    }
                }
                let key = server.data_dir.join(hero_logic::secrets::KEY_FILE);
                let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(key).unwrap().permissions());
                assert_eq!(mode & 0o777, 0o600, "the key file is its owner's only");
            }
            Some(url) => {
                // What the database holds of the secret, read back as a node would.
                let runtime = tokio::runtime::Runtime::new().unwrap();
                runtime.block_on(async {
                    let database = hero_logic::store::Database::Postgres(url.clone());
                    let store = hero_logic::store::Store::open(&database).await.unwrap();
                    let service = store.service("echo").await.unwrap().unwrap();
                    assert_eq!(service.headers["Authorization"], "Bearer {{secret:API_TOKEN}}");
                    assert!(store.secrets().await.unwrap().is_empty(), "removed");
                    store.close().await;
                });
            }
        }
    }

    /// A service that repeats the headers it is sent in its own OpenRPC
    /// document, its answers, its errors and its health hands the secrets
    /// to nobody: not the registration's answer, the services list, the
    /// stubs, `registry.list()` in a flow (so not its output, spans, log,
    /// journal or replay), a health check, nor the database. A digits-only
    /// secret answered as a number, or cut into an error code, neither.
    #[test]
    fn a_service_that_repeats_its_secrets_in_its_own_description_hands_them_to_nobody() {
        let mut server = Server::start(&[]);
        let (child, url) = spawn_service(ECHOING, &["--port", "0"], &[]);
        let _service = Killed(child);
        let mut answers: Vec<(String, String)> = Vec::new();
        for (name, value) in [("API_TOKEN", VALUE), ("ACCOUNT", ACCOUNT)] {
            assert_eq!(server.post_json("/api/secrets", &json!({"name": name, "value": value})).status, 201);
        }
        let headers = json!({"Authorization": "Bearer {{secret:API_TOKEN}}", "X-Account": "{{secret:ACCOUNT}}"});
        let registered = server.post_json("/api/services", &json!({"name": "echoing", "url": url, "headers": headers}));
        assert_eq!(registered.status, 201, "{}", registered.text());
        keep(&mut answers, "register", &registered);
        let redacted_description = "Serving Bearer [redacted] for account [redacted].";
        assert_eq!(registered.json()["doc"]["description"], redacted_description);
        assert_eq!(registered.json()["doc"]["methods"][0]["summary"], "Echoes Bearer [redacted].");

        let run = server.post_json(
            "/api/runs?wait=true",
            &json!({"source": READS_ITS_DESCRIPTION, "flow": "reads_its_description", "input": {}}),
        );
        assert_eq!(run.json()["status"], "ok", "{}", run.text());
        keep(&mut answers, "run", &run);
        let output = &run.json()["output"];
        assert_eq!(output["listed"][0]["doc"]["description"], redacted_description, "registry.list()");
        let echoed = &output["echoed"];
        assert_eq!(echoed["text"], "you are Bearer [redacted] ([redacted])");
        assert_eq!(echoed["keys"], json!({"Bearer [redacted]": 1, "[redacted]": 2}));
        assert_eq!(echoed["nested"], json!([[{"deep": "Bearer [redacted]"}], ["[redacted]"]]));
        assert_eq!(echoed["account_number"], "[redacted]", "a digits-only secret answered as a number");
        assert_eq!(echoed["account_prefix"], "[redacted]", "and its first nine digits");
        let refused = &output["refused"];
        // An error code made of its digits becomes -32000 (`REDACTED_CODE`), a JSON-RPC server error.
        assert_eq!(refused["code"], -32000, "{refused}");
        assert_eq!(refused["data"], json!({"why": [{"account": "[redacted]"}]}));
        assert!(refused["message"].as_str().unwrap().contains("refused Bearer [redacted]"), "{refused}");
        let run_id = run.json()["run_id"].as_str().unwrap().to_string();
        let replay = server.post_json(&format!("/api/runs/{run_id}/replay?wait=true"), &json!({}));
        assert_eq!(replay.json()["status"], "ok", "{}", replay.text());
        keep(&mut answers, "replay", &replay);
        let replay_id = replay.json()["run_id"].as_str().unwrap().to_string();

        let health = server.request("POST", "/api/services/echoing/health", &[], b"");
        assert_eq!(health.json()["ok"], true, "{}", health.text());
        keep(&mut answers, "health", &health);
        // From now on its rpc.discover is an error that repeats both headers.
        call_service(&url, "break_discover");
        let failing = server.request("POST", "/api/services/echoing/health", &[], b"");
        assert_eq!(failing.json()["ok"], false, "{}", failing.text());
        assert!(failing.json()["error"].as_str().unwrap().contains("cannot describe myself to Bearer [redacted]"));
        keep(&mut answers, "failing health", &failing);

        let mut reads = vec!["/api/services".to_string(), "/api/stubs/hero_logic.pyi".into(), "/api/runs".into()];
        for id in [&run_id, &replay_id] {
            for part in ["", "/spans", "/logs", "/journal", "/otlp"] {
                reads.push(format!("/api/runs/{id}{part}"));
            }
        }
        for path in &reads {
            let answer = server.get(path);
            assert_eq!(answer.status, 200, "{path}");
            keep(&mut answers, path, &answer);
        }
        assert!(answers.iter().any(|(_, text)| text.contains(redacted_description)), "the description was looked at");
        for (what, text) in &answers {
            for value in [VALUE, ACCOUNT, ACCOUNT_PREFIX] {
                assert!(!text.contains(value), "{what} holds a secret ({value}): {text}");
            }
        }

        server.terminate();
        for (what, bytes) in stored_bytes(&server) {
            for value in [VALUE, ACCOUNT, ACCOUNT_PREFIX] {
                assert!(!bytes_hold(&bytes, value), "{what} holds a secret ({value})");
            }
        }
    }

    /// A document an earlier version stored with a secret in it is redacted
    /// when it is listed, stubbed or read by a flow.
    #[test]
    fn a_document_stored_holding_a_secret_is_redacted_when_shown() {
        let mut server = Server::start(&[]);
        let (child, url) = spawn_service(ECHOING, &["--port", "0"], &[]);
        let _service = Killed(child);
        assert_eq!(server.post_json("/api/secrets", &json!({"name": "API_TOKEN", "value": VALUE})).status, 201);
        let headers = json!({"Authorization": "Bearer {{secret:API_TOKEN}}"});
        let registered = server.post_json("/api/services", &json!({"name": "echoing", "url": url, "headers": headers}));
        assert_eq!(registered.status, 201, "{}", registered.text());
        server.terminate();

        // The document as a version that did not redact it stored it.
        let database = match &server.database {
            None => hero_logic::store::Database::Sqlite(server.data_dir.join("hero_logic.db")),
            Some(url) => hero_logic::store::Database::Postgres(url.clone()),
        };
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let store = hero_logic::store::Store::open(&database).await.unwrap();
            let mut service = store.service("echoing").await.unwrap().unwrap();
            service.document["info"]["description"] = json!(format!("Serving Bearer {VALUE}."));
            store.save_service(service).await.unwrap();
            store.close().await;
        });

        let mut again = Server::start_on(&server.data_dir, &[]);
        let listed = again.get("/api/services");
        let stubs = again.get("/api/stubs/hero_logic.pyi");
        let run = again.post_json(
            "/api/runs?wait=true",
            &json!({"source": READS_ITS_DESCRIPTION, "flow": "reads_its_description", "input": {}}),
        );
        assert_eq!(run.json()["status"], "ok", "{}", run.text());
        assert_eq!(run.json()["output"]["listed"][0]["doc"]["description"], "Serving Bearer [redacted].");
        for (what, answer) in [("list", &listed), ("stubs", &stubs), ("run", &run)] {
            assert!(answer.text().contains("Serving Bearer [redacted]."), "{what}: {}", answer.text());
            assert!(!answer.text().contains(VALUE), "{what} holds the secret: {}", answer.text());
        }
        again.terminate();
    }
}

/// The guard's rules hold for the secrets routes: a foreign page can
/// neither set nor read nor remove one; with a token nothing goes without it.
#[test]
fn the_secrets_routes_refuse_foreign_pages_and_callers_without_the_token() {
    let server = Server::start(&[]);
    let foreign = [("Origin", "http://evil.example"), ("Content-Type", "text/plain")];
    let body = json!({"name": "T", "value": VALUE}).to_string();
    for (method, path, body) in
        [("POST", "/api/secrets", body.as_bytes()), ("GET", "/api/secrets", b""), ("DELETE", "/api/secrets/T", b"")]
    {
        let refused = server.request(method, path, &foreign, body);
        assert_eq!((refused.status, code(&refused)), (403, json!("forbidden_origin")), "{method} {path}");
    }
    assert_eq!(server.get("/api/secrets").json()["secrets"], json!([]), "nothing was set");

    let guarded = Server::start(&["--token", "s3cret"]);
    let token = [("Authorization", "Bearer s3cret"), ("Content-Type", "application/json")];
    for (method, path) in [("POST", "/api/secrets"), ("GET", "/api/secrets"), ("DELETE", "/api/secrets/T")] {
        let denied = request(&guarded.addr, method, path, &[("Content-Type", "application/json")], body.as_bytes());
        assert_eq!((denied.status, code(&denied)), (401, json!("unauthorized")), "{method} {path}");
    }
    let set = guarded.request("POST", "/api/secrets", &token, body.as_bytes());
    assert_eq!(set.status, 201, "{}", set.text());
    let removed = guarded.request("DELETE", "/api/secrets/T", &token, b"");
    assert_eq!(removed.status, 200);
}

/// `hero_logic secrets set NAME` reads the value from stdin and seals it in
/// the data directory's store; `list` shows names only; `remove` removes.
#[test]
fn the_command_line_sets_lists_and_removes_secrets_reading_values_from_stdin() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let mut set = super::support::hero_logic()
        .args(["secrets", "set", "CLI_TOKEN", "--data-dir", data])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    set.stdin.take().unwrap().write_all(format!("{VALUE}\n").as_bytes()).unwrap();
    let set = set.wait_with_output().unwrap();
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let listed = super::support::hero_logic().args(["secrets", "list", "--json", "--data-dir", data]).output().unwrap();
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["secrets"][0]["name"], "CLI_TOKEN");
    assert!(!listed.to_string().contains(VALUE));
    for (path, bytes) in files_under(std::path::Path::new(data)) {
        assert!(!bytes_hold(&bytes, VALUE), "{} holds the secret", path.display());
    }
    let removed = super::support::hero_logic().args(["secrets", "remove", "CLI_TOKEN", "--data-dir", data]).output();
    assert!(removed.unwrap().status.success());
    let again = super::support::hero_logic().args(["secrets", "remove", "CLI_TOKEN", "--data-dir", data]).output();
    assert_eq!(again.unwrap().status.code(), Some(2), "no such secret");
}

/// What the database holds, as text: every file of a SQLite data
/// directory, or every row of PostgreSQL's services table.
fn stored_bytes(server: &Server) -> Vec<(String, Vec<u8>)> {
    match &server.database {
        None => {
            files_under(&server.data_dir).into_iter().map(|(path, bytes)| (path.display().to_string(), bytes)).collect()
        }
        Some(url) => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(connection);
                let rows = client.query("SELECT s::text FROM services s", &[]).await.unwrap();
                assert!(!rows.is_empty(), "the service is stored");
                rows.iter().map(|row| ("services row".to_string(), row.get::<_, String>(0).into_bytes())).collect()
            })
        }
    }
}
