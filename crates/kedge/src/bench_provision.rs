//! `kedge bench schedule` and `kedge bench consolidate`: Karpenter's scheduling benchmark
//! set-up and one full consolidation pass, timed. The work is `provision::bench`; this module
//! parses flags, supplies the clock and prints the figures.

use std::time::{Duration, Instant};

use provision::bench::{diverse_pods, generic_pods, run_consolidate, run_schedule};
use rand::SeedableRng;

#[derive(clap::Args, Debug)]
pub struct ScheduleArgs {
    /// Pending pods to schedule (Karpenter's diverse mix).
    #[arg(long, default_value_t = 5000)]
    pub pods: usize,
    /// Generated instance types (Karpenter's fake.InstanceTypes(n)).
    #[arg(long = "instance-types", default_value_t = 400)]
    pub instance_types: usize,
    /// RNG seed for pod sizes and labels.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Schedule only generic pods (no topology constraints) instead of the diverse mix.
    #[arg(long)]
    pub generic: bool,
}

#[derive(clap::Args, Debug)]
pub struct ConsolidateArgs {
    #[arg(long, default_value_t = 1000)]
    pub nodes: usize,
    #[arg(long, default_value_t = 20000)]
    pub pods: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

// Measuring, not deciding: benchmarks read the monotonic clock; the decision code never does.
#[allow(clippy::disallowed_methods)]
fn timer() -> impl FnMut() -> Duration {
    let start = Instant::now();
    move || start.elapsed()
}

pub fn schedule(a: &ScheduleArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.instance_types > 0, "--instance-types must be at least 1");
    let pods = if a.generic {
        generic_pods(&mut rand::rngs::StdRng::seed_from_u64(a.seed), a.pods, "")
    } else {
        diverse_pods(a.pods, a.seed)
    };
    let r = run_schedule(pods, a.instance_types, &mut timer());
    println!(
        "{} pods ({}), {} instance types: {:.0} pods/s ({:.1} ms), {} scheduled, {} nodes, ${:.2}/h, lower bound ${:.2}/h (x{:.3}), {} pending",
        r.pods,
        if a.generic { "generic" } else { "diverse" },
        a.instance_types,
        r.pods_per_sec(),
        r.elapsed.as_secs_f64() * 1e3,
        r.scheduled,
        r.nodes,
        r.cost_per_hour,
        r.lower_bound_per_hour,
        r.ratio(),
        r.plan.unschedulable.len(),
    );
    Ok(())
}

pub fn consolidate(a: &ConsolidateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.nodes > 0, "--nodes must be at least 1");
    let r = run_consolidate(a.nodes, a.pods, a.seed, &mut timer());
    let saved: f64 = r.decision.commands.iter().map(|c| c.savings_per_hour).sum();
    let disrupted: usize = r.decision.commands.iter().map(|c| c.candidates.len()).sum();
    println!(
        "{} nodes, {} pods: one consolidation pass in {:.1} ms; {} command(s) disrupting {} node(s), saving ${:.2}/h",
        r.nodes,
        r.pods,
        r.elapsed.as_secs_f64() * 1e3,
        r.decision.commands.len(),
        disrupted,
        saved
    );
    for c in &r.decision.commands {
        println!("  {:?}: {}", c.kind, c.explanation);
    }
    Ok(())
}
