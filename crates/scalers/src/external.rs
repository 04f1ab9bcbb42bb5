//! `external` and `external-push`: KEDA's gRPC ExternalScaler protocol (`externalscaler.proto`),
//! so any external scaler written for KEDA works unchanged.
//!
//! Each poll calls `GetMetricSpec` (the target the scaler asks for), `GetMetrics` and
//! `IsActive` with the ScaledObject's name, namespace and the trigger's metadata. The metric is
//! reported as `value / target` against a target of 1 (the target is the server's, known only
//! at run time), which gives the HPA the same ratio. `external-push` additionally keeps a
//! `StreamIsActive` stream open and wakes the scale loop when the scaler pushes a change.
//!
//! gRPC here is HTTP/2 (hyper) with the 5-byte message framing and the few protobuf messages
//! of the protocol encoded by hand: no code generation, no protobuf runtime. Plain-text
//! connections only (`enableTLS` is refused as a configuration error).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use autoscale::scaler::BoxFuture;
use autoscale::{MetricSample, Scaler, ScalerError};
use bytes::{Buf, Bytes};
use clock::Timestamp;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use model::keda::triggers::External;
use tokio::sync::Notify;

/// Protobuf encoding of the ExternalScaler messages (proto3 wire format).
pub mod proto {
    use std::collections::BTreeMap;

    fn varint(buf: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        buf.push(v as u8);
    }

    fn bytes_field(buf: &mut Vec<u8>, field: u32, b: &[u8]) {
        varint(buf, u64::from(field << 3 | 2));
        varint(buf, b.len() as u64);
        buf.extend_from_slice(b);
    }

    /// `ScaledObjectRef{name, namespace, scalerMetadata}`.
    pub fn scaled_object_ref(name: &str, ns: &str, md: &BTreeMap<String, String>) -> Vec<u8> {
        let mut b = Vec::new();
        bytes_field(&mut b, 1, name.as_bytes());
        bytes_field(&mut b, 2, ns.as_bytes());
        for (k, v) in md {
            let mut e = Vec::new();
            bytes_field(&mut e, 1, k.as_bytes());
            bytes_field(&mut e, 2, v.as_bytes());
            bytes_field(&mut b, 3, &e);
        }
        b
    }

    /// `GetMetricsRequest{scaledObjectRef, metricName}`.
    pub fn get_metrics_request(sor: &[u8], metric: &str) -> Vec<u8> {
        let mut b = Vec::new();
        bytes_field(&mut b, 1, sor);
        bytes_field(&mut b, 2, metric.as_bytes());
        b
    }

    /// A decoded field: number and value.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Value<'a> {
        Varint(u64),
        Fixed64(u64),
        Bytes(&'a [u8]),
        Fixed32(u32),
    }

