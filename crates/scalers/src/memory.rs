//! In-process metric sources and scale targets: the bench's metric source, the simulator's
//! building blocks, and test doubles.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use autoscale::scaler::BoxFuture;
use autoscale::{MetricSample, Scaler, ScalerError};
use clock::Timestamp;
use tokio::sync::Notify;

use engine::{ScaleLoop, WorkloadKey};

use crate::runner::{Carried, Observed, Poll, Target};

/// A metric held in memory; `set` changes it and wakes event-driven loops.
#[derive(Debug, Clone)]
pub struct MemoryScaler {
    value: Arc<AtomicU64>,
    activation: f64,
    notify: Arc<Notify>,
    fail: Arc<AtomicU32>,
}

impl MemoryScaler {
    pub fn new(value: f64, activation: f64) -> Self {
        MemoryScaler {
            value: Arc::new(AtomicU64::new(value.to_bits())),
            activation,
            notify: Arc::new(Notify::new()),
            fail: Arc::new(AtomicU32::new(0)),
        }
    }
    pub fn set(&self, value: f64) {
        self.value.store(value.to_bits(), Ordering::Relaxed);
        self.notify.notify_waiters();
    }
    pub fn get(&self) -> f64 {
        f64::from_bits(self.value.load(Ordering::Relaxed))
    }
    /// Make the next `n` polls fail.
    pub fn fail_next(&self, n: u32) {
        self.fail.store(n, Ordering::Relaxed);
    }
}

impl Scaler for MemoryScaler {
    fn get_metric_and_activity(
        &self,
        _now: Timestamp,
    ) -> BoxFuture<'_, Result<MetricSample, ScalerError>> {
        let failing = self
            .fail
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        let v = self.get();
        let a = self.activation;
        Box::pin(async move {
            if failing {
                return Err(ScalerError::Connect("injected failure".into()));
            }
            Ok(MetricSample::with_threshold(v, a))
        })
    }

    fn changed(&self) -> Option<BoxFuture<'_, ()>> {
        Some(Box::pin(self.notify.notified()))
    }
}

/// A metric computed from the time: deterministic load shapes for the bench.
pub struct FnScaler<F> {
    f: F,
    activation: f64,
}

impl<F: Fn(Timestamp) -> f64 + Send + Sync> FnScaler<F> {
    pub fn new(f: F, activation: f64) -> Self {
        FnScaler { f, activation }
    }
}

impl<F: Fn(Timestamp) -> f64 + Send + Sync> Scaler for FnScaler<F> {
    fn get_metric_and_activity(
        &self,
        now: Timestamp,
    ) -> BoxFuture<'_, Result<MetricSample, ScalerError>> {
        let s = MetricSample::with_threshold((self.f)(now), self.activation);
        Box::pin(async move { Ok(s) })
    }
}

/// A scale target that is just a number (every replica counts as ready at once; no pods, so
/// a scale-in is written as decided).
#[derive(Debug, Default)]
pub struct MemoryTarget {
    replicas: AtomicU32,
    scale_calls: AtomicU64,
}

impl MemoryTarget {
    pub fn new(replicas: u32) -> Self {
        MemoryTarget {
            replicas: AtomicU32::new(replicas),
            scale_calls: AtomicU64::new(0),
        }
    }
    pub fn replicas(&self) -> u32 {
        self.replicas.load(Ordering::Relaxed)
    }
    pub fn scale_calls(&self) -> u64 {
        self.scale_calls.load(Ordering::Relaxed)
    }
}

impl Target for Arc<MemoryTarget> {
    async fn observe(&mut self, _key: &WorkloadKey, _pods: bool) -> Result<Observed, String> {
        Ok(Observed {
            replicas: self.replicas(),
            ready: None,
            pods: None,
        })
    }

    async fn carry_out(&mut self, _lp: &ScaleLoop, poll: Poll) -> Carried {
        if let Some(r) = poll.step.replicas {
            self.replicas.store(r, Ordering::Relaxed);
            self.scale_calls.fetch_add(1, Ordering::Relaxed);
        }
        Carried::Done
    }
}
