//! Services: a real JSON-RPC service in its own process, registered and
//! called from flows, every call an `rpc` span the host records.

use super::server_support::{Server, eventually};
use crate::on_both_backends;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const WEATHER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/services/weather.py");
/// The built-in services, in the order the registry lists them.
const BUILT_INS: [&str; 5] = ["kv", "library", "flows", "runs", "registry"];
const DOCUMENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/services/weather.openrpc.json");

/// `examples/services/weather.py`, running as its own process.
pub struct Weather {
    child: Child,
    pub url: String,
}

/// A process stopped when the test is done with it, however it ends.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One JSON-RPC call straight to the service at `url`, not through hero_logic.
pub fn call_service(url: &str, method: &str) -> Value {
    let addr = url.strip_prefix("http://").expect("an http:// service");
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {}}).to_string();
    super::server_support::request(addr, "POST", "/", &[("Content-Type", "application/json")], body.as_bytes()).json()
}

/// Start a Python service script; it prints `listening on URL` when ready.
pub fn spawn_service(script: &str, args: &[&str], env: &[(&str, &str)]) -> (Child, String) {
    let mut child = Command::new("python3")
        .arg(script)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python3");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("listening on ").expect("the service prints its address").to_string();
    (child, url)
}

impl Weather {
    fn start(args: &[&str]) -> Weather {
        let (child, url) = spawn_service(WEATHER, args, &[]);
        Weather { child, url }
    }

    pub fn http() -> Weather {
        Weather::start(&["--port", "0"])
    }
}

