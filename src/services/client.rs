//! A JSON-RPC 2.0 client over HTTP, HTTPS or a Unix socket (`unix:///path`),
//! through hyper's pooled HTTP/1.1 client: a connection (and its TLS session)
//! is kept alive and reused by the next call to the same service. The host's
//! timeout is around each whole call, and at most 16 MiB of an answer is read.
//! HTTPS trusts the system's root certificates (or the file `SSL_CERT_FILE`
//! names, as OpenSSL does), verified by rustls.

use crate::sandbox::CallFailure;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

/// Largest answer read from a service.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// A kept-alive connection unused this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept per service: as many as a run has calls in flight.
const MAX_IDLE_PER_SERVICE: usize = 16;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// What a request carries: the whole JSON-RPC request, sent at once.
type Body = Full<Bytes>;

/// Where a service listens.
#[derive(Clone, Debug, PartialEq)]
pub enum Endpoint {
    Http {
        authority: String,
        path: String,
    },
    /// `host` is the name the server's certificate must carry.
    Https {
        authority: String,
        host: String,
        path: String,
    },
    Unix {
        socket: PathBuf,
    },
}

impl Endpoint {
    /// Read a service URL. Only what goes into a request line verbatim is
    /// accepted: visible ASCII, no user info, a plain host and port, so a
    /// URL cannot smuggle a second request or another header.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        if let Some(bad) = url.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(format!(
                "{:?} has a character a URL may not carry ({:?}); percent-encode it",
                crate::sandbox::clip_str(url, 200),
                bad
            ));
        }
        if let Some(path) = url.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(format!("'{url}': a Unix socket URL needs an absolute path, as unix:///run/service.sock"));
            }
            let socket = PathBuf::from(path);
            if socket.components().any(|part| matches!(part, std::path::Component::ParentDir)) {
                return Err(format!("'{url}': a Unix socket path may not contain '..'"));
            }
            return Ok(Endpoint::Unix { socket });
        }
        let (rest, tls) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(rest), _) => (rest, false),
            (_, Some(rest)) => (rest, true),
            _ => return Err(format!("'{url}' is not an http://, https:// or unix:// URL")),
        };
        let (authority, path) = match rest.find('/') {
            Some(index) => (&rest[..index], &rest[index..]),
            None => (rest, "/"),
        };
        if !plain_authority(authority) {
            return Err(format!("'{url}' has no usable host: give host[:port], without user info"));
        }
        if path.contains('#') {
            return Err(format!("'{url}': a service URL has no #fragment"));
        }
        if !tls {
            return checked(Endpoint::Http { authority: authority.to_string(), path: path.to_string() });
        }
        let host = match authority.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() => host,
            _ => authority,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|_| format!("'{url}': '{host}' is not a host name a certificate can carry"))?;
        // Without a port, https means 443.
        let authority = if authority.ends_with(']') || !authority.contains(':') {
            format!("{authority}:443")
        } else {
            authority.to_string()
        };
        checked(Endpoint::Https { authority, host, path: path.to_string() })
    }

    /// The URI a request to this endpoint is sent to; a Unix socket's
    /// requests go to `http://localhost/`.
    fn uri(&self) -> Result<Uri, String> {
        let text = match self {
            Endpoint::Http { authority, path } => format!("http://{authority}{path}"),
            Endpoint::Https { authority, path, .. } => format!("https://{authority}{path}"),
            Endpoint::Unix { .. } => "http://localhost/".to_string(),
        };
        text.parse::<Uri>().map_err(|e| format!("'{text}' is not a URL a request can go to: {e}"))
    }
}

