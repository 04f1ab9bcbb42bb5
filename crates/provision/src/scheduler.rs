//! The scheduling simulation: where would these pods run — on existing nodes, on in-flight
//! NodeClaims, or on new NodeClaims from the NodePools? Provisioning asks it for pending pods;
//! consolidation asks it for the pods of candidate nodes on a copy of the cluster ([`State`]).
//!
//! # How it stays fast
//! - Pods are compiled once into *signatures* (everything but the resource request): pods of
//!   one Deployment share one signature, so requirement, taint and instance-type compatibility
//!   are computed per signature and NodePool, not per pod.
//! - A NodeClaim under construction keeps its candidate instance types as a bitset
//!   ([`TypeSet`]) plus the per-dimension maximum allocatable of those types: most rejections
//!   are three integer compares; the bitset is rescanned only when a pod is actually added.
//! - Topology (spread, affinity, anti-affinity) keeps counters per (selector, topology key,
//!   domain), updated on each placement, so no check ever rescans pods.
//! - The cluster copy consolidation needs is a few flat vectors ([`State`] is cheap to clone);
//!   node labels, taints and per-signature compatibility live in the immutable [`Scheduler`].
//!
//! # Semantics (Karpenter's)
//! Pods are tried largest first (priority, then CPU, then memory). Each pod goes to the first
//! existing node that fits and allows it, else to the first NodeClaim being built, else to a new
//! NodeClaim from the heaviest NodePool that can take it. Preferences (preferred node/pod
//! affinity, `ScheduleAnyway` spread) are first treated as required and relaxed if the pod
//! cannot be placed; alternative required node-affinity terms are tried in order. Hostname
//! spread counts a new node as a domain with zero pods (so the minimum is 0), as Karpenter does.
//! Pods on a NodeClaim whose zone is still open are counted for zonal topology once the zone is
//! fixed; a zonal constraint fixes the zone of the NodeClaim it lands on.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use model::karpenter::{
    LABEL_CAPACITY_TYPE, LABEL_HOSTNAME, LABEL_NODEPOOL, LABEL_ZONE, NodePool, is_well_known_label,
};
use model::kube::{
    Affinity, DaemonSet, LabelSelector, Labels, Node, NodeSelectorTerm, Pod, Taint, Toleration,
    TopologySpreadConstraint, WhenUnsatisfiable, tolerates_all,
};

use crate::catalog::{CAPACITY_TYPES, Catalog, CatalogIndex, offer_bit};
use crate::requirements::{Requirement, Requirements};
use crate::resources::{GIB, Res};
use crate::typeset::TypeSet;

pub type PodId = u32;

/// How far above the pool's best $/resource a NodeClaim may drift while it grows (see
/// `try_new_bin`): 1.25 = 25 % more than the fractional lower bound's unit price.
const EFFICIENCY_SLACK: f64 = 1.25;
/// ... and a single pod may not make the claim's $/resource jump by more than this factor
/// (the jump from a 192-vCPU general-purpose type to a 12 TB memory type is ~10×; the steps
/// between ordinary sizes and families are well below 2×, and blocking them would shatter
/// the plan into many small nodes).
const EFFICIENCY_JUMP: f64 = 2.0;

/// Instance types a NodeClaim carries (Karpenter's `MaxInstanceTypes`): enough fallbacks for
/// insufficient-capacity errors, without shipping hundreds of names per claim.
pub const MAX_INSTANCE_TYPES: usize = 60;
type SigId = u32;
type GroupId = u32;
type KeyId = u32;
type DomainId = u32;

/// A node that exists (or a NodeClaim already launched and not yet registered: `in_flight`).
#[derive(Debug, Clone, PartialEq)]
pub struct ExistingNode {
    pub name: String,
    /// Labels, including `topology.kubernetes.io/zone`, `karpenter.sh/nodepool`, ...
    pub labels: Labels,
    pub taints: Vec<Taint>,
    pub capacity: Res,
    pub allocatable: Res,
    /// Pods bound to the node that would have to move if it went away (not DaemonSet pods).
    pub pods: Vec<Pod>,
    /// Requests of the DaemonSet pods on the node: they use capacity but never move.
    pub daemon_overhead: Res,
    /// Cordoned: nothing new lands here.
    pub unschedulable: bool,
    /// A launched NodeClaim that has not registered yet: tried after real nodes.
    pub in_flight: bool,
    /// USD/hour, for consolidation (0 when unknown).
    pub price: f64,
    /// When the node (claim) was created, ms since the epoch (expiry).
    pub created_ms: u64,
    /// `karpenter.sh/nodepool-hash` the node was launched with (drift).
    pub nodepool_hash: Option<String>,
    /// Node annotations (`karpenter.sh/do-not-disrupt`).
    pub annotations: Labels,
    /// Last time a pod was added to or removed from the node (consolidateAfter), ms.
    pub last_pod_event_ms: u64,
}

impl ExistingNode {
    /// From a Kubernetes Node and the pods bound to it.
    pub fn from_node(node: &Node, pods: Vec<Pod>) -> ExistingNode {
        let (capacity, _) = Res::from_list(&node.status.capacity);
        let (allocatable, _) = Res::from_list(&node.status.allocatable);
        let mut labels = node.metadata.labels.clone();
        labels
            .entry(LABEL_HOSTNAME.into())
            .or_insert_with(|| node.metadata.name.clone());
        ExistingNode {
            name: node.metadata.name.clone(),
            labels,
            taints: node.spec.taints.clone(),
            capacity,
            allocatable,
            pods,
            daemon_overhead: Res::ZERO,
            unschedulable: node.spec.unschedulable,
            in_flight: false,
            price: 0.0,
            created_ms: 0,
            nodepool_hash: node
                .metadata
                .annotations
                .get(model::karpenter::ANNOTATION_NODEPOOL_HASH)
                .cloned(),
            annotations: node.metadata.annotations.clone(),
            last_pod_event_ms: 0,
        }
    }

    pub fn do_not_disrupt(&self) -> bool {
        self.annotations
            .get(model::kube::DO_NOT_DISRUPT)
            .is_some_and(|v| v == "true")
    }

    pub fn nodepool(&self) -> Option<&str> {
        self.labels.get(LABEL_NODEPOOL).map(String::as_str)
    }

    pub fn used(&self) -> Res {
        used_by(&self.pods)
    }
}

/// The summed requests of `pods`.
fn used_by(pods: &[Pod]) -> Res {
    pods.iter().fold(Res::ZERO, |acc, p| {
        acc.plus(&Res::from_list(&p.requests()).0)
    })
}

