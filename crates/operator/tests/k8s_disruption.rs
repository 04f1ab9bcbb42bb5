//! Scenario (c) on a real API server (1.20: PDBs and Eviction are `policy/v1beta1`): after a
//! scale-in the disruption controller cordons the underutilized node with
//! `karpenter.sh/disrupted:NoSchedule`, evicts its pod through the Eviction API — the PDB's
//! 429 is observed and respected until the replacement pod is Ready — and deletes its
//! NodeClaim.
//!
//! There is no kubelet and no lifecycle controller here: the test creates kwok-like Nodes and
//! their NodeClaims itself, and a stand-in kubelet marks bound pods Running (Ready unless told
//! otherwise) and force-deletes terminating ones. The node controller (`NodeControl`: the
//! engine's disruption lifecycle, carried out against the API) is stepped one step at a time
//! on a `ManualClock`, so `consolidateAfter`, the 15 s validation delay and the eviction
//! backoff are stepped, not waited for.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autoscale::scaler::BoxFuture;
use clock::{Clock, ManualClock, SystemClock, Timestamp};
use engine::disruption::Phase;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use operator::compat::{self, PolicyVersion};
use operator::crd;
use operator::nodes::cluster::{DISRUPTED_TAINT_KEY, Snapshot};
use operator::nodes::control::{NodeControl, StepReport};
use operator::provider::{CloudProvider, Instance, LaunchRequest, ProviderError};
use provision::catalog::Catalog;
use serde_json::{Value, json};

const NS: &str = "disrupt";
const HOLD: &str = "kedge.test/hold";
const FINALIZER: &str = "kedge.test/observe-deletion";

/// The catalog is all the disruption controller asks of a provider.
struct CatalogOnly(Arc<Catalog>);

impl CloudProvider for CatalogOnly {
    fn name(&self) -> &'static str {
        "kwok"
    }
    fn create(&self, _: &LaunchRequest) -> BoxFuture<'_, Result<Instance, ProviderError>> {
        Box::pin(async { Err(ProviderError::Invalid("not used in this test".into())) })
    }
    fn delete(&self, _: &str) -> BoxFuture<'_, Result<(), ProviderError>> {
        Box::pin(async { Err(ProviderError::Invalid("not used in this test".into())) })
    }
    fn get(&self, _: &str) -> BoxFuture<'_, Result<Instance, ProviderError>> {
        Box::pin(async { Err(ProviderError::Invalid("not used in this test".into())) })
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<Instance>, ProviderError>> {
        Box::pin(async { Ok(vec![]) })
    }
    fn catalog(&self) -> Arc<Catalog> {
        self.0.clone()
    }
}

/// A kwok-like Node: labels of its instance type, capacity/allocatable, Ready, no not-ready
/// taint (the TaintNodesByCondition admission plugin adds it on create; there is no node
/// lifecycle controller to take it off, so the test does).
async fn create_node(
    client: &kube::Client,
    pool: &str,
    name: &str,
    instance_type: &str,
    (cpu, mem): (&str, &str),
    taints: Value,
    annotations: Value,
) {
    let nodes: Api<Node> = Api::all(client.clone());
    let n: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": annotations,
            "labels": {
                "karpenter.sh/nodepool": pool,
                "karpenter.sh/registered": "true",
                "karpenter.sh/initialized": "true",
                "node.kubernetes.io/instance-type": instance_type,
                "topology.kubernetes.io/zone": "us-east-1a",
                "topology.kubernetes.io/region": "us-east-1",
                "karpenter.sh/capacity-type": "on-demand",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/os": "linux",
                "kubernetes.io/hostname": name,
            },
        },
        "spec": {"providerID": format!("kwok://{name}")},
    }))
    .unwrap();
    nodes.create(&PostParams::default(), &n).await.unwrap();
    nodes
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "capacity": {"cpu": cpu, "memory": mem, "pods": "110"},
                "allocatable": {"cpu": cpu, "memory": mem, "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                "message": "kedge test stand-in"}],
            }})),
        )
        .await
        .unwrap();
    set_taints(client, name, taints).await;
}

async fn set_taints(client: &kube::Client, node: &str, taints: Value) {
    Api::<Node>::all(client.clone())
        .patch(
            node,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"taints": taints}})),
        )
        .await
        .unwrap();
}

fn taint_keys(n: &Node) -> Vec<String> {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .map(|t| t.iter().map(|t| t.key.clone()).collect())
        .unwrap_or_default()
}

