//! The interruption queue (Karpenter's interruption controller): EventBridge rules deliver
//! EC2 and AWS Health events to an SQS queue; kedge long-polls it and cordons and drains the
//! nodes whose instances are about to go away, before they do.
//!
//! | event (`detail-type`) | kedge's action |
//! |---|---|
//! | `EC2 Spot Instance Interruption Warning` | cordon and drain (2 minutes' notice) |
//! | `EC2 Instance State-change Notification`, state `stopping` / `stopped` / `shutting-down` / `terminated` | cordon and drain |
//! | `AWS Health Event`, `eventTypeCategory: scheduledChange`, service EC2 | cordon and drain every affected instance |
//! | `EC2 Instance Rebalance Recommendation` | none (logged), as in Karpenter |
//! | anything else, other states, unreadable bodies | none (logged) |
//!
//! Every message is deleted once handled, and unreadable ones at once (they would never
//! become readable). A message whose handler *failed* (e.g. the API server was unreachable)
//! is left in the queue and comes back after its visibility timeout. Instances that belong
//! to no node of this cluster are ignored (the queue may serve several clusters).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use autoscale::scaler::BoxFuture;
use serde_json::Value;

/// Why a node must go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterruptionKind {
    SpotInterruption,
    RebalanceRecommendation,
    /// The instance is stopping/stopped/shutting-down/terminated.
    StateChange(String),
    /// An AWS Health scheduled change (maintenance, retirement).
    ScheduledChange,
}

impl InterruptionKind {
    /// A short reason for events and logs.
    pub fn reason(&self) -> String {
        match self {
            InterruptionKind::SpotInterruption => "SpotInterrupted".into(),
            InterruptionKind::RebalanceRecommendation => "SpotRebalanceRecommendation".into(),
            InterruptionKind::StateChange(s) => format!("InstanceStateChange({s})"),
            InterruptionKind::ScheduledChange => "InstanceScheduledChange".into(),
        }
    }

    /// Does Karpenter cordon and drain for this event?
    pub fn acts(&self) -> bool {
        !matches!(self, InterruptionKind::RebalanceRecommendation)
    }
}

/// One parsed event: its kind and the instances it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterruptionEvent {
    pub kind: InterruptionKind,
    pub instance_ids: Vec<String>,
    /// The EventBridge event ID (for logs).
    pub id: String,
}

/// States of a state-change notification that mean the instance is going away.
pub const DISRUPTING_STATES: &[&str] = &["stopping", "stopped", "shutting-down", "terminated"];

/// Parse an EventBridge event. `Ok(None)`: a well-formed event kedge does not act on (other
/// detail types, other states); `Err`: not an event at all.
pub fn parse_event(body: &str) -> Result<Option<InterruptionEvent>, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let detail_type = v
        .get("detail-type")
        .and_then(Value::as_str)
        .ok_or("no `detail-type`: not an EventBridge event")?;
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let detail = v.get("detail").cloned().unwrap_or(Value::Null);
    let instance_id = || -> Result<Vec<String>, String> {
        detail
            .get("instance-id")
            .and_then(Value::as_str)
            .map(|s| vec![s.to_string()])
            .ok_or_else(|| format!("{detail_type}: no `detail.instance-id`"))
    };
    let kind = match detail_type {
        "EC2 Spot Instance Interruption Warning" => InterruptionKind::SpotInterruption,
        "EC2 Instance Rebalance Recommendation" => InterruptionKind::RebalanceRecommendation,
        "EC2 Instance State-change Notification" => {
            let state = detail
                .get("state")
                .and_then(Value::as_str)
                .ok_or("EC2 Instance State-change Notification: no `detail.state`")?;
            if !DISRUPTING_STATES.contains(&state) {
                return Ok(None);
            }
            InterruptionKind::StateChange(state.to_string())
        }
        "AWS Health Event" => {
            let service = detail.get("service").and_then(Value::as_str);
            let category = detail.get("eventTypeCategory").and_then(Value::as_str);
            if service != Some("EC2") || category != Some("scheduledChange") {
                return Ok(None);
            }
            let ids: Vec<String> = detail
                .get("affectedEntities")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|e| e.get("entityValue").and_then(Value::as_str))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            return Ok(Some(InterruptionEvent {
                kind: InterruptionKind::ScheduledChange,
                instance_ids: ids,
                id,
            }));
        }
        _ => return Ok(None),
    };
    Ok(Some(InterruptionEvent {
        kind,
        instance_ids: instance_id()?,
        id,
    }))
}

