//! ScaledJobs in the simulator: KEDA's job executor (`engine::jobs`, deciding with
//! `autoscale::scaledjob::step`) on the same engine as ScaledObjects; the substrate plays the
//! Job controller (one pod per Job, replaced when killed) and each Job's consumer receives
//! once, works what it got and exits. Virtual time, one seed: every run is exact.

use cluster::scenario::{Builtin, Source};
use cluster::sim::report::RunReport;
use cluster::sim::{SimConfig, run};
use engine::{Policy, PolicyName};

fn manifests(strategy: &str, max: u32) -> String {
    format!(
        r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata: {{name: worker, namespace: jobs}}
spec:
  pollingInterval: 5
  maxReplicaCount: {max}
  successfulJobsHistoryLimit: 3
  scalingStrategy: {{strategy: {strategy}}}
  jobTargetRef:
    backoffLimit: 2
    template:
      spec:
        containers: [{{name: worker, image: kedge, resources: {{requests: {{cpu: 250m, memory: 64Mi}}}}}}]
  triggers:
  - type: aws-sqs-queue
    metadata: {{queueURL: "https://sqs.us-east-1.amazonaws.com/1/q", queueLength: "1", awsRegion: us-east-1}}
---
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {{name: default}}
spec:
  template:
    spec:
      requirements:
        - {{key: node.kubernetes.io/instance-type, operator: In, values: [m5.xlarge, m5.2xlarge]}}
        - {{key: karpenter.sh/capacity-type, operator: In, values: [on-demand]}}
      nodeClassRef: {{group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}}
  limits: {{cpu: 1000}}
  disruption: {{consolidationPolicy: WhenEmptyOrUnderutilized, consolidateAfter: 30s}}
"#
    )
}

const SCENARIO: &str = r#"
name: jobs
boot_delay: 30s
pod_start: 2s
baseline: {instance_type: m5.large, count: 1}
pod: {cpu: 250m, memory: 64Mi}
consumer: {work: 10s, batch: 1, concurrency: 1, visibility_timeout: 60s, wait_time: 5s}
manifests: [jobs-manifests.yaml]
phases:
  - {duration: 60s, producers: 1, rate: 2}
  - {duration: 240s, producers: 0, rate: 0}
"#;

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn sim(scenario: &str, manifests: String, policy: PolicyName) -> RunReport {
    let b = Builtin {
        name: "jobs",
        scenario: leak(scenario.to_string()),
        manifests: leak(manifests),
        trace: None,
    };
    let loaded = Source::read(None, b)
        .expect("scenario")
        .load()
        .expect("loads");
    let cfg = SimConfig::from_loaded(&loaded, Policy::preset(policy), 7, None).expect("config");
    run(&cfg, &mut |_| {}).expect("runs")
}

#[test]
fn every_message_gets_a_job_nodes_come_for_them_and_go_after() {
    for policy in [PolicyName::KedaKarpenter, PolicyName::Kedge] {
        let r = sim(SCENARIO, manifests("default", 100), policy);
        let s = &r.summary;
        assert_eq!(s.messages, 120, "{policy}");
        assert_eq!(s.processed, s.messages, "{policy}: {s:?}");
        assert_eq!(s.lost_messages, 0);
        let jobs = s.jobs.expect("a ScaledJob run counts Jobs");
        // A Job takes one message (batch 1); some find the queue empty and exit after their
        // long poll, so there are at least as many Jobs as messages, and all complete.
        assert!(jobs.created >= s.messages, "{policy}: {jobs:?}");
        assert_eq!(jobs.succeeded, jobs.created, "{policy}: {jobs:?}");
        assert_eq!(jobs.failed, 0);
        // 2 msgs/s of 10 s work: ~20 Jobs at once, 5 s of capacity on the m5.large baseline;
        // the rest need NodePool nodes, which are consolidated away once the Jobs are done.
        assert!(s.max_replicas >= 15, "{policy}: {s:?}");
        assert!(s.nodes_launched >= 1, "{policy}: {s:?}");
        assert_eq!(s.nodes_removed, s.nodes_launched, "{policy}: {s:?}");
        assert_eq!(s.busy_pods_killed, 0, "{policy}");
        // Every message waited for a Job of its own: a poll (5 s), a node (30 s), the pod's
        // start (2 s) and 10 s of work at most, plus batching.
        assert!(s.latency_p99_ms < 70_000, "{policy}: {s:?}");
        assert!(
            r.decisions
                .iter()
                .any(|d| d.text.contains("ScaledJob jobs/worker KEDAJobsCreated")),
            "{policy}"
        );
    }
}

/// KEDA's docs: `maxReplicaCount` bounds the Jobs running at once; the backlog waits.
#[test]
fn max_replica_count_bounds_the_jobs_running_at_once() {
    let r = sim(SCENARIO, manifests("default", 5), PolicyName::KedaKarpenter);
    let s = &r.summary;
    assert_eq!(s.processed, s.messages);
    assert!(s.max_replicas <= 5, "{s:?}");
    assert!(r.samples.iter().all(|x| x.desired <= 5));
    // 120 messages, 5 at a time, ≥10 s each: at least 240 s.
    assert!(s.simulated_s >= 240.0, "{s:?}");
}

/// Chaos SIGKILLs busy Jobs' consumers: their pods fail, the Job controller gives each Job a
/// new pod (within backoffLimit), the messages come back after their visibility timeout and
/// are processed.
#[test]
fn killed_job_pods_are_replaced_and_their_messages_processed() {
    let chaos = SCENARIO.replace("phases:", "chaos:\n  - {at: 55s, sigkill_busy: 6}\nphases:");
    let r = sim(&chaos, manifests("default", 100), PolicyName::KedaKarpenter);
    let s = &r.summary;
    assert!(
        r.decisions
            .iter()
            .any(|d| d.text == "chaos: SIGKILL to 6 busy consumer(s)"),
        "{:?}",
        r.decisions.iter().map(|d| &d.text).collect::<Vec<_>>()
    );
    assert_eq!(s.processed, s.messages, "{s:?}");
    assert_eq!(s.lost_messages, 0);
    assert!(s.redelivered >= 6, "{s:?}");
    let jobs = s.jobs.expect("jobs");
    assert_eq!(jobs.failed, 0, "one failure each, within backoffLimit 2");
    assert_eq!(jobs.succeeded, jobs.created);
}

/// `accurate` counts pending Jobs against the queue, `eager` fills every free slot: with the
/// same backlog, eager creates at least as many Jobs as default.
#[test]
fn strategies_differ_as_keda_documents() {
    let default = sim(
        SCENARIO,
        manifests("default", 100),
        PolicyName::KedaKarpenter,
    );
    let eager = sim(SCENARIO, manifests("eager", 100), PolicyName::KedaKarpenter);
    let (d, e) = (
        default.summary.jobs.expect("jobs"),
        eager.summary.jobs.expect("jobs"),
    );
    assert!(e.created >= d.created, "eager {e:?} vs default {d:?}");
    assert_eq!(eager.summary.processed, eager.summary.messages);
}
