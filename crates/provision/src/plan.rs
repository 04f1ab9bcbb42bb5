//! Provisioning: pending pods (and replicas announced by the autoscaler) → NodeClaims to launch,
//! with the cost of the plan, its lower bound, and a one-line reason for every decision.
//!
//! Also the pending-pod batching window ([`Batcher`]): Karpenter waits until pods stop arriving
//! for `idle` (1 s) or `max` (10 s) has passed since the first, so one scale-out becomes one
//! decision instead of many small ones.

use std::collections::BTreeMap;
use std::time::Duration;

use clock::Timestamp;
use model::karpenter::{
    ANNOTATION_NODEPOOL_HASH, API_VERSION_V1, LABEL_NODEPOOL, NodeClaim, NodeClaimResources,
    NodeClaimSpec, NodeClaimStatus, NodePool, RequirementWithMinValues,
};
use model::kube::{DaemonSet, ObjectMeta, Pod};

use crate::catalog::Catalog;
use crate::requirements::Requirements;
use crate::resources::{GIB, Res};
use crate::scheduler::{ExistingNode, PodId, Scheduler, SolveOptions, Target};

/// "N more replicas of this pod template are about to be created": the joint-decision hook.
/// The autoscaler passes its scale-out here in the same step, so capacity is requested before
/// the pods exist (and turn Pending a few seconds later).
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaIntent {
    /// Who asked (e.g. `ScaledObject default/consumer`), for explanations.
    pub source: String,
    pub template: Pod,
    pub replicas: u32,
}

#[derive(Debug, Clone, Default)]
pub struct ProvisionInput {
    pub nodepools: Vec<NodePool>,
    pub daemonsets: Vec<DaemonSet>,
    /// Existing nodes, then in-flight NodeClaims (`in_flight: true`), with their pods.
    pub nodes: Vec<ExistingNode>,
    pub pending: Vec<Pod>,
    pub intents: Vec<ReplicaIntent>,
}

/// One instance type a NodeClaim may launch as, with its cheapest allowed offering.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceOption {
    pub instance_type: String,
    pub price: f64,
    pub zone: String,
    pub capacity_type: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedClaim {
    /// Deterministic placeholder name (`<nodepool>-<n>`); the launcher may rename.
    pub name: String,
    pub nodepool: String,
    pub pods: Vec<String>,
    /// How many of `pods` are announced replicas rather than pending pods.
    pub intent_pods: usize,
    /// Pod requests plus DaemonSet overhead.
    pub requests: Res,
    pub requirements: Requirements,
    /// Every instance type that fits, cheapest first. Launch takes the first available and
    /// falls back down the list on insufficient capacity.
    pub options: Vec<InstanceOption>,
    pub explanation: String,
}

impl PlannedClaim {
    /// The option to launch given offerings known to be unavailable (insufficient capacity).
    pub fn launch_choice(
        &self,
        unavailable: &dyn Fn(&InstanceOption) -> bool,
    ) -> Option<&InstanceOption> {
        self.options.iter().find(|o| !unavailable(o))
    }

    pub fn price(&self) -> f64 {
        self.options.first().map_or(0.0, |o| o.price)
    }

