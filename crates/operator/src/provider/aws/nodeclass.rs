//! `EC2NodeClass` (karpenter.k8s.aws/v1): the subset kedge reads, its validation (with
//! field-path errors, like Karpenter's CEL rules), its resolution against EC2 (subnets,
//! security groups, AMIs) and the status the provider launches from.
//!
//! As in Karpenter, launches read the *status* (resolved IDs), never the selectors: the
//! NodeClass reconciler ([`reconcile_nodeclass`]) resolves the selectors and writes
//! `status.subnets`, `status.securityGroups`, `status.amis`, `status.instanceProfile` and the
//! conditions (`SubnetsReady`, `SecurityGroupsReady`, `AMIsReady`, `InstanceProfileReady`,
//! `ValidationSucceeded`, and `Ready`, their conjunction).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ec2::{
    DescribeImagesResponse, DescribeSecurityGroupsResponse, DescribeSubnetsResponse, Ec2Client,
    Ec2Error, Filter, Params,
};
use crate::crd::{self, Condition};

/// Tag keys a NodeClass may not set (Karpenter's restricted tags: kedge sets them).
pub const RESTRICTED_TAG_PREFIXES: &[&str] = &[
    "kubernetes.io/cluster/",
    "karpenter.sh/nodepool",
    "karpenter.sh/nodeclaim",
    "karpenter.k8s.aws/ec2nodeclass",
    "eks:eks-cluster-name",
];

/// AMI alias families kedge resolves (see [`alias_name_pattern`]).
pub const SUPPORTED_ALIAS_FAMILIES: &[&str] = &["al2023"];
const KNOWN_ALIAS_FAMILIES: &[&str] = &[
    "al2023",
    "al2",
    "bottlerocket",
    "windows2019",
    "windows2022",
];

/// A subnet or security-group selector term: by tags, or by ID (or name, for security groups).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelectorTerm {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AmiSelectorTerm {
    /// `family@version`, e.g. `al2023@latest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockDeviceMapping {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    #[serde(default)]
    pub root_volume: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ebs: Option<BlockDevice>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockDevice {
    /// A Kubernetes quantity (`20Gi`); EC2 takes whole GiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_on_termination: Option<bool>,
    #[serde(default, rename = "kmsKeyID", skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    #[serde(
        default,
        rename = "snapshotID",
        skip_serializing_if = "Option::is_none"
    )]
    pub snapshot_id: Option<String>,
}

/// The EC2NodeClass spec fields kedge uses. Other upstream fields (`kubelet`,
/// `metadataOptions`, `detailedMonitoring`, `associatePublicIPAddress`, …) are accepted and
/// ignored, as a structural CRD would keep them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EC2NodeClassSpec {
    #[serde(default)]
    pub subnet_selector_terms: Vec<SelectorTerm>,
    #[serde(default)]
    pub security_group_selector_terms: Vec<SelectorTerm>,
    #[serde(default)]
    pub ami_selector_terms: Vec<AmiSelectorTerm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ami_family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_profile: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub block_device_mappings: Vec<BlockDeviceMapping>,
}

