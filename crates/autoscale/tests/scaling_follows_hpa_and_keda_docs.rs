//! Table-driven checks of the decision core against the examples and rules in the
//! Kubernetes HPA documentation (algorithm details, behavior examples) and KEDA's
//! ScaledObject specification (activation, cooldown, idle, fallback, pause, modifiers).

use autoscale::{Autoscaler, Config, MetricSample, Observation, State};
use clock::Timestamp;
use model::keda::ScaledObject;
use model::manifest::parse_documents;

/// A ScaledObject with one metrics-api trigger (target `target`, activation `activation`)
/// and `extra` spliced into the spec.
fn scaled_object(extra: &str, target: f64, activation: f64) -> ScaledObject {
    scaled_object_with(
        extra,
        &format!(
            "  - type: metrics-api\n    name: q\n    metadata:\n      url: http://x\n      valueLocation: v\n      targetValue: \"{target}\"\n      activationTargetValue: \"{activation}\"\n"
        ),
        "",
    )
}

fn scaled_object_with(extra: &str, triggers: &str, annotations: &str) -> ScaledObject {
    let y = format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: t\n{annotations}spec:\n  scaleTargetRef:\n    name: app\n{extra}  triggers:\n{triggers}"
    );
    let docs = parse_documents(&y).expect("yaml");
    match docs[0].decode() {
        Ok(so) => so,
        Err(e) => panic!("fixture invalid: {e}\n{y}"),
    }
}

fn autoscaler(so: &ScaledObject) -> Autoscaler {
    Autoscaler::new(
        Config::from_scaled_object(so).expect("config"),
        Timestamp::ZERO,
    )
}

fn t(secs: u64) -> Timestamp {
    Timestamp::from_secs(secs)
}

fn obs(current: u32, value: f64, activation: f64) -> Observation {
    Observation {
        current_replicas: current,
        ready_replicas: None,
        triggers: vec![Ok(MetricSample::with_threshold(value, activation))],
    }
}

fn failed(current: u32) -> Observation {
    Observation {
        current_replicas: current,
        ready_replicas: None,
        triggers: vec![Err("connection refused".into())],
    }
}

/// Run a sequence of polls, feeding each decision back as the next current count.
fn run(a: &mut Autoscaler, start: u32, steps: &[(u64, Option<f64>)], activation: f64) -> Vec<u32> {
    let mut current = start;
    let mut out = Vec::new();
    for (secs, value) in steps {
        let o = match value {
            Some(v) => obs(current, *v, activation),
            None => failed(current),
        };
        let d = a.step(t(*secs), &o);
        assert!(!d.reason.is_empty(), "every decision carries a reason");
        current = d.desired_replicas;
        out.push(current);
    }
    out
}

#[test]
fn default_scale_up_doubles_or_adds_four_every_15s() {
    // Kubernetes default scale-up: max(4 pods, 100 %) per 15 s, no window.
    let so = scaled_object("  minReplicaCount: 1\n  maxReplicaCount: 100\n", 1.0, 0.0);
    let mut a = autoscaler(&so);
    let steps: Vec<(u64, Option<f64>)> = (0..8).map(|i| (i * 15, Some(100_000.0))).collect();
    assert_eq!(
        run(&mut a, 1, &steps, 0.0),
        vec![5, 10, 20, 40, 80, 100, 100, 100]
    );
}

#[test]
fn scale_up_within_one_period_is_limited_by_events_in_that_period() {
    // Polls every 5 s: the 15 s policy period counts replicas already added in it.
    let so = scaled_object("  minReplicaCount: 1\n", 1.0, 0.0);
    let mut a = autoscaler(&so);
    let steps: Vec<(u64, Option<f64>)> = (0..4).map(|i| (i * 5, Some(1000.0))).collect();
    // t=0: 1→5; t=5,10: period start is still 1 → limit 5; t=15: the t=0 event left the
    // period (strictly older than 15 s is required: t=0 is not after t=15-15) → 5→10.
    assert_eq!(run(&mut a, 1, &steps, 0.0), vec![5, 5, 5, 10]);
}

