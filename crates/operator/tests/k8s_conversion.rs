//! The CRD conversion webhook on a real API server: Karpenter's `v1beta1` manifests (the seed's
//! NodePool and EC2NodeClass, and a NodeClaim) apply unchanged to kedge's CRDs, are stored as
//! `v1`, and read back in either version with Karpenter 1.0's field mappings.
//!
//! The operator runs outside the cluster here, so the CRDs name the webhook by URL
//! (`https://127.0.0.1:<port>/convert`) instead of the chart's Service; the certificate, the
//! Secret holding it and the CRDs' `caBundle` are made by the operator exactly as in a pod.

mod common;

use std::time::Duration;

use common::{cluster_lock, control_plane, eventually, init_logs, install_crds, namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use serde_json::{Value, json};

fn api(client: &kube::Client, group: &str, version: &str, kind: &str) -> Api<DynamicObject> {
    let plural = match kind {
        "EC2NodeClass" => "ec2nodeclasses".to_string(),
        _ => format!("{}s", kind.to_lowercase()),
    };
    Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), &plural),
    )
}

/// A whole object as JSON (what `kubectl get -o json` shows).
fn whole(o: &DynamicObject) -> Value {
    serde_json::to_value(o).unwrap()
}

/// The seed's NodePool (examples/eks-sqs before Karpenter 1.0; the corpus keeps it).
fn seed_nodepool() -> Value {
    json!({
        "apiVersion": "karpenter.sh/v1beta1", "kind": "NodePool",
        "metadata": {"name": "conv-seed", "labels": {"team": "payments"}},
        "spec": {
            "template": {"spec": {
                "requirements": [
                    {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}],
                "nodeClassRef": {"apiVersion": "karpenter.k8s.aws/v1beta1", "kind": "EC2NodeClass",
                                 "name": "conv-seed"},
                "kubelet": {"maxPods": 110,
                            "systemReserved": {"cpu": "100m", "memory": "100Mi"},
                            "evictionHard": {"memory.available": "5%"},
                            "imageGCHighThresholdPercent": 85}}},
            "limits": {"cpu": "1000"},
            "disruption": {"consolidationPolicy": "WhenUnderutilized", "expireAfter": "720h"}
        }
    })
}