/// `endpoint`, when a request can be sent to it.
fn checked(endpoint: Endpoint) -> Result<Endpoint, String> {
    endpoint.uri()?;
    Ok(endpoint)
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`, with a host of letters,
/// digits, dots and dashes (or a bracketed IPv6 address).
fn plain_authority(authority: &str) -> bool {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, after)) => {
                if v6.parse::<std::net::Ipv6Addr>().is_err() {
                    return false;
                }
                ("v6", after.strip_prefix(':'))
            }
            None => return false,
        },
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let host_ok = !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    let port_ok = port.is_none_or(|port| port.parse::<u16>().is_ok());
    host_ok && port_ok
}

/// Call `method` with named `params`, sending `headers` besides the host's
/// own; the result, or why there is none.
pub async fn call(
    endpoint: &Endpoint,
    method: &str,
    params: Value,
    headers: &[(HeaderName, HeaderValue)],
    timeout: Duration,
) -> Result<Value, CallFailure> {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
    let uri = endpoint.uri().map_err(CallFailure::Transport)?;
    let exchange = async {
        match endpoint {
            Endpoint::Http { authority, .. } => post(&POOLS.http, uri, body, headers, authority).await,
            Endpoint::Https { authority, .. } => post(POOLS.https()?, uri, body, headers, authority).await,
            Endpoint::Unix { socket } => {
                post(&POOLS.unix(socket), uri, body, headers, &socket.display().to_string()).await
            }
        }
    };
    let (status, response) = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| CallFailure::Timeout { after_ms: timeout.as_millis() as u64 })??;
    let response: Value = serde_json::from_slice(&response).map_err(|_| {
        CallFailure::Transport(format!("HTTP {status}: the answer is not JSON-RPC ({} bytes)", response.len()))
    })?;
    if let Some(error) = response.get("error").filter(|e| !e.is_null()) {
        return Err(CallFailure::Rpc {
            code: error.get("code").and_then(Value::as_i64).unwrap_or(-32603),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("the service reported an error")
                .to_string(),
            data: error.get("data").cloned().unwrap_or(Value::Null),
        });
    }
    match response.get("result") {
        Some(result) if status == 200 => Ok(result.clone()),
        _ => Err(CallFailure::Transport(format!("HTTP {status}: the answer has no JSON-RPC result"))),
    }
}

/// The pooled clients every call goes through, made at the first call and
/// kept for the life of the process, so the calls to one service share a
/// few kept-alive connections. Each connection is driven by a task on the
/// runtime that opened it (a process runs one).
static POOLS: LazyLock<Pools> =
    LazyLock::new(|| Pools { http: pooled(tcp_connector()), https: OnceLock::new(), unix: Mutex::new(HashMap::new()) });

struct Pools {
    /// `http://` services; the pool keeps connections per host and port.
    http: Client<HttpConnector, Body>,
    /// `https://` services, made at the first such call: the trusted roots
    /// are read then, and a machine without any can still call the others.
    https: OnceLock<Result<Client<HttpsConnector<HttpConnector>, Body>, String>>,
    /// One client per socket: the pool tells connections apart by host and
    /// port, which a socket has not. Sockets are few (each a registration).
    unix: Mutex<HashMap<PathBuf, Client<UnixConnector, Body>>>,
}

impl Pools {
    fn https(&self) -> Result<&Client<HttpsConnector<HttpConnector>, Body>, CallFailure> {
        self.https
            .get_or_init(|| {
                let mut tcp = tcp_connector();
                // The https connector hands it https:// URIs.
                tcp.enforce_http(false);
                let connector = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(tls_config()?)
                    .https_only()
                    .enable_http1()
                    .wrap_connector(tcp);
                Ok(pooled(connector))
            })
            .as_ref()
            .map_err(|e| CallFailure::Transport(e.clone()))
    }

    fn unix(&self, socket: &Path) -> Client<UnixConnector, Body> {
        let mut clients = self.unix.lock().expect("nothing panics while holding the lock");
        clients.entry(socket.to_path_buf()).or_insert_with(|| pooled(UnixConnector { socket: socket.into() })).clone()
    }
}

/// A keep-alive HTTP/1.1 client over `connector`.
fn pooled<C: Connect + Clone + Send + Sync + 'static>(connector: C) -> Client<C, Body> {
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(IDLE_TIMEOUT)
        .pool_max_idle_per_host(MAX_IDLE_PER_SERVICE)
        .build(connector)
}

fn tcp_connector() -> HttpConnector {
    let mut tcp = HttpConnector::new();
    // A request is small and goes out whole: do not hold it back.
    tcp.set_nodelay(true);
    tcp
}

/// Connects every request of its client to one Unix socket.
#[derive(Clone)]
struct UnixConnector {
    socket: Arc<Path>,
}

impl tower::Service<Uri> for UnixConnector {
    type Response = TokioIo<tokio::net::UnixStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let socket = self.socket.clone();
        Box::pin(async move { tokio::net::UnixStream::connect(&*socket).await.map(TokioIo::new) })
    }
}

