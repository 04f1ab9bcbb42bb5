//! Disruption scenarios from Karpenter's documented behaviour: emptiness and consolidateAfter,
//! budgets (percentages, cron windows, reasons, fail closed), do-not-disrupt, PDBs, expiry,
//! drift, single/multi-node consolidation, the savings threshold and Balanced.

mod common;

use clock::Timestamp;
use common::*;
use model::karpenter::{LABEL_CAPACITY_TYPE, LABEL_HOSTNAME, LABEL_NODEPOOL, LABEL_ZONE, NodePool};
use model::kube::{IntOrString, LabelSelector, Labels, Pod, PodDisruptionBudget};
use provision::DisruptionKind;
use provision::catalog::Catalog;
use provision::disruption::{DisruptionInput, DisruptionOptions, Method, disrupt, validate};
use provision::resources::Res;
use provision::scheduler::ExistingNode;

const HOUR: u64 = 3_600_000;

fn node(c: &Catalog, pool: &NodePool, name: &str, ty: &str, pods: Vec<Pod>) -> ExistingNode {
    let t = c.get(ty).unwrap();
    let labels: Labels = [
        (LABEL_HOSTNAME.to_string(), name.to_string()),
        (LABEL_ZONE.to_string(), "test-zone-1".to_string()),
        (LABEL_NODEPOOL.to_string(), pool.name().to_string()),
        (LABEL_CAPACITY_TYPE.to_string(), "on-demand".to_string()),
    ]
    .into();
    ExistingNode {
        name: name.into(),
        labels,
        taints: vec![],
        capacity: t.capacity,
        allocatable: t.allocatable,
        pods,
        daemon_overhead: Res::ZERO,
        unschedulable: false,
        in_flight: false,
        price: t.offerings[0].price,
        created_ms: 0,
        nodepool_hash: Some(pool.template_hash()),
        annotations: Labels::new(),
        last_pod_event_ms: 0,
    }
}

fn input(pool: &NodePool, nodes: Vec<ExistingNode>) -> DisruptionInput {
    DisruptionInput {
        nodepools: vec![pool.clone()],
        nodes,
        ..Default::default()
    }
}

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn default_pool(disruption: &str) -> NodePool {
    pool("default", disruption, "")
}

#[test]
fn empty_nodes_are_deleted_only_after_consolidate_after() {
    let c = Catalog::generated(10);
    let p =
        default_pool("  disruption:\n    consolidateAfter: 10m\n    budgets: [{nodes: \"100%\"}]");
    let mut n = node(&c, &p, "n1", "fake-it-3", vec![]);
    n.last_pod_event_ms = HOUR;
    let busy = node(&c, &p, "n2", "fake-it-3", vec![pod("a", 100, 100)]);
    let inp = input(&p, vec![n, busy]);
    let d = disrupt(
        &c,
        &inp,
        at(HOUR + 5 * 60_000),
        DisruptionOptions::default(),
    );
    assert!(
        d.commands.iter().all(|c| c.kind != DisruptionKind::Empty),
        "{:?}",
        d.commands
    );
    let d = disrupt(
        &c,
        &inp,
        at(HOUR + 10 * 60_000),
        DisruptionOptions::default(),
    );
    assert_eq!(d.commands[0].kind, DisruptionKind::Empty);
    assert_eq!(d.commands[0].candidates, vec!["n1"]);
    assert_eq!(d.commands[0].method, Method::Delete);
}

#[test]
fn only_a_nodepools_nodes_are_disrupted() {
    let c = Catalog::generated(10);
    let p =
        default_pool("  disruption:\n    consolidateAfter: 0s\n    budgets: [{nodes: \"100%\"}]");
    // Empty and long expired, but of a NodePool that is gone, or of none at all.
    let gone = pool("gone", "", "");
    let orphan = node(&c, &gone, "orphan", "fake-it-3", vec![]);
    let mut foreign = node(&c, &p, "foreign", "fake-it-3", vec![]);
    foreign.labels.remove(LABEL_NODEPOOL);
    let late = at(10_000 * HOUR);
    let d = disrupt(
        &c,
        &input(&p, vec![orphan.clone(), foreign.clone()]),
        late,
        DisruptionOptions::default(),
    );
    assert!(d.commands.is_empty(), "{:?}", d.commands);
    assert!(d.skipped.is_empty(), "{:?}", d.skipped);
    // With one node of the NodePool beside them, that node (only) goes.
    let ours = node(&c, &p, "ours", "fake-it-3", vec![]);
    let d = disrupt(
        &c,
        &input(&p, vec![orphan, foreign, ours]),
        late,
        DisruptionOptions::default(),
    );
    let gone: Vec<&String> = d.commands.iter().flat_map(|c| &c.candidates).collect();
    assert_eq!(gone, ["ours"]);
}

