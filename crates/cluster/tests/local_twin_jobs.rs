//! A ScaledJob in the local twin: KEDA's executor (in the engine) creates Jobs as the trigger
//! reports work, each Job's pod runs one consumer process that exits when done (exit 0
//! completes the Job), pods that do not fit wait for a NodeClaim, finished Jobs beyond
//! `successfulJobsHistoryLimit` are deleted. Stand-in consumers (`sh` scripts); time injected.

use std::time::Duration;

use clock::Timestamp;
use scalers::memory::MemoryScaler;

mod common;

const SJ: &str = r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata: {name: worker, namespace: default}
spec:
  pollingInterval: 1
  maxReplicaCount: 10
  successfulJobsHistoryLimit: 2
  jobTargetRef:
    template:
      spec:
        containers: [{name: worker, image: kedge}]
  triggers:
  - type: aws-sqs-queue
    metadata:
      queueURL: http://127.0.0.1:9/000000000000/q
      awsEndpoint: http://127.0.0.1:9
      queueLength: "1"
      awsRegion: us-east-1
"#;

#[tokio::test(flavor = "multi_thread")]
async fn jobs_are_created_per_message_run_once_and_complete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metric = MemoryScaler::new(0.0, 0.0);
    // A Job's consumer: works until its "done" file appears, then exits 0.
    let done = dir.path().join("done");
    let script = format!(
        r#"echo busy > "$2"; while [ ! -e {} ]; do sleep 0.05; done; echo idle > "$2"; exit 0"#,
        done.display()
    );
    let t0 = Timestamp::from_secs(1_000_000);
    let mut twin = common::job_twin(SJ, &script, &metric, dir.path(), t0);
    twin.tick(t0).await.expect("tick");
    let s = twin.snapshot();
    assert_eq!(
        (s.desired, s.running, s.pending),
        (0, 0, 0),
        "no work, no Job"
    );
    assert_eq!(twin.job_counts(), Some((0, 0, 0)));

    // 5 messages: 5 Jobs of 500m; three fit the m5.large, two wait for a NodeClaim.
    metric.set(5.0);
    let t1 = t0.add(Duration::from_secs(1));
    twin.tick(t1).await.expect("tick");
    let s = twin.snapshot();
    assert_eq!((s.desired, s.running, s.pending), (5, 3, 2), "{s:?}");
    assert_eq!(twin.job_counts(), Some((5, 0, 0)));
    assert!(
        twin.log.iter().any(|d| d
            .text
            .contains("ScaledJob default/worker KEDAJobsCreated: Created 5 jobs")),
        "{:?}",
        twin.log
    );
    // The next poll: the 5 messages are the 5 running Jobs' (default strategy: 5 - 5 = 0).
    twin.tick(t1.add(Duration::from_secs(1)))
        .await
        .expect("tick");
    assert_eq!(twin.job_counts(), Some((5, 0, 0)));
    let t2 = t1.add(Duration::from_secs(16));
    twin.tick(t2).await.expect("tick");
    twin.tick(t2.add(Duration::from_millis(100)))
        .await
        .expect("tick");
    let s = twin.snapshot();
    assert_eq!((s.running, s.pending, s.nodes_ready), (5, 0, 2), "{s:?}");

    // The work is done: every consumer exits 0, every Job completes; the queue is empty.
    metric.set(0.0);
    std::fs::write(&done, "").expect("done file");
    let mut t = t2.add(Duration::from_secs(1));
    for attempt in 0.. {
        twin.tick(t).await.expect("tick");
        if twin.job_counts() == Some((5, 5, 0)) {
            break;
        }
        assert!(attempt < 200, "jobs: {:?}", twin.job_counts());
        tokio::time::sleep(Duration::from_millis(50)).await;
        t = t.add(Duration::from_millis(100));
    }
    let s = twin.snapshot();
    assert_eq!((s.desired, s.running), (0, 0), "{s:?}");
    assert_eq!(twin.totals.pods_exited_unexpectedly, 0);
    // No Job is left running, nothing new is created on an empty queue.
    twin.tick(t.add(Duration::from_secs(2)))
        .await
        .expect("tick");
    assert_eq!(twin.job_counts(), Some((5, 5, 0)));
    assert!(twin.pids().is_empty());
    twin.shutdown(Duration::from_secs(5)).await;
}
