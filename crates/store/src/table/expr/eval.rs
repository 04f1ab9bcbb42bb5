//! Evaluating expressions against an item: conditions, projections and update actions.
//! Placeholders are resolved through [`Ctx`]; [`Ctx::check`] has already verified that
//! every placeholder is defined and every definition is used, as AWS does before running.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::ast::*;
use crate::table::error::DdbError;
use crate::table::value::{AttrValue, Item, Number};

/// The request's ExpressionAttributeNames / ExpressionAttributeValues.
#[derive(Debug, Default, Clone)]
pub struct Ctx {
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttrValue>,
}

/// Placeholders an expression uses.
#[derive(Debug, Default)]
pub struct Used {
    pub names: BTreeSet<String>,
    pub values: BTreeSet<String>,
}

impl Used {
    pub fn path(&mut self, p: &Path) {
        for e in &p.0 {
            if let PathElem::Placeholder(n) = e {
                self.names.insert(n.clone());
            }
        }
    }
    fn operand(&mut self, o: &Operand) {
        match o {
            Operand::Path(p) | Operand::Size(p) => self.path(p),
            Operand::Value(v) | Operand::SizeOfValue(v) => {
                self.values.insert(v.clone());
            }
        }
    }
    pub fn cond(&mut self, c: &Cond) {
        match c {
            Cond::Cmp(a, _, b) | Cond::BeginsWith(a, b) | Cond::Contains(a, b) => {
                self.operand(a);
                self.operand(b);
            }
            Cond::Between(a, b, d) => {
                self.operand(a);
                self.operand(b);
                self.operand(d);
            }
            Cond::In(a, l) => {
                self.operand(a);
                l.iter().for_each(|x| self.operand(x));
            }
            Cond::And(a, b) | Cond::Or(a, b) => {
                super::deeper(|| self.cond(a));
                super::deeper(|| self.cond(b));
            }
            Cond::Not(a) => super::deeper(|| self.cond(a)),
            Cond::AttributeExists(p) | Cond::AttributeNotExists(p) => self.path(p),
            Cond::AttributeType(a, t) => {
                self.operand(a);
                self.operand(t);
            }
        }
    }
    fn set_operand(&mut self, o: &SetOperand) {
        match o {
            SetOperand::Path(p) => self.path(p),
            SetOperand::Value(v) => {
                self.values.insert(v.clone());
            }
            SetOperand::IfNotExists(p, v) => {
                self.path(p);
                self.set_operand(v);
            }
            SetOperand::ListAppend(a, b) => {
                self.set_operand(a);
                self.set_operand(b);
            }
        }
    }
    pub fn update(&mut self, u: &Update) {
        for (p, v) in &u.set {
            self.path(p);
            match v {
                SetValue::Operand(a) => self.set_operand(a),
                SetValue::Plus(a, b) | SetValue::Minus(a, b) => {
                    self.set_operand(a);
                    self.set_operand(b);
                }
            }
        }
        u.remove.iter().for_each(|p| self.path(p));
        for (p, v) in u.add.iter().chain(u.delete.iter()) {
            self.path(p);
            self.values.insert(v.clone());
        }
    }
}

