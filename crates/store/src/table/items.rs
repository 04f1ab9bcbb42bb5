//! What the item operations (files in `op/`: PutItem, GetItem, DeleteItem, UpdateItem,
//! BatchWriteItem, BatchGetItem, TransactWriteItems, TransactGetItems) and PartiQL's share.
//!
//! Every write has the same shape: [`WriteReq::parse`] (no lock: JSON, expressions,
//! placeholders), then under the engine's write lock [`prepare`] (key, condition, new item,
//! validation) and [`Table::write`] (apply + journal record), then the ticket is submitted
//! before the lock is released.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::TableEngine;
use super::engine::Table;
use super::error::{DdbError, ErrorCode};
use super::expr::eval::{apply_update, eval_cond, project, update_paths};
use super::expr::{
    Cond, Ctx, Seg, Update, Used, parse_condition_ctx, parse_projection_ctx, parse_update_ctx,
};
use super::index_keys;
use super::meta::PKey;
use super::req::{ctx as parse_ctx, not_null, opt_str, table_name, vmsg};
use super::value::{AttrValue, Item, KeyVal, item_from_json, item_size, item_to_json};
use crate::journal::Ticket;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnValues {
    None,
    AllOld,
    UpdatedOld,
    AllNew,
    UpdatedNew,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Put,
    Delete,
    Update,
    Check,
}

#[derive(Debug, Clone)]
pub enum Action {
    Put(Arc<Item>),
    Delete,
    Update(Option<Update>),
    /// The legacy `AttributeUpdates` form of UpdateItem.
    AttributeUpdates(Vec<AttributeUpdate>),
    Check,
}

