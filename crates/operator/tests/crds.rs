//! The committed CRDs, Helm chart RBAC and example manifests.
//!
//! - The YAML under `deploy/crds/` and `deploy/helm/kedge/crds/` is exactly what
//!   `operator::crd::schema::crds()` generates (CI fails when it is stale).
//! - Every example in `examples/eks-sqs/` passes `kedge check`'s validation.
//! - Against a real API server: the CRDs install and become Established, realistic KEDA and
//!   Karpenter manifests apply and read back without a field pruned, structurally wrong ones
//!   are rejected, and the chart's RBAC lets the operator's ServiceAccount do what it needs and
//!   nothing it must not.

mod common;

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const CRD_DIRS: [&str; 2] = ["deploy/crds", "deploy/helm/kedge/crds"];

/// `KEDGE_UPDATE_CRDS=1 cargo test -p operator --test crds` rewrites the files (the same as
/// `kedge crds --out DIR` for both directories).
#[test]
fn committed_crds_are_generated_from_the_types() {
    let update = std::env::var("KEDGE_UPDATE_CRDS").is_ok_and(|v| v == "1");
    let generated = operator::crd::schema::crds();
    let mut stale = Vec::new();
    for dir in CRD_DIRS {
        let dir = repo_root().join(dir);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
        }
        for (file, yaml) in &generated {
            let path = dir.join(file);
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            if committed != *yaml {
                if update {
                    std::fs::write(&path, yaml).unwrap();
                } else {
                    stale.push(path.display().to_string());
                }
            }
        }
        // No leftovers from a kind that was renamed or removed.
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().to_string();
            if name.ends_with(".yaml") && !generated.iter().any(|(f, _)| *f == name) {
                stale.push(format!("{}/{name} (not generated any more)", dir.display()));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "CRD files are stale (the Rust types changed): {}\nregenerate with: {}\n(or KEDGE_UPDATE_CRDS=1 cargo test -p operator --test crds)",
        stale.join(", "),
        operator::crd::schema::REGENERATE
    );
}

// ---------------------------------------------------------------------------------------------
// Example manifests and upstream-style objects
// ---------------------------------------------------------------------------------------------

