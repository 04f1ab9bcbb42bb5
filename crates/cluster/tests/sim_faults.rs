//! Injected faults in the decision path, in the simulator: the scenario's `faults:` are
//! injected by the substrate; what happens next is the engine's (and the cores') decision.
//! Virtual time, one seed: every run is exact.
//!
//! - `scaler-down`: KEDA's `fallback` after `failureThreshold` failed polls (each behavior);
//!   without fallback the replica count is held, not dropped to the minimum.
//! - `no-capacity`: the claim is relaunched on the next-cheapest option in the same step, and
//!   the refused offering is not asked for again for 3 minutes.
//! - `node-not-ready`: the claim is deleted after Karpenter's 15-minute registration TTL and
//!   its pods (never bound to it) get a new claim; nothing is lost.
//! - `consumer-crash`: poison messages go to the DLQ after maxReceiveCount receives, so the
//!   backlog (and with it the replica count) comes down; without a DLQ it never does.

use std::time::Duration;

use cluster::scenario::{Builtin, Source};
use cluster::sim::report::RunReport;
use cluster::sim::{SimConfig, run};
use engine::{Policy, PolicyName};

const POOL: &str = r#"
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: default}
spec:
  template:
    spec:
      requirements:
        - {key: karpenter.k8s.aws/instance-family, operator: In, values: [m5, c5]}
        - {key: karpenter.sh/capacity-type, operator: In, values: [on-demand]}
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
  limits: {cpu: 1000}
  disruption: {consolidationPolicy: WhenEmptyOrUnderutilized, consolidateAfter: 60s}
"#;

fn so(extra: &str) -> String {
    format!(
        r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: consumer, namespace: jobs}}
spec:
  scaleTargetRef: {{name: consumer}}
  minReplicaCount: 1
  maxReplicaCount: 200
  pollingInterval: 15
{extra}
  triggers:
  - type: aws-sqs-queue
    metadata: {{queueURL: "https://sqs.us-east-1.amazonaws.com/1/q", queueLength: "2", awsRegion: us-east-1}}
---
{POOL}"#
    )
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Run `scenario` (YAML; its manifests are `manifests`) with `policy`.
fn sim(scenario: &str, manifests: &str, policy: PolicyName) -> RunReport {
    sim_limited(scenario, manifests, policy, None)
}

/// ... stopping `drain` after the arrivals end even if messages are left.
fn sim_limited(
    scenario: &str,
    manifests: &str,
    policy: PolicyName,
    drain: Option<Duration>,
) -> RunReport {
    let b = Builtin {
        name: "faults",
        scenario: leak(scenario.to_string()),
        manifests: leak(manifests.to_string()),
        trace: None,
    };
    let loaded = Source::read(None, b)
        .expect("scenario")
        .load()
        .expect("loads");
    let mut cfg = SimConfig::from_loaded(&loaded, Policy::preset(policy), 7, None).expect("config");
    if let Some(d) = drain {
        cfg.drain_limit = d;
    }
    run(&cfg, &mut |_| {}).expect("runs")
}

fn desired_at(r: &RunReport, t_s: f64) -> u32 {
    r.samples
        .iter()
        .take_while(|s| s.t_s <= t_s)
        .last()
        .map_or(0, |s| s.desired)
}

const STEADY: &str = r#"
name: faults
tick: 1s
boot_delay: 30s
pod_start: 2s
baseline: {instance_type: m5.2xlarge, count: 4}
pod: {cpu: 250m, memory: 64Mi}
consumer: {work: 1s, batch: 1, concurrency: 1, visibility_timeout: 30s}
manifests: [faults-manifests.yaml]
phases:
  - {duration: 900s, producers: 1, rate: 10}
"#;

#[test]
fn scaler_down_without_fallback_holds_the_replica_count() {
    let s = format!("{STEADY}faults:\n  - {{at: 300s, for: 300s, kind: scaler-down}}\n");
    let r = sim(&s, &so(""), PolicyName::KedaKarpenter);
    let before = desired_at(&r, 295.0);
    assert!(before > 3, "scaled out before the fault: {before}");
    for smp in r.samples.iter().filter(|x| x.t_s > 300.0 && x.t_s < 600.0) {
        assert_eq!(
            smp.desired, before,
            "held at {before} while the source is down (t={}s)",
            smp.t_s
        );
    }
    assert!(
        r.decisions
            .iter()
            .any(|d| d.text.contains("KEDAScalerFailed")),
        "the failure is reported"
    );
    assert_eq!(r.summary.lost_messages, 0);
    assert_eq!(r.summary.processed, r.summary.messages);
}

