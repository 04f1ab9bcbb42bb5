//! `rabbitmq`: a queue's length (AMQP 0-9-1 `queue.declare` with `passive`, or the management
//! HTTP API) and its message rates (HTTP API only), with KEDA's modes: `QueueLength`,
//! `MessageRate`, `DeliverGetRate`, `PublishedToDeliveredRatio`,
//! `ExpectedQueueConsumptionTime`.
//!
//! The AMQP side is the few frames a passive declare needs (connection start/tune/open with
//! PLAIN credentials, one channel, `queue.declare` → `declare-ok`'s message count), written here
//! rather than pulling an AMQP client crate; `amqps://` (TLS) is refused as a configuration
//! error, as is `https://` by the shared HTTP client.

use std::time::Duration;

use autoscale::scaler::BoxFuture;
use autoscale::{MetricSample, Scaler, ScalerError};
use base64::Engine;
use clock::Timestamp;
use model::keda::triggers::{RabbitMode, RabbitMq, RabbitOperation, RabbitProtocol};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use crate::http::{HttpClient, encode};

/// What one poll reads from the queue (or, with `useRegex`, the queues combined).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QueueStatus {
    pub messages: i64,
    pub publish_rate: f64,
    pub deliver_get_rate: f64,
}

pub struct RabbitMqScaler {
    cfg: RabbitMq,
    host: String,
    protocol: RabbitProtocol,
    username: Option<String>,
    password: Option<String>,
    http: HttpClient,
    /// Held across `.await` (a request and its answer), hence tokio's mutex.
    amqp: Mutex<Option<amqp::Connection>>,
}

