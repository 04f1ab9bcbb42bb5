//! The local twin: virtual nodes, consumer processes, and the control loop that joins the
//! `aws-sqs-queue` scaler, the autoscale core and the provision core.
//!
//! [`LocalCluster::tick`] is one control-loop step at an injected `now`: nodes finish booting,
//! exited processes are reaped, the autoscaler is polled (when its interval is due), the
//! replica count is reconciled (scale-in SIGTERMs idle consumers first and never a busy one),
//! pending pods are placed on Ready nodes with the provision core's scheduler (the
//! kube-scheduler's part), NodeClaims are planned for those that do not fit, and, when
//! nothing is pending, the provision core's disruption pass consolidates (drain, then remove).
//!
//! Capacity is requested two ways, as with Karpenter next to KEDA:
//! - **joint decisions** (`joint: true`): a scale-out is passed to the provision core as a
//!   [`ReplicaIntent`] in the same step as the decision, before the pods exist, so NodeClaims
//!   launch at once;
//! - **pending pods**: pods that stay Pending are batched ([`Batcher`]: 1 s without new pods,
//!   at most 10 s) and then planned. With `joint: false` this is the only path, so capacity
//!   for a scale-out follows one batching window after the pods turned Pending.
//!
//! The substrate holds no policy: every *when* comes from the cores.

pub mod process;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use autoscale::{Autoscaler, Config, Observation, Scaler};
use clock::Timestamp;
use model::karpenter::{
    LABEL_CAPACITY_TYPE, LABEL_HOSTNAME, LABEL_INSTANCE_TYPE, LABEL_NODEPOOL, LABEL_ZONE, NodePool,
};
use model::keda::ScaledObject;
use model::kube::Pod;
use model::quantity::Quantity;
use provision::catalog::Catalog;
use provision::disruption::{DisruptionInput, DisruptionOptions, Method};
use provision::plan::{Batcher, PlannedClaim, ProvisionInput, ReplicaIntent, plan};
use provision::resources::Res;
use provision::scheduler::ExistingNode;
use scalers::ResolvedAuth;
use workload::Status;

pub use process::{ConsumerCommand, PodProcess};

/// Everything that stops the twin from starting or a pod from running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the ScaledObject is not usable: {0}")]
    Config(#[from] autoscale::ConfigError),
    #[error("trigger {index} of the ScaledObject: {source}")]
    Scaler {
        index: usize,
        #[source]
        source: autoscale::ScalerError,
    },
    #[error("instance type {0:?} is not in the catalog")]
    UnknownInstanceType(String),
    #[error("pod {pod}: cannot start the consumer: {source}")]
    Spawn {
        pod: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::Scaler { .. } => "scaler",
            Error::UnknownInstanceType(_) => "instance_type",
            Error::Spawn { .. } => "spawn",
        }
    }
}

/// What the twin runs.
pub struct LocalConfig {
    /// With its trigger metadata already pointing at the embedded endpoint.
    pub scaled_object: ScaledObject,
    pub auth: ResolvedAuth,
    pub nodepools: Vec<NodePool>,
    pub catalog: Catalog,
    /// Instance types of the nodes that exist from the start and never go (a managed node
    /// group outside any NodePool).
    pub baseline: Vec<String>,
    pub pod_cpu: Quantity,
    pub pod_memory: Quantity,
    /// Launch → Ready.
    pub boot_delay: Duration,
    pub consumer: ConsumerCommand,
    /// Status files and consumer logs.
    pub pod_dir: PathBuf,
    /// Request capacity for a scale-out in the same step, as a [`ReplicaIntent`] (else only
    /// once the pods are Pending, after the pending-pod batching window).
    pub joint: bool,
    /// A draining node waits this long for busy consumers to go idle before SIGTERM.
    pub drain_timeout: Duration,
    /// A SIGTERMed consumer gets this long before SIGKILL.
    pub kill_after: Duration,
    /// How often the disruption pass runs.
    pub consolidation_interval: Duration,
}

