//! `karpenter.sh` v1beta1 ⇄ v1 for `NodePool` and `NodeClaim`, as Karpenter 1.0's conversion
//! webhook did it (`pkg/apis/v1/nodepool_conversion.go`, `nodeclaim_conversion.go`, v1.0.9).
//!
//! v1beta1 → v1 (a v1beta1 object written, stored as v1):
//! - `disruption.consolidationPolicy: WhenUnderutilized` becomes `WhenEmptyOrUnderutilized`
//!   with `consolidateAfter: 0s`; `WhenEmpty` keeps its `consolidateAfter`;
//! - `disruption.expireAfter` moves to `template.spec.expireAfter`;
//! - `nodeClassRef.apiVersion` becomes `group` (default `karpenter.k8s.aws`, kind default
//!   `EC2NodeClass`), and the v1beta1 reference is kept verbatim in the
//!   `compatibility.karpenter.sh/v1beta1-nodeclass-reference` annotation;
//! - `kubelet` (moved to the node class in v1) is kept in the
//!   `compatibility.karpenter.sh/v1beta1-kubelet-conversion` annotation;
//! - `template.spec.resources` (v1beta1 only) is dropped; status keeps `resources` and
//!   `conditions`.
//!
//! v1 → v1beta1 (a stored object read as v1beta1): the reverse, with `nodeClassRef` and `kubelet`
//! restored from those annotations (which the v1beta1 view does not show). What v1beta1 cannot
//! express is dropped, exactly as upstream dropped it: `consolidateAfter` under
//! `WhenEmptyOrUnderutilized`, budget `reasons`, `terminationGracePeriod`, `replicas`.
//!
//! One difference: Karpenter's NodeClaim v1beta1 → v1 looked up the NodePool to fill
//! `expireAfter`; a conversion here has no client, so the field stays unset and reads as the
//! NodePool default (720h). kedge only ever writes NodeClaims as v1, so this path is for
//! objects written by hand.
//!
//! The CRDs carry no defaults (see the operator's `crd::schema`), so a field left out stays
//! left out in either version: their defaults agree (`WhenUnderutilized` ≡
//! `WhenEmptyOrUnderutilized` with `consolidateAfter: 0s`).

use serde_json::{Map, Value};

use super::{ANNOTATION_KUBELET_COMPAT, API_VERSION_V1, API_VERSION_V1BETA1};
use crate::convert::{
    ConversionError, array, assemble, copy, metadata_and_annotations, object, pick_each, root,
    string, with_annotations,
};

/// Where v1 keeps the v1beta1 `nodeClassRef` (its `apiVersion` has no v1 field).
pub const ANNOTATION_NODECLASS_REFERENCE: &str =
    "compatibility.karpenter.sh/v1beta1-nodeclass-reference";
/// Karpenter's marker of a v1 object its migration controller rewrote; dropped from the
/// v1beta1 view as upstream drops it.
pub const ANNOTATION_STORED_VERSION_MIGRATED: &str = "karpenter.sh/stored-version-migrated";

const REQUIREMENT: &[&str] = &["key", "operator", "values", "minValues"];
const BUDGET_V1BETA1: &[&str] = &["nodes", "schedule", "duration"];
const NODECLAIM_STATUS: &[&str] = &[
    "nodeName",
    "providerID",
    "imageID",
    "capacity",
    "allocatable",
    "conditions",
];

