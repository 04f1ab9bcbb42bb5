//! The consumer: receive a batch, work on each message, store it idempotently, delete it.
//!
//! One loop, two states (the [`Status`] it publishes):
//! - **idle** — a long-poll `ReceiveMessage` for up to `batch` messages is outstanding. On
//!   shutdown the poll is dropped; the endpoint may already have handed over messages on it,
//!   which then reappear after the visibility timeout (at-least-once allows it, and waiting up
//!   to 20 s for the poll to end would eat the grace period).
//! - **busy** — every message of the batch is a task (at most `concurrency` run their work at
//!   once). A heartbeat extends the visibility of the messages still held every third of the
//!   visibility timeout, so long work is never redelivered to another consumer mid-way. On
//!   shutdown the batch keeps going until `grace_period`; what is still held then is given
//!   back (`ChangeMessageVisibility` to 0) so another consumer picks it up at once.
//!
//! Per message (see the crate docs for why): parse → work (sleep, then CPU) → conditional
//! `PutItem` → `DeleteMessage` only if the item is durable.
//!
//! What a message costs: the wall time from the start of its work until its delete returns,
//! smoothed over finished messages (an exponentially weighted mean, weight
//! [`WORK_TIME_WEIGHT`]; poison and failed writes do not count), is published as
//! [`Progress::work`] and in the status file. Divided by `concurrency` it is what one more
//! message in the queue costs this consumer, which a latency objective needs.
//!
//! FIFO queues: SQS hands out a group's messages in order, but with `concurrency > 1` the
//! messages of one batch are worked on in parallel, so per-group order of the *writes* holds
//! only with `concurrency = 1` (transactions here are independent, so the default fleet does
//! not care; spread them over groups with `kedge produce --groups` to scale out).

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageSystemAttributeName,
    QueueAttributeName,
};
use clock::{Clock, SystemClock};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::status::{Status, StatusFile};
use crate::transaction::Transaction;
use crate::{Clients, Error, is_missing_queue, sdk_message};

/// Simulated per-message work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Work {
    /// Waiting (I/O-like work): the message is held but no CPU is used.
    pub sleep: Duration,
    /// Busy CPU time on a blocking thread (CPU-bound work, for CPU-based scaling demos).
    pub cpu: Duration,
}

impl Default for Work {
    /// One second of waiting: one message per second per consumer, like the seed.
    fn default() -> Work {
        Work {
            sleep: Duration::from_secs(1),
            cpu: Duration::ZERO,
        }
    }
}

/// Where to read from and write to, and how to behave.
#[derive(Debug, Clone)]
pub struct ConsumeConfig {
    pub queue_url: String,
    /// DynamoDB table with partition key `transaction_id` (S).
    pub table: String,
    /// Stored in each item (`consumer`) and logged.
    pub consumer_id: String,
    /// Messages per receive, 1–10.
    pub batch: i32,
    /// Messages of a batch worked on at once.
    pub concurrency: usize,
    /// Long-poll wait, at most 20 s (SQS's limit).
    pub wait_time: Duration,
    /// Requested on every receive and renewed by the heartbeat; whole seconds, ≥ 1 s.
    pub visibility_timeout: Duration,
    pub work: Work,
    /// After shutdown, how long held messages may still take before they are given back.
    pub grace_period: Duration,
    /// The busy/idle status file (see the crate docs).
    pub status_file: Option<PathBuf>,
    /// Fault injection (the local twin's `consumer-crash` fault): while this file exists, a
    /// receive holding a poison message kills the consumer with SIGKILL before it works on or
    /// deletes anything. The file holds the share of messages that are poison (`0`–`1`; empty
    /// or unreadable: every message); which ones is fixed per message id, so a poison message
    /// stays poison on every receive until it reaches the DLQ.
    pub crash_file: Option<PathBuf>,
    /// A Job's consumer (KEDA's ScaledJob): one receive (up to `batch` messages, one long
    /// poll), the messages worked and deleted, then exit; nothing received exits at once.
    pub once: bool,
    /// Stamps `written_at`.
    pub clock: Arc<dyn Clock>,
}

