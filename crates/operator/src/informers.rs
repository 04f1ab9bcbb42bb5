//! One watch per kind for the whole node side: shared reflector stores plus change
//! notifications (client-go's shared informers).
//!
//! The provisioner, the NodeClaim lifecycle, disruption and the kwok kubelet all read Pods,
//! Nodes and NodeClaims. Each used to run its own watches (and disruption listed everything on
//! every pass): four copies of every Node and three of every Pod in memory, and the API server
//! serving the same objects again and again. Here each kind is watched once, kept once
//! (without `managedFields`, `last-applied-configuration` or what the operator never reads:
//! Pods as [`CachedPod`], Nodes without image and volume lists), and every component
//! subscribes to the changes.
//!
//! A subscriber gets a [`Change::Resync`] first (scan the store), then every apply and delete;
//! if it falls behind by more than the buffer it gets another `Resync` instead of the missed
//! changes. Nothing blocks the watch.
//!
//! **No action on stale state.** A watch that fails (the API server restarts, the connection
//! breaks, an error event) may have missed changes. [`relisting`] drops it and starts over
//! with a full list (after a back-off: 1 s doubling to 30 s), instead of resuming from the
//! last resourceVersion; from the error until that list is complete the informer is *stale*
//! ([`Informer::is_fresh`] is false, [`Informers::stale`] names it), and the node side takes no
//! step on it: no launch, no disruption, no drain decided from a store that may be behind.
//! The store keeps serving its last state meanwhile; the re-list replaces it at once.
//! Each subscriber has its own queue, and a change leaves
//! it when the subscriber takes it: no ring buffer keeps old versions of objects alive (a
//! broadcast ring of 4,096 slots per kind once held thousands of superseded Pods).

use std::fmt::Debug;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::cached_node::CachedNode as Node;
use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::DaemonSet;

use crate::cached_pod::CachedPod;
use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use serde::de::DeserializeOwned;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::crd::{NodeClaim, NodePool};

/// How many changes a subscriber may lag behind before it is told to resync instead.
const BUFFER: usize = 4096;

/// The first wait before a failed watch starts over; doubled per failure in a row.
pub const RELIST_BACKOFF: Duration = Duration::from_secs(1);
const RELIST_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// What a [`relisting`] watch yields.
#[derive(Debug)]
pub enum Watched<K> {
    Event(watcher::Event<K>),
    /// The watch failed (its error): what follows is a new list (`Init` … `InitDone`).
    Broken(String),
}

type WatchStream<K> = Pin<Box<dyn Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send>>;

/// A watch of `api` that starts over with a full list after any error (see the module
/// docs); never ends.
pub fn relisting<K>(api: Api<K>) -> impl Stream<Item = Watched<K>> + Send + use<K>
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + 'static,
{
    relisting_with(
        move || watcher(api.clone(), watcher::Config::default().any_semantic()).boxed(),
        RELIST_BACKOFF,
    )
}

/// [`relisting`] over any watch: `make` starts a new one (a list, then changes); after a
/// failure the next starts `backoff` later (doubled per failure in a row, at most 30 s; reset
/// by a completed list).
pub fn relisting_with<K, F>(make: F, backoff: Duration) -> impl Stream<Item = Watched<K>> + Send
where
    K: Send + 'static,
    F: FnMut() -> WatchStream<K> + Send + 'static,
{
    struct State<K, F> {
        make: F,
        stream: Option<WatchStream<K>>,
        wait: Option<Duration>,
        backoff: Duration,
        first: Duration,
    }
    let state = State {
        make,
        stream: None,
        wait: None,
        backoff,
        first: backoff,
    };
    futures::stream::unfold(state, |mut s| async move {
        if let Some(w) = s.wait.take()
            && !w.is_zero()
        {
            tokio::time::sleep(w).await;
        }
        let stream = s.stream.get_or_insert_with(&mut s.make);
        match stream.next().await {
            Some(Ok(ev)) => {
                if matches!(ev, watcher::Event::InitDone) {
                    s.backoff = s.first;
                }
                Some((Watched::Event(ev), s))
            }
            Some(Err(e)) => {
                s.stream = None;
                s.wait = Some(s.backoff);
                s.backoff = (s.backoff * 2).min(RELIST_BACKOFF_MAX).max(s.first);
                Some((Watched::Broken(e.to_string()), s))
            }
            // A watcher does not end; if one does, start over too.
            None => {
                s.stream = None;
                s.wait = Some(s.backoff);
                Some((Watched::Broken("the watch ended".into()), s))
            }
        }
    })
}

