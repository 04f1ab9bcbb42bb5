//! Karpenter's scheduling benchmark set-up, reproduced: one NodePool with effectively
//! unlimited limits, the generated catalog (`fake.InstanceTypes(n)`), and the diverse pod mix
//! (1/5 each: generic, zonal spread, hostname spread, zonal pod affinity, hostname
//! anti-affinity; remainder generic). CPU from {100,250,500,1000,1500}m, memory from
//! {100,256,512,1024,2048,4096}Mi, labels from {a..g} — drawn from a seeded RNG.
//!
//! Timing is the caller's: these functions take a `timer` closure returning elapsed time, so
//! this crate never reads a clock (the `kedge bench` CLI passes `Instant`).

use std::time::Duration;

use model::karpenter::{LABEL_HOSTNAME, LABEL_ZONE, NodePool};
use model::kube::{
    Affinity, LabelSelector, Labels, Pod, PodAffinity, PodAffinityTerm, TopologySpreadConstraint,
    WhenUnsatisfiable,
};
use model::quantity::Quantity;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::catalog::Catalog;
use crate::plan::{Plan, ProvisionInput, plan};
use crate::resources::{GIB, MIB, Res};
use crate::scheduler::ExistingNode;

const CPU_M: [i64; 5] = [100, 250, 500, 1000, 1500];
const MEM_MI: [i64; 6] = [100, 256, 512, 1024, 2048, 4096];
const LABEL_VALUES: [&str; 7] = ["a", "b", "c", "d", "e", "f", "g"];

/// The benchmark NodePool: no requirements beyond the defaults, limits of 10,000,000 CPU and
/// 10,000,000 Gi as upstream.
pub fn bench_nodepool() -> NodePool {
    let yaml = r#"
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: default}
spec:
  template:
    spec:
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
  limits: {cpu: "10000000", memory: 10000000Gi}
"#;
    // A constant, valid document: covered by tests.
    NodePool::from_yaml(yaml).unwrap_or_else(|e| panic!("benchmark NodePool is invalid: {e}"))
}

fn sized(rng: &mut StdRng, name: String, labels: Labels) -> Pod {
    let cpu = CPU_M[rng.random_range(0..CPU_M.len())];
    let mem = MEM_MI[rng.random_range(0..MEM_MI.len())];
    let mut p = Pod::with_requests(
        &name,
        Quantity::from_millis(cpu),
        Quantity::from_mebibytes(mem),
    );
    p.metadata.labels = labels;
    p
}

fn my_label(rng: &mut StdRng, key: &str) -> Labels {
    [(
        key.to_string(),
        LABEL_VALUES[rng.random_range(0..LABEL_VALUES.len())].to_string(),
    )]
    .into()
}

/// Generic pods: random size, a random `my-label`.
pub fn generic_pods(rng: &mut StdRng, n: usize, prefix: &str) -> Vec<Pod> {
    (0..n)
        .map(|i| {
            let l = my_label(rng, "my-label");
            sized(rng, format!("{prefix}generic-{i}"), l)
        })
        .collect()
}

fn spread_pods(rng: &mut StdRng, n: usize, key: &str, tag: &str) -> Vec<Pod> {
    (0..n)
        .map(|i| {
            let l = my_label(rng, "my-label");
            let mut p = sized(rng, format!("spread-{tag}-{i}"), l);
            let sel = my_label(rng, "my-label");
            p.spec.topology_spread_constraints = vec![TopologySpreadConstraint {
                max_skew: 1,
                topology_key: key.into(),
                when_unsatisfiable: WhenUnsatisfiable::DoNotSchedule,
                label_selector: Some(LabelSelector {
                    match_labels: sel,
                    match_expressions: vec![],
                }),
                min_domains: None,
            }];
            p
        })
        .collect()
}