/// One entry of a legacy `AttributeUpdates` map.
#[derive(Debug, Clone)]
pub struct AttributeUpdate {
    pub name: String,
    pub action: UpdateAction,
    pub value: Option<AttrValue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateAction {
    Put,
    Add,
    Delete,
}

/// Parse `AttributeUpdates` with DynamoDB's validation.
fn parse_attribute_updates(v: &Value) -> Result<Vec<AttributeUpdate>, DdbError> {
    let obj = v
        .as_object()
        .ok_or_else(|| DdbError::serialization("AttributeUpdates must be a map"))?;
    let mut out = Vec::with_capacity(obj.len());
    for (name, u) in obj {
        let action = match opt_str(u, "Action") {
            None | Some("PUT") => UpdateAction::Put,
            Some("ADD") => UpdateAction::Add,
            Some("DELETE") => UpdateAction::Delete,
            Some(other) => {
                return Err(vmsg(vec![format!(
                    "Value '{other}' at 'attributeUpdates.{name}.member.action' failed to satisfy constraint: Member must satisfy enum value set: [ADD, PUT, DELETE]"
                )]));
            }
        };
        let value = match u.get("Value").filter(|x| !x.is_null()) {
            Some(x) => Some(AttrValue::from_json(x)?),
            None => None,
        };
        let invalid = |m: String| {
            DdbError::validation(format!("One or more parameter values were invalid: {m}"))
        };
        match (&value, action) {
            (None, UpdateAction::Put | UpdateAction::Add) => {
                return Err(invalid(
                    "Only DELETE action is allowed when no attribute value is specified".into(),
                ));
            }
            (Some(x), UpdateAction::Delete)
                if !matches!(x, AttrValue::SS(_) | AttrValue::NS(_) | AttrValue::BS(_)) =>
            {
                return Err(invalid(format!(
                    "DELETE action with value is not supported for the type {}",
                    x.type_name()
                )));
            }
            (Some(x), UpdateAction::Add)
                if !matches!(
                    x,
                    AttrValue::N(_)
                        | AttrValue::L(_)
                        | AttrValue::SS(_)
                        | AttrValue::NS(_)
                        | AttrValue::BS(_)
                ) =>
            {
                return Err(invalid(format!(
                    "ADD action is not supported for the type {}",
                    x.type_name()
                )));
            }
            _ => {}
        }
        out.push(AttributeUpdate {
            name: name.clone(),
            action,
            value,
        });
    }
    Ok(out)
}

/// Apply legacy attribute updates to `item`, as DynamoDB does: PUT replaces; ADD adds to a
/// number, unions a set or appends to a list (creating the attribute when missing); DELETE
/// removes the attribute, or with a set value removes those elements (and the attribute
/// once its set is empty).
pub fn apply_attribute_updates(
    item: &mut Item,
    updates: &[AttributeUpdate],
) -> Result<(), DdbError> {
    let mismatch = || DdbError::validation("Type mismatch for attribute to update");
    for u in updates {
        match (u.action, &u.value) {
            (UpdateAction::Put, Some(v)) => {
                item.insert(u.name.clone(), v.clone());
            }
            (UpdateAction::Delete, None) => {
                item.remove(&u.name);
            }
            (UpdateAction::Delete, Some(v)) => {
                let Some(cur) = item.get_mut(&u.name) else {
                    continue;
                };
                let empty = match (cur, v) {
                    (AttrValue::SS(a), AttrValue::SS(b)) => {
                        a.retain(|x| !b.contains(x));
                        a.is_empty()
                    }
                    (AttrValue::NS(a), AttrValue::NS(b)) => {
                        a.retain(|x| !b.contains(x));
                        a.is_empty()
                    }
                    (AttrValue::BS(a), AttrValue::BS(b)) => {
                        a.retain(|x| !b.contains(x));
                        a.is_empty()
                    }
                    _ => return Err(mismatch()),
                };
                if empty {
                    item.remove(&u.name);
                }
            }
            (UpdateAction::Add, Some(v)) => match item.get_mut(&u.name) {
                None => {
                    item.insert(u.name.clone(), v.clone());
                }
                Some(cur) => match (cur, v) {
                    (AttrValue::N(a), AttrValue::N(b)) => {
                        *a = a
                            .add(b, false)
                            .map_err(|e| DdbError::validation(e.message()))?;
                    }
                    (AttrValue::SS(a), AttrValue::SS(b)) => a.extend(b.iter().cloned()),
                    (AttrValue::NS(a), AttrValue::NS(b)) => a.extend(b.iter().cloned()),
                    (AttrValue::BS(a), AttrValue::BS(b)) => a.extend(b.iter().cloned()),
                    (AttrValue::L(a), AttrValue::L(b)) => a.extend(b.iter().cloned()),
                    _ => return Err(mismatch()),
                },
            },
            (UpdateAction::Put | UpdateAction::Add, None) => {
                return Err(DdbError::validation(
                    "One or more parameter values were invalid: Only DELETE action is allowed when no attribute value is specified",
                ));
            }
        }
    }
    Ok(())
}

/// A parsed write (single or inside a batch/transaction).
#[derive(Debug, Clone)]
pub struct WriteReq {
    pub table: String,
    pub action: Action,
    pub key: Option<Item>,
    pub cond: Option<Cond>,
    pub ctx: Ctx,
    pub rv: ReturnValues,
    pub rv_on_fail: bool,
    pub paths: Vec<Vec<Seg>>,
    /// A PartiQL INSERT: its condition is that the key is free, and failing it is a
    /// DuplicateItemException rather than a failed condition.
    pub insert: bool,
}

/// The outcome of a write computed against the current state.
pub struct Prepared {
    pub pk: PKey,
    pub old: Option<Arc<Item>>,
    pub new: Option<Arc<Item>>,
    pub writes: bool,
}

pub fn parse_return_values(req: &Value, kind: Kind) -> Result<ReturnValues, DdbError> {
    let Some(s) = opt_str(req, "ReturnValues") else {
        return Ok(ReturnValues::None);
    };
    let rv = match s {
        "NONE" => ReturnValues::None,
        "ALL_OLD" => ReturnValues::AllOld,
        "UPDATED_OLD" => ReturnValues::UpdatedOld,
        "ALL_NEW" => ReturnValues::AllNew,
        "UPDATED_NEW" => ReturnValues::UpdatedNew,
        other => {
            return Err(vmsg(vec![format!(
                "Value '{other}' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]"
            )]));
        }
    };
    match kind {
        Kind::Put | Kind::Delete if !matches!(rv, ReturnValues::None | ReturnValues::AllOld) => {
            Err(DdbError::validation(
                "ReturnValues can only be ALL_OLD or NONE",
            ))
        }
        _ => Ok(rv),
    }
}

/// DynamoDB refuses an oversized item before it looks for the table.
fn check_item_size(item: &Item) -> Result<(), DdbError> {
    if item_size(item) > super::value::MAX_ITEM_SIZE {
        return Err(DdbError::validation(
            "Item size has exceeded the maximum allowed size",
        ));
    }
    Ok(())
}

impl WriteReq {
    /// A write of `action` to `table` with no key parameter, condition or return values
    /// (yet); `ctx` defines the placeholders of what is added.
    pub fn new(table: String, action: Action, ctx: Ctx) -> WriteReq {
        WriteReq {
            table,
            action,
            key: None,
            cond: None,
            ctx,
            rv: ReturnValues::None,
            rv_on_fail: false,
            paths: Vec::new(),
            insert: false,
        }
    }

    /// PutItem of `item` alone (no condition, placeholders or return values): what
    /// [`WriteReq::parse`] makes of a request with only `TableName` and `Item`.
    pub fn put(table: String, item: Item) -> Result<WriteReq, DdbError> {
        check_item_size(&item)?;
        Ok(WriteReq::new(
            table,
            Action::Put(Arc::new(item)),
            Ctx::default(),
        ))
    }