#[test]
fn default_budget_of_ten_percent_limits_empty_deletions() {
    let c = Catalog::generated(10);
    let p = default_pool("");
    let nodes: Vec<_> = (0..20)
        .map(|i| node(&c, &p, &format!("n{i}"), "fake-it-1", vec![]))
        .collect();
    let d = disrupt(
        &c,
        &input(&p, nodes.clone()),
        at(HOUR),
        DisruptionOptions::default(),
    );
    assert_eq!(d.commands[0].candidates.len(), 2, "10% of 20");
    // 15 nodes: 10% rounds up to 2.
    let d = disrupt(
        &c,
        &input(&p, nodes[..15].to_vec()),
        at(HOUR),
        DisruptionOptions::default(),
    );
    assert_eq!(d.commands[0].candidates.len(), 2);
    // Nodes already being disrupted (cordoned) use up the budget.
    let mut busy = nodes.clone();
    busy[0].unschedulable = true;
    busy[1].unschedulable = true;
    let d = disrupt(&c, &input(&p, busy), at(HOUR), DisruptionOptions::default());
    assert!(d.commands.is_empty(), "{:?}", d.commands);
}

#[test]
fn scheduled_budget_blocks_during_its_window_only() {
    let c = Catalog::generated(10);
    // No disruption 09:00-17:00 UTC on weekdays.
    let p = default_pool(
        "  disruption:\n    budgets:\n    - nodes: \"100%\"\n    - nodes: \"0\"\n      schedule: \"0 9 * * mon-fri\"\n      duration: 8h",
    );
    let monday = 19_723 * 24 * HOUR; // 2024-01-01, a Monday, 00:00 UTC
    let mut n = node(&c, &p, "n1", "fake-it-1", vec![]);
    n.created_ms = monday; // young enough not to expire during the test
    let nodes = vec![n];
    let d = disrupt(
        &c,
        &input(&p, nodes.clone()),
        at(monday + 10 * HOUR),
        DisruptionOptions::default(),
    );
    assert!(d.commands.is_empty(), "inside the window");
    let d = disrupt(
        &c,
        &input(&p, nodes.clone()),
        at(monday + 18 * HOUR),
        DisruptionOptions::default(),
    );
    assert_eq!(d.commands.len(), 1, "after the window");
    let saturday = monday + 5 * 24 * HOUR;
    let d = disrupt(
        &c,
        &input(&p, nodes),
        at(saturday + 10 * HOUR),
        DisruptionOptions::default(),
    );
    assert_eq!(d.commands.len(), 1, "weekend");
}

#[test]
fn budget_reasons_apply_per_reason() {
    let c = Catalog::generated(10);
    let p = default_pool(
        "  disruption:\n    budgets:\n    - nodes: \"0\"\n      reasons: [Empty]\n    - nodes: \"100%\"",
    );
    let nodes = vec![node(&c, &p, "n1", "fake-it-1", vec![])];
    let d = disrupt(
        &c,
        &input(&p, nodes),
        at(HOUR),
        DisruptionOptions::default(),
    );
    assert!(d.commands.is_empty());
}

