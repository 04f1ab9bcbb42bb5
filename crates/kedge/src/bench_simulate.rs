//! `kedge bench simulate`: the simulator's speed on the built-in scenario (24 hours of the seed
//! at its real scale): wall time per simulated day, messages and engine steps per second.

use clap::Args;
use cluster::scenario::Source;
use cluster::sim::{SimConfig, run};
use engine::{Policy, PolicyName};

use crate::progress::Progress;

#[derive(Args, Debug, Clone)]
pub struct BenchSimulateArgs {
    /// Policies to time, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "kedge")]
    pub policies: Vec<PolicyName>,
    /// Runs per policy (the figures are the median and the fastest).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn run_bench(a: &BenchSimulateArgs) -> anyhow::Result<()> {
    let loaded = Source::read(None, crate::simulate::BUILTIN)?.load()?;
    println!(
        "bench simulate: built-in scenario {:?}, {} s of arrivals, {} messages, seed {}",
        loaded.scenario.name,
        loaded.arrivals.seconds(),
        loaded.arrivals.total(),
        a.seed
    );
    for &policy in &a.policies {
        let cfg = SimConfig::from_loaded(&loaded, Policy::preset(policy), a.seed, None)?;
        let mut walls = Vec::new();
        let mut last = None;
        for i in 0..a.runs.max(1) {
            let bar = Progress::new(format!("{policy} run {}/{}", i + 1, a.runs.max(1)), 1000);
            let r = run(&cfg, &mut |f| bar.set((f * 1000.0) as u64))?;
            bar.finish();
            walls.push(r.summary.wall_s);
            last = Some(r);
        }
        walls.sort_by(f64::total_cmp);
        let median = walls[walls.len() / 2];
        let Some(r) = last else { continue };
        let s = &r.summary;
        println!(
            "{policy}: wall median {median:.2} s, fastest {:.2} s for {:.1} simulated hours ({:.0}× real time); {} messages ({:.2} M/s), {} decisions, max {} replicas and {} nodes",
            walls[0],
            s.simulated_s / 3600.0,
            s.simulated_s / median.max(1e-9),
            s.messages,
            s.messages as f64 / median.max(1e-9) / 1e6,
            r.decisions.len(),
            s.max_replicas,
            s.max_nodes
        );
    }
    Ok(())
}
