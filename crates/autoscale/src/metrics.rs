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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::controller::Decision;

/// The series of one ScaledObject. Label sets are not stored: they follow from the object's
/// name and its triggers' index and type, and are written out only when rendering (a stored
/// label set per series cost ~2 KB per ScaledObject and a dozen allocations per poll).
#[derive(Debug, Default)]
struct ObjectSeries {
    /// `keda_scaled_object_paused`.
    paused: Option<f64>,
    /// `keda_scaled_object_errors_total`.
    errors: Option<f64>,
    /// `keda_internal_scale_loop_latency_seconds`.
    loop_latency: Option<f64>,
    /// By trigger index.
    triggers: Vec<TriggerSeries>,
}

#[derive(Debug)]
struct TriggerSeries {
    trigger_type: Box<str>,
    /// `keda_scaler_metrics_value`.
    value: Option<f64>,
    /// `keda_scaler_active`.
    active: Option<f64>,
    /// `keda_scaler_metrics_latency_seconds`.
    latency: Option<f64>,
    /// `keda_scaler_detail_errors_total`.
    errors: Option<f64>,
}

impl TriggerSeries {
    fn new(trigger_type: &str) -> Self {
        TriggerSeries {
            trigger_type: trigger_type.into(),
            value: None,
            active: None,
            latency: None,
            errors: None,
        }
    }
}

/// One ScaledObject's entry in the registry. A scale loop holds it ([`ObjectMetrics`]) and
/// records through it on every poll; the registry's map is only walked to render and looked up
/// by name when an object starts or goes.
#[derive(Debug, Default)]
struct Entry {
    series: Mutex<ObjectSeries>,
    /// Removed from the registry by [`Metrics::forget`]: a holder that records afterwards
    /// starts the object's series again from scratch (as recording by name does).
    forgotten: AtomicBool,
}

impl Entry {
    fn record<R>(&self, f: impl FnOnce(&mut ObjectSeries) -> R) -> R {
        let mut g = self.series.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// namespace → ScaledObject name → its series.
    objects: BTreeMap<Box<str>, BTreeMap<Box<str>, Arc<Entry>>>,
}

impl Inner {
    /// The entry of an object, made when missing (`fresh` is the one to insert then).
    fn object(
        &mut self,
        namespace: &str,
        name: &str,
        fresh: impl FnOnce() -> Arc<Entry>,
    ) -> &Arc<Entry> {
        if !self.objects.contains_key(namespace) {
            self.objects.insert(namespace.into(), BTreeMap::new());
        }
        let by_name = self.objects.get_mut(namespace).expect("inserted above");
        if !by_name.contains_key(name) {
            by_name.insert(name.into(), fresh());
        }
        by_name.get(name).expect("inserted above")
    }
}

/// Thread-safe registry. Cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// One ScaledObject's series, resolved once ([`Metrics::object`]): a scale loop records
/// through it on every poll without looking the object up by name under the registry's lock
/// (at 100,000 objects those sorted-map lookups were a large part of a poll's CPU).
/// Recording through it and by name ([`Metrics::observe_decision`]) is the same.
#[derive(Debug, Clone)]
pub struct ObjectMetrics {
    registry: Arc<Metrics>,
    namespace: Box<str>,
    name: Box<str>,
    entry: Arc<Entry>,
}

impl ObjectMetrics {
    /// The entry to record into: the held one, unless the object was forgotten meanwhile
    /// (then the registry's, made afresh if needed, exactly as recording by name).
    fn entry(&mut self) -> &Entry {
        if self.entry.forgotten.load(Ordering::Acquire) {
            self.entry = self.registry.with(|inner| {
                inner
                    .object(&self.namespace, &self.name, Arc::default)
                    .clone()
            });
        }
        &self.entry
    }

    /// [`Metrics::observe_decision`] for this object.
    pub fn observe_decision(&mut self, decision: &Decision, latencies: &[Duration]) {
        self.entry()
            .record(|o| o.observe_decision(decision, latencies));
    }

