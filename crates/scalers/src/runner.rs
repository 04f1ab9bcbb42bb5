//! The scale loop: one [`engine::ScaleLoop`] per ScaledObject, driven on its cadence. Every
//! substrate that polls real triggers uses it: `kedge operator` (the target is a Deployment
//! read from a watch cache and written through `/scale`) and `kedge bench autoscale` (an
//! in-memory target).
//!
//! # What one poll does
//! Wait until the engine's due time (or an event-driven trigger's wake-up), poll every
//! trigger with a timeout, read the target ([`Target::observe`]: its replica count and, when
//! the engine marks victims, its consumers with their busy state), step the engine at the
//! clock's `now`, record KEDA's metrics and the loop's lateness, then hand the step to
//! [`Target::carry_out`] (mark victims, write the count, announce the intent, publish the
//! events, write status). The engine decides *when* the next poll is due, *how many* replicas
//! and *which* consumers go; this module only keeps time and does the I/O in order.
//!
//! # Scheduling (why not one task per object)
//! Objects are spread over a few shards (one per worker thread). A shard is one task that
//! owns its objects, its timers (batches of the objects due in the same millisecond) and the
//! polls in flight: it takes what is due,
//! starts those polls together and sleeps until the next due time. Polls that complete at
//! once (in-memory triggers) cost no task wake-up and no timer of their own; polls that wait
//! (HTTP triggers, API permits) wait inside the shard without blocking the others. A task
//! per object made every poll a timer registration, a wake-up and a scheduler round trip, and
//! at 100,000 objects polled every second the loops fell behind by more than a second (see
//! docs/benchmarks.md).
//!
//! An object is owned by its shard; while polled it is moved into the poll and back. Updates
//! that arrive meanwhile are applied when the poll returns; a removal waits for it.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll as TaskPoll;
use std::time::Duration;

use autoscale::metrics::{Metrics, ObjectMetrics};
use autoscale::scaler::BoxFuture;
use autoscale::{MetricSample, Scaler};
use clock::{Clock, Timestamp};
use engine::{ConsumerPod, Event, Recorder, ScaleInput, ScaleLoop, ScaleStep, WorkloadKey};
use futures_util::FutureExt as _;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// What a substrate observed of a scale target for one poll.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// `spec.replicas`.
    pub replicas: u32,
    /// Ready pods, for `Value` metrics; `None` = same as `replicas`.
    pub ready: Option<u32>,
    /// The target's consumers with their busy state (only when asked for).
    pub pods: Option<Vec<ConsumerPod>>,
}

/// One poll's result, for the substrate to carry out.
#[derive(Debug, Clone)]
pub struct Poll {
    /// The engine's time of the step.
    pub now: Timestamp,
    /// The replica count the step saw.
    pub observed: u32,
    /// What to do: the count to write, the victims to mark first, the intent.
    pub step: ScaleStep,
    /// The step's events (KEDA's reasons), in order.
    pub events: Vec<Event>,
}

/// A scale target as one substrate sees it.
pub trait Target: Send + 'static {
    /// The target now. `pods`: the engine marks victims, so it needs the consumers.
    fn observe(
        &mut self,
        key: &WorkloadKey,
        pods: bool,
    ) -> impl Future<Output = Result<Observed, String>> + Send;

    /// Carry out a step, in this order: mark `step.victims` for deletion first, then write
    /// `step.replicas` (when set); announce `step.intent`; publish the events; report.
    fn carry_out(&mut self, lp: &ScaleLoop, poll: Poll) -> impl Future<Output = Carried> + Send;
}

/// What [`Target::carry_out`] did with the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carried {
    /// Nothing to write, or written.
    Done,
    /// The write failed (the substrate logged why); the next poll sees the old count.
    WriteFailed,
}

/// One ScaledObject's loop: the engine's decisions, the triggers, the target.
pub struct ObjectLoop<T> {
    pub engine: ScaleLoop,
    /// One per trigger, in `spec.triggers` order.
    pub scalers: Vec<Arc<dyn Scaler>>,
    pub target: T,
}

