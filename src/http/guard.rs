//! The one gate every request passes, WebSockets included: the `Host` must be
//! one this server answers to, a browser request must come from the server's
//! own page, and every route but the open ones (`/healthz`, `/readyz`, the
//! page's files) and webhooks needs a caller: the operator (the token, or
//! anyone without a token configured) or a workspace key's holder, with a
//! role at least the one the route's row in `access::ROUTES` names. One
//! middleware, after routing (it reads the matched route), so no route can
//! forget it.
//!
//! Why each rule (SECURITY.md has the threat model):
//! - **Host**: a page on `evil.example` whose name is re-bound to 127.0.0.1
//!   (DNS rebinding) is same-origin with the server as far as the browser
//!   knows, but its requests carry `Host: evil.example`. IP literals cannot be
//!   re-bound, so those that reach this server are fine; names must be
//!   `localhost` or ones the operator allows.
//! - **Origin**: browsers send `Origin` on every cross-origin request that
//!   can change anything (`fetch` with `no-cors` included) and on every
//!   WebSocket handshake, so a request whose `Origin` is not the server's own
//!   came from another page. `Sec-Fetch-Site` catches the rest (a foreign
//!   page's `<img>` or `<script>` that sends no `Origin`), except plain
//!   navigations that read (GET, HEAD), which are how links to the page
//!   work; a form posted from another site is a navigation that acts.
//! - **Token and keys**: compared in constant time over digests, so neither
//!   timing nor length says how much of a guess was right.

use super::access::{Access, access_for};
use super::error::AppError;
use super::keyring::{Keyring, Refusal};
use crate::tenancy::{Caller, DEFAULT_WORKSPACE, Role, is_workspace_name, keys};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The WebSocket sub-protocol the page asks for; a second offered protocol
/// `hero_logic.bearer.<hex of the token>` carries the token, since browsers
/// cannot set headers on a WebSocket handshake.
pub const WS_PROTOCOL: &str = "hero_logic";
const WS_TOKEN_PREFIX: &str = "hero_logic.bearer.";

/// The header the operator names the workspace to act in with (and every
/// answer names the one it acted in).
pub const WORKSPACE_HEADER: &str = "x-workspace";

/// Who may talk to this server.
#[derive(Clone)]
pub struct Guard {
    /// The address the server listens on.
    listen: SocketAddr,
    /// Host names the operator allows besides `localhost` and IP literals;
    /// a leading dot allows every subdomain (`.example.com`).
    allowed_hosts: Vec<String>,
    /// SHA-256 of the token, when one is required.
    token_digest: Option<[u8; 32]>,
    /// Workspace keys and workspaces, as the store has them.
    keyring: Option<Arc<Keyring>>,
}

impl Guard {
    pub fn new(listen: SocketAddr, allowed_hosts: &[String], token: Option<&str>) -> Guard {
        Guard {
            listen,
            allowed_hosts: allowed_hosts.iter().map(|host| host.trim().to_ascii_lowercase()).collect(),
            token_digest: token.map(digest),
            keyring: None,
        }
    }

    /// The guard, checking workspace keys (and `X-Workspace`) against the
    /// store through `keyring`.
    pub fn with_keyring(self, keyring: Arc<Keyring>) -> Guard {
        Guard { keyring: Some(keyring), ..self }
    }

    /// Whether a `Host` header value names this server.
    pub fn host_allowed(&self, host: &str) -> bool {
        let Some(name) = host_name(host) else { return false };
        if let Ok(ip) = name.parse::<IpAddr>() {
            let listen = self.listen.ip();
            // A literal address cannot be re-bound; it must be one this
            // server can actually be reached on.
            return ip == listen
                || listen.is_unspecified()
                || (ip.is_loopback() && (listen.is_loopback() || listen.is_unspecified()));
        }
        name == "localhost"
            || name.ends_with(".localhost")
            || self.allowed_hosts.iter().any(|allowed| match allowed.strip_prefix('.') {
                Some(domain) => name == domain || name.ends_with(allowed.as_str()),
                None => name == *allowed,
            })
    }

