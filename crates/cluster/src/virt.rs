//! Virtual nodes and pods: what the simulator and the twin have in common, written once.
//!
//! [`Virtual`] keeps the [`engine::Cluster`] the engine observes up to date as it changes (no
//! rebuild per step), carries out the engine's [`Effect`]s on it, and plays the two
//! controllers a cluster would run beside kedge: the ReplicaSet (pods up to the written count;
//! on scale-in it deletes the pods [`engine::replicaset::victims`] ranks first, kedge's choice
//! arriving as a lowest deletion cost) and kube-scheduler ([`engine::placement::bind`]). Nodes
//! are billed per second from launch to deletion, with EC2's 60 s minimum.
//!
//! For a ScaledJob it plays the Job controller instead of the ReplicaSet ([`Virtual::set_jobs`]):
//! one pod per Job; a pod whose consumer exits (it worked what it received, or it drained after
//! SIGTERM) completes its Job; a pod killed under it (its node deleted, SIGKILL) is replaced
//! until the Job's `backoffLimit`, then the Job is Failed.
//!
//! What runs inside a pod is the substrate's [`Backend`]: a modelled consumer (simulator) or
//! a `kedge consume` process (twin). Times are virtual or real milliseconds since the epoch.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use autoscale::scaledjob::step::{Finished, ObservedJob, ObservedPod};
use clock::Timestamp;
use engine::{Cluster, ConsumerPod, Effect, Engine, Event, Launch, NodeInfo, PodFlags, PodPhase};
use model::karpenter::{
    LABEL_CAPACITY_TYPE, LABEL_HOSTNAME, LABEL_INSTANCE_TYPE, LABEL_NODEPOOL, LABEL_ZONE, NodePool,
};
use model::kube::Pod;
use provision::catalog::Catalog;
use provision::plan::InstanceOption;
use provision::resources::Res;
use provision::scheduler::ExistingNode;

/// What runs in the pods.
pub trait Backend {
    /// Pod `i` (key `ns/name`) is Running: start its consumer.
    fn start(&mut self, i: usize, key: &str, now: u64);
    /// SIGTERM to pod `i`'s consumer. `true` when it is gone at once (it held no message);
    /// otherwise the backend calls [`Virtual::exited`] when it has finished.
    fn stop(&mut self, i: usize, now: u64) -> bool;
    /// SIGKILL (its node is deleted under it): what it held returns after the visibility
    /// timeout.
    fn kill(&mut self, i: usize, now: u64);
    /// Working on a message.
    fn busy(&self, i: usize) -> bool;
    /// `Some(how long its last run lasted)` while pod `i`'s consumer waits out its restart
    /// back-off after a crash (`CrashLoopBackOff`).
    fn back_off(&self, i: usize) -> Option<Duration>;
    /// What one message costs pod `i`'s consumer as it measured it (mean work time per
    /// message ÷ concurrency); `None` until it has finished one.
    fn per_message(&self, _i: usize) -> Option<Duration> {
        None
    }
}

/// Where a pod is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodState {
    /// Not bound.
    Pending,
    /// Bound; its consumer starts at `running_at` (image pull, container start).
    Starting,
    Running,
    /// SIGTERM sent; gone when its consumer exits.
    Terminating,
    Gone,
}

#[derive(Debug, Clone)]
pub struct VPod {
    pub key: String,
    pub created: u64,
    pub state: PodState,
    pub node: Option<String>,
    pub deletion_cost: i32,
}

/// One Job of a ScaledJob.
#[derive(Debug, Clone)]
pub struct VJob {
    pub name: String,
    pub created: u64,
    /// Its current pod (index into [`Virtual::pods`]); `None` between a failure and the
    /// replacement, and once finished.
    pub pod: Option<usize>,
    /// Pods of it that failed.
    pub failures: u32,
    pub finished: Finished,
    /// Deleted (history limit, rollout): no longer observed.
    pub deleted: bool,
}

/// The Job controller's state (ScaledJob workloads).
#[derive(Debug, Clone)]
struct JobController {
    jobs: Vec<VJob>,
    /// Job indices not deleted (what is observed).
    live: Vec<usize>,
    /// Pod index → its Job.
    pod_job: std::collections::HashMap<usize, usize>,
    backoff_limit: u32,
    /// The ScaledJob's generation (every Job carries it).
    generation: i64,
    /// Jobs and pods are named `<prefix>-<n>`.
    prefix: String,
    created: u64,
    succeeded: u64,
    failed: u64,
}

#[derive(Debug, Clone)]
pub struct VNode {
    pub launched: u64,
    pub price: f64,
    /// A NodePool's node (its cost counts as the policy's).
    pub pool: bool,
    /// Pod indices, aligned with the cluster node's `pods`.
    pub pods: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    NodeReady(u64),
    PodRunning(usize),
}

