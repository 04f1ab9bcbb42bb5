//! The AWS provider against a mock EC2 API at the HTTP boundary (ApiServerVerifier style:
//! each scenario is the exact sequence of EC2 actions with their key parameters, answered
//! with EC2's XML), and the interruption queue against a real `kedge serve` SQS endpoint.

mod ec2_mock;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clock::{ManualClock, Timestamp};
use ec2_mock::*;
use operator::crd;
use operator::provider::aws::ec2::{Ec2Client, Ec2Config, RetryPolicy};
use operator::provider::aws::interruption::{
    InterruptionHandler, InterruptionKind, PollSettings, run_interruption_with,
};
use operator::provider::aws::nodeclass::{self, AmiSettings};
use operator::provider::aws::{Aws, AwsSettings, StaticNodeClasses};
use operator::provider::{CloudProvider, LaunchRequest, ProviderError};
use serde_json::json;

/// 2026-11-28T21:00:00Z.
const START: u64 = 1_795_899_600;
const LIMIT: Duration = Duration::from_secs(20);

struct Fixture {
    aws: Aws,
    mock: Ec2Mock,
    clock: ManualClock,
    nodeclasses: StaticNodeClasses,
}

fn ec2_client(url: &str, clock: &ManualClock) -> Ec2Client {
    Ec2Client::with_static_keys(
        Ec2Config {
            endpoint: url.to_string(),
            region: "us-east-1".into(),
            // Millisecond backoff: the schedule is what is tested, not the waiting.
            retry: RetryPolicy {
                max_attempts: 3,
                base: Duration::from_millis(1),
                max_backoff: Duration::from_millis(4),
            },
        },
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        Arc::new(clock.clone()),
    )
    .expect("client")
}

fn ready_nodeclass() -> crd::EC2NodeClass {
    serde_json::from_value(json!({
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": "default"},
        "spec": {
            "role": "KarpenterNodeRole-demo",
            "amiSelectorTerms": [{"alias": "al2023@latest"}],
            "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "demo"}}],
            "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "demo"}}],
            "tags": {"team": "payments"},
            "userData": "#!/bin/bash\necho hello\n",
            "blockDeviceMappings": [{"deviceName": "/dev/xvda", "rootVolume": true,
                "ebs": {"volumeSize": "50Gi", "volumeType": "gp3", "encrypted": true}}]
        },
        "status": {
            "subnets": [
                {"id": "subnet-a", "zone": "us-east-1a", "zoneID": "use1-az1"},
                {"id": "subnet-b", "zone": "us-east-1b", "zoneID": "use1-az2"},
                {"id": "subnet-c", "zone": "us-east-1c", "zoneID": "use1-az3"}
            ],
            "securityGroups": [{"id": "sg-1", "name": "nodes"}],
            "amis": [
                {"id": "ami-0amd64", "name": "amazon-eks-node-al2023-x86_64-standard-1.31-v20261101",
                 "requirements": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]},
                {"id": "ami-0arm64", "name": "amazon-eks-node-al2023-arm64-standard-1.31-v20261101",
                 "requirements": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]}]}
            ],
            "instanceProfile": "KarpenterNodeRole-demo",
            "conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}]
        }
    }))
    .expect("nodeclass")
}

async fn fixture() -> Fixture {
    let clock = ManualClock::new(Timestamp::from_secs(START));
    let mock = Ec2Mock::start().await;
    let nodeclasses = StaticNodeClasses::default();
    nodeclasses.insert(ready_nodeclass());
    let aws = Aws::new(
        AwsSettings {
            cluster_name: "demo".into(),
            region: "us-east-1".into(),
            endpoint: Some(mock.url.clone()),
            ..Default::default()
        },
        ec2_client(&mock.url, &clock),
        Arc::new(nodeclasses.clone()),
        Arc::new(clock.clone()),
    );
    Fixture {
        aws,
        mock,
        clock,
        nodeclasses,
    }
}

/// A launch request for `types`, allowing `capacity_types` (empty: no requirement) in
/// `zones` (empty: no requirement).
fn request(claim: &str, types: &[&str], capacity_types: &[&str], zones: &[&str]) -> LaunchRequest {
    let mut reqs =
        vec![json!({"key": "node.kubernetes.io/instance-type", "operator": "In", "values": types})];
    if !capacity_types.is_empty() {
        reqs.push(json!({"key": "karpenter.sh/capacity-type", "operator": "In", "values": capacity_types}));
    }
    if !zones.is_empty() {
        reqs.push(json!({"key": "topology.kubernetes.io/zone", "operator": "In", "values": zones}));
    }
    let claim_obj: model::karpenter::NodeClaim = serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodeClaim",
        "metadata": {"name": claim, "labels": {"karpenter.sh/nodepool": "workers"}},
        "spec": {
            "requirements": reqs,
            "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"}
        }
    }))
    .expect("claim");
    LaunchRequest {
        claim_name: claim.into(),
        nodepool: "workers".into(),
        node_class: Some("default".into()),
        claim: claim_obj,
        instance_types: types.iter().map(|s| s.to_string()).collect(),
        labels: BTreeMap::from([("team".to_string(), "payments".to_string())]),
        taints: vec![],
        startup_taints: vec![],
    }
}

async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("scenario timed out: an expected EC2 call never came")
}

/// The first launch of a NodeClass: the launch template is looked up (not found) and
/// created. Returns the template name.
async fn expect_new_launch_template(mock: &mut Ec2Mock, image: &str) -> String {
    let d = mock
        .expect(
            "DescribeLaunchTemplates",
            400,
            &error_xml(
                "InvalidLaunchTemplateName.NotFoundException",
                "At least one of the launch templates specified in the request does not exist.",
            ),
        )
        .await;
    let name = d.param("LaunchTemplateName.1").to_string();
    assert!(name.starts_with("karpenter.k8s.aws/"), "{name}");
    let c = mock
        .expect(
            "CreateLaunchTemplate",
            200,
            &create_launch_template_xml("lt-0123456789abcdef0", &name),
        )
        .await;
    assert_eq!(c.param("LaunchTemplateName"), name);
    assert_eq!(c.param("LaunchTemplateData.ImageId"), image);
    name
}

fn assert_override_types(fleet: &Received, want: &[&str], zones: &[&str]) {
    let types = fleet.indexed("LaunchTemplateConfigs.1.Overrides", "InstanceType");
    let azs = fleet.indexed("LaunchTemplateConfigs.1.Overrides", "AvailabilityZone");
    let mut pairs: Vec<(String, String)> = types.into_iter().zip(azs).collect();
    pairs.sort();
    let mut expected: Vec<(String, String)> = want
        .iter()
        .flat_map(|t| zones.iter().map(|z| (t.to_string(), z.to_string())))
        .collect();
    expected.sort();
    assert_eq!(pairs, expected);
}

