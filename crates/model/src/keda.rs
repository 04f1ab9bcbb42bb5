//! KEDA's resource formats (keda.sh/v1alpha1): `ScaledObject`, `TriggerAuthentication` and
//! `ClusterTriggerAuthentication`, with KEDA 2.20's field names and defaults, and the checks
//! KEDA's admission webhook runs.
//!
//! Unknown fields are rejected (`deny_unknown_fields`) so a typo or a field kedge does not
//! implement is reported with its path instead of being silently ignored. Defaults are not
//! written into the structs (so a manifest round-trips unchanged); the accessor methods on
//! [`ScaledObjectSpec`] apply them.
//!
//! Submodules:
//! - `triggers`: per-trigger-type metadata parsing and validation (the typed configs the
//!   scalers use).
//! - `formula`: the `scalingModifiers.formula` front end: expr-lang syntax checked and
//!   translated for the evaluator in `autoscale`.

pub mod formula;
pub mod scaledjob;
pub mod triggers;

pub use scaledjob::ScaledJob;

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::manifest::{FieldError, Manifest, ObjectMeta};

pub const API_VERSION: &str = "keda.sh/v1alpha1";

/// Pause autoscaling at the current replica count (`"true"`).
pub const ANNOTATION_PAUSED: &str = "autoscaling.keda.sh/paused";
/// Pause autoscaling and scale to this many replicas.
pub const ANNOTATION_PAUSED_REPLICAS: &str = "autoscaling.keda.sh/paused-replicas";
/// Block scale-in (KEDA 2.17+).
pub const ANNOTATION_PAUSED_SCALE_IN: &str = "autoscaling.keda.sh/paused-scale-in";
/// Block scale-out (KEDA 2.17+).
pub const ANNOTATION_PAUSED_SCALE_OUT: &str = "autoscaling.keda.sh/paused-scale-out";
/// kedge extension: polling interval with sub-second resolution (`"250ms"`, `"0.5s"`, `"2s"`);
/// overrides `spec.pollingInterval`. Absent = KEDA's behaviour.
pub const ANNOTATION_KEDGE_POLLING_INTERVAL: &str = "autoscaling.kedge.dev/polling-interval";
/// kedge extension: `"true"` lets triggers that can push change notifications wake the scale
/// loop before the next poll. Absent = KEDA's behaviour (poll only).
pub const ANNOTATION_KEDGE_EVENT_DRIVEN: &str = "autoscaling.kedge.dev/event-driven";
/// kedge extension: the latency a message may take from being sent to being done (`"30s"`,
/// `"2m"`), which the `kedge` policy meets at the least cost: it sets the backlog one
/// replica may hold from the consumers' measured work time, in place of the backlog
/// triggers' own targets. Other policies ignore it.
pub const ANNOTATION_KEDGE_LATENCY_OBJECTIVE: &str = "autoscaling.kedge.dev/latency-objective";

pub const DEFAULT_POLLING_INTERVAL_SECS: i32 = 30;
pub const DEFAULT_COOLDOWN_PERIOD_SECS: i32 = 300;
pub const DEFAULT_INITIAL_COOLDOWN_PERIOD_SECS: i32 = 0;
pub const DEFAULT_MIN_REPLICA_COUNT: i32 = 0;
pub const DEFAULT_MAX_REPLICA_COUNT: i32 = 100;

// ---------------------------------------------------------------------------------------------
// ScaledObject
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaledObject {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub spec: ScaledObjectSpec,
    /// Written by the controller upstream; accepted so `kubectl get -o yaml` output can be
    /// checked, never read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaledObjectSpec {
    pub scale_target_ref: ScaleTarget,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polling_interval: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_period: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_cooldown_period: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_replica_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replica_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replica_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advanced: Option<Advanced>,
    pub triggers: Vec<Trigger>,
}

