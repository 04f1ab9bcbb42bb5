//! The scenario format shared by `kedge up` (the twin) and `kedge simulate` (the simulator):
//! YAML, documented in `examples/up/README.md`.
//!
//! Reading is two-stage so `kedge simulate --set PATH=VALUE` can edit any field of the
//! scenario or of its manifests before anything is decoded: [`Source::read`] keeps the scenario
//! and every manifest document as JSON values, [`Source::set`] edits one of them,
//! [`Source::load`] decodes and validates everything (unknown fields are errors that name the
//! field) and reads the arrival trace.

use std::path::{Path, PathBuf};
use std::time::Duration;

use model::karpenter::NodePool;
use model::keda::{ScaledJob, ScaledObject, Trigger, TriggerAuthentication};
use serde::Deserialize;
use serde_json::Value;

/// Everything that makes a scenario unusable, with what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("--set {path}: {message}")]
    Set { path: String, message: String },
}

fn invalid(file: &str, message: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        file: file.to_string(),
        message: message.into(),
    }
}

/// `30s`, `250ms`, `5m`, `2h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "duration {s:?}: unit must be ms, s, m or h (e.g. 30s)"
            ));
        }
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("duration {s:?} is not a number followed by ms, s, m or h"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("duration {s:?} must be a non-negative number"));
    }
    Duration::try_from_secs_f64(v * scale).map_err(|e| format!("duration {s:?}: {e}"))
}

fn dur<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

fn opt_dur<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    s.map(|s| parse_duration(&s).map_err(serde::de::Error::custom))
        .transpose()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// Whole run; defaults to the sum of the phases (or the trace's length).
    #[serde(default, deserialize_with = "opt_dur")]
    pub duration: Option<Duration>,
    /// The twin's control-loop period.
    #[serde(default = "default_tick", deserialize_with = "dur")]
    pub tick: Duration,
    /// Launch → Ready for a node.
    #[serde(default = "default_boot", deserialize_with = "dur")]
    pub boot_delay: Duration,
    /// Pod bound → consumer running (image pull, container start).
    #[serde(default = "default_pod_start", deserialize_with = "dur")]
    pub pod_start: Duration,
    /// Overrides the policy's joint decisions (request capacity in the scale-out step).
    #[serde(default)]
    pub joint: Option<bool>,
    pub baseline: Baseline,
    pub pod: PodSpec,
    #[serde(default)]
    pub consumer: Consumer,
    #[serde(default)]
    pub queue: Queue,
    /// Manifest files (ScaledObject, TriggerAuthentication, NodePool), relative to the
    /// scenario file.
    pub manifests: Vec<PathBuf>,
    /// Producers phase by phase; or `trace`.
    #[serde(default)]
    pub phases: Vec<Phase>,
    /// A CSV of arrivals (`t_s,messages`: the messages arriving in second [t_s, t_s+1)),
    /// relative to the scenario file; instead of `phases`.
    #[serde(default)]
    pub trace: Option<PathBuf>,
    #[serde(default)]
    pub chaos: Vec<Chaos>,
    /// Faults injected in the decision path's inputs (a scaler's source down, no capacity,
    /// nodes that never become Ready, consumers that crash); see [`Fault`].
    #[serde(default)]
    pub faults: Vec<Fault>,
}

fn default_tick() -> Duration {
    Duration::from_millis(250)
}
fn default_boot() -> Duration {
    Duration::from_secs(15)
}
fn default_pod_start() -> Duration {
    Duration::from_secs(5)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub instance_type: String,
    pub count: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodSpec {
    pub cpu: String,
    pub memory: String,
}

/// How long one message takes: a fixed time or a distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Work {
    Fixed(Duration),
    Exponential {
        mean: Duration,
    },
    /// Log-normal with this median and 99th percentile.
    Lognormal {
        median: Duration,
        p99: Duration,
    },
}

impl Work {
    pub fn mean(&self) -> Duration {
        match *self {
            Work::Fixed(d) => d,
            Work::Exponential { mean } => mean,
            Work::Lognormal { median, p99 } => {
                let (mu, sigma) = lognormal_params(median, p99);
                Duration::from_secs_f64((mu + sigma * sigma / 2.0).exp())
            }
        }
    }
}

/// μ and σ of a log-normal with this median and p99 (z₀.₉₉ = 2.326348).
pub fn lognormal_params(median: Duration, p99: Duration) -> (f64, f64) {
    let mu = median.as_secs_f64().max(1e-9).ln();
    let sigma = ((p99.as_secs_f64().max(1e-9).ln() - mu) / 2.326_348).max(0.0);
    (mu, sigma)
}

