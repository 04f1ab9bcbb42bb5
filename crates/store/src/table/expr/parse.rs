//! Lexer and recursive-descent parser for condition, key-condition, filter, projection and
//! update expressions. Every error is a ValidationException worded like AWS's
//! (`Invalid ConditionExpression: Syntax error; token: "x", near: "a x"`); no input panics
//! (depth and length are bounded).

use super::ast::*;
use super::reserved::is_reserved;
use crate::table::error::DdbError;

/// AWS limits each expression string to 4 KB.
const MAX_EXPR_LEN: usize = 4096;
/// Parenthesis / NOT nesting bound: keeps recursion far from the stack limit.
const MAX_DEPTH: usize = 100;
/// Document paths may be at most 32 levels deep.
const MAX_PATH_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    NamePh(String),
    ValuePh(String),
    Num(String),
    Sym(&'static str),
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    text: String,
}

fn lex(src: &str, kind: &str) -> Result<Vec<Token>, DdbError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let word = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && (b[*i].is_ascii_alphanumeric() || b[*i] == b'_') {
            *i += 1;
        }
        src[s..*i].to_string()
    };
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let tok = if c.is_ascii_alphabetic() || c == b'_' {
            Tok::Ident(word(&mut i))
        } else if c.is_ascii_digit() {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            Tok::Num(src[start..i].to_string())
        } else if c == b'#' || c == b':' {
            i += 1;
            let w = word(&mut i);
            if w.is_empty() {
                return Err(syntax(kind, &src[start..start + 1], &src[start..]));
            }
            if c == b'#' {
                Tok::NamePh(format!("#{w}"))
            } else {
                Tok::ValuePh(format!(":{w}"))
            }
        } else {
            let two = if i + 1 < b.len() {
                &b[i..i + 2]
            } else {
                &b[i..i + 1]
            };
            let sym: &'static str = match two {
                b"<>" => "<>",
                b"<=" => "<=",
                b">=" => ">=",
                _ => match c {
                    b'=' => "=",
                    b'<' => "<",
                    b'>' => ">",
                    b'(' => "(",
                    b')' => ")",
                    b'[' => "[",
                    b']' => "]",
                    b',' => ",",
                    b'.' => ".",
                    b'+' => "+",
                    b'-' => "-",
                    _ => {
                        let ch = src[i..].chars().next().unwrap_or('?');
                        return Err(syntax(kind, &ch.to_string(), near_of(src, start)));
                    }
                },
            };
            i += sym.len();
            Tok::Sym(sym)
        };
        out.push(Token {
            tok,
            text: src[start..i].to_string(),
        });
    }
    out.push(Token {
        tok: Tok::Eof,
        text: "<EOF>".into(),
    });
    Ok(out)
}

fn near_of(src: &str, at: usize) -> &str {
    let end = src.len().min(at + 8);
    let end = (end..=src.len())
        .find(|e| src.is_char_boundary(*e))
        .unwrap_or(src.len());
    &src[at..end]
}

fn syntax(kind: &str, token: &str, near: &str) -> DdbError {
    DdbError::validation(format!(
        "Invalid {kind}: Syntax error; token: \"{token}\", near: \"{near}\""
    ))
}

