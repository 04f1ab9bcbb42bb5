//! The disruption command lifecycle, as Karpenter's disruption controller and orchestration
//! queue run it, in one place for every substrate.
//!
//! One command at a time. Each step looks at the cluster as observed and moves the command
//! through its [`Phase`]s, returning what to do as [`Action`]s:
//!
//! ```text
//!  Idle ──pass finds a command──▶ Validating ──delay over, still valid──▶ Replacing ──claim initialized──▶ Draining ──all candidates empty──▶ Idle
//!   ▲                               │ no longer valid                       │ timeout / claim gone              │ timeout: uncordon
//!   └───────────────────────────────┴───────────────────────────────────────┴───────────────────────────────────┘
//! ```
//!
//! - **Idle**: a pass runs every `disruption_poll` (and at once after a command ends). The
//!   policy may hold consolidation while a scale-out is under way; a pass that found nothing
//!   is not repeated while the cluster is unchanged (Karpenter's consolidated state, at most
//!   `consolidated_ttl`). Nodes the core could not consider get a `DisruptionBlocked` event;
//!   a `karpenter.sh/disrupted` taint left on a node without a command (a restart mid-command)
//!   is taken off.
//! - **Validating**: the command waits `validation_delay`, then [`validate`] re-checks it
//!   against the cluster as it is then; a command that no longer holds is dropped.
//! - **Replacing** (replace only): the replacement claim is launched first; the candidates are
//!   untouched until it is initialized.
//! - **Draining**: candidates are cordoned; their pods are evicted as the policy's [`Drain`]
//!   says (all at once, or idle consumers first and busy ones when idle or at the deadline);
//!   a candidate with no movable pod left is deleted.

use std::time::Duration;

use clock::Timestamp;
use provision::catalog::Catalog;
use provision::disruption::{Command, DisruptionInput, Method, disrupt, validate};

use crate::cluster::{Cluster, pod_key};
use crate::event::{ObjectRef, Recorder, Topic};
use crate::policy::{Drain, Policy};
use crate::provisioning::{Launch, LaunchReason, Namer};

/// What the lifecycle asks the substrate to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create the replacement claim.
    Launch(Launch),
    /// Taint the node `karpenter.sh/disrupted:NoSchedule`: nothing new lands there.
    Cordon { node: String },
    /// Take the taint off again (command given up, or left over from a restart).
    Uncordon { node: String },
    /// Evict these pods (`namespace/name`) of `node` now (PDBs respected by the substrate).
    Evict { node: String, pods: Vec<String> },
    /// The node has no movable pod left: delete its claim (and so the node).
    Delete { node: String, claim: Option<String> },
}

/// Where the current command is.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// No command; the next pass is due at `next_pass`.
    Idle,
    /// Proposed at `since`; validated again once the delay has passed.
    Validating { cmd: Command, since: Timestamp },
    /// The replacement `claim` was launched at `since`; `seen` once it showed up.
    Replacing {
        cmd: Command,
        claim: String,
        since: Timestamp,
        seen: bool,
    },
    /// Candidates cordoned at `since`, being emptied.
    Draining { cmd: Command, since: Timestamp },
}

/// The disruption controller's memory between steps.
#[derive(Debug, Clone)]
pub struct Disruptor {
    phase: Phase,
    next_pass: Timestamp,
    /// (fingerprint, when) of the last pass that found nothing.
    consolidated: Option<(u64, Timestamp)>,
    /// The last step.
    last: Timestamp,
}

/// How often a replacement or a drain in progress is looked at without a cluster change.
const FOLLOW: Duration = Duration::from_secs(1);