/// Shared dependencies (the controller-rs `Context` pattern).
#[derive(Clone)]
pub struct LoopContext {
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    /// Upper bound for one scaler call; a slower scaler counts as failed.
    pub scaler_timeout: Duration,
}

/// How a [`Runner`] runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Shards (tasks); default one per worker thread.
    pub shards: usize,
    /// Keep every timer wake-up's lateness (benchmarks; unbounded memory, so off in
    /// production, where the last lateness is a metric).
    pub keep_lateness: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            shards: std::thread::available_parallelism().map_or(1, |n| n.get()),
            keep_lateness: false,
        }
    }
}

/// What the loops did, summed over all objects (returned by [`Runner::stop`]).
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub polls: u64,
    pub event_wakeups: u64,
    /// Polls whose step wrote a new count.
    pub scale_writes: u64,
    /// Polls whose target could not be read (no step was made).
    pub unobserved: u64,
    /// Lateness of each timer wake-up (actual − scheduled), in microseconds, with
    /// [`Options::keep_lateness`].
    pub lateness_us: Vec<u32>,
}

impl Stats {
    fn merge(&mut self, o: Stats) {
        self.polls += o.polls;
        self.event_wakeups += o.event_wakeups;
        self.scale_writes += o.scale_writes;
        self.unobserved += o.unobserved;
        self.lateness_us.extend(o.lateness_us);
    }
}

type Update<T> = Box<dyn FnOnce(&mut ObjectLoop<T>) + Send>;

enum Command<T> {
    Insert(Box<ObjectLoop<T>>),
    Update(WorkloadKey, Update<T>),
    Remove(WorkloadKey, oneshot::Sender<bool>),
    Contains(WorkloadKey, oneshot::Sender<bool>),
    /// An event-driven trigger saw a change.
    Wake {
        id: usize,
        incarnation: u64,
    },
}

/// The scale loops of many objects (see the module doc). Cheap to clone.
pub struct Runner<T: Target> {
    shards: Arc<Vec<mpsc::UnboundedSender<Command<T>>>>,
    tasks: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<Stats>>>>,
    stop: Arc<tokio::sync::watch::Sender<bool>>,
    len: Arc<AtomicU64>,
}

impl<T: Target> Clone for Runner<T> {
    fn clone(&self) -> Self {
        Runner {
            shards: self.shards.clone(),
            tasks: self.tasks.clone(),
            stop: self.stop.clone(),
            len: self.len.clone(),
        }
    }
}

impl<T: Target> Runner<T> {
    /// Start the shards on the current tokio runtime.
    pub fn start(ctx: LoopContext, opts: Options) -> Runner<T> {
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let len = Arc::new(AtomicU64::new(0));
        let mut senders = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..opts.shards.max(1) {
            let (tx, rx) = mpsc::unbounded_channel();
            let shard = Shard::new(ctx.clone(), opts.keep_lateness, tx.downgrade(), len.clone());
            tasks.push(tokio::spawn(shard.run(rx, stop_rx.clone())));
            senders.push(tx);
        }
        Runner {
            shards: Arc::new(senders),
            tasks: Arc::new(std::sync::Mutex::new(tasks)),
            stop: Arc::new(stop),
            len,
        }
    }

