//! kedge's sample application: a producer that publishes payment transactions to an SQS queue
//! and a consumer that stores each one in a DynamoDB table — the workload the autoscaler
//! scales. Both use the real aws-sdk-rust clients, so they run unchanged against AWS, against
//! `kedge serve`, or inside the local twin: in-process through [`produce()`](fn@produce) /
//! [`consume()`](fn@consume), or as `kedge produce` / `kedge consume` child processes.
//!
//! # Layout
//! - [`transaction`]: the message body (JSON) and a seeded generator.
//! - [`schedule`]: the producer's rate / ramp / burst schedule, a pure function of elapsed time.
//! - [`produce`](mod@produce): paced, batched, FIFO-group-aware sends; an acknowledgement log.
//! - [`consume`](mod@consume): long-poll batch receives, simulated work, idempotent writes,
//!   visibility heartbeats, delete-after-durable, graceful drain on shutdown.
//! - [`status`]: the status file (busy/idle, and what a message costs).
//! - this file: [`Clients`], [`Error`], [`parse_duration`].
//!
//! # Delivery guarantees
//! SQS delivers at least once, so the consumer makes the write idempotent instead: each item
//! is keyed by its `transaction_id` and written with
//! `ConditionExpression: attribute_not_exists(transaction_id)`. A redelivered message finds
//! its item already there (`ConditionalCheckFailedException`), which counts as success. A
//! message is deleted only after its item is durable (written now, or found written); on any
//! other write error it is left alone and comes back after the visibility timeout. A body that
//! is not a valid [`Transaction`] is poison: it is logged and never deleted, so the queue's
//! redrive policy moves it to the dead-letter queue after `maxReceiveCount` receives.
//!
//! # Against real AWS
//! Nothing here is specific to kedge's endpoint. The producer needs `sqs:SendMessage`; the
//! consumer needs `sqs:ReceiveMessage`, `sqs:DeleteMessage`, `sqs:ChangeMessageVisibility`,
//! `dynamodb:PutItem` and, optionally, `sqs:GetQueueAttributes` (a start-up check for a
//! missing queue or a missing redrive policy). The table needs partition key
//! `transaction_id` (S); poison messages need a `RedrivePolicy` on the queue. Items hold
//! `transaction_id`, `account`, `amount` (N), `currency`, `created_at` / `written_at` /
//! `sent_at` (N, ms since the epoch), `consumer`, `receive_count` (N) and `message_id`.
//!
//! # The status file: busy/idle and work time
//! A consumer started with a status file (`kedge consume --status-file PATH`, or the
//! environment variable `KEDGE_STATUS_FILE`; [`ConsumeConfig::status_file`] in-process)
//! keeps in that file a first line that is exactly one of
//!
//! - `busy` — it holds at least one received message that is not yet deleted or given back;
//! - `idle` — it holds none (it is waiting in a long poll, or has stopped);
//!
//! and, once it has finished a message, two more lines saying what a message costs it:
//!
//! - `work-ms N` — its mean wall time per message in whole milliseconds (at least 1), from the
//!   start of the work until the delete returns (see [`consume`](mod@consume));
//! - `concurrency N` — how many messages it works on at once.
//!
//! For example `busy\nwork-ms 1034\nconcurrency 4\n`: one more message in the queue costs
//! this consumer about 1034 ms ÷ 4 ≈ 259 ms ([`StatusReport::per_message`]). Readers must
//! ignore lines they do not know; a file of the first line alone (as written before a message
//! is finished, and by older consumers) has no work time.
//!
//! The file is written only on busy/idle transitions (with the mean as it is then), by
//! writing `PATH.tmp` and renaming it over `PATH`, so a reader sees either the old or the new
//! state, never a partial file, and a steady consumer costs no I/O; a working consumer turns
//! idle after every batch, so the work time stays current. It exists from the consumer's
//! first loop iteration (`idle`); a missing or unreadable file, or one whose first line is
//! neither, must be treated as `busy`. Readers poll it ([`read_status_file`] for busy/idle,
//! [`read_status_report`] for everything); the local twin sends SIGTERM to idle consumers
//! first when it scales in and hands the engine the cost per message, and a Kubernetes
//! operator can surface it as the pod's deletion cost. Terminating an idle consumer loses
//! nothing: at worst a long poll is cut short and a message it was about to hand over
//! reappears after the visibility timeout. In-process, the same state, the mean work time
//! and the running counters are published on [`Consumer::progress`].
//!
//! A file rather than an HTTP `/status` endpoint: it needs no port (many consumers on one
//! machine would each need one), no server task, and a reader needs no client — a `stat` +
//! `read` of a few bytes.

