//! The local twin: the engine driving real `kedge consume` processes on virtual nodes.
//!
//! [`LocalCluster::tick`] is one control step at an injected `now`: nodes finish booting and
//! pods start their consumer process ([`Virtual::advance`]), exited processes are reaped, the
//! triggers of a due poll are read through the same scalers a cluster uses, and the engine
//! decides ([`engine::Engine::step`]); its effects are carried out on the virtual cluster
//! ([`Virtual::apply`]), which also plays the ReplicaSet and kube-scheduler. The twin holds
//! no decision of its own: which consumers stop, when capacity is requested, when a node is
//! drained and removed — all come from the engine, exactly as in the simulator.
//!
//! Each pod is a process: SIGTERM to stop it (it finishes its batch within its grace period
//! and exits), SIGKILL after `kill_after`; busy or idle, and what a message costs it, are read
//! from its status file.

pub mod process;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use autoscale::{MetricSample, Scaler};
use clock::Timestamp;
use engine::{Engine, Policy, ScaleInput, WorkloadKey};
use model::karpenter::{LABEL_INSTANCE_TYPE, NodePool};
use model::quantity::Quantity;
use provision::catalog::Catalog;
use scalers::ResolvedAuth;
use workload::Status;

use crate::scenario::{ActiveFaults, Fault, Workload};
use crate::virt::{Backend, PodState, PodTiming, Setup, Virtual};

pub use process::{ConsumerCommand, PodProcess};

/// Everything that stops the twin from starting or a pod from running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Workload(#[from] crate::virt::WorkloadError),
    #[error("trigger {index} of the ScaledObject: {source}")]
    Scaler {
        index: usize,
        #[source]
        source: autoscale::ScalerError,
    },
    #[error("baseline: {0}")]
    Baseline(String),
    #[error("pod {pod}: cannot start the consumer: {source}")]
    Spawn {
        pod: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the policy {0} needs the simulator (it knows the future arrivals)")]
    Policy(String),
}

impl Error {
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Workload(_) => "config",
            Error::Scaler { .. } => "scaler",
            Error::Baseline(_) => "instance_type",
            Error::Spawn { .. } => "spawn",
            Error::Policy(_) => "policy",
        }
    }
}

/// What the twin runs.
pub struct LocalConfig {
    /// The ScaledObject or ScaledJob, with its trigger metadata already pointing at the
    /// embedded endpoint. A ScaledJob's consumer command must exit after one receive
    /// (`kedge consume --once`): exit 0 completes its Job.
    pub workload: Workload,
    pub auth: ResolvedAuth,
    /// Metric sources to use instead of building them from the triggers (tests).
    pub scalers: Option<Vec<Box<dyn Scaler>>>,
    pub nodepools: Vec<NodePool>,
    pub catalog: Catalog,
    /// Instance types of the nodes that exist from the start and never go (a managed node
    /// group outside any NodePool).
    pub baseline: Vec<String>,
    pub pod_cpu: Quantity,
    pub pod_memory: Quantity,
    /// Launch → Ready.
    pub boot_delay: Duration,
    /// Bound → consumer process started.
    pub pod_start: Duration,
    pub policy: Policy,
    pub consumer: ConsumerCommand,
    /// Status files and consumer logs.
    pub pod_dir: PathBuf,
    /// A SIGTERMed consumer gets this long before SIGKILL.
    pub kill_after: Duration,
    /// A consumer that exits on its own is restarted in its pod after this back-off, doubled
    /// per further exit ([`crate::scenario::restart_delay`]), as the kubelet restarts it.
    pub restart_backoff: Duration,
}

