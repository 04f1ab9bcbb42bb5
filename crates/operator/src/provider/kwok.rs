//! The `kwok` cloud provider: fake nodes for tests, demos and cluster-scale simulation.
//!
//! A launch creates a `Node` object named after the NodeClaim, with capacity and allocatable
//! from the catalog (`provision::catalog`), the well-known labels, the claim's taints and
//! startup taints plus `node.kubernetes.io/not-ready:NoSchedule`, provider ID
//! `kwok://<node>` and an annotation [`ANNOTATION_READY_AT`] (now + boot delay, from the
//! injected clock). There is no kubelet behind these nodes, so [`Kwok::run_kubelet`] plays its
//! part for them (and only them): node Ready after the boot delay, node lease heartbeats,
//! bound pods marked Running/Ready, terminating pods force-deleted after their grace period.
//!
//! Insufficient capacity can be simulated: offerings in the `unavailable` set fail to launch,
//! the provider falls back to the next instance type of the request (as EC2 CreateFleet
//! does with several overrides) and remembers the failed offerings so [`Kwok::catalog`] no
//! longer offers them to the planner.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cached_node::CachedNode as Node;
use crate::cached_pod::CachedPod as Pod;
use clock::{Clock, Timestamp};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::Store;
use model::karpenter::{
    LABEL_ARCH, LABEL_CAPACITY_TYPE, LABEL_HOSTNAME, LABEL_INSTANCE_TYPE, LABEL_NODEPOOL, LABEL_OS,
    LABEL_ZONE,
};
use provision::catalog::{Catalog, Offering, offering_order};
use provision::requirements::Requirements;
use serde_json::{Value, json};

use super::{CloudProvider, Instance, LaunchRequest, ProviderError};
use crate::error::kube_status;
use autoscale::scaler::BoxFuture;

/// Provider ID scheme of kwok nodes: `kwok://<node name>`.
pub const PROVIDER_ID_PREFIX: &str = "kwok://";
/// When the fake node turns Ready (RFC 3339), written at launch from the injected clock.
pub const ANNOTATION_READY_AT: &str = "kwok.kedge.dev/ready-at";
/// The NodeClaim a kwok node was launched for (garbage collection reads it, as Karpenter's
/// AWS provider reads the `karpenter.sh/nodeclaim` instance tag).
pub const ANNOTATION_NODECLAIM: &str = "kwok.kedge.dev/nodeclaim";
/// The taint the API server's node lifecycle puts on nodes that are not Ready.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// Default time from launch to Ready.
pub const DEFAULT_BOOT_DELAY: Duration = Duration::from_secs(15);
/// Writes the fake kubelet has in flight at once.
const KUBELET_CONCURRENCY: usize = 16;
/// Field manager of the fake kubelet's writes.
const KUBELET_MANAGER: &str = "kedge-kwok-kubelet";
/// Lease duration the kubelet announces; renewed every quarter of it (the kubelet's
/// defaults: 40 s, renewed every 10 s), so the node lifecycle controller never sees a
/// silent node.
const LEASE_SECONDS: i32 = 40;

/// One offering that fails to launch (simulated insufficient capacity). An empty zone or
/// capacity type matches every zone / capacity type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnavailableOffering {
    pub instance_type: String,
    pub zone: String,
    pub capacity_type: String,
}

impl UnavailableOffering {
    /// Every offering of `instance_type`.
    pub fn instance_type(t: &str) -> Self {
        UnavailableOffering {
            instance_type: t.into(),
            zone: String::new(),
            capacity_type: String::new(),
        }
    }
    fn matches(&self, t: &str, o: &Offering) -> bool {
        self.instance_type == t
            && (self.zone.is_empty() || *self.zone == *o.zone)
            && (self.capacity_type.is_empty() || *self.capacity_type == *o.capacity_type)
    }
}

/// Fake nodes on a real API server.
pub struct Kwok {
    client: kube::Client,
    clock: Arc<dyn Clock>,
    catalog: Arc<Catalog>,
    boot_delay: Duration,
    /// Offerings that fail to launch (the simulated cloud has no capacity there).
    unavailable: BTreeSet<UnavailableOffering>,
    /// Offerings that failed a launch: no longer offered to the planner.
    learned: Mutex<BTreeSet<(String, String, String)>>,
}

impl Kwok {
    pub fn new(client: kube::Client, clock: Arc<dyn Clock>, catalog: Arc<Catalog>) -> Self {
        Kwok {
            client,
            clock,
            catalog,
            boot_delay: DEFAULT_BOOT_DELAY,
            unavailable: BTreeSet::new(),
            learned: Mutex::new(BTreeSet::new()),
        }
    }

    /// Time from launch to Ready (default 15 s).
    pub fn with_boot_delay(mut self, d: Duration) -> Self {
        self.boot_delay = d;
        self
    }

    /// Offerings that fail with insufficient capacity (to test fallback).
    pub fn with_unavailable(mut self, u: impl IntoIterator<Item = UnavailableOffering>) -> Self {
        self.unavailable.extend(u);
        self
    }

    fn simulated_ice(&self, t: &str, o: &Offering) -> bool {
        self.unavailable.iter().any(|u| u.matches(t, o))
    }

