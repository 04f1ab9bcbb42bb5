//! Karpenter's requirement algebra: a set of allowed values per label key, closed under
//! intersection, used for NodePool requirements, pod node selectors/affinity, instance types and
//! NodeClaims alike.
//!
//! A [`Requirement`] is either a finite set (`In`, `DoesNotExist` = empty) or the complement of
//! one (`NotIn`, `Exists` = complement of empty), optionally bounded by integer `Gt`/`Lt`
//! (`Gte`/`Lte` are bounds shifted by one). This is the representation of
//! `sigs.k8s.io/karpenter/pkg/scheduling.Requirement`, so intersection and compatibility give
//! the same answers as upstream.

//!
//! Sets are sorted vectors, not B-trees: the catalog holds ~14 requirements for each of its
//! ~1,400 instance types, almost all with one value, and a B-tree allocates a node of several
//! hundred bytes even for one entry (the catalog took 7.2 MB, ~3 MB now).

use std::borrow::{Borrow, Cow};
use std::sync::Arc;

use model::karpenter::{
    LABEL_ARCH, LABEL_CAPACITY_TYPE, LABEL_HOSTNAME, LABEL_INSTANCE_CATEGORY, LABEL_INSTANCE_CPU,
    LABEL_INSTANCE_FAMILY, LABEL_INSTANCE_GENERATION, LABEL_INSTANCE_MEMORY, LABEL_INSTANCE_SIZE,
    LABEL_INSTANCE_TYPE, LABEL_NODEPOOL, LABEL_OS, LABEL_REGION, LABEL_ZONE,
    RequirementWithMinValues,
};
use model::kube::{NodeSelectorRequirement, Operator};

/// A sorted set of label values. Shared, not copied: clones are a reference count, and the
/// catalog keeps one copy of each distinct set (see [`Requirements::intern`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ValueSet(Arc<[String]>);

impl Default for ValueSet {
    fn default() -> Self {
        ValueSet(Arc::from(Vec::new()))
    }
}

impl ValueSet {
    pub fn contains(&self, v: &str) -> bool {
        self.0.binary_search_by(|x| x.as_str().cmp(v)).is_ok()
    }
    pub fn iter(&self) -> std::slice::Iter<'_, String> {
        self.0.iter()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The same allocation (not only equal values).
    pub fn is_shared_with(&self, other: &ValueSet) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl FromIterator<String> for ValueSet {
    fn from_iter<I: IntoIterator<Item = String>>(it: I) -> Self {
        let mut v: Vec<String> = it.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        ValueSet(Arc::from(v))
    }
}

impl<'a> IntoIterator for &'a ValueSet {
    type Item = &'a String;
    type IntoIter = std::slice::Iter<'a, String>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Label keys kept as static strings instead of a copy per requirement.
const KNOWN_KEYS: &[&str] = &[
    LABEL_ARCH,
    LABEL_CAPACITY_TYPE,
    LABEL_HOSTNAME,
    LABEL_INSTANCE_CATEGORY,
    LABEL_INSTANCE_CPU,
    LABEL_INSTANCE_FAMILY,
    LABEL_INSTANCE_GENERATION,
    LABEL_INSTANCE_MEMORY,
    LABEL_INSTANCE_SIZE,
    LABEL_INSTANCE_TYPE,
    LABEL_NODEPOOL,
    LABEL_OS,
    LABEL_REGION,
    LABEL_ZONE,
    "karpenter.k8s.aws/instance-cpu-manufacturer",
    "karpenter.k8s.aws/instance-hypervisor",
    "karpenter.k8s.aws/instance-network-bandwidth",
    "karpenter.k8s.aws/instance-gpu-count",
    "karpenter.k8s.aws/instance-gpu-name",
    "karpenter.k8s.aws/instance-gpu-manufacturer",
    "karpenter.k8s.aws/instance-gpu-memory",
    "karpenter.k8s.aws/instance-local-nvme",
];

fn key_of(k: &str) -> Cow<'static, str> {
    match KNOWN_KEYS.iter().find(|x| **x == k) {
        Some(x) => Cow::Borrowed(x),
        None => Cow::Owned(k.to_string()),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    complement: bool,
    values: ValueSet,
    /// Exclusive lower bound.
    gt: Option<i64>,
    /// Exclusive upper bound.
    lt: Option<i64>,
    pub min_values: Option<usize>,
}

impl Requirement {
    pub fn new(op: Operator, values: &[String]) -> Requirement {
        let set = || values.iter().cloned().collect::<ValueSet>();
        let num = || values.first().and_then(|v| v.parse::<i64>().ok());
        let base = |complement, values| Requirement {
            complement,
            values,
            gt: None,
            lt: None,
            min_values: None,
        };
        match op {
            Operator::In => base(false, set()),
            Operator::NotIn => base(true, set()),
            Operator::Exists => base(true, ValueSet::default()),
            Operator::DoesNotExist => base(false, ValueSet::default()),
            // A malformed bound (rejected by validation upstream) admits nothing.
            Operator::Gt => Requirement {
                gt: Some(num().unwrap_or(i64::MAX)),
                ..base(true, ValueSet::default())
            },
            Operator::Gte => Requirement {
                gt: Some(num().map_or(i64::MAX, |v| v - 1)),
                ..base(true, ValueSet::default())
            },
            Operator::Lt => Requirement {
                lt: Some(num().unwrap_or(i64::MIN)),
                ..base(true, ValueSet::default())
            },
            Operator::Lte => Requirement {
                lt: Some(num().map_or(i64::MIN, |v| v + 1)),
                ..base(true, ValueSet::default())
            },
        }
    }