impl Drop for Weather {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn register(server: &Server, name: &str, url: &str, extra: Value) -> super::server_support::Response {
    let mut body = json!({"name": name, "url": url});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    server.post_json("/api/services", &body)
}

fn run(server: &Server, source: &str, flow: &str, input: Value) -> Value {
    let response = server.post_json("/api/runs?wait=true", &json!({"source": source, "flow": flow, "input": input}));
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

fn span<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    spans.iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
}

const CALLS: &str = r#"from hero_logic import flow, services

@flow(inputs={"city": "string", "days": "integer"}, services=["weather"])
def good(city, days):
    with flow.step("fetch"):
        return services.weather.forecast(city=city, days=days)

@flow(inputs={"days": "any"}, services=["weather"])
def bad_params(days):
    try:
        services.weather.forecast(city="Ghent", days=days)
    except services.InvalidParams as e:
        return {"type": type(e).__name__, "message": str(e), "is_type_error": isinstance(e, TypeError)}

@flow(inputs={"city": "any", "days": "any"}, services=["weather"])
def checked(city, days):
    try:
        return services.weather.forecast(city=city, days=days)["city"]
    except services.InvalidParams as e:
        return str(e)

@flow(services=["weather"])
def rpc_error():
    try:
        services.weather.alert(city="Oslo")
    except services.RpcError as e:
        return {"code": e.code, "message": e.message, "data": e.data}

@flow(services=["weather"])
def unknown_method():
    try:
        services.weather.tomorrow()
    except AttributeError as e:
        # Every refusal is a ServiceError, and the builtin exception it was.
        assert isinstance(e, services.UnknownMethod) and isinstance(e, services.ServiceError), type(e)
        assert (e.service, e.method) == ("weather", "tomorrow")
        return str(e)

@flow(services=["weather"])
def denied_is_a_service_error():
    try:
        services.kv.get(key="x")
    except services.ServiceError as e:
        return {"type": type(e).__name__, "permission_error": isinstance(e, PermissionError), "service": e.service}

@flow(services=["weather"])
def hangs():
    try:
        services.weather.slow(seconds=5)
    except services.ServiceTimeout as e:
        return {"type": type(e).__name__, "message": str(e)}

@flow(services=["down"])
def down():
    try:
        services.down.cities()
    except services.ServiceUnavailable as e:
        return {"type": type(e).__name__, "message": str(e)}

@flow()
def undeclared():
    with flow.step("try"):
        services.weather.cities()

@flow(services=["weather"])
def overlapping():
    with flow.step("gather"):
        return services.gather(
            services.weather.slow.request(seconds=0.4),
            services.weather.slow.request(seconds=0.4),
            services.weather.slow.request(seconds=0.4),
        )

@flow(inputs={"count": "integer"}, services=["weather"])
def repeated(count):
    opened = services.weather.connections()
    for i in range(count):
        services.weather.cities()
    return services.weather.connections() - opened

@flow(services=["weather"])
def cities():
    try:
        return services.weather.cities()
    except services.ServiceUnavailable as e:
        return {"type": type(e).__name__, "message": str(e)}

@flow(services=["weather"])
def many_calls():
    for i in range(5):
        services.weather.cities()
"#;

#[test]
fn params_are_checked_against_schemas_by_reference_with_one_of_and_pattern() {
    let weather = Weather::http();
    let server = Server::start(&[]);
    // The weather document in the usual OpenRPC style: the city a
    // reference to a content descriptor, the days to a schema.
    let mut document: Value = serde_json::from_str(&std::fs::read_to_string(DOCUMENT).unwrap()).unwrap();
    document["methods"][0]["params"] = json!([{"$ref": "#/components/contentDescriptors/City"}, {"name": "days", "schema": {"$ref": "#/components/schemas/Days"}}]);
    document["components"] = json!({
        "contentDescriptors": {"City": {"name": "city", "required": true, "schema": {"$ref": "#/components/schemas/City"}}},
        "schemas": {
            "City": {"type": "string", "pattern": "^[A-Z][a-z]+$"},
            "Days": {"oneOf": [{"type": "integer", "minimum": 1, "maximum": 3}, {"type": "integer", "minimum": 5, "maximum": 7}]}
        }
    });
    let registered = register(&server, "weather", &weather.url, json!({"openrpc": document}));
    assert_eq!(registered.status, 201, "{}", registered.text());

    let checked =
        |city: &str, days: Value| run(&server, CALLS, "checked", json!({"city": city, "days": days}))["output"].clone();
    assert_eq!(checked("Ghent", json!(2)), "Ghent", "good params reach the service");
    assert_eq!(checked("Oslo", json!(6)), "Oslo");
    assert_eq!(checked("ghent", json!(2)), r#"weather.forecast: city: "ghent" does not match "^[A-Z][a-z]+$""#);
    let refused = checked("Ghent", json!(4));
    assert!(
        refused
            .as_str()
            .unwrap()
            .starts_with("weather.forecast: days: 4 is not valid under any of the schemas listed in the 'oneOf'"),
        "{refused}"
    );
    assert_eq!(
        checked("Ghent", json!("two")),
        "weather.forecast: days: \"two\" is not valid under any of the schemas listed in the 'oneOf' keyword"
    );

    // A schema that cannot be compiled is refused at registration.
    document["components"]["schemas"]["Days"] = json!({"type": "days"});
    let refused = register(&server, "broken", &weather.url, json!({"openrpc": document}));
    assert_eq!(refused.status, 400, "{}", refused.text());
    let message = refused.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        message.starts_with("the OpenRPC document of 'broken' is not usable: method 'forecast', parameter 'days': the schema cannot be used: "),
        "{message}"
    );
}

#[test]
fn a_service_the_flow_did_not_declare_is_refused_and_a_request_can_only_narrow() {
    let weather = Weather::http();
    let server = Server::start(&[]);
    assert_eq!(register(&server, "weather", &weather.url, json!({})).status, 201);
    let refused = run(&server, CALLS, "undeclared", json!({}));
    assert_eq!(refused["status"], "failed");
    assert_eq!(refused["error"]["type"], "PermissionDenied", "services.PermissionDenied, a PermissionError");
    assert_eq!(refused["error"]["message"], "this flow may not call service 'weather' (it may call: none)");
    let spans = server.spans(&refused);
    let rpc = span(&spans, "weather.cities");
    assert_eq!((rpc["status"].clone(), rpc["error"]["type"].clone()), (json!("failed"), json!("PermissionDenied")));

    let narrowed = server
        .post_json(
            "/api/runs?wait=true",
            &json!({"source": CALLS, "flow": "good", "input": {"city": "Oslo", "days": 1}, "services": []}),
        )
        .json();
    assert_eq!(narrowed["error"]["type"], "PermissionDenied", "{narrowed:#}");
    let widened = server
        .post_json("/api/runs?wait=true", &json!({"source": CALLS, "flow": "undeclared", "services": ["weather"]}))
        .json();
    assert_eq!(widened["error"]["type"], "PermissionDenied", "a request never widens what a flow declared");
}

#[test]
fn gather_makes_the_calls_at_once() {
    let weather = Weather::http();
    let server = Server::start(&[]);
    register(&server, "weather", &weather.url, json!({}));
    let gathered = run(&server, CALLS, "overlapping", json!({}));
    assert_eq!(gathered["output"], json!([0.4, 0.4, 0.4]));
    let spans = server.spans(&gathered);
    let calls: Vec<&Value> = spans.iter().filter(|s| s["kind"] == "rpc").collect();
    assert_eq!(calls.len(), 3);
    let step = span(&spans, "gather");
    assert!(calls.iter().all(|c| c["parent_id"] == step["span_id"] && c["line"].as_u64().is_some()));
    let latest_start = calls.iter().map(|c| c["start_us"].as_i64().unwrap()).max().unwrap();
    let earliest_end = calls.iter().map(|c| c["end_us"].as_i64().unwrap()).min().unwrap();
    assert!(latest_start < earliest_end, "every call started before any ended: {calls:#?}");
}

#[test]
fn calls_to_a_service_reuse_kept_alive_connections() {
    let weather = Weather::http();
    let server = Server::start(&[]);
    assert_eq!(register(&server, "weather", &weather.url, json!({})).status, 201);
    // The service counts the connections it accepted: 61 calls, one a
    // connection, opened 61 before the client kept them alive.
    let repeated = run(&server, CALLS, "repeated", json!({"count": 60}));
    assert_eq!(repeated["status"], "ok", "{repeated:#}");
    let opened = repeated["output"].as_u64().unwrap();
    assert!(opened <= 2, "61 calls opened {opened} connections");
    assert_eq!(repeated["usage"]["rpc_calls"], 62);
    // A call on a kept-alive connection does not wait for a delayed ACK
    // (40 ms a call when the service holds back its answer's body).
    let wall_ms = repeated["usage"]["wall_time_ms"].as_f64().unwrap();
    assert!(wall_ms < 1500.0, "62 calls took {wall_ms} ms");
}

#[test]
fn a_call_on_a_connection_the_service_closed_fails_cleanly_and_the_next_connects_anew() {
    let weather = Weather::http();
    let server = Server::start(&[]);
    assert_eq!(register(&server, "weather", &weather.url, json!({"timeout_ms": 5000})).status, 201);
    assert_eq!(run(&server, CALLS, "cities", json!({}))["output"], json!(["Ghent", "Lisbon", "Oslo"]));

    // The service goes away with the kept-alive connection: the call fails
    // at once, it does not wait for the timeout.
    let port = weather.url.rsplit(':').next().unwrap().to_string();
    drop(weather);
    let started = std::time::Instant::now();
    let gone = run(&server, CALLS, "cities", json!({}));
    assert_eq!(gone["output"]["type"], "ServiceUnavailable", "{gone:#}");
    assert!(started.elapsed() < std::time::Duration::from_secs(4), "{:?}", started.elapsed());

    // Back on the same port: the next call opens a new connection.
    let _weather = Weather::start(&["--port", &port]);
    let back = run(&server, CALLS, "cities", json!({}));
    assert_eq!(back["output"], json!(["Ghent", "Lisbon", "Oslo"]), "{back:#}");
}

#[test]
fn the_rpc_quota_stops_a_run_that_calls_too_often() {
    let weather = Weather::http();
    let server = Server::start(&[]);
    register(&server, "weather", &weather.url, json!({}));
    let response = server
        .post_json("/api/runs?wait=true", &json!({"source": CALLS, "flow": "many_calls", "quotas": {"rpc_calls": 2}}));
    let run = response.json();
    assert_eq!((run["status"].clone(), run["error"]["quota"].clone()), (json!("quota_exceeded"), json!("rpc_calls")));
    assert_eq!(run["usage"]["rpc_calls"], 2);
}

#[test]
fn a_service_on_a_unix_socket_registered_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("weather.sock");
    let _weather = Weather::start(&["--unix", socket.to_str().unwrap()]);
    let data = dir.path().join("data");
    let url = format!("unix://{}", socket.display());
    let added = super::support::hero_logic()
        .args(["services", "add", "weather", &url, "--openrpc", DOCUMENT, "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    assert!(String::from_utf8_lossy(&added.stdout).starts_with("registered weather at unix://"));
    let listed =
        super::support::hero_logic().args(["services", "list", "--json", "--data-dir"]).arg(&data).output().unwrap();
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let names: Vec<&str> = listed["services"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["kv", "library", "flows", "runs", "registry", "weather"]);

    let flow = dir.path().join("flow.py");
    std::fs::write(&flow, CALLS).unwrap();
    let ran = super::support::hero_logic()
        .args(["run", "--flow", "good", "--input", r#"{"city": "Lisbon", "days": 1}"#, "--json", "--data-dir"])
        .arg(&data)
        .arg(&flow)
        .output()
        .unwrap();
    let report: Value =
        serde_json::from_slice(&ran.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&ran.stderr)));
    assert_eq!(report["status"], "ok", "{report:#}");
    assert_eq!(report["output"]["days"][0]["high_c"], 19);

    let bad = super::support::hero_logic()
        .args(["services", "add", "bad name", "http://x:1"])
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let removed =
        super::support::hero_logic().args(["services", "remove", "weather", "--data-dir"]).arg(&data).output().unwrap();
    assert!(removed.status.success());
}

const NESTED: &str = r#"from hero_logic import flow

@flow(inputs={"n": "integer"})
def outer(n):
    with flow.step("outer-step"):
        return {"outer": flow.invoke("middle", n=n + 1)}

@flow(inputs={"n": "integer"})
def middle(n):
    with flow.step("middle-step"):
        return {"middle": flow.invoke("inner", n=n + 1)}

@flow(inputs={"n": "integer"})
def inner(n):
    with flow.step("inner-step", n=n):
        if n > 10:
            raise ValueError("too deep")
        return n
"#;

const KV: &str = r#"from hero_logic import flow, services

@flow(inputs={"value": "any"}, services=["kv"])
def writer(value):
    services.kv.set(key="shared", value=value)
    return services.kv.list(prefix="sh")

@flow(services=["kv"])
def reader():
    return services.kv.get(key="shared")

@flow(inputs={"query": "string"}, services=["library"])
def finder(query):
    return [hit["name"] for hit in services.library.search(query=query, limit=5)]
"#;

#[test]
fn stubs_describe_the_sdk_and_every_service() {
    let weather = Weather::http();
    let server = Server::start(&[]);
    register(&server, "weather", &weather.url, json!({}));
    let stubs = server.get("/api/stubs/hero_logic.pyi");
    assert_eq!(stubs.status, 200);
    assert_eq!(stubs.header("content-type"), Some("text/x-python; charset=utf-8"));
    let text = stubs.text();
    assert!(text.contains("def step(self, name: str, **attrs: Any) -> Step:"), "{text}");
    assert!(
        text.contains(
            r#"def forecast(self, *, city: Literal["Ghent", "Lisbon", "Oslo"], days: int = ...) -> dict[str, Any]:"#
        ),
        "{text}"
    );
    assert!(text.contains("    weather: _Service_weather"), "{text}");
    assert!(text.contains("    kv: _Service_kv"), "{text}");
    let names = |listed: Value| -> Vec<String> {
        listed["services"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(
        names(server.get("/api/services").json()),
        BUILT_INS.iter().chain(["weather"].iter()).copied().collect::<Vec<_>>()
    );
    assert_eq!(server.request("DELETE", "/api/services/weather", &[], b"").status, 200);
    assert_eq!(server.request("DELETE", "/api/services/weather", &[], b"").status, 404);
    let refused = register(&server, "kv", &weather.url, json!({}));
    assert_eq!((refused.status, refused.json()["error"]["code"].clone()), (400, json!("invalid_service")));
    let unreachable = register(&server, "nowhere", "http://127.0.0.1:9", json!({}));
    assert_eq!(unreachable.status, 400);
    assert!(unreachable.json()["error"]["message"].as_str().unwrap().contains("rpc.discover"));
    eventually("nothing half-registered", || names(server.get("/api/services").json()) == BUILT_INS);
}

/// A CA and a certificate for `localhost` signed by it, made with openssl.
fn test_certificates(dir: &std::path::Path) -> (String, String, String) {
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl").args(args).output().expect("run openssl");
        assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let (ca, ca_key, key, csr, cert) =
        (path("ca.pem"), path("ca.key"), path("leaf.key"), path("leaf.csr"), path("leaf.pem"));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &ca_key,
        "-out",
        &ca,
        "-days",
        "2",
        "-subj",
        "/CN=hero_logic test CA",
    ]);
    openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", "/CN=localhost"]);
    let ext = path("leaf.ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-out",
        &cert,
        "-days",
        "2",
        "-extfile",
        &ext,
    ]);
    (ca, cert, key)
}

#[test]
fn a_service_over_https_is_verified_against_the_trusted_roots() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_certificates(dir.path());
    let weather = Weather::start(&["--port", "0", "--tls", &cert, &key]);
    assert!(weather.url.starts_with("https://localhost:"), "{}", weather.url);
    let data = dir.path().join("data");