impl RabbitMqScaler {
    pub fn new(
        cfg: RabbitMq,
        auth: &std::collections::BTreeMap<String, String>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ScalerError> {
        let host = match &cfg.host {
            model::keda::triggers::Source::FromAuth => auth.get("host").cloned(),
            s => s.resolve(env),
        }
        .ok_or_else(|| ScalerError::Config(format!("host {:?} could not be resolved", cfg.host)))?;
        let protocol = match cfg.protocol {
            RabbitProtocol::Auto => model::keda::triggers::more::rabbit_protocol_of(&host)
                .ok_or_else(|| {
                    ScalerError::Config(format!(
                        "unknown host URL scheme in {:?}: use amqp:// or http://",
                        redact(&host)
                    ))
                })?,
            p => p,
        };
        if protocol == RabbitProtocol::Amqp && cfg.mode != RabbitMode::QueueLength {
            return Err(ScalerError::Config(format!(
                "protocol amqp not supported; must be HTTP to use trigger mode {:?}",
                cfg.mode
            )));
        }
        if auth.get("tls").is_some_and(|t| t == "enable") || host.starts_with("amqps://") {
            return Err(ScalerError::Config(
                "TLS to RabbitMQ (amqps, tls: enable) is not supported by kedge yet".into(),
            ));
        }
        let username = cfg.username.as_ref().and_then(|s| s.resolve(env));
        let password = cfg.password.as_ref().and_then(|s| s.resolve(env));
        let timeout = Duration::from_millis(cfg.timeout_ms.unwrap_or(3000));
        Ok(RabbitMqScaler {
            cfg,
            host,
            protocol,
            username,
            password,
            http: HttpClient::new(timeout),
            amqp: Mutex::new(None),
        })
    }

    async fn status(&self) -> Result<QueueStatus, ScalerError> {
        match self.protocol {
            RabbitProtocol::Http => self.status_http().await,
            _ => self.status_amqp().await,
        }
    }

    async fn status_http(&self) -> Result<QueueStatus, ScalerError> {
        let u = UrlParts::parse(&self.host)?;
        let (vhost, sub) = vhost_and_path(&u.path, self.cfg.vhost_name.as_deref());
        let base = format!("{}://{}{}", u.scheme, u.authority, sub);
        let url = if self.cfg.use_regex {
            format!(
                "{base}/api/queues{vhost}?page=1&use_regex=true&pagination=false&name={}&page_size={}",
                encode(&self.cfg.queue_name),
                self.cfg.page_size
            )
        } else {
            format!("{base}/api/queues{vhost}/{}", encode(&self.cfg.queue_name))
        };
        let user = self.username.clone().or(u.user);
        let pass = self.password.clone().or(u.password);
        let mut headers = Vec::new();
        if let (Some(user), Some(pass)) = (user, pass) {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            headers.push(("authorization".to_string(), format!("Basic {token}")));
        }
        let body = self
            .http
            .get(&url, &headers)
            .await
            .map_err(|e| anonymize(e, &self.host))?;
        let doc: Value = serde_json::from_slice(&body).map_err(|e| {
            ScalerError::Parse(format!("the management API answer is not JSON: {e}"))
        })?;
        let queues: Vec<&Value> = if self.cfg.use_regex {
            match doc.get("items").or(Some(&doc)) {
                Some(Value::Array(items)) => items.iter().collect(),
                _ => Vec::new(),
            }
        } else {
            vec![&doc]
        };
        Ok(combine(
            &queues,
            self.cfg.operation,
            self.cfg.exclude_unacknowledged,
        ))
    }

    async fn status_amqp(&self) -> Result<QueueStatus, ScalerError> {
        let mut guard = self.amqp.lock().await;
        if guard.is_none() {
            let u = UrlParts::parse(&self.host)?;
            let (vhost, _) = vhost_and_path(&u.path, self.cfg.vhost_name.as_deref());
            let vhost = percent_decode(vhost.trim_start_matches('/'));
            let vhost = if vhost.is_empty() {
                "/".to_string()
            } else {
                vhost
            };
            let user = self
                .username
                .clone()
                .or(u.user)
                .unwrap_or_else(|| "guest".into());
            let pass = self
                .password
                .clone()
                .or(u.password)
                .unwrap_or_else(|| "guest".into());
            let addr = if u.authority.contains(':') {
                u.authority.clone()
            } else {
                format!("{}:5672", u.authority)
            };
            let conn = tokio::time::timeout(
                Duration::from_secs(10),
                amqp::Connection::open(&addr, &user, &pass, &vhost),
            )
            .await
            .map_err(|_| {
                ScalerError::Connect(format!("rabbitmq {addr}: no answer within 10s"))
            })??;
            *guard = Some(conn);
        }
        let Some(conn) = guard.as_mut() else {
            return Err(ScalerError::Connect("rabbitmq: no connection".into()));
        };
        let r = tokio::time::timeout(
            Duration::from_secs(10),
            conn.declare_passive(&self.cfg.queue_name),
        )
        .await
        .unwrap_or_else(|_| {
            Err(ScalerError::Connect(
                "rabbitmq: no answer within 10s".into(),
            ))
        });
        match r {
            Ok(n) => Ok(QueueStatus {
                messages: n,
                ..Default::default()
            }),
            Err(e) => {
                if e.metric_label() == "connect" {
                    *guard = None;
                }
                Err(e)
            }
        }
    }
}

/// KEDA's composition of several queues (`useRegex`) by `operation`.
pub fn combine(queues: &[&Value], op: RabbitOperation, exclude_unacked: bool) -> QueueStatus {
    let one = |q: &Value| {
        let f = |path: &[&str]| {
            path.iter()
                .try_fold(q, |v, k| v.get(k))
                .and_then(Value::as_f64)
                .unwrap_or(0.0)
        };
        let messages = if exclude_unacked {
            f(&["messages_ready"])
        } else {
            f(&["messages"])
        };
        (
            messages,
            f(&["message_stats", "publish_details", "rate"]),
            f(&["message_stats", "deliver_get_details", "rate"]),
        )
    };
    let all: Vec<(f64, f64, f64)> = queues.iter().map(|q| one(q)).collect();
    if all.is_empty() {
        return QueueStatus::default();
    }
    let pick = |i: usize| -> f64 {
        let vals = all.iter().map(|t| [t.0, t.1, t.2][i]);
        match op {
            RabbitOperation::Sum => vals.sum(),
            RabbitOperation::Avg => vals.sum::<f64>() / all.len() as f64,
            RabbitOperation::Max => vals.fold(0.0, f64::max),
        }
    };
    QueueStatus {
        messages: pick(0) as i64,
        publish_rate: pick(1),
        deliver_get_rate: pick(2),
    }
}

/// KEDA's metric and activity per mode.
pub fn sample(mode: RabbitMode, activation: f64, s: QueueStatus) -> MetricSample {
    let messages = s.messages as f64;
    let (publish, deliver) = (s.publish_rate, s.deliver_get_rate);
    match mode {
        RabbitMode::QueueLength => MetricSample::with_threshold(messages, activation),
        RabbitMode::MessageRate => MetricSample {
            value: publish,
            active: publish > activation || messages > activation,
        },
        RabbitMode::DeliverGetRate => MetricSample::with_threshold(deliver, activation),
        RabbitMode::PublishedToDeliveredRatio => {
            let ratio = if publish > 0.0 && deliver == 0.0 {
                activation
            } else if publish > 0.0 && deliver > 0.0 {
                publish / deliver
            } else {
                0.0
            };
            MetricSample {
                value: ratio,
                active: ratio > activation || (publish > 0.0 && deliver == 0.0),
            }
        }
        RabbitMode::ExpectedQueueConsumptionTime => {
            let eta = if s.messages == 0 {
                0.0
            } else if deliver == 0.0 {
                activation
            } else {
                (publish - deliver) / deliver + messages / deliver
            };
            MetricSample {
                value: eta,
                active: eta > activation || (deliver == 0.0 && s.messages > 0),
            }
        }
    }
}

impl Scaler for RabbitMqScaler {
    fn get_metric_and_activity(
        &self,
        _now: Timestamp,
    ) -> BoxFuture<'_, Result<MetricSample, ScalerError>> {
        Box::pin(async move {
            let s = self.status().await?;
            Ok(sample(self.cfg.mode, self.cfg.activation_value, s))
        })
    }
}

