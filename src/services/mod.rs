//! Services a flow can call: registered JSON-RPC services (over HTTP or a
//! Unix socket, described by OpenRPC documents) and the built-ins. The
//! registry checks every call against the service's document before anything
//! leaves the host.

mod builtin;
pub mod client;
pub mod grants;
mod health;
mod openrpc;
mod schema;
mod stubs;

pub use builtin::SAVED_FLOWS;
pub use client::Endpoint;
pub use grants::Grants;
pub use health::Health;
pub use openrpc::{CheckedDoc, MethodDoc, ParamDoc, ServiceDoc};
pub use stubs::python_stubs;

use crate::sandbox::{BoxFuture, CallContext, CallFailure, ServiceCaller};
use crate::secrets::{Filled, Redactor, Secrets};
use crate::store::{Store, StoredService};
use crate::trace::traceparent;
use anyhow::Result;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

/// Per-call timeout when a registration does not set one.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// A service as flows see it: its name, where it is, and its methods.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ServiceInfo {
    pub name: String,
    /// `builtin` for the in-process services.
    pub url: String,
    pub builtin: bool,
    pub timeout_ms: u64,
    /// The names of the headers added to its calls; never their values,
    /// which may hold secrets.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<String>,
    pub doc: ServiceDoc,
}

pub struct ServiceRegistry {
    store: Arc<Store>,
    /// Where `unix://` services may live; `None` is anywhere (the command
    /// line, run by the operator), an empty list is nowhere.
    socket_dirs: Option<Vec<PathBuf>>,
    /// What the built-ins let each flow do beyond its own things.
    grants: Grants,
    /// Bytes each flow may hold in `kv`; flows flow code may store.
    limits: builtin::Limits,
    /// The secrets headers may name; without them, a service whose headers
    /// name one cannot be registered or called.
    secrets: Option<Arc<Secrets>>,
    /// Each registered service's document with its schemas compiled, kept
    /// while the stored document is the same one.
    checked: Mutex<HashMap<String, (Value, Arc<CheckedDoc>)>>,
}

/// A service a call goes to: where it is and its checked document.
struct Target {
    url: String,
    builtin: bool,
    timeout_ms: u64,
    /// Header templates, filled in with secrets on each call.
    headers: BTreeMap<String, String>,
    doc: Arc<CheckedDoc>,
}

/// The built-ins' documents, checked once.
static BUILTIN_DOCS: LazyLock<HashMap<&'static str, Arc<CheckedDoc>>> = LazyLock::new(|| {
    builtin::NAMES
        .iter()
        .filter_map(|name| {
            let document = builtin::document(name)?;
            let checked = CheckedDoc::new(&document).expect("the built-ins' documents are tested");
            Some((*name, Arc::new(checked)))
        })
        .collect()
});

/// Bytes of keys and values a flow may hold in `kv` unless the operator
/// says otherwise (`--max-kv-bytes`).
pub const KV_BYTES_PER_FLOW: u64 = 64 << 20;

impl ServiceRegistry {
    /// A registry for the operator's own command line: any URL it can read.
    pub fn new(store: Arc<Store>) -> ServiceRegistry {
        ServiceRegistry {
            store,
            socket_dirs: None,
            grants: Grants::default(),
            limits: builtin::Limits::default(),
            secrets: None,
            checked: Mutex::default(),
        }
    }

    /// A registry for the server, where API clients register services:
    /// `unix://` sockets only under `socket_dirs`.
    pub fn with_socket_dirs(store: Arc<Store>, socket_dirs: Vec<PathBuf>) -> ServiceRegistry {
        ServiceRegistry {
            store,
            socket_dirs: Some(socket_dirs),
            grants: Grants::default(),
            limits: builtin::Limits::default(),
            secrets: None,
            checked: Mutex::default(),
        }
    }

    /// The same registry with `grants` instead of the built-in flows' own.
    pub fn with_grants(mut self, grants: Grants) -> ServiceRegistry {
        self.grants = grants;
        self
    }

    /// The same registry filling headers in with `secrets`.
    pub fn with_secrets(mut self, secrets: Arc<Secrets>) -> ServiceRegistry {
        self.secrets = Some(secrets);
        self
    }

