//! The custom resources kedge reconciles, as kube-rs resources.
//!
//! The typed specs live in `model` (shared with `kedge check`, the twin and the simulator).
//! Here each kind is a thin kube [`Resource`](kube::Resource) whose `spec` is kept as raw JSON
//! and parsed into the `model` type by the reconciler: one invalid object then shows up as a
//! clear error in its own status and events instead of breaking the watch of every object of
//! its kind.
//!
//! Groups and versions are upstream's, so existing KEDA and Karpenter manifests apply
//! unchanged: `keda.sh/v1alpha1` (`ScaledObject`, `ScaledJob`, `TriggerAuthentication`,
//! `ClusterTriggerAuthentication`), `karpenter.sh/v1` (`NodePool`, `NodeClaim`) and
//! `karpenter.k8s.aws/v1` (`EC2NodeClass`).

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod schema;

/// Static identity of a custom resource kind.
pub trait Kind {
    const GROUP: &'static str;
    const VERSION: &'static str;
    const KIND: &'static str;
    const PLURAL: &'static str;
    const NAMESPACED: bool;
}

/// Access to a custom resource's raw spec (every kind below).
pub trait RawSpec {
    fn raw_spec(&self) -> Cow<'_, Value>;
}

/// A spec kept as compact JSON text. The ScaledObject cache holds one per object for as long
/// as the object exists; as a `Value` every JSON object in it is a B-tree node of ~600 bytes
/// (6 KB per cached ScaledObject at the benchmark's 1,000, against ~0.5 KB as text).
#[derive(Debug, Clone, PartialEq)]
pub struct JsonText(Box<str>);

impl JsonText {
    /// The JSON as a value (`Null` if the text is not JSON, which deserialization prevents).
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }
    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for JsonText {
    fn default() -> Self {
        JsonText("null".into())
    }
}

impl From<Value> for JsonText {
    fn from(v: Value) -> Self {
        JsonText(v.to_string().into_boxed_str())
    }
}

impl Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(JsonText::from)
    }
}

/// How each spec type gives its JSON.
pub trait SpecJson {
    fn json(&self) -> Cow<'_, Value>;
}

impl SpecJson for Value {
    fn json(&self) -> Cow<'_, Value> {
        Cow::Borrowed(self)
    }
}

impl SpecJson for JsonText {
    fn json(&self) -> Cow<'_, Value> {
        Cow::Owned(self.value())
    }
}