/// One line of the decision log (the same form `kedge simulate` reports).
#[derive(Debug, Clone, serde::Serialize)]
pub struct DecisionRecord {
    /// Milliseconds since the epoch.
    pub at_ms: u64,
    /// `scale`, `pod`, `provision`, `disrupt`, `node`.
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
    /// The NodePool's nodes only (baseline nodes excluded).
    pub nodepool_cost_usd: f64,
    pub max_replicas: u32,
    pub max_pending_pods: u32,
    pub max_nodes: u32,
    /// Consumers stopped (scale-in or eviction) while working on a message.
    pub busy_pods_killed: u64,
    pub pods_started: u64,
    pub pods_exited_unexpectedly: u64,
    pub chaos_killed: u64,
    pub scale_events: u64,
    /// A ScaledJob's Jobs so far (absent for a ScaledObject).
    pub jobs: Option<crate::sim::report::JobCounts>,
    /// The first scale-out (ms since the epoch).
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

/// The consumer processes: the twin's [`Backend`].
struct Processes {
    cmd: ConsumerCommand,
    dir: PathBuf,
    procs: Vec<Option<PodProcess>>,
    /// When each stopping pod was SIGTERMed.
    stopping: Vec<Option<u64>>,
    /// Spawn failures since the last tick (reported as errors).
    failed: Vec<Error>,
    /// Exits on its own per pod (the restart back-off doubles with each).
    crashes: Vec<u32>,
    /// When each crashed pod's consumer restarts (its back-off: `CrashLoopBackOff`).
    restart_at: Vec<Option<u64>>,
    /// When each pod's consumer last started, and how long its last run lasted when it
    /// crashed (ms).
    started: Vec<u64>,
    last_run: Vec<u64>,
}

impl Backend for Processes {
    fn start(&mut self, i: usize, key: &str, now: u64) {
        if self.procs.len() <= i {
            self.procs.resize_with(i + 1, || None);
            self.stopping.resize(i + 1, None);
            self.crashes.resize(i + 1, 0);
            self.restart_at.resize(i + 1, None);
            self.started.resize(i + 1, 0);
            self.last_run.resize(i + 1, 0);
        }
        self.restart_at[i] = None;
        self.started[i] = now;
        let name = key.rsplit('/').next().unwrap_or(key);
        match PodProcess::spawn(&self.cmd, name, &self.dir) {
            Ok(p) => self.procs[i] = Some(p),
            Err(e) => self.failed.push(e),
        }
    }

    fn stop(&mut self, i: usize, now: u64) -> bool {
        // A consumer in its restart back-off is not started again.
        if let Some(r) = self.restart_at.get_mut(i) {
            *r = None;
        }
        match self.procs.get(i).and_then(Option::as_ref) {
            Some(p) => {
                p.terminate();
                self.stopping[i] = Some(now);
                false
            }
            None => true,
        }
    }

    fn kill(&mut self, i: usize, _now: u64) {
        if let Some(p) = self.procs.get_mut(i).and_then(Option::as_mut) {
            p.kill();
        }
    }

    fn busy(&self, i: usize) -> bool {
        self.procs
            .get(i)
            .and_then(Option::as_ref)
            .is_some_and(|p| p.status() == Status::Busy)
    }

    fn back_off(&self, i: usize) -> Option<Duration> {
        self.restart_at
            .get(i)
            .is_some_and(Option::is_some)
            .then(|| Duration::from_millis(self.last_run[i]))
    }

