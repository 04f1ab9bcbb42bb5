//! Disruption in the cluster: Karpenter's disruption controller on the provision core.
//!
//! Every pass ([`Disruptor::pass`], every 10 s and when pods, nodes or NodeClaims change)
//! reads the cluster ([`Snapshot`]), turns it into a [`DisruptionInput`] ([`build_input`]:
//! NodePools, nodes with their claims and pods, DaemonSet requests as overhead, prices from
//! the catalog by the node's instance-type/zone/capacity-type labels, creation times,
//! nodepool hashes, PDBs, the last pod event per node for `consolidateAfter`) and asks
//! [`provision::disruption::disrupt`] what to do. Budgets, `do-not-disrupt`, expiry, drift,
//! emptiness and consolidation are the core's; this module only carries commands out.
//!
//! A command goes through [`Phase`]s, as in Karpenter:
//! 1. **Validating**: the command waits [`DisruptionConfig::validation_delay`] (15 s) and is
//!    re-checked with [`provision::disruption::validate`] against the cluster as it is then;
//!    one that no longer holds is dropped.
//! 2. **Replacing** (replace only): the replacement NodeClaim is created first and the
//!    candidates are not touched until it is `Initialized`.
//! 3. **Draining**: each candidate is tainted `karpenter.sh/disrupted:NoSchedule` (so nothing
//!    new lands), its pods are evicted through the Eviction API (DaemonSet and mirror pods
//!    stay; a PodDisruptionBudget's 429 is respected and retried with backoff, never forced;
//!    a `karpenter.sh/do-not-disrupt` pod blocks the node), and once only DaemonSet pods
//!    remain its NodeClaim is deleted. The claim's termination finalizer (the lifecycle
//!    controller) terminates the instance and removes the Node. A node without a NodeClaim
//!    is not kedge's and is never a candidate.
//!
//! Each step is reported as a Kubernetes Event on the node and its claim (`Disrupting`,
//! `DisruptionBlocked`, `DisruptionValidationFailed`) with the core's one-line explanation,
//! and the latest explanations are kept for logs and metrics ([`Disruptor::explanations`]).
//!
//! The client must not retry 429s by itself (kube's `Config::default_retry`, on by default):
//! a PodDisruptionBudget's refusal has to come back at once so the drain can back off on its
//! own schedule; see [`crate::compat::client_without_retry`].
//!
//! [`drain_node`] (cordon + evict what can be evicted) is shared with the NodeClaim
//! termination finalizer; [`cordon_and_drain`] serves the AWS interruption queue.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::cached_node::CachedNode as Node;
use crate::cached_pod::CachedPod as Pod;
use clock::Timestamp;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use model::karpenter::{
    ANNOTATION_NODEPOOL_HASH, CONDITION_INITIALIZED, LABEL_CAPACITY_TYPE, LABEL_INSTANCE_TYPE,
    LABEL_NODEPOOL, LABEL_ZONE,
};
use provision::catalog::Catalog;
use provision::disruption::{Command, DisruptionInput, DisruptionOptions, Method};
use provision::resources::Res;
use provision::scheduler::ExistingNode;
use serde_json::{Value, json};

use crate::compat::{self, ApiCompat, EvictOutcome};
use crate::context::Context;
use crate::crd::{self, Kind};
use crate::error::kube_status;
use crate::informers::Informers;
use crate::provider::CloudProvider;
use crate::{Error, Result};

/// The taint Karpenter puts on nodes it is disrupting.
pub const DISRUPTED_TAINT_KEY: &str = "karpenter.sh/disrupted";
/// Static (mirror) pods: the kubelet owns them; the Eviction API cannot move them.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// Namespace of Events about cluster-scoped objects (where the kubelet puts node events).
const EVENT_NAMESPACE: &str = "default";
const COMPONENT: &str = "kedge-disruption";

/// Timings of the disruption controller (Karpenter's defaults).
#[derive(Debug, Clone)]
pub struct DisruptionConfig {
    /// Pass interval when nothing changes (Karpenter polls every 10 s).
    pub poll: Duration,
    /// Delay before a command is re-validated and executed (Karpenter: 15 s).
    pub validation_delay: Duration,
    /// How long a replacement may take to become Initialized before the command is given up
    /// (Karpenter's orchestration queue: 10 minutes).
    pub replacement_timeout: Duration,
    /// A drain still blocked after this long is given up: the remaining candidates are
    /// uncordoned and the controller moves on (Karpenter's orchestration queue gives a command
    /// 10 minutes).
    pub drain_timeout: Duration,
    /// Backoff of a pod whose eviction was refused (429): doubles from `min` to `max`
    /// (Karpenter's eviction queue: 100 ms to 10 s).
    pub eviction_backoff_min: Duration,
    pub eviction_backoff_max: Duration,
    /// The same Event (object, reason, message) is not repeated within this window.
    pub event_dedup: Duration,
    pub options: DisruptionOptions,
    /// Where [`run_disruption_with`] publishes every pass's report (metrics, status pages).
    pub reports: Option<tokio::sync::watch::Sender<PassReport>>,
}

impl Default for DisruptionConfig {
    fn default() -> Self {
        DisruptionConfig {
            poll: Duration::from_secs(10),
            validation_delay: Duration::from_secs(15),
            replacement_timeout: Duration::from_secs(600),
            drain_timeout: Duration::from_secs(600),
            eviction_backoff_min: Duration::from_millis(100),
            eviction_backoff_max: Duration::from_secs(10),
            event_dedup: Duration::from_secs(300),
            options: DisruptionOptions::default(),
            reports: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Observation
// ---------------------------------------------------------------------------------------------

/// The cluster as one pass sees it.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub nodes: Vec<Arc<Node>>,
    pub claims: Vec<Arc<crd::NodeClaim>>,
    /// Pods bound to a node and not terminal.
    pub pods: Vec<Arc<Pod>>,
    pub nodepools: Vec<Arc<crd::NodePool>>,
    pub daemonsets: Vec<Arc<DaemonSet>>,
    pub pdbs: Vec<model::kube::PodDisruptionBudget>,
}

fn arcs<K>(v: Vec<K>) -> Vec<Arc<K>> {
    v.into_iter().map(Arc::new).collect()
}

impl Snapshot {
    /// What a pass needs from the shared informers' stores (no API call), plus the PDBs
    /// (one list call).
    pub async fn from_informers(
        inf: &Informers,
        client: &kube::Client,
        compat: &ApiCompat,
    ) -> Result<Snapshot> {
        let pdbs = compat::list_pdbs(client, compat).await?;
        Ok(Snapshot {
            nodes: inf.nodes.state(),
            claims: inf.claims.state(),
            pods: inf
                .pods
                .store()
                .state_filter(|p| node_of(p).is_some_and(|n| !n.is_empty()) && !is_terminal(p)),
            nodepools: inf.nodepools.state(),
            daemonsets: inf.daemonsets.state(),
            pdbs,
        })
    }

    /// List everything a pass needs from the API server (six list calls); for tools and
    /// tests, the controller reads [`Snapshot::from_informers`].
    pub async fn list(client: &kube::Client, compat: &ApiCompat) -> Result<Snapshot> {
        let lp = ListParams::default();
        let nodes = Api::<Node>::all(client.clone())
            .list(&lp)
            .await
            .map_err(Error::kube("listing nodes"))?
            .items;
        let claims = Api::<crd::NodeClaim>::all(client.clone())
            .list(&lp)
            .await
            .map_err(Error::kube("listing nodeclaims"))?
            .items;
        let pods = Api::<Pod>::all(client.clone())
            .list(
                &ListParams::default()
                    .fields("spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed"),
            )
            .await
            .map_err(Error::kube("listing pods bound to nodes"))?
            .items;
        let nodepools = Api::<crd::NodePool>::all(client.clone())
            .list(&lp)
            .await
            .map_err(Error::kube("listing nodepools"))?
            .items;
        let daemonsets = Api::<DaemonSet>::all(client.clone())
            .list(&lp)
            .await
            .map_err(Error::kube("listing daemonsets"))?
            .items;
        let pdbs = compat::list_pdbs(client, compat).await?;
        Ok(Snapshot {
            nodes: arcs(nodes),
            claims: arcs(claims),
            pods: arcs(pods),
            nodepools: arcs(nodepools),
            daemonsets: arcs(daemonsets),
            pdbs,
        })
    }
}

fn millis(t: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> Option<u64> {
    t.as_ref()
        .map(|t| t.0.as_millisecond())
        .and_then(|ms| u64::try_from(ms).ok())
}

fn is_daemonset_pod(p: &Pod) -> bool {
    p.metadata
        .owner_references
        .as_ref()
        .is_some_and(|o| o.iter().any(|o| o.kind == "DaemonSet"))
}

fn is_mirror_pod(p: &Pod) -> bool {
    p.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION))
}

fn is_terminal(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn is_terminating(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some()
}

/// Pods that would have to move if the node went away.
fn is_reschedulable(p: &Pod) -> bool {
    !is_daemonset_pod(p) && !is_mirror_pod(p) && !is_terminal(p) && !is_terminating(p)
}

fn pod_key(p: &Pod) -> String {
    format!(
        "{}/{}",
        p.metadata.namespace.as_deref().unwrap_or("default"),
        p.metadata.name.as_deref().unwrap_or("")
    )
}

fn node_of(p: &Pod) -> Option<&str> {
    p.spec.as_ref().and_then(|s| s.node_name.as_deref())
}

/// When the pod was bound: its `PodScheduled` condition, else its creation.
fn bound_ms(p: &Pod) -> Option<u64> {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"))
        .and_then(|c| millis(&c.last_transition_time))
        .or_else(|| millis(&p.metadata.creation_timestamp))
}

/// Last pod event per node (pod bound, removed or terminating), for `consolidateAfter`.
///
/// Karpenter keeps this in the NodeClaim's status; here it is rebuilt at start from the pods'
/// bind times (removals before a restart are unknown) and then tracked by diffing passes.
#[derive(Debug, Clone, Default)]
pub struct PodTracker {
    /// Reschedulable pod (`ns/name`) → node, as last seen.
    seen: BTreeMap<String, String>,
    last_event: BTreeMap<String, u64>,
    started: bool,
}

impl PodTracker {
    pub fn observe(&mut self, pods: &[Arc<Pod>], now: Timestamp) {
        let now = now.as_millis();
        let mut current = BTreeMap::new();
        for p in pods {
            if let Some(node) = node_of(p)
                && is_reschedulable(p)
            {
                current.insert(pod_key(p), node.to_string());
                if !self.started {
                    let t = bound_ms(p).unwrap_or(now).min(now);
                    let e = self.last_event.entry(node.to_string()).or_insert(t);
                    *e = (*e).max(t);
                }
            }
        }
        if self.started {
            for (k, node) in &current {
                if self.seen.get(k) != Some(node) {
                    self.last_event.insert(node.clone(), now);
                }
            }
            for (k, node) in &self.seen {
                if current.get(k) != Some(node) {
                    self.last_event.insert(node.clone(), now);
                }
            }
        }
        self.started = true;
        self.seen = current;
    }

    /// Record a pod event seen elsewhere (a watch) at `now`.
    pub fn pod_event(&mut self, node: &str, now: Timestamp) {
        self.last_event.insert(node.to_string(), now.as_millis());
    }

    pub fn last_event(&self, node: &str) -> Option<u64> {
        self.last_event.get(node).copied()
    }
}

/// The cluster as the provision core reads it, plus which claim backs which node.
#[derive(Debug, Clone, Default)]
pub struct Built {
    pub input: DisruptionInput,
    /// Node name → NodeClaim name.
    pub claim_of_node: BTreeMap<String, String>,
    /// Objects that could not be read (skipped), one line each.
    pub problems: Vec<String>,
}

fn claim_is_deleting(c: &crd::NodeClaim) -> bool {
    c.metadata.deletion_timestamp.is_some()
}

fn claim_initialized(c: &crd::NodeClaim) -> bool {
    c.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == CONDITION_INITIALIZED && c.status == "True")
    })
}

