//! The end-of-run report: reconciliation against the table, `report.json`, `timeseries.csv`,
//! a self-contained `report.html` (inline SVG charts) and the summary table.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use cluster::local::{DecisionRecord, Snapshot, Totals};
use serde::Serialize;

use super::Item;

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
    pub left_in_queue: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub duration_s: f64,
    pub interrupted: bool,
    /// Messages the producers were acknowledged (ack logs).
    pub messages_sent: u64,
    pub messages_acknowledged: u64,
    pub send_failures: u64,
    pub items_in_table: u64,
    /// Items whose transaction id appears more than once in the table, plus acknowledged
    /// ids acknowledged twice (a producer resend that became two messages).
    pub duplicate_items: u64,
    /// Acknowledged transaction ids with no item in the table (strict: a message still in
    /// the queue at the end of an interrupted run counts too; see `left_in_queue`).
    pub lost_messages: u64,
    /// Messages still in the queue (visible + in flight) after the consumers stopped.
    pub left_in_queue: u64,
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
}

fn pct(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted.get(i.min(sorted.len() - 1)).copied()
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
        let lost = i
            .acked
            .keys()
            .filter(|k| !seen.contains_key(k.as_str()))
            .count() as u64;
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
            interrupted: i.interrupted,
            messages_sent: i.sent,
            messages_acknowledged: i.acked.values().map(|c| u64::from(*c)).sum(),
            send_failures: i.send_failures,
            items_in_table: i.items.len() as u64,
            duplicate_items: table_dups + ack_dups,
            lost_messages: lost,
            left_in_queue: i.left_in_queue,
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
        }
    }

    pub fn print_summary(&self) {
        let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        let optu = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        let rows: Vec<(&str, String)> = vec![
            (
                "messages sent / acknowledged",
                format!("{} / {}", self.messages_sent, self.messages_acknowledged),
            ),
            ("items in table", self.items_in_table.to_string()),
            (
                "lost / duplicate items",
                format!(
                    "{} / {} ({} left in queue)",
                    self.lost_messages, self.duplicate_items, self.left_in_queue
                ),
            ),
            (
                "latency p50 / p99 (ms)",
                format!(
                    "{} / {}",
                    optu(self.latency_p50_ms),
                    optu(self.latency_p99_ms)
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
            ("max nodes", self.max_nodes.to_string()),
            (
                "nodes launched / removed",
                format!("{} / {}", self.nodes_launched, self.nodes_removed),
            ),
            (
                "node hours / cost (USD)",
                format!("{:.3} / {:.4}", self.node_hours, self.cost_usd),
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
        println!("{:-<1$}", "", w + 30);
        for (k, v) in rows {
            println!("{k:<w$}  {v}");
        }
        println!("{:-<1$}", "", w + 30);
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

pub fn write(
    dir: &Path,
    r: &Report,
    samples: &[Sample],
    decisions: &[DecisionRecord],
    items: &[Item],
    start_ms: u64,
) -> anyhow::Result<()> {
    let mut samples = samples.to_vec();
    fill_from_items(&mut samples, items, start_ms);
    let json = serde_json::json!({
        "report": r,
        "decisions": decisions.iter().map(|d| serde_json::json!({
            "t_s": (d.at_ms.saturating_sub(start_ms)) as f64 / 1000.0,
            "kind": d.kind,
            "text": d.text,
        })).collect::<Vec<_>>(),
    });
    // Flat fields at the top level (what tools read), details below.
    let mut top = serde_json::to_value(r)?;
    if let (Some(o), Some(d)) = (top.as_object_mut(), json.get("decisions")) {
        o.insert("decisions".into(), d.clone());
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
    std::fs::write(
        dir.join("report.html"),
        html(r, &samples, decisions, start_ms),
    )
    .context("writing report.html")?;
    Ok(())
}

/// (name, colour, values; `None` where there is nothing to plot, which breaks the line).
type Series<'a> = (&'a str, &'a str, Vec<Option<f64>>);

/// A value for an axis label, with as many decimals as the grid step needs.
fn tick_label(v: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

/// A round step giving about `n` intervals over `span`.
fn nice_step(span: f64, n: f64) -> f64 {
    let raw = (span / n).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn chart(title: &str, xs: &[f64], series: &[Series<'_>]) -> String {
    let (w, h, left, top, bottom) = (860.0, 200.0, 56.0, 8.0, 44.0);
    let right = 12.0;
    let xmax = xs.last().copied().unwrap_or(1.0).max(1.0);
    let data_max = series
        .iter()
        .flat_map(|s| s.2.iter().flatten().copied())
        .fold(0.0f64, f64::max);
    // Small series (a few cents of cost) keep their own scale; the top is a round number.
    let ystep = nice_step(if data_max > 0.0 { data_max } else { 1.0 }, 4.0);
    let ymax = (data_max / ystep).ceil().max(1.0) * ystep;
    let px = |x: f64| left + x / xmax * (w - left - right);
    let py = |y: f64| top + (1.0 - y / ymax) * (h - top);
    let mut out = format!(
        r##"<h3>{title}</h3><svg width="{w}" height="{}" xmlns="http://www.w3.org/2000/svg" style="background:#fafafa;border:1px solid #ddd">"##,
        h + bottom
    );
    // Horizontal grid with value labels.
    let mut v = 0.0;
    while v <= ymax + ystep / 2.0 {
        let y = py(v);
        let _ = write!(
            out,
            r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            w - right,
            left - 4.0,
            y + 4.0,
            tick_label(v, ystep)
        );
        v += ystep;
    }
    // Time axis.
    let xstep = nice_step(xmax, 8.0).max(1.0);
    let mut t = 0.0;
    while t <= xmax + 0.01 {
        let x = px(t);
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{h}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle">{t:.0}s</text>"##,
            h + 14.0
        );
        t += xstep;
    }
    for (i, (name, color, ys)) in series.iter().enumerate() {
        // One polyline per run of points that have values.
        let mut runs: Vec<Vec<String>> = vec![Vec::new()];
        for (x, y) in xs.iter().zip(ys) {
            match y {
                Some(y) => {
                    runs.last_mut()
                        .expect("one run")
                        .push(format!("{:.1},{:.1}", px(*x), py(*y)))
                }
                None => {
                    if runs.last().is_some_and(|r| !r.is_empty()) {
                        runs.push(Vec::new());
                    }
                }
            }
        }
        for r in runs.iter().filter(|r| !r.is_empty()) {
            if r.len() == 1 {
                let (cx, cy) = r[0].split_once(',').unwrap_or(("0", "0"));
                let _ = write!(
                    out,
                    r##"<circle cx="{cx}" cy="{cy}" r="1.5" fill="{color}"/>"##
                );
            } else {
                let _ = write!(
                    out,
                    r##"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"##,
                    r.join(" ")
                );
            }
        }
        let _ = write!(
            out,
            r##"<text x="{}" y="{}" font-size="12" fill="{color}">{name}</text>"##,
            left + 10.0 + 150.0 * i as f64,
            h + 34.0
        );
    }
    out.push_str("</svg>");
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn html(r: &Report, s: &[Sample], decisions: &[DecisionRecord], start_ms: u64) -> String {
    let xs: Vec<f64> = s.iter().map(|s| s.t_s).collect();
    let f = |g: &dyn Fn(&Sample) -> f64| s.iter().map(|x| Some(g(x))).collect::<Vec<_>>();
    let o = |g: &dyn Fn(&Sample) -> Option<f64>| s.iter().map(g).collect::<Vec<_>>();
    let mut out = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>kedge up report</title></head><body style=\"font-family:sans-serif;max-width:900px;margin:auto\"><h1>kedge up report</h1>",
    );
    out.push_str("<table border=\"1\" cellpadding=\"3\" style=\"border-collapse:collapse\">");
    if let Ok(serde_json::Value::Object(m)) = serde_json::to_value(r) {
        for (k, v) in m {
            // Floats to a readable precision (report.json keeps them whole).
            let v = match v.as_f64() {
                Some(x) if v.is_f64() => format!("{}", (x * 1e4).round() / 1e4),
                _ => v.to_string(),
            };
            let _ = write!(out, "<tr><td>{k}</td><td>{}</td></tr>", esc(&v));
        }
    }
    out.push_str("</table>");
    out.push_str(&chart(
        "Queue depth (messages)",
        &xs,
        &[
            ("visible", "#1f77b4", f(&|s| s.visible as f64)),
            ("in flight", "#ff7f0e", f(&|s| s.in_flight as f64)),
        ],
    ));
    out.push_str(&chart(
        "Replicas",
        &xs,
        &[
            ("desired", "#2ca02c", f(&|s| s.desired as f64)),
            ("running", "#1f77b4", f(&|s| s.running as f64)),
            ("pending", "#d62728", f(&|s| s.pending as f64)),
        ],
    ));
    out.push_str(&chart(
        "Nodes by state",
        &xs,
        &[
            ("ready", "#1f77b4", f(&|s| s.nodes_ready as f64)),
            ("launching", "#ff7f0e", f(&|s| s.nodes_launching as f64)),
            ("draining", "#d62728", f(&|s| s.nodes_draining as f64)),
        ],
    ));
    let mut types: Vec<&String> = s.iter().flat_map(|x| x.type_counts.keys()).collect();
    types.sort();
    types.dedup();
    let palette = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
    ];
    let by_type: Vec<Series<'_>> = types
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                t.as_str(),
                palette[i % palette.len()],
                f(&|s| s.type_counts.get(*t).copied().unwrap_or(0) as f64),
            )
        })
        .collect();
    out.push_str(&chart("Nodes by instance type (any state)", &xs, &by_type));
    out.push_str(&chart(
        "Cost rate (USD/h)",
        &xs,
        &[("USD/h", "#9467bd", f(&|s| s.cost_per_hour))],
    ));
    out.push_str(&chart(
        "Cost total (USD)",
        &xs,
        &[("USD", "#8c564b", f(&|s| s.cost_usd))],
    ));
    out.push_str(&chart(
        "Throughput (items written per second)",
        &xs,
        &[("items/s", "#17becf", f(&|s| s.throughput))],
    ));
    out.push_str(&chart(
        "Latency sent → item written, of the items written in each second (ms)",
        &xs,
        &[
            ("p50", "#1f77b4", o(&|s| s.latency_p50_ms.map(|v| v as f64))),
            ("p99", "#d62728", o(&|s| s.latency_p99_ms.map(|v| v as f64))),
        ],
    ));
    out.push_str("<h3>Decisions</h3><pre style=\"font-size:11px;white-space:pre-wrap\">");
    for d in decisions {
        let _ = writeln!(
            out,
            "{:>7.1}s {:<9} {}",
            d.at_ms.saturating_sub(start_ms) as f64 / 1000.0,
            d.kind,
            esc(&d.text)
        );
    }
    out.push_str("</pre></body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_s: f64) -> Sample {
        Sample::new(t_s, 0, 0, &Snapshot::default())
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

    #[test]
    fn axis_labels_have_the_decimals_the_step_needs() {
        assert_eq!(tick_label(4.0, 1.0), "4");
        assert_eq!(tick_label(150.0, 50.0), "150");
        assert_eq!(tick_label(0.4, 0.2), "0.4");
        assert_eq!(tick_label(0.03, 0.01), "0.03");
        assert_eq!(nice_step(6.0, 4.0), 2.0);
        assert_eq!(nice_step(0.0203, 4.0), 0.01);
    }
}
