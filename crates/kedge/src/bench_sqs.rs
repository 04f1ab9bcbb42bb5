//! `kedge bench sqs`: SQS throughput and latency against any endpoint.
//!
//! Sends N messages, then receives and deletes them all, and checks that every message came
//! back exactly once. Each connection is one HTTP/1.1 keep-alive client sending requests back
//! to back (AWS JSON 1.0, unsigned), so the figure measures the server, not a client SDK.
//! With `--prefill P`, P more messages are queued after the send phase and stay queued during
//! the receive phase, so receive cost can be compared at different queue depths.

#![allow(clippy::disallowed_methods)] // a benchmark measures wall-clock time by definition

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

#[derive(Args, Debug, Clone)]
pub struct SqsBenchArgs {
    /// Endpoint URL (kedge serve, moto_server, …).
    #[arg(long, default_value = "http://127.0.0.1:4566")]
    pub endpoint: String,
    /// Messages to send and then receive.
    #[arg(long, default_value_t = 100_000)]
    pub messages: usize,
    /// Messages per request (1 = SendMessage/DeleteMessage, 2–10 = the batch actions).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(1..=10))]
    pub batch: u8,
    /// Concurrent connections.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Extra messages queued before the receive phase and left queued during it.
    #[arg(long, default_value_t = 0)]
    pub prefill: usize,
    /// Message body size in bytes.
    #[arg(long, default_value_t = 100)]
    pub body_size: usize,
    /// Queue name (default: a fresh kedge-bench-<n> queue, deleted at the end).
    #[arg(long)]
    pub queue: Option<String>,
}

struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    authority: String,
    endpoint: hyper::Uri,
}

impl Conn {
    async fn open(endpoint: &hyper::Uri) -> anyhow::Result<Conn> {
        let host = endpoint.host().context("endpoint has no host")?;
        let port = endpoint.port_u16().unwrap_or(80);
        let stream = tokio::net::TcpStream::connect((host, port))
            .await
            .with_context(|| format!("connecting to {host}:{port}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn {
            sender,
            authority: format!("{host}:{port}"),
            endpoint: endpoint.clone(),
        })
    }

    async fn call(&mut self, action: &str, body: &Value) -> anyhow::Result<Value> {
        let req = hyper::Request::post("/")
            .header("host", &self.authority)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", format!("AmazonSQS.{action}"))
            // Unsigned, but naming the service: multi-service endpoints (moto_server) route
            // on the credential scope.
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(Full::new(Bytes::from(body.to_string())))?;
        // Servers without keep-alive (moto's dev server) close after each answer: reconnect.
        if self.sender.ready().await.is_err() {
            *self = Conn::open(&self.endpoint.clone()).await?;
        }
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!(
                "{action} failed with {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            // Some servers answer actions without output with an empty body.
            return Ok(Value::Object(Default::default()));
        }
        serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{action}: response is not JSON: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            )
        })
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

fn summary(lat: &mut [u64]) -> String {
    lat.sort_unstable();
    format!(
        "p50 {:.2} ms  p99 {:.2} ms",
        percentile(lat, 0.50),
        percentile(lat, 0.99)
    )
}

