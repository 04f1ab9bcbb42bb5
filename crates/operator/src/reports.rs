//! What the scale loops report — Events and the ScaledObject's status — written behind the
//! loops instead of inside them.
//!
//! A poll writes the count itself ([`Class::Scale`]) and hands its Events and the status that
//! follows to [`Reports`], which writes them with [`Class::Report`] permits and returns at
//! once, so the next poll starts on time. Waiting for the reports inside the poll made the
//! loops' cadence the API server's: at 1,000 active ScaledObjects (each active poll moves
//! `lastActiveTime`, as KEDA's does, so each writes status) the reports took 16 s to get
//! through, and the next poll, the one that sees a scale-in, started up to 9.6 s late.
//!
//! Per object, what is not written yet is kept once: its Events in order (a few at most), and
//! only the newest status — a status that was superseded before its turn is never written, as
//! the newest one carries everything it had. One object's reports are written one call after
//! another, never two at once, so they reach the API server in the order they were made.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use engine::WorkloadKey;
use k8s_openapi::api::core::v1::ObjectReference;
use tokio::sync::Notify;

use crate::crd::ScaledObjectStatus;
use crate::events::{EventRecorder, EventType};
use crate::permits::{ApiPermits, Class};

/// Events kept per object while they wait; more are dropped (the scale loops make one or two
/// per step, so only an API server that refuses everything for minutes gets here).
const MAX_EVENTS: usize = 16;

/// An Event to publish.
pub struct Note {
    pub regarding: ObjectReference,
    pub type_: EventType,
    pub reason: &'static str,
    pub message: String,
    /// When it happened (the step's time).
    pub at: clock::Timestamp,
}

/// A status to write, and where to note it once written.
pub struct StatusWrite {
    pub status: ScaledObjectStatus,
    /// [`crate::crd::status_hash`] of `status`.
    pub hash: u64,
    /// The hash of the status last written for the object (0: none yet); the scale loop
    /// reads it to tell whether its status still needs writing.
    pub written: Arc<AtomicU64>,
}

#[derive(Default)]
struct Pending {
    events: Vec<Note>,
    status: Option<StatusWrite>,
    /// A writer has this object's reports in hand.
    busy: bool,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.events.is_empty() && self.status.is_none()
    }
}

#[derive(Default)]
struct Queue {
    /// Objects with reports to write that no writer has in hand, in the order they had them.
    order: VecDeque<WorkloadKey>,
    pending: HashMap<WorkloadKey, Pending>,
}

/// The scale loops' pending reports (see the module doc). Writers: [`Reports::write_next`].
pub struct Reports {
    queue: Mutex<Queue>,
    /// A report arrived (for the writers).
    arrived: Notify,
    /// A writer finished an object (for [`Reports::forget`]).
    finished: Notify,
}

impl Default for Reports {
    fn default() -> Self {
        Reports {
            queue: Mutex::new(Queue::default()),
            arrived: Notify::new(),
            finished: Notify::new(),
        }
    }
}