#[test]
fn empty_nodes_may_go_outside_the_default_budget_but_never_outside_one_the_pool_sets() {
    let c = Catalog::generated(10);
    let unset = default_pool("  disruption:\n    consolidateAfter: 0s");
    let set =
        default_pool("  disruption:\n    consolidateAfter: 0s\n    budgets: [{nodes: \"10%\"}]");
    assert!(!unset.spec.disruption.budgets.is_set());
    assert!(set.spec.disruption.budgets.is_set());
    let empties = |p: &NodePool| -> Vec<ExistingNode> {
        (0..20)
            .map(|i| node(&c, p, &format!("n{i}"), "fake-it-1", vec![]))
            .collect()
    };
    let deleted = |p: &NodePool, opts: DisruptionOptions| -> usize {
        let d = disrupt(&c, &input(p, empties(p)), at(HOUR), opts);
        assert!(d.commands.iter().all(|c| c.kind == DisruptionKind::Empty));
        d.commands.iter().map(|c| c.candidates.len()).sum()
    };
    let spare = DisruptionOptions {
        empty_outside_default_budget: true,
        ..DisruptionOptions::default()
    };
    // Karpenter's default budget, 10 % of 20 nodes.
    assert_eq!(deleted(&unset, DisruptionOptions::default()), 2);
    // The option lifts it for empty nodes of a pool with no budgets of its own...
    assert_eq!(deleted(&unset, spare), 20);
    // ...and a budget the pool sets binds whatever the option says.
    assert_eq!(deleted(&set, spare), 2);
}

#[test]
fn malformed_budget_fails_closed() {
    let c = Catalog::generated(10);
    let mut p = default_pool("");
    p.spec.disruption.budgets[0].nodes = "ten".into();
    let nodes = vec![node(&c, &p, "n1", "fake-it-1", vec![])];
    let d = disrupt(
        &c,
        &input(&p, nodes),
        at(HOUR),
        DisruptionOptions::default(),
    );
    assert!(d.commands.is_empty());
}

#[test]
fn do_not_disrupt_on_pod_or_node_blocks_voluntary_disruption() {
    let c = Catalog::generated(10);
    let p = default_pool("  disruption:\n    budgets: [{nodes: \"100%\"}]");
    let mut pinned = pod("pinned", 100, 100);
    pinned
        .metadata
        .annotations
        .insert("karpenter.sh/do-not-disrupt".into(), "true".into());
    let big = node(&c, &p, "big", "fake-it-7", vec![]);
    let small = node(&c, &p, "small", "fake-it-1", vec![pinned]);
    let d = disrupt(
        &c,
        &input(&p, vec![big.clone(), small]),
        at(HOUR),
        DisruptionOptions::default(),
    );
    assert!(
        d.commands
            .iter()
            .all(|c| !c.candidates.contains(&"small".to_string()))
    );
    assert!(d.explanations.iter().any(|e| e.contains("do-not-disrupt")));
    assert_eq!(d.skipped.len(), 1);
    assert_eq!(d.skipped[0].node, "small");
    assert!(
        d.skipped[0].why.contains("do-not-disrupt"),
        "{:?}",
        d.skipped
    );
    let mut empty = node(&c, &p, "empty", "fake-it-1", vec![]);
    empty
        .annotations
        .insert("karpenter.sh/do-not-disrupt".into(), "true".into());
    let d = disrupt(
        &c,
        &input(&p, vec![big, empty]),
        at(HOUR),
        DisruptionOptions::default(),
    );
    assert!(
        d.commands
            .iter()
            .all(|c| !c.candidates.contains(&"empty".to_string())),
        "{:?}",
        d.commands
    );
}

#[test]
fn pdb_that_allows_no_eviction_blocks_the_node() {
    let c = Catalog::generated(10);
    let p = default_pool("  disruption:\n    budgets: [{nodes: \"100%\"}]");
    let web = labeled(pod("web", 100, 100), "app", "web");
    let big = node(&c, &p, "big", "fake-it-7", vec![]);
    let small = node(&c, &p, "small", "fake-it-1", vec![web]);
    let mut inp = input(&p, vec![big, small]);
    inp.pdbs = vec![PodDisruptionBudget {
        metadata: model::kube::ObjectMeta::named("web"),
        spec: model::kube::PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(1)),
            max_unavailable: None,
            selector: Some(LabelSelector::match_labels(&[("app", "web")])),
        },
    }];
    let d = disrupt(&c, &inp, at(HOUR), DisruptionOptions::default());
    assert!(
        d.commands
            .iter()
            .all(|c| !c.candidates.contains(&"small".to_string())),
        "{:?}",
        d.commands
    );
    assert!(
        d.explanations
            .iter()
            .any(|e| e.contains("PodDisruptionBudget"))
    );
}

