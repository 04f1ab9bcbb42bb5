//! Cordon and evict: the API calls a drain is made of, shared by the effects of a disruption
//! command ([`super::effects`]), the NodeClaim termination finalizer ([`drain_node`]) and the
//! AWS interruption queue ([`cordon_and_drain`]).
//!
//! - **Cordon** is the `karpenter.sh/disrupted:NoSchedule` taint (a strategic merge patch: the
//!   node's other taints stay); **uncordon** removes it with a merge patch pinned to the
//!   resourceVersion the taints were read at (a 409 leaves it for the next step).
//! - **Evict** goes through the Eviction API of the served policy version. A
//!   PodDisruptionBudget's 429 is respected, never forced: the pod is tried again after a
//!   backoff that doubles from 100 ms to 10 s ([`EvictionBackoff`], as Karpenter's eviction
//!   queue). The client must not retry 429s by itself (kube's `Config::default_retry`): see
//!   [`crate::compat::client_without_retry`].

use std::collections::BTreeMap;
use std::time::Duration;

use clock::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use super::cluster::{DISRUPTED_TAINT_KEY, claim_for, has_disrupted_taint, pod_key};
use crate::cached_node::CachedNode as Node;
use crate::cached_pod::CachedPod as Pod;
use crate::compat::{self, ApiCompat, EvictOutcome};
use crate::context::Context;
use crate::crd;
use crate::error::kube_status;
use crate::events::EventRecorder;
use crate::{Error, Result};

/// Per-pod eviction backoff after a 429 (exponential, Karpenter's eviction queue), and a short
/// hold after an accepted eviction so the pod is not evicted again before the watch shows it
/// terminating.
#[derive(Debug, Clone)]
pub struct EvictionBackoff {
    /// `ns/name` → (next attempt, current delay, why it waits).
    pods: BTreeMap<String, (Timestamp, Duration, String)>,
    pub min: Duration,
    pub max: Duration,
}