#[test]
fn scaler_down_with_fallback_uses_each_behavior_after_the_failure_threshold() {
    // (behavior, replicas as a function of the count when the fault began)
    type Want = fn(u32) -> u32;
    let cases: [(&str, Want); 4] = [
        ("static", |_| 3),
        ("currentReplicas", |c| c),
        ("currentReplicasIfHigher", |c| c.max(3)),
        ("currentReplicasIfLower", |c| c.min(3)),
    ];
    for (behavior, want) in cases {
        // No scale-down window, so the fallback count shows as soon as it applies (the HPA's
        // behavior still applies to it, as to any metric: with the default 300 s window the
        // count comes down through the window).
        let extra = format!(
            "  fallback:\n    failureThreshold: 3\n    replicas: 3\n    behavior: {behavior}\n  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleDown: {{stabilizationWindowSeconds: 0}}\n"
        );
        let s = format!("{STEADY}faults:\n  - {{at: 300s, for: 300s, kind: scaler-down}}\n");
        let r = sim(&s, &so(&extra), PolicyName::KedaKarpenter);
        let before = desired_at(&r, 299.0);
        assert!(
            before > 3,
            "{behavior}: scaled out before the fault: {before}"
        );
        // Three failed polls at 15 s intervals (300, 315, 330 s), then the HPA's sync: by
        // 345 s the fallback count is written; it stays until the source answers again.
        for smp in r.samples.iter().filter(|x| x.t_s >= 346.0 && x.t_s < 600.0) {
            assert_eq!(
                smp.desired,
                want(before),
                "{behavior} at t={}s (was {before})",
                smp.t_s
            );
        }
        // The source answers again: the count follows the queue again.
        let after = desired_at(&r, 720.0);
        assert!(after > 3, "{behavior}: back to the metric: {after}");
        assert_eq!(r.summary.lost_messages, 0, "{behavior}");
    }
}

const NODES: &str = r#"
name: faults
tick: 1s
boot_delay: 30s
pod_start: 2s
baseline: {instance_type: m5.large, count: 1}
pod: {cpu: 500m, memory: 256Mi}
consumer: {work: 2s, batch: 1, concurrency: 1, visibility_timeout: 30s}
manifests: [faults-manifests.yaml]
phases:
  - {duration: 600s, producers: 1, rate: 4}
"#;

fn launched_types(r: &RunReport) -> Vec<(u64, String)> {
    r.decisions
        .iter()
        .filter(|d| d.text.contains(" Launched: launch "))
        .filter_map(|d| {
            let after = d.text.split("): ").nth(1)?;
            Some((d.at_ms, after.split(' ').next()?.to_string()))
        })
        .collect()
}

#[test]
fn no_capacity_relaunches_on_the_next_cheapest_in_the_same_step_and_remembers_for_3_minutes() {
    let clean = sim(NODES, &so(""), PolicyName::KedaKarpenter);
    let first = launched_types(&clean);
    let (_, cheapest) = first.first().cloned().expect("the clean run launches");
    let s = format!(
        "{NODES}faults:\n  - {{at: 0s, for: 600s, kind: no-capacity, instance_types: [{cheapest}]}}\n"
    );
    let r = sim(&s, &so(""), PolicyName::KedaKarpenter);
    let refused: Vec<u64> = r
        .decisions
        .iter()
        .filter(|d| {
            d.kind == "node"
                && d.text.contains("launch of")
                && d.text.contains("refused")
                && !d.text.contains("replacement")
        })
        .map(|d| d.at_ms)
        .collect();
    assert!(!refused.is_empty(), "the fault refused a launch");
    // Each refusal is answered in the same step by a launch of another type.
    for &t in &refused {
        let next = r
            .decisions
            .iter()
            .find(|d| d.at_ms == t && d.text.contains("(instead of "))
            .unwrap_or_else(|| panic!("no relaunch at {t} ms"));
        assert!(
            !next.text.contains(&format!(": {cheapest} ")),
            "{}",
            next.text
        );
    }
    // The refused offering is not asked for again within 3 minutes (per zone it is one
    // offering; the catalog's prices tie across zones, so a relaunch may try another zone
    // of the same type first: at most one refusal per zone and TTL).
    let zones = 3;
    for w in refused.windows(zones + 1) {
        assert!(
            w[zones] - w[0] >= 180_000,
            "more than {zones} refusals within 3 minutes: {refused:?}"
        );
    }
    assert!(
        r.decisions
            .iter()
            .any(|d| d.text.contains("InsufficientCapacityError")),
        "reported"
    );
    assert_eq!(r.summary.lost_messages, 0);
    assert_eq!(r.summary.processed, r.summary.messages);
    assert!(
        !r.decisions
            .iter()
            .any(|d| d.kind == "node" && d.text.contains(&format!("({cheapest}) is Ready"))),
        "no node of the refused type"
    );
}

