//! kedge's pod-autoscaling decision core: what KEDA and the Kubernetes HPA decide together,
//! as pure, clock-injected code.
//!
//! Time comes in as a [`clock::Timestamp`] argument, metrics come in as data, and decisions
//! go out as data ([`Decision`]: desired replicas, a human-readable reason, when to poll
//! next). Nothing here does I/O or reads the wall clock, so the same code runs in the
//! simulator, the local twin and a cluster, and every test is deterministic.
//!
//! # Layout
//! - [`controller`]: the ScaledObject state machine ([`State`], [`Autoscaler::step`]):
//!   activation/cooldown/idle, fallback, pause, and the HPA path.
//! - [`hpa`]: the HPA maths: per-metric proposals with tolerance, stabilization windows,
//!   rate-limit policies, `selectPolicy`.
//! - [`modifiers`]: `scalingModifiers` composite metrics, evaluated with `evalexpr`.
//! - [`scaledjob`]: ScaledJob maths: how many Jobs to create (KEDA's scaling strategies), and
//!   [`scaledjob::step`]: one poll of a ScaledJob (rollout, creation, history limits).
//! - [`scaler`]: the [`Scaler`] trait the I/O side (crate `scalers`) implements.
//! - [`metrics`]: Prometheus metrics with KEDA's names, rendered as text.

pub mod controller;
pub mod hpa;
pub mod metrics;
pub mod modifiers;
pub mod scaledjob;
pub mod scaler;

pub use controller::{
    Autoscaler, Config, ConfigError, Decision, MetricSample, Observation, Reason, State, StepMode,
    TriggerReport,
};
pub use scaler::{Scaler, ScalerError};