    /// Checks in DynamoDB's order (as dynalite's suite records it): expression and legacy
    /// parameters not mixed, placeholders only with expressions; the key's (or item's)
    /// values and the item's size; AttributeUpdates; Expected; the placeholders themselves,
    /// the UpdateExpression, the ConditionExpression; unused placeholders.
    pub fn parse(req: &Value, kind: Kind) -> Result<WriteReq, DdbError> {
        let table = table_name(req)?.to_string();
        let present = |f: &str| req.get(f).is_some_and(|v| !v.is_null());
        // The same checks as the single-item operations' (also for transactions' writes).
        let op = match kind {
            Kind::Update => "UpdateItem",
            Kind::Put => "PutItem",
            Kind::Delete | Kind::Check => "DeleteItem",
        };
        super::constraints::check_expression_params(op, req)?;
        let key = match kind {
            Kind::Put => None,
            _ => Some(item_from_json(
                req.get("Key")
                    .filter(|v| !v.is_null())
                    .ok_or_else(|| not_null("Key"))?,
            )?),
        };
        let put = match kind {
            Kind::Put => {
                let item = item_from_json(
                    req.get("Item")
                        .filter(|v| !v.is_null())
                        .ok_or_else(|| not_null("Item"))?,
                )?;
                check_item_size(&item)?;
                Some(item)
            }
            _ => None,
        };
        let attribute_updates = match req.get("AttributeUpdates").filter(|v| !v.is_null()) {
            Some(au) if kind == Kind::Update => Some(parse_attribute_updates(au)?),
            _ => None,
        };
        // Expected excludes placeholders (translate() refuses them), so their own problems
        // only matter without it.
        let mut ctx = if present("Expected") {
            parse_ctx(req).unwrap_or_default()
        } else {
            parse_ctx(req)?
        };
        let legacy = super::legacy::translate(req, "Expected", "ConditionExpression", &mut ctx)?;
        let mut used = Used::default();
        let update = match (kind, opt_str(req, "UpdateExpression")) {
            (Kind::Update, Some(s)) => {
                let u = parse_update_ctx(s, &ctx)?;
                used.update(&u);
                Some(u)
            }
            _ => None,
        };
        let cond = match opt_str(req, "ConditionExpression") {
            Some(s) => Some(parse_condition_ctx(s, "ConditionExpression", &ctx)?),
            None if kind == Kind::Check => return Err(not_null("ConditionExpression")),
            None => legacy,
        };
        if let Some(c) = &cond {
            used.cond(c);
        }
        ctx.check(&used)?;
        let mut paths = Vec::new();
        let action = match (kind, put) {
            (Kind::Put, Some(item)) => Action::Put(Arc::new(item)),
            (Kind::Delete, _) => Action::Delete,
            (Kind::Check, _) => Action::Check,
            _ => match attribute_updates {
                Some(ups) => {
                    paths = ups.iter().map(|u| vec![Seg::Key(u.name.clone())]).collect();
                    Action::AttributeUpdates(ups)
                }
                None => {
                    // Overlapping paths were refused with the expression's other problems.
                    if let Some(u) = &update {
                        paths = update_paths(u, &ctx)?;
                    }
                    Action::Update(update)
                }
            },
        };
        let rv = parse_return_values(req, kind)?;
        let rv_on_fail = match opt_str(req, "ReturnValuesOnConditionCheckFailure") {
            None | Some("NONE") => false,
            Some("ALL_OLD") => true,
            Some(other) => {
                return Err(vmsg(vec![format!(
                    "Value '{other}' at 'returnValuesOnConditionCheckFailure' failed to satisfy constraint: Member must satisfy enum value set: [ALL_OLD, NONE]"
                )]));
            }
        };
        Ok(WriteReq {
            table,
            action,
            key,
            cond,
            ctx,
            rv,
            rv_on_fail,
            paths,
            insert: false,
        })
    }