/// Counters for reports.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Totals {
    pub nodes_launched: u64,
    pub nodes_removed: u64,
    /// Replica-count changes written.
    pub scale_events: u64,
    pub max_replicas: u32,
    pub max_nodes: u32,
    pub max_pending: u32,
    /// Consumers stopped while working on a message (scale-in or eviction).
    pub busy_pods_killed: u64,
    pub pods_started: u64,
    /// Launches the cloud refused (an injected `no-capacity` fault).
    pub launches_refused: u64,
}

/// A node lifecycle line for the decision log.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeNote {
    pub at: u64,
    pub text: String,
}

/// The virtual cluster.
#[derive(Debug)]
pub struct Virtual {
    /// What each pod requests (every pod is a copy of `template`).
    pod_requests: Res,
    pub cluster: Cluster,
    pub nodes: Vec<VNode>,
    pub pods: Vec<VPod>,
    alive: Vec<usize>,
    pending_idx: Vec<usize>,
    /// The written replica count.
    pub replicas: u32,
    template: Pod,
    catalog: Arc<Catalog>,
    nodepools: Vec<NodePool>,
    boot: Duration,
    pod_start: Duration,
    due: BinaryHeap<Reverse<(u64, u64, Due)>>,
    seq: u64,
    node_names: Vec<String>,
    cost_removed: f64,
    pool_cost_removed: f64,
    node_seconds_removed: f64,
    pub totals: Totals,
    /// Node lifecycle lines since the last [`Virtual::take_notes`].
    notes: Vec<NodeNote>,
    /// Busy as the engine last saw each pod ([`Virtual::refresh_flags`]): a stop counts as
    /// stopping a busy consumer when the decision was made knowing it was busy (a consumer
    /// that took a message in the instant after is a race any cluster has).
    busy_seen: Vec<bool>,
    /// Each consumer's measured cost of one message, as of the last refresh.
    per_message_seen: Vec<Option<Duration>>,
    /// Crash-looping as the engine last saw each pod ([`Virtual::refresh_flags`]).
    crash_seen: Vec<bool>,
    /// The faults active now (the substrate sets them from its scenario): launches of these
    /// types are refused, nodes launched now never become Ready.
    pub faults: crate::scenario::ActiveFaults,
    /// Launches refused since the last [`Virtual::relaunch_failed`].
    launch_failures: Vec<(Launch, InstanceOption)>,
    /// `Some`: a ScaledJob's Jobs instead of a ReplicaSet.
    jobs: Option<JobController>,
}

/// Why a workload cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("the ScaledObject is not usable: {0}")]
    Config(#[from] autoscale::ConfigError),
    #[error("the ScaledJob is not usable: {0}")]
    JobConfig(String),
}

/// What a substrate needs for one workload: its key, the engine with the workload registered
/// (a ScaledObject's scale loop or a ScaledJob's poll loop, first poll at `now`), and the
/// virtual cluster that runs its pods (the ReplicaSet with `max(min, 1)` Pending pods, or the
/// Job controller with none). The same for the simulator and the twin.
pub struct Setup {
    pub key: engine::WorkloadKey,
    pub engine: Engine,
    pub virt: Virtual,
}

/// The pods' requests, boot and start delays as the scenario gives them.
#[derive(Debug, Clone, Copy)]
pub struct PodTiming {
    pub cpu: model::quantity::Quantity,
    pub memory: model::quantity::Quantity,
    /// Launch → Ready for a node.
    pub boot: Duration,
    /// Bound → consumer running.
    pub pod_start: Duration,
}

impl Setup {
    pub fn new(
        w: &crate::scenario::Workload,
        policy: engine::Policy,
        catalog: Arc<Catalog>,
        nodepools: Vec<NodePool>,
        pods: PodTiming,
        now: Timestamp,
    ) -> Result<Setup, WorkloadError> {
        use crate::scenario::Workload;
        let ns = w.namespace();
        let key = engine::WorkloadKey::new(ns.clone(), w.name());
        let mut template = Pod::with_requests("", pods.cpu, pods.memory);
        template.metadata.namespace = Some(ns);
        template
            .metadata
            .labels
            .insert("app".into(), w.app().into());
        let mut engine = Engine::new(policy, catalog.clone(), now, 0);
        let replicas = match w {
            Workload::ScaledObject(so) => {
                let config = autoscale::Config::from_scaled_object(so)?;
                let min = config.min;
                engine.add_workload(key.clone(), config, Some(template.clone()), now);
                min.max(1)
            }
            Workload::ScaledJob(sj) => {
                let config = autoscale::scaledjob::step::Config::from_scaled_job(sj, 1)
                    .map_err(WorkloadError::JobConfig)?;
                engine.add_job_workload(key.clone(), config, now);
                0
            }
        };
        let mut virt = Virtual::new(
            template,
            catalog,
            nodepools,
            replicas,
            pods.boot,
            pods.pod_start,
        );
        if let Workload::ScaledJob(sj) = w {
            virt.set_jobs(&sj.metadata.name, w.backoff_limit(), 1);
        }
        Ok(Setup { key, engine, virt })
    }
}

