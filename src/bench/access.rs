//! `hero_logic bench --only access`: what deciding who asks costs a request.
//! One server with a token, one keep-alive connection, and the same route
//! (`GET /api/whoami`) asked with the operator's token and with a workspace
//! key, alternating so drift in the machine's load falls on both alike;
//! then with the key each time after what the node knew of it went stale
//! (`FRESH_FOR`), so it is looked up in the store again.

use super::Figure;
use super::stats::Latencies;
use crate::server::{ServerConfig, serve};
use anyhow::{Context, Result, bail};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const TOKEN: &str = "bench-operator-token";

pub const ACCESS_BASELINE: &str = "access baseline: the same route on the same connection with the operator's token \
(a constant-time digest comparison), alternating with the workspace key";

pub(super) async fn figures(requests: usize, stale_lookups: usize) -> Result<Vec<Figure>> {
    let dir = tempfile::tempdir()?;
    let mut config = ServerConfig::new(dir.path().join("data"));
    config.token = Some(TOKEN.to_string());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, config, async {
        let _ = stopped.await;
    }));
    let mut connection = Connection::open(&addr).await?;
    let made = connection
        .send("POST", "/api/workspaces/default/keys", TOKEN, r#"{"name": "bench", "role": "viewer"}"#)
        .await?;
    let made: serde_json::Value = serde_json::from_str(&made)?;
    let key = made["key"].as_str().context("a key was made")?.to_string();

    let (mut with_token, mut with_key) = (Vec::with_capacity(requests), Vec::with_capacity(requests));
    for n in 0..requests + 50 {
        let token = connection.timed_whoami(TOKEN).await?;
        let key = connection.timed_whoami(&key).await?;
        if n >= 50 {
            with_token.push(token);
            with_key.push(key);
        }
    }
    let mut stale = Vec::with_capacity(stale_lookups);
    for _ in 0..stale_lookups {
        tokio::time::sleep(crate::http::keyring::FRESH_FOR + Duration::from_millis(20)).await;
        stale.push(connection.timed_whoami(&key).await?);
    }
    drop(connection);
    let _ = stop.send(());
    server.await??;

    let [token_p50, key_p50, stale_p50] = [with_token, with_key, stale].map(|took| Latencies::new(&took).p50());
    let extra_us = (key_p50 - token_p50) * 1000.0;
    Ok(vec![
        Figure {
            key: "access_token_p50_ms",
            label: "GET /api/whoami p50, operator token",
            value: token_p50,
            unit: "ms",
            target: None,
        },
        Figure {
            key: "access_key_p50_ms",
            label: "GET /api/whoami p50, workspace key",
            value: key_p50,
            unit: "ms",
            target: None,
        },
        Figure {
            key: "access_key_extra_us",
            label: "a key's check beyond the token's, p50",
            value: extra_us,
            unit: "µs",
            target: Some(("<= 50 µs", extra_us <= 50.0)),
        },
        Figure {
            key: "access_key_stale_p50_ms",
            label: "whoami p50, key read from the store",
            value: stale_p50,
            unit: "ms",
            target: None,
        },
    ])
}

/// One keep-alive HTTP/1.1 connection, a request at a time.
struct Connection {
    stream: BufReader<TcpStream>,
    host: String,
}

impl Connection {
    async fn open(addr: &str) -> Result<Connection> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    return Ok(Connection { stream: BufReader::new(stream), host: addr.to_string() });
                }
                Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(error) => return Err(error.into()),
            }
        }
    }

    async fn timed_whoami(&mut self, credential: &str) -> Result<Duration> {
        let started = Instant::now();
        let answer = self.send("GET", "/api/whoami", credential, "").await?;
        let took = started.elapsed();
        if !answer.contains("\"workspace\"") {
            bail!("whoami answered {answer}");
        }
        Ok(took)
    }

    /// Send a request and read its answer's body (the server answers with
    /// a Content-Length).
    async fn send(&mut self, method: &str, path: &str, credential: &str, body: &str) -> Result<String> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {credential}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        let stream = self.stream.get_mut();
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        let mut status = String::new();
        self.stream.read_line(&mut status).await?;
        if !status.starts_with("HTTP/1.1 2") {
            bail!("{method} {path} answered {}", status.trim());
        }
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.stream.read_line(&mut line).await?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse()?;
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await?;
        Ok(String::from_utf8(body)?)
    }
}
