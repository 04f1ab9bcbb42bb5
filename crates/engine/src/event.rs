//! Events: every decision with its reason, as data, stamped with the step's `now`.
//!
//! The operator publishes them as Kubernetes Events (reason and message as KEDA and Karpenter
//! write them), the local twin and the simulator keep them as the decision log of their
//! reports, in one form ([`Event::line`]) so a simulation and a twin run can be compared line by
//! line.

use std::collections::HashMap;
use std::time::Duration;

use clock::Timestamp;

/// What a decision was about, for the decision log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Topic {
    /// A replica count changed.
    Scale,
    /// Consumers chosen to stop.
    Pod,
    /// A NodeClaim launched (or pods nominated onto capacity).
    Provision,
    /// A disruption command and its phases.
    Disrupt,
    /// A node or claim changed state.
    Node,
}

impl Topic {
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Scale => "scale",
            Topic::Pod => "pod",
            Topic::Provision => "provision",
            Topic::Disrupt => "disrupt",
            Topic::Node => "node",
        }
    }
}

/// The object an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct ObjectRef {
    /// `ScaledObject`, `Node`, `NodeClaim`, `NodePool`, `Pod`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn cluster(kind: &'static str, name: impl Into<String>) -> ObjectRef {
        ObjectRef {
            kind,
            namespace: None,
            name: name.into(),
        }
    }
    pub fn namespaced(kind: &'static str, ns: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectRef {
            kind,
            namespace: Some(ns.into()),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// One decision or state change, with its reason.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Event {
    #[serde(serialize_with = "millis")]
    pub at: Timestamp,
    pub topic: Topic,
    pub object: ObjectRef,
    pub warning: bool,
    /// Kubernetes' CamelCase reason (`SuccessfulRescale`, `DisruptionBlocked`, ...).
    pub reason: &'static str,
    pub message: String,
}

fn millis<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(t.as_millis())
}

impl Event {
    /// The decision log's one line: `topic object reason: message`.
    pub fn line(&self) -> String {
        format!(
            "{} {} {}: {}",
            self.topic.as_str(),
            self.object,
            self.reason,
            self.message
        )
    }
}

/// Collects a step's events; the same (object, reason, message) is not repeated within
/// `dedup` (as client-go's event correlator folds repeats). With a zero window every event is
/// kept and nothing is remembered: for a substrate whose publisher folds repeats itself (the
/// operator's Event series count them).
#[derive(Debug, Clone)]
pub struct Recorder {
    pending: Vec<Event>,
    seen: HashMap<(ObjectRef, &'static str, String), Timestamp>,
    dedup: Duration,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new(Duration::from_secs(300))
    }
}

impl Recorder {
    pub fn new(dedup: Duration) -> Recorder {
        Recorder {
            pending: Vec::new(),
            seen: HashMap::new(),
            dedup,
        }
    }

    /// Record an event at `now` unless the same one was recorded within the dedup window.
    pub fn record(
        &mut self,
        now: Timestamp,
        topic: Topic,
        object: ObjectRef,
        reason: &'static str,
        message: String,
    ) {
        self.push(now, topic, object, false, reason, message);
    }

    pub fn warn(
        &mut self,
        now: Timestamp,
        topic: Topic,
        object: ObjectRef,
        reason: &'static str,
        message: String,
    ) {
        self.push(now, topic, object, true, reason, message);
    }

    fn push(
        &mut self,
        now: Timestamp,
        topic: Topic,
        object: ObjectRef,
        warning: bool,
        reason: &'static str,
        message: String,
    ) {
        if self.dedup.is_zero() {
            self.pending.push(Event {
                at: now,
                topic,
                object,
                warning,
                reason,
                message,
            });
            return;
        }
        let key = (object, reason, message);
        if let Some(at) = self.seen.get(&key)
            && now.since(*at) < self.dedup
        {
            return;
        }
        if self.seen.len() > 4096 {
            let dedup = self.dedup;
            self.seen.retain(|_, at| now.since(*at) < dedup);
        }
        self.seen.insert(key.clone(), now);
        let (object, reason, message) = key;
        self.pending.push(Event {
            at: now,
            topic,
            object,
            warning,
            reason,
            message,
        });
    }

    /// The events recorded since the last call.
    pub fn take(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_fold_within_the_window_and_return_after_it() {
        let mut r = Recorder::new(Duration::from_secs(60));
        let node = ObjectRef::cluster("Node", "n1");
        let t = Timestamp::from_secs(1000);
        r.record(
            t,
            Topic::Disrupt,
            node.clone(),
            "DisruptionBlocked",
            "pdb".into(),
        );
        r.record(
            t.add(Duration::from_secs(30)),
            Topic::Disrupt,
            node.clone(),
            "DisruptionBlocked",
            "pdb".into(),
        );
        r.record(
            t.add(Duration::from_secs(30)),
            Topic::Disrupt,
            node.clone(),
            "DisruptionBlocked",
            "other".into(),
        );
        assert_eq!(r.take().len(), 2);
        r.record(
            t.add(Duration::from_secs(61)),
            Topic::Disrupt,
            node,
            "DisruptionBlocked",
            "pdb".into(),
        );
        let e = r.take();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line(), "disrupt Node n1 DisruptionBlocked: pdb");
    }

    #[test]
    fn a_zero_window_keeps_every_event_and_remembers_none() {
        let mut r = Recorder::new(Duration::ZERO);
        let so = ObjectRef::namespaced("ScaledObject", "ns", "so");
        let t = Timestamp::from_secs(1000);
        for _ in 0..3 {
            r.warn(
                t,
                Topic::Scale,
                so.clone(),
                "KEDAScalerFailed",
                "down".into(),
            );
        }
        assert_eq!(r.take().len(), 3);
        assert!(r.seen.is_empty());
    }
}
