//! A JSON-RPC 2.0 client over HTTP, HTTPS or a Unix socket (`unix:///path`):
//! one request per connection, with the host's timeout around the whole call.
//! HTTPS trusts the system's root certificates (or the file `SSL_CERT_FILE`
//! names, as OpenSSL does), verified by rustls.

use crate::sandbox::CallFailure;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest response read from a service.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

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
            return Ok(Endpoint::Http { authority: authority.to_string(), path: path.to_string() });
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
        Ok(Endpoint::Https { authority, host, path: path.to_string() })
    }
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

/// Call `method` with named `params`; the result, or why there is none.
pub async fn call(endpoint: &Endpoint, method: &str, params: Value, timeout: Duration) -> Result<Value, CallFailure> {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
    let exchange = async {
        match endpoint {
            Endpoint::Http { authority, path } => post(connect(authority).await?, authority, path, &body).await,
            Endpoint::Https { authority, host, path } => {
                let tcp = connect(authority).await?;
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| CallFailure::Transport(format!("{host}: {e}")))?;
                let stream = tokio_rustls::TlsConnector::from(tls_config()?)
                    .connect(name, tcp)
                    .await
                    .map_err(|e| CallFailure::Transport(format!("TLS with {authority} failed: {e}")))?;
                post(stream, authority, path, &body).await
            }
            Endpoint::Unix { socket } => {
                let stream = tokio::net::UnixStream::connect(socket)
                    .await
                    .map_err(|e| CallFailure::Transport(format!("cannot connect to {}: {e}", socket.display())))?;
                post(stream, "localhost", "/", &body).await
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

async fn connect(authority: &str) -> Result<tokio::net::TcpStream, CallFailure> {
    tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| CallFailure::Transport(format!("cannot connect to {authority}: {e}")))
}

/// The TLS client configuration, built once: the trusted roots are read from
/// the system (or `SSL_CERT_FILE`) at the first https call.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, CallFailure> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
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
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
        .map_err(CallFailure::Transport)
}

/// POST `body` and return the status and the response body.
async fn post<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    authority: &str,
    path: &str,
    body: &str,
) -> Result<(u16, Vec<u8>), CallFailure> {
    let transport = |e: std::io::Error| CallFailure::Transport(format!("the connection failed: {e}"));
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.map_err(transport)?;
    stream.write_all(body.as_bytes()).await.map_err(transport)?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        let read = stream.read(&mut chunk).await.map_err(transport)?;
        if read == 0 {
            return Err(CallFailure::Transport("the service closed the connection without answering".into()));
        }
        raw.extend_from_slice(&chunk[..read]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if raw.len() > 64 * 1024 {
            return Err(CallFailure::Transport("the response head is too large".into()));
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok());
    let chunked = head.lines().any(|line| line.starts_with("transfer-encoding:") && line.contains("chunked"));
    let mut body = raw.split_off(head_end + 4);
    match length {
        Some(length) if length > MAX_RESPONSE_BYTES => {
            return Err(CallFailure::Transport(format!(
                "the response is {length} bytes; at most {MAX_RESPONSE_BYTES} are read"
            )));
        }
        Some(length) => {
            while body.len() < length {
                let read = stream.read(&mut chunk).await.map_err(transport)?;
                if read == 0 {
                    return Err(CallFailure::Transport("the service closed the connection mid-answer".into()));
                }
                body.extend_from_slice(&chunk[..read]);
            }
            body.truncate(length);
        }
        None => {
            loop {
                let read = stream.read(&mut chunk).await.map_err(transport)?;
                if read == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..read]);
                if body.len() > MAX_RESPONSE_BYTES {
                    return Err(CallFailure::Transport("the response is too large".into()));
                }
            }
            if chunked {
                body = dechunk(&body).ok_or_else(|| CallFailure::Transport("a malformed chunked response".into()))?;
            }
        }
    }
    Ok((status, body))
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(line_end + 2..line_end + 2 + size)?);
        body = body.get(line_end + 4 + size..)?;
    }
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

    #[test]
    fn dechunks() {
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), Some(b"abcde".to_vec()));
    }
}
