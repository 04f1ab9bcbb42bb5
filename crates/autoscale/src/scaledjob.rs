//! ScaledJob replica maths: how many Jobs to create this poll, as KEDA's job executor decides
//! (`pkg/scaling/scaledjob/metrics.go` and `pkg/scaling/executor/scale_jobs.go`), as pure
//! functions of the triggers' metrics and the running and pending Job counts.
//!
//! Per trigger: `queueLength` is the metric, `maxValue = min(queueLength / target,
//! maxReplicaCount)`. The triggers combine by `multipleScalersCalculation` (only active ones
//! count; `max` picks the trigger with the longest queue) into `scaleTo = ⌈queueLength⌉` and
//! `maxScale = ⌈maxValue⌉`. Below `minReplicaCount` running Jobs the executor tops up to the
//! minimum; otherwise the `scalingStrategy` gives the effective maximum, and
//! `min(scaleTo, effectiveMaxScale)` Jobs are created when a trigger is active.
//!
//! [`step`] is one whole poll (rollout, counts, creation, history limits) over the Jobs a
//! substrate observed.

pub mod step;

use model::keda::scaledjob::{MultipleScalersCalculation, Strategy};

/// One trigger's contribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScalerMetrics {
    pub queue_length: f64,
    pub max_value: f64,
    pub active: bool,
}

impl ScalerMetrics {
    /// KEDA's CalculateQueueLengthAndMaxValue for one trigger.
    pub fn new(metric: f64, target: f64, active: bool, max_replicas: i64) -> ScalerMetrics {
        let max_value = if target != 0.0 {
            (metric / target).min(max_replicas as f64)
        } else {
            0.0
        };
        ScalerMetrics {
            queue_length: metric,
            max_value,
            active,
        }
    }
}

/// The combined demand: is the ScaledJob active, `scaleTo` and `maxScale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Demand {
    pub active: bool,
    pub scale_to: i64,
    pub max_scale: i64,
}

/// KEDA's IsScaledJobActive.
pub fn combine(
    metrics: &[ScalerMetrics],
    calc: MultipleScalersCalculation,
    min_replicas: i64,
    max_replicas: i64,
) -> Demand {
    let (mut queue, mut max_value, mut active) = (0.0f64, 0.0f64, false);
    let actives = metrics.iter().filter(|m| m.active);
    match calc {
        MultipleScalersCalculation::Min => {
            for m in actives {
                if queue == 0.0 || m.queue_length < queue {
                    queue = m.queue_length;
                    max_value = m.max_value;
                    active = true;
                }
            }
        }
        MultipleScalersCalculation::Avg => {
            let v: Vec<&ScalerMetrics> = actives.collect();
            if !v.is_empty() {
                queue = v.iter().map(|m| m.queue_length).sum::<f64>() / v.len() as f64;
                max_value = v.iter().map(|m| m.max_value).sum::<f64>() / v.len() as f64;
                active = true;
            }
        }
        MultipleScalersCalculation::Sum => {
            for m in actives {
                queue += m.queue_length;
                max_value += m.max_value;
                active = true;
            }
        }
        MultipleScalersCalculation::Max => {
            for m in actives {
                if m.queue_length > queue {
                    queue = m.queue_length;
                    max_value = m.max_value;
                    active = true;
                }
            }
        }
    }
    if min_replicas > 0 {
        active = true;
    }
    let max_value = max_value.min(max_replicas as f64);
    Demand {
        active,
        scale_to: queue.ceil() as i64,
        max_scale: max_value.ceil() as i64,
    }
}

/// KEDA's GetEffectiveMaxScale per strategy: `(effectiveMaxScale, scaleTo)`.
pub fn effective_max_scale(
    strategy: Strategy,
    max_scale: i64,
    running: i64,
    pending: i64,
    max_replicas: i64,
    scale_to: i64,
) -> (i64, i64) {
    match strategy {
        Strategy::Default => (max_scale - running, scale_to),
        Strategy::Custom {
            deduction,
            running_percentage,
        } => {
            let r = max_scale - deduction - (running as f64 * running_percentage) as i64;
            (r.min(max_replicas), scale_to)
        }
        Strategy::Accurate => {
            if max_scale + running - pending > max_replicas {
                (max_replicas - running, scale_to)
            } else {
                (max_scale - pending, scale_to)
            }
        }
        Strategy::Eager => (
            (max_replicas - running - pending).min(max_scale),
            max_replicas,
        ),
    }
}

/// What the executor does this poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDecision {
    /// Jobs to create now.
    pub create: i64,
    pub active: bool,
    /// Why, for logs and events.
    pub reason: String,
}

