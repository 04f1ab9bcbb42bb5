//! `kedge bench dynamodb`: DynamoDB throughput and latency against any endpoint.
//!
//! Phases, each over `--connections` HTTP/1.1 keep-alive connections sending AWS JSON 1.0
//! requests back to back (unsigned, so the figure measures the server rather than an SDK):
//! PutItem (N single items), GetItem (N random single-item reads, every one checked),
//! Query (partitions of 100 items, `Limit` 25) and BatchWriteItem (N more items, 25 per
//! request). Prints items/s and p50/p99 latency per phase.

#![allow(clippy::disallowed_methods)] // a benchmark measures wall-clock time by definition

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

#[derive(Args, Debug, Clone)]
pub struct DynamoBenchArgs {
    /// Endpoint URL (kedge serve, dynalite, moto_server, DynamoDB Local …).
    #[arg(long, default_value = "http://127.0.0.1:4566")]
    pub endpoint: String,
    /// Items written by PutItem (and again by BatchWriteItem); GetItem reads this many.
    #[arg(long, default_value_t = 50_000)]
    pub items: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Queries in the Query phase (default: items / 10).
    #[arg(long)]
    pub queries: Option<usize>,
    /// Size of each item's payload attribute, in bytes.
    #[arg(long, default_value_t = 100)]
    pub item_size: usize,
}

struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    authority: String,
    uri: hyper::Uri,
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
            uri: endpoint.clone(),
        })
    }

    async fn call(&mut self, op: &str, body: &Value) -> anyhow::Result<Value> {
        // Servers that close after each response (moto's werkzeug) get a fresh connection.
        if self.sender.is_closed() || self.sender.ready().await.is_err() {
            *self = Conn::open(&self.uri).await?;
        }
        let req = hyper::Request::post("/")
            .header("host", &self.authority)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", format!("DynamoDB_20120810.{op}"))
            // Some emulators (dynalite) insist on an Authorization header being present.
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=bench/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
            )
            .header("x-amz-date", "20200101T000000Z")
            .body(Full::new(Bytes::from(body.to_string())))?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!(
                "{op} failed with {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok(serde_json::from_slice(&bytes)?)
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

fn item(prefix: &str, i: usize, pad: &str) -> Value {
    json!({
        "pk": {"S": format!("{prefix}{}", i / 100)},
        "sk": {"N": (i % 100).to_string()},
        "n": {"N": i.to_string()},
        "data": {"S": pad},
    })
}

/// Run `count` units of work over `connections` connections; each unit is one request
/// built by `make(conn, unit)`. Returns per-request latencies in microseconds.
async fn phase<F, Fut>(
    label: &str,
    uri: &hyper::Uri,
    connections: usize,
    count: usize,
    step: usize,
    make: F,
) -> anyhow::Result<Vec<u64>>
where
    F: Fn(Conn, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<Conn>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let make = Arc::new(make);
    let bar = crate::progress::Progress::new(label, count as u64);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (next, make, uri, bar) = (next.clone(), make.clone(), uri.clone(), bar.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(&uri).await?;
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(step, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let t = Instant::now();
                c = make(c, i).await?;
                lat.push(t.elapsed().as_micros() as u64);
                bar.inc(step.min(count - i) as u64);
            }
            anyhow::Ok(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    bar.finish();
    all.sort_unstable();
    Ok(all)
}

fn report(name: &str, units: usize, unit: &str, secs: f64, lat: &[u64]) {
    println!(
        "{name:<15} {units:>9} {unit} in {secs:>7.2} s = {:>9.0} {unit}/s  p50 {:.2} ms  p99 {:.2} ms",
        units as f64 / secs,
        percentile(lat, 0.50),
        percentile(lat, 0.99)
    );
}

pub async fn run(a: DynamoBenchArgs) -> anyhow::Result<()> {
    let uri: hyper::Uri = a.endpoint.parse().context("--endpoint is not a URL")?;
    if a.items == 0 || a.connections == 0 {
        bail!("--items and --connections must be at least 1");
    }
    let table = format!(
        "kedge-bench-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    );
    let mut admin = Conn::open(&uri).await?;
    admin
        .call(
            "CreateTable",
            &json!({
                "TableName": table,
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                "ProvisionedThroughput": {"ReadCapacityUnits": 1000, "WriteCapacityUnits": 1000}
            }),
        )
        .await?;
    // Emulators that model table creation (dynalite) need a moment before the table is ACTIVE.
    for _ in 0..100 {
        let d = admin
            .call("DescribeTable", &json!({"TableName": table}))
            .await?;
        if d["Table"]["TableStatus"] == "ACTIVE" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    println!(
        "kedge bench dynamodb: endpoint={} table={table} items={} connections={} item={}B",
        a.endpoint, a.items, a.connections, a.item_size
    );
    let pad: Arc<str> = Arc::from("x".repeat(a.item_size));
    let n = a.items;

    let (t, p) = (table.clone(), pad.clone());
    let start = Instant::now();
    let lat = phase("PutItem", &uri, a.connections, n, 1, move |mut c, i| {
        let body = json!({"TableName": t, "Item": item("p", i, &p)});
        async move {
            c.call("PutItem", &body).await?;
            Ok(c)
        }
    })
    .await?;
    report("PutItem", n, "items", start.elapsed().as_secs_f64(), &lat);

    let t = table.clone();
    let start = Instant::now();
    let lat = phase("GetItem", &uri, a.connections, n, 1, move |mut c, i| {
        // A cheap deterministic shuffle so reads do not follow write order.
        let k = (i.wrapping_mul(2_654_435_761)) % n;
        let body = json!({"TableName": t, "Key": {"pk": {"S": format!("p{}", k / 100)}, "sk": {"N": (k % 100).to_string()}}});
        async move {
            let r = c.call("GetItem", &body).await?;
            if r["Item"]["n"]["N"].as_str() != Some(k.to_string().as_str()) {
                bail!("GetItem returned the wrong item for {k}: {r}");
            }
            Ok(c)
        }
    })
    .await?;
    report("GetItem", n, "items", start.elapsed().as_secs_f64(), &lat);

    let queries = a.queries.unwrap_or((n / 10).max(1));
    let parts = n.div_ceil(100);
    let t = table.clone();
    let start = Instant::now();
    let lat = phase("Query", &uri, a.connections, queries, 1, move |mut c, i| {
        let part = (i.wrapping_mul(40_503)) % parts;
        let body = json!({
            "TableName": t,
            "KeyConditionExpression": "pk = :p AND sk >= :lo",
            "ExpressionAttributeValues": {":p": {"S": format!("p{part}")}, ":lo": {"N": ((i % 4) * 10).to_string()}},
            "Limit": 25
        });
        async move {
            let r = c.call("Query", &body).await?;
            if r["Count"].as_u64().unwrap_or(0) == 0 {
                bail!("Query returned nothing for partition {part}: {r}");
            }
            Ok(c)
        }
    })
    .await?;
    report(
        "Query",
        queries,
        "queries",
        start.elapsed().as_secs_f64(),
        &lat,
    );

    let (t, p) = (table.clone(), pad.clone());
    let start = Instant::now();
    let lat = phase(
        "BatchWriteItem",
        &uri,
        a.connections,
        n,
        25,
        move |mut c, i| {
            let reqs: Vec<Value> = (i..(i + 25).min(n))
                .map(|j| json!({"PutRequest": {"Item": item("b", j, &p)}}))
                .collect();
            let body = json!({"RequestItems": {t.clone(): reqs}});
            async move {
                let r = c.call("BatchWriteItem", &body).await?;
                if r["UnprocessedItems"]
                    .as_object()
                    .is_some_and(|u| !u.is_empty())
                {
                    bail!("BatchWriteItem left items unprocessed");
                }
                Ok(c)
            }
        },
    )
    .await?;
    report(
        "BatchWriteItem",
        n,
        "items",
        start.elapsed().as_secs_f64(),
        &lat,
    );

    admin
        .call("DeleteTable", &json!({"TableName": table}))
        .await
        .ok();
    Ok(())
}
