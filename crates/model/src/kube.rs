//! The scheduling-relevant part of Kubernetes objects: Pods, Nodes, taints, tolerations,
//! node/pod affinity, topology spread constraints, PodDisruptionBudgets and DaemonSets.
//!
//! Field names follow the Kubernetes API (camelCase) so real manifests deserialize. Unlike the
//! Karpenter kinds, these do not deny unknown fields: a real PodSpec carries dozens of fields
//! (volumes, probes, ...) that do not affect where a pod can run, and users paste real pods.

use serde::{Deserialize, Serialize};

use crate::map::Map;
use crate::quantity::Quantity;

/// Label or annotation map. Ordered so that every derived decision is deterministic; a
/// sorted list ([`Map`]), as these hold a few entries each.
pub type Labels = Map<String>;
/// Resource name (`cpu`, `memory`, `pods`, `nvidia.com/gpu`, ...) to amount.
pub type ResourceList = Map<Quantity>;

/// Annotation (pod or node) that blocks voluntary disruption by Karpenter.
pub const DO_NOT_DISRUPT: &str = "karpenter.sh/do-not-disrupt";
/// Pod annotation read by the ReplicaSet controller and by Karpenter's eviction cost.
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

pub const RESOURCE_CPU: &str = "cpu";
pub const RESOURCE_MEMORY: &str = "memory";
pub const RESOURCE_PODS: &str = "pods";

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "crate::map::Map::is_empty")]
    pub labels: Labels,
    #[serde(default, skip_serializing_if = "crate::map::Map::is_empty")]
    pub annotations: Labels,
}

impl ObjectMeta {
    pub fn named(name: impl Into<String>) -> Self {
        ObjectMeta {
            name: name.into(),
            ..Default::default()
        }
    }
    /// The namespace, `default` when unset (as the API server defaults it).
    pub fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }
}

// ---------------------------------------------------------------------------------------------
// Taints and tolerations
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum TaintEffect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Taint {
    pub key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    pub effect: TaintEffect,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_added: Option<String>,
}

