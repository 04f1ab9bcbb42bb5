//! Busy-aware scale-in in the cluster.
//!
//! **The contract.** A consumer reports whether it is working on something by setting an
//! annotation on its own Pod: `kedge.dev/busy: "true"` while it holds messages, `"false"`
//! when idle (`kedge consume` does this when `POD_NAME`/`POD_NAMESPACE` are set). Before the
//! operator lowers a target's replicas it sets `controller.kubernetes.io/pod-deletion-cost`
//! on the target's pods — idle `-1000`, busy `1000`, unknown (no annotation) `0` — so the
//! ReplicaSet controller deletes idle pods first (it deletes the lowest cost first). Pods
//! whose cost is already right are not touched.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};

use crate::{Error, Result};

/// Annotation a consumer sets on its own Pod: `"true"` busy, `"false"` idle.
pub const ANNOTATION_BUSY: &str = "kedge.dev/busy";
pub use model::kube::POD_DELETION_COST;

pub const COST_IDLE: i32 = -1000;
pub const COST_UNKNOWN: i32 = 0;
pub const COST_BUSY: i32 = 1000;

/// The deletion cost a pod should carry given its busy annotation.
pub fn desired_cost(annotations: Option<&BTreeMap<String, String>>) -> i32 {
    match annotations
        .and_then(|a| a.get(ANNOTATION_BUSY))
        .map(|v| v.trim())
    {
        Some("true") => COST_BUSY,
        Some("false") => COST_IDLE,
        _ => COST_UNKNOWN,
    }
}

/// The pods whose deletion cost must change, with the new value (pods being deleted are
/// skipped).
pub fn cost_changes<'a>(pods: impl IntoIterator<Item = &'a ObjectMeta>) -> Vec<(String, i32)> {
    let mut out = Vec::new();
    for m in pods {
        if m.deletion_timestamp.is_some() {
            continue;
        }
        let Some(name) = m.name.clone() else {
            continue;
        };
        let ann = m.annotations.as_ref();
        let want = desired_cost(ann);
        let have = ann
            .and_then(|a| a.get(POD_DELETION_COST))
            .and_then(|v| v.trim().parse::<i32>().ok());
        let unchanged = match have {
            Some(h) => h == want,
            None => want == COST_UNKNOWN,
        };
        if !unchanged {
            out.push((name, want));
        }
    }
    out.sort();
    out
}

/// Mark the pods selected by `selector` (a label selector string, as `/scale` reports it)
/// with their deletion cost. Returns how many pods were patched.
pub async fn mark_pods(client: &kube::Client, namespace: &str, selector: &str) -> Result<usize> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    // Metadata only (names, annotations, deletion): 1,000 ScaledObjects scaling in together
    // would otherwise each read its whole pods.
    let pods = api
        .list_metadata(&ListParams::default().labels(selector))
        .await
        .map_err(Error::kube(format!(
            "listing pods {selector:?} in {namespace}"
        )))?;
    let changes = cost_changes(pods.items.iter().map(|p| &p.metadata));
    let mut patched = 0;
    for (name, cost) in &changes {
        let patch = serde_json::json!({
            "metadata": {"annotations": {POD_DELETION_COST: cost.to_string()}}
        });
        match api
            .patch_metadata(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => patched += 1,
            // Gone meanwhile: nothing to prefer.
            Err(e) if crate::error::kube_status(&e) == Some(404) => {}
            Err(e) => {
                return Err(Error::Kube {
                    context: format!("annotating pod {namespace}/{name}"),
                    source: e,
                });
            }
        }
    }
    Ok(patched)
}