fn examples() -> Vec<PathBuf> {
    let dir = repo_root().join("examples/eks-sqs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

/// `${VAR}` placeholders of the examples (filled by `envsubst` in the README's commands).
fn envsubst(text: &str) -> String {
    [
        ("${CLUSTER_NAME}", "test-cluster"),
        ("${AWS_REGION}", "us-west-2"),
        ("${AWS_ACCOUNT_ID}", "123456789012"),
        ("${KEDGE_IMAGE}", "kedge:test"),
    ]
    .iter()
    .fold(text.to_string(), |t, (k, v)| t.replace(k, v))
}

fn is_model_kind(kind: &str) -> bool {
    model::manifest::KINDS.iter().any(|k| k.kind == kind)
}

#[test]
fn examples_pass_kedge_check() {
    let mut checked = Vec::new();
    let mut model_files = Vec::new();
    for f in examples() {
        let docs =
            model::manifest::parse_documents(&envsubst(&std::fs::read_to_string(&f).unwrap()))
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let mut all_model = true;
        for d in &docs {
            let kind = d
                .kind()
                .unwrap_or_else(|| panic!("{}: a document without kind", f.display()));
            if is_model_kind(kind) {
                let errors = model::manifest::check_document(d);
                assert!(
                    errors.is_empty(),
                    "{}[{}]: {errors:?}",
                    f.display(),
                    d.index
                );
                checked.push(kind.to_string());
            } else {
                all_model = false;
            }
        }
        if all_model {
            model_files.push(f);
        }
    }
    // The whole-set checks too (duplicate scale targets), exactly as `kedge check` runs them.
    let report = model::manifest::check_files(&model_files);
    assert!(report.ok(), "{:?}", report.errors);
    checked.sort();
    assert_eq!(
        checked,
        [
            "EC2NodeClass",
            "NodePool",
            "ScaledObject",
            "TriggerAuthentication"
        ]
    );
}

/// Upstream-style objects (KEDA and Karpenter documentation): every feature the schema has to
/// carry through the API server without pruning.
const UPSTREAM: &str = r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: full-featured}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: worker, envSourceContainerName: main}
  pollingInterval: 15
  cooldownPeriod: 120
  initialCooldownPeriod: 30
  idleReplicaCount: 0
  minReplicaCount: 1
  maxReplicaCount: 50
  fallback: {failureThreshold: 3, replicas: 6, behavior: currentReplicasIfHigher}
  advanced:
    restoreToOriginalReplicaCount: true
    horizontalPodAutoscalerConfig:
      name: keda-hpa-full-featured
      behavior:
        scaleDown:
          stabilizationWindowSeconds: 300
          selectPolicy: Min
          policies:
            - {type: Percent, value: 50, periodSeconds: 60}
            - {type: Pods, value: 4, periodSeconds: 60}
        scaleUp:
          stabilizationWindowSeconds: 0
          tolerance: 50m
          policies:
            - {type: Pods, value: 10, periodSeconds: 15}
    scalingModifiers:
      formula: "(queue_a + queue_b) / 2"
      target: "5"
      activationTarget: "1"
      metricType: AverageValue
  triggers:
    - type: aws-sqs-queue
      name: queue_a
      authenticationRef: {name: aws-keys}
      useCachedMetrics: true
      metadata: {queueURL: "https://sqs.us-east-1.amazonaws.com/123456789012/a", queueLength: "5", awsRegion: us-east-1, activationQueueLength: "1"}
    - type: aws-sqs-queue
      name: queue_b
      metricType: AverageValue
      authenticationRef: {name: shared-aws, kind: ClusterTriggerAuthentication}
      metadata: {queueURL: "https://sqs.us-east-1.amazonaws.com/123456789012/b", queueLength: "5", awsRegion: us-east-1}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: cron-statefulset
  annotations: {autoscaling.keda.sh/paused-replicas: "2"}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: StatefulSet, name: db-workers}
  triggers:
    - type: cron
      metadata: {timezone: Europe/Berlin, start: "0 8 * * *", end: "0 18 * * *", desiredReplicas: "4"}
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata: {name: aws-keys}
spec:
  secretTargetRef:
    - {parameter: awsAccessKeyID, name: aws-secrets, key: AWS_ACCESS_KEY_ID}
    - {parameter: awsSecretAccessKey, name: aws-secrets, key: AWS_SECRET_ACCESS_KEY}
  configMapTargetRef:
    - {parameter: awsRegion, name: aws-config, key: region}
  env:
    - {parameter: awsSessionToken, name: AWS_SESSION_TOKEN, containerName: main}
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata: {name: aws-role}
spec:
  podIdentity: {provider: aws, roleArn: "arn:aws:iam::123456789012:role/keda-sqs", identityOwner: keda}
---
apiVersion: keda.sh/v1alpha1
kind: ClusterTriggerAuthentication
metadata: {name: shared-aws}
spec:
  podIdentity: {provider: aws}
---
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: general-purpose}
spec:
  weight: 50
  template:
    metadata:
      labels: {team: payments}
      annotations: {example.com/owner: platform}
    spec:
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
      expireAfter: Never
      terminationGracePeriod: 48h
      taints:
        - {key: example.com/special, value: "true", effect: NoSchedule}
      startupTaints:
        - {key: example.com/agent-not-ready, effect: NoExecute}
      requirements:
        - {key: karpenter.k8s.aws/instance-category, operator: In, values: [c, m, r], minValues: 2}
        - {key: karpenter.k8s.aws/instance-family, operator: Exists, minValues: 5}
        - {key: karpenter.k8s.aws/instance-generation, operator: Gt, values: ["2"]}
        - {key: karpenter.k8s.aws/instance-cpu, operator: Lt, values: ["65"]}
        - {key: karpenter.sh/capacity-type, operator: In, values: [spot, on-demand]}
        - {key: topology.kubernetes.io/zone, operator: NotIn, values: [us-west-2d]}
  limits: {cpu: 1000, memory: 1000Gi, nvidia.com/gpu: 2}
  disruption:
    consolidationPolicy: WhenEmpty
    consolidateAfter: 30s
    budgets:
      - nodes: "10%"
      - nodes: "0"
        schedule: "0 9 * * mon-fri"
        duration: 8h
        reasons: [Drifted, Underutilized]
      - nodes: "5"
        reasons: [Empty]