/// What a subscriber is told.
#[derive(Debug)]
pub enum Change<K> {
    /// Look at the whole store again: the first item of every subscription, after the watch
    /// re-listed, and after the subscriber fell too far behind.
    Resync,
    /// The object as the store now holds it (created or changed).
    Applied(Arc<K>),
    /// The object's last state before it was deleted.
    Deleted(Arc<K>),
}

impl<K> Clone for Change<K> {
    fn clone(&self) -> Self {
        match self {
            Change::Resync => Change::Resync,
            Change::Applied(k) => Change::Applied(k.clone()),
            Change::Deleted(k) => Change::Deleted(k.clone()),
        }
    }
}

/// One kind's store and change feed.
pub struct Informer<K: Resource + 'static>
where
    K::DynamicType: Eq + Hash + Clone,
{
    store: Store<K>,
    subscribers: Arc<Mutex<Vec<Subscriber<K>>>>,
    /// The watch failed and its re-list is not complete yet.
    broken: Arc<AtomicBool>,
}

/// One subscriber's queue (behind `send`, which maps a change to what the subscriber keeps),
/// and whether changes were dropped because it was full.
struct Subscriber<K> {
    send: SendFn<K>,
    lagged: Arc<AtomicBool>,
}

type SendFn<K> = Box<dyn Fn(&Change<K>) -> Sent + Send>;

enum Sent {
    Queued,
    Full,
    Closed,
}

impl<K: Resource + 'static> Clone for Informer<K>
where
    K::DynamicType: Eq + Hash + Clone,
{
    fn clone(&self) -> Self {
        Informer {
            store: self.store.clone(),
            subscribers: self.subscribers.clone(),
            broken: self.broken.clone(),
        }
    }
}

