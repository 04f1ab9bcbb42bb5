//! Query and Scan: key conditions, secondary indexes, filters, projections, Select, Limit,
//! the 1 MB page limit, ExclusiveStartKey/LastEvaluatedKey and parallel-scan segments.

use std::collections::BTreeSet;
use std::ops::Bound;

use serde_json::{Map, Value, json};

use super::TableEngine;
use super::engine::{IxEntry, Table};
use super::error::DdbError;
use super::expr::eval::{begins_with, between, compare, eval_cond};
use super::expr::{CmpOp, Cond, Ctx, Operand, Seg, Used, parse_condition, parse_projection};
use super::items::Projection;
use super::meta::{IndexMeta, KeySpec, PKey};
use super::req::{ctx as parse_ctx, opt_bool, opt_i64, opt_str, table_name, vmsg};
use super::value::{
    AttrValue, Item, KeyVal, PartKey, item_from_json, item_size, item_to_json, page_size,
    segment_buckets,
};

/// A page holds at most 1 MB of items read (before filtering), as in DynamoDB.
pub const PAGE_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Select {
    All,
    AllProjected,
    Specific,
    Count,
}

/// The key condition on the sort key.
#[derive(Debug, Clone)]
enum RangeCond {
    Cmp(CmpOp, AttrValue),
    Between(AttrValue, AttrValue),
    BeginsWith(AttrValue),
}

impl RangeCond {
    fn matches(&self, v: Option<&KeyVal>) -> Result<bool, DdbError> {
        let Some(v) = v.map(|k| k.to_attr()) else {
            return Ok(false);
        };
        Ok(match self {
            RangeCond::Cmp(op, x) => compare(*op, Some(&v), Some(x)),
            RangeCond::Between(lo, hi) => {
                between("KeyConditionExpression", Some(&v), Some(lo), Some(hi))?
            }
            RangeCond::BeginsWith(p) => begins_with(Some(&v), Some(p)),
        })
    }

    /// Bounds on the sort key that contain every match (may contain more).
    fn bounds(&self) -> (Bound<Option<KeyVal>>, Bound<Option<KeyVal>>) {
        let k = |v: &AttrValue| KeyVal::from_attr(v);
        match self {
            RangeCond::Cmp(CmpOp::Eq, v) => (Bound::Included(k(v)), Bound::Included(k(v))),
            RangeCond::Cmp(CmpOp::Lt, v) => (Bound::Unbounded, Bound::Excluded(k(v))),
            RangeCond::Cmp(CmpOp::Le, v) => (Bound::Unbounded, Bound::Included(k(v))),
            RangeCond::Cmp(CmpOp::Gt, v) => (Bound::Excluded(k(v)), Bound::Unbounded),
            RangeCond::Cmp(CmpOp::Ge, v) => (Bound::Included(k(v)), Bound::Unbounded),
            RangeCond::Cmp(CmpOp::Ne, _) => (Bound::Unbounded, Bound::Unbounded),
            RangeCond::Between(lo, hi) => (Bound::Included(k(lo)), Bound::Included(k(hi))),
            RangeCond::BeginsWith(p) => (Bound::Included(k(p)), Bound::Unbounded),
        }
    }
}

/// A range that `BTreeMap::range` accepts without panicking (it panics on start > end).
fn valid_range<T: Ord>(lo: &Bound<T>, hi: &Bound<T>) -> bool {
    match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a <= b,
        (Bound::Included(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b))
        | (Bound::Excluded(a), Bound::Excluded(b)) => a < b,
        _ => true,
    }
}

fn bound_val<T>(b: &Bound<T>) -> Option<&T> {
    match b {
        Bound::Included(v) | Bound::Excluded(v) => Some(v),
        Bound::Unbounded => None,
    }
}

/// Where the rows come from: the table itself or one of its indexes.
struct Source<'a> {
    t: &'a Table,
    index: Option<&'a IndexMeta>,
}