---
apiVersion: karpenter.sh/v1
kind: NodeClaim
metadata:
  name: general-purpose-abcde
  labels: {karpenter.sh/nodepool: general-purpose}
spec:
  nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
  expireAfter: 720h
  terminationGracePeriod: 1h30m
  taints:
    - {key: example.com/special, value: "true", effect: NoSchedule}
  requirements:
    - {key: node.kubernetes.io/instance-type, operator: In, values: [m5.xlarge, m5.2xlarge], minValues: 1}
    - {key: karpenter.sh/nodepool, operator: In, values: [general-purpose]}
  resources:
    requests: {cpu: 3500m, memory: 12Gi, pods: 29}
---
apiVersion: karpenter.k8s.aws/v1
kind: EC2NodeClass
metadata: {name: full}
spec:
  amiFamily: AL2023
  role: KarpenterNodeRole-test
  amiSelectorTerms:
    - {alias: al2023@v20240807}
  subnetSelectorTerms:
    - tags: {karpenter.sh/discovery: test}
    - {id: subnet-0123456789abcdef0}
  securityGroupSelectorTerms:
    - {name: my-security-group}
  kubelet:
    maxPods: 110
    systemReserved: {cpu: 100m, memory: 100Mi}
    evictionHard: {memory.available: 5%}
    clusterDNS: [10.0.1.100]
  userData: |
    echo "hello from user data"
  detailedMonitoring: true
  associatePublicIPAddress: false
  tags: {team: payments}
  metadataOptions: {httpEndpoint: enabled, httpProtocolIPv6: disabled, httpPutResponseHopLimit: 1, httpTokens: required}
  blockDeviceMappings:
    - deviceName: /dev/xvda
      rootVolume: true
      ebs: {volumeSize: 100Gi, volumeType: gp3, iops: 10000, throughput: 125, encrypted: true, deleteOnTermination: true}
  ipPrefixCount: 1
"#;

#[test]
fn upstream_style_objects_pass_kedge_check() {
    let docs = model::manifest::parse_documents(UPSTREAM).unwrap();
    let mut n = 0;
    for d in &docs {
        if is_model_kind(d.kind().unwrap()) {
            let errors = model::manifest::check_document(d);
            assert!(errors.is_empty(), "document {}: {errors:?}", d.index);
            n += 1;
        }
    }
    assert_eq!(n, 8);
}

// ---------------------------------------------------------------------------------------------
// Against the real API server
// ---------------------------------------------------------------------------------------------