impl ConsumeConfig {
    /// Defaults matching `kedge consume`: batch 10, one message at a time, 1 s of work, 20 s
    /// long polls, 30 s visibility, 30 s grace.
    pub fn new(queue_url: impl Into<String>, table: impl Into<String>) -> ConsumeConfig {
        ConsumeConfig {
            queue_url: queue_url.into(),
            table: table.into(),
            consumer_id: format!("consumer-{}", std::process::id()),
            batch: 10,
            concurrency: 1,
            wait_time: Duration::from_secs(20),
            visibility_timeout: Duration::from_secs(30),
            work: Work::default(),
            grace_period: Duration::from_secs(30),
            status_file: None,
            crash_file: None,
            once: false,
            clock: Arc::new(SystemClock),
        }
    }

    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::Config(m));
        if self.queue_url.is_empty() {
            return bad("no queue URL: set SQS_QUEUE_URL or pass --queue-url".into());
        }
        if self.table.is_empty() {
            return bad("no table: set DYNAMODB_TABLE or pass --table".into());
        }
        if !(1..=10).contains(&self.batch) {
            return bad(format!(
                "batch {} must be 1–10 (SQS's receive limit)",
                self.batch
            ));
        }
        if self.concurrency == 0 {
            return bad("concurrency must be at least 1".into());
        }
        if self.wait_time > Duration::from_secs(20) || self.wait_time.subsec_nanos() != 0 {
            return bad(format!(
                "wait time {:?} must be whole seconds, at most 20 s",
                self.wait_time
            ));
        }
        let vis = self.visibility_timeout;
        if vis < Duration::from_secs(1)
            || vis > Duration::from_secs(12 * 3600)
            || vis.subsec_nanos() != 0
        {
            return bad(format!(
                "visibility timeout {vis:?} must be whole seconds between 1 s and 12 h"
            ));
        }
        Ok(())
    }
}

/// Counters of a consume run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumeReport {
    /// Messages received (each delivery counts).
    pub received: u64,
    /// Items this consumer created.
    pub written: u64,
    /// Deliveries whose item already existed (a redelivery or a duplicate send).
    pub duplicates: u64,
    /// Messages deleted after their item was durable.
    pub deleted: u64,
    /// Deliveries of bodies that are not transactions (left for the redrive policy).
    pub poison: u64,
    /// Deliveries whose write failed (left to reappear after the visibility timeout).
    pub write_failures: u64,
    /// Stored but not deleted (it comes back; the rewrite is then a duplicate).
    pub delete_failures: u64,
    /// Receive calls that failed and were retried.
    pub receive_errors: u64,
    /// Visibility extensions by the heartbeat (per message).
    pub visibility_extensions: u64,
    /// Messages given back unfinished when the grace period ran out.
    pub released: u64,
}

/// Live state of a consumer, for in-process observers (the local twin, tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub status: Status,
    pub report: ConsumeReport,
    /// Mean wall time per finished message, from the start of its work through its
    /// `PutItem` and `DeleteMessage` (see the module docs); `None` until one is finished.
    pub work: Option<Duration>,
}

/// Weight of the newest message in [`Progress::work`]: about the last ten messages matter,
/// so the figure follows a change of the work within seconds but one slow write does not
/// swing it.
pub const WORK_TIME_WEIGHT: f64 = 0.2;

/// The mean after one more message that took `took` (the first one is taken as is).
fn smoothed(mean: Option<Duration>, took: Duration) -> Duration {
    match mean {
        None => took,
        Some(m) => Duration::try_from_secs_f64(
            m.as_secs_f64() + WORK_TIME_WEIGHT * (took.as_secs_f64() - m.as_secs_f64()),
        )
        .unwrap_or(took),
    }
}

/// A consumer before it runs; lets a caller subscribe to [`Progress`] first.
#[derive(Debug)]
pub struct Consumer {
    inner: Arc<Inner>,
    progress: watch::Sender<Progress>,
}

#[derive(Debug)]
struct Inner {
    cfg: ConsumeConfig,
    clients: Clients,
}

/// Runs a consumer until `shutdown` resolves and its held messages are finished (or the grace
/// period ends). Same as `Consumer::new(cfg, clients)?.run(shutdown)`.
pub async fn consume(
    cfg: ConsumeConfig,
    clients: Clients,
    shutdown: impl Future<Output = ()>,
) -> Result<ConsumeReport, Error> {
    Consumer::new(cfg, clients)?.run(shutdown).await
}

/// What happened to one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Stored by this delivery; `deleted` says whether the delete then succeeded, `took` is
    /// the time from the start of the work until then.
    Written {
        deleted: bool,
        took: Duration,
    },
    /// Already stored by an earlier delivery.
    Duplicate {
        deleted: bool,
        took: Duration,
    },
    Poison,
    WriteFailed,
}

