//! Karpenter's AWS node class, `EC2NodeClass`, as `kedge check` validates it: `karpenter.k8s.aws/v1`
//! (Karpenter 1.0 to 1.15) and `karpenter.k8s.aws/v1beta1` (0.32 to 0.37, and served beside v1
//! by 1.0), each with its own CRD's fields and rules (OpenAPI patterns, enums, bounds and the CEL
//! `x-kubernetes-validations`), reported as field-path errors.
//!
//! Every struct denies unknown fields, so a misspelt or version-mismatched field (e.g. `alias`
//! in a v1beta1 `amiSelectorTerms`, or `kubelet` in a v1beta1 node class) names itself. The
//! rules that compare with the stored object (`oldSelf`: role/instanceProfile immutability)
//! need a cluster and are not checked here.
//!
//! v1's `kubelet` is free-form since Karpenter 1.15 (any KubeletConfiguration field passes
//! through, and Karpenter reports rejected ones on the status), so only its shape as an object
//! is checked.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::manifest::{FieldError, Manifest, ObjectMeta};

pub mod convert;

pub const API_VERSION_V1: &str = "karpenter.k8s.aws/v1";
pub const API_VERSION_V1BETA1: &str = "karpenter.k8s.aws/v1beta1";

type Tags = BTreeMap<String, String>;

/// A v1 or v1beta1 `EC2NodeClass` document, validated with its own version's rules.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct EC2NodeClassDocument(pub serde_json::Value);

impl Manifest for EC2NodeClassDocument {
    const KIND: &'static str = "EC2NodeClass";
    const API_VERSIONS: &'static [&'static str] = &[API_VERSION_V1, API_VERSION_V1BETA1];
    fn validate(&self) -> Vec<FieldError> {
        match self.0.get("apiVersion").and_then(|v| v.as_str()) {
            Some(API_VERSION_V1BETA1) => decode::<v1beta1::EC2NodeClass>(&self.0),
            _ => decode::<EC2NodeClass>(&self.0),
        }
    }
}

fn decode<T: serde::de::DeserializeOwned + Validate>(value: &serde_json::Value) -> Vec<FieldError> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => {
            let mut e = Vec::new();
            v.validate_into(&mut e);
            e
        }
        Err(err) => vec![crate::manifest::serde_field_error(&err)],
    }
}

trait Validate {
    fn validate_into(&self, e: &mut Vec<FieldError>);
}

// ---------------------------------------------------------------------------------------------
// v1
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EC2NodeClass {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub spec: EC2NodeClassSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EC2NodeClassSpec {
    pub subnet_selector_terms: Vec<SubnetSelectorTerm>,
    pub security_group_selector_terms: Vec<SecurityGroupSelectorTerm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_reservation_selector_terms: Option<Vec<CapacityReservationSelectorTerm>>,
    #[serde(
        default,
        rename = "associatePublicIPAddress",
        skip_serializing_if = "Option::is_none"
    )]
    pub associate_public_ip_address: Option<bool>,
    pub ami_selector_terms: Vec<AmiSelectorTerm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ami_family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
    /// Free-form since Karpenter 1.15 (see the module docs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_device_mappings: Option<Vec<BlockDeviceMapping>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_store_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detailed_monitoring: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_options: Option<MetadataOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_prefix_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_interfaces: Option<Vec<NetworkInterface>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_group_selector: Option<PlacementGroupSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_tracking: Option<ConnectionTracking>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_options: Option<CpuOptions>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubnetSelectorTerm {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityGroupSelectorTerm {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CapacityReservationSelectorTerm {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, rename = "ownerID", skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_match_criteria: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AmiSelectorTerm {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssm_parameter: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockDeviceMapping {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ebs: Option<BlockDevice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_volume: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockDevice {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_on_termination: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops: Option<i64>,
    #[serde(default, rename = "kmsKeyID", skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    #[serde(
        default,
        rename = "snapshotID",
        skip_serializing_if = "Option::is_none"
    )]
    pub snapshot_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<i64>,
    /// v1 only (Karpenter 1.4+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_initialization_rate: Option<i64>,
    /// A quantity such as `20Gi`; YAML may spell a bare number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_size: Option<StringOrNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_type: Option<String>,
}

