//! The cluster as one step observes it: one conversion per substrate, in the provision core's
//! types, plus what the engine needs besides them (claims, busy consumers, pods already going).
//! Like Karpenter's `state.Cluster`, it is built once and used by provisioning and disruption
//! alike, so the two never see different prices, namespaces or pod sets.

use std::hash::{Hash, Hasher};

use model::karpenter::NodePool;
use model::kube::{DaemonSet, Pod, PodDisruptionBudget};
use provision::scheduler::ExistingNode;

/// What a substrate observed. Build it with [`Cluster::push_node`] so `nodes` and `info` stay
/// aligned.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    /// Valid NodePools.
    pub nodepools: Vec<NodePool>,
    pub daemonsets: Vec<DaemonSet>,
    pub pdbs: Vec<PodDisruptionBudget>,
    /// Every node, then every launched claim that has no Ready node yet (`in_flight`), as the
    /// provision core sees them: labels, taints, capacity, movable pods (DaemonSet and mirror
    /// pods only as overhead), price, creation and last pod event times.
    pub nodes: Vec<ExistingNode>,
    /// One per `nodes` entry.
    pub info: Vec<NodeInfo>,
    /// Pods kube-scheduler could not place (unbound, not going away).
    pub pending: Vec<Pod>,
}

/// What the engine knows of a node besides the core's view.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeInfo {
    /// The NodeClaim behind the node (a NodePool's node); `None` for nodes kedge does not
    /// manage.
    pub claim: Option<String>,
    /// The claim's node registered and initialized (Ready, startup taints gone).
    pub initialized: bool,
    /// The claim (or node) is being deleted.
    pub deleting: bool,
    /// The node carries the `karpenter.sh/disrupted:NoSchedule` taint.
    pub disrupted_taint: bool,
    /// One per pod of the core's node (`ExistingNode::pods`), in the same order.
    pub pods: Vec<PodFlags>,
}

/// A bound pod's state beyond its spec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PodFlags {
    /// A consumer working on a message.
    pub busy: bool,
    /// Already being deleted (evicted, scaled in): not evicted again.
    pub terminating: bool,
}

/// `namespace/name`, the one pod key every substrate and the core use.
pub fn pod_key(p: &Pod) -> String {
    format!("{}/{}", p.metadata.ns(), p.metadata.name)
}

impl Cluster {
    pub fn push_node(&mut self, node: ExistingNode, info: NodeInfo) {
        debug_assert_eq!(node.pods.len(), info.pods.len());
        self.nodes.push(node);
        self.info.push(info);
    }

    /// The index of node `name`.
    pub fn node(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// The index of the node whose claim is `claim`.
    pub fn claim(&self, claim: &str) -> Option<usize> {
        self.info
            .iter()
            .position(|i| i.claim.as_deref() == Some(claim))
    }

    /// Something is on its way: pods wait for capacity, or claims are launching.
    pub fn scaling_out(&self) -> bool {
        !self.pending.is_empty() || self.nodes.iter().any(|n| n.in_flight)
    }

    /// Live pods (pending or bound, not terminating) of `template`'s workload: same
    /// namespace, every template label present with the same value.
    pub fn live_pods_like(&self, template: &Pod) -> u32 {
        let ns = template.metadata.ns();
        let labels = &template.metadata.labels;
        let matches = |p: &Pod| {
            p.metadata.ns() == ns
                && labels
                    .iter()
                    .all(|(k, v)| p.metadata.labels.get(k) == Some(v))
        };
        let bound = self
            .nodes
            .iter()
            .zip(&self.info)
            .flat_map(|(n, i)| n.pods.iter().zip(&i.pods))
            .filter(|(p, f)| !f.terminating && matches(p))
            .count();
        let pending = self.pending.iter().filter(|p| matches(p)).count();
        (bound + pending) as u32
    }

    /// A hash of what consolidation depends on at `now_ms` (nodes, their state, where pods
    /// are, which nodes are past their NodePool's `consolidateAfter`): equal fingerprints mean
    /// a pass that found nothing would find nothing again.
    pub fn fingerprint(&self, now_ms: u64) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.nodepools.len().hash(&mut h);
        for np in &self.nodepools {
            np.template_hash().hash(&mut h);
        }
        self.pending.len().hash(&mut h);
        for (n, i) in self.nodes.iter().zip(&self.info) {
            n.name.hash(&mut h);
            n.in_flight.hash(&mut h);
            n.unschedulable.hash(&mut h);
            i.deleting.hash(&mut h);
            let after = n.nodepool().and_then(|p| {
                self.nodepools
                    .iter()
                    .find(|np| np.name() == p)
                    .and_then(|np| np.spec.disruption.consolidate_after.or_never().millis())
            });
            after
                .is_some_and(|ms| now_ms >= n.last_pod_event_ms.saturating_add(ms))
                .hash(&mut h);
            for p in &n.pods {
                p.metadata.name.hash(&mut h);
            }
        }
        h.finish()
    }
}