/// Parse and validate a spec; every problem is reported as `spec.<path>: <message>`.
pub fn parse_spec(spec: &Value) -> Result<EC2NodeClassSpec, Vec<String>> {
    let s: EC2NodeClassSpec = serde_path_to_error::deserialize(spec).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." {
            "spec".to_string()
        } else {
            format!("spec.{path}")
        };
        vec![format!("{path}: {}", e.inner())]
    })?;
    let mut errs = Vec::new();
    validate_selector_terms(
        "spec.subnetSelectorTerms",
        &s.subnet_selector_terms,
        false,
        &mut errs,
    );
    validate_selector_terms(
        "spec.securityGroupSelectorTerms",
        &s.security_group_selector_terms,
        true,
        &mut errs,
    );
    validate_ami_terms(&s.ami_selector_terms, &mut errs);
    match (&s.role, &s.instance_profile) {
        (Some(_), Some(_)) => errs.push(
            "spec: must specify exactly one of ['role', 'instanceProfile'], found both".into(),
        ),
        (None, None) => {
            errs.push("spec: must specify exactly one of ['role', 'instanceProfile']".into())
        }
        (Some(r), _) if r.is_empty() => errs.push("spec.role: must not be empty".into()),
        (_, Some(p)) if p.is_empty() => errs.push("spec.instanceProfile: must not be empty".into()),
        _ => {}
    }
    for k in s.tags.keys() {
        if RESTRICTED_TAG_PREFIXES.iter().any(|p| k.starts_with(p)) {
            errs.push(format!(
                "spec.tags[{k}]: tag key is restricted (kedge sets {})",
                RESTRICTED_TAG_PREFIXES.join(", ")
            ));
        }
    }
    let roots = s
        .block_device_mappings
        .iter()
        .filter(|b| b.root_volume)
        .count();
    if roots > 1 {
        errs.push("spec.blockDeviceMappings: must have at most one rootVolume".into());
    }
    for (i, b) in s.block_device_mappings.iter().enumerate() {
        if let Some(size) = b.ebs.as_ref().and_then(|e| e.volume_size.as_deref())
            && volume_size_gib(size).is_none()
        {
            errs.push(format!(
                "spec.blockDeviceMappings[{i}].ebs.volumeSize: `{size}` is not a positive quantity (e.g. 20Gi)"
            ));
        }
        if b.device_name.is_none() {
            errs.push(format!(
                "spec.blockDeviceMappings[{i}].deviceName: required"
            ));
        }
    }
    if errs.is_empty() { Ok(s) } else { Err(errs) }
}

fn validate_selector_terms(
    path: &str,
    terms: &[SelectorTerm],
    names: bool,
    errs: &mut Vec<String>,
) {
    if terms.is_empty() {
        errs.push(format!("{path}: must have at least one term"));
    }
    if terms.len() > 30 {
        errs.push(format!("{path}: at most 30 terms, found {}", terms.len()));
    }
    let allowed = if names {
        "'tags', 'id', 'name'"
    } else {
        "'tags', 'id'"
    };
    for (i, t) in terms.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if !names && t.name.is_some() {
            errs.push(format!(
                "{p}.name: not a field of this term; expected one of [{allowed}]"
            ));
        }
        if t.tags.is_empty() && t.id.is_none() && t.name.is_none() {
            errs.push(format!("{p}: expected at least one of [{allowed}]"));
        }
        if t.id.is_some() && (!t.tags.is_empty() || t.name.is_some()) {
            errs.push(format!(
                "{p}: 'id' is mutually exclusive with the other fields"
            ));
        }
        for (k, v) in &t.tags {
            if k.is_empty() || v.is_empty() {
                errs.push(format!(
                    "{p}.tags: empty tag keys or values aren't supported"
                ));
            }
        }
    }
}

fn validate_ami_terms(terms: &[AmiSelectorTerm], errs: &mut Vec<String>) {
    let path = "spec.amiSelectorTerms";
    if terms.is_empty() {
        errs.push(format!("{path}: must have at least one term"));
    }
    let has_alias = terms.iter().any(|t| t.alias.is_some());
    if has_alias && terms.len() > 1 {
        errs.push(format!(
            "{path}: 'alias' is mutually exclusive, cannot be set with a combination of other amiSelectorTerms"
        ));
    }
    for (i, t) in terms.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if let Some(a) = &t.alias {
            if !t.tags.is_empty() || t.id.is_some() || t.name.is_some() || t.owner.is_some() {
                errs.push(format!(
                    "{p}: 'alias' is mutually exclusive with the other fields"
                ));
            }
            match a.split_once('@') {
                Some((family, version)) if !version.is_empty() => {
                    if !KNOWN_ALIAS_FAMILIES.contains(&family) {
                        errs.push(format!(
                            "{p}.alias: family `{family}` is not one of {KNOWN_ALIAS_FAMILIES:?}"
                        ));
                    } else if !SUPPORTED_ALIAS_FAMILIES.contains(&family) {
                        errs.push(format!(
                            "{p}.alias: kedge resolves only {SUPPORTED_ALIAS_FAMILIES:?} aliases; select `{family}` images with an id, name or tags term"
                        ));
                    }
                }
                _ => errs.push(format!(
                    "{p}.alias: `{a}` is not of the form family@version (e.g. al2023@latest)"
                )),
            }
        } else if t.tags.is_empty() && t.id.is_none() && t.name.is_none() {
            errs.push(format!(
                "{p}: expected at least one of ['alias', 'tags', 'id', 'name']"
            ));
        }
        if t.id.is_some() && (!t.tags.is_empty() || t.name.is_some() || t.owner.is_some()) {
            errs.push(format!(
                "{p}: 'id' is mutually exclusive with the other fields"
            ));
        }
    }
}