impl<'a> Source<'a> {
    fn hash_spec(&self) -> &'a KeySpec {
        self.index.map_or(&self.t.meta.hash, |i| &i.hash)
    }
    fn range_spec(&self) -> Option<&'a KeySpec> {
        match self.index {
            Some(i) => i.range.as_ref(),
            None => self.t.meta.range.as_ref(),
        }
    }

    /// Whether the index holds every attribute of its items.
    fn projects_all(&self) -> bool {
        self.index.is_none_or(|ix| ix.projection == "ALL")
    }

    /// The item as the index projects it.
    fn projected(&self, item: &Item) -> Item {
        let Some(ix) = self.index else {
            return item.clone();
        };
        if ix.projection == "ALL" {
            return item.clone();
        }
        let mut keep: Vec<&str> = vec![self.t.meta.hash.name.as_str(), ix.hash.name.as_str()];
        if let Some(r) = &self.t.meta.range {
            keep.push(&r.name);
        }
        if let Some(r) = &ix.range {
            keep.push(&r.name);
        }
        keep.extend(ix.non_key.iter().map(|s| s.as_str()));
        item.iter()
            .filter(|(k, _)| keep.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The LastEvaluatedKey for an item: table keys plus index keys.
    fn last_key(&self, pk: &PKey, item: &Item) -> Value {
        let mut k = self.t.key_item(pk);
        if let Some(ix) = self.index {
            for spec in std::iter::once(&ix.hash).chain(ix.range.iter()) {
                if let Some(v) = item.get(&spec.name) {
                    k.insert(spec.name.clone(), v.clone());
                }
            }
        }
        item_to_json(&k)
    }

    /// Decode an ExclusiveStartKey into (index hash, index sort, table key).
    fn start_key(&self, esk: &Item) -> Result<(KeyVal, Option<KeyVal>, PKey), DdbError> {
        let invalid = || {
            DdbError::validation(
                "The provided starting key is invalid: The provided key element does not match the schema",
            )
        };
        let mut table_part = Item::new();
        for spec in std::iter::once(&self.t.meta.hash).chain(self.t.meta.range.iter()) {
            let v = esk.get(&spec.name).ok_or_else(invalid)?;
            table_part.insert(spec.name.clone(), v.clone());
        }
        let pk = self.t.key_from_param(&table_part).map_err(|_| invalid())?;
        let Some(ix) = self.index else {
            if esk.len() != table_part.len() {
                return Err(invalid());
            }
            return Ok((pk.0.clone(), pk.1.clone(), pk));
        };
        let h = esk
            .get(&ix.hash.name)
            .and_then(KeyVal::from_attr)
            .ok_or_else(invalid)?;
        let r = match &ix.range {
            Some(spec) => Some(
                esk.get(&spec.name)
                    .and_then(KeyVal::from_attr)
                    .ok_or_else(invalid)?,
            ),
            None => None,
        };
        Ok((h, r, pk))
    }

    /// Rows of one partition in order, starting after `after` when given.
    fn partition(
        &self,
        hash: &KeyVal,
        bounds: (Bound<Option<KeyVal>>, Bound<Option<KeyVal>>),
        forward: bool,
        after: Option<(Option<KeyVal>, PKey)>,
    ) -> Box<dyn Iterator<Item = (Option<KeyVal>, PKey)> + 'a> {
        let (mut lo, mut hi) = bounds;
        // Narrow the range to the part after the start key.
        if let Some((s, _)) = &after {
            if forward {
                if bound_val(&lo).is_none_or(|l| s >= l) {
                    lo = Bound::Included(s.clone());
                }
            } else if bound_val(&hi).is_none_or(|h| s <= h) {
                hi = Bound::Included(s.clone());
            }
        }
        if !valid_range(&lo, &hi) {
            return Box::new(std::iter::empty());
        }
        // Entries sharing a sort key (only in indexes) are ordered as IxEntry orders them.
        let after = after.map(|(s, pk)| (s, IxEntry::new(pk)));
        let past = move |s: &Option<KeyVal>, pk: &PKey| -> bool {
            match &after {
                None => true,
                Some((as_, apk)) => {
                    let o = (s, &IxEntry::new(pk.clone())).cmp(&(as_, apk));
                    if forward {
                        o == std::cmp::Ordering::Greater
                    } else {
                        o == std::cmp::Ordering::Less
                    }
                }
            }
        };
        match self.index {
            None => {
                let Some(part) = self.t.items.get(&PartKey::new(hash.clone())) else {
                    return Box::new(std::iter::empty());
                };
                let h = hash.clone();
                let it = part
                    .range((lo, hi))
                    .map(move |(r, _)| (r.clone(), (h.clone(), r.clone())));
                if forward {
                    Box::new(it.filter(move |(s, pk)| past(s, pk)))
                } else {
                    Box::new(it.rev().filter(move |(s, pk)| past(s, pk)))
                }
            }
            Some(ix) => {
                let Some(part) = self
                    .t
                    .indexes
                    .get(&ix.name)
                    .and_then(|d| d.parts.get(&PartKey::new(hash.clone())))
                else {
                    return Box::new(std::iter::empty());
                };
                let it = part.range((lo, hi));
                if forward {
                    Box::new(
                        it.flat_map(|(s, set)| set.iter().map(move |e| (s.clone(), e.pk.clone())))
                            .filter(move |(s, pk)| past(s, pk)),
                    )
                } else {
                    Box::new(
                        it.rev()
                            .flat_map(|(s, set)| {
                                set.iter().rev().map(move |e| (s.clone(), e.pk.clone()))
                            })
                            .filter(move |(s, pk)| past(s, pk)),
                    )
                }
            }
        }
    }

    /// Every row in scan order (DynamoDB's hash order of partitions), limited to the hash
    /// buckets `buckets` (a parallel scan segment), after `after` when given.
    fn all(
        &self,
        after: Option<(KeyVal, Option<KeyVal>, PKey)>,
        buckets: (u32, u32),
    ) -> Box<dyn Iterator<Item = (KeyVal, PKey)> + 'a> {
        let start = match &after {
            Some((h, _, _)) => Bound::Included(PartKey::new(h.clone())),
            None => Bound::Included(PartKey::lower_bound(buckets.0 << 12)),
        };
        let end = if buckets.1 >= 4096 {
            Bound::Unbounded
        } else {
            Bound::Excluded(PartKey::lower_bound(buckets.1 << 12))
        };
        if let (Bound::Included(s), Bound::Excluded(e)) = (&start, &end)
            && s >= e
        {
            return Box::new(std::iter::empty());
        }
        match self.index {
            None => {
                let it = self.t.items.range((start, end)).flat_map(|(h, part)| {
                    part.keys()
                        .map(move |r| (h.key.clone(), (h.key.clone(), r.clone())))
                });
                // Later partitions (in hash order) all come after the start key's.
                Box::new(it.filter(move |(h, pk)| {
                    after.as_ref().is_none_or(|(_, _, a)| *h != a.0 || pk > a)
                }))
            }
            Some(ix) => {
                let Some(data) = self.t.indexes.get(&ix.name) else {
                    return Box::new(std::iter::empty());
                };
                let it = data.parts.range((start, end)).flat_map(|(h, part)| {
                    part.iter().flat_map(move |(s, set)| {
                        set.iter().map(move |e| (h.key.clone(), s.clone(), e))
                    })
                });
                let after = after.map(|(h, s, pk)| (h, s, IxEntry::new(pk)));
                Box::new(
                    it.filter(move |(h, s, e)| match &after {
                        None => true,
                        Some((ah, as_, apk)) => {
                            // Later partitions (in hash order) come after the start key's.
                            h != ah || (s, *e) > (as_, apk)
                        }
                    })
                    .map(|(h, _, e)| (h, e.pk.clone())),
                )
            }
        }
    }
}

