//! The simulator: the engine in virtual time, against a modelled queue, consumers and nodes.
//!
//! Event-driven: time jumps from one event to the next (an arrival, a message done, a node
//! Ready, a pod started, a grace period over, an engine wake), so nothing is computed where
//! nothing happens, and a day of traffic runs in seconds. Everything random comes from one
//! seeded generator: the same scenario, policy and seed give the same run.
//!
//! # What is modelled
//! - **Queue** ([`queue`]): visible / in flight / returning, FIFO groups (one batch in flight
//!   per group), redelivery, a DLQ after `maxReceiveCount` receives. The trigger sees what
//!   KEDA's `aws-sqs-queue` scaler reads: visible + not visible (in flight, and abandoned
//!   messages until their visibility timeout) + delayed per `scaleOnInFlight` /
//!   `scaleOnDelayed`, exact (AWS's `ApproximateNumberOf*` lag is not modelled).
//! - **Consumers** as `kedge consume` behaves: a long poll answered as soon as a message is
//!   visible, a batch of up to `batch` messages worked `concurrency` at a time (work time fixed
//!   or drawn from the scenario's distribution), the next receive when the batch is done,
//!   visibility kept alive while working. SIGTERM: an idle consumer exits at once, a busy one
//!   finishes its batch within `grace_period` and gives back what is left. A SIGKILLed
//!   consumer's messages return after the visibility timeout.
//! - **ScaledJobs**: KEDA's executor polls at `pollingInterval` ([`engine::jobs`]); each Job
//!   is one pod whose consumer receives once (up to `batch` messages, waiting at most
//!   `wait_time`), works what it got and exits, completing the Job; a Job whose pod is killed
//!   gets another (within `backoffLimit`).
//! - **Pods**: the ReplicaSet creates pods up to the written count and deletes the ones
//!   [`engine::replicaset::victims`] ranks first (kedge's choice reaches it as a lower deletion
//!   cost); kube-scheduler binds with [`engine::placement::bind`]; a bound pod runs its
//!   consumer after `pod_start`.
//! - **Nodes**: a claim is a node of its first option (the cheapest fitting offering the
//!   engine has not seen refused), in flight until `boot_delay` has passed (at once under the
//!   oracle's `instant_boot`), billed per second from launch to deletion with EC2's 60 s
//!   minimum. Baseline nodes run all along outside any NodePool.
//! - **Faults** (the scenario's `faults:`), injected here and handled by the engine:
//!   `scaler-down` (every trigger read fails), `no-capacity` (launches of the listed types are
//!   refused; [`Virtual::relaunch_failed`] hands them to the engine), `node-not-ready` (nodes
//!   launched meanwhile never become Ready), `consumer-crash` (a consumer dies on what it
//!   receives, its messages come back after the visibility timeout, it restarts after the
//!   kubelet's back-off, `consumer.restart_backoff` doubled per crash; meanwhile its pod is
//!   not ready and, after a short run, crash-looping for the engine).
//!
//! # Left out
//! API latencies and watch delays (effects land in the step that decides them), AWS's
//! approximate queue counters, node and pod failures other than the scenario's chaos and
//! faults, the kubelet's back-off reset after 10 minutes of running, spot interruptions,
//! image pulls beyond the fixed `pod_start`, DaemonSets. A ScaledJob's Jobs are kept for the
//! whole run (a few hundred bytes per Job and pod), so a run's memory grows with its Job
//! count; the Jobs' `activeDeadlineSeconds`, `parallelism` and `completions` are not modelled
//! (one pod, one completion per Job).

pub mod queue;
pub mod report;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use clock::Timestamp;
use engine::{Engine, Foresight, Policy, ScaleInput, WorkloadKey};
use model::karpenter::NodePool;
use model::keda::triggers::TriggerConfig;
use model::quantity::Quantity;
use provision::catalog::Catalog;
use rand::{Rng, SeedableRng};

use crate::scenario::{self, ActiveFaults, Chaos, Fault, Loaded, Trace, Work, Workload};
use crate::virt::{Backend, PodState, PodTiming, Setup, Virtual};
use queue::{Msg, Queue};
use report::{Decision, Histogram, JobCounts, RunReport, RunSummary, Sample};

/// Virtual time starts here (a real-looking epoch time, so timestamps in logs read as dates).
pub const T0: u64 = 1_700_000_000_000;