/// The executor's decision (RequestJobScale): `running` Jobs not finished, `pending` of them
/// with no running or completed pod.
pub fn decide(
    strategy: Strategy,
    demand: Demand,
    running: i64,
    pending: i64,
    min_replicas: i64,
    max_replicas: i64,
) -> JobDecision {
    let (effective, scale_to) = if running < min_replicas {
        let top_up = min_replicas - running;
        (top_up, top_up)
    } else {
        effective_max_scale(
            strategy,
            demand.max_scale,
            running - min_replicas,
            pending,
            max_replicas,
            demand.scale_to,
        )
    };
    let effective = effective.max(0);
    if !demand.active {
        return JobDecision {
            create: 0,
            active: false,
            reason: "no trigger is active".into(),
        };
    }
    let create = if effective <= 0 {
        0
    } else {
        scale_to.min(effective)
    };
    JobDecision {
        create,
        active: true,
        reason: format!(
            "{strategy:?} strategy: queue {} ({} at most), {running} running, {pending} pending → effective max {effective}, creating {create}",
            demand.scale_to, demand.max_scale
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(metric: f64, target: f64, max: i64) -> Demand {
        combine(
            &[ScalerMetrics::new(metric, target, metric > 0.0, max)],
            MultipleScalersCalculation::Max,
            0,
            max,
        )
    }

    /// KEDA's docs (scaledjob-spec, "eager"): maxReplicaCount 10, a rabbitmq trigger with
    /// value 1; 3 messages, a poll, 3 more, a poll. The running jobs hold the first 3 (6 in the
    /// queue), so the scaler (AMQP, ready messages) reports 3 both times: default ends with 3
    /// jobs, eager with 6.
    #[test]
    fn eager_uses_free_slots_default_does_not() {
        for (strategy, want) in [(Strategy::Default, 3), (Strategy::Eager, 6)] {
            let mut running = 0;
            for queue in [3.0, 3.0] {
                let d = decide(strategy, one(queue, 1.0, 10), running, 0, 0, 10);
                running += d.create;
            }
            assert_eq!(running, want, "{strategy:?}");
        }
    }

    /// The docs' formulas: default `maxScale - running`; custom
    /// `min(maxScale - deduction - running × percentage, maxReplicaCount)`; accurate.
    #[test]
    fn strategy_formulas() {
        assert_eq!(
            effective_max_scale(Strategy::Default, 10, 4, 0, 100, 10),
            (6, 10)
        );
        let custom = Strategy::Custom {
            deduction: 1,
            running_percentage: 0.5,
        };
        assert_eq!(effective_max_scale(custom, 10, 4, 0, 100, 10), (7, 10));
        assert_eq!(effective_max_scale(custom, 10, 4, 0, 5, 10), (5, 10));
        // accurate: 10 + 4 - 2 > 10 → 10 - 4; else maxScale - pending.
        assert_eq!(
            effective_max_scale(Strategy::Accurate, 10, 4, 2, 10, 10),
            (6, 10)
        );
        assert_eq!(
            effective_max_scale(Strategy::Accurate, 5, 4, 2, 10, 5),
            (3, 5)
        );
        assert_eq!(
            effective_max_scale(Strategy::Eager, 2, 3, 1, 10, 2),
            (2, 10)
        );
    }

    #[test]
    fn queue_per_target_and_max_replicas() {
        // 25 messages, 10 per job: 3 jobs; capped by maxReplicaCount.
        assert_eq!(
            one(25.0, 10.0, 100),
            Demand {
                active: true,
                scale_to: 25,
                max_scale: 3
            }
        );
        assert_eq!(one(25.0, 1.0, 4).max_scale, 4);
        let d = decide(Strategy::Default, one(25.0, 10.0, 100), 1, 0, 0, 100);
        assert_eq!(d.create, 2);
        // Inactive: nothing, even with room.
        let idle = decide(Strategy::Default, one(0.0, 10.0, 100), 0, 0, 0, 100);
        assert_eq!((idle.create, idle.active), (0, false));
    }

    #[test]
    fn min_replicas_are_topped_up_and_keep_it_active() {
        let quiet = combine(
            &[ScalerMetrics::new(0.0, 1.0, false, 10)],
            MultipleScalersCalculation::Max,
            2,
            10,
        );
        assert!(quiet.active);
        assert_eq!(decide(Strategy::Default, quiet, 0, 0, 2, 10).create, 2);
        assert_eq!(decide(Strategy::Default, quiet, 2, 0, 2, 10).create, 0);
    }

    #[test]
    fn multiple_scalers_calculation() {
        let m = [
            ScalerMetrics::new(4.0, 1.0, true, 100),
            ScalerMetrics::new(10.0, 2.0, true, 100),
            ScalerMetrics::new(50.0, 1.0, false, 100),
        ];
        let c = |calc| combine(&m, calc, 0, 100);
        assert_eq!(c(MultipleScalersCalculation::Max).scale_to, 10);
        assert_eq!(c(MultipleScalersCalculation::Max).max_scale, 5);
        assert_eq!(c(MultipleScalersCalculation::Min).scale_to, 4);
        assert_eq!(c(MultipleScalersCalculation::Sum).scale_to, 14);
        assert_eq!(c(MultipleScalersCalculation::Sum).max_scale, 9);
        assert_eq!(c(MultipleScalersCalculation::Avg).scale_to, 7);
        assert_eq!(c(MultipleScalersCalculation::Avg).max_scale, 5); // ⌈4.5⌉
    }
}