fn has_disrupted_taint(n: &Node) -> bool {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|t| t.iter().any(|t| t.key == DISRUPTED_TAINT_KEY))
}

/// The claim backing `node`: same provider ID (as Karpenter matches them), else the node
/// name in the claim's status.
fn claim_for<'a>(node: &Node, claims: &'a [Arc<crd::NodeClaim>]) -> Option<&'a crd::NodeClaim> {
    let name = node.metadata.name.as_deref()?;
    let pid = node.spec.as_ref().and_then(|s| s.provider_id.as_deref());
    claims
        .iter()
        .find(|c| pid.is_some() && c.status.as_ref().and_then(|s| s.provider_id.as_deref()) == pid)
        .or_else(|| {
            claims
                .iter()
                .find(|c| c.status.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name))
        })
        .map(|c| &**c)
}

/// USD/hour of a node from its instance-type, zone and capacity-type labels (0 if unknown).
pub fn node_price(catalog: &Catalog, labels: &model::kube::Labels) -> f64 {
    let Some(it) = labels.get(LABEL_INSTANCE_TYPE).and_then(|t| catalog.get(t)) else {
        return 0.0;
    };
    let zone = labels.get(LABEL_ZONE);
    let ct = labels.get(LABEL_CAPACITY_TYPE);
    it.offerings
        .iter()
        .find(|o| {
            Some(&*o.zone) == zone.map(String::as_str)
                && Some(&*o.capacity_type) == ct.map(String::as_str)
        })
        .or_else(|| {
            it.offerings
                .iter()
                .find(|o| Some(&*o.capacity_type) == ct.map(String::as_str))
        })
        .map_or(0.0, |o| o.price)
}

/// Single-valued `In` requirements of a claim's raw spec, as labels.
fn claim_requirement_labels(spec: &Value) -> model::kube::Labels {
    let mut out = model::kube::Labels::new();
    for r in spec
        .get("requirements")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(k), Some("In"), Some(vals)) = (
            r.get("key").and_then(Value::as_str),
            r.get("operator").and_then(Value::as_str),
            r.get("values").and_then(Value::as_array),
        ) else {
            continue;
        };
        if let [v] = vals.as_slice()
            && let Some(v) = v.as_str()
        {
            out.insert(k.to_string(), v.to_string());
        }
    }
    out
}

/// Turn a snapshot into the core's input. Pure.
pub fn build_input(snap: &Snapshot, catalog: &Catalog, tracker: &PodTracker) -> Built {
    let mut b = Built::default();
    for np in &snap.nodepools {
        match crate::nodes::convert::nodepool(np) {
            Ok(p) => b.input.nodepools.push(p),
            Err(e) => b.problems.push(format!(
                "NodePool {} skipped: {e}",
                np.metadata.name.as_deref().unwrap_or("")
            )),
        }
    }
    for ds in &snap.daemonsets {
        match crate::nodes::convert::daemonset(ds) {
            Ok(d) => b.input.daemonsets.push(d),
            Err(e) => b.problems.push(e),
        }
    }
    b.input.pdbs = snap.pdbs.clone();
    let mut pods_by_node: BTreeMap<&str, Vec<&Pod>> = BTreeMap::new();
    for p in &snap.pods {
        if let Some(n) = node_of(p)
            && !is_terminal(p)
        {
            pods_by_node.entry(n).or_default().push(p);
        }
    }
    let mut claimed: BTreeSet<String> = BTreeSet::new();
    for node in &snap.nodes {
        let Some(name) = node.metadata.name.as_deref() else {
            continue;
        };
        let model_node = match crate::nodes::convert::node(node) {
            Ok(n) => n,
            Err(e) => {
                b.problems.push(e);
                continue;
            }
        };
        let bound = pods_by_node.get(name);
        let mut pods = Vec::with_capacity(bound.map_or(0, |b| b.len()));
        let mut overhead = Res::ZERO;
        for p in bound.into_iter().flatten() {
            if is_terminating(p) {
                continue;
            }
            let mp = match crate::nodes::convert::pod(p) {
                Ok(mp) => mp,
                Err(e) => {
                    b.problems.push(e);
                    continue;
                }
            };
            if is_daemonset_pod(p) || is_mirror_pod(p) {
                overhead = overhead.plus(&Res::from_list(&mp.requests()).0);
            } else {
                pods.push(mp);
            }
        }
        let mut en = ExistingNode::from_node(&model_node, pods);
        en.daemon_overhead = overhead;
        en.price = node_price(catalog, &en.labels);
        en.created_ms = millis(&node.metadata.creation_timestamp).unwrap_or(0);
        let claim = claim_for(node, &snap.claims);
        match claim {
            Some(c) => {
                let cname = c.metadata.name.clone().unwrap_or_default();
                claimed.insert(cname.clone());
                b.claim_of_node.insert(name.to_string(), cname);
                if let Some(t) = millis(&c.metadata.creation_timestamp) {
                    en.created_ms = t;
                }
                if en.nodepool_hash.is_none() {
                    en.nodepool_hash = c
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(ANNOTATION_NODEPOOL_HASH))
                        .cloned();
                }
                en.unschedulable |= claim_is_deleting(c);
                en.in_flight = !claim_initialized(c) && !claim_is_deleting(c);
            }
            // Not kedge's: capacity for the simulation, never a candidate.
            None => {
                en.labels.remove(LABEL_NODEPOOL);
            }
        }
        en.unschedulable |= has_disrupted_taint(node);
        en.last_pod_event_ms = tracker.last_event(name).unwrap_or(0).max(en.created_ms);
        b.input.nodes.push(en);
    }
    // Launched claims whose node has not registered yet: capacity on its way.
    for c in &snap.claims {
        let cname = c.metadata.name.clone().unwrap_or_default();
        if claimed.contains(&cname) || claim_is_deleting(c) {
            continue;
        }
        let mut labels: model::kube::Labels = c.metadata.labels.clone().unwrap_or_default().into();
        labels.extend(claim_requirement_labels(&c.spec));
        let status_alloc = c
            .status
            .as_ref()
            .map(|s| Res::from_list(&s.allocatable).0)
            .unwrap_or(Res::ZERO);
        let it = labels.get(LABEL_INSTANCE_TYPE).and_then(|t| catalog.get(t));
        let (capacity, allocatable) = if !status_alloc.is_zero() {
            (status_alloc, status_alloc)
        } else if let Some(it) = it {
            (it.capacity, it.allocatable)
        } else {
            // Unknown size: no capacity the simulation could count on.
            (Res::ZERO, Res::ZERO)
        };
        let created = millis(&c.metadata.creation_timestamp).unwrap_or(0);
        b.input.nodes.push(ExistingNode {
            name: cname,
            price: node_price(catalog, &labels),
            labels,
            taints: Vec::new(),
            capacity,
            allocatable,
            pods: Vec::new(),
            daemon_overhead: Res::ZERO,
            unschedulable: false,
            in_flight: true,
            created_ms: created,
            nodepool_hash: c
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_NODEPOOL_HASH))
                .cloned(),
            annotations: c.metadata.annotations.clone().unwrap_or_default().into(),
            last_pod_event_ms: created,
        });
    }
    b
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// The object an Event is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: Option<String>,
}

impl ObjectRef {
    pub fn node(name: &str, uid: Option<String>) -> Self {
        ObjectRef {
            api_version: "v1".into(),
            kind: "Node".into(),
            name: name.into(),
            uid,
        }
    }
    pub fn claim(name: &str, uid: Option<String>) -> Self {
        ObjectRef {
            api_version: format!("{}/{}", crd::NodeClaim::GROUP, crd::NodeClaim::VERSION),
            kind: crd::NodeClaim::KIND.into(),
            name: name.into(),
            uid,
        }
    }
}

/// What an Event says.
#[derive(Debug, Clone, Copy)]
pub struct Note<'a> {
    pub warning: bool,
    /// `Disrupting`, `DisruptionBlocked`, …
    pub reason: &'a str,
    pub message: &'a str,
}

impl<'a> Note<'a> {
    pub fn normal(reason: &'a str, message: &'a str) -> Self {
        Note {
            warning: false,
            reason,
            message,
        }
    }
    pub fn warning(reason: &'a str, message: &'a str) -> Self {
        Note {
            warning: true,
            reason,
            message,
        }
    }
}

/// Kubernetes Events (core/v1, which every server version serves and `kubectl describe`
/// shows), deduplicated: one (object, reason, message) at most once per window. Names come
/// from the injected clock, so tests see deterministic requests.
#[derive(Debug, Default)]
pub struct Events {
    sent: BTreeMap<(ObjectRef, String, String), u64>,
    seq: u64,
}

