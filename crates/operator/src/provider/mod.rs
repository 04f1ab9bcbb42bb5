//! Cloud providers: where NodeClaims become machines.
//!
//! The [`CloudProvider`] trait mirrors Karpenter's: create / delete / get / list and the
//! instance types a NodePool may launch, with typed errors ([`ProviderError`]) the NodeClaim
//! lifecycle acts on (insufficient capacity → try the next offering; not found → the instance
//! is gone).
//!
//! - [`kwok`]: fake nodes for tests, demos and cluster-scale simulation; plays the kubelet's
//!   part for its nodes.
//! - [`aws`]: EC2 through CreateFleet / TerminateInstances / DescribeInstances, an
//!   unavailable-offerings cache, `EC2NodeClass`, and the spot-interruption queue.

pub mod aws;
pub mod kwok;

use std::collections::BTreeMap;

use autoscale::scaler::BoxFuture;
use model::kube::ResourceList;
use thiserror::Error;

/// What to launch: one NodeClaim, already narrowed by the planner to the instance types,
/// zones and capacity types it may use (its `spec.requirements`), cheapest first.
#[derive(Debug, Clone)]
pub struct LaunchRequest {
    /// The NodeClaim's name (the Node gets the same name with the kwok provider).
    pub claim_name: String,
    pub nodepool: String,
    /// `spec.nodeClassRef.name` (an `EC2NodeClass` for the AWS provider).
    pub node_class: Option<String>,
    /// The claim, as the planner produced it.
    pub claim: model::karpenter::NodeClaim,
    /// Candidate instance types in the order to try (cheapest first), at most 60.
    pub instance_types: Vec<String>,
    /// Labels and taints the Node must carry (from the NodePool template).
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<model::kube::Taint>,
    pub startup_taints: Vec<model::kube::Taint>,
}

/// A launched (or discovered) machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// `aws:///us-east-1a/i-0123…` or `kwok://<node>`.
    pub provider_id: String,
    pub instance_type: String,
    pub zone: String,
    /// `on-demand` or `spot`.
    pub capacity_type: String,
    pub image_id: Option<String>,
    pub capacity: ResourceList,
    pub allocatable: ResourceList,
    /// Labels the Node will carry (well-known topology and instance labels).
    pub labels: BTreeMap<String, String>,
    /// `pending`, `running`, `shutting-down`, `terminated`, …
    pub state: String,
    /// The NodeClaim this instance was launched for (from its tags).
    pub claim_name: Option<String>,
}

/// Typed provider failures.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ProviderError {
    /// No capacity for any of the offered instance types/zones/capacity types; the offerings
    /// named are cached as unavailable for a while.
    #[error("insufficient capacity: {0}")]
    InsufficientCapacity(String),
    /// The instance does not exist (any more).
    #[error("instance not found: {0}")]
    NotFound(String),
    /// The NodeClass is missing or not usable yet.
    #[error("node class not ready: {0}")]
    NodeClassNotReady(String),
    /// The request was refused as invalid (bad AMI, subnet, …); retrying will not help.
    #[error("launch refused: {0}")]
    Invalid(String),
    /// Transport or throttling problem; retry later.
    #[error("provider API: {0}")]
    Api(String),
}

impl ProviderError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            ProviderError::InsufficientCapacity(_) => "insufficient_capacity",
            ProviderError::NotFound(_) => "not_found",
            ProviderError::NodeClassNotReady(_) => "node_class_not_ready",
            ProviderError::Invalid(_) => "invalid",
            ProviderError::Api(_) => "api",
        }
    }
}

/// Where NodeClaims become machines.
pub trait CloudProvider: Send + Sync {
    /// `kwok` or `aws`; also the scheme of provider IDs.
    fn name(&self) -> &'static str;
    /// Launch one machine for the claim.
    fn create(&self, req: &LaunchRequest) -> BoxFuture<'_, Result<Instance, ProviderError>>;
    /// Terminate the machine; `NotFound` once it is gone.
    fn delete(&self, provider_id: &str) -> BoxFuture<'_, Result<(), ProviderError>>;
    fn get(&self, provider_id: &str) -> BoxFuture<'_, Result<Instance, ProviderError>>;
    /// Every machine this provider launched for this cluster (garbage collection).
    fn list(&self) -> BoxFuture<'_, Result<Vec<Instance>, ProviderError>>;
    /// The instance catalog this provider offers (prices, allocatable, offerings), minus
    /// offerings currently known to be unavailable.
    fn catalog(&self) -> std::sync::Arc<provision::catalog::Catalog>;
}
