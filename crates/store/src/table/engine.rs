//! In-memory table storage: items ordered by key, secondary index entries, TTL order,
//! and the journal records each change produces.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;

use super::error::DdbError;
use super::items::{IndexUnits, Units};
use super::meta::{IndexMeta, KeyOf, KeySpec, PKey, TableMeta, key_value};
use super::streams::{Change, Stream};
use super::value::{AttrValue, Item, KeyVal, PartKey, item_size, key_order};
use crate::journal::Record;
use crate::table_record::TableRecord;

/// Largest partition key value, in bytes.
pub const MAX_HASH_KEY: usize = 2048;
/// Largest sort key value, in bytes.
pub const MAX_RANGE_KEY: usize = 1024;
/// DynamoDB's item collection limit for tables with local secondary indexes.
pub const ITEM_COLLECTION_LIMIT: usize = 10 * 1024 * 1024 * 1024;
/// TTL ignores expiry times more than five years in the past (AWS documents this).
const FIVE_YEARS_SECS: u64 = 5 * 365 * 24 * 3600;

/// Entries of one secondary index: index partition (in hash order) -> index sort key ->
/// base-table keys (in [`IxEntry`] order).
#[derive(Debug, Default)]
pub struct IndexData {
    pub parts: BTreeMap<PartKey, super::partition::IndexPartition>,
    pub count: usize,
    pub bytes: usize,
}

/// A base-table key among the index entries that share one index key, ordered as DynamoDB
/// returns them ([`key_order`]), then by the key itself.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct IxEntry {
    pub order: u128,
    pub pk: PKey,
}

impl IxEntry {
    pub fn new(pk: PKey) -> IxEntry {
        IxEntry {
            order: key_order(&pk.0, pk.1.as_ref()),
            pk,
        }
    }
}

/// Where a table is in DynamoDB's lifecycle. Transitions happen on the engine's clock after
/// its status delay ([`super::TableEngine::set_status_delay`]); with no delay a table is
/// `Active` at once and a deleted one is gone at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Just created: described as CREATING, not yet readable or writable.
    Creating,
    /// Throughput, billing or indexes changing: described as UPDATING, fully usable.
    Updating,
    /// Deleted: described as DELETING until it disappears; not usable.
    Deleting,
    Active,
}

/// The state of a global secondary index that is being built or dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexPhase {
    Creating,
    Updating,
    Deleting,
}

/// One table in memory.
#[derive(Debug)]
pub struct Table {
    /// Lifecycle phase and the clock time (ms) it ends at.
    pub phase: Phase,
    pub phase_until: u64,
    /// GSIs in transition: name -> (phase, ends at ms). A deleting index is already gone from
    /// `meta`; only its description remains here until then.
    pub index_phases: BTreeMap<String, (IndexPhase, u64, Option<IndexMeta>)>,
    pub meta: TableMeta,
    pub name: Arc<str>,
    /// Partitions in DynamoDB's hash order (what Scan returns), each ordered by sort key.
    pub items: BTreeMap<PartKey, super::partition::Partition>,
    pub indexes: BTreeMap<String, IndexData>,
    pub count: usize,
    pub bytes: usize,
    /// (expiry second, key) of items carrying a numeric TTL attribute, when TTL is on.
    pub ttl: BTreeSet<(u64, PKey)>,
    /// Largest item collection (items sharing a partition key) in a table with local
    /// secondary indexes: 10 GB in DynamoDB; a field so tests can lower it.
    pub collection_limit: usize,
    /// The table's latest stream (enabled, or disabled and still readable), which every
    /// change is recorded in while it is enabled.
    pub stream: Option<Stream>,
    /// The throughput change the table is UPDATING for, if any.
    pub throughput_change: Option<super::meta::ThroughputChange>,
    /// While point-in-time recovery is on: the item each write replaced, oldest first, as
    /// far back as the recovery period ([`super::pitr`]).
    pub history: super::pitr::History,
}

fn key_size(k: &KeyVal) -> usize {
    match k {
        KeyVal::S(s) => s.len(),
        KeyVal::B(b) => b.len(),
        KeyVal::N(n) => n.digit_count().div_ceil(2) + 1,
        // A multi-attribute key's limit is on its attributes' aggregated size.
        KeyVal::Tuple(t) => t.iter().map(key_size).sum(),
    }
}