impl<'de> Deserialize<'de> for Work {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Dist(Dist),
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Dist {
            dist: String,
            #[serde(default)]
            mean: Option<String>,
            #[serde(default)]
            median: Option<String>,
            #[serde(default)]
            p99: Option<String>,
        }
        use serde::de::Error;
        let field = |v: &Option<String>, name: &str, dist: &str| -> Result<Duration, D::Error> {
            let s = v.as_deref().ok_or_else(|| {
                D::Error::custom(format!("work: {{dist: {dist}}} needs `{name}`"))
            })?;
            parse_duration(s).map_err(|e| D::Error::custom(format!("work.{name}: {e}")))
        };
        match Raw::deserialize(d)? {
            Raw::Text(s) => parse_duration(&s)
                .map(Work::Fixed)
                .map_err(|e| D::Error::custom(format!("work: {e}"))),
            Raw::Dist(r) => match r.dist.as_str() {
                "fixed" => Ok(Work::Fixed(field(&r.mean, "mean", "fixed")?)),
                "exponential" => Ok(Work::Exponential {
                    mean: field(&r.mean, "mean", "exponential")?,
                }),
                "lognormal" => {
                    let median = field(&r.median, "median", "lognormal")?;
                    let p99 = field(&r.p99, "p99", "lognormal")?;
                    if p99 < median {
                        return Err(D::Error::custom(
                            "work: a lognormal's p99 must be at least its median",
                        ));
                    }
                    Ok(Work::Lognormal { median, p99 })
                }
                other => Err(D::Error::custom(format!(
                    "work.dist {other:?}: expected fixed, exponential or lognormal"
                ))),
            },
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Consumer {
    pub work: Work,
    /// Messages per receive (1–10).
    pub batch: u8,
    /// Messages of a batch worked on at once.
    pub concurrency: u16,
    #[serde(deserialize_with = "dur")]
    pub visibility_timeout: Duration,
    #[serde(deserialize_with = "dur")]
    pub wait_time: Duration,
    /// After SIGTERM, how long held messages may still take before they are given back.
    #[serde(deserialize_with = "dur")]
    pub grace_period: Duration,
    /// The kubelet's restart back-off after the first crash of a consumer (doubled after
    /// each further crash, at most 5 minutes; Kubernetes' default is 10 s).
    #[serde(deserialize_with = "dur")]
    pub restart_backoff: Duration,
}

/// The kubelet's longest restart back-off ("exponential back-off delay (10s, 20s, 40s, …),
/// that is capped at five minutes", Kubernetes docs, Pod Lifecycle → Container restarts).
pub const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(300);

impl Consumer {
    /// [`restart_delay`] with this consumer's `restart_backoff`.
    pub fn restart_delay(&self, crashes: u32) -> Duration {
        restart_delay(self.restart_backoff, crashes)
    }
}

/// How long a consumer that has crashed `crashes` times before waits to restart after this
/// crash: `first` doubled per earlier crash, at most 5 minutes (or `first`, if longer). The
/// kubelet's reset after 10 minutes of running is not modelled.
pub fn restart_delay(first: Duration, crashes: u32) -> Duration {
    first
        .saturating_mul(1u32 << crashes.min(16))
        .min(MAX_RESTART_BACKOFF.max(first))
}

impl Default for Consumer {
    fn default() -> Self {
        Consumer {
            work: Work::Fixed(Duration::from_secs(1)),
            batch: 10,
            concurrency: 1,
            visibility_timeout: Duration::from_secs(30),
            wait_time: Duration::from_secs(2),
            grace_period: Duration::from_secs(10),
            restart_backoff: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Queue {
    pub name: String,
    pub table: String,
    pub max_receive_count: u32,
    /// FIFO message groups the producers spread over (a `.fifo` queue only).
    pub groups: u32,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            name: "payments-queue.fifo".into(),
            table: "payments".into(),
            max_receive_count: 5,
            groups: 256,
        }
    }
}

impl Queue {
    pub fn fifo(&self) -> bool {
        self.name.ends_with(".fifo")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    #[serde(deserialize_with = "dur")]
    pub duration: Duration,
    pub producers: u32,
    /// Messages per second per producer.
    #[serde(default)]
    pub rate: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chaos {
    #[serde(deserialize_with = "dur")]
    pub at: Duration,
    /// SIGKILL this many busy consumers.
    pub sigkill_busy: usize,
}

/// A fault injected from `at` for `for` (both since the start of the run). The substrate only
/// injects it; what kedge does about it is the engine's (docs/operator.md, "Faults").
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    #[serde(deserialize_with = "dur")]
    pub at: Duration,
    #[serde(rename = "for", deserialize_with = "dur")]
    pub duration: Duration,
    pub kind: FaultKind,
    /// `no-capacity` only: the instance types the cloud has no capacity for (empty: every
    /// type).
    #[serde(default)]
    pub instance_types: Vec<String>,
    /// `consumer-crash` only: the share of messages that crash the consumer receiving them
    /// (poison messages), 0 < share ≤ 1; default 1 (every message).
    #[serde(default)]
    pub share: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Every trigger's source fails (the queue's API does not answer).
    ScalerDown,
    /// Launches of the listed instance types fail with insufficient capacity.
    NoCapacity,
    /// Nodes launched in the window never become Ready.
    NodeNotReady,
    /// A consumer crashes on every message it receives (before deleting it) and is restarted
    /// with the kubelet's back-off.
    ConsumerCrash,
}

/// The faults active at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActiveFaults {
    pub scaler_down: bool,
    /// `Some(types)` while launches fail (an empty list: every type).
    pub no_capacity: Option<Vec<String>>,
    pub node_not_ready: bool,
    /// `Some(share)` while consumers crash on that share of the messages.
    pub consumer_crash: Option<f64>,
}

impl ActiveFaults {
    /// The faults of `faults` active `elapsed` after the start.
    pub fn at(faults: &[Fault], elapsed: Duration) -> ActiveFaults {
        let mut a = ActiveFaults::default();
        let mut all = false;
        for f in faults {
            if elapsed < f.at || elapsed >= f.at.saturating_add(f.duration) {
                continue;
            }
            match f.kind {
                FaultKind::ScalerDown => a.scaler_down = true,
                FaultKind::NoCapacity => {
                    let l = a.no_capacity.get_or_insert_with(Vec::new);
                    l.extend(f.instance_types.iter().cloned());
                    all |= f.instance_types.is_empty();
                }
                FaultKind::NodeNotReady => a.node_not_ready = true,
                FaultKind::ConsumerCrash => {
                    let share = f.share.unwrap_or(1.0);
                    a.consumer_crash = Some(a.consumer_crash.map_or(share, |s| s.max(share)));
                }
            }
        }
        if all {
            a.no_capacity = Some(Vec::new());
        }
        a
    }

    /// Whether a launch of `instance_type` fails now.
    pub fn refuses(&self, instance_type: &str) -> bool {
        self.no_capacity
            .as_ref()
            .is_some_and(|l| l.is_empty() || l.iter().any(|t| t == instance_type))
    }

    /// Moments (since the start) at which the active set changes.
    pub fn edges(faults: &[Fault]) -> Vec<Duration> {
        let mut v: Vec<Duration> = faults
            .iter()
            .flat_map(|f| [f.at, f.at.saturating_add(f.duration)])
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

impl std::fmt::Display for ActiveFaults {
    /// The active faults in a few words (`none` when there are none).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut v = Vec::new();
        if self.scaler_down {
            v.push("scaler-down".to_string());
        }
        match &self.no_capacity {
            Some(t) if t.is_empty() => v.push("no-capacity (every type)".into()),
            Some(t) => v.push(format!("no-capacity ({})", t.join(", "))),
            None => {}
        }
        if self.node_not_ready {
            v.push("node-not-ready".into());
        }
        if let Some(share) = self.consumer_crash {
            v.push(format!(
                "consumer-crash (on {:.0} % of the messages)",
                share * 100.0
            ));
        }
        if v.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&v.join(", "))
        }
    }
}

/// The longest any scenario duration may be (30 days).
const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

impl Scenario {
    fn validate(&self) -> Result<(), String> {
        if self.phases.is_empty() == self.trace.is_none() {
            return Err("give either `phases` or `trace` (one of them, not both)".into());
        }
        // Durations are added to clock readings while the scenario runs; beyond this bound
        // that arithmetic could overflow (a fuzzed scenario found it: phases of 1e19 s).
        let longest = [self.total(None), self.tick, self.boot_delay, self.pod_start]
            .into_iter()
            .chain(self.phases.iter().map(|p| p.duration))
            .chain(self.chaos.iter().map(|c| c.at))
            .chain(self.faults.iter().flat_map(|f| [f.at, f.duration]))
            .chain([
                self.consumer.visibility_timeout,
                self.consumer.grace_period,
                self.consumer.wait_time,
            ])
            .max()
            .unwrap_or_default();
        if longest > MAX_DURATION {
            return Err("durations (duration, the phases' sum, tick, boot_delay, pod_start, chaos at, faults' at and for, the consumer's) must be at most 30 days".into());
        }
        if self.tick < Duration::from_millis(10) {
            return Err("tick: at least 10ms".into());
        }
        if !(1..=10).contains(&self.consumer.batch) {
            return Err("consumer.batch must be 1–10 (SQS's receive limit)".into());
        }
        if self.consumer.concurrency == 0 {
            return Err("consumer.concurrency must be at least 1".into());
        }
        if self.consumer.visibility_timeout < Duration::from_secs(1)
            || self.consumer.visibility_timeout > Duration::from_secs(43_200)
        {
            return Err("consumer.visibility_timeout must be 1s–12h (SQS's range)".into());
        }
        if self.consumer.wait_time > Duration::from_secs(20) {
            return Err("consumer.wait_time must be at most 20s (SQS's long-poll limit)".into());
        }
        if self.queue.max_receive_count == 0 || self.queue.max_receive_count > 1000 {
            return Err("queue.max_receive_count must be 1–1000 (SQS's range)".into());
        }
        if self.queue.fifo() && self.queue.groups == 0 {
            return Err("queue.groups must be at least 1 for a FIFO queue".into());
        }
        for (i, f) in self.faults.iter().enumerate() {
            if f.duration.is_zero() {
                return Err(format!("faults[{i}].for must be more than 0s"));
            }
            if f.kind != FaultKind::NoCapacity && !f.instance_types.is_empty() {
                return Err(format!(
                    "faults[{i}].instance_types applies to kind no-capacity only"
                ));
            }
            if let Some(share) = f.share {
                if f.kind != FaultKind::ConsumerCrash {
                    return Err(format!(
                        "faults[{i}].share applies to kind consumer-crash only"
                    ));
                }
                if !(share > 0.0 && share <= 1.0) {
                    return Err(format!("faults[{i}].share must be in (0, 1]"));
                }
            }
        }
        for (i, p) in self.phases.iter().enumerate() {
            if !(p.rate >= 0.0 && p.rate.is_finite()) {
                return Err(format!("phases[{i}].rate must be a non-negative number"));
            }
            if p.producers > 0 && p.rate <= 0.0 {
                return Err(format!("phases[{i}]: producers need a rate > 0"));
            }
        }
        Ok(())
    }

