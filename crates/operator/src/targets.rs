//! Watch caches for the scale loops: scale targets' replica counts and their pods' busy state,
//! read from memory on every poll instead of from the API server (KEDA reads targets through
//! controller-runtime's cache the same way).
//!
//! - **Deployments and StatefulSets** are watched (in the operator's namespaces) and kept as
//!   [`Workload`]: generation, `spec.replicas`, ready replicas and the pod selector — nothing
//!   else of the object. Other kinds with a `/scale` subresource are read with GET `/scale`
//!   (see `scale.rs`).
//! - **Pods** are kept as [`PodMeta`]: labels (for selectors), the `kedge.dev/busy`
//!   annotation, the `controller.kubernetes.io/pod-deletion-cost` annotation, the creation
//!   time and whether the pod is terminating — what busy-aware scale-in reads. When the
//!   operator manages nodes, they come from its one shared Pod watch (the node side's
//!   informer, see `informers.rs`; no second watch) with their phase, readiness and node, so
//!   victims are ranked as the ReplicaSet ranks them. Without a provider the pods are watched
//!   here, as metadata only (`PartialObjectMetadata`: a fraction of a Pod on the wire); a
//!   pod's phase and node are not in its metadata, so every live pod then counts as a ready,
//!   running pod (kedge's ranking among idle consumers falls back to the newest first).
//!
//! Each store is replaced as a whole when its watch (re)lists, so a restart never leaves
//! deleted objects behind. [`TargetCaches::synced`] resolves once every watch has listed once;
//! the ScaledObject controller waits for it before its first poll (as controller-runtime waits
//! for its caches), so a scale-in never sees "no pods" for "not listed yet".

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use engine::{ConsumerPod, PodPhase};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Api, ApiResource, PartialObjectMeta};
use kube::runtime::watcher;
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::busy::{ANNOTATION_BUSY, ANNOTATION_CONCURRENCY, ANNOTATION_WORK_TIME};
use crate::cached_pod::CachedPod;
use crate::informers::{Change, Informer, Watched, relisting};
use model::kube::POD_DELETION_COST;

/// A label selector, as Deployments carry it (`matchLabels` / `matchExpressions`) or as
/// `/scale` reports it (`status.selector`, the string form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector(Vec<Requirement>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equal(Box<str>, Box<str>),
    NotEqual(Box<str>, Box<str>),
    In(Box<str>, Vec<Box<str>>),
    NotIn(Box<str>, Vec<Box<str>>),
    Exists(Box<str>),
    DoesNotExist(Box<str>),
}

impl Selector {
    /// A Deployment's or StatefulSet's `spec.selector`; `None` for an operator Kubernetes does
    /// not define.
    pub fn of(ls: &LabelSelector) -> Option<Selector> {
        let mut reqs = Vec::new();
        for (k, v) in ls.match_labels.iter().flatten() {
            reqs.push(Requirement::Equal(k.as_str().into(), v.as_str().into()));
        }
        for e in ls.match_expressions.iter().flatten() {
            let key: Box<str> = e.key.as_str().into();
            let values = || {
                e.values
                    .iter()
                    .flatten()
                    .map(|v| v.as_str().into())
                    .collect()
            };
            reqs.push(match e.operator.as_str() {
                "In" => Requirement::In(key, values()),
                "NotIn" => Requirement::NotIn(key, values()),
                "Exists" => Requirement::Exists(key),
                "DoesNotExist" => Requirement::DoesNotExist(key),
                _ => return None,
            });
        }
        Some(Selector(reqs))
    }

    /// The string form (`app=web,tier in (a,b),!canary`), as `/scale`'s `status.selector`.
    pub fn parse(s: &str) -> Result<Selector, String> {
        let mut reqs = Vec::new();
        let mut rest = s.trim();
        while !rest.is_empty() {
            // One requirement: up to the next comma outside parentheses.
            let mut depth = 0;
            let end = rest
                .char_indices()
                .find(|&(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    c == ',' && depth == 0
                })
                .map_or(rest.len(), |(i, _)| i);
            let part = rest[..end].trim();
            rest = rest.get(end + 1..).unwrap_or("").trim();
            if part.is_empty() {
                continue;
            }
            reqs.push(requirement(part).ok_or_else(|| {
                format!("label selector {s:?}: cannot read the requirement {part:?}")
            })?);
        }
        Ok(Selector(reqs))
    }

    /// Whether a pod with these labels is selected.
    pub fn matches(&self, labels: &[(Box<str>, Box<str>)]) -> bool {
        let get = |k: &str| {
            labels
                .binary_search_by(|(l, _)| (**l).cmp(k))
                .ok()
                .map(|i| &*labels[i].1)
        };
        self.0.iter().all(|r| match r {
            Requirement::Equal(k, v) => get(k) == Some(v),
            Requirement::NotEqual(k, v) => get(k) != Some(v),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| **v == *x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| **v != *x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::DoesNotExist(k) => get(k).is_none(),
        })
    }

