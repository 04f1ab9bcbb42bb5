//! The end-of-run report: reconciliation against the table and what the queue and its DLQ
//! still hold, `report.json`, `timeseries.csv`, `report.html` (the shared page,
//! `report_html.rs`) and the summary printed at the end.
//!
//! The words mean one thing each. Of the transaction ids acknowledged to a producer:
//! *processed* have an item in the table; *unprocessed* have none yet but are accounted for by
//! a message still in the queue (a run stopped early leaves these); *dead-lettered* by one in
//! the DLQ; *lost* by neither. The queue and DLQ are counted through the SQS API after the
//! consumers stopped.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use cluster::local::{DecisionRecord, Snapshot, Totals};
use serde::Serialize;

use super::Item;
use crate::report_html::{self, Chart, Decision, Figure, Page, Run, Series};

/// One row of `timeseries.csv` (about one per second).
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub t_s: f64,
    pub visible: u64,
    pub in_flight: u64,
    pub desired: u32,
    pub running: u32,
    pub pending: u32,
    pub nodes_ready: u32,
    pub nodes_launching: u32,
    pub nodes_draining: u32,
    pub nodes_by_type: String,
    /// Instance type → nodes of that type in any state (for the chart).
    #[serde(skip)]
    pub type_counts: BTreeMap<String, u32>,
    pub cost_per_hour: f64,
    pub cost_usd: f64,
    /// Filled from the table after the run: items written per second since the previous
    /// sample, and their latency.
    pub throughput: f64,
    pub latency_p50_ms: Option<u64>,
    pub latency_p99_ms: Option<u64>,
}

impl Sample {
    pub fn new(t_s: f64, visible: u64, in_flight: u64, s: &Snapshot) -> Sample {
        Sample {
            t_s,
            visible,
            in_flight,
            desired: s.desired,
            running: s.running,
            pending: s.pending,
            nodes_ready: s.nodes_ready,
            nodes_launching: s.nodes_launching,
            nodes_draining: s.nodes_draining,
            nodes_by_type: s
                .nodes_by_type
                .iter()
                .map(|(k, (r, l, d))| format!("{k}={r}/{l}/{d}"))
                .collect::<Vec<_>>()
                .join(" "),
            type_counts: s
                .nodes_by_type
                .iter()
                .map(|(k, (r, l, d))| (k.clone(), r + l + d))
                .collect(),
            cost_per_hour: s.cost_per_hour,
            cost_usd: s.cost_usd,
            throughput: 0.0,
            latency_p50_ms: None,
            latency_p99_ms: None,
        }
    }
}

pub struct Inputs<'a> {
    pub scenario: String,
    pub duration_s: f64,
    /// The scenario's own length, and how long this run was meant to last (`--duration`).
    pub scenario_s: f64,
    pub planned_s: f64,
    pub interrupted: bool,
    pub sent: u64,
    pub send_failures: u64,
    pub acked: &'a HashMap<String, u32>,
    pub items: &'a [Item],
    pub totals: &'a Totals,
    pub reaction_s: Option<f64>,
    pub joint: bool,
    pub drained_at_s: Option<f64>,
    pub final_replicas: u32,
    pub final_nodes: u32,
    pub baseline_nodes: u32,
    pub min_replicas: u32,
    pub leftover_processes: u32,
    /// What the queue and its DLQ still hold after the consumers stopped.
    pub left: LeftOver,
}

/// Messages still in the queue and its DLQ, counted through the SQS API
/// (`GetQueueAttributes`) after the consumers stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LeftOver {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
    /// Everything in the dead-letter queue.
    pub dlq: u64,
}

impl LeftOver {
    pub fn in_queue(&self) -> u64 {
        self.visible + self.in_flight + self.delayed
    }
}

/// Count what `queue_url` and its DLQ (from the queue's redrive policy) still hold.
pub async fn left_over(clients: &workload::Clients, queue_url: &str) -> anyhow::Result<LeftOver> {
    let (visible, in_flight, delayed, redrive) = counts(clients, queue_url).await?;
    let mut dlq = 0;
    if let Some(name) = redrive
        .as_deref()
        .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok())
        .and_then(|v| v["deadLetterTargetArn"].as_str().map(str::to_owned))
        .and_then(|arn| arn.rsplit(':').next().map(str::to_owned))
    {
        let url = clients
            .sqs
            .get_queue_url()
            .queue_name(&name)
            .send()
            .await
            .with_context(|| format!("finding the DLQ {name}"))?
            .queue_url
            .with_context(|| format!("the DLQ {name} has no URL"))?;
        let (v, f, d, _) = counts(clients, &url).await?;
        dlq = v + f + d;
    }
    Ok(LeftOver {
        visible,
        in_flight,
        delayed,
        dlq,
    })
}

