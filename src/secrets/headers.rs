//! Headers a service is registered with: templates that may name secrets
//! (`Bearer {{secret:NAME}}`), checked at registration and filled in on
//! each call; and `Redactor`, which takes the filled-in values out of
//! whatever the service answers before the flow, a span or a log sees it.

use crate::sandbox::CallFailure;
use serde_json::Value;
use std::collections::BTreeMap;

/// At most this many headers per service.
pub const MAX_HEADERS: usize = 32;
/// A template is at most this long, before secrets are filled in.
const MAX_TEMPLATE_BYTES: usize = 4096;
/// Headers the host writes itself, or that would change how the request is
/// framed: a registration cannot set them.
const RESERVED: [&str; 11] = [
    "host",
    "content-type",
    "content-length",
    "accept",
    "transfer-encoding",
    "connection",
    "te",
    "trailer",
    "upgrade",
    "keep-alive",
    "expect",
];
/// What a secret's value becomes in a service's answer.
pub const REDACTED: &str = "[redacted]";

/// One piece of a template: text as written, or a secret's name.
#[derive(Debug, PartialEq)]
enum Piece<'a> {
    Text(&'a str),
    Secret(&'a str),
}

fn pieces(template: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut all = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            all.push(Piece::Text(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let name = after
            .strip_prefix("secret:")
            .and_then(|inner| inner.find("}}").map(|end| &inner[..end]))
            .filter(|name| crate::services::is_identifier(name))
            .ok_or_else(|| {
                "'{{' starts a secret reference, written {{secret:NAME}} with NAME an identifier".to_string()
            })?;
        all.push(Piece::Secret(name));
        rest = &after["secret:".len() + name.len() + 2..];
    }
    if !rest.is_empty() {
        all.push(Piece::Text(rest));
    }
    Ok(all)
}

/// Check the headers of a registration; the secrets they name, each once.
pub fn check(headers: &BTreeMap<String, String>) -> Result<Vec<String>, String> {
    if headers.len() > MAX_HEADERS {
        return Err(format!("at most {MAX_HEADERS} headers, not {}", headers.len()));
    }
    let mut secrets: Vec<String> = Vec::new();
    for (name, template) in headers {
        let parsed = axum::http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("'{}' is not a header name", crate::sandbox::clip_str(name, 100)))?;
        if RESERVED.contains(&parsed.as_str()) {
            return Err(format!("header '{name}' is set by hero_logic itself"));
        }
        if template.len() > MAX_TEMPLATE_BYTES
            || template.trim() != template
            || !template.chars().all(|c| c == ' ' || c.is_ascii_graphic())
        {
            return Err(format!(
                "header '{name}': a value is at most {MAX_TEMPLATE_BYTES} bytes of printable ASCII, without spaces around it"
            ));
        }
        for piece in pieces(template).map_err(|e| format!("header '{name}': {e}"))? {
            if let Piece::Secret(secret) = piece
                && !secrets.iter().any(|known| known == secret)
            {
                secrets.push(secret.to_string());
            }
        }
    }
    Ok(secrets)
}

/// `template` with each secret reference replaced by `values[name]`.
pub fn fill(template: &str, values: &BTreeMap<String, String>) -> Result<String, String> {
    let mut filled = String::new();
    for piece in pieces(template)? {
        match piece {
            Piece::Text(text) => filled.push_str(text),
            Piece::Secret(name) => filled.push_str(values.get(name).ok_or_else(|| format!("no secret '{name}'"))?),
        }
    }
    Ok(filled)
}

/// Takes secrets' values out of what a service answers: a service that
/// echoes a header (in an error, or in its result) must not hand the
/// value to the flow, which could print it into a span or a log.
#[derive(Default)]
pub struct Redactor {
    /// Longest first, so a value holding a shorter one is taken out whole.
    values: Vec<String>,
}

impl Redactor {
    pub fn new(values: impl IntoIterator<Item = String>) -> Redactor {
        let mut values: Vec<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Redactor { values }
    }

    pub fn text(&self, text: &str) -> String {
        self.values.iter().fold(text.to_string(), |text, value| text.replace(value.as_str(), REDACTED))
    }

    pub fn value(&self, value: Value) -> Value {
        if self.values.is_empty() {
            return value;
        }
        match value {
            Value::String(text) => Value::String(self.text(&text)),
            Value::Array(items) => Value::Array(items.into_iter().map(|item| self.value(item)).collect()),
            Value::Object(fields) => {
                Value::Object(fields.into_iter().map(|(key, item)| (self.text(&key), self.value(item))).collect())
            }
            other => other,
        }
    }

    pub fn failure(&self, failure: CallFailure) -> CallFailure {
        if self.values.is_empty() {
            return failure;
        }
        match failure {
            CallFailure::Rpc { code, message, data } => {
                CallFailure::Rpc { code, message: self.text(&message), data: self.value(data) }
            }
            CallFailure::Transport(message) => CallFailure::Transport(self.text(&message)),
            CallFailure::InvalidParams(message) => CallFailure::InvalidParams(self.text(&message)),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn templates_name_secrets_and_are_filled_in() {
        let given =
            headers(&[("Authorization", "Bearer {{secret:TOKEN}}"), ("X-Pair", "{{secret:A}}:{{secret:TOKEN}}")]);
        assert_eq!(check(&given).unwrap(), ["TOKEN", "A"]);
        let values = headers(&[("TOKEN", "t0k"), ("A", "a")]);
        assert_eq!(fill("Bearer {{secret:TOKEN}}", &values).unwrap(), "Bearer t0k");
        assert_eq!(fill("{{secret:A}}:{{secret:TOKEN}}!", &values).unwrap(), "a:t0k!");
        assert_eq!(fill("plain", &values).unwrap(), "plain");
    }

    #[test]
    fn malformed_headers_are_refused_with_the_reason() {
        for (name, value, says) in [
            ("Authorization", "Bearer {{secret:}}", "secret reference"),
            ("Authorization", "Bearer {{TOKEN}}", "secret reference"),
            ("Authorization", "Bearer {{secret:TOKEN", "secret reference"),
            ("Authorization", "a\r\nHost: evil", "printable ASCII"),
            ("Bad Name", "x", "not a header name"),
            ("Host", "evil", "set by hero_logic"),
            ("content-length", "0", "set by hero_logic"),
        ] {
            let refused = check(&headers(&[(name, value)])).unwrap_err();
            assert!(refused.contains(says), "{name}: {value:?}: {refused}");
        }
    }

    #[test]
    fn values_are_taken_out_of_answers_and_errors() {
        let redactor = Redactor::new(["s3cret".to_string(), "Bearer s3cret".to_string()]);
        let answer = json!({"echo": ["Bearer s3cret", {"s3cret": "xs3cretx"}], "n": 1});
        assert_eq!(redactor.value(answer), json!({"echo": ["[redacted]", {"[redacted]": "x[redacted]x"}], "n": 1}));
        let failure = CallFailure::Rpc { code: 1, message: "bad token s3cret".into(), data: json!({"got": "s3cret"}) };
        assert_eq!(
            redactor.failure(failure),
            CallFailure::Rpc { code: 1, message: "bad token [redacted]".into(), data: json!({"got": "[redacted]"}) }
        );
    }
}
