//! `prometheus`: one instant query through the HTTP API (`/api/v1/query`), with KEDA's rules
//! for empty, multi-element and infinite results.

use autoscale::scaler::BoxFuture;
use autoscale::{MetricSample, Scaler, ScalerError};
use clock::Timestamp;
use model::keda::triggers::Prometheus;
use serde_json::Value;

use crate::http::{HttpClient, encode};

pub struct PrometheusScaler {
    cfg: Prometheus,
    http: HttpClient,
}

impl PrometheusScaler {
    pub fn new(cfg: Prometheus) -> Self {
        PrometheusScaler {
            cfg,
            http: HttpClient::default(),
        }
    }

    fn url(&self, now: Timestamp) -> String {
        let base = self.cfg.server_address.trim_end_matches('/');
        let mut url = format!(
            "{base}/api/v1/query?query={}&time={}.{:03}",
            encode(&self.cfg.query),
            now.as_millis() / 1000,
            now.as_millis() % 1000
        );
        if let Some(ns) = &self.cfg.namespace {
            url.push_str(&format!("&namespace={}", encode(ns)));
        }
        for (k, v) in &self.cfg.query_parameters {
            url.push_str(&format!("&{}={}", encode(k), encode(v)));
        }
        url
    }
}

/// Interpret a `/api/v1/query` answer as KEDA's prometheus scaler does.
pub fn value_from_response(
    body: &[u8],
    query: &str,
    ignore_null: bool,
) -> Result<f64, ScalerError> {
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| ScalerError::Parse(format!("prometheus answer is not JSON: {e}")))?;
    if doc.get("status").and_then(Value::as_str) != Some("success") {
        return Err(ScalerError::Query(format!(
            "prometheus query {query:?} failed: {}",
            doc.get("error")
                .and_then(Value::as_str)
                .unwrap_or("unknown error")
        )));
    }
    let data = &doc["data"];
    let sample = match data.get("resultType").and_then(Value::as_str) {
        Some("scalar") | Some("string") => data["result"].clone(),
        _ => {
            let result = data["result"].as_array().cloned().unwrap_or_default();
            match result.len() {
                0 if ignore_null => return Ok(0.0),
                0 => {
                    return Err(ScalerError::Parse(
                        "prometheus metrics 'prometheus' target may be lost, the result is empty"
                            .into(),
                    ));
                }
                1 => result[0]["value"].clone(),
                _ => {
                    return Err(ScalerError::Parse(format!(
                        "prometheus query {query:?} returned multiple elements"
                    )));
                }
            }
        }
    };
    let pair = sample.as_array().cloned().unwrap_or_default();
    if pair.is_empty() {
        return if ignore_null {
            Ok(0.0)
        } else {
            Err(ScalerError::Parse(
                "prometheus metrics 'prometheus' target may be lost, the value list is empty"
                    .into(),
            ))
        };
    }
    if pair.len() < 2 {
        return Err(ScalerError::Parse(format!(
            "prometheus query {query:?} didn't return enough values"
        )));
    }
    let text = pair[1].as_str().unwrap_or_default();
    let v: f64 = match text {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        t => t
            .parse()
            .map_err(|_| ScalerError::Parse(format!("prometheus returned {t:?}, not a number")))?,
    };
    if v.is_infinite() || v.is_nan() {
        if ignore_null {
            return Ok(0.0);
        }
        return Err(ScalerError::Parse(format!("prometheus query returns {v}")));
    }
    Ok(v)
}

impl Scaler for PrometheusScaler {
    fn get_metric_and_activity(
        &self,
        now: Timestamp,
    ) -> BoxFuture<'_, Result<MetricSample, ScalerError>> {
        Box::pin(async move {
            let body = self
                .http
                .get(&self.url(now), &self.cfg.custom_headers)
                .await?;
            let v = value_from_response(&body, &self.cfg.query, self.cfg.ignore_null_values)?;
            Ok(MetricSample::with_threshold(
                v,
                self.cfg.activation_threshold,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keda_result_rules() {
        let vec1 = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"42.5"]}]}}"#;
        assert_eq!(value_from_response(vec1, "q", true).unwrap(), 42.5);
        let empty = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(value_from_response(empty, "q", true).unwrap(), 0.0);
        assert!(value_from_response(empty, "q", false).is_err());
        let two = br#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"1"]},{"value":[1,"2"]}]}}"#;
        assert!(
            value_from_response(two, "q", true)
                .unwrap_err()
                .to_string()
                .contains("multiple elements")
        );
        let scalar = br#"{"status":"success","data":{"resultType":"scalar","result":[1,"7"]}}"#;
        assert_eq!(value_from_response(scalar, "q", true).unwrap(), 7.0);
        let inf = br#"{"status":"success","data":{"resultType":"scalar","result":[1,"+Inf"]}}"#;
        assert_eq!(value_from_response(inf, "q", true).unwrap(), 0.0);
        assert!(value_from_response(inf, "q", false).is_err());
    }
}