async fn counts(
    clients: &workload::Clients,
    url: &str,
) -> anyhow::Result<(u64, u64, u64, Option<String>)> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let r = clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(A::ApproximateNumberOfMessagesDelayed)
        .attribute_names(A::RedrivePolicy)
        .send()
        .await
        .with_context(|| format!("counting the messages in {url}"))?;
    let a = r.attributes.unwrap_or_default();
    let g = |k: A| a.get(&k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Ok((
        g(A::ApproximateNumberOfMessages),
        g(A::ApproximateNumberOfMessagesNotVisible),
        g(A::ApproximateNumberOfMessagesDelayed),
        a.get(&A::RedrivePolicy).cloned(),
    ))
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub duration_s: f64,
    /// The scenario's own length.
    pub scenario_s: f64,
    /// Stopped before the scenario's end (`--duration` shorter than it, or `q` / Ctrl-C).
    pub stopped_early: bool,
    pub interrupted: bool,
    /// Messages the producers sent (their own count).
    pub messages_sent: u64,
    /// Acknowledgements in the producers' ack logs (an id acknowledged twice counts twice).
    pub messages_acknowledged: u64,
    pub send_failures: u64,
    pub items_in_table: u64,
    /// Acknowledged transaction ids with an item in the table.
    pub processed_messages: u64,
    /// Acknowledged ids with no item yet, accounted for by messages still in the queue
    /// (waiting, in flight or delayed) when the consumers stopped: a run stopped early leaves
    /// these behind. Not lost.
    pub unprocessed_messages: u64,
    /// Acknowledged ids with no item, accounted for by messages in the DLQ (received
    /// maxReceiveCount times without being processed).
    pub dead_lettered: u64,
    /// Acknowledged ids that are in neither the table, the queue nor its DLQ.
    pub lost_messages: u64,
    /// Items whose transaction id appears more than once in the table, plus acknowledged
    /// ids acknowledged twice (a producer resend that became two messages).
    pub duplicate_items: u64,
    /// Messages in the queue (visible + in flight + delayed) after the consumers stopped.
    pub left_in_queue: u64,
    /// Of those, in flight (held by a consumer that was killed; visible again after its
    /// visibility timeout).
    pub left_in_flight: u64,
    /// Messages in the DLQ at the end.
    pub in_dlq: u64,
    /// Messages in the queue or DLQ beyond the unprocessed acknowledged ids: redeliveries of
    /// items already written, or sends whose acknowledgement never reached the producer.
    pub queued_beyond_missing: u64,
    /// Items whose transaction id no producer was acknowledged for.
    pub unexpected_items: u64,
    /// Items written after more than one receive (redeliveries, processed once).
    pub redelivered_items: u64,
    pub max_replicas: u32,
    pub max_pending_pods: u32,
    pub max_nodes: u32,
    pub nodes_launched: u64,
    pub nodes_removed: u64,
    pub node_hours: f64,
    pub cost_usd: f64,
    pub latency_p50_ms: Option<u64>,
    pub latency_p99_ms: Option<u64>,
    pub reaction_s: Option<f64>,
    /// Joint decisions on (capacity requested in the scale-out step) or off.
    pub joint: bool,
    /// The first NodeClaim launch minus the latest scale-out decision before it (0 with
    /// joint decisions; at least Karpenter's 1 s batching window without).
    pub launch_after_scale_out_s: Option<f64>,
    pub drained_at_s: Option<f64>,
    pub final_replicas: u32,
    pub final_nodes: u32,
    pub baseline_nodes: u32,
    pub min_replicas: u32,
    pub busy_pods_killed: u64,
    pub chaos_killed: u64,
    pub pods_started: u64,
    pub pods_exited_unexpectedly: u64,
    pub leftover_processes: u32,
    /// A ScaledJob's Jobs: created, succeeded, failed (absent for a ScaledObject).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jobs: Option<cluster::sim::report::JobCounts>,
}

fn pct(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted.get(i.min(sorted.len() - 1)).copied()
}

/// `850 ms`, `1.2 s`, `14 s`.
pub fn ms_text(v: u64) -> String {
    if v >= 10_000 {
        format!("{:.0} s", v as f64 / 1000.0)
    } else if v >= 1000 {
        format!("{:.1} s", v as f64 / 1000.0)
    } else {
        format!("{v} ms")
    }
}

