//! One poll of a ScaledJob, as KEDA's scale loop does it for ScaledJobs
//! (`pkg/scaling/scale_handler.go` → `pkg/scaling/executor/scale_jobs.go`, KEDA 2.x): from the
//! triggers' metrics and the Jobs that exist, which Jobs to create and which to delete, and the
//! status to write. Pure and clock-injected; the substrate (the operator) lists the Jobs and
//! their pods, polls the scalers, calls [`step`] and carries out the [`JobsPlan`].
//!
//! What KEDA does each `pollingInterval`, in order:
//! 1. **Rollout** — with `rollout.strategy` other than `gradual`, Jobs made from an older
//!    version of the ScaledJob are deleted (with `rollout.propagationPolicy`): those whose
//!    `scaledjob.keda.sh/generation` annotation is not the ScaledJob's generation (KEDA's
//!    reconcile since kedacore/keda#5876, so an operator restart deletes nothing). KEDA checks
//!    in its reconcile after a change; here every poll checks, which finds the same Jobs.
//! 2. **Counts** — `running`: Jobs without a `Complete` or `Failed` condition; `pending`: those
//!    of them whose pods are not started — no pod `Running` or `Succeeded`, or, with
//!    `scalingStrategy.pendingPodConditions`, no pod with all those conditions `True`.
//! 3. **Create** — when a trigger is active (or `minReplicaCount > 0`):
//!    `min(scaleTo, effectiveMaxScale)` Jobs, the strategy's maths in [`super::decide`].
//! 4. **History** — the oldest finished Jobs beyond `successfulJobsHistoryLimit` /
//!    `failedJobsHistoryLimit` are deleted (background propagation).
//!
//! A trigger whose scaler failed counts as inactive with no queue (KEDA logs it and goes on with
//! the others) and makes `Ready` `Unknown`. A paused ScaledJob (`autoscaling.keda.sh/paused`)
//! does nothing at all, as KEDA stops its loop.
//!
//! Jobs that are being deleted (a deletion timestamp) are left out of every count: with
//! foreground propagation they linger until their pods are gone, and counting them would hold
//! back the Jobs of the new version.

use std::time::Duration;

use clock::Timestamp;
use model::keda::scaledjob::{ScaledJob, Strategy};
use model::keda::triggers::TriggerConfig;
use model::manifest::Manifest;

use super::{ScalerMetrics, combine, decide};

/// The label KEDA puts on every Job (and its pods) of a ScaledJob.
pub const LABEL_NAME: &str = "scaledjob.keda.sh/name";
/// The annotation recording the ScaledJob generation a Job was made from.
pub const ANNOTATION_GENERATION: &str = "scaledjob.keda.sh/generation";

/// A ScaledJob compiled for polling: validated, each trigger's target known.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub namespace: String,
    pub name: String,
    pub generation: i64,
    pub polling_interval: Duration,
    pub min_replicas: i64,
    pub max_replicas: i64,
    pub strategy: Strategy,
    pub calculation: model::keda::scaledjob::MultipleScalersCalculation,
    pub pending_pod_conditions: Vec<String>,
    pub successful_history: usize,
    pub failed_history: usize,
    /// `rollout.strategy: gradual` (or the deprecated `rolloutStrategy: gradual`).
    pub gradual_rollout: bool,
    /// `rollout.propagationPolicy: foreground`.
    pub foreground: bool,
    pub paused: bool,
    /// Per trigger, in `spec.triggers` order: its name and target value (the metric per Job).
    pub triggers: Vec<(String, f64)>,
}

impl Config {
    /// Validate (every error names its field) and compile. `generation` is the object's
    /// `metadata.generation`.
    pub fn from_scaled_job(sj: &ScaledJob, generation: i64) -> Result<Config, String> {
        let errors = sj.validate();
        if !errors.is_empty() {
            return Err(errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "));
        }
        let s = &sj.spec;
        let mut triggers = Vec::with_capacity(s.triggers.len());
        for (t, name) in s.triggers.iter().zip(sj.trigger_names()) {
            let parsed = TriggerConfig::parse(t).map_err(|e| {
                e.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            })?;
            triggers.push((name, parsed.target()));
        }
        let limit = |v: i32| v.max(0) as usize;
        Ok(Config {
            namespace: sj
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            name: sj.metadata.name.clone(),
            generation,
            polling_interval: Duration::from_secs(s.polling_interval_secs().max(1) as u64),
            min_replicas: s.min_replicas().max(0),
            max_replicas: s.max_replicas().max(0),
            strategy: s.strategy(),
            calculation: s.multiple_scalers_calculation(),
            pending_pod_conditions: s.pending_pod_conditions().to_vec(),
            successful_history: limit(s.successful_jobs_history_limit()),
            failed_history: limit(s.failed_jobs_history_limit()),
            gradual_rollout: s.gradual_rollout(),
            foreground: s.foreground_propagation(),
            paused: sj.paused(),
            triggers,
        })
    }
}

/// A pod of a Job, as far as "pending" needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedPod {
    /// `status.phase`.
    pub phase: String,
    /// The types of its conditions whose status is `True`.
    pub true_conditions: Vec<String>,
}

