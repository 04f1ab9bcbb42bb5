//! The harness itself: a real API server answers, discovery reports its version, and the
//! controller-manager runs (a Deployment gets a ReplicaSet and Pods).

mod common;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};

#[tokio::test]
async fn control_plane_serves_and_controllers_run() {
    let Some(cp) = common::control_plane("control_plane_serves_and_controllers_run") else {
        return;
    };
    let client = cp.client().await.expect("client");
    let v = client.apiserver_version().await.expect("version");
    assert_eq!(v.major, "1");
    let ns = common::namespace(&client, "smoke").await;
    let d: Deployment = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let n = common::eventually(60, "2 pods of deployment web", || async {
        let l = pods.list(&ListParams::default()).await.ok()?;
        (l.items.len() == 2).then_some(l.items.len())
    })
    .await;
    assert_eq!(n, 2);
}