/// Stable text form of a key, the primary key of `ddb_items` rows.
pub fn key_string(pk: &PKey) -> String {
    let text = match &pk.1 {
        None => serde_json::to_string(&[&pk.0]),
        Some(r) => serde_json::to_string(&[&pk.0, r]),
    };
    // Serialising strings and maps into a String cannot fail.
    text.unwrap_or_default()
}

impl Table {
    pub fn new(meta: TableMeta) -> Table {
        let indexes = meta
            .indexes
            .iter()
            .map(|i| (i.name.clone(), IndexData::default()))
            .collect();
        Table {
            phase: Phase::Active,
            phase_until: 0,
            throughput_change: None,
            index_phases: BTreeMap::new(),
            name: Arc::from(meta.name.as_str()),
            meta,
            items: BTreeMap::new(),
            indexes,
            count: 0,
            bytes: 0,
            ttl: BTreeSet::new(),
            collection_limit: ITEM_COLLECTION_LIMIT,
            stream: None,
            history: Default::default(),
        }
    }

    /// The key of an item being written, with AWS's key validation.
    pub fn key_of_item(&self, item: &Item) -> Result<PKey, DdbError> {
        let h = key_value(&self.meta.hash, item.get(&self.meta.hash.name), KeyOf::Item)?;
        let r = match &self.meta.range {
            Some(spec) => Some(key_value(spec, item.get(&spec.name), KeyOf::Item)?),
            None => None,
        };
        key_sizes(h, r)
    }

    /// Whether `item` has each key attribute of the table, of its declared type.
    pub fn has_key_attributes(&self, item: &Item) -> bool {
        std::iter::once(&self.meta.hash)
            .chain(self.meta.range.as_ref())
            .all(|spec| {
                item.get(&spec.name)
                    .is_some_and(|v| v.type_name() == spec.ty)
            })
    }

    /// A key parameter (GetItem, DeleteItem, UpdateItem, batch reads), checked against the
    /// key schema: exactly the key attributes, of their types, within the size limits.
    pub fn key_from_param(&self, key: &Item) -> Result<PKey, DdbError> {
        let want = 1 + usize::from(self.meta.range.is_some());
        let mismatch =
            || DdbError::validation("The provided key element does not match the schema");
        if key.len() != want {
            return Err(mismatch());
        }
        let check = |spec: &KeySpec| -> Result<KeyVal, DdbError> {
            let v = key.get(&spec.name).ok_or_else(mismatch)?;
            if v.type_name() != spec.ty {
                return Err(mismatch());
            }
            key_value(spec, Some(v), KeyOf::Param)
        };
        let h = check(&self.meta.hash)?;
        let r = self.meta.range.as_ref().map(check).transpose()?;
        key_sizes(h, r)
    }

    /// The key attributes of an item as an item (for LastEvaluatedKey and key-only results).
    pub fn key_item(&self, pk: &PKey) -> Item {
        let mut m = Item::new();
        m.insert(self.meta.hash.name.clone(), pk.0.to_attr());
        if let (Some(spec), Some(r)) = (&self.meta.range, &pk.1) {
            m.insert(spec.name.clone(), r.to_attr());
        }
        m
    }

    /// An item's entry in an index, `None` when it lacks the index key attributes.
    pub fn index_key(
        ix: &IndexMeta,
        item: &Item,
    ) -> Result<Option<(KeyVal, Option<KeyVal>)>, DdbError> {
        if ix.is_composite() {
            return Self::composite_index_key(ix, item);
        }
        let Some(h) = item.get(&ix.hash.name) else {
            return Ok(None);
        };
        let h = key_value(&ix.hash, Some(h), KeyOf::Index(&ix.name))?;
        let r = match &ix.range {
            Some(spec) => match item.get(&spec.name) {
                None => return Ok(None),
                Some(v) => Some(key_value(spec, Some(v), KeyOf::Index(&ix.name))?),
            },
            None => None,
        };
        // An index key obeys the table's key size limits: a write that would make an
        // oversized entry is refused; a backfill leaves the item out of the index.
        key_sizes(h, r).map(Some)
    }

