//! kedge's consolidation settle: after a replica count changes, nodes that still hold pods are
//! not judged until the counts have been steady for `consolidation_settle` (a scale-in halfway
//! through would make a replacement for pods about to go), but an empty node is not held by it:
//! with no pods left there is nothing to judge, and every second it stays is paid for.

use std::sync::Arc;
use std::time::Duration;

use clock::Timestamp;
use engine::{Cluster, NodeEngine, NodeInfo, Policy, PolicyName, Recorder};
use model::karpenter::NodePool;
use model::kube::Pod;
use provision::catalog::Catalog;
use provision::resources::Res;
use provision::scheduler::ExistingNode;

fn pool() -> NodePool {
    NodePool::from_yaml(
        r#"
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: default}
spec:
  template:
    spec:
      requirements:
        - {key: node.kubernetes.io/instance-type, operator: In, values: [m5.xlarge, m5.2xlarge]}
        - {key: karpenter.sh/capacity-type, operator: In, values: [on-demand]}
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
  limits: {cpu: 1000}
  disruption:
    consolidationPolicy: WhenEmptyOrUnderutilized
    consolidateAfter: 0s
"#,
    )
    .expect("pool")
}

fn consumer(i: usize) -> Pod {
    let mut p = Pod::with_requests(
        &format!("consumer-{i}"),
        "250m".parse().unwrap(),
        "64Mi".parse().unwrap(),
    );
    p.metadata.namespace = Some("jobs".into());
    p.spec.node_name = Some(format!("node-{i}"));
    p
}

/// A Ready m5.xlarge of the NodePool, created an hour ago, holding `pods`.
fn node(name: &str, pods: Vec<Pod>) -> (ExistingNode, NodeInfo) {
    let catalog = Catalog::aws();
    let t = catalog.get("m5.xlarge").expect("m5.xlarge");
    let info = NodeInfo {
        claim: Some(format!("claim-{name}")),
        initialized: true,
        pods: vec![Default::default(); pods.len()],
        ..Default::default()
    };
    let n = ExistingNode {
        name: name.into(),
        labels: [
            (model::karpenter::LABEL_NODEPOOL, "default"),
            (model::karpenter::LABEL_INSTANCE_TYPE, "m5.xlarge"),
            (model::karpenter::LABEL_CAPACITY_TYPE, "on-demand"),
            (model::karpenter::LABEL_ZONE, "us-east-1a"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        taints: vec![],
        capacity: t.capacity,
        allocatable: t.allocatable,
        pods,
        daemon_overhead: Res::ZERO,
        unschedulable: false,
        in_flight: false,
        price: 0.192,
        created_ms: 0,
        nodepool_hash: None,
        annotations: Default::default(),
        last_pod_event_ms: 0,
    };
    (n, info)
}

fn cluster(nodes: Vec<(ExistingNode, NodeInfo)>) -> Cluster {
    let mut c = Cluster {
        nodepools: vec![pool()],
        ..Default::default()
    };
    for (n, i) in nodes {
        c.push_node(n, i);
    }
    c
}

/// The reasons of the events one disruption step at `now` recorded.
fn queued(e: &mut NodeEngine, c: &mut Cluster, now: Timestamp) -> Vec<String> {
    let mut rec = Recorder::default();
    e.disrupt(now, c, &mut rec);
    rec.take()
        .into_iter()
        .filter(|ev| ev.reason == "DisruptionQueued" && ev.object.kind == "Node")
        .map(|ev| format!("{}: {}", ev.object.name, ev.message))
        .collect()
}

fn kedge(t0: Timestamp) -> NodeEngine {
    NodeEngine::new(
        Policy::preset(PolicyName::Kedge),
        Arc::new(Catalog::aws()),
        t0,
        0,
    )
}

#[test]
fn an_empty_node_goes_while_a_scale_settles_an_underused_one_waits_for_the_settle() {
    let t0 = Timestamp::from_secs(3600);
    let settle = Policy::preset(PolicyName::Kedge).consolidation_settle;
    assert!(settle >= Duration::from_secs(10), "{settle:?}");

    // A scale-in just happened; node-a has emptied, node-b still holds one consumer (which
    // fits on node-c, so node-b is underutilized).
    let mut c = cluster(vec![
        node("node-a", vec![]),
        node("node-b", vec![consumer(0)]),
        node("node-c", (1..4).map(consumer).collect()),
    ]);
    let mut e = kedge(t0);
    e.note_scale(t0);
    let q = queued(&mut e, &mut c, t0.add(Duration::from_secs(1)));
    assert!(
        !q.is_empty()
            && q.iter()
                .all(|l| l.starts_with("node-a") && l.contains("Empty/")),
        "the empty node is queued during the settle, nothing else: {q:?}"
    );

    // Only the underused node: held until the counts have been steady for the settle.
    let mut c = cluster(vec![
        node("node-b", vec![consumer(0)]),
        node("node-c", (1..4).map(consumer).collect()),
    ]);
    let mut e = kedge(t0);
    e.note_scale(t0);
    for s in [1, 5, 11] {
        let at = t0.add(Duration::from_secs(s));
        if at < t0.add(settle) {
            let q = queued(&mut e, &mut c, at);
            assert!(q.is_empty(), "held at +{s}s: {q:?}");
        }
    }
    let q = queued(&mut e, &mut c, t0.add(settle));
    assert!(
        q.iter()
            .any(|l| l.starts_with("node-b") && l.contains("Underutilized/")),
        "judged once the settle is over: {q:?}"
    );
}

#[test]
fn upstream_has_no_settle_an_underused_node_is_queued_at_once() {
    let t0 = Timestamp::from_secs(3600);
    let mut c = cluster(vec![
        node("node-b", vec![consumer(0)]),
        node("node-c", (1..4).map(consumer).collect()),
    ]);
    let mut e = NodeEngine::new(
        Policy::preset(PolicyName::KedaKarpenter),
        Arc::new(Catalog::aws()),
        t0,
        0,
    );
    e.note_scale(t0);
    let q = queued(&mut e, &mut c, t0.add(Duration::from_secs(1)));
    assert!(
        q.iter()
            .any(|l| l.starts_with("node-b") && l.contains("Underutilized/")),
        "{q:?}"
    );
}