/// The TLS client configuration: the trusted roots are read from the system
/// (or `SSL_CERT_FILE`).
fn tls_config() -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for certificate in found.certs {
        // A certificate the verifier cannot use is skipped, as OpenSSL does.
        let _ = roots.add(certificate);
    }
    if roots.is_empty() {
        return Err(format!("no trusted root certificates found ({:?})", found.errors));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// POST `body` and return the status and the answer's body, of at most
/// `MAX_RESPONSE_BYTES`. `place` names the service in errors.
async fn post<C: Connect + Clone + Send + Sync + 'static>(
    client: &Client<C, Body>,
    uri: Uri,
    body: String,
    headers: &[(HeaderName, HeaderValue)],
    place: &str,
) -> Result<(u16, Bytes), CallFailure> {
    let mut request = Request::post(uri)
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| CallFailure::Transport(format!("the request cannot be made: {e}")))?;
    for (name, value) in headers {
        request.headers_mut().insert(name.clone(), value.clone());
    }
    let response = client.request(request).await.map_err(|e| request_failure(&e, place))?;
    let status = response.status().as_u16();
    let length = response.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(length) = length.filter(|length| *length > MAX_RESPONSE_BYTES as u64) {
        return Err(CallFailure::Transport(format!(
            "the response is {length} bytes; at most {MAX_RESPONSE_BYTES} are read"
        )));
    }
    let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES).collect().await.map_err(|e| {
        if e.is::<LengthLimitError>() {
            CallFailure::Transport(format!(
                "the response is larger than {MAX_RESPONSE_BYTES} bytes, the most that is read"
            ))
        } else if closed_early(&*e) {
            CallFailure::Transport("the service closed the connection mid-answer".into())
        } else {
            CallFailure::Transport(format!("reading the answer failed: {}", describe_chain(&*e)))
        }
    })?;
    Ok((status, body.to_bytes()))
}

/// What went wrong before an answer's head arrived, in the words a flow sees.
fn request_failure(error: &hyper_util::client::legacy::Error, place: &str) -> CallFailure {
    let causes = causes(error);
    if error.is_connect() {
        if let Some(tls) = causes.iter().find_map(|c| c.downcast_ref::<rustls::Error>()) {
            return CallFailure::Transport(format!("TLS with {place} failed: {tls}"));
        }
        let reason = causes.last().map(|c| c.to_string()).unwrap_or_default();
        return CallFailure::Transport(format!("cannot connect to {place}: {reason}"));
    }
    if closed_early(error) {
        return CallFailure::Transport("the service closed the connection without answering".into());
    }
    CallFailure::Transport(format!("the exchange with {place} failed: {}", describe_chain(error)))
}

/// The service closed the connection before its answer was whole.
fn closed_early(error: &(dyn std::error::Error + 'static)) -> bool {
    causes(error).iter().any(|cause| {
        cause.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_incomplete_message)
            || cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::UnexpectedEof)
    })
}

