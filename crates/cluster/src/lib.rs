//! kedge's substrates: the places where the engine's decisions are carried out.
//!
//! # Layout
//! - [`sim`]: the simulator behind `kedge simulate` — the engine in virtual time against a
//!   modelled queue, consumers and nodes; event-driven and seeded.
//! - [`local`]: the local twin behind `kedge up` — virtual nodes from the instance catalog
//!   (boot delay, node-seconds and cost), pods as real `kedge consume` child processes, the
//!   control loop that feeds the engine the `aws-sqs-queue` scaler's readings.
//! - [`virt`]: virtual nodes and pods, the ReplicaSet's and kube-scheduler's parts, billing:
//!   what both substrates share.
//! - [`scenario`]: the scenario format both read (`examples/up/README.md`).
//!
//! The Kubernetes substrate is the `operator` crate.

pub mod local;
pub mod scenario;
pub mod sim;
pub mod virt;
