//! The NodeClaim lifecycle, as Karpenter runs it: launch → registered → initialized, the
//! `karpenter.sh/termination` finalizer, the registration timeout and garbage collection of
//! instances without a claim.
//!
//! The decision is pure: [`observe`] reads the claim and its Node (if any) into a [`State`],
//! [`decide`] maps the state and `now` to one [`Next`] action ([`step`] does both). The
//! reconciler ([`reconcile`]) carries the action out against the API server and the
//! [`CloudProvider`], and returns when to look again; every write is followed by a watch
//! event that brings the claim back, so one reconcile does one step.

use std::sync::Arc;
use std::time::Duration;

use crate::cached_node::CachedNode as Node;
use crate::events::EventRecorder;
use clock::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use model::karpenter::{
    CONDITION_INITIALIZED, CONDITION_LAUNCHED, CONDITION_READY, CONDITION_REGISTERED, Condition,
    LABEL_CAPACITY_TYPE, LABEL_INSTANCE_TYPE, LABEL_NODEPOOL, LABEL_ZONE, NodeClaimStatus,
};
use serde_json::{Value, json};

use crate::context::Context;
use crate::crd::NodeClaim;
use crate::error::kube_status;
use crate::nodes::drain::{DrainProgress, drain_node};
use crate::provider::kwok::{parse_rfc3339, rfc3339};
use crate::provider::{CloudProvider, Instance, LaunchRequest, ProviderError};
use crate::{Error, Result};

/// The finalizer that keeps a NodeClaim until its node is drained and its instance gone.
pub const TERMINATION_FINALIZER: &str = "karpenter.sh/termination";
/// Node label set at registration.
pub const LABEL_REGISTERED: &str = "karpenter.sh/registered";
/// Node label set at initialization.
pub const LABEL_INITIALIZED: &str = "karpenter.sh/initialized";
/// A launched claim whose Node has not joined by then is deleted (Karpenter's 15 min).
pub const REGISTRATION_TTL: Duration = Duration::from_secs(15 * 60);
/// A claim whose launch failed finally is deleted this long after (so its status can be
/// read); the provisioner then re-plans. Insufficient capacity is deleted at once, as
/// Karpenter does: the failed offerings are already out of the catalog.
pub const LAUNCH_FAILED_TTL: Duration = Duration::from_secs(60);
/// Garbage collection period (Karpenter: 2 min).
pub const GC_PERIOD: Duration = Duration::from_secs(120);
/// Taints the node lifecycle or the cloud put on a node that is not ready yet; they are
/// expected to go away by themselves and do not block initialization bookkeeping.
pub const EPHEMERAL_TAINTS: &[&str] = &[
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
    "node.cloudprovider.kubernetes.io/uninitialized",
    "karpenter.sh/unregistered",
];

pub const REASON_INSUFFICIENT_CAPACITY: &str = "InsufficientCapacity";
pub const REASON_LAUNCH_FAILED: &str = "LaunchFailed";

/// Where a NodeClaim is in its life (observed from the claim and its Node).
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// The claim lacks the termination finalizer (created by someone other than the
    /// provisioner): it must get it before an instance exists, or the instance could leak.
    Unfinalized,
    /// No instance yet: launch one through the provider.
    Launching,
    /// The launch failed with a final error at `since` (`Launched=False`, `reason`).
    LaunchFailed { reason: String, since: Timestamp },
    /// An instance exists (`Launched=True` since `since`); no Node with its provider ID has
    /// joined yet.
    Launched { since: Timestamp },
    /// The Node joined but the claim is not marked `Registered` yet.
    Joined { node: String },
    /// `Registered=True`; waiting for the Node to be Ready with its startup taints gone.
    Registered { node: String },
    /// `Initialized=True`: the node takes pods. Steady state.
    Initialized { node: String },
    /// The claim was registered but its Node is gone (deleted by someone): the claim follows.
    NodeGone,
    /// `deletionTimestamp` is set and the finalizer is ours to remove: drain and delete the
    /// Node, terminate the instance (until the provider says NotFound), then release.
    Terminating {
        node: Option<String>,
        node_deleting: bool,
        provider_id: Option<String>,
    },
    /// Being deleted and nothing of ours holds it: nothing to do.
    Released,
}

/// The one action a reconcile takes.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    AddFinalizer,
    Launch,
    /// Delete the claim (the provisioner re-plans its pods).
    DeleteClaim {
        reason: String,
        message: String,
    },
    /// Copy labels/taints/owner to the Node, set `status.nodeName`, `Registered=True`.
    Register {
        node: String,
    },
    /// Label the Node initialized, set `Initialized=True`, `Ready=True`.
    Initialize {
        node: String,
    },
    /// Termination: cordon and drain, then delete the Node.
    DrainAndDeleteNode {
        node: String,
    },
    /// Termination: terminate the instance (again) until the provider answers NotFound.
    TerminateInstance {
        provider_id: String,
    },
    /// Termination done: remove the finalizer.
    RemoveFinalizer,
    /// Nothing to do now; look again after this long (`None`: on the next change).
    Wait(Option<Duration>),
}

fn is_true(c: Option<&Condition>) -> bool {
    c.is_some_and(|c| c.status == "True")
}

fn cond<'a>(s: &'a NodeClaimStatus, t: &str) -> Option<&'a Condition> {
    s.conditions.iter().find(|c| c.type_ == t)
}

fn cond_time(c: &Condition) -> Option<Timestamp> {
    match c.last_transition_time.as_ref()? {
        Value::String(s) => parse_rfc3339(s),
        Value::Number(n) => n.as_u64().map(Timestamp::from_millis),
        _ => None,
    }
}

fn created(claim: &NodeClaim) -> Timestamp {
    claim
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| Timestamp::from_millis(t.0.as_millisecond().max(0) as u64))
        .unwrap_or(Timestamp::ZERO)
}

fn node_taint_keys(n: &Node) -> Vec<String> {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .map(|ts| ts.iter().map(|t| t.key.clone()).collect())
        .unwrap_or_default()
}

/// Is the Node ready for pods as far as initialization goes: Ready, no startup taint of the
/// claim and no ephemeral taint left.
pub fn node_initialized(claim: &NodeClaim, n: &Node) -> bool {
    if !crate::provider::kwok::node_ready(n) {
        return false;
    }
    let startup: Vec<String> = claim
        .spec
        .get("startupTaints")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.get("key").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    !node_taint_keys(n)
        .iter()
        .any(|k| startup.contains(k) || EPHEMERAL_TAINTS.contains(&k.as_str()))
}

fn has_finalizer(claim: &NodeClaim) -> bool {
    claim
        .metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == TERMINATION_FINALIZER))
}

