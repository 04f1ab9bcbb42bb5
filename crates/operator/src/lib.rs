//! `kedge operator`: kedge's autoscale and provision cores running inside a real Kubernetes
//! cluster, through kube-rs.
//!
//! Kubernetes is the distributed engine; this crate is one operator inside it. It does what
//! KEDA and Karpenter do together: it reconciles KEDA's `ScaledObject` /
//! `TriggerAuthentication` / `ClusterTriggerAuthentication` (keda.sh/v1alpha1) and writes
//! replicas through the target's `/scale` subresource, and it reconciles Karpenter's
//! `NodePool` / `NodeClaim` (karpenter.sh/v1), launching and retiring nodes through a
//! [`provider::CloudProvider`].
//!
//! Decisions come from the pure cores (`autoscale`, `provision`); this crate only observes the
//! cluster, feeds the cores and applies their decisions.
//!
//! # Layout
//! - [`crd`]: the custom resources (kube `Resource` impls over `model`'s types) and the CRD
//!   YAML generated from them (`kedge crds`).
//! - [`context`]: shared dependencies of every reconciler (client, clock, metrics, config).
//! - [`error`]: the crate's error enum with `metric_label()`.
//! - [`events`]: Kubernetes Events with series aggregation and a compact cache.
//! - [`scaledobject`]: the ScaledObject reconciler and per-object scale loops.
//! - [`auth`]: TriggerAuthentication resolution from Secrets, ConfigMaps and container env.
//! - [`scale`]: the `/scale` subresource of any kind, found through discovery.
//! - [`busy`]: busy-aware scale-in (`controller.kubernetes.io/pod-deletion-cost`).
//! - [`informers`]: one shared watch and store per kind for the node side.
//! - [`nodes`]: provisioning (pending pods → NodeClaims), the NodeClaim lifecycle and
//!   disruption (cordon, evict, delete).
//! - [`provider`]: the [`provider::CloudProvider`] trait and its `kwok` and `aws` impls.
//! - [`compat`]: API-version discovery (policy/v1 vs v1beta1 for PDBs and Eviction).
//! - [`leader`]: leader election through a `coordination.k8s.io` Lease.
//! - [`server`]: `/metrics`, `/healthz`, `/readyz`.
//! - [`controlplane`]: starts a throwaway etcd + kube-apiserver (+ controller-manager,
//!   scheduler) on loopback for integration tests and `kedge bench operator`.
//! - [`run`](mod@run): wiring everything together for `kedge operator`.

pub mod auth;
pub mod busy;
pub mod cached_pod;
pub mod compat;
pub mod context;
pub mod controlplane;
pub mod crd;
pub mod error;
pub mod events;
pub mod informers;
pub mod leader;
pub mod nodes;
pub mod provider;
pub mod run;
pub mod run_aws;
pub mod run_nodes;
pub mod scale;
pub mod scaledobject;
pub mod server;
pub mod time;

#[cfg(test)]
pub mod fixtures;

pub use error::{Error, Result};

/// Drop `metadata.managedFields` and kubectl's `last-applied-configuration` annotation from an
/// object kept in a reflector store: the operator never reads them and they are often the
/// largest part of an object.
/// `s` cut to at most `max` bytes, on a character boundary (API servers bound messages and
/// notes in bytes).
pub fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut i = max;
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        s.truncate(i);
    }
    s
}

pub fn lean<K: kube::Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
        if a.is_empty() {
            meta.annotations = None;
        }
    }
}

/// Select rustls' process-wide crypto provider (ring). The dependency tree enables both ring
/// (kube) and aws-lc-rs (the AWS SDK), so rustls cannot pick one by itself; call this before
/// building a kube client. Idempotent.
pub fn init_tls() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Resolves once `stop` turns true (or its sender is gone).
pub async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|v| *v).await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn truncate_cuts_on_a_character_boundary() {
        assert_eq!(super::truncate("héllo".into(), 2), "h");
        assert_eq!(super::truncate("héllo".into(), 3), "hé");
        assert_eq!(super::truncate("ok".into(), 10), "ok");
    }
}