impl<K> Informer<K>
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Default + Send + Sync,
{
    /// An informer whose store is filled by `driver` (see [`Informer::drive`]).
    fn new() -> (Self, reflector::store::Writer<K>) {
        let (store, writer) = reflector::store::<K>();
        (
            Informer {
                store,
                subscribers: Arc::default(),
                broken: Arc::default(),
            },
            writer,
        )
    }

    /// The shared store (read-only).
    pub fn store(&self) -> &Store<K> {
        &self.store
    }

    /// Every object in the store.
    pub fn state(&self) -> Vec<Arc<K>> {
        self.store.state()
    }

    /// True once the first full list is in the store.
    pub fn is_ready(&self) -> bool {
        futures::FutureExt::now_or_never(self.store.wait_until_ready()).is_some()
    }

    /// Listed, and no watch failure since the last complete list: the store is current.
    pub fn is_fresh(&self) -> bool {
        self.is_ready() && !self.broken.load(Ordering::Acquire)
    }

    /// Shared flag: true from a watch failure until its re-list is complete.
    pub fn broken_flag(&self) -> Arc<AtomicBool> {
        self.broken.clone()
    }

    /// The change feed, starting with [`Change::Resync`].
    pub fn changes(&self) -> impl Stream<Item = Change<K>> + Send + 'static + use<K> {
        self.changes_map(|c| Some(c.clone()))
    }

    /// The change feed as the subscriber wants it: `f` runs when a change happens and only
    /// its result is queued (a subscriber that only needs to know *that* something changed,
    /// or an id, then keeps no object alive while it is busy). `f(&Change::Resync)` is the
    /// first item and replaces changes missed after a full queue.
    pub fn changes_map<T, F>(&self, f: F) -> impl Stream<Item = T> + Send + 'static + use<K, T, F>
    where
        T: Send + 'static,
        F: Fn(&Change<K>) -> Option<T> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let (tx, rx) = mpsc::channel(BUFFER);
        let lagged = Arc::new(AtomicBool::new(false));
        let map = f.clone();
        self.subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Subscriber {
                send: Box::new(move |c| match map(c) {
                    None => Sent::Queued,
                    Some(t) => match tx.try_send(t) {
                        Ok(()) => Sent::Queued,
                        Err(mpsc::error::TrySendError::Full(_)) => Sent::Full,
                        Err(mpsc::error::TrySendError::Closed(_)) => Sent::Closed,
                    },
                }),
                lagged: lagged.clone(),
            });
        let first = futures::stream::iter(f(&Change::Resync));
        let rest = futures::stream::unfold((rx, lagged, f), |(mut rx, lagged, f)| async move {
            loop {
                let t = rx.recv().await?;
                if lagged.swap(false, Ordering::AcqRel) {
                    // Changes were dropped: what is queued is stale too; the store has it all.
                    while rx.try_recv().is_ok() {}
                    match f(&Change::Resync) {
                        Some(r) => return Some((r, (rx, lagged, f))),
                        None => continue,
                    }
                }
                return Some((t, (rx, lagged, f)));
            }
        });
        first.chain(rest)
    }

    /// Tell every subscriber; a full queue marks its subscriber as lagging (it resyncs).
    fn publish(&self, c: Change<K>) {
        let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subs.retain(|s| match (s.send)(&c) {
            Sent::Queued => true,
            Sent::Full => {
                s.lagged.store(true, Ordering::Release);
                true
            }
            Sent::Closed => false,
        });
    }

    /// Objects to reconcile, for `Controller::for_shared_stream` / `watches_shared_stream`:
    /// every applied object, and the whole store on a resync (once it is ready).
    pub fn applied(&self) -> impl Stream<Item = Arc<K>> + Send + 'static + use<K> {
        let store = self.store.clone();
        self.changes().flat_map(move |c| {
            let items = match c {
                Change::Applied(k) => vec![k],
                Change::Resync => store.state(),
                Change::Deleted(_) => Vec::new(),
            };
            futures::stream::iter(items)
        })
    }

    /// Put one watch event into the store and tell the subscribers.
    fn apply(&self, writer: &mut reflector::store::Writer<K>, ev: watcher::Event<K>) {
        writer.apply_watcher_event(&ev);
        match ev {
            watcher::Event::Apply(k) => {
                let applied = self
                    .store
                    .get(&ObjectRef::from_obj(&k))
                    .unwrap_or_else(|| Arc::new(k));
                self.publish(Change::Applied(applied));
            }
            watcher::Event::Delete(k) => self.publish(Change::Deleted(Arc::new(k))),
            watcher::Event::InitDone => self.publish(Change::Resync),
            watcher::Event::Init | watcher::Event::InitApply(_) => {}
        }
    }

    /// Watch `api` into the store and publish the changes until `stop`.
    async fn drive(
        self,
        writer: reflector::store::Writer<K>,
        api: Api<K>,
        slim: fn(&mut K),
        what: &'static str,
        stop: watch::Receiver<bool>,
    ) {
        self.drive_stream(writer, relisting(api), slim, what, stop)
            .await
    }

    /// [`Informer::drive`] over any [`relisting`] stream.
    async fn drive_stream(
        self,
        mut writer: reflector::store::Writer<K>,
        stream: impl Stream<Item = Watched<K>>,
        slim: fn(&mut K),
        what: &'static str,
        stop: watch::Receiver<bool>,
    ) {
        let mut stream = std::pin::pin!(stream);
        let mut stopped = std::pin::pin!(crate::stopped(stop));
        loop {
            let w = tokio::select! {
                w = stream.next() => w,
                _ = &mut stopped => return,
            };
            match w {
                None => return,
                Some(Watched::Broken(e)) => {
                    if !self.broken.swap(true, Ordering::AcqRel) {
                        tracing::warn!(
                            "{what} watch failed ({e}): listing again; no node-side step until the list is complete"
                        );
                    }
                }
                Some(Watched::Event(mut ev)) => {
                    match &mut ev {
                        watcher::Event::Apply(k)
                        | watcher::Event::Delete(k)
                        | watcher::Event::InitApply(k) => slim(k),
                        watcher::Event::Init | watcher::Event::InitDone => {}
                    }
                    let listed = matches!(ev, watcher::Event::InitDone);
                    self.apply(&mut writer, ev);
                    if listed && self.broken.swap(false, Ordering::AcqRel) {
                        tracing::info!("{what} watch listed again: current");
                    }
                }
            }
        }
    }
}