    /// Refuses what does not pass; `None` lets the request through.
    fn check(&self, method: &Method, headers: &HeaderMap, path: &str) -> Option<AppError> {
        // Webhooks are called by other machines, under whatever name they
        // reach this server by, without the token: the unguessable id in
        // the path is the only credential, and all it can do is start a run
        // of its flow with a checked input (SECURITY.md, Webhooks).
        if is_webhook(path) {
            return None;
        }
        // Two answers to "who is asking" leave it open which one a proxy or
        // a handler would believe: refuse rather than check only the first.
        for name in [header::HOST, header::ORIGIN] {
            if headers.get_all(&name).iter().nth(1).is_some() {
                return Some(AppError::bad_request(
                    "duplicate_header",
                    format!("the request has more than one {name} header"),
                ));
            }
        }
        let host = match headers.get(header::HOST).map(HeaderValue::to_str) {
            Some(Ok(host)) => host,
            Some(Err(_)) => return Some(forbidden("forbidden_host", "the Host header is not readable text".into())),
            None => return Some(AppError::bad_request("missing_host", "the request has no Host header")),
        };
        if !self.host_allowed(host) {
            return Some(forbidden(
                "forbidden_host",
                format!(
                    "this server does not answer to the host '{host}'; an operator can allow a name with --allowed-host"
                ),
            ));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            if !same_origin(origin, host) {
                return Some(forbidden(
                    "forbidden_origin",
                    format!(
                        "requests from the page at '{origin}' are refused: only this server's own page may call it"
                    ),
                ));
            }
        }
        if let Some(site) = headers.get("sec-fetch-site").and_then(|value| value.to_str().ok()) {
            // Only a navigation that reads is a link to the page: a form
            // posted from another site navigates too, and acts.
            let reads = *method == Method::GET || *method == Method::HEAD;
            let navigation = reads && headers.get("sec-fetch-mode").is_some_and(|mode| mode == "navigate");
            if (site == "cross-site" || site == "same-site") && !navigation {
                return Some(forbidden(
                    "forbidden_origin",
                    "requests from another site's page are refused: only this server's own page may call it".into(),
                ));
            }
        }
        None
    }

    /// Whether one of the credentials presented is the operator's token.
    fn token_presented(&self, credentials: &[String]) -> bool {
        let Some(expected) = &self.token_digest else { return false };
        credentials.iter().any(|presented| constant_time_eq(&digest(presented), expected))
    }

    /// Who the request comes from: the operator (the token, or without a
    /// token configured, anyone who reaches this server, which then listens
    /// on loopback only) or a workspace key's holder. A credential shaped
    /// like a key is checked as one even beside the token; `X-Workspace`
    /// names where the operator acts.
    async fn caller(&self, headers: &HeaderMap) -> Result<Caller, AppError> {
        let asked = match headers.get(WORKSPACE_HEADER).map(HeaderValue::to_str) {
            None => None,
            Some(Ok(name)) if is_workspace_name(name) => Some(name),
            Some(_) => {
                return Err(AppError::bad_request(
                    "invalid_workspace",
                    format!("{WORKSPACE_HEADER} must name a workspace (lower-case letters, digits, - and _)"),
                ));
            }
        };
        let credentials = credentials(headers);
        let refused = |refusal: Refusal| match refusal {
            Refusal::UnknownKey => unauthorized("the key is unknown or was revoked"),
            Refusal::NoSuchWorkspace(name) => AppError::not_found(format!("no such workspace: {name}")),
            Refusal::OtherWorkspace => forbidden("forbidden", "a key acts in its own workspace only".into()),
            Refusal::Store(error) => AppError::from(error),
        };
        if self.token_presented(&credentials) {
            return self.keyring()?.operator_caller(asked).await.map_err(refused);
        }
        if let Some(key) = credentials.iter().find(|credential| keys::looks_like_key(credential)) {
            return self.keyring()?.key_caller(key, asked).await.map_err(refused);
        }
        if self.token_digest.is_some() {
            return Err(unauthorized("this server needs its token or a workspace key: Authorization: Bearer <token>"));
        }
        self.keyring()?.operator_caller(asked).await.map_err(refused)
    }

    fn keyring(&self) -> Result<&Keyring, AppError> {
        self.keyring.as_deref().ok_or_else(|| AppError::from(anyhow::anyhow!("the guard has no keyring")))
    }

    /// Whether `caller` may do what the route needs; a refusal otherwise.
    fn allow(caller: &Caller, access: Access) -> Result<(), AppError> {
        let too_small = |needed: Role| {
            forbidden("forbidden", format!("this needs the role {needed} or above; the key's role is {}", caller.role))
        };
        match access {
            Access::Open | Access::Webhook => Ok(()),
            Access::Operator if caller.is_operator() => Ok(()),
            Access::Operator => Err(forbidden("forbidden", "only the operator may do this".into())),
            Access::Role(role) | Access::DefaultWorkspace(role) if !caller.may(role) => Err(too_small(role)),
            Access::PathWorkspaceAdmin if !caller.may(Role::Admin) => Err(too_small(Role::Admin)),
            Access::DefaultWorkspace(_) if caller.workspace != DEFAULT_WORKSPACE => Err(forbidden(
                "workspace_unsupported",
                format!(
                    "this is kept for the workspace '{DEFAULT_WORKSPACE}' only in this version of hero_logic, not for '{}'",
                    caller.workspace
                ),
            )),
            Access::Role(_) | Access::DefaultWorkspace(_) | Access::PathWorkspaceAdmin => Ok(()),
        }
    }
}