    /// A multi-attribute index's entry: a key of more than one attribute is the tuple of
    /// their values, one of a single attribute that value. An item missing any key attribute
    /// is not in the index (a sparse index); a present one must have the declared type.
    fn composite_index_key(
        ix: &IndexMeta,
        item: &Item,
    ) -> Result<Option<(KeyVal, Option<KeyVal>)>, DdbError> {
        let mut values = Vec::new();
        for spec in ix.key_specs() {
            values.push(item.get(&spec.name).map(|v| (spec, v)));
        }
        // Types are checked on every present attribute, also when another is missing.
        let mut keys = Vec::with_capacity(values.len());
        for (spec, v) in values.iter().flatten() {
            keys.push(key_value(spec, Some(v), KeyOf::Index(&ix.name))?);
        }
        if keys.len() < values.len() {
            return Ok(None);
        }
        let ranges = keys.split_off(1 + ix.more_hash.len());
        let one = |mut k: Vec<KeyVal>| {
            if k.len() == 1 {
                k.pop()
            } else {
                Some(KeyVal::Tuple(k))
            }
        };
        let Some(h) = one(keys) else { return Ok(None) };
        let r = if ranges.is_empty() { None } else { one(ranges) };
        key_sizes(h, r).map(Some)
    }

    /// Everything AWS checks about an item before storing it (key, index keys, size).
    pub fn validate_item(&self, item: &Item, update: bool) -> Result<PKey, DdbError> {
        // One pass over the attributes: their names, then how deep their documents nest.
        for (name, value) in item {
            if let Some(problem) = super::value::attr_name_problem(name) {
                return Err(DdbError::validation(format!(
                    "One or more parameter values were invalid: {problem}"
                )));
            }
            if super::value::nesting(value) >= super::value::MAX_NESTING {
                return Err(DdbError::validation(format!(
                    "One or more parameter values were invalid: Nesting Levels have exceeded supported limits: nested attributes can be at most {} levels deep",
                    super::value::MAX_NESTING
                )));
            }
        }
        let pk = self.key_of_item(item)?;
        for ix in &self.meta.indexes {
            Self::index_key(ix, item)?;
        }
        if item_size(item) > super::value::MAX_ITEM_SIZE {
            return Err(DdbError::validation(if update {
                "Item size to update has exceeded the maximum allowed size"
            } else {
                "Item size has exceeded the maximum allowed size"
            }));
        }
        Ok(pk)
    }

    /// Local secondary indexes: the tables that have them are the ones with item collections.
    fn local_indexes(&self) -> impl Iterator<Item = &IndexMeta> {
        self.meta.indexes.iter().filter(|i| !i.global)
    }

    /// What `item` adds to its item collection, as AWS documents item collection size: the
    /// item, plus per local secondary index it appears in, the entry's table key, index key,
    /// projected attributes and 100 bytes of overhead. Both the 10 GB limit and
    /// `ItemCollectionMetrics` count with this.
    fn collection_share(&self, item: &Item) -> usize {
        let entries: usize = self
            .local_indexes()
            .filter_map(|ix| ix.entry(&self.meta, item))
            .map(|entry| 100 + entry.map(|(k, v)| k.len() + v.size()).sum::<usize>())
            .sum();
        item_size(item) + entries
    }