    /// The NodeClaim resource to create (karpenter.sh/v1), its requirements narrowed to the
    /// fitting instance types.
    pub fn to_nodeclaim(&self, pool: &NodePool) -> NodeClaim {
        let mut reqs: Vec<RequirementWithMinValues> = self
            .requirements
            .to_node_selector()
            .into_iter()
            .filter(|r| r.key != model::karpenter::LABEL_INSTANCE_TYPE)
            .map(|r| RequirementWithMinValues {
                key: r.key,
                operator: r.operator,
                values: r.values,
                min_values: None,
            })
            .collect();
        for r in &mut reqs {
            if let Some(src) = pool.requirements().iter().find(|p| p.key == r.key) {
                r.min_values = src.min_values;
            }
        }
        let mut types: Vec<String> = self
            .options
            .iter()
            .map(|o| o.instance_type.clone())
            .collect();
        types.dedup();
        reqs.push(RequirementWithMinValues {
            key: model::karpenter::LABEL_INSTANCE_TYPE.into(),
            operator: model::kube::Operator::In,
            values: types,
            min_values: None,
        });
        let t = &pool.spec.template;
        let mut labels = t.metadata.labels.clone();
        labels.insert(LABEL_NODEPOOL.into(), pool.name().into());
        let mut annotations = t.metadata.annotations.clone();
        annotations.insert(ANNOTATION_NODEPOOL_HASH.into(), pool.template_hash());
        NodeClaim {
            api_version: API_VERSION_V1.into(),
            kind: "NodeClaim".into(),
            metadata: ObjectMeta {
                name: self.name.clone(),
                namespace: None,
                labels,
                annotations,
            },
            spec: NodeClaimSpec {
                taints: t.spec.taints.clone(),
                startup_taints: t.spec.startup_taints.clone(),
                requirements: reqs,
                resources: NodeClaimResources {
                    requests: self.requests.to_list(),
                },
                node_class_ref: t.spec.node_class_ref.clone(),
                expire_after: t.spec.expire_after.clone(),
                termination_grace_period: t.spec.termination_grace_period.clone(),
            },
            status: NodeClaimStatus::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub claims: Vec<PlannedClaim>,
    /// (pod, node) for pods that fit existing or in-flight capacity.
    pub onto_existing: Vec<(String, String)>,
    /// (pod, reason).
    pub unschedulable: Vec<(String, String)>,
    /// USD/hour of the new NodeClaims (cheapest option each).
    pub cost_per_hour: f64,
    /// Fractional relaxation: the pods placed on new NodeClaims, priced at the cheapest
    /// $/resource any allowed offering has, on the binding resource. No plan can cost less.
    pub lower_bound_per_hour: f64,
    /// One line per decision.
    pub explanations: Vec<String>,
}

/// Plan capacity for `input.pending` plus `input.intents` on `catalog`.
pub fn plan(catalog: &Catalog, input: &ProvisionInput) -> Plan {
    // Borrowed: the nodes' pods are registered, not copied.
    let mut s = Scheduler::from_nodes(catalog, &input.nodepools, &input.daemonsets, &input.nodes);
    let mut ids: Vec<PodId> = Vec::with_capacity(input.pending.len());
    for p in &input.pending {
        ids.push(s.add_pod(p));
    }
    let mut intent_ids = Vec::new();
    for intent in &input.intents {
        for i in 0..intent.replicas {
            let mut p = intent.template.clone();
            let base = if p.metadata.name.is_empty() {
                "replica".to_string()
            } else {
                p.metadata.name.clone()
            };
            p.metadata.name = format!("{base}-intent-{i}");
            let id = s.add_pod(&p);
            ids.push(id);
            intent_ids.push(id);
        }
    }
    let mut st = s.initial_state();
    let sol = s.solve(&mut st, &ids, SolveOptions::default());
    s.attach(&mut st, &sol);

    let mut explanations = Vec::new();
    let mut onto_existing = Vec::new();
    let mut per_node: BTreeMap<usize, usize> = BTreeMap::new();
    for &(pid, t) in &sol.placements {
        if let Target::Existing(n) = t {
            onto_existing.push((s.pod_name(pid).to_string(), s.nodes[n].name.clone()));
            *per_node.entry(n).or_default() += 1;
        }
    }
    for (n, count) in &per_node {
        let node = &s.nodes[*n];
        let kind = if node.in_flight {
            "in-flight NodeClaim"
        } else {
            "existing node"
        };
        explanations.push(format!(
            "{count} pod(s) → {kind} {}: they fit its free capacity, no new node needed",
            node.name
        ));
    }

    let mut claims = Vec::new();
    let mut used_pools = Vec::new();
    let mut lb_demand = Res::ZERO;
    let mut per_pool_count: BTreeMap<String, usize> = BTreeMap::new();
    // Looked up per new claim (most passes launch none: no map of the whole catalog).
    let alloc_of = |name: &str| {
        catalog
            .types
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.allocatable)
    };
    for bin in &st.new {
        let pool = &s.pools[bin.pool];
        let name_pool = pool.pool.name().to_string();
        let idx = per_pool_count.entry(name_pool.clone()).or_default();
        let name = format!("{name_pool}-{idx}");
        *idx += 1;
        let options: Vec<InstanceOption> = s
            .priced_options(bin)
            .into_iter()
            .map(|(t, price, zone, ct)| InstanceOption {
                instance_type: catalog.types[t].name.clone(),
                price,
                zone,
                capacity_type: ct,
            })
            .collect();
        let pods: Vec<String> = bin
            .pods
            .iter()
            .map(|p| s.pod_name(*p).to_string())
            .collect();
        let intent_pods = bin.pods.iter().filter(|p| intent_ids.contains(p)).count();
        for p in &bin.pods {
            lb_demand = lb_demand.plus(&s.pod_requests(*p));
        }
        used_pools.push(bin.pool);
        let explanation = match options.first() {
            Some(o) => {
                let alloc = alloc_of(o.instance_type.as_str()).unwrap_or(Res::ZERO);
                let per_cpu = o.price / (bin.requests.cpu.max(1) as f64 / 1000.0);
                format!(
                    "new NodeClaim {name} (NodePool {name_pool}{}): {} pod(s){} fit no existing or in-flight node; {} in {} ({}) at ${:.4}/h is the cheapest of {} fitting types (uses {:.0}% cpu, {:.0}% memory; ${:.4} per requested vCPU)",
                    pool.pool
                        .spec
                        .weight
                        .map(|w| format!(", weight {w}"))
                        .unwrap_or_default(),
                    pods.len(),
                    if intent_pods > 0 {
                        format!(" ({intent_pods} announced replicas)")
                    } else {
                        String::new()
                    },
                    o.instance_type,
                    o.zone,
                    o.capacity_type,
                    o.price,
                    bin.types.len(),
                    100.0 * bin.requests.cpu as f64 / alloc.cpu.max(1) as f64,
                    100.0 * bin.requests.mem as f64 / alloc.mem.max(1) as f64,
                    per_cpu,
                )
            }
            None => format!("new NodeClaim {name}: no offering available"),
        };
        explanations.push(explanation.clone());
        claims.push(PlannedClaim {
            name,
            nodepool: name_pool,
            pods,
            intent_pods,
            requests: bin.requests,
            requirements: bin.reqs.clone(),
            options,
            explanation,
        });
    }
    trim_options_to_limits(&s, &st, &mut claims);
    let mut unschedulable = Vec::new();
    for (pid, reason) in &sol.failures {
        explanations.push(format!("pod {} stays pending: {reason}", s.pod_name(*pid)));
        unschedulable.push((s.pod_name(*pid).to_string(), reason.clone()));
    }
    for pid in &sol.relaxed {
        explanations.push(format!("pod {} placed after relaxing its preferences (preferred affinity / ScheduleAnyway spread)", s.pod_name(*pid)));
    }
    used_pools.sort_unstable();
    used_pools.dedup();
    let lower_bound_per_hour = lower_bound(&s, &used_pools, lb_demand);
    let cost_per_hour: f64 = claims.iter().map(|c| c.price()).sum();
    Plan {
        claims,
        onto_existing,
        unschedulable,
        cost_per_hour,
        lower_bound_per_hour,
        explanations,
    }
}

/// Launch may fall back from the cheapest option to pricier ones (insufficient capacity);
/// limits must hold whichever it takes. The simulation reserved each claim's cheapest type;
/// here each claim keeps only fallbacks whose extra capacity fits its share of the slack.
fn trim_options_to_limits(
    s: &Scheduler<'_>,
    st: &crate::scheduler::State,
    claims: &mut [PlannedClaim],
) {
    for (pi, p) in s.pools.iter().enumerate() {
        let idx: Vec<usize> = st
            .new
            .iter()
            .enumerate()
            .filter(|(_, b)| b.pool == pi)
            .map(|(i, _)| i)
            .collect();
        if idx.is_empty() || p.remaining == Res::new(i64::MAX, i64::MAX, i64::MAX) {
            continue;
        }
        let reserved = idx
            .iter()
            .fold(Res::ZERO, |a, &i| a.plus(&st.new[i].reserved_cap));
        let slack = p.remaining.minus(&reserved);
        let n = idx.len() as i64;
        let caps: std::collections::HashMap<&str, Res> = s
            .catalog
            .types
            .iter()
            .map(|t| (t.name.as_str(), t.capacity))
            .collect();
        let share = Res::new(slack.cpu / n, slack.mem / n, slack.pods / n);
        for &i in &idx {
            let limit = st.new[i].reserved_cap.plus(&share);
            claims[i].options.retain(|o| {
                caps.get(o.instance_type.as_str())
                    .is_some_and(|c| c.fits_in(&limit))
            });
        }
    }
}

/// max over cpu, memory, pods of demand × (cheapest $/allocatable unit among the pools' types).
fn lower_bound(s: &Scheduler<'_>, pools: &[usize], demand: Res) -> f64 {
    if demand.is_zero() {
        return 0.0;
    }
    let (mut cpu, mut mem, mut pods) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    for &pi in pools {
        let p = &s.pools[pi];
        for t in p.types.iter() {
            let it = &s.catalog.types[t];
            let Some(o) = it.cheapest_offering(&p.reqs) else {
                continue;
            };
            let a = it.allocatable;
            if a.cpu > 0 {
                cpu = cpu.min(o.price / (a.cpu as f64 / 1000.0));
            }
            if a.mem > 0 {
                mem = mem.min(o.price / (a.mem as f64 / GIB as f64));
            }
            if a.pods > 0 {
                pods = pods.min(o.price / a.pods as f64);
            }
        }
    }
    let f = |x: f64| if x.is_finite() { x } else { 0.0 };
    (demand.cpu as f64 / 1000.0 * f(cpu))
        .max(demand.mem as f64 / GIB as f64 * f(mem))
        .max(demand.pods as f64 * f(pods))
}

/// Karpenter's pending-pod batching: a batch closes when no new pod arrived for `idle`, or
/// `max` after its first pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batcher {
    pub idle: Duration,
    pub max: Duration,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
}

