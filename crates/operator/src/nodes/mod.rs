//! Nodes: what Karpenter does, on the provision core.
//!
//! - `provisioner`: watches unschedulable pods, batches them (Karpenter's idle/max window),
//!   plans with `provision::plan` (plus [`IntentBoard`] replica intents: joint decisions) and
//!   creates NodeClaims.
//! - `lifecycle`: the NodeClaim state machine: launch through the [`CloudProvider`], register
//!   the Node, initialize, and the termination finalizer (drain, delete instance, release).
//! - `disruption`: emptiness/consolidation/expiry/drift with `provision::disruption`; cordon
//!   with `karpenter.sh/disrupted:NoSchedule`, evict through the Eviction API (a PDB's 429 is
//!   retried later), delete.
//!
//! [`CloudProvider`]: crate::provider::CloudProvider

pub mod convert;
pub mod disruption;

use std::sync::{Arc, Mutex};

use provision::plan::ReplicaIntent;
use tokio::sync::Notify;

/// Replica intents announced by the ScaledObject loops in the same step as their scale-out,
/// consumed once by the provisioner (which then plans capacity for them before the pods
/// exist). Cheap to clone.
#[derive(Clone, Default)]
pub struct IntentBoard {
    inner: Arc<Mutex<Vec<ReplicaIntent>>>,
    notify: Arc<Notify>,
}

impl IntentBoard {
    /// Announce `intent` (from the scale-out step) and wake the provisioner.
    pub fn announce(&self, intent: ReplicaIntent) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(intent);
        self.notify.notify_one();
    }

    /// Take every announced intent (each is planned once).
    pub fn take(&self) -> Vec<ReplicaIntent> {
        std::mem::take(&mut *self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Resolves when an intent is announced.
    pub async fn announced(&self) {
        self.notify.notified().await
    }
}

pub mod lifecycle;
pub mod provisioner;

/// Held for a provisioning or a disruption pass. Each builds the whole cluster into the
/// provision core's types (every node and bound pod) and simulates on it; one at a time, the
/// operator's peak memory holds one such copy instead of two (the passes are short: the
/// other waits milliseconds, or the length of a disruption's API calls).
pub static PASS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// NodeClaim reconciles running at once.
pub const CLAIM_CONCURRENCY: u16 = 16;

/// Run the provisioner, the NodeClaim lifecycle controller and instance garbage collection
/// until `shutdown` turns true, on the shared `informers`. Call it only while this replica is
/// the leader.
pub async fn run_provisioning(
    ctx: crate::context::Context,
    provider: Arc<dyn crate::provider::CloudProvider>,
    intents: IntentBoard,
    informers: crate::informers::Informers,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> crate::Result<()> {
    use futures::StreamExt;
    use kube::runtime::Controller;
    use kube::runtime::reflector::ObjectRef;

    let events = lifecycle::Events::new(ctx.client.clone(), &ctx.settings.identity);
    let prov =
        provisioner::Provisioner::new(ctx.clone(), provider.clone(), intents, events.clone());
    let provisioning = provisioner::run(prov, informers.clone(), shutdown.clone());

    let claims = informers.claims.store().clone();
    let claims_for_map = claims.clone();
    // Bounded like the ScaledObject reconciles: consolidating hundreds of nodes at once would
    // otherwise run hundreds of termination reconciles (each with its API calls in flight)
    // together.
    let controller = Controller::for_shared_stream(informers.claims.applied(), claims.clone())
        .with_config(kube::runtime::controller::Config::default().concurrency(CLAIM_CONCURRENCY));
    // Which Eviction API the server serves (policy/v1 or v1beta1) for the termination drain.
    let compat = match crate::compat::discover(&ctx.client).await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!("no Eviction API ({e}): claims' nodes are deleted without a drain");
            None
        }
    };
    let lc = Arc::new(lifecycle::Lifecycle {
        ctx: ctx.clone(),
        provider: provider.clone(),
        nodes: informers.nodes.store().clone(),
        events,
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
    let (p, _, _) = tokio::join!(provisioning, lifecycle_run, gc);
    p
}
