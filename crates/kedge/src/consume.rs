//! `kedge consume`: receive transactions and store each one in a DynamoDB table (the sample
//! application's consumer; the work, and the busy/idle status contract, are documented in the
//! `workload` crate).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use operator::busy::ConsumerReport;
use workload::{ConsumeConfig, Work};

#[derive(Args, Debug, Clone)]
pub struct ConsumeArgs {
    /// Queue to consume.
    #[arg(long, env = "SQS_QUEUE_URL")]
    pub queue_url: String,
    /// Table to store transactions in; partition key `transaction_id` (S).
    #[arg(long, env = "DYNAMODB_TABLE")]
    pub table: String,
    /// Messages per receive (1–10).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(1..=10))]
    pub batch: i32,
    /// Messages of a batch worked on at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// Simulated waiting per message (I/O-like work). The default, with --concurrency 1,
    /// gives about one message per second per consumer.
    #[arg(long, default_value = "1s", value_parser = workload::parse_duration)]
    pub work_sleep: Duration,
    /// Simulated CPU time per message, spent after the sleep.
    #[arg(long, default_value = "0s", value_parser = workload::parse_duration)]
    pub work_cpu: Duration,
    /// Long-poll wait per receive (at most 20s).
    #[arg(long, default_value = "20s", value_parser = workload::parse_duration)]
    pub wait_time: Duration,
    /// Visibility timeout requested per receive (whole seconds); renewed while working.
    #[arg(long, default_value = "30s", value_parser = workload::parse_duration)]
    pub visibility_timeout: Duration,
    /// After SIGTERM, how long held messages may take before they are given back. Keep it
    /// below the pod's terminationGracePeriodSeconds.
    #[arg(long, default_value = "30s", value_parser = workload::parse_duration)]
    pub grace_period: Duration,
    /// Keep `busy` or `idle` in this file, and once a message is finished its mean work time
    /// and concurrency (see the workload crate docs).
    #[arg(long, env = "KEDGE_STATUS_FILE", value_name = "PATH")]
    pub status_file: Option<PathBuf>,
    /// Fault injection (the twin's `consumer-crash` fault): while this file exists, the
    /// consumer kills itself with SIGKILL on receiving a poison message, before deleting it.
    /// The file holds the share of messages that are poison (0–1; empty: all).
    #[arg(long, env = "KEDGE_CRASH_FILE", value_name = "PATH")]
    pub crash_file: Option<PathBuf>,
    /// A Job's consumer (KEDA's ScaledJob): one receive of up to --batch messages (one long
    /// poll of --wait-time), work and delete them, then exit 0; an empty receive exits at once.
    #[arg(long)]
    pub once: bool,
    /// Stored in each item; defaults to $HOSTNAME (the pod name in Kubernetes), else the pid.
    #[arg(long, env = "KEDGE_CONSUMER_ID")]
    pub consumer_id: Option<String>,
}

pub async fn run(a: ConsumeArgs) -> anyhow::Result<()> {
    let mut cfg = ConsumeConfig::new(a.queue_url, a.table);
    if let Some(id) = a
        .consumer_id
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
    {
        cfg.consumer_id = id;
    }
    cfg.batch = a.batch;
    let concurrency = u32::from(a.concurrency);
    cfg.concurrency = usize::from(a.concurrency);
    cfg.work = Work {
        sleep: a.work_sleep,
        cpu: a.work_cpu,
    };
    cfg.wait_time = a.wait_time;
    cfg.visibility_timeout = a.visibility_timeout;
    cfg.grace_period = a.grace_period;
    cfg.status_file = a.status_file;
    cfg.crash_file = a.crash_file;
    cfg.once = a.once;
    let clients = workload::Clients::from_env().await;
    let consumer = workload::Consumer::new(cfg, clients).context("consuming")?;
    // In a cluster (POD_NAME/POD_NAMESPACE from the downward API), publish busy/idle on the
    // pod so the operator's scale-in removes idle consumers first, and with it what a message
    // costs this consumer (docs/operator.md).
    if let (Ok(pod), Ok(ns)) = (std::env::var("POD_NAME"), std::env::var("POD_NAMESPACE")) {
        operator::init_tls();
        match kube::Client::try_default().await {
            Ok(client) => {
                let mut progress = consumer.progress();
                let (tx, rx) = tokio::sync::watch::channel(ConsumerReport {
                    busy: false,
                    work_time: None,
                    concurrency,
                });
                tokio::spawn(async move {
                    loop {
                        let (busy, work_time) = {
                            let p = progress.borrow_and_update();
                            (p.status == workload::Status::Busy, p.work)
                        };
                        // Only a busy/idle change wakes the publisher (one PATCH); the work
                        // time is updated silently and goes out with the next change.
                        tx.send_if_modified(|r| {
                            let flipped = r.busy != busy;
                            r.busy = busy;
                            r.work_time = work_time;
                            flipped
                        });
                        if progress.changed().await.is_err() {
                            return;
                        }
                    }
                });
                tokio::spawn(operator::busy::publish_busy(client, ns, pod, rx));
            }
            Err(e) => {
                tracing::warn!(error = %e, "POD_NAME is set but the Kubernetes API is not reachable; busy/idle is not published")
            }
        }
    }
    let r = consumer
        .run(crate::shutdown_signal())
        .await
        .context("consuming")?;
    println!(
        "received {} written {} duplicates {} deleted {} poison {} write_failures {} released {}",
        r.received, r.written, r.duplicates, r.deleted, r.poison, r.write_failures, r.released
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ConsumeArgs,
    }

    #[test]
    fn defaults_match_the_seed_and_durations_take_units() {
        let a = Cli::try_parse_from(["consume", "--queue-url", "u", "--table", "t"])
            .expect("parses")
            .args;
        assert_eq!((a.batch, a.concurrency), (10, 1));
        assert_eq!(a.work_sleep, Duration::from_secs(1));
        assert_eq!(a.work_cpu, Duration::ZERO);
        assert_eq!(a.grace_period, Duration::from_secs(30));
        let a = Cli::try_parse_from([
            "consume",
            "--queue-url",
            "u",
            "--table",
            "t",
            "--work-sleep",
            "250ms",
            "--status-file",
            "/tmp/s",
        ])
        .expect("parses")
        .args;
        assert_eq!(a.work_sleep, Duration::from_millis(250));
        assert_eq!(a.status_file, Some(PathBuf::from("/tmp/s")));
        assert!(
            Cli::try_parse_from([
                "consume",
                "--queue-url",
                "u",
                "--table",
                "t",
                "--batch",
                "0"
            ])
            .is_err()
        );
    }
}
