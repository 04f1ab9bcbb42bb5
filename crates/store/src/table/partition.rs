//! The items of one partition, by sort key.
//!
//! A table without a sort key has one item per partition, and so do many partitions of tables
//! with one: such a partition is held inline ([`Partition::One`]) instead of in a `BTreeMap`,
//! whose first node alone takes ~450 bytes and is one more pointer to follow on every read.
//! A second item turns it into a map, and back to one item it is inline again; emptied, it is
//! an empty map (which allocates nothing).

use std::collections::BTreeMap;
use std::collections::btree_map;
use std::ops::RangeBounds;
use std::sync::Arc;

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

/// [`Partition::iter`] and [`Partition::range`]: the inline item, or the map's iterator `I`.
pub enum Items<'a, I> {
    One(Option<(&'a SortKey, &'a Arc<Item>)>),
    Many(I),
}

/// [`Partition::iter`].
pub type Iter<'a> = Items<'a, btree_map::Iter<'a, SortKey, Arc<Item>>>;

/// [`Partition::range`].
pub type Range<'a> = Items<'a, btree_map::Range<'a, SortKey, Arc<Item>>>;

impl<'a, I: Iterator<Item = (&'a SortKey, &'a Arc<Item>)>> Iterator for Items<'a, I> {
    type Item = (&'a SortKey, &'a Arc<Item>);
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Items::One(x) => x.take(),
            Items::Many(i) => i.next(),
        }
    }
}

impl<'a, I: DoubleEndedIterator<Item = (&'a SortKey, &'a Arc<Item>)>> DoubleEndedIterator
    for Items<'a, I>
{
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            Items::One(x) => x.take(),
            Items::Many(i) => i.next_back(),
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
}
