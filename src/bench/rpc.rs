//! The host's overhead per service call: the same method of the example
//! service called directly with the host's JSON-RPC client, and from a flow
//! (guest to host, checks, the `rpc` span, the client).

use crate::sandbox::{ModuleFlows, Quotas, RunEnv, RunRequest, Sandbox};
use crate::services::{Endpoint, ServiceRegistry, client};
use crate::store::{Database, Store};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The example weather service and what it reads beside it.
const SERVICE_FILES: [(&str, &str); 3] = [
    ("weather.py", include_str!("../../examples/services/weather.py")),
    ("jsonrpc_server.py", include_str!("../../examples/services/jsonrpc_server.py")),
    ("weather.openrpc.json", include_str!("../../examples/services/weather.openrpc.json")),
];
const LOOP: &str = include_str!("../../bench/rpc_loop.py");

pub struct RpcFigures {
    pub direct_ms: f64,
    pub through_flow_ms: f64,
}

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub async fn measure(sandbox: &Sandbox, python: &std::path::Path, calls: u32) -> Result<RpcFigures> {
    let dir = tempfile::tempdir()?;
    for (name, text) in SERVICE_FILES {
        std::fs::write(dir.path().join(name), text)?;
    }
    let script = dir.path().join("weather.py");
    let mut child = Command::new(python).arg(&script).args(["--port", "0"]).stdout(Stdio::piped()).spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("service stdout")?).read_line(&mut line)?;
    let _service = Service(child);
    let url = line.trim().strip_prefix("listening on ").context("the service's address")?.to_string();

    let endpoint = Endpoint::parse(&url).map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    for _ in 0..calls {
        client::call(&endpoint, "cities", json!({}), &[], Duration::from_secs(10))
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    let direct_ms = started.elapsed().as_secs_f64() * 1000.0 / f64::from(calls);

    let store = Arc::new(Store::open(&Database::Sqlite(dir.path().join("bench.db"))).await?);
    let registry = Arc::new(ServiceRegistry::new(store.clone()));
    registry.register("weather", &url, None, None, Default::default()).await.map_err(anyhow::Error::msg)?;
    let flows = sandbox.describe(LOOP, &Quotas::default()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let source: Arc<str> = Arc::from(LOOP);
    let env = RunEnv {
        services: registry,
        flows: Arc::new(ModuleFlows { source: source.clone(), flows: flows.clone() }),
        narrow_services: None,
        journal: None,
        replay: None,
        workspace: Arc::from(crate::tenancy::DEFAULT_WORKSPACE),
    };
    let run = |count: u32| {
        let input = flows[0].check_input(&json!({"count": count})).expect("count is an integer");
        let quotas = Quotas { rpc_calls: u64::from(calls) + 1, ..Quotas::default() };
        let (request, _events) = RunRequest::new(source.clone(), &flows[0], input, quotas, env.clone());
        async move {
            let started = Instant::now();
            let report = sandbox.run(request).await;
            if report.output != Some(Value::from(count)) {
                bail!("the rpc loop ended {}: {:?}", report.status, report.error);
            }
            Ok(started.elapsed())
        }
    };
    let mut empty = Vec::new();
    for _ in 0..5 {
        empty.push(run(0).await?);
    }
    empty.sort();
    let with_calls = run(calls).await?;
    let through_flow_ms = (with_calls.saturating_sub(empty[2])).as_secs_f64() * 1000.0 / f64::from(calls);
    store.close().await;
    Ok(RpcFigures { direct_ms, through_flow_ms })
}
