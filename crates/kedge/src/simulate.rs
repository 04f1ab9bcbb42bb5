//! `kedge simulate`: a scenario through the engine in virtual time (`cluster::sim`), for one
//! policy, several (`--compare`), or several values of one setting (`--sweep`); figures on the
//! terminal, `report.json` / `timeseries.csv` per run, `compare.json` and `report.html` for
//! the whole.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use cluster::scenario::{Builtin, Source, Trace};
use cluster::sim::report::{RunReport, RunSummary, Sample};
use cluster::sim::{SimConfig, run};
use engine::{Policy, PolicyName};

use crate::progress::Progress;
use crate::report_html::{self as page, Chart, Figure, Page, Run, Series};

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
        // Progress in thousandths of the arrival window.
        let bar = Progress::new(format!("[{}/{}] {label}", n + 1, plans.len()), 1000);
        let r = run(&cfg, &mut |f| bar.set((f * 1000.0) as u64))?;
        bar.finish();
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
    let what_ran = what_ran(&a, &source.name, &settings, &reports);
    std::fs::write(dir.join("report.html"), html(&reports, what_ran))?;
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

fn what_ran(
    a: &SimulateArgs,
    scenario: &str,
    settings: &[String],
    reports: &[(String, RunReport)],
) -> Vec<(String, String)> {
    let mut v = vec![("scenario".to_string(), scenario.to_string())];
    if let Some(t) = &a.trace {
        v.push(("trace".into(), t.display().to_string()));
    }
    v.push((
        "policies".into(),
        reports
            .iter()
            .map(|(_, r)| r.summary.policy.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
            .join(", "),
    ));
    if let Some(s) = &a.sweep {
        v.push(("sweep".into(), s.clone()));
    }
    if !settings.is_empty() {
        v.push(("settings".into(), settings.join(" ")));
    }
    v.push(("seed".into(), a.seed.to_string()));
    if let Some((_, r)) = reports.first() {
        v.push((
            "simulated".into(),
            format!(
                "{:.1} h of virtual time, {} messages",
                r.summary.simulated_s / 3600.0,
                r.summary.messages
            ),
        ));
    }
    v
}

fn secs(ms: u64) -> String {
    if ms >= 10_000 {
        format!("{:.0} s", ms as f64 / 1000.0)
    } else {
        format!("{:.2} s", ms as f64 / 1000.0)
    }
}

/// One run as the shared report page shows it.
fn page_run(label: &str, r: &RunReport) -> Run {
    let s = &r.summary;
    let mut problems = Vec::new();
    if s.lost_messages > 0 {
        problems.push(format!(
            "{} acknowledged message(s) are neither processed, queued nor dead-lettered.",
            s.lost_messages
        ));
    }
    if s.unprocessed > 0 {
        problems.push(format!(
            "{} message(s) were still queued when the run stopped (the backlog outlived the drain limit).",
            s.unprocessed
        ));
    }
    if s.busy_pods_killed > 0 {
        problems.push(format!(
            "{} consumer(s) were stopped while working on a message{}.",
            s.busy_pods_killed,
            if s.interrupted_messages > 0 {
                format!(
                    "; {} message(s) did not finish within the grace period and went back to the queue",
                    s.interrupted_messages
                )
            } else {
                String::new()
            }
        ));
    }
    if s.redelivered > 0 {
        problems.push(format!(
            "{} message(s) were delivered again.",
            s.redelivered
        ));
    }
    if s.dead_lettered > 0 {
        problems.push(format!("{} message(s) went to the DLQ.", s.dead_lettered));
    }
    let series = |name: &str, f: &dyn Fn(&Sample) -> f64| Series {
        name: name.to_string(),
        points: r.samples.iter().map(|x| (x.t_s, f(x))).collect(),
        colour: None,
    };
    let charts = vec![
        Chart {
            title: "queue".into(),
            unit: "messages".into(),
            series: vec![
                series("visible", &|x| x.visible as f64),
                series("in flight", &|x| x.in_flight as f64),
            ],
        },
        Chart {
            title: "replicas".into(),
            unit: "pods".into(),
            series: vec![
                series("desired", &|x| f64::from(x.desired)),
                series("running", &|x| f64::from(x.running)),
                series("pending", &|x| f64::from(x.pending)),
            ],
        },
        Chart {
            title: "nodes".into(),
            unit: "nodes".into(),
            series: vec![
                series("ready", &|x| f64::from(x.nodes_ready)),
                series("launching", &|x| f64::from(x.nodes_launching)),
            ],
        },
        Chart {
            title: "cost rate".into(),
            unit: "USD/h".into(),
            series: vec![series("all nodes", &|x| x.cost_per_hour)],
        },
        Chart {
            title: "cost so far".into(),
            unit: "USD".into(),
            series: vec![series("all nodes", &|x| x.cost_usd)],
        },
        Chart {
            title: "throughput".into(),
            unit: "messages/s".into(),
            series: vec![series("processed", &|x| x.throughput)],
        },
        Chart {
            title: "latency".into(),
            unit: "ms".into(),
            series: vec![
                series("p50", &|x| x.latency_p50_ms as f64),
                series("p99", &|x| x.latency_p99_ms as f64),
            ],
        },
    ];
    let details = serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .map(|o| {
            o.into_iter()
                .map(|(k, v)| (k, v.to_string().trim_matches('"').to_string()))
                .collect()
        })
        .unwrap_or_default();
    Run {
        name: label.to_string(),
        outcome: format!(
            "{} sent, {} processed, {} unprocessed, {} lost, {} dead-lettered",
            s.messages, s.processed, s.unprocessed, s.lost_messages, s.dead_lettered
        ),
        summary: vec![
            (
                "latency".into(),
                format!(
                    "sent → processed p50 {}, p99 {}, max {}",
                    secs(s.latency_p50_ms),
                    secs(s.latency_p99_ms),
                    secs(s.latency_max_ms)
                ),
            ),
            (
                "cost".into(),
                format!(
                    "${:.2} for all nodes, ${:.2} of it for the nodes the policy launched ({:.1} node-hours)",
                    s.cost_usd, s.nodepool_cost_usd, s.node_hours
                ),
            ),
            (
                "scaling".into(),
                match s.jobs {
                    None => format!(
                        "{} replica changes up to {} replicas; {} nodes launched, {} removed, at most {} at once",
                        s.scale_events,
                        s.max_replicas,
                        s.nodes_launched,
                        s.nodes_removed,
                        s.max_nodes
                    ),
                    Some(j) => format!(
                        "{} Jobs created ({} succeeded, {} failed) in {} polls, up to {} at once; {} nodes launched, {} removed, at most {} at once",
                        j.created,
                        j.succeeded,
                        j.failed,
                        s.scale_events,
                        s.max_replicas,
                        s.nodes_launched,
                        s.nodes_removed,
                        s.max_nodes
                    ),
                },
            ),
        ],
        figures: vec![
            Figure::new("p50", secs(s.latency_p50_ms)),
            Figure::new("p99", secs(s.latency_p99_ms)),
            Figure::new("cost", format!("${:.2}", s.cost_usd)),
            Figure::new("NodePool cost", format!("${:.2}", s.nodepool_cost_usd)),
            Figure::new("max replicas", s.max_replicas.to_string()),
            Figure::new("nodes launched", s.nodes_launched.to_string()),
            Figure::new("busy consumers stopped", s.busy_pods_killed.to_string())
                .bad_if(s.busy_pods_killed > 0),
            Figure::new("redelivered", s.redelivered.to_string()).bad_if(s.redelivered > 0),
            Figure::new("lost", s.lost_messages.to_string()).bad_if(s.lost_messages > 0),
        ],
        problems,
        notes: Vec::new(),
        charts,
        decisions: r
            .decisions
            .iter()
            .map(|d| page::Decision {
                at_ms: d.at_ms,
                kind: d.kind.to_string(),
                text: d.text.clone(),
            })
            .collect(),
        details,
    }
}

fn html(reports: &[(String, RunReport)], what_ran: Vec<(String, String)>) -> String {
    page::render(&Page {
        title: format!(
            "kedge simulate: {}",
            what_ran.first().map(|w| w.1.as_str()).unwrap_or("")
        ),
        what_ran,
        runs: reports.iter().map(|(l, r)| page_run(l, r)).collect(),
    })
}
