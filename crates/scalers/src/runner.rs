//! The scale loop: drives one ScaledObject's [`Autoscaler`] on its polling interval.
//!
//! Each object runs as its own task: sleep until the deadline (or until an event-driven
//! trigger reports a change), poll every scaler, read the target's replica count, step the
//! decision core with the clock's `now`, apply the decision, record metrics. The next
//! deadline is the previous one plus the decision's `requeue_after`, so a slow poll does
//! not shift the schedule (and missed deadlines are skipped, not bunched).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use autoscale::metrics::Metrics;
use autoscale::scaler::BoxFuture;
use autoscale::{Autoscaler, Decision, Observation, Scaler};
use clock::Clock;
use tokio::sync::watch;
use tokio::time::Instant;

/// The scalable resource's state (`/scale` subresource).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetState {
    pub replicas: u32,
    /// Ready pods, for `Value` metrics; `None` = same as `replicas`.
    pub ready: Option<u32>,
}

/// What the loop scales: a Deployment through `/scale`, a local process group, a simulated
/// workload.
pub trait ScaleTarget: Send + Sync {
    fn get(&self) -> BoxFuture<'_, Result<TargetState, String>>;
    fn scale(&self, replicas: u32) -> BoxFuture<'_, Result<(), String>>;
}

/// Everything one ScaledObject's loop needs.
pub struct ObjectLoop {
    pub autoscaler: Autoscaler,
    /// One per trigger, in `spec.triggers` order.
    pub scalers: Vec<Box<dyn Scaler>>,
    pub target: Arc<dyn ScaleTarget>,
}

/// Shared dependencies (the controller-rs `Context` pattern).
#[derive(Clone)]
pub struct LoopContext {
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    /// Upper bound for one scaler call; a slower scaler counts as failed.
    pub scaler_timeout: Duration,
}

/// Per-loop statistics returned when the loop stops.
#[derive(Debug, Default, Clone)]
pub struct LoopStats {
    /// Lateness of each timer wake-up (actual − scheduled), in microseconds.
    pub lateness_us: Vec<u32>,
    pub polls: u64,
    pub event_wakeups: u64,
    pub scale_calls: u64,
    pub last: Option<Decision>,
}

/// Wait for the first of several futures (no extra dependency for `select_all`); never
/// resolves when there are none.
pub async fn first_of(mut futs: Vec<BoxFuture<'_, ()>>) {
    if futs.is_empty() {
        return std::future::pending().await;
    }
    std::future::poll_fn(move |cx| {
        for f in futs.iter_mut() {
            if Pin::new(f).poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await
}

impl ObjectLoop {
    /// Poll once and apply the decision.
    pub async fn poll_once(&mut self, ctx: &LoopContext) -> Decision {
        let now = ctx.clock.now();
        let mut results = Vec::with_capacity(self.scalers.len());
        let mut latencies = Vec::with_capacity(self.scalers.len());
        for s in &self.scalers {
            let started = Instant::now();
            let r = match tokio::time::timeout(ctx.scaler_timeout, s.get_metric_and_activity(now))
                .await
            {
                Ok(Ok(m)) => Ok(m),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!(
                    "no answer within {}ms",
                    ctx.scaler_timeout.as_millis()
                )),
            };
            latencies.push(started.elapsed());
            results.push(r);
        }
        let (replicas, ready) = match self.target.get().await {
            Ok(t) => (t.replicas, t.ready),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the scale target; assuming 0 replicas");
                (0, None)
            }
        };
        let obs = Observation {
            current_replicas: replicas,
            ready_replicas: ready,
            triggers: results,
        };
        let d = self.autoscaler.step(now, &obs);
        if d.scales()
            && let Err(e) = self.target.scale(d.desired_replicas).await
        {
            tracing::warn!(error = %e, desired = d.desired_replicas, "scaling the target failed");
        }
        let cfg = self.autoscaler.config();
        ctx.metrics
            .observe_decision(&cfg.namespace, &cfg.name, &d, &latencies);
        d
    }

    /// Run until `shutdown` turns true. The first poll happens at `first`.
    pub async fn run(
        mut self,
        ctx: LoopContext,
        first: Instant,
        mut shutdown: watch::Receiver<bool>,
    ) -> LoopStats {
        let mut stats = LoopStats::default();
        let mut deadline = first;
        let event_driven = self.autoscaler.config().event_driven;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let woke_by_event = {
                let changes: Vec<BoxFuture<'_, ()>> = if event_driven {
                    self.scalers.iter().filter_map(|s| s.changed()).collect()
                } else {
                    Vec::new()
                };
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => false,
                    _ = first_of(changes) => true,
                    _ = shutdown.changed() => break,
                }
            };
            let woke = Instant::now();
            if woke_by_event {
                stats.event_wakeups += 1;
            } else {
                let late = woke.saturating_duration_since(deadline);
                stats
                    .lateness_us
                    .push(late.as_micros().min(u32::MAX as u128) as u32);
                let cfg = self.autoscaler.config();
                ctx.metrics
                    .observe_loop_latency(&cfg.namespace, &cfg.name, late);
            }
            let d = self.poll_once(&ctx).await;
            stats.polls += 1;
            if d.scales() {
                stats.scale_calls += 1;
            }
            let interval = d.requeue_after.max(Duration::from_millis(1));
            if woke_by_event {
                // An early poll restarts the interval from now.
                deadline = woke + interval;
            } else {
                deadline += interval;
                let now = Instant::now();
                if deadline < now {
                    // Skip missed ticks instead of firing them back to back.
                    let behind = now - deadline;
                    let skip = behind.as_nanos() / interval.as_nanos() + 1;
                    deadline += interval * (skip.min(u32::MAX as u128) as u32);
                }
            }
            stats.last = Some(d);
        }
        stats
    }
}

/// Percentile (0..=100) of a sorted slice; 0 when empty.
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