    /// The whole run, from `duration`, the phases or the trace.
    pub fn total(&self, trace: Option<&Trace>) -> Duration {
        // Saturating: `validate` bounds the sum, but an unvalidated scenario must not panic.
        self.duration.unwrap_or_else(|| match trace {
            Some(t) => Duration::from_secs(t.seconds() as u64),
            None => self
                .phases
                .iter()
                .fold(Duration::ZERO, |t, p| t.saturating_add(p.duration)),
        })
    }
}

/// Arrivals per second.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    /// `per_second[s]` messages arrive in [s, s+1).
    pub per_second: Vec<u32>,
}

impl Trace {
    pub fn seconds(&self) -> usize {
        self.per_second.len()
    }
    pub fn total(&self) -> u64 {
        self.per_second.iter().map(|&n| u64::from(n)).sum()
    }

    /// Parse `t_s,messages` CSV (a header line first; rows in any order; seconds not listed
    /// have no arrivals; repeated seconds add up).
    pub fn parse_csv(name: &str, text: &str) -> Result<Trace, ScenarioError> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        match lines.next() {
            Some((_, h))
                if h.split(',').map(str::trim).collect::<Vec<_>>() == ["t_s", "messages"] => {}
            Some((i, h)) => {
                return Err(invalid(
                    name,
                    format!(
                        "line {}: the header must be `t_s,messages`, got {h:?}",
                        i + 1
                    ),
                ));
            }
            None => {
                return Err(invalid(
                    name,
                    "empty trace: the header `t_s,messages` is missing",
                ));
            }
        }
        let mut per_second: Vec<u32> = Vec::new();
        for (i, line) in lines {
            let mut f = line.split(',').map(str::trim);
            let (Some(t), Some(m), None) = (f.next(), f.next(), f.next()) else {
                return Err(invalid(
                    name,
                    format!(
                        "line {}: expected two fields `t_s,messages`, got {line:?}",
                        i + 1
                    ),
                ));
            };
            let t: usize = t.parse().map_err(|_| {
                invalid(
                    name,
                    format!("line {}: t_s {t:?} is not a whole number of seconds", i + 1),
                )
            })?;
            let m: u32 = m.parse().map_err(|_| {
                invalid(
                    name,
                    format!(
                        "line {}: messages {m:?} is not a non-negative integer",
                        i + 1
                    ),
                )
            })?;
            // A week at most: a trace is per second, and a longer one is almost surely a unit
            // mistake (milliseconds in t_s).
            if t >= 7 * 86_400 {
                return Err(invalid(
                    name,
                    format!(
                        "line {}: t_s {t} is beyond a week (604800 s); is it in seconds?",
                        i + 1
                    ),
                ));
            }
            if per_second.len() <= t {
                per_second.resize(t + 1, 0);
            }
            per_second[t] = per_second[t].checked_add(m).ok_or_else(|| {
                invalid(
                    name,
                    format!("line {}: too many messages in second {t}", i + 1),
                )
            })?;
        }
        Ok(Trace { per_second })
    }

    /// The producers' phases as arrivals per second (fractional rates carried over, so 0.5/s
    /// is a message every other second).
    pub fn from_phases(phases: &[Phase]) -> Trace {
        let mut per_second = Vec::new();
        let mut carry = 0.0f64;
        for p in phases {
            let rate = f64::from(p.producers) * p.rate;
            let secs = p.duration.as_secs_f64().round() as usize;
            for _ in 0..secs {
                carry += rate;
                let n = carry.floor();
                carry -= n;
                per_second.push(n.min(f64::from(u32::MAX)) as u32);
            }
        }
        Trace { per_second }
    }
}

