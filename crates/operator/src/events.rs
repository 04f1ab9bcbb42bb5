//! Kubernetes Events (`events.k8s.io/v1`) with series aggregation, as kube-runtime's
//! `Recorder` publishes them, with a compact cache.
//!
//! The first event for an (object, type, reason, action) is created; the same one again within
//! six minutes is counted into that event's `series` (a merge patch) instead of creating
//! another, as client-go and kube-runtime do. kube-runtime's recorder caches every whole Event
//! it sent (about 1.4 KB each in its map's buckets, and the map doubles as it grows); with
//! 1,000 ScaledObjects that was one of the largest items on the operator's heap. Here the cache
//! keeps a 64-bit key, the event's name and namespace, the count and times.
//!
//! Every event the operator reports goes through here: the engine's decisions and what
//! carrying them out ran into arrive as [`engine::Event`]s ([`EventRecorder::publish_event`],
//! stamped with the step's `now`, about a Node, NodeClaim, NodePool, Pod or ScaledObject).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::error::kube_status;

/// How long an event can be continued as a series (client-go and kube-runtime: 6 minutes).
const SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);
/// Notes are cut to this many bytes (the API server refuses more than 1 kB).
const NOTE_MAX: usize = 1000;

/// Normal or Warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

/// What continuing a series needs: the event's name is the regarding object's name and the
/// creation time in hex nanoseconds, its namespace the regarding object's (both part of the
/// key), so neither is stored.
struct Cached {
    created_ns: i128,
    count: i32,
    last: Timestamp,
}

/// Publishes events for one reporting controller/instance. Cheap to share behind an `Arc`.
pub struct EventRecorder {
    client: kube::Client,
    controller: String,
    instance: String,
    cache: Mutex<HashMap<u64, Cached>>,
    /// Added to an event's creation time in its name, so events about one object created in
    /// the same instant (one engine step) get distinct names.
    seq: std::sync::atomic::AtomicU32,
    /// Events about cluster-scoped objects go to `kube-system` from now on (see
    /// [`EventRecorder::cluster_namespace`]).
    cluster_in_system: std::sync::atomic::AtomicBool,
}

/// The object reference of an engine event's object (`uid` when known: `kubectl describe`
/// matches events on it).
pub fn regarding(obj: &engine::ObjectRef, uid: Option<&str>) -> ObjectReference {
    let api_version = match obj.kind {
        "NodeClaim" | "NodePool" => "karpenter.sh/v1",
        "ScaledObject" | "ScaledJob" => "keda.sh/v1alpha1",
        _ => "v1",
    };
    ObjectReference {
        api_version: Some(api_version.into()),
        kind: Some(obj.kind.into()),
        name: Some(obj.name.clone()),
        namespace: obj.namespace.clone(),
        uid: uid.map(str::to_string),
        ..Default::default()
    }
}

/// The `action` of an engine event (events.k8s.io requires one).
fn action(topic: engine::Topic) -> &'static str {
    match topic {
        engine::Topic::Scale => "Scale",
        engine::Topic::Pod => "ScaleIn",
        engine::Topic::Provision => "Provision",
        engine::Topic::Disrupt => "Disrupt",
        engine::Topic::Node => "Lifecycle",
    }
}

impl EventRecorder {
    pub fn new(client: kube::Client, controller: &str, instance: &str) -> Self {
        EventRecorder {
            client,
            controller: controller.to_string(),
            instance: instance.to_string(),
            cache: Mutex::new(HashMap::new()),
            seq: std::sync::atomic::AtomicU32::new(0),
            cluster_in_system: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Where events about a cluster-scoped object (Node, NodeClaim, NodePool) go: `default`,
    /// as client-go's events recorder puts them. API servers before 1.22 accept an
    /// `events.k8s.io` event about a cluster-scoped object only in `kube-system` (their
    /// validation of events with an `eventTime`); once one refused `default`, `kube-system`
    /// is used (both are found by `kubectl describe`, which searches every namespace).
    fn cluster_namespace(&self) -> &'static str {
        if self
            .cluster_in_system
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            "kube-system"
        } else {
            "default"
        }
    }

