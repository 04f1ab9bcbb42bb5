//! Query and Scan: key conditions, secondary indexes, filters, projections, Select, Limit,
//! the 1 MB page limit, ExclusiveStartKey/LastEvaluatedKey and parallel-scan segments.

use std::ops::Bound;

use serde_json::{Map, Value, json};

use super::TableEngine;
use super::engine::{IxEntry, Table};
use super::error::DdbError;
use super::expr::eval::{begins_with, between, compare, eval_cond};
use super::expr::{
    CmpOp, Cond, Ctx, Operand, Seg, Used, parse_condition_ctx, parse_projection_ctx,
};
use super::items::{Capacity, IndexUnits, Projection, Units};
use super::meta::{self, IndexMeta, KeySpec, PKey};
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
            RangeCond::Between(lo, hi) => between(Some(&v), Some(lo), Some(hi))?,
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

/// The key condition on the sort key as a whole.
#[derive(Debug, Clone)]
enum SortCond {
    /// None: the whole partition.
    All,
    /// A condition on a single-attribute sort key.
    One(RangeCond),
    /// On a multi-attribute sort key: equality on its first attributes, then at most one
    /// condition on the next one (DynamoDB's left-to-right rule).
    Tuple {
        prefix: Vec<KeyVal>,
        last: Option<RangeCond>,
    },
}

impl SortCond {
    /// Whether an entry with sort key `v` meets the condition.
    fn matches(&self, v: Option<&KeyVal>) -> Result<bool, DdbError> {
        match self {
            SortCond::All => Ok(true),
            SortCond::One(r) => r.matches(v),
            SortCond::Tuple { prefix, last } => {
                let Some(KeyVal::Tuple(vals)) = v else {
                    return Ok(false);
                };
                if vals.len() < prefix.len() || vals[..prefix.len()] != prefix[..] {
                    return Ok(false);
                }
                match last {
                    Some(r) => r.matches(vals.get(prefix.len())),
                    None => Ok(true),
                }
            }
        }
    }

    /// Bounds on the sort key that contain every match (may contain more).
    fn bounds(&self) -> (Bound<Option<KeyVal>>, Bound<Option<KeyVal>>) {
        match self {
            SortCond::All => (Bound::Unbounded, Bound::Unbounded),
            SortCond::One(r) => r.bounds(),
            // A tuple sorts after every tuple it begins with, so the prefix alone is a lower
            // bound of the entries that begin with it.
            SortCond::Tuple { prefix, .. } if !prefix.is_empty() => (
                Bound::Included(Some(KeyVal::Tuple(prefix.clone()))),
                Bound::Unbounded,
            ),
            SortCond::Tuple { .. } => (Bound::Unbounded, Bound::Unbounded),
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

    /// The first top-level attribute the request's projection names that the index does
    /// not project (`None` on the table, or when every named attribute is projected).
    fn unprojected<'p>(&self, p: &'p ReadParams) -> Option<&'p str> {
        let ix = self.index?;
        p.proj
            .paths
            .as_ref()?
            .iter()
            .find_map(|path| match path.first() {
                Some(Seg::Key(name)) if !ix.holds(&self.t.meta, name) => Some(name.as_str()),
                _ => None,
            })
    }

