//! The CustomResourceDefinitions kedge serves, generated from the Rust types.
//!
//! Spec schemas come from `model`'s types through schemars (the same types `kedge check` and
//! the reconcilers parse with), post-processed the way kube-derive does it
//! ([`kube::core::schema::StructuralSchemaRewriter`] and friends) and then made structural for
//! the API server with [`make_structural`]: no `$ref`, no `anyOf`/`oneOf` except under
//! `x-kubernetes-int-or-string`, a type on every node (free-form values become
//! `x-kubernetes-preserve-unknown-fields`), and no `default`s.
//!
//! Why no defaults: KEDA's CRDs carry none, and `model` applies KEDA's and Karpenter's defaults
//! when it parses a spec, so a manifest read back with `kubectl get -o yaml` stays what the user
//! wrote. Unknown fields are pruned by the API server, as upstream's CRDs do; with
//! `kubectl --validate=strict` (the default since Kubernetes 1.27) they are reported at apply
//! time instead of being dropped.
//!
//! No CEL (`x-kubernetes-validations`): the oldest API server kedge supports (1.20) rejects it.
//! Status schemas are free-form (`x-kubernetes-preserve-unknown-fields`), written only by kedge.
//!
//! The files under `deploy/crds/` and `deploy/helm/kedge/crds/` are [`crds`]' output, committed;
//! `tests/crds.rs` fails when they are stale (regenerate with
//! `cargo run -p kedge -- crds --out deploy/crds`).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition, CustomResourceDefinitionNames,
    CustomResourceDefinitionSpec, CustomResourceDefinitionVersion, CustomResourceSubresourceStatus,
    CustomResourceSubresources, CustomResourceValidation, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde_json::{Value, json};

/// The command that rewrites the committed CRD files.
pub const REGENERATE: &str = "cargo run -p kedge -- crds --out deploy/crds && cargo run -p kedge -- crds --out deploy/helm/kedge/crds";

/// One printer column (`kubectl get`).
struct Column {
    name: &'static str,
    type_: &'static str,
    json_path: &'static str,
    priority: i32,
}

const fn col(name: &'static str, type_: &'static str, json_path: &'static str) -> Column {
    Column {
        name,
        type_,
        json_path,
        priority: 0,
    }
}

const fn wide(name: &'static str, type_: &'static str, json_path: &'static str) -> Column {
    Column {
        name,
        type_,
        json_path,
        priority: 1,
    }
}

