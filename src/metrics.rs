//! What `GET /metrics` reports, kept with `prometheus-client` and written in
//! its OpenMetrics text format (which Prometheus scrapes): runs by final
//! status, run durations, spans and log lines recorded, runs refused, and
//! gauges read when asked (queue depth, runs running, stream tails).

use crate::trace::Status;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upper bounds of the run-duration histogram, in seconds.
const DURATION_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0, 120.0];

/// The content type of what `render` writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

pub struct Metrics {
    registry: Registry,
    finished: Family<StatusLabel, Counter>,
    durations: Histogram,
    pub spans: Counter,
    pub log_lines: Counter,
    pub rejected_queue_full: Counter,
    pub runs_resumed: Counter,
    /// Outages of the database this process saw begin, and whether it
    /// is reachable now (1) or not (0); kept by the store, copied here.
    database_outages: Counter,
    database_reachable: Gauge,
    queue_depth: Gauge,
    running: Gauge,
    stream_tail_bytes: Gauge,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let metrics = Metrics {
            registry: Registry::default(),
            finished: Family::default(),
            durations: Histogram::new(DURATION_BUCKETS),
            spans: Counter::default(),
            log_lines: Counter::default(),
            rejected_queue_full: Counter::default(),
            runs_resumed: Counter::default(),
            database_outages: Counter::default(),
            database_reachable: Gauge::default(),
            queue_depth: Gauge::default(),
            running: Gauge::default(),
            stream_tail_bytes: Gauge::default(),
        };
        let mut registry = Registry::default();
        // Counters are written with a `_total` suffix.
        registry.register("hero_logic_runs", "Runs finished, by final status", metrics.finished.clone());
        registry.register("hero_logic_run_duration_seconds", "Wall time of finished runs", metrics.durations.clone());
        registry.register("hero_logic_spans", "Spans recorded", metrics.spans.clone());
        registry.register("hero_logic_log_lines", "Log lines recorded", metrics.log_lines.clone());
        registry.register(
            "hero_logic_runs_rejected",
            "Runs refused because the queue (or a client's share of it) was full",
            metrics.rejected_queue_full.clone(),
        );
        registry.register(
            "hero_logic_runs_resumed",
            "Durable runs resumed after the process running them died",
            metrics.runs_resumed.clone(),
        );
        registry.register(
            "hero_logic_database_unavailable",
            "Times the database became unreachable (restart, failover, network)",
            metrics.database_outages.clone(),
        );
        registry.register(
            "hero_logic_database_reachable",
            "Whether the database answers now (1) or not (0)",
            metrics.database_reachable.clone(),
        );
        registry.register("hero_logic_queue_depth", "Runs waiting for a worker", metrics.queue_depth.clone());
        registry.register("hero_logic_runs_running", "Runs running now", metrics.running.clone());
        registry.register(
            "hero_logic_stream_tail_bytes",
            "Bytes of newest events live runs keep for their watchers",
            metrics.stream_tail_bytes.clone(),
        );
        Metrics { registry, ..metrics }
    }
}

impl Metrics {
    pub fn run_finished(&self, status: Status, seconds: f64) {
        self.finished.get_or_create(&StatusLabel { status: status.as_str().to_string() }).inc();
        self.durations.observe(seconds);
    }

    /// The database as the store last found it: reachable or not, and
    /// how many outages began.
    pub fn database(&self, reachable: bool, outages: u64) {
        self.database_reachable.set(i64::from(reachable));
        self.database_outages.inner().store(outages, std::sync::atomic::Ordering::Relaxed);
    }

    /// Everything, with the gauges as they are now.
    pub fn render(&self, queued: usize, running: usize, stream_tail_bytes: usize) -> String {
        let gauge = |value: usize| i64::try_from(value).unwrap_or(i64::MAX);
        self.queue_depth.set(gauge(queued));
        self.running.set(gauge(running));
        self.stream_tail_bytes.set(gauge(stream_tail_bytes));
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_durations_and_gauges_are_written_as_prometheus_reads_them() {
        let metrics = Metrics::default();
        metrics.run_finished(Status::Ok, 0.003);
        metrics.run_finished(Status::Ok, 2.0);
        metrics.run_finished(Status::Failed, 0.2);
        metrics.rejected_queue_full.inc();
        metrics.database(false, 2);
        let text = metrics.render(3, 1, 4096);
        for line in [
            "hero_logic_runs_total{status=\"ok\"} 2",
            "hero_logic_runs_total{status=\"failed\"} 1",
            "hero_logic_run_duration_seconds_count 3",
            "hero_logic_run_duration_seconds_bucket{le=\"0.005\"} 1",
            "hero_logic_run_duration_seconds_bucket{le=\"+Inf\"} 3",
            "hero_logic_runs_rejected_total 1",
            "hero_logic_queue_depth 3",
            "hero_logic_runs_running 1",
            "hero_logic_stream_tail_bytes 4096",
            "hero_logic_database_unavailable_total 2",
            "hero_logic_database_reachable 0",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
    }
}
