//! The ScaledObject controller: KEDA's scale executor (activation, cooldown, idle, fallback,
//! pause) and the HPA (replica maths and behavior) as one explicit state machine.
//!
//! Each poll the substrate fetches every trigger's metric, then calls [`Autoscaler::step`]
//! with `now`, the target's current replica count and the results. `step` returns a
//! [`Decision`]: the desired replica count, a human-readable reason ([`Reason`], written when
//! read) and when to poll next.
//! Nothing here reads the clock or does I/O.
//!
//! The two control paths, as upstream:
//! - **activation** (KEDA's executor): 0 → `max(min, 1)` (or idle → min) as soon as any trigger
//!   is active; back to 0 (or idle) once no trigger has been active for `cooldownPeriod`
//!   (measured from the last active poll; a never-active object waits `initialCooldownPeriod`
//!   from creation).
//! - **scaling** (the HPA): between `max(min, 1)` and `max`, the largest per-trigger proposal,
//!   then stabilization windows and rate-limit policies (see [`crate::hpa`]).

use std::sync::OnceLock;
use std::time::Duration;

use clock::Timestamp;
use model::keda::triggers::TriggerConfig;
use model::keda::{FallbackBehavior, MetricType, PauseAnnotations, ScaledObject};
use model::manifest::{Manifest, ValidationErrors};

use crate::hpa::{self, Behavior, HpaState, Limit};
use crate::modifiers::{ModifierError, Modifiers};

/// One trigger as the controller needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerSpec {
    /// `name`, or KEDA's generated `s{index}-{type}`.
    pub name: String,
    pub trigger_type: String,
    pub metric_type: MetricType,
    pub target: f64,
    pub activation_target: f64,
    /// The metric is a backlog ([`model::keda::triggers::TriggerConfig::is_backlog`]): a
    /// latency objective may set its per-replica target.
    pub backlog: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FallbackConfig {
    pub failure_threshold: u32,
    pub replicas: u32,
    pub behavior: FallbackBehavior,
}

impl FallbackConfig {
    /// The replica count the fallback asks for given the current count.
    pub fn replicas_for(&self, current: u32) -> u32 {
        match self.behavior {
            FallbackBehavior::Static => self.replicas,
            FallbackBehavior::CurrentReplicas => current,
            FallbackBehavior::CurrentReplicasIfHigher => current.max(self.replicas),
            FallbackBehavior::CurrentReplicasIfLower => current.min(self.replicas),
            // No count of its own: the formula sees the failing trigger as nil (`??`).
            FallbackBehavior::ScalingModifiers => current,
        }
    }
}

/// A ScaledObject compiled for the controller, with every default applied.
#[derive(Debug, Clone)]
pub struct Config {
    pub namespace: String,
    pub name: String,
    pub min: u32,
    pub max: u32,
    pub idle: Option<u32>,
    pub polling_interval: Duration,
    pub cooldown: Duration,
    pub initial_cooldown: Duration,
    pub fallback: Option<FallbackConfig>,
    pub behavior: Behavior,
    /// Which directions of `behavior` the user set (`scaleUp` / `scaleDown` present in the
    /// ScaledObject); a policy may choose its own defaults only for the others.
    pub behavior_set: (bool, bool),
    pub pause: PauseAnnotations,
    pub triggers: Vec<TriggerSpec>,
    pub modifiers: Option<Modifiers>,
    pub restore_to_original_replica_count: bool,
    /// kedge extension: triggers may wake the loop early.
    pub event_driven: bool,
    /// kedge extension: `autoscaling.kedge.dev/latency-objective` (the policy decides whether
    /// and how it applies: [`Autoscaler::set_backlog_target`]).
    pub latency_objective: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid ScaledObject: {0}")]
    Invalid(#[from] ValidationErrors),
    #[error("invalid ScaledObject: {0}")]
    Modifiers(#[from] ModifierError),
}

impl ConfigError {
    /// Label for error counters.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ConfigError::Invalid(_) => "invalid",
            ConfigError::Modifiers(_) => "modifiers",
        }
    }
}

