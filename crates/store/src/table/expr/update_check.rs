//! UpdateExpressions as written, DynamoDB's checks on them in its order, and lowering into
//! [`Update`].
//!
//! The parser accepts any function with any number of operands in a SET action and keeps the
//! actions in written order; what is wrong with a well-formed expression is reported here, one
//! kind of problem before the next, whichever comes first in the text within a kind (the
//! order DynamoDB's answers show): a reserved word, an unknown function and a repeated
//! section (found by the parser), then an undefined name, an undefined value, two paths that
//! overlap, two that conflict, an ADD or DELETE operand of the wrong type, and last a
//! function's operands (their number, a document path where one is required, their types).
//! Placeholders that are defined but unused are reported after every expression of the
//! request (`Ctx::check`).

use super::ast::{Path, PathElem, SetOperand, SetValue, Update};
use super::check::GOp;
use super::eval::{Ctx, check_overlap, type_long};
use crate::table::error::DdbError;
use crate::table::value::AttrValue;

/// The right-hand side of a SET action as written.
pub(super) enum UValue {
    Op(GOp),
    Plus(GOp, GOp),
    Minus(GOp, GOp),
}

/// One action of an UpdateExpression as written.
pub(super) enum UAction {
    Set(Path, UValue),
    Remove(Path),
    Add(Path, String),
    Delete(Path, String),
}

fn invalid(msg: String) -> DdbError {
    DdbError::validation(format!("Invalid UpdateExpression: {msg}"))
}

/// Check `actions` (with the request's placeholders when given) and lower them.
pub(super) fn check(actions: Vec<UAction>, ctx: Option<&Ctx>) -> Result<Update, DdbError> {
    if let Some(ctx) = ctx {
        placeholders(&actions, ctx)?;
        let paths = actions
            .iter()
            .map(|a| {
                let (UAction::Set(p, _)
                | UAction::Remove(p)
                | UAction::Add(p, _)
                | UAction::Delete(p, _)) = a;
                ctx.resolve(p)
            })
            .collect::<Result<Vec<_>, _>>()?;
        check_overlap(&paths, "UpdateExpression")?;
        for a in &actions {
            if let UAction::Add(_, v) | UAction::Delete(_, v) = a {
                let add = matches!(a, UAction::Add(..));
                let Some(value) = ctx.values.get(v) else {
                    continue;
                };
                let fits = matches!(
                    value,
                    AttrValue::SS(_) | AttrValue::NS(_) | AttrValue::BS(_)
                ) || (add && matches!(value, AttrValue::N(_)));
                if !fits {
                    return Err(invalid(format!(
                        "Incorrect operand type for operator or function; operator: {}, operand type: {}",
                        if add { "ADD" } else { "DELETE" },
                        type_long(value)
                    )));
                }
            }
        }
    }
    for a in &actions {
        if let UAction::Set(_, v) = a {
            match v {
                UValue::Op(o) => function(o, ctx)?,
                UValue::Plus(x, y) | UValue::Minus(x, y) => {
                    function(x, ctx)?;
                    function(y, ctx)?;
                    let op = if matches!(v, UValue::Plus(..)) {
                        "+"
                    } else {
                        "-"
                    };
                    operand_types(op, &[x, y], "N", ctx)?;
                }
            }
        }
    }
    let mut u = Update::default();
    for a in actions {
        match a {
            UAction::Set(p, v) => {
                let v = match v {
                    UValue::Op(o) => SetValue::Operand(lower(o)?),
                    UValue::Plus(x, y) => SetValue::Plus(lower(x)?, lower(y)?),
                    UValue::Minus(x, y) => SetValue::Minus(lower(x)?, lower(y)?),
                };
                u.set.push((p, v));
            }
            UAction::Remove(p) => u.remove.push(p),
            UAction::Add(p, v) => u.add.push((p, v)),
            UAction::Delete(p, v) => u.delete.push((p, v)),
        }
    }
    Ok(u)
}

