//! A real gateway on a free loopback port, in-process (the pattern of
//! `crates/gateway/tests/common/mod.rs`), plus queue/table helpers for workload tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use clock::{Clock, SystemClock};

pub struct TestServer {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// A durable server (fsync'd SQLite in a temporary directory), as `kedge serve` runs.
    pub async fn start() -> TestServer {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store::Store::open(&store::Durability::Disk(dir.path().to_path_buf()), clock)
            .expect("open store");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (state, stop_tx) = gateway::AppState::new(store, gateway::Config::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            gateway::serve(
                listener,
                state,
                async {
                    let _ = rx.await;
                },
                stop_tx,
            )
            .await
            .expect("serve");
        });
        TestServer {
            url: format!("http://{addr}"),
            stop: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    pub async fn clients(&self) -> workload::Clients {
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .load()
            .await;
        workload::Clients::from_sdk_config(&conf)
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

pub async fn create_queue(
    c: &workload::Clients,
    name: &str,
    attrs: &[(QueueAttributeName, String)],
) -> String {
    let mut req = c.sqs.create_queue().queue_name(name);
    for (k, v) in attrs {
        req = req.attributes(k.clone(), v);
    }
    req.send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url")
}

pub async fn queue_arn(c: &workload::Clients, url: &str) -> String {
    queue_attrs(c, url).await[&QueueAttributeName::QueueArn].clone()
}

pub async fn queue_attrs(c: &workload::Clients, url: &str) -> HashMap<QueueAttributeName, String> {
    c.sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .unwrap_or_default()
}

/// Visible + in flight + delayed: every message still in the queue.
pub async fn messages_in_queue(c: &workload::Clients, url: &str) -> u64 {
    let a = queue_attrs(c, url).await;
    [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        QueueAttributeName::ApproximateNumberOfMessagesDelayed,
    ]
    .iter()
    .map(|k| a.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0))
    .sum()
}

/// The table the consumer expects: partition key `transaction_id` (S).
pub async fn create_table(c: &workload::Clients, name: &str) {
    c.dynamodb
        .create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("transaction_id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attr"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("transaction_id")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create table");
}

/// Every item of the table, by transaction id.
pub async fn scan_all(
    c: &workload::Clients,
    table: &str,
) -> HashMap<String, HashMap<String, AttributeValue>> {
    let mut out = HashMap::new();
    let mut start = None;
    loop {
        let page = c
            .dynamodb
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        for item in page.items.unwrap_or_default() {
            let id = match item.get("transaction_id") {
                Some(AttributeValue::S(s)) => s.clone(),
                other => panic!("item without a string key: {other:?}"),
            };
            assert!(out.insert(id, item).is_none(), "scan returned a key twice");
        }
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return out,
        }
    }
}

pub fn s(item: &HashMap<String, AttributeValue>, k: &str) -> String {
    match item.get(k) {
        Some(AttributeValue::S(v)) | Some(AttributeValue::N(v)) => v.clone(),
        other => panic!("attribute {k}: {other:?}"),
    }
}

/// Awaits `f` but fails the test if it takes longer than `secs` (a hang is a failure, not a
/// stuck CI job).
pub async fn within<T>(secs: u64, what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("timed out after {secs} s waiting for {what}"))
}

/// A consume config for tests: no simulated work, short polls, quick heartbeat.
pub fn consume_cfg(queue_url: &str, table: &str) -> workload::ConsumeConfig {
    let mut cfg = workload::ConsumeConfig::new(queue_url, table);
    cfg.work = workload::Work {
        sleep: Duration::ZERO,
        cpu: Duration::ZERO,
    };
    cfg.wait_time = Duration::from_secs(1);
    cfg
}
