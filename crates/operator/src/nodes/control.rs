//! The node controller: one [`NodeEngine`] for provisioning and disruption, stepped when
//! something is due. A step ([`NodeControl::step`]) observes, decides, carries out and
//! reports, in that order:
//!
//! 1. **observe**: the shared informers' stores ([`Snapshot`]), the claims this process has
//!    just created, the PDBs if the disruption pass simulates; one [`Cluster`] built from them
//!    ([`cluster::build`]);
//! 2. **decide**: the announced intents and the provisioning pass, then the disruption pass,
//!    on that one cluster, in the order the simulator and the twin step the same engine;
//! 3. the cluster is freed (only the NodePools and the pending pods' keys are kept) before
//! 4. **carry out**: NodePool status, then the effects ([`super::effects`]);
//! 5. **report**: every event of the step — the engine's decisions and what the API answered
//!    — through the one publisher ([`EventRecorder::publish_event`]).
//!
//! [`run`] takes no step while a shared watch is re-listing after a failure
//! ([`Informers::stale`]): nothing is decided on a store that may be behind.
//!
//! [`run`] steps when the engine's next wake is due (a batch closes, the disruption pass,
//! a command's validation, a replacement or drain being followed), at once when replicas are
//! announced, and when a pod turns unschedulable (at most every [`MIN_GAP`]) or a claim goes
//! away. A step converts bound pods only when something could be planned or disrupted with
//! them (a pending pod, an intent, a node or claim of a NodePool).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use clock::Timestamp;
use engine::{Effect, NodeEngine, Policy, Recorder};
use futures::StreamExt;

use super::cluster::{self, PodTracker, Snapshot};
use super::effects::{Effects, Outcome};
use super::nodepool::{self, PoolStatus};
use super::provisioner::{self, Trigger};
use super::{Announced, IntentBoard, disruption};
use crate::compat::ApiCompat;
use crate::context::Context;
use crate::events::EventRecorder;
use crate::informers::Informers;
use crate::provider::CloudProvider;

/// Steps on new unschedulable pods are at least this far apart (a burst of pods is one
/// batch anyway; each step converts the cluster).
pub const MIN_GAP: Duration = Duration::from_millis(500);
/// A claim gone or a re-list is looked at after this long (changes come in bursts).
const SETTLE: Duration = Duration::from_secs(1);

/// What one step did.
#[derive(Debug, Clone, Default)]
pub struct StepReport {
    /// The engine's effects, in the order they were carried out.
    pub effects: Vec<Effect>,
    pub outcome: Outcome,
    /// Every event published in the step.
    pub events: Vec<engine::Event>,
}

/// The node side's state between steps.
pub struct NodeControl {
    pub ctx: Context,
    provider: Arc<dyn CloudProvider>,
    pub engine: NodeEngine,
    rec: Recorder,
    events: Arc<EventRecorder>,
    compat: Option<ApiCompat>,
    effects: Effects,
    tracker: PodTracker,
    pools: PoolStatus,
}

impl NodeControl {
    /// `compat`: the served Eviction/PDB API (`None`: pods are not evicted and PDBs not read).
    /// Claim names are seeded with the start time, so a restarted operator does not reuse them.
    pub fn new(
        ctx: Context,
        provider: Arc<dyn CloudProvider>,
        policy: Policy,
        events: Arc<EventRecorder>,
        compat: Option<ApiCompat>,
    ) -> Self {
        let now = ctx.clock.now();
        NodeControl {
            engine: NodeEngine::new(policy, provider.catalog(), now, now.as_millis()),
            effects: Effects::new(ctx.client.clone(), compat.clone(), ctx.metrics.clone()),
            rec: Recorder::default(),
            tracker: PodTracker::default(),
            pools: PoolStatus::default(),
            ctx,
            provider,
            events,
            compat,
        }
    }

    /// One step over `snap` with the announced `intents`, at the injected clock's now.
    pub async fn step(&mut self, mut snap: Snapshot, intents: Vec<Announced>) -> StepReport {
        let now = self.ctx.clock.now();
        let catalog = self.provider.catalog();
        self.engine.set_catalog(catalog.clone());
        self.tracker.observe(&snap.pods, now);
        self.effects.add_created(&mut snap, now);
        disruption::observe_pdbs(
            &self.engine,
            now,
            &self.ctx.client,
            self.compat.as_ref(),
            &mut snap,
        )
        .await;
        let with_pods = !intents.is_empty()
            || self.engine.intents_outstanding()
            || snap.any_pending()
            || snap.any_pool_capacity();
        let (mut cluster, problems) = cluster::build(&catalog, &snap, &self.tracker, with_pods);
        for s in &problems.skipped {
            tracing::warn!("node side: left out {s}");
        }
        let mut effects =
            provisioner::pass(&mut self.engine, now, &mut cluster, intents, &mut self.rec);
        effects.extend(disruption::pass(
            &mut self.engine,
            now,
            &mut cluster,
            &mut self.rec,
        ));
        // What carrying out needs of the cluster; the rest is freed before the API calls.
        let usage = nodepool::usage(&cluster, &effects, &catalog);
        let pending: HashSet<String> = if effects.iter().any(|e| matches!(e, Effect::Launch(_))) {
            cluster.pending.iter().map(engine::pod_key).collect()
        } else {
            HashSet::new()
        };
        let pools = std::mem::take(&mut cluster.nodepools);
        drop(cluster);
        self.pools
            .write(&self.ctx, &snap, &problems, &usage, now, &mut self.rec)
            .await;
        let outcome = self
            .effects
            .apply(
                now,
                &effects,
                &pools,
                &snap,
                &pending,
                &mut self.engine,
                &mut self.rec,
            )
            .await;
        let events = self.rec.take();
        for e in &events {
            tracing::info!(target: "kedge::nodes", "{}", e.line());
            self.events
                .publish_logged(e, uid_of(&snap, &e.object))
                .await;
        }
        StepReport {
            effects,
            outcome,
            events,
        }
    }