    /// Write units of replacing `old` by `new` (either may be absent), as DynamoDB charges
    /// them. The table: a unit per KB of the larger of the two items (a write of nothing
    /// still costs one). Each secondary index, by the rules AWS documents for index writes: an
    /// entry added or removed costs a write of its size; an entry whose index key changed
    /// costs two (the old one removed, the new one added); an entry whose projected
    /// attributes changed costs one write of the larger of its two forms; an index the item
    /// is in neither before nor after, or whose entry stays as it was, costs nothing and is
    /// not reported.
    pub fn write_units(&self, old: Option<&Item>, new: Option<&Item>) -> Units {
        let kb = |bytes: usize| bytes.div_ceil(1024).max(1) as f64;
        let item_units = |i: Option<&Item>| i.map_or(1.0, |i| kb(item_size(i)));
        let mut units = Units::table(item_units(old).max(item_units(new)));
        for ix in &self.meta.indexes {
            let before = old.and_then(|i| Some((i, ix.entry(&self.meta, i)?)));
            let after = new.and_then(|i| Some((i, ix.entry(&self.meta, i)?)));
            let bytes = |e: &mut dyn Iterator<Item = (&String, &AttrValue)>| {
                e.map(|(k, v)| k.len() + v.size()).sum::<usize>()
            };
            let cost = match (before, after) {
                (None, None) => 0.0,
                (Some((_, mut e)), None) | (None, Some((_, mut e))) => kb(bytes(&mut e)),
                (Some((o, b)), Some((n, a))) => {
                    let key = |i: &Item| Self::index_key(ix, i).ok().flatten();
                    if key(o) != key(n) {
                        kb(bytes(&mut b.clone())) + kb(bytes(&mut a.clone()))
                    } else if !b.clone().eq(a.clone()) {
                        kb(bytes(&mut b.clone())).max(kb(bytes(&mut a.clone())))
                    } else {
                        0.0
                    }
                }
            };
            if cost > 0.0 {
                units.indexes.push(IndexUnits {
                    name: ix.name.clone(),
                    global: ix.global,
                    units: cost,
                });
            }
        }
        units
    }

    /// Size of the item collection of partition `hash`.
    fn collection_size(&self, hash: &KeyVal) -> usize {
        self.items
            .get(&PartKey::new(hash.clone()))
            .map_or(0, |p| p.values().map(|i| self.collection_share(i)).sum())
    }

    /// `ItemCollectionKey`: the partition key of the collection.
    fn collection_key(&self, hash: &KeyVal) -> serde_json::Value {
        let mut key = Item::new();
        key.insert(self.meta.hash.name.clone(), hash.to_attr());
        super::value::item_to_json(&key)
    }

    /// ItemCollectionSizeLimitExceededException when replacing `old` by `new` at `pk` would
    /// grow the partition's item collection past the limit (only tables with an LSI have one).
    pub fn check_collection(
        &self,
        pk: &PKey,
        old: Option<&Item>,
        new: Option<&Item>,
    ) -> Result<(), DdbError> {
        if self.local_indexes().next().is_none() {
            return Ok(());
        }
        let new_size = new.map_or(0, |i| self.collection_share(i));
        let old_size = old.map_or(0, |i| self.collection_share(i));
        if new_size <= old_size {
            return Ok(());
        }
        let current = self.collection_size(&pk.0);
        if current - old_size.min(current) + new_size > self.collection_limit {
            let mut e = DdbError::new(
                super::error::ErrorCode::ItemCollectionSizeLimitExceeded,
                "Collection size exceeded.",
            );
            let mut m = serde_json::Map::new();
            m.insert("ItemCollectionKey".into(), self.collection_key(&pk.0));
            e.extra = Some(m);
            return Err(e);
        }
        Ok(())
    }

    /// `ItemCollectionMetrics` for the partition `hash`, or `None` when the table has no
    /// local secondary index (DynamoDB returns them only then). The estimate is the 1 GB
    /// range the size falls in (`[0.0, 1.0]` below 1 GB, as DynamoDB answers).
    pub fn collection_metrics(&self, hash: &KeyVal) -> Option<serde_json::Value> {
        self.local_indexes().next()?;
        let lower = (self.collection_size(hash) / (1024 * 1024 * 1024)) as f64;
        Some(serde_json::json!({
            "ItemCollectionKey": self.collection_key(hash),
            "SizeEstimateRangeGB": [lower, lower + 1.0],
        }))
    }

    pub fn get(&self, pk: &PKey) -> Option<&Arc<Item>> {
        self.items.get(&PartKey::new(pk.0.clone()))?.get(&pk.1)
    }

    fn ttl_of(&self, item: &Item) -> Option<u64> {
        let attr = self.meta.ttl.as_ref()?;
        match item.get(attr)? {
            AttrValue::N(n) => {
                let f = n.to_f64();
                (f.is_finite() && f >= 0.0).then_some(f as u64)
            }
            _ => None,
        }
    }