impl Reports {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue `events` and the newest `status` of `key` (replacing one not written yet).
    pub fn submit(&self, key: &WorkloadKey, events: Vec<Note>, status: Option<StatusWrite>) {
        if events.is_empty() && status.is_none() {
            return;
        }
        let mut q = self.lock();
        let Queue { order, pending } = &mut *q;
        let p = match pending.entry(key.clone()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                order.push_back(key.clone());
                e.insert(Pending::default())
            }
        };
        for e in events {
            if p.events.len() < MAX_EVENTS {
                p.events.push(e);
            } else {
                tracing::debug!(scaled_object = %key, reason = e.reason, "event dropped: too many waiting");
            }
        }
        if status.is_some() {
            p.status = status;
        }
        drop(q);
        self.arrived.notify_one();
    }

    /// Drop what `key` has not written yet and wait until a write in progress is done: a
    /// stopped loop's status must not land after what the reconcile writes next.
    pub async fn forget(&self, key: &WorkloadKey) {
        loop {
            let finished = self.finished.notified();
            {
                let mut q = self.lock();
                match q.pending.get_mut(key) {
                    None => return,
                    Some(p) if !p.busy => {
                        q.pending.remove(key);
                        q.order.retain(|k| k != key);
                        return;
                    }
                    Some(p) => {
                        p.events.clear();
                        p.status = None;
                    }
                }
            }
            finished.await;
        }
    }

    /// Drop every report not written yet and wait for the writes in progress (the loops
    /// stopped: leadership lost or shutdown).
    pub async fn clear(&self) {
        loop {
            let finished = self.finished.notified();
            {
                let mut q = self.lock();
                q.order.clear();
                q.pending.retain(|_, p| {
                    p.events.clear();
                    p.status = None;
                    p.busy
                });
                if q.pending.is_empty() {
                    return;
                }
            }
            finished.await;
        }
    }

    /// Reports waiting or being written, by object.
    pub fn len(&self) -> usize {
        self.lock().pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Take the next object's reports (marking it busy); waits for one.
    async fn take(&self) -> (WorkloadKey, Vec<Note>, Option<StatusWrite>) {
        loop {
            let arrived = self.arrived.notified();
            {
                let mut q = self.lock();
                let Queue { order, pending } = &mut *q;
                while let Some(key) = order.pop_front() {
                    if let Some(p) = pending.get_mut(&key)
                        && !p.busy
                    {
                        p.busy = true;
                        let events = std::mem::take(&mut p.events);
                        let status = p.status.take();
                        drop(q);
                        // Another writer may take the next object.
                        self.arrived.notify_one();
                        return (key, events, status);
                    }
                }
            }
            arrived.await;
        }
    }

    /// The object's reports are written: free it, queued again if more arrived meanwhile.
    fn done(&self, key: WorkloadKey) {
        let mut q = self.lock();
        let Queue { order, pending } = &mut *q;
        if let Entry::Occupied(mut e) = pending.entry(key) {
            e.get_mut().busy = false;
            if e.get().is_empty() {
                e.remove();
            } else {
                order.push_back(e.key().clone());
                drop(q);
                self.arrived.notify_one();
            }
        }
        self.finished.notify_waiters();
    }

    /// One writer: forever, the next object's Events in order, then its status, each call
    /// under a [`Class::Report`] permit. The scale loops run several.
    pub async fn write_next<W: Writer>(&self, permits: &ApiPermits, writer: &W) {
        loop {
            let (key, events, status) = self.take().await;
            for n in events {
                let permit = permits.acquire(Class::Report).await;
                writer.event(n).await;
                drop(permit);
            }
            if let Some(s) = status {
                let permit = permits.acquire(Class::Report).await;
                let written = writer.status(&key, &s.status).await;
                drop(permit);
                if written {
                    s.written.store(s.hash, Ordering::Relaxed);
                }
            }
            self.done(key);
        }
    }
}

/// Where reports go (the API server; a recorder in tests).
pub trait Writer: Send + Sync {
    /// Publish an Event (a failure is logged, not retried: an Event never holds up work).
    fn event(&self, note: Note) -> impl std::future::Future<Output = ()> + Send;
    /// Write a ScaledObject's status; whether it was written (else the loop's next status
    /// is written even if unchanged).
    fn status(
        &self,
        key: &WorkloadKey,
        status: &ScaledObjectStatus,
    ) -> impl std::future::Future<Output = bool> + Send;
}

/// The API server, through the event recorder and a server-side apply of `/status`.
pub struct KubeWriter {
    pub ctx: crate::context::Context,
    pub recorder: Arc<EventRecorder>,
}

impl Writer for KubeWriter {
    async fn event(&self, n: Note) {
        let at = k8s_openapi::jiff::Timestamp::from_millisecond(n.at.as_millis() as i64)
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        let published = Box::pin(self.recorder.publish_at(
            &n.regarding,
            n.type_,
            n.reason,
            "Scale",
            n.message,
            at,
        ))
        .await;
        if let Err(e) = published {
            tracing::debug!(error = %e, reason = n.reason, "could not publish event");
        }
    }