/// `20Gi` → 20 (rounded up to a whole GiB, as EC2 takes GiB).
pub fn volume_size_gib(q: &str) -> Option<i64> {
    let bytes = q.parse::<model::quantity::Quantity>().ok()?.units_ceil();
    if bytes <= 0 {
        return None;
    }
    let gib = 1i64 << 30;
    Some((bytes + gib - 1) / gib)
}

// ----- status -----

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetStatus {
    pub id: String,
    pub zone: String,
    #[serde(default, rename = "zoneID", skip_serializing_if = "Option::is_none")]
    pub zone_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroupStatus {
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AmiStatus {
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `kubernetes.io/arch In [amd64]` (Karpenter's shape).
    #[serde(default)]
    pub requirements: Vec<model::kube::NodeSelectorRequirement>,
}

impl AmiStatus {
    /// The Kubernetes architecture this image runs (`amd64`/`arm64`).
    pub fn arch(&self) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.key == model::karpenter::LABEL_ARCH)
            .and_then(|r| r.values.first())
            .map(String::as_str)
    }
}

/// `status` of an EC2NodeClass as Karpenter writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EC2NodeClassStatus {
    #[serde(default)]
    pub subnets: Vec<SubnetStatus>,
    #[serde(default)]
    pub security_groups: Vec<SecurityGroupStatus>,
    #[serde(default)]
    pub amis: Vec<AmiStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_profile: Option<String>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

impl EC2NodeClassStatus {
    pub fn is_ready(&self) -> bool {
        self.condition("Ready").is_some_and(|c| c.status == "True")
    }
    pub fn condition(&self, t: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == t)
    }
    /// Why the NodeClass is not ready (the Ready condition's message).
    pub fn not_ready_reason(&self) -> String {
        match self.condition("Ready") {
            Some(c) if !c.message.is_empty() => c.message.clone(),
            Some(c) => c.reason.clone(),
            None => "status not resolved yet".into(),
        }
    }

    /// The status of a NodeClass object (missing or unreadable → default, not ready).
    pub fn of(nc: &crd::EC2NodeClass) -> EC2NodeClassStatus {
        nc.status
            .as_ref()
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }
}

fn tag_filters(tags: &BTreeMap<String, String>) -> Vec<Filter> {
    tags.iter()
        .map(|(k, v)| {
            if v == "*" {
                Filter::new("tag-key", &[k])
            } else {
                Filter::new(format!("tag:{k}"), &[v])
            }
        })
        .collect()
}

/// Knobs of AMI resolution.
#[derive(Debug, Clone, Default)]
pub struct AmiSettings {
    /// The cluster's Kubernetes minor version (`1.31`) for alias resolution; `None` matches
    /// any version (the newest image wins).
    pub kubernetes_version: Option<String>,
}

/// The EKS-optimized image name pattern an alias resolves to. Karpenter reads the SSM
/// parameter `/aws/service/eks/optimized-ami/<k8s>/amazon-linux-2023/<arch>/standard/recommended/image_id`;
/// kedge has no SSM client and instead asks DescribeImages for Amazon-owned images named
/// `amazon-eks-node-al2023-<arch>-standard-<k8s>-<version>` — the images those parameters
/// point to — and takes the newest (`@latest`) or the one with that version (`@v20240807`).
pub fn alias_name_pattern(family: &str, arch: &str, k8s: Option<&str>, version: &str) -> String {
    let v = if version == "latest" { "*" } else { version };
    format!(
        "amazon-eks-node-{family}-{arch}-standard-{}-{v}",
        k8s.unwrap_or("*")
    )
}

fn ec2_arch_to_kube(a: &str) -> Option<&'static str> {
    match a {
        "x86_64" => Some("amd64"),
        "arm64" => Some("arm64"),
        _ => None,
    }
}