    /// The item as the index projects it.
    fn projected(&self, item: &Item) -> Item {
        match self.index {
            Some(ix) if ix.projection != "ALL" => item
                .iter()
                .filter(|(k, _)| ix.holds(&self.t.meta, k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            _ => item.clone(),
        }
    }

    /// The LastEvaluatedKey for an item: table keys plus index keys.
    fn last_key(&self, pk: &PKey, item: &Item) -> Value {
        let mut k = self.t.key_item(pk);
        if let Some(ix) = self.index {
            for spec in ix.key_specs() {
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
        if ix.is_composite() {
            let (h, r) = Table::index_key(ix, esk)
                .ok()
                .flatten()
                .ok_or_else(invalid)?;
            return Ok((h, r, pk));
        }
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
                let it = part.range((lo, hi)).map(|(s, e)| (s.clone(), e.pk.clone()));
                if forward {
                    Box::new(it.filter(move |(s, pk)| past(s, pk)))
                } else {
                    Box::new(it.rev().filter(move |(s, pk)| past(s, pk)))
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
                    part.iter().map(move |(s, e)| (h.key.clone(), s.clone(), e))
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
pub(crate) struct ReadParams {
    table: String,
    index: Option<String>,
    filter: Option<Cond>,
    /// Top-level attributes the filter names (QueryFilter's keys or FilterExpression's
    /// path heads), for the rule that a Query filter may not name a key attribute.
    filter_heads: Vec<String>,
    /// Top-level attributes of nested paths in the filter and the projection, which may not
    /// be key attributes.
    filter_nested: Vec<String>,
    proj_nested: Vec<String>,
    /// A Query's key conditions, in the legacy form (KeyConditionExpression is converted).
    key_conds: Vec<KeyCond>,
    proj: Projection,
    ctx: Ctx,
    limit: Option<usize>,
    esk: Option<Item>,
    select: Option<Select>,
    consistent: bool,
    /// A Scan's (Segment, TotalSegments).
    segment: Option<(u64, u64)>,
    capacity: Capacity,
    /// The filter is a legacy QueryFilter (named so in errors).
    query_filter: bool,
}

/// One key condition: attribute, operator (`EQ`, `LT`, ... as KeyConditions names them) and
/// its arguments.
#[derive(Debug, Clone)]
struct KeyCond {
    attr: String,
    op: String,
    args: Vec<AttrValue>,
}

/// The first repeated name in AttributesToGet.
/// ExclusiveStartKey's values, each checked as an attribute value. DynamoDB prefixes most
/// of these messages with "The provided starting key is invalid: " but not those about
/// numbers and duplicates in sets (recorded by dynalite's suite against DynamoDB).
fn start_key_values(req: &Value) -> Result<Option<Item>, DdbError> {
    let Some(v) = req.get("ExclusiveStartKey").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    item_from_json(v).map(Some).map_err(|mut e| {
        let bare = [
            "contains duplicates",
            "number set",
            "numeric value",
            "significant digits",
            "number with magnitude",
        ];
        if e.code == super::error::ErrorCode::Validation
            && !bare.iter().any(|b| e.message.contains(b))
        {
            e.message = format!("The provided starting key is invalid: {}", e.message);
        }
        e
    })
}

/// Scan's Segment and TotalSegments, which come as a pair.
fn segments(req: &Value) -> Result<Option<(u64, u64)>, DdbError> {
    match (opt_i64(req, "Segment")?, opt_i64(req, "TotalSegments")?) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(DdbError::validation(
            "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
        )),
        (None, Some(_)) => Err(DdbError::validation(
            "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
        )),
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
            Ok(Some((s as u64, n as u64)))
        }
    }
}

/// Top-level attribute of a path, and whether the path goes below it.
fn head_of(p: &super::expr::Path, ctx: &Ctx) -> Result<(String, bool), DdbError> {
    let segs = ctx.resolve(p)?;
    let head = match segs.first() {
        Some(Seg::Key(k)) => k.clone(),
        _ => String::new(),
    };
    Ok((head, segs.len() > 1))
}

/// Parse and check a Query or Scan request in the order DynamoDB reports problems before it
/// looks at the table (the order dynalite's suite records): filter conditions, duplicate
/// AttributesToGet, ExclusiveStartKey values, (Query) a key condition present / (Scan)
/// segments, placeholders, expressions in the order KeyCondition, Filter, Projection, unused
/// placeholders, and finally the key conditions themselves.
pub(crate) fn parse_read(req: &Value, query: bool) -> Result<ReadParams, DdbError> {
    let table = table_name(req)?.to_string();
    let index = opt_str(req, "IndexName").map(String::from);
    let filter_field = if query { "QueryFilter" } else { "ScanFilter" };
    if query {
        super::legacy::validate_conditions(req.get(filter_field))?;
    }
    super::items::no_duplicate_attributes(req)?;
    if !query {
        super::legacy::validate_conditions(req.get(filter_field))?;
    }
    let esk = start_key_values(req)?;
    let has = |f: &str| req.get(f).is_some_and(|v| !v.is_null());
    if query && !has("KeyConditions") && !has("KeyConditionExpression") {
        return Err(DdbError::validation(
            "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
        ));
    }
    let segment = if query { None } else { segments(req)? };
    let mut ctx = parse_ctx(req)?;
    let mut used = Used::default();
    let key_expr = match opt_str(req, "KeyConditionExpression").filter(|_| query) {
        Some(s) => {
            let c = parse_condition_ctx(s, "KeyConditionExpression", &ctx)?;
            used.cond(&c);
            Some(c)
        }
        None => None,
    };
    let filter_expr = match opt_str(req, "FilterExpression") {
        Some(s) => {
            let c = parse_condition_ctx(s, "FilterExpression", &ctx)?;
            used.cond(&c);
            Some(c)
        }
        None => None,
    };
    let mut proj_nested = Vec::new();
    if let Some(p) = opt_str(req, "ProjectionExpression") {
        for path in parse_projection_ctx(p, &ctx)?.0 {
            used.path(&path);
            let (head, nested) = head_of(&path, &ctx)?;
            if nested {
                proj_nested.push(head);
            }
        }
    }
    ctx.check(&used)?;
    let key_conds = if query {
        let conds = match &key_expr {
            Some(c) => {
                let conds = convert_key_cond(c, &ctx)?;
                for k in &conds {
                    super::legacy::check_args(&k.op, &k.args, true)?;
                }
                conds
            }
            None => super::legacy::validate_conditions(req.get("KeyConditions"))?
                .into_iter()
                .map(|(attr, op, args)| KeyCond { attr, op, args })
                .collect(),
        };
        // A multi-attribute index key takes a condition per attribute; which index a
        // request names is known once the table is: more than two conditions on a request
        // naming an index are checked against it (`check_key_conds`).
        let most = if req.get("IndexName").is_some_and(|v| !v.is_null()) {
            2 * meta::MAX_KEY_ATTRIBUTES
        } else {
            2
        };
        if !(1..=most).contains(&conds.len()) {
            return Err(DdbError::validation(
                "Conditions can be of length 1 or 2 only",
            ));
        }
        conds
    } else {
        Vec::new()
    };
    let mut filter_heads = Vec::new();
    let mut filter_nested = Vec::new();
    let filter = match filter_expr {
        Some(c) => {
            let mut paths = Vec::new();
            cond_paths(&c, &mut paths);
            for p in paths {
                let (head, nested) = head_of(p, &ctx)?;
                if nested {
                    filter_nested.push(head.clone());
                }
                filter_heads.push(head);
            }
            Some(c)
        }
        None => {
            if let Some(m) = req.get(filter_field).and_then(Value::as_object) {
                filter_heads.extend(m.keys().cloned());
            }
            super::legacy::translate(req, filter_field, "FilterExpression", &mut ctx)?
        }
    };
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
        filter_heads,
        filter_nested,
        proj_nested,
        key_conds,
        proj,
        ctx,
        limit,
        esk,
        select,
        consistent,
        segment,
        capacity: Capacity::parse(req),
        query_filter: req.get("QueryFilter").is_some_and(|v| !v.is_null()),
    })
}

/// Every path a condition names, in written order (including paths inside `size()`).
fn cond_paths<'c>(c: &'c Cond, out: &mut Vec<&'c super::expr::Path>) {
    let op = |o: &'c Operand, out: &mut Vec<&'c super::expr::Path>| {
        if let Operand::Path(p) | Operand::Size(p) = o {
            out.push(p);
        }
    };
    match c {
        Cond::Cmp(a, _, b) | Cond::BeginsWith(a, b) | Cond::Contains(a, b) => {
            op(a, out);
            op(b, out);
        }
        Cond::Between(a, b, d) => {
            op(a, out);
            op(b, out);
            op(d, out);
        }
        Cond::In(a, l) => {
            op(a, out);
            l.iter().for_each(|x| op(x, out));
        }
        Cond::And(a, b) | Cond::Or(a, b) => {
            super::expr::deeper(|| cond_paths(a, out));
            super::expr::deeper(|| cond_paths(b, out));
        }
        Cond::Not(a) => super::expr::deeper(|| cond_paths(a, out)),
        Cond::AttributeExists(p) | Cond::AttributeNotExists(p) => out.push(p),
        Cond::AttributeType(a, t) => {
            op(a, out);
            op(t, out);
        }
    }
}

/// Convert a KeyConditionExpression into key conditions, with DynamoDB's answers to the
/// forms a key condition may not take (AND of simple comparisons, BETWEEN and begins_with
/// on a key attribute, one condition per key).
fn convert_key_cond(c: &Cond, ctx: &Ctx) -> Result<Vec<KeyCond>, DdbError> {
    let mut out = Vec::new();
    key_cond_into(c, ctx, &mut out)?;
    Ok(out)
}

fn key_cond_into(c: &Cond, ctx: &Ctx, out: &mut Vec<KeyCond>) -> Result<(), DdbError> {
    let v = |m: String| DdbError::validation(m);
    let invalid_op = |o: &str| {
        v(format!(
            "Invalid operator used in KeyConditionExpression: {o}"
        ))
    };
    let first_operand = |f: &str| {
        v(format!(
            "Invalid condition in KeyConditionExpression: {f} operator must have the key attribute as its first operand"
        ))
    };
    let (op, operands): (&str, Vec<&Operand>) = match c {
        Cond::And(a, b) => {
            key_cond_into(a, ctx, out)?;
            return key_cond_into(b, ctx, out);
        }
        Cond::Or(..) => return Err(invalid_op("OR")),
        Cond::Not(..) => return Err(invalid_op("NOT")),
        Cond::In(..) => return Err(invalid_op("IN")),
        Cond::Cmp(_, CmpOp::Ne, _) => return Err(invalid_op("<>")),
        Cond::AttributeExists(_) => return Err(invalid_op("attribute_exists")),
        Cond::AttributeNotExists(_) => return Err(invalid_op("attribute_not_exists")),
        Cond::AttributeType(..) => return Err(invalid_op("attribute_type")),
        Cond::Contains(..) => return Err(invalid_op("contains")),
        Cond::Between(a, lo, hi) => {
            if !matches!(a, Operand::Path(_)) {
                return Err(first_operand("BETWEEN"));
            }
            ("BETWEEN", vec![a, lo, hi])
        }
        Cond::BeginsWith(a, b) => {
            if !matches!(a, Operand::Path(_)) {
                return Err(first_operand("begins_with"));
            }
            ("BEGINS_WITH", vec![a, b])
        }
        Cond::Cmp(a, op, b) => (
            match op {
                CmpOp::Eq => "EQ",
                CmpOp::Lt => "LT",
                CmpOp::Le => "LE",
                CmpOp::Gt => "GT",
                _ => "GE",
            },
            vec![a, b],
        ),
    };
    let mut attr: Option<(String, usize)> = None;
    let mut args = Vec::new();
    for (i, o) in operands.iter().enumerate() {
        match o {
            Operand::Path(p) => {
                if attr.is_some() {
                    return Err(v(
                        "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition".into(),
                    ));
                }
                let (head, nested) = head_of(p, ctx)?;
                if nested {
                    return Err(v(
                        "KeyConditionExpressions cannot have conditions on nested attributes"
                            .into(),
                    ));
                }
                attr = Some((head, i));
            }
            Operand::Size(_) | Operand::SizeOfValue(_) => {
                return Err(v(
                    "KeyConditionExpressions cannot contain nested operations".into(),
                ));
            }
            Operand::Value(name) => {
                let val = ctx.values.get(name).ok_or_else(|| {
                    v(format!(
                        "Invalid KeyConditionExpression: An expression attribute value used in expression is not defined; attribute value: {name}"
                    ))
                })?;
                args.push(val.clone());
            }
        }
    }
    let Some((name, at)) = attr else {
        return Err(v(
            "Invalid condition in KeyConditionExpression: No key attribute specified".into(),
        ));
    };
    if out.iter().any(|k| k.attr == name) {
        return Err(v(
            "KeyConditionExpressions must only contain one condition per key".into(),
        ));
    }
    // `:v < k` is `k > :v`.
    let op = if at == 0 {
        op
    } else {
        match op {
            "LT" => "GT",
            "LE" => "GE",
            "GT" => "LT",
            "GE" => "LE",
            o => o,
        }
    };
    out.push(KeyCond {
        attr: name,
        op: op.to_string(),
        args,
    });
    Ok(())
}

/// Operators a key condition may not use on a key attribute.
const NOT_INDEXABLE: [&str; 6] = ["NULL", "NOT_NULL", "NE", "CONTAINS", "NOT_CONTAINS", "IN"];

/// Check one key attribute of an ExclusiveStartKey as DynamoDB checks key values: the
/// schema's type, not empty, within the key size limits.
fn key_piece(esk: &Item, spec: &KeySpec, is_hash: bool) -> Result<(), DdbError> {
    let v = esk
        .get(&spec.name)
        .filter(|v| v.type_name() == spec.ty)
        .ok_or_else(|| {
            DdbError::validation("The provided key element does not match the schema")
        })?;
    let bad =
        |m: String| DdbError::validation(format!("One or more parameter values were invalid: {m}"));
    let (len, kind) = match v {
        AttrValue::S(s) => (s.len(), "string"),
        AttrValue::B(b) => (b.len(), "binary"),
        _ => return Ok(()),
    };
    if len == 0 {
        return Err(bad(format!(
            "The AttributeValue for a key attribute cannot contain an empty {kind} value. Key: {}",
            spec.name
        )));
    }
    if is_hash && len > 2048 {
        return Err(bad(
            "Size of hashkey has exceeded the maximum size limit of2048 bytes".into(),
        ));
    }
    if !is_hash && len > 1024 {
        return Err(bad(
            "Aggregated size of all range keys has exceeded the size limit of 1024 bytes".into(),
        ));
    }
    Ok(())
}

/// An ExclusiveStartKey's index key: every key attribute of the index present, each a
/// valid key value (partition key attributes within the partition key's limits).
fn index_start_key(ix: &IndexMeta, esk: &Item) -> Result<(), DdbError> {
    for (i, spec) in ix.key_specs().enumerate() {
        if !esk.contains_key(&spec.name) {
            return Err(DdbError::validation("The provided starting key is invalid"));
        }
        key_piece(esk, spec, i <= ix.more_hash.len())?;
    }
    Ok(())
}

/// ExclusiveStartKey's table key, checked; DynamoDB prefixes what is wrong with it.
fn table_start_key(t: &Table, esk: &Item) -> Result<(), DdbError> {
    for (i, spec) in std::iter::once(&t.meta.hash)
        .chain(t.meta.range.iter())
        .enumerate()
    {
        key_piece(esk, spec, i == 0).map_err(|mut e| {
            e.message = format!("The provided starting key is invalid: {}", e.message);
            e
        })?;
    }
    Ok(())
}

/// Key attributes (of the table and of its indexes) must not be read through nested paths
/// in a projection or filter.
fn key_paths(nested: &[String], t: &Table) -> Result<(), DdbError> {
    let msg = |what: &str, k: &str| {
        DdbError::validation(format!(
            "Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: {what}: {k}"
        ))
    };
    for spec in std::iter::once(&t.meta.hash).chain(t.meta.range.iter()) {
        if nested.contains(&spec.name) {
            return Err(msg("Key", &spec.name));
        }
    }
    let globals = t.meta.indexes.iter().filter(|ix| ix.global);
    let locals = t.meta.indexes.iter().filter(|ix| !ix.global);
    for ix in globals {
        for spec in ix.key_specs() {
            if nested.contains(&spec.name) {
                return Err(msg("IndexKey", &spec.name));
            }
        }
    }
    for ix in locals {
        if let Some(spec) = &ix.range
            && nested.contains(&spec.name)
        {
            return Err(msg("IndexKey", &spec.name));
        }
    }
    Ok(())
}

/// The sort-key condition of a checked key condition.
fn range_cond(k: &KeyCond) -> Option<RangeCond> {
    let first = k.args.first()?.clone();
    Some(match k.op.as_str() {
        "EQ" => RangeCond::Cmp(CmpOp::Eq, first),
        "LT" => RangeCond::Cmp(CmpOp::Lt, first),
        "LE" => RangeCond::Cmp(CmpOp::Le, first),
        "GT" => RangeCond::Cmp(CmpOp::Gt, first),
        "GE" => RangeCond::Cmp(CmpOp::Ge, first),
        "BEGINS_WITH" => RangeCond::BeginsWith(first),
        "BETWEEN" => RangeCond::Between(first, k.args.get(1)?.clone()),
        _ => return None,
    })
}

impl TableEngine {
    /// The index a read names (or the table), with the checks DynamoDB makes right after
    /// finding the table.
    fn read_index<'a>(t: &'a Table, p: &ReadParams) -> Result<Source<'a>, DdbError> {
        let index = match &p.index {
            None => None,
            Some(n) => Some(t.meta.index(n).ok_or_else(|| {
                DdbError::validation(format!("The table does not have the specified index: {n}"))
            })?),
        };
        if let Some(ix) = index
            && ix.global
            && p.consistent
        {
            return Err(DdbError::validation(
                "Consistent reads are not supported on global secondary indexes",
            ));
        }
        Ok(Source { t, index })
    }