    /// From the status file as [`Backend::busy`] last read it ([`Virtual::refresh_flags`]
    /// asks `busy` first), so the figure costs no read of its own.
    fn per_message(&self, i: usize) -> Option<Duration> {
        self.procs
            .get(i)
            .and_then(Option::as_ref)
            .and_then(PodProcess::per_message)
    }
}

pub struct LocalCluster {
    cfg: LocalConfig,
    key: WorkloadKey,
    scalers: Vec<Box<dyn Scaler>>,
    engine: Engine,
    virt: Virtual,
    procs: Processes,
    start: u64,
    last_tick: u64,
    last_metric: Option<f64>,
    /// The latest decisions (ring buffer).
    pub recent: VecDeque<DecisionRecord>,
    /// Every decision, for the report.
    pub log: Vec<DecisionRecord>,
    pub totals: Totals,
    /// Faults to inject (the scenario's `faults:`), with the moment their times count from.
    faults: Vec<Fault>,
    fault_start: u64,
    active: ActiveFaults,
    /// The workload is a ScaledJob.
    jobs: bool,
}

impl LocalCluster {
    /// Build the twin at `now`: baseline nodes are Ready at once, `max(min, 1)` replicas start
    /// Pending.
    pub fn new(mut cfg: LocalConfig, now: Timestamp) -> Result<LocalCluster, Error> {
        if cfg.policy.perfect_knowledge {
            return Err(Error::Policy(cfg.policy.name.to_string()));
        }
        let scalers = match cfg.scalers.take() {
            Some(s) => s,
            None => {
                let mut v = Vec::new();
                for (index, t) in cfg.workload.triggers().iter().enumerate() {
                    v.push(
                        scalers::build_scaler(t, &cfg.auth, &|_| None)
                            .map_err(|source| Error::Scaler { index, source })?,
                    );
                }
                v
            }
        };
        let w = &cfg.workload;
        let jobs = matches!(w, Workload::ScaledJob(_));
        let Setup {
            key,
            engine,
            mut virt,
        } = Setup::new(
            w,
            cfg.policy.clone(),
            Arc::new(cfg.catalog.clone()),
            cfg.nodepools.clone(),
            PodTiming {
                cpu: cfg.pod_cpu,
                memory: cfg.pod_memory,
                boot: cfg.boot_delay,
                pod_start: cfg.pod_start,
            },
            now,
        )?;
        virt.add_baseline(&cfg.baseline, now.as_millis())
            .map_err(Error::Baseline)?;
        // A crash file left by an earlier run in the same directory must not crash these pods.
        let _ = std::fs::remove_file(process::crash_file(&cfg.pod_dir));
        let mut procs = Processes {
            cmd: cfg.consumer.clone(),
            dir: cfg.pod_dir.clone(),
            procs: Vec::new(),
            stopping: Vec::new(),
            failed: Vec::new(),
            crashes: Vec::new(),
            restart_at: Vec::new(),
            started: Vec::new(),
            last_run: Vec::new(),
        };
        virt.reconcile(now.as_millis(), &mut procs);
        Ok(LocalCluster {
            key,
            scalers,
            engine,
            virt,
            procs,
            start: now.as_millis(),
            last_tick: now.as_millis(),
            last_metric: None,
            recent: VecDeque::new(),
            log: Vec::new(),
            totals: Totals::default(),
            faults: Vec::new(),
            fault_start: now.as_millis(),
            active: ActiveFaults::default(),
            jobs,
            cfg,
        })
    }

    pub fn config(&self) -> &LocalConfig {
        &self.cfg
    }

    pub fn policy(&self) -> &Policy {
        self.engine.policy()
    }

    /// The replica count written last.
    pub fn desired(&self) -> u32 {
        self.virt.replicas
    }

    pub fn min_replicas(&self) -> u32 {
        match self.engine.job_workload(&self.key) {
            Some(j) => j.config().min_replicas.clamp(0, i64::from(u32::MAX)) as u32,
            None => self
                .engine
                .workload(&self.key)
                .map_or(0, |l| l.autoscaler().config().min),
        }
    }

    /// Jobs (created, succeeded, failed) so far; `None` for a ScaledObject.
    pub fn job_counts(&self) -> Option<(u64, u64, u64)> {
        self.virt.job_counts()
    }

    /// Every trigger's reading at `now` (or the injected `scaler-down` fault).
    async fn poll_triggers(&mut self, now: Timestamp) -> Vec<Result<MetricSample, String>> {
        let mut triggers = Vec::with_capacity(self.scalers.len());
        if self.active.scaler_down {
            for _ in &self.scalers {
                triggers.push(Err("fault: the queue's API does not answer".to_string()));
            }
            return triggers;
        }
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
        triggers
    }

