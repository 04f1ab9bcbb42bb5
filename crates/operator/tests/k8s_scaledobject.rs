//! Scenarios (a) and (d) of the operator on a real API server:
//! (a) a ScaledObject whose `aws-sqs-queue` trigger reads a queue on an in-process
//!     `kedge serve` scales a Deployment up and back down through `/scale`, and its status
//!     conditions and events say why; credentials come from a TriggerAuthentication →
//!     Secret; busy/idle pods get their deletion cost before the scale-in.
//! (d) two operator replicas: only the leader acts; the other takes over when it stops.

mod common;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use operator::controlplane::ControlPlane;
use operator::run::{Options, ProviderKind};
use serde_json::{Value, json};

fn deployment(name: &str, replicas: i32, queue_url: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "consumer", "image": "kedge",
                                  "env": [{"name": "QUEUE_URL", "value": queue_url}],
                                  "resources": {"requests": {"cpu": "125m", "memory": "32Mi"}}}]}}}
    }))
    .unwrap()
}

fn so_api(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("keda.sh", "v1alpha1", "ScaledObject"),
        "scaledobjects",
    );
    Api::namespaced_with(client.clone(), ns, &ar)
}

fn ta_api(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("keda.sh", "v1alpha1", "TriggerAuthentication"),
        "triggerauthentications",
    );
    Api::namespaced_with(client.clone(), ns, &ar)
}

async fn create(api: &Api<DynamicObject>, v: Value) {
    let obj: DynamicObject = serde_json::from_value(v).unwrap();
    api.create(&PostParams::default(), &obj)
        .await
        .expect("create");
}

/// The queue URL comes from the target container's env (`queueURLFromEnv`).
fn scaled_object(name: &str, target: &str, endpoint: &str) -> Value {
    json!({
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": name, "annotations": {"autoscaling.kedge.dev/polling-interval": "250ms"}},
        "spec": {
            "scaleTargetRef": {"name": target},
            "minReplicaCount": 0, "maxReplicaCount": 8, "cooldownPeriod": 1,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
                "scaleDown": {"stabilizationWindowSeconds": 0}}}},
            "triggers": [{"type": "aws-sqs-queue",
                "authenticationRef": {"name": "sqs-creds"},
                "metadata": {"queueURLFromEnv": "QUEUE_URL", "queueLength": "2",
                             "awsRegion": "us-east-1", "awsEndpoint": endpoint}}]
        }
    })
}

async fn replicas(api: &Api<Deployment>, name: &str) -> i32 {
    api.get(name)
        .await
        .ok()
        .and_then(|d| d.spec.and_then(|s| s.replicas))
        .unwrap_or(-1)
}

fn condition(so: &DynamicObject, type_: &str) -> Option<(String, String)> {
    so.data
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or("").to_string(),
                c["reason"].as_str().unwrap_or("").to_string(),
            )
        })
}

async fn event_reasons(client: &kube::Client, ns: &str) -> Vec<String> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("events.k8s.io", "v1", "Event"),
            "events",
        ),
    );
    api.list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .iter()
                .filter_map(|e| e.data["reason"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The Secret and the TriggerAuthentication `sqs-creds` the ScaledObjects' trigger uses.
async fn sqs_credentials(client: &kube::Client, ns: &str) {
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "aws"},
        "stringData": {"id": "test", "key": "test"}
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    create(
        &ta_api(client, ns),
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
               "metadata": {"name": "sqs-creds"},
               "spec": {"secretTargetRef": [
                   {"parameter": "awsAccessKeyID", "name": "aws", "key": "id"},
                   {"parameter": "awsSecretAccessKey", "name": "aws", "key": "key"}]}}),
    )
    .await;
}