/// The last pod [`Scheduler::add_pod`] derived from its spec: the next pod with the same
/// namespace, labels and spec (a ReplicaSet's pods differ only in name) reuses it.
#[derive(Debug, Clone)]
struct PodMemo {
    ns: String,
    labels: model::map::Map<String>,
    spec: model::kube::PodSpec,
    requests: Res,
    other_resources: Vec<String>,
    variants: Vec<SigId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum TopoKey {
    Host,
    Label(KeyId),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    key: TopoKey,
    namespaces: BTreeSet<String>,
    selector: Option<LabelSelector>,
}

#[derive(Debug, Clone)]
struct Spread {
    g: GroupId,
    key: TopoKey,
    max_skew: i32,
    min_domains: i32,
    self_match: bool,
    /// Domains the pod's node affinity allows (label keys only): the skew is computed over
    /// these, as kube-scheduler does.
    eligible: Vec<DomainId>,
}

/// Everything about a pod except its size, for one relaxation step.
#[derive(Debug, Clone)]
struct Sig {
    reqs: Requirements,
    offer_mask: u64,
    spreads: Vec<Spread>,
    affinities: Vec<(GroupId, TopoKey, bool)>,
    antis: Vec<(GroupId, TopoKey)>,
    /// Groups whose selector this pod's labels match (counted on placement).
    matches: Vec<GroupId>,
    /// Groups with anti-affinity owners that this pod matches (symmetric anti-affinity).
    anti_targets: Vec<(GroupId, TopoKey)>,
    /// Label keys this signature constrains (the NodeClaim's domain gets fixed on them).
    topo_keys: Vec<KeyId>,
    /// Per pool: candidate types, or why the pool cannot take this pod.
    pool_types: Vec<Result<TypeSet, String>>,
    /// Per existing node: allowed by requirements and taints (a bit per node).
    node_ok: TypeSet,
    relaxed: bool,
}

#[derive(Debug, Clone)]
struct PodInfo {
    name: String,
    requests: Res,
    other_resources: Vec<String>,
    variants: Vec<SigId>,
    priority: i32,
}

/// A NodePool compiled against the catalog.
#[derive(Debug, Clone)]
pub struct PoolInfo {
    pub pool: NodePool,
    pub reqs: Requirements,
    pub taints: Vec<Taint>,
    /// DaemonSet requests every new node of this pool carries.
    pub daemon: Res,
    pub types: TypeSet,
    offer_mask: u64,
    min_values: Vec<(String, usize)>,
    /// Remaining capacity under `spec.limits` (after existing nodes), and remaining node count.
    pub remaining: Res,
    pub remaining_nodes: i64,
    pub index: usize,
    /// Cheapest $/hour per allocatable vCPU and per GiB among the pool's types: the unit
    /// prices of the lower bound, used to judge a NodeClaim's cost efficiency.
    rate_cpu: f64,
    rate_mem: f64,
}

/// A NodeClaim being built by the simulation.
#[derive(Debug, Clone)]
pub struct NewBin {
    pub pool: usize,
    pub requests: Res,
    pub types: TypeSet,
    max_alloc: Res,
    pub max_cap: Res,
    /// Capacity reserved against the NodePool's limits: that of the cheapest candidate type
    /// (what launch picks). The plan trims pricier fallbacks so limits hold for any option.
    pub reserved_cap: Res,
    pub reqs: Requirements,
    offer_mask: u64,
    pins: Vec<Option<DomainId>>,
    pending: Vec<(GroupId, i32)>,
    pub pods: Vec<PodId>,
    /// Pods committed so far, and the cheapest price of the current candidate types.
    npods: usize,
    cost: f64,
}

/// The mutable part of a simulation: usage of existing nodes, NodeClaims being built, topology
/// counters and limit reservations. Clone it to simulate on a copy.
#[derive(Debug, Clone)]
pub struct State {
    used: Vec<Res>,
    disabled: Vec<bool>,
    pub new: Vec<NewBin>,
    counts: Vec<Vec<i32>>,
    owners: Vec<Vec<i32>>,
    totals: Vec<i32>,
    reserved: Vec<(Res, i64)>,
}

/// Where a pod went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Existing(usize),
    New(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SolveOptions {
    /// Maximum NodeClaims the simulation may create (`None`: unlimited). Consolidation uses
    /// 0 (delete) and 1 (replace).
    pub max_new: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct Solution {
    pub placements: Vec<(PodId, Target)>,
    pub failures: Vec<(PodId, String)>,
    /// Pods that only fitted after relaxing a preference.
    pub relaxed: Vec<PodId>,
}

/// The immutable half of the simulation.
#[derive(Debug, Clone)]
pub struct Scheduler<'c> {
    pub catalog: &'c Catalog,
    /// The catalog's offerings and label keys, computed once per catalog.
    idx: Arc<CatalogIndex>,
    /// Per offering mask seen so far: each type's cheapest price under it (INFINITY: none).
    /// Few distinct masks occur (pool × zone/capacity-type pins), so this is filled once per
    /// mask instead of scanning offerings on every placement.
    price_cache: std::cell::RefCell<HashMap<u64, std::rc::Rc<Vec<f64>>>>,
    pub pools: Vec<PoolInfo>,
    /// The existing nodes (borrowed from [`Scheduler::from_nodes`]' caller, or owned without
    /// their pods): their pods are registered as `pods`, their requests summed in
    /// `node_used`; read a node's pods through `node_pods`, not here.
    pub nodes: Cow<'c, [ExistingNode]>,
    node_used: Vec<Res>,
    node_order: Vec<usize>,
    /// Node index → pod ids of its pods.
    pub node_pods: Vec<Vec<PodId>>,
    node_domains: Vec<Vec<Option<DomainId>>>,
    keys: Vec<String>,
    key_ids: HashMap<String, KeyId>,
    domains: Vec<Vec<String>>,
    domain_ids: Vec<HashMap<String, DomainId>>,
    groups: Vec<GroupKey>,
    group_ids: HashMap<GroupKey, GroupId>,
    anti_groups: BTreeSet<GroupId>,
    sigs: Vec<Sig>,
    sig_ids: HashMap<SigKey, SigId>,
    pods: Vec<PodInfo>,
    memo: Option<PodMemo>,
    finalized: bool,
}

/// What makes pods alike for scheduling. One per distinct signature, and bound pods are
/// registered too (often one signature each, as labels differ), so it stays small: the
/// tolerations are kept here only (not again in the [`Sig`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SigKey {
    ns: String,
    labels: Labels,
    node_selector: Labels,
    affinity: Option<Affinity>,
    tolerations: Vec<Toleration>,
    tsc: Vec<TopologySpreadConstraint>,
    variant: u8,
}

impl<'c> Scheduler<'c> {
    /// Compile NodePools against the catalog and register existing nodes with their pods.
    pub fn new(
        catalog: &'c Catalog,
        nodepools: &[NodePool],
        daemonsets: &[DaemonSet],
        mut nodes: Vec<ExistingNode>,
    ) -> Scheduler<'c> {
        let pods: Vec<Vec<Pod>> = nodes
            .iter_mut()
            .map(|n| std::mem::take(&mut n.pods))
            .collect();
        Self::build(catalog, nodepools, daemonsets, Cow::Owned(nodes), |n| {
            &pods[n]
        })
    }

