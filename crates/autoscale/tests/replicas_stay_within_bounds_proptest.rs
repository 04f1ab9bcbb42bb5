//! Property tests of the decision core's invariants:
//! - the desired count is always within `[min, max]` (or 0 when `minReplicaCount` is 0);
//! - a metric inside the tolerance band never changes the count.

use autoscale::{Autoscaler, Config, MetricSample, Observation};
use clock::Timestamp;
use model::keda::ScaledObject;
use model::manifest::parse_documents;
use proptest::prelude::*;

fn scaled_object(min: u32, max: u32, behavior: &str, target: u32) -> ScaledObject {
    let y = format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: p\nspec:\n  scaleTargetRef:\n    name: app\n  minReplicaCount: {min}\n  maxReplicaCount: {max}\n  cooldownPeriod: 30\n{behavior}  triggers:\n  - type: metrics-api\n    metadata:\n      url: http://x\n      valueLocation: v\n      targetValue: \"{target}\"\n"
    );
    parse_documents(&y).unwrap()[0].decode().unwrap()
}

fn behavior() -> impl Strategy<Value = String> {
    let rules = (0u32..600, prop::sample::select(vec!["Max", "Min", "Disabled"]), 1u32..20, 1u32..300, 1u32..120)
        .prop_map(|(w, sel, pods, pct, period)| {
            format!(
                "          stabilizationWindowSeconds: {w}\n          selectPolicy: {sel}\n          policies:\n          - type: Pods\n            value: {pods}\n            periodSeconds: {period}\n          - type: Percent\n            value: {pct}\n            periodSeconds: {period}\n"
            )
        });
    prop_oneof![
        Just(String::new()),
        (rules.clone(), rules).prop_map(|(up, down)| format!(
            "  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleUp:\n{up}        scaleDown:\n{down}"
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn desired_is_always_within_bounds(
        min in 0u32..10,
        span in 0u32..200,
        target in 1u32..50,
        behavior in behavior(),
        start in 0u32..300,
        polls in prop::collection::vec((0u64..40_000, prop::option::weighted(0.9, 0.0f64..10_000.0)), 1..40),
    ) {
        let max = (min + span).max(1);
        let so = scaled_object(min, max, &behavior, target);
        let mut a = Autoscaler::new(Config::from_scaled_object(&so).unwrap(), Timestamp::ZERO);
        let mut now = 0u64;
        let mut current = start;
        for (dt, value) in polls {
            now += dt;
            let obs = Observation {
                current_replicas: current,
                ready_replicas: None,
                triggers: vec![value.map(|v| MetricSample::with_threshold(v, 0.0)).ok_or_else(|| "down".to_string())],
            };
            let d = a.step(Timestamp::from_millis(now), &obs);
            let ok = (min..=max).contains(&d.desired_replicas)
                || (min == 0 && d.desired_replicas == 0)
                // A failing scaler without fallback leaves an out-of-range count alone only
                // when the HPA has nothing to work with; the HPA itself always clamps.
                || (d.desired_replicas == current && value.is_none() && current == 0);
            prop_assert!(ok, "desired {} outside [{min}, {max}] from {current}: {}", d.desired_replicas, d.reason);
            current = d.desired_replicas;
        }
    }

    #[test]
    fn no_change_inside_the_tolerance_band(
        min in 1u32..5,
        current_off in 0u32..100,
        target in 1u32..100,
        ratio in 0.905f64..1.095,
        behavior in behavior(),
        polls in 1usize..10,
    ) {
        let max = 200;
        let current = min + current_off;
        let so = scaled_object(min, max, &behavior, target);
        let mut a = Autoscaler::new(Config::from_scaled_object(&so).unwrap(), Timestamp::ZERO);
        for i in 0..polls {
            let value = ratio * target as f64 * current as f64;
            let obs = Observation {
                current_replicas: current,
                ready_replicas: None,
                triggers: vec![Ok(MetricSample::with_threshold(value, 0.0))],
            };
            let d = a.step(Timestamp::from_secs(i as u64 * 15), &obs);
            prop_assert_eq!(d.desired_replicas, current, "{}", d.reason);
        }
    }
}
