//! The error object of a span, a run and a stored run:
//! `{"type", "message", "traceback", "line"?, "quota"?, "limit"?, ...}`.
//!
//! One type, so every place that reports a failure (a Python exception, a
//! quota, a trap, a cancel, a crash, a refused service call) says it the same
//! way, and readers (the page, the CLI, OTLP) find the same fields.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Read leniently (see `from_value`), so an odd error a guest sent or an
/// older version stored never makes a run unreadable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "Value")]
pub struct ErrorInfo {
    /// The exception's class, or the host's name for what happened
    /// (`QuotaExceeded`, `Cancelled`, `Interrupted`, `Trap`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    /// The Python traceback; null for what the host reports.
    #[serde(default)]
    pub traceback: Option<String>,
    /// The line of the flow's module the exception was raised at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The quota that stopped the run, and its limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// What else the guest or a service attached (an RPC error's `code` and
    /// `data`, an invalid input's `field`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ErrorInfo {
    /// An error the host reports: no traceback.
    pub fn new(kind: &str, message: impl Into<String>) -> ErrorInfo {
        ErrorInfo {
            kind: kind.to_string(),
            message: message.into(),
            traceback: None,
            line: None,
            quota: None,
            limit: None,
            extra: Map::new(),
        }
    }

    /// A quota stopped the run (`kind` is `QuotaExceeded`, or `TimedOut`
    /// for the wall time).
    pub fn quota(kind: &str, quota: &str, limit: u64, message: impl Into<String>) -> ErrorInfo {
        ErrorInfo { quota: Some(quota.to_string()), limit: Some(limit), ..ErrorInfo::new(kind, message) }
    }

    pub fn cancelled(message: impl Into<String>) -> ErrorInfo {
        ErrorInfo::new("Cancelled", message)
    }

    /// The server stopped while the run was going on.
    pub fn interrupted() -> ErrorInfo {
        ErrorInfo::new("Interrupted", "the server stopped while the run was going on")
    }

    /// Put on a span the flow opened and never closed.
    pub fn left_open() -> ErrorInfo {
        ErrorInfo::new("SpanLeftOpen", "the flow ended without closing this span")
    }

    /// The same error with one more field.
    pub fn with(mut self, key: &str, value: Value) -> ErrorInfo {
        self.extra.insert(key.to_string(), value);
        self
    }

    /// An error object as a guest (or a stored row from an older version)
    /// sent it. One without a string `type` and `message` becomes a
    /// `GuestError` carrying it as text; a known field of another type than
    /// ours is kept among the extra fields (a `traceback` that is not text
    /// is dropped).
    pub fn from_value(value: Value) -> ErrorInfo {
        let well_formed = |fields: &Map<String, Value>| {
            fields.get("type").is_some_and(Value::is_string) && fields.get("message").is_some_and(Value::is_string)
        };
        let mut fields = match value {
            Value::Object(fields) if well_formed(&fields) => fields,
            other => return ErrorInfo::new("GuestError", other.to_string()),
        };
        let mut take_string = |key: &str| match fields.remove(key) {
            Some(Value::String(text)) => Some(text),
            _ => None,
        };
        let kind = take_string("type").unwrap_or_default();
        let message = take_string("message").unwrap_or_default();
        let traceback = take_string("traceback");
        let mut error = ErrorInfo { traceback, ..ErrorInfo::new(&kind, message) };
        if let Some(line) = fields.get("line").and_then(Value::as_u64).and_then(|l| u32::try_from(l).ok()) {
            fields.remove("line");
            error.line = Some(line);
        } else if fields.get("line").is_some_and(Value::is_null) {
            fields.remove("line");
        }
        if let Some(Value::String(quota)) = fields.get("quota") {
            error.quota = Some(quota.clone());
            fields.remove("quota");
        }
        if let Some(limit) = fields.get("limit").and_then(Value::as_u64) {
            error.limit = Some(limit);
            fields.remove("limit");
        }
        error.extra = fields;
        error
    }

    /// The error as JSON text, as it is stored and handed to the guest.
    pub fn to_json_string(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `Type: message (line N)`, for one line of text.
    pub fn summary(&self) -> String {
        match self.line {
            Some(line) => format!("{}: {} (line {line})", self.kind, self.message),
            None => format!("{}: {}", self.kind, self.message),
        }
    }
}

impl From<Value> for ErrorInfo {
    fn from(value: Value) -> ErrorInfo {
        ErrorInfo::from_value(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_wire_shape_is_the_one_readers_know() {
        let quota = ErrorInfo::quota("QuotaExceeded", "spans", 10, "quota spans exceeded: the limit is 10");
        assert_eq!(
            serde_json::to_value(&quota).unwrap(),
            json!({"type": "QuotaExceeded", "message": "quota spans exceeded: the limit is 10", "traceback": null,
                   "quota": "spans", "limit": 10})
        );
        let rpc = ErrorInfo::new("RpcError", "no such city").with("code", json!(-32000));
        assert_eq!(
            serde_json::to_value(&rpc).unwrap(),
            json!({"type": "RpcError", "message": "no such city", "traceback": null, "code": -32000})
        );
    }

    #[test]
    fn a_guest_error_round_trips_with_its_extra_fields() {
        let sent = json!({"type": "ValueError", "message": "bad", "traceback": "Traceback ...", "line": 7,
                          "field": "city"});
        let error = ErrorInfo::from_value(sent.clone());
        assert_eq!(
            (error.kind.as_str(), error.line, error.extra["field"].clone()),
            ("ValueError", Some(7), json!("city"))
        );
        assert_eq!(serde_json::to_value(&error).unwrap(), sent);
    }

    #[test]
    fn anything_else_a_guest_sends_becomes_a_guest_error() {
        for sent in [json!(["not", "an", "object"]), json!({"type": 5, "message": "x"}), json!({"message": "no type"})]
        {
            let error = ErrorInfo::from_value(sent.clone());
            assert_eq!((error.kind.as_str(), error.message), ("GuestError", sent.to_string()));
        }
    }

    #[test]
    fn a_known_field_of_another_type_is_kept_as_it_came() {
        let sent = json!({"type": "E", "message": "m", "line": "seven", "limit": "none", "traceback": 3});
        let error = ErrorInfo::from_value(sent);
        assert_eq!(
            serde_json::to_value(&error).unwrap(),
            json!({"type": "E", "message": "m", "traceback": null, "line": "seven", "limit": "none"})
        );
    }
}