/// Resolve a validated spec against EC2: one Describe call per selector term (terms are
/// ORed, a term's fields ANDed, as in Karpenter). Subnets are ordered by free IP addresses
/// (most first, the one a launch uses per zone); AMIs keep the newest image per architecture.
pub async fn resolve(
    ec2: &Ec2Client,
    spec: &EC2NodeClassSpec,
    ami: &AmiSettings,
) -> Result<EC2NodeClassStatus, Ec2Error> {
    // Subnets.
    let mut subnets: BTreeMap<String, (i64, SubnetStatus)> = BTreeMap::new();
    for t in &spec.subnet_selector_terms {
        let mut filters = tag_filters(&t.tags);
        if let Some(id) = &t.id {
            filters.push(Filter::new("subnet-id", &[id]));
        }
        let mut p = Params::new();
        p.filters(&filters);
        let r: DescribeSubnetsResponse = ec2.call_parse("DescribeSubnets", &p).await?;
        for s in r.subnet_set.item {
            subnets.insert(
                s.subnet_id.clone(),
                (
                    s.available_ip_address_count.unwrap_or(0),
                    SubnetStatus {
                        id: s.subnet_id,
                        zone: s.availability_zone,
                        zone_id: s.availability_zone_id,
                    },
                ),
            );
        }
    }
    let mut subnets: Vec<(i64, SubnetStatus)> = subnets.into_values().collect();
    subnets.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.id.cmp(&b.1.id)));

    // Security groups.
    let mut groups: BTreeMap<String, SecurityGroupStatus> = BTreeMap::new();
    for t in &spec.security_group_selector_terms {
        let mut filters = tag_filters(&t.tags);
        if let Some(id) = &t.id {
            filters.push(Filter::new("group-id", &[id]));
        }
        if let Some(n) = &t.name {
            filters.push(Filter::new("group-name", &[n]));
        }
        let mut p = Params::new();
        p.filters(&filters);
        let r: DescribeSecurityGroupsResponse =
            ec2.call_parse("DescribeSecurityGroups", &p).await?;
        for g in r.security_group_info.item {
            groups.insert(
                g.group_id.clone(),
                SecurityGroupStatus {
                    id: g.group_id,
                    name: g.group_name,
                },
            );
        }
    }

    // AMIs: newest per architecture.
    let mut newest: BTreeMap<&'static str, super::ec2::Image> = BTreeMap::new();
    let mut consider = |img: super::ec2::Image| {
        if let Some(arch) = ec2_arch_to_kube(&img.architecture) {
            let replace = newest
                .get(arch)
                .is_none_or(|cur| img.creation_date > cur.creation_date);
            if replace {
                newest.insert(arch, img);
            }
        }
    };
    for t in &spec.ami_selector_terms {
        if let Some(alias) = &t.alias {
            let (family, version) = alias.split_once('@').unwrap_or((alias, "latest"));
            for arch in ["x86_64", "arm64"] {
                let mut p = Params::new();
                p.set("Owner.1", "amazon");
                p.filters(&[
                    Filter::new(
                        "name",
                        &[&alias_name_pattern(
                            family,
                            arch,
                            ami.kubernetes_version.as_deref(),
                            version,
                        )],
                    ),
                    Filter::new("state", &["available"]),
                ]);
                let r: DescribeImagesResponse = ec2.call_parse("DescribeImages", &p).await?;
                r.images_set.item.into_iter().for_each(&mut consider);
            }
            continue;
        }
        let mut filters = tag_filters(&t.tags);
        if let Some(id) = &t.id {
            filters.push(Filter::new("image-id", &[id]));
        }
        if let Some(n) = &t.name {
            filters.push(Filter::new("name", &[n]));
        }
        filters.push(Filter::new("state", &["available"]));
        let mut p = Params::new();
        if let Some(o) = &t.owner {
            p.set("Owner.1", o.clone());
        }
        p.filters(&filters);
        let r: DescribeImagesResponse = ec2.call_parse("DescribeImages", &p).await?;
        r.images_set.item.into_iter().for_each(&mut consider);
    }
    let amis = newest
        .into_iter()
        .map(|(arch, img)| AmiStatus {
            id: img.image_id,
            name: img.name,
            requirements: vec![model::kube::NodeSelectorRequirement::new(
                model::karpenter::LABEL_ARCH,
                model::kube::Operator::In,
                &[arch],
            )],
        })
        .collect();

    // kedge does not call IAM: with `role`, the instance profile of the same name is used
    // (the one the IAM console creates with an EC2 role); see the module docs of `aws`.
    let instance_profile = spec.instance_profile.clone().or_else(|| spec.role.clone());

    let mut st = EC2NodeClassStatus {
        subnets: subnets.into_iter().map(|(_, s)| s).collect(),
        security_groups: groups.into_values().collect(),
        amis,
        instance_profile,
        conditions: Vec::new(),
    };
    st.conditions = conditions_for(&st, None);
    Ok(st)
}