    /// Selects every pod (no requirement).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A `LabelSelector` in the string form `kubectl -l` and `/scale`'s `status.selector` use
/// (`app=web,tier in (a,b),!canary`); `None` for an operator Kubernetes does not define.
pub fn selector_string(ls: &LabelSelector) -> Option<String> {
    let mut terms = Vec::new();
    for (k, v) in ls.match_labels.iter().flatten() {
        terms.push(format!("{k}={v}"));
    }
    for e in ls.match_expressions.iter().flatten() {
        let values = || e.values.clone().unwrap_or_default().join(",");
        terms.push(match e.operator.as_str() {
            "In" => format!("{} in ({})", e.key, values()),
            "NotIn" => format!("{} notin ({})", e.key, values()),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            _ => return None,
        });
    }
    Some(terms.join(","))
}

fn requirement(part: &str) -> Option<Requirement> {
    let word = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && !s.contains([' ', '(', ')', '=', '!', ','])).then(|| s.into())
    };
    let set = |s: &str| -> Option<Vec<Box<str>>> {
        let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
        inner.split(',').map(word).collect()
    };
    if let Some(k) = part.strip_prefix('!') {
        return Some(Requirement::DoesNotExist(word(k)?));
    }
    if let Some((k, v)) = part.split_once("!=") {
        return Some(Requirement::NotEqual(word(k)?, word(v).unwrap_or_default()));
    }
    if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Some(Requirement::Equal(word(k)?, word(v).unwrap_or_default()));
    }
    if let Some((k, v)) = part.split_once(" notin ") {
        return Some(Requirement::NotIn(word(k)?, set(v)?));
    }
    if let Some((k, v)) = part.split_once(" in ") {
        return Some(Requirement::In(word(k)?, set(v)?));
    }
    Some(Requirement::Exists(word(part)?))
}

/// The kinds whose replica counts come from a watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
}

impl WorkloadKind {
    /// The watched kind for an API group and kind, if it is one.
    pub fn of(group: &str, kind: &str) -> Option<WorkloadKind> {
        match (group, kind) {
            ("apps", "Deployment") => Some(WorkloadKind::Deployment),
            ("apps", "StatefulSet") => Some(WorkloadKind::StatefulSet),
            _ => None,
        }
    }

    fn resource(self) -> ApiResource {
        let (kind, plural) = match self {
            WorkloadKind::Deployment => ("Deployment", "deployments"),
            WorkloadKind::StatefulSet => ("StatefulSet", "statefulsets"),
        };
        ApiResource {
            group: "apps".into(),
            version: "v1".into(),
            api_version: "apps/v1".into(),
            kind: kind.into(),
            plural: plural.into(),
        }
    }
}

/// What the scale loops read of a Deployment or StatefulSet.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// `metadata.generation`: a write to `/scale` that changed `spec.replicas` raises it, so a
    /// loop can tell whether the cache has seen its own write yet.
    pub generation: i64,
    /// `spec.replicas` (Kubernetes' default 1 when absent).
    pub replicas: u32,
    pub ready: u32,
    /// `None` when the selector uses an operator Kubernetes does not define.
    pub selector: Option<Arc<Selector>>,
}

/// What the scale loops read of a Pod (its metadata; phase, readiness and node when the
/// whole Pod is at hand).
#[derive(Debug, Clone, PartialEq)]
pub struct PodMeta {
    /// Sorted by key.
    labels: Box<[(Box<str>, Box<str>)]>,
    busy: bool,
    deletion_cost: i32,
    created: clock::Timestamp,
    /// Being deleted, or finished (`Succeeded`/`Failed`: no longer one of the ReplicaSet's
    /// active pods).
    terminating: bool,
    /// From a whole Pod (the shared Pod watch); from metadata alone every live pod counts as
    /// a ready, running pod on no known node.
    node: Option<Box<str>>,
    phase: PodPhase,
    ready: bool,
    /// A container in `CrashLoopBackOff` after a short run (from a whole Pod only).
    crash_looping: bool,
    /// Its consumer's measured cost of one message (`kedge.dev/work-time` ÷
    /// `kedge.dev/concurrency`).
    per_message: Option<std::time::Duration>,
}

impl PodMeta {
    /// From a whole Pod as the operator's shared Pod watch caches it: phase, readiness and
    /// node, which the ReplicaSet ranks victims by.
    fn of_pod(p: &CachedPod) -> PodMeta {
        let mut m = PodMeta::of(&p.metadata);
        let status = p.status.as_ref();
        let phase = status.and_then(|s| s.phase.as_deref());
        m.terminating |= matches!(phase, Some("Succeeded" | "Failed"));
        m.phase = match phase {
            Some("Running") => PodPhase::Running,
            Some("Pending") | None => PodPhase::Pending,
            Some(_) => PodPhase::Unknown,
        };
        m.ready = status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        m.crash_looping = status.is_some_and(|s| s.crash_looping());
        m.node = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .filter(|n| !n.is_empty())
            .map(Box::from);
        m
    }

