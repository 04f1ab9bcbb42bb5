//! Conditions as written, and the checks DynamoDB makes on them before it reads anything.
//!
//! The parser ([`super::parse`]) accepts a wider grammar than a valid condition (any function
//! with any operands, anywhere an operand may stand) and reports only syntax errors; this
//! module then finds what is wrong with what was written, and reports it as DynamoDB does:
//! one message, chosen by class in this order: redundant parentheses, unknown function,
//! function used where it may not be, reserved word, and then, at the first condition (in
//! written order) with a problem: undefined placeholder, wrong number of operands, operands
//! not distinct, wrong operand type. The classes and their order are those dynalite records
//! against DynamoDB (its `conditionParser.pegjs` and tests); every message names the
//! expression (`Invalid FilterExpression: ...`). A condition without problems is lowered
//! into [`Cond`].

use std::cmp::Ordering;

use super::ast::{CmpOp, Cond, Operand, Path, PathElem};
use super::eval::{Ctx, scalar_cmp};
use crate::table::error::DdbError;
use crate::table::value::AttrValue;

/// An operand as written.
#[derive(Debug, Clone, PartialEq)]
pub enum GOp {
    Path(Path),
    Value(String),
    Func(String, Vec<GOp>),
}

/// A condition as written.
#[derive(Debug, Clone, PartialEq)]
pub enum GCond {
    Cmp(GOp, CmpOp, GOp),
    Between(GOp, GOp, GOp),
    In(GOp, Vec<GOp>),
    /// A function standing as a condition (`attribute_exists(a)`, or a misused `size(a)`).
    Func(String, Vec<GOp>),
    And(Box<GCond>, Box<GCond>),
    Or(Box<GCond>, Box<GCond>),
    Not(Box<GCond>),
}

/// The condition functions and how many operands each takes.
fn arity(f: &str) -> Option<usize> {
    Some(match f {
        "attribute_exists" | "attribute_not_exists" | "size" => 1,
        "attribute_type" | "begins_with" | "contains" => 2,
        _ => return None,
    })
}

/// The attribute types `attribute_type` accepts.
const TYPE_NAMES: [&str; 10] = ["S", "N", "B", "NULL", "SS", "BOOL", "L", "BS", "NS", "M"];

/// Problems found in the parser-level classes, first of each.
#[derive(Default)]
struct Global {
    unknown_function: Option<String>,
    misused_function: Option<String>,
}

impl Global {
    fn misuse_args(&mut self, args: &[&GOp]) {
        if self.misused_function.is_some() {
            return;
        }
        for a in args {
            if let GOp::Func(name, _) = a
                && name != "size"
            {
                self.misused_function = Some(name.clone());
                return;
            }
        }
    }

    fn misuse_size(&mut self, c: &GCond) {
        if let GCond::Func(name, _) = c
            && name == "size"
            && self.misused_function.is_none()
        {
            self.misused_function = Some(name.clone());
        }
    }

    fn op(&mut self, o: &GOp) {
        if let GOp::Func(name, args) = o {
            for a in args {
                self.op(a);
            }
            self.func(name, args);
        }
    }

    fn func(&mut self, name: &str, args: &[GOp]) {
        self.misuse_args(&args.iter().collect::<Vec<_>>());
        if arity(name).is_none() && self.unknown_function.is_none() {
            self.unknown_function = Some(name.to_string());
        }
    }

    /// Walk `c` in the order the grammar completes its parts.
    fn cond(&mut self, c: &GCond) {
        match c {
            GCond::Cmp(a, _, b) => {
                self.op(a);
                self.op(b);
                self.misuse_args(&[a, b]);
            }
            GCond::Between(a, b, d) => {
                self.op(a);
                self.op(b);
                self.op(d);
                self.misuse_args(&[a, b, d]);
            }
            GCond::In(a, l) => {
                self.op(a);
                l.iter().for_each(|x| self.op(x));
                let all: Vec<&GOp> = std::iter::once(a).chain(l.iter()).collect();
                self.misuse_args(&all);
            }
            GCond::Func(name, args) => {
                for a in args {
                    self.op(a);
                }
                self.func(name, args);
            }
            GCond::And(a, b) | GCond::Or(a, b) => {
                super::deeper(|| self.cond(a));
                super::deeper(|| self.cond(b));
                self.misuse_size(a);
                self.misuse_size(b);
            }
            GCond::Not(a) => {
                super::deeper(|| self.cond(a));
                self.misuse_size(a);
            }
        }
    }
}