/// What a scenario scales: a ScaledObject's Deployment of long-running consumers, or a
/// ScaledJob's Jobs (one consumer per Job, which receives once, works what it got and exits).
#[derive(Debug, Clone)]
pub enum Workload {
    ScaledObject(ScaledObject),
    ScaledJob(ScaledJob),
}

impl Workload {
    pub fn kind(&self) -> &'static str {
        match self {
            Workload::ScaledObject(_) => "ScaledObject",
            Workload::ScaledJob(_) => "ScaledJob",
        }
    }
    pub fn namespace(&self) -> String {
        let m = match self {
            Workload::ScaledObject(so) => &so.metadata,
            Workload::ScaledJob(sj) => &sj.metadata,
        };
        m.namespace.clone().unwrap_or_else(|| "default".into())
    }
    pub fn name(&self) -> &str {
        match self {
            Workload::ScaledObject(so) => &so.metadata.name,
            Workload::ScaledJob(sj) => &sj.metadata.name,
        }
    }
    /// The `app` label of its pods: the scale target's name, or the ScaledJob's.
    pub fn app(&self) -> &str {
        match self {
            Workload::ScaledObject(so) => &so.spec.scale_target_ref.name,
            Workload::ScaledJob(sj) => &sj.metadata.name,
        }
    }
    pub fn triggers(&self) -> &[Trigger] {
        match self {
            Workload::ScaledObject(so) => &so.spec.triggers,
            Workload::ScaledJob(sj) => &sj.spec.triggers,
        }
    }
    pub fn triggers_mut(&mut self) -> &mut Vec<Trigger> {
        match self {
            Workload::ScaledObject(so) => &mut so.spec.triggers,
            Workload::ScaledJob(sj) => &mut sj.spec.triggers,
        }
    }
    /// The ScaledObject, if that is what it is.
    pub fn scaled_object(&self) -> Option<&ScaledObject> {
        match self {
            Workload::ScaledObject(so) => Some(so),
            Workload::ScaledJob(_) => None,
        }
    }
    /// A ScaledJob's `jobTargetRef.backoffLimit` (Kubernetes' default 6): a Job whose pod
    /// fails this many times more is Failed.
    pub fn backoff_limit(&self) -> u32 {
        match self {
            Workload::ScaledJob(sj) => sj
                .spec
                .job_target_ref
                .get("backoffLimit")
                .and_then(Value::as_u64)
                .map_or(6, |v| v.min(u64::from(u32::MAX)) as u32),
            Workload::ScaledObject(_) => 0,
        }
    }
}

