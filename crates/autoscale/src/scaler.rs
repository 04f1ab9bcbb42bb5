//! The [`Scaler`] trait: one trigger's metric source (KEDA's `Scaler` interface).
//!
//! The trait lives here, next to the decision core that consumes its output, while the
//! implementations that do I/O (HTTP, Redis, PostgreSQL, SQS) live in the `scalers` crate so
//! their client libraries stay out of this one. Futures are boxed so scalers can be stored as
//! `Box<dyn Scaler>` in one list per ScaledObject.

use std::future::Future;
use std::pin::Pin;

use clock::Timestamp;

use crate::controller::MetricSample;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a scaler could not produce a metric.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScalerError {
    /// The trigger's configuration cannot work (missing auth param, bad URL, ...).
    #[error("configuration: {0}")]
    Config(String),
    /// The metric source could not be reached.
    #[error("cannot reach the metric source: {0}")]
    Connect(String),
    /// The source answered with an error.
    #[error("query failed: {0}")]
    Query(String),
    /// The answer did not contain a usable number.
    #[error("unexpected response: {0}")]
    Parse(String),
}

impl ScalerError {
    /// Label for `keda_scaler_detail_errors_total`-style counters.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ScalerError::Config(_) => "config",
            ScalerError::Connect(_) => "connect",
            ScalerError::Query(_) => "query",
            ScalerError::Parse(_) => "parse",
        }
    }
}

/// A trigger's metric source.
pub trait Scaler: Send + Sync {
    /// KEDA's `GetMetricsAndActivity`: the metric value and whether the trigger is active.
    /// `now` is the controller's time, for triggers that depend on it (cron).
    fn get_metric_and_activity(
        &self,
        now: Timestamp,
    ) -> BoxFuture<'_, Result<MetricSample, ScalerError>>;

    /// kedge extension (event-driven wake-ups): resolves when the source has seen a change
    /// worth an early poll. `None` (the default) means poll only, as KEDA does.
    fn changed(&self) -> Option<BoxFuture<'_, ()>> {
        None
    }
}