fn cond(type_: &str, ok: bool, reason: &str, message: String) -> Condition {
    Condition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: if ok { type_.to_string() } else { reason.into() },
        message: if ok { String::new() } else { message },
        last_transition_time: None,
    }
}

/// Karpenter's NodeClass conditions for a resolved status (or a validation failure).
pub fn conditions_for(st: &EC2NodeClassStatus, invalid: Option<&str>) -> Vec<Condition> {
    let mut c = vec![
        cond(
            "ValidationSucceeded",
            invalid.is_none(),
            "ValidationFailed",
            invalid.unwrap_or_default().to_string(),
        ),
        cond(
            "SubnetsReady",
            !st.subnets.is_empty(),
            "SubnetsNotFound",
            "SubnetSelector did not match any Subnets".into(),
        ),
        cond(
            "SecurityGroupsReady",
            !st.security_groups.is_empty(),
            "SecurityGroupsNotFound",
            "SecurityGroupSelector did not match any SecurityGroups".into(),
        ),
        cond(
            "AMIsReady",
            !st.amis.is_empty(),
            "AMINotFound",
            "AMISelector did not match any AMIs".into(),
        ),
        cond(
            "InstanceProfileReady",
            st.instance_profile.is_some(),
            "InstanceProfileNotFound",
            "neither role nor instanceProfile is set".into(),
        ),
    ];
    let failing: Vec<String> = c
        .iter()
        .filter(|x| x.status != "True")
        .map(|x| {
            if x.message.is_empty() {
                x.type_.clone()
            } else {
                format!("{}: {}", x.type_, x.message)
            }
        })
        .collect();
    c.push(cond(
        "Ready",
        failing.is_empty(),
        "NotReady",
        failing.join("; "),
    ));
    c
}

/// Reconcile one EC2NodeClass: validate, resolve against EC2, and write the status (server-side
/// apply on the `status` subresource, field manager `field_manager`). Returns the status written.
///
/// An invalid spec is reported in the status (`ValidationSucceeded=False`, `Ready=False`) and
/// is not an error; an EC2 failure is returned (the caller requeues with backoff) and the
/// previous status stays. Karpenter re-resolves every few minutes; so should the caller
/// (e.g. `Action::requeue(5 min)`), and at once when the object changes.
pub async fn reconcile_nodeclass(
    client: &kube::Client,
    ec2: &Ec2Client,
    ami: &AmiSettings,
    nc: &crd::EC2NodeClass,
    field_manager: &str,
    now: clock::Timestamp,
) -> crate::Result<EC2NodeClassStatus> {
    let name = nc
        .metadata
        .name
        .clone()
        .ok_or_else(|| crate::Error::Invalid("EC2NodeClass without metadata.name".into()))?;
    let mut status = match parse_spec(&nc.spec) {
        Ok(spec) => resolve(ec2, &spec, ami)
            .await
            .map_err(|e| crate::Error::Provider(super::provider_error(e)))?,
        Err(errs) => {
            let mut st = EC2NodeClassStatus::default();
            st.conditions = conditions_for(&st, Some(&errs.join("; ")));
            st
        }
    };
    // Keep lastTransitionTime when a condition's status did not change.
    let previous = EC2NodeClassStatus::of(nc);
    let stamp = rfc3339(now);
    for c in &mut status.conditions {
        c.last_transition_time = match previous.condition(&c.type_) {
            Some(p) if p.status == c.status && p.last_transition_time.is_some() => {
                p.last_transition_time.clone()
            }
            _ => Some(stamp.clone()),
        };
    }
    let api: kube::Api<crd::EC2NodeClass> = kube::Api::all(client.clone());
    let patch = serde_json::json!({
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "status": status,
    });
    api.patch_status(
        &name,
        &kube::api::PatchParams::apply(field_manager).force(),
        &kube::api::Patch::Apply(&patch),
    )
    .await
    .map_err(crate::Error::kube(format!(
        "apply status of EC2NodeClass {name}"
    )))?;
    Ok(status)
}

/// How often a Ready NodeClass is re-resolved (subnets fill up, new AMIs are published).
pub const RESOLVE_EVERY: std::time::Duration = std::time::Duration::from_secs(300);
/// Retry delay after an EC2 or API failure.
pub const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