impl Config {
    /// Validate (as the admission webhook) and compile.
    pub fn from_scaled_object(so: &ScaledObject) -> Result<Config, ConfigError> {
        let errors = so.validate();
        if !errors.is_empty() {
            return Err(ValidationErrors(errors).into());
        }
        let spec = &so.spec;
        let names = so.trigger_names();
        let mut triggers = Vec::with_capacity(spec.triggers.len());
        for (t, name) in spec.triggers.iter().zip(&names) {
            let parsed = TriggerConfig::parse(t).map_err(ValidationErrors)?;
            triggers.push(TriggerSpec {
                name: name.clone(),
                trigger_type: t.trigger_type.clone(),
                metric_type: t.metric_type_or_default(),
                target: parsed.target(),
                activation_target: parsed.activation_target(),
                backlog: parsed.is_backlog(),
            });
        }
        let modifiers = match spec.scaling_modifiers() {
            Some(sm) if sm.formula.as_deref().is_some_and(|f| !f.trim().is_empty()) => {
                let explicit: Vec<&str> = spec
                    .triggers
                    .iter()
                    .filter_map(|t| t.name.as_deref())
                    .collect();
                Some(Modifiers::compile(sm, &explicit)?)
            }
            _ => None,
        };
        let secs = |s: i32| Duration::from_secs(s.max(0) as u64);
        Ok(Config {
            namespace: so
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            name: so.metadata.name.clone(),
            min: spec.min_replicas().max(0) as u32,
            max: spec.max_replicas().max(1) as u32,
            idle: spec.idle_replica_count.map(|i| i.max(0) as u32),
            polling_interval: Duration::from_millis(so.polling_interval_ms()),
            cooldown: secs(spec.cooldown_period_secs()),
            initial_cooldown: secs(spec.initial_cooldown_period_secs()),
            fallback: spec.fallback.as_ref().map(|f| FallbackConfig {
                failure_threshold: f.failure_threshold.max(0) as u32,
                replicas: f.replicas.max(0) as u32,
                behavior: f.behavior.unwrap_or_default(),
            }),
            behavior: Behavior::resolve(spec.behavior()),
            behavior_set: (
                spec.behavior().is_some_and(|b| b.scale_up.is_some()),
                spec.behavior().is_some_and(|b| b.scale_down.is_some()),
            ),
            pause: so.pause_annotations(),
            triggers,
            modifiers,
            restore_to_original_replica_count: spec.restore_to_original_replica_count(),
            event_driven: so.event_driven(),
            latency_objective: so.latency_objective_ms().map(Duration::from_millis),
        })
    }
}

/// A trigger's metric for one poll (KEDA's `GetMetricsAndActivity`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricSample {
    pub value: f64,
    /// Whether the trigger counts as active (usually `value > activation threshold`).
    pub active: bool,
}

impl MetricSample {
    /// The usual activity rule: strictly above the activation threshold.
    pub fn with_threshold(value: f64, activation_target: f64) -> Self {
        MetricSample {
            value,
            active: value > activation_target,
        }
    }
}

/// What the substrate observed this poll.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The scale target's replica count (`spec.replicas` of its `/scale`).
    pub current_replicas: u32,
    /// Ready pods, for `Value` metrics; `None` = same as current.
    pub ready_replicas: Option<u32>,
    /// One result per trigger, in `spec.triggers` order; `Err` carries the scaler's message.
    pub triggers: Vec<Result<MetricSample, String>>,
}

/// Which of upstream's loops a step stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepMode {
    /// Both at once: activation, cooldown and the HPA maths (kedge's own cadence).
    Full,
    /// KEDA's scale loop (every `pollingInterval`): activation 0 → 1, deactivation to 0 or
    /// idle after the cooldown, raising to `minReplicaCount`; never 1 ↔ N.
    Keda,
    /// The HPA's sync (every 15 s upstream): 1 ↔ N within `[max(min, 1), max]`; nothing
    /// while the target is at zero.
    Hpa,
}

