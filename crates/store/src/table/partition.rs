//! The items of one partition, by sort key.
//!
//! A table without a sort key has one item per partition, and so do many partitions of tables
//! with one: such a partition is held inline ([`Partition::One`]) instead of in a `BTreeMap`,
//! whose first node alone takes ~450 bytes and is one more pointer to follow on every read.
//! A second item turns it into a map, and back to one item it is inline again; emptied, it is
//! an empty map (which allocates nothing).
//!
//! An index partition ([`IndexPartition`]) is the same for index entries: one entry (the usual
//! case of an index whose keys are unique, such as an e-mail address) is held inline instead of
//! in a map of sets, which took ~1.5 KB an entry.

use std::collections::{BTreeMap, BTreeSet};
use std::collections::{btree_map, btree_set};
use std::ops::RangeBounds;
use std::sync::Arc;

use super::engine::IxEntry;
use super::value::{Item, KeyVal};

/// A sort key (`None` in a table without one).
pub type SortKey = Option<KeyVal>;

#[derive(Debug, Clone)]
pub enum Partition {
    One(SortKey, Arc<Item>),
    Many(BTreeMap<SortKey, Arc<Item>>),
}

impl Default for Partition {
    fn default() -> Self {
        Partition::Many(BTreeMap::new())
    }
}

impl Partition {
    pub fn get(&self, k: &SortKey) -> Option<&Arc<Item>> {
        match self {
            Partition::One(k1, v) => (k1 == k).then_some(v),
            Partition::Many(m) => m.get(k),
        }
    }

    /// Insert or replace the item under `k`; the one replaced.
    pub fn insert(&mut self, k: SortKey, v: Arc<Item>) -> Option<Arc<Item>> {
        match self {
            Partition::One(k1, v1) if *k1 == k => Some(std::mem::replace(v1, v)),
            Partition::One(..) => {
                let Partition::One(k1, v1) = std::mem::take(self) else {
                    unreachable!("matched One above")
                };
                *self = Partition::Many(BTreeMap::from([(k1, v1), (k, v)]));
                None
            }
            Partition::Many(m) if m.is_empty() => {
                *self = Partition::One(k, v);
                None
            }
            Partition::Many(m) => m.insert(k, v),
        }
    }

    pub fn remove(&mut self, k: &SortKey) -> Option<Arc<Item>> {
        match self {
            Partition::One(k1, _) if k1 == k => {
                let Partition::One(_, v) = std::mem::take(self) else {
                    unreachable!("matched One above")
                };
                Some(v)
            }
            Partition::One(..) => None,
            Partition::Many(m) => {
                let v = m.remove(k)?;
                // Down to one item: inline again.
                if m.len() == 1
                    && let Some((k1, v1)) = m.pop_first()
                {
                    *self = Partition::One(k1, v1);
                }
                Some(v)
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, Partition::Many(m) if m.is_empty())
    }

    /// Items in sort-key order.
    pub fn iter(&self) -> Iter<'_> {
        match self {
            Partition::One(k, v) => Items::One(Some((k, v))),
            Partition::Many(m) => Items::Many(m.iter()),
        }
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &SortKey> {
        self.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Arc<Item>> {
        self.iter().map(|(_, v)| v)
    }

    /// Items whose sort key is within `r`, in sort-key order.
    pub fn range<R: RangeBounds<SortKey>>(&self, r: R) -> Range<'_> {
        match self {
            Partition::One(k, v) => Items::One(r.contains(k).then_some((k, v))),
            Partition::Many(m) => Items::Many(m.range(r)),
        }
    }
}

/// A partition's contents in order: the inline pair, or the map's iterator `I`.
pub enum Items<'a, V, I> {
    One(Option<(&'a SortKey, &'a V)>),
    Many(I),
}

/// [`Partition::iter`].
pub type Iter<'a> = Items<'a, Arc<Item>, btree_map::Iter<'a, SortKey, Arc<Item>>>;

/// [`Partition::range`].
pub type Range<'a> = Items<'a, Arc<Item>, btree_map::Range<'a, SortKey, Arc<Item>>>;

impl<'a, V, I: Iterator<Item = (&'a SortKey, &'a V)>> Iterator for Items<'a, V, I> {
    type Item = (&'a SortKey, &'a V);
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Items::One(x) => x.take(),
            Items::Many(i) => i.next(),
        }
    }
}

impl<'a, V, I: DoubleEndedIterator<Item = (&'a SortKey, &'a V)>> DoubleEndedIterator
    for Items<'a, V, I>
{
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            Items::One(x) => x.take(),
            Items::Many(i) => i.next_back(),
        }
    }
}

/// The entries of one index partition, by sort key, then in [`IxEntry`] order.
#[derive(Debug, Clone)]
pub enum IndexPartition {
    One(SortKey, IxEntry),
    Many(BTreeMap<SortKey, BTreeSet<IxEntry>>),
}

impl Default for IndexPartition {
    fn default() -> Self {
        IndexPartition::Many(BTreeMap::new())
    }
}

