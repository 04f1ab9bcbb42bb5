//! The producer: transactions onto a queue on a [`Schedule`], in batches, FIFO-aware.
//!
//! Pacing: the loop computes how many messages are due from elapsed time
//! ([`Schedule::due`]), hands them to send tasks, and sleeps (tokio time) until the next full
//! batch is due. Falling behind (a slow endpoint) is caught up on the next wake-up rather
//! than shifting the whole schedule, so the offered load is the schedule, not the schedule
//! minus the server's latency.
//!
//! FIFO queues (URL ending in `.fifo`) get `MessageGroupId = group-<seq mod groups>` and
//! `MessageDeduplicationId = transaction_id`. SQS delivers one group strictly in order and
//! never hands out a group's next message while an earlier one is in flight, so the number of
//! groups caps how many consumers can work at once; the seed put everything in one group,
//! which serialised the whole fleet. Hence [`ProduceConfig::groups`] (default 16).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use clock::{Clock, SystemClock};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::transaction::{Generator, Transaction};
use crate::{Clients, Error, Schedule, is_missing_queue, sdk_message};

/// How long a partial batch may wait for company before it is sent anyway. Long enough that
/// batches fill at rates above ~50 msgs/s, short enough not to matter for latency figures.
const BATCH_LINGER: Duration = Duration::from_millis(100);

/// What to send, how fast, and where.
#[derive(Debug, Clone)]
pub struct ProduceConfig {
    pub queue_url: String,
    pub schedule: Schedule,
    /// Stop after this many messages (sent or failed). `None`: no limit.
    pub count: Option<u64>,
    /// Stop scheduling after this long. `None`: no limit.
    pub duration: Option<Duration>,
    /// Messages per request, 1–10 (1 = SendMessage, more = SendMessageBatch).
    pub batch: usize,
    /// FIFO queues only: message groups to spread messages over (round-robin).
    pub groups: u32,
    /// FIFO queues only: the group the round-robin starts at. Producers running side by side
    /// with different offsets do not all send to the same group at the same moment (which
    /// would queue their messages behind each other in that group).
    pub group_offset: u64,
    /// Seed for ids, accounts and amounts; `None` draws one from the OS.
    pub seed: Option<u64>,
    /// Accounts to spread transactions over (`acct-0000` …).
    pub accounts: u32,
    /// ISO 4217 codes to pick from.
    pub currencies: Vec<String>,
    /// Send requests in flight at once; more hides endpoint latency at high rates.
    pub max_in_flight: usize,
    /// Append each acknowledged transaction id (one per line) to this file.
    pub ack_log: Option<PathBuf>,
    /// Stamps `created_at`.
    pub clock: Arc<dyn Clock>,
}

impl ProduceConfig {
    /// One message per second, batch 1, 16 groups, no limits, wall clock.
    pub fn new(queue_url: impl Into<String>) -> ProduceConfig {
        ProduceConfig {
            queue_url: queue_url.into(),
            schedule: Schedule::constant(1.0),
            count: None,
            duration: None,
            batch: 1,
            groups: 16,
            group_offset: 0,
            seed: None,
            accounts: 100,
            currencies: vec!["USD".into(), "EUR".into(), "GBP".into()],
            max_in_flight: 8,
            ack_log: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// FIFO queue names must end in `.fifo` (AWS enforces it), so the URL tells.
    pub fn is_fifo(&self) -> bool {
        self.queue_url.trim_end_matches('/').ends_with(".fifo")
    }

    pub fn validate(&self) -> Result<(), Error> {
        self.schedule
            .validate()
            .map_err(|e| Error::Config(e.to_string()))?;
        if !(1..=10).contains(&self.batch) {
            return Err(Error::Config(format!(
                "batch {} must be 1–10 (SQS's SendMessageBatch limit)",
                self.batch
            )));
        }
        if self.groups == 0 {
            return Err(Error::Config("groups must be at least 1".into()));
        }
        if self.max_in_flight == 0 {
            return Err(Error::Config("max_in_flight must be at least 1".into()));
        }
        if self.queue_url.is_empty() {
            return Err(Error::Config(
                "no queue URL: set SQS_QUEUE_URL or pass --queue-url".into(),
            ));
        }
        Ok(())
    }
}

/// What a produce run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProduceReport {
    /// Messages the queue acknowledged.
    pub sent: u64,
    /// Messages whose send failed (after the SDK's own retries).
    pub failed: u64,
    /// From the first scheduled message to the last acknowledgement.
    pub elapsed: Duration,
    /// `Some(n)` on a FIFO queue: the messages were spread over `n` groups.
    pub groups: Option<u32>,
}

impl ProduceReport {
    /// Acknowledged messages per second over the run.
    pub fn rate(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.sent as f64 / s } else { 0.0 }
    }
}