impl Taint {
    pub fn new(key: &str, value: &str, effect: TaintEffect) -> Self {
        Taint {
            key: key.into(),
            value: value.into(),
            effect,
            time_added: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum TolerationOperator {
    #[default]
    Equal,
    Exists,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Toleration {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    #[serde(default)]
    pub operator: TolerationOperator,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<TaintEffect>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toleration_seconds: Option<i64>,
}

impl Toleration {
    /// Kubernetes' `Toleration.ToleratesTaint`: an empty key with `Exists` tolerates
    /// everything; an unset effect matches every effect.
    pub fn tolerates(&self, t: &Taint) -> bool {
        if let Some(e) = self.effect
            && e != t.effect
        {
            return false;
        }
        if !self.key.is_empty() && self.key != t.key {
            return false;
        }
        match self.operator {
            TolerationOperator::Exists => true,
            TolerationOperator::Equal => self.key == t.key && self.value == t.value,
        }
    }
}

/// True when every `NoSchedule`/`NoExecute` taint is tolerated. `PreferNoSchedule` is a
/// preference and never blocks scheduling (Karpenter treats it the same way).
pub fn tolerates_all(tolerations: &[Toleration], taints: &[Taint]) -> bool {
    taints
        .iter()
        .filter(|t| t.effect != TaintEffect::PreferNoSchedule)
        .all(|t| tolerations.iter().any(|tol| tol.tolerates(t)))
}

// ---------------------------------------------------------------------------------------------
// Node selectors and affinity
// ---------------------------------------------------------------------------------------------

/// Node selector operators. `Gte`/`Lte` exist only in Karpenter's NodePool requirements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
    Gte,
    Lte,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSelectorRequirement {
    pub key: String,
    pub operator: Operator,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

impl NodeSelectorRequirement {
    pub fn new(key: &str, operator: Operator, values: &[&str]) -> Self {
        NodeSelectorRequirement {
            key: key.into(),
            operator,
            values: values.iter().map(|s| s.to_string()).collect(),
        }
    }
    /// Does a node with these labels satisfy the requirement?
    pub fn matches(&self, labels: &Labels) -> bool {
        let v = labels.get(&self.key);
        let num = |s: &str| s.parse::<i64>().ok();
        let bound = || self.values.first().and_then(|s| num(s));
        match self.operator {
            Operator::In => v.is_some_and(|v| self.values.contains(v)),
            Operator::NotIn => v.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => v.is_some(),
            Operator::DoesNotExist => v.is_none(),
            Operator::Gt => {
                matches!((v.and_then(|v| num(v)), bound()), (Some(a), Some(b)) if a > b)
            }
            Operator::Lt => {
                matches!((v.and_then(|v| num(v)), bound()), (Some(a), Some(b)) if a < b)
            }
            Operator::Gte => {
                matches!((v.and_then(|v| num(v)), bound()), (Some(a), Some(b)) if a >= b)
            }
            Operator::Lte => {
                matches!((v.and_then(|v| num(v)), bound()), (Some(a), Some(b)) if a <= b)
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSelectorTerm {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<NodeSelectorRequirement>,
    /// Only `metadata.name` exists upstream; kept so real manifests parse, ignored for
    /// provisioning (a not-yet-created node has no name), as Karpenter does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_fields: Vec<NodeSelectorRequirement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSelector {
    #[serde(default)]
    pub node_selector_terms: Vec<NodeSelectorTerm>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreferredSchedulingTerm {
    pub weight: i32,
    pub preference: NodeSelectorTerm,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeAffinity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_during_scheduling_ignored_during_execution: Option<NodeSelector>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preferred_during_scheduling_ignored_during_execution: Vec<PreferredSchedulingTerm>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LabelSelectorOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelectorRequirement {
    pub key: String,
    pub operator: LabelSelectorOperator,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default, skip_serializing_if = "crate::map::Map::is_empty")]
    pub match_labels: Labels,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

impl LabelSelector {
    pub fn match_labels(pairs: &[(&str, &str)]) -> Self {
        LabelSelector {
            match_labels: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            match_expressions: vec![],
        }
    }
    /// Kubernetes semantics: every clause must hold; an empty selector matches everything.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| {
                let v = labels.get(&r.key);
                match r.operator {
                    LabelSelectorOperator::In => v.is_some_and(|v| r.values.contains(v)),
                    LabelSelectorOperator::NotIn => v.is_none_or(|v| !r.values.contains(v)),
                    LabelSelectorOperator::Exists => v.is_some(),
                    LabelSelectorOperator::DoesNotExist => v.is_none(),
                }
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodAffinityTerm {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
    /// Empty means "the pod's own namespace".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    pub topology_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightedPodAffinityTerm {
    pub weight: i32,
    pub pod_affinity_term: PodAffinityTerm,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodAffinity {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_during_scheduling_ignored_during_execution: Vec<PodAffinityTerm>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preferred_during_scheduling_ignored_during_execution: Vec<WeightedPodAffinityTerm>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Affinity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_affinity: Option<NodeAffinity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_affinity: Option<PodAffinity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_anti_affinity: Option<PodAffinity>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum WhenUnsatisfiable {
    #[default]
    DoNotSchedule,
    ScheduleAnyway,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopologySpreadConstraint {
    pub max_skew: i32,
    pub topology_key: String,
    #[serde(default)]
    pub when_unsatisfiable: WhenUnsatisfiable,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_domains: Option<i32>,
}

// ---------------------------------------------------------------------------------------------
// Pods
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRequirements {
    #[serde(default, skip_serializing_if = "crate::map::Map::is_empty")]
    pub requests: ResourceList,
    #[serde(default, skip_serializing_if = "crate::map::Map::is_empty")]
    pub limits: ResourceList,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub resources: ResourceRequirements,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<Container>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<Container>,
    #[serde(default, skip_serializing_if = "crate::map::Map::is_empty")]
    pub overhead: ResourceList,
    #[serde(default, skip_serializing_if = "crate::map::Map::is_empty")]
    pub node_selector: Labels,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: PodSpec,
}

impl Pod {
    /// A pod with one container requesting `cpu` and `memory` (test and benchmark helper).
    pub fn with_requests(name: &str, cpu: Quantity, memory: Quantity) -> Self {
        let mut requests = ResourceList::new();
        requests.insert(RESOURCE_CPU.into(), cpu);
        requests.insert(RESOURCE_MEMORY.into(), memory);
        Pod {
            metadata: ObjectMeta::named(name),
            spec: PodSpec {
                containers: vec![Container {
                    name: "main".into(),
                    resources: ResourceRequirements {
                        requests,
                        limits: ResourceList::new(),
                    },
                }],
                ..Default::default()
            },
        }
    }

    /// Effective requests as the kube-scheduler computes them: max(sum of containers, each init
    /// container) plus pod overhead, plus one `pods` slot.
    pub fn requests(&self) -> ResourceList {
        let mut sum = ResourceList::new();
        for c in &self.spec.containers {
            for (k, v) in effective_container_requests(c) {
                *sum.entry(k).or_default() += v;
            }
        }
        for c in &self.spec.init_containers {
            for (k, v) in effective_container_requests(c) {
                let e = sum.entry(k).or_default();
                if v > *e {
                    *e = v;
                }
            }
        }
        for (k, v) in &self.spec.overhead {
            *sum.entry(k.clone()).or_default() += *v;
        }
        *sum.entry(RESOURCE_PODS.into()).or_default() += Quantity::from_units(1);
        sum
    }

    pub fn do_not_disrupt(&self) -> bool {
        self.metadata
            .annotations
            .get(DO_NOT_DISRUPT)
            .is_some_and(|v| v == "true")
    }

    pub fn priority(&self) -> i32 {
        self.spec.priority.unwrap_or(0)
    }

    /// Karpenter's eviction cost (`disruption.EvictionCost`): 1, adjusted by the
    /// pod-deletion-cost annotation and priority, clamped to [-10, 10].
    pub fn eviction_cost(&self) -> f64 {
        let mut cost = 1.0;
        if let Some(v) = self.metadata.annotations.get(POD_DELETION_COST)
            && let Ok(d) = v.parse::<f64>()
        {
            cost += d / 2f64.powi(27);
        }
        cost += f64::from(self.priority()) / 2f64.powi(25);
        cost.clamp(-10.0, 10.0)
    }

    /// Required node affinity terms (ORed); empty means "no constraint".
    pub fn required_node_terms(&self) -> &[NodeSelectorTerm] {
        self.spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|s| s.node_selector_terms.as_slice())
            .unwrap_or(&[])
    }
}

/// A container's requests, defaulted from limits where only the limit is set (as the API
/// server does).
fn effective_container_requests(c: &Container) -> ResourceList {
    let mut r = c.resources.requests.clone();
    for (k, v) in &c.resources.limits {
        r.entry(k.clone()).or_insert(*v);
    }
    r
}

// ---------------------------------------------------------------------------------------------
// Nodes, PDBs, DaemonSets
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
    #[serde(default)]
    pub unschedulable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    #[serde(default)]
    pub capacity: ResourceList,
    #[serde(default)]
    pub allocatable: ResourceList,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: NodeSpec,
    #[serde(default)]
    pub status: NodeStatus,
}

impl Node {
    pub fn do_not_disrupt(&self) -> bool {
        self.metadata
            .annotations
            .get(DO_NOT_DISRUPT)
            .is_some_and(|v| v == "true")
    }
}

/// `int` or `"N%"`, as in `minAvailable` / `maxUnavailable`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    Int(i64),
    String(String),
}

impl IntOrString {
    /// Resolve against `total`; percentages round up (as the disruption controller does for
    /// minAvailable/maxUnavailable). `None` when the string is neither `N` nor `N%`.
    pub fn resolve(&self, total: i64) -> Option<i64> {
        match self {
            IntOrString::Int(i) => Some(*i),
            IntOrString::String(s) => match s.strip_suffix('%') {
                Some(p) => {
                    let p: i64 = p.trim().parse().ok()?;
                    Some((p * total + 99) / 100)
                }
                None => s.trim().parse().ok(),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodDisruptionBudgetSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodDisruptionBudget {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: PodDisruptionBudgetSpec,
}

impl PodDisruptionBudget {
    /// Does this budget cover `pod`? (same namespace, selector matches; a missing selector
    /// matches nothing, as in policy/v1).
    pub fn covers(&self, pod: &Pod) -> bool {
        self.metadata.ns() == pod.metadata.ns()
            && self
                .spec
                .selector
                .as_ref()
                .is_some_and(|s| s.matches(&pod.metadata.labels))
    }

    /// How many of `healthy` covered pods may be evicted now (`status.disruptionsAllowed`).
    pub fn disruptions_allowed(&self, healthy: i64) -> i64 {
        let allowed = if let Some(m) = &self.spec.max_unavailable {
            // Unhealthy pods are not modelled: every covered pod is healthy here.
            m.resolve(healthy).unwrap_or(0)
        } else if let Some(m) = &self.spec.min_available {
            healthy - m.resolve(healthy).unwrap_or(healthy)
        } else {
            // No field set: the API rejects this; treat as "block everything" (fail closed).
            0
        };
        allowed.max(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplateSpec {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: PodSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DaemonSetSpec {
    #[serde(default)]
    pub template: PodTemplateSpec,
}

/// A DaemonSet: one pod of its template lands on every node whose taints it tolerates and
/// whose labels it selects, so its requests are overhead on every new node (Karpenter adds
/// them before packing any pending pod).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DaemonSet {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: DaemonSetSpec,
}

impl DaemonSet {
    /// The pod a node would run for this DaemonSet.
    pub fn pod(&self) -> Pod {
        Pod {
            metadata: self.spec.template.metadata.clone(),
            spec: self.spec.template.spec.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn toleration_semantics() {
        let t = Taint::new("gpu", "true", TaintEffect::NoSchedule);
        let exists_all = Toleration {
            operator: TolerationOperator::Exists,
            ..Default::default()
        };
        assert!(exists_all.tolerates(&t));
        let eq = Toleration {
            key: "gpu".into(),
            value: "true".into(),
            ..Default::default()
        };
        assert!(eq.tolerates(&t));
        let wrong = Toleration {
            key: "gpu".into(),
            value: "false".into(),
            ..Default::default()
        };
        assert!(!wrong.tolerates(&t));
        let wrong_effect = Toleration {
            key: "gpu".into(),
            operator: TolerationOperator::Exists,
            effect: Some(TaintEffect::NoExecute),
            ..Default::default()
        };
        assert!(!wrong_effect.tolerates(&t));
        let soft = Taint::new("x", "", TaintEffect::PreferNoSchedule);
        assert!(tolerates_all(&[], &[soft]));
        assert!(!tolerates_all(&[], &[t]));
    }

    #[test]
    fn selector_requirement_operators() {
        let l = labels(&[("zone", "a"), ("gen", "5")]);
        assert!(NodeSelectorRequirement::new("zone", Operator::In, &["a", "b"]).matches(&l));
        assert!(!NodeSelectorRequirement::new("zone", Operator::NotIn, &["a"]).matches(&l));
        assert!(NodeSelectorRequirement::new("x", Operator::NotIn, &["a"]).matches(&l));
        assert!(NodeSelectorRequirement::new("gen", Operator::Gt, &["4"]).matches(&l));
        assert!(!NodeSelectorRequirement::new("gen", Operator::Gt, &["5"]).matches(&l));
        assert!(NodeSelectorRequirement::new("gen", Operator::Gte, &["5"]).matches(&l));
        assert!(NodeSelectorRequirement::new("gen", Operator::Lte, &["5"]).matches(&l));
        assert!(!NodeSelectorRequirement::new("gen", Operator::Lt, &["5"]).matches(&l));
        assert!(NodeSelectorRequirement::new("x", Operator::DoesNotExist, &[]).matches(&l));
    }

    #[test]
    fn pod_requests_follow_scheduler_rules() {
        let yaml = r#"
metadata: {name: p, annotations: {karpenter.sh/do-not-disrupt: "true"}}
spec:
  containers:
  - name: a
    resources: {requests: {cpu: 500m, memory: 1Gi}}
  - name: b
    resources: {limits: {cpu: "1", memory: 512Mi}}
  initContainers:
  - name: init
    resources: {requests: {cpu: "2"}}
  overhead: {cpu: 100m}
"#;
        let pod: Pod = serde_yaml_ng::from_str(yaml).unwrap();
        let r = pod.requests();
        assert_eq!(r["cpu"], "2.1".parse().unwrap(), "init max, plus overhead");
        assert_eq!(
            r["memory"],
            "1536Mi".parse().unwrap(),
            "limit defaults the request"
        );
        assert_eq!(r["pods"], Quantity::from_units(1));
        assert!(pod.do_not_disrupt());
    }

    #[test]
    fn pdb_allowed_disruptions() {
        let mut pdb = PodDisruptionBudget::default();
        pdb.spec.min_available = Some(IntOrString::Int(2));
        assert_eq!(pdb.disruptions_allowed(3), 1);
        assert_eq!(pdb.disruptions_allowed(2), 0);
        pdb.spec.min_available = None;
        pdb.spec.max_unavailable = Some(IntOrString::String("50%".into()));
        assert_eq!(pdb.disruptions_allowed(3), 2, "percentages round up");
        pdb.spec.max_unavailable = None;
        assert_eq!(pdb.disruptions_allowed(5), 0, "empty PDB fails closed");
    }
}