/// Why a simulation cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Workload(#[from] crate::virt::WorkloadError),
    #[error("baseline: {0}")]
    Baseline(String),
    #[error("pod.{field} {value:?}: {message}")]
    Quantity {
        field: &'static str,
        value: String,
        message: String,
    },
    #[error(
        "trigger {index} ({kind}): the simulator models aws-sqs-queue triggers (queue depth); this trigger type has no modelled source"
    )]
    Trigger { index: usize, kind: String },
    #[error("trigger {index}: {message}")]
    TriggerConfig { index: usize, message: String },
    #[error("the policy {0} needs a simulator (it knows the future arrivals)")]
    Policy(String),
}

/// One simulated run.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub name: String,
    pub policy: Policy,
    /// The ScaledObject or ScaledJob.
    pub workload: Workload,
    pub nodepools: Vec<NodePool>,
    pub catalog: Arc<Catalog>,
    pub baseline: Vec<String>,
    pub pod_cpu: Quantity,
    pub pod_memory: Quantity,
    pub boot_delay: Duration,
    pub pod_start: Duration,
    pub consumer: scenario::Consumer,
    pub queue: scenario::Queue,
    pub arrivals: Trace,
    /// Arrivals stop here; the run goes on until the backlog is done (or `drain_limit`).
    pub duration: Duration,
    pub drain_limit: Duration,
    pub seed: u64,
    pub chaos: Vec<Chaos>,
    /// Faults injected in the decision path's inputs (`faults:` of the scenario).
    pub faults: Vec<Fault>,
    /// The edits the run was made with (for the report).
    pub settings: Vec<String>,
}

impl SimConfig {
    /// A scenario as a run of `policy` with `seed`.
    pub fn from_loaded(
        l: &Loaded,
        policy: Policy,
        seed: u64,
        duration: Option<Duration>,
    ) -> Result<SimConfig, SimError> {
        let s = &l.scenario;
        let q = |field: &'static str, v: &str| {
            v.parse::<Quantity>().map_err(|e| SimError::Quantity {
                field,
                value: v.to_string(),
                message: e.to_string(),
            })
        };
        let mut policy = policy;
        if let Some(j) = s.joint {
            policy.joint = j;
        }
        Ok(SimConfig {
            name: s.name.clone(),
            policy,
            workload: l.manifests.workload.clone(),
            nodepools: l.manifests.nodepools.clone(),
            catalog: Arc::new(Catalog::aws()),
            baseline: vec![s.baseline.instance_type.clone(); s.baseline.count as usize],
            pod_cpu: q("cpu", &s.pod.cpu)?,
            pod_memory: q("memory", &s.pod.memory)?,
            boot_delay: s.boot_delay,
            pod_start: s.pod_start,
            consumer: s.consumer.clone(),
            queue: s.queue.clone(),
            arrivals: l.arrivals.clone(),
            duration: duration.unwrap_or_else(|| s.total(Some(&l.arrivals))),
            drain_limit: Duration::from_secs(6 * 3600),
            seed,
            chaos: s.chaos.clone(),
            faults: s.faults.clone(),
            settings: Vec::new(),
        })
    }
}

fn work_sample(w: &Work, rng: &mut rand::rngs::StdRng) -> u64 {
    let secs = match *w {
        Work::Fixed(d) => d.as_secs_f64(),
        Work::Exponential { mean } => {
            let u: f64 = rng.random::<f64>();
            -mean.as_secs_f64() * (1.0 - u).ln()
        }
        Work::Lognormal { median, p99 } => {
            let (mu, sigma) = scenario::lognormal_params(median, p99);
            // Box–Muller.
            let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
            let u2: f64 = rng.random::<f64>();
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            (mu + sigma * z).exp()
        }
    };
    (secs * 1000.0).round().clamp(0.0, 1e12) as u64
}