/// The node side's shared informers. Cheap to clone.
#[derive(Clone)]
pub struct Informers {
    pub pods: Informer<CachedPod>,
    pub nodes: Informer<Node>,
    pub claims: Informer<NodeClaim>,
    pub nodepools: Informer<NodePool>,
    pub daemonsets: Informer<DaemonSet>,
}

impl Informers {
    /// Start one watch per kind (cluster-wide); they stop when `stop` turns true.
    pub fn start(
        client: &kube::Client,
        stop: &watch::Receiver<bool>,
    ) -> (Self, Vec<JoinHandle<()>>) {
        let mut tasks = Vec::new();
        let (pods, pw) = Informer::new();
        let (nodes, nw) = Informer::new();
        let (claims, cw) = Informer::new();
        let (nodepools, npw) = Informer::new();
        let (daemonsets, dw) = Informer::new();
        tasks.push(tokio::spawn(pods.clone().drive(
            pw,
            Api::all(client.clone()),
            slim_pod,
            "pod",
            stop.clone(),
        )));
        tasks.push(tokio::spawn(nodes.clone().drive(
            nw,
            Api::all(client.clone()),
            slim_node,
            "node",
            stop.clone(),
        )));
        tasks.push(tokio::spawn(claims.clone().drive(
            cw,
            Api::all(client.clone()),
            crate::lean,
            "nodeclaim",
            stop.clone(),
        )));
        tasks.push(tokio::spawn(nodepools.clone().drive(
            npw,
            Api::all(client.clone()),
            crate::lean,
            "nodepool",
            stop.clone(),
        )));
        tasks.push(tokio::spawn(daemonsets.clone().drive(
            dw,
            Api::all(client.clone()),
            crate::lean,
            "daemonset",
            stop.clone(),
        )));
        (
            Informers {
                pods,
                nodes,
                claims,
                nodepools,
                daemonsets,
            },
            tasks,
        )
    }

    /// The kinds whose watch failed and has not listed again (empty: every store current).
    pub fn stale(&self) -> Vec<&'static str> {
        [
            ("pods", self.pods.broken.load(Ordering::Acquire)),
            ("nodes", self.nodes.broken.load(Ordering::Acquire)),
            ("nodeclaims", self.claims.broken.load(Ordering::Acquire)),
            ("nodepools", self.nodepools.broken.load(Ordering::Acquire)),
            ("daemonsets", self.daemonsets.broken.load(Ordering::Acquire)),
        ]
        .into_iter()
        .filter_map(|(k, b)| b.then_some(k))
        .collect()
    }

    /// True once every store has its first full list.
    pub fn is_ready(&self) -> bool {
        self.pods.is_ready()
            && self.nodes.is_ready()
            && self.claims.is_ready()
            && self.nodepools.is_ready()
            && self.daemonsets.is_ready()
    }

    /// Resolves once every store has its first full list.
    pub async fn ready(&self) {
        let _ = self.pods.store.wait_until_ready().await;
        let _ = self.nodes.store.wait_until_ready().await;
        let _ = self.claims.store.wait_until_ready().await;
        let _ = self.nodepools.store.wait_until_ready().await;
        let _ = self.daemonsets.store.wait_until_ready().await;
    }
}