/// Parameters Query and Scan share.
struct ReadParams {
    table: String,
    index: Option<String>,
    filter: Option<Cond>,
    key_cond: Option<Cond>,
    proj: Projection,
    ctx: Ctx,
    limit: Option<usize>,
    esk: Option<Item>,
    select: Option<Select>,
    consistent: bool,
}

fn parse_read(req: &Value, query: bool) -> Result<ReadParams, DdbError> {
    let table = table_name(req)?.to_string();
    let index = opt_str(req, "IndexName").map(String::from);
    let mut ctx = parse_ctx(req)?;
    let mut used = Used::default();
    // translate() rejects a request that mixes legacy and expression parameters.
    let legacy_key = if query {
        super::legacy::translate(req, "KeyConditions", "KeyConditionExpression", &mut ctx)?
    } else {
        None
    };
    let filter_field = if query { "QueryFilter" } else { "ScanFilter" };
    let legacy_filter = super::legacy::translate(req, filter_field, "FilterExpression", &mut ctx)?;
    let key_cond = if query {
        let c = match (opt_str(req, "KeyConditionExpression"), legacy_key) {
            (Some(s), _) => parse_condition(s, "KeyConditionExpression")?,
            (None, Some(c)) => c,
            (None, None) => {
                return Err(DdbError::validation(
                    "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
                ));
            }
        };
        used.cond(&c);
        Some(c)
    } else {
        None
    };
    let filter = match opt_str(req, "FilterExpression") {
        Some(s) => Some(parse_condition(s, "FilterExpression")?),
        None => legacy_filter,
    };
    if let Some(c) = &filter {
        used.cond(c);
    }
    if let Some(p) = opt_str(req, "ProjectionExpression") {
        parse_projection(p)?.iter().for_each(|p| used.path(p));
    }
    ctx.check(&used)?;
    let proj = Projection::parse(req)?;
    let limit = match opt_i64(req, "Limit")? {
        None => None,
        Some(l) if l >= 1 => Some(l as usize),
        Some(l) => {
            return Err(vmsg(vec![format!(
                "Value '{l}' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
            )]));
        }
    };
    let esk = match req.get("ExclusiveStartKey").filter(|v| !v.is_null()) {
        Some(v) => Some(item_from_json(v)?),
        None => None,
    };
    let select = match opt_str(req, "Select") {
        None => None,
        Some("ALL_ATTRIBUTES") => Some(Select::All),
        Some("ALL_PROJECTED_ATTRIBUTES") => Some(Select::AllProjected),
        Some("SPECIFIC_ATTRIBUTES") => Some(Select::Specific),
        Some("COUNT") => Some(Select::Count),
        Some(other) => {
            return Err(vmsg(vec![format!(
                "Value '{other}' at 'select' failed to satisfy constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]"
            )]));
        }
    };
    let consistent = opt_bool(req, "ConsistentRead")?.unwrap_or(false);
    Ok(ReadParams {
        table,
        index,
        filter,
        key_cond,
        proj,
        ctx,
        limit,
        esk,
        select,
        consistent,
    })
}