/// A v1beta1 `NodePool` as v1.
pub fn nodepool_to_v1(old: &Value) -> Result<Value, ConversionError> {
    let obj = root(old)?;
    let (metadata, mut ann) = metadata_and_annotations(obj)?;
    let empty = Map::new();
    let spec = object(obj, "spec", "")?.unwrap_or(&empty);
    let template = object(spec, "template", "spec")?.unwrap_or(&empty);
    let tspec = object(template, "spec", "spec.template")?.unwrap_or(&empty);
    let disruption = object(spec, "disruption", "spec")?;

    compat_annotations_to_v1(tspec, &mut ann, "spec.template.spec")?;

    let mut new_tspec = Map::new();
    copy(tspec, &mut new_tspec, &["taints", "startupTaints"]);
    if let Some(r) = array(tspec, "requirements", "spec.template.spec")? {
        new_tspec.insert(
            "requirements".into(),
            Value::Array(pick_each(
                r,
                REQUIREMENT,
                "spec.template.spec.requirements",
            )?),
        );
    }
    if let Some(r) = object(tspec, "nodeClassRef", "spec.template.spec")? {
        new_tspec.insert("nodeClassRef".into(), node_class_ref_to_v1(r));
    }
    if let Some(d) = disruption {
        copy(d, &mut new_tspec, &["expireAfter"]);
    }
    let mut new_template = Map::new();
    copy(template, &mut new_template, &["metadata"]);
    new_template.insert("spec".into(), Value::Object(new_tspec));

    let mut new_spec = Map::new();
    new_spec.insert("template".into(), Value::Object(new_template));
    if let Some(d) = disruption {
        let mut nd = Map::new();
        match string(d, "consolidationPolicy") {
            Some("WhenUnderutilized") => {
                nd.insert(
                    "consolidationPolicy".into(),
                    "WhenEmptyOrUnderutilized".into(),
                );
                nd.insert("consolidateAfter".into(), "0s".into());
            }
            _ => copy(d, &mut nd, &["consolidationPolicy", "consolidateAfter"]),
        }
        if let Some(b) = array(d, "budgets", "spec.disruption")? {
            nd.insert(
                "budgets".into(),
                Value::Array(pick_each(b, BUDGET_V1BETA1, "spec.disruption.budgets")?),
            );
        }
        new_spec.insert("disruption".into(), Value::Object(nd));
    }
    copy(spec, &mut new_spec, &["limits", "weight"]);

    Ok(assemble(
        API_VERSION_V1,
        "NodePool",
        with_annotations(metadata, ann),
        new_spec,
        nodepool_status(obj)?,
    ))
}

/// A v1 `NodePool` as v1beta1.
pub fn nodepool_to_v1beta1(new: &Value) -> Result<Value, ConversionError> {
    let obj = root(new)?;
    let (metadata, mut ann) = metadata_and_annotations(obj)?;
    let empty = Map::new();
    let spec = object(obj, "spec", "")?.unwrap_or(&empty);
    let template = object(spec, "template", "spec")?.unwrap_or(&empty);
    let tspec = object(template, "spec", "spec.template")?.unwrap_or(&empty);

    let mut old_tspec = Map::new();
    copy(tspec, &mut old_tspec, &["taints", "startupTaints"]);
    if let Some(r) = array(tspec, "requirements", "spec.template.spec")? {
        old_tspec.insert(
            "requirements".into(),
            Value::Array(pick_each(
                r,
                REQUIREMENT,
                "spec.template.spec.requirements",
            )?),
        );
    }
    compat_annotations_to_v1beta1(tspec, &mut ann, &mut old_tspec)?;
    let mut old_template = Map::new();
    copy(template, &mut old_template, &["metadata"]);
    old_template.insert("spec".into(), Value::Object(old_tspec));

    let mut old_spec = Map::new();
    old_spec.insert("template".into(), Value::Object(old_template));
    let disruption = object(spec, "disruption", "spec")?;
    let mut od = Map::new();
    if let Some(d) = disruption {
        match string(d, "consolidationPolicy") {
            // v1beta1's WhenUnderutilized has no consolidateAfter.
            Some("WhenEmptyOrUnderutilized") => {
                od.insert("consolidationPolicy".into(), "WhenUnderutilized".into());
            }
            // Unset is the same default (WhenEmptyOrUnderutilized) and stays unset.
            None => {}
            Some(_) => copy(d, &mut od, &["consolidationPolicy", "consolidateAfter"]),
        }
        if let Some(b) = array(d, "budgets", "spec.disruption")? {
            od.insert(
                "budgets".into(),
                Value::Array(pick_each(b, BUDGET_V1BETA1, "spec.disruption.budgets")?),
            );
        }
    }
    copy(tspec, &mut od, &["expireAfter"]);
    if disruption.is_some() || !od.is_empty() {
        old_spec.insert("disruption".into(), Value::Object(od));
    }
    copy(spec, &mut old_spec, &["limits", "weight"]);

    Ok(assemble(
        API_VERSION_V1BETA1,
        "NodePool",
        with_annotations(metadata, ann),
        old_spec,
        nodepool_status(obj)?,
    ))
}

