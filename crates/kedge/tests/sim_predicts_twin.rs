//! The simulator predicts the twin: one short scenario through `kedge simulate` (virtual time,
//! modelled consumers) and `kedge up` (real consumer processes, a real SQS endpoint) makes the
//! same decisions — the scale-out and its target, the NodeClaims with their instance types,
//! the node removals, the return to the minimum — at the same times within a poll, because both
//! run the same engine and the same virtual cluster. Both logs are in the one form
//! `engine::Event::line` writes.
//!
//! The scale-in steps while the backlog drains follow each consumer's last completion, which in
//! the twin includes real SQS and DynamoDB calls; they are compared by where they end, not step
//! by step, and the return to the minimum is timed from the end of each run's own backlog.
//!
//! Nodes are removed by a disruption pass, which runs every 10 s (Karpenter's disruption
//! controller polls at that period; `engine::Policy::disruption_poll`). When the twin's
//! consumers end their last messages a few seconds after the modelled ones — a loaded machine
//! — a node the simulator found empty at one pass is found empty by the twin at the next, so a
//! removal may come one pass later than predicted; it must still be the same node type, for the
//! same reason, in the same order.

#[path = "common/up.rs"]
mod up;

use std::process::Command;

use serde_json::Value;
use up::*;

/// (seconds, line) of a decision log, times relative to the first decision; and that
/// decision's time in the run.
fn aligned(mut d: Vec<(f64, String)>) -> (f64, Vec<(f64, String)>) {
    d.retain(|(_, t)| {
        !(t.contains("DisruptionQueued")
            || t.contains("Disrupting:")
            || t.contains("Launched") && t.contains("replacement"))
    });
    let t0 = d.first().map_or(0.0, |x| x.0);
    (t0, d.into_iter().map(|(t, l)| (t - t0, l)).collect())
}

/// When the backlog was gone (nothing visible or in flight) after having been there, from a
/// run's `timeseries.csv` (first row at or after it).
fn drained_at(dir: &std::path::Path) -> f64 {
    let text = std::fs::read_to_string(dir.join("timeseries.csv")).expect("timeseries.csv");
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).expect(name);
    let (t, visible, in_flight) = (col("t_s"), col("visible"), col("in_flight"));
    let mut seen = false;
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        let n = |i: usize| f[i].parse::<f64>().expect("a number");
        let backlog = n(visible) + n(in_flight);
        if backlog > 0.0 {
            seen = true;
        } else if seen {
            return n(t);
        }
    }
    panic!("the backlog never drained: {}", dir.display());
}

fn sim_log(dir: &std::path::Path) -> Vec<(f64, String)> {
    let out = Command::new(KEDGE)
        .args([
            "simulate",
            "--scenario",
            &fixture("fidelity.yaml"),
            "--report-dir",
        ])
        .arg(dir)
        .output()
        .expect("kedge simulate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(dir.join("decisions.log"))
        .expect("decisions.log")
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let (t, rest) = l.split_once(' ')?;
            Some((t.parse().ok()?, rest.to_string()))
        })
        .collect()
}

fn twin_log(r: &Value) -> Vec<(f64, String)> {
    r["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .map(|d| {
            (
                d["t_s"].as_f64().expect("t_s"),
                d["text"].as_str().expect("text").to_string(),
            )
        })
        .collect()
}

/// The replica targets written, in order.
fn targets(log: &[(f64, String)]) -> Vec<(f64, u32)> {
    log.iter()
        .filter_map(|(t, l)| {
            let rest = l.split_once("New size: ")?.1;
            let n: u32 = rest.split(' ').next()?.parse().ok()?;
            Some((*t, n))
        })
        .collect()
}

/// (time, instance type) of every launch and of every removal.
fn nodes(log: &[(f64, String)], what: &str) -> Vec<(f64, String)> {
    log.iter()
        .filter(|(_, l)| l.contains(what))
        .map(|(t, l)| {
            let ty = l
                .split_whitespace()
                .find(|w| w.starts_with("m5.") || w.starts_with("(m5."))
                .unwrap_or("")
                .trim_matches(|c| c == '(' || c == ')')
                .to_string();
            (*t, ty)
        })
        .collect()
}

fn close(a: f64, b: f64, within: f64) -> bool {
    (a - b).abs() <= within
}