    /// As [`Scheduler::new`], on borrowed nodes: nothing of them is copied.
    pub fn from_nodes(
        catalog: &'c Catalog,
        nodepools: &[NodePool],
        daemonsets: &[DaemonSet],
        nodes: &'c [ExistingNode],
    ) -> Scheduler<'c> {
        Self::build(catalog, nodepools, daemonsets, Cow::Borrowed(nodes), |n| {
            &nodes[n].pods
        })
    }

    fn build<'p>(
        catalog: &'c Catalog,
        nodepools: &[NodePool],
        daemonsets: &[DaemonSet],
        nodes: Cow<'c, [ExistingNode]>,
        pods_of: impl Fn(usize) -> &'p [Pod],
    ) -> Scheduler<'c> {
        let idx = catalog.index();
        let mut s = Scheduler {
            catalog,
            idx,
            price_cache: Default::default(),
            pools: Vec::new(),
            node_order: Vec::new(),
            node_pods: vec![Vec::new(); nodes.len()],
            node_domains: Vec::new(),
            node_used: vec![Res::ZERO; nodes.len()],
            nodes,
            keys: Vec::new(),
            key_ids: HashMap::new(),
            domains: Vec::new(),
            domain_ids: Vec::new(),
            groups: Vec::new(),
            group_ids: HashMap::new(),
            anti_groups: BTreeSet::new(),
            sigs: Vec::new(),
            sig_ids: HashMap::new(),
            pods: Vec::new(),
            memo: None,
            finalized: false,
        };
        let mut pools: Vec<&NodePool> = nodepools.iter().collect();
        pools.sort_by(|a, b| b.weight().cmp(&a.weight()).then(a.name().cmp(b.name())));
        for (i, p) in pools.into_iter().enumerate() {
            let info = s.compile_pool(p, daemonsets, i);
            s.pools.push(info);
        }
        let mut order: Vec<usize> = (0..s.nodes.len()).collect();
        order.sort_by_key(|&i| s.nodes[i].in_flight);
        s.node_order = order;
        for n in 0..s.nodes.len() {
            for p in pods_of(n) {
                let id = s.add_pod(p);
                s.node_pods[n].push(id);
                s.node_used[n] = s.node_used[n].plus(&s.pods[id as usize].requests);
            }
        }
        s
    }

    fn offer_mask_for(&self, reqs: &Requirements) -> u64 {
        let mut m = 0u64;
        for (z, &zi) in &self.idx.zone_index {
            if reqs.get(LABEL_ZONE).is_some_and(|r| !r.has(z)) {
                continue;
            }
            for c in CAPACITY_TYPES {
                if reqs.get(LABEL_CAPACITY_TYPE).is_some_and(|r| !r.has(c)) {
                    continue;
                }
                if let Some(bit) = offer_bit(zi, c) {
                    m |= 1 << bit;
                }
            }
        }
        m
    }

    fn compile_pool(&self, p: &NodePool, daemonsets: &[DaemonSet], index: usize) -> PoolInfo {
        let t = &p.spec.template;
        let mut reqs = Requirements::from_nodepool(&t.spec.requirements);
        for (k, v) in &t.metadata.labels {
            reqs.add(k, Requirement::in_values([v.clone()]));
        }
        reqs.add(
            LABEL_NODEPOOL,
            Requirement::in_values([p.name().to_string()]),
        );
        let taints = t.spec.taints.clone();
        let mut daemon = Res::ZERO;
        for ds in daemonsets {
            let pod = ds.pod();
            if !tolerates_all(&pod.spec.tolerations, &taints) {
                continue;
            }
            let dreqs = pod_node_reqs(&pod, pod.required_node_terms().first());
            if self.compatible_undefined_ok(&reqs, &dreqs).is_err() {
                continue;
            }
            daemon = daemon.plus(&Res::from_list(&pod.requests()).0);
        }
        let offer_mask = self.offer_mask_for(&reqs);
        let mut types = TypeSet::empty(self.catalog.types.len());
        // A pool naming its instance types rules out the others by name, without comparing
        // every requirement (the catalog has hundreds of types; this runs on every pass).
        let named = reqs.get(model::karpenter::LABEL_INSTANCE_TYPE);
        for (i, it) in self.catalog.types.iter().enumerate() {
            if named.is_some_and(|r| !r.has(&it.name)) {
                continue;
            }
            if self.idx.type_masks[i] & offer_mask != 0
                && it.requirements.conflict(&reqs).is_none()
                && daemon.fits_in(&it.allocatable)
            {
                types.insert(i);
            }
        }
        let min_values = t
            .spec
            .requirements
            .iter()
            .filter_map(|r| r.min_values.map(|m| (r.key.clone(), m.max(0) as usize)))
            .collect();
        let mut remaining = Res::new(i64::MAX, i64::MAX, i64::MAX);
        let mut remaining_nodes = i64::MAX;
        if let Some(l) = &p.spec.limits {
            let (lim, _) = Res::from_list(l);
            if l.contains_key("cpu") {
                remaining.cpu = lim.cpu;
            }
            if l.contains_key("memory") {
                remaining.mem = lim.mem;
            }
            if l.contains_key("pods") {
                remaining.pods = lim.pods;
            }
            if let Some(n) = l.get("nodes") {
                remaining_nodes = n.units_ceil();
            }
            for n in self.nodes.iter().filter(|n| n.nodepool() == Some(p.name())) {
                remaining = remaining.minus(&n.capacity);
                remaining_nodes -= 1;
            }
        }
        let (mut rate_cpu, mut rate_mem) = (f64::INFINITY, f64::INFINITY);
        for t in types.iter() {
            let it = &self.catalog.types[t];
            if let Some(price) = self.type_price(t, offer_mask) {
                rate_cpu = rate_cpu.min(price / (it.allocatable.cpu.max(1) as f64 / 1000.0));
                rate_mem = rate_mem.min(price / (it.allocatable.mem.max(1) as f64 / GIB as f64));
            }
        }
        PoolInfo {
            pool: p.clone(),
            reqs,
            taints,
            daemon,
            types,
            offer_mask,
            min_values,
            remaining,
            remaining_nodes,
            index,
            rate_cpu: if rate_cpu.is_finite() { rate_cpu } else { 0.0 },
            rate_mem: if rate_mem.is_finite() { rate_mem } else { 0.0 },
        }
    }

    fn prices(&self, mask: u64) -> std::rc::Rc<Vec<f64>> {
        if let Some(v) = self.price_cache.borrow().get(&mask) {
            return v.clone();
        }
        let v: std::rc::Rc<Vec<f64>> = std::rc::Rc::new(
            (0..self.catalog.types.len())
                .map(|t| self.type_price(t, mask).unwrap_or(f64::INFINITY))
                .collect(),
        );
        self.price_cache.borrow_mut().insert(mask, v.clone());
        v
    }

    /// Cheapest available offering price of type `t` among the offering bits in `mask`.
    fn type_price(&self, t: usize, mask: u64) -> Option<f64> {
        self.idx.type_offers[t]
            .iter()
            .filter(|(bit, _)| bit & mask != 0)
            .map(|(_, p)| *p)
            .min_by(f64::total_cmp)
    }

    /// What the requests would cost at the pool's best unit prices (the lower bound's view).
    fn value(&self, pool: &PoolInfo, r: &Res) -> f64 {
        (r.cpu as f64 / 1000.0 * pool.rate_cpu).max(r.mem as f64 / GIB as f64 * pool.rate_mem)
    }

    /// `Compatible` with undefined well-known (catalog-defined) keys allowed: the instance
    /// types define them.
    fn compatible_undefined_ok(
        &self,
        node: &Requirements,
        pod: &Requirements,
    ) -> Result<(), String> {
        let mut filtered = Requirements::new();
        for (k, r) in pod.iter() {
            if node.get(k).is_none() && (self.idx.type_keys.contains(k) || is_well_known_label(k)) {
                continue;
            }
            filtered.add(k, r.clone());
        }
        node.compatible(&filtered)
    }

    fn key_id(&mut self, key: &str) -> TopoKey {
        if key == LABEL_HOSTNAME {
            return TopoKey::Host;
        }
        if let Some(&k) = self.key_ids.get(key) {
            return TopoKey::Label(k);
        }
        let k = self.keys.len() as KeyId;
        self.keys.push(key.to_string());
        self.key_ids.insert(key.to_string(), k);
        TopoKey::Label(k)
    }

    fn group(
        &mut self,
        key: &str,
        namespaces: BTreeSet<String>,
        selector: Option<LabelSelector>,
    ) -> (GroupId, TopoKey) {
        let key = self.key_id(key);
        let gk = GroupKey {
            key,
            namespaces,
            selector,
        };
        if let Some(&g) = self.group_ids.get(&gk) {
            return (g, key);
        }
        let g = self.groups.len() as GroupId;
        self.groups.push(gk.clone());
        self.group_ids.insert(gk, g);
        (g, key)
    }

    /// Register a pod (pending or bound) and compile its signatures. Must be called before
    /// [`Scheduler::initial_state`].
    pub fn add_pod(&mut self, pod: &Pod) -> PodId {
        assert!(
            !self.finalized,
            "add_pod after initial_state: register every pod first"
        );
        // Every bound pod is registered on every pass: no formatting machinery for its key.
        let (ns, pod_name) = (pod.metadata.ns(), &pod.metadata.name);
        let mut name = String::with_capacity(ns.len() + 1 + pod_name.len());
        name.push_str(ns);
        name.push('/');
        name.push_str(pod_name);
        let priority = pod.priority();
        if let Some(m) = &self.memo
            && m.spec == pod.spec
            && m.labels == pod.metadata.labels
            && m.ns == pod.metadata.ns()
        {
            let id = self.pods.len() as PodId;
            self.pods.push(PodInfo {
                name,
                requests: m.requests,
                other_resources: m.other_resources.clone(),
                variants: m.variants.clone(),
                priority,
            });
            return id;
        }
        let (requests, other) = Res::from_list(&pod.requests());
        let nterms = pod.required_node_terms().len().max(1);
        let has_prefs = pod.spec.affinity.as_ref().is_some_and(|a| {
            a.node_affinity.as_ref().is_some_and(|n| {
                !n.preferred_during_scheduling_ignored_during_execution
                    .is_empty()
            }) || a.pod_affinity.as_ref().is_some_and(|n| {
                !n.preferred_during_scheduling_ignored_during_execution
                    .is_empty()
            }) || a.pod_anti_affinity.as_ref().is_some_and(|n| {
                !n.preferred_during_scheduling_ignored_during_execution
                    .is_empty()
            })
        }) || pod
            .spec
            .topology_spread_constraints
            .iter()
            .any(|t| t.when_unsatisfiable == WhenUnsatisfiable::ScheduleAnyway);
        let mut variants = Vec::new();
        for term in 0..nterms {
            if has_prefs {
                variants.push(self.sig_for(pod, term, true));
            }
            variants.push(self.sig_for(pod, term, false));
        }
        let id = self.pods.len() as PodId;
        self.memo = Some(PodMemo {
            ns: pod.metadata.ns().to_string(),
            labels: pod.metadata.labels.clone(),
            spec: pod.spec.clone(),
            requests,
            other_resources: other.clone(),
            variants: variants.clone(),
        });
        self.pods.push(PodInfo {
            name,
            requests,
            other_resources: other,
            variants,
            priority,
        });
        id
    }

    pub fn pod_name(&self, id: PodId) -> &str {
        &self.pods[id as usize].name
    }
    pub fn pod_requests(&self, id: PodId) -> Res {
        self.pods[id as usize].requests
    }

    fn sig_for(&mut self, pod: &Pod, term: usize, strict: bool) -> SigId {
        let key = SigKey {
            ns: pod.metadata.ns().to_string(),
            labels: pod.metadata.labels.clone(),
            node_selector: pod.spec.node_selector.clone(),
            affinity: pod.spec.affinity.clone(),
            tolerations: pod.spec.tolerations.clone(),
            tsc: pod.spec.topology_spread_constraints.clone(),
            variant: (term * 2 + usize::from(strict)).min(255) as u8,
        };
        if let Some(&s) = self.sig_ids.get(&key) {
            return s;
        }
        let ns = key.ns.clone();
        let own_ns: BTreeSet<String> = [ns.clone()].into();
        let mut reqs = pod_node_reqs(pod, pod.required_node_terms().get(term));
        let aff = pod.spec.affinity.clone().unwrap_or_default();
        if strict && let Some(na) = &aff.node_affinity {
            for p in &na.preferred_during_scheduling_ignored_during_execution {
                reqs.add_all(&Requirements::from_node_selector(
                    &p.preference.match_expressions,
                ));
            }
        }
        let mut spreads = Vec::new();
        for c in &pod.spec.topology_spread_constraints {
            if c.when_unsatisfiable == WhenUnsatisfiable::ScheduleAnyway && !strict {
                continue;
            }
            let (g, k) = self.group(&c.topology_key, own_ns.clone(), c.label_selector.clone());
            let self_match = c
                .label_selector
                .as_ref()
                .is_some_and(|s| s.matches(&pod.metadata.labels));
            spreads.push(Spread {
                g,
                key: k,
                max_skew: c.max_skew.max(1),
                min_domains: c.min_domains.unwrap_or(1),
                self_match,
                eligible: Vec::new(),
            });
        }
        let term_ns = |t: &model::kube::PodAffinityTerm| -> BTreeSet<String> {
            if t.namespaces.is_empty() {
                own_ns.clone()
            } else {
                t.namespaces.iter().cloned().collect()
            }
        };
        let mut affinities = Vec::new();
        let mut antis = Vec::new();
        if let Some(pa) = &aff.pod_affinity {
            let mut terms: Vec<_> = pa
                .required_during_scheduling_ignored_during_execution
                .clone();
            if strict {
                terms.extend(
                    pa.preferred_during_scheduling_ignored_during_execution
                        .iter()
                        .map(|w| w.pod_affinity_term.clone()),
                );
            }
            for t in terms {
                let self_match = t
                    .label_selector
                    .as_ref()
                    .is_some_and(|s| s.matches(&pod.metadata.labels))
                    && term_ns(&t).contains(&ns);
                let (g, k) = self.group(&t.topology_key, term_ns(&t), t.label_selector.clone());
                affinities.push((g, k, self_match));
            }
        }
        if let Some(pa) = &aff.pod_anti_affinity {
            let mut terms: Vec<_> = pa
                .required_during_scheduling_ignored_during_execution
                .clone();
            if strict {
                terms.extend(
                    pa.preferred_during_scheduling_ignored_during_execution
                        .iter()
                        .map(|w| w.pod_affinity_term.clone()),
                );
            }
            for t in terms {
                let (g, k) = self.group(&t.topology_key, term_ns(&t), t.label_selector.clone());
                self.anti_groups.insert(g);
                antis.push((g, k));
            }
        }
        let mut topo_keys: Vec<KeyId> = spreads
            .iter()
            .map(|s| s.key)
            .chain(affinities.iter().map(|a| a.1))
            .chain(antis.iter().map(|a| a.1))
            .filter_map(|k| match k {
                TopoKey::Label(k) => Some(k),
                TopoKey::Host => None,
            })
            .collect();
        topo_keys.sort_unstable();
        topo_keys.dedup();
        let offer_mask = self.offer_mask_for(&reqs);
        let sig = Sig {
            reqs,
            offer_mask,
            spreads,
            affinities,
            antis,
            matches: Vec::new(),
            anti_targets: Vec::new(),
            topo_keys,
            pool_types: Vec::new(),
            node_ok: TypeSet::default(),
            relaxed: !strict && self_has_prefs(pod),
        };
        let id = self.sigs.len() as SigId;
        self.sigs.push(sig);
        self.sig_ids.insert(key, id);
        id
    }

    /// Finish compilation (domains, per-signature compatibility) and build the initial state
    /// with every existing node's pods counted.
    pub fn initial_state(&mut self) -> State {
        self.finalize();
        let mut st = State {
            used: self.node_used.clone(),
            disabled: self.nodes.iter().map(|n| n.unschedulable).collect(),
            new: Vec::new(),
            counts: self
                .groups
                .iter()
                .map(|g| vec![0; self.group_width(g.key)])
                .collect(),
            owners: self
                .groups
                .iter()
                .map(|g| vec![0; self.group_width(g.key)])
                .collect(),
            totals: vec![0; self.groups.len()],
            reserved: vec![(Res::ZERO, 0); self.pools.len()],
        };
        for n in 0..self.nodes.len() {
            for i in 0..self.node_pods[n].len() {
                let pid = self.node_pods[n][i];
                let sig = self.pods[pid as usize].variants[0];
                self.record(&mut st, sig, Target::Existing(n), &[]);
            }
        }
        st
    }

    fn group_width(&self, k: TopoKey) -> usize {
        match k {
            TopoKey::Host => self.nodes.len(),
            TopoKey::Label(k) => self.domains[k as usize].len(),
        }
    }

    fn finalize(&mut self) {
        if self.finalized {
            return;
        }
        self.finalized = true;
        // Domains per label key: what the NodePools (through their instance types) can offer,
        // plus what existing nodes have.
        self.domains = vec![Vec::new(); self.keys.len()];
        self.domain_ids = vec![HashMap::new(); self.keys.len()];
        for k in 0..self.keys.len() {
            let key = self.keys[k].clone();
            let mut vals: BTreeSet<String> = BTreeSet::new();
            for p in &self.pools {
                let pool_req = p.reqs.get(&key);
                if let Some(v) = pool_req.and_then(|r| r.values()) {
                    vals.extend(v.iter().cloned());
                    continue;
                }
                for t in p.types.iter() {
                    if let Some(v) = self.catalog.types[t]
                        .requirements
                        .get(&key)
                        .and_then(|r| r.values())
                    {
                        vals.extend(
                            v.iter()
                                .filter(|x| pool_req.is_none_or(|r| r.has(x)))
                                .cloned(),
                        );
                    }
                }
            }
            for n in self.nodes.iter() {
                if let Some(v) = n.labels.get(&key) {
                    vals.insert(v.clone());
                }
            }
            for (i, v) in vals.into_iter().enumerate() {
                self.domain_ids[k].insert(v.clone(), i as DomainId);
                self.domains[k].push(v);
            }
        }
        self.node_domains = self
            .nodes
            .iter()
            .map(|n| {
                (0..self.keys.len())
                    .map(|k| {
                        n.labels
                            .get(&self.keys[k])
                            .and_then(|v| self.domain_ids[k].get(v).copied())
                    })
                    .collect()
            })
            .collect();
        // Which groups each signature matches, and compatibility.
        let group_matchers: Vec<GroupKey> = self.groups.clone();
        // Each signature's key (namespace, labels, tolerations), by id.
        let sig_ids = std::mem::take(&mut self.sig_ids);
        let mut keys: Vec<Option<&SigKey>> = vec![None; self.sigs.len()];
        for (k, &id) in &sig_ids {
            keys[id as usize] = Some(k);
        }
        for (si, key) in keys.iter().enumerate() {
            let Some(key) = key else { continue };
            let mut matches = Vec::new();
            let mut anti_targets = Vec::new();
            for (g, gk) in group_matchers.iter().enumerate() {
                if gk.namespaces.contains(&key.ns)
                    && gk.selector.as_ref().is_some_and(|s| s.matches(&key.labels))
                {
                    matches.push(g as GroupId);
                    if self.anti_groups.contains(&(g as GroupId)) {
                        anti_targets.push((g as GroupId, gk.key));
                    }
                }
            }
            let mut extra_keys: Vec<KeyId> = anti_targets
                .iter()
                .filter_map(|(_, k)| {
                    if let TopoKey::Label(k) = k {
                        Some(*k)
                    } else {
                        None
                    }
                })
                .collect();
            let sig = &self.sigs[si];
            let pool_types: Vec<Result<TypeSet, String>> = self
                .pools
                .iter()
                .map(|p| self.sig_pool_types(sig, &key.tolerations, p))
                .collect();
            let mut node_ok = TypeSet::empty(self.nodes.len());
            for (i, n) in self.nodes.iter().enumerate() {
                if tolerates_all(&key.tolerations, &n.taints) && sig.reqs.matches_labels(&n.labels)
                {
                    node_ok.insert(i);
                }
            }
            let mut spreads = sig.spreads.clone();
            for sp in &mut spreads {
                if let TopoKey::Label(k) = sp.key {
                    sp.eligible = (0..self.domains[k as usize].len() as DomainId)
                        .filter(|d| {
                            sig.reqs
                                .get(&self.keys[k as usize])
                                .is_none_or(|r| r.has(&self.domains[k as usize][*d as usize]))
                        })
                        .collect();
                }
            }
            let sig = &mut self.sigs[si];
            sig.matches = matches;
            sig.anti_targets = anti_targets;
            sig.topo_keys.append(&mut extra_keys);
            sig.topo_keys.sort_unstable();
            sig.topo_keys.dedup();
            sig.pool_types = pool_types;
            sig.node_ok = node_ok;
            sig.spreads = spreads;
        }
        drop(keys);
        self.sig_ids = sig_ids;
    }

    fn sig_pool_types(
        &self,
        sig: &Sig,
        tolerations: &[Toleration],
        p: &PoolInfo,
    ) -> Result<TypeSet, String> {
        if !tolerates_all(tolerations, &p.taints) {
            let t = p
                .taints
                .iter()
                .find(|t| !tolerations.iter().any(|tol| tol.tolerates(t)));
            return Err(format!(
                "does not tolerate taint {}",
                t.map(|t| format!("{}={}:{:?}", t.key, t.value, t.effect))
                    .unwrap_or_default()
            ));
        }
        self.compatible_undefined_ok(&p.reqs, &sig.reqs)
            .map_err(|e| format!("incompatible requirement {e}"))?;
        let mut s = TypeSet::empty(self.catalog.types.len());
        let mask = sig.offer_mask & p.offer_mask;
        for t in p.types.iter() {
            if self.idx.type_masks[t] & mask != 0
                && self.catalog.types[t]
                    .requirements
                    .intersects(&sig.reqs)
                    .is_ok()
            {
                s.insert(t);
            }
        }
        if s.is_empty() {
            return Err(
                "no instance type satisfies the pod's requirements together with the NodePool's"
                    .into(),
            );
        }
        Ok(s)
    }

    /// Take an existing node out of the simulation (a consolidation candidate): its capacity
    /// disappears and its pods stop counting for topology.
    pub fn remove_node(&self, st: &mut State, n: usize) {
        st.disabled[n] = true;
        for &pid in &self.node_pods[n] {
            let sig = &self.sigs[self.pods[pid as usize].variants[0] as usize];
            for &g in &sig.matches {
                match self.groups[g as usize].key {
                    TopoKey::Host => bump(&mut st.counts[g as usize], n, -1),
                    TopoKey::Label(k) => {
                        if let Some(d) = self.node_domains[n][k as usize] {
                            bump(&mut st.counts[g as usize], d as usize, -1);
                        }
                    }
                }
                st.totals[g as usize] -= 1;
            }
            for &(g, key) in &sig.antis {
                match key {
                    TopoKey::Host => bump(&mut st.owners[g as usize], n, -1),
                    TopoKey::Label(k) => {
                        if let Some(d) = self.node_domains[n][k as usize] {
                            bump(&mut st.owners[g as usize], d as usize, -1);
                        }
                    }
                }
            }
        }
    }

    /// Place `pods` (ids from [`Scheduler::add_pod`]) into `st`.
    pub fn solve(&self, st: &mut State, pods: &[PodId], opts: SolveOptions) -> Solution {
        let mut order: Vec<PodId> = pods.to_vec();
        order.sort_by(|a, b| {
            let (pa, pb) = (&self.pods[*a as usize], &self.pods[*b as usize]);
            pb.priority
                .cmp(&pa.priority)
                .then(pb.requests.cpu.cmp(&pa.requests.cpu))
                .then(pb.requests.mem.cmp(&pa.requests.mem))
                .then(a.cmp(b))
        });
        let order = self.balanced_order(order);
        let mut sol = Solution {
            placements: Vec::with_capacity(order.len()),
            failures: Vec::new(),
            relaxed: Vec::new(),
        };
        let mut failed = Vec::new();
        for pid in order {
            match self.place(st, pid, opts) {
                Ok((t, relaxed)) => {
                    sol.placements.push((pid, t));
                    if relaxed {
                        sol.relaxed.push(pid);
                    }
                }
                Err(e) => failed.push((pid, e)),
            }
        }
        // One more pass: a pod with pod affinity may fit now that its peers are placed.
        let retry = !failed.is_empty() && failed.len() < pods.len();
        for (pid, e) in failed {
            match if retry {
                self.place(st, pid, opts)
            } else {
                Err(e.clone())
            } {
                Ok((t, relaxed)) => {
                    sol.placements.push((pid, t));
                    if relaxed {
                        sol.relaxed.push(pid);
                    }
                }
                Err(_) => sol.failures.push((pid, e)),
            }
        }
        sol
    }

    /// Better than first-fit-decreasing where it pays: within a priority tier, interleave
    /// CPU-heavy and memory-heavy pods (relative to the batch's own CPU:memory mix) so that the
    /// running mix stays at the batch's mix. NodeClaims fill sequentially, so each ends up with
    /// roughly the batch's proportions and the cheapest type for it wastes neither dimension —
    /// plain FFD sorts by CPU and produces CPU-bound and memory-bound nodes that each waste one.
    /// Both halves stay sorted largest first, keeping FFD's benefit for big pods.
    fn balanced_order(&self, sorted: Vec<PodId>) -> Vec<PodId> {
        let mut out = Vec::with_capacity(sorted.len());
        let mut start = 0;
        while start < sorted.len() {
            let prio = self.pods[sorted[start] as usize].priority;
            let end = sorted[start..]
                .iter()
                .position(|p| self.pods[*p as usize].priority != prio)
                .map_or(sorted.len(), |e| start + e);
            let tier = &sorted[start..end];
            let (tc, tm) = tier.iter().fold((0f64, 0f64), |(c, m), p| {
                let r = self.pods[*p as usize].requests;
                (c + r.cpu as f64, m + r.mem as f64)
            });
            if tc <= 0.0 || tm <= 0.0 {
                out.extend_from_slice(tier);
            } else {
                let norm = |p: PodId| {
                    let r = self.pods[p as usize].requests;
                    (r.cpu as f64 / tc, r.mem as f64 / tm)
                };
                let (mut cpu_heavy, mut mem_heavy): (Vec<PodId>, Vec<PodId>) =
                    tier.iter().partition(|p| {
                        let (c, m) = norm(**p);
                        c >= m
                    });
                let key = |p: &PodId| {
                    let (c, m) = norm(*p);
                    std::cmp::Reverse(((c.max(m) * 1e12) as i64, u32::MAX - *p))
                };
                cpu_heavy.sort_by_key(key);
                mem_heavy.sort_by_key(key);
                let (mut i, mut j, mut imbalance) = (0, 0, 0f64);
                while i < cpu_heavy.len() || j < mem_heavy.len() {
                    let take_cpu =
                        j >= mem_heavy.len() || (i < cpu_heavy.len() && imbalance <= 0.0);
                    let p = if take_cpu {
                        i += 1;
                        cpu_heavy[i - 1]
                    } else {
                        j += 1;
                        mem_heavy[j - 1]
                    };
                    let (c, m) = norm(p);
                    imbalance += c - m;
                    out.push(p);
                }
            }
            start = end;
        }
        out
    }

    fn place(
        &self,
        st: &mut State,
        pid: PodId,
        opts: SolveOptions,
    ) -> Result<(Target, bool), String> {
        let info = &self.pods[pid as usize];
        if !info.other_resources.is_empty() {
            return Err(format!(
                "requests {} which no instance type in the catalog offers",
                info.other_resources.join(", ")
            ));
        }
        let req = info.requests;
        let mut first_reason: Option<String> = None;
        for &sid in &info.variants {
            let sig = &self.sigs[sid as usize];
            // 1. existing nodes, then in-flight claims.
            for &n in &self.node_order {
                if st.disabled[n]
                    || !sig.node_ok.contains(n)
                    || !st.used[n].plus(&req).fits_in(&self.nodes[n].allocatable)
                {
                    continue;
                }
                if self.topology(st, sig, Target::Existing(n)).is_ok() {
                    st.used[n] = st.used[n].plus(&req);
                    self.record(st, sid, Target::Existing(n), &[]);
                    return Ok((Target::Existing(n), sig.relaxed));
                }
            }
            // 2. NodeClaims being built.
            for b in 0..st.new.len() {
                if !st.new[b].requests.plus(&req).fits_in(&st.new[b].max_alloc) {
                    continue;
                }
                if self.try_new_bin(st, sid, req, b).is_ok() {
                    return Ok((Target::New(b), sig.relaxed));
                }
            }
            // 3. A new NodeClaim from the first NodePool (by weight) that can take the pod.
            let mut reasons = Vec::new();
            if opts.max_new.is_none_or(|m| st.new.len() < m) {
                for (pi, p) in self.pools.iter().enumerate() {
                    match self.open_bin(st, sid, req, pi) {
                        Ok(b) => return Ok((Target::New(b), sig.relaxed)),
                        Err(e) => reasons.push(format!("{}: {e}", p.pool.name())),
                    }
                }
            } else {
                reasons.push("no new node allowed in this simulation".into());
            }
            if first_reason.is_none() {
                let pools = if self.pools.is_empty() {
                    "no NodePools".to_string()
                } else {
                    reasons.join("; ")
                };
                first_reason = Some(format!("fits no existing node; {pools}"));
            }
        }
        Err(first_reason.unwrap_or_else(|| "no scheduling variant".into()))
    }

    fn open_bin(&self, st: &mut State, sid: SigId, req: Res, pi: usize) -> Result<usize, String> {
        let sig = &self.sigs[sid as usize];
        let p = &self.pools[pi];
        let compat = sig.pool_types[pi].as_ref().map_err(|e| e.clone())?;
        let (res_reserved, nodes_reserved) = st.reserved[pi];
        if p.remaining_nodes.saturating_sub(nodes_reserved) < 1 {
            return Err("limit `nodes` reached".into());
        }
        let avail = p.remaining.minus(&res_reserved);
        let mut types = TypeSet::empty(self.catalog.types.len());
        let mut any_fit = false;
        for t in compat.iter() {
            let it = &self.catalog.types[t];
            if it.capacity.fits_in(&avail) {
                types.insert(t);
            }
            any_fit |= p.daemon.plus(&req).fits_in(&it.allocatable);
        }
        if types.is_empty() {
            return Err(if any_fit {
                "limits reached (no instance type fits in what remains)".into()
            } else {
                "no instance type is large enough".into()
            });
        }
        let (max_alloc, max_cap) = self.maxima(&types);
        let pins = (0..self.keys.len())
            .map(|k| {
                p.reqs
                    .get(&self.keys[k])
                    .and_then(|r| r.single())
                    .and_then(|v| self.domain_ids[k].get(v).copied())
            })
            .collect();
        st.new.push(NewBin {
            pool: pi,
            requests: p.daemon,
            types,
            max_alloc,
            max_cap,
            reqs: p.reqs.clone(),
            offer_mask: p.offer_mask,
            pins,
            pending: Vec::new(),
            pods: Vec::new(),
            reserved_cap: Res::ZERO,
            npods: 0,
            cost: f64::INFINITY,
        });
        let b = st.new.len() - 1;
        for g in 0..self.groups.len() {
            if self.groups[g].key == TopoKey::Host {
                let w = self.nodes.len() + st.new.len();
                st.counts[g].resize(w, 0);
                st.owners[g].resize(w, 0);
            }
        }
        let _ = max_cap;
        st.reserved[pi].1 += 1;
        match self.try_new_bin(st, sid, req, b) {
            Ok(()) => Ok(b),
            Err(e) => {
                let bin = st.new.pop().expect("bin pushed above");
                st.reserved[pi].0 = st.reserved[pi].0.minus(&bin.reserved_cap);
                st.reserved[pi].1 -= 1;
                Err(e)
            }
        }
    }

    fn maxima(&self, types: &TypeSet) -> (Res, Res) {
        types.iter().fold((Res::ZERO, Res::ZERO), |(a, c), t| {
            let it = &self.catalog.types[t];
            (a.max_each(&it.allocatable), c.max_each(&it.capacity))
        })
    }

    fn try_new_bin(&self, st: &mut State, sid: SigId, req: Res, b: usize) -> Result<(), String> {
        let sig = &self.sigs[sid as usize];
        let bin = &st.new[b];
        let pi = bin.pool;
        let compat = sig.pool_types[pi].as_ref().map_err(|e| e.clone())?;
        if sig.reqs.iter().next().is_some() {
            bin.reqs
                .compatible(&filter_defined(&bin.reqs, &sig.reqs))
                .map_err(|e| format!("incompatible with the NodeClaim: {e}"))?;
        }
        let pins = self.topology(st, sig, Target::New(b))?;
        let bin = &st.new[b];
        let new_req = bin.requests.plus(&req);
        let mut new_reqs = None;
        if sig.reqs.iter().next().is_some() || !pins.is_empty() {
            let mut r = bin.reqs.clone();
            r.add_all(&filter_defined_or_new(&sig.reqs));
            for &(k, d) in &pins {
                r.add(
                    &self.keys[k as usize],
                    Requirement::in_values([self.domains[k as usize][d as usize].clone()]),
                );
            }
            new_reqs = Some(r);
        }
        let offer_mask = match &new_reqs {
            Some(r) => self.offer_mask_for(r) & bin.offer_mask,
            None => bin.offer_mask,
        } & sig.offer_mask;
        let pinned_other: Vec<(&str, &str)> = pins
            .iter()
            .filter(|(k, _)| {
                let key = self.keys[*k as usize].as_str();
                key != LABEL_ZONE && key != LABEL_CAPACITY_TYPE
            })
            .map(|&(k, d)| {
                (
                    self.keys[k as usize].as_str(),
                    self.domains[k as usize][d as usize].as_str(),
                )
            })
            .collect();
        let mut types = TypeSet::empty(self.catalog.types.len());
        let mut max_alloc = Res::ZERO;
        let mut max_cap = Res::ZERO;
        let mut min_price = f64::INFINITY;
        let mut cheapest_cap = Res::ZERO;
        let prices = self.prices(offer_mask);
        for t in bin.types.and(compat).iter() {
            let it = &self.catalog.types[t];
            if !new_req.fits_in(&it.allocatable) || self.idx.type_masks[t] & offer_mask == 0 {
                continue;
            }
            if !pinned_other
                .iter()
                .all(|(k, v)| it.requirements.get(k).is_none_or(|r| r.has(v)))
            {
                continue;
            }
            types.insert(t);
            max_alloc = max_alloc.max_each(&it.allocatable);
            max_cap = max_cap.max_each(&it.capacity);
            if prices[t] < min_price {
                min_price = prices[t];
                cheapest_cap = it.capacity;
            }
        }
        if types.is_empty() {
            return Err("no instance type fits the NodeClaim with this pod".into());
        }
        // Cost per useful resource: do not grow a NodeClaim into an instance type that is
        // poor value for what it runs (e.g. a 12 TB memory type for CPU-bound pods) when a
        // new NodeClaim would do better. A growing claim is refused a pod only when its
        // $/resource would both exceed EFFICIENCY_SLACK × the pool's best unit prices and jump
        // by more than EFFICIENCY_JUMP.
        {
            let pool = &self.pools[pi];
            let value = self.value(pool, &new_req);
            if bin.npods > 0 && value > 0.0 && min_price.is_finite() {
                let new_eff = min_price / value;
                let old_eff = bin.cost / self.value(pool, &bin.requests).max(1e-12);
                if new_eff > EFFICIENCY_SLACK && new_eff > old_eff * EFFICIENCY_JUMP {
                    return Err(format!(
                        "adding the pod would need a less cost-efficient instance type (${min_price:.4}/h for ${value:.4}/h of resources)"
                    ));
                }
            }
        }
        for (key, min) in &self.pools[pi].min_values {
            let distinct: BTreeSet<&String> = types
                .iter()
                .filter_map(|t| {
                    self.catalog.types[t]
                        .requirements
                        .get(key)
                        .and_then(|r| r.values())
                        .and_then(|v| v.iter().next())
                })
                .collect();
            if distinct.len() < *min {
                return Err(format!(
                    "minValues: only {} distinct values of {key} would remain, {min} required",
                    distinct.len()
                ));
            }
        }
        // Limits: the claim's reservation becomes the capacity of its new cheapest type.
        let reserved = st.reserved[pi]
            .0
            .minus(&st.new[b].reserved_cap)
            .plus(&cheapest_cap);
        if !reserved.fits_in(&self.pools[pi].remaining) {
            return Err("limits reached (the NodeClaim cannot grow)".into());
        }
        // Commit.
        st.reserved[pi].0 = reserved;
        let bin = &mut st.new[b];
        bin.requests = new_req;
        bin.types = types;
        bin.max_alloc = max_alloc;
        bin.max_cap = max_cap;
        bin.reserved_cap = cheapest_cap;
        bin.offer_mask = offer_mask;
        bin.npods += 1;
        bin.cost = min_price;
        if let Some(r) = new_reqs {
            bin.reqs = r;
        }
        self.record(st, sid, Target::New(b), &pins);
        Ok(())
    }

    /// Check topology for placing `sig` on `target`; returns the domains the NodeClaim must be
    /// pinned to (label keys that are still open on it).
    fn topology(
        &self,
        st: &State,
        sig: &Sig,
        target: Target,
    ) -> Result<Vec<(KeyId, DomainId)>, String> {
        let host_idx = match target {
            Target::Existing(n) => n,
            Target::New(b) => self.nodes.len() + b,
        };
        let host = |v: &Vec<i32>| v.get(host_idx).copied().unwrap_or(0);
        for sp in &sig.spreads {
            if sp.key == TopoKey::Host
                && host(&st.counts[sp.g as usize]) + i32::from(sp.self_match) > sp.max_skew
            {
                return Err(format!(
                    "hostname topology spread (maxSkew {}) would be exceeded",
                    sp.max_skew
                ));
            }
        }
        for &(g, k, self_match) in &sig.affinities {
            if k == TopoKey::Host
                && host(&st.counts[g as usize]) == 0
                && !(st.totals[g as usize] == 0 && self_match)
            {
                return Err("pod affinity on hostname: no matching pod on this node".into());
            }
        }
        for &(g, k) in &sig.antis {
            if k == TopoKey::Host && host(&st.counts[g as usize]) > 0 {
                return Err("pod anti-affinity on hostname: a matching pod is on this node".into());
            }
        }
        for &(g, k) in &sig.anti_targets {
            if k == TopoKey::Host && host(&st.owners[g as usize]) > 0 {
                return Err("another pod's anti-affinity forbids this node".into());
            }
        }
        let mut pins = Vec::new();
        for &k in &sig.topo_keys {
            let (fixed, pending): (Option<Option<DomainId>>, &[(GroupId, i32)]) = match target {
                Target::Existing(n) => (Some(self.node_domains[n][k as usize]), &[]),
                Target::New(b) => (st.new[b].pins[k as usize].map(Some), &st.new[b].pending),
            };
            let pend = |g: GroupId| -> i32 {
                if fixed.is_some() {
                    0
                } else {
                    pending
                        .iter()
                        .filter(|(pg, _)| *pg == g)
                        .map(|(_, c)| *c)
                        .sum()
                }
            };
            let candidates: Vec<DomainId> = match fixed {
                Some(Some(d)) => vec![d],
                Some(None) => return Err(format!("node has no {} label", self.keys[k as usize])),
                None => {
                    let Target::New(b) = target else {
                        unreachable!("existing nodes are always fixed")
                    };
                    let key = &self.keys[k as usize];
                    let bin_req = st.new[b].reqs.get(key);
                    let sig_req = sig.reqs.get(key);
                    (0..self.domains[k as usize].len() as DomainId)
                        .filter(|d| {
                            let v = &self.domains[k as usize][*d as usize];
                            bin_req.is_none_or(|r| r.has(v)) && sig_req.is_none_or(|r| r.has(v))
                        })
                        .collect()
                }
            };
            let tk = TopoKey::Label(k);
            let ok = |d: DomainId| -> bool {
                let di = d as usize;
                for sp in sig.spreads.iter().filter(|s| s.key == tk) {
                    let c = &st.counts[sp.g as usize];
                    let min = if (sp.eligible.len() as i32) < sp.min_domains {
                        0
                    } else {
                        sp.eligible
                            .iter()
                            .map(|&e| c[e as usize])
                            .min()
                            .unwrap_or(0)
                    };
                    if c[di] + pend(sp.g) + i32::from(sp.self_match) - min > sp.max_skew {
                        return false;
                    }
                }
                for &(g, _, self_match) in sig.affinities.iter().filter(|a| a.1 == tk) {
                    if st.counts[g as usize][di] + pend(g) == 0
                        && !(st.totals[g as usize] == 0 && self_match)
                    {
                        return false;
                    }
                }
                for &(g, _) in sig.antis.iter().filter(|a| a.1 == tk) {
                    if st.counts[g as usize][di] + pend(g) > 0 {
                        return false;
                    }
                }
                for &(g, _) in sig.anti_targets.iter().filter(|a| a.1 == tk) {
                    if st.owners[g as usize][di] > 0 {
                        return false;
                    }
                }
                // Pods already on an open NodeClaim must not land in a domain whose
                // anti-affinity owners forbid them.
                if fixed.is_none() {
                    for &(g, c) in pending {
                        if c > 0
                            && self.groups[g as usize].key == tk
                            && self.anti_groups.contains(&g)
                            && st.owners[g as usize][di] > 0
                        {
                            return false;
                        }
                    }
                }
                true
            };
            let first_spread = sig.spreads.iter().find(|s| s.key == tk);
            let best = candidates.into_iter().filter(|&d| ok(d)).min_by_key(|&d| {
                (
                    first_spread.map_or(0, |sp| st.counts[sp.g as usize][d as usize] + pend(sp.g)),
                    d,
                )
            });
            match best {
                Some(d) => {
                    if fixed.is_none() {
                        pins.push((k, d));
                    }
                }
                None => {
                    return Err(format!(
                        "no {} domain satisfies the pod's topology constraints",
                        self.keys[k as usize]
                    ));
                }
            }
        }
        Ok(pins)
    }

    fn record(&self, st: &mut State, sid: SigId, target: Target, pins: &[(KeyId, DomainId)]) {
        let sig = &self.sigs[sid as usize];
        if let Target::New(b) = target {
            for &(k, d) in pins {
                let bin = &mut st.new[b];
                bin.pins[k as usize] = Some(d);
                // Flush pods counted while the domain was open.
                let pending = std::mem::take(&mut bin.pending);
                let mut keep = Vec::new();
                for (g, c) in pending {
                    if self.groups[g as usize].key == TopoKey::Label(k) {
                        bump(&mut st.counts[g as usize], d as usize, c);
                    } else {
                        keep.push((g, c));
                    }
                }
                st.new[b].pending = keep;
            }
        }
        let host_idx = match target {
            Target::Existing(n) => n,
            Target::New(b) => self.nodes.len() + b,
        };
        let domain_of = |st: &State, k: KeyId| -> Option<DomainId> {
            match target {
                Target::Existing(n) => self.node_domains[n][k as usize],
                Target::New(b) => st.new[b].pins[k as usize],
            }
        };
        for &g in &sig.matches {
            st.totals[g as usize] += 1;
            match self.groups[g as usize].key {
                TopoKey::Host => bump(&mut st.counts[g as usize], host_idx, 1),
                TopoKey::Label(k) => match domain_of(st, k) {
                    Some(d) => bump(&mut st.counts[g as usize], d as usize, 1),
                    None => {
                        if let Target::New(b) = target {
                            let p = &mut st.new[b].pending;
                            match p.iter_mut().find(|(pg, _)| *pg == g) {
                                Some(e) => e.1 += 1,
                                None => p.push((g, 1)),
                            }
                        }
                    }
                },
            }
        }
        for &(g, k) in &sig.antis {
            match k {
                TopoKey::Host => bump(&mut st.owners[g as usize], host_idx, 1),
                TopoKey::Label(k) => {
                    if let Some(d) = domain_of(st, k) {
                        bump(&mut st.owners[g as usize], d as usize, 1);
                    }
                }
            }
        }
    }

    /// Record which pods a solution put on each new bin (kept on the bin for the plan).
    pub fn attach(&self, st: &mut State, sol: &Solution) {
        for &(pid, t) in &sol.placements {
            if let Target::New(b) = t {
                st.new[b].pods.push(pid);
            }
        }
    }

    /// The instance types a new bin may launch as, cheapest offering first:
    /// (type index, price, zone, capacity type). Like Karpenter, the list is cut to the
    /// [`MAX_INSTANCE_TYPES`] cheapest (launch falls back down this list), topped up so the
    /// NodePool's `minValues` still hold.
    pub fn priced_options(&self, bin: &NewBin) -> Vec<(usize, f64, String, String)> {
        let prices = self.prices(bin.offer_mask);
        let mut idx: Vec<usize> = bin
            .types
            .iter()
            .filter(|&t| prices[t].is_finite())
            .collect();
        idx.sort_by(|&a, &b| prices[a].total_cmp(&prices[b]).then(a.cmp(&b)));
        let mut keep: Vec<usize> = idx.iter().take(MAX_INSTANCE_TYPES).copied().collect();
        for (key, min) in &self.pools[bin.pool].min_values {
            let val = |t: usize| {
                self.catalog.types[t]
                    .requirements
                    .get(key)
                    .and_then(|r| r.single())
                    .map(str::to_string)
            };
            let mut seen: BTreeSet<String> = keep.iter().filter_map(|&t| val(t)).collect();
            for &t in idx.iter().skip(MAX_INSTANCE_TYPES) {
                if seen.len() >= *min {
                    break;
                }
                if let Some(v) = val(t)
                    && seen.insert(v)
                {
                    keep.push(t);
                }
            }
        }
        keep.sort_by(|&a, &b| prices[a].total_cmp(&prices[b]).then(a.cmp(&b)));
        keep.dedup();
        keep.into_iter()
            .filter_map(|t| {
                let it = &self.catalog.types[t];
                it.cheapest_offering(&bin.reqs)
                    .map(|o| (t, o.price, o.zone.to_string(), o.capacity_type.to_string()))
            })
            .collect()
    }

    pub fn used(&self, st: &State, n: usize) -> Res {
        st.used[n]
    }
    pub fn is_disabled(&self, st: &State, n: usize) -> bool {
        st.disabled[n]
    }
}

