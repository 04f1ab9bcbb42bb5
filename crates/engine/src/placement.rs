//! Binding pending pods to nodes — kube-scheduler's part, for the substrates that have no
//! kube-scheduler (the simulator and the local twin). In a cluster kube-scheduler itself binds.
//!
//! Modelled on kube-scheduler's default profile for plain pods: a node must be Ready (not a
//! claim in flight), schedulable (not cordoned, no `karpenter.sh/disrupted` taint), have room
//! for the pod's requests and carry no taint the pod does not tolerate; among those, the
//! `NodeResourcesFit` plugin's default `LeastAllocated` score (the mean free fraction of CPU
//! and memory after placing the pod) picks the node, ties by name. That spreads a
//! ReplicaSet's pods over the emptiest nodes, as the real scheduler does.

use model::kube::{Pod, tolerates_all};
use provision::resources::Res;
use provision::scheduler::ExistingNode;

use crate::cluster::Cluster;

/// (index in `cluster.pending`, index in `cluster.nodes`) for every pending pod that fits
/// somewhere now, in the order of `cluster.pending`.
pub fn bind(cluster: &Cluster) -> Vec<(usize, usize)> {
    bind_with(
        cluster,
        |n| {
            n.pods
                .iter()
                .fold(n.daemon_overhead, |a, p| a.plus(&requests(p)))
        },
        requests,
    )
}

/// [`bind`] for a substrate that knows what its nodes' pods request (`used`: a node's
/// daemon overhead plus its pods' requests; `requests`: one pod's), so a pass does not
/// re-derive every bound pod's requests from its spec.
pub fn bind_with(
    cluster: &Cluster,
    used: impl Fn(&ExistingNode) -> Res,
    requests: impl Fn(&Pod) -> Res,
) -> Vec<(usize, usize)> {
    let mut free: Vec<Option<Res>> = cluster
        .nodes
        .iter()
        .zip(&cluster.info)
        .map(|(n, i)| {
            if n.in_flight || n.unschedulable || i.disrupted_taint || i.deleting {
                return None;
            }
            Some(n.allocatable.minus(&used(n)))
        })
        .collect();
    let mut out = Vec::new();
    if free.iter().all(Option::is_none) {
        return out;
    }
    for (k, pod) in cluster.pending.iter().enumerate() {
        let req = requests(pod);
        if let Some(i) = best(cluster, &free, pod, &req) {
            if let Some(f) = &mut free[i] {
                *f = f.minus(&req);
            }
            out.push((k, i));
        }
    }
    out
}

/// A pod's effective requests as the scheduler counts them.
pub fn requests(pod: &Pod) -> Res {
    Res::from_list(&pod.requests()).0
}

fn best(cluster: &Cluster, free: &[Option<Res>], pod: &Pod, req: &Res) -> Option<usize> {
    let mut best: Option<(f64, usize)> = None;
    for (i, f) in free.iter().enumerate() {
        let Some(f) = f else { continue };
        if !req.fits_in(f) {
            continue;
        }
        let n = &cluster.nodes[i];
        if !tolerates_all(&pod.spec.tolerations, &n.taints) {
            continue;
        }
        let a = n.allocatable;
        let frac = |free: i64, alloc: i64| {
            if alloc <= 0 {
                0.0
            } else {
                free as f64 / alloc as f64
            }
        };
        let score = (frac(f.cpu - req.cpu, a.cpu) + frac(f.mem - req.mem, a.mem)) / 2.0;
        let better = match best {
            None => true,
            Some((s, j)) => {
                score > s + 1e-12 || ((score - s).abs() <= 1e-12 && n.name < cluster.nodes[j].name)
            }
        };
        if better {
            best = Some((score, i));
        }
    }
    best.map(|(_, i)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::NodeInfo;
    use provision::scheduler::ExistingNode;

    fn node(name: &str, cpu: i64, pods: Vec<Pod>, in_flight: bool) -> (ExistingNode, NodeInfo) {
        let n = ExistingNode {
            name: name.into(),
            labels: Default::default(),
            taints: vec![],
            capacity: Res::new(cpu, 16 << 30, 110),
            allocatable: Res::new(cpu, 16 << 30, 110),
            pods,
            daemon_overhead: Res::ZERO,
            unschedulable: false,
            in_flight,
            price: 0.1,
            created_ms: 0,
            nodepool_hash: None,
            annotations: Default::default(),
            last_pod_event_ms: 0,
        };
        let info = NodeInfo {
            pods: vec![Default::default(); n.pods.len()],
            ..Default::default()
        };
        (n, info)
    }

    fn pod(name: &str) -> Pod {
        Pod::with_requests(name, "500m".parse().unwrap(), "64Mi".parse().unwrap())
    }

    #[test]
    fn pods_spread_to_the_emptiest_ready_node_and_never_onto_a_booting_one() {
        let mut c = Cluster::default();
        let (a, ai) = node("a", 2000, vec![pod("x"), pod("y")], false);
        let (b, bi) = node("b", 2000, vec![], false);
        let (l, li) = node("launching", 64000, vec![], true);
        c.push_node(a, ai);
        c.push_node(b, bi);
        c.push_node(l, li);
        c.pending = (0..4).map(|i| pod(&format!("p{i}"))).collect();
        let got = bind(&c);
        // b is empty: two go there first, then b and a tie (a sorts first), then b has the
        // room; nothing goes to the claim still booting.
        let nodes: Vec<&str> = got.iter().map(|&(_, n)| c.nodes[n].name.as_str()).collect();
        assert_eq!(nodes, ["b", "b", "a", "b"]);
        assert_eq!(
            got.iter().map(|&(p, _)| p).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        for i in 4..7 {
            c.pending.push(pod(&format!("p{i}")));
        }
        // Ready room: two pods on a, four on b; the seventh waits.
        assert_eq!(bind(&c).len(), 6);
    }
}