    /// `headers` filled in for one call, and what to take out of its answer.
    async fn fill(&self, headers: &BTreeMap<String, String>) -> Result<Filled, String> {
        if headers.is_empty() {
            return Ok(Filled { headers: Vec::new(), redactor: Redactor::default() });
        }
        let secrets = self.secrets.as_ref().ok_or("secrets are not available to this command")?;
        secrets.fill(headers).await.map_err(|e| e.to_string())
    }

    /// The same registry letting each flow hold `bytes` in `kv`.
    pub fn with_kv_limit(mut self, bytes: u64) -> ServiceRegistry {
        self.limits.kv_bytes_per_flow = bytes;
        self
    }

    /// The same registry letting flow code keep at most `flows` flows in the
    /// library through `flows.save` (one saving flow at most
    /// `builtin::SAVED_FLOWS_PER_FLOW` of them).
    pub fn with_saved_flows_limit(mut self, flows: u64) -> ServiceRegistry {
        self.limits.saved_flows = builtin::saved_flows_bound(flows);
        self
    }

    /// The endpoint a URL names, when this registry may reach it. Checked
    /// on the text alone, so a refusal says nothing of what exists on disk.
    fn endpoint(&self, url: &str) -> Result<Endpoint, String> {
        let endpoint = Endpoint::parse(url)?;
        if let (Endpoint::Unix { socket }, Some(dirs)) = (&endpoint, &self.socket_dirs)
            && !dirs.iter().any(|dir| socket.starts_with(dir))
        {
            let allowed = if dirs.is_empty() {
                "none".to_string()
            } else {
                dirs.iter().map(|dir| dir.display().to_string()).collect::<Vec<_>>().join(", ")
            };
            return Err(format!(
                "unix:// services must be in a directory the operator allows with --service-socket-dir (allowed: {allowed})"
            ));
        }
        Ok(endpoint)
    }

    /// Every service, built-ins first.
    pub async fn list(&self) -> Result<Vec<ServiceInfo>> {
        let mut all: Vec<ServiceInfo> = builtin::NAMES.iter().filter_map(|name| builtin_info(name)).collect();
        for mut stored in self.store.services().await? {
            stored.document = self.redacted_again(&stored).await;
            if let Ok(info) = registered_info(&stored) {
                all.push(info);
            }
        }
        Ok(all)
    }

    /// `stored`'s document with the secrets its headers name taken out once
    /// more before it is shown: documents are redacted when they are fetched,
    /// but one stored by an earlier version of hero_logic may hold a value.
    /// A secret that cannot be read now (removed, another key) leaves the
    /// document as stored.
    async fn redacted_again(&self, stored: &StoredService) -> Value {
        let names_secrets = crate::secrets::headers::check(&stored.headers).is_ok_and(|names| !names.is_empty());
        if !names_secrets {
            return stored.document.clone();
        }
        match self.fill(&stored.headers).await {
            Ok(filled) => filled.redactor.value(stored.document.clone()),
            Err(error) => {
                tracing::debug!(service = %stored.name, %error, "the document is listed without redacting it again");
                stored.document.clone()
            }
        }
    }

    async fn find(&self, name: &str) -> Result<Option<Target>, CallFailure> {
        if let Some(doc) = BUILTIN_DOCS.get(name) {
            let url = "builtin".to_string();
            let headers = BTreeMap::new();
            return Ok(Some(Target { url, builtin: true, timeout_ms: DEFAULT_TIMEOUT_MS, headers, doc: doc.clone() }));
        }
        let stored = self
            .stored_service(name)
            .await
            .map_err(|e| CallFailure::Transport(format!("the registry failed: {e:#}")))?;
        let Some(stored) = stored else { return Ok(None) };
        let doc = self.checked(&stored).map_err(CallFailure::Transport)?;
        Ok(Some(Target {
            url: stored.url,
            builtin: false,
            timeout_ms: stored.timeout_ms,
            headers: stored.headers,
            doc,
        }))
    }

