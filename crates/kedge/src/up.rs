//! `kedge up`: the whole pipeline on one machine — the embedded SQS + DynamoDB endpoint,
//! producers, consumer processes on virtual nodes (`cluster::local`), the autoscale and
//! provision cores — running a scenario, then a report reconciled against the table.
//!
//! The twin's work is in `cluster::local`; this module sets up the endpoint, the queue and
//! the table, drives the producers' phases, samples the time series, shows the live view
//! (`up/tui.rs`) or status lines (throughput and latency from `up/live.rs`), and writes the
//! report (`up/report.rs`).

mod live;
mod report;
mod tui;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use clap::Args;
use clock::{Clock, SystemClock, Timestamp};
use cluster::local::{ConsumerCommand, LocalCluster, LocalConfig};
use cluster::scenario::{self, Builtin, Source};

pub use report::{Report, Sample};

#[derive(Args, Debug, Clone)]
pub struct UpArgs {
    /// Scenario file (YAML; see examples/up/README.md). Default: the built-in demo.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Stop after this long instead of the scenario's duration (e.g. 90s, 5m).
    #[arg(long, value_parser = workload::parse_duration)]
    pub duration: Option<Duration>,
    /// One status line every few seconds instead of the live view (CI, logs).
    #[arg(long)]
    pub headless: bool,
    /// Where report.json, timeseries.csv, report.html (and the endpoint's data) go.
    /// Default: ./kedge-report/<timestamp>/.
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
    /// Seconds between headless status lines.
    #[arg(long, default_value_t = 5)]
    pub status_every: u64,
    /// The decision policy: kedge (default) or keda-karpenter (upstream's behaviour).
    #[arg(long, default_value = "kedge")]
    pub policy: engine::PolicyName,
}

/// The built-in scenario (`examples/up/demo.yaml`) and its manifests.
pub const BUILTIN: Builtin = Builtin {
    name: "demo",
    scenario: include_str!("../../../examples/up/demo.yaml"),
    manifests: include_str!("../../../examples/up/demo-manifests.yaml"),
    trace: None,
};

const ACCESS_KEY: &str = "test";
const SECRET_KEY: &str = "test";
const REGION: &str = "us-east-1";

struct Endpoint {
    url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_endpoint(data_dir: PathBuf) -> anyhow::Result<Endpoint> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let durability = store::Durability::Disk(data_dir);
    let store = store::Store::open(&durability, clock)
        .with_context(|| format!("opening the store ({durability:?})"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (state, stop_tx) = gateway::AppState::new(
        store,
        gateway::Config {
            credentials: None,
            region: REGION.into(),
            ..Default::default()
        },
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = rx.await;
        };
        if let Err(e) = gateway::serve(listener, state, shutdown, stop_tx).await {
            tracing::error!(error = %e, "embedded endpoint stopped");
        }
    });
    Ok(Endpoint {
        url: format!("http://{addr}"),
        stop: tx,
        task,
    })
}

async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            ACCESS_KEY, SECRET_KEY, None, None, "kedge-up",
        ))
        .load()
        .await
}

/// The FIFO queue with its DLQ, and the table. Returns the queue URL.
async fn create_resources(
    clients: &workload::Clients,
    q: &scenario::Queue,
    visibility: Duration,
) -> anyhow::Result<String> {
    let fifo = q.name.ends_with(".fifo");
    let dlq_name = if fifo {
        format!("{}-dlq.fifo", q.name.trim_end_matches(".fifo"))
    } else {
        format!("{}-dlq", q.name)
    };
    let mut dlq = clients.sqs.create_queue().queue_name(&dlq_name);
    if fifo {
        dlq = dlq.attributes(QueueAttributeName::FifoQueue, "true");
    }
    let dlq_url = dlq.send().await?.queue_url.unwrap_or_default();
    let dlq_arn = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .context("the DLQ has no ARN")?;
    let mut main = clients
        .sqs
        .create_queue()
        .queue_name(&q.name)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility.as_secs().to_string(),
        )
        .attributes(
            QueueAttributeName::RedrivePolicy,
            format!(
                r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{}"}}"#,
                q.max_receive_count
            ),
        );
    if fifo {
        main = main
            .attributes(QueueAttributeName::FifoQueue, "true")
            .attributes(QueueAttributeName::ContentBasedDeduplication, "false");
    }
    let url = main.send().await?.queue_url.unwrap_or_default();
    let exists = clients
        .dynamodb
        .describe_table()
        .table_name(&q.table)
        .send()
        .await
        .is_ok();
    if !exists {
        clients
            .dynamodb
            .create_table()
            .table_name(&q.table)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("transaction_id")
                    .attribute_type(ScalarAttributeType::S)
                    .build()?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("transaction_id")
                    .key_type(KeyType::Hash)
                    .build()?,
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await?;
    }
    Ok(url)
}