    pub fn in_values<I: IntoIterator<Item = S>, S: Into<String>>(values: I) -> Requirement {
        Requirement {
            complement: false,
            values: values.into_iter().map(Into::into).collect(),
            gt: None,
            lt: None,
            min_values: None,
        }
    }

    fn within_bounds(&self, v: &str) -> bool {
        if self.gt.is_none() && self.lt.is_none() {
            return true;
        }
        match v.parse::<i64>() {
            Ok(n) => self.gt.is_none_or(|g| n > g) && self.lt.is_none_or(|l| n < l),
            Err(_) => false,
        }
    }

    /// Is `v` an allowed value?
    pub fn has(&self, v: &str) -> bool {
        self.within_bounds(v) && (self.complement != self.values.contains(v))
    }

    pub fn intersection(&self, o: &Requirement) -> Requirement {
        let gt = match (self.gt, o.gt) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let lt = match (self.lt, o.lt) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let (complement, values) = match (self.complement, o.complement) {
            (true, true) => (
                true,
                self.values.iter().chain(o.values.iter()).cloned().collect(),
            ),
            (true, false) => (
                false,
                o.values
                    .iter()
                    .filter(|v| !self.values.contains(v))
                    .cloned()
                    .collect(),
            ),
            (false, true) => (
                false,
                self.values
                    .iter()
                    .filter(|v| !o.values.contains(v))
                    .cloned()
                    .collect(),
            ),
            (false, false) => (
                false,
                self.values
                    .iter()
                    .filter(|v| o.values.contains(v))
                    .cloned()
                    .collect(),
            ),
        };
        let mut r = Requirement {
            complement,
            values,
            gt,
            lt,
            min_values: self.min_values.max(o.min_values),
        };
        if !r.complement && (r.gt.is_some() || r.lt.is_some()) {
            let keep: ValueSet = r
                .values
                .iter()
                .filter(|v| r.within_bounds(v))
                .cloned()
                .collect();
            r.values = keep;
        }
        r
    }

    /// Could any value satisfy this requirement?
    pub fn has_any(&self) -> bool {
        if self.complement {
            match (self.gt, self.lt) {
                (Some(g), Some(l)) => g.saturating_add(1) < l,
                _ => true,
            }
        } else {
            !self.values.is_empty()
        }
    }

    pub fn operator(&self) -> Operator {
        if self.complement {
            if self.gt.is_some() {
                Operator::Gt
            } else if self.lt.is_some() {
                Operator::Lt
            } else if self.values.is_empty() {
                Operator::Exists
            } else {
                Operator::NotIn
            }
        } else if self.values.is_empty() {
            Operator::DoesNotExist
        } else {
            Operator::In
        }
    }

    /// The finite value set, when there is one.
    pub fn values(&self) -> Option<&ValueSet> {
        (!self.complement).then_some(&self.values)
    }

    /// The one value, when exactly one is allowed.
    pub fn single(&self) -> Option<&str> {
        match self.values() {
            Some(v) if v.len() == 1 => v.iter().next().map(String::as_str),
            _ => None,
        }
    }

    fn negative(&self) -> bool {
        matches!(self.operator(), Operator::NotIn | Operator::DoesNotExist)
    }