impl Default for Batcher {
    fn default() -> Self {
        Batcher::new(Duration::from_secs(1), Duration::from_secs(10))
    }
}

impl Batcher {
    pub fn new(idle: Duration, max: Duration) -> Self {
        Batcher {
            idle,
            max,
            first: None,
            last: None,
        }
    }
    /// A pending pod was seen at `now`.
    pub fn observe(&mut self, now: Timestamp) {
        self.first.get_or_insert(now);
        self.last = Some(now);
    }
    /// Should the batch be scheduled now?
    pub fn ready(&self, now: Timestamp) -> bool {
        match (self.first, self.last) {
            (Some(f), Some(l)) => now.since(l) >= self.idle || now.since(f) >= self.max,
            _ => false,
        }
    }
    /// When to look again (the earlier of the two deadlines), if a batch is open.
    pub fn deadline(&self) -> Option<Timestamp> {
        Some(self.last?.add(self.idle).min(self.first?.add(self.max)))
    }
    /// Start a new batch (after scheduling the current one).
    pub fn reset(&mut self) {
        self.first = None;
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_closes_on_idle_or_max() {
        let mut b = Batcher::default();
        let t = Timestamp::from_secs(100);
        assert!(!b.ready(t));
        b.observe(t);
        assert!(!b.ready(t.add(Duration::from_millis(999))));
        assert!(b.ready(t.add(Duration::from_secs(1))));
        // Pods keep arriving every 0.5 s: the 10 s cap closes the batch.
        let mut b = Batcher::default();
        for i in 0..30 {
            let now = t.add(Duration::from_millis(500 * i));
            b.observe(now);
            let ready = b.ready(now.add(Duration::from_millis(1)));
            assert_eq!(ready, i >= 20, "at {i}");
        }
        assert_eq!(b.deadline(), Some(t.add(Duration::from_secs(10))));
        b.reset();
        assert_eq!(b.deadline(), None);
    }
}
