//! The scalers that measure pods rather than a queue: `kubernetes-workload` (how many pods
//! match a selector), `cpu` and `memory` (the scale target's pods' own usage against their
//! requests).
//!
//! Where pods come from is the substrate's business, behind [`PodSource`]: the operator lists
//! pods and reads `metrics.k8s.io` from the API server, the local twin knows its consumer
//! processes, a simulator its modelled pods ([`MemoryPods`] serves tests and both of those).
//! The scalers only do KEDA's and the HPA's arithmetic.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use autoscale::scaler::BoxFuture;
use autoscale::{MetricSample, Scaler, ScalerError};
use clock::Timestamp;
use model::keda::MetricType;
use model::keda::triggers::more::{SelectorTerm, parse_label_selector, selector_matches};
use model::keda::triggers::{KubernetesWorkload, PodResource, Resource};

/// A pod as these scalers see it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PodInfo {
    pub labels: BTreeMap<String, String>,
    /// Empty while unscheduled.
    pub node_name: String,
    /// `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`.
    pub phase: String,
}

/// One pod's use of a resource: cores for cpu, bytes for memory.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PodUsage {
    pub usage: f64,
    /// The pod's (or the named container's) request; `None` when not set.
    pub request: Option<f64>,
}

/// Where the pod-measuring scalers get pods and their usage.
pub trait PodSource: Send + Sync {
    /// Pods of `namespace` matching the label selector `selector` (as `kubectl -l` takes it).
    fn pods<'a>(
        &'a self,
        namespace: &'a str,
        selector: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PodInfo>, ScalerError>>;

    /// Current usage of the scale target's pods (running ones; `container`: only that one).
    fn target_usage<'a>(
        &'a self,
        resource: PodResource,
        container: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<PodUsage>, ScalerError>>;
}

/// Usage by (is cpu, container).
type UsageTable = BTreeMap<(bool, Option<String>), Vec<PodUsage>>;

/// Pods and usage held in memory: tests, the local twin, the simulator.
#[derive(Debug, Default)]
pub struct MemoryPods {
    pods: Mutex<Vec<(String, PodInfo)>>,
    usage: Mutex<UsageTable>,
}

impl MemoryPods {
    pub fn set_pods(&self, namespace: &str, pods: Vec<PodInfo>) {
        let mut all = self.pods.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|(ns, _)| ns != namespace);
        all.extend(pods.into_iter().map(|p| (namespace.to_string(), p)));
    }
    pub fn set_usage(&self, resource: PodResource, container: Option<&str>, u: Vec<PodUsage>) {
        self.usage.lock().unwrap_or_else(|p| p.into_inner()).insert(
            (resource == PodResource::Cpu, container.map(str::to_string)),
            u,
        );
    }
}

impl PodSource for MemoryPods {
    fn pods<'a>(
        &'a self,
        namespace: &'a str,
        selector: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PodInfo>, ScalerError>> {
        let r = parse_label_selector(selector)
            .map_err(ScalerError::Config)
            .map(|terms: Vec<SelectorTerm>| {
                self.pods
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .filter(|(ns, p)| ns == namespace && selector_matches(&terms, &p.labels))
                    .map(|(_, p)| p.clone())
                    .collect()
            });
        Box::pin(async move { r })
    }

    fn target_usage<'a>(
        &'a self,
        resource: PodResource,
        container: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<PodUsage>, ScalerError>> {
        let u = self
            .usage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(resource == PodResource::Cpu, container.map(str::to_string)))
            .cloned()
            .unwrap_or_default();
        Box::pin(async move { Ok(u) })
    }
}

/// `kubernetes-workload`: pods matching `podSelector` that have not terminated (or the
/// distinct nodes they run on, with `groupByNode`).
pub struct WorkloadScaler {
    cfg: KubernetesWorkload,
    namespace: String,
    source: Arc<dyn PodSource>,
}

impl WorkloadScaler {
    pub fn new(cfg: KubernetesWorkload, namespace: &str, source: Arc<dyn PodSource>) -> Self {
        WorkloadScaler {
            cfg,
            namespace: namespace.to_string(),
            source,
        }
    }
}

/// KEDA's count: pods not `Succeeded`/`Failed`; with `groupByNode`, their distinct nodes.
pub fn workload_count(pods: &[PodInfo], group_by_node: bool) -> i64 {
    let live = pods
        .iter()
        .filter(|p| p.phase != "Succeeded" && p.phase != "Failed");
    if group_by_node {
        live.filter(|p| !p.node_name.is_empty())
            .map(|p| p.node_name.as_str())
            .collect::<BTreeSet<_>>()
            .len() as i64
    } else {
        live.count() as i64
    }
}

impl Scaler for WorkloadScaler {
    fn get_metric_and_activity(
        &self,
        _now: Timestamp,
    ) -> BoxFuture<'_, Result<MetricSample, ScalerError>> {
        Box::pin(async move {
            let pods = self
                .source
                .pods(&self.namespace, &self.cfg.pod_selector)
                .await?;
            let n = workload_count(&pods, self.cfg.group_by_node) as f64;
            Ok(MetricSample::with_threshold(n, self.cfg.activation_value))
        })
    }
}

/// `cpu` / `memory`: the HPA's resource metric over the target's pods. Utilization: total
/// usage over total requests, in percent (pods without a request make it unusable, as in the
/// HPA); AverageValue: usage per pod. Always active (KEDA: these triggers never deactivate).
pub struct ResourceScaler {
    cfg: Resource,
    source: Arc<dyn PodSource>,
}

impl ResourceScaler {
    pub fn new(cfg: Resource, source: Arc<dyn PodSource>) -> Self {
        ResourceScaler { cfg, source }
    }
}

/// The metric value from the pods' usage.
pub fn resource_value(
    metric_type: MetricType,
    resource: PodResource,
    pods: &[PodUsage],
) -> Result<f64, ScalerError> {
    if pods.is_empty() {
        return Err(ScalerError::Query(format!(
            "no {resource:?} metrics for the target's pods yet"
        )));
    }
    let usage: f64 = pods.iter().map(|p| p.usage).sum();
    match metric_type {
        MetricType::Utilization => {
            let mut requests = 0.0;
            for p in pods {
                match p.request {
                    Some(r) if r > 0.0 => requests += r,
                    _ => {
                        return Err(ScalerError::Query(format!(
                            "missing {resource:?} request on a pod of the target: Utilization needs requests on every container"
                        )));
                    }
                }
            }
            Ok(usage / requests * 100.0)
        }
        _ => Ok(usage / pods.len() as f64),
    }
}

impl Scaler for ResourceScaler {
    fn get_metric_and_activity(
        &self,
        _now: Timestamp,
    ) -> BoxFuture<'_, Result<MetricSample, ScalerError>> {
        Box::pin(async move {
            let pods = self
                .source
                .target_usage(self.cfg.resource, self.cfg.container_name.as_deref())
                .await?;
            let v = resource_value(self.cfg.metric_type, self.cfg.resource, &pods)?;
            Ok(MetricSample {
                value: v,
                active: true,
            })
        })
    }
}
