//! Policy presets: the rules the engine decides by.
//!
//! A policy is data, not code paths scattered over the substrates: every substrate hands the
//! engine one [`Policy`] and the engine's modules read the knobs they need. Explicit user
//! settings in the manifests (minReplicaCount, maxReplicaCount, an explicit `behavior`,
//! NodePool limits, budgets, `consolidateAfter`) bind every policy; the presets only choose
//! what upstream leaves to its controllers.
//!
//! # `keda-karpenter`: upstream, as documented
//! What KEDA + the HPA + Karpenter + the ReplicaSet controller + kube-scheduler do with the
//! same manifests and their documented defaults. It is the baseline kedge is compared with, so
//! it is modelled faithfully, never weakened:
//! - **Cadence.** KEDA's scale loop polls the triggers every `pollingInterval` and only moves
//!   the target between 0 and 1 (activation / cooldown); the HPA syncs every 15 s
//!   (`--horizontal-pod-autoscaler-sync-period`, kube-controller-manager) and asks KEDA's
//!   metrics server, which queries the scaler afresh (`useCachedMetrics: false` is KEDA's
//!   default), for the 1 ↔ N decision. HPA tolerance 0.1 and the default behavior (scale-up:
//!   no window, max(4 pods, 100 %) per 15 s; scale-down: 300 s window, 100 % per 15 s) come
//!   from the `autoscale` core.
//! - **Scale-in.** The HPA only writes `spec.replicas`; the ReplicaSet controller picks the
//!   victims with `controller.ActivePodsWithRanks` (unscheduled first, then pending, not
//!   ready, lower `pod-deletion-cost`, more pods of the set on the same node, newer), knowing
//!   nothing of busy consumers ([`ScaleIn::ReplicaSet`]).
//! - **No joint decisions.** Karpenter sees pods only once kube-scheduler marked them
//!   unschedulable, and batches them (1 s idle, 10 s max: `BATCH_IDLE_DURATION`,
//!   `BATCH_MAX_DURATION`).
//! - **Disruption.** Karpenter's disruption controller every 10 s; a command waits 15 s and
//!   is validated again (`consolidationTTL`); replacements strictly cheaper (no margin); no
//!   gate while pods are pending (its simulation includes them); a node is drained by evicting
//!   all its pods at once (PDBs respected) — busy consumers get SIGTERM like idle ones.
//!   Consolidation is skipped while the cluster has not changed since a pass found nothing
//!   (Karpenter's "consolidated" state, reset on any change or after 5 minutes).
//!
//! # `kedge`: kedge's defaults
//! - one control step at the ScaledObject's polling interval, or every 5 s if that is longer
//!   — every 1 s when all its triggers are backlogs (a queue's depth, one cheap call: SQS's
//!   GetQueueAttributes, $0.40 per million, is ~$0.035 a day per ScaledObject at 1 s) —
//!   (activation and the HPA maths together, fresh metrics each time; upstream's HPA reads
//!   them every 15 s whatever `pollingInterval` says). Reading the queue sooner catches a
//!   burst sooner and lets idle consumers go sooner after it;
//! - where the ScaledObject sets no `behavior`: scale-up straight to the desired count (not
//!   +100 % / +4 pods per 15 s) and a 60 s scale-down window (not 300 s): scale-in stops idle
//!   consumers only, emptiest nodes first, so nodes are returned sooner without stopping
//!   work. A `behavior` the user wrote binds kedge as it binds the HPA, per direction;
//! - once a burst is over — every trigger a backlog holding at most half the replicas' worth
//!   of messages and at most half the consumers busy, at every poll for 10 s — the count goes
//!   to four times what is left without waiting out the window ([`DrainedScaleIn`]): after a
//!   dump of 40,000 messages the window held ~65 nodes for its whole minute. Four times leaves
//!   room for the load that continues; headroom 2 / 3 / 4 / 6 and shares of 10 / 25 / 50 %
//!   were measured (docs/benchmarks.md);
//! - joint decisions: a scale-out is handed to the provisioner in the same step as an
//!   announced-replica intent, so NodeClaims launch before the pods exist;
//! - busy-aware scale-in: only idle consumers are stopped (the count follows as they go
//!   idle), unless a scale-in has waited longer than the drain deadline (never under a
//!   latency objective, whose standing queue keeps every consumer busy);
//! - busy-aware drains: idle consumers of a disrupted node go first, busy ones when they go
//!   idle or at the drain deadline;
//! - consolidation waits while pods are pending or nodes are launching (a scale-out is in
//!   progress) and, for nodes that still hold pods, until the replica counts have been steady
//!   for 20 s (a scale-in has settled: no replacement is launched for pods about to go; an
//!   empty node has nothing to judge and goes without waiting), and a replacement must save at
//!   least 10 %;
//! - where a NodePool sets no disruption budgets, empty nodes go outside Karpenter's default
//!   budget (`nodes: 10%`), all at once: deleting a node no pod runs on disrupts nothing, while
//!   10 % of a shrinking pool let a burst's emptied nodes go a few at a time for minutes.
//!   Other reasons keep the 10 %, and budgets the NodePool sets bind as written;
//! - a latency objective per ScaledObject (`autoscaling.kedge.dev/latency-objective`): the
//!   backlog triggers' per-replica target becomes [`crate::scale::OBJECTIVE_QUEUE_SHARE`] of
//!   the objective ÷ the consumers' measured cost of a message (Little's law), so the queue's
//!   wait stays near half the objective at the fewest replicas; without the annotation (or
//!   before any consumer reports its work time) the triggers' own targets decide, which is the
//!   default objective: about `queueLength` messages' work of wait;
//! - no scale-out storm: while at least half of a target's consumers are crash-looping
//!   (`CrashLoopBackOff` after runs shorter than 10 s: a bad release) and none is at work,
//!   the count is held where it is — KEDA would keep adding replicas (and Karpenter nodes) for
//!   a backlog that only grows because the consumers crash. Scale-in still applies;
//!   crash-looping consumers go first.
//!
//! # `oracle`: a lower bound, not a controller
//! Replicas from perfect knowledge of the arrivals (Little's law on the mean work time: the
//! busy consumers the arrivals need, never fewer than the backlog can use), set at every step;
//! capacity for them requested at once; nodes boot instantly (the simulator honours
//! [`Policy::instant_boot`]); consolidation as `kedge`. Only a substrate that knows the
//! future arrivals (the simulator) can run it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use autoscale::hpa;
use model::keda::{PolicyType, SelectPolicy};
use provision::disruption::DisruptionOptions;