impl Events {
    /// Publish; a failure is logged, not returned (an Event never blocks a drain).
    pub async fn emit(
        &mut self,
        client: &kube::Client,
        now: Timestamp,
        dedup: Duration,
        regarding: &ObjectRef,
        note: Note<'_>,
    ) {
        let Note {
            warning,
            reason,
            message,
        } = note;
        let key = (regarding.clone(), reason.to_string(), message.to_string());
        if let Some(&t) = self.sent.get(&key)
            && now.as_millis() < t.saturating_add(dedup.as_millis() as u64)
        {
            return;
        }
        self.sent.insert(key, now.as_millis());
        self.sent
            .retain(|_, t| now.as_millis() < t.saturating_add(dedup.as_millis() as u64));
        self.seq += 1;
        let ts = k8s_openapi::jiff::Timestamp::from_millisecond(now.as_millis() as i64)
            .map(|t| t.to_string())
            .unwrap_or_default();
        let mut involved = json!({
            "apiVersion": regarding.api_version,
            "kind": regarding.kind,
            "name": regarding.name,
        });
        if let Some(uid) = &regarding.uid {
            involved["uid"] = json!(uid);
        }
        // Event messages are limited to 1 kB by the API server.
        let message = crate::truncate(message.to_string(), 1000);
        let body = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": format!("{}.{:x}{:04x}", regarding.name, now.as_millis(), self.seq & 0xffff),
                "namespace": EVENT_NAMESPACE,
            },
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": if warning { "Warning" } else { "Normal" },
            "source": {"component": COMPONENT},
            "firstTimestamp": ts,
            "lastTimestamp": ts,
            "count": 1,
            "reportingComponent": COMPONENT,
            "reportingInstance": COMPONENT,
        });
        let ev: k8s_openapi::api::core::v1::Event = match serde_json::from_value(body) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "building event");
                return;
            }
        };
        let api: Api<k8s_openapi::api::core::v1::Event> =
            Api::namespaced(client.clone(), EVENT_NAMESPACE);
        if let Err(e) = crate::create_discarding(client, api.resource_url(), &ev).await {
            tracing::warn!(error = %e, reason, object = %regarding.name, "publishing event");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cordon and drain
// ---------------------------------------------------------------------------------------------

/// Where a drain stands.
#[derive(Debug, Clone, PartialEq)]
pub enum DrainProgress {
    /// Only DaemonSet and mirror pods (or nothing) remain; the node can go.
    Done,
    /// Pods remain: evicted ones still terminating, and `blocked` ones (`ns/name: why`)
    /// whose eviction was refused or is not allowed (do-not-disrupt).
    Waiting {
        remaining: usize,
        blocked: Vec<String>,
    },
}

/// Per-pod eviction backoff after a 429 (exponential, Karpenter's eviction queue).
#[derive(Debug, Clone, Default)]
pub struct EvictionBackoff {
    /// `ns/name` → (next attempt ms, current delay, last refusal message).
    pods: BTreeMap<String, (u64, Duration, String)>,
}

impl EvictionBackoff {
    fn ready(&self, pod: &str, now: Timestamp) -> Result<(), String> {
        match self.pods.get(pod) {
            Some((at, _, why)) if now.as_millis() < *at => Err(why.clone()),
            _ => Ok(()),
        }
    }
    fn refused(&mut self, pod: &str, now: Timestamp, why: String, min: Duration, max: Duration) {
        let delay = match self.pods.get(pod) {
            Some((_, d, _)) => (*d * 2).min(max),
            None => min,
        };
        self.pods
            .insert(pod.to_string(), (now.add(delay).as_millis(), delay, why));
    }
    fn clear(&mut self, pod: &str) {
        self.pods.remove(pod);
    }
    /// Earliest next attempt after `now`, if any pod is backing off.
    pub fn next_attempt(&self, now: Timestamp) -> Option<Duration> {
        self.pods
            .values()
            .map(|(at, _, _)| Timestamp(*at).since(now))
            .min()
    }
}

fn taint_patch() -> Value {
    // Strategic merge: `taints` merge on `key`, so other taints stay and a concurrent writer
    // is not overwritten.
    json!({"spec": {"taints": [{"key": DISRUPTED_TAINT_KEY, "effect": "NoSchedule"}]}})
}

/// Put `karpenter.sh/disrupted:NoSchedule` on the node unless it is there. `false` when the
/// node does not exist.
async fn cordon(client: &kube::Client, node: &str) -> Result<bool> {
    let api: Api<Node> = Api::all(client.clone());
    let n = match api.get(node).await {
        Ok(n) => n,
        Err(e) if kube_status(&e) == Some(404) => return Ok(false),
        Err(e) => return Err(Error::kube(format!("reading node {node}"))(e)),
    };
    if !has_disrupted_taint(&n) {
        match api
            .patch(
                node,
                &PatchParams::default(),
                &Patch::Strategic(taint_patch()),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if kube_status(&e) == Some(404) => return Ok(false),
            Err(e) => return Err(Error::kube(format!("tainting node {node}"))(e)),
        }
    }
    Ok(true)
}

fn is_critical(p: &Pod) -> bool {
    matches!(
        p.spec
            .as_ref()
            .and_then(|s| s.priority_class_name.as_deref()),
        Some("system-cluster-critical" | "system-node-critical")
    )
}

fn pod_do_not_disrupt(p: &Pod) -> bool {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(model::kube::DO_NOT_DISRUPT))
        .is_some_and(|v| v == "true")
}

/// Cordon and evict with per-pod backoff (see [`drain_node`]).
pub async fn drain_with(
    client: &kube::Client,
    compat: &ApiCompat,
    node: &str,
    now: Timestamp,
    backoff: &mut EvictionBackoff,
    config: &DisruptionConfig,
) -> Result<DrainProgress> {
    if !cordon(client, node).await? {
        return Ok(DrainProgress::Done);
    }
    let pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await
        .map_err(Error::kube(format!("listing pods on node {node}")))?
        .items;
    let movable: Vec<&Pod> = pods
        .iter()
        .filter(|p| !is_daemonset_pod(p) && !is_mirror_pod(p) && !is_terminal(p))
        .collect();
    // Karpenter evicts non-critical pods first, critical ones once those are gone.
    let non_critical_left = movable.iter().any(|p| !is_critical(p));
    let mut remaining = 0;
    let mut blocked = Vec::new();
    for p in movable {
        let key = pod_key(p);
        remaining += 1;
        if is_terminating(p) {
            continue;
        }
        if pod_do_not_disrupt(p) {
            blocked.push(format!("{key}: has {}", model::kube::DO_NOT_DISRUPT));
            continue;
        }
        if non_critical_left && is_critical(p) {
            continue;
        }
        if let Err(why) = backoff.ready(&key, now) {
            blocked.push(format!("{key}: {why}"));
            continue;
        }
        let ns = p.metadata.namespace.as_deref().unwrap_or("default");
        let name = p.metadata.name.as_deref().unwrap_or("");
        match compat::evict(client, compat, ns, name, None).await? {
            EvictOutcome::Evicted => backoff.clear(&key),
            EvictOutcome::Gone => {
                backoff.clear(&key);
                remaining -= 1;
            }
            EvictOutcome::Blocked(why) => {
                backoff.refused(
                    &key,
                    now,
                    why.clone(),
                    config.eviction_backoff_min,
                    config.eviction_backoff_max,
                );
                blocked.push(format!("{key}: {why}"));
            }
        }
    }
    Ok(if remaining == 0 {
        DrainProgress::Done
    } else {
        DrainProgress::Waiting { remaining, blocked }
    })
}

/// Cordon `node` with `karpenter.sh/disrupted:NoSchedule` and evict every pod that can be
/// evicted now (not DaemonSet or mirror pods; a PDB's 429 leaves the pod for a later call;
/// `do-not-disrupt` pods are not evicted). `Done` when only DaemonSet pods or nothing remain,
/// or the node no longer exists. Stateless: the caller's requeue is the retry backoff.
pub async fn drain_node(
    ctx: &Context,
    compat: &ApiCompat,
    node: &str,
    now: Timestamp,
) -> Result<DrainProgress> {
    drain_with(
        &ctx.client,
        compat,
        node,
        now,
        &mut EvictionBackoff::default(),
        &DisruptionConfig::default(),
    )
    .await
}

/// The AWS interruption queue's action (spot interruption, scheduled stop, …): cordon the
/// node with `provider_id` and delete its NodeClaim, whose termination finalizer drains it
/// (Karpenter's interruption controller does the same). A node without a claim is only
/// cordoned: it is not kedge's to delete. Returns the node's name, `None` if no node has
/// that provider ID.
pub async fn cordon_and_drain(
    ctx: &Context,
    provider_id: &str,
    reason: &str,
) -> Result<Option<String>> {
    let nodes = Api::<Node>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(Error::kube("listing nodes"))?
        .items;
    let Some(node) = nodes
        .iter()
        .find(|n| n.spec.as_ref().and_then(|s| s.provider_id.as_deref()) == Some(provider_id))
    else {
        return Ok(None);
    };
    let name = node.metadata.name.clone().unwrap_or_default();
    cordon(&ctx.client, &name).await?;
    let claims = Api::<crd::NodeClaim>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(Error::kube("listing nodeclaims"))?
        .items;
    let mut events = Events::default();
    let now = ctx.clock.now();
    let dedup = Duration::ZERO;
    let msg = format!("Interruption: {reason}; cordoned and draining");
    events
        .emit(
            &ctx.client,
            now,
            dedup,
            &ObjectRef::node(&name, node.metadata.uid.clone()),
            Note::warning("Interrupted", &msg),
        )
        .await;
    if let Some(c) = claim_for(node, &arcs(claims)) {
        let cname = c.metadata.name.clone().unwrap_or_default();
        delete_claim(&ctx.client, &cname).await?;
        events
            .emit(
                &ctx.client,
                now,
                dedup,
                &ObjectRef::claim(&cname, c.metadata.uid.clone()),
                Note::warning("Interrupted", &msg),
            )
            .await;
    }
    Ok(Some(name))
}

async fn delete_claim(client: &kube::Client, name: &str) -> Result<()> {
    let api = Api::<crd::NodeClaim>::all(client.clone());
    let req = kube::core::Request::new(api.resource_url()).delete(name, &DeleteParams::default());
    match crate::write_discarding(client, req).await {
        Ok(_) => Ok(()),
        Err(e) if kube_status(&e) == Some(404) => Ok(()),
        Err(e) => Err(Error::kube(format!("deleting nodeclaim {name}"))(e)),
    }
}

// ---------------------------------------------------------------------------------------------
// The controller
// ---------------------------------------------------------------------------------------------

