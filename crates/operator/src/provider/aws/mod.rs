//! The AWS cloud provider: NodeClaims become EC2 instances, as Karpenter's AWS provider
//! launches them.
//!
//! # What it does
//! - **Launch** ([`Aws`]'s `create`): one `CreateFleet` of `Type=instant` with a target
//!   capacity of 1. The claim's instance types (at most 60, cheapest first as the planner
//!   ordered them) × the NodeClass's subnets (one per zone, the one with the most free
//!   addresses; zones limited by the claim's `topology.kubernetes.io/zone` requirement) become
//!   the overrides of the launch template config of each AMI. Spot is used whenever the claim
//!   allows it (`karpenter.sh/capacity-type`) and a spot offering is left, as Karpenter
//!   prefers it; on-demand otherwise. Allocation strategies are Karpenter's: `lowest-price`
//!   on-demand, `price-capacity-optimized` spot. Instances and volumes are tagged
//!   `karpenter.sh/nodeclaim`, `karpenter.sh/nodepool`, `kubernetes.io/cluster/<cluster>=owned`,
//!   `karpenter.k8s.aws/ec2nodeclass`, `eks:eks-cluster-name` and the NodeClass's tags.
//!   Each CreateFleet carries a `ClientToken` unique to that attempt, so a call retried after
//!   a lost answer cannot launch a second instance.
//! - **Capacity errors**: the fleet's `errorSet` entries with `InsufficientInstanceCapacity`,
//!   `UnfulfillableCapacity`, `VcpuLimitExceeded`, `Unsupported`,
//!   `InsufficientFreeAddressesInSubnet` mark that (type, zone, capacity type) unavailable for
//!   3 minutes ([`cache`]); `MaxSpotInstanceCountExceeded` marks all of spot. The launch is
//!   retried at once with what is left (falling back from spot to on-demand when the claim
//!   allows it); nothing left → [`ProviderError::InsufficientCapacity`]. [`Aws`]'s `catalog()`
//!   is the shipped catalog with those offerings marked unavailable, so the planner stops
//!   choosing them.
//! - **Launch templates**: one per (NodeClass content, AMI, capacity type), named
//!   `karpenter.k8s.aws/<hash>`, found with `DescribeLaunchTemplates` or made with
//!   `CreateLaunchTemplate` (image, instance profile, security groups, user data, block devices,
//!   IMDSv2 required with hop limit 1 as Karpenter's default) and remembered by name.
//! - **Delete / get / list**: `TerminateInstances` (an instance already terminated, or
//!   `InvalidInstanceID.NotFound`, is [`ProviderError::NotFound`]); `DescribeInstances` by ID,
//!   or filtered by the cluster tag, the `karpenter.sh/nodepool` tag key and the live states.
//! - **EC2NodeClass** ([`nodeclass`]): the selector subset, validated with field paths, and
//!   resolved into `status` by [`nodeclass::reconcile_nodeclass`] (or the whole controller,
//!   [`nodeclass::run_nodeclass_controller`]); launches read the status and fail with
//!   [`ProviderError::NodeClassNotReady`] until it is `Ready`.
//! - **Interruption queue** ([`interruption`]): spot interruptions, state changes and scheduled
//!   maintenance from an SQS queue → cordon and drain.
//! - The EC2 client ([`ec2`]): Query protocol over hyper, SigV4 (`aws-sigv4`), retries with
//!   backoff on throttling and 5xx. The endpoint is `AwsSettings::endpoint`, else
//!   `AWS_ENDPOINT_URL_EC2`, else `AWS_ENDPOINT_URL` (as the SDKs read them), else
//!   `https://ec2.<region>.amazonaws.com`.
//!
//! # Not implemented (differences from Karpenter)
//! - No IAM calls: with `spec.role`, the instance profile **of the same name** is used (what
//!   the IAM console creates alongside an EC2 role); Karpenter creates and manages its own.
//! - AMI aliases: only `al2023@<version>`, resolved with `DescribeImages` (Amazon-owned images
//!   named `amazon-eks-node-al2023-<arch>-standard-<k8s>-<version>`, newest first) instead of
//!   the SSM parameter; set `AwsSettings::kubernetes_version` to pin the Kubernetes version.
//! - User data is passed through as given (base64-encoded); kedge does not generate or merge
//!   the nodeadm / bootstrap configuration (cluster endpoint, CA) Karpenter adds.
//! - No reserved capacity / capacity reservations, no EFA, no `context`, no instance-store
//!   policy, no kubelet settings in user data, no pricing API (prices are the shipped
//!   catalog's us-east-1 figures and the documented spot model), no batching of
//!   CreateFleet / TerminateInstances calls across claims, no drift detection of AMIs.
//! - `list()` pages through `DescribeInstances`; the Describe calls of NodeClass resolution read
//!   the first page only (up to 1,000 subnets / groups / images).

pub mod cache;
pub mod ec2;
pub mod interruption;
pub mod nodeclass;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use autoscale::scaler::BoxFuture;
use base64::Engine;
use clock::Clock;
use model::karpenter::{
    CAPACITY_TYPE_ON_DEMAND, CAPACITY_TYPE_SPOT, LABEL_ARCH, LABEL_CAPACITY_TYPE,
    LABEL_INSTANCE_TYPE, LABEL_NODEPOOL, LABEL_REGION, LABEL_ZONE,
};
use provision::catalog::Catalog;
use provision::requirements::Requirements;

