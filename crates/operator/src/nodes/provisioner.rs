//! The provisioner: pods kube-scheduler could not place → NodeClaims, as Karpenter does.
//!
//! It reads pods, NodePools, NodeClaims, Nodes and DaemonSets from the shared
//! [`Informers`] and wakes on their changes. A pod is
//! provisionable when it is not bound, not being deleted, and its `PodScheduled` condition
//! is `False` with reason `Unschedulable` (what kube-scheduler writes). Such pods open a batch
//! (`provision::plan::Batcher`: closes after 1 s without a new pod or 10 s after the first);
//! replica intents announced on the [`IntentBoard`] are planned at once (joint decision:
//! capacity is requested in the autoscaler's scale-out step, before the pods exist).
//!
//! A pass builds a `ProvisionInput` ([`build_input`], pure): valid NodePools, DaemonSets,
//! Nodes with their pods, in-flight NodeClaims (launched or launching, not registered) as
//! `in_flight` nodes so nothing is launched twice and NodePool limits count them, the
//! pending pods and the intents. `provision::plan::plan` decides; each planned claim becomes
//! a `karpenter.sh/v1` NodeClaim ([`nodeclaim_body`]); the pods get `Nominated` /
//! `FailedScheduling` events with the planner's explanation; NodePool status (`resources`,
//! `nodes`, `Ready`) is written with server-side apply.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::cached_node::CachedNode as Node;
use crate::cached_pod::CachedPod as Pod;
use clock::Timestamp;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, Patch, PatchParams, PostParams};
use model::karpenter::{LABEL_HOSTNAME, LABEL_INSTANCE_TYPE, LABEL_NODEPOOL};
use provision::catalog::Catalog;
use provision::plan::{Batcher, Plan, ProvisionInput, ReplicaIntent};
use provision::resources::Res;
use provision::scheduler::ExistingNode;
use serde_json::{Value, json};

use super::IntentBoard;
use super::convert;
use super::lifecycle::{EPHEMERAL_TAINTS, Events, LABEL_INITIALIZED, TERMINATION_FINALIZER};
use crate::context::Context;
use crate::crd::{self, NodeClaim, NodePool};
use crate::error::kube_status;
use crate::informers::{Change, Informers};
use crate::provider::CloudProvider;
use crate::provider::kwok::rfc3339;
use crate::{Error, Result};

/// How often still-pending pods are looked at again without a watch event (and NodePool
/// status refreshed).
pub const RECHECK: Duration = Duration::from_secs(30);
/// A claim this process created counts as in flight until the claim watch delivers it.
const CREATED_GRACE: Duration = Duration::from_secs(10);

/// Can the provisioner help this pod? Unbound, not terminating, and kube-scheduler said
/// `PodScheduled=False/Unschedulable`; DaemonSet pods are the DaemonSet controller's.
pub fn is_provisionable(p: &Pod) -> bool {
    if p.metadata.deletion_timestamp.is_some() {
        return false;
    }
    if p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
    {
        return false;
    }
    if owned_by_daemonset(p) {
        return false;
    }
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("Unschedulable")
            })
        })
}

fn owned_by_daemonset(p: &Pod) -> bool {
    p.metadata
        .owner_references
        .as_ref()
        .is_some_and(|o| o.iter().any(|r| r.kind == "DaemonSet"))
}