/// Read the claim and its Node (found by provider ID) into a [`State`].
pub fn observe(claim: &NodeClaim, node: Option<&Node>, now: Timestamp) -> State {
    let status = claim.status.clone().unwrap_or_default();
    let node_name = node.and_then(|n| n.metadata.name.clone());
    if claim.metadata.deletion_timestamp.is_some() {
        if !has_finalizer(claim) {
            return State::Released;
        }
        return State::Terminating {
            node: node_name,
            node_deleting: node.is_some_and(|n| n.metadata.deletion_timestamp.is_some()),
            provider_id: status.provider_id.clone(),
        };
    }
    if !has_finalizer(claim) {
        return State::Unfinalized;
    }
    let launched = cond(&status, CONDITION_LAUNCHED);
    if !is_true(launched) && status.provider_id.is_none() {
        if let Some(c) = launched.filter(|c| c.status == "False") {
            return State::LaunchFailed {
                reason: c.reason.clone(),
                since: cond_time(c).unwrap_or(now),
            };
        }
        return State::Launching;
    }
    let Some(node_name) = node_name else {
        if is_true(cond(&status, CONDITION_REGISTERED)) {
            return State::NodeGone;
        }
        let since = launched
            .and_then(cond_time)
            .unwrap_or_else(|| created(claim));
        return State::Launched { since };
    };
    if !is_true(cond(&status, CONDITION_REGISTERED)) {
        return State::Joined { node: node_name };
    }
    if !is_true(cond(&status, CONDITION_INITIALIZED)) {
        return State::Registered { node: node_name };
    }
    State::Initialized { node: node_name }
}

/// The next action for a state.
pub fn decide(state: &State, now: Timestamp) -> Next {
    match state {
        State::Unfinalized => Next::AddFinalizer,
        State::Launching => Next::Launch,
        State::LaunchFailed { reason, since } => {
            let ttl = if reason == REASON_INSUFFICIENT_CAPACITY {
                Duration::ZERO
            } else {
                LAUNCH_FAILED_TTL
            };
            let due = since.add(ttl);
            if now >= due {
                Next::DeleteClaim {
                    reason: reason.clone(),
                    message: format!("launch failed ({reason}); the provisioner re-plans its pods"),
                }
            } else {
                Next::Wait(Some(due.since(now)))
            }
        }
        State::Launched { since } => {
            let due = since.add(REGISTRATION_TTL);
            if now >= due {
                Next::DeleteClaim {
                    reason: "RegistrationTimeout".into(),
                    message: format!(
                        "no Node registered within {}s of the launch",
                        REGISTRATION_TTL.as_secs()
                    ),
                }
            } else {
                Next::Wait(Some(due.since(now)))
            }
        }
        State::Joined { node } => Next::Register { node: node.clone() },
        // The node watch brings the claim back when the node changes.
        State::Registered { .. } => Next::Wait(None),
        State::Initialized { .. } => Next::Wait(None),
        State::NodeGone => Next::DeleteClaim {
            reason: "NodeDeleted".into(),
            message: "the claim's Node was deleted".into(),
        },
        State::Terminating {
            node,
            node_deleting,
            provider_id,
        } => match (node, provider_id) {
            (Some(_), _) if *node_deleting => Next::Wait(Some(Duration::from_secs(5))),
            (Some(n), _) => Next::DrainAndDeleteNode { node: n.clone() },
            (None, Some(p)) => Next::TerminateInstance {
                provider_id: p.clone(),
            },
            (None, None) => Next::RemoveFinalizer,
        },
        State::Released => Next::Wait(None),
    }
}

/// [`observe`] then [`decide`].
pub fn step(claim: &NodeClaim, node: Option<&Node>, now: Timestamp) -> (State, Next) {
    let s = observe(claim, node, now);
    let n = decide(&s, now);
    (s, n)
}

/// `Initialized` needs more than registration: a registered claim whose node now qualifies.
fn refine(claim: &NodeClaim, node: Option<&Node>, next: Next, state: &State) -> Next {
    match (state, node) {
        (State::Registered { node: name }, Some(n)) if node_initialized(claim, n) => {
            Next::Initialize { node: name.clone() }
        }
        _ => next,
    }
}

/// The lifecycle's Kubernetes Events, through the node side's one publisher (errors are
/// logged, never fatal).
#[derive(Clone)]
pub struct Events {
    recorder: Option<Arc<EventRecorder>>,
}

impl Events {
    pub fn new(recorder: Arc<EventRecorder>) -> Self {
        Events {
            recorder: Some(recorder),
        }
    }
    /// Events are not published (unit tests that do not assert them).
    pub fn disabled() -> Self {
        Events { recorder: None }
    }
    /// A warning about NodeClaim `claim` at `now`.
    pub async fn claim_warning(
        &self,
        now: Timestamp,
        claim: &NodeClaim,
        reason: &'static str,
        message: String,
    ) {
        let Some(r) = &self.recorder else {
            return;
        };
        let ev = engine::Event {
            at: now,
            topic: engine::Topic::Node,
            object: engine::ObjectRef::cluster("NodeClaim", name_of(claim)),
            warning: true,
            reason,
            message,
        };
        r.publish_logged(&ev, claim.metadata.uid.as_deref()).await;
    }
}

/// An event reason for a claim's deletion (the reasons [`decide`] gives; events carry static
/// reasons).
fn static_reason(reason: &str) -> &'static str {
    match reason {
        REASON_INSUFFICIENT_CAPACITY => REASON_INSUFFICIENT_CAPACITY,
        REASON_LAUNCH_FAILED => REASON_LAUNCH_FAILED,
        "RegistrationTimeout" => "RegistrationTimeout",
        "NodeDeleted" => "NodeDeleted",
        _ => "NodeClaimDeleted",
    }
}

/// Everything the lifecycle reconciler needs.
pub struct Lifecycle {
    pub ctx: Context,
    pub provider: Arc<dyn CloudProvider>,
    /// Nodes (reflector store) to find a claim's Node by provider ID.
    pub nodes: Store<Node>,
    pub events: Events,
    /// Served API versions (Eviction); `None`: the server serves no Eviction API, nodes are
    /// deleted without a drain.
    pub compat: Option<crate::compat::ApiCompat>,
}

/// The Node of a claim, by provider ID.
pub fn find_node(nodes: &Store<Node>, claim: &NodeClaim) -> Option<Arc<Node>> {
    let st = claim.status.as_ref()?;
    if let Some(pid) = &st.provider_id {
        let found = nodes.find(|n| {
            n.spec
                .as_ref()
                .and_then(|s| s.provider_id.as_ref())
                .is_some_and(|p| p == pid)
        });
        if found.is_some() {
            return found;
        }
    }
    None
}

/// Set (or update) a condition; the transition time changes only when the status does.
pub fn set_condition(
    conds: &mut Vec<Condition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) {
    if let Some(c) = conds.iter_mut().find(|c| c.type_ == type_) {
        if c.status != status {
            c.last_transition_time = Some(Value::String(rfc3339(now)));
        }
        c.status = status.into();
        c.reason = reason.into();
        c.message = message.into();
    } else {
        conds.push(Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            last_transition_time: Some(Value::String(rfc3339(now))),
        });
    }
}