/// Billing of a node that ran `secs`: per second, at least a minute.
pub fn bill(price: f64, secs: f64) -> f64 {
    price * secs.max(60.0) / 3600.0
}

impl Virtual {
    /// `template`: the pods' spec (namespace and labels set); `replicas` pods start Pending.
    pub fn new(
        template: Pod,
        catalog: Arc<Catalog>,
        nodepools: Vec<NodePool>,
        replicas: u32,
        boot: Duration,
        pod_start: Duration,
    ) -> Virtual {
        Virtual {
            pod_requests: engine::placement::requests(&template),
            cluster: Cluster {
                nodepools: nodepools.clone(),
                ..Default::default()
            },
            nodes: Vec::new(),
            pods: Vec::new(),
            alive: Vec::new(),
            pending_idx: Vec::new(),
            replicas,
            template,
            catalog,
            nodepools,
            boot,
            pod_start,
            due: BinaryHeap::new(),
            seq: 0,
            node_names: Vec::new(),
            cost_removed: 0.0,
            pool_cost_removed: 0.0,
            node_seconds_removed: 0.0,
            totals: Totals {
                max_replicas: replicas,
                ..Default::default()
            },
            notes: Vec::new(),
            busy_seen: Vec::new(),
            per_message_seen: Vec::new(),
            crash_seen: Vec::new(),
            faults: Default::default(),
            launch_failures: Vec::new(),
            jobs: None,
        }
    }

    /// Play the Job controller of a ScaledJob instead of the ReplicaSet: no pods until
    /// [`Effect::Jobs`] creates Jobs; Jobs and their pods are named `<prefix>-<n>`.
    pub fn set_jobs(&mut self, prefix: &str, backoff_limit: u32, generation: i64) {
        self.replicas = 0;
        self.totals.max_replicas = 0;
        self.jobs = Some(JobController {
            jobs: Vec::new(),
            live: Vec::new(),
            pod_job: Default::default(),
            backoff_limit,
            generation,
            prefix: prefix.to_string(),
            created: 0,
            succeeded: 0,
            failed: 0,
        });
    }

    /// A ScaledJob's due poll at `now` with the triggers' `samples`: the engine decides from
    /// the Jobs observed here ([`Engine::step_jobs`]), its effects are carried out and the Job
    /// controller makes the new pods. Returns the engine's events and whether Jobs were created.
    pub fn step_jobs(
        &mut self,
        engine: &mut Engine,
        key: &engine::WorkloadKey,
        now: u64,
        samples: &[Result<(f64, bool), String>],
        b: &mut dyn Backend,
    ) -> (Vec<Event>, bool) {
        let jobs = self.observed_jobs();
        let step = engine.step_jobs(
            Timestamp::from_millis(now),
            &[(
                key.clone(),
                engine::JobInput {
                    samples,
                    jobs: &jobs,
                },
            )],
        );
        let created = !step.effects.is_empty();
        for e in step.effects {
            self.apply(e, now, false, b);
        }
        self.reconcile(now, b);
        // kube-scheduler binds the new pods that fit before the provisioner looks: Karpenter
        // only ever sees the pods the scheduler could not place.
        self.place(now);
        (step.events, created)
    }

    /// Jobs (created, succeeded, failed) so far; `None` for a ReplicaSet.
    pub fn job_counts(&self) -> Option<(u64, u64, u64)> {
        self.jobs
            .as_ref()
            .map(|j| (j.created, j.succeeded, j.failed))
    }

    /// The ScaledJob's Jobs as KEDA observes them (deleted ones left out).
    pub fn observed_jobs(&self) -> Vec<ObservedJob> {
        let Some(jc) = &self.jobs else {
            return Vec::new();
        };
        jc.live
            .iter()
            .map(|&j| {
                let job = &jc.jobs[j];
                let pods = job
                    .pod
                    .map(|i| ObservedPod {
                        phase: match self.pods[i].state {
                            PodState::Running | PodState::Terminating => "Running",
                            _ => "Pending",
                        }
                        .into(),
                        true_conditions: Vec::new(),
                    })
                    .into_iter()
                    .collect();
                ObservedJob {
                    name: job.name.clone(),
                    created: Timestamp::from_millis(job.created),
                    finished: job.finished,
                    generation: Some(jc.generation),
                    deleting: false,
                    pods,
                }
            })
            .collect()
    }

    /// A new pending pod from the template, named `name`.
    fn new_pod(&mut self, name: String, now: u64) -> usize {
        let mut p = self.template.clone();
        p.metadata.name = name;
        self.pods.push(VPod {
            key: engine::pod_key(&p),
            created: now,
            state: PodState::Pending,
            node: None,
            deletion_cost: 0,
        });
        let i = self.pods.len() - 1;
        self.pending_idx.push(i);
        self.alive.push(i);
        self.cluster.pending.push(p);
        i
    }

