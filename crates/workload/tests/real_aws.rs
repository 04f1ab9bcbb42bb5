//! The same pipeline against real AWS. Ignored by default (it needs an account); run with
//!
//! ```sh
//! SQS_QUEUE_URL=https://sqs.eu-west-1.amazonaws.com/123456789012/tx \
//! DYNAMODB_TABLE=tx AWS_REGION=eu-west-1 \
//!   cargo test -p workload --test real_aws -- --ignored
//! ```
//!
//! The queue should be empty and the table must have partition key `transaction_id` (S).
//! Credentials come from the standard chain.

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use workload::{Clients, ConsumeConfig, Consumer, ProduceConfig, Schedule, Work};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs an AWS account: SQS_QUEUE_URL, DYNAMODB_TABLE, AWS_REGION and credentials"]
async fn produce_and_consume_against_real_aws() {
    let queue_url = std::env::var("SQS_QUEUE_URL").expect("SQS_QUEUE_URL");
    let table = std::env::var("DYNAMODB_TABLE").expect("DYNAMODB_TABLE");
    let clients = Clients::from_env().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ack_log = dir.path().join("acked.txt");

    let mut p = ProduceConfig::new(&queue_url);
    p.schedule = Schedule::constant(10.0);
    p.count = Some(10);
    p.batch = 5;
    p.ack_log = Some(ack_log.clone());
    let report = workload::produce(p, clients.clone(), std::future::pending())
        .await
        .expect("produce");
    assert_eq!((report.sent, report.failed), (10, 0));

    let mut c = ConsumeConfig::new(&queue_url, &table);
    c.work = Work {
        sleep: Duration::ZERO,
        cpu: Duration::ZERO,
    };
    c.wait_time = Duration::from_secs(5);
    let consumer = Consumer::new(c, clients.clone()).expect("config");
    let mut progress = consumer.progress();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(consumer.run(async {
        let _ = stopped.await;
    }));
    tokio::time::timeout(
        Duration::from_secs(120),
        progress.wait_for(|p| p.report.deleted >= 10),
    )
    .await
    .expect("10 deletes within 2 minutes")
    .expect("consumer alive");
    let _ = stop.send(());
    let r = run.await.expect("join").expect("consume");
    assert_eq!(r.write_failures, 0, "{r:?}");

    let acked: HashSet<String> = std::fs::read_to_string(&ack_log)
        .expect("ack log")
        .lines()
        .map(str::to_string)
        .collect();
    for id in &acked {
        let item = clients
            .dynamodb
            .get_item()
            .table_name(&table)
            .key("transaction_id", AttributeValue::S(id.clone()))
            .consistent_read(true)
            .send()
            .await
            .expect("get item");
        assert!(item.item.is_some(), "transaction {id} not stored");
    }
}
