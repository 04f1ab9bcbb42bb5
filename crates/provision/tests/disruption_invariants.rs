//! Property tests of disruption: a consolidation never strands a pod (after applying the
//! command, every evicted pod fits the remaining nodes plus the replacement, without any other
//! new node), budgets are never exceeded, and the decision is deterministic for a seed.

use std::collections::BTreeMap;

use clock::Timestamp;
use model::karpenter::{LABEL_CAPACITY_TYPE, LABEL_HOSTNAME, LABEL_ZONE};
use proptest::prelude::*;
use provision::DisruptionKind;
use provision::bench::{bench_nodepool, consolidation_cluster};
use provision::catalog::Catalog;
use provision::disruption::{DisruptionInput, DisruptionOptions, Method, disrupt};
use provision::plan::{ProvisionInput, plan};
use provision::resources::Res;
use provision::scheduler::ExistingNode;

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn consolidation_never_strands_a_pod(seed in 0u64..10_000, nodes in 2usize..40, pods_per_node in 0usize..12, budget in 1u32..100) {
        let c = Catalog::generated(60);
        let mut pool = bench_nodepool();
        pool.spec.disruption.budgets[0].nodes = format!("{budget}%");
        let cluster = consolidation_cluster(&c, nodes, nodes * pods_per_node, seed);
        let input = DisruptionInput { nodepools: vec![pool.clone()], nodes: cluster.clone(), ..Default::default() };
        let now = Timestamp::from_secs(3600);
        let d = disrupt(&c, &input, now, DisruptionOptions::default());
        prop_assert_eq!(&d, &disrupt(&c, &input, now, DisruptionOptions::default()), "deterministic");

        let allowed = (u64::from(budget) * nodes as u64).div_ceil(100) as usize;
        let mut per_reason: BTreeMap<DisruptionKind, usize> = BTreeMap::new();
        for cmd in &d.commands {
            *per_reason.entry(cmd.kind).or_default() += cmd.candidates.len();
            prop_assert!(cmd.savings_per_hour >= 0.0);
        }
        for (k, n) in &per_reason {
            prop_assert!(*n <= allowed, "{:?}: {} nodes disrupted, budget {}", k, n, allowed);
        }

        for cmd in &d.commands {
            // Apply the command to a copy of the cluster.
            let mut rest: Vec<ExistingNode> = cluster.iter().filter(|n| !cmd.candidates.contains(&n.name)).cloned().collect();
            let evicted: Vec<_> = cluster.iter().filter(|n| cmd.candidates.contains(&n.name)).flat_map(|n| n.pods.clone()).collect();
            let removed_price: f64 = cluster.iter().filter(|n| cmd.candidates.contains(&n.name)).map(|n| n.price).sum();
            if let Method::Replace(r) = &cmd.method {
                let o = &r.options[0];
                prop_assert!(o.price < removed_price, "replacement must be cheaper");
                let t = c.get(&o.instance_type).unwrap();
                let mut n = cluster[0].clone();
                n.name = "replacement".into();
                n.labels.insert(LABEL_HOSTNAME.into(), "replacement".into());
                n.labels.insert(LABEL_ZONE.into(), o.zone.clone());
                n.labels.insert(LABEL_CAPACITY_TYPE.into(), o.capacity_type.clone());
                n.capacity = t.capacity;
                n.allocatable = t.allocatable;
                n.pods = vec![];
                n.daemon_overhead = Res::ZERO;
                rest.push(n);
            }
            // No NodePools: the evicted pods must fit what is left, or they would be stranded.
            let p = plan(&c, &ProvisionInput { nodes: rest, pending: evicted.clone(), ..Default::default() });
            prop_assert!(p.unschedulable.is_empty(), "{:?} strands {:?}", cmd.candidates, p.unschedulable);
            prop_assert_eq!(p.onto_existing.len(), evicted.len());
        }
    }
}
