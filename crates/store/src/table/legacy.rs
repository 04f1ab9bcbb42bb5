//! DynamoDB's legacy conditional parameters (`Expected`, `KeyConditions`, `QueryFilter`,
//! `ScanFilter` with `ConditionalOperator`), translated into the expression AST so that one
//! evaluator serves both. Older SDK code still sends them. Generated placeholders
//! (`#legacyN` / `:legacyN`) are added to the request's [`Ctx`]; AWS forbids mixing legacy
//! and expression parameters, which [`translate`] enforces.

use serde_json::Value;

use super::error::DdbError;
use super::expr::Ctx;
use super::expr::ast::{CmpOp, Cond, Operand, Path, PathElem};
use super::req::opt_str;
use super::value::AttrValue;

fn arg_count(op: &str) -> Option<usize> {
    Some(match op {
        "EQ" | "NE" | "LE" | "LT" | "GE" | "GT" | "CONTAINS" | "NOT_CONTAINS" | "BEGINS_WITH" => 1,
        "NULL" | "NOT_NULL" => 0,
        "BETWEEN" => 2,
        "IN" => usize::MAX,
        _ => return None,
    })
}

struct Gen<'a> {
    ctx: &'a mut Ctx,
    n: usize,
}

impl Gen<'_> {
    fn path(&mut self, name: &str) -> Path {
        let ph = format!("#legacy{}", self.n);
        self.n += 1;
        self.ctx.names.insert(ph.clone(), name.to_string());
        Path(vec![PathElem::Placeholder(ph)])
    }
    fn value(&mut self, v: AttrValue) -> Operand {
        let ph = format!(":legacy{}", self.n);
        self.n += 1;
        self.ctx.values.insert(ph.clone(), v);
        Operand::Value(ph)
    }
}

