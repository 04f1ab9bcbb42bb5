//! Faults in the node decision path, at the engine's boundary: the cloud has no capacity for
//! an offering (Karpenter's unavailable-offerings cache, 3 minutes), a claim whose node never
//! registers (Karpenter's registration TTL, 15 minutes). The substrates inject the faults; the
//! simulator's and the twin's tests run them end to end (`crates/cluster/tests/`).

use std::sync::Arc;
use std::time::Duration;

use clock::Timestamp;
use engine::capacity::UNAVAILABLE_OFFERINGS_TTL;
use engine::liveness::REGISTRATION_TTL;
use engine::{Cluster, Effect, Launch, NodeEngine, NodeInfo, Policy, PolicyName, Recorder};
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
        - {key: karpenter.k8s.aws/instance-family, operator: In, values: [m5, c5, r5]}
        - {key: karpenter.sh/capacity-type, operator: In, values: [on-demand]}
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
  limits: {cpu: 1000}
"#,
    )
    .expect("pool")
}

fn pending(n: usize) -> Vec<Pod> {
    (0..n)
        .map(|i| {
            let mut p = Pod::with_requests(
                &format!("consumer-{i}"),
                "500m".parse().unwrap(),
                "256Mi".parse().unwrap(),
            );
            p.metadata.namespace = Some("jobs".into());
            p
        })
        .collect()
}

fn engine(t0: Timestamp) -> NodeEngine {
    NodeEngine::new(
        Policy::preset(PolicyName::KedaKarpenter),
        Arc::new(Catalog::aws()),
        t0,
        0,
    )
}

/// Step provisioning until it launches (the batch window closes).
fn launch(e: &mut NodeEngine, c: &mut Cluster, from: Timestamp, rec: &mut Recorder) -> Launch {
    for ms in (0..=20_000).step_by(100) {
        let now = from.add(Duration::from_millis(ms));
        let out = e.provision(now, c, rec);
        if let Some(Effect::Launch(l)) = out.into_iter().next() {
            return l;
        }
    }
    panic!("nothing launched within 20 s");
}

fn in_flight(c: &mut Cluster, l: &Launch, at: Timestamp) {
    let o = &l.claim.options[0];
    let it = Catalog::aws();
    let t = it.get(&o.instance_type).expect("type").clone();
    c.push_node(
        ExistingNode {
            name: l.name.clone(),
            labels: [
                (
                    model::karpenter::LABEL_NODEPOOL.to_string(),
                    "default".to_string(),
                ),
                (
                    model::karpenter::LABEL_INSTANCE_TYPE.to_string(),
                    t.name.clone(),
                ),
                (
                    model::karpenter::LABEL_CAPACITY_TYPE.to_string(),
                    o.capacity_type.clone(),
                ),
                (model::karpenter::LABEL_ZONE.to_string(), o.zone.clone()),
            ]
            .into_iter()
            .collect(),
            taints: vec![],
            capacity: t.capacity,
            allocatable: t.allocatable,
            pods: vec![],
            daemon_overhead: Res::ZERO,
            unschedulable: false,
            in_flight: true,
            price: o.price,
            created_ms: at.as_millis(),
            nodepool_hash: None,
            annotations: Default::default(),
            last_pod_event_ms: at.as_millis(),
        },
        NodeInfo {
            claim: Some(l.name.clone()),
            ..Default::default()
        },
    );
}

#[test]
fn no_capacity_relaunches_on_the_next_cheapest_at_once_and_remembers_the_offering_for_3_minutes() {
    let t0 = Timestamp::from_secs(1_000_000);
    let mut e = engine(t0);
    let mut rec = Recorder::default();
    let mut c = Cluster {
        nodepools: vec![pool()],
        pending: pending(3),
        ..Default::default()
    };
    let first = launch(&mut e, &mut c, t0, &mut rec);
    let cheapest = first.claim.options[0].clone();
    let failed_at = t0.add(Duration::from_secs(2));
    let out = e.launch_failed(failed_at, &first, &cheapest, &mut rec);
    // The relaunch is in the same call (same `now`): no batch window, no requeue.
    let [Effect::Launch(second)] = out.as_slice() else {
        panic!("one relaunch expected: {out:?}");
    };
    assert_ne!(second.name, first.name, "a new NodeClaim");
    assert_eq!(second.claim.pods, first.claim.pods, "the same pods");
    let next = &second.claim.options[0];
    assert_ne!(next.instance_type, cheapest.instance_type);
    assert!(next.price >= cheapest.price);
    assert_eq!(next, &first.claim.options[1], "the next-cheapest option");
    let ev = rec.take();
    assert!(
        ev.iter()
            .any(|e| e.reason == "InsufficientCapacityError" && e.warning),
        "{ev:?}"
    );

    // Within the TTL, a new plan for other pods does not ask for the offering again.
    let mut c2 = Cluster {
        nodepools: vec![pool()],
        pending: pending(3),
        ..Default::default()
    };
    let mut fresh = e.clone();
    let within = failed_at.add(UNAVAILABLE_OFFERINGS_TTL - Duration::from_secs(30));
    let l = launch(&mut fresh, &mut c2, within, &mut rec);
    assert!(
        l.claim
            .options
            .iter()
            .all(|o| !(o.instance_type == cheapest.instance_type
                && o.zone == cheapest.zone
                && o.capacity_type == cheapest.capacity_type)),
        "the unavailable offering is not offered: {:?}",
        l.claim.options[0]
    );
    // After the TTL it is the first choice again.
    let mut c3 = Cluster {
        nodepools: vec![pool()],
        pending: pending(3),
        ..Default::default()
    };
    let mut later = e.clone();
    let after = failed_at.add(UNAVAILABLE_OFFERINGS_TTL);
    let l = launch(&mut later, &mut c3, after, &mut rec);
    assert_eq!(l.claim.options[0], cheapest);
}