    /// The item's key, validated against the table.
    pub fn pk(&self, t: &Table) -> Result<PKey, DdbError> {
        match (&self.action, &self.key) {
            (Action::Put(item), _) => t.validate_item(item, false),
            (_, Some(k)) => t.key_from_param(k),
            (_, None) => Err(not_null("Key")),
        }
    }
}

/// An empty string or binary key value in a transaction's action: DynamoDB refuses the
/// request outright (a ValidationException worded as for an item being written), where any
/// other key it cannot read cancels the transaction at that action.
fn empty_key_value(t: &Table, w: &WriteReq) -> Option<DdbError> {
    let src = match (&w.action, &w.key) {
        (Action::Put(item), _) => item,
        (_, Some(key)) => key,
        (_, None) => return None,
    };
    std::iter::once(&t.meta.hash)
        .chain(t.meta.range.as_ref())
        .find_map(|spec| {
            let v = src.get(&spec.name)?;
            let empty = match v {
                AttrValue::S(s) => s.is_empty(),
                AttrValue::B(b) => b.is_empty(),
                _ => false,
            };
            if !empty || v.type_name() != spec.ty {
                return None;
            }
            super::meta::key_value(spec, Some(v), super::meta::KeyOf::Item).err()
        })
}

/// Failure of a condition: AWS's ConditionalCheckFailedException, with the old item when
/// ReturnValuesOnConditionCheckFailure=ALL_OLD.
fn cond_failed(old: Option<&Arc<Item>>, rv_on_fail: bool) -> DdbError {
    let mut e = DdbError::conditional_failed();
    if rv_on_fail && let Some(o) = old {
        let mut m = Map::new();
        m.insert("Item".into(), item_to_json(o));
        e.extra = Some(m);
    }
    e
}

/// Compute a write against the current state (nothing is changed yet).
pub fn prepare(t: &Table, w: &WriteReq, pk: PKey) -> Result<Prepared, DdbError> {
    let old = t.get(&pk).cloned();
    if let Some(c) = &w.cond {
        let empty = Item::new();
        let cur = old.as_deref().unwrap_or(&empty);
        if !eval_cond(c, cur, &w.ctx, "ConditionExpression")? {
            if w.insert {
                return Err(DdbError::new(
                    ErrorCode::DuplicateItem,
                    "Duplicate primary key exists in table",
                ));
            }
            return Err(cond_failed(old.as_ref(), w.rv_on_fail));
        }
    }
    let (new, writes) = match &w.action {
        Action::Put(item) => (Some(item.clone()), true),
        Action::Delete => (None, true),
        Action::Check => (old.clone(), false),
        Action::Update(u) => {
            for p in &w.paths {
                if let Some(Seg::Key(k)) = p.first()
                    && t.meta.is_key_attr(k)
                {
                    return Err(DdbError::validation(format!(
                        "One or more parameter values were invalid: Cannot update attribute {k}. This attribute is part of the key"
                    )));
                }
            }
            if let Some(u) = u {
                index_keys::update_types(&t.meta, &w.ctx, u)?;
                index_keys::scalar_keys(&t.meta, index_keys::update_nested_heads(u, &w.ctx))?;
            }
            let mut item = match &old {
                Some(o) => (**o).clone(),
                None => t.key_item(&pk),
            };
            // REMOVE alone on an item that is not there removes nothing, whatever its paths
            // (DynamoDB does not refuse `REMOVE x.y` then, as it does on an item without x).
            let removes_from_nothing = old.is_none()
                && u.as_ref()
                    .is_some_and(|u| u.set.is_empty() && u.add.is_empty() && u.delete.is_empty());
            if let Some(u) = u
                && !removes_from_nothing
            {
                apply_update(u, &mut item, &w.ctx)?;
                index_keys::updated_item(&t.meta, &item)?;
            }
            t.validate_item(&item, true)?;
            // Only removals on an item that is not there: DynamoDB creates nothing.
            let removes_only = u.as_ref().is_some_and(|u| {
                u.set.is_empty()
                    && u.add.is_empty()
                    && !(u.remove.is_empty() && u.delete.is_empty())
            });
            if old.is_none() && removes_only {
                (None, false)
            } else {
                (Some(Arc::new(item)), true)
            }
        }
        Action::AttributeUpdates(ups) => {
            if let Some(k) = ups.iter().find(|u| t.meta.is_key_attr(&u.name)) {
                return Err(DdbError::validation(format!(
                    "One or more parameter values were invalid: Cannot update attribute {}. This attribute is part of the key",
                    k.name
                )));
            }
            index_keys::attribute_update_types(&t.meta, ups)?;
            let mut item = match &old {
                Some(o) => (**o).clone(),
                None => t.key_item(&pk),
            };
            apply_attribute_updates(&mut item, ups)?;
            t.validate_item(&item, true)?;
            // Only DELETE actions on an item that is not there: DynamoDB creates nothing (an
            // empty AttributeUpdates does create the item).
            let deletes_only =
                !ups.is_empty() && ups.iter().all(|u| matches!(u.action, UpdateAction::Delete));
            if old.is_none() && deletes_only {
                (None, false)
            } else {
                (Some(Arc::new(item)), true)
            }
        }
    };
    if writes {
        t.check_collection(&pk, old.as_deref(), new.as_deref())?;
    }
    Ok(Prepared {
        pk,
        old,
        new,
        writes,
    })
}

pub(crate) fn return_values(w: &WriteReq, p: &Prepared) -> Option<Value> {
    let item: Item = match w.rv {
        ReturnValues::None => return None,
        ReturnValues::AllOld => (**p.old.as_ref()?).clone(),
        ReturnValues::AllNew => (**p.new.as_ref()?).clone(),
        ReturnValues::UpdatedOld => project(p.old.as_ref()?, &w.paths),
        ReturnValues::UpdatedNew => project(p.new.as_ref()?, &w.paths),
    };
    (!item.is_empty()).then(|| item_to_json(&item))
}

/// What `ReturnConsumedCapacity` asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Capacity {
    /// `NONE`, absent (or anything else).
    #[default]
    None,
    /// `TOTAL`
    Total,
    /// `INDEXES`
    Indexes,
}

impl Capacity {
    pub fn parse(req: &Value) -> Capacity {
        match opt_str(req, "ReturnConsumedCapacity") {
            Some("TOTAL") => Capacity::Total,
            Some("INDEXES") => Capacity::Indexes,
            _ => Capacity::None,
        }
    }

    /// Whether the request asked for its consumed capacity (computing it is not free: an
    /// item's size walks all its attributes).
    pub fn wanted(self) -> bool {
        !matches!(self, Capacity::None)
    }

    /// `ConsumedCapacity` of `units` on `table`, when asked for: the total, and with
    /// `INDEXES` the table's and each secondary index's share.
    pub fn consumed(self, table: &str, units: &Units) -> Option<Value> {
        if self == Capacity::None {
            return None;
        }
        let mut c = Map::new();
        c.insert("TableName".into(), json!(table));
        c.insert("CapacityUnits".into(), json!(units.total()));
        if self == Capacity::Indexes {
            c.insert("Table".into(), json!({"CapacityUnits": units.table}));
            for (global, member) in [
                (true, "GlobalSecondaryIndexes"),
                (false, "LocalSecondaryIndexes"),
            ] {
                let list: Map<String, Value> = units
                    .indexes
                    .iter()
                    .filter(|i| i.global == global)
                    .map(|i| (i.name.clone(), json!({"CapacityUnits": i.units})))
                    .collect();
                if !list.is_empty() {
                    c.insert(member.into(), Value::Object(list));
                }
            }
        }
        Some(Value::Object(c))
    }
}

