//! Counters for `GET /metrics`, in Prometheus' text format.

use crate::trace::Status;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the run-duration histogram, in seconds.
const DURATION_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0, 120.0];

#[derive(Default)]
pub struct Metrics {
    finished: Mutex<Vec<(Status, u64)>>,
    /// Cumulative counts per bucket, then +Inf.
    duration_buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    duration_sum_us: AtomicU64,
    pub spans: AtomicU64,
    pub log_lines: AtomicU64,
    pub rejected_queue_full: AtomicU64,
}

impl Metrics {
    pub fn run_finished(&self, status: Status, seconds: f64) {
        {
            let mut finished = self.finished.lock().unwrap_or_else(|p| p.into_inner());
            match finished.iter_mut().find(|(s, _)| *s == status) {
                Some((_, count)) => *count += 1,
                None => finished.push((status, 1)),
            }
        }
        for (bucket, bound) in self.duration_buckets.iter().zip(DURATION_BUCKETS.iter().chain([&f64::INFINITY])) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.duration_sum_us.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    pub fn render(&self, queued: usize, running: usize, stream_tail_bytes: usize) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP hero_logic_runs_total Runs finished, by final status.\n# TYPE hero_logic_runs_total counter\n",
        );
        let finished = self.finished.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for (status, count) in finished {
            let _ = writeln!(out, "hero_logic_runs_total{{status=\"{status}\"}} {count}");
        }
        out.push_str("# HELP hero_logic_run_duration_seconds Wall time of finished runs.\n# TYPE hero_logic_run_duration_seconds histogram\n");
        let mut total = 0;
        for (bucket, bound) in
            self.duration_buckets.iter().zip(DURATION_BUCKETS.iter().map(|b| b.to_string()).chain(["+Inf".into()]))
        {
            total = bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "hero_logic_run_duration_seconds_bucket{{le=\"{bound}\"}} {total}");
        }
        let sum = self.duration_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ =
            writeln!(out, "hero_logic_run_duration_seconds_sum {sum}\nhero_logic_run_duration_seconds_count {total}");
        let gauges = [
            ("hero_logic_spans_total", "counter", "Spans recorded.", self.spans.load(Ordering::Relaxed)),
            ("hero_logic_log_lines_total", "counter", "Log lines recorded.", self.log_lines.load(Ordering::Relaxed)),
            (
                "hero_logic_runs_rejected_total",
                "counter",
                "Runs refused because the queue was full.",
                self.rejected_queue_full.load(Ordering::Relaxed),
            ),
            ("hero_logic_queue_depth", "gauge", "Runs waiting for a worker.", queued as u64),
            ("hero_logic_runs_running", "gauge", "Runs running now.", running as u64),
            (
                "hero_logic_stream_tail_bytes",
                "gauge",
                "Bytes of newest events live runs keep for their watchers.",
                stream_tail_bytes as u64,
            ),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
        out
    }
}
