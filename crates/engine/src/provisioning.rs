//! Provisioning: when capacity is requested, for which pods, and under which names.
//!
//! Two ways in, as the policy allows:
//! - **pending pods** (Karpenter's provisioner): a pod kube-scheduler could not place opens a
//!   batch ([`Batcher`]: closes `batch_idle` after the last new pod or `batch_max` after the
//!   first); when it closes, every pending pod is planned. Pods still pending after a plan (they
//!   wait for an in-flight claim, or for a limit) open a new batch, so they are looked at again.
//! - **announced replicas** (joint decisions): a scale-out's [`ReplicaIntent`] is planned in the
//!   step it arrives, before the pods exist. An intent stands for the workload's *target*
//!   count, so pods that already exist are never planned twice: each plan asks for
//!   `target − live pods of the workload` phantom pods (the pods the ReplicaSet is about to
//!   create), and the intent ends when the pods exist or after `intent_ttl`.
//!
//! One [`plan`] call decides; claims planned for phantom pods are ordinary claims, so the pods
//! find them in flight when they turn pending.

use std::time::Duration;

use clock::Timestamp;
use provision::catalog::Catalog;
use provision::plan::{Batcher, PlannedClaim, ProvisionInput, ReplicaIntent, plan};

use crate::cluster::Cluster;
use crate::event::{ObjectRef, Recorder, Topic};

/// Why a claim is launched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LaunchReason {
    /// Pods that kube-scheduler could not place, after a batch.
    PendingPods,
    /// A scale-out announced in the same step (joint decision).
    Intent,
    /// A consolidation replacing nodes with a cheaper one.
    Replacement,
}

/// A NodeClaim to create.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    /// The claim's name, chosen by the engine (`<nodepool>-<suffix>`), so later steps can follow
    /// it.
    pub name: String,
    pub reason: LaunchReason,
    pub claim: PlannedClaim,
}

/// Claim names: `<nodepool>-` and eight base-36 characters from a seeded sequence (unique per
/// seed; the operator seeds with its start time so a restart does not reuse names).
#[derive(Debug, Clone)]
pub struct Namer {
    seed: u64,
    next: u64,
}

impl Namer {
    pub fn new(seed: u64) -> Namer {
        Namer { seed, next: 0 }
    }

    pub fn name(&mut self, pool: &str) -> String {
        // splitmix64's finalizer over (seed, sequence), reduced to base 36: names look like
        // Karpenter's and are unique in practice (36^8 ≈ 2.8e12 values).
        self.next += 1;
        let mut x = self
            .seed
            .wrapping_add(self.next.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        let mut s = [0u8; 8];
        for c in s.iter_mut().rev() {
            let d = (x % 36) as u8;
            x /= 36;
            *c = if d < 10 { b'0' + d } else { b'a' + d - 10 };
        }
        format!("{pool}-{}", String::from_utf8_lossy(&s))
    }
}

#[derive(Debug, Clone)]
struct Announced {
    intent: ReplicaIntent,
    /// Live pods of the workload the intent wants in total.
    target: u32,
    until: Timestamp,
    planned: bool,
}

/// The provisioner's memory between steps.
#[derive(Debug, Clone)]
pub struct Provisioner {
    batcher: Batcher,
    /// The pending pods of the last step, as sorted [`pending_id`]s.
    seen: Vec<u64>,
    /// Scratch for this step's ids (kept to reuse its allocation).
    keys: Vec<u64>,
    announced: Vec<Announced>,
    intent_ttl: Duration,
}

impl Provisioner {
    pub fn new(batch_idle: Duration, batch_max: Duration, intent_ttl: Duration) -> Provisioner {
        Provisioner {
            batcher: Batcher::new(batch_idle, batch_max),
            seen: Vec::new(),
            keys: Vec::new(),
            announced: Vec::new(),
            intent_ttl,
        }
    }

