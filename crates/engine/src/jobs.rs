//! One ScaledJob's poll loop: KEDA's ScaledJob executor on the engine's clock.
//!
//! The decision of a poll — which Jobs to create and delete — is
//! [`autoscale::scaledjob::step::step`] (KEDA's strategies, history limits, rollout); this
//! loop owns its cadence (the next poll at `pollingInterval`) and turns the plan into an
//! [`Effect::Jobs`](crate::Effect::Jobs) and events with KEDA's reasons, so the simulator and
//! the twin drive ScaledJobs exactly as they drive ScaledObjects: through [`crate::Engine`].

use autoscale::scaledjob::step::{self, Config, DeleteReason, JobsPlan, ObservedJob};
use clock::Timestamp;

use crate::event::{ObjectRef, Recorder, Topic};
use crate::scale::WorkloadKey;

/// What a substrate observed for one due ScaledJob: one sample per trigger (in
/// `spec.triggers` order) and its Jobs.
#[derive(Debug, Clone, Copy)]
pub struct JobInput<'a> {
    pub samples: &'a [Result<(f64, bool), String>],
    pub jobs: &'a [ObservedJob],
}

/// A ScaledJob being polled.
#[derive(Debug, Clone)]
pub struct JobLoop {
    pub key: WorkloadKey,
    config: Config,
    next_poll: Timestamp,
}

impl JobLoop {
    /// The first poll is at `now`.
    pub fn new(key: WorkloadKey, config: Config, now: Timestamp) -> JobLoop {
        JobLoop {
            key,
            config,
            next_poll: now,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// When the next poll is due.
    pub fn due(&self) -> Timestamp {
        self.next_poll
    }

    /// One poll at `now`: KEDA's plan, with its events recorded (`KEDAJobsCreated`, a
    /// `KEDAScalerFailed` warning per failed trigger).
    pub fn step(&mut self, now: Timestamp, input: &JobInput<'_>, rec: &mut Recorder) -> JobsPlan {
        let plan = step::step(&self.config, now, input.samples, input.jobs);
        self.next_poll = plan.next_poll;
        let object = ObjectRef::namespaced("ScaledJob", &self.key.namespace, &self.key.name);
        for t in &plan.triggers {
            if let Some(e) = &t.error {
                rec.warn(
                    now,
                    Topic::Scale,
                    object.clone(),
                    "KEDAScalerFailed",
                    format!("{}: {e}", t.name),
                );
            }
        }
        if plan.create > 0 {
            rec.record(
                now,
                Topic::Scale,
                object.clone(),
                "KEDAJobsCreated",
                format!("Created {} jobs ({})", plan.create, plan.reason),
            );
        }
        let rollout = plan
            .delete
            .iter()
            .filter(|d| d.reason == DeleteReason::Rollout)
            .count();
        if rollout > 0 {
            rec.record(
                now,
                Topic::Scale,
                object,
                "KEDAJobsDeleted",
                format!("Deleted {rollout} jobs of an older version of the ScaledJob (rollout)"),
            );
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autoscale::scaledjob::step::{Finished, ObservedPod};
    use std::time::Duration;

    fn config() -> Config {
        let sj: model::keda::ScaledJob = serde_yaml_ng::from_str(
            r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata: {name: worker, namespace: jobs}
spec:
  pollingInterval: 10
  successfulJobsHistoryLimit: 1
  maxReplicaCount: 5
  jobTargetRef:
    template:
      spec:
        containers: [{name: w, image: busybox}]
  triggers:
    - type: aws-sqs-queue
      metadata: {queueURL: "http://127.0.0.1:4566/000000000000/q", queueLength: "1", awsRegion: us-east-1}
"#,
        )
        .expect("yaml");
        Config::from_scaled_job(&sj, 1).expect("valid")
    }

    fn job(name: &str, at: u64, finished: Finished, running: bool) -> ObservedJob {
        ObservedJob {
            name: name.into(),
            created: Timestamp::from_secs(at),
            finished,
            generation: Some(1),
            deleting: false,
            pods: vec![ObservedPod {
                phase: if running { "Running" } else { "Pending" }.into(),
                true_conditions: vec![],
            }],
        }
    }

    #[test]
    fn polls_at_the_interval_creates_what_keda_would_and_trims_history() {
        let t0 = Timestamp::from_secs(1000);
        let key = WorkloadKey::new("jobs", "worker");
        let mut l = JobLoop::new(key, config(), t0);
        let mut rec = Recorder::default();
        assert_eq!(l.due(), t0);
        // 7 messages, 2 Jobs running: default strategy → min(7, 5 - 2) = 3.
        let jobs = [
            job("a", 900, Finished::No, true),
            job("b", 910, Finished::No, false),
            job("c", 800, Finished::Succeeded, false),
            job("d", 850, Finished::Succeeded, false),
        ];
        let samples = [Ok((7.0, true))];
        let plan = l.step(
            t0,
            &JobInput {
                samples: &samples,
                jobs: &jobs,
            },
            &mut rec,
        );
        assert_eq!(plan.create, 3);
        assert_eq!((plan.running, plan.pending), (2, 1));
        // History limit 1: the older of the two finished goes.
        assert_eq!(
            plan.delete
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>(),
            ["c"]
        );
        assert_eq!(l.due(), t0.add(Duration::from_secs(10)));
        let events = rec.take();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].reason, "KEDAJobsCreated");
        assert!(events[0].line().contains("ScaledJob jobs/worker"));

        // A failed trigger: nothing created, a warning.
        let failed = [Err("down".to_string())];
        let plan = l.step(
            l.due(),
            &JobInput {
                samples: &failed,
                jobs: &[],
            },
            &mut rec,
        );
        assert_eq!(plan.create, 0);
        let events = rec.take();
        assert_eq!(events.len(), 1);
        assert!(events[0].warning);
        assert_eq!(events[0].reason, "KEDAScalerFailed");
    }
}