/// The instance ID of an `aws:///<zone>/<instance-id>` provider ID.
pub fn instance_id_of(provider_id: &str) -> Option<&str> {
    let rest = provider_id.strip_prefix("aws:///")?;
    let (_, id) = rest.rsplit_once('/')?;
    (!id.is_empty()).then_some(id)
}

/// What the interruption loop needs from the rest of the operator.
pub trait InterruptionHandler: Send + Sync {
    /// Provider IDs of this cluster's nodes/NodeClaims (`aws:///zone/i-…`).
    fn provider_ids(&self) -> BoxFuture<'_, Result<Vec<String>, String>>;
    /// Cordon the node and drain it (the disruption code's path). An error leaves the message
    /// in the queue for another try.
    fn cordon_and_drain<'a>(
        &'a self,
        provider_id: &'a str,
        kind: &'a InterruptionKind,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// An [`InterruptionHandler`] over the cluster: provider IDs from the Nodes' `spec.providerID`
/// and the NodeClaims' `status.providerID` (a claim may not have its Node yet), and the
/// operator's own cordon-and-drain (the disruption code) as a closure.
pub struct ClusterHandler {
    client: kube::Client,
    #[allow(clippy::type_complexity)]
    cordon: Arc<
        dyn Fn(String, InterruptionKind) -> BoxFuture<'static, Result<(), String>> + Send + Sync,
    >,
}

impl ClusterHandler {
    pub fn new(
        client: kube::Client,
        cordon: impl Fn(String, InterruptionKind) -> BoxFuture<'static, Result<(), String>>
        + Send
        + Sync
        + 'static,
    ) -> ClusterHandler {
        ClusterHandler {
            client,
            cordon: Arc::new(cordon),
        }
    }
}

impl InterruptionHandler for ClusterHandler {
    fn provider_ids(&self) -> BoxFuture<'_, Result<Vec<String>, String>> {
        Box::pin(async move {
            use crate::cached_node::CachedNode as Node;
            let lp = kube::api::ListParams::default();
            let nodes = kube::Api::<Node>::all(self.client.clone())
                .list(&lp)
                .await
                .map_err(|e| format!("listing nodes: {e}"))?;
            let claims = kube::Api::<crate::crd::NodeClaim>::all(self.client.clone())
                .list(&lp)
                .await
                .map_err(|e| format!("listing nodeclaims: {e}"))?;
            let mut ids: std::collections::BTreeSet<String> = nodes
                .items
                .into_iter()
                .filter_map(|n| n.spec.and_then(|s| s.provider_id))
                .collect();
            ids.extend(
                claims
                    .items
                    .into_iter()
                    .filter_map(|c| c.status.and_then(|s| s.provider_id)),
            );
            Ok(ids.into_iter().collect())
        })
    }

    fn cordon_and_drain<'a>(
        &'a self,
        provider_id: &'a str,
        kind: &'a InterruptionKind,
    ) -> BoxFuture<'a, Result<(), String>> {
        (self.cordon)(provider_id.to_string(), kind.clone())
    }
}

/// What happened to one message (returned by [`handle_message`] for tests and metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The handler ran for these provider IDs; the message was deleted.
    Handled(Vec<String>),
    /// Nothing to do (not ours, not acted on, unreadable); the message was deleted.
    Ignored(String),
    /// The handler failed; the message stays for redelivery.
    Retry(String),
}

