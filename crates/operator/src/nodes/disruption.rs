//! The disruption pass: Karpenter's disruption controller as the engine runs it
//! ([`engine::NodeEngine::disrupt`]: the pass every 10 s, emptiness, consolidation, expiry and
//! drift with budgets, the 15 s validation, the replacement launched and initialized first,
//! the drain, the delete — one command at a time, in `engine::disruption`).
//!
//! What is the operator's here is only observing what the engine reads and the informers do
//! not hold: the PodDisruptionBudgets, listed (one call, policy/v1 or v1beta1 as discovered)
//! only in a step whose pass simulates. The effects are carried out by
//! [`super::effects`]; the drain's API calls are [`super::drain`].

use clock::Timestamp;
use engine::{Cluster, Effect, NodeEngine, Recorder};

use super::cluster::Snapshot;
use crate::compat::{self, ApiCompat};

/// One disruption step at `now`.
pub fn pass(
    engine: &mut NodeEngine,
    now: Timestamp,
    cluster: &mut Cluster,
    rec: &mut Recorder,
) -> Vec<Effect> {
    engine.disrupt(now, cluster, rec)
}

/// Add the PodDisruptionBudgets to `snap` when the pass at `now` simulates and something
/// could be disrupted. A failed list is logged and the pass goes on without them: the
/// Eviction API enforces every budget anyway.
pub async fn observe_pdbs(
    engine: &NodeEngine,
    now: Timestamp,
    client: &kube::Client,
    compat: Option<&ApiCompat>,
    snap: &mut Snapshot,
) {
    let Some(compat) = compat else { return };
    if !engine.disruption_simulates(now) || !snap.any_pool_capacity() {
        return;
    }
    match compat::list_pdbs(client, compat).await {
        Ok(p) => snap.pdbs = p,
        Err(e) => tracing::warn!(
            kind = e.metric_label(),
            "disruption: PodDisruptionBudgets not listed, simulating without them: {e}"
        ),
    }
}