/// Send `count` messages numbered from `base` with `connections` workers.
#[allow(clippy::too_many_arguments)]
async fn send_phase(
    label: &str,
    uri: &hyper::Uri,
    url: &str,
    base: usize,
    count: usize,
    batch: usize,
    connections: usize,
    body_size: usize,
) -> anyhow::Result<Vec<u64>> {
    let next = Arc::new(AtomicUsize::new(0));
    let bar = crate::progress::Progress::new(label, count as u64);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let next = next.clone();
        let uri = uri.clone();
        let url = url.to_owned();
        let bar = bar.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(&uri).await?;
            let mut lat = Vec::new();
            loop {
                let start = next.fetch_add(batch, Ordering::Relaxed);
                if start >= count {
                    break;
                }
                let end = (start + batch).min(count);
                let body_of = |i: usize| {
                    let tag = format!("bench-{}|", base + i);
                    let pad = body_size.saturating_sub(tag.len());
                    format!("{tag}{}", "x".repeat(pad))
                };
                let t = Instant::now();
                if batch == 1 {
                    c.call(
                        "SendMessage",
                        &json!({"QueueUrl": url, "MessageBody": body_of(start)}),
                    )
                    .await?;
                } else {
                    let entries: Vec<Value> = (start..end)
                        .map(|i| json!({"Id": format!("m{i}"), "MessageBody": body_of(i)}))
                        .collect();
                    let r = c
                        .call(
                            "SendMessageBatch",
                            &json!({"QueueUrl": url, "Entries": entries}),
                        )
                        .await?;
                    if r["Failed"].as_array().is_some_and(|f| !f.is_empty()) {
                        bail!("SendMessageBatch reported failures: {}", r["Failed"]);
                    }
                }
                lat.push(t.elapsed().as_micros() as u64);
                bar.inc((end - start) as u64);
            }
            anyhow::Ok(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    bar.finish();
    Ok(all)
}

pub async fn run(a: SqsBenchArgs) -> anyhow::Result<()> {
    let uri: hyper::Uri = a.endpoint.parse().context("--endpoint is not a URL")?;
    if a.messages == 0 || a.connections == 0 {
        bail!("--messages and --connections must be at least 1");
    }
    let batch = a.batch as usize;
    let name = a.queue.clone().unwrap_or_else(|| {
        format!(
            "kedge-bench-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0)
        )
    });
    let mut admin = Conn::open(&uri).await?;
    let created = admin
        .call(
            "CreateQueue",
            &json!({"QueueName": name, "Attributes": {"VisibilityTimeout": "120"}}),
        )
        .await?;
    let url = created["QueueUrl"]
        .as_str()
        .context("CreateQueue returned no QueueUrl")?
        .to_owned();
    println!(
        "kedge bench sqs: endpoint={} queue={name} messages={} batch={batch} connections={} prefill={} body={}B",
        a.endpoint, a.messages, a.connections, a.prefill, a.body_size
    );

    // Phase 1: send.
    let t0 = Instant::now();
    let mut send_lat = send_phase(
        "send",
        &uri,
        &url,
        0,
        a.messages,
        batch,
        a.connections,
        a.body_size,
    )
    .await?;
    let send_s = t0.elapsed().as_secs_f64();
    println!(
        "send:           {:>9} msgs in {:>7.2} s = {:>9.0} msgs/s ({:.0} requests/s)  {}",
        a.messages,
        send_s,
        a.messages as f64 / send_s,
        send_lat.len() as f64 / send_s,
        summary(&mut send_lat)
    );

    // Prefill (not measured): these stay queued behind the measured messages.
    if a.prefill > 0 {
        let t = Instant::now();
        send_phase(
            "prefill",
            &uri,
            &url,
            a.messages,
            a.prefill,
            10,
            a.connections.max(8),
            a.body_size,
        )
        .await?;
        println!(
            "prefill:        {:>9} msgs queued in {:.2} s (left queued during receive)",
            a.prefill,
            t.elapsed().as_secs_f64()
        );
    }

    // Phase 2: receive + delete until every measured message came back.
    let seen: Arc<Vec<AtomicU8>> = Arc::new((0..a.messages).map(|_| AtomicU8::new(0)).collect());
    let received = Arc::new(AtomicU64::new(0));
    let duplicates = Arc::new(AtomicU64::new(0));
    let t1 = Instant::now();
    // When the last measured message's delete was answered (µs after `t1`): the phase's end.
    // Connections still in a long poll once the queue is empty wait up to its 1 s for
    // nothing; that wait is not the server's receive+delete time.
    let done_us = Arc::new(AtomicU64::new(0));
    let bar = crate::progress::Progress::new("receive+delete", a.messages as u64);
    let mut tasks = Vec::new();
    for _ in 0..a.connections {
        let (uri, url, seen, received, duplicates, bar, done_us) = (
            uri.clone(),
            url.clone(),
            seen.clone(),
            received.clone(),
            duplicates.clone(),
            bar.clone(),
            done_us.clone(),
        );
        let total = a.messages as u64;
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(&uri).await?;
            let (mut rlat, mut dlat) = (Vec::new(), Vec::new());
            let mut idle_since: Option<Instant> = None;
            while received.load(Ordering::Relaxed) < total {
                let t = Instant::now();
                let r = c
                    .call(
                        "ReceiveMessage",
                        &json!({"QueueUrl": url, "MaxNumberOfMessages": batch, "WaitTimeSeconds": 1}),
                    )
                    .await?;
                rlat.push(t.elapsed().as_micros() as u64);
                let msgs = r["Messages"].as_array().cloned().unwrap_or_default();
                if msgs.is_empty() {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(30) {
                        break;
                    }
                    continue;
                }
                idle_since = None;
                let mut handles = Vec::new();
                for m in &msgs {
                    let body = m["Body"].as_str().unwrap_or("");
                    if let Some(i) = body
                        .strip_prefix("bench-")
                        .and_then(|r| r.split('|').next())
                        .and_then(|n| n.parse::<usize>().ok())
                        && i < seen.len()
                    {
                        if seen[i].fetch_add(1, Ordering::Relaxed) == 0 {
                            received.fetch_add(1, Ordering::Relaxed);
                        } else {
                            duplicates.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    handles.push(m["ReceiptHandle"].as_str().unwrap_or("").to_owned());
                }
                let t = Instant::now();
                if batch == 1 {
                    for h in handles {
                        c.call("DeleteMessage", &json!({"QueueUrl": url, "ReceiptHandle": h}))
                            .await?;
                    }
                } else {
                    let entries: Vec<Value> = handles
                        .iter()
                        .enumerate()
                        .map(|(i, h)| json!({"Id": format!("d{i}"), "ReceiptHandle": h}))
                        .collect();
                    let r = c
                        .call("DeleteMessageBatch", &json!({"QueueUrl": url, "Entries": entries}))
                        .await?;
                    if r["Failed"].as_array().is_some_and(|f| !f.is_empty()) {
                        bail!("DeleteMessageBatch reported failures: {}", r["Failed"]);
                    }
                }
                dlat.push(t.elapsed().as_micros() as u64);
                if received.load(Ordering::Relaxed) >= total {
                    done_us.fetch_max(t1.elapsed().as_micros() as u64, Ordering::Relaxed);
                }
                bar.set(received.load(Ordering::Relaxed));
            }
            anyhow::Ok((rlat, dlat))
        }));
    }
    let (mut rlat, mut dlat) = (Vec::new(), Vec::new());
    for t in tasks {
        let (r, d) = t.await??;
        rlat.extend(r);
        dlat.extend(d);
    }
    bar.finish();
    let recv_s = match done_us.load(Ordering::Relaxed) {
        0 => t1.elapsed().as_secs_f64(),
        us => us as f64 / 1e6,
    };
    let got = received.load(Ordering::Relaxed);
    println!(
        "receive+delete: {:>9} msgs in {:>7.2} s = {:>9.0} msgs/s  receive {}  delete {}",
        got,
        recv_s,
        got as f64 / recv_s,
        summary(&mut rlat),
        summary(&mut dlat)
    );
    let missing = a.messages as u64 - got;
    let dups = duplicates.load(Ordering::Relaxed);
    println!(
        "verified:       {got}/{} messages came back ({missing} missing, {dups} received more than once)",
        a.messages
    );
    if a.queue.is_none() {
        admin
            .call("DeleteQueue", &json!({"QueueUrl": url}))
            .await
            .ok();
    }
    if missing > 0 {
        bail!("{missing} messages never came back");
    }
    Ok(())
}
