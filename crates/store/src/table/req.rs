//! Small helpers for reading request JSON with AWS's validation messages.

use std::collections::HashMap;

use serde_json::Value;

use super::error::DdbError;
use super::expr::Ctx;
use super::value::AttrValue;

/// `"TableName"` -> `"tableName"`: AWS names members in camelCase in validation messages.
pub fn camel(field: &str) -> String {
    let mut c = field.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// AWS's "N validation errors detected: a; b" form.
pub fn vmsg(errs: Vec<String>) -> DdbError {
    let n = errs.len();
    DdbError::validation(format!(
        "{n} validation error{} detected: {}",
        if n == 1 { "" } else { "s" },
        errs.join("; ")
    ))
}

pub fn not_null(field: &str) -> DdbError {
    vmsg(vec![format!(
        "Value null at '{}' failed to satisfy constraint: Member must not be null",
        camel(field)
    )])
}

pub fn req_str<'a>(v: &'a Value, field: &str) -> Result<&'a str, DdbError> {
    match v.get(field) {
        None | Some(Value::Null) => Err(not_null(field)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(DdbError::serialization(format!(
            "Unexpected value type for field {field}: expected a string"
        ))),
    }
}

pub fn opt_str<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    v.get(field).and_then(|v| v.as_str())
}

/// A boolean member: JSON `true`/`false`, or a string DynamoDB's parser reads as one
/// ([`super::shape::boolean_text`]).
pub fn as_boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => super::shape::boolean_text(s),
        _ => None,
    }
}

pub fn opt_bool(v: &Value, field: &str) -> Result<Option<bool>, DdbError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) if as_boolean(v).is_some() => Ok(as_boolean(v)),
        Some(_) => Err(DdbError::serialization(format!(
            "Unexpected value type for field {field}: expected a boolean"
        ))),
    }
}

pub fn opt_i64(v: &Value, field: &str) -> Result<Option<i64>, DdbError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| DdbError::serialization(format!("{field} must be an integer"))),
        Some(_) => Err(DdbError::serialization(format!(
            "Unexpected value type for field {field}: expected a number"
        ))),
    }
}

/// The table name, validated as AWS does.
pub fn table_name(v: &Value) -> Result<&str, DdbError> {
    let n = req_str(v, "TableName")?;
    super::meta::validate_table_name(n, "tableName")?;
    Ok(n)
}

/// ExpressionAttributeNames / ExpressionAttributeValues of a request (or sub-request).
pub fn ctx(v: &Value) -> Result<Ctx, DdbError> {
    let mut names = HashMap::new();
    if let Some(n) = v.get("ExpressionAttributeNames").filter(|n| !n.is_null()) {
        let obj = n
            .as_object()
            .ok_or_else(|| DdbError::serialization("ExpressionAttributeNames must be a map"))?;
        if obj.is_empty() {
            return Err(DdbError::validation(
                "ExpressionAttributeNames must not be empty",
            ));
        }
        for (k, val) in obj {
            let s = val.as_str().ok_or_else(|| {
                DdbError::serialization("ExpressionAttributeNames values must be strings")
            })?;
            if !k.starts_with('#') {
                return Err(DdbError::validation(format!(
                    "ExpressionAttributeNames contains invalid key: Syntax error; key: \"{k}\""
                )));
            }
            if let Some(problem) = super::value::attr_name_problem(s) {
                return Err(DdbError::validation(format!(
                    "ExpressionAttributeNames contains invalid value: {problem} for key {k}"
                )));
            }
            names.insert(k.clone(), s.to_string());
        }
    }
    let mut values = HashMap::new();
    if let Some(n) = v.get("ExpressionAttributeValues").filter(|n| !n.is_null()) {
        let obj = n
            .as_object()
            .ok_or_else(|| DdbError::serialization("ExpressionAttributeValues must be a map"))?;
        if obj.is_empty() {
            return Err(DdbError::validation(
                "ExpressionAttributeValues must not be empty",
            ));
        }
        // Every key's syntax before any value.
        if let Some(k) = obj.keys().find(|k| !k.starts_with(':')) {
            return Err(DdbError::validation(format!(
                "ExpressionAttributeValues contains invalid key: Syntax error; key: \"{k}\""
            )));
        }
        for (k, val) in obj {
            let av = AttrValue::from_json(val).map_err(|mut e| {
                if e.code == super::error::ErrorCode::Validation
                    && !e.message.starts_with("ExpressionAttributeValues")
                {
                    e.message = format!(
                        "ExpressionAttributeValues contains invalid value: {} for key {k}",
                        e.message
                    );
                }
                e
            })?;
            values.insert(k.clone(), av);
        }
    }
    Ok(Ctx { names, values })
}

/// AWS rejects placeholder maps on a request that has no expression at all.
pub fn require_expressions(v: &Value, expressions: &[&str]) -> Result<(), DdbError> {
    let present = |f: &str| v.get(f).is_some_and(|x| !x.is_null());
    if expressions.iter().any(|e| present(e)) {
        return Ok(());
    }
    if present("ExpressionAttributeNames") {
        return Err(DdbError::validation(
            "ExpressionAttributeNames can only be specified when using expressions",
        ));
    }
    if present("ExpressionAttributeValues") {
        return Err(DdbError::validation(
            "ExpressionAttributeValues can only be specified when using expressions",
        ));
    }
    Ok(())
}