    fn read_varint(b: &[u8], i: &mut usize) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *b.get(*i)?;
            *i += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(v);
            }
        }
        None
    }

    /// Every field of a message, in order.
    pub fn fields(b: &[u8]) -> Option<Vec<(u32, Value<'_>)>> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let key = read_varint(b, &mut i)?;
            let (field, wt) = ((key >> 3) as u32, key & 7);
            let v = match wt {
                0 => Value::Varint(read_varint(b, &mut i)?),
                1 => {
                    let s = b.get(i..i + 8)?;
                    i += 8;
                    Value::Fixed64(u64::from_le_bytes(s.try_into().ok()?))
                }
                2 => {
                    let n = read_varint(b, &mut i)? as usize;
                    let s = b.get(i..i + n)?;
                    i += n;
                    Value::Bytes(s)
                }
                5 => {
                    let s = b.get(i..i + 4)?;
                    i += 4;
                    Value::Fixed32(u32::from_le_bytes(s.try_into().ok()?))
                }
                _ => return None,
            };
            out.push((field, v));
        }
        Some(out)
    }

    pub fn encode_bool(field: u32, v: bool) -> Vec<u8> {
        let mut b = Vec::new();
        varint(&mut b, u64::from(field << 3));
        varint(&mut b, u64::from(v));
        b
    }

    /// `{name, int64 (field 2), double (field 3)}` (MetricSpec and MetricValue share the shape).
    pub fn encode_named_number(name: &str, int: i64, float: f64) -> Vec<u8> {
        let mut b = Vec::new();
        bytes_field(&mut b, 1, name.as_bytes());
        varint(&mut b, 2 << 3);
        varint(&mut b, int as u64);
        varint(&mut b, 3 << 3 | 1);
        b.extend_from_slice(&float.to_le_bytes());
        b
    }

    /// A repeated message field 1 (GetMetricSpecResponse, GetMetricsResponse).
    pub fn encode_repeated(items: &[Vec<u8>]) -> Vec<u8> {
        let mut b = Vec::new();
        for it in items {
            bytes_field(&mut b, 1, it);
        }
        b
    }

    /// `{name, int64, double}` entries of a repeated field 1: the double when set, else the int.
    pub fn named_numbers(b: &[u8]) -> Option<Vec<(String, f64)>> {
        let mut out = Vec::new();
        for (f, v) in fields(b)? {
            if let (1, Value::Bytes(item)) = (f, v) {
                let (mut name, mut int, mut float) = (String::new(), 0i64, None);
                for (f, v) in fields(item)? {
                    match (f, v) {
                        (1, Value::Bytes(s)) => name = String::from_utf8_lossy(s).into_owned(),
                        (2, Value::Varint(n)) => int = n as i64,
                        (3, Value::Fixed64(d)) => float = Some(f64::from_bits(d)),
                        _ => {}
                    }
                }
                out.push((name, float.filter(|f| *f != 0.0).unwrap_or(int as f64)));
            }
        }
        Some(out)
    }

    /// Field 1 of IsActiveResponse (also the ScaledObjectRef's name when decoding a request).
    pub fn bool_field1(b: &[u8]) -> Option<bool> {
        Some(
            fields(b)?
                .iter()
                .any(|(f, v)| *f == 1 && *v == Value::Varint(1)),
        )
    }
}

/// gRPC framing: 1 byte compressed flag, 4 bytes length, the message.
pub fn frame(msg: &[u8]) -> Bytes {
    let mut b = Vec::with_capacity(5 + msg.len());
    b.push(0);
    b.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    b.extend_from_slice(msg);
    Bytes::from(b)
}

/// Split a gRPC body into messages.
pub fn unframe(mut body: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while body.len() >= 5 {
        let n = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        if body.len() < 5 + n {
            break;
        }
        out.push(body[5..5 + n].to_vec());
        body = &body[5 + n..];
    }
    out
}

pub struct ExternalScaler {
    cfg: External,
    base: String,
    sor: Vec<u8>,
    client: Client<HttpConnector, Full<Bytes>>,
    push: Option<Arc<Notify>>,
    stream: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for ExternalScaler {
    fn drop(&mut self) {
        if let Some(h) = &self.stream {
            h.abort();
        }
    }
}

impl ExternalScaler {
    /// `name`/`namespace`: the ScaledObject the external scaler is asked about.
    pub fn new(cfg: External, name: &str, namespace: &str) -> Result<Self, ScalerError> {
        if cfg.enable_tls {
            return Err(ScalerError::Config(
                "external scaler enableTLS is not supported by kedge yet".into(),
            ));
        }
        let base = format!(
            "http://{}",
            cfg.scaler_address.trim_start_matches("http://")
        );
        let sor = proto::scaled_object_ref(name, namespace, &cfg.metadata);
        let client = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build(HttpConnector::new());
        let mut s = ExternalScaler {
            cfg,
            base,
            sor,
            client,
            push: None,
            stream: None,
        };
        if s.cfg.push && tokio::runtime::Handle::try_current().is_ok() {
            let notify = Arc::new(Notify::new());
            s.push = Some(notify.clone());
            let (client, url, body) = (
                s.client.clone(),
                format!("{}/externalscaler.ExternalScaler/StreamIsActive", s.base),
                frame(&s.sor),
            );
            s.stream = Some(tokio::spawn(stream_is_active(client, url, body, notify)));
        }
        Ok(s)
    }

