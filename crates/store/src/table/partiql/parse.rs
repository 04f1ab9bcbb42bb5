//! The recursive-descent parser. It binds as it parses: every attribute name becomes an
//! expression-name placeholder and every literal or `?` parameter an expression-value
//! placeholder of one [`Ctx`], so WHERE clauses come out as the expression language's
//! [`Cond`] and SET / REMOVE clauses as its [`Update`], evaluated by the same code as
//! ConditionExpression and UpdateExpression.

use std::collections::{BTreeMap, HashMap};

use super::lex::{Tok, lex};
use super::malformed;
use crate::table::error::DdbError;
use crate::table::expr::ast::{SetOperand, SetValue};
use crate::table::expr::{CmpOp, Cond, Ctx, Operand, Path, PathElem, Seg, Update};
use crate::table::items::ReturnValues;
use crate::table::value::{AttrValue, Item, parse_number};

/// A parsed statement; its placeholders are defined in [`Parsed::ctx`].
#[derive(Debug, Clone)]
pub enum Statement {
    Select(Select),
    Insert {
        table: String,
        item: Item,
    },
    Update {
        table: String,
        update: Update,
        cond: Cond,
        returning: ReturnValues,
    },
    Delete {
        table: String,
        cond: Cond,
        returning: ReturnValues,
    },
    /// `EXISTS(SELECT ...)`: a transaction's condition check.
    Exists(Select),
}

#[derive(Debug, Clone)]
pub struct Select {
    pub table: String,
    pub index: Option<String>,
    /// `None` for `*`.
    pub proj: Option<Vec<Vec<Seg>>>,
    pub cond: Option<Cond>,
    /// `ORDER BY path [ASC|DESC]`: the path and whether it is descending.
    pub order: Option<(Vec<Seg>, bool)>,
}

impl Statement {
    pub fn table(&self) -> &str {
        match self {
            Statement::Select(s) | Statement::Exists(s) => &s.table,
            Statement::Insert { table, .. }
            | Statement::Update { table, .. }
            | Statement::Delete { table, .. } => table,
        }
    }
    pub fn is_read(&self) -> bool {
        matches!(self, Statement::Select(_))
    }
}

#[derive(Debug, Clone)]
pub struct Parsed {
    pub stmt: Statement,
    pub ctx: Ctx,
}

/// Words that cannot be used bare as a table or attribute name (quote them: `"value"`).
pub(super) const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "IN",
    "BETWEEN",
    "IS",
    "MISSING",
    "NULL",
    "TRUE",
    "FALSE",
    "INSERT",
    "INTO",
    "VALUE",
    "VALUES",
    "UPDATE",
    "SET",
    "REMOVE",
    "DELETE",
    "RETURNING",
    "ORDER",
    "BY",
    "ASC",
    "DESC",
    "LIMIT",
    "JOIN",
    "GROUP",
    "HAVING",
    "AS",
    "EXISTS",
];

fn is_keyword(w: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(w))
}