/// An error message without the password of the host URL (KEDA's anonymizeRabbitMQError).
fn anonymize(e: ScalerError, host: &str) -> ScalerError {
    let r = redact(host);
    let fix = |m: String| m.replace(host, &r);
    match e {
        ScalerError::Config(m) => ScalerError::Config(fix(m)),
        ScalerError::Connect(m) => ScalerError::Connect(fix(m)),
        ScalerError::Query(m) => ScalerError::Query(fix(m)),
        ScalerError::Parse(m) => ScalerError::Parse(fix(m)),
    }
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

struct UrlParts {
    scheme: String,
    user: Option<String>,
    password: Option<String>,
    authority: String,
    path: String,
}

impl UrlParts {
    fn parse(url: &str) -> Result<UrlParts, ScalerError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| ScalerError::Config(format!("{:?} is not a URL", redact(url))))?;
        let (auth, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (userinfo, authority) = match auth.rfind('@') {
            Some(i) => (Some(&auth[..i]), &auth[i + 1..]),
            None => (None, auth),
        };
        let (user, password) = match userinfo {
            Some(ui) => match ui.split_once(':') {
                Some((u, p)) => (Some(percent_decode(u)), Some(percent_decode(p))),
                None => (Some(percent_decode(ui)), None),
            },
            None => (None, None),
        };
        Ok(UrlParts {
            scheme: scheme.to_string(),
            user,
            password,
            authority: authority.to_string(),
            path: path.split(['?', '#']).next().unwrap_or("").to_string(),
        })
    }
}

