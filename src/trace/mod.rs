//! The span model and the events a run emits.
//!
//! One span record serves SQLite, the JSON API, the WebSocket and the CLI's
//! `--json` output, so a span looks the same wherever it is read.

pub mod bus;
mod error;
mod recorder;

pub use error::ErrorInfo;
pub use recorder::{Recorder, SpanStackError};

use crate::spelled::spelled;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

spelled! {
    /// What a span stands for.
    pub enum SpanKind {
        /// The root span of a run: the flow itself.
        Flow = "flow",
        /// A `with flow.step(...)` block.
        Step = "step",
        /// A service call, opened and closed by the host.
        Rpc = "rpc",
        /// A flow started with `flow.invoke`, run in its own sandbox instance.
        Subflow = "subflow",
    }
}

spelled! {
    /// The state of a span, and of a run.
    pub enum Status {
        /// A run accepted and waiting for a free worker (runs only, never spans).
        Queued = "queued",
        Running = "running",
        Ok = "ok",
        Failed = "failed",
        TimedOut = "timed_out",
        Cancelled = "cancelled",
        QuotaExceeded = "quota_exceeded",
        /// The process died while the run was going on.
        Interrupted = "interrupted",
    }
}

impl Status {
    /// Whether a run or span in this state is over.
    pub fn is_final(self) -> bool {
        !matches!(self, Status::Queued | Status::Running)
    }
}

/// One span, as stored, served and streamed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub run_id: String,
    pub span_id: u64,
    /// None for the root `flow` span only.
    pub parent_id: Option<u64>,
    pub kind: SpanKind,
    pub name: String,
    pub status: Status,
    /// Microseconds since the Unix epoch.
    pub start_us: i64,
    /// None while the span is running.
    pub end_us: Option<i64>,
    pub attrs: Map<String, Value>,
    /// What went wrong, for a span that did not end `ok`.
    pub error: Option<ErrorInfo>,
    /// Source line of the `with flow.step` or call site, for jumping to it.
    pub line: Option<u32>,
}

spelled! {
    /// Where a log line came from.
    pub enum LogStream {
        Stdout = "stdout",
        Stderr = "stderr",
        /// `flow.log(...)`.
        Log = "log",
    }
}

/// One log line, attached to the span that was current when it was written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub run_id: String,
    pub span_id: u64,
    /// The run's event sequence number at which the line was written.
    pub seq: u64,
    pub ts_us: i64,
    pub stream: LogStream,
    pub text: String,
}

/// Everything that leaves a run, in order. `seq` numbers are per run, without
/// gaps, so a watcher can join at any point and know what it missed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunEvent {
    SpanStarted {
        seq: u64,
        #[serde(flatten)]
        span: Span,
    },
    SpanEnded {
        seq: u64,
        #[serde(flatten)]
        span: Span,
    },
    Log(LogLine),
}

impl RunEvent {
    pub fn seq(&self) -> u64 {
        match self {
            RunEvent::SpanStarted { seq, .. } | RunEvent::SpanEnded { seq, .. } => *seq,
            RunEvent::Log(line) => line.seq,
        }
    }
}

/// The one way events leave a run: the sandbox never waits on whoever reads it.
pub type EventSink = tokio::sync::mpsc::UnboundedSender<RunEvent>;

/// Microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
}

/// `value`, or, when its JSON is longer than `max_bytes`, the first
/// `max_bytes` of that JSON as a string marked as cut. Keeps one huge
/// attribute from filling the store or the browser.
pub fn clip_json(value: Value, max_bytes: usize) -> Value {
    let text = value.to_string();
    if text.len() <= max_bytes {
        return value;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Value::String(format!("{}… (cut at {max_bytes} of {} bytes)", &text[..end], text.len()))
}

/// A run's trace id, as OpenTelemetry and W3C trace context spell it: the
/// run id's 128 bits in 32 lower-case hex digits.
pub fn trace_id_of(run_id: &str) -> String {
    let hex: String = run_id.chars().filter(char::is_ascii_hexdigit).collect::<String>().to_lowercase();
    format!("{hex:0>32}")
}

/// The W3C `traceparent` a call made inside span `span_id` of a run carries,
/// so what the callee records joins the run's trace under that span.
pub fn traceparent(run_id: &str, span_id: u64) -> String {
    format!("00-{}-{span_id:016x}-01", trace_id_of(run_id))
}
