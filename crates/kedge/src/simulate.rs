//! `kedge simulate`: a scenario through the engine in virtual time (`cluster::sim`), for one
//! policy, several (`--compare`), or several values of one setting (`--sweep`); figures on the
//! terminal, `report.json` / `timeseries.csv` per run, `compare.json` and `report.html` for
//! the whole.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use cluster::scenario::{Builtin, Source, Trace};
use cluster::sim::report::{RunReport, RunSummary, Sample};
use cluster::sim::{SimConfig, run};
use engine::{Policy, PolicyName};

/// The built-in scenario: the seed at its real scale over a day.
pub const BUILTIN: Builtin = Builtin {
    name: "seed-day",
    scenario: include_str!("../../../examples/simulate/seed-day.yaml"),
    manifests: include_str!("../../../examples/simulate/seed-day-manifests.yaml"),
    trace: Some(include_str!("../../../examples/simulate/seed-day.csv")),
};

#[derive(Args, Debug, Clone)]
pub struct SimulateArgs {
    /// Scenario file (the `kedge up` format; see examples/up/README.md). Default: the built-in
    /// seed-day scenario (examples/simulate/seed-day.yaml).
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Arrivals from this CSV (`t_s,messages`) instead of the scenario's phases or trace.
    #[arg(long, value_name = "CSV")]
    pub trace: Option<PathBuf>,
    /// Stop the arrivals after this long (e.g. 6h, 90m); the backlog is still worked off.
    #[arg(long, value_parser = cluster::scenario::parse_duration)]
    pub duration: Option<Duration>,
    /// Seed of every random draw (work times, message groups): same seed, same run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// keda-karpenter (upstream's defaults), kedge (kedge's defaults) or oracle (a lower
    /// bound that knows the future arrivals).
    #[arg(long, default_value = "kedge", conflicts_with = "compare")]
    pub policy: PolicyName,
    /// Run each of these policies (comma-separated) on the same scenario and seed.
    #[arg(long, value_delimiter = ',', value_name = "A,B,…")]
    pub compare: Vec<PolicyName>,
    /// Override one field of a manifest or of the scenario, e.g.
    /// scaledobject.spec.triggers[0].metadata.queueLength=5 or consumer.work=2s (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// Run once per value of one field, e.g.
    /// scaledobject.spec.triggers[0].metadata.queueLength=1,2,5,10.
    #[arg(long, value_name = "PATH=V1,V2,…")]
    pub sweep: Option<String>,
    /// Where report.json, timeseries.csv, compare.json and report.html go. Default:
    /// ./kedge-report/simulate-<timestamp>/.
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
    /// Print the runs as JSON on stdout (compare.json's form: `{"runs": [...]}`; a single run
    /// also has its fields at the top level).
    #[arg(long)]
    pub json: bool,
}

fn split_set(s: &str) -> anyhow::Result<(&str, &str)> {
    s.split_once('=')
        .with_context(|| format!("--set {s:?}: expected PATH=VALUE"))
}

/// One run to make: its policy and the edits on top of the scenario.
struct Plan {
    policy: PolicyName,
    sweep: Option<(String, String)>,
}

