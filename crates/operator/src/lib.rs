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
//! - [`permits`]: the scale loops' bound on concurrent API calls, `/scale` calls first.
//! - [`reports`]: the scale loops' Events and status, written behind the loops.
//! - [`busy`]: busy-aware scale-in (`controller.kubernetes.io/pod-deletion-cost`).
//! - [`informers`]: one shared watch and store per kind for the node side (Pods and Nodes
//!   as [`cached_pod::CachedPod`] and [`cached_node::CachedNode`]).
//! - [`nodes`]: provisioning (pending pods → NodeClaims), the NodeClaim lifecycle and
//!   disruption (cordon, evict, delete).
//! - [`provider`]: the [`provider::CloudProvider`] trait and its `kwok` and `aws` impls.
//! - [`compat`]: API-version discovery (policy/v1 vs v1beta1 for PDBs and Eviction).
//! - [`leader`]: leader election through a `coordination.k8s.io` Lease.
//! - [`server`]: `/metrics`, `/healthz`, `/readyz`.
//! - [`controlplane`]: starts a throwaway etcd + kube-apiserver (+ controller-manager,
//!   scheduler) on loopback for integration tests and `kedge bench operator`.
//! - [`webhook`]: the CRD conversion webhook (karpenter.sh and karpenter.k8s.aws v1beta1 ⇄ v1)
//!   over TLS, its certificate and the CRDs' `conversion` settings.
//! - [`pod_source`]: pods and `metrics.k8s.io` usage for the `kubernetes-workload`, `cpu` and
//!   `memory` scalers.
//! - [`scaledjob`]: the ScaledJob controller (Jobs from `jobTargetRef`, decisions in
//!   `autoscale::scaledjob::step`).
//! - [`run`](mod@run): wiring everything together for `kedge operator`.

/// A cached view of a core/v1 kind (`CachedPod`, `CachedNode`): the `kube::Resource` impl
/// that lets it be watched and listed as that kind, and `of`, the cached view of the full
/// k8s-openapi object (what a watch would have deserialized).
macro_rules! cached_core_v1 {
    ($cached:ident, $full:ty, $kind:literal, $plural:literal, $scope:ty) => {
        impl $cached {
            /// The cached view of a full object (what a watch would have deserialized).
            pub fn of(full: &$full) -> $cached {
                serde_json::to_value(full)
                    .and_then(serde_json::from_value)
                    .unwrap_or_default()
            }
        }

        impl kube::Resource for $cached {
            type DynamicType = ();
            type Scope = $scope;

            fn kind(_: &()) -> std::borrow::Cow<'_, str> {
                std::borrow::Cow::Borrowed($kind)
            }
            fn group(_: &()) -> std::borrow::Cow<'_, str> {
                std::borrow::Cow::Borrowed("")
            }
            fn version(_: &()) -> std::borrow::Cow<'_, str> {
                std::borrow::Cow::Borrowed("v1")
            }
            fn api_version(_: &()) -> std::borrow::Cow<'_, str> {
                std::borrow::Cow::Borrowed("v1")
            }
            fn plural(_: &()) -> std::borrow::Cow<'_, str> {
                std::borrow::Cow::Borrowed($plural)
            }
            fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &self.metadata
            }
            fn meta_mut(
                &mut self,
            ) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

pub mod auth;
pub mod busy;
pub mod cached_node;
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
pub mod permits;
pub mod pod_source;
pub mod provider;
pub mod reports;
pub mod run;
pub mod run_aws;
pub mod run_nodes;
pub mod scale;
pub mod scaledjob;
pub mod scaledobject;
pub mod server;
pub mod targets;
pub mod time;
pub mod webhook;

#[cfg(test)]
pub mod fixtures;

pub use error::{Error, Result};

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

/// Drop `metadata.managedFields` and kubectl's `last-applied-configuration` annotation from an
/// object kept in a reflector store: the operator never reads them and they are often the
/// largest part of an object.
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

/// Send a write built with `kube::core::Request` and check its outcome (an API error is
/// returned as kube's usual `Error::Api`) without decoding the object the API server sends
/// back. A write's response is the whole object; decoding it only to drop it costs dozens of
/// small allocations per call, and under bursts of writes (1,000 scale loops, the kwok kubelet)
/// that churn fragments the heap.
pub async fn write_discarding(
    client: &kube::Client,
    req: std::result::Result<http::Request<Vec<u8>>, kube::core::request::Error>,
) -> kube::Result<()> {
    let req = req.map_err(kube::Error::BuildRequest)?;
    client
        .request::<serde::de::IgnoredAny>(req)
        .await
        .map(|_| ())
}

/// Create `obj` in the collection at `url` (an `Api`'s `resource_url`) as [`write_discarding`]
/// sends a write.
pub async fn create_discarding<T: serde::Serialize>(
    client: &kube::Client,
    url: &str,
    obj: &T,
) -> kube::Result<()> {
    let body = serde_json::to_vec(obj).map_err(kube::Error::SerdeError)?;
    let req = kube::core::Request::new(url).create(&kube::api::PostParams::default(), body);
    write_discarding(client, req).await
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

    #[tokio::test]
    async fn a_write_is_checked_without_decoding_the_object_sent_back() {
        use crate::fixtures::{self, mock_client};
        use kube::api::{Patch, PatchParams};
        use serde_json::json;
        let (client, mut api) = mock_client();
        let patch = json!({"spec": {"replicas": 3}});
        let send = |name: &'static str| {
            let client = client.clone();
            let patch = patch.clone();
            tokio::spawn(async move {
                let req = kube::core::Request::new("/apis/apps/v1/namespaces/ns/deployments")
                    .patch_subresource(
                        "scale",
                        name,
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    );
                super::write_discarding(&client, req).await
            })
        };
        // Any object back is fine: it is not decoded into a type.
        let ok = send("web");
        let body = api
            .expect(
                "PATCH",
                "/apis/apps/v1/namespaces/ns/deployments/web/scale?",
                200,
                json!({"kind": "Scale", "spec": {"replicas": "not even the right type"}}),
            )
            .await;
        assert_eq!(body, json!({"spec": {"replicas": 3}}));
        assert!(ok.await.unwrap().is_ok());
        // API errors come back as kube's, with their code.
        let conflict = send("db");
        api.expect(
            "PATCH",
            "/apis/apps/v1/namespaces/ns/deployments/db/scale?",
            409,
            fixtures::conflict("deployments", "db"),
        )
        .await;
        let e = conflict.await.unwrap().unwrap_err();
        assert_eq!(crate::error::kube_status(&e), Some(409));
    }
}
