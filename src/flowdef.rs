//! What a flow module declares (as the guest's `describe` reports it), and
//! checking a run's input against a flow's declared inputs before it starts.

use crate::spelled::spelled;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One flow of a module.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowInfo {
    pub name: String,
    pub description: Option<String>,
    /// The function's docstring.
    pub doc: Option<String>,
    pub inputs: BTreeMap<String, InputSpec>,
    /// Services the flow may call.
    pub services: Vec<String>,
    /// Line of the flow's `@flow` decorator.
    pub line: Option<u32>,
    /// Names of the `flow.step(...)` blocks written in the flow's function.
    #[serde(default)]
    pub steps: Vec<String>,
    /// `@flow(retries=…)`: how a run that ends badly is run again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// `@flow(concurrency=…)`: how many of its runs may go on at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<ConcurrencyLimit>,
    /// `@flow(durable=True)`: a run the server dies in is resumed from its
    /// journal rather than ended `interrupted`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub durable: bool,
}

/// How a run that ends with one of `on` is run again: as a new run, up to
/// `retries` more times, `delay_s` after it ended, the delay multiplied by
/// `backoff` after each attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub retries: u32,
    pub delay_s: f64,
    pub backoff: f64,
    pub on: Vec<crate::trace::Status>,
}

impl RetryPolicy {
    /// The longest wait before an attempt, however the delay grows.
    pub const MAX_DELAY_S: f64 = 7.0 * 24.0 * 3600.0;
    pub const MAX_RETRIES: u32 = 100;

    /// How long after attempt `attempt` (1-based) ended, which ended with
    /// `status`, the next one starts; None when it is not run again.
    pub fn next_after(&self, attempt: u32, status: crate::trace::Status) -> Option<std::time::Duration> {
        if attempt > self.retries || !self.on.contains(&status) {
            return None;
        }
        let delay = self.delay_s * self.backoff.powi(attempt.saturating_sub(1).min(1000) as i32);
        Some(std::time::Duration::from_secs_f64(delay.clamp(0.0, Self::MAX_DELAY_S)))
    }

    fn check(&self, name: &str) -> Result<(), String> {
        use crate::trace::Status;
        let retryable = [Status::Failed, Status::TimedOut, Status::QuotaExceeded, Status::Cancelled];
        let bad = |what: &str| Err(format!("flow {name}: {what}"));
        if !(1..=Self::MAX_RETRIES).contains(&self.retries) {
            return bad(&format!("retries must be from 1 to {}", Self::MAX_RETRIES));
        }
        if !(0.0..=Self::MAX_DELAY_S).contains(&self.delay_s) {
            return bad(&format!("retry_delay must be from 0 to {} seconds", Self::MAX_DELAY_S));
        }
        if !(1.0..=10.0).contains(&self.backoff) {
            return bad("retry_backoff must be from 1 to 10");
        }
        if self.on.is_empty() || self.on.len() > retryable.len() || self.on.iter().any(|s| !retryable.contains(s)) {
            return bad("retry_on must list some of failed, timed_out, quota_exceeded, cancelled");
        }
        Ok(())
    }
}

/// JSON text with every object's keys sorted.
fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .iter()
                .map(|key| format!("{}:{}", Value::from(key.as_str()), canonical_json(&map[*key])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical_json).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// At most `limit` runs of the flow at once, on every node together; with
/// `key`, that many per value of that input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConcurrencyLimit {
    pub limit: u32,
    #[serde(default)]
    pub key: Option<String>,
}

impl ConcurrencyLimit {
    pub const MAX: u32 = 10_000;
    /// Longer values of the key input are kept as their SHA-256.
    const KEY_BYTES: usize = 200;

    /// The value of the key input in a run's `input`, as the slot table
    /// keeps it: its JSON with object keys sorted, so equal values share a
    /// key whatever their order and `7` is not `"7"` (a value left out is
    /// `null`); longer than 200 bytes, its SHA-256 (which, unquoted, no
    /// value's JSON can equal). "" without a key.
    pub fn slot_key(&self, input: &Map<String, Value>) -> String {
        let Some(field) = &self.key else { return String::new() };
        let text = canonical_json(input.get(field).unwrap_or(&Value::Null));
        if text.len() <= Self::KEY_BYTES {
            return text;
        }
        format!("sha256:{}", crate::text::sha256_hex(&text))
    }
}

