//! The one conversion of the cluster into what the engine decides on: the shared informers'
//! stores ([`Snapshot`]) → [`engine::Cluster`] (the provision core's nodes and pods, plus the
//! engine's [`NodeInfo`] per node), as Karpenter's `state.Cluster` is built once and read by
//! provisioning and disruption alike. Pure: no API call, no clock.
//!
//! The rules, each written once:
//! - **Nodes** come with the pods bound to them that would have to move if the node went away:
//!   not DaemonSet pods, not mirror (static) pods — those are `daemon_overhead` — and not
//!   terminal ones. A pod being deleted stays on its node with [`PodFlags::terminating`]
//!   (its capacity is still used, a drain waits for it, nobody evicts it again); a pod's
//!   `kedge.dev/busy: "true"` annotation (set by the consumer) is [`PodFlags::busy`].
//! - **Prices** come from the catalog by the node's instance-type, zone and capacity-type
//!   labels (for an in-flight claim: its labels and single-valued requirements).
//! - **Claims**: a node's NodeClaim is the one with its provider ID (else the one whose
//!   `status.nodeName` names it). A claim's node is initialized when the claim is
//!   `Initialized`; until then it is `in_flight` (capacity on its way, never a disruption
//!   candidate) and planned without its startup and ephemeral taints, which go away by
//!   themselves. A claim whose node has not registered yet is an `in_flight` node named after
//!   the claim, sized by its launched instance (status) or its cheapest allowed type. A node
//!   with no claim is not kedge's: capacity for the simulation, never a candidate (its
//!   NodePool label is dropped).
//! - **Pending pods** are the ones kube-scheduler marked `PodScheduled=False/Unschedulable`,
//!   unbound, not being deleted, not a DaemonSet's.
//! - **Pod keys** are `engine::pod_key` (`namespace/name`).
//! - **consolidateAfter** reads the last pod event per node from a [`PodTracker`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use clock::Timestamp;
use engine::{Cluster, NodeInfo, PodFlags};
use k8s_openapi::api::apps::v1::DaemonSet;
use model::karpenter::{
    ANNOTATION_NODEPOOL_HASH, CONDITION_INITIALIZED, LABEL_CAPACITY_TYPE, LABEL_HOSTNAME,
    LABEL_INSTANCE_TYPE, LABEL_NODEPOOL, LABEL_ZONE,
};
use provision::catalog::Catalog;
use provision::resources::Res;
use provision::scheduler::ExistingNode;
use serde_json::Value;

use super::convert;
use super::lifecycle::EPHEMERAL_TAINTS;
use crate::cached_node::CachedNode as Node;
use crate::cached_pod::CachedPod as Pod;
use crate::crd::{NodeClaim, NodePool};
use crate::informers::Informers;

/// The taint Karpenter puts on nodes it is disrupting.
pub const DISRUPTED_TAINT_KEY: &str = "karpenter.sh/disrupted";
/// The annotation a consumer sets on its own Pod: `"true"` while it works on a message.
pub const BUSY_ANNOTATION: &str = "kedge.dev/busy";
/// Static (mirror) pods: the kubelet owns them; the Eviction API cannot move them.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// The stores' objects one step reads (shared, not copied).
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub nodepools: Vec<Arc<NodePool>>,
    pub daemonsets: Vec<Arc<DaemonSet>>,
    pub nodes: Vec<Arc<Node>>,
    pub pods: Vec<Arc<Pod>>,
    pub claims: Vec<Arc<NodeClaim>>,
    /// Listed per step only when the disruption pass simulates (there is no PDB informer).
    pub pdbs: Vec<model::kube::PodDisruptionBudget>,
}

impl Snapshot {
    /// What the shared informers hold now (no API call; PDBs are added by the caller).
    pub fn of(inf: &Informers) -> Snapshot {
        Snapshot {
            nodepools: inf.nodepools.state(),
            daemonsets: inf.daemonsets.state(),
            nodes: inf.nodes.state(),
            pods: inf.pods.state(),
            claims: inf.claims.state(),
            pdbs: Vec::new(),
        }
    }