macro_rules! custom_resource {
    ($(#[$doc:meta])* $name:ident, $group:literal, $version:literal, $plural:literal, $scope:ty, $namespaced:literal, $status:ty) => {
        custom_resource!($(#[$doc])* $name, $group, $version, $plural, $scope, $namespaced, $status, Value);
    };
    ($(#[$doc:meta])* $name:ident, $group:literal, $version:literal, $plural:literal, $scope:ty, $namespaced:literal, $status:ty, $spec:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, Deserialize)]
        pub struct $name {
            #[serde(default)]
            pub metadata: ObjectMeta,
            /// Raw spec; parse with the `model` type (see the module docs).
            #[serde(default)]
            pub spec: $spec,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub status: Option<$status>,
        }

        /// Serialized with `apiVersion` and `kind`, so typed creates and applies work.
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(None)?;
                m.serialize_entry("apiVersion", concat!($group, "/", $version))?;
                m.serialize_entry("kind", stringify!($name))?;
                m.serialize_entry("metadata", &self.metadata)?;
                m.serialize_entry("spec", &self.spec)?;
                if let Some(st) = &self.status {
                    m.serialize_entry("status", st)?;
                }
                m.end()
            }
        }

        impl RawSpec for $name {
            fn raw_spec(&self) -> Cow<'_, Value> {
                SpecJson::json(&self.spec)
            }
        }

        impl Kind for $name {
            const GROUP: &'static str = $group;
            const VERSION: &'static str = $version;
            const KIND: &'static str = stringify!($name);
            const PLURAL: &'static str = $plural;
            const NAMESPACED: bool = $namespaced;
        }

        impl kube::Resource for $name {
            type DynamicType = ();
            type Scope = $scope;

            fn kind(_: &()) -> Cow<'_, str> {
                Cow::Borrowed(stringify!($name))
            }
            fn group(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($group)
            }
            fn version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($version)
            }
            fn api_version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed(concat!($group, "/", $version))
            }
            fn plural(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($plural)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

custom_resource!(
    /// `keda.sh/v1alpha1` ScaledObject.
    ScaledObject, "keda.sh", "v1alpha1", "scaledobjects",
    k8s_openapi::NamespaceResourceScope, true, StatusSummary, JsonText
);
custom_resource!(
    /// `keda.sh/v1alpha1` ScaledJob.
    ScaledJob, "keda.sh", "v1alpha1", "scaledjobs",
    k8s_openapi::NamespaceResourceScope, true, Value
);
custom_resource!(
    /// `keda.sh/v1alpha1` TriggerAuthentication.
    TriggerAuthentication, "keda.sh", "v1alpha1", "triggerauthentications",
    k8s_openapi::NamespaceResourceScope, true, Value
);
custom_resource!(
    /// `keda.sh/v1alpha1` ClusterTriggerAuthentication (secrets are read from the operator's
    /// own namespace, as KEDA reads them from its cluster-object namespace).
    ClusterTriggerAuthentication, "keda.sh", "v1alpha1", "clustertriggerauthentications",
    k8s_openapi::ClusterResourceScope, false, Value
);
custom_resource!(
    /// `karpenter.sh/v1` NodePool.
    NodePool, "karpenter.sh", "v1", "nodepools",
    k8s_openapi::ClusterResourceScope, false, NodePoolStatus
);
custom_resource!(
    /// `karpenter.sh/v1` NodeClaim.
    NodeClaim, "karpenter.sh", "v1", "nodeclaims",
    k8s_openapi::ClusterResourceScope, false, model::karpenter::NodeClaimStatus
);
custom_resource!(
    /// `karpenter.k8s.aws/v1` EC2NodeClass (the subset kedge's AWS provider reads).
    EC2NodeClass, "karpenter.k8s.aws", "v1", "ec2nodeclasses",
    k8s_openapi::ClusterResourceScope, false, Value
);

/// A status condition as KEDA and Karpenter write them (metav1.Condition shape).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `"True"`, `"False"` or `"Unknown"`.
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// KEDA's `GroupVersionKindResource` of the scale target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupVersionKindResource {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub resource: String,
}

/// KEDA's ScaledObject status, with the fields kedge writes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaledObjectStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_target_kind: Option<String>,
    #[serde(
        default,
        rename = "scaleTargetGVKR",
        skip_serializing_if = "Option::is_none"
    )]
    pub scale_target_gvkr: Option<GroupVersionKindResource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_replica_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active_time: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_metric_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_replica_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// kedge extension: the replica count of the latest decision and its reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decision: Option<String>,
}

/// A hash of a whole status: what is compared to decide whether to write one.
pub fn status_hash(s: &ScaledObjectStatus) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// kedge's own ScaledObject condition types.
pub const CONDITION_TYPES: [&str; 4] = ["Ready", "Active", "Fallback", "Paused"];

/// Reasons and messages kedge writes in its own conditions: kept as static strings, not a
/// copy per object.
const CONDITION_TEXTS: &[&str] = &[
    "ScaledObjectReady",
    "ScaledObject is defined correctly and is ready for scaling",
    "TriggerError",
    "ScaledObjectCheckFailed",
    "ScalerActive",
    "Scaling is performed because triggers are active",
    "ScalerNotActive",
    "Scaling is not performed because triggers are not active",
    "FallbackExists",
    "At least one trigger is falling back on this scaled object",
    "NoFallbackFound",
    "No fallbacks are active on this scaled object",
    "ScaledObjectPaused",
    "ScaledObject is paused",
    "ScaledObjectUnpaused",
    "ScaledObject is not paused",
];

fn interned(s: &str) -> Cow<'static, str> {
    match CONDITION_TEXTS.iter().find(|t| **t == s) {
        Some(t) => Cow::Borrowed(t),
        None => Cow::Owned(s.to_string()),
    }
}

/// One condition of a [`StatusSummary`].
#[derive(Debug, Clone)]
pub enum Remembered {
    /// One of [`CONDITION_TYPES`] (by index).
    Own {
        kind: u8,
        status: Option<bool>,
        reason: Cow<'static, str>,
        message: Cow<'static, str>,
        since: Option<Box<str>>,
    },
    /// A condition someone else wrote: kept whole.
    Other(Condition),
}

