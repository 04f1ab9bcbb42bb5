//! Heap used by one node-controller step at the shape of `kedge bench operator` (500 nodes,
//! 1,000 bound pods from 1,000 Deployments): the one conversion of the stores into
//! `engine::Cluster`, then the engine's provisioning and disruption passes on it, measured with
//! a counting allocator: `cargo run --release -p operator --example pass_memory [NODES PODS
//! PENDING]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use operator::cached_pod::CachedPod;
use operator::nodes::cluster::{self, PodTracker, Snapshot};
use serde_json::json;

struct Counting;
static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let n = NOW.fetch_add(l.size(), Ordering::Relaxed) + l.size();
        PEAK.fetch_max(n, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        NOW.fetch_sub(l.size(), Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if new > l.size() {
            let n = NOW.fetch_add(new - l.size(), Ordering::Relaxed) + new - l.size();
            PEAK.fetch_max(n, Ordering::Relaxed);
        } else {
            NOW.fetch_sub(l.size() - new, Ordering::Relaxed);
        }
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Run `f` and return (its result, peak heap above the start, heap left above the start).
fn measure<T>(f: impl FnOnce() -> T) -> (T, usize, isize) {
    let start = NOW.load(Ordering::Relaxed);
    PEAK.store(start, Ordering::Relaxed);
    let r = f();
    let peak = PEAK.load(Ordering::Relaxed) - start;
    (
        r,
        peak,
        NOW.load(Ordering::Relaxed) as isize - start as isize,
    )
}

fn node(i: usize, managed: bool) -> operator::cached_node::CachedNode {
    let cap = json!({"cpu": "3920m", "memory": "14162Mi", "pods": "58"});
    let mut labels = json!({
        "kubernetes.io/hostname": format!("kwok-{i}"),
        "node.kubernetes.io/instance-type": "m5.xlarge",
        "topology.kubernetes.io/zone": "us-east-1a",
        "karpenter.sh/capacity-type": "on-demand",
        "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64"});
    if managed {
        labels["karpenter.sh/nodepool"] = json!("default");
        labels["karpenter.sh/initialized"] = json!("true");
        labels["karpenter.sh/registered"] = json!("true");
    }
    serde_json::from_value(json!({
        "metadata": {"name": format!("kwok-{i}"), "uid": format!("uid-node-{i}"),
            "resourceVersion": "12345", "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": labels, "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
        "spec": {"providerID": format!("kwok://kwok-{i}")},
        "status": {"capacity": cap, "allocatable": cap, "conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kwok",
             "lastHeartbeatTime": "2026-01-01T00:00:00Z",
             "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    }))
    .expect("node")
}

fn pod(i: usize, node: Option<usize>) -> CachedPod {
    let mut spec = json!({"containers": [{"name": "w", "image": "kedge",
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}],
        "tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
        "priority": 0, "terminationGracePeriodSeconds": 30});
    let mut status = json!({"phase": "Pending"});
    if let Some(n) = node {
        spec["nodeName"] = json!(format!("kwok-{n}"));
        status = json!({"phase": "Running", "startTime": "2026-01-01T00:00:00Z", "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
    } else {
        status["conditions"] = json!([{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "message": "0/500 nodes are available",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}]);
    }
    serde_json::from_value(json!({
        "metadata": {"name": format!("worker-{i}-7d9f8c6b5-x{i:04}"), "namespace": "bench",
            "generateName": format!("worker-{i}-7d9f8c6b5-"), "uid": format!("uid-pod-{i}"),
            "resourceVersion": "23456", "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"app": format!("worker-{i}"), "pod-template-hash": "7d9f8c6b5"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": format!("worker-{i}-7d9f8c6b5"), "uid": format!("uid-rs-{i}"),
                "controller": true, "blockOwnerDeletion": true}]},
        "spec": spec, "status": status
    }))
    .expect("pod")
}

fn nodepool() -> operator::crd::NodePool {
    serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
        "metadata": {"name": "default", "uid": "uid-np"},
        "spec": {"template": {"spec": {
            "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
            "requirements": [
                {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}},
            "disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "0s"}}
    }))
    .expect("nodepool")
}

fn claim(i: usize) -> operator::crd::NodeClaim {
    serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
        "metadata": {"name": format!("default-{i}"), "uid": format!("uid-claim-{i}"),
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"karpenter.sh/nodepool": "default"},
            "finalizers": ["karpenter.sh/termination"]},
        "spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
            "requirements": [{"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.xlarge"]}]},
        "status": {"providerID": format!("kwok://kwok-{i}"), "nodeName": format!("kwok-{i}"),
            "conditions": [{"type": "Initialized", "status": "True", "reason": "Initialized",
                "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    }))
    .expect("nodeclaim")
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers: NODES PODS PENDING"))
        .collect();
    let (nodes, pods, pending) = (
        args.first().copied().unwrap_or(500),
        args.get(1).copied().unwrap_or(1000),
        args.get(2).copied().unwrap_or(20),
    );
    let catalog = provision::catalog::Catalog::aws();
    let catalog = Arc::new(catalog);
    for managed in [false, true] {
        let snap = Snapshot {
            nodepools: vec![Arc::new(nodepool())],
            daemonsets: vec![],
            nodes: (0..nodes).map(|i| Arc::new(node(i, managed))).collect(),
            pods: (0..pods)
                .map(|i| Arc::new(pod(i, Some(i % nodes))))
                .chain((0..pending).map(|i| Arc::new(pod(pods + i, None))))
                .collect(),
            claims: if managed {
                (0..nodes).map(|i| Arc::new(claim(i))).collect()
            } else {
                vec![]
            },
            pdbs: vec![],
        };
        let what = if managed { "managed" } else { "unmanaged" };
        let tracker = PodTracker::default();
        let ((mut built, _), peak, _) = measure(|| cluster::build(&catalog, &snap, &tracker, true));
        let now = clock::Timestamp::from_millis(1_800_000_000_000);
        let policy = engine::Policy::preset(engine::PolicyName::Kedge);
        let mut eng = engine::NodeEngine::new(policy, catalog.clone(), now, 0);
        let mut rec = engine::Recorder::default();
        // The batch window opens at the first step and closes 1 s later.
        let _ = eng.provision(now, &mut built, &mut rec);
        let later = now.add(std::time::Duration::from_secs(11));
        let (_, p_peak, _) = measure(|| eng.provision(later, &mut built, &mut rec));
        let (_, d_peak, _) = measure(|| eng.disrupt(later, &mut built, &mut rec));
        println!(
            "{nodes} {what} nodes, {pods} bound pods, {pending} pending: cluster {:.2} MB, provisioning {:.2} MB, disruption {:.2} MB",
            peak as f64 / 1e6,
            p_peak as f64 / 1e6,
            d_peak as f64 / 1e6
        );
    }
}