    /// The same objects listed from the API server, one list per kind (for tools and tests
    /// that step the node controller themselves; the controller reads the informers).
    pub async fn list(client: &kube::Client) -> Result<Snapshot, kube::Error> {
        use kube::api::{Api, ListParams};
        fn arcs<T>(l: kube::core::ObjectList<T>) -> Vec<Arc<T>>
        where
            T: Clone,
        {
            l.items.into_iter().map(Arc::new).collect()
        }
        let lp = ListParams::default();
        Ok(Snapshot {
            nodepools: arcs(Api::<NodePool>::all(client.clone()).list(&lp).await?),
            daemonsets: arcs(Api::<DaemonSet>::all(client.clone()).list(&lp).await?),
            nodes: arcs(Api::<Node>::all(client.clone()).list(&lp).await?),
            pods: arcs(Api::<Pod>::all(client.clone()).list(&lp).await?),
            claims: arcs(Api::<NodeClaim>::all(client.clone()).list(&lp).await?),
            pdbs: Vec::new(),
        })
    }

    /// Some pod is waiting for capacity.
    pub fn any_pending(&self) -> bool {
        self.pods.iter().any(|p| is_provisionable(p))
    }

    /// Some node or claim belongs to a NodePool that exists: disruption has candidates to
    /// look at, and in-flight capacity is planned against.
    pub fn any_pool_capacity(&self) -> bool {
        let pools: HashSet<&str> = self
            .nodepools
            .iter()
            .filter_map(|p| p.metadata.name.as_deref())
            .collect();
        let of = |l: &Option<std::collections::BTreeMap<String, String>>| {
            l.as_ref()
                .and_then(|l| l.get(LABEL_NODEPOOL))
                .is_some_and(|p| pools.contains(p.as_str()))
        };
        self.nodes.iter().any(|n| of(&n.metadata.labels))
            || self.claims.iter().any(|c| of(&c.metadata.labels))
    }
}

/// What the conversion could not use, for logs and NodePool status.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Problems {
    /// (NodePool, why it is invalid): left out.
    pub invalid_pools: Vec<(String, String)>,
    /// Objects that could not be read (left out), one line each.
    pub skipped: Vec<String>,
}

/// Can the provisioner help this pod? Unbound, not terminating, not a DaemonSet's, and
/// kube-scheduler said `PodScheduled=False/Unschedulable`.
pub fn is_provisionable(p: &Pod) -> bool {
    if p.metadata.deletion_timestamp.is_some() || node_of(p).is_some() || is_daemonset_pod(p) {
        return false;
    }
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("Unschedulable")
            })
        })
}

fn node_of(p: &Pod) -> Option<&str> {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

fn is_daemonset_pod(p: &Pod) -> bool {
    p.metadata
        .owner_references
        .as_ref()
        .is_some_and(|o| o.iter().any(|r| r.kind == "DaemonSet"))
}

fn is_mirror_pod(p: &Pod) -> bool {
    p.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION))
}

fn is_terminal(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn is_busy(p: &Pod) -> bool {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(BUSY_ANNOTATION))
        .is_some_and(|v| v == "true")
}

fn ms(t: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> Option<u64> {
    t.as_ref()
        .and_then(|t| u64::try_from(t.0.as_millisecond()).ok())
}

/// When the pod was bound: its `PodScheduled` condition, else its creation.
fn bound_ms(p: &Pod) -> Option<u64> {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"))
        .and_then(|c| ms(&c.last_transition_time))
        .or_else(|| ms(&p.metadata.creation_timestamp))
}

/// `namespace/name` of a cached pod, as [`engine::pod_key`] writes it.
pub fn pod_key(p: &Pod) -> String {
    format!(
        "{}/{}",
        p.metadata.namespace.as_deref().unwrap_or("default"),
        p.metadata.name.as_deref().unwrap_or("")
    )
}

pub fn has_disrupted_taint(n: &Node) -> bool {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|t| t.iter().any(|t| t.key == DISRUPTED_TAINT_KEY))
}

