//! NodeClaim liveness: a claim whose node never registers is deleted after a timeout, so the
//! pods waiting for it are planned onto a new claim instead of waiting forever.
//!
//! Models Karpenter's liveness controller (kubernetes-sigs/karpenter,
//! `pkg/controllers/nodeclaim/lifecycle/liveness.go`): a NodeClaim not registered within the
//! registration TTL of 15 minutes after its creation is deleted (the RFC
//! `designs/configurable-registeration-ttl.md` names the hard-coded 15 minutes). Its pods were
//! never bound to it (kube-scheduler binds to Ready nodes only), so they are Pending; the
//! provisioner plans them again once the claim is gone (the in-flight capacity no longer
//! counts).

use std::time::Duration;

use clock::Timestamp;

use crate::Effect;
use crate::cluster::Cluster;
use crate::event::{ObjectRef, Recorder, Topic};

/// Karpenter's registration TTL.
pub const REGISTRATION_TTL: Duration = Duration::from_secs(15 * 60);

/// Claims past the registration TTL without a registered node: delete them. Also returns when
/// the next claim in flight reaches its TTL (to be stepped then).
pub fn check(
    now: Timestamp,
    cluster: &Cluster,
    ttl: Duration,
    rec: &mut Recorder,
) -> (Vec<Effect>, Option<Timestamp>) {
    let mut out = Vec::new();
    let mut next: Option<Timestamp> = None;
    for (n, i) in cluster.nodes.iter().zip(&cluster.info) {
        let Some(claim) = &i.claim else { continue };
        if !n.in_flight || i.deleting {
            continue;
        }
        let deadline = Timestamp::from_millis(n.created_ms).add(ttl);
        if now < deadline {
            next = Some(next.map_or(deadline, |t| t.min(deadline)));
            continue;
        }
        rec.warn(
            now,
            Topic::Node,
            ObjectRef::cluster("NodeClaim", claim),
            "RegistrationTimeout",
            format!(
                "{claim} did not register within {}; deleting it so its pods are planned again",
                humantime(ttl)
            ),
        );
        out.push(Effect::Delete {
            node: n.name.clone(),
            claim: Some(claim.clone()),
        });
    }
    (out, next)
}

fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::NodeInfo;
    use provision::resources::Res;
    use provision::scheduler::ExistingNode;

    fn claim(name: &str, created_ms: u64, in_flight: bool) -> (ExistingNode, NodeInfo) {
        (
            ExistingNode {
                name: name.into(),
                labels: Default::default(),
                taints: vec![],
                capacity: Res::ZERO,
                allocatable: Res::ZERO,
                pods: vec![],
                daemon_overhead: Res::ZERO,
                unschedulable: false,
                in_flight,
                price: 0.1,
                created_ms,
                nodepool_hash: None,
                annotations: Default::default(),
                last_pod_event_ms: created_ms,
            },
            NodeInfo {
                claim: Some(name.into()),
                initialized: !in_flight,
                ..Default::default()
            },
        )
    }

    #[test]
    fn a_claim_that_never_registers_is_deleted_after_the_ttl() {
        let t0 = Timestamp::from_secs(10_000);
        let mut c = Cluster::default();
        let (n, i) = claim("stuck", t0.as_millis(), true);
        c.push_node(n, i);
        let (n, i) = claim("ready", t0.as_millis(), false);
        c.push_node(n, i);
        let mut rec = Recorder::default();
        let almost = t0.add(REGISTRATION_TTL - Duration::from_millis(1));
        let (e, next) = check(almost, &c, REGISTRATION_TTL, &mut rec);
        assert!(e.is_empty());
        assert_eq!(next, Some(t0.add(REGISTRATION_TTL)));
        let (e, next) = check(t0.add(REGISTRATION_TTL), &c, REGISTRATION_TTL, &mut rec);
        assert_eq!(
            e,
            [Effect::Delete {
                node: "stuck".into(),
                claim: Some("stuck".into())
            }]
        );
        assert_eq!(next, None);
        let ev = rec.take();
        assert_eq!(ev.len(), 1);
        assert!(ev[0].message.contains("within 15m"), "{}", ev[0].message);
        // A claim already being deleted is left alone.
        c.info[0].deleting = true;
        let (e, _) = check(t0.add(REGISTRATION_TTL * 2), &c, REGISTRATION_TTL, &mut rec);
        assert!(e.is_empty());
    }
}
