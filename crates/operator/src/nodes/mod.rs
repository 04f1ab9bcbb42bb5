//! Nodes: what Karpenter does, as a substrate of the engine. Every *when* and *which* —
//! provisioning batches, joint-decision intents, the plan, claim names, the disruption command
//! lifecycle, which pods a drain evicts — is `engine::NodeEngine`'s; this module observes the
//! cluster and carries the decisions out.
//!
//! # Layout
//! - [`cluster`]: the one conversion of the informers' stores into `engine::Cluster`.
//! - [`control`]: the node controller — one `NodeEngine`, a step when something is due
//!   (observe, decide, carry out, report) — and its loop.
//! - [`provisioner`]: the provisioning pass (intents, `NodeEngine::provision`) and what wakes it.
//! - [`disruption`]: the disruption pass (`NodeEngine::disrupt`) and the PDBs it reads.
//! - [`effects`]: carrying out the engine's effects (NodeClaims, taints, evictions, deletes);
//!   the one NodeClaim builder.
//! - [`drain`]: cordon, uncordon and evict (with the PDB backoff); the termination
//!   finalizer's drain and the AWS interruption queue's cordon-and-delete.
//! - [`nodepool`]: NodePool status (usage, validation).
//! - [`lifecycle`]: the NodeClaim state machine: launch through the [`CloudProvider`], register
//!   the Node, initialize, the termination finalizer, garbage collection.
//! - [`convert`]: Kubernetes objects → the `model` types.
//!
//! [`CloudProvider`]: crate::provider::CloudProvider

pub mod cluster;
pub mod control;
pub mod convert;
pub mod disruption;
pub mod drain;
pub mod effects;
pub mod lifecycle;
pub mod nodepool;
pub mod provisioner;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use clock::Timestamp;

use kube::runtime::reflector::Store;
use provision::plan::ReplicaIntent;
use tokio::sync::Notify;

use crate::cached_pod::CachedPod;

/// A replica intent as the node side receives it.
#[derive(Debug, Clone)]
pub struct Announced {
    pub intent: ReplicaIntent,
    /// The workload's live pods once scaled out (its pods when the intent was announced, plus
    /// `intent.replicas`), when the pod cache was there to count them. The node controller
    /// sees the intent a moment later, when the ReplicaSet may have created some of the pods
    /// already: counted then, they would be planned twice.
    pub target: Option<u32>,
}

/// What the ScaledObject loops tell the node side: replica intents announced in the same
/// step as their scale-out, handed to the node engine at its next step (it plans capacity for
/// them before the pods exist), and when a replica count was last written (consolidation
/// settles after it: `engine::NodeEngine::note_scale`). Cheap to clone.
#[derive(Clone, Default)]
pub struct IntentBoard {
    inner: Arc<Mutex<Vec<Announced>>>,
    notify: Arc<Notify>,
    pods: Arc<OnceLock<Store<CachedPod>>>,
    /// Milliseconds of the latest replica write (0: none yet).
    scaled: Arc<AtomicU64>,
}

impl IntentBoard {
    /// Announce `intent` (from the scale-out step, right after its `/scale` write) and wake the
    /// node controller.
    pub fn announce(&self, intent: ReplicaIntent) {
        let target = self
            .pods
            .get()
            .map(|store| live_pods(store, &intent.template) + intent.replicas);
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Announced { intent, target });
        self.notify.notify_one();
    }

    /// A replica count was written at `at` (a scale-out or a scale-in of any ScaledObject):
    /// call it right after each successful `/scale` write.
    pub fn note_scale(&self, at: Timestamp) {
        self.scaled.fetch_max(at.as_millis(), Ordering::SeqCst);
    }

    /// When a replica count was last written, if ever.
    pub fn scaled_at(&self) -> Option<Timestamp> {
        match self.scaled.load(Ordering::SeqCst) {
            0 => None,
            ms => Some(Timestamp::from_millis(ms)),
        }
    }

    /// Take every announced intent (each is handed to the engine once).
    pub fn take(&self) -> Vec<Announced> {
        std::mem::take(&mut *self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Resolves when an intent is announced.
    pub async fn announced(&self) {
        self.notify.notified().await
    }

    /// Count the pods of announced workloads in `store` from now on (the node side's pod
    /// cache, once it runs).
    pub fn count_pods_in(&self, store: Store<CachedPod>) {
        let _ = self.pods.set(store);
    }
}

/// Live pods of `template`'s workload as the engine counts them (`Cluster::live_pods_like`):
/// same namespace, every template label present with the same value, not being deleted, not
/// finished.
fn live_pods(store: &Store<CachedPod>, template: &model::kube::Pod) -> u32 {
    let ns = template.metadata.ns();
    let labels = &template.metadata.labels;
    store
        .state()
        .iter()
        .filter(|p| {
            p.metadata.namespace.as_deref().unwrap_or("default") == ns
                && p.metadata.deletion_timestamp.is_none()
                && !matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                )
                && labels.iter().all(|(k, v)| {
                    p.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(k))
                        .is_some_and(|x| x == v)
                })
        })
        .count() as u32
}

/// NodeClaim reconciles running at once.
pub const CLAIM_CONCURRENCY: u16 = 16;