/// Handle one message body (without touching the queue).
pub async fn handle_message(body: &str, handler: &dyn InterruptionHandler) -> Outcome {
    let ev = match parse_event(body) {
        Ok(Some(ev)) => ev,
        Ok(None) => return Outcome::Ignored("event kedge does not act on".into()),
        Err(e) => {
            tracing::warn!(error = %e, "unreadable interruption message; deleting it");
            return Outcome::Ignored(format!("unreadable: {e}"));
        }
    };
    if !ev.kind.acts() {
        tracing::info!(event = %ev.id, kind = %ev.kind.reason(), instances = ?ev.instance_ids, "no action");
        return Outcome::Ignored(format!("{} needs no action", ev.kind.reason()));
    }
    let known = match handler.provider_ids().await {
        Ok(k) => k,
        Err(e) => return Outcome::Retry(format!("listing nodes: {e}")),
    };
    let mut handled = Vec::new();
    for id in &ev.instance_ids {
        let Some(pid) = known
            .iter()
            .find(|p| instance_id_of(p) == Some(id.as_str()))
        else {
            tracing::debug!(instance = %id, "interruption for an instance outside this cluster");
            continue;
        };
        tracing::info!(event = %ev.id, kind = %ev.kind.reason(), provider_id = %pid, "cordon and drain");
        if let Err(e) = handler.cordon_and_drain(pid, &ev.kind).await {
            return Outcome::Retry(format!("cordon and drain {pid}: {e}"));
        }
        handled.push(pid.clone());
    }
    if handled.is_empty() {
        Outcome::Ignored("no instance of this cluster".into())
    } else {
        Outcome::Handled(handled)
    }
}

/// Settings of the polling loop.
#[derive(Debug, Clone, Copy)]
pub struct PollSettings {
    /// SQS long-poll wait (max 20 s).
    pub wait_time: Duration,
    /// Messages per receive (max 10).
    pub max_messages: i32,
    /// Pause after a failed receive before the next one.
    pub error_backoff: Duration,
}

impl Default for PollSettings {
    fn default() -> Self {
        PollSettings {
            wait_time: Duration::from_secs(20),
            max_messages: 10,
            error_backoff: Duration::from_secs(5),
        }
    }
}

/// Long-poll `queue_url` until `shutdown` resolves, handing each event to `handler`.
pub async fn run_interruption(
    queue_url: String,
    sqs: aws_sdk_sqs::Client,
    handler: Arc<dyn InterruptionHandler>,
    shutdown: impl Future<Output = ()>,
) {
    run_interruption_with(queue_url, sqs, handler, PollSettings::default(), shutdown).await
}

