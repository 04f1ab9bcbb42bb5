//! `metrics-api`: GET a JSON document and read one number at `valueLocation` (a GJSON path,
//! as KEDA uses `tidwall/gjson`).

use std::collections::BTreeMap;

use autoscale::scaler::BoxFuture;
use autoscale::{MetricSample, Scaler, ScalerError};
use base64::Engine as _;
use clock::Timestamp;
use model::keda::triggers::{AuthMode, MetricsApi};
use serde_json::Value;

use crate::http::{HttpClient, encode};

pub struct MetricsApiScaler {
    cfg: MetricsApi,
    url: String,
    headers: Vec<(String, String)>,
    http: HttpClient,
}

impl MetricsApiScaler {
    pub fn new(cfg: MetricsApi, auth: &BTreeMap<String, String>) -> Result<Self, ScalerError> {
        let mut headers = Vec::new();
        let mut url = cfg.url.clone();
        let need = |k: &str| {
            auth.get(k).cloned().ok_or_else(|| {
                ScalerError::Config(format!(
                    "authMode needs the {k:?} parameter from the TriggerAuthentication"
                ))
            })
        };
        match cfg.auth_mode {
            None => {}
            Some(AuthMode::Bearer) => {
                headers.push(("Authorization".into(), format!("Bearer {}", need("token")?)))
            }
            Some(AuthMode::Basic) => {
                let user = need("username")?;
                let pass = auth.get("password").cloned().unwrap_or_default();
                let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
                headers.push(("Authorization".into(), format!("Basic {b}")));
            }
            Some(AuthMode::ApiKey) => {
                let key = need("apiKey")?;
                if cfg.api_key_method == "query" {
                    let name = cfg
                        .key_param_name
                        .clone()
                        .unwrap_or_else(|| "api_key".into());
                    let sep = if url.contains('?') { '&' } else { '?' };
                    url = format!("{url}{sep}{}={}", encode(&name), encode(&key));
                } else {
                    let name = cfg
                        .key_param_name
                        .clone()
                        .unwrap_or_else(|| "X-API-KEY".into());
                    headers.push((name, key));
                }
            }
        }
        headers.push(("Accept".into(), "application/json".into()));
        Ok(MetricsApiScaler {
            cfg,
            url,
            headers,
            http: HttpClient::default(),
        })
    }
}

impl Scaler for MetricsApiScaler {
    fn get_metric_and_activity(
        &self,
        _now: Timestamp,
    ) -> BoxFuture<'_, Result<MetricSample, ScalerError>> {
        Box::pin(async move {
            let body = self.http.get(&self.url, &self.headers).await?;
            let doc: Value = serde_json::from_slice(&body)
                .map_err(|e| ScalerError::Parse(format!("{}: not JSON: {e}", self.url)))?;
            let v = gjson_number(&doc, &self.cfg.value_location)?;
            Ok(MetricSample::with_threshold(
                v,
                self.cfg.activation_target_value,
            ))
        })
    }
}

/// Split a GJSON path on unescaped dots.
fn segments(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '.' => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Resolve the GJSON subset KEDA's examples use: `a.b.c`, array indices `items.0.v`,
/// `items.#` (array length), `\.` for a literal dot.
pub fn gjson_get<'a>(doc: &'a Value, path: &str) -> Option<std::borrow::Cow<'a, Value>> {
    let mut cur = doc;
    let segs = segments(path);
    for (i, seg) in segs.iter().enumerate() {
        match cur {
            Value::Object(m) => cur = m.get(seg.as_str())?,
            Value::Array(a) => {
                if seg == "#" && i == segs.len() - 1 {
                    return Some(std::borrow::Cow::Owned(Value::from(a.len())));
                }
                cur = a.get(seg.parse::<usize>().ok()?)?;
            }
            _ => return None,
        }
    }
    Some(std::borrow::Cow::Borrowed(cur))
}

/// A number at `path`: a JSON number, or a string holding a number or a Kubernetes
/// quantity (`"250m"`, `"2k"`, `"1Ki"`), as KEDA accepts.
pub fn gjson_number(doc: &Value, path: &str) -> Result<f64, ScalerError> {
    let v = gjson_get(doc, path).ok_or_else(|| {
        ScalerError::Parse(format!("valueLocation {path:?} not found in the response"))
    })?;
    match v.as_ref() {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| ScalerError::Parse(format!("{path}: {n} is not a number"))),
        Value::String(s) => parse_quantity(s).ok_or_else(|| {
            ScalerError::Parse(format!("{path}: {s:?} is not a number or quantity"))
        }),
        other => Err(ScalerError::Parse(format!(
            "{path}: expected a number, found {other}"
        ))),
    }
}

pub fn parse_quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    const SUFFIXES: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    if let Ok(v) = s.parse::<f64>() {
        return v.is_finite().then_some(v);
    }
    for (suf, mult) in SUFFIXES {
        if let Some(n) = s.strip_suffix(suf)
            && let Ok(v) = n.parse::<f64>()
        {
            return Some(v * mult);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gjson_paths() {
        let doc: Value = serde_json::json!({
            "components": {"worker": {"tasks": 12}},
            "items": [{"v": "250m"}, {"v": 3}],
            "a.b": {"c": 7}
        });
        assert_eq!(gjson_number(&doc, "components.worker.tasks").unwrap(), 12.0);
        assert_eq!(gjson_number(&doc, "items.0.v").unwrap(), 0.25);
        assert_eq!(gjson_number(&doc, "items.1.v").unwrap(), 3.0);
        assert_eq!(gjson_number(&doc, "items.#").unwrap(), 2.0);
        assert_eq!(gjson_number(&doc, "a\\.b.c").unwrap(), 7.0);
        assert!(gjson_number(&doc, "components.missing").is_err());
        assert!(gjson_number(&doc, "components").is_err());
    }
}
