//! KEDA's `ScaledJob` (keda.sh/v1alpha1): one Kubernetes Job per unit of work, created from
//! `jobTargetRef` (a `batch/v1` JobSpec) as the triggers report work, with KEDA's
//! `scalingStrategy` (`default`, `custom`, `accurate`, `eager`), history limits and rollout.
//! The replica maths lives in `autoscale::scaledjob`.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{API_VERSION, Trigger, triggers};
use crate::manifest::{FieldError, Manifest, ObjectMeta};

pub const DEFAULT_SUCCESSFUL_JOBS_HISTORY_LIMIT: i32 = 100;
pub const DEFAULT_FAILED_JOBS_HISTORY_LIMIT: i32 = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaledJob {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub spec: ScaledJobSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaledJobSpec {
    /// A `batch/v1` JobSpec: the template of every Job created.
    pub job_target_ref: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polling_interval: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successful_jobs_history_limit: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_jobs_history_limit: Option<i32>,
    /// Deprecated spelling of `rollout.strategy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_strategy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_source_container_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replica_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replica_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_strategy: Option<ScalingStrategy>,
    pub triggers: Vec<Trigger>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rollout {
    /// `default`/`immediate` (delete running Jobs on update) or `gradual` (let them finish).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// `background` (default) or `foreground`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation_policy: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalingStrategy {
    /// `default`, `custom`, `accurate` or `eager`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_scaling_queue_length_deduction: Option<i32>,
    /// A float as a string, e.g. `"0.5"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_scaling_running_job_percentage: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_pod_conditions: Vec<String>,
    /// `max` (default), `min`, `avg` or `sum`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiple_scalers_calculation: Option<String>,
}

/// The strategy with its parameters, as KEDA's executor selects it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Strategy {
    Default,
    /// `customScalingQueueLengthDeduction`, `customScalingRunningJobPercentage`.
    Custom {
        deduction: i64,
        running_percentage: f64,
    },
    Accurate,
    Eager,
}

/// How several triggers' metrics combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MultipleScalersCalculation {
    #[default]
    Max,
    Min,
    Avg,
    Sum,
}

impl ScaledJobSpec {
    pub fn polling_interval_secs(&self) -> i32 {
        self.polling_interval
            .unwrap_or(super::DEFAULT_POLLING_INTERVAL_SECS)
    }
    pub fn max_replicas(&self) -> i64 {
        i64::from(self.max_replica_count.unwrap_or(100))
    }
    /// KEDA: a minimum above the maximum is the maximum.
    pub fn min_replicas(&self) -> i64 {
        i64::from(self.min_replica_count.unwrap_or(0)).min(self.max_replicas())
    }
    pub fn successful_jobs_history_limit(&self) -> i32 {
        self.successful_jobs_history_limit
            .unwrap_or(DEFAULT_SUCCESSFUL_JOBS_HISTORY_LIMIT)
    }
    pub fn failed_jobs_history_limit(&self) -> i32 {
        self.failed_jobs_history_limit
            .unwrap_or(DEFAULT_FAILED_JOBS_HISTORY_LIMIT)
    }
    /// `gradual` lets running Jobs finish when the ScaledJob changes; `default` deletes them.
    pub fn gradual_rollout(&self) -> bool {
        self.rollout
            .as_ref()
            .and_then(|r| r.strategy.as_deref())
            .or(self.rollout_strategy.as_deref())
            == Some("gradual")
    }
    pub fn foreground_propagation(&self) -> bool {
        self.rollout
            .as_ref()
            .and_then(|r| r.propagation_policy.as_deref())
            == Some("foreground")
    }
    /// KEDA's NewScalingStrategy: `custom` with an unparsable percentage falls back to
    /// `default`.
    pub fn strategy(&self) -> Strategy {
        let s = self.scaling_strategy.as_ref();
        match s.and_then(|s| s.strategy.as_deref()) {
            Some("custom") => match s
                .and_then(|s| s.custom_scaling_running_job_percentage.as_deref())
                .and_then(|p| p.trim().parse::<f64>().ok())
            {
                Some(p) => Strategy::Custom {
                    deduction: i64::from(
                        s.and_then(|s| s.custom_scaling_queue_length_deduction)
                            .unwrap_or(0),
                    ),
                    running_percentage: p,
                },
                None => Strategy::Default,
            },
            Some("accurate") => Strategy::Accurate,
            Some("eager") => Strategy::Eager,
            _ => Strategy::Default,
        }
    }
    pub fn multiple_scalers_calculation(&self) -> MultipleScalersCalculation {
        match self
            .scaling_strategy
            .as_ref()
            .and_then(|s| s.multiple_scalers_calculation.as_deref())
        {
            Some("min") => MultipleScalersCalculation::Min,
            Some("avg") => MultipleScalersCalculation::Avg,
            Some("sum") => MultipleScalersCalculation::Sum,
            _ => MultipleScalersCalculation::Max,
        }
    }
    pub fn pending_pod_conditions(&self) -> &[String] {
        self.scaling_strategy
            .as_ref()
            .map(|s| s.pending_pod_conditions.as_slice())
            .unwrap_or_default()
    }
}

