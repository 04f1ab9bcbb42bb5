//! Scenario (b) of the operator on a real API server: pods that fit nowhere make the
//! provisioner create NodeClaims, the lifecycle launches them through the kwok provider,
//! kube-scheduler binds the pods to the kwok nodes (run_kubelet marks them Running), the
//! claims reach Initialized, and deleting a claim drains its node and releases the
//! finalizer. The plan is the provision core's cheapest one.

mod common;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use operator::crd::{NodeClaim, NodePool};
use operator::nodes::IntentBoard;
use serde_json::json;

async fn nodepool(client: &kube::Client, name: &str) {
    let np: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "metadata": {"labels": {"team": name}},
                "spec": {
                    "requirements": [
                        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.xlarge", "m5.2xlarge"]},
                        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                    ],
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                },
            },
            "limits": {"cpu": "1000"},
        },
    }))
    .unwrap();
    let ar = kube::api::ApiResource::erase::<NodePool>(&());
    Api::<kube::api::DynamicObject>::all_with(client.clone(), &ar)
        .create(&PostParams::default(), &np)
        .await
        .unwrap_or_else(|e| panic!("creating NodePool {name}: {e}"));
}

async fn deployment(
    client: &kube::Client,
    ns: &str,
    name: &str,
    pool: &str,
    replicas: i32,
    cpu: &str,
) {
    let d: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {
                                  "nodeSelector": {"karpenter.sh/nodepool": pool},
                                  "terminationGracePeriodSeconds": 1,
                                  "containers": [{"name": "c", "image": "busybox",
                                      "resources": {"requests": {"cpu": cpu, "memory": "128Mi"}}}]}}}
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
}

fn unschedulable(p: &Pod) -> bool {
    operator::nodes::cluster::is_provisionable(&operator::cached_pod::CachedPod::of(p))
}

/// Wait until `n` pods with `app=<name>` exist and kube-scheduler has marked them all
/// Unschedulable (so the operator's first batch sees all of them).
async fn wait_unschedulable(pods: &Api<Pod>, name: &str, n: usize) {
    let lp = ListParams::default().labels(&format!("app={name}"));
    common::eventually(60, &format!("{n} unschedulable pods of {name}"), || async {
        let l = pods.list(&lp).await.ok()?;
        (l.items.len() == n && l.items.iter().all(unschedulable)).then_some(())
    })
    .await;
}

struct Operator(common::NodeSide);

impl Operator {
    fn start(client: &kube::Client) -> Operator {
        Self::start_with(client, IntentBoard::default(), &[])
    }

    /// With `unavailable` instance types failing to launch (simulated insufficient capacity).
    fn start_with(client: &kube::Client, intents: IntentBoard, unavailable: &[&str]) -> Operator {
        Operator(common::NodeSide::start(
            client,
            intents,
            unavailable,
            Duration::from_secs(2),
        ))
    }

    async fn stop(self) {
        self.0.stop().await
    }
}

fn label<'a>(o: &'a kube::api::ObjectMeta, k: &str) -> Option<&'a str> {
    o.labels.as_ref()?.get(k).map(String::as_str)
}

fn claim_condition(c: &NodeClaim, t: &str) -> bool {
    c.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|x| x.type_ == t && x.status == "True")
    })
}

