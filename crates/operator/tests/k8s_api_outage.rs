//! The API server becomes unreachable under the operator's node side (a TCP proxy between
//! them drops every connection and refuses new ones), then comes back. While it is away the
//! shared watches are stale (a failed watch starts over with a full list) and the node
//! controller takes no step; pods created meanwhile (through a direct client) are planned
//! once the watches have listed again: the node side recovers by itself, nothing panics.

mod common;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use operator::crd::{NodeClaim, NodePool};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP proxy to `upstream` that can be cut: `cut` closes every open connection and drops
/// new ones at once until it is healed.
struct Proxy {
    port: u16,
    cut: watch::Sender<bool>,
}

impl Proxy {
    async fn start(upstream: &'static str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (cut, rx) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if *rx.borrow() {
                    drop(inbound);
                    continue;
                }
                let mut rx = rx.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = rx.wait_for(|c| *c) => {}
                    }
                });
            }
        });
        Proxy { port, cut }
    }
}

/// A client of the control plane that goes through the proxy.
async fn client_via(cp: &operator::controlplane::ControlPlane, port: u16) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(cp.kubeconfig()).expect("kubeconfig");
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    cfg.cluster_url = format!("https://127.0.0.1:{port}").parse().expect("url");
    // Fail fast while the proxy is cut (the default waits much longer).
    cfg.connect_timeout = Some(Duration::from_secs(2));
    kube::Client::try_from(cfg).expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_side_waits_out_an_api_outage_and_plans_what_came_meanwhile() {
    let Some(cp) = common::control_plane(
        "the_node_side_waits_out_an_api_outage_and_plans_what_came_meanwhile",
    ) else {
        return;
    };
    operator::init_tls();
    common::init_logs();
    let direct = cp.client().await.expect("client");
    let _lock = common::cluster_lock().await;
    common::install_crds(&direct).await;
    let ns = common::namespace(&direct, "outage").await;
    let pool: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
        "metadata": {"name": "outage"},
        "spec": {
            "template": {"spec": {
                "requirements": [
                    {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.xlarge"]},
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                ],
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
            }},
            "limits": {"cpu": "1000"},
        },
    }))
    .unwrap();
    let ar = kube::api::ApiResource::erase::<NodePool>(&());
    Api::<kube::api::DynamicObject>::all_with(direct.clone(), &ar)
        .create(&PostParams::default(), &pool)
        .await
        .expect("NodePool");
    // Two pods of 1500m: one m5.xlarge holds two.
    let d: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "work"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "work"}},
                 "template": {"metadata": {"labels": {"app": "work"}},
                              "spec": {
                                  "nodeSelector": {"karpenter.sh/nodepool": "outage"},
                                  "terminationGracePeriodSeconds": 1,
                                  "containers": [{"name": "c", "image": "busybox",
                                      "resources": {"requests": {"cpu": "1500m", "memory": "128Mi"}}}]}}}
    }))
    .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(direct.clone(), &ns);
    deployments
        .create(&PostParams::default(), &d)
        .await
        .expect("Deployment");

    // The node side, on the proxied client.
    let proxy = Proxy::start("127.0.0.1:6443").await;
    let client = client_via(cp, proxy.port).await;
    let node_side = common::NodeSide::start(
        &client,
        operator::nodes::IntentBoard::default(),
        &[],
        Duration::from_secs(1),
    );
    let informers = node_side.informers.clone();

    let pods: Api<Pod> = Api::namespaced(direct.clone(), &ns);
    let claims: Api<NodeClaim> = Api::all(direct.clone());
    let pool_claims = ListParams::default().labels("karpenter.sh/nodepool=outage");
    let running = |want: usize| {
        let pods = pods.clone();
        async move {
            let l = pods
                .list(&ListParams::default().labels("app=work"))
                .await
                .ok()?;
            let n = l
                .items
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .count();
            (n == want).then_some(())
        }
    };
    common::eventually(90, "2 pods Running on a kwok node", || running(2)).await;
    assert_eq!(claims.list(&pool_claims).await.unwrap().items.len(), 1);
    assert!(informers.stale().is_empty());

    // The API server goes away for the node side.
    proxy.cut.send(true).unwrap();
    let stale = common::eventually(30, "the shared watches noticed the outage", || {
        let informers = informers.clone();
        async move {
            let s = informers.stale();
            (s.len() == 5).then_some(s)
        }
    })
    .await;
    assert!(
        stale.contains(&"pods") && stale.contains(&"nodeclaims"),
        "{stale:?}"
    );
    // Meanwhile two more pods come (through a client that still reaches the API server):
    // they fit no node, and the node side, seeing nothing, launches nothing.
    deployments
        .patch(
            "work",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .expect("scale to 4");
    common::eventually(30, "4 pods, 2 of them pending", || async {
        let l = pods
            .list(&ListParams::default().labels("app=work"))
            .await
            .ok()?;
        let pending = l
            .items
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none())
            .count();
        (l.items.len() == 4 && pending == 2).then_some(())
    })
    .await;
    assert_eq!(claims.list(&pool_claims).await.unwrap().items.len(), 1);
    assert!(!informers.stale().is_empty(), "still cut");

    // Back: the watches list again, and the pending pods get a second node.
    proxy.cut.send(false).unwrap();
    common::eventually(60, "every watch listed again", || {
        let informers = informers.clone();
        async move { informers.stale().is_empty().then_some(()) }
    })
    .await;
    common::eventually(90, "4 pods Running", || running(4)).await;
    assert_eq!(claims.list(&pool_claims).await.unwrap().items.len(), 2);

    // Nothing panicked; everything stops.
    node_side.stop().await;
}