fn terminal(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

fn ms(t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> u64 {
    t.map(|t| t.0.as_millisecond().max(0) as u64).unwrap_or(0)
}

fn pod_key(p: &Pod) -> String {
    format!(
        "{}/{}",
        p.metadata.namespace.as_deref().unwrap_or(""),
        p.metadata.name.as_deref().unwrap_or("")
    )
}

/// Snapshots of the stores one pass plans from.
#[derive(Default, Clone)]
pub struct Snapshot {
    pub nodepools: Vec<Arc<NodePool>>,
    pub daemonsets: Vec<Arc<DaemonSet>>,
    pub nodes: Vec<Arc<Node>>,
    pub pods: Vec<Arc<Pod>>,
    pub claims: Vec<Arc<NodeClaim>>,
}

/// What [`build_input`] produced besides the input.
#[derive(Debug, Default)]
pub struct InputReport {
    /// (NodePool, why it is invalid): skipped.
    pub invalid_pools: Vec<(String, String)>,
    /// Pods or nodes that could not be read (skipped).
    pub skipped: Vec<String>,
    /// Provisionable pods, by `namespace/name`.
    pub pending: BTreeMap<String, Arc<Pod>>,
}

/// A NodeClaim that is launching or launched but whose Node has not registered: capacity
/// on the way. Its size is the launched instance's (status) or the cheapest type it may
/// launch as (its instance-type requirement, cheapest first).
pub fn in_flight_node(c: &NodeClaim, catalog: &Catalog) -> Option<ExistingNode> {
    let name = c.metadata.name.clone()?;
    let claim = convert::nodeclaim(c).ok()?;
    let mut labels = claim.metadata.labels.clone();
    for r in &claim.spec.requirements {
        if r.operator == model::kube::Operator::In && r.values.len() == 1 {
            labels
                .entry(r.key.clone())
                .or_insert_with(|| r.values[0].clone());
        }
    }
    labels.insert(LABEL_HOSTNAME.into(), name.clone());
    let first_type = labels.get(LABEL_INSTANCE_TYPE).cloned().or_else(|| {
        claim
            .spec
            .requirements
            .iter()
            .find(|r| r.key == LABEL_INSTANCE_TYPE && r.operator == model::kube::Operator::In)
            .and_then(|r| r.values.first().cloned())
    });
    let it = first_type.as_deref().and_then(|t| catalog.get(t));
    let (mut capacity, _) = Res::from_list(&claim.status.capacity);
    let (mut allocatable, _) = Res::from_list(&claim.status.allocatable);
    if capacity.is_zero() {
        capacity = it.map(|t| t.capacity).unwrap_or(Res::ZERO);
    }
    if allocatable.is_zero() {
        allocatable = it.map(|t| t.allocatable).unwrap_or(Res::ZERO);
    }
    if allocatable.is_zero() {
        return None;
    }
    Some(ExistingNode {
        name,
        labels,
        taints: claim.spec.taints.clone(),
        capacity,
        allocatable,
        pods: vec![],
        daemon_overhead: Res::ZERO,
        unschedulable: false,
        in_flight: true,
        price: 0.0,
        created_ms: ms(c.metadata.creation_timestamp.as_ref()),
        nodepool_hash: claim
            .metadata
            .annotations
            .get(model::karpenter::ANNOTATION_NODEPOOL_HASH)
            .cloned(),
        annotations: claim.metadata.annotations.clone(),
        last_pod_event_ms: 0,
    })
}

fn node_provider_id(n: &Node) -> Option<&str> {
    n.spec.as_ref().and_then(|s| s.provider_id.as_deref())
}

/// Build the planner's input from store snapshots (pure).
pub fn build_input(
    catalog: &Catalog,
    snap: &Snapshot,
    intents: Vec<ReplicaIntent>,
) -> (ProvisionInput, InputReport) {
    let mut report = InputReport::default();
    let mut input = ProvisionInput {
        intents,
        ..Default::default()
    };
    for np in &snap.nodepools {
        if np.metadata.deletion_timestamp.is_some() {
            continue;
        }
        match convert::nodepool(np) {
            Ok(p) => input.nodepools.push(p),
            Err(e) => report
                .invalid_pools
                .push((np.metadata.name.clone().unwrap_or_default(), e)),
        }
    }
    for d in &snap.daemonsets {
        match convert::daemonset(d) {
            Ok(d) => input.daemonsets.push(d),
            Err(e) => report.skipped.push(e),
        }
    }
    // Pods by node: what existing nodes have left, and the topology the pods spread over.
    // Only a plan reads them (the pass plans when a pod is pending or an intent announced):
    // a pass without converts no bound pod.
    let planning = !input.intents.is_empty() || snap.pods.iter().any(|p| is_provisionable(p));
    let mut by_node: HashMap<&str, Vec<&Arc<Pod>>> = HashMap::new();
    for p in snap.pods.iter().filter(|_| planning) {
        if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.as_deref())
            && !n.is_empty()
            && !terminal(p)
        {
            by_node.entry(n).or_default().push(p);
        }
    }
    // Startup taints per registered claim's node, and the provider IDs that have a Node.
    let mut startup: HashMap<String, Vec<String>> = HashMap::new();
    for c in &snap.claims {
        if let (Some(pid), Some(st)) = (
            c.status.as_ref().and_then(|s| s.provider_id.clone()),
            c.spec.get("startupTaints").and_then(Value::as_array),
        ) {
            let keys = st
                .iter()
                .filter_map(|t| t.get("key").and_then(Value::as_str).map(str::to_string))
                .collect();
            startup.insert(pid, keys);
        }
    }
    let mut registered: HashSet<String> = HashSet::new();
    input
        .nodes
        .reserve_exact(snap.nodes.len() + snap.claims.len());
    for n in &snap.nodes {
        if let Some(pid) = node_provider_id(n) {
            registered.insert(pid.to_string());
        }
        if n.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = n.metadata.name.clone().unwrap_or_default();
        let mn = match convert::node(n) {
            Ok(m) => m,
            Err(e) => {
                report.skipped.push(e);
                continue;
            }
        };
        let bound = by_node.get(name.as_str());
        let mut pods = Vec::with_capacity(bound.map_or(0, |b| b.len()));
        let mut daemon = Res::ZERO;
        for p in bound.into_iter().flatten() {
            match convert::pod(p) {
                Ok(mp) if owned_by_daemonset(p) => {
                    daemon = daemon.plus(&Res::from_list(&mp.requests()).0);
                }
                Ok(mp) => pods.push(mp),
                Err(e) => report.skipped.push(e),
            }
        }
        let mut en = ExistingNode::from_node(&mn, pods);
        en.daemon_overhead = daemon;
        en.created_ms = ms(n.metadata.creation_timestamp.as_ref());
        // A Karpenter node that is not initialized yet will lose its startup and ephemeral
        // taints: plan as if they were gone (Karpenter does the same), or every booting
        // node would look unusable and be launched again.
        let managed = mn.metadata.labels.contains_key(LABEL_NODEPOOL);
        let initialized = mn
            .metadata
            .labels
            .get(LABEL_INITIALIZED)
            .is_some_and(|v| v == "true");
        if managed && !initialized {
            let st = node_provider_id(n)
                .and_then(|p| startup.get(p))
                .cloned()
                .unwrap_or_default();
            en.taints
                .retain(|t| !EPHEMERAL_TAINTS.contains(&t.key.as_str()) && !st.contains(&t.key));
        }
        if let Some(t) = mn
            .metadata
            .labels
            .get(LABEL_INSTANCE_TYPE)
            .and_then(|t| catalog.get(t))
        {
            let reqs = provision::requirements::Requirements::from_labels(&mn.metadata.labels);
            en.price = t.cheapest_offering(&reqs).map_or(0.0, |o| o.price);
        }
        input.nodes.push(en);
    }
    let names: HashSet<String> = snap
        .nodes
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    for c in &snap.claims {
        if c.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let st = c.status.as_ref();
        let has_node = st
            .and_then(|s| s.provider_id.as_ref())
            .is_some_and(|p| registered.contains(p))
            || st
                .and_then(|s| s.node_name.as_ref())
                .is_some_and(|n| names.contains(n));
        if has_node {
            continue;
        }
        if let Some(en) = in_flight_node(c, catalog) {
            input.nodes.push(en);
        }
    }
    for p in &snap.pods {
        if !is_provisionable(p) {
            continue;
        }
        match convert::pod(p) {
            Ok(mp) => {
                report.pending.insert(pod_key(p), p.clone());
                input.pending.push(mp);
            }
            Err(e) => report.skipped.push(e),
        }
    }
    (input, report)
}

/// The NodeClaim to POST for a planned claim: `generateName: <nodepool>-`, the NodePool's
/// labels and hash annotation, the termination finalizer, an owner reference to the NodePool
/// and requirements narrowed to the planner's instance types (at most 60, cheapest first).
pub fn nodeclaim_body(
    planned: &provision::plan::PlannedClaim,
    pool: &model::karpenter::NodePool,
    pool_uid: &str,
) -> Value {
    let nc = planned.to_nodeclaim(pool);
    let mut spec = serde_json::to_value(&nc.spec).unwrap_or(Value::Null);
    if let Some(reqs) = spec.get_mut("requirements").and_then(Value::as_array_mut) {
        for r in reqs {
            if r.get("key").and_then(Value::as_str) == Some(LABEL_INSTANCE_TYPE)
                && let Some(vs) = r.get_mut("values").and_then(Value::as_array_mut)
            {
                vs.truncate(provision::scheduler::MAX_INSTANCE_TYPES);
            }
        }
    }
    json!({
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodeClaim",
        "metadata": {
            "generateName": format!("{}-", planned.nodepool),
            "labels": nc.metadata.labels,
            "annotations": nc.metadata.annotations,
            "finalizers": [TERMINATION_FINALIZER],
            "ownerReferences": [{
                "apiVersion": "karpenter.sh/v1",
                "kind": "NodePool",
                "name": planned.nodepool,
                "uid": pool_uid,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": spec,
    })
}

/// POST a NodeClaim body. Through `DynamicObject`: the `crd` wrappers do not serialise
/// `apiVersion`/`kind`, which a create needs.
pub async fn create_claim(client: &kube::Client, body: &Value) -> Result<NodeClaim, kube::Error> {
    let ar = kube::api::ApiResource::erase::<NodeClaim>(&());
    let api: Api<kube::api::DynamicObject> = Api::all_with(client.clone(), &ar);
    let obj: kube::api::DynamicObject =
        serde_json::from_value(body.clone()).map_err(kube::Error::SerdeError)?;
    let created = api.create(&PostParams::default(), &obj).await?;
    let v = serde_json::to_value(&created).map_err(kube::Error::SerdeError)?;
    serde_json::from_value(v).map_err(kube::Error::SerdeError)
}

/// NodePool `status.resources` / `status.nodes`: the capacity of its nodes and in-flight
/// claims (what counts against its limits).
pub fn pool_usage(input: &ProvisionInput) -> BTreeMap<String, (Res, i64)> {
    let mut m: BTreeMap<String, (Res, i64)> = BTreeMap::new();
    for n in &input.nodes {
        if let Some(p) = n.nodepool() {
            let e = m.entry(p.to_string()).or_insert((Res::ZERO, 0));
            e.0 = e.0.plus(&n.capacity);
            e.1 += 1;
        }
    }
    m
}

fn pod_ref(p: &Pod) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: p.metadata.name.clone(),
        namespace: p.metadata.namespace.clone(),
        uid: p.metadata.uid.clone(),
        ..Default::default()
    }
}

fn pool_ref(p: &NodePool) -> ObjectReference {
    ObjectReference {
        api_version: Some("karpenter.sh/v1".into()),
        kind: Some("NodePool".into()),
        name: p.metadata.name.clone(),
        uid: p.metadata.uid.clone(),
        ..Default::default()
    }
}

/// The provisioner's state between passes.
pub struct Provisioner {
    pub ctx: Context,
    pub provider: Arc<dyn CloudProvider>,
    pub intents: IntentBoard,
    pub events: Events,
    /// Claims created by this process that the claim store may not show yet.
    created: Vec<(Arc<NodeClaim>, Timestamp)>,
    /// Last NodePool status written (per pool), to write only changes.
    written: HashMap<String, Value>,
    /// Last invalid-NodePool error reported (per pool).
    invalid: HashMap<String, String>,
}

/// The outcome of one pass.
#[derive(Debug)]
pub struct PassResult {
    pub plan: Plan,
    /// Names of the NodeClaims created.
    pub created: Vec<String>,
}

impl Provisioner {
    pub fn new(
        ctx: Context,
        provider: Arc<dyn CloudProvider>,
        intents: IntentBoard,
        events: Events,
    ) -> Self {
        Provisioner {
            ctx,
            provider,
            intents,
            events,
            created: Vec::new(),
            written: HashMap::new(),
            invalid: HashMap::new(),
        }
    }

    /// One provisioning pass over `snap` (plus announced intents): plan, create NodeClaims,
    /// publish events, write NodePool status.
    pub async fn pass(&mut self, mut snap: Snapshot) -> Result<PassResult> {
        let now = self.ctx.clock.now();
        // Claims created here but not yet in the store are in flight too.
        self.created.retain(|(c, at)| {
            now.since(*at) < CREATED_GRACE
                && !snap
                    .claims
                    .iter()
                    .any(|s| s.metadata.name == c.metadata.name)
        });
        snap.claims
            .extend(self.created.iter().map(|(c, _)| c.clone()));
        let catalog = self.provider.catalog();
        let intents = self.intents.take();
        let (input, report) = build_input(&catalog, &snap, intents);
        for s in &report.skipped {
            tracing::warn!("provisioner: skipped {s}");
        }
        self.report_invalid(&snap, &report).await;
        let mut result = PassResult {
            plan: Plan {
                claims: vec![],
                onto_existing: vec![],
                unschedulable: vec![],
                cost_per_hour: 0.0,
                lower_bound_per_hour: 0.0,
                explanations: vec![],
            },
            created: vec![],
        };
        if !input.pending.is_empty() || !input.intents.is_empty() {
            let plan = provision::plan::plan(&catalog, &input);
            for e in &plan.explanations {
                tracing::info!("provisioner: {e}");
            }
            for planned in &plan.claims {
                let Some(pool) = input
                    .nodepools
                    .iter()
                    .find(|p| p.name() == planned.nodepool)
                else {
                    continue;
                };
                let uid = snap
                    .nodepools
                    .iter()
                    .find(|p| p.metadata.name.as_deref() == Some(planned.nodepool.as_str()))
                    .and_then(|p| p.metadata.uid.clone())
                    .unwrap_or_default();
                let body = nodeclaim_body(planned, pool, &uid);
                let created = create_claim(&self.ctx.client, &body)
                    .await
                    .map_err(Error::kube(format!(
                        "create NodeClaim for NodePool {}",
                        planned.nodepool
                    )))?;
                let name = created.metadata.name.clone().unwrap_or_default();
                self.ctx.metrics.inc(
                    "karpenter_nodeclaims_created_total",
                    "NodeClaims created, by NodePool and reason.",
                    &[("nodepool", &planned.nodepool), ("reason", "provisioning")],
                );
                self.created.push((Arc::new(created), now));
                for p in planned.pods.iter().filter_map(|k| report.pending.get(k)) {
                    self.events
                        .publish(
                            &pod_ref(p),
                            false,
                            "Nominated",
                            "Provision",
                            format!(
                                "Pod should schedule on: nodeclaim/{name}; {}",
                                planned.explanation
                            ),
                        )
                        .await;
                }
                result.created.push(name);
            }
            for (k, reason) in &plan.unschedulable {
                if let Some(p) = report.pending.get(k) {
                    self.events
                        .publish(
                            &pod_ref(p),
                            true,
                            "FailedScheduling",
                            "Provision",
                            format!("Failed to schedule pod, {reason}"),
                        )
                        .await;
                }
            }
            result.plan = plan;
        }
        // The planner's input is not needed any more: free it before building the usage input.
        drop(input);
        // Usage includes what was just created; it counts capacity, so pods are left out.
        let mut snap2 = snap;
        snap2.pods = Vec::new();
        for (c, _) in &self.created {
            if !snap2
                .claims
                .iter()
                .any(|s| s.metadata.name == c.metadata.name)
            {
                snap2.claims.push(c.clone());
            }
        }
        let (input2, _) = build_input(&catalog, &snap2, vec![]);
        self.write_pool_status(&snap2, &input2, now).await;
        Ok(result)
    }

    async fn report_invalid(&mut self, snap: &Snapshot, report: &InputReport) {
        let now = self.ctx.clock.now();
        for (name, err) in &report.invalid_pools {
            if self.invalid.get(name) == Some(err) {
                continue;
            }
            let Some(np) = snap
                .nodepools
                .iter()
                .find(|p| p.metadata.name.as_deref() == Some(name))
            else {
                continue;
            };
            tracing::warn!(nodepool = %name, "invalid NodePool skipped: {err}");
            self.events
                .publish(
                    &pool_ref(np),
                    true,
                    "InvalidNodePool",
                    "Validate",
                    err.clone(),
                )
                .await;
            let conds = conditions(
                np,
                &[
                    ("ValidationSucceeded", "False", "InvalidNodePool", err),
                    ("Ready", "False", "InvalidNodePool", err),
                ],
                now,
            );
            let body = json!({
                "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
                "metadata": {"name": name},
                "status": {"conditions": conds},
            });
            if self.apply_status(name, &body).await {
                self.invalid.insert(name.clone(), err.clone());
                self.written.remove(name);
            }
        }
        self.invalid
            .retain(|n, _| report.invalid_pools.iter().any(|(m, _)| m == n));
    }

    async fn write_pool_status(&mut self, snap: &Snapshot, input: &ProvisionInput, now: Timestamp) {
        let usage = pool_usage(input);
        for p in &input.nodepools {
            let name = p.name().to_string();
            let Some(np) = snap
                .nodepools
                .iter()
                .find(|x| x.metadata.name.as_deref() == Some(name.as_str()))
            else {
                continue;
            };
            let (res, nodes) = usage.get(&name).copied().unwrap_or((Res::ZERO, 0));
            for (rt, v) in [
                ("cpu", res.cpu as f64 / 1000.0),
                ("memory", res.mem as f64),
                ("pods", res.pods as f64),
            ] {
                self.ctx.metrics.set(
                    "karpenter_nodepools_usage",
                    "Capacity of a NodePool's nodes and in-flight NodeClaims (what its limits count).",
                    &[("nodepool", &name), ("resource_type", rt)],
                    v,
                );
            }
            let resources: BTreeMap<String, String> = res
                .to_list()
                .into_iter()
                .map(|(k, v)| (k, v.to_string()))
                .collect();
            let conds = conditions(
                np,
                &[
                    ("ValidationSucceeded", "True", "ValidationSucceeded", ""),
                    ("Ready", "True", "Ready", ""),
                ],
                now,
            );
            let body = json!({
                "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
                "metadata": {"name": name},
                "status": {"resources": resources, "nodes": nodes, "conditions": conds},
            });
            // Compare without transition times: they only change with the status.
            let key = json!({"resources": resources, "nodes": nodes});
            if self.written.get(&name) == Some(&key) {
                continue;
            }
            if self.apply_status(&name, &body).await {
                self.written.insert(name, key);
            }
        }
    }

    async fn apply_status(&self, name: &str, body: &Value) -> bool {
        let api: Api<NodePool> = Api::all(self.ctx.client.clone());
        let pp = PatchParams::apply(&self.ctx.settings.field_manager).force();
        match api.patch_status(name, &pp, &Patch::Apply(body)).await {
            Ok(_) => true,
            Err(e) if kube_status(&e) == Some(404) => false,
            Err(e) => {
                tracing::warn!(nodepool = %name, "status: {e}");
                false
            }
        }
    }
}

/// Conditions with transition times kept from the current status when unchanged.
fn conditions(
    np: &NodePool,
    set: &[(&str, &str, &str, &str)],
    now: Timestamp,
) -> Vec<crd::Condition> {
    let old = np
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    set.iter()
        .map(|(t, s, r, m)| {
            let keep = old
                .iter()
                .find(|c| c.type_ == *t && c.status == *s)
                .and_then(|c| c.last_transition_time.clone());
            crd::Condition {
                type_: t.to_string(),
                status: s.to_string(),
                reason: r.to_string(),
                message: m.to_string(),
                last_transition_time: Some(keep.unwrap_or_else(|| rfc3339(now))),
            }
        })
        .collect()
}

/// A snapshot of the shared stores for one pass.
pub fn snapshot(inf: &Informers) -> Snapshot {
    Snapshot {
        nodepools: inf.nodepools.state(),
        daemonsets: inf.daemonsets.state(),
        nodes: inf.nodes.state(),
        pods: inf.pods.state(),
        claims: inf.claims.state(),
    }
}

enum Trigger {
    /// A provisionable pod (its uid) was seen.
    Pending(String),
    /// A NodeClaim is being deleted (or gone): its pending pods need capacity again.
    CapacityLost,
    /// The pod cache was re-listed or changes were missed: every pending pod is looked at.
    Rescan,
    Other,
}

/// Run the provisioner until `shutdown`: changes from the shared informers, batching, passes.
pub async fn run(
    mut prov: Provisioner,
    stores: Informers,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<()> {
    // Changes are mapped to triggers as they happen: the queues hold triggers, not objects.
    let pod_stream = stores
        .pods
        .changes_map(|c| {
            Some(match c {
                Change::Applied(p) if is_provisionable(p) => {
                    Trigger::Pending(p.metadata.uid.clone().unwrap_or_default())
                }
                // A relist, or changes this loop fell behind on: look at every pending pod.
                Change::Resync => Trigger::Rescan,
                _ => Trigger::Other,
            })
        })
        .boxed();
    let streams = vec![
        pod_stream,
        stores.nodes.changes_map(|_| Some(Trigger::Other)).boxed(),
        stores
            .nodepools
            .changes_map(|_| Some(Trigger::Other))
            .boxed(),
        // A claim going away (failed launch, registration timeout, disruption) frees its
        // pods: look at the pending ones again without waiting for the recheck.
        stores
            .claims
            .changes_map(|c| {
                Some(match c {
                    Change::Applied(c) if c.metadata.deletion_timestamp.is_some() => {
                        Trigger::CapacityLost
                    }
                    Change::Deleted(_) => Trigger::CapacityLost,
                    _ => Trigger::Other,
                })
            })
            .boxed(),
        stores
            .daemonsets
            .changes_map(|_| Some(Trigger::Other))
            .boxed(),
    ];
    let mut triggers = futures::stream::select_all(streams);
    let clock = prov.ctx.clock.clone();
    let mut batcher = Batcher::default();
    let mut handled: HashSet<String> = HashSet::new();
    let mut last_recheck = clock.now();
    let mut joint = false;
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let now = clock.now();
        let wake = batcher
            .deadline()
            .unwrap_or(last_recheck.add(RECHECK))
            .min(last_recheck.add(RECHECK));
        tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            t = triggers.next() => match t {
                None => return Ok(()),
                Some(Trigger::Pending(uid)) => {
                    if handled.insert(uid) {
                        batcher.observe(clock.now());
                    }
                }
                Some(Trigger::CapacityLost | Trigger::Rescan) => {
                    if stores.pods.state().iter().any(|p| is_provisionable(p)) {
                        handled.clear();
                        batcher.observe(clock.now());
                    }
                }
                Some(Trigger::Other) => {}
            },
            _ = prov.intents.announced() => joint = true,
            // The floor keeps a due batch from spinning while the stores are still listing.
            _ = tokio::time::sleep(wake.since(now).max(Duration::from_millis(50))) => {}
        }
        if !stores.is_ready() {
            continue;
        }
        let now = clock.now();
        let recheck = now >= last_recheck.add(RECHECK);
        if recheck {
            last_recheck = now;
            // Pods still pending are looked at again (and open a batch if any).
            handled.clear();
            if stores.pods.state().iter().any(|p| is_provisionable(p)) {
                batcher.observe(now);
            }
        }
        if joint || batcher.ready(now) || recheck {
            joint = false;
            if batcher.ready(now) {
                batcher.reset();
            }
            // The snapshot is taken once the other pass is done, so it sees its result.
            let one_pass = super::PASS.lock().await;
            let passed = prov.pass(snapshot(&stores)).await;
            drop(one_pass);
            if let Err(e) = passed {
                tracing::warn!(kind = e.metric_label(), "provisioning pass failed: {e}");
                // Look again soon.
                batcher.observe(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{self, mock_client};
    use clock::ManualClock;

    const T0: u64 = 1_767_225_600_000;

    fn pod(name: &str, cpu: &str, extra: Value) -> Arc<Pod> {
        let mut v = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "work", "uid": format!("uid-{name}")},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                     "resources": {"requests": {"cpu": cpu, "memory": "128Mi"}}}]},
            "status": {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]},
        });
        if let (Value::Object(a), Value::Object(b)) = (&mut v, extra) {
            for (k, x) in b {
                a.insert(k, x);
            }
        }
        Arc::new(serde_json::from_value(v).unwrap())
    }

    fn pool(name: &str, spec_extra: Value) -> Arc<NodePool> {
        let mut spec = json!({
            "template": {"spec": {
                "requirements": [
                    {"key": LABEL_INSTANCE_TYPE, "operator": "In", "values": ["m5.xlarge", "m5.2xlarge"]},
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                ],
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
            }},
        });
        if let (Value::Object(a), Value::Object(b)) = (&mut spec, spec_extra) {
            for (k, x) in b {
                a.insert(k, x);
            }
        }
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "uid": format!("uid-{name}")},
                "spec": spec,
            }))
            .unwrap(),
        )
    }

    fn in_flight_claim(name: &str, types: &[&str]) -> Arc<NodeClaim> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {LABEL_NODEPOOL: "general"}},
                "spec": {
                    "requirements": [{"key": LABEL_INSTANCE_TYPE, "operator": "In", "values": types}],
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                },
            }))
            .unwrap(),
        )
    }

    fn provisioner(client: kube::Client) -> Provisioner {
        let clock: Arc<dyn clock::Clock> = Arc::new(ManualClock::new(Timestamp::from_millis(T0)));
        let ctx = Context {
            client: client.clone(),
            clock: clock.clone(),
            metrics: Arc::new(crate::server::Metrics::default()),
            settings: Arc::new(crate::context::Settings::default()),
        };
        let provider = crate::provider::kwok::Kwok::new(
            client,
            clock,
            Arc::new(provision::catalog::Catalog::aws()),
        );
        Provisioner::new(
            ctx,
            Arc::new(provider),
            IntentBoard::default(),
            Events::disabled(),
        )
    }

    #[test]
    fn provisionable_pods() {
        assert!(is_provisionable(&pod("a", "1", json!({}))));
        let bound = pod(
            "b",
            "1",
            json!({"spec": {"nodeName": "n1", "containers": []}}),
        );
        assert!(!is_provisionable(&bound));
        let fresh = pod("c", "1", json!({"status": {"phase": "Pending"}}));
        assert!(
            !is_provisionable(&fresh),
            "kube-scheduler has not tried it yet"
        );
        let gated = pod(
            "d",
            "1",
            json!({"status": {"conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}}),
        );
        assert!(!is_provisionable(&gated));
        let mut deleting = (*pod("e", "1", json!({}))).clone();
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        assert!(!is_provisionable(&deleting));
        let ds = pod(
            "f",
            "1",
            json!({"metadata": {"name": "f", "namespace": "work",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "x", "uid": "u"}]}}),
        );
        assert!(!is_provisionable(&ds));
    }

    #[test]
    fn in_flight_claims_hold_capacity_and_count_against_limits() {
        let catalog = provision::catalog::Catalog::aws();
        let snap = Snapshot {
            nodepools: vec![pool("general", json!({}))],
            claims: vec![in_flight_claim("general-x", &["m5.xlarge", "m5.2xlarge"])],
            pods: vec![pod("a", "1", json!({})), pod("b", "1", json!({}))],
            ..Default::default()
        };
        let (input, report) = build_input(&catalog, &snap, vec![]);
        assert!(report.invalid_pools.is_empty());
        assert_eq!(input.pending.len(), 2);
        assert_eq!(input.nodes.len(), 1);
        let n = &input.nodes[0];
        assert!(n.in_flight);
        assert_eq!(
            n.allocatable,
            catalog.get("m5.xlarge").unwrap().allocatable,
            "the cheapest type it may launch as"
        );
        assert_eq!(n.nodepool(), Some("general"));
        // 2 × 1 CPU fit the in-flight m5.xlarge: nothing new to launch.
        let plan = provision::plan::plan(&catalog, &input);
        assert!(plan.claims.is_empty(), "{:?}", plan.explanations);
        assert_eq!(plan.onto_existing.len(), 2);
        assert_eq!(pool_usage(&input).get("general").map(|u| u.1), Some(1));
    }

    #[test]
    fn booting_nodes_are_planned_without_their_ephemeral_taints() {
        let catalog = provision::catalog::Catalog::aws();
        let node: Arc<Node> = Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": "general-x", "labels": {LABEL_NODEPOOL: "general", LABEL_INSTANCE_TYPE: "m5.xlarge"}},
                "spec": {"providerID": "kwok://general-x", "taints": [
                    {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
                    {"key": "dedicated", "value": "a", "effect": "NoSchedule"}]},
                "status": {"capacity": {"cpu": "4", "memory": "16Gi", "pods": "58"},
                           "allocatable": {"cpu": "3920m", "memory": "14Gi", "pods": "58"}},
            }))
            .unwrap(),
        );
        let mut claim = (*in_flight_claim("general-x", &["m5.xlarge"])).clone();
        claim.status = Some(model::karpenter::NodeClaimStatus {
            provider_id: Some("kwok://general-x".into()),
            ..Default::default()
        });
        let ds_pod = pod(
            "ds",
            "500m",
            json!({"metadata": {"name": "ds", "namespace": "work",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "x", "uid": "u"}]},
            "spec": {"nodeName": "general-x", "containers": [{"name": "c", "resources": {"requests": {"cpu": "500m"}}}]}}),
        );
        let bound = pod(
            "bound",
            "1",
            json!({"spec": {"nodeName": "general-x", "containers": [
                {"name": "c", "resources": {"requests": {"cpu": "1"}}}]}}),
        );
        let mut snap = Snapshot {
            nodepools: vec![pool("general", json!({}))],
            nodes: vec![node],
            claims: vec![Arc::new(claim)],
            pods: vec![ds_pod, bound, pod("pending", "1", json!({}))],
            ..Default::default()
        };
        let (input, _) = build_input(&catalog, &snap, vec![]);
        assert_eq!(
            input.nodes.len(),
            1,
            "the registered claim is not in flight any more"
        );
        let n = &input.nodes[0];
        assert!(!n.in_flight);
        let keys: Vec<&str> = n.taints.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, vec!["dedicated"]);
        assert_eq!(n.daemon_overhead.cpu, 500);
        assert_eq!(n.pods.len(), 1, "the bound pod, not the DaemonSet's");
        assert_eq!(n.used().cpu, 1000);
        assert!(n.price > 0.0);

        // Nothing pending and no intent: no plan, so the bound pods are not even converted
        // (the node is still there, for the NodePool's usage).
        snap.pods.pop();
        let (input, _) = build_input(&catalog, &snap, vec![]);
        assert!(input.pending.is_empty());
        assert_eq!(input.nodes.len(), 1);
        assert!(input.nodes[0].pods.is_empty());
        assert_eq!(input.nodes[0].daemon_overhead.cpu, 0);
        // An announced intent is planned: the bound pods count again.
        let intent = provision::plan::ReplicaIntent {
            source: "ScaledObject work/app".into(),
            replicas: 1,
            template: Default::default(),
        };
        let (input, _) = build_input(&catalog, &snap, vec![intent]);
        assert_eq!(input.nodes[0].pods.len(), 1);
        assert_eq!(input.nodes[0].daemon_overhead.cpu, 500);
    }

    #[tokio::test]
    async fn pass_creates_a_nodeclaim_for_the_pending_pods_and_writes_pool_status() {
        let (client, mut server) = mock_client();
        let mut p = provisioner(client);
        let snap = Snapshot {
            nodepools: vec![pool("general", json!({"limits": {"cpu": "100"}}))],
            pods: vec![
                pod("a", "1", json!({})),
                pod("b", "1", json!({})),
                pod("c", "1", json!({})),
            ],
            ..Default::default()
        };
        let scenario = async {
            let body = server
                .expect(
                    "POST",
                    "/apis/karpenter.sh/v1/nodeclaims?",
                    201,
                    json!({"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
                           "metadata": {"name": "general-7xk2p", "labels": {LABEL_NODEPOOL: "general"}},
                           "spec": {"requirements": [{"key": LABEL_INSTANCE_TYPE, "operator": "In", "values": ["m5.xlarge", "m5.2xlarge"]}],
                                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"}}}),
                )
                .await;
            assert_eq!(body["apiVersion"], "karpenter.sh/v1");
            assert_eq!(body["kind"], "NodeClaim");
            let m = &body["metadata"];
            assert_eq!(m["generateName"], "general-");
            assert_eq!(m["labels"][LABEL_NODEPOOL], "general");
            assert!(m["annotations"]["karpenter.sh/nodepool-hash"].is_string());
            assert_eq!(m["finalizers"], json!([TERMINATION_FINALIZER]));
            assert_eq!(
                m["ownerReferences"],
                json!([{"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "name": "general", "uid": "uid-general", "blockOwnerDeletion": true}])
            );
            let reqs = body["spec"]["requirements"].as_array().unwrap();
            let types = reqs
                .iter()
                .find(|r| r["key"] == LABEL_INSTANCE_TYPE)
                .unwrap();
            assert_eq!(types["operator"], "In");
            // 3 × 1 CPU: m5.xlarge (cheapest fitting) first, m5.2xlarge as fallback.
            assert_eq!(types["values"], json!(["m5.xlarge", "m5.2xlarge"]));
            assert_eq!(body["spec"]["resources"]["requests"]["cpu"], "3");
            assert_eq!(body["spec"]["nodeClassRef"]["name"], "default");
            let status = server
                .expect(
                    "PATCH",
                    "/apis/karpenter.sh/v1/nodepools/general/status?&force=true&fieldManager=kedge",
                    200,
                    json!({"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "general"}, "spec": {}}),
                )
                .await;
            assert_eq!(status["status"]["nodes"], 1, "the new claim counts");
            assert_eq!(status["status"]["resources"]["cpu"], "4");
            assert_eq!(status["status"]["conditions"][1]["type"], "Ready");
            assert_eq!(status["status"]["conditions"][1]["status"], "True");
            assert_eq!(
                status["status"]["conditions"][1]["lastTransitionTime"],
                "2026-01-01T00:00:00Z"
            );
            server.expect_no_more(Duration::from_millis(200)).await;
        };
        let (r, _) = fixtures::timeout(Duration::from_secs(5), async {
            tokio::join!(p.pass(snap.clone()), scenario)
        })
        .await;
        let r = r.unwrap();
        assert_eq!(r.created, vec!["general-7xk2p".to_string()]);
        assert_eq!(r.plan.claims.len(), 1);
        let m = p.ctx.metrics.render();
        assert!(
            m.contains(
                r#"karpenter_nodeclaims_created_total{nodepool="general",reason="provisioning"} 1"#
            ),
            "{m}"
        );
        // The claim store has not caught up: the next pass counts the created claim in
        // flight and launches nothing again; the pool status is unchanged, so not rewritten.
        let (client, mut server) = mock_client();
        p.ctx.client = client;
        let (r, _) = fixtures::timeout(Duration::from_secs(5), async {
            tokio::join!(
                p.pass(snap),
                server.expect_no_more(Duration::from_millis(200))
            )
        })
        .await;
        let r = r.unwrap();
        assert!(r.created.is_empty());
        assert_eq!(r.plan.onto_existing.len(), 3);
    }

    #[tokio::test]
    async fn announced_replicas_are_planned_before_their_pods_exist() {
        let (client, mut server) = mock_client();
        let mut p = provisioner(client);
        let template = convert::pod(&pod("consumer", "2", json!({}))).unwrap();
        p.intents.announce(ReplicaIntent {
            source: "ScaledObject work/consumer".into(),
            template,
            replicas: 3,
        });
        let snap = Snapshot {
            nodepools: vec![pool("general", json!({}))],
            ..Default::default()
        };
        let scenario = async {
            let body = server
                .expect("POST", "/apis/karpenter.sh/v1/nodeclaims?", 201,
                    json!({"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim", "metadata": {"name": "general-a1"}, "spec": {}}))
                .await;
            // 3 × 2 CPU: one m5.2xlarge.
            let types = body["spec"]["requirements"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["key"] == LABEL_INSTANCE_TYPE)
                .unwrap()
                .clone();
            assert_eq!(types["values"][0], "m5.2xlarge");
            server
                .expect(
                    "PATCH",
                    "/apis/karpenter.sh/v1/nodepools/general/status?&force=true&fieldManager=kedge",
                    200,
                    json!({}),
                )
                .await;
            server.expect_no_more(Duration::from_millis(200)).await;
        };
        let (r, _) = fixtures::timeout(Duration::from_secs(5), async {
            tokio::join!(p.pass(snap), scenario)
        })
        .await;
        let r = r.unwrap();
        assert_eq!(r.plan.claims[0].intent_pods, 3);
        assert!(p.intents.take().is_empty(), "each intent is planned once");
    }

    #[tokio::test]
    async fn an_invalid_nodepool_is_reported_and_skipped() {
        let (client, mut server) = mock_client();
        let mut p = provisioner(client);
        let snap = Snapshot {
            nodepools: vec![pool("broken", json!({"weight": 1000}))],
            pods: vec![pod("a", "1", json!({}))],
            ..Default::default()
        };
        let scenario = async {
            let body = server
                .expect(
                    "PATCH",
                    "/apis/karpenter.sh/v1/nodepools/broken/status?&force=true&fieldManager=kedge",
                    200,
                    json!({}),
                )
                .await;
            let c = &body["status"]["conditions"][0];
            assert_eq!(c["type"], "ValidationSucceeded");
            assert_eq!(c["status"], "False");
            assert!(c["message"].as_str().unwrap().contains("weight"), "{c}");
            assert_eq!(body["status"]["conditions"][1]["type"], "Ready");
            assert_eq!(body["status"]["conditions"][1]["status"], "False");
            server.expect_no_more(Duration::from_millis(200)).await;
        };
        let (r, _) = fixtures::timeout(Duration::from_secs(5), async {
            tokio::join!(p.pass(snap), scenario)
        })
        .await;
        let r = r.unwrap();
        assert!(r.created.is_empty());
        assert_eq!(r.plan.unschedulable.len(), 1, "no valid pool for the pod");
    }

    #[tokio::test]
    async fn a_refused_create_is_an_error_naming_the_pool() {
        let (client, mut server) = mock_client();
        let mut p = provisioner(client);
        let snap = Snapshot {
            nodepools: vec![pool("general", json!({}))],
            pods: vec![pod("a", "1", json!({}))],
            ..Default::default()
        };
        let scenario = async {
            server
                .expect(
                    "POST",
                    "/apis/karpenter.sh/v1/nodeclaims?",
                    403,
                    fixtures::status(403, "Forbidden", "nodeclaims is forbidden"),
                )
                .await;
        };
        let (r, _) = fixtures::timeout(Duration::from_secs(5), async {
            tokio::join!(p.pass(snap), scenario)
        })
        .await;
        let e = r.unwrap_err();
        assert_eq!(e.status_code(), Some(403));
        assert!(e.to_string().contains("NodePool general"), "{e}");
    }
}