/// The CRD declares `volumeSize` a string with a pattern; a YAML number is a type error there,
/// reported with the field path by validation rather than by the deserializer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StringOrNumber {
    String(String),
    Number(serde_json::Number),
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetadataOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_endpoint: Option<String>,
    #[serde(
        default,
        rename = "httpProtocolIPv6",
        skip_serializing_if = "Option::is_none"
    )]
    pub http_protocol_ipv6: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_put_response_hop_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_tokens: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkInterface {
    pub network_card_index: i64,
    pub device_index: i64,
    pub interface_type: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlacementGroupSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionTracking {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_established_timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_stream_timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_timeout: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CpuOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nested_virtualization: Option<String>,
}

const AMI_FAMILIES_V1: &[&str] = &[
    "AL2",
    "AL2023",
    "Bottlerocket",
    "Custom",
    "Windows2019",
    "Windows2022",
    "Windows2025",
];
const ALIAS_FAMILIES: &[(&str, &str)] = &[
    ("al2", "AL2"),
    ("al2023", "AL2023"),
    ("bottlerocket", "Bottlerocket"),
    ("windows2019", "Windows2019"),
    ("windows2022", "Windows2022"),
    ("windows2025", "Windows2025"),
];

impl Validate for EC2NodeClass {
    fn validate_into(&self, e: &mut Vec<FieldError>) {
        validate_meta(&self.metadata, e);
        let s = &self.spec;
        subnet_terms(&s.subnet_selector_terms, e);
        security_group_terms(&s.security_group_selector_terms, e);
        if let Some(terms) = &s.capacity_reservation_selector_terms {
            capacity_reservation_terms(terms, e);
        }
        let base = "spec.amiSelectorTerms";
        if s.ami_selector_terms.is_empty() {
            e.push(FieldError::new(base, "must have at least 1 item"));
        }
        max_items(base, s.ami_selector_terms.len(), 30, e);
        let has_alias = s.ami_selector_terms.iter().any(|t| t.alias.is_some());
        if has_alias && s.ami_selector_terms.len() != 1 {
            e.push(FieldError::new(
                base,
                "'alias' is mutually exclusive, cannot be set with a combination of other amiSelectorTerms",
            ));
        }
        for (i, t) in s.ami_selector_terms.iter().enumerate() {
            let p = format!("{base}[{i}]");
            if t.tags.is_none()
                && t.id.is_none()
                && t.name.is_none()
                && t.alias.is_none()
                && t.ssm_parameter.is_none()
            {
                e.push(FieldError::new(
                    &p,
                    "expected at least one, got none, ['tags', 'id', 'name', 'alias', 'ssmParameter']",
                ));
            }
            if t.id.is_some()
                && (t.alias.is_some() || t.tags.is_some() || t.name.is_some() || t.owner.is_some())
            {
                e.push(FieldError::new(
                    &p,
                    "'id' is mutually exclusive, cannot be set with a combination of other fields in amiSelectorTerms",
                ));
            }
            if t.alias.is_some()
                && (t.id.is_some() || t.tags.is_some() || t.name.is_some() || t.owner.is_some())
            {
                e.push(FieldError::new(
                    &p,
                    "'alias' is mutually exclusive, cannot be set with a combination of other fields in amiSelectorTerms",
                ));
            }
            if let Some(id) = &t.id {
                prefixed_id(&format!("{p}.id"), id, "ami-", e);
            }
            if let Some(tags) = &t.tags {
                term_tags(&format!("{p}.tags"), tags, e);
            }
            if let Some(a) = &t.alias {
                alias(&format!("{p}.alias"), a, e);
            }
        }
        if let Some(f) = &s.ami_family {
            one_of("spec.amiFamily", f, AMI_FAMILIES_V1, e);
            for t in &s.ami_selector_terms {
                let Some(a) = &t.alias else { continue };
                let fam = a.split('@').next().unwrap_or("");
                if let Some((_, want)) = ALIAS_FAMILIES.iter().find(|(af, _)| *af == fam)
                    && f != want
                    && f != "Custom"
                {
                    e.push(FieldError::new(
                        "spec.amiFamily",
                        format!(
                            "if set, amiFamily must be '{want}' or 'Custom' when using an {want} alias"
                        ),
                    ));
                }
            }
        } else if !has_alias {
            e.push(FieldError::new(
                "spec.amiFamily",
                "must specify amiFamily if amiSelectorTerms does not contain an alias",
            ));
        }
        role_or_profile(s.role.as_deref(), s.instance_profile.as_deref(), e);
        if let Some(tags) = &s.tags {
            node_class_tags(tags, true, e);
        }
        if let Some(b) = &s.block_device_mappings {
            block_device_mappings(b, true, e);
        }
        if let Some(p) = &s.instance_store_policy {
            one_of("spec.instanceStorePolicy", p, &["RAID0"], e);
        }
        if let Some(m) = &s.metadata_options {
            metadata_options(m, e);
        }
        if let Some(n) = s.ip_prefix_count
            && n < 0
        {
            e.push(FieldError::new(
                "spec.ipPrefixCount",
                format!("must be 0 or more, got {n}"),
            ));
        }
        if let Some(nis) = &s.network_interfaces {
            network_interfaces(nis, e);
        }
        if let Some(pg) = &s.placement_group_selector {
            let p = "spec.placementGroupSelector";
            match (&pg.name, &pg.id) {
                (None, None) => e.push(FieldError::new(
                    p,
                    "expected at least one, got none, ['name', 'id']",
                )),
                (Some(_), Some(_)) => {
                    e.push(FieldError::new(p, "'name' and 'id' are mutually exclusive"))
                }
                _ => {}
            }
            if let Some(n) = &pg.name
                && n.is_empty()
            {
                e.push(FieldError::new(format!("{p}.name"), "must not be empty"));
            }
            if let Some(id) = &pg.id
                && !(id.starts_with("pg-") && is_lower_alnum(&id[3..]))
            {
                e.push(FieldError::new(
                    format!("{p}.id"),
                    format!("{id:?} does not match ^pg-[0-9a-z]+$"),
                ));
            }
        }
        if let Some(c) = &s.connection_tracking {
            let p = "spec.connectionTracking";
            if c.tcp_established_timeout.is_none()
                && c.udp_stream_timeout.is_none()
                && c.udp_timeout.is_none()
            {
                e.push(FieldError::new(
                    p,
                    "at least one of tcpEstablishedTimeout, udpStreamTimeout, or udpTimeout must be set",
                ));
            }
            range(
                &format!("{p}.tcpEstablishedTimeout"),
                c.tcp_established_timeout,
                60,
                432_000,
                e,
            );
            range(
                &format!("{p}.udpStreamTimeout"),
                c.udp_stream_timeout,
                60,
                180,
                e,
            );
            range(&format!("{p}.udpTimeout"), c.udp_timeout, 30, 60, e);
        }
        if let Some(c) = &s.cpu_options
            && let Some(v) = &c.nested_virtualization
        {
            one_of(
                "spec.cpuOptions.nestedVirtualization",
                v,
                &["enabled", "disabled"],
                e,
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// v1beta1
// ---------------------------------------------------------------------------------------------

/// `karpenter.k8s.aws/v1beta1`: `amiFamily` required (with `Ubuntu`), no `alias`, no `kubelet`
/// (it lived on the v1beta1 NodePool), and `karpenter.sh/managed-by` a restricted tag.
pub mod v1beta1 {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct EC2NodeClass {
        pub api_version: String,
        pub kind: String,
        #[serde(default)]
        pub metadata: ObjectMeta,
        pub spec: EC2NodeClassSpec,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub status: Option<serde_json::Value>,
    }

    #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct EC2NodeClassSpec {
        pub subnet_selector_terms: Vec<SubnetSelectorTerm>,
        pub security_group_selector_terms: Vec<SecurityGroupSelectorTerm>,
        #[serde(
            default,
            rename = "associatePublicIPAddress",
            skip_serializing_if = "Option::is_none"
        )]
        pub associate_public_ip_address: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ami_selector_terms: Option<Vec<AmiSelectorTerm>>,
        pub ami_family: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub user_data: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub role: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub instance_profile: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tags: Option<Tags>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub block_device_mappings: Option<Vec<BlockDeviceMapping>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub instance_store_policy: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub detailed_monitoring: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub metadata_options: Option<MetadataOptions>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub context: Option<String>,
    }

    #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct AmiSelectorTerm {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tags: Option<Tags>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub owner: Option<String>,
    }

    const AMI_FAMILIES: &[&str] = &[
        "AL2",
        "AL2023",
        "Bottlerocket",
        "Ubuntu",
        "Custom",
        "Windows2019",
        "Windows2022",
    ];

    impl Validate for EC2NodeClass {
        fn validate_into(&self, e: &mut Vec<FieldError>) {
            validate_meta(&self.metadata, e);
            let s = &self.spec;
            subnet_terms(&s.subnet_selector_terms, e);
            security_group_terms(&s.security_group_selector_terms, e);
            one_of("spec.amiFamily", &s.ami_family, AMI_FAMILIES, e);
            let terms = s.ami_selector_terms.as_deref().unwrap_or_default();
            if s.ami_family == "Custom" && terms.is_empty() {
                e.push(FieldError::new(
                    "spec.amiSelectorTerms",
                    "amiSelectorTerms is required when amiFamily == 'Custom'",
                ));
            }
            max_items("spec.amiSelectorTerms", terms.len(), 30, e);
            for (i, t) in terms.iter().enumerate() {
                let p = format!("spec.amiSelectorTerms[{i}]");
                if t.tags.is_none() && t.id.is_none() && t.name.is_none() {
                    e.push(FieldError::new(
                        &p,
                        "expected at least one, got none, ['tags', 'id', 'name']",
                    ));
                }
                if let Some(id) = &t.id {
                    prefixed_id(&format!("{p}.id"), id, "ami-", e);
                }
                if let Some(tags) = &t.tags {
                    term_tags(&format!("{p}.tags"), tags, e);
                }
            }
            // CEL `!self.all(x, has(x.id) && (...))`: only when every term combines them.
            if !terms.is_empty()
                && terms.iter().all(|t| {
                    t.id.is_some() && (t.tags.is_some() || t.name.is_some() || t.owner.is_some())
                })
            {
                e.push(FieldError::new(
                    "spec.amiSelectorTerms",
                    "'id' is mutually exclusive, cannot be set with a combination of other fields in amiSelectorTerms",
                ));
            }
            role_or_profile(s.role.as_deref(), s.instance_profile.as_deref(), e);
            if let Some(tags) = &s.tags {
                node_class_tags(tags, false, e);
            }
            if let Some(b) = &s.block_device_mappings {
                block_device_mappings(b, false, e);
            }
            if let Some(p) = &s.instance_store_policy {
                one_of("spec.instanceStorePolicy", p, &["RAID0"], e);
            }
            if let Some(m) = &s.metadata_options {
                metadata_options(m, e);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Shared rules
// ---------------------------------------------------------------------------------------------

fn validate_meta(meta: &ObjectMeta, e: &mut Vec<FieldError>) {
    meta.validate(e);
}

fn max_items(path: &str, n: usize, max: usize, e: &mut Vec<FieldError>) {
    if n > max {
        e.push(FieldError::new(
            path,
            format!("must have at most {max} items, got {n}"),
        ));
    }
}

fn one_of(path: &str, v: &str, allowed: &[&str], e: &mut Vec<FieldError>) {
    if !allowed.contains(&v) {
        e.push(FieldError::new(
            path,
            format!("unsupported value {v:?}: supported values are {allowed:?}"),
        ));
    }
}

fn range(path: &str, v: Option<i64>, lo: i64, hi: i64, e: &mut Vec<FieldError>) {
    if let Some(v) = v
        && !(lo..=hi).contains(&v)
    {
        e.push(FieldError::new(
            path,
            format!("{v} is out of range; must be between {lo} and {hi}"),
        ));
    }
}

fn is_lower_alnum(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// The CRD's unanchored patterns (`ami-[0-9a-z]+`): the prefix followed by at least one
/// lower-case letter or digit somewhere in the value.
fn prefixed_id(path: &str, id: &str, prefix: &str, e: &mut Vec<FieldError>) {
    let ok = id.match_indices(prefix).any(|(i, _)| {
        id[i + prefix.len()..]
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    if !ok {
        e.push(FieldError::new(
            path,
            format!("{id:?} is not an id of the form {prefix}<id>"),
        ));
    }
}

fn term_tags(path: &str, tags: &Tags, e: &mut Vec<FieldError>) {
    if tags.len() > 20 {
        e.push(FieldError::new(
            path,
            format!("must have at most 20 tags, got {}", tags.len()),
        ));
    }
    if tags.iter().any(|(k, v)| k.is_empty() || v.is_empty()) {
        e.push(FieldError::new(
            path,
            "empty tag keys or values aren't supported",
        ));
    }
}

fn subnet_terms(terms: &[SubnetSelectorTerm], e: &mut Vec<FieldError>) {
    let base = "spec.subnetSelectorTerms";
    if terms.is_empty() {
        e.push(FieldError::new(base, "subnetSelectorTerms cannot be empty"));
    }
    max_items(base, terms.len(), 30, e);
    for (i, t) in terms.iter().enumerate() {
        let p = format!("{base}[{i}]");
        if t.tags.is_none() && t.id.is_none() {
            e.push(FieldError::new(
                &p,
                "expected at least one, got none, ['tags', 'id']",
            ));
        }
        if let Some(id) = &t.id {
            prefixed_id(&format!("{p}.id"), id, "subnet-", e);
        }
        if let Some(tags) = &t.tags {
            term_tags(&format!("{p}.tags"), tags, e);
        }
    }
    if !terms.is_empty() && terms.iter().all(|t| t.id.is_some() && t.tags.is_some()) {
        e.push(FieldError::new(
            base,
            "'id' is mutually exclusive, cannot be set with a combination of other fields in a subnet selector term",
        ));
    }
}

fn security_group_terms(terms: &[SecurityGroupSelectorTerm], e: &mut Vec<FieldError>) {
    let base = "spec.securityGroupSelectorTerms";
    if terms.is_empty() {
        e.push(FieldError::new(
            base,
            "securityGroupSelectorTerms cannot be empty",
        ));
    }
    max_items(base, terms.len(), 30, e);
    for (i, t) in terms.iter().enumerate() {
        let p = format!("{base}[{i}]");
        if t.tags.is_none() && t.id.is_none() && t.name.is_none() {
            e.push(FieldError::new(
                &p,
                "expected at least one, got none, ['tags', 'id', 'name']",
            ));
        }
        if let Some(id) = &t.id {
            prefixed_id(&format!("{p}.id"), id, "sg-", e);
        }
        if let Some(tags) = &t.tags {
            term_tags(&format!("{p}.tags"), tags, e);
        }
    }
    if !terms.is_empty()
        && terms
            .iter()
            .all(|t| t.id.is_some() && (t.tags.is_some() || t.name.is_some()))
    {
        e.push(FieldError::new(
            base,
            "'id' is mutually exclusive, cannot be set with a combination of other fields in a security group selector term",
        ));
    }
    if !terms.is_empty()
        && terms
            .iter()
            .all(|t| t.name.is_some() && (t.tags.is_some() || t.id.is_some()))
    {
        e.push(FieldError::new(
            base,
            "'name' is mutually exclusive, cannot be set with a combination of other fields in a security group selector term",
        ));
    }
}

fn capacity_reservation_terms(terms: &[CapacityReservationSelectorTerm], e: &mut Vec<FieldError>) {
    let base = "spec.capacityReservationSelectorTerms";
    max_items(base, terms.len(), 30, e);
    for (i, t) in terms.iter().enumerate() {
        let p = format!("{base}[{i}]");
        if t.tags.is_none() && t.id.is_none() && t.instance_match_criteria.is_none() {
            e.push(FieldError::new(
                &p,
                "expected at least one, got none, ['tags', 'id', 'instanceMatchCriteria']",
            ));
        }
        if let Some(id) = &t.id
            && !(id.starts_with("cr-") && is_lower_alnum(&id[3..]))
        {
            e.push(FieldError::new(
                format!("{p}.id"),
                format!("{id:?} does not match ^cr-[0-9a-z]+$"),
            ));
        }
        if let Some(o) = &t.owner_id
            && !(o.len() == 12 && o.bytes().all(|b| b.is_ascii_digit()))
        {
            e.push(FieldError::new(
                format!("{p}.ownerID"),
                format!("{o:?} is not a 12-digit AWS account id"),
            ));
        }
        if let Some(m) = &t.instance_match_criteria {
            one_of(
                &format!("{p}.instanceMatchCriteria"),
                m,
                &["open", "targeted"],
                e,
            );
        }
        if let Some(tags) = &t.tags {
            term_tags(&format!("{p}.tags"), tags, e);
        }
    }
    if !terms.is_empty()
        && terms.iter().all(|t| {
            t.id.is_some()
                && (t.tags.is_some() || t.owner_id.is_some() || t.instance_match_criteria.is_some())
        })
    {
        e.push(FieldError::new(
            base,
            "'id' is mutually exclusive, cannot be set along with other fields in a capacity reservation selector term",
        ));
    }
}

fn alias(path: &str, a: &str, e: &mut Vec<FieldError>) {
    if a.len() > 30 {
        e.push(FieldError::new(
            path,
            format!("may not be longer than 30 characters, got {}", a.len()),
        ));
    }
    let Some((family, version)) = a.split_once('@') else {
        e.push(FieldError::new(
            path,
            "'alias' is improperly formatted, must match the format 'family@version'",
        ));
        return;
    };
    if family.is_empty() || !family.bytes().all(|b| b.is_ascii_alphanumeric()) || version.is_empty()
    {
        e.push(FieldError::new(
            path,
            "'alias' is improperly formatted, must match the format 'family@version'",
        ));
        return;
    }
    if !ALIAS_FAMILIES.iter().any(|(f, _)| *f == family) {
        e.push(FieldError::new(
            path,
            "family is not supported, must be one of the following: 'al2', 'al2023', 'bottlerocket', 'windows2019', 'windows2022', 'windows2025'",
        ));
    } else if family.starts_with("windows") && version != "latest" {
        e.push(FieldError::new(
            path,
            "windows families may only specify version 'latest'",
        ));
    }
}

fn role_or_profile(role: Option<&str>, profile: Option<&str>, e: &mut Vec<FieldError>) {
    match (role, profile) {
        (Some(_), Some(_)) | (None, None) => e.push(FieldError::new(
            "spec",
            "must specify exactly one of ['role', 'instanceProfile']",
        )),
        _ => {}
    }
    if role == Some("") {
        e.push(FieldError::new("spec.role", "role cannot be empty"));
    }
    if profile == Some("") {
        e.push(FieldError::new(
            "spec.instanceProfile",
            "instanceProfile cannot be empty",
        ));
    }
}

fn node_class_tags(tags: &Tags, v1: bool, e: &mut Vec<FieldError>) {
    for k in tags.keys() {
        let p = format!("spec.tags[{k}]");
        if k.is_empty() {
            e.push(FieldError::new(p, "empty tag keys aren't supported"));
            continue;
        }
        let restricted = if k.starts_with("kubernetes.io/cluster") {
            Some("kubernetes.io/cluster/")
        } else {
            [
                "karpenter.sh/nodepool",
                "karpenter.sh/nodeclaim",
                "karpenter.k8s.aws/ec2nodeclass",
            ]
            .into_iter()
            .chain(if v1 {
                Some("eks:eks-cluster-name")
            } else {
                Some("karpenter.sh/managed-by")
            })
            .find(|r| k == r)
        };
        if let Some(r) = restricted {
            e.push(FieldError::new(
                p,
                format!("tag contains a restricted tag matching {r}"),
            ));
        }
    }
}

/// `20Gi`, `100G`, `1Ti`, `2T` within EBS's limits (the CRD's pattern).
fn volume_size_ok(s: &str) -> bool {
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => return false,
    };
    if num.is_empty() || num.starts_with('0') {
        return false;
    }
    let Ok(n) = num.parse::<u64>() else {
        return false;
    };
    match unit {
        "Gi" => n <= 59_000,
        "G" => n <= 64_000,
        "Ti" => n <= 58,
        "T" => n <= 64,
        _ => false,
    }
}

fn block_device_mappings(b: &[BlockDeviceMapping], v1: bool, e: &mut Vec<FieldError>) {
    let base = "spec.blockDeviceMappings";
    max_items(base, b.len(), 50, e);
    if b.iter().filter(|m| m.root_volume == Some(true)).count() > 1 {
        e.push(FieldError::new(
            base,
            "must have only one blockDeviceMappings with rootVolume",
        ));
    }
    for (i, m) in b.iter().enumerate() {
        let Some(ebs) = &m.ebs else { continue };
        let p = format!("{base}[{i}].ebs");
        if ebs.snapshot_id.is_none() && ebs.volume_size.is_none() {
            e.push(FieldError::new(
                &p,
                "snapshotID or volumeSize must be defined",
            ));
        }
        match &ebs.volume_size {
            Some(StringOrNumber::String(s)) if !volume_size_ok(s) => e.push(FieldError::new(
                format!("{p}.volumeSize"),
                format!("{s:?} is not a volume size: use e.g. 20Gi, 100G or 1Ti (at most 64T)"),
            )),
            Some(StringOrNumber::Number(n)) => e.push(FieldError::new(
                format!("{p}.volumeSize"),
                format!("expected a string such as \"{n}Gi\", got the number {n}"),
            )),
            _ => {}
        }
        if let Some(t) = &ebs.volume_type {
            one_of(
                &format!("{p}.volumeType"),
                t,
                &["standard", "io1", "io2", "gp2", "sc1", "st1", "gp3"],
                e,
            );
        }
        if let Some(r) = ebs.volume_initialization_rate {
            if !v1 {
                e.push(FieldError::new(
                    format!("{p}.volumeInitializationRate"),
                    "unknown field in karpenter.k8s.aws/v1beta1 (added in v1)",
                ));
            }
            range(
                &format!("{p}.volumeInitializationRate"),
                Some(r),
                100,
                300,
                e,
            );
            if ebs.snapshot_id.as_deref().is_none_or(str::is_empty) {
                e.push(FieldError::new(
                    &p,
                    "snapshotID must be set when volumeInitializationRate is set",
                ));
            }
        }
    }
}

fn metadata_options(m: &MetadataOptions, e: &mut Vec<FieldError>) {
    let p = "spec.metadataOptions";
    let ed = &["enabled", "disabled"];
    if let Some(v) = &m.http_endpoint {
        one_of(&format!("{p}.httpEndpoint"), v, ed, e);
    }
    if let Some(v) = &m.http_protocol_ipv6 {
        one_of(&format!("{p}.httpProtocolIPv6"), v, ed, e);
    }
    if let Some(v) = &m.http_tokens {
        one_of(&format!("{p}.httpTokens"), v, &["required", "optional"], e);
    }
    range(
        &format!("{p}.httpPutResponseHopLimit"),
        m.http_put_response_hop_limit,
        1,
        64,
        e,
    );
}

fn network_interfaces(nis: &[NetworkInterface], e: &mut Vec<FieldError>) {
    let base = "spec.networkInterfaces";
    max_items(base, nis.len(), 150, e);
    for (i, n) in nis.iter().enumerate() {
        let p = format!("{base}[{i}]");
        one_of(
            &format!("{p}.interfaceType"),
            &n.interface_type,
            &["interface", "efa-only"],
            e,
        );
        if n.device_index < 0 {
            e.push(FieldError::new(
                format!("{p}.deviceIndex"),
                "must be 0 or more",
            ));
        }
        if n.network_card_index < 0 {
            e.push(FieldError::new(
                format!("{p}.networkCardIndex"),
                "must be 0 or more",
            ));
        }
    }
    if !nis.is_empty()
        && !nis.iter().any(|n| {
            n.device_index == 0 && n.network_card_index == 0 && n.interface_type == "interface"
        })
    {
        e.push(FieldError::new(
            base,
            "networkInterfaces must include a primary interface with interfaceType='interface'",
        ));
    }
    let dup = nis.iter().any(|x| {
        nis.iter()
            .filter(|y| {
                y.network_card_index == x.network_card_index && y.device_index == x.device_index
            })
            .count()
            != 1
            || (x.interface_type == "efa-only"
                && nis
                    .iter()
                    .filter(|y| {
                        y.network_card_index == x.network_card_index
                            && y.interface_type == "efa-only"
                    })
                    .count()
                    != 1)
    });
    if dup {
        e.push(FieldError::new(
            base,
            "networkInterfaces must not have duplicate networkCardIndex and deviceIndex pairs, and can have at most one efa device per network card",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> Vec<FieldError> {
        let v: serde_json::Value = serde_yaml_ng::from_str(yaml).unwrap();
        EC2NodeClassDocument(v).validate()
    }

    const V1: &str = "apiVersion: karpenter.k8s.aws/v1\nkind: EC2NodeClass\nmetadata: {name: default}\nspec:\n  role: KarpenterNodeRole-c\n  amiSelectorTerms: [{alias: al2023@latest}]\n  subnetSelectorTerms: [{tags: {karpenter.sh/discovery: c}}]\n  securityGroupSelectorTerms: [{tags: {karpenter.sh/discovery: c}}]\n";

    #[test]
    fn v1_minimal_is_valid() {
        assert_eq!(check(V1), vec![]);
    }

    #[test]
    fn v1_rules_name_their_field() {
        let both = V1.replace("  role:", "  instanceProfile: p\n  role:");
        assert_eq!(check(&both)[0].path, "spec");
        let fam = format!("{V1}  amiFamily: Bottlerocket\n");
        let e = check(&fam);
        assert_eq!(e[0].path, "spec.amiFamily", "{e:?}");
        let no_alias = V1.replace("{alias: al2023@latest}", "{id: ami-123}");
        assert_eq!(check(&no_alias)[0].path, "spec.amiFamily");
        let bad_alias = V1.replace("al2023@latest", "ubuntu@latest");
        assert_eq!(check(&bad_alias)[0].path, "spec.amiSelectorTerms[0].alias");
        let tag = format!("{V1}  tags: {{kubernetes.io/cluster/x: owned}}\n");
        assert_eq!(check(&tag)[0].path, "spec.tags[kubernetes.io/cluster/x]");
        let unknown = format!("{V1}  amiSelector: {{}}\n");
        assert_eq!(check(&unknown)[0].path, "spec.amiSelector");
    }

    #[test]
    fn v1beta1_has_its_own_rules() {
        let v = "apiVersion: karpenter.k8s.aws/v1beta1\nkind: EC2NodeClass\nmetadata: {name: default}\nspec:\n  amiFamily: AL2\n  role: r\n  subnetSelectorTerms: [{tags: {a: b}}]\n  securityGroupSelectorTerms: [{tags: {a: b}}]\n";
        assert_eq!(check(v), vec![]);
        let alias = format!("{v}  amiSelectorTerms: [{{alias: al2023@latest}}]\n");
        assert_eq!(check(&alias)[0].path, "spec.amiSelectorTerms[0].alias");
        let custom = v.replace("AL2", "Custom");
        assert_eq!(check(&custom)[0].path, "spec.amiSelectorTerms");
        let no_family = v.replace("  amiFamily: AL2\n", "");
        assert_eq!(check(&no_family)[0].path, "spec.amiFamily");
    }
}