fn flatten_and<'c>(c: &'c Cond, out: &mut Vec<&'c Cond>) -> Result<(), DdbError> {
    match c {
        Cond::And(a, b) => {
            flatten_and(a, out)?;
            flatten_and(b, out)
        }
        Cond::Or(..) => Err(DdbError::validation(
            "Invalid operator used in KeyConditionExpression: OR",
        )),
        Cond::Not(..) => Err(DdbError::validation(
            "Invalid operator used in KeyConditionExpression: NOT",
        )),
        other => {
            out.push(other);
            Ok(())
        }
    }
}

fn key_attr_name(o: &Operand, ctx: &Ctx) -> Result<Option<String>, DdbError> {
    match o {
        Operand::Path(p) => {
            let segs = ctx.resolve(p)?;
            match segs.as_slice() {
                [Seg::Key(k)] => Ok(Some(k.clone())),
                _ => Err(DdbError::validation(
                    "Key condition may not contain a nested attribute path",
                )),
            }
        }
        _ => Ok(None),
    }
}

fn value_of<'c>(o: &Operand, ctx: &'c Ctx) -> Result<&'c AttrValue, DdbError> {
    match o {
        Operand::Value(v) => ctx
            .values
            .get(v)
            .ok_or_else(|| DdbError::validation(format!("Invalid KeyConditionExpression: An expression attribute value used in expression is not defined; attribute value: {v}"))),
        _ => Err(DdbError::validation("Invalid KeyConditionExpression: Query key condition not supported")),
    }
}

