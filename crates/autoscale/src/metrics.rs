//! Prometheus metrics with KEDA's names and labels, rendered in the text exposition format.
//!
//! A small self-written registry: the set of series is fixed and known, and keeping it
//! dependency-free keeps `autoscale` pure. The server mounts [`Metrics::render`] on
//! `/metrics`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `keda_scaler_metrics_value` | gauge | namespace, scaledObject, scaler, triggerIndex, metric, type |
//! | `keda_scaler_active` | gauge | same |
//! | `keda_scaler_metrics_latency_seconds` | gauge | same |
//! | `keda_scaler_detail_errors_total` | counter | same |
//! | `keda_scaled_object_errors_total` | counter | namespace, scaledObject |
//! | `keda_scaled_object_paused` | gauge | namespace, scaledObject |
//! | `keda_internal_scale_loop_latency_seconds` | gauge | namespace, type, resource |

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::controller::Decision;

type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Default)]
struct Inner {
    /// metric name → labels → value
    series: BTreeMap<&'static str, BTreeMap<Labels, f64>>,
}

/// Thread-safe registry. Cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

const HELP: [(&str, &str, &str); 7] = [
    (
        "keda_scaler_metrics_value",
        "gauge",
        "The current value for each scaler's metric that would be used by the HPA in computing the target average.",
    ),
    (
        "keda_scaler_active",
        "gauge",
        "Activity of a Scaler Metric (1 active, 0 inactive).",
    ),
    (
        "keda_scaler_metrics_latency_seconds",
        "gauge",
        "The latency of retrieving current metric from each scaler, in seconds.",
    ),
    (
        "keda_scaler_detail_errors_total",
        "counter",
        "The total number of errors encountered for each scaler.",
    ),
    (
        "keda_scaled_object_errors_total",
        "counter",
        "The number of errors that have occurred for each ScaledObject.",
    ),
    (
        "keda_scaled_object_paused",
        "gauge",
        "Indicates whether a ScaledObject is paused (1) or not (0).",
    ),
    (
        "keda_internal_scale_loop_latency_seconds",
        "gauge",
        "Total deviation (in seconds) between the expected execution time and the actual execution time for the scaling loop.",
    ),
];

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    fn set(&self, name: &'static str, labels: Labels, v: f64) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.series.entry(name).or_default().insert(labels, v);
    }

    fn inc(&self, name: &'static str, labels: Labels) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *g.series
            .entry(name)
            .or_default()
            .entry(labels)
            .or_insert(0.0) += 1.0;
    }

    /// Record one poll's outcome for a ScaledObject. `latencies[i]` is how long trigger `i`
    /// took to answer.
    pub fn observe_decision(
        &self,
        namespace: &str,
        scaled_object: &str,
        decision: &Decision,
        latencies: &[Duration],
    ) {
        let so = || {
            vec![
                ("namespace", namespace.to_string()),
                ("scaledObject", scaled_object.to_string()),
            ]
        };
        self.set(
            "keda_scaled_object_paused",
            so(),
            if decision.paused { 1.0 } else { 0.0 },
        );
        if decision.error {
            self.inc("keda_scaled_object_errors_total", so());
        }
        for (i, t) in decision.triggers.iter().enumerate() {
            let labels = vec![
                ("namespace", namespace.to_string()),
                ("scaledObject", scaled_object.to_string()),
                ("scaler", format!("{}Scaler", scaler_label(&t.trigger_type))),
                ("triggerIndex", i.to_string()),
                ("metric", format!("s{i}-{}", t.trigger_type)),
                ("type", "scaledobject".to_string()),
            ];
            if let Some(v) = t.value {
                self.set("keda_scaler_metrics_value", labels.clone(), v);
            }
            self.set(
                "keda_scaler_active",
                labels.clone(),
                if t.active { 1.0 } else { 0.0 },
            );
            if let Some(l) = latencies.get(i) {
                self.set(
                    "keda_scaler_metrics_latency_seconds",
                    labels.clone(),
                    l.as_secs_f64(),
                );
            }
            if t.error.is_some() {
                self.inc("keda_scaler_detail_errors_total", labels);
            }
        }
    }

    /// How late the scale loop ran compared with its schedule.
    pub fn observe_loop_latency(&self, namespace: &str, scaled_object: &str, lateness: Duration) {
        self.set(
            "keda_internal_scale_loop_latency_seconds",
            vec![
                ("namespace", namespace.to_string()),
                ("type", "scaledobject".to_string()),
                ("resource", scaled_object.to_string()),
            ],
            lateness.as_secs_f64(),
        );
    }

    /// Drop every series of a deleted ScaledObject.
    pub fn forget(&self, namespace: &str, scaled_object: &str) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for series in g.series.values_mut() {
            series.retain(|labels, _| {
                let ns = labels
                    .iter()
                    .any(|(k, v)| *k == "namespace" && v == namespace);
                let so = labels
                    .iter()
                    .any(|(k, v)| (*k == "scaledObject" || *k == "resource") && v == scaled_object);
                !(ns && so)
            });
        }
    }

    /// Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for (name, kind, help) in HELP {
            let Some(series) = g.series.get(name) else {
                continue;
            };
            if series.is_empty() {
                continue;
            }
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, v) in series {
                let l: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                let _ = writeln!(out, "{name}{{{}}} {}", l.join(","), fmt_value(*v));
            }
        }
        out
    }
}

