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
