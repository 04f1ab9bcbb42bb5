//! The `scalingModifiers.formula` front end.
//!
//! KEDA evaluates formulas with expr-lang (Go). kedge evaluates them with the `evalexpr`
//! crate (in `autoscale`); this module parses the expr-lang subset KEDA documents for
//! formulas, rejects anything outside it by name, and re-emits a fully parenthesised
//! evalexpr expression so both languages agree on precedence.
//!
//! Supported (expr-lang spelling → meaning):
//! - numbers (all arithmetic is floating point, as in expr-lang), trigger names as variables
//! - `+ - * / %`, `**` and `^` (power), unary `-`, `+`, `!`, `not`
//! - `== != < > <= >=`, `&& and || or`
//! - `a ?? b` (nil-coalescing: `b` when trigger `a` failed), `c ? a : b`, parentheses
//! - functions `abs ceil floor round min max` (`min`/`max` take two or more arguments)
//!
//! Not supported (error naming it): strings, arrays, maps, member access, `in`, `matches`,
//! closures/predicates (`filter`, `count`, ...) and any other function.

use std::fmt;

/// Name of the function the evaluator must provide for `??`: returns its first argument
/// unless that is empty (a failed trigger), else the second.
pub const COALESCE_FN: &str = "kedge_coalesce";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormulaError(pub String);

impl fmt::Display for FormulaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FormulaError {}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(String),
    Ident(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
    Question,
    Colon,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, FormulaError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    const OPS: [&str; 19] = [
        "**", "??", "==", "!=", "<=", ">=", "&&", "||", "+", "-", "*", "/", "%", "^", "<", ">",
        "!", "?", ":",
    ];
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit() || chars[i] == '.' || chars[i] == '_')
            {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                i += 1;
                if i < chars.len() && (chars[i] == '+' || chars[i] == '-') {
                    i += 1;
                }
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let text: String = chars[start..i].iter().filter(|c| **c != '_').collect();
            if text.parse::<f64>().is_err() {
                return Err(FormulaError(format!("invalid number {text:?}")));
            }
            out.push(Tok::Num(text));
            continue;
        }
        if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            match word.as_str() {
                "and" => out.push(Tok::Op("&&")),
                "or" => out.push(Tok::Op("||")),
                "not" => out.push(Tok::Op("!")),
                _ => out.push(Tok::Ident(word)),
            }
            continue;
        }
        match c {
            '(' => {
                out.push(Tok::LParen);
                i += 1;
                continue;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
                continue;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
                continue;
            }
            '"' | '\'' | '`' => {
                return Err(FormulaError(
                    "string literals are not supported in formulas; formulas work on numbers"
                        .into(),
                ));
            }
            '[' | ']' | '{' | '}' => {
                return Err(FormulaError(format!(
                    "{c:?}: arrays and maps are not supported in formulas"
                )));
            }
            '.' => {
                return Err(FormulaError(
                    "member access ('.') is not supported in formulas".into(),
                ));
            }
            _ => {}
        }
        let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
        let Some(op) = OPS.iter().find(|op| rest.starts_with(**op)) else {
            return Err(FormulaError(format!("unexpected character {c:?}")));
        };
        i += op.chars().count();
        out.push(match *op {
            "?" => Tok::Question,
            ":" => Tok::Colon,
            op => Tok::Op(op),
        });
    }
    Ok(out)
}

