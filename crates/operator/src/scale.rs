//! Scale targets as the scale loops read and write them: any kind with a `/scale` subresource
//! (Deployment, StatefulSet, custom resources …), found through discovery instead of assuming
//! `apps/v1`.
//!
//! Reads come from the watch cache (`targets.rs`) for Deployments and StatefulSets, as KEDA
//! reads them; other kinds, and a target the cache has not listed yet, are read with GET
//! `/scale`. Writes always go through `/scale` (a merge patch of `spec.replicas`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::api::{ApiResource, GroupVersionKind, Patch, PatchParams};

use crate::targets::{Missing, Selector, TargetCaches, WorkloadKind};
use crate::{Error, Result};

/// Discovered resources by (`apiVersion`, `kind`).
type Discovered = HashMap<(String, String), Arc<ApiResource>>;

/// Discovery results per `apiVersion` + `kind`, shared by every ScaledObject.
#[derive(Clone, Default)]
pub struct Resources {
    cache: Arc<Mutex<Discovered>>,
}

impl Resources {
    /// The API resource (plural, group, version) serving `kind` in `api_version`.
    pub async fn resolve(
        &self,
        client: &kube::Client,
        api_version: &str,
        kind: &str,
    ) -> Result<Arc<ApiResource>> {
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
        let ar = Arc::new(ar);
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, ar.clone());
        Ok(ar)
    }
}

/// What a read of a target found.
#[derive(Debug, Clone, PartialEq)]
pub struct Read {
    /// `spec.replicas` (after this loop's own write, when the cache has not seen it yet).
    pub replicas: u32,
    /// The pods' selector; `None` when the target reports none (or one kedge cannot read).
    pub selector: Option<Arc<Selector>>,
}

/// One scale target, as its scale loop sees it.
pub struct KubeTarget {
    /// The kind's collection in the target's namespace (`/apis/apps/v1/namespaces/ns/deployments`).
    url: Box<str>,
    namespace: Box<str>,
    pub name: Box<str>,
    /// Read from the watch cache (else GET `/scale`).
    cached: Option<WorkloadKind>,
    /// The generation the cache showed at the last read.
    seen_generation: Option<i64>,
    /// The pods' selector at the last read.
    pub selector: Option<Arc<Selector>>,
    /// The count this loop wrote last, with the generation the cache showed before the write:
    /// until the cache shows another generation it has not seen the write, and the write is
    /// the count (read-your-writes over a watch).
    written: Option<(u32, i64)>,
}

impl KubeTarget {
    pub fn new(resource: &ApiResource, namespace: &str, name: &str) -> Self {
        use kube::Resource as _;
        KubeTarget {
            url: kube::api::DynamicObject::url_path(resource, Some(namespace)).into(),
            namespace: namespace.into(),
            name: name.into(),
            cached: WorkloadKind::of(&resource.group, &resource.kind),
            seen_generation: None,
            selector: None,
            written: None,
        }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The count and selector from the watch cache; `None` when the cache cannot tell (a
    /// kind without a watch, or not listed yet): then [`KubeTarget::read_scale`].
    pub fn read_cached(&mut self, caches: &TargetCaches) -> Option<Result<Read>> {
        let kind = self.cached?;
        match caches.workload(kind, &self.namespace, &self.name) {
            Ok(w) => {
                self.seen_generation = Some(w.generation);
                let replicas = match self.written {
                    Some((n, g)) if g == w.generation => n,
                    _ => {
                        self.written = None;
                        w.replicas
                    }
                };
                Some(Ok(Read {
                    replicas,
                    selector: w.selector,
                }))
            }
            Err(Missing::Absent) => Some(Err(Error::Invalid(format!(
                "{kind:?} {}/{} not found",
                self.namespace, self.name
            )))),
            Err(Missing::NotListed) => None,
        }
    }

    /// GET `/scale`: `spec.replicas` and the selector `status.selector` reports.
    pub async fn read_scale(&mut self, client: &kube::Client) -> Result<Read> {
        self.seen_generation = None;
        self.written = None;
        let req = kube::core::Request::new(&*self.url)
            .get_subresource("scale", &self.name)
            .map_err(|e| Error::Kube {
                context: format!("reading /scale of {}/{}", self.namespace, self.name),
                source: kube::Error::BuildRequest(e),
            })?;
        let s: k8s_openapi::api::autoscaling::v1::Scale =
            client.request(req).await.map_err(Error::kube(format!(
                "reading /scale of {}/{}",
                self.namespace, self.name
            )))?;
        let replicas = s.spec.and_then(|s| s.replicas).unwrap_or(0).max(0) as u32;
        let selector = s
            .status
            .and_then(|s| s.selector)
            .filter(|s| !s.is_empty())
            .and_then(|s| Selector::parse(&s).ok())
            .map(Arc::new);
        Ok(Read { replicas, selector })
    }

    /// Write `spec.replicas` through `/scale`.
    pub async fn write(&mut self, client: &kube::Client, replicas: u32) -> Result<()> {
        let patch = serde_json::json!({"spec": {"replicas": replicas}});
        let req = kube::core::Request::new(&*self.url).patch_subresource(
            "scale",
            &self.name,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        );
        Box::pin(crate::write_discarding(client, req))
            .await
            .map_err(Error::kube(format!(
                "writing /scale of {}/{}",
                self.namespace, self.name
            )))?;
        self.written = self.seen_generation.map(|g| (replicas, g));
        Ok(())
    }
}
