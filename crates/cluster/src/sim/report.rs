//! What a simulated run reports: the figures of `report.json`, the time series of
//! `timeseries.csv`, and the decision log.

/// Latencies at millisecond resolution up to a minute, then per second (exact enough for
/// percentiles of runs with tens of millions of messages, in constant memory).
#[derive(Debug, Clone)]
pub struct Histogram {
    fine: Vec<u64>,
    coarse: Vec<u64>,
    count: u64,
    max: u64,
}

const FINE_MS: usize = 60_000;

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            fine: vec![0; FINE_MS],
            coarse: Vec::new(),
            count: 0,
            max: 0,
        }
    }
}

impl Histogram {
    pub fn record(&mut self, ms: u64) {
        self.count += 1;
        self.max = self.max.max(ms);
        if (ms as usize) < FINE_MS {
            self.fine[ms as usize] += 1;
        } else {
            let s = (ms / 1000) as usize;
            if self.coarse.len() <= s {
                self.coarse.resize(s + 1, 0);
            }
            self.coarse[s] += 1;
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The smallest value with at least `p` % of the samples at or below it (0 when empty).
    pub fn percentile(&self, p: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((p / 100.0) * self.count as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (ms, n) in self.fine.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return ms as u64;
            }
        }
        for (s, n) in self.coarse.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return (s as u64 * 1000).min(self.max);
            }
        }
        self.max
    }
}

/// A ScaledJob's Jobs over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct JobCounts {
    pub created: u64,
    pub succeeded: u64,
    pub failed: u64,
}

/// A run's figures (`report.json`; one object of `compare.json`'s `runs`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunSummary {
    pub scenario: String,
    pub policy: String,
    pub seed: u64,
    /// The `--set`/`--sweep` edits this run was made with.
    pub settings: Vec<String>,
    /// Messages the producers sent (acknowledged).
    pub messages: u64,
    /// Messages worked on and deleted.
    pub processed: u64,
    /// Acknowledged messages neither processed, nor still queued, nor in the DLQ: 0 unless
    /// something is wrong.
    pub lost_messages: u64,
    /// Still queued or in flight when the run ended (the backlog outlived the drain limit).
    pub unprocessed: u64,
    /// Moved to the DLQ after `maxReceiveCount` receives.
    pub dead_lettered: u64,
    /// Receives of a message that had been received before.
    pub redelivered: u64,
    /// Consumers stopped (scale-in or eviction) while working on a message.
    pub busy_pods_killed: u64,
    /// Messages whose consumer was stopped mid-work and did not finish within its grace
    /// period (given back to the queue).
    pub interrupted_messages: u64,
    /// Every node, baseline included (per-second billing, 60 s minimum).
    pub cost_usd: f64,
    /// The nodes the policy launched (the NodePool's); baseline nodes cost the same under every
    /// policy.
    pub nodepool_cost_usd: f64,
    pub node_hours: f64,
    pub latency_p50_ms: u64,
    pub latency_p95_ms: u64,
    pub latency_p99_ms: u64,
    pub latency_max_ms: u64,
    pub max_replicas: u32,
    pub max_nodes: u32,
    pub nodes_launched: u64,
    pub nodes_removed: u64,
    /// Replica count changes written (a ScaledJob: polls that created Jobs).
    pub scale_events: u64,
    /// A ScaledJob's Jobs: created, succeeded, failed (absent for a ScaledObject).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jobs: Option<JobCounts>,
    /// Virtual seconds simulated (the arrivals, then the drain of the backlog).
    pub simulated_s: f64,
    /// Wall-clock seconds the simulation took.
    pub wall_s: f64,
}

/// One row of `timeseries.csv`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Sample {
    pub t_s: f64,
    pub visible: u64,
    pub in_flight: u64,
    pub desired: u32,
    pub running: u32,
    pub pending: u32,
    pub nodes_ready: u32,
    pub nodes_launching: u32,
    pub cost_per_hour: f64,
    pub cost_usd: f64,
    /// Messages processed per second since the last sample.
    pub throughput: f64,
    /// Latency of the messages processed since the last sample.
    pub latency_p50_ms: u64,
    pub latency_p99_ms: u64,
}

impl Sample {
    pub const CSV_HEADER: &'static str = "t_s,visible,in_flight,desired,running,pending,nodes_ready,nodes_launching,cost_per_hour,cost_usd,throughput,latency_p50_ms,latency_p99_ms";

    pub fn csv_row(&self) -> String {
        format!(
            "{:.0},{},{},{},{},{},{},{},{:.4},{:.4},{:.2},{},{}",
            self.t_s,
            self.visible,
            self.in_flight,
            self.desired,
            self.running,
            self.pending,
            self.nodes_ready,
            self.nodes_launching,
            self.cost_per_hour,
            self.cost_usd,
            self.throughput,
            self.latency_p50_ms,
            self.latency_p99_ms
        )
    }
}

/// One line of the decision log: virtual time since the start, topic, and the line as
/// `engine::Event::line` writes it (the same form `kedge up` reports).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Decision {
    pub at_ms: u64,
    pub kind: &'static str,
    pub text: String,
}

/// Everything a run produced.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    pub summary: RunSummary,
    pub samples: Vec<Sample>,
    pub decisions: Vec<Decision>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_exact_below_a_minute_and_clamped_above() {
        let mut h = Histogram::default();
        for ms in 1..=100 {
            h.record(ms);
        }
        assert_eq!(h.percentile(50.0), 50);
        assert_eq!(h.percentile(99.0), 99);
        assert_eq!(h.percentile(100.0), 100);
        h.record(125_400);
        assert_eq!(h.max(), 125_400);
        assert_eq!(h.percentile(100.0), 125_000);
        assert_eq!(Histogram::default().percentile(99.0), 0);
    }
}
