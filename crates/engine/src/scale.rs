//! The scale loop of one ScaledObject: when it polls, what replica count it writes, which
//! consumers go on scale-in, and the replica intent it announces to the provisioner.
//!
//! A substrate asks [`ScaleLoop::due`] when to poll, fetches the triggers' metrics at that time
//! (its I/O), and calls [`ScaleLoop::step`] with them, the target's replica count and — where it
//! can see them — the target's pods with their busy state. The result is data
//! ([`ScaleStep`]): the count to write, the consumers to mark for deletion first, the intent,
//! the event, and the next due time.
//!
//! # Cadence ([`Cadence`])
//! `Upstream` runs two timers like KEDA next to the HPA: KEDA's poll every `pollingInterval`
//! ([`StepMode::Keda`]: 0 ↔ 1 and cooldown) and the HPA's sync every 15 s ([`StepMode::Hpa`]:
//! 1 ↔ N). `Combined` steps both at once every polling interval.
//! Both keep a fixed schedule: a late poll is followed by the one due a polling interval after
//! its due time (ticks missed meanwhile are skipped), so lateness never accumulates or clumps
//! loops together. An early (event-driven) poll starts a new interval from its own time.
//!
//! # Scale-in ([`ScaleIn`])
//! The count written and the consumers that go are decided together:
//! - `ReplicaSet`: the HPA writes the count; the ReplicaSet controller then deletes the pods
//!   [`crate::replicaset::victims`] ranks first. The step reports those pods so substrates
//!   that play the ReplicaSet (simulator, twin) stop the same ones.
//! - `IdleOnly`: the count drops by at most the number of idle consumers (pending pods count
//!   as idle), and exactly those are marked for deletion first (in a cluster: the
//!   `controller.kubernetes.io/pod-deletion-cost` annotation, which the ReplicaSet ranks
//!   before anything else among running pods). The rest follows as consumers go idle; a
//!   scale-in that has waited longer than the deadline takes busy consumers too. Replicas the
//!   substrate counts but has no pod for yet (the ReplicaSet has not created them) count as idle
//!   and go first: lowering the count just means they are never created.
//!
//! When the count goes to zero every pod goes, so no victims are named (a substrate would mark
//! pods for nothing).
//!
//! # Crash loops ([`Policy::hold_scale_out_on_crash_loop`])
//! While at least half of the target's consumers are crash-looping
//! ([`crate::replicaset::crash_looping`]: in the restart back-off after a run shorter than
//! 10 s) and none is at work, a scale-out is held at the current count (`KedgeScaleOutHeld`
//! warning): a consumer that crashes on whatever it receives (a bad release) does not process
//! more with more replicas, and each new replica costs node capacity. While some consumer
//! works (poison messages among good ones), more replicas do get messages through and the
//! poison to the dead-letter queue sooner, so nothing is held. When the crashes stop, the
//! next step scales out as usual.

use std::time::Duration;

use autoscale::{Autoscaler, Decision, MetricSample, Observation, StepMode};
use clock::Timestamp;
use model::kube::Pod;
use provision::plan::ReplicaIntent;

use crate::event::{ObjectRef, Recorder, Topic};
use crate::policy::{Cadence, Policy, ScaleIn};
use crate::replicaset::{self, ConsumerPod};

/// A ScaledObject, by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct WorkloadKey {
    pub namespace: String,
    pub name: String,
}

impl WorkloadKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> WorkloadKey {
        WorkloadKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
    pub fn object(&self) -> ObjectRef {
        ObjectRef::namespaced("ScaledObject", &self.namespace, &self.name)
    }
}

impl std::fmt::Display for WorkloadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What the substrate observed for one poll.
#[derive(Debug, Clone, Default)]
pub struct ScaleInput<'a> {
    /// The target's `spec.replicas`.
    pub replicas: u32,
    /// Ready pods (for `Value` metrics); `None` = same as `replicas`.
    pub ready: Option<u32>,
    /// One result per trigger, in `spec.triggers` order.
    pub triggers: Vec<Result<MetricSample, String>>,
    /// The target's pods, where the substrate can see them (busy-aware scale-in needs them;
    /// without them a scale-in is written as decided).
    pub pods: Option<&'a [ConsumerPod]>,
    /// Perfect knowledge (the oracle): the arrivals the next interval will bring, per second,
    /// the backlog now, and the mean time a consumer works on one message.
    pub foresight: Option<Foresight>,
}

/// What only a simulator knows: the future.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Foresight {
    /// The highest arrival rate (messages/s) until the next poll.
    pub arrival_rate: f64,
    /// Messages waiting or in flight now.
    pub backlog: f64,
    /// Mean work time of one message.
    pub work: Duration,
    /// Messages one consumer works on at once.
    pub concurrency: u32,
}

/// A scale target's pod template, for replica intents. Kept as JSON text: a parsed [`Pod`] is
/// several times larger, an operator keeps one per ScaledObject, and it is read only when a
/// scale-out is announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Box<str>);

impl Template {
    pub fn of(pod: &Pod) -> Template {
        // A `Pod` is plain data: serializing it cannot fail.
        Template(
            serde_json::to_string(pod)
                .unwrap_or_default()
                .into_boxed_str(),
        )
    }

    /// A template from JSON text (a `Pod`: metadata and spec), checked to parse.
    pub fn from_json(text: &str) -> Result<Template, serde_json::Error> {
        serde_json::from_str::<Pod>(text)?;
        Ok(Template(text.into()))
    }

    pub fn pod(&self) -> Option<Pod> {
        serde_json::from_str(&self.0).ok()
    }

    pub fn as_json(&self) -> &str {
        &self.0
    }
}

/// The result of one poll.
#[derive(Debug, Clone)]
pub struct ScaleStep {
    pub decision: Decision,
    /// Write this `spec.replicas` (only when it differs from the observed count).
    pub replicas: Option<u32>,
    /// Pods to delete first, in order (the substrate marks them, then writes the count).
    pub victims: Vec<String>,
    /// Announce to the provisioner (joint decisions).
    pub intent: Option<ReplicaIntent>,
    /// When to poll next.
    pub next: Timestamp,
}