pub mod consume;
pub mod produce;
pub mod schedule;
pub mod status;
pub mod transaction;

use std::path::PathBuf;
use std::time::Duration;

pub use consume::{ConsumeConfig, ConsumeReport, Consumer, Progress, Work, consume};
pub use produce::{ProduceConfig, ProduceReport, produce};
pub use schedule::{Burst, Ramp, Schedule};
pub use status::{Status, StatusReport, read_status_file, read_status_report};
pub use transaction::Transaction;

/// The two AWS clients both commands use.
#[derive(Debug, Clone)]
pub struct Clients {
    pub sqs: aws_sdk_sqs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
}

impl Clients {
    /// Clients configured from the standard AWS settings: `AWS_REGION`, `AWS_ENDPOINT_URL`
    /// (and the per-service `AWS_ENDPOINT_URL_SQS` / `AWS_ENDPOINT_URL_DYNAMODB`), the
    /// credentials chain (environment, profile, web identity / IRSA, container and instance
    /// metadata) — exactly what any other AWS SDK application reads.
    pub async fn from_env() -> Clients {
        let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Clients::from_sdk_config(&conf)
    }

    pub fn from_sdk_config(conf: &aws_config::SdkConfig) -> Clients {
        Clients {
            sqs: aws_sdk_sqs::Client::new(conf),
            dynamodb: aws_sdk_dynamodb::Client::new(conf),
        }
    }
}

/// Everything that stops a produce or consume run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is out of range; the message names it and the accepted range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The queue does not exist (or the URL points at the wrong account/region/endpoint).
    #[error(
        "queue {queue_url} does not exist: check SQS_QUEUE_URL, AWS_REGION and AWS_ENDPOINT_URL"
    )]
    QueueDoesNotExist { queue_url: String },
    /// An SQS call failed in a way retrying does not fix.
    #[error("SQS {operation} failed: {message}")]
    Sqs {
        operation: &'static str,
        message: String,
    },
    /// The acknowledgement log could not be written.
    #[error("writing the acknowledgement log {path}: {source}")]
    AckLog {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The status file could not be written.
    #[error("writing the status file {path}: {source}")]
    StatusFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A short, stable label for failure counters.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::QueueDoesNotExist { .. } => "queue_does_not_exist",
            Error::Sqs { .. } => "sqs",
            Error::AckLog { .. } => "ack_log",
            Error::StatusFile { .. } => "status_file",
        }
    }
}

/// Parses `500ms`, `30s`, `5m`, `1h` or a bare number of seconds (`2.5`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "duration {s:?}: unit must be ms, s, m or h (e.g. 30s)"
            ));
        }
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("duration {s:?} is not a number followed by ms, s, m or h"))?;
    Duration::try_from_secs_f64(v * scale).map_err(|e| format!("duration {s:?}: {e}"))
}

/// AWS's code for a missing queue: the JSON protocol's and the query protocol's spelling.
pub(crate) fn is_missing_queue(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist")
    )
}

/// SDK errors carry their cause chain; `DisplayErrorContext` prints all of it (the bare
/// `Display` of an `SdkError` is just "service error").
pub(crate) fn sdk_message<E: std::error::Error>(e: &E) -> String {
    aws_sdk_sqs::error::DisplayErrorContext(e).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_or_as_seconds() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("5 parsecs").unwrap_err().contains("unit"));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("s").is_err());
    }
}
