//! The one scale loop (`scalers::runner`): polls on the engine's cadence, carries out its
//! steps in order (victims before the count), wakes early for event-driven triggers, applies
//! updates after a poll in flight and keeps its timers at scale. Time is tokio's paused clock,
//! and the engine's clock follows it (`TokioClock`), so nothing here sleeps for real.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use autoscale::metrics::Metrics;
use autoscale::{Autoscaler, Config};
use clock::{Clock, Timestamp};
use engine::{ConsumerPod, PodPhase, Policy, PolicyName, ScaleLoop, WorkloadKey};
use model::manifest::parse_documents;
use scalers::memory::{MemoryScaler, MemoryTarget};
use scalers::runner::{
    Carried, LoopContext, ObjectLoop, Observed, Options, Poll, Runner, Target, TokioClock,
};

fn config(name: &str, annotations: &str, extra: &str) -> Config {
    let y = format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: {name}\n  namespace: ns\n{annotations}spec:\n  scaleTargetRef:\n    name: w\n  pollingInterval: 10\n{extra}  triggers:\n  - type: metrics-api\n    metadata:\n      url: http://x\n      valueLocation: v\n      targetValue: \"2\"\n"
    );
    let so = parse_documents(&y).unwrap()[0].decode().unwrap();
    Config::from_scaled_object(&so).unwrap()
}

const NO_WINDOW: &str = "  minReplicaCount: 1\n  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleDown: {stabilizationWindowSeconds: 0}\n";

fn start<T: Target>(clock: &Arc<TokioClock>, shards: usize) -> (Runner<T>, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let ctx = LoopContext {
        clock: clock.clone(),
        metrics: metrics.clone(),
        scaler_timeout: Duration::from_secs(1),
    };
    let runner = Runner::start(
        ctx,
        Options {
            shards,
            keep_lateness: true,
        },
    );
    (runner, metrics)
}

fn object<T>(
    clock: &TokioClock,
    cfg: Config,
    policy: PolicyName,
    scaler: &MemoryScaler,
    target: T,
) -> ObjectLoop<T> {
    let key = WorkloadKey::new(&cfg.namespace, &cfg.name);
    let now = clock.now();
    ObjectLoop {
        engine: ScaleLoop::new(
            key,
            Autoscaler::new(cfg, now),
            &Policy::preset(policy),
            None,
            now,
        ),
        scalers: vec![Arc::new(scaler.clone())],
        target,
    }
}

#[tokio::test(start_paused = true)]
async fn polls_every_interval_and_scales_the_target() {
    let clock = Arc::new(TokioClock::new(Timestamp::from_secs(1_000)));
    let (runner, metrics) = start(&clock, 1);
    let scaler = MemoryScaler::new(7.0, 0.0);
    let target = Arc::new(MemoryTarget::new(0));
    runner.insert(object(
        &clock,
        config("w", "", ""),
        PolicyName::Kedge,
        &scaler,
        target.clone(),
    ));
    // t=0: activation 0 → 1.
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(target.replicas(), 1);
    // t=5 (kedge reads at least every 5 s, although pollingInterval is 10): ⌈7/2⌉ = 4.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(target.replicas(), 4);
    let stats = runner.stop().await;
    assert_eq!((stats.polls, stats.scale_writes), (2, 2));
    assert!(
        stats.lateness_us.iter().all(|l| *l < 1_000),
        "{:?}",
        stats.lateness_us
    );
    assert!(
        metrics
            .render()
            .contains("keda_scaler_metrics_value{namespace=\"ns\",scaledObject=\"w\"")
    );
}

#[tokio::test(start_paused = true)]
async fn the_upstream_cadence_polls_keda_and_syncs_the_hpa_on_their_own_timers() {
    let clock = Arc::new(TokioClock::new(Timestamp::from_secs(1_000)));
    let (runner, _) = start(&clock, 1);
    let scaler = MemoryScaler::new(40.0, 0.0);
    let target = Arc::new(MemoryTarget::new(1));
    runner.insert(object(
        &clock,
        config("w", "", ""),
        PolicyName::KedaKarpenter,
        &scaler,
        target.clone(),
    ));
    // t=0 both loops: 1 → 5 (the HPA's max(+4, +100 %) per step); t=10 KEDA's poll only
    // (leaves 1↔N to the HPA); t=15 the HPA: 5 → 10; t=20 KEDA; t=30 both: 10 → 20.
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(target.replicas(), 5);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(target.replicas(), 5);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(target.replicas(), 10);
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(target.replicas(), 20);
    let stats = runner.stop().await;
    assert_eq!(stats.polls, 5, "t = 0, 10, 15, 20, 30");
}

