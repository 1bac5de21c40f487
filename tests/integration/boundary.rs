//! The HTTP boundary, attacked as a foreign web page, a DNS-rebinding page, a
//! client without the token and a slow or greedy client would: the real
//! server on a free port, raw HTTP/1.1 and real WebSocket handshakes.

use super::server_support::{Server, request};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;

const GREET: &str = include_str!("../../examples/flows/greet.py");

/// A WebSocket handshake to `path` with extra headers; the HTTP status the
/// server answered when it refused, or 101 when it upgraded.
fn ws_status(server: &Server, path: &str, headers: &[(&str, &str)]) -> u16 {
    let mut request = format!("ws://{}{path}", server.addr).into_client_request().unwrap();
    for (name, value) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().insert(name, HeaderValue::from_str(value).unwrap());
    }
    match tungstenite::connect(request) {
        Ok((mut socket, response)) => {
            let _ = socket.close(None);
            response.status().as_u16()
        }
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("handshake to {path} failed without an HTTP answer: {other}"),
    }
}

fn code(response: &super::server_support::Response) -> Value {
    response.json()["error"]["code"].clone()
}

fn stored_state(server: &Server, token: &[(&str, &str)]) -> (Value, Value, Value) {
    let get = |path: &str| server.request("GET", path, token, b"").json();
    (get("/api/flows"), get("/api/runs"), get("/api/services"))
}

