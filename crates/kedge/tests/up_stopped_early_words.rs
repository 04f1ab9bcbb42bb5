//! A run stopped early (`--duration`) while a backlog is queued: the summary's words match the
//! queue and the table. Messages still queued are `unprocessed`, not `lost`; every
//! acknowledged id is processed, unprocessed, dead-lettered or lost, and the counts agree
//! with the table and with the queue and its DLQ counted through the SQS API afterwards.
//! Headless output is plain: status lines on stdout, no colour, no info lines on stderr;
//! every log line (ours and the consumers') is in kedge.log.

#[path = "common/up.rs"]
mod up;
use std::collections::HashSet;
use up::*;

#[test]
fn stopped_early_leaves_messages_unprocessed_not_lost() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("report");
    // 4 producers at 15 msgs/s from 4 s; consumers work 200 ms each. Stopped at 7 s, before
    // the nodes launched for the burst can run pods (boot 3 s + pod start 1 s after the first
    // decision at ~4.4 s): only the baseline nodes' few consumers (~5 msgs/s each) have
    // worked, so the queue holds a backlog. (At 12 s the scaled-out consumers had sometimes
    // drained it.)
    let (r, stdout, stderr) = run_up_with("up-short.yaml", &dir, &["--duration", "7s"], None);
    let summary = format!("{r:#}\n{stdout}\n{stderr}");
    assert_eq!(r["stopped_early"], true, "{summary}");

    let acked: HashSet<String> = acked_ids(&dir).into_iter().collect();
    let in_table: HashSet<String> = table_ids(&dir.join("data"), "payments")
        .into_iter()
        .collect();
    let processed = acked.intersection(&in_table).count() as f64;
    let missing = acked.len() as f64 - processed;
    let left = queue_counts(
        &dir.join("data"),
        &["payments-queue.fifo", "payments-queue-dlq.fifo"],
    );
    let (queued, dlq) = (left[0] as f64, left[1] as f64);

    assert_eq!(num(&r, "processed_messages"), processed, "{summary}");
    assert_eq!(num(&r, "left_in_queue"), queued, "{summary}");
    assert_eq!(num(&r, "in_dlq"), dlq, "{summary}");
    assert_eq!(
        num(&r, "unprocessed_messages") + num(&r, "dead_lettered") + num(&r, "lost_messages"),
        missing,
        "{summary}"
    );
    assert!(
        queued > 0.0,
        "the run was meant to stop with a backlog: {summary}"
    );
    assert_eq!(
        num(&r, "unprocessed_messages"),
        missing.min(queued),
        "{summary}"
    );
    assert_eq!(num(&r, "lost_messages"), 0.0, "{summary}");
    assert_eq!(num(&r, "duplicate_items"), 0.0, "{summary}");

    // The summary says it in those words.
    let line = stdout
        .lines()
        .find(|l| l.starts_with("messages: "))
        .unwrap_or_else(|| panic!("no outcome line: {summary}"));
    assert!(
        line.contains(&format!("{} unprocessed", r["unprocessed_messages"]))
            && line.contains("0 lost"),
        "{line}"
    );
    assert!(stdout.contains("not lost"), "{summary}");

    // Plain output: no colour codes anywhere, no info lines on stderr.
    assert!(
        !stdout.contains('\u{1b}') && !stderr.contains('\u{1b}'),
        "{summary}"
    );
    assert!(!stderr.contains(" INFO "), "{stderr}");
    // The log file has our lines and the consumers' (prefixed with their pod name).
    let log = std::fs::read_to_string(dir.join("kedge.log")).expect("kedge.log");
    assert!(log.contains("workload::produce"), "{log}");
    assert!(log.contains("consumer-0 | "), "{log}");
    assert!(!log.contains('\u{1b}'), "no colour in the file");

    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    let headline = html.find("class=\"outcome\"").expect("a headline");
    let charts = html.find("class=\"charts\"").expect("charts");
    let keys = html.find("id=\"details\"").expect("the key table");
    assert!(headline < charts && charts < keys);
}
