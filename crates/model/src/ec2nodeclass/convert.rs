//! `karpenter.k8s.aws` v1beta1 ⇄ v1 for `EC2NodeClass`, as Karpenter 1.0's conversion webhook
//! did it (`pkg/apis/v1/ec2nodeclass_conversion.go`, v1.0.14).
//!
//! v1beta1 → v1:
//! - `amiFamily` AL2 / AL2023 / Bottlerocket / Windows2019 / Windows2022 without
//!   `amiSelectorTerms` becomes the alias term `<family>@<version>` (version from the
//!   `compatibility.karpenter.k8s.aws/v1-alias-version` annotation, else `latest`) and no
//!   `amiFamily`; with terms, both are kept;
//! - `Ubuntu` (no longer a v1 family) becomes `AL2` (same user data format), with Ubuntu's
//!   default root volume when no `blockDeviceMappings` were given and an
//!   `id: ami-placeholder` term when no `amiSelectorTerms` were (the node class is then unusable
//!   until terms are set); `compatibility.karpenter.k8s.aws/v1beta1-ubuntu` records which of
//!   these were injected (`amiFamily,blockDeviceMappings,incompatible`) so v1beta1 reads back
//!   as written;
//! - any other family becomes `Custom`;
//! - the other fields carry over; status keeps subnets, security groups, AMIs, instance
//!   profile and conditions.
//!
//! v1 → v1beta1: the reverse. `amiFamily` is the alias's family when only an alias says it; an
//! alias pinned to a version keeps the version in the alias-version annotation; alias terms
//! and v1-only fields (`kubelet`, `capacityReservationSelectorTerms`, `ssmParameter` terms, …)
//! are dropped, as upstream drops them.

use serde_json::{Map, Value, json};

use super::{API_VERSION_V1, API_VERSION_V1BETA1};
use crate::convert::{
    ConversionError, array, assemble, copy, metadata_and_annotations, object, pick_each, root,
    string, with_annotations,
};

/// Which Ubuntu compatibility changes a v1 node class carries (comma-separated).
pub const ANNOTATION_UBUNTU_COMPAT: &str = "compatibility.karpenter.k8s.aws/v1beta1-ubuntu";
/// The AMI version of a v1 alias, kept on the v1beta1 view (which has no alias).
pub const ANNOTATION_ALIAS_VERSION: &str = "compatibility.karpenter.k8s.aws/v1-alias-version";

/// The families an alias can name, as `amiFamily` spells them.
const ALIAS_FAMILIES: &[&str] = &[
    "AL2",
    "AL2023",
    "Bottlerocket",
    "Windows2019",
    "Windows2022",
];

/// The spec fields both versions have (v1beta1's whole spec but `amiFamily`,
/// `amiSelectorTerms` and `blockDeviceMappings`, which the conversion handles itself).
const COMMON: &[&str] = &[
    "associatePublicIPAddress",
    "context",
    "detailedMonitoring",
    "role",
    "instanceProfile",
    "instanceStorePolicy",
    "tags",
    "userData",
    "metadataOptions",
];
const SUBNET_TERM: &[&str] = &["id", "tags"];
const SECURITY_GROUP_TERM: &[&str] = &["id", "name", "tags"];
const AMI_TERM_V1BETA1: &[&str] = &["id", "name", "owner", "tags"];
const BLOCK_DEVICE_MAPPING: &[&str] = &["deviceName", "rootVolume", "ebs"];
const STATUS: &[&str] = &[
    "subnets",
    "securityGroups",
    "amis",
    "instanceProfile",
    "conditions",
];

