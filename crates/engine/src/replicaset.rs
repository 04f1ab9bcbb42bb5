//! Which consumers go on scale-in.
//!
//! - [`victims`]: the ReplicaSet controller's choice (`getPodsToDelete` with
//!   `controller.ActivePodsWithRanks`, kubernetes/pkg/controller/controller_utils.go): it knows
//!   nothing of busy consumers. Substrates that play the ReplicaSet (the simulator, the twin)
//!   call it whenever a workload has more pods than replicas, so both policies meet the same
//!   ReplicaSet; kedge's choice reaches it as a lower deletion cost on its victims.
//! - [`idle_victims`]: kedge's choice: idle consumers only, pending ones first, then those on
//!   the emptiest NodePool nodes so nodes empty out.

use std::collections::HashMap;

use clock::Timestamp;

/// A pod's phase, as the ReplicaSet ranks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum PodPhase {
    Pending,
    Unknown,
    Running,
}

/// One pod of a scale target.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerPod {
    /// `namespace/name`.
    pub name: String,
    /// The node it is bound to.
    pub node: Option<String>,
    pub phase: PodPhase,
    pub ready: bool,
    /// Working on a message (kedge's `kedge.dev/busy` annotation or status file).
    pub busy: bool,
    pub created: Timestamp,
    /// `controller.kubernetes.io/pod-deletion-cost`.
    pub deletion_cost: i32,
    /// Its consumer crashes soon after it starts and waits out the kubelet's restart back-off
    /// (see [`crash_looping`]).
    pub crash_looping: bool,
    /// What one message costs this consumer, as it measured: its mean work time per message
    /// divided by the messages it works on at once (`kedge.dev/work-time` and
    /// `kedge.dev/concurrency`, or the status file). `None` until it reports one.
    pub per_message: Option<std::time::Duration>,
}

/// A consumer whose last run ended in a crash sooner than this after it started does no
/// useful work between its restarts (one that crashes now and then on a poison message, after
/// working for a while, does).
pub const CRASH_LOOP_RUN: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether a consumer counts as crash-looping. `back_off` is what a substrate observes:
/// `Some(last run)` while the consumer waits out the kubelet's restart back-off
/// (`CrashLoopBackOff`) after a run that long; it crash-loops when that run was shorter than
/// [`CRASH_LOOP_RUN`]. (The operator reads it from the container's `state.waiting.reason` and
/// `lastState.terminated` times, the simulator and the twin from their consumers.)
pub fn crash_looping(back_off: Option<std::time::Duration>) -> bool {
    back_off.is_some_and(|last_run| last_run < CRASH_LOOP_RUN)
}

/// The ReplicaSet's `n` victims, in order. Ranked as `ActivePodsWithRanks.Less`: unassigned
/// first, then Pending < Unknown < Running, not ready before ready, lower deletion cost, more
/// pods of the set on the same node, newer first (creation time; the readiness-time and
/// restart-count keys are equal for consumers that never restart), then by name.
pub fn victims(pods: &[ConsumerPod], n: usize) -> Vec<String> {
    let mut per_node: HashMap<&str, u32> = HashMap::new();
    for p in pods {
        if let Some(node) = &p.node {
            *per_node.entry(node.as_str()).or_default() += 1;
        }
    }
    let mut ranked: Vec<&ConsumerPod> = pods.iter().collect();
    ranked.sort_by(|a, b| {
        let colocated = |p: &ConsumerPod| p.node.as_deref().map_or(0, |n| per_node[n]);
        a.node
            .is_some()
            .cmp(&b.node.is_some())
            .then(a.phase.cmp(&b.phase))
            .then(a.ready.cmp(&b.ready))
            .then(a.deletion_cost.cmp(&b.deletion_cost))
            .then(colocated(b).cmp(&colocated(a)))
            .then(b.created.cmp(&a.created))
            .then(a.name.cmp(&b.name))
    });
    ranked.into_iter().take(n).map(|p| p.name.clone()).collect()
}

