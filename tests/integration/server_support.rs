//! A real `hero_logic serve` on a free port, a minimal HTTP/1.1 client and a
//! WebSocket client, for the server tests.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    pub addr: String,
    pub data_dir: PathBuf,
    /// The PostgreSQL database it uses, when not SQLite in `data_dir`.
    pub database: Option<String>,
    /// Where its stderr goes, when a test reads its logs.
    pub log: Option<PathBuf>,
    _dir: Option<tempfile::TempDir>,
}

/// The database test servers use.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Backend {
    /// SQLite in the server's data directory (what `serve` does by default).
    Sqlite,
    /// A fresh database on the tests' PostgreSQL cluster, one per server
    /// (a server started again on the same data directory gets it again).
    Postgres,
}

thread_local! {
    static BACKEND: std::cell::Cell<Option<Backend>> = const { std::cell::Cell::new(None) };
}

/// The backend of servers this test thread starts: as `on_backend` set it,
/// else `HERO_LOGIC_TEST_BACKEND=postgres`, else SQLite.
pub fn backend() -> Backend {
    BACKEND.with(|backend| backend.get()).unwrap_or_else(|| match std::env::var("HERO_LOGIC_TEST_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    })
}

/// Run `test` with servers on `backend`.
pub fn on_backend<T>(backend: Backend, test: impl FnOnce() -> T) -> T {
    BACKEND.with(|cell| cell.set(Some(backend)));
    test()
}

/// Server tests, each run twice: once on SQLite (under its own name) and
/// once on PostgreSQL (the same name in the module `on_postgres`).
#[macro_export]
macro_rules! on_both_backends {
    ($( $(#[$meta:meta])* fn $name:ident() $body:block )*) => {
        $( $(#[$meta])* fn $name() { $crate::integration::server_support::on_backend($crate::integration::server_support::Backend::Sqlite, || $body) } )*
        mod on_postgres {
            #[allow(unused_imports)]
            use super::*;
            $( $(#[$meta])* fn $name() { $crate::integration::server_support::on_backend($crate::integration::server_support::Backend::Postgres, || $body) } )*
        }
    };
}

/// The PostgreSQL database and node name of each data directory a test
/// server used, so a server started again on it finds the same database
/// under the same name, as a restarted node would.
fn database_of(data_dir: &Path) -> Option<(String, String)> {
    static DATABASES: std::sync::Mutex<Vec<(PathBuf, String, String)>> = std::sync::Mutex::new(Vec::new());
    let mut known = DATABASES.lock().unwrap();
    if let Some((_, url, node)) = known.iter().find(|(dir, _, _)| dir == data_dir) {
        return Some((url.clone(), node.clone()));
    }
    if backend() != Backend::Postgres {
        return None;
    }
    let url = hero_logic::throwaway_postgres::fresh_database();
    let node = format!("node-{}", known.len());
    known.push((data_dir.to_path_buf(), url.clone(), node.clone()));
    Some((url, node))
}

impl Server {
    /// A server on a fresh data directory.
    pub fn start(args: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let mut server = Server::start_on(&data_dir, args);
        server._dir = Some(dir);
        server
    }

    /// A server on a fresh data directory that logs everything at debug
    /// level into `log` (beside the data directory), for tests that read it.
    pub fn start_logging(args: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let log = dir.path().join("server.log");
        let mut server = Server::spawn_logging(&data_dir, database_of(&data_dir), args, Some(&log));
        server._dir = Some(dir);
        server
    }

    /// A node named `node` on the PostgreSQL database `url`, which other
    /// nodes may share.
    pub fn start_node(url: &str, node: &str, args: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut all = vec!["--database", url, "--node", node];
        all.extend_from_slice(args);
        let mut server = Server::spawn(&dir.path().join("data"), None, &all);
        server.database = Some(url.to_string());
        server._dir = Some(dir);
        server
    }

    /// A server on `data_dir`, which may hold a previous server's database.
    pub fn start_on(data_dir: &Path, args: &[&str]) -> Server {
        Server::spawn(data_dir, database_of(data_dir), args)
    }

    fn spawn(data_dir: &Path, database: Option<(String, String)>, args: &[&str]) -> Server {
        Server::spawn_logging(data_dir, database, args, None)
    }

    fn spawn_logging(data_dir: &Path, database: Option<(String, String)>, args: &[&str], log: Option<&Path>) -> Server {
        let stderr = match log {
            Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
            None => Stdio::inherit(),
        };
        let database_args = match &database {
            Some((url, node)) => vec!["--database".to_string(), url.clone(), "--node".into(), node.clone()],
            None => Vec::new(),
        };
        let mut child = super::support::hero_logic()
            .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(database_args)
            .args(args)
            .envs(log.map(|_| ("HERO_LOGIC_LOG", "debug")))
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start hero_logic serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Server {
            child,
            addr,
            data_dir: data_dir.to_path_buf(),
            database: database.map(|(url, _)| url),
            log: log.map(Path::to_path_buf),
            _dir: None,
        }
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        request(&self.addr, method, path, headers, body)
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Response {
        self.request("POST", path, &[("Content-Type", "application/json")], body.to_string().as_bytes())
    }

    /// Start a run (`POST /api/runs`); its id.
    pub fn start_run(&self, body: Value) -> String {
        let response = self.post_json("/api/runs", &body);
        assert_eq!(response.status, 202, "{}", response.text());
        response.json()["run_id"].as_str().unwrap().to_string()
    }

    /// Run and wait for the stored run (`POST /api/runs?wait=true`).
    pub fn run_wait(&self, body: Value) -> Value {
        let response = self.post_json("/api/runs?wait=true", &body);
        assert_eq!(response.status, 200, "{}", response.text());
        response.json()
    }

    pub fn run_status(&self, run: &(impl RunRef + ?Sized)) -> String {
        self.get(&format!("/api/runs/{}", run.run_id())).json()["status"].as_str().unwrap().to_string()
    }

    /// A run's spans as stored (`GET /api/runs/{id}/spans`).
    pub fn spans(&self, run: &(impl RunRef + ?Sized)) -> Vec<Value> {
        self.get(&format!("/api/runs/{}/spans", run.run_id())).json()["spans"].as_array().unwrap().clone()
    }

    pub fn upload(&self, source: &str) -> Response {
        self.request("POST", "/api/flows", &[("Content-Type", "text/x-python")], source.as_bytes())
    }

    /// Open the run's event stream.
    pub fn events(&self, run_id: &str, from_seq: u64) -> EventStream {
        let url = format!("ws://{}/api/runs/{run_id}/events?from_seq={from_seq}", self.addr);
        let (socket, _) = tungstenite::connect(url).expect("open the event stream");
        EventStream { socket }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Send the process `signal` (`STOP`, `CONT`, ...).
    pub fn signal(&self, signal: &str) {
        unsafe_kill(self.child.id(), signal);
    }

    /// Send SIGTERM and wait for the process to end; its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        unsafe_kill(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn unsafe_kill(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().unwrap();
    assert!(status.success());
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on its own connection.
pub fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let stream = TcpStream::connect(addr).expect("connect to the server");
    request_on(stream, addr, method, path, headers, body)
}

/// One request from another loopback address (127.0.0.0/8 is all this
/// machine's), which the server takes for another client.
pub fn request_from(source: std::net::Ipv4Addr, addr: &str, method: &str, path: &str, body: &[u8]) -> Response {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&std::net::SocketAddr::from((source, 0)).into()).expect("bind a second loopback address");
    let target: std::net::SocketAddr = addr.parse().unwrap();
    socket.connect(&target.into()).expect("connect to the server");
    request_on(socket.into(), addr, method, path, &[("Content-Type", "application/json")], body)
}

fn request_on(
    mut stream: TcpStream,
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (413, say) and close before taking the whole
    // body; what it answered is still there to read.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked")) {
        body = dechunk(&body);
    }
    Response { status, headers, body }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&body[..line_end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[line_end + 2..line_end + 2 + size]);
        body = &body[line_end + 4 + size..];
    }
}

pub struct EventStream {
    socket: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>,
}

impl EventStream {
    /// The next event, or None when the server closed the stream.
    pub fn next(&mut self) -> Option<Value> {
        loop {
            match self.socket.read() {
                Ok(tungstenite::Message::Text(text)) => return Some(serde_json::from_str(&text).unwrap()),
                Ok(tungstenite::Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// Every event until the server closes the stream.
    pub fn all(&mut self) -> Vec<Value> {
        std::iter::from_fn(|| self.next()).collect()
    }
}

/// Wait for `condition` (checked every 10 ms) for up to 30 s.
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A run, named by its id or by the run record that carries it.
pub trait RunRef {
    fn run_id(&self) -> &str;
}

impl RunRef for str {
    fn run_id(&self) -> &str {
        self
    }
}

impl RunRef for String {
    fn run_id(&self) -> &str {
        self
    }
}

impl RunRef for Value {
    fn run_id(&self) -> &str {
        self["run_id"].as_str().expect("a run record with a run_id")
    }
}