    /// A scale-out announced at `now` (`cluster` as observed in the same step: its live pods are
    /// what the ReplicaSet has already created).
    pub fn announce(&mut self, now: Timestamp, cluster: &Cluster, intent: ReplicaIntent) {
        let target = cluster.live_pods_like(&intent.template) + intent.replicas;
        self.announce_target(now, intent, target);
    }

    /// A scale-out whose workload will have `target` live pods in total.
    pub fn announce_target(&mut self, now: Timestamp, intent: ReplicaIntent, target: u32) {
        self.announced.retain(|a| a.intent.source != intent.source);
        self.announced.push(Announced {
            intent,
            target,
            until: now.add(self.intent_ttl),
            planned: false,
        });
    }

    /// Some announced intent is still planned against.
    pub fn intents_outstanding(&self) -> bool {
        !self.announced.is_empty()
    }

    /// When the provisioner wants to be stepped again.
    pub fn next_wake(&self) -> Option<Timestamp> {
        self.batcher.deadline()
    }

    /// One provisioning pass at `now`: the claims to launch.
    pub fn step(
        &mut self,
        now: Timestamp,
        cluster: &mut Cluster,
        catalog: &Catalog,
        namer: &mut Namer,
        rec: &mut Recorder,
    ) -> Vec<Launch> {
        // Intents whose pods exist (or that are too old) are done.
        self.announced
            .retain(|a| now < a.until && cluster.live_pods_like(&a.intent.template) < a.target);
        let fresh_intent = self.announced.iter().any(|a| !a.planned);

        // New pending pods extend the batch; pods still pending from an earlier batch reopen
        // one (they are looked at again after the idle window).
        let mut new_pod = false;
        // Pods are told apart by a hash of `namespace/name` (this runs on every step; a key
        // string per pending pod was most of a busy step's time).
        // Both lists are sorted: one merge finds an id not seen before.
        self.keys.clear();
        self.keys.extend(cluster.pending.iter().map(pending_id));
        self.keys.sort_unstable();
        let mut old = self.seen.iter().peekable();
        for k in &self.keys {
            while old.next_if(|o| *o < k).is_some() {}
            if old.peek() != Some(&k) {
                new_pod = true;
                break;
            }
        }
        std::mem::swap(&mut self.seen, &mut self.keys);
        if cluster.pending.is_empty() {
            self.batcher.reset();
        } else if new_pod || self.batcher.deadline().is_none() {
            self.batcher.observe(now);
        }
        let batch_ready = !cluster.pending.is_empty() && self.batcher.ready(now);
        if !batch_ready && !fresh_intent {
            return Vec::new();
        }
        if batch_ready {
            self.batcher.reset();
        }
        let intents: Vec<ReplicaIntent> = self
            .announced
            .iter_mut()
            .filter_map(|a| {
                a.planned = true;
                let live = cluster.live_pods_like(&a.intent.template);
                let phantoms = a.target.saturating_sub(live);
                (phantoms > 0).then(|| ReplicaIntent {
                    replicas: phantoms,
                    ..a.intent.clone()
                })
            })
            .collect();
        let reason = if batch_ready {
            LaunchReason::PendingPods
        } else {
            LaunchReason::Intent
        };
        let input = ProvisionInput {
            nodepools: std::mem::take(&mut cluster.nodepools),
            daemonsets: std::mem::take(&mut cluster.daemonsets),
            nodes: std::mem::take(&mut cluster.nodes),
            pending: std::mem::take(&mut cluster.pending),
            intents,
        };
        let p = plan(catalog, &input);
        cluster.nodepools = input.nodepools;
        cluster.daemonsets = input.daemonsets;
        cluster.nodes = input.nodes;
        cluster.pending = input.pending;

        let mut launches = Vec::new();
        for (pod, why) in &p.unschedulable {
            let (ns, name) = pod.split_once('/').unwrap_or(("default", pod));
            rec.warn(
                now,
                Topic::Provision,
                ObjectRef::namespaced("Pod", ns, name),
                "FailedScheduling",
                format!("Failed to schedule pod, {why}"),
            );
        }
        for c in p.claims {
            if c.options.is_empty() {
                continue;
            }
            let name = namer.name(&c.nodepool);
            let o = &c.options[0];
            rec.record(
                now,
                Topic::Provision,
                ObjectRef::cluster("NodeClaim", &name),
                "Launched",
                format!(
                    "launch {name} ({}): {} {} ${:.4}/h for {} pod(s){} — {}",
                    match reason {
                        LaunchReason::PendingPods => "pending pods",
                        LaunchReason::Intent => "announced replicas",
                        LaunchReason::Replacement => "replacement",
                    },
                    o.instance_type,
                    o.capacity_type,
                    o.price,
                    c.pods.len(),
                    if c.intent_pods > 0 {
                        format!(", {} of them announced", c.intent_pods)
                    } else {
                        String::new()
                    },
                    c.explanation.replacen(
                        &format!("NodeClaim {} ", c.name),
                        &format!("NodeClaim {name} "),
                        1
                    )
                ),
            );
            launches.push(Launch {
                name,
                reason,
                claim: c,
            });
        }
        launches
    }
}

/// A pending pod's identity for the batcher (a hash of its namespace and name).
fn pending_id(p: &model::kube::Pod) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    p.metadata.ns().hash(&mut h);
    p.metadata.name.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{NodeInfo, PodFlags};
    use model::kube::Pod;
    use provision::resources::Res;
    use provision::scheduler::ExistingNode;
    use std::collections::HashSet;