fn seed_node_class() -> Value {
    json!({
        "apiVersion": "karpenter.k8s.aws/v1beta1", "kind": "EC2NodeClass",
        "metadata": {"name": "conv-seed"},
        "spec": {
            "amiFamily": "AL2",
            "role": "KarpenterNodeRole-my-cluster",
            "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "my-cluster"}}],
            "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "my-cluster"}}]
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn v1beta1_manifests_apply_are_stored_as_v1_and_read_back_in_both_versions() {
    let test = "v1beta1_manifests_apply_are_stored_as_v1_and_read_back_in_both_versions";
    let Some(cp) = control_plane(test) else {
        return;
    };
    init_logs();
    operator::init_tls();
    let _lock = cluster_lock().await;
    let admin = cp.client().await.unwrap();
    install_crds(&admin).await;
    let ns = namespace(&admin, "kedge-conversion").await;

    // Without the operator the committed CRDs name a Service that is not there: v1beta1 is
    // refused (and nothing is written), v1 works.
    let pools_beta = api(&admin, "karpenter.sh", "v1beta1", "NodePool");
    let pools = api(&admin, "karpenter.sh", "v1", "NodePool");
    let seed: DynamicObject = serde_json::from_value(seed_nodepool()).unwrap();
    let refused = pools_beta
        .create(&PostParams::default(), &seed)
        .await
        .expect_err("no webhook yet");
    assert!(
        refused.to_string().contains("conversion webhook"),
        "{refused}"
    );
    assert!(pools.get_opt("conv-seed").await.unwrap().is_none());

    // The operator with the webhook on a loopback port (picked free, then handed to it).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("https://127.0.0.1:{port}{}", operator::webhook::PATH);
    let op = common::start_operator(operator::run::Options {
        own_namespace: ns.clone(),
        lease_name: "kedge-conversion".into(),
        webhook: Some(operator::webhook::Settings {
            bind: format!("127.0.0.1:{port}"),
            service: "kedge-webhook".into(),
            namespace: ns.clone(),
            url: Some(url.clone()),
            secret: "kedge-webhook-cert".into(),
            recheck: Duration::from_secs(1),
        }),
        ..common::test_options(cp.kubeconfig(), "conversion-test")
    })
    .await;
    assert_eq!(
        op.running.webhook_addr.map(|a| a.port()),
        Some(port),
        "the webhook serves where the CRDs point"
    );

    // The CRDs point at it, with the CA of the certificate kept in the Secret.
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    for name in ["nodepools.karpenter.sh", "ec2nodeclasses.karpenter.k8s.aws"] {
        let crd = crds.get(name).await.unwrap();
        let cc = crd
            .spec
            .conversion
            .as_ref()
            .and_then(|c| c.webhook.as_ref())
            .map(|w| w.client_config.clone().unwrap_or_default())
            .unwrap_or_default();
        assert_eq!(cc.url.as_deref(), Some(url.as_str()), "{name}");
        assert!(cc.service.is_none(), "{name}");
        let secret = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(admin.clone(), &ns)
            .get("kedge-webhook-cert")
            .await
            .unwrap();
        assert_eq!(
            cc.ca_bundle.map(|b| b.0),
            secret.data.unwrap().get("ca.crt").map(|b| b.0.clone()),
            "{name}"
        );
    }

    // `kubectl apply` of the seed's v1beta1 NodePool (the API server notices the CRD's new
    // conversion settings asynchronously: retry until the first create goes through).
    let created = eventually(30, "the v1beta1 NodePool created", || {
        let (pools_beta, seed) = (pools_beta.clone(), seed.clone());
        async move {
            pools_beta
                .create(&PostParams::default(), &seed)
                .await
                .inspect_err(|e| eprintln!("creating the v1beta1 NodePool: {e}"))
                .ok()
        }
    })
    .await;
    assert_eq!(
        created.types.as_ref().unwrap().api_version,
        "karpenter.sh/v1beta1"
    );

    // Stored as v1.
    let crd = crds.get("nodepools.karpenter.sh").await.unwrap();
    assert_eq!(
        crd.status.and_then(|s| s.stored_versions),
        Some(vec!["v1".to_string()])
    );

    // Read as v1: Karpenter 1.0's mappings.
    let v1 = whole(&pools.get("conv-seed").await.unwrap());
    assert_eq!(v1["apiVersion"], "karpenter.sh/v1");
    assert_eq!(v1["metadata"]["labels"]["team"], "payments");
    let spec = &v1["spec"];
    assert_eq!(
        spec["disruption"],
        json!({"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "0s"})
    );
    assert_eq!(spec["template"]["spec"]["expireAfter"], "720h");
    assert_eq!(
        spec["template"]["spec"]["nodeClassRef"],
        json!({"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "conv-seed"})
    );
    assert!(spec["template"]["spec"].get("kubelet").is_none());
    assert_eq!(
        spec["template"]["spec"]["requirements"],
        seed_nodepool()["spec"]["template"]["spec"]["requirements"]
    );
    assert_eq!(spec["limits"], json!({"cpu": "1000"}));
    let ann = &v1["metadata"]["annotations"];
    let kubelet: Value = serde_json::from_str(
        ann["compatibility.karpenter.sh/v1beta1-kubelet-conversion"]
            .as_str()
            .expect("the kubelet kept in its compatibility annotation"),
    )
    .unwrap();
    assert_eq!(
        kubelet,
        seed_nodepool()["spec"]["template"]["spec"]["kubelet"]
    );
    let reference: Value = serde_json::from_str(
        ann["compatibility.karpenter.sh/v1beta1-nodeclass-reference"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        reference["apiVersion"], "karpenter.k8s.aws/v1beta1",
        "{reference}"
    );
    // The operator's own typed view (it watches v1) reads the converted object.
    let typed = Api::<operator::crd::NodePool>::all(admin.clone())
        .get("conv-seed")
        .await
        .unwrap();
    let parsed: model::karpenter::NodePoolSpec =
        serde_json::from_value(typed.spec.clone()).expect("the v1 spec parses as kedge's model");
    assert_eq!(parsed.template.spec.node_class_ref.name, "conv-seed");

    // Read as v1beta1: as written, without the compatibility annotations.
    let beta = whole(&pools_beta.get("conv-seed").await.unwrap());
    assert_eq!(beta["apiVersion"], "karpenter.sh/v1beta1");
    assert_eq!(beta["spec"], seed_nodepool()["spec"]);
    assert!(
        beta["metadata"]["annotations"]
            .as_object()
            .is_none_or(|a| a.keys().all(|k| !k.starts_with("compatibility."))),
        "{}",
        beta["metadata"]
    );
    // Listing converts too.
    let listed = pools_beta.list(&Default::default()).await.unwrap();
    assert!(
        listed
            .items
            .iter()
            .any(|p| p.metadata.name.as_deref() == Some("conv-seed"))
    );

    // A change through v1 shows in v1beta1: WhenEmpty keeps its consolidateAfter.
    pools
        .patch(
            "conv-seed",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"disruption": {
                "consolidationPolicy": "WhenEmpty", "consolidateAfter": "30s"}}})),
        )
        .await
        .unwrap();
    let beta = whole(&pools_beta.get("conv-seed").await.unwrap());
    assert_eq!(
        beta["spec"]["disruption"],
        json!({"consolidationPolicy": "WhenEmpty", "consolidateAfter": "30s", "expireAfter": "720h"})
    );
    assert_eq!(beta["spec"]["template"]["spec"]["kubelet"]["maxPods"], 110);

    // The seed's EC2NodeClass: amiFamily AL2 without terms becomes the alias `al2@latest`.
    let classes_beta = api(&admin, "karpenter.k8s.aws", "v1beta1", "EC2NodeClass");
    let classes = api(&admin, "karpenter.k8s.aws", "v1", "EC2NodeClass");
    let class: DynamicObject = serde_json::from_value(seed_node_class()).unwrap();
    eventually(30, "the v1beta1 EC2NodeClass created", || {
        let (classes_beta, class) = (classes_beta.clone(), class.clone());
        async move {
            classes_beta
                .create(&PostParams::default(), &class)
                .await
                .inspect_err(|e| eprintln!("creating the v1beta1 EC2NodeClass: {e}"))
                .ok()
        }
    })
    .await;
    let v1 = whole(&classes.get("conv-seed").await.unwrap());
    assert_eq!(
        v1["spec"]["amiSelectorTerms"],
        json!([{"alias": "al2@latest"}])
    );
    assert!(v1["spec"].get("amiFamily").is_none(), "{}", v1["spec"]);
    assert_eq!(v1["spec"]["role"], "KarpenterNodeRole-my-cluster");
    let beta = whole(&classes_beta.get("conv-seed").await.unwrap());
    assert_eq!(beta["spec"], seed_node_class()["spec"]);

    // A NodeClaim written as v1beta1 (Karpenter 1.0 served those too) reads back as v1.
    let claims_beta = api(&admin, "karpenter.sh", "v1beta1", "NodeClaim");
    let claims = api(&admin, "karpenter.sh", "v1", "NodeClaim");
    let claim: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1beta1", "kind": "NodeClaim",
        "metadata": {"name": "conv-claim"},
        "spec": {"requirements": [{"key": "node.kubernetes.io/instance-type", "operator": "In",
                                   "values": ["m5.large"]}],
                 "nodeClassRef": {"apiVersion": "karpenter.k8s.aws/v1beta1",
                                  "kind": "EC2NodeClass", "name": "conv-seed"}}
    }))
    .unwrap();
    eventually(30, "the v1beta1 NodeClaim created", || {
        let (claims_beta, claim) = (claims_beta.clone(), claim.clone());
        async move {
            claims_beta
                .create(&PostParams::default(), &claim)
                .await
                .inspect_err(|e| eprintln!("creating the v1beta1 NodeClaim: {e}"))
                .ok()
        }
    })
    .await;
    let v1 = whole(&claims.get("conv-claim").await.unwrap());
    assert_eq!(
        v1["spec"]["nodeClassRef"],
        json!({"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "conv-seed"})
    );
    let beta = whole(&claims_beta.get("conv-claim").await.unwrap());
    assert_eq!(beta["spec"], claim.data["spec"]);
    claims
        .delete("conv-claim", &Default::default())
        .await
        .unwrap();

    // Something the conversion refuses is an error that names the field, not a stored object.
    let mut bad = seed_nodepool();
    bad["metadata"]["name"] = "conv-bad".into();
    bad["metadata"]["annotations"] =
        json!({"compatibility.karpenter.sh/v1beta1-kubelet-conversion": "{not json"});
    let err = pools
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
                "metadata": bad["metadata"],
                "spec": {"template": {"spec": {"requirements": [],
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "x"}}}}
            }))
            .unwrap(),
        )
        .await;
    // Written as v1 it is stored (no conversion on the way in) …
    err.unwrap();
    // … and read as v1beta1 the API server reports the webhook's reason.
    let refused = pools_beta.get("conv-bad").await.expect_err("unconvertible");
    assert!(
        refused.to_string().contains("v1beta1-kubelet-conversion"),
        "{refused}"
    );

    for (a, n) in [
        (&pools, "conv-seed"),
        (&pools, "conv-bad"),
        (&classes, "conv-seed"),
    ] {
        a.delete(n, &Default::default()).await.unwrap();
    }
    op.stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(30), op.task)
        .await
        .expect("operator stops")
        .unwrap()
        .unwrap();
}
