//! Live throughput and latency, from the table itself: once a second a background task scans
//! the items written in the recent window (`written_at` ≥ now − window, projected to the
//! three timestamps it needs) and computes items written per second and the latency
//! percentiles (sent → item written) over that window. The item is written just before its
//! message is deleted (acknowledged), so this is the consumers' acknowledged throughput.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use clock::{Clock, SystemClock};

/// The recent window throughput and latency are computed over.
pub const WINDOW: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LiveStats {
    /// Items written per second over the window (or since the start, if shorter).
    pub throughput: f64,
    pub p50_ms: Option<u64>,
    pub p99_ms: Option<u64>,
    /// Items written in the window.
    pub items: u64,
}

impl LiveStats {
    pub fn latency_text(&self) -> String {
        match (self.p50_ms, self.p99_ms) {
            (Some(a), Some(b)) => format!("{} / {}", ms(a), ms(b)),
            _ => "- / -".into(),
        }
    }
}

fn ms(v: u64) -> String {
    if v >= 10_000 {
        format!("{:.0}s", v as f64 / 1000.0)
    } else if v >= 1000 {
        format!("{:.1}s", v as f64 / 1000.0)
    } else {
        format!("{v}ms")
    }
}

/// The window's figures from `(sent_at_ms, written_at_ms)` pairs at `now_ms`.
pub fn window_stats(items: &[(u64, u64)], now_ms: u64, start_ms: u64) -> LiveStats {
    let window_ms = WINDOW.as_millis() as u64;
    let from = now_ms.saturating_sub(window_ms).max(start_ms);
    let mut lat: Vec<u64> = items
        .iter()
        .filter(|(_, w)| *w > from && *w <= now_ms)
        .map(|(s, w)| w.saturating_sub(*s))
        .collect();
    lat.sort_unstable();
    let span_s = (now_ms.saturating_sub(from)).max(1) as f64 / 1000.0;
    let pct = |p: f64| -> Option<u64> {
        if lat.is_empty() {
            return None;
        }
        let i = ((p / 100.0) * (lat.len() - 1) as f64).round() as usize;
        lat.get(i.min(lat.len() - 1)).copied()
    };
    LiveStats {
        throughput: lat.len() as f64 / span_s,
        p50_ms: pct(50.0),
        p99_ms: pct(99.0),
        items: lat.len() as u64,
    }
}

/// Items written at or after `since_ms`: (sent_at, written_at).
async fn recent_items(
    clients: &workload::Clients,
    table: &str,
    since_ms: u64,
) -> anyhow::Result<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let r = clients
            .dynamodb
            .scan()
            .table_name(table)
            .filter_expression("written_at >= :since")
            .projection_expression("sent_at, written_at")
            .expression_attribute_values(":since", AttributeValue::N(since_ms.to_string()))
            .set_exclusive_start_key(start.take())
            .send()
            .await?;
        for it in r.items.unwrap_or_default() {
            let n = |k: &str| {
                it.get(k)
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse::<f64>().ok())
                    .map(|v| v as u64)
            };
            if let (Some(s), Some(w)) = (n("sent_at"), n("written_at")) {
                out.push((s, w));
            }
        }
        match r.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => break,
        }
    }
    Ok(out)
}

/// Scan once a second until `stop`; the latest figures are in the returned receiver.
pub fn spawn(
    clients: workload::Clients,
    table: String,
    start_ms: u64,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::sync::watch::Receiver<LiveStats> {
    let (tx, rx) = tokio::sync::watch::channel(LiveStats::default());
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            let now = SystemClock.now().as_millis();
            let since = now.saturating_sub(WINDOW.as_millis() as u64);
            match recent_items(&clients, &table, since).await {
                Ok(items) => {
                    let _ = tx.send(window_stats(&items, now, start_ms));
                }
                Err(e) => tracing::debug!(error = %e, "live stats scan failed"),
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_recent_items_and_their_latency() {
        let start = 1_000_000;
        let now = start + 60_000;
        // 20 items in the window (latency 100..=2000 ms), 5 older, 1 in the future.
        let mut items: Vec<(u64, u64)> = (1..=20)
            .map(|i| {
                let w = now - 9_500 + i * 100;
                (w - i * 100, w)
            })
            .collect();
        items.extend((0..5).map(|i| (now - 20_000 - i, now - 15_000)));
        items.push((now, now + 500));
        let s = window_stats(&items, now, start);
        assert_eq!(s.items, 20);
        assert!((s.throughput - 2.0).abs() < 1e-9, "{s:?}");
        assert_eq!(s.p50_ms, Some(1100));
        assert_eq!(s.p99_ms, Some(2000));
        assert_eq!(s.latency_text(), "1.1s / 2.0s");
    }

    #[test]
    fn short_runs_divide_by_the_time_since_the_start() {
        let start = 1_000_000;
        let now = start + 4_000;
        let items: Vec<(u64, u64)> = (0..8).map(|i| (start, start + 500 * i + 1)).collect();
        let s = window_stats(&items, now, start);
        assert!((s.throughput - 2.0).abs() < 1e-9, "{s:?}");
        assert_eq!(window_stats(&[], now, start).latency_text(), "- / -");
    }
}