/// The entries under one sort key, each with it.
pub struct Keyed<'a> {
    key: &'a SortKey,
    entries: btree_set::Iter<'a, IxEntry>,
}

impl<'a> Iterator for Keyed<'a> {
    type Item = (&'a SortKey, &'a IxEntry);
    fn next(&mut self) -> Option<Self::Item> {
        Some((self.key, self.entries.next()?))
    }
}

impl DoubleEndedIterator for Keyed<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        Some((self.key, self.entries.next_back()?))
    }
}

fn keyed<'a>((key, set): (&'a SortKey, &'a BTreeSet<IxEntry>)) -> Keyed<'a> {
    Keyed {
        key,
        entries: set.iter(),
    }
}

/// Index entries with their sort keys, in order (either way), without allocating.
pub type Entries<'a> = Items<
    'a,
    IxEntry,
    std::iter::FlatMap<
        btree_map::Range<'a, SortKey, BTreeSet<IxEntry>>,
        Keyed<'a>,
        fn((&'a SortKey, &'a BTreeSet<IxEntry>)) -> Keyed<'a>,
    >,
>;

impl IndexPartition {
    /// Add an entry; false when it was there already.
    pub fn insert(&mut self, k: SortKey, e: IxEntry) -> bool {
        match self {
            IndexPartition::One(k1, e1) if *k1 == k && *e1 == e => false,
            IndexPartition::One(..) => {
                let IndexPartition::One(k1, e1) = std::mem::take(self) else {
                    unreachable!("matched One above")
                };
                let mut m: BTreeMap<SortKey, BTreeSet<IxEntry>> = BTreeMap::new();
                m.entry(k1).or_default().insert(e1);
                m.entry(k).or_default().insert(e);
                *self = IndexPartition::Many(m);
                true
            }
            IndexPartition::Many(m) if m.is_empty() => {
                *self = IndexPartition::One(k, e);
                true
            }
            IndexPartition::Many(m) => m.entry(k).or_default().insert(e),
        }
    }

    /// Remove an entry; false when it was not there.
    pub fn remove(&mut self, k: &SortKey, e: &IxEntry) -> bool {
        match self {
            IndexPartition::One(k1, e1) if k1 == k && e1 == e => {
                *self = IndexPartition::default();
                true
            }
            IndexPartition::One(..) => false,
            IndexPartition::Many(m) => {
                let Some(set) = m.get_mut(k) else {
                    return false;
                };
                if !set.remove(e) {
                    return false;
                }
                if set.is_empty() {
                    m.remove(k);
                }
                // Down to one entry: inline again.
                if m.len() == 1
                    && m.values().next().is_some_and(|s| s.len() == 1)
                    && let Some((k1, mut set)) = m.pop_first()
                    && let Some(e1) = set.pop_first()
                {
                    *self = IndexPartition::One(k1, e1);
                }
                true
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, IndexPartition::Many(m) if m.is_empty())
    }

    /// Every entry, in order.
    pub fn iter(&self) -> Entries<'_> {
        self.range(..)
    }