fn flip(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        o => o,
    }
}

/// Split a key condition into the partition value and the sort-key condition.
fn analyse_key_cond(
    c: &Cond,
    ctx: &Ctx,
    hash: &KeySpec,
    range: Option<&KeySpec>,
) -> Result<(KeyVal, Option<RangeCond>), DdbError> {
    let mut parts = Vec::new();
    flatten_and(c, &mut parts)?;
    if parts.len() > 2 {
        return Err(DdbError::validation(
            "Conditions can be of length 1 or 2 only",
        ));
    }
    let mut hv: Option<KeyVal> = None;
    let mut rc: Option<RangeCond> = None;
    let unsupported = || DdbError::validation("Query key condition not supported");
    let type_check = |spec: &KeySpec, v: &AttrValue| -> Result<(), DdbError> {
        if v.type_name() != spec.ty {
            return Err(DdbError::validation(
                "One or more parameter values were invalid: Condition parameter type does not match schema type",
            ));
        }
        Ok(())
    };
    for p in parts {
        let (name, cond) = match p {
            Cond::Cmp(a, op, b) => {
                if let Some(n) = key_attr_name(a, ctx)? {
                    (n, RangeCond::Cmp(*op, value_of(b, ctx)?.clone()))
                } else if let Some(n) = key_attr_name(b, ctx)? {
                    (n, RangeCond::Cmp(flip(*op), value_of(a, ctx)?.clone()))
                } else {
                    return Err(unsupported());
                }
            }
            Cond::Between(a, lo, hi) => {
                let n = key_attr_name(a, ctx)?.ok_or_else(unsupported)?;
                let (lo, hi) = (value_of(lo, ctx)?.clone(), value_of(hi, ctx)?.clone());
                between("KeyConditionExpression", None, Some(&lo), Some(&hi))?;
                (n, RangeCond::Between(lo, hi))
            }
            Cond::BeginsWith(a, b) => {
                let n = key_attr_name(a, ctx)?.ok_or_else(unsupported)?;
                (n, RangeCond::BeginsWith(value_of(b, ctx)?.clone()))
            }
            _ => return Err(unsupported()),
        };
        if name == hash.name {
            let RangeCond::Cmp(CmpOp::Eq, v) = cond else {
                return Err(DdbError::validation("Query key condition not supported"));
            };
            if hv.is_some() {
                return Err(unsupported());
            }
            type_check(hash, &v)?;
            hv = Some(KeyVal::from_attr(&v).ok_or_else(unsupported)?);
        } else if let Some(r) = range.filter(|r| r.name == name) {
            if rc.is_some() {
                return Err(unsupported());
            }
            match &cond {
                RangeCond::Cmp(CmpOp::Ne, _) => return Err(unsupported()),
                RangeCond::Cmp(_, v) => type_check(r, v)?,
                RangeCond::Between(a, b) => {
                    type_check(r, a)?;
                    type_check(r, b)?;
                }
                RangeCond::BeginsWith(v) => {
                    if r.ty == "N" {
                        return Err(DdbError::validation(
                            "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
                        ));
                    }
                    type_check(r, v)?;
                }
            }
            rc = Some(cond);
        } else {
            return Err(DdbError::validation(format!(
                "Query condition missed key schema element: {}",
                hash.name
            )));
        }
    }
    let hv = hv.ok_or_else(|| {
        DdbError::validation(format!(
            "Query condition missed key schema element: {}",
            hash.name
        ))
    })?;
    Ok((hv, rc))
}

