//! Kubernetes API objects (k8s-openapi / raw JSON) → the `model` types the provision core
//! reads. `model`'s Kubernetes types share the API's field names and ignore fields that do
//! not affect scheduling, so the conversion is a JSON round trip; the Karpenter kinds go
//! through the same validation as `kedge check`.

use crate::cached_node::CachedNode as Node;
use crate::cached_pod::CachedPod as Pod;
use k8s_openapi::api::apps::v1::DaemonSet;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::crd::{self, Kind};

/// Through JSON text rather than a `Value` tree (a tree allocates a B-tree node per object;
/// passes convert every bound pod). `what` names the object in an error.
fn via_json<A: Serialize, B: DeserializeOwned>(
    what: impl Fn() -> String,
    a: &A,
) -> Result<B, String> {
    let v = serde_json::to_vec(a).map_err(|e| format!("{}: {e}", what()))?;
    serde_json::from_slice(&v).map_err(|e| format!("{}: {e}", what()))
}

fn name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or("")
    )
}

pub fn pod(p: &Pod) -> Result<model::kube::Pod, String> {
    via_json(|| format!("pod {}", name_of(&p.metadata)), p)
}

pub fn node(n: &Node) -> Result<model::kube::Node, String> {
    via_json(|| format!("node {}", name_of(&n.metadata)), n)
}

pub fn daemonset(d: &DaemonSet) -> Result<model::kube::DaemonSet, String> {
    via_json(|| format!("daemonset {}", name_of(&d.metadata)), d)
}

/// A PodDisruptionBudget of either `policy/v1` or `policy/v1beta1` as raw JSON.
pub fn pdb(v: &serde_json::Value) -> Result<model::kube::PodDisruptionBudget, String> {
    serde_json::from_value(v.clone()).map_err(|e| format!("poddisruptionbudget: {e}"))
}

/// A NodePool, validated as `kedge check` validates it.
pub fn nodepool(np: &crd::NodePool) -> Result<model::karpenter::NodePool, String> {
    let api_version = format!("{}/{}", crd::NodePool::GROUP, crd::NodePool::VERSION);
    let doc: model::karpenter::NodePoolDocument =
        crd::to_model(&api_version, crd::NodePool::KIND, &np.metadata, &np.spec)?;
    model::karpenter::NodePool::from_value(&doc.0).map_err(|e| e.to_string())
}

/// A NodeClaim (spec validated; status carried over).
pub fn nodeclaim(nc: &crd::NodeClaim) -> Result<model::karpenter::NodeClaim, String> {
    let api_version = format!("{}/{}", crd::NodeClaim::GROUP, crd::NodeClaim::VERSION);
    let mut claim: model::karpenter::NodeClaim =
        crd::to_model(&api_version, crd::NodeClaim::KIND, &nc.metadata, &nc.spec)?;
    if let Some(s) = &nc.status {
        claim.status = s.clone();
    }
    Ok(claim)
}