use self::cache::{OfferingKey, UnavailableOfferings};
use self::ec2::{
    CreateFleetResponse, CreateLaunchTemplateResponse, DescribeInstancesResponse,
    DescribeLaunchTemplatesResponse, Ec2Client, Ec2Config, Ec2Error, Ec2Instance, Filter, Params,
    RetryPolicy, TerminateInstancesResponse,
};
use self::nodeclass::{AmiSettings, EC2NodeClassSpec, EC2NodeClassStatus};
use super::{CloudProvider, Instance, LaunchRequest, ProviderError};
use crate::crd;

/// Karpenter's `MaxInstanceTypes`: instance types per CreateFleet request.
pub const MAX_INSTANCE_TYPES: usize = 60;
/// Tag and label of the NodeClass an instance was launched from.
pub const TAG_NODECLASS: &str = "karpenter.k8s.aws/ec2nodeclass";
pub const TAG_NODECLAIM: &str = "karpenter.sh/nodeclaim";
pub const TAG_EKS_CLUSTER: &str = "eks:eks-cluster-name";
/// Fleet error codes meaning "no capacity for this offering right now" (Karpenter's
/// `unfulfillableCapacityErrorCodes`).
pub const CAPACITY_ERROR_CODES: &[&str] = &[
    "InsufficientInstanceCapacity",
    "MaxSpotInstanceCountExceeded",
    "VcpuLimitExceeded",
    "UnfulfillableCapacity",
    "Unsupported",
    "InsufficientFreeAddressesInSubnet",
];
/// Instance states `list()` returns (everything but `terminated`).
pub const LIVE_STATES: &[&str] = &["pending", "running", "stopping", "stopped", "shutting-down"];

/// Settings of the AWS provider (`kedge operator --provider aws`).
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    /// The cluster's name: the `kubernetes.io/cluster/<name>` tag.
    pub cluster_name: String,
    pub region: String,
    /// EC2 endpoint override (else `AWS_ENDPOINT_URL_EC2` / `AWS_ENDPOINT_URL` / AWS's).
    pub endpoint: Option<String>,
    /// SQS queue URL of the interruption queue (`run_interruption`), if any.
    pub interruption_queue: Option<String>,
    /// Kubernetes minor version (`1.31`) for AMI alias resolution; `None`: newest of any.
    pub kubernetes_version: Option<String>,
    /// Zones the catalog offers; default `<region>a`, `b`, `c`.
    pub zones: Option<Vec<String>>,
    /// Retry policy of EC2 calls; default: the SDKs' standard mode.
    pub retry: Option<RetryPolicy>,
}

impl AwsSettings {
    /// The EC2 endpoint: the setting, else the SDKs' environment variables, else AWS's.
    pub fn ec2_endpoint(&self) -> String {
        if let Some(e) = &self.endpoint {
            return e.clone();
        }
        for var in ["AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL"] {
            if let Ok(v) = std::env::var(var)
                && !v.is_empty()
            {
                return v;
            }
        }
        format!("https://ec2.{}.amazonaws.com", self.region)
    }

    fn catalog_zones(&self) -> Vec<String> {
        self.zones.clone().unwrap_or_else(|| {
            ["a", "b", "c"]
                .iter()
                .map(|s| format!("{}{s}", self.region))
                .collect()
        })
    }
}

/// Where the provider reads EC2NodeClasses from (the API server in production, a fixed set
/// in tests).
pub trait NodeClassSource: Send + Sync {
    /// The NodeClass called `name`; `NodeClassNotReady` when it does not exist.
    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<crd::EC2NodeClass, ProviderError>>;
}

/// NodeClasses read from the API server.
pub struct KubeNodeClasses(pub kube::Api<crd::EC2NodeClass>);

impl NodeClassSource for KubeNodeClasses {
    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<crd::EC2NodeClass, ProviderError>> {
        Box::pin(async move {
            match self.0.get_opt(name).await {
                Ok(Some(nc)) => Ok(nc),
                Ok(None) => Err(ProviderError::NodeClassNotReady(format!(
                    "EC2NodeClass {name} not found"
                ))),
                Err(e) => Err(ProviderError::Api(format!(
                    "reading EC2NodeClass {name}: {e}"
                ))),
            }
        })
    }
}

/// NodeClasses from a fixed map (tests, or a single static NodeClass).
#[derive(Default, Clone)]
pub struct StaticNodeClasses(pub Arc<Mutex<BTreeMap<String, crd::EC2NodeClass>>>);

impl StaticNodeClasses {
    pub fn insert(&self, nc: crd::EC2NodeClass) {
        let name = nc.metadata.name.clone().unwrap_or_default();
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, nc);
    }
}

impl NodeClassSource for StaticNodeClasses {
    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<crd::EC2NodeClass, ProviderError>> {
        let r = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| {
                ProviderError::NodeClassNotReady(format!("EC2NodeClass {name} not found"))
            });
        Box::pin(async move { r })
    }
}

/// Map an EC2 failure to the provider's typed errors.
pub(crate) fn provider_error(e: Ec2Error) -> ProviderError {
    match &e {
        Ec2Error::Api { code, .. } if code.ends_with(".NotFound") => {
            ProviderError::NotFound(e.to_string())
        }
        Ec2Error::Api { code, status, .. }
            if *status < 500
                && (code.starts_with("Invalid")
                    || code.starts_with("Unauthorized")
                    || code == "AuthFailure"
                    || code == "MissingParameter"
                    || code == "UnknownParameter") =>
        {
            ProviderError::Invalid(e.to_string())
        }
        _ => ProviderError::Api(e.to_string()),
    }
}

