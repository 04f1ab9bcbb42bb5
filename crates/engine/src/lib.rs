//! kedge's decision engine: everything between the pure cores (`autoscale`: how many replicas;
//! `provision`: which nodes) and a substrate (the simulator, the local twin, the operator).
//!
//! The engine is pure and clock-injected like the cores: a substrate observes the world once
//! per step — the scale targets' metrics and pods, the cluster as one [`Cluster`] — calls
//! [`Engine::step`] with `now`, and carries out the [`Effect`]s it gets back. Every *when*,
//! *which* and *how many* is decided here, so a simulation predicts the twin and the twin
//! predicts the cluster. Nothing here reads a clock, the environment or the network.
//!
//! # Layout
//! - [`policy`]: the presets (`keda-karpenter`, `kedge`, `oracle`) as data, each documenting
//!   what it models.
//! - [`scale`]: one ScaledObject's scale loop: cadence (KEDA's poll and the HPA's sync, or one
//!   combined step), the replica count to write, the consumers to stop first, the intent.
//! - [`jobs`]: one ScaledJob's poll loop (KEDA's executor: `autoscale::scaledjob::step` at
//!   `pollingInterval`), its Jobs to create and delete as an effect.
//! - [`replicaset`]: which pods go on scale-in — the ReplicaSet's ranking and kedge's idle-only
//!   choice.
//! - [`provisioning`]: Karpenter's pending-pod batches and joint-decision intents → claims to
//!   launch, named by the engine.
//! - [`disruption`]: the disruption command lifecycle (pass, validate after the delay, replace,
//!   drain, delete) and consolidation gating.
//! - [`placement`]: kube-scheduler's binding, for substrates without one.
//! - [`capacity`]: offerings the cloud had no capacity for, unavailable for 3 minutes
//!   (Karpenter's unavailable-offerings cache); a failed launch is relaunched at once on the
//!   claim's next option ([`NodeEngine::launch_failed`]).
//! - [`liveness`]: a claim whose node never registers is deleted after 15 minutes (Karpenter's
//!   registration TTL), so its pods are planned again.
//! - [`cluster`]: the observed state ([`Cluster`]), one conversion per substrate.
//! - [`event`]: every decision as an [`Event`] with its reason, stamped with `now`.
//!
//! The operator drives the parts on its own tasks ([`scale::ScaleLoop`] per ScaledObject, one
//! [`NodeEngine`] for provisioning and disruption); the simulator and the twin drive them all
//! through [`Engine`].

pub mod capacity;
pub mod cluster;
pub mod disruption;
pub mod event;
pub mod jobs;
pub mod liveness;
pub mod placement;
pub mod policy;
pub mod provisioning;
pub mod replicaset;
pub mod scale;

use std::collections::BTreeMap;
use std::sync::Arc;

use autoscale::Decision;
use clock::Timestamp;
use model::kube::Pod;
use provision::catalog::Catalog;
use provision::plan::ReplicaIntent;

pub use cluster::{Cluster, NodeInfo, PodFlags, pod_key};
pub use event::{Event, ObjectRef, Recorder, Topic};
pub use jobs::{JobInput, JobLoop};
pub use policy::{Policy, PolicyName};
pub use provisioning::{Launch, LaunchReason};
pub use replicaset::{ConsumerPod, PodPhase};
pub use scale::{Foresight, ScaleInput, ScaleLoop, ScaleStep, Template, WorkloadKey};

/// What to do, as data.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Mark `victims` for deletion first (in order), then set the target's replicas.
    Scale {
        workload: WorkloadKey,
        replicas: u32,
        victims: Vec<String>,
    },
    /// Create this NodeClaim.
    Launch(Launch),
    /// Taint the node `karpenter.sh/disrupted:NoSchedule`.
    Cordon { node: String },
    /// Remove that taint.
    Uncordon { node: String },
    /// Evict these pods (`namespace/name`) of `node`.
    Evict { node: String, pods: Vec<String> },
    /// Delete the node's claim (the node goes with it).
    Delete { node: String, claim: Option<String> },
    /// A ScaledJob's poll: create `create` Jobs from its template, delete these Jobs (history
    /// limits, rollout; `foreground` propagation per Job).
    Jobs {
        workload: WorkloadKey,
        create: u32,
        delete: Vec<autoscale::scaledjob::step::Deletion>,
    },
}