    fn learned_ice(&self, t: &str, o: &Offering) -> bool {
        self.learned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&(
                t.to_string(),
                o.zone.to_string(),
                o.capacity_type.to_string(),
            ))
    }

    /// The Node object a launch creates (pure; exposed for tests).
    pub fn node_for(
        &self,
        req: &LaunchRequest,
        t: &provision::catalog::InstanceType,
        o: &Offering,
        now: Timestamp,
    ) -> k8s_openapi::api::core::v1::Node {
        let name = &req.claim_name;
        let mut labels: BTreeMap<String, String> = BTreeMap::new();
        // Single-valued requirements of the instance type (arch, os, family, size, cpu, …).
        for (k, r) in t.requirements.iter() {
            if let Some(v) = r.single() {
                labels.insert(k.to_string(), v.to_string());
            }
        }
        labels.insert(LABEL_INSTANCE_TYPE.into(), t.name.clone());
        labels.insert(LABEL_ZONE.into(), o.zone.to_string());
        labels.insert(LABEL_CAPACITY_TYPE.into(), o.capacity_type.to_string());
        labels.entry(LABEL_ARCH.into()).or_insert("amd64".into());
        labels.entry(LABEL_OS.into()).or_insert("linux".into());
        labels.insert(LABEL_HOSTNAME.into(), name.clone());
        labels.insert(LABEL_NODEPOOL.into(), req.nodepool.clone());
        for (k, v) in &req.labels {
            labels.insert(k.clone(), v.clone());
        }
        let mut taints: Vec<Value> = Vec::new();
        for t in req.taints.iter().chain(&req.startup_taints) {
            taints.push(serde_json::to_value(t).unwrap_or(Value::Null));
        }
        taints.push(json!({"key": TAINT_NOT_READY, "effect": "NoSchedule"}));
        let ready_at = rfc3339(now.add(self.boot_delay));
        let cap = quantities(&t.capacity.to_list());
        let alloc = quantities(&t.allocatable.to_list());
        let v = json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": labels,
                "annotations": {
                    ANNOTATION_READY_AT: ready_at,
                    ANNOTATION_NODECLAIM: name,
                    "kwok.x-k8s.io/node": "fake",
                },
            },
            "spec": {
                "providerID": format!("{PROVIDER_ID_PREFIX}{name}"),
                "taints": taints,
            },
            "status": {
                "capacity": cap,
                "allocatable": alloc,
                "phase": "Running",
            },
        });
        serde_json::from_value(v).unwrap_or_default()
    }

    async fn launch(&self, req: &LaunchRequest) -> Result<Instance, ProviderError> {
        let reqs = claim_requirements(&req.claim);
        let mut tried = Vec::new();
        for name in &req.instance_types {
            let Some(t) = self.catalog.get(name) else {
                continue;
            };
            let mut offerings: Vec<&Offering> = t
                .offerings
                .iter()
                .filter(|o| o.available && provision::catalog::offering_allowed(o, &reqs))
                .filter(|o| !self.learned_ice(name, o))
                .collect();
            offerings.sort_by(|a, b| offering_order(a, b));
            for o in offerings {
                if self.simulated_ice(name, o) {
                    tried.push(format!("{name}/{}/{}", o.zone, o.capacity_type));
                    self.learned
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert((
                            name.clone(),
                            o.zone.to_string(),
                            o.capacity_type.to_string(),
                        ));
                    continue;
                }
                let node = self.node_for(req, t, o, self.clock.now());
                // Created as the full type (the cached one leaves out what it never reads).
                let api: Api<k8s_openapi::api::core::v1::Node> = Api::all(self.client.clone());
                let created = match api.create(&PostParams::default(), &node).await {
                    Ok(n) => n,
                    // A retried launch (the claim's status write was lost): the node is ours.
                    Err(e) if kube_status(&e) == Some(409) => api
                        .get(&req.claim_name)
                        .await
                        .map_err(|e| ProviderError::Api(format!("get node: {e}")))?,
                    Err(e) if kube_status(&e) == Some(422) || kube_status(&e) == Some(400) => {
                        return Err(ProviderError::Invalid(format!("create node: {e}")));
                    }
                    Err(e) => return Err(ProviderError::Api(format!("create node: {e}"))),
                };
                return Ok(instance_of(&Node::of(&created)));
            }
        }
        if tried.is_empty() {
            Err(ProviderError::InsufficientCapacity(format!(
                "no offering of {:?} matches the claim's requirements",
                req.instance_types
            )))
        } else {
            Err(ProviderError::InsufficientCapacity(format!(
                "no capacity for {}",
                tried.join(", ")
            )))
        }
    }

    /// Play the kubelet's part for kwok nodes until `shutdown` turns true: node Ready (and
    /// the not-ready taint removed) once `kwok.kedge.dev/ready-at` has passed, node lease
    /// heartbeats, pods bound to kwok nodes marked Running/Ready, terminating pods on kwok
    /// nodes force-deleted once their grace period is over. Driven by watches; the only
    /// timers are those deadlines (read from `clock`).
    pub async fn run_kubelet(
        client: kube::Client,
        clock: Arc<dyn Clock>,
        informers: crate::informers::Informers,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> crate::Result<()> {
        let mut events = futures::stream::select(
            informers.nodes.changes_map(|_| Some(())).boxed(),
            informers.pods.changes_map(|_| Some(())).boxed(),
        );
        let (nodes, pods) = (
            informers.nodes.store().clone(),
            informers.pods.store().clone(),
        );
        let mut k = Kubelet {
            client,
            clock,
            nodes,
            pods,
            leases: HashMap::new(),
            running: HashSet::new(),
        };
        let mut next: Option<Timestamp> = None;
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            let wait = match next {
                // A floor so a deadline already past (a failed write to retry) cannot spin.
                Some(t) => t.since(k.clock.now()).max(Duration::from_millis(100)),
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = shutdown.changed() => return Ok(()),
                ev = events.next() => {
                    if ev.is_none() {
                        return Ok(());
                    }
                    // Coalesce a burst of watch events into one pass.
                    while let Some(Some(_)) = futures::FutureExt::now_or_never(events.next()) {}
                }
                _ = tokio::time::sleep(wait) => {}
            }
            next = k.pass().await;
        }
    }
}