    /// The entries whose sort key is within `r`, in order.
    pub fn range<R: RangeBounds<SortKey>>(&self, r: R) -> Entries<'_> {
        match self {
            IndexPartition::One(k, e) => Items::One(r.contains(k).then_some((k, e))),
            IndexPartition::Many(m) => Items::Many(m.range(r).flat_map(keyed as fn(_) -> _)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ops::Bound;

    use super::*;
    use crate::table::value::{AttrValue, Number};

    fn n(v: i64) -> SortKey {
        Some(KeyVal::N(Number::from_i64(v)))
    }

    fn item(tag: &str) -> Arc<Item> {
        Arc::new(Item::from([("tag".to_string(), AttrValue::S(tag.into()))]))
    }

    fn tags<'a>(it: impl Iterator<Item = (&'a SortKey, &'a Arc<Item>)>) -> Vec<String> {
        it.map(|(_, v)| match &v["tag"] {
            AttrValue::S(s) => s.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
    }

    /// Every operation gives what a `BTreeMap` gives, through one item, two, and back to none,
    /// over a sequence of inserts, replacements and removals.
    #[test]
    fn a_partition_answers_as_a_map_whether_it_holds_one_item_or_many() {
        let mut p = Partition::default();
        let mut m: BTreeMap<SortKey, Arc<Item>> = BTreeMap::new();
        let steps: &[(bool, i64, &str)] = &[
            (true, 5, "a"),
            (true, 5, "b"),
            (true, 3, "c"),
            (false, 5, ""),
            (false, 3, ""),
            (false, 3, ""),
            (true, 7, "d"),
            (false, 8, ""),
            (true, 1, "e"),
            (true, 9, "f"),
            (false, 1, ""),
            (false, 7, ""),
            (false, 9, ""),
        ];
        for (i, (put, k, tag)) in steps.iter().enumerate() {
            let (got, want) = if *put {
                (p.insert(n(*k), item(tag)), m.insert(n(*k), item(tag)))
            } else {
                (p.remove(&n(*k)), m.remove(&n(*k)))
            };
            assert_eq!(got, want, "step {i}");
            assert_eq!(p.is_empty(), m.is_empty(), "step {i}");
            assert_eq!(tags(p.iter()), tags(m.iter()), "step {i}");
            assert_eq!(tags(p.iter().rev()), tags(m.iter().rev()), "step {i}");
            for probe in 0..10 {
                assert_eq!(p.get(&n(probe)), m.get(&n(probe)), "step {i} get {probe}");
                for hi in probe..10 {
                    let r = (Bound::Included(n(probe)), Bound::Excluded(n(hi)));
                    assert_eq!(
                        tags(p.range(r.clone())),
                        tags(m.range(r.clone())),
                        "step {i} range {probe}..{hi}"
                    );
                    assert_eq!(
                        tags(p.range(r.clone()).rev()),
                        tags(m.range(r)).into_iter().rev().collect::<Vec<_>>(),
                        "step {i} range {probe}..{hi} reversed"
                    );
                }
            }
            assert_eq!(p.keys().count(), m.len(), "step {i}");
            // One item is held inline, never in a map.
            if m.len() == 1 {
                assert!(matches!(p, Partition::One(..)), "step {i}");
            }
        }
        // A table without a sort key: the one item under `None`, replaced in place.
        let mut p = Partition::default();
        assert_eq!(p.insert(None, item("x")), None);
        assert_eq!(p.insert(None, item("y")), Some(item("x")));
        assert!(matches!(p, Partition::One(None, _)));
        assert_eq!(p.range(..).count(), 1);
        assert_eq!(p.remove(&None), Some(item("y")));
        assert!(p.is_empty());
    }

    fn entry(id: &str) -> IxEntry {
        IxEntry::new((KeyVal::S(id.into()), None))
    }

    /// An index partition gives the entries a map of sets gives, in both directions and over
    /// every range, through one entry, several under one sort key and under several, and back.
    #[test]
    fn an_index_partition_answers_as_a_map_of_sets_whether_it_holds_one_entry_or_many() {
        let mut p = IndexPartition::default();
        let mut m: BTreeMap<SortKey, BTreeSet<IxEntry>> = BTreeMap::new();
        let steps: &[(bool, i64, &str)] = &[
            (true, 5, "a"),
            (true, 5, "a"),
            (true, 5, "b"),
            (false, 5, "a"),
            (true, 3, "c"),
            (false, 5, "b"),
            (false, 5, "b"),
            (false, 3, "c"),
            (true, 7, "d"),
            (false, 7, "e"),
            (false, 8, "d"),
            (true, 1, "e"),
            (true, 9, "f"),
            (true, 9, "g"),
            (false, 1, "e"),
            (false, 9, "f"),
            (false, 7, "d"),
            (false, 9, "g"),
        ];
        let flat = |m: &BTreeMap<SortKey, BTreeSet<IxEntry>>, lo: i64, hi: i64| {
            m.range((Bound::Included(n(lo)), Bound::Excluded(n(hi))))
                .flat_map(|(k, set)| set.iter().map(move |e| (k.clone(), e.clone())))
                .collect::<Vec<_>>()
        };
        fn owned<'a>(
            it: impl Iterator<Item = (&'a SortKey, &'a IxEntry)>,
        ) -> Vec<(SortKey, IxEntry)> {
            it.map(|(k, e)| (k.clone(), e.clone())).collect()
        }
        for (i, (put, k, id)) in steps.iter().enumerate() {
            let (got, want) = if *put {
                (
                    p.insert(n(*k), entry(id)),
                    m.entry(n(*k)).or_default().insert(entry(id)),
                )
            } else {
                let want = m.get_mut(&n(*k)).is_some_and(|s| s.remove(&entry(id)));
                m.retain(|_, s| !s.is_empty());
                (p.remove(&n(*k), &entry(id)), want)
            };
            assert_eq!(got, want, "step {i}");
            assert_eq!(p.is_empty(), m.is_empty(), "step {i}");
            let all = flat(&m, 0, 10);
            assert_eq!(owned(p.iter()), all, "step {i}");
            let mut back = all.clone();
            back.reverse();
            assert_eq!(owned(p.iter().rev()), back, "step {i}");
            for lo in 0..10 {
                for hi in lo..10 {
                    let r = (Bound::Included(n(lo)), Bound::Excluded(n(hi)));
                    let want = flat(&m, lo, hi);
                    assert_eq!(owned(p.range(r.clone())), want, "step {i} {lo}..{hi}");
                    let mut back = want;
                    back.reverse();
                    assert_eq!(owned(p.range(r).rev()), back, "step {i} {lo}..{hi}");
                }
            }
            // One entry is held inline, never in a map.
            if all.len() == 1 {
                assert!(matches!(p, IndexPartition::One(..)), "step {i}");
            }
        }
    }
}
