//! What the journal costs: the same runs with their answers journaled to a
//! real SQLite store, journaled under the write-ahead rule of durable runs
//! (each answer stored before the guest gets it), and with no journal,
//! measured side by side (they alternate, so drift in the machine's load
//! falls on all alike).

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

pub const JOURNAL_BASELINE: &str = "journal baseline: the same runs in the same sandbox with no journal, alternating with the journaled and durable ones";

pub(super) async fn figures(harness: &Arc<Harness>, runs: usize, reads: u64) -> Result<Vec<Figure>> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(Store::open(&Database::Sqlite(dir.path().join("journal.db"))).await?);
    let batched: Arc<dyn JournalSink> = Arc::new(StoreJournal::new(store.clone(), "bench-journal".into(), false));
    let write_ahead: Arc<dyn JournalSink> = Arc::new(StoreJournal::new(store.clone(), "bench-durable".into(), true));
    let with = |prepared: &Prepared, journal: &Arc<dyn JournalSink>| Prepared {
        source: prepared.source.clone(),
        info: prepared.info.clone(),
        env: RunEnv { journal: Some(journal.clone()), ..prepared.env.clone() },
    };

    // A trivial run: 3 steps and 2 service calls, so 2 call answers (and
    // the random seed) journaled.
    let plain = harness.prepare(TRIVIAL).await?;
    let journaled = with(&plain, &batched);
    let durable = with(&plain, &write_ahead);
    let mut took = [Vec::with_capacity(runs), Vec::with_capacity(runs), Vec::with_capacity(runs)];
    for n in 0..runs + 20 {
        let input = json!({"n": n});
        for (kind, prepared) in [&plain, &journaled, &durable].into_iter().enumerate() {
            let elapsed = timed(harness.run(prepared, input.clone(), Quotas::default())).await?;
            if n >= 20 {
                took[kind].push(elapsed);
            }
        }
    }
    let [plain_p50, journaled_p50, durable_p50] = took.map(|took| Latencies::new(&took).p50());

    // Answers one after another: a clock read is the smallest host call.
    let plain = harness.prepare(CLOCK_READS).await?;
    let journaled = with(&plain, &batched);
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
            key: "trivial_durable_p50_ms",
            label: "trivial run p50, durable",
            value: durable_p50,
            unit: "ms",
            target: None,
        },
        Figure {
            key: "durable_cost_per_call_ms",
            label: "write-ahead wait per call",
            // Two calls; the seed is stored with the first call's wait.
            value: (durable_p50 - journaled_p50) / 2.0,
            unit: "ms",
            target: None,
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
