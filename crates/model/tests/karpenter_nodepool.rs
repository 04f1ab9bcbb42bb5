//! NodePool (karpenter.sh/v1 and v1beta1) parsing, defaults, validation and conversion, checked
//! against Karpenter's documented behaviour.

use model::karpenter::{
    ANNOTATION_KUBELET_COMPAT, ConsolidationPolicy, DisruptionReason, KDuration, NodePool,
    validate_document,
};
use model::kube::Operator;

const FULL_V1: &str = r#"
apiVersion: karpenter.sh/v1
kind: NodePool
metadata:
  name: default
spec:
  template:
    metadata:
      labels:
        team: queue
      annotations:
        example.com/owner: payments
    spec:
      nodeClassRef:
        group: karpenter.k8s.aws
        kind: EC2NodeClass
        name: default
      taints:
        - key: example.com/special-taint
          effect: NoSchedule
      startupTaints:
        - key: example.com/another-taint
          effect: NoSchedule
      expireAfter: 720h
      terminationGracePeriod: 48h
      requirements:
        - key: karpenter.k8s.aws/instance-category
          operator: In
          values: ["c", "m", "r"]
          minValues: 2
        - key: karpenter.k8s.aws/instance-family
          operator: In
          values: ["m5","m5d","c5","c5d","c4","r4"]
          minValues: 5
        - key: karpenter.k8s.aws/instance-cpu
          operator: In
          values: ["4", "8", "16", "32"]
        - key: karpenter.k8s.aws/instance-generation
          operator: Gt
          values: ["2"]
        - key: topology.kubernetes.io/zone
          operator: In
          values: ["us-east-1a", "us-east-1b"]
        - key: kubernetes.io/arch
          operator: In
          values: ["arm64", "amd64"]
        - key: karpenter.sh/capacity-type
          operator: In
          values: ["spot", "on-demand"]
  disruption:
    consolidationPolicy: WhenEmptyOrUnderutilized
    consolidateAfter: 1m
    budgets:
    - nodes: "20%"
      reasons:
      - "Empty"
      - "Drifted"
    - nodes: "5"
    - nodes: "0"
      schedule: "@daily"
      duration: 10m
      reasons:
      - "Underutilized"
  limits:
    cpu: "1000"
    memory: 1000Gi
  weight: 10
"#;

fn pool(yaml: &str) -> NodePool {
    NodePool::from_yaml(yaml).unwrap_or_else(|e| panic!("{e}"))
}

fn errors(yaml: &str) -> Vec<String> {
    let v: serde_json::Value = serde_yaml_ng::from_str(yaml).unwrap();
    validate_document(&v)
        .iter()
        .map(|e| e.to_string())
        .collect()
}

const MINIMAL: &str = r#"
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: default}
spec:
  template:
    spec:
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
"#;

#[test]
fn documented_example_nodepool_is_accepted_with_every_field() {
    let p = pool(FULL_V1);
    assert_eq!(p.weight(), 10);
    assert_eq!(p.requirements()[0].min_values, Some(2));
    assert_eq!(p.requirements()[3].operator, Operator::Gt);
    assert_eq!(p.spec.disruption.budgets.len(), 3);
    assert_eq!(
        p.spec.disruption.budgets[0].reasons,
        Some(vec![DisruptionReason::Empty, DisruptionReason::Drifted])
    );
    assert_eq!(
        p.spec.disruption.consolidate_after.get(true),
        Ok(KDuration::Secs(60))
    );
    assert_eq!(p.spec.template.spec.startup_taints.len(), 1);
    assert_eq!(
        p.spec.limits.as_ref().unwrap()["memory"],
        "1000Gi".parse().unwrap()
    );
}

#[test]
fn defaults_match_upstream() {
    let p = pool(MINIMAL);
    assert_eq!(
        p.spec.disruption.consolidation_policy,
        ConsolidationPolicy::WhenEmptyOrUnderutilized
    );
    assert_eq!(
        p.spec.disruption.consolidate_after.get(true),
        Ok(KDuration::Secs(0))
    );
    assert_eq!(
        p.spec.template.spec.expire_after.get(true),
        Ok(KDuration::Secs(720 * 3600))
    );
    assert_eq!(p.spec.disruption.budgets.len(), 1);
    assert_eq!(p.spec.disruption.budgets[0].nodes, "10%");
    assert_eq!(p.weight(), 0);
    assert!(p.spec.limits.is_none());
}

