//! Lexer and recursive-descent parser for condition, key-condition, filter, projection and
//! update expressions. Every error is a ValidationException worded like AWS's
//! (`Invalid ConditionExpression: Syntax error; token: "x", near: "a x"`); no input panics
//! (depth and length are bounded).

use super::ast::*;
use super::check::{GCond, GOp, check};
use super::deeper;
use super::eval::{Ctx, Seg, check_overlap};
use super::reserved::is_reserved;
use super::update_check::{UAction, UValue};
use crate::table::error::DdbError;

/// AWS limits each expression string to 4 KB.
const MAX_EXPR_LEN: usize = 4096;
/// Parenthesis / NOT nesting bound: keeps recursion far from the stack limit. DynamoDB's own
/// bound is on operators ([`MAX_OPERATORS`]); a nesting level that is not redundant costs
/// at least one, so this is reached only by redundant parentheses.
const MAX_DEPTH: usize = 300;
/// DynamoDB's most operators and functions in one condition expression.
const MAX_OPERATORS: usize = 300;
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
        // Names and function names start with a letter (`_` may only follow one).
        let tok = if c.is_ascii_alphabetic() {
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
    /// Operators and functions read so far in a condition (comparisons, BETWEEN, IN, AND,
    /// OR, NOT, function calls).
    ops: usize,
    /// In conditions a reserved word used as a name is reported only when the whole
    /// expression parses (syntax errors come first); the first one is kept here.
    defer_reserved: bool,
    reserved: Option<String>,
    /// The words of the grammar being parsed, which cannot name an attribute (a condition's
    /// AND, OR…; an update's SET, REMOVE…; none in a projection).
    grammar_word: fn(&str) -> bool,
    /// Parsing an UpdateExpression: an unknown function or a repeated section is reported
    /// after the parse.
    unknown_function: Option<DdbError>,
    repeated_section: Option<DdbError>,
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
            ops: 0,
            defer_reserved: false,
            reserved: None,
            grammar_word: is_keyword,
            unknown_function: None,
            repeated_section: None,
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
    /// One more operator or function in a condition; DynamoDB takes at most 300.
    fn operator(&mut self) -> Result<(), DdbError> {
        self.ops += 1;
        if self.ops > MAX_OPERATORS {
            return Err(DdbError::validation(format!(
                "Invalid {}: The expression contains too many operators; operator count: {}",
                self.kind, self.ops
            )));
        }
        Ok(())
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
        let first = self.path_name()?;
        self.path_tail(Path(vec![first]))
    }

    /// The `.name` and `[n]` steps that may follow the start of a path.
    fn path_tail(&mut self, start: Path) -> Result<Path, DdbError> {
        let mut elems = start.0;
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
                if self.defer_reserved {
                    // The grammar's own words cannot name an attribute.
                    if (self.grammar_word)(&n) {
                        return Err(self.err());
                    }
                    if is_reserved(&n) && self.reserved.is_none() {
                        self.reserved = Some(n.clone());
                    }
                } else if is_reserved(&n) {
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

    fn invalid_function(&self, f: &str) -> DdbError {
        DdbError::validation(format!(
            "Invalid {}: Invalid function name; function: {f}",
            self.kind
        ))
    }

    // ---- conditions as written (checked and lowered by `check`) ----

    fn g_or(&mut self) -> Result<GCond, DdbError> {
        let mut l = self.g_and()?;
        while self.is_kw("OR") {
            self.bump();
            self.operator()?;
            let r = self.g_and()?;
            l = GCond::Or(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn g_and(&mut self) -> Result<GCond, DdbError> {
        let mut l = self.g_not()?;
        while self.is_kw("AND") {
            self.bump();
            self.operator()?;
            let r = self.g_not()?;
            l = GCond::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn g_not(&mut self) -> Result<GCond, DdbError> {
        if self.is_kw("NOT") {
            self.bump();
            self.operator()?;
            self.enter()?;
            let c = deeper(|| self.g_not())?;
            self.depth -= 1;
            return Ok(GCond::Not(Box::new(c)));
        }
        self.g_primary()
    }

    /// `(` starts either a parenthesized operand (`(a) = b`) or a parenthesized condition;
    /// the operand reading is tried first, as DynamoDB's grammar does.
    fn g_primary(&mut self) -> Result<GCond, DdbError> {
        if !self.is_sym("(") {
            return self.g_leaf();
        }
        let (pos, depth, ops, reserved) = (self.pos, self.depth, self.ops, self.reserved.clone());
        let first = match deeper(|| self.g_leaf()) {
            Ok(c) => return Ok(c),
            Err(e) => (self.pos, e),
        };
        (self.pos, self.depth, self.ops, self.reserved) = (pos, depth, ops, reserved);
        self.bump();
        self.enter()?;
        let inner = deeper(|| self.g_or()).and_then(|c| {
            self.depth -= 1;
            self.expect(")")?;
            Ok(c)
        });
        match inner {
            Ok(c) => Ok(c),
            // Report the error found furthest into the expression.
            Err(e) if self.pos >= first.0 => Err(e),
            Err(_) => Err(first.1),
        }
    }

    fn g_leaf(&mut self) -> Result<GCond, DdbError> {
        let a = self.g_operand()?;
        let op = match self.peek() {
            Tok::Sym("=") => CmpOp::Eq,
            Tok::Sym("<>") => CmpOp::Ne,
            Tok::Sym("<") => CmpOp::Lt,
            Tok::Sym("<=") => CmpOp::Le,
            Tok::Sym(">") => CmpOp::Gt,
            Tok::Sym(">=") => CmpOp::Ge,
            Tok::Ident(k) if k.eq_ignore_ascii_case("BETWEEN") => {
                self.bump();
                self.operator()?;
                let lo = self.g_operand()?;
                if !self.is_kw("AND") {
                    return Err(self.err());
                }
                self.bump();
                let hi = self.g_operand()?;
                return Ok(GCond::Between(a, lo, hi));
            }
            Tok::Ident(k) if k.eq_ignore_ascii_case("IN") => {
                self.bump();
                self.operator()?;
                self.expect("(")?;
                let list = self.g_operands()?;
                self.expect(")")?;
                if list.len() > 100 {
                    return Err(DdbError::validation(format!(
                        "Invalid {}: The IN operator is provided with too many operands; number of operands: {}",
                        self.kind,
                        list.len()
                    )));
                }
                return Ok(GCond::In(a, list));
            }
            _ => {
                return match a {
                    GOp::Func(name, args) => Ok(GCond::Func(name, args)),
                    _ => Err(self.err()),
                };
            }
        };
        self.bump();
        self.operator()?;
        let b = self.g_operand()?;
        Ok(GCond::Cmp(a, op, b))
    }

    fn g_operands(&mut self) -> Result<Vec<GOp>, DdbError> {
        let mut v = vec![self.g_operand()?];
        while self.is_sym(",") {
            self.bump();
            v.push(self.g_operand()?);
        }
        Ok(v)
    }

    /// An operand: a path (possibly parenthesized and then continued: `(a.b).c`), a value,
    /// or any function call with any operands (checked later).
    fn g_operand(&mut self) -> Result<GOp, DdbError> {
        if self.is_sym("(") {
            self.bump();
            self.enter()?;
            let inner = deeper(|| self.g_operand())?;
            self.depth -= 1;
            self.expect(")")?;
            return match inner {
                GOp::Path(p) => Ok(GOp::Path(self.path_tail(p)?)),
                other => Ok(other),
            };
        }
        if let Some(f) = self.func_name()
            && !is_keyword(&f)
        {
            self.bump();
            self.bump();
            self.operator()?;
            self.enter()?;
            let args = deeper(|| self.g_operands())?;
            self.depth -= 1;
            self.expect(")")?;
            return Ok(GOp::Func(f, args));
        }
        match self.peek().clone() {
            Tok::ValuePh(v) => {
                self.bump();
                Ok(GOp::Value(v))
            }
            Tok::Ident(_) | Tok::NamePh(_) => Ok(GOp::Path(self.path()?)),
            _ => Err(self.err()),
        }
    }

    /// The right-hand side of a SET action: an operand, or two joined by `+` / `-`; any of
    /// them may be parenthesized (`set b = ((c[1]) + (b.a))` is valid DynamoDB).
    fn u_value(&mut self) -> Result<UValue, DdbError> {
        let a = self.u_value_atom()?;
        let plus = if self.is_sym("+") {
            true
        } else if self.is_sym("-") {
            false
        } else {
            return Ok(a);
        };
        let UValue::Op(a) = a else {
            return Err(self.err());
        };
        self.bump();
        let UValue::Op(b) = self.u_value_atom()? else {
            return Err(self.err());
        };
        Ok(if plus {
            UValue::Plus(a, b)
        } else {
            UValue::Minus(a, b)
        })
    }

    fn u_value_atom(&mut self) -> Result<UValue, DdbError> {
        if self.is_sym("(") {
            self.bump();
            self.enter()?;
            let v = self.u_value()?;
            self.depth -= 1;
            self.expect(")")?;
            return Ok(v);
        }
        Ok(UValue::Op(self.u_operand()?))
    }

    /// An operand of a SET action as written (a condition's operand grammar: a path, a value,
    /// or a call of any function with any operands, checked after the parse); an unknown
    /// function, innermost first, is remembered to be reported after the parse.
    fn u_operand(&mut self) -> Result<GOp, DdbError> {
        let o = self.g_operand()?;
        self.note_update_functions(&o);
        Ok(o)
    }

    fn note_update_functions(&mut self, o: &GOp) {
        let GOp::Func(f, args) = o else {
            return;
        };
        args.iter().for_each(|a| self.note_update_functions(a));
        if !matches!(f.as_str(), "if_not_exists" | "list_append") && self.unknown_function.is_none()
        {
            self.unknown_function = Some(if is_cond_function(f) || f == "size" {
                DdbError::validation(format!(
                    "Invalid UpdateExpression: The function is not allowed in an update expression; function: {f}"
                ))
            } else {
                self.invalid_function(f)
            });
        }
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

    /// The actions of an UpdateExpression in written order.
    fn update_actions(&mut self) -> Result<Vec<UAction>, DdbError> {
        let mut actions = Vec::new();
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
            if seen[clause] && self.repeated_section.is_none() {
                let name = ["SET", "REMOVE", "ADD", "DELETE"][clause];
                self.repeated_section = Some(DdbError::validation(format!(
                    "Invalid UpdateExpression: The \"{name}\" section can only be used once in an update expression;"
                )));
            }
            seen[clause] = true;
            self.bump();
            loop {
                let p = self.path()?;
                actions.push(match clause {
                    0 => {
                        self.expect("=")?;
                        UAction::Set(p, self.u_value()?)
                    }
                    1 => UAction::Remove(p),
                    2 => UAction::Add(p, self.value_ph()?),
                    _ => UAction::Delete(p, self.value_ph()?),
                });
                if self.is_sym(",") {
                    self.bump();
                } else {
                    break;
                }
            }
        }
        Ok(actions)
    }
}

fn is_cond_function(f: &str) -> bool {
    matches!(
        f,
        "attribute_exists" | "attribute_not_exists" | "attribute_type" | "begins_with" | "contains"
    )
}

/// Whether `w` starts a section of the update grammar (never an attribute name there).
fn is_section(w: &str) -> bool {
    ["SET", "REMOVE", "ADD", "DELETE"]
        .iter()
        .any(|k| w.eq_ignore_ascii_case(k))
}

/// Whether `w` is a word of the condition grammar (never an attribute or function name).
fn is_keyword(w: &str) -> bool {
    ["AND", "OR", "NOT", "BETWEEN", "IN"]
        .iter()
        .any(|k| w.eq_ignore_ascii_case(k))
}

/// Whether the tokens hold redundant parentheses: `((x))` where both pairs enclose the same
/// thing, other than a function's or IN's own parentheses around a parenthesized operand.
fn redundant_parens(toks: &[Token]) -> bool {
    let mut open = Vec::new();
    let mut close_of = vec![usize::MAX; toks.len()];
    for (i, t) in toks.iter().enumerate() {
        match t.tok {
            Tok::Sym("(") => open.push(i),
            Tok::Sym(")") => {
                if let Some(o) = open.pop() {
                    close_of[o] = i;
                }
            }
            _ => {}
        }
    }
    (0..toks.len().saturating_sub(1)).any(|i| {
        let call = i > 0 && matches!(&toks[i - 1].tok, Tok::Ident(w) if !is_keyword(w) || w.eq_ignore_ascii_case("IN"));
        !call
            && toks[i].tok == Tok::Sym("(")
            && toks[i + 1].tok == Tok::Sym("(")
            && close_of[i] != usize::MAX
            && close_of[i + 1] != usize::MAX
            && close_of[i + 1] + 1 == close_of[i]
    })
}

fn parse_written(src: &str, kind: &str) -> Result<(GCond, bool, Option<String>), DdbError> {
    let mut p = Parser::new(src, kind)?;
    p.defer_reserved = true;
    let c = p.g_or()?;
    p.end()?;
    Ok((c, redundant_parens(&p.toks), p.reserved))
}

/// Parse a condition; `kind` names the request parameter for messages ("ConditionExpression").
/// Placeholders are not looked at (see [`parse_condition_ctx`]).
pub fn parse_condition(src: &str, kind: &str) -> Result<Cond, DdbError> {
    let (c, parens, reserved) = parse_written(src, kind)?;
    check(&c, kind, parens, reserved.as_deref(), None)
}

/// Parse a condition and make every check DynamoDB makes before reading an item, with the
/// request's placeholders.
pub fn parse_condition_ctx(src: &str, kind: &str, ctx: &Ctx) -> Result<Cond, DdbError> {
    let (c, parens, reserved) = parse_written(src, kind)?;
    check(&c, kind, parens, reserved.as_deref(), Some(ctx))
}

/// Parse an UpdateExpression; placeholders are not looked at (see [`parse_update_ctx`]).
pub fn parse_update(src: &str) -> Result<Update, DdbError> {
    parse_update_with(src, None)
}

/// Parse an UpdateExpression and make every check DynamoDB makes before it looks at the
/// table, with the request's placeholders.
pub fn parse_update_ctx(src: &str, ctx: &Ctx) -> Result<Update, DdbError> {
    parse_update_with(src, Some(ctx))
}

fn parse_update_with(src: &str, ctx: Option<&Ctx>) -> Result<Update, DdbError> {
    let mut p = Parser::new(src, "UpdateExpression")?;
    p.defer_reserved = true;
    p.grammar_word = is_section;
    let actions = p.update_actions()?;
    p.end()?;
    if let Some(r) = p.reserved {
        return Err(DdbError::validation(format!(
            "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: {r}"
        )));
    }
    if let Some(e) = p.unknown_function.or(p.repeated_section) {
        return Err(e);
    }
    super::update_check::check(actions, ctx)
}

/// Parse a ProjectionExpression; placeholders are not looked at (see
/// [`parse_projection_ctx`]).
pub fn parse_projection(src: &str) -> Result<Vec<Path>, DdbError> {
    let (paths, reserved) = projection_paths(src)?;
    match reserved {
        Some(r) => Err(reserved_word(&r)),
        None => Ok(paths),
    }
}

fn reserved_word(r: &str) -> DdbError {
    DdbError::validation(format!(
        "Invalid ProjectionExpression: Attribute name is a reserved keyword; reserved keyword: {r}"
    ))
}

/// Parse a ProjectionExpression and make DynamoDB's checks on it in its order: a reserved
/// word (after any syntax error), an undefined name, overlapping and conflicting paths.
/// Returns the paths as written and resolved.
pub fn parse_projection_ctx(src: &str, ctx: &Ctx) -> Result<(Vec<Path>, Vec<Vec<Seg>>), DdbError> {
    let (paths, reserved) = projection_paths(src)?;
    if let Some(r) = reserved {
        return Err(reserved_word(&r));
    }
    let undefined = paths.iter().flat_map(|p| &p.0).find_map(|e| match e {
        PathElem::Placeholder(n) if !ctx.names.contains_key(n) => Some(n),
        _ => None,
    });
    if let Some(n) = undefined {
        return Err(DdbError::validation(format!(
            "Invalid ProjectionExpression: An expression attribute name used in the document path is not defined; attribute name: {n}"
        )));
    }
    let resolved = paths
        .iter()
        .map(|p| ctx.resolve(p))
        .collect::<Result<Vec<_>, _>>()?;
    check_overlap(&resolved, "ProjectionExpression")?;
    Ok((paths, resolved))
}

/// The paths of a projection, and its first reserved word used as a name.
fn projection_paths(src: &str) -> Result<(Vec<Path>, Option<String>), DdbError> {
    let mut p = Parser::new(src, "ProjectionExpression")?;
    p.defer_reserved = true;
    p.grammar_word = |_| false;
    let mut v = vec![p.path()?];
    while p.is_sym(",") {
        p.bump();
        v.push(p.path()?);
    }
    p.end()?;
    Ok((v, p.reserved))
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

    /// DynamoDB's answers as recorded by dynalite's GetItem tests: syntax before a reserved
    /// word, then an undefined name, then an overlap before an earlier conflict.
    #[test]
    fn projection_problems_come_in_dynamodb_order() {
        let ctx = Ctx {
            names: [("#a".to_string(), "a".to_string())].into(),
            values: Default::default(),
        };
        let msg = |src: &str| parse_projection_ctx(src, &ctx).unwrap_err().message;
        assert!(msg("abort,").contains("Syntax error;"));
        assert_eq!(
            msg("abort, #b"),
            "Invalid ProjectionExpression: Attribute name is a reserved keyword; reserved keyword: abort"
        );
        assert_eq!(
            msg("a, #b"),
            "Invalid ProjectionExpression: An expression attribute name used in the document path is not defined; attribute name: #b"
        );
        assert_eq!(
            msg("b[1], b.a, #a.b, a"),
            "Invalid ProjectionExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a]"
        );
        assert_eq!(
            msg("b[1], b.a"),
            "Invalid ProjectionExpression: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [b, [1]], path two: [b, a]"
        );
        let (_, resolved) = parse_projection_ctx("#a.b, c[2]", &ctx).unwrap();
        assert_eq!(
            resolved,
            vec![
                vec![Seg::Key("a".into()), Seg::Key("b".into())],
                vec![Seg::Key("c".into()), Seg::Idx(2)]
            ]
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
