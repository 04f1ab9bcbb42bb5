//! The operator's [`PodSource`]: what the `kubernetes-workload`, `cpu` and `memory` scalers
//! read in a cluster.
//!
//! - Pods come from the node side's Pod watch cache when the operator has one (a
//!   `Store<CachedPod>`: no API call per poll), else from a label-selected list (the same
//!   objects; KEDA reads them from controller-runtime's cache).
//! - Usage comes from the resource metrics API (`metrics.k8s.io/v1beta1` `PodMetrics`, what
//!   metrics-server serves and the HPA reads), joined by pod name with the pods' requests. Only
//!   `Running` pods count, as in the HPA. A cluster without the metrics API gets a configuration
//!   error that says so (the trigger's `Ready` condition carries it), not a zero.

use std::collections::BTreeMap;
use std::str::FromStr;

use autoscale::ScalerError;
use autoscale::scaler::BoxFuture;
use kube::api::{Api, ListParams};
use kube::runtime::reflector::Store;
use model::keda::triggers::PodResource;
use model::keda::triggers::more::{parse_label_selector, selector_matches};
use scalers::pods::{PodInfo, PodSource, PodUsage};
use serde_json::Value;

use crate::cached_pod::CachedPod;

/// The path of the resource metrics API for pods.
const METRICS_API: &str = "/apis/metrics.k8s.io/v1beta1";

/// Pods and their usage from the API server, for one scale target.
pub struct KubePods {
    client: kube::Client,
    /// The scale target's namespace.
    namespace: String,
    /// Label selector of the scale target's pods (`cpu` / `memory`).
    target_selector: String,
    cache: Option<Store<CachedPod>>,
}

impl KubePods {
    /// `target_selector` selects the scale target's pods in `namespace` (a Deployment's
    /// `/scale` `status.selector`; for a ScaledJob, `scaledjob.keda.sh/name=<name>`). `cache`:
    /// the operator's Pod watch cache, when it runs one.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        target_selector: &str,
        cache: Option<Store<CachedPod>>,
    ) -> KubePods {
        KubePods {
            client,
            namespace: namespace.to_string(),
            target_selector: target_selector.to_string(),
            cache,
        }
    }

    async fn list(&self, namespace: &str, selector: &str) -> Result<Vec<CachedPod>, ScalerError> {
        let terms = parse_label_selector(selector)
            .map_err(|e| ScalerError::Config(format!("label selector {selector:?}: {e}")))?;
        if let Some(store) = &self.cache {
            return Ok(store
                .state()
                .iter()
                .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
                .filter(|p| {
                    selector_matches(
                        &terms,
                        p.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()),
                    )
                })
                .map(|p| (**p).clone())
                .collect());
        }
        Api::<CachedPod>::namespaced(self.client.clone(), namespace)
            .list(&ListParams::default().labels(selector))
            .await
            .map(|l| l.items)
            .map_err(|e| ScalerError::Connect(format!("listing pods in {namespace}: {e}")))
    }

    /// `PodMetrics` of the target's pods: pod name → container name → usage.
    async fn metrics(
        &self,
        resource: PodResource,
    ) -> Result<BTreeMap<String, BTreeMap<String, f64>>, ScalerError> {
        let key = resource_key(resource);
        let url = format!(
            "{METRICS_API}/namespaces/{}/pods?labelSelector={}",
            self.namespace,
            encode(&self.target_selector)
        );
        let req = http::Request::get(&url)
            .body(Vec::new())
            .map_err(|e| ScalerError::Config(format!("the metrics request: {e}")))?;
        let list: Value = match self.client.request(req).await {
            Ok(v) => v,
            Err(e) => {
                return Err(match crate::error::kube_status(&e) {
                    Some(404) | Some(503) => ScalerError::Config(format!(
                        "the resource metrics API ({METRICS_API}) is not available in this cluster: the {key} trigger needs a metrics server (e.g. metrics-server) ({e})"
                    )),
                    Some(403) => ScalerError::Config(format!(
                        "reading {METRICS_API} pods in {} is forbidden: the operator needs get/list on metrics.k8s.io pods ({e})",
                        self.namespace
                    )),
                    _ => ScalerError::Connect(format!("reading {METRICS_API}: {e}")),
                });
            }
        };
        let mut out = BTreeMap::new();
        for item in list["items"].as_array().into_iter().flatten() {
            let Some(pod) = item["metadata"]["name"].as_str() else {
                continue;
            };
            let mut containers = BTreeMap::new();
            for c in item["containers"].as_array().into_iter().flatten() {
                let name = c["name"].as_str().unwrap_or_default().to_string();
                let Some(q) = c["usage"][key].as_str() else {
                    continue;
                };
                let v = model::quantity::Quantity::from_str(q).map_err(|e| {
                    ScalerError::Parse(format!("{key} usage {q:?} of pod {pod}: {e}"))
                })?;
                containers.insert(name, v.as_f64());
            }
            out.insert(pod.to_string(), containers);
        }
        Ok(out)
    }
}