fn nodepool_of(c: &NodeClaim) -> String {
    c.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_NODEPOOL).cloned())
        .unwrap_or_default()
}

/// Count a lifecycle transition under Karpenter's metric names.
fn count(ctx: &Context, name: &'static str, help: &'static str, c: &NodeClaim) {
    ctx.metrics
        .inc(name, help, &[("nodepool", &nodepool_of(c))]);
}

fn claims_api(ctx: &Context) -> Api<NodeClaim> {
    Api::all(ctx.client.clone())
}

fn name_of(c: &NodeClaim) -> String {
    c.metadata.name.clone().unwrap_or_default()
}

async fn patch_status(ctx: &Context, name: &str, status: &NodeClaimStatus) -> Result<()> {
    let body = json!({"status": status});
    let req = kube::core::Request::new(claims_api(ctx).resource_url()).patch_subresource(
        "status",
        name,
        &PatchParams::default(),
        &Patch::Merge(&body),
    );
    match crate::write_discarding(&ctx.client, req).await {
        Ok(_) => Ok(()),
        Err(e) if kube_status(&e) == Some(404) => Ok(()),
        Err(e) => Err(Error::kube(format!("nodeclaim {name}: status"))(e)),
    }
}

/// The launch request for a claim (its instance-type requirement, cheapest first as the
/// provisioner wrote it).
pub fn launch_request(c: &NodeClaim) -> std::result::Result<LaunchRequest, String> {
    let claim = crate::nodes::convert::nodeclaim(c)?;
    let instance_types: Vec<String> = claim
        .spec
        .requirements
        .iter()
        .find(|r| r.key == LABEL_INSTANCE_TYPE && r.operator == model::kube::Operator::In)
        .map(|r| r.values.clone())
        .unwrap_or_default()
        .into_iter()
        .take(provision::scheduler::MAX_INSTANCE_TYPES)
        .collect();
    if instance_types.is_empty() {
        return Err(format!(
            "spec.requirements: no {LABEL_INSTANCE_TYPE} In requirement (kedge launches claims the provisioner narrowed to instance types)"
        ));
    }
    let labels = claim.metadata.labels.clone();
    let nodepool = labels.get(LABEL_NODEPOOL).cloned().unwrap_or_default();
    let node_class = Some(claim.spec.node_class_ref.name.clone()).filter(|n| !n.is_empty());
    Ok(LaunchRequest {
        claim_name: name_of(c),
        nodepool,
        node_class,
        instance_types,
        labels: labels.into(),
        taints: claim.spec.taints.clone(),
        startup_taints: claim.spec.startup_taints.clone(),
        claim,
    })
}

/// Reconcile one NodeClaim: one step of the state machine.
pub async fn reconcile(claim: Arc<NodeClaim>, lc: Arc<Lifecycle>) -> Result<Action> {
    let now = lc.ctx.clock.now();
    let node = find_node(&lc.nodes, &claim);
    let (state, next) = step(&claim, node.as_deref(), now);
    let next = refine(&claim, node.as_deref(), next, &state);
    let name = name_of(&claim);
    tracing::debug!(claim = %name, ?state, ?next, "nodeclaim step");
    match next {
        Next::Wait(d) => Ok(d.map_or_else(Action::await_change, Action::requeue)),
        Next::AddFinalizer => {
            let mut f = claim.metadata.finalizers.clone().unwrap_or_default();
            f.push(TERMINATION_FINALIZER.into());
            let body = json!({"metadata": {"finalizers": f, "resourceVersion": claim.metadata.resource_version}});
            update_with_retry(&lc.ctx, &name, body, |fresh| {
                let mut f = fresh.metadata.finalizers.clone().unwrap_or_default();
                if f.iter().any(|x| x == TERMINATION_FINALIZER) {
                    return None;
                }
                f.push(TERMINATION_FINALIZER.into());
                Some(json!({"metadata": {"finalizers": f, "resourceVersion": fresh.metadata.resource_version}}))
            })
            .await?;
            Ok(Action::await_change())
        }
        Next::Launch => launch(&lc, &claim, now).await,
        Next::DeleteClaim { reason, message } => {
            lc.events
                .claim_warning(now, &claim, static_reason(&reason), message.clone())
                .await;
            tracing::info!(claim = %name, %reason, "deleting nodeclaim: {message}");
            let req = kube::core::Request::new(claims_api(&lc.ctx).resource_url())
                .delete(&name, &DeleteParams::default());
            match crate::write_discarding(&lc.ctx.client, req).await {
                Ok(_) => Ok(Action::await_change()),
                Err(e) if kube_status(&e) == Some(404) => Ok(Action::await_change()),
                Err(e) => Err(Error::kube(format!("delete nodeclaim {name}"))(e)),
            }
        }
        Next::Register { node } => {
            let n = lc
                .nodes
                .find(|n| n.metadata.name.as_deref() == Some(node.as_str()));
            register(&lc, &claim, n, now).await
        }
        Next::Initialize { node } => {
            let api: Api<Node> = Api::all(lc.ctx.client.clone());
            let body = json!({"metadata": {"labels": {LABEL_INITIALIZED: "true"}}});
            let req = kube::core::Request::new(api.resource_url()).patch(
                &node,
                &PatchParams::default(),
                &Patch::Merge(&body),
            );
            match crate::write_discarding(&lc.ctx.client, req).await {
                Ok(_) => {}
                Err(e) if kube_status(&e) == Some(404) => return Ok(Action::await_change()),
                Err(e) => return Err(Error::kube(format!("node {node}: initialized label"))(e)),
            }
            let mut st = claim.status.clone().unwrap_or_default();
            set_condition(
                &mut st.conditions,
                CONDITION_INITIALIZED,
                "True",
                "Initialized",
                "",
                now,
            );
            set_condition(
                &mut st.conditions,
                CONDITION_READY,
                "True",
                "Ready",
                "",
                now,
            );
            patch_status(&lc.ctx, &name, &st).await?;
            count(
                &lc.ctx,
                "karpenter_nodeclaims_initialized_total",
                "NodeClaims whose Node initialized.",
                &claim,
            );
            Ok(Action::await_change())
        }
        Next::DrainAndDeleteNode { node } => {
            // Cordon and evict through `nodes::disruption` (PDBs respected: a refused
            // eviction leaves the node for a later reconcile).
            if let Some(compat) = &lc.compat
                && let DrainProgress::Waiting { remaining, blocked } =
                    drain_node(&lc.ctx, compat, &node, now).await?
            {
                tracing::info!(claim = %name, %node, remaining, ?blocked, "draining");
                return Ok(Action::requeue(Duration::from_secs(5)));
            }
            let api: Api<Node> = Api::all(lc.ctx.client.clone());
            let req = kube::core::Request::new(api.resource_url())
                .delete(&node, &DeleteParams::default());
            match crate::write_discarding(&lc.ctx.client, req).await {
                Ok(_) => {}
                Err(e) if kube_status(&e) == Some(404) => {}
                Err(e) => return Err(Error::kube(format!("delete node {node}"))(e)),
            }
            Ok(Action::requeue(Duration::from_secs(1)))
        }
        Next::TerminateInstance { provider_id } => match lc.provider.delete(&provider_id).await {
            Ok(()) => Ok(Action::requeue(Duration::from_secs(5))),
            Err(ProviderError::NotFound(_)) => {
                remove_finalizer(&lc.ctx, &claim).await?;
                count(
                    &lc.ctx,
                    "karpenter_nodeclaims_terminated_total",
                    "NodeClaims whose instance was terminated and finalizer released.",
                    &claim,
                );
                Ok(Action::await_change())
            }
            Err(e) => Err(e.into()),
        },
        Next::RemoveFinalizer => {
            remove_finalizer(&lc.ctx, &claim).await?;
            Ok(Action::await_change())
        }
    }
}