/// The node side: provisioning and disruption over one observed [`Cluster`].
#[derive(Debug, Clone)]
pub struct NodeEngine {
    pub policy: Policy,
    catalog: Arc<Catalog>,
    provisioner: provisioning::Provisioner,
    disruptor: disruption::Disruptor,
    namer: provisioning::Namer,
    /// When a replica count last changed (consolidation settles after it).
    last_scale: Option<Timestamp>,
    unavailable: capacity::UnavailableOfferings,
    /// When the next claim in flight reaches its registration TTL.
    liveness_due: Option<Timestamp>,
}

impl NodeEngine {
    /// `name_seed` makes claim names unique across restarts (the operator passes its start
    /// time; the simulator and the twin 0, so runs repeat exactly).
    pub fn new(policy: Policy, catalog: Arc<Catalog>, now: Timestamp, name_seed: u64) -> Self {
        NodeEngine {
            provisioner: provisioning::Provisioner::new(
                policy.batch_idle,
                policy.batch_max,
                policy.intent_ttl,
            ),
            disruptor: disruption::Disruptor::new(now),
            namer: provisioning::Namer::new(name_seed),
            last_scale: None,
            unavailable: capacity::UnavailableOfferings::default(),
            liveness_due: None,
            catalog,
            policy,
        }
    }

