//! The scale loop: polls on the interval, applies decisions to the target, and (opt-in)
//! wakes early when an event-driven trigger reports a change. Time is tokio's paused clock
//! plus a ManualClock for the decision core, so nothing here sleeps for real.

use std::sync::Arc;
use std::time::Duration;

use autoscale::metrics::Metrics;
use autoscale::{Autoscaler, Config};
use clock::{Clock, ManualClock, Timestamp};
use model::manifest::parse_documents;
use scalers::memory::{MemoryScaler, MemoryTarget};
use scalers::runner::{LoopContext, ObjectLoop};

fn config(annotations: &str) -> Config {
    let y = format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: w\n  namespace: ns\n{annotations}spec:\n  scaleTargetRef:\n    name: w\n  pollingInterval: 10\n  triggers:\n  - type: metrics-api\n    metadata:\n      url: http://x\n      valueLocation: v\n      targetValue: \"2\"\n"
    );
    let so = parse_documents(&y).unwrap()[0].decode().unwrap();
    Config::from_scaled_object(&so).unwrap()
}

fn ctx(clock: &ManualClock) -> (LoopContext, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    (
        LoopContext {
            clock: Arc::new(clock.clone()),
            metrics: metrics.clone(),
            scaler_timeout: Duration::from_secs(1),
        },
        metrics,
    )
}

#[tokio::test(start_paused = true)]
async fn polls_every_interval_and_scales_the_target() {
    let clock = ManualClock::default();
    clock.set(Timestamp::from_secs(1_000));
    let (ctx, metrics) = ctx(&clock);
    let scaler = MemoryScaler::new(7.0, 0.0);
    let target = Arc::new(MemoryTarget::new(0));
    let obj = ObjectLoop {
        autoscaler: Autoscaler::new(config(""), clock.now()),
        scalers: vec![Box::new(scaler.clone())],
        target: target.clone(),
    };
    let (stop, rx) = tokio::sync::watch::channel(false);
    let start = tokio::time::Instant::now();
    let h = tokio::spawn(obj.run(ctx, start, rx));
    // t=0: activation 0 → 1.
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(target.replicas(), 1);
    // t=10: HPA ⌈7/2⌉ = 4.
    clock.advance(Duration::from_secs(10));
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(target.replicas(), 4);
    stop.send(true).unwrap();
    let stats = h.await.unwrap();
    assert_eq!(stats.polls, 2);
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
async fn event_driven_trigger_wakes_the_loop_early() {
    let clock = ManualClock::default();
    clock.set(Timestamp::from_secs(1_000));
    let (ctx, _) = ctx(&clock);
    let scaler = MemoryScaler::new(0.0, 0.0);
    let target = Arc::new(MemoryTarget::new(0));
    let obj = ObjectLoop {
        autoscaler: Autoscaler::new(
            config("  annotations:\n    autoscaling.kedge.dev/event-driven: \"true\"\n"),
            clock.now(),
        ),
        scalers: vec![Box::new(scaler.clone())],
        target: target.clone(),
    };
    let (stop, rx) = tokio::sync::watch::channel(false);
    let h = tokio::spawn(obj.run(ctx, tokio::time::Instant::now(), rx));
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(target.replicas(), 0);
    // A message arrives 2 s into a 10 s interval: the loop polls now, not at t=10.
    tokio::time::sleep(Duration::from_secs(2)).await;
    scaler.set(3.0);
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(target.replicas(), 1);
    stop.send(true).unwrap();
    let stats = h.await.unwrap();
    assert_eq!(stats.event_wakeups, 1);
}

#[tokio::test(start_paused = true)]
async fn without_the_annotation_changes_wait_for_the_next_poll() {
    let clock = ManualClock::default();
    let (ctx, _) = ctx(&clock);
    let scaler = MemoryScaler::new(0.0, 0.0);
    let target = Arc::new(MemoryTarget::new(0));
    let obj = ObjectLoop {
        autoscaler: Autoscaler::new(config(""), clock.now()),
        scalers: vec![Box::new(scaler.clone())],
        target: target.clone(),
    };
    let (stop, rx) = tokio::sync::watch::channel(false);
    let h = tokio::spawn(obj.run(ctx, tokio::time::Instant::now(), rx));
    tokio::time::sleep(Duration::from_secs(2)).await;
    scaler.set(3.0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(target.replicas(), 0);
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(target.replicas(), 1);
    stop.send(true).unwrap();
    assert_eq!(h.await.unwrap().event_wakeups, 0);
}