fn self_has_prefs(pod: &Pod) -> bool {
    pod.spec.affinity.as_ref().is_some_and(|a| {
        a.node_affinity.as_ref().is_some_and(|n| {
            !n.preferred_during_scheduling_ignored_during_execution
                .is_empty()
        }) || a.pod_affinity.as_ref().is_some_and(|n| {
            !n.preferred_during_scheduling_ignored_during_execution
                .is_empty()
        }) || a.pod_anti_affinity.as_ref().is_some_and(|n| {
            !n.preferred_during_scheduling_ignored_during_execution
                .is_empty()
        })
    }) || pod
        .spec
        .topology_spread_constraints
        .iter()
        .any(|t| t.when_unsatisfiable == WhenUnsatisfiable::ScheduleAnyway)
}

fn bump(v: &mut Vec<i32>, i: usize, by: i32) {
    if v.len() <= i {
        v.resize(i + 1, 0);
    }
    v[i] += by;
}

/// The pod's node requirements: nodeSelector plus one required node-affinity term.
pub fn pod_node_reqs(pod: &Pod, term: Option<&NodeSelectorTerm>) -> Requirements {
    let mut r = Requirements::from_labels(pod.spec.node_selector.iter());
    if let Some(t) = term {
        r.add_all(&Requirements::from_node_selector(&t.match_expressions));
    }
    r
}

/// The pod requirements on keys the NodeClaim defines (others are checked against types).
fn filter_defined(bin: &Requirements, pod: &Requirements) -> Requirements {
    let mut out = Requirements::new();
    for (k, r) in pod.iter() {
        if bin.get(k).is_some() {
            out.add(k, r.clone());
        }
    }
    out
}

/// Every pod requirement is carried onto the NodeClaim (so its labels satisfy the pod).
fn filter_defined_or_new(pod: &Requirements) -> Requirements {
    pod.clone()
}