#[test]
fn scale_down_waits_for_the_300s_stabilization_window() {
    let so = scaled_object("  minReplicaCount: 1\n", 2.0, 0.0);
    let mut a = autoscaler(&so);
    // 20 messages / 2 per replica = 10 replicas at t=0; then the queue drains.
    let mut steps = vec![(0, Some(20.0))];
    steps.extend((1..=21).map(|i| (i * 15, Some(0.0))));
    let got = run(&mut a, 10, &steps, 0.0);
    // Until 300 s after the last recommendation of 10, the highest recommendation wins.
    assert!(got[..20].iter().all(|r| *r == 10), "{got:?}");
    // t=300: the t=0 recommendation is no longer inside (now-300, now]; 100 %/15 s lets it
    // drop straight to min.
    assert_eq!(got[20], 1, "{got:?}");
}

#[test]
fn tolerance_band_keeps_the_count() {
    // HPA docs: no scaling when the ratio is within 0.9..1.1 of the target.
    let cases: &[(u32, f64, u32)] = &[
        (10, 20.0 * 1.09, 10), // +9 %: hold
        (10, 20.0 * 0.91, 10), // -9 %: hold
        (10, 20.0 * 1.2, 12),  // +20 %: ⌈24/2⌉
        (10, 40.0, 20),        // doubling
    ];
    for (current, total, want) in cases {
        let so = scaled_object("  minReplicaCount: 1\n", 2.0, 0.0);
        let mut a = autoscaler(&so);
        let d = a.step(t(0), &obs(*current, *total, 0.0));
        assert_eq!(
            d.desired_replicas, *want,
            "current {current}, total {total}: {}",
            d.reason
        );
    }
}

#[test]
fn value_metric_type_scales_by_ready_pods() {
    // Value: desired = ⌈ready × metric / target⌉.
    let so = scaled_object_with(
        "  minReplicaCount: 1\n",
        "  - type: metrics-api\n    metricType: Value\n    metadata:\n      url: http://x\n      valueLocation: v\n      targetValue: \"100\"\n",
        "",
    );
    let mut a = autoscaler(&so);
    let d = a.step(
        t(0),
        &Observation {
            current_replicas: 5,
            ready_replicas: Some(4),
            triggers: vec![Ok(MetricSample::with_threshold(300.0, 0.0))],
        },
    );
    // ⌈4 × 300/100⌉ = 12, limited to max(5+4, 5×2) = 10 by the default scale-up policies.
    assert_eq!(d.desired_replicas, 10, "{}", d.reason);
    assert!(d.reason.contains("Percent 100% per 15s"), "{}", d.reason);
}

#[test]
fn largest_proposal_across_triggers_wins() {
    let triggers = "  - type: metrics-api\n    name: a\n    metadata:\n      url: http://x\n      valueLocation: v\n      targetValue: \"10\"\n  - type: metrics-api\n    name: b\n    metadata:\n      url: http://x\n      valueLocation: v\n      targetValue: \"1\"\n";
    let so = scaled_object_with("  minReplicaCount: 1\n", triggers, "");
    let mut a = autoscaler(&so);
    let d = a.step(
        t(0),
        &Observation {
            current_replicas: 4,
            ready_replicas: None,
            triggers: vec![
                Ok(MetricSample::with_threshold(50.0, 0.0)),
                Ok(MetricSample::with_threshold(6.0, 0.0)),
            ],
        },
    );
    assert_eq!(d.desired_replicas, 6, "{}", d.reason);
    assert!(d.reason.contains("trigger \"b\""), "{}", d.reason);
}

#[test]
fn partial_metric_failure_never_scales_down() {
    let triggers = "  - type: metrics-api\n    name: a\n    metadata:\n      url: http://x\n      valueLocation: v\n      targetValue: \"10\"\n  - type: metrics-api\n    name: b\n    metadata:\n      url: http://x\n      valueLocation: v\n      targetValue: \"1\"\n";
    let so = scaled_object_with(
        "  minReplicaCount: 1\n  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleDown:\n          stabilizationWindowSeconds: 0\n",
        triggers,
        "",
    );
    let mut a = autoscaler(&so);
    let o = |a_val: Option<f64>| Observation {
        current_replicas: 8,
        ready_replicas: None,
        triggers: vec![
            a_val
                .map(|v| MetricSample::with_threshold(v, 0.0))
                .ok_or_else(|| "down".to_string()),
            Err("down".into()),
        ],
    };
    // a alone would say 2: held because b failed.
    assert_eq!(a.step(t(0), &o(Some(20.0))).desired_replicas, 8);
    // a says 12: scale up is still allowed.
    assert_eq!(a.step(t(15), &o(Some(120.0))).desired_replicas, 12);
    // nothing available: hold.
    assert_eq!(a.step(t(30), &o(None)).desired_replicas, 8);
}