    /// Service `name` as stored. While the database is unreachable it is
    /// asked again with back-off: the calling run waits, as it waits for
    /// its writes, rather than fail on an outage (a cancel or its wall time
    /// still ends it).
    async fn stored_service(&self, name: &str) -> anyhow::Result<Option<StoredService>> {
        let mut back_off = crate::store::BackOff::default();
        loop {
            match self.store.service(name).await {
                Err(error) if crate::store::is_unavailable(&error) => back_off.wait().await,
                found => return found,
            }
        }
    }

    /// `stored`'s document checked: compiled at its first call, then kept.
    fn checked(&self, stored: &StoredService) -> Result<Arc<CheckedDoc>, String> {
        let lock = || self.checked.lock().expect("nothing panics while holding the lock");
        if let Some((document, doc)) = lock().get(&stored.name)
            && *document == stored.document
        {
            return Ok(doc.clone());
        }
        let doc = Arc::new(CheckedDoc::new(&stored.document)?);
        lock().insert(stored.name.clone(), (stored.document.clone(), doc.clone()));
        Ok(doc)
    }

    /// Register a service: its document as given, or fetched with
    /// `rpc.discover`; `headers` are added to each call, secrets filled in.
    /// Returns what flows will see.
    pub async fn register(
        &self,
        name: &str,
        url: &str,
        document: Option<Value>,
        timeout_ms: Option<u64>,
        headers: BTreeMap<String, String>,
    ) -> Result<ServiceInfo, String> {
        if !is_identifier(name) {
            return Err(format!("'{name}' cannot be a service name: use a Python identifier (letters, digits, _)"));
        }
        if builtin::NAMES.contains(&name) {
            return Err(format!("'{name}' is a built-in service"));
        }
        let endpoint = self.endpoint(url)?;
        let timeout_ms = timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if timeout_ms == 0 {
            return Err("the timeout must be greater than 0 ms".into());
        }
        let secrets = crate::secrets::headers::check(&headers)?;
        if !secrets.is_empty() {
            let store = self.secrets.as_ref().ok_or("secrets are not available to this command")?;
            if let Some(missing) = store.missing(&secrets).await.map_err(|e| format!("the store failed: {e:#}"))? {
                return Err(format!("no secret named '{missing}': set it first (POST /api/secrets)"));
            }
        }
        let document = match document {
            Some(document) => document,
            None => {
                let filled = self.fill(&headers).await?;
                let discover = Value::Object(Default::default());
                let answer = client::call(
                    &endpoint,
                    "rpc.discover",
                    discover,
                    &filled.headers,
                    Duration::from_millis(timeout_ms),
                )
                .await
                .map_err(|e| {
                    let e = filled.redactor.failure(e);
                    format!("could not fetch the OpenRPC document with rpc.discover from {url}: {}", describe(&e))
                })?;
                // A service's document is its answer like any other: one that
                // repeats a header must not have it stored, listed or stubbed.
                filled.redactor.value(answer)
            }
        };
        let checked =
            CheckedDoc::new(&document).map_err(|e| format!("the OpenRPC document of '{name}' is not usable: {e}"))?;
        let doc = checked.doc.clone();
        let stored = StoredService {
            name: name.into(),
            url: url.into(),
            document: document.clone(),
            timeout_ms,
            created_us: crate::trace::now_us(),
            headers: headers.clone(),
        };
        self.store.save_service(stored).await.map_err(|e| format!("the store failed: {e:#}"))?;
        self.checked
            .lock()
            .expect("nothing panics while holding the lock")
            .insert(name.into(), (document, Arc::new(checked)));
        let headers = headers.into_keys().collect();
        Ok(ServiceInfo { name: name.into(), url: url.into(), builtin: false, timeout_ms, headers, doc })
    }

    pub async fn remove(&self, name: &str) -> Result<bool> {
        self.checked.lock().expect("nothing panics while holding the lock").remove(name);
        self.store.remove_service(name).await
    }

