//! Joint decisions on and off, with stand-in consumers and injected time.
//!
//! With `joint: true` a scale-out reaches the provision core as a `ReplicaIntent` in the same
//! step, so the NodeClaim launches together with the decision. With `joint: false` capacity
//! is requested only once the pods are Pending and Karpenter's batching window (1 s without
//! new pods) has closed: the first launch comes one window later, and so does the node.

use std::time::Duration;

use clock::Timestamp;
use cluster::local::{ConsumerCommand, LocalCluster, LocalConfig};
use model::karpenter::NodePool;
use model::keda::ScaledObject;
use model::quantity::Quantity;

mod common;
use common::{POOL, SO};

fn twin(joint: bool, dir: &std::path::Path, t0: Timestamp) -> LocalCluster {
    let doc = model::manifest::parse_documents(SO).expect("yaml");
    let so: ScaledObject = doc[0].decode().expect("ScaledObject");
    let mut auth = scalers::ResolvedAuth::default();
    auth.params.insert("awsAccessKeyID".into(), "test".into());
    auth.params
        .insert("awsSecretAccessKey".into(), "test".into());
    // $2 = status file: every stand-in consumer is idle and just waits.
    let script = r#"echo idle > "$2"; exec sleep 60"#;
    let cfg = LocalConfig {
        scaled_object: so,
        auth,
        nodepools: vec![NodePool::from_yaml(POOL).expect("pool")],
        catalog: provision::catalog::Catalog::aws(),
        baseline: vec!["m5.large".into()],
        pod_cpu: Quantity::from_millis(500),
        pod_memory: Quantity::from_mebibytes(32),
        boot_delay: Duration::from_secs(15),
        consumer: ConsumerCommand {
            program: "sh".into(),
            args: vec!["-c".into(), script.into(), "sh".into()],
            env: vec![],
        },
        pod_dir: dir.to_path_buf(),
        joint,
        drain_timeout: Duration::from_secs(60),
        kill_after: Duration::from_secs(10),
        consolidation_interval: Duration::from_secs(3600),
    };
    LocalCluster::new(cfg, t0).expect("twin")
}

/// What one run shows: (launch delay after the scale-out, Ready delay after it, the first
/// provision record).
async fn scale_out_to_five(joint: bool) -> (Duration, Duration, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let t0 = Timestamp::from_secs(1_000_000);
    let mut twin = twin(joint, dir.path(), t0);
    twin.tick(t0).await.expect("tick");
    assert_eq!(twin.snapshot().running, 1);

    // Scale-out to 5 × 500m: three fit the m5.large (1930m allocatable), two need a node.
    twin.set_desired(5);
    let t1 = t0.add(Duration::from_secs(1));
    let mut all_running = None;
    // 250 ms steps for 20 s.
    for step in 0..=80u64 {
        let now = t1.add(Duration::from_millis(250 * step));
        twin.tick(now).await.expect("tick");
        let s = twin.snapshot();
        if step == 0 {
            assert_eq!((s.running, s.pending), (3, 2), "joint {joint}: {s:?}");
        }
        if s.running == 5 && all_running.is_none() {
            all_running = Some(now.since(t1));
        }
    }
    assert_eq!(twin.totals.nodes_launched, 1, "joint {joint}: one node");
    let launched = twin.totals.first_launch_ms.expect("a launch");
    assert_eq!(
        twin.totals.first_launch_after_scale_out_ms,
        Some(launched - t1.as_millis()),
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
    (
        Duration::from_millis(launched - t1.as_millis()),
        all_running.expect("all five running within 20 s"),
        record,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn joint_requests_capacity_with_the_scale_out_and_pending_pods_wait_a_batch() {
    let (launch, ready, record) = scale_out_to_five(true).await;
    assert_eq!(
        launch,
        Duration::ZERO,
        "joint: launched in the scale-out step"
    );
    assert_eq!(
        ready,
        Duration::from_secs(15),
        "joint: ready after the boot"
    );
    assert!(record.contains("(joint)"), "{record}");
    assert!(record.contains("2 announced replicas"), "{record}");

    let (launch, ready, record) = scale_out_to_five(false).await;
    assert_eq!(
        launch,
        Duration::from_secs(1),
        "without joint decisions: one batching window after the pods turned Pending"
    );
    assert_eq!(ready, Duration::from_secs(16));
    assert!(record.contains("(pending pods)"), "{record}");
    assert!(!record.contains("announced"), "{record}");
}
