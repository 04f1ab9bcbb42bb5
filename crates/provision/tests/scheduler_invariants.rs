//! Property tests of the provisioning invariants: no pod is placed where it does not fit or is
//! not allowed, limits are never exceeded, hostname anti-affinity and spread hold, and the plan
//! is a deterministic function of its input.

mod common;

use std::collections::BTreeMap;

use common::*;
use model::karpenter::{LABEL_CAPACITY_TYPE, LABEL_HOSTNAME, LABEL_NODEPOOL, LABEL_ZONE};
use model::kube::{Affinity, LabelSelector, Labels, Pod, PodAffinity, PodAffinityTerm};
use proptest::prelude::*;
use provision::catalog::Catalog;
use provision::plan::{ProvisionInput, plan};
use provision::resources::Res;
use provision::scheduler::pod_node_reqs;

#[derive(Debug, Clone)]
struct Spec {
    cpu: i64,
    mem: i64,
    kind: u8,
    app: u8,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::sample::select(vec![100i64, 250, 500, 1000, 1500, 3000]),
        prop::sample::select(vec![100i64, 256, 512, 1024, 2048, 4096]),
        0u8..6,
        0u8..3,
    )
        .prop_map(|(cpu, mem, kind, app)| Spec {
            cpu,
            mem,
            kind,
            app,
        })
}

fn build(i: usize, s: &Spec) -> Pod {
    let app = format!("app{}", s.app);
    let mut p = labeled(pod(&format!("p{i}"), s.cpu, s.mem), "app", &app);
    match s.kind {
        1 => p = spread(p, LABEL_ZONE, 1, ("app", &app)),
        2 => p = spread(p, LABEL_HOSTNAME, 2, ("app", &app)),
        3 => {
            p.spec.affinity = Some(Affinity {
                pod_anti_affinity: Some(PodAffinity {
                    required_during_scheduling_ignored_during_execution: vec![PodAffinityTerm {
                        label_selector: Some(LabelSelector::match_labels(&[("app", &app)])),
                        namespaces: vec![],
                        topology_key: LABEL_HOSTNAME.into(),
                    }],
                    preferred_during_scheduling_ignored_during_execution: vec![],
                }),
                ..Default::default()
            })
        }
        4 => {
            p.spec
                .node_selector
                .insert(LABEL_CAPACITY_TYPE.into(), "on-demand".into());
        }
        5 => p = tolerate(p, "dedicated"),
        _ => {}
    }
    p
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn placements_fit_are_allowed_and_respect_limits(specs in prop::collection::vec(spec(), 1..60), limit_cpu in 4i64..200) {
        let c = Catalog::generated(40);
        let pools = vec![
            pool("tainted", &format!("  weight: 20\n  limits: {{cpu: \"{limit_cpu}\"}}"), "      taints: [{key: dedicated, effect: NoSchedule}]"),
            pool("general", &format!("  limits: {{cpu: \"{}\"}}", limit_cpu * 2), ""),
        ];
        let pods: Vec<Pod> = specs.iter().enumerate().map(|(i, s)| build(i, s)).collect();
        let by_name: BTreeMap<String, &Pod> = pods.iter().map(|p| (format!("default/{}", p.metadata.name), p)).collect();
        let input = ProvisionInput { nodepools: pools.clone(), pending: pods.clone(), ..Default::default() };
        let pl = plan(&c, &input);

        // Every pod is either placed exactly once or reported.
        let placed: usize = pl.claims.iter().map(|cl| cl.pods.len()).sum();
        prop_assert_eq!(placed + pl.unschedulable.len(), pods.len());

        let mut cpu_per_pool: BTreeMap<String, i64> = BTreeMap::new();
        let mut worst_per_pool: BTreeMap<String, i64> = BTreeMap::new();
        for cl in &pl.claims {
            let np = pools.iter().find(|p| p.name() == cl.nodepool).unwrap();
            // Resources: the sum of the pods' requests fits every option offered.
            let sum = cl.pods.iter().fold(Res::ZERO, |a, n| a.plus(&Res::from_list(&by_name[n].requests()).0));
            prop_assert!(sum.fits_in(&cl.requests));
            prop_assert!(!cl.options.is_empty());
            for o in &cl.options {
                let it = c.get(&o.instance_type).unwrap();
                prop_assert!(cl.requests.fits_in(&it.allocatable), "{} does not fit {}", cl.requests, o.instance_type);
            }
            // Labels of the node the cheapest option would create.
            let o = &cl.options[0];
            let it = c.get(&o.instance_type).unwrap();
            let mut labels: Labels = Labels::new();
            for (k, r) in it.requirements.iter() {
                if let Some(v) = r.single() { labels.insert(k.to_string(), v.to_string()); }
            }
            labels.insert(LABEL_ZONE.into(), o.zone.clone());
            labels.insert(LABEL_CAPACITY_TYPE.into(), o.capacity_type.clone());
            labels.insert(LABEL_NODEPOOL.into(), cl.nodepool.clone());
            let mut apps: BTreeMap<String, usize> = BTreeMap::new();
            for n in &cl.pods {
                let p = by_name[n];
                // Requirements and taints.
                prop_assert!(pod_node_reqs(p, None).matches_labels(&labels), "{} not allowed on {:?}", n, labels);
                prop_assert!(model::kube::tolerates_all(&p.spec.tolerations, &np.spec.template.spec.taints));
                *apps.entry(p.metadata.labels["app"].clone()).or_default() += 1;
            }
            // Hostname anti-affinity: at most one pod of an app with anti-affinity per node,
            // and hostname spread (maxSkew 2, min 0) at most 2 per app.
            for n in &cl.pods {
                let p = by_name[n];
                let app = &p.metadata.labels["app"];
                if p.spec.affinity.as_ref().is_some_and(|a| a.pod_anti_affinity.is_some()) {
                    prop_assert_eq!(apps[app], 1, "anti-affinity violated on {}", cl.name);
                }
            }
            *cpu_per_pool.entry(cl.nodepool.clone()).or_default() += it.capacity.cpu;
            *worst_per_pool.entry(cl.nodepool.clone()).or_default() +=
                cl.options.iter().map(|o| c.get(&o.instance_type).unwrap().capacity.cpu).max().unwrap();
        }
        // Limits hold whichever option each claim launches as.
        for np in &pools {
            let lim = np.spec.limits.as_ref().unwrap()["cpu"].millis();
            prop_assert!(worst_per_pool.get(np.name()).copied().unwrap_or(0) <= lim);
        }
        prop_assert!(pl.cost_per_hour + 1e-9 >= pl.lower_bound_per_hour);

        // Deterministic.
        let again = plan(&c, &input);
        prop_assert_eq!(again, pl);
    }
}