/// One ScaledObject's loop.
#[derive(Debug, Clone)]
pub struct ScaleLoop {
    pub key: WorkloadKey,
    autoscaler: Autoscaler,
    cadence: Cadence,
    scale_in: ScaleIn,
    joint: bool,
    perfect: bool,
    /// The pod template of the target (for intents), when nodes are managed.
    template: Option<Template>,
    keda_due: Timestamp,
    hpa_due: Timestamp,
    /// Since when a scale-in is held back by busy consumers.
    held_since: Option<Timestamp>,
    /// The policy, for the ScaledObject's configuration as it runs it ([`Policy::configure`]).
    policy: Policy,
    /// A scale-out was held for crash-looping consumers and they still crash-loop (the
    /// warning once per episode).
    crash_hold: bool,
    /// The consumers' cost of one message as they last reported it (kept while the target
    /// is at zero: the next burst meets the same consumers).
    per_message: Option<Duration>,
    /// Since when the queue has been drained and most consumers idle
    /// ([`Policy::drained_scale_in`]).
    drained_since: Option<Timestamp>,
}

impl ScaleLoop {
    /// A loop whose first poll is at `now`.
    pub fn new(
        key: WorkloadKey,
        mut autoscaler: Autoscaler,
        policy: &Policy,
        template: Option<Template>,
        now: Timestamp,
    ) -> ScaleLoop {
        let mut cfg = autoscaler.config().clone();
        policy.configure(&mut cfg);
        autoscaler.update_config(cfg);
        ScaleLoop {
            policy: policy.clone(),
            key,
            autoscaler,
            cadence: policy.cadence,
            scale_in: policy.scale_in,
            joint: policy.joint,
            perfect: policy.perfect_knowledge,
            template,
            keda_due: now,
            hpa_due: now,
            held_since: None,
            crash_hold: false,
            per_message: None,
            drained_since: None,
        }
    }

    pub fn autoscaler(&self) -> &Autoscaler {
        &self.autoscaler
    }

    /// The ScaledObject was edited: keep the history, use the new configuration.
    pub fn update(&mut self, mut config: autoscale::Config, template: Option<Template>) {
        self.policy.configure(&mut config);
        self.autoscaler.update_config(config);
        self.template = template;
    }

    /// Decide by another policy from now on (the history stays). A changed cadence starts
    /// with one full step at the next due time.
    /// The policy's scale-up/down defaults apply to the next [`ScaleLoop::update`]: call it
    /// after this one with the ScaledObject's own configuration.
    pub fn set_policy(&mut self, policy: &Policy) {
        self.policy = policy.clone();
        if self.cadence != policy.cadence {
            let due = self.due();
            self.keda_due = due;
            self.hpa_due = due;
        }
        self.cadence = policy.cadence;
        self.scale_in = policy.scale_in;
        self.joint = policy.joint;
        self.perfect = policy.perfect_knowledge;
        self.held_since = None;
        self.drained_since = None;
    }

    /// Whether the step's victims must be marked before the lower count is written (kedge's
    /// choice, which the ReplicaSet would not make). Otherwise they are the ReplicaSet's own
    /// choice, named for substrates that play the ReplicaSet, and a substrate with a real
    /// ReplicaSet needs neither them nor the pods (pass `pods: None`).
    pub fn marks_victims(&self) -> bool {
        matches!(self.scale_in, ScaleIn::IdleOnly { .. })
    }

    /// When the next poll is due.
    pub fn due(&self) -> Timestamp {
        match self.cadence {
            Cadence::Combined => self.keda_due,
            Cadence::Upstream { .. } => self.keda_due.min(self.hpa_due),
        }
    }

    /// Poll at `now` (at or after [`ScaleLoop::due`]; an early call is an event-driven wake and
    /// steps like a full poll).
    pub fn step(
        &mut self,
        now: Timestamp,
        input: &ScaleInput<'_>,
        rec: &mut Recorder,
    ) -> ScaleStep {
        let polling = self
            .autoscaler
            .config()
            .polling_interval
            .max(Duration::from_millis(1));
        let mode = match self.cadence {
            Cadence::Combined => {
                let config = self.autoscaler.config();
                let backlogs =
                    !config.triggers.is_empty() && config.triggers.iter().all(|t| t.backlog);
                let at_most = match self.policy.poll_backlog_at_most {
                    Some(m) if backlogs => Some(m),
                    _ => self.policy.poll_at_most,
                };
                let polling = at_most.map_or(polling, |m| polling.min(m));
                // A poll on time or late keeps the loop's phase: the next one is a polling
                // interval after this one's due time, not after it ran. Were lateness carried
                // into the schedule, loops made late by one busy millisecond would all come
                // due in the same later millisecond, and at 100,000 objects the polls clump
                // into bursts with idle gaps between them (each burst later still). An early
                // (event-driven) poll starts a new interval from now.
                self.keda_due = if now >= self.keda_due {
                    next_tick(self.keda_due, polling, now)
                } else {
                    now.add(polling)
                };
                StepMode::Full
            }
            Cadence::Upstream { hpa_sync } => {
                let keda = now >= self.keda_due;
                let hpa = now >= self.hpa_due;
                if keda {
                    self.keda_due = next_tick(self.keda_due, polling, now);
                }
                if hpa {
                    self.hpa_due = next_tick(self.hpa_due, hpa_sync, now);
                }
                match (keda, hpa) {
                    (true, true) | (false, false) => StepMode::Full,
                    (true, false) => StepMode::Keda,
                    (false, true) => StepMode::Hpa,
                }
            }
        };
        let obs = Observation {
            current_replicas: input.replicas,
            ready_replicas: input.ready,
            triggers: input.triggers.clone(),
        };
        let objective = self.objective(input.pods);
        let mut d = self.autoscaler.step_as(now, &obs, mode);
        if let Some((t, per_message, target)) = objective
            && d.desired_replicas != input.replicas
        {
            d.reason = format!(
                "{}; latency objective {}: {:.2}s per message, so at most {target:.1} messages per replica",
                d.reason,
                fmt_secs(t),
                per_message.as_secs_f64(),
            )
            .into();
        }
        if self.perfect
            && let Some(f) = input.foresight
            && !d.paused
        {
            oracle(&mut d, self.autoscaler.config(), f);
        }
        self.drained(now, input, &mut d);
        let current = input.replicas;
        let mut write = d.desired_replicas;
        let mut victims = Vec::new();
        if d.desired_replicas < current {
            let excess = (current - d.desired_replicas) as usize;
            match (self.scale_in, input.pods) {
                (ScaleIn::IdleOnly { deadline }, Some(pods)) => {
                    let held = *self.held_since.get_or_insert(now);
                    // Under a latency objective the queue is kept deep on purpose, so every
                    // consumer is busy most of the time: waiting for the deadline would only
                    // end in stopping busy ones. Held replicas drain the queue faster, and
                    // consumers go idle as it empties.
                    let force = objective.is_none() && now.since(held) >= deadline;
                    // Replicas without a pod yet go first: they are simply never created.
                    let missing = (current as usize).saturating_sub(pods.len()).min(excess);
                    victims = replicaset::idle_victims(pods, excess - missing, force);
                    write = current - (missing + victims.len()).min(excess) as u32;
                    if write == d.desired_replicas {
                        self.held_since = None;
                    }
                    if write != d.desired_replicas {
                        let later = write - d.desired_replicas;
                        let until = if objective.is_some() {
                            " (under a latency objective, never while busy)".into()
                        } else {
                            format!(" (or after {}s)", deadline.as_secs())
                        };
                        d.reason = format!(
                            "{}; scaling in to {write} for now: the other {later} to stop are busy and go when idle{until}",
                            d.reason,
                        )
                        .into();
                    }
                }
                (ScaleIn::ReplicaSet, Some(pods)) => {
                    victims = replicaset::victims(pods, excess);
                }
                _ => {}
            }
        } else {
            self.held_since = None;
        }
        self.crash_hold(now, input, current, &mut write, &mut d, rec);
        if write == 0 {
            // Every pod goes: none goes first.
            victims.clear();
        }
        let intent = match (&self.template, self.joint) {
            (Some(t), true) if write > current => t.pod().map(|template| ReplicaIntent {
                source: format!("ScaledObject {}", self.key),
                template,
                replicas: write - current,
            }),
            _ => None,
        };
        if write != current {
            let (reason, message) = scale_event(&self.key, current, write, &d.reason);
            rec.record(now, Topic::Scale, self.key.object(), reason, message);
        }
        if d.error {
            let errs: Vec<String> = d
                .triggers
                .iter()
                .filter_map(|t| t.error.as_ref().map(|e| format!("{}: {e}", t.name)))
                .collect();
            rec.warn(
                now,
                Topic::Scale,
                self.key.object(),
                "KEDAScalerFailed",
                errs.join("; "),
            );
        }
        ScaleStep {
            replicas: (write != current).then_some(write),
            victims,
            intent,
            next: self.due(),
            decision: d,
        }
    }
}