    /// Select's combinations with the index and the projection. DynamoDB words these as
    /// "1 validation error detected: …" for a Query and without the prefix for a Scan
    /// (moto's tests verified against AWS, 2026).
    fn check_select(src: &Source<'_>, p: &ReadParams, query: bool) -> Result<(), DdbError> {
        let prefix = if query {
            "1 validation error detected: "
        } else {
            ""
        };
        if let Some(ix) = src.index {
            if p.select == Some(Select::All) && ix.global && ix.projection != "ALL" {
                return Err(DdbError::validation(format!(
                    "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global secondary index {} because its projection type is not ALL",
                    ix.name
                )));
            }
        } else if p.select == Some(Select::AllProjected) {
            return Err(DdbError::validation(format!(
                "{prefix}ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName"
            )));
        }
        if p.select == Some(Select::Specific) && p.proj.paths.is_none() {
            return Err(DdbError::validation(format!(
                "{prefix}Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES"
            )));
        }
        if p.proj.paths.is_some() {
            let chosen = match p.select {
                Some(Select::All) => Some("ALL_ATTRIBUTES"),
                Some(Select::AllProjected) => Some("ALL_PROJECTED_ATTRIBUTES"),
                Some(Select::Count) => Some("only the Count"),
                _ => None,
            };
            if let Some(chosen) = chosen {
                return Err(DdbError::validation(format!(
                    "{prefix}Cannot specify the {} when choosing to get {chosen}",
                    if p.proj.legacy {
                        "AttributesToGet"
                    } else {
                        "ProjectionExpression"
                    }
                )));
            }
        }
        // A GSI cannot fetch from the table: asking it for an attribute it does not project
        // is an error, not a silently missing attribute (an LSI fetches it).
        if let (Some(ix), Some(name)) = (src.index, src.unprojected(p))
            && ix.global
        {
            return Err(DdbError::validation(format!(
                "One or more parameter values were invalid: Global secondary index {} does not project the requested attribute {name}",
                ix.name
            )));
        }
        Ok(())
    }

