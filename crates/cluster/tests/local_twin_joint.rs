//! Joint decisions (policy `kedge`) against upstream's path (policy `keda-karpenter`), with
//! stand-in consumers and injected time.
//!
//! With joint decisions a scale-out reaches the provisioner as an intent in the same step,
//! so the NodeClaim launches with the decision. Upstream, the HPA scales at its next 15 s sync
//! and capacity is requested only once the pods are Pending and Karpenter's batch (1 s without
//! new pods) has closed.

use std::time::Duration;

use clock::Timestamp;
use engine::PolicyName;
use scalers::memory::MemoryScaler;

mod common;

/// (launch delay after the scale-out, all five running after it, the launch record).
async fn scale_out_to_five(policy: PolicyName) -> (Duration, Duration, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let t0 = Timestamp::from_secs(1_000_000);
    let metric = MemoryScaler::new(0.0, 0.0);
    // Every stand-in consumer is idle and just waits.
    let script = r#"echo idle > "$2"; exec sleep 60"#;
    let mut twin = common::twin(policy, script, &metric, dir.path(), t0);
    for s in 0..4u64 {
        twin.tick(t0.add(Duration::from_millis(250 * s)))
            .await
            .expect("tick");
    }
    assert_eq!(twin.snapshot().running, 1);

    // A backlog of 10 at queueLength 2: 5 × 500m; three fit the m5.large (1930m), two need
    // a node.
    metric.set(10.0);
    let t1 = t0.add(Duration::from_secs(1));
    let mut all_running = None;
    for step in 0..=160u64 {
        let now = t1.add(Duration::from_millis(250 * step));
        twin.tick(now).await.expect("tick");
        let s = twin.snapshot();
        if s.running == 5 && all_running.is_none() {
            all_running = Some(now.as_millis());
        }
    }
    assert_eq!(twin.desired(), 5, "{policy}");
    assert_eq!(twin.totals.nodes_launched, 1, "{policy}: one node");
    let scale_out = twin.totals.first_scale_out_ms.expect("a scale-out");
    match policy {
        // kedge polls every pollingInterval (1 s): the backlog is seen at once.
        PolicyName::Kedge => assert_eq!(scale_out - t0.as_millis(), 1000),
        // Upstream, KEDA's 1 s poll only activates; the HPA's next 15 s sync scales out.
        _ => assert_eq!(scale_out - t0.as_millis(), 15_000),
    }
    let launched = twin.totals.first_launch_ms.expect("a launch");
    assert_eq!(
        twin.totals.first_launch_after_scale_out_ms,
        Some(launched - scale_out),
        "measured from the scale-out"
    );
    let record = twin
        .log
        .iter()
        .find(|d| d.kind == "provision")
        .expect("a provision record")
        .text
        .clone();
    twin.shutdown(Duration::from_secs(5)).await;
    let running = all_running.expect("all five running within 40 s");
    (
        Duration::from_millis(launched - scale_out),
        Duration::from_millis(running - scale_out),
        record,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn joint_requests_capacity_with_the_scale_out_and_upstream_waits_a_batch() {
    let (launch, ready, record) = scale_out_to_five(PolicyName::Kedge).await;
    assert_eq!(
        launch,
        Duration::ZERO,
        "joint: launched in the scale-out step"
    );
    assert_eq!(
        ready,
        Duration::from_secs(15),
        "joint: running after the boot"
    );
    assert!(record.contains("(announced replicas)"), "{record}");
    assert!(record.contains("2 of them announced"), "{record}");

    let (launch, ready, record) = scale_out_to_five(PolicyName::KedaKarpenter).await;
    // The pods turn Pending in the scale-out step; the provisioner first sees them one tick
    // later and the batch closes 1 s after that.
    assert_eq!(
        launch,
        Duration::from_millis(1250),
        "upstream: one batching window after the pods turned Pending"
    );
    assert_eq!(ready, Duration::from_millis(16_250));
    assert!(record.contains("(pending pods)"), "{record}");
    assert!(!record.contains("announced"), "{record}");
}