/// Merge-patch the claim with optimistic locking; on 409 re-read it and rebuild the patch
/// with `again` (`None`: nothing left to do).
async fn update_with_retry(
    ctx: &Context,
    name: &str,
    first: Value,
    again: impl Fn(&NodeClaim) -> Option<Value>,
) -> Result<()> {
    let api = claims_api(ctx);
    let mut body = first;
    for _ in 0..3 {
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&body))
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if kube_status(&e) == Some(404) => return Ok(()),
            Err(e) if kube_status(&e) == Some(409) => {
                let fresh = match api.get(name).await {
                    Ok(c) => c,
                    Err(e) if kube_status(&e) == Some(404) => return Ok(()),
                    Err(e) => return Err(Error::kube(format!("get nodeclaim {name}"))(e)),
                };
                match again(&fresh) {
                    Some(b) => body = b,
                    None => return Ok(()),
                }
            }
            Err(e) => return Err(Error::kube(format!("patch nodeclaim {name}"))(e)),
        }
    }
    Err(Error::Invalid(format!(
        "nodeclaim {name}: still conflicting after 3 attempts; retrying later"
    )))
}

async fn remove_finalizer(ctx: &Context, claim: &NodeClaim) -> Result<()> {
    let without = |c: &NodeClaim| -> Option<Value> {
        let f = c.metadata.finalizers.clone().unwrap_or_default();
        if !f.iter().any(|x| x == TERMINATION_FINALIZER) {
            return None;
        }
        let rest: Vec<String> = f
            .into_iter()
            .filter(|x| x != TERMINATION_FINALIZER)
            .collect();
        Some(
            json!({"metadata": {"finalizers": rest, "resourceVersion": c.metadata.resource_version}}),
        )
    };
    let Some(first) = without(claim) else {
        return Ok(());
    };
    update_with_retry(ctx, &name_of(claim), first, without).await
}

async fn launch(lc: &Lifecycle, claim: &NodeClaim, now: Timestamp) -> Result<Action> {
    let name = name_of(claim);
    let outcome = match launch_request(claim) {
        Err(m) => Err((REASON_LAUNCH_FAILED, format!("invalid NodeClaim: {m}"))),
        Ok(req) => match lc.provider.create(&req).await {
            Ok(i) => Ok(i),
            Err(ProviderError::Api(m)) => {
                // Transient: retried with backoff, no status change.
                return Err(Error::Provider(ProviderError::Api(m)));
            }
            Err(ProviderError::InsufficientCapacity(m)) => Err((REASON_INSUFFICIENT_CAPACITY, m)),
            Err(e) => Err((REASON_LAUNCH_FAILED, e.to_string())),
        },
    };
    let mut st = claim.status.clone().unwrap_or_default();
    match outcome {
        Ok(inst) => {
            record_launch(&lc.ctx, &name, &inst).await?;
            st.provider_id = Some(inst.provider_id.clone());
            st.image_id = inst.image_id.clone();
            st.capacity = inst.capacity.clone();
            st.allocatable = inst.allocatable.clone();
            set_condition(
                &mut st.conditions,
                CONDITION_LAUNCHED,
                "True",
                "Launched",
                "",
                now,
            );
            set_condition(
                &mut st.conditions,
                CONDITION_READY,
                "Unknown",
                "NotInitialized",
                "waiting for the node to register and initialize",
                now,
            );
            patch_status(&lc.ctx, &name, &st).await?;
            count(
                &lc.ctx,
                "karpenter_nodeclaims_launched_total",
                "NodeClaims launched by the cloud provider.",
                claim,
            );
            tracing::info!(claim = %name, provider_id = %inst.provider_id, instance_type = %inst.instance_type, zone = %inst.zone, "launched");
            Ok(Action::requeue(REGISTRATION_TTL))
        }
        Err((reason, message)) => {
            lc.ctx.metrics.inc(
                "karpenter_cloudprovider_errors_total",
                "Cloud provider errors by kind.",
                &[("error", reason)],
            );
            set_condition(
                &mut st.conditions,
                CONDITION_LAUNCHED,
                "False",
                reason,
                &message,
                now,
            );
            patch_status(&lc.ctx, &name, &st).await?;
            lc.events
                .claim_warning(now, claim, reason, message.clone())
                .await;
            tracing::warn!(claim = %name, %reason, "launch failed: {message}");
            Ok(Action::requeue(Duration::from_secs(1)))
        }
    }
}

/// Label the claim with what was launched (instance type, zone, capacity type).
async fn record_launch(ctx: &Context, name: &str, inst: &Instance) -> Result<()> {
    let body = json!({"metadata": {"labels": {
        LABEL_INSTANCE_TYPE: inst.instance_type,
        LABEL_ZONE: inst.zone,
        LABEL_CAPACITY_TYPE: inst.capacity_type,
    }}});
    match claims_api(ctx)
        .patch(name, &PatchParams::default(), &Patch::Merge(&body))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if kube_status(&e) == Some(404) => Ok(()),
        Err(e) => Err(Error::kube(format!("nodeclaim {name}: labels"))(e)),
    }
}