impl TableEngine {
    fn read_source<'a>(t: &'a Table, p: &ReadParams) -> Result<Source<'a>, DdbError> {
        let index = match &p.index {
            None => None,
            Some(n) => Some(t.meta.index(n).ok_or_else(|| {
                DdbError::validation(format!("The table does not have the specified index: {n}"))
            })?),
        };
        if let Some(ix) = index {
            if ix.global && p.consistent {
                return Err(DdbError::validation(
                    "Consistent reads are not supported on global secondary indexes",
                ));
            }
            if p.select == Some(Select::All) && ix.global && ix.projection != "ALL" {
                return Err(DdbError::validation(format!(
                    "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global secondary index {} because its projection type is not ALL",
                    ix.name
                )));
            }
        } else if p.select == Some(Select::AllProjected) {
            return Err(DdbError::validation(
                "One or more parameter values were invalid: Select type ALL_PROJECTED_ATTRIBUTES is supported only for index queries",
            ));
        }
        if p.select == Some(Select::Specific) && p.proj.paths.is_none() {
            return Err(DdbError::validation(
                "One or more parameter values were invalid: Select type SPECIFIC_ATTRIBUTES requires ProjectionExpression or AttributesToGet",
            ));
        }
        if p.proj.paths.is_some()
            && matches!(
                p.select,
                Some(Select::All | Select::AllProjected | Select::Count)
            )
        {
            return Err(DdbError::validation(
                "One or more parameter values were invalid: Cannot specify the ProjectionExpression when choosing to get ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES or COUNT",
            ));
        }
        Ok(Source { t, index })
    }

    /// Run the page loop over `rows` and build the response.
    fn page<'a>(
        &self,
        req: &Value,
        src: &Source<'a>,
        p: &ReadParams,
        rows: &mut dyn Iterator<Item = PKey>,
        keep: &dyn Fn(&PKey, &Item) -> Result<bool, DdbError>,
    ) -> Result<Value, DdbError> {
        let mut items = Vec::new();
        let mut count = 0usize;
        let mut scanned = 0usize;
        // Capacity counts the documented item sizes; the 1 MB page counts stored sizes.
        let mut bytes = 0usize;
        let mut index_bytes = 0usize;
        let mut page_bytes = 0usize;
        let mut last: Option<Value> = None;
        let select = p.select.unwrap_or(if p.proj.paths.is_some() {
            Select::Specific
        } else if src.index.is_some() {
            Select::AllProjected
        } else {
            Select::All
        });
        // LSIs with ALL_ATTRIBUTES fetch from the table; everything else reads the projection.
        let full = src.index.is_none() || select == Select::All;
        let range_key = src.t.meta.range.as_ref().map(|r| r.name.as_str());
        for pk in rows {
            let Some(item) = src.t.get(&pk) else { continue };
            if !keep(&pk, item)? {
                continue;
            }
            scanned += 1;
            let view: std::borrow::Cow<'_, Item> = if src.index.is_none() {
                std::borrow::Cow::Borrowed(&**item)
            } else {
                std::borrow::Cow::Owned(src.projected(item))
            };
            page_bytes += page_size(&view, range_key);
            if src.index.is_some() {
                index_bytes += item_size(&view);
                if full && !src.projects_all() {
                    bytes += item_size(item);
                }
            } else {
                bytes += item_size(item);
            }
            let view: std::borrow::Cow<'_, Item> = if full {
                std::borrow::Cow::Borrowed(&**item)
            } else {
                view
            };
            let pass = match &p.filter {
                Some(f) => eval_cond(f, &view, &p.ctx, "FilterExpression")?,
                None => true,
            };
            if pass {
                count += 1;
                if select != Select::Count {
                    items.push(p.proj.to_json(&view));
                }
            }
            // DynamoDB ends a page once the limit or 1 MB is reached and then always returns
            // the last key read, even when nothing follows it.
            if p.limit.is_some_and(|l| scanned >= l) || page_bytes >= PAGE_BYTES {
                last = Some(src.last_key(&pk, item));
                break;
            }
        }
        let mut out = Map::new();
        if select != Select::Count {
            out.insert("Items".into(), Value::Array(items));
        }
        out.insert("Count".into(), json!(count));
        out.insert("ScannedCount".into(), json!(scanned));
        if let Some(l) = last {
            out.insert("LastEvaluatedKey".into(), l);
        }
        if let Some(c) = read_consumed(req, &p.table, src, bytes, index_bytes, p.consistent) {
            out.insert("ConsumedCapacity".into(), c);
        }
        Ok(Value::Object(out))
    }

    pub(crate) fn query(&self, req: &Value) -> Result<Value, DdbError> {
        let p = parse_read(req, true)?;
        let forward = opt_bool(req, "ScanIndexForward")?.unwrap_or(true);
        let g = self.state.read();
        let t = g.get(&p.table)?;
        let src = Self::read_source(t, &p)?;
        let Some(kc) = &p.key_cond else {
            return Err(DdbError::validation("KeyConditionExpression is required"));
        };
        let (hash, rc) = analyse_key_cond(kc, &p.ctx, src.hash_spec(), src.range_spec())?;
        if let Some(f) = &p.filter {
            let mut used = Used::default();
            used.cond(f);
            let key_names: BTreeSet<&str> = [Some(src.hash_spec()), src.range_spec()]
                .into_iter()
                .flatten()
                .map(|s| s.name.as_str())
                .collect();
            let mut paths = Vec::new();
            collect_paths(f, &p.ctx, &mut paths)?;
            if let Some(k) = paths.iter().find(|k| key_names.contains(k.as_str())) {
                return Err(DdbError::validation(format!(
                    "Filter Expression can only contain non-primary key attributes: Primary key attribute: {k}"
                )));
            }
        }
        let after = match &p.esk {
            Some(esk) => {
                let (h, s, pk) = src.start_key(esk)?;
                if h != hash {
                    return Err(DdbError::validation(
                        "The provided starting key is outside query boundaries based on provided conditions",
                    ));
                }
                Some((s, pk))
            }
            None => None,
        };
        let bounds = rc
            .as_ref()
            .map_or((Bound::Unbounded, Bound::Unbounded), |r| r.bounds());
        let mut rows = src
            .partition(&hash, bounds, forward, after)
            .map(|(_, pk)| pk);
        let index = src.index;
        let range_name = src.range_spec().map(|s| s.name.clone());
        let keep = |_pk: &PKey, item: &Item| -> Result<bool, DdbError> {
            match (&rc, &range_name) {
                (Some(r), Some(n)) => {
                    let v = item.get(n).and_then(KeyVal::from_attr);
                    r.matches(v.as_ref())
                }
                _ => Ok(true),
            }
        };
        let _ = index;
        self.page(req, &src, &p, &mut rows, &keep)
    }

    pub(crate) fn scan(&self, req: &Value) -> Result<Value, DdbError> {
        let p = parse_read(req, false)?;
        let segment = opt_i64(req, "Segment")?;
        let total = opt_i64(req, "TotalSegments")?;
        let seg = match (segment, total) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(DdbError::validation(
                    "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
                ));
            }
            (None, Some(_)) => {
                return Err(DdbError::validation(
                    "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
                ));
            }
            (Some(s), Some(n)) => {
                if !(1..=1_000_000).contains(&n) {
                    return Err(vmsg(vec![format!(
                        "Value '{n}' at 'totalSegments' failed to satisfy constraint: Member must have value {}",
                        if n < 1 {
                            "greater than or equal to 1"
                        } else {
                            "less than or equal to 1000000"
                        }
                    )]));
                }
                if s < 0 {
                    return Err(vmsg(vec![format!(
                        "Value '{s}' at 'segment' failed to satisfy constraint: Member must have value greater than or equal to 0"
                    )]));
                }
                if s >= n {
                    return Err(DdbError::validation(format!(
                        "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: {s} is not less than TotalSegments: {n}"
                    )));
                }
                Some((s as u64, n as u64))
            }
        };
        let g = self.state.read();
        let t = g.get(&p.table)?;
        let src = Self::read_source(t, &p)?;
        let after = match &p.esk {
            Some(esk) => Some(src.start_key(esk)?),
            None => None,
        };
        let buckets = seg.map_or((0, 4096), |(s, n)| segment_buckets(s, n));
        let mut rows = src.all(after, buckets).map(|(_, pk)| pk);
        self.page(req, &src, &p, &mut rows, &|_, _| Ok(true))
    }
}

