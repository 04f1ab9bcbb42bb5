//! Injected faults in the local twin (stand-in consumers, injected time): the twin only
//! injects the fault; the engine decides what happens next, as in the simulator
//! (`sim_faults.rs`).

use std::time::Duration;

use clock::Timestamp;
use cluster::scenario::{Fault, FaultKind};
use engine::PolicyName;
use scalers::memory::MemoryScaler;

mod common;

const IDLE: &str = r#"echo idle > "$2"; exec sleep 60"#;

fn fault(kind: FaultKind, at: u64, secs: u64, types: &[&str]) -> Fault {
    Fault {
        at: Duration::from_secs(at),
        duration: Duration::from_secs(secs),
        kind,
        instance_types: types.iter().map(|s| s.to_string()).collect(),
        share: None,
    }
}

fn log_has(twin: &cluster::local::LocalCluster, needle: &str) -> bool {
    twin.log.iter().any(|d| d.text.contains(needle))
}

#[tokio::test(flavor = "multi_thread")]
async fn twin_scaler_down_holds_the_count_and_resumes_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metric = MemoryScaler::new(0.0, 0.0);
    let t0 = Timestamp::from_secs(1_000_000);
    let mut twin = common::twin(PolicyName::Kedge, IDLE, &metric, dir.path(), t0);
    twin.set_faults(vec![fault(FaultKind::ScalerDown, 10, 600, &[])], t0);
    twin.tick(t0).await.expect("tick");
    metric.set(10.0);
    twin.tick(t0.add(Duration::from_secs(1)))
        .await
        .expect("tick");
    assert_eq!(twin.desired(), 5);
    // The source goes down at 10 s and the backlog is gone: the count is held, well past
    // the 300 s scale-down window.
    metric.set(0.0);
    for s in [10, 11, 200, 400, 609] {
        twin.tick(t0.add(Duration::from_secs(s)))
            .await
            .expect("tick");
        assert_eq!(twin.desired(), 5, "held at {s} s");
    }
    assert!(log_has(&twin, "KEDAScalerFailed"));
    // It answers again (0): the count follows, after the scale-down window.
    for s in (610..=1000).step_by(30) {
        twin.tick(t0.add(Duration::from_secs(s)))
            .await
            .expect("tick");
    }
    assert!(twin.desired() < 5, "scaled in after: {}", twin.desired());
    twin.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn twin_no_capacity_is_remembered_and_the_pods_get_a_node_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metric = MemoryScaler::new(0.0, 0.0);
    let t0 = Timestamp::from_secs(1_000_000);
    let mut twin = common::twin(PolicyName::Kedge, IDLE, &metric, dir.path(), t0);
    // The NodePool allows m5.xlarge only; the cloud has none for two minutes.
    twin.set_faults(
        vec![fault(FaultKind::NoCapacity, 0, 120, &["m5.xlarge"])],
        t0,
    );
    twin.tick(t0).await.expect("tick");
    metric.set(10.0);
    let t1 = t0.add(Duration::from_secs(1));
    twin.tick(t1).await.expect("tick");
    assert!(log_has(&twin, "InsufficientCapacityError"));
    // The claim's only option (m5.xlarge in its cheapest zone) is refused: no option left,
    // the two pods that do not fit the baseline stay Pending; each next batch (1 s) plans
    // them in a zone not yet refused, until every zone's offering is remembered.
    assert!(log_has(&twin, "stay Pending"));
    for s in 2..=10 {
        twin.tick(t1.add(Duration::from_secs(s)))
            .await
            .expect("tick");
    }
    assert_eq!(twin.totals.nodes_launched, 0);
    let s = twin.snapshot();
    assert_eq!((s.pending, s.nodes_launching), (2, 0), "{s:?}");
    // Within the 3-minute TTL nothing is asked for again, even after the fault ended.
    let refused = |twin: &cluster::local::LocalCluster| {
        twin.log
            .iter()
            .filter(|d| d.text.contains("refused"))
            .count()
    };
    let n = refused(&twin);
    assert_eq!(n, 3, "one refusal per zone");
    for s in (11..180).step_by(5) {
        twin.tick(t1.add(Duration::from_secs(s)))
            .await
            .expect("tick");
    }
    assert_eq!(refused(&twin), n);
    assert_eq!(twin.totals.nodes_launched, 0);
    // After it the pods get their node.
    for s in (181..=200).step_by(1) {
        twin.tick(t1.add(Duration::from_secs(s)))
            .await
            .expect("tick");
    }
    assert_eq!(twin.totals.nodes_launched, 1);
    twin.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn twin_node_that_never_becomes_ready_is_replaced_after_15_minutes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metric = MemoryScaler::new(0.0, 0.0);
    let t0 = Timestamp::from_secs(1_000_000);
    let mut twin = common::twin(PolicyName::Kedge, IDLE, &metric, dir.path(), t0);
    twin.set_faults(vec![fault(FaultKind::NodeNotReady, 0, 600, &[])], t0);
    twin.tick(t0).await.expect("tick");
    metric.set(10.0);
    let t1 = t0.add(Duration::from_secs(1));
    twin.tick(t1).await.expect("tick");
    assert_eq!(twin.totals.nodes_launched, 1);
    for s in [20, 300, 899] {
        twin.tick(t1.add(Duration::from_secs(s)))
            .await
            .expect("tick");
        let snap = twin.snapshot();
        assert_eq!(
            (snap.pending, snap.nodes_launching),
            (2, 1),
            "waiting at {s} s: {snap:?}"
        );
    }
    let ttl = t1.add(Duration::from_secs(900));
    twin.tick(ttl).await.expect("tick");
    assert!(log_has(&twin, "RegistrationTimeout"));
    assert_eq!(twin.totals.nodes_removed, 1);
    // The pods are planned again (the fault is over): a new node, Ready after its boot.
    for s in 1..=20 {
        twin.tick(ttl.add(Duration::from_secs(s)))
            .await
            .expect("tick");
    }
    assert_eq!(twin.totals.nodes_launched, 2);
    let snap = twin.snapshot();
    assert_eq!((snap.pending, snap.nodes_ready), (0, 2), "{snap:?}");
    twin.shutdown(Duration::from_secs(5)).await;
}