fn one(g: &mut Gen<'_>, attr: &str, spec: &Value, expected: bool) -> Result<Cond, DdbError> {
    let bad =
        |m: String| DdbError::validation(format!("One or more parameter values were invalid: {m}"));
    let op = opt_str(spec, "ComparisonOperator");
    if expected {
        // The Expected forms and what DynamoDB answers for each mix-up.
        let exists = spec.get("Exists").and_then(crate::table::req::as_boolean);
        let value = spec.get("Value").filter(|v| !v.is_null());
        let list = spec.get("AttributeValueList").filter(|v| !v.is_null());
        if value.is_some() && list.is_some() {
            return Err(bad(format!(
                "Value and AttributeValueList cannot be used together for Attribute: {attr}"
            )));
        }
        if list.is_some() && op.is_none() {
            return Err(bad(format!(
                "AttributeValueList can only be used with a ComparisonOperator for Attribute: {attr}"
            )));
        }
        if let Some(op) = op {
            if exists.is_some() {
                return Err(bad(format!(
                    "Exists and ComparisonOperator cannot be used together for Attribute: {attr}"
                )));
            }
            if value.is_none()
                && list.is_none()
                && !matches!(op, "NULL" | "NOT_NULL")
                && arg_count(op).is_some()
            {
                return Err(bad(format!(
                    "Value or AttributeValueList must be used with ComparisonOperator: {op} for Attribute: {attr}"
                )));
            }
        } else {
            return match (value, exists) {
                (Some(v), None | Some(true)) => {
                    let v = g.value(AttrValue::from_json(v)?);
                    let p = g.path(attr);
                    Ok(Cond::Cmp(Operand::Path(p), CmpOp::Eq, v))
                }
                (None, Some(false)) => Ok(Cond::AttributeNotExists(g.path(attr))),
                (Some(_), Some(false)) => Err(bad(format!(
                    "Value cannot be used when Exists is false for Attribute: {attr}"
                ))),
                (None, e) => Err(bad(format!(
                    "Value must be provided when Exists is {} for Attribute: {attr}",
                    if e.is_some() { "true" } else { "null" }
                ))),
            };
        }
    }
    let op = op.ok_or_else(|| {
        bad(format!(
            "ComparisonOperator is required for attribute ({attr})"
        ))
    })?;
    arg_count(op).ok_or_else(|| {
        DdbError::validation(format!(
            "1 validation error detected: Value '{op}' at 'comparisonOperator' failed to satisfy constraint: Member must satisfy enum value set: [IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]"
        ))
    })?;
    // In Expected, `Value` with a ComparisonOperator is a one-element AttributeValueList.
    let value = spec
        .get("Value")
        .filter(|v| expected && !v.is_null())
        .map(AttrValue::from_json)
        .transpose()?;
    let list = spec.get("AttributeValueList").filter(|v| !v.is_null());
    if value.is_some() && list.is_some() {
        return Err(bad(format!(
            "Value and AttributeValueList cannot be used together for Attribute: {attr}"
        )));
    }
    let args: Vec<AttrValue> = match list {
        None => value.into_iter().collect(),
        Some(l) => l
            .as_array()
            .ok_or_else(|| DdbError::serialization("AttributeValueList must be a list"))?
            .iter()
            .map(AttrValue::from_json)
            .collect::<Result<_, _>>()?,
    };
    check_args(op, &args, true)?;
    let p = g.path(attr);
    let vals: Vec<Operand> = args.into_iter().map(|a| g.value(a)).collect();
    let path = Operand::Path(p.clone());
    // Argument counts were checked above, so these placeholders always exist.
    let nth = |i: usize| {
        vals.get(i)
            .cloned()
            .unwrap_or(Operand::Value(String::new()))
    };
    let first = || nth(0);
    Ok(match op {
        "EQ" => Cond::Cmp(path, CmpOp::Eq, first()),
        "NE" => Cond::Cmp(path, CmpOp::Ne, first()),
        "LE" => Cond::Cmp(path, CmpOp::Le, first()),
        "LT" => Cond::Cmp(path, CmpOp::Lt, first()),
        "GE" => Cond::Cmp(path, CmpOp::Ge, first()),
        "GT" => Cond::Cmp(path, CmpOp::Gt, first()),
        "NULL" => Cond::AttributeNotExists(p),
        "NOT_NULL" => Cond::AttributeExists(p),
        "CONTAINS" => Cond::Contains(path, first()),
        // False for an attribute that is not there (unlike `NOT contains(...)`), as DynamoDB
        // evaluates it.
        "NOT_CONTAINS" => Cond::And(
            Box::new(Cond::AttributeExists(p.clone())),
            Box::new(Cond::Not(Box::new(Cond::Contains(path, first())))),
        ),
        "BEGINS_WITH" => Cond::BeginsWith(path, first()),
        "BETWEEN" => Cond::Between(path, first(), nth(1)),
        _ => Cond::In(path, vals.clone()),
    })
}

/// The argument types each comparison operator of a filter or key condition accepts, as
/// the `Condition` reference documents them (`None`: any type); `Expected` conditions too.
fn arg_types(op: &str) -> Option<&'static [&'static str]> {
    match op {
        "LE" | "LT" | "GE" | "GT" | "CONTAINS" | "NOT_CONTAINS" | "IN" | "BETWEEN" => {
            Some(&["S", "N", "B"])
        }
        "BEGINS_WITH" => Some(&["S", "B"]),
        _ => None,
    }
}