spelled! {
    /// The type a flow declares for an input.
    pub enum InputType {
        String = "string",
        Integer = "integer",
        Number = "number",
        Boolean = "boolean",
        Object = "object",
        Array = "array",
        Any = "any",
    }
}

/// One declared input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    #[serde(rename = "type")]
    pub kind: InputType,
    pub required: bool,
    #[serde(default)]
    pub default: Value,
    #[serde(default)]
    pub description: Option<String>,
}

/// Why a module could not be described: a syntax error, an error while
/// loading it, or no flow in it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{}", self.one_line())]
pub struct ModuleError {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    #[serde(default)]
    pub line: Option<u32>,
    #[serde(default)]
    pub column: Option<u32>,
    #[serde(default)]
    pub traceback: Option<String>,
}

impl ModuleError {
    pub fn one_line(&self) -> String {
        match (self.line, self.column) {
            (Some(line), Some(column)) => format!("{} at line {line}, column {column}: {}", self.kind, self.message),
            (Some(line), None) => format!("{} at line {line}: {}", self.kind, self.message),
            _ => format!("{}: {}", self.kind, self.message),
        }
    }
}

/// A module check as the editor (`POST /api/check`) and flows
/// (`flows.describe`) see it: `{"valid": true, "flows"}`, or `{"valid":
/// false, "error": {"type", "message", "line", "column", "traceback"}}` with
/// the message in one line that names its place.
pub fn check_answer(described: Result<Vec<FlowInfo>, ModuleError>) -> Value {
    match described {
        Ok(flows) => serde_json::json!({ "valid": true, "flows": flows }),
        Err(error) => serde_json::json!({
            "valid": false,
            "error": {
                "type": error.kind,
                "message": error.one_line(),
                "line": error.line,
                "column": error.column,
                "traceback": error.traceback,
            },
        }),
    }
}

/// A run's input does not match what the flow declares.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("invalid input for flow '{flow}': {problem}")]
pub struct InputError {
    pub flow: String,
    pub problem: String,
}

/// The most a module may declare, checked on the host whatever the guest
/// reports: a declaration is stored and shown to every user of the library.
pub mod declared_limits {
    pub const NAME_BYTES: usize = 200;
    pub const DESCRIPTION_BYTES: usize = 4096;
    pub const DOC_BYTES: usize = 16 * 1024;
    pub const INPUTS: usize = 100;
    pub const DEFAULT_BYTES: usize = 4096;
    pub const SERVICES: usize = 100;
    pub const STEPS: usize = 1000;
    pub const FLOWS_PER_MODULE: usize = 100;
}

/// Letters, digits and `_`, not starting with a digit, at most 200 bytes.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= declared_limits::NAME_BYTES
        && chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