/// One candidate: where an instance could be launched.
#[derive(Debug, Clone, PartialEq)]
struct Offering {
    instance_type: String,
    zone: String,
    subnet: String,
    capacity_type: String,
    image: String,
}

/// The AWS provider. Build with [`Aws::from_env`] (production) or [`Aws::new`].
pub struct Aws {
    settings: AwsSettings,
    ec2: Ec2Client,
    nodeclasses: Arc<dyn NodeClassSource>,
    clock: Arc<dyn Clock>,
    unavailable: Arc<UnavailableOfferings>,
    base_catalog: Arc<Catalog>,
    /// Launch template name → ID.
    launch_templates: Mutex<BTreeMap<String, String>>,
    /// The catalog of the last `catalog()` call and the cache entries it reflects.
    catalog_memo: Mutex<Option<(Vec<OfferingKey>, Arc<Catalog>)>>,
    /// CreateFleet calls made (part of the idempotency token).
    fleet_calls: std::sync::atomic::AtomicU64,
}

impl Aws {
    pub fn new(
        settings: AwsSettings,
        ec2: Ec2Client,
        nodeclasses: Arc<dyn NodeClassSource>,
        clock: Arc<dyn Clock>,
    ) -> Aws {
        let zones = settings.catalog_zones();
        let zone_refs: Vec<&str> = zones.iter().map(String::as_str).collect();
        let base = Catalog::from_csv(
            provision::catalog::AWS_CSV,
            "od_price_us_east_1",
            &zone_refs,
        )
        .unwrap_or_default();
        Aws {
            unavailable: Arc::new(UnavailableOfferings::new(clock.clone())),
            settings,
            ec2,
            nodeclasses,
            clock,
            base_catalog: Arc::new(base),
            launch_templates: Mutex::new(BTreeMap::new()),
            catalog_memo: Mutex::new(None),
            fleet_calls: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The provider for `kedge operator --provider aws`: credentials from `aws-config`'s
    /// default chain (env, profile, web identity / IRSA, IMDS), NodeClasses from the API
    /// server.
    ///
    /// An empty `settings.region` is taken from the same chain (`AWS_REGION`, the profile,
    /// IMDS).
    pub async fn from_env(
        mut settings: AwsSettings,
        client: kube::Client,
        clock: Arc<dyn Clock>,
    ) -> crate::Result<Aws> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if !settings.region.is_empty() {
            loader = loader.region(aws_config::Region::new(settings.region.clone()));
        }
        let conf = loader.load().await;
        if settings.region.is_empty() {
            settings.region = conf.region().map(|r| r.to_string()).ok_or_else(|| {
                crate::Error::Invalid(
                    "no AWS region: set AWS_REGION (or a profile region) for --provider aws".into(),
                )
            })?;
        }
        let creds = conf.credentials_provider().ok_or_else(|| {
            crate::Error::Invalid(
                "no AWS credentials provider: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or IRSA".into(),
            )
        })?;
        let ec2 = Ec2Client::new(
            Ec2Config {
                endpoint: settings.ec2_endpoint(),
                region: settings.region.clone(),
                retry: settings.retry.unwrap_or_default(),
            },
            creds,
            clock.clone(),
        )
        .map_err(|e| crate::Error::Provider(provider_error(e)))?;
        let nodeclasses = Arc::new(KubeNodeClasses(kube::Api::all(client)));
        Ok(Aws::new(settings, ec2, nodeclasses, clock))
    }

    /// An SQS client for the interruption queue (same region and credentials chain;
    /// `AWS_ENDPOINT_URL_SQS` / `AWS_ENDPOINT_URL` honoured by the SDK).
    pub async fn sqs_client(settings: &AwsSettings) -> aws_sdk_sqs::Client {
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(settings.region.clone()))
            .load()
            .await;
        aws_sdk_sqs::Client::new(&conf)
    }

    pub fn settings(&self) -> &AwsSettings {
        &self.settings
    }

    pub fn ec2(&self) -> &Ec2Client {
        &self.ec2
    }

    /// The unavailable-offerings cache.
    pub fn unavailable_offerings(&self) -> &UnavailableOfferings {
        &self.unavailable
    }

    /// Resolve `nc` and write its status (see [`nodeclass::reconcile_nodeclass`]).
    pub async fn reconcile_nodeclass(
        &self,
        client: &kube::Client,
        nc: &crd::EC2NodeClass,
        field_manager: &str,
    ) -> crate::Result<EC2NodeClassStatus> {
        nodeclass::reconcile_nodeclass(
            client,
            &self.ec2,
            &self.ami_settings(),
            nc,
            field_manager,
            self.clock.now(),
        )
        .await
    }

    pub fn ami_settings(&self) -> AmiSettings {
        AmiSettings {
            kubernetes_version: self.settings.kubernetes_version.clone(),
        }
    }