/// Parse `src`, binding its `?` parameters to `params` in order.
pub fn parse(src: &str, params: &[AttrValue]) -> Result<Parsed, DdbError> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        pos: 0,
        params,
        used_params: 0,
        ctx: Ctx::default(),
        name_of: HashMap::new(),
    };
    let stmt = p.statement()?;
    if p.pos < p.toks.len() {
        return Err(p.unexpected());
    }
    // DynamoDB counts the parameters once the statement is known to be well formed.
    if p.used_params != params.len() {
        return Err(DdbError::validation(
            "Number of parameters in request and statement don't match.",
        ));
    }
    Ok(Parsed { stmt, ctx: p.ctx })
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    params: &'a [AttrValue],
    used_params: usize,
    ctx: Ctx,
    /// Attribute name -> its placeholder, so one name has one placeholder.
    name_of: HashMap<String, String>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos + n)
    }
    fn bump(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn unexpected(&self) -> DdbError {
        match self.peek() {
            None => malformed("Unexpected end of statement"),
            Some(Tok::Word(w)) if is_keyword(w) => {
                malformed(&format!("Unexpected keyword: {}", w.to_uppercase()))
            }
            Some(t) => malformed(&format!("Unexpected token: {t}")),
        }
    }

    fn is_kw(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(k))
    }
    fn eat_kw(&mut self, k: &str) -> bool {
        let yes = self.is_kw(k);
        if yes {
            self.pos += 1;
        }
        yes
    }
    fn expect_kw(&mut self, k: &str) -> Result<(), DdbError> {
        if self.eat_kw(k) {
            Ok(())
        } else {
            Err(self.expected(k))
        }
    }
    fn is_sym(&self, s: &str) -> bool {
        matches!(self.peek(), Some(Tok::Sym(x)) if *x == s)
    }
    fn eat_sym(&mut self, s: &str) -> bool {
        let yes = self.is_sym(s);
        if yes {
            self.pos += 1;
        }
        yes
    }
    fn expect_sym(&mut self, s: &str) -> Result<(), DdbError> {
        if self.eat_sym(s) {
            Ok(())
        } else {
            Err(self.expected(s))
        }
    }
    fn expected(&self, what: &str) -> DdbError {
        match self.peek() {
            None => malformed(&format!("Expected {what} but the statement ended")),
            Some(t) => malformed(&format!("Expected {what} but found {t}")),
        }
    }

    fn statement(&mut self) -> Result<Statement, DdbError> {
        if self.eat_kw("SELECT") {
            return self.select().map(Statement::Select);
        }
        if self.is_function("EXISTS") {
            self.pos += 2;
            self.expect_kw("SELECT")?;
            let s = self.select()?;
            self.expect_sym(")")?;
            return Ok(Statement::Exists(s));
        }
        if self.eat_kw("INSERT") {
            self.expect_kw("INTO")?;
            let table = self.write_target()?;
            if !self.eat_kw("VALUE") {
                return Err(self.expected("VALUE"));
            }
            let item = match self.literal()? {
                AttrValue::M(m) => m,
                other => {
                    return Err(malformed(&format!(
                        "INSERT needs a tuple ({{'attribute': value, ...}}) after VALUE, not a value of type {}",
                        other.type_name()
                    )));
                }
            };
            return Ok(Statement::Insert { table, item });
        }
        if self.eat_kw("UPDATE") {
            let table = self.write_target()?;
            let update = self.update_actions()?;
            self.expect_kw("WHERE")?;
            let cond = self.cond()?;
            let returning = self.returning()?;
            return Ok(Statement::Update {
                table,
                update,
                cond,
                returning,
            });
        }
        if self.eat_kw("DELETE") {
            self.expect_kw("FROM")?;
            let table = self.write_target()?;
            self.expect_kw("WHERE")?;
            let cond = self.cond()?;
            let returning = self.returning()?;
            if !matches!(returning, ReturnValues::None | ReturnValues::AllOld) {
                return Err(DdbError::validation(
                    "Invalid returning clause: only RETURNING ALL OLD * is allowed in DELETE statements",
                ));
            }
            return Ok(Statement::Delete {
                table,
                cond,
                returning,
            });
        }
        Err(malformed("Expected data manipulation"))
    }

    /// A bare or quoted name (not a keyword).
    fn name(&mut self) -> Result<String, DdbError> {
        match self.peek() {
            Some(Tok::Quoted(q)) => {
                let q = q.clone();
                self.pos += 1;
                Ok(q)
            }
            Some(Tok::Word(w)) if !is_keyword(w) => {
                let w = w.clone();
                self.pos += 1;
                Ok(w)
            }
            _ => Err(self.unexpected()),
        }
    }

    /// `table` or `table.index`.
    fn target(&mut self) -> Result<(String, Option<String>), DdbError> {
        let table = self.name()?;
        let index = if self.eat_sym(".") {
            Some(self.name()?)
        } else {
            None
        };
        Ok((table, index))
    }

    fn write_target(&mut self) -> Result<String, DdbError> {
        match self.target()? {
            (t, None) => Ok(t),
            (_, Some(_)) => Err(DdbError::validation(
                "This operation is not supported on an index",
            )),
        }
    }

    fn select(&mut self) -> Result<Select, DdbError> {
        let proj = if self.eat_sym("*") {
            None
        } else {
            let mut paths = vec![self.path()?];
            while self.eat_sym(",") {
                paths.push(self.path()?);
            }
            Some(paths)
        };
        self.expect_kw("FROM")?;
        let (table, index) = self.target()?;
        let cond = if self.eat_kw("WHERE") {
            Some(self.cond()?)
        } else {
            None
        };
        let order = if self.eat_kw("ORDER") {
            self.expect_kw("BY")?;
            let p = self.path()?;
            let desc = if self.eat_kw("DESC") {
                true
            } else {
                self.eat_kw("ASC");
                false
            };
            Some((p, desc))
        } else {
            None
        };
        Ok(Select {
            table,
            index,
            proj,
            cond,
            order,
        })
    }

    /// A document path: `a`, `"a b".c[2]`, `m['key']`.
    fn path(&mut self) -> Result<Vec<Seg>, DdbError> {
        let mut segs = vec![Seg::Key(self.name()?)];
        loop {
            if self.eat_sym(".") {
                segs.push(Seg::Key(self.name()?));
            } else if self.eat_sym("[") {
                match self.bump() {
                    Some(Tok::Num(n)) => {
                        let i = n.parse::<u32>().map_err(|_| {
                            malformed(&format!("A list index must be a whole number, not {n}"))
                        })?;
                        segs.push(Seg::Idx(i as usize));
                    }
                    Some(Tok::Str(s)) => segs.push(Seg::Key(s)),
                    _ => {
                        self.pos -= 1;
                        return Err(self.unexpected());
                    }
                }
                self.expect_sym("]")?;
            } else {
                return Ok(segs);
            }
        }
    }

    /// The expression-language path for `segs`, its names bound as placeholders.
    fn bind_path(&mut self, segs: &[Seg]) -> Path {
        Path(
            segs.iter()
                .map(|s| match s {
                    Seg::Key(k) => {
                        let n = self.name_of.len();
                        let ph = self
                            .name_of
                            .entry(k.clone())
                            .or_insert_with(|| format!("#p{n}"))
                            .clone();
                        self.ctx.names.insert(ph.clone(), k.clone());
                        PathElem::Placeholder(ph)
                    }
                    Seg::Idx(i) => PathElem::Index(*i as u32),
                })
                .collect(),
        )
    }

    fn bind_value(&mut self, v: AttrValue) -> String {
        let ph = format!(":p{}", self.ctx.values.len());
        self.ctx.values.insert(ph.clone(), v);
        ph
    }

    fn next_param(&mut self) -> AttrValue {
        let v = self
            .params
            .get(self.used_params)
            .cloned()
            // Counted, and refused once the whole statement has parsed.
            .unwrap_or(AttrValue::Null);
        self.used_params += 1;
        v
    }

    fn is_literal_start(&self) -> bool {
        match self.peek() {
            Some(Tok::Str(_) | Tok::Num(_) | Tok::Param) => true,
            Some(Tok::Sym(s)) => matches!(*s, "[" | "{" | "<<" | "-"),
            Some(Tok::Word(w)) => ["TRUE", "FALSE", "NULL"]
                .iter()
                .any(|k| k.eq_ignore_ascii_case(w)),
            _ => false,
        }
    }

    /// A literal value: `'s'`, `-1.5`, `TRUE`, `NULL`, `?`, `[..]`, `{'k': v}`, `<<..>>`.
    fn literal(&mut self) -> Result<AttrValue, DdbError> {
        let Some(t) = self.bump() else {
            return Err(malformed("Unexpected end of statement"));
        };
        Ok(match t {
            Tok::Str(s) => AttrValue::S(s),
            Tok::Num(n) => AttrValue::N(parse_number(&n)?),
            Tok::Sym("-") => match self.bump() {
                Some(Tok::Num(n)) => AttrValue::N(parse_number(&format!("-{n}"))?),
                _ => {
                    self.pos -= 1;
                    return Err(self.unexpected());
                }
            },
            Tok::Param => self.next_param(),
            Tok::Word(w) if w.eq_ignore_ascii_case("TRUE") => AttrValue::Bool(true),
            Tok::Word(w) if w.eq_ignore_ascii_case("FALSE") => AttrValue::Bool(false),
            Tok::Word(w) if w.eq_ignore_ascii_case("NULL") => AttrValue::Null,
            Tok::Sym("[") => {
                let mut l = Vec::new();
                if !self.eat_sym("]") {
                    loop {
                        l.push(self.literal()?);
                        if self.eat_sym("]") {
                            break;
                        }
                        self.expect_sym(",")?;
                    }
                }
                AttrValue::L(l)
            }
            Tok::Sym("{") => {
                let mut m = BTreeMap::new();
                if !self.eat_sym("}") {
                    loop {
                        let k = match self.bump() {
                            Some(Tok::Str(k) | Tok::Quoted(k)) => k,
                            _ => {
                                self.pos -= 1;
                                return Err(self.unexpected());
                            }
                        };
                        self.expect_sym(":")?;
                        let v = self.literal()?;
                        if m.insert(k.clone(), v).is_some() {
                            return Err(DdbError::validation(format!(
                                "Duplicate attribute name in tuple: {k}"
                            )));
                        }
                        if self.eat_sym("}") {
                            break;
                        }
                        self.expect_sym(",")?;
                    }
                }
                AttrValue::M(m.into_iter().collect())
            }
            Tok::Sym("<<") => {
                let mut items = Vec::new();
                loop {
                    items.push(self.literal()?);
                    if self.eat_sym(">>") {
                        break;
                    }
                    self.expect_sym(",")?;
                }
                set_of(items)?
            }
            _ => {
                self.pos -= 1;
                return Err(self.unexpected());
            }
        })
    }

    /// A comparison operand: a path, `size(path)` or a literal.
    fn operand(&mut self) -> Result<Operand, DdbError> {
        if self.is_literal_start() {
            let v = self.literal()?;
            return Ok(Operand::Value(self.bind_value(v)));
        }
        if self.is_function("size") {
            self.pos += 2;
            let p = self.path()?;
            self.expect_sym(")")?;
            return Ok(Operand::Size(self.bind_path(&p)));
        }
        let p = self.path()?;
        Ok(Operand::Path(self.bind_path(&p)))
    }

    fn is_function(&self, f: &str) -> bool {
        self.is_kw(f) && matches!(self.peek_at(1), Some(Tok::Sym("(")))
    }

    pub fn cond(&mut self) -> Result<Cond, DdbError> {
        let mut c = self.and()?;
        while self.eat_kw("OR") {
            let r = self.and()?;
            c = Cond::Or(Box::new(c), Box::new(r));
        }
        Ok(c)
    }

    fn and(&mut self) -> Result<Cond, DdbError> {
        let mut c = self.not()?;
        while self.eat_kw("AND") {
            let r = self.not()?;
            c = Cond::And(Box::new(c), Box::new(r));
        }
        Ok(c)
    }

    fn not(&mut self) -> Result<Cond, DdbError> {
        if self.eat_kw("NOT") {
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Cond, DdbError> {
        if self.eat_sym("(") {
            let c = self.cond()?;
            self.expect_sym(")")?;
            return Ok(c);
        }
        for f in [
            "attribute_exists",
            "attribute_not_exists",
            "attribute_type",
            "begins_with",
            "contains",
        ] {
            if self.is_function(f) {
                self.pos += 2;
                let c = self.function(f)?;
                self.expect_sym(")")?;
                return Ok(c);
            }
        }
        let a = self.operand()?;
        let negated = self.eat_kw("NOT");
        if self.eat_kw("BETWEEN") {
            let lo = self.operand()?;
            self.expect_kw("AND")?;
            let hi = self.operand()?;
            return Ok(negate(Cond::Between(a, lo, hi), negated));
        }
        if self.eat_kw("IN") {
            let close = if self.eat_sym("[") {
                "]"
            } else if self.eat_sym("(") {
                ")"
            } else {
                return Err(self.expected("[ after IN"));
            };
            let mut list = vec![self.operand()?];
            while self.eat_sym(",") {
                list.push(self.operand()?);
            }
            self.expect_sym(close)?;
            if list.len() > 100 {
                return Err(DdbError::validation(
                    "IN operator supports at most 100 values",
                ));
            }
            return Ok(negate(Cond::In(a, list), negated));
        }
        if negated {
            return Err(self.expected("BETWEEN or IN after NOT"));
        }
        if self.eat_kw("IS") {
            let not = self.eat_kw("NOT");
            let Operand::Path(p) = a else {
                return Err(malformed("IS MISSING and IS NULL apply to attribute paths"));
            };
            let c = if self.eat_kw("MISSING") {
                Cond::AttributeNotExists(p)
            } else if self.eat_kw("NULL") {
                // In PartiQL a missing attribute IS NULL too.
                let null = Operand::Value(self.bind_value(AttrValue::S("NULL".into())));
                Cond::Or(
                    Box::new(Cond::AttributeNotExists(p.clone())),
                    Box::new(Cond::AttributeType(Operand::Path(p), null)),
                )
            } else {
                return Err(self.expected("MISSING or NULL"));
            };
            return Ok(negate(c, not));
        }
        let op = match self.peek() {
            Some(Tok::Sym("=")) => CmpOp::Eq,
            Some(Tok::Sym("<>" | "!=")) => CmpOp::Ne,
            Some(Tok::Sym("<")) => CmpOp::Lt,
            Some(Tok::Sym("<=")) => CmpOp::Le,
            Some(Tok::Sym(">")) => CmpOp::Gt,
            Some(Tok::Sym(">=")) => CmpOp::Ge,
            _ => return Err(self.expected("a comparison")),
        };
        self.pos += 1;
        let b = self.operand()?;
        Ok(Cond::Cmp(a, op, b))
    }

    /// The arguments of a condition function (after its `(`).
    fn function(&mut self, f: &str) -> Result<Cond, DdbError> {
        Ok(match f {
            "attribute_exists" | "attribute_not_exists" => {
                let p = self.path()?;
                let p = self.bind_path(&p);
                if f == "attribute_exists" {
                    Cond::AttributeExists(p)
                } else {
                    Cond::AttributeNotExists(p)
                }
            }
            "attribute_type" => {
                let p = self.path()?;
                let p = self.bind_path(&p);
                self.expect_sym(",")?;
                Cond::AttributeType(Operand::Path(p), self.operand()?)
            }
            _ => {
                let a = self.operand()?;
                self.expect_sym(",")?;
                let b = self.operand()?;
                if f == "begins_with" {
                    Cond::BeginsWith(a, b)
                } else {
                    Cond::Contains(a, b)
                }
            }
        })
    }

    /// `SET path = value, ...` and `REMOVE path, ...` clauses, in any number and order.
    fn update_actions(&mut self) -> Result<Update, DdbError> {
        let mut u = Update::default();
        let mut any = false;
        loop {
            if self.eat_kw("SET") {
                loop {
                    self.assignment(&mut u)?;
                    if !self.eat_sym(",") {
                        break;
                    }
                }
            } else if self.eat_kw("REMOVE") {
                loop {
                    let p = self.path()?;
                    let p = self.bind_path(&p);
                    u.remove.push(p);
                    if !self.eat_sym(",") {
                        break;
                    }
                }
            } else if any {
                return Ok(u);
            } else {
                return Err(self.expected("SET or REMOVE"));
            }
            any = true;
        }
    }

    fn assignment(&mut self, u: &mut Update) -> Result<(), DdbError> {
        let target = self.path()?;
        self.expect_sym("=")?;
        for (f, add) in [("set_add", true), ("set_delete", false)] {
            if self.is_function(f) {
                self.pos += 2;
                let of = self.path()?;
                if of != target {
                    return Err(malformed(&format!(
                        "{f} must name the attribute it assigns to"
                    )));
                }
                self.expect_sym(",")?;
                let v = self.literal()?;
                self.expect_sym(")")?;
                let path = self.bind_path(&target);
                let v = self.bind_value(v);
                if add {
                    u.add.push((path, v));
                } else {
                    u.delete.push((path, v));
                }
                return Ok(());
            }
        }
        let a = self.set_operand()?;
        let v = if self.eat_sym("+") {
            SetValue::Plus(a, self.set_operand()?)
        } else if self.eat_sym("-") {
            SetValue::Minus(a, self.set_operand()?)
        } else {
            SetValue::Operand(a)
        };
        let path = self.bind_path(&target);
        u.set.push((path, v));
        Ok(())
    }

    fn set_operand(&mut self) -> Result<SetOperand, DdbError> {
        if self.is_function("list_append") {
            self.pos += 2;
            let a = self.set_operand()?;
            self.expect_sym(",")?;
            let b = self.set_operand()?;
            self.expect_sym(")")?;
            return Ok(SetOperand::ListAppend(Box::new(a), Box::new(b)));
        }
        if self.is_function("if_not_exists") {
            self.pos += 2;
            let p = self.path()?;
            let p = self.bind_path(&p);
            self.expect_sym(",")?;
            let d = self.set_operand()?;
            self.expect_sym(")")?;
            return Ok(SetOperand::IfNotExists(p, Box::new(d)));
        }
        if self.is_literal_start() {
            let v = self.literal()?;
            return Ok(SetOperand::Value(self.bind_value(v)));
        }
        let p = self.path()?;
        Ok(SetOperand::Path(self.bind_path(&p)))
    }

    /// `RETURNING (ALL|MODIFIED) (OLD|NEW) *`, or nothing.
    fn returning(&mut self) -> Result<ReturnValues, DdbError> {
        if !self.eat_kw("RETURNING") {
            return Ok(ReturnValues::None);
        }
        let all = if self.eat_kw("ALL") {
            true
        } else if self.eat_kw("MODIFIED") {
            false
        } else {
            return Err(self.expected("ALL or MODIFIED"));
        };
        let old = if self.eat_kw("OLD") {
            true
        } else if self.eat_kw("NEW") {
            false
        } else {
            return Err(self.expected("OLD or NEW"));
        };
        self.expect_sym("*")?;
        Ok(match (all, old) {
            (true, true) => ReturnValues::AllOld,
            (true, false) => ReturnValues::AllNew,
            (false, true) => ReturnValues::UpdatedOld,
            (false, false) => ReturnValues::UpdatedNew,
        })
    }
}

fn negate(c: Cond, not: bool) -> Cond {
    if not { Cond::Not(Box::new(c)) } else { c }
}

/// A `<<...>>` literal: a string, number or binary set, checked as a set sent as an
/// AttributeValue is (no duplicates).
fn set_of(items: Vec<AttrValue>) -> Result<AttrValue, DdbError> {
    let member = items.first().map_or("", AttrValue::type_name);
    if !matches!(member, "S" | "N" | "B") || items.iter().any(|v| v.type_name() != member) {
        return Err(DdbError::validation(
            "A set literal must hold values of one type: S, N or B",
        ));
    }
    let members: Vec<serde_json::Value> =
        items.iter().map(|v| v.to_json()[member].clone()).collect();
    let mut wire = serde_json::Map::new();
    wire.insert(format!("{member}S"), serde_json::Value::Array(members));
    AttrValue::from_json(&serde_json::Value::Object(wire))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::expr::eval::{apply_update, eval_cond};
    use crate::table::value::item_from_json;
    use serde_json::json;

    fn av(v: serde_json::Value) -> AttrValue {
        AttrValue::from_json(&v).unwrap()
    }

    #[test]
    fn where_clauses_become_conditions() {
        let p = parse(
            r#"SELECT a, "b c".d[1] FROM "T"."ix" WHERE pk = ? AND (n BETWEEN 1 AND 10 OR begins_with(s, 'x')) AND z IS MISSING AND t IN ['a', 'b'] ORDER BY sk DESC"#,
            &[av(json!({"S": "k"}))],
        )
        .unwrap();
        let Statement::Select(s) = &p.stmt else {
            panic!("not a select: {:?}", p.stmt)
        };
        assert_eq!(s.table, "T");
        assert_eq!(s.index.as_deref(), Some("ix"));
        assert_eq!(
            s.proj.as_ref().unwrap()[1],
            vec![Seg::Key("b c".into()), Seg::Key("d".into()), Seg::Idx(1)]
        );
        assert_eq!(s.order, Some((vec![Seg::Key("sk".into())], true)));
        let cond = s.cond.as_ref().unwrap();
        let yes =
            item_from_json(&json!({"pk": {"S": "k"}, "n": {"N": "3"}, "t": {"S": "b"}})).unwrap();
        let no = item_from_json(
            &json!({"pk": {"S": "k"}, "n": {"N": "3"}, "t": {"S": "b"}, "z": {"NULL": true}}),
        )
        .unwrap();
        assert!(eval_cond(cond, &yes, &p.ctx, "WHERE").unwrap());
        assert!(!eval_cond(cond, &no, &p.ctx, "WHERE").unwrap());
    }

    #[test]
    fn set_and_remove_become_an_update() {
        let p = parse(
            "UPDATE t SET n = n + 1, l = list_append(l, [?]) SET s = set_add(s, <<'b'>>) REMOVE gone, m.x WHERE pk = 'k' RETURNING ALL NEW *",
            &[av(json!({"N": "7"}))],
        )
        .unwrap();
        let Statement::Update {
            update, returning, ..
        } = &p.stmt
        else {
            panic!("not an update")
        };
        assert_eq!(*returning, ReturnValues::AllNew);
        let mut item = item_from_json(&json!({
            "pk": {"S": "k"}, "n": {"N": "1"}, "l": {"L": [{"N": "1"}]}, "s": {"SS": ["a"]},
            "gone": {"S": "x"}, "m": {"M": {"x": {"N": "1"}, "y": {"N": "2"}}}
        }))
        .unwrap();
        apply_update(update, &mut item, &p.ctx).unwrap();
        assert_eq!(
            crate::table::value::item_to_json(&item),
            json!({
                "pk": {"S": "k"}, "n": {"N": "2"}, "l": {"L": [{"N": "1"}, {"N": "7"}]},
                "s": {"SS": ["a", "b"]}, "m": {"M": {"y": {"N": "2"}}}
            })
        );
    }

    #[test]
    fn literals_of_every_type() {
        let p = parse(
            "INSERT INTO t VALUE {'s': 'it''s', 'n': -1.5e2, 'b': TRUE, 'z': NULL, 'l': [1, 'a'], 'm': {'k': <<1, 2>>}, 'ss': <<'x', 'y'>>, 'p': ?}",
            &[av(json!({"B": "AAE="}))],
        )
        .unwrap();
        let Statement::Insert { item, .. } = p.stmt else {
            panic!("not an insert")
        };
        assert_eq!(
            crate::table::value::item_to_json(&item),
            json!({
                "s": {"S": "it's"}, "n": {"N": "-150"}, "b": {"BOOL": true}, "z": {"NULL": true},
                "l": {"L": [{"N": "1"}, {"S": "a"}]}, "m": {"M": {"k": {"NS": ["1", "2"]}}},
                "ss": {"SS": ["x", "y"]}, "p": {"B": "AAE="}
            })
        );
    }

    #[test]
    fn malformed_statements_are_refused_as_dynamodb_words_it() {
        let msg = |s: &str, n: usize| {
            parse(s, &vec![AttrValue::Null; n])
                .err()
                .map(|e| e.message)
                .unwrap_or_default()
        };
        assert_eq!(
            msg("CREATE TABLE t", 0),
            "Statement wasn't well formed, can't be processed: Expected data manipulation"
        );
        assert_eq!(
            msg("SELECT * FROM t WHERE", 0),
            "Statement wasn't well formed, can't be processed: Unexpected end of statement"
        );
        assert_eq!(
            msg("SELECT * FROM t WHERE a = 1 GROUP BY a", 0),
            "Statement wasn't well formed, can't be processed: Unexpected keyword: GROUP"
        );
        assert_eq!(
            msg("SELECT * FROM t WHERE a = ?", 2),
            "Number of parameters in request and statement don't match."
        );
        assert_eq!(
            msg("UPDATE t.ix SET a = 1 WHERE pk = 'k'", 0),
            "This operation is not supported on an index"
        );
        assert!(msg("SELECT * FROM t WHERE s = <<1, 'a'>>", 0).contains("one type"));
        assert!(msg("UPDATE t SET a = set_add(b, <<1>>) WHERE pk = 'k'", 0).contains("set_add"));
        assert!(msg("DELETE FROM t WHERE pk = 'k' RETURNING ALL NEW *", 0).contains("ALL OLD"));
    }
}
