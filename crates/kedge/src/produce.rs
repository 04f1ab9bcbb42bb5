//! `kedge produce`: publish transaction messages to a queue (the sample application's
//! producer; the work is in the `workload` crate).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use workload::schedule::Base;
use workload::{Burst, ProduceConfig, Ramp, Schedule};

#[derive(Args, Debug, Clone)]
pub struct ProduceArgs {
    /// Queue to publish to. A URL ending in `.fifo` is a FIFO queue.
    #[arg(long, env = "SQS_QUEUE_URL")]
    pub queue_url: String,
    /// Messages per second.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Ramp the rate linearly FROM:TO msgs/s over SECONDS, then hold TO (replaces --rate).
    #[arg(long, value_name = "FROM:TO:SECONDS", conflicts_with = "rate")]
    pub ramp: Option<Ramp>,
    /// N extra messages all at once, SECONDS after the start. Repeatable.
    #[arg(long, value_name = "N@SECONDS")]
    pub burst: Vec<Burst>,
    /// Stop after N messages.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this long (e.g. 90s, 5m).
    #[arg(long, value_parser = workload::parse_duration)]
    pub duration: Option<Duration>,
    /// Messages per request: 1 = SendMessage, 2–10 = SendMessageBatch.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=10))]
    pub batch: u8,
    /// FIFO queues: spread messages round-robin over N MessageGroupIds. One group means one
    /// consumer at a time; the group count caps the useful consumer count.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub groups: u32,
    /// Seed for transaction ids, accounts and amounts (reproducible runs).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Accounts to spread transactions over.
    #[arg(long, default_value_t = 100)]
    pub accounts: u32,
    /// Currencies to pick from (comma-separated ISO 4217 codes).
    #[arg(long, default_value = "USD,EUR,GBP", value_delimiter = ',')]
    pub currencies: Vec<String>,
    /// Send requests in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub in_flight: u16,
    /// Append each acknowledged transaction id to this file, one per line.
    #[arg(long, value_name = "PATH")]
    pub ack_log: Option<PathBuf>,
}

pub async fn run(a: ProduceArgs) -> anyhow::Result<()> {
    let base = match a.ramp {
        Some(r) => Base::Ramp(r),
        None => Base::Constant(a.rate),
    };
    let mut cfg = ProduceConfig::new(a.queue_url);
    cfg.schedule = Schedule {
        base,
        bursts: a.burst,
    };
    cfg.count = a.count;
    cfg.duration = a.duration;
    cfg.batch = usize::from(a.batch);
    cfg.groups = a.groups;
    cfg.seed = a.seed;
    cfg.accounts = a.accounts;
    cfg.currencies = a.currencies;
    cfg.max_in_flight = usize::from(a.in_flight);
    cfg.ack_log = a.ack_log;
    cfg.validate()?;
    if cfg.count.is_none() && cfg.duration.is_none() {
        eprintln!("no --count or --duration: producing until Ctrl-C / SIGTERM");
    }
    if cfg.is_fifo() {
        // Said out loud: the seed used one group, which let only one consumer work at a time.
        println!(
            "FIFO queue: spreading messages over {} message groups (--groups)",
            cfg.groups
        );
    }
    let clients = workload::Clients::from_env().await;
    let report = workload::produce(cfg, clients, crate::shutdown_signal())
        .await
        .context("producing")?;
    println!(
        "sent {} failed {} in {:.2}s ({:.1} msgs/s)",
        report.sent,
        report.failed,
        report.elapsed.as_secs_f64(),
        report.rate()
    );
    if report.failed > 0 {
        anyhow::bail!("{} messages could not be sent (see the log)", report.failed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ProduceArgs,
    }

    fn parse(args: &[&str]) -> Result<ProduceArgs, clap::Error> {
        let mut v = vec!["produce", "--queue-url", "http://q/000000000000/q"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v).map(|c| c.args)
    }

    #[test]
    fn schedule_flags_parse_and_conflict_as_documented() {
        let a =
            parse(&["--ramp", "1:50:60", "--burst", "500@30", "--burst", "10@0"]).expect("parses");
        assert_eq!(a.ramp.map(|r| r.to), Some(50.0));
        assert_eq!(a.burst.len(), 2);
        assert_eq!((a.batch, a.groups, a.rate), (1, 16, 1.0));
        let a = parse(&["--duration", "90s", "--currencies", "USD,JPY"]).expect("parses");
        assert_eq!(a.duration, Some(Duration::from_secs(90)));
        assert_eq!(a.currencies, ["USD", "JPY"]);
        let e = parse(&["--rate", "5", "--ramp", "1:2:3"]).expect_err("conflict");
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
        let e = parse(&["--ramp", "1:2"]).expect_err("bad ramp");
        assert!(e.to_string().contains("FROM:TO:SECONDS"), "{e}");
        assert!(parse(&["--batch", "11"]).is_err());
        assert!(parse(&["--groups", "0"]).is_err());
    }
}
