//! How much of what a guest sends the host keeps: every string that crosses
//! from the guest into a span (names, attributes, errors and their
//! tracebacks) is cut to the limits here, and the size of what is kept counts
//! against the run's `stored_bytes` quota. Log lines are counted whole by
//! `log_bytes`.
//!
//! Without these, a flow catching thirty 2 MiB exceptions in thirty steps
//! grew the store by 128 MB; now each error keeps at most ~21 KiB, and all of
//! them together at most the run's `stored_bytes`.

use crate::trace::clip_json;
use serde_json::{Map, Value};

/// A span's name (step, service method, subflow).
pub const NAME_MAX_BYTES: usize = 200;
/// One attribute set, as JSON (step attributes, a call's params or result).
pub const ATTR_MAX_BYTES: usize = 4096;
/// An error's `message`.
pub const MESSAGE_MAX_BYTES: usize = 4096;
/// An error's `traceback`: its end is kept, where the failing line is.
pub const TRACEBACK_MAX_BYTES: usize = 16 * 1024;
/// Any other field of an error object, as JSON, and how many fields are kept.
const FIELD_MAX_BYTES: usize = 1024;
const MAX_FIELDS: usize = 16;

/// The first `max` bytes of `text`, on a character boundary.
pub fn clip_str(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

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

/// An error object as it is kept, and its size: `message` and `type` cut
/// from the end, `traceback` from the start (its last lines matter most),
/// at most a few other fields, each cut. Anything but an object becomes a
/// `GuestError` carrying it as text.
pub fn bound_error(error: Value) -> (Value, usize) {
    let fields = match error {
        Value::Object(fields) => fields,
        other => Map::from_iter([
            ("type".to_string(), Value::String("GuestError".into())),
            ("message".to_string(), Value::String(other.to_string())),
        ]),
    };
    let mut kept = Map::new();
    for (key, value) in fields.into_iter().take(MAX_FIELDS) {
        let value = match (key.as_str(), value) {
            ("type", Value::String(text)) => Value::String(clip_str(&text, NAME_MAX_BYTES).to_string()),
            ("message", Value::String(text)) => Value::String(cut_end(&text, MESSAGE_MAX_BYTES)),
            ("traceback", Value::String(text)) => Value::String(cut_start(&text, TRACEBACK_MAX_BYTES)),
            (_, value) => clip_json(value, FIELD_MAX_BYTES),
        };
        kept.insert(clip_str(&key, NAME_MAX_BYTES).to_string(), value);
    }
    let kept = Value::Object(kept);
    let size = json_size(&kept);
    (kept, size)
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
        let mut error = json!({"type": "ValueError", "message": huge, "traceback": traceback, "line": 7});
        for i in 0..100 {
            error[format!("extra{i}")] = json!(huge);
        }
        let (kept, size) = bound_error(error);
        assert!(size < 40 * 1024, "{size}");
        assert_eq!(kept["type"], "ValueError");
        assert_eq!(kept["line"], 7);
        assert!(kept["message"].as_str().unwrap().ends_with(&format!("(cut at 4096 of {} bytes)", 2 << 20)));
        assert!(kept["traceback"].as_str().unwrap().ends_with("ValueError: the last line"));
        assert_eq!(kept.as_object().unwrap().len(), MAX_FIELDS);
    }

    #[test]
    fn anything_but_an_object_becomes_a_guest_error() {
        let (kept, _) = bound_error(json!(["not", "an", "object"]));
        assert_eq!(kept, json!({"type": "GuestError", "message": "[\"not\",\"an\",\"object\"]"}));
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        let text = "é".repeat(3000);
        assert_eq!(clip_str(&text, 5), "éé");
        assert!(cut_start(&text, 5).ends_with("éé"));
        assert_eq!(clip_name(&"a".repeat(500)).len(), NAME_MAX_BYTES);
    }
}