    async fn call(&self, method: &str, msg: Vec<u8>) -> Result<Vec<u8>, ScalerError> {
        let url = format!("{}/externalscaler.ExternalScaler/{method}", self.base);
        let req = hyper::Request::post(&url)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Full::new(frame(&msg)))
            .map_err(|e| ScalerError::Config(format!("external scaler request: {e}")))?;
        let fut = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| ScalerError::Connect(format!("external scaler {url}: {e}")))?;
            let header_status = grpc_status(resp.headers());
            let collected = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| ScalerError::Connect(format!("external scaler {url}: {e}")))?;
            let status = collected
                .trailers()
                .and_then(grpc_status)
                .or(header_status)
                .unwrap_or((0, String::new()));
            if status.0 != 0 {
                return Err(ScalerError::Query(format!(
                    "external scaler {method}: grpc-status {} {}",
                    status.0, status.1
                )));
            }
            let body = collected.to_bytes();
            unframe(body.chunk())
                .into_iter()
                .next()
                .ok_or_else(|| ScalerError::Parse(format!("external scaler {method}: no message")))
        };
        tokio::time::timeout(Duration::from_secs(10), fut)
            .await
            .map_err(|_| {
                ScalerError::Connect(format!("external scaler {url}: no answer within 10s"))
            })?
    }
}

fn grpc_status(h: &hyper::HeaderMap) -> Option<(i32, String)> {
    let code = h.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    let msg = h
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .unwrap_or("")
        .to_string();
    Some((code, msg))
}

/// `external-push`: hold `StreamIsActive` open and wake the loop on every message; reconnect
/// after a pause when the stream ends or fails.
async fn stream_is_active(
    client: Client<HttpConnector, Full<Bytes>>,
    url: String,
    body: Bytes,
    notify: Arc<Notify>,
) {
    loop {
        let req = hyper::Request::post(&url)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Full::new(body.clone()));
        if let Ok(req) = req
            && let Ok(resp) = client.request(req).await
        {
            let mut b = resp.into_body();
            let mut buf: Vec<u8> = Vec::new();
            while let Some(Ok(f)) = b.frame().await {
                if let Some(d) = f.data_ref() {
                    buf.extend_from_slice(d);
                    let msgs = unframe(&buf);
                    let used: usize = msgs.iter().map(|m| 5 + m.len()).sum();
                    buf.drain(..used);
                    if !msgs.is_empty() {
                        notify.notify_waiters();
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl Scaler for ExternalScaler {
    fn get_metric_and_activity(
        &self,
        _now: Timestamp,
    ) -> BoxFuture<'_, Result<MetricSample, ScalerError>> {
        Box::pin(async move {
            let spec = self.call("GetMetricSpec", self.sor.clone()).await?;
            let specs = proto::named_numbers(&spec)
                .ok_or_else(|| ScalerError::Parse("bad GetMetricSpecResponse".into()))?;
            let (metric, target) = specs
                .first()
                .cloned()
                .ok_or_else(|| ScalerError::Parse("GetMetricSpec returned no metric".into()))?;
            let values = self
                .call("GetMetrics", proto::get_metrics_request(&self.sor, &metric))
                .await?;
            let values = proto::named_numbers(&values)
                .ok_or_else(|| ScalerError::Parse("bad GetMetricsResponse".into()))?;
            let value = values
                .iter()
                .find(|(n, _)| *n == metric)
                .or(values.first())
                .map(|(_, v)| *v)
                .unwrap_or(0.0);
            let active = self.call("IsActive", self.sor.clone()).await?;
            let active = proto::bool_field1(&active)
                .ok_or_else(|| ScalerError::Parse("bad IsActiveResponse".into()))?;
            let value = if target > 0.0 { value / target } else { value };
            Ok(MetricSample { value, active })
        })
    }

    fn changed(&self) -> Option<BoxFuture<'_, ()>> {
        self.push
            .as_ref()
            .map(|n| Box::pin(n.notified()) as BoxFuture<'_, ()>)
    }
}

/// The metadata an external scaler receives (for tests and logs).
pub fn scaler_metadata(cfg: &External) -> &BTreeMap<String, String> {
    &cfg.metadata
}