pub fn run_cli(a: SimulateArgs) -> anyhow::Result<()> {
    let mut source = Source::read(a.scenario.as_deref(), BUILTIN)?;
    let mut settings = Vec::new();
    for s in &a.set {
        let (p, v) = split_set(s)?;
        source.set(p, v)?;
        settings.push(format!("{p}={v}"));
    }
    let policies = if a.compare.is_empty() {
        vec![a.policy]
    } else {
        a.compare.clone()
    };
    let sweep: Vec<(String, String)> = match &a.sweep {
        None => Vec::new(),
        Some(s) => {
            let (p, vs) = s
                .split_once('=')
                .with_context(|| format!("--sweep {s:?}: expected PATH=V1,V2,…"))?;
            let vals: Vec<(String, String)> = vs
                .split(',')
                .filter(|v| !v.is_empty())
                .map(|v| (p.to_string(), v.to_string()))
                .collect();
            anyhow::ensure!(!vals.is_empty(), "--sweep {s:?}: no values");
            vals
        }
    };
    let mut plans = Vec::new();
    for &policy in &policies {
        if sweep.is_empty() {
            plans.push(Plan {
                policy,
                sweep: None,
            });
        }
        for sv in &sweep {
            plans.push(Plan {
                policy,
                sweep: Some(sv.clone()),
            });
        }
    }
    let trace = match &a.trace {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading the trace {}", p.display()))?;
            Some(Trace::parse_csv(&p.display().to_string(), &text)?)
        }
        None => None,
    };
    let dir = match &a.report_dir {
        Some(d) => d.clone(),
        None => {
            let t = clock::Clock::now(&clock::SystemClock).as_secs();
            PathBuf::from("kedge-report").join(format!("simulate-{t}"))
        }
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let many = plans.len() > 1;
    let mut reports = Vec::new();
    for (n, plan) in plans.iter().enumerate() {
        let mut src = source.clone();
        let mut run_settings = settings.clone();
        if let Some((p, v)) = &plan.sweep {
            src.set(p, v)?;
            run_settings.push(format!("{p}={v}"));
        }
        let mut loaded = src.load()?;
        if let Some(t) = &trace {
            loaded.arrivals = t.clone();
            loaded.scenario.duration = loaded
                .scenario
                .duration
                .or(Some(Duration::from_secs(t.seconds() as u64)));
        }
        let mut cfg =
            SimConfig::from_loaded(&loaded, Policy::preset(plan.policy), a.seed, a.duration)?;
        cfg.settings = run_settings.clone();
        let label = run_label(plan.policy, &run_settings[settings.len()..]);
        let mut bar = Progress::new(&format!("[{}/{}] {label}", n + 1, plans.len()));
        let r = run(&cfg, &mut |f| bar.set(f))?;
        bar.done();
        let sub = if many {
            dir.join(safe(&label))
        } else {
            dir.clone()
        };
        write_run(&sub, &r)?;
        reports.push((label, r));
    }
    let summaries: Vec<&RunSummary> = reports.iter().map(|(_, r)| &r.summary).collect();
    let compare = serde_json::json!({ "runs": summaries });
    if many {
        std::fs::write(
            dir.join("compare.json"),
            serde_json::to_string_pretty(&compare)?,
        )?;
    }
    std::fs::write(dir.join("report.html"), html(&reports, &source.name))?;
    if a.json {
        let out = if many {
            compare
        } else {
            let mut v = serde_json::to_value(summaries[0])?;
            if let Some(o) = v.as_object_mut() {
                o.insert("runs".into(), serde_json::json!([summaries[0]]));
            }
            v
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_table(&reports);
        println!("report: {}", dir.join("report.html").display());
    }
    Ok(())
}

fn run_label(policy: PolicyName, sweep: &[String]) -> String {
    if sweep.is_empty() {
        policy.to_string()
    } else {
        format!("{policy} {}", sweep.join(" "))
    }
}

fn safe(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn write_run(dir: &Path, r: &RunReport) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&r.summary)?,
    )?;
    let mut csv = String::from(Sample::CSV_HEADER);
    csv.push('\n');
    for s in &r.samples {
        csv.push_str(&s.csv_row());
        csv.push('\n');
    }
    std::fs::write(dir.join("timeseries.csv"), csv)?;
    let mut log = String::new();
    for d in &r.decisions {
        log.push_str(&format!("{:>10.3} {}\n", d.at_ms as f64 / 1000.0, d.text));
    }
    std::fs::write(dir.join("decisions.log"), log)?;
    Ok(())
}

fn print_table(reports: &[(String, RunReport)]) {
    println!(
        "{:<28} {:>10} {:>9} {:>9} {:>9} {:>10} {:>11} {:>7} {:>6} {:>6} {:>7} {:>7}",
        "run",
        "messages",
        "p50 ms",
        "p99 ms",
        "max ms",
        "cost $",
        "nodepool $",
        "max rep",
        "nodes",
        "busy✗",
        "redeliv",
        "wall s"
    );
    for (label, r) in reports {
        let s = &r.summary;
        println!(
            "{:<28} {:>10} {:>9} {:>9} {:>9} {:>10.2} {:>11.2} {:>7} {:>6} {:>6} {:>7} {:>7.2}",
            label,
            s.messages,
            s.latency_p50_ms,
            s.latency_p99_ms,
            s.latency_max_ms,
            s.cost_usd,
            s.nodepool_cost_usd,
            s.max_replicas,
            s.nodes_launched,
            s.busy_pods_killed,
            s.redelivered,
            s.wall_s
        );
        if s.lost_messages > 0 || s.unprocessed > 0 || s.dead_lettered > 0 {
            println!(
                "{:<28} lost {}, unprocessed {}, dead-lettered {}",
                "", s.lost_messages, s.unprocessed, s.dead_lettered
            );
        }
    }
}

/// A progress bar on stderr when it is a terminal; nothing on a pipe.
struct Progress {
    label: String,
    tty: bool,
    last: i32,
}

