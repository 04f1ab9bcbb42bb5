//! The Node as the node side caches it: metadata, the provider ID, taints and
//! unschedulable, capacity, allocatable and conditions — what scheduling, disruption, the
//! NodeClaim lifecycle and the kwok kubelet read — deserialized straight from the watch.
//!
//! k8s-openapi's `Node` is 1,496 bytes before any of its strings (node info, addresses,
//! images, volumes, daemon endpoints, … all inline) and its resource lists are `BTreeMap`s
//! (a ~460-byte node each); this type is a third of that, with resource lists as sorted
//! lists. Field names and types are otherwise the generated ones, so code reads it the same
//! way.

use k8s_openapi::api::core::v1::{NodeCondition, Taint};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::cached_pod::ListMap;

/// A cached Node (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CachedNode {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<NodeSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<NodeStatus>,
}

/// The provider ID, taints and the cordon flag.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSpec {
    #[serde(
        default,
        rename = "providerID",
        skip_serializing_if = "Option::is_none"
    )]
    pub provider_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taints: Option<Vec<Taint>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unschedulable: Option<bool>,
}

/// Capacity, allocatable and conditions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocatable: Option<ListMap<Quantity>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<ListMap<Quantity>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<NodeCondition>>,
}

cached_core_v1!(
    CachedNode,
    k8s_openapi::api::core::v1::Node,
    "Node",
    "nodes",
    k8s_openapi::ClusterResourceScope
);

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource;
    use serde_json::json;

    #[test]
    fn a_full_node_is_cached_without_what_the_operator_never_reads() {
        let full: k8s_openapi::api::core::v1::Node = serde_json::from_value(json!({
            "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}},
            "spec": {"providerID": "kwok://n1", "podCIDR": "10.0.0.0/24", "unschedulable": true,
                "taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]},
            "status": {
                "capacity": {"pods": "58", "cpu": "4"},
                "allocatable": {"memory": "14Gi", "cpu": "3920m"},
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                "nodeInfo": {"architecture": "amd64", "bootID": "", "containerRuntimeVersion": "",
                    "kernelVersion": "", "kubeProxyVersion": "", "kubeletVersion": "",
                    "machineID": "", "operatingSystem": "linux", "osImage": "", "systemUUID": ""},
                "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                "images": [{"names": ["busybox"], "sizeBytes": 1}]}
        }))
        .unwrap();
        let n = CachedNode::of(&full);
        assert_eq!(
            serde_json::to_value(&n).unwrap(),
            json!({
                "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}},
                "spec": {"providerID": "kwok://n1", "unschedulable": true,
                    "taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]},
                "status": {
                    "allocatable": {"cpu": "3920m", "memory": "14Gi"},
                    "capacity": {"cpu": "4", "pods": "58"},
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}
            })
        );
        let st = n.status.as_ref().unwrap();
        assert_eq!(
            st.allocatable
                .as_ref()
                .unwrap()
                .get("cpu")
                .map(|q| q.0.as_str()),
            Some("3920m")
        );
        assert_eq!(CachedNode::kind(&()), "Node");
        assert_eq!(CachedNode::plural(&()), "nodes");
        assert!(
            std::mem::size_of::<CachedNode>() * 2
                < std::mem::size_of::<k8s_openapi::api::core::v1::Node>()
        );
    }
}
