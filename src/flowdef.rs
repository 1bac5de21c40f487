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
        let name = crate::sandbox::clip_str(&self.name, 60);
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
                return Err(format!(
                    "flow {name}: input {:?} must be an identifier",
                    crate::sandbox::clip_str(input, 60)
                ));
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
        if self.steps.len() > limit::STEPS || self.steps.iter().any(|step| step.len() > crate::sandbox::NAME_MAX_BYTES)
        {
            return Err(format!(
                "flow {name}: at most {} steps, each name at most {} bytes",
                limit::STEPS,
                crate::sandbox::NAME_MAX_BYTES
            ));
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
}
