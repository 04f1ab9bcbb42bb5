//! `cargo run --release -p provision --example bench_consolidate -- [nodes] [pods] [seed]`
//! The same run as `kedge bench consolidate`, without building the kedge binary.

use provision::bench::run_consolidate;

// Measuring, not deciding: the benchmark reads the monotonic clock.
#[allow(clippy::disallowed_methods)]
fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let nodes = args.first().copied().unwrap_or(1000);
    let pods = args.get(1).copied().unwrap_or(20000);
    let seed = args.get(2).copied().unwrap_or(42) as u64;
    let start = std::time::Instant::now();
    let mut timer = move || start.elapsed();
    let r = run_consolidate(nodes, pods, seed, &mut timer);
    println!(
        "nodes={} pods={} elapsed={:?} commands={}",
        r.nodes,
        r.pods,
        r.elapsed,
        r.decision.commands.len()
    );
    for c in &r.decision.commands {
        println!(
            "  {:?} {} node(s), saving ${:.2}/h: {}",
            c.kind,
            c.candidates.len(),
            c.savings_per_hour,
            c.explanation.chars().take(160).collect::<String>()
        );
    }
}
