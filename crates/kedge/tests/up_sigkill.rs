//! Consumers SIGKILLed mid-run (busy, holding messages): their messages become visible again
//! after the visibility timeout and are stored exactly once.

#[path = "common/up.rs"]
mod up;
use std::time::Duration;
use up::*;

#[test]
fn sigkilled_consumers_messages_are_redelivered_and_stored_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("report");
    let r = run_up("up-sigkill.yaml", &dir);
    let summary = format!("{r:#}");
    assert!(num(&r, "chaos_killed") >= 1.0, "{summary}");
    assert!(num(&r, "pods_exited_unexpectedly") >= 1.0, "{summary}");
    // Items received more than once: the killed consumers' messages came back.
    assert!(num(&r, "redelivered_items") >= 1.0, "{summary}");
    assert_eq!(num(&r, "lost_messages"), 0.0, "{summary}");
    assert_eq!(num(&r, "duplicate_items"), 0.0, "{summary}");
    let mut acked = acked_ids(&dir);
    let mut ids = table_ids(&dir.join("data"), "payments");
    acked.sort();
    ids.sort();
    assert_eq!(ids, acked, "table and acknowledgements differ");
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
