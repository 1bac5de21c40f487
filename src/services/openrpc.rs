//! A service's OpenRPC document, read into what the host needs: its methods,
//! their named parameters with schemas, and what they return. Parameters are
//! checked against it before any request leaves the host.

use super::schema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceDoc {
    pub title: Option<String>,
    pub description: Option<String>,
    pub methods: Vec<MethodDoc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodDoc {
    pub name: String,
    pub summary: Option<String>,
    pub params: Vec<ParamDoc>,
    pub result: Option<Value>,
    /// The document marks the method `"x-safe": true`: it only reads, so a
    /// health check (`service_check`) may call it.
    #[serde(default)]
    pub safe: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamDoc {
    pub name: String,
    pub required: bool,
    pub description: Option<String>,
    pub schema: Value,
}

impl ServiceDoc {
    /// Read an OpenRPC document (`{"openrpc", "info", "methods": [...]}`).
    pub fn parse(document: &Value) -> Result<ServiceDoc, String> {
        let methods =
            document.get("methods").and_then(Value::as_array).ok_or("an OpenRPC document needs a \"methods\" array")?;
        let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_string);
        let mut parsed = Vec::new();
        for method in methods {
            let name = text(method.get("name")).ok_or("every method needs a \"name\"")?;
            if method.get("paramStructure").and_then(Value::as_str) == Some("by-position") {
                return Err(format!("method '{name}' takes parameters by position; hero_logic calls by name"));
            }
            let mut params = Vec::new();
            for param in method.get("params").and_then(Value::as_array).into_iter().flatten() {
                let param_name = text(param.get("name")).ok_or(format!("a parameter of '{name}' has no name"))?;
                if param.get("$ref").is_some() {
                    return Err(format!("method '{name}': parameter references ($ref) are not supported; inline them"));
                }
                params.push(ParamDoc {
                    name: param_name,
                    required: param.get("required").and_then(Value::as_bool).unwrap_or(false),
                    description: text(param.get("description")),
                    schema: param.get("schema").cloned().unwrap_or(Value::Object(Map::new())),
                });
            }
            parsed.push(MethodDoc {
                name,
                summary: text(method.get("summary")).or_else(|| text(method.get("description"))),
                params,
                result: method.get("result").and_then(|r| r.get("schema")).cloned(),
                safe: method.get("x-safe").and_then(Value::as_bool).unwrap_or(false),
            });
        }
        let info = document.get("info");
        Ok(ServiceDoc {
            title: text(info.and_then(|i| i.get("title"))),
            description: text(info.and_then(|i| i.get("description"))),
            methods: parsed,
        })
    }

    pub fn method(&self, name: &str) -> Option<&MethodDoc> {
        self.methods.iter().find(|m| m.name == name)
    }

    pub fn method_names(&self) -> Vec<String> {
        self.methods.iter().map(|m| m.name.clone()).collect()
    }
}

impl MethodDoc {
    /// Check named parameters against the method's parameters and schemas.
    pub fn check_params(&self, params: &Map<String, Value>) -> Result<(), String> {
        for name in params.keys() {
            if !self.params.iter().any(|p| &p.name == name) {
                let known: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
                let known = if known.is_empty() {
                    "it takes none".to_string()
                } else {
                    format!("it takes: {}", known.join(", "))
                };
                return Err(format!("unknown parameter '{name}' ({known})"));
            }
        }
        for param in &self.params {
            match params.get(&param.name) {
                Some(value) => schema::check(&param.schema, value, &param.name)?,
                None if param.required => return Err(format!("missing required parameter '{}'", param.name)),
                None => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_methods_and_checks_params_by_name() {
        let doc = ServiceDoc::parse(&json!({"openrpc": "1.2.6", "info": {"title": "w"}, "methods": [
            {"name": "forecast", "params": [
                {"name": "city", "required": true, "schema": {"type": "string"}},
                {"name": "days", "schema": {"type": "integer", "minimum": 1}}]}]}))
        .unwrap();
        let forecast = doc.method("forecast").unwrap();
        let params = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(forecast.check_params(&params(json!({"city": "Ghent"}))), Ok(()));
        assert_eq!(forecast.check_params(&params(json!({}))), Err("missing required parameter 'city'".into()));
        assert_eq!(
            forecast.check_params(&params(json!({"city": "G", "day": 1}))),
            Err("unknown parameter 'day' (it takes: city, days)".into())
        );
        assert_eq!(
            forecast.check_params(&params(json!({"city": "G", "days": 0}))),
            Err("days must be at least 1, not 0".into())
        );
        assert!(ServiceDoc::parse(&json!({"methods": "x"})).is_err());
    }

    #[test]
    fn a_method_is_safe_only_when_its_document_says_so() {
        let doc =
            ServiceDoc::parse(&json!({"methods": [{"name": "cities", "x-safe": true}, {"name": "delete"}]})).unwrap();
        assert_eq!(doc.methods.iter().map(|m| m.safe).collect::<Vec<_>>(), [true, false]);
        // Documents stored before the flag existed still read.
        let stored: MethodDoc =
            serde_json::from_value(json!({"name": "x", "summary": null, "params": [], "result": null})).unwrap();
        assert!(!stored.safe);
    }
}