/// Sends transactions until the count or duration is reached or `shutdown` resolves, then
/// waits for the sends in flight and reports.
///
/// Individual send failures are counted, not fatal (the run is load, not a transaction
/// log); a queue that does not exist is fatal.
pub async fn produce(
    cfg: ProduceConfig,
    clients: Clients,
    shutdown: impl Future<Output = ()>,
) -> Result<ProduceReport, Error> {
    cfg.validate()?;
    let groups = cfg.is_fifo().then_some(cfg.groups);
    let mut ack_log = match &cfg.ack_log {
        Some(p) => Some(AckLog::open(p).await?),
        None => None,
    };
    tracing::info!(queue_url = %cfg.queue_url, ?groups, batch = cfg.batch, count = ?cfg.count,
        duration = ?cfg.duration, "producing");
    let mut generator = Generator::new(cfg.seed, cfg.accounts, cfg.currencies.clone());
    let sender = Arc::new(Sender {
        sqs: clients.sqs,
        queue_url: cfg.queue_url.clone(),
        groups,
        group_offset: cfg.group_offset,
    });
    let cap = cfg.count.unwrap_or(u64::MAX);
    let batch = cfg.batch as u64;
    let start = Instant::now();
    let end = cfg.duration.map(|d| start + d);
    let mut report = ProduceReport {
        groups,
        ..ProduceReport::default()
    };
    let mut tasks: JoinSet<Sent> = JoinSet::new();
    let mut scheduled = 0u64;
    let mut shutdown = std::pin::pin!(shutdown);
    // Set once `shutdown` has resolved; a finished future must not be polled again.
    let mut stopped = false;

    while !stopped {
        let now = Instant::now();
        let elapsed = now - start;
        let ended = end.is_some_and(|e| now >= e);
        let due = cfg.schedule.due(elapsed).min(cap);
        let mut pending = due.saturating_sub(scheduled);
        let lingered = cfg
            .schedule
            .next_due_at(scheduled + 1)
            .is_some_and(|t| elapsed >= t + BATCH_LINGER);
        let flush_partial = ended || due == cap || lingered;
        while !stopped && (pending >= batch || (pending > 0 && flush_partial)) {
            // Backpressure; a big burst behind it must not delay a shutdown.
            while !stopped && tasks.len() >= cfg.max_in_flight {
                tokio::select! {
                    _ = &mut shutdown => stopped = true,
                    Some(r) = tasks.join_next() => settle(r, &mut report, &mut ack_log).await?,
                }
            }
            if stopped {
                break;
            }
            let n = pending.min(batch);
            let chunk: Vec<(u64, Transaction)> = (scheduled..scheduled + n)
                .map(|seq| (seq, generator.next(cfg.clock.now())))
                .collect();
            let s = sender.clone();
            tasks.spawn(async move { s.send(chunk).await });
            scheduled += n;
            pending -= n;
        }
        if stopped || ended || scheduled >= cap {
            break;
        }
        // Wake when a full batch is due, when a partial one has lingered, or at the end.
        let mut wake = cfg.schedule.next_due_at((scheduled + batch).min(cap));
        if pending > 0 {
            let linger = cfg
                .schedule
                .next_due_at(scheduled + 1)
                .map(|t| t + BATCH_LINGER);
            wake = match (wake, linger) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let wake_at = match (wake.map(|w| start + w), end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        tokio::select! {
            _ = &mut shutdown => stopped = true,
            Some(r) = tasks.join_next(), if !tasks.is_empty() => {
                settle(r, &mut report, &mut ack_log).await?;
            }
            // A zero-rate tail with no end: only shutdown (or in-flight sends) can wake us.
            _ = sleep_until_opt(wake_at) => {}
        }
    }
    if stopped {
        tracing::info!("shutdown: no new sends; waiting for the ones in flight");
    }
    while let Some(r) = tasks.join_next().await {
        settle(r, &mut report, &mut ack_log).await?;
    }
    report.elapsed = start.elapsed();
    tracing::info!(
        sent = report.sent,
        failed = report.failed,
        rate = report.rate(),
        "produced"
    );
    Ok(report)
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// The outcome of one send request.
struct Sent {
    acked: Vec<String>,
    failed: u64,
    fatal: Option<Error>,
}

async fn settle(
    r: Result<Sent, tokio::task::JoinError>,
    report: &mut ProduceReport,
    ack_log: &mut Option<AckLog>,
) -> Result<(), Error> {
    let sent = match r {
        Ok(s) => s,
        // A send task only ends abnormally by panicking; that is a bug, so surface it.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    if let Some(e) = sent.fatal {
        return Err(e);
    }
    report.sent += sent.acked.len() as u64;
    report.failed += sent.failed;
    if let Some(log) = ack_log {
        log.append(&sent.acked).await?;
    }
    Ok(())
}

struct Sender {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    groups: Option<u32>,
    group_offset: u64,
}

impl Sender {
    fn group(&self, seq: u64) -> Option<String> {
        self.groups.map(|g| {
            format!(
                "group-{}",
                seq.wrapping_add(self.group_offset) % u64::from(g)
            )
        })
    }

    async fn send(&self, chunk: Vec<(u64, Transaction)>) -> Sent {
        let n = chunk.len() as u64;
        if let [(seq, tx)] = &chunk[..] {
            let dedup = self.groups.map(|_| tx.transaction_id.clone());
            let r = self
                .sqs
                .send_message()
                .queue_url(&self.queue_url)
                .message_body(tx.to_json())
                .set_message_group_id(self.group(*seq))
                .set_message_deduplication_id(dedup)
                .send()
                .await;
            return match r {
                Ok(_) => Sent {
                    acked: vec![tx.transaction_id.clone()],
                    failed: 0,
                    fatal: None,
                },
                Err(e) => self.failed(n, e.code(), sdk_message(&e)),
            };
        }
        let entries: Vec<SendMessageBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, (seq, tx))| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(tx.to_json())
                    .set_message_group_id(self.group(*seq))
                    .set_message_deduplication_id(self.groups.map(|_| tx.transaction_id.clone()))
                    .build()
                    .ok()
            })
            .collect();
        let r = self
            .sqs
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await;
        match r {
            Ok(out) => {
                let acked: Vec<String> = out
                    .successful()
                    .iter()
                    .filter_map(|s| s.id().parse::<usize>().ok())
                    .filter_map(|i| chunk.get(i).map(|(_, t)| t.transaction_id.clone()))
                    .collect();
                for f in out.failed() {
                    tracing::warn!(code = f.code(), message = ?f.message(), "send failed");
                }
                Sent {
                    failed: n - acked.len() as u64,
                    acked,
                    fatal: None,
                }
            }
            Err(e) => self.failed(n, e.code(), sdk_message(&e)),
        }
    }

    fn failed(&self, n: u64, code: Option<&str>, message: String) -> Sent {
        let fatal = is_missing_queue(code).then(|| Error::QueueDoesNotExist {
            queue_url: self.queue_url.clone(),
        });
        if fatal.is_none() {
            tracing::warn!(messages = n, %message, "send failed");
        }
        Sent {
            acked: Vec::new(),
            failed: n,
            fatal,
        }
    }
}

/// Transaction ids the queue acknowledged, one per line, appended as acknowledgements arrive
/// so a crashed producer still leaves the ids it was told were stored.
struct AckLog {
    path: PathBuf,
    file: tokio::fs::File,
}

impl AckLog {
    async fn open(path: &Path) -> Result<AckLog, Error> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await
            .map_err(|source| Error::AckLog {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(AckLog {
            path: path.to_path_buf(),
            file,
        })
    }

    async fn append(&mut self, ids: &[String]) -> Result<(), Error> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut buf = ids.join("\n");
        buf.push('\n');
        let r = async {
            self.file.write_all(buf.as_bytes()).await?;
            // tokio's File writes in the background; flush so the line is in the file when
            // this returns (a test reads it right after `produce` returns).
            self.file.flush().await
        }
        .await;
        r.map_err(|source| Error::AckLog {
            path: self.path.clone(),
            source,
        })
    }
}
