//! Server metrics in the Prometheus text format (`GET /metrics`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use parking_lot::Mutex;

/// Latency histogram bucket bounds, seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

/// Request counters and latency histograms keyed by (protocol, action, status).
#[derive(Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<(String, String, u16), Series>>,
}

impl Metrics {
    pub fn observe(&self, protocol: &str, action: &str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut m = self.series.lock();
        // Bound the label set: unknown actions from clients share one series.
        let action = if action.len() > 64 || !action.chars().all(|c| c.is_ascii_alphanumeric()) {
            "invalid"
        } else {
            action
        };
        let s = m
            .entry((protocol.to_owned(), action.to_owned(), status))
            .or_default();
        s.count += 1;
        s.sum += secs;
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                s.buckets[i] += 1;
            }
        }
    }

    /// Render every metric, including the queues' current depths.
    pub fn render(&self, store: &store::Store) -> String {
        let mut out = String::new();
        out.push_str("# HELP kedge_requests_total Requests answered, by protocol, action and HTTP status.\n# TYPE kedge_requests_total counter\n");
        let m = self.series.lock();
        for ((p, a, s), v) in m.iter() {
            let _ = writeln!(
                out,
                "kedge_requests_total{{protocol=\"{p}\",action=\"{a}\",status=\"{s}\"}} {}",
                v.count
            );
        }
        out.push_str("# HELP kedge_request_duration_seconds Request latency, by protocol and action.\n# TYPE kedge_request_duration_seconds histogram\n");
        let mut by_action: BTreeMap<(String, String), Series> = BTreeMap::new();
        for ((p, a, _), v) in m.iter() {
            let e = by_action.entry((p.clone(), a.clone())).or_default();
            e.count += v.count;
            e.sum += v.sum;
            for i in 0..BUCKETS.len() {
                e.buckets[i] += v.buckets[i];
            }
        }
        drop(m);
        for ((p, a), v) in by_action {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "kedge_request_duration_seconds_bucket{{protocol=\"{p}\",action=\"{a}\",le=\"{b}\"}} {}",
                    v.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "kedge_request_duration_seconds_bucket{{protocol=\"{p}\",action=\"{a}\",le=\"+Inf\"}} {}",
                v.count
            );
            let _ = writeln!(
                out,
                "kedge_request_duration_seconds_sum{{protocol=\"{p}\",action=\"{a}\"}} {}",
                v.sum
            );
            let _ = writeln!(
                out,
                "kedge_request_duration_seconds_count{{protocol=\"{p}\",action=\"{a}\"}} {}",
                v.count
            );
        }
        let (commits, records) = store.journal.stats();
        let _ = write!(
            out,
            "# HELP kedge_journal_commits_total Durable commits (fsyncs) made by the journal.\n# TYPE kedge_journal_commits_total counter\nkedge_journal_commits_total {commits}\n# HELP kedge_journal_records_total Changes made durable by the journal.\n# TYPE kedge_journal_records_total counter\nkedge_journal_records_total {records}\n# HELP kedge_storage_failed 1 when the storage failed and the server refuses writes.\n# TYPE kedge_storage_failed gauge\nkedge_storage_failed {}\n",
            u8::from(store.journal.is_failed())
        );
        out.push_str("# HELP kedge_sqs_queue_messages Messages in a queue, by state (visible, not_visible, delayed).\n# TYPE kedge_sqs_queue_messages gauge\n");
        if let Ok((names, _)) = store.queues.list_queues(None, None, None) {
            for n in names {
                if let Ok(c) = store.queues.counts(&n) {
                    for (state, v) in [
                        ("visible", c.visible),
                        ("not_visible", c.not_visible),
                        ("delayed", c.delayed),
                    ] {
                        let _ = writeln!(
                            out,
                            "kedge_sqs_queue_messages{{queue=\"{n}\",state=\"{state}\"}} {v}"
                        );
                    }
                }
            }
        }
        out
    }
}
