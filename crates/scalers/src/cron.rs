//! `cron`: a fixed replica count inside a time window given by two cron expressions.
//!
//! As KEDA: the window is open when the next `end` comes before the next `start`; inside it
//! the metric is `desiredReplicas` (against a target of 1) and the trigger is active,
//! outside it the metric is 1 and the trigger is inactive.

use std::str::FromStr;

use autoscale::scaler::BoxFuture;
use autoscale::{MetricSample, Scaler, ScalerError};
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use clock::Timestamp;
use croner::Cron as CronExpr;
use model::keda::triggers::Cron;

pub struct CronScaler {
    tz: Tz,
    start: CronExpr,
    end: CronExpr,
    desired: i64,
}

fn parse(expr: &str) -> Result<CronExpr, ScalerError> {
    CronExpr::new(expr)
        .parse()
        .map_err(|e| ScalerError::Config(format!("invalid cron expression {expr:?}: {e}")))
}

impl CronScaler {
    pub fn new(cfg: &Cron) -> Result<Self, ScalerError> {
        let tz = Tz::from_str(&cfg.timezone).map_err(|_| {
            ScalerError::Config(format!(
                "unknown time zone {:?}: use an IANA name such as Europe/Berlin",
                cfg.timezone
            ))
        })?;
        Ok(CronScaler {
            tz,
            start: parse(&cfg.start)?,
            end: parse(&cfg.end)?,
            desired: cfg.desired_replicas,
        })
    }

    /// Whether `now` is inside the window.
    pub fn in_window(&self, now: Timestamp) -> Result<bool, ScalerError> {
        let utc: DateTime<Utc> = DateTime::from_timestamp_millis(now.as_millis() as i64)
            .ok_or_else(|| ScalerError::Config("time out of range".into()))?;
        let local = self.tz.from_utc_datetime(&utc.naive_utc());
        let next = |c: &CronExpr| {
            c.find_next_occurrence(&local, false)
                .map_err(|e| ScalerError::Config(format!("cron: {e}")))
        };
        let next_start = next(&self.start)?;
        let next_end = next(&self.end)?;
        // Inside when the window closes before it next opens.
        Ok(next_end <= next_start)
    }
}

impl Scaler for CronScaler {
    fn get_metric_and_activity(
        &self,
        now: Timestamp,
    ) -> BoxFuture<'_, Result<MetricSample, ScalerError>> {
        let r = self.in_window(now).map(|inside| MetricSample {
            value: if inside { self.desired as f64 } else { 1.0 },
            active: inside,
        });
        Box::pin(async move { r })
    }
}