impl ScaledObjectSpec {
    pub fn polling_interval_secs(&self) -> i32 {
        self.polling_interval
            .unwrap_or(DEFAULT_POLLING_INTERVAL_SECS)
    }
    pub fn cooldown_period_secs(&self) -> i32 {
        self.cooldown_period.unwrap_or(DEFAULT_COOLDOWN_PERIOD_SECS)
    }
    pub fn initial_cooldown_period_secs(&self) -> i32 {
        self.initial_cooldown_period
            .unwrap_or(DEFAULT_INITIAL_COOLDOWN_PERIOD_SECS)
    }
    pub fn min_replicas(&self) -> i32 {
        self.min_replica_count.unwrap_or(DEFAULT_MIN_REPLICA_COUNT)
    }
    pub fn max_replicas(&self) -> i32 {
        self.max_replica_count.unwrap_or(DEFAULT_MAX_REPLICA_COUNT)
    }
    pub fn behavior(&self) -> Option<&HpaBehavior> {
        self.advanced
            .as_ref()?
            .horizontal_pod_autoscaler_config
            .as_ref()?
            .behavior
            .as_ref()
    }
    pub fn scaling_modifiers(&self) -> Option<&ScalingModifiers> {
        self.advanced.as_ref()?.scaling_modifiers.as_ref()
    }
    pub fn restore_to_original_replica_count(&self) -> bool {
        self.advanced
            .as_ref()
            .is_some_and(|a| a.restore_to_original_replica_count)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaleTarget {
    /// Default `apps/v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Default `Deployment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_source_container_name: Option<String>,
}

impl ScaleTarget {
    pub fn api_version_or_default(&self) -> &str {
        self.api_version.as_deref().unwrap_or("apps/v1")
    }
    pub fn kind_or_default(&self) -> &str {
        self.kind.as_deref().unwrap_or("Deployment")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fallback {
    pub failure_threshold: i32,
    pub replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<FallbackBehavior>,
}

/// What replica count the fallback asks for (KEDA 2.17+); default `static`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum FallbackBehavior {
    /// Exactly `fallback.replicas`.
    #[default]
    Static,
    /// Keep the current replica count.
    CurrentReplicas,
    /// `max(current, fallback.replicas)`.
    CurrentReplicasIfHigher,
    /// `min(current, fallback.replicas)`.
    CurrentReplicasIfLower,
    /// KEDA 2.20+: no fallback count; a failing trigger's value becomes nil in the
    /// `scalingModifiers.formula` (for `??`) once it exceeds `failureThreshold`.
    ScalingModifiers,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Advanced {
    #[serde(default)]
    pub restore_to_original_replica_count: bool,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "horizontalPodAutoscalerConfig"
    )]
    pub horizontal_pod_autoscaler_config: Option<HpaConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_modifiers: Option<ScalingModifiers>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HpaConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<HpaBehavior>,
}

/// `autoscaling/v2` `HorizontalPodAutoscalerBehavior`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HpaBehavior {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up: Option<HpaScalingRules>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<HpaScalingRules>,
}

/// `autoscaling/v2` `HPAScalingRules`; unset fields take the HPA defaults (see `autoscale`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HpaScalingRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stabilization_window_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_policy: Option<SelectPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Vec<HpaScalingPolicy>>,
    /// Kubernetes 1.33+ per-direction tolerance (a quantity such as `"0.05"` or `50m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<QuantityValue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum SelectPolicy {
    Max,
    Min,
    Disabled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HpaScalingPolicy {
    #[serde(rename = "type")]
    pub policy_type: PolicyType,
    pub value: i32,
    pub period_seconds: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum PolicyType {
    Pods,
    Percent,
}

/// A Kubernetes quantity as YAML may spell it: a string (`"0.05"`, `"50m"`) or a number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum QuantityValue {
    Number(f64),
    String(String),
}

/// A quantity field (HPA `tolerance`) is int-or-string in Kubernetes' own schema.
#[cfg(feature = "schema")]
impl schemars::JsonSchema for QuantityValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "QuantityValue".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "x-kubernetes-int-or-string": true })
    }
}