/// `text` broken at spaces into lines of at most `width` columns, the first starting with
/// `first`, the others with `rest`.
fn wrap(text: &str, width: usize, first: &str, rest: &str) -> String {
    let mut out = String::from(first);
    let mut col = first.chars().count();
    let mut line_start = true;
    for word in text.split_whitespace() {
        let w = word.chars().count();
        if !line_start && col + 1 + w > width {
            out.push('\n');
            out.push_str(rest);
            col = rest.chars().count();
            line_start = true;
        }
        if !line_start {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += w;
        line_start = false;
    }
    out
}

/// `3 messages`, `1 message`.
fn n(v: u64, one: &str, many: &str) -> String {
    format!("{v} {}", if v == 1 { one } else { many })
}

impl Report {
    pub fn build(i: Inputs<'_>) -> Report {
        let mut seen: HashMap<&str, u32> = HashMap::new();
        for it in i.items {
            *seen.entry(it.transaction_id.as_str()).or_insert(0) += 1;
        }
        let table_dups: u64 = seen.values().map(|c| u64::from(c.saturating_sub(1))).sum();
        let ack_dups: u64 = i
            .acked
            .values()
            .map(|c| u64::from(c.saturating_sub(1)))
            .sum();
        let missing = i
            .acked
            .keys()
            .filter(|k| !seen.contains_key(k.as_str()))
            .count() as u64;
        let processed = i.acked.len() as u64 - missing;
        // The queue holds messages, not ids: each message left accounts for one missing id,
        // the queue first (waiting work), then the DLQ (work that failed).
        let unprocessed = missing.min(i.left.in_queue());
        let dead_lettered = (missing - unprocessed).min(i.left.dlq);
        let lost = missing - unprocessed - dead_lettered;
        let unexpected = seen.keys().filter(|k| !i.acked.contains_key(**k)).count() as u64;
        let mut lat: Vec<u64> = i
            .items
            .iter()
            .filter_map(|it| Some(it.written_at_ms?.saturating_sub(it.sent_at_ms?)))
            .collect();
        lat.sort_unstable();
        let t = i.totals;
        Report {
            scenario: i.scenario,
            duration_s: i.duration_s,
            scenario_s: i.scenario_s,
            stopped_early: i.interrupted || i.planned_s + 0.5 < i.scenario_s,
            interrupted: i.interrupted,
            messages_sent: i.sent,
            messages_acknowledged: i.acked.values().map(|c| u64::from(*c)).sum(),
            send_failures: i.send_failures,
            items_in_table: i.items.len() as u64,
            processed_messages: processed,
            unprocessed_messages: unprocessed,
            dead_lettered,
            lost_messages: lost,
            duplicate_items: table_dups + ack_dups,
            left_in_queue: i.left.in_queue(),
            left_in_flight: i.left.in_flight,
            in_dlq: i.left.dlq,
            queued_beyond_missing: (i.left.in_queue() + i.left.dlq) - unprocessed - dead_lettered,
            unexpected_items: unexpected,
            redelivered_items: i
                .items
                .iter()
                .filter(|it| it.receive_count.unwrap_or(1) > 1)
                .count() as u64,
            max_replicas: t.max_replicas,
            max_pending_pods: t.max_pending_pods,
            max_nodes: t.max_nodes,
            nodes_launched: t.nodes_launched,
            nodes_removed: t.nodes_removed,
            node_hours: t.node_seconds / 3600.0,
            cost_usd: t.cost_usd,
            latency_p50_ms: pct(&lat, 50.0),
            latency_p99_ms: pct(&lat, 99.0),
            reaction_s: i.reaction_s,
            joint: i.joint,
            launch_after_scale_out_s: t.first_launch_after_scale_out_ms.map(|v| v as f64 / 1000.0),
            drained_at_s: i.drained_at_s,
            final_replicas: i.final_replicas,
            final_nodes: i.final_nodes,
            baseline_nodes: i.baseline_nodes,
            min_replicas: i.min_replicas,
            busy_pods_killed: t.busy_pods_killed,
            chaos_killed: t.chaos_killed,
            pods_started: t.pods_started,
            pods_exited_unexpectedly: t.pods_exited_unexpectedly,
            leftover_processes: i.leftover_processes,
            jobs: t.jobs,
        }
    }

    /// Distinct acknowledged transaction ids: processed + unprocessed + dead-lettered + lost.
    pub fn acknowledged_ids(&self) -> u64 {
        self.processed_messages
            + self.unprocessed_messages
            + self.dead_lettered
            + self.lost_messages
    }

    /// How long it ran, and why it stopped: `ran 60 s of the scenario's 240 s (stopped early by --duration)`.
    pub fn ran_text(&self) -> String {
        let why = if self.interrupted {
            " (stopped early: q / Ctrl-C)"
        } else if self.stopped_early {
            " (stopped early: --duration)"
        } else {
            ""
        };
        format!(
            "ran {:.0} s of the scenario's {:.0} s{why}",
            self.duration_s, self.scenario_s
        )
    }

    /// The outcome in one line.
    pub fn outcome_line(&self) -> String {
        let mut parts = vec![
            format!("{} sent", self.acknowledged_ids()),
            format!("{} processed", self.processed_messages),
            format!("{} unprocessed", self.unprocessed_messages),
        ];
        if self.dead_lettered > 0 {
            parts.push(format!("{} dead-lettered", self.dead_lettered));
        }
        parts.push(format!("{} lost", self.lost_messages));
        parts.push(format!("{} duplicates", self.duplicate_items));
        parts.join(", ")
    }

    pub fn latency_text(&self) -> String {
        match (self.latency_p50_ms, self.latency_p99_ms) {
            (Some(a), Some(b)) => format!("p50 {} / p99 {}", ms_text(a), ms_text(b)),
            _ => "no item written".into(),
        }
    }

    pub fn scaling_text(&self) -> String {
        if let Some(j) = self.jobs {
            return format!(
                "{} Jobs ({} succeeded, {} failed), up to {} at once and {} nodes; {} launched, {} removed",
                j.created,
                j.succeeded,
                j.failed,
                self.max_replicas,
                self.max_nodes,
                n(self.nodes_launched, "node", "nodes"),
                self.nodes_removed
            );
        }
        format!(
            "up to {} replicas and {} nodes; {} launched, {} removed",
            self.max_replicas,
            self.max_nodes,
            n(self.nodes_launched, "node", "nodes"),
            self.nodes_removed
        )
    }

    /// Explanations a reader needs that are not problems.
    pub fn notes(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.unprocessed_messages > 0 {
            let why = if self.stopped_early {
                "the run stopped before the consumers got to them"
            } else {
                "the consumers had not got to them by the scenario's end"
            };
            v.push(format!(
                "{} unprocessed: acknowledged to the producers and still in the queue ({} waiting, {} in flight) when the consumers stopped — {why}. They are not lost: the queue in the report directory's data/ still holds them.",
                n(self.unprocessed_messages, "message", "messages"),
                self.left_in_queue - self.left_in_flight,
                self.left_in_flight,
            ));
        }
        if self.queued_beyond_missing > 0 {
            v.push(format!(
                "{} in the queue or DLQ beyond the unprocessed ones: redeliveries of items already written, or sends whose acknowledgement never reached a producer.",
                n(self.queued_beyond_missing, "message", "messages")
            ));
        }
        if self.redelivered_items > 0 {
            v.push(format!(
                "{} written after more than one receive (redelivered, stored once).",
                n(self.redelivered_items, "item was", "items were")
            ));
        }
        if self.chaos_killed > 0 {
            v.push(format!(
                "{} SIGKILLed by the scenario's chaos.",
                n(
                    self.chaos_killed,
                    "busy consumer was",
                    "busy consumers were"
                )
            ));
        }
        v
    }

    /// What went wrong, in words; empty when nothing did.
    pub fn problems(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.lost_messages > 0 {
            v.push(format!(
                "{} lost: acknowledged to a producer, yet in neither the table, the queue nor its DLQ.",
                n(self.lost_messages, "message", "messages")
            ));
        }
        if self.duplicate_items > 0 {
            v.push(format!(
                "{} (a transaction stored or acknowledged more than once).",
                n(self.duplicate_items, "duplicate", "duplicates")
            ));
        }
        if self.dead_lettered > 0 {
            v.push(format!(
                "{} dead-lettered: moved to the DLQ after too many receives without being processed.",
                n(self.dead_lettered, "message", "messages")
            ));
        }
        if self.send_failures > 0 {
            v.push(format!(
                "{} failed (the producers were not acknowledged).",
                n(self.send_failures, "send", "sends")
            ));
        }
        if self.unexpected_items > 0 {
            v.push(format!(
                "{} in the table that no producer was acknowledged for.",
                n(self.unexpected_items, "item", "items")
            ));
        }
        if self.busy_pods_killed > 0 {
            v.push(format!(
                "{} stopped while busy (scale-in or drain should only stop idle ones).",
                n(self.busy_pods_killed, "consumer was", "consumers were")
            ));
        }
        let unexpected_exits = self
            .pods_exited_unexpectedly
            .saturating_sub(self.chaos_killed);
        if unexpected_exits > 0 {
            v.push(format!(
                "{} exited on its own (see kedge.log and pods/).",
                n(unexpected_exits, "consumer", "consumers")
            ));
        }
        if self.leftover_processes > 0 {
            v.push(format!(
                "{} still running after the run.",
                n(
                    u64::from(self.leftover_processes),
                    "consumer process was",
                    "consumer processes were"
                )
            ));
        }
        if !self.stopped_early {
            if self.drained_at_s.is_none() && self.messages_sent > 0 {
                v.push("The backlog never drained before the scenario's end.".into());
            }
            if self.final_replicas != self.min_replicas || self.final_nodes != self.baseline_nodes {
                v.push(format!(
                    "Did not scale back to the baseline: {} replicas (min {}), {} nodes (baseline {}) at the end.",
                    self.final_replicas, self.min_replicas, self.final_nodes, self.baseline_nodes
                ));
            }
        }
        v
    }

    /// Headline figures for the report page.
    pub fn figures(&self) -> Vec<Figure> {
        let opt_s = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.1} s"));
        let optms = |v: Option<u64>| v.map_or("–".to_string(), ms_text);
        vec![
            Figure::new("sent (acknowledged)", self.acknowledged_ids().to_string()),
            Figure::new("processed", self.processed_messages.to_string()),
            Figure::new(
                "unprocessed (left in queue)",
                self.unprocessed_messages.to_string(),
            ),
            Figure::new("lost", self.lost_messages.to_string()).bad_if(self.lost_messages > 0),
            Figure::new("duplicates", self.duplicate_items.to_string())
                .bad_if(self.duplicate_items > 0),
            Figure::new("dead-lettered", self.dead_lettered.to_string())
                .bad_if(self.dead_lettered > 0),
            Figure::new("latency p50", optms(self.latency_p50_ms)),
            Figure::new("latency p99", optms(self.latency_p99_ms)),
            Figure::new("cost", format!("${:.4}", self.cost_usd)),
            Figure::new(
                "max replicas / nodes",
                format!("{} / {}", self.max_replicas, self.max_nodes),
            ),
            Figure::new("reaction", opt_s(self.reaction_s)),
            Figure::new("drained at", opt_s(self.drained_at_s))
                .bad_if(self.drained_at_s.is_none() && !self.stopped_early),
        ]
    }

    /// The headline's sentences: latency, cost, scaling actions (`actions`: decisions by kind).
    pub fn summary(&self, actions: &[(String, usize)]) -> Vec<(String, String)> {
        let acts = if actions.is_empty() {
            "no decision".to_string()
        } else {
            actions
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        vec![
            ("Ran".into(), self.ran_text()),
            (
                "Latency".into(),
                format!("{} (sent → item written)", self.latency_text()),
            ),
            (
                "Cost".into(),
                format!(
                    "${:.4} over {:.3} node hours",
                    self.cost_usd, self.node_hours
                ),
            ),
            (
                "Scaling".into(),
                format!(
                    "{}; decisions: {acts}; reaction to the first backlog {}",
                    self.scaling_text(),
                    self.reaction_s
                        .map_or("–".to_string(), |v| format!("{v:.1} s"))
                ),
            ),
        ]
    }

    /// Every field of report.json, as text.
    pub fn details(&self) -> Vec<(String, String)> {
        let Ok(serde_json::Value::Object(m)) = serde_json::to_value(self) else {
            return Vec::new();
        };
        m.into_iter()
            .map(|(k, v)| {
                // Floats to a readable precision (report.json keeps them whole).
                let v = match v.as_f64() {
                    Some(x) if v.is_f64() => format!("{}", (x * 1e4).round() / 1e4),
                    _ if v.is_null() => "–".into(),
                    _ => v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                };
                (k, v)
            })
            .collect()
    }

    pub fn print_summary(&self) {
        let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        println!("{:-<78}", "");
        println!("kedge up: {} — {}", self.scenario, self.ran_text());
        println!("messages: {}", self.outcome_line());
        let width = std::io::IsTerminal::is_terminal(&std::io::stdout())
            .then(|| ratatui::crossterm::terminal::size().ok())
            .flatten()
            .map_or(100, |(w, _)| usize::from(w).clamp(40, 120));
        for note in self.notes() {
            println!("{}", wrap(&note, width, "  ", "  "));
        }
        println!("latency (sent → item written): {}", self.latency_text());
        let cost = format!(
            "cost: ${:.4} ({:.3} node hours); scaling: {}",
            self.cost_usd,
            self.node_hours,
            self.scaling_text()
        );
        println!("{}", wrap(&cost, width, "", "  "));
        let problems = self.problems();
        if problems.is_empty() {
            println!("what went wrong: nothing");
        } else {
            println!("what went wrong:");
            for p in problems {
                println!("{}", wrap(&p, width, "  - ", "    "));
            }
        }
        let rows: Vec<(&str, String)> = vec![
            (
                "messages sent / acknowledged",
                format!("{} / {}", self.messages_sent, self.messages_acknowledged),
            ),
            ("items in table", self.items_in_table.to_string()),
            (
                "left in queue / in flight / in DLQ",
                format!(
                    "{} / {} / {}",
                    self.left_in_queue, self.left_in_flight, self.in_dlq
                ),
            ),
            ("reaction (s)", opt(self.reaction_s)),
            (
                "first node launch after scale-out (s)",
                format!(
                    "{} (joint decisions {})",
                    opt(self.launch_after_scale_out_s),
                    if self.joint { "on" } else { "off" }
                ),
            ),
            ("drained at (s)", opt(self.drained_at_s)),
            (
                "max replicas / pending",
                format!("{} / {}", self.max_replicas, self.max_pending_pods),
            ),
            (
                "final replicas / nodes",
                format!(
                    "{} / {} (min {}, baseline {})",
                    self.final_replicas, self.final_nodes, self.min_replicas, self.baseline_nodes
                ),
            ),
            ("busy pods killed", self.busy_pods_killed.to_string()),
            ("processes left behind", self.leftover_processes.to_string()),
        ];
        let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        println!("{:-<78}", "");
        for (k, v) in rows {
            println!("{k:<w$}  {v}");
        }
        println!("{:-<78}", "");
    }
}

/// Fill each sample's throughput and latency from the table: the items written since the
/// previous sample (samples are about a second apart, never exactly).
fn fill_from_items(samples: &mut [Sample], items: &[Item], start_ms: u64) {
    let mut written: Vec<(u64, u64)> = items
        .iter()
        .filter_map(|it| {
            let w = it.written_at_ms?.saturating_sub(start_ms);
            Some((w, it.written_at_ms?.saturating_sub(it.sent_at_ms?)))
        })
        .collect();
    written.sort_unstable();
    let mut prev_ms = 0u64;
    let mut i = 0;
    for s in samples {
        let t_ms = (s.t_s * 1000.0) as u64;
        let mut lat = Vec::new();
        while i < written.len() && written[i].0 <= t_ms {
            lat.push(written[i].1);
            i += 1;
        }
        lat.sort_unstable();
        let span_ms = t_ms.saturating_sub(prev_ms);
        s.throughput = if span_ms == 0 {
            0.0
        } else {
            lat.len() as f64 * 1000.0 / span_ms as f64
        };
        s.latency_p50_ms = pct(&lat, 50.0);
        s.latency_p99_ms = pct(&lat, 99.0);
        prev_ms = t_ms;
    }
}

/// Everything `write` needs besides the report itself.
pub struct Written<'a> {
    /// What ran, for the page's headline (scenario, policy, manifests, timings).
    pub what_ran: Vec<(String, String)>,
    pub samples: &'a [Sample],
    pub decisions: &'a [DecisionRecord],
    pub items: &'a [Item],
    pub start_ms: u64,
}