/// Where the current command is (one at a time, as Karpenter's disruption queue).
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// No command: the next pass asks the core.
    Idle,
    /// The core proposed `cmd` at `since`; it is re-validated and executed once the
    /// validation delay has passed.
    Validating { cmd: Command, since: Timestamp },
    /// The replacement NodeClaim `claim` was created at `since`; the candidates are untouched
    /// until it is Initialized.
    Replacing {
        cmd: Command,
        claim: String,
        since: Timestamp,
    },
    /// The candidates are being cordoned and drained; each one's NodeClaim is deleted once
    /// only DaemonSet pods remain.
    Draining { cmd: Command, since: Timestamp },
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PassReport {
    /// The core's explanations (including why candidates were skipped) and this controller's
    /// own lines (validation failed, eviction blocked, claim deleted).
    pub explanations: Vec<String>,
    /// NodeClaims deleted in this pass.
    pub deleted_claims: Vec<String>,
    /// NodeClaims created (replacements) in this pass.
    pub created_claims: Vec<String>,
    /// Run the next pass after at most this long.
    pub next: Duration,
}

/// The disruption controller's state between passes.
pub struct Disruptor {
    client: kube::Client,
    compat: ApiCompat,
    provider: Arc<dyn CloudProvider>,
    config: DisruptionConfig,
    tracker: PodTracker,
    phase: Phase,
    backoff: EvictionBackoff,
    events: Events,
    explanations: Vec<String>,
}

impl Disruptor {
    pub fn new(
        client: kube::Client,
        compat: ApiCompat,
        provider: Arc<dyn CloudProvider>,
        config: DisruptionConfig,
    ) -> Self {
        Disruptor {
            client,
            compat,
            provider,
            config,
            tracker: PodTracker::default(),
            phase: Phase::Idle,
            backoff: EvictionBackoff::default(),
            events: Events::default(),
            explanations: Vec::new(),
        }
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The latest pass's explanations (for logs and metrics).
    pub fn explanations(&self) -> &[String] {
        &self.explanations
    }

    /// Record a pod event from a watch (consolidateAfter restarts for that node).
    pub fn pod_event(&mut self, node: &str, now: Timestamp) {
        self.tracker.pod_event(node, now);
    }

    async fn event(&mut self, now: Timestamp, obj: &ObjectRef, note: Note<'_>) {
        self.events
            .emit(&self.client, now, self.config.event_dedup, obj, note)
            .await;
    }

    fn refs(snap: &Snapshot, built: &Built, node: &str) -> (ObjectRef, Option<ObjectRef>) {
        let uid = snap
            .nodes
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(node))
            .and_then(|n| n.metadata.uid.clone());
        let claim = built.claim_of_node.get(node).map(|c| {
            let uid = snap
                .claims
                .iter()
                .find(|x| x.metadata.name.as_deref() == Some(c))
                .and_then(|x| x.metadata.uid.clone());
            ObjectRef::claim(c, uid)
        });
        (ObjectRef::node(node, uid), claim)
    }

    /// The same Event on the node and on its claim.
    async fn event_both(
        &mut self,
        now: Timestamp,
        refs: &(ObjectRef, Option<ObjectRef>),
        note: Note<'_>,
    ) {
        self.event(now, &refs.0, note).await;
        if let Some(c) = &refs.1 {
            self.event(now, c, note).await;
        }
    }

    /// One pass over `snap` at the injected clock's `now`.
    pub async fn pass(&mut self, snap: &Snapshot, now: Timestamp) -> Result<PassReport> {
        self.tracker.observe(&snap.pods, now);
        let catalog = self.provider.catalog();
        let built = build_input(snap, &catalog, &self.tracker);
        let mut report = PassReport {
            next: self.config.poll,
            ..Default::default()
        };
        for p in &built.problems {
            report.explanations.push(format!("skipped: {p}"));
        }
        let phase = std::mem::replace(&mut self.phase, Phase::Idle);
        self.phase = match phase {
            Phase::Idle => self.idle(snap, &built, now, &catalog, &mut report).await?,
            Phase::Validating { cmd, since } => {
                self.validating(snap, &built, now, &catalog, cmd, since, &mut report)
                    .await?
            }
            Phase::Replacing { cmd, claim, since } => {
                self.replacing(snap, &built, now, cmd, claim, since, &mut report)
                    .await?
            }
            Phase::Draining { cmd, since } => {
                self.draining(snap, &built, now, cmd, since, &mut report)
                    .await?
            }
        };
        for l in &report.explanations {
            tracing::info!(target: "kedge::disruption", "{l}");
        }
        self.explanations = report.explanations.clone();
        Ok(report)
    }

    async fn idle(
        &mut self,
        snap: &Snapshot,
        built: &Built,
        now: Timestamp,
        catalog: &Catalog,
        report: &mut PassReport,
    ) -> Result<Phase> {
        // Our taint on a node whose claim is not being deleted, with no command running, is
        // left over (a restart mid-command): take it off, as Karpenter does at start.
        for n in &snap.nodes {
            let Some(name) = n.metadata.name.as_deref() else {
                continue;
            };
            let claim_deleting = claim_for(n, &snap.claims).is_some_and(claim_is_deleting);
            if has_disrupted_taint(n) && built.claim_of_node.contains_key(name) && !claim_deleting {
                report.explanations.push(if self.uncordon(n).await? {
                    format!("node {name}: removed a stale {DISRUPTED_TAINT_KEY} taint")
                } else {
                    format!("node {name}: changed since the snapshot; its stale {DISRUPTED_TAINT_KEY} taint is looked at next pass")
                });
            }
        }
        let d = provision::disruption::disrupt(catalog, &built.input, now, self.config.options);
        report.explanations.extend(d.explanations.iter().cloned());
        for s in &d.skipped {
            let (n, c) = Self::refs(snap, built, &s.node);
            let msg = format!("Cannot disrupt Node: {}", s.why);
            self.event_both(now, &(n, c), Note::normal("DisruptionBlocked", &msg))
                .await;
        }
        let Some(cmd) = d.commands.into_iter().next() else {
            return Ok(Phase::Idle);
        };
        report.explanations.push(format!(
            "{:?} command for {} validated again in {:?}",
            cmd.kind,
            cmd.candidates.join(", "),
            self.config.validation_delay
        ));
        report.next = self.config.validation_delay;
        Ok(Phase::Validating { cmd, since: now })
    }

    /// Take our taint off `n` (as seen in the snapshot); `false` when the node changed since
    /// (409: the next pass looks again) or is gone.
    async fn uncordon(&self, n: &Node) -> Result<bool> {
        let name = n.metadata.name.as_deref().unwrap_or("");
        let taints: Vec<_> = n
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|t| t.key != DISRUPTED_TAINT_KEY)
            .collect();
        // A merge patch replaces the whole list; carrying the snapshot's resourceVersion makes
        // it fail (409) instead of overwriting a taint list someone changed since.
        let rv = n.metadata.resource_version.clone().unwrap_or_default();
        let patch = json!({"metadata": {"resourceVersion": rv}, "spec": {"taints": taints}});
        match Api::<Node>::all(self.client.clone())
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if matches!(kube_status(&e), Some(404 | 409)) => Ok(false),
            Err(e) => Err(Error::kube(format!(
                "removing the disrupted taint of {name}"
            ))(e)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn validating(
        &mut self,
        snap: &Snapshot,
        built: &Built,
        now: Timestamp,
        catalog: &Catalog,
        cmd: Command,
        since: Timestamp,
        report: &mut PassReport,
    ) -> Result<Phase> {
        let due = since.add(self.config.validation_delay);
        if now < due {
            report.next = due.since(now);
            return Ok(Phase::Validating { cmd, since });
        }
        if let Err(why) =
            provision::disruption::validate(catalog, &built.input, now, self.config.options, &cmd)
        {
            let line = format!(
                "{:?} command for {} dropped at validation: {why}",
                cmd.kind,
                cmd.candidates.join(", ")
            );
            for node in &cmd.candidates {
                self.event_both(
                    now,
                    &Self::refs(snap, built, node),
                    Note::normal("DisruptionValidationFailed", &line),
                )
                .await;
            }
            report.explanations.push(line);
            report.next = Duration::ZERO;
            return Ok(Phase::Idle);
        }
        for node in &cmd.candidates {
            let msg = format!(
                "Disrupting Node: {:?}/{}: {}",
                cmd.kind,
                method_name(&cmd.method),
                cmd.explanation
            );
            self.event_both(
                now,
                &Self::refs(snap, built, node),
                Note::normal("Disrupting", &msg),
            )
            .await;
        }
        if let Method::Replace(planned) = &cmd.method {
            let Some(pool) = built
                .input
                .nodepools
                .iter()
                .find(|p| p.name() == planned.nodepool)
            else {
                report.explanations.push(format!(
                    "replacement NodePool {} is gone; command dropped",
                    planned.nodepool
                ));
                return Ok(Phase::Idle);
            };
            let claim = replacement_claim(planned, pool)?;
            let ar = kube::api::ApiResource::erase::<crd::NodeClaim>(&());
            let created = Api::<kube::api::DynamicObject>::all_with(self.client.clone(), &ar)
                .create(&PostParams::default(), &claim)
                .await
                .map_err(Error::kube(format!(
                    "creating a replacement NodeClaim in NodePool {}",
                    planned.nodepool
                )))?;
            let name = created.metadata.name.unwrap_or_default();
            report.created_claims.push(name.clone());
            report.explanations.push(format!(
                "replacement NodeClaim {name} created for {}; waiting for it to initialize",
                cmd.candidates.join(", ")
            ));
            return Ok(Phase::Replacing {
                cmd,
                claim: name,
                since: now,
            });
        }
        self.draining(snap, built, now, cmd, now, report).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn replacing(
        &mut self,
        snap: &Snapshot,
        built: &Built,
        now: Timestamp,
        cmd: Command,
        claim: String,
        since: Timestamp,
        report: &mut PassReport,
    ) -> Result<Phase> {
        let c = snap
            .claims
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(claim.as_str()));
        match c {
            Some(c) if claim_initialized(c) && !claim_is_deleting(c) => {
                report.explanations.push(format!(
                    "replacement {claim} initialized; draining {}",
                    cmd.candidates.join(", ")
                ));
                self.draining(snap, built, now, cmd, now, report).await
            }
            Some(c)
                if !claim_is_deleting(c) && now.since(since) < self.config.replacement_timeout =>
            {
                Ok(Phase::Replacing { cmd, claim, since })
            }
            _ => {
                let line = format!(
                    "replacement {claim} did not initialize within {:?} (or was deleted); {:?} command for {} given up",
                    self.config.replacement_timeout,
                    cmd.kind,
                    cmd.candidates.join(", ")
                );
                for node in &cmd.candidates {
                    self.event_both(
                        now,
                        &Self::refs(snap, built, node),
                        Note::warning("DisruptionBlocked", &line),
                    )
                    .await;
                }
                report.explanations.push(line);
                Ok(Phase::Idle)
            }
        }
    }

    async fn draining(
        &mut self,
        snap: &Snapshot,
        built: &Built,
        now: Timestamp,
        mut cmd: Command,
        since: Timestamp,
        report: &mut PassReport,
    ) -> Result<Phase> {
        if now.since(since) >= self.config.drain_timeout {
            let line = format!(
                "{:?} command for {} given up: still not drained after {:?}; uncordoned",
                cmd.kind,
                cmd.candidates.join(", "),
                self.config.drain_timeout
            );
            for node in &cmd.candidates {
                if let Some(n) = snap
                    .nodes
                    .iter()
                    .find(|n| n.metadata.name.as_deref() == Some(node.as_str()))
                    && has_disrupted_taint(n)
                {
                    self.uncordon(n).await?;
                }
                self.event_both(
                    now,
                    &Self::refs(snap, built, node),
                    Note::warning("DisruptionBlocked", &line),
                )
                .await;
            }
            report.explanations.push(line);
            return Ok(Phase::Idle);
        }
        let mut left = Vec::new();
        for node in std::mem::take(&mut cmd.candidates) {
            let Some(claim) = built.claim_of_node.get(&node).cloned() else {
                // The node (or its claim) is gone already, or it is not ours: nothing to do.
                report.explanations.push(format!(
                    "node {node}: no NodeClaim (gone or not kedge's); nothing to delete"
                ));
                continue;
            };
            let progress = drain_with(
                &self.client,
                &self.compat,
                &node,
                now,
                &mut self.backoff,
                &self.config,
            )
            .await?;
            match progress {
                DrainProgress::Done => {
                    delete_claim(&self.client, &claim).await?;
                    report.deleted_claims.push(claim.clone());
                    report.explanations.push(format!(
                        "node {node} drained; NodeClaim {claim} deleted ({:?})",
                        cmd.kind
                    ));
                }
                DrainProgress::Waiting { remaining, blocked } => {
                    if !blocked.is_empty() {
                        let msg = format!(
                            "Draining: {} pod(s) left; eviction blocked: {}",
                            remaining,
                            blocked.join("; ")
                        );
                        self.event_both(
                            now,
                            &Self::refs(snap, built, &node),
                            Note::warning("DisruptionBlocked", &msg),
                        )
                        .await;
                        report.explanations.push(format!("node {node}: {msg}"));
                    }
                    left.push(node);
                }
            }
        }
        if left.is_empty() {
            report.next = Duration::ZERO;
            return Ok(Phase::Idle);
        }
        if let Some(d) = self.backoff.next_attempt(now) {
            report.next = report.next.min(d.max(Duration::from_millis(100)));
        }
        cmd.candidates = left;
        Ok(Phase::Draining { cmd, since })
    }
}

fn method_name(m: &Method) -> &'static str {
    match m {
        Method::Delete => "Delete",
        Method::Replace(_) => "Replace",
    }
}

