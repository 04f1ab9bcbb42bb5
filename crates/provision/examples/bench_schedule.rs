//! `cargo run --release -p provision --example bench_schedule -- [pods] [instance-types] [seed]`
//! The same run as `kedge bench schedule`, without building the kedge binary.

use provision::bench::{diverse_pods, generic_pods, run_schedule};
use rand::SeedableRng;

// Measuring, not deciding: the benchmark reads the monotonic clock.
#[allow(clippy::disallowed_methods)]
fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let pods = args.first().copied().unwrap_or(5000);
    let types = args.get(1).copied().unwrap_or(400);
    let seed = args.get(2).copied().unwrap_or(42) as u64;
    let start = std::time::Instant::now();
    let mut timer = move || start.elapsed();
    let r = run_schedule(diverse_pods(pods, seed), types, &mut timer);
    println!(
        "diverse: pods={} scheduled={} nodes={} pods/s={:.0} elapsed={:?} cost=${:.2}/h lower-bound=${:.2}/h ratio={:.3}",
        r.pods,
        r.scheduled,
        r.nodes,
        r.pods_per_sec(),
        r.elapsed,
        r.cost_per_hour,
        r.lower_bound_per_hour,
        r.ratio()
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let r = run_schedule(generic_pods(&mut rng, pods, ""), types, &mut timer);
    println!(
        "generic: pods={} scheduled={} nodes={} pods/s={:.0} elapsed={:?} cost=${:.2}/h lower-bound=${:.2}/h ratio={:.3}",
        r.pods,
        r.scheduled,
        r.nodes,
        r.pods_per_sec(),
        r.elapsed,
        r.cost_per_hour,
        r.lower_bound_per_hour,
        r.ratio()
    );
}