/// The typed objects of the manifests.
#[derive(Debug, Clone)]
pub struct Manifests {
    pub workload: Workload,
    pub auth: Option<TriggerAuthentication>,
    pub nodepools: Vec<NodePool>,
}

/// A scenario ready to run.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub scenario: Scenario,
    pub manifests: Manifests,
    /// `scenario.trace` read, or the phases as a trace.
    pub arrivals: Trace,
    /// The manifest files' names (for reports).
    pub manifest_files: Vec<String>,
}

/// A scenario file and its manifests, as JSON values (before `--set` edits and decoding).
#[derive(Debug, Clone)]
pub struct Source {
    /// The scenario's name for messages (its path, or `built-in scenario`).
    pub name: String,
    /// Where relative paths start; `None` for a built-in scenario.
    pub base: Option<PathBuf>,
    pub scenario: Value,
    /// (file, documents).
    pub manifests: Vec<(String, Vec<Value>)>,
    /// A built-in scenario's trace text, if it has one.
    builtin_trace: Option<&'static str>,
}

/// A scenario compiled into the binary: its text, its manifests' text, its trace's text.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    pub name: &'static str,
    pub scenario: &'static str,
    pub manifests: &'static str,
    pub trace: Option<&'static str>,
}

fn yaml_to_json(name: &str, text: &str) -> Result<Value, ScenarioError> {
    let v: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|e| invalid(name, format!("not valid YAML: {e}")))?;
    serde_json::to_value(v).map_err(|e| invalid(name, format!("not a plain YAML document: {e}")))
}

fn read_manifest_docs(name: &str, text: &str) -> Result<Vec<Value>, ScenarioError> {
    let docs = model::manifest::parse_documents(text).map_err(|e| invalid(name, e.to_string()))?;
    Ok(docs.into_iter().map(|d| d.value).collect())
}

impl Source {
    /// Read `path`, or the built-in scenario.
    pub fn read(path: Option<&Path>, builtin: Builtin) -> Result<Source, ScenarioError> {
        let (text, base, name) = match path {
            Some(p) => (
                std::fs::read_to_string(p).map_err(|e| {
                    invalid(
                        &p.display().to_string(),
                        format!("cannot read the scenario: {e}"),
                    )
                })?,
                Some(p.parent().map(Path::to_path_buf).unwrap_or_default()),
                p.display().to_string(),
            ),
            None => (builtin.scenario.to_string(), None, builtin.name.to_string()),
        };
        let scenario = yaml_to_json(&name, &text)?;
        let mut manifests = Vec::new();
        match &base {
            None => manifests.push((
                format!("{}-manifests.yaml", builtin.name),
                read_manifest_docs(builtin.name, builtin.manifests)?,
            )),
            Some(base) => {
                let files = scenario
                    .get("manifests")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for f in files {
                    let Some(f) = f.as_str() else {
                        return Err(invalid(&name, "manifests: a list of file names"));
                    };
                    let p = base.join(f);
                    let t = std::fs::read_to_string(&p).map_err(|e| {
                        invalid(&name, format!("reading manifest {}: {e}", p.display()))
                    })?;
                    let shown = p.display().to_string();
                    manifests.push((shown.clone(), read_manifest_docs(&shown, &t)?));
                }
            }
        }
        Ok(Source {
            name,
            base,
            scenario,
            manifests,
            builtin_trace: if path.is_none() { builtin.trace } else { None },
        })
    }

