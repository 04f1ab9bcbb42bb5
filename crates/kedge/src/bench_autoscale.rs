//! `kedge bench autoscale`: run the scale loop production uses (`scalers::runner` stepping
//! `engine::ScaleLoop`, the loop `kedge operator` runs) over N ScaledObjects with an
//! in-process metric source and an in-memory target for a fixed time, and print how late the
//! loop woke up compared with the engine's schedule (p50/p95/p99/max).
//!
//! Every object has its own engine loop and a time-varying metric, so the decisions (and
//! scale writes) are real work, not a no-op. First polls are spread evenly across one
//! interval, as objects created at different times would be.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use autoscale::metrics::Metrics;
use autoscale::{Autoscaler, Config, Scaler};
use clock::{Clock, SystemClock};
use engine::{Policy, PolicyName, ScaleLoop, WorkloadKey};
use model::keda::ScaledObject;
use model::manifest::parse_documents;
use scalers::memory::{FnScaler, MemoryTarget};
use scalers::runner::{self, LoopContext, ObjectLoop, Runner, Stats, percentile};

#[derive(clap::Args, Debug)]
pub struct BenchAutoscaleArgs {
    /// Number of ScaledObjects.
    #[arg(long, default_value_t = 1000)]
    pub objects: usize,
    /// Polling interval of every object (e.g. 1s, 250ms).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    /// How long to run.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Worker threads for the runtime (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// The policy every loop decides by: `kedge` (one poll per interval) or
    /// `keda-karpenter` (KEDA's poll per interval and the HPA's 15 s sync).
    #[arg(long, default_value = "kedge")]
    pub policy: PolicyName,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    model::keda::parse_duration_ms(s)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("expected a duration such as 1s or 250ms, got {s:?}"))
}

fn scaled_object(i: usize, interval: Duration) -> anyhow::Result<ScaledObject> {
    let y = format!(
        "apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: bench-{i}
  namespace: bench
  annotations:
    autoscaling.kedge.dev/polling-interval: {}ms
spec:
  scaleTargetRef:
    name: worker-{i}
  minReplicaCount: 0
  maxReplicaCount: 100
  cooldownPeriod: 30
  triggers:
  - type: metrics-api
    name: backlog
    metadata:
      url: http://in-process
      valueLocation: backlog
      targetValue: \"5\"
",
        interval.as_millis()
    );
    let docs = parse_documents(&y)?;
    Ok(docs[0].decode()?)
}

pub fn run(args: &BenchAutoscaleArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.objects > 0, "--objects must be at least 1");
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(t) = args.threads {
        rt.worker_threads(t.max(1));
    }
    let rt = rt.build().context("starting the tokio runtime")?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    anyhow::ensure!(
        args.policy != PolicyName::Oracle,
        "--policy oracle needs future arrivals; only kedge simulate runs it"
    );
    let stats = rt.block_on(bench(args))?;

    let mut lateness = stats.lateness_us;
    lateness.sort_unstable();
    let polls = stats.polls;
    let scale_calls = stats.scale_writes;
    let ms = |us: u32| us as f64 / 1000.0;
    println!(
        "kedge bench autoscale: {} objects, interval {}ms, duration {}s, {} worker thread(s), policy {}",
        args.objects,
        args.interval.as_millis(),
        args.duration.as_secs_f64(),
        threads,
        args.policy
    );
    println!(
        "polls: {polls} ({:.0}/s), scale calls: {scale_calls}",
        polls as f64 / args.duration.as_secs_f64()
    );
    println!(
        "loop lateness: p50 {:.3}ms  p95 {:.3}ms  p99 {:.3}ms  max {:.3}ms  (samples {})",
        ms(percentile(&lateness, 50.0)),
        ms(percentile(&lateness, 95.0)),
        ms(percentile(&lateness, 99.0)),
        ms(lateness.last().copied().unwrap_or(0)),
        lateness.len()
    );
    Ok(())
}

async fn bench(args: &BenchAutoscaleArgs) -> anyhow::Result<Stats> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ctx = LoopContext {
        clock: clock.clone(),
        metrics: Arc::new(Metrics::new()),
        scaler_timeout: Duration::from_secs(5),
    };
    let runner: Runner<Arc<MemoryTarget>> = Runner::start(
        ctx,
        runner::Options {
            keep_lateness: true,
            ..Default::default()
        },
    );
    let n = args.objects;
    let interval = args.interval;
    let policy = Policy::preset(args.policy);
    // Parse and build first: the loops' schedule starts once every object is ready, so the
    // lateness measured is the loop's, not the bench's start-up (at 100,000 objects parsing
    // takes seconds, and building the loops took longer than the head start on a loaded
    // machine, which counted as lateness of the first polls).
    let mut parts = Vec::with_capacity(n);
    for i in 0..n {
        let config = Config::from_scaled_object(&scaled_object(i, interval)?)?;
        let key = WorkloadKey::new(&config.namespace, &config.name);
        let autoscaler = Autoscaler::new(config, clock.now());
        // A backlog that ramps up and down over 100 s, phase-shifted per object.
        let phase = (i % 100) as u64;
        let scaler: Arc<dyn Scaler> = Arc::new(FnScaler::new(
            move |now: clock::Timestamp| {
                let x = (now.as_secs() + phase) % 100;
                let tri = if x < 50 { x } else { 100 - x };
                (tri as f64) * 4.0
            },
            0.0,
        ));
        parts.push((key, autoscaler, scaler));
    }
    // Give inserting a head start so it does not count as lateness.
    let head = interval.min(Duration::from_secs(1));
    let start = tokio::time::Instant::now() + head;
    let first = clock.now().add(head);
    for (i, (key, autoscaler, scaler)) in parts.into_iter().enumerate() {
        let offset = interval.mul_f64(i as f64 / n as f64);
        runner.insert(ObjectLoop {
            engine: ScaleLoop::new(key, autoscaler, &policy, None, first.add(offset)),
            scalers: vec![scaler],
            target: Arc::new(MemoryTarget::new(0)),
        });
    }
    // Starting the loops must fit in the head start, or the first polls' lateness is the
    // bench's own start-up; say how long it took so a run can be judged.
    let started = tokio::time::Instant::now();
    eprintln!(
        "started {n} loops {:.0} ms before the first poll",
        start.saturating_duration_since(started).as_secs_f64() * 1000.0
    );
    if started > start {
        eprintln!(
            "warning: starting the loops took {:.0} ms longer than the head start; the first polls count that as lateness",
            started.duration_since(start).as_secs_f64() * 1000.0
        );
    }
    // A bar in seconds; one wake-up a second costs the measured loops nothing visible.
    let bar = crate::progress::Progress::new("running", args.duration.as_secs());
    let end = start + args.duration;
    while tokio::time::Instant::now() < end {
        tokio::time::sleep_until(end.min(tokio::time::Instant::now() + Duration::from_secs(1)))
            .await;
        bar.set(start.elapsed().as_secs());
    }
    bar.finish();
    Ok(runner.stop().await)
}