use kube::api::{Api, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use serde_json::{Value, json};

fn documents(text: &str) -> Vec<Value> {
    model::manifest::parse_documents(text)
        .unwrap()
        .into_iter()
        .map(|d| d.value)
        .filter(|v| v.is_object())
        .collect()
}

async fn api_for(client: &kube::Client, obj: &Value, default_ns: &str) -> Api<DynamicObject> {
    let api_version = obj["apiVersion"].as_str().unwrap();
    let kind = obj["kind"].as_str().unwrap();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (ar, caps) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .unwrap_or_else(|e| panic!("discovering {api_version} {kind}: {e}"));
    if caps.scope == kube::discovery::Scope::Namespaced {
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or(default_ns);
        Api::namespaced_with(client.clone(), ns, &ar)
    } else {
        Api::all_with(client.clone(), &ar)
    }
}

/// Create `obj` and read it back.
async fn create(
    client: &kube::Client,
    obj: &Value,
    default_ns: &str,
) -> Result<Value, kube::Error> {
    let api = api_for(client, obj, default_ns).await;
    let o: DynamicObject = serde_json::from_value(obj.clone()).unwrap();
    let created = api.create(&PostParams::default(), &o).await?;
    let back = api.get(&created.metadata.name.unwrap()).await?;
    Ok(serde_json::to_value(back).unwrap())
}

/// Every field of `sent` is in `got` with the same value (`got` may have server defaults).
fn assert_kept(path: &str, sent: &Value, got: &Value) {
    match (sent, got) {
        (Value::Object(s), Value::Object(g)) => {
            for (k, v) in s {
                let g = g
                    .get(k)
                    .unwrap_or_else(|| panic!("{path}.{k} was pruned (sent {v})"));
                assert_kept(&format!("{path}.{k}"), v, g);
            }
        }
        (Value::Array(s), Value::Array(g)) => {
            assert_eq!(s.len(), g.len(), "{path}: {sent} became {got}");
            for (i, (s, g)) in s.iter().zip(g).enumerate() {
                assert_kept(&format!("{path}[{i}]"), s, g);
            }
        }
        _ => assert_eq!(sent, got, "{path}"),
    }
}

fn name_of(v: &Value) -> String {
    format!(
        "{} {}",
        v["kind"].as_str().unwrap_or("?"),
        v["metadata"]["name"].as_str().unwrap_or("?")
    )
}

#[tokio::test]
async fn crds_install_and_examples_apply_without_pruning() {
    let Some(cp) = common::control_plane("crds_install_and_examples_apply_without_pruning") else {
        return;
    };
    let _guard = common::cluster_lock().await;
    let client = cp.client().await.expect("client");
    common::install_crds(&client).await;

    // The post's set-up, as the README applies it (envsubst, in file order).
    let mut applied = Vec::new();
    for f in examples() {
        for doc in documents(&envsubst(&std::fs::read_to_string(&f).unwrap())) {
            let back = create(&client, &doc, "default")
                .await
                .unwrap_or_else(|e| panic!("{}: {}: {e}", f.display(), name_of(&doc)));
            for field in ["spec", "rules", "roleRef", "subjects", "metadata"] {
                if let Some(sent) = doc.get(field) {
                    assert_kept(&format!("{} {field}", name_of(&doc)), sent, &back[field]);
                }
            }
            if doc["apiVersion"]
                .as_str()
                .is_some_and(|v| v.contains("keda.sh") || v.contains("karpenter"))
            {
                // Custom resources: exactly what was sent, no defaults added either.
                assert_eq!(back["spec"], doc["spec"], "{}", name_of(&doc));
            }
            applied.push(name_of(&doc));
        }
    }
    for must in [
        "Namespace keda-test",
        "Deployment sqs-app",
        "ScaledObject aws-sqs-queue-scaledobject",
        "TriggerAuthentication keda-trigger-auth-aws-credentials",
        "NodePool default",
        "EC2NodeClass default",
    ] {
        assert!(
            applied.iter().any(|a| a == must),
            "{must} not among {applied:?}"
        );
    }

    // Upstream-style objects with every feature: specs read back identical.
    let ns = common::namespace(&client, "crds-upstream").await;
    for doc in documents(UPSTREAM) {
        let back = create(&client, &doc, &ns)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", name_of(&doc)));
        assert_eq!(
            back["spec"],
            doc["spec"],
            "{} changed on the way through the API server",
            name_of(&doc)
        );
    }
}

#[tokio::test]
async fn api_server_rejects_structurally_wrong_objects() {
    let Some(cp) = common::control_plane("api_server_rejects_structurally_wrong_objects") else {
        return;
    };
    let _guard = common::cluster_lock().await;
    let client = cp.client().await.expect("client");
    common::install_crds(&client).await;
    let ns = common::namespace(&client, "crds-invalid").await;

    let cases = [
        (
            json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "ten"},
                   "spec": {"scaleTargetRef": {"name": "w"}, "maxReplicaCount": "ten",
                            "triggers": [{"type": "cron", "metadata": {}}]}}),
            "spec.maxReplicaCount",
        ),
        (
            json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "no-target"},
                   "spec": {"triggers": [{"type": "cron", "metadata": {}}]}}),
            "spec.scaleTargetRef",
        ),
        (
            json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "meta-int"},
                   "spec": {"scaleTargetRef": {"name": "w"}, "triggers": [{"type": "cron", "metadata": {"desiredReplicas": 4}}]}}),
            "desiredReplicas",
        ),
        (
            json!({"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "bad-operator"},
                   "spec": {"template": {"spec": {
                       "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                       "requirements": [{"key": "a", "operator": "Sometimes", "values": ["x"]}]}}}}),
            "operator",
        ),
        (
            json!({"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim", "metadata": {"name": "no-class"},
                   "spec": {"requirements": []}}),
            "spec.nodeClassRef",
        ),
    ];
    for (obj, field) in cases {
        match create(&client, &obj, &ns).await {
            Ok(v) => panic!("{} was accepted: {v}", name_of(&obj)),
            Err(kube::Error::Api(s)) => {
                assert_eq!(s.code, 422, "{}: {s:?}", name_of(&obj));
                assert!(
                    s.message.contains(field),
                    "{}: {:?} does not name {field}",
                    name_of(&obj),
                    s.message
                );
            }
            Err(e) => panic!("{}: {e}", name_of(&obj)),
        }
    }

    // Unknown fields are pruned, as with upstream's CRDs (kubectl --validate=strict reports
    // them at apply time on current clusters); kedge never sees them.
    let back = create(
        &client,
        &json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "typo"},
                "spec": {"scaleTargetRef": {"name": "w"}, "maxReplicas": 5,
                         "triggers": [{"type": "cron", "metadata": {}}]}}),
        &ns,
    )
    .await
    .unwrap();
    assert_eq!(back["spec"].get("maxReplicas"), None);
    assert_eq!(back["spec"]["scaleTargetRef"], json!({"name": "w"}));
}

