//! The `kedge` command-line binary: one subcommand per job (see `kedge --help`).
//!
//! # Layout
//! - `main.rs`: argument parsing and dispatch; each subcommand lives in its own module.

use clap::{Parser, Subcommand};

mod bench_autoscale;
mod check;

#[derive(Parser, Debug)]
#[command(
    name = "kedge",
    version,
    about = "Event-driven autoscaling for queue workers: pods and nodes, in one binary",
    after_help = "Examples:\n  kedge serve                              # SQS + DynamoDB endpoint on 127.0.0.1:4566\n  kedge serve --bind 127.0.0.1:0 --in-memory\n  aws --endpoint-url http://127.0.0.1:4566 sqs create-queue --queue-name jobs\n"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate KEDA (and other kedge-understood) manifests; exit 1 on any problem.
    Check(check::CheckArgs),
    /// Reproducible benchmarks that print their figures.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Run the real scale loop over N ScaledObjects and report loop lateness.
    Autoscale(bench_autoscale::BenchAutoscaleArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => {
            if !check::run(&args)? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Autoscale(args)) => bench_autoscale::run(&args),
    }
}