/// Kubernetes docs, "Scaling policies": Pods 4 and Percent 10 per 60 s for scale-down.
#[test]
fn scale_down_policies_and_select_policy() {
    let behavior = |select: &str| {
        format!(
            "  minReplicaCount: 1\n  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleDown:\n          stabilizationWindowSeconds: 0\n{select}          policies:\n          - type: Pods\n            value: 4\n            periodSeconds: 60\n          - type: Percent\n            value: 10\n            periodSeconds: 60\n"
        )
    };
    let cases: &[(&str, u32, u32)] = &[
        // Max (default): the policy allowing the biggest change wins.
        ("", 80, 72), // 10 % of 80 = 8 > 4
        ("", 40, 36), // both 4
        ("", 30, 26), // 4 pods > 10 % (3)
        // Min: the smallest change wins.
        ("          selectPolicy: Min\n", 80, 76),
        ("          selectPolicy: Min\n", 30, 27),
        // Disabled: no scale-down at all.
        ("          selectPolicy: Disabled\n", 80, 80),
    ];
    for (select, current, want) in cases {
        let so = scaled_object(&behavior(select), 1.0, 0.0);
        let mut a = autoscaler(&so);
        let d = a.step(t(0), &obs(*current, 2.0, 0.0));
        assert_eq!(
            d.desired_replicas, *want,
            "select {select:?} from {current}: {}",
            d.reason
        );
    }
}

#[test]
fn scale_down_policy_period_accumulates() {
    // Percent 10 per 60 s, polls every 15 s: at most 10 % of the count at the period start.
    let so = scaled_object(
        "  minReplicaCount: 1\n  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleDown:\n          stabilizationWindowSeconds: 0\n          policies:\n          - type: Percent\n            value: 10\n            periodSeconds: 60\n",
        1.0,
        0.0,
    );
    let mut a = autoscaler(&so);
    let steps: Vec<(u64, Option<f64>)> = (0..6).map(|i| (i * 15, Some(1.0))).collect();
    // t=0: 100→90; t=15..45: period start 100 → limit 90; t=60: event at 0 expired → 81.
    assert_eq!(run(&mut a, 100, &steps, 0.0), vec![90, 90, 90, 90, 81, 81]);
}

#[test]
fn scale_up_percent_policy_and_stabilization() {
    // Kubernetes docs example: Percent 900 per 60 s ⇒ 1 → 10.
    let so = scaled_object(
        "  minReplicaCount: 1\n  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleUp:\n          policies:\n          - type: Percent\n            value: 900\n            periodSeconds: 60\n",
        1.0,
        0.0,
    );
    let mut a = autoscaler(&so);
    assert_eq!(a.step(t(0), &obs(1, 1000.0, 0.0)).desired_replicas, 10);

    // Scale-up window 60 s: the lowest recommendation in the window wins.
    let so = scaled_object(
        "  minReplicaCount: 1\n  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleUp:\n          stabilizationWindowSeconds: 60\n",
        1.0,
        0.0,
    );
    let mut a = autoscaler(&so);
    // The HPA starts its history with the current count (2), so a burst is held for 60 s,
    // then the default rate limit applies (2 → max(2+4, 2×2) = 6).
    let got = run(
        &mut a,
        2,
        &[(0, Some(8.0)), (30, Some(8.0)), (61, Some(8.0))],
        0.0,
    );
    assert_eq!(got, vec![2, 2, 6]);
}

