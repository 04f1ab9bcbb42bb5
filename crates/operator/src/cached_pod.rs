//! The Pod as the node side caches it: only what scheduling, disruption and the kwok kubelet
//! read, deserialized straight from the watch.
//!
//! k8s-openapi's `Pod` is 2,176 bytes before any of its strings and each `Container` 2,120
//! (probes, lifecycle, security context, … all inline), so 1,000 cached pods cost ~4.3 MB in
//! struct space alone; this type is a fraction of that. Field names and types are the
//! generated ones, so code reads it the same way; fields the operator never reads are not
//! kept (and not even parsed).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, PodCondition, PodOS, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::{Deserialize, Serialize};

/// A cached Pod (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CachedPod {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<PodSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PodStatus>,
}

/// The scheduling-relevant part of `PodSpec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(default)]
    pub containers: Vec<Container>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_containers: Option<Vec<Container>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overhead: Option<BTreeMap<String, Quantity>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<PodOS>,
}

/// A container as scheduling sees it: name, resources, restart policy (sidecars); and its
/// image (the kwok kubelet reports it in the container status).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
}

/// A container's requests and limits. A `BTreeMap` allocates a node for eleven entries on
/// its first insert (~540 bytes for two resources); these are sorted lists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ListMap<Quantity>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<ListMap<Quantity>>,
}

/// A small string-keyed map as a sorted list: read and written as a JSON object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListMap<V>(Vec<(String, V)>);

impl<V> ListMap<V> {
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| &self.0[i].1)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl<V: Serialize> Serialize for ListMap<V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for ListMap<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Visit<V> {
            type Value = ListMap<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<ListMap<V>, A::Error> {
                let mut v: Vec<(String, V)> = Vec::with_capacity(m.size_hint().unwrap_or(0));
                while let Some(entry) = m.next_entry::<String, V>()? {
                    v.push(entry);
                }
                // As a map: sorted, and the last of duplicate keys wins.
                v.reverse();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                v.dedup_by(|later, first| later.0 == first.0);
                v.shrink_to_fit();
                Ok(ListMap(v))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// Phase, conditions, start time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<PodCondition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nominated_node_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What the scale loops read of the containers: only those waiting out a restart
    /// back-off (`CrashLoopBackOff`), with how long their last run lasted; a pod whose
    /// containers run keeps nothing here.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "backing_off_only"
    )]
    pub container_statuses: Option<Vec<ContainerStatus>>,
}

fn backing_off_only<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<ContainerStatus>>, D::Error> {
    let all: Option<Vec<ContainerStatus>> = Option::deserialize(d)?;
    Ok(all
        .map(|v| {
            v.into_iter()
                .filter(ContainerStatus::backing_off)
                .collect::<Vec<_>>()
        })
        .filter(|v| !v.is_empty()))
}

/// A container's state: only `state.waiting.reason` and `lastState.terminated`'s times.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ContainerState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_state: Option<ContainerState>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminated: Option<Terminated>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Waiting {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Terminated {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
}

impl ContainerStatus {
    fn backing_off(&self) -> bool {
        self.state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.as_deref())
            == Some("CrashLoopBackOff")
    }
}

impl PodStatus {
    /// Whether a container crash-loops in kedge's sense
    /// ([`engine::replicaset::crash_looping`]): it waits in `CrashLoopBackOff` and its last
    /// run lasted less than [`engine::replicaset::CRASH_LOOP_RUN`].
    pub fn crash_looping(&self) -> bool {
        self.container_statuses.iter().flatten().any(|c| {
            let backing_off = c.backing_off();
            let ran = c
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .and_then(|t| {
                    let ms = |t: &Option<Time>| t.as_ref().map(|t| t.0.as_millisecond());
                    Some(ms(&t.finished_at)? - ms(&t.started_at)?)
                });
            // Without the times the run counts as short (a back-off is evidence enough).
            let ran = std::time::Duration::from_millis(ran.unwrap_or(0).max(0) as u64);
            engine::replicaset::crash_looping(backing_off.then_some(ran))
        })
    }
}

cached_core_v1!(
    CachedPod,
    k8s_openapi::api::core::v1::Pod,
    "Pod",
    "pods",
    k8s_openapi::NamespaceResourceScope
);

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource;
    use serde_json::json;

    #[test]
    fn a_full_pod_is_cached_without_what_the_operator_never_reads() {
        let full: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"nodeName": "n1", "priority": 5, "terminationGracePeriodSeconds": 3,
                "serviceAccountName": "default",
                "containers": [{"name": "c", "image": "busybox", "command": ["sleep"],
                    "livenessProbe": {"exec": {"command": ["true"]}},
                    "resources": {"requests": {"cpu": "250m"}}}]},
            "status": {"phase": "Pending", "qosClass": "Burstable",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}
        }))
        .unwrap();
        let p = CachedPod::of(&full);
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({
                "metadata": {"name": "p", "namespace": "ns"},
                "spec": {"nodeName": "n1", "priority": 5, "terminationGracePeriodSeconds": 3,
                    "containers": [{"name": "c", "image": "busybox",
                        "resources": {"requests": {"cpu": "250m"}}}]},
                "status": {"phase": "Pending",
                    "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}
            })
        );
        // Resources read as a map, sorted, the last duplicate winning, written back as one.
        let c: Container = serde_json::from_value(json!({"name": "c",
            "resources": {"requests": {"memory": "1Gi", "cpu": "1", "memory": "2Gi"}, "claims": [{"name": "x"}]}}))
        .unwrap();
        let req = c.resources.as_ref().unwrap().requests.as_ref().unwrap();
        assert_eq!(req.get("memory").map(|q| q.0.as_str()), Some("2Gi"));
        assert_eq!(
            req.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            ["cpu", "memory"]
        );
        assert_eq!(req.get("gpu"), None);
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({"name": "c", "resources": {"requests": {"cpu": "1", "memory": "2Gi"}}})
        );
        assert!(
            serde_json::from_value::<Container>(
                json!({"name": "c", "resources": {"requests": [1]}})
            )
            .is_err()
        );
        // Watched and listed as Pods.
        assert_eq!(CachedPod::kind(&()), "Pod");
        assert_eq!(CachedPod::plural(&()), "pods");
        assert_eq!(CachedPod::api_version(&()), "v1");
        // The point of the type: 880 vs 2,176 bytes per pod, 160 vs 2,120 per container.
        assert!(
            std::mem::size_of::<CachedPod>() * 2
                < std::mem::size_of::<k8s_openapi::api::core::v1::Pod>()
        );
        assert!(
            std::mem::size_of::<Container>() * 10
                < std::mem::size_of::<k8s_openapi::api::core::v1::Container>()
        );
    }
}
