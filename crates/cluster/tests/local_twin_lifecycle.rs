//! The local twin with stand-in consumers (`sh` scripts that report a fixed busy/idle status):
//! pods fit the baseline, overflow stays Pending while a NodeClaim boots, kedge's scale-in
//! SIGTERMs idle consumers only, and shutdown leaves no process behind. Time is injected.

use std::time::Duration;

use clock::Timestamp;
use cluster::virt::PodState;
use engine::PolicyName;
use scalers::memory::MemoryScaler;

mod common;

fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

#[tokio::test(flavor = "multi_thread")]
async fn overflow_pends_until_a_node_boots_and_scale_in_spares_busy_consumers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metric = MemoryScaler::new(0.0, 0.0);
    // $2 = status file, $4 = pod name: consumer-0 and consumer-1 are busy, the rest idle.
    let script = r#"case "$4" in consumer-0|consumer-1) s=busy;; *) s=idle;; esac; echo $s > "$2"; exec sleep 60"#;
    let t0 = Timestamp::from_secs(1_000_000);
    let mut twin = common::twin(PolicyName::Kedge, script, &metric, dir.path(), t0);
    twin.tick(t0).await.expect("tick");
    twin.tick(t0.add(Duration::from_millis(250)))
        .await
        .expect("tick");
    assert_eq!(twin.snapshot().running, 1);

    // 5 × 500m: three fit the m5.large (1930m allocatable), two wait for a new node.
    metric.set(10.0);
    let t1 = t0.add(Duration::from_secs(1));
    twin.tick(t1).await.expect("tick");
    let s = twin.snapshot();
    // Two more on the m5.large (they start at once), two Pending for the claim in flight.
    assert_eq!(
        (s.desired, s.running, s.pending, s.nodes_launching),
        (5, 3, 2, 1),
        "{s:?}"
    );
    assert_eq!(twin.totals.nodes_launched, 1);
    twin.tick(t1.add(Duration::from_secs(5)))
        .await
        .expect("tick");
    let s = twin.snapshot();
    assert_eq!((s.running, s.pending), (3, 2), "still booting: {s:?}");
    let t2 = t1.add(Duration::from_secs(15));
    twin.tick(t2).await.expect("tick");
    twin.tick(t2.add(Duration::from_millis(250)))
        .await
        .expect("tick");
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

    // The backlog is gone: after the HPA's 300 s scale-down window the count drops to 1, but
    // only the three idle consumers get SIGTERM; the busy two stay (the count follows later).
    metric.set(0.0);
    let t3 = t2.add(Duration::from_secs(302));
    twin.tick(t3).await.expect("tick");
    let s = twin.snapshot();
    assert_eq!((s.desired, s.running, s.terminating), (2, 2, 3), "{s:?}");
    for (key, state, _) in twin.pods() {
        if state == PodState::Running {
            assert!(
                key == "default/consumer-0" || key == "default/consumer-1",
                "{key} kept"
            );
        }
    }
    assert_eq!(twin.totals.busy_pods_killed, 0);
    let text = twin
        .log
        .iter()
        .find(|d| d.kind == "scale" && d.text.contains("New size: 2"))
        .map(|d| d.text.clone())
        .expect("a scale-in record");
    assert!(text.contains("the other 1 to stop are busy"), "{text}");
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
