//! A ScaledObject's latency objective (`autoscaling.kedge.dev/latency-objective`) through the
//! simulator: its consumers report what a message costs them as they work, the engine turns
//! the objective into the backlog one replica may hold, and a burst is worked off by the
//! replicas the objective needs instead of by a `queueLength` of 2 per replica. The
//! `keda-karpenter` policy ignores the annotation.

use cluster::scenario::{Builtin, Source};
use cluster::sim::report::RunReport;
use cluster::sim::{SimConfig, run};
use engine::{Policy, PolicyName};

fn manifests(annotation: &str) -> String {
    format!(
        r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: consumer
  namespace: jobs
  annotations: {{{annotation}}}
spec:
  scaleTargetRef: {{name: consumer}}
  minReplicaCount: 1
  maxReplicaCount: 200
  pollingInterval: 5
  triggers:
  - type: aws-sqs-queue
    metadata: {{queueURL: "https://sqs.us-east-1.amazonaws.com/1/q", queueLength: "2", awsRegion: us-east-1}}
---
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {{name: default}}
spec:
  template:
    spec:
      requirements:
        - {{key: karpenter.k8s.aws/instance-family, operator: In, values: [m5]}}
        - {{key: karpenter.sh/capacity-type, operator: In, values: [on-demand]}}
      nodeClassRef: {{group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}}
  limits: {{cpu: 1000}}
  disruption: {{consolidationPolicy: WhenEmptyOrUnderutilized, consolidateAfter: 30s}}
"#
    )
}

/// A minute of a trickle (the one consumer learns what a message costs), then a burst of 600
/// one-second messages.
const BURST: &str = r#"
name: objective
tick: 1s
boot_delay: 30s
pod_start: 2s
baseline: {instance_type: m5.2xlarge, count: 2}
pod: {cpu: 250m, memory: 64Mi}
consumer: {work: 1s, batch: 1, concurrency: 1, visibility_timeout: 30s}
manifests: [objective-manifests.yaml]
phases:
  - {duration: 60s, producers: 1, rate: 1}
  - {duration: 1s, producers: 1, rate: 600}
  - {duration: 300s, producers: 0}
"#;

fn sim(annotation: &str, policy: PolicyName) -> RunReport {
    let b = Builtin {
        name: "objective",
        scenario: BURST,
        manifests: Box::leak(manifests(annotation).into_boxed_str()),
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
fn a_latency_objective_works_a_burst_off_with_the_replicas_it_needs() {
    let plain = sim("", PolicyName::Kedge);
    let objective = sim(
        r#"autoscaling.kedge.dev/latency-objective: "60s""#,
        PolicyName::Kedge,
    );
    for r in [&plain, &objective] {
        assert_eq!(r.summary.processed, r.summary.messages);
        assert_eq!(r.summary.lost_messages, 0);
    }
    // queueLength 2: ~300 replicas wanted, held at maxReplicaCount.
    assert_eq!(plain.summary.max_replicas, 200);
    // 60 s objective, 1 s per message: 30 messages per replica → about 20 for 600.
    let max = objective.summary.max_replicas;
    assert!((15..=25).contains(&max), "max replicas {max}");
    // The objective is met by the messages of the burst.
    assert!(
        objective.summary.latency_p99_ms <= 60_000,
        "p99 {} ms",
        objective.summary.latency_p99_ms
    );
    // The scaling event says why.
    assert!(
        objective.decisions.iter().any(|d| d.text.contains(
            "latency objective 60s: 1.00s per message, so at most 30.0 messages per replica"
        )),
        "{:#?}",
        objective
            .decisions
            .iter()
            .map(|d| &d.text)
            .collect::<Vec<_>>()
    );
    // Fewer replicas, fewer nodes: the burst fits on the baseline.
    assert!(objective.summary.nodes_launched < plain.summary.nodes_launched);
}

#[test]
fn keda_karpenter_ignores_the_latency_objective() {
    let plain = sim("", PolicyName::KedaKarpenter);
    let objective = sim(
        r#"autoscaling.kedge.dev/latency-objective: "60s""#,
        PolicyName::KedaKarpenter,
    );
    assert_eq!(plain.summary.max_replicas, objective.summary.max_replicas);
    assert_eq!(
        plain.summary.latency_p99_ms,
        objective.summary.latency_p99_ms
    );
    assert!(
        !objective
            .decisions
            .iter()
            .any(|d| d.text.contains("latency objective"))
    );
}