#[derive(Debug, Clone)]
enum Expr {
    Num(String),
    Var(String),
    Unary(&'static str, Box<Expr>),
    Binary(&'static str, Box<Expr>, Box<Expr>),
    Call(&'static str, Vec<Expr>),
    Ternary(Box<Expr>, Box<Expr>, Box<Expr>),
}

/// expr-lang's binary operator precedences (higher binds tighter) and associativity.
fn binary(op: &str) -> Option<(u8, bool)> {
    Some(match op {
        "||" => (10, false),
        "&&" => (15, false),
        "==" | "!=" | "<" | ">" | "<=" | ">=" => (20, false),
        "+" | "-" => (30, false),
        "*" | "/" | "%" => (60, false),
        "**" | "^" => (100, true),
        "??" => (200, false),
        _ => return None,
    })
}

/// Map an expr-lang function to the evalexpr builtin, with its arity range.
fn function(name: &str) -> Option<(&'static str, usize, usize)> {
    Some(match name {
        "abs" => ("math::abs", 1, 1),
        "ceil" => ("ceil", 1, 1),
        "floor" => ("floor", 1, 1),
        "round" => ("round", 1, 1),
        "min" => ("min", 2, usize::MAX),
        "max" => ("max", 2, usize::MAX),
        _ => return None,
    })
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    vars: &'a [&'a str],
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn ternary(&mut self) -> Result<Expr, FormulaError> {
        let cond = self.binary(0)?;
        if self.peek() == Some(&Tok::Question) {
            self.next();
            let a = self.ternary()?;
            if self.next() != Some(Tok::Colon) {
                return Err(FormulaError("expected ':' in 'cond ? a : b'".into()));
            }
            let b = self.ternary()?;
            return Ok(Expr::Ternary(Box::new(cond), Box::new(a), Box::new(b)));
        }
        Ok(cond)
    }

    fn binary(&mut self, min_prec: u8) -> Result<Expr, FormulaError> {
        let mut lhs = self.unary()?;
        while let Some(Tok::Op(op)) = self.peek().cloned() {
            let Some((prec, right)) = binary(op) else {
                break;
            };
            if prec < min_prec {
                break;
            }
            self.next();
            let rhs = self.binary(if right { prec } else { prec + 1 })?;
            lhs = Expr::Binary(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, FormulaError> {
        match self.peek() {
            Some(Tok::Op(op @ ("-" | "+" | "!"))) => {
                let op = *op;
                self.next();
                // expr-lang: unary minus binds tighter than * but looser than **.
                let e = self.binary(61)?;
                Ok(Expr::Unary(op, Box::new(e)))
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<Expr, FormulaError> {
        match self.next() {
            Some(Tok::Num(n)) => Ok(Expr::Num(n)),
            Some(Tok::LParen) => {
                let e = self.ternary()?;
                if self.next() != Some(Tok::RParen) {
                    return Err(FormulaError("missing ')'".into()));
                }
                Ok(e)
            }
            Some(Tok::Ident(name)) => {
                if self.peek() == Some(&Tok::LParen) {
                    self.next();
                    let Some((f, lo, hi)) = function(&name) else {
                        return Err(FormulaError(format!(
                            "function {name:?} is not supported in formulas; supported: abs, ceil, floor, round, min, max"
                        )));
                    };
                    let mut args = Vec::new();
                    if self.peek() != Some(&Tok::RParen) {
                        loop {
                            args.push(self.ternary()?);
                            match self.next() {
                                Some(Tok::Comma) => continue,
                                Some(Tok::RParen) => break,
                                _ => {
                                    return Err(FormulaError(format!(
                                        "missing ')' after arguments of {name}"
                                    )));
                                }
                            }
                        }
                    } else {
                        self.next();
                    }
                    if args.len() < lo || args.len() > hi {
                        return Err(FormulaError(format!(
                            "{name} takes {}, got {} argument(s)",
                            if lo == hi {
                                format!("{lo} argument(s)")
                            } else {
                                format!("at least {lo} arguments")
                            },
                            args.len()
                        )));
                    }
                    return Ok(Expr::Call(f, args));
                }
                match name.as_str() {
                    "true" | "false" | "nil" => {
                        return Err(FormulaError(format!(
                            "{name:?} literals are not supported in formulas"
                        )));
                    }
                    _ => {}
                }
                if !self.vars.contains(&name.as_str()) {
                    return Err(FormulaError(format!(
                        "{name:?} is not the name of a trigger in this ScaledObject (give the trigger `name: {name}`; known: {})",
                        if self.vars.is_empty() {
                            "none".to_string()
                        } else {
                            self.vars.join(", ")
                        }
                    )));
                }
                Ok(Expr::Var(name))
            }
            Some(Tok::Op(op)) => Err(FormulaError(format!("unexpected operator {op:?}"))),
            Some(Tok::RParen) => Err(FormulaError("unexpected ')'".into())),
            Some(Tok::Comma) => Err(FormulaError("unexpected ','".into())),
            Some(Tok::Question) | Some(Tok::Colon) => {
                Err(FormulaError("unexpected '?' or ':'".into()))
            }
            None => Err(FormulaError("formula ends unexpectedly".into())),
        }
    }
}

fn emit(e: &Expr, out: &mut String) {
    match e {
        Expr::Num(n) => {
            // Force floating point: evalexpr divides integers as integers, expr-lang does not.
            let v: f64 = n.parse().unwrap_or(0.0);
            out.push_str(&format!("{v:?}"));
        }
        Expr::Var(v) => out.push_str(v),
        Expr::Unary(op, a) => {
            out.push('(');
            out.push_str(op);
            emit(a, out);
            out.push(')');
        }
        Expr::Binary("??", a, b) => {
            out.push_str(COALESCE_FN);
            out.push('(');
            emit(a, out);
            out.push_str(", ");
            emit(b, out);
            out.push(')');
        }
        Expr::Binary(op, a, b) => {
            out.push('(');
            emit(a, out);
            out.push(' ');
            out.push_str(if *op == "**" { "^" } else { op });
            out.push(' ');
            emit(b, out);
            out.push(')');
        }
        Expr::Call(f, args) => {
            out.push_str(f);
            out.push('(');
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                emit(a, out);
            }
            out.push(')');
        }
        Expr::Ternary(c, a, b) => {
            out.push_str("if(");
            emit(c, out);
            out.push_str(", ");
            emit(a, out);
            out.push_str(", ");
            emit(b, out);
            out.push(')');
        }
    }
}

/// Check an expr-lang formula over the given trigger names and translate it to evalexpr.
pub fn translate(formula: &str, trigger_names: &[&str]) -> Result<String, FormulaError> {
    let toks = tokenize(formula)?;
    if toks.is_empty() {
        return Err(FormulaError("formula is empty".into()));
    }
    let mut p = Parser {
        toks,
        pos: 0,
        vars: trigger_names,
    };
    let e = p.ternary()?;
    if p.pos < p.toks.len() {
        return Err(FormulaError(format!(
            "unexpected {:?} after the end of the expression",
            p.toks[p.pos]
        )));
    }
    let mut out = String::new();
    emit(&e, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_translation() {
        assert_eq!(
            translate("a + b * 2", &["a", "b"]).unwrap(),
            "(a + (b * 2.0))"
        );
        assert_eq!(
            translate("a ?? 0 + b", &["a", "b"]).unwrap(),
            "(kedge_coalesce(a, 0.0) + b)"
        );
        assert_eq!(
            translate("a > 2 ? a : b", &["a", "b"]).unwrap(),
            "if((a > 2.0), a, b)"
        );
        assert_eq!(
            translate("2 ** 3 ** 2", &[]).unwrap(),
            "(2.0 ^ (3.0 ^ 2.0))"
        );
        assert_eq!(
            translate("max(a, b) / 2", &["a", "b"]).unwrap(),
            "(max(a, b) / 2.0)"
        );
    }

    #[test]
    fn unknown_names_and_functions_are_errors() {
        assert!(translate("c + 1", &["a"]).unwrap_err().0.contains("\"c\""));
        assert!(
            translate("len(a)", &["a"])
                .unwrap_err()
                .0
                .contains("\"len\"")
        );
        assert!(translate("a +", &["a"]).is_err());
        assert!(translate("\"x\"", &[]).is_err());
    }
}