/// A v1beta1 `NodeClaim` as v1.
pub fn nodeclaim_to_v1(old: &Value) -> Result<Value, ConversionError> {
    let obj = root(old)?;
    let (metadata, mut ann) = metadata_and_annotations(obj)?;
    let empty = Map::new();
    let spec = object(obj, "spec", "")?.unwrap_or(&empty);
    compat_annotations_to_v1(spec, &mut ann, "spec")?;
    let mut new_spec = Map::new();
    copy(spec, &mut new_spec, &["taints", "startupTaints"]);
    if let Some(r) = array(spec, "requirements", "spec")? {
        new_spec.insert(
            "requirements".into(),
            Value::Array(pick_each(r, REQUIREMENT, "spec.requirements")?),
        );
    }
    copy(spec, &mut new_spec, &["resources"]);
    if let Some(r) = object(spec, "nodeClassRef", "spec")? {
        new_spec.insert("nodeClassRef".into(), node_class_ref_to_v1(r));
    }
    Ok(assemble(
        API_VERSION_V1,
        "NodeClaim",
        with_annotations(metadata, ann),
        new_spec,
        picked_status(obj, NODECLAIM_STATUS)?,
    ))
}

/// A v1 `NodeClaim` as v1beta1.
pub fn nodeclaim_to_v1beta1(new: &Value) -> Result<Value, ConversionError> {
    let obj = root(new)?;
    let (metadata, mut ann) = metadata_and_annotations(obj)?;
    let empty = Map::new();
    let spec = object(obj, "spec", "")?.unwrap_or(&empty);
    let mut old_spec = Map::new();
    copy(spec, &mut old_spec, &["taints", "startupTaints"]);
    if let Some(r) = array(spec, "requirements", "spec")? {
        old_spec.insert(
            "requirements".into(),
            Value::Array(pick_each(r, REQUIREMENT, "spec.requirements")?),
        );
    }
    copy(spec, &mut old_spec, &["resources"]);
    compat_annotations_to_v1beta1(spec, &mut ann, &mut old_spec)?;
    Ok(assemble(
        API_VERSION_V1BETA1,
        "NodeClaim",
        with_annotations(metadata, ann),
        old_spec,
        picked_status(obj, NODECLAIM_STATUS)?,
    ))
}

/// v1beta1 `kubelet` and `nodeClassRef` (of the spec at `path`) into v1's compatibility
/// annotations. Karpenter sets the kubelet annotation or removes a stale one, and always
/// records the v1beta1 reference.
fn compat_annotations_to_v1(
    spec: &Map<String, Value>,
    ann: &mut Map<String, Value>,
    path: &str,
) -> Result<(), ConversionError> {
    match object(spec, "kubelet", path)? {
        Some(k) => {
            ann.insert(ANNOTATION_KUBELET_COMPAT.into(), kubelet_json(k).into());
        }
        None => {
            ann.remove(ANNOTATION_KUBELET_COMPAT);
        }
    }
    if let Some(r) = object(spec, "nodeClassRef", path)? {
        ann.insert(
            ANNOTATION_NODECLASS_REFERENCE.into(),
            node_class_ref_json(r).into(),
        );
    }
    Ok(())
}

/// v1's compatibility annotations back into the v1beta1 spec (`kubelet`, `nodeClassRef`),
/// removing them (and Karpenter's migration marker) from what the v1beta1 view shows.
fn compat_annotations_to_v1beta1(
    spec: &Map<String, Value>,
    ann: &mut Map<String, Value>,
    out: &mut Map<String, Value>,
) -> Result<(), ConversionError> {
    let reference = ann.remove(ANNOTATION_NODECLASS_REFERENCE);
    if let Some(r) = object(spec, "nodeClassRef", "spec")? {
        let restored = match reference.as_ref().and_then(Value::as_str) {
            Some(text) => serde_json::from_str::<Value>(text)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| {
                    ConversionError::invalid(
                        format!("metadata.annotations[{ANNOTATION_NODECLASS_REFERENCE}]"),
                        format!("not a JSON nodeClassRef: {text}"),
                    )
                })?,
            None => {
                let mut m = Map::new();
                copy(r, &mut m, &["kind", "name"]);
                Value::Object(m)
            }
        };
        out.insert("nodeClassRef".into(), restored);
    }
    if let Some(text) = ann.remove(ANNOTATION_KUBELET_COMPAT) {
        let text = text.as_str().unwrap_or_default();
        let kubelet = serde_json::from_str::<Value>(text)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| {
                ConversionError::invalid(
                    format!("metadata.annotations[{ANNOTATION_KUBELET_COMPAT}]"),
                    format!("not a JSON kubelet configuration: {text}"),
                )
            })?;
        out.insert("kubelet".into(), kubelet);
    }
    ann.remove(ANNOTATION_STORED_VERSION_MIGRATED);
    Ok(())
}