    /// The Job controller: a pod for every unfinished Job that has none (a new Job, or one
    /// whose pod failed, while within `backoffLimit`). Returns whether pods were created.
    fn reconcile_jobs(&mut self, now: u64) -> bool {
        let Some(mut jc) = self.jobs.take() else {
            return false;
        };
        let mut created = false;
        for k in 0..jc.live.len() {
            let j = jc.live[k];
            if jc.jobs[j].pod.is_some() || jc.jobs[j].finished != Finished::No {
                continue;
            }
            if jc.jobs[j].failures > jc.backoff_limit {
                jc.jobs[j].finished = Finished::Failed;
                jc.failed += 1;
                continue;
            }
            let name = format!("{}-{}", jc.prefix, self.pods.len());
            let i = self.new_pod(name, now);
            jc.jobs[j].pod = Some(i);
            jc.pod_job.insert(i, j);
            created = true;
        }
        let unfinished = jc
            .live
            .iter()
            .filter(|&&j| jc.jobs[j].finished == Finished::No)
            .count() as u32;
        self.replicas = unfinished;
        self.totals.max_replicas = self.totals.max_replicas.max(unfinished);
        self.jobs = Some(jc);
        if created {
            self.totals.max_pending = self
                .totals
                .max_pending
                .max(self.cluster.pending.len() as u32);
        }
        created
    }

    /// Pod `i` of a Job ended: `ok` (its consumer exited) completes the Job; otherwise the pod
    /// failed and the Job controller makes another at its next reconcile.
    fn job_pod_ended(&mut self, i: usize, ok: bool) {
        let Some(jc) = self.jobs.as_mut() else {
            return;
        };
        let Some(j) = jc.pod_job.remove(&i) else {
            return;
        };
        let job = &mut jc.jobs[j];
        job.pod = None;
        if job.finished != Finished::No || job.deleted {
            return;
        }
        if ok {
            job.finished = Finished::Succeeded;
            jc.succeeded += 1;
        } else {
            job.failures += 1;
        }
    }

    /// Nodes outside any NodePool, Ready from `now` on (their cheapest on-demand offering).
    pub fn add_baseline(&mut self, types: &[String], now: u64) -> Result<(), String> {
        for (i, t) in types.iter().enumerate() {
            let it = self
                .catalog
                .get(t)
                .ok_or_else(|| format!("instance type {t:?} is not in the catalog"))?;
            let o = it
                .offerings
                .iter()
                .filter(|o| &*o.capacity_type == "on-demand")
                .min_by(|a, b| a.price.total_cmp(&b.price))
                .or(it.offerings.first());
            let (zone, price) = o.map_or(("us-east-1a".to_string(), 0.0), |o| {
                (o.zone.to_string(), o.price)
            });
            self.add_node(
                format!("baseline-{i}"),
                t,
                &zone,
                "on-demand",
                price,
                None,
                None,
                false,
                now,
            );
        }
        self.totals.max_nodes = self.cluster.nodes.len() as u32;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn add_node(
        &mut self,
        name: String,
        instance_type: &str,
        zone: &str,
        capacity_type: &str,
        price: f64,
        pool: Option<&str>,
        claim: Option<String>,
        in_flight: bool,
        now: u64,
    ) {
        let Some(it) = self.catalog.get(instance_type) else {
            return;
        };
        let mut labels = model::kube::Labels::new();
        labels.insert(LABEL_INSTANCE_TYPE.into(), instance_type.into());
        labels.insert(LABEL_ZONE.into(), zone.into());
        labels.insert(LABEL_CAPACITY_TYPE.into(), capacity_type.into());
        labels.insert(LABEL_HOSTNAME.into(), name.clone());
        labels.insert("kubernetes.io/arch".into(), "amd64".into());
        labels.insert("kubernetes.io/os".into(), "linux".into());
        let hash = pool.and_then(|p| {
            labels.insert(LABEL_NODEPOOL.into(), p.into());
            self.nodepools
                .iter()
                .find(|np| np.name() == p)
                .map(|np| np.template_hash())
        });
        self.cluster.push_node(
            ExistingNode {
                name: name.clone(),
                labels,
                taints: vec![],
                capacity: it.capacity,
                allocatable: it.allocatable,
                pods: vec![],
                daemon_overhead: Res::ZERO,
                unschedulable: false,
                in_flight,
                price,
                created_ms: now,
                nodepool_hash: hash,
                annotations: Default::default(),
                last_pod_event_ms: now,
            },
            NodeInfo {
                initialized: !in_flight,
                claim,
                ..Default::default()
            },
        );
        self.nodes.push(VNode {
            launched: now,
            price,
            pool: pool.is_some(),
            pods: Vec::new(),
        });
        self.node_names.push(name);
    }

    fn at(&mut self, t: u64, d: Due) {
        self.seq += 1;
        self.due.push(Reverse((t, self.seq, d)));
    }

    /// When a node turns Ready or a pod's consumer starts next.
    pub fn next_due(&self) -> Option<u64> {
        self.due.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Nodes Ready and pods Running up to `now`. Returns whether the cluster changed for the
    /// engine (a node became Ready).
    pub fn advance(&mut self, now: u64, b: &mut dyn Backend) -> bool {
        let mut changed = false;
        while let Some(Reverse((t, _, d))) = self.due.peek().copied() {
            if t > now {
                break;
            }
            self.due.pop();
            match d {
                Due::NodeReady(seq) => {
                    let name = self.node_names[seq as usize].clone();
                    if let Some(n) = self.cluster.node(&name) {
                        self.cluster.nodes[n].in_flight = false;
                        self.cluster.info[n].initialized = true;
                        self.cluster.nodes[n].last_pod_event_ms = t;
                        let it = self.cluster.nodes[n]
                            .labels
                            .get(LABEL_INSTANCE_TYPE)
                            .cloned()
                            .unwrap_or_default();
                        self.notes.push(NodeNote {
                            at: t,
                            text: format!("node {name} ({it}) is Ready"),
                        });
                        changed = true;
                    }
                }
                Due::PodRunning(i) => {
                    if self.pods[i].state == PodState::Starting {
                        self.pods[i].state = PodState::Running;
                        self.totals.pods_started += 1;
                        b.start(i, &self.pods[i].key, t);
                    }
                }
            }
        }
        changed
    }

    /// Node lifecycle lines since the last call.
    pub fn take_notes(&mut self) -> Vec<NodeNote> {
        std::mem::take(&mut self.notes)
    }

    fn prune(&mut self) {
        let pods = &self.pods;
        self.alive.retain(|&i| pods[i].state != PodState::Gone);
    }

    /// Pods not yet gone.
    pub fn alive(&self) -> impl Iterator<Item = usize> + '_ {
        self.alive
            .iter()
            .copied()
            .filter(|&i| self.pods[i].state != PodState::Gone)
    }

    /// Pods the ReplicaSet counts (not terminating).
    pub fn live(&self) -> impl Iterator<Item = usize> + '_ {
        self.alive()
            .filter(|&i| self.pods[i].state != PodState::Terminating)
    }