#[test]
fn activation_from_zero_and_activation_threshold() {
    let so = scaled_object("", 5.0, 3.0);
    let mut a = autoscaler(&so);
    // 3 is not > activation 3: stay at 0.
    let d = a.step(t(0), &obs(0, 3.0, 3.0));
    assert_eq!(
        (d.desired_replicas, d.state),
        (0, State::Idle),
        "{}",
        d.reason
    );
    // 4 > 3: activate to 1 (min is 0 → max(min, 1)).
    let d = a.step(t(30), &obs(0, 4.0, 3.0));
    assert_eq!(
        (d.desired_replicas, d.state),
        (1, State::Active),
        "{}",
        d.reason
    );
    assert!(d.reason.contains("activating 0 → 1"), "{}", d.reason);
    // Activation to minReplicaCount when it is above 1.
    let so = scaled_object("  minReplicaCount: 0\n  maxReplicaCount: 10\n", 5.0, 0.0);
    let mut a = autoscaler(&so);
    assert_eq!(a.step(t(0), &obs(0, 100.0, 0.0)).desired_replicas, 1);
    // Then the HPA takes over: 100/5 = 20 → limited 1 → 5.
    assert_eq!(a.step(t(15), &obs(1, 100.0, 0.0)).desired_replicas, 5);
}

#[test]
fn cooldown_measured_from_last_active_poll() {
    // The seed: cooldownPeriod 10; min 0 here so scale-to-zero applies.
    let so = scaled_object("  cooldownPeriod: 10\n", 2.0, 0.0);
    let mut a = autoscaler(&so);
    let d = a.step(t(0), &obs(1, 2.0, 0.0));
    assert_eq!(d.state, State::Active);
    assert_eq!(a.last_active(), Some(t(0)));
    for s in [5, 10] {
        let d = a.step(t(s), &obs(1, 0.0, 0.0));
        assert_eq!(
            (d.desired_replicas, d.state),
            (1, State::CoolingDown),
            "t={s}: {}",
            d.reason
        );
    }
    let d = a.step(t(11), &obs(1, 0.0, 0.0));
    assert_eq!(
        (d.desired_replicas, d.state),
        (0, State::Idle),
        "{}",
        d.reason
    );
    assert!(d.reason.contains("cooldownPeriod 10s"), "{}", d.reason);
}

#[test]
fn default_cooldown_is_300s_and_initial_cooldown_applies_before_first_activity() {
    let so = scaled_object("", 2.0, 0.0);
    let mut a = autoscaler(&so);
    a.step(t(0), &obs(3, 6.0, 0.0));
    // t=299: cooling down, and the HPA's 300 s window still holds 3.
    assert_eq!(a.step(t(299), &obs(3, 0.0, 0.0)).desired_replicas, 3);
    // t=301: last active at 0 + 300 s < now: scale to zero.
    assert_eq!(a.step(t(301), &obs(3, 0.0, 0.0)).desired_replicas, 0);

    // Never active: initialCooldownPeriod from creation (default 0 → immediately).
    let so = scaled_object("  initialCooldownPeriod: 60\n", 2.0, 0.0);
    let mut a = autoscaler(&so);
    assert_eq!(a.step(t(30), &obs(2, 0.0, 0.0)).desired_replicas, 2);
    assert_eq!(a.step(t(61), &obs(2, 0.0, 0.0)).desired_replicas, 0);
    let so = scaled_object("", 2.0, 0.0);
    let mut a = autoscaler(&so);
    assert_eq!(a.step(t(1), &obs(2, 0.0, 0.0)).desired_replicas, 0);
}

#[test]
fn idle_replica_count() {
    let so = scaled_object(
        "  idleReplicaCount: 0\n  minReplicaCount: 2\n  cooldownPeriod: 30\n",
        2.0,
        0.0,
    );
    let mut a = autoscaler(&so);
    // Active from idle: straight to min.
    let d = a.step(t(0), &obs(0, 1.0, 0.0));
    assert_eq!(d.desired_replicas, 2, "{}", d.reason);
    // Inactive: stays ≥ min during the cooldown, then idle.
    assert_eq!(a.step(t(20), &obs(2, 0.0, 0.0)).desired_replicas, 2);
    let d = a.step(t(31), &obs(2, 0.0, 0.0));
    assert_eq!(
        (d.desired_replicas, d.state),
        (0, State::Idle),
        "{}",
        d.reason
    );
    // Idle and inactive: nothing moves (the HPA would otherwise pull it up to min).
    assert_eq!(a.step(t(60), &obs(0, 0.0, 0.0)).desired_replicas, 0);
}