fn claim_initialized(c: &NodeClaim) -> bool {
    c.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == CONDITION_INITIALIZED && c.status == "True")
    })
}

/// The claim backing `node`: same provider ID (as Karpenter matches them), else the node
/// name in the claim's status.
pub fn claim_for<'a>(node: &Node, claims: &'a [Arc<NodeClaim>]) -> Option<&'a Arc<NodeClaim>> {
    let name = node.metadata.name.as_deref()?;
    let pid = node.spec.as_ref().and_then(|s| s.provider_id.as_deref());
    claims
        .iter()
        .find(|c| pid.is_some() && c.status.as_ref().and_then(|s| s.provider_id.as_deref()) == pid)
        .or_else(|| {
            claims
                .iter()
                .find(|c| c.status.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name))
        })
}

/// USD/hour of a node from its instance-type, zone and capacity-type labels (the zone's
/// offering, else any of that capacity type, else the cheapest; 0 when the type is unknown).
pub fn node_price(catalog: &Catalog, labels: &model::kube::Labels) -> f64 {
    let Some(it) = labels.get(LABEL_INSTANCE_TYPE).and_then(|t| catalog.get(t)) else {
        return 0.0;
    };
    let zone = labels.get(LABEL_ZONE).map(String::as_str);
    let ct = labels.get(LABEL_CAPACITY_TYPE).map(String::as_str);
    it.offerings
        .iter()
        .find(|o| Some(&*o.zone) == zone && Some(&*o.capacity_type) == ct)
        .or_else(|| it.offerings.iter().find(|o| Some(&*o.capacity_type) == ct))
        .or_else(|| {
            it.offerings
                .iter()
                .min_by(|a, b| a.price.total_cmp(&b.price))
        })
        .map_or(0.0, |o| o.price)
}

