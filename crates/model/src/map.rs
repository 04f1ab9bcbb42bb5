//! [`Map`]: a string-keyed map stored as a sorted list.
//!
//! Labels, annotations and resource lists hold a handful of entries. A `BTreeMap` allocates a
//! node with room for eleven on its first insert (~540 bytes for string values, ~460 for
//! quantities, whatever the count); this holds exactly its entries, in key order, so it
//! iterates, compares, hashes and serializes as the `BTreeMap` it replaces. Lookups are binary
//! searches; inserts shift — fine for the tens of entries these maps hold.

use std::borrow::Borrow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A map from `String` to `V`, sorted by key (see the module docs).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Map<V> {
    entries: Vec<(String, V)>,
}

impl<V> Default for Map<V> {
    fn default() -> Self {
        Map {
            entries: Vec::new(),
        }
    }
}

impl<V> Map<V> {
    pub const fn new() -> Self {
        Map {
            entries: Vec::new(),
        }
    }

    fn find<Q: Borrow<str> + ?Sized>(&self, key: &Q) -> Result<usize, usize> {
        let key = key.borrow();
        self.entries.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    pub fn get<Q: Borrow<str> + ?Sized>(&self, key: &Q) -> Option<&V> {
        self.find(key).ok().map(|i| &self.entries[i].1)
    }

    pub fn get_mut<Q: Borrow<str> + ?Sized>(&mut self, key: &Q) -> Option<&mut V> {
        self.find(key).ok().map(|i| &mut self.entries[i].1)
    }

    pub fn contains_key<Q: Borrow<str> + ?Sized>(&self, key: &Q) -> bool {
        self.find(key).is_ok()
    }

    /// Insert, returning the value `key` had.
    pub fn insert(&mut self, key: String, value: V) -> Option<V> {
        match self.find(key.as_str()) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    pub fn remove<Q: Borrow<str> + ?Sized>(&mut self, key: &Q) -> Option<V> {
        self.find(key).ok().map(|i| self.entries.remove(i).1)
    }

    pub fn entry(&mut self, key: String) -> Entry<'_, V> {
        match self.find(key.as_str()) {
            Ok(i) => Entry {
                map: self,
                at: i,
                key: None,
            },
            Err(i) => Entry {
                map: self,
                at: i,
                key: Some(key),
            },
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn clear(&mut self) {
        self.entries.clear()
    }

    /// Entries in key order.
    pub fn iter(&self) -> Iter<'_, V> {
        Iter(self.entries.iter())
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut V)> {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.entries.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator {
        self.entries.iter().map(|(_, v)| v)
    }

    pub fn into_keys(self) -> impl Iterator<Item = String> {
        self.entries.into_iter().map(|(k, _)| k)
    }

    pub fn into_values(self) -> impl Iterator<Item = V> {
        self.entries.into_iter().map(|(_, v)| v)
    }

    pub fn retain(&mut self, mut f: impl FnMut(&String, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| f(k, v))
    }

    pub fn first_key_value(&self) -> Option<(&String, &V)> {
        self.entries.first().map(|(k, v)| (k, v))
    }

    pub fn last_key_value(&self) -> Option<(&String, &V)> {
        self.entries.last().map(|(k, v)| (k, v))
    }

    /// From entries in any order; the last of duplicate keys wins (as inserting them would).
    fn from_unsorted(mut entries: Vec<(String, V)>) -> Self {
        if !entries.is_sorted_by(|a, b| a.0 < b.0) {
            entries.reverse();
            // Stable: of equal keys the last inserted (now first) stays first.
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            entries.dedup_by(|later, first| later.0 == first.0);
        }
        entries.shrink_to_fit();
        Map { entries }
    }
}

/// A place in a [`Map`], from [`Map::entry`].
pub struct Entry<'a, V> {
    map: &'a mut Map<V>,
    at: usize,
    /// `Some` when the key is vacant.
    key: Option<String>,
}

impl<'a, V> Entry<'a, V> {
    pub fn or_insert_with(self, f: impl FnOnce() -> V) -> &'a mut V {
        if let Some(k) = self.key {
            self.map.entries.insert(self.at, (k, f()));
        }
        &mut self.map.entries[self.at].1
    }

    pub fn or_insert(self, v: V) -> &'a mut V {
        self.or_insert_with(|| v)
    }

    pub fn or_default(self) -> &'a mut V
    where
        V: Default,
    {
        self.or_insert_with(V::default)
    }

    pub fn and_modify(self, f: impl FnOnce(&mut V)) -> Self {
        if self.key.is_none() {
            f(&mut self.map.entries[self.at].1);
        }
        self
    }

    pub fn key(&self) -> &str {
        match &self.key {
            Some(k) => k,
            None => &self.map.entries[self.at].0,
        }
    }
}