impl QuantityValue {
    /// The value as a float; supports plain decimals and the `m` (milli) suffix, which is
    /// what a fraction such as a tolerance is written with.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            QuantityValue::Number(n) => Some(*n),
            QuantityValue::String(s) => {
                let s = s.trim();
                if let Some(m) = s.strip_suffix('m') {
                    m.parse::<f64>().ok().map(|v| v / 1000.0)
                } else {
                    s.parse::<f64>().ok()
                }
            }
        }
        .filter(|v| v.is_finite())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalingModifiers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formula: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_type: Option<MetricType>,
}

/// HPA metric target type. `Utilization` exists upstream for cpu/memory triggers only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum MetricType {
    #[default]
    AverageValue,
    Value,
    Utilization,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Trigger {
    #[serde(rename = "type")]
    pub trigger_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_ref: Option<AuthenticationRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_type: Option<MetricType>,
    #[serde(default)]
    pub use_cached_metrics: bool,
}

impl Trigger {
    pub fn metric_type_or_default(&self) -> MetricType {
        self.metric_type.unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthenticationRef {
    pub name: String,
    /// `TriggerAuthentication` (default) or `ClusterTriggerAuthentication`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl Manifest for ScaledObject {
    const KIND: &'static str = "ScaledObject";
    const API_VERSIONS: &'static [&'static str] = &[API_VERSION];
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        self.metadata.validate(&mut errors);
        validate_annotations(&self.metadata.annotations, &mut errors);
        validate_spec(&self.spec, &mut errors);
        errors
    }
}

/// The pause state the annotations ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PauseAnnotations {
    /// `paused-replicas`: scale to this count and stop (takes precedence over `paused`).
    pub paused_replicas: Option<i32>,
    /// `paused: "true"`: stop at the current count.
    pub paused: bool,
    pub paused_scale_in: bool,
    pub paused_scale_out: bool,
}

impl ScaledObject {
    /// Read the pause annotations. Values that do not parse count as absent (validation
    /// reports them); this keeps a running loop from failing on an edited annotation.
    pub fn pause_annotations(&self) -> PauseAnnotations {
        let a = &self.metadata.annotations;
        let flag = |k: &str| a.get(k).and_then(|v| parse_go_bool(v)).unwrap_or(false);
        PauseAnnotations {
            paused_replicas: a
                .get(ANNOTATION_PAUSED_REPLICAS)
                .and_then(|v| v.trim().parse::<i32>().ok())
                .filter(|v| *v >= 0),
            paused: flag(ANNOTATION_PAUSED),
            paused_scale_in: flag(ANNOTATION_PAUSED_SCALE_IN),
            paused_scale_out: flag(ANNOTATION_PAUSED_SCALE_OUT),
        }
    }

    /// Polling interval in milliseconds: the kedge sub-second annotation when present,
    /// else `spec.pollingInterval` seconds.
    pub fn polling_interval_ms(&self) -> u64 {
        if let Some(v) = self
            .metadata
            .annotations
            .get(ANNOTATION_KEDGE_POLLING_INTERVAL)
            .and_then(|v| parse_duration_ms(v))
        {
            return v.max(1);
        }
        (self.spec.polling_interval_secs().max(1) as u64) * 1000
    }

    /// The latency objective (kedge extension), when the annotation holds a positive duration.
    pub fn latency_objective_ms(&self) -> Option<u64> {
        self.metadata
            .annotations
            .get(ANNOTATION_KEDGE_LATENCY_OBJECTIVE)
            .and_then(|v| parse_duration_ms(v))
    }

    /// Whether triggers may wake the loop early (kedge extension; default false).
    pub fn event_driven(&self) -> bool {
        self.metadata
            .annotations
            .get(ANNOTATION_KEDGE_EVENT_DRIVEN)
            .and_then(|v| parse_go_bool(v))
            .unwrap_or(false)
    }

    /// The name each trigger is known by in metrics and formulas: its `name`, else
    /// `s{index}-{type}` (KEDA's generated metric-name prefix).
    pub fn trigger_names(&self) -> Vec<String> {
        self.spec
            .triggers
            .iter()
            .enumerate()
            .map(|(i, t)| {
                t.name
                    .clone()
                    .unwrap_or_else(|| format!("s{i}-{}", t.trigger_type))
            })
            .collect()
    }
}