/// `ConsumedCapacity` of a Query or Scan: read units over the bytes read (rounded up to 4 KB
/// once, not per item), halved for eventually consistent reads; with `INDEXES` the index's
/// share is reported apart from the table's (an LSI fetching unprojected attributes reads both).
fn read_consumed(
    req: &Value,
    table: &str,
    src: &Source<'_>,
    table_bytes: usize,
    index_bytes: usize,
    consistent: bool,
) -> Option<Value> {
    let mode = opt_str(req, "ReturnConsumedCapacity")?;
    if mode != "TOTAL" && mode != "INDEXES" {
        return None;
    }
    let units = |b: usize| {
        let u = b.div_ceil(4096) as f64;
        if consistent { u } else { u / 2.0 }
    };
    let (t, i) = match src.index {
        None => (units(table_bytes), 0.0),
        Some(_) => (
            if table_bytes > 0 {
                units(table_bytes)
            } else {
                0.0
            },
            units(index_bytes),
        ),
    };
    let mut c = Map::new();
    c.insert("TableName".into(), json!(table));
    c.insert("CapacityUnits".into(), json!(t + i));
    if mode == "INDEXES" {
        c.insert("Table".into(), json!({"CapacityUnits": t}));
        if let Some(ix) = src.index {
            let key = if ix.global {
                "GlobalSecondaryIndexes"
            } else {
                "LocalSecondaryIndexes"
            };
            c.insert(key.into(), json!({ ix.name.clone(): {"CapacityUnits": i} }));
        }
    }
    Some(Value::Object(c))
}