fn ts(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// A message a consumer holds.
#[derive(Debug, Clone, Copy)]
struct Held {
    msg: Msg,
    /// Work finishes then (`None`: waiting for a worker).
    done: Option<u64>,
    token: u64,
    /// Its work time (ms), once started.
    work: u64,
}

/// One pod's consumer, as `kedge consume` behaves.
#[derive(Debug, Clone, Default)]
struct Consumer {
    running: bool,
    /// When it last started (ms).
    started: u64,
    /// How long its last run lasted when it crashed (ms).
    last_run: u64,
    held: Vec<Held>,
    working: u32,
    idle_queued: bool,
    /// SIGTERM received: no more receives; exits when the batch is done or at the deadline.
    stopping: bool,
    /// A Job's consumer received (it exits when that is done).
    received: bool,
    /// Its mean work time per message so far (ms; smoothed as `kedge consume` does), once it
    /// finished one.
    work_mean: Option<f64>,
}

/// The modelled consumers and queue: the simulator's [`Backend`].
struct Model<'c> {
    cfg: &'c SimConfig,
    consumers: Vec<Consumer>,
    queue: Queue,
    idle: VecDeque<usize>,
    work_heap: BinaryHeap<Reverse<(u64, usize, u64)>>,
    /// Grace-period deadlines of stopping consumers.
    grace: BinaryHeap<Reverse<(u64, usize)>>,
    /// Consumers that exited since the substrate last looked.
    exits: Vec<usize>,
    seq: u64,
    rng: rand::rngs::StdRng,
    latency: Histogram,
    window: Vec<u64>,
    window_processed: u64,
    processed: u64,
    interrupted: u64,
    buf: Vec<Msg>,
    /// A `consumer-crash` fault is active: a consumer crashes on this share of the messages
    /// it receives (which ones is fixed per message: a poison message stays poison).
    crashing: Option<f64>,
    /// Crashed consumers' restarts (the kubelet's back-off).
    restarts: BinaryHeap<Reverse<(u64, usize)>>,
    /// Crashes per consumer (the back-off doubles with each).
    crash_counts: Vec<u32>,
    crashes: u64,
    /// The pods are Jobs' (a consumer receives once and exits).
    jobs: bool,
    /// Job consumers' long-poll deadlines: one that received nothing by then exits.
    polls: BinaryHeap<Reverse<(u64, usize)>>,
}

impl Backend for Model<'_> {
    fn start(&mut self, i: usize, _key: &str, now: u64) {
        if self.consumers.len() <= i {
            self.consumers.resize_with(i + 1, Consumer::default);
        }
        self.begin(i, now);
    }

    fn stop(&mut self, i: usize, now: u64) -> bool {
        let Some(c) = self.consumers.get_mut(i) else {
            return true;
        };
        if c.held.is_empty() {
            c.running = false;
            return true;
        }
        c.stopping = true;
        let deadline = now + self.cfg.consumer.grace_period.as_millis() as u64;
        self.grace.push(Reverse((deadline, i)));
        false
    }

    fn kill(&mut self, i: usize, now: u64) {
        let back = now + self.cfg.consumer.visibility_timeout.as_millis() as u64;
        if let Some(c) = self.consumers.get_mut(i) {
            for h in std::mem::take(&mut c.held) {
                self.queue.abandon(h.msg, back);
            }
            c.running = false;
            c.working = 0;
        }
    }

    fn busy(&self, i: usize) -> bool {
        self.consumers.get(i).is_some_and(|c| !c.held.is_empty())
    }
    fn per_message(&self, i: usize) -> Option<Duration> {
        let mean = self.consumers.get(i)?.work_mean?;
        let conc = f64::from(self.cfg.consumer.concurrency.max(1));
        Some(Duration::from_secs_f64(mean / conc / 1000.0))
    }
    fn back_off(&self, i: usize) -> Option<Duration> {
        // In its back-off: crashed (counted) and not restarted yet.
        let c = self.consumers.get(i)?;
        let crashed = self.crash_counts.get(i).is_some_and(|&n| n > 0);
        (crashed && !c.running && !c.stopping).then(|| Duration::from_millis(c.last_run))
    }
}