    fn shard(&self, key: &WorkloadKey) -> &mpsc::UnboundedSender<Command<T>> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        &self.shards[(h.finish() % self.shards.len() as u64) as usize]
    }

    /// Start polling an object (replacing one with the same key). Its first poll is at its
    /// engine's due time.
    pub fn insert(&self, obj: ObjectLoop<T>) {
        let key = obj.engine.key.clone();
        let _ = self.shard(&key).send(Command::Insert(Box::new(obj)));
    }

    /// Change a running object (after its poll in flight, if any) and poll it at once.
    pub fn update(&self, key: &WorkloadKey, f: impl FnOnce(&mut ObjectLoop<T>) + Send + 'static) {
        let _ = self
            .shard(key)
            .send(Command::Update(key.clone(), Box::new(f)));
    }

    /// Stop polling an object; resolves once its poll in flight (if any) has finished.
    /// Returns whether it was running.
    pub async fn remove(&self, key: &WorkloadKey) -> bool {
        let (tx, rx) = oneshot::channel();
        if self
            .shard(key)
            .send(Command::Remove(key.clone(), tx))
            .is_err()
        {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// Whether an object is being polled (a poll that panicked took its object with it).
    pub async fn contains(&self, key: &WorkloadKey) -> bool {
        let (tx, rx) = oneshot::channel();
        if self
            .shard(key)
            .send(Command::Contains(key.clone(), tx))
            .is_err()
        {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// Objects being polled.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stop every loop (polls in flight finish first) and return what they did.
    pub async fn stop(&self) -> Stats {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        let mut stats = Stats::default();
        for t in tasks {
            match t.await {
                Ok(s) => stats.merge(s),
                Err(e) => tracing::error!(error = %e, "a scale-loop shard failed"),
            }
        }
        stats
    }
}

/// Wait for the first of several futures (no extra dependency for `select_all`); never
/// resolves when there are none.
pub async fn first_of(mut futs: Vec<BoxFuture<'_, ()>>) {
    if futs.is_empty() {
        return std::future::pending().await;
    }
    std::future::poll_fn(move |cx| {
        for f in futs.iter_mut() {
            if Pin::new(f).poll(cx).is_ready() {
                return TaskPoll::Ready(());
            }
        }
        TaskPoll::Pending
    })
    .await
}

/// An object as its shard holds it: the loop, and its metric series resolved once.
struct Held<T> {
    lp: ObjectLoop<T>,
    metrics: ObjectMetrics,
    /// The triggers' results and latencies of a poll, kept between polls so a poll
    /// allocates neither.
    triggers: Vec<Result<MetricSample, String>>,
    latencies: Vec<Duration>,
}

/// One object's place in its shard.
struct Slot<T> {
    key: WorkloadKey,
    /// `None` while a poll has it.
    obj: Option<Box<Held<T>>>,
    /// Tells this slot's timer entries and wake-ups from those of an earlier occupant.
    incarnation: u64,
    /// The timer entry that counts (earlier ones are stale).
    timer: u64,
    /// Poll again as soon as the poll in flight returns.
    wake: bool,
    updates: Vec<Update<T>>,
    removed: Option<oneshot::Sender<bool>>,
    /// The event-driven trigger watcher.
    waiter: Option<tokio::task::AbortHandle>,
}

/// A shard's timer entries (slot, timer sequence, due instant), batched by the millisecond
/// they fall due in (counted from the shard's anchor, rounded up; the engine's due times are
/// whole milliseconds, and tokio's timer has 1 ms resolution). Scheduling a poll is a push
/// onto its millisecond's batch and a wake-up takes whole batches: at 100,000 objects a second
/// a binary heap of every entry cost a sift through ~16 levels of cache misses per poll.
struct Timers {
    anchor: Instant,
    due: BTreeMap<u64, Vec<(usize, u64, Instant)>>,
    /// Emptied batches, reused so a steady load allocates none.
    spare: Vec<Vec<(usize, u64, Instant)>>,
}

impl Timers {
    fn new(anchor: Instant) -> Timers {
        Timers {
            anchor,
            due: BTreeMap::new(),
            spare: Vec::new(),
        }
    }

    fn tick(&self, at: Instant) -> u64 {
        let ns = at.saturating_duration_since(self.anchor).as_nanos();
        u64::try_from(ns.div_ceil(1_000_000)).unwrap_or(u64::MAX)
    }

    fn instant(&self, tick: u64) -> Instant {
        self.anchor + Duration::from_millis(tick)
    }

    fn push(&mut self, at: Instant, id: usize, seq: u64) {
        let tick = self.tick(at);
        let spare = &mut self.spare;
        self.due
            .entry(tick)
            .or_insert_with(|| spare.pop().unwrap_or_default())
            .push((id, seq, at));
    }

    /// The earliest batch, when it is due at `now`.
    fn pop_due(&mut self, now: Instant) -> Option<Vec<(usize, u64, Instant)>> {
        let (&tick, _) = self.due.first_key_value()?;
        if self.instant(tick) > now {
            return None;
        }
        self.due.pop_first().map(|(_, batch)| batch)
    }

    fn recycle(&mut self, mut batch: Vec<(usize, u64, Instant)>) {
        // A few batches are in use at a time; a burst's extra ones go.
        if self.spare.len() < 64 {
            batch.clear();
            self.spare.push(batch);
        }
    }

    /// When the earliest batch is due.
    fn next(&self) -> Option<Instant> {
        self.due.first_key_value().map(|(&t, _)| self.instant(t))
    }

    fn is_empty(&self) -> bool {
        self.due.is_empty()
    }
}

/// A poll that returned.
struct Done<T> {
    obj: Box<Held<T>>,
    /// When the engine wants the next poll; `None` after a failed observation (retry after
    /// the polling interval).
    next: Option<Timestamp>,
    wrote: bool,
    unobserved: bool,
    lateness: Option<Duration>,
}

struct Shard<T: Target> {
    ctx: LoopContext,
    keep_lateness: bool,
    /// For event-driven watchers (weak: the shard ends when the runner is gone).
    tx: mpsc::WeakUnboundedSender<Command<T>>,
    len: Arc<AtomicU64>,
    slots: Vec<Option<Slot<T>>>,
    free: Vec<usize>,
    by_key: HashMap<WorkloadKey, usize>,
    timers: Timers,
    seq: u64,
    /// The engine's time at `anchor_at`: due times map to instants through it.
    anchor_ts: Timestamp,
    anchor_at: Instant,
    stats: Stats,
}

impl<T: Target> Shard<T> {
    fn new(
        ctx: LoopContext,
        keep_lateness: bool,
        tx: mpsc::WeakUnboundedSender<Command<T>>,
        len: Arc<AtomicU64>,
    ) -> Shard<T> {
        let anchor_ts = ctx.clock.now();
        let anchor_at = Instant::now();
        Shard {
            ctx,
            keep_lateness,
            tx,
            len,
            slots: Vec::new(),
            free: Vec::new(),
            by_key: HashMap::new(),
            timers: Timers::new(anchor_at),
            seq: 0,
            anchor_ts,
            anchor_at,
            stats: Stats::default(),
        }
    }

    fn instant(&self, t: Timestamp) -> Instant {
        if t >= self.anchor_ts {
            self.anchor_at + t.since(self.anchor_ts)
        } else {
            self.anchor_at
                .checked_sub(self.anchor_ts.since(t))
                .unwrap_or(self.anchor_at)
        }
    }

    fn timestamp(&self, at: Instant) -> Timestamp {
        self.anchor_ts
            .add(at.saturating_duration_since(self.anchor_at))
    }

    fn schedule(&mut self, id: usize, at: Instant) {
        self.seq += 1;
        if let Some(Some(slot)) = self.slots.get_mut(id) {
            slot.timer = self.seq;
            self.timers.push(at, id, self.seq);
        }
    }

    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Command<T>>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Stats {
        let ctx = self.ctx.clone();
        // Every poll is the same future type: no box per poll, one allocation (the set's
        // node) holds it while in flight.
        let start = |id: usize, obj: Box<Held<T>>, timer: Option<(Instant, Timestamp)>| {
            AssertUnwindSafe(poll(&ctx, obj, timer))
                .catch_unwind()
                .map(move |r| (id, r))
        };
        let mut inflight = FuturesUnordered::new();
        let sleep = tokio::time::sleep_until(Instant::now());
        tokio::pin!(sleep);
        let mut stopping = false;
        loop {
            if !stopping {
                let now = Instant::now();
                while let Some(batch) = self.timers.pop_due(now) {
                    for &(id, seq, due) in &batch {
                        let Some(Some(slot)) = self.slots.get_mut(id) else {
                            continue;
                        };
                        if slot.timer != seq {
                            continue;
                        }
                        if let Some(obj) = slot.obj.take() {
                            let at = self.timestamp(due);
                            inflight.push(start(id, obj, Some((due, at))));
                        }
                    }
                    self.timers.recycle(batch);
                }
                if let Some(due) = self.timers.next()
                    && sleep.deadline() != due
                {
                    sleep.as_mut().reset(due);
                }
            } else if inflight.is_empty() {
                break;
            }
            let timers = !stopping && !self.timers.is_empty();
            tokio::select! {
                biased;
                Some((id, done)) = inflight.next(), if !inflight.is_empty() => {
                    if let Some(obj) = self.returned(id, done) {
                        inflight.push(start(id, obj, None));
                    }
                }
                cmd = rx.recv(), if !stopping => match cmd {
                    Some(cmd) => {
                        if let Some((id, obj)) = self.command(cmd) {
                            inflight.push(start(id, obj, None));
                        }
                    }
                    None => stopping = true,
                },
                _ = stop.wait_for(|v| *v), if !stopping => stopping = true,
                _ = &mut sleep, if timers => {}
            }
        }
        for slot in self.slots.iter_mut().flatten() {
            if let Some(w) = slot.waiter.take() {
                w.abort();
            }
            if let Some(r) = slot.removed.take() {
                let _ = r.send(true);
            }
        }
        self.len
            .fetch_sub(self.by_key.len() as u64, Ordering::Relaxed);
        self.stats
    }

    /// A poll returned: put the object back, apply what arrived meanwhile, schedule the next
    /// poll. Returns the object when it is to be polled again at once.
    fn returned(&mut self, id: usize, done: std::thread::Result<Done<T>>) -> Option<Box<Held<T>>> {
        self.stats.polls += 1;
        let done = match done {
            Ok(d) => d,
            Err(_) => {
                // The object went with the panic (the panic hook logged it); its slot goes
                // too, and the substrate starts it again on its next reconcile.
                if let Some(Some(slot)) = self.slots.get_mut(id)
                    && let Some(r) = slot.removed.take()
                {
                    let _ = r.send(true);
                }
                self.free_slot(id);
                return None;
            }
        };
        self.stats.scale_writes += u64::from(done.wrote);
        self.stats.unobserved += u64::from(done.unobserved);
        match done.lateness {
            Some(l) if self.keep_lateness => self
                .stats
                .lateness_us
                .push(l.as_micros().min(u32::MAX as u128) as u32),
            Some(_) => {}
            None => self.stats.event_wakeups += 1,
        }
        let slot = self.slots.get_mut(id)?.as_mut()?;
        if let Some(r) = slot.removed.take() {
            let _ = r.send(true);
            self.free_slot(id);
            return None;
        }
        let mut obj = done.obj;
        let updates = std::mem::take(&mut slot.updates);
        let updated = !updates.is_empty();
        for u in updates {
            u(&mut obj.lp);
        }
        let wake = std::mem::take(&mut slot.wake);
        if updated {
            self.watch_events(id, &obj.lp);
        }
        if wake || updated {
            return Some(obj);
        }
        let next = match done.next {
            Some(t) => self.instant(t),
            None => Instant::now() + obj.lp.engine.autoscaler().config().polling_interval,
        };
        if let Some(Some(slot)) = self.slots.get_mut(id) {
            slot.obj = Some(obj);
        }
        self.schedule(id, next);
        None
    }

    /// Handle a command; returns a poll to start at once.
    fn command(&mut self, cmd: Command<T>) -> Option<(usize, Box<Held<T>>)> {
        match cmd {
            Command::Insert(obj) => {
                let key = obj.engine.key.clone();
                if let Some(&id) = self.by_key.get(&key) {
                    // Replace: the old object goes (after its poll, if one is in flight).
                    if let Some(Some(slot)) = self.slots.get_mut(id) {
                        if slot.obj.is_some() {
                            self.free_slot(id);
                        } else {
                            slot.removed = Some(oneshot::channel().0);
                            self.by_key.remove(&key);
                            self.len.fetch_sub(1, Ordering::Relaxed);
                        }
                    }
                }
                self.seq += 1;
                let slot = Slot {
                    key: key.clone(),
                    obj: None,
                    incarnation: self.seq,
                    timer: 0,
                    wake: false,
                    updates: Vec::new(),
                    removed: None,
                    waiter: None,
                };
                let id = match self.free.pop() {
                    Some(id) => {
                        self.slots[id] = Some(slot);
                        id
                    }
                    None => {
                        self.slots.push(Some(slot));
                        self.slots.len() - 1
                    }
                };
                let metrics = self.ctx.metrics.object(&key.namespace, &key.name);
                self.by_key.insert(key, id);
                self.len.fetch_add(1, Ordering::Relaxed);
                self.watch_events(id, &obj);
                let due = self.instant(obj.engine.due());
                let obj = Box::new(Held {
                    lp: *obj,
                    metrics,
                    triggers: Vec::new(),
                    latencies: Vec::new(),
                });
                if let Some(Some(slot)) = self.slots.get_mut(id) {
                    slot.obj = Some(obj);
                }
                self.schedule(id, due);
                None
            }
            Command::Update(key, f) => {
                let id = *self.by_key.get(&key)?;
                let slot = self.slots.get_mut(id)?.as_mut()?;
                match slot.obj.take() {
                    Some(mut obj) => {
                        f(&mut obj.lp);
                        self.watch_events(id, &obj.lp);
                        Some((id, obj))
                    }
                    None => {
                        slot.updates.push(f);
                        None
                    }
                }
            }
            Command::Remove(key, done) => {
                let Some(id) = self.by_key.get(&key).copied() else {
                    let _ = done.send(false);
                    return None;
                };
                let slot = self.slots.get_mut(id)?.as_mut()?;
                if slot.obj.is_some() {
                    self.free_slot(id);
                    let _ = done.send(true);
                } else {
                    // Answered when the poll in flight returns.
                    slot.removed = Some(done);
                    self.by_key.remove(&key);
                    self.len.fetch_sub(1, Ordering::Relaxed);
                    if let Some(w) = slot.waiter.take() {
                        w.abort();
                    }
                }
                None
            }
            Command::Contains(key, answer) => {
                let _ = answer.send(self.by_key.contains_key(&key));
                None
            }
            Command::Wake { id, incarnation } => {
                let slot = self.slots.get_mut(id)?.as_mut()?;
                if slot.incarnation != incarnation || slot.removed.is_some() {
                    return None;
                }
                match slot.obj.take() {
                    Some(obj) => Some((id, obj)),
                    None => {
                        slot.wake = true;
                        None
                    }
                }
            }
        }
    }

    fn free_slot(&mut self, id: usize) {
        if let Some(slot) = self.slots.get_mut(id).and_then(Option::take) {
            if let Some(w) = slot.waiter {
                w.abort();
            }
            if self.by_key.get(&slot.key) == Some(&id) {
                self.by_key.remove(&slot.key);
                self.len.fetch_sub(1, Ordering::Relaxed);
            }
            self.free.push(id);
        }
    }

    /// (Re)start the watcher of an event-driven object's triggers.
    fn watch_events(&mut self, id: usize, obj: &ObjectLoop<T>) {
        let Some(Some(slot)) = self.slots.get_mut(id) else {
            return;
        };
        if let Some(w) = slot.waiter.take() {
            w.abort();
        }
        if !obj.engine.autoscaler().config().event_driven {
            return;
        }
        let scalers = obj.scalers.clone();
        let tx = self.tx.clone();
        let incarnation = slot.incarnation;
        let task = tokio::spawn(async move {
            loop {
                let changes: Vec<BoxFuture<'_, ()>> =
                    scalers.iter().filter_map(|s| s.changed()).collect();
                if changes.is_empty() {
                    return;
                }
                first_of(changes).await;
                let Some(tx) = tx.upgrade() else { return };
                if tx.send(Command::Wake { id, incarnation }).is_err() {
                    return;
                }
            }
        });
        slot.waiter = Some(task.abort_handle());
    }
}

/// One poll of one object. `timer`: the scheduled instant and its engine time, for a timer
/// wake-up (`None`: an event-driven or update wake-up).
async fn poll<T: Target>(
    ctx: &LoopContext,
    mut obj: Box<Held<T>>,
    timer: Option<(Instant, Timestamp)>,
) -> Done<T> {
    let lateness = timer.map(|(due, _)| Instant::now().saturating_duration_since(due));
    let mut now = ctx.clock.now();
    if let Some((_, at)) = timer {
        // A timer wake-up is never early for the engine (its due times are milliseconds; the
        // clock and the timer may disagree by one).
        now = now.max(at);
    }
    let Held {
        lp,
        metrics,
        triggers,
        latencies,
    } = &mut *obj;
    if let Some(l) = lateness {
        metrics.observe_loop_latency(l);
    }
    triggers.clear();
    latencies.clear();
    for s in &lp.scalers {
        let started = Instant::now();
        let mut metric = s.get_metric_and_activity(now);
        // An answer at once (in-memory and cached sources) needs no timer: arming the
        // timeout costs a clock read and a timer handle per trigger and poll.
        let at_once = std::future::poll_fn(|cx| TaskPoll::Ready(metric.as_mut().poll(cx))).await;
        let answer = match at_once {
            TaskPoll::Ready(r) => Ok(r),
            // Boxed: a timer is large, and every poll's future would carry its room.
            TaskPoll::Pending => Box::pin(tokio::time::timeout(ctx.scaler_timeout, metric)).await,
        };
        let r = match answer {
            Ok(Ok(m)) => Ok(m),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no answer within {}ms",
                ctx.scaler_timeout.as_millis()
            )),
        };
        latencies.push(started.elapsed());
        triggers.push(r);
    }
    let marks = lp.engine.marks_victims();
    let ObjectLoop { engine, target, .. } = lp;
    let observed = match target.observe(&engine.key, marks).await {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(scaled_object = %engine.key, error = %e, "cannot read the scale target; polling again after the interval");
            return Done {
                obj,
                next: None,
                wrote: false,
                unobserved: true,
                lateness,
            };
        }
    };
    let mut rec = Recorder::new(Duration::ZERO);
    let input = ScaleInput {
        replicas: observed.replicas,
        ready: observed.ready,
        triggers: std::mem::take(triggers),
        pods: observed.pods.as_deref(),
        foresight: None,
    };
    let step = engine.step(now, &input, &mut rec);
    // The buffer goes back for the next poll.
    *triggers = input.triggers;
    metrics.observe_decision(&step.decision, latencies);
    let writes = step.replicas.is_some();
    let next = step.next;
    let carried = target
        .carry_out(
            engine,
            Poll {
                now,
                observed: observed.replicas,
                step,
                events: rec.take(),
            },
        )
        .await;
    Done {
        obj,
        next: Some(next),
        wrote: writes && carried == Carried::Done,
        unobserved: false,
        lateness,
    }
}

/// A [`Clock`] that follows tokio's clock from a starting time: with tokio's paused time in
/// tests, the engine's `now` and the loop's timers advance together.
#[derive(Debug, Clone)]
pub struct TokioClock {
    start: Timestamp,
    at: Instant,
}

impl TokioClock {
    pub fn new(start: Timestamp) -> TokioClock {
        TokioClock {
            start,
            at: Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        self.start.add(self.at.elapsed())
    }
}

/// Percentile (0..=100) of a sorted slice; 0 when empty.
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
