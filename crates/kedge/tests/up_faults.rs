//! `kedge up` with a scenario fault: consumers crash on every message they take (a
//! `consumer-crash` fault, injected by the twin as SIGKILL) — the messages go to the DLQ after
//! `maxReceiveCount` receives, nothing acknowledged is lost, nothing is stored twice.

#[path = "common/up.rs"]
mod up;
use up::*;

#[test]
fn crashing_consumers_send_messages_to_the_dlq_and_nothing_is_lost() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("report");
    let r = run_up("up-crash.yaml", &dir);
    let summary = format!("{r:#}");
    assert!(num(&r, "pods_exited_unexpectedly") >= 1.0, "{summary}");
    assert!(num(&r, "dead_lettered") >= 1.0, "{summary}");
    assert_eq!(num(&r, "lost_messages"), 0.0, "{summary}");
    assert_eq!(num(&r, "duplicate_items"), 0.0, "{summary}");
    // Every item in the table was acknowledged; what is not there is in the DLQ (or queue).
    let acked = acked_ids(&dir);
    let ids = table_ids(&dir.join("data"), "payments");
    assert!(ids.iter().all(|i| acked.contains(i)));
    assert_eq!(
        ids.len() as f64 + num(&r, "dead_lettered") + num(&r, "unprocessed_messages"),
        acked.len() as f64,
        "{summary}"
    );
}