/// kedge's scale-up when the user set none: to the desired count in one step (the HPA's
/// default allows +100 % or +4 pods per 15 s, which takes minutes to reach hundreds of
/// replicas from a few). Capacity is requested in the same step (joint decisions).
pub const KEDGE_SCALE_UP_PERCENT: u32 = 100_000;
/// kedge's scale-down stabilization when the user set none (the HPA's default is 300 s).
/// Scale-in stops idle consumers only, emptiest nodes first, so a short window returns
/// nodes sooner without stopping work; the window still rides out a poll or two of noise.
pub const KEDGE_SCALE_DOWN_WINDOW_SECS: u32 = 60;
/// kedge's scale-in once a burst is over ([`DrainedScaleIn`]): the queue drained and at least
/// half the consumers idle for this long.
pub const KEDGE_DRAINED_AFTER: Duration = Duration::from_secs(10);
/// kedge reads the triggers at least this often.
pub const KEDGE_POLL_AT_MOST: Duration = Duration::from_secs(5);
/// kedge reads a ScaledObject whose triggers are all backlogs (a queue's depth: one cheap call
/// each, e.g. SQS's GetQueueAttributes) at least this often.
pub const KEDGE_POLL_BACKLOG_AT_MOST: Duration = Duration::from_secs(1);

/// The presets a user can name (`--policy`, the `autoscaling.kedge.dev/policy` annotation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyName {
    KedaKarpenter,
    Kedge,
    Oracle,
}

impl PolicyName {
    pub const ALL: [PolicyName; 3] = [
        PolicyName::KedaKarpenter,
        PolicyName::Kedge,
        PolicyName::Oracle,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PolicyName::KedaKarpenter => "keda-karpenter",
            PolicyName::Kedge => "kedge",
            PolicyName::Oracle => "oracle",
        }
    }
}

