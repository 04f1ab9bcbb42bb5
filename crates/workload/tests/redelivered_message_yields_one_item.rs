//! At-least-once delivery must not create a second item: a transaction delivered again
//! (a redelivery after a crash between write and delete, or a duplicate send) finds its item
//! and is deleted without touching it.

mod common;

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use common::{TestServer, consume_cfg, within};
use workload::{Consumer, Transaction};

fn tx(id: &str) -> Transaction {
    Transaction {
        transaction_id: id.into(),
        account: "acct-0001".into(),
        amount: "10.00".into(),
        currency: "EUR".into(),
        created_at: 1_764_000_000_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_delivered_twice_is_stored_once_and_both_deliveries_are_deleted() {
    let srv = TestServer::start().await;
    let c = srv.clients().await;
    let url = common::create_queue(&c, "q", &[]).await;
    common::create_table(&c, "txns").await;

    // "b" was already written by an earlier delivery whose consumer died before deleting.
    c.dynamodb
        .put_item()
        .table_name("txns")
        .item("transaction_id", AttributeValue::S("b".into()))
        .item("consumer", AttributeValue::S("earlier".into()))
        .send()
        .await
        .expect("seed item");
    for body in [tx("a"), tx("a"), tx("b")].map(|t| t.to_json()) {
        c.sqs
            .send_message()
            .queue_url(&url)
            .message_body(body)
            .send()
            .await
            .expect("send");
    }
    let mut cfg = consume_cfg(&url, "txns");
    cfg.consumer_id = "now".into();
    let consumer = Consumer::new(cfg, c.clone()).expect("config");
    let mut progress = consumer.progress();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(consumer.run(async {
        let _ = stopped.await;
    }));
    within(
        20,
        "three deletes",
        progress.wait_for(|p| p.report.deleted >= 3),
    )
    .await
    .expect("consumer alive");
    let _ = stop.send(());
    let r = within(10, "exit", run)
        .await
        .expect("join")
        .expect("consume");
    assert_eq!((r.written, r.duplicates, r.deleted), (1, 2, 3), "{r:?}");
    assert_eq!((r.poison, r.write_failures), (0, 0));

    let items = common::scan_all(&c, "txns").await;
    assert_eq!(items.len(), 2);
    assert_eq!(common::s(&items["a"], "consumer"), "now");
    // The earlier write wins; the redelivery did not overwrite it.
    assert_eq!(common::s(&items["b"], "consumer"), "earlier");
    assert!(!items["b"].contains_key("amount"));
    assert_eq!(common::messages_in_queue(&c, &url).await, 0);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_redelivered_after_its_visibility_timeout_is_not_stored_twice() {
    let srv = TestServer::start().await;
    let c = srv.clients().await;
    let url = common::create_queue(&c, "q", &[]).await;
    common::create_table(&c, "txns").await;
    c.sqs
        .send_message()
        .queue_url(&url)
        .message_body(tx("x").to_json())
        .send()
        .await
        .expect("send");
    // A first consumer receives it and "crashes" after writing: it never deletes, and its
    // 1 s visibility timeout lapses.
    let first = c
        .sqs
        .receive_message()
        .queue_url(&url)
        .visibility_timeout(1)
        .send()
        .await
        .expect("receive");
    assert_eq!(first.messages().len(), 1);
    c.dynamodb
        .put_item()
        .table_name("txns")
        .item("transaction_id", AttributeValue::S("x".into()))
        .item("consumer", AttributeValue::S("crashed".into()))
        .send()
        .await
        .expect("first write");

    let mut cfg = consume_cfg(&url, "txns");
    cfg.wait_time = Duration::from_secs(2);
    let consumer = Consumer::new(cfg, c.clone()).expect("config");
    let mut progress = consumer.progress();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(consumer.run(async {
        let _ = stopped.await;
    }));
    within(
        20,
        "the redelivery",
        progress.wait_for(|p| p.report.deleted >= 1),
    )
    .await
    .expect("consumer alive");
    let _ = stop.send(());
    let r = within(10, "exit", run)
        .await
        .expect("join")
        .expect("consume");
    assert_eq!((r.written, r.duplicates, r.deleted), (0, 1, 1), "{r:?}");
    let items = common::scan_all(&c, "txns").await;
    assert_eq!(items.len(), 1);
    assert_eq!(common::s(&items["x"], "consumer"), "crashed");
    assert_eq!(common::messages_in_queue(&c, &url).await, 0);
    srv.stop().await;
}