    /// A due ScaledJob poll: KEDA's executor decides (in the engine), the virtual Job
    /// controller makes the pods.
    async fn step_jobs(&mut self, now: Timestamp) {
        if self.engine.due_jobs(now).is_empty() {
            return;
        }
        let t = now.as_millis();
        let samples: Vec<Result<(f64, bool), String>> = self
            .poll_triggers(now)
            .await
            .into_iter()
            .map(|r| r.map(|m| (m.value, m.active)))
            .collect();
        let (events, created) =
            self.virt
                .step_jobs(&mut self.engine, &self.key, t, &samples, &mut self.procs);
        for e in &events {
            self.record(t, e.topic.as_str(), e.line());
        }
        if created && self.totals.first_scale_out_ms.is_none() {
            self.totals.first_scale_out_ms = Some(t);
        }
    }

    fn record(&mut self, at: u64, kind: &'static str, text: String) {
        tracing::debug!(kind, "{text}");
        let r = DecisionRecord {
            at_ms: at,
            kind,
            text,
        };
        if self.recent.len() == DECISION_RING {
            self.recent.pop_front();
        }
        self.recent.push_back(r.clone());
        self.log.push(r);
    }

    pub fn snapshot(&self) -> Snapshot {
        let (running, pending, terminating) = self.virt.pod_counts();
        let (cost, _, _, rate) = self.virt.costs(self.last_now());
        let mut s = Snapshot {
            desired: self.virt.replicas,
            running,
            pending,
            terminating,
            cost_per_hour: rate,
            cost_usd: cost,
            last_metric: self.last_metric,
            ..Snapshot::default()
        };
        for (n, i) in self.virt.cluster.nodes.iter().zip(&self.virt.cluster.info) {
            let t = n
                .labels
                .get(LABEL_INSTANCE_TYPE)
                .cloned()
                .unwrap_or_default();
            let e = s.nodes_by_type.entry(t).or_default();
            if n.in_flight {
                s.nodes_launching += 1;
                e.1 += 1;
            } else if n.unschedulable || i.disrupted_taint {
                s.nodes_draining += 1;
                e.2 += 1;
            } else {
                s.nodes_ready += 1;
                e.0 += 1;
            }
        }
        s
    }

    fn last_now(&self) -> u64 {
        self.start.max(self.last_tick)
    }

    /// Inject `faults` (their `at` counts from `start`): the twin only injects them; what
    /// happens next is the engine's.
    pub fn set_faults(&mut self, faults: Vec<Fault>, start: Timestamp) {
        self.faults = faults;
        self.fault_start = start.as_millis();
    }

    /// The faults active at `t`: handed to the virtual cluster; a change is logged.
    fn update_faults(&mut self, t: u64) {
        if self.faults.is_empty() {
            return;
        }
        let a = ActiveFaults::at(
            &self.faults,
            Duration::from_millis(t.saturating_sub(self.fault_start)),
        );
        if a != self.active {
            self.record(t, "fault", format!("faults active: {a}"));
            if a.consumer_crash != self.active.consumer_crash {
                self.set_crash_file(t, a.consumer_crash);
            }
            self.virt.faults = a.clone();
            self.active = a;
        }
    }

