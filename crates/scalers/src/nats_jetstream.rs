//! `nats-jetstream`: a consumer's lag from the server's HTTP monitoring endpoint
//! (`/jsz?acc=<account>&consumers=true&config=true`), as KEDA reads it: the consumer's
//! `num_pending + num_ack_pending`. In a cluster, KEDA asks every node for the one that leads
//! the consumer; kedge asks the configured endpoint (a standalone server, or a load-balanced
//! monitoring Service whose nodes all report the consumer).

use autoscale::scaler::BoxFuture;
use autoscale::{MetricSample, Scaler, ScalerError};
use clock::Timestamp;
use model::keda::triggers::NatsJetStream;
use serde_json::Value;

use crate::http::HttpClient;

pub struct NatsJetStreamScaler {
    cfg: NatsJetStream,
    url: String,
    http: HttpClient,
}

impl NatsJetStreamScaler {
    pub fn new(cfg: NatsJetStream) -> Result<Self, ScalerError> {
        if cfg.monitoring_endpoint.is_empty() {
            return Err(ScalerError::Config(
                "natsServerMonitoringEndpoint is empty (set it in the metadata or the TriggerAuthentication)".into(),
            ));
        }
        Ok(NatsJetStreamScaler {
            url: cfg.monitoring_url(),
            cfg,
            http: HttpClient::default(),
        })
    }
}

/// The consumer's lag in a `/jsz` answer: `num_pending + num_ack_pending`.
pub fn lag_from_jsz(body: &[u8], cfg: &NatsJetStream) -> Result<i64, ScalerError> {
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| ScalerError::Parse(format!("nats /jsz answer is not JSON: {e}")))?;
    let accounts = doc
        .get("account_details")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let account = accounts
        .iter()
        .find(|a| s(a, "id") == cfg.account_id || s(a, "name") == cfg.account);
    let stream = account
        .and_then(|a| a.get("stream_detail"))
        .and_then(Value::as_array)
        .and_then(|ss| ss.iter().find(|st| s(st, "name") == cfg.stream))
        .ok_or_else(|| ScalerError::Query("stream not found".into()))?;
    let consumer = stream
        .get("consumer_detail")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| s(c, "name") == cfg.consumer))
        .ok_or_else(|| {
            ScalerError::Query(format!(
                "consumer {:?} not found in stream {:?}",
                cfg.consumer, cfg.stream
            ))
        })?;
    let n = |k: &str| consumer.get(k).and_then(Value::as_i64).unwrap_or(0);
    Ok(n("num_pending") + n("num_ack_pending"))
}

impl Scaler for NatsJetStreamScaler {
    fn get_metric_and_activity(
        &self,
        _now: Timestamp,
    ) -> BoxFuture<'_, Result<MetricSample, ScalerError>> {
        Box::pin(async move {
            let body = self.http.get(&self.url, &[]).await?;
            let lag = lag_from_jsz(&body, &self.cfg)?;
            Ok(MetricSample {
                value: lag as f64,
                active: lag > self.cfg.activation_lag_threshold,
            })
        })
    }
}
