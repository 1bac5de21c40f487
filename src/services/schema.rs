//! The part of JSON Schema that parameter checks need: type, enum, const,
//! numeric and length bounds, array items, object properties, required and
//! additionalProperties. Keywords outside it are ignored, never guessed at.

use serde_json::Value;

/// Check `value` against `schema`; the error names where it failed (`at`).
pub fn check(schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let Value::Object(schema) = schema else { return Ok(()) };
    if let Some(kind) = schema.get("type") {
        let kinds: Vec<&str> = match kind {
            Value::String(k) => vec![k.as_str()],
            Value::Array(ks) => ks.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !kinds.is_empty() && !kinds.iter().any(|k| is_type(value, k)) {
            return Err(format!("{at} must be {}, not {}", kinds.join(" or "), type_name(value)));
        }
    }
    if let Some(Value::Array(options)) = schema.get("enum")
        && !options.contains(value)
    {
        let listed: Vec<String> = options.iter().map(Value::to_string).collect();
        return Err(format!("{at} must be one of {}, not {value}", listed.join(", ")));
    }
    if let Some(constant) = schema.get("const")
        && constant != value
    {
        return Err(format!("{at} must be {constant}"));
    }
    if let Some(number) = value.as_f64() {
        let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
        if let Some(min) = bound("minimum").filter(|min| number < *min) {
            return Err(format!("{at} must be at least {min}, not {value}"));
        }
        if let Some(max) = bound("maximum").filter(|max| number > *max) {
            return Err(format!("{at} must be at most {max}, not {value}"));
        }
        if let Some(min) = bound("exclusiveMinimum").filter(|min| number <= *min) {
            return Err(format!("{at} must be greater than {min}, not {value}"));
        }
        if let Some(max) = bound("exclusiveMaximum").filter(|max| number >= *max) {
            return Err(format!("{at} must be less than {max}, not {value}"));
        }
    }
    let size = |key: &str| schema.get(key).and_then(Value::as_u64);
    if let Value::String(text) = value {
        let length = text.chars().count() as u64;
        if let Some(min) = size("minLength").filter(|min| length < *min) {
            return Err(format!("{at} must be at least {min} characters long"));
        }
        if let Some(max) = size("maxLength").filter(|max| length > *max) {
            return Err(format!("{at} must be at most {max} characters long"));
        }
    }
    if let Value::Array(items) = value {
        if let Some(min) = size("minItems").filter(|min| (items.len() as u64) < *min) {
            return Err(format!("{at} must have at least {min} items"));
        }
        if let Some(max) = size("maxItems").filter(|max| (items.len() as u64) > *max) {
            return Err(format!("{at} must have at most {max} items"));
        }
        if let Some(item_schema) = schema.get("items") {
            for (index, item) in items.iter().enumerate() {
                check(item_schema, item, &format!("{at}[{index}]"))?;
            }
        }
    }
    if let Value::Object(fields) = value {
        let properties = schema.get("properties").and_then(Value::as_object);
        if let Some(Value::Array(required)) = schema.get("required") {
            for name in required.iter().filter_map(Value::as_str) {
                if !fields.contains_key(name) {
                    return Err(format!("{at} is missing '{name}'"));
                }
            }
        }
        for (name, field) in fields {
            match properties.and_then(|p| p.get(name)) {
                Some(field_schema) => check(field_schema, field, &format!("{at}.{name}"))?,
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return Err(format!("{at} has no field '{name}'"));
                }
                None => {}
            }
        }
    }
    Ok(())
}

fn is_type(value: &Value, kind: &str) -> bool {
    match kind {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "null" => value.is_null(),
        _ => true,
    }
}

fn type_name(value: &Value) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checks_the_keywords_it_knows() {
        let schema = json!({"type": "object", "required": ["city"], "additionalProperties": false,
            "properties": {"city": {"type": "string", "enum": ["Ghent", "Oslo"]}, "days": {"type": "integer", "minimum": 1, "maximum": 7},
                           "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}}}});
        assert_eq!(check(&schema, &json!({"city": "Ghent", "days": 3, "tags": ["a"]}), "params"), Ok(()));
        let fail = |value: Value| check(&schema, &value, "params").unwrap_err();
        assert_eq!(fail(json!({"days": 1})), "params is missing 'city'");
        assert_eq!(fail(json!({"city": "Rome"})), r#"params.city must be one of "Ghent", "Oslo", not "Rome""#);
        assert_eq!(fail(json!({"city": "Oslo", "days": 9})), "params.days must be at most 7, not 9");
        assert_eq!(fail(json!({"city": "Oslo", "days": "2"})), "params.days must be integer, not a string");
        assert_eq!(fail(json!({"city": "Oslo", "tags": ["long"]})), "params.tags[0] must be at most 3 characters long");
        assert_eq!(fail(json!({"city": "Oslo", "x": 1})), "params has no field 'x'");
    }
}