/// The replacement NodeClaim resource for a planned claim (named by the API server from
/// `<nodepool>-`, as Karpenter names its claims).
pub fn replacement_claim(
    planned: &provision::plan::PlannedClaim,
    pool: &model::karpenter::NodePool,
) -> Result<kube::api::DynamicObject> {
    let nc = planned.to_nodeclaim(pool);
    let v = serde_json::to_value(&nc).map_err(|source| Error::Json {
        context: "replacement nodeclaim".into(),
        source,
    })?;
    let mut labels = nc.metadata.labels.clone();
    labels.insert(LABEL_NODEPOOL.into(), pool.name().into());
    // A DynamicObject carries apiVersion/kind, which the API server needs on create.
    let ar = kube::api::ApiResource::erase::<crd::NodeClaim>(&());
    let mut obj = kube::api::DynamicObject::new("", &ar).data(json!({
        "spec": v.get("spec").cloned().unwrap_or(Value::Null),
    }));
    obj.metadata = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        generate_name: Some(format!("{}-", pool.name())),
        labels: Some(labels.into()),
        annotations: Some(nc.metadata.annotations.clone().into()),
        ..Default::default()
    };
    Ok(obj)
}

// ---------------------------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------------------------

/// Run the disruption controller until `shutdown` resolves: discover the API, then a pass
/// every [`DisruptionConfig::poll`] and soon after pods, nodes or NodeClaims change.
pub async fn run_disruption(
    ctx: Context,
    provider: Arc<dyn CloudProvider>,
    informers: Informers,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    run_disruption_with(
        ctx,
        provider,
        informers,
        DisruptionConfig::default(),
        shutdown,
    )
    .await
}

/// [`run_disruption`] with explicit timings.
pub async fn run_disruption_with(
    ctx: Context,
    provider: Arc<dyn CloudProvider>,
    informers: Informers,
    config: DisruptionConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let compat = compat::discover(&ctx.client).await?;
    tracing::info!(
        server = %compat.server_version,
        policy = compat.policy_version.api_version(),
        "disruption controller starting"
    );
    let changed = Arc::new(tokio::sync::Notify::new());
    let watches = spawn_change_watches(&informers, changed.clone());
    let mut d = Disruptor::new(ctx.client.clone(), compat.clone(), provider, config.clone());
    tokio::pin!(shutdown);
    tokio::select! {
        _ = &mut shutdown => {
            for w in watches {
                w.abort();
            }
            return Ok(());
        }
        _ = informers.ready() => {}
    }
    loop {
        // The snapshot is taken once the other pass is done, so it sees its result.
        let one_pass = super::PASS.lock().await;
        let next = match Snapshot::from_informers(&informers, &ctx.client, &compat).await {
            Ok(snap) => match d.pass(&snap, ctx.clock.now()).await {
                Ok(r) => {
                    let next = r.next.min(config.poll);
                    if let Some(tx) = &config.reports {
                        tx.send_replace(r);
                    }
                    next
                }
                Err(e) => {
                    tracing::warn!(error = %e, kind = e.metric_label(), "disruption pass failed");
                    config.poll
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, kind = e.metric_label(), "disruption snapshot failed");
                config.poll
            }
        };
        drop(one_pass);
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(next) => {}
            _ = changed.notified() => {
                // Let a burst of changes settle into one pass.
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(Duration::from_secs(1).min(next)) => {}
                }
            }
        }
    }
    for w in watches {
        w.abort();
    }
    Ok(())
}