/// A NodeClaim as the lifecycle controller leaves it once its node is initialized. It carries
/// a test finalizer so the deletion is observable (no termination controller runs here).
async fn create_claim(
    client: &kube::Client,
    pool: &str,
    name: &str,
    node: &str,
    instance_type: &str,
) {
    let claims: Api<DynamicObject> =
        Api::all_with(client.clone(), &ApiResource::erase::<crd::NodeClaim>(&()));
    let c: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
        "metadata": {"name": name, "labels": {"karpenter.sh/nodepool": pool},
                     "finalizers": [FINALIZER]},
        "spec": {
            "requirements": [
                {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": [instance_type]},
                {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
            ],
            "nodeClassRef": {"group": "karpenter.kwok.sh", "kind": "KWOKNodeClass", "name": "default"},
        },
    }))
    .unwrap();
    claims.create(&PostParams::default(), &c).await.unwrap();
    let now = "2026-01-01T00:00:00Z";
    let conditions: Vec<Value> = ["Launched", "Registered", "Initialized", "Ready"]
        .iter()
        .map(|t| json!({"type": t, "status": "True", "reason": t, "lastTransitionTime": now}))
        .collect();
    claims
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "nodeName": node, "providerID": format!("kwok://{node}"),
                "conditions": conditions,
            }})),
        )
        .await
        .unwrap();
}

fn deployment(name: &str, replicas: i32, cpu: &str, extra_spec: Value) -> Deployment {
    let mut spec = json!({
        "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "c", "image": "busybox",
                        "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}],
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra_spec.as_object()) {
        s.extend(e.clone());
    }
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}
    }))
    .unwrap()
}

async fn scale(client: &kube::Client, name: &str, replicas: i32) {
    Api::<Deployment>::namespaced(client.clone(), NS)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await
        .unwrap();
}

/// Live pods of `app` with their node, Ready flag and whether they are terminating.
async fn pods_of(client: &kube::Client, app: &str) -> Vec<(String, String, bool, bool)> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let l = pods
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap();
    l.items
        .iter()
        .map(|p| {
            let ready = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            (
                p.metadata.name.clone().unwrap_or_default(),
                p.spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .unwrap_or_default(),
                ready,
                p.metadata.deletion_timestamp.is_some(),
            )
        })
        .collect()
}

/// Waits until `app` has exactly `n` pods, all bound and Running (Ready as given), none
/// terminating; returns (name, node).
async fn settled(client: &kube::Client, app: &str, n: usize) -> Vec<(String, String)> {
    common::eventually(60, &format!("{n} running pod(s) of {app}"), || async {
        let ps = pods_of(client, app).await;
        let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
        let mut out = Vec::new();
        for (name, node, _, terminating) in &ps {
            let p = pods.get(name).await.ok()?;
            let running = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
            if node.is_empty() || *terminating || !running {
                return None;
            }
            out.push((name.clone(), node.clone()));
        }
        (out.len() == n).then_some(out)
    })
    .await
}

