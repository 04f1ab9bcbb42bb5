//! Manifests and a twin builder shared by the local-twin tests (each test uses some of it).
#![allow(dead_code)]

use std::time::Duration;

use clock::Timestamp;
use cluster::local::{ConsumerCommand, LocalCluster, LocalConfig};
use cluster::scenario::Workload;
use engine::{Policy, PolicyName};
use model::karpenter::NodePool;
use model::keda::{ScaledJob, ScaledObject};
use model::quantity::Quantity;
use scalers::memory::MemoryScaler;

pub const SO: &str = r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: consumer, namespace: default}
spec:
  scaleTargetRef: {name: consumer}
  minReplicaCount: 1
  maxReplicaCount: 50
  pollingInterval: 1
  triggers:
  - type: aws-sqs-queue
    metadata:
      queueURL: http://127.0.0.1:9/000000000000/q
      awsEndpoint: http://127.0.0.1:9
      queueLength: "2"
      awsRegion: us-east-1
"#;

pub const POOL: &str = r#"
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: default}
spec:
  template:
    spec:
      requirements:
        - {key: node.kubernetes.io/instance-type, operator: In, values: [m5.xlarge]}
        - {key: karpenter.sh/capacity-type, operator: In, values: [on-demand]}
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
  limits: {cpu: 1000}
"#;

/// A twin of 500m pods on one m5.large (room for three), an m5.xlarge NodePool booting in
/// 15 s, consumers started at once, the trigger read from `metric`. `script` is the stand-in
/// consumer (`sh -c script sh --status-file FILE --consumer-id NAME`).
pub fn twin(
    policy: PolicyName,
    script: &str,
    metric: &MemoryScaler,
    dir: &std::path::Path,
    t0: Timestamp,
) -> LocalCluster {
    let doc = model::manifest::parse_documents(SO).expect("yaml");
    let so: ScaledObject = doc[0].decode().expect("ScaledObject");
    twin_of(Workload::ScaledObject(so), policy, script, metric, dir, t0)
}

/// The same twin for a ScaledJob (`yaml`).
pub fn job_twin(
    yaml: &str,
    script: &str,
    metric: &MemoryScaler,
    dir: &std::path::Path,
    t0: Timestamp,
) -> LocalCluster {
    let doc = model::manifest::parse_documents(yaml).expect("yaml");
    let sj: ScaledJob = doc[0].decode().expect("ScaledJob");
    twin_of(
        Workload::ScaledJob(sj),
        PolicyName::KedaKarpenter,
        script,
        metric,
        dir,
        t0,
    )
}

fn twin_of(
    workload: Workload,
    policy: PolicyName,
    script: &str,
    metric: &MemoryScaler,
    dir: &std::path::Path,
    t0: Timestamp,
) -> LocalCluster {
    let cfg = LocalConfig {
        workload,
        auth: scalers::ResolvedAuth::default(),
        scalers: Some(vec![Box::new(metric.clone())]),
        nodepools: vec![NodePool::from_yaml(POOL).expect("pool")],
        catalog: provision::catalog::Catalog::aws(),
        baseline: vec!["m5.large".into()],
        pod_cpu: Quantity::from_millis(500),
        pod_memory: Quantity::from_mebibytes(32),
        boot_delay: Duration::from_secs(15),
        pod_start: Duration::ZERO,
        policy: Policy::preset(policy),
        consumer: ConsumerCommand {
            program: "sh".into(),
            args: vec!["-c".into(), script.into(), "sh".into()],
            env: vec![],
        },
        pod_dir: dir.to_path_buf(),
        kill_after: Duration::from_secs(10),
        restart_backoff: Duration::from_secs(10),
    };
    LocalCluster::new(cfg, t0).expect("twin")
}