    async fn launch(&self, req: &LaunchRequest) -> Result<Instance, ProviderError> {
        let nc_name = req.node_class.clone().ok_or_else(|| {
            ProviderError::NodeClassNotReady(format!(
                "NodeClaim {} has no spec.nodeClassRef",
                req.claim_name
            ))
        })?;
        let nc = self.nodeclasses.get(&nc_name).await?;
        let spec = nodeclass::parse_spec(&nc.spec).map_err(|errs| {
            ProviderError::NodeClassNotReady(format!(
                "EC2NodeClass {nc_name} is invalid: {}",
                errs.join("; ")
            ))
        })?;
        let status = EC2NodeClassStatus::of(&nc);
        if !status.is_ready() {
            return Err(ProviderError::NodeClassNotReady(format!(
                "EC2NodeClass {nc_name}: {}",
                status.not_ready_reason()
            )));
        }
        let instance_profile = status.instance_profile.clone().ok_or_else(|| {
            ProviderError::NodeClassNotReady(format!("EC2NodeClass {nc_name}: no instance profile"))
        })?;

        let candidates = self.candidates(req, &status)?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let live: Vec<&Offering> = candidates
                .iter()
                .filter(|o| {
                    !self
                        .unavailable
                        .is_unavailable(&o.instance_type, &o.zone, &o.capacity_type)
                })
                .collect();
            let ct = if live.iter().any(|o| o.capacity_type == CAPACITY_TYPE_SPOT) {
                CAPACITY_TYPE_SPOT
            } else if live
                .iter()
                .any(|o| o.capacity_type == CAPACITY_TYPE_ON_DEMAND)
            {
                CAPACITY_TYPE_ON_DEMAND
            } else {
                return Err(ProviderError::InsufficientCapacity(format!(
                    "all {} offerings of NodeClaim {} ({} instance types) are unavailable",
                    candidates.len(),
                    req.claim_name,
                    req.instance_types.len().min(MAX_INSTANCE_TYPES)
                )));
            };
            let chosen: Vec<&Offering> =
                live.into_iter().filter(|o| o.capacity_type == ct).collect();
            let fleet = self
                .create_fleet(
                    req,
                    &nc_name,
                    &spec,
                    &status,
                    &instance_profile,
                    ct,
                    &chosen,
                )
                .await?;
            let marked = self.record_fleet_errors(&fleet, ct, &chosen);
            if let Some(inst) = fleet
                .fleet_instance_set
                .item
                .iter()
                .find(|i| !i.instance_ids.item.is_empty())
            {
                return Ok(self.instance_from_fleet(req, &nc_name, inst, ct, &chosen));
            }
            if !marked || attempts >= 20 {
                let msgs: Vec<String> = fleet
                    .error_set
                    .item
                    .iter()
                    .map(|e| format!("{}: {}", e.error_code, e.error_message))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let msg = if msgs.is_empty() {
                    "CreateFleet launched no instance and reported no error".to_string()
                } else {
                    msgs.join("; ")
                };
                if fleet
                    .error_set
                    .item
                    .iter()
                    .any(|e| e.error_code.contains("LaunchTemplate"))
                {
                    // A deleted launch template: forget it, the next launch recreates it.
                    self.lock_templates().clear();
                    return Err(ProviderError::Api(format!("CreateFleet: {msg}")));
                }
                if fleet
                    .error_set
                    .item
                    .iter()
                    .all(|e| CAPACITY_ERROR_CODES.contains(&e.error_code.as_str()))
                {
                    return Err(ProviderError::InsufficientCapacity(msg));
                }
                return Err(ProviderError::Invalid(format!("CreateFleet: {msg}")));
            }
        }
    }

    /// Every (type, zone, capacity type) the claim allows and the NodeClass can launch.
    fn candidates(
        &self,
        req: &LaunchRequest,
        status: &EC2NodeClassStatus,
    ) -> Result<Vec<Offering>, ProviderError> {
        let reqs = Requirements::from_nodepool(&req.claim.spec.requirements);
        let allows = |key: &str, v: &str| reqs.get(key).is_none_or(|r| r.has(v));
        // Karpenter's NodePool defaulting: without a capacity-type requirement, on-demand.
        let cts: Vec<&str> = if reqs.get(LABEL_CAPACITY_TYPE).is_none() {
            vec![CAPACITY_TYPE_ON_DEMAND]
        } else {
            [CAPACITY_TYPE_SPOT, CAPACITY_TYPE_ON_DEMAND]
                .into_iter()
                .filter(|c| allows(LABEL_CAPACITY_TYPE, c))
                .collect()
        };
        if cts.is_empty() {
            return Err(ProviderError::InsufficientCapacity(format!(
                "NodeClaim {}: its karpenter.sh/capacity-type requirement allows neither spot nor on-demand",
                req.claim_name
            )));
        }
        // One subnet per zone: the first in status order (most free addresses).
        let mut subnet_of_zone: BTreeMap<&str, &str> = BTreeMap::new();
        for s in &status.subnets {
            if allows(LABEL_ZONE, &s.zone) {
                subnet_of_zone.entry(&s.zone).or_insert(&s.id);
            }
        }
        if subnet_of_zone.is_empty() {
            return Err(ProviderError::InsufficientCapacity(format!(
                "NodeClaim {}: no subnet of the NodeClass is in an allowed zone",
                req.claim_name
            )));
        }
        let mut out = Vec::new();
        for t in req.instance_types.iter().take(MAX_INSTANCE_TYPES) {
            let Some(it) = self.base_catalog.get(t) else {
                tracing::warn!(instance_type = %t, "not in the catalog; skipped");
                continue;
            };
            let arch = it
                .requirements
                .get(LABEL_ARCH)
                .and_then(|r| r.single())
                .unwrap_or("amd64");
            let Some(ami) = status.amis.iter().find(|a| a.arch() == Some(arch)) else {
                continue;
            };
            for ct in &cts {
                for (zone, subnet) in &subnet_of_zone {
                    out.push(Offering {
                        instance_type: t.clone(),
                        zone: zone.to_string(),
                        subnet: subnet.to_string(),
                        capacity_type: ct.to_string(),
                        image: ami.id.clone(),
                    });
                }
            }
        }
        if out.is_empty() {
            return Err(ProviderError::InsufficientCapacity(format!(
                "NodeClaim {}: none of its instance types has an AMI of its architecture in the NodeClass (or is known to the catalog)",
                req.claim_name
            )));
        }
        Ok(out)
    }

    fn system_tags(
        &self,
        req: &LaunchRequest,
        nc_name: &str,
        user: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        let mut tags = user.clone();
        tags.insert(TAG_NODECLAIM.into(), req.claim_name.clone());
        tags.insert(LABEL_NODEPOOL.into(), req.nodepool.clone());
        tags.insert(
            format!("kubernetes.io/cluster/{}", self.settings.cluster_name),
            "owned".into(),
        );
        tags.insert(TAG_NODECLASS.into(), nc_name.into());
        tags.insert(TAG_EKS_CLUSTER.into(), self.settings.cluster_name.clone());
        tags
    }

    #[allow(clippy::too_many_arguments)]
    async fn create_fleet(
        &self,
        req: &LaunchRequest,
        nc_name: &str,
        spec: &EC2NodeClassSpec,
        status: &EC2NodeClassStatus,
        instance_profile: &str,
        ct: &str,
        offerings: &[&Offering],
    ) -> Result<CreateFleetResponse, ProviderError> {
        // One launch template config per AMI, in a stable order.
        let mut by_image: BTreeMap<&str, Vec<&Offering>> = BTreeMap::new();
        for o in offerings {
            by_image.entry(&o.image).or_default().push(o);
        }
        let mut p = Params::new();
        // Idempotency: a CreateFleet retried after a lost answer (transport error, 5xx)
        // must not launch a second instance; the token is unique per attempt of a launch.
        let token = format!(
            "{}-{}-{}",
            req.claim_name,
            self.clock.now().as_millis(),
            self.fleet_calls
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        p.set("ClientToken", truncate_token(&token));
        p.set("Type", "instant");
        for (k, (image, os)) in by_image.iter().enumerate() {
            let lt = self
                .ensure_launch_template(nc_name, spec, status, instance_profile, image, ct)
                .await?;
            let prefix = format!("LaunchTemplateConfigs.{}", k + 1);
            p.set(
                format!("{prefix}.LaunchTemplateSpecification.LaunchTemplateName"),
                lt,
            );
            p.set(
                format!("{prefix}.LaunchTemplateSpecification.Version"),
                "$Latest",
            );
            for (n, o) in os.iter().enumerate() {
                let op = format!("{prefix}.Overrides.{}", n + 1);
                p.set(format!("{op}.InstanceType"), o.instance_type.clone());
                p.set(format!("{op}.SubnetId"), o.subnet.clone());
                // Redundant with the subnet, but it lets errorSet entries name the zone.
                p.set(format!("{op}.AvailabilityZone"), o.zone.clone());
                p.set(format!("{op}.ImageId"), o.image.clone());
            }
        }
        p.set("TargetCapacitySpecification.TotalTargetCapacity", "1");
        p.set("TargetCapacitySpecification.DefaultTargetCapacityType", ct);
        if ct == CAPACITY_TYPE_SPOT {
            p.set("SpotOptions.AllocationStrategy", "price-capacity-optimized");
        } else {
            p.set("OnDemandOptions.AllocationStrategy", "lowest-price");
        }
        let tags = self.system_tags(req, nc_name, &spec.tags);
        for (i, rt) in ["instance", "volume"].iter().enumerate() {
            let prefix = format!("TagSpecification.{}", i + 1);
            p.set(format!("{prefix}.ResourceType"), *rt);
            p.tags(&format!("{prefix}.Tag"), &tags);
        }
        self.ec2
            .call_parse::<CreateFleetResponse>("CreateFleet", &p)
            .await
            .map_err(|e| {
                if e.code()
                    .is_some_and(|c| c.contains("LaunchTemplate") && c.contains("NotFound"))
                {
                    // Deleted behind our back: forget the remembered templates so the next
                    // launch recreates them, and let the caller retry.
                    self.lock_templates().clear();
                    return ProviderError::Api(e.to_string());
                }
                provider_error(e)
            })
    }

    /// Mark the offerings the fleet could not launch; true when anything was marked.
    fn record_fleet_errors(
        &self,
        fleet: &CreateFleetResponse,
        ct: &str,
        offerings: &[&Offering],
    ) -> bool {
        let mut marked = false;
        for e in &fleet.error_set.item {
            if !CAPACITY_ERROR_CODES.contains(&e.error_code.as_str()) {
                continue;
            }
            let ct = e.lifecycle.as_deref().unwrap_or(ct);
            if e.error_code == "MaxSpotInstanceCountExceeded" {
                self.unavailable
                    .mark_capacity_type(CAPACITY_TYPE_SPOT, &e.error_code);
                marked = true;
                continue;
            }
            let ov = e
                .launch_template_and_overrides
                .as_ref()
                .and_then(|l| l.overrides.as_ref());
            match ov.and_then(|o| o.instance_type.as_deref().map(|t| (t, o))) {
                Some((t, o)) => {
                    let zone = o.availability_zone.clone().or_else(|| {
                        o.subnet_id.as_ref().and_then(|s| {
                            offerings
                                .iter()
                                .find(|x| &x.subnet == s)
                                .map(|x| x.zone.clone())
                        })
                    });
                    match zone {
                        Some(z) => self.unavailable.mark(t, &z, ct, &e.error_code),
                        None => {
                            for x in offerings.iter().filter(|x| x.instance_type == t) {
                                self.unavailable.mark(t, &x.zone, ct, &e.error_code);
                            }
                        }
                    }
                    marked = true;
                }
                None => {
                    // The error names no offering: every offering of this request failed.
                    for x in offerings {
                        self.unavailable
                            .mark(&x.instance_type, &x.zone, ct, &e.error_code);
                    }
                    marked = true;
                }
            }
        }
        marked
    }

    fn lock_templates(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.launch_templates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The launch template for (NodeClass content, AMI, capacity type): its name, after
    /// making sure it exists.
    async fn ensure_launch_template(
        &self,
        nc_name: &str,
        spec: &EC2NodeClassSpec,
        status: &EC2NodeClassStatus,
        instance_profile: &str,
        image: &str,
        ct: &str,
    ) -> Result<String, ProviderError> {
        let mut sgs: Vec<String> = status
            .security_groups
            .iter()
            .map(|g| g.id.clone())
            .collect();
        sgs.sort();
        let key = serde_json::json!({
            "cluster": self.settings.cluster_name,
            "nodeClass": nc_name,
            "image": image,
            "capacityType": ct,
            "securityGroups": sgs,
            "instanceProfile": instance_profile,
            "userData": spec.user_data,
            "blockDeviceMappings": spec.block_device_mappings,
            "tags": spec.tags,
        });
        let name = format!(
            "karpenter.k8s.aws/{:016x}",
            fnv64(key.to_string().as_bytes())
        );
        if self.lock_templates().contains_key(&name) {
            return Ok(name);
        }
        let mut p = Params::new();
        p.set("LaunchTemplateName.1", name.clone());
        match self
            .ec2
            .call_parse::<DescribeLaunchTemplatesResponse>("DescribeLaunchTemplates", &p)
            .await
        {
            Ok(r) => {
                if let Some(lt) = r.launch_templates.item.first() {
                    self.lock_templates()
                        .insert(name.clone(), lt.launch_template_id.clone());
                    return Ok(name);
                }
            }
            Err(e) if e.code() == Some("InvalidLaunchTemplateName.NotFoundException") => {}
            Err(e) => return Err(provider_error(e)),
        }

        let mut p = Params::new();
        p.set("LaunchTemplateName", name.clone());
        let d = "LaunchTemplateData";
        p.set(format!("{d}.ImageId"), image);
        p.set(format!("{d}.IamInstanceProfile.Name"), instance_profile);
        p.list(&format!("{d}.SecurityGroupId"), &sgs);
        if let Some(ud) = &spec.user_data {
            p.set(
                format!("{d}.UserData"),
                base64::engine::general_purpose::STANDARD.encode(ud),
            );
        }
        p.set(format!("{d}.MetadataOptions.HttpEndpoint"), "enabled");
        p.set(format!("{d}.MetadataOptions.HttpTokens"), "required");
        p.set(format!("{d}.MetadataOptions.HttpPutResponseHopLimit"), "1");
        for (i, b) in spec.block_device_mappings.iter().enumerate() {
            let bp = format!("{d}.BlockDeviceMapping.{}", i + 1);
            if let Some(n) = &b.device_name {
                p.set(format!("{bp}.DeviceName"), n.clone());
            }
            if let Some(e) = &b.ebs {
                if let Some(gib) = e
                    .volume_size
                    .as_deref()
                    .and_then(nodeclass::volume_size_gib)
                {
                    p.set(format!("{bp}.Ebs.VolumeSize"), gib.to_string());
                }
                if let Some(v) = &e.volume_type {
                    p.set(format!("{bp}.Ebs.VolumeType"), v.clone());
                }
                if let Some(v) = e.iops {
                    p.set(format!("{bp}.Ebs.Iops"), v.to_string());
                }
                if let Some(v) = e.throughput {
                    p.set(format!("{bp}.Ebs.Throughput"), v.to_string());
                }
                if let Some(v) = e.encrypted {
                    p.set(format!("{bp}.Ebs.Encrypted"), v.to_string());
                }
                if let Some(v) = e.delete_on_termination {
                    p.set(format!("{bp}.Ebs.DeleteOnTermination"), v.to_string());
                }
                if let Some(v) = &e.kms_key_id {
                    p.set(format!("{bp}.Ebs.KmsKeyId"), v.clone());
                }
                if let Some(v) = &e.snapshot_id {
                    p.set(format!("{bp}.Ebs.SnapshotId"), v.clone());
                }
            }
        }
        let mut lt_tags = spec.tags.clone();
        lt_tags.insert(
            format!("kubernetes.io/cluster/{}", self.settings.cluster_name),
            "owned".into(),
        );
        lt_tags.insert(TAG_NODECLASS.into(), nc_name.into());
        p.set("TagSpecification.1.ResourceType", "launch-template");
        p.tags("TagSpecification.1.Tag", &lt_tags);
        let r: CreateLaunchTemplateResponse = self
            .ec2
            .call_parse("CreateLaunchTemplate", &p)
            .await
            .map_err(provider_error)?;
        self.lock_templates()
            .insert(name.clone(), r.launch_template.launch_template_id);
        Ok(name)
    }

    fn labels_for(&self, instance_type: &str, zone: &str, ct: &str) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::new();
        if let Some(it) = self.base_catalog.get(instance_type) {
            for (k, r) in it.requirements.iter() {
                if k == LABEL_ZONE || k == LABEL_CAPACITY_TYPE {
                    continue;
                }
                if let Some(v) = r.single() {
                    labels.insert(k.to_string(), v.to_string());
                }
            }
        }
        labels.insert(LABEL_INSTANCE_TYPE.into(), instance_type.into());
        labels.insert(LABEL_ZONE.into(), zone.into());
        labels.insert(LABEL_REGION.into(), self.settings.region.clone());
        labels.insert(LABEL_CAPACITY_TYPE.into(), ct.into());
        labels
    }

    fn resources_of(
        &self,
        instance_type: &str,
    ) -> (model::kube::ResourceList, model::kube::ResourceList) {
        match self.base_catalog.get(instance_type) {
            Some(it) => (it.capacity.to_list(), it.allocatable.to_list()),
            None => Default::default(),
        }
    }

    fn instance_from_fleet(
        &self,
        req: &LaunchRequest,
        nc_name: &str,
        fi: &ec2::FleetInstance,
        ct: &str,
        offerings: &[&Offering],
    ) -> Instance {
        let id = fi.instance_ids.item[0].clone();
        let ov = fi
            .launch_template_and_overrides
            .as_ref()
            .and_then(|l| l.overrides.clone())
            .unwrap_or_default();
        let instance_type = fi
            .instance_type
            .clone()
            .or(ov.instance_type.clone())
            .unwrap_or_default();
        let zone = ov
            .availability_zone
            .clone()
            .or_else(|| {
                ov.subnet_id.as_ref().and_then(|s| {
                    offerings
                        .iter()
                        .find(|o| &o.subnet == s)
                        .map(|o| o.zone.clone())
                })
            })
            .unwrap_or_default();
        let ct = fi.lifecycle.clone().unwrap_or_else(|| ct.to_string());
        let image = ov.image_id.clone().or_else(|| {
            offerings
                .iter()
                .find(|o| o.instance_type == instance_type)
                .map(|o| o.image.clone())
        });
        let mut labels = self.labels_for(&instance_type, &zone, &ct);
        labels.insert(LABEL_NODEPOOL.into(), req.nodepool.clone());
        labels.insert(TAG_NODECLASS.into(), nc_name.into());
        for (k, v) in &req.labels {
            labels.insert(k.clone(), v.clone());
        }
        let (capacity, allocatable) = self.resources_of(&instance_type);
        Instance {
            provider_id: format!("aws:///{zone}/{id}"),
            instance_type,
            zone,
            capacity_type: ct,
            image_id: image,
            capacity,
            allocatable,
            labels,
            state: "pending".into(),
            claim_name: Some(req.claim_name.clone()),
        }
    }

    fn instance_from_describe(&self, i: &Ec2Instance) -> Instance {
        let ct = if i.instance_lifecycle.as_deref() == Some("spot") {
            CAPACITY_TYPE_SPOT
        } else {
            CAPACITY_TYPE_ON_DEMAND
        };
        let tag = |k: &str| {
            i.tag_set
                .item
                .iter()
                .find(|t| t.key == k)
                .map(|t| t.value.clone())
        };
        let zone = i.placement.availability_zone.clone();
        let mut labels = self.labels_for(&i.instance_type, &zone, ct);
        if let Some(np) = tag(LABEL_NODEPOOL) {
            labels.insert(LABEL_NODEPOOL.into(), np);
        }
        if let Some(nc) = tag(TAG_NODECLASS) {
            labels.insert(TAG_NODECLASS.into(), nc);
        }
        let (capacity, allocatable) = self.resources_of(&i.instance_type);
        Instance {
            provider_id: format!("aws:///{zone}/{}", i.instance_id),
            instance_type: i.instance_type.clone(),
            zone,
            capacity_type: ct.into(),
            image_id: i.image_id.clone(),
            capacity,
            allocatable,
            labels,
            state: i.instance_state.name.clone(),
            claim_name: tag(TAG_NODECLAIM),
        }
    }

    async fn describe_all(&self, base: Params) -> Result<Vec<Ec2Instance>, ProviderError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut p = base.clone();
            if let Some(t) = &token {
                p.set("NextToken", t.clone());
            }
            let r: DescribeInstancesResponse = self
                .ec2
                .call_parse("DescribeInstances", &p)
                .await
                .map_err(provider_error)?;
            for res in r.reservation_set.item {
                out.extend(res.instances_set.item);
            }
            match r.next_token.filter(|t| !t.is_empty()) {
                Some(t) if Some(&t) != token.as_ref() => token = Some(t),
                _ => return Ok(out),
            }
        }
    }

    fn instance_id(provider_id: &str) -> Result<&str, ProviderError> {
        interruption::instance_id_of(provider_id).ok_or_else(|| {
            ProviderError::Invalid(format!(
                "`{provider_id}` is not an AWS provider ID (aws:///<zone>/<instance-id>)"
            ))
        })
    }

    async fn get_instance(&self, provider_id: &str) -> Result<Instance, ProviderError> {
        let id = Self::instance_id(provider_id)?;
        let mut p = Params::new();
        p.set("InstanceId.1", id);
        let found = self.describe_all(p).await?;
        match found.iter().find(|i| i.instance_id == id) {
            Some(i) if i.instance_state.name != "terminated" => Ok(self.instance_from_describe(i)),
            Some(_) => Err(ProviderError::NotFound(format!(
                "instance {id} is terminated"
            ))),
            None => Err(ProviderError::NotFound(format!("instance {id} not found"))),
        }
    }

    async fn delete_instance(&self, provider_id: &str) -> Result<(), ProviderError> {
        let id = Self::instance_id(provider_id)?;
        let mut p = Params::new();
        p.set("InstanceId.1", id);
        let r: TerminateInstancesResponse = self
            .ec2
            .call_parse("TerminateInstances", &p)
            .await
            .map_err(provider_error)?;
        match r.instances_set.item.iter().find(|c| c.instance_id == id) {
            Some(c) if c.previous_state.name == "terminated" => Err(ProviderError::NotFound(
                format!("instance {id} is already terminated"),
            )),
            Some(_) => Ok(()),
            None => Err(ProviderError::NotFound(format!("instance {id} not found"))),
        }
    }

    async fn list_instances(&self) -> Result<Vec<Instance>, ProviderError> {
        let mut p = Params::new();
        let cluster_tag = format!("tag:kubernetes.io/cluster/{}", self.settings.cluster_name);
        p.filters(&[
            Filter::new(cluster_tag, &["owned"]),
            Filter::new("tag-key", &[LABEL_NODEPOOL]),
            Filter::new("instance-state-name", LIVE_STATES),
        ]);
        let all = self.describe_all(p).await?;
        Ok(all
            .iter()
            .filter(|i| i.instance_state.name != "terminated")
            .map(|i| self.instance_from_describe(i))
            .collect())
    }

    fn current_catalog(&self) -> Arc<Catalog> {
        let live = self.unavailable.live();
        let mut memo = self.catalog_memo.lock().unwrap_or_else(|e| e.into_inner());
        if live.is_empty() {
            return self.base_catalog.clone();
        }
        if let Some((k, c)) = memo.as_ref()
            && *k == live
        {
            return c.clone();
        }
        let mut cat = (*self.base_catalog).clone();
        for t in &mut cat.types {
            for o in &mut t.offerings {
                if self
                    .unavailable
                    .is_unavailable(&t.name, &o.zone, &o.capacity_type)
                {
                    o.available = false;
                }
            }
        }
        let cat = Arc::new(cat);
        *memo = Some((live, cat.clone()));
        cat
    }
}