impl Progress {
    fn new(label: &str) -> Progress {
        Progress {
            label: label.to_string(),
            tty: std::io::stderr().is_terminal(),
            last: -1,
        }
    }
    fn set(&mut self, f: f64) {
        if !self.tty {
            return;
        }
        let pct = (f * 100.0).floor() as i32;
        if pct == self.last {
            return;
        }
        self.last = pct;
        let width = 30usize;
        let filled = (f * width as f64).round() as usize;
        let mut e = std::io::stderr();
        let _ = write!(
            e,
            "\r{} [{}{}] {pct:>3}%",
            self.label,
            "#".repeat(filled.min(width)),
            " ".repeat(width - filled.min(width))
        );
        let _ = e.flush();
    }
    fn done(&mut self) {
        if self.tty {
            let mut e = std::io::stderr();
            let _ = write!(e, "\r{}\r", " ".repeat(self.label.len() + 40));
            let _ = e.flush();
        }
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const COLORS: [&str; 6] = [
    "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];

/// One SVG line chart with a line per run.
fn chart(title: &str, reports: &[(String, RunReport)], f: &dyn Fn(&Sample) -> f64) -> String {
    let (w, h, pad) = (900.0, 220.0, 40.0);
    let tmax = reports
        .iter()
        .flat_map(|(_, r)| r.samples.last().map(|s| s.t_s))
        .fold(1.0f64, f64::max);
    let vmax = reports
        .iter()
        .flat_map(|(_, r)| r.samples.iter().map(f))
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let mut out = format!(
        "<figure><figcaption>{}</figcaption><svg viewBox=\"0 0 {w} {h}\" width=\"100%\" role=\"img\"><rect x=\"{pad}\" y=\"10\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#ccc\"/><text x=\"2\" y=\"18\" font-size=\"11\">{}</text><text x=\"2\" y=\"{}\" font-size=\"11\">0</text><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{:.1} h</text>",
        esc(title),
        w - pad - 10.0,
        h - pad - 10.0,
        fmt_num(vmax),
        h - pad,
        w - 10.0,
        h - pad + 16.0,
        tmax / 3600.0
    );
    for (k, (_, r)) in reports.iter().enumerate() {
        let mut pts = String::new();
        for s in &r.samples {
            let x = pad + s.t_s / tmax * (w - pad - 10.0);
            let y = 10.0 + (1.0 - f(s) / vmax) * (h - pad - 10.0);
            pts.push_str(&format!("{x:.1},{y:.1} "));
        }
        out.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.2\" points=\"{pts}\"/>",
            COLORS[k % COLORS.len()]
        ));
    }
    out.push_str("</svg></figure>");
    out
}

fn fmt_num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn html(reports: &[(String, RunReport)], scenario: &str) -> String {
    let mut h = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>kedge simulate</title><style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child{text-align:left}figure{margin:1.5em 0}figcaption{font-weight:600}.bad{color:#b00}pre{max-height:30em;overflow:auto;background:#f7f7f7;padding:1em}</style></head><body>",
    );
    h.push_str(&format!("<h1>kedge simulate — {}</h1>", esc(scenario)));
    h.push_str("<table><tr><th>run</th><th>messages</th><th>p50</th><th>p99</th><th>max</th><th>cost</th><th>NodePool cost</th><th>max replicas</th><th>nodes launched</th><th>what went wrong</th></tr>");
    for (k, (label, r)) in reports.iter().enumerate() {
        let s = &r.summary;
        let mut wrong = Vec::new();
        if s.lost_messages > 0 {
            wrong.push(format!("{} lost", s.lost_messages));
        }
        if s.unprocessed > 0 {
            wrong.push(format!("{} unprocessed", s.unprocessed));
        }
        if s.busy_pods_killed > 0 {
            wrong.push(format!("{} busy consumers stopped", s.busy_pods_killed));
        }
        if s.redelivered > 0 {
            wrong.push(format!("{} redelivered", s.redelivered));
        }
        if s.dead_lettered > 0 {
            wrong.push(format!("{} dead-lettered", s.dead_lettered));
        }
        h.push_str(&format!(
            "<tr><td><span style=\"color:{}\">■</span> {}</td><td>{}</td><td>{:.1} s</td><td>{:.1} s</td><td>{:.1} s</td><td>${:.2}</td><td>${:.2}</td><td>{}</td><td>{}</td><td class=\"bad\">{}</td></tr>",
            COLORS[k % COLORS.len()],
            esc(label),
            s.messages,
            s.latency_p50_ms as f64 / 1000.0,
            s.latency_p99_ms as f64 / 1000.0,
            s.latency_max_ms as f64 / 1000.0,
            s.cost_usd,
            s.nodepool_cost_usd,
            s.max_replicas,
            s.nodes_launched,
            if wrong.is_empty() { "nothing".to_string() } else { esc(&wrong.join(", ")) }
        ));
    }
    h.push_str("</table>");
    h.push_str(&chart("queue depth (visible + in flight)", reports, &|s| {
        (s.visible + s.in_flight) as f64
    }));
    h.push_str(&chart("replicas (desired)", reports, &|s| {
        f64::from(s.desired)
    }));
    h.push_str(&chart("pods pending", reports, &|s| f64::from(s.pending)));
    h.push_str(&chart("nodes (ready + launching)", reports, &|s| {
        f64::from(s.nodes_ready + s.nodes_launching)
    }));
    h.push_str(&chart("cost rate ($/h)", reports, &|s| s.cost_per_hour));
    h.push_str(&chart("latency p99 per sample (ms)", reports, &|s| {
        s.latency_p99_ms as f64
    }));
    for (label, r) in reports {
        h.push_str(&format!("<h2>decisions — {}</h2><pre>", esc(label)));
        for d in r.decisions.iter().take(2000) {
            h.push_str(&esc(&format!(
                "{:>10.3} {}\n",
                d.at_ms as f64 / 1000.0,
                d.text
            )));
        }
        if r.decisions.len() > 2000 {
            h.push_str(&format!(
                "… {} more in decisions.log\n",
                r.decisions.len() - 2000
            ));
        }
        h.push_str("</pre>");
    }
    h.push_str("</body></html>");
    h
}
