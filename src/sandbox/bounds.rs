//! How much of what a guest sends the host keeps: every string that crosses
//! from the guest into a span (names, attributes, errors and their
//! tracebacks) is cut to the limits here, and the size of what is kept counts
//! against the run's `stored_bytes` quota. Log lines are counted whole by
//! `log_bytes`.
//!
//! The JSON a guest sends (attributes, errors, call parameters) is read here
//! too, refusing what is not an object and not parsing what is too large.
//!
//! Without these, a flow catching thirty 2 MiB exceptions in thirty steps
//! grew the store by 128 MB; now each error keeps at most ~21 KiB, and all of
//! them together at most the run's `stored_bytes`.

use super::state::protocol_error;
use crate::trace::{ErrorInfo, clip_json};
use serde_json::{Map, Value};

/// A span's name (step, service method, subflow).
pub use crate::text::NAME_MAX_BYTES;
/// One attribute set, as JSON (step attributes, a call's params or result).
pub const ATTR_MAX_BYTES: usize = 4096;
/// An error's `message`.
pub const MESSAGE_MAX_BYTES: usize = 4096;
/// An error's `traceback`: its end is kept, where the failing line is.
pub const TRACEBACK_MAX_BYTES: usize = 16 * 1024;
/// Any other field of an error, as JSON, and how many such fields are kept.
const FIELD_MAX_BYTES: usize = 1024;
const MAX_EXTRA_FIELDS: usize = 10;

pub use crate::text::clip_str;

/// A span name as it is kept.
pub fn clip_name(name: &str) -> &str {
    clip_str(name, NAME_MAX_BYTES)
}

/// An attribute set as it is kept, and its size.
pub fn clip_attrs(attrs: Map<String, Value>) -> (Map<String, Value>, usize) {
    let kept = clip_json(Value::Object(attrs), ATTR_MAX_BYTES);
    let size = json_size(&kept);
    match kept {
        Value::Object(map) => (map, size),
        cut => (Map::from_iter([("_cut".to_string(), cut)]), size),
    }
}

/// One value as it is kept (`params`, `result`, `input`), and its size.
pub fn clip_value(value: Value) -> (Value, usize) {
    let kept = clip_json(value, ATTR_MAX_BYTES);
    let size = json_size(&kept);
    (kept, size)
}

/// An error as it is kept, and its size: `type` and `message` cut from the
/// end, `traceback` from the start (its last lines matter most), at most a
/// few extra fields, each cut.
pub fn bound_error(error: ErrorInfo) -> (ErrorInfo, usize) {
    let kept = ErrorInfo {
        kind: clip_str(&error.kind, NAME_MAX_BYTES).to_string(),
        message: cut_end(&error.message, MESSAGE_MAX_BYTES),
        traceback: error.traceback.map(|text| cut_start(&text, TRACEBACK_MAX_BYTES)),
        line: error.line,
        quota: error.quota.map(|quota| clip_str(&quota, NAME_MAX_BYTES).to_string()),
        limit: error.limit,
        extra: error
            .extra
            .into_iter()
            .take(MAX_EXTRA_FIELDS)
            .map(|(key, value)| (clip_str(&key, NAME_MAX_BYTES).to_string(), clip_json(value, FIELD_MAX_BYTES)))
            .collect(),
    };
    let size = serde_json::to_string(&kept).map_or(0, |text| text.len());
    (kept, size)
}

// Reading the JSON a guest sends: never more than these limits.

/// Attribute text past this is not parsed: what is kept is cut at
/// `ATTR_MAX_BYTES` anyway, and parsed JSON takes many times its text.
const ATTRS_PARSED_MAX_BYTES: usize = 64 * 1024;
/// Error text past this is read for its `type` and `line` only. An error is
/// mostly two long strings (message, traceback), which parse into about
/// their own size, so an honest exception of a few MiB is still cut as usual.
const ERROR_PARSED_MAX_BYTES: usize = 16 * 1024 * 1024;

pub(super) fn parse_attrs(text: &str) -> wasmtime::Result<Map<String, Value>> {
    if text.len() > ATTRS_PARSED_MAX_BYTES {
        let note = format!("{} bytes of attributes, more than the host reads", text.len());
        return Ok(Map::from_iter([("_cut".to_string(), Value::String(note))]));
    }
    parse_object("span attributes", text)
}

pub(super) fn parse_error(text: &str) -> wasmtime::Result<ErrorInfo> {
    if text.len() <= ERROR_PARSED_MAX_BYTES {
        return Ok(ErrorInfo::from_value(Value::Object(parse_object("span error", text)?)));
    }
    /// The fields kept of an oversized error; serde skips the rest without
    /// keeping it.
    #[derive(serde::Deserialize)]
    struct Brief {
        #[serde(rename = "type")]
        kind: Option<String>,
        line: Option<u64>,
    }
    let brief: Brief =
        serde_json::from_str(text).map_err(|e| protocol_error(format!("span error is not valid JSON: {e}")))?;
    let message = format!("the error object was {} bytes, more than the host reads", text.len());
    let kind = brief.kind.unwrap_or_else(|| "GuestError".into());
    Ok(ErrorInfo { line: brief.line.and_then(|l| u32::try_from(l).ok()), ..ErrorInfo::new(&kind, message) })
}

pub(super) fn parse_object(what: &str, text: &str) -> wasmtime::Result<Map<String, Value>> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(protocol_error(format!("{what} must be a JSON object"))),
        Err(error) => Err(protocol_error(format!("{what} is not valid JSON: {error}"))),
    }
}

fn cut_end(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    format!("{}… (cut at {max} of {} bytes)", clip_str(text, max), text.len())
}

fn cut_start(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("… (the first {start} of {} bytes cut)\n{}", text.len(), &text[start..])
}

fn json_size(value: &Value) -> usize {
    serde_json::to_string(value).map_or(0, |text| text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_error_keeps_its_shape_within_its_limits() {
        let huge = "x".repeat(2 << 20);
        let traceback = format!("{huge}\nValueError: the last line");
        let mut sent = json!({"type": "ValueError", "message": huge, "traceback": traceback, "line": 7});
        for i in 0..100 {
            sent[format!("extra{i}")] = json!(huge);
        }
        let (kept, size) = bound_error(ErrorInfo::from_value(sent));
        assert!(size < 40 * 1024, "{size}");
        assert_eq!((kept.kind.as_str(), kept.line), ("ValueError", Some(7)));
        assert!(kept.message.ends_with(&format!("(cut at 4096 of {} bytes)", 2 << 20)));
        assert!(kept.traceback.unwrap().ends_with("ValueError: the last line"));
        assert_eq!(kept.extra.len(), MAX_EXTRA_FIELDS);
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        let text = "é".repeat(3000);
        assert_eq!(clip_str(&text, 5), "éé");
        assert!(cut_start(&text, 5).ends_with("éé"));
        assert_eq!(clip_name(&"a".repeat(500)).len(), NAME_MAX_BYTES);
    }
}
