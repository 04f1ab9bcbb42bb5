//! The ScaledJob controller on a real API server: a queue backlog on an in-process
//! `kedge serve` becomes one Job per message (KEDA's default strategy), finished Jobs beyond
//! `successfulJobsHistoryLimit` are deleted, a changed ScaledJob replaces the Jobs of its older
//! version (default rollout), and deleting the ScaledJob lets the garbage collector take its
//! Jobs.
//!
//! No kubelet runs here, so no consumer really takes a message: the test plays the consumers —
//! it receives and deletes a message and marks a Job `Complete`, as a Job whose pod took one
//! message and exited would be.

mod common;

use std::time::Duration;

use common::{control_plane, eventually, init_logs, install_crds, namespace};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use operator::run::{Options, ProviderKind};
use serde_json::json;

fn dyn_api(client: &kube::Client, ns: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("keda.sh", "v1alpha1", kind),
        plural,
    );
    Api::namespaced_with(client.clone(), ns, &ar)
}

/// The Jobs of ScaledJob `worker`: (name, generation annotation, complete).
async fn jobs(api: &Api<Job>) -> Vec<(String, String, bool)> {
    let list = api
        .list(&ListParams::default().labels("scaledjob.keda.sh/name=worker"))
        .await
        .unwrap();
    list.items
        .into_iter()
        .filter(|j| j.metadata.deletion_timestamp.is_none())
        .map(|j| {
            let complete = j
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| {
                    c.iter()
                        .any(|c| c.type_ == "Complete" && c.status == "True")
                });
            (
                j.metadata.name.unwrap_or_default(),
                j.metadata
                    .annotations
                    .and_then(|a| a.get("scaledjob.keda.sh/generation").cloned())
                    .unwrap_or_default(),
                complete,
            )
        })
        .collect()
}

async fn send(sqs: &common::Sqs, queue: &str, n: usize) {
    for i in 0..n {
        sqs.client
            .send_message()
            .queue_url(queue)
            .message_body(format!("work {i}"))
            .send()
            .await
            .unwrap();
    }
}

/// What one Job's consumer does: take a message and finish.
async fn consume_one(sqs: &common::Sqs, queue: &str, jobs_api: &Api<Job>, job: &str) {
    let got = sqs
        .client
        .receive_message()
        .queue_url(queue)
        .max_number_of_messages(1)
        .send()
        .await
        .unwrap();
    let m = &got.messages()[0];
    sqs.client
        .delete_message()
        .queue_url(queue)
        .receipt_handle(m.receipt_handle().unwrap())
        .send()
        .await
        .unwrap();
    mark_complete(jobs_api, job).await.unwrap();
}

/// Mark a Job complete, as the Job controller would once its pod succeeded (no kubelet runs
/// pods here).
async fn mark_complete(jobs_api: &Api<Job>, job: &str) -> kube::Result<Job> {
    jobs_api
        .patch_status(
            job,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "succeeded": 1,
                "conditions": [{"type": "Complete", "status": "True"}]}})),
        )
        .await
}