    fn unindex(&mut self, pk: &PKey, item: &Item) {
        if let Some(t) = self.ttl_of(item) {
            self.ttl.remove(&(t, pk.clone()));
        }
        let size = item_size(item);
        for ix in &self.meta.indexes {
            let Ok(Some((h, r))) = Self::index_key(ix, item) else {
                continue;
            };
            let Some(data) = self.indexes.get_mut(&ix.name) else {
                continue;
            };
            let h = PartKey::new(h);
            if let Some(part) = data.parts.get_mut(&h) {
                if part.remove(&r, &IxEntry::new(pk.clone())) {
                    data.count -= 1;
                    data.bytes = data.bytes.saturating_sub(size);
                }
                if part.is_empty() {
                    data.parts.remove(&h);
                }
            }
        }
    }

    fn index(&mut self, pk: &PKey, item: &Item) {
        if let Some(t) = self.ttl_of(item) {
            self.ttl.insert((t, pk.clone()));
        }
        let size = item_size(item);
        for ix in &self.meta.indexes {
            let Ok(Some((h, r))) = Self::index_key(ix, item) else {
                continue;
            };
            let data = self.indexes.entry(ix.name.clone()).or_default();
            if data
                .parts
                .entry(PartKey::new(h))
                .or_default()
                .insert(r, IxEntry::new(pk.clone()))
            {
                data.count += 1;
                data.bytes += size;
            }
        }
    }

    /// Store (or with `None`, delete) the item at `pk`; returns the previous item and
    /// appends the journal records: the item's, its stream record when the table has an
    /// enabled stream and the item changed, and its history entry while point-in-time
    /// recovery is on.
    pub fn write(
        &mut self,
        pk: PKey,
        new: Option<Arc<Item>>,
        change: Change,
        records: &mut Vec<Record>,
    ) -> Option<Arc<Item>> {
        let old = self.store(pk.clone(), new.clone(), records);
        if self.stream.as_ref().is_some_and(Stream::enabled) {
            let keys = self.key_item(&pk);
            if let Some(s) = self.stream.as_mut()
                && let Some(r) = s.append(&keys, old.as_deref(), new.as_deref(), change)
            {
                records.push(r);
            }
        }
        if let Some(pitr) = self.meta.pitr
            && old.as_deref() != new.as_deref()
        {
            let keys = self.key_item(&pk);
            self.history.remember(
                &self.name,
                pitr,
                super::pitr::Entry {
                    seq: 0,
                    at_ms: change.now_ms,
                    pk,
                    old: old.clone(),
                },
                keys,
                records,
            );
        }
        old
    }

    fn store(
        &mut self,
        pk: PKey,
        new: Option<Arc<Item>>,
        records: &mut Vec<Record>,
    ) -> Option<Arc<Item>> {
        let part_key = PartKey::new(pk.0.clone());
        let old = match self.items.get_mut(&part_key) {
            Some(part) => part.remove(&pk.1),
            None => None,
        };
        if let Some(o) = &old {
            self.unindex(&pk, o);
            self.count -= 1;
            self.bytes = self.bytes.saturating_sub(item_size(o));
        }
        let key = key_string(&pk);
        match new {
            Some(item) => {
                self.index(&pk, &item);
                self.count += 1;
                self.bytes += item_size(&item);
                records.push(Record::Table(TableRecord::PutItem {
                    table: self.name.clone(),
                    key,
                    item: item.clone(),
                }));
                self.items.entry(part_key).or_default().insert(pk.1, item);
            }
            None => {
                if old.is_some() {
                    records.push(Record::Table(TableRecord::DeleteItem {
                        table: self.name.clone(),
                        key,
                    }));
                }
                if self.items.get(&part_key).is_some_and(|p| p.is_empty()) {
                    self.items.remove(&part_key);
                }
            }
        }
        old
    }

    /// Load an item during recovery (no journal record).
    pub fn load(&mut self, item: Item) -> Result<(), DdbError> {
        let pk = self.key_of_item(&item)?;
        let item = Arc::new(item);
        self.index(&pk, &item);
        self.count += 1;
        self.bytes += item_size(&item);
        if let Some(old) = self
            .items
            .entry(PartKey::new(pk.0.clone()))
            .or_default()
            .insert(pk.1.clone(), item)
        {
            self.unindex(&pk, &old);
            self.count -= 1;
        }
        Ok(())
    }