    fn of(meta: &ObjectMeta) -> PodMeta {
        let mut labels: Vec<(Box<str>, Box<str>)> = meta
            .labels
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
            .collect();
        labels.sort();
        let annotation = |k: &str| meta.annotations.as_ref().and_then(|a| a.get(k));
        PodMeta {
            labels: labels.into_boxed_slice(),
            busy: annotation(ANNOTATION_BUSY).is_some_and(|v| v.trim() == "true"),
            deletion_cost: annotation(POD_DELETION_COST)
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
            created: meta
                .creation_timestamp
                .as_ref()
                .map(|t| clock::Timestamp::from_millis(t.0.as_millisecond().max(0) as u64))
                .unwrap_or_default(),
            terminating: meta.deletion_timestamp.is_some(),
            node: None,
            phase: PodPhase::Running,
            ready: true,
            crash_looping: false,
            per_message: crate::busy::per_message(
                annotation(ANNOTATION_WORK_TIME).map(String::as_str),
                annotation(ANNOTATION_CONCURRENCY).map(String::as_str),
            ),
        }
    }
}

/// Objects by namespace and name, replaced per watch scope when the watch lists.
struct Store<V> {
    by_ns: HashMap<Box<str>, HashMap<Box<str>, V>>,
}

impl<V> Default for Store<V> {
    fn default() -> Self {
        Store {
            by_ns: HashMap::new(),
        }
    }
}

impl<V> Store<V> {
    fn get(&self, ns: &str, name: &str) -> Option<&V> {
        self.by_ns.get(ns)?.get(name)
    }
    fn insert(&mut self, ns: &str, name: &str, v: V) {
        match self.by_ns.get_mut(ns) {
            Some(m) => {
                m.insert(name.into(), v);
            }
            None => {
                self.by_ns
                    .insert(ns.into(), HashMap::from([(Box::from(name), v)]));
            }
        }
    }
    fn remove(&mut self, ns: &str, name: &str) {
        if let Some(m) = self.by_ns.get_mut(ns) {
            m.remove(name);
            if m.is_empty() {
                self.by_ns.remove(ns);
            }
        }
    }
    /// A fresh list of one watch's scope (`None`: every namespace).
    fn replace(&mut self, scope: Option<&str>, listed: Store<V>) {
        match scope {
            None => *self = listed,
            Some(ns) => {
                self.by_ns.remove(ns);
                self.by_ns.extend(listed.by_ns);
            }
        }
    }
}

/// One kind's store and whether its watches have listed.
struct Cache<V> {
    store: RwLock<Store<V>>,
    /// Watches that have not listed once yet.
    unsynced: watch::Sender<usize>,
}

impl<V> Cache<V> {
    fn new() -> Cache<V> {
        Cache {
            store: RwLock::new(Store::default()),
            unsynced: watch::channel(0).0,
        }
    }
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Store<V>> {
        self.store.read().unwrap_or_else(|e| e.into_inner())
    }
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Store<V>> {
        self.store.write().unwrap_or_else(|e| e.into_inner())
    }
    fn synced(&self) -> bool {
        *self.unsynced.borrow() == 0
    }
}

/// The scale loops' watch caches (see the module doc). Cheap to share behind an `Arc`.
pub struct TargetCaches {
    deployments: Cache<Workload>,
    statefulsets: Cache<Workload>,
    pods: Cache<PodMeta>,
    /// With the shared Pod watch: its failure flag (the pods are stale until it re-lists).
    pods_broken: std::sync::OnceLock<Arc<std::sync::atomic::AtomicBool>>,
}