/// Problems of the condition class found so far, first of each.
#[derive(Default)]
struct Local {
    undefined: Option<String>,
    operands: Option<String>,
    distinct: Option<String>,
    function: Option<String>,
}

impl Local {
    fn first(&self) -> Option<&String> {
        self.undefined
            .as_ref()
            .or(self.operands.as_ref())
            .or(self.distinct.as_ref())
            .or(self.function.as_ref())
    }
}

/// The type an operand is known to have before any item is read: a value's type, or what a
/// function returns (`size` is a number).
fn known_type(o: &GOp, ctx: &Ctx) -> Option<&'static str> {
    match o {
        GOp::Value(v) => ctx.values.get(v).map(AttrValue::type_name),
        GOp::Func(name, _) => match name.as_str() {
            "size" => Some("N"),
            "attribute_exists"
            | "attribute_not_exists"
            | "attribute_type"
            | "begins_with"
            | "contains" => Some("BOOL"),
            _ => None,
        },
        GOp::Path(_) => None,
    }
}

fn resolved(p: &Path, ctx: &Ctx) -> Vec<String> {
    p.0.iter()
        .map(|e| match e {
            PathElem::Name(n) => n.clone(),
            PathElem::Placeholder(n) => ctx.names.get(n).cloned().unwrap_or_else(|| n.clone()),
            PathElem::Index(i) => format!("[{i}]"),
        })
        .collect()
}

struct Checker<'a> {
    ctx: &'a Ctx,
    local: Local,
}

