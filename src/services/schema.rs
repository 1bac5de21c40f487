//! Parameter checks: JSON Schema (draft 7, the one OpenRPC names) through
//! the `jsonschema` crate, every keyword it knows, with `$ref`s resolved in
//! the document's `components` and nowhere else (nothing is fetched).
//! A schema is compiled once; errors name the parameter, where in it, and
//! the rule it broke.

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use jsonschema::{Draft, ValidationError, Validator};
use serde_json::{Value, json};

/// Longest message of the crate's own words kept for a broken rule: it
/// quotes the value, which may be large.
const MAX_RULE_MESSAGE: usize = 500;

/// Compile `schema`; a `$ref` to `#/components/...` points into
/// `components`, the document's. The error says why it cannot be used.
pub fn compile(schema: &Value, components: Option<&Value>) -> Result<Validator, String> {
    // The schema sits under a root that carries the document's components,
    // so `#` means the document, as OpenRPC has it.
    let mut root = json!({"allOf": [schema]});
    if let Some(components) = components {
        root["components"] = components.clone();
    }
    jsonschema::options()
        .with_draft(Draft::Draft7)
        .should_validate_formats(true)
        .build(&root)
        .map_err(|e| e.to_string())
}

/// Check `value`; the error names where it failed, from `at` (the
/// parameter's name) down.
pub fn check(validator: &Validator, value: &Value, at: &str) -> Result<(), String> {
    validator.validate(value).map_err(|error| describe(&error, at))
}

