//! SIGKILL `kedge serve` while DynamoDB writes are in flight, restart it on the same data
//! directory, and check that every acknowledged write survived: every acknowledged PutItem
//! is there with its value, and every counter is at least its number of acknowledged ADDs
//! (and at most the number attempted: an unacknowledged write may or may not have landed).

#![allow(clippy::disallowed_methods)] // the test bounds its own wall-clock run time

#[path = "common/serve.rs"]
mod serve;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

fn start(dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kedge"))
        // No CREATING phase: the writers start right after CreateTable.
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--table-status-delay-ms",
            "0",
            "--data-dir",
        ])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kedge serve");
    let url = serve::listening_url(&mut child);
    (child, url)
}

struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(url: &str) -> Conn {
        let addr = url.trim_start_matches("http://").to_string();
        let stream = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("handshake");
        tokio::spawn(conn);
        Conn { sender }
    }

    /// Ok(body) on 200, Err on anything else (including the connection dying).
    async fn call(&mut self, op: &str, body: &Value) -> Result<Value, String> {
        let req = hyper::Request::post("/")
            .header("host", "localhost")
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", format!("DynamoDB_20120810.{op}"))
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| e.to_string())?;
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("{status}: {}", String::from_utf8_lossy(&bytes)));
        }
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    }
}

const WRITERS: usize = 8;
const COUNTERS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_write_load_loses_no_acknowledged_item() {
    // A private data directory (std only: this crate has no tempfile dev-dependency).
    let dir = std::env::temp_dir().join(format!("kedge-ddb-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut child, url) = start(&dir);
    let mut admin = Conn::open(&url).await;
    admin
        .call(
            "CreateTable",
            &json!({
                "TableName": "crash",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "BillingMode": "PAY_PER_REQUEST"
            }),
        )
        .await
        .expect("create table");

    let stop = Arc::new(AtomicBool::new(false));
    let attempted: Arc<Vec<AtomicU64>> =
        Arc::new((0..COUNTERS).map(|_| AtomicU64::new(0)).collect());
    let acked_adds: Arc<Vec<AtomicU64>> =
        Arc::new((0..COUNTERS).map(|_| AtomicU64::new(0)).collect());
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (url, stop, attempted, acked_adds) = (
            url.clone(),
            stop.clone(),
            attempted.clone(),
            acked_adds.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(&url).await;
            let mut acked = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let r = if i.is_multiple_of(4) {
                    let k = (w + i as usize) % COUNTERS;
                    attempted[k].fetch_add(1, Ordering::SeqCst);
                    let r = c
                        .call(
                            "UpdateItem",
                            &json!({"TableName": "crash", "Key": {"pk": {"S": format!("counter-{k}")}}, "UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}),
                        )
                        .await;
                    if r.is_ok() {
                        acked_adds[k].fetch_add(1, Ordering::SeqCst);
                    }
                    r
                } else {
                    let key = format!("w{w}-{i}");
                    let r = c
                        .call(
                            "PutItem",
                            &json!({"TableName": "crash", "Item": {"pk": {"S": key}, "v": {"N": i.to_string()}, "pad": {"S": "x".repeat(200)}}}),
                        )
                        .await;
                    if r.is_ok() {
                        acked.push((key, i));
                    }
                    r
                };
                if r.is_err() {
                    break; // the server is gone
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().expect("SIGKILL"); // std's kill() is SIGKILL on Unix
    child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert!(
        acked.len() > 100,
        "too little load to mean anything: {} acknowledged puts",
        acked.len()
    );

    let (mut child, url) = start(&dir);
    let mut c = Conn::open(&url).await;
    let mut missing = Vec::new();
    for chunk in acked.chunks(100) {
        let keys: Vec<Value> = chunk.iter().map(|(k, _)| json!({"pk": {"S": k}})).collect();
        let r = c
            .call(
                "BatchGetItem",
                &json!({"RequestItems": {"crash": {"Keys": keys}}}),
            )
            .await
            .expect("batch get");
        let got: std::collections::HashMap<String, String> = r["Responses"]["crash"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["pk"]["S"].as_str().unwrap().to_string(),
                    i["v"]["N"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        for (k, v) in chunk {
            if got.get(k) != Some(&v.to_string()) {
                missing.push(k.clone());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} acknowledged items lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    for k in 0..COUNTERS {
        let r = c
            .call(
                "GetItem",
                &json!({"TableName": "crash", "Key": {"pk": {"S": format!("counter-{k}")}}}),
            )
            .await
            .unwrap();
        let n: u64 = r["Item"]["n"]["N"]
            .as_str()
            .map_or(0, |s| s.parse().unwrap());
        let (lo, hi) = (
            acked_adds[k].load(Ordering::SeqCst),
            attempted[k].load(Ordering::SeqCst),
        );
        assert!(
            lo <= n && n <= hi,
            "counter-{k} = {n}, acknowledged {lo}, attempted {hi}"
        );
    }
    child.kill().ok();
    child.wait().ok();
    let _ = std::fs::remove_dir_all(&dir);
}