/// The fake kubelet's view and bookkeeping.
struct Kubelet {
    client: kube::Client,
    clock: Arc<dyn Clock>,
    nodes: Store<Node>,
    pods: Store<Pod>,
    /// Last lease renewal per node.
    leases: HashMap<String, Timestamp>,
    /// Pods already reported Running (uid), so a watch event does not repeat the patch.
    running: HashSet<String>,
}

/// Is this a kwok node?
pub fn is_kwok_node(n: &Node) -> bool {
    n.spec
        .as_ref()
        .and_then(|s| s.provider_id.as_deref())
        .is_some_and(|p| p.starts_with(PROVIDER_ID_PREFIX))
}

/// Is the node's Ready condition True?
pub fn node_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn has_not_ready_taint(n: &Node) -> bool {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|ts| ts.iter().any(|t| t.key == TAINT_NOT_READY))
}

fn ready_at(n: &Node) -> Option<Timestamp> {
    let s = n.metadata.annotations.as_ref()?.get(ANNOTATION_READY_AT)?;
    parse_rfc3339(s)
}

/// What the fake kubelet should do for one pod on a kwok node.
#[derive(Debug, Clone, PartialEq)]
pub enum PodTodo {
    Nothing,
    /// Report the pod Running and Ready.
    MarkRunning,
    /// Terminating and its grace period is over: delete with grace period 0.
    ForceDelete,
    /// Terminating: look again at this time.
    WaitUntil(Timestamp),
}

/// The kubelet's decision for a pod bound to a kwok node (pure).
pub fn pod_todo(p: &Pod, now: Timestamp) -> PodTodo {
    if let Some(dt) = &p.metadata.deletion_timestamp {
        let at = Timestamp::from_millis(dt.0.as_millisecond().max(0) as u64);
        return if now >= at {
            PodTodo::ForceDelete
        } else {
            PodTodo::WaitUntil(at)
        };
    }
    let st = p.status.as_ref();
    let phase = st.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
    if phase == "Succeeded" || phase == "Failed" {
        return PodTodo::Nothing;
    }
    let ready = st
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    if phase == "Running" && ready {
        PodTodo::Nothing
    } else {
        PodTodo::MarkRunning
    }
}