/// Every credential a request presents: bearer tokens, and the WebSocket
/// protocols that carry one (hex, since a protocol is a token of its own).
fn credentials(headers: &HeaderMap) -> Vec<String> {
    let bearer = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.strip_prefix("Bearer "))
        .map(|token| token.trim().to_string());
    let protocol = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|protocol| protocol.trim().strip_prefix(WS_TOKEN_PREFIX))
        .filter_map(decode_hex)
        .filter_map(|bytes| String::from_utf8(bytes).ok());
    bearer.chain(protocol).collect()
}

fn unauthorized(message: &str) -> AppError {
    AppError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).with_header(header::WWW_AUTHENTICATE, "Bearer")
}

/// `POST /hooks/{id}`; the methods other than POST find no route there.
fn is_webhook(path: &str) -> bool {
    path.starts_with("/hooks/")
}

/// The middleware: every request passes `Guard::check`, and every answer
/// carries headers that keep other pages from framing or reading it.
pub async fn guard(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let mut response = match guard.admit(request).await {
        Ok((request, caller)) => {
            let response = next.run(request).await;
            if let Some(caller) = caller {
                // Says who acted, for the access log's reader and the page.
                let mut response = response;
                if let Ok(value) = HeaderValue::from_str(&caller.workspace) {
                    response.headers_mut().insert(WORKSPACE_HEADER, value);
                }
                response
            } else {
                response
            }
        }
        Err(refusal) => refusal.into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    response
}

impl Guard {
    /// The request, with its `Caller` among its extensions when the route
    /// needs one; or why it is refused.
    async fn admit(&self, mut request: Request) -> Result<(Request, Option<Caller>), AppError> {
        if let Some(refusal) = self.check(request.method(), request.headers(), request.uri().path()) {
            return Err(refusal);
        }
        // Webhooks are called without a caller, whatever the method or id
        // (a wrong one is the route's own 404 or 405).
        if is_webhook(request.uri().path()) {
            return Ok((request, None));
        }
        let route = request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_string());
        // No route (the fallback's 404 or 405): as much as any API route.
        let access = route
            .as_deref()
            .and_then(|route| access_for(request.method(), route))
            .unwrap_or(Access::Role(Role::Viewer));
        if matches!(access, Access::Open | Access::Webhook) {
            return Ok((request, None));
        }
        let caller = self.caller(request.headers()).await?;
        Guard::allow(&caller, access)?;
        request.extensions_mut().insert(caller.clone());
        Ok((request, Some(caller)))
    }
}

fn forbidden(code: &'static str, message: String) -> AppError {
    AppError::new(StatusCode::FORBIDDEN, code, message)
}

/// The host part of a `Host` value (`name`, `name:port`, `[v6]:port`),
/// lower-cased; `None` when it is not a plain authority.
fn host_name(host: &str) -> Option<String> {
    let host = host.trim();
    if host.is_empty() || host.contains(['/', '@', ' ', '\\']) {
        return None;
    }
    let name = if let Some(rest) = host.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.starts_with(':')) {
            return None;
        }
        inside
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
            Some(_) => return None,
            None => host,
        }
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}

/// Whether `origin` (`scheme://host[:port]`) is the origin of a page served
/// from `host`, the request's own Host.
fn same_origin(origin: &str, host: &str) -> bool {
    let (scheme, authority) = match origin.split_once("://") {
        Some((scheme, authority)) if scheme == "http" || scheme == "https" => (scheme, authority),
        _ => return false, // "null", file pages, extensions, anything else
    };
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let normalise = |authority: &str| {
        let authority = authority.to_ascii_lowercase();
        authority.strip_suffix(default_port).map(str::to_string).unwrap_or(authority)
    };
    !authority.is_empty() && normalise(authority) == normalise(host.trim())
}

fn digest(token: &str) -> [u8; 32] {
    digest_bytes(token.as_bytes())
}

