//! A body that is not a transaction is never deleted by the consumer; the queue's redrive
//! policy moves it to the dead-letter queue after `maxReceiveCount` receives, while good
//! messages around it are stored.

mod common;

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use common::{TestServer, consume_cfg, within};
use workload::{Consumer, Transaction};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_is_redriven_to_the_dlq_and_good_messages_are_stored() {
    let srv = TestServer::start().await;
    let c = srv.clients().await;
    let dlq = common::create_queue(&c, "q-dlq", &[]).await;
    let dlq_arn = common::queue_arn(&c, &dlq).await;
    let redrive = format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"2"}}"#);
    let url = common::create_queue(&c, "q", &[(QueueAttributeName::RedrivePolicy, redrive)]).await;
    common::create_table(&c, "txns").await;
    let good = Transaction {
        transaction_id: "good".into(),
        account: "acct-0001".into(),
        amount: "1.00".into(),
        currency: "GBP".into(),
        created_at: 1_764_000_000_000,
    };
    for body in [
        "{not json".to_string(),
        good.to_json(),
        r#"{"transaction_id":"x","account":"a","amount":"lots","currency":"EUR","created_at":1}"#
            .to_string(),
    ] {
        c.sqs
            .send_message()
            .queue_url(&url)
            .message_body(body)
            .send()
            .await
            .expect("send");
    }

    let mut cfg = consume_cfg(&url, "txns");
    cfg.visibility_timeout = Duration::from_secs(1);
    let consumer = Consumer::new(cfg, c.clone()).expect("config");
    let progress = consumer.progress();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(consumer.run(async {
        let _ = stopped.await;
    }));

    // Both poison messages are received maxReceiveCount (2) times, then the next receive
    // moves them to the DLQ. Poll the DLQ until both are there.
    let mut in_dlq = Vec::new();
    within(30, "two messages in the DLQ", async {
        while in_dlq.len() < 2 {
            let out = c
                .sqs
                .receive_message()
                .queue_url(&dlq)
                .max_number_of_messages(10)
                .wait_time_seconds(2)
                .visibility_timeout(60)
                .send()
                .await
                .expect("receive dlq");
            in_dlq.extend(
                out.messages()
                    .iter()
                    .filter_map(|m| m.body().map(str::to_string)),
            );
        }
    })
    .await;
    let _ = stop.send(());
    let r = within(10, "exit", run)
        .await
        .expect("join")
        .expect("consume");
    in_dlq.sort();
    assert!(
        in_dlq[0].starts_with("{\"transaction_id\":\"x\""),
        "{in_dlq:?}"
    );
    assert_eq!(in_dlq[1], "{not json");
    assert_eq!(r.poison, 4, "each poison message received twice: {r:?}");
    assert_eq!((r.written, r.deleted), (1, 1), "{r:?}");
    assert_eq!(progress.borrow().report, r);
    let items = common::scan_all(&c, "txns").await;
    assert_eq!(items.keys().collect::<Vec<_>>(), vec!["good"]);
    assert_eq!(common::messages_in_queue(&c, &url).await, 0);
    srv.stop().await;
}