/// A v1beta1 `nodeClassRef` (`apiVersion`, `kind`, `name`) as v1's (`group`, `kind`, `name`).
fn node_class_ref_to_v1(r: &Map<String, Value>) -> Value {
    let group = string(r, "apiVersion")
        .and_then(|v| v.split('/').next())
        .filter(|g| !g.is_empty())
        .unwrap_or("karpenter.k8s.aws");
    let kind = string(r, "kind")
        .filter(|k| !k.is_empty())
        .unwrap_or("EC2NodeClass");
    let mut m = Map::new();
    m.insert("group".into(), group.into());
    m.insert("kind".into(), kind.into());
    m.insert(
        "name".into(),
        r.get("name")
            .cloned()
            .unwrap_or(Value::String(String::new())),
    );
    Value::Object(m)
}

/// The annotation text of a v1beta1 reference, as Go marshals it (`kind`, `name`,
/// `apiVersion`, empty ones left out).
fn node_class_ref_json(r: &Map<String, Value>) -> String {
    let mut parts = Vec::new();
    for (key, omit_empty) in [("kind", true), ("name", false), ("apiVersion", true)] {
        let v = string(r, key).unwrap_or("");
        if !(omit_empty && v.is_empty()) {
            parts.push(format!("{}:{}", Value::from(key), Value::from(v)));
        }
    }
    format!("{{{}}}", parts.join(","))
}

/// The annotation text of a v1beta1 `kubelet`: in the field order of Karpenter's Go type when
/// it is one (what Karpenter itself writes), else as given.
fn kubelet_json(k: &Map<String, Value>) -> String {
    let v = Value::Object(k.clone());
    serde_json::from_value::<super::v1beta1::KubeletConfiguration>(v.clone())
        .ok()
        .and_then(|typed| serde_json::to_string(&typed).ok())
        .unwrap_or_else(|| v.to_string())
}

fn nodepool_status(
    obj: &Map<String, Value>,
) -> Result<Option<Map<String, Value>>, ConversionError> {
    picked_status(obj, &["resources", "conditions"])
}