impl Disruptor {
    pub fn new(now: Timestamp) -> Disruptor {
        Disruptor {
            phase: Phase::Idle,
            next_pass: now,
            consolidated: None,
            last: now,
        }
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// When the lifecycle wants to be stepped again.
    pub fn next_wake(&self, policy: &Policy) -> Timestamp {
        match &self.phase {
            Phase::Idle => self.next_pass,
            Phase::Validating { since, .. } => since.add(policy.validation_delay),
            // Replacing and draining follow the cluster: step again on its changes, and at least
            // every second.
            Phase::Replacing { .. } | Phase::Draining { .. } => self.last.add(FOLLOW),
        }
    }

    /// Whether a step at `now` runs the core's simulation (a pass is due, or a command's
    /// validation): only then does it read the PodDisruptionBudgets, so a substrate that has
    /// to fetch them fetches them only then.
    pub fn simulates(&self, now: Timestamp, policy: &Policy) -> bool {
        match &self.phase {
            // A pass runs during a settle too: empty nodes are not held by it.
            Phase::Idle => now >= self.next_pass,
            Phase::Validating { since, .. } => now >= since.add(policy.validation_delay),
            Phase::Replacing { .. } | Phase::Draining { .. } => false,
        }
    }

    /// The substrate could not create claim `name` (refused, invalid): a command waiting for
    /// it as its replacement is given up at once instead of after the replacement timeout.
    pub fn launch_failed(&mut self, now: Timestamp, name: &str, why: &str, rec: &mut Recorder) {
        let Phase::Replacing { cmd, claim, .. } = &self.phase else {
            return;
        };
        if claim != name {
            return;
        }
        let line = format!(
            "replacement {claim} could not be created ({why}); {:?} command for {} given up",
            cmd.kind,
            cmd.candidates.join(", ")
        );
        for node in &cmd.candidates {
            rec.warn(
                now,
                Topic::Disrupt,
                ObjectRef::cluster("Node", node),
                "DisruptionBlocked",
                line.clone(),
            );
        }
        self.phase = Phase::Idle;
        self.next_pass = now;
    }

    /// One step at `now`; `last_scale` is when a replica count last changed.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        now: Timestamp,
        cluster: &mut Cluster,
        catalog: &Catalog,
        policy: &Policy,
        last_scale: Option<Timestamp>,
        namer: &mut Namer,
        rec: &mut Recorder,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        self.last = now;
        let phase = std::mem::replace(&mut self.phase, Phase::Idle);
        self.phase = match phase {
            Phase::Idle => self.idle(now, cluster, catalog, policy, last_scale, rec, &mut out),
            Phase::Validating { cmd, since } => {
                if now < since.add(policy.validation_delay) {
                    Phase::Validating { cmd, since }
                } else {
                    self.validating(now, cluster, catalog, policy, namer, rec, cmd, &mut out)
                }
            }
            Phase::Replacing {
                cmd,
                claim,
                since,
                seen,
            } => self.replacing(now, cluster, policy, rec, cmd, claim, since, seen, &mut out),
            Phase::Draining { cmd, since } => {
                self.draining(now, cluster, policy, rec, cmd, since, &mut out)
            }
        };
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn idle(
        &mut self,
        now: Timestamp,
        cluster: &mut Cluster,
        catalog: &Catalog,
        policy: &Policy,
        last_scale: Option<Timestamp>,
        rec: &mut Recorder,
        out: &mut Vec<Action>,
    ) -> Phase {
        // A taint of ours on a node whose claim is not going away, with no command running, is
        // left over from a restart mid-command.
        for (n, i) in cluster.nodes.iter().zip(&cluster.info) {
            if i.disrupted_taint && i.claim.is_some() && !i.deleting {
                out.push(Action::Uncordon {
                    node: n.name.clone(),
                });
            }
        }
        if now < self.next_pass {
            return Phase::Idle;
        }
        self.next_pass = now.add(policy.disruption_poll);
        // While a scale settles (the replica counts changed less than `consolidation_settle`
        // ago) only empty nodes are taken: a node with no pods left is not judged halfway
        // through a scale-in, so holding it only costs money. Look again at the next poll or
        // when the settle ends, whichever is first.
        let settle_end = last_scale
            .filter(|_| !policy.consolidation_settle.is_zero())
            .map(|t| t.add(policy.consolidation_settle))
            .filter(|end| now < *end);
        if let Some(end) = settle_end {
            self.next_pass = self.next_pass.min(end);
        }
        if policy.gate_consolidation_on_scale_out && cluster.scaling_out() {
            return Phase::Idle;
        }
        let fp = cluster.fingerprint(now.as_millis());
        if let Some((f, at)) = self.consolidated
            && f == fp
            && now.since(at) < policy.consolidated_ttl
        {
            return Phase::Idle;
        }
        let d = with_input(cluster, |input| {
            disrupt(catalog, input, now, policy.disruption)
        });
        for s in &d.skipped {
            let msg = format!("Cannot disrupt Node: {}", s.why);
            for obj in refs(cluster, &s.node) {
                rec.record(now, Topic::Disrupt, obj, "DisruptionBlocked", msg.clone());
            }
        }
        let found = !d.commands.is_empty();
        let next = if settle_end.is_some() {
            d.commands
                .into_iter()
                .find(|c| c.kind == provision::DisruptionKind::Empty)
        } else {
            d.commands.into_iter().next()
        };
        let Some(cmd) = next else {
            // "Consolidated" only when the pass found nothing at all, not when the settle
            // held a command back.
            if !found {
                self.consolidated = Some((fp, now));
            }
            return Phase::Idle;
        };
        self.consolidated = None;
        for node in &cmd.candidates {
            for obj in refs(cluster, node) {
                rec.record(
                    now,
                    Topic::Disrupt,
                    obj,
                    "DisruptionQueued",
                    format!(
                        "{:?}/{}: {} (validated again in {}s)",
                        cmd.kind,
                        method_name(&cmd.method),
                        cmd.explanation,
                        policy.validation_delay.as_secs()
                    ),
                );
            }
        }
        Phase::Validating { cmd, since: now }
    }

    #[allow(clippy::too_many_arguments)]
    fn validating(
        &mut self,
        now: Timestamp,
        cluster: &mut Cluster,
        catalog: &Catalog,
        policy: &Policy,
        namer: &mut Namer,
        rec: &mut Recorder,
        cmd: Command,
        out: &mut Vec<Action>,
    ) -> Phase {
        if let Err(why) = with_input(cluster, |input| {
            validate(catalog, input, now, policy.disruption, &cmd)
        }) {
            let line = format!(
                "{:?} command for {} dropped at validation: {why}",
                cmd.kind,
                cmd.candidates.join(", ")
            );
            for node in &cmd.candidates {
                for obj in refs(cluster, node) {
                    rec.record(
                        now,
                        Topic::Disrupt,
                        obj,
                        "DisruptionValidationFailed",
                        line.clone(),
                    );
                }
            }
            self.next_pass = now;
            return Phase::Idle;
        }
        for node in &cmd.candidates {
            for obj in refs(cluster, node) {
                rec.record(
                    now,
                    Topic::Disrupt,
                    obj,
                    "Disrupting",
                    format!(
                        "Disrupting Node: {:?}/{}: {}",
                        cmd.kind,
                        method_name(&cmd.method),
                        cmd.explanation
                    ),
                );
            }
        }
        if let Method::Replace(planned) = &cmd.method {
            if !cluster
                .nodepools
                .iter()
                .any(|p| p.name() == planned.nodepool)
            {
                self.next_pass = now;
                return Phase::Idle;
            }
            let name = namer.name(&planned.nodepool);
            rec.record(
                now,
                Topic::Provision,
                ObjectRef::cluster("NodeClaim", &name),
                "Launched",
                format!(
                    "launch {name} (replacement for {}): {}",
                    cmd.candidates.join(", "),
                    planned
                        .options
                        .first()
                        .map(|o| format!(
                            "{} {} ${:.4}/h",
                            o.instance_type, o.capacity_type, o.price
                        ))
                        .unwrap_or_default()
                ),
            );
            out.push(Action::Launch(Launch {
                name: name.clone(),
                reason: LaunchReason::Replacement,
                claim: (**planned).clone(),
            }));
            return Phase::Replacing {
                cmd,
                claim: name,
                since: now,
                seen: false,
            };
        }
        self.start_drain(now, cluster, policy, rec, cmd, out)
    }

    fn start_drain(
        &mut self,
        now: Timestamp,
        cluster: &mut Cluster,
        policy: &Policy,
        rec: &mut Recorder,
        cmd: Command,
        out: &mut Vec<Action>,
    ) -> Phase {
        for node in &cmd.candidates {
            out.push(Action::Cordon { node: node.clone() });
        }
        self.draining(now, cluster, policy, rec, cmd, now, out)
    }

    #[allow(clippy::too_many_arguments)]
    fn replacing(
        &mut self,
        now: Timestamp,
        cluster: &mut Cluster,
        policy: &Policy,
        rec: &mut Recorder,
        cmd: Command,
        claim: String,
        since: Timestamp,
        seen: bool,
        out: &mut Vec<Action>,
    ) -> Phase {
        let found = cluster.claim(&claim).map(|i| &cluster.info[i]);
        match found {
            Some(i) if i.initialized && !i.deleting => {
                rec.record(
                    now,
                    Topic::Disrupt,
                    ObjectRef::cluster("NodeClaim", &claim),
                    "ReplacementReady",
                    format!(
                        "replacement {claim} initialized; draining {}",
                        cmd.candidates.join(", ")
                    ),
                );
                self.start_drain(now, cluster, policy, rec, cmd, out)
            }
            Some(i) if !i.deleting && now.since(since) < policy.replacement_timeout => {
                Phase::Replacing {
                    cmd,
                    claim,
                    since,
                    seen: true,
                }
            }
            None if !seen && now.since(since) < policy.replacement_timeout => Phase::Replacing {
                cmd,
                claim,
                since,
                seen,
            },
            _ => {
                let line = format!(
                    "replacement {claim} did not initialize within {}s (or was deleted); {:?} command for {} given up",
                    policy.replacement_timeout.as_secs(),
                    cmd.kind,
                    cmd.candidates.join(", ")
                );
                for node in &cmd.candidates {
                    for obj in refs(cluster, node) {
                        rec.warn(now, Topic::Disrupt, obj, "DisruptionBlocked", line.clone());
                    }
                }
                self.next_pass = now;
                Phase::Idle
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn draining(
        &mut self,
        now: Timestamp,
        cluster: &mut Cluster,
        policy: &Policy,
        rec: &mut Recorder,
        mut cmd: Command,
        since: Timestamp,
        out: &mut Vec<Action>,
    ) -> Phase {
        if now.since(since) >= policy.drain_timeout {
            let line = format!(
                "{:?} command for {} given up: still not drained after {}s; uncordoned",
                cmd.kind,
                cmd.candidates.join(", "),
                policy.drain_timeout.as_secs()
            );
            for node in &cmd.candidates {
                out.push(Action::Uncordon { node: node.clone() });
                for obj in refs(cluster, node) {
                    rec.warn(now, Topic::Disrupt, obj, "DisruptionBlocked", line.clone());
                }
            }
            self.next_pass = now;
            return Phase::Idle;
        }
        let mut left = Vec::new();
        for node in std::mem::take(&mut cmd.candidates) {
            let Some(i) = cluster.node(&node) else {
                // Gone already.
                continue;
            };
            let (n, info) = (&cluster.nodes[i], &cluster.info[i]);
            if info.deleting {
                continue;
            }
            if n.pods.is_empty() {
                rec.record(
                    now,
                    Topic::Disrupt,
                    ObjectRef::cluster("Node", &node),
                    "DisruptionTerminating",
                    format!("node {node} drained; deleting it ({:?})", cmd.kind),
                );
                out.push(Action::Delete {
                    node: node.clone(),
                    claim: info.claim.clone(),
                });
                continue;
            }
            let deadline_passed = match policy.drain {
                Drain::EvictAll => true,
                Drain::IdleFirst { deadline } => now.since(since) >= deadline,
            };
            // As Karpenter's terminator: a `do-not-disrupt` pod is never evicted (it holds the
            // node until the drain times out), and critical pods go only once every other pod
            // is gone (they may serve the others: DNS, CNI, logging) — a do-not-disrupt pod,
            // which stays, does not hold them back.
            let others_left = n
                .pods
                .iter()
                .any(|p| !is_critical(p) && !p.do_not_disrupt());
            let mut evict = Vec::new();
            for (p, f) in n.pods.iter().zip(&info.pods) {
                if f.terminating || (f.busy && !deadline_passed) {
                    continue;
                }
                if p.do_not_disrupt() {
                    let key = pod_key(p);
                    for obj in refs(cluster, &node) {
                        rec.record(
                            now,
                            Topic::Disrupt,
                            obj,
                            "DisruptionBlocked",
                            format!(
                                "Draining: pod {key} has {} and is not evicted",
                                model::kube::DO_NOT_DISRUPT
                            ),
                        );
                    }
                    continue;
                }
                if is_critical(p) && others_left {
                    continue;
                }
                evict.push(pod_key(p));
            }
            if !evict.is_empty() {
                out.push(Action::Evict {
                    node: node.clone(),
                    pods: evict,
                });
            }
            left.push(node);
        }
        if left.is_empty() {
            self.next_pass = now;
            return Phase::Idle;
        }
        cmd.candidates = left;
        Phase::Draining { cmd, since }
    }
}

/// `system-cluster-critical` (2,000,000,000) and `system-node-critical` (2,000,001,000): the
/// priority the API server's admission gives pods of those classes.
const CRITICAL_PRIORITY: i32 = 2_000_000_000;

fn is_critical(p: &model::kube::Pod) -> bool {
    p.priority() >= CRITICAL_PRIORITY
}

fn method_name(m: &Method) -> &'static str {
    match m {
        Method::Delete => "Delete",
        Method::Replace(_) => "Replace",
    }
}

/// The node and (if any) its claim, for events about a candidate.
fn refs(cluster: &Cluster, node: &str) -> Vec<ObjectRef> {
    let mut v = vec![ObjectRef::cluster("Node", node)];
    if let Some(c) = cluster
        .node(node)
        .and_then(|i| cluster.info[i].claim.clone())
    {
        v.push(ObjectRef::cluster("NodeClaim", c));
    }
    v
}

/// Lend the cluster to the core as a [`DisruptionInput`] without copying it.
fn with_input<T>(cluster: &mut Cluster, f: impl FnOnce(&DisruptionInput) -> T) -> T {
    let input = DisruptionInput {
        nodepools: std::mem::take(&mut cluster.nodepools),
        daemonsets: std::mem::take(&mut cluster.daemonsets),
        nodes: std::mem::take(&mut cluster.nodes),
        pdbs: std::mem::take(&mut cluster.pdbs),
    };
    let r = f(&input);
    cluster.nodepools = input.nodepools;
    cluster.daemonsets = input.daemonsets;
    cluster.nodes = input.nodes;
    cluster.pdbs = input.pdbs;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{NodeInfo, PodFlags};
    use crate::policy::PolicyName;
    use model::kube::Pod;
    use provision::DisruptionKind;
    use provision::resources::Res;
    use provision::scheduler::ExistingNode;

    fn pod(name: &str) -> Pod {
        let mut p = Pod::with_requests(name, "100m".parse().unwrap(), "64Mi".parse().unwrap());
        p.metadata.namespace = Some("ns".into());
        p
    }

    fn node(name: &str, pods: Vec<Pod>) -> (ExistingNode, NodeInfo) {
        let info = NodeInfo {
            claim: Some(format!("claim-{name}")),
            initialized: true,
            pods: vec![PodFlags::default(); pods.len()],
            ..Default::default()
        };
        let n = ExistingNode {
            name: name.into(),
            labels: Default::default(),
            taints: vec![],
            capacity: Res::new(2000, 8 << 30, 110),
            allocatable: Res::new(2000, 8 << 30, 110),
            pods,
            daemon_overhead: Res::ZERO,
            unschedulable: true,
            in_flight: false,
            price: 0.1,
            created_ms: 0,
            nodepool_hash: None,
            annotations: Default::default(),
            last_pod_event_ms: 0,
        };
        (n, info)
    }

    fn cmd(candidates: &[&str]) -> Command {
        Command {
            kind: DisruptionKind::Underutilized,
            method: Method::Delete,
            candidates: candidates.iter().map(|c| c.to_string()).collect(),
            savings_per_hour: 0.1,
            explanation: "test".into(),
        }
    }

    fn step(d: &mut Disruptor, c: &mut Cluster, now: Timestamp, rec: &mut Recorder) -> Vec<Action> {
        let policy = Policy::preset(PolicyName::KedaKarpenter);
        d.step(
            now,
            c,
            &Catalog::aws(),
            &policy,
            None,
            &mut Namer::new(0),
            rec,
        )
    }

    #[test]
    fn a_drain_leaves_do_not_disrupt_pods_and_evicts_critical_pods_last() {
        let t0 = Timestamp::from_secs(1000);
        let mut dnd = pod("batch");
        dnd.metadata
            .annotations
            .insert(model::kube::DO_NOT_DISRUPT.into(), "true".into());
        let mut dns = pod("coredns");
        dns.spec.priority = Some(CRITICAL_PRIORITY);
        let mut c = Cluster::default();
        let (n, i) = node("n1", vec![pod("web"), dns.clone(), dnd.clone()]);
        c.push_node(n, i);
        let mut d = Disruptor::new(t0);
        d.phase = Phase::Draining {
            cmd: cmd(&["n1"]),
            since: t0,
        };
        let mut rec = Recorder::default();
        let a = step(&mut d, &mut c, t0, &mut rec);
        assert_eq!(
            a,
            [Action::Evict {
                node: "n1".into(),
                pods: vec!["ns/web".into()]
            }],
            "the critical pod waits, the do-not-disrupt pod stays"
        );
        let ev = rec.take();
        assert!(
            ev.iter().any(|e| e.reason == "DisruptionBlocked"
                && e.message
                    .contains("ns/batch has karpenter.sh/do-not-disrupt")),
            "{ev:?}"
        );
        // web is gone: the critical pod goes now; the do-not-disrupt pod keeps the node.
        let (n, i) = node("n1", vec![dns, dnd.clone()]);
        c = Cluster::default();
        c.push_node(n, i);
        let a = step(&mut d, &mut c, t0.add(Duration::from_secs(1)), &mut rec);
        assert_eq!(
            a,
            [Action::Evict {
                node: "n1".into(),
                pods: vec!["ns/coredns".into()]
            }]
        );
        let (n, i) = node("n1", vec![dnd]);
        c = Cluster::default();
        c.push_node(n, i);
        let a = step(&mut d, &mut c, t0.add(Duration::from_secs(2)), &mut rec);
        assert!(a.is_empty(), "{a:?}");
        assert!(matches!(d.phase(), Phase::Draining { .. }));
    }

    #[test]
    fn a_replacement_that_could_not_be_created_gives_its_command_up_at_once() {
        let t0 = Timestamp::from_secs(1000);
        let mut d = Disruptor::new(t0);
        d.phase = Phase::Replacing {
            cmd: cmd(&["n1"]),
            claim: "default-abc".into(),
            since: t0,
            seen: false,
        };
        let mut rec = Recorder::default();
        let later = t0.add(Duration::from_secs(1));
        d.launch_failed(later, "default-other", "forbidden", &mut rec);
        assert!(
            matches!(d.phase(), Phase::Replacing { .. }),
            "another claim"
        );
        d.launch_failed(later, "default-abc", "forbidden", &mut rec);
        assert_eq!(d.phase(), &Phase::Idle);
        let policy = Policy::preset(PolicyName::KedaKarpenter);
        assert!(d.simulates(later, &policy), "the next pass is due at once");
        let kedge = Policy::preset(PolicyName::Kedge);
        assert!(
            d.simulates(later, &kedge),
            "a pass runs while a scale settles (it may take empty nodes)"
        );
        let ev = rec.take();
        assert_eq!(ev.len(), 1);
        assert!(ev[0].message.contains("could not be created (forbidden)"));
    }

    #[test]
    fn the_simulation_runs_only_when_a_pass_or_a_validation_is_due() {
        let t0 = Timestamp::from_secs(1000);
        let policy = Policy::preset(PolicyName::KedaKarpenter);
        let mut d = Disruptor::new(t0);
        assert!(d.simulates(t0, &policy));
        let mut c = Cluster::default();
        let mut rec = Recorder::default();
        assert!(step(&mut d, &mut c, t0, &mut rec).is_empty());
        assert!(!d.simulates(t0.add(Duration::from_secs(9)), &policy));
        assert!(d.simulates(t0.add(policy.disruption_poll), &policy));
        d.phase = Phase::Validating {
            cmd: cmd(&["n1"]),
            since: t0,
        };
        assert!(!d.simulates(t0.add(Duration::from_secs(14)), &policy));
        assert!(d.simulates(t0.add(policy.validation_delay), &policy));
    }
}
