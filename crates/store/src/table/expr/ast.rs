//! The syntax trees of DynamoDB's expressions. Placeholders (`#n`, `:v`) stay unresolved in
//! the tree so that `Display` prints back an expression that parses to the same tree.

use std::fmt;

/// One step of a document path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathElem {
    /// A plain attribute name as written in the expression.
    Name(String),
    /// An expression attribute name placeholder, including its `#`.
    Placeholder(String),
    /// A list index `[n]`.
    Index(u32),
}

/// A document path such as `a.#b[2].c`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Path(pub Vec<PathElem>);

/// An operand of a comparison or function in a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Path(Path),
    /// An expression attribute value placeholder, including its `:`.
    Value(String),
    Size(Path),
    /// `size(:v)`: the size of a value from the request.
    SizeOfValue(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A condition (ConditionExpression, FilterExpression, KeyConditionExpression).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    Cmp(Operand, CmpOp, Operand),
    Between(Operand, Operand, Operand),
    In(Operand, Vec<Operand>),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    AttributeExists(Path),
    AttributeNotExists(Path),
    /// The type of a path's value or of a value (DynamoDB takes `attribute_type(:v, :t)`).
    AttributeType(Operand, Operand),
    BeginsWith(Operand, Operand),
    Contains(Operand, Operand),
}

/// A value on the right of `SET path =`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetOperand {
    Path(Path),
    Value(String),
    IfNotExists(Path, Box<SetOperand>),
    ListAppend(Box<SetOperand>, Box<SetOperand>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetValue {
    Operand(SetOperand),
    Plus(SetOperand, SetOperand),
    Minus(SetOperand, SetOperand),
}

/// An UpdateExpression: each clause at most once, actions in written order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Update {
    pub set: Vec<(Path, SetValue)>,
    pub remove: Vec<Path>,
    pub add: Vec<(Path, String)>,
    pub delete: Vec<(Path, String)>,
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            match e {
                PathElem::Name(n) | PathElem::Placeholder(n) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(n)?;
                }
                PathElem::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Path(p) => write!(f, "{p}"),
            Operand::Value(v) => f.write_str(v),
            Operand::Size(p) => write!(f, "size({p})"),
            Operand::SizeOfValue(v) => write!(f, "size({v})"),
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        })
    }
}

impl fmt::Display for Cond {
    /// Fully parenthesises AND/OR/NOT operands so precedence never changes on re-parse.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cond::Cmp(a, op, b) => write!(f, "{a} {op} {b}"),
            Cond::Between(a, b, c) => write!(f, "{a} BETWEEN {b} AND {c}"),
            Cond::In(a, list) => {
                write!(f, "{a} IN (")?;
                for (i, x) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{x}")?;
                }
                f.write_str(")")
            }
            Cond::And(a, b) => write!(f, "({a}) AND ({b})"),
            Cond::Or(a, b) => write!(f, "({a}) OR ({b})"),
            Cond::Not(a) => write!(f, "NOT ({a})"),
            Cond::AttributeExists(p) => write!(f, "attribute_exists({p})"),
            Cond::AttributeNotExists(p) => write!(f, "attribute_not_exists({p})"),
            Cond::AttributeType(p, t) => write!(f, "attribute_type({p}, {t})"),
            Cond::BeginsWith(a, b) => write!(f, "begins_with({a}, {b})"),
            Cond::Contains(a, b) => write!(f, "contains({a}, {b})"),
        }
    }
}

impl fmt::Display for SetOperand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetOperand::Path(p) => write!(f, "{p}"),
            SetOperand::Value(v) => f.write_str(v),
            SetOperand::IfNotExists(p, v) => write!(f, "if_not_exists({p}, {v})"),
            SetOperand::ListAppend(a, b) => write!(f, "list_append({a}, {b})"),
        }
    }
}

impl fmt::Display for SetValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetValue::Operand(o) => write!(f, "{o}"),
            SetValue::Plus(a, b) => write!(f, "{a} + {b}"),
            SetValue::Minus(a, b) => write!(f, "{a} - {b}"),
        }
    }
}

impl fmt::Display for Update {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.set.is_empty() {
            let v: Vec<String> = self.set.iter().map(|(p, v)| format!("{p} = {v}")).collect();
            parts.push(format!("SET {}", v.join(", ")));
        }
        if !self.remove.is_empty() {
            let v: Vec<String> = self.remove.iter().map(|p| p.to_string()).collect();
            parts.push(format!("REMOVE {}", v.join(", ")));
        }
        if !self.add.is_empty() {
            let v: Vec<String> = self.add.iter().map(|(p, v)| format!("{p} {v}")).collect();
            parts.push(format!("ADD {}", v.join(", ")));
        }
        if !self.delete.is_empty() {
            let v: Vec<String> = self
                .delete
                .iter()
                .map(|(p, v)| format!("{p} {v}"))
                .collect();
            parts.push(format!("DELETE {}", v.join(", ")));
        }
        f.write_str(&parts.join(" "))
    }
}

/// Renders a projection list.
pub fn projection_to_string(paths: &[Path]) -> String {
    paths
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