#[test]
fn a_node_that_never_becomes_ready_is_replaced_after_15_minutes_and_no_pod_is_stranded() {
    let s = format!("{NODES}faults:\n  - {{at: 0s, for: 600s, kind: node-not-ready}}\n");
    let r = sim(&s, &so(""), PolicyName::KedaKarpenter);
    let launches = launched_types(&r);
    let (first_at, _) = launches.first().cloned().expect("a launch");
    let timeouts: Vec<u64> = r
        .decisions
        .iter()
        .filter(|d| d.text.contains("RegistrationTimeout"))
        .map(|d| d.at_ms)
        .collect();
    assert!(!timeouts.is_empty(), "the stuck claim is deleted");
    assert_eq!(
        timeouts[0],
        first_at + 15 * 60 * 1000,
        "exactly at the registration TTL"
    );
    // Pods waited Pending for it (never bound to a node that is not Ready) ...
    assert!(
        r.samples
            .iter()
            .any(|x| x.t_s > 60.0 && x.t_s < 900.0 && x.pending > 0)
    );
    // ... and a new claim, launched after the fault, took them.
    assert!(
        launches.iter().any(|(t, _)| *t >= timeouts[0]),
        "a replacement claim: {launches:?}"
    );
    assert!(
        r.decisions
            .iter()
            .any(|d| d.kind == "node" && d.text.ends_with("is Ready") && d.at_ms > timeouts[0]),
        "the new node became Ready"
    );
    // Every claim launched while nodes could not become Ready was deleted exactly at its
    // TTL; none is left waiting.
    let stuck: Vec<u64> = launches
        .iter()
        .filter(|(t, _)| *t < 600_000)
        .map(|(t, _)| *t)
        .collect();
    // (The run ends when the backlog is done: later deadlines are not reached.)
    let end_ms = (r.summary.simulated_s * 1000.0) as u64;
    let mut expected: Vec<u64> = stuck
        .iter()
        .map(|t| t + 15 * 60 * 1000)
        .filter(|&t| t <= end_ms)
        .collect();
    expected.sort();
    assert_eq!(timeouts, expected);
    assert_eq!(r.summary.lost_messages, 0);
    assert_eq!(r.summary.processed, r.summary.messages);
}

const CRASH: &str = r#"
name: faults
tick: 1s
boot_delay: 30s
pod_start: 2s
baseline: {instance_type: m5.2xlarge, count: 8}
pod: {cpu: 250m, memory: 64Mi}
consumer: {work: 1s, batch: 1, concurrency: 1, visibility_timeout: 30s}
manifests: [faults-manifests.yaml]
phases:
  - {duration: 600s, producers: 1, rate: 10}
"#;

#[test]
fn poison_messages_crash_their_consumers_until_the_dlq_takes_them_and_the_backlog_drains() {
    let clean = sim(CRASH, &so(""), PolicyName::KedaKarpenter);
    let poison = "faults:\n  - {at: 0s, for: 3600s, kind: consumer-crash, share: 0.05}\n";
    let limit = Some(Duration::from_secs(1800));
    let r = sim_limited(
        &format!("{CRASH}queue: {{max_receive_count: 5}}\n{poison}"),
        &so(""),
        PolicyName::KedaKarpenter,
        limit,
    );
    // The same poison without a DLQ in reach (maxReceiveCount 1000).
    let no_dlq = sim_limited(
        &format!("{CRASH}queue: {{max_receive_count: 1000}}\n{poison}"),
        &so(""),
        PolicyName::KedaKarpenter,
        limit,
    );
    let d = &r.summary;
    // Nothing is lost: processed, dead-lettered or still queued.
    assert_eq!(d.lost_messages, 0);
    assert_eq!(d.processed + d.dead_lettered + d.unprocessed, d.messages);
    // The poison messages (about 5 %) went to the DLQ after 5 receives each; everything else
    // was processed, and the backlog was gone before the cut-off (30 minutes after the last
    // arrival: the last poison messages wait for consumers out of their crash back-off).
    let share = d.dead_lettered as f64 / d.messages as f64;
    assert!((0.03..0.07).contains(&share), "dead-lettered {share:.3}");
    assert_eq!(d.unprocessed, 0);
    assert!(d.simulated_s < 2400.0, "drained at {} s", d.simulated_s);
    assert_eq!(clean.summary.dead_lettered, 0);
    // Without the DLQ the poison stays in the queue, crashing consumers and holding the
    // replica count up, until the run is cut off.
    let n = &no_dlq.summary;
    assert_eq!(n.dead_lettered, 0);
    assert!(n.unprocessed > 0, "{n:?}");
    let end = no_dlq.samples.last().map_or(0, |s| s.desired);
    let end_dlq = r.samples.last().map_or(0, |s| s.desired);
    assert!(end > 1, "still scaled out without a DLQ: {end}");
    eprintln!(
        "poison 5 %: max replicas {} (clean run {}), desired at the end {end_dlq}; without DLQ {} at the end",
        d.max_replicas, clean.summary.max_replicas, end
    );
}