/// Iterator over `(&key, &value)` in key order.
#[derive(Clone)]
pub struct Iter<'a, V>(std::slice::Iter<'a, (String, V)>);

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (&'a String, &'a V);
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<V> DoubleEndedIterator for Iter<'_, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k, v))
    }
}

impl<V> ExactSizeIterator for Iter<'_, V> {}

impl<'a, V> IntoIterator for &'a Map<V> {
    type Item = (&'a String, &'a V);
    type IntoIter = Iter<'a, V>;
    fn into_iter(self) -> Iter<'a, V> {
        self.iter()
    }
}

impl<V> IntoIterator for Map<V> {
    type Item = (String, V);
    type IntoIter = std::vec::IntoIter<(String, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<V> FromIterator<(String, V)> for Map<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(it: I) -> Self {
        Map::from_unsorted(it.into_iter().collect())
    }
}

impl<V, const N: usize> From<[(String, V); N]> for Map<V> {
    fn from(a: [(String, V); N]) -> Self {
        Map::from_unsorted(a.into())
    }
}

impl<V> Extend<(String, V)> for Map<V> {
    fn extend<I: IntoIterator<Item = (String, V)>>(&mut self, it: I) {
        for (k, v) in it {
            self.insert(k, v);
        }
    }
}

impl<V> From<std::collections::BTreeMap<String, V>> for Map<V> {
    fn from(m: std::collections::BTreeMap<String, V>) -> Self {
        Map {
            entries: m.into_iter().collect(),
        }
    }
}

impl<V> From<Map<V>> for std::collections::BTreeMap<String, V> {
    fn from(m: Map<V>) -> Self {
        m.entries.into_iter().collect()
    }
}

impl<V, Q: Borrow<str> + ?Sized> std::ops::Index<&Q> for Map<V> {
    type Output = V;
    fn index(&self, key: &Q) -> &V {
        self.get(key).expect("no entry for the key in the map")
    }
}

impl<V: fmt::Debug> fmt::Debug for Map<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V: Serialize> Serialize for Map<V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Map<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Visit<V> {
            type Value = Map<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Map<V>, A::Error> {
                let mut v: Vec<(String, V)> = Vec::with_capacity(m.size_hint().unwrap_or(0));
                while let Some(entry) = m.next_entry::<String, V>()? {
                    v.push(entry);
                }
                Ok(Map::from_unsorted(v))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

#[cfg(feature = "schema")]
impl<V: schemars::JsonSchema> schemars::JsonSchema for Map<V> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        <std::collections::BTreeMap<String, V>>::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        <std::collections::BTreeMap<String, V>>::schema_id()
    }
    fn inline_schema() -> bool {
        <std::collections::BTreeMap<String, V>>::inline_schema()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <std::collections::BTreeMap<String, V>>::json_schema(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn behaves_as_a_btreemap() {
        let mut m: Map<i32> = Map::new();
        let mut b: BTreeMap<String, i32> = BTreeMap::new();
        for (k, v) in [("b", 1), ("a", 2), ("c", 3), ("a", 4), ("d", 5)] {
            assert_eq!(m.insert(k.into(), v), b.insert(k.into(), v));
        }
        *m.entry("e".into()).or_default() += 7;
        *b.entry("e".into()).or_default() += 7;
        *m.entry("a".into()).or_insert(0) += 1;
        *b.entry("a".into()).or_insert(0) += 1;
        assert_eq!(m.remove("c"), b.remove("c"));
        assert_eq!(m.remove("zz"), b.remove("zz"));
        assert_eq!(m.get("a"), b.get("a"));
        assert!(!m.contains_key("c"));
        let mv: Vec<_> = m.iter().collect();
        let bv: Vec<_> = b.iter().collect();
        assert_eq!(mv, bv);
        assert_eq!(format!("{m:?}"), format!("{b:?}"));
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
        m.retain(|k, _| k != "b");
        b.retain(|k, _| k != "b");
        assert_eq!(BTreeMap::from(m.clone()), b);
    }

    #[test]
    fn deserializes_any_order_and_the_last_duplicate_wins() {
        let m: Map<String> = serde_json::from_str(r#"{"z": "1", "a": "2", "z": "3"}"#).unwrap();
        let v: Vec<_> = m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(v, [("a", "2"), ("z", "3")]);
        let c: Map<i32> = [
            ("y".to_string(), 1),
            ("x".to_string(), 2),
            ("y".to_string(), 3),
        ]
        .into_iter()
        .collect();
        assert_eq!(c.get("y"), Some(&3));
        assert_eq!(c.len(), 2);
        assert!(serde_json::from_str::<Map<String>>(r#"["a"]"#).is_err());
    }
}