/// Where the object is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not stepped yet.
    Starting,
    /// At zero (or `idleReplicaCount`) with no trigger active: the HPA path is off, only
    /// activation can move the count.
    Idle,
    /// At least one trigger was active at the last poll; the HPA path sets the count.
    Active,
    /// No trigger active and scale-in to zero/idle is pending until the cooldown passes; the
    /// HPA path keeps running meanwhile.
    CoolingDown,
    /// No trigger active and nothing to scale in to (`minReplicaCount > 0`, no idle): the
    /// HPA path holds the count within `[min, max]`.
    Inactive,
    /// Scaling paused by an annotation.
    Paused,
}

/// One trigger's part in a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerReport {
    pub name: String,
    pub trigger_type: String,
    pub value: Option<f64>,
    pub active: bool,
    pub error: Option<String>,
    /// Consecutive failures so far.
    pub failures: u32,
    /// The fallback value replaced the metric this poll.
    pub fallback: bool,
}

/// What to do: the output of [`Autoscaler::step`].
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub desired_replicas: u32,
    pub current_replicas: u32,
    /// Which trigger and which policy decided (for logs and status).
    pub reason: Reason,
    /// Poll again after this long.
    pub requeue_after: Duration,
    pub state: State,
    pub active: bool,
    /// Some trigger (or the formula) failed this poll.
    pub error: bool,
    /// The fallback replica count is in effect.
    pub fallback: bool,
    pub paused: bool,
    pub triggers: Vec<TriggerReport>,
    /// The scalingModifiers composite value, when a formula is configured and evaluated.
    pub composite: Option<f64>,
}

/// Why a decision is what it is: text for people (logs, events, status), read as a `&str`.
///
/// The common step (the HPA holding or scaling on one metric) keeps its numbers and writes
/// the text only when someone reads it: a scale loop over 100,000 objects a second spent a
/// large part of each poll formatting reasons that its substrate never showed. The text is
/// the same either way.
#[derive(Clone, Default)]
pub struct Reason {
    text: OnceLock<String>,
    hpa: Option<HpaWhy>,
}

/// The HPA's step, as its reason says it.
#[derive(Debug, Clone, PartialEq)]
struct HpaWhy {
    current: u32,
    desired: u32,
    proposal: u32,
    metric: HpaMetric,
    limit: Limit,
    min: u32,
    max: u32,
}

impl Reason {
    fn hpa(why: HpaWhy) -> Reason {
        Reason {
            text: OnceLock::new(),
            hpa: Some(why),
        }
    }

    /// The text (written now if it was kept as numbers).
    pub fn as_str(&self) -> &str {
        self.text.get_or_init(|| match &self.hpa {
            Some(w) => w.text(),
            None => String::new(),
        })
    }
}

impl From<String> for Reason {
    fn from(text: String) -> Reason {
        Reason {
            text: OnceLock::from(text),
            hpa: None,
        }
    }
}

impl From<&str> for Reason {
    fn from(text: &str) -> Reason {
        Reason::from(text.to_string())
    }
}