/// Seconds between two disruption passes (`engine::Policy::disruption_poll`).
const PASS: f64 = 10.0;

/// How much later the twin's backlog may end than the simulator's (the real consumers' calls on
/// a loaded machine); past it the run says nothing about decisions.
const LAG: f64 = 10.0;

/// Why each node was removed (`Empty`, `Underutilized`, ...), in order.
fn removal_reasons(log: &[(f64, String)]) -> Vec<String> {
    log.iter()
        .filter(|(_, l)| l.contains("DisruptionTerminating"))
        .filter_map(|(_, l)| {
            let why = l.rsplit_once('(')?.1.trim_end_matches(')');
            Some(why.to_string())
        })
        .collect()
}

#[test]
fn the_simulator_and_the_twin_decide_the_same_way() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (sim_dir, up_dir) = (tmp.path().join("sim"), tmp.path().join("up"));
    let (s0, sim) = aligned(sim_log(&sim_dir));
    let r = run_up("fidelity.yaml", &up_dir);
    let (t0, twin) = aligned(twin_log(&r));
    let show = || {
        let f = |l: &[(f64, String)]| {
            l.iter()
                .map(|(t, s)| format!("{t:>8.2} {}", s.chars().take(140).collect::<String>()))
                .collect::<Vec<_>>()
                .join("\n")
        };
        format!("simulate:\n{}\n\nup:\n{}", f(&sim), f(&twin))
    };
    // A poll (1 s) plus the twin's tick.
    let within = 1.25;

    let (st, tt) = (targets(&sim), targets(&twin));
    assert_eq!(st.first().map(|x| x.1), Some(20), "{}", show());
    assert_eq!(tt.first().map(|x| x.1), Some(20), "{}", show());
    let (sl, tl) = (nodes(&sim, "Launched"), nodes(&twin, "Launched"));
    assert!(!sl.is_empty(), "{}", show());
    assert_eq!(
        sl.iter().map(|x| &x.1).collect::<Vec<_>>(),
        tl.iter().map(|x| &x.1).collect::<Vec<_>>(),
        "the same NodeClaims\n{}",
        show()
    );
    for (a, b) in sl.iter().zip(&tl) {
        assert!(
            close(a.0, b.0, within),
            "launch times {a:?} {b:?}\n{}",
            show()
        );
    }
    let (sr, tr) = (nodes(&sim, "removed"), nodes(&twin, "removed"));
    assert_eq!(
        sr.iter().map(|x| &x.1).collect::<Vec<_>>(),
        tr.iter().map(|x| &x.1).collect::<Vec<_>>(),
        "the same removals\n{}",
        show()
    );
    let (sw, tw) = (removal_reasons(&sim), removal_reasons(&twin));
    assert_eq!(sw.len(), sr.len(), "a reason for every removal\n{}", show());
    assert_eq!(sw, tw, "removed for the same reasons\n{}", show());
    // Removals follow the last completions (real calls in the twin), the pass that finds the
    // node removable (one command at a time), then 15 s of validation: at the predicted time
    // or up to one pass after it.
    for (a, b) in sr.iter().zip(&tr) {
        assert!(
            b.0 >= a.0 - 3.0 * within && b.0 <= a.0 + PASS + 3.0 * within,
            "removal times {a:?} {b:?}\n{}",
            show()
        );
    }
    let (slast, tlast) = (st.last().expect("scale-in"), tt.last().expect("scale-in"));
    assert_eq!(
        (slast.1, tlast.1),
        (1, 1),
        "back to the minimum\n{}",
        show()
    );
    // The return to the minimum follows the end of the backlog by the same stabilization in
    // both; the twin's backlog ends when its real consumers' last calls return, which a loaded
    // machine (a slow fsync under the endpoint's acknowledgements) can delay by a few seconds.
    let (sd, td) = (drained_at(&sim_dir) - s0, drained_at(&up_dir) - t0);
    assert!(
        td >= sd - within && td <= sd + LAG,
        "the backlog drained at {sd} and {td}\n{}",
        show()
    );
    assert!(
        close(slast.0 - sd, tlast.0 - td, 3.0 * within),
        "back to the minimum at {slast:?} and {tlast:?}, drained at {sd} and {td}\n{}",
        show()
    );
    assert_eq!(r["busy_pods_killed"], 0);
}