impl Kubelet {
    /// One pass over the stores; returns the next deadline to look again.
    async fn pass(&mut self) -> Option<Timestamp> {
        use futures::StreamExt;
        let now = self.clock.now();
        let mut next: Option<Timestamp> = None;
        let mut soonest = |t: Timestamp| {
            next = Some(next.map_or(t, |n: Timestamp| n.min(t)));
        };
        let kwok: Vec<Arc<Node>> = self
            .nodes
            .state()
            .into_iter()
            .filter(|n| is_kwok_node(n))
            .collect();
        let names: HashSet<String> = kwok
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        self.leases.retain(|n, _| names.contains(n));
        // Decide first, then issue the writes KUBELET_CONCURRENCY at a time (in order), so a
        // pass over hundreds of nodes is not hundreds of sequential round trips.
        let renew_every = Duration::from_secs(LEASE_SECONDS as u64 / 4);
        let mut renew: Vec<Arc<Node>> = Vec::new();
        let mut make_ready: Vec<Arc<Node>> = Vec::new();
        for n in &kwok {
            let Some(name) = n.metadata.name.clone() else {
                continue;
            };
            if n.metadata.deletion_timestamp.is_some() {
                continue;
            }
            // Heartbeat.
            let last = self.leases.get(&name).copied();
            match last {
                Some(t) if now < t.add(renew_every) => soonest(t.add(renew_every)),
                _ => {
                    renew.push(n.clone());
                    soonest(now.add(renew_every));
                }
            }
            // Boot.
            let at = ready_at(n).unwrap_or(Timestamp::ZERO);
            if now < at {
                soonest(at);
                continue;
            }
            if !node_ready(n) || has_not_ready_taint(n) {
                make_ready.push(n.clone());
            }
        }
        let this = &*self;
        let renewed: Vec<(String, Result<(), kube::Error>)> = futures::stream::iter(renew)
            .map(|n| async move {
                let name = n.metadata.name.clone().unwrap_or_default();
                (name, this.renew_lease(&n, now).await)
            })
            .buffered(KUBELET_CONCURRENCY)
            .collect()
            .await;
        let readied: Vec<(String, Result<(), kube::Error>)> = futures::stream::iter(make_ready)
            .map(|n| async move {
                let name = n.metadata.name.clone().unwrap_or_default();
                (name, this.make_ready(&n, now).await)
            })
            .buffered(KUBELET_CONCURRENCY)
            .collect()
            .await;
        for (name, r) in renewed {
            match r {
                Ok(()) => {
                    self.leases.insert(name, now);
                }
                Err(e) => {
                    tracing::warn!(node = %name, "kwok kubelet: lease renewal: {e}");
                    soonest(now.add(Duration::from_secs(1)));
                }
            }
        }
        for (name, r) in readied {
            if let Err(e) = r {
                tracing::warn!(node = %name, "kwok kubelet: node ready: {e}");
                soonest(now.add(Duration::from_secs(1)));
            }
        }
        let mut seen = HashSet::new();
        let mut to_run: Vec<(String, Arc<Pod>)> = Vec::new();
        let mut to_delete: Vec<Arc<Pod>> = Vec::new();
        for p in self.pods.state() {
            let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.clone()) else {
                continue;
            };
            if !names.contains(&node) {
                continue;
            }
            let uid = p.metadata.uid.clone().unwrap_or_default();
            seen.insert(uid.clone());
            match pod_todo(&p, now) {
                PodTodo::Nothing => {}
                PodTodo::WaitUntil(t) => soonest(t),
                PodTodo::MarkRunning => {
                    if !self.running.contains(&uid) {
                        to_run.push((uid, p));
                    }
                }
                PodTodo::ForceDelete => to_delete.push(p),
            }
        }
        let this = &*self;
        let ran: Vec<(String, Result<(), kube::Error>)> = futures::stream::iter(to_run)
            .map(|(uid, p)| async move { (uid, this.mark_running(&p, now).await) })
            .buffered(KUBELET_CONCURRENCY)
            .collect()
            .await;
        let deleted: Vec<Result<(), kube::Error>> = futures::stream::iter(to_delete)
            .map(|p| async move { this.force_delete(&p).await })
            .buffered(KUBELET_CONCURRENCY)
            .collect()
            .await;
        for (uid, r) in ran {
            match r {
                Ok(()) => {
                    self.running.insert(uid);
                }
                Err(e) => {
                    tracing::warn!("kwok kubelet: pod status: {e}");
                    soonest(now.add(Duration::from_secs(1)));
                }
            }
        }
        for r in deleted {
            if let Err(e) = r {
                tracing::warn!("kwok kubelet: force delete: {e}");
                soonest(now.add(Duration::from_secs(1)));
            }
        }
        self.running.retain(|u| seen.contains(u));
        next
    }

    async fn renew_lease(&self, n: &Node, now: Timestamp) -> Result<(), kube::Error> {
        let name = n.metadata.name.clone().unwrap_or_default();
        let mut owner = json!([]);
        if let Some(uid) = &n.metadata.uid {
            owner = json!([{"apiVersion": "v1", "kind": "Node", "name": name, "uid": uid}]);
        }
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease", "ownerReferences": owner},
            "spec": {
                "holderIdentity": name,
                "leaseDurationSeconds": LEASE_SECONDS,
                "renewTime": rfc3339_micro(now),
            },
        });
        let api: Api<Lease> = Api::namespaced(self.client.clone(), "kube-node-lease");
        let req = kube::core::Request::new(api.resource_url()).patch(
            &name,
            &PatchParams::apply(KUBELET_MANAGER).force(),
            &Patch::Apply(&lease),
        );
        crate::write_discarding(&self.client, req).await
    }

    async fn make_ready(&self, n: &Node, now: Timestamp) -> Result<(), kube::Error> {
        let name = n.metadata.name.clone().unwrap_or_default();
        let api: Api<Node> = Api::all(self.client.clone());
        let t = rfc3339(now);
        let status = json!({"status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady",
             "message": "kwok: fake kubelet is posting ready status",
             "lastHeartbeatTime": t, "lastTransitionTime": t},
            {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory",
             "lastHeartbeatTime": t, "lastTransitionTime": t},
            {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure",
             "lastHeartbeatTime": t, "lastTransitionTime": t},
            {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID",
             "lastHeartbeatTime": t, "lastTransitionTime": t},
        ]}});
        // Strategic merge keys conditions by type. Only when not Ready yet: the write bumps
        // the resourceVersion, and the taint removal below is guarded by it.
        let mut resource_version = n.metadata.resource_version.clone();
        if !node_ready(n) {
            let updated = api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&status))
                .await?;
            resource_version = updated.metadata.resource_version;
        }
        if has_not_ready_taint(n) {
            let taints: Vec<_> = n
                .spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default()
                .into_iter()
                .filter(|t| t.key != TAINT_NOT_READY)
                .collect();
            // Optimistic lock: the node lifecycle controller also writes taints.
            let patch = json!({
                "metadata": {"resourceVersion": resource_version},
                "spec": {"taints": taints},
            });
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {}
                // Stale: the watch brings the new version and the next pass retries.
                Err(e) if kube_status(&e) == Some(409) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn mark_running(&self, p: &Pod, now: Timestamp) -> Result<(), kube::Error> {
        let name = p.metadata.name.clone().unwrap_or_default();
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        let t = rfc3339(now);
        let started = p
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0.to_string())
            .unwrap_or_else(|| t.clone());
        let containers: Vec<Value> = p
            .spec
            .as_ref()
            .map(|s| s.containers.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "image": c.image.clone().unwrap_or_default(),
                    "imageID": "",
                    "containerID": format!("kwok://{}", c.name),
                    "ready": true,
                    "started": true,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": started}},
                })
            })
            .collect();
        let cond = |ty: &str| json!({"type": ty, "status": "True", "lastTransitionTime": t});
        let status = json!({"status": {
            "phase": "Running",
            "podIP": pod_ip(p.metadata.uid.as_deref().unwrap_or(&name)),
            "hostIP": "10.0.0.1",
            "startTime": started,
            "conditions": [cond("Initialized"), cond("Ready"), cond("ContainersReady"), cond("PodScheduled")],
            "containerStatuses": containers,
        }});
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let req = kube::core::Request::new(api.resource_url()).patch_subresource(
            "status",
            &name,
            &PatchParams::default(),
            &Patch::Strategic(&status),
        );
        match crate::write_discarding(&self.client, req).await {
            Ok(_) => Ok(()),
            Err(e) if kube_status(&e) == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn force_delete(&self, p: &Pod) -> Result<(), kube::Error> {
        let name = p.metadata.name.clone().unwrap_or_default();
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        };
        let req = kube::core::Request::new(api.resource_url()).delete(&name, &dp);
        match crate::write_discarding(&self.client, req).await {
            Ok(_) => Ok(()),
            Err(e) if kube_status(&e) == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// A stable fake pod IP in 10.64.0.0/10 from the pod's uid.
fn pod_ip(key: &str) -> String {
    let h = key.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    format!(
        "10.{}.{}.{}",
        64 + (h % 64),
        (h >> 8) % 256,
        1 + (h >> 16) % 254
    )
}

/// The claim's zone / capacity-type requirements.
fn claim_requirements(c: &model::karpenter::NodeClaim) -> Requirements {
    Requirements::from_nodepool(&c.spec.requirements)
}

fn quantities(l: &model::kube::ResourceList) -> BTreeMap<String, String> {
    l.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()
}

/// The provider's view of a kwok node.
pub fn instance_of(n: &Node) -> Instance {
    let labels: BTreeMap<String, String> = n.metadata.labels.clone().unwrap_or_default();
    let name = n.metadata.name.clone().unwrap_or_default();
    let list = |l: Option<
        &crate::cached_pod::ListMap<k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >| {
        l.map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.to_string(), v.0.parse().ok()?)))
                .collect()
        })
        .unwrap_or_default()
    };
    let st = n.status.as_ref();
    Instance {
        provider_id: n
            .spec
            .as_ref()
            .and_then(|s| s.provider_id.clone())
            .unwrap_or_else(|| format!("{PROVIDER_ID_PREFIX}{name}")),
        instance_type: labels.get(LABEL_INSTANCE_TYPE).cloned().unwrap_or_default(),
        zone: labels.get(LABEL_ZONE).cloned().unwrap_or_default(),
        capacity_type: labels.get(LABEL_CAPACITY_TYPE).cloned().unwrap_or_default(),
        image_id: Some("kwok".into()),
        capacity: list(st.and_then(|s| s.capacity.as_ref())),
        allocatable: list(st.and_then(|s| s.allocatable.as_ref())),
        labels,
        state: if n.metadata.deletion_timestamp.is_some() {
            "shutting-down".into()
        } else if node_ready(n) {
            "running".into()
        } else {
            "pending".into()
        },
        claim_name: n
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_NODECLAIM).cloned()),
    }
}