async fn claims_of(client: &kube::Client, pool: &str) -> Vec<NodeClaim> {
    Api::<NodeClaim>::all(client.clone())
        .list(&ListParams::default().labels(&format!("karpenter.sh/nodepool={pool}")))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

/// Pods fit no node (there are none): NodeClaims and kwok Nodes appear, kube-scheduler binds
/// the pods to them, they run, the claims initialize; deleting the claims removes the nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unschedulable_pods_get_nodes_and_run() {
    let Some(cp) = common::control_plane("unschedulable_pods_get_nodes_and_run") else {
        return;
    };
    operator::init_tls();
    let client = cp.client().await.expect("client");
    let _lock = common::cluster_lock().await;
    common::install_crds(&client).await;
    let ns = common::namespace(&client, "nodes-b").await;
    nodepool(&client, "general").await;
    deployment(&client, &ns, "web", "general", 3, "500m").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    wait_unschedulable(&pods, "web", 3).await;

    let op = Operator::start(&client);
    let nodes: Api<Node> = Api::all(client.clone());
    let lp = ListParams::default().labels("app=web");
    let bound = common::eventually(90, "3 web pods Running on kwok nodes", || async {
        let l = pods.list(&lp).await.ok()?;
        let mut on = Vec::new();
        for p in &l.items {
            let node = p.spec.as_ref()?.node_name.clone()?;
            let running = p.status.as_ref()?.phase.as_deref() == Some("Running");
            let n = nodes.get(&node).await.ok()?;
            let kwok = n
                .spec
                .as_ref()?
                .provider_id
                .as_deref()?
                .starts_with("kwok://");
            if !(running && kwok) {
                return None;
            }
            on.push(node);
        }
        (on.len() == 3).then_some(on)
    })
    .await;
    // 3 × 500m fit one m5.xlarge: one claim, one node.
    let claims = common::eventually(60, "the claim Initialized", || async {
        let cs = claims_of(&client, "general").await;
        (!cs.is_empty() && cs.iter().all(|c| claim_condition(c, "Initialized"))).then_some(cs)
    })
    .await;
    assert_eq!(claims.len(), 1, "one NodeClaim for 3 × 500m");
    let c = &claims[0];
    for cond in ["Launched", "Registered", "Initialized", "Ready"] {
        assert!(
            claim_condition(c, cond),
            "claim condition {cond} True: {:?}",
            c.status
        );
    }
    let node_name = c
        .status
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .expect("status.nodeName");
    assert!(
        bound.iter().all(|n| *n == node_name),
        "pods on the claim's node"
    );
    assert_eq!(
        label(&c.metadata, "node.kubernetes.io/instance-type"),
        Some("m5.xlarge")
    );
    assert!(
        c.metadata
            .finalizers
            .as_ref()
            .is_some_and(|f| f.iter().any(|x| x == "karpenter.sh/termination"))
    );
    let n = nodes.get(&node_name).await.unwrap();
    assert_eq!(label(&n.metadata, "karpenter.sh/registered"), Some("true"));
    assert_eq!(label(&n.metadata, "karpenter.sh/initialized"), Some("true"));
    assert_eq!(label(&n.metadata, "karpenter.sh/nodepool"), Some("general"));
    assert_eq!(label(&n.metadata, "team"), Some("general"));
    assert!(
        n.metadata
            .owner_references
            .as_ref()
            .is_some_and(|o| o.iter().any(|r| r.kind == "NodeClaim")),
        "node owned by its claim"
    );
    // NodePool status written with server-side apply.
    let np = common::eventually(30, "NodePool status.nodes = 1", || async {
        let np = Api::<NodePool>::all(client.clone())
            .get("general")
            .await
            .ok()?;
        (np.status.as_ref()?.nodes == Some(1)).then_some(np)
    })
    .await;
    let st = np.status.unwrap();
    assert_eq!(st.resources.get("cpu").map(String::as_str), Some("4"));
    assert!(
        st.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    );
    // Events on the pods name the claim.
    let evs: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), &ns);
    common::eventually(30, "a Nominated event on a web pod", || async {
        let l = evs.list(&ListParams::default()).await.ok()?;
        l.items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("Nominated")
                    && e.note.as_deref().is_some_and(|n| n.contains("nodeclaim/"))
            })
            .then_some(())
    })
    .await;

    // Termination: scale to zero, delete the claim: the node goes, the finalizer is released.
    Api::<Deployment>::namespaced(client.clone(), &ns)
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    let claim_name = c.metadata.name.clone().unwrap();
    Api::<NodeClaim>::all(client.clone())
        .delete(&claim_name, &DeleteParams::default())
        .await
        .unwrap();
    common::eventually(60, "claim and node gone", || async {
        let claim_gone = matches!(
            Api::<NodeClaim>::all(client.clone()).get(&claim_name).await,
            Err(kube::Error::Api(s)) if s.code == 404
        );
        let node_gone =
            matches!(nodes.get(&node_name).await, Err(kube::Error::Api(s)) if s.code == 404);
        (claim_gone && node_gone).then_some(())
    })
    .await;
    op.stop().await;
}