    async fn dispatch(
        &self,
        context: CallContext<'_>,
        service: &str,
        method: &str,
        params: Value,
    ) -> Result<Value, CallFailure> {
        let Some(info) = self.find(service).await? else {
            let mut known: Vec<String> = builtin::NAMES.iter().map(|s| s.to_string()).collect();
            known.extend(self.store.services().await.unwrap_or_default().into_iter().map(|s| s.name));
            return Err(CallFailure::UnknownService { service: service.into(), known });
        };
        // Discovery is every JSON-RPC service's own method, in no document.
        let discovery = method == "rpc.discover" && !info.builtin;
        if !discovery {
            if info.doc.doc.method(method).is_none() {
                return Err(CallFailure::UnknownMethod {
                    service: service.into(),
                    method: method.into(),
                    known: info.doc.doc.method_names(),
                });
            }
            let Value::Object(named) = &params else {
                return Err(CallFailure::InvalidParams("parameters are passed by name".into()));
            };
            info.doc.check_params(method, named).map_err(CallFailure::InvalidParams)?;
        }
        if info.builtin {
            // `registry.list` lists this registry, which the other built-ins cannot see.
            if service == "registry" {
                return self
                    .list()
                    .await
                    .map(|all| serde_json::json!(all))
                    .map_err(|e| CallFailure::Transport(format!("{e:#}")));
            }
            let answer =
                builtin::call(&self.store, &self.grants, &self.limits, context, service, method, &params).await?;
            return builtin::bounded(answer);
        }
        let timeout = Duration::from_millis(info.timeout_ms);
        let call =
            FlowCall { idempotency_key: context.call_key, traceparent: traceparent(context.run_id, context.span_id) };
        self.send(&info.url, &info.headers, Some(call), method, params, timeout).await
    }

    /// One call to a registered service at `url`, with its `headers` (secrets
    /// filled in) and, for a flow's call, its `Idempotency-Key` and
    /// `traceparent`. What it answers is redacted of the secrets before the
    /// flow, its span, a log or an API answer sees it.
    async fn send(
        &self,
        url: &str,
        headers: &BTreeMap<String, String>,
        flow_call: Option<FlowCall<'_>>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, CallFailure> {
        let endpoint = self.endpoint(url).map_err(CallFailure::Transport)?;
        let mut filled = self.fill(headers).await.map_err(CallFailure::Transport)?;
        if let Some(call) = flow_call {
            // The host's, whatever the service was registered with.
            for (name, value) in [("idempotency-key", call.idempotency_key), ("traceparent", call.traceparent.as_str())]
            {
                filled.headers.retain(|(held, _)| held.as_str() != name);
                let value =
                    axum::http::HeaderValue::from_str(value).map_err(|e| CallFailure::Transport(e.to_string()))?;
                filled.headers.push((axum::http::HeaderName::from_static(name), value));
            }
        }
        match client::call(&endpoint, method, params, &filled.headers, timeout).await {
            Ok(result) => Ok(filled.redactor.value(result)),
            Err(failure) => Err(filled.redactor.failure(failure)),
        }
    }
}

/// What a flow's call carries besides the service's own headers.
struct FlowCall<'a> {
    /// The call's place in the run's journal, the same on every replay.
    idempotency_key: &'a str,
    /// W3C trace context: the run's trace, the call's span as parent.
    traceparent: String,
}

impl ServiceCaller for ServiceRegistry {
    fn call<'a>(
        &'a self,
        context: CallContext<'a>,
        service: &'a str,
        method: &'a str,
        params: Value,
    ) -> BoxFuture<'a, Result<Value, CallFailure>> {
        Box::pin(self.dispatch(context, service, method, params))
    }
}

fn builtin_info(name: &str) -> Option<ServiceInfo> {
    let doc = BUILTIN_DOCS.get(name)?.doc.clone();
    Some(ServiceInfo {
        name: name.into(),
        url: "builtin".into(),
        builtin: true,
        timeout_ms: DEFAULT_TIMEOUT_MS,
        headers: Vec::new(),
        doc,
    })
}

fn registered_info(stored: &StoredService) -> Result<ServiceInfo, String> {
    Ok(ServiceInfo {
        name: stored.name.clone(),
        url: stored.url.clone(),
        builtin: false,
        timeout_ms: stored.timeout_ms,
        headers: stored.headers.keys().cloned().collect(),
        doc: ServiceDoc::parse(&stored.document)?,
    })
}

fn describe(failure: &CallFailure) -> String {
    failure.to_error("rpc", "discover").message
}

pub use crate::text::is_identifier;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_document_compiles() {
        assert_eq!(BUILTIN_DOCS.len(), builtin::NAMES.len());
    }
}