async fn start_operator(cp: &ControlPlane, identity: &str, ns: &str) -> common::Op {
    common::start_operator(Options {
        provider: ProviderKind::None,
        namespaces: vec![ns.to_string()],
        own_namespace: ns.to_string(),
        lease_name: format!("kedge-{ns}"),
        ..common::test_options(cp.kubeconfig(), identity)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scaled_object_scales_a_deployment_on_queue_depth_and_explains_why() {
    let Some(cp) = common::control_plane("scaled_object_scales_a_deployment_on_queue_depth") else {
        return;
    };
    common::init_logs();
    let client = cp.client().await.unwrap();
    {
        let _g = common::cluster_lock().await;
        common::install_crds(&client).await;
    }
    let ns = common::namespace(&client, "so-a").await;
    let sqs = common::sqs("us-east-1").await;
    let q = sqs
        .client
        .create_queue()
        .queue_name("jobs")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    deployments
        .create(&PostParams::default(), &deployment("consumer", 0, &q))
        .await
        .unwrap();
    sqs_credentials(&client, &ns).await;
    let sos = so_api(&client, &ns);
    create(&sos, scaled_object("consumer", "consumer", &sqs.url)).await;

    let op = start_operator(cp, "solo", &ns).await;

    // Idle queue: the object is Ready and not Active, the target stays at 0.
    common::eventually(30, "Ready=True, Active=False", || async {
        let so = sos.get("consumer").await.ok()?;
        (condition(&so, "Ready") == Some(("True".into(), "ScaledObjectReady".into()))
            && condition(&so, "Active") == Some(("False".into(), "ScalerNotActive".into())))
        .then_some(())
    })
    .await;
    assert_eq!(replicas(&deployments, "consumer").await, 0);

    // 10 messages, queueLength 2 → 5 replicas.
    for i in 0..10 {
        sqs.client
            .send_message()
            .queue_url(&q)
            .message_body(format!("m{i}"))
            .send()
            .await
            .unwrap();
    }
    common::eventually(30, "5 replicas", || async {
        (replicas(&deployments, "consumer").await == 5).then_some(())
    })
    .await;
    let so = sos.get("consumer").await.unwrap();
    assert_eq!(
        condition(&so, "Active"),
        Some(("True".into(), "ScalerActive".into()))
    );
    assert_eq!(so.data["status"]["originalReplicaCount"], 0);
    assert_eq!(so.data["status"]["scaleTargetKind"], "apps/v1.Deployment");
    assert!(so.data["status"]["lastActiveTime"].is_string());
    assert!(
        so.metadata
            .finalizers
            .as_ref()
            .is_some_and(|f| f.iter().any(|f| f == "finalizer.keda.sh"))
    );
    common::eventually(15, "activation event", || async {
        let r = event_reasons(&client, &ns).await;
        (r.iter().any(|r| r == "KEDAScaleTargetActivated")
            && r.iter().any(|r| r == "KEDAScalersStarted"))
        .then_some(())
    })
    .await;
    let metrics = reqwest_get(&format!("http://{}/metrics", op.running.addr)).await;
    assert!(metrics.contains("keda_scaler_metrics_value"), "{metrics}");
    assert!(metrics.contains("kedge_operator_leader 1"), "{metrics}");

    // Busy/idle: the controller-manager made 5 pods; two report idle, two busy, one says
    // nothing (counts as idle).
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let names = common::eventually(30, "5 pods", || async {
        let l = pods
            .list(&ListParams::default().labels("app=consumer"))
            .await
            .ok()?;
        (l.items.len() == 5).then(|| {
            l.items
                .iter()
                .filter_map(|p| p.metadata.name.clone())
                .collect::<Vec<_>>()
        })
    })
    .await;
    for (n, busy) in [
        (&names[0], "false"),
        (&names[1], "false"),
        (&names[2], "true"),
        (&names[3], "true"),
    ] {
        let patch = json!({"metadata": {"annotations": {"kedge.dev/busy": busy}}});
        pods.patch(n, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }
    // Pods that get the victims' deletion cost, as a watch sees them, and the first count
    // below 5 written to the Deployment.
    let marked = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let seen_busy = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let first_in = Arc::new(std::sync::Mutex::new(None::<i32>));
    let watches = {
        use futures::StreamExt;
        use kube::runtime::{WatchStreamExt, watcher};
        let marked = marked.clone();
        let seen_busy = seen_busy.clone();
        let pod_stream = watcher(
            pods.clone(),
            watcher::Config::default().labels("app=consumer"),
        )
        .applied_objects();
        let first_in = first_in.clone();
        let dep_stream = watcher(
            deployments.clone(),
            watcher::Config::default().fields("metadata.name=consumer"),
        )
        .applied_objects();
        [
            tokio::spawn(async move {
                let mut stream = std::pin::pin!(pod_stream);
                while let Some(Ok(p)) = stream.next().await {
                    let annotation = |k: &str| {
                        p.metadata
                            .annotations
                            .as_ref()
                            .and_then(|a| a.get(k))
                            .cloned()
                    };
                    if annotation("kedge.dev/busy").as_deref() == Some("true") {
                        seen_busy
                            .lock()
                            .unwrap()
                            .insert(p.metadata.name.clone().unwrap_or_default());
                    }
                    let cost = annotation("controller.kubernetes.io/pod-deletion-cost");
                    if cost.as_deref() == Some("-2147483648") {
                        marked
                            .lock()
                            .unwrap()
                            .insert(p.metadata.name.unwrap_or_default());
                    }
                }
            }),
            tokio::spawn(async move {
                let mut stream = std::pin::pin!(dep_stream);
                while let Some(Ok(d)) = stream.next().await {
                    let r = d.spec.and_then(|s| s.replicas).unwrap_or(0);
                    let mut f = first_in.lock().unwrap();
                    if r < 5 && f.is_none() {
                        *f = Some(r);
                    }
                }
            }),
        ]
    };
    // The busy annotations have reached a Pod watch before the backlog drops (the operator's
    // watch gets the same events; under load the drop raced them).
    common::eventually(30, "the busy pods seen by a watch", || async {
        (seen_busy.lock().unwrap().len() == 2).then_some(())
    })
    .await;
    // Leave 2 messages: the HPA wants 1 replica, but two consumers are busy: the count goes
    // to 2, and exactly the three idle pods are marked to go first.
    // Received messages still count (in flight); one batch delete takes 8 away at once.
    let mut handles = Vec::new();
    while handles.len() < 8 {
        let r = sqs
            .client
            .receive_message()
            .queue_url(&q)
            .max_number_of_messages(8 - handles.len() as i32)
            .send()
            .await
            .unwrap();
        handles.extend(
            r.messages
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| m.receipt_handle),
        );
    }
    let mut batch = sqs.client.delete_message_batch().queue_url(&q);
    for (i, h) in handles.iter().enumerate() {
        batch = batch.entries(
            aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                .id(format!("m{i}"))
                .receipt_handle(h)
                .build()
                .unwrap(),
        );
    }
    let r = batch.send().await.unwrap();
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    // The first scale-in keeps the busy consumers (the ReplicaSet of this 1.20 API server
    // does not rank by deletion cost yet, so which pods it deletes is its own choice).
    let first = common::eventually(30, "a scale-in", || async { *first_in.lock().unwrap() }).await;
    assert_eq!(first, 2, "the count drops only by the idle consumers");
    let idle: std::collections::BTreeSet<String> = [&names[0], &names[1], &names[4]]
        .into_iter()
        .cloned()
        .collect();
    common::eventually(15, "the idle pods marked to go first", || async {
        marked.lock().unwrap().is_superset(&idle).then_some(())
    })
    .await;
    let m = marked.lock().unwrap().clone();
    assert!(
        !m.contains(&names[2]) && !m.contains(&names[3]),
        "a busy consumer was marked: {m:?}"
    );
    for w in watches {
        w.abort();
    }
    // The consumers finish: every pod left reports idle.
    for p in pods
        .list(&ListParams::default().labels("app=consumer"))
        .await
        .unwrap()
        .items
    {
        let patch = json!({"metadata": {"annotations": {"kedge.dev/busy": "false"}}});
        let _ = pods
            .patch(
                &p.metadata.name.unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await;
    }

    // Drain the queue → scale to 0, Active=False, deactivation event.
    loop {
        let r = sqs
            .client
            .receive_message()
            .queue_url(&q)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let msgs = r.messages.unwrap_or_default();
        if msgs.is_empty() {
            break;
        }
        for m in msgs {
            sqs.client
                .delete_message()
                .queue_url(&q)
                .receipt_handle(m.receipt_handle.unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    common::eventually(30, "scaled to 0", || async {
        (replicas(&deployments, "consumer").await == 0).then_some(())
    })
    .await;
    common::eventually(15, "deactivation event", || async {
        event_reasons(&client, &ns)
            .await
            .iter()
            .any(|r| r == "KEDAScaleTargetDeactivated")
            .then_some(())
    })
    .await;
    let so = sos.get("consumer").await.unwrap();
    assert_eq!(
        condition(&so, "Active"),
        Some(("False".into(), "ScalerNotActive".into()))
    );

    // An invalid ScaledObject: Ready=False with the field path, a Warning event.
    create(
        &sos,
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
               "metadata": {"name": "broken"},
               "spec": {"scaleTargetRef": {"name": "missing"}, "triggers": [
                   {"type": "aws-sqs-queue", "metadata": {"queueURL": q, "queueLength": "2", "awsRegion": "us-east-1"}}]}}),
    )
    .await;
    common::eventually(30, "broken: Ready=False", || async {
        let so = sos.get("broken").await.ok()?;
        let (s, r) = condition(&so, "Ready")?;
        (s == "False" && r == "ScaledObjectCheckFailed").then_some(so)
    })
    .await;
    let so = sos.get("broken").await.unwrap();
    let msg = so.data["status"]["conditions"][0]["message"]
        .as_str()
        .unwrap_or("");
    assert!(
        msg.contains("Deployment") && msg.contains("missing"),
        "{msg}"
    );

    // Deleting the object runs the finalizer (the object goes away).
    sos.delete("consumer", &Default::default()).await.unwrap();
    common::eventually(30, "ScaledObject deleted", || async {
        sos.get_opt("consumer").await.ok()?.is_none().then_some(())
    })
    .await;

    op.stop.send(true).unwrap();
    op.task.await.unwrap().unwrap();
}

/// Minimal HTTP GET over a TCP stream (no client dependency for one request).
async fn reqwest_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    s.write_all(
        format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_only_the_leader_acts_and_the_standby_takes_over() {
    let Some(cp) = common::control_plane("two_replicas_only_the_leader_acts") else {
        return;
    };
    common::init_logs();
    let client = cp.client().await.unwrap();
    {
        let _g = common::cluster_lock().await;
        common::install_crds(&client).await;
    }
    let ns = common::namespace(&client, "so-d").await;
    let sqs = common::sqs("us-east-1").await;
    let q = sqs
        .client
        .create_queue()
        .queue_name("work")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    sqs_credentials(&client, &ns).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    for d in ["first", "second"] {
        deployments
            .create(&PostParams::default(), &deployment(d, 0, &q))
            .await
            .unwrap();
    }
    for i in 0..4 {
        sqs.client
            .send_message()
            .queue_url(&q)
            .message_body(format!("m{i}"))
            .send()
            .await
            .unwrap();
    }

    let a = start_operator(cp, "replica-a", &ns).await;
    let mut a_leading = a.running.leading.clone();
    a_leading.wait_for(|v| *v).await.unwrap();
    let b = start_operator(cp, "replica-b", &ns).await;

    let sos = so_api(&client, &ns);
    create(&sos, scaled_object("first", "first", &sqs.url)).await;
    common::eventually(30, "first scaled to 2 by the leader", || async {
        (replicas(&deployments, "first").await == 2).then_some(())
    })
    .await;
    // Only one leader; the standby has no scale loops and no leader gauge.
    assert!(*a.running.leading.borrow());
    assert!(!*b.running.leading.borrow());
    assert!(a.running.metrics.is_leader());
    assert!(!b.running.metrics.is_leader());
    assert!(
        b.running.metrics.is_ready(),
        "a standby is ready (healthy), just not leading"
    );
    let lease: k8s_openapi::api::coordination::v1::Lease = Api::namespaced(client.clone(), &ns)
        .get(&format!("kedge-{ns}"))
        .await
        .unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("replica-a")
    );

    // Stop the leader: it releases the Lease; the standby takes over and acts.
    a.stop.send(true).unwrap();
    a.task.await.unwrap().unwrap();
    let mut b_leading = b.running.leading.clone();
    tokio::time::timeout(Duration::from_secs(20), b_leading.wait_for(|v| *v))
        .await
        .expect("standby took over within 20 s")
        .unwrap();
    create(&sos, scaled_object("second", "second", &sqs.url)).await;
    common::eventually(30, "second scaled to 2 by the new leader", || async {
        (replicas(&deployments, "second").await == 2).then_some(())
    })
    .await;
    let lease: k8s_openapi::api::coordination::v1::Lease = Api::namespaced(client.clone(), &ns)
        .get(&format!("kedge-{ns}"))
        .await
        .unwrap();
    let spec = lease.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("replica-b"));
    assert!(spec.lease_transitions.unwrap_or(0) >= 1);
    b.stop.send(true).unwrap();
    b.task.await.unwrap().unwrap();
}

/// A ScaledObject's `kubernetes-workload` trigger (issue 16: ScaledObjects get the pod source
/// ScaledJobs have) on an operator that manages nodes, so its pods come from the operator's
/// one shared Pod watch: the Deployment follows the count of matching pods (one replica per
/// two), up as producers appear and down as they go.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workload_trigger_scales_a_deployment_from_the_shared_pod_watch() {
    let test = "workload_trigger_scales_a_deployment_from_the_shared_pod_watch";
    let Some(cp) = common::control_plane(test) else {
        return;
    };
    common::init_logs();
    let client = cp.client().await.unwrap();
    // The node side (kwok) acts cluster-wide.
    let _g = common::cluster_lock().await;
    common::install_crds(&client).await;
    let ns = common::namespace(&client, "so-workload").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let producer = |i: usize| -> Pod {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("producer-{i}"), "labels": {"app": "producer"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}
        }))
        .unwrap()
    };
    for i in 0..2 {
        // Until the ServiceAccount controller has made the namespace's `default` account,
        // pods are refused.
        common::eventually(30, "a producer pod created", || {
            let (pods, p) = (pods.clone(), producer(i));
            async move { pods.create(&PostParams::default(), &p).await.ok() }
        })
        .await;
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    deployments
        .create(&PostParams::default(), &deployment("worker", 0, "unused"))
        .await
        .unwrap();
    let sos = so_api(&client, &ns);
    create(
        &sos,
        json!({
            "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": "worker",
                         "annotations": {"autoscaling.kedge.dev/polling-interval": "250ms"}},
            "spec": {
                "scaleTargetRef": {"name": "worker"},
                "minReplicaCount": 0, "maxReplicaCount": 8, "cooldownPeriod": 1,
                "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
                    "scaleDown": {"stabilizationWindowSeconds": 0}}}},
                "triggers": [{"type": "kubernetes-workload",
                    "metadata": {"podSelector": "app=producer", "value": "2"}}]
            }
        }),
    )
    .await;
    let op = common::start_operator(Options {
        provider: ProviderKind::Kwok,
        namespaces: vec![ns.clone()],
        own_namespace: ns.clone(),
        lease_name: format!("kedge-{ns}"),
        ..common::test_options(cp.kubeconfig(), "workload")
    })
    .await;

    // 2 producers at 2 per replica → 1.
    common::eventually(60, "1 replica for 2 producers", || async {
        (replicas(&deployments, "worker").await == 1).then_some(())
    })
    .await;
    // The status is written after the count: wait for it, then check it.
    let so = common::eventually(30, "the ScaledObject's Ready condition", || async {
        let so = sos.get("worker").await.ok()?;
        condition(&so, "Ready").is_some().then_some(so)
    })
    .await;
    assert_eq!(
        condition(&so, "Ready"),
        Some(("True".into(), "ScaledObjectReady".into())),
        "{:?}",
        so.data.pointer("/status")
    );
    // 6 producers → 3.
    for i in 2..6 {
        pods.create(&PostParams::default(), &producer(i))
            .await
            .unwrap();
    }
    common::eventually(60, "3 replicas for 6 producers", || async {
        (replicas(&deployments, "worker").await == 3).then_some(())
    })
    .await;
    // The producers go (unbound pods are deleted at once) → 0.
    for i in 0..6 {
        pods.delete(&format!("producer-{i}"), &Default::default())
            .await
            .unwrap();
    }
    common::eventually(60, "0 replicas without producers", || async {
        (replicas(&deployments, "worker").await == 0).then_some(())
    })
    .await;

    op.stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(30), op.task)
        .await
        .expect("operator stops")
        .unwrap()
        .unwrap();
}