impl ScaleLoop {
    /// [`Policy::latency_objectives`]: the backlog one replica may hold under the
    /// ScaledObject's latency objective, set on the autoscaler for this step. `None` (and the
    /// triggers' own targets) without an objective, under a policy that ignores it, or while
    /// no consumer has reported what a message costs it.
    fn objective(&mut self, pods: Option<&[ConsumerPod]>) -> Option<(Duration, Duration, f64)> {
        let t = self
            .autoscaler
            .config()
            .latency_objective
            .filter(|_| self.policy.latency_objectives);
        let Some(t) = t else {
            if self.autoscaler.backlog_target().is_some() {
                self.autoscaler.set_backlog_target(None);
            }
            return None;
        };
        if let Some(m) = mean_per_message(pods.unwrap_or_default()) {
            self.per_message = Some(m);
        }
        let per_message = self.per_message?;
        let target = backlog_per_replica(t, per_message);
        self.autoscaler.set_backlog_target(Some(target));
        Some((t, per_message, target))
    }

    /// [`Policy::drained_scale_in`]: once the queue has been drained and most consumers idle
    /// for long enough, the count goes to what is left times the headroom instead of waiting
    /// out the scale-down window.
    fn drained(&mut self, now: Timestamp, input: &ScaleInput<'_>, d: &mut Decision) {
        let Some(rule) = self.policy.drained_scale_in else {
            return;
        };
        let current = input.replicas;
        let Some(left) = drained_need(
            self.autoscaler.config(),
            self.autoscaler.backlog_target(),
            input,
            d,
            rule,
        ) else {
            self.drained_since = None;
            return;
        };
        let since = *self.drained_since.get_or_insert(now);
        if now.since(since) < rule.after {
            return;
        }
        let cfg = self.autoscaler.config();
        // Not to zero: going idle is activation's call (KEDA's cooldown), not this rule's.
        let floor = cfg.min.max(1);
        let want = left.clamp(floor, cfg.max.max(floor));
        if want < d.desired_replicas && want < current {
            let decided = d.desired_replicas;
            d.reason = format!(
                "{}; the queue has been drained and at most {:.0}% of the consumers busy for {}: scaling in to {want} ({}× what is left) without waiting out the {}s window",
                d.reason,
                rule.busy_share * 100.0,
                fmt_secs(now.since(since)),
                rule.headroom,
                cfg.behavior.down.window_secs,
            )
            .into();
            d.desired_replicas = want;
            self.autoscaler.amend(now, current, decided, want);
        }
    }

    /// [`Policy::hold_scale_out_on_crash_loop`]: a scale-out to `write` is held at `current`
    /// while at least half of the consumers crash-loop and none is at work.
    fn crash_hold(
        &mut self,
        now: Timestamp,
        input: &ScaleInput<'_>,
        current: u32,
        write: &mut u32,
        d: &mut Decision,
        rec: &mut Recorder,
    ) {
        let crashing = input
            .pods
            .map_or(0, |p| p.iter().filter(|p| p.crash_looping).count());
        let pods = input.pods.map_or(0, <[ConsumerPod]>::len);
        // Some consumer at work means messages still get through (poison among good ones):
        // more replicas help there, and speed the poison to the dead-letter queue.
        let working = input.pods.is_some_and(|p| p.iter().any(|p| p.busy));
        let looping = self.policy.hold_scale_out_on_crash_loop
            && crashing > 0
            && crashing * 2 >= pods
            && !working;
        let hold = looping && *write > current;
        if hold {
            let wanted = *write;
            *write = current;
            self.autoscaler
                .amend(now, current, d.desired_replicas, current);
            d.reason = format!(
                "{}; holding at {current} (not {wanted}): {crashing} of {pods} consumer(s) are crash-looping, more replicas would crash too",
                d.reason
            )
            .into();
            if !self.crash_hold {
                rec.warn(
                    now,
                    Topic::Scale,
                    self.key.object(),
                    "KedgeScaleOutHeld",
                    format!(
                        "scale-out of {} from {current} to {wanted} held: {crashing} of {pods} consumer(s) are crash-looping (CrashLoopBackOff)",
                        self.key
                    ),
                );
            }
        }
        // Warned once while the consumers crash-loop.
        self.crash_hold = looping && (hold || self.crash_hold);
    }
}

