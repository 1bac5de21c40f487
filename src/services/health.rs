//! A registered service's health, as the Services page shows it: does it
//! answer `rpc.discover` within its timeout, how fast, with how many methods.

use super::{ServiceRegistry, describe};
use serde::Serialize;
use serde_json::Value;
use std::time::{Duration, Instant};

/// The longest a health check waits, whatever timeout the service was
/// registered with: the page asks for every service's health when it opens.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// One `rpc.discover` round trip to a service.
#[derive(Debug, Serialize)]
pub struct Health {
    pub name: String,
    pub ok: bool,
    /// How long the round trip took, in milliseconds.
    pub ms: f64,
    /// Methods in the document it answered with (None when it did not answer).
    pub methods: Option<usize>,
    pub error: Option<String>,
}

impl ServiceRegistry {
    /// Ask service `name` for its document; None when no such service is
    /// registered. A built-in is in this process: always healthy.
    pub async fn health(&self, name: &str) -> anyhow::Result<Option<Health>> {
        let healthy = |ms, methods| Health { name: name.into(), ok: true, ms, methods: Some(methods), error: None };
        if let Some(doc) = super::BUILTIN_DOCS.get(name) {
            return Ok(Some(healthy(0.0, doc.doc.method_names().len())));
        }
        let Some(stored) = self.store.service(name).await? else { return Ok(None) };
        // With the headers its calls carry, as a flow's call would.
        let started = Instant::now();
        let answer = self
            .send(
                &stored.url,
                &stored.headers,
                None,
                "rpc.discover",
                Value::Object(Default::default()),
                Duration::from_millis(stored.timeout_ms).min(HEALTH_TIMEOUT),
            )
            .await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(Some(match answer {
            Ok(document) => match document.get("methods").and_then(Value::as_array) {
                Some(methods) => healthy(ms, methods.len()),
                None => failing(name, ms, "it answered rpc.discover without a methods list".into()),
            },
            Err(failure) => failing(name, ms, describe(&failure)),
        }))
    }
}

fn failing(name: &str, ms: f64, error: String) -> Health {
    Health { name: name.into(), ok: false, ms, methods: None, error: Some(error) }
}