/// Capacity units one operation consumed on one table: the table's own and those of each
/// secondary index it read or wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Units {
    pub table: f64,
    /// The indexes read or written, in the order first touched.
    pub indexes: Vec<IndexUnits>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IndexUnits {
    pub name: String,
    pub global: bool,
    pub units: f64,
}

impl Units {
    /// Units of the table alone.
    pub fn table(units: f64) -> Units {
        Units {
            table: units,
            indexes: Vec::new(),
        }
    }

    /// The table's and every index's units together (`CapacityUnits`).
    pub fn total(&self) -> f64 {
        self.table + self.indexes.iter().map(|i| i.units).sum::<f64>()
    }

    /// These units with the table's multiplied by `k` (a transaction writes and reads every
    /// item twice; its index updates are ordinary writes, made once).
    pub fn table_times(mut self, k: f64) -> Units {
        self.table *= k;
        self
    }

    /// Add `other`'s units to these.
    pub fn add(&mut self, other: &Units) {
        self.table += other.table;
        for i in &other.indexes {
            match self.indexes.iter_mut().find(|x| x.name == i.name) {
                Some(x) => x.units += i.units,
                None => self.indexes.push(i.clone()),
            }
        }
    }
}

/// Whether the request asked for `ItemCollectionMetrics`.
pub(crate) fn wants_metrics(req: &Value) -> bool {
    opt_str(req, "ReturnItemCollectionMetrics") == Some("SIZE")
}

/// `ItemCollectionMetrics` of a batch or transaction: per table, one entry per write to a
/// table with a local secondary index, in request order.
pub(crate) struct Metrics {
    on: bool,
    by_table: Vec<(String, Vec<Value>)>,
}

impl Metrics {
    /// Collecting when `on` (the request asked for them).
    pub(crate) fn new(on: bool) -> Metrics {
        Metrics {
            on,
            by_table: Vec::new(),
        }
    }

    pub(crate) fn add(&mut self, t: &Table, hash: &KeyVal) {
        if !self.on {
            return;
        }
        let Some(m) = t.collection_metrics(hash) else {
            return;
        };
        let name = &t.meta.name;
        match self.by_table.iter_mut().find(|(n, _)| n == name) {
            Some((_, list)) => list.push(m),
            None => self.by_table.push((name.clone(), vec![m])),
        }
    }

    pub(crate) fn into_json(self) -> Option<Value> {
        if self.by_table.is_empty() {
            return None;
        }
        Some(Value::Object(
            self.by_table
                .into_iter()
                .map(|(n, l)| (n, Value::Array(l)))
                .collect(),
        ))
    }
}

/// How long DynamoDB remembers a transaction's `ClientRequestToken` after it succeeded.
const TOKEN_WINDOW_MS: u64 = 10 * 60 * 1000;

/// A `ClientRequestToken` a transaction succeeded with.
#[derive(Debug, Clone)]
pub struct TokenUse {
    /// A hash of the rest of the request.
    fingerprint: u64,
    /// Forgotten after this (ms on the engine's clock).
    until: u64,
}

/// What a write transaction asks for besides its items.
#[derive(Debug, Clone, Default)]
pub(crate) struct TxOptions {
    /// `ReturnItemCollectionMetrics` is `SIZE`.
    pub metrics: bool,
    pub capacity: Capacity,
    /// `ClientRequestToken` and a hash of every other member of the request.
    pub token: Option<(String, u64)>,
}

impl TxOptions {
    pub(crate) fn parse(req: &Value) -> TxOptions {
        use std::hash::{Hash, Hasher};
        let token = opt_str(req, "ClientRequestToken").map(|t| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            if let Some(m) = req.as_object() {
                for (k, v) in m.iter().filter(|(k, _)| *k != "ClientRequestToken") {
                    k.hash(&mut h);
                    v.to_string().hash(&mut h);
                }
            }
            (t.to_string(), h.finish())
        });
        TxOptions {
            metrics: wants_metrics(req),
            capacity: Capacity::parse(req),
            token,
        }
    }
}

/// Add `units` to `table`'s entry (tables in the order first seen).
pub(crate) fn add_units(per_table: &mut Vec<(String, Units)>, table: &str, units: &Units) {
    match per_table.iter_mut().find(|(t, _)| t == table) {
        Some((_, u)) => u.add(units),
        None => per_table.push((table.to_string(), units.clone())),
    }
}

/// `ConsumedCapacity` of a batch: one entry per table, in request order.
pub fn batch_consumed(capacity: Capacity, per_table: &[(String, Units)]) -> Option<Value> {
    let list: Vec<Value> = per_table
        .iter()
        .filter_map(|(t, u)| capacity.consumed(t, u))
        .collect();
    (!list.is_empty()).then_some(Value::Array(list))
}