/// The view of a Deployment or StatefulSet a watch decodes: only these fields are kept from
/// the wire (the pod template, strategy, conditions are skipped by the decoder).
#[derive(Debug, Clone, Deserialize)]
struct WorkloadView {
    metadata: ObjectMeta,
    #[serde(default)]
    spec: WorkloadSpec,
    #[serde(default)]
    status: WorkloadStatus,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct WorkloadSpec {
    replicas: Option<i32>,
    selector: Option<LabelSelector>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WorkloadStatus {
    ready_replicas: Option<i32>,
}

impl kube::Resource for WorkloadView {
    type DynamicType = ApiResource;
    type Scope = kube::core::DynamicResourceScope;

    fn kind(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.kind.as_str().into()
    }
    fn group(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.group.as_str().into()
    }
    fn version(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.version.as_str().into()
    }
    fn api_version(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.api_version.as_str().into()
    }
    fn plural(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.plural.as_str().into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl WorkloadView {
    fn workload(&self) -> Workload {
        Workload {
            generation: self.metadata.generation.unwrap_or(0),
            replicas: self.spec.replicas.unwrap_or(1).max(0) as u32,
            ready: self.status.ready_replicas.unwrap_or(0).max(0) as u32,
            selector: self
                .spec
                .selector
                .as_ref()
                .and_then(Selector::of)
                .map(Arc::new),
        }
    }
}

impl TargetCaches {
    /// Empty caches (tests fill them with [`TargetCaches::apply_workload`] and
    /// [`TargetCaches::apply_pod`]; [`TargetCaches::start`] fills them from watches).
    pub fn new() -> TargetCaches {
        TargetCaches {
            deployments: Cache::new(),
            statefulsets: Cache::new(),
            pods: Cache::new(),
            pods_broken: std::sync::OnceLock::new(),
        }
    }

    fn workloads(&self, kind: WorkloadKind) -> &Cache<Workload> {
        match kind {
            WorkloadKind::Deployment => &self.deployments,
            WorkloadKind::StatefulSet => &self.statefulsets,
        }
    }

    /// Watch Deployments, StatefulSets and Pods (metadata) in `namespaces` (empty: all) until
    /// `stop`. With `pods` (the operator's shared Pod watch) the pods come from it instead of
    /// a watch of their own.
    pub fn start(
        self: &Arc<Self>,
        client: &kube::Client,
        namespaces: &[String],
        pods: Option<&Informer<CachedPod>>,
        stop: &watch::Receiver<bool>,
    ) -> Vec<JoinHandle<()>> {
        let scopes: Vec<Option<String>> = if namespaces.is_empty() {
            vec![None]
        } else {
            namespaces.iter().cloned().map(Some).collect()
        };
        let mut tasks = Vec::new();
        for scope in scopes {
            for kind in [WorkloadKind::Deployment, WorkloadKind::StatefulSet] {
                let ar = kind.resource();
                let api: Api<WorkloadView> = match &scope {
                    Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
                    None => Api::all_with(client.clone(), &ar),
                };
                let caches = self.clone();
                self.workloads(kind).unsynced.send_modify(|n| *n += 1);
                tasks.push(tokio::spawn(drive(
                    api,
                    scope.clone(),
                    caches,
                    move |c| c.workloads(kind),
                    |w: &WorkloadView| w.workload(),
                    stop.clone(),
                )));
            }
            if pods.is_some() {
                continue;
            }
            let api: Api<PartialObjectMeta<Pod>> = match &scope {
                Some(ns) => Api::namespaced(client.clone(), ns),
                None => Api::all(client.clone()),
            };
            self.pods.unsynced.send_modify(|n| *n += 1);
            tasks.push(tokio::spawn(drive(
                api,
                scope.clone(),
                self.clone(),
                |c| &c.pods,
                |p: &PartialObjectMeta<Pod>| PodMeta::of(&p.metadata),
                stop.clone(),
            )));
        }
        if let Some(informer) = pods {
            let _ = self.pods_broken.set(informer.broken_flag());
            self.pods.unsynced.send_modify(|n| *n += 1);
            tasks.push(tokio::spawn(follow(
                informer.clone(),
                namespaces.to_vec(),
                self.clone(),
                stop.clone(),
            )));
        }
        tasks
    }

    /// Resolves once every watch has listed once (or at once without watches).
    pub async fn synced(&self) {
        for c in [&self.deployments, &self.statefulsets] {
            let _ = c.unsynced.subscribe().wait_for(|n| *n == 0).await;
        }
        let _ = self.pods.unsynced.subscribe().wait_for(|n| *n == 0).await;
    }

    /// A Deployment's or StatefulSet's counts and selector; `Err` with the reason when the
    /// cache cannot answer (not listed yet, or listing again after a watch failure: read
    /// `/scale` instead; listed and absent: gone).
    pub fn workload(&self, kind: WorkloadKind, ns: &str, name: &str) -> Result<Workload, Missing> {
        let c = self.workloads(kind);
        if !c.synced() {
            // Not listed yet, or listing again after a failure: the entry may be stale.
            return Err(Missing::NotListed);
        }
        match c.read().get(ns, name) {
            Some(w) => Ok(w.clone()),
            None => Err(Missing::Absent),
        }
    }

    /// The live (not terminating) pods `selector` selects in `ns`, as the engine sees
    /// consumers (`namespace/name`); `None` while the pod watch has not listed (or, after a
    /// failure, not listed again).
    pub fn consumers(&self, ns: &str, selector: &Selector) -> Option<Vec<ConsumerPod>> {
        let broken = self
            .pods_broken
            .get()
            .is_some_and(|b| b.load(std::sync::atomic::Ordering::Acquire));
        if !self.pods.synced() || broken {
            return None;
        }
        let store = self.pods.read();
        let Some(pods) = store.by_ns.get(ns) else {
            return Some(Vec::new());
        };
        Some(
            pods.iter()
                .filter(|(_, p)| !p.terminating && selector.matches(&p.labels))
                .map(|(name, p)| ConsumerPod {
                    name: format!("{ns}/{name}"),
                    node: p.node.as_deref().map(String::from),
                    phase: p.phase,
                    ready: p.ready,
                    busy: p.busy,
                    created: p.created,
                    deletion_cost: p.deletion_cost,
                    crash_looping: p.crash_looping,
                    per_message: p.per_message,
                })
                .collect(),
        )
    }

    /// Put a workload into the cache as a watch would (tests).
    pub fn apply_workload(&self, kind: WorkloadKind, ns: &str, name: &str, w: Workload) {
        let c = self.workloads(kind);
        c.write().insert(ns, name, w);
    }

    /// Put a pod's metadata into the cache as a watch would (tests).
    pub fn apply_pod(&self, meta: &ObjectMeta) {
        let (Some(ns), Some(name)) = (meta.namespace.as_deref(), meta.name.as_deref()) else {
            return;
        };
        self.pods.write().insert(ns, name, PodMeta::of(meta));
    }
}

impl Default for TargetCaches {
    fn default() -> Self {
        TargetCaches::new()
    }
}

/// Why the cache has no such workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Its watch has not listed yet.
    NotListed,
    /// Listed, and not there: the object does not exist (now).
    Absent,
}

/// Feed one watch into one cache until `stop`.
async fn drive<K, V>(
    api: Api<K>,
    scope: Option<String>,
    caches: Arc<TargetCaches>,
    cache: impl Fn(&TargetCaches) -> &Cache<V> + Send + 'static,
    convert: impl Fn(&K) -> V + Send + 'static,
    stop: watch::Receiver<bool>,
) where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    V: Send + Sync + 'static,
{
    drive_stream(relisting(api), scope, caches, cache, convert, stop).await
}

/// [`drive`] over any [`relisting`] watch. A failed watch makes its cache unsynced again
/// until the new list is complete: meanwhile the scale loops read `/scale` instead of the
/// cache, and a loop that needs its consumers (kedge's idle-first scale-in) skips the poll
/// rather than decide on pods that may be stale.
async fn drive_stream<K, V>(
    stream: impl futures::Stream<Item = Watched<K>>,
    scope: Option<String>,
    caches: Arc<TargetCaches>,
    cache: impl Fn(&TargetCaches) -> &Cache<V> + Send + 'static,
    convert: impl Fn(&K) -> V + Send + 'static,
    mut stop: watch::Receiver<bool>,
) where
    K: kube::Resource + Clone + Send + 'static,
    V: Send + Sync + 'static,
{
    // `start` counted this watch as not listed yet.
    let mut listed_once = false;
    // Failed after a list; counted as not listed again until the next one.
    let mut stale = false;
    let mut listing: Option<Store<V>> = None;
    let mut stream = std::pin::pin!(stream);
    loop {
        let w = tokio::select! {
            w = stream.next() => w,
            _ = stop.wait_for(|v| *v) => break,
        };
        let Some(w) = w else { break };
        let ev = match w {
            Watched::Event(ev) => ev,
            Watched::Broken(e) => {
                tracing::warn!(error = %e, "scale target watch failed: listing again; the cache is not used until then");
                listing = None;
                if listed_once && !stale {
                    stale = true;
                    cache(&caches).unsynced.send_modify(|n| *n += 1);
                }
                continue;
            }
        };
        let c = cache(&caches);
        let key = |o: &K| {
            let m = o.meta();
            Some((m.namespace.clone()?, m.name.clone()?))
        };
        match ev {
            watcher::Event::Init => listing = Some(Store::default()),
            watcher::Event::InitApply(o) => {
                if let (Some(l), Some((ns, name))) = (listing.as_mut(), key(&o)) {
                    l.insert(&ns, &name, convert(&o));
                }
            }
            watcher::Event::InitDone => {
                if let Some(l) = listing.take() {
                    c.write().replace(scope.as_deref(), l);
                }
                if !listed_once || stale {
                    listed_once = true;
                    stale = false;
                    c.unsynced.send_modify(|n| *n = n.saturating_sub(1));
                }
            }
            watcher::Event::Apply(o) => {
                if let Some((ns, name)) = key(&o) {
                    let v = convert(&o);
                    c.write().insert(&ns, &name, v);
                }
            }
            watcher::Event::Delete(o) => {
                if let Some((ns, name)) = key(&o) {
                    c.write().remove(&ns, &name);
                }
            }
        }
    }
    if !listed_once || stale {
        // Stopped before listing: nobody should wait for this watch any more.
        cache(&caches)
            .unsynced
            .send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// One change of the shared Pod watch as the pod cache takes it.
enum PodChange {
    Resync,
    Apply(Box<str>, Box<str>, PodMeta),
    Delete(Box<str>, Box<str>),
}

/// Keep the pod cache from the operator's shared Pod watch (pods of `namespaces`, empty:
/// all) until `stop`. A change is converted when it happens, so the queue keeps no Pod alive.
async fn follow(
    informer: Informer<CachedPod>,
    namespaces: Vec<String>,
    caches: Arc<TargetCaches>,
    mut stop: watch::Receiver<bool>,
) {
    let in_scope = move |p: &CachedPod| -> Option<(Box<str>, Box<str>)> {
        let ns = p.metadata.namespace.as_deref()?;
        let name = p.metadata.name.as_deref()?;
        (namespaces.is_empty() || namespaces.iter().any(|n| n == ns))
            .then(|| (ns.into(), name.into()))
    };
    let scope = in_scope.clone();
    let changes = informer.changes_map(move |c| match c {
        Change::Resync => Some(PodChange::Resync),
        Change::Applied(p) => {
            scope(p.as_ref()).map(|(ns, name)| PodChange::Apply(ns, name, PodMeta::of_pod(p)))
        }
        Change::Deleted(p) => scope(p.as_ref()).map(|(ns, name)| PodChange::Delete(ns, name)),
    });
    let mut changes = std::pin::pin!(changes);
    // `start` counted this feed as not listed yet.
    let mut listed_once = false;
    loop {
        let change = tokio::select! {
            c = changes.next() => c,
            _ = stop.wait_for(|v| *v) => break,
        };
        let Some(change) = change else { break };
        match change {
            // The feed's first item comes before the watch has listed; another follows the
            // list.
            PodChange::Resync if !informer.is_ready() => {}
            PodChange::Resync => {
                let mut listed = Store::default();
                for p in informer.state() {
                    if let Some((ns, name)) = in_scope(p.as_ref()) {
                        listed.insert(&ns, &name, PodMeta::of_pod(&p));
                    }
                }
                caches.pods.write().replace(None, listed);
                if !listed_once {
                    listed_once = true;
                    caches
                        .pods
                        .unsynced
                        .send_modify(|n| *n = n.saturating_sub(1));
                }
            }
            PodChange::Apply(ns, name, m) => caches.pods.write().insert(&ns, &name, m),
            PodChange::Delete(ns, name) => caches.pods.write().remove(&ns, &name),
        }
    }
    if !listed_once {
        caches
            .pods
            .unsynced
            .send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(l: &[(&str, &str)]) -> Vec<(Box<str>, Box<str>)> {
        let mut v: Vec<(Box<str>, Box<str>)> =
            l.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        v.sort();
        v
    }

    /// A scale-target watch that fails makes its cache unsynced until it has listed again:
    /// the loops read `/scale` meanwhile (`Missing::NotListed`), not the stale entry.
    #[tokio::test]
    async fn a_failed_target_watch_is_not_read_until_it_has_listed_again() {
        let dep = |replicas: i32| -> WorkloadView {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "web", "namespace": "ns", "generation": 1},
                "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}}
            }))
            .expect("view")
        };
        let caches = Arc::new(TargetCaches::new());
        caches.deployments.unsynced.send_modify(|n| *n += 1);
        let (tx, rx) = futures::channel::mpsc::unbounded::<Watched<WorkloadView>>();
        let (_stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(drive_stream(
            rx,
            None,
            caches.clone(),
            |c| &c.deployments,
            |w: &WorkloadView| w.workload(),
            stop,
        ));
        let mut unsynced = caches.deployments.unsynced.subscribe();
        let read = |c: &TargetCaches| c.workload(WorkloadKind::Deployment, "ns", "web");
        tx.unbounded_send(Watched::Event(watcher::Event::Init))
            .unwrap();
        tx.unbounded_send(Watched::Event(watcher::Event::InitApply(dep(3))))
            .unwrap();
        tx.unbounded_send(Watched::Event(watcher::Event::InitDone))
            .unwrap();
        unsynced.wait_for(|n| *n == 0).await.expect("listed");
        assert_eq!(read(&caches).expect("cached").replicas, 3);

        tx.unbounded_send(Watched::Broken("connection reset".into()))
            .unwrap();
        unsynced.wait_for(|n| *n == 1).await.expect("stale");
        assert_eq!(read(&caches).unwrap_err(), Missing::NotListed);
        // A second failure before the list counts once.
        tx.unbounded_send(Watched::Broken("again".into())).unwrap();
        tx.unbounded_send(Watched::Event(watcher::Event::Init))
            .unwrap();
        tx.unbounded_send(Watched::Event(watcher::Event::InitApply(dep(7))))
            .unwrap();
        tx.unbounded_send(Watched::Event(watcher::Event::InitDone))
            .unwrap();
        unsynced.wait_for(|n| *n == 0).await.expect("listed again");
        assert_eq!(read(&caches).expect("cached").replicas, 7);
        drop(tx);
        task.await.expect("drive ends with its stream");
        assert_eq!(*caches.deployments.unsynced.borrow(), 0);
    }

    /// With the shared Pod watch, its failure makes the consumers unknown (a kedge scale-in
    /// skips the poll) until it has listed again.
    #[test]
    fn consumers_are_unknown_while_the_shared_pod_watch_is_stale() {
        let caches = TargetCaches::new();
        let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let _ = caches.pods_broken.set(flag.clone());
        let mut meta = ObjectMeta {
            name: Some("web-1".into()),
            namespace: Some("ns".into()),
            ..Default::default()
        };
        meta.labels = Some([("app".to_string(), "web".to_string())].into());
        caches.apply_pod(&meta);
        let sel = Selector::parse("app=web").unwrap();
        assert_eq!(caches.consumers("ns", &sel).expect("known").len(), 1);
        flag.store(true, std::sync::atomic::Ordering::Release);
        assert!(caches.consumers("ns", &sel).is_none());
        flag.store(false, std::sync::atomic::Ordering::Release);
        assert!(caches.consumers("ns", &sel).is_some());
    }

    /// A consumer's `kedge.dev/work-time` ÷ `kedge.dev/concurrency` is what one message costs
    /// it; a bad value reads as no report.
    #[test]
    fn consumers_report_what_a_message_costs_them_by_annotation() {
        let caches = TargetCaches::new();
        let sel = Selector::parse("app=web").unwrap();
        let pod = |name: &str, annotations: &[(&str, &str)]| ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            labels: Some([("app".to_string(), "web".to_string())].into()),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        };
        caches.apply_pod(&pod(
            "a",
            &[
                ("kedge.dev/work-time", "1200ms"),
                ("kedge.dev/concurrency", "4"),
            ],
        ));
        caches.apply_pod(&pod("b", &[("kedge.dev/work-time", "2s")]));
        caches.apply_pod(&pod("c", &[("kedge.dev/work-time", "fast")]));
        caches.apply_pod(&pod("d", &[]));
        let mut got: Vec<(String, Option<std::time::Duration>)> = caches
            .consumers("ns", &sel)
            .expect("known")
            .into_iter()
            .map(|p| (p.name, p.per_message))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("ns/a".into(), Some(std::time::Duration::from_millis(300))),
                ("ns/b".into(), Some(std::time::Duration::from_secs(2))),
                ("ns/c".into(), None),
                ("ns/d".into(), None),
            ]
        );
    }