/// Go's `strconv.ParseBool`, which KEDA uses for boolean metadata and annotations.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `"250ms"`, `"1.5s"`, `"2s"`, `"1m"`, or a bare number of seconds.
pub fn parse_duration_ms(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        (s, 1000.0)
    };
    let v: f64 = num.trim().parse().ok()?;
    if !v.is_finite() || v <= 0.0 {
        return None;
    }
    Some((v * mult).round() as u64)
}

fn validate_annotations(annotations: &BTreeMap<String, String>, errors: &mut Vec<FieldError>) {
    let path = |k: &str| format!("metadata.annotations.{k}");
    for key in [
        ANNOTATION_PAUSED,
        ANNOTATION_PAUSED_SCALE_IN,
        ANNOTATION_PAUSED_SCALE_OUT,
        ANNOTATION_KEDGE_EVENT_DRIVEN,
    ] {
        if let Some(v) = annotations.get(key)
            && parse_go_bool(v).is_none()
        {
            errors.push(FieldError::new(
                path(key),
                format!("expected \"true\" or \"false\", got {v:?}"),
            ));
        }
    }
    if let Some(v) = annotations.get(ANNOTATION_PAUSED_REPLICAS) {
        match v.trim().parse::<i32>() {
            Ok(n) if n >= 0 => {}
            _ => errors.push(FieldError::new(
                path(ANNOTATION_PAUSED_REPLICAS),
                format!("expected a non-negative integer, got {v:?}"),
            )),
        }
    }
    if let Some(v) = annotations.get(ANNOTATION_KEDGE_POLLING_INTERVAL)
        && parse_duration_ms(v).is_none()
    {
        errors.push(FieldError::new(
            path(ANNOTATION_KEDGE_POLLING_INTERVAL),
            format!("expected a positive duration such as \"250ms\" or \"2s\", got {v:?}"),
        ));
    }
    if let Some(v) = annotations.get(ANNOTATION_KEDGE_LATENCY_OBJECTIVE)
        && parse_duration_ms(v).is_none()
    {
        errors.push(FieldError::new(
            path(ANNOTATION_KEDGE_LATENCY_OBJECTIVE),
            format!("expected a positive duration such as \"30s\" or \"2m\", got {v:?}"),
        ));
    }
}

/// Trigger types that are pod resource metrics (always active, never to zero alone).
const CPU_MEMORY: [&str; 2] = ["cpu", "memory"];