fn resource_key(r: PodResource) -> &'static str {
    match r {
        PodResource::Cpu => "cpu",
        PodResource::Memory => "memory",
    }
}

/// Percent-encode a label selector for a query string.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn phase(p: &CachedPod) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

/// A pod's request of `key` (all containers, or the named one); `None` when a container that
/// counts has none.
fn request(p: &CachedPod, key: &str, container: Option<&str>) -> Option<f64> {
    let containers = p
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    let mut total = 0.0;
    let mut any = false;
    for c in containers
        .iter()
        .filter(|c| container.is_none_or(|n| c.name == n))
    {
        let q = c
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get(key))?;
        total += model::quantity::Quantity::from_str(&q.0).ok()?.as_f64();
        any = true;
    }
    any.then_some(total)
}

impl PodSource for KubePods {
    fn pods<'a>(
        &'a self,
        namespace: &'a str,
        selector: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PodInfo>, ScalerError>> {
        Box::pin(async move {
            Ok(self
                .list(namespace, selector)
                .await?
                .iter()
                .map(|p| PodInfo {
                    labels: p.metadata.labels.clone().unwrap_or_default(),
                    node_name: p
                        .spec
                        .as_ref()
                        .and_then(|s| s.node_name.clone())
                        .unwrap_or_default(),
                    phase: phase(p),
                })
                .collect())
        })
    }

