//! The local twin hands the engine what one message costs each consumer, read from the
//! consumer's status file (`work-ms` ÷ `concurrency`) by the same read that tells busy from
//! idle; a file of the one-line format carries no figure. Time is injected.

use std::time::Duration;

use clock::Timestamp;
use engine::PolicyName;
use scalers::memory::MemoryScaler;

mod common;

/// Ticks until the stand-in consumer's status file reads `want` (bounded).
async fn tick_until(
    twin: &mut cluster::local::LocalCluster,
    file: &std::path::Path,
    want: &str,
    mut t: Timestamp,
) -> Timestamp {
    for attempt in 0.. {
        if std::fs::read_to_string(file).is_ok_and(|s| s == want) {
            break;
        }
        assert!(attempt < 100, "status file never read {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    t = t.add(Duration::from_millis(100));
    twin.tick(t).await.expect("tick");
    t
}

#[tokio::test(flavor = "multi_thread")]
async fn the_engine_sees_work_time_over_concurrency_from_the_status_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metric = MemoryScaler::new(0.0, 0.0);
    // $2 = status file. Idle at first with no figure, as a consumer that has finished
    // nothing; then (on the `go` file) the figure of one that has: 400 ms, four at a time.
    let script = r#"echo idle > "$2"; while [ ! -e "$2.go" ]; do sleep 0.02; done; printf 'busy\nwork-ms 400\nconcurrency 4\n' > "$2.new"; mv "$2.new" "$2"; exec sleep 60"#;
    let t0 = Timestamp::from_secs(1_000_000);
    let mut twin = common::twin(PolicyName::Kedge, script, &metric, dir.path(), t0);
    twin.tick(t0).await.expect("tick");
    let t = t0.add(Duration::from_millis(250));
    twin.tick(t).await.expect("tick");
    assert_eq!(twin.snapshot().running, 1);
    let file = dir.path().join("consumer-0.status");

    let t = tick_until(&mut twin, &file, "idle\n", t).await;
    let pods = twin.consumer_pods();
    assert_eq!(pods.len(), 1, "{pods:?}");
    assert!(!pods[0].busy);
    assert_eq!(pods[0].per_message, None, "nothing finished yet");

    std::fs::write(dir.path().join("consumer-0.status.go"), "").expect("go");
    let t = tick_until(&mut twin, &file, "busy\nwork-ms 400\nconcurrency 4\n", t).await;
    let pods = twin.consumer_pods();
    assert!(pods[0].busy, "{pods:?}");
    assert_eq!(pods[0].per_message, Some(Duration::from_millis(100)));

    // An older consumer's one-line file: no figure any more.
    std::fs::write(&file, "busy\n").expect("write");
    let t = tick_until(&mut twin, &file, "busy\n", t).await;
    assert_eq!(twin.consumer_pods()[0].per_message, None);
    let _ = t;

    twin.shutdown(Duration::from_secs(5)).await;
}