fn validate_spec(spec: &ScaledObjectSpec, errors: &mut Vec<FieldError>) {
    if spec.scale_target_ref.name.trim().is_empty() {
        errors.push(FieldError::new(
            "spec.scaleTargetRef.name",
            "is required: name the Deployment (or other scalable resource) to scale",
        ));
    }
    // Timing fields: KEDA's CRD declares them int32; negative values make no sense.
    for (field, v) in [
        ("spec.pollingInterval", spec.polling_interval),
        ("spec.cooldownPeriod", spec.cooldown_period),
        ("spec.initialCooldownPeriod", spec.initial_cooldown_period),
    ] {
        if let Some(v) = v
            && v < 0
        {
            errors.push(FieldError::new(
                field,
                format!("must be 0 or more seconds, got {v}"),
            ));
        }
    }
    if spec.polling_interval == Some(0) {
        errors.push(FieldError::new(
            "spec.pollingInterval",
            "must be at least 1 second (use the autoscaling.kedge.dev/polling-interval annotation for sub-second polling)",
        ));
    }

    // Replica bounds, as KEDA's CheckReplicaCountBoundsAreValid.
    let min = spec.min_replicas();
    let max = spec.max_replicas();
    if min < 0 {
        errors.push(FieldError::new(
            "spec.minReplicaCount",
            format!("must be 0 or more, got {min}"),
        ));
    }
    if max < 1 {
        errors.push(FieldError::new(
            "spec.maxReplicaCount",
            format!("must be 1 or more, got {max}"),
        ));
    }
    if min > max {
        errors.push(FieldError::new(
            "spec.minReplicaCount",
            format!("MinReplicaCount={min} must be less than or equal to MaxReplicaCount={max}"),
        ));
    }
    if let Some(idle) = spec.idle_replica_count {
        if idle < 0 {
            errors.push(FieldError::new(
                "spec.idleReplicaCount",
                format!("must be 0 or more, got {idle}"),
            ));
        } else if idle >= min {
            errors.push(FieldError::new(
                "spec.idleReplicaCount",
                format!("IdleReplicaCount={idle} must be less than MinReplicaCount={min}"),
            ));
        }
    }

    // KEDA's verifyCPUMemoryScalers: resource metrics never reach zero.
    if !spec.triggers.is_empty()
        && spec
            .triggers
            .iter()
            .all(|t| CPU_MEMORY.contains(&t.trigger_type.as_str()))
        && spec.min_replicas() == 0
    {
        errors.push(FieldError::new(
            "spec.minReplicaCount",
            "scaledobject has only cpu/memory triggers AND minReplica is 0 (scale to zero doesn't work in this case)",
        ));
    }

    // Triggers, as KEDA's ValidateTriggers.
    if spec.triggers.is_empty() {
        errors.push(FieldError::new(
            "spec.triggers",
            "no triggers defined: add at least one trigger",
        ));
    }
    let mut names = HashSet::new();
    for (i, t) in spec.triggers.iter().enumerate() {
        let base = format!("spec.triggers[{i}]");
        if let Some(name) = &t.name
            && !names.insert(name.as_str())
        {
            errors.push(FieldError::new(
                    format!("{base}.name"),
                    format!("triggerName {name:?} is defined multiple times in the ScaledObject, but it must be unique"),
                ));
        }
        let resource = CPU_MEMORY.contains(&t.trigger_type.as_str());
        if t.metric_type == Some(MetricType::Utilization) && !resource {
            errors.push(FieldError::new(
                format!("{base}.metricType"),
                "Utilization is only valid for cpu/memory triggers; use AverageValue or Value",
            ));
        }
        if resource && t.metric_type == Some(MetricType::Value) {
            errors.push(FieldError::new(
                format!("{base}.metricType"),
                "cpu/memory triggers take Utilization or AverageValue",
            ));
        }
        if t.use_cached_metrics && t.trigger_type == "cron" {
            errors.push(FieldError::new(
                format!("{base}.useCachedMetrics"),
                "property useCachedMetrics cannot be enabled for trigger type cron",
            ));
        }
        if let Some(r) = &t.authentication_ref {
            if r.name.trim().is_empty() {
                errors.push(FieldError::new(
                    format!("{base}.authenticationRef.name"),
                    "is required",
                ));
            }
            if let Some(kind) = &r.kind
                && kind != "TriggerAuthentication"
                && kind != "ClusterTriggerAuthentication"
            {
                errors.push(FieldError::new(
                    format!("{base}.authenticationRef.kind"),
                    format!("expected TriggerAuthentication or ClusterTriggerAuthentication, got {kind:?}"),
                ));
            }
        }
        if let Err(errs) = triggers::TriggerConfig::parse(t) {
            for e in errs {
                errors.push(FieldError::new(format!("{base}.{}", e.path), e.message));
            }
        }
    }

    if let Some(fb) = &spec.fallback {
        validate_fallback(spec, fb, errors);
    }
    if let Some(b) = spec.behavior() {
        for (dir, rules) in [("scaleUp", &b.scale_up), ("scaleDown", &b.scale_down)] {
            if let Some(r) = rules {
                validate_rules(
                    &format!("spec.advanced.horizontalPodAutoscalerConfig.behavior.{dir}"),
                    r,
                    errors,
                );
            }
        }
    }
    if let Some(sm) = spec.scaling_modifiers() {
        validate_modifiers(spec, sm, errors);
    }
}