impl Checker<'_> {
    fn undefined(&mut self, o: &GOp) {
        if self.local.undefined.is_some() {
            return;
        }
        match o {
            GOp::Path(p) => {
                for e in &p.0 {
                    if let PathElem::Placeholder(n) = e
                        && !self.ctx.names.contains_key(n)
                    {
                        self.local.undefined = Some(format!(
                            "An expression attribute name used in the document path is not defined; attribute name: {n}"
                        ));
                        return;
                    }
                }
            }
            GOp::Value(v) => {
                if !self.ctx.values.contains_key(v) {
                    self.local.undefined = Some(format!(
                        "An expression attribute value used in expression is not defined; attribute value: {v}"
                    ));
                }
            }
            GOp::Func(_, args) => args.iter().for_each(|a| self.undefined(a)),
        }
    }

    fn distinct(&mut self, name: &str, a: &GOp, b: &GOp) {
        if self.local.distinct.is_some() {
            return;
        }
        if let (GOp::Path(x), GOp::Path(y)) = (a, b) {
            let (x, y) = (resolved(x, self.ctx), resolved(y, self.ctx));
            if x == y {
                self.local.distinct = Some(format!(
                    "The first operand must be distinct from the remaining operands for this operator or function; operator: {name}, first operand: [{}]",
                    x.join(", ")
                ));
            }
        }
    }

    fn function_error(&mut self, m: String) {
        if self.local.function.is_none() {
            self.local.function = Some(m);
        }
    }

    /// A function's own checks, after its operands'.
    fn func(&mut self, name: &str, args: &[GOp]) {
        for a in args {
            self.op(a);
        }
        let Some(n) = arity(name) else { return };
        if args.len() != n {
            if self.local.operands.is_none() {
                self.local.operands = Some(format!(
                    "Incorrect number of operands for operator or function; operator or function: {name}, number of operands: {}",
                    args.len()
                ));
            }
            return;
        }
        if let [a, b] = args {
            self.distinct(name, a, b);
        }
        let incorrect = |ty: &str| {
            format!(
                "Incorrect operand type for operator or function; operator or function: {name}, operand type: {ty}"
            )
        };
        match name {
            "attribute_exists" | "attribute_not_exists" if !matches!(args[0], GOp::Path(_)) => {
                self.function_error(format!(
                    "Operator or function requires a document path; operator or function: {name}"
                ));
            }
            "begins_with" => {
                for a in args {
                    if let Some(t) = known_type(a, self.ctx)
                        && t != "S"
                        && t != "B"
                    {
                        self.function_error(incorrect(t));
                        return;
                    }
                }
            }
            "attribute_type" => match &args[1] {
                GOp::Value(v) => match self.ctx.values.get(v) {
                    Some(AttrValue::S(s)) if TYPE_NAMES.contains(&s.as_str()) => {}
                    Some(AttrValue::S(s)) => self.function_error(format!(
                        "Invalid attribute type name found; type: {s}, valid types: {{B,NULL,SS,BOOL,L,BS,N,NS,S,M}}"
                    )),
                    Some(v) => self.function_error(incorrect(v.type_name())),
                    None => {}
                },
                other => {
                    let t = known_type(other, self.ctx).unwrap_or("{NS,SS,L,BS,N,M,B,BOOL,NULL,S}");
                    self.function_error(incorrect(t));
                }
            },
            "size" => {
                if let Some(t) = known_type(&args[0], self.ctx)
                    && matches!(t, "N" | "BOOL" | "NULL")
                {
                    self.function_error(incorrect(t));
                }
            }
            _ => {}
        }
    }

    fn op(&mut self, o: &GOp) {
        self.undefined(o);
        if let GOp::Func(name, args) = o {
            self.func(name, args);
        }
    }

    fn leaf(&mut self, c: &GCond) {
        match c {
            GCond::Cmp(a, op, b) => {
                self.op(a);
                self.op(b);
                self.distinct(&op.to_string(), a, b);
                if !matches!(op, CmpOp::Eq | CmpOp::Ne) {
                    self.ordered_operands(&op.to_string(), &[a, b]);
                }
            }
            GCond::Between(a, lo, hi) => {
                self.op(a);
                self.op(lo);
                self.op(hi);
                self.ordered_operands("BETWEEN", &[a, lo, hi]);
                self.between(lo, hi);
            }
            GCond::In(a, l) => {
                self.op(a);
                l.iter().for_each(|x| self.op(x));
            }
            GCond::Func(name, args) => self.func(name, args),
            GCond::And(..) | GCond::Or(..) | GCond::Not(..) => {}
        }
    }

    /// An ordering comparison's operands known before any item is read (a value, `size`)
    /// must be strings, numbers or binaries: any other type is an error in the request, not a
    /// false condition (as an item attribute of another type is).
    fn ordered_operands(&mut self, name: &str, operands: &[&GOp]) {
        if let Some(t) = operands
            .iter()
            .filter_map(|o| known_type(o, self.ctx))
            .find(|t| !matches!(*t, "S" | "N" | "B"))
        {
            self.function_error(format!(
                "Incorrect operand type for operator or function; operator or function: {name}, operand type: {t}"
            ));
        }
    }

    fn between(&mut self, lo: &GOp, hi: &GOp) {
        let value = |o: &GOp| match o {
            GOp::Value(v) => self.ctx.values.get(v),
            _ => None,
        };
        let (Some(x), Some(y)) = (value(lo), value(hi)) else {
            return;
        };
        let m = if x.type_name() != y.type_name() {
            "The BETWEEN operator requires same data type for lower and upper bounds"
        } else if scalar_cmp(x, y) == Some(Ordering::Greater) {
            "The BETWEEN operator requires upper bound to be greater than or equal to lower bound"
        } else {
            return;
        };
        self.function_error(format!(
            "{m}; lower bound operand: AttributeValue: {}, upper bound operand: AttributeValue: {}",
            x.describe(),
            y.describe()
        ));
    }
}

fn leaves<'c>(c: &'c GCond, out: &mut Vec<&'c GCond>) {
    match c {
        GCond::And(a, b) | GCond::Or(a, b) => {
            super::deeper(|| leaves(a, out));
            super::deeper(|| leaves(b, out));
        }
        GCond::Not(a) => super::deeper(|| leaves(a, out)),
        leaf => out.push(leaf),
    }
}

