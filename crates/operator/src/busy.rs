//! Busy-aware scale-in in the cluster: how the engine's choice reaches the ReplicaSet.
//!
//! **The contract.** A consumer reports whether it is working on something by setting an
//! annotation on its own Pod: `kedge.dev/busy: "true"` while it holds messages, `"false"`
//! when idle (`kedge consume` does this when `POD_NAME`/`POD_NAMESPACE` are set). The scale
//! loop reads it from the pod watch cache (`targets.rs`); a pod without it counts as idle.
//!
//! **Victims first.** With the `kedge` policy the engine (`engine::scale`) lowers the count
//! only by as many consumers as are idle and names them. Before the lower count is written,
//! each of them gets `controller.kubernetes.io/pod-deletion-cost` =
//! [`engine::replicaset::VICTIM_DELETION_COST`], which the ReplicaSet controller deletes
//! first among running pods; the mark an earlier scale-in left on a pod that is not a victim
//! now is removed (that pod may be busy by now). The `keda-karpenter` policy marks nothing:
//! the ReplicaSet chooses, as upstream.
//!
//! **Work time.** Next to busy/idle a consumer may report what one message costs it:
//! `kedge.dev/work-time` (its mean time per message, a duration such as `"1.2s"` or
//! `"850ms"`) and `kedge.dev/concurrency` (how many messages it works on at once; default 1).
//! A ScaledObject's latency objective (`autoscaling.kedge.dev/latency-objective`) needs them:
//! the engine turns the objective into the backlog one replica may hold (docs/policies.md).
//! `kedge consume` sets them in the same patch as `kedge.dev/busy` ([`publish_busy`]) once it
//! has finished a message, so they cost no API call of their own.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams};

use engine::ConsumerPod;
use engine::replicaset::mark_changes;

use crate::{Error, Result};

/// Annotation a consumer sets on its own Pod: `"true"` busy, `"false"` idle.
pub const ANNOTATION_BUSY: &str = "kedge.dev/busy";
pub use model::kube::POD_DELETION_COST;
/// Annotation a consumer sets on its own Pod: its mean work time per message.
pub const ANNOTATION_WORK_TIME: &str = "kedge.dev/work-time";
/// Annotation a consumer sets on its own Pod: messages it works on at once (default 1).
pub const ANNOTATION_CONCURRENCY: &str = "kedge.dev/concurrency";

/// One message's cost to a consumer from its annotations: work time ÷ concurrency. `None`
/// when the work time is missing or not a positive duration; a concurrency that is not a
/// positive integer counts as 1.
pub fn per_message(
    work_time: Option<&str>,
    concurrency: Option<&str>,
) -> Option<std::time::Duration> {
    let ms = model::keda::parse_duration_ms(work_time?)?;
    let c = concurrency
        .and_then(|c| c.trim().parse::<u32>().ok())
        .filter(|&c| c > 0)
        .unwrap_or(1);
    Some(std::time::Duration::from_millis(ms) / c)
}

/// Apply [`mark_changes`] to the pods of namespace `ns`, one patch after another. Returns
/// how many pods were patched (a pod gone meanwhile is skipped).
pub async fn mark_victims(
    client: &kube::Client,
    ns: &str,
    pods: &[ConsumerPod],
    victims: &[String],
) -> Result<usize> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut patched = 0;
    for (pod, cost) in mark_changes(pods, victims) {
        let name = pod.rsplit_once('/').map_or(pod.as_str(), |(_, n)| n);
        let patch = serde_json::json!({
            "metadata": {"annotations": {POD_DELETION_COST: cost.map(|c| c.to_string())}}
        });
        let req = kube::core::Request::new(api.resource_url()).patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        );
        match Box::pin(crate::write_discarding(client, req)).await {
            Ok(()) => patched += 1,
            // Gone meanwhile: nothing to prefer.
            Err(e) if crate::error::kube_status(&e) == Some(404) => {}
            Err(e) => {
                return Err(Error::Kube {
                    context: format!("marking pod {ns}/{name} for deletion first"),
                    source: e,
                });
            }
        }
    }
    Ok(patched)
}

