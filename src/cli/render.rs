//! A finished run as a tree for a terminal: one line per span with status,
//! duration and attributes, its log lines beneath it, failures with their
//! traceback and line.

use crate::sandbox::RunReport;
use crate::trace::{ErrorInfo, LogLine, LogStream, Span, Status};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

pub fn render_run(report: &RunReport, spans: &[Span], logs: &[LogLine]) -> String {
    let mut children: BTreeMap<Option<u64>, Vec<&Span>> = BTreeMap::new();
    for span in spans {
        children.entry(span.parent_id).or_default().push(span);
    }
    let mut logs_by_span: BTreeMap<u64, Vec<&LogLine>> = BTreeMap::new();
    for line in logs {
        logs_by_span.entry(line.span_id).or_default().push(line);
    }
    let tree = Tree { children, logs: logs_by_span };
    let mut out = String::new();
    for root in tree.children.get(&None).into_iter().flatten() {
        tree.write_span(&mut out, root, "", None);
    }
    match report.status {
        Status::Ok => {
            let output = report.output.as_ref().map_or("null".into(), |o| o.to_string());
            let _ = writeln!(out, "output: {output}");
        }
        status => {
            let _ = writeln!(out, "{status}: {}", error_summary(report.error.as_ref()));
        }
    }
    out
}

struct Tree<'a> {
    children: BTreeMap<Option<u64>, Vec<&'a Span>>,
    logs: BTreeMap<u64, Vec<&'a LogLine>>,
}

impl Tree<'_> {
    /// `prefix` is what goes before this span's children; `is_last` is None
    /// for a root (no branch drawn).
    fn write_span(&self, out: &mut String, span: &Span, prefix: &str, is_last: Option<bool>) {
        let (branch, child_prefix) = match is_last {
            None => (String::new(), String::new()),
            Some(true) => (format!("{prefix}└─ "), format!("{prefix}   ")),
            Some(false) => (format!("{prefix}├─ "), format!("{prefix}│  ")),
        };
        let _ = write!(out, "{branch}{} {} {} {}", icon(span.status), span.name, span.status, duration(span));
        let kind = serde_json::to_value(span.kind).ok().and_then(|k| k.as_str().map(String::from)).unwrap_or_default();
        if kind != "step" {
            let _ = write!(out, " [{kind}]");
        }
        for (key, value) in &span.attrs {
            if key == "usage" {
                continue;
            }
            let _ = write!(out, "  {key}={}", short(value));
        }
        if let Some(line) = span.line {
            let _ = write!(out, "  (line {line})");
        }
        out.push('\n');
        let kids = self.children.get(&Some(span.span_id));
        let detail_prefix = if kids.is_some_and(|k| !k.is_empty()) {
            format!("{child_prefix}│ ")
        } else {
            format!("{child_prefix}  ")
        };
        for line in self.logs.get(&span.span_id).into_iter().flatten() {
            let stream = match line.stream {
                LogStream::Stdout => "stdout",
                LogStream::Stderr => "stderr",
                LogStream::Log => "log",
            };
            let _ = writeln!(out, "{detail_prefix}{stream}: {}", line.text);
        }
        if span.status != Status::Ok
            && let Some(error) = &span.error
        {
            let _ = writeln!(out, "{detail_prefix}{}", error_summary(Some(error)));
            if let Some(traceback) = &error.traceback {
                for text in traceback.lines() {
                    let _ = writeln!(out, "{detail_prefix}  {text}");
                }
            }
        }
        let kids = kids.map(Vec::as_slice).unwrap_or_default();
        for (index, child) in kids.iter().enumerate() {
            self.write_span(out, child, &child_prefix, Some(index + 1 == kids.len()));
        }
    }
}

fn icon(status: Status) -> &'static str {
    match status {
        Status::Ok => "✓",
        Status::Queued | Status::Running => "…",
        Status::Failed => "✗",
        Status::TimedOut => "⏱",
        Status::Cancelled => "⊘",
        Status::QuotaExceeded => "⛔",
        Status::Interrupted => "⚡",
    }
}

fn duration(span: &Span) -> String {
    match span.end_us {
        Some(end) => {
            let micros = (end - span.start_us).max(0) as f64;
            if micros >= 1_000_000.0 { format!("{:.2} s", micros / 1e6) } else { format!("{:.2} ms", micros / 1e3) }
        }
        None => "running".into(),
    }
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 { format!("{}…", text.chars().take(79).collect::<String>()) } else { text }
}

/// `Type: message (line N)`, or `quota NAME ...` for a quota.
pub fn error_summary(error: Option<&ErrorInfo>) -> String {
    error.map_or_else(|| "no error recorded".into(), ErrorInfo::summary)
}