fn digest_bytes(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// Compares without stopping at the first difference.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(listen: &str, allowed: &[&str]) -> Guard {
        let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        Guard::new(listen.parse().unwrap(), &allowed, None)
    }

    #[test]
    fn hosts_on_loopback() {
        let guard = guard("127.0.0.1:8080", &["flows.example.com", ".corp.example"]);
        for ok in ["127.0.0.1:8080", "127.0.0.1", "localhost:8080", "LOCALHOST", "app.localhost:8080", "[::1]:8080"] {
            assert!(guard.host_allowed(ok), "{ok}");
        }
        for ok in ["flows.example.com", "flows.example.com:443", "corp.example", "a.b.corp.example:1"] {
            assert!(guard.host_allowed(ok), "{ok}");
        }
        for refused in [
            "evil.example:8080",
            "localhost.evil.example",
            "example.com",
            "xflows.example.com",
            "notcorp.example",
            "10.0.0.5:8080",
            "",
            "user@localhost",
            "localhost:80x",
            "[::1]x",
        ] {
            assert!(!guard.host_allowed(refused), "{refused}");
        }
    }

    #[test]
    fn hosts_on_every_interface() {
        let guard = guard("0.0.0.0:8080", &[]);
        assert!(guard.host_allowed("192.168.1.20:8080"));
        assert!(guard.host_allowed("localhost:8080"));
        assert!(!guard.host_allowed("rebound.example:8080"));
    }

    #[test]
    fn origins() {
        assert!(same_origin("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(same_origin("http://localhost", "localhost:80"));
        assert!(same_origin("https://flows.example.com", "flows.example.com"));
        assert!(!same_origin("http://127.0.0.1:8081", "127.0.0.1:8080"));
        assert!(!same_origin("http://evil.example", "127.0.0.1:8080"));
        assert!(!same_origin("null", "127.0.0.1:8080"));
        assert!(!same_origin("chrome-extension://abc", "127.0.0.1:8080"));
        assert!(!same_origin("http://", "127.0.0.1:8080"));
    }

    #[test]
    fn a_second_host_or_origin_is_refused() {
        let guard = guard("127.0.0.1:8080", &[]);
        let mut headers = HeaderMap::new();
        headers.append(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(guard.check(&Method::GET, &headers, "/api/flows").is_none());
        headers.append(header::HOST, HeaderValue::from_static("evil.example"));
        assert_eq!(guard.check(&Method::GET, &headers, "/api/flows").unwrap().code, "duplicate_header");
        let mut headers = HeaderMap::new();
        headers.append(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        headers.append(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        headers.append(header::ORIGIN, HeaderValue::from_static("http://evil.example"));
        assert_eq!(guard.check(&Method::GET, &headers, "/api/flows").unwrap().code, "duplicate_header");
    }

    /// A navigation from another site passes when it reads (a link to the
    /// page), never when it posts (a form that would act), Origin or not.
    #[test]
    fn another_sites_navigation_may_read_but_not_post() {
        let guard = guard("127.0.0.1:8080", &[]);
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        headers.insert("sec-fetch-mode", HeaderValue::from_static("navigate"));
        assert!(guard.check(&Method::GET, &headers, "/").is_none());
        for method in [Method::POST, Method::DELETE, Method::PUT] {
            let refused = guard.check(&method, &headers, "/api/services/weather/health").unwrap();
            assert_eq!(refused.code, "forbidden_origin", "{method}");
        }
    }

    #[test]
    fn tokens_from_header_or_protocol() {
        let guard = Guard::new("127.0.0.1:1".parse().unwrap(), &[], Some("s3cret"));
        let presented = |headers: &HeaderMap| guard.token_presented(&credentials(headers));
        let mut headers = HeaderMap::new();
        assert!(!presented(&headers));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer wrong"));
        assert!(!presented(&headers));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer s3cret"));
        assert!(presented(&headers));
        let mut headers = HeaderMap::new();
        // "s3cret" in hex, offered beside the page's protocol.
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("hero_logic, hero_logic.bearer.733363726574"),
        );
        assert!(presented(&headers));
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("hero_logic.bearer.7333"));
        assert!(!presented(&headers));
    }

    #[test]
    fn each_access_admits_the_callers_it_names() {
        let key = |workspace: &str, role: Role| Caller {
            workspace: workspace.into(),
            role,
            actor: crate::tenancy::Actor::Key { key_id: "k".into(), name: "n".into() },
        };
        let operator = Caller::operator("acme");
        assert!(Guard::allow(&operator, Access::Operator).is_ok());
        assert_eq!(Guard::allow(&key("acme", Role::Admin), Access::Operator).unwrap_err().code, "forbidden");
        assert!(Guard::allow(&key("acme", Role::Runner), Access::Role(Role::Runner)).is_ok());
        assert_eq!(Guard::allow(&key("acme", Role::Viewer), Access::Role(Role::Runner)).unwrap_err().code, "forbidden");
        let fenced = Access::DefaultWorkspace(Role::Viewer);
        assert!(Guard::allow(&key("default", Role::Viewer), fenced).is_ok());
        assert_eq!(Guard::allow(&key("acme", Role::Admin), fenced).unwrap_err().code, "workspace_unsupported");
        assert_eq!(Guard::allow(&operator, fenced).unwrap_err().code, "workspace_unsupported");
        assert!(Guard::allow(&key("acme", Role::Admin), Access::PathWorkspaceAdmin).is_ok());
        assert!(Guard::allow(&key("acme", Role::Developer), Access::PathWorkspaceAdmin).is_err());
    }
}