fn validate_fallback(spec: &ScaledObjectSpec, fb: &Fallback, errors: &mut Vec<FieldError>) {
    if fb.behavior == Some(FallbackBehavior::ScalingModifiers)
        && spec
            .scaling_modifiers()
            .and_then(|m| m.formula.as_deref())
            .is_none_or(|f| f.trim().is_empty())
    {
        errors.push(FieldError::new(
            "spec.fallback.behavior",
            "scalingModifiers fallback behavior requires scalingModifiers.formula to be defined",
        ));
    }
    if fb.failure_threshold < 0 || fb.replicas < 0 {
        errors.push(FieldError::new(
            "spec.fallback",
            format!(
                "FailureThreshold={} & Replicas={} must both be greater than or equal to 0",
                fb.failure_threshold, fb.replicas
            ),
        ));
    }
    // Fallback works by feeding the HPA `replicas × target` as an AverageValue metric, so
    // KEDA requires an AverageValue metric to carry it.
    if let Some(sm) = spec.scaling_modifiers() {
        if sm.formula.is_some() && sm.metric_type.unwrap_or_default() != MetricType::AverageValue {
            errors.push(FieldError::new(
                "spec.advanced.scalingModifiers.metricType",
                "when using scalingModifiers, metricType must be AverageValue to have fallback enabled",
            ));
        }
    } else if !spec.triggers.iter().any(|t| {
        !CPU_MEMORY.contains(&t.trigger_type.as_str())
            && t.metric_type_or_default() == MetricType::AverageValue
    }) {
        errors.push(FieldError::new(
            "spec.fallback",
            "at least one trigger (that is not cpu or memory) has to have the AverageValue metricType for the fallback to be enabled",
        ));
    }
}

fn validate_rules(base: &str, r: &HpaScalingRules, errors: &mut Vec<FieldError>) {
    if let Some(w) = r.stabilization_window_seconds
        && !(0..=3600).contains(&w)
    {
        errors.push(FieldError::new(
            format!("{base}.stabilizationWindowSeconds"),
            format!("must be between 0 and 3600 seconds, got {w}"),
        ));
    }
    if let Some(policies) = &r.policies {
        if policies.is_empty() && r.select_policy != Some(SelectPolicy::Disabled) {
            errors.push(FieldError::new(
                format!("{base}.policies"),
                "must contain at least one policy (or omit it to use the defaults)",
            ));
        }
        for (i, p) in policies.iter().enumerate() {
            if p.value <= 0 {
                errors.push(FieldError::new(
                    format!("{base}.policies[{i}].value"),
                    format!("must be greater than zero, got {}", p.value),
                ));
            }
            if !(1..=1800).contains(&p.period_seconds) {
                errors.push(FieldError::new(
                    format!("{base}.policies[{i}].periodSeconds"),
                    format!("must be between 1 and 1800, got {}", p.period_seconds),
                ));
            }
        }
    }
    if let Some(t) = &r.tolerance {
        match t.as_f64() {
            Some(v) if v >= 0.0 => {}
            _ => errors.push(FieldError::new(
                format!("{base}.tolerance"),
                format!("expected a non-negative quantity such as \"0.1\", got {t:?}"),
            )),
        }
    }
}

fn validate_modifiers(
    spec: &ScaledObjectSpec,
    sm: &ScalingModifiers,
    errors: &mut Vec<FieldError>,
) {
    let base = "spec.advanced.scalingModifiers";
    let Some(f) = sm.formula.as_deref().filter(|f| !f.trim().is_empty()) else {
        // KEDA treats an empty scalingModifiers as "not using modifiers" only when all
        // fields are empty.
        if sm.target.is_some() || sm.activation_target.is_some() {
            errors.push(FieldError::new(
                format!("{base}.formula"),
                "is required when scalingModifiers is set",
            ));
        }
        return;
    };
    match sm.target.as_deref() {
        None | Some("") => errors.push(FieldError::new(
            format!("{base}.target"),
            "is required when a formula is set",
        )),
        Some(t) => {
            if t.trim().parse::<f64>().map(|v| v.is_finite()) != Ok(true) {
                errors.push(FieldError::new(
                    format!("{base}.target"),
                    format!("expected a number, got {t:?}"),
                ));
            }
        }
    }
    if let Some(a) = sm.activation_target.as_deref()
        && a.trim().parse::<f64>().map(|v| v.is_finite()) != Ok(true)
    {
        errors.push(FieldError::new(
            format!("{base}.activationTarget"),
            format!("expected a number, got {a:?}"),
        ));
    }
    if sm.metric_type == Some(MetricType::Utilization) {
        errors.push(FieldError::new(
            format!("{base}.metricType"),
            "Utilization is not allowed for scalingModifiers; use AverageValue or Value",
        ));
    }
    let names: Vec<&str> = spec
        .triggers
        .iter()
        .filter_map(|t| t.name.as_deref())
        .collect();
    if let Err(e) = formula::translate(f, &names) {
        errors.push(FieldError::new(format!("{base}.formula"), e.to_string()));
    }
}