/// Check a parsed condition and lower it. `reserved` is the first reserved word the parser
/// met as an attribute name, `parens` whether it met redundant parentheses. Without `ctx`
/// only the parser-level classes are checked (for tests of the grammar alone).
pub fn check(
    c: &GCond,
    kind: &str,
    parens: bool,
    reserved: Option<&str>,
    ctx: Option<&Ctx>,
) -> Result<Cond, DdbError> {
    let invalid = |m: String| DdbError::validation(format!("Invalid {kind}: {m}"));
    if parens {
        return Err(invalid("The expression has redundant parentheses;".into()));
    }
    let mut g = Global::default();
    g.cond(c);
    g.misuse_size(c);
    if let Some(f) = g.unknown_function {
        // The update expression's functions are known, just not here.
        return Err(invalid(
            if matches!(f.as_str(), "if_not_exists" | "list_append") {
                format!("The function is not allowed in a condition expression; function: {f}")
            } else {
                format!("Invalid function name; function: {f}")
            },
        ));
    }
    if let Some(f) = g.misused_function {
        return Err(invalid(format!(
            "The function is not allowed to be used this way in an expression; function: {f}"
        )));
    }
    if let Some(r) = reserved {
        return Err(invalid(format!(
            "Attribute name is a reserved keyword; reserved keyword: {r}"
        )));
    }
    if let Some(ctx) = ctx {
        let mut ch = Checker {
            ctx,
            local: Local::default(),
        };
        let mut ls = Vec::new();
        leaves(c, &mut ls);
        for l in ls {
            ch.leaf(l);
            if let Some(m) = ch.local.first() {
                return Err(invalid(m.clone()));
            }
        }
    }
    lower(c).map_err(invalid)
}

fn lower_op(o: &GOp) -> Result<Operand, String> {
    Ok(match o {
        GOp::Path(p) => Operand::Path(p.clone()),
        GOp::Value(v) => Operand::Value(v.clone()),
        GOp::Func(name, args) => match (name.as_str(), args.as_slice()) {
            ("size", [GOp::Path(p)]) => Operand::Size(p.clone()),
            // The size of a value from the request (its type was checked with the function's).
            ("size", [GOp::Value(v)]) => Operand::SizeOfValue(v.clone()),
            ("size", _) => {
                return Err(
                    "Operator or function requires a document path; operator or function: size"
                        .into(),
                );
            }
            _ => {
                return Err(format!(
                    "The function is not allowed to be used this way in an expression; function: {name}"
                ));
            }
        },
    })
}