/// Every placeholder in written order: (is a name, placeholder).
fn each_placeholder<'a>(actions: &'a [UAction], f: &mut impl FnMut(bool, &'a str)) {
    fn path<'a>(p: &'a Path, f: &mut impl FnMut(bool, &'a str)) {
        for e in &p.0 {
            if let PathElem::Placeholder(n) = e {
                f(true, n);
            }
        }
    }
    fn op<'a>(o: &'a GOp, f: &mut impl FnMut(bool, &'a str)) {
        match o {
            GOp::Path(p) => path(p, f),
            GOp::Value(v) => f(false, v),
            GOp::Func(_, args) => args.iter().for_each(|a| op(a, f)),
        }
    }
    for a in actions {
        match a {
            UAction::Set(p, v) => {
                path(p, f);
                match v {
                    UValue::Op(o) => op(o, f),
                    UValue::Plus(x, y) | UValue::Minus(x, y) => {
                        op(x, f);
                        op(y, f);
                    }
                }
            }
            UAction::Remove(p) => path(p, f),
            UAction::Add(p, v) | UAction::Delete(p, v) => {
                path(p, f);
                f(false, v);
            }
        }
    }
}

/// The first undefined name, else the first undefined value.
fn placeholders(actions: &[UAction], ctx: &Ctx) -> Result<(), DdbError> {
    let (mut name, mut value) = (None, None);
    each_placeholder(actions, &mut |is_name, ph| {
        if is_name && name.is_none() && !ctx.names.contains_key(ph) {
            name = Some(ph);
        }
        if !is_name && value.is_none() && !ctx.values.contains_key(ph) {
            value = Some(ph);
        }
    });
    if let Some(n) = name {
        return Err(invalid(format!(
            "An expression attribute name used in the document path is not defined; attribute name: {n}"
        )));
    }
    if let Some(v) = value {
        return Err(invalid(format!(
            "An expression attribute value used in expression is not defined; attribute value: {v}"
        )));
    }
    Ok(())
}

/// A function's operands, innermost functions first.
fn function(o: &GOp, ctx: Option<&Ctx>) -> Result<(), DdbError> {
    let GOp::Func(name, args) = o else {
        return Ok(());
    };
    for a in args {
        function(a, ctx)?;
    }
    if args.len() != 2 {
        return Err(invalid(format!(
            "Incorrect number of operands for operator or function; operator or function: {name}, number of operands: {}",
            args.len()
        )));
    }
    match name.as_str() {
        "if_not_exists" if !matches!(args[0], GOp::Path(_)) => Err(invalid(format!(
            "Operator or function requires a document path; operator or function: {name}"
        ))),
        // DynamoDB takes list_append over if_not_exists, but not over another list_append.
        "list_append"
            if args
                .iter()
                .any(|a| matches!(a, GOp::Func(inner, _) if inner == "list_append")) =>
        {
            Err(invalid(format!(
                "The function is not allowed to be used this way in an expression; function: {name}"
            )))
        }
        "list_append" => operand_types(name, &[&args[0], &args[1]], "L", ctx),
        _ => Ok(()),
    }
}

/// The operands of `name` that are values must be of type `want` (paths and function results
/// are only known when the item is read).
fn operand_types(name: &str, args: &[&GOp], want: &str, ctx: Option<&Ctx>) -> Result<(), DdbError> {
    let Some(ctx) = ctx else {
        return Ok(());
    };
    for a in args {
        if let GOp::Value(v) = a
            && let Some(value) = ctx.values.get(v)
            && value.type_name() != want
        {
            return Err(invalid(format!(
                "Incorrect operand type for operator or function; operator or function: {name}, operand type: {}",
                value.type_name()
            )));
        }
    }
    Ok(())
}