    #[test]
    fn selectors_read_both_forms_and_match_as_kubernetes_does() {
        let s = Selector::parse("app=web, tier in (a,b),!canary,env!=prod,zone notin (z1),track")
            .unwrap();
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "a"), ("track", "x")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "c"), ("track", "x")])));
        assert!(!s.matches(&labels(&[
            ("app", "web"),
            ("tier", "a"),
            ("track", "x"),
            ("canary", "1")
        ])));
        assert!(!s.matches(&labels(&[
            ("app", "web"),
            ("tier", "b"),
            ("track", "x"),
            ("env", "prod")
        ])));
        assert!(!s.matches(&labels(&[
            ("app", "web"),
            ("tier", "b"),
            ("track", "x"),
            ("zone", "z1")
        ])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "b")])));
        assert!(Selector::parse("app in (a").is_err());
        assert!(Selector::parse("").unwrap().is_empty());

        let ls: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]},
                                 {"key": "canary", "operator": "DoesNotExist"}]}))
        .unwrap();
        let s = Selector::of(&ls).unwrap();
        assert_eq!(s, Selector::parse("app=web,tier in (a,b),!canary").unwrap());
        let bad: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchExpressions": [{"key": "tier", "operator": "Near", "values": ["a"]}]}))
        .unwrap();
        assert_eq!(Selector::of(&bad), None);
    }

    #[test]
    fn pods_are_read_as_consumers_by_selector_without_terminating_ones() {
        let caches = TargetCaches::new();
        caches.pods.unsynced.send_modify(|n| *n += 1);
        assert_eq!(
            caches.consumers("ns", &Selector::parse("app=web").unwrap()),
            None,
            "not listed yet"
        );
        caches.pods.unsynced.send_modify(|n| *n -= 1);
        let meta = |name: &str, app: &str, ann: serde_json::Value, deleting: bool| -> ObjectMeta {
            let mut m = serde_json::json!({"name": name, "namespace": "ns", "labels": {"app": app},
                "annotations": ann, "creationTimestamp": "2026-01-01T00:00:10Z"});
            if deleting {
                m["deletionTimestamp"] = "2026-01-01T00:01:00Z".into();
            }
            serde_json::from_value(m).unwrap()
        };
        caches.apply_pod(&meta(
            "a",
            "web",
            serde_json::json!({ANNOTATION_BUSY: "true"}),
            false,
        ));
        caches.apply_pod(&meta(
            "b",
            "web",
            serde_json::json!({POD_DELETION_COST: "-5"}),
            false,
        ));
        caches.apply_pod(&meta("c", "web", serde_json::json!({}), true));
        caches.apply_pod(&meta("d", "db", serde_json::json!({}), false));
        let mut got = caches
            .consumers("ns", &Selector::parse("app=web").unwrap())
            .unwrap();
        got.sort_by(|x, y| x.name.cmp(&y.name));
        let names: Vec<(&str, bool, i32)> = got
            .iter()
            .map(|p| (p.name.as_str(), p.busy, p.deletion_cost))
            .collect();
        assert_eq!(names, [("ns/a", true, 0), ("ns/b", false, -5)]);
        assert_eq!(got[0].created, clock::Timestamp::from_secs(1_767_225_610));
    }

    #[test]
    fn a_whole_pod_gives_phase_readiness_and_node_and_finished_pods_do_not_count() {
        let pod = |phase: &str, ready: &str, node: Option<&str>| -> CachedPod {
            let mut spec = serde_json::json!({"containers": [{"name": "c"}]});
            if let Some(n) = node {
                spec["nodeName"] = n.into();
            }
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web"}},
                "spec": spec,
                "status": {"phase": phase, "conditions": [{"type": "Ready", "status": ready}]}}))
            .unwrap()
        };
        let m = PodMeta::of_pod(&pod("Running", "True", Some("n1")));
        assert_eq!(
            (m.phase, m.ready, m.node.as_deref(), m.terminating),
            (PodPhase::Running, true, Some("n1"), false)
        );
        let m = PodMeta::of_pod(&pod("Pending", "False", None));
        assert_eq!(
            (m.phase, m.ready, m.node.as_deref(), m.terminating),
            (PodPhase::Pending, false, None, false)
        );
        assert!(PodMeta::of_pod(&pod("Succeeded", "False", Some("n1"))).terminating);
        assert!(PodMeta::of_pod(&pod("Failed", "False", Some("n1"))).terminating);
        assert_eq!(
            PodMeta::of_pod(&pod("Unknown", "False", Some("n1"))).phase,
            PodPhase::Unknown
        );
        // A container in CrashLoopBackOff after a 2 s run crash-loops; after a 20-minute run
        // (a crash now and then) it does not; nor does a running one.
        let looping = |waiting: &str, started: &str| -> CachedPod {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "p", "namespace": "ns"},
                "spec": {"containers": [{"name": "c"}], "nodeName": "n1"},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
                    "containerStatuses": [{"name": "c", "restartCount": 3, "ready": false,
                        "state": {"waiting": {"reason": waiting}},
                        "lastState": {"terminated": {"exitCode": 137,
                            "startedAt": started, "finishedAt": "2026-12-03T10:20:02Z"}}}]}}))
            .unwrap()
        };
        assert!(
            PodMeta::of_pod(&looping("CrashLoopBackOff", "2026-12-03T10:20:00Z")).crash_looping
        );
        assert!(
            !PodMeta::of_pod(&looping("CrashLoopBackOff", "2026-12-03T10:00:00Z")).crash_looping
        );
        assert!(
            !PodMeta::of_pod(&looping("ContainerCreating", "2026-12-03T10:20:00Z")).crash_looping
        );
        // Metadata alone: a live pod counts as ready and running.
        let m = PodMeta::of(&pod("Pending", "False", None).metadata);
        assert_eq!((m.phase, m.ready), (PodPhase::Running, true));
    }

    #[test]
    fn a_label_selector_reads_back_as_the_same_selector() {
        let ls: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]},
                                 {"key": "zone", "operator": "NotIn", "values": ["z1"]},
                                 {"key": "track", "operator": "Exists"},
                                 {"key": "canary", "operator": "DoesNotExist"}]}))
        .unwrap();
        let s = selector_string(&ls).unwrap();
        assert_eq!(s, "app=web,tier in (a,b),zone notin (z1),track,!canary");
        assert_eq!(Selector::parse(&s).unwrap(), Selector::of(&ls).unwrap());
        assert!(model::keda::triggers::more::parse_label_selector(&s).is_ok());
        let bad: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchExpressions": [{"key": "tier", "operator": "Near", "values": ["a"]}]}))
        .unwrap();
        assert_eq!(selector_string(&bad), None);
    }

    #[test]
    fn a_listing_replaces_only_its_own_scope() {
        let mut s: Store<u32> = Store::default();
        s.insert("a", "x", 1);
        s.insert("b", "y", 2);
        let mut fresh = Store::default();
        fresh.insert("a", "z", 3);
        s.replace(Some("a"), fresh);
        assert_eq!(
            (s.get("a", "x"), s.get("a", "z"), s.get("b", "y")),
            (None, Some(&3), Some(&2))
        );
        s.replace(None, Store::default());
        assert!(s.by_ns.is_empty());
    }

    #[test]
    fn a_workload_keeps_counts_generation_and_selector() {
        let v: WorkloadView = serde_json::from_value(serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns", "generation": 7},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
            "status": {"readyReplicas": 2, "replicas": 3}}))
        .unwrap();
        let w = v.workload();
        assert_eq!((w.generation, w.replicas, w.ready), (7, 3, 2));
        assert_eq!(
            *w.selector.clone().unwrap(),
            Selector::parse("app=web").unwrap()
        );
        // A watch that has not listed cannot say "absent"; once listed, it can.
        let caches = TargetCaches::new();
        caches.deployments.unsynced.send_modify(|n| *n += 1);
        assert_eq!(
            caches.workload(WorkloadKind::Deployment, "ns", "web"),
            Err(Missing::NotListed)
        );
        caches.deployments.unsynced.send_modify(|n| *n -= 1);
        assert_eq!(
            caches.workload(WorkloadKind::Deployment, "ns", "web"),
            Err(Missing::Absent)
        );
        caches.apply_workload(WorkloadKind::Deployment, "ns", "web", w.clone());
        assert_eq!(
            caches.workload(WorkloadKind::Deployment, "ns", "web"),
            Ok(w)
        );
        assert_eq!(
            caches.workload(WorkloadKind::StatefulSet, "ns", "web"),
            Err(Missing::Absent)
        );
    }
}