struct ControllerCtx {
    aws: std::sync::Arc<super::Aws>,
    client: kube::Client,
    field_manager: String,
}

/// Run the EC2NodeClass controller (every NodeClass reconciled with
/// [`reconcile_nodeclass`], re-resolved every [`RESOLVE_EVERY`], retried after
/// [`RETRY_AFTER`] on failure) until `shutdown` resolves.
pub async fn run_nodeclass_controller(
    aws: std::sync::Arc<super::Aws>,
    client: kube::Client,
    field_manager: String,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    use futures::StreamExt;
    use kube::runtime::controller::{Action, Controller};
    let api: kube::Api<crd::EC2NodeClass> = kube::Api::all(client.clone());
    let ctx = std::sync::Arc::new(ControllerCtx {
        aws,
        client,
        field_manager,
    });
    async fn reconcile(
        nc: std::sync::Arc<crd::EC2NodeClass>,
        ctx: std::sync::Arc<ControllerCtx>,
    ) -> crate::Result<Action> {
        let st = ctx
            .aws
            .reconcile_nodeclass(&ctx.client, &nc, &ctx.field_manager)
            .await?;
        Ok(if st.is_ready() {
            Action::requeue(RESOLVE_EVERY)
        } else {
            Action::requeue(RETRY_AFTER)
        })
    }
    fn error_policy(
        nc: std::sync::Arc<crd::EC2NodeClass>,
        e: &crate::Error,
        _: std::sync::Arc<ControllerCtx>,
    ) -> Action {
        tracing::warn!(nodeclass = ?nc.metadata.name, error = %e, label = e.metric_label(), "EC2NodeClass reconcile failed");
        Action::requeue(RETRY_AFTER)
    }
    Controller::new(
        api,
        kube::runtime::watcher::Config::default().any_semantic(),
    )
    .graceful_shutdown_on(shutdown)
    .run(reconcile, error_policy, ctx)
    .for_each(|r| async move {
        if let Err(e) = r {
            tracing::debug!(error = %e, "EC2NodeClass controller");
        }
    })
    .await;
}