    fn pool() -> model::karpenter::NodePool {
        model::karpenter::NodePool::from_yaml(
            r#"
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: default}
spec:
  template:
    spec:
      requirements:
        - {key: node.kubernetes.io/instance-type, operator: In, values: [m5.xlarge, m5.2xlarge]}
        - {key: karpenter.sh/capacity-type, operator: In, values: [on-demand]}
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
  limits: {cpu: 1000}
"#,
        )
        .expect("pool")
    }

    fn consumer(name: &str) -> Pod {
        let mut p = Pod::with_requests(name, "250m".parse().unwrap(), "64Mi".parse().unwrap());
        p.metadata.namespace = Some("jobs".into());
        p.metadata.labels.insert("app".into(), "consumer".into());
        p
    }

    fn intent(n: u32) -> ReplicaIntent {
        let mut t = consumer("consumer");
        t.metadata.name = String::new();
        ReplicaIntent {
            source: "ScaledObject jobs/consumer".into(),
            template: t,
            replicas: n,
        }
    }

    fn cluster() -> Cluster {
        Cluster {
            nodepools: vec![pool()],
            ..Default::default()
        }
    }

    #[test]
    fn an_intent_launches_at_once_and_its_pods_are_not_planned_twice() {
        let catalog = Catalog::aws();
        let mut prov = Provisioner::new(
            Duration::from_secs(1),
            Duration::from_secs(10),
            Duration::from_secs(60),
        );
        let mut namer = Namer::new(0);
        let mut rec = Recorder::default();
        let t0 = Timestamp::from_secs(100);
        let mut c = cluster();
        prov.announce(t0, &c, intent(5));
        let l = prov.step(t0, &mut c, &catalog, &mut namer, &mut rec);
        assert_eq!(l.len(), 1, "one claim for five announced pods");
        assert_eq!(l[0].reason, LaunchReason::Intent);
        assert_eq!(l[0].claim.intent_pods, 5);
        // The claim is in flight; the five pods exist now and are pending. Neither the batch
        // nor the intent launches anything more: the pods fit the claim on its way.
        let claim = &l[0].claim;
        let it = catalog.get(&claim.options[0].instance_type).unwrap();
        c.push_node(
            ExistingNode {
                name: l[0].name.clone(),
                labels: [
                    (
                        model::karpenter::LABEL_NODEPOOL.to_string(),
                        "default".to_string(),
                    ),
                    (
                        model::karpenter::LABEL_INSTANCE_TYPE.to_string(),
                        it.name.clone(),
                    ),
                    (
                        model::karpenter::LABEL_CAPACITY_TYPE.to_string(),
                        "on-demand".to_string(),
                    ),
                ]
                .into_iter()
                .collect(),
                taints: vec![],
                capacity: it.capacity,
                allocatable: it.allocatable,
                pods: vec![],
                daemon_overhead: Res::ZERO,
                unschedulable: false,
                in_flight: true,
                price: claim.options[0].price,
                created_ms: t0.as_millis(),
                nodepool_hash: None,
                annotations: Default::default(),
                last_pod_event_ms: t0.as_millis(),
            },
            NodeInfo {
                claim: Some(l[0].name.clone()),
                ..Default::default()
            },
        );
        c.pending = (0..5).map(|i| consumer(&format!("consumer-{i}"))).collect();
        for s in 1..=12 {
            let now = t0.add(Duration::from_secs(s));
            let l = prov.step(now, &mut c, &catalog, &mut namer, &mut rec);
            assert!(l.is_empty(), "at +{s}s: {l:?}");
        }
        let _ = PodFlags::default();
    }

    #[test]
    fn pods_created_before_the_intent_was_seen_are_not_planned_twice() {
        // The operator sees the intent after the ReplicaSet created 3 of the 5 pods: its target
        // (counted when the scale-out was written) says 5 live pods in all, so 2 are phantoms.
        let catalog = Catalog::aws();
        let mut prov = Provisioner::new(
            Duration::from_secs(1),
            Duration::from_secs(10),
            Duration::from_secs(60),
        );
        let mut namer = Namer::new(0);
        let mut rec = Recorder::default();
        let t0 = Timestamp::from_secs(100);
        let mut c = cluster();
        c.pending = (0..3).map(|i| consumer(&format!("consumer-{i}"))).collect();
        prov.announce_target(t0, intent(5), 5);
        assert!(prov.intents_outstanding());
        let l = prov.step(t0, &mut c, &catalog, &mut namer, &mut rec);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].claim.pods.len(), 5, "3 pending + 2 announced");
        assert_eq!(l[0].claim.intent_pods, 2);
    }

    #[test]
    fn pending_pods_wait_for_the_batch_window() {
        let catalog = Catalog::aws();
        let mut prov = Provisioner::new(
            Duration::from_secs(1),
            Duration::from_secs(10),
            Duration::from_secs(60),
        );
        let mut namer = Namer::new(0);
        let mut rec = Recorder::default();
        let t0 = Timestamp::from_secs(100);
        let mut c = cluster();
        c.pending = vec![consumer("a")];
        assert!(
            prov.step(t0, &mut c, &catalog, &mut namer, &mut rec)
                .is_empty()
        );
        c.pending.push(consumer("b"));
        let t = t0.add(Duration::from_millis(900));
        assert!(
            prov.step(t, &mut c, &catalog, &mut namer, &mut rec)
                .is_empty()
        );
        let t = t.add(Duration::from_millis(999));
        assert!(
            prov.step(t, &mut c, &catalog, &mut namer, &mut rec)
                .is_empty()
        );
        let t = t.add(Duration::from_millis(1));
        let l = prov.step(t, &mut c, &catalog, &mut namer, &mut rec);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].reason, LaunchReason::PendingPods);
        assert_eq!(l[0].claim.pods.len(), 2);
        assert!(l[0].name.starts_with("default-") && l[0].name.len() == "default-".len() + 8);
        let ev = rec.take();
        assert!(ev.iter().any(|e| e.reason == "Launched"), "{ev:?}");
    }

    #[test]
    fn names_are_distinct_and_depend_on_the_seed() {
        let mut a = Namer::new(0);
        let mut b = Namer::new(1);
        let names: HashSet<String> = (0..10_000).map(|_| a.name("p")).collect();
        assert_eq!(names.len(), 10_000);
        assert_ne!(Namer::new(0).name("p"), b.name("p"));
    }
}