    /// `--set PATH=VALUE`: `scaledobject.spec.triggers[0].metadata.queueLength=5` edits the
    /// first ScaledObject (`nodepool[1].…` the second NodePool; any kind, lower-case);
    /// `scenario.consumer.work=2s` (or just `consumer.work=2s`) the scenario. The value keeps
    /// the type of the value it replaces (KEDA's metadata stays a string); a new field takes
    /// the value as YAML.
    pub fn set(&mut self, path: &str, value: &str) -> Result<(), ScenarioError> {
        let err = |m: String| ScenarioError::Set {
            path: path.to_string(),
            message: m,
        };
        let segs = parse_path(path).map_err(err)?;
        let (Seg::Field(first), rest) = (&segs[0], &segs[1..]) else {
            return Err(err("must start with a name".into()));
        };
        let (doc_index, rest) = match rest.first() {
            Some(Seg::Index(i)) => (*i, &rest[1..]),
            _ => (0, rest),
        };
        let target: &mut Value = if first == "scenario" {
            if doc_index != 0 {
                return Err(err("there is one scenario".into()));
            }
            &mut self.scenario
        } else if let Some(doc) = self
            .manifests
            .iter_mut()
            .flat_map(|(_, d)| d.iter_mut())
            .filter(|d| {
                d.get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.eq_ignore_ascii_case(first))
            })
            .nth(doc_index)
        {
            doc
        } else if is_kind_name(first) {
            return Err(err(format!(
                "the manifests hold no {first} number {doc_index}"
            )));
        } else {
            // A scenario field without the `scenario.` prefix.
            return set_in(&mut self.scenario, &segs, value).map_err(err);
        };
        if rest.is_empty() {
            return Err(err("names an object, not a field".into()));
        }
        set_in(target, rest, value).map_err(err)
    }

    /// Decode and validate everything; read the trace.
    pub fn load(&self) -> Result<Loaded, ScenarioError> {
        let scenario: Scenario = serde_path_to_error::deserialize(&self.scenario).map_err(|e| {
            invalid(
                &self.name,
                format!(
                    "{}: {} (see examples/up/README.md for the format)",
                    e.path(),
                    e.inner()
                ),
            )
        })?;
        scenario.validate().map_err(|m| invalid(&self.name, m))?;
        let arrivals = match (&scenario.trace, &self.base, self.builtin_trace) {
            (Some(t), Some(base), _) => {
                let p = base.join(t);
                let text = std::fs::read_to_string(&p).map_err(|e| {
                    invalid(
                        &self.name,
                        format!("reading the trace {}: {e}", p.display()),
                    )
                })?;
                Trace::parse_csv(&p.display().to_string(), &text)?
            }
            (Some(t), None, Some(text)) => Trace::parse_csv(&t.display().to_string(), text)?,
            (Some(t), None, None) => {
                return Err(invalid(
                    &self.name,
                    format!(
                        "trace {}: a built-in scenario has no such file",
                        t.display()
                    ),
                ));
            }
            (None, _, _) => Trace::from_phases(&scenario.phases),
        };
        let manifests = self.manifests()?;
        Ok(Loaded {
            scenario,
            manifests,
            arrivals,
            manifest_files: self.manifests.iter().map(|(f, _)| f.clone()).collect(),
        })
    }

    fn manifests(&self) -> Result<Manifests, ScenarioError> {
        let mut so: Option<Workload> = None;
        let mut auth = None;
        let mut nodepools = Vec::new();
        for (file, docs) in &self.manifests {
            for (i, v) in docs.iter().enumerate() {
                let raw = model::manifest::RawDocument {
                    index: i,
                    value: v.clone(),
                };
                let at = |e: model::manifest::ValidationErrors| {
                    invalid(&format!("{file}[{i}]"), e.to_string())
                };
                match raw.kind() {
                    Some(kind @ ("ScaledObject" | "ScaledJob")) if so.is_some() => {
                        return Err(invalid(
                            &format!("{file}[{i}]"),
                            format!(
                                "a second workload ({kind} after a {}): a scenario scales one",
                                so.as_ref().map_or("", Workload::kind)
                            ),
                        ));
                    }
                    Some("ScaledObject") => {
                        so = Some(Workload::ScaledObject(
                            raw.decode::<ScaledObject>().map_err(at)?,
                        ))
                    }
                    Some("ScaledJob") => {
                        so = Some(Workload::ScaledJob(raw.decode::<ScaledJob>().map_err(at)?))
                    }
                    Some("TriggerAuthentication") => {
                        auth = Some(raw.decode::<TriggerAuthentication>().map_err(at)?)
                    }
                    Some("NodePool") => {
                        let yaml = serde_yaml_ng::to_string(&raw.value)
                            .map_err(|e| invalid(file, e.to_string()))?;
                        nodepools.push(
                            NodePool::from_yaml(&yaml)
                                .map_err(|e| invalid(&format!("{file}[{i}]"), e.to_string()))?,
                        );
                    }
                    other => {
                        return Err(invalid(
                            &format!("{file}[{i}]"),
                            format!(
                                "kind {:?} is not used by a scenario (ScaledObject or ScaledJob, TriggerAuthentication, NodePool)",
                                other.unwrap_or("")
                            ),
                        ));
                    }
                }
            }
        }
        Ok(Manifests {
            workload: so.ok_or_else(|| {
                invalid(
                    &self.name,
                    "the scenario's manifests hold no ScaledObject or ScaledJob",
                )
            })?,
            auth,
            nodepools,
        })
    }
}