#[test]
fn underutilized_node_is_deleted_when_its_pods_fit_elsewhere() {
    let c = Catalog::generated(10);
    let p = default_pool("  disruption:\n    budgets: [{nodes: \"100%\"}]");
    // The big node runs a do-not-disrupt pod: it is not a candidate itself, but it can
    // receive pods.
    let mut pinned = pod("a", 1000, 1024);
    pinned
        .metadata
        .annotations
        .insert("karpenter.sh/do-not-disrupt".into(), "true".into());
    let big = node(&c, &p, "big", "fake-it-7", vec![pinned]);
    let small = node(&c, &p, "small", "fake-it-1", vec![pod("b", 500, 512)]);
    let d = disrupt(
        &c,
        &input(&p, vec![big, small]),
        at(HOUR),
        DisruptionOptions::default(),
    );
    let cmd = &d.commands[0];
    assert_eq!(cmd.kind, DisruptionKind::Underutilized);
    assert_eq!(cmd.method, Method::Delete);
    assert_eq!(cmd.candidates, vec!["small"]);
}

#[test]
fn node_is_replaced_by_a_strictly_cheaper_one_past_the_threshold() {
    let c = Catalog::generated(20);
    let p = default_pool("  disruption:\n    budgets: [{nodes: \"100%\"}]");
    // A 16-vCPU node running one small pod: a 1-vCPU node would do.
    let n = node(&c, &p, "oversized", "fake-it-15", vec![pod("a", 500, 512)]);
    let d = disrupt(
        &c,
        &input(&p, vec![n.clone()]),
        at(HOUR),
        DisruptionOptions::default(),
    );
    let cmd = &d.commands[0];
    let Method::Replace(r) = &cmd.method else {
        panic!("{cmd:?}")
    };
    assert_eq!(r.options[0].instance_type, "fake-it-0");
    assert!(r.options.iter().all(|o| o.price < 0.9 * n.price));
    assert_eq!(
        r.to_nodeclaim(&p)
            .metadata
            .labels
            .get(LABEL_NODEPOOL)
            .map(String::as_str),
        Some(p.name()),
        "the replacement is a claim of the candidates' NodePool"
    );
    // A replacement saving less than the threshold is not made: 2 vCPU → 1 vCPU saves 50%,
    // but with a 60% threshold it is marginal.
    let small = node(&c, &p, "small", "fake-it-1", vec![pod("a", 500, 512)]);
    let strict = DisruptionOptions {
        min_savings_fraction: 0.6,
        ..Default::default()
    };
    let d = disrupt(&c, &input(&p, vec![small]), at(HOUR), strict);
    assert!(d.commands.is_empty(), "{:?}", d.commands);
}

#[test]
fn spot_nodes_are_deleted_but_not_replaced_by_default() {
    let c = Catalog::generated(20);
    let p = default_pool("  disruption:\n    budgets: [{nodes: \"100%\"}]");
    let mut n = node(&c, &p, "spot", "fake-it-15", vec![pod("a", 500, 512)]);
    n.labels.insert(LABEL_CAPACITY_TYPE.into(), "spot".into());
    let d = disrupt(
        &c,
        &input(&p, vec![n.clone()]),
        at(HOUR),
        DisruptionOptions::default(),
    );
    assert!(d.commands.is_empty());
    let d = disrupt(
        &c,
        &input(&p, vec![n]),
        at(HOUR),
        DisruptionOptions {
            spot_to_spot: true,
            ..Default::default()
        },
    );
    assert_eq!(d.commands.len(), 1);
}