#[test]
fn a_foreign_page_can_neither_change_nor_read_anything() {
    let server = Server::start(&[]);
    assert_eq!(server.upload(GREET).status, 201);
    let finished = server.post_json("/api/runs?wait=true", &json!({"flow": "greet", "input": {"who": "a"}})).json();
    let run_id = finished["run_id"].as_str().unwrap();
    let before = stored_state(&server, &[]);

    // What `fetch(url, {mode: "no-cors", method: "POST", body})` sends from
    // another page: a simple content type and that page's Origin.
    let foreign = [("Origin", "http://evil.example"), ("Content-Type", "text/plain")];
    let evil = GREET.replace("greet", "evil");
    let attempts: [(&str, String, &[u8]); 8] = [
        ("POST", "/api/flows".into(), evil.as_bytes()),
        ("POST", "/api/runs".into(), br#"{"flow": "greet", "input": {"who": "x"}}"#),
        ("POST", "/api/check".into(), b"while True: pass"),
        ("POST", "/api/services".into(), br#"{"name": "x", "url": "http://127.0.0.1:9"}"#),
        ("POST", format!("/api/runs/{run_id}/cancel"), b""),
        ("POST", format!("/api/runs/{run_id}/replay"), b""),
        ("DELETE", "/api/flows/greet".into(), b""),
        // Nor make the server call a service for it (a health check is a round trip).
        ("POST", "/api/services/kv/health".into(), b""),
    ];
    for (method, path, body) in attempts {
        let refused = server.request(method, &path, &foreign, body);
        assert_eq!((refused.status, code(&refused)), (403, json!("forbidden_origin")), "{method} {path}");
    }
    for path in ["/api/runs", &format!("/api/runs/{run_id}"), "/api/flows/greet", "/metrics"] {
        let refused = server.request("GET", path, &[("Origin", "http://evil.example")], b"");
        assert_eq!(refused.status, 403, "GET {path}");
        // A foreign `<script src>` or `<img>` sends no Origin, but says where it comes from.
        let embedded =
            server.request("GET", path, &[("Sec-Fetch-Site", "cross-site"), ("Sec-Fetch-Mode", "no-cors")], b"");
        assert_eq!(embedded.status, 403, "embedded GET {path}");
    }
    // A sandboxed frame or a file page says `Origin: null`; another local port is another origin.
    for origin in ["null", &format!("http://127.0.0.1:{}", port_beside(&server))] {
        let refused = server.request("POST", "/api/runs", &[("Origin", origin)], b"{}");
        assert_eq!(refused.status, 403, "Origin {origin}");
    }
    // WebSockets: both streams refuse a foreign page's handshake.
    for path in [format!("/api/runs/{run_id}/events"), "/api/events".to_string()] {
        assert_eq!(ws_status(&server, &path, &[("Origin", "http://evil.example")]), 403, "{path}");
        assert_eq!(ws_status(&server, &path, &[("Origin", &format!("http://{}", server.addr))]), 101, "{path}");
    }
    assert_eq!(stored_state(&server, &[]), before, "nothing stored changed");

    // The page itself still works: same origin, and a link from elsewhere opens it.
    let own = server.request("POST", "/api/check", &[("Origin", &format!("http://{}", server.addr))], GREET.as_bytes());
    assert_eq!(own.status, 200);
    let navigated =
        server.request("GET", "/", &[("Sec-Fetch-Site", "cross-site"), ("Sec-Fetch-Mode", "navigate")], b"");
    assert_eq!(navigated.status, 200);
    assert_eq!(navigated.header("x-frame-options"), Some("DENY"), "no foreign page may frame it");
}

/// A foreign page that opens the health route in a frame, a link or a new
/// window (a navigation: no Origin), or an old browser's `<img>` (no fetch
/// metadata at all), does not make the server call the service: only a
/// POST, which the guard holds to the page's own Origin, checks health.
#[test]
fn a_foreign_pages_navigation_or_image_makes_the_server_call_no_service() {
    use super::services::{Killed, call_service, spawn_service};
    const ECHOING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/services/echoing.py");
    let server = Server::start(&[]);
    let (child, url) = spawn_service(ECHOING, &["--port", "0"], &[]);
    let _service = Killed(child);
    let registered = server.post_json("/api/services", &json!({"name": "echoing", "url": url}));
    assert_eq!(registered.status, 201, "{}", registered.text());
    let discovers = || call_service(&url, "calls")["result"]["discovers"].as_u64().unwrap();
    assert_eq!(discovers(), 1, "registration asked for its document");

    let path = "/api/services/echoing/health";
    let navigation = [("Sec-Fetch-Site", "cross-site"), ("Sec-Fetch-Mode", "navigate"), ("Sec-Fetch-Dest", "iframe")];
    let window = [("Sec-Fetch-Site", "cross-site"), ("Sec-Fetch-Mode", "navigate"), ("Sec-Fetch-Dest", "document")];
    for (what, headers) in [("a frame", &navigation[..]), ("a link or window.open", &window[..]), ("an old <img>", &[])]
    {
        let answer = server.request("GET", path, headers, b"");
        assert_eq!(answer.status, 405, "GET by {what}: {}", answer.text());
    }
    // A foreign page's form posts with its Origin, navigating or not.
    let form = [("Origin", "http://evil.example"), ("Sec-Fetch-Site", "cross-site"), ("Sec-Fetch-Mode", "navigate")];
    let refused = server.request("POST", path, &form, b"");
    assert_eq!((refused.status, code(&refused)), (403, json!("forbidden_origin")));
    assert_eq!(discovers(), 1, "the service was not called");

    // The page's own check (same Origin), and a client without a browser, do call it.
    let own = server.request("POST", path, &[("Origin", &format!("http://{}", server.addr))], b"");
    assert_eq!(own.json()["ok"], true, "{}", own.text());
    assert_eq!(server.request("POST", path, &[], b"").json()["ok"], true);
    assert_eq!(discovers(), 3);
}

/// A port other than the server's, for an "other local page" origin.
fn port_beside(server: &Server) -> u16 {
    let port: u16 = server.addr.rsplit(':').next().unwrap().parse().unwrap();
    if port == 65535 { port - 1 } else { port + 1 }
}

/// Sends a request with a Host header of our choosing (the helper sends the
/// server's own address).
fn with_host(server: &Server, host: &str, path: &str) -> u16 {
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    raw.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_rebound_host_name_is_refused_and_allowed_names_are_served() {
    let server = Server::start(&["--allowed-host", "flows.example.com", "--allowed-host", ".corp.example"]);
    for host in ["evil.example:8080", "localhost.evil.example", "127.0.0.1.nip.example"] {
        assert_eq!(with_host(&server, host, "/api/flows"), 403, "{host}");
        assert_eq!(with_host(&server, host, "/"), 403, "{host}");
    }
    for host in [server.addr.as_str(), "localhost", "LOCALHOST:1234", "flows.example.com", "ci.corp.example"] {
        assert_eq!(with_host(&server, host, "/api/flows"), 200, "{host}");
    }
    let refused = request(&server.addr, "GET", "/api/flows", &[], b"");
    assert_eq!(refused.status, 200, "the helper's own Host is the listening address");
}

#[test]
fn with_a_token_every_route_but_health_and_the_page_needs_it() {
    let server = Server::start(&["--token", "s3cret"]);
    let token = [("Authorization", "Bearer s3cret")];
    let stored = server.request("POST", "/api/flows", &token, GREET.as_bytes());
    assert_eq!(stored.status, 201, "{}", stored.text());
    let run = server.request(
        "POST",
        "/api/runs?wait=true",
        &[token[0], ("Content-Type", "application/json")],
        br#"{"flow": "greet", "input": {"who": "a"}}"#,
    );
    assert_eq!(run.status, 200);
    let run_id = run.json()["run_id"].as_str().unwrap().to_string();

    let reads = [
        "/api/flows".to_string(),
        "/api/flows/greet".into(),
        "/api/flows/search?q=hello".into(),
        "/api/runs".into(),
        format!("/api/runs/{run_id}"),
        format!("/api/runs/{run_id}/spans"),
        format!("/api/runs/{run_id}/logs"),
        format!("/api/runs/{run_id}/source"),
        format!("/api/runs/{run_id}/otlp"),
        format!("/api/runs/{run_id}/journal"),
        "/api/services".into(),
        "/api/stubs/hero_logic.pyi".into(),
        "/metrics".into(),
        "/api/quotas".into(),
        "/api/no-such-route".into(),
    ];
    for path in &reads {
        let denied = server.get(path);
        assert_eq!((denied.status, code(&denied)), (401, json!("unauthorized")), "GET {path}");
        assert_eq!(denied.header("www-authenticate"), Some("Bearer"));
        let wrong = server.request("GET", path, &[("Authorization", "Bearer s3cre")], b"");
        assert_eq!(wrong.status, 401, "GET {path} with a wrong token");
        let allowed = server.request("GET", path, &token, b"");
        assert_ne!(allowed.status, 401, "GET {path} with the token");
    }
    let replay = format!("/api/runs/{run_id}/replay");
    for (method, path) in [
        ("POST", "/api/flows"),
        ("POST", "/api/check"),
        ("DELETE", "/api/flows/greet"),
        ("POST", &replay),
        ("POST", "/api/services/kv/health"),
    ] {
        assert_eq!(server.request(method, path, &[], GREET.as_bytes()).status, 401, "{method} {path}");
    }
    assert_eq!(server.get("/api/flows/greet").status, 401);
    assert_eq!(server.request("GET", "/api/flows/greet", &token, b"").status, 200, "a refused delete removes nothing");

    // No token needed: liveness, and the page that asks for the token.
    for path in ["/healthz", "/", "/ui/app.js"] {
        assert_eq!(server.get(path).status, 200, "{path}");
    }
    // WebSockets: the token as a header, or as the sub-protocol the page offers.
    let events = format!("/api/runs/{run_id}/events");
    for path in [events.as_str(), "/api/events"] {
        assert_eq!(ws_status(&server, path, &[]), 401, "{path} without the token");
        assert_eq!(ws_status(&server, path, &[("Authorization", "Bearer s3cret")]), 101, "{path}");
        let hex: String = "s3cret".bytes().map(|b| format!("{b:02x}")).collect();
        let offered = format!("hero_logic, hero_logic.bearer.{hex}");
        assert_eq!(ws_status(&server, path, &[("Sec-WebSocket-Protocol", &offered)]), 101, "{path}");
        let wrong = "hero_logic, hero_logic.bearer.00";
        assert_eq!(ws_status(&server, path, &[("Sec-WebSocket-Protocol", wrong)]), 401, "{path}");
    }
}

#[test]
fn a_client_that_never_finishes_its_request_head_is_disconnected() {
    let server = Server::start(&["--client-timeout", "1"]);
    let mut slow = TcpStream::connect(&server.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    slow.write_all(b"GET /api/flows HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();
    let mut answer = Vec::new();
    // The server closes the connection (reading gives EOF, possibly after a 408).
    let read = slow.read_to_end(&mut answer);
    assert!(read.is_ok(), "the server closed the connection instead of holding it: {read:?}");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
    // An idle connection that sends nothing at all is closed too.
    let mut idle = TcpStream::connect(&server.addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buffer = [0u8; 64];
    assert!(idle.read(&mut buffer).is_ok(), "the idle connection was closed");
    assert_eq!(server.get("/healthz").status, 200, "the server goes on");
}

#[test]
fn connections_and_streams_are_capped() {
    let server = Server::start(&["--max-connections", "3", "--max-streams", "1", "--client-timeout", "600"]);
    // Three connections that send nothing take every place.
    let held: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(&server.addr).unwrap()).collect();
    let mut waiting = TcpStream::connect(&server.addr).unwrap();
    write!(waiting, "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", server.addr).unwrap();
    waiting.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut answer = Vec::new();
    assert!(waiting.read_to_end(&mut answer).is_err() && answer.is_empty(), "a fourth connection waits");
    drop(held);
    waiting.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    waiting.read_to_end(&mut answer).unwrap();
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"), "served once a place is free");

    // One stream at a time: the second is refused with 503, then allowed once the first closes.
    let (first, _) = tungstenite::connect(format!("ws://{}/api/events", server.addr)).unwrap();
    let refused = match tungstenite::connect(format!("ws://{}/api/events", server.addr)) {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        other => panic!("a second stream was not refused: {:?}", other.map(|(_, r)| r.status())),
    };
    assert_eq!(refused, 503);
    drop(first);
    super::server_support::eventually("the stream's place to be given back", || {
        tungstenite::connect(format!("ws://{}/api/events", server.addr)).is_ok()
    });
}

#[test]
fn a_client_that_sends_its_body_or_takes_its_answer_too_slowly_is_disconnected() {
    let server = Server::start(&["--client-timeout", "1"]);
    // A body that stops coming after its first byte.
    let mut slow = TcpStream::connect(&server.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(slow, "POST /api/check HTTP/1.1\r\nHost: {}\r\nContent-Length: 1000\r\n\r\nx", server.addr).unwrap();
    let mut answer = Vec::new();
    assert!(slow.read_to_end(&mut answer).is_ok(), "the server ended the connection");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 4"), "{text}");

    // Twenty answers of several MiB each, asked at once, that the client
    // never reads (more than loopback's buffers hold).
    let mut greedy = TcpStream::connect(&server.addr).unwrap();
    for _ in 0..20 {
        write!(greedy, "GET /vendor/monaco/vs/editor/editor.main.js HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr)
            .unwrap();
    }
    std::thread::sleep(Duration::from_secs(4));
    greedy.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut received = Vec::new();
    let _ = greedy.read_to_end(&mut received); // EOF or a reset, once the server gave up
    let whole = std::fs::metadata(concat!(env!("CARGO_MANIFEST_DIR"), "/vendor/monaco/vs/editor/editor.main.js"))
        .unwrap()
        .len();
    assert!((received.len() as u64) < 20 * whole, "the server stopped sending to a client that did not read");
    assert_eq!(server.get("/healthz").status, 200, "the server goes on");
}