impl FlowInfo {
    /// Whether what the module declares for this flow is within
    /// `declared_limits`; the first thing that is not, when it is not.
    pub fn check_declaration(&self) -> Result<(), String> {
        use declared_limits as limit;
        let name = crate::text::clip_str(&self.name, 60);
        if !is_identifier(&self.name) {
            return Err(format!("flow name {name:?} must be an identifier of at most {} bytes", limit::NAME_BYTES));
        }
        let too_long = |what: &str, text: &Option<String>, max: usize| match text {
            Some(text) if text.len() > max => Err(format!("flow {name}: its {what} is longer than {max} bytes")),
            _ => Ok(()),
        };
        too_long("description", &self.description, limit::DESCRIPTION_BYTES)?;
        too_long("docstring", &self.doc, limit::DOC_BYTES)?;
        if self.inputs.len() > limit::INPUTS {
            return Err(format!("flow {name}: more than {} inputs", limit::INPUTS));
        }
        for (input, spec) in &self.inputs {
            if !is_identifier(input) {
                return Err(format!("flow {name}: input {:?} must be an identifier", crate::text::clip_str(input, 60)));
            }
            too_long(&format!("input {input}'s description"), &spec.description, limit::DESCRIPTION_BYTES)?;
            if spec.default.to_string().len() > limit::DEFAULT_BYTES {
                return Err(format!(
                    "flow {name}: input {input}'s default is larger than {} bytes",
                    limit::DEFAULT_BYTES
                ));
            }
        }
        if self.services.len() > limit::SERVICES || self.services.iter().any(|s| s != "*" && !is_identifier(s)) {
            return Err(format!("flow {name}: at most {} services, each a service name", limit::SERVICES));
        }
        if self.steps.len() > limit::STEPS || self.steps.iter().any(|step| step.len() > crate::text::NAME_MAX_BYTES) {
            return Err(format!(
                "flow {name}: at most {} steps, each name at most {} bytes",
                limit::STEPS,
                crate::text::NAME_MAX_BYTES
            ));
        }
        if let Some(retry) = &self.retry {
            retry.check(name)?;
        }
        if let Some(concurrency) = &self.concurrency {
            if !(1..=ConcurrencyLimit::MAX).contains(&concurrency.limit) {
                return Err(format!("flow {name}: concurrency must be from 1 to {}", ConcurrencyLimit::MAX));
            }
            if let Some(key) = &concurrency.key
                && !self.inputs.contains_key(key)
            {
                return Err(format!("flow {name}: concurrency_key must name one of its inputs"));
            }
        }
        Ok(())
    }

    /// Check `input` against the declared inputs and return the keyword
    /// arguments to call the flow with: optional inputs left out get their
    /// default (or null).
    pub fn check_input(&self, input: &Value) -> Result<Map<String, Value>, InputError> {
        let fail = |problem: String| InputError { flow: self.name.clone(), problem };
        let given = match input {
            Value::Object(map) => map,
            Value::Null => &Map::new(),
            other => return Err(fail(format!("the input must be a JSON object, not {}", json_type(other)))),
        };
        if let Some(unknown) = given.keys().find(|key| !self.inputs.contains_key(*key)) {
            let declared = if self.inputs.is_empty() {
                "it declares no inputs".to_string()
            } else {
                format!("it declares: {}", self.inputs.keys().cloned().collect::<Vec<_>>().join(", "))
            };
            return Err(fail(format!("unknown input '{unknown}' ({declared})")));
        }
        let mut arguments = Map::new();
        for (name, spec) in &self.inputs {
            match given.get(name) {
                // An explicit null for an optional input means "not given".
                Some(Value::Null) if !spec.required => {
                    arguments.insert(name.clone(), spec.default.clone());
                }
                Some(value) => {
                    if !spec.accepts(value) {
                        return Err(fail(format!(
                            "input '{name}' must be {} {}, not {}",
                            article(spec.kind.as_str()),
                            spec.kind,
                            json_type(value)
                        )));
                    }
                    arguments.insert(name.clone(), value.clone());
                }
                None if spec.required => return Err(fail(format!("missing required input '{name}' ({})", spec.kind))),
                None => {
                    arguments.insert(name.clone(), spec.default.clone());
                }
            }
        }
        Ok(arguments)
    }
}

impl InputSpec {
    fn accepts(&self, value: &Value) -> bool {
        match self.kind {
            InputType::String => value.is_string(),
            InputType::Integer => value.is_i64() || value.is_u64(),
            InputType::Number => value.is_number(),
            InputType::Boolean => value.is_boolean(),
            InputType::Object => value.is_object(),
            InputType::Array => value.is_array(),
            InputType::Any => true,
        }
    }
}