pub use crate::time::rfc3339;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({
            "role": "KarpenterNodeRole-demo",
            "amiSelectorTerms": [{"alias": "al2023@latest"}],
            "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "demo"}}],
            "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "demo"}}],
            "tags": {"team": "payments"},
            "blockDeviceMappings": [{"deviceName": "/dev/xvda", "rootVolume": true,
                "ebs": {"volumeSize": "50Gi", "volumeType": "gp3", "encrypted": true}}],
            "kubelet": {"maxPods": 110}
        })
    }

    #[test]
    fn a_karpenter_manifest_parses() {
        let s = parse_spec(&valid()).unwrap();
        assert_eq!(s.role.as_deref(), Some("KarpenterNodeRole-demo"));
        assert_eq!(
            s.ami_selector_terms[0].alias.as_deref(),
            Some("al2023@latest")
        );
        assert_eq!(
            volume_size_gib(
                s.block_device_mappings[0]
                    .ebs
                    .as_ref()
                    .unwrap()
                    .volume_size
                    .as_deref()
                    .unwrap()
            ),
            Some(50)
        );
    }

    fn errors_of(mut spec: Value, patch: impl FnOnce(&mut Value)) -> Vec<String> {
        patch(&mut spec);
        parse_spec(&spec).unwrap_err()
    }

    #[test]
    fn type_errors_name_the_field_path() {
        let e = errors_of(valid(), |s| {
            s["subnetSelectorTerms"][0]["tags"] = json!(["not", "a", "map"])
        });
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("spec.subnetSelectorTerms[0].tags: "),
            "{e:?}"
        );
        let e = errors_of(valid(), |s| s["role"] = json!(7));
        assert!(e[0].starts_with("spec.role: "), "{e:?}");
    }

    #[test]
    fn semantic_errors_name_the_field_path() {
        let e = errors_of(valid(), |s| {
            s["subnetSelectorTerms"] = json!([]);
            s["securityGroupSelectorTerms"] = json!([{"id": "sg-1", "tags": {"a": "b"}}]);
            s["amiSelectorTerms"] = json!([{"alias": "al2023"}]);
            s["instanceProfile"] = json!("profile");
            s["tags"] = json!({"kubernetes.io/cluster/demo": "owned"});
        });
        let want = [
            "spec.subnetSelectorTerms: must have at least one term",
            "spec.securityGroupSelectorTerms[0]: 'id' is mutually exclusive with the other fields",
            "spec.amiSelectorTerms[0].alias: `al2023` is not of the form family@version (e.g. al2023@latest)",
            "spec: must specify exactly one of ['role', 'instanceProfile'], found both",
        ];
        for w in want {
            assert!(e.iter().any(|x| x == w), "missing {w:?} in {e:?}");
        }
        assert!(
            e.iter()
                .any(|x| x
                    .starts_with("spec.tags[kubernetes.io/cluster/demo]: tag key is restricted")),
            "{e:?}"
        );
        let e = errors_of(valid(), |s| {
            s["amiSelectorTerms"] = json!([{"alias": "bottlerocket@latest"}, {"id": "ami-1"}])
        });
        assert!(
            e.iter()
                .any(|x| x.contains("'alias' is mutually exclusive")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|x| x.starts_with("spec.amiSelectorTerms[0].alias: kedge resolves only")),
            "{e:?}"
        );
        let e = errors_of(valid(), |s| {
            s["blockDeviceMappings"][0]["ebs"]["volumeSize"] = json!("lots")
        });
        assert_eq!(
            e,
            vec![
                "spec.blockDeviceMappings[0].ebs.volumeSize: `lots` is not a positive quantity (e.g. 20Gi)"
            ]
        );
    }

    #[test]
    fn conditions_name_what_is_missing() {
        let st = EC2NodeClassStatus {
            subnets: vec![SubnetStatus {
                id: "subnet-1".into(),
                zone: "us-east-1a".into(),
                zone_id: None,
            }],
            instance_profile: Some("p".into()),
            ..Default::default()
        };
        let c = conditions_for(&st, None);
        let ready = c.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "False");
        assert_eq!(
            ready.message,
            "SecurityGroupsReady: SecurityGroupSelector did not match any SecurityGroups; AMIsReady: AMISelector did not match any AMIs"
        );
    }

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(
            rfc3339(clock::Timestamp::from_secs(0)),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            rfc3339(clock::Timestamp::from_secs(1_795_900_186)),
            "2026-11-28T21:09:46Z"
        );
    }

    #[tokio::test]
    async fn reconcile_writes_an_invalid_spec_into_the_status() {
        use crate::fixtures::{mock_client, timeout};
        use std::time::Duration;
        let (client, mut server) = mock_client();
        let ec2 = Ec2Client::with_static_keys(
            super::super::ec2::Ec2Config {
                endpoint: "http://127.0.0.1:9".into(),
                region: "us-east-1".into(),
                retry: Default::default(),
            },
            "k",
            "s",
            std::sync::Arc::new(clock::ManualClock::new(clock::Timestamp::from_secs(0))),
        )
        .unwrap();
        let nc = crd::EC2NodeClass {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("default".into()),
                ..Default::default()
            },
            spec: json!({"role": "r"}),
            status: None,
        };
        let ami = AmiSettings::default();
        let run = reconcile_nodeclass(
            &client,
            &ec2,
            &ami,
            &nc,
            "kedge",
            clock::Timestamp::from_secs(1_795_900_186),
        );
        let verify = async {
            let body = server
                .expect(
                    "PATCH",
                    "/apis/karpenter.k8s.aws/v1/ec2nodeclasses/default/status?&force=true&fieldManager=kedge",
                    200,
                    json!({"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass",
                           "metadata": {"name": "default"}, "spec": {"role": "r"}}),
                )
                .await;
            let conds = body["status"]["conditions"].as_array().unwrap().clone();
            let ready = conds.iter().find(|c| c["type"] == "Ready").unwrap();
            assert_eq!(ready["status"], "False");
            assert_eq!(ready["lastTransitionTime"], "2026-11-28T21:09:46Z");
            let v = conds
                .iter()
                .find(|c| c["type"] == "ValidationSucceeded")
                .unwrap();
            assert!(
                v["message"]
                    .as_str()
                    .unwrap()
                    .contains("spec.subnetSelectorTerms: must have at least one term"),
                "{v}"
            );
        };
        let (st, ()) = timeout(Duration::from_secs(5), async { tokio::join!(run, verify) }).await;
        assert!(!st.unwrap().is_ready());
    }
}
