//! The provisioning pass: pods kube-scheduler could not place, and replicas the autoscaler
//! has just announced, → NodeClaims, as the engine decides them
//! ([`engine::NodeEngine::provision`]: Karpenter's batch window, joint-decision intents, one
//! plan of the provision core, claim names).
//!
//! What is the operator's here is only what wakes a pass ([`Trigger`]: a pod turned
//! unschedulable, a claim went away) and handing the engine the intents from the
//! [`IntentBoard`](super::IntentBoard) with the target each was counted at
//! ([`super::Announced`]).

use clock::Timestamp;
use engine::{Cluster, Effect, NodeEngine, Recorder};

use super::Announced;
use super::cluster::is_provisionable;
use crate::cached_pod::CachedPod;
use crate::crd::NodeClaim;
use crate::informers::Change;

/// One provisioning pass at `now`: the intents, then the engine's launches.
pub fn pass(
    engine: &mut NodeEngine,
    now: Timestamp,
    cluster: &mut Cluster,
    intents: Vec<Announced>,
    rec: &mut Recorder,
) -> Vec<Effect> {
    for a in intents {
        match a.target {
            Some(target) => engine.announce_target(now, a.intent, target),
            None => engine.announce(now, cluster, a.intent),
        }
    }
    engine.provision(now, cluster, rec)
}

/// What wakes the node controller for provisioning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A provisionable pod (its uid) was seen: the engine opens or extends a batch.
    Pending(String),
    /// A NodeClaim is being deleted (or is gone): its pending pods need capacity again.
    CapacityLost,
    /// The pod cache was re-listed or changes were missed: every pending pod is looked at.
    Rescan,
}

/// A pod change as the controller needs it (mapped when it happens, so the queue holds no
/// object).
pub fn pod_trigger(c: &Change<CachedPod>) -> Option<Trigger> {
    match c {
        Change::Applied(p) if is_provisionable(p) => {
            Some(Trigger::Pending(p.metadata.uid.clone().unwrap_or_default()))
        }
        Change::Resync => Some(Trigger::Rescan),
        _ => None,
    }
}

/// A NodeClaim change as the controller needs it.
pub fn claim_trigger(c: &Change<NodeClaim>) -> Option<Trigger> {
    match c {
        Change::Applied(c) if c.metadata.deletion_timestamp.is_some() => {
            Some(Trigger::CapacityLost)
        }
        Change::Deleted(_) => Some(Trigger::CapacityLost),
        _ => None,
    }
}