impl Default for EvictionBackoff {
    fn default() -> Self {
        EvictionBackoff {
            pods: BTreeMap::new(),
            min: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

/// After an accepted eviction the pod is left alone this long (its deletion reaches the
/// cache within that).
const EVICTED_HOLD: Duration = Duration::from_secs(5);

impl EvictionBackoff {
    /// `Err(why)` while `pod` waits.
    pub fn ready(&self, pod: &str, now: Timestamp) -> std::result::Result<(), String> {
        match self.pods.get(pod) {
            Some((at, _, why)) if now < *at => Err(why.clone()),
            _ => Ok(()),
        }
    }

    pub fn refused(&mut self, pod: &str, now: Timestamp, why: String) {
        let delay = match self.pods.get(pod) {
            Some((_, d, _)) => (*d * 2).min(self.max),
            None => self.min,
        };
        self.pods
            .insert(pod.to_string(), (now.add(delay), delay, why));
    }

    pub fn evicted(&mut self, pod: &str, now: Timestamp) {
        self.pods.insert(
            pod.to_string(),
            (now.add(EVICTED_HOLD), Duration::ZERO, "evicted".into()),
        );
    }

    /// Forget pods whose wait is long over (they are gone, or will be looked at afresh).
    pub fn prune(&mut self, now: Timestamp) {
        let keep = self.max * 6;
        self.pods.retain(|_, (at, _, _)| now.since(*at) < keep);
    }

    /// The earliest next attempt after `now`, if a pod waits.
    pub fn next_attempt(&self, now: Timestamp) -> Option<Timestamp> {
        self.pods
            .values()
            .map(|(at, _, _)| *at)
            .filter(|at| *at > now)
            .min()
    }
}

pub fn taint_patch() -> Value {
    // Strategic merge: `taints` merge on `key`, so other taints stay and a concurrent writer
    // is not overwritten.
    json!({"spec": {"taints": [{"key": DISRUPTED_TAINT_KEY, "effect": "NoSchedule"}]}})
}

/// Taint `node` `karpenter.sh/disrupted:NoSchedule`. `false` when the node does not exist.
pub async fn taint(client: &kube::Client, node: &str) -> Result<bool> {
    let api: Api<Node> = Api::all(client.clone());
    let req = kube::core::Request::new(api.resource_url()).patch(
        node,
        &PatchParams::default(),
        &Patch::Strategic(taint_patch()),
    );
    match crate::write_discarding(client, req).await {
        Ok(()) => Ok(true),
        Err(e) if kube_status(&e) == Some(404) => Ok(false),
        Err(e) => Err(Error::kube(format!("tainting node {node}"))(e)),
    }
}

/// Read `node` and taint it unless the taint is there. `false` when the node does not exist.
pub async fn cordon(client: &kube::Client, node: &str) -> Result<bool> {
    let api: Api<Node> = Api::all(client.clone());
    let n = match api.get(node).await {
        Ok(n) => n,
        Err(e) if kube_status(&e) == Some(404) => return Ok(false),
        Err(e) => return Err(Error::kube(format!("reading node {node}"))(e)),
    };
    if has_disrupted_taint(&n) {
        return Ok(true);
    }
    taint(client, node).await
}

/// Take our taint off `n` (as the cache shows it); `false` when the node changed since (409:
/// the next step looks again) or is gone.
pub async fn uncordon(client: &kube::Client, n: &Node) -> Result<bool> {
    let name = n.metadata.name.as_deref().unwrap_or("");
    let taints: Vec<_> = n
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.key != DISRUPTED_TAINT_KEY)
        .collect();
    // A merge patch replaces the whole list; carrying the resourceVersion it was read at makes
    // it fail (409) instead of overwriting a taint list someone changed since.
    let rv = n.metadata.resource_version.clone().unwrap_or_default();
    let patch = json!({"metadata": {"resourceVersion": rv}, "spec": {"taints": taints}});
    let api: Api<Node> = Api::all(client.clone());
    let req = kube::core::Request::new(api.resource_url()).patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(&patch),
    );
    match crate::write_discarding(client, req).await {
        Ok(()) => Ok(true),
        Err(e) if matches!(kube_status(&e), Some(404 | 409)) => Ok(false),
        Err(e) => Err(Error::kube(format!(
            "removing the disrupted taint of {name}"
        ))(e)),
    }
}

/// What evicting one pod came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evicted {
    /// Accepted, or the pod is gone already.
    Done,
    /// Not tried or refused: why (a PDB's message, or the backoff it still waits for).
    Waiting(String),
}

/// Evict `ns/name` unless it is backing off; a 429 starts or doubles its backoff.
pub async fn evict(
    client: &kube::Client,
    compat: &ApiCompat,
    key: &str,
    now: Timestamp,
    backoff: &mut EvictionBackoff,
) -> Result<Evicted> {
    if let Err(why) = backoff.ready(key, now) {
        return Ok(Evicted::Waiting(why));
    }
    let (ns, name) = key.split_once('/').unwrap_or(("default", key));
    Ok(match compat::evict(client, compat, ns, name, None).await? {
        EvictOutcome::Evicted => {
            backoff.evicted(key, now);
            Evicted::Done
        }
        EvictOutcome::Gone => Evicted::Done,
        EvictOutcome::Blocked(why) => {
            backoff.refused(key, now, why.clone());
            Evicted::Waiting(why)
        }
    })
}

/// Where a node's drain stands.
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

fn is_critical(p: &Pod) -> bool {
    matches!(
        p.spec
            .as_ref()
            .and_then(|s| s.priority_class_name.as_deref()),
        Some("system-cluster-critical" | "system-node-critical")
    )
}

fn movable(p: &Pod) -> bool {
    let owned_by_ds = p
        .metadata
        .owner_references
        .as_ref()
        .is_some_and(|o| o.iter().any(|r| r.kind == "DaemonSet"));
    let mirror = p
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
    let terminal = matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    !owned_by_ds && !mirror && !terminal
}

fn do_not_disrupt(p: &Pod) -> bool {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(model::kube::DO_NOT_DISRUPT))
        .is_some_and(|v| v == "true")
}

/// The termination finalizer's drain: cordon `node` and evict every pod that can be evicted
/// now (not DaemonSet or mirror pods; non-critical before critical; `do-not-disrupt` pods are
/// not evicted; a PDB's 429 leaves the pod for a later call). `Done` when only DaemonSet pods
/// or nothing remain, or the node no longer exists. Stateless: the caller's requeue is the
/// retry backoff. (A disruption command's drain is the engine's: [`super::effects`].)
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
    )
    .await
}