/// A write that [`TableEngine::apply_each`] carried out.
pub(crate) struct Applied {
    pub prepared: Prepared,
    /// `ItemCollectionMetrics` after the write, when asked for.
    pub metrics: Option<Value>,
    /// The write's capacity units, when asked for.
    pub units: Option<Units>,
}

impl Applied {
    /// The answer of a single write: `Attributes` (ReturnValues), `ItemCollectionMetrics`
    /// and `ConsumedCapacity` (as `capacity` asks for it).
    pub(crate) fn response(&self, capacity: Capacity, w: &WriteReq) -> Map<String, Value> {
        let p = &self.prepared;
        let mut out = Map::new();
        if let Some(a) = return_values(w, p) {
            out.insert("Attributes".into(), a);
        }
        if let Some(m) = &self.metrics {
            out.insert("ItemCollectionMetrics".into(), m.clone());
        }
        if let Some(c) = self
            .units
            .as_ref()
            .and_then(|u| capacity.consumed(&w.table, u))
        {
            out.insert("ConsumedCapacity".into(), c);
        }
        out
    }
}

impl TableEngine {
    /// Carry out independent writes in order under one lock, each succeeding or failing on
    /// its own, with one journal submission for all of them (a single write is a batch of
    /// one; BatchExecuteStatement's writes are several).
    pub(crate) fn apply_each(
        &self,
        writes: &[WriteReq],
        metrics: bool,
        capacity: Capacity,
    ) -> Result<(Vec<Result<Applied, DdbError>>, Ticket), DdbError> {
        self.journal.check()?;
        let mut g = self.state.write();
        let change = self.change();
        let mut records = Vec::with_capacity(writes.len());
        let out = writes
            .iter()
            .map(|w| {
                let t = g.get_mut(&w.table)?;
                let pk = w.pk(t)?;
                let p = prepare(t, w, pk)?;
                let units = capacity
                    .wanted()
                    .then(|| t.write_units(p.old.as_deref(), p.new.as_deref()));
                if p.writes {
                    t.write(p.pk.clone(), p.new.clone(), change, &mut records);
                }
                let metrics = metrics.then(|| t.collection_metrics(&p.pk.0)).flatten();
                Ok(Applied {
                    prepared: p,
                    metrics,
                    units,
                })
            })
            .collect();
        let ticket = if records.is_empty() {
            Ticket::ready(Ok(()))
        } else {
            self.submit(records)
        };
        drop(g);
        Ok((out, ticket))
    }

    /// Carry out one write.
    pub(crate) fn apply_one(
        &self,
        w: &WriteReq,
        metrics: bool,
        capacity: Capacity,
    ) -> Result<(Applied, Ticket), DdbError> {
        let (mut results, ticket) = self.apply_each(std::slice::from_ref(w), metrics, capacity)?;
        let applied = results
            .pop()
            .unwrap_or_else(|| Err(DdbError::internal("a write went missing")))?;
        Ok((applied, ticket))
    }