/// [`run_interruption`] with explicit poll settings.
pub async fn run_interruption_with(
    queue_url: String,
    sqs: aws_sdk_sqs::Client,
    handler: Arc<dyn InterruptionHandler>,
    poll: PollSettings,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let receive = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(poll.max_messages)
            .wait_time_seconds(poll.wait_time.as_secs() as i32)
            .send();
        let out = tokio::select! {
            _ = &mut shutdown => return,
            r = receive => r,
        };
        let messages = match out {
            Ok(o) => o.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(queue = %queue_url, error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "receiving interruption messages failed");
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(poll.error_backoff) => {}
                }
                continue;
            }
        };
        for m in messages {
            let body = m.body.as_deref().unwrap_or_default();
            let outcome = handle_message(body, handler.as_ref()).await;
            if let Outcome::Retry(why) = &outcome {
                tracing::warn!(message = ?m.message_id, %why, "interruption not handled; it will be redelivered");
                continue;
            }
            if let Some(rh) = &m.receipt_handle
                && let Err(e) = sqs
                    .delete_message()
                    .queue_url(&queue_url)
                    .receipt_handle(rh)
                    .send()
                    .await
            {
                tracing::warn!(message = ?m.message_id, error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "deleting an interruption message failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_parsed() {
        let spot = r#"{"version":"0","id":"e1","detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","detail":{"instance-id":"i-1","instance-action":"terminate"}}"#;
        assert_eq!(
            parse_event(spot).unwrap().unwrap(),
            InterruptionEvent {
                kind: InterruptionKind::SpotInterruption,
                instance_ids: vec!["i-1".into()],
                id: "e1".into()
            }
        );
        let running = r#"{"id":"e2","detail-type":"EC2 Instance State-change Notification","detail":{"instance-id":"i-1","state":"running"}}"#;
        assert_eq!(parse_event(running).unwrap(), None);
        let health = r#"{"id":"e3","detail-type":"AWS Health Event","source":"aws.health","detail":{"service":"EC2","eventTypeCategory":"scheduledChange","affectedEntities":[{"entityValue":"i-1"},{"entityValue":"i-2"}]}}"#;
        let h = parse_event(health).unwrap().unwrap();
        assert_eq!(h.kind, InterruptionKind::ScheduledChange);
        assert_eq!(h.instance_ids, vec!["i-1", "i-2"]);
        assert!(parse_event("not json").unwrap_err().starts_with("not JSON"));
        assert!(parse_event("{}").unwrap_err().contains("detail-type"));
        assert!(
            parse_event(r#"{"detail-type":"EC2 Spot Instance Interruption Warning","detail":{}}"#)
                .unwrap_err()
                .contains("detail.instance-id")
        );
    }

    #[tokio::test]
    async fn the_cluster_handler_knows_nodes_and_claims() {
        use crate::fixtures::{mock_client, timeout};
        use serde_json::json;
        let (client, mut server) = mock_client();
        let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = calls.clone();
        let h = ClusterHandler::new(client, move |pid, kind| {
            seen.lock().unwrap().push((pid, kind));
            Box::pin(async { Ok(()) })
        });
        let spot = r#"{"id":"e1","detail-type":"EC2 Spot Instance Interruption Warning","detail":{"instance-id":"i-claim"}}"#;
        let verify = async {
            server
                .expect(
                    "GET",
                    "/api/v1/nodes?",
                    200,
                    json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": [
                        {"metadata": {"name": "n1"}, "spec": {"providerID": "aws:///us-east-1a/i-node"}},
                        {"metadata": {"name": "n2"}, "spec": {}}
                    ]}),
                )
                .await;
            server
                .expect(
                    "GET",
                    "/apis/karpenter.sh/v1/nodeclaims?",
                    200,
                    json!({"apiVersion": "karpenter.sh/v1", "kind": "NodeClaimList", "metadata": {}, "items": [
                        {"metadata": {"name": "c1"}, "spec": {}, "status": {"providerID": "aws:///us-east-1b/i-claim"}}
                    ]}),
                )
                .await;
        };
        let (out, ()) = timeout(Duration::from_secs(5), async {
            tokio::join!(handle_message(spot, &h), verify)
        })
        .await;
        assert_eq!(
            out,
            Outcome::Handled(vec!["aws:///us-east-1b/i-claim".into()])
        );
        assert_eq!(
            *calls.lock().unwrap(),
            vec![(
                "aws:///us-east-1b/i-claim".to_string(),
                InterruptionKind::SpotInterruption
            )]
        );

        // The API server failing: the message is kept for another try.
        let verify = async {
            server
                .expect(
                    "GET",
                    "/api/v1/nodes?",
                    503,
                    crate::fixtures::status(503, "ServiceUnavailable", "etcd is down"),
                )
                .await;
        };
        let (out, ()) = timeout(Duration::from_secs(5), async {
            tokio::join!(handle_message(spot, &h), verify)
        })
        .await;
        assert!(
            matches!(out, Outcome::Retry(ref m) if m.contains("listing nodes")),
            "{out:?}"
        );
    }

    #[test]
    fn provider_ids_map_to_instance_ids() {
        assert_eq!(instance_id_of("aws:///us-east-1a/i-0abc"), Some("i-0abc"));
        assert_eq!(instance_id_of("kwok://node-1"), None);
        assert_eq!(instance_id_of("aws:///us-east-1a/"), None);
    }
}