/// Held messages: message id → receipt handle of this delivery. A plain mutex: it is never
/// held across an await.
type Held = Arc<Mutex<HashMap<String, String>>>;

impl Consumer {
    pub fn new(cfg: ConsumeConfig, clients: Clients) -> Result<Consumer, Error> {
        cfg.validate()?;
        Ok(Consumer {
            inner: Arc::new(Inner { cfg, clients }),
            progress: watch::Sender::new(Progress::default()),
        })
    }

    /// Status and counters, updated as the consumer works.
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<ConsumeReport, Error> {
        let cfg = &self.inner.cfg;
        tracing::info!(queue_url = %cfg.queue_url, table = %cfg.table, consumer = %cfg.consumer_id,
            batch = cfg.batch, concurrency = cfg.concurrency, "consuming");
        self.check_queue().await?;
        let mut status = cfg
            .status_file
            .clone()
            .map(|f| StatusFile::new(f, cfg.concurrency));
        // The first write fails loudly: a twin relying on the file must not guess.
        self.set_status(&mut status, Status::Idle).await?;
        let mut shutdown = std::pin::pin!(shutdown);
        let mut stopped = false;
        let mut backoff = Duration::from_millis(100);
        while !stopped {
            self.set_status_lenient(&mut status, Status::Idle).await;
            let received = tokio::select! {
                biased;
                _ = &mut shutdown => break,
                r = self.receive() => r,
            };
            let msgs = match received {
                Ok(m) => {
                    backoff = Duration::from_millis(100);
                    m
                }
                Err(e @ Error::QueueDoesNotExist { .. }) => return Err(e),
                Err(e) => {
                    self.progress.send_modify(|p| p.report.receive_errors += 1);
                    tracing::warn!(error = %e, retry_in = ?backoff, "receive failed");
                    tokio::select! {
                        _ = &mut shutdown => stopped = true,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            if msgs.is_empty() {
                if cfg.once {
                    tracing::info!("one receive (--once): nothing to do");
                    break;
                }
                if cfg.wait_time.is_zero() {
                    // Short polling an empty queue would spin; pause like a 1 s long poll.
                    tokio::select! {
                        _ = &mut shutdown => stopped = true,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
                continue;
            }
            if let Some(f) = &cfg.crash_file
                && holds_poison(f, &msgs)
            {
                tracing::warn!(file = %f.display(), "fault injection: crashing while holding a message");
                crash();
            }
            // Counted before the status flips, so an observer that sees `Busy` sees the batch.
            self.progress
                .send_modify(|p| p.report.received += msgs.len() as u64);
            self.set_status_lenient(&mut status, Status::Busy).await;
            self.process(msgs, shutdown.as_mut(), &mut stopped).await;
            if cfg.once {
                break;
            }
        }
        self.set_status_lenient(&mut status, Status::Idle).await;
        let report = self.progress.borrow().report.clone();
        tracing::info!(?report, "consumer stopped");
        Ok(report)
    }

    /// File first, then [`Progress`]: an in-process observer that sees a status can rely on
    /// the file saying the same. The file gets the mean work time as it is now.
    async fn set_status(&self, file: &mut Option<StatusFile>, s: Status) -> Result<(), Error> {
        let work = self.progress.borrow().work;
        let written = match file {
            Some(f) => f.set(s, work).await,
            None => Ok(()),
        };
        self.progress.send_if_modified(|p| {
            let changed = p.status != s;
            p.status = s;
            changed
        });
        written
    }

    /// After start-up a failed status write is logged, not fatal: the consumer's real job
    /// (moving messages into the table) must not stop over a side channel.
    async fn set_status_lenient(&self, file: &mut Option<StatusFile>, s: Status) {
        if let Err(e) = self.set_status(file, s).await {
            tracing::warn!(error = %e, "status file not updated");
        }
    }

    /// Fails fast on a queue that does not exist (a typo in `SQS_QUEUE_URL` should not look
    /// like an idle consumer) and warns when poison messages have nowhere to go. Needs
    /// `sqs:GetQueueAttributes`; without that permission the check is skipped.
    async fn check_queue(&self) -> Result<(), Error> {
        let cfg = &self.inner.cfg;
        let r = self
            .inner
            .clients
            .sqs
            .get_queue_attributes()
            .queue_url(&cfg.queue_url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await;
        match r {
            Ok(out) => {
                let has_dlq = out
                    .attributes()
                    .is_some_and(|a| a.contains_key(&QueueAttributeName::RedrivePolicy));
                if !has_dlq {
                    tracing::warn!(queue_url = %cfg.queue_url,
                        "queue has no redrive policy: poison messages will be received forever");
                }
                Ok(())
            }
            Err(e) if is_missing_queue(e.code()) => Err(Error::QueueDoesNotExist {
                queue_url: cfg.queue_url.clone(),
            }),
            Err(e) => {
                tracing::debug!(error = %sdk_message(&e), "queue check skipped");
                Ok(())
            }
        }
    }

    async fn receive(&self) -> Result<Vec<Message>, Error> {
        let cfg = &self.inner.cfg;
        let r = self
            .inner
            .clients
            .sqs
            .receive_message()
            .queue_url(&cfg.queue_url)
            .max_number_of_messages(cfg.batch)
            .wait_time_seconds(cfg.wait_time.as_secs() as i32)
            .visibility_timeout(cfg.visibility_timeout.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await;
        match r {
            Ok(out) => Ok(out.messages.unwrap_or_default()),
            Err(e) => {
                if is_missing_queue(e.code()) {
                    Err(Error::QueueDoesNotExist {
                        queue_url: cfg.queue_url.clone(),
                    })
                } else {
                    Err(Error::Sqs {
                        operation: "ReceiveMessage",
                        message: sdk_message(&e),
                    })
                }
            }
        }
    }

    /// Works through one batch; returns when every message is finished or given back.
    async fn process<F: Future<Output = ()>>(
        &self,
        msgs: Vec<Message>,
        mut shutdown: Pin<&mut F>,
        stopped: &mut bool,
    ) {
        let cfg = &self.inner.cfg;
        let held: Held = Arc::new(Mutex::new(
            msgs.iter()
                .filter_map(|m| Some((m.message_id.clone()?, m.receipt_handle.clone()?)))
                .collect(),
        ));
        let permits = Arc::new(Semaphore::new(cfg.concurrency));
        let mut tasks = JoinSet::new();
        for m in msgs {
            let (inner, held, permits) = (self.inner.clone(), held.clone(), permits.clone());
            tasks.spawn(async move {
                // The semaphore is never closed, so acquiring only waits.
                let _permit = permits.acquire_owned().await;
                inner.handle(m, &held).await
            });
        }
        let period = (cfg.visibility_timeout / 3).max(Duration::from_millis(100));
        let mut heartbeat = tokio::time::interval_at(Instant::now() + period, period);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut deadline: Option<Instant> = stopped.then(|| Instant::now() + cfg.grace_period);
        loop {
            tokio::select! {
                r = tasks.join_next() => match r {
                    None => break,
                    Some(r) => self.record(r),
                },
                _ = heartbeat.tick() => {
                    let n = self.inner.change_visibility(&held, cfg.visibility_timeout).await;
                    self.progress.send_modify(|p| p.report.visibility_extensions += n);
                }
                _ = &mut shutdown, if !*stopped => {
                    *stopped = true;
                    deadline = Some(Instant::now() + cfg.grace_period);
                    tracing::info!(held = held.lock().map(|h| h.len()).unwrap_or(0),
                        grace = ?cfg.grace_period, "shutdown: finishing held messages");
                }
                _ = sleep_until_opt(deadline) => {
                    tasks.abort_all();
                    while let Some(r) = tasks.join_next().await {
                        self.record(r);
                    }
                    let n = self.inner.change_visibility(&held, Duration::ZERO).await;
                    tracing::warn!(released = n, "grace period over: gave unfinished messages back");
                    self.progress.send_modify(|p| p.report.released += n);
                    break;
                }
            }
        }
    }

    fn record(&self, r: Result<Outcome, tokio::task::JoinError>) {
        let outcome = match r {
            Ok(o) => o,
            // Aborted at the end of the grace period: the message is released, not lost.
            Err(e) if e.is_cancelled() => return,
            // A panic in a message task is a bug; surface it rather than hide it.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        // The mean changes with the counters, in the same update: watchers are woken once
        // per message either way.
        self.progress.send_modify(|p| {
            let r = &mut p.report;
            let took = match outcome {
                Outcome::Written { deleted, took } => {
                    r.written += 1;
                    r.deleted += u64::from(deleted);
                    r.delete_failures += u64::from(!deleted);
                    Some(took)
                }
                Outcome::Duplicate { deleted, took } => {
                    r.duplicates += 1;
                    r.deleted += u64::from(deleted);
                    r.delete_failures += u64::from(!deleted);
                    Some(took)
                }
                Outcome::Poison => {
                    r.poison += 1;
                    None
                }
                Outcome::WriteFailed => {
                    r.write_failures += 1;
                    None
                }
            };
            if let Some(took) = took {
                p.work = Some(smoothed(p.work, took));
            }
        });
    }
}

impl Inner {
    async fn handle(&self, m: Message, held: &Held) -> Outcome {
        let id = m.message_id.clone().unwrap_or_default();
        let release = |held: &Held| {
            if let Ok(mut h) = held.lock() {
                h.remove(&id);
            }
        };
        let tx = match Transaction::parse(m.body().unwrap_or_default()) {
            Ok(t) => t,
            Err(e) => {
                // Not deleted, not extended: it reappears after the visibility timeout and
                // the redrive policy moves it to the DLQ after maxReceiveCount receives.
                tracing::warn!(message_id = %id, receive_count = receive_count(&m), error = %e,
                    "poison message left for the redrive policy");
                release(held);
                return Outcome::Poison;
            }
        };
        let started = Instant::now();
        self.work().await;
        let stored = match self.put(&tx, &m).await {
            Ok(s) => s,
            Err(message) => {
                tracing::warn!(message_id = %id, transaction_id = %tx.transaction_id, %message,
                    "write failed; message left to reappear after its visibility timeout");
                release(held);
                return Outcome::WriteFailed;
            }
        };
        let deleted = self.delete(&m).await;
        let took = started.elapsed();
        release(held);
        match stored {
            Stored::New => Outcome::Written { deleted, took },
            Stored::AlreadyThere => Outcome::Duplicate { deleted, took },
        }
    }

    async fn work(&self) {
        let w = self.cfg.work;
        if !w.sleep.is_zero() {
            tokio::time::sleep(w.sleep).await;
        }
        if !w.cpu.is_zero() {
            // Off the async workers, so the heartbeat and other messages keep running.
            let _ = tokio::task::spawn_blocking(move || burn_cpu(w.cpu)).await;
        }
    }

    async fn put(&self, tx: &Transaction, m: &Message) -> Result<Stored, String> {
        let s = |v: &str| AttributeValue::S(v.to_string());
        let n = |v: String| AttributeValue::N(v);
        let mut req = self
            .clients
            .dynamodb
            .put_item()
            .table_name(&self.cfg.table)
            .item("transaction_id", s(&tx.transaction_id))
            .item("account", s(&tx.account))
            .item("amount", n(tx.amount.clone()))
            .item("currency", s(&tx.currency))
            .item("created_at", n(tx.created_at.to_string()))
            .item(
                "written_at",
                n(self.cfg.clock.now().as_millis().to_string()),
            )
            .item("consumer", s(&self.cfg.consumer_id))
            .item("receive_count", n(receive_count(m).to_string()))
            .condition_expression("attribute_not_exists(transaction_id)");
        if let Some(id) = m.message_id() {
            req = req.item("message_id", s(id));
        }
        if let Some(sent) = m
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
            .filter(|v| v.parse::<u64>().is_ok())
        {
            req = req.item("sent_at", n(sent.clone()));
        }
        match req.send().await {
            Ok(_) => Ok(Stored::New),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(Stored::AlreadyThere)
            }
            Err(e) => Err(sdk_message(&e)),
        }
    }

    async fn delete(&self, m: &Message) -> bool {
        let Some(receipt) = m.receipt_handle() else {
            return false;
        };
        match self
            .clients
            .sqs
            .delete_message()
            .queue_url(&self.cfg.queue_url)
            .receipt_handle(receipt)
            .send()
            .await
        {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(message_id = ?m.message_id(), error = %sdk_message(&e),
                    "delete failed; the message will return and be recognised as a duplicate");
                false
            }
        }
    }

    /// Sets the visibility of every held message to `to`; returns how many calls succeeded.
    async fn change_visibility(&self, held: &Held, to: Duration) -> u64 {
        let snapshot: Vec<(String, String)> = match held.lock() {
            Ok(h) => h.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(_) => return 0,
        };
        let mut ok = 0;
        // A batch holds at most 10 messages, so this is one call in practice.
        for chunk in snapshot.chunks(10) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, (_, receipt))| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .visibility_timeout(to.as_secs() as i32)
                        .build()
                        .ok()
                })
                .collect();
            match self
                .clients
                .sqs
                .change_message_visibility_batch()
                .queue_url(&self.cfg.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => {
                    ok += out.successful().len() as u64;
                    // A message finished (deleted) between the snapshot and the call fails
                    // here harmlessly.
                    for f in out.failed() {
                        tracing::debug!(code = f.code(), "visibility change not applied");
                    }
                }
                Err(e) => tracing::warn!(error = %sdk_message(&e), "visibility change failed"),
            }
        }
        ok
    }
}

enum Stored {
    New,
    AlreadyThere,
}

fn receive_count(m: &Message) -> u64 {
    m.attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Spins for `d` of wall time doing arithmetic the optimiser cannot remove.
#[allow(clippy::disallowed_methods)] // simulated work measures real time; it decides nothing
fn burn_cpu(d: Duration) {
    let start = std::time::Instant::now();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while start.elapsed() < d {
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        std::hint::black_box(x);
    }
}

/// Whether `crash_file` exists and `msgs` hold a message it declares poison (see
/// [`ConsumeConfig::crash_file`]).
fn holds_poison(crash_file: &std::path::Path, msgs: &[Message]) -> bool {
    let share = match std::fs::read_to_string(crash_file) {
        Ok(s) => s.trim().parse::<f64>().unwrap_or(1.0),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
        Err(_) => 1.0,
    };
    msgs.iter()
        .any(|m| poison(m.message_id().unwrap_or_default(), share))
}

/// A fixed share of message ids (FNV-1a, so the same id is poison on every receive).
fn poison(message_id: &str, share: f64) -> bool {
    if share >= 1.0 {
        return true;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in message_id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    ((h % 1_000_000) as f64) < share * 1_000_000.0
}

/// Dies as a crashing container does: SIGKILL, no clean-up, held messages not given back.
fn crash() -> ! {
    #[cfg(unix)]
    // SAFETY: raise only sends a signal to this process.
    unsafe {
        libc::raise(libc::SIGKILL);
    }
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: &str) -> Message {
        Message::builder().message_id(id).build()
    }

    #[test]
    fn the_work_time_mean_starts_at_the_first_message_and_moves_a_fifth_of_the_way() {
        let ms = Duration::from_millis;
        assert_eq!(smoothed(None, ms(1000)), ms(1000));
        let m = smoothed(Some(ms(1000)), ms(2000));
        assert!(m.abs_diff(ms(1200)) < Duration::from_micros(1), "{m:?}");
        let m = smoothed(Some(ms(1000)), ms(0));
        assert!(m.abs_diff(ms(800)) < Duration::from_micros(1), "{m:?}");
        // A steady work time converges to itself.
        let mut m = None;
        for _ in 0..50 {
            m = Some(smoothed(m, ms(300)));
        }
        assert!(m.expect("mean").abs_diff(ms(300)) < Duration::from_micros(1));
    }

    #[test]
    fn poison_share_is_fixed_per_message_and_close_to_the_share() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("id-{i}")).collect();
        let hit = ids.iter().filter(|id| poison(id, 0.3)).count();
        assert!((2_700..3_300).contains(&hit), "{hit} of 10000 at share 0.3");
        assert!(ids.iter().all(|id| poison(id, 0.3) == poison(id, 0.3)));
        assert!(ids.iter().all(|id| poison(id, 1.0)));
        assert!(!ids.iter().any(|id| poison(id, 0.0)));
    }

    #[test]
    fn crash_file_decides_only_while_it_exists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("consumer-crash");
        let batch = [msg("a"), msg("b")];
        assert!(!holds_poison(&f, &batch));
        std::fs::write(&f, "1\n").expect("write");
        assert!(holds_poison(&f, &batch));
        std::fs::write(&f, "0\n").expect("write");
        assert!(!holds_poison(&f, &batch));
        std::fs::write(&f, "").expect("write");
        assert!(
            holds_poison(&f, &batch),
            "an empty file means every message"
        );
        std::fs::remove_file(&f).expect("remove");
        assert!(!holds_poison(&f, &batch));
    }
}