/// The kubelet's part for the test's nodes: bound pods become Running (and Ready unless held
/// back), terminating pods are force-deleted.
struct StandInKubelet {
    /// Pods bound while this is false stay Running but not Ready.
    auto_ready: Arc<AtomicBool>,
    /// Pods the stand-in must not mark Ready (set by the test).
    not_ready: Arc<Mutex<BTreeSet<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl StandInKubelet {
    fn start(client: kube::Client) -> Self {
        let auto_ready = Arc::new(AtomicBool::new(true));
        let not_ready: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        let (a, nr) = (auto_ready.clone(), not_ready.clone());
        let task = tokio::spawn(async move {
            let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
            loop {
                if let Ok(l) = pods.list(&ListParams::default()).await {
                    for p in l.items {
                        let name = p.metadata.name.clone().unwrap_or_default();
                        if p.metadata.deletion_timestamp.is_some() {
                            let _ = pods
                                .delete(&name, &DeleteParams::default().grace_period(0))
                                .await;
                            continue;
                        }
                        let bound = p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
                        if !bound {
                            continue;
                        }
                        let phase = p
                            .status
                            .as_ref()
                            .and_then(|s| s.phase.clone())
                            .unwrap_or_default();
                        let is_ready = p
                            .status
                            .as_ref()
                            .and_then(|s| s.conditions.as_ref())
                            .is_some_and(|c| {
                                c.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                            });
                        let held = nr.lock().unwrap().contains(&name);
                        if phase != "Running" && !a.load(Ordering::SeqCst) {
                            nr.lock().unwrap().insert(name.clone());
                        }
                        let held = held || nr.lock().unwrap().contains(&name);
                        if phase == "Running" && (is_ready || held) {
                            continue;
                        }
                        let ready = if held { "False" } else { "True" };
                        let _ = pods
                            .patch_status(
                                &name,
                                &PatchParams::default(),
                                &Patch::Strategic(json!({"status": {
                                    "phase": "Running",
                                    "conditions": [
                                        {"type": "Ready", "status": ready},
                                        {"type": "ContainersReady", "status": ready},
                                        {"type": "Initialized", "status": "True"},
                                    ],
                                }})),
                            )
                            .await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        StandInKubelet {
            auto_ready,
            not_ready,
            task,
        }
    }
}

impl Drop for StandInKubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The test's clock: wall time plus the virtual time skipped so far, so the API server's
/// timestamps (bind and creation times) are never ahead of it.
struct TestClock {
    clock: ManualClock,
    skipped: Duration,
}

impl TestClock {
    fn now(&mut self) -> Timestamp {
        self.clock.set(SystemClock.now().add(self.skipped));
        self.clock.now()
    }
    fn skip(&mut self, d: Duration) -> Timestamp {
        self.skipped += d;
        self.now()
    }
}

/// One step of the node controller at `now` (the test's clock is there already) over the
/// objects as the API server lists them.
async fn pass(client: &kube::Client, ctl: &mut NodeControl, now: Timestamp) -> StepReport {
    let snap = Snapshot::list(client).await.expect("snapshot");
    let r = ctl.step(snap, Vec::new()).await;
    for l in lines(&r) {
        eprintln!("  step @{now}: {l}");
    }
    r
}

/// A step's events (`topic object reason: message`) and what failed carrying it out.
fn lines(r: &StepReport) -> Vec<String> {
    r.events
        .iter()
        .map(engine::Event::line)
        .chain(r.outcome.failed.iter().cloned())
        .collect()
}

fn phase(ctl: &NodeControl) -> &Phase {
    ctl.engine.disruption_phase()
}

#[tokio::test]
async fn scale_in_cordons_evicts_respecting_the_pdb_and_deletes_the_claim() {
    let Some(cp) =
        common::control_plane("scale_in_cordons_evicts_respecting_the_pdb_and_deletes_the_claim")
    else {
        return;
    };
    operator::init_tls();
    common::init_logs();
    let client = cp.client().await.expect("client");
    let _guard = common::cluster_lock().await;
    common::install_crds(&client).await;
    common::namespace(&client, NS).await;

    // Discovery on the 1.20 server: policy/v1beta1 only.
    let compat = compat::discover(&client).await.expect("discovery");
    assert_eq!(compat.policy_version, PolicyVersion::V1beta1);
    assert!(
        compat.server_version.starts_with("v1.20"),
        "{}",
        compat.server_version
    );

    // The NodePool, two nodes with their claims. node-a (m5.xlarge) stays: do-not-disrupt, and
    // held (tainted) at first so the workload lands on node-b.
    // Through DynamicObject: crd's wrappers do not serialize apiVersion/kind.
    let pools: Api<DynamicObject> =
        Api::all_with(client.clone(), &ApiResource::erase::<crd::NodePool>(&()));
    let pool: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "default"},
        "spec": {
            "template": {"spec": {
                "requirements": [
                    {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.large", "m5.xlarge"]},
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                ],
                "nodeClassRef": {"group": "karpenter.kwok.sh", "kind": "KWOKNodeClass", "name": "default"},
            }},
            "disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "30s"},
        },
    }))
    .unwrap();
    pools.create(&PostParams::default(), &pool).await.unwrap();
    let hold = json!([{"key": HOLD, "effect": "NoSchedule"}]);
    create_node(
        &client,
        "default",
        "node-a",
        "m5.xlarge",
        ("4", "16Gi"),
        hold.clone(),
        json!({"karpenter.sh/do-not-disrupt": "true"}),
    )
    .await;
    create_node(
        &client,
        "default",
        "node-b",
        "m5.large",
        ("2", "8Gi"),
        json!([]),
        json!({}),
    )
    .await;
    create_claim(&client, "default", "claim-a", "node-a", "m5.xlarge").await;
    create_claim(&client, "default", "claim-b", "node-b", "m5.large").await;
    let kubelet = StandInKubelet::start(client.clone());

    // Workload: `base` pinned to node-a (2.5 CPU), `web` (1 × 600m) and `batch` (3 × 400m) on
    // node-b; kube-scheduler binds them.
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let base = deployment(
        "base",
        1,
        "2500m",
        json!({"nodeSelector": {"kubernetes.io/hostname": "node-a"},
               "tolerations": [{"key": HOLD, "operator": "Exists"}]}),
    );
    for d in [
        base,
        deployment("web", 1, "600m", json!({})),
        deployment("batch", 3, "400m", json!({})),
    ] {
        deploys.create(&PostParams::default(), &d).await.unwrap();
    }
    assert_eq!(settled(&client, "base", 1).await[0].1, "node-a");
    let web1 = settled(&client, "web", 1).await;
    assert_eq!(web1[0].1, "node-b");
    let web1 = web1[0].0.clone();
    assert!(
        settled(&client, "batch", 3)
            .await
            .iter()
            .all(|(_, n)| n == "node-b")
    );
    set_taints(&client, "node-a", json!([])).await;

    // PDB: at least one web pod available (policy/v1beta1, through the discovered resource).
    let pdbs: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &compat.pdb_resource());
    let pdb: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
    }))
    .unwrap();
    pdbs.create(&PostParams::default(), &pdb).await.unwrap();

    let mut clock = TestClock {
        clock: ManualClock::new(SystemClock.now()),
        skipped: Duration::ZERO,
    };
    let provider = Arc::new(CatalogOnly(Arc::new(Catalog::aws())));
    // As the operator must build it: a client that does not retry 429s by itself (kube's
    // default would re-send a PDB-refused eviction for minutes before answering).
    let kc = kube::config::Kubeconfig::read_from(cp.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let client = compat::client_without_retry(config).expect("client");
    clock.now();
    let ctx = operator::context::Context {
        client: client.clone(),
        clock: Arc::new(clock.clock.clone()),
        metrics: Arc::default(),
        settings: Arc::default(),
        pods: None,
    };
    let events = Arc::new(operator::events::EventRecorder::new(
        client.clone(),
        "kedge",
        "test",
    ));
    let mut d = NodeControl::new(
        ctx,
        provider,
        engine::Policy::preset(engine::PolicyName::Kedge),
        events,
        Some(compat.clone()),
    );

    // Before the scale-in: node-b's pods do not fit elsewhere (and its only web pod is
    // protected): nothing to do.
    let now = clock.skip(Duration::from_secs(60));
    let r = pass(&client, &mut d, now).await;
    assert_eq!(phase(&d), &Phase::Idle, "{:?}", lines(&r));
    assert!(
        lines(&r).iter().any(|l| l
            == "disrupt Node node-a DisruptionBlocked: Cannot disrupt Node: node has karpenter.sh/do-not-disrupt"),
        "{:?}",
        lines(&r)
    );

    // Scale batch in: node-b keeps only web's pod. A second web replica comes up on node-a
    // (node-b held for that moment) and is not Ready yet.
    scale(&client, "batch", 0).await;
    settled(&client, "batch", 0).await;
    set_taints(&client, "node-b", hold.clone()).await;
    kubelet.auto_ready.store(false, Ordering::SeqCst);
    scale(&client, "web", 2).await;
    let web = settled(&client, "web", 2).await;
    let web2 = web.iter().find(|(n, _)| *n != web1).unwrap().clone();
    assert_eq!(web2.1, "node-a");
    assert!(kubelet.not_ready.lock().unwrap().contains(&web2.0));
    kubelet.auto_ready.store(true, Ordering::SeqCst);
    set_taints(&client, "node-b", json!([])).await;
    // The PDB controller has seen it: one healthy of two, minAvailable 1 → 0 allowed.
    common::eventually(60, "PDB web: 2 expected, 1 healthy, 0 allowed", || async {
        let p = pdbs.get("web").await.ok()?;
        let s = p.data.get("status")?;
        (s["expectedPods"] == 2 && s["currentHealthy"] == 1 && s["disruptionsAllowed"] == 0)
            .then_some(())
    })
    .await;

    // The scale-in is a pod event: node-b is consolidatable only after consolidateAfter.
    let now = clock.skip(Duration::from_secs(1));
    let r = pass(&client, &mut d, now).await;
    assert_eq!(phase(&d), &Phase::Idle, "{:?}", lines(&r));
    let now = clock.skip(Duration::from_secs(31));
    let r = pass(&client, &mut d, now).await;
    match phase(&d) {
        Phase::Validating { cmd, .. } => {
            assert_eq!(cmd.candidates, ["node-b"], "{:?}", lines(&r))
        }
        p => panic!("expected a command for node-b, got {p:?}: {:?}", lines(&r)),
    }
    assert!(
        lines(&r).iter().any(|l| l.starts_with(
            "disrupt Node node-b DisruptionQueued: Underutilized/Delete: consolidate node-b"
        )),
        "{:?}",
        lines(&r)
    );

    // 15 s later: validated, cordoned, and the eviction is refused by the PDB (429).
    let now = clock.skip(Duration::from_secs(15));
    let r = pass(&client, &mut d, now).await;
    assert!(
        matches!(phase(&d), Phase::Draining { .. }),
        "{:?}",
        lines(&r)
    );
    assert!(
        r.effects.contains(&engine::Effect::Cordon {
            node: "node-b".into()
        }),
        "{:?}",
        r.effects
    );
    assert!(
        lines(&r).iter().any(|l| l.starts_with(&format!(
            "disrupt Node node-b DisruptionBlocked: Draining: eviction of {NS}/{web1} blocked"
        )) && l.contains("disruption budget")),
        "{:?}",
        lines(&r)
    );
    let node_b = Api::<Node>::all(client.clone())
        .get("node-b")
        .await
        .unwrap();
    assert!(
        taint_keys(&node_b).contains(&DISRUPTED_TAINT_KEY.to_string()),
        "cordoned"
    );
    // Retried after the backoff: still refused, and never forced.
    let now = clock.skip(Duration::from_secs(1));
    let r = pass(&client, &mut d, now).await;
    assert!(
        lines(&r).iter().any(|l| l.contains("blocked")),
        "{:?}",
        lines(&r)
    );
    let live = pods_of(&client, "web").await;
    assert!(
        live.iter().any(|(n, node, ready, terminating)| *n == web1
            && node == "node-b"
            && *ready
            && !terminating),
        "web-1 is still running on node-b: {live:?}"
    );
    assert!(r.outcome.deleted.is_empty());

    // The replacement becomes Ready: the PDB allows one disruption; the eviction goes through.
    kubelet.not_ready.lock().unwrap().clear();
    common::eventually(60, "PDB web allows 1 disruption", || async {
        let p = pdbs.get("web").await.ok()?;
        (p.data.get("status")?["disruptionsAllowed"] == 1).then_some(())
    })
    .await;
    let now = clock.skip(Duration::from_secs(10));
    let r = pass(&client, &mut d, now).await;
    assert!(
        !lines(&r).iter().any(|l| l.contains("blocked")),
        "{:?}",
        lines(&r)
    );
    assert_eq!(
        r.outcome.evicted,
        [format!("{NS}/{web1}")],
        "{:?}",
        lines(&r)
    );
    // web-1 is gone (evicted, then force-deleted by the stand-in kubelet); its replacement
    // cannot land on the cordoned node.
    let web = settled(&client, "web", 2).await;
    assert!(
        web.iter().all(|(n, node)| *n != web1 && node == "node-a"),
        "{web:?}"
    );

    // Only DaemonSet pods (none) remain: the NodeClaim is deleted.
    let now = clock.skip(Duration::from_secs(1));
    let r = pass(&client, &mut d, now).await;
    assert_eq!(r.outcome.deleted, ["claim-b"], "{:?}", lines(&r));
    assert_eq!(phase(&d), &Phase::Idle);
    let claims: Api<crd::NodeClaim> = Api::all(client.clone());
    let c = claims.get("claim-b").await.unwrap();
    assert!(
        c.metadata.deletion_timestamp.is_some(),
        "claim-b is being deleted"
    );
    assert!(
        claims
            .get("claim-a")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_none()
    );
    // The termination finalizer is not part of this test: release our observer finalizer.
    claims
        .patch(
            "claim-b",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    common::eventually(30, "claim-b gone", || async {
        match claims.get("claim-b").await {
            Err(kube::Error::Api(s)) if s.code == 404 => Some(()),
            _ => None,
        }
    })
    .await;

    // The story is told in Events on the node and the claim (in `default`, or `kube-system`
    // where the API server refuses `default` for cluster-scoped objects, as 1.20 does).
    let events: Api<Event> = Api::all(client.clone());
    let evs = events.list(&ListParams::default()).await.unwrap().items;
    let reasons_of = |name: &str| -> Vec<String> {
        evs.iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(name))
            .filter_map(|e| e.reason.clone())
            .collect()
    };
    let b = reasons_of("node-b");
    assert!(b.contains(&"Disrupting".to_string()), "{b:?}");
    assert!(b.contains(&"DisruptionBlocked".to_string()), "{b:?}");
    assert!(reasons_of("claim-b").contains(&"Disrupting".to_string()));
    assert!(reasons_of("node-a").contains(&"DisruptionBlocked".to_string()));
    let disrupting = evs
        .iter()
        .find(|e| {
            e.involved_object.name.as_deref() == Some("node-b")
                && e.reason.as_deref() == Some("Disrupting")
        })
        .unwrap();
    assert!(
        disrupting
            .message
            .as_deref()
            .unwrap_or("")
            .starts_with("Disrupting Node: Underutilized/Delete: consolidate node-b"),
        "{:?}",
        disrupting.message
    );
}

