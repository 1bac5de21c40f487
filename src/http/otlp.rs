//! A run's spans as OTLP/JSON (`ExportTraceServiceRequest`), so a run opens in
//! Jaeger, Tempo or any other OpenTelemetry tool.

use crate::store::RunRecord;
use crate::trace::{Span, SpanKind, Status};
use serde_json::{Value, json};

/// The trace id is the run id's 128 bits; span ids are the host's span ids.
pub fn export(run: &RunRecord, spans: &[Span]) -> Value {
    let trace_id = crate::trace::trace_id_of(&run.run_id);
    let spans: Vec<Value> = spans.iter().map(|span| otlp_span(&trace_id, span)).collect();
    json!({
        "resourceSpans": [{
            "resource": {"attributes": [
                attribute("service.name", json!({"stringValue": "hero_logic"})),
                attribute("hero_logic.flow", json!({"stringValue": run.flow})),
                attribute("hero_logic.run_id", json!({"stringValue": run.run_id})),
            ]},
            "scopeSpans": [{
                "scope": {"name": "hero_logic", "version": env!("CARGO_PKG_VERSION")},
                "spans": spans,
            }],
        }]
    })
}

fn attribute(key: &str, value: Value) -> Value {
    json!({"key": key, "value": value})
}

fn otlp_span(trace_id: &str, span: &Span) -> Value {
    let mut attributes = vec![
        attribute("hero_logic.kind", json!({"stringValue": span.kind.as_str()})),
        attribute("hero_logic.status", json!({"stringValue": span.status.as_str()})),
    ];
    if let Some(line) = span.line {
        attributes.push(attribute("code.lineno", json!({"intValue": line.to_string()})));
    }
    for (key, value) in &span.attrs {
        let value = match value {
            Value::String(text) => json!({"stringValue": text}),
            Value::Bool(flag) => json!({"boolValue": flag}),
            Value::Number(n) if n.is_i64() => json!({"intValue": n.to_string()}),
            Value::Number(n) => json!({"doubleValue": n.as_f64()}),
            other => json!({"stringValue": other.to_string()}),
        };
        attributes.push(attribute(key, value));
    }
    let status = match span.status {
        Status::Ok => json!({"code": 1}),
        Status::Running | Status::Queued => json!({"code": 0}),
        other => {
            let message = span.error.as_ref().map_or(other.as_str(), |e| e.message.as_str());
            json!({"code": 2, "message": message})
        }
    };
    let mut events = Vec::new();
    if let Some(error) = &span.error {
        events.push(json!({
            "name": "exception",
            "timeUnixNano": (span.end_us.unwrap_or(span.start_us) * 1000).to_string(),
            "attributes": [
                attribute("exception.type", json!({"stringValue": error.kind})),
                attribute("exception.message", json!({"stringValue": error.message})),
                attribute("exception.stacktrace", json!({"stringValue": error.traceback.as_deref().unwrap_or("")})),
            ],
        }));
    }
    let mut otlp = json!({
        "traceId": trace_id,
        "spanId": format!("{:016x}", span.span_id),
        "name": span.name,
        // SPAN_KIND_CLIENT for service calls, SPAN_KIND_INTERNAL otherwise.
        "kind": if span.kind == SpanKind::Rpc { 3 } else { 1 },
        "startTimeUnixNano": (span.start_us * 1000).to_string(),
        "endTimeUnixNano": (span.end_us.unwrap_or(span.start_us) * 1000).to_string(),
        "attributes": attributes,
        "events": events,
        "status": status,
    });
    if let Some(parent) = span.parent_id {
        otlp["parentSpanId"] = json!(format!("{parent:016x}"));
    }
    otlp
}