pub fn write(dir: &Path, r: &Report, w: Written<'_>) -> anyhow::Result<()> {
    let mut samples = w.samples.to_vec();
    fill_from_items(&mut samples, w.items, w.start_ms);
    let decisions: Vec<Decision> = w
        .decisions
        .iter()
        .map(|d| Decision {
            at_ms: d.at_ms.saturating_sub(w.start_ms),
            kind: d.kind.to_string(),
            text: d.text.clone(),
        })
        .collect();
    // Flat fields at the top level (what tools read), the decisions below.
    let mut top = serde_json::to_value(r)?;
    if let Some(o) = top.as_object_mut() {
        o.insert(
            "decisions".into(),
            decisions
                .iter()
                .map(|d| {
                    serde_json::json!({
                        "t_s": d.at_ms as f64 / 1000.0,
                        "kind": d.kind,
                        "text": d.text,
                    })
                })
                .collect(),
        );
    }
    std::fs::write(dir.join("report.json"), serde_json::to_string_pretty(&top)?)
        .context("writing report.json")?;
    let mut csv = String::from(
        "t_s,visible,in_flight,desired,running,pending,nodes_ready,nodes_launching,nodes_draining,cost_per_hour,cost_usd,throughput,latency_p50_ms,latency_p99_ms,nodes_by_type\n",
    );
    for s in &samples {
        let o = |v: Option<u64>| v.map_or(String::new(), |v| v.to_string());
        let _ = writeln!(
            csv,
            "{:.1},{},{},{},{},{},{},{},{},{:.4},{:.6},{:.1},{},{},{}",
            s.t_s,
            s.visible,
            s.in_flight,
            s.desired,
            s.running,
            s.pending,
            s.nodes_ready,
            s.nodes_launching,
            s.nodes_draining,
            s.cost_per_hour,
            s.cost_usd,
            s.throughput,
            o(s.latency_p50_ms),
            o(s.latency_p99_ms),
            s.nodes_by_type
        );
    }
    std::fs::write(dir.join("timeseries.csv"), csv).context("writing timeseries.csv")?;
    let mut actions: Vec<(String, usize)> = Vec::new();
    for d in &decisions {
        match actions.iter_mut().find(|(k, _)| *k == d.kind) {
            Some((_, n)) => *n += 1,
            None => actions.push((d.kind.clone(), 1)),
        }
    }
    let page = Page {
        title: format!("kedge up: {}", r.scenario),
        what_ran: w.what_ran,
        runs: vec![Run {
            name: r.scenario.clone(),
            outcome: format!("Messages: {}", r.outcome_line()),
            summary: r.summary(&actions),
            figures: r.figures(),
            problems: r.problems(),
            notes: r.notes(),
            charts: charts(&samples),
            decisions,
            details: r.details(),
        }],
    };
    std::fs::write(dir.join("report.html"), report_html::render(&page))
        .context("writing report.html")?;
    Ok(())
}