    /// One control step at `now`.
    pub async fn tick(&mut self, now: Timestamp) -> Result<(), Error> {
        let t = now.as_millis();
        self.last_tick = t;
        self.update_faults(t);
        if self.virt.advance(t, &mut self.procs) {
            // A node became Ready: the engine sees it below.
        }
        if let Some(e) = self.procs.failed.pop() {
            self.procs.failed.clear();
            return Err(e);
        }
        self.reap(t);
        self.step_jobs(now).await;
        let due = !self.engine.due(now).is_empty();
        let triggers = if due {
            self.poll_triggers(now).await
        } else {
            Vec::new()
        };
        self.virt.refresh_flags(&self.procs);
        let pods;
        let mut inputs = Vec::new();
        if due {
            pods = self.virt.consumer_pods();
            inputs.push((
                self.key.clone(),
                ScaleInput {
                    replicas: self.virt.replicas,
                    ready: None,
                    triggers,
                    pods: Some(&pods),
                    foresight: None,
                },
            ));
        }
        let step = self.engine.step(now, &mut self.virt.cluster, &inputs);
        drop(inputs);
        for e in &step.events {
            self.record(t, e.topic.as_str(), e.line());
        }
        for e in step.effects {
            if let engine::Effect::Scale { replicas, .. } = &e
                && *replicas > self.virt.replicas
                && self.totals.first_scale_out_ms.is_none()
            {
                self.totals.first_scale_out_ms = Some(t);
            }
            if let engine::Effect::Launch(_) = &e
                && self.totals.first_launch_ms.is_none()
            {
                self.totals.first_launch_ms = Some(t);
                self.totals.first_launch_after_scale_out_ms =
                    self.totals.first_scale_out_ms.map(|s| t.saturating_sub(s));
            }
            self.virt.apply(e, t, false, &mut self.procs);
        }
        for e in self
            .virt
            .relaunch_failed(&mut self.engine, t, false, &mut self.procs)
        {
            self.record(t, e.topic.as_str(), e.line());
        }
        self.virt.reconcile(t, &mut self.procs);
        self.virt.place(t);
        // Consumers whose start is already due (no pod start delay) start in this tick.
        self.virt.advance(t, &mut self.procs);
        for n in self.virt.take_notes() {
            self.record(n.at, "node", n.text);
        }
        self.update_totals(t);
        Ok(())
    }

    fn update_totals(&mut self, t: u64) {
        let v = &self.virt.totals;
        let (cost, pool, secs, _) = self.virt.costs(t);
        let tt = &mut self.totals;
        tt.nodes_launched = v.nodes_launched;
        tt.nodes_removed = v.nodes_removed;
        tt.max_replicas = v.max_replicas;
        tt.max_pending_pods = v.max_pending;
        tt.max_nodes = v.max_nodes;
        tt.busy_pods_killed = v.busy_pods_killed;
        tt.pods_started = v.pods_started;
        tt.scale_events = v.scale_events;
        tt.jobs = self.virt.job_counts().map(|(created, succeeded, failed)| {
            crate::sim::report::JobCounts {
                created,
                succeeded,
                failed,
            }
        });
        tt.cost_usd = cost;
        tt.nodepool_cost_usd = pool;
        tt.node_seconds = secs;
    }

    /// Exited processes: a stopping pod is gone; a running one exited on its own (the kubelet
    /// restarts it in the same pod after its back-off). Stopping pods past `kill_after` get
    /// SIGKILL; crashed consumers whose back-off is over start again.
    fn reap(&mut self, now: u64) {
        let kill_after = self.cfg.kill_after.as_millis() as u64;
        let mut lines = Vec::new();
        let alive: Vec<usize> = self.virt.alive().collect();
        for i in alive {
            let state = self.virt.pods[i].state;
            if !matches!(state, PodState::Running | PodState::Terminating) {
                continue;
            }
            let Some(p) = self.procs.procs.get_mut(i).and_then(Option::as_mut) else {
                continue;
            };
            match p.exited() {
                // A Job's consumer that exits 0 has completed its Job (below); any other exit
                // of a running consumer is a crash, restarted in its pod (KEDA's Jobs default
                // to `restartPolicy: OnFailure`).
                Some(code) if state == PodState::Running && !(self.jobs && code == Some(0)) => {
                    self.totals.pods_exited_unexpectedly += 1;
                    self.procs.procs[i] = None;
                    let n = self.procs.crashes[i];
                    self.procs.crashes[i] += 1;
                    let delay = crate::scenario::restart_delay(self.cfg.restart_backoff, n);
                    self.procs.restart_at[i] = Some(now + delay.as_millis() as u64);
                    self.procs.last_run[i] = now.saturating_sub(self.procs.started[i]);
                    lines.push(format!(
                        "pod {} exited unexpectedly ({code:?}); restarting it in {:.1}s (back-off)",
                        self.virt.pods[i].key,
                        delay.as_secs_f64()
                    ));
                }
                Some(_) => {
                    self.procs.procs[i] = None;
                    self.virt.exited(i, now);
                }
                None => {
                    if let Some(since) = self.procs.stopping.get(i).copied().flatten()
                        && now.saturating_sub(since) > kill_after
                    {
                        p.kill();
                    }
                }
            }
        }
        for i in 0..self.procs.restart_at.len() {
            if self.procs.restart_at[i].is_none_or(|t| t > now) {
                continue;
            }
            if self
                .virt
                .pods
                .get(i)
                .is_some_and(|p| p.state == PodState::Running)
            {
                let key = self.virt.pods[i].key.clone();
                self.procs.start(i, &key, now);
                lines.push(format!("pod {key}: consumer restarted"));
            } else {
                self.procs.restart_at[i] = None;
            }
        }
        for l in lines {
            self.record(now, "pod", l);
        }
    }