struct Parser<'a> {
    toks: Vec<Token>,
    pos: usize,
    kind: &'a str,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(src: &str, kind: &'a str) -> Result<Parser<'a>, DdbError> {
        if src.trim().is_empty() {
            return Err(DdbError::validation(format!(
                "Invalid {kind}: The expression can not be empty;"
            )));
        }
        if src.len() > MAX_EXPR_LEN {
            return Err(DdbError::validation(format!(
                "Invalid {kind}: Expression size has exceeded the maximum allowed size; expression size: {}",
                src.len()
            )));
        }
        Ok(Parser {
            toks: lex(src, kind)?,
            pos: 0,
            kind,
            depth: 0,
        })
    }

    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].tok
    }
    fn peek2(&self) -> &Tok {
        &self.toks[(self.pos + 1).min(self.toks.len() - 1)].tok
    }
    fn bump(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }
    fn err(&self) -> DdbError {
        let i = self.pos.min(self.toks.len() - 1);
        let lo = i.saturating_sub(1);
        let hi = (i + 1).min(self.toks.len() - 1);
        let near: Vec<&str> = self.toks[lo..=hi]
            .iter()
            .filter(|t| t.tok != Tok::Eof)
            .map(|t| t.text.as_str())
            .collect();
        syntax(self.kind, &self.toks[i].text, &near.join(" "))
    }
    fn is_sym(&self, s: &str) -> bool {
        matches!(self.peek(), Tok::Sym(x) if *x == s)
    }
    fn expect(&mut self, s: &str) -> Result<(), DdbError> {
        if self.is_sym(s) {
            self.bump();
            Ok(())
        } else {
            Err(self.err())
        }
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(x) if x.eq_ignore_ascii_case(kw))
    }
    fn end(&self) -> Result<(), DdbError> {
        if *self.peek() == Tok::Eof {
            Ok(())
        } else {
            Err(self.err())
        }
    }
    fn enter(&mut self) -> Result<(), DdbError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(DdbError::validation(format!(
                "Invalid {}: The expression has redundant parentheses or is nested too deeply;",
                self.kind
            )));
        }
        Ok(())
    }

    fn path(&mut self) -> Result<Path, DdbError> {
        let mut elems = Vec::new();
        elems.push(self.path_name()?);
        loop {
            if self.is_sym(".") {
                self.bump();
                elems.push(self.path_name()?);
            } else if self.is_sym("[") {
                self.bump();
                let n = match self.bump() {
                    Tok::Num(n) => n,
                    _ => {
                        self.pos = self.pos.saturating_sub(1);
                        return Err(self.err());
                    }
                };
                let idx: u32 = n.parse().map_err(|_| {
                    DdbError::validation(format!(
                        "Invalid {}: List index is out of range; index: {n}",
                        self.kind
                    ))
                })?;
                self.expect("]")?;
                elems.push(PathElem::Index(idx));
            } else {
                break;
            }
            if elems.len() > MAX_PATH_DEPTH {
                return Err(DdbError::validation(format!(
                    "Invalid {}: The document path has too many nesting levels; nesting levels: {}",
                    self.kind,
                    elems.len()
                )));
            }
        }
        Ok(Path(elems))
    }

    fn path_name(&mut self) -> Result<PathElem, DdbError> {
        match self.peek().clone() {
            Tok::Ident(n) => {
                if is_reserved(&n) {
                    return Err(DdbError::validation(format!(
                        "Invalid {}: Attribute name is a reserved keyword; reserved keyword: {n}",
                        self.kind
                    )));
                }
                self.bump();
                Ok(PathElem::Name(n))
            }
            Tok::NamePh(n) => {
                self.bump();
                Ok(PathElem::Placeholder(n))
            }
            _ => Err(self.err()),
        }
    }

    fn func_name(&self) -> Option<String> {
        match (self.peek(), self.peek2()) {
            (Tok::Ident(n), Tok::Sym("(")) => Some(n.clone()),
            _ => None,
        }
    }

    fn not_allowed(&self, f: &str) -> DdbError {
        DdbError::validation(format!(
            "Invalid {}: The function is not allowed to be used this way in an expression; function: {f}",
            self.kind
        ))
    }

    fn operand(&mut self) -> Result<Operand, DdbError> {
        if let Some(f) = self.func_name() {
            if f == "size" {
                self.bump();
                self.bump();
                let p = self.path()?;
                self.expect(")")?;
                return Ok(Operand::Size(p));
            }
            return Err(if is_cond_function(&f) {
                self.not_allowed(&f)
            } else {
                self.invalid_function(&f)
            });
        }
        match self.peek().clone() {
            Tok::ValuePh(v) => {
                self.bump();
                Ok(Operand::Value(v))
            }
            Tok::Ident(_) | Tok::NamePh(_) => Ok(Operand::Path(self.path()?)),
            _ => Err(self.err()),
        }
    }

    fn invalid_function(&self, f: &str) -> DdbError {
        DdbError::validation(format!(
            "Invalid {}: Invalid function name; function: {f}",
            self.kind
        ))
    }

    fn or(&mut self) -> Result<Cond, DdbError> {
        let mut l = self.and()?;
        while self.is_kw("OR") {
            self.bump();
            let r = self.and()?;
            l = Cond::Or(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn and(&mut self) -> Result<Cond, DdbError> {
        let mut l = self.not()?;
        while self.is_kw("AND") {
            self.bump();
            let r = self.not()?;
            l = Cond::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn not(&mut self) -> Result<Cond, DdbError> {
        if self.is_kw("NOT") {
            self.bump();
            self.enter()?;
            let c = self.not()?;
            self.depth -= 1;
            return Ok(Cond::Not(Box::new(c)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Cond, DdbError> {
        if self.is_sym("(") {
            self.bump();
            self.enter()?;
            let c = self.or()?;
            self.depth -= 1;
            self.expect(")")?;
            return Ok(c);
        }
        if let Some(f) = self.func_name()
            && f != "size"
        {
            if !is_cond_function(&f) {
                return Err(self.invalid_function(&f));
            }
            self.bump();
            self.bump();
            let c = match f.as_str() {
                "attribute_exists" => Cond::AttributeExists(self.path()?),
                "attribute_not_exists" => Cond::AttributeNotExists(self.path()?),
                "attribute_type" => {
                    let p = self.path()?;
                    self.expect(",")?;
                    Cond::AttributeType(p, self.operand()?)
                }
                "begins_with" => {
                    let a = self.operand()?;
                    self.expect(",")?;
                    Cond::BeginsWith(a, self.operand()?)
                }
                _ => {
                    let a = self.operand()?;
                    self.expect(",")?;
                    Cond::Contains(a, self.operand()?)
                }
            };
            self.expect(")")?;
            return Ok(c);
        }
        let a = self.operand()?;
        let op = match self.peek() {
            Tok::Sym("=") => CmpOp::Eq,
            Tok::Sym("<>") => CmpOp::Ne,
            Tok::Sym("<") => CmpOp::Lt,
            Tok::Sym("<=") => CmpOp::Le,
            Tok::Sym(">") => CmpOp::Gt,
            Tok::Sym(">=") => CmpOp::Ge,
            Tok::Ident(k) if k.eq_ignore_ascii_case("BETWEEN") => {
                self.bump();
                let lo = self.operand()?;
                if !self.is_kw("AND") {
                    return Err(self.err());
                }
                self.bump();
                let hi = self.operand()?;
                return Ok(Cond::Between(a, lo, hi));
            }
            Tok::Ident(k) if k.eq_ignore_ascii_case("IN") => {
                self.bump();
                self.expect("(")?;
                let mut list = vec![self.operand()?];
                while self.is_sym(",") {
                    self.bump();
                    list.push(self.operand()?);
                }
                self.expect(")")?;
                if list.len() > 100 {
                    return Err(DdbError::validation(format!(
                        "Invalid {}: The IN operator is provided with too many operands; number of operands: {}",
                        self.kind,
                        list.len()
                    )));
                }
                return Ok(Cond::In(a, list));
            }
            _ => {
                if let Operand::Size(_) = a {
                    return Err(self.not_allowed("size"));
                }
                return Err(self.err());
            }
        };
        self.bump();
        let b = self.operand()?;
        Ok(Cond::Cmp(a, op, b))
    }

    fn set_operand(&mut self) -> Result<SetOperand, DdbError> {
        if let Some(f) = self.func_name() {
            self.bump();
            self.bump();
            self.enter()?;
            let r = match f.as_str() {
                "if_not_exists" => {
                    let p = self.path()?;
                    self.expect(",")?;
                    SetOperand::IfNotExists(p, Box::new(self.set_operand()?))
                }
                "list_append" => {
                    let a = self.set_operand()?;
                    self.expect(",")?;
                    SetOperand::ListAppend(Box::new(a), Box::new(self.set_operand()?))
                }
                other if is_cond_function(other) || other == "size" => {
                    return Err(DdbError::validation(format!(
                        "Invalid UpdateExpression: The function is not allowed in an update expression; function: {other}"
                    )));
                }
                other => return Err(self.invalid_function(other)),
            };
            self.depth -= 1;
            self.expect(")")?;
            return Ok(r);
        }
        match self.peek().clone() {
            Tok::ValuePh(v) => {
                self.bump();
                Ok(SetOperand::Value(v))
            }
            Tok::Ident(_) | Tok::NamePh(_) => Ok(SetOperand::Path(self.path()?)),
            _ => Err(self.err()),
        }
    }

    /// The right-hand side of a SET action: an operand, or two joined by `+` / `-`; any of
    /// them may be parenthesized (`set b = ((c[1]) + (b.a))` is valid DynamoDB).
    fn set_value(&mut self) -> Result<SetValue, DdbError> {
        let a = self.set_value_atom()?;
        let plus = if self.is_sym("+") {
            true
        } else if self.is_sym("-") {
            false
        } else {
            return Ok(a);
        };
        let SetValue::Operand(a) = a else {
            return Err(self.err());
        };
        self.bump();
        let SetValue::Operand(b) = self.set_value_atom()? else {
            return Err(self.err());
        };
        Ok(if plus {
            SetValue::Plus(a, b)
        } else {
            SetValue::Minus(a, b)
        })
    }

    fn set_value_atom(&mut self) -> Result<SetValue, DdbError> {
        if self.is_sym("(") {
            self.bump();
            self.enter()?;
            let v = self.set_value()?;
            self.depth -= 1;
            self.expect(")")?;
            return Ok(v);
        }
        Ok(SetValue::Operand(self.set_operand()?))
    }

    fn value_ph(&mut self) -> Result<String, DdbError> {
        match self.peek().clone() {
            Tok::ValuePh(v) => {
                self.bump();
                Ok(v)
            }
            _ => Err(self.err()),
        }
    }

    fn update(&mut self) -> Result<Update, DdbError> {
        let mut u = Update::default();
        let mut seen = [false; 4];
        loop {
            let clause = match self.peek() {
                Tok::Ident(k) => match k.to_ascii_uppercase().as_str() {
                    "SET" => 0,
                    "REMOVE" => 1,
                    "ADD" => 2,
                    "DELETE" => 3,
                    _ => return Err(self.err()),
                },
                Tok::Eof if self.pos > 0 => break,
                _ => return Err(self.err()),
            };
            if seen[clause] {
                let name = ["SET", "REMOVE", "ADD", "DELETE"][clause];
                return Err(DdbError::validation(format!(
                    "Invalid UpdateExpression: The \"{name}\" section can only be used once in an update expression;"
                )));
            }
            seen[clause] = true;
            self.bump();
            loop {
                match clause {
                    0 => {
                        let p = self.path()?;
                        self.expect("=")?;
                        let v = self.set_value()?;
                        u.set.push((p, v));
                    }
                    1 => u.remove.push(self.path()?),
                    2 => {
                        let p = self.path()?;
                        u.add.push((p, self.value_ph()?));
                    }
                    _ => {
                        let p = self.path()?;
                        u.delete.push((p, self.value_ph()?));
                    }
                }
                if self.is_sym(",") {
                    self.bump();
                } else {
                    break;
                }
            }
        }
        Ok(u)
    }
}

fn is_cond_function(f: &str) -> bool {
    matches!(
        f,
        "attribute_exists" | "attribute_not_exists" | "attribute_type" | "begins_with" | "contains"
    )
}

/// Parse a condition; `kind` names the request parameter for messages ("ConditionExpression").
pub fn parse_condition(src: &str, kind: &str) -> Result<Cond, DdbError> {
    let mut p = Parser::new(src, kind)?;
    let c = p.or()?;
    p.end()?;
    Ok(c)
}

pub fn parse_update(src: &str) -> Result<Update, DdbError> {
    let mut p = Parser::new(src, "UpdateExpression")?;
    let u = p.update()?;
    p.end()?;
    Ok(u)
}

pub fn parse_projection(src: &str) -> Result<Vec<Path>, DdbError> {
    let mut p = Parser::new(src, "ProjectionExpression")?;
    let mut v = vec![p.path()?];
    while p.is_sym(",") {
        p.bump();
        v.push(p.path()?);
    }
    p.end()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_is_not_then_and_then_or() {
        let c = parse_condition("a = :a OR b = :b AND NOT c = :c", "ConditionExpression").unwrap();
        assert_eq!(c.to_string(), "(a = :a) OR ((b = :b) AND (NOT (c = :c)))");
    }

    #[test]
    fn parses_functions_paths_and_between() {
        let c = parse_condition(
            "attribute_exists(#a.b[2].c) and size(l) between :lo and :hi and x in (:1, :2)",
            "ConditionExpression",
        )
        .unwrap();
        assert_eq!(
            c.to_string(),
            "((attribute_exists(#a.b[2].c)) AND (size(l) BETWEEN :lo AND :hi)) AND (x IN (:1, :2))"
        );
    }

    #[test]
    fn errors_look_like_aws() {
        let e = parse_condition("a = ", "ConditionExpression").unwrap_err();
        assert_eq!(
            e.message,
            "Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \"=\""
        );
        let e = parse_condition("status = :s", "ConditionExpression").unwrap_err();
        assert_eq!(
            e.message,
            "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: status"
        );
        let e = parse_condition("foo(a)", "FilterExpression").unwrap_err();
        assert_eq!(
            e.message,
            "Invalid FilterExpression: Invalid function name; function: foo"
        );
        let e = parse_update("SET a = :a SET b = :b").unwrap_err();
        assert!(
            e.message.contains("\"SET\" section can only be used once"),
            "{}",
            e.message
        );
        let deep = format!("{}a = :a{}", "(".repeat(5000), ")".repeat(5000));
        assert!(parse_condition(&deep, "ConditionExpression").is_err());
    }

    #[test]
    fn update_round_trips() {
        let src = "SET a = if_not_exists(a, :z) + :one, l = list_append(l, :v) REMOVE b[1], c ADD n :n DELETE s :s";
        let u = parse_update(src).unwrap();
        assert_eq!(parse_update(&u.to_string()).unwrap(), u);
        assert_eq!(u.set.len(), 2);
        assert_eq!(u.remove.len(), 2);
    }
}