impl CloudProvider for Aws {
    fn name(&self) -> &'static str {
        "aws"
    }

    fn create(&self, req: &LaunchRequest) -> BoxFuture<'_, Result<Instance, ProviderError>> {
        let req = req.clone();
        Box::pin(async move { self.launch(&req).await })
    }

    fn delete(&self, provider_id: &str) -> BoxFuture<'_, Result<(), ProviderError>> {
        let pid = provider_id.to_string();
        Box::pin(async move { self.delete_instance(&pid).await })
    }

    fn get(&self, provider_id: &str) -> BoxFuture<'_, Result<Instance, ProviderError>> {
        let pid = provider_id.to_string();
        Box::pin(async move { self.get_instance(&pid).await })
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Instance>, ProviderError>> {
        Box::pin(self.list_instances())
    }

    fn catalog(&self) -> Arc<Catalog> {
        self.current_catalog()
    }
}

/// EC2 client tokens are at most 64 ASCII characters: long claim names keep their tail
/// (the random suffix and the counter) and a hash of the whole.
fn truncate_token(t: &str) -> String {
    if t.len() <= 64 && t.is_ascii() {
        return t.to_string();
    }
    let tail: String = t
        .chars()
        .rev()
        .filter(char::is_ascii)
        .take(47)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{:016x}-{tail}", fnv64(t.as_bytes()))
}