/// [`drain_node`] with a backoff kept by the caller.
pub async fn drain_with(
    client: &kube::Client,
    compat: &ApiCompat,
    node: &str,
    now: Timestamp,
    backoff: &mut EvictionBackoff,
) -> Result<DrainProgress> {
    if !cordon(client, node).await? {
        return Ok(DrainProgress::Done);
    }
    let pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await
        .map_err(Error::kube(format!("listing pods on node {node}")))?
        .items;
    let movable: Vec<&Pod> = pods.iter().filter(|p| movable(p)).collect();
    // Karpenter evicts non-critical pods first, critical ones once those are gone.
    let non_critical_left = movable
        .iter()
        .any(|p| !is_critical(p) && !do_not_disrupt(p));
    let mut remaining = 0;
    let mut blocked = Vec::new();
    for p in movable {
        let key = pod_key(p);
        remaining += 1;
        if p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if do_not_disrupt(p) {
            blocked.push(format!("{key}: has {}", model::kube::DO_NOT_DISRUPT));
            continue;
        }
        if non_critical_left && is_critical(p) {
            continue;
        }
        match evict(client, compat, &key, now, backoff).await? {
            Evicted::Done => {}
            Evicted::Waiting(why) => blocked.push(format!("{key}: {why}")),
        }
    }
    Ok(if remaining == 0 {
        DrainProgress::Done
    } else {
        DrainProgress::Waiting { remaining, blocked }
    })
}

/// The AWS interruption queue's action (spot interruption, scheduled stop, …): cordon the
/// node with `provider_id` and delete its NodeClaim, whose termination finalizer drains it
/// (Karpenter's interruption controller does the same). A node without a claim is only
/// cordoned: it is not kedge's to delete. Returns the node's name, `None` if no node has
/// that provider ID.
pub async fn cordon_and_drain(
    ctx: &Context,
    events: &EventRecorder,
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
    let claims: Vec<std::sync::Arc<crd::NodeClaim>> =
        Api::<crd::NodeClaim>::all(ctx.client.clone())
            .list(&ListParams::default())
            .await
            .map_err(Error::kube("listing nodeclaims"))?
            .items
            .into_iter()
            .map(std::sync::Arc::new)
            .collect();
    let now = ctx.clock.now();
    let msg = format!("Interruption: {reason}; cordoned and draining");
    let event = |kind, name: &str| engine::Event {
        at: now,
        topic: engine::Topic::Node,
        object: engine::ObjectRef::cluster(kind, name),
        warning: true,
        reason: "Interrupted",
        message: msg.clone(),
    };
    events
        .publish_logged(&event("Node", &name), node.metadata.uid.as_deref())
        .await;
    if let Some(c) = claim_for(node, &claims) {
        let cname = c.metadata.name.clone().unwrap_or_default();
        delete_claim(&ctx.client, &cname).await?;
        events
            .publish_logged(&event("NodeClaim", &cname), c.metadata.uid.as_deref())
            .await;
    }
    Ok(Some(name))
}