struct Def {
    file: &'static str,
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    namespaced: bool,
    columns: Vec<Column>,
    spec: Value,
    /// An older version served beside `version` (same columns), converted by the operator's
    /// webhook: `(version, spec schema)`.
    also_served: Option<(&'static str, Value)>,
}

fn age() -> Column {
    col("Age", "date", ".metadata.creationTimestamp")
}

fn condition(name: &'static str, json_path: &'static str) -> Column {
    col(name, "string", json_path)
}

fn trigger_auth_columns() -> Vec<Column> {
    // KEDA's own columns for (Cluster)TriggerAuthentication.
    vec![
        col("PodIdentity", "string", ".spec.podIdentity.provider"),
        col("Secret", "string", ".spec.secretTargetRef[*].name"),
        col("Env", "string", ".spec.env[*].name"),
        age(),
    ]
}

fn defs() -> Vec<Def> {
    use crate::crd::{
        ClusterTriggerAuthentication, EC2NodeClass, Kind, NodeClaim, NodePool, ScaledJob,
        ScaledObject, TriggerAuthentication,
    };
    vec![
        Def {
            file: "keda.sh_scaledobjects.yaml",
            group: ScaledObject::GROUP,
            version: ScaledObject::VERSION,
            kind: ScaledObject::KIND,
            plural: ScaledObject::PLURAL,
            singular: "scaledobject",
            short_names: &["so"],
            categories: &["keda"],
            namespaced: ScaledObject::NAMESPACED,
            // KEDA's columns; Triggers/Authentications read the spec because kedge does not
            // write KEDA's `status.triggersTypes`.
            columns: vec![
                col("ScaleTargetKind", "string", ".status.scaleTargetKind"),
                col("ScaleTargetName", "string", ".spec.scaleTargetRef.name"),
                col("Min", "integer", ".spec.minReplicaCount"),
                col("Max", "integer", ".spec.maxReplicaCount"),
                col("Triggers", "string", ".spec.triggers[*].type"),
                col(
                    "Authentications",
                    "string",
                    ".spec.triggers[*].authenticationRef.name",
                ),
                condition("Ready", ".status.conditions[?(@.type==\"Ready\")].status"),
                condition("Active", ".status.conditions[?(@.type==\"Active\")].status"),
                condition(
                    "Fallback",
                    ".status.conditions[?(@.type==\"Fallback\")].status",
                ),
                condition("Paused", ".status.conditions[?(@.type==\"Paused\")].status"),
                age(),
                wide("Desired", "integer", ".status.desiredReplicas"),
            ],
            spec: spec_schema::<model::keda::ScaledObjectSpec>(),
            also_served: None,
        },
        Def {
            file: "keda.sh_scaledjobs.yaml",
            group: ScaledJob::GROUP,
            version: ScaledJob::VERSION,
            kind: ScaledJob::KIND,
            plural: ScaledJob::PLURAL,
            singular: "scaledjob",
            short_names: &["sj"],
            categories: &["keda"],
            namespaced: ScaledJob::NAMESPACED,
            // KEDA's columns; Triggers/Authentications read the spec (see ScaledObject).
            columns: vec![
                col("Min", "integer", ".spec.minReplicaCount"),
                col("Max", "integer", ".spec.maxReplicaCount"),
                col("Triggers", "string", ".spec.triggers[*].type"),
                col(
                    "Authentications",
                    "string",
                    ".spec.triggers[*].authenticationRef.name",
                ),
                condition("Ready", ".status.conditions[?(@.type==\"Ready\")].status"),
                condition("Active", ".status.conditions[?(@.type==\"Active\")].status"),
                condition("Paused", ".status.conditions[?(@.type==\"Paused\")].status"),
                age(),
            ],
            spec: spec_schema::<model::keda::scaledjob::ScaledJobSpec>(),
            also_served: None,
        },
        Def {
            file: "keda.sh_triggerauthentications.yaml",
            group: TriggerAuthentication::GROUP,
            version: TriggerAuthentication::VERSION,
            kind: TriggerAuthentication::KIND,
            plural: TriggerAuthentication::PLURAL,
            singular: "triggerauthentication",
            short_names: &["ta", "triggerauth"],
            categories: &["keda"],
            namespaced: TriggerAuthentication::NAMESPACED,
            columns: trigger_auth_columns(),
            spec: spec_schema::<model::keda::TriggerAuthenticationSpec>(),
            also_served: None,
        },
        Def {
            file: "keda.sh_clustertriggerauthentications.yaml",
            group: ClusterTriggerAuthentication::GROUP,
            version: ClusterTriggerAuthentication::VERSION,
            kind: ClusterTriggerAuthentication::KIND,
            plural: ClusterTriggerAuthentication::PLURAL,
            singular: "clustertriggerauthentication",
            short_names: &["cta", "clustertriggerauth"],
            categories: &["keda"],
            namespaced: ClusterTriggerAuthentication::NAMESPACED,
            columns: trigger_auth_columns(),
            spec: spec_schema::<model::keda::TriggerAuthenticationSpec>(),
            also_served: None,
        },
        Def {
            file: "karpenter.sh_nodepools.yaml",
            group: NodePool::GROUP,
            version: NodePool::VERSION,
            kind: NodePool::KIND,
            plural: NodePool::PLURAL,
            singular: "nodepool",
            short_names: &[],
            categories: &["karpenter"],
            namespaced: NodePool::NAMESPACED,
            columns: vec![
                col(
                    "NodeClass",
                    "string",
                    ".spec.template.spec.nodeClassRef.name",
                ),
                // Upstream reads `.status.resources.nodes`; kedge writes the count to
                // `status.nodes` (Karpenter 1.1+ has that field too).
                col("Nodes", "integer", ".status.nodes"),
                condition("Ready", ".status.conditions[?(@.type==\"Ready\")].status"),
                age(),
                wide("Weight", "integer", ".spec.weight"),
                wide("CPU", "string", ".status.resources.cpu"),
                wide("Memory", "string", ".status.resources.memory"),
            ],
            spec: spec_schema::<model::karpenter::NodePoolSpec>(),
            also_served: Some((
                "v1beta1",
                spec_schema::<model::karpenter::v1beta1::NodePoolSpec>(),
            )),
        },
        Def {
            file: "karpenter.sh_nodeclaims.yaml",
            group: NodeClaim::GROUP,
            version: NodeClaim::VERSION,
            kind: NodeClaim::KIND,
            plural: NodeClaim::PLURAL,
            singular: "nodeclaim",
            short_names: &[],
            categories: &["karpenter"],
            namespaced: NodeClaim::NAMESPACED,
            columns: vec![
                col(
                    "Type",
                    "string",
                    ".metadata.labels.node\\.kubernetes\\.io/instance-type",
                ),
                col(
                    "Capacity",
                    "string",
                    ".metadata.labels.karpenter\\.sh/capacity-type",
                ),
                col(
                    "Zone",
                    "string",
                    ".metadata.labels.topology\\.kubernetes\\.io/zone",
                ),
                col("Node", "string", ".status.nodeName"),
                condition("Ready", ".status.conditions[?(@.type==\"Ready\")].status"),
                age(),
                wide("ImageID", "string", ".status.imageID"),
                wide("ID", "string", ".status.providerID"),
                wide(
                    "NodePool",
                    "string",
                    ".metadata.labels.karpenter\\.sh/nodepool",
                ),
                wide("NodeClass", "string", ".spec.nodeClassRef.name"),
                wide(
                    "Drifted",
                    "string",
                    ".status.conditions[?(@.type==\"Drifted\")].status",
                ),
            ],
            spec: spec_schema::<model::karpenter::NodeClaimSpec>(),
            // Karpenter 1.0 served v1beta1 NodeClaims too (its spec is the v1beta1 NodePool
            // template's).
            also_served: Some((
                "v1beta1",
                spec_schema::<model::karpenter::v1beta1::NodeClaimTemplateSpec>(),
            )),
        },
        Def {
            file: "karpenter.k8s.aws_ec2nodeclasses.yaml",
            group: EC2NodeClass::GROUP,
            version: EC2NodeClass::VERSION,
            kind: EC2NodeClass::KIND,
            plural: EC2NodeClass::PLURAL,
            singular: "ec2nodeclass",
            short_names: &["ec2nc", "ec2ncs"],
            categories: &["karpenter"],
            namespaced: EC2NodeClass::NAMESPACED,
            columns: vec![
                condition("Ready", ".status.conditions[?(@.type==\"Ready\")].status"),
                age(),
                wide("Role", "string", ".spec.role"),
            ],
            spec: ec2_node_class_spec(true),
            also_served: Some(("v1beta1", ec2_node_class_spec(false))),
        },
    ]
}

/// Every CRD as `(file name, YAML)`, in a fixed order; file names follow upstream's
/// `<group>_<plural>.yaml`.
pub fn crds() -> Vec<(&'static str, String)> {
    defs().into_iter().map(|d| (d.file, render(&d))).collect()
}

/// All CRDs in one multi-document YAML stream (what `kedge crds` prints without `--out`).
pub fn crds_yaml() -> String {
    crds()
        .into_iter()
        .map(|(_, y)| y)
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The CRD objects themselves (for applying them from code, e.g. in tests).
pub fn crd_objects() -> Vec<CustomResourceDefinition> {
    defs().iter().map(build).collect()
}

/// Install every CRD (server-side apply: idempotent, also an upgrade) and wait until each is
/// `Established`, at most `timeout` in all. For tests, benchmarks and tools; a cluster gets them
/// from `deploy/crds/` or the chart.
pub async fn install(client: &kube::Client, timeout: std::time::Duration) -> crate::Result<()> {
    use kube::api::{Api, Patch, PatchParams};
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crds = crd_objects();
    for crd in &crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &PatchParams::apply("kedge").force(),
            &Patch::Apply(crd),
        )
        .await
        .map_err(crate::Error::kube(format!("installing CRD {name}")))?;
    }
    let deadline = tokio::time::Instant::now() + timeout;
    for crd in &crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        loop {
            let c = api
                .get(&name)
                .await
                .map_err(crate::Error::kube(format!("reading CRD {name}")))?;
            let established = c.status.and_then(|s| s.conditions).is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            if established {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(crate::Error::Invalid(format!(
                    "CRD {name} not Established within {timeout:?}"
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

fn render(d: &Def) -> String {
    let crd = build(d);
    // Serialising typed k8s-openapi structs cannot fail (no maps with non-string keys).
    let body = serde_yaml_ng::to_string(&crd).unwrap_or_default();
    format!(
        "# Generated by `kedge crds` from kedge's Rust types; do not edit.\n# Regenerate: {REGENERATE}\n{body}"
    )
}

fn build(d: &Def) -> CustomResourceDefinition {
    let strs = |v: &[&str]| -> Option<Vec<String>> {
        (!v.is_empty()).then(|| v.iter().map(|s| s.to_string()).collect())
    };
    let mut versions = vec![version(d, d.version, &d.spec, true)];
    let mut conversion = None;
    if let Some((old, spec)) = &d.also_served {
        versions.push(version(d, old, spec, false));
        // The operator fills in the CA (and its own Service or URL) at start: see `webhook`.
        conversion = serde_json::from_value(webhook_conversion()).ok();
    }
    CustomResourceDefinition {
        metadata: ObjectMeta {
            name: Some(format!("{}.{}", d.plural, d.group)),
            labels: Some(
                [("app.kubernetes.io/part-of".to_string(), "kedge".to_string())]
                    .into_iter()
                    .collect(),
            ),
            ..Default::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: d.group.into(),
            names: CustomResourceDefinitionNames {
                kind: d.kind.into(),
                list_kind: Some(format!("{}List", d.kind)),
                plural: d.plural.into(),
                singular: Some(d.singular.into()),
                short_names: strs(d.short_names),
                categories: strs(d.categories),
            },
            scope: if d.namespaced {
                "Namespaced"
            } else {
                "Cluster"
            }
            .into(),
            versions,
            conversion,
            ..Default::default()
        },
        status: None,
    }
}

/// The CRDs whose older version is served through the conversion webhook.
pub fn converted_crds() -> Vec<String> {
    defs()
        .iter()
        .filter(|d| d.also_served.is_some())
        .map(|d| format!("{}.{}", d.plural, d.group))
        .collect()
}

/// The `conversion` of a converted CRD as committed: the webhook behind the chart's default
/// Service (`kedge-webhook` in `kedge`), no CA yet.
fn webhook_conversion() -> Value {
    json!({
        "strategy": "Webhook",
        "webhook": {
            "conversionReviewVersions": ["v1"],
            "clientConfig": {
                "service": {
                    "name": "kedge-webhook",
                    "namespace": "kedge",
                    "path": crate::webhook::PATH,
                    "port": 443,
                },
            },
        },
    })
}

/// One served version of `d`; `storage` for the version objects are kept in.
fn version(d: &Def, name: &str, spec: &Value, storage: bool) -> CustomResourceDefinitionVersion {
    let root = json!({
        "type": "object",
        "description": format!("{} ({}/{}), as kedge reads it.", d.kind, d.group, name),
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        },
    });
    // `make_structural` only emits JSONSchemaProps fields; a failure here is a bug in it and
    // is caught by the unit tests below, so fall back to an empty schema rather than panic.
    let schema: JSONSchemaProps = serde_json::from_value(root).unwrap_or_default();
    CustomResourceDefinitionVersion {
        name: name.into(),
        served: true,
        storage,
        deprecated: (!storage).then_some(true),
        additional_printer_columns: Some(
            d.columns
                .iter()
                .map(|c| CustomResourceColumnDefinition {
                    name: c.name.into(),
                    type_: c.type_.into(),
                    json_path: c.json_path.into(),
                    priority: (c.priority != 0).then_some(c.priority),
                    ..Default::default()
                })
                .collect(),
        ),
        schema: Some(CustomResourceValidation {
            open_api_v3_schema: Some(schema),
        }),
        subresources: Some(CustomResourceSubresources {
            status: Some(CustomResourceSubresourceStatus(json!({}))),
            scale: None,
        }),
        ..Default::default()
    }
}

/// The structural schema of a spec type, the way kube-derive generates one, then
/// [`make_structural`].
pub fn spec_schema<T: JsonSchema>() -> Value {
    let generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .with_transform(schemars::transform::AddNullable::default())
        .with_transform(kube::core::schema::StructuralSchemaRewriter)
        .with_transform(kube::core::schema::OptionalEnum)
        .with_transform(kube::core::schema::OptionalIntOrString)
        .into_generator();
    let mut v = generator.into_root_schema_for::<T>().to_value();
    make_structural(&mut v);
    v
}

/// Rewrite a schema (in place) into what an apiextensions.k8s.io/v1 structural schema allows.
pub fn make_structural(v: &mut Value) {
    // Free-form values (`serde_json::Value`: `true`, `{}` or only a description/nullable).
    if v == &Value::Bool(true) {
        *v = json!({"x-kubernetes-preserve-unknown-fields": true});
        return;
    }
    let Some(obj) = v.as_object_mut() else {
        return;
    };
    for k in [
        "default",
        "$schema",
        "title",
        "definitions",
        "$defs",
        "examples",
    ] {
        obj.remove(k);
    }
    if obj.get("additionalProperties") == Some(&Value::Bool(false)) {
        obj.remove("additionalProperties");
    }
    if obj.get("additionalProperties") == Some(&Value::Bool(true)) {
        obj.remove("additionalProperties");
        obj.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
    }
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for p in props.values_mut() {
            make_structural(p);
        }
    }
    for k in ["items", "additionalProperties", "not"] {
        if let Some(s) = obj.get_mut(k) {
            make_structural(s);
        }
    }
    let int_or_string = obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    for k in ["anyOf", "oneOf", "allOf"] {
        if int_or_string && k == "anyOf" {
            continue;
        }
        // Kubernetes allows these only as value validations without types; kedge's model
        // validates such shapes itself, so drop them rather than emit a non-structural schema.
        obj.remove(k);
    }
    let typed = obj.contains_key("type")
        || int_or_string
        || obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if !typed {
        obj.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
    }
    if obj.get("type") == Some(&json!("object"))
        && !obj.contains_key("properties")
        && !obj.contains_key("additionalProperties")
        && obj.get("x-kubernetes-preserve-unknown-fields") != Some(&Value::Bool(true))
    {
        // An object with no declared shape would prune everything inside it.
        obj.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
    }
    // AddNullable puts `null` into an optional enum's values; `nullable: true` already says it.
    if let Some(Value::Array(values)) = obj.get_mut("enum") {
        values.retain(|e| !e.is_null());
    }
    // `required: []` is dropped by the API server on read-back; omit it for stable output.
    if obj.get("required") == Some(&json!([])) {
        obj.remove("required");
    }
}

/// `karpenter.k8s.aws/v1` EC2NodeClass spec: upstream's fields with their shapes, and
/// `x-kubernetes-preserve-unknown-fields` on the spec so newer upstream fields survive for the
/// AWS provider to report (it parses the spec itself).
fn ec2_node_class_spec(v1: bool) -> Value {
    let string = || json!({"type": "string"});
    let string_map = || json!({"type": "object", "additionalProperties": {"type": "string"}});
    let selector_terms = |extra: Value| {
        let mut props = json!({
            "tags": string_map(),
            "id": string(),
        });
        if let (Some(p), Some(e)) = (props.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        json!({"type": "array", "items": {"type": "object", "properties": props}})
    };
    let mut spec = json!({
        "type": "object",
        "description": "EC2NodeClass spec (upstream karpenter.k8s.aws/v1 fields; kedge's AWS provider reads a subset and reports the rest).",
        "x-kubernetes-preserve-unknown-fields": true,
        "properties": {
            "subnetSelectorTerms": selector_terms(json!({})),
            "securityGroupSelectorTerms": selector_terms(json!({"name": string()})),
            "capacityReservationSelectorTerms": selector_terms(json!({"ownerID": string()})),
            "amiSelectorTerms": selector_terms(json!({
                "alias": string(),
                "name": string(),
                "owner": string(),
                "ssmParameter": string(),
            })),
            "amiFamily": string(),
            "role": string(),
            "instanceProfile": string(),
            "associatePublicIPAddress": {"type": "boolean"},
            "tags": string_map(),
            "userData": string(),
            "detailedMonitoring": {"type": "boolean"},
            "instanceStorePolicy": string(),
            "context": string(),
            "kubelet": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "properties": {
                    "clusterDNS": {"type": "array", "items": string()},
                    "maxPods": {"type": "integer", "format": "int32"},
                    "podsPerCore": {"type": "integer", "format": "int32"},
                    "systemReserved": string_map(),
                    "kubeReserved": string_map(),
                    "evictionHard": string_map(),
                    "evictionSoft": string_map(),
                    "evictionSoftGracePeriod": string_map(),
                    "evictionMaxPodGracePeriod": {"type": "integer", "format": "int32"},
                    "imageGCHighThresholdPercent": {"type": "integer", "format": "int32"},
                    "imageGCLowThresholdPercent": {"type": "integer", "format": "int32"},
                    "cpuCFSQuota": {"type": "boolean"},
                },
            },
            "blockDeviceMappings": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "deviceName": string(),
                        "rootVolume": {"type": "boolean"},
                        "ebs": {
                            "type": "object",
                            "properties": {
                                "deleteOnTermination": {"type": "boolean"},
                                "encrypted": {"type": "boolean"},
                                "iops": {"type": "integer", "format": "int64"},
                                "kmsKeyID": string(),
                                "snapshotID": string(),
                                "throughput": {"type": "integer", "format": "int64"},
                                "volumeInitializationRate": {"type": "integer", "format": "int32"},
                                "volumeSize": {"x-kubernetes-int-or-string": true},
                                "volumeType": string(),
                            },
                        },
                    },
                },
            },
            "metadataOptions": {
                "type": "object",
                "properties": {
                    "httpEndpoint": string(),
                    "httpProtocolIPv6": string(),
                    "httpPutResponseHopLimit": {"type": "integer", "format": "int64"},
                    "httpTokens": string(),
                },
            },
        },
    });
    if !v1 {
        // v1beta1 (Karpenter 0.32-0.37): no alias or SSM terms, no capacity reservations, no
        // kubelet (it was on the NodePool); `amiFamily` is required there (checked by `kedge
        // check` and the conversion, not by this schema).
        spec["description"] = "EC2NodeClass spec (upstream karpenter.k8s.aws/v1beta1 fields, converted to v1 by kedge's webhook).".into();
        if let Some(p) = spec["properties"].as_object_mut() {
            p.remove("capacityReservationSelectorTerms");
            p.remove("kubelet");
        }
        if let Some(p) =
            spec["properties"]["amiSelectorTerms"]["items"]["properties"].as_object_mut()
        {
            p.remove("alias");
            p.remove("ssmParameter");
        }
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every node has a type (or is int-or-string / preserve-unknown-fields), and there is no
    /// `$ref`, `default`, `oneOf`/`allOf`, nor `anyOf` outside int-or-string.
    fn assert_structural(path: &str, v: &Value) {
        let obj = v
            .as_object()
            .unwrap_or_else(|| panic!("{path}: schema is not an object: {v}"));
        for k in [
            "$ref",
            "default",
            "oneOf",
            "allOf",
            "x-kubernetes-validations",
        ] {
            assert!(!obj.contains_key(k), "{path}: has `{k}`: {v}");
        }
        let ios = obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
        let pres = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
        assert!(
            obj.contains_key("type") || ios || pres,
            "{path}: no type: {v}"
        );
        assert!(!obj.contains_key("anyOf") || ios, "{path}: anyOf: {v}");
        if let Some(Value::Object(props)) = obj.get("properties") {
            for (k, p) in props {
                assert_structural(&format!("{path}.{k}"), p);
            }
        }
        if let Some(i) = obj.get("items") {
            assert_structural(&format!("{path}[]"), i);
        }
        if let Some(a) = obj.get("additionalProperties") {
            assert_structural(&format!("{path}{{}}"), a);
        }
    }

    #[test]
    fn every_spec_schema_is_structural() {
        for d in defs() {
            assert_structural(d.kind, &d.spec);
            // And it round-trips through the typed JSONSchemaProps without losing anything.
            let props: JSONSchemaProps = serde_json::from_value(d.spec.clone()).unwrap();
            assert_eq!(serde_json::to_value(&props).unwrap(), d.spec, "{}", d.kind);
        }
    }

    #[test]
    fn scaled_object_schema_has_upstream_shape() {
        let s = spec_schema::<model::keda::ScaledObjectSpec>();
        let p = &s["properties"];
        assert_eq!(p["maxReplicaCount"]["type"], "integer");
        assert_eq!(s["required"], json!(["scaleTargetRef", "triggers"]));
        assert_eq!(
            p["triggers"]["items"]["properties"]["metadata"]["additionalProperties"]["type"],
            "string"
        );
        let rules = &p["advanced"]["properties"]["horizontalPodAutoscalerConfig"]["properties"]["behavior"]
            ["properties"]["scaleDown"]["properties"];
        assert_eq!(rules["tolerance"]["x-kubernetes-int-or-string"], true);
        assert_eq!(
            rules["selectPolicy"]["enum"],
            json!(["Max", "Min", "Disabled"])
        );
    }

    #[test]
    fn node_pool_schema_has_upstream_shape() {
        let s = spec_schema::<model::karpenter::NodePoolSpec>();
        let p = &s["properties"];
        assert_eq!(
            p["limits"]["additionalProperties"]["x-kubernetes-int-or-string"],
            true
        );
        let req = &p["template"]["properties"]["spec"]["properties"]["requirements"]["items"];
        assert_eq!(req["properties"]["minValues"]["type"], "integer");
        assert_eq!(
            p["disruption"]["properties"]["consolidateAfter"]["type"],
            "string"
        );
    }

    #[test]
    fn files_and_stream() {
        let all = crds();
        assert_eq!(all.len(), 7);
        assert!(
            all.iter()
                .all(|(f, y)| f.ends_with(".yaml") && y.contains("kind: CustomResourceDefinition"))
        );
        assert_eq!(crds_yaml().matches("\n---\n").count(), 6);
    }
}
