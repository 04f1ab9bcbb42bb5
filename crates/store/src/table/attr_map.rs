//! An item's attributes (and a map value's members): name to value, in name order.
//!
//! Kept as one vector sorted by name rather than a `BTreeMap`: a B-tree's first node has room
//! for eleven entries however few an item holds (~630 bytes for `String` names and
//! [`AttrValue`]s), and most items hold a handful. Look-ups are binary searches over the
//! contiguous entries; an insert moves the entries after it, as a B-tree node's insert does
//! within its node. Building from many entries at once (a request's item, a loaded item)
//! sorts once. The methods mirror `BTreeMap`'s, whose iteration order and comparisons
//! (entries in name order) this keeps.

use std::borrow::Borrow;

use super::value::AttrValue;

/// Attribute name to value, sorted by name, each name once.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AttrMap {
    entries: Vec<(String, AttrValue)>,
}

pub type Iter<'a> = std::iter::Map<
    std::slice::Iter<'a, (String, AttrValue)>,
    fn(&'a (String, AttrValue)) -> (&'a String, &'a AttrValue),
>;
pub type IterMut<'a> = std::iter::Map<
    std::slice::IterMut<'a, (String, AttrValue)>,
    fn(&'a mut (String, AttrValue)) -> (&'a String, &'a mut AttrValue),
>;

impl AttrMap {
    pub const fn new() -> AttrMap {
        AttrMap {
            entries: Vec::new(),
        }
    }

    fn find<Q>(&self, name: &Q) -> Result<usize, usize>
    where
        String: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.entries.binary_search_by(|(n, _)| n.borrow().cmp(name))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get<Q>(&self, name: &Q) -> Option<&AttrValue>
    where
        String: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.find(name).ok().map(|i| &self.entries[i].1)
    }

    pub fn get_mut<Q>(&mut self, name: &Q) -> Option<&mut AttrValue>
    where
        String: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.find(name).ok().map(|i| &mut self.entries[i].1)
    }

    pub fn contains_key<Q>(&self, name: &Q) -> bool
    where
        String: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.find(name).is_ok()
    }

    /// Set `name` to `value`; the value it had, if any.
    pub fn insert(&mut self, name: String, value: AttrValue) -> Option<AttrValue> {
        match self.find(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (name, value));
                None
            }
        }
    }

    pub fn remove<Q>(&mut self, name: &Q) -> Option<AttrValue>
    where
        String: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.find(name).ok().map(|i| self.entries.remove(i).1)
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&String, &mut AttrValue) -> bool) {
        self.entries.retain_mut(|(n, v)| keep(n, v));
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub fn iter(&self) -> Iter<'_> {
        self.entries.iter().map(|(n, v)| (n, v))
    }

    pub fn iter_mut(&mut self) -> IterMut<'_> {
        self.entries.iter_mut().map(|(n, v)| (&*n, v))
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator + Clone {
        self.entries.iter().map(|(n, _)| n)
    }

    pub fn values(
        &self,
    ) -> impl DoubleEndedIterator<Item = &AttrValue> + ExactSizeIterator + Clone {
        self.entries.iter().map(|(_, v)| v)
    }

    pub fn values_mut(
        &mut self,
    ) -> impl DoubleEndedIterator<Item = &mut AttrValue> + ExactSizeIterator {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    pub fn into_values(self) -> impl DoubleEndedIterator<Item = AttrValue> + ExactSizeIterator {
        self.entries.into_iter().map(|(_, v)| v)
    }

    pub fn first_key_value(&self) -> Option<(&String, &AttrValue)> {
        self.entries.first().map(|(n, v)| (n, v))
    }

    /// The map of `entries`, or `None` when a name comes twice (sorted once, however many).
    pub fn from_distinct(mut entries: Vec<(String, AttrValue)>) -> Option<AttrMap> {
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if entries.windows(2).any(|w| w[0].0 == w[1].0) {
            return None;
        }
        // Kept for the item's life: no room left over from growing while it was read (an
        // allocation of exactly its length; `shrink_to_fit` may keep the block it has).
        if entries.capacity() > entries.len() {
            let mut exact = Vec::with_capacity(entries.len());
            exact.append(&mut entries);
            entries = exact;
        }
        Some(AttrMap { entries })
    }

    /// Add `more`, a later entry of a name replacing an earlier one (as inserting each would).
    fn add_all(&mut self, more: impl IntoIterator<Item = (String, AttrValue)>) {
        let before = self.entries.len();
        self.entries.extend(more);
        if self.entries.len() == before {
            return;
        }
        // Stable: among entries of one name, the last added stays last.
        self.entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, AttrValue)> = Vec::with_capacity(self.entries.len());
        for e in self.entries.drain(..) {
            match out.last_mut() {
                Some(last) if last.0 == e.0 => *last = e,
                _ => out.push(e),
            }
        }
        out.shrink_to_fit();
        self.entries = out;
    }
}