    /// The pod with key `ns/<name>-N` is `pods[N]`.
    pub fn pod_index(&self, key: &str) -> Option<usize> {
        let n: usize = key.rsplit_once('-')?.1.parse().ok()?;
        (self.pods.get(n)?.key == key).then_some(n)
    }

    /// The scale target's pods as the engine sees them (busy as of the last
    /// [`Virtual::refresh_flags`]).
    pub fn consumer_pods(&self) -> Vec<ConsumerPod> {
        self.live()
            .map(|i| {
                let p = &self.pods[i];
                let crash_looping = self.crash_seen.get(i).copied().unwrap_or(false);
                ConsumerPod {
                    name: p.key.clone(),
                    node: p.node.clone(),
                    phase: if p.state == PodState::Running {
                        PodPhase::Running
                    } else {
                        PodPhase::Pending
                    },
                    // A container in its restart back-off is not ready (Kubernetes).
                    ready: p.state == PodState::Running && !crash_looping,
                    busy: self.busy_seen.get(i).copied().unwrap_or(false),
                    created: Timestamp::from_millis(p.created),
                    deletion_cost: p.deletion_cost,
                    crash_looping,
                    per_message: self.per_message_seen.get(i).copied().flatten(),
                }
            })
            .collect()
    }

    /// Busy, crash-looping and terminating flags as the engine should see them now.
    pub fn refresh_flags(&mut self, b: &dyn Backend) {
        self.busy_seen.resize(self.pods.len(), false);
        self.per_message_seen.resize(self.pods.len(), None);
        self.crash_seen.resize(self.pods.len(), false);
        for (n, node) in self.nodes.iter().enumerate() {
            for (j, &i) in node.pods.iter().enumerate() {
                let p = &self.pods[i];
                let busy = p.state == PodState::Running && b.busy(i);
                self.busy_seen[i] = busy;
                self.per_message_seen[i] = b.per_message(i);
                self.crash_seen[i] = p.state == PodState::Running
                    && engine::replicaset::crash_looping(b.back_off(i));
                self.cluster.info[n].pods[j] = PodFlags {
                    busy,
                    terminating: p.state == PodState::Terminating,
                };
            }
        }
    }

    /// The ReplicaSet: pods up to the count, victims down to it. Returns whether pods were
    /// created or deleted.
    pub fn reconcile(&mut self, now: u64, b: &mut dyn Backend) -> bool {
        self.prune();
        if self.jobs.is_some() {
            return self.reconcile_jobs(now);
        }
        let live = self.live().count() as u32;
        if live < self.replicas {
            for _ in live..self.replicas {
                // `consumer-N` is `pods[N]`.
                self.new_pod(format!("consumer-{}", self.pods.len()), now);
            }
            self.totals.max_pending = self
                .totals
                .max_pending
                .max(self.cluster.pending.len() as u32);
            return true;
        }
        if live > self.replicas {
            let excess = (live - self.replicas) as usize;
            let victims = engine::replicaset::victims(&self.consumer_pods(), excess);
            for v in victims {
                if let Some(i) = self.pod_index(&v) {
                    self.terminate(i, now, b);
                }
            }
            return true;
        }
        false
    }