#[tokio::test(start_paused = true)]
async fn an_event_driven_trigger_wakes_the_loop_early() {
    let clock = Arc::new(TokioClock::new(Timestamp::from_secs(1_000)));
    let (runner, _) = start(&clock, 1);
    let scaler = MemoryScaler::new(0.0, 0.0);
    let target = Arc::new(MemoryTarget::new(0));
    runner.insert(object(
        &clock,
        config(
            "w",
            "  annotations:\n    autoscaling.kedge.dev/event-driven: \"true\"\n",
            "",
        ),
        PolicyName::Kedge,
        &scaler,
        target.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(target.replicas(), 0);
    // A message arrives 2 s into a 10 s interval: the loop polls now, not at t=10.
    tokio::time::sleep(Duration::from_secs(2)).await;
    scaler.set(3.0);
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(target.replicas(), 1);
    let stats = runner.stop().await;
    assert_eq!(stats.event_wakeups, 1);
}

#[tokio::test(start_paused = true)]
async fn without_the_annotation_changes_wait_for_the_next_poll() {
    let clock = Arc::new(TokioClock::new(Timestamp::from_secs(1_000)));
    let (runner, _) = start(&clock, 1);
    let scaler = MemoryScaler::new(0.0, 0.0);
    let target = Arc::new(MemoryTarget::new(0));
    runner.insert(object(
        &clock,
        config("w", "", ""),
        PolicyName::Kedge,
        &scaler,
        target.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    scaler.set(3.0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(target.replicas(), 0);
    // The next poll (t=5: kedge reads at least every 5 s) sees it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(target.replicas() > 0);
    assert_eq!(runner.stop().await.event_wakeups, 0);
}

/// A target with pods, recording what the loop asked of it, in order.
#[derive(Clone, Default)]
struct Recorded {
    replicas: Arc<Mutex<u32>>,
    pods: Arc<Mutex<Vec<ConsumerPod>>>,
    log: Arc<Mutex<Vec<String>>>,
    /// Fail this many observations.
    failing: Arc<Mutex<u32>>,
    /// Hold each write until released.
    gate: Option<Arc<tokio::sync::Semaphore>>,
}

impl Recorded {
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Target for Recorded {
    async fn observe(&mut self, _key: &WorkloadKey, pods: bool) -> Result<Observed, String> {
        {
            let mut f = self.failing.lock().unwrap();
            if *f > 0 {
                *f -= 1;
                self.log.lock().unwrap().push("observe failed".into());
                return Err("the API server is away".into());
            }
        }
        self.log
            .lock()
            .unwrap()
            .push(format!("observe pods={pods}"));
        Ok(Observed {
            replicas: *self.replicas.lock().unwrap(),
            ready: None,
            pods: pods.then(|| self.pods.lock().unwrap().clone()),
        })
    }

    async fn carry_out(&mut self, _lp: &ScaleLoop, poll: Poll) -> Carried {
        if let Some(g) = &self.gate {
            let _ = g.acquire().await.map(|p| p.forget());
        }
        let mut log = self.log.lock().unwrap();
        if !poll.step.victims.is_empty() {
            log.push(format!("mark {}", poll.step.victims.join(",")));
        }
        if let Some(r) = poll.step.replicas {
            log.push(format!("write {r}"));
            *self.replicas.lock().unwrap() = r;
        }
        for e in &poll.events {
            log.push(format!("event {}", e.reason));
        }
        Carried::Done
    }
}

fn pod(name: &str, busy: bool, created: u64) -> ConsumerPod {
    ConsumerPod {
        name: format!("ns/{name}"),
        node: Some("n1".into()),
        phase: PodPhase::Running,
        ready: true,
        busy,
        created: Timestamp::from_secs(created),
        deletion_cost: 0,
        crash_looping: false,
        per_message: None,
    }
}

#[tokio::test(start_paused = true)]
async fn kedge_marks_idle_victims_before_writing_a_count_that_keeps_the_busy_ones() {
    let clock = Arc::new(TokioClock::new(Timestamp::from_secs(1_000)));
    let (runner, _) = start(&clock, 1);
    let scaler = MemoryScaler::new(2.0, 0.0);
    let target = Recorded::default();
    *target.replicas.lock().unwrap() = 4;
    *target.pods.lock().unwrap() = vec![
        pod("a", true, 1),
        pod("b", false, 2),
        pod("c", true, 3),
        pod("d", false, 4),
    ];
    runner.insert(object(
        &clock,
        config("w", "", NO_WINDOW),
        PolicyName::Kedge,
        &scaler,
        target.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(1)).await;
    // The HPA wants 1; two consumers are idle: they are marked, then 4 → 2.
    assert_eq!(
        target.log(),
        [
            "observe pods=true",
            "mark ns/d,ns/b",
            "write 2",
            "event SuccessfulRescale"
        ]
    );
    runner.stop().await;
}

#[tokio::test(start_paused = true)]
async fn keda_karpenter_asks_for_no_pods_and_marks_nothing() {
    let clock = Arc::new(TokioClock::new(Timestamp::from_secs(1_000)));
    let (runner, _) = start(&clock, 1);
    let scaler = MemoryScaler::new(2.0, 0.0);
    let target = Recorded::default();
    *target.replicas.lock().unwrap() = 4;
    runner.insert(object(
        &clock,
        config("w", "", NO_WINDOW),
        PolicyName::KedaKarpenter,
        &scaler,
        target.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(
        target.log(),
        ["observe pods=false", "write 1", "event SuccessfulRescale"]
    );
    runner.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_target_is_not_stepped_and_is_polled_again_after_the_interval() {
    let clock = Arc::new(TokioClock::new(Timestamp::from_secs(1_000)));
    let (runner, _) = start(&clock, 1);
    let scaler = MemoryScaler::new(7.0, 0.0);
    let target = Recorded::default();
    *target.failing.lock().unwrap() = 1;
    runner.insert(object(
        &clock,
        config("w", "", ""),
        PolicyName::Kedge,
        &scaler,
        target.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(1)).await;
    // No step on a count it could not read (a guess of 0 would "activate" a running target).
    assert_eq!(target.log(), ["observe failed"]);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        target.log(),
        [
            "observe failed",
            "observe pods=true",
            "write 1",
            "event KEDAScaleTargetActivated"
        ]
    );
    let stats = runner.stop().await;
    assert_eq!((stats.polls, stats.unobserved), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn an_update_during_a_poll_applies_after_it_and_a_removal_waits_for_it() {
    let clock = Arc::new(TokioClock::new(Timestamp::from_secs(1_000)));
    let (runner, _) = start(&clock, 1);
    let scaler = MemoryScaler::new(7.0, 0.0);
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let target = Recorded {
        gate: Some(gate.clone()),
        ..Default::default()
    };
    let key = WorkloadKey::new("ns", "w");
    runner.insert(object(
        &clock,
        config("w", "", ""),
        PolicyName::Kedge,
        &scaler,
        target.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(1)).await;
    // The first poll waits in its write; pause the object meanwhile.
    assert_eq!(target.log(), ["observe pods=true"]);
    let paused = config(
        "w",
        "  annotations:\n    autoscaling.keda.sh/paused-replicas: \"0\"\n",
        "",
    );
    runner.update(&key, move |o| o.engine.update(paused, None));
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(target.log().len(), 1, "the update waits for the poll");
    // The poll finishes, then the update applies and polls at once: back to 0.
    gate.add_permits(2);
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(
        target.log(),
        [
            "observe pods=true",
            "write 1",
            "event KEDAScaleTargetActivated",
            "observe pods=true",
            "write 0",
            "event KEDAScaleTargetDeactivated",
        ]
    );
    // A removal during a poll answers once the poll is done; then nothing polls.
    runner.update(&key, |_| {});
    tokio::time::sleep(Duration::from_millis(1)).await;
    let r2 = runner.clone();
    let k2 = key.clone();
    let removal = tokio::spawn(async move { r2.remove(&k2).await });
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert!(!removal.is_finished());
    gate.add_permits(1);
    assert!(removal.await.unwrap());
    assert!(runner.is_empty());
    let n = target.log().len();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(target.log().len(), n);
    assert!(!runner.remove(&key).await, "already gone");
    runner.stop().await;
}

#[tokio::test(start_paused = true)]
async fn thousands_of_objects_over_shards_each_poll_once_per_interval_on_time() {
    let clock = Arc::new(TokioClock::new(Timestamp::from_secs(1_000)));
    let (runner, _) = start(&clock, 3);
    let scaler = MemoryScaler::new(7.0, 0.0);
    let targets: Vec<Arc<MemoryTarget>> =
        (0..3000).map(|_| Arc::new(MemoryTarget::new(0))).collect();
    let start_ts = clock.now();
    for (i, t) in targets.iter().enumerate() {
        let cfg = config(&format!("w{i}"), "", "");
        let key = WorkloadKey::new("ns", format!("w{i}"));
        // First polls spread over one 5 s step (kedge reads at least every 5 s).
        let first = start_ts.add(Duration::from_millis(i as u64 * 5_000 / 3000));
        runner.insert(ObjectLoop {
            engine: ScaleLoop::new(
                key,
                Autoscaler::new(cfg, first),
                &Policy::preset(PolicyName::Kedge),
                None,
                first,
            ),
            scalers: vec![Arc::new(scaler.clone())],
            target: t.clone(),
        });
    }
    assert!(runner.len() <= 3000);
    tokio::time::sleep(Duration::from_millis(29_999)).await;
    assert_eq!(runner.len(), 3000);
    let stats = runner.stop().await;
    assert_eq!(stats.polls, 18_000, "six 5 s steps");
    assert!(targets.iter().all(|t| t.replicas() == 4));
    assert!(stats.lateness_us.iter().all(|l| *l < 1_000));
}
