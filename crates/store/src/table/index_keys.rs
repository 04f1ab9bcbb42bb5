//! What DynamoDB checks about key attributes once it knows the table, before it reads the
//! item: a document path may not reach inside a key or index key attribute, and an update
//! may not give an index key attribute a value whose type is already known to be wrong.
//! After the update is computed, an index key of the wrong type has its own message.
//! (Messages and order as dynalite's suite records them against DynamoDB.)

use super::error::DdbError;
use super::expr::ast::{SetOperand, SetValue, Update};
use super::expr::{Ctx, Path, PathElem};
use super::items::{AttributeUpdate, UpdateAction};
use super::meta::{KeySpec, TableMeta};
use super::value::{AttrValue, Item};

/// Every index key attribute with its index, in the table's index order (hash before range).
fn index_keys(meta: &TableMeta) -> impl Iterator<Item = (&str, &KeySpec)> {
    meta.indexes
        .iter()
        .flat_map(|ix| ix.key_specs().map(move |spec| (ix.name.as_str(), spec)))
}

/// Of the paths that go deeper than their first attribute, the (resolved) first attributes:
/// none may be a key or index key attribute (`Key attributes must be scalars; …`).
pub fn scalar_keys<'a>(
    meta: &TableMeta,
    nested_heads: impl IntoIterator<Item = &'a str>,
) -> Result<(), DdbError> {
    for head in nested_heads {
        let kind = if meta.is_key_attr(head) {
            "Key"
        } else if index_keys(meta).any(|(_, s)| s.name == head) {
            "IndexKey"
        } else {
            continue;
        };
        return Err(DdbError::validation(format!(
            "Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: {kind}: {head}"
        )));
    }
    Ok(())
}

/// The first attribute of every path of an UpdateExpression (actions' and operands') that
/// goes deeper than it, resolved, in written order within each section.
pub fn update_nested_heads<'a>(u: &'a Update, ctx: &'a Ctx) -> Vec<&'a str> {
    fn operand<'a>(o: &'a SetOperand, out: &mut Vec<&'a Path>) {
        match o {
            SetOperand::Path(p) => out.push(p),
            SetOperand::Value(_) => {}
            SetOperand::IfNotExists(p, d) => {
                out.push(p);
                operand(d, out);
            }
            SetOperand::ListAppend(a, b) => {
                operand(a, out);
                operand(b, out);
            }
        }
    }
    let mut paths: Vec<&Path> = Vec::new();
    for (p, v) in &u.set {
        paths.push(p);
        match v {
            SetValue::Operand(o) => operand(o, &mut paths),
            SetValue::Plus(a, b) | SetValue::Minus(a, b) => {
                operand(a, &mut paths);
                operand(b, &mut paths);
            }
        }
    }
    paths.extend(&u.remove);
    paths.extend(u.add.iter().chain(&u.delete).map(|(p, _)| p));
    paths
        .into_iter()
        .filter(|p| p.0.len() > 1)
        .filter_map(|p| match &p.0[0] {
            PathElem::Name(n) => Some(n.as_str()),
            PathElem::Placeholder(n) => ctx.names.get(n).map(String::as_str),
            PathElem::Index(_) => None,
        })
        .collect()
}

fn mismatch(ix: &str, spec: &KeySpec, actual: &str) -> DdbError {
    DdbError::validation(format!(
        "One or more parameter values were invalid: Type mismatch for Index Key {} Expected: {} Actual: {actual} IndexName: {ix}",
        spec.name, spec.ty
    ))
}

/// The type an operand is known to have before the item is read.
fn operand_type(o: &SetOperand, ctx: &Ctx) -> Option<&'static str> {
    match o {
        SetOperand::Path(_) => None,
        SetOperand::Value(v) => ctx.values.get(v).map(AttrValue::type_name),
        SetOperand::IfNotExists(_, d) => operand_type(d, ctx),
        SetOperand::ListAppend(..) => Some("L"),
    }
}

/// An UpdateExpression's SET and ADD of a whole attribute that is an index key, with a value
/// of a type known before the item is read, must match the index's key type.
pub fn update_types(meta: &TableMeta, ctx: &Ctx, u: &Update) -> Result<(), DdbError> {
    let top = |p: &Path| match p.0.as_slice() {
        [PathElem::Name(n)] => Some(n.clone()),
        [PathElem::Placeholder(n)] => ctx.names.get(n).cloned(),
        _ => None,
    };
    let mut known: Vec<(String, &'static str)> = Vec::new();
    for (p, v) in &u.set {
        let ty = match v {
            SetValue::Operand(o) => operand_type(o, ctx),
            SetValue::Plus(..) | SetValue::Minus(..) => Some("N"),
        };
        if let (Some(name), Some(ty)) = (top(p), ty) {
            known.push((name, ty));
        }
    }
    for (p, v) in &u.add {
        if let (Some(name), Some(value)) = (top(p), ctx.values.get(v)) {
            known.push((name, value.type_name()));
        }
    }
    first_mismatch(meta, &known)
}

/// AttributeUpdates' PUT and ADD values must match an index key attribute's type.
pub fn attribute_update_types(meta: &TableMeta, ups: &[AttributeUpdate]) -> Result<(), DdbError> {
    let known: Vec<(String, &'static str)> = ups
        .iter()
        .filter(|u| u.action != UpdateAction::Delete)
        .filter_map(|u| Some((u.name.clone(), u.value.as_ref()?.type_name())))
        .collect();
    first_mismatch(meta, &known)
}

fn first_mismatch(meta: &TableMeta, known: &[(String, &'static str)]) -> Result<(), DdbError> {
    for (ix, spec) in index_keys(meta) {
        if let Some((_, ty)) = known.iter().find(|(n, _)| *n == spec.name)
            && *ty != spec.ty
        {
            return Err(mismatch(ix, spec, ty));
        }
    }
    Ok(())
}

/// After an UpdateExpression is applied: an index key attribute of the wrong type.
pub fn updated_item(meta: &TableMeta, item: &Item) -> Result<(), DdbError> {
    let wrong = index_keys(meta).any(|(_, spec)| {
        item.get(&spec.name)
            .is_some_and(|v| v.type_name() != spec.ty)
    });
    if wrong {
        return Err(DdbError::validation(
            "The update expression attempted to update the secondary index key to unsupported type",
        ));
    }
    Ok(())
}