// ---------------------------------------------------------------------------------------------
// The Helm chart's RBAC
// ---------------------------------------------------------------------------------------------

const RELEASE_NAMESPACE: &str = "kedge-system";

/// No `helm` binary can be installed here (no registry this machine reaches ships one), so the
/// RBAC template is rendered with the few constructs it is restricted to (see the comment at
/// the top of `templates/rbac.yaml`), for `helm install kedge deploy/helm/kedge -n
/// kedge-system` with the default values. Anything else left in the template fails the test.
fn render_rbac() -> Vec<Value> {
    let path = repo_root().join("deploy/helm/kedge/templates/rbac.yaml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    let labels = [
        "helm.sh/chart: kedge-0.1.0",
        "app.kubernetes.io/name: kedge",
        "app.kubernetes.io/instance: kedge",
        "app.kubernetes.io/version: \"0.1.0\"",
        "app.kubernetes.io/managed-by: Helm",
        "app.kubernetes.io/part-of: kedge",
    ];
    // `{{- include "kedge.labels" . | nindent N }}`: trims the whitespace before it, then a
    // newline and the labels indented by N.
    while let Some(start) = text.find("{{- include \"kedge.labels\" . | nindent ") {
        let end = start + text[start..].find("}}").unwrap() + 2;
        let n: usize = text[start..end]
            .trim_start_matches("{{- include \"kedge.labels\" . | nindent ")
            .trim_end_matches("}}")
            .trim()
            .parse()
            .unwrap();
        let trimmed = text[..start].trim_end().len();
        let block: String = labels
            .iter()
            .map(|l| format!("\n{}{l}", " ".repeat(n)))
            .collect();
        text.replace_range(trimmed..end, &block);
    }
    let text = text
        .replace("{{ include \"kedge.fullname\" . }}", "kedge")
        .replace("{{ include \"kedge.serviceAccountName\" . }}", "kedge")
        .replace("{{ .Release.Namespace }}", RELEASE_NAMESPACE);
    assert!(
        !text.contains("{{"),
        "{} uses template constructs this test cannot render:\n{text}",
        path.display()
    );
    documents(&text)
}

#[test]
fn rbac_is_least_privilege() {
    let docs = render_rbac();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]
    );
    for d in &docs {
        if let Some(rules) = d["rules"].as_array() {
            for r in rules {
                let strs = |k: &str| -> Vec<&str> {
                    r[k].as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap())
                        .collect()
                };
                assert!(!strs("verbs").contains(&"*"), "wildcard verb: {r}");
                for res in strs("resources") {
                    assert!(
                        !res.contains('*') || res == "*/scale",
                        "wildcard resource: {r}"
                    );
                }
                if strs("apiGroups").contains(&"*") {
                    assert_eq!(
                        strs("resources"),
                        ["*/scale"],
                        "all groups only for */scale: {r}"
                    );
                }
            }
        }
        if let Some(role) = d["roleRef"]["name"].as_str() {
            assert!(role.starts_with("kedge"), "binds {role}");
        }
    }
}

