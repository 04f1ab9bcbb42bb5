//! The I/O side of kedge's pod autoscaling: one [`autoscale::Scaler`] per KEDA trigger
//! type, and the scale loop that polls them and feeds the pure decision core.
//!
//! Heavy client libraries (HTTP, Redis, PostgreSQL, the AWS SDK) live here so `autoscale`
//! stays dependency-light and deterministic.
//!
//! # Layout
//! - [`runner`]: the scale loop: one task per ScaledObject, polling on its interval (or
//!   woken early by event-driven triggers), stepping the [`autoscale::Autoscaler`], applying
//!   the decision to a [`runner::ScaleTarget`], recording metrics and loop lateness.
//! - [`memory`]: in-process metric sources and scale targets (bench, tests, simulation).

pub mod memory;
pub mod runner;