impl Model<'_> {
    /// Consumer `i` starts (in a new pod, or again after a crash).
    fn begin(&mut self, i: usize, now: u64) {
        let c = &mut self.consumers[i];
        c.running = true;
        c.started = now;
        c.received = false;
        if self.jobs {
            let deadline = now + self.cfg.consumer.wait_time.as_millis() as u64;
            self.polls.push(Reverse((deadline, i)));
        }
        self.make_idle(i);
    }

    /// Job consumers whose long poll ended with nothing received exit.
    fn polls(&mut self, now: u64) {
        while let Some(Reverse((t, i))) = self.polls.peek().copied() {
            if t > now {
                break;
            }
            self.polls.pop();
            let c = &mut self.consumers[i];
            if c.running
                && !c.stopping
                && !c.received
                && c.held.is_empty()
                && c.started + self.cfg.consumer.wait_time.as_millis() as u64 == t
            {
                c.running = false;
                self.exits.push(i);
            }
        }
    }

    fn make_idle(&mut self, i: usize) {
        let c = &mut self.consumers[i];
        // A Job's consumer receives once.
        let done = self.jobs && c.received;
        if !c.idle_queued && c.running && !c.stopping && !done {
            c.idle_queued = true;
            self.idle.push_back(i);
        }
    }

    fn start_work(&mut self, i: usize, now: u64) {
        let conc = u32::from(self.cfg.consumer.concurrency);
        let n = self.consumers[i].held.len();
        for k in 0..n {
            if self.consumers[i].working >= conc {
                break;
            }
            if self.consumers[i].held[k].done.is_none() {
                let d = now + work_sample(&self.cfg.consumer.work, &mut self.rng);
                self.seq += 1;
                let token = self.seq;
                let c = &mut self.consumers[i];
                c.held[k].done = Some(d);
                c.held[k].token = token;
                c.held[k].work = d - now;
                c.working += 1;
                self.work_heap.push(Reverse((d, i, token)));
            }
        }
    }

    /// Idle consumers receive while messages are visible.
    fn dispatch(&mut self, now: u64) {
        while self.queue.deliverable() {
            let Some(i) = self.idle.pop_front() else {
                return;
            };
            let c = &mut self.consumers[i];
            c.idle_queued = false;
            if !c.running || c.stopping || !c.held.is_empty() {
                continue;
            }
            let mut buf = std::mem::take(&mut self.buf);
            self.queue
                .receive(usize::from(self.cfg.consumer.batch), &mut buf);
            if buf.is_empty() {
                self.buf = buf;
                self.make_idle(i);
                continue;
            }
            if let Some(share) = self.crashing
                && buf.iter().any(|m| poison(m, share))
            {
                // The consumer dies before deleting anything: the messages come back after
                // their visibility timeout (the receive already counted towards
                // maxReceiveCount), the container restarts after its back-off.
                let back = now + self.cfg.consumer.visibility_timeout.as_millis() as u64;
                for m in buf.drain(..) {
                    self.queue.abandon(m, back);
                }
                self.buf = buf;
                if self.crash_counts.len() <= i {
                    self.crash_counts.resize(i + 1, 0);
                }
                let n = self.crash_counts[i];
                self.crash_counts[i] += 1;
                self.crashes += 1;
                let c = &mut self.consumers[i];
                c.running = false;
                c.last_run = now.saturating_sub(c.started);
                let delay = self.cfg.consumer.restart_delay(n).as_millis() as u64;
                self.restarts.push(Reverse((now + delay, i)));
                continue;
            }
            let c = &mut self.consumers[i];
            c.received = true;
            for m in buf.drain(..) {
                c.held.push(Held {
                    msg: m,
                    done: None,
                    token: 0,
                    work: 0,
                });
            }
            self.buf = buf;
            self.start_work(i, now);
        }
    }

    fn complete(&mut self, i: usize, token: u64, now: u64) {
        let c = &mut self.consumers[i];
        let Some(k) = c
            .held
            .iter()
            .position(|h| h.token == token && h.done.is_some())
        else {
            return;
        };
        let h = c.held.swap_remove(k);
        c.working -= 1;
        // An exponentially weighted mean, weight 0.2 (as `kedge consume` smooths it).
        let w = h.work as f64;
        c.work_mean = Some(c.work_mean.map_or(w, |m| m + 0.2 * (w - m)));
        self.queue.delete(&h.msg);
        self.processed += 1;
        self.window_processed += 1;
        let lat = now.saturating_sub(h.msg.sent);
        self.latency.record(lat);
        self.window.push(lat);
        if !self.consumers[i].held.is_empty() {
            self.start_work(i, now);
            return;
        }
        if self.consumers[i].stopping || self.jobs {
            // A Job's consumer is done after its one receive.
            self.consumers[i].running = false;
            self.exits.push(i);
        } else {
            self.make_idle(i);
        }
    }

    /// Grace periods that ended by `now`: what is still held is given back.
    fn graces(&mut self, now: u64) {
        while let Some(Reverse((t, i))) = self.grace.peek().copied() {
            if t > now {
                break;
            }
            self.grace.pop();
            let c = &mut self.consumers[i];
            if !c.stopping || !c.running {
                continue;
            }
            let held = std::mem::take(&mut c.held);
            c.running = false;
            c.working = 0;
            self.interrupted += held.len() as u64;
            for h in held {
                self.queue.give_back(h.msg);
            }
            self.exits.push(i);
        }
    }

    fn next_event(&self) -> Option<u64> {
        let w = self.work_heap.peek().map(|Reverse((t, _, _))| *t);
        let g = self.grace.peek().map(|Reverse((t, _))| *t);
        let r = self.queue.next_return();
        let c = self.restarts.peek().map(|Reverse((t, _))| *t);
        let p = self.polls.peek().map(|Reverse((t, _))| *t);
        [w, g, r, c, p].into_iter().flatten().min()
    }
}