impl fmt::Display for PolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `--policy` that names no preset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown policy {0:?}: expected keda-karpenter, kedge or oracle")]
pub struct UnknownPolicy(pub String);

impl FromStr for PolicyName {
    type Err = UnknownPolicy;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "keda-karpenter" => Ok(PolicyName::KedaKarpenter),
            "kedge" => Ok(PolicyName::Kedge),
            "oracle" => Ok(PolicyName::Oracle),
            other => Err(UnknownPolicy(other.to_string())),
        }
    }
}

/// When the scale loop steps the autoscaler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    /// KEDA's loop every `pollingInterval` (0 ↔ 1 only) and the HPA's sync every `hpa_sync`
    /// (1 ↔ N only), each with fresh metrics.
    Upstream { hpa_sync: Duration },
    /// One step at the ScaledObject's polling interval that does both.
    Combined,
}

/// Which consumers go when the replica count drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleIn {
    /// The ReplicaSet controller's victim ranking; busy consumers are as likely as idle ones.
    ReplicaSet,
    /// Only idle consumers (emptiest NodePool nodes first); a scale-in that found too few idle
    /// consumers for longer than `deadline` takes busy ones too.
    IdleOnly { deadline: Duration },
}

/// How a disrupted node's pods are moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// Evict every pod at once (Karpenter's terminator), PDBs respected.
    EvictAll,
    /// Idle consumers at once, busy ones when idle or after `deadline`.
    IdleFirst { deadline: Duration },
}

/// A scale-in that does not wait out the scale-down window once a burst is over.
///
/// The window rides out the dips of a backlog that is being worked: a queue with work keeps
/// its consumers busy, and the count it asks for swings with every poll. After a burst the
/// picture is another: the queue is drained and nearly every consumer idle, poll after poll,
/// and the window holds the burst's replicas — and the nodes they fill — for its whole length
/// (after a dump of 40,000 messages, ~65 nodes for 60 s). When every backlog trigger has held
/// at most `busy_share` of the replicas' worth of messages (waiting or in flight), and at most
/// that share of the consumers were busy, at every poll for `after`, the count goes straight
/// to `headroom` × what is left (the busy consumers, the messages), and never below the HPA's
/// own recommendation or `minReplicaCount`. The headroom keeps room for the load that
/// continues (a crowd's tail); idle-only scale-in still stops idle consumers only.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DrainedScaleIn {
    pub after: Duration,
    pub busy_share: f64,
    pub headroom: f64,
}