    /// Names an ExclusiveStartKey of this source must hold: the table's key and the index's.
    fn start_key_names<'a>(src: &Source<'a>) -> Vec<&'a str> {
        let mut names: Vec<&str> = std::iter::once(&src.t.meta.hash)
            .chain(src.t.meta.range.iter())
            .map(|s| s.name.as_str())
            .collect();
        if let Some(ix) = src.index {
            for spec in ix.key_specs() {
                if !names.contains(&spec.name.as_str()) {
                    names.push(&spec.name);
                }
            }
        }
        names
    }

    /// The key conditions against the table, in the order DynamoDB checks them; returns the
    /// partition value and the sort-key condition.
    fn check_key_conds(src: &Source<'_>, p: &ReadParams) -> Result<(KeyVal, SortCond), DdbError> {
        if let Some(ix) = src.index.filter(|ix| ix.is_composite()) {
            return Self::check_composite_key_conds(src, ix, p);
        }
        if p.key_conds.len() > 2 {
            return Err(DdbError::validation(
                "Conditions can be of length 1 or 2 only",
            ));
        }
        let invalid_start = || DdbError::validation("The provided starting key is invalid");
        let not_supported = || DdbError::validation("Query key condition not supported");
        let schema: Vec<&KeySpec> = std::iter::once(src.hash_spec())
            .chain(src.range_spec())
            .collect();
        if let Some(esk) = &p.esk
            && esk.len() != Self::start_key_names(src).len()
        {
            return Err(invalid_start());
        }
        let conds = &p.key_conds;
        let find = |n: &str| conds.iter().find(|k| k.attr == n);
        for (i, spec) in schema.iter().enumerate() {
            let is_hash = i == 0;
            if let Some(esk) = &p.esk {
                if !esk.contains_key(&spec.name) {
                    return Err(invalid_start());
                }
                key_piece(esk, spec, is_hash)?;
            }
            if is_hash && schema.len() == 1 && conds.len() > 1 {
                return Err(not_supported());
            }
            let Some(kc) = find(&spec.name) else {
                if is_hash || conds.len() > 1 {
                    return Err(DdbError::validation(format!(
                        "Query condition missed key schema element: {}",
                        spec.name
                    )));
                }
                continue;
            };
            if NOT_INDEXABLE.contains(&kc.op.as_str()) {
                return Err(DdbError::validation(
                    "Attempted conditional constraint is not an indexable operation",
                ));
            }
            if kc.args.iter().any(|a| a.type_name() != spec.ty) {
                return Err(DdbError::validation(
                    "One or more parameter values were invalid: Condition parameter type does not match schema type",
                ));
            }
            if is_hash && kc.op != "EQ" {
                return Err(not_supported());
            }
            // No item has an empty key value: DynamoDB refuses the query rather than
            // answering nothing (as it refuses such a key in GetItem), for the partition key
            // and for a sort key compared for equality. A sort key's range or prefix may
            // start at the empty string (nothing refuses `begins_with(sk, "")`).
            let keyed = is_hash || kc.op == "EQ";
            let empty = match kc.args.first() {
                Some(AttrValue::S(s)) if keyed && s.is_empty() => Some("string"),
                Some(AttrValue::B(b)) if keyed && b.is_empty() => Some("binary"),
                _ => None,
            };
            if let Some(kind) = empty {
                return Err(DdbError::validation(format!(
                    "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty {kind} value. Key: {}",
                    spec.name
                )));
            }
        }
        let hash = find(&src.hash_spec().name)
            .and_then(|k| k.args.first())
            .and_then(KeyVal::from_attr)
            .ok_or_else(not_supported)?;
        let range = src.range_spec().and_then(|r| find(&r.name).map(|k| (r, k)));
        let rc = match range {
            Some((_, k)) => Some(range_cond(k).ok_or_else(not_supported)?),
            None => None,
        };
        if let Some(esk) = &p.esk {
            table_start_key(src.t, esk)?;
            let esk_hash = esk.get(&src.hash_spec().name).and_then(KeyVal::from_attr);
            match (&rc, range) {
                (Some(r), Some((spec, _))) => {
                    let v = esk.get(&spec.name).and_then(KeyVal::from_attr);
                    if !r.matches(v.as_ref())? {
                        return Err(DdbError::validation(
                            "The provided starting key does not match the range key predicate",
                        ));
                    }
                    if esk_hash.as_ref() != Some(&hash) {
                        return Err(DdbError::validation(
                            "The query can return at most one row and cannot be restarted",
                        ));
                    }
                }
                _ => {
                    if esk_hash.as_ref() != Some(&hash) {
                        return Err(DdbError::validation(
                            "The provided starting key is outside query boundaries based on provided conditions",
                        ));
                    }
                    // A hash-only table holds one item per hash key: there is nothing to
                    // restart after (DynamoDB prints the key the Java way).
                    if src.index.is_none() && src.t.meta.range.is_none() {
                        let shown = match &hash {
                            KeyVal::S(s) => format!("S:{s}"),
                            KeyVal::N(n) => format!("N:{n}"),
                            KeyVal::B(b) => format!("B:{}", super::value::b64(b)),
                            KeyVal::Tuple(t) => format!("L:{t:?}"),
                        };
                        return Err(DdbError::validation(format!(
                            "The provided exclusive start key is invalid: ExclusiveStartKey: {{{}=AttributeValue: {{{shown}}}}}",
                            src.t.meta.hash.name
                        )));
                    }
                }
            }
        }
        Ok((hash, rc.map_or(SortCond::All, SortCond::One)))
    }

    /// The key conditions on a multi-attribute index key (DynamoDB's rules for them): every
    /// partition key attribute compared for equality; sort key attributes left to right,
    /// each but the last compared for equality. Returns the partition and the sort condition.
    fn check_composite_key_conds(
        src: &Source<'_>,
        ix: &IndexMeta,
        p: &ReadParams,
    ) -> Result<(KeyVal, SortCond), DdbError> {
        let v = |m: String| DdbError::validation(m);
        let not_supported = || DdbError::validation("Query key condition not supported");
        let hashes = 1 + ix.more_hash.len();
        if let Some(esk) = &p.esk {
            if esk.len() != Self::start_key_names(src).len() {
                return Err(v("The provided starting key is invalid".into()));
            }
            index_start_key(ix, esk)?;
        }
        let conds = &p.key_conds;
        let find = |n: &str| conds.iter().find(|k| k.attr == n);
        let ranges: Vec<&KeySpec> = ix.range_keys().collect();
        if conds
            .iter()
            .any(|k| !ix.key_specs().any(|s| s.name == k.attr))
        {
            return Err(match ranges.iter().find(|r| find(&r.name).is_none()) {
                Some(r) => v(format!(
                    "Query condition missed key schema element: {}",
                    r.name
                )),
                None => not_supported(),
            });
        }
        for spec in ix.key_specs() {
            let Some(kc) = find(&spec.name) else { continue };
            if NOT_INDEXABLE.contains(&kc.op.as_str()) {
                return Err(v(
                    "Attempted conditional constraint is not an indexable operation".into(),
                ));
            }
            if kc.args.iter().any(|a| a.type_name() != spec.ty) {
                return Err(v("One or more parameter values were invalid: Condition parameter type does not match schema type".into()));
            }
        }
        let mut hash = Vec::with_capacity(hashes);
        for spec in ix.hash_keys() {
            let Some(kc) = find(&spec.name) else {
                return Err(v(format!(
                    "Query condition missed key schema element: {}: every HASH key attribute of the index must have an equality condition",
                    spec.name
                )));
            };
            if kc.op != "EQ" {
                return Err(v(format!(
                    "Query key condition not supported: HASH key attribute {} must have an equality condition",
                    spec.name
                )));
            }
            hash.push(
                kc.args
                    .first()
                    .and_then(KeyVal::from_attr)
                    .ok_or_else(not_supported)?,
            );
        }
        let hash = match hash.len() {
            1 => hash.swap_remove(0),
            _ => KeyVal::Tuple(hash),
        };
        // The sort key attributes with a condition must be the first ones, and all but the
        // last of them compared for equality.
        let given: Vec<usize> = (0..ranges.len())
            .filter(|&i| find(&ranges[i].name).is_some())
            .collect();
        if let Some(&last) = given.last() {
            for i in 0..last {
                if find(&ranges[i].name).is_none_or(|k| k.op != "EQ") {
                    let next = given.iter().find(|&&j| j > i).map_or(last, |&j| j);
                    return Err(v(format!(
                        "RANGE key attributes {} must have equality conditions specified in the query because a condition is present on key attribute {}",
                        ranges[i].name, ranges[next].name
                    )));
                }
            }
        }
        let sort = if ranges.len() < 2 {
            match ranges.first().and_then(|r| find(&r.name)) {
                Some(k) => SortCond::One(range_cond(k).ok_or_else(not_supported)?),
                None => SortCond::All,
            }
        } else {
            let mut prefix = Vec::new();
            let mut last = None;
            for r in &ranges {
                let Some(k) = find(&r.name) else { break };
                if k.op == "EQ" {
                    prefix.push(
                        k.args
                            .first()
                            .and_then(KeyVal::from_attr)
                            .ok_or_else(not_supported)?,
                    );
                } else {
                    last = Some(range_cond(k).ok_or_else(not_supported)?);
                }
            }
            SortCond::Tuple { prefix, last }
        };
        if let Some(esk) = &p.esk {
            table_start_key(src.t, esk)?;
            let (h, r, _) = src.start_key(esk)?;
            if h != hash {
                return Err(v(
                    "The provided starting key is outside query boundaries based on provided conditions".into(),
                ));
            }
            if !sort.matches(r.as_ref())? {
                return Err(v(
                    "The provided starting key does not match the range key predicate".into(),
                ));
            }
        }
        Ok((hash, sort))
    }

    /// Run the page loop over `rows` and build the response.
    fn page<'a>(
        &self,
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
        let full = src.index.is_none()
            || select == Select::All
            || (select == Select::Specific && src.unprojected(p).is_some());
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
        if let Some(c) = read_consumed(p.capacity, &p.table, src, bytes, index_bytes, p.consistent)
        {
            out.insert("ConsumedCapacity".into(), c);
        }
        Ok(Value::Object(out))
    }

    /// A parsed Query, read forward or backward along the sort key.
    pub(crate) fn run_query(&self, p: &ReadParams, forward: bool) -> Result<Value, DdbError> {
        let g = self.state.read();
        let t = g.get(&p.table)?;
        let src = Self::read_index(t, p)?;
        let (hash, sort) = Self::check_key_conds(&src, p)?;
        key_paths(&p.proj_nested, t)?;
        let key_specs: Vec<&KeySpec> = match src.index {
            Some(ix) => ix.key_specs().collect(),
            None => std::iter::once(src.hash_spec())
                .chain(src.range_spec())
                .collect(),
        };
        for spec in key_specs {
            if p.filter_heads.contains(&spec.name) {
                let what = if p.query_filter {
                    "QueryFilter"
                } else {
                    "Filter Expression"
                };
                return Err(DdbError::validation(format!(
                    "{what} can only contain non-primary key attributes: Primary key attribute: {}",
                    spec.name
                )));
            }
        }
        Self::check_select(&src, p, true)?;
        key_paths(&p.filter_nested, t)?;
        let after = match &p.esk {
            Some(esk) => {
                let (_, s, pk) = src.start_key(esk)?;
                Some((s, pk))
            }
            None => None,
        };
        let bounds = sort.bounds();
        let mut rows = src
            .partition(&hash, bounds, forward, after)
            .map(|(_, pk)| pk);
        let range_name = src.range_spec().map(|s| s.name.clone());
        let keep = |_pk: &PKey, item: &Item| -> Result<bool, DdbError> {
            match (&sort, &range_name, src.index) {
                (SortCond::All, ..) => Ok(true),
                (SortCond::Tuple { .. }, _, Some(ix)) => {
                    let r = Table::index_key(ix, item)
                        .ok()
                        .flatten()
                        .and_then(|(_, r)| r);
                    sort.matches(r.as_ref())
                }
                (_, Some(n), _) => {
                    let v = item.get(n).and_then(KeyVal::from_attr);
                    sort.matches(v.as_ref())
                }
                _ => Ok(true),
            }
        };
        let mut out = self.page(&src, p, &mut rows, &keep)?;
        // A hash-only table holds at most one item per query: nothing can follow it, and a
        // start key from it would be refused (above), so none is given.
        if src.index.is_none()
            && t.meta.range.is_none()
            && let Some(o) = out.as_object_mut()
        {
            o.remove("LastEvaluatedKey");
        }
        Ok(out)
    }

    /// A parsed Scan.
    pub(crate) fn run_scan(&self, p: &ReadParams) -> Result<Value, DdbError> {
        let g = self.state.read();
        let t = g.get(&p.table)?;
        let src = Self::read_index(t, p)?;
        if let Some(esk) = &p.esk {
            if esk.len() != Self::start_key_names(&src).len() {
                return Err(DdbError::validation(if src.index.is_some() {
                    "The provided starting key is invalid"
                } else {
                    "The provided starting key is invalid: The provided key element does not match the schema"
                }));
            }
            if let Some(ix) = src.index {
                index_start_key(ix, esk)?;
            }
        }
        Self::check_select(&src, p, false)?;
        if let Some(esk) = &p.esk {
            table_start_key(t, esk)?;
        }
        let buckets = p.segment.map_or((0, 4096), |(s, n)| segment_buckets(s, n));
        let after = match &p.esk {
            Some(esk) => {
                let start = src.start_key(esk)?;
                if let Some((s, n)) = p.segment
                    && n > 1
                {
                    let bucket = super::value::hash_prefix(&start.0, None) >> 12;
                    if bucket < buckets.0 || bucket >= buckets.1 {
                        return Err(DdbError::validation(format!(
                            "The provided starting key is invalid: Invalid ExclusiveStartKey. Please use ExclusiveStartKey with correct Segment. TotalSegments: {n} Segment: {s}"
                        )));
                    }
                }
                Some(start)
            }
            None => None,
        };
        key_paths(&p.proj_nested, t)?;
        key_paths(&p.filter_nested, t)?;
        let mut rows = src.all(after, buckets).map(|(_, pk)| pk);
        self.page(&src, p, &mut rows, &|_, _| Ok(true))
    }
}