    /// Set the replica count by hand (`kubectl scale`); the autoscaler decides again at its
    /// next poll.
    pub fn set_desired(&mut self, replicas: u32) {
        self.virt.replicas = replicas;
    }

    /// SIGKILL up to `n` busy consumers (chaos testing); returns how many were killed.
    pub fn sigkill_busy(&mut self, n: usize, now: Timestamp) -> usize {
        let busy: Vec<usize> = self
            .virt
            .alive()
            .filter(|&i| self.virt.pods[i].state == PodState::Running && self.procs.busy(i))
            .take(n)
            .collect();
        for &i in &busy {
            if let Some(p) = self.procs.procs.get(i).and_then(Option::as_ref) {
                p.signal(libc::SIGKILL);
            }
        }
        let killed = busy.len();
        self.totals.chaos_killed += killed as u64;
        self.record(
            now.as_millis(),
            "pod",
            format!("chaos: SIGKILL to {killed} busy consumer(s)"),
        );
        killed
    }

    /// A `consumer-crash` fault: while it lasts the crash file holds the share of poison
    /// messages, and a consumer that receives one dies with SIGKILL before deleting it (the
    /// pod is replaced as after any unexpected exit, the message returns after its visibility
    /// timeout and its receive counts towards maxReceiveCount). The consumer crashes itself so
    /// that it dies on the message, not on whichever tick notices it busy.
    fn set_crash_file(&mut self, t: u64, share: Option<f64>) {
        let path = process::crash_file(&self.procs.dir);
        let r = match share {
            Some(s) => std::fs::write(&path, format!("{s}\n")),
            None => match std::fs::remove_file(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                r => r,
            },
        };
        if let Err(e) = r {
            self.record(
                t,
                "fault",
                format!("consumer-crash fault: {}: {e}", path.display()),
            );
        }
    }

    /// Pids of every consumer process still held.
    pub fn pids(&self) -> Vec<u32> {
        self.procs.procs.iter().flatten().map(|p| p.pid).collect()
    }

    /// The scale target's pods as the engine saw them at the last tick (busy, crash-looping,
    /// what a message costs each consumer).
    pub fn consumer_pods(&self) -> Vec<engine::ConsumerPod> {
        self.virt.consumer_pods()
    }

    /// The pods' states (for tests and views): (key, state, node).
    pub fn pods(&self) -> Vec<(String, PodState, Option<String>)> {
        self.virt
            .alive()
            .map(|i| {
                let p = &self.virt.pods[i];
                (p.key.clone(), p.state, p.node.clone())
            })
            .collect()
    }

    /// Stop every consumer: SIGTERM, wait up to `grace`, then SIGKILL; returns when all have
    /// exited (the final reaper).
    pub async fn shutdown(&mut self, grace: Duration) {
        let mut procs: Vec<PodProcess> = self
            .procs
            .procs
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for p in &procs {
            p.terminate();
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