    /// Recompute TTL order and index contents after the definition changed.
    pub fn rebuild_derived(&mut self) {
        self.ttl.clear();
        self.indexes = self
            .meta
            .indexes
            .iter()
            .map(|i| (i.name.clone(), IndexData::default()))
            .collect();
        let all: Vec<(PKey, Arc<Item>)> = self
            .items
            .iter()
            .flat_map(|(h, part)| {
                part.iter()
                    .map(move |(r, it)| ((h.key.clone(), r.clone()), it.clone()))
            })
            .collect();
        for (pk, it) in all {
            self.index(&pk, &it);
        }
    }

    /// Keys whose TTL passed at `now_secs` (within AWS's five-year window).
    pub fn expired(&self, now_secs: u64) -> Vec<PKey> {
        let floor = now_secs.saturating_sub(FIVE_YEARS_SECS);
        self.ttl
            .range((Bound::Included((floor, min_pkey())), Bound::Unbounded))
            .take_while(|(t, _)| *t < now_secs)
            .map(|(_, k)| k.clone())
            .collect()
    }

    pub fn index_stats(&self) -> BTreeMap<String, (usize, usize)> {
        self.indexes
            .iter()
            .map(|(k, d)| (k.clone(), (d.count, d.bytes)))
            .collect()
    }

    /// Whether reads and writes may use the table (ACTIVE or UPDATING, as in DynamoDB).
    pub fn usable(&self) -> bool {
        matches!(self.phase, Phase::Active | Phase::Updating)
    }

    pub fn status(&self) -> &'static str {
        match self.phase {
            Phase::Creating => "CREATING",
            Phase::Updating => "UPDATING",
            Phase::Deleting => "DELETING",
            Phase::Active => "ACTIVE",
        }
    }

    /// The `TableDescription` as DynamoDB reports it in the current phase.
    /// The `TableDescription` at `now_ms` (the engine's clock).
    pub fn describe(&self, now_ms: u64) -> serde_json::Value {
        let mut statuses: BTreeMap<String, &'static str> = BTreeMap::new();
        let mut extra = Vec::new();
        for (name, (phase, _, gone)) in &self.index_phases {
            statuses.insert(
                name.clone(),
                match phase {
                    IndexPhase::Creating => "CREATING",
                    IndexPhase::Updating => "UPDATING",
                    IndexPhase::Deleting => "DELETING",
                },
            );
            if let Some(ix) = gone {
                extra.push(ix.clone());
            }
        }
        // While a throughput change is in progress DynamoDB still describes the old units.
        let units = match (&self.throughput_change, self.phase) {
            (Some(c), Phase::Updating) => c.before,
            _ => (self.meta.rcu, self.meta.wcu),
        };
        let mut d = self.meta.describe(
            self.status(),
            self.count,
            self.bytes,
            &self.index_stats(),
            &statuses,
            &extra,
        );
        d["ProvisionedThroughput"] = self.meta.provisioned_throughput(units, now_ms);
        if self.phase == Phase::Deleting
            && let Some(o) = d.as_object_mut()
        {
            o.remove("GlobalSecondaryIndexes");
            o.remove("LocalSecondaryIndexes");
        }
        d
    }
}

/// The smallest possible key, a lower bound for range scans over (t, key) pairs.
fn min_pkey() -> PKey {
    (
        KeyVal::N(
            super::value::Number::parse("-9.9999999999999999999999999999999999999E+125")
                .unwrap_or_default(),
        ),
        None,
    )
}

/// DynamoDB's limits on a key's size: 2048 bytes of hash key, 1024 of range key.
fn key_sizes(h: KeyVal, r: Option<KeyVal>) -> Result<PKey, DdbError> {
    if key_size(&h) > MAX_HASH_KEY {
        return Err(DdbError::validation(
            "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes",
        ));
    }
    if r.as_ref().is_some_and(|r| key_size(r) > MAX_RANGE_KEY) {
        return Err(DdbError::validation(
            "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes",
        ));
    }
    Ok((h, r))
}