    fn remove_from_node(&mut self, i: usize, now: u64) {
        let Some(node) = self.pods[i].node.clone() else {
            return;
        };
        if let Some(n) = self.cluster.node(&node)
            && let Some(j) = self.nodes[n].pods.iter().position(|&p| p == i)
        {
            self.nodes[n].pods.remove(j);
            self.cluster.nodes[n].pods.remove(j);
            self.cluster.info[n].pods.remove(j);
            self.cluster.nodes[n].last_pod_event_ms = now;
        }
    }

    /// Delete pod `i`: SIGTERM if its consumer runs, at once otherwise.
    pub fn terminate(&mut self, i: usize, now: u64, b: &mut dyn Backend) {
        match self.pods[i].state {
            PodState::Pending => {
                if let Some(j) = self.pending_idx.iter().position(|&p| p == i) {
                    self.pending_idx.remove(j);
                    self.cluster.pending.remove(j);
                }
                self.pods[i].state = PodState::Gone;
                self.job_pod_ended(i, false);
            }
            PodState::Starting => {
                self.remove_from_node(i, now);
                self.pods[i].state = PodState::Gone;
                self.job_pod_ended(i, false);
            }
            PodState::Running => {
                if self.busy_seen.get(i).copied().unwrap_or(false) {
                    self.totals.busy_pods_killed += 1;
                }
                if b.stop(i, now) {
                    self.exited(i, now);
                } else {
                    self.pods[i].state = PodState::Terminating;
                    self.set_terminating_flag(i);
                }
            }
            PodState::Terminating | PodState::Gone => {}
        }
    }

    fn set_terminating_flag(&mut self, i: usize) {
        if let Some(node) = &self.pods[i].node
            && let Some(n) = self.cluster.node(node)
            && let Some(j) = self.nodes[n].pods.iter().position(|&p| p == i)
        {
            self.cluster.info[n].pods[j].terminating = true;
        }
    }

    /// Pod `i`'s consumer exited (after SIGTERM, or on its own): the pod is gone. The
    /// ReplicaSet replaces it at the next [`Virtual::reconcile`] if it was not terminating; a
    /// Job's pod has completed its Job.
    pub fn exited(&mut self, i: usize, now: u64) {
        self.ended(i, now, true);
    }

    /// Pod `i` was killed (SIGKILL, its node deleted): gone; the ReplicaSet replaces it, a
    /// Job's pod has failed (the Job controller makes another within `backoffLimit`).
    pub fn killed(&mut self, i: usize, now: u64) {
        self.ended(i, now, false);
    }

    fn ended(&mut self, i: usize, now: u64, ok: bool) {
        if self.pods[i].state == PodState::Gone {
            return;
        }
        self.remove_from_node(i, now);
        self.pods[i].state = PodState::Gone;
        self.job_pod_ended(i, ok);
    }

    /// Carry out one of the engine's effects.
    pub fn apply(&mut self, e: Effect, now: u64, instant_boot: bool, b: &mut dyn Backend) {
        match e {
            Effect::Scale {
                replicas, victims, ..
            } => {
                // The victims carry the mark, and only they: a pod an earlier scale-in marked
                // may be busy by now (as the operator's pod-deletion-cost patches).
                if replicas < self.replicas || !victims.is_empty() {
                    let pods = self.consumer_pods();
                    for (name, cost) in engine::replicaset::mark_changes(&pods, &victims) {
                        if let Some(i) = self.pod_index(&name) {
                            self.pods[i].deletion_cost = cost.unwrap_or(0);
                        }
                    }
                }
                if replicas != self.replicas {
                    self.totals.scale_events += 1;
                }
                self.replicas = replicas;
                self.totals.max_replicas = self.totals.max_replicas.max(replicas);
            }
            Effect::Launch(l) => {
                let Some(o) = l.claim.options.first().cloned() else {
                    return;
                };
                if self.faults.refuses(&o.instance_type) {
                    // The cloud's answer (InsufficientInstanceCapacity): no node, no bill.
                    self.totals.launches_refused += 1;
                    self.notes.push(NodeNote {
                        at: now,
                        text: format!(
                            "fault: no capacity for {} ({} {}); launch of {}{} refused",
                            o.instance_type,
                            o.capacity_type,
                            o.zone,
                            l.name,
                            if l.reason == engine::LaunchReason::Replacement {
                                " (a consolidation's replacement)"
                            } else {
                                ""
                            }
                        ),
                    });
                    self.launch_failures.push((l, o));
                    return;
                }
                let seq = self.node_names.len() as u64;
                self.add_node(
                    l.name.clone(),
                    &o.instance_type,
                    &o.zone,
                    &o.capacity_type,
                    o.price,
                    Some(&l.claim.nodepool),
                    Some(l.name.clone()),
                    true,
                    now,
                );
                self.totals.nodes_launched += 1;
                self.totals.max_nodes = self.totals.max_nodes.max(self.cluster.nodes.len() as u32);
                if self.faults.node_not_ready {
                    self.notes.push(NodeNote {
                        at: now,
                        text: format!("fault: node {} will never become Ready", l.name),
                    });
                    return;
                }
                let ready = if instant_boot {
                    now
                } else {
                    now + self.boot.as_millis() as u64
                };
                self.at(ready, Due::NodeReady(seq));
            }
            Effect::Cordon { node } => {
                if let Some(n) = self.cluster.node(&node) {
                    self.cluster.nodes[n].unschedulable = true;
                    self.cluster.info[n].disrupted_taint = true;
                }
            }
            Effect::Uncordon { node } => {
                if let Some(n) = self.cluster.node(&node) {
                    self.cluster.nodes[n].unschedulable = false;
                    self.cluster.info[n].disrupted_taint = false;
                }
            }
            Effect::Evict { pods, .. } => {
                for key in pods {
                    if let Some(i) = self.pod_index(&key) {
                        self.terminate(i, now, b);
                    }
                }
            }
            Effect::Delete { node, .. } => self.remove_node(&node, now, b),
            Effect::Jobs { create, delete, .. } => self.apply_jobs(create, &delete, now, b),
        }
    }