/// KEDA's getVhostAndPathFromURL: the last path segment is the vhost (`/` → `/%2F`), what
/// precedes it a path prefix of the management API; `vhostName` overrides.
pub fn vhost_and_path(path: &str, vhost_name: Option<&str>) -> (String, String) {
    let parts: Vec<&str> = path.split('/').collect();
    let last = parts.last().copied().unwrap_or("");
    let mut vhost = format!("/{last}");
    let prefix: Vec<&str> = parts[..parts.len().saturating_sub(1)]
        .iter()
        .copied()
        .filter(|p| !p.is_empty())
        .collect();
    let sub = if prefix.is_empty() {
        String::new()
    } else {
        format!("/{}", prefix.join("/"))
    };
    if let Some(v) = vhost_name.filter(|v| !v.is_empty()) {
        vhost = format!("/{}", encode(v));
    }
    if vhost == "/" {
        vhost = "/%2F".into();
    }
    (vhost, sub)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The AMQP 0-9-1 frames a passive `queue.declare` needs.
pub mod amqp {
    use super::*;

    const FRAME_METHOD: u8 = 1;
    const FRAME_HEARTBEAT: u8 = 8;
    const FRAME_END: u8 = 0xCE;

    pub struct Connection {
        stream: TcpStream,
        channel: u16,
        frame_max: u32,
    }

    fn io(addr: &str) -> impl Fn(std::io::Error) -> ScalerError + '_ {
        move |e| ScalerError::Connect(format!("rabbitmq {addr}: {e}"))
    }

    fn shortstr(buf: &mut Vec<u8>, s: &str) {
        let b = &s.as_bytes()[..s.len().min(255)];
        buf.push(b.len() as u8);
        buf.extend_from_slice(b);
    }

    fn longstr(buf: &mut Vec<u8>, b: &[u8]) {
        buf.extend_from_slice(&(b.len() as u32).to_be_bytes());
        buf.extend_from_slice(b);
    }

    /// A method frame: class and method ids, then the arguments.
    fn method(class: u16, method: u16, args: &[u8]) -> Vec<u8> {
        let mut p = Vec::with_capacity(4 + args.len());
        p.extend_from_slice(&class.to_be_bytes());
        p.extend_from_slice(&method.to_be_bytes());
        p.extend_from_slice(args);
        p
    }

    impl Connection {
        /// Connect, authenticate with PLAIN, open `vhost` and one channel.
        pub async fn open(
            addr: &str,
            user: &str,
            pass: &str,
            vhost: &str,
        ) -> Result<Connection, ScalerError> {
            let stream = TcpStream::connect(addr).await.map_err(io(addr))?;
            let mut c = Connection {
                stream,
                channel: 0,
                frame_max: 131_072,
            };
            c.stream
                .write_all(b"AMQP\x00\x00\x09\x01")
                .await
                .map_err(io(addr))?;
            let (class, m, _) = c.read_method().await?;
            if (class, m) != (10, 10) {
                return Err(ScalerError::Connect(format!(
                    "rabbitmq {addr}: expected connection.start, got {class}.{m}"
                )));
            }
            let mut args = Vec::new();
            args.extend_from_slice(&0u32.to_be_bytes()); // client-properties: empty table
            shortstr(&mut args, "PLAIN");
            longstr(&mut args, format!("\0{user}\0{pass}").as_bytes());
            shortstr(&mut args, "en_US");
            c.send(0, &method(10, 11, &args)).await?;
            let (class, m, body) = c.read_method().await?;
            if (class, m) != (10, 30) {
                return Err(ScalerError::Connect(format!(
                    "rabbitmq {addr}: authentication failed (expected connection.tune, got {class}.{m})"
                )));
            }
            let frame_max = body
                .get(2..6)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .unwrap_or(131_072);
            c.frame_max = if frame_max == 0 { 131_072 } else { frame_max };
            let mut args = Vec::new();
            args.extend_from_slice(body.get(0..2).unwrap_or(&[0, 0]));
            args.extend_from_slice(&c.frame_max.to_be_bytes());
            args.extend_from_slice(&0u16.to_be_bytes()); // no heartbeats: polls are short
            c.send(0, &method(10, 31, &args)).await?;
            let mut args = Vec::new();
            shortstr(&mut args, vhost);
            shortstr(&mut args, "");
            args.push(0);
            c.send(0, &method(10, 40, &args)).await?;
            let (class, m, _) = c.read_method().await?;
            if (class, m) != (10, 41) {
                return Err(ScalerError::Connect(format!(
                    "rabbitmq {addr}: cannot open vhost {vhost:?} (got {class}.{m})"
                )));
            }
            c.open_channel().await?;
            Ok(c)
        }

        async fn open_channel(&mut self) -> Result<(), ScalerError> {
            self.channel = self.channel.wrapping_add(1).max(1);
            let mut args = Vec::new();
            shortstr(&mut args, "");
            let ch = self.channel;
            self.send(ch, &method(20, 10, &args)).await?;
            let (class, m, _) = self.read_method().await?;
            if (class, m) != (20, 11) {
                return Err(ScalerError::Connect(format!(
                    "rabbitmq: cannot open a channel (got {class}.{m})"
                )));
            }
            Ok(())
        }

        /// `queue.declare` with `passive`: the queue's message count (ready messages), or
        /// the server's error (404 when the queue does not exist; the channel is then
        /// reopened for the next poll).
        pub async fn declare_passive(&mut self, queue: &str) -> Result<i64, ScalerError> {
            let mut args = Vec::new();
            args.extend_from_slice(&0u16.to_be_bytes());
            shortstr(&mut args, queue);
            args.push(0b0000_0001); // passive
            args.extend_from_slice(&0u32.to_be_bytes()); // arguments: empty table
            let ch = self.channel;
            self.send(ch, &method(50, 10, &args)).await?;
            let (class, m, body) = self.read_method().await?;
            match (class, m) {
                (50, 11) => {
                    let n = body.first().copied().unwrap_or(0) as usize;
                    let count = body
                        .get(1 + n..5 + n)
                        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                        .ok_or_else(|| ScalerError::Parse("short queue.declare-ok".into()))?;
                    Ok(i64::from(count))
                }
                (20, 40) => {
                    let code = body
                        .get(0..2)
                        .map(|b| u16::from_be_bytes([b[0], b[1]]))
                        .unwrap_or(0);
                    let n = body.get(2).copied().unwrap_or(0) as usize;
                    let text = String::from_utf8_lossy(body.get(3..3 + n).unwrap_or_default())
                        .into_owned();
                    // channel.close-ok, then a fresh channel for the next poll.
                    self.send(ch, &method(20, 41, &[])).await?;
                    self.open_channel().await?;
                    Err(ScalerError::Query(format!("rabbitmq: {code} {text}")))
                }
                (10, 50) => Err(ScalerError::Connect(
                    "rabbitmq closed the connection".into(),
                )),
                other => Err(ScalerError::Connect(format!(
                    "rabbitmq: unexpected method {other:?}"
                ))),
            }
        }

        async fn send(&mut self, channel: u16, payload: &[u8]) -> Result<(), ScalerError> {
            let mut f = Vec::with_capacity(8 + payload.len());
            f.push(FRAME_METHOD);
            f.extend_from_slice(&channel.to_be_bytes());
            f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            f.extend_from_slice(payload);
            f.push(FRAME_END);
            self.stream
                .write_all(&f)
                .await
                .map_err(|e| ScalerError::Connect(format!("rabbitmq: {e}")))
        }

        /// The next method frame (heartbeats skipped): class, method, arguments.
        async fn read_method(&mut self) -> Result<(u16, u16, Vec<u8>), ScalerError> {
            let err = |e: std::io::Error| ScalerError::Connect(format!("rabbitmq: {e}"));
            loop {
                let mut head = [0u8; 7];
                self.stream.read_exact(&mut head).await.map_err(err)?;
                let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]);
                if size > self.frame_max.max(131_072) {
                    return Err(ScalerError::Connect(format!(
                        "rabbitmq: frame of {size} bytes exceeds frame-max"
                    )));
                }
                let mut payload = vec![0u8; size as usize + 1];
                self.stream.read_exact(&mut payload).await.map_err(err)?;
                if payload.pop() != Some(FRAME_END) {
                    return Err(ScalerError::Connect("rabbitmq: bad frame end".into()));
                }
                match head[0] {
                    FRAME_HEARTBEAT => continue,
                    FRAME_METHOD if payload.len() >= 4 => {
                        let class = u16::from_be_bytes([payload[0], payload[1]]);
                        let m = u16::from_be_bytes([payload[2], payload[3]]);
                        return Ok((class, m, payload[4..].to_vec()));
                    }
                    t => {
                        return Err(ScalerError::Connect(format!(
                            "rabbitmq: unexpected frame type {t}"
                        )));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vhost_from_url_path() {
        assert_eq!(vhost_and_path("", None), ("/%2F".into(), String::new()));
        assert_eq!(vhost_and_path("/", None), ("/%2F".into(), String::new()));
        assert_eq!(
            vhost_and_path("/path/vhost", None),
            ("/vhost".into(), "/path".into())
        );
        assert_eq!(
            vhost_and_path("/x", Some("other")),
            ("/other".into(), String::new())
        );
    }

    #[test]
    fn modes_as_keda() {
        let s = QueueStatus {
            messages: 10,
            publish_rate: 4.0,
            deliver_get_rate: 2.0,
        };
        assert!(!sample(RabbitMode::QueueLength, 10.0, s).active);
        assert_eq!(sample(RabbitMode::MessageRate, 0.0, s).value, 4.0);
        assert_eq!(
            sample(RabbitMode::PublishedToDeliveredRatio, 0.0, s).value,
            2.0
        );
        // (4 - 2) / 2 + 10 / 2 = 6 seconds.
        assert_eq!(
            sample(RabbitMode::ExpectedQueueConsumptionTime, 0.0, s).value,
            6.0
        );
    }
}