/// What the node side keeps of a Pod: [`CachedPod`] already drops what it never reads; no
/// `managedFields` or `last-applied-configuration`, and of the conditions only the two read
/// (`PodScheduled`: pending as unschedulable, bind time; `Ready`: the kwok kubelet), without
/// messages.
pub fn slim_pod(p: &mut CachedPod) {
    crate::lean(p);
    if let Some(cs) = p.status.as_mut().and_then(|s| s.conditions.as_mut()) {
        cs.retain(|c| c.type_ == "PodScheduled" || c.type_ == "Ready");
        cs.shrink_to_fit();
        for c in cs.iter_mut() {
            c.message = None;
            c.last_probe_time = None;
        }
    }
}

/// What the node side keeps of a Node: [`CachedNode`](crate::cached_node::CachedNode)
/// already drops what it never reads (images, volumes, node info, addresses, …); no
/// `managedFields`, and no condition messages or heartbeat times.
pub fn slim_node(n: &mut Node) {
    crate::lean(n);
    if let Some(st) = n.status.as_mut() {
        for c in st.conditions.iter_mut().flatten() {
            c.message = None;
            c.last_heartbeat_time = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use serde_json::json;

    fn node(name: &str, rv: &str) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name, "resourceVersion": rv}})).unwrap()
    }

    fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
        s.next().now_or_never().flatten()
    }

    /// A watch that fails is stale until a new full list is complete: the store keeps its
    /// last state meanwhile (not emptied, not half-replaced), then the list replaces it and
    /// subscribers are told to resync.
    #[tokio::test]
    async fn a_failed_watch_is_stale_until_it_has_listed_again() {
        type Item = Result<watcher::Event<Node>, watcher::Error>;
        let (tx, rx) = futures::channel::mpsc::unbounded::<Item>();
        let mut second = Some(rx);
        let mut calls = 0;
        let make = move || -> WatchStream<Node> {
            calls += 1;
            match calls {
                1 => futures::stream::iter(vec![
                    Ok(watcher::Event::Init),
                    Ok(watcher::Event::InitApply(node("a", "1"))),
                    Ok(watcher::Event::InitDone),
                    Ok(watcher::Event::Apply(node("b", "2"))),
                    Err(watcher::Error::NoResourceVersion),
                ])
                .boxed(),
                2 => second.take().expect("second watch").boxed(),
                _ => futures::stream::pending().boxed(),
            }
        };
        let (inf, w) = Informer::<Node>::new();
        let mut changes = Box::pin(inf.changes());
        let (_stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(inf.clone().drive_stream(
            w,
            relisting_with(make, Duration::ZERO),
            |_| {},
            "node",
            stop,
        ));
        assert!(matches!(changes.next().await, Some(Change::Resync)));
        assert!(matches!(changes.next().await, Some(Change::Resync)));
        assert!(matches!(changes.next().await, Some(Change::Applied(_))));
        // The error comes next: wait (bounded, no timer) until the informer has taken it.
        for i in 0.. {
            if !inf.is_fresh() {
                break;
            }
            assert!(i < 10_000, "the failure was never noticed");
            tokio::task::yield_now().await;
        }
        assert!(inf.is_ready(), "listed once: ready, but not fresh");
        let mut names: Vec<String> = inf
            .state()
            .iter()
            .map(|n| n.metadata.name.clone().unwrap_or_default())
            .collect();
        names.sort();
        assert_eq!(names, ["a", "b"], "the last state is kept while re-listing");

        // The new list: half of it changes nothing, its end replaces the store.
        tx.unbounded_send(Ok(watcher::Event::Init)).unwrap();
        tx.unbounded_send(Ok(watcher::Event::InitApply(node("c", "5"))))
            .unwrap();
        tx.unbounded_send(Ok(watcher::Event::InitDone)).unwrap();
        assert!(matches!(changes.next().await, Some(Change::Resync)));
        assert!(inf.is_fresh());
        let names: Vec<String> = inf
            .state()
            .iter()
            .map(|n| n.metadata.name.clone().unwrap_or_default())
            .collect();
        assert_eq!(names, ["c"]);
        task.abort();
    }

    #[test]
    fn subscribers_get_a_resync_first_then_every_change_from_the_store() {
        let (inf, mut w) = Informer::<Node>::new();
        let mut changes = Box::pin(inf.changes());
        assert!(matches!(next(&mut changes), Some(Change::Resync)));
        assert!(!inf.is_ready());
        inf.apply(&mut w, watcher::Event::Init);
        inf.apply(&mut w, watcher::Event::InitApply(node("a", "1")));
        assert!(
            next(&mut changes).is_none(),
            "nothing before the list is complete"
        );
        inf.apply(&mut w, watcher::Event::InitDone);
        assert!(inf.is_ready());
        assert!(matches!(next(&mut changes), Some(Change::Resync)));
        assert_eq!(inf.state().len(), 1);
        inf.apply(&mut w, watcher::Event::Apply(node("b", "2")));
        match next(&mut changes) {
            Some(Change::Applied(b)) => {
                let cached = inf.store().get(&ObjectRef::new("b")).unwrap();
                assert!(
                    Arc::ptr_eq(&b, &cached),
                    "the store's own object, not a copy"
                );
            }
            other => panic!("expected Applied, got {other:?}"),
        }
        inf.apply(&mut w, watcher::Event::Delete(node("a", "3")));
        match next(&mut changes) {
            Some(Change::Deleted(a)) => assert_eq!(a.metadata.name.as_deref(), Some("a")),
            other => panic!("expected Deleted, got {other:?}"),
        }
        assert_eq!(inf.state().len(), 1);
        assert!(next(&mut changes).is_none());
    }

    #[test]
    fn a_subscriber_that_falls_behind_is_told_to_resync() {
        let (inf, mut w) = Informer::<Node>::new();
        let mut changes = Box::pin(inf.changes());
        assert!(matches!(next(&mut changes), Some(Change::Resync)));
        for i in 0..BUFFER + 10 {
            inf.apply(&mut w, watcher::Event::Apply(node(&format!("n{i}"), "1")));
        }
        assert!(matches!(next(&mut changes), Some(Change::Resync)));
        // The queued changes were stale: the resync covered them.
        assert!(next(&mut changes).is_none());
        inf.apply(&mut w, watcher::Event::Apply(node("late", "2")));
        assert!(matches!(next(&mut changes), Some(Change::Applied(_))));
        // `applied()` turns a resync into the whole store.
        let mut applied = Box::pin(inf.applied());
        let mut n = 0;
        while next(&mut applied).is_some() {
            n += 1;
        }
        assert_eq!(n, BUFFER + 11);
    }

    #[test]
    fn a_superseded_version_is_freed_once_subscribers_took_it() {
        let (inf, mut w) = Informer::<Node>::new();
        let mut changes = Box::pin(inf.changes());
        assert!(matches!(next(&mut changes), Some(Change::Resync)));
        inf.apply(&mut w, watcher::Event::Apply(node("a", "1")));
        let v1 = match next(&mut changes) {
            Some(Change::Applied(a)) => Arc::downgrade(&a),
            other => panic!("expected Applied, got {other:?}"),
        };
        inf.apply(&mut w, watcher::Event::Apply(node("a", "2")));
        assert!(matches!(next(&mut changes), Some(Change::Applied(_))));
        assert!(v1.upgrade().is_none(), "nothing keeps version 1 alive");
        // A subscriber that went away is forgotten.
        drop(changes);
        inf.apply(&mut w, watcher::Event::Apply(node("a", "3")));
        assert!(inf.subscribers.lock().unwrap().is_empty());
    }

    #[test]
    fn a_mapped_feed_queues_only_what_the_subscriber_keeps() {
        let (inf, mut w) = Informer::<Node>::new();
        let mut names = Box::pin(inf.changes_map(|c| match c {
            Change::Resync => Some("resync".to_string()),
            Change::Applied(n) => n.metadata.name.clone(),
            Change::Deleted(_) => None,
        }));
        inf.apply(&mut w, watcher::Event::Apply(node("a", "1")));
        let v1 = Arc::downgrade(&inf.store().get(&ObjectRef::new("a")).unwrap());
        inf.apply(&mut w, watcher::Event::Apply(node("a", "2")));
        inf.apply(&mut w, watcher::Event::Delete(node("a", "3")));
        // Nothing taken yet, and still nothing holds the superseded or deleted versions.
        assert!(v1.upgrade().is_none());
        assert_eq!(next(&mut names).as_deref(), Some("resync"));
        assert_eq!(next(&mut names).as_deref(), Some("a"));
        assert_eq!(next(&mut names).as_deref(), Some("a"));
        assert!(next(&mut names).is_none(), "deletes mapped to nothing");
    }

    #[test]
    fn the_cached_pod_keeps_what_scheduling_reads() {
        let mut p: CachedPod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "a"},
                "annotations": {"kedge.dev/busy": "true",
                    "kubectl.kubernetes.io/last-applied-configuration": "{…}"},
                "managedFields": [{"manager": "kubectl"}]},
            "spec": {
                "nodeName": "n1",
                "nodeSelector": {"kubernetes.io/arch": "amd64"},
                "tolerations": [{"key": "k", "operator": "Exists"}],
                "containers": [{"name": "c", "image": "busybox", "command": ["sleep"],
                    "env": [{"name": "A", "value": "1"}],
                    "resources": {"requests": {"cpu": "1"}}}],
                "initContainers": [{"name": "s", "image": "x", "restartPolicy": "Always",
                    "resources": {"requests": {"memory": "1Gi"}}}],
                "volumes": [{"name": "v", "emptyDir": {}}],
                "serviceAccountName": "default", "dnsPolicy": "ClusterFirst",
                "schedulerName": "default-scheduler", "enableServiceLinks": true
            },
            "status": {"phase": "Running", "podIP": "10.0.0.1", "hostIP": "10.1.0.1",
                "podIPs": [{"ip": "10.0.0.1"}], "qosClass": "Burstable",
                "conditions": [{"type": "Initialized", "status": "True"},
                    {"type": "Ready", "status": "True", "message": "m", "lastProbeTime": null},
                    {"type": "ContainersReady", "status": "True"},
                    {"type": "PodScheduled", "status": "True", "reason": "r"}],
                "containerStatuses": [{"name": "c", "image": "busybox", "imageID": "",
                    "ready": true, "restartCount": 0}]}
        }))
        .unwrap();
        slim_pod(&mut p);
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(
            v,
            json!({
                "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "a"},
                    "annotations": {"kedge.dev/busy": "true"}},
                "spec": {
                    "nodeName": "n1",
                    "nodeSelector": {"kubernetes.io/arch": "amd64"},
                    "tolerations": [{"key": "k", "operator": "Exists"}],
                    "containers": [{"name": "c", "image": "busybox",
                        "resources": {"requests": {"cpu": "1"}}}],
                    "initContainers": [{"name": "s", "image": "x", "restartPolicy": "Always",
                        "resources": {"requests": {"memory": "1Gi"}}}]
                },
                "status": {"phase": "Running",
                    "conditions": [{"type": "Ready", "status": "True"},
                        {"type": "PodScheduled", "status": "True", "reason": "r"}]}
            })
        );
    }

    #[test]
    fn slim_node_drops_images() {
        let mut n: Node = serde_json::from_value(json!({
            "metadata": {"name": "n", "managedFields": [{"manager": "kubelet"}]},
            "status": {"allocatable": {"cpu": "2"},
                "images": [{"names": ["busybox"], "sizeBytes": 1}],
                "volumesInUse": ["v"],
                "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {"architecture": "amd64", "bootID": "", "containerRuntimeVersion": "",
                    "kernelVersion": "", "kubeProxyVersion": "", "kubeletVersion": "v1.20.2",
                    "machineID": "", "operatingSystem": "linux", "osImage": "", "systemUUID": ""},
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": "2026-11-29T00:00:00Z"}]}
        }))
        .unwrap();
        slim_node(&mut n);
        assert_eq!(
            serde_json::to_value(&n).unwrap(),
            json!({"metadata": {"name": "n"},
                "status": {"allocatable": {"cpu": "2"},
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}})
        );
    }
}