/// The rules one engine decides by.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub name: PolicyName,
    pub cadence: Cadence,
    /// Hand scale-outs to the provisioner as replica intents in the same step.
    pub joint: bool,
    pub scale_in: ScaleIn,
    pub drain: Drain,
    /// Karpenter's pending-pod batch: closes `batch_idle` after the last new pod or
    /// `batch_max` after the first.
    pub batch_idle: Duration,
    pub batch_max: Duration,
    /// A disruption pass at least this often.
    pub disruption_poll: Duration,
    /// A disruption command waits this long, then is validated against the cluster as it is.
    pub validation_delay: Duration,
    /// A replacement that is not initialized within this long gives its command up.
    pub replacement_timeout: Duration,
    /// A drain still unfinished after this long is given up (candidates uncordoned).
    pub drain_timeout: Duration,
    /// No consolidation while pods are pending or nodes are launching.
    pub gate_consolidation_on_scale_out: bool,
    /// No consolidation of nodes that hold pods until the replica counts have not changed for
    /// this long: nodes are judged once the pods that will stay on them are known, not halfway
    /// through a scale-in (a replacement launched for pods about to go is churn). Empty nodes
    /// are not held by it.
    pub consolidation_settle: Duration,
    /// Skip consolidation while nothing changed since a pass found nothing (Karpenter's
    /// consolidated state), for at most this long.
    pub consolidated_ttl: Duration,
    pub disruption: DisruptionOptions,
    /// An announced-replica intent is planned against for at most this long (then the pods
    /// it announced exist or never will).
    pub intent_ttl: Duration,
    /// Replicas from the true arrival rate (the oracle); needs a substrate that knows it.
    pub perfect_knowledge: bool,
    /// Nodes are Ready at launch (the oracle's lower bound); the simulator honours it.
    pub instant_boot: bool,
    /// The scale-up rules used when the ScaledObject sets no `behavior.scaleUp` (`None`: the
    /// HPA's defaults).
    pub scale_up_default: Option<hpa::Rules>,
    /// The scale-down rules used when the ScaledObject sets no `behavior.scaleDown`.
    pub scale_down_default: Option<hpa::Rules>,
    /// Read the triggers at least this often (`Combined` cadence), even when the
    /// `pollingInterval` is longer: upstream's HPA reads them every 15 s whatever it says.
    pub poll_at_most: Option<Duration>,
    /// The same for a ScaledObject whose triggers are all backlogs
    /// (`autoscale::TriggerSpec::backlog`); takes the place of `poll_at_most` there.
    pub poll_backlog_at_most: Option<Duration>,
    /// Hold scale-outs while at least half of the target's consumers are crash-looping and
    /// none is at work ([`crate::scale`]): more replicas of a consumer that crashes on
    /// everything only crash too.
    pub hold_scale_out_on_crash_loop: bool,
    /// Honour a ScaledObject's `autoscaling.kedge.dev/latency-objective`: the backlog one
    /// replica may hold follows from the objective and the consumers' measured cost of a
    /// message ([`crate::scale`]).
    pub latency_objectives: bool,
    /// Scale in without waiting out the scale-down window once a burst is over (only where
    /// the ScaledObject sets no `behavior.scaleDown` and every trigger is a backlog).
    pub drained_scale_in: Option<DrainedScaleIn>,
}

impl Policy {
    pub fn preset(name: PolicyName) -> Policy {
        let upstream_disruption = DisruptionOptions {
            // Karpenter replaces only with something strictly cheaper, no margin.
            min_savings_fraction: 0.0,
            ..DisruptionOptions::default()
        };
        let base = Policy {
            name,
            cadence: Cadence::Upstream {
                hpa_sync: Duration::from_secs(15),
            },
            joint: false,
            scale_in: ScaleIn::ReplicaSet,
            drain: Drain::EvictAll,
            batch_idle: Duration::from_secs(1),
            batch_max: Duration::from_secs(10),
            disruption_poll: Duration::from_secs(10),
            validation_delay: Duration::from_secs(15),
            replacement_timeout: Duration::from_secs(600),
            drain_timeout: Duration::from_secs(600),
            gate_consolidation_on_scale_out: false,
            consolidation_settle: Duration::ZERO,
            consolidated_ttl: Duration::from_secs(300),
            disruption: upstream_disruption,
            intent_ttl: Duration::from_secs(60),
            perfect_knowledge: false,
            instant_boot: false,
            scale_up_default: None,
            scale_down_default: None,
            poll_at_most: None,
            poll_backlog_at_most: None,
            hold_scale_out_on_crash_loop: false,
            latency_objectives: false,
            drained_scale_in: None,
        };
        let kedge_up = Some(hpa::Rules {
            window_secs: 0,
            select: SelectPolicy::Max,
            policies: vec![hpa::Policy {
                kind: PolicyType::Percent,
                value: KEDGE_SCALE_UP_PERCENT,
                period_secs: 15,
            }],
            tolerance: hpa::DEFAULT_TOLERANCE,
        });
        let kedge_down = Some(hpa::Rules {
            window_secs: KEDGE_SCALE_DOWN_WINDOW_SECS,
            ..hpa::Rules::default_down()
        });
        match name {
            PolicyName::KedaKarpenter => base,
            PolicyName::Kedge => Policy {
                cadence: Cadence::Combined,
                joint: true,
                scale_in: ScaleIn::IdleOnly {
                    deadline: Duration::from_secs(600),
                },
                drain: Drain::IdleFirst {
                    deadline: Duration::from_secs(600),
                },
                gate_consolidation_on_scale_out: true,
                consolidation_settle: Duration::from_secs(20),
                disruption: DisruptionOptions {
                    empty_outside_default_budget: true,
                    ..DisruptionOptions::default()
                },
                scale_up_default: kedge_up.clone(),
                scale_down_default: kedge_down.clone(),
                poll_at_most: Some(KEDGE_POLL_AT_MOST),
                poll_backlog_at_most: Some(KEDGE_POLL_BACKLOG_AT_MOST),
                hold_scale_out_on_crash_loop: true,
                latency_objectives: true,
                drained_scale_in: Some(DrainedScaleIn {
                    after: KEDGE_DRAINED_AFTER,
                    busy_share: 0.5,
                    headroom: 4.0,
                }),
                ..base
            },
            PolicyName::Oracle => Policy {
                cadence: Cadence::Combined,
                joint: true,
                scale_in: ScaleIn::IdleOnly {
                    deadline: Duration::from_secs(600),
                },
                drain: Drain::IdleFirst {
                    deadline: Duration::from_secs(600),
                },
                gate_consolidation_on_scale_out: true,
                consolidation_settle: Duration::from_secs(20),
                disruption: DisruptionOptions {
                    empty_outside_default_budget: true,
                    ..DisruptionOptions::default()
                },
                perfect_knowledge: true,
                instant_boot: true,
                scale_up_default: kedge_up,
                scale_down_default: kedge_down,
                poll_at_most: Some(KEDGE_POLL_AT_MOST),
                ..base
            },
        }
    }