/// The Node patch that registers it to the claim (labels, taints, owner), or `None` when it
/// already carries everything.
pub fn registration_patch(claim: &NodeClaim, node: &Node) -> Value {
    let mut labels: serde_json::Map<String, Value> = serde_json::Map::new();
    for (k, v) in claim.metadata.labels.clone().unwrap_or_default() {
        labels.insert(k, Value::String(v));
    }
    labels.insert(LABEL_REGISTERED.into(), Value::String("true".into()));
    let mut taints: Vec<Value> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .map(|ts| {
            ts.iter()
                .map(|t| serde_json::to_value(t).unwrap_or(Value::Null))
                .collect()
        })
        .unwrap_or_default();
    // The claim's taints (and startup taints) must be on the node before pods can land.
    for key in ["taints", "startupTaints"] {
        for t in claim
            .spec
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let same =
                |x: &Value| x.get("key") == t.get("key") && x.get("effect") == t.get("effect");
            if !taints.iter().any(same) {
                taints.push(t.clone());
            }
        }
    }
    let owner = json!([{
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodeClaim",
        "name": claim.metadata.name,
        "uid": claim.metadata.uid,
        "blockOwnerDeletion": true,
    }]);
    json!({
        "metadata": {
            "labels": labels,
            "ownerReferences": owner,
            "resourceVersion": node.metadata.resource_version,
        },
        "spec": {"taints": taints},
    })
}

async fn register(
    lc: &Lifecycle,
    claim: &NodeClaim,
    node: Option<Arc<Node>>,
    now: Timestamp,
) -> Result<Action> {
    let name = name_of(claim);
    let Some(node) = node else {
        return Ok(Action::await_change());
    };
    let node_name = node.metadata.name.clone().unwrap_or_default();
    let api: Api<Node> = Api::all(lc.ctx.client.clone());
    let mut current: Node = (*node).clone();
    let mut done = false;
    for _ in 0..3 {
        let body = registration_patch(claim, &current);
        match api
            .patch(&node_name, &PatchParams::default(), &Patch::Merge(&body))
            .await
        {
            Ok(_) => {
                done = true;
                break;
            }
            Err(e) if kube_status(&e) == Some(404) => return Ok(Action::await_change()),
            Err(e) if kube_status(&e) == Some(409) => match api.get(&node_name).await {
                Ok(n) => current = n,
                Err(e) if kube_status(&e) == Some(404) => return Ok(Action::await_change()),
                Err(e) => return Err(Error::kube(format!("get node {node_name}"))(e)),
            },
            Err(e) => return Err(Error::kube(format!("node {node_name}: register"))(e)),
        }
    }
    if !done {
        return Err(Error::Invalid(format!(
            "node {node_name}: still conflicting after 3 attempts; retrying later"
        )));
    }
    let mut st = claim.status.clone().unwrap_or_default();
    st.node_name = Some(node_name.clone());
    set_condition(
        &mut st.conditions,
        CONDITION_REGISTERED,
        "True",
        "Registered",
        "",
        now,
    );
    patch_status(&lc.ctx, &name, &st).await?;
    count(
        &lc.ctx,
        "karpenter_nodeclaims_registered_total",
        "NodeClaims whose Node registered.",
        claim,
    );
    tracing::info!(claim = %name, node = %node_name, "registered");
    Ok(Action::await_change())
}