/// What a JSON value is, for messages: "an integer", "a string", "null".
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn greet() -> FlowInfo {
        serde_json::from_value(json!({
            "name": "greet", "description": null, "doc": null, "services": [], "line": 3,
            "inputs": {
                "who": {"type": "string", "required": true, "default": null},
                "times": {"type": "integer", "required": false, "default": 1},
            }
        }))
        .unwrap()
    }

    #[test]
    fn fills_defaults_and_accepts_matching_types() {
        let args = greet().check_input(&json!({"who": "ada"})).unwrap();
        assert_eq!(Value::Object(args), json!({"who": "ada", "times": 1}));
        let args = greet().check_input(&json!({"who": "ada", "times": null})).unwrap();
        assert_eq!(Value::Object(args), json!({"who": "ada", "times": 1}), "null means not given");
    }

    #[test]
    fn names_the_problem() {
        let flow = greet();
        let problem = |input: Value| flow.check_input(&input).unwrap_err().problem;
        assert_eq!(problem(json!({})), "missing required input 'who' (string)");
        assert_eq!(problem(json!({"who": 3})), "input 'who' must be a string, not an integer");
        assert_eq!(problem(json!({"who": "a", "times": 1.5})), "input 'times' must be an integer, not a number");
        assert_eq!(problem(json!({"who": "a", "x": 1})), "unknown input 'x' (it declares: times, who)");
        assert_eq!(problem(json!([1])), "the input must be a JSON object, not an array");
    }

    /// A module that reports a policy its SDK would refuse (the guest is
    /// untrusted) is refused by the host all the same.
    #[test]
    fn the_host_refuses_retry_and_concurrency_policies_out_of_bounds() {
        use crate::trace::Status;
        let with = |retry: Value, concurrency: Value| {
            let mut flow = serde_json::to_value(greet()).unwrap();
            flow["retry"] = retry;
            flow["concurrency"] = concurrency;
            serde_json::from_value::<FlowInfo>(flow).unwrap().check_declaration()
        };
        let retry = |retries: u32, delay: f64, backoff: f64, on: Value| json!({"retries": retries, "delay_s": delay, "backoff": backoff, "on": on});
        assert_eq!(with(retry(3, 1.0, 2.0, json!(["failed", "timed_out"])), json!({"limit": 2, "key": "who"})), Ok(()));
        for (bad, says) in [
            (retry(0, 1.0, 1.0, json!(["failed"])), "retries must be from 1 to 100"),
            (retry(101, 1.0, 1.0, json!(["failed"])), "retries must be from 1 to 100"),
            (retry(1, -1.0, 1.0, json!(["failed"])), "retry_delay"),
            (retry(1, 1e9, 1.0, json!(["failed"])), "retry_delay"),
            (retry(1, 1.0, 0.5, json!(["failed"])), "retry_backoff"),
            (retry(1, 1.0, 1.0, json!(["ok"])), "retry_on"),
            (retry(1, 1.0, 1.0, json!([])), "retry_on"),
        ] {
            assert!(with(bad.clone(), Value::Null).unwrap_err().contains(says), "{bad}");
        }
        assert!(with(Value::Null, json!({"limit": 0})).unwrap_err().contains("concurrency must be"));
        assert!(with(Value::Null, json!({"limit": 1, "key": "nope"})).unwrap_err().contains("concurrency_key"));

        let policy: RetryPolicy = serde_json::from_value(retry(2, 1.5, 2.0, json!(["failed"]))).unwrap();
        let secs = |attempt, status| policy.next_after(attempt, status).map(|delay| delay.as_secs_f64());
        assert_eq!((secs(1, Status::Failed), secs(2, Status::Failed)), (Some(1.5), Some(3.0)));
        assert_eq!((secs(3, Status::Failed), secs(1, Status::TimedOut)), (None, None));
        let limit = ConcurrencyLimit { limit: 1, key: Some("who".into()) };
        let input = |value: Value| json!({ "who": value }).as_object().unwrap().clone();
        assert_eq!(limit.slot_key(&input(json!("ada"))), r#""ada""#);
        assert_ne!(limit.slot_key(&input(json!(7))), limit.slot_key(&input(json!("7"))));
        assert_ne!(limit.slot_key(&input(json!(null))), limit.slot_key(&input(json!("null"))));
        assert_eq!(limit.slot_key(&input(json!({"b": 1, "a": [{"d": 2, "c": 3}]}))), r#"{"a":[{"c":3,"d":2}],"b":1}"#);
        assert_eq!(limit.slot_key(&input(json!({"a": 2, "b": 1}))), limit.slot_key(&input(json!({"b": 1, "a": 2}))));
        assert_eq!(limit.slot_key(&input(json!("a\u{0}b"))), r#""a\u0000b""#, "no NUL reaches the store");
        assert!(limit.slot_key(&input(json!("x".repeat(300)))).starts_with("sha256:"));
    }
}