#[test]
fn kedge_holds_the_scale_out_while_consumers_crash_loop_where_upstream_scales_on() {
    // A bad release: from 60 s to 660 s every consumer crashes on the first message it takes;
    // DLQ after 5 receives; one small baseline node, so replicas need NodePool nodes. More
    // replicas only crash too.
    let bad =
        "queue: {max_receive_count: 5}\nfaults:\n  - {at: 60s, for: 600s, kind: consumer-crash}\n";
    let scenario = format!(
        "{}{bad}",
        CRASH.replace(
            "{instance_type: m5.2xlarge, count: 8}",
            "{instance_type: m5.large, count: 1}"
        )
    );
    let limit = Some(Duration::from_secs(3600));
    let up = sim_limited(&scenario, &so(""), PolicyName::KedaKarpenter, limit);
    let kedge = sim_limited(&scenario, &so(""), PolicyName::Kedge, limit);
    for r in [&up, &kedge] {
        let d = &r.summary;
        assert_eq!(d.lost_messages, 0);
        assert_eq!(d.processed + d.dead_lettered + d.unprocessed, d.messages);
        assert_eq!(d.unprocessed, 0, "{}: the backlog drains", d.policy);
    }
    // The most replicas while the release is bad (the fault plus its last back-offs).
    let during = |r: &RunReport| {
        r.samples
            .iter()
            .filter(|s| s.t_s >= 60.0 && s.t_s < 660.0)
            .map(|s| s.desired)
            .max()
            .unwrap_or(0)
    };
    let held = |r: &RunReport| {
        r.decisions
            .iter()
            .filter(|d| d.text.contains("crash-looping"))
            .count()
    };
    let (u, k) = (&up.summary, &kedge.summary);
    eprintln!(
        "bad release: most replicas during it kedge {} / keda-karpenter {}, node pool cost ${:.2} / ${:.2}, dead-lettered {} / {}, drained at {:.0} s / {:.0} s",
        during(&kedge),
        during(&up),
        k.nodepool_cost_usd,
        u.nodepool_cost_usd,
        k.dead_lettered,
        u.dead_lettered,
        k.simulated_s,
        u.simulated_s,
    );
    // KEDA + the HPA keep adding replicas (and Karpenter nodes) for the backlog the crashes
    // build; kedge holds while at least half of its consumers crash-loop, and says so.
    assert_eq!(during(&up), 200, "upstream storms to maxReplicaCount");
    assert!(during(&kedge) * 2 <= during(&up));
    assert!(k.nodepool_cost_usd < u.nodepool_cost_usd);
    // Upstream's crashing replicas use up the messages' receives: they end in the DLQ (to be
    // redriven by hand); kedge's fewer crash-looping consumers leave them for after the fix.
    assert!(u.dead_lettered > 0);
    assert!(k.dead_lettered < u.dead_lettered);
    assert!(held(&kedge) >= 1, "the hold is in the decision log");
    assert_eq!(held(&up), 0, "upstream knows nothing of crash loops");
    // 5 % poison messages: consumers work on the good messages between crashes, so kedge
    // does not hold (more replicas get the good messages through and the poison to the DLQ
    // sooner): the backlog gets the replicas it needs and drains.
    let poison = "queue: {max_receive_count: 5}\nfaults:\n  - {at: 0s, for: 3600s, kind: consumer-crash, share: 0.05}\n";
    // (Drained 1,985 s after the arrivals end with the queue read every second; the crash
    // loops' back-offs, up to 5 minutes, set the tail.)
    let p = sim_limited(
        &format!("{CRASH}{poison}"),
        &so(""),
        PolicyName::Kedge,
        Some(Duration::from_secs(3600)),
    );
    eprintln!(
        "5 % poison under kedge: max {} replicas, {} hold(s)",
        p.summary.max_replicas,
        held(&p)
    );
    assert_eq!(p.summary.unprocessed, 0);
    assert_eq!(p.summary.max_replicas, 200);
}