    /// A ScaledJob's poll: new Jobs (each gets its pod at the next [`Virtual::reconcile`]);
    /// deleted Jobs are no longer observed and their running pods are stopped.
    fn apply_jobs(
        &mut self,
        create: u32,
        delete: &[autoscale::scaledjob::step::Deletion],
        now: u64,
        b: &mut dyn Backend,
    ) {
        let Some(mut jc) = self.jobs.take() else {
            return;
        };
        if !delete.is_empty() {
            let gone: std::collections::HashSet<&str> =
                delete.iter().map(|d| d.name.as_str()).collect();
            let mut stop = Vec::new();
            jc.live.retain(|&j| {
                let job = &mut jc.jobs[j];
                if !gone.contains(job.name.as_str()) {
                    return true;
                }
                job.deleted = true;
                stop.extend(job.pod);
                false
            });
            self.jobs = Some(jc);
            for i in stop {
                self.terminate(i, now, b);
            }
            jc = self.jobs.take().expect("jobs");
        }
        for _ in 0..create {
            let name = format!("{}-job-{}", jc.prefix, jc.jobs.len());
            jc.live.push(jc.jobs.len());
            jc.jobs.push(VJob {
                name,
                created: now,
                pod: None,
                failures: 0,
                finished: Finished::No,
                deleted: false,
            });
            jc.created += 1;
        }
        if create > 0 {
            self.totals.scale_events += 1;
        }
        self.jobs = Some(jc);
    }

    /// Hand the launches the cloud refused to the engine ([`Engine::launch_failed`]: it
    /// remembers the offering and relaunches on the next option) and carry out what it
    /// decides, until no launch is refused. Returns the engine's events.
    pub fn relaunch_failed(
        &mut self,
        engine: &mut Engine,
        now: u64,
        instant_boot: bool,
        b: &mut dyn Backend,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        // Each failure marks one more offering unavailable, so this ends.
        while !self.launch_failures.is_empty() {
            for (l, o) in std::mem::take(&mut self.launch_failures) {
                let step = engine.launch_failed(Timestamp::from_millis(now), &l, &o);
                events.extend(step.events);
                for e in step.effects {
                    self.apply(e, now, instant_boot, b);
                }
            }
        }
        events
    }

    fn remove_node(&mut self, name: &str, now: u64, b: &mut dyn Backend) {
        let Some(n) = self.cluster.node(name) else {
            return;
        };
        for i in self.nodes[n].pods.clone() {
            if matches!(
                self.pods[i].state,
                PodState::Running | PodState::Terminating
            ) {
                b.kill(i, now);
            }
            self.killed(i, now);
        }
        let vn = self.nodes.remove(n);
        let node = self.cluster.nodes.remove(n);
        self.cluster.info.remove(n);
        let secs = now.saturating_sub(vn.launched) as f64 / 1000.0;
        let c = bill(vn.price, secs);
        self.cost_removed += c;
        if vn.pool {
            self.pool_cost_removed += c;
        }
        self.node_seconds_removed += secs;
        self.totals.nodes_removed += 1;
        self.notes.push(NodeNote {
            at: now,
            text: format!(
                "node {name} ({}) removed",
                node.labels
                    .get(LABEL_INSTANCE_TYPE)
                    .map_or("", |s| s.as_str())
            ),
        });
    }