#[tokio::test]
async fn rbac_grants_what_the_operator_needs_and_nothing_more() {
    use k8s_openapi::api::authorization::v1::SubjectAccessReview;
    let Some(cp) = common::control_plane("rbac_grants_what_the_operator_needs_and_nothing_more")
    else {
        return;
    };
    let _guard = common::cluster_lock().await;
    let client = cp.client().await.expect("client");
    common::namespace(&client, RELEASE_NAMESPACE).await;
    for doc in render_rbac() {
        create(&client, &doc, RELEASE_NAMESPACE)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", name_of(&doc)));
    }
    let sa = format!("system:serviceaccount:{RELEASE_NAMESPACE}:kedge");
    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    // (verb, group, resource, subresource, namespace)
    let can = |verb: &'static str,
               group: &'static str,
               resource: &'static str,
               sub: &'static str,
               ns: &'static str| {
        let reviews = reviews.clone();
        let sa = sa.clone();
        async move {
            let r: SubjectAccessReview = serde_json::from_value(json!({
                "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {
                    "user": sa,
                    "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{RELEASE_NAMESPACE}"), "system:authenticated"],
                    "resourceAttributes": {"verb": verb, "group": group, "resource": resource,
                                            "subresource": sub, "namespace": ns},
                }
            }))
            .unwrap();
            let out = reviews.create(&PostParams::default(), &r).await.unwrap();
            out.status.is_some_and(|s| s.allowed)
        }
    };
    let needed: &[(&str, &str, &str, &str, &str)] = &[
        ("list", "keda.sh", "scaledobjects", "", ""),
        ("watch", "keda.sh", "scaledobjects", "", "keda-test"),
        ("patch", "keda.sh", "scaledobjects", "status", "keda-test"),
        (
            "update",
            "keda.sh",
            "scaledobjects",
            "finalizers",
            "keda-test",
        ),
        ("patch", "keda.sh", "scaledobjects", "", "keda-test"),
        ("get", "keda.sh", "triggerauthentications", "", "keda-test"),
        ("watch", "keda.sh", "clustertriggerauthentications", "", ""),
        ("get", "apps", "deployments", "scale", "keda-test"),
        ("update", "apps", "deployments", "scale", "keda-test"),
        ("patch", "apps", "statefulsets", "scale", "keda-test"),
        ("update", "argoproj.io", "rollouts", "scale", "keda-test"),
        ("get", "", "replicationcontrollers", "scale", "keda-test"),
        ("list", "apps", "replicasets", "", ""),
        ("watch", "apps", "daemonsets", "", ""),
        ("list", "", "pods", "", ""),
        ("patch", "", "pods", "", "keda-test"),
        ("delete", "", "pods", "", "keda-test"),
        ("patch", "", "pods", "status", "keda-test"),
        ("create", "", "pods", "eviction", "keda-test"),
        ("create", "", "nodes", "", ""),
        ("update", "", "nodes", "", ""),
        ("delete", "", "nodes", "", ""),
        ("patch", "", "nodes", "status", ""),
        ("watch", "karpenter.sh", "nodepools", "", ""),
        ("patch", "karpenter.sh", "nodepools", "status", ""),
        ("create", "karpenter.sh", "nodeclaims", "", ""),
        ("delete", "karpenter.sh", "nodeclaims", "", ""),
        ("patch", "karpenter.sh", "nodeclaims", "status", ""),
        ("update", "karpenter.sh", "nodeclaims", "finalizers", ""),
        ("list", "karpenter.k8s.aws", "ec2nodeclasses", "", ""),
        ("patch", "karpenter.k8s.aws", "ec2nodeclasses", "status", ""),
        ("get", "", "secrets", "", "keda-test"),
        ("watch", "", "configmaps", "", ""),
        ("create", "", "events", "", "keda-test"),
        ("patch", "events.k8s.io", "events", "", "keda-test"),
        ("list", "policy", "poddisruptionbudgets", "", ""),
        (
            "create",
            "coordination.k8s.io",
            "leases",
            "",
            RELEASE_NAMESPACE,
        ),
        (
            "update",
            "coordination.k8s.io",
            "leases",
            "",
            RELEASE_NAMESPACE,
        ),
        // ScaledJobs and their Jobs.
        ("list", "keda.sh", "scaledjobs", "", ""),
        ("patch", "keda.sh", "scaledjobs", "status", "keda-test"),
        ("update", "keda.sh", "scaledjobs", "finalizers", "keda-test"),
        ("create", "batch", "jobs", "", "keda-test"),
        ("delete", "batch", "jobs", "", "keda-test"),
        ("list", "", "pods", "", "keda-test"),
        ("list", "metrics.k8s.io", "pods", "", "keda-test"),
        // The conversion webhook's certificate.
        ("create", "", "secrets", "", RELEASE_NAMESPACE),
        ("update", "", "secrets", "", RELEASE_NAMESPACE),
    ];
    for &(verb, group, resource, sub, ns) in needed {
        assert!(
            can(verb, group, resource, sub, ns).await,
            "the operator may not {verb} {group}/{resource}/{sub} in {ns:?}, but needs to"
        );
    }
    let forbidden: &[(&str, &str, &str, &str, &str)] = &[
        ("patch", "", "namespaces", "", ""),
        ("delete", "", "namespaces", "", ""),
        (
            "create",
            "rbac.authorization.k8s.io",
            "clusterroles",
            "",
            "",
        ),
        (
            "create",
            "rbac.authorization.k8s.io",
            "rolebindings",
            "",
            "keda-test",
        ),
        ("delete", "apps", "deployments", "", "keda-test"),
        ("patch", "apps", "deployments", "", "keda-test"),
        ("create", "", "secrets", "", "keda-test"),
        ("update", "", "configmaps", "", "keda-test"),
        ("create", "", "pods", "exec", "keda-test"),
        ("create", "", "pods", "", "keda-test"),
        ("get", "", "nodes", "proxy", ""),
        ("create", "", "serviceaccounts", "token", "keda-test"),
        ("update", "coordination.k8s.io", "leases", "", "kube-system"),
        ("delete", "keda.sh", "scaledobjects", "", "keda-test"),
        (
            "create",
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "",
            "",
        ),
        ("delete", "policy", "poddisruptionbudgets", "", "keda-test"),
    ];
    for &(verb, group, resource, sub, ns) in forbidden {
        assert!(
            !can(verb, group, resource, sub, ns).await,
            "the operator may {verb} {group}/{resource}/{sub} in {ns:?}; it must not"
        );
    }
}