/// How a Job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// No `Complete` or `Failed` condition yet.
    No,
    /// `Complete=True`.
    Succeeded,
    /// `Failed=True`.
    Failed,
}

/// One Job with the ScaledJob's label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedJob {
    pub name: String,
    pub created: Timestamp,
    pub finished: Finished,
    /// Its `scaledjob.keda.sh/generation` annotation (`None`: absent or not a number).
    pub generation: Option<i64>,
    /// It has a deletion timestamp.
    pub deleting: bool,
    /// Its pods (label `job-name`).
    pub pods: Vec<ObservedPod>,
}

/// Why a Job is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    /// Made from an older version of the ScaledJob (default rollout).
    Rollout,
    /// Beyond `successfulJobsHistoryLimit`.
    SuccessfulHistory,
    /// Beyond `failedJobsHistoryLimit`.
    FailedHistory,
}

/// One Job to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    pub name: String,
    pub reason: DeleteReason,
    /// Foreground propagation (wait for the pods); background otherwise.
    pub foreground: bool,
}

/// A trigger's result this poll.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerResult {
    pub name: String,
    pub value: Option<f64>,
    pub active: bool,
    pub error: Option<String>,
}

/// What to do after one poll.
#[derive(Debug, Clone, PartialEq)]
pub struct JobsPlan {
    /// Jobs to create now.
    pub create: u32,
    pub delete: Vec<Deletion>,
    /// Some trigger (or `minReplicaCount`) is active; `None` when paused.
    pub active: Option<bool>,
    /// Running (unfinished) Jobs of the current version before this poll's creations.
    pub running: i64,
    pub pending: i64,
    pub triggers: Vec<TriggerResult>,
    /// For logs, events and status.
    pub reason: String,
    /// When to poll again.
    pub next_poll: Timestamp,
}

impl JobsPlan {
    /// Some trigger failed this poll.
    pub fn trigger_error(&self) -> Option<String> {
        let errs: Vec<String> = self
            .triggers
            .iter()
            .filter_map(|t| t.error.as_ref().map(|e| format!("{}: {e}", t.name)))
            .collect();
        (!errs.is_empty()).then(|| errs.join("; "))
    }
}

/// Is this unfinished Job still waiting for a pod to start?
fn pending(job: &ObservedJob, conditions: &[String]) -> bool {
    if conditions.is_empty() {
        !job.pods
            .iter()
            .any(|p| p.phase == "Running" || p.phase == "Succeeded")
    } else {
        !job.pods.iter().any(|p| {
            conditions
                .iter()
                .all(|c| p.true_conditions.iter().any(|t| t == c))
        })
    }
}