impl std::fmt::Debug for AttrMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl FromIterator<(String, AttrValue)> for AttrMap {
    fn from_iter<T: IntoIterator<Item = (String, AttrValue)>>(iter: T) -> AttrMap {
        let mut m = AttrMap::new();
        m.add_all(iter);
        m
    }
}

impl<const N: usize> From<[(String, AttrValue); N]> for AttrMap {
    fn from(entries: [(String, AttrValue); N]) -> AttrMap {
        entries.into_iter().collect()
    }
}

impl Extend<(String, AttrValue)> for AttrMap {
    fn extend<T: IntoIterator<Item = (String, AttrValue)>>(&mut self, iter: T) {
        self.add_all(iter);
    }
}

impl IntoIterator for AttrMap {
    type Item = (String, AttrValue);
    type IntoIter = std::vec::IntoIter<(String, AttrValue)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a> IntoIterator for &'a AttrMap {
    type Item = (&'a String, &'a AttrValue);
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut AttrMap {
    type Item = (&'a String, &'a mut AttrValue);
    type IntoIter = IterMut<'a>;
    fn into_iter(self) -> IterMut<'a> {
        self.iter_mut()
    }
}

/// Tests read attributes by name as they would a `BTreeMap`'s; the engine uses `get`.
#[cfg(test)]
impl<Q> std::ops::Index<&Q> for AttrMap
where
    String: Borrow<Q>,
    Q: Ord + ?Sized,
{
    type Output = AttrValue;
    fn index(&self, name: &Q) -> &AttrValue {
        self.get(name).expect("no attribute of that name")
    }
}

impl serde::Serialize for AttrMap {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn v(i: u64) -> AttrValue {
        AttrValue::S(format!("v{i}"))
    }

    /// Steps of inserts, removes and look-ups, the map checked against a `BTreeMap` after each.
    #[test]
    fn the_map_answers_as_a_btree_map_through_inserts_removes_and_lookups() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut m = AttrMap::new();
        let mut want: BTreeMap<String, AttrValue> = BTreeMap::new();
        for i in 0..4_000 {
            let r = next();
            let name = format!("a{}", r % 97);
            match (r >> 32) % 5 {
                0 | 1 => assert_eq!(m.insert(name.clone(), v(i)), want.insert(name, v(i))),
                2 => assert_eq!(m.remove(name.as_str()), want.remove(&name)),
                3 => {
                    assert_eq!(m.get(name.as_str()), want.get(&name));
                    assert_eq!(m.contains_key(&name), want.contains_key(&name));
                }
                _ => {
                    if let Some(val) = m.get_mut(&name) {
                        *val = v(i);
                        want.insert(name, v(i));
                    }
                }
            }
            assert_eq!(m.len(), want.len());
        }
        assert!(m.iter().eq(want.iter()));
        assert!(m.keys().rev().eq(want.keys().rev()));
        assert_eq!(m.first_key_value(), want.first_key_value());
        let back: Vec<_> = m.clone().into_iter().collect();
        assert_eq!(back, want.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn built_at_once_a_later_entry_of_a_name_wins_and_distinct_building_refuses_repeats() {
        let entries = vec![
            ("b".to_string(), v(1)),
            ("a".to_string(), v(2)),
            ("b".to_string(), v(3)),
            ("c".to_string(), v(4)),
            ("a".to_string(), v(5)),
        ];
        let m: AttrMap = entries.clone().into_iter().collect();
        let want: BTreeMap<_, _> = entries.clone().into_iter().collect();
        assert!(m.iter().eq(want.iter()));
        let mut ext = AttrMap::from([("c".to_string(), v(9)), ("d".to_string(), v(8))]);
        ext.extend(entries.clone());
        let mut want_ext = BTreeMap::from([("c".to_string(), v(9)), ("d".to_string(), v(8))]);
        want_ext.extend(entries.clone());
        assert!(ext.iter().eq(want_ext.iter()));
        assert!(AttrMap::from_distinct(entries).is_none());
        let distinct = AttrMap::from_distinct(vec![("z".into(), v(1)), ("y".into(), v(2))]);
        assert!(
            distinct.unwrap().keys().eq(["y", "z"]
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .iter())
        );
    }

    #[test]
    fn maps_compare_and_print_as_btree_maps_do() {
        let a = AttrMap::from([("x".to_string(), v(1)), ("a".to_string(), v(2))]);
        let b: AttrMap = [("a".to_string(), v(2)), ("x".to_string(), v(1))]
            .into_iter()
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, AttrMap::from([("a".to_string(), v(2))]));
        let ba = BTreeMap::from([("x".to_string(), v(1)), ("a".to_string(), v(2))]);
        assert_eq!(format!("{a:?}"), format!("{ba:?}"));
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&ba).unwrap()
        );
    }
}