#[tokio::test]
async fn launch_on_demand_creates_the_template_then_the_fleet() {
    let Fixture { aws, mut mock, .. } = fixture().await;
    let req = request(
        "workers-abc12",
        &["m5.large", "m5.xlarge"],
        &["on-demand"],
        &[],
    );
    let (res, ()) = within(async {
        tokio::join!(aws.create(&req), async {
            let d = mock
                .expect(
                    "DescribeLaunchTemplates",
                    400,
                    &error_xml(
                        "InvalidLaunchTemplateName.NotFoundException",
                        "At least one of the launch templates specified in the request does not exist.",
                    ),
                )
                .await;
            let name = d.param("LaunchTemplateName.1").to_string();
            let c = mock
                .expect(
                    "CreateLaunchTemplate",
                    200,
                    &create_launch_template_xml("lt-0123456789abcdef0", &name),
                )
                .await;
            assert_eq!(c.param("LaunchTemplateName"), name);
            assert_eq!(c.param("LaunchTemplateData.ImageId"), "ami-0amd64");
            assert_eq!(
                c.param("LaunchTemplateData.IamInstanceProfile.Name"),
                "KarpenterNodeRole-demo"
            );
            assert_eq!(c.param("LaunchTemplateData.SecurityGroupId.1"), "sg-1");
            assert_eq!(
                c.param("LaunchTemplateData.UserData"),
                "IyEvYmluL2Jhc2gKZWNobyBoZWxsbwo="
            );
            assert_eq!(c.param("LaunchTemplateData.MetadataOptions.HttpTokens"), "required");
            assert_eq!(
                c.param("LaunchTemplateData.BlockDeviceMapping.1.DeviceName"),
                "/dev/xvda"
            );
            assert_eq!(
                c.param("LaunchTemplateData.BlockDeviceMapping.1.Ebs.VolumeSize"),
                "50"
            );
            assert_eq!(
                c.param("LaunchTemplateData.BlockDeviceMapping.1.Ebs.VolumeType"),
                "gp3"
            );
            assert_eq!(
                c.tags_for("launch-template").get("kubernetes.io/cluster/demo").map(String::as_str),
                Some("owned")
            );

            let f = mock
                .expect(
                    "CreateFleet",
                    200,
                    &create_fleet_xml(
                        &[("i-0abc", "m5.large", "us-east-1b", "subnet-b", "on-demand")],
                        &[],
                    ),
                )
                .await;
            assert_eq!(f.param("Type"), "instant");
            assert_eq!(
                f.param("LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateName"),
                name
            );
            assert_eq!(
                f.param("LaunchTemplateConfigs.1.LaunchTemplateSpecification.Version"),
                "$Latest"
            );
            assert!(f.get("LaunchTemplateConfigs.2.LaunchTemplateSpecification.LaunchTemplateName").is_none());
            assert_override_types(
                &f,
                &["m5.large", "m5.xlarge"],
                &["us-east-1a", "us-east-1b", "us-east-1c"],
            );
            assert_eq!(
                f.param("LaunchTemplateConfigs.1.Overrides.1.SubnetId"),
                "subnet-a"
            );
            assert_eq!(
                f.param("LaunchTemplateConfigs.1.Overrides.1.ImageId"),
                "ami-0amd64"
            );
            assert_eq!(f.param("TargetCapacitySpecification.TotalTargetCapacity"), "1");
            assert_eq!(
                f.param("TargetCapacitySpecification.DefaultTargetCapacityType"),
                "on-demand"
            );
            assert_eq!(f.param("OnDemandOptions.AllocationStrategy"), "lowest-price");
            assert!(f.get("SpotOptions.AllocationStrategy").is_none());
            for rt in ["instance", "volume"] {
                let tags = f.tags_for(rt);
                let want: BTreeMap<String, String> = [
                    ("karpenter.sh/nodeclaim", "workers-abc12"),
                    ("karpenter.sh/nodepool", "workers"),
                    ("kubernetes.io/cluster/demo", "owned"),
                    ("karpenter.k8s.aws/ec2nodeclass", "default"),
                    ("eks:eks-cluster-name", "demo"),
                    ("team", "payments"),
                ]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
                assert_eq!(tags, want, "{rt} tags");
            }
        })
    })
    .await;
    let inst = res.expect("launched");
    assert_eq!(inst.provider_id, "aws:///us-east-1b/i-0abc");
    assert_eq!(inst.instance_type, "m5.large");
    assert_eq!(inst.zone, "us-east-1b");
    assert_eq!(inst.capacity_type, "on-demand");
    assert_eq!(inst.image_id.as_deref(), Some("ami-0amd64"));
    assert_eq!(inst.claim_name.as_deref(), Some("workers-abc12"));
    let m5 = aws.catalog();
    let m5 = m5.get("m5.large").unwrap();
    assert_eq!(inst.capacity, m5.capacity.to_list());
    assert_eq!(inst.allocatable, m5.allocatable.to_list());
    for (k, v) in [
        ("node.kubernetes.io/instance-type", "m5.large"),
        ("topology.kubernetes.io/zone", "us-east-1b"),
        ("topology.kubernetes.io/region", "us-east-1"),
        ("karpenter.sh/capacity-type", "on-demand"),
        ("karpenter.sh/nodepool", "workers"),
        ("kubernetes.io/arch", "amd64"),
        ("karpenter.k8s.aws/instance-family", "m5"),
        ("team", "payments"),
    ] {
        assert_eq!(inst.labels.get(k).map(String::as_str), Some(v), "label {k}");
    }

    // The template is remembered: the next launch goes straight to CreateFleet.
    let req2 = request(
        "workers-def34",
        &["m5.large"],
        &["on-demand"],
        &["us-east-1a"],
    );
    let (res, ()) = within(async {
        tokio::join!(aws.create(&req2), async {
            let f = mock
                .expect(
                    "CreateFleet",
                    200,
                    &create_fleet_xml(
                        &[("i-0def", "m5.large", "us-east-1a", "subnet-a", "on-demand")],
                        &[],
                    ),
                )
                .await;
            assert_override_types(&f, &["m5.large"], &["us-east-1a"]);
        })
    })
    .await;
    assert_eq!(res.unwrap().provider_id, "aws:///us-east-1a/i-0def");
    mock.expect_no_more(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn spot_is_preferred_when_the_claim_allows_it() {
    let Fixture { aws, mut mock, .. } = fixture().await;
    let req = request(
        "workers-spot1",
        &["m5.large", "m6g.large"],
        &["spot", "on-demand"],
        &["us-east-1c"],
    );
    let (res, ()) = within(async {
        tokio::join!(aws.create(&req), async {
            // Two architectures: one launch template config per AMI.
            let lt_amd = expect_new_launch_template(&mut mock, "ami-0amd64").await;
            let lt_arm = expect_new_launch_template(&mut mock, "ami-0arm64").await;
            assert_ne!(lt_amd, lt_arm);
            let f = mock
                .expect(
                    "CreateFleet",
                    200,
                    &create_fleet_xml(
                        &[("i-0spot", "m6g.large", "us-east-1c", "subnet-c", "spot")],
                        &[],
                    ),
                )
                .await;
            assert_eq!(
                f.param("TargetCapacitySpecification.DefaultTargetCapacityType"),
                "spot"
            );
            assert_eq!(
                f.param("SpotOptions.AllocationStrategy"),
                "price-capacity-optimized"
            );
            assert!(f.get("OnDemandOptions.AllocationStrategy").is_none());
            assert_eq!(
                f.param("LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateName"),
                lt_amd
            );
            assert_eq!(
                f.param("LaunchTemplateConfigs.1.Overrides.1.InstanceType"),
                "m5.large"
            );
            assert_eq!(
                f.param("LaunchTemplateConfigs.2.LaunchTemplateSpecification.LaunchTemplateName"),
                lt_arm
            );
            assert_eq!(
                f.param("LaunchTemplateConfigs.2.Overrides.1.InstanceType"),
                "m6g.large"
            );
            assert_eq!(
                f.param("LaunchTemplateConfigs.2.Overrides.1.ImageId"),
                "ami-0arm64"
            );
        })
    })
    .await;
    let inst = res.unwrap();
    assert_eq!(inst.capacity_type, "spot");
    assert_eq!(inst.labels["karpenter.sh/capacity-type"], "spot");
    assert_eq!(inst.labels["kubernetes.io/arch"], "arm64");
}

#[tokio::test]
async fn insufficient_capacity_is_cached_and_the_rest_is_tried() {
    let Fixture { aws, mut mock, .. } = fixture().await;
    let req = request(
        "workers-ice01",
        &["m5.large", "m5.xlarge", "m5.2xlarge"],
        &["on-demand"],
        &["us-east-1a"],
    );
    let (res, ()) = within(async {
        tokio::join!(aws.create(&req), async {
            expect_new_launch_template(&mut mock, "ami-0amd64").await;
            let f1 = mock
                .expect(
                    "CreateFleet",
                    200,
                    &create_fleet_xml(
                        &[],
                        &[
                            (
                                "InsufficientInstanceCapacity",
                                "m5.large",
                                "us-east-1a",
                                "subnet-a",
                                "on-demand",
                            ),
                            (
                                "InsufficientInstanceCapacity",
                                "m5.xlarge",
                                "us-east-1a",
                                "subnet-a",
                                "on-demand",
                            ),
                        ],
                    ),
                )
                .await;
            assert_override_types(
                &f1,
                &["m5.large", "m5.xlarge", "m5.2xlarge"],
                &["us-east-1a"],
            );
            let f2 = mock
                .expect(
                    "CreateFleet",
                    200,
                    &create_fleet_xml(
                        &[(
                            "i-0big",
                            "m5.2xlarge",
                            "us-east-1a",
                            "subnet-a",
                            "on-demand",
                        )],
                        &[],
                    ),
                )
                .await;
            assert_override_types(&f2, &["m5.2xlarge"], &["us-east-1a"]);
        })
    })
    .await;
    assert_eq!(res.unwrap().instance_type, "m5.2xlarge");

    // The planner's catalog no longer offers the refused offerings (and only those).
    let cat = aws.catalog();
    let offering = |t: &str, z: &str, ct: &str| {
        cat.get(t)
            .unwrap()
            .offerings
            .iter()
            .find(|o| &*o.zone == z && &*o.capacity_type == ct)
            .unwrap()
            .available
    };
    assert!(!offering("m5.large", "us-east-1a", "on-demand"));
    assert!(!offering("m5.xlarge", "us-east-1a", "on-demand"));
    assert!(offering("m5.large", "us-east-1a", "spot"));
    assert!(offering("m5.large", "us-east-1b", "on-demand"));
    assert!(offering("m5.2xlarge", "us-east-1a", "on-demand"));
    mock.expect_no_more(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn spot_capacity_errors_fall_back_to_on_demand() {
    let Fixture { aws, mut mock, .. } = fixture().await;
    let req = request("workers-fb001", &["m5.large"], &["spot", "on-demand"], &[]);
    let (res, ()) = within(async {
        tokio::join!(aws.create(&req), async {
            expect_new_launch_template(&mut mock, "ami-0amd64").await;
            let f1 = mock
                .expect(
                    "CreateFleet",
                    200,
                    &create_fleet_xml(
                        &[],
                        &[(
                            "MaxSpotInstanceCountExceeded",
                            "m5.large",
                            "us-east-1a",
                            "subnet-a",
                            "spot",
                        )],
                    ),
                )
                .await;
            assert_eq!(
                f1.param("TargetCapacitySpecification.DefaultTargetCapacityType"),
                "spot"
            );
            // Spot and on-demand templates are distinct (capacity type is part of the key).
            expect_new_launch_template(&mut mock, "ami-0amd64").await;
            let f2 = mock
                .expect(
                    "CreateFleet",
                    200,
                    &create_fleet_xml(
                        &[("i-0od", "m5.large", "us-east-1b", "subnet-b", "on-demand")],
                        &[],
                    ),
                )
                .await;
            assert_eq!(
                f2.param("TargetCapacitySpecification.DefaultTargetCapacityType"),
                "on-demand"
            );
            assert_eq!(
                f2.param("OnDemandOptions.AllocationStrategy"),
                "lowest-price"
            );
            assert_override_types(
                &f2,
                &["m5.large"],
                &["us-east-1a", "us-east-1b", "us-east-1c"],
            );
        })
    })
    .await;
    assert_eq!(res.unwrap().capacity_type, "on-demand");
    // MaxSpotInstanceCountExceeded takes all of spot out, not just the one offering.
    assert!(
        aws.unavailable_offerings()
            .is_unavailable("c5.large", "us-east-1c", "spot")
    );
}

#[tokio::test]
async fn all_offerings_refused_is_insufficient_capacity_until_the_cache_expires() {
    let Fixture {
        aws,
        mut mock,
        clock,
        ..
    } = fixture().await;
    let req = request(
        "workers-ice02",
        &["m5.large"],
        &["on-demand"],
        &["us-east-1a"],
    );
    let ice = create_fleet_xml(
        &[],
        &[(
            "InsufficientInstanceCapacity",
            "m5.large",
            "us-east-1a",
            "subnet-a",
            "on-demand",
        )],
    );
    let (res, ()) = within(async {
        tokio::join!(aws.create(&req), async {
            expect_new_launch_template(&mut mock, "ami-0amd64").await;
            mock.expect("CreateFleet", 200, &ice).await;
        })
    })
    .await;
    match res {
        Err(ProviderError::InsufficientCapacity(msg)) => {
            assert!(msg.contains("all 1 offerings"), "{msg}")
        }
        other => panic!("expected InsufficientCapacity, got {other:?}"),
    }
    // Within the TTL: refused without asking EC2.
    clock.advance(Duration::from_secs(179));
    let res = within(aws.create(&req)).await;
    assert!(
        matches!(res, Err(ProviderError::InsufficientCapacity(_))),
        "{res:?}"
    );
    mock.expect_no_more(Duration::from_millis(100)).await;
    // After 3 minutes the offering is tried again.
    clock.advance(Duration::from_secs(1));
    assert!(
        aws.catalog()
            .get("m5.large")
            .unwrap()
            .offerings
            .iter()
            .all(|o| o.available)
    );
    let (res, ()) = within(async {
        tokio::join!(aws.create(&req), async {
            mock.expect(
                "CreateFleet",
                200,
                &create_fleet_xml(
                    &[("i-0back", "m5.large", "us-east-1a", "subnet-a", "on-demand")],
                    &[],
                ),
            )
            .await;
        })
    })
    .await;
    assert_eq!(res.unwrap().provider_id, "aws:///us-east-1a/i-0back");
}

#[tokio::test]
async fn at_most_sixty_instance_types_per_fleet() {
    let Fixture { aws, mut mock, .. } = fixture().await;
    let cat = aws.catalog();
    let types: Vec<&str> = cat
        .types
        .iter()
        .filter(|t| {
            !t.offerings.is_empty()
                && t.requirements
                    .get("kubernetes.io/arch")
                    .and_then(|r| r.single())
                    == Some("amd64")
        })
        .map(|t| t.name.as_str())
        .take(75)
        .collect();
    assert_eq!(types.len(), 75);
    let req = request("workers-many1", &types, &["on-demand"], &["us-east-1a"]);
    let (res, ()) = within(async {
        tokio::join!(aws.create(&req), async {
            expect_new_launch_template(&mut mock, "ami-0amd64").await;
            let f = mock
                .expect(
                    "CreateFleet",
                    200,
                    &create_fleet_xml(
                        &[("i-0many", types[0], "us-east-1a", "subnet-a", "on-demand")],
                        &[],
                    ),
                )
                .await;
            let sent = f.indexed("LaunchTemplateConfigs.1.Overrides", "InstanceType");
            assert_eq!(sent.len(), 60);
            // The first 60 in the planner's order (cheapest first).
            assert_eq!(
                sent,
                types[..60]
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
            );
        })
    })
    .await;
    res.unwrap();
}

#[tokio::test]
async fn terminate_and_already_gone() {
    let Fixture { aws, mut mock, .. } = fixture().await;
    let (res, ()) = within(async {
        tokio::join!(aws.delete("aws:///us-east-1b/i-0abc"), async {
            let t = mock
                .expect(
                    "TerminateInstances",
                    200,
                    &terminate_xml("i-0abc", "running", "shutting-down"),
                )
                .await;
            assert_eq!(
                t.params,
                BTreeMap::from([("InstanceId.1".to_string(), "i-0abc".to_string())])
            );
        })
    })
    .await;
    res.expect("terminated");

    let (res, ()) = within(async {
        tokio::join!(aws.delete("aws:///us-east-1b/i-0gone"), async {
            mock.expect(
                "TerminateInstances",
                400,
                &error_xml(
                    "InvalidInstanceID.NotFound",
                    "The instance ID 'i-0gone' does not exist",
                ),
            )
            .await;
        })
    })
    .await;
    assert!(matches!(res, Err(ProviderError::NotFound(_))), "{res:?}");

    let (res, ()) = within(async {
        tokio::join!(aws.delete("aws:///us-east-1b/i-0old"), async {
            mock.expect(
                "TerminateInstances",
                200,
                &terminate_xml("i-0old", "terminated", "terminated"),
            )
            .await;
        })
    })
    .await;
    assert!(matches!(res, Err(ProviderError::NotFound(_))), "{res:?}");

    // Not an AWS provider ID: refused without a call.
    let res = aws.delete("kwok://node-1").await;
    assert!(matches!(res, Err(ProviderError::Invalid(_))), "{res:?}");
    mock.expect_no_more(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn list_filters_by_cluster_and_pages() {
    let Fixture { aws, mut mock, .. } = fixture().await;
    let tags: &[(&str, &str)] = &[
        ("karpenter.sh/nodeclaim", "workers-abc12"),
        ("karpenter.sh/nodepool", "workers"),
        ("kubernetes.io/cluster/demo", "owned"),
    ];
    let (res, ()) = within(async {
        tokio::join!(aws.list(), async {
            let p1 = mock
                .expect(
                    "DescribeInstances",
                    200,
                    &describe_instances_xml(
                        &[("i-01", "m5.large", "us-east-1a", "running", None, tags)],
                        Some("page-2"),
                    ),
                )
                .await;
            let want: BTreeMap<String, String> = [
                ("Filter.1.Name", "tag:kubernetes.io/cluster/demo"),
                ("Filter.1.Value.1", "owned"),
                ("Filter.2.Name", "tag-key"),
                ("Filter.2.Value.1", "karpenter.sh/nodepool"),
                ("Filter.3.Name", "instance-state-name"),
                ("Filter.3.Value.1", "pending"),
                ("Filter.3.Value.2", "running"),
                ("Filter.3.Value.3", "stopping"),
                ("Filter.3.Value.4", "stopped"),
                ("Filter.3.Value.5", "shutting-down"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            assert_eq!(p1.params, want);
            let p2 = mock
                .expect(
                    "DescribeInstances",
                    200,
                    &describe_instances_xml(
                        &[(
                            "i-02",
                            "m5.xlarge",
                            "us-east-1c",
                            "pending",
                            Some("spot"),
                            tags,
                        )],
                        None,
                    ),
                )
                .await;
            assert_eq!(p2.param("NextToken"), "page-2");
        })
    })
    .await;
    let list = res.unwrap();
    assert_eq!(
        list.iter()
            .map(|i| i.provider_id.as_str())
            .collect::<Vec<_>>(),
        vec!["aws:///us-east-1a/i-01", "aws:///us-east-1c/i-02"]
    );
    assert_eq!(list[0].capacity_type, "on-demand");
    assert_eq!(list[1].capacity_type, "spot");
    assert_eq!(list[1].state, "pending");
    assert_eq!(list[0].claim_name.as_deref(), Some("workers-abc12"));
    assert_eq!(list[0].labels["karpenter.sh/nodepool"], "workers");

    // get: by ID; a terminated instance is gone.
    let (res, ()) = within(async {
        tokio::join!(aws.get("aws:///us-east-1a/i-01"), async {
            let g = mock
                .expect(
                    "DescribeInstances",
                    200,
                    &describe_instances_xml(
                        &[("i-01", "m5.large", "us-east-1a", "running", None, tags)],
                        None,
                    ),
                )
                .await;
            assert_eq!(
                g.params,
                BTreeMap::from([("InstanceId.1".to_string(), "i-01".to_string())])
            );
        })
    })
    .await;
    assert_eq!(res.unwrap().state, "running");
    let (res, ()) = within(async {
        tokio::join!(aws.get("aws:///us-east-1a/i-01"), async {
            mock.expect(
                "DescribeInstances",
                200,
                &describe_instances_xml(
                    &[("i-01", "m5.large", "us-east-1a", "terminated", None, tags)],
                    None,
                ),
            )
            .await;
        })
    })
    .await;
    assert!(matches!(res, Err(ProviderError::NotFound(_))), "{res:?}");
    let (res, ()) = within(async {
        tokio::join!(aws.get("aws:///us-east-1a/i-09"), async {
            mock.expect(
                "DescribeInstances",
                400,
                &error_xml(
                    "InvalidInstanceID.NotFound",
                    "The instance ID 'i-09' does not exist",
                ),
            )
            .await;
        })
    })
    .await;
    assert!(matches!(res, Err(ProviderError::NotFound(_))), "{res:?}");
}

#[tokio::test]
async fn throttling_is_retried_then_given_up() {
    let Fixture { aws, mut mock, .. } = fixture().await;
    let throttled = error_xml("RequestLimitExceeded", "Request limit exceeded.");
    let (res, ()) = within(async {
        tokio::join!(aws.delete("aws:///us-east-1a/i-0t"), async {
            mock.expect("TerminateInstances", 503, &throttled).await;
            mock.expect("TerminateInstances", 500, "<html>internal</html>")
                .await;
            mock.expect(
                "TerminateInstances",
                200,
                &terminate_xml("i-0t", "running", "shutting-down"),
            )
            .await;
        })
    })
    .await;
    res.expect("third attempt succeeds");

    // Three attempts, then the throttling error is reported (retryable later).
    let (res, ()) = within(async {
        tokio::join!(aws.delete("aws:///us-east-1a/i-0t"), async {
            for _ in 0..3 {
                mock.expect("TerminateInstances", 503, &throttled).await;
            }
        })
    })
    .await;
    match res {
        Err(ProviderError::Api(msg)) => assert!(msg.contains("RequestLimitExceeded"), "{msg}"),
        other => panic!("expected Api error, got {other:?}"),
    }
    // A client error is not retried.
    let (res, ()) = within(async {
        tokio::join!(aws.delete("aws:///us-east-1a/i-0t"), async {
            mock.expect(
                "TerminateInstances",
                403,
                &error_xml(
                    "UnauthorizedOperation",
                    "You are not authorized to perform this operation.",
                ),
            )
            .await;
        })
    })
    .await;
    assert!(matches!(res, Err(ProviderError::Invalid(_))), "{res:?}");
    mock.expect_no_more(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn a_retried_create_fleet_keeps_its_client_token() {
    let Fixture { aws, mut mock, .. } = fixture().await;
    let req = request(
        "workers-tok01",
        &["m5.large"],
        &["on-demand"],
        &["us-east-1a"],
    );
    let (res, ()) = within(async {
        tokio::join!(aws.create(&req), async {
            expect_new_launch_template(&mut mock, "ami-0amd64").await;
            // The answer is lost (a 5xx from a proxy): the retry must be the same request,
            // so EC2 recognises it and does not launch a second instance.
            let first = mock
                .expect("CreateFleet", 502, "<html>bad gateway</html>")
                .await;
            let second = mock
                .expect(
                    "CreateFleet",
                    200,
                    &create_fleet_xml(
                        &[("i-0tok", "m5.large", "us-east-1a", "subnet-a", "on-demand")],
                        &[],
                    ),
                )
                .await;
            let token = first.param("ClientToken");
            assert!(token.starts_with("workers-tok01-"), "{token}");
            assert!(token.len() <= 64);
            assert_eq!(first.params, second.params);
        })
    })
    .await;
    res.unwrap();
    // A new launch gets a new token.
    let (res, ()) = within(async {
        tokio::join!(aws.create(&req), async {
            let f = mock
                .expect(
                    "CreateFleet",
                    200,
                    &create_fleet_xml(
                        &[("i-0tok2", "m5.large", "us-east-1a", "subnet-a", "on-demand")],
                        &[],
                    ),
                )
                .await;
            assert_eq!(
                f.param("ClientToken"),
                format!("workers-tok01-{}000-1", START)
            );
        })
    })
    .await;
    res.unwrap();
}

#[tokio::test]
async fn a_deleted_launch_template_is_recreated_on_the_next_launch() {
    let Fixture { aws, mut mock, .. } = fixture().await;
    let req = request(
        "workers-lt001",
        &["m5.large"],
        &["on-demand"],
        &["us-east-1a"],
    );
    let ok = create_fleet_xml(
        &[("i-0lt", "m5.large", "us-east-1a", "subnet-a", "on-demand")],
        &[],
    );
    let (res, ()) = within(async {
        tokio::join!(aws.create(&req), async {
            expect_new_launch_template(&mut mock, "ami-0amd64").await;
            mock.expect("CreateFleet", 200, &ok).await;
        })
    })
    .await;
    res.unwrap();
    let (res, ()) = within(async {
        tokio::join!(aws.create(&req), async {
            mock.expect(
                "CreateFleet",
                400,
                &error_xml(
                    "InvalidLaunchTemplateName.NotFoundException",
                    "The specified launch template, with template name karpenter.k8s.aws/x, does not exist.",
                ),
            )
            .await;
        })
    })
    .await;
    assert!(matches!(res, Err(ProviderError::Api(_))), "{res:?}");
    let (res, ()) = within(async {
        tokio::join!(aws.create(&req), async {
            expect_new_launch_template(&mut mock, "ami-0amd64").await;
            mock.expect("CreateFleet", 200, &ok).await;
        })
    })
    .await;
    res.unwrap();
}

#[tokio::test]
async fn a_claim_without_usable_capacity_types_is_refused_without_a_call() {
    let Fixture { aws, mut mock, .. } = fixture().await;
    let req = request("workers-res01", &["m5.large"], &["reserved"], &[]);
    match aws.create(&req).await {
        Err(ProviderError::InsufficientCapacity(m)) => {
            assert!(m.contains("allows neither spot nor on-demand"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    let req = request(
        "workers-zone1",
        &["m5.large"],
        &["on-demand"],
        &["eu-west-1a"],
    );
    match aws.create(&req).await {
        Err(ProviderError::InsufficientCapacity(m)) => {
            assert!(
                m.contains("no subnet of the NodeClass is in an allowed zone"),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
    mock.expect_no_more(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn malformed_xml_is_a_clear_error() {
    let Fixture { aws, mut mock, .. } = fixture().await;
    let (res, ()) = within(async {
        tokio::join!(aws.list(), async {
            mock.expect("DescribeInstances", 200, "<DescribeInstancesResponse><reservationSet><item><instancesSet><item><instanceState>")
                .await;
        })
    })
    .await;
    match res {
        Err(ProviderError::Api(msg)) => {
            assert!(
                msg.starts_with("EC2 DescribeInstances: unreadable response:"),
                "{msg}"
            )
        }
        other => panic!("expected Api error, got {other:?}"),
    }
    let req = request(
        "workers-bad01",
        &["m5.large"],
        &["on-demand"],
        &["us-east-1a"],
    );
    let (res, ()) = within(async {
        tokio::join!(aws.create(&req), async {
            expect_new_launch_template(&mut mock, "ami-0amd64").await;
            mock.expect("CreateFleet", 200, "this is not XML at all")
                .await;
        })
    })
    .await;
    match res {
        Err(ProviderError::Api(msg)) => {
            assert!(msg.contains("CreateFleet: unreadable response"), "{msg}")
        }
        other => panic!("expected Api error, got {other:?}"),
    }
}

#[tokio::test]
async fn requests_are_signed_with_sigv4() {
    let Fixture { aws, mut mock, .. } = fixture().await;
    let (_, r) = within(async {
        tokio::join!(aws.delete("aws:///us-east-1a/i-0s"), async {
            mock.expect(
                "TerminateInstances",
                200,
                &terminate_xml("i-0s", "running", "shutting-down"),
            )
            .await
        })
    })
    .await;
    let h = |k: &str| {
        r.headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(h("x-amz-date"), "20261128T210000Z");
    assert_eq!(
        h("content-type"),
        "application/x-www-form-urlencoded; charset=utf-8"
    );
    let auth = h("authorization");
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261128/us-east-1/ec2/aws4_request, SignedHeaders=")
        .unwrap_or_else(|| panic!("malformed Authorization header: {auth}"));
    let (signed, sig) = rest.split_once(", Signature=").expect("signature");
    let signed: Vec<&str> = signed.split(';').collect();
    for want in ["content-type", "host", "x-amz-date"] {
        assert!(signed.contains(&want), "{want} not signed: {signed:?}");
    }
    assert_eq!(sig.len(), 64);
    assert!(
        sig.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
}

#[tokio::test]
async fn launch_waits_for_a_ready_nodeclass() {
    let Fixture {
        aws,
        mut mock,
        nodeclasses,
        ..
    } = fixture().await;
    let mut req = request("workers-nc001", &["m5.large"], &["on-demand"], &[]);
    req.node_class = Some("missing".into());
    let res = aws.create(&req).await;
    match res {
        Err(ProviderError::NodeClassNotReady(m)) => assert_eq!(m, "EC2NodeClass missing not found"),
        other => panic!("{other:?}"),
    }
    let mut nc = ready_nodeclass();
    nc.status = Some(
        json!({"conditions": [{"type": "Ready", "status": "False", "reason": "NotReady",
        "message": "SubnetsReady: SubnetSelector did not match any Subnets"}]}),
    );
    nodeclasses.insert(nc);
    req.node_class = Some("default".into());
    match aws.create(&req).await {
        Err(ProviderError::NodeClassNotReady(m)) => assert_eq!(
            m,
            "EC2NodeClass default: SubnetsReady: SubnetSelector did not match any Subnets"
        ),
        other => panic!("{other:?}"),
    }
    mock.expect_no_more(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn nodeclass_resolution_reads_subnets_groups_and_alias_images() {
    let Fixture { aws, mut mock, .. } = fixture().await;
    let spec = nodeclass::parse_spec(&ready_nodeclass().spec).unwrap();
    let ami = AmiSettings {
        kubernetes_version: Some("1.31".into()),
    };
    let (res, ()) = within(async {
        tokio::join!(nodeclass::resolve(aws.ec2(), &spec, &ami), async {
            let s = mock
                .expect(
                    "DescribeSubnets",
                    200,
                    &describe_subnets_xml(&[
                        ("subnet-a", "us-east-1a", 100),
                        ("subnet-b", "us-east-1b", 4000),
                        ("subnet-b2", "us-east-1b", 10),
                    ]),
                )
                .await;
            assert_eq!(
                s.params,
                BTreeMap::from([
                    (
                        "Filter.1.Name".to_string(),
                        "tag:karpenter.sh/discovery".to_string()
                    ),
                    ("Filter.1.Value.1".to_string(), "demo".to_string()),
                ])
            );
            let g = mock
                .expect(
                    "DescribeSecurityGroups",
                    200,
                    &describe_security_groups_xml(&[("sg-1", "nodes")]),
                )
                .await;
            assert_eq!(g.param("Filter.1.Name"), "tag:karpenter.sh/discovery");
            let i1 = mock
                .expect(
                    "DescribeImages",
                    200,
                    &describe_images_xml(&[
                        (
                            "ami-old",
                            "amazon-eks-node-al2023-x86_64-standard-1.31-v20260101",
                            "x86_64",
                            "2026-01-02T00:00:00.000Z",
                        ),
                        (
                            "ami-new",
                            "amazon-eks-node-al2023-x86_64-standard-1.31-v20261101",
                            "x86_64",
                            "2026-11-02T00:00:00.000Z",
                        ),
                    ]),
                )
                .await;
            assert_eq!(i1.param("Owner.1"), "amazon");
            assert_eq!(i1.param("Filter.1.Name"), "name");
            assert_eq!(
                i1.param("Filter.1.Value.1"),
                "amazon-eks-node-al2023-x86_64-standard-1.31-*"
            );
            assert_eq!(i1.param("Filter.2.Name"), "state");
            let i2 = mock
                .expect(
                    "DescribeImages",
                    200,
                    &describe_images_xml(&[(
                        "ami-arm",
                        "amazon-eks-node-al2023-arm64-standard-1.31-v20261101",
                        "arm64",
                        "2026-11-02T00:00:00.000Z",
                    )]),
                )
                .await;
            assert_eq!(
                i2.param("Filter.1.Value.1"),
                "amazon-eks-node-al2023-arm64-standard-1.31-*"
            );
        })
    })
    .await;
    let st = res.unwrap();
    assert_eq!(
        st.subnets.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        vec!["subnet-b", "subnet-a", "subnet-b2"],
        "most free addresses first"
    );
    assert_eq!(st.security_groups[0].id, "sg-1");
    assert_eq!(
        st.amis
            .iter()
            .map(|a| (a.id.as_str(), a.arch().unwrap()))
            .collect::<Vec<_>>(),
        vec![("ami-new", "amd64"), ("ami-arm", "arm64")]
    );
    assert_eq!(
        st.instance_profile.as_deref(),
        Some("KarpenterNodeRole-demo")
    );
    assert!(st.is_ready(), "{:?}", st.conditions);
    mock.expect_no_more(Duration::from_millis(100)).await;
}

// ----- interruption queue against a real kedge serve -----

#[derive(Default)]
struct Recorder {
    known: Vec<String>,
    calls: Mutex<Vec<(String, InterruptionKind)>>,
    /// Provider IDs whose cordon fails (the API server is "down" for them).
    failing: Vec<String>,
}

impl InterruptionHandler for Recorder {
    fn provider_ids(&self) -> autoscale::scaler::BoxFuture<'_, Result<Vec<String>, String>> {
        let k = self.known.clone();
        Box::pin(async move { Ok(k) })
    }
    fn cordon_and_drain<'a>(
        &'a self,
        provider_id: &'a str,
        kind: &'a InterruptionKind,
    ) -> autoscale::scaler::BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if self.failing.iter().any(|f| f == provider_id) {
                return Err("the API server is unreachable".into());
            }
            self.calls
                .lock()
                .unwrap()
                .push((provider_id.to_string(), kind.clone()));
            Ok(())
        })
    }
}

fn event(detail_type: &str, detail: serde_json::Value) -> String {
    json!({
        "version": "0",
        "id": format!("evt-{}", detail_type.len()),
        "detail-type": detail_type,
        "source": if detail_type == "AWS Health Event" { "aws.health" } else { "aws.ec2" },
        "account": "123456789012",
        "time": "2026-11-28T21:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    })
    .to_string()
}

async fn queue_counts(c: &aws_sdk_sqs::Client, url: &str) -> (i64, i64) {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let a = c
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    let n = |k: A| a.get(&k).and_then(|v| v.parse().ok()).unwrap_or(-1);
    (
        n(A::ApproximateNumberOfMessages),
        n(A::ApproximateNumberOfMessagesNotVisible),
    )
}

#[tokio::test]
async fn interruption_queue_cordons_known_instances_and_deletes_messages() {
    let server = common::sqs("us-east-1").await;
    let sqs = server.client.clone();
    let queue = sqs
        .create_queue()
        .queue_name("kedge-interruption")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let bodies = [
        event(
            "EC2 Spot Instance Interruption Warning",
            json!({"instance-id": "i-01", "instance-action": "terminate"}),
        ),
        event(
            "EC2 Instance State-change Notification",
            json!({"instance-id": "i-02", "state": "running"}),
        ),
        event(
            "EC2 Instance State-change Notification",
            json!({"instance-id": "i-02", "state": "stopping"}),
        ),
        event(
            "EC2 Instance Rebalance Recommendation",
            json!({"instance-id": "i-01"}),
        ),
        event(
            "AWS Health Event",
            json!({"service": "EC2", "eventTypeCategory": "scheduledChange",
            "affectedEntities": [{"entityValue": "i-03"}, {"entityValue": "i-elsewhere"}]}),
        ),
        event(
            "EC2 Spot Instance Interruption Warning",
            json!({"instance-id": "i-other-cluster"}),
        ),
        "this is not an event".to_string(),
        "{\"detail-type\": \"EC2 Spot Instance Interruption Warning\", \"detail\": {}}".to_string(),
        event(
            "EC2 Spot Instance Interruption Warning",
            json!({"instance-id": "i-04"}),
        ),
    ];
    for b in &bodies {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(b)
            .send()
            .await
            .unwrap();
    }
    let handler = Arc::new(Recorder {
        known: vec![
            "aws:///us-east-1a/i-01".into(),
            "aws:///us-east-1b/i-02".into(),
            "aws:///us-east-1c/i-03".into(),
            "aws:///us-east-1c/i-04".into(),
        ],
        failing: vec!["aws:///us-east-1c/i-04".into()],
        ..Default::default()
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run_interruption_with(
        queue.clone(),
        sqs.clone(),
        handler.clone(),
        PollSettings {
            wait_time: Duration::from_secs(1),
            max_messages: 10,
            error_backoff: Duration::from_millis(100),
        },
        async {
            let _ = stop_rx.await;
        },
    ));
    // Poll the queue (the loop's work) with a deadline.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let counts = queue_counts(&sqs, &queue).await;
        if counts == (0, 1) && handler.calls.lock().unwrap().len() == 3 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "queue never drained: counts {counts:?}, calls {:?}",
            handler.calls.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(());
    within(task).await.unwrap();
    let mut calls = handler.calls.lock().unwrap().clone();
    calls.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        calls,
        vec![
            (
                "aws:///us-east-1a/i-01".to_string(),
                InterruptionKind::SpotInterruption
            ),
            (
                "aws:///us-east-1b/i-02".to_string(),
                InterruptionKind::StateChange("stopping".into())
            ),
            (
                "aws:///us-east-1c/i-03".to_string(),
                InterruptionKind::ScheduledChange
            ),
        ]
    );
    // Everything was deleted except the message whose handler failed: it is in flight and
    // comes back after the visibility timeout.
    assert_eq!(queue_counts(&sqs, &queue).await, (0, 1));
}

#[tokio::test]
async fn interruption_loop_stops_on_shutdown_while_long_polling() {
    let server = common::sqs("us-east-1").await;
    let sqs = server.client.clone();
    let queue = sqs
        .create_queue()
        .queue_name("idle")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run_interruption_with(
        queue,
        sqs,
        Arc::new(Recorder::default()),
        PollSettings {
            wait_time: Duration::from_secs(20),
            ..Default::default()
        },
        async {
            let _ = stop_rx.await;
        },
    ));
    // Give the loop a moment to be inside its receive call; the assertion below holds
    // either way (stopping before the first receive is also immediate).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("the loop must stop without waiting out its 20 s long poll")
        .unwrap();
}

// ----- against a real API server: NodeClass status written, then launched from -----

mod common;

#[tokio::test]
async fn nodeclass_status_on_a_real_api_server_gates_launches() {
    use kube::api::{Api, PostParams};
    let Some(cp) = common::control_plane("nodeclass_status_on_a_real_api_server_gates_launches")
    else {
        return;
    };
    operator::init_tls();
    let client = cp.client().await.expect("client");
    let _guard = common::cluster_lock().await;
    common::install_crds(&client).await;
    let api: Api<crd::EC2NodeClass> = Api::all(client.clone());
    let name = "aws-provider-it";
    let _ = api.delete(name, &Default::default()).await;
    common::eventually(30, "old EC2NodeClass gone", || {
        let api = api.clone();
        async move { api.get_opt(name).await.ok()?.is_none().then_some(()) }
    })
    .await;
    // The crd wrappers carry no TypeMeta; create through a DynamicObject as kubectl would.
    let mut obj = serde_json::to_value(ready_nodeclass()).unwrap();
    obj["apiVersion"] = json!("karpenter.k8s.aws/v1");
    obj["kind"] = json!("EC2NodeClass");
    obj["metadata"] = json!({"name": name});
    obj.as_object_mut().unwrap().remove("status");
    let dynamic: kube::api::DynamicObject = serde_json::from_value(obj).unwrap();
    let ar = kube::api::ApiResource::erase::<crd::EC2NodeClass>(&());
    Api::<kube::api::DynamicObject>::all_with(client.clone(), &ar)
        .create(&PostParams::default(), &dynamic)
        .await
        .expect("create EC2NodeClass");
    let nc = api.get(name).await.unwrap();

    let clock = ManualClock::new(Timestamp::from_secs(START));
    let mut mock = Ec2Mock::start().await;
    let aws = Aws::new(
        AwsSettings {
            cluster_name: "demo".into(),
            region: "us-east-1".into(),
            ..Default::default()
        },
        ec2_client(&mock.url, &clock),
        Arc::new(operator::provider::aws::KubeNodeClasses(api.clone())),
        Arc::new(clock.clone()),
    );

    // Before the first reconcile: no status, not ready, no EC2 call.
    let mut req = request(
        "aws-it-claim",
        &["m5.large"],
        &["on-demand"],
        &["us-east-1a"],
    );
    req.node_class = Some(name.into());
    match aws.create(&req).await {
        Err(ProviderError::NodeClassNotReady(m)) => {
            assert_eq!(m, format!("EC2NodeClass {name}: status not resolved yet"))
        }
        other => panic!("{other:?}"),
    }

    let (st, ()) = within(async {
        tokio::join!(aws.reconcile_nodeclass(&client, &nc, "kedge"), async {
            mock.expect(
                "DescribeSubnets",
                200,
                &describe_subnets_xml(&[("subnet-a", "us-east-1a", 100)]),
            )
            .await;
            mock.expect(
                "DescribeSecurityGroups",
                200,
                &describe_security_groups_xml(&[("sg-1", "nodes")]),
            )
            .await;
            mock.expect(
                "DescribeImages",
                200,
                &describe_images_xml(&[(
                    "ami-0amd64",
                    "amazon-eks-node-al2023-x86_64-standard-1.31-v20261101",
                    "x86_64",
                    "2026-11-02T00:00:00.000Z",
                )]),
            )
            .await;
            mock.expect("DescribeImages", 200, &describe_images_xml(&[]))
                .await;
        })
    })
    .await;
    assert!(st.expect("reconciled").is_ready());
    // The status is on the server (status subresource, server-side apply).
    let stored = api.get(name).await.unwrap();
    let status = stored.status.clone().expect("status written");
    assert_eq!(status["subnets"][0]["id"], "subnet-a");
    assert_eq!(status["amis"][0]["id"], "ami-0amd64");
    assert_eq!(status["instanceProfile"], "KarpenterNodeRole-demo");
    let ready = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()
        .clone();
    assert_eq!(ready["status"], "True");
    assert_eq!(ready["lastTransitionTime"], "2026-11-28T21:00:00Z");

    // Now the launch reads the NodeClass from the API server and goes to EC2.
    let (res, ()) = within(async {
        tokio::join!(aws.create(&req), async {
            expect_new_launch_template(&mut mock, "ami-0amd64").await;
            let f = mock
                .expect(
                    "CreateFleet",
                    200,
                    &create_fleet_xml(
                        &[("i-0it", "m5.large", "us-east-1a", "subnet-a", "on-demand")],
                        &[],
                    ),
                )
                .await;
            assert_eq!(
                f.tags_for("instance")["karpenter.k8s.aws/ec2nodeclass"],
                name
            );
        })
    })
    .await;
    assert_eq!(res.unwrap().provider_id, "aws:///us-east-1a/i-0it");

    // An invalid spec: the status says why, and launches stop (no EC2 call for either).
    let bad = api
        .patch(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"subnetSelectorTerms": []}})),
        )
        .await
        .unwrap();
    clock.advance(Duration::from_secs(60));
    let st = within(aws.reconcile_nodeclass(&client, &bad, "kedge"))
        .await
        .unwrap();
    assert!(!st.is_ready());
    let stored = api.get(name).await.unwrap().status.unwrap();
    let cond = |t: &str| {
        stored["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == t)
            .unwrap()
            .clone()
    };
    assert_eq!(cond("Ready")["status"], "False");
    assert_eq!(cond("Ready")["lastTransitionTime"], "2026-11-28T21:01:00Z");
    assert!(
        cond("ValidationSucceeded")["message"]
            .as_str()
            .unwrap()
            .contains("spec.subnetSelectorTerms: must have at least one term")
    );
    match aws.create(&req).await {
        Err(ProviderError::NodeClassNotReady(m)) => {
            assert!(m.contains("spec.subnetSelectorTerms"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    mock.expect_no_more(Duration::from_millis(100)).await;
    api.delete(name, &Default::default()).await.unwrap();
}

#[tokio::test]
async fn nodeclass_controller_resolves_every_nodeclass_on_a_real_api_server() {
    use kube::api::{Api, PostParams};
    let Some(cp) =
        common::control_plane("nodeclass_controller_resolves_every_nodeclass_on_a_real_api_server")
    else {
        return;
    };
    operator::init_tls();
    let client = cp.client().await.expect("client");
    let _guard = common::cluster_lock().await;
    common::install_crds(&client).await;
    let api: Api<crd::EC2NodeClass> = Api::all(client.clone());
    let ar = kube::api::ApiResource::erase::<crd::EC2NodeClass>(&());
    let dyn_api = Api::<kube::api::DynamicObject>::all_with(client.clone(), &ar);
    // Start from a clean slate: the controller watches every NodeClass.
    for nc in api.list(&Default::default()).await.unwrap() {
        let _ = api
            .delete(&nc.metadata.name.unwrap(), &Default::default())
            .await;
    }
    for (name, subnet_tag) in [("ctrl-ok", "demo"), ("ctrl-empty", "nothing")] {
        let mut obj = serde_json::to_value(ready_nodeclass()).unwrap();
        obj["apiVersion"] = json!("karpenter.k8s.aws/v1");
        obj["kind"] = json!("EC2NodeClass");
        obj["metadata"] = json!({"name": name});
        obj["spec"]["subnetSelectorTerms"] =
            json!([{"tags": {"karpenter.sh/discovery": subnet_tag}}]);
        obj.as_object_mut().unwrap().remove("status");
        let d: kube::api::DynamicObject = serde_json::from_value(obj).unwrap();
        dyn_api.create(&PostParams::default(), &d).await.unwrap();
    }

    let clock = ManualClock::new(Timestamp::from_secs(START));
    let mut mock = Ec2Mock::start().await;
    let aws = Arc::new(Aws::new(
        AwsSettings {
            cluster_name: "demo".into(),
            region: "us-east-1".into(),
            ..Default::default()
        },
        ec2_client(&mock.url, &clock),
        Arc::new(operator::provider::aws::KubeNodeClasses(api.clone())),
        Arc::new(clock.clone()),
    ));
    // EC2 as a stateless responder: subnets exist only for the `demo` discovery tag.
    let responder = tokio::spawn(async move {
        loop {
            mock.next_with(|r| {
                let xml = match r.action.as_str() {
                    "DescribeSubnets" if r.get("Filter.1.Value.1") == Some("demo") => {
                        describe_subnets_xml(&[("subnet-a", "us-east-1a", 100)])
                    }
                    "DescribeSubnets" => describe_subnets_xml(&[]),
                    "DescribeSecurityGroups" => describe_security_groups_xml(&[("sg-1", "nodes")]),
                    "DescribeImages" => describe_images_xml(&[(
                        "ami-0amd64",
                        "amazon-eks-node-al2023-x86_64-standard-1.31-v20261101",
                        "x86_64",
                        "2026-11-02T00:00:00.000Z",
                    )]),
                    other => return (400, error_xml("InvalidAction", other)),
                };
                (200, xml)
            })
            .await;
        }
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let ctrl = tokio::spawn(nodeclass::run_nodeclass_controller(
        aws,
        client.clone(),
        "kedge".into(),
        async {
            let _ = stop_rx.await;
        },
    ));
    let ready_of = |name: &'static str| {
        let api = api.clone();
        async move {
            let st = api.get(name).await.ok()?.status?;
            st["conditions"]
                .as_array()?
                .iter()
                .find(|c| c["type"] == "Ready")
                .map(|c| {
                    (
                        c["status"].as_str().unwrap_or("").to_string(),
                        c["message"].clone(),
                    )
                })
        }
    };
    let (ok, _) = common::eventually(30, "ctrl-ok resolved", || ready_of("ctrl-ok")).await;
    assert_eq!(ok, "True");
    let (empty, msg) =
        common::eventually(30, "ctrl-empty resolved", || ready_of("ctrl-empty")).await;
    assert_eq!(empty, "False");
    assert_eq!(
        msg,
        "SubnetsReady: SubnetSelector did not match any Subnets"
    );
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(10), ctrl)
        .await
        .expect("controller stops on shutdown")
        .unwrap();
    responder.abort();
    for name in ["ctrl-ok", "ctrl-empty"] {
        api.delete(name, &Default::default()).await.unwrap();
    }
}