/// One poll at `now`. `samples` holds one result per trigger in `cfg.triggers` order (the
/// scaler's `(value, active)` or its error).
pub fn step(
    cfg: &Config,
    now: Timestamp,
    samples: &[Result<(f64, bool), String>],
    jobs: &[ObservedJob],
) -> JobsPlan {
    let next_poll = now.add(cfg.polling_interval);
    let triggers: Vec<TriggerResult> = cfg
        .triggers
        .iter()
        .enumerate()
        .map(|(i, (name, _))| match samples.get(i) {
            Some(Ok((v, a))) => TriggerResult {
                name: name.clone(),
                value: Some(*v),
                active: *a,
                error: None,
            },
            Some(Err(e)) => TriggerResult {
                name: name.clone(),
                value: None,
                active: false,
                error: Some(e.clone()),
            },
            None => TriggerResult {
                name: name.clone(),
                value: None,
                active: false,
                error: Some("not polled".into()),
            },
        })
        .collect();
    if cfg.paused {
        return JobsPlan {
            create: 0,
            delete: Vec::new(),
            active: None,
            running: 0,
            pending: 0,
            triggers,
            reason: "paused (autoscaling.keda.sh/paused)".into(),
            next_poll,
        };
    }

    // 1. Rollout.
    let mut delete = Vec::new();
    let live: Vec<&ObservedJob> = jobs.iter().filter(|j| !j.deleting).collect();
    let (old, current): (Vec<&ObservedJob>, Vec<&ObservedJob>) = live
        .into_iter()
        .partition(|j| !cfg.gradual_rollout && j.generation != Some(cfg.generation));
    for j in &old {
        delete.push(Deletion {
            name: j.name.clone(),
            reason: DeleteReason::Rollout,
            foreground: cfg.foreground,
        });
    }

    // 2. Counts.
    let unfinished: Vec<&&ObservedJob> = current
        .iter()
        .filter(|j| j.finished == Finished::No)
        .collect();
    let running = unfinished.len() as i64;
    let pending_count = unfinished
        .iter()
        .filter(|j| pending(j, &cfg.pending_pod_conditions))
        .count() as i64;

    // 3. Create.
    let metrics: Vec<ScalerMetrics> = cfg
        .triggers
        .iter()
        .zip(&triggers)
        .map(|((_, target), r)| {
            ScalerMetrics::new(r.value.unwrap_or(0.0), *target, r.active, cfg.max_replicas)
        })
        .collect();
    let demand = combine(
        &metrics,
        cfg.calculation,
        cfg.min_replicas,
        cfg.max_replicas,
    );
    let decision = decide(
        cfg.strategy,
        demand,
        running,
        pending_count,
        cfg.min_replicas,
        cfg.max_replicas,
    );

    // 4. History: oldest first, beyond the limits.
    let mut history = |kind: Finished, limit: usize, reason: DeleteReason| {
        let mut done: Vec<&&ObservedJob> = current.iter().filter(|j| j.finished == kind).collect();
        done.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
        let excess = done.len().saturating_sub(limit);
        for j in done.into_iter().take(excess) {
            delete.push(Deletion {
                name: j.name.clone(),
                reason,
                foreground: false,
            });
        }
    };
    history(
        Finished::Succeeded,
        cfg.successful_history,
        DeleteReason::SuccessfulHistory,
    );
    history(
        Finished::Failed,
        cfg.failed_history,
        DeleteReason::FailedHistory,
    );

    let mut reason = decision.reason;
    if !old.is_empty() {
        reason.push_str(&format!(
            "; {} Job(s) of an older version deleted (rollout)",
            old.len()
        ));
    }
    JobsPlan {
        create: decision.create.clamp(0, i64::from(u32::MAX)) as u32,
        delete,
        active: Some(decision.active),
        running,
        pending: pending_count,
        triggers,
        reason,
        next_poll,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml_spec: &str) -> Config {
        let sj: ScaledJob = serde_yaml_ng::from_str(&format!(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledJob\nmetadata: {{name: worker, namespace: jobs}}\nspec:\n{yaml_spec}"
        ))
        .unwrap();
        Config::from_scaled_job(&sj, 3).unwrap()
    }

    const BASE: &str = "  jobTargetRef: {template: {spec: {containers: [{name: c, image: busybox}]}}}
  pollingInterval: 10
  maxReplicaCount: 10
  successfulJobsHistoryLimit: 2
  failedJobsHistoryLimit: 1
  triggers:
    - type: aws-sqs-queue
      metadata: {queueURL: 'https://sqs.us-east-1.amazonaws.com/1/q', queueLength: '1', awsRegion: us-east-1}
";

    fn job(name: &str, created: u64, finished: Finished, generation: i64) -> ObservedJob {
        ObservedJob {
            name: name.into(),
            created: Timestamp::from_secs(created),
            finished,
            generation: Some(generation),
            deleting: false,
            pods: vec![ObservedPod {
                phase: "Pending".into(),
                true_conditions: vec![],
            }],
        }
    }

    #[test]
    fn a_backlog_creates_one_job_per_message_minus_the_running_ones() {
        let cfg = config(BASE);
        assert_eq!(cfg.polling_interval, Duration::from_secs(10));
        let now = Timestamp::from_secs(100);
        let plan = step(&cfg, now, &[Ok((5.0, true))], &[]);
        assert_eq!((plan.create, plan.active), (5, Some(true)));
        assert_eq!(plan.next_poll, Timestamp::from_secs(110));
        // Next poll: the five run (pending: their pods wait for a node), the queue still
        // shows 5: default strategy creates none.
        let jobs: Vec<ObservedJob> = (0..5)
            .map(|i| job(&format!("w-{i}"), 100, Finished::No, 3))
            .collect();
        let plan = step(&cfg, now, &[Ok((5.0, true))], &jobs);
        assert_eq!((plan.create, plan.running, plan.pending), (0, 5, 5));
        // maxReplicaCount caps a longer queue.
        let plan = step(&cfg, now, &[Ok((50.0, true))], &jobs);
        assert_eq!(plan.create, 5);
        // Nothing in the queue: nothing, and inactive.
        let plan = step(&cfg, now, &[Ok((0.0, false))], &[]);
        assert_eq!((plan.create, plan.active), (0, Some(false)));
    }

    #[test]
    fn finished_jobs_beyond_the_history_limits_go_oldest_first() {
        let cfg = config(BASE);
        let jobs = vec![
            job("s-new", 30, Finished::Succeeded, 3),
            job("s-old", 10, Finished::Succeeded, 3),
            job("s-mid", 20, Finished::Succeeded, 3),
            job("f-1", 5, Finished::Failed, 3),
            job("f-2", 6, Finished::Failed, 3),
            job("run", 1, Finished::No, 3),
        ];
        let plan = step(&cfg, Timestamp::from_secs(40), &[Ok((0.0, false))], &jobs);
        let deleted: Vec<(&str, DeleteReason)> = plan
            .delete
            .iter()
            .map(|d| (d.name.as_str(), d.reason))
            .collect();
        assert_eq!(
            deleted,
            [
                ("s-old", DeleteReason::SuccessfulHistory),
                ("f-1", DeleteReason::FailedHistory)
            ]
        );
        assert!(plan.delete.iter().all(|d| !d.foreground));
        assert_eq!(plan.running, 1);
    }

    #[test]
    fn a_new_version_deletes_the_old_jobs_unless_gradual() {
        let jobs = vec![
            job("old-running", 1, Finished::No, 2),
            job("old-done", 2, Finished::Succeeded, 2),
            job("new", 3, Finished::No, 3),
        ];
        let cfg = config(&format!(
            "{BASE}  rollout: {{propagationPolicy: foreground}}\n"
        ));
        let plan = step(&cfg, Timestamp::from_secs(9), &[Ok((3.0, true))], &jobs);
        let deleted: Vec<(&str, bool)> = plan
            .delete
            .iter()
            .map(|d| (d.name.as_str(), d.foreground))
            .collect();
        assert_eq!(deleted, [("old-running", true), ("old-done", true)]);
        // Only the current version's Job counts: 3 in the queue, 1 running → 2 more.
        assert_eq!((plan.running, plan.create), (1, 2));

        let gradual = config(&format!("{BASE}  rollout: {{strategy: gradual}}\n"));
        let plan = step(&gradual, Timestamp::from_secs(9), &[Ok((3.0, true))], &jobs);
        assert!(plan.delete.is_empty());
        assert_eq!((plan.running, plan.create), (2, 1));
    }

    #[test]
    fn pending_follows_pod_phases_or_the_named_conditions() {
        let mut started = job("a", 1, Finished::No, 3);
        started.pods[0].phase = "Running".into();
        let mut ready = job("b", 1, Finished::No, 3);
        ready.pods[0].phase = "Running".into();
        ready.pods[0].true_conditions = vec!["Ready".into(), "PodScheduled".into()];
        let mut no_pod = job("c", 1, Finished::No, 3);
        no_pod.pods.clear();
        let jobs = [started, ready, no_pod, job("d", 1, Finished::No, 3)];
        let cfg = config(BASE);
        assert_eq!(
            step(&cfg, Timestamp::ZERO, &[Ok((0.0, false))], &jobs).pending,
            2
        );
        let cfg = config(&format!(
            "{BASE}  scalingStrategy: {{strategy: accurate, pendingPodConditions: [Ready]}}\n"
        ));
        let plan = step(&cfg, Timestamp::ZERO, &[Ok((4.0, true))], &jobs);
        assert_eq!((plan.running, plan.pending), (4, 3));
        // accurate: 4 + 4 - 3 ≤ 10 → maxScale - pending = 4 - 3 = 1.
        assert_eq!(plan.create, 1);
    }

    #[test]
    fn errors_count_as_inactive_and_paused_does_nothing() {
        let cfg = config(BASE);
        let plan = step(&cfg, Timestamp::ZERO, &[Err("queue gone".into())], &[]);
        assert_eq!((plan.create, plan.active), (0, Some(false)));
        assert_eq!(
            plan.trigger_error().as_deref(),
            Some("s0-aws-sqs-queue: queue gone")
        );

        let mut paused = config(BASE);
        paused.paused = true;
        let jobs = [job("old", 1, Finished::Succeeded, 1)];
        let plan = step(&paused, Timestamp::ZERO, &[Ok((9.0, true))], &jobs);
        assert_eq!((plan.create, plan.delete.len(), plan.active), (0, 0, None));
    }

    #[test]
    fn min_replicas_keep_jobs_running_without_work() {
        let cfg = config(&format!("{BASE}  minReplicaCount: 2\n"));
        let plan = step(&cfg, Timestamp::ZERO, &[Ok((0.0, false))], &[]);
        assert_eq!((plan.create, plan.active), (2, Some(true)));
    }

    #[test]
    fn an_invalid_scaled_job_names_the_field() {
        let sj: ScaledJob = serde_yaml_ng::from_str(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledJob\nmetadata: {name: w}\nspec:\n  jobTargetRef: {}\n  triggers: []\n",
        )
        .unwrap();
        let err = Config::from_scaled_job(&sj, 1).unwrap_err();
        assert!(err.contains("spec.jobTargetRef"), "{err}");
    }
}