    /// kube-scheduler: bind the pending pods that fit a Ready node now.
    pub fn place(&mut self, now: u64) {
        if self.cluster.pending.is_empty() {
            return;
        }
        // Every pod is the template's: one pod's requests, times the pods a node holds.
        let req = self.pod_requests;
        let binds = engine::placement::bind_with(
            &self.cluster,
            |n| {
                let k = n.pods.len() as i64;
                n.daemon_overhead
                    .plus(&Res::new(req.cpu * k, req.mem * k, req.pods * k))
            },
            |_| req,
        );
        // Highest pending index first, so the lower ones stay valid while removing.
        for &(j, n) in binds.iter().rev() {
            let pod = self.cluster.pending.remove(j);
            let i = self.pending_idx.remove(j);
            let node = self.cluster.nodes[n].name.clone();
            self.cluster.nodes[n].pods.push(pod);
            self.cluster.info[n].pods.push(PodFlags::default());
            self.cluster.nodes[n].last_pod_event_ms = now;
            self.nodes[n].pods.push(i);
            self.pods[i].state = PodState::Starting;
            self.pods[i].node = Some(node);
            self.at(now + self.pod_start.as_millis() as u64, Due::PodRunning(i));
        }
    }

    /// (cost so far, of which NodePool nodes, node-seconds, current $/h).
    pub fn costs(&self, now: u64) -> (f64, f64, f64, f64) {
        let mut cost = self.cost_removed;
        let mut pool = self.pool_cost_removed;
        let mut secs = self.node_seconds_removed;
        let mut rate = 0.0;
        for n in &self.nodes {
            let s = now.saturating_sub(n.launched) as f64 / 1000.0;
            let c = bill(n.price, s);
            cost += c;
            if n.pool {
                pool += c;
            }
            secs += s;
            rate += n.price;
        }
        (cost, pool, secs, rate)
    }

    /// (running, pending or starting, terminating).
    pub fn pod_counts(&self) -> (u32, u32, u32) {
        let (mut r, mut p, mut t) = (0, 0, 0);
        for i in self.alive() {
            match self.pods[i].state {
                PodState::Running => r += 1,
                PodState::Pending | PodState::Starting => p += 1,
                PodState::Terminating => t += 1,
                PodState::Gone => {}
            }
        }
        (r, p, t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::quantity::Quantity;
    use std::collections::HashSet;

    /// Consumers that are busy when the test says so; SIGTERM waits for busy ones.
    #[derive(Default)]
    struct Consumers {
        busy: HashSet<usize>,
        stopped: Vec<usize>,
    }

    impl Backend for Consumers {
        fn start(&mut self, _i: usize, _key: &str, _now: u64) {}
        fn stop(&mut self, i: usize, _now: u64) -> bool {
            self.stopped.push(i);
            !self.busy.contains(&i)
        }
        fn kill(&mut self, _i: usize, _now: u64) {}
        fn busy(&self, i: usize) -> bool {
            self.busy.contains(&i)
        }
        fn back_off(&self, _: usize) -> Option<Duration> {
            None
        }
    }

    fn scale(v: &mut Virtual, b: &mut Consumers, now: u64, replicas: u32, victims: &[&str]) {
        v.refresh_flags(b);
        let e = Effect::Scale {
            workload: engine::WorkloadKey::new("ns", "consumer"),
            replicas,
            victims: victims.iter().map(|s| s.to_string()).collect(),
        };
        v.apply(e, now, false, b);
        v.reconcile(now, b);
        v.place(now);
    }

    #[test]
    fn an_earlier_scale_ins_mark_does_not_make_a_busy_consumer_go() {
        let cpu: Quantity = "250m".parse().expect("cpu");
        let mem: Quantity = "64Mi".parse().expect("memory");
        let mut template = Pod::with_requests("", cpu, mem);
        template.metadata.namespace = Some("ns".into());
        let start = Duration::from_secs(10);
        let mut v = Virtual::new(
            template,
            Arc::new(Catalog::aws()),
            Vec::new(),
            2,
            Duration::from_secs(60),
            start,
        );
        v.add_baseline(&["m5.xlarge".to_string()], 0)
            .expect("baseline");
        let mut b = Consumers::default();
        v.reconcile(0, &mut b);
        v.place(0);
        v.advance(10_000, &mut b);
        // consumer-0 and -1 run; consumer-2 is still starting when the engine names
        // consumer-0 as the victim of 3 → 2. The ReplicaSet deletes the not-ready pod first,
        // as upstream ranks it, so consumer-0 stays, marked.
        scale(&mut v, &mut b, 10_000, 3, &[]);
        scale(&mut v, &mut b, 11_000, 2, &["ns/consumer-0"]);
        assert_eq!(v.pods[2].state, PodState::Gone);
        assert_eq!(v.pods[0].state, PodState::Running);
        // consumer-0 is busy now; the next scale-in names idle consumer-1.
        b.busy.insert(0);
        scale(&mut v, &mut b, 20_000, 1, &["ns/consumer-1"]);
        assert_eq!(
            v.pods[0].state,
            PodState::Running,
            "the busy consumer stays"
        );
        assert_eq!(v.pods[0].deletion_cost, 0, "its old mark is gone");
        assert_eq!(v.pods[1].state, PodState::Gone);
        assert_eq!(v.totals.busy_pods_killed, 0);
        assert_eq!(b.stopped, vec![1]);
    }
}