#[test]
fn multi_node_consolidation_merges_several_nodes() {
    let c = Catalog::generated(20);
    let p = default_pool("  disruption:\n    budgets: [{nodes: \"100%\"}]");
    let nodes: Vec<_> = (0..4)
        .map(|i| {
            node(
                &c,
                &p,
                &format!("n{i}"),
                "fake-it-3",
                vec![pod(&format!("p{i}"), 1000, 1024)],
            )
        })
        .collect();
    let d = disrupt(
        &c,
        &input(&p, nodes),
        at(HOUR),
        DisruptionOptions::default(),
    );
    let cmd = &d.commands[0];
    assert!(cmd.candidates.len() >= 3, "{cmd:?}");
    assert!(cmd.savings_per_hour > 0.0);
}

#[test]
fn when_empty_policy_never_consolidates_busy_nodes() {
    let c = Catalog::generated(20);
    let p = default_pool(
        "  disruption:\n    consolidationPolicy: WhenEmpty\n    budgets: [{nodes: \"100%\"}]",
    );
    let n = node(&c, &p, "oversized", "fake-it-15", vec![pod("a", 500, 512)]);
    let d = disrupt(
        &c,
        &input(&p, vec![n]),
        at(HOUR),
        DisruptionOptions::default(),
    );
    assert!(d.commands.is_empty());
}

#[test]
fn balanced_rejects_marginal_moves_and_approves_worthwhile_ones() {
    let c = Catalog::generated(40);
    let p = default_pool(
        "  disruption:\n    consolidationPolicy: Balanced\n    budgets: [{nodes: \"100%\"}]",
    );
    // Nine busy 8-vCPU nodes and one 2-vCPU node with a 1.5-vCPU pod: replacing it with a
    // 2-vCPU node saves nothing; deleting is impossible (pods do not fit elsewhere).
    let mut nodes: Vec<_> = (0..9)
        .map(|i| {
            node(
                &c,
                &p,
                &format!("busy{i}"),
                "fake-it-7",
                (0..5)
                    .map(|j| pod(&format!("b{i}-{j}"), 1500, 2048))
                    .collect(),
            )
        })
        .collect();
    nodes.push(node(
        &c,
        &p,
        "small",
        "fake-it-2",
        vec![pod("s", 1500, 2048)],
    ));
    let d = disrupt(
        &c,
        &input(&p, nodes.clone()),
        at(HOUR),
        DisruptionOptions {
            min_savings_fraction: 0.0,
            ..Default::default()
        },
    );
    // fake-it-2 → fake-it-1 (1.5 vCPU needs 2 vCPU) saves a third of a small node: under
    // Balanced that is 1.1% of pool cost for 2.3% of its disruption (score < 0.5).
    assert!(d.commands.is_empty(), "{:?}", d.commands);
    // A 32-vCPU node running one pod: replacing it saves most of the pool's cost.
    nodes.push(node(&c, &p, "huge", "fake-it-31", vec![pod("h", 500, 512)]));
    let d = disrupt(
        &c,
        &input(&p, nodes),
        at(HOUR),
        DisruptionOptions::default(),
    );
    assert!(
        d.commands
            .iter()
            .any(|c| c.candidates.contains(&"huge".to_string())),
        "{:?}",
        d.commands
    );
}

#[test]
fn expired_nodes_are_removed_even_with_a_zero_budget() {
    let c = Catalog::generated(10);
    let p = default_pool("  disruption:\n    budgets: [{nodes: \"0\"}]");
    let mut old = node(&c, &p, "old", "fake-it-3", vec![pod("a", 100, 100)]);
    old.created_ms = 0;
    let young = node(&c, &p, "young", "fake-it-3", vec![pod("b", 100, 100)]);
    let mut nodes = vec![old, young];
    nodes[1].created_ms = 700 * HOUR;
    let d = disrupt(
        &c,
        &input(&p, nodes),
        at(721 * HOUR),
        DisruptionOptions::default(),
    );
    assert_eq!(d.commands.len(), 1);
    assert_eq!(d.commands[0].kind, DisruptionKind::Expired);
    assert_eq!(d.commands[0].candidates, vec!["old"]);
    // expireAfter: Never.
    let never = pool("default", "", "      expireAfter: Never");
    let n = node(&c, &never, "old", "fake-it-3", vec![]);
    let d = disrupt(
        &c,
        &input(&never, vec![n]),
        at(10_000 * HOUR),
        DisruptionOptions::default(),
    );
    assert!(d.commands.iter().all(|c| c.kind != DisruptionKind::Expired));
}

