//! Kubernetes-shaped domain types and the resource formats kedge reads.
//!
//! # Layout
//! - `manifest`: reading single- and multi-document YAML/JSON files into typed objects, with
//!   field-path errors (`file[doc] spec.x.y: message`) — the engine behind `kedge check`.
//! - `keda`: `ScaledObject`, `TriggerAuthentication`, `ClusterTriggerAuthentication`
//!   (keda.sh/v1alpha1) with KEDA's defaults and admission validation.
//! - `quantity`: Kubernetes resource quantities (`125m`, `32Mi`, `1.5`).
//! - `kube`: the scheduling-relevant part of Pods, Nodes, taints, affinity, topology spread, PDBs.
//! - `karpenter`: `NodePool` / `NodeClaim` (karpenter.sh/v1, and v1beta1 input converted).
//! - `ec2nodeclass`: Karpenter's AWS `EC2NodeClass` (karpenter.k8s.aws v1 and v1beta1), each
//!   version with its own CRD's rules.
//! - `convert`: whole objects between the served API versions (Karpenter 1.0's v1beta1 ⇄ v1
//!   conversion), for the operator's CRD conversion webhook and `kedge check`.
//! - `map`: the compact sorted map behind labels, annotations and resource lists.

pub mod convert;
pub mod ec2nodeclass;
pub mod karpenter;
pub mod keda;
pub mod kube;
pub mod manifest;
pub mod map;
pub mod quantity;