/// Run the node controller (provisioning and disruption on one engine), the NodeClaim
/// lifecycle controller and instance garbage collection until `shutdown` turns true, on the
/// shared `informers`. Call it only while this replica is the leader.
pub async fn run(
    ctx: crate::context::Context,
    provider: Arc<dyn crate::provider::CloudProvider>,
    policy: engine::Policy,
    intents: IntentBoard,
    informers: crate::informers::Informers,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> crate::Result<()> {
    use futures::StreamExt;
    use kube::runtime::Controller;
    use kube::runtime::reflector::ObjectRef;

    let events = Arc::new(crate::events::EventRecorder::new(
        ctx.client.clone(),
        "kedge",
        &ctx.settings.identity,
    ));
    // Which Eviction and PDB API the server serves (policy/v1 or v1beta1).
    let compat = match crate::compat::discover(&ctx.client).await {
        Ok(c) => {
            tracing::info!(
                server = %c.server_version,
                policy = c.policy_version.api_version(),
                "node side starting"
            );
            Some(c)
        }
        Err(e) => {
            tracing::warn!("no Eviction API ({e}): nodes are deleted without a drain");
            None
        }
    };
    intents.count_pods_in(informers.pods.store().clone());
    let ctl = control::NodeControl::new(
        ctx.clone(),
        provider.clone(),
        policy,
        events.clone(),
        compat.clone(),
    );
    let nodes_run = control::run(ctl, informers.clone(), intents, shutdown.clone());

    let claims = informers.claims.store().clone();
    let claims_for_map = claims.clone();
    // Bounded like the ScaledObject reconciles: consolidating hundreds of nodes at once would
    // otherwise run hundreds of termination reconciles (each with its API calls in flight)
    // together.
    let controller = Controller::for_shared_stream(informers.claims.applied(), claims.clone())
        .with_config(kube::runtime::controller::Config::default().concurrency(CLAIM_CONCURRENCY));
    let lc = Arc::new(lifecycle::Lifecycle {
        ctx: ctx.clone(),
        provider: provider.clone(),
        nodes: informers.nodes.store().clone(),
        events: lifecycle::Events::new(events),
        compat,
    });
    let mut stop = shutdown.clone();
    let lifecycle_run = controller
        .watches_shared_stream(informers.nodes.applied(), move |node| {
            // A Node change concerns the claim with its provider ID (or its owner).
            let pid = node.spec.as_ref().and_then(|s| s.provider_id.clone());
            let owner = node.metadata.owner_references.as_ref().and_then(|o| {
                o.iter()
                    .find(|r| r.kind == "NodeClaim")
                    .map(|r| r.name.clone())
            });
            claims_for_map
                .state()
                .into_iter()
                .filter(|c| {
                    c.metadata.name.is_some()
                        && (owner.is_some() && c.metadata.name == owner
                            || pid.is_some()
                                && c.status.as_ref().and_then(|s| s.provider_id.clone()) == pid)
                })
                .map(|c| ObjectRef::from_obj(&*c))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(async move {
            let _ = stop.wait_for(|v| *v).await;
        })
        .run(lifecycle::reconcile, lifecycle::error_policy, lc)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!("nodeclaim controller: {e}");
            }
        });

    let mut stop = shutdown.clone();
    let gc = async move {
        // Never collect before the claim store has its first full list.
        tokio::select! {
            r = claims.wait_until_ready() => if r.is_err() { return; },
            _ = stop.wait_for(|v| *v) => return,
        }
        loop {
            match lifecycle::collect_garbage(provider.as_ref(), &claims).await {
                Ok(gone) if !gone.is_empty() => {
                    tracing::info!("garbage collection terminated {gone:?}")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("garbage collection: {e}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(lifecycle::GC_PERIOD) => {}
                _ = stop.wait_for(|v| *v) => return,
            }
        }
    };
    let (r, _, _) = tokio::join!(nodes_run, lifecycle_run, gc);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::{reflector, watcher};
    use serde_json::json;

    fn pod(name: &str, app: &str, extra: serde_json::Value) -> CachedPod {
        let mut v = json!({"metadata": {"name": name, "namespace": "work", "labels": {"app": app}},
                           "status": {"phase": "Running"}});
        if let (Some(a), Some(b)) = (v["metadata"].as_object_mut(), extra.as_object()) {
            a.extend(b.clone());
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn an_intent_counts_the_workloads_pods_when_it_is_announced() {
        let board = IntentBoard::default();
        let mut template: model::kube::Pod = serde_json::from_value(json!({
            "metadata": {"name": "", "namespace": "work", "labels": {"app": "consumer"}}}))
        .unwrap();
        template.metadata.name = String::new();
        let intent = ReplicaIntent {
            source: "ScaledObject work/consumer".into(),
            template,
            replicas: 4,
        };
        board.announce(intent.clone());
        let (store, mut w) = reflector::store::<CachedPod>();
        for p in [
            pod("consumer-a", "consumer", json!({})),
            pod("consumer-b", "consumer", json!({})),
            pod(
                "consumer-c",
                "consumer",
                json!({"deletionTimestamp": "2026-01-01T00:00:00Z"}),
            ),
            pod("web-a", "web", json!({})),
        ] {
            w.apply_watcher_event(&watcher::Event::Apply(p));
        }
        board.count_pods_in(store);
        board.announce(intent);
        let got = board.take();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0].target, None,
            "no pod cache yet: counted by the engine"
        );
        assert_eq!(got[1].target, Some(2 + 4), "2 live consumers + 4");
        assert!(board.take().is_empty(), "each intent is handed over once");
        assert_eq!(board.scaled_at(), None);
        board.note_scale(Timestamp::from_secs(20));
        board.note_scale(Timestamp::from_secs(10));
        assert_eq!(
            board.scaled_at(),
            Some(Timestamp::from_secs(20)),
            "the latest write"
        );
    }
}
