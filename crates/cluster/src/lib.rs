//! kedge's substrates: the places where decisions of the pure cores (`autoscale`,
//! `provision`) are carried out.
//!
//! # Layout
//! - [`local`]: the local twin behind `kedge up` — virtual nodes from the instance catalog
//!   (boot delay, node-seconds and cost), pods as real `kedge consume` child processes,
//!   busy-aware scale-in, drain before node removal, and the control loop that joins the
//!   `aws-sqs-queue` scaler, the autoscaler and the provisioner.
//!
//! The simulator (`sim`) and the Kubernetes substrate (`kube`) named in the architecture are
//! not written yet.

pub mod local;