    fn target_usage<'a>(
        &'a self,
        resource: PodResource,
        container: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<PodUsage>, ScalerError>> {
        Box::pin(async move {
            let key = resource_key(resource);
            let pods = self.list(&self.namespace, &self.target_selector).await?;
            let metrics = self.metrics(resource).await?;
            let mut out = Vec::new();
            for p in pods.iter().filter(|p| phase(p) == "Running") {
                let name = p.metadata.name.as_deref().unwrap_or_default();
                // A pod the metrics server has not sampled yet is left out, as the HPA does.
                let Some(usage) = metrics.get(name) else {
                    continue;
                };
                let used: f64 = usage
                    .iter()
                    .filter(|(c, _)| container.is_none_or(|n| c.as_str() == n))
                    .map(|(_, v)| v)
                    .sum();
                out.push(PodUsage {
                    usage: used,
                    request: request(p, key, container),
                });
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::fixtures::{self, mock_client};

    fn pod(name: &str, phase: &str, cpu_requests: &[(&str, Option<&str>)]) -> Value {
        let containers: Vec<Value> = cpu_requests
            .iter()
            .map(|(c, r)| match r {
                Some(r) => json!({"name": c, "resources": {"requests": {"cpu": r}}}),
                None => json!({"name": c}),
            })
            .collect();
        json!({"metadata": {"name": name, "namespace": "ns", "labels": {"app": "web"}},
               "spec": {"nodeName": "n1", "containers": containers},
               "status": {"phase": phase}})
    }

    #[tokio::test]
    async fn usage_joins_pod_metrics_with_requests_of_running_pods() {
        let (client, mut api) = mock_client();
        let src = KubePods::new(client, "ns", "app=web", None);
        let task = tokio::spawn(async move {
            let all = src.target_usage(PodResource::Cpu, None).await;
            let one = src.target_usage(PodResource::Cpu, Some("main")).await;
            (all, one)
        });
        let pods = json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [
            pod("a", "Running", &[("main", Some("500m")), ("side", Some("100m"))]),
            pod("b", "Running", &[("main", Some("1")), ("side", None)]),
            pod("c", "Pending", &[("main", Some("1"))]),
            pod("d", "Running", &[("main", Some("1"))]),
        ]});
        let metrics = json!({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {}, "items": [
            {"metadata": {"name": "a", "namespace": "ns"}, "containers": [
                {"name": "main", "usage": {"cpu": "250m", "memory": "10Mi"}},
                {"name": "side", "usage": {"cpu": "50m", "memory": "1Mi"}}]},
            {"metadata": {"name": "b", "namespace": "ns"}, "containers": [
                {"name": "main", "usage": {"cpu": "1500m", "memory": "10Mi"}},
                {"name": "side", "usage": {"cpu": "0", "memory": "1Mi"}}]},
            {"metadata": {"name": "c", "namespace": "ns"}, "containers": []}]});
        fixtures::timeout(Duration::from_secs(10), async {
            for _ in 0..2 {
                api.expect(
                    "GET",
                    "/api/v1/namespaces/ns/pods?&labelSelector=app%3Dweb",
                    200,
                    pods.clone(),
                )
                .await;
                api.expect(
                    "GET",
                    "/apis/metrics.k8s.io/v1beta1/namespaces/ns/pods?labelSelector=app%3Dweb",
                    200,
                    metrics.clone(),
                )
                .await;
            }
        })
        .await;
        let (all, one) = task.await.unwrap();
        // c is not Running, d has no metrics yet; b's side container has no request.
        assert_eq!(
            all.unwrap(),
            [
                PodUsage {
                    usage: 0.3,
                    request: Some(0.6)
                },
                PodUsage {
                    usage: 1.5,
                    request: None
                },
            ]
        );
        assert_eq!(
            one.unwrap(),
            [
                PodUsage {
                    usage: 0.25,
                    request: Some(0.5)
                },
                PodUsage {
                    usage: 1.5,
                    request: Some(1.0)
                },
            ]
        );
        api.expect_no_more(Duration::from_millis(50)).await;
    }

    #[tokio::test]
    async fn without_a_metrics_api_the_error_says_so() {
        let (client, mut api) = mock_client();
        let src = KubePods::new(client, "ns", "app=web", None);
        let task = tokio::spawn(async move { src.target_usage(PodResource::Memory, None).await });
        fixtures::timeout(Duration::from_secs(10), async {
            api.expect(
                "GET",
                "/api/v1/namespaces/ns/pods?&labelSelector=app%3Dweb",
                200,
                json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": []}),
            )
            .await;
            api.expect(
                "GET",
                "/apis/metrics.k8s.io/v1beta1/namespaces/ns/pods?labelSelector=app%3Dweb",
                404,
                fixtures::status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                ),
            )
            .await;
        })
        .await;
        let err = task.await.unwrap().unwrap_err();
        assert!(matches!(err, ScalerError::Config(_)), "{err}");
        assert!(
            err.to_string().contains("metrics.k8s.io")
                && err.to_string().contains("metrics server"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn pods_match_the_selector_from_the_cache_without_a_call() {
        let (client, mut api) = mock_client();
        let (reader, mut writer) = kube::runtime::reflector::store::<CachedPod>();
        for (name, ns, app) in [("a", "ns", "web"), ("b", "ns", "db"), ("c", "other", "web")] {
            let p: CachedPod = serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": ns, "labels": {"app": app}},
                "status": {"phase": "Running"}}))
            .unwrap();
            writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(p));
        }
        let src = KubePods::new(client, "ns", "app=web", Some(reader));
        let pods = src.pods("ns", "app in (web)").await.unwrap();
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0].phase, "Running");
        assert!(src.pods("ns", "app in (").await.is_err());
        api.expect_no_more(Duration::from_millis(50)).await;
    }
}