    /// When the controller wants to step again without a change.
    pub fn next_wake(&self, now: Timestamp) -> Timestamp {
        let e = self.engine.next_wake();
        match self.effects.next_eviction(now) {
            Some(t) => t.min(e),
            None => e,
        }
    }
}

/// The uid of an event's object, from the stores (events about an object with its uid are
/// the ones `kubectl describe` shows).
fn uid_of<'a>(snap: &'a Snapshot, obj: &engine::ObjectRef) -> Option<&'a str> {
    let name = Some(obj.name.as_str());
    match obj.kind {
        "Node" => snap
            .nodes
            .iter()
            .find(|n| n.metadata.name.as_deref() == name)
            .and_then(|n| n.metadata.uid.as_deref()),
        "NodeClaim" => snap
            .claims
            .iter()
            .find(|c| c.metadata.name.as_deref() == name)
            .and_then(|c| c.metadata.uid.as_deref()),
        "NodePool" => snap
            .nodepools
            .iter()
            .find(|p| p.metadata.name.as_deref() == name)
            .and_then(|p| p.metadata.uid.as_deref()),
        "Pod" => snap
            .pods
            .iter()
            .find(|p| {
                p.metadata.name.as_deref() == name
                    && p.metadata.namespace.as_deref() == obj.namespace.as_deref()
            })
            .and_then(|p| p.metadata.uid.as_deref()),
        _ => None,
    }
}

/// Run the node controller until `shutdown` turns true (see the module docs).
pub async fn run(
    mut ctl: NodeControl,
    informers: Informers,
    intents: IntentBoard,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> crate::Result<()> {
    let streams = vec![
        informers.pods.changes_map(provisioner::pod_trigger).boxed(),
        informers
            .claims
            .changes_map(provisioner::claim_trigger)
            .boxed(),
    ];
    let mut triggers = futures::stream::select_all(streams);
    tokio::select! {
        _ = shutdown.wait_for(|v| *v) => return Ok(()),
        _ = informers.ready() => {}
    }
    let clock = ctl.ctx.clock.clone();
    let mut due: Option<Timestamp> = Some(clock.now());
    let mut last = Timestamp::ZERO;
    let mut handled: HashSet<String> = HashSet::new();
    let mut held = false;
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let now = clock.now();
        let wake = due.map_or(ctl.next_wake(now), |d| d.min(ctl.next_wake(now)));
        tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            t = triggers.next() => match t {
                None => return Ok(()),
                Some(Trigger::Pending(uid)) => {
                    if handled.insert(uid) {
                        let at = last.add(MIN_GAP).max(now);
                        due = Some(due.map_or(at, |d| d.min(at)));
                    }
                }
                Some(Trigger::Rescan | Trigger::CapacityLost) => {
                    handled.clear();
                    let at = now.add(SETTLE);
                    due = Some(due.map_or(at, |d| d.min(at)));
                }
            },
            _ = intents.announced() => due = Some(now),
            // The floor keeps a wake that is due from spinning.
            _ = tokio::time::sleep(wake.since(now).max(Duration::from_millis(20))) => {}
        }
        let now = clock.now();
        let wake = due.map_or(ctl.next_wake(now), |d| d.min(ctl.next_wake(now)));
        if now < wake {
            continue;
        }
        // No action on stale state: a watch that failed is re-listing (`informers`); its
        // store may miss pods, nodes or claims, so nothing is launched, disrupted or drained
        // until the list is complete (its resync wakes this loop).
        let stale = informers.stale();
        if !stale.is_empty() {
            if !held {
                tracing::warn!(watches = ?stale, "node side: holding provisioning and disruption until these watches have listed again");
                held = true;
            }
            due = Some(now.add(SETTLE));
            continue;
        }
        if held {
            tracing::info!("node side: every watch is current again; stepping");
            held = false;
        }
        due = None;
        last = now;
        let snap = Snapshot::of(&informers);
        // Pods that are no longer pending may come back (with new uids) and be seen anew.
        let pending: HashSet<&str> = snap
            .pods
            .iter()
            .filter(|p| cluster::is_provisionable(p))
            .filter_map(|p| p.metadata.uid.as_deref())
            .collect();
        handled.retain(|u| pending.contains(u.as_str()));
        if let Some(t) = intents.scaled_at() {
            ctl.engine.note_scale(t);
        }
        let report = ctl.step(snap, intents.take()).await;
        if !report.outcome.failed.is_empty() {
            // Look again soon.
            due = Some(clock.now().add(SETTLE));
        }
    }
}