fn describe(error: &ValidationError<'_>, param: &str) -> String {
    let mut at = param.to_string();
    for segment in error.instance_path().segments() {
        match segment {
            LocationSegment::Property(name) => {
                at.push('.');
                at.push_str(&name);
            }
            LocationSegment::Index(index) => at.push_str(&format!("[{index}]")),
        }
    }
    let value = error.instance();
    match error.kind() {
        ValidationErrorKind::Type { kind } => {
            let kinds: Vec<String> = match kind {
                TypeKind::Single(kind) => vec![kind.to_string()],
                TypeKind::Multiple(kinds) => kinds.iter().map(|kind| kind.to_string()).collect(),
            };
            format!("{at} must be {}, not {}", kinds.join(" or "), crate::flowdef::json_type(value))
        }
        ValidationErrorKind::Enum { options } => {
            let listed: Vec<String> = options.as_array().into_iter().flatten().map(Value::to_string).collect();
            format!("{at} must be one of {}, not {value}", listed.join(", "))
        }
        ValidationErrorKind::Constant { expected_value } => format!("{at} must be {expected_value}"),
        ValidationErrorKind::Minimum { limit } => format!("{at} must be at least {limit}, not {value}"),
        ValidationErrorKind::Maximum { limit } => format!("{at} must be at most {limit}, not {value}"),
        ValidationErrorKind::ExclusiveMinimum { limit } => format!("{at} must be greater than {limit}, not {value}"),
        ValidationErrorKind::ExclusiveMaximum { limit } => format!("{at} must be less than {limit}, not {value}"),
        ValidationErrorKind::MinLength { limit } => format!("{at} must be at least {limit} characters long"),
        ValidationErrorKind::MaxLength { limit } => format!("{at} must be at most {limit} characters long"),
        ValidationErrorKind::MinItems { limit } => format!("{at} must have at least {limit} items"),
        ValidationErrorKind::MaxItems { limit } => format!("{at} must have at most {limit} items"),
        ValidationErrorKind::Required { property } => {
            format!("{at} is missing '{}'", property.as_str().unwrap_or_default())
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            format!("{at} has no field '{}'", unexpected.join("', '"))
        }
        // Every other rule (pattern, format, oneOf, ...) in the crate's words.
        _ => format!("{at}: {}", crate::sandbox::clip_str(&error.to_string(), MAX_RULE_MESSAGE)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checker(schema: Value, components: Option<Value>) -> impl Fn(Value) -> Result<(), String> {
        let validator = compile(&schema, components.as_ref()).unwrap();
        move |value| check(&validator, &value, "params")
    }

    #[test]
    fn checks_types_bounds_and_objects_in_the_same_words_as_before() {
        let schema = json!({"type": "object", "required": ["city"], "additionalProperties": false,
            "properties": {"city": {"type": "string", "enum": ["Ghent", "Oslo"]}, "days": {"type": "integer", "minimum": 1, "maximum": 7},
                           "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}}}});
        let check = checker(schema, None);
        assert_eq!(check(json!({"city": "Ghent", "days": 3, "tags": ["a"]})), Ok(()));
        let fail = |value: Value| check(value).unwrap_err();
        assert_eq!(fail(json!({"days": 1})), "params is missing 'city'");
        assert_eq!(fail(json!({"city": "Rome"})), r#"params.city must be one of "Ghent", "Oslo", not "Rome""#);
        assert_eq!(fail(json!({"city": "Oslo", "days": 9})), "params.days must be at most 7, not 9");
        assert_eq!(fail(json!({"city": "Oslo", "days": "2"})), "params.days must be integer, not a string");
        assert_eq!(fail(json!({"city": "Oslo", "tags": ["long"]})), "params.tags[0] must be at most 3 characters long");
        assert_eq!(fail(json!({"city": "Oslo", "x": 1})), "params has no field 'x'");
        assert_eq!(check(json!({"city": "Oslo", "days": 2.0})), Ok(()), "2.0 is an integer");
    }

    #[test]
    fn refs_point_into_the_documents_components() {
        let components = json!({"schemas": {
            "Item": {"type": "object", "required": ["sku"], "properties": {
                "sku": {"$ref": "#/components/schemas/Sku"}, "count": {"type": "integer", "minimum": 1}}},
            "Sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]+$"}}});
        let check = checker(json!({"$ref": "#/components/schemas/Item"}), Some(components.clone()));
        assert_eq!(check(json!({"sku": "ABC-12", "count": 2})), Ok(()));
        assert_eq!(check(json!({"sku": "ABC-12", "count": 0})), Err("params.count must be at least 1, not 0".into()));
        assert_eq!(check(json!({"count": 1})), Err("params is missing 'sku'".into()));
        assert_eq!(check(json!({"sku": "abc"})), Err(r#"params.sku: "abc" does not match "^[A-Z]{3}-[0-9]+$""#.into()));
        // A reference to what the document does not hold cannot be compiled.
        assert!(compile(&json!({"$ref": "#/components/schemas/Missing"}), Some(&components)).is_err());
        assert!(compile(&json!({"$ref": "#/components/schemas/Item"}), None).is_err());
    }

    #[test]
    fn one_of_format_and_const_are_enforced() {
        let one_of = checker(json!({"oneOf": [{"type": "integer"}, {"type": "string", "minLength": 2}]}), None);
        assert_eq!(one_of(json!(3)), Ok(()));
        assert_eq!(one_of(json!("ab")), Ok(()));
        let refused = one_of(json!("a")).unwrap_err();
        assert!(
            refused.starts_with(r#"params: "a" is not valid under any of the schemas listed in the 'oneOf'"#),
            "{refused}"
        );
        let email = checker(json!({"type": "string", "format": "email"}), None);
        assert_eq!(email(json!("a@example.com")), Ok(()));
        assert_eq!(email(json!("nobody")), Err(r#"params: "nobody" is not a "email""#.into()));
        assert_eq!(checker(json!({"const": 1}), None)(json!(2)), Err("params must be 1".into()));
        // An unknown format is no rule at all.
        assert_eq!(checker(json!({"format": "city-name"}), None)(json!("x")), Ok(()));
    }

    #[test]
    fn a_schema_that_cannot_be_compiled_says_why() {
        let refused = compile(&json!({"type": "text"}), None).unwrap_err();
        assert!(refused.contains("text"), "{refused}");
        assert!(compile(&json!({"pattern": "("}), None).is_err());
        // Nothing outside the document is fetched.
        assert!(compile(&json!({"$ref": "https://example.com/item.json"}), None).is_err());
    }
}