#[test]
fn below_min_without_idle_is_raised_to_min() {
    let so = scaled_object("  minReplicaCount: 3\n", 2.0, 0.0);
    let mut a = autoscaler(&so);
    assert_eq!(a.step(t(0), &obs(1, 0.0, 0.0)).desired_replicas, 3);
}

#[test]
fn above_max_is_lowered_to_max() {
    let so = scaled_object("  minReplicaCount: 1\n  maxReplicaCount: 5\n", 2.0, 0.0);
    let mut a = autoscaler(&so);
    assert_eq!(a.step(t(0), &obs(9, 100.0, 0.0)).desired_replicas, 5);
}

#[test]
fn fallback_after_failure_threshold_for_each_behavior() {
    // (behavior, current, expected after the threshold is passed)
    let cases: &[(&str, u32, u32)] = &[
        ("static", 2, 6),
        ("currentReplicas", 2, 2),
        ("currentReplicasIfHigher", 2, 6),
        ("currentReplicasIfHigher", 9, 9),
        ("currentReplicasIfLower", 9, 6),
        ("currentReplicasIfLower", 2, 2),
    ];
    for (behavior, current, want) in cases {
        let so = scaled_object(
            &format!(
                "  minReplicaCount: 1\n  fallback:\n    failureThreshold: 3\n    replicas: 6\n    behavior: {behavior}\n  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleDown:\n          stabilizationWindowSeconds: 0\n"
            ),
            2.0,
            0.0,
        );
        let mut a = autoscaler(&so);
        // Three failures: not yet (the count must pass failureThreshold).
        for s in 0..3 {
            let d = a.step(t(s * 15), &failed(*current));
            assert_eq!(
                d.desired_replicas,
                *current,
                "{behavior}: failure {}: {}",
                s + 1,
                d.reason
            );
            assert!(!d.fallback);
        }
        let d = a.step(t(45), &failed(*current));
        assert_eq!(
            d.desired_replicas, *want,
            "{behavior} from {current}: {}",
            d.reason
        );
        assert!(d.fallback);
        // A success resets the count.
        a.step(
            t(60),
            &obs(d.desired_replicas, 2.0 * d.desired_replicas as f64, 0.0),
        );
        let d = a.step(t(75), &failed(*want));
        assert!(
            !d.fallback,
            "{behavior}: failure count must reset after a success"
        );
    }
}

#[test]
fn fallback_is_not_a_reason_to_scale_to_zero() {
    let so = scaled_object(
        "  cooldownPeriod: 0\n  fallback:\n    failureThreshold: 1\n    replicas: 4\n",
        2.0,
        0.0,
    );
    let mut a = autoscaler(&so);
    // Failing with a fallback configured: not scaled to zero even though nothing is active.
    assert_eq!(a.step(t(1), &failed(2)).desired_replicas, 2);
    assert_eq!(a.step(t(2), &failed(2)).desired_replicas, 4);
}

#[test]
fn pause_annotations() {
    let trig = "  - type: metrics-api\n    metadata:\n      url: http://x\n      valueLocation: v\n      targetValue: \"1\"\n";
    let paused = |ann: &str| {
        scaled_object_with(
            "  minReplicaCount: 1\n",
            trig,
            &format!("  annotations:\n{ann}"),
        )
    };
    let so = paused(
        "    autoscaling.keda.sh/paused-replicas: \"5\"\n    autoscaling.keda.sh/paused: \"true\"\n",
    );
    let d = autoscaler(&so).step(t(0), &obs(2, 100.0, 0.0));
    assert_eq!(
        (d.desired_replicas, d.state, d.paused),
        (5, State::Paused, true)
    );
    assert!(d.reason.contains("paused-replicas=5"));

    let so = paused("    autoscaling.keda.sh/paused: \"true\"\n");
    let d = autoscaler(&so).step(t(0), &obs(2, 100.0, 0.0));
    assert_eq!((d.desired_replicas, d.paused), (2, true));

    let so = paused("    autoscaling.keda.sh/paused-scale-out: \"true\"\n");
    let mut a = autoscaler(&so);
    assert_eq!(a.step(t(0), &obs(2, 100.0, 0.0)).desired_replicas, 2);
    // scale-in still allowed (after the window)
    assert_eq!(a.step(t(301), &obs(2, 0.0, 0.0)).desired_replicas, 1);

    let so = paused("    autoscaling.keda.sh/paused-scale-in: \"true\"\n");
    let mut a = autoscaler(&so);
    assert_eq!(a.step(t(0), &obs(2, 100.0, 0.0)).desired_replicas, 6);
    let d = a.step(t(400), &obs(6, 0.0, 0.0));
    assert_eq!(d.desired_replicas, 6, "{}", d.reason);
    assert!(d.reason.contains("paused-scale-in"));
}