/// The pods whose mark must change before the count drops: victims without the mark get it
/// (`Some(cost)`), other pods with the mark lose it (`None`), in the victims' order, then by
/// name. `pods` and `victims` name pods `namespace/name`.
pub fn mark_changes(pods: &[ConsumerPod], victims: &[String]) -> Vec<(String, Option<i32>)> {
    let mut out = Vec::new();
    for v in victims {
        let marked = pods
            .iter()
            .any(|p| p.name == *v && p.deletion_cost == VICTIM_DELETION_COST);
        if !marked {
            out.push((v.clone(), Some(VICTIM_DELETION_COST)));
        }
    }
    let mut stale: Vec<(String, Option<i32>)> = pods
        .iter()
        .filter(|p| p.deletion_cost == VICTIM_DELETION_COST && !victims.contains(&p.name))
        .map(|p| (p.name.clone(), None))
        .collect();
    stale.sort();
    // Stale marks go first: at no moment does a non-victim look like one.
    stale.extend(out);
    stale
}

/// kedge's `n` victims among idle consumers (or any, with `force`): not yet running first,
/// then crash-looping ones (they process nothing), then the pods on nodes holding the fewest
/// of the set (those nodes empty out), newer first.
pub fn idle_victims(pods: &[ConsumerPod], n: usize, force: bool) -> Vec<String> {
    let mut per_node: HashMap<&str, u32> = HashMap::new();
    for p in pods {
        if let Some(node) = &p.node {
            *per_node.entry(node.as_str()).or_default() += 1;
        }
    }
    let mut ranked: Vec<&ConsumerPod> = pods
        .iter()
        .filter(|p| force || !p.busy || p.phase != PodPhase::Running)
        .collect();
    ranked.sort_by(|a, b| {
        let started = |p: &ConsumerPod| p.phase == PodPhase::Running && p.node.is_some();
        let colocated = |p: &ConsumerPod| p.node.as_deref().map_or(0, |n| per_node[n]);
        started(a)
            .cmp(&started(b))
            .then(b.crash_looping.cmp(&a.crash_looping))
            .then(a.busy.cmp(&b.busy))
            .then(colocated(a).cmp(&colocated(b)))
            .then(b.created.cmp(&a.created))
            .then(a.name.cmp(&b.name))
    });
    ranked.into_iter().take(n).map(|p| p.name.clone()).collect()
}

/// The deletion cost kedge gives the consumers it chose (lower than any a user sets in
/// practice; the ReplicaSet deletes the lowest first).
pub const VICTIM_DELETION_COST: i32 = i32::MIN;

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, node: Option<&str>, phase: PodPhase, busy: bool, created: u64) -> ConsumerPod {
        ConsumerPod {
            name: name.into(),
            node: node.map(Into::into),
            phase,
            ready: phase == PodPhase::Running,
            busy,
            created: Timestamp::from_secs(created),
            deletion_cost: 0,
            crash_looping: false,
            per_message: None,
        }
    }

    #[test]
    fn the_replicaset_takes_unscheduled_then_colocated_then_newest_regardless_of_busy() {
        let pods = [
            p("a", Some("n1"), PodPhase::Running, false, 1),
            p("b", Some("n1"), PodPhase::Running, true, 2),
            p("c", Some("n2"), PodPhase::Running, false, 3),
            p("d", None, PodPhase::Pending, false, 0),
        ];
        assert_eq!(victims(&pods, 3), ["d", "b", "a"]);
        let mut marked = pods.clone();
        marked[2].deletion_cost = VICTIM_DELETION_COST;
        assert_eq!(victims(&marked, 2), ["d", "c"]);
    }

    #[test]
    fn kedge_takes_only_idle_consumers_emptiest_nodes_first() {
        let pods = [
            p("a", Some("n1"), PodPhase::Running, false, 1),
            p("b", Some("n1"), PodPhase::Running, true, 2),
            p("c", Some("n2"), PodPhase::Running, false, 3),
            p("d", None, PodPhase::Pending, false, 0),
        ];
        assert_eq!(idle_victims(&pods, 4, false), ["d", "c", "a"]);
        assert_eq!(idle_victims(&pods, 4, true), ["d", "c", "a", "b"]);
        // A crash-looping consumer processes nothing: it goes before healthy idle ones.
        let mut crashing = pods.clone();
        crashing[0].crash_looping = true;
        assert_eq!(idle_victims(&crashing, 2, false), ["d", "a"]);
    }
}