impl ScaledJob {
    /// The name each trigger is known by: its `name`, else `s{index}-{type}`.
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
    /// `autoscaling.keda.sh/paused: "true"` stops creating Jobs.
    pub fn paused(&self) -> bool {
        self.metadata
            .annotations
            .get(super::ANNOTATION_PAUSED)
            .and_then(|v| super::parse_go_bool(v))
            .unwrap_or(false)
    }
}

fn one_of(path: &str, v: Option<&str>, allowed: &[&str], e: &mut Vec<FieldError>) {
    if let Some(v) = v
        && !allowed.contains(&v)
    {
        e.push(FieldError::new(
            path,
            format!("unsupported value {v:?}: supported values are {allowed:?}"),
        ));
    }
}

impl Manifest for ScaledJob {
    const KIND: &'static str = "ScaledJob";
    const API_VERSIONS: &'static [&'static str] = &[API_VERSION];
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        self.metadata.validate(&mut e);
        let s = &self.spec;
        match &s.job_target_ref {
            serde_json::Value::Object(m) => match m.get("template") {
                Some(serde_json::Value::Object(t)) => {
                    let containers = t
                        .get("spec")
                        .and_then(|sp| sp.get("containers"))
                        .and_then(|c| c.as_array());
                    if containers.is_none_or(|c| c.is_empty()) {
                        e.push(FieldError::new(
                            "spec.jobTargetRef.template.spec.containers",
                            "is required: the Job's pod needs at least one container",
                        ));
                    }
                }
                _ => e.push(FieldError::new(
                    "spec.jobTargetRef.template",
                    "is required: a Job spec needs a pod template",
                )),
            },
            _ => e.push(FieldError::new(
                "spec.jobTargetRef",
                "expected a batch/v1 JobSpec (a mapping with template)",
            )),
        }
        if let Some(p) = s.polling_interval
            && p < 1
        {
            e.push(FieldError::new(
                "spec.pollingInterval",
                format!("must be at least 1 second, got {p}"),
            ));
        }
        for (f, v) in [
            (
                "spec.successfulJobsHistoryLimit",
                s.successful_jobs_history_limit,
            ),
            ("spec.failedJobsHistoryLimit", s.failed_jobs_history_limit),
            ("spec.minReplicaCount", s.min_replica_count),
        ] {
            if let Some(v) = v
                && v < 0
            {
                e.push(FieldError::new(f, format!("must be 0 or more, got {v}")));
            }
        }
        if let Some(m) = s.max_replica_count
            && m < 1
        {
            e.push(FieldError::new(
                "spec.maxReplicaCount",
                format!("must be 1 or more, got {m}"),
            ));
        }
        one_of(
            "spec.rolloutStrategy",
            s.rollout_strategy.as_deref(),
            &["default", "gradual", "immediate"],
            &mut e,
        );
        if let Some(r) = &s.rollout {
            one_of(
                "spec.rollout.strategy",
                r.strategy.as_deref(),
                &["default", "gradual", "immediate"],
                &mut e,
            );
            one_of(
                "spec.rollout.propagationPolicy",
                r.propagation_policy.as_deref(),
                &["foreground", "background"],
                &mut e,
            );
        }
        if let Some(st) = &s.scaling_strategy {
            one_of(
                "spec.scalingStrategy.strategy",
                st.strategy.as_deref(),
                &["default", "custom", "accurate", "eager"],
                &mut e,
            );
            one_of(
                "spec.scalingStrategy.multipleScalersCalculation",
                st.multiple_scalers_calculation.as_deref(),
                &["min", "avg", "sum", "max"],
                &mut e,
            );
            if let Some(d) = st.custom_scaling_queue_length_deduction
                && d < 0
            {
                e.push(FieldError::new(
                    "spec.scalingStrategy.customScalingQueueLengthDeduction",
                    format!("must be 0 or more, got {d}"),
                ));
            }
        }
        if s.triggers.is_empty() {
            e.push(FieldError::new(
                "spec.triggers",
                "no triggers defined: add at least one trigger",
            ));
        }
        let mut names = HashSet::new();
        for (i, t) in s.triggers.iter().enumerate() {
            let base = format!("spec.triggers[{i}]");
            if let Some(n) = &t.name
                && !names.insert(n.as_str())
            {
                e.push(FieldError::new(
                    format!("{base}.name"),
                    format!("triggerName {n:?} is defined multiple times in the ScaledJob, but it must be unique"),
                ));
            }
            if ["cpu", "memory"].contains(&t.trigger_type.as_str()) {
                e.push(FieldError::new(
                    format!("{base}.type"),
                    "cpu and memory triggers are not supported for ScaledJob (a Job's own usage does not measure queued work)",
                ));
                continue;
            }
            if t.use_cached_metrics && t.trigger_type == "cron" {
                e.push(FieldError::new(
                    format!("{base}.useCachedMetrics"),
                    "property useCachedMetrics cannot be enabled for trigger type cron",
                ));
            }
            if let Err(errs) = triggers::TriggerConfig::parse(t) {
                for err in errs {
                    e.push(FieldError::new(format!("{base}.{}", err.path), err.message));
                }
            }
        }
        if let Some(v) = self.metadata.annotations.get(super::ANNOTATION_PAUSED)
            && super::parse_go_bool(v).is_none()
        {
            e.push(FieldError::new(
                format!("metadata.annotations.{}", super::ANNOTATION_PAUSED),
                format!("expected \"true\" or \"false\", got {v:?}"),
            ));
        }
        e
    }
}