/// The consumer's side of the contract: set `kedge.dev/busy` on pod `namespace/name` on
/// every change of `busy` (the first value too), until the channel closes. Failures are
/// logged and retried on the next change; the consumer's work never waits for this.
pub async fn publish_busy(
    client: kube::Client,
    namespace: String,
    name: String,
    mut busy: tokio::sync::watch::Receiver<bool>,
) {
    let api: Api<Pod> = Api::namespaced(client, &namespace);
    let mut last: Option<bool> = None;
    loop {
        let now = *busy.borrow_and_update();
        if last != Some(now) {
            let patch = serde_json::json!({
                "metadata": {"annotations": {ANNOTATION_BUSY: if now { "true" } else { "false" }}}
            });
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => last = Some(now),
                Err(e) => {
                    tracing::warn!(error = %e, pod = %name, "could not publish busy/idle on the pod")
                }
            }
        }
        if busy.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{self, mock_client};
    use serde_json::json;
    use std::time::Duration;

    fn pod(name: &str, busy: Option<&str>, cost: Option<&str>) -> Pod {
        let mut ann = serde_json::Map::new();
        if let Some(b) = busy {
            ann.insert(ANNOTATION_BUSY.into(), json!(b));
        }
        if let Some(c) = cost {
            ann.insert(POD_DELETION_COST.into(), json!(c));
        }
        serde_json::from_value(json!({"metadata": {"name": name, "annotations": ann}})).unwrap()
    }

    #[tokio::test]
    async fn publish_busy_patches_the_own_pod_on_each_change() {
        let (client, mut api) = mock_client();
        let (tx, rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(publish_busy(client, "ns".into(), "me".into(), rx));
        fixtures::timeout(Duration::from_secs(5), async {
            let b = api
                .expect(
                    "PATCH",
                    "/api/v1/namespaces/ns/pods/me?",
                    200,
                    json!({"metadata": {"name": "me"}}),
                )
                .await;
            assert_eq!(b["metadata"]["annotations"][ANNOTATION_BUSY], "false");
            tx.send(true).unwrap();
            let b = api
                .expect(
                    "PATCH",
                    "/api/v1/namespaces/ns/pods/me?",
                    200,
                    json!({"metadata": {"name": "me"}}),
                )
                .await;
            assert_eq!(b["metadata"]["annotations"][ANNOTATION_BUSY], "true");
        })
        .await;
        drop(tx);
        task.await.unwrap();
        api.expect_no_more(Duration::from_millis(50)).await;
    }

    #[test]
    fn idle_pods_become_cheapest_and_right_costs_are_left_alone() {
        let pods = [
            pod("a", Some("false"), None),
            pod("b", Some("true"), None),
            pod("c", None, None),
            pod("d", Some("false"), Some("-1000")),
            pod("e", None, Some("1000")),
            pod("f", Some("maybe"), None),
        ];
        assert_eq!(
            cost_changes(pods.iter().map(|p| &p.metadata)),
            vec![
                ("a".into(), COST_IDLE),
                ("b".into(), COST_BUSY),
                ("e".into(), COST_UNKNOWN)
            ]
        );
    }

    #[tokio::test]
    async fn mark_pods_patches_only_changes_and_tolerates_a_vanished_pod() {
        let (client, mut api) = mock_client();
        let task = tokio::spawn(async move { mark_pods(&client, "ns", "app=web").await });
        fixtures::timeout(Duration::from_secs(5), async {
            let list = api.next(
                200,
                json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": {}, "items": [
                    {"metadata": {"name": "idle", "annotations": {ANNOTATION_BUSY: "false"}}},
                    {"metadata": {"name": "busy", "annotations": {ANNOTATION_BUSY: "true"}}},
                    {"metadata": {"name": "ok", "annotations": {ANNOTATION_BUSY: "false", POD_DELETION_COST: "-1000"}}},
                ]}),
            )
            .await;
            // Metadata only, not whole pods.
            assert_eq!(
                (list.method.as_str(), list.uri.as_str()),
                ("GET", "/api/v1/namespaces/ns/pods?&labelSelector=app%3Dweb")
            );
            assert!(
                list.accept.as_deref().is_some_and(|a| a.contains("as=PartialObjectMetadataList")),
                "{:?}",
                list.accept
            );
            let body = api
                .expect("PATCH", "/api/v1/namespaces/ns/pods/busy?", 404, fixtures::not_found("pods", "busy"))
                .await;
            assert_eq!(body["metadata"]["annotations"][POD_DELETION_COST], json!("1000"));
            let body = api
                .expect("PATCH", "/api/v1/namespaces/ns/pods/idle?", 200, json!({"metadata": {"name": "idle"}}))
                .await;
            assert_eq!(body["metadata"]["annotations"][POD_DELETION_COST], json!("-1000"));
        })
        .await;
        assert_eq!(task.await.unwrap().unwrap(), 1);
        api.expect_no_more(Duration::from_millis(50)).await;
    }
}