/// `error` and each error beneath it. An `io::Error`'s `source` skips the
/// error it wraps, so that one is taken instead.
fn causes<'a>(error: &'a (dyn std::error::Error + 'static)) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut all = Vec::new();
    let mut next = Some(error);
    while let Some(current) = next {
        all.push(current);
        next = match current.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
            Some(wrapped) => Some(wrapped as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
    }
    all
}

/// `outer: inner: innermost`, each message once.
fn describe_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut said: Vec<String> = Vec::new();
    for cause in causes(error) {
        let text = cause.to_string();
        if !said.iter().any(|s| s.contains(&text)) {
            said.push(text);
        }
    }
    said.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_endpoints() {
        assert_eq!(
            Endpoint::parse("http://127.0.0.1:8765/rpc"),
            Ok(Endpoint::Http { authority: "127.0.0.1:8765".into(), path: "/rpc".into() })
        );
        assert_eq!(
            Endpoint::parse("http://svc:80"),
            Ok(Endpoint::Http { authority: "svc:80".into(), path: "/".into() })
        );
        assert_eq!(Endpoint::parse("unix:///tmp/w.sock"), Ok(Endpoint::Unix { socket: "/tmp/w.sock".into() }));
        assert!(Endpoint::parse("unix://relative").is_err());
        assert!(Endpoint::parse("ftp://x").is_err());
        assert_eq!(
            Endpoint::parse("https://svc.example/rpc"),
            Ok(Endpoint::Https {
                authority: "svc.example:443".into(),
                host: "svc.example".into(),
                path: "/rpc".into()
            })
        );
        assert_eq!(
            Endpoint::parse("https://localhost:8443"),
            Ok(Endpoint::Https { authority: "localhost:8443".into(), host: "localhost".into(), path: "/".into() })
        );
        assert!(Endpoint::parse("ftp://x").unwrap_err().contains("is not an http://"));
    }

    #[test]
    fn refuses_urls_that_could_smuggle_bytes_into_a_request() {
        for url in [
            "http://127.0.0.1:9/\r\nGET /admin HTTP/1.1",
            "http://127.0.0.1:9/rpc\r\nHost: evil",
            "http://evil\r\n:80/",
            "http://127.0.0.1:9/a b",
            "http://user:pass@127.0.0.1:9/",
            "http://127.0.0.1:9x/",
            "http://exa_mple.com/",
            "http://[::1/",
            "http://127.0.0.1:9/#frag",
            "http://127.0.0.1:9/caf\u{e9}",
            "unix:///run/../etc/x.sock",
            "unix:///run/x.sock\n",
        ] {
            assert!(Endpoint::parse(url).is_err(), "{url:?}");
        }
        assert!(Endpoint::parse("http://[::1]:8080/rpc?x=1").is_ok());
        assert!(Endpoint::parse("http://svc-1.internal.example:8080/rpc").is_ok());
    }

    /// A service that answers every request on a connection with `answer`
    /// (a head, and the first part of a body) followed by `body_bytes` more
    /// bytes of `x`, or never answers when `answer` is empty.
    async fn serve(answer: &'static str, body_bytes: usize) -> Endpoint {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request).await;
                    if answer.is_empty() {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    let _ = stream.write_all(answer.as_bytes()).await;
                    let chunk = vec![b'x'; 64 * 1024];
                    let mut left = body_bytes;
                    while left > 0 {
                        let part = left.min(chunk.len());
                        if stream.write_all(&chunk[..part]).await.is_err() {
                            return;
                        }
                        left -= part;
                    }
                });
            }
        });
        Endpoint::Http { authority, path: "/".into() }
    }

    async fn fails(endpoint: &Endpoint, timeout: Duration) -> CallFailure {
        call(endpoint, "m", json!({}), &[], timeout).await.unwrap_err()
    }

    #[tokio::test]
    async fn an_answer_over_16_mib_is_refused() {
        let declared = serve("HTTP/1.1 200 OK\r\nContent-Length: 16777217\r\n\r\n", 0).await;
        assert_eq!(
            fails(&declared, Duration::from_secs(10)).await,
            CallFailure::Transport("the response is 16777217 bytes; at most 16777216 are read".into())
        );
        // Without a length, the body is read until the cap, then given up.
        let undeclared = serve("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", MAX_RESPONSE_BYTES + 1).await;
        assert_eq!(
            fails(&undeclared, Duration::from_secs(10)).await,
            CallFailure::Transport("the response is larger than 16777216 bytes, the most that is read".into())
        );
    }

    #[tokio::test]
    async fn a_service_that_does_not_answer_times_out() {
        let silent = serve("", 0).await;
        assert_eq!(fails(&silent, Duration::from_millis(200)).await, CallFailure::Timeout { after_ms: 200 });
    }

    #[tokio::test]
    async fn answers_that_are_not_json_rpc_are_transport_failures() {
        let closed = serve("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{", 0).await;
        assert_eq!(
            fails(&closed, Duration::from_secs(10)).await,
            CallFailure::Transport("the service closed the connection mid-answer".into())
        );
        let html = serve("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 4\r\n\r\n<h1>", 0).await;
        assert_eq!(
            fails(&html, Duration::from_secs(10)).await,
            CallFailure::Transport("HTTP 502: the answer is not JSON-RPC (4 bytes)".into())
        );
        let nothing = serve("HTTP/1.1 200 OK\r\n", 0).await;
        assert_eq!(
            fails(&nothing, Duration::from_secs(10)).await,
            CallFailure::Transport("the service closed the connection without answering".into())
        );
    }
}