    /// [`Metrics::observe_loop_latency`] for this object.
    pub fn observe_loop_latency(&mut self, lateness: Duration) {
        self.entry()
            .record(|o| o.loop_latency = Some(lateness.as_secs_f64()));
    }
}

impl ObjectSeries {
    fn observe_decision(&mut self, decision: &Decision, latencies: &[Duration]) {
        let o = self;
        o.paused = Some(if decision.paused { 1.0 } else { 0.0 });
        if decision.error {
            *o.errors.get_or_insert(0.0) += 1.0;
        }
        for (i, t) in decision.triggers.iter().enumerate() {
            if o.triggers.len() <= i {
                o.triggers.push(TriggerSeries::new(&t.trigger_type));
            } else if *o.triggers[i].trigger_type != *t.trigger_type {
                // The spec changed under this index: its old series go.
                o.triggers[i] = TriggerSeries::new(&t.trigger_type);
            }
            let s = &mut o.triggers[i];
            if let Some(v) = t.value {
                s.value = Some(v);
            }
            s.active = Some(if t.active { 1.0 } else { 0.0 });
            if let Some(l) = latencies.get(i) {
                s.latency = Some(l.as_secs_f64());
            }
            if t.error.is_some() {
                *s.errors.get_or_insert(0.0) += 1.0;
            }
        }
    }
}

/// Which value of a ScaledObject or trigger a metric shows.
#[derive(Clone, Copy)]
enum Source {
    Paused,
    Errors,
    LoopLatency,
    Value,
    Active,
    Latency,
    TriggerErrors,
}

const HELP: [(&str, &str, Source, &str); 7] = [
    (
        "keda_scaler_metrics_value",
        "gauge",
        Source::Value,
        "The current value for each scaler's metric that would be used by the HPA in computing the target average.",
    ),
    (
        "keda_scaler_active",
        "gauge",
        Source::Active,
        "Activity of a Scaler Metric (1 active, 0 inactive).",
    ),
    (
        "keda_scaler_metrics_latency_seconds",
        "gauge",
        Source::Latency,
        "The latency of retrieving current metric from each scaler, in seconds.",
    ),
    (
        "keda_scaler_detail_errors_total",
        "counter",
        Source::TriggerErrors,
        "The total number of errors encountered for each scaler.",
    ),
    (
        "keda_scaled_object_errors_total",
        "counter",
        Source::Errors,
        "The number of errors that have occurred for each ScaledObject.",
    ),
    (
        "keda_scaled_object_paused",
        "gauge",
        Source::Paused,
        "Indicates whether a ScaledObject is paused (1) or not (0).",
    ),
    (
        "keda_internal_scale_loop_latency_seconds",
        "gauge",
        Source::LoopLatency,
        "Total deviation (in seconds) between the expected execution time and the actual execution time for the scaling loop.",
    ),
];

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }

    /// The series of one ScaledObject, for recording on every poll (made now if missing).
    pub fn object(self: &Arc<Self>, namespace: &str, scaled_object: &str) -> ObjectMetrics {
        let entry = self.with(|inner| inner.object(namespace, scaled_object, Arc::default).clone());
        ObjectMetrics {
            registry: self.clone(),
            namespace: namespace.into(),
            name: scaled_object.into(),
            entry,
        }
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
        self.with(|inner| {
            inner
                .object(namespace, scaled_object, Arc::default)
                .record(|o| o.observe_decision(decision, latencies));
        });
    }

    /// How late the scale loop ran compared with its schedule.
    pub fn observe_loop_latency(&self, namespace: &str, scaled_object: &str, lateness: Duration) {
        self.with(|inner| {
            inner
                .object(namespace, scaled_object, Arc::default)
                .record(|o| o.loop_latency = Some(lateness.as_secs_f64()));
        });
    }

    /// Drop every series of a deleted ScaledObject.
    pub fn forget(&self, namespace: &str, scaled_object: &str) {
        self.with(|inner| {
            if let Some(by_name) = inner.objects.get_mut(namespace) {
                if let Some(e) = by_name.remove(scaled_object) {
                    e.forgotten.store(true, Ordering::Release);
                }
                if by_name.is_empty() {
                    inner.objects.remove(namespace);
                }
            }
        });
    }

    /// Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for (name, kind, source, help) in HELP {
            let mut header = false;
            for (ns, by_name) in &g.objects {
                for (so, entry) in by_name {
                    let o = entry.series.lock().unwrap_or_else(|e| e.into_inner());
                    let (ns, so) = (escape(ns), escape(so));
                    let object_value = match source {
                        Source::Paused => Some(o.paused),
                        Source::Errors => Some(o.errors),
                        Source::LoopLatency => Some(o.loop_latency),
                        _ => None,
                    };
                    let mut line = |labels: &str, v: f64| {
                        if !header {
                            let _ = writeln!(out, "# HELP {name} {help}");
                            let _ = writeln!(out, "# TYPE {name} {kind}");
                            header = true;
                        }
                        let _ = writeln!(out, "{name}{{{labels}}} {}", fmt_value(v));
                    };
                    match object_value {
                        Some(Some(v)) if matches!(source, Source::LoopLatency) => line(
                            &format!("namespace=\"{ns}\",type=\"scaledobject\",resource=\"{so}\""),
                            v,
                        ),
                        Some(Some(v)) => {
                            line(&format!("namespace=\"{ns}\",scaledObject=\"{so}\""), v)
                        }
                        Some(None) => {}
                        None => {
                            for (i, t) in o.triggers.iter().enumerate() {
                                let v = match source {
                                    Source::Value => t.value,
                                    Source::Active => t.active,
                                    Source::Latency => t.latency,
                                    _ => t.errors,
                                };
                                let Some(v) = v else { continue };
                                let tt = escape(&t.trigger_type);
                                line(
                                    &format!(
                                        "namespace=\"{ns}\",scaledObject=\"{so}\",scaler=\"{}Scaler\",triggerIndex=\"{i}\",metric=\"s{i}-{tt}\",type=\"scaledobject\"",
                                        escape(&scaler_label(&t.trigger_type))
                                    ),
                                    v,
                                );
                            }
                        }
                    }
                }
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
            reason: Default::default(),
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
        // A trigger without a value has no value series; one HELP/TYPE per metric.
        assert!(!text.contains("metric=\"s1-prometheus\",type=\"scaledobject\"} NaN"));
        assert!(!text.contains("keda_scaler_metrics_value{namespace=\"ns\",scaledObject=\"so\",scaler=\"prometheusScaler\""));
        assert_eq!(text.matches("# TYPE keda_scaler_active gauge").count(), 1);

        // Another object, then the first one's spec changes trigger 1's type: its old series
        // go, the new type starts from scratch.
        m.observe_decision("ns", "other", &d, &[]);
        let mut d2 = d.clone();
        d2.triggers[1].trigger_type = "cron".into();
        d2.triggers[1].error = None;
        m.observe_decision("ns", "so", &d2, &[]);
        let text = m.render();
        assert!(
            !text.contains("scaledObject=\"so\",scaler=\"prometheusScaler\""),
            "{text}"
        );
        assert!(text.contains("keda_scaler_active{namespace=\"ns\",scaledObject=\"so\",scaler=\"cronScaler\",triggerIndex=\"1\",metric=\"s1-cron\",type=\"scaledobject\"} 0"), "{text}");
        assert!(!text.contains("keda_scaler_detail_errors_total{namespace=\"ns\",scaledObject=\"so\",scaler=\"cronScaler\""));
        assert!(text.contains("keda_scaler_detail_errors_total{namespace=\"ns\",scaledObject=\"other\",scaler=\"prometheusScaler\",triggerIndex=\"1\",metric=\"s1-prometheus\",type=\"scaledobject\"} 1"));

        m.forget("ns", "so");
        let text = m.render();
        assert!(!text.contains("scaledObject=\"so\""), "{text}");
        assert!(text.contains("scaledObject=\"other\""));
        m.forget("ns", "other");
        assert_eq!(m.render(), "");
    }

    #[test]
    fn a_held_handle_records_what_recording_by_name_does() {
        let d = Decision {
            desired_replicas: 1,
            current_replicas: 1,
            reason: Default::default(),
            requeue_after: Duration::from_secs(30),
            state: State::Active,
            active: true,
            error: false,
            fallback: false,
            paused: false,
            triggers: vec![TriggerReport {
                name: "q".into(),
                trigger_type: "aws-sqs-queue".into(),
                value: Some(3.0),
                active: true,
                error: None,
                failures: 0,
                fallback: false,
            }],
            composite: None,
        };
        let by_name = Metrics::new();
        let held = Arc::new(Metrics::new());
        let mut h = held.object("ns", "so");
        for _ in 0..2 {
            by_name.observe_decision("ns", "so", &d, &[Duration::from_millis(2)]);
            by_name.observe_loop_latency("ns", "so", Duration::from_millis(4));
            h.observe_decision(&d, &[Duration::from_millis(2)]);
            h.observe_loop_latency(Duration::from_millis(4));
        }
        // Another object by name into the same registry sorts among the held ones.
        by_name.observe_decision("a", "b", &d, &[]);
        held.observe_decision("a", "b", &d, &[]);
        assert_eq!(held.render(), by_name.render());
        assert!(!held.render().is_empty());

        // Forgotten while a loop still holds it: its next poll brings it back, as by name.
        by_name.forget("ns", "so");
        held.forget("ns", "so");
        assert_eq!(held.render(), by_name.render());
        assert!(!held.render().contains("scaledObject=\"so\""));
        by_name.observe_loop_latency("ns", "so", Duration::from_millis(4));
        h.observe_loop_latency(Duration::from_millis(4));
        assert_eq!(held.render(), by_name.render());
        assert!(held.render().contains("resource=\"so\""));
        // A second handle to the same object records into the same series.
        let mut h2 = held.object("ns", "so");
        h2.observe_decision(&d, &[]);
        by_name.observe_decision("ns", "so", &d, &[]);
        assert_eq!(held.render(), by_name.render());
    }
}