    /// Carry out parsed writes all or nothing (TransactWriteItems, a writing
    /// ExecuteTransaction): every condition is checked first, and one that fails cancels
    /// the whole transaction with a reason per write. `metrics`: the request asked for
    /// `ItemCollectionMetrics`.
    pub(crate) fn transact_writes(
        &self,
        opts: &TxOptions,
        writes: &[WriteReq],
    ) -> Result<(Value, Ticket), DdbError> {
        self.journal.check()?;
        let mut g = self.state.write();
        let now = self.clock.now().as_millis();
        if let Some((token, fingerprint)) = &opts.token {
            g.tokens.retain(|_, u| u.until > now);
            if let Some(used) = g.tokens.get(token) {
                if used.fingerprint != *fingerprint {
                    return Err(DdbError::new(
                        ErrorCode::IdempotentParameterMismatch,
                        "The request uses the same client token as a previous, but non-identical request.",
                    ));
                }
                // Done already: nothing changes, and the answer waits for the first
                // request's changes to be durable. Its capacity is that of reading the items.
                let mut units = Vec::new();
                for w in writes {
                    let t = g.get(&w.table)?;
                    let size = w.pk(t).ok().and_then(|pk| t.get(&pk).map(|i| item_size(i)));
                    let u = Units::table(read_units(size.unwrap_or(0), true));
                    add_units(&mut units, &w.table, &u);
                }
                let mut out = json!({});
                if let Some(c) = batch_consumed(opts.capacity, &units) {
                    out["ConsumedCapacity"] = c;
                }
                return Ok((out, self.journal.barrier()));
            }
        }
        let change = self.change();
        let mut pks = Vec::with_capacity(writes.len());
        let mut seen = BTreeSet::new();
        for (i, w) in writes.iter().enumerate() {
            let t = g.get(&w.table)?;
            if let Some(e) = empty_key_value(t, w) {
                return Err(e);
            }
            // A key DynamoDB cannot read cancels the transaction with this action's
            // ValidationError; the actions after it are not looked at.
            let pk = w.pk(t).map_err(|e| {
                let reasons = (0..writes.len())
                    .map(|j| {
                        if j == i {
                            json!({"Code": "ValidationError", "Message": e.message})
                        } else {
                            json!({"Code": "None"})
                        }
                    })
                    .collect();
                cancelled(reasons)
            })?;
            if !seen.insert((w.table.clone(), pk.clone())) {
                return Err(DdbError::validation(
                    "Transaction request cannot include multiple operations on one item",
                ));
            }
            pks.push(pk);
        }
        let mut reasons = Vec::with_capacity(writes.len());
        let mut prepared = Vec::with_capacity(writes.len());
        let mut failed = false;
        for (w, pk) in writes.iter().zip(pks) {
            let t = g.get(&w.table)?;
            match prepare(t, w, pk) {
                Ok(p) => {
                    reasons.push(json!({"Code": "None"}));
                    prepared.push((w.table.clone(), p));
                }
                Err(e) => {
                    failed = true;
                    let mut r = json!({
                        "Code": match e.code {
                            ErrorCode::ConditionalCheckFailed => "ConditionalCheckFailed",
                            ErrorCode::ItemCollectionSizeLimitExceeded => "ItemCollectionSizeLimitExceeded",
                            ErrorCode::DuplicateItem => "DuplicateItem",
                            _ => "ValidationError",
                        },
                        "Message": e.message,
                    });
                    if let Some(item) = e.extra.as_ref().and_then(|x| x.get("Item")) {
                        r["Item"] = item.clone();
                    }
                    reasons.push(r);
                }
            }
        }
        if failed {
            return Err(cancelled(reasons));
        }
        let mut records = Vec::new();
        let mut metrics = Metrics::new(opts.metrics);
        // A transaction writes every item twice (prepare, commit): twice the table's units.
        let mut units = Vec::new();
        for (table, p) in prepared {
            let Ok(t) = g.get_mut(&table) else {
                continue;
            };
            if opts.capacity.wanted() {
                let u = t.write_units(p.old.as_deref(), p.new.as_deref());
                add_units(&mut units, &table, &u.table_times(2.0));
            }
            if p.writes {
                let hash = p.pk.0.clone();
                t.write(p.pk, p.new, change, &mut records);
                metrics.add(t, &hash);
            }
        }
        if let Some((token, fingerprint)) = &opts.token {
            g.tokens.insert(
                token.clone(),
                TokenUse {
                    fingerprint: *fingerprint,
                    until: now + TOKEN_WINDOW_MS,
                },
            );
        }
        let ticket = self.submit(records);
        drop(g);
        let mut out = json!({});
        if let Some(m) = metrics.into_json() {
            out["ItemCollectionMetrics"] = m;
        }
        if let Some(c) = batch_consumed(opts.capacity, &units) {
            out["ConsumedCapacity"] = c;
        }
        Ok((out, ticket))
    }

    /// Reads by key from one consistent state (TransactGetItems, a reading
    /// ExecuteTransaction): `{"Responses": [{"Item": ...} or {}, ...]}`.
    pub(crate) fn transact_reads(
        &self,
        gets: &[KeyRead],
        capacity: Capacity,
    ) -> Result<Value, DdbError> {
        let g = self.state.read();
        let mut seen = BTreeSet::new();
        let mut resolved = Vec::new();
        for r in gets {
            let t = g.get(&r.table)?;
            let pk = t.key_from_param(&r.key)?;
            if !seen.insert((r.table.clone(), pk.clone())) {
                return Err(DdbError::validation(
                    "Transaction request cannot include multiple operations on one item",
                ));
            }
            resolved.push((t, pk, r));
        }
        let mut responses = Vec::with_capacity(resolved.len());
        // A transaction reads every item twice (prepare, commit), strongly consistent.
        let mut units = Vec::new();
        for (t, pk, r) in resolved {
            if capacity.wanted() {
                let size = t.get(&pk).map_or(0, |i| item_size(i));
                let u = Units::table(2.0 * read_units(size, true));
                add_units(&mut units, &r.table, &u);
            }
            responses.push(match r.read(t, &pk)? {
                Some(item) => json!({ "Item": item }),
                None => json!({}),
            });
        }
        let mut out = json!({ "Responses": responses });
        if let Some(c) = batch_consumed(capacity, &units) {
            out["ConsumedCapacity"] = c;
        }
        Ok(out)
    }
}

/// A read of one item by its full key, as transactions and batches of statements make.
pub(crate) struct KeyRead {
    pub table: String,
    pub key: Item,
    pub proj: Projection,
    /// A PartiQL read's WHERE clause: the item is answered only when it matches.
    pub cond: Option<(Cond, Ctx)>,
}

impl KeyRead {
    /// The item, projected, or `None` when there is none or it does not match.
    pub(crate) fn read(&self, t: &Table, pk: &PKey) -> Result<Option<Value>, DdbError> {
        let Some(item) = t.get(pk) else {
            return Ok(None);
        };
        if let Some((c, ctx)) = &self.cond
            && !eval_cond(c, item, ctx, "WHERE clause")?
        {
            return Ok(None);
        }
        Ok(Some(self.proj.to_json(item)))
    }
}

/// Read units of reading one item of `size` bytes: a unit per 4 KB (at least one), halved
/// for an eventually consistent read.
pub fn read_units(size: usize, consistent: bool) -> f64 {
    let blocks = size.div_ceil(4096).max(1) as f64;
    if consistent { blocks } else { blocks / 2.0 }
}