/// A v1beta1 `EC2NodeClass` as v1.
pub fn to_v1(old: &Value) -> Result<Value, ConversionError> {
    let obj = root(old)?;
    let (metadata, mut ann) = metadata_and_annotations(obj)?;
    let alias_version = ann
        .remove(ANNOTATION_ALIAS_VERSION)
        .and_then(|v| v.as_str().map(str::to_string));
    let empty = Map::new();
    let spec = object(obj, "spec", "")?.unwrap_or(&empty);
    let terms = array(spec, "amiSelectorTerms", "spec")?.filter(|t| !t.is_empty());
    let bdms = array(spec, "blockDeviceMappings", "spec")?;

    let mut new = Map::new();
    let mut injected_terms = None;
    let mut injected_bdms = None;
    match string(spec, "amiFamily").unwrap_or("") {
        family if ALIAS_FAMILIES.contains(&family) => {
            if terms.is_none() {
                let version = alias_version.as_deref().unwrap_or("latest");
                injected_terms = Some(json!([{
                    "alias": format!("{}@{version}", family.to_lowercase())
                }]));
            } else {
                new.insert("amiFamily".into(), family.into());
            }
        }
        "Ubuntu" => {
            let mut specifiers = vec!["amiFamily"];
            new.insert("amiFamily".into(), "AL2".into());
            if bdms.is_none() {
                specifiers.push("blockDeviceMappings");
                injected_bdms = Some(json!([{
                    "deviceName": "/dev/sda1",
                    "rootVolume": true,
                    "ebs": {"encrypted": true, "volumeType": "gp3", "volumeSize": "20Gi"},
                }]));
            }
            if terms.is_none() {
                specifiers.push("incompatible");
                injected_terms = Some(json!([{"id": "ami-placeholder"}]));
            }
            ann.insert(ANNOTATION_UBUNTU_COMPAT.into(), specifiers.join(",").into());
        }
        _ => {
            new.insert("amiFamily".into(), "Custom".into());
        }
    }
    match (injected_terms, terms) {
        (Some(t), _) => {
            new.insert("amiSelectorTerms".into(), t);
        }
        (None, Some(t)) => {
            new.insert(
                "amiSelectorTerms".into(),
                Value::Array(pick_each(t, AMI_TERM_V1BETA1, "spec.amiSelectorTerms")?),
            );
        }
        (None, None) => {}
    }
    match (injected_bdms, bdms) {
        (Some(b), _) => {
            new.insert("blockDeviceMappings".into(), b);
        }
        (None, Some(b)) => {
            new.insert(
                "blockDeviceMappings".into(),
                Value::Array(pick_each(
                    b,
                    BLOCK_DEVICE_MAPPING,
                    "spec.blockDeviceMappings",
                )?),
            );
        }
        (None, None) => {}
    }
    selector_terms(spec, &mut new)?;
    copy(spec, &mut new, COMMON);

    Ok(assemble(
        API_VERSION_V1,
        "EC2NodeClass",
        with_annotations(metadata, ann),
        new,
        status(obj)?,
    ))
}

/// A v1 `EC2NodeClass` as v1beta1.
pub fn to_v1beta1(new: &Value) -> Result<Value, ConversionError> {
    let obj = root(new)?;
    let (metadata, mut ann) = metadata_and_annotations(obj)?;
    ann.remove(crate::karpenter::convert::ANNOTATION_STORED_VERSION_MIGRATED);
    let ubuntu = ann
        .remove(ANNOTATION_UBUNTU_COMPAT)
        .map(|v| v.as_str().unwrap_or_default().to_string());
    let empty = Map::new();
    let spec = object(obj, "spec", "")?.unwrap_or(&empty);
    let terms = array(spec, "amiSelectorTerms", "spec")?;
    let alias = terms
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .find_map(|t| string(t, "alias").filter(|a| !a.is_empty()));

    let mut old = Map::new();
    let mut drop_terms = false;
    let mut drop_bdms = false;
    let family = match &ubuntu {
        Some(specifiers) => {
            let s: Vec<&str> = specifiers.split(',').collect();
            drop_terms = s.contains(&"incompatible");
            drop_bdms = s.contains(&"blockDeviceMappings");
            "Ubuntu".to_string()
        }
        None => match (string(spec, "amiFamily"), alias) {
            (Some(f), _) => f.to_string(),
            (None, Some(a)) => alias_family(a).unwrap_or("Custom").to_string(),
            (None, None) => "Custom".to_string(),
        },
    };
    old.insert("amiFamily".into(), family.into());
    if let Some((_, version)) = alias.and_then(|a| a.split_once('@'))
        && version != "latest"
    {
        ann.insert(ANNOTATION_ALIAS_VERSION.into(), version.into());
    }
    if let Some(t) = terms.filter(|_| !drop_terms) {
        let kept: Vec<Value> = t
            .iter()
            .filter(|term| {
                term.get("alias")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            })
            .cloned()
            .collect();
        if !kept.is_empty() {
            old.insert(
                "amiSelectorTerms".into(),
                Value::Array(pick_each(&kept, AMI_TERM_V1BETA1, "spec.amiSelectorTerms")?),
            );
        }
    }
    if let Some(b) = array(spec, "blockDeviceMappings", "spec")?.filter(|_| !drop_bdms) {
        old.insert(
            "blockDeviceMappings".into(),
            Value::Array(pick_each(
                b,
                BLOCK_DEVICE_MAPPING,
                "spec.blockDeviceMappings",
            )?),
        );
    }
    selector_terms(spec, &mut old)?;
    copy(spec, &mut old, COMMON);

    Ok(assemble(
        API_VERSION_V1BETA1,
        "EC2NodeClass",
        with_annotations(metadata, ann),
        old,
        status(obj)?,
    ))
}

/// The subnet and security group selector terms, with the fields both versions have.
fn selector_terms(
    spec: &Map<String, Value>,
    out: &mut Map<String, Value>,
) -> Result<(), ConversionError> {
    for (key, fields) in [
        ("subnetSelectorTerms", SUBNET_TERM),
        ("securityGroupSelectorTerms", SECURITY_GROUP_TERM),
    ] {
        if let Some(t) = array(spec, key, "spec")? {
            out.insert(
                key.into(),
                Value::Array(pick_each(t, fields, &format!("spec.{key}"))?),
            );
        }
    }
    Ok(())
}

/// `al2023@v20240807` → `AL2023`.
fn alias_family(alias: &str) -> Option<&'static str> {
    let (family, _) = alias.split_once('@')?;
    ALIAS_FAMILIES
        .iter()
        .copied()
        .find(|f| f.to_lowercase() == family)
}