    /// A replica count changed at `now` (substrates that run the scale loops apart from the
    /// node side report it here; [`Engine`] does it itself).
    pub fn note_scale(&mut self, now: Timestamp) {
        self.last_scale = Some(self.last_scale.map_or(now, |t| t.max(now)));
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Plan with `catalog` from now on (a cloud provider learned that offerings are
    /// unavailable, or came back).
    pub fn set_catalog(&mut self, catalog: Arc<Catalog>) {
        self.catalog = catalog;
    }

    pub fn disruption_phase(&self) -> &disruption::Phase {
        self.disruptor.phase()
    }

    /// A scale-out announced at `now` (joint decisions), planned at the next
    /// [`NodeEngine::provision`]: the workload will have `intent.replicas` more live pods than
    /// `cluster` shows. Ignored when the policy makes no joint decisions.
    pub fn announce(&mut self, now: Timestamp, cluster: &Cluster, intent: ReplicaIntent) {
        let target = cluster.live_pods_like(&intent.template) + intent.replicas;
        self.announce_target(now, intent, target);
    }

    /// As [`NodeEngine::announce`], for a substrate that observes the cluster after the
    /// scale-out was written (the operator: the ReplicaSet may have created some of the pods
    /// by then): `target` is the workload's live pods in total once scaled out, counted when
    /// the scale-out was written, so pods created since are not counted twice.
    pub fn announce_target(&mut self, now: Timestamp, intent: ReplicaIntent, target: u32) {
        if !self.policy.joint {
            return;
        }
        self.provisioner.announce_target(now, intent, target);
    }

    /// Announced replicas are still planned against (their pods do not all exist yet): the
    /// next [`NodeEngine::provision`] counts the workloads' live pods.
    pub fn intents_outstanding(&self) -> bool {
        self.provisioner.intents_outstanding()
    }

    /// Whether [`NodeEngine::disrupt`] at `now` runs the core's simulation and so reads
    /// `Cluster::pdbs` (a substrate that lists them per pass lists them only then).
    pub fn disruption_simulates(&self, now: Timestamp) -> bool {
        self.disruptor.simulates(now, &self.policy)
    }

    /// Claim `name` of a [`Effect::Launch`] could not be created (the API refused it; not a
    /// lack of capacity, see [`NodeEngine::launch_failed`]): a disruption command that waits
    /// for it as its replacement is given up now.
    pub fn create_failed(&mut self, now: Timestamp, name: &str, why: &str, rec: &mut Recorder) {
        self.disruptor.launch_failed(now, name, why, rec);
    }

    /// One provisioning pass: claims to launch.
    pub fn provision(
        &mut self,
        now: Timestamp,
        cluster: &mut Cluster,
        rec: &mut Recorder,
    ) -> Vec<Effect> {
        let catalog = self.unavailable.view(now, &self.catalog);
        self.provisioner
            .step(now, cluster, &catalog, &mut self.namer, rec)
            .into_iter()
            .map(Effect::Launch)
            .collect()
    }

    /// One disruption step: the command lifecycle.
    pub fn disrupt(
        &mut self,
        now: Timestamp,
        cluster: &mut Cluster,
        rec: &mut Recorder,
    ) -> Vec<Effect> {
        let catalog = self.unavailable.view(now, &self.catalog);
        self.disruptor
            .step(
                now,
                cluster,
                &catalog,
                &self.policy,
                self.last_scale,
                &mut self.namer,
                rec,
            )
            .into_iter()
            .map(|a| match a {
                disruption::Action::Launch(l) => Effect::Launch(l),
                disruption::Action::Cordon { node } => Effect::Cordon { node },
                disruption::Action::Uncordon { node } => Effect::Uncordon { node },
                disruption::Action::Evict { node, pods } => Effect::Evict { node, pods },
                disruption::Action::Delete { node, claim } => Effect::Delete { node, claim },
            })
            .collect()
    }

    /// Claims whose node did not register within the registration TTL: delete them
    /// ([`liveness`]).
    pub fn liveness(
        &mut self,
        now: Timestamp,
        cluster: &mut Cluster,
        rec: &mut Recorder,
    ) -> Vec<Effect> {
        let (out, next) = liveness::check(now, cluster, liveness::REGISTRATION_TTL, rec);
        for e in &out {
            if let Effect::Delete { node, .. } = e
                && let Some(n) = cluster.node(node)
            {
                cluster.info[n].deleting = true;
            }
        }
        self.liveness_due = next;
        out
    }

    /// The cloud refused `launch` on `offering` for lack of capacity
    /// (`InsufficientInstanceCapacity`): the offering is unavailable for
    /// [`capacity::UNAVAILABLE_OFFERINGS_TTL`] (Karpenter's unavailable-offerings cache), and
    /// the claim is relaunched at once, under a new name, on its next option still available
    /// (the next-cheapest type that fits the same pods). A consolidation's replacement is not
    /// relaunched: its command gives up at its timeout, as a failed replacement launch does in
    /// Karpenter. With no option left the pods stay Pending and the next batch plans them
    /// against what is still available.
    pub fn launch_failed(
        &mut self,
        now: Timestamp,
        launch: &Launch,
        offering: &provision::plan::InstanceOption,
        rec: &mut Recorder,
    ) -> Vec<Effect> {
        self.unavailable
            .mark(now, offering, capacity::UNAVAILABLE_OFFERINGS_TTL);
        rec.warn(
            now,
            Topic::Provision,
            ObjectRef::cluster("NodeClaim", &launch.name),
            "InsufficientCapacityError",
            format!(
                "{}: no capacity for {} {} in {}; the offering is unavailable for {}s",
                launch.name,
                offering.instance_type,
                offering.capacity_type,
                offering.zone,
                capacity::UNAVAILABLE_OFFERINGS_TTL.as_secs()
            ),
        );
        if launch.reason == LaunchReason::Replacement {
            return Vec::new();
        }
        let mut claim = launch.claim.clone();
        claim
            .options
            .retain(|o| !self.unavailable.is_unavailable(now, o));
        let Some(next) = claim.options.first().cloned() else {
            rec.warn(
                now,
                Topic::Provision,
                ObjectRef::cluster("NodeClaim", &launch.name),
                "InsufficientCapacityError",
                format!(
                    "{}: every instance type that fits its {} pod(s) is unavailable; they stay Pending and are planned again",
                    launch.name,
                    claim.pods.len()
                ),
            );
            return Vec::new();
        };
        let name = self.namer.name(&claim.nodepool);
        rec.record(
            now,
            Topic::Provision,
            ObjectRef::cluster("NodeClaim", &name),
            "Launched",
            format!(
                "launch {name} (instead of {}): {} {} ${:.4}/h for {} pod(s), the next-cheapest option after insufficient capacity for {}",
                launch.name,
                next.instance_type,
                next.capacity_type,
                next.price,
                claim.pods.len(),
                offering.instance_type
            ),
        );
        vec![Effect::Launch(Launch {
            name,
            reason: launch.reason,
            claim,
        })]
    }

    /// When the node side wants to be stepped again (earlier on cluster changes).
    pub fn next_wake(&self) -> Timestamp {
        let d = self.disruptor.next_wake(&self.policy);
        [self.provisioner.next_wake(), self.liveness_due]
            .into_iter()
            .flatten()
            .fold(d, Timestamp::min)
    }
}

/// One step's outcome.
#[derive(Debug, Clone, Default)]
pub struct Step {
    pub effects: Vec<Effect>,
    pub events: Vec<Event>,
    /// The autoscaler's decision of every workload polled in this step.
    pub decisions: Vec<(WorkloadKey, Decision)>,
}

/// The whole engine for substrates that run everything in one loop (simulator, twin).
#[derive(Debug, Clone)]
pub struct Engine {
    loops: BTreeMap<WorkloadKey, ScaleLoop>,
    jobs: BTreeMap<WorkloadKey, JobLoop>,
    pub nodes: NodeEngine,
    recorder: Recorder,
}

impl Engine {
    pub fn new(policy: Policy, catalog: Arc<Catalog>, now: Timestamp, name_seed: u64) -> Engine {
        Engine {
            loops: BTreeMap::new(),
            jobs: BTreeMap::new(),
            nodes: NodeEngine::new(policy, catalog, now, name_seed),
            recorder: Recorder::default(),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.nodes.policy
    }

    /// Start scaling a ScaledObject (validated into `config`); its first poll is at `now`.
    pub fn add_workload(
        &mut self,
        key: WorkloadKey,
        config: autoscale::Config,
        template: Option<Pod>,
        now: Timestamp,
    ) {
        let l = ScaleLoop::new(
            key.clone(),
            autoscale::Autoscaler::new(config, now),
            &self.nodes.policy,
            template.as_ref().map(Template::of),
            now,
        );
        self.loops.insert(key, l);
    }

    pub fn workload(&self, key: &WorkloadKey) -> Option<&ScaleLoop> {
        self.loops.get(key)
    }

    /// Start polling a ScaledJob (validated into `config`); its first poll is at `now`.
    pub fn add_job_workload(
        &mut self,
        key: WorkloadKey,
        config: autoscale::scaledjob::step::Config,
        now: Timestamp,
    ) {
        self.jobs
            .insert(key.clone(), JobLoop::new(key, config, now));
    }

    pub fn job_workload(&self, key: &WorkloadKey) -> Option<&JobLoop> {
        self.jobs.get(key)
    }

    /// The ScaledJobs whose poll is due at `now`: fetch their metrics and Jobs and pass them
    /// to [`Engine::step_jobs`].
    pub fn due_jobs(&self, now: Timestamp) -> Vec<WorkloadKey> {
        self.jobs
            .values()
            .filter(|l| l.due() <= now)
            .map(|l| l.key.clone())
            .collect()
    }

    /// The due ScaledJobs' polls at `now`: an [`Effect::Jobs`] per poll that creates or
    /// deletes. Carry them out (and let the scheduler bind the new pods that fit) before
    /// [`Engine::step`], so the pods that fit nowhere are pending when provisioning looks.
    pub fn step_jobs(&mut self, now: Timestamp, inputs: &[(WorkloadKey, JobInput<'_>)]) -> Step {
        let mut step = Step::default();
        for (key, input) in inputs {
            let Some(l) = self.jobs.get_mut(key) else {
                continue;
            };
            let plan = l.step(now, input, &mut self.recorder);
            if plan.create > 0 {
                self.nodes.note_scale(now);
            }
            if plan.create > 0 || !plan.delete.is_empty() {
                step.effects.push(Effect::Jobs {
                    workload: key.clone(),
                    create: plan.create,
                    delete: plan.delete,
                });
            }
        }
        step.events = self.recorder.take();
        step
    }

    /// The workloads whose poll is due at `now`: fetch their metrics and pass them to
    /// [`Engine::step`].
    pub fn due(&self, now: Timestamp) -> Vec<WorkloadKey> {
        self.loops
            .values()
            .filter(|l| l.due() <= now)
            .map(|l| l.key.clone())
            .collect()
    }

    /// When something is due next (scale polls, batches, disruption phases). Substrates also
    /// step on cluster changes (a pod turned pending, a node became Ready).
    pub fn next_wake(&self) -> Timestamp {
        self.loops
            .values()
            .map(ScaleLoop::due)
            .chain(self.jobs.values().map(JobLoop::due))
            .fold(self.nodes.next_wake(), Timestamp::min)
    }

    /// One step at `now`: the polled workloads, then provisioning, then disruption.
    pub fn step(
        &mut self,
        now: Timestamp,
        cluster: &mut Cluster,
        inputs: &[(WorkloadKey, ScaleInput<'_>)],
    ) -> Step {
        let mut step = Step::default();
        for (key, input) in inputs {
            let Some(l) = self.loops.get_mut(key) else {
                continue;
            };
            let s = l.step(now, input, &mut self.recorder);
            if let Some(replicas) = s.replicas {
                self.nodes.note_scale(now);
                step.effects.push(Effect::Scale {
                    workload: key.clone(),
                    replicas,
                    victims: s.victims,
                });
            }
            if let Some(i) = s.intent {
                self.nodes.announce(now, cluster, i);
            }
            step.decisions.push((key.clone(), s.decision));
        }
        let launches = self.nodes.provision(now, cluster, &mut self.recorder);
        step.effects.extend(launches);
        let disruption = self.nodes.disrupt(now, cluster, &mut self.recorder);
        step.effects.extend(disruption);
        let liveness = self.nodes.liveness(now, cluster, &mut self.recorder);
        step.effects.extend(liveness);
        step.events = self.recorder.take();
        step
    }

    /// The substrate could not launch `launch` on `offering` (no capacity): see
    /// [`NodeEngine::launch_failed`]. Returns the relaunch (if any) and the events.
    pub fn launch_failed(
        &mut self,
        now: Timestamp,
        launch: &Launch,
        offering: &provision::plan::InstanceOption,
    ) -> Step {
        let effects = self
            .nodes
            .launch_failed(now, launch, offering, &mut self.recorder);
        Step {
            effects,
            events: self.recorder.take(),
            decisions: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_joint_decisions_announced_replicas_launch_nothing() {
        let catalog = Arc::new(Catalog::aws());
        let t0 = Timestamp::from_secs(100);
        let pool = model::karpenter::NodePool::from_yaml(
            r#"
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: default}
spec:
  template:
    spec:
      requirements:
        - {key: node.kubernetes.io/instance-type, operator: In, values: [m5.xlarge]}
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
"#,
        )
        .expect("pool");
        let mut template = Pod::with_requests("", "250m".parse().unwrap(), "64Mi".parse().unwrap());
        template.metadata.namespace = Some("jobs".into());
        let intent = ReplicaIntent {
            source: "ScaledObject jobs/consumer".into(),
            template,
            replicas: 4,
        };
        for (name, launches) in [(PolicyName::KedaKarpenter, 0), (PolicyName::Kedge, 1)] {
            let mut e = NodeEngine::new(Policy::preset(name), catalog.clone(), t0, 0);
            let mut c = Cluster {
                nodepools: vec![pool.clone()],
                ..Default::default()
            };
            e.announce(t0, &c, intent.clone());
            let got = e.provision(t0, &mut c, &mut Recorder::default());
            assert_eq!(got.len(), launches, "{name}: {got:?}");
        }
    }
}