    pub fn to_node_selector(&self, key: &str) -> Vec<NodeSelectorRequirement> {
        let mut out = Vec::new();
        let vals: Vec<String> = self.values.iter().cloned().collect();
        if !self.complement {
            let op = if vals.is_empty() {
                Operator::DoesNotExist
            } else {
                Operator::In
            };
            out.push(NodeSelectorRequirement {
                key: key.into(),
                operator: op,
                values: vals,
            });
            return out;
        }
        if let Some(g) = self.gt {
            out.push(NodeSelectorRequirement {
                key: key.into(),
                operator: Operator::Gt,
                values: vec![g.to_string()],
            });
        }
        if let Some(l) = self.lt {
            out.push(NodeSelectorRequirement {
                key: key.into(),
                operator: Operator::Lt,
                values: vec![l.to_string()],
            });
        }
        if !vals.is_empty() || out.is_empty() {
            let op = if vals.is_empty() {
                Operator::Exists
            } else {
                Operator::NotIn
            };
            out.push(NodeSelectorRequirement {
                key: key.into(),
                operator: op,
                values: vals,
            });
        }
        out
    }
}

/// Requirements on many keys (ANDed), sorted by key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Requirements(Vec<(Cow<'static, str>, Requirement)>);

impl Requirements {
    pub fn new() -> Self {
        Requirements::default()
    }
    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_ref().cmp(key))
    }
    pub fn get(&self, key: &str) -> Option<&Requirement> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.borrow())
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Requirement)> {
        self.0.iter().map(|(k, r)| (k.borrow(), r))
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Add (intersect) one requirement.
    pub fn add(&mut self, key: &str, r: Requirement) {
        match self.find(key) {
            Ok(i) => self.0[i].1 = self.0[i].1.intersection(&r),
            Err(i) => self.0.insert(i, (key_of(key), r)),
        }
    }
    pub fn add_all(&mut self, o: &Requirements) {
        for (k, r) in &o.0 {
            self.add(k, r.clone());
        }
    }
    /// Release spare capacity (for requirements kept for long, as the catalog's).
    pub fn shrink_to_fit(&mut self) {
        self.0.shrink_to_fit();
    }
    /// Replace each value set by the equal one in `pool` (adding it when new): requirements
    /// kept for long (the catalog's ~1,400 types share their zones, capacity types, arch, os,
    /// sizes …) then hold one copy of each distinct set.
    pub fn intern(&mut self, pool: &mut std::collections::HashSet<ValueSet>) {
        for (_, r) in &mut self.0 {
            match pool.get(&r.values) {
                Some(shared) => r.values = shared.clone(),
                None => {
                    pool.insert(r.values.clone());
                }
            }
        }
    }
    pub fn from_node_selector(reqs: &[NodeSelectorRequirement]) -> Self {
        let mut r = Requirements::new();
        for q in reqs {
            r.add(&q.key, Requirement::new(q.operator, &q.values));
        }
        r
    }
    pub fn from_nodepool(reqs: &[RequirementWithMinValues]) -> Self {
        let mut r = Requirements::new();
        for q in reqs {
            let mut req = Requirement::new(q.operator, &q.values);
            req.min_values = q.min_values.and_then(|m| usize::try_from(m).ok());
            r.add(&q.key, req);
        }
        r
    }
    /// Labels as single-value `In` requirements.
    pub fn from_labels<'a>(labels: impl IntoIterator<Item = (&'a String, &'a String)>) -> Self {
        let mut r = Requirements::new();
        for (k, v) in labels {
            r.add(k, Requirement::in_values([v.clone()]));
        }
        r
    }

    /// Karpenter's `Intersects`: on every shared key some value must survive, except that two
    /// negative requirements (NotIn/DoesNotExist) never conflict.
    pub fn intersects(&self, o: &Requirements) -> Result<(), String> {
        match self.conflict(o) {
            Some((k, a, b)) => Err(format!("{k}: {} vs {}", describe(a), describe(b))),
            None => Ok(()),
        }
    }

    /// The first key on which the two sets have no value in common (as
    /// [`Requirements::intersects`], without building the explanation).
    pub fn conflict<'a>(
        &'a self,
        o: &'a Requirements,
    ) -> Option<(&'a str, &'a Requirement, &'a Requirement)> {
        let (small, big) = if self.0.len() <= o.0.len() {
            (self, o)
        } else {
            (o, self)
        };
        for (k, a) in &small.0 {
            if let Some(b) = big.get(k)
                && !a.intersection(b).has_any()
                && !(a.negative() && b.negative())
            {
                return Some((k, a, b));
            }
        }
        None
    }

    /// Karpenter's `Compatible`: `self` (a node or NodeClaim) can satisfy `pod`. Keys the node
    /// does not define satisfy only negative pod requirements.
    pub fn compatible(&self, pod: &Requirements) -> Result<(), String> {
        for (k, p) in &pod.0 {
            match self.get(k) {
                Some(n) => {
                    if !(n.intersection(p).has_any() || p.negative() && n.negative()) {
                        return Err(format!(
                            "{k}: needs {} but the node offers {}",
                            describe(p),
                            describe(n)
                        ));
                    }
                }
                None if p.negative() => {}
                None => {
                    return Err(format!(
                        "{k}: needs {} but the node does not have that label",
                        describe(p)
                    ));
                }
            }
        }
        Ok(())
    }

    /// Does a node with these exact labels satisfy every requirement?
    pub fn matches_labels(&self, labels: &model::kube::Labels) -> bool {
        self.0.iter().all(|(k, r)| match labels.get(k.as_ref()) {
            Some(v) => r.has(v),
            None => r.negative(),
        })
    }

    pub fn to_node_selector(&self) -> Vec<NodeSelectorRequirement> {
        self.0
            .iter()
            .flat_map(|(k, r)| r.to_node_selector(k))
            .collect()
    }
}