fn condition(sj: &DynamicObject, type_: &str) -> Option<String> {
    sj.data
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .and_then(|c| c["status"].as_str().map(String::from))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backlog_becomes_one_job_per_message_with_history_and_rollout() {
    let test = "a_backlog_becomes_one_job_per_message_with_history_and_rollout";
    let Some(cp) = control_plane(test) else {
        return;
    };
    init_logs();
    operator::init_tls();
    let client = cp.client().await.unwrap();
    install_crds(&client).await;
    let ns = namespace(&client, "kedge-scaledjob").await;
    let sqs = common::sqs("us-east-1").await;
    let queue = sqs
        .client
        .create_queue()
        .queue_name("jobs")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    send(&sqs, &queue, 4).await;

    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "aws"},
        "stringData": {"id": "test", "key": "test"}
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let ta: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
        "metadata": {"name": "sqs-creds"},
        "spec": {"secretTargetRef": [
            {"parameter": "awsAccessKeyID", "name": "aws", "key": "id"},
            {"parameter": "awsSecretAccessKey", "name": "aws", "key": "key"}]}
    }))
    .unwrap();
    dyn_api(
        &client,
        &ns,
        "TriggerAuthentication",
        "triggerauthentications",
    )
    .create(&PostParams::default(), &ta)
    .await
    .unwrap();
    let sjs = dyn_api(&client, &ns, "ScaledJob", "scaledjobs");
    let scaled_job = |version: &str| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob",
            "metadata": {"name": "worker", "labels": {"team": "payments"}},
            "spec": {
                "jobTargetRef": {"backoffLimit": 0, "template": {"spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "consumer", "image": "kedge",
                        "args": ["consume", "--max-messages", "1"],
                        "env": [{"name": "QUEUE_URL", "value": queue},
                                {"name": "VERSION", "value": version}]}]}}},
                "pollingInterval": 1,
                "maxReplicaCount": 10,
                "successfulJobsHistoryLimit": 1,
                "triggers": [{"type": "aws-sqs-queue",
                    "authenticationRef": {"name": "sqs-creds"},
                    "metadata": {"queueURLFromEnv": "QUEUE_URL", "queueLength": "1",
                                 "awsRegion": "us-east-1", "awsEndpoint": sqs.url}}]
            }
        }))
        .unwrap()
    };
    sjs.create(&PostParams::default(), &scaled_job("1"))
        .await
        .unwrap();

    let op = common::start_operator(Options {
        provider: ProviderKind::None,
        namespaces: vec![ns.clone()],
        own_namespace: ns.clone(),
        lease_name: format!("kedge-{ns}"),
        ..common::test_options(cp.kubeconfig(), "scaledjob-test")
    })
    .await;
    let jobs_api = Api::<Job>::namespaced(client.clone(), &ns);

    // Four messages: four Jobs, made from the template as KEDA makes them.
    let first = eventually(60, "4 Jobs for 4 messages", || {
        let jobs_api = jobs_api.clone();
        async move {
            let j = jobs(&jobs_api).await;
            (j.len() >= 4).then_some(j)
        }
    })
    .await;
    assert_eq!(first.len(), 4, "one Job per message, no more: {first:?}");
    let one = jobs_api.get(&first[0].0).await.unwrap();
    let meta = &one.metadata;
    assert!(meta.name.as_ref().unwrap().starts_with("worker-"));
    assert_eq!(meta.labels.as_ref().unwrap()["team"], "payments");
    assert_eq!(first[0].1, "1", "the ScaledJob's generation");
    let owner = &meta.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("ScaledJob", Some(true))
    );
    let spec = serde_json::to_value(one.spec.as_ref().unwrap()).unwrap();
    assert_eq!(spec["backoffLimit"], 0);
    assert_eq!(
        spec["template"]["metadata"]["labels"]["scaledjob.keda.sh/name"],
        "worker"
    );
    let sj = eventually(30, "the ScaledJob Ready and Active", || {
        let sjs = sjs.clone();
        async move {
            let sj = sjs.get("worker").await.ok()?;
            (condition(&sj, "Ready").as_deref() == Some("True")
                && condition(&sj, "Active").as_deref() == Some("True"))
            .then_some(sj)
        }
    })
    .await;
    assert!(sj.data.pointer("/status/lastActiveTime").is_some());

    // Two more messages while four Jobs run: default strategy, 6 - 4 = 2 more.
    send(&sqs, &queue, 2).await;
    let six = eventually(60, "6 Jobs for 6 messages", || {
        let jobs_api = jobs_api.clone();
        async move {
            let j = jobs(&jobs_api).await;
            (j.len() >= 6).then_some(j)
        }
    })
    .await;
    assert_eq!(six.len(), 6, "{six:?}");

    // Two consumers take a message each and finish: 4 messages for 4 running Jobs, none
    // created; of the two complete Jobs one is kept (successfulJobsHistoryLimit: 1). A poll
    // reads the queue before it lists the Jobs, so one that read the queue before a consumer
    // and the Jobs after would see one message too many (KEDA polls the same way): the
    // ScaledJob is paused while the consumers work.
    let pause = |paused: Option<&'static str>| {
        let sjs = sjs.clone();
        async move {
            sjs.patch(
                "worker",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {
                    "autoscaling.keda.sh/paused": paused}}})),
            )
            .await
            .unwrap();
        }
    };
    pause(Some("true")).await;
    eventually(30, "the ScaledJob Paused", || {
        let sjs = sjs.clone();
        async move {
            let sj = sjs.get("worker").await.ok()?;
            (condition(&sj, "Paused").as_deref() == Some("True")).then_some(())
        }
    })
    .await;
    consume_one(&sqs, &queue, &jobs_api, &six[0].0).await;
    consume_one(&sqs, &queue, &jobs_api, &six[1].0).await;
    pause(None).await;
    let done = [six[0].0.clone(), six[1].0.clone()];
    let after = eventually(60, "one complete Job kept", || {
        let jobs_api = jobs_api.clone();
        let done = done.clone();
        async move {
            let j = jobs(&jobs_api).await;
            // kube-controller-manager 1.20's Job controller writes a Job's whole status from
            // a sync that may have begun before the test marked the Job complete, undoing the
            // mark (it reads the Job again but keeps the status it computed): marked again
            // until the operator has seen both complete.
            let mut undone = false;
            for (name, _, complete) in &j {
                if done.contains(name) && !complete {
                    let _ = mark_complete(&jobs_api, name).await;
                    undone = true;
                }
            }
            (!undone && j.iter().filter(|j| j.2).count() == 1).then_some(j)
        }
    })
    .await;
    assert_eq!(after.len(), 5, "4 running + 1 complete: {after:?}");

    // A new version of the ScaledJob (default rollout): every Job of version 1 is deleted and
    // the 4 messages get 4 Jobs of version 2.
    let mut v2 = scaled_job("2");
    let current = sjs.get("worker").await.unwrap();
    v2.metadata.resource_version = current.metadata.resource_version;
    sjs.replace("worker", &PostParams::default(), &v2)
        .await
        .unwrap();
    let rolled = eventually(60, "only version-2 Jobs, one per message", || {
        let jobs_api = jobs_api.clone();
        async move {
            let j = jobs(&jobs_api).await;
            (j.len() >= 4 && j.iter().all(|j| j.1 == "2")).then_some(j)
        }
    })
    .await;
    assert_eq!(rolled.len(), 4, "{rolled:?}");

    // Deleting the ScaledJob: the garbage collector deletes its Jobs (owner references).
    sjs.delete("worker", &Default::default()).await.unwrap();
    eventually(60, "the Jobs garbage-collected", || {
        let jobs_api = jobs_api.clone();
        async move { jobs(&jobs_api).await.is_empty().then_some(()) }
    })
    .await;

    op.stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(30), op.task)
        .await
        .expect("operator stops")
        .unwrap()
        .unwrap();
}