/// Pod, Node and NodeClaim changes (from the shared informers) only wake the loop.
fn spawn_change_watches(
    inf: &Informers,
    changed: Arc<tokio::sync::Notify>,
) -> Vec<tokio::task::JoinHandle<()>> {
    fn spawn<S>(stream: S, changed: Arc<tokio::sync::Notify>) -> tokio::task::JoinHandle<()>
    where
        S: futures::Stream + Send + 'static,
    {
        tokio::spawn(async move {
            futures::pin_mut!(stream);
            while stream.next().await.is_some() {
                changed.notify_one();
            }
        })
    }
    vec![
        spawn(inf.pods.changes_map(|_| Some(())), changed.clone()),
        spawn(inf.nodes.changes_map(|_| Some(())), changed.clone()),
        spawn(inf.claims.changes_map(|_| Some(())), changed),
    ]
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use autoscale::scaler::BoxFuture;
    use clock::Timestamp;
    use serde_json::{Value, json};

    use super::*;
    use crate::compat::PolicyVersion;
    use crate::fixtures::{ApiServer, mock_client, not_found, pdb_blocked, timeout};
    use crate::provider::{Instance, LaunchRequest, ProviderError};

    /// A provider that only offers the built-in catalog (the disruption controller never
    /// launches or terminates machines itself).
    struct CatalogOnly(Arc<Catalog>);

    impl CloudProvider for CatalogOnly {
        fn name(&self) -> &'static str {
            "kwok"
        }
        fn create(&self, _: &LaunchRequest) -> BoxFuture<'_, Result<Instance, ProviderError>> {
            Box::pin(async { Err(ProviderError::Invalid("not used".into())) })
        }
        fn delete(&self, _: &str) -> BoxFuture<'_, Result<(), ProviderError>> {
            Box::pin(async { Err(ProviderError::Invalid("not used".into())) })
        }
        fn get(&self, _: &str) -> BoxFuture<'_, Result<Instance, ProviderError>> {
            Box::pin(async { Err(ProviderError::Invalid("not used".into())) })
        }
        fn list(&self) -> BoxFuture<'_, Result<Vec<Instance>, ProviderError>> {
            Box::pin(async { Ok(vec![]) })
        }
        fn catalog(&self) -> Arc<Catalog> {
            self.0.clone()
        }
    }

    fn catalog() -> Arc<Catalog> {
        static C: std::sync::OnceLock<Arc<Catalog>> = std::sync::OnceLock::new();
        C.get_or_init(|| Arc::new(Catalog::aws())).clone()
    }

    fn compat() -> ApiCompat {
        ApiCompat {
            policy_version: PolicyVersion::V1beta1,
            server_version: "v1.20.2".into(),
        }
    }

    /// 2026-11-28T12:00:00Z
    const T0: u64 = 1_795_867_200_000;

    fn rfc3339(ms: u64) -> String {
        k8s_openapi::jiff::Timestamp::from_millisecond(ms as i64)
            .unwrap()
            .to_string()
    }

    fn node_json(name: &str, instance_type: &str, cpu: &str, taints: Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {
                "name": name, "uid": format!("uid-{name}"), "resourceVersion": "7",
                "creationTimestamp": rfc3339(T0 - 600_000),
                "labels": {
                    "karpenter.sh/nodepool": "default",
                    "node.kubernetes.io/instance-type": instance_type,
                    "topology.kubernetes.io/zone": "us-east-1a",
                    "karpenter.sh/capacity-type": "on-demand",
                    "kubernetes.io/arch": "amd64",
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/hostname": name,
                },
            },
            "spec": {"providerID": format!("kwok://{name}"), "taints": taints},
            "status": {
                "capacity": {"cpu": cpu, "memory": "16Gi", "pods": "110"},
                "allocatable": {"cpu": cpu, "memory": "15Gi", "pods": "110"},
            },
        })
    }

    fn node(name: &str, instance_type: &str, cpu: &str) -> Node {
        serde_json::from_value(node_json(name, instance_type, cpu, json!([]))).unwrap()
    }

    fn claim(name: &str, node: &str, initialized: bool) -> crd::NodeClaim {
        let status = if initialized { "True" } else { "Unknown" };
        serde_json::from_value(json!({
            "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
            "metadata": {"name": name, "uid": format!("uid-{name}"),
                         "creationTimestamp": rfc3339(T0 - 600_000),
                         "labels": {"karpenter.sh/nodepool": "default"}},
            "spec": {"requirements": [], "nodeClassRef": {"group": "karpenter.kwok.sh", "kind": "KWOKNodeClass", "name": "default"}},
            "status": {"nodeName": node, "providerID": format!("kwok://{node}"),
                       "conditions": [
                           {"type": "Launched", "status": "True"},
                           {"type": "Registered", "status": "True"},
                           {"type": "Initialized", "status": status}]},
        }))
        .unwrap()
    }

    fn nodepool(policy: &str, types: &[&str]) -> crd::NodePool {
        serde_json::from_value(json!({
            "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
            "metadata": {"name": "default"},
            "spec": {
                "template": {"spec": {
                    "requirements": [
                        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": types},
                        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                    ],
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                }},
                "disruption": {"consolidationPolicy": policy, "consolidateAfter": "30s"},
            },
        }))
        .unwrap()
    }

    fn pod_json(ns: &str, name: &str, node: &str, cpu: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": "web"},
                         "creationTimestamp": rfc3339(T0 - 600_000)},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox",
                     "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]},
            "status": {"phase": "Running"},
        })
    }

    fn pod(ns: &str, name: &str, node: &str, cpu: &str) -> Pod {
        serde_json::from_value(pod_json(ns, name, node, cpu)).unwrap()
    }

    fn ds_pod(name: &str, node: &str) -> Pod {
        let mut v = pod_json("kube-system", name, node, "100m");
        v["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": "ds"}]);
        serde_json::from_value(v).unwrap()
    }

    fn list(kind: &str, items: Vec<Value>) -> Value {
        json!({"apiVersion": "v1", "kind": format!("{kind}List"),
               "metadata": {"resourceVersion": "1"}, "items": items})
    }

    const PODS_ON_N1: &str = "/api/v1/pods?&fieldSelector=spec.nodeName%3Dn1";

    fn cfg() -> DisruptionConfig {
        DisruptionConfig::default()
    }

    #[tokio::test]
    async fn cordon_adds_the_disrupted_taint_once() {
        let (client, mut api) = mock_client();
        let code = tokio::spawn(async move {
            let mut b = EvictionBackoff::default();
            let first = drain_with(&client, &compat(), "n1", Timestamp(T0), &mut b, &cfg()).await;
            let second = drain_with(&client, &compat(), "n1", Timestamp(T0), &mut b, &cfg()).await;
            (first.unwrap(), second.unwrap())
        });
        timeout(Duration::from_secs(5), async {
            let other = json!([{"key": "team", "value": "a", "effect": "NoSchedule"}]);
            api.expect("GET", "/api/v1/nodes/n1", 200, node_json("n1", "m5.large", "2", other.clone()))
                .await;
            let r = api.next(200, node_json("n1", "m5.large", "2", other)).await;
            assert_eq!((r.method.as_str(), r.uri.as_str()), ("PATCH", "/api/v1/nodes/n1?"));
            assert_eq!(
                r.content_type.as_deref(),
                Some("application/strategic-merge-patch+json"),
                "a strategic merge keeps the node's other taints"
            );
            assert_eq!(
                r.body,
                json!({"spec": {"taints": [{"key": "karpenter.sh/disrupted", "effect": "NoSchedule"}]}})
            );
            api.expect("GET", PODS_ON_N1, 200, list("Pod", vec![])).await;
            // Second drain: the taint is there; no second patch.
            let tainted = json!([{"key": "team", "value": "a", "effect": "NoSchedule"},
                                 {"key": "karpenter.sh/disrupted", "effect": "NoSchedule"}]);
            api.expect("GET", "/api/v1/nodes/n1", 200, node_json("n1", "m5.large", "2", tainted))
                .await;
            api.expect("GET", PODS_ON_N1, 200, list("Pod", vec![])).await;
        })
        .await;
        assert_eq!(
            code.await.unwrap(),
            (DrainProgress::Done, DrainProgress::Done)
        );
    }

    #[tokio::test]
    async fn drain_of_a_missing_node_is_done() {
        let (client, mut api) = mock_client();
        let code = tokio::spawn(async move {
            let mut b = EvictionBackoff::default();
            drain_with(&client, &compat(), "n1", Timestamp(T0), &mut b, &cfg()).await
        });
        timeout(Duration::from_secs(5), async {
            api.expect("GET", "/api/v1/nodes/n1", 404, not_found("nodes", "n1"))
                .await;
        })
        .await;
        assert_eq!(code.await.unwrap().unwrap(), DrainProgress::Done);
    }

    fn tainted_n1() -> Value {
        node_json(
            "n1",
            "m5.large",
            "2",
            json!([{"key": "karpenter.sh/disrupted", "effect": "NoSchedule"}]),
        )
    }

    fn terminating(mut p: Value) -> Value {
        p["metadata"]["deletionTimestamp"] = json!(rfc3339(T0));
        p
    }

    #[tokio::test]
    async fn eviction_429_is_retried_after_backoff_and_never_forced() {
        let (client, mut api) = mock_client();
        let code = tokio::spawn(async move {
            let mut b = EvictionBackoff::default();
            let mut out = Vec::new();
            for dt in [0, 0, 100, 200, 300, 300] {
                let now = Timestamp(T0 + dt);
                out.push(
                    drain_with(&client, &compat(), "n1", now, &mut b, &cfg())
                        .await
                        .unwrap(),
                );
            }
            out
        });
        let web1 = pod_json("ns", "web-1", "n1", "100m");
        let web2 = pod_json("ns", "web-2", "n1", "100m");
        let mut ds = pod_json("kube-system", "agent-x", "n1", "100m");
        ds["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": "ds"}]);
        let mut mirror = pod_json("kube-system", "etcd-n1", "n1", "100m");
        mirror["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "abc"});
        let gone = pod_json("ns", "gone", "n1", "100m");
        let ok = json!({"kind": "Status", "apiVersion": "v1", "status": "Success"});
        timeout(Duration::from_secs(5), async {
            // t0: web-1 evicted, web-2 refused by its PDB, gone is 404; DaemonSet and mirror
            // pods are left alone.
            api.expect("GET", "/api/v1/nodes/n1", 200, tainted_n1())
                .await;
            api.expect(
                "GET",
                PODS_ON_N1,
                200,
                list(
                    "Pod",
                    vec![web1.clone(), web2.clone(), ds.clone(), mirror.clone(), gone],
                ),
            )
            .await;
            api.expect(
                "POST",
                "/api/v1/namespaces/ns/pods/web-1/eviction",
                201,
                ok.clone(),
            )
            .await;
            api.expect(
                "POST",
                "/api/v1/namespaces/ns/pods/web-2/eviction",
                429,
                pdb_blocked(),
            )
            .await;
            api.expect(
                "POST",
                "/api/v1/namespaces/ns/pods/gone/eviction",
                404,
                not_found("pods", "gone"),
            )
            .await;
            // t0 again: web-1 terminating, web-2 backing off: no request but the reads.
            api.expect("GET", "/api/v1/nodes/n1", 200, tainted_n1())
                .await;
            api.expect(
                "GET",
                PODS_ON_N1,
                200,
                list(
                    "Pod",
                    vec![terminating(web1.clone()), web2.clone(), ds.clone()],
                ),
            )
            .await;
            // t0+100ms: the first backoff (100 ms) is over; refused again.
            api.expect("GET", "/api/v1/nodes/n1", 200, tainted_n1())
                .await;
            api.expect(
                "GET",
                PODS_ON_N1,
                200,
                list("Pod", vec![web2.clone(), ds.clone()]),
            )
            .await;
            api.expect(
                "POST",
                "/api/v1/namespaces/ns/pods/web-2/eviction",
                429,
                pdb_blocked(),
            )
            .await;
            // t0+200ms: the backoff doubled to 200 ms: not yet.
            api.expect("GET", "/api/v1/nodes/n1", 200, tainted_n1())
                .await;
            api.expect(
                "GET",
                PODS_ON_N1,
                200,
                list("Pod", vec![web2.clone(), ds.clone()]),
            )
            .await;
            // t0+300ms: the PDB allows it now.
            api.expect("GET", "/api/v1/nodes/n1", 200, tainted_n1())
                .await;
            api.expect(
                "GET",
                PODS_ON_N1,
                200,
                list("Pod", vec![web2.clone(), ds.clone()]),
            )
            .await;
            api.expect("POST", "/api/v1/namespaces/ns/pods/web-2/eviction", 201, ok)
                .await;
            // Only the DaemonSet pod is left: done.
            api.expect("GET", "/api/v1/nodes/n1", 200, tainted_n1())
                .await;
            api.expect(
                "GET",
                PODS_ON_N1,
                200,
                list("Pod", vec![ds.clone(), mirror]),
            )
            .await;
            api.expect_no_more(Duration::from_millis(50)).await;
        })
        .await;
        let out = code.await.unwrap();
        let msg = "Cannot evict pod as it would violate the pod's disruption budget.";
        let blocked = |n| DrainProgress::Waiting {
            remaining: n,
            blocked: vec![format!("ns/web-2: {msg}")],
        };
        assert_eq!(out[0], blocked(2));
        assert_eq!(out[1], blocked(2));
        assert_eq!(out[2], blocked(1));
        assert_eq!(out[3], blocked(1));
        assert_eq!(
            out[4],
            DrainProgress::Waiting {
                remaining: 1,
                blocked: vec![]
            }
        );
        assert_eq!(out[5], DrainProgress::Done);
    }

    #[tokio::test]
    async fn do_not_disrupt_pods_are_not_evicted_and_block_the_node() {
        let (client, mut api) = mock_client();
        let code = tokio::spawn(async move {
            let mut b = EvictionBackoff::default();
            drain_with(&client, &compat(), "n1", Timestamp(T0), &mut b, &cfg()).await
        });
        let mut p = pod_json("ns", "batch", "n1", "100m");
        p["metadata"]["annotations"] = json!({"karpenter.sh/do-not-disrupt": "true"});
        timeout(Duration::from_secs(5), async {
            api.expect("GET", "/api/v1/nodes/n1", 200, tainted_n1())
                .await;
            api.expect("GET", PODS_ON_N1, 200, list("Pod", vec![p]))
                .await;
            api.expect_no_more(Duration::from_millis(50)).await;
        })
        .await;
        assert_eq!(
            code.await.unwrap().unwrap(),
            DrainProgress::Waiting {
                remaining: 1,
                blocked: vec!["ns/batch: has karpenter.sh/do-not-disrupt".into()]
            }
        );
    }

    #[test]
    fn input_from_the_cluster() {
        let mut foreign = node("foreign", "m5.large", "2");
        foreign.spec.as_mut().unwrap().provider_id = Some("aws:///us-east-1a/i-1".into());
        let snap = Snapshot {
            nodes: arcs(vec![node("n1", "m5.large", "2"), foreign]),
            claims: arcs(vec![claim("c1", "n1", true), {
                let mut c = claim("c2", "never", false);
                c.status.as_mut().unwrap().provider_id = None;
                c.spec = json!({"requirements": [
                    {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.xlarge"]}]});
                c
            }]),
            pods: arcs(vec![
                pod("ns", "web-1", "n1", "500m"),
                ds_pod("agent-n1", "n1"),
            ]),
            nodepools: arcs(vec![nodepool("WhenEmptyOrUnderutilized", &["m5.large"])]),
            ..Default::default()
        };
        let mut tracker = PodTracker::default();
        tracker.observe(&snap.pods, Timestamp(T0));
        let b = build_input(&snap, &catalog(), &tracker);
        assert!(b.problems.is_empty(), "{:?}", b.problems);
        assert_eq!(b.claim_of_node.get("n1").map(String::as_str), Some("c1"));
        let n1 = &b.input.nodes[0];
        assert_eq!(n1.pods.len(), 1, "the DaemonSet pod is not a pod to move");
        assert_eq!(n1.daemon_overhead.cpu, 100, "but its requests are overhead");
        let price = catalog()
            .get("m5.large")
            .unwrap()
            .offerings
            .iter()
            .find(|o| &*o.zone == "us-east-1a" && &*o.capacity_type == "on-demand")
            .unwrap()
            .price;
        assert!(price > 0.0);
        assert_eq!(n1.price, price);
        assert_eq!(n1.created_ms, T0 - 600_000);
        assert_eq!(
            n1.last_pod_event_ms,
            T0 - 600_000,
            "web-1's creation (bind time)"
        );
        assert!(!n1.in_flight && !n1.unschedulable);
        let foreign = &b.input.nodes[1];
        assert_eq!(
            foreign.nodepool(),
            None,
            "a node without a claim is never a candidate"
        );
        let c2 = &b.input.nodes[2];
        assert_eq!((c2.name.as_str(), c2.in_flight), ("c2", true));
        assert_eq!(
            c2.allocatable,
            catalog().get("m5.xlarge").unwrap().allocatable
        );
    }

    #[test]
    fn pod_events_are_tracked_between_passes() {
        let mut t = PodTracker::default();
        let a = Arc::new(pod("ns", "a", "n1", "1"));
        t.observe(std::slice::from_ref(&a), Timestamp(T0));
        assert_eq!(t.last_event("n1"), Some(T0 - 600_000));
        t.observe(std::slice::from_ref(&a), Timestamp(T0 + 1_000));
        assert_eq!(t.last_event("n1"), Some(T0 - 600_000), "nothing changed");
        let b = Arc::new(pod("ns", "b", "n2", "1"));
        t.observe(&[a.clone(), b], Timestamp(T0 + 2_000));
        assert_eq!(t.last_event("n2"), Some(T0 + 2_000), "b arrived on n2");
        assert_eq!(t.last_event("n1"), Some(T0 - 600_000));
        t.observe(&[], Timestamp(T0 + 3_000));
        assert_eq!(t.last_event("n1"), Some(T0 + 3_000), "a left n1");
        assert_eq!(t.last_event("n2"), Some(T0 + 3_000), "b left n2");
    }

    fn disruptor(client: kube::Client) -> Disruptor {
        Disruptor::new(client, compat(), Arc::new(CatalogOnly(catalog())), cfg())
    }

    async fn expect_event(api: &mut ApiServer, regarding: &str, reason: &str) -> Value {
        let body = api
            .expect("POST", "/api/v1/namespaces/default/events?", 201, json!({}))
            .await;
        assert_eq!(body["involvedObject"]["name"], regarding, "{body}");
        assert_eq!(body["reason"], reason, "{body}");
        body
    }

    #[tokio::test]
    async fn an_empty_node_is_validated_tainted_drained_and_its_claim_deleted() {
        let (client, mut api) = mock_client();
        let snap = Snapshot {
            nodes: arcs(vec![
                node("n1", "m5.large", "2"),
                node("n2", "m5.large", "2"),
            ]),
            claims: arcs(vec![claim("c1", "n1", true), claim("c2", "n2", true)]),
            pods: arcs(vec![
                ds_pod("agent-n1", "n1"),
                pod("ns", "web-1", "n2", "500m"),
            ]),
            nodepools: arcs(vec![nodepool("WhenEmptyOrUnderutilized", &["m5.large"])]),
            ..Default::default()
        };
        let code = tokio::spawn(async move {
            let mut d = disruptor(client);
            let first = d.pass(&snap, Timestamp(T0)).await.unwrap();
            let phase1 = d.phase().clone();
            // Before the validation delay: nothing happens.
            let early = d.pass(&snap, Timestamp(T0 + 14_000)).await.unwrap();
            let second = d.pass(&snap, Timestamp(T0 + 15_000)).await.unwrap();
            (first, phase1, early, second, d.phase().clone())
        });
        timeout(Duration::from_secs(5), async {
            let ev = expect_event(&mut api, "n1", "Disrupting").await;
            assert_eq!(ev["involvedObject"]["kind"], "Node");
            assert_eq!(ev["involvedObject"]["uid"], "uid-n1");
            assert!(ev["message"].as_str().unwrap().starts_with("Disrupting Node: Empty/Delete: 1 empty node(s)"), "{ev}");
            let ev = expect_event(&mut api, "c1", "Disrupting").await;
            assert_eq!(ev["involvedObject"]["apiVersion"], "karpenter.sh/v1");
            api.expect("GET", "/api/v1/nodes/n1", 200, node_json("n1", "m5.large", "2", json!([])))
                .await;
            let patch = api.expect("PATCH", "/api/v1/nodes/n1?", 200, tainted_n1()).await;
            assert_eq!(patch, taint_patch());
            let mut ds = pod_json("kube-system", "agent-n1", "n1", "100m");
            ds["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": "ds"}]);
            api.expect("GET", PODS_ON_N1, 200, list("Pod", vec![ds])).await;
            api.expect("DELETE", "/apis/karpenter.sh/v1/nodeclaims/c1?", 200, json!({
                "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim", "metadata": {"name": "c1"}, "spec": {}}))
                .await;
            api.expect_no_more(Duration::from_millis(50)).await;
        })
        .await;
        let (first, phase1, early, second, phase2) = code.await.unwrap();
        assert!(
            first
                .explanations
                .iter()
                .any(|l| l.starts_with("1 empty node(s) deleted after consolidateAfter (n1)")),
            "{:?}",
            first.explanations
        );
        assert!(matches!(phase1, Phase::Validating { ref cmd, .. } if cmd.candidates == ["n1"]));
        assert_eq!(first.next, Duration::from_secs(15));
        assert_eq!(early.next, Duration::from_secs(1));
        assert!(early.deleted_claims.is_empty());
        assert_eq!(second.deleted_claims, ["c1"]);
        assert_eq!(phase2, Phase::Idle);
    }

    #[tokio::test]
    async fn a_replacement_is_launched_and_initialized_before_the_candidate_is_touched() {
        let (client, mut api) = mock_client();
        // One m5.2xlarge with a small pod; the pool also allows m5.large: replace.
        let big = Snapshot {
            nodes: arcs(vec![node("n1", "m5.2xlarge", "8")]),
            claims: arcs(vec![claim("c1", "n1", true)]),
            pods: arcs(vec![pod("ns", "web-1", "n1", "500m")]),
            nodepools: arcs(vec![nodepool(
                "WhenEmptyOrUnderutilized",
                &["m5.large", "m5.2xlarge"],
            )]),
            ..Default::default()
        };
        let mut launching = big.clone();
        launching
            .claims
            .push(Arc::new(claim("default-x7k2p", "n9", false)));
        let mut ready = launching.clone();
        ready.claims[1] = Arc::new(claim("default-x7k2p", "n9", true));
        ready.nodes.push(Arc::new(node("n9", "m5.large", "2")));
        let code = tokio::spawn(async move {
            let mut d = disruptor(client);
            let mut reports = vec![d.pass(&big, Timestamp(T0)).await.unwrap()];
            reports.push(d.pass(&big, Timestamp(T0 + 15_000)).await.unwrap());
            let replacing = d.phase().clone();
            reports.push(d.pass(&launching, Timestamp(T0 + 20_000)).await.unwrap());
            reports.push(d.pass(&ready, Timestamp(T0 + 60_000)).await.unwrap());
            (reports, replacing, d.phase().clone())
        });
        timeout(Duration::from_secs(5), async {
            expect_event(&mut api, "n1", "Disrupting").await;
            expect_event(&mut api, "c1", "Disrupting").await;
            let body = api
                .expect(
                    "POST",
                    "/apis/karpenter.sh/v1/nodeclaims?",
                    201,
                    json!({
                    "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
                    "metadata": {"name": "default-x7k2p"}, "spec": {}}),
                )
                .await;
            assert_eq!(body["metadata"]["generateName"], "default-");
            assert_eq!(body["metadata"].get("name"), None);
            assert_eq!(
                (&body["apiVersion"], &body["kind"]),
                (&json!("karpenter.sh/v1"), &json!("NodeClaim"))
            );
            assert_eq!(
                body["metadata"]["labels"]["karpenter.sh/nodepool"],
                "default"
            );
            let types = body["spec"]["requirements"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["key"] == "node.kubernetes.io/instance-type")
                .unwrap()["values"]
                .clone();
            assert_eq!(types, json!(["m5.large"]), "only cheaper types: {body}");
            // Nothing while the replacement initializes; then cordon and evict.
            api.expect(
                "GET",
                "/api/v1/nodes/n1",
                200,
                node_json("n1", "m5.2xlarge", "8", json!([])),
            )
            .await;
            api.expect("PATCH", "/api/v1/nodes/n1?", 200, tainted_n1())
                .await;
            api.expect(
                "GET",
                PODS_ON_N1,
                200,
                list("Pod", vec![pod_json("ns", "web-1", "n1", "500m")]),
            )
            .await;
            let ev = api
                .expect(
                    "POST",
                    "/api/v1/namespaces/ns/pods/web-1/eviction",
                    201,
                    json!({}),
                )
                .await;
            assert_eq!(ev["apiVersion"], "policy/v1beta1");
            api.expect_no_more(Duration::from_millis(50)).await;
        })
        .await;
        let (reports, replacing, phase) = code.await.unwrap();
        assert_eq!(reports[1].created_claims, ["default-x7k2p"]);
        assert!(
            matches!(replacing, Phase::Replacing { ref claim, .. } if claim == "default-x7k2p")
        );
        assert!(matches!(phase, Phase::Draining { ref cmd, .. } if cmd.candidates == ["n1"]));
    }

    #[tokio::test]
    async fn a_node_blocked_by_do_not_disrupt_gets_an_event_once() {
        let (client, mut api) = mock_client();
        let mut n1 = node("n1", "m5.large", "2");
        n1.metadata.annotations = Some(
            [(
                "karpenter.sh/do-not-disrupt".to_string(),
                "true".to_string(),
            )]
            .into(),
        );
        let snap = Snapshot {
            nodes: arcs(vec![n1]),
            claims: arcs(vec![claim("c1", "n1", true)]),
            nodepools: arcs(vec![nodepool("WhenEmpty", &["m5.large"])]),
            ..Default::default()
        };
        let code = tokio::spawn(async move {
            let mut d = disruptor(client);
            let a = d.pass(&snap, Timestamp(T0)).await.unwrap();
            let b = d.pass(&snap, Timestamp(T0 + 10_000)).await.unwrap();
            (a, b, d.phase().clone())
        });
        timeout(Duration::from_secs(5), async {
            let ev = expect_event(&mut api, "n1", "DisruptionBlocked").await;
            assert_eq!(
                ev["message"],
                "Cannot disrupt Node: node has karpenter.sh/do-not-disrupt"
            );
            expect_event(&mut api, "c1", "DisruptionBlocked").await;
            // The second pass says the same thing: deduplicated.
            api.expect_no_more(Duration::from_millis(50)).await;
        })
        .await;
        let (a, b, phase) = code.await.unwrap();
        assert_eq!(phase, Phase::Idle);
        assert_eq!(
            a.explanations,
            ["node n1 is not disrupted: node has karpenter.sh/do-not-disrupt"]
        );
        assert_eq!(b.explanations, a.explanations);
    }

    fn ctx(client: kube::Client, now: u64) -> Context {
        Context {
            client,
            clock: Arc::new(clock::ManualClock::new(Timestamp(now))),
            metrics: Arc::default(),
            settings: Arc::default(),
        }
    }

    #[tokio::test]
    async fn an_interruption_cordons_the_node_and_deletes_its_claim() {
        let (client, mut api) = mock_client();
        let c = ctx(client, T0);
        let code = tokio::spawn(async move {
            (
                cordon_and_drain(&c, "kwok://n1", "spot interruption").await,
                cordon_and_drain(&c, "aws:///us-east-1a/i-unknown", "spot interruption").await,
            )
        });
        timeout(Duration::from_secs(5), async {
            let nodes = list("Node", vec![node_json("n1", "m5.large", "2", json!([]))]);
            api.expect("GET", "/api/v1/nodes?", 200, nodes.clone())
                .await;
            api.expect(
                "GET",
                "/api/v1/nodes/n1",
                200,
                node_json("n1", "m5.large", "2", json!([])),
            )
            .await;
            let patch = api
                .expect("PATCH", "/api/v1/nodes/n1?", 200, tainted_n1())
                .await;
            assert_eq!(patch, taint_patch());
            let claims = list(
                "NodeClaim",
                vec![serde_json::to_value(claim("c1", "n1", true)).unwrap()],
            );
            api.expect("GET", "/apis/karpenter.sh/v1/nodeclaims?", 200, claims)
                .await;
            let ev = expect_event(&mut api, "n1", "Interrupted").await;
            assert_eq!(ev["type"], "Warning");
            assert_eq!(
                ev["message"],
                "Interruption: spot interruption; cordoned and draining"
            );
            api.expect(
                "DELETE",
                "/apis/karpenter.sh/v1/nodeclaims/c1?",
                200,
                json!({}),
            )
            .await;
            expect_event(&mut api, "c1", "Interrupted").await;
            // Unknown provider ID: nothing but the lookup.
            api.expect("GET", "/api/v1/nodes?", 200, nodes).await;
            api.expect_no_more(Duration::from_millis(50)).await;
        })
        .await;
        let (known, unknown) = code.await.unwrap();
        assert_eq!(known.unwrap(), Some("n1".to_string()));
        assert_eq!(unknown.unwrap(), None);
    }

    #[tokio::test]
    async fn a_stale_disrupted_taint_is_removed_when_no_command_runs() {
        let (client, mut api) = mock_client();
        let stale: Node = serde_json::from_value(node_json(
            "n1",
            "m5.large",
            "2",
            json!([{"key": "team", "value": "a", "effect": "NoSchedule"},
                   {"key": "karpenter.sh/disrupted", "effect": "NoSchedule"}]),
        ))
        .unwrap();
        let snap = Snapshot {
            nodes: arcs(vec![stale]),
            claims: arcs(vec![claim("c1", "n1", true)]),
            pods: arcs(vec![pod("ns", "web-1", "n1", "500m")]),
            nodepools: arcs(vec![nodepool("WhenEmpty", &["m5.large"])]),
            ..Default::default()
        };
        let code = tokio::spawn(async move {
            let mut d = disruptor(client);
            let a = d.pass(&snap, Timestamp(T0)).await.unwrap();
            let b = d.pass(&snap, Timestamp(T0 + 10_000)).await.unwrap();
            (a, b)
        });
        timeout(Duration::from_secs(5), async {
            let body = api.expect("PATCH", "/api/v1/nodes/n1?", 409, crate::fixtures::conflict("nodes", "n1")).await;
            assert_eq!(
                body,
                json!({"metadata": {"resourceVersion": "7"},
                       "spec": {"taints": [{"key": "team", "value": "a", "effect": "NoSchedule"}]}}),
                "the taint list minus ours, pinned to the snapshot's resourceVersion"
            );
            // Next pass: the patch goes through.
            api.expect("PATCH", "/api/v1/nodes/n1?", 200, node_json("n1", "m5.large", "2", json!([])))
                .await;
            api.expect_no_more(Duration::from_millis(50)).await;
        })
        .await;
        let (a, b) = code.await.unwrap();
        assert!(
            a.explanations
                .iter()
                .any(|l| l.starts_with("node n1: changed since the snapshot")),
            "{:?}",
            a.explanations
        );
        assert!(
            b.explanations
                .iter()
                .any(|l| l == "node n1: removed a stale karpenter.sh/disrupted taint"),
            "{:?}",
            b.explanations
        );
    }

    #[tokio::test]
    async fn a_drain_blocked_past_the_timeout_is_given_up_and_uncordoned() {
        let (client, mut api) = mock_client();
        let snap = Snapshot {
            nodes: arcs(vec![
                node("n1", "m5.large", "2"),
                node("n2", "m5.large", "2"),
            ]),
            claims: arcs(vec![claim("c1", "n1", true), claim("c2", "n2", true)]),
            pods: arcs(vec![pod("ns", "web-1", "n2", "500m")]),
            nodepools: arcs(vec![nodepool("WhenEmptyOrUnderutilized", &["m5.large"])]),
            ..Default::default()
        };
        let mut later = snap.clone();
        later.nodes[0] = Arc::new(serde_json::from_value(tainted_n1()).unwrap());
        let code = tokio::spawn(async move {
            let mut d = disruptor(client);
            d.pass(&snap, Timestamp(T0)).await.unwrap();
            let draining = d.pass(&snap, Timestamp(T0 + 15_000)).await.unwrap();
            let phase = d.phase().clone();
            let gave_up = d.pass(&later, Timestamp(T0 + 615_000)).await.unwrap();
            (draining, phase, gave_up, d.phase().clone())
        });
        // A pod the snapshot did not know about, with do-not-disrupt, turned up.
        let mut late = pod_json("ns", "batch", "n1", "100m");
        late["metadata"]["annotations"] = json!({"karpenter.sh/do-not-disrupt": "true"});
        timeout(Duration::from_secs(5), async {
            expect_event(&mut api, "n1", "Disrupting").await;
            expect_event(&mut api, "c1", "Disrupting").await;
            api.expect(
                "GET",
                "/api/v1/nodes/n1",
                200,
                node_json("n1", "m5.large", "2", json!([])),
            )
            .await;
            api.expect("PATCH", "/api/v1/nodes/n1?", 200, tainted_n1())
                .await;
            api.expect("GET", PODS_ON_N1, 200, list("Pod", vec![late]))
                .await;
            let ev = expect_event(&mut api, "n1", "DisruptionBlocked").await;
            assert_eq!(ev["type"], "Warning");
            assert!(
                ev["message"]
                    .as_str()
                    .unwrap()
                    .contains("ns/batch: has karpenter.sh/do-not-disrupt"),
                "{ev}"
            );
            expect_event(&mut api, "c1", "DisruptionBlocked").await;
            // Ten minutes later: given up, uncordoned.
            let body = api
                .expect(
                    "PATCH",
                    "/api/v1/nodes/n1?",
                    200,
                    node_json("n1", "m5.large", "2", json!([])),
                )
                .await;
            assert_eq!(
                body,
                json!({"metadata": {"resourceVersion": "7"}, "spec": {"taints": []}})
            );
            let ev = expect_event(&mut api, "n1", "DisruptionBlocked").await;
            assert!(ev["message"].as_str().unwrap().contains("given up"), "{ev}");
            expect_event(&mut api, "c1", "DisruptionBlocked").await;
            api.expect_no_more(Duration::from_millis(50)).await;
        })
        .await;
        let (draining, phase, gave_up, end) = code.await.unwrap();
        assert!(draining.deleted_claims.is_empty());
        assert!(matches!(phase, Phase::Draining { .. }));
        assert!(
            gave_up
                .explanations
                .iter()
                .any(|l| l.starts_with("Empty command for n1 given up")),
            "{:?}",
            gave_up.explanations
        );
        assert_eq!(end, Phase::Idle);
    }
}