    // Not trusted: the system's roots do not include the test CA.
    let refused = super::support::hero_logic()
        .args(["services", "add", "weather", &weather.url, "--data-dir"])
        .arg(&data)
        .env("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.contains("TLS") && said.contains("UnknownIssuer"), "{said}");

    let added = super::support::hero_logic()
        .args(["services", "add", "weather", &weather.url, "--data-dir"])
        .arg(&data)
        .env("SSL_CERT_FILE", &ca)
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));

    let flow = dir.path().join("flow.py");
    std::fs::write(&flow, CALLS).unwrap();
    let ran = super::support::hero_logic()
        .args(["run", "--flow", "good", "--input", r#"{"city": "Oslo", "days": 2}"#, "--json", "--data-dir"])
        .arg(&data)
        .arg(&flow)
        .env("SSL_CERT_FILE", &ca)
        .output()
        .unwrap();
    let report: Value =
        serde_json::from_slice(&ran.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&ran.stderr)));
    assert_eq!(report["status"], "ok", "{report:#}");
    assert_eq!(report["output"]["days"].as_array().unwrap().len(), 2);
}

#[test]
fn a_service_url_cannot_smuggle_a_request_or_reach_sockets_the_operator_did_not_allow() {
    // A listener that records whatever reaches it.
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let port = trap.local_addr().unwrap().port();
    let server = Server::start(&[]);
    for url in [
        format!("http://127.0.0.1:{port}/\r\nGET /smuggled HTTP/1.1\r\nHost: x"),
        format!("http://127.0.0.1:{port}/rpc HTTP/1.1\r\nX: y"),
        format!("http://user:secret@127.0.0.1:{port}/"),
    ] {
        let refused = register(&server, "smuggler", &url, json!({}));
        assert_eq!(refused.status, 400, "{url:?}: {}", refused.text());
    }
    assert!(trap.accept().is_err(), "nothing was sent anywhere");

    // Unix sockets: refused outside the allowed directories, with the same
    // words whether the path exists or not.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("weather.sock");
    let _weather = Weather::start(&["--unix", socket.to_str().unwrap()]);
    let message = |url: &str| {
        let refused = register(&server, "local", url, json!({}));
        assert_eq!(refused.status, 400, "{}", refused.text());
        let message = refused.json()["error"]["message"].as_str().unwrap().to_string();
        message.replace(url, "URL")
    };
    let existing = message(&format!("unix://{}", socket.display()));
    assert!(existing.contains("--service-socket-dir"), "{existing}");
    assert_eq!(existing, message("unix:///no/such/dir/x.sock"), "a refusal does not tell whether a path exists");

    let allowed = Server::start(&["--service-socket-dir", dir.path().to_str().unwrap()]);
    let registered = register(&allowed, "weather", &format!("unix://{}", socket.display()), json!({}));
    assert_eq!(registered.status, 201, "{}", registered.text());
    let escaped = format!("unix://{}/../weather.sock", dir.path().display());
    assert_eq!(register(&allowed, "escaped", &escaped, json!({})).status, 400);
    let answer = run(&allowed, CALLS, "good", json!({"city": "Lisbon", "days": 1}));
    assert_eq!(answer["status"], "ok", "{answer}");
}