fn now() -> Timestamp {
    SystemClock.now()
}

pub async fn run(a: UpArgs) -> anyhow::Result<()> {
    let loaded = Source::read(a.scenario.as_deref(), BUILTIN)?.load()?;
    anyhow::ensure!(
        loaded.scenario.trace.is_none(),
        "{}: kedge up drives producers phase by phase; a trace is for kedge simulate",
        loaded.scenario.name
    );
    let sc = loaded.scenario;
    let m = loaded.manifests;
    let work = match sc.consumer.work {
        scenario::Work::Fixed(d) => format!("{}ms", d.as_millis()),
        other => anyhow::bail!(
            "consumer.work: kedge up's consumers work a fixed time per message; {other:?} is for kedge simulate"
        ),
    };
    let mut policy = engine::Policy::preset(a.policy);
    if let Some(j) = sc.joint {
        policy.joint = j;
    }
    let start = now();
    let report_dir = match &a.report_dir {
        Some(d) => d.clone(),
        None => PathBuf::from("kedge-report").join(format!("{}", start.as_secs())),
    };
    let pod_dir = report_dir.join("pods");
    let ack_dir = report_dir.join("acks");
    for d in [&report_dir, &pod_dir, &ack_dir] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    // Every log line of the run (ours and the consumers') goes here, never over the view.
    let log_file = report_dir.join("kedge.log");
    crate::logging::to_file(&log_file, "kedge | ")
        .with_context(|| format!("opening the log file {}", log_file.display()))?;
    let total = a.duration.unwrap_or_else(|| sc.total(None));
    let consumer_vis = sc.consumer.visibility_timeout;

    let ep = start_endpoint(report_dir.join("data")).await?;
    let conf = sdk_config(&ep.url).await;
    let clients = workload::Clients::from_sdk_config(&conf);
    let queue_url = create_resources(&clients, &sc.queue, consumer_vis).await?;

    // Point the trigger at the embedded endpoint, as a cluster's env/metadata would.
    let mut wl = m.workload.clone();
    let jobs = matches!(wl, scenario::Workload::ScaledJob(_));
    for t in wl.triggers_mut() {
        if t.trigger_type == "aws-sqs-queue" {
            t.metadata.insert("queueURL".into(), queue_url.clone());
            t.metadata.insert("awsEndpoint".into(), ep.url.clone());
            t.metadata.insert("awsRegion".into(), REGION.into());
            t.metadata.remove("queueURLFromEnv");
        }
    }
    let mut auth = match &m.auth {
        Some(ta) => scalers::ResolvedAuth::resolve(&ta.spec, &|_, _| None, &|_, _| None, &|n| {
            std::env::var(n).ok()
        })
        .map_err(|e| anyhow::anyhow!("TriggerAuthentication: {e}"))?,
        None => scalers::ResolvedAuth::default(),
    };
    // The twin's identity: the local endpoint's credentials stand in for IRSA / pod identity.
    auth.params
        .insert("awsAccessKeyID".into(), ACCESS_KEY.into());
    auth.params
        .insert("awsSecretAccessKey".into(), SECRET_KEY.into());

    let exe = std::env::current_exe().context("locating the kedge binary")?;
    let mut consumer = ConsumerCommand {
        program: exe,
        args: vec![
            "consume".into(),
            "--queue-url".into(),
            queue_url.clone(),
            "--table".into(),
            sc.queue.table.clone(),
            "--work-sleep".into(),
            work.clone(),
            "--batch".into(),
            sc.consumer.batch.to_string(),
            "--concurrency".into(),
            sc.consumer.concurrency.to_string(),
            "--visibility-timeout".into(),
            format!("{}ms", sc.consumer.visibility_timeout.as_millis()),
            "--wait-time".into(),
            format!("{}ms", sc.consumer.wait_time.as_millis()),
            "--grace-period".into(),
            format!("{}ms", sc.consumer.grace_period.as_millis()),
        ],
        env: vec![
            ("AWS_ENDPOINT_URL".into(), ep.url.clone()),
            ("AWS_REGION".into(), REGION.into()),
            ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), SECRET_KEY.into()),
            // Their start and stop lines and any warning, in kedge.log beside ours.
            ("KEDGE_LOG".into(), "info".into()),
            (
                crate::logging::LOG_FILE_ENV.into(),
                std::path::absolute(&log_file)
                    .unwrap_or_else(|_| log_file.clone())
                    .display()
                    .to_string(),
            ),
        ],
    };
    if jobs {
        // A Job's consumer: one receive, then exit (0 completes the Job).
        consumer.args.push("--once".into());
    }
    let grace = sc.consumer.grace_period;
    let cfg = LocalConfig {
        workload: wl.clone(),
        auth,
        scalers: None,
        nodepools: m.nodepools.clone(),
        catalog: provision::catalog::Catalog::aws(),
        baseline: vec![sc.baseline.instance_type.clone(); sc.baseline.count as usize],
        pod_cpu: sc
            .pod
            .cpu
            .parse()
            .map_err(|e| anyhow::anyhow!("pod.cpu {:?}: {e}", sc.pod.cpu))?,
        pod_memory: sc
            .pod
            .memory
            .parse()
            .map_err(|e| anyhow::anyhow!("pod.memory {:?}: {e}", sc.pod.memory))?,
        boot_delay: sc.boot_delay,
        pod_start: sc.pod_start,
        policy: policy.clone(),
        consumer,
        pod_dir,
        kill_after: grace + Duration::from_secs(5),
        restart_backoff: sc.consumer.restart_backoff,
    };
    let mut twin = LocalCluster::new(cfg, now())?;
    // The scenario's faults, timed like its chaos (from the start of the run).
    twin.set_faults(sc.faults.clone(), start);
    let target = wl
        .triggers()
        .first()
        .and_then(|t| t.metadata.get("queueLength"))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(5.0);
    let (polling, max_replicas, scale_down_window) = match &wl {
        scenario::Workload::ScaledObject(so) => {
            let c = autoscale::Config::from_scaled_object(so)?;
            (
                c.polling_interval,
                c.max,
                Duration::from_secs(c.behavior.down.window_secs.into()),
            )
        }
        // Jobs are not scaled in: each ends with its work.
        scenario::Workload::ScaledJob(sj) => {
            let c = autoscale::scaledjob::step::Config::from_scaled_job(sj, 1)
                .map_err(|e| anyhow::anyhow!("the ScaledJob is not usable: {e}"))?;
            (
                c.polling_interval,
                c.max_replicas.clamp(0, i64::from(u32::MAX)) as u32,
                Duration::ZERO,
            )
        }
    };
    println!(
        "kedge up: scenario {:?}, {}s; endpoint {}\n  queue {}; table {}",
        sc.name,
        total.as_secs(),
        ep.url,
        queue_url,
        sc.queue.table
    );
    let timings = format!(
        "tick {}ms, polling {}ms, scale-down window {}s, node boot {}s, pod start {}s, consumer work {} (batch {}, x{}), queueLength {target}, maxReplicaCount {}; policy {}",
        sc.tick.as_millis(),
        polling.as_millis(),
        scale_down_window.as_secs(),
        sc.boot_delay.as_secs(),
        sc.pod_start.as_secs(),
        work,
        sc.consumer.batch,
        sc.consumer.concurrency,
        max_replicas,
        policy.describe(),
    );
    println!(
        "  timings: {timings}\n  report -> {}; logs -> {}",
        report_dir.display(),
        log_file.display()
    );
    // The live view needs a terminal; without one (CI, a pipe) status lines are printed.
    let mut live = if !a.headless && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        match tui::Live::start(log_file.display().to_string()) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("no live view ({e}); printing status lines");
                None
            }
        }
    } else {
        None
    };

    // Producers, phase by phase.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let producers = {
        let phases = sc.phases.clone();
        let clients = clients.clone();
        let queue_url = queue_url.clone();
        let ack_dir = ack_dir.clone();
        let groups = sc.queue.groups;
        let stop_rx = stop_rx.clone();
        tokio::spawn(async move {
            let mut sent = 0u64;
            let mut failed = 0u64;
            for (pi, ph) in phases.iter().enumerate() {
                let mut tasks = Vec::new();
                for i in 0..ph.producers {
                    let mut cfg = workload::ProduceConfig::new(queue_url.clone());
                    cfg.schedule = workload::Schedule::constant(ph.rate);
                    cfg.duration = Some(ph.duration);
                    cfg.groups = groups;
                    // Independent producers: each starts its round-robin elsewhere.
                    cfg.group_offset = u64::from(i) * u64::from(groups) / u64::from(ph.producers);
                    cfg.ack_log = Some(ack_dir.join(format!("phase{pi}-producer{i}.txt")));
                    let clients = clients.clone();
                    let mut rx = stop_rx.clone();
                    tasks.push(tokio::spawn(async move {
                        workload::produce(cfg, clients, async move {
                            let _ = rx.wait_for(|s| *s).await;
                        })
                        .await
                    }));
                }
                let mut rx = stop_rx.clone();
                tokio::select! {
                    _ = tokio::time::sleep(ph.duration) => {}
                    _ = rx.wait_for(|s| *s) => {}
                }
                for t in tasks {
                    match t.await {
                        Ok(Ok(r)) => {
                            sent += r.sent;
                            failed += r.failed;
                        }
                        Ok(Err(e)) => tracing::warn!(error = %e, "producer failed"),
                        Err(e) => tracing::warn!(error = %e, "producer task failed"),
                    }
                }
                if *stop_rx.borrow() {
                    break;
                }
            }
            (sent, failed)
        })
    };

    let live_stats = live::spawn(
        clients.clone(),
        sc.queue.table.clone(),
        start.as_millis(),
        stop_rx.clone(),
    );

    let shutdown = crate::shutdown_signal();
    tokio::pin!(shutdown);
    let mut interval = tokio::time::interval(sc.tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut samples: Vec<Sample> = Vec::new();
    let mut last_sample: Option<Timestamp> = None;
    let mut last_status: Option<Timestamp> = None;
    let mut backlog_since: Option<Timestamp> = None;
    let mut chaos = sc.chaos.clone();
    let mut interrupted = false;
    let mut drained_at: Option<f64> = None;
    let mut producers_done_at: Option<f64> = None;
    // Load ends with the last phase that has producers.
    let load_end: Duration = {
        let last = sc
            .phases
            .iter()
            .rposition(|p| p.producers > 0)
            .map_or(0, |i| i + 1);
        sc.phases[..last].iter().map(|p| p.duration).sum()
    };
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = &mut shutdown => { interrupted = true; break; }
        }
        let t = now();
        let el = t.since(start);
        if el >= total {
            break;
        }
        twin.tick(t).await?;
        chaos.retain(|c| {
            if el >= c.at {
                twin.sigkill_busy(c.sigkill_busy, t);
                false
            } else {
                true
            }
        });
        let (visible, inflight) = queue_depth(&clients, &queue_url).await;
        let snap = twin.snapshot();
        let stats = *live_stats.borrow();
        // Backlog above target: the HPA would want more replicas than there are.
        let want = ((visible + inflight) as f64 / target).ceil() as u32;
        if backlog_since.is_none() && want > snap.desired {
            backlog_since = Some(t);
        }
        if el >= load_end && producers_done_at.is_none() {
            producers_done_at = Some(el.as_secs_f64());
        }
        if producers_done_at.is_some() && drained_at.is_none() && visible + inflight == 0 {
            drained_at = Some(el.as_secs_f64());
        }
        if last_sample.is_none_or(|l| t.since(l) >= Duration::from_secs(1)) {
            last_sample = Some(t);
            samples.push(Sample::new(el.as_secs_f64(), visible, inflight, &snap));
        }
        if let Some(l) = live.as_mut() {
            if l.quit_requested() {
                interrupted = true;
                break;
            }
            let decisions = twin
                .recent
                .iter()
                .rev()
                .take(20)
                .map(|d| tui::DecisionLine {
                    t_s: d.at_ms.saturating_sub(start.as_millis()) as f64 / 1000.0,
                    kind: d.kind,
                    text: d.text.clone(),
                })
                .collect();
            let view = tui::View {
                title: &sc.name,
                elapsed_s: el.as_secs_f64(),
                total_s: total.as_secs_f64(),
                visible,
                in_flight: inflight,
                snap: &snap,
                stats,
                samples: &samples,
                decisions,
            };
            if let Err(e) = l.draw(&view) {
                tracing::warn!(error = %e, "live view failed");
            }
        } else if last_status
            .is_none_or(|l| t.since(l) >= Duration::from_secs(a.status_every.max(1)))
        {
            last_status = Some(t);
            let last = twin.recent.back().map(|d| d.text.as_str()).unwrap_or("");
            println!(
                "[{:>5.1}s] queue {visible}/{inflight} (visible/in flight) | replicas {}/{}/{} (desired/running/pending) | nodes {} | ${:.2}/h ${:.4} | {:.1} msg/s, latency p50/p99 {} | {}",
                el.as_secs_f64(),
                snap.desired,
                snap.running,
                snap.pending,
                nodes_by_type(&snap),
                snap.cost_per_hour,
                snap.cost_usd,
                stats.throughput,
                stats.latency_text(),
                truncate(last, 100),
            );
        }
    }
    // Back to the normal screen before anything else is printed.
    drop(live);
    // Stop producers, then consumers (drain: SIGTERM, wait), then read everything back.
    println!(
        "stopping: producers, then consumers (they finish their message; up to {}s), then the report…",
        (grace + Duration::from_secs(5)).as_secs()
    );
    let _ = stop_tx.send(true);
    let (sent, failed) = producers.await.unwrap_or((0, 0));
    let end = now();
    let final_snap = twin.snapshot();
    let final_nodes =
        final_snap.nodes_ready + final_snap.nodes_launching + final_snap.nodes_draining;
    let pids = twin.pids();
    twin.shutdown(grace + Duration::from_secs(5)).await;
    let leftover = pids.iter().filter(|p| process_alive(**p)).count();

    // Messages not consumed by the end (an interrupted or short run): not lost, still queued.
    let left = report::left_over(&clients, &queue_url).await?;
    let acked = read_acks(&ack_dir)?;
    let items = scan_table(&clients, &sc.queue.table).await?;
    let _ = ep.stop.send(());
    let _ = ep.task.await;

    let reaction_s = match (backlog_since, twin.totals.first_scale_out_ms) {
        (Some(b), Some(s)) => Some((s as f64 - b.as_millis() as f64).max(0.0) / 1000.0),
        _ => None,
    };
    let r = Report::build(report::Inputs {
        scenario: sc.name.clone(),
        duration_s: end.since(start).as_secs_f64(),
        scenario_s: sc.total(None).as_secs_f64(),
        planned_s: total.as_secs_f64(),
        interrupted,
        sent,
        send_failures: failed,
        acked: &acked,
        items: &items,
        totals: &twin.totals,
        reaction_s,
        joint: policy.joint,
        drained_at_s: drained_at,
        final_replicas: twin.desired(),
        final_nodes,
        baseline_nodes: sc.baseline.count,
        min_replicas: twin.min_replicas(),
        leftover_processes: leftover as u32,
        left,
    });
    let what_ran = vec![
        (
            "scenario".into(),
            match &a.scenario {
                Some(p) => format!("{} ({})", sc.name, p.display()),
                None => format!("{} (built in)", sc.name),
            },
        ),
        ("policy".into(), policy.describe()),
        ("manifests".into(), loaded.manifest_files.join(", ")),
        ("timings".into(), timings),
    ];
    report::write(
        &report_dir,
        &r,
        report::Written {
            what_ran,
            samples: &samples,
            decisions: &twin.log,
            items: &items,
            start_ms: start.as_millis(),
        },
    )?;
    r.print_summary();
    println!(
        "report: {} (report.html, report.json, timeseries.csv; logs in kedge.log)",
        report_dir.display()
    );
    Ok(())
}