fn status(obj: &Map<String, Value>) -> Result<Option<Map<String, Value>>, ConversionError> {
    Ok(object(obj, "status", "")?.map(|s| {
        let mut out = Map::new();
        copy(s, &mut out, STATUS);
        out
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_v1beta1() -> Value {
        json!({
            "apiVersion": "karpenter.k8s.aws/v1beta1",
            "kind": "EC2NodeClass",
            "metadata": {"name": "default"},
            "spec": {
                "amiFamily": "AL2",
                "role": "KarpenterNodeRole-my-cluster",
                "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "my-cluster"}}],
                "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "my-cluster"}}],
                "amiSelectorTerms": [{"id": "ami-0123456789abcdef0"}, {"name": "amazon-eks-node-1.29-*"}],
            },
        })
    }

    #[test]
    fn terms_keep_the_family_and_round_trip() {
        let v1 = to_v1(&seed_v1beta1()).unwrap();
        assert_eq!(v1["apiVersion"], "karpenter.k8s.aws/v1");
        assert_eq!(v1["spec"]["amiFamily"], "AL2");
        assert_eq!(
            v1["spec"]["amiSelectorTerms"][1]["name"],
            "amazon-eks-node-1.29-*"
        );
        assert_eq!(to_v1beta1(&v1).unwrap(), seed_v1beta1());
        // Valid for `kedge check` as v1.
        let errors = crate::manifest::Manifest::validate(&super::super::EC2NodeClassDocument(v1));
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn family_without_terms_becomes_an_alias_and_back() {
        let mut old = seed_v1beta1();
        old["spec"]
            .as_object_mut()
            .unwrap()
            .remove("amiSelectorTerms");
        old["spec"]["amiFamily"] = "AL2023".into();
        let v1 = to_v1(&old).unwrap();
        assert!(v1["spec"].get("amiFamily").is_none());
        assert_eq!(
            v1["spec"]["amiSelectorTerms"],
            json!([{"alias": "al2023@latest"}])
        );
        assert_eq!(to_v1beta1(&v1).unwrap(), old);

        // A pinned alias keeps its version in an annotation on the v1beta1 view.
        let mut v1 = v1;
        v1["spec"]["amiSelectorTerms"] = json!([{"alias": "bottlerocket@v1.20.0"}]);
        let back = to_v1beta1(&v1).unwrap();
        assert_eq!(back["spec"]["amiFamily"], "Bottlerocket");
        assert!(back["spec"].get("amiSelectorTerms").is_none());
        assert_eq!(
            back["metadata"]["annotations"][ANNOTATION_ALIAS_VERSION],
            "v1.20.0"
        );
        let again = to_v1(&back).unwrap();
        assert_eq!(
            again["spec"]["amiSelectorTerms"],
            json!([{"alias": "bottlerocket@v1.20.0"}])
        );
        assert!(again["metadata"].get("annotations").is_none());
    }

    #[test]
    fn ubuntu_becomes_al2_with_what_was_injected_recorded() {
        let mut old = seed_v1beta1();
        old["spec"]["amiFamily"] = "Ubuntu".into();
        old["spec"]
            .as_object_mut()
            .unwrap()
            .remove("amiSelectorTerms");
        let v1 = to_v1(&old).unwrap();
        assert_eq!(v1["spec"]["amiFamily"], "AL2");
        assert_eq!(
            v1["spec"]["amiSelectorTerms"],
            json!([{"id": "ami-placeholder"}])
        );
        assert_eq!(
            v1["spec"]["blockDeviceMappings"][0]["deviceName"],
            "/dev/sda1"
        );
        assert_eq!(
            v1["metadata"]["annotations"][ANNOTATION_UBUNTU_COMPAT],
            "amiFamily,blockDeviceMappings,incompatible"
        );
        assert_eq!(to_v1beta1(&v1).unwrap(), old);
    }

    #[test]
    fn v1_only_fields_are_dropped_and_unknown_families_are_custom() {
        let v1 = json!({
            "apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass",
            "metadata": {"name": "x"},
            "spec": {
                "amiSelectorTerms": [{"alias": "al2023@latest"}, {"ssmParameter": "/p"}],
                "subnetSelectorTerms": [{"id": "subnet-1"}],
                "securityGroupSelectorTerms": [{"name": "sg"}],
                "kubelet": {"maxPods": 10},
                "capacityReservationSelectorTerms": [{"id": "cr-1"}],
            },
        });
        let old = to_v1beta1(&v1).unwrap();
        assert_eq!(
            old["spec"],
            json!({"amiFamily": "AL2023", "amiSelectorTerms": [{}],
                   "subnetSelectorTerms": [{"id": "subnet-1"}],
                   "securityGroupSelectorTerms": [{"name": "sg"}]})
        );
        let mut odd = seed_v1beta1();
        odd["spec"]["amiFamily"] = "Plan9".into();
        assert_eq!(to_v1(&odd).unwrap()["spec"]["amiFamily"], "Custom");
    }
}