/// DynamoDB's checks of one legacy condition's arguments, in its order: their number, one
/// type for all of them, a type the operator accepts (when `typed`), BETWEEN bounds in order.
pub fn check_args(op: &str, args: &[AttrValue], typed: bool) -> Result<(), DdbError> {
    let bad =
        |m: String| DdbError::validation(format!("One or more parameter values were invalid: {m}"));
    let count_ok = match arg_count(op) {
        Some(usize::MAX) => !args.is_empty(),
        Some(n) => args.len() == n,
        None => true,
    };
    if !count_ok {
        return Err(bad(format!(
            "Invalid number of argument(s) for the {op} ComparisonOperator"
        )));
    }
    if let Some(first) = args.first()
        && args.iter().any(|a| a.type_name() != first.type_name())
    {
        return Err(bad(
            "AttributeValues inside AttributeValueList must be of same type".into(),
        ));
    }
    if typed && let Some(ok) = arg_types(op) {
        for a in args {
            if !ok.contains(&a.type_name()) {
                return Err(bad(format!(
                    "ComparisonOperator {op} is not valid for {} AttributeValue type",
                    a.type_name()
                )));
            }
        }
    }
    if op == "BETWEEN"
        && let [lo, hi] = args
        && super::expr::eval::scalar_cmp(lo, hi) == Some(std::cmp::Ordering::Greater)
    {
        return Err(DdbError::validation(
            "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound",
        ));
    }
    Ok(())
}

/// One condition of a legacy condition map, checked: attribute, operator, arguments.
pub type Checked = (String, String, Vec<AttrValue>);

/// Check every condition of a legacy condition map (`KeyConditions`, `QueryFilter`,
/// `ScanFilter`) as DynamoDB does before it looks at the table: per attribute in order, each
/// argument's value, then [`check_args`].
pub fn validate_conditions(map: Option<&Value>) -> Result<Vec<Checked>, DdbError> {
    let Some(map) = map.and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(map.len());
    for (attr, spec) in map {
        let op = opt_str(spec, "ComparisonOperator").unwrap_or_default();
        let args: Vec<AttrValue> = spec
            .get("AttributeValueList")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(AttrValue::from_json)
            .collect::<Result<_, _>>()?;
        check_args(op, &args, true)?;
        out.push((attr.clone(), op.to_string(), args));
    }
    Ok(out)
}

/// Translate the legacy parameter `field` of `req` (if present) into a condition, adding its
/// placeholders to `ctx`. `expression` names the expression parameter it must not be mixed with.
pub fn translate(
    req: &Value,
    field: &str,
    expression: &str,
    ctx: &mut Ctx,
) -> Result<Option<Cond>, DdbError> {
    // ConditionalOperator joins Expected's conditions: without any it is a mistake.
    if field == "Expected"
        && req.get("ConditionalOperator").is_some_and(|v| !v.is_null())
        && req
            .get(field)
            .and_then(Value::as_object)
            .is_none_or(|m| m.is_empty())
    {
        return Err(DdbError::validation(
            "One or more parameter values were invalid: ConditionalOperator can only be used when Expected has at least one condition",
        ));
    }
    let Some(map) = req.get(field).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    if req.get(expression).is_some_and(|v| !v.is_null())
        || req
            .get("ExpressionAttributeNames")
            .is_some_and(|v| !v.is_null())
        || req
            .get("ExpressionAttributeValues")
            .is_some_and(|v| !v.is_null())
    {
        return Err(DdbError::validation(format!(
            "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {{{field}}} Expression parameters: {{{expression}}}"
        )));
    }
    let map = map
        .as_object()
        .ok_or_else(|| DdbError::serialization(format!("{field} must be a map")))?;
    // ConditionalOperator joins filters and Expected; key conditions are always ANDed.
    let or = match opt_str(req, "ConditionalOperator") {
        _ if field == "KeyConditions" => false,
        None | Some("AND") => false,
        Some("OR") => true,
        Some(other) => {
            return Err(DdbError::validation(format!(
                "1 validation error detected: Value '{other}' at 'conditionalOperator' failed to satisfy constraint: Member must satisfy enum value set: [OR, AND]"
            )));
        }
    };
    let mut g = Gen {
        n: ctx.names.len() + ctx.values.len(),
        ctx,
    };
    let mut out: Option<Cond> = None;
    for (attr, spec) in map {
        let c = one(&mut g, attr, spec, field == "Expected")?;
        out = Some(match out {
            None => c,
            Some(prev) if or => Cond::Or(Box::new(prev), Box::new(c)),
            Some(prev) => Cond::And(Box::new(prev), Box::new(c)),
        });
    }
    Ok(out)
}