fn affinity_pods(rng: &mut StdRng, n: usize, key: &str) -> Vec<Pod> {
    (0..n)
        .map(|i| {
            let l = my_label(rng, "my-affininity");
            let mut p = sized(rng, format!("affinity-{i}"), l.clone());
            p.spec.affinity = Some(Affinity {
                pod_affinity: Some(PodAffinity {
                    required_during_scheduling_ignored_during_execution: vec![PodAffinityTerm {
                        label_selector: Some(LabelSelector {
                            match_labels: l,
                            match_expressions: vec![],
                        }),
                        namespaces: vec![],
                        topology_key: key.into(),
                    }],
                    preferred_during_scheduling_ignored_during_execution: vec![],
                }),
                ..Default::default()
            });
            p
        })
        .collect()
}

fn anti_affinity_pods(rng: &mut StdRng, n: usize, key: &str) -> Vec<Pod> {
    let l: Labels = [("app".to_string(), "nginx".to_string())].into();
    (0..n)
        .map(|i| {
            let mut p = sized(rng, format!("anti-{i}"), l.clone());
            p.spec.affinity = Some(Affinity {
                pod_anti_affinity: Some(PodAffinity {
                    required_during_scheduling_ignored_during_execution: vec![PodAffinityTerm {
                        label_selector: Some(LabelSelector {
                            match_labels: l.clone(),
                            match_expressions: vec![],
                        }),
                        namespaces: vec![],
                        topology_key: key.into(),
                    }],
                    preferred_during_scheduling_ignored_during_execution: vec![],
                }),
                ..Default::default()
            });
            p
        })
        .collect()
}

/// Karpenter's `MakeDiversePods(count)`.
pub fn diverse_pods(count: usize, seed: u64) -> Vec<Pod> {
    let mut rng = StdRng::seed_from_u64(seed);
    let k = count / 5;
    let mut pods = generic_pods(&mut rng, k, "");
    pods.extend(spread_pods(&mut rng, k, LABEL_ZONE, "zone"));
    pods.extend(spread_pods(&mut rng, k, LABEL_HOSTNAME, "host"));
    pods.extend(affinity_pods(&mut rng, k, LABEL_ZONE));
    pods.extend(anti_affinity_pods(&mut rng, k, LABEL_HOSTNAME));
    let rest = count - pods.len();
    pods.extend(generic_pods(&mut rng, rest, "rest-"));
    pods
}

#[derive(Debug, Clone)]
pub struct ScheduleBench {
    pub pods: usize,
    pub scheduled: usize,
    pub nodes: usize,
    pub cost_per_hour: f64,
    pub lower_bound_per_hour: f64,
    pub elapsed: Duration,
    pub plan: Plan,
}

