//! What a message costs a consumer: the mean wall time of its finished messages (work, write,
//! delete) on `Progress::work` and in the status file, with its concurrency; poison messages
//! do not count.

mod common;

use std::time::Duration;

use common::{TestServer, consume_cfg, within};
use workload::{Consumer, Status, Transaction};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_messages_report_at_least_their_work_time_and_poison_does_not_count() {
    let srv = TestServer::start().await;
    let c = srv.clients().await;
    let url = common::create_queue(&c, "q", &[]).await;
    common::create_table(&c, "txns").await;
    // A poison body first: handled at once, it would pull the mean below the sleep if it
    // counted (whichever position it takes among the samples).
    c.sqs
        .send_message()
        .queue_url(&url)
        .message_body("not a transaction")
        .send()
        .await
        .expect("send");
    for i in 0..4 {
        let body = Transaction {
            transaction_id: format!("t{i}"),
            account: "acct-0001".into(),
            amount: "5.00".into(),
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
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let status_path = dir.path().join("status");
    let sleep = Duration::from_millis(200);
    let mut cfg = consume_cfg(&url, "txns");
    cfg.concurrency = 2;
    cfg.work.sleep = sleep;
    cfg.status_file = Some(status_path.clone());
    let consumer = Consumer::new(cfg, c.clone()).expect("config");
    let mut progress = consumer.progress();
    assert_eq!(progress.borrow().work, None, "nothing finished yet");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(consumer.run(async {
        let _ = stopped.await;
    }));

    // The first finished message sets the figure.
    let p = within(
        10,
        "a finished message",
        progress.wait_for(|p| p.report.deleted >= 1),
    )
    .await
    .expect("consumer alive")
    .clone();
    assert!(p.work.is_some_and(|w| w >= sleep), "{p:?}");

    let p = within(
        10,
        "all finished and idle",
        progress.wait_for(|p| {
            p.report.deleted == 4 && p.report.poison == 1 && p.status == Status::Idle
        }),
    )
    .await
    .expect("consumer alive")
    .clone();
    let work = p.work.expect("a work time");
    // A work time of 200 ms and a loopback write and delete: well under a second more.
    assert!(
        work >= sleep && work < sleep + Duration::from_secs(1),
        "{p:?}"
    );

    // The file says the same (as of the transition to idle, after the last message).
    let report = workload::read_status_report(&status_path)
        .expect("read")
        .expect("a report");
    assert_eq!(report.status, Status::Idle);
    assert_eq!(report.concurrency, 2);
    let in_file = report.work.expect("work-ms");
    assert!(
        in_file.abs_diff(work) <= Duration::from_millis(1),
        "file {in_file:?} vs progress {work:?}"
    );
    let per_message = report.per_message().expect("per message");
    assert_eq!(
        per_message,
        in_file / 2,
        "two at once halve the cost of one"
    );
    assert!(per_message >= sleep / 2, "{report:?}");
    let text = std::fs::read_to_string(&status_path).expect("read");
    assert!(text.starts_with("idle\nwork-ms "), "{text:?}");

    let _ = stop.send(());
    within(10, "exit", run)
        .await
        .expect("join")
        .expect("consume");
    srv.stop().await;
}