/// A PartiQL SELECT, bound: its WHERE clause as a condition over `ctx`'s placeholders.
pub(crate) struct StatementRead {
    pub table: String,
    pub index: Option<String>,
    pub cond: Option<Cond>,
    pub ctx: Ctx,
    pub proj: Option<Vec<Vec<Seg>>>,
    pub limit: Option<usize>,
    pub esk: Option<Item>,
    pub consistent: bool,
    /// `ORDER BY` the sort key, descending when true.
    pub order: Option<(Vec<Seg>, bool)>,
}

/// The top-level conjuncts of a condition (`a AND (b AND c)` -> a, b, c).
pub(crate) fn conjuncts<'c>(c: &'c Cond, out: &mut Vec<&'c Cond>) {
    match c {
        Cond::And(a, b) => {
            conjuncts(a, out);
            conjuncts(b, out);
        }
        other => out.push(other),
    }
}

/// `attr <op> value` (either way round) as (attribute, operator as seen from the
/// attribute, value), for a top-level attribute.
pub(crate) fn attr_cmp<'c>(c: &Cond, ctx: &'c Ctx) -> Option<(String, CmpOp, &'c AttrValue)> {
    let Cond::Cmp(a, op, b) = c else { return None };
    let flip = |op: CmpOp| match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        other => other,
    };
    match (
        top_attr(a, ctx),
        value_of(b, ctx),
        top_attr(b, ctx),
        value_of(a, ctx),
    ) {
        (Some(n), Some(v), _, _) => Some((n, *op, v)),
        (_, _, Some(n), Some(v)) => Some((n, flip(*op), v)),
        _ => None,
    }
}