/// FNV-1a 64: a stable hash for launch template names (std's hasher is randomly seeded).
fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn from_env_takes_the_region_and_endpoint_it_is_given() {
        let (client, _server) = crate::fixtures::mock_client();
        let clock = Arc::new(clock::ManualClock::new(clock::Timestamp::from_secs(0)));
        let aws = Aws::from_env(
            AwsSettings {
                cluster_name: "demo".into(),
                region: "eu-west-1".into(),
                endpoint: Some("http://127.0.0.1:9".into()),
                ..Default::default()
            },
            client,
            clock,
        )
        .await
        .expect("provider");
        assert_eq!(aws.ec2().region(), "eu-west-1");
        assert_eq!(aws.settings().ec2_endpoint(), "http://127.0.0.1:9");
        // The catalog offers the region's zones (prices stay the shipped us-east-1 ones).
        assert_eq!(
            aws.catalog().zones(),
            vec!["eu-west-1a", "eu-west-1b", "eu-west-1c"]
        );
        assert_eq!(aws.name(), "aws");
    }

    #[test]
    fn client_tokens_fit_ec2s_limit() {
        let short = "workers-abc12-1795899600000-0";
        assert_eq!(truncate_token(short), short);
        let long = format!("{}-1795899600000-7", "x".repeat(80));
        let t = truncate_token(&long);
        assert!(t.len() <= 64, "{t}");
        assert!(t.ends_with("-1795899600000-7"), "{t}");
    }
}