/// [`Policy::drained_scale_in`]'s view of one poll: `None` unless the rule may apply and the
/// queue is drained (every backlog trigger holds at most `busy_share` of the replicas' worth
/// of messages, at most that share of the consumers busy); then the count that leaves
/// `headroom` × room for what is left, never below the HPA's own recommendation.
fn drained_need(
    cfg: &autoscale::Config,
    backlog_target: Option<f64>,
    input: &ScaleInput<'_>,
    d: &Decision,
    rule: crate::policy::DrainedScaleIn,
) -> Option<u32> {
    let pods = input.pods?;
    let current = input.replicas;
    // An explicit scale-down behavior binds; a formula or non-backlog trigger is not a
    // queue this rule can read; a paused, failing or fallback step is not a drained queue.
    let applies = current > 0
        && !cfg.behavior_set.1
        && cfg.modifiers.is_none()
        && !cfg.triggers.is_empty()
        && cfg
            .triggers
            .iter()
            .all(|t| t.backlog && t.metric_type == model::keda::MetricType::AverageValue)
        && !(d.paused || d.error || d.fallback)
        && input.triggers.len() == cfg.triggers.len();
    if !applies {
        return None;
    }
    let limit = rule.busy_share * f64::from(current);
    let busy = pods.iter().filter(|p| p.busy).count() as f64;
    if busy > limit {
        return None;
    }
    let mut need = busy * rule.headroom;
    for (spec, sample) in cfg.triggers.iter().zip(&input.triggers) {
        let v = sample.as_ref().ok()?.value;
        if !v.is_finite() || v > limit {
            return None;
        }
        let target = backlog_target.unwrap_or(spec.target);
        let hpa = if target > 0.0 { v / target } else { v };
        need = need.max(v * rule.headroom).max(hpa);
    }
    Some(need.ceil().min(f64::from(u32::MAX)) as u32)
}

/// The next tick of a fixed schedule after `now` (missed ticks are skipped, not bunched).
fn next_tick(due: Timestamp, every: Duration, now: Timestamp) -> Timestamp {
    let mut next = due.add(every);
    if next <= now {
        let behind = now.since(next).as_millis();
        let step = every.as_millis().max(1);
        next = next.add(every * (behind / step + 1) as u32);
    }
    next
}

/// The share of a latency objective a message may spend waiting in a steady queue. By
/// Little's law a backlog of `B` per replica, each replica finishing one message every
/// `per_message`, is worked off in `B × per_message`: holding that to half the objective
/// leaves the other half for what the steady state does not see (a message's own work, a
/// burst while the next poll and pods come, the scale-down window's lag).
pub const OBJECTIVE_QUEUE_SHARE: f64 = 0.5;

/// The backlog one replica may hold to meet latency objective `t` when a message costs a
/// consumer `per_message` (at least one message: below that more replicas do not help).
pub fn backlog_per_replica(t: Duration, per_message: Duration) -> f64 {
    let pm = per_message.as_secs_f64().max(1e-3);
    (t.as_secs_f64() * OBJECTIVE_QUEUE_SHARE / pm).max(1.0)
}

/// The mean cost of a message over the consumers that reported one.
fn mean_per_message(pods: &[ConsumerPod]) -> Option<Duration> {
    let (sum, n) = pods
        .iter()
        .filter_map(|p| p.per_message)
        .fold((Duration::ZERO, 0u32), |(s, n), d| (s + d, n + 1));
    (n > 0).then(|| sum / n)
}

fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}s")
    } else {
        format!("{s:.1}s")
    }
}

/// How soon the oracle works off a backlog on top of the arrivals.
const ORACLE_DRAIN: Duration = Duration::from_secs(30);

/// The oracle's count: the consumers the coming arrivals keep busy (Little's law: rate × work
/// time ÷ concurrency) plus what works off the current backlog within [`ORACLE_DRAIN`] (or
/// one poll interval, if longer).
fn oracle(d: &mut Decision, cfg: &autoscale::Config, f: Foresight) {
    let work = f.work.as_secs_f64();
    let per = f64::from(f.concurrency.max(1));
    let horizon = cfg.polling_interval.max(ORACLE_DRAIN).as_secs_f64();
    let need = (f.arrival_rate * work / per + f.backlog * work / per / horizon).ceil();
    let want = (need.max(0.0) as u32).clamp(cfg.min, cfg.max);
    if want != d.desired_replicas {
        d.reason = format!(
            "oracle: {want} consumer(s) for {:.1} msg/s × {:.2}s work and a backlog of {} (knows the future arrivals)",
            f.arrival_rate, work, f.backlog
        )
        .into();
        d.desired_replicas = want;
    }
}