    /// Publish an engine event about its object, at the time it carries (the step's `now`).
    /// Errors are returned for the caller to log; nothing is retried.
    pub async fn publish_event(
        &self,
        ev: &engine::Event,
        uid: Option<&str>,
    ) -> Result<(), kube::Error> {
        let now =
            Timestamp::from_millisecond(ev.at.as_millis() as i64).unwrap_or(Timestamp::UNIX_EPOCH);
        let type_ = if ev.warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        self.publish_at(
            &regarding(&ev.object, uid),
            type_,
            ev.reason,
            action(ev.topic),
            ev.message.clone(),
            now,
        )
        .await
    }

    /// [`EventRecorder::publish_event`], logging a failure (an Event never holds up the work it
    /// reports).
    pub async fn publish_logged(&self, ev: &engine::Event, uid: Option<&str>) {
        if let Err(e) = self.publish_event(ev, uid).await {
            tracing::warn!(reason = ev.reason, object = %ev.object, "event not published: {e}");
        }
    }

    fn key(regarding: &ObjectReference, type_: EventType, reason: &str, action: &str) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (
            &regarding.uid,
            &regarding.namespace,
            &regarding.name,
            &regarding.kind,
            &regarding.api_version,
            &regarding.field_path,
        )
            .hash(&mut h);
        (type_, reason, action).hash(&mut h);
        h.finish()
    }

    /// Publish `reason`/`note` about `regarding` now (the wall clock): a new Event, or the
    /// next count of the same one's series. Errors are returned for the caller to log; nothing
    /// is retried. (Engine events go through [`EventRecorder::publish_event`], at their time.)
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) -> Result<(), kube::Error> {
        self.publish_at(regarding, type_, reason, action, note, Timestamp::now())
            .await
    }

    pub(crate) async fn publish_at(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
        now: Timestamp,
    ) -> Result<(), kube::Error> {
        let key = Self::key(regarding, type_, reason, action);
        let series = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.retain(|_, c| c.last + SERIES_WINDOW > now);
            cache.get_mut(&key).map(|c| {
                c.count += 1;
                c.last = now;
                (c.created_ns, c.count)
            })
        };
        let namespace = regarding
            .namespace
            .as_deref()
            .unwrap_or(self.cluster_namespace());
        let event_name = |created_ns: i128| {
            format!(
                "{}.{:x}",
                regarding.name.as_deref().unwrap_or(&self.controller),
                created_ns
            )
        };
        if let Some((created_ns, count)) = series {
            let name = event_name(created_ns);
            let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
            let patch = json!({"series": EventSeries {
                count,
                last_observed_time: MicroTime(now),
            }});
            let req = kube::core::Request::new(api.resource_url()).patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            );
            match crate::write_discarding(&self.client, req).await {
                Ok(_) => return Ok(()),
                // Gone (expired or deleted): start a new one.
                Err(e) if kube_status(&e) == Some(404) => {}
                Err(e) => return Err(e),
            }
        }
        let seq = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 1_000_000;
        let created_ns = now.as_nanosecond() + i128::from(seq);
        let name = event_name(created_ns);
        let ev = K8sEvent {
            action: Some(action.to_string()),
            reason: Some(reason.to_string()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            note: Some(crate::truncate(note, NOTE_MAX)),
            metadata: ObjectMeta {
                namespace: Some(namespace.to_string()),
                name: Some(name),
                ..Default::default()
            },
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            type_: Some(
                match type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .to_string(),
            ),
            ..Default::default()
        };
        let api = Api::<K8sEvent>::namespaced(self.client.clone(), namespace);
        match crate::create_discarding(&self.client, api.resource_url(), &ev).await {
            Ok(()) => {}
            Err(e)
                if kube_status(&e) == Some(422)
                    && regarding.namespace.is_none()
                    && namespace == "default" =>
            {
                self.cluster_in_system
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                let mut ev = ev;
                ev.metadata.namespace = Some("kube-system".into());
                let api = Api::<K8sEvent>::namespaced(self.client.clone(), "kube-system");
                crate::create_discarding(&self.client, api.resource_url(), &ev).await?;
            }
            Err(e) => return Err(e),
        }
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(
            key,
            Cached {
                created_ns,
                count: 1,
                last: now,
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{self, mock_client};
    use std::time::Duration;

    fn regarding() -> ObjectReference {
        ObjectReference {
            api_version: Some("keda.sh/v1alpha1".into()),
            kind: Some("ScaledObject".into()),
            name: Some("so".into()),
            namespace: Some("ns".into()),
            uid: Some("u1".into()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn creates_then_counts_the_same_event_into_its_series() {
        let (client, mut api) = mock_client();
        let rec = std::sync::Arc::new(EventRecorder::new(client, "kedge", "pod-a"));
        let r2 = rec.clone();
        let t = tokio::spawn(async move {
            let r = regarding();
            let a = r2
                .publish(
                    &r,
                    EventType::Normal,
                    "KEDAScalersStarted",
                    "Scale",
                    "x".repeat(1500),
                )
                .await;
            let b = r2
                .publish(
                    &r,
                    EventType::Normal,
                    "KEDAScalersStarted",
                    "Scale",
                    "again".into(),
                )
                .await;
            // Gone meanwhile: a new event is created.
            let c = r2
                .publish(
                    &r,
                    EventType::Normal,
                    "KEDAScalersStarted",
                    "Scale",
                    "3rd".into(),
                )
                .await;
            // Another reason is another event.
            let d = r2
                .publish(
                    &r,
                    EventType::Warning,
                    "KEDAScalerFailed",
                    "Scale",
                    "boom".into(),
                )
                .await;
            (a.is_ok(), b.is_ok(), c.is_ok(), d.is_ok())
        });
        fixtures::timeout(Duration::from_secs(5), async {
            let first = api
                .expect(
                    "POST",
                    "/apis/events.k8s.io/v1/namespaces/ns/events?",
                    201,
                    json!({}),
                )
                .await;
            assert_eq!(first["reason"], "KEDAScalersStarted");
            assert_eq!(first["type"], "Normal");
            assert_eq!(first["regarding"]["uid"], "u1");
            assert_eq!(first["reportingController"], "kedge");
            assert_eq!(first["reportingInstance"], "pod-a");
            assert_eq!(first["note"].as_str().unwrap().len(), NOTE_MAX);
            let name = first["metadata"]["name"].as_str().unwrap().to_string();
            assert!(name.starts_with("so."), "{name}");
            let patch = api
                .expect(
                    "PATCH",
                    &format!("/apis/events.k8s.io/v1/namespaces/ns/events/{name}?"),
                    200,
                    json!({}),
                )
                .await;
            assert_eq!(patch["series"]["count"], 2, "{patch}");
            assert!(patch["series"]["lastObservedTime"].is_string());
            // The third: the series is gone (404) → a new event.
            let gone = api
                .expect(
                    "PATCH",
                    &format!("/apis/events.k8s.io/v1/namespaces/ns/events/{name}?"),
                    404,
                    fixtures::not_found("events", "so.1"),
                )
                .await;
            assert_eq!(gone["series"]["count"], 3);
            let third = api
                .expect(
                    "POST",
                    "/apis/events.k8s.io/v1/namespaces/ns/events?",
                    201,
                    json!({}),
                )
                .await;
            assert_eq!(third["note"], "3rd");
            let warning = api
                .expect(
                    "POST",
                    "/apis/events.k8s.io/v1/namespaces/ns/events?",
                    201,
                    json!({}),
                )
                .await;
            assert_eq!(warning["type"], "Warning");
            assert_eq!(warning["reason"], "KEDAScalerFailed");
        })
        .await;
        assert_eq!(t.await.unwrap(), (true, true, true, true));
    }
}