/// `m5.large 2 ready; m5.xlarge 3 ready 1 launching` (states with no node left out).
fn nodes_by_type(s: &cluster::local::Snapshot) -> String {
    s.nodes_by_type
        .iter()
        .map(|(t, (r, l, d))| {
            let mut parts = vec![format!("{t} {r} ready")];
            if *l > 0 {
                parts.push(format!("{l} launching"));
            }
            if *d > 0 {
                parts.push(format!("{d} draining"));
            }
            parts.join(" ")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n).collect();
        t.push('…');
        t
    }
}

fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
}

async fn queue_depth(clients: &workload::Clients, url: &str) -> (u64, u64) {
    let r = clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await;
    let Ok(r) = r else { return (0, 0) };
    let a = r.attributes.unwrap_or_default();
    let g = |k: QueueAttributeName| a.get(&k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (
        g(QueueAttributeName::ApproximateNumberOfMessages),
        g(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

/// Every acknowledged transaction id, with how many times it was acknowledged.
fn read_acks(dir: &std::path::Path) -> anyhow::Result<HashMap<String, u32>> {
    let mut m = HashMap::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        let text = std::fs::read_to_string(&p)
            .with_context(|| format!("reading the ack log {}", p.display()))?;
        for l in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            *m.entry(l.to_string()).or_insert(0) += 1;
        }
    }
    Ok(m)
}

/// One table item, as the reconciliation needs it.
#[derive(Debug, Clone)]
pub struct Item {
    pub transaction_id: String,
    pub sent_at_ms: Option<u64>,
    pub written_at_ms: Option<u64>,
    pub receive_count: Option<u64>,
}

async fn scan_table(clients: &workload::Clients, table: &str) -> anyhow::Result<Vec<Item>> {
    let mut out = Vec::new();
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let r = clients
            .dynamodb
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .context("scanning the table")?;
        for it in r.items.unwrap_or_default() {
            let s = |k: &str| it.get(k).and_then(|v| v.as_s().ok()).cloned();
            let n = |k: &str| {
                it.get(k)
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse::<f64>().ok())
                    .map(|v| v as u64)
            };
            out.push(Item {
                transaction_id: s("transaction_id").unwrap_or_default(),
                sent_at_ms: n("sent_at"),
                written_at_ms: n("written_at"),
                receive_count: n("receive_count"),
            });
        }
        match r.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => break,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(file: &str) -> (scenario::Scenario, scenario::Manifests) {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/up")
            .join(file);
        let l = Source::read(Some(&p), BUILTIN)
            .and_then(|s| s.load())
            .unwrap_or_else(|e| panic!("{file}: {e:#}"));
        (l.scenario, l.manifests)
    }

    #[test]
    fn shipped_scenarios_load_with_their_manifests() {
        // The demo: the built-in scenario, demo-tuned timings.
        let (demo, m) = shipped("demo.yaml");
        let builtin = Source::read(None, BUILTIN)
            .and_then(|s| s.load())
            .expect("built-in");
        assert_eq!(builtin.scenario.total(None), demo.total(None));
        assert!((200..=300).contains(&demo.total(None).as_secs()));
        let so = m.workload.scaled_object().expect("a ScaledObject");
        let c = autoscale::Config::from_scaled_object(so).expect("demo config");
        assert_eq!(c.polling_interval, Duration::from_millis(250));
        assert_eq!(c.behavior.down.window_secs, 20);
        assert_eq!((c.min, c.max), (1, 100));
        assert_eq!(demo.consumer.batch, 1);
        assert_eq!(demo.joint, None, "the policy decides");
        assert_eq!(m.nodepools.len(), 1);

        // The seed's exact manifests: 30 s polling, the HPA's default 300 s window.
        let (seed, m) = shipped("seed.yaml");
        let so = m.workload.scaled_object().expect("a ScaledObject");
        let c = autoscale::Config::from_scaled_object(so).expect("seed config");
        assert_eq!(c.polling_interval, Duration::from_secs(30));
        assert_eq!(c.behavior.down.window_secs, 300);
        assert_eq!((c.min, c.max), (1, 2000));
        assert!(m.auth.is_some());
        assert_eq!(m.nodepools.len(), 1);
        assert_eq!(m.nodepools[0].name(), "default");
        // Long enough for the 300 s window to pass after the load.
        let load: Duration = seed
            .phases
            .iter()
            .filter(|p| p.producers > 0)
            .map(|p| p.duration)
            .sum();
        assert!(seed.total(None) >= load + Duration::from_secs(300 + 60));
        assert_eq!(seed.baseline.count, 2);
        assert_eq!(seed.pod.cpu, "125m");
    }
}