fn top_attr(o: &Operand, ctx: &Ctx) -> Option<String> {
    let Operand::Path(p) = o else { return None };
    match ctx.resolve(p).ok()?.as_slice() {
        [Seg::Key(k)] => Some(k.clone()),
        _ => None,
    }
}

fn value_of<'c>(o: &Operand, ctx: &'c Ctx) -> Option<&'c AttrValue> {
    match o {
        Operand::Value(v) => ctx.values.get(v),
        _ => None,
    }
}

/// The key conditions a PartiQL WHERE clause implies for a source keyed by `hash` /
/// `range`: `hash = v` among its top-level conjuncts (v of the key's type), and then the
/// first conjunct on the sort key that a key condition can express. Empty when the
/// partition key is not fixed (the read is a Scan).
fn implied_key_conds(
    cond: &Cond,
    ctx: &Ctx,
    hash: &KeySpec,
    range: Option<&KeySpec>,
) -> Vec<KeyCond> {
    let mut parts = Vec::new();
    conjuncts(cond, &mut parts);
    let typed = |v: &AttrValue, spec: &KeySpec| v.type_name() == spec.ty;
    let Some(h) = parts.iter().find_map(|c| match attr_cmp(c, ctx) {
        Some((n, CmpOp::Eq, v)) if n == hash.name && typed(v, hash) => Some(v.clone()),
        _ => None,
    }) else {
        return Vec::new();
    };
    let mut out = vec![KeyCond {
        attr: hash.name.clone(),
        op: "EQ".into(),
        args: vec![h],
    }];
    let Some(r) = range else { return out };
    let range_cond = parts.iter().find_map(|c| {
        if let Some((n, op, v)) = attr_cmp(c, ctx) {
            let op = match op {
                CmpOp::Eq => "EQ",
                CmpOp::Lt => "LT",
                CmpOp::Le => "LE",
                CmpOp::Gt => "GT",
                CmpOp::Ge => "GE",
                CmpOp::Ne => return None,
            };
            return (n == r.name && typed(v, r)).then(|| (op, vec![v.clone()]));
        }
        match c {
            Cond::Between(a, lo, hi) => {
                let (lo, hi) = (value_of(lo, ctx)?, value_of(hi, ctx)?);
                let ordered = super::expr::eval::scalar_cmp(lo, hi)
                    .is_some_and(|o| o != std::cmp::Ordering::Greater);
                (top_attr(a, ctx)? == r.name && typed(lo, r) && typed(hi, r) && ordered)
                    .then(|| ("BETWEEN", vec![lo.clone(), hi.clone()]))
            }
            Cond::BeginsWith(a, p) => {
                let p = value_of(p, ctx)?;
                (top_attr(a, ctx)? == r.name && typed(p, r) && r.ty != "N")
                    .then(|| ("BEGINS_WITH", vec![p.clone()]))
            }
            _ => None,
        }
    });
    if let Some((op, args)) = range_cond {
        out.push(KeyCond {
            attr: r.name.clone(),
            op: op.into(),
            args,
        });
    }
    out
}

