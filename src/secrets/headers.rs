//! Headers a service is registered with: templates that may name secrets
//! (`Bearer {{secret:NAME}}`), checked at registration and filled in on
//! each call; and `Redactor`, which takes the filled-in values out of
//! whatever the service answers before the flow, a span or a log sees it.

use crate::sandbox::CallFailure;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

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
            .filter(|name| crate::text::is_identifier(name))
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
///
/// Text (strings, object keys, messages) loses every occurrence of each
/// value. Digits get one more rule, since a service may read a digits-only
/// token as a number and answer it back as one, whole or cut to fit an
/// integer: a run of digits that shares `MIN_SECRET_DIGITS` consecutive
/// digits with a run of digits in a value is taken out too, in text and in
/// numbers alike. A number that holds a value, or such a part of one,
/// becomes the string `[redacted]`; an error code, `REDACTED_CODE`.
#[derive(Default)]
pub struct Redactor {
    /// Longest first, so a value holding a shorter one is taken out whole.
    values: Vec<String>,
    /// Every `MIN_SECRET_DIGITS` consecutive digits of the values' runs of
    /// digits at least that long.
    digit_windows: HashSet<String>,
}

/// Consecutive digits of a secret that are redacted wherever they appear
/// in a run of digits: fewer say too little of a value to matter (a
/// million guesses are left for each part withheld), and would take out
/// ordinary numbers too often.
pub const MIN_SECRET_DIGITS: usize = 6;
/// The code an error gets when its own code held a secret's digits (a
/// JSON-RPC "server error").
pub const REDACTED_CODE: i64 = -32000;

impl Redactor {
    pub fn new(values: impl IntoIterator<Item = String>) -> Redactor {
        let mut values: Vec<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        let mut digit_windows = HashSet::new();
        for value in &values {
            for run in digit_runs(value).filter(|run| run.len() >= MIN_SECRET_DIGITS) {
                digit_windows.extend(run.as_bytes().windows(MIN_SECRET_DIGITS).map(|w| ascii(w).to_string()));
            }
        }
        Redactor { values, digit_windows }
    }

    pub fn text(&self, text: &str) -> String {
        let whole = self.values.iter().fold(text.to_string(), |text, value| text.replace(value.as_str(), REDACTED));
        if self.digit_windows.is_empty() {
            return whole;
        }
        let mut kept = String::with_capacity(whole.len());
        let mut rest = whole.as_str();
        while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
            let digits = rest[start..].find(|c: char| !c.is_ascii_digit()).map_or(rest.len(), |end| start + end);
            kept.push_str(&rest[..start]);
            let run = &rest[start..digits];
            kept.push_str(if self.holds_secret_digits(run) { REDACTED } else { run });
            rest = &rest[digits..];
        }
        kept.push_str(rest);
        kept
    }

    /// Whether a run of digits shares `MIN_SECRET_DIGITS` of a value's.
    fn holds_secret_digits(&self, run: &str) -> bool {
        run.as_bytes().windows(MIN_SECRET_DIGITS).any(|window| self.digit_windows.contains(ascii(window)))
    }

    /// Whether a number's text holds a value, or a part of one's digits.
    fn number_holds_secret(&self, number: &str) -> bool {
        self.values.iter().any(|value| number.contains(value.as_str()))
            || digit_runs(number).any(|run| self.holds_secret_digits(run))
    }

    pub fn value(&self, value: Value) -> Value {
        if self.values.is_empty() {
            return value;
        }
        match value {
            Value::String(text) => Value::String(self.text(&text)),
            Value::Number(number) if self.number_holds_secret(&number.to_string()) => Value::String(REDACTED.into()),
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
            CallFailure::Rpc { code, message, data } => CallFailure::Rpc {
                code: if self.number_holds_secret(&code.to_string()) { REDACTED_CODE } else { code },
                message: self.text(&message),
                data: self.value(data),
            },
            CallFailure::Transport(message) => CallFailure::Transport(self.text(&message)),
            CallFailure::InvalidParams(message) => CallFailure::InvalidParams(self.text(&message)),
            other => other,
        }
    }
}

/// The maximal runs of ASCII digits in `text`.
fn digit_runs(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_ascii_digit()).filter(|run| !run.is_empty())
}

/// Digits sliced from a `str`: ASCII, so still text.
fn ascii(digits: &[u8]) -> &str {
    std::str::from_utf8(digits).expect("a run of ASCII digits is UTF-8")
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

    #[test]
    fn a_digits_only_value_is_taken_out_of_numbers_and_codes_whole_or_in_part() {
        let redactor = Redactor::new(["987654321987".to_string(), "Bearer t0k".to_string()]);
        let answer = json!({
            "as_number": 987654321987u64,
            "as_float": 987654321987.0,
            "negative": -987654321987i64,
            "first_nine": 987654321,
            "last_six": 321987,
            "in_text": "account 987654321 and 54321987",
            "987654321987": [1, 2024, 123456, 98765],
        });
        assert_eq!(
            redactor.value(answer),
            json!({
                "as_number": "[redacted]",
                "as_float": "[redacted]",
                "negative": "[redacted]",
                "first_nine": "[redacted]",
                "last_six": "[redacted]",
                "in_text": "account [redacted] and [redacted]",
                "[redacted]": [1, 2024, 123456, 98765],
            }),
            "parts of five digits or fewer, and digits the value does not hold, are kept"
        );
        let failure =
            CallFailure::Rpc { code: 987654321, message: "no 987654321987".into(), data: json!(987654321987u64) };
        assert_eq!(
            redactor.failure(failure),
            CallFailure::Rpc { code: REDACTED_CODE, message: "no [redacted]".into(), data: json!("[redacted]") }
        );
        let ordinary = CallFailure::Rpc { code: -32001, message: "m".into(), data: json!(-32001) };
        assert_eq!(redactor.failure(ordinary.clone()), ordinary, "codes without its digits are kept");
    }

    #[test]
    fn short_runs_of_digits_in_a_value_are_not_secrets_of_their_own() {
        // A token's short digit runs (here 2024 and 7) say little alone; only the whole value goes.
        let redactor = Redactor::new(["tok-2024-7abc".to_string()]);
        let answer = json!({"year": 2024, "n": 7, "text": "2024 tok-2024-7abc"});
        assert_eq!(redactor.value(answer), json!({"year": 2024, "n": 7, "text": "2024 [redacted]"}));
    }
}