/// 10 pods × 1 CPU on a NodePool of m5.xlarge / m5.2xlarge: the launched claims are the
/// provision core's cheapest plan (one m5.2xlarge for 7, one m5.xlarge for 3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cost_aware_plan_for_ten_one_cpu_pods() {
    let Some(cp) = common::control_plane("cost_aware_plan_for_ten_one_cpu_pods") else {
        return;
    };
    operator::init_tls();
    let client = cp.client().await.expect("client");
    let _lock = common::cluster_lock().await;
    common::install_crds(&client).await;
    let ns = common::namespace(&client, "nodes-cost").await;
    nodepool(&client, "cost").await;
    deployment(&client, &ns, "batch", "cost", 10, "1").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    wait_unschedulable(&pods, "batch", 10).await;

    // What the core plans for the same pods and pool.
    let catalog = provision::catalog::Catalog::aws();
    let pool = operator::nodes::convert::nodepool(
        &Api::<NodePool>::all(client.clone())
            .get("cost")
            .await
            .unwrap(),
    )
    .expect("valid pool");
    let pending: Vec<model::kube::Pod> = pods
        .list(&ListParams::default().labels("app=batch"))
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| operator::nodes::convert::pod(&operator::cached_pod::CachedPod::of(p)).unwrap())
        .collect();
    let plan = provision::plan::plan(
        &catalog,
        &provision::plan::ProvisionInput {
            nodepools: vec![pool],
            pending,
            ..Default::default()
        },
    );
    let mut expected: Vec<String> = plan
        .claims
        .iter()
        .map(|c| c.options[0].instance_type.clone())
        .collect();
    expected.sort();
    assert_eq!(
        expected,
        vec!["m5.2xlarge".to_string(), "m5.xlarge".to_string()],
        "the core's cheapest plan"
    );

    let op = Operator::start(&client);
    let lp = ListParams::default().labels("app=batch");
    common::eventually(90, "10 batch pods Running", || async {
        let l = pods.list(&lp).await.ok()?;
        (l.items.len() == 10
            && l.items
                .iter()
                .all(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")))
        .then_some(())
    })
    .await;
    let claims = claims_of(&client, "cost").await;
    let mut launched: Vec<String> = claims
        .iter()
        .filter_map(|c| label(&c.metadata, "node.kubernetes.io/instance-type").map(str::to_string))
        .collect();
    launched.sort();
    assert_eq!(launched, expected, "claims launched as the core planned");
    for c in &claims {
        let reqs = c.spec["requirements"].as_array().expect("requirements");
        let types = reqs
            .iter()
            .find(|r| r["key"] == "node.kubernetes.io/instance-type")
            .and_then(|r| r["values"].as_array())
            .expect("instance-type requirement");
        assert!(!types.is_empty() && types.len() <= 60);
        // Named by the engine (`engine::provisioning::Namer`), as the simulator names them.
        assert!(
            c.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("cost-")),
            "{:?}",
            c.metadata.name
        );
        assert!(
            c.metadata
                .owner_references
                .as_ref()
                .is_some_and(|o| o.iter().any(|r| r.kind == "NodePool" && r.name == "cost"))
        );
        assert!(
            c.metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key("karpenter.sh/nodepool-hash"))
        );
    }
    op.stop().await;
}

/// Joint decision: replicas announced by the autoscaler get capacity before their pods exist
/// (a NodeClaim is created and its kwok node initializes with no pod pending at all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announced_replicas_get_capacity_before_their_pods_exist() {
    let Some(cp) = common::control_plane("announced_replicas_get_capacity_before_their_pods_exist")
    else {
        return;
    };
    operator::init_tls();
    let client = cp.client().await.expect("client");
    let _lock = common::cluster_lock().await;
    common::install_crds(&client).await;
    nodepool(&client, "joint").await;
    let intents = IntentBoard::default();
    let op = Operator::start_with(&client, intents.clone(), &[]);
    let template: model::kube::Pod = serde_json::from_value(json!({
        "metadata": {"name": "consumer", "namespace": "work"},
        "spec": {
            "nodeSelector": {"karpenter.sh/nodepool": "joint"},
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}}],
        },
    }))
    .unwrap();
    intents.announce(provision::plan::ReplicaIntent {
        source: "ScaledObject work/consumer".into(),
        template,
        replicas: 3,
    });
    let claims = common::eventually(
        60,
        "the claim for the announced replicas Initialized",
        || async {
            let cs = claims_of(&client, "joint").await;
            (!cs.is_empty() && cs.iter().all(|c| claim_condition(c, "Initialized"))).then_some(cs)
        },
    )
    .await;
    // 3 × 2 CPU: one m5.2xlarge (an m5.xlarge holds only one).
    assert_eq!(claims.len(), 1);
    assert_eq!(
        label(&claims[0].metadata, "node.kubernetes.io/instance-type"),
        Some("m5.2xlarge")
    );
    op.stop().await;
}

/// Insufficient capacity for the cheapest type: the kwok provider falls back to the next type
/// of the claim (m5.2xlarge) and the pods still run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insufficient_capacity_falls_back_to_the_next_type() {
    let Some(cp) = common::control_plane("insufficient_capacity_falls_back_to_the_next_type")
    else {
        return;
    };
    operator::init_tls();
    let client = cp.client().await.expect("client");
    let _lock = common::cluster_lock().await;
    common::install_crds(&client).await;
    let ns = common::namespace(&client, "nodes-ice").await;
    nodepool(&client, "ice").await;
    deployment(&client, &ns, "svc", "ice", 2, "500m").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    wait_unschedulable(&pods, "svc", 2).await;
    let op = Operator::start_with(&client, IntentBoard::default(), &["m5.xlarge"]);
    let lp = ListParams::default().labels("app=svc");
    common::eventually(90, "2 svc pods Running", || async {
        let l = pods.list(&lp).await.ok()?;
        (l.items.len() == 2
            && l.items
                .iter()
                .all(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")))
        .then_some(())
    })
    .await;
    let claims = claims_of(&client, "ice").await;
    assert_eq!(claims.len(), 1);
    let c = &claims[0];
    let types = c.spec["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "node.kubernetes.io/instance-type")
        .map(|r| r["values"].clone())
        .unwrap();
    assert_eq!(
        types,
        json!(["m5.xlarge", "m5.2xlarge"]),
        "planned cheapest first"
    );
    assert_eq!(
        label(&c.metadata, "node.kubernetes.io/instance-type"),
        Some("m5.2xlarge"),
        "launched the fallback"
    );
    op.stop().await;
}