/// What a consumer publishes on its own Pod ([`publish_busy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConsumerReport {
    /// `kedge.dev/busy`.
    pub busy: bool,
    /// Mean work time per message (`kedge.dev/work-time`); `None` until one is finished.
    pub work_time: Option<std::time::Duration>,
    /// Messages worked on at once (`kedge.dev/concurrency`), sent with the work time.
    pub concurrency: u32,
}

impl ConsumerReport {
    /// The merge patch of the pod's annotations: busy always, work time and concurrency once
    /// the work time is known. The work time is in whole milliseconds (`"1234ms"`), at least
    /// 1 ([`per_message`] reads `"0ms"` as no figure).
    fn patch(&self) -> serde_json::Value {
        let mut a = serde_json::Map::new();
        a.insert(
            ANNOTATION_BUSY.into(),
            (if self.busy { "true" } else { "false" }).into(),
        );
        if let Some(w) = self.work_time {
            let ms = u64::try_from((w.as_nanos() + 500_000) / 1_000_000)
                .unwrap_or(u64::MAX)
                .max(1);
            a.insert(ANNOTATION_WORK_TIME.into(), format!("{ms}ms").into());
            a.insert(
                ANNOTATION_CONCURRENCY.into(),
                self.concurrency.max(1).to_string().into(),
            );
        }
        serde_json::json!({"metadata": {"annotations": a}})
    }
}