impl Ctx {
    /// AWS's up-front placeholder checks: every used one defined, every defined one used.
    pub fn check(&self, used: &Used) -> Result<(), DdbError> {
        for n in &used.names {
            if !self.names.contains_key(n) {
                return Err(DdbError::validation(format!(
                    "Invalid expression: An expression attribute name used in the document path is not defined; attribute name: {n}"
                )));
            }
        }
        for v in &used.values {
            if !self.values.contains_key(v) {
                return Err(DdbError::validation(format!(
                    "Invalid expression: An expression attribute value used in expression is not defined; attribute value: {v}"
                )));
            }
        }
        let unused: Vec<&String> = self
            .names
            .keys()
            .filter(|k| !used.names.contains(*k))
            .collect();
        if !unused.is_empty() {
            let mut u: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            u.sort();
            return Err(DdbError::validation(format!(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}",
                u.join(", ")
            )));
        }
        let unused: Vec<&String> = self
            .values
            .keys()
            .filter(|k| !used.values.contains(*k))
            .collect();
        if !unused.is_empty() {
            let mut u: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            u.sort();
            return Err(DdbError::validation(format!(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}",
                u.join(", ")
            )));
        }
        Ok(())
    }

    fn value(&self, v: &str) -> Result<&AttrValue, DdbError> {
        self.values.get(v).ok_or_else(|| {
            DdbError::validation(format!(
                "Invalid expression: An expression attribute value used in expression is not defined; attribute value: {v}"
            ))
        })
    }

    /// Resolve a path's placeholders.
    pub fn resolve(&self, p: &Path) -> Result<Vec<Seg>, DdbError> {
        p.0.iter()
            .map(|e| match e {
                PathElem::Name(n) => Ok(Seg::Key(n.clone())),
                PathElem::Placeholder(n) => self.names.get(n).map(|s| Seg::Key(s.clone())).ok_or_else(|| {
                    DdbError::validation(format!(
                        "Invalid expression: An expression attribute name used in the document path is not defined; attribute name: {n}"
                    ))
                }),
                PathElem::Index(i) => Ok(Seg::Idx(*i as usize)),
            })
            .collect()
    }
}

/// A resolved path step.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seg {
    Key(String),
    Idx(usize),
}

pub fn get_path<'a>(item: &'a Item, segs: &[Seg]) -> Option<&'a AttrValue> {
    let (first, rest) = segs.split_first()?;
    let Seg::Key(k) = first else { return None };
    let mut cur = item.get(k)?;
    for s in rest {
        cur = match (s, cur) {
            (Seg::Key(k), AttrValue::M(m)) => m.get(k)?,
            (Seg::Idx(i), AttrValue::L(l)) => l.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn operand<'a>(
    o: &Operand,
    item: &'a Item,
    ctx: &'a Ctx,
) -> Result<Option<Cow<'a, AttrValue>>, DdbError> {
    Ok(match o {
        Operand::Path(p) => get_path(item, &ctx.resolve(p)?).map(Cow::Borrowed),
        Operand::Value(v) => Some(Cow::Borrowed(ctx.value(v)?)),
        Operand::Size(p) => get_path(item, &ctx.resolve(p)?)
            .and_then(size_of)
            .map(|n| Cow::Owned(AttrValue::N(Number::from_i64(n as i64)))),
        Operand::SizeOfValue(v) => {
            size_of(ctx.value(v)?).map(|n| Cow::Owned(AttrValue::N(Number::from_i64(n as i64))))
        }
    })
}

fn size_of(v: &AttrValue) -> Option<usize> {
    Some(match v {
        // A string's length as DynamoDB (Java) counts it: UTF-16 code units, so "abÿ" is 3
        // (dynalite's size() test, recorded against DynamoDB).
        AttrValue::S(s) => s.encode_utf16().count(),
        AttrValue::B(b) => b.len(),
        AttrValue::SS(s) => s.len(),
        AttrValue::NS(s) => s.len(),
        AttrValue::BS(s) => s.len(),
        AttrValue::L(l) => l.len(),
        AttrValue::M(m) => m.len(),
        _ => return None,
    })
}