fn lower(c: &GCond) -> Result<Cond, String> {
    let path = |o: &GOp, f: &str| match o {
        GOp::Path(p) => Ok(p.clone()),
        _ => Err(format!(
            "Operator or function requires a document path; operator or function: {f}"
        )),
    };
    Ok(match c {
        GCond::Cmp(a, op, b) => Cond::Cmp(lower_op(a)?, *op, lower_op(b)?),
        GCond::Between(a, b, d) => Cond::Between(lower_op(a)?, lower_op(b)?, lower_op(d)?),
        GCond::In(a, l) => Cond::In(
            lower_op(a)?,
            l.iter().map(lower_op).collect::<Result<_, _>>()?,
        ),
        GCond::And(a, b) => Cond::And(
            Box::new(super::deeper(|| lower(a))?),
            Box::new(super::deeper(|| lower(b))?),
        ),
        GCond::Or(a, b) => Cond::Or(
            Box::new(super::deeper(|| lower(a))?),
            Box::new(super::deeper(|| lower(b))?),
        ),
        GCond::Not(a) => Cond::Not(Box::new(super::deeper(|| lower(a))?)),
        GCond::Func(name, args) => {
            let n = arity(name).unwrap_or(0);
            if args.len() != n {
                return Err(format!(
                    "Incorrect number of operands for operator or function; operator or function: {name}, number of operands: {}",
                    args.len()
                ));
            }
            match name.as_str() {
                "attribute_exists" => Cond::AttributeExists(path(&args[0], name)?),
                "attribute_not_exists" => Cond::AttributeNotExists(path(&args[0], name)?),
                "attribute_type" => Cond::AttributeType(lower_op(&args[0])?, lower_op(&args[1])?),
                "begins_with" => Cond::BeginsWith(lower_op(&args[0])?, lower_op(&args[1])?),
                "contains" => Cond::Contains(lower_op(&args[0])?, lower_op(&args[1])?),
                other => {
                    return Err(format!(
                        "The function is not allowed to be used this way in an expression; function: {other}"
                    ));
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::expr::parse::parse_condition_ctx;

    fn msg(src: &str, values: &[(&str, AttrValue)]) -> String {
        let ctx = Ctx {
            names: [("#a".to_string(), "a".to_string())].into_iter().collect(),
            values: values
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        };
        parse_condition_ctx(src, "FilterExpression", &ctx)
            .err()
            .map(|e| e.message)
            .unwrap_or_default()
    }

    /// One message per expression, chosen by DynamoDB's order of problem classes (cases
    /// from dynalite's suite, recorded against DynamoDB).
    #[test]
    fn problems_are_reported_in_dynamodb_order() {
        let s = |x: &str| AttrValue::S(x.into());
        let n = AttrValue::N(crate::table::value::Number::from_i64(1));
        type Case<'a> = (&'a str, Vec<(&'a str, AttrValue)>, &'a str);
        let cases: Vec<Case> = vec![
            (
                "(size(a))[0] > a",
                vec![],
                "Syntax error; token: \"[\", near: \") [ 0\"",
            ),
            (
                "a=a and a > ((views))",
                vec![],
                "The expression has redundant parentheses;",
            ),
            (
                "a=a OR ((a=a OR a=a)) OR a=a",
                vec![],
                "The expression has redundant parentheses;",
            ),
            (
                "a > whatever((:things), ((a)))",
                vec![],
                "The expression has redundant parentheses;",
            ),
            (
                "a=a and whatever((:things)) > a",
                vec![],
                "Invalid function name; function: whatever",
            ),
            (
                "a=a and attribute_exists((views), (#a)) > b",
                vec![],
                "The function is not allowed to be used this way in an expression; function: attribute_exists",
            ),
            (
                "size(things)",
                vec![],
                "The function is not allowed to be used this way in an expression; function: size",
            ),
            (
                "attribute_exists(views, #a)",
                vec![],
                "Attribute name is a reserved keyword; reserved keyword: views",
            ),
            (
                "attribute_exists(#Pictures.RearView, :a) and a=a",
                vec![],
                "An expression attribute name used in the document path is not defined; attribute name: #Pictures",
            ),
            (
                "begins_with(:hello, #a, #b)",
                vec![],
                "An expression attribute value used in expression is not defined; attribute value: :hello",
            ),
            (
                "attribute_exists(things, a) and a=a",
                vec![],
                "Incorrect number of operands for operator or function; operator or function: attribute_exists, number of operands: 2",
            ),
            (
                "attribute_type(a, size(a)) and a=a and a=:a",
                vec![(":a", n.clone())],
                "Incorrect operand type for operator or function; operator or function: attribute_type, operand type: N",
            ),
            (
                "attribute_not_exists(size(:a))",
                vec![(":a", n.clone())],
                "Incorrect operand type for operator or function; operator or function: size, operand type: N",
            ),
            (
                "attribute_exists(:a) and a=a",
                vec![(":a", s("1"))],
                "Operator or function requires a document path; operator or function: attribute_exists",
            ),
            (
                "a = a AND #a = b AND :views > a",
                vec![],
                "The first operand must be distinct from the remaining operands for this operator or function; operator: =, first operand: [a]",
            ),
            (
                "begins_with(ab.bc[1].a, ab.bc[1].#a)",
                vec![],
                "The first operand must be distinct from the remaining operands for this operator or function; operator: begins_with, first operand: [ab, bc, [1], a]",
            ),
            (
                "a between :b and :a",
                vec![(":a", s("a")), (":b", s("b"))],
                "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {S:b}, upper bound operand: AttributeValue: {S:a}",
            ),
            ("((size(b)) = :a) AND c = :a", vec![(":a", n.clone())], ""),
            ("(a.b).c = :a", vec![(":a", n)], ""),
        ];
        for (src, values, want) in cases {
            let got = msg(src, &values);
            let want = if want.is_empty() {
                String::new()
            } else {
                format!("Invalid FilterExpression: {want}")
            };
            assert_eq!(got, want, "{src}");
        }
    }
}