/// The node controller as `kedge operator` runs it (`nodes::control::run`: the shared
/// informers, its own wakes on the system clock): an empty node of a pool with
/// `consolidateAfter: 0s` is cordoned and its claim deleted after the 15 s validation delay.
#[tokio::test]
async fn the_running_controller_removes_an_empty_node() {
    let Some(cp) = common::control_plane("the_running_controller_removes_an_empty_node") else {
        return;
    };
    operator::init_tls();
    common::init_logs();
    let client = cp.client().await.expect("client");
    let _guard = common::cluster_lock().await;
    common::install_crds(&client).await;
    let pools: Api<DynamicObject> =
        Api::all_with(client.clone(), &ApiResource::erase::<crd::NodePool>(&()));
    let pool: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "e2e"},
        "spec": {
            "template": {"spec": {
                "requirements": [
                    {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.large"]},
                ],
                "nodeClassRef": {"group": "karpenter.kwok.sh", "kind": "KWOKNodeClass", "name": "default"},
            }},
            "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "0s"},
        },
    }))
    .unwrap();
    pools.create(&PostParams::default(), &pool).await.unwrap();
    create_node(
        &client,
        "e2e",
        "node-e",
        "m5.large",
        ("2", "8Gi"),
        json!([]),
        json!({}),
    )
    .await;
    create_claim(&client, "e2e", "claim-e", "node-e", "m5.large").await;

    let kc = kube::config::Kubeconfig::read_from(cp.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let ctx = operator::context::Context {
        client: compat::client_without_retry(config).expect("client"),
        clock: Arc::new(SystemClock),
        metrics: Arc::default(),
        settings: Arc::default(),
        pods: None,
    };
    let compat = compat::discover(&client).await.expect("discovery");
    let provider = Arc::new(CatalogOnly(Arc::new(Catalog::aws())));
    let events = Arc::new(operator::events::EventRecorder::new(
        ctx.client.clone(),
        "kedge",
        "test",
    ));
    let ctl = NodeControl::new(
        ctx,
        provider,
        engine::Policy::preset(engine::PolicyName::Kedge),
        events,
        Some(compat),
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (informers, _) = operator::informers::Informers::start(&client, &stopped);
    let controller = tokio::spawn(operator::nodes::control::run(
        ctl,
        informers,
        operator::nodes::IntentBoard::default(),
        stopped,
    ));
    let claims: Api<crd::NodeClaim> = Api::all(client.clone());
    common::eventually(60, "claim-e deleted by the controller", || async {
        claims
            .get("claim-e")
            .await
            .ok()?
            .metadata
            .deletion_timestamp
            .map(|_| ())
    })
    .await;
    // The step that did it told so in an Event on the node.
    let events: Api<Event> = Api::all(client.clone());
    common::eventually(10, "a DisruptionTerminating event on node-e", || async {
        let l = events.list(&ListParams::default()).await.ok()?;
        l.items
            .iter()
            .any(|e| {
                e.involved_object.name.as_deref() == Some("node-e")
                    && e.reason.as_deref() == Some("DisruptionTerminating")
                    && e.message.as_deref() == Some("node node-e drained; deleting it (Empty)")
            })
            .then_some(())
    })
    .await;
    let node = Api::<Node>::all(client.clone())
        .get("node-e")
        .await
        .unwrap();
    assert!(
        taint_keys(&node).contains(&DISRUPTED_TAINT_KEY.to_string()),
        "cordoned first"
    );
    let _ = stop.send(true);
    controller
        .await
        .unwrap()
        .expect("the controller stops cleanly");
    // Leave nothing of ours behind for the other test: no claim, no node.
    claims
        .patch(
            "claim-e",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    Api::<Node>::all(client.clone())
        .delete("node-e", &DeleteParams::default())
        .await
        .unwrap();
}
