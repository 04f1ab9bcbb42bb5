//! `kubernetes-workload`, `cpu` and `memory` over a substrate's pods ([`MemoryPods`], what the
//! local twin and a simulator supply): KEDA's pod count and the HPA's resource arithmetic.

use std::sync::Arc;

use autoscale::{Autoscaler, Config, Observation};
use clock::Timestamp;
use model::keda::triggers::PodResource;
use model::keda::{MetricType, ScaledObject, Trigger};
use model::manifest::parse_documents;
use scalers::pods::{MemoryPods, PodInfo, PodUsage};
use scalers::{ResolvedAuth, build_scaler_for, build_scaler_with_pods};

fn pod(app: &str, node: &str, phase: &str) -> PodInfo {
    PodInfo {
        labels: [("app".to_string(), app.to_string())].into_iter().collect(),
        node_name: node.into(),
        phase: phase.into(),
    }
}

fn trigger(ty: &str, mt: Option<MetricType>, md: &[(&str, &str)]) -> Trigger {
    Trigger {
        trigger_type: ty.into(),
        name: None,
        metadata: md
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        authentication_ref: None,
        metric_type: mt,
        use_cached_metrics: false,
    }
}

async fn measure(s: &dyn autoscale::Scaler) -> Result<(f64, bool), String> {
    s.get_metric_and_activity(Timestamp::ZERO)
        .await
        .map(|m| (m.value, m.active))
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn workload_counts_live_pods_or_their_nodes() {
    let pods = Arc::new(MemoryPods::default());
    pods.set_pods(
        "shop",
        vec![
            pod("backend", "n1", "Running"),
            pod("backend", "n1", "Running"),
            pod("backend", "n2", "Pending"),
            pod("backend", "", "Pending"),
            pod("backend", "n3", "Succeeded"),
            pod("frontend", "n4", "Running"),
        ],
    );
    pods.set_pods("other", vec![pod("backend", "n9", "Running")]);
    let t = |extra: &[(&str, &str)]| {
        let mut md = vec![
            ("podSelector", "app=backend"),
            ("value", "2"),
            ("activationValue", "3"),
        ];
        md.extend_from_slice(extra);
        trigger("kubernetes-workload", None, &md)
    };
    let s = build_scaler_with_pods(
        &t(&[]),
        &ResolvedAuth::default(),
        &|_| None,
        "shop",
        "so",
        Some(pods.clone()),
    )
    .unwrap();
    // 4 live backend pods in this namespace (the Succeeded one and other namespaces excluded).
    assert_eq!(measure(s.as_ref()).await, Ok((4.0, true)));
    let by_node = build_scaler_with_pods(
        &t(&[("groupByNode", "true")]),
        &ResolvedAuth::default(),
        &|_| None,
        "shop",
        "so",
        Some(pods.clone()),
    )
    .unwrap();
    // n1, n2 (the unscheduled pod has no node): 2, not above activationValue 3.
    assert_eq!(measure(by_node.as_ref()).await, Ok((2.0, false)));
    // Without a pod source the trigger cannot run, and says why.
    let e = build_scaler_for(&t(&[]), &ResolvedAuth::default(), &|_| None, "shop", "so")
        .err()
        .unwrap();
    assert!(e.to_string().contains("needs the pods"), "{e}");
}

#[tokio::test]
async fn cpu_utilization_and_memory_average_value_drive_the_hpa() {
    let pods = Arc::new(MemoryPods::default());
    // Two pods requesting 500m each, using 600m and 400m: 100% of requests.
    pods.set_usage(
        PodResource::Cpu,
        None,
        vec![
            PodUsage {
                usage: 0.6,
                request: Some(0.5),
            },
            PodUsage {
                usage: 0.4,
                request: Some(0.5),
            },
        ],
    );
    pods.set_usage(
        PodResource::Memory,
        Some("app"),
        vec![
            PodUsage {
                usage: 300.0 * 1024.0 * 1024.0,
                request: None,
            },
            PodUsage {
                usage: 500.0 * 1024.0 * 1024.0,
                request: None,
            },
        ],
    );
    let y = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  scaleTargetRef:\n    name: web\n  minReplicaCount: 1\n  triggers:\n  - type: cpu\n    metricType: Utilization\n    metadata:\n      value: \"50\"\n  - type: memory\n    metricType: AverageValue\n    metadata:\n      value: 256Mi\n      containerName: app\n";
    let so: ScaledObject = parse_documents(y).unwrap()[0].decode().unwrap();
    let scalers: Vec<_> = so
        .spec
        .triggers
        .iter()
        .map(|t| {
            build_scaler_with_pods(
                t,
                &ResolvedAuth::default(),
                &|_| None,
                "shop",
                "web",
                Some(pods.clone()),
            )
            .unwrap()
        })
        .collect();
    assert_eq!(measure(scalers[0].as_ref()).await, Ok((100.0, true)));
    assert_eq!(
        measure(scalers[1].as_ref()).await,
        Ok((400.0 * 1024.0 * 1024.0, true))
    );
    // The HPA: cpu 100% against 50% on 2 pods → 4; memory 400Mi a pod against 256Mi → ⌈3.125⌉ = 4.
    let mut a = Autoscaler::new(Config::from_scaled_object(&so).unwrap(), Timestamp::ZERO);
    let mut results = Vec::new();
    for s in &scalers {
        results.push(
            s.get_metric_and_activity(Timestamp::ZERO)
                .await
                .map_err(|e| e.to_string()),
        );
    }
    let d = a.step(
        Timestamp::from_secs(1),
        &Observation {
            current_replicas: 2,
            ready_replicas: Some(2),
            triggers: results,
        },
    );
    assert_eq!(d.desired_replicas, 4, "{}", d.reason);
    // A pod without a request makes Utilization an error (the HPA cannot compute it).
    pods.set_usage(
        PodResource::Cpu,
        None,
        vec![PodUsage {
            usage: 0.1,
            request: None,
        }],
    );
    let t = trigger("cpu", Some(MetricType::Utilization), &[("value", "50")]);
    let s = build_scaler_with_pods(
        &t,
        &ResolvedAuth::default(),
        &|_| None,
        "shop",
        "web",
        Some(pods.clone()),
    )
    .unwrap();
    assert!(
        measure(s.as_ref())
            .await
            .unwrap_err()
            .contains("missing Cpu request")
    );
}