/// Top-level attribute names a condition refers to.
fn collect_paths(c: &Cond, ctx: &Ctx, out: &mut Vec<String>) -> Result<(), DdbError> {
    let op = |o: &Operand, out: &mut Vec<String>| -> Result<(), DdbError> {
        if let Operand::Path(p) | Operand::Size(p) = o
            && let Some(Seg::Key(k)) = ctx.resolve(p)?.first()
        {
            out.push(k.clone());
        }
        Ok(())
    };
    match c {
        Cond::Cmp(a, _, b) | Cond::BeginsWith(a, b) | Cond::Contains(a, b) => {
            op(a, out)?;
            op(b, out)
        }
        Cond::Between(a, b, d) => {
            op(a, out)?;
            op(b, out)?;
            op(d, out)
        }
        Cond::In(a, l) => {
            op(a, out)?;
            for x in l {
                op(x, out)?;
            }
            Ok(())
        }
        Cond::And(a, b) | Cond::Or(a, b) => {
            collect_paths(a, ctx, out)?;
            collect_paths(b, ctx, out)
        }
        Cond::Not(a) => collect_paths(a, ctx, out),
        Cond::AttributeExists(p) | Cond::AttributeNotExists(p) | Cond::AttributeType(p, _) => {
            if let Some(Seg::Key(k)) = ctx.resolve(p)?.first() {
                out.push(k.clone());
            }
            Ok(())
        }
    }
}