/// KEDA's event for a scaling decision (reason and message as KEDA writes them).
pub fn scale_event(key: &WorkloadKey, from: u32, to: u32, why: &str) -> (&'static str, String) {
    if from == 0 {
        (
            "KEDAScaleTargetActivated",
            format!("Scaled {key} from 0 to {to}, triggered by {why}"),
        )
    } else if to == 0 {
        (
            "KEDAScaleTargetDeactivated",
            format!("Deactivated {key} from {from} to 0"),
        )
    } else {
        (
            "SuccessfulRescale",
            format!("New size: {to} (was {from}); reason: {why}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyName;
    use crate::replicaset::PodPhase;

    fn so(extra: &str) -> model::keda::ScaledObject {
        let y = format!(
            r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: consumer, namespace: jobs}}
spec:
  scaleTargetRef: {{name: consumer}}
  minReplicaCount: 1
  maxReplicaCount: 100
  pollingInterval: 30
{extra}
  triggers:
  - type: aws-sqs-queue
    metadata: {{queueURL: "https://sqs.us-east-1.amazonaws.com/1/q", queueLength: "2", awsRegion: us-east-1}}
"#
        );
        serde_yaml_ng::from_str(&y).expect("test manifest")
    }

    fn lp(policy: PolicyName, extra: &str) -> ScaleLoop {
        let cfg = autoscale::Config::from_scaled_object(&so(extra)).expect("valid");
        let t0 = Timestamp::from_secs(1_000);
        ScaleLoop::new(
            WorkloadKey::new("jobs", "consumer"),
            Autoscaler::new(cfg, t0),
            &Policy::preset(policy),
            Some(Template::of(&Pod::with_requests(
                "consumer",
                "250m".parse().unwrap(),
                "64Mi".parse().unwrap(),
            ))),
            t0,
        )
    }

    fn metric(v: f64) -> Vec<Result<MetricSample, String>> {
        vec![Ok(MetricSample::with_threshold(v, 0.0))]
    }

    fn pod(name: &str, busy: bool, created: u64) -> ConsumerPod {
        ConsumerPod {
            name: name.into(),
            node: Some("n1".into()),
            phase: PodPhase::Running,
            ready: true,
            busy,
            created: Timestamp::from_secs(created),
            deletion_cost: 0,
            crash_looping: false,
            per_message: None,
        }
    }

    #[test]
    fn upstream_cadence_polls_keda_and_syncs_the_hpa_on_their_own_timers() {
        let mut l = lp(PolicyName::KedaKarpenter, "");
        let mut rec = Recorder::default();
        let t0 = l.due();
        let s = l.step(
            t0,
            &ScaleInput {
                replicas: 1,
                triggers: metric(40.0),
                ..Default::default()
            },
            &mut rec,
        );
        // Both loops at t0; the HPA is held to max(+4 pods, +100 %) per 15 s: 1 → 5.
        assert_eq!(s.replicas, Some(5));
        assert_eq!(s.next, t0.add(Duration::from_secs(15)));
        // At 15 s only the HPA syncs: 5 → 10.
        let s = l.step(
            s.next,
            &ScaleInput {
                replicas: 5,
                triggers: metric(40.0),
                ..Default::default()
            },
            &mut rec,
        );
        assert_eq!(s.replicas, Some(10));
        assert_eq!(s.next, t0.add(Duration::from_secs(30)));
        assert!(s.intent.is_none(), "no joint decisions upstream");
        assert_eq!(rec.take().len(), 2);
    }

    #[test]
    fn kedge_holds_a_scale_out_while_half_the_consumers_crash_loop_and_upstream_does_not() {
        let mut pods: Vec<ConsumerPod> = (0..4).map(|i| pod(&format!("p{i}"), false, i)).collect();
        pods[0].crash_looping = true;
        pods[1].crash_looping = true;
        fn input(pods: &[ConsumerPod]) -> ScaleInput<'_> {
            ScaleInput {
                replicas: 4,
                triggers: metric(40.0),
                pods: Some(pods),
                ..Default::default()
            }
        }
        let mut rec = Recorder::default();
        // kedge: 2 of 4 crash-looping, a backlog of 40 (20 replicas wanted): held at 4.
        let mut l = lp(PolicyName::Kedge, "");
        let t0 = l.due();
        let s = l.step(t0, &input(&pods), &mut rec);
        assert_eq!(s.replicas, None);
        assert!(
            s.intent.is_none(),
            "no capacity is asked for a held scale-out"
        );
        assert!(
            s.decision
                .reason
                .contains("2 of 4 consumer(s) are crash-looping")
        );
        let ev = rec.take();
        assert!(
            ev.iter()
                .any(|e| e.warning && e.reason == "KedgeScaleOutHeld")
        );
        // Still held at the next step, without a second warning.
        let s = l.step(s.next, &input(&pods), &mut rec);
        assert_eq!(s.replicas, None);
        assert!(rec.take().iter().all(|e| e.reason != "KedgeScaleOutHeld"));
        // A consumer at work: messages still get through, the scale-out goes ahead.
        pods[2].busy = true;
        let s = l.step(s.next, &input(&pods), &mut rec);
        assert_eq!(s.replicas, Some(20), "{}", s.decision.reason);
        // One of four is below half: the scale-out goes ahead too.
        pods[2].busy = false;
        pods[1].crash_looping = false;
        let mut l = lp(PolicyName::Kedge, "");
        let s = l.step(l.due(), &input(&pods), &mut rec);
        assert_eq!(s.replicas, Some(20));
        // Upstream (KEDA + the HPA) knows nothing of crash loops: 4 → 8 (+100 %).
        pods[1].crash_looping = true;
        let mut up = lp(PolicyName::KedaKarpenter, "");
        let s = up.step(up.due(), &input(&pods), &mut rec);
        assert_eq!(s.replicas, Some(8));
    }

    #[test]
    fn combined_cadence_steps_at_the_polling_interval_and_announces_the_scale_out() {
        let mut l = lp(PolicyName::Kedge, "");
        let mut rec = Recorder::default();
        let t0 = l.due();
        let s = l.step(
            t0,
            &ScaleInput {
                replicas: 1,
                triggers: metric(40.0),
                ..Default::default()
            },
            &mut rec,
        );
        // kedge's own scale-up (no behavior set): straight to the desired 20, and the
        // queue is read every second although pollingInterval says 30.
        assert_eq!(s.replicas, Some(20));
        assert_eq!(s.next, t0.add(Duration::from_secs(1)));
        let i = s.intent.expect("joint decision");
        assert_eq!(i.replicas, 19);
        assert_eq!(i.source, "ScaledObject jobs/consumer");
    }

    #[test]
    fn kedge_reads_a_queue_every_second_and_other_triggers_every_five() {
        let step = |yaml: &str| {
            let so: model::keda::ScaledObject = serde_yaml_ng::from_str(yaml).expect("manifest");
            let cfg = autoscale::Config::from_scaled_object(&so).expect("valid");
            let t0 = Timestamp::from_secs(1_000);
            let mut l = ScaleLoop::new(
                WorkloadKey::new("jobs", "consumer"),
                Autoscaler::new(cfg, t0),
                &Policy::preset(PolicyName::Kedge),
                None,
                t0,
            );
            let n = so.spec.triggers.len();
            let input = ScaleInput {
                replicas: 1,
                triggers: (0..n).flat_map(|_| metric(1.0)).collect(),
                ..Default::default()
            };
            l.step(t0, &input, &mut Recorder::default()).next.since(t0)
        };
        let head = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: consumer, namespace: jobs}\nspec:\n  scaleTargetRef: {name: consumer}\n  pollingInterval: 30\n  triggers:\n";
        let sqs = "  - type: aws-sqs-queue\n    metadata: {queueURL: \"https://sqs.us-east-1.amazonaws.com/1/q\", queueLength: \"2\", awsRegion: us-east-1}\n";
        let prom = "  - type: prometheus\n    metadata: {serverAddress: \"http://prometheus:9090\", query: \"sum(up)\", threshold: \"5\"}\n";
        assert_eq!(step(&format!("{head}{sqs}")), Duration::from_secs(1));
        assert_eq!(step(&format!("{head}{prom}")), Duration::from_secs(5));
        // One trigger that is not a backlog sets the pace for the object.
        assert_eq!(step(&format!("{head}{sqs}{prom}")), Duration::from_secs(5));
        // A pollingInterval shorter than either is kept.
        let fast = head.replace(
            "metadata: {name: consumer, namespace: jobs}",
            "metadata: {name: consumer, namespace: jobs, annotations: {autoscaling.kedge.dev/polling-interval: 250ms}}",
        );
        assert!(step(&format!("{fast}{prom}")) < Duration::from_secs(1));
    }

    #[test]
    fn an_explicit_behavior_binds_the_kedge_policy_too() {
        let extra = "  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleUp: {policies: [{type: Pods, value: 4, periodSeconds: 60}]}";
        let mut l = lp(PolicyName::Kedge, extra);
        let mut rec = Recorder::default();
        let t0 = l.due();
        let s = l.step(
            t0,
            &ScaleInput {
                replicas: 1,
                triggers: metric(40.0),
                ..Default::default()
            },
            &mut rec,
        );
        assert_eq!(s.replicas, Some(5), "the user's +4 pods per minute");
        // The direction the user left unset takes kedge's default (60 s, not the HPA's 300 s).
        assert_eq!(l.autoscaler().config().behavior.down.window_secs, 60);
        assert_eq!(l.autoscaler().config().behavior.up.policies.len(), 1);
    }

    #[test]
    fn idle_only_scale_in_never_stops_a_busy_consumer_before_the_deadline() {
        let extra = "  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleDown: {stabilizationWindowSeconds: 0}";
        let mut l = lp(PolicyName::Kedge, extra);
        let mut rec = Recorder::default();
        let pods = [
            pod("jobs/a", true, 1),
            pod("jobs/b", false, 2),
            pod("jobs/c", true, 3),
            pod("jobs/d", false, 4),
        ];
        let t0 = l.due();
        let s = l.step(
            t0,
            &ScaleInput {
                replicas: 4,
                triggers: metric(2.0),
                pods: Some(&pods),
                ..Default::default()
            },
            &mut rec,
        );
        // The HPA wants 1; two are idle: 4 → 2, the idle ones first.
        assert_eq!(s.replicas, Some(2));
        let mut v = s.victims.clone();
        v.sort();
        assert_eq!(v, ["jobs/b", "jobs/d"]);
        // Ten minutes later the busy ones are still busy: the deadline lets one go.
        let busy = [pods[0].clone(), pods[2].clone()];
        let s = l.step(
            t0.add(Duration::from_secs(599)),
            &ScaleInput {
                replicas: 2,
                triggers: metric(2.0),
                pods: Some(&busy),
                ..Default::default()
            },
            &mut rec,
        );
        assert_eq!(s.replicas, None, "held until the deadline");
        let s = l.step(
            t0.add(Duration::from_secs(601)),
            &ScaleInput {
                replicas: 2,
                triggers: metric(2.0),
                pods: Some(&busy),
                ..Default::default()
            },
            &mut rec,
        );
        assert_eq!(s.replicas, Some(1));
        assert_eq!(s.victims, ["jobs/c"]);
    }

    #[test]
    fn the_replicaset_path_writes_the_count_and_names_its_victims() {
        let extra = "  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleDown: {stabilizationWindowSeconds: 0}";
        let mut l = lp(PolicyName::KedaKarpenter, extra);
        let mut rec = Recorder::default();
        let pods = [pod("jobs/a", true, 1), pod("jobs/b", true, 2)];
        let s = l.step(
            l.due(),
            &ScaleInput {
                replicas: 2,
                triggers: metric(1.0),
                pods: Some(&pods),
                ..Default::default()
            },
            &mut rec,
        );
        assert_eq!(s.replicas, Some(1));
        // The newer pod goes, busy or not.
        assert_eq!(s.victims, ["jobs/b"]);
    }

    #[test]
    fn replicas_without_a_pod_yet_go_first() {
        let extra = "  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleDown: {stabilizationWindowSeconds: 0}";
        let mut l = lp(PolicyName::Kedge, extra);
        assert!(l.marks_victims());
        let mut rec = Recorder::default();
        // 5 replicas, only 3 pods so far, one of them busy; the HPA wants 1.
        let pods = [
            pod("jobs/a", true, 1),
            pod("jobs/b", false, 2),
            pod("jobs/c", false, 3),
        ];
        let s = l.step(
            l.due(),
            &ScaleInput {
                replicas: 5,
                triggers: metric(1.0),
                pods: Some(&pods),
                ..Default::default()
            },
            &mut rec,
        );
        // The two missing replicas and two idle pods go; the busy one stays.
        assert_eq!(s.replicas, Some(1));
        let mut v = s.victims.clone();
        v.sort();
        assert_eq!(v, ["jobs/b", "jobs/c"]);
    }

    #[test]
    fn a_scale_in_to_zero_names_no_victims() {
        let mut l = lp(PolicyName::Kedge, "");
        // The fixture's minReplicaCount is 1: scale to zero with min 0 and no cooldown.
        let mut cfg = l.autoscaler().config().clone();
        cfg.min = 0;
        cfg.cooldown = Duration::ZERO;
        l.update(cfg, None);
        let mut rec = Recorder::default();
        let pods = [pod("jobs/a", false, 1), pod("jobs/b", false, 2)];
        let t0 = l.due();
        let s = l.step(
            t0.add(Duration::from_secs(1)),
            &ScaleInput {
                replicas: 2,
                triggers: metric(0.0),
                pods: Some(&pods),
                ..Default::default()
            },
            &mut rec,
        );
        assert_eq!(s.replicas, Some(0));
        assert!(s.victims.is_empty(), "{:?}", s.victims);
        assert!(s.intent.is_none());
    }

    #[test]
    fn a_new_policy_applies_from_the_next_step() {
        let mut l = lp(PolicyName::Kedge, "");
        let mut rec = Recorder::default();
        let t0 = l.due();
        let input = ScaleInput {
            replicas: 1,
            triggers: metric(40.0),
            ..Default::default()
        };
        let s = l.step(t0, &input, &mut rec);
        assert!(s.intent.is_some());
        l.set_policy(&Policy::preset(PolicyName::KedaKarpenter));
        assert!(!l.marks_victims());
        // Due at the combined cadence's time (kedge reads a queue every second); then KEDA's
        // and the HPA's own timers (the HPA's 15 s comes first).
        assert_eq!(l.due(), t0.add(Duration::from_secs(1)));
        let s = l.step(
            l.due(),
            &ScaleInput {
                replicas: 5,
                ..input
            },
            &mut rec,
        );
        assert!(s.intent.is_none(), "no joint decisions upstream");
        assert_eq!(s.next, t0.add(Duration::from_secs(16)));
    }

    #[test]
    fn a_late_poll_keeps_the_loops_phase_and_an_early_one_starts_a_new_interval() {
        let mut l = lp(PolicyName::Kedge, "");
        let mut rec = Recorder::default();
        let t0 = l.due();
        let input = ScaleInput {
            replicas: 1,
            triggers: metric(1.0),
            ..Default::default()
        };
        let at = |ms: u64| t0.add(Duration::from_millis(ms));
        // kedge reads a queue every second: a poll 0.3 s late is followed by the one due at 1 s.
        assert_eq!(l.step(at(300), &input, &mut rec).next, at(1_000));
        // 1.5 s late: the tick at 2 s is skipped, not bunched.
        assert_eq!(l.step(at(2_500), &input, &mut rec).next, at(3_000));
        // An event-driven poll before its due time starts the interval again.
        assert_eq!(l.step(at(2_800), &input, &mut rec).next, at(3_800));
        assert_eq!(l.due(), at(3_800));
    }

    #[test]
    fn a_template_is_kept_as_text_and_read_back_whole() {
        let pod = Pod::with_requests("c", "250m".parse().unwrap(), "64Mi".parse().unwrap());
        let t = Template::of(&pod);
        assert_eq!(t.pod(), Some(pod));
        assert_eq!(Template::from_json(t.as_json()).unwrap(), t);
        assert!(Template::from_json("{\"spec\": 3}").is_err());
    }

    #[test]
    fn missed_ticks_are_skipped() {
        let t = Timestamp::from_secs(100);
        assert_eq!(
            next_tick(t, Duration::from_secs(15), t.add(Duration::from_secs(50))),
            t.add(Duration::from_secs(60))
        );
        assert_eq!(
            next_tick(t, Duration::from_secs(15), t),
            t.add(Duration::from_secs(15))
        );
    }

    fn with_objective(policy: PolicyName, objective: &str) -> ScaleLoop {
        let mut so = so("");
        so.metadata.annotations.insert(
            model::keda::ANNOTATION_KEDGE_LATENCY_OBJECTIVE.into(),
            objective.into(),
        );
        let cfg = autoscale::Config::from_scaled_object(&so).expect("valid");
        let t0 = Timestamp::from_secs(1_000);
        ScaleLoop::new(
            WorkloadKey::new("jobs", "consumer"),
            Autoscaler::new(cfg, t0),
            &Policy::preset(policy),
            None,
            t0,
        )
    }

    /// One poll at the loop's due time: `replicas`, a backlog of `backlog`, these pods.
    fn poll(l: &mut ScaleLoop, replicas: u32, backlog: f64, pods: &[ConsumerPod]) -> ScaleStep {
        l.step(
            l.due(),
            &ScaleInput {
                replicas,
                triggers: metric(backlog),
                pods: Some(pods),
                ..Default::default()
            },
            &mut Recorder::default(),
        )
    }

    fn reporting(n: usize, per_message: Duration) -> Vec<ConsumerPod> {
        (0..n)
            .map(|i| ConsumerPod {
                per_message: Some(per_message),
                ..pod(&format!("p{i}"), true, i as u64)
            })
            .collect()
    }

    #[test]
    fn a_latency_objective_sets_the_backlog_one_replica_may_hold() {
        // 30 s objective, 1 s per message: half the objective for the queue → 15 messages per
        // replica; a backlog of 300 needs 20 replicas (queueLength 2 alone would ask 150).
        let mut l = with_objective(PolicyName::Kedge, "30s");
        let pods = reporting(4, Duration::from_secs(1));
        let s = poll(&mut l, 4, 300.0, &pods);
        assert_eq!(s.replicas, Some(20));
        assert!(
            s.decision.reason.as_str().contains(
                "latency objective 30s: 1.00s per message, so at most 15.0 messages per replica"
            ),
            "{}",
            s.decision.reason.as_str()
        );
        // Cheaper messages, same objective: fewer replicas (250 ms → 60 per replica → 5).
        let pods = reporting(20, Duration::from_millis(250));
        let s = poll(&mut l, 20, 300.0, &pods);
        // The scale-down window holds the count at first; the target the HPA used is the
        // objective's.
        assert_eq!(l.autoscaler().backlog_target(), Some(60.0));
        assert_eq!(s.replicas, None);
        // An objective shorter than a message still gives each replica one message.
        assert_eq!(
            backlog_per_replica(Duration::from_millis(500), Duration::from_secs(2)),
            1.0
        );
    }

    #[test]
    fn without_a_reported_work_time_the_triggers_own_target_decides_and_the_last_report_is_kept() {
        let mut l = with_objective(PolicyName::Kedge, "30s");
        let pods = vec![pod("p0", true, 0)];
        let s = poll(&mut l, 1, 300.0, &pods);
        // queueLength 2: 150 replicas, at most maxReplicaCount 100.
        assert_eq!(s.replicas, Some(100));
        assert_eq!(l.autoscaler().backlog_target(), None);
        // A report arrives, then the pods are gone (at zero): the report still counts.
        let reported = reporting(1, Duration::from_secs(2));
        poll(&mut l, 100, 300.0, &reported);
        let s = poll(&mut l, 0, 300.0, &[]);
        assert_eq!(l.autoscaler().backlog_target(), Some(7.5));
        // Activation first (0 → 1), then the objective's count.
        assert_eq!(s.replicas, Some(1));
        // (15 s after the scale-out to 100, whose +99 the scale-up policy's period counts.)
        let s = l.step(
            l.due().add(Duration::from_secs(15)),
            &ScaleInput {
                replicas: 1,
                triggers: metric(300.0),
                pods: Some(&[]),
                ..Default::default()
            },
            &mut Recorder::default(),
        );
        assert_eq!(s.replicas, Some(40));
    }

    #[test]
    fn upstream_ignores_the_latency_objective() {
        let mut l = with_objective(PolicyName::KedaKarpenter, "30s");
        let pods = reporting(4, Duration::from_secs(1));
        let s = poll(&mut l, 4, 300.0, &pods);
        assert_eq!(l.autoscaler().backlog_target(), None);
        // The HPA's default scale-up: max(+4 pods, +100 %) → 8.
        assert_eq!(s.replicas, Some(8));
        // Switching to kedge applies it from the next step.
        l.set_policy(&Policy::preset(PolicyName::Kedge));
        l.update(l.autoscaler().config().clone(), None);
        let s = poll(&mut l, 8, 300.0, &pods);
        assert_eq!(l.autoscaler().backlog_target(), Some(15.0));
        assert_eq!(s.replicas, Some(20));
    }

    #[test]
    fn under_a_latency_objective_busy_consumers_are_never_stopped_for_a_scale_in() {
        // 20 busy consumers, a backlog that wants 2: without idle ones nothing goes, and the
        // drain deadline (600 s) does not force busy ones out as it does without an objective.
        let mut l = with_objective(PolicyName::Kedge, "30s");
        let mut pods = reporting(20, Duration::from_secs(1));
        for _ in 0..(900 / 5) {
            let s = poll(&mut l, 20, 30.0, &pods);
            assert_eq!(s.replicas, None);
            assert!(s.victims.is_empty());
        }
        let s = poll(&mut l, 20, 30.0, &pods);
        assert!(
            s.decision.reason.as_str().contains(
                "scaling in to 20 for now: the other 18 to stop are busy and go when idle (under a latency objective, never while busy)"
            ),
            "{}",
            s.decision.reason.as_str()
        );
        // Two go idle: exactly those two go.
        pods[3].busy = false;
        pods[7].busy = false;
        let s = poll(&mut l, 20, 30.0, &pods);
        assert_eq!(s.replicas, Some(18));
        let mut v = s.victims.clone();
        v.sort();
        assert_eq!(v, vec!["p3".to_string(), "p7".to_string()]);
        assert!(
            s.decision
                .reason
                .as_str()
                .contains("scaling in to 18 for now"),
            "{}",
            s.decision.reason.as_str()
        );
    }

    /// `n` running consumers, the first `busy` of them at work.
    fn consumers(n: usize, busy: usize) -> Vec<ConsumerPod> {
        (0..n)
            .map(|i| pod(&format!("p{i}"), i < busy, i as u64))
            .collect()
    }

    #[test]
    fn once_the_queue_is_drained_and_consumers_idle_kedge_does_not_wait_out_the_window() {
        // A burst: 80 replicas for a backlog of 160.
        let mut l = lp(PolicyName::Kedge, "");
        let at_work = consumers(80, 80);
        assert_eq!(poll(&mut l, 20, 160.0, &at_work[..20]).replicas, Some(80));
        // Drained: 3 messages in flight, 3 consumers busy. The 60 s window holds 80 for the
        // first 10 s of it…
        let idle = consumers(80, 3);
        for _ in 0..10 {
            let s = poll(&mut l, 80, 3.0, &idle);
            assert_eq!(s.replicas, None, "{}", s.decision.reason.as_str());
        }
        // …then the count goes to four times what is left (the HPA itself would keep 80 until
        // the window has passed), idle consumers only.
        let s = poll(&mut l, 80, 3.0, &idle);
        assert_eq!(s.replicas, Some(12), "{}", s.decision.reason.as_str());
        assert!(
            s.decision.reason.as_str().contains(
                "the queue has been drained and at most 50% of the consumers busy for 10s"
            ),
            "{}",
            s.decision.reason.as_str()
        );
        assert_eq!(s.victims.len(), 68);
        assert!(
            s.victims
                .iter()
                .all(|v| !["p0", "p1", "p2"].contains(&v.as_str()))
        );
        // The next poll does not take the window's old 80 back.
        assert_eq!(poll(&mut l, 12, 3.0, &idle[..12]).replicas, None);
    }

    #[test]
    fn a_queue_still_worked_or_an_explicit_scale_down_keeps_the_window() {
        // Most consumers busy: the dips of a worked queue are what the window is for.
        let mut l = lp(PolicyName::Kedge, "");
        assert_eq!(
            poll(&mut l, 20, 160.0, &consumers(20, 20)).replicas,
            Some(80)
        );
        let busy = consumers(80, 50);
        for _ in 0..30 {
            let s = poll(&mut l, 80, 50.0, &busy);
            assert_eq!(s.replicas, None, "{}", s.decision.reason.as_str());
        }
        // A `behavior.scaleDown` the user wrote binds, and upstream has no such rule.
        let explicit = "  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleDown: {stabilizationWindowSeconds: 120}";
        // (Polls well inside either window: kedge's 30 s of 1 s polls against 120 s, the HPA's
        // 150 s of 15 s syncs against 300 s.)
        for (policy, extra, polls) in [
            (PolicyName::Kedge, explicit, 30),
            (PolicyName::KedaKarpenter, "", 10),
        ] {
            let mut l = lp(policy, extra);
            let idle = consumers(80, 1);
            poll(&mut l, 80, 160.0, &idle);
            for _ in 0..polls {
                let s = poll(&mut l, 80, 1.0, &idle);
                assert_eq!(s.replicas, None, "{policy}: {}", s.decision.reason.as_str());
            }
        }
    }
}
