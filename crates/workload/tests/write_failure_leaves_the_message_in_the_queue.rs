//! A message is deleted only once its item is durable: when the write fails (here: the table
//! does not exist yet) the message stays, reappears after its visibility timeout, and is
//! stored once the table is back.

mod common;

use std::time::Duration;

use common::{TestServer, consume_cfg, within};
use workload::{Consumer, Transaction};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_keeps_the_message_until_a_later_delivery_stores_it() {
    let srv = TestServer::start().await;
    let c = srv.clients().await;
    let url = common::create_queue(&c, "q", &[]).await;
    let body = Transaction {
        transaction_id: "t-1".into(),
        account: "acct-0007".into(),
        amount: "99.95".into(),
        currency: "USD".into(),
        created_at: 1_764_000_000_000,
    }
    .to_json();
    c.sqs
        .send_message()
        .queue_url(&url)
        .message_body(body)
        .send()
        .await
        .expect("send");

    let mut cfg = consume_cfg(&url, "missing-table");
    cfg.visibility_timeout = Duration::from_secs(1);
    let consumer = Consumer::new(cfg, c.clone()).expect("config");
    let mut progress = consumer.progress();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(consumer.run(async {
        let _ = stopped.await;
    }));
    within(
        20,
        "a write failure",
        progress.wait_for(|p| p.report.write_failures >= 1),
    )
    .await
    .expect("consumer alive");
    let now = progress.borrow().report.clone();
    assert_eq!(now.deleted, 0, "{now:?}");
    assert_eq!(
        common::messages_in_queue(&c, &url).await,
        1,
        "the message was not deleted"
    );

    // The table appears; the message comes back after its visibility timeout and is stored.
    common::create_table(&c, "missing-table").await;
    within(
        20,
        "the retry to succeed",
        progress.wait_for(|p| p.report.deleted >= 1),
    )
    .await
    .expect("consumer alive");
    let _ = stop.send(());
    let r = within(10, "exit", run)
        .await
        .expect("join")
        .expect("consume");
    assert_eq!((r.written, r.deleted), (1, 1), "{r:?}");
    assert!(
        r.write_failures >= 1 && r.received == r.write_failures + 1,
        "{r:?}"
    );
    let items = common::scan_all(&c, "missing-table").await;
    assert_eq!(items.len(), 1);
    let rc: u64 = common::s(&items["t-1"], "receive_count")
        .parse()
        .expect("n");
    assert_eq!(rc, r.received, "the item records which delivery stored it");
    assert_eq!(common::messages_in_queue(&c, &url).await, 0);
    srv.stop().await;
}