/// The keys of a claim's startup taints.
fn startup_taint_keys(c: &NodeClaim) -> Vec<String> {
    c.spec
        .get("startupTaints")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.get("key").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A NodeClaim that is launching or launched but whose Node has not registered: capacity on
/// its way, named after the claim. Sized by the launched instance (status) or the first type
/// it may launch as (its requirement lists them cheapest first); `None` when neither is known.
pub fn in_flight_node(c: &NodeClaim, catalog: &Catalog) -> Option<ExistingNode> {
    let name = c.metadata.name.clone()?;
    let claim = convert::nodeclaim(c).ok()?;
    let mut labels = claim.metadata.labels.clone();
    for r in &claim.spec.requirements {
        if r.operator == model::kube::Operator::In && r.values.len() == 1 {
            labels
                .entry(r.key.clone())
                .or_insert_with(|| r.values[0].clone());
        }
    }
    labels.insert(LABEL_HOSTNAME.into(), name.clone());
    let first_type = labels.get(LABEL_INSTANCE_TYPE).cloned().or_else(|| {
        claim
            .spec
            .requirements
            .iter()
            .find(|r| r.key == LABEL_INSTANCE_TYPE && r.operator == model::kube::Operator::In)
            .and_then(|r| r.values.first().cloned())
    });
    let it = first_type.as_deref().and_then(|t| catalog.get(t));
    let (mut capacity, _) = Res::from_list(&claim.status.capacity);
    let (mut allocatable, _) = Res::from_list(&claim.status.allocatable);
    if capacity.is_zero() {
        capacity = it.map(|t| t.capacity).unwrap_or(Res::ZERO);
    }
    if allocatable.is_zero() {
        allocatable = it.map(|t| t.allocatable).unwrap_or(Res::ZERO);
    }
    if allocatable.is_zero() {
        return None;
    }
    let mut price_labels = labels.clone();
    if let Some(t) = &first_type {
        price_labels.insert(LABEL_INSTANCE_TYPE.into(), t.clone());
    }
    let created = ms(&c.metadata.creation_timestamp).unwrap_or(0);
    Some(ExistingNode {
        name,
        price: node_price(catalog, &price_labels),
        labels,
        taints: claim.spec.taints.clone(),
        capacity,
        allocatable,
        pods: vec![],
        daemon_overhead: Res::ZERO,
        unschedulable: false,
        in_flight: true,
        created_ms: created,
        nodepool_hash: claim
            .metadata
            .annotations
            .get(ANNOTATION_NODEPOOL_HASH)
            .cloned(),
        annotations: claim.metadata.annotations.clone(),
        last_pod_event_ms: created,
    })
}

/// Last pod event per node (pod bound, removed or terminating), for `consolidateAfter`.
///
/// Karpenter keeps this in the NodeClaim's status; here it is rebuilt at start from the pods'
/// bind times (removals before a restart are unknown) and then tracked by diffing what each
/// step observes.
#[derive(Debug, Clone, Default)]
pub struct PodTracker {
    /// Movable pod (`ns/name`) → its node and whether it was terminating, as last seen.
    seen: BTreeMap<String, (String, bool)>,
    last_event: BTreeMap<String, u64>,
    started: bool,
}

impl PodTracker {
    pub fn observe(&mut self, pods: &[Arc<Pod>], now: Timestamp) {
        let now = now.as_millis();
        let mut current = BTreeMap::new();
        for p in pods {
            let Some(node) = node_of(p) else { continue };
            if is_daemonset_pod(p) || is_mirror_pod(p) || is_terminal(p) {
                continue;
            }
            let terminating = p.metadata.deletion_timestamp.is_some();
            current.insert(pod_key(p), (node.to_string(), terminating));
            if !self.started {
                let t = bound_ms(p).unwrap_or(now).min(now);
                let e = self.last_event.entry(node.to_string()).or_insert(t);
                *e = (*e).max(t);
            }
        }
        if self.started {
            for (k, v) in &current {
                if self.seen.get(k) != Some(v) {
                    self.last_event.insert(v.0.clone(), now);
                }
            }
            for (k, v) in &self.seen {
                if !current.contains_key(k) {
                    self.last_event.insert(v.0.clone(), now);
                }
            }
        }
        self.started = true;
        self.seen = current;
        let nodes: HashSet<&str> = self.seen.values().map(|(n, _)| n.as_str()).collect();
        // Nodes that have had no pod for an hour need no memory: their creation time (or
        // that hour) is long past any consolidateAfter that could matter.
        self.last_event
            .retain(|n, t| nodes.contains(n.as_str()) || now.saturating_sub(*t) < 3_600_000);
    }

    pub fn last_event(&self, node: &str) -> Option<u64> {
        self.last_event.get(node).copied()
    }
}

/// Convert `snap` into the engine's [`Cluster`]. `with_pods: false` leaves bound pods out
/// (nodes then look empty): for a step in which nothing could be planned or disrupted (see
/// the node controller), so the common idle step converts no pod.
pub fn build(
    catalog: &Catalog,
    snap: &Snapshot,
    tracker: &PodTracker,
    with_pods: bool,
) -> (Cluster, Problems) {
    let mut problems = Problems::default();
    let mut cluster = Cluster::default();
    for np in &snap.nodepools {
        if np.metadata.deletion_timestamp.is_some() {
            continue;
        }
        match convert::nodepool(np) {
            Ok(p) => cluster.nodepools.push(p),
            Err(e) => problems
                .invalid_pools
                .push((np.metadata.name.clone().unwrap_or_default(), e)),
        }
    }
    for d in &snap.daemonsets {
        match convert::daemonset(d) {
            Ok(d) => cluster.daemonsets.push(d),
            Err(e) => problems.skipped.push(e),
        }
    }
    cluster.pdbs = snap.pdbs.clone();
    let mut by_node: HashMap<&str, Vec<&Pod>> = HashMap::new();
    if with_pods {
        for p in &snap.pods {
            if let Some(n) = node_of(p)
                && !is_terminal(p)
            {
                by_node.entry(n).or_default().push(p);
            }
        }
    }
    let mut claimed: HashSet<&str> = HashSet::new();
    cluster.nodes.reserve_exact(snap.nodes.len());
    cluster.info.reserve_exact(snap.nodes.len());
    for n in &snap.nodes {
        let Some(name) = n.metadata.name.as_deref() else {
            continue;
        };
        let model_node = match convert::node(n) {
            Ok(m) => m,
            Err(e) => {
                problems.skipped.push(e);
                continue;
            }
        };
        let bound = by_node.remove(name).unwrap_or_default();
        let mut pods = Vec::with_capacity(bound.len());
        let mut flags = Vec::with_capacity(bound.len());
        let mut overhead = Res::ZERO;
        for p in bound {
            let mp = match convert::pod(p) {
                Ok(mp) => mp,
                Err(e) => {
                    problems.skipped.push(e);
                    continue;
                }
            };
            if is_daemonset_pod(p) || is_mirror_pod(p) {
                overhead = overhead.plus(&Res::from_list(&mp.requests()).0);
            } else {
                pods.push(mp);
                flags.push(PodFlags {
                    busy: is_busy(p),
                    terminating: p.metadata.deletion_timestamp.is_some(),
                });
            }
        }
        let mut en = ExistingNode::from_node(&model_node, pods);
        en.daemon_overhead = overhead;
        en.price = node_price(catalog, &en.labels);
        en.created_ms = ms(&n.metadata.creation_timestamp).unwrap_or(0);
        let disrupted_taint = has_disrupted_taint(n);
        let node_deleting = n.metadata.deletion_timestamp.is_some();
        let mut info = NodeInfo {
            disrupted_taint,
            deleting: node_deleting,
            pods: flags,
            ..Default::default()
        };
        match claim_for(n, &snap.claims) {
            Some(c) => {
                let cname = c.metadata.name.clone().unwrap_or_default();
                if let Some(c) = c.metadata.name.as_deref() {
                    claimed.insert(c);
                }
                let claim_deleting = c.metadata.deletion_timestamp.is_some();
                let initialized = claim_initialized(c);
                if let Some(t) = ms(&c.metadata.creation_timestamp) {
                    en.created_ms = t;
                }
                if en.nodepool_hash.is_none() {
                    en.nodepool_hash = c
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(ANNOTATION_NODEPOOL_HASH))
                        .cloned();
                }
                en.in_flight = !initialized && !claim_deleting;
                if en.in_flight {
                    // Startup and ephemeral taints go away by themselves: plan as if they
                    // were gone (Karpenter does the same), or every booting node would look
                    // unusable and capacity would be launched again.
                    let startup = startup_taint_keys(c);
                    en.taints.retain(|t| {
                        !EPHEMERAL_TAINTS.contains(&t.key.as_str()) && !startup.contains(&t.key)
                    });
                }
                info.claim = Some(cname);
                info.initialized = initialized;
                info.deleting |= claim_deleting;
            }
            None => {
                // Not kedge's: capacity for the simulation, never a candidate.
                en.labels.remove(LABEL_NODEPOOL);
                info.initialized = crate::provider::kwok::node_ready(n);
            }
        }
        en.unschedulable |= disrupted_taint || info.deleting;
        en.last_pod_event_ms = tracker.last_event(name).unwrap_or(0).max(en.created_ms);
        cluster.push_node(en, info);
    }
    // Launched claims whose node has not registered yet: capacity on its way.
    let registered: HashSet<&str> = snap
        .nodes
        .iter()
        .filter_map(|n| n.spec.as_ref().and_then(|s| s.provider_id.as_deref()))
        .collect();
    let names: HashSet<&str> = snap
        .nodes
        .iter()
        .filter_map(|n| n.metadata.name.as_deref())
        .collect();
    for c in &snap.claims {
        let Some(cname) = c.metadata.name.as_deref() else {
            continue;
        };
        if claimed.contains(cname) || c.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let st = c.status.as_ref();
        let has_node = st
            .and_then(|s| s.provider_id.as_deref())
            .is_some_and(|p| registered.contains(p))
            || st
                .and_then(|s| s.node_name.as_deref())
                .is_some_and(|n| names.contains(n));
        if has_node {
            continue;
        }
        if let Some(en) = in_flight_node(c, catalog) {
            cluster.push_node(
                en,
                NodeInfo {
                    claim: Some(cname.to_string()),
                    ..Default::default()
                },
            );
        }
    }
    for p in &snap.pods {
        if !is_provisionable(p) {
            continue;
        }
        match convert::pod(p) {
            Ok(mp) => cluster.pending.push(mp),
            Err(e) => problems.skipped.push(e),
        }
    }
    (cluster, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// 2026-11-28T12:00:00Z
    const T0: u64 = 1_795_867_200_000;

    fn rfc3339(ms: u64) -> String {
        k8s_openapi::jiff::Timestamp::from_millisecond(ms as i64)
            .unwrap()
            .to_string()
    }

    fn catalog() -> Catalog {
        Catalog::aws()
    }

    fn node(name: &str, instance_type: &str, taints: Value, labels: Value) -> Arc<Node> {
        let mut l = json!({
            "karpenter.sh/nodepool": "general",
            "node.kubernetes.io/instance-type": instance_type,
            "topology.kubernetes.io/zone": "us-east-1a",
            "karpenter.sh/capacity-type": "on-demand",
            "kubernetes.io/hostname": name,
        });
        if let (Value::Object(a), Value::Object(b)) = (&mut l, labels) {
            a.extend(b);
        }
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": l,
                             "creationTimestamp": rfc3339(T0 - 600_000)},
                "spec": {"providerID": format!("kwok://{name}"), "taints": taints},
                "status": {"capacity": {"cpu": "4", "memory": "16Gi", "pods": "58"},
                           "allocatable": {"cpu": "3920m", "memory": "14Gi", "pods": "58"},
                           "conditions": [{"type": "Ready", "status": "True"}]},
            }))
            .unwrap(),
        )
    }

    fn claim(
        name: &str,
        node: Option<&str>,
        initialized: bool,
        extra_spec: Value,
    ) -> Arc<NodeClaim> {
        let mut spec = json!({
            "requirements": [{"key": LABEL_INSTANCE_TYPE, "operator": "In", "values": ["m5.xlarge", "m5.2xlarge"]}],
            "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
        });
        if let (Value::Object(a), Value::Object(b)) = (&mut spec, extra_spec) {
            a.extend(b);
        }
        let status = match node {
            Some(n) => json!({"nodeName": n, "providerID": format!("kwok://{n}"),
                "conditions": [{"type": "Initialized",
                                "status": if initialized { "True" } else { "Unknown" }}]}),
            None => json!({}),
        };
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {LABEL_NODEPOOL: "general"},
                             "creationTimestamp": rfc3339(T0 - 300_000)},
                "spec": spec,
                "status": status,
            }))
            .unwrap(),
        )
    }

    fn pod(name: &str, node: Option<&str>, cpu: &str, meta: Value) -> Arc<Pod> {
        let mut m = json!({"name": name, "namespace": "work", "uid": format!("uid-{name}"),
                           "creationTimestamp": rfc3339(T0 - 600_000)});
        if let (Value::Object(a), Value::Object(b)) = (&mut m, meta) {
            a.extend(b);
        }
        let status = match node {
            Some(_) => json!({"phase": "Running"}),
            None => json!({"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}),
        };
        Arc::new(
            serde_json::from_value(json!({
                "metadata": m,
                "spec": {"nodeName": node, "containers": [{"name": "c",
                    "resources": {"requests": {"cpu": cpu, "memory": "128Mi"}}}]},
                "status": status,
            }))
            .unwrap(),
        )
    }

    fn pool() -> Arc<NodePool> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": "general", "uid": "uid-general"},
                "spec": {"template": {"spec": {
                    "requirements": [{"key": LABEL_INSTANCE_TYPE, "operator": "In", "values": ["m5.xlarge", "m5.2xlarge"]}],
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"}}}},
            }))
            .unwrap(),
        )
    }

    #[test]
    fn provisionable_pods() {
        assert!(is_provisionable(&pod("a", None, "1", json!({}))));
        assert!(!is_provisionable(&pod("b", Some("n1"), "1", json!({}))));
        let mut fresh = (*pod("c", None, "1", json!({}))).clone();
        fresh.status.as_mut().unwrap().conditions = None;
        assert!(!is_provisionable(&fresh), "kube-scheduler has not tried it");
        let deleting = pod("d", None, "1", json!({"deletionTimestamp": rfc3339(T0)}));
        assert!(!is_provisionable(&deleting));
        let ds = pod(
            "e",
            None,
            "1",
            json!({"ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "x", "uid": "u"}]}),
        );
        assert!(!is_provisionable(&ds));
    }

    #[test]
    fn one_conversion_for_provisioning_and_disruption() {
        let ds = json!({"ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": "u"}]});
        let snap = Snapshot {
            nodepools: vec![pool()],
            nodes: vec![
                node("n1", "m5.xlarge", json!([]), json!({})),
                // Registered, not initialized: in flight, planned without its boot taints.
                node(
                    "n2",
                    "m5.xlarge",
                    json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
                           {"key": "example.com/cni", "effect": "NoSchedule"},
                           {"key": "dedicated", "value": "a", "effect": "NoSchedule"}]),
                    json!({}),
                ),
                // No claim: not kedge's.
                node(
                    "foreign",
                    "m5.large",
                    json!([{"key": DISRUPTED_TAINT_KEY, "effect": "NoSchedule"}]),
                    json!({}),
                ),
            ],
            claims: vec![
                claim("c1", Some("n1"), true, json!({})),
                claim(
                    "c2",
                    Some("n2"),
                    false,
                    json!({"startupTaints": [{"key": "example.com/cni", "effect": "NoSchedule"}]}),
                ),
                // Launched, no node yet.
                claim("c3", None, false, json!({})),
                // Being deleted before its node registered: no capacity to count on.
                Arc::new({
                    let mut c = (*claim("c4", None, false, json!({}))).clone();
                    c.metadata.deletion_timestamp =
                        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                            k8s_openapi::jiff::Timestamp::from_millisecond(T0 as i64).unwrap(),
                        ));
                    c
                }),
            ],
            pods: vec![
                pod(
                    "web-1",
                    Some("n1"),
                    "500m",
                    json!({"annotations": {BUSY_ANNOTATION: "true"}}),
                ),
                pod(
                    "web-2",
                    Some("n1"),
                    "500m",
                    json!({"deletionTimestamp": rfc3339(T0)}),
                ),
                pod("agent-n1", Some("n1"), "100m", ds),
                pod(
                    "etcd-n1",
                    Some("n1"),
                    "200m",
                    json!({"annotations": {MIRROR_ANNOTATION: "x"}}),
                ),
                pod("pending", None, "1", json!({})),
            ],
            ..Default::default()
        };
        let mut tracker = PodTracker::default();
        tracker.observe(&snap.pods, Timestamp(T0));
        let (c, problems) = build(&catalog(), &snap, &tracker, true);
        assert_eq!(problems, Problems::default());
        let names: Vec<&str> = c.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["n1", "n2", "foreign", "c3"]);

        let (n1, i1) = (&c.nodes[0], &c.info[0]);
        let keys: Vec<String> = n1.pods.iter().map(engine::pod_key).collect();
        assert_eq!(
            keys,
            ["work/web-1", "work/web-2"],
            "DaemonSet and mirror pods stay"
        );
        assert_eq!(n1.daemon_overhead.cpu, 300, "but count as overhead");
        assert_eq!(
            i1.pods,
            [
                PodFlags {
                    busy: true,
                    terminating: false
                },
                PodFlags {
                    busy: false,
                    terminating: true
                }
            ]
        );
        assert_eq!(i1.claim.as_deref(), Some("c1"));
        assert!(i1.initialized && !n1.in_flight && !n1.unschedulable);
        let price = catalog()
            .get("m5.xlarge")
            .unwrap()
            .offerings
            .iter()
            .find(|o| &*o.zone == "us-east-1a" && &*o.capacity_type == "on-demand")
            .unwrap()
            .price;
        assert_eq!(n1.price, price);
        assert_eq!(n1.created_ms, T0 - 300_000, "the claim's creation");
        assert_eq!(n1.last_pod_event_ms, T0 - 300_000, "bind times are older");

        let n2 = &c.nodes[1];
        assert!(n2.in_flight && !c.info[1].initialized);
        let taints: Vec<&str> = n2.taints.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(
            taints,
            ["dedicated"],
            "boot and startup taints planned away"
        );

        let (f, fi) = (&c.nodes[2], &c.info[2]);
        assert_eq!(
            f.nodepool(),
            None,
            "a node without a claim is never a candidate"
        );
        assert!(fi.claim.is_none() && fi.disrupted_taint && f.unschedulable);

        let (c3, i3) = (&c.nodes[3], &c.info[3]);
        assert!(c3.in_flight);
        assert_eq!(i3.claim.as_deref(), Some("c3"));
        assert_eq!(
            c3.allocatable,
            catalog().get("m5.xlarge").unwrap().allocatable,
            "the cheapest type it may launch as"
        );
        assert!(c3.price > 0.0);

        assert_eq!(c.pending.len(), 1);
        assert_eq!(engine::pod_key(&c.pending[0]), "work/pending");
        assert!(c.scaling_out());

        // Without pods: the nodes are there (NodePool usage), no bound pod is converted.
        let (light, _) = build(&catalog(), &snap, &tracker, false);
        assert_eq!(light.nodes.len(), 4);
        assert!(light.nodes.iter().all(|n| n.pods.is_empty()));
        assert_eq!(light.pending.len(), 1);
    }

    #[test]
    fn pod_events_are_tracked_between_steps() {
        let mut t = PodTracker::default();
        let a = pod("a", Some("n1"), "1", json!({}));
        t.observe(std::slice::from_ref(&a), Timestamp(T0));
        assert_eq!(
            t.last_event("n1"),
            Some(T0 - 600_000),
            "a's creation (bind time)"
        );
        t.observe(std::slice::from_ref(&a), Timestamp(T0 + 1_000));
        assert_eq!(t.last_event("n1"), Some(T0 - 600_000), "nothing changed");
        let b = pod("b", Some("n2"), "1", json!({}));
        t.observe(&[a.clone(), b], Timestamp(T0 + 2_000));
        assert_eq!(t.last_event("n2"), Some(T0 + 2_000), "b arrived on n2");
        let a_going = pod(
            "a",
            Some("n1"),
            "1",
            json!({"deletionTimestamp": rfc3339(T0)}),
        );
        t.observe(&[a_going], Timestamp(T0 + 3_000));
        assert_eq!(t.last_event("n1"), Some(T0 + 3_000), "a is terminating");
        assert_eq!(t.last_event("n2"), Some(T0 + 3_000), "b left n2");
    }

    #[test]
    fn pool_capacity_and_pending_pods_are_seen_without_converting() {
        let mut snap = Snapshot {
            nodepools: vec![pool()],
            nodes: vec![node("n1", "m5.xlarge", json!([]), json!({}))],
            ..Default::default()
        };
        assert!(snap.any_pool_capacity());
        assert!(!snap.any_pending());
        snap.nodepools.clear();
        assert!(!snap.any_pool_capacity(), "its NodePool is gone");
        snap.pods.push(pod("p", None, "1", json!({})));
        assert!(snap.any_pending());
    }
}
