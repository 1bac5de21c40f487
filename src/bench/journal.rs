//! What the journal costs: the same runs with their answers journaled to a
//! real SQLite store and with no journal, measured side by side (the two
//! alternate, so drift in the machine's load falls on both alike).

use super::stats::Latencies;
use super::{Figure, Harness, Prepared, TRIVIAL};
use crate::sandbox::{JournalSink, Quotas, RunEnv};
use crate::scheduler::StoreJournal;
use crate::store::{Database, Store};
use anyhow::Result;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLOCK_READS: &str = include_str!("../../bench/clock_reads.py");

pub const JOURNAL_BASELINE: &str =
    "journal baseline: the same runs in the same sandbox with no journal, alternating with the journaled ones";

pub(super) async fn figures(harness: &Arc<Harness>, runs: usize, reads: u64) -> Result<Vec<Figure>> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(Store::open(&Database::Sqlite(dir.path().join("journal.db"))).await?);
    let journal: Arc<dyn JournalSink> = Arc::new(StoreJournal::new(store.clone(), "bench-journal".into(), false));
    let with = |prepared: &Prepared| Prepared {
        source: prepared.source.clone(),
        info: prepared.info.clone(),
        env: RunEnv { journal: Some(journal.clone()), ..prepared.env.clone() },
    };

    // A trivial run: 3 steps and 2 service calls, so 2 answers journaled.
    let plain = harness.prepare(TRIVIAL).await?;
    let journaled = with(&plain);
    let (mut plain_ms, mut journaled_ms) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for n in 0..runs + 20 {
        let input = json!({"n": n});
        let plain_took = timed(harness.run(&plain, input.clone(), Quotas::default())).await?;
        let journaled_took = timed(harness.run(&journaled, input, Quotas::default())).await?;
        if n >= 20 {
            plain_ms.push(plain_took);
            journaled_ms.push(journaled_took);
        }
    }
    let (plain_p50, journaled_p50) = (Latencies::new(&plain_ms).p50(), Latencies::new(&journaled_ms).p50());

    // Answers one after another: a clock read is the smallest host call.
    let plain = harness.prepare(CLOCK_READS).await?;
    let journaled = with(&plain);
    let quotas = Quotas { journal_bytes: 64 << 20, ..Quotas::default() };
    let (mut plain_s, mut journaled_s) = (0.0, 0.0);
    for _ in 0..3 {
        let input = json!({"count": reads});
        plain_s += timed(harness.run(&plain, input.clone(), quotas.clone())).await?.as_secs_f64();
        journaled_s += timed(harness.run(&journaled, input, quotas.clone())).await?.as_secs_f64();
    }
    let per_read_us = |seconds: f64| seconds * 1e6 / (3.0 * reads as f64);
    store.close().await;
    Ok(vec![
        Figure {
            key: "trivial_plain_p50_ms",
            label: "trivial run p50, no journal",
            value: plain_p50,
            unit: "ms",
            target: None,
        },
        Figure {
            key: "trivial_journaled_p50_ms",
            label: "trivial run p50, journaled",
            value: journaled_p50,
            unit: "ms",
            target: Some(("<= 1.1 x no journal", journaled_p50 <= 1.1 * plain_p50)),
        },
        Figure {
            key: "clock_read_plain_us",
            label: "clock read, no journal",
            value: per_read_us(plain_s),
            unit: "us",
            target: None,
        },
        Figure {
            key: "clock_read_journaled_us",
            label: "clock read, journaled",
            value: per_read_us(journaled_s),
            unit: "us",
            target: None,
        },
        Figure {
            key: "journal_cost_per_answer_us",
            label: "journal cost per host answer",
            value: per_read_us(journaled_s) - per_read_us(plain_s),
            unit: "us",
            target: None,
        },
    ])
}

async fn timed<T>(run: impl std::future::Future<Output = Result<T>>) -> Result<Duration> {
    let started = Instant::now();
    run.await?;
    Ok(started.elapsed())
}
