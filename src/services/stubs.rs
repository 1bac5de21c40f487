//! Python stub files (`.pyi`) for the SDK and every service, so an editor
//! can complete `services.weather.forecast(city=...)` and show its docs.

use super::{ServiceInfo, is_identifier};
use serde_json::Value;
use std::fmt::Write;

/// The SDK's part of the stubs, kept beside the SDK (`runtime/`); a test
/// checks it names every public class the SDK defines.
const SDK: &str = include_str!("../../runtime/sdk.pyi");

/// The exceptions `services` carries as attributes (`services.RpcError`),
/// as the SDK's `_Services` does.
const SERVICE_EXCEPTIONS: [&str; 8] = [
    "RpcError",
    "ServiceError",
    "ServiceUnavailable",
    "ServiceTimeout",
    "UnknownService",
    "UnknownMethod",
    "PermissionDenied",
    "InvalidParams",
];

/// `hero_logic/__init__.pyi` for these services.
pub fn python_stubs(services: &[ServiceInfo]) -> String {
    let mut out = String::from(SDK);
    for service in services.iter().filter(|s| is_identifier(&s.name)) {
        let _ = writeln!(out, "\nclass _Service_{}:", service.name);
        let summary =
            service.doc.description.clone().or(service.doc.title.clone()).unwrap_or_else(|| service.name.clone());
        let _ = writeln!(out, "    \"\"\"{}\"\"\"", docstring(&summary));
        for method in service.doc.methods.iter().filter(|m| is_identifier(&m.name)) {
            let mut params = Vec::new();
            for param in method.params.iter().filter(|p| is_identifier(&p.name)) {
                let kind = python_type(&param.schema);
                params.push(if param.required {
                    format!("{}: {kind}", param.name)
                } else {
                    format!("{}: {kind} = ...", param.name)
                });
            }
            let star = if params.is_empty() { String::new() } else { format!(", *, {}", params.join(", ")) };
            let result = method.result.as_ref().map_or("Any".to_string(), python_type);
            let mut doc = method.summary.clone().unwrap_or_default();
            for param in &method.params {
                if let Some(description) = &param.description {
                    let _ = write!(doc, "\n\n{}: {description}", param.name);
                }
            }
            let _ = writeln!(out, "    def {}(self{star}) -> {result}:", method.name);
            let _ = writeln!(out, "        \"\"\"{}\"\"\"", docstring(&doc));
            let _ = writeln!(out, "    def request(self{star}) -> Request: ...");
        }
    }
    out.push_str("\nclass _Services:\n");
    for exception in SERVICE_EXCEPTIONS {
        let _ = writeln!(out, "    {exception} = {exception}");
    }
    for service in services.iter().filter(|s| is_identifier(&s.name)) {
        let _ = writeln!(out, "    {}: _Service_{}", service.name, service.name);
    }
    out.push_str("    def gather(self, *requests: Request, return_exceptions: bool = False) -> list[Any]:\n        \"\"\"Make several calls at once; results in order.\"\"\"\n\nservices: _Services\n");
    out
}

fn docstring(text: &str) -> String {
    text.replace('\\', "\\\\").replace("\"\"\"", "\\\"\\\"\\\"")
}

fn python_type(schema: &Value) -> String {
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.is_empty()
        && options.iter().all(Value::is_string)
    {
        let literals: Vec<String> = options.iter().map(|o| o.to_string()).collect();
        return format!("Literal[{}]", literals.join(", "));
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => "str".into(),
        Some("integer") => "int".into(),
        Some("number") => "float".into(),
        Some("boolean") => "bool".into(),
        Some("object") => "dict[str, Any]".into(),
        Some("array") => match schema.get("items") {
            Some(items) => format!("list[{}]", python_type(items)),
            None => "list[Any]".into(),
        },
        Some("null") => "None".into(),
        _ => "Any".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SDK's sources, as the guest is built from them.
    const SDK_SOURCES: [&str; 2] = [
        include_str!("../../runtime/guest/hero_logic/_services.py"),
        include_str!("../../runtime/guest/hero_logic/_flow.py"),
    ];

    #[test]
    fn the_stubs_name_every_public_class_and_exception_the_sdk_has() {
        for source in SDK_SOURCES {
            for line in source.lines() {
                let Some(rest) = line.strip_prefix("class ") else { continue };
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.starts_with('_') {
                    assert!(SDK.contains(&format!("class {name}")), "runtime/sdk.pyi lacks class {name}");
                }
            }
        }
        let services = SDK_SOURCES[0];
        let aliases: Vec<&str> = services
            .lines()
            .filter_map(|line| line.trim().split_once(" = ").filter(|(a, b)| a == b).map(|(a, _)| a))
            .collect();
        assert_eq!(aliases, SERVICE_EXCEPTIONS, "services.<Exception> as the SDK has them");
    }
}
