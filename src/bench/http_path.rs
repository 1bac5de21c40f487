//! `hero_logic bench --only server`: what the server adds to a run. The same
//! two-step flow (`bench/server_trivial.py`) run in-process on a fresh
//! sandbox, through `POST /api/runs?wait=true` one at a time (stored, its
//! spans committed, the answer sent), through the API with four clients at
//! once, and as native `python3` per run.

use super::native::Native;
use super::nodes::{Node, runs_per_second};
use super::server::{post, upload};
use super::stats::{Latencies, time_each};
use super::{Harness, Prepared};
use anyhow::{Result, bail};
use serde_json::json;
use std::sync::Arc;

const TRIVIAL: &str = include_str!("../../bench/server_trivial.py");

/// Runs before measuring, so caches and pools are warm.
const WARM_UP: usize = 20;

pub struct HttpFigures {
    pub in_process: Latencies,
    pub through_http: Latencies,
    pub runs_per_s: f64,
    pub native: Option<Latencies>,
}

pub async fn measure(
    harness: &Arc<Harness>,
    native: Option<&Native>,
    cache_dir: Option<std::path::PathBuf>,
    runs: usize,
    native_runs: usize,
) -> Result<HttpFigures> {
    let flow: Prepared = harness.prepare(TRIVIAL).await?;
    let in_process =
        time_each(WARM_UP, runs, async |n| harness.run(&flow, json!({"n": n}), Default::default()).await.map(drop))
            .await?;

    let node = Node::start(None, "bench-http", cache_dir, 100).await?;
    upload(&node.addr, TRIVIAL).await?;
    let body = json!({"flow": "server_trivial", "input": {"n": 21}});
    let through_http = time_each(WARM_UP, runs, async |_| {
        let run = post(&node.addr, "/api/runs?wait=true", &body).await?;
        if run["status"] != "ok" {
            bail!("a trivial run through the server ended {}: {run}", run["status"]);
        }
        Ok(())
    })
    .await?;
    let runs_per_s = runs_per_second(std::slice::from_ref(&node.addr), runs * 2).await?;
    node.stop().await?;

    let native = match native {
        Some(native) => {
            let file = native.write_flow("server_trivial.py", TRIVIAL)?;
            let mut samples = Vec::with_capacity(native_runs);
            for _ in 0..native_runs {
                samples.push(native.run(&file, "server_trivial", r#"{"n": 21}"#)?.0);
            }
            Some(Latencies::new(&samples))
        }
        None => None,
    };
    Ok(HttpFigures { in_process, through_http, runs_per_s, native })
}