#[test]
fn a_failed_launch_with_no_option_left_leaves_the_pods_pending_for_the_next_batch() {
    let t0 = Timestamp::from_secs(1_000_000);
    let mut e = engine(t0);
    let mut rec = Recorder::default();
    let mut c = Cluster {
        nodepools: vec![pool()],
        pending: pending(1),
        ..Default::default()
    };
    let mut l = launch(&mut e, &mut c, t0, &mut rec);
    let mut now = t0.add(Duration::from_secs(2));
    let mut relaunches = 0;
    loop {
        let o = l.claim.options[0].clone();
        let out = e.launch_failed(now, &l, &o, &mut rec);
        match out.into_iter().next() {
            Some(Effect::Launch(next)) => {
                relaunches += 1;
                l = next;
            }
            _ => break,
        }
        now = now.add(Duration::from_millis(1));
    }
    assert!(relaunches > 3, "{relaunches}");
    let ev = rec.take();
    assert!(
        ev.iter().any(|e| e.message.contains("stay Pending")),
        "{:?}",
        ev.last()
    );
    // Every option of the claim (each type's cheapest offering: one zone) is unavailable; the
    // next batch plans the pod on what is still available: the same types in another zone.
    let failed_zone = l.claim.options[0].zone.clone();
    let again = launch(&mut e, &mut c, now, &mut rec);
    assert_ne!(again.claim.options[0].zone, failed_zone);
    assert!(
        again.claim.options.iter().all(|o| o.zone != failed_zone),
        "{:?}",
        again.claim.options
    );
    // Three minutes later the first zone is offered again.
    let l = launch(&mut e, &mut c, now.add(UNAVAILABLE_OFFERINGS_TTL), &mut rec);
    assert_eq!(l.claim.options[0].zone, failed_zone);
}

#[test]
fn a_claim_whose_node_never_registers_is_deleted_after_15_minutes_and_its_pods_get_a_new_one() {
    let t0 = Timestamp::from_secs(1_000_000);
    let mut e = engine(t0);
    let mut rec = Recorder::default();
    let mut c = Cluster {
        nodepools: vec![pool()],
        pending: pending(2),
        ..Default::default()
    };
    let l = launch(&mut e, &mut c, t0, &mut rec);
    let launched = t0.add(Duration::from_secs(1));
    in_flight(&mut c, &l, launched);
    // While it is in flight, the pods wait for it: nothing more is launched, nothing deleted.
    let mut now = launched;
    while now < launched.add(REGISTRATION_TTL) {
        assert!(e.provision(now, &mut c, &mut rec).is_empty());
        assert!(e.liveness(now, &mut c, &mut rec).is_empty());
        assert!(e.next_wake() <= launched.add(REGISTRATION_TTL));
        now = now.add(Duration::from_secs(10));
    }
    let deadline = launched.add(REGISTRATION_TTL);
    let out = e.liveness(deadline, &mut c, &mut rec);
    assert_eq!(
        out,
        [Effect::Delete {
            node: l.name.clone(),
            claim: Some(l.name.clone())
        }]
    );
    assert!(c.info[0].deleting);
    // The substrate deletes it; the pods (still Pending) get a new claim in the next batch.
    c.nodes.clear();
    c.info.clear();
    let again = launch(&mut e, &mut c, deadline, &mut rec);
    assert_ne!(again.name, l.name);
    assert_eq!(again.claim.pods.len(), 2);
    let ev = rec.take();
    assert!(
        ev.iter().any(|e| e.reason == "RegistrationTimeout"),
        "{ev:?}"
    );
}
