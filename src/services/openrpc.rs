//! A service's OpenRPC document, read into what the host needs: its methods,
//! their named parameters with schemas, and what they return. Parameters are
//! checked against it (`CheckedDoc`, its schemas compiled once) before any
//! request leaves the host.

use super::schema;
use jsonschema::Validator;
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
                // A parameter may be a reference to one of the document's
                // own (`#/components/contentDescriptors/...`).
                let param = match param.get("$ref") {
                    None => param,
                    Some(reference) => reference
                        .as_str()
                        .and_then(|reference| document.pointer(reference.strip_prefix('#')?))
                        .ok_or(format!("method '{name}': the parameter {reference} is not in the document"))?,
                };
                let param_name = text(param.get("name")).ok_or(format!("a parameter of '{name}' has no name"))?;
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

/// A document read, with every parameter's schema compiled: what the
/// registry keeps per service, so that a call compiles nothing.
pub struct CheckedDoc {
    pub doc: ServiceDoc,
    /// Per method of `doc`, in its order, each parameter's validator.
    validators: Vec<Vec<Validator>>,
}

impl CheckedDoc {
    /// Read `document` and compile its parameter schemas, `$ref`s resolved
    /// in its `components`. A schema that cannot be compiled is refused,
    /// named by method and parameter.
    pub fn new(document: &Value) -> Result<CheckedDoc, String> {
        let doc = ServiceDoc::parse(document)?;
        let components = document.get("components");
        let validators = doc
            .methods
            .iter()
            .map(|method| {
                method
                    .params
                    .iter()
                    .map(|param| {
                        schema::compile(&param.schema, components).map_err(|e| {
                            format!(
                                "method '{}', parameter '{}': the schema cannot be used: {e}",
                                method.name, param.name
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CheckedDoc { doc, validators })
    }

    /// Check named parameters against `method`'s parameters and schemas.
    pub fn check_params(&self, method: &str, params: &Map<String, Value>) -> Result<(), String> {
        let index = self.doc.methods.iter().position(|m| m.name == method).ok_or(format!("no method '{method}'"))?;
        let method = &self.doc.methods[index];
        for name in params.keys() {
            if !method.params.iter().any(|p| &p.name == name) {
                let known: Vec<&str> = method.params.iter().map(|p| p.name.as_str()).collect();
                let known = if known.is_empty() {
                    "it takes none".to_string()
                } else {
                    format!("it takes: {}", known.join(", "))
                };
                return Err(format!("unknown parameter '{name}' ({known})"));
            }
        }
        for (param, validator) in method.params.iter().zip(&self.validators[index]) {
            match params.get(&param.name) {
                Some(value) => schema::check(validator, value, &param.name)?,
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
        let doc = CheckedDoc::new(&json!({"openrpc": "1.2.6", "info": {"title": "w"}, "methods": [
            {"name": "forecast", "params": [
                {"name": "city", "required": true, "schema": {"type": "string"}},
                {"name": "days", "schema": {"type": "integer", "minimum": 1}}]}]}))
        .unwrap();
        let check = |v: Value| doc.check_params("forecast", v.as_object().unwrap());
        assert_eq!(check(json!({"city": "Ghent"})), Ok(()));
        assert_eq!(check(json!({})), Err("missing required parameter 'city'".into()));
        assert_eq!(check(json!({"city": "G", "day": 1})), Err("unknown parameter 'day' (it takes: city, days)".into()));
        assert_eq!(check(json!({"city": "G", "days": 0})), Err("days must be at least 1, not 0".into()));
        assert!(ServiceDoc::parse(&json!({"methods": "x"})).is_err());
    }

    /// The usual OpenRPC style: schemas and whole parameters by reference.
    const SHOP: &str = r##"{"openrpc": "1.2.6", "info": {"title": "shop", "version": "1"},
        "methods": [{"name": "order", "params": [
            {"name": "item", "required": true, "schema": {"$ref": "#/components/schemas/Item"}},
            {"$ref": "#/components/contentDescriptors/Payment"}]}],
        "components": {
            "contentDescriptors": {"Payment": {"name": "payment", "schema": {"oneOf": [
                {"type": "object", "required": ["card"], "properties": {"card": {"type": "string", "pattern": "^[0-9]{16}$"}}},
                {"type": "object", "required": ["iban"], "properties": {"iban": {"type": "string", "minLength": 15}}}]}}},
            "schemas": {"Item": {"type": "object", "required": ["sku"], "additionalProperties": false,
                "properties": {"sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]+$"}, "count": {"type": "integer", "minimum": 1}}}}}}"##;

    #[test]
    fn refs_one_of_and_pattern_are_checked() {
        let doc = CheckedDoc::new(&serde_json::from_str(SHOP).unwrap()).unwrap();
        assert_eq!(doc.doc.methods[0].params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["item", "payment"]);
        let check = |v: Value| doc.check_params("order", v.as_object().unwrap());
        assert_eq!(
            check(json!({"item": {"sku": "ABC-1", "count": 2}, "payment": {"card": "4111111111111111"}})),
            Ok(())
        );
        assert_eq!(check(json!({"item": {"sku": "ABC-1"}, "payment": {"iban": "BE68539007547034"}})), Ok(()));
        assert_eq!(
            check(json!({"item": {"sku": "ABC-1", "count": 0}})),
            Err("item.count must be at least 1, not 0".into())
        );
        assert_eq!(
            check(json!({"item": {"sku": "abc"}})),
            Err(r#"item.sku: "abc" does not match "^[A-Z]{3}-[0-9]+$""#.into())
        );
        assert_eq!(check(json!({"item": {"sku": "ABC-1", "colour": "red"}})), Err("item has no field 'colour'".into()));
        let neither = check(json!({"item": {"sku": "ABC-1"}, "payment": {"card": "12"}})).unwrap_err();
        assert!(
            neither
                .starts_with(r#"payment: {"card":"12"} is not valid under any of the schemas listed in the 'oneOf'"#),
            "{neither}"
        );
    }

    #[test]
    fn a_schema_that_cannot_be_compiled_is_refused_by_method_and_parameter() {
        let mut document: Value = serde_json::from_str(SHOP).unwrap();
        document["components"]["schemas"]["Item"]["properties"]["sku"]["pattern"] = json!("(");
        let refused = CheckedDoc::new(&document).err().unwrap();
        assert!(refused.starts_with("method 'order', parameter 'item': the schema cannot be used: "), "{refused}");
        let dangling = json!({"methods": [{"name": "m", "params": [{"name": "p", "schema": {"$ref": "#/components/schemas/Gone"}}]}]});
        let refused = CheckedDoc::new(&dangling).err().unwrap();
        assert!(refused.starts_with("method 'm', parameter 'p': the schema cannot be used: "), "{refused}");
        let missing = json!({"methods": [{"name": "m", "params": [{"$ref": "#/components/contentDescriptors/Gone"}]}]});
        assert_eq!(
            CheckedDoc::new(&missing).err().unwrap(),
            r##"method 'm': the parameter "#/components/contentDescriptors/Gone" is not in the document"##
        );
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