fn describe(r: &Requirement) -> String {
    let vals: Vec<&str> = r.values.iter().map(String::as_str).collect();
    let mut s = format!("{:?}", r.operator());
    if !vals.is_empty() {
        s.push_str(&format!(" [{}]", vals.join(",")));
    }
    if let Some(g) = r.gt {
        s.push_str(&format!(" >{g}"));
    }
    if let Some(l) = r.lt {
        s.push_str(&format!(" <{l}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(op: Operator, v: &[&str]) -> Requirement {
        Requirement::new(op, &v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }
    fn reqs(k: &str, op: Operator, v: &[&str]) -> Requirements {
        let mut r = Requirements::new();
        r.add(k, req(op, v));
        r
    }

    #[test]
    fn intersections() {
        let a = req(Operator::In, &["a", "b", "c"]);
        assert_eq!(
            a.intersection(&req(Operator::NotIn, &["a"]))
                .values()
                .unwrap()
                .len(),
            2
        );
        assert!(!a.intersection(&req(Operator::In, &["d"])).has_any());
        assert!(a.intersection(&req(Operator::Exists, &[])).has_any());
        let n = req(Operator::In, &["2", "4", "8"]).intersection(&req(Operator::Gt, &["3"]));
        assert_eq!(
            n.values().unwrap().iter().cloned().collect::<Vec<_>>(),
            vec!["4", "8"]
        );
        let ge = req(Operator::In, &["2", "4"]).intersection(&req(Operator::Gte, &["4"]));
        assert_eq!(ge.single(), Some("4"));
        assert!(
            !req(Operator::Gt, &["5"])
                .intersection(&req(Operator::Lt, &["6"]))
                .has_any()
        );
        assert!(
            req(Operator::Gt, &["5"])
                .intersection(&req(Operator::Lt, &["7"]))
                .has_any()
        );
    }

    #[test]
    fn compatibility_like_karpenter() {
        let node = reqs("zone", Operator::In, &["a", "b"]);
        assert!(node.compatible(&reqs("zone", Operator::In, &["b"])).is_ok());
        assert!(
            node.compatible(&reqs("zone", Operator::In, &["c"]))
                .is_err()
        );
        assert!(
            node.compatible(&reqs("team", Operator::In, &["x"]))
                .is_err(),
            "undefined key"
        );
        assert!(
            node.compatible(&reqs("team", Operator::NotIn, &["x"]))
                .is_ok()
        );
        assert!(
            node.compatible(&reqs("team", Operator::DoesNotExist, &[]))
                .is_ok()
        );
        let dne = reqs("gpu", Operator::DoesNotExist, &[]);
        assert!(
            dne.compatible(&reqs("gpu", Operator::NotIn, &["x"]))
                .is_ok()
        );
        assert!(dne.compatible(&reqs("gpu", Operator::Exists, &[])).is_err());
    }
}