/// Node life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum NodeState {
    /// Launched, booting: counts as in-flight capacity, billed, runs nothing.
    Launching,
    /// Runs pods.
    Ready,
    /// Cordoned: its pods are being moved; removed once empty.
    Draining,
}

#[derive(Debug, Clone)]
pub struct VirtualNode {
    pub name: String,
    pub instance_type: String,
    pub nodepool: Option<String>,
    pub zone: String,
    pub capacity_type: String,
    pub price: f64,
    pub capacity: Res,
    pub allocatable: Res,
    pub state: NodeState,
    pub launched_at: Timestamp,
    pub ready_at: Timestamp,
    pub drain_started: Option<Timestamp>,
    pub last_pod_event: Timestamp,
    pub nodepool_hash: Option<String>,
}

/// Pod life cycle.
#[derive(Debug)]
pub enum PodPhase {
    /// Not placed (no node with room, or the chosen node still booting).
    Pending,
    /// A process on `node`.
    Running { node: String, proc: PodProcess },
    /// SIGTERM sent at `since`; removed when the process exits.
    Terminating {
        node: String,
        proc: PodProcess,
        since: Timestamp,
    },
}

#[derive(Debug)]
pub struct LocalPod {
    pub name: String,
    pub phase: PodPhase,
}

/// One line of the decision log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DecisionRecord {
    pub at_ms: u64,
    /// `scale`, `provision`, `disrupt`, `node`, `pod`.
    pub kind: &'static str,
    pub text: String,
}

/// Counters the report is built from.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Totals {
    pub nodes_launched: u64,
    pub nodes_removed: u64,
    pub node_seconds: f64,
    pub cost_usd: f64,
    pub max_replicas: u32,
    pub max_pending_pods: u32,
    pub max_nodes: u32,
    /// Consumers that received SIGTERM while busy (drain timeout) or were SIGKILLed while
    /// busy by the twin (never by design; chaos kills are counted separately).
    pub busy_pods_killed: u64,
    pub pods_started: u64,
    pub pods_exited_unexpectedly: u64,
    pub chaos_killed: u64,
    pub first_scale_out_ms: Option<u64>,
    /// The first NodeClaim launch (joint or for pending pods).
    pub first_launch_ms: Option<u64>,
    /// The first launch minus the latest scale-out before it: 0 with joint decisions, at
    /// least the batching window without.
    pub first_launch_after_scale_out_ms: Option<u64>,
}

/// What a status line or a chart sample shows.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Snapshot {
    pub desired: u32,
    pub running: u32,
    pub pending: u32,
    pub terminating: u32,
    pub nodes_ready: u32,
    pub nodes_launching: u32,
    pub nodes_draining: u32,
    /// instance type → (ready, launching, draining).
    pub nodes_by_type: BTreeMap<String, (u32, u32, u32)>,
    pub cost_per_hour: f64,
    pub cost_usd: f64,
    pub last_metric: Option<f64>,
}

const DECISION_RING: usize = 64;

pub struct LocalCluster {
    cfg: LocalConfig,
    autoscaler: Autoscaler,
    scalers: Vec<Box<dyn Scaler>>,
    next_poll: Timestamp,
    desired: u32,
    pub nodes: Vec<VirtualNode>,
    pub pods: Vec<LocalPod>,
    next_pod: u64,
    next_node: u64,
    last_tick: Option<Timestamp>,
    last_consolidation: Timestamp,
    last_metric: Option<f64>,
    /// The replica count the pods were last reconciled to (a rise above it is a scale-out).
    reconciled_desired: u32,
    /// Karpenter's pending-pod batching window.
    batcher: Batcher,
    /// When the replica count last went up.
    last_scale_out: Option<Timestamp>,
    /// The latest decisions (ring buffer).
    pub recent: VecDeque<DecisionRecord>,
    /// Every decision, for the report.
    pub log: Vec<DecisionRecord>,
    pub totals: Totals,
}

fn zero_env(_: &str) -> Option<String> {
    None
}