fn picked_status(
    obj: &Map<String, Value>,
    keys: &[&str],
) -> Result<Option<Map<String, Value>>, ConversionError> {
    Ok(object(obj, "status", "")?.map(|s| {
        let mut out = Map::new();
        copy(s, &mut out, keys);
        out
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seed_v1beta1() -> Value {
        json!({
            "apiVersion": "karpenter.sh/v1beta1",
            "kind": "NodePool",
            "metadata": {"name": "default", "uid": "u-1", "resourceVersion": "7",
                         "annotations": {"team": "payments"}},
            "spec": {
                "template": {
                    "metadata": {"labels": {"intent": "apps"}},
                    "spec": {
                        "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In",
                                          "values": ["on-demand"], "minValues": 1}],
                        "nodeClassRef": {"apiVersion": "karpenter.k8s.aws/v1beta1",
                                         "kind": "EC2NodeClass", "name": "default"},
                        "kubelet": {"maxPods": 110, "clusterDNS": ["10.0.1.100"]},
                        "resources": {"requests": {"cpu": "1"}},
                    },
                },
                "limits": {"cpu": 1000},
                "disruption": {"consolidationPolicy": "WhenUnderutilized", "expireAfter": "720h",
                               "budgets": [{"nodes": "10%"}]},
                "weight": 10,
            },
            "status": {"resources": {"cpu": "4"}, "conditions": [{"type": "Ready", "status": "True"}]},
        })
    }

    #[test]
    fn nodepool_v1beta1_to_v1_as_karpenter_does() {
        let v1 = nodepool_to_v1(&seed_v1beta1()).unwrap();
        assert_eq!(v1["apiVersion"], "karpenter.sh/v1");
        let t = &v1["spec"]["template"]["spec"];
        assert_eq!(
            t["nodeClassRef"],
            json!({"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"})
        );
        assert_eq!(t["expireAfter"], "720h");
        assert!(t.get("kubelet").is_none() && t.get("resources").is_none());
        assert_eq!(
            v1["spec"]["disruption"],
            json!({"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "0s",
                   "budgets": [{"nodes": "10%"}]})
        );
        let ann = &v1["metadata"]["annotations"];
        assert_eq!(ann["team"], "payments");
        assert_eq!(
            ann[ANNOTATION_KUBELET_COMPAT],
            r#"{"clusterDNS":["10.0.1.100"],"maxPods":110}"#
        );
        assert_eq!(
            ann[ANNOTATION_NODECLASS_REFERENCE],
            r#"{"kind":"EC2NodeClass","name":"default","apiVersion":"karpenter.k8s.aws/v1beta1"}"#
        );
        assert_eq!(v1["metadata"]["uid"], "u-1");
        assert_eq!(v1["status"]["resources"]["cpu"], "4");
        // And the result is a valid v1 NodePool for the model.
        crate::karpenter::NodePool::from_value(&v1).unwrap();
    }

    #[test]
    fn nodepool_round_trips_through_v1_without_loss() {
        let old = seed_v1beta1();
        let back = nodepool_to_v1beta1(&nodepool_to_v1(&old).unwrap()).unwrap();
        let mut expected = old.clone();
        // v1beta1-only and dropped by upstream too: the template's `resources`.
        expected["spec"]["template"]["spec"]
            .as_object_mut()
            .unwrap()
            .remove("resources");
        assert_eq!(back, expected);
    }

    #[test]
    fn nodepool_v1_to_v1beta1_drops_what_v1beta1_cannot_say() {
        let v1 = json!({
            "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
            "metadata": {"name": "p", "annotations": {"karpenter.sh/stored-version-migrated": "true"}},
            "spec": {
                "template": {"spec": {
                    "requirements": [],
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "x"},
                    "expireAfter": "Never", "terminationGracePeriod": "1h",
                }},
                "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "1m",
                               "budgets": [{"nodes": "0", "reasons": ["Drifted"]}]},
                "replicas": 3,
            },
            "status": {"nodes": 2, "resources": {"cpu": "2"}},
        });
        let old = nodepool_to_v1beta1(&v1).unwrap();
        assert_eq!(
            old,
            json!({
                "apiVersion": "karpenter.sh/v1beta1", "kind": "NodePool",
                "metadata": {"name": "p"},
                "spec": {
                    "template": {"spec": {"requirements": [],
                                          "nodeClassRef": {"kind": "EC2NodeClass", "name": "x"}}},
                    "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "1m",
                                   "budgets": [{"nodes": "0"}], "expireAfter": "Never"},
                },
                "status": {"resources": {"cpu": "2"}},
            })
        );
        // WhenEmptyOrUnderutilized has no consolidateAfter in v1beta1.
        let mut v1 = v1;
        v1["spec"]["disruption"]["consolidationPolicy"] = "WhenEmptyOrUnderutilized".into();
        let old = nodepool_to_v1beta1(&v1).unwrap();
        assert_eq!(
            old["spec"]["disruption"]["consolidationPolicy"],
            "WhenUnderutilized"
        );
        assert!(old["spec"]["disruption"].get("consolidateAfter").is_none());
    }

    #[test]
    fn a_bad_compatibility_annotation_is_named() {
        let v1 = json!({
            "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
            "metadata": {"name": "p", "annotations": {ANNOTATION_KUBELET_COMPAT: "{not json"}},
            "spec": {"template": {"spec": {"nodeClassRef": {"group": "g", "kind": "k", "name": "n"}}}},
        });
        let e = nodepool_to_v1beta1(&v1).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "metadata.annotations[compatibility.karpenter.sh/v1beta1-kubelet-conversion]"
            ),
            "{e}"
        );
        let e = nodepool_to_v1(&json!({"kind": "NodePool", "spec": {"template": []}})).unwrap_err();
        assert_eq!(e.to_string(), "spec.template: must be an object");
    }

    #[test]
    fn nodeclaim_round_trips() {
        let old = json!({
            "apiVersion": "karpenter.sh/v1beta1", "kind": "NodeClaim",
            "metadata": {"name": "c", "labels": {"karpenter.sh/nodepool": "default"}},
            "spec": {
                "requirements": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}],
                "resources": {"requests": {"cpu": "1"}},
                "nodeClassRef": {"name": "default"},
                "kubelet": {"maxPods": 20},
            },
            "status": {"nodeName": "n1", "providerID": "aws:///i-1"},
        });
        let v1 = nodeclaim_to_v1(&old).unwrap();
        assert_eq!(
            v1["spec"]["nodeClassRef"],
            json!({"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"})
        );
        assert_eq!(
            v1["metadata"]["annotations"][ANNOTATION_NODECLASS_REFERENCE],
            r#"{"name":"default"}"#
        );
        assert_eq!(nodeclaim_to_v1beta1(&v1).unwrap(), old);
    }
}
