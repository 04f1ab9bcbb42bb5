//! Carrying out the engine's node effects against the API server. Nothing here decides *when*
//! or *which*; it only reports what the API answered, into the same event recorder the engine
//! writes its decisions to.
//!
//! - [`Effect::Launch`] → the NodeClaim named by the engine ([`nodeclaim`], the one builder):
//!   the lifecycle controller launches it through the cloud provider. A created claim counts
//!   as in flight until the claim watch delivers it ([`Effects::add_created`]). A name that
//!   exists already (409) is logged and left to the next step; a refused create tells the
//!   engine ([`engine::NodeEngine::create_failed`]), which gives up a disruption command that
//!   waited for it as its replacement. The pending pods the claim is for get a `Nominated`
//!   event, as Karpenter writes it.
//! - [`Effect::Cordon`] / [`Effect::Uncordon`] → the `karpenter.sh/disrupted:NoSchedule`
//!   taint ([`super::drain`]).
//! - [`Effect::Evict`] → the Eviction API, one pod at a time, with the PDB backoff
//!   ([`super::drain::EvictionBackoff`]); a refusal is a `DisruptionBlocked` event on the node
//!   and its claim.
//! - [`Effect::Delete`] → delete the node's NodeClaim; its termination finalizer drains what
//!   is left, terminates the instance and removes the Node.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use clock::Timestamp;
use engine::{Effect, Launch, LaunchReason, NodeEngine, ObjectRef, Recorder, Topic};
use kube::api::Api;
use model::karpenter::LABEL_INSTANCE_TYPE;
use serde_json::{Value, json};

use super::cluster::{Snapshot, has_disrupted_taint};
use super::drain::{self, Evicted, EvictionBackoff};
use super::lifecycle::TERMINATION_FINALIZER;
use crate::compat::ApiCompat;
use crate::crd::NodeClaim;
use crate::error::kube_status;
use crate::server::Metrics;

/// A claim this process created counts as in flight until the claim watch delivers it, at
/// most this long.
const CREATED_GRACE: Duration = Duration::from_secs(10);

/// The NodeClaim for a launch: named by the engine, the NodePool's template labels and
/// `karpenter.sh/nodepool`, its hash annotation, the termination finalizer, owned by the
/// NodePool, requirements narrowed to the planned instance types (at most 60, cheapest
/// first: the launch falls back down the list).
pub fn nodeclaim(launch: &Launch, pool: &model::karpenter::NodePool, pool_uid: &str) -> NodeClaim {
    let nc = launch.claim.to_nodeclaim(pool);
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
    let meta = json!({
        "name": launch.name,
        "labels": nc.metadata.labels,
        "annotations": nc.metadata.annotations,
        "finalizers": [TERMINATION_FINALIZER],
        "ownerReferences": [{
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodePool",
            "name": pool.name(),
            "uid": pool_uid,
            "blockOwnerDeletion": true,
        }],
    });
    NodeClaim {
        metadata: serde_json::from_value(meta).unwrap_or_default(),
        spec,
        status: None,
    }
}

/// What carrying out one step's effects came to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// NodeClaims created.
    pub created: Vec<String>,
    /// NodeClaims deleted.
    pub deleted: Vec<String>,
    /// Pods whose eviction was accepted.
    pub evicted: Vec<String>,
    /// What failed or was refused, one line each (also logged, and an event where it
    /// concerns an object).
    pub failed: Vec<String>,
}

/// The effect executor's memory between steps.
pub struct Effects {
    client: kube::Client,
    /// The served Eviction API; `None`: the server serves none, pods are not evicted.
    compat: Option<ApiCompat>,
    metrics: Arc<Metrics>,
    backoff: EvictionBackoff,
    created: Vec<(Arc<NodeClaim>, Timestamp)>,
}

impl Effects {
    pub fn new(client: kube::Client, compat: Option<ApiCompat>, metrics: Arc<Metrics>) -> Self {
        Effects {
            client,
            compat,
            metrics,
            backoff: EvictionBackoff::default(),
            created: Vec::new(),
        }
    }