/// AttributesToGet names each attribute once (DynamoDB checks this before the table).
pub(crate) fn no_duplicate_attributes(req: &Value) -> Result<(), DdbError> {
    let Some(list) = req.get("AttributesToGet").and_then(Value::as_array) else {
        return Ok(());
    };
    if let Some(problem) = list
        .iter()
        .filter_map(Value::as_str)
        .find_map(super::value::attr_name_problem)
    {
        return Err(DdbError::validation(format!(
            "One or more parameter values were invalid: {problem} in AttributesToGet"
        )));
    }
    let mut seen = std::collections::HashSet::new();
    match list
        .iter()
        .filter_map(Value::as_str)
        .find(|s| !seen.insert(*s))
    {
        Some(d) => Err(DdbError::validation(format!(
            "One or more parameter values were invalid: Duplicate value in attribute name: {d}"
        ))),
        None => Ok(()),
    }
}

/// A ProjectionExpression (or legacy AttributesToGet) of a read.
#[derive(Debug, Clone, Default)]
pub struct Projection {
    pub paths: Option<Vec<Vec<Seg>>>,
    /// The paths came from the legacy `AttributesToGet` (what errors name).
    pub legacy: bool,
}

impl Projection {
    pub fn parse(req: &Value) -> Result<Projection, DdbError> {
        let legacy = req.get("AttributesToGet").and_then(|v| v.as_array());
        if opt_str(req, "ProjectionExpression").is_none() {
            no_duplicate_attributes(req)?;
        }
        super::req::require_expressions(
            req,
            &[
                "ProjectionExpression",
                "FilterExpression",
                "KeyConditionExpression",
            ],
        )?;
        let ctx = parse_ctx(req)?;
        let mut used = Used::default();
        let proj = match opt_str(req, "ProjectionExpression") {
            Some(s) => {
                let (paths, resolved) = parse_projection_ctx(s, &ctx)?;
                paths.iter().for_each(|p| used.path(p));
                Some(resolved)
            }
            None => None,
        };
        if req.get("AttributesToGet").is_some_and(|v| !v.is_null()) && proj.is_some() {
            return Err(DdbError::validation(
                "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}",
            ));
        }
        // Filters and key conditions of Query/Scan share the placeholders; they check them.
        if req.get("FilterExpression").is_none() && req.get("KeyConditionExpression").is_none() {
            ctx.check(&used)?;
        }
        let paths = match proj {
            Some(r) => Some(r),
            None => legacy.map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str())
                    .map(|s| vec![Seg::Key(s.to_string())])
                    .collect()
            }),
        };
        Ok(Projection {
            paths,
            legacy: legacy.is_some(),
        })
    }

    /// The first attributes of the projected paths that go deeper than them (GetItem refuses
    /// these when they are key attributes).
    pub fn nested_heads(&self) -> impl Iterator<Item = &str> {
        self.paths
            .iter()
            .flatten()
            .filter(|p| p.len() > 1)
            .filter_map(|p| match &p[0] {
                Seg::Key(k) => Some(k.as_str()),
                Seg::Idx(_) => None,
            })
    }

    /// The projected item in wire form, without copying the item when nothing is projected.
    pub fn to_json(&self, item: &Item) -> Value {
        match &self.paths {
            None => item_to_json(item),
            Some(p) => item_to_json(&project(item, p)),
        }
    }

    /// The projected item, borrowed when nothing is projected.
    pub fn view<'i>(&self, item: &'i Item) -> std::borrow::Cow<'i, Item> {
        match &self.paths {
            None => std::borrow::Cow::Borrowed(item),
            Some(p) => std::borrow::Cow::Owned(project(item, p)),
        }
    }

    pub fn apply(&self, item: &Item) -> Item {
        match &self.paths {
            None => item.clone(),
            Some(p) => project(item, p),
        }
    }
}

/// A TransactionCanceledException with one reason per action.
fn cancelled(reasons: Vec<Value>) -> DdbError {
    let codes: Vec<&str> = reasons
        .iter()
        .map(|r| r["Code"].as_str().unwrap_or("None"))
        .collect();
    let mut e = DdbError::new(
        ErrorCode::TransactionCanceled,
        format!(
            "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
            codes.join(", ")
        ),
    );
    let mut m = Map::new();
    m.insert("CancellationReasons".into(), Value::Array(reasons));
    e.extra = Some(m);
    e
}

/// The most a transaction may carry: DynamoDB's 4 MB of items, counted over what the
/// request itself holds (a Put's item, each action's key and expression values), not the
/// items it touches (deleting large items is allowed).
pub const MAX_TRANSACTION_PAYLOAD: usize = 4 * 1024 * 1024;

/// The size of what a transaction's actions carry, as [`MAX_TRANSACTION_PAYLOAD`] counts it.
pub fn transaction_payload(writes: &[WriteReq]) -> usize {
    writes
        .iter()
        .map(|w| {
            let item = match &w.action {
                Action::Put(i) => item_size(i),
                _ => w.key.as_ref().map_or(0, item_size),
            };
            item + w.ctx.values.values().map(AttrValue::size).sum::<usize>()
        })
        .sum()
}
