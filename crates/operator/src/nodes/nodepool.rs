//! NodePool status, as Karpenter writes it: `resources` and `nodes` (the capacity of the
//! pool's nodes and in-flight claims — what its limits count), the `ValidationSucceeded` and
//! `Ready` conditions (an invalid NodePool is `False` with the field path and message, and an
//! `InvalidNodePool` event), and the `karpenter_nodepools_usage` gauge. Written with
//! server-side apply, only when it changed.

use std::collections::{BTreeMap, HashMap};

use clock::Timestamp;
use engine::{Cluster, Effect, ObjectRef, Recorder, Topic};
use kube::api::{Api, Patch, PatchParams};
use provision::catalog::Catalog;
use provision::resources::Res;
use serde_json::{Value, json};

use super::cluster::{Problems, Snapshot};
use crate::context::Context;
use crate::crd::{self, NodePool};
use crate::error::kube_status;
use crate::provider::kwok::rfc3339;

/// Per NodePool: the capacity of its nodes and in-flight claims, and how many there are,
/// counting the claims `effects` launch.
pub fn usage(
    cluster: &Cluster,
    effects: &[Effect],
    catalog: &Catalog,
) -> BTreeMap<String, (Res, i64)> {
    let mut m: BTreeMap<String, (Res, i64)> = BTreeMap::new();
    let mut add = |pool: &str, cap: Res| {
        let e = m.entry(pool.to_string()).or_insert((Res::ZERO, 0));
        e.0 = e.0.plus(&cap);
        e.1 += 1;
    };
    for n in &cluster.nodes {
        if let Some(p) = n.nodepool() {
            add(p, n.capacity);
        }
    }
    for e in effects {
        if let Effect::Launch(l) = e {
            let cap = l
                .claim
                .options
                .first()
                .and_then(|o| catalog.get(&o.instance_type))
                .map_or(Res::ZERO, |t| t.capacity);
            add(&l.claim.nodepool, cap);
        }
    }
    m
}

/// What was last written, so only changes are.
#[derive(Default)]
pub struct PoolStatus {
    /// Per pool: the last `resources`/`nodes` written.
    written: HashMap<String, Value>,
    /// Per pool: the last invalid-NodePool error reported.
    invalid: HashMap<String, String>,
}

impl PoolStatus {
    /// Write the status of every NodePool in `snap`: invalid ones from `problems`, the valid
    /// ones' usage.
    pub async fn write(
        &mut self,
        ctx: &Context,
        snap: &Snapshot,
        problems: &Problems,
        usage: &BTreeMap<String, (Res, i64)>,
        now: Timestamp,
        rec: &mut Recorder,
    ) {
        for (name, err) in &problems.invalid_pools {
            if self.invalid.get(name) == Some(err) {
                continue;
            }
            let Some(np) = snap
                .nodepools
                .iter()
                .find(|p| p.metadata.name.as_deref() == Some(name))
            else {
                continue;
            };
            tracing::warn!(nodepool = %name, "invalid NodePool skipped: {err}");
            rec.warn(
                now,
                Topic::Provision,
                ObjectRef::cluster("NodePool", name),
                "InvalidNodePool",
                err.clone(),
            );
            let conds = conditions(
                np,
                &[
                    ("ValidationSucceeded", "False", "InvalidNodePool", err),
                    ("Ready", "False", "InvalidNodePool", err),
                ],
                now,
            );
            let body = json!({
                "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
                "metadata": {"name": name},
                "status": {"conditions": conds},
            });
            if apply(ctx, name, &body).await {
                self.invalid.insert(name.clone(), err.clone());
                self.written.remove(name);
            }
        }
        self.invalid
            .retain(|n, _| problems.invalid_pools.iter().any(|(m, _)| m == n));
        for np in &snap.nodepools {
            let Some(name) = np.metadata.name.clone() else {
                continue;
            };
            if np.metadata.deletion_timestamp.is_some()
                || problems.invalid_pools.iter().any(|(n, _)| *n == name)
            {
                continue;
            }
            let (res, nodes) = usage.get(&name).copied().unwrap_or((Res::ZERO, 0));
            for (rt, v) in [
                ("cpu", res.cpu as f64 / 1000.0),
                ("memory", res.mem as f64),
                ("pods", res.pods as f64),
            ] {
                ctx.metrics.set(
                    "karpenter_nodepools_usage",
                    "Capacity of a NodePool's nodes and in-flight NodeClaims (what its limits count).",
                    &[("nodepool", &name), ("resource_type", rt)],
                    v,
                );
            }
            let resources: BTreeMap<String, String> = res
                .to_list()
                .into_iter()
                .map(|(k, v)| (k, v.to_string()))
                .collect();
            // Compare without transition times: they only change with the status.
            let key = json!({"resources": resources, "nodes": nodes});
            if self.written.get(&name) == Some(&key) {
                continue;
            }
            let conds = conditions(
                np,
                &[
                    ("ValidationSucceeded", "True", "ValidationSucceeded", ""),
                    ("Ready", "True", "Ready", ""),
                ],
                now,
            );
            let body = json!({
                "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
                "metadata": {"name": name},
                "status": {"resources": resources, "nodes": nodes, "conditions": conds},
            });
            if apply(ctx, &name, &body).await {
                self.written.insert(name, key);
            }
        }
    }
}

async fn apply(ctx: &Context, name: &str, body: &Value) -> bool {
    let api: Api<NodePool> = Api::all(ctx.client.clone());
    let pp = PatchParams::apply(&ctx.settings.field_manager).force();
    let req = kube::core::Request::new(api.resource_url()).patch_subresource(
        "status",
        name,
        &pp,
        &Patch::Apply(body),
    );
    match crate::write_discarding(&ctx.client, req).await {
        Ok(()) => true,
        Err(e) if kube_status(&e) == Some(404) => false,
        Err(e) => {
            tracing::warn!(nodepool = %name, "status: {e}");
            false
        }
    }
}

/// Conditions with transition times kept from the current status when unchanged.
fn conditions(
    np: &NodePool,
    set: &[(&str, &str, &str, &str)],
    now: Timestamp,
) -> Vec<crd::Condition> {
    let old = np
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    set.iter()
        .map(|(t, s, r, m)| {
            let keep = old
                .iter()
                .find(|c| c.type_ == *t && c.status == *s)
                .and_then(|c| c.last_transition_time.clone());
            crd::Condition {
                type_: t.to_string(),
                status: s.to_string(),
                reason: r.to_string(),
                message: m.to_string(),
                last_transition_time: Some(keep.unwrap_or_else(|| rfc3339(now))),
            }
        })
        .collect()
}