#[test]
fn scaling_modifiers_composite_metric() {
    let triggers = "  - type: metrics-api\n    name: a\n    metadata:\n      url: http://x\n      valueLocation: v\n      targetValue: \"1\"\n  - type: metrics-api\n    name: b\n    metadata:\n      url: http://x\n      valueLocation: v\n      targetValue: \"1\"\n";
    let so = scaled_object_with(
        "  advanced:\n    scalingModifiers:\n      formula: \"(a + (b ?? 0)) / 2\"\n      target: \"5\"\n      activationTarget: \"4\"\n",
        triggers,
        "",
    );
    let mut a = autoscaler(&so);
    let o = |cur, av: f64, bv: Option<f64>| Observation {
        current_replicas: cur,
        ready_replicas: None,
        triggers: vec![
            Ok(MetricSample::with_threshold(av, 0.0)),
            bv.map(|v| MetricSample::with_threshold(v, 0.0))
                .ok_or_else(|| "down".to_string()),
        ],
    };
    // composite (2+4)/2 = 3, not > activationTarget 4: inactive although triggers are > 0.
    let d = a.step(t(0), &o(0, 2.0, Some(4.0)));
    assert_eq!(
        (d.desired_replicas, d.composite),
        (0, Some(3.0)),
        "{}",
        d.reason
    );
    // composite (10 + 20)/2 = 15 > 4: activate.
    assert_eq!(a.step(t(15), &o(0, 10.0, Some(20.0))).desired_replicas, 1);
    // HPA: ⌈15/5⌉ = 3.
    let d = a.step(t(30), &o(1, 10.0, Some(20.0)));
    assert_eq!(d.desired_replicas, 3, "{}", d.reason);
    // b failed: `b ?? 0` keeps the formula working: (40+0)/2 = 20 → 4.
    let d = a.step(t(45), &o(3, 40.0, None));
    assert_eq!(
        (d.desired_replicas, d.composite),
        (4, Some(20.0)),
        "{}",
        d.reason
    );
}

#[test]
fn restore_to_original_replica_count() {
    let so = scaled_object(
        "  advanced:\n    restoreToOriginalReplicaCount: true\n",
        1.0,
        0.0,
    );
    let mut a = autoscaler(&so);
    a.step(t(0), &obs(3, 100.0, 0.0));
    a.step(t(15), &obs(7, 100.0, 0.0));
    assert_eq!(a.on_delete(), Some(3));
    let so = scaled_object("", 1.0, 0.0);
    let mut a = autoscaler(&so);
    a.step(t(0), &obs(3, 100.0, 0.0));
    assert_eq!(a.on_delete(), None);
}

#[test]
fn requeue_after_is_the_polling_interval_with_subsecond_extension() {
    let so = scaled_object("  pollingInterval: 7\n", 1.0, 0.0);
    let d = autoscaler(&so).step(t(0), &obs(1, 1.0, 0.0));
    assert_eq!(d.requeue_after, std::time::Duration::from_secs(7));
    let so = scaled_object_with(
        "",
        "  - type: metrics-api\n    metadata:\n      url: http://x\n      valueLocation: v\n      targetValue: \"1\"\n",
        "  annotations:\n    autoscaling.kedge.dev/polling-interval: 250ms\n",
    );
    let d = autoscaler(&so).step(t(0), &obs(1, 1.0, 0.0));
    assert_eq!(d.requeue_after, std::time::Duration::from_millis(250));
}