    /// Add the claims this process created that `snap`'s claim store does not show yet.
    pub fn add_created(&mut self, snap: &mut Snapshot, now: Timestamp) {
        self.created.retain(|(c, at)| {
            now.since(*at) < CREATED_GRACE
                && !snap
                    .claims
                    .iter()
                    .any(|s| s.metadata.name == c.metadata.name)
        });
        snap.claims
            .extend(self.created.iter().map(|(c, _)| c.clone()));
    }

    /// Carry out `effects` in order. `pools` are the valid NodePools (for the NodeClaim
    /// builder), `pending` the keys of the pods kube-scheduler could not place (they get
    /// `Nominated` events).
    #[allow(clippy::too_many_arguments)]
    pub async fn apply(
        &mut self,
        now: Timestamp,
        effects: &[Effect],
        pools: &[model::karpenter::NodePool],
        snap: &Snapshot,
        pending: &HashSet<String>,
        engine: &mut NodeEngine,
        rec: &mut Recorder,
    ) -> Outcome {
        let mut out = Outcome::default();
        self.backoff.prune(now);
        for e in effects {
            match e {
                Effect::Launch(l) => {
                    self.launch(now, l, pools, snap, pending, engine, rec, &mut out)
                        .await
                }
                Effect::Cordon { node } => {
                    let cached = snap
                        .nodes
                        .iter()
                        .find(|n| n.metadata.name.as_deref() == Some(node.as_str()));
                    if cached.is_some_and(|n| has_disrupted_taint(n)) {
                        continue;
                    }
                    if let Err(e) = drain::taint(&self.client, node).await {
                        fail(&mut out, format!("{e}"));
                    }
                }
                Effect::Uncordon { node } => {
                    let Some(n) = snap
                        .nodes
                        .iter()
                        .find(|n| n.metadata.name.as_deref() == Some(node.as_str()))
                    else {
                        continue;
                    };
                    if !has_disrupted_taint(n) {
                        continue;
                    }
                    match drain::uncordon(&self.client, n).await {
                        Ok(true) => {
                            tracing::info!(%node, "removed the karpenter.sh/disrupted taint")
                        }
                        // Changed since it was read (or gone): the next step looks again.
                        Ok(false) => {}
                        Err(e) => fail(&mut out, format!("{e}")),
                    }
                }
                Effect::Evict { node, pods } => {
                    self.evict(now, node, pods, snap, rec, &mut out).await
                }
                Effect::Delete { node, claim } => {
                    let Some(claim) = claim else {
                        tracing::info!(%node, "drained, but no NodeClaim of ours: left in place");
                        continue;
                    };
                    match drain::delete_claim(&self.client, claim).await {
                        Ok(()) => {
                            tracing::info!(%node, %claim, "drained; NodeClaim deleted");
                            out.deleted.push(claim.clone());
                        }
                        Err(e) => fail(&mut out, format!("{e}")),
                    }
                }
                // The scale loops' effects are carried out by their own controllers.
                Effect::Scale { .. } | Effect::Jobs { .. } => {}
            }
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    async fn launch(
        &mut self,
        now: Timestamp,
        l: &Launch,
        pools: &[model::karpenter::NodePool],
        snap: &Snapshot,
        pending: &HashSet<String>,
        engine: &mut NodeEngine,
        rec: &mut Recorder,
        out: &mut Outcome,
    ) {
        let pool_name = &l.claim.nodepool;
        let Some(pool) = pools.iter().find(|p| p.name() == pool_name.as_str()) else {
            let why = format!("NodePool {pool_name} is gone");
            engine.create_failed(now, &l.name, &why, rec);
            fail(out, format!("NodeClaim {}: {why}", l.name));
            return;
        };
        let uid = snap
            .nodepools
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(pool_name.as_str()))
            .and_then(|p| p.metadata.uid.clone())
            .unwrap_or_default();
        let mut claim = nodeclaim(l, pool, &uid);
        let api: Api<NodeClaim> = Api::all(self.client.clone());
        match crate::create_discarding(&self.client, api.resource_url(), &claim).await {
            Ok(()) => {
                let reason = match l.reason {
                    LaunchReason::Replacement => "disruption",
                    LaunchReason::PendingPods | LaunchReason::Intent => "provisioning",
                };
                self.metrics.inc(
                    "karpenter_nodeclaims_created_total",
                    "NodeClaims created, by NodePool and reason.",
                    &[("nodepool", pool_name), ("reason", reason)],
                );
                tracing::info!(claim = %l.name, nodepool = %pool_name, ?l.reason, "NodeClaim created");
                for key in l.claim.pods.iter().filter(|k| pending.contains(*k)) {
                    let (ns, name) = key.split_once('/').unwrap_or(("default", key));
                    rec.record(
                        now,
                        Topic::Provision,
                        ObjectRef::namespaced("Pod", ns, name),
                        "Nominated",
                        format!("Pod should schedule on: nodeclaim/{}", l.name),
                    );
                }
                claim.metadata.creation_timestamp =
                    k8s_openapi::jiff::Timestamp::from_millisecond(now.as_millis() as i64)
                        .ok()
                        .map(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time);
                self.created.push((Arc::new(claim), now));
                out.created.push(l.name.clone());
            }
            Err(e) if kube_status(&e) == Some(409) => {
                // The name is taken (by an earlier create whose answer was lost, or another
                // writer): the claim store shows which, and the next step plans with it.
                tracing::info!(claim = %l.name, "NodeClaim exists already; the next step looks again");
                engine.create_failed(now, &l.name, "the name exists already", rec);
            }
            Err(e) => {
                let why = e.to_string();
                rec.warn(
                    now,
                    Topic::Provision,
                    ObjectRef::cluster("NodePool", pool_name),
                    "FailedCreateNodeClaim",
                    format!("NodeClaim {} could not be created: {why}", l.name),
                );
                engine.create_failed(now, &l.name, &why, rec);
                fail(
                    out,
                    format!(
                        "creating NodeClaim {} for NodePool {pool_name}: {why}",
                        l.name
                    ),
                );
            }
        }
    }

    async fn evict(
        &mut self,
        now: Timestamp,
        node: &str,
        pods: &[String],
        snap: &Snapshot,
        rec: &mut Recorder,
        out: &mut Outcome,
    ) {
        let Some(compat) = &self.compat else {
            fail(
                out,
                format!(
                    "node {node}: the API server serves no Eviction API; its pods are not evicted"
                ),
            );
            return;
        };
        let claim = snap
            .nodes
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(node))
            .and_then(|n| super::cluster::claim_for(n, &snap.claims))
            .and_then(|c| c.metadata.name.clone());
        for key in pods {
            match drain::evict(&self.client, compat, key, now, &mut self.backoff).await {
                Ok(Evicted::Done) => out.evicted.push(key.clone()),
                Ok(Evicted::Waiting(why)) if why == "evicted" => {}
                Ok(Evicted::Waiting(why)) => {
                    let msg = format!("Draining: eviction of {key} blocked: {why}");
                    rec.warn(
                        now,
                        Topic::Disrupt,
                        ObjectRef::cluster("Node", node),
                        "DisruptionBlocked",
                        msg.clone(),
                    );
                    if let Some(c) = &claim {
                        rec.warn(
                            now,
                            Topic::Disrupt,
                            ObjectRef::cluster("NodeClaim", c),
                            "DisruptionBlocked",
                            msg.clone(),
                        );
                    }
                    out.failed.push(format!("node {node}: {msg}"));
                }
                Err(e) => fail(out, format!("{e}")),
            }
        }
    }

    /// When a pod backing off may be evicted again.
    pub fn next_eviction(&self, now: Timestamp) -> Option<Timestamp> {
        self.backoff.next_attempt(now)
    }
}

fn fail(out: &mut Outcome, line: String) {
    tracing::warn!("{line}");
    out.failed.push(line);
}