fn is_kind_name(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "scaledobject" | "triggerauthentication" | "nodepool" | "scaledjob" | "ec2nodeclass"
    )
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Field(String),
    Index(usize),
}

fn parse_path(path: &str) -> Result<Vec<Seg>, String> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, mut idx) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty() && out.is_empty() {
            return Err("must start with a name".into());
        }
        if !name.is_empty() {
            out.push(Seg::Field(name.to_string()));
        } else if idx.is_empty() {
            return Err("has an empty segment".into());
        }
        while !idx.is_empty() {
            let close = idx
                .find(']')
                .ok_or_else(|| format!("unclosed `[` in {part:?}"))?;
            let n: usize = idx[1..close]
                .parse()
                .map_err(|_| format!("{:?} is not an index", &idx[1..close]))?;
            out.push(Seg::Index(n));
            idx = &idx[close + 1..];
            if !idx.is_empty() && !idx.starts_with('[') {
                return Err(format!("unexpected {idx:?} after an index"));
            }
        }
    }
    if out.is_empty() {
        return Err("is empty".into());
    }
    Ok(out)
}

fn set_in(root: &mut Value, segs: &[Seg], value: &str) -> Result<(), String> {
    let mut cur = root;
    for (k, seg) in segs.iter().enumerate() {
        let last = k + 1 == segs.len();
        match seg {
            Seg::Field(f) => {
                let Value::Object(map) = cur else {
                    return Err(format!("{f:?} is inside something that is not a map"));
                };
                if last {
                    let new = typed_like(map.get(f.as_str()), value)?;
                    map.insert(f.clone(), new);
                    return Ok(());
                }
                cur = map.entry(f.clone()).or_insert_with(|| match segs[k + 1] {
                    Seg::Index(_) => Value::Array(Vec::new()),
                    Seg::Field(_) => Value::Object(Default::default()),
                });
            }
            Seg::Index(i) => {
                let Value::Array(items) = cur else {
                    return Err(format!("[{i}] indexes something that is not a list"));
                };
                let n = items.len();
                let Some(item) = items.get_mut(*i) else {
                    return Err(format!("index [{i}] is past the end of a list of {n}"));
                };
                if last {
                    *item = typed_like(Some(item), value)?;
                    return Ok(());
                }
                cur = item;
            }
        }
    }
    Ok(())
}

