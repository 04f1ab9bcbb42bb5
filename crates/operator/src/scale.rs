//! The `/scale` subresource of any kind that has one (Deployment, StatefulSet, custom
//! resources …), found through discovery instead of assuming `apps/v1`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use scalers::runner::{ScaleTarget, TargetState};

use crate::busy;
use crate::{Error, Result};

/// Discovery results per `apiVersion` + `kind`, shared by every ScaledObject.
#[derive(Clone, Default)]
pub struct Resources {
    cache: Arc<Mutex<HashMap<(String, String), ApiResource>>>,
}

impl Resources {
    /// The API resource (plural, group, version) serving `kind` in `api_version`.
    pub async fn resolve(
        &self,
        client: &kube::Client,
        api_version: &str,
        kind: &str,
    ) -> Result<ApiResource> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(r) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(r.clone());
        }
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (ar, caps) = kube::discovery::pinned_kind(client, &gvk)
            .await
            .map_err(|e| match crate::error::kube_status(&e) {
                Some(404) => Error::Invalid(format!(
                    "scaleTargetRef: the API server does not serve {api_version}"
                )),
                _ => match e {
                    kube::Error::Discovery(d) => Error::Invalid(format!(
                        "scaleTargetRef: {kind} is not served in {api_version}: {d}"
                    )),
                    other => Error::Kube {
                        context: format!("discovering {api_version} {kind}"),
                        source: other,
                    },
                },
            })?;
        if !caps.subresources.iter().any(|(sr, _)| sr.plural == "scale") {
            return Err(Error::Invalid(format!(
                "scaleTargetRef: {api_version} {kind} has no /scale subresource"
            )));
        }
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, ar.clone());
        Ok(ar)
    }
}

/// One scale target, as the scale loop sees it.
pub struct KubeTarget {
    pub client: kube::Client,
    pub api: Api<DynamicObject>,
    pub namespace: String,
    pub name: String,
    pub field_manager: String,
    /// Before a scale-in, mark idle pods cheapest to delete.
    pub busy_aware: bool,
    /// Shared bound on concurrent API calls (see `scaledobject::Shared::api_permits`).
    pub permits: Option<Arc<tokio::sync::Semaphore>>,
    last: Mutex<Option<(u32, Option<String>)>>,
}

impl KubeTarget {
    pub fn new(
        client: kube::Client,
        resource: &ApiResource,
        namespace: &str,
        name: &str,
        field_manager: &str,
    ) -> Self {
        KubeTarget {
            api: Api::namespaced_with(client.clone(), namespace, resource),
            client,
            namespace: namespace.to_string(),
            name: name.to_string(),
            field_manager: field_manager.to_string(),
            busy_aware: true,
            permits: None,
            last: Mutex::new(None),
        }
    }

    /// `spec.replicas` and the pod selector of the target's `/scale`.
    async fn permit(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        match &self.permits {
            Some(p) => p.acquire().await.ok(),
            None => None,
        }
    }

    pub async fn read(&self) -> Result<(u32, u32, Option<String>)> {
        let _permit = self.permit().await;
        // Boxed: a loop waiting for its permit holds a small future, not the request's.
        let s = Box::pin(self.api.get_scale(&self.name))
            .await
            .map_err(Error::kube(format!(
                "reading /scale of {}/{}",
                self.namespace, self.name
            )))?;
        let spec = s.spec.and_then(|s| s.replicas).unwrap_or(0).max(0) as u32;
        let status = s.status.as_ref().map(|s| s.replicas).unwrap_or(0).max(0) as u32;
        let selector = s.status.and_then(|s| s.selector);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((spec, selector.clone()));
        Ok((spec, status, selector))
    }

    /// Write `spec.replicas` through `/scale`.
    pub async fn write(&self, replicas: u32) -> Result<()> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // One permit for the pod marking (a list and the patches, one after another) and the
        // write: 1,000 objects scaling in at once would otherwise list pods 1,000 at a time.
        let _permit = self.permit().await;
        if self.busy_aware
            && let Some((current, Some(selector))) = last
            && replicas < current
            && let Err(e) =
                Box::pin(busy::mark_pods(&self.client, &self.namespace, &selector)).await
        {
            // Best effort: the scale-in still happens, just without the preference.
            tracing::warn!(error = %e, target = %self.name, "could not mark idle pods before scale-in");
        }
        let patch = serde_json::json!({"spec": {"replicas": replicas}});
        let req = kube::core::Request::new(self.api.resource_url()).patch_subresource(
            "scale",
            &self.name,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        );
        Box::pin(crate::write_discarding(&self.client, req))
            .await
            .map_err(Error::kube(format!(
                "writing /scale of {}/{}",
                self.namespace, self.name
            )))?;
        Ok(())
    }
}

impl ScaleTarget for KubeTarget {
    fn get(&self) -> autoscale::scaler::BoxFuture<'_, std::result::Result<TargetState, String>> {
        Box::pin(async move {
            let (replicas, _status, _) = self.read().await.map_err(|e| e.to_string())?;
            Ok(TargetState {
                replicas,
                ready: None,
            })
        })
    }

    fn scale(
        &self,
        replicas: u32,
    ) -> autoscale::scaler::BoxFuture<'_, std::result::Result<(), String>> {
        Box::pin(async move { self.write(replicas).await.map_err(|e| e.to_string()) })
    }
}