    async fn status(&self, key: &WorkloadKey, status: &ScaledObjectStatus) -> bool {
        match Box::pin(crate::scaledobject::patch_status(
            &self.ctx,
            &key.namespace,
            &key.name,
            status,
        ))
        .await
        {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "status update failed");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what is written; each write waits for `gate` when set.
    #[derive(Default)]
    struct Recording {
        log: Mutex<Vec<String>>,
        gate: Option<Arc<tokio::sync::Semaphore>>,
    }

    impl Writer for Recording {
        async fn event(&self, n: Note) {
            if let Some(g) = &self.gate {
                g.acquire().await.unwrap().forget();
            }
            self.log.lock().unwrap().push(format!("event {}", n.reason));
        }
        async fn status(&self, key: &WorkloadKey, s: &ScaledObjectStatus) -> bool {
            if let Some(g) = &self.gate {
                g.acquire().await.unwrap().forget();
            }
            self.log
                .lock()
                .unwrap()
                .push(format!("status {} {:?}", key.name, s.desired_replicas));
            true
        }
    }

    fn note(reason: &'static str) -> Note {
        Note {
            regarding: ObjectReference::default(),
            type_: EventType::Normal,
            reason,
            message: String::new(),
            at: clock::Timestamp::ZERO,
        }
    }

    fn status(n: i32, written: &Arc<AtomicU64>) -> StatusWrite {
        StatusWrite {
            status: ScaledObjectStatus {
                desired_replicas: Some(n),
                ..Default::default()
            },
            hash: n as u64 + 100,
            written: written.clone(),
        }
    }

    #[tokio::test]
    async fn only_the_newest_status_is_written_after_the_events_in_order() {
        let reports = Arc::new(Reports::default());
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let writer = Arc::new(Recording {
            gate: Some(gate.clone()),
            ..Default::default()
        });
        let permits = ApiPermits::new(1);
        let (a, b) = (WorkloadKey::new("ns", "a"), WorkloadKey::new("ns", "b"));
        let written = Arc::new(AtomicU64::new(0));
        reports.submit(&a, vec![note("first")], Some(status(1, &written)));
        let task = {
            let (reports, writer, permits) = (reports.clone(), writer.clone(), permits.clone());
            tokio::spawn(async move { reports.write_next(&permits, &*writer).await })
        };
        // The writer has a's first report in hand; more arrive meanwhile.
        while reports.lock().pending.get(&a).is_none_or(|p| !p.busy) {
            tokio::task::yield_now().await;
        }
        reports.submit(&b, vec![], Some(status(7, &Arc::default())));
        reports.submit(&a, vec![note("second")], Some(status(2, &written)));
        reports.submit(&a, vec![note("third")], Some(status(3, &written)));
        gate.add_permits(100);
        while !reports.is_empty() {
            tokio::task::yield_now().await;
        }
        task.abort();
        assert_eq!(
            *writer.log.lock().unwrap(),
            [
                "event first",
                "status a Some(1)",
                "status b Some(7)",
                "event second",
                "event third",
                "status a Some(3)",
            ]
        );
        assert_eq!(written.load(Ordering::Relaxed), 103);
        assert_eq!(permits.available(), 1);
    }

    #[tokio::test]
    async fn forgetting_drops_what_waits_and_waits_for_the_write_in_hand() {
        let reports = Arc::new(Reports::default());
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let writer = Arc::new(Recording {
            gate: Some(gate.clone()),
            ..Default::default()
        });
        let permits = ApiPermits::new(1);
        let a = WorkloadKey::new("ns", "a");
        let written = Arc::new(AtomicU64::new(0));
        reports.submit(&a, vec![], Some(status(1, &written)));
        let task = {
            let (reports, writer, permits) = (reports.clone(), writer.clone(), permits.clone());
            tokio::spawn(async move { reports.write_next(&permits, &*writer).await })
        };
        while reports.lock().pending.get(&a).is_none_or(|p| !p.busy) {
            tokio::task::yield_now().await;
        }
        reports.submit(&a, vec![note("later")], Some(status(2, &written)));
        let forget = {
            let reports = reports.clone();
            tokio::spawn(async move { reports.forget(&WorkloadKey::new("ns", "a")).await })
        };
        tokio::task::yield_now().await;
        assert!(!forget.is_finished(), "waits for the write in hand");
        gate.add_permits(100);
        forget.await.unwrap();
        assert!(reports.is_empty());
        // Only the write that was in hand happened.
        assert_eq!(*writer.log.lock().unwrap(), ["status a Some(1)"]);
        assert_eq!(written.load(Ordering::Relaxed), 101);
        task.abort();
    }
}