#[test]
fn drifted_node_is_replaced_when_the_template_changes() {
    let c = Catalog::generated(10);
    let p = default_pool("  disruption:\n    budgets: [{nodes: \"100%\"}]");
    let n = node(&c, &p, "n1", "fake-it-3", vec![pod("a", 1000, 1024)]);
    let changed = pool(
        "default",
        "  disruption:\n    budgets: [{nodes: \"100%\"}]",
        "      taints: [{key: new, effect: NoSchedule}]",
    );
    let d = disrupt(
        &c,
        &input(&changed, vec![n.clone()]),
        at(HOUR),
        DisruptionOptions::default(),
    );
    // The pod does not tolerate the new taint, so no replacement can host it: not disrupted.
    assert!(d.commands.iter().all(|c| c.kind != DisruptionKind::Drifted) || d.commands.is_empty());
    let relabeled = NodePool {
        spec: model::karpenter::NodePoolSpec {
            ..changed.spec.clone()
        },
        ..changed.clone()
    };
    let mut relabeled = relabeled;
    relabeled.spec.template.spec.taints.clear();
    relabeled
        .spec
        .template
        .metadata
        .labels
        .insert("team".into(), "b".into());
    let d = disrupt(
        &c,
        &input(&relabeled, vec![n]),
        at(HOUR),
        DisruptionOptions::default(),
    );
    assert_eq!(
        d.commands[0].kind,
        DisruptionKind::Drifted,
        "{:?}",
        d.commands
    );
    assert!(matches!(d.commands[0].method, Method::Replace(_)));
}

#[test]
fn validation_drops_a_command_once_the_cluster_changed() {
    let c = Catalog::generated(10);
    let p = default_pool("  disruption:\n    budgets: [{nodes: \"100%\"}]");
    let big = node(&c, &p, "big", "fake-it-7", vec![pod("a", 1000, 1024)]);
    let small = node(&c, &p, "small", "fake-it-1", vec![pod("b", 500, 512)]);
    let inp = input(&p, vec![big, small]);
    let d = disrupt(&c, &inp, at(HOUR), DisruptionOptions::default());
    let cmd = &d.commands[0];
    assert!(
        validate(
            &c,
            &inp,
            at(HOUR + 15_000),
            DisruptionOptions::default(),
            cmd
        )
        .is_ok()
    );
    // Meanwhile the big node filled up: the small node's pod has nowhere to go.
    let mut later = inp.clone();
    later.nodes[0]
        .pods
        .extend((0..6).map(|i| pod(&format!("f{i}"), 1000, 1024)));
    assert!(
        validate(
            &c,
            &later,
            at(HOUR + 15_000),
            DisruptionOptions::default(),
            cmd
        )
        .is_err()
    );
}

#[test]
fn requirement_change_drifts_nodes_whose_labels_no_longer_match() {
    let c = Catalog::generated(10);
    let p = default_pool("  disruption:\n    budgets: [{nodes: \"100%\"}]");
    let n = node(&c, &p, "n1", "fake-it-3", vec![pod("a", 1000, 1024)]);
    // Same template hash (requirements are not hashed), but on-demand is no longer allowed.
    let spot_only = pool(
        "default",
        "  disruption:\n    budgets: [{nodes: \"100%\"}]",
        "      requirements:\n      - {key: karpenter.sh/capacity-type, operator: In, values: [spot]}\n      - {key: karpenter.k8s.aws/instance-family, operator: Exists}",
    );
    assert_eq!(spot_only.template_hash(), p.template_hash());
    let d = disrupt(
        &c,
        &input(&spot_only, vec![n]),
        at(HOUR),
        DisruptionOptions::default(),
    );
    assert_eq!(
        d.commands[0].kind,
        DisruptionKind::Drifted,
        "{:?}",
        d.commands
    );
    let Method::Replace(r) = &d.commands[0].method else {
        panic!()
    };
    assert!(r.options.iter().all(|o| o.capacity_type == "spot"));
}