fn lower(o: GOp) -> Result<SetOperand, DdbError> {
    Ok(match o {
        GOp::Path(p) => SetOperand::Path(p),
        GOp::Value(v) => SetOperand::Value(v),
        GOp::Func(name, args) => {
            let n = args.len();
            let mut args = args.into_iter();
            match (name.as_str(), args.next(), args.next(), n) {
                ("if_not_exists", Some(GOp::Path(p)), Some(d), 2) => {
                    SetOperand::IfNotExists(p, Box::new(lower(d)?))
                }
                ("list_append", Some(a), Some(b), 2) => {
                    SetOperand::ListAppend(Box::new(lower(a)?), Box::new(lower(b)?))
                }
                _ => {
                    return Err(invalid(format!("Invalid function name; function: {name}")));
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::super::parse::{parse_update, parse_update_ctx};
    use super::*;
    use crate::table::value::item_from_json;

    fn ctx(names: &[(&str, &str)], values: serde_json::Value) -> Ctx {
        Ctx {
            names: names
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
            values: item_from_json(&values).unwrap().into_iter().collect(),
        }
    }

    fn err(src: &str, c: &Ctx) -> String {
        parse_update_ctx(src, c).unwrap_err().message
    }

    /// The expressions and expected answers are those of requests recorded against DynamoDB
    /// (dynalite's UpdateItem tests): one kind of problem is reported before the next.
    #[test]
    fn problems_are_reported_in_dynamodb_order() {
        let c = ctx(
            &[("#a", "a"), ("#b", "b")],
            json!({":a": {"S": "a"}, ":b": {"S": "a"}}),
        );
        // Syntax before a reserved word; the section words are syntax, not reserved words.
        assert!(err("add abort b", &c).contains("Syntax error;"));
        assert!(err("set a=set", &c).contains("Syntax error;"));
        // A reserved word before a repeated section.
        assert_eq!(
            err(" set #a = :a set abOrt = :b ", &c),
            "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: abOrt"
        );
        // An undefined name before an undefined value, both before a function's operands.
        assert_eq!(
            err("SET #c = if_not_exists(:c)", &c),
            "Invalid UpdateExpression: An expression attribute name used in the document path is not defined; attribute name: #c"
        );
        assert_eq!(
            err("SET #a = if_not_exists(:c)", &c),
            "Invalid UpdateExpression: An expression attribute value used in expression is not defined; attribute value: :c"
        );
        // An overlap anywhere before a conflict earlier in the text.
        let d = ctx(&[("#c", "c"), ("#d", "[3]")], json!({}));
        assert_eq!(
            err(
                "set d[1] = a, d.b = a, c[1].a = a, #c = if_not_exists(a)",
                &d
            ),
            "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [c, [1], a], path two: [c]"
        );
        assert_eq!(
            err("set #c[3].#d = a, #c.#d[3] = if_not_exists(a)", &d),
            "Invalid UpdateExpression: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [c, [3], [3]], path two: [c, [3], [3]]"
        );
        // An ADD operand's type before a function's operands.
        assert_eq!(
            err(
                "set b = list_append(:a, a), c = if_not_exists(a) add a.b :a",
                &c
            ),
            "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: STRING"
        );
        // A function's operands: how many, a path where one is required, value types.
        assert_eq!(
            err("set a = list_append(c)", &c),
            "Invalid UpdateExpression: Incorrect number of operands for operator or function; operator or function: list_append, number of operands: 1"
        );
        assert_eq!(
            err("set a = if_not_exists(if_not_exists(a, b), c)", &c),
            "Invalid UpdateExpression: Operator or function requires a document path; operator or function: if_not_exists"
        );
        assert_eq!(
            err("set a = list_append(:a, a)", &c),
            "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: list_append, operand type: S"
        );
        assert_eq!(
            err("set a = :a - :b", &c),
            "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: -, operand type: S"
        );
    }

    #[test]
    fn a_well_formed_update_lowers_in_written_order_within_each_section() {
        let c = ctx(&[("#n", "n")], json!({":z": {"N": "0"}, ":l": {"L": []}}));
        let u = parse_update_ctx(
            "SET #n = if_not_exists(#n, :z) + :z, l = list_append((l), :l) REMOVE x, y",
            &c,
        )
        .unwrap();
        assert_eq!(
            u.to_string(),
            "SET #n = if_not_exists(#n, :z) + :z, l = list_append(l, :l) REMOVE x, y"
        );
        // Without placeholders only what needs none is checked.
        assert!(parse_update("SET a = if_not_exists(a, :undefined)").is_ok());
        assert!(parse_update("SET a = if_not_exists(:v, a)").is_err());
    }
}
