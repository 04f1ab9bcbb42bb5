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

impl Series {
    fn add(&mut self, other: &Series) {
        self.count += other.count;
        self.sum += other.sum;
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
    }
}

/// Series by protocol, then action, then status. Nested rather than keyed by a tuple of
/// owned strings so that recording a request (every request does) looks its series up by
/// `&str` and allocates nothing; iteration order is the tuple's.
type SeriesMap = BTreeMap<String, BTreeMap<String, BTreeMap<u16, Series>>>;

/// How many maps requests are recorded in: each thread records in one of its own (by the
/// order threads first record), so that the request threads do not take one lock, and pass
/// its cache line back and forth between the cores, on every request.
const SHARDS: usize = 8;

/// One shard's map, on a cache line of its own.
#[derive(Default)]
#[repr(align(128))]
struct Shard(Mutex<SeriesMap>);

/// The shard the calling thread records in.
fn shard() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

/// Request counters and latency histograms keyed by (protocol, action, status).
#[derive(Default)]
pub struct Metrics {
    shards: [Shard; SHARDS],
}

impl Metrics {
    pub fn observe(&self, protocol: &str, action: &str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        // Bound the label set: unknown actions from clients share one series.
        let action = if action.len() > 64 || !action.chars().all(|c| c.is_ascii_alphanumeric()) {
            "invalid"
        } else {
            action
        };
        let mut m = self.shards[shard()].0.lock();
        if !m.contains_key(protocol) {
            m.insert(protocol.to_owned(), BTreeMap::new());
        }
        let Some(actions) = m.get_mut(protocol) else {
            return;
        };
        if !actions.contains_key(action) {
            actions.insert(action.to_owned(), BTreeMap::new());
        }
        let Some(statuses) = actions.get_mut(action) else {
            return;
        };
        let s = statuses.entry(status).or_default();
        s.count += 1;
        s.sum += secs;
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                s.buckets[i] += 1;
            }
        }
    }

    /// Every series as ((protocol, action, status), series), in that order.
    fn each(m: &SeriesMap) -> impl Iterator<Item = ((&str, &str, u16), &Series)> {
        m.iter().flat_map(|(p, actions)| {
            actions.iter().flat_map(move |(a, statuses)| {
                statuses
                    .iter()
                    .map(move |(s, v)| ((p.as_str(), a.as_str(), *s), v))
            })
        })
    }

    /// Every shard's series summed.
    fn merged(&self) -> SeriesMap {
        let mut all = SeriesMap::new();
        for shard in &self.shards {
            let m = shard.0.lock();
            for ((p, a, s), v) in Self::each(&m) {
                all.entry(p.to_owned())
                    .or_default()
                    .entry(a.to_owned())
                    .or_default()
                    .entry(s)
                    .or_default()
                    .add(v);
            }
        }
        all
    }

    /// Render every metric, including the queues' current depths.
    pub fn render(&self, store: &store::Store) -> String {
        let mut out = String::new();
        out.push_str("# HELP kedge_requests_total Requests answered, by protocol, action and HTTP status.\n# TYPE kedge_requests_total counter\n");
        let m = self.merged();
        for ((p, a, s), v) in Self::each(&m) {
            let _ = writeln!(
                out,
                "kedge_requests_total{{protocol=\"{p}\",action=\"{a}\",status=\"{s}\"}} {}",
                v.count
            );
        }
        out.push_str("# HELP kedge_request_duration_seconds Request latency, by protocol and action.\n# TYPE kedge_request_duration_seconds histogram\n");
        let mut by_action: BTreeMap<(String, String), Series> = BTreeMap::new();
        for ((p, a, _), v) in Self::each(&m) {
            by_action
                .entry((p.to_owned(), a.to_owned()))
                .or_default()
                .add(v);
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn render_counts_every_status_and_sums_each_actions_histogram() {
        let m = Metrics::default();
        m.observe("sqs", "SendMessage", 200, Duration::from_micros(300));
        m.observe("sqs", "SendMessage", 200, Duration::from_millis(3));
        m.observe("sqs", "SendMessage", 400, Duration::from_millis(30));
        m.observe("dynamodb", "PutItem", 200, Duration::from_millis(1));
        m.observe("sqs", "Not An Action!", 400, Duration::from_millis(1));
        let store = store::Store::open(
            &store::Durability::InMemory,
            Arc::new(clock::ManualClock::new(clock::Timestamp::from_secs(1))),
        )
        .expect("in-memory store");
        let out = m.render(&store);
        let line = |l: &str| {
            out.lines()
                .position(|x| x == l)
                .unwrap_or_else(|| panic!("missing line {l:?} in:\n{out}"))
        };
        let put =
            line(r#"kedge_requests_total{protocol="dynamodb",action="PutItem",status="200"} 1"#);
        let ok =
            line(r#"kedge_requests_total{protocol="sqs",action="SendMessage",status="200"} 2"#);
        let bad =
            line(r#"kedge_requests_total{protocol="sqs",action="SendMessage",status="400"} 1"#);
        let invalid =
            line(r#"kedge_requests_total{protocol="sqs",action="invalid",status="400"} 1"#);
        assert!(
            put < ok && ok < bad && bad < invalid,
            "series in label order"
        );
        line(
            r#"kedge_request_duration_seconds_bucket{protocol="sqs",action="SendMessage",le="0.0005"} 1"#,
        );
        line(
            r#"kedge_request_duration_seconds_bucket{protocol="sqs",action="SendMessage",le="0.005"} 2"#,
        );
        line(
            r#"kedge_request_duration_seconds_bucket{protocol="sqs",action="SendMessage",le="0.05"} 3"#,
        );
        line(
            r#"kedge_request_duration_seconds_bucket{protocol="sqs",action="SendMessage",le="+Inf"} 3"#,
        );
        line(r#"kedge_request_duration_seconds_count{protocol="sqs",action="SendMessage"} 3"#);
    }

    #[test]
    fn requests_recorded_on_many_threads_are_summed() {
        let m = Arc::new(Metrics::default());
        let threads: Vec<_> = (0..SHARDS + 3)
            .map(|i| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        m.observe("dynamodb", "GetItem", 200, Duration::from_micros(100));
                    }
                    m.observe("dynamodb", "GetItem", 400, Duration::from_millis(2));
                    if i == 0 {
                        m.observe("sqs", "SendMessage", 200, Duration::from_millis(1));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("a recording thread");
        }
        let store = store::Store::open(
            &store::Durability::InMemory,
            Arc::new(clock::ManualClock::new(clock::Timestamp::from_secs(1))),
        )
        .expect("in-memory store");
        let out = m.render(&store);
        let n = SHARDS + 3;
        for l in [
            format!(
                r#"kedge_requests_total{{protocol="dynamodb",action="GetItem",status="200"}} {}"#,
                100 * n
            ),
            format!(
                r#"kedge_requests_total{{protocol="dynamodb",action="GetItem",status="400"}} {n}"#
            ),
            r#"kedge_requests_total{protocol="sqs",action="SendMessage",status="200"} 1"#
                .to_owned(),
            format!(
                r#"kedge_request_duration_seconds_bucket{{protocol="dynamodb",action="GetItem",le="0.0005"}} {}"#,
                100 * n
            ),
            format!(
                r#"kedge_request_duration_seconds_bucket{{protocol="dynamodb",action="GetItem",le="0.0025"}} {}"#,
                101 * n
            ),
            format!(
                r#"kedge_request_duration_seconds_count{{protocol="dynamodb",action="GetItem"}} {}"#,
                101 * n
            ),
        ] {
            assert!(out.lines().any(|x| x == l), "missing line {l:?} in:\n{out}");
        }
        assert_eq!(
            out.matches("kedge_requests_total{").count(),
            3,
            "one line a series, whatever the threads: {out}"
        );
    }
}