pub use crate::time::{parse_rfc3339, rfc3339, rfc3339_micro};

fn node_name(provider_id: &str) -> Result<&str, ProviderError> {
    provider_id
        .strip_prefix(PROVIDER_ID_PREFIX)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ProviderError::NotFound(format!("{provider_id} is not a kwok provider ID")))
}

impl CloudProvider for Kwok {
    fn name(&self) -> &'static str {
        "kwok"
    }

    fn create(&self, req: &LaunchRequest) -> BoxFuture<'_, Result<Instance, ProviderError>> {
        let req = req.clone();
        Box::pin(async move { self.launch(&req).await })
    }

    fn delete(&self, provider_id: &str) -> BoxFuture<'_, Result<(), ProviderError>> {
        let pid = provider_id.to_string();
        Box::pin(async move {
            let name = node_name(&pid)?;
            let api: Api<Node> = Api::all(self.client.clone());
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => Ok(()),
                Err(e) if kube_status(&e) == Some(404) => Err(ProviderError::NotFound(pid.clone())),
                Err(e) => Err(ProviderError::Api(format!("delete node {name}: {e}"))),
            }
        })
    }

    fn get(&self, provider_id: &str) -> BoxFuture<'_, Result<Instance, ProviderError>> {
        let pid = provider_id.to_string();
        Box::pin(async move {
            let name = node_name(&pid)?;
            let api: Api<Node> = Api::all(self.client.clone());
            match api.get(name).await {
                Ok(n) if is_kwok_node(&n) => Ok(instance_of(&n)),
                Ok(_) => Err(ProviderError::NotFound(pid.clone())),
                Err(e) if kube_status(&e) == Some(404) => Err(ProviderError::NotFound(pid.clone())),
                Err(e) => Err(ProviderError::Api(format!("get node {name}: {e}"))),
            }
        })
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Instance>, ProviderError>> {
        Box::pin(async move {
            let api: Api<Node> = Api::all(self.client.clone());
            let l = api
                .list(&ListParams::default())
                .await
                .map_err(|e| ProviderError::Api(format!("list nodes: {e}")))?;
            Ok(l.items
                .iter()
                .filter(|n| is_kwok_node(n))
                .map(instance_of)
                .collect())
        })
    }

    fn catalog(&self) -> Arc<Catalog> {
        let learned = self
            .learned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if learned.is_empty() {
            return self.catalog.clone();
        }
        let mut c = (*self.catalog).clone();
        for t in &mut c.types {
            for o in &mut t.offerings {
                if learned.contains(&(
                    t.name.clone(),
                    o.zone.to_string(),
                    o.capacity_type.to_string(),
                )) {
                    o.available = false;
                }
            }
        }
        Arc::new(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{self, mock_client};
    use clock::ManualClock;
    use kube::runtime::{reflector, watcher};

    /// 2026-01-01T00:00:00Z.
    const T0: u64 = 1_767_225_600_000;

    fn request(types: &[&str]) -> LaunchRequest {
        let claim: model::karpenter::NodeClaim = serde_json::from_value(json!({
            "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
            "metadata": {"name": "general-abc"},
            "spec": {
                "requirements": [
                    {"key": LABEL_INSTANCE_TYPE, "operator": "In", "values": types},
                    {"key": LABEL_CAPACITY_TYPE, "operator": "In", "values": ["on-demand"]},
                    {"key": LABEL_ZONE, "operator": "In", "values": ["us-east-1b"]},
                ],
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
            },
        }))
        .unwrap();
        LaunchRequest {
            claim_name: "general-abc".into(),
            nodepool: "general".into(),
            node_class: Some("default".into()),
            claim,
            instance_types: types.iter().map(|t| t.to_string()).collect(),
            labels: [("team".to_string(), "a".to_string())].into(),
            taints: vec![model::kube::Taint::new(
                "dedicated",
                "a",
                model::kube::TaintEffect::NoSchedule,
            )],
            startup_taints: vec![model::kube::Taint::new(
                "agent",
                "",
                model::kube::TaintEffect::NoExecute,
            )],
        }
    }

    fn kwok(client: kube::Client, unavailable: &[UnavailableOffering]) -> Kwok {
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(Timestamp::from_millis(T0)));
        Kwok::new(client, clock, Arc::new(Catalog::aws()))
            .with_boot_delay(Duration::from_secs(20))
            .with_unavailable(unavailable.iter().cloned())
    }

    #[tokio::test]
    async fn create_posts_a_node_shaped_by_the_catalog() {
        let (client, mut server) = mock_client();
        let k = kwok(client, &[]);
        let req = request(&["m5.xlarge", "m5.2xlarge"]);
        let scenario = async {
            let body = server
                .expect("POST", "/api/v1/nodes?", 201, json!({"apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": "general-abc", "labels": {LABEL_INSTANCE_TYPE: "m5.xlarge", LABEL_ZONE: "us-east-1b", LABEL_CAPACITY_TYPE: "on-demand"},
                                 "annotations": {ANNOTATION_NODECLAIM: "general-abc"}},
                    "spec": {"providerID": "kwok://general-abc"}}))
                .await;
            let l = &body["metadata"]["labels"];
            assert_eq!(l[LABEL_INSTANCE_TYPE], "m5.xlarge");
            assert_eq!(l[LABEL_ZONE], "us-east-1b", "the claim's zone requirement");
            assert_eq!(l[LABEL_CAPACITY_TYPE], "on-demand");
            assert_eq!(l[LABEL_ARCH], "amd64");
            assert_eq!(l[LABEL_OS], "linux");
            assert_eq!(l[LABEL_HOSTNAME], "general-abc");
            assert_eq!(l[LABEL_NODEPOOL], "general");
            assert_eq!(l["team"], "a");
            assert_eq!(
                body["metadata"]["annotations"][ANNOTATION_READY_AT],
                "2026-01-01T00:00:20Z"
            );
            assert_eq!(body["spec"]["providerID"], "kwok://general-abc");
            let taints: Vec<String> = body["spec"]["taints"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    format!(
                        "{}:{}",
                        t["key"].as_str().unwrap(),
                        t["effect"].as_str().unwrap()
                    )
                })
                .collect();
            assert_eq!(
                taints,
                vec![
                    "dedicated:NoSchedule",
                    "agent:NoExecute",
                    "node.kubernetes.io/not-ready:NoSchedule"
                ]
            );
            let it = Catalog::aws().get("m5.xlarge").unwrap().clone();
            assert_eq!(
                body["status"]["allocatable"]["cpu"],
                it.allocatable.to_list()["cpu"].to_string()
            );
            assert_eq!(body["status"]["capacity"]["cpu"], "4");
        };
        let (r, _) = fixtures::timeout(Duration::from_secs(5), async {
            tokio::join!(k.create(&req), scenario)
        })
        .await;
        let i = r.unwrap();
        assert_eq!(i.provider_id, "kwok://general-abc");
        assert_eq!(i.instance_type, "m5.xlarge");
        assert_eq!(i.claim_name.as_deref(), Some("general-abc"));
    }

    #[tokio::test]
    async fn insufficient_capacity_everywhere_is_a_typed_error_without_api_calls() {
        let (client, mut server) = mock_client();
        let k = kwok(
            client,
            &[
                UnavailableOffering::instance_type("m5.xlarge"),
                UnavailableOffering {
                    instance_type: "m5.2xlarge".into(),
                    zone: "us-east-1b".into(),
                    capacity_type: String::new(),
                },
            ],
        );
        let (r, _) = tokio::join!(
            k.create(&request(&["m5.xlarge", "m5.2xlarge"])),
            server.expect_no_more(Duration::from_millis(100))
        );
        match r {
            Err(ProviderError::InsufficientCapacity(m)) => {
                assert!(m.contains("m5.2xlarge/us-east-1b/on-demand"), "{m}")
            }
            other => panic!("expected insufficient capacity, got {other:?}"),
        }
        let cat = k.catalog();
        let off = |t: &str, z: &str| {
            cat.get(t)
                .unwrap()
                .offerings
                .iter()
                .find(|o| &*o.zone == z && &*o.capacity_type == "on-demand")
                .unwrap()
                .available
        };
        assert!(!off("m5.2xlarge", "us-east-1b"), "learned");
        assert!(off("m5.2xlarge", "us-east-1a"), "other zones still offered");
    }

    #[tokio::test]
    async fn delete_and_get_map_404_to_not_found() {
        let (client, mut server) = mock_client();
        let k = kwok(client, &[]);
        let scenario = async {
            server
                .expect(
                    "DELETE",
                    "/api/v1/nodes/n1?",
                    404,
                    fixtures::not_found("nodes", "n1"),
                )
                .await;
            server
                .expect(
                    "GET",
                    "/api/v1/nodes/n1",
                    404,
                    fixtures::not_found("nodes", "n1"),
                )
                .await;
            server
                .expect(
                    "DELETE",
                    "/api/v1/nodes/n1?",
                    500,
                    fixtures::status(500, "InternalError", "etcd"),
                )
                .await;
        };
        let (r, _) = fixtures::timeout(Duration::from_secs(5), async {
            tokio::join!(
                async {
                    (
                        k.delete("kwok://n1").await,
                        k.get("kwok://n1").await,
                        k.delete("kwok://n1").await,
                    )
                },
                scenario
            )
        })
        .await;
        assert!(matches!(r.0, Err(ProviderError::NotFound(_))));
        assert!(matches!(r.1, Err(ProviderError::NotFound(_))));
        assert!(matches!(r.2, Err(ProviderError::Api(_))));
        assert!(
            matches!(
                k.get("aws:///us-east-1a/i-1").await,
                Err(ProviderError::NotFound(_))
            ),
            "not ours"
        );
    }

    #[test]
    fn the_kubelet_decides_per_pod() {
        let now = Timestamp::from_millis(T0);
        let p: Pod = serde_json::from_value(
            json!({"metadata": {"name": "a"}, "spec": {"nodeName": "n", "containers": []}}),
        )
        .unwrap();
        assert_eq!(pod_todo(&p, now), PodTodo::MarkRunning);
        let running: Pod = serde_json::from_value(
            json!({"metadata": {"name": "a"}, "spec": {"nodeName": "n", "containers": []},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}),
        )
        .unwrap();
        assert_eq!(pod_todo(&running, now), PodTodo::Nothing);
        let deleting: Pod = serde_json::from_value(
            json!({"metadata": {"name": "a", "deletionTimestamp": "2026-01-01T00:00:30Z"},
            "spec": {"nodeName": "n", "containers": []}}),
        )
        .unwrap();
        assert_eq!(
            pod_todo(&deleting, now),
            PodTodo::WaitUntil(Timestamp::from_millis(T0 + 30_000))
        );
        assert_eq!(
            pod_todo(&deleting, Timestamp::from_millis(T0 + 30_000)),
            PodTodo::ForceDelete
        );
    }

    #[tokio::test]
    async fn the_kubelet_boots_nodes_runs_pods_and_force_deletes_terminated_ones() {
        let (client, mut server) = mock_client();
        let clock = ManualClock::new(Timestamp::from_millis(T0));
        let (nodes, mut nw) = reflector::store::<Node>();
        let (pods, mut pw) = reflector::store::<Pod>();
        nw.apply_watcher_event(&watcher::Event::Apply(serde_json::from_value(json!({
            "metadata": {"name": "k1", "uid": "n-uid", "resourceVersion": "3", "annotations": {ANNOTATION_READY_AT: "2026-01-01T00:00:10Z"}},
            "spec": {"providerID": "kwok://k1", "taints": [{"key": TAINT_NOT_READY, "effect": "NoSchedule"}, {"key": "dedicated", "effect": "NoSchedule"}]},
        })).unwrap()));
        nw.apply_watcher_event(&watcher::Event::Apply(
            serde_json::from_value(json!({
                "metadata": {"name": "real"}, "spec": {"providerID": "aws:///us-east-1a/i-1"},
            }))
            .unwrap(),
        ));
        pw.apply_watcher_event(&watcher::Event::Apply(
            serde_json::from_value(json!({
                "metadata": {"name": "web-1", "namespace": "ns", "uid": "p1"},
                "spec": {"nodeName": "k1", "containers": [{"name": "c", "image": "busybox"}]},
            }))
            .unwrap(),
        ));
        pw.apply_watcher_event(&watcher::Event::Apply(serde_json::from_value(json!({
            "metadata": {"name": "web-2", "namespace": "ns", "uid": "p2", "deletionTimestamp": "2026-01-01T00:00:05Z"},
            "spec": {"nodeName": "k1", "containers": [{"name": "c"}]},
        })).unwrap()));
        pw.apply_watcher_event(&watcher::Event::Apply(
            serde_json::from_value(json!({
                "metadata": {"name": "other", "namespace": "ns", "uid": "p3"},
                "spec": {"nodeName": "real", "containers": [{"name": "c"}]},
            }))
            .unwrap(),
        ));
        let mut k = Kubelet {
            client,
            clock: Arc::new(clock.clone()),
            nodes,
            pods,
            leases: HashMap::new(),
            running: HashSet::new(),
        };
        let lease = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/k1?&force=true&fieldManager=kedge-kwok-kubelet";
        // Before the boot delay: a heartbeat, the pod is reported Running (kube-scheduler
        // only binds to Ready nodes, so this is a pod bound some other way), web-2 waits.
        let scenario = async {
            let body = server.expect("PATCH", lease, 200, json!({})).await;
            assert_eq!(body["spec"]["holderIdentity"], "k1");
            assert_eq!(body["spec"]["renewTime"], "2026-01-01T00:00:00.000000Z");
            let body = server
                .expect(
                    "PATCH",
                    "/api/v1/namespaces/ns/pods/web-1/status?",
                    200,
                    json!({}),
                )
                .await;
            assert_eq!(body["status"]["phase"], "Running");
            let types: Vec<&str> = body["status"]["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["type"].as_str().unwrap())
                .collect();
            assert_eq!(
                types,
                vec!["Initialized", "Ready", "ContainersReady", "PodScheduled"]
            );
            assert!(body["status"]["podIP"].as_str().unwrap().starts_with("10."));
            assert_eq!(body["status"]["containerStatuses"][0]["ready"], true);
            server.expect_no_more(Duration::from_millis(100)).await;
        };
        let (next, _) = fixtures::timeout(Duration::from_secs(5), async {
            tokio::join!(k.pass(), scenario)
        })
        .await;
        assert_eq!(
            next,
            Some(Timestamp::from_millis(T0 + 5_000)),
            "web-2's grace period ends first"
        );
        // After the boot delay: Ready condition (status subresource), taint removed with the
        // resourceVersion as lock; web-2 force-deleted; the lease renewed (10 s passed); no repeat
        // of web-1.
        clock.advance(Duration::from_secs(10));
        let scenario = async {
            server.expect("PATCH", lease, 200, json!({})).await;
            let body = server
                .expect(
                    "PATCH",
                    "/api/v1/nodes/k1/status?",
                    200,
                    json!({"metadata": {"name": "k1", "resourceVersion": "4"}}),
                )
                .await;
            assert_eq!(body["status"]["conditions"][0]["type"], "Ready");
            assert_eq!(body["status"]["conditions"][0]["status"], "True");
            // The taint goes with the resourceVersion the status write produced (the one the
            // node was read at is stale by then: guarding with it would always conflict).
            let body = server
                .expect("PATCH", "/api/v1/nodes/k1?", 200, json!({}))
                .await;
            assert_eq!(
                body,
                json!({"metadata": {"resourceVersion": "4"}, "spec": {"taints": [{"key": "dedicated", "effect": "NoSchedule"}]}})
            );
            let body = server
                .expect(
                    "DELETE",
                    "/api/v1/namespaces/ns/pods/web-2?",
                    200,
                    json!({}),
                )
                .await;
            assert_eq!(body["gracePeriodSeconds"], 0);
            server.expect_no_more(Duration::from_millis(100)).await;
        };
        let (next, _) = fixtures::timeout(Duration::from_secs(5), async {
            tokio::join!(k.pass(), scenario)
        })
        .await;
        assert_eq!(
            next,
            Some(Timestamp::from_millis(T0 + 20_000)),
            "the next heartbeat"
        );
    }
}