/// A ScaledObject's status as the operator keeps it: in the ScaledObject cache and in each
/// scale loop between polls. What carries from one status to the next (the original replica
/// count, the last active time, the target and the conditions, kedge's own with static
/// reasons and messages) and a hash of the whole status as read; the rest follows from the
/// target and the latest decision. Kept whole, a status cost ~1.3 KB per object, twice.
#[derive(Debug, Clone, Default)]
pub struct StatusSummary {
    /// [`status_hash`] of the status this summarizes.
    pub hash: u64,
    pub original_replica_count: Option<i32>,
    pub last_active_time: Option<Box<str>>,
    pub scale_target_kind: Option<Box<str>>,
    pub scale_target_gvkr: Option<GroupVersionKindResource>,
    pub conditions: Vec<Remembered>,
}

impl StatusSummary {
    pub fn of(s: &ScaledObjectStatus) -> StatusSummary {
        StatusSummary {
            hash: status_hash(s),
            original_replica_count: s.original_replica_count,
            last_active_time: s.last_active_time.as_deref().map(Box::from),
            scale_target_kind: s.scale_target_kind.as_deref().map(Box::from),
            scale_target_gvkr: s.scale_target_gvkr.clone(),
            conditions: s
                .conditions
                .iter()
                .map(
                    |c| match CONDITION_TYPES.iter().position(|t| *t == c.type_) {
                        Some(kind) => Remembered::Own {
                            kind: kind as u8,
                            status: match c.status.as_str() {
                                "True" => Some(true),
                                "False" => Some(false),
                                _ => None,
                            },
                            reason: interned(&c.reason),
                            message: interned(&c.message),
                            since: c.last_transition_time.as_deref().map(Box::from),
                        },
                        None => Remembered::Other(c.clone()),
                    },
                )
                .collect(),
        }
    }

    /// The conditions, in their order.
    pub fn conditions(&self) -> Vec<Condition> {
        self.conditions
            .iter()
            .map(|r| match r {
                Remembered::Own {
                    kind,
                    status,
                    reason,
                    message,
                    since,
                } => Condition {
                    type_: CONDITION_TYPES[*kind as usize].to_string(),
                    status: match status {
                        Some(true) => "True",
                        Some(false) => "False",
                        None => "Unknown",
                    }
                    .to_string(),
                    reason: reason.to_string(),
                    message: message.to_string(),
                    last_transition_time: since.as_deref().map(String::from),
                },
                Remembered::Other(c) => c.clone(),
            })
            .collect()
    }

    /// The status with what is kept (the decision's fields are not).
    pub fn status(&self) -> ScaledObjectStatus {
        ScaledObjectStatus {
            scale_target_kind: self.scale_target_kind.as_deref().map(String::from),
            scale_target_gvkr: self.scale_target_gvkr.clone(),
            original_replica_count: self.original_replica_count,
            last_active_time: self.last_active_time.as_deref().map(String::from),
            conditions: self.conditions(),
            ..Default::default()
        }
    }
}

impl<'de> Deserialize<'de> for StatusSummary {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ScaledObjectStatus::deserialize(d).map(|s| StatusSummary::of(&s))
    }
}

impl Serialize for StatusSummary {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.status().serialize(s)
    }
}

/// Karpenter's NodePool status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodePoolStatus {
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub resources: std::collections::BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Decode a resource into its `model` type with the same checks and field-path errors as
/// `kedge check` (what KEDA's and Karpenter's admission webhooks would refuse).
pub fn to_model<T: model::manifest::Manifest>(
    api_version: &str,
    kind: &str,
    metadata: &ObjectMeta,
    spec: &Value,
) -> Result<T, String> {
    let mut meta = serde_json::Map::new();
    if let Some(n) = &metadata.name {
        meta.insert("name".into(), Value::String(n.clone()));
    }
    if let Some(n) = &metadata.namespace {
        meta.insert("namespace".into(), Value::String(n.clone()));
    }
    if let Some(l) = &metadata.labels {
        meta.insert("labels".into(), serde_json::to_value(l).unwrap_or_default());
    }
    if let Some(a) = &metadata.annotations {
        meta.insert(
            "annotations".into(),
            serde_json::to_value(a).unwrap_or_default(),
        );
    }
    let doc = serde_json::json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": Value::Object(meta),
        "spec": spec,
    });
    model::manifest::decode_value::<T>(&doc).map_err(|e| e.to_string())
}