impl ScheduleBench {
    pub fn pods_per_sec(&self) -> f64 {
        self.pods as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    pub fn ratio(&self) -> f64 {
        if self.lower_bound_per_hour > 0.0 {
            self.cost_per_hour / self.lower_bound_per_hour
        } else {
            1.0
        }
    }
}

/// Schedule `pods` from scratch on `instance_types` generated types; `timer()` returns the
/// time elapsed since an arbitrary origin.
pub fn run_schedule(
    pods: Vec<Pod>,
    instance_types: usize,
    timer: &mut dyn FnMut() -> Duration,
) -> ScheduleBench {
    let catalog = Catalog::generated(instance_types);
    let input = ProvisionInput {
        nodepools: vec![bench_nodepool()],
        pending: pods,
        ..Default::default()
    };
    let t0 = timer();
    let p = plan(&catalog, &input);
    let elapsed = timer().saturating_sub(t0);
    ScheduleBench {
        pods: input.pending.len(),
        scheduled: p.claims.iter().map(|c| c.pods.len()).sum::<usize>() + p.onto_existing.len(),
        nodes: p.claims.len(),
        cost_per_hour: p.cost_per_hour,
        lower_bound_per_hour: p.lower_bound_per_hour,
        elapsed,
        plan: p,
    }
}

/// A cluster for the consolidation benchmark: `nodes` nodes of the generated catalog (4–32
/// vCPU), `pods` generic pods spread over them first-fit in random order, so utilisation is
/// uneven and there is something to consolidate. Deterministic for a seed.
pub fn consolidation_cluster(
    catalog: &Catalog,
    nodes: usize,
    pods: usize,
    seed: u64,
) -> Vec<ExistingNode> {
    let mut rng = StdRng::seed_from_u64(seed);
    let zones = ["test-zone-1", "test-zone-2", "test-zone-3"];
    let mut out: Vec<ExistingNode> = (0..nodes)
        .map(|i| {
            let ti = rng
                .random_range(3..32usize)
                .min(catalog.types.len().saturating_sub(1));
            let t = &catalog.types[ti];
            let zone = zones[i % zones.len()];
            let labels: Labels = [
                ("kubernetes.io/hostname".to_string(), format!("node-{i}")),
                (LABEL_ZONE.to_string(), zone.to_string()),
                ("karpenter.sh/nodepool".to_string(), "default".to_string()),
                (
                    "karpenter.sh/capacity-type".to_string(),
                    "on-demand".to_string(),
                ),
                (
                    "node.kubernetes.io/instance-type".to_string(),
                    t.name.clone(),
                ),
                ("kubernetes.io/arch".to_string(), "amd64".to_string()),
                ("kubernetes.io/os".to_string(), "linux".to_string()),
            ]
            .into();
            ExistingNode {
                name: format!("node-{i}"),
                labels,
                taints: vec![],
                capacity: t.capacity,
                allocatable: t.allocatable,
                pods: vec![],
                daemon_overhead: Res::ZERO,
                unschedulable: false,
                in_flight: false,
                price: t
                    .offerings
                    .iter()
                    .find(|o| &*o.capacity_type == "on-demand")
                    .map_or(0.0, |o| o.price),
                created_ms: 0,
                nodepool_hash: Some(bench_nodepool().template_hash()),
                annotations: Labels::new(),
                last_pod_event_ms: 0,
            }
        })
        .collect();
    let mut used: Vec<Res> = vec![Res::ZERO; nodes];
    let all = generic_pods(&mut rng, pods, "c-");
    for (i, p) in all.into_iter().enumerate() {
        let r = Res::new(
            p.requests()["cpu"].millis(),
            p.requests()["memory"].units_ceil(),
            1,
        );
        // Start at a random node so fill levels differ; first fit from there.
        let start = rng.random_range(0..nodes.max(1));
        for k in 0..nodes {
            let n = (start + k + i) % nodes;
            if used[n].plus(&r).fits_in(&out[n].allocatable) {
                used[n] = used[n].plus(&r);
                out[n].pods.push(p);
                break;
            }
        }
    }
    let _ = (GIB, MIB);
    out
}

#[derive(Debug, Clone)]
pub struct ConsolidateBench {
    pub nodes: usize,
    pub pods: usize,
    pub elapsed: Duration,
    pub decision: crate::disruption::Decision,
}

/// One full disruption pass over a `nodes`-node, `pods`-pod cluster (see
/// [`consolidation_cluster`]) at one hour after the nodes were created.
pub fn run_consolidate(
    nodes: usize,
    pods: usize,
    seed: u64,
    timer: &mut dyn FnMut() -> Duration,
) -> ConsolidateBench {
    let catalog = Catalog::generated(400);
    let cluster = consolidation_cluster(&catalog, nodes, pods, seed);
    let placed = cluster.iter().map(|n| n.pods.len()).sum();
    let input = crate::disruption::DisruptionInput {
        nodepools: vec![bench_nodepool()],
        nodes: cluster,
        ..Default::default()
    };
    let t0 = timer();
    let decision = crate::disruption::disrupt(
        &catalog,
        &input,
        clock::Timestamp::from_secs(3600),
        crate::disruption::DisruptionOptions::default(),
    );
    let elapsed = timer().saturating_sub(t0);
    ConsolidateBench {
        nodes,
        pods: placed,
        elapsed,
        decision,
    }
}