impl LocalCluster {
    /// Build the twin at `now`: baseline nodes are Ready at once, `min` replicas start Pending.
    pub fn new(cfg: LocalConfig, now: Timestamp) -> Result<LocalCluster, Error> {
        let config = Config::from_scaled_object(&cfg.scaled_object)?;
        let mut scalers = Vec::new();
        for (index, t) in cfg.scaled_object.spec.triggers.iter().enumerate() {
            scalers.push(
                scalers::build_scaler(t, &cfg.auth, &zero_env)
                    .map_err(|source| Error::Scaler { index, source })?,
            );
        }
        let desired = config.min.max(1);
        let mut c = LocalCluster {
            autoscaler: Autoscaler::new(config, now),
            scalers,
            next_poll: now,
            desired,
            nodes: Vec::new(),
            pods: Vec::new(),
            next_pod: 0,
            next_node: 0,
            last_tick: None,
            last_consolidation: now,
            last_metric: None,
            reconciled_desired: desired,
            batcher: Batcher::default(),
            last_scale_out: None,
            recent: VecDeque::new(),
            log: Vec::new(),
            totals: Totals::default(),
            cfg,
        };
        for t in c.cfg.baseline.clone() {
            let it = c
                .cfg
                .catalog
                .get(&t)
                .ok_or_else(|| Error::UnknownInstanceType(t.clone()))?
                .clone();
            let o = it
                .offerings
                .iter()
                .filter(|o| &*o.capacity_type == "on-demand")
                .min_by(|a, b| a.price.total_cmp(&b.price))
                .or(it.offerings.first())
                .cloned();
            let name = format!("baseline-{}", c.next_node);
            c.next_node += 1;
            c.nodes.push(VirtualNode {
                name,
                instance_type: t.clone(),
                nodepool: None,
                zone: o
                    .as_ref()
                    .map_or("us-east-1a".into(), |o| o.zone.to_string()),
                capacity_type: "on-demand".into(),
                price: o.map_or(0.0, |o| o.price),
                capacity: it.capacity,
                allocatable: it.allocatable,
                state: NodeState::Ready,
                launched_at: now,
                ready_at: now,
                drain_started: None,
                last_pod_event: now,
                nodepool_hash: None,
            });
        }
        c.totals.max_nodes = c.nodes.len() as u32;
        for _ in 0..desired {
            c.add_pending();
        }
        Ok(c)
    }

    pub fn config(&self) -> &LocalConfig {
        &self.cfg
    }

    pub fn desired(&self) -> u32 {
        self.desired
    }

    pub fn min_replicas(&self) -> u32 {
        self.autoscaler.config().min
    }

    fn record(&mut self, now: Timestamp, kind: &'static str, text: String) {
        tracing::debug!(kind, "{text}");
        let r = DecisionRecord {
            at_ms: now.as_millis(),
            kind,
            text,
        };
        if self.recent.len() == DECISION_RING {
            self.recent.pop_front();
        }
        self.recent.push_back(r.clone());
        self.log.push(r);
    }

    fn add_pending(&mut self) {
        let name = format!("consumer-{}", self.next_pod);
        self.next_pod += 1;
        self.pods.push(LocalPod {
            name,
            phase: PodPhase::Pending,
        });
    }

    fn pod_model(&self, name: &str) -> Pod {
        Pod::with_requests(name, self.cfg.pod_cpu, self.cfg.pod_memory)
    }

    fn pod_node(p: &LocalPod) -> Option<&str> {
        match &p.phase {
            PodPhase::Pending => None,
            PodPhase::Running { node, .. } | PodPhase::Terminating { node, .. } => Some(node),
        }
    }

    /// Pods that count towards the replica count (not terminating).
    fn live(&self) -> u32 {
        self.pods
            .iter()
            .filter(|p| !matches!(p.phase, PodPhase::Terminating { .. }))
            .count() as u32
    }

