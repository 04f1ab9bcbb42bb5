//! Shared fixtures for the provision tests (included with `mod common;`).
#![allow(dead_code)]

use model::karpenter::NodePool;
use model::kube::{LabelSelector, Pod, Toleration, TopologySpreadConstraint, WhenUnsatisfiable};
use model::quantity::Quantity;

pub fn pool(name: &str, extra_spec: &str, template_spec_extra: &str) -> NodePool {
    let yaml = format!(
        r#"
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {{name: {name}}}
spec:
  template:
    spec:
      nodeClassRef: {{group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}}
{template_spec_extra}
{extra_spec}
"#
    );
    NodePool::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

pub fn pod(name: &str, cpu_m: i64, mem_mi: i64) -> Pod {
    Pod::with_requests(
        name,
        Quantity::from_millis(cpu_m),
        Quantity::from_mebibytes(mem_mi),
    )
}

pub fn labeled(mut p: Pod, k: &str, v: &str) -> Pod {
    p.metadata.labels.insert(k.into(), v.into());
    p
}

pub fn spread(mut p: Pod, key: &str, skew: i32, sel: (&str, &str)) -> Pod {
    p.spec
        .topology_spread_constraints
        .push(TopologySpreadConstraint {
            max_skew: skew,
            topology_key: key.into(),
            when_unsatisfiable: WhenUnsatisfiable::DoNotSchedule,
            label_selector: Some(LabelSelector::match_labels(&[sel])),
            min_domains: None,
        });
    p
}

pub fn tolerate(mut p: Pod, key: &str) -> Pod {
    p.spec.tolerations.push(Toleration {
        key: key.into(),
        operator: model::kube::TolerationOperator::Exists,
        ..Default::default()
    });
    p
}
