//! `kedge up` end to end: a ~60 s scenario, headless, checked from report.json and from the
//! table itself (re-opened with `kedge serve` on the run's data directory).

#[path = "common/up.rs"]
mod up;
use std::time::Duration;
use up::*;

#[test]
fn short_scenario_scales_out_drains_and_returns_to_baseline() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("report");
    let r = run_up("up-short.yaml", &dir);
    let summary = format!("{r:#}");
    assert!(num(&r, "max_replicas") > 1.0, "{summary}");
    assert!(num(&r, "nodes_launched") >= 1.0, "{summary}");
    assert!(
        num(&r, "max_nodes") > num(&r, "baseline_nodes"),
        "{summary}"
    );
    assert!(
        r["drained_at_s"].is_number(),
        "backlog never drained: {summary}"
    );
    assert_eq!(
        num(&r, "final_replicas"),
        num(&r, "min_replicas"),
        "{summary}"
    );
    assert_eq!(
        num(&r, "final_nodes"),
        num(&r, "baseline_nodes"),
        "{summary}"
    );
    assert!(num(&r, "nodes_removed") >= 1.0, "{summary}");
    assert!(r["reaction_s"].is_number(), "{summary}");
    assert_eq!(num(&r, "lost_messages"), 0.0, "{summary}");
    assert_eq!(num(&r, "duplicate_items"), 0.0, "{summary}");
    assert_eq!(num(&r, "busy_pods_killed"), 0.0, "{summary}");
    assert_eq!(num(&r, "leftover_processes"), 0.0, "{summary}");
    assert!(num(&r, "messages_sent") > 100.0, "{summary}");
    for f in ["timeseries.csv", "report.html"] {
        assert!(dir.join(f).exists(), "{f} missing");
    }

    // The table itself: every acknowledged id exactly once, nothing else.
    let mut acked = acked_ids(&dir);
    let mut ids = table_ids(&dir.join("data"), "payments");
    acked.sort();
    ids.sort();
    assert_eq!(acked.len() as f64, num(&r, "messages_acknowledged"));
    assert_eq!(ids, acked, "table and acknowledgements differ");

    // No consumer left behind (they all carry the report dir in their arguments).
    // Poll for up to 5 s (50 x 100 ms).
    for attempt in 0.. {
        let left = processes_mentioning(&dir.display().to_string());
        if left.is_empty() {
            break;
        }
        assert!(attempt < 50, "left behind: {left:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