/// The substrate's state.
struct Sim<'c> {
    cfg: &'c SimConfig,
    key: WorkloadKey,
    trigger: model::keda::triggers::AwsSqsQueue,
    activation: f64,
    engine: Engine,
    virt: Virtual,
    model: Model<'c>,
    decisions: Vec<Decision>,
    /// Chaos moments not yet reached, in order.
    chaos: VecDeque<(u64, usize)>,
    /// Moments the active faults change, not yet reached.
    fault_edges: VecDeque<u64>,
    faults: ActiveFaults,
    messages: u64,
    dirty: bool,
}

impl<'c> Sim<'c> {
    fn new(cfg: &'c SimConfig) -> Result<Sim<'c>, SimError> {
        if cfg.policy.perfect_knowledge && cfg.arrivals.per_second.is_empty() {
            return Err(SimError::Policy(cfg.policy.name.to_string()));
        }
        let w = &cfg.workload;
        let mut trigger = None;
        for (index, t) in w.triggers().iter().enumerate() {
            match TriggerConfig::parse(t) {
                Ok(TriggerConfig::AwsSqsQueue(c)) if trigger.is_none() => trigger = Some(c),
                Ok(_) => {
                    return Err(SimError::Trigger {
                        index,
                        kind: t.trigger_type.clone(),
                    });
                }
                Err(e) => {
                    return Err(SimError::TriggerConfig {
                        index,
                        message: e
                            .iter()
                            .map(|e| e.to_string())
                            .collect::<Vec<_>>()
                            .join("; "),
                    });
                }
            }
        }
        let Some(trigger) = trigger else {
            return Err(SimError::Trigger {
                index: 0,
                kind: "none".into(),
            });
        };
        let activation = trigger.activation_queue_length as f64;
        let Setup {
            key,
            engine,
            mut virt,
        } = Setup::new(
            w,
            cfg.policy.clone(),
            cfg.catalog.clone(),
            cfg.nodepools.clone(),
            PodTiming {
                cpu: cfg.pod_cpu,
                memory: cfg.pod_memory,
                boot: cfg.boot_delay,
                pod_start: cfg.pod_start,
            },
            ts(T0),
        )?;
        virt.add_baseline(&cfg.baseline, T0)
            .map_err(SimError::Baseline)?;
        let mut chaos: Vec<(u64, usize)> = cfg
            .chaos
            .iter()
            .enumerate()
            .map(|(i, c)| (T0 + c.at.as_millis() as u64, i))
            .collect();
        chaos.sort();
        let model = Model {
            cfg,
            consumers: Vec::new(),
            queue: Queue::new(
                cfg.queue.fifo(),
                cfg.queue.groups,
                cfg.queue.max_receive_count,
            ),
            idle: VecDeque::new(),
            work_heap: BinaryHeap::new(),
            grace: BinaryHeap::new(),
            exits: Vec::new(),
            seq: 0,
            rng: rand::rngs::StdRng::seed_from_u64(cfg.seed),
            latency: Histogram::default(),
            window: Vec::new(),
            window_processed: 0,
            processed: 0,
            interrupted: 0,
            buf: Vec::new(),
            crashing: None,
            restarts: BinaryHeap::new(),
            crash_counts: Vec::new(),
            crashes: 0,
            jobs: matches!(w, Workload::ScaledJob(_)),
            polls: BinaryHeap::new(),
        };
        let fault_edges = ActiveFaults::edges(&cfg.faults)
            .into_iter()
            .map(|d| T0 + d.as_millis() as u64)
            .collect();
        let mut sim = Sim {
            cfg,
            key,
            trigger,
            activation,
            engine,
            virt,
            model,
            decisions: Vec::new(),
            chaos: chaos.into(),
            fault_edges,
            faults: ActiveFaults::default(),
            messages: 0,
            dirty: true,
        };
        sim.virt.reconcile(T0, &mut sim.model);
        Ok(sim)
    }

    fn record(&mut self, now: u64, kind: &'static str, text: String) {
        self.decisions.push(Decision {
            at_ms: now - T0,
            kind,
            text,
        });
    }

    fn chaos(&mut self, now: u64) {
        while let Some(&(t, c)) = self.chaos.front() {
            if t > now {
                break;
            }
            self.chaos.pop_front();
            let n = self.cfg.chaos[c].sigkill_busy;
            let busy: Vec<usize> = self
                .virt
                .alive()
                .filter(|&i| self.virt.pods[i].state == PodState::Running && self.model.busy(i))
                .take(n)
                .collect();
            let k = busy.len();
            for i in busy {
                self.model.kill(i, now);
                self.virt.killed(i, now);
            }
            self.record(
                now,
                "pod",
                format!("chaos: SIGKILL to {k} busy consumer(s)"),
            );
            self.dirty = true;
        }
    }

    /// Faults that begin or end by `now`: hand them to the parts that inject them.
    fn faults(&mut self, now: u64) {
        let mut changed = false;
        while self.fault_edges.front().is_some_and(|&t| t <= now) {
            self.fault_edges.pop_front();
            changed = true;
        }
        if !changed {
            return;
        }
        let a = ActiveFaults::at(&self.cfg.faults, Duration::from_millis(now - T0));
        if a != self.faults {
            self.record(now, "fault", format!("faults active: {a}"));
        }
        self.virt.faults = a.clone();
        self.model.crashing = a.consumer_crash;
        self.faults = a;
        self.dirty = true;
    }

    /// Crashed consumers whose back-off is over start again (if their pod still runs).
    fn restarts(&mut self, now: u64) {
        while let Some(Reverse((t, i))) = self.model.restarts.peek().copied() {
            if t > now {
                break;
            }
            self.model.restarts.pop();
            if self
                .virt
                .pods
                .get(i)
                .is_some_and(|p| p.state == PodState::Running)
                && let Some(c) = self.model.consumers.get_mut(i)
                && !c.running
                && !c.stopping
            {
                self.model.begin(i, now);
            }
        }
    }

    fn queue_metric(&self) -> f64 {
        let q = &self.model.queue;
        let visible = q.visible_count as i64;
        let not_visible = (q.in_flight + q.returning()) as i64;
        self.trigger.queue_length_from(visible, not_visible, 0) as f64
    }

    fn foresight(&self, now: u64) -> Option<Foresight> {
        if !self.cfg.policy.perfect_knowledge {
            return None;
        }
        let interval = self
            .engine
            .workload(&self.key)
            .map(|l| l.autoscaler().config().polling_interval)
            .unwrap_or(Duration::from_secs(30));
        let from = ((now - T0) / 1000) as usize;
        let to = from + interval.as_secs().max(1) as usize;
        let a = &self.cfg.arrivals.per_second;
        let rate = a
            .get(from.min(a.len())..to.min(a.len()))
            .and_then(|s| s.iter().max())
            .copied()
            .unwrap_or(0);
        let q = &self.model.queue;
        Some(Foresight {
            arrival_rate: f64::from(rate),
            backlog: (q.visible_count + q.in_flight + q.returning()) as f64,
            work: self.cfg.consumer.work.mean(),
            concurrency: u32::from(self.cfg.consumer.concurrency),
        })
    }

    /// The trigger's reading now: the queue metric, or the injected fault.
    fn trigger_sample(&self) -> Result<f64, String> {
        if self.faults.scaler_down {
            Err("fault: the queue's API does not answer".to_string())
        } else {
            Ok(self.queue_metric())
        }
    }

    /// A due ScaledJob poll: KEDA's executor decides, the Job controller makes the pods.
    fn step_jobs(&mut self, now: u64) {
        if self.engine.due_jobs(ts(now)).is_empty() {
            return;
        }
        let activation = self.activation;
        let samples = [self.trigger_sample().map(|v| (v, v > activation))];
        let (events, _) =
            self.virt
                .step_jobs(&mut self.engine, &self.key, now, &samples, &mut self.model);
        for e in &events {
            self.decisions.push(Decision {
                at_ms: now - T0,
                kind: e.topic.as_str(),
                text: e.line(),
            });
        }
        self.exits(now);
    }

    fn step_engine(&mut self, now: u64) {
        self.virt.refresh_flags(&self.model);
        self.step_jobs(now);
        let due = !self.engine.due(ts(now)).is_empty();
        let pods;
        let mut inputs = Vec::new();
        if due {
            pods = self.virt.consumer_pods();
            let trigger = self
                .trigger_sample()
                .map(|v| autoscale::MetricSample::with_threshold(v, self.activation));
            inputs.push((
                self.key.clone(),
                ScaleInput {
                    replicas: self.virt.replicas,
                    ready: None,
                    triggers: vec![trigger],
                    pods: Some(&pods),
                    foresight: self.foresight(now),
                },
            ));
        }
        let step = self.engine.step(ts(now), &mut self.virt.cluster, &inputs);
        drop(inputs);
        for e in &step.events {
            self.decisions.push(Decision {
                at_ms: now - T0,
                kind: e.topic.as_str(),
                text: e.line(),
            });
        }
        let instant = self.cfg.policy.instant_boot;
        for e in step.effects {
            self.virt.apply(e, now, instant, &mut self.model);
        }
        for e in self
            .virt
            .relaunch_failed(&mut self.engine, now, instant, &mut self.model)
        {
            self.decisions.push(Decision {
                at_ms: now - T0,
                kind: e.topic.as_str(),
                text: e.line(),
            });
        }
        self.exits(now);
        self.virt.reconcile(now, &mut self.model);
        self.exits(now);
        self.virt.place(now);
        for n in self.virt.take_notes() {
            self.record(n.at, "node", n.text);
        }
    }

    fn exits(&mut self, now: u64) {
        for i in std::mem::take(&mut self.model.exits) {
            self.virt.exited(i, now);
            self.dirty = true;
        }
    }

    fn sample(&mut self, now: u64, every: u64) -> Sample {
        let (cost, _, _, rate) = self.virt.costs(now);
        let (running, pending, terminating) = self.virt.pod_counts();
        let m = &mut self.model;
        let mut w = std::mem::take(&mut m.window);
        w.sort_unstable();
        let pct = |p: f64| -> u64 {
            if w.is_empty() {
                0
            } else {
                let r = ((p / 100.0) * w.len() as f64).ceil().max(1.0) as usize;
                w[r.min(w.len()) - 1]
            }
        };
        let mut s = Sample {
            t_s: (now - T0) as f64 / 1000.0,
            visible: m.queue.visible_count,
            in_flight: m.queue.in_flight,
            desired: self.virt.replicas,
            running: running + terminating,
            pending,
            cost_per_hour: rate,
            cost_usd: cost,
            throughput: m.window_processed as f64 / (every as f64 / 1000.0),
            latency_p50_ms: pct(50.0),
            latency_p99_ms: pct(99.0),
            ..Default::default()
        };
        m.window_processed = 0;
        w.clear();
        m.window = w;
        for n in &self.virt.cluster.nodes {
            if n.in_flight {
                s.nodes_launching += 1;
            } else {
                s.nodes_ready += 1;
            }
        }
        s
    }
}

/// Run a simulation. `progress` is called now and then with the fraction of the arrival window
/// done.
pub fn run(cfg: &SimConfig, progress: &mut dyn FnMut(f64)) -> Result<RunReport, SimError> {
    // Wall time is reported (`wall_s`), never decided on.
    #[allow(clippy::disallowed_methods)]
    let wall = std::time::Instant::now();
    let mut sim = Sim::new(cfg)?;
    let window_ms = cfg.duration.as_millis() as u64;
    let end_arrivals = T0 + window_ms;
    let hard_end = end_arrivals + cfg.drain_limit.as_millis() as u64;
    let every = sample_every(cfg.duration);
    let mut next_sample = T0;
    let mut samples = Vec::new();
    // Arrivals: second `sec`, message `k` of `count` at sec + k/count.
    let per_second = &cfg.arrivals.per_second;
    let arrival_at = |sec: usize, k: u32| -> u64 {
        T0 + sec as u64 * 1000 + u64::from(k) * 1000 / u64::from(per_second[sec])
    };
    let next_second = |mut sec: usize| {
        while sec < per_second.len() && per_second[sec] == 0 {
            sec += 1;
        }
        sec
    };
    let in_window = |sec: usize| sec < per_second.len() && (sec as u64) * 1000 < window_ms;
    let mut sec = next_second(0);
    let mut k = 0u32;
    let groups = sim.model.queue.groups();
    let mut now = T0;
    let mut engine_wake = T0;
    let mut iterations = 0u64;
    loop {
        let mut next = hard_end.min(next_sample).min(engine_wake.max(now));
        if in_window(sec) {
            next = next.min(arrival_at(sec, k));
        }
        for t in [
            sim.model.next_event(),
            sim.virt.next_due(),
            sim.chaos.front().map(|c| c.0),
            sim.fault_edges.front().copied(),
        ]
        .into_iter()
        .flatten()
        {
            next = next.min(t);
        }
        let q = &sim.model.queue;
        let drained = q.visible_count == 0 && q.in_flight == 0 && q.returning() == 0;
        if now >= end_arrivals && drained {
            break;
        }
        if next >= hard_end {
            now = hard_end;
            break;
        }
        now = next.max(now);
        iterations += 1;
        if iterations.is_multiple_of(1 << 16) {
            progress(((now - T0) as f64 / window_ms.max(1) as f64).min(1.0));
        }
        sim.model.queue.release_due(now);
        if sim.virt.advance(now, &mut sim.model) {
            sim.dirty = true;
        }
        sim.chaos(now);
        sim.faults(now);
        sim.restarts(now);
        while let Some(Reverse((t, i, token))) = sim.model.work_heap.peek().copied() {
            if t > now {
                break;
            }
            sim.model.work_heap.pop();
            sim.model.complete(i, token, now);
        }
        sim.model.graces(now);
        sim.model.polls(now);
        sim.exits(now);
        while in_window(sec) && arrival_at(sec, k) <= now {
            let group = if groups > 0 {
                sim.model.rng.random_range(0..groups)
            } else {
                0
            };
            sim.model.queue.push(
                Msg {
                    sent: arrival_at(sec, k),
                    receives: 0,
                    group,
                },
                false,
            );
            sim.messages += 1;
            k += 1;
            if k >= per_second[sec] {
                k = 0;
                sec = next_second(sec + 1);
            }
        }
        sim.model.dispatch(now);
        if now >= engine_wake || sim.dirty {
            sim.dirty = false;
            sim.step_engine(now);
            sim.model.dispatch(now);
            engine_wake = sim.engine.next_wake().as_millis().max(now + 1);
        }
        if now >= next_sample {
            samples.push(sim.sample(now, every));
            next_sample += every;
        }
    }
    progress(1.0);
    samples.push(sim.sample(now, every));
    let (cost, pool, secs, _) = sim.virt.costs(now);
    let t = &sim.virt.totals;
    let m = &sim.model;
    let q = &m.queue;
    let unprocessed = q.visible_count + q.in_flight + q.returning();
    let summary = RunSummary {
        scenario: cfg.name.clone(),
        policy: cfg.policy.name.to_string(),
        seed: cfg.seed,
        settings: cfg.settings.clone(),
        messages: sim.messages,
        processed: m.processed,
        lost_messages: sim
            .messages
            .saturating_sub(m.processed + unprocessed + q.dead_lettered),
        unprocessed,
        dead_lettered: q.dead_lettered,
        redelivered: q.redelivered,
        busy_pods_killed: t.busy_pods_killed,
        interrupted_messages: m.interrupted,
        cost_usd: cost,
        nodepool_cost_usd: pool,
        node_hours: secs / 3600.0,
        latency_p50_ms: m.latency.percentile(50.0),
        latency_p95_ms: m.latency.percentile(95.0),
        latency_p99_ms: m.latency.percentile(99.0),
        latency_max_ms: m.latency.max(),
        max_replicas: t.max_replicas,
        max_nodes: t.max_nodes,
        nodes_launched: t.nodes_launched,
        nodes_removed: t.nodes_removed,
        scale_events: t.scale_events,
        jobs: sim
            .virt
            .job_counts()
            .map(|(created, succeeded, failed)| JobCounts {
                created,
                succeeded,
                failed,
            }),
        simulated_s: (now - T0) as f64 / 1000.0,
        wall_s: wall.elapsed().as_secs_f64(),
    };
    Ok(RunReport {
        summary,
        samples,
        decisions: sim.decisions,
    })
}

/// Whether `m` crashes its consumer under a crash fault on `share` of the messages: a fixed
/// property of the message (a hash of its send time), so a poison message crashes every
/// consumer that receives it.
fn poison(m: &Msg, share: f64) -> bool {
    if share >= 1.0 {
        return true;
    }
    let mut x = m.sent.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    (x % 1_000_000) as f64 / 1_000_000.0 < share
}

/// One sample per ~2,000 over the run, at least every second.
fn sample_every(d: Duration) -> u64 {
    (d.as_millis() as u64 / 2000).max(1000).div_ceil(1000) * 1000
}