    pub fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot {
            desired: self.desired,
            cost_usd: self.totals.cost_usd,
            last_metric: self.last_metric,
            ..Snapshot::default()
        };
        for p in &self.pods {
            match p.phase {
                PodPhase::Pending => s.pending += 1,
                PodPhase::Running { .. } => s.running += 1,
                PodPhase::Terminating { .. } => s.terminating += 1,
            }
        }
        for n in &self.nodes {
            let e = s.nodes_by_type.entry(n.instance_type.clone()).or_default();
            match n.state {
                NodeState::Ready => {
                    s.nodes_ready += 1;
                    e.0 += 1
                }
                NodeState::Launching => {
                    s.nodes_launching += 1;
                    e.1 += 1
                }
                NodeState::Draining => {
                    s.nodes_draining += 1;
                    e.2 += 1
                }
            }
            s.cost_per_hour += n.price;
        }
        s
    }

    /// One control-loop step at `now`.
    pub async fn tick(&mut self, now: Timestamp) -> Result<(), Error> {
        self.account(now);
        self.boot_nodes(now);
        self.reap(now);
        if now >= self.next_poll {
            self.poll(now).await;
        }
        self.reconcile_replicas(now);
        self.place(now)?;
        self.provision_pending(now);
        self.drain(now);
        if now.since(self.last_consolidation) >= self.cfg.consolidation_interval {
            self.last_consolidation = now;
            self.consolidate(now);
        }
        let s = self.snapshot();
        let t = &mut self.totals;
        t.max_replicas = t.max_replicas.max(s.running + s.pending);
        t.max_pending_pods = t.max_pending_pods.max(s.pending);
        t.max_nodes = t.max_nodes.max(self.nodes.len() as u32);
        Ok(())
    }

    fn account(&mut self, now: Timestamp) {
        if let Some(last) = self.last_tick {
            let dt = now.since(last).as_secs_f64();
            for n in &self.nodes {
                self.totals.node_seconds += dt;
                self.totals.cost_usd += n.price * dt / 3600.0;
            }
        }
        self.last_tick = Some(now);
    }

    fn boot_nodes(&mut self, now: Timestamp) {
        let mut booted = Vec::new();
        for n in &mut self.nodes {
            if n.state == NodeState::Launching && now >= n.ready_at {
                n.state = NodeState::Ready;
                n.last_pod_event = now;
                booted.push(format!("node {} ({}) is Ready", n.name, n.instance_type));
            }
        }
        for b in booted {
            self.record(now, "node", b);
        }
        // Remove drained nodes.
        let mut removed = Vec::new();
        self.nodes.retain(|n| {
            let empty = n.state == NodeState::Draining
                && !self
                    .pods
                    .iter()
                    .any(|p| Self::pod_node(p) == Some(n.name.as_str()));
            if empty {
                removed.push(format!(
                    "node {} ({}) drained and removed",
                    n.name, n.instance_type
                ));
            }
            !empty
        });
        self.totals.nodes_removed += removed.len() as u64;
        for r in removed {
            self.record(now, "node", r);
        }
    }

    fn reap(&mut self, now: Timestamp) {
        let mut events = Vec::new();
        let mut touched = Vec::new();
        let kill_after = self.cfg.kill_after;
        self.pods.retain_mut(|p| match &mut p.phase {
            PodPhase::Pending => true,
            PodPhase::Running { node, proc } => match proc.exited() {
                None => true,
                Some(code) => {
                    events.push(format!(
                        "pod {} on {node} exited unexpectedly ({code:?}); replaced",
                        p.name
                    ));
                    touched.push(node.clone());
                    false
                }
            },
            PodPhase::Terminating { node, proc, since } => match proc.exited() {
                None => {
                    if now.since(*since) > kill_after {
                        proc.kill();
                    }
                    true
                }
                Some(_) => {
                    touched.push(node.clone());
                    false
                }
            },
        });
        self.totals.pods_exited_unexpectedly += events.len() as u64;
        for n in &mut self.nodes {
            if touched.contains(&n.name) {
                n.last_pod_event = now;
            }
        }
        for e in events {
            self.record(now, "pod", e);
        }
    }

    async fn poll(&mut self, now: Timestamp) {
        let mut triggers = Vec::with_capacity(self.scalers.len());
        for s in &self.scalers {
            let r =
                match tokio::time::timeout(Duration::from_secs(5), s.get_metric_and_activity(now))
                    .await
                {
                    Ok(Ok(m)) => Ok(m),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("no answer within 5s".to_string()),
                };
            triggers.push(r);
        }
        self.last_metric = triggers
            .first()
            .and_then(|r| r.as_ref().ok())
            .map(|m| m.value);
        let obs = Observation {
            current_replicas: self.desired,
            ready_replicas: None,
            triggers,
        };
        let d = self.autoscaler.step(now, &obs);
        self.next_poll = now.add(d.requeue_after.max(Duration::from_millis(50)));
        if d.scales() {
            if d.desired_replicas > d.current_replicas && self.totals.first_scale_out_ms.is_none() {
                self.totals.first_scale_out_ms = Some(now.as_millis());
            }
            self.record(
                now,
                "scale",
                format!(
                    "replicas {} -> {}: {}",
                    d.current_replicas, d.desired_replicas, d.reason
                ),
            );
            self.desired = d.desired_replicas;
        }
    }

    /// Set the replica count by hand (`kubectl scale`); the autoscaler takes over again at
    /// its next successful poll. A rise is a scale-out like the autoscaler's: with joint
    /// decisions its capacity is requested in the next step, as an intent.
    pub fn set_desired(&mut self, replicas: u32) {
        self.desired = replicas;
    }

    /// Bring the pod count to `desired`. Scale-in removes Pending pods first, then SIGTERMs
    /// idle consumers (those on the emptiest NodePool nodes first, so nodes empty out);
    /// a busy consumer is never chosen: the count converges as consumers go idle.
    fn reconcile_replicas(&mut self, now: Timestamp) {
        let live = self.live();
        let scale_out = self.desired.saturating_sub(self.reconciled_desired);
        self.reconciled_desired = self.desired;
        if scale_out > 0 {
            self.last_scale_out = Some(now);
        }
        if live < self.desired {
            let new = self.desired - live;
            // Joint decisions: the scale-out reaches the provision core as an intent before
            // the pods exist (replacements of exited pods are not a scale-out).
            let announce = new.min(scale_out);
            if self.cfg.joint && announce > 0 {
                self.provision_intent(now, announce);
            }
            for _ in 0..new {
                self.add_pending();
            }
            self.batcher.observe(now);
            return;
        }
        let mut excess = live - self.desired;
        if excess == 0 {
            return;
        }
        while excess > 0 {
            let Some(i) = self
                .pods
                .iter()
                .rposition(|p| matches!(p.phase, PodPhase::Pending))
            else {
                break;
            };
            self.pods.remove(i);
            excess -= 1;
        }
        if excess == 0 {
            return;
        }
        // Rank idle running pods: draining nodes, then NodePool nodes with fewest pods,
        // baseline last.
        let per_node = self.pods_per_node();
        let mut idle: Vec<(u8, u32, usize)> = Vec::new();
        for (i, p) in self.pods.iter().enumerate() {
            if let PodPhase::Running { node, proc } = &p.phase
                && proc.status() == Status::Idle
            {
                let n = self.nodes.iter().find(|n| &n.name == node);
                let rank = match n {
                    Some(n) if n.state == NodeState::Draining => 0,
                    Some(n) if n.nodepool.is_some() => 1,
                    _ => 2,
                };
                idle.push((rank, per_node.get(node).copied().unwrap_or(0), i));
            }
        }
        idle.sort();
        let chosen: Vec<usize> = idle
            .into_iter()
            .take(excess as usize)
            .map(|x| x.2)
            .collect();
        let mut names = Vec::new();
        for i in chosen {
            names.push(self.pods[i].name.clone());
            self.terminate(i, now);
        }
        if !names.is_empty() {
            let text = format!(
                "scale-in: SIGTERM to idle consumer(s) {} ({} busy kept)",
                names.join(", "),
                excess as usize - names.len()
            );
            self.record(now, "pod", text);
        }
    }

    fn pods_per_node(&self) -> BTreeMap<String, u32> {
        let mut m = BTreeMap::new();
        for p in &self.pods {
            if let Some(n) = Self::pod_node(p) {
                *m.entry(n.to_string()).or_insert(0) += 1;
            }
        }
        m
    }

    fn terminate(&mut self, i: usize, now: Timestamp) {
        let p = &mut self.pods[i];
        let phase = std::mem::replace(&mut p.phase, PodPhase::Pending);
        p.phase = match phase {
            PodPhase::Running { node, proc } => {
                proc.terminate();
                PodPhase::Terminating {
                    node,
                    proc,
                    since: now,
                }
            }
            other => other,
        };
    }

    fn existing(&self, n: &VirtualNode) -> ExistingNode {
        let mut labels = model::kube::Labels::new();
        labels.insert(LABEL_INSTANCE_TYPE.into(), n.instance_type.clone());
        labels.insert(LABEL_ZONE.into(), n.zone.clone());
        labels.insert(LABEL_CAPACITY_TYPE.into(), n.capacity_type.clone());
        labels.insert(LABEL_HOSTNAME.into(), n.name.clone());
        labels.insert("kubernetes.io/arch".into(), "amd64".into());
        labels.insert("kubernetes.io/os".into(), "linux".into());
        if let Some(p) = &n.nodepool {
            labels.insert(LABEL_NODEPOOL.into(), p.clone());
        }
        let pods = self
            .pods
            .iter()
            .filter(|p| Self::pod_node(p) == Some(n.name.as_str()))
            .map(|p| self.pod_model(&p.name))
            .collect();
        ExistingNode {
            name: n.name.clone(),
            labels,
            taints: vec![],
            capacity: n.capacity,
            allocatable: n.allocatable,
            pods,
            daemon_overhead: Res::ZERO,
            unschedulable: n.state == NodeState::Draining,
            in_flight: n.state == NodeState::Launching,
            price: n.price,
            created_ms: n.launched_at.as_millis(),
            nodepool_hash: n.nodepool_hash.clone(),
            annotations: model::kube::Labels::new(),
            last_pod_event_ms: n.last_pod_event.as_millis(),
        }
    }

    fn pending_names(&self) -> Vec<String> {
        self.pods
            .iter()
            .filter(|p| matches!(p.phase, PodPhase::Pending))
            .map(|p| p.name.clone())
            .collect()
    }

    fn source(&self) -> String {
        let m = &self.cfg.scaled_object.metadata;
        format!(
            "ScaledObject {}/{}",
            m.namespace.as_deref().unwrap_or("default"),
            m.name
        )
    }

    /// Joint decision: plan capacity for `replicas` announced replicas (plus the pods already
    /// Pending) and launch the NodeClaims now.
    fn provision_intent(&mut self, now: Timestamp, replicas: u32) {
        let input = ProvisionInput {
            nodepools: self.cfg.nodepools.clone(),
            daemonsets: vec![],
            nodes: self.nodes.iter().map(|n| self.existing(n)).collect(),
            pending: self
                .pending_names()
                .iter()
                .map(|n| self.pod_model(n))
                .collect(),
            intents: vec![ReplicaIntent {
                source: self.source(),
                template: self.pod_model("consumer"),
                replicas,
            }],
        };
        let p = plan(&self.cfg.catalog, &input);
        for c in &p.claims {
            self.launch(now, c, "joint");
        }
    }

    /// The kube-scheduler's part: bind Pending pods to Ready nodes with room and start their
    /// processes. Nodes still booting are not schedulable yet.
    fn place(&mut self, now: Timestamp) -> Result<(), Error> {
        let pending = self.pending_names();
        if pending.is_empty() {
            return Ok(());
        }
        let input = ProvisionInput {
            nodepools: vec![],
            daemonsets: vec![],
            nodes: self
                .nodes
                .iter()
                .filter(|n| n.state == NodeState::Ready)
                .map(|n| self.existing(n))
                .collect(),
            pending: pending.iter().map(|n| self.pod_model(n)).collect(),
            intents: vec![],
        };
        let p = plan(&self.cfg.catalog, &input);
        let mut started = 0u32;
        for (pod, node) in &p.onto_existing {
            // The scheduler names pods `namespace/name`.
            let pod = pod.rsplit('/').next().unwrap_or(pod);
            let Some(n) = self.nodes.iter_mut().find(|n| &n.name == node) else {
                continue;
            };
            if n.state != NodeState::Ready {
                continue;
            }
            n.last_pod_event = now;
            let Some(lp) = self.pods.iter_mut().find(|x| x.name == pod) else {
                continue;
            };
            let proc = PodProcess::spawn(&self.cfg.consumer, pod, &self.cfg.pod_dir)?;
            lp.phase = PodPhase::Running {
                node: node.clone(),
                proc,
            };
            started += 1;
        }
        self.totals.pods_started += u64::from(started);
        Ok(())
    }

    /// Karpenter's provisioner: once the batching window closes, plan NodeClaims for the pods
    /// still Pending (in-flight NodeClaims count as capacity) and launch them.
    fn provision_pending(&mut self, now: Timestamp) {
        let pending = self.pending_names();
        if pending.is_empty() {
            self.batcher.reset();
            return;
        }
        if self.batcher.deadline().is_none() {
            // Pods still Pending after the last batch (e.g. waiting for a limit): retry.
            self.batcher.observe(now);
        }
        if !self.batcher.ready(now) {
            return;
        }
        self.batcher.reset();
        let input = ProvisionInput {
            nodepools: self.cfg.nodepools.clone(),
            daemonsets: vec![],
            nodes: self.nodes.iter().map(|n| self.existing(n)).collect(),
            pending: pending.iter().map(|n| self.pod_model(n)).collect(),
            intents: vec![],
        };
        let p = plan(&self.cfg.catalog, &input);
        for c in &p.claims {
            self.launch(now, c, "pending pods");
        }
    }

    /// Launch one planned NodeClaim as a virtual node (Launching until the boot delay passes).
    fn launch(&mut self, now: Timestamp, c: &PlannedClaim, why: &str) {
        let Some(o) = c.options.first() else { return };
        let Some(it) = self.cfg.catalog.get(&o.instance_type) else {
            return;
        };
        let name = format!("{}-{}", c.nodepool, self.next_node);
        self.next_node += 1;
        let hash = self
            .cfg
            .nodepools
            .iter()
            .find(|p| p.name() == c.nodepool)
            .map(|p| p.template_hash());
        let text = format!(
            "launch {name} ({why}): {} {} ${:.3}/h for {} pod(s) — {}",
            o.instance_type,
            o.capacity_type,
            o.price,
            c.pods.len(),
            // The plan names its claims `<pool>-<n>` within the plan; say which node it is.
            c.explanation.replacen(
                &format!("NodeClaim {} ", c.name),
                &format!("NodeClaim {name} "),
                1
            )
        );
        self.nodes.push(VirtualNode {
            name,
            instance_type: o.instance_type.clone(),
            nodepool: Some(c.nodepool.clone()),
            zone: o.zone.to_string(),
            capacity_type: o.capacity_type.to_string(),
            price: o.price,
            capacity: it.capacity,
            allocatable: it.allocatable,
            state: NodeState::Launching,
            launched_at: now,
            ready_at: now.add(self.cfg.boot_delay),
            drain_started: None,
            last_pod_event: now,
            nodepool_hash: hash,
        });
        self.totals.nodes_launched += 1;
        if self.totals.first_launch_ms.is_none() {
            self.totals.first_launch_ms = Some(now.as_millis());
            self.totals.first_launch_after_scale_out_ms =
                self.last_scale_out.map(|s| now.since(s).as_millis() as u64);
        }
        self.record(now, "provision", text);
    }

    /// Move pods off draining nodes: idle consumers at once, busy ones once idle or after
    /// the drain timeout (counted in `busy_pods_killed`).
    fn drain(&mut self, now: Timestamp) {
        let draining: Vec<(String, Timestamp)> = self
            .nodes
            .iter()
            .filter(|n| n.state == NodeState::Draining)
            .map(|n| (n.name.clone(), n.drain_started.unwrap_or(now)))
            .collect();
        if draining.is_empty() {
            return;
        }
        let mut to_term = Vec::new();
        for (i, p) in self.pods.iter().enumerate() {
            if let PodPhase::Running { node, proc } = &p.phase
                && let Some((_, since)) = draining.iter().find(|(n, _)| n == node)
            {
                let idle = proc.status() == Status::Idle;
                if idle || now.since(*since) >= self.cfg.drain_timeout {
                    to_term.push((i, !idle));
                }
            }
        }
        for (i, busy) in to_term {
            if busy {
                self.totals.busy_pods_killed += 1;
            }
            self.terminate(i, now);
        }
    }

    fn consolidate(&mut self, now: Timestamp) {
        let busy_cluster = self
            .pods
            .iter()
            .any(|p| matches!(p.phase, PodPhase::Pending))
            || self.nodes.iter().any(|n| n.state != NodeState::Ready);
        if busy_cluster {
            return;
        }
        let input = DisruptionInput {
            nodepools: self.cfg.nodepools.clone(),
            daemonsets: vec![],
            nodes: self.nodes.iter().map(|n| self.existing(n)).collect(),
            pdbs: vec![],
        };
        let d = provision::disruption::disrupt(
            &self.cfg.catalog,
            &input,
            now,
            DisruptionOptions::default(),
        );
        for c in d.commands {
            if let Method::Replace(claim) = &c.method {
                self.launch(now, claim, "consolidation replacement");
            }
            for cand in &c.candidates {
                if let Some(n) = self.nodes.iter_mut().find(|n| &n.name == cand) {
                    n.state = NodeState::Draining;
                    n.drain_started = Some(now);
                }
            }
            self.record(now, "disrupt", format!("{:?}: {}", c.kind, c.explanation));
        }
    }

    /// SIGKILL up to `n` busy consumers (chaos testing); returns how many were killed.
    pub fn sigkill_busy(&mut self, n: usize, now: Timestamp) -> usize {
        let mut killed = 0;
        for p in &mut self.pods {
            if killed == n {
                break;
            }
            if let PodPhase::Running { proc, .. } = &mut p.phase
                && proc.status() == Status::Busy
            {
                proc.signal(libc::SIGKILL);
                killed += 1;
            }
        }
        self.totals.chaos_killed += killed as u64;
        self.record(
            now,
            "pod",
            format!("chaos: SIGKILL to {killed} busy consumer(s)"),
        );
        killed
    }

    /// Pids of every consumer process still held.
    pub fn pids(&self) -> Vec<u32> {
        self.pods
            .iter()
            .filter_map(|p| match &p.phase {
                PodPhase::Running { proc, .. } | PodPhase::Terminating { proc, .. } => {
                    Some(proc.pid)
                }
                PodPhase::Pending => None,
            })
            .collect()
    }

    /// Stop every consumer: SIGTERM, wait up to `grace`, then SIGKILL; returns when all have
    /// exited (the final reaper).
    pub async fn shutdown(&mut self, grace: Duration) {
        let mut procs: Vec<PodProcess> = Vec::new();
        for p in self.pods.drain(..) {
            match p.phase {
                PodPhase::Running { proc, .. } | PodPhase::Terminating { proc, .. } => {
                    proc.terminate();
                    procs.push(proc);
                }
                PodPhase::Pending => {}
            }
        }
        let all = async {
            for p in &mut procs {
                p.wait().await;
            }
        };
        if tokio::time::timeout(grace, all).await.is_err() {
            for p in &mut procs {
                p.kill();
            }
            for p in &mut procs {
                p.wait().await;
            }
        }
    }
}