    /// The ScaledObject's configuration as this policy runs it: the policy's scale-up and
    /// scale-down rules where the user set none (explicit `behavior` always wins).
    pub fn configure(&self, cfg: &mut autoscale::Config) {
        let (up_set, down_set) = cfg.behavior_set;
        if let (false, Some(r)) = (up_set, &self.scale_up_default) {
            cfg.behavior.up = r.clone();
        }
        if let (false, Some(r)) = (down_set, &self.scale_down_default) {
            cfg.behavior.down = r.clone();
        }
    }

    /// How often the scale loop can wake at most (the finest cadence it runs at), for the
    /// substrates' progress estimates.
    pub fn describe(&self) -> String {
        let cadence = match self.cadence {
            Cadence::Upstream { hpa_sync } => format!(
                "KEDA polls for 0↔1, HPA syncs every {}s for 1↔N",
                hpa_sync.as_secs()
            ),
            Cadence::Combined => "one step per polling interval".into(),
        };
        format!(
            "{}: {cadence}; joint decisions {}; scale-in {}; drain {}",
            self.name,
            if self.joint { "on" } else { "off" },
            match self.scale_in {
                ScaleIn::ReplicaSet => "by ReplicaSet ranking",
                ScaleIn::IdleOnly { .. } => "idle consumers only",
            },
            match self.drain {
                Drain::EvictAll => "evicts all pods",
                Drain::IdleFirst { .. } => "idle consumers first",
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_say_what_is_allowed() {
        for n in PolicyName::ALL {
            assert_eq!(n.as_str().parse::<PolicyName>(), Ok(n));
            assert_eq!(Policy::preset(n).name, n);
        }
        let e = "karpenter".parse::<PolicyName>().unwrap_err();
        assert!(
            e.to_string().contains("keda-karpenter, kedge or oracle"),
            "{e}"
        );
    }

    #[test]
    fn the_baseline_keeps_upstreams_defaults() {
        let p = Policy::preset(PolicyName::KedaKarpenter);
        assert_eq!(
            p.cadence,
            Cadence::Upstream {
                hpa_sync: Duration::from_secs(15)
            }
        );
        assert!(!p.joint);
        assert_eq!(p.scale_in, ScaleIn::ReplicaSet);
        assert_eq!(p.drain, Drain::EvictAll);
        assert_eq!(
            (p.batch_idle, p.batch_max),
            (Duration::from_secs(1), Duration::from_secs(10))
        );
        assert_eq!(p.validation_delay, Duration::from_secs(15));
        assert_eq!(p.disruption.min_savings_fraction, 0.0);
        assert!(!p.gate_consolidation_on_scale_out);
        assert_eq!(p.consolidation_settle, Duration::ZERO);
        assert!(!p.instant_boot && !p.perfect_knowledge);
    }
}