/// The consumer's side of the contract: set `kedge.dev/busy` on pod `namespace/name` on
/// every change of `busy` (the first value too), until the channel closes, with the work time
/// and concurrency the channel holds at that moment. A change of the work time alone is not
/// published: a working consumer turns idle after every batch, so the figure rides along on
/// those patches instead of costing calls of its own (the sender may update it without
/// notifying). Failures are logged and retried on the next change; the consumer's work never
/// waits for this.
pub async fn publish_busy(
    client: kube::Client,
    namespace: String,
    name: String,
    mut report: tokio::sync::watch::Receiver<ConsumerReport>,
) {
    let api: Api<Pod> = Api::namespaced(client, &namespace);
    let mut last: Option<bool> = None;
    loop {
        let now = *report.borrow_and_update();
        if last != Some(now.busy) {
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&now.patch()))
                .await
            {
                Ok(_) => last = Some(now.busy),
                Err(e) => {
                    tracing::warn!(error = %e, pod = %name, "could not publish busy/idle on the pod")
                }
            }
        }
        if report.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{self, mock_client};
    use engine::replicaset::VICTIM_DELETION_COST;
    use serde_json::json;
    use std::time::Duration;

    fn pod(name: &str, cost: i32) -> ConsumerPod {
        ConsumerPod {
            name: format!("ns/{name}"),
            node: None,
            phase: engine::PodPhase::Running,
            ready: true,
            busy: false,
            created: clock::Timestamp::ZERO,
            deletion_cost: cost,
            crash_looping: false,
            per_message: None,
        }
    }

    #[tokio::test]
    async fn publish_busy_patches_the_own_pod_on_each_change_with_the_work_time_once_known() {
        let (client, mut api) = mock_client();
        let (tx, rx) = tokio::sync::watch::channel(ConsumerReport {
            busy: false,
            work_time: None,
            concurrency: 4,
        });
        let task = tokio::spawn(publish_busy(client, "ns".into(), "me".into(), rx));
        async fn patch(api: &mut fixtures::ApiServer) -> serde_json::Value {
            api.expect(
                "PATCH",
                "/api/v1/namespaces/ns/pods/me?",
                200,
                json!({"metadata": {"name": "me"}}),
            )
            .await
        }
        fixtures::timeout(Duration::from_secs(5), async {
            // No work time yet: busy alone.
            let b = patch(&mut api).await;
            assert_eq!(
                b,
                json!({"metadata": {"annotations": {ANNOTATION_BUSY: "false"}}})
            );
            tx.send_modify(|r| r.busy = true);
            let b = patch(&mut api).await;
            assert_eq!(
                b,
                json!({"metadata": {"annotations": {ANNOTATION_BUSY: "true"}}})
            );
            // A work time alone is no reason for a call ...
            tx.send_modify(|r| r.work_time = Some(Duration::from_micros(1_234_400)));
            api.expect_no_more(Duration::from_millis(50)).await;
            // ... it rides along on the next transition, in the same patch.
            tx.send_modify(|r| r.busy = false);
            let b = patch(&mut api).await;
            assert_eq!(
                b,
                json!({"metadata": {"annotations": {
                    ANNOTATION_BUSY: "false",
                    ANNOTATION_WORK_TIME: "1234ms",
                    ANNOTATION_CONCURRENCY: "4",
                }}})
            );
            // What the operator reads back from them: 1234 ms ÷ 4.
            let a = &b["metadata"]["annotations"];
            assert_eq!(
                per_message(
                    a[ANNOTATION_WORK_TIME].as_str(),
                    a[ANNOTATION_CONCURRENCY].as_str()
                ),
                Some(Duration::from_micros(308_500))
            );
        })
        .await;
        drop(tx);
        task.await.unwrap();
        api.expect_no_more(Duration::from_millis(50)).await;
    }

    #[test]
    fn a_sub_millisecond_work_time_is_published_as_one_millisecond() {
        let r = ConsumerReport {
            busy: true,
            work_time: Some(Duration::from_micros(200)),
            concurrency: 0,
        };
        let p = r.patch();
        let a = &p["metadata"]["annotations"];
        assert_eq!(
            (
                a[ANNOTATION_WORK_TIME].as_str(),
                a[ANNOTATION_CONCURRENCY].as_str()
            ),
            (Some("1ms"), Some("1"))
        );
    }

    #[test]
    fn victims_are_marked_and_stale_marks_cleared_first() {
        let m = VICTIM_DELETION_COST;
        let pods = [pod("a", 0), pod("b", m), pod("c", m), pod("d", 7)];
        let victims = ["ns/c".to_string(), "ns/a".to_string()];
        assert_eq!(
            mark_changes(&pods, &victims),
            vec![("ns/b".into(), None), ("ns/a".into(), Some(m)),]
        );
        assert!(mark_changes(&pods[2..], &victims[..1]).is_empty());
    }

    #[tokio::test]
    async fn mark_victims_patches_in_order_and_tolerates_a_vanished_pod() {
        let (client, mut api) = mock_client();
        let m = VICTIM_DELETION_COST;
        let pods = vec![pod("a", 0), pod("b", m), pod("c", 0)];
        let victims = vec!["ns/a".to_string(), "ns/c".to_string()];
        let task = tokio::spawn(async move { mark_victims(&client, "ns", &pods, &victims).await });
        fixtures::timeout(Duration::from_secs(5), async {
            let body = api
                .expect(
                    "PATCH",
                    "/api/v1/namespaces/ns/pods/b?",
                    200,
                    json!({"metadata": {"name": "b"}}),
                )
                .await;
            assert_eq!(
                body,
                json!({"metadata": {"annotations": {POD_DELETION_COST: null}}})
            );
            let body = api
                .expect(
                    "PATCH",
                    "/api/v1/namespaces/ns/pods/a?",
                    404,
                    fixtures::not_found("pods", "a"),
                )
                .await;
            assert_eq!(
                body["metadata"]["annotations"][POD_DELETION_COST],
                json!("-2147483648")
            );
            api.expect(
                "PATCH",
                "/api/v1/namespaces/ns/pods/c?",
                200,
                json!({"metadata": {"name": "c"}}),
            )
            .await;
        })
        .await;
        assert_eq!(task.await.unwrap().unwrap(), 2);
        api.expect_no_more(Duration::from_millis(50)).await;
    }
}