/// Delete NodeClaim `name` (gone already is fine): its termination finalizer drains the node,
/// terminates the instance and removes the Node.
pub async fn delete_claim(client: &kube::Client, name: &str) -> Result<()> {
    let api = Api::<crd::NodeClaim>::all(client.clone());
    let req = kube::core::Request::new(api.resource_url()).delete(name, &DeleteParams::default());
    match crate::write_discarding(client, req).await {
        Ok(_) => Ok(()),
        Err(e) if kube_status(&e) == Some(404) => Ok(()),
        Err(e) => Err(Error::kube(format!("deleting nodeclaim {name}"))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compat::PolicyVersion;
    use crate::fixtures::{mock_client, not_found, pdb_blocked, timeout};

    /// 2026-11-28T12:00:00Z
    const T0: u64 = 1_795_867_200_000;

    fn compat() -> ApiCompat {
        ApiCompat {
            policy_version: PolicyVersion::V1beta1,
            server_version: "v1.20.2".into(),
        }
    }

    fn node_json(taints: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Node",
               "metadata": {"name": "n1", "uid": "uid-n1", "resourceVersion": "7"},
               "spec": {"providerID": "kwok://n1", "taints": taints}})
    }

    fn tainted() -> Value {
        node_json(json!([{"key": DISRUPTED_TAINT_KEY, "effect": "NoSchedule"}]))
    }

    fn pod_json(ns: &str, name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": ns},
               "spec": {"nodeName": "n1", "containers": [{"name": "c"}]},
               "status": {"phase": "Running"}})
    }

    fn list(items: Vec<Value>) -> Value {
        json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"}, "items": items})
    }

    const PODS_ON_N1: &str = "/api/v1/pods?&fieldSelector=spec.nodeName%3Dn1";

    #[tokio::test]
    async fn cordon_adds_the_disrupted_taint_once() {
        let (client, mut api) = mock_client();
        let code = tokio::spawn(async move {
            (
                cordon(&client, "n1").await.unwrap(),
                cordon(&client, "n1").await.unwrap(),
                cordon(&client, "gone").await.unwrap(),
            )
        });
        timeout(Duration::from_secs(5), async {
            let other = json!([{"key": "team", "value": "a", "effect": "NoSchedule"}]);
            api.expect("GET", "/api/v1/nodes/n1", 200, node_json(other.clone()))
                .await;
            let r = api.next(200, node_json(other)).await;
            assert_eq!(
                (r.method.as_str(), r.uri.as_str()),
                ("PATCH", "/api/v1/nodes/n1?")
            );
            assert_eq!(
                r.content_type.as_deref(),
                Some("application/strategic-merge-patch+json"),
                "a strategic merge keeps the node's other taints"
            );
            assert_eq!(r.body, taint_patch());
            api.expect("GET", "/api/v1/nodes/n1", 200, tainted()).await;
            api.expect("GET", "/api/v1/nodes/gone", 404, not_found("nodes", "gone"))
                .await;
            api.expect_no_more(Duration::from_millis(50)).await;
        })
        .await;
        assert_eq!(code.await.unwrap(), (true, true, false));
    }

    #[tokio::test]
    async fn uncordon_is_pinned_to_the_version_it_read() {
        let (client, mut api) = mock_client();
        let n: Node = serde_json::from_value(node_json(json!([
            {"key": "team", "value": "a", "effect": "NoSchedule"},
            {"key": DISRUPTED_TAINT_KEY, "effect": "NoSchedule"}])))
        .unwrap();
        let code = tokio::spawn(async move {
            (
                uncordon(&client, &n).await.unwrap(),
                uncordon(&client, &n).await.unwrap(),
            )
        });
        timeout(Duration::from_secs(5), async {
            let body = api
                .expect(
                    "PATCH",
                    "/api/v1/nodes/n1?",
                    409,
                    crate::fixtures::conflict("nodes", "n1"),
                )
                .await;
            assert_eq!(
                body,
                json!({"metadata": {"resourceVersion": "7"},
                       "spec": {"taints": [{"key": "team", "value": "a", "effect": "NoSchedule"}]}})
            );
            api.expect("PATCH", "/api/v1/nodes/n1?", 200, node_json(json!([])))
                .await;
        })
        .await;
        assert_eq!(code.await.unwrap(), (false, true));
    }

    #[tokio::test]
    async fn eviction_429_is_retried_after_backoff_and_never_forced() {
        let (client, mut api) = mock_client();
        let code = tokio::spawn(async move {
            let mut b = EvictionBackoff::default();
            let mut out = Vec::new();
            for dt in [0, 50, 100, 200, 300] {
                out.push(
                    evict(&client, &compat(), "ns/web", Timestamp(T0 + dt), &mut b)
                        .await
                        .unwrap(),
                );
            }
            out.push(
                evict(&client, &compat(), "ns/gone", Timestamp(T0), &mut b)
                    .await
                    .unwrap(),
            );
            // Accepted a moment ago: not evicted again before the cache shows it going.
            out.push(
                evict(&client, &compat(), "ns/web", Timestamp(T0 + 400), &mut b)
                    .await
                    .unwrap(),
            );
            out
        });
        let ok = json!({"kind": "Status", "apiVersion": "v1", "status": "Success"});
        timeout(Duration::from_secs(5), async {
            let body = api
                .expect(
                    "POST",
                    "/api/v1/namespaces/ns/pods/web/eviction",
                    429,
                    pdb_blocked(),
                )
                .await;
            assert_eq!(body["apiVersion"], "policy/v1beta1");
            // +50 ms: backing off (100 ms): no request. +100 ms: refused again (now 200 ms).
            api.expect(
                "POST",
                "/api/v1/namespaces/ns/pods/web/eviction",
                429,
                pdb_blocked(),
            )
            .await;
            // +200 ms: waits until +300 ms. +300 ms: the PDB allows it.
            api.expect("POST", "/api/v1/namespaces/ns/pods/web/eviction", 201, ok)
                .await;
            api.expect(
                "POST",
                "/api/v1/namespaces/ns/pods/gone/eviction",
                404,
                not_found("pods", "gone"),
            )
            .await;
            api.expect_no_more(Duration::from_millis(50)).await;
        })
        .await;
        let msg = "Cannot evict pod as it would violate the pod's disruption budget.";
        let waiting = || Evicted::Waiting(msg.into());
        assert_eq!(
            code.await.unwrap(),
            [
                waiting(),
                waiting(),
                waiting(),
                waiting(),
                Evicted::Done,
                Evicted::Done,
                Evicted::Waiting("evicted".into())
            ]
        );
    }

    #[tokio::test]
    async fn the_finalizers_drain_leaves_daemonset_mirror_and_do_not_disrupt_pods() {
        let (client, mut api) = mock_client();
        let code = tokio::spawn(async move {
            let mut b = EvictionBackoff::default();
            (
                drain_with(&client, &compat(), "n1", Timestamp(T0), &mut b)
                    .await
                    .unwrap(),
                drain_with(&client, &compat(), "n1", Timestamp(T0), &mut b)
                    .await
                    .unwrap(),
                drain_with(&client, &compat(), "gone", Timestamp(T0), &mut b)
                    .await
                    .unwrap(),
            )
        });
        let mut ds = pod_json("kube-system", "agent");
        ds["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": "ds"}]);
        let mut mirror = pod_json("kube-system", "etcd-n1");
        mirror["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "abc"});
        let mut dnd = pod_json("ns", "batch");
        dnd["metadata"]["annotations"] = json!({"karpenter.sh/do-not-disrupt": "true"});
        let mut crit = pod_json("kube-system", "coredns");
        crit["spec"]["priorityClassName"] = json!("system-cluster-critical");
        timeout(Duration::from_secs(5), async {
            api.expect("GET", "/api/v1/nodes/n1", 200, tainted()).await;
            api.expect(
                "GET",
                PODS_ON_N1,
                200,
                list(vec![
                    pod_json("ns", "web"),
                    ds.clone(),
                    mirror.clone(),
                    dnd.clone(),
                    crit.clone(),
                ]),
            )
            .await;
            api.expect(
                "POST",
                "/api/v1/namespaces/ns/pods/web/eviction",
                201,
                json!({}),
            )
            .await;
            // web is gone: the critical pod goes now.
            api.expect("GET", "/api/v1/nodes/n1", 200, tainted()).await;
            api.expect("GET", PODS_ON_N1, 200, list(vec![ds, mirror, dnd, crit]))
                .await;
            api.expect(
                "POST",
                "/api/v1/namespaces/kube-system/pods/coredns/eviction",
                201,
                json!({}),
            )
            .await;
            api.expect("GET", "/api/v1/nodes/gone", 404, not_found("nodes", "gone"))
                .await;
            api.expect_no_more(Duration::from_millis(50)).await;
        })
        .await;
        let (a, b, c) = code.await.unwrap();
        let blocked = vec!["ns/batch: has karpenter.sh/do-not-disrupt".to_string()];
        assert_eq!(
            a,
            DrainProgress::Waiting {
                remaining: 3,
                blocked: blocked.clone()
            }
        );
        assert_eq!(
            b,
            DrainProgress::Waiting {
                remaining: 2,
                blocked
            }
        );
        assert_eq!(c, DrainProgress::Done);
    }
}
