//! `cargo run --release -p provision --example bench_aws -- [pods] [seed]`: the diverse pod mix
//! on the built-in AWS catalog (1,363 types, 3 zones, spot + on-demand).

use provision::bench::{bench_nodepool, diverse_pods};
use provision::catalog::Catalog;
use provision::plan::{ProvisionInput, plan};

// Measuring, not deciding: the benchmark reads the monotonic clock.
#[allow(clippy::disallowed_methods)]
fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let pods = args.first().copied().unwrap_or(5000);
    let seed = args.get(1).copied().unwrap_or(42) as u64;
    let catalog = Catalog::aws();
    let input = ProvisionInput {
        nodepools: vec![bench_nodepool()],
        pending: diverse_pods(pods, seed),
        ..Default::default()
    };
    let start = std::time::Instant::now();
    let p = plan(&catalog, &input);
    let el = start.elapsed();
    println!(
        "aws catalog: pods={} nodes={} pending={} pods/s={:.0} elapsed={:?} cost=${:.2}/h lower-bound=${:.2}/h",
        pods,
        p.claims.len(),
        p.unschedulable.len(),
        pods as f64 / el.as_secs_f64(),
        el,
        p.cost_per_hour,
        p.lower_bound_per_hour
    );
    for e in p.explanations.iter().take(2) {
        println!("  {e}");
    }
    let mut reasons = std::collections::BTreeMap::<String, usize>::new();
    for (_p, r) in &p.unschedulable {
        *reasons
            .entry(format!(
                "{} {}",
                r.chars().take(120).collect::<String>(),
                _p.split('-').next().unwrap_or("")
            ))
            .or_default() += 1;
    }
    for (r, n) in reasons.iter().take(5) {
        println!("  pending x{n}: {r}");
    }
}
