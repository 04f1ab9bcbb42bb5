//! Shared dependencies of every reconciler (the controller-rs `Context` pattern).

use std::sync::Arc;

use clock::Clock;

use crate::cached_pod::CachedPod;
use crate::informers::Informer;
use crate::server::Metrics;

/// Settings of one operator process.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Namespaces to watch for ScaledObjects; empty = all.
    pub namespaces: Vec<String>,
    /// The namespace this operator runs in (Lease, ClusterTriggerAuthentication secrets).
    pub own_namespace: String,
    /// Identity used in the leader Lease and as the field manager suffix.
    pub identity: String,
    /// Field manager for server-side apply.
    pub field_manager: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            namespaces: Vec::new(),
            own_namespace: "kedge".into(),
            identity: "kedge-operator".into(),
            field_manager: "kedge".into(),
        }
    }
}

/// Everything a reconciler needs besides the object itself.
#[derive(Clone)]
pub struct Context {
    pub client: kube::Client,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub settings: Arc<Settings>,
    /// The operator's one Pod watch (the node side's shared informer) when it runs one: the
    /// scale loops read their consumers from it and the `kubernetes-workload`, `cpu` and
    /// `memory` triggers their pods, instead of a second watch or a list per poll. `None`
    /// without a provider: the scale loops then watch pod metadata in their namespaces only.
    pub pods: Option<Informer<CachedPod>>,
}