/// `kubernetes-workload` through the operator's pod source: a Job per two live pods matching
/// the selector. And `cpu` usage on a cluster without a metrics server: the error says what is
/// missing instead of reading as zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workload_triggers_count_pods_and_missing_metrics_are_named() {
    let test = "workload_triggers_count_pods_and_missing_metrics_are_named";
    let Some(cp) = control_plane(test) else {
        return;
    };
    init_logs();
    operator::init_tls();
    let client = cp.client().await.unwrap();
    install_crds(&client).await;
    let ns = namespace(&client, "kedge-workload").await;
    let pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), &ns);
    for i in 0..4 {
        let p: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("producer-{i}"), "labels": {"app": "producer"}},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                "resources": {"requests": {"cpu": "100m"}}}]}
        }))
        .unwrap();
        // Until the ServiceAccount controller has made the namespace's `default` account,
        // pods are refused.
        eventually(30, "a pod created", || {
            let (pods, p) = (pods.clone(), p.clone());
            async move { pods.create(&PostParams::default(), &p).await.ok() }
        })
        .await;
    }
    let sj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob",
        "metadata": {"name": "worker"},
        "spec": {
            "jobTargetRef": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox"}]}}},
            "pollingInterval": 1,
            "triggers": [{"type": "kubernetes-workload",
                "metadata": {"podSelector": "app=producer", "value": "2"}}]
        }
    }))
    .unwrap();
    dyn_api(&client, &ns, "ScaledJob", "scaledjobs")
        .create(&PostParams::default(), &sj)
        .await
        .unwrap();
    let op = common::start_operator(Options {
        provider: ProviderKind::None,
        namespaces: vec![ns.clone()],
        own_namespace: ns.clone(),
        lease_name: format!("kedge-{ns}"),
        ..common::test_options(cp.kubeconfig(), "workload-test")
    })
    .await;
    let jobs_api = Api::<Job>::namespaced(client.clone(), &ns);
    let made = eventually(60, "Jobs for 4 pods at 2 per Job", || {
        let jobs_api = jobs_api.clone();
        async move {
            let j = jobs(&jobs_api).await;
            (j.len() >= 2).then_some(j)
        }
    })
    .await;
    assert_eq!(made.len(), 2, "{made:?}");

    // The cpu path of the same source, against this API server (no metrics-server).
    let src = operator::pod_source::KubePods::new(client.clone(), &ns, "app=producer", None);
    let err =
        scalers::pods::PodSource::target_usage(&src, model::keda::triggers::PodResource::Cpu, None)
            .await
            .unwrap_err();
    assert!(
        matches!(err, autoscale::ScalerError::Config(_))
            && err.to_string().contains("metrics.k8s.io")
            && err.to_string().contains("metrics server"),
        "{err}"
    );

    op.stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(30), op.task)
        .await
        .expect("operator stops")
        .unwrap()
        .unwrap();
}
