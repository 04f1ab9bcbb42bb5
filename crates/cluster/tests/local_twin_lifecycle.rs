//! The local twin with stand-in consumers (`sh` scripts that report a fixed busy/idle status):
//! pods fit the baseline, overflow stays Pending while a NodeClaim boots, scale-in SIGTERMs
//! idle consumers only, and shutdown leaves no process behind. Decision time is injected.

use std::time::Duration;

use clock::Timestamp;
use cluster::local::{ConsumerCommand, LocalCluster, LocalConfig, PodPhase};
use model::karpenter::NodePool;
use model::keda::ScaledObject;
use model::quantity::Quantity;

mod common;
use common::{POOL, SO};

fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

#[tokio::test(flavor = "multi_thread")]
async fn overflow_pends_until_a_node_boots_and_scale_in_spares_busy_consumers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let doc = model::manifest::parse_documents(SO).expect("yaml");
    let so: ScaledObject = doc[0].decode().expect("ScaledObject");
    let mut auth = scalers::ResolvedAuth::default();
    auth.params.insert("awsAccessKeyID".into(), "test".into());
    auth.params
        .insert("awsSecretAccessKey".into(), "test".into());
    // $2 = status file, $4 = pod name: consumer-0 and consumer-1 are busy, the rest idle.
    let script = r#"case "$4" in consumer-0|consumer-1) s=busy;; *) s=idle;; esac; echo $s > "$2"; exec sleep 60"#;
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
        pod_dir: dir.path().to_path_buf(),
        joint: true,
        drain_timeout: Duration::from_secs(60),
        kill_after: Duration::from_secs(10),
        consolidation_interval: Duration::from_secs(3600),
    };
    let t0 = Timestamp::from_secs(1_000_000);
    let mut twin = LocalCluster::new(cfg, t0).expect("twin");
    twin.tick(t0).await.expect("tick");
    assert_eq!(twin.snapshot().running, 1);

    // 5 × 500m: three fit the m5.large (1930m allocatable), two wait for a new node.
    twin.set_desired(5);
    let t1 = t0.add(Duration::from_secs(1));
    twin.tick(t1).await.expect("tick");
    let s = twin.snapshot();
    assert_eq!(
        (s.running, s.pending, s.nodes_launching),
        (3, 2, 1),
        "{s:?}"
    );
    assert_eq!(twin.totals.nodes_launched, 1);
    twin.tick(t1.add(Duration::from_secs(5)))
        .await
        .expect("tick");
    assert_eq!(twin.snapshot().pending, 2, "still booting");
    let t2 = t1.add(Duration::from_secs(15));
    twin.tick(t2).await.expect("tick");
    let s = twin.snapshot();
    assert_eq!((s.running, s.pending, s.nodes_ready), (5, 0, 2), "{s:?}");

    // Wait (bounded) for every stand-in consumer to report its status.
    for attempt in 0.. {
        let n = std::fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "status"))
            .count();
        if n == 5 {
            break;
        }
        assert!(attempt < 100, "status files: {n}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pids = twin.pids();
    assert_eq!(pids.len(), 5);

    // Scale in to 1: only the three idle consumers get SIGTERM; the busy two stay.
    twin.set_desired(1);
    let t3 = t2.add(Duration::from_secs(1));
    twin.tick(t3).await.expect("tick");
    let s = twin.snapshot();
    assert_eq!((s.running, s.terminating), (2, 3), "{s:?}");
    for p in &twin.pods {
        if let PodPhase::Running { .. } = p.phase {
            assert!(
                p.name == "consumer-0" || p.name == "consumer-1",
                "{} kept",
                p.name
            );
        }
    }
    assert_eq!(twin.totals.busy_pods_killed, 0);
    for attempt in 0.. {
        twin.tick(t3.add(Duration::from_millis(100 * attempt)))
            .await
            .expect("tick");
        if twin.snapshot().terminating == 0 {
            break;
        }
        assert!(attempt < 100, "SIGTERMed consumers did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    twin.shutdown(Duration::from_secs(5)).await;
    for pid in pids {
        assert!(!pid_alive(pid), "pid {pid} left behind");
    }
}