impl TableEngine {
    /// A PartiQL SELECT as DynamoDB runs it: a Query when the WHERE clause fixes the
    /// partition key of the table (or of the index it names), else a Scan; the whole WHERE
    /// clause filters either way. `capacity` is the request's `ReturnConsumedCapacity`.
    /// Answers Query's and Scan's response.
    pub(crate) fn select(&self, capacity: Capacity, r: StatementRead) -> Result<Value, DdbError> {
        let key_conds = {
            let g = self.state.read();
            let t = g.get(&r.table)?;
            let keys = match &r.index {
                None => Some((t.meta.hash.clone(), t.meta.range.clone())),
                // A multi-attribute index is scanned, its WHERE clause the filter.
                Some(n) => t
                    .meta
                    .index(n)
                    .filter(|ix| !ix.is_composite())
                    .map(|ix| (ix.hash.clone(), ix.range.clone())),
            };
            match (&r.cond, keys) {
                (Some(c), Some((h, rg))) => {
                    let kc = implied_key_conds(c, &r.ctx, &h, rg.as_ref());
                    if let Some((p, _)) = &r.order
                        && !kc.is_empty()
                        && rg
                            .as_ref()
                            .is_none_or(|rg| *p != [Seg::Key(rg.name.clone())])
                    {
                        return Err(DdbError::validation(
                            "ORDER BY must name the sort key of the table or index being read",
                        ));
                    }
                    kc
                }
                _ => Vec::new(),
            }
        };
        if r.order.is_some() && key_conds.is_empty() {
            return Err(DdbError::validation(
                "Must have WHERE clause in the statement when using ORDER BY clause.",
            ));
        }
        let forward = !r.order.as_ref().is_some_and(|(_, desc)| *desc);
        let query = !key_conds.is_empty();
        let p = ReadParams {
            table: r.table,
            index: r.index,
            filter: r.cond,
            // A PartiQL WHERE clause may name key attributes and nested paths anywhere.
            filter_heads: Vec::new(),
            filter_nested: Vec::new(),
            proj_nested: Vec::new(),
            key_conds,
            proj: Projection {
                paths: r.proj,
                legacy: false,
            },
            ctx: r.ctx,
            limit: r.limit,
            esk: r.esk,
            select: None,
            consistent: r.consistent,
            segment: None,
            capacity,
            // Its filter is the WHERE clause, which may name key attributes.
            query_filter: false,
        };
        if query {
            self.run_query(&p, forward)
        } else {
            self.run_scan(&p)
        }
    }
}

/// `ConsumedCapacity` of a Query or Scan: read units over the bytes read (rounded up to 4 KB
/// once, not per item), halved for eventually consistent reads; with `INDEXES` the index's
/// share is reported apart from the table's (an LSI fetching unprojected attributes reads both).
fn read_consumed(
    capacity: Capacity,
    table: &str,
    src: &Source<'_>,
    table_bytes: usize,
    index_bytes: usize,
    consistent: bool,
) -> Option<Value> {
    if capacity == Capacity::None {
        return None;
    }
    let units = |b: usize| {
        let u = b.div_ceil(4096) as f64;
        if consistent { u } else { u / 2.0 }
    };
    // What is read costs at least one read unit (half, eventually consistent) even when
    // nothing is found, as a GetItem of a missing item does; a table an LSI did not need to
    // fetch from costs nothing.
    let mut u = Units::table(units(if src.index.is_none() {
        table_bytes.max(1)
    } else {
        table_bytes
    }));
    if let Some(ix) = src.index {
        u.indexes.push(IndexUnits {
            name: ix.name.clone(),
            global: ix.global,
            units: units(index_bytes.max(1)),
        });
    }
    capacity.consumed(table, &u)
}