/// `value` with the type of `old`: strings stay strings (KEDA's metadata), anything else is
/// read as YAML.
fn typed_like(old: Option<&Value>, value: &str) -> Result<Value, String> {
    if let Some(Value::String(_)) = old {
        return Ok(Value::String(value.to_string()));
    }
    let v: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(value).map_err(|e| format!("value {value:?}: {e}"))?;
    serde_json::to_value(v).map_err(|e| format!("value {value:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCENARIO: &str = r#"
name: t
boot_delay: 60s
baseline: {instance_type: m5.large, count: 2}
pod: {cpu: 250m, memory: 64Mi}
consumer: {work: {dist: lognormal, median: 800ms, p99: 5s}, batch: 1}
manifests: [m.yaml]
phases:
  - {duration: 10s, producers: 1, rate: 0.5}
"#;
    const MANIFESTS: &str = r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: so, namespace: ns}
spec:
  scaleTargetRef: {name: app}
  triggers:
  - type: aws-sqs-queue
    metadata: {queueURL: "https://sqs.us-east-1.amazonaws.com/1/q", queueLength: "2", awsRegion: us-east-1}
---
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: default}
spec:
  template:
    spec:
      requirements: [{key: karpenter.sh/capacity-type, operator: In, values: [on-demand]}]
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
"#;

    fn builtin() -> Builtin {
        Builtin {
            name: "test",
            scenario: SCENARIO,
            manifests: MANIFESTS,
            trace: None,
        }
    }

    #[test]
    fn a_scenario_loads_with_its_work_distribution_and_phases_as_arrivals() {
        let l = Source::read(None, builtin()).unwrap().load().unwrap();
        assert_eq!(
            l.scenario.consumer.work,
            Work::Lognormal {
                median: Duration::from_millis(800),
                p99: Duration::from_secs(5)
            }
        );
        assert_eq!(l.scenario.pod_start, Duration::from_secs(5));
        assert_eq!(l.arrivals.per_second, [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
        assert_eq!(l.manifests.nodepools.len(), 1);
        assert!(l.scenario.consumer.work.mean() > Duration::from_millis(800));
    }

    #[test]
    fn durations_beyond_thirty_days_are_rejected_not_overflowed() {
        let mut s = Source::read(None, builtin()).unwrap();
        s.set("phases[0].duration", "100000000000000h").unwrap();
        let e = s.load().unwrap_err();
        assert!(e.to_string().contains("at most 30 days"), "{e}");
        let mut s = Source::read(None, builtin()).unwrap();
        s.set("boot_delay", "721h").unwrap();
        assert!(s.load().is_err());
        let l = Source::read(None, builtin()).unwrap().load().unwrap();
        let mut sc = l.scenario;
        sc.phases[0].duration = Duration::MAX;
        sc.phases.push(sc.phases[0].clone());
        assert_eq!(sc.total(None), Duration::MAX);
    }

    #[test]
    fn faults_load_are_active_in_their_window_and_bad_ones_are_named() {
        let with = |faults: &str| {
            let b = Builtin {
                scenario: Box::leak(format!("{SCENARIO}faults: {faults}\n").into_boxed_str()),
                ..builtin()
            };
            Source::read(None, b).unwrap().load()
        };
        let l = with(
            "[{at: 10s, for: 20s, kind: no-capacity, instance_types: [m5.large]}, {at: 15s, for: 1m, kind: consumer-crash, share: 0.1}]",
        )
        .unwrap();
        let f = &l.scenario.faults;
        let at = |s: u64| ActiveFaults::at(f, Duration::from_secs(s));
        assert_eq!(at(9), ActiveFaults::default());
        assert!(at(10).refuses("m5.large") && !at(10).refuses("m5.xlarge"));
        assert_eq!(at(20).consumer_crash, Some(0.1));
        assert!(!at(30).refuses("m5.large"));
        assert_eq!(
            at(20).to_string(),
            "no-capacity (m5.large), consumer-crash (on 10 % of the messages)"
        );
        assert_eq!(
            ActiveFaults::edges(f),
            [10, 15, 30, 75].map(Duration::from_secs)
        );
        for (bad, says) in [
            ("[{at: 0s, for: 0s, kind: scaler-down}]", "faults[0].for"),
            (
                "[{at: 0s, for: 1s, kind: scaler-down, instance_types: [a]}]",
                "instance_types applies to kind no-capacity only",
            ),
            (
                "[{at: 0s, for: 1s, kind: consumer-crash, share: 2}]",
                "faults[0].share must be in (0, 1]",
            ),
            ("[{at: 0s, for: 1s, kind: disk-full}]", "unknown variant"),
            (
                "[{at: 0s, for: 800h, kind: scaler-down}]",
                "at most 30 days",
            ),
        ] {
            let e = with(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn set_edits_manifests_and_scenario_keeping_types() {
        let mut s = Source::read(None, builtin()).unwrap();
        s.set("scaledobject.spec.triggers[0].metadata.queueLength", "5")
            .unwrap();
        s.set("scenario.boot_delay", "30s").unwrap();
        s.set("consumer.batch", "3").unwrap();
        s.set("nodepool.spec.limits.cpu", "100").unwrap();
        let l = s.load().unwrap();
        assert_eq!(
            l.manifests.workload.triggers()[0].metadata["queueLength"],
            "5"
        );
        assert_eq!(l.scenario.boot_delay, Duration::from_secs(30));
        assert_eq!(l.scenario.consumer.batch, 3);
        let e = s.set("nodepool[3].spec.limits.cpu", "1").unwrap_err();
        assert!(e.to_string().contains("no nodepool number 3"), "{e}");
        let e = s
            .set("scaledobject.spec.triggers[7].type", "x")
            .unwrap_err();
        assert!(e.to_string().contains("past the end"), "{e}");
    }

    #[test]
    fn bad_input_is_named() {
        let bad = SCENARIO.replace("boot_delay", "boot_dleay");
        let e = Source::read(
            None,
            Builtin {
                scenario: Box::leak(bad.into_boxed_str()),
                ..builtin()
            },
        )
        .unwrap()
        .load()
        .unwrap_err();
        assert!(e.to_string().contains("boot_dleay"), "{e}");
        let e = Trace::parse_csv("x.csv", "t_s,messages\n0,3\n1,-2\n").unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
        let e = Trace::parse_csv("x.csv", "time,count\n").unwrap_err();
        assert!(e.to_string().contains("header"), "{e}");
        let t = Trace::parse_csv("x.csv", "t_s,messages\n3,2\n0,1\n3,1\n").unwrap();
        assert_eq!(t.per_second, [1, 0, 0, 3]);
        let both = SCENARIO.replace("phases:", "trace: t.csv\nphases:");
        let e = Source::read(
            None,
            Builtin {
                scenario: Box::leak(both.into_boxed_str()),
                ..builtin()
            },
        )
        .unwrap()
        .load()
        .unwrap_err();
        assert!(e.to_string().contains("not both"), "{e}");
        let e = serde_json::from_value::<Work>(serde_json::json!({"dist": "gamma", "mean": "1s"}))
            .unwrap_err();
        assert!(e.to_string().contains("gamma"), "{e}");
    }
}