#[test]
fn unknown_field_is_an_error_naming_the_field() {
    let yaml = MINIMAL.replace("nodeClassRef:", "nodeClasRef:");
    let e = errors(&yaml);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("spec.template.spec"), "{e:?}");
    assert!(e[0].contains("nodeClasRef"), "{e:?}");
    let yaml = format!("{MINIMAL}  disruption:\n    consolidationPolicy: WhenIdle\n");
    let e = errors(&yaml);
    assert!(
        e[0].contains("spec.disruption.consolidationPolicy") && e[0].contains("WhenIdle"),
        "{e:?}"
    );
}

#[test]
fn cel_rules_are_enforced_with_field_paths() {
    let yaml = r#"
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: bad}
spec:
  template:
    metadata:
      labels: {karpenter.sh/nodepool: x}
    spec:
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: ""}
      expireAfter: 30d
      requirements:
        - {key: karpenter.k8s.aws/instance-family, operator: In, values: [m5], minValues: 2}
        - {key: karpenter.k8s.aws/instance-cpu, operator: Gt, values: ["a"]}
        - {key: example.com/x, operator: In}
        - {key: kubernetes.io/hostname, operator: Exists}
  disruption:
    consolidateAfter: soon
    budgets:
      - nodes: "101%"
      - nodes: "1"
        schedule: "0 9 * * *"
      - nodes: "1"
        schedule: "0 9 * *"
        duration: 1h
  weight: 0
"#;
    let e = errors(yaml).join("\n");
    for needle in [
        "spec.template.metadata.labels[karpenter.sh/nodepool]",
        "spec.template.spec.nodeClassRef.name",
        "spec.template.spec.expireAfter",
        "spec.template.spec.requirements[0].minValues",
        "spec.template.spec.requirements[1].values: requirements with operator 'Gt' must have a single positive integer value",
        "spec.template.spec.requirements[2].values: requirements with operator 'In' must have a value defined",
        "spec.template.spec.requirements[3].key",
        "spec.disruption.consolidateAfter",
        "spec.disruption.budgets[0].nodes",
        "spec.disruption.budgets[1]: 'schedule' must be set with 'duration'",
        "spec.disruption.budgets[2].schedule",
        "spec.weight",
    ] {
        assert!(e.contains(needle), "missing `{needle}` in:\n{e}");
    }
}

#[test]
fn balanced_policy_and_threshold() {
    let yaml = format!(
        "{MINIMAL}  disruption:\n    consolidationPolicy: Balanced\n    consolidationThreshold: 3\n"
    );
    let p = pool(&yaml);
    assert_eq!(
        p.spec.disruption.consolidation_policy,
        ConsolidationPolicy::Balanced
    );
    assert_eq!(p.spec.disruption.balanced_k(), 3.0);
    let yaml = format!("{MINIMAL}  disruption:\n    consolidationThreshold: 2\n");
    assert!(
        errors(&yaml)
            .join("\n")
            .contains("only allowed with consolidationPolicy: Balanced")
    );
    let yaml = format!("{MINIMAL}  disruption:\n    consolidationPolicy: Balanced\n");
    assert_eq!(
        pool(&yaml).spec.disruption.balanced_k(),
        2.0,
        "default k is 2"
    );
}

const V1BETA1: &str = r#"
apiVersion: karpenter.sh/v1beta1
kind: NodePool
metadata:
  name: default
spec:
  template:
    spec:
      requirements:
        - key: karpenter.sh/capacity-type
          operator: In
          values: ["spot"]
      nodeClassRef:
        apiVersion: karpenter.k8s.aws/v1beta1
        kind: EC2NodeClass
        name: default
      kubelet:
        maxPods: 110
  limits:
    cpu: 1000
  disruption:
    consolidationPolicy: WhenUnderutilized
    expireAfter: 168h
