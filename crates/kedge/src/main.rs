//! The `kedge` command-line binary: one subcommand per job (see `kedge --help`).
//!
//! # Layout
//! - `main.rs`: argument parsing, signal handling and dispatch; `logging.rs`: where log lines go.
//! - `serve.rs`: `kedge serve`, the SQS + DynamoDB endpoint.
//! - `produce.rs`, `consume.rs`: the sample application (thin over the `workload` crate).
//! - `up.rs` (+ `up/`): `kedge up`, the local twin running a scenario, and its report.
//! - `simulate.rs`: `kedge simulate`, scenarios in virtual time under one or more policies.
//! - `operator_cmd.rs`: `kedge operator` (the in-cluster operator) and `kedge crds`.
//! - `bench_*.rs`: `kedge bench …`, reproducible benchmarks that print their figures.

mod bench_autoscale;
mod bench_crash;
mod bench_dynamodb;
mod bench_operator;
mod bench_provision;
mod bench_simulate;
mod bench_sqs;
mod check;
mod consume;
mod logging;
mod operator_cmd;
mod produce;
mod progress;
mod report_html;
mod serve;
mod simulate;
mod up;

use clap::{Parser, Subcommand};

/// mimalloc: less fragmentation than glibc malloc across tokio's worker threads (1,000,000
/// queued messages: 516 MB RSS instead of 835 MB) and fast small allocations on the request
/// path. The `system-allocator` feature leaves it out, for heap profilers that hook malloc.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "kedge",
    version,
    about = "Event-driven autoscaling for queue workers: pods and nodes, in one binary",
    after_help = "Examples:\n  kedge serve                                   # SQS + DynamoDB on 127.0.0.1:4566, data in ./kedge-data\n  kedge serve --bind 127.0.0.1:0 --in-memory    # free port, nothing kept\n  aws --endpoint-url http://127.0.0.1:4566 sqs create-queue --queue-name jobs\n  kedge bench sqs --endpoint http://127.0.0.1:4566 --messages 100000\n"
)]
struct Cli {
    /// Log filter (e.g. `info`, `debug`, `info,operator=debug`); also KEDGE_LOG.
    #[arg(long, global = true, env = "KEDGE_LOG")]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the whole pipeline locally (endpoint, producers, consumer processes on virtual
    /// nodes, autoscaling and provisioning) through a scenario, then write a report.
    #[command(
        after_help = "Examples:\n  kedge up                                    # the built-in ~4 minute demo\n  kedge up --headless --report-dir /tmp/r\n  kedge up --scenario examples/up/seed.yaml   # the seed's exact manifests\n"
    )]
    Up(up::UpArgs),
    /// Run a scenario in virtual time through the decision engine: one policy, several
    /// (--compare) or several values of a setting (--sweep); a day in seconds.
    #[command(
        after_help = "Examples:\n  kedge simulate                                            # the built-in seed-day scenario, policy kedge\n  kedge simulate --compare keda-karpenter,kedge,oracle --json\n  kedge simulate --sweep scaledobject.spec.triggers[0].metadata.queueLength=1,2,5,10\n  kedge simulate --scenario examples/up/demo.yaml --set consumer.work=2s\n"
    )]
    Simulate(simulate::SimulateArgs),
    /// Run the SQS- and DynamoDB-compatible endpoint (durable unless --in-memory).
    #[command(
        after_help = "Examples:\n  kedge serve\n  kedge serve --bind 127.0.0.1:0 --data-dir /tmp/kedge\n  kedge serve --credentials AKIDEXAMPLE:secret   # verify SigV4 signatures\n"
    )]
    Serve(serve::ServeArgs),
    /// Validate KEDA (and other kedge-understood) manifests; exit 1 on any problem.
    Check(check::CheckArgs),
    /// Publish transaction messages to SQS: fixed rate, ramps, bursts, batches, FIFO groups.
    #[command(
        after_help = "Reads SQS_QUEUE_URL, AWS_REGION, AWS_ENDPOINT_URL and the AWS credentials chain.\nExamples:\n  kedge produce --rate 20 --duration 60s\n  kedge produce --ramp 1:100:120 --burst 500@30 --batch 10\n  kedge produce --count 1000 --seed 7 --ack-log acked.txt\n"
    )]
    Produce(produce::ProduceArgs),
    /// Consume transactions from SQS and store each one once in DynamoDB (the sample consumer).
    #[command(
        after_help = "Reads SQS_QUEUE_URL, DYNAMODB_TABLE, AWS_REGION, AWS_ENDPOINT_URL and the AWS credentials chain.\nExamples:\n  kedge consume\n  kedge consume --concurrency 4 --work-sleep 250ms --status-file /tmp/c1.status\n"
    )]
    Consume(consume::ConsumeArgs),
    /// Run in a Kubernetes cluster: scale ScaledObjects' targets and (with a provider)
    /// launch and retire nodes for NodePools.
    #[command(
        after_help = "Examples:\n  kedge operator                                  # in-cluster config, pods only\n  kedge operator --kubeconfig ~/.kube/config --provider kwok\n  kedge operator --provider aws --cluster-name prod --interruption-queue https://sqs...\n"
    )]
    Operator(operator_cmd::OperatorArgs),
    /// Print the CustomResourceDefinitions kedge reconciles (or write them to --out DIR).
    #[command(
        after_help = "Examples:\n  kedge crds | kubectl apply -f -\n  kedge crds --out deploy/crds\n"
    )]
    Crds(operator_cmd::CrdsArgs),
    /// Reproducible benchmarks that print their figures.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// SQS throughput and latency against an endpoint (kedge serve, moto, AWS).
    #[command(
        after_help = "Example:\n  kedge bench sqs --endpoint http://127.0.0.1:4566 --messages 200000 --batch 10 --connections 16\n"
    )]
    Sqs(bench_sqs::SqsBenchArgs),
    /// DynamoDB PutItem/GetItem/Query/BatchWriteItem throughput and latency against an endpoint.
    #[command(
        after_help = "Example:\n  kedge bench dynamodb --endpoint http://127.0.0.1:4566 --items 100000 --connections 8\n"
    )]
    Dynamodb(bench_dynamodb::DynamoBenchArgs),
    /// Run the real scale loop over N ScaledObjects and report loop lateness.
    Autoscale(bench_autoscale::BenchAutoscaleArgs),
    /// The operator on a real API server (kwok nodes): peak RSS and reconcile latencies.
    #[command(
        after_help = "Example:\n  kedge bench operator --k8s-bin /var/cache/kedge-k8s/bin --scaled-objects 1000 --nodes 500\n"
    )]
    Operator(bench_operator::BenchOperatorArgs),
    /// Kill -9 soak: `kedge serve` SIGKILLed under mixed load and restarted, N times, each
    /// restart checked against the clients' acknowledged operations.
    #[command(
        after_help = "Example:\n  cargo build --release -p kedge && target/release/kedge bench crash --cycles 100\n"
    )]
    Crash(bench_crash::CrashArgs),
    /// Karpenter's scheduling benchmark: pods/s, nodes, $/h and the cost lower bound.
    #[command(
        after_help = "Example:\n  kedge bench schedule --pods 5000 --instance-types 400 --seed 42\n"
    )]
    Schedule(bench_provision::ScheduleArgs),
    /// The simulator's speed: the built-in 24-hour scenario, wall time per policy.
    #[command(
        after_help = "Example:\n  kedge bench simulate --policies keda-karpenter,kedge --runs 3\n"
    )]
    Simulate(bench_simulate::BenchSimulateArgs),
    /// One full consolidation pass over a synthetic cluster, timed.
    #[command(after_help = "Example:\n  kedge bench consolidate --nodes 1000 --pods 20000\n")]
    Consolidate(bench_provision::ConsolidateArgs),
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called (not when
/// the future is first polled), so a signal that arrives right after start-up is not lost.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(term) => {}
                _ = wait(int) => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Logs go to stderr so stdout stays machine-readable (the "listening on" line, bench
/// output); `kedge up` also writes them to its report directory (`logging.rs`).
fn init_logging(level: Option<&str>, command: &Command) {
    let up = matches!(command, Command::Up(_));
    logging::init(logging::Setup {
        asked: level,
        // `kedge up` prints status lines; its info lines go to kedge.log.
        console_default: if up { "warn" } else { "info" },
        file_later: up,
        file_prefix: match command {
            Command::Consume(a) => Some(format!(
                "{} | ",
                a.consumer_id.as_deref().unwrap_or("consume")
            )),
            _ => None,
        },
    });
}

/// Run an async command on a multi-threaded runtime.
fn block_on(f: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(f)
}

/// mimalloc settings per command, read by mimalloc when the process starts, so the command
/// re-executes itself once with them set (same PID); a setting already in the environment is
/// left to the user.
/// - `kedge operator` is long-running and sized by its resident memory: have mimalloc return
///   freed pages to the OS at once and commit arenas lazily (measured with `kedge bench
///   operator`: 65.5 MB → 49 MB RSS at 200 ScaledObjects).
/// - `kedge serve` keeps queued messages in memory, and a queue filling fast grows the heap
///   all the time: without transparent huge pages it faults in 4 KiB pages instead of zeroing
///   2 MiB at a time (with them, `clear_page_erms` was 14 % of the server's samples for
///   SendMessageBatch; off, 70–75 against 86 µs of server CPU per request and ~200,000
///   against ~165,000 msgs/s; docs/benchmarks.md).
fn tune_allocator() {
    use std::os::unix::process::CommandExt;
    // The subcommand: the first argument that is not the global `--log-level` or its value.
    let mut args = std::env::args().skip(1);
    let mut command = None;
    while let Some(a) = args.next() {
        if a == "--log-level" {
            args.next();
        } else if !a.starts_with("--log-level=") {
            command = Some(a);
            break;
        }
    }
    let settings: &[(&str, &str)] = match command.as_deref() {
        Some("operator") => &[
            ("MIMALLOC_PURGE_DELAY", "0"),
            ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
        ],
        Some("serve") => &[("MIMALLOC_ALLOW_THP", "0")],
        _ => return,
    };
    if settings.iter().any(|(k, _)| std::env::var_os(k).is_some()) {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .envs(settings.iter().copied())
        .exec();
    // exec only returns on failure: carry on with the defaults.
    eprintln!("kedge: could not re-execute with allocator settings: {err}");
}

fn main() -> anyhow::Result<()> {
    tune_allocator();
    let cli = Cli::parse();
    init_logging(cli.log_level.as_deref(), &cli.command);
    match cli.command {
        Command::Serve(a) => block_on(serve::run(a)),
        Command::Up(a) => block_on(up::run(a)),
        Command::Simulate(a) => simulate::run_cli(a),
        Command::Produce(a) => block_on(produce::run(a)),
        Command::Consume(a) => block_on(consume::run(a)),
        Command::Operator(a) => block_on(operator_cmd::run(a)),
        Command::Crds(a) => operator_cmd::crds(&a),
        Command::Check(args) => {
            if !check::run(&args)? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Sqs(a)) => block_on(bench_sqs::run(a)),
        Command::Bench(BenchCommand::Dynamodb(a)) => block_on(bench_dynamodb::run(a)),
        // Synchronous: it builds its own runtime.
        Command::Bench(BenchCommand::Autoscale(args)) => bench_autoscale::run(&args),
        Command::Bench(BenchCommand::Operator(a)) => bench_operator::run(&a),
        Command::Bench(BenchCommand::Crash(a)) => bench_crash::run(&a),
        Command::Bench(BenchCommand::Schedule(a)) => bench_provision::schedule(&a),
        Command::Bench(BenchCommand::Simulate(a)) => bench_simulate::run_bench(&a),
        Command::Bench(BenchCommand::Consolidate(a)) => bench_provision::consolidate(&a),
    }
}