impl std::ops::Deref for Reason {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for Reason {
    fn eq(&self, other: &Reason) -> bool {
        self.as_str() == other.as_str()
    }
}

impl HpaWhy {
    fn text(&self) -> String {
        let HpaWhy {
            current,
            desired,
            proposal,
            limit,
            min,
            max,
            ..
        } = self;
        let why = describe_metric(&self.metric, *proposal, *current);
        let verb = if desired == current {
            format!("holding {current}")
        } else {
            format!("scaling {current} → {desired}")
        };
        let limit_text = match limit {
            Limit::None => String::new(),
            Limit::Stabilized {
                up,
                window_secs,
                from,
            } => format!(
                "; {} stabilization window {window_secs}s kept it from {from} (the {} recommendation in the window wins)",
                if *up { "scale-up" } else { "scale-down" },
                if *up { "lowest" } else { "highest" }
            ),
            Limit::Rate {
                up,
                policy,
                select,
                from,
            } => format!(
                "; limited from {from} by {} policy {policy} (selectPolicy {select:?})",
                if *up { "scale-up" } else { "scale-down" }
            ),
            Limit::Disabled { up } => format!(
                "; {} is disabled (selectPolicy Disabled)",
                if *up { "scale-up" } else { "scale-down" }
            ),
            Limit::Max => format!("; clamped to maxReplicaCount {max}"),
            Limit::Min => format!("; clamped to minReplicaCount {min}"),
        };
        format!("{verb}: {why}{limit_text}")
    }
}

impl Decision {
    /// The count changes.
    pub fn scales(&self) -> bool {
        self.desired_replicas != self.current_replicas
    }
}

/// One ScaledObject's controller: configuration plus memory between polls.
#[derive(Debug, Clone)]
pub struct Autoscaler {
    config: Config,
    state: State,
    created_at: Timestamp,
    last_active: Option<Timestamp>,
    failures: Vec<u32>,
    composite_failures: u32,
    hpa: HpaState,
    original_replicas: Option<u32>,
    /// The per-replica target of the backlog triggers in place of their own (a latency
    /// objective's), until changed.
    backlog_target: Option<f64>,
}

/// A metric as the HPA sees it.
#[derive(Debug, Clone, PartialEq)]
struct HpaMetric {
    name: String,
    metric_type: MetricType,
    value: f64,
    target: f64,
    fallback: bool,
}

impl Autoscaler {
    /// `created_at` is the ScaledObject's creation time (for `initialCooldownPeriod`).
    pub fn new(config: Config, created_at: Timestamp) -> Self {
        let n = config.triggers.len();
        Autoscaler {
            config,
            state: State::Starting,
            created_at,
            last_active: None,
            failures: vec![0; n],
            composite_failures: 0,
            hpa: HpaState::default(),
            original_replicas: None,
            backlog_target: None,
        }
    }

    /// From the next step on, the backlog triggers' AverageValue metrics are held to `target`
    /// messages per replica instead of their own targets (`None`: their own again). Other
    /// triggers, a `scalingModifiers` formula and the fallback keep theirs.
    pub fn set_backlog_target(&mut self, target: Option<f64>) {
        self.backlog_target = target.filter(|t| t.is_finite() && *t > 0.0);
    }