/// The run's time series, as the report page draws them.
pub fn charts(s: &[Sample]) -> Vec<Chart> {
    let series = |name: &str, g: &dyn Fn(&Sample) -> f64| Series {
        name: name.into(),
        points: s.iter().map(|x| (x.t_s, g(x))).collect(),
        colour: None,
    };
    // Red for what waits (pending pods, draining nodes, p99), the same across charts.
    let coloured = |mut s: Series, c: &str| {
        s.colour = Some(c.into());
        s
    };
    let (blue, orange, green, red) = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728");
    let chart = |title: &str, unit: &str, series: Vec<Series>| Chart {
        title: title.into(),
        unit: unit.into(),
        series,
    };
    let mut types: Vec<&String> = s.iter().flat_map(|x| x.type_counts.keys()).collect();
    types.sort();
    types.dedup();
    let no = f64::NAN;
    vec![
        chart(
            "Queue depth",
            "messages",
            vec![
                coloured(series("visible", &|s| s.visible as f64), blue),
                coloured(series("in flight", &|s| s.in_flight as f64), orange),
            ],
        ),
        chart(
            "Replicas",
            "pods",
            vec![
                coloured(series("desired", &|s| f64::from(s.desired)), green),
                coloured(series("running", &|s| f64::from(s.running)), blue),
                coloured(series("pending", &|s| f64::from(s.pending)), red),
            ],
        ),
        chart(
            "Nodes by state",
            "nodes",
            vec![
                coloured(series("ready", &|s| f64::from(s.nodes_ready)), blue),
                coloured(
                    series("launching", &|s| f64::from(s.nodes_launching)),
                    orange,
                ),
                coloured(series("draining", &|s| f64::from(s.nodes_draining)), red),
            ],
        ),
        chart(
            "Nodes by instance type",
            "nodes, any state",
            types
                .iter()
                .map(|t| {
                    series(t, &|s| {
                        f64::from(s.type_counts.get(*t).copied().unwrap_or(0))
                    })
                })
                .collect(),
        ),
        chart(
            "Cost rate",
            "USD/h",
            vec![series("USD/h", &|s| s.cost_per_hour)],
        ),
        chart("Cost so far", "USD", vec![series("USD", &|s| s.cost_usd)]),
        chart(
            "Throughput",
            "items written per second",
            vec![series("items/s", &|s| s.throughput)],
        ),
        chart(
            "Latency, sent → item written",
            "ms, of the items written in each second",
            vec![
                coloured(
                    series("p50", &|s| s.latency_p50_ms.map_or(no, |v| v as f64)),
                    blue,
                ),
                coloured(
                    series("p99", &|s| s.latency_p99_ms.map_or(no, |v| v as f64)),
                    red,
                ),
            ],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_s: f64) -> Sample {
        Sample::new(t_s, 0, 0, &Snapshot::default())
    }

    fn report(acked: &[&str], in_table: &[&str], left: LeftOver, planned_s: f64) -> Report {
        let acked: HashMap<String, u32> = acked.iter().map(|a| (a.to_string(), 1)).collect();
        let items: Vec<Item> = in_table
            .iter()
            .map(|id| Item {
                transaction_id: id.to_string(),
                sent_at_ms: Some(1000),
                written_at_ms: Some(1500),
                receive_count: Some(1),
            })
            .collect();
        Report::build(Inputs {
            scenario: "t".into(),
            duration_s: planned_s,
            scenario_s: 240.0,
            planned_s,
            interrupted: false,
            sent: acked.len() as u64,
            send_failures: 0,
            acked: &acked,
            items: &items,
            totals: &Totals::default(),
            reaction_s: None,
            joint: true,
            drained_at_s: None,
            final_replicas: 1,
            final_nodes: 2,
            baseline_nodes: 2,
            min_replicas: 1,
            leftover_processes: 0,
            left,
        })
    }

    #[test]
    fn messages_still_queued_are_unprocessed_and_only_the_rest_is_lost() {
        let queued = LeftOver {
            visible: 1,
            in_flight: 1,
            delayed: 0,
            dlq: 0,
        };
        // Stopped early: two of three missing ids are accounted for by the queue.
        let r = report(&["a", "b", "c", "d"], &["a"], queued, 60.0);
        assert!(r.stopped_early);
        assert_eq!(
            (
                r.processed_messages,
                r.unprocessed_messages,
                r.dead_lettered,
                r.lost_messages
            ),
            (1, 2, 0, 1)
        );
        assert_eq!(r.acknowledged_ids(), 4);
        assert_eq!(
            r.outcome_line(),
            "4 sent, 1 processed, 2 unprocessed, 1 lost, 0 duplicates"
        );
        assert!(
            r.problems().iter().any(|p| p.starts_with("1 message lost")),
            "{:?}",
            r.problems()
        );
        assert!(
            r.notes()
                .iter()
                .any(|n| n.contains("(1 waiting, 1 in flight)")),
            "{:?}",
            r.notes()
        );

        // The DLQ accounts for the last one: dead-lettered (a problem), nothing lost.
        let r = report(
            &["a", "b", "c", "d"],
            &["a"],
            LeftOver { dlq: 1, ..queued },
            60.0,
        );
        assert_eq!((r.dead_lettered, r.lost_messages), (1, 0));
        assert!(r.outcome_line().contains("1 dead-lettered, 0 lost"));

        // More queued than missing (a redelivery of a written item): nothing invented.
        let r = report(&["a", "b"], &["a", "b"], queued, 240.0);
        assert_eq!((r.unprocessed_messages, r.lost_messages), (0, 0));
        assert_eq!(r.queued_beyond_missing, 2);
        assert!(!r.stopped_early);
        assert!(r.problems().iter().any(|p| p.contains("never drained")));
    }

    #[test]
    fn summary_lines_wrap_at_spaces() {
        let w = wrap("one two three four five six", 14, "  - ", "    ");
        assert_eq!(w, "  - one two\n    three four\n    five six");
    }

    #[test]
    fn throughput_counts_each_item_once_per_sample_interval() {
        let start = 1_000_000;
        let item = |sent: u64, written: u64| Item {
            transaction_id: format!("t{written}"),
            sent_at_ms: Some(start + sent),
            written_at_ms: Some(start + written),
            receive_count: Some(1),
        };
        // Samples drift (0, 1.0, 2.5 s); items at 0.5 s, 1.2 s, 2.0 s, 2.4 s and one after.
        let items = vec![
            item(0, 500),
            item(1000, 1200),
            item(1000, 2000),
            item(400, 2400),
            item(2500, 9000),
        ];
        let mut s = vec![sample(0.0), sample(1.0), sample(2.5)];
        fill_from_items(&mut s, &items, start);
        assert_eq!(s[0].throughput, 0.0);
        assert_eq!(s[1].throughput, 1.0);
        assert_eq!(s[1].latency_p50_ms, Some(500));
        assert_eq!(s[2].throughput, 2.0, "3 items over 1.5 s");
        assert_eq!(s[2].latency_p50_ms, Some(1000));
        assert_eq!(s[2].latency_p99_ms, Some(2000));
    }
}