/// Error policy of the lifecycle controller: back off and retry.
pub fn error_policy(_claim: Arc<NodeClaim>, err: &Error, lc: Arc<Lifecycle>) -> Action {
    lc.ctx.metrics.inc(
        "kedge_operator_reconcile_errors_total",
        "Failed reconciles by controller and error kind.",
        &[("controller", "nodeclaim"), ("kind", err.metric_label())],
    );
    tracing::warn!(error = %err, kind = err.metric_label(), "nodeclaim reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

/// Garbage collection: provider instances launched for a claim that no longer exists are
/// terminated. Returns the provider IDs it terminated.
pub async fn collect_garbage(
    provider: &dyn CloudProvider,
    claims: &Store<NodeClaim>,
) -> Result<Vec<String>> {
    let instances = provider.list().await?;
    let claims = claims.state();
    let mut gone = Vec::new();
    for i in instances {
        let Some(owner) = &i.claim_name else {
            continue;
        };
        let known = claims.iter().any(|c| {
            c.metadata.name.as_deref() == Some(owner.as_str())
                || c.status.as_ref().and_then(|s| s.provider_id.as_deref())
                    == Some(i.provider_id.as_str())
        });
        if known || i.state == "shutting-down" || i.state == "terminated" {
            continue;
        }
        tracing::info!(provider_id = %i.provider_id, claim = %owner, "garbage collection: instance without a NodeClaim");
        match provider.delete(&i.provider_id).await {
            Ok(()) | Err(ProviderError::NotFound(_)) => gone.push(i.provider_id.clone()),
            Err(e) => tracing::warn!(provider_id = %i.provider_id, "garbage collection: {e}"),
        }
    }
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{self, ApiServer, mock_client};
    use crate::provider::kwok::{Kwok, UnavailableOffering};
    use clock::ManualClock;
    use kube::runtime::{reflector, watcher};

    /// 2026-01-01T00:00:00Z.
    const T0: u64 = 1_767_225_600_000;

    fn claim(extra: Value) -> NodeClaim {
        let mut v = json!({
            "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
            "metadata": {
                "name": "general-abc", "uid": "claim-uid", "resourceVersion": "5",
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "finalizers": [TERMINATION_FINALIZER],
                "labels": {"karpenter.sh/nodepool": "general", "team": "a"},
            },
            "spec": {
                "requirements": [
                    {"key": LABEL_INSTANCE_TYPE, "operator": "In", "values": ["m5.xlarge", "m5.2xlarge"]},
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                ],
                "taints": [{"key": "dedicated", "value": "a", "effect": "NoSchedule"}],
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
            },
        });
        merge(&mut v, extra);
        serde_json::from_value(v).unwrap()
    }

    fn merge(a: &mut Value, b: Value) {
        match (a, b) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }

    fn launched_status() -> Value {
        json!({"status": {
            "providerID": "kwok://general-abc",
            "conditions": [{"type": "Launched", "status": "True", "reason": "Launched", "lastTransitionTime": "2026-01-01T00:00:05Z"}],
        }})
    }

    fn node(ready: bool, taints: Value) -> Node {
        let conds = if ready {
            json!([{"type": "Ready", "status": "True"}])
        } else {
            json!([])
        };
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "general-abc", "resourceVersion": "7", "labels": {"kubernetes.io/hostname": "general-abc"}},
            "spec": {"providerID": "kwok://general-abc", "taints": taints},
            "status": {"conditions": conds},
        }))
        .unwrap()
    }

    fn lifecycle(
        client: kube::Client,
        nodes: Vec<Node>,
        unavailable: &[&str],
    ) -> (Arc<Lifecycle>, ManualClock) {
        let clock = ManualClock::new(Timestamp::from_millis(T0));
        let c: Arc<dyn clock::Clock> = Arc::new(clock.clone());
        let ctx = Context {
            client: client.clone(),
            clock: c.clone(),
            metrics: Arc::new(crate::server::Metrics::default()),
            settings: Arc::new(crate::context::Settings::default()),
            pods: None,
        };
        let provider = Kwok::new(client, c, Arc::new(provision::catalog::Catalog::aws()))
            .with_unavailable(
                unavailable
                    .iter()
                    .map(|t| UnavailableOffering::instance_type(t)),
            );
        let (store, mut w) = reflector::store::<Node>();
        for n in nodes {
            w.apply_watcher_event(&watcher::Event::Apply(n));
        }
        (
            Arc::new(Lifecycle {
                ctx,
                provider: Arc::new(provider),
                nodes: store,
                events: Events::disabled(),
                compat: Some(crate::compat::ApiCompat {
                    policy_version: crate::compat::PolicyVersion::V1beta1,
                    server_version: "v1.20.2".into(),
                }),
            }),
            clock,
        )
    }

    async fn run(
        claim: NodeClaim,
        lc: Arc<Lifecycle>,
        server: ApiServer,
        scenario: impl AsyncFnOnce(ApiServer) -> ApiServer,
    ) -> Result<Action> {
        let (r, mut s) = fixtures::timeout(Duration::from_secs(5), async {
            tokio::join!(reconcile(Arc::new(claim), lc), scenario(server))
        })
        .await;
        s.expect_no_more(Duration::from_millis(200)).await;
        r
    }

    fn ok_node(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "resourceVersion": "8"}})
    }

    /// The Node as the API server returns it after the kwok launch.
    fn launched_node(t: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Node",
               "metadata": {"name": "general-abc", "labels": {LABEL_INSTANCE_TYPE: t, LABEL_ZONE: "us-east-1a", LABEL_CAPACITY_TYPE: "on-demand"}},
               "spec": {"providerID": "kwok://general-abc"},
               "status": {"capacity": {"cpu": "4"}, "allocatable": {"cpu": "3920m"}}})
    }

    fn ok_claim() -> Value {
        json!({"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim", "metadata": {"name": "general-abc", "resourceVersion": "6"}, "spec": {}})
    }

    // ---- pure state machine ----

    #[test]
    fn states_and_decisions() {
        let now = Timestamp::from_millis(T0 + 10_000);
        let (s, n) = step(&claim(json!({"metadata": {"finalizers": []}})), None, now);
        assert_eq!((s, n), (State::Unfinalized, Next::AddFinalizer));
        assert_eq!(
            step(&claim(json!({})), None, now),
            (State::Launching, Next::Launch)
        );
        // Launched, no node: wait for registration until the TTL.
        let c = claim(launched_status());
        let (s, n) = step(&c, None, now);
        assert_eq!(
            s,
            State::Launched {
                since: Timestamp::from_millis(T0 + 5_000)
            }
        );
        assert_eq!(
            n,
            Next::Wait(Some(REGISTRATION_TTL - Duration::from_secs(5)))
        );
        let late = Timestamp::from_millis(T0 + 5_000).add(REGISTRATION_TTL);
        assert!(
            matches!(step(&c, None, late).1, Next::DeleteClaim { reason, .. } if reason == "RegistrationTimeout")
        );
        // The node joined.
        let n0 = node(false, json!([]));
        assert_eq!(
            step(&c, Some(&n0), now).1,
            Next::Register {
                node: "general-abc".into()
            }
        );
        // Registered; not ready → wait; ready without startup/ephemeral taints → initialize.
        let mut reg = launched_status();
        reg["status"]["conditions"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "Registered", "status": "True"}));
        let rc = claim(reg.clone());
        assert_eq!(
            observe(&rc, Some(&n0), now),
            State::Registered {
                node: "general-abc".into()
            }
        );
        assert!(!node_initialized(&rc, &n0));
        let tainted = node(
            true,
            json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]),
        );
        assert!(!node_initialized(&rc, &tainted));
        assert!(node_initialized(&rc, &node(true, json!([]))));
        // Registered but the node is gone: the claim follows.
        assert_eq!(
            step(&rc, None, now),
            (
                State::NodeGone,
                Next::DeleteClaim {
                    reason: "NodeDeleted".into(),
                    message: "the claim's Node was deleted".into()
                }
            )
        );
        // Insufficient capacity: deleted at once; other final errors after the TTL.
        let ice = claim(
            json!({"status": {"conditions": [{"type": "Launched", "status": "False", "reason": REASON_INSUFFICIENT_CAPACITY, "lastTransitionTime": "2026-01-01T00:00:10Z"}]}}),
        );
        assert!(matches!(step(&ice, None, now).1, Next::DeleteClaim { .. }));
        let bad = claim(
            json!({"status": {"conditions": [{"type": "Launched", "status": "False", "reason": REASON_LAUNCH_FAILED, "lastTransitionTime": "2026-01-01T00:00:10Z"}]}}),
        );
        assert_eq!(step(&bad, None, now).1, Next::Wait(Some(LAUNCH_FAILED_TTL)));
        assert!(matches!(
            step(&bad, None, now.add(LAUNCH_FAILED_TTL)).1,
            Next::DeleteClaim { .. }
        ));
        // Termination: drain + delete node, then terminate until NotFound, then release.
        let mut del = launched_status();
        del["metadata"] = json!({"deletionTimestamp": "2026-01-01T00:01:00Z"});
        let dc = claim(del);
        assert_eq!(
            step(&dc, Some(&n0), now).1,
            Next::DrainAndDeleteNode {
                node: "general-abc".into()
            }
        );
        assert_eq!(
            step(&dc, None, now).1,
            Next::TerminateInstance {
                provider_id: "kwok://general-abc".into()
            }
        );
        let never = claim(json!({"metadata": {"deletionTimestamp": "2026-01-01T00:01:00Z"}}));
        assert_eq!(step(&never, None, now).1, Next::RemoveFinalizer);
        let released = claim(
            json!({"metadata": {"deletionTimestamp": "2026-01-01T00:01:00Z", "finalizers": []}}),
        );
        assert_eq!(
            step(&released, None, now),
            (State::Released, Next::Wait(None))
        );
    }

    #[test]
    fn conditions_keep_transition_time_while_unchanged() {
        let mut cs = Vec::new();
        set_condition(
            &mut cs,
            "Ready",
            "Unknown",
            "A",
            "",
            Timestamp::from_millis(T0),
        );
        set_condition(
            &mut cs,
            "Ready",
            "Unknown",
            "B",
            "",
            Timestamp::from_millis(T0 + 60_000),
        );
        assert_eq!(
            cs[0].last_transition_time,
            Some(json!("2026-01-01T00:00:00Z"))
        );
        set_condition(
            &mut cs,
            "Ready",
            "True",
            "C",
            "",
            Timestamp::from_millis(T0 + 60_000),
        );
        assert_eq!(
            cs[0].last_transition_time,
            Some(json!("2026-01-01T00:01:00Z"))
        );
        assert_eq!(cs.len(), 1);
    }

    // ---- reconciler branches against the API server ----

    #[tokio::test]
    async fn launch_creates_node_then_records_instance() {
        let (client, server) = mock_client();
        let (lc, _) = lifecycle(client, vec![], &[]);
        let act = run(claim(json!({})), lc, server, async |mut s| {
            let body = s
                .expect("POST", "/api/v1/nodes?", 201, launched_node("m5.xlarge"))
                .await;
            assert_eq!(body["metadata"]["name"], "general-abc");
            assert_eq!(
                body["metadata"]["labels"][LABEL_INSTANCE_TYPE], "m5.xlarge",
                "cheapest first"
            );
            assert_eq!(body["metadata"]["labels"]["team"], "a");
            assert_eq!(body["spec"]["providerID"], "kwok://general-abc");
            let body = s
                .expect(
                    "PATCH",
                    "/apis/karpenter.sh/v1/nodeclaims/general-abc?",
                    200,
                    ok_claim(),
                )
                .await;
            assert_eq!(body["metadata"]["labels"][LABEL_INSTANCE_TYPE], "m5.xlarge");
            let body = s
                .expect(
                    "PATCH",
                    "/apis/karpenter.sh/v1/nodeclaims/general-abc/status?",
                    200,
                    ok_claim(),
                )
                .await;
            assert_eq!(body["status"]["providerID"], "kwok://general-abc");
            assert_eq!(body["status"]["conditions"][0]["type"], "Launched");
            assert_eq!(body["status"]["conditions"][0]["status"], "True");
            assert_eq!(
                body["status"]["conditions"][0]["lastTransitionTime"],
                "2026-01-01T00:00:00Z"
            );
            s
        })
        .await
        .unwrap();
        assert_eq!(act, Action::requeue(REGISTRATION_TTL));
    }

    #[tokio::test]
    async fn launch_falls_back_on_insufficient_capacity() {
        let (client, server) = mock_client();
        let (lc, _) = lifecycle(client, vec![], &["m5.xlarge"]);
        run(claim(json!({})), lc.clone(), server, async |mut s| {
            let body = s
                .expect("POST", "/api/v1/nodes?", 201, launched_node("m5.2xlarge"))
                .await;
            assert_eq!(
                body["metadata"]["labels"][LABEL_INSTANCE_TYPE],
                "m5.2xlarge"
            );
            s.expect(
                "PATCH",
                "/apis/karpenter.sh/v1/nodeclaims/general-abc?",
                200,
                ok_claim(),
            )
            .await;
            s.expect(
                "PATCH",
                "/apis/karpenter.sh/v1/nodeclaims/general-abc/status?",
                200,
                ok_claim(),
            )
            .await;
            s
        })
        .await
        .unwrap();
        // The failed offering is no longer offered to the planner.
        let cat = lc.provider.catalog();
        assert!(
            cat.get("m5.xlarge")
                .unwrap()
                .offerings
                .iter()
                .filter(|o| &*o.capacity_type == "on-demand")
                .all(|o| !o.available)
        );
    }

    #[tokio::test]
    async fn final_launch_error_marks_launched_false_then_deletes_the_claim() {
        let (client, server) = mock_client();
        let (lc, _) = lifecycle(client, vec![], &["m5.xlarge", "m5.2xlarge"]);
        let mut status = Value::Null;
        run(claim(json!({})), lc.clone(), server, async |mut s| {
            status = s
                .expect(
                    "PATCH",
                    "/apis/karpenter.sh/v1/nodeclaims/general-abc/status?",
                    200,
                    ok_claim(),
                )
                .await;
            s
        })
        .await
        .unwrap();
        let c = &status["status"]["conditions"][0];
        assert_eq!(
            (
                c["type"].as_str(),
                c["status"].as_str(),
                c["reason"].as_str()
            ),
            (
                Some("Launched"),
                Some("False"),
                Some(REASON_INSUFFICIENT_CAPACITY)
            )
        );
        assert!(c["message"].as_str().unwrap().contains("m5.2xlarge"), "{c}");
        // Next reconcile sees Launched=False/InsufficientCapacity: the claim is deleted (404:
        // already gone is fine).
        let failed = claim(status.clone());
        let (client, server) = mock_client();
        let (lc, _) = lifecycle(client, vec![], &[]);
        let act = run(failed, lc, server, async |mut s| {
            s.expect(
                "DELETE",
                "/apis/karpenter.sh/v1/nodeclaims/general-abc?",
                404,
                fixtures::not_found("nodeclaims", "general-abc"),
            )
            .await;
            s
        })
        .await
        .unwrap();
        assert_eq!(act, Action::await_change());
    }

    #[tokio::test]
    async fn registration_copies_labels_taints_owner_and_sets_node_name() {
        let (client, server) = mock_client();
        let (lc, _) = lifecycle(
            client,
            vec![node(
                false,
                json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]),
            )],
            &[],
        );
        run(claim(launched_status()), lc, server, async |mut s| {
            let body = s
                .expect(
                    "PATCH",
                    "/api/v1/nodes/general-abc?",
                    200,
                    ok_node("general-abc"),
                )
                .await;
            assert_eq!(body["metadata"]["labels"][LABEL_REGISTERED], "true");
            assert_eq!(body["metadata"]["labels"]["team"], "a");
            assert_eq!(body["metadata"]["resourceVersion"], "7", "optimistic lock");
            assert_eq!(body["metadata"]["ownerReferences"][0]["kind"], "NodeClaim");
            assert_eq!(body["metadata"]["ownerReferences"][0]["uid"], "claim-uid");
            let keys: Vec<&str> = body["spec"]["taints"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["key"].as_str().unwrap())
                .collect();
            assert_eq!(keys, vec!["node.kubernetes.io/not-ready", "dedicated"]);
            let body = s
                .expect(
                    "PATCH",
                    "/apis/karpenter.sh/v1/nodeclaims/general-abc/status?",
                    200,
                    ok_claim(),
                )
                .await;
            assert_eq!(body["status"]["nodeName"], "general-abc");
            let reg = body["status"]["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == "Registered")
                .unwrap()
                .clone();
            assert_eq!(reg["status"], "True");
            s
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn registration_retries_a_stale_node_update() {
        let (client, server) = mock_client();
        let (lc, _) = lifecycle(client, vec![node(false, json!([]))], &[]);
        run(claim(launched_status()), lc, server, async |mut s| {
            s.expect(
                "PATCH",
                "/api/v1/nodes/general-abc?",
                409,
                fixtures::conflict("nodes", "general-abc"),
            )
            .await;
            let mut fresh = serde_json::to_value(node(false, json!([]))).unwrap();
            fresh["metadata"]["resourceVersion"] = json!("9");
            s.expect("GET", "/api/v1/nodes/general-abc", 200, fresh)
                .await;
            let body = s
                .expect(
                    "PATCH",
                    "/api/v1/nodes/general-abc?",
                    200,
                    ok_node("general-abc"),
                )
                .await;
            assert_eq!(body["metadata"]["resourceVersion"], "9");
            s.expect(
                "PATCH",
                "/apis/karpenter.sh/v1/nodeclaims/general-abc/status?",
                200,
                ok_claim(),
            )
            .await;
            s
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn initialization_labels_the_node_and_marks_ready() {
        let (client, server) = mock_client();
        let (lc, _) = lifecycle(
            client,
            vec![node(
                true,
                json!([{"key": "dedicated", "value": "a", "effect": "NoSchedule"}]),
            )],
            &[],
        );
        let mut reg = launched_status();
        reg["status"]["conditions"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "Registered", "status": "True"}));
        run(claim(reg), lc, server, async |mut s| {
            let body = s
                .expect(
                    "PATCH",
                    "/api/v1/nodes/general-abc?",
                    200,
                    ok_node("general-abc"),
                )
                .await;
            assert_eq!(
                body,
                json!({"metadata": {"labels": {LABEL_INITIALIZED: "true"}}})
            );
            let body = s
                .expect(
                    "PATCH",
                    "/apis/karpenter.sh/v1/nodeclaims/general-abc/status?",
                    200,
                    ok_claim(),
                )
                .await;
            let st = |t: &str| {
                body["status"]["conditions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["type"] == t)
                    .map(|c| c["status"].clone())
            };
            assert_eq!(st("Initialized"), Some(json!("True")));
            assert_eq!(st("Ready"), Some(json!("True")));
            s
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn initialization_of_a_node_already_gone_is_not_an_error() {
        let (client, server) = mock_client();
        let (lc, _) = lifecycle(client, vec![node(true, json!([]))], &[]);
        let mut reg = launched_status();
        reg["status"]["conditions"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "Registered", "status": "True"}));
        let act = run(claim(reg), lc, server, async |mut s| {
            s.expect(
                "PATCH",
                "/api/v1/nodes/general-abc?",
                404,
                fixtures::not_found("nodes", "general-abc"),
            )
            .await;
            s
        })
        .await
        .unwrap();
        assert_eq!(act, Action::await_change());
    }

    #[tokio::test]
    async fn termination_deletes_node_then_instance_then_releases_the_finalizer() {
        let mut del = launched_status();
        del["metadata"] = json!({"deletionTimestamp": "2026-01-01T00:01:00Z"});
        // 1: the node exists: it is deleted.
        let (client, server) = mock_client();
        let (lc, _) = lifecycle(client, vec![node(true, json!([]))], &[]);
        let act = run(claim(del.clone()), lc, server, async |mut s| {
            // Cordon and drain (nodes::disruption): the node has no pods left.
            s.expect(
                "GET",
                "/api/v1/nodes/general-abc",
                200,
                serde_json::to_value(node(true, json!([]))).unwrap(),
            )
            .await;
            let taint = s
                .expect(
                    "PATCH",
                    "/api/v1/nodes/general-abc?",
                    200,
                    ok_node("general-abc"),
                )
                .await;
            assert!(
                taint.to_string().contains("karpenter.sh/disrupted"),
                "{taint}"
            );
            s.expect(
                "GET",
                "/api/v1/pods?&fieldSelector=spec.nodeName%3Dgeneral-abc",
                200,
                json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": []}),
            )
            .await;
            s.expect(
                "DELETE",
                "/api/v1/nodes/general-abc?",
                200,
                ok_node("general-abc"),
            )
            .await;
            s
        })
        .await
        .unwrap();
        assert_eq!(act, Action::requeue(Duration::from_secs(1)));
        // 2: the node is gone; the provider's delete answers NotFound → finalizer removed,
        // a stale claim (409) is re-read and the removal retried.
        let (client, server) = mock_client();
        let (lc, _) = lifecycle(client, vec![], &[]);
        run(claim(del.clone()), lc, server, async |mut s| {
            s.expect(
                "DELETE",
                "/api/v1/nodes/general-abc?",
                404,
                fixtures::not_found("nodes", "general-abc"),
            )
            .await;
            let body = s
                .expect(
                    "PATCH",
                    "/apis/karpenter.sh/v1/nodeclaims/general-abc?",
                    409,
                    fixtures::conflict("nodeclaims", "general-abc"),
                )
                .await;
            assert_eq!(
                body,
                json!({"metadata": {"finalizers": [], "resourceVersion": "5"}})
            );
            let mut fresh = serde_json::to_value(claim(del.clone())).unwrap();
            fresh["apiVersion"] = json!("karpenter.sh/v1");
            fresh["kind"] = json!("NodeClaim");
            fresh["metadata"]["resourceVersion"] = json!("6");
            fresh["metadata"]["finalizers"] = json!(["other.io/keep", TERMINATION_FINALIZER]);
            s.expect(
                "GET",
                "/apis/karpenter.sh/v1/nodeclaims/general-abc",
                200,
                fresh,
            )
            .await;
            let body = s
                .expect(
                    "PATCH",
                    "/apis/karpenter.sh/v1/nodeclaims/general-abc?",
                    200,
                    ok_claim(),
                )
                .await;
            assert_eq!(
                body,
                json!({"metadata": {"finalizers": ["other.io/keep"], "resourceVersion": "6"}})
            );
            s
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_claim_without_the_finalizer_gets_it_first() {
        let (client, server) = mock_client();
        let (lc, _) = lifecycle(client, vec![], &[]);
        run(claim(json!({"metadata": {"finalizers": []}})), lc, server, async |mut s| {
            let body = s.expect("PATCH", "/apis/karpenter.sh/v1/nodeclaims/general-abc?", 200, ok_claim()).await;
            assert_eq!(body, json!({"metadata": {"finalizers": [TERMINATION_FINALIZER], "resourceVersion": "5"}}));
            s
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn garbage_collection_terminates_instances_without_a_claim() {
        let (client, mut server) = mock_client();
        let (lc, _) = lifecycle(client, vec![], &[]);
        let (claims, mut w) = reflector::store::<NodeClaim>();
        w.apply_watcher_event(&watcher::Event::Apply(claim(launched_status())));
        let kwok_node = |name: &str| {
            json!({"metadata": {"name": name, "annotations": {"kwok.kedge.dev/nodeclaim": name}},
                   "spec": {"providerID": format!("kwok://{name}")}})
        };
        let scenario = tokio::spawn(async move {
            server
                .expect("GET", "/api/v1/nodes?", 200, json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {},
                    "items": [kwok_node("general-abc"), kwok_node("orphan-1"),
                              {"metadata": {"name": "real"}, "spec": {"providerID": "aws:///us-east-1a/i-1"}}]}))
                .await;
            server
                .expect(
                    "DELETE",
                    "/api/v1/nodes/orphan-1?",
                    200,
                    ok_node("orphan-1"),
                )
                .await;
            server.expect_no_more(Duration::from_millis(200)).await;
        });
        let gone = fixtures::timeout(
            Duration::from_secs(5),
            collect_garbage(lc.provider.as_ref(), &claims),
        )
        .await
        .unwrap();
        scenario.await.unwrap();
        assert_eq!(gone, vec!["kwok://orphan-1".to_string()]);
    }
}