    /// The per-replica backlog target in force instead of the triggers' own, if any.
    pub fn backlog_target(&self) -> Option<f64> {
        self.backlog_target
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn state(&self) -> State {
        self.state
    }
    pub fn last_active(&self) -> Option<Timestamp> {
        self.last_active
    }

    /// Replace the configuration (the ScaledObject was edited), keeping history.
    pub fn update_config(&mut self, config: Config) {
        if config.triggers.len() != self.failures.len() {
            self.failures = vec![0; config.triggers.len()];
        }
        self.config = config;
    }

    /// The step at `now` decided `decided` replicas from `from`, but only `written` were
    /// written (a policy held the rest back): the HPA's rate limits count what was written.
    pub fn amend(&mut self, now: Timestamp, from: u32, decided: u32, written: u32) {
        self.hpa
            .amend_scale(now, &self.config.behavior, from, decided, written);
    }

    /// The count to restore when the ScaledObject is deleted
    /// (`advanced.restoreToOriginalReplicaCount`); `None` = leave the target as it is.
    pub fn on_delete(&self) -> Option<u32> {
        if self.config.restore_to_original_replica_count {
            self.original_replicas
        } else {
            None
        }
    }

    /// One poll: decide the replica count (activation and the HPA maths together).
    pub fn step(&mut self, now: Timestamp, obs: &Observation) -> Decision {
        self.step_as(now, obs, StepMode::Full)
    }

    /// One poll of one of upstream's two loops (see [`StepMode`]), or of both.
    pub fn step_as(&mut self, now: Timestamp, obs: &Observation, mode: StepMode) -> Decision {
        let current = obs.current_replicas;
        if self.original_replicas.is_none() {
            self.original_replicas = Some(current);
        }
        let cfg = &self.config;
        let mut d = Decision {
            desired_replicas: current,
            current_replicas: current,
            reason: Reason::default(),
            requeue_after: cfg.polling_interval,
            state: self.state,
            active: false,
            error: false,
            fallback: false,
            paused: false,
            triggers: Vec::new(),
            composite: None,
        };

        // Pause: KEDA stops polling the scalers entirely.
        let p = cfg.pause;
        if let Some(n) = p.paused_replicas {
            d.desired_replicas = n.max(0) as u32;
            d.paused = true;
            d.reason = format!(
                "paused by autoscaling.keda.sh/paused-replicas={n}: holding the target at {n} replicas"
            ).into();
            self.state = State::Paused;
            d.state = State::Paused;
            return d;
        }
        if p.paused || (p.paused_scale_in && p.paused_scale_out) {
            d.paused = true;
            d.reason = format!(
                "paused by annotation ({}): holding the current {current} replicas",
                if p.paused {
                    "autoscaling.keda.sh/paused"
                } else {
                    "paused-scale-in and paused-scale-out"
                }
            )
            .into();
            self.state = State::Paused;
            d.state = State::Paused;
            return d;
        }

        let metrics = self.evaluate(current, obs, &mut d);
        if mode == StepMode::Hpa {
            // The HPA alone: it exists only while the target runs (KEDA deletes it at zero)
            // and never activates or deactivates.
            if current == 0 {
                d.reason = "holding 0: the HPA does not act on a target at zero".into();
            } else {
                self.hpa_path(
                    now,
                    current,
                    obs.ready_replicas.unwrap_or(current),
                    metrics,
                    &mut d,
                );
            }
            self.directional_pauses(current, &mut d);
            d.state = self.state;
            return d;
        }
        let cfg = &self.config;
        let min = cfg.min;
        let hpa_min = min.max(1);

        // Activation path (KEDA's scale executor).
        let mut run_hpa = true;
        if d.active {
            let from_zero = current == 0 || (cfg.idle.is_some() && current < min);
            if from_zero && p.paused_scale_out {
                d.reason = format!(
                    "trigger {} is active but autoscaling.keda.sh/paused-scale-out blocks activation",
                    self.active_by(obs, &d)
                ).into();
                run_hpa = false;
            } else if from_zero {
                d.desired_replicas = hpa_min;
                d.reason = format!(
                    "activating {current} → {hpa_min}: trigger {} is active",
                    self.active_by(obs, &d)
                )
                .into();
                self.last_active = Some(now);
                run_hpa = false;
            } else if !d.error {
                self.last_active = Some(now);
            }
            self.state = State::Active;
        } else if d.error && cfg.fallback.is_some_and(|f| f.replicas != 0) {
            // Keep the HPA running so the fallback can take effect (KEDA does not scale to
            // zero while a scaler is failing and a fallback is configured).
            self.state = if current == 0 {
                State::Idle
            } else {
                State::Inactive
            };
            if current == 0 {
                run_hpa = false;
                d.reason = "a trigger is failing and the target is at 0: fallback applies only once the target runs (as in KEDA)".into();
            }
        } else if d.error && cfg.fallback.is_none() {
            // KEDA marks the object not ready and leaves the count alone; the HPA keeps
            // working with whatever metrics it still gets.
            self.state = if current == 0 {
                run_hpa = false;
                d.reason =
                    format!("holding {current}: scaler error and no fallback configured").into();
                State::Idle
            } else {
                State::Inactive
            };
        } else if cfg.idle.is_some_and(|i| current > i) || (current > 0 && min == 0) {
            let target = cfg.idle.unwrap_or(min);
            let expired = match self.last_active {
                Some(t) => t.add(cfg.cooldown) < now,
                None => self.created_at.add(cfg.initial_cooldown) < now,
            };
            if expired && !p.paused_scale_in {
                d.desired_replicas = target;
                d.reason = Reason::from(match self.last_active {
                    Some(t) => format!(
                        "scaling in {current} → {target}: no trigger active since {t} (cooldownPeriod {}s passed)",
                        cfg.cooldown.as_secs()
                    ),
                    None => format!(
                        "scaling in {current} → {target}: no trigger has been active since creation (initialCooldownPeriod {}s passed)",
                        cfg.initial_cooldown.as_secs()
                    ),
                });
                self.state = State::Idle;
                run_hpa = false;
            } else {
                self.state = State::CoolingDown;
            }
        } else if current < min && cfg.idle.is_none() {
            d.desired_replicas = min;
            d.reason = format!("raising {current} → {min}: below minReplicaCount").into();
            self.state = State::Inactive;
            run_hpa = false;
        } else if current == 0 || cfg.idle.is_some_and(|i| current <= i) {
            self.state = State::Idle;
            d.reason = format!("idle at {current}: no trigger active").into();
            run_hpa = false;
        } else {
            self.state = State::Inactive;
        }

        let (idle, cooldown, initial_cooldown) = (cfg.idle, cfg.cooldown, cfg.initial_cooldown);
        if mode == StepMode::Keda {
            // KEDA's own loop moves the target only between 0 (or idle) and its minimum.
            run_hpa = false;
            if d.reason.is_empty() {
                d.reason = format!(
                    "holding {current}: KEDA's poll leaves 1↔N to the HPA{}",
                    if self.state == State::CoolingDown {
                        " (cooling down)"
                    } else {
                        ""
                    }
                )
                .into();
            }
        }
        if run_hpa {
            self.hpa_path(
                now,
                current,
                obs.ready_replicas.unwrap_or(current),
                metrics,
                &mut d,
            );
            if self.state == State::CoolingDown && d.desired_replicas == current {
                let t = self.last_active.unwrap_or(self.created_at);
                d.reason = format!(
                    "{}; cooling down: no trigger active since {t}, scale-in to {} after {}s",
                    d.reason,
                    idle.unwrap_or(min),
                    if self.last_active.is_some() {
                        cooldown.as_secs()
                    } else {
                        initial_cooldown.as_secs()
                    }
                )
                .into();
            }
        }

        self.directional_pauses(current, &mut d);
        d.state = self.state;
        d
    }

    /// Directional pause annotations (KEDA 2.17+).
    fn directional_pauses(&self, current: u32, d: &mut Decision) {
        let p = self.config.pause;
        if p.paused_scale_in && d.desired_replicas < current {
            d.reason = format!(
                "holding {current}: scale-in to {} blocked by autoscaling.keda.sh/paused-scale-in",
                d.desired_replicas
            )
            .into();
            d.desired_replicas = current;
        }
        if p.paused_scale_out && d.desired_replicas > current {
            d.reason = format!(
                "holding {current}: scale-out to {} blocked by autoscaling.keda.sh/paused-scale-out",
                d.desired_replicas
            ).into();
            d.desired_replicas = current;
        }
    }

    /// Fetch results into HPA metrics, counting failures and applying the fallback.
    /// Sets `d.active`, `d.error`, `d.fallback`, `d.triggers`, `d.composite`; returns the
    /// metrics (what made the object active is written by [`Autoscaler::active_by`], only
    /// for the reasons that name it).
    fn evaluate(&mut self, current: u32, obs: &Observation, d: &mut Decision) -> Vec<HpaMetric> {
        let cfg = &self.config;
        let mut metrics = Vec::new();
        // The formula's inputs (nothing to collect without one).
        let mut values: Vec<(&str, Option<f64>)> = Vec::new();
        for (i, t) in cfg.triggers.iter().enumerate() {
            let result = obs
                .triggers
                .get(i)
                .cloned()
                .unwrap_or_else(|| Err("no result supplied for this trigger".into()));
            let mut report = TriggerReport {
                name: t.name.clone(),
                trigger_type: t.trigger_type.clone(),
                value: None,
                active: false,
                error: None,
                failures: 0,
                fallback: false,
            };
            match result {
                Ok(s) => {
                    self.failures[i] = 0;
                    report.value = Some(s.value);
                    report.active = s.active;
                    if cfg.modifiers.is_some() {
                        values.push((t.name.as_str(), Some(s.value)));
                    }
                    if cfg.modifiers.is_none() {
                        if s.active {
                            d.active = true;
                        }
                        let target = match self.backlog_target {
                            Some(b) if t.backlog && t.metric_type == MetricType::AverageValue => b,
                            _ => t.target,
                        };
                        metrics.push(HpaMetric {
                            name: t.name.clone(),
                            metric_type: t.metric_type,
                            value: s.value,
                            target,
                            fallback: false,
                        });
                    }
                }
                Err(e) => {
                    self.failures[i] = self.failures[i].saturating_add(1);
                    d.error = true;
                    report.error = Some(e);
                    if cfg.modifiers.is_some() {
                        values.push((t.name.as_str(), None));
                    }
                    if cfg.modifiers.is_none()
                        && let Some(fb) = cfg.fallback
                        && t.metric_type == MetricType::AverageValue
                        && self.failures[i] > fb.failure_threshold
                    {
                        // KEDA's doFallback: report replicas × target as an AverageValue
                        // metric so the HPA arrives at the fallback count.
                        let replicas = fb.replicas_for(current);
                        report.fallback = true;
                        d.fallback = true;
                        metrics.push(HpaMetric {
                            name: t.name.clone(),
                            metric_type: MetricType::AverageValue,
                            value: replicas as f64 * t.target,
                            target: t.target,
                            fallback: true,
                        });
                    }
                }
            }
            report.failures = self.failures[i];
            d.triggers.push(report);
        }

        if let Some(m) = &cfg.modifiers {
            match m.eval(&values) {
                Ok(c) => {
                    self.composite_failures = 0;
                    d.composite = Some(c);
                    if c > m.activation_target {
                        d.active = true;
                    }
                    metrics.push(HpaMetric {
                        name: format!("formula {:?}", m.formula),
                        metric_type: m.metric_type,
                        value: c,
                        target: m.target,
                        fallback: false,
                    });
                }
                Err(e) => {
                    self.composite_failures = self.composite_failures.saturating_add(1);
                    d.error = true;
                    if let Some(fb) = cfg.fallback
                        && fb.behavior != FallbackBehavior::ScalingModifiers
                        && m.metric_type == MetricType::AverageValue
                        && self.composite_failures > fb.failure_threshold
                    {
                        d.fallback = true;
                        metrics.push(HpaMetric {
                            name: format!("formula {:?}", m.formula),
                            metric_type: MetricType::AverageValue,
                            value: fb.replicas_for(current) as f64 * m.target,
                            target: m.target,
                            fallback: true,
                        });
                    } else {
                        d.reason = e.into();
                    }
                }
            }
        }
        metrics
    }

    /// What made the object active at this poll (for the reasons that name it), from the
    /// same results [`Autoscaler::evaluate`] saw: written only when a reason needs it.
    fn active_by(&self, obs: &Observation, d: &Decision) -> String {
        let cfg = &self.config;
        let mut by = Vec::new();
        if cfg.modifiers.is_none() {
            for (i, t) in cfg.triggers.iter().enumerate() {
                if let Some(Ok(s)) = obs.triggers.get(i)
                    && s.active
                {
                    by.push(format!(
                        "{:?} ({} {} > activation {})",
                        t.name, t.trigger_type, s.value, t.activation_target
                    ));
                }
            }
        }
        if let Some(m) = &cfg.modifiers
            && let Some(c) = d.composite
            && c > m.activation_target
        {
            by.push(format!(
                "formula {:?} ({c} > activationTarget {})",
                m.formula, m.activation_target
            ));
        }
        by.join(", ")
    }

    /// The HPA's reconcile for a running target.
    fn hpa_path(
        &mut self,
        now: Timestamp,
        current: u32,
        ready: u32,
        mut metrics: Vec<HpaMetric>,
        d: &mut Decision,
    ) {
        let cfg = &self.config;
        let min = cfg.min.max(1);
        let max = cfg.max;
        let behavior = &cfg.behavior;
        if current == 0 {
            return;
        }
        if current > max {
            d.desired_replicas = max;
            d.reason = format!("scaling {current} → {max}: above maxReplicaCount").into();
            self.hpa.record_scale(now, behavior, current, max);
            return;
        }
        if current < min {
            d.desired_replicas = min;
            d.reason = format!("scaling {current} → {min}: below minReplicaCount").into();
            self.hpa.record_scale(now, behavior, current, min);
            return;
        }
        let expected = if cfg.modifiers.is_some() {
            1
        } else {
            cfg.triggers.len()
        };
        let invalid = expected.saturating_sub(metrics.len());
        if metrics.is_empty() {
            let errs: Vec<String> = d
                .triggers
                .iter()
                .filter_map(|t| t.error.as_ref().map(|e| format!("{:?}: {e}", t.name)))
                .collect();
            d.reason = Reason::from(if d.reason.is_empty() {
                format!(
                    "holding {current}: no metric available ({})",
                    errs.join("; ")
                )
            } else {
                format!("holding {current}: {}", d.reason)
            });
            return;
        }
        // Largest proposal across metrics (ties: first).
        let mut best: Option<(u32, usize)> = None;
        for (i, m) in metrics.iter().enumerate() {
            let p = hpa::proposal(
                m.metric_type,
                m.value,
                m.target,
                current,
                ready,
                behavior.up.tolerance,
                behavior.down.tolerance,
            );
            if best.is_none_or(|(b, _)| p > b) {
                best = Some((p, i));
            }
        }
        let Some((proposal, by)) = best else { return };
        let by = metrics.swap_remove(by);
        if invalid > 0 && proposal < current {
            d.reason = format!(
                "holding {current}: a metric failed and the others suggest scaling down to {proposal} (the HPA does not scale down on partial metrics)"
            ).into();
            return;
        }
        let (desired, limit) = self
            .hpa
            .normalize(now, behavior, current, proposal, min, max);
        d.desired_replicas = desired;
        d.reason = Reason::hpa(HpaWhy {
            current,
            desired,
            proposal,
            metric: by,
            limit,
            min,
            max,
        });
        if desired != current {
            self.hpa.record_scale(now, behavior, current, desired);
        }
    }
}

fn describe_metric(m: &HpaMetric, proposal: u32, current: u32) -> String {
    let src = if m.fallback {
        format!("fallback for {}", m.name)
    } else {
        format!("trigger {:?}", m.name).replace("trigger \"formula", "\"formula")
    };
    if proposal == current {
        return format!(
            "{src} is within tolerance ({} {} vs target {})",
            match m.metric_type {
                MetricType::Value => "value",
                _ => "average value total",
            },
            m.value,
            m.target
        );
    }
    match m.metric_type {
        MetricType::Value => format!(
            "{src} wants {proposal} (value {} / target {} × ready pods)",
            m.value, m.target
        ),
        _ => format!(
            "{src} wants {proposal} (⌈{} / target {} per replica⌉)",
            m.value, m.target
        ),
    }
}