// These also run on PostgreSQL: the registry, stored subflows, kv and
// library search live in the database.
on_both_backends! {
    #[test]
    fn flows_call_a_registered_service_with_every_call_spanned() {
        let weather = Weather::http();
        let server = Server::start(&[]);
        let registered = register(&server, "weather", &weather.url, json!({"timeout_ms": 500}));
        assert_eq!(registered.status, 201, "{}", registered.text());
        let methods: Vec<String> = registered.json()["doc"]["methods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(methods, ["forecast", "cities", "alert", "slow", "connections"], "the document came from rpc.discover");
        let down = register(
            &server,
            "down",
            "http://127.0.0.1:9",
            json!({"openrpc": serde_json::from_str::<Value>(&std::fs::read_to_string(DOCUMENT).unwrap()).unwrap()}),
        );
        assert_eq!(down.status, 201, "{}", down.text());

        // Good params: the result, and an rpc span under the step, with its line.
        let good = run(&server, CALLS, "good", json!({"city": "Ghent", "days": 2}));
        assert_eq!(good["status"], "ok", "{good:#}");
        assert_eq!(good["output"]["days"].as_array().unwrap().len(), 2);
        let spans = server.spans(&good);
        let rpc = span(&spans, "weather.forecast");
        assert_eq!((rpc["kind"].clone(), rpc["status"].clone()), (json!("rpc"), json!("ok")));
        assert_eq!(rpc["parent_id"], span(&spans, "fetch")["span_id"]);
        assert_eq!(rpc["line"], 6);
        assert_eq!(rpc["attrs"]["params"], json!({"city": "Ghent", "days": 2}));
        assert_eq!(rpc["attrs"]["result"]["city"], "Ghent");
        assert_eq!(good["usage"]["rpc_calls"], 1);

        // Bad params are refused on the host, before any request leaves.
        let bad = run(&server, CALLS, "bad_params", json!({"days": 12}));
        assert_eq!(
            bad["output"],
            json!({"type": "InvalidParams", "message": "weather.forecast: days must be at most 7, not 12", "is_type_error": true})
        );
        let bad_type = run(&server, CALLS, "bad_params", json!({"days": "two"}));
        assert_eq!(bad_type["output"]["message"], "weather.forecast: days must be integer, not a string");
        assert_eq!(span(&server.spans(&bad), "weather.forecast")["error"]["type"], "InvalidParams");

        // A JSON-RPC error keeps its code, message and data.
        let error = run(&server, CALLS, "rpc_error", json!({}));
        assert_eq!(
            error["output"],
            json!({"code": 4004, "message": "no alert feed for Oslo", "data": {"city": "Oslo", "retry": false}})
        );
        let failed = span(&server.spans(&error), "weather.alert").clone();
        assert_eq!(
            (failed["status"].clone(), failed["error"]["type"].clone(), failed["error"]["code"].clone()),
            (json!("failed"), json!("RpcError"), json!(4004))
        );

        let unknown = run(&server, CALLS, "unknown_method", json!({}));
        assert_eq!(
            unknown["output"],
            "service 'weather' has no method 'tomorrow' (its methods: forecast, cities, alert, slow, connections)"
        );
        let denied = run(&server, CALLS, "denied_is_a_service_error", json!({}));
        assert_eq!(denied["output"], json!({"type": "PermissionDenied", "permission_error": true, "service": "kv"}));

        // A service that hangs times out on the host; one that is down is unavailable.
        let hangs = run(&server, CALLS, "hangs", json!({}));
        assert_eq!(
            hangs["output"],
            json!({"type": "ServiceTimeout", "message": "weather.slow did not answer within 500 ms"})
        );
        assert_eq!(span(&server.spans(&hangs), "weather.slow")["error"]["type"], "Timeout");
        let down = run(&server, CALLS, "down", json!({}));
        assert_eq!(down["output"]["type"], "ServiceUnavailable");
        assert!(down["output"]["message"].as_str().unwrap().contains("cannot connect to 127.0.0.1:9"), "{down:#}");
    }

    #[test]
    fn stored_subflows_nest_three_deep_span_by_span() {
        let server = Server::start(&[]);
        assert_eq!(server.upload(NESTED).status, 201);
        let run = server.post_json("/api/runs?wait=true", &json!({"flow": "outer", "input": {"n": 1}})).json();
        assert_eq!(run["output"], json!({"outer": {"middle": 3}}), "{run:#}");
        let spans = server.spans(&run);
        let tree: Vec<(String, String, Option<String>)> = spans
            .iter()
            .map(|s| {
                let parent =
                    spans.iter().find(|p| p["span_id"] == s["parent_id"]).map(|p| p["name"].as_str().unwrap().to_string());
                (s["name"].as_str().unwrap().to_string(), s["kind"].as_str().unwrap().to_string(), parent)
            })
            .collect();
        let expected = [
            ("outer", "flow", None),
            ("outer-step", "step", Some("outer")),
            ("middle", "subflow", Some("outer-step")),
            ("middle-step", "step", Some("middle")),
            ("inner", "subflow", Some("middle-step")),
            ("inner-step", "step", Some("inner")),
        ];
        let expected: Vec<(String, String, Option<String>)> =
            expected.iter().map(|(n, k, p)| (n.to_string(), k.to_string(), p.map(str::to_string))).collect();
        assert_eq!(tree, expected);
        assert!(spans.iter().all(|s| s["status"] == "ok"));
        assert_eq!(span(&spans, "inner")["attrs"]["input"], json!({"n": 3}));
        assert_eq!(run["usage"]["max_subflow_depth"], 2);

        // The callee's failure reaches the caller carrying the callee's error.
        let failing = server.post_json("/api/runs?wait=true", &json!({"flow": "outer", "input": {"n": 9}})).json();
        assert_eq!(failing["status"], "failed");
        assert_eq!(failing["error"]["type"], "SubflowFailed");
        assert_eq!(failing["error"]["cause"]["type"], "SubflowFailed");
        assert_eq!(failing["error"]["cause"]["cause"]["message"], "too deep");

        // Depth is a quota of the whole run.
        let shallow = server
            .post_json("/api/runs?wait=true", &json!({"flow": "outer", "input": {"n": 1}, "quotas": {"subflow_depth": 1}}))
            .json();
        assert_eq!(
            (shallow["status"].clone(), shallow["error"]["quota"].clone()),
            (json!("quota_exceeded"), json!("subflow_depth"))
        );
        let spans = server.spans(&shallow);
        assert!(spans.iter().all(|s| s["status"] != "running"));
        assert_eq!(span(&spans, "middle")["status"], "quota_exceeded");
    }

    #[test]
    fn kv_is_scoped_per_flow_and_library_searches_stored_flows() {
        let server = Server::start(&[]);
        assert_eq!(server.upload(KV).status, 201);
        assert_eq!(server.upload(NESTED).status, 201);
        let wrote =
            server.post_json("/api/runs?wait=true", &json!({"flow": "writer", "input": {"value": {"n": 1}}})).json();
        assert_eq!(wrote["output"], json!(["shared"]));
        let read = server.post_json("/api/runs?wait=true", &json!({"flow": "reader"})).json();
        assert_eq!(read["output"], Value::Null, "another flow does not see writer's keys");
        let found =
            server.post_json("/api/runs?wait=true", &json!({"flow": "finder", "input": {"query": "middle"}})).json();
        assert_eq!(found["output"][0], "middle", "{found:#}");
        let hits = server.get("/api/flows/search?q=inner%20step").json();
        assert_eq!(hits["hits"][0]["name"], "inner", "{hits:#}");
    }
}

#[test]
fn a_services_health_is_a_real_discover_round_trip_and_says_why_it_fails() {
    // A POST: it makes the server call the service (see boundary.rs).
    let server = Server::start(&[]);
    let weather = Weather::http();
    assert_eq!(register(&server, "weather", &weather.url, json!({})).status, 201);
    let healthy = server.request("POST", "/api/services/weather/health", &[], b"");
    assert_eq!(healthy.status, 200, "{}", healthy.text());
    let body = healthy.json();
    assert_eq!(
        (body["name"].clone(), body["ok"].clone(), body["error"].clone()),
        (json!("weather"), json!(true), Value::Null)
    );
    let document: Value = serde_json::from_str(&std::fs::read_to_string(DOCUMENT).unwrap()).unwrap();
    assert_eq!(body["methods"], json!(document["methods"].as_array().unwrap().len()));
    assert!(body["ms"].as_f64().unwrap() > 0.0);
    // A built-in lives in the server.
    assert_eq!(server.request("POST", "/api/services/kv/health", &[], b"").json()["ok"], json!(true));

    // The service's process is gone: the answer says so, and is not an error of the API.
    drop(weather);
    let failing = server.request("POST", "/api/services/weather/health", &[], b"");
    assert_eq!(failing.status, 200);
    let body = failing.json();
    assert_eq!((body["ok"].clone(), body["methods"].clone()), (json!(false), Value::Null));
    assert!(!body["error"].as_str().unwrap().is_empty(), "{body}");
    let unknown = server.request("POST", "/api/services/nobody/health", &[], b"");
    assert_eq!((unknown.status, unknown.json()["error"]["code"].clone()), (404, json!("not_found")));
}