/// KEDA's webhook refuses a second ScaledObject for a workload that one already scales
/// (two HPAs would fight). Checked across every document given to `kedge check`.
pub fn duplicate_scale_targets(
    docs: &[crate::manifest::Located<'_>],
) -> Vec<crate::manifest::ManifestError> {
    let mut seen: BTreeMap<(String, String, String, String), String> = BTreeMap::new();
    let mut out = Vec::new();
    for l in docs {
        if l.doc.kind() != Some(ScaledObject::KIND) {
            continue;
        }
        let Ok(so) = serde_json::from_value::<ScaledObject>(l.doc.value.clone()) else {
            continue; // reported by the per-document check
        };
        let t = &so.spec.scale_target_ref;
        let key = (
            so.metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            t.api_version_or_default().to_string(),
            t.kind_or_default().to_string(),
            t.name.clone(),
        );
        match seen.get(&key) {
            Some(owner) if *owner != so.metadata.name => out.push(crate::manifest::ManifestError {
                file: l.file.to_string(),
                doc: Some(l.doc.index),
                path: "spec.scaleTargetRef".into(),
                message: format!(
                    "the workload {:?} of type {}.{} is already managed by the ScaledObject {owner:?}",
                    key.3, key.1, key.2
                ),
            }),
            Some(_) => {}
            None => {
                seen.insert(key, so.metadata.name.clone());
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// TriggerAuthentication / ClusterTriggerAuthentication
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TriggerAuthentication {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub spec: TriggerAuthenticationSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

/// Same shape as [`TriggerAuthentication`], cluster-scoped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterTriggerAuthentication {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub spec: TriggerAuthenticationSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TriggerAuthenticationSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_identity: Option<PodIdentity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_target_ref: Vec<SecretTargetRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_map_target_ref: Vec<SecretTargetRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvRef>,
    /// Documented upstream; kedge has no client for these secret stores yet, so validation
    /// rejects them by name rather than ignoring them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashi_corp_vault: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_key_vault: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp_secret_manager: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_secret_manager: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_service_account_token: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_path: Option<serde_json::Value>,
    /// KEDA 2.21: OAuth2 client-credentials tokens; no client in kedge yet (rejected by name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodIdentity {
    /// `none`, `aws`, `aws-eks` (deprecated alias kept for old manifests), `azure-workload`, `gcp`.
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_authority_host: Option<String>,
    /// `aws`: role to assume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// `aws`: external ID for assuming `roleArn` (KEDA 2.18+).
    #[serde(
        default,
        rename = "externalID",
        skip_serializing_if = "Option::is_none"
    )]
    pub external_id: Option<String>,
    /// `aws`: `keda` (the operator's identity, default) or `workload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_owner: Option<String>,
}

pub const POD_IDENTITY_PROVIDERS: [&str; 5] = ["none", "aws", "aws-eks", "azure-workload", "gcp"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretTargetRef {
    pub parameter: String,
    pub name: String,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvRef {
    pub parameter: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
}

impl TriggerAuthenticationSpec {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        for (field, v) in [
            ("hashiCorpVault", &self.hashi_corp_vault),
            ("azureKeyVault", &self.azure_key_vault),
            ("gcpSecretManager", &self.gcp_secret_manager),
            ("awsSecretManager", &self.aws_secret_manager),
            (
                "boundServiceAccountToken",
                &self.bound_service_account_token,
            ),
            ("filePath", &self.file_path),
            ("oauth2", &self.oauth2),
        ] {
            if v.is_some() {
                errors.push(FieldError::new(
                    format!("spec.{field}"),
                    "not supported by kedge: use secretTargetRef, configMapTargetRef, env or podIdentity",
                ));
            }
        }
        if let Some(p) = &self.pod_identity {
            if !POD_IDENTITY_PROVIDERS.contains(&p.provider.as_str()) {
                errors.push(FieldError::new(
                    "spec.podIdentity.provider",
                    format!(
                        "unknown provider {:?}; expected one of {}",
                        p.provider,
                        POD_IDENTITY_PROVIDERS.join(", ")
                    ),
                ));
            }
            if let Some(o) = &p.identity_owner
                && o != "keda"
                && o != "workload"
            {
                errors.push(FieldError::new(
                    "spec.podIdentity.identityOwner",
                    format!("expected keda or workload, got {o:?}"),
                ));
            }
            // KEDA's admission webhook (validateSpec), per provider.
            let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
            match p.provider.as_str() {
                "azure-workload" => {
                    if p.identity_id.as_deref() == Some("") {
                        errors.push(FieldError::new(
                            "spec.podIdentity.identityId",
                            "identityId of PodIdentity should not be empty. If it's set, identityId has to be different than \"\"",
                        ));
                    }
                    if set(&p.identity_authority_host) {
                        if !set(&p.identity_tenant_id) {
                            errors.push(FieldError::new(
                                "spec.podIdentity.identityTenantId",
                                "identityTenantID of PodIdentity should not be nil or empty when identityAuthorityHost of PodIdentity is set",
                            ));
                        }
                    } else if p.identity_tenant_id.as_deref() == Some("") {
                        errors.push(FieldError::new(
                            "spec.podIdentity.identityTenantId",
                            "identityTenantId of PodIdentity should not be empty. If it's set, identityTenantId has to be different than \"\"",
                        ));
                    }
                }
                "aws" => {
                    if set(&p.role_arn) && p.identity_owner.as_deref() == Some("workload") {
                        errors.push(FieldError::new(
                            "spec.podIdentity.roleArn",
                            "roleArn of PodIdentity can't be set if KEDA isn't identityOwner",
                        ));
                    }
                    if set(&p.external_id) && !set(&p.role_arn) {
                        errors.push(FieldError::new(
                            "spec.podIdentity.externalID",
                            "externalID of PodIdentity requires roleArn to be set",
                        ));
                    }
                }
                _ => {}
            }
        }
        let mut seen = HashSet::new();
        let mut param = |kind: &str, i: usize, p: &str, errors: &mut Vec<FieldError>| {
            if p.trim().is_empty() {
                errors.push(FieldError::new(
                    format!("spec.{kind}[{i}].parameter"),
                    "is required",
                ));
            } else if !seen.insert(p.to_string()) {
                errors.push(FieldError::new(
                    format!("spec.{kind}[{i}].parameter"),
                    format!("parameter {p:?} is set more than once"),
                ));
            }
        };
        for (i, s) in self.secret_target_ref.iter().enumerate() {
            param("secretTargetRef", i, &s.parameter, errors);
        }
        for (i, s) in self.config_map_target_ref.iter().enumerate() {
            param("configMapTargetRef", i, &s.parameter, errors);
        }
        for (i, s) in self.env.iter().enumerate() {
            param("env", i, &s.parameter, errors);
        }
    }
}

impl Manifest for TriggerAuthentication {
    const KIND: &'static str = "TriggerAuthentication";
    const API_VERSIONS: &'static [&'static str] = &[API_VERSION];
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        self.metadata.validate(&mut errors);
        self.spec.validate(&mut errors);
        errors
    }
}

impl Manifest for ClusterTriggerAuthentication {
    const KIND: &'static str = "ClusterTriggerAuthentication";
    const API_VERSIONS: &'static [&'static str] = &[API_VERSION];
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        self.metadata.validate(&mut errors);
        self.spec.validate(&mut errors);
        errors
    }
}