/// Order of two scalars of the same orderable type (N, S, B); None otherwise.
pub fn scalar_cmp(a: &AttrValue, b: &AttrValue) -> Option<Ordering> {
    match (a, b) {
        (AttrValue::N(x), AttrValue::N(y)) => Some(x.cmp(y)),
        (AttrValue::S(x), AttrValue::S(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (AttrValue::B(x), AttrValue::B(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

pub fn compare(op: CmpOp, a: Option<&AttrValue>, b: Option<&AttrValue>) -> bool {
    match op {
        CmpOp::Eq => matches!((a, b), (Some(x), Some(y)) if x == y),
        // A missing attribute is "not equal" to anything (DynamoDB evaluates <> to true).
        CmpOp::Ne => !matches!((a, b), (Some(x), Some(y)) if x == y),
        _ => {
            let (Some(a), Some(b)) = (a, b) else {
                return false;
            };
            match scalar_cmp(a, b) {
                None => false,
                Some(o) => match op {
                    CmpOp::Lt => o == Ordering::Less,
                    CmpOp::Le => o != Ordering::Greater,
                    CmpOp::Gt => o == Ordering::Greater,
                    _ => o != Ordering::Less,
                },
            }
        }
    }
}

pub fn between(
    v: Option<&AttrValue>,
    lo: Option<&AttrValue>,
    hi: Option<&AttrValue>,
) -> Result<bool, DdbError> {
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Ok(false);
    };
    // Bounds from the request in the wrong order were refused before any item was read; a
    // bound from the item in the wrong order makes the condition false (as DynamoDB does).
    if scalar_cmp(lo, hi) == Some(Ordering::Greater) {
        return Ok(false);
    }
    let Some(v) = v else { return Ok(false) };
    Ok(matches!(scalar_cmp(v, lo), Some(o) if o != Ordering::Less)
        && matches!(scalar_cmp(v, hi), Some(o) if o != Ordering::Greater))
}

pub fn begins_with(a: Option<&AttrValue>, b: Option<&AttrValue>) -> bool {
    match (a, b) {
        (Some(AttrValue::S(x)), Some(AttrValue::S(y))) => x.starts_with(y.as_str()),
        (Some(AttrValue::B(x)), Some(AttrValue::B(y))) => x.starts_with(y),
        _ => false,
    }
}

fn contains(a: Option<&AttrValue>, b: Option<&AttrValue>) -> bool {
    let (Some(a), Some(b)) = (a, b) else {
        return false;
    };
    match (a, b) {
        (AttrValue::S(x), AttrValue::S(y)) => x.contains(y.as_str()),
        (AttrValue::B(x), AttrValue::B(y)) => {
            y.is_empty() || x.windows(y.len()).any(|w| w == y.as_slice())
        }
        (AttrValue::SS(s), AttrValue::S(y)) => s.contains(y),
        (AttrValue::NS(s), AttrValue::N(y)) => s.contains(y),
        (AttrValue::BS(s), AttrValue::B(y)) => s.contains(y),
        (AttrValue::L(l), y) => l.contains(y),
        _ => false,
    }
}

const TYPES: [&str; 10] = ["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"];

/// Evaluate a condition. `kind` names the expression for error messages.
pub fn eval_cond(c: &Cond, item: &Item, ctx: &Ctx, kind: &str) -> Result<bool, DdbError> {
    Ok(match c {
        Cond::Cmp(a, op, b) => {
            let a = operand(a, item, ctx)?;
            let b = operand(b, item, ctx)?;
            compare(*op, a.as_deref(), b.as_deref())
        }
        Cond::Between(v, lo, hi) => {
            let v = operand(v, item, ctx)?;
            let lo = operand(lo, item, ctx)?;
            let hi = operand(hi, item, ctx)?;
            between(v.as_deref(), lo.as_deref(), hi.as_deref())?
        }
        Cond::In(v, list) => {
            let v = operand(v, item, ctx)?;
            let mut found = false;
            for x in list {
                let x = operand(x, item, ctx)?;
                if matches!((&v, &x), (Some(a), Some(b)) if a == b) {
                    found = true;
                    break;
                }
            }
            found
        }
        Cond::And(a, b) => {
            super::deeper(|| eval_cond(a, item, ctx, kind))?
                && super::deeper(|| eval_cond(b, item, ctx, kind))?
        }
        Cond::Or(a, b) => {
            super::deeper(|| eval_cond(a, item, ctx, kind))?
                || super::deeper(|| eval_cond(b, item, ctx, kind))?
        }
        Cond::Not(a) => !super::deeper(|| eval_cond(a, item, ctx, kind))?,
        Cond::AttributeExists(p) => get_path(item, &ctx.resolve(p)?).is_some(),
        Cond::AttributeNotExists(p) => get_path(item, &ctx.resolve(p)?).is_none(),
        Cond::AttributeType(a, t) => {
            let t = operand(t, item, ctx)?;
            let tname = match t.as_deref() {
                Some(AttrValue::S(s)) if TYPES.contains(&s.as_str()) => s.clone(),
                Some(AttrValue::S(s)) => {
                    return Err(DdbError::validation(format!(
                        "Invalid {kind}: Invalid attribute type name found; type: {s}, valid types: {{B,NULL,SS,BOOL,L,BS,N,NS,S,M}}"
                    )));
                }
                Some(other) => {
                    return Err(DdbError::validation(format!(
                        "Invalid {kind}: Incorrect operand type for operator or function; operator or function: attribute_type, operand type: {}",
                        other.type_name()
                    )));
                }
                None => return Ok(false),
            };
            operand(a, item, ctx)?.is_some_and(|v| v.type_name() == tname)
        }
        Cond::BeginsWith(a, b) => {
            let a = operand(a, item, ctx)?;
            let b = operand(b, item, ctx)?;
            if let Some(b) = b.as_deref()
                && !matches!(b, AttrValue::S(_) | AttrValue::B(_))
            {
                return Err(DdbError::validation(format!(
                    "Invalid {kind}: Incorrect operand type for operator or function; operator or function: begins_with, operand type: {}",
                    b.type_name()
                )));
            }
            begins_with(a.as_deref(), b.as_deref())
        }
        Cond::Contains(a, b) => {
            let a = operand(a, item, ctx)?;
            let b = operand(b, item, ctx)?;
            contains(a.as_deref(), b.as_deref())
        }
    })
}

// ---- projections ----

enum PTree {
    Leaf(AttrValue),
    Map(BTreeMap<String, PTree>),
    List(BTreeMap<usize, PTree>),
}

impl PTree {
    fn into_value(self) -> AttrValue {
        match self {
            PTree::Leaf(v) => v,
            PTree::Map(m) => {
                AttrValue::M(m.into_iter().map(|(k, v)| (k, v.into_value())).collect())
            }
            PTree::List(l) => AttrValue::L(l.into_values().map(|v| v.into_value()).collect()),
        }
    }
}

/// The parts of `item` named by `paths` (list elements keep their relative order).
pub fn project(item: &Item, paths: &[Vec<Seg>]) -> Item {
    let mut root: BTreeMap<String, PTree> = BTreeMap::new();
    for segs in paths {
        let Some(v) = get_path(item, segs) else {
            continue;
        };
        let Some((Seg::Key(first), rest)) = segs.split_first() else {
            continue;
        };
        if rest.is_empty() {
            root.insert(first.clone(), PTree::Leaf(v.clone()));
            continue;
        }
        let mut node = root.entry(first.clone()).or_insert_with(|| match rest[0] {
            Seg::Key(_) => PTree::Map(BTreeMap::new()),
            Seg::Idx(_) => PTree::List(BTreeMap::new()),
        });
        for (i, s) in rest.iter().enumerate() {
            let last = i + 1 == rest.len();
            let fresh = || -> PTree {
                if last {
                    PTree::Leaf(v.clone())
                } else {
                    match rest[i + 1] {
                        Seg::Key(_) => PTree::Map(BTreeMap::new()),
                        Seg::Idx(_) => PTree::List(BTreeMap::new()),
                    }
                }
            };
            node = match (node, s) {
                (PTree::Map(m), Seg::Key(k)) => m.entry(k.clone()).or_insert_with(fresh),
                (PTree::List(l), Seg::Idx(ix)) => l.entry(*ix).or_insert_with(fresh),
                // An overlapping path is rejected up front; a whole-value leaf covers the rest.
                (n, _) => n,
            };
            if last {
                *node = PTree::Leaf(v.clone());
            }
        }
    }
    root.into_iter().map(|(k, v)| (k, v.into_value())).collect()
}

/// A resolved path as DynamoDB's messages show it: `[a, [1], b]`.
pub(super) fn show_segs(p: &[Seg]) -> String {
    let parts: Vec<String> = p
        .iter()
        .map(|s| match s {
            Seg::Key(k) => k.clone(),
            Seg::Idx(i) => format!("[{i}]"),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// AWS rejects overlapping or conflicting document paths in one projection or update (`kind`
/// names the expression in the message). Each path is compared with those written before it;
/// an overlap (one path a prefix of the other) anywhere is reported before a conflict (a name
/// where the other path has a list index), the first in the text within each kind.
pub fn check_overlap(paths: &[Vec<Seg>], kind: &str) -> Result<(), DdbError> {
    let problem = |what: &str, one: &[Seg], two: &[Seg]| {
        DdbError::validation(format!(
            "Invalid {kind}: Two document paths {what} with each other; must remove or rewrite one of these paths; path one: {}, path two: {}",
            show_segs(one),
            show_segs(two)
        ))
    };
    if paths.len() > 64 {
        // Quadratic check; beyond a few dozen paths use a sorted sweep (overlaps only).
        let mut sorted: Vec<&Vec<Seg>> = paths.iter().collect();
        sorted.sort();
        for w in sorted.windows(2) {
            if w[1].starts_with(w[0]) {
                return Err(problem("overlap", w[0], w[1]));
            }
        }
        return Ok(());
    }
    let mut conflict = None;
    for (j, new) in paths.iter().enumerate() {
        for old in &paths[..j] {
            let mut differ = false;
            for (x, y) in old.iter().zip(new) {
                if matches!(
                    (x, y),
                    (Seg::Key(_), Seg::Idx(_)) | (Seg::Idx(_), Seg::Key(_))
                ) {
                    conflict.get_or_insert((old, new));
                    differ = true;
                    break;
                }
                if x != y {
                    differ = true;
                    break;
                }
            }
            if !differ {
                return Err(problem("overlap", old, new));
            }
        }
    }
    match conflict {
        Some((one, two)) => Err(problem("conflict", one, two)),
        None => Ok(()),
    }
}

// ---- updates ----

fn bad_type() -> DdbError {
    DdbError::validation("An operand in the update expression has an incorrect data type")
}
fn missing_attr() -> DdbError {
    DdbError::validation(
        "The provided expression refers to an attribute that does not exist in the item",
    )
}
fn invalid_path() -> DdbError {
    DdbError::validation(
        "The document path provided in the update expression is invalid for update",
    )
}

fn set_operand(o: &SetOperand, item: &Item, ctx: &Ctx) -> Result<AttrValue, DdbError> {
    match o {
        SetOperand::Path(p) => get_path(item, &ctx.resolve(p)?)
            .cloned()
            .ok_or_else(missing_attr),
        SetOperand::Value(v) => Ok(ctx.value(v)?.clone()),
        SetOperand::IfNotExists(p, d) => match get_path(item, &ctx.resolve(p)?) {
            Some(v) => Ok(v.clone()),
            None => set_operand(d, item, ctx),
        },
        SetOperand::ListAppend(a, b) => {
            let a = set_operand(a, item, ctx)?;
            let b = set_operand(b, item, ctx)?;
            match (a, b) {
                (AttrValue::L(mut x), AttrValue::L(y)) => {
                    x.extend(y);
                    Ok(AttrValue::L(x))
                }
                // A value of the wrong type was refused before the item was read
                // (update_check); a path's type shows only now.
                _ => Err(bad_type()),
            }
        }
    }
}

fn arith(a: AttrValue, b: AttrValue, minus: bool) -> Result<AttrValue, DdbError> {
    match (a, b) {
        // A sum DynamoDB cannot hold exactly is reported as an overflow whatever its
        // magnitude (1e50 + 1 included), as DynamoDB words it.
        (AttrValue::N(x), AttrValue::N(y)) => x.add(&y, minus).map(AttrValue::N).map_err(|e| {
            DdbError::validation(match e {
                super::super::value::NumberError::Precision => {
                    super::super::value::NumberError::Overflow.message()
                }
                e => e.message(),
            })
        }),
        _ => Err(bad_type()),
    }
}

fn container_mut<'a>(
    item: &'a mut Item,
    parent: &[Seg],
) -> Result<Option<&'a mut AttrValue>, DdbError> {
    let Some((Seg::Key(first), rest)) = parent.split_first() else {
        return Ok(None);
    };
    let Some(mut cur) = item.get_mut(first) else {
        return Err(invalid_path());
    };
    for s in rest {
        cur = match (s, cur) {
            (Seg::Key(k), AttrValue::M(m)) => m.get_mut(k).ok_or_else(invalid_path)?,
            (Seg::Idx(i), AttrValue::L(l)) => l.get_mut(*i).ok_or_else(invalid_path)?,
            _ => return Err(invalid_path()),
        };
    }
    Ok(Some(cur))
}

pub fn set_path(item: &mut Item, segs: &[Seg], v: AttrValue) -> Result<(), DdbError> {
    let Some((last, parent)) = segs.split_last() else {
        return Err(invalid_path());
    };
    match container_mut(item, parent)? {
        None => match last {
            Seg::Key(k) => {
                item.insert(k.clone(), v);
                Ok(())
            }
            Seg::Idx(_) => Err(invalid_path()),
        },
        Some(c) => match (c, last) {
            (AttrValue::M(m), Seg::Key(k)) => {
                m.insert(k.clone(), v);
                Ok(())
            }
            (AttrValue::L(l), Seg::Idx(i)) => {
                if *i < l.len() {
                    l[*i] = v;
                } else {
                    l.push(v);
                }
                Ok(())
            }
            _ => Err(invalid_path()),
        },
    }
}

/// REMOVE: a missing attribute, map key or list element past the end is nothing to do, but
/// the path above it must exist and be a map (for a name) or a list (for an index); else
/// DynamoDB refuses the path (as dynalite's suite records it).
fn remove_path(item: &mut Item, segs: &[Seg]) -> Result<(), DdbError> {
    let Some((last, parent)) = segs.split_last() else {
        return Ok(());
    };
    match (container_mut(item, parent)?, last) {
        (None, Seg::Key(k)) => {
            item.remove(k);
        }
        (Some(AttrValue::M(m)), Seg::Key(k)) => {
            m.remove(k);
        }
        (Some(AttrValue::L(l)), Seg::Idx(i)) => {
            if *i < l.len() {
                l.remove(*i);
            }
        }
        _ => return Err(invalid_path()),
    }
    Ok(())
}

/// Apply a parsed update to `item` (already holding the key). `old` is the item before the
/// update: all SET operands are evaluated against it, as DynamoDB does.
pub fn apply_update(u: &Update, item: &mut Item, ctx: &Ctx) -> Result<(), DdbError> {
    let old = item.clone();
    let mut sets = Vec::with_capacity(u.set.len());
    for (p, v) in &u.set {
        let val = match v {
            SetValue::Operand(o) => set_operand(o, &old, ctx)?,
            SetValue::Plus(a, b) => arith(
                set_operand(a, &old, ctx)?,
                set_operand(b, &old, ctx)?,
                false,
            )?,
            SetValue::Minus(a, b) => {
                arith(set_operand(a, &old, ctx)?, set_operand(b, &old, ctx)?, true)?
            }
        };
        sets.push((ctx.resolve(p)?, val));
    }
    // Paths never overlap (checked at parse), so order only matters for list elements past
    // the end, which are appended: DynamoDB appends them in index order, not written order.
    sets.sort_by(|a, b| a.0.cmp(&b.0));
    for (segs, v) in sets {
        set_path(item, &segs, v)?;
    }
    let mut removes: Vec<Vec<Seg>> = u
        .remove
        .iter()
        .map(|p| ctx.resolve(p))
        .collect::<Result<_, _>>()?;
    // Highest list index first so earlier removals do not shift later ones.
    removes.sort();
    for segs in removes.iter().rev() {
        remove_path(item, segs)?;
    }
    let mut adds = u
        .add
        .iter()
        .map(|(p, v)| Ok((ctx.resolve(p)?, v)))
        .collect::<Result<Vec<_>, DdbError>>()?;
    adds.sort_by(|a, b| a.0.cmp(&b.0));
    for (segs, v) in adds {
        let add = ctx.value(v)?.clone();
        let cur = get_path(item, &segs).cloned();
        let new = match (cur, add) {
            (
                None,
                v @ (AttrValue::N(_) | AttrValue::SS(_) | AttrValue::NS(_) | AttrValue::BS(_)),
            ) => v,
            (Some(AttrValue::N(a)), AttrValue::N(b)) => AttrValue::N(
                a.add(&b, false)
                    .map_err(|e| DdbError::validation(e.message()))?,
            ),
            (Some(AttrValue::SS(mut a)), AttrValue::SS(b)) => {
                a.extend(b);
                AttrValue::SS(a)
            }
            (Some(AttrValue::NS(mut a)), AttrValue::NS(b)) => {
                a.extend(b);
                AttrValue::NS(a)
            }
            (Some(AttrValue::BS(mut a)), AttrValue::BS(b)) => {
                a.extend(b);
                AttrValue::BS(a)
            }
            (None, v) => {
                return Err(DdbError::validation(format!(
                    "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: {}",
                    type_long(&v)
                )));
            }
            _ => return Err(bad_type()),
        };
        set_path(item, &segs, new)?;
    }
    for (p, v) in &u.delete {
        let segs = ctx.resolve(p)?;
        let del = ctx.value(v)?.clone();
        if !matches!(del, AttrValue::SS(_) | AttrValue::NS(_) | AttrValue::BS(_)) {
            return Err(DdbError::validation(format!(
                "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: {}",
                type_long(&del)
            )));
        }
        // Like REMOVE: nothing to delete from is fine, a path above it that is not there is not.
        let parent = &segs[..segs.len().saturating_sub(1)];
        match (container_mut(item, parent)?, segs.last()) {
            (None, _)
            | (Some(AttrValue::M(_)), Some(Seg::Key(_)))
            | (Some(AttrValue::L(_)), Some(Seg::Idx(_))) => {}
            _ => return Err(invalid_path()),
        }
        let Some(cur) = get_path(item, &segs).cloned() else {
            continue;
        };
        let new = match (cur, del) {
            (AttrValue::SS(a), AttrValue::SS(b)) => {
                AttrValue::SS(a.difference(&b).cloned().collect())
            }
            (AttrValue::NS(a), AttrValue::NS(b)) => {
                AttrValue::NS(a.difference(&b).cloned().collect())
            }
            (AttrValue::BS(a), AttrValue::BS(b)) => {
                AttrValue::BS(a.difference(&b).cloned().collect())
            }
            _ => return Err(bad_type()),
        };
        let empty = match &new {
            AttrValue::SS(s) => s.is_empty(),
            AttrValue::NS(s) => s.is_empty(),
            AttrValue::BS(s) => s.is_empty(),
            _ => false,
        };
        if empty {
            remove_path(item, &segs)?;
        } else {
            set_path(item, &segs, new)?;
        }
    }
    Ok(())
}

pub(super) fn type_long(v: &AttrValue) -> &'static str {
    match v {
        AttrValue::S(_) => "STRING",
        AttrValue::N(_) => "NUMBER",
        AttrValue::B(_) => "BINARY",
        AttrValue::Bool(_) => "BOOLEAN",
        AttrValue::Null => "NULL",
        AttrValue::M(_) => "MAP",
        AttrValue::L(_) => "LIST",
        AttrValue::SS(_) => "SS",
        AttrValue::NS(_) => "NS",
        AttrValue::BS(_) => "BS",
    }
}

/// Every path an update writes, resolved (for overlap and key-attribute checks).
pub fn update_paths(u: &Update, ctx: &Ctx) -> Result<Vec<Vec<Seg>>, DdbError> {
    let mut v = Vec::new();
    for (p, _) in &u.set {
        v.push(ctx.resolve(p)?);
    }
    for p in &u.remove {
        v.push(ctx.resolve(p)?);
    }
    for (p, _) in u.add.iter().chain(u.delete.iter()) {
        v.push(ctx.resolve(p)?);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::super::parse::*;
    use super::*;
    use serde_json::json;

    fn item(v: serde_json::Value) -> Item {
        crate::table::value::item_from_json(&v).unwrap()
    }
    fn ctx(vals: serde_json::Value) -> Ctx {
        Ctx {
            names: HashMap::new(),
            values: item(vals).into_iter().collect(),
        }
    }

    #[test]
    fn update_actions_apply_in_aws_order() {
        let mut it = item(
            json!({"pk": {"S": "k"}, "n": {"N": "1"}, "l": {"L": [{"N": "1"}, {"N": "2"}, {"N": "3"}]}, "s": {"SS": ["a", "b"]}}),
        );
        let c = ctx(
            json!({":one": {"N": "1"}, ":x": {"L": [{"S": "x"}]}, ":b": {"SS": ["b"]}, ":z": {"N": "10"}}),
        );
        let u = parse_update("SET n = n + :one, m = if_not_exists(m, :z), l = list_append(l, :x) REMOVE l[0] DELETE s :b").unwrap();
        // l is both set and removed: AWS rejects that as overlapping paths.
        assert!(check_overlap(&update_paths(&u, &c).unwrap(), "UpdateExpression").is_err());
        let u = parse_update("SET n = n + :one, m = if_not_exists(m, :z), q = list_append(l, :x) REMOVE l[0], l[2] DELETE s :b").unwrap();
        apply_update(&u, &mut it, &c).unwrap();
        assert_eq!(it["n"], AttrValue::N(Number::parse("2").unwrap()));
        assert_eq!(it["m"], AttrValue::N(Number::parse("10").unwrap()));
        assert_eq!(
            AttrValue::L(vec![AttrValue::N(Number::parse("2").unwrap())]),
            it["l"]
        );
        assert_eq!(
            it["q"].to_json(),
            json!({"L": [{"N": "1"}, {"N": "2"}, {"N": "3"}, {"S": "x"}]})
        );
        assert_eq!(it["s"].to_json(), json!({"SS": ["a"]}));
    }

    #[test]
    fn conditions_follow_dynamodb_semantics() {
        let it = item(
            json!({"a": {"N": "5"}, "s": {"S": "hello"}, "u": {"S": "abÿ"}, "m": {"M": {"l": {"L": [{"S": "x"}, {"S": "y"}]}}}}),
        );
        let c = ctx(
            json!({":five": {"N": "5.0"}, ":h": {"S": "he"}, ":y": {"S": "y"}, ":t": {"S": "M"}, ":two": {"N": "2"}, ":three": {"N": "3"}}),
        );
        let t = |e: &str| {
            let cond = parse_condition(e, "ConditionExpression").unwrap();
            eval_cond(&cond, &it, &c, "ConditionExpression").unwrap()
        };
        assert!(t("a = :five"));
        assert!(t("begins_with(s, :h)"));
        assert!(t("contains(m.l, :y)"));
        assert!(t("m.l[1] = :y"));
        assert!(t("attribute_type(m, :t)"));
        assert!(t("size(m.l) = :two"));
        assert!(t("size(u) = :three"));
        assert!(t("nope <> :five"));
        assert!(!t("nope < :five"));
        assert!(t("a BETWEEN :two AND :five"));
        assert!(t("NOT a IN (:two, :h)"));
        // Bounds in the wrong order: false when evaluated (bounds that are both request values
        // are refused earlier, when the expression is checked).
        assert!(!t("a BETWEEN :five AND :two"));
        assert!(!t("a BETWEEN a AND :two"));
    }

    #[test]
    fn projection_keeps_nested_shape() {
        let it = item(
            json!({"a": {"N": "1"}, "m": {"M": {"x": {"S": "1"}, "y": {"S": "2"}}}, "l": {"L": [{"S": "0"}, {"S": "1"}, {"S": "2"}]}}),
        );
        let c = Ctx::default();
        let paths: Vec<Vec<Seg>> = parse_projection("m.y, l[2], l[0], zz")
            .unwrap()
            .iter()
            .map(|p| c.resolve(p).unwrap())
            .collect();
        let p = project(&it, &paths);
        assert_eq!(
            crate::table::value::item_to_json(&p),
            json!({"m": {"M": {"y": {"S": "2"}}}, "l": {"L": [{"S": "0"}, {"S": "2"}]}})
        );
    }
}