/// KEDA's scaler label is the Go type name (`awsSqsQueueScaler`, `prometheusScaler`, ...).
fn scaler_label(trigger_type: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in trigger_type.chars() {
        if c == '-' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::{State, TriggerReport};

    #[test]
    fn renders_keda_names() {
        let m = Metrics::new();
        let d = Decision {
            desired_replicas: 2,
            current_replicas: 1,
            reason: String::new(),
            requeue_after: Duration::from_secs(30),
            state: State::Active,
            active: true,
            error: true,
            fallback: false,
            paused: false,
            triggers: vec![
                TriggerReport {
                    name: "q".into(),
                    trigger_type: "aws-sqs-queue".into(),
                    value: Some(12.0),
                    active: true,
                    error: None,
                    failures: 0,
                    fallback: false,
                },
                TriggerReport {
                    name: "p".into(),
                    trigger_type: "prometheus".into(),
                    value: None,
                    active: false,
                    error: Some("down".into()),
                    failures: 1,
                    fallback: false,
                },
            ],
            composite: None,
        };
        m.observe_decision("ns", "so", &d, &[Duration::from_millis(5)]);
        m.observe_decision("ns", "so", &d, &[Duration::from_millis(5)]);
        m.observe_loop_latency("ns", "so", Duration::from_millis(3));
        let text = m.render();
        assert!(text.contains("keda_scaler_metrics_value{namespace=\"ns\",scaledObject=\"so\",scaler=\"awsSqsQueueScaler\",triggerIndex=\"0\",metric=\"s0-aws-sqs-queue\",type=\"scaledobject\"} 12"), "{text}");
        assert!(text.contains("keda_scaler_active{namespace=\"ns\",scaledObject=\"so\",scaler=\"awsSqsQueueScaler\",triggerIndex=\"0\",metric=\"s0-aws-sqs-queue\",type=\"scaledobject\"} 1"));
        assert!(text.contains("keda_scaler_detail_errors_total{namespace=\"ns\",scaledObject=\"so\",scaler=\"prometheusScaler\",triggerIndex=\"1\",metric=\"s1-prometheus\",type=\"scaledobject\"} 2"));
        assert!(
            text.contains(
                "keda_scaled_object_errors_total{namespace=\"ns\",scaledObject=\"so\"} 2"
            )
        );
        assert!(text.contains("keda_scaled_object_paused{namespace=\"ns\",scaledObject=\"so\"} 0"));
        assert!(text.contains("keda_internal_scale_loop_latency_seconds{namespace=\"ns\",type=\"scaledobject\",resource=\"so\"} 0.003"));
        assert!(text.contains("# TYPE keda_scaler_detail_errors_total counter"));
        m.forget("ns", "so");
        assert_eq!(m.render(), "");
    }
}