"#;

#[test]
fn v1beta1_is_converted_like_karpenters_webhook() {
    let p = pool(V1BETA1);
    assert_eq!(p.api_version, "karpenter.sh/v1");
    assert_eq!(
        p.spec.disruption.consolidation_policy,
        ConsolidationPolicy::WhenEmptyOrUnderutilized
    );
    assert_eq!(
        p.spec.disruption.consolidate_after.get(true),
        Ok(KDuration::Secs(0))
    );
    assert_eq!(
        p.spec.template.spec.expire_after.get(true),
        Ok(KDuration::Secs(168 * 3600)),
        "expireAfter moves into the template"
    );
    assert_eq!(
        p.spec.template.spec.node_class_ref.group,
        "karpenter.k8s.aws"
    );
    assert_eq!(p.spec.template.spec.node_class_ref.kind, "EC2NodeClass");
    assert!(p.metadata.annotations[ANNOTATION_KUBELET_COMPAT].contains("110"));
    assert_eq!(
        p.spec.limits.as_ref().unwrap()["cpu"],
        "1000".parse().unwrap()
    );
}

#[test]
fn v1beta1_defaults_and_rules() {
    let no_disruption = V1BETA1.split("  disruption:").next().unwrap();
    let p = pool(no_disruption);
    assert_eq!(
        p.spec.disruption.consolidation_policy,
        ConsolidationPolicy::WhenEmptyOrUnderutilized
    );
    assert_eq!(
        p.spec.template.spec.expire_after.get(true),
        Ok(KDuration::Secs(720 * 3600))
    );
    let when_empty_no_after = V1BETA1.replace("WhenUnderutilized", "WhenEmpty");
    assert!(
        errors(&when_empty_no_after)
            .join("")
            .contains("consolidateAfter must be specified")
    );
    let under_with_after = V1BETA1.replace("expireAfter: 168h", "consolidateAfter: 30s");
    assert!(
        errors(&under_with_after)
            .join("")
            .contains("cannot be combined")
    );
    let when_empty = V1BETA1
        .replace("WhenUnderutilized", "WhenEmpty")
        .replace("expireAfter: 168h", "consolidateAfter: 30s");
    let p = pool(&when_empty);
    assert_eq!(
        p.spec.disruption.consolidation_policy,
        ConsolidationPolicy::WhenEmpty
    );
    assert_eq!(
        p.spec.disruption.consolidate_after.get(true),
        Ok(KDuration::Secs(30))
    );
}

#[test]
fn unsupported_api_version_is_named() {
    let e = errors(&MINIMAL.replace("karpenter.sh/v1", "karpenter.sh/v2"));
    assert!(e[0].starts_with("apiVersion:"), "{e:?}");
}

#[test]
fn template_hash_changes_with_labels_not_with_requirements() {
    let a = pool(FULL_V1);
    let mut b = a.clone();
    b.spec.template.spec.requirements.pop();
    assert_eq!(a.template_hash(), b.template_hash());
    b.spec
        .template
        .metadata
        .labels
        .insert("team".into(), "other".into());
    assert_ne!(a.template_hash(), b.template_hash());
}

#[test]
fn nodeclaim_parses_with_conditions() {
    let yaml = r#"
apiVersion: karpenter.sh/v1
kind: NodeClaim
metadata: {name: default-abc}
spec:
  nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
  requirements:
    - {key: node.kubernetes.io/instance-type, operator: In, values: [m5.large, m5.xlarge]}
  resources: {requests: {cpu: 1500m, pods: "3"}}
status:
  nodeName: ip-10-0-0-1
  providerID: aws:///us-east-1a/i-123
  conditions:
    - {type: Launched, status: "True"}
    - {type: Registered, status: "True"}
"#;
    let v: serde_json::Value = serde_yaml_ng::from_str(yaml).unwrap();
    assert!(
        validate_document(&v).is_empty(),
        "{:?}",
        validate_document(&v)
    );
    let nc: model::karpenter::NodeClaim = serde_json::from_value(v).unwrap();
    assert_eq!(nc.phase(), model::karpenter::NodeClaimPhase::Registered);
}