/// Without a `helm` binary the whole chart cannot be rendered here; at least every value the
/// templates read exists in values.yaml with the documented defaults, and Chart.yaml is valid.
#[test]
fn chart_values_cover_every_template_reference() {
    let chart = repo_root().join("deploy/helm/kedge");
    let meta: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(chart.join("Chart.yaml")).unwrap())
            .unwrap();
    assert_eq!(meta["apiVersion"], "v2");
    assert_eq!(meta["name"], "kedge");
    let values: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(chart.join("values.yaml")).unwrap())
            .unwrap();
    assert_eq!(values["replicaCount"], 2);
    assert_eq!(values["leaderElection"], true);
    assert_eq!(values["provider"], "kwok");
    assert_eq!(values["metrics"]["port"], 8080);
    let mut refs = 0;
    for entry in std::fs::read_dir(chart.join("templates")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, _) in text.match_indices(".Values.") {
            let rest = &text[i + ".Values.".len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
                .unwrap_or(rest.len());
            let key = rest[..end].trim_end_matches('.');
            let found = key.split('.').try_fold(&values, |v, k| v.get(k)).is_some();
            assert!(
                found,
                "{}: .Values.{key} is not in values.yaml",
                path.display()
            );
            refs += 1;
        }
    }
    assert!(refs > 20, "only {refs} value references found");
    // The Deployment's container contract (what `kedge operator` is started with).
    let deployment = std::fs::read_to_string(chart.join("templates/deployment.yaml")).unwrap();
    for needle in [
        "- operator",
        "- --provider",
        "- --log-level",
        "- --namespace",
        "fieldPath: metadata.name",
        "fieldPath: metadata.namespace",
        "path: /healthz",
        "path: /readyz",
        "name: http-metrics",
    ] {
        assert!(
            deployment.contains(needle),
            "deployment.yaml lacks {needle:?}"
        );
    }
}
