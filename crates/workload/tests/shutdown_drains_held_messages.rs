//! SIGTERM semantics: stop receiving, finish and delete what is held, give back what cannot
//! be finished within the grace period; plus the visibility heartbeat that keeps long work
//! from being redelivered, and the busy/idle status file the local twin reads.

mod common;

use std::time::Duration;

use common::{TestServer, consume_cfg, within};
use workload::{Consumer, Status, Transaction, read_status_file};

async fn send(c: &workload::Clients, url: &str, ids: impl IntoIterator<Item = String>) {
    for id in ids {
        let body = Transaction {
            transaction_id: id,
            account: "acct-0001".into(),
            amount: "5.00".into(),
            currency: "USD".into(),
            created_at: 1_764_000_000_000,
        }
        .to_json();
        c.sqs
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .expect("send");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_held_batch_and_receives_no_more() {
    let srv = TestServer::start().await;
    let c = srv.clients().await;
    let url = common::create_queue(&c, "q", &[]).await;
    common::create_table(&c, "txns").await;
    send(&c, &url, (0..8).map(|i| format!("m{i}"))).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let status_path = dir.path().join("status");

    let mut cfg = consume_cfg(&url, "txns");
    cfg.batch = 4;
    cfg.work.sleep = Duration::from_millis(400);
    cfg.status_file = Some(status_path.clone());
    let consumer = Consumer::new(cfg, c.clone()).expect("config");
    let mut progress = consumer.progress();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(consumer.run(async {
        let _ = stopped.await;
    }));
    // Stop while it holds its first batch and has not finished it.
    let p = within(10, "busy", progress.wait_for(|p| p.status == Status::Busy))
        .await
        .expect("consumer alive")
        .clone();
    assert_eq!(p.report.deleted, 0, "work takes 400 ms per message");
    assert_eq!(
        read_status_file(&status_path).expect("read"),
        Some(Status::Busy)
    );
    let held = p.report.received;
    assert!((1..=4).contains(&held), "{p:?}");
    let _ = stop.send(());
    let r = within(10, "exit", run)
        .await
        .expect("join")
        .expect("consume");

    assert_eq!(r.received, held, "no receive after shutdown: {r:?}");
    assert_eq!((r.deleted, r.written, r.released), (held, held, 0), "{r:?}");
    assert_eq!(common::scan_all(&c, "txns").await.len() as u64, held);
    assert_eq!(common::messages_in_queue(&c, &url).await, 8 - held);
    assert_eq!(
        read_status_file(&status_path).expect("read"),
        Some(Status::Idle)
    );
    // Idle again, now with what the finished messages took (each at least its 400 ms).
    let report = workload::read_status_report(&status_path)
        .expect("read")
        .expect("a report");
    let work = report.work.expect("a work time after finished messages");
    assert!(work >= Duration::from_millis(400), "{report:?}");
    assert_eq!(report.concurrency, 1);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_longer_than_the_grace_period_is_given_back_at_once() {
    let srv = TestServer::start().await;
    let c = srv.clients().await;
    let url = common::create_queue(&c, "q", &[]).await;
    common::create_table(&c, "txns").await;
    send(&c, &url, ["slow".to_string()]).await;

    let mut cfg = consume_cfg(&url, "txns");
    cfg.work.sleep = Duration::from_secs(3600);
    cfg.grace_period = Duration::from_millis(200);
    let consumer = Consumer::new(cfg, c.clone()).expect("config");
    let mut progress = consumer.progress();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(consumer.run(async {
        let _ = stopped.await;
    }));
    within(10, "busy", progress.wait_for(|p| p.status == Status::Busy))
        .await
        .expect("consumer alive");
    let _ = stop.send(());
    let r = within(10, "exit within the grace period", run)
        .await
        .expect("join")
        .expect("consume");
    assert_eq!((r.received, r.deleted, r.released), (1, 0, 1), "{r:?}");
    // Released, not left invisible for 30 s: another consumer gets it right away.
    let again = c
        .sqs
        .receive_message()
        .queue_url(&url)
        .send()
        .await
        .expect("receive");
    assert_eq!(
        again.messages().len(),
        1,
        "the message is visible again at once"
    );
    assert!(common::scan_all(&c, "txns").await.is_empty());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_keeps_long_work_invisible_to_other_consumers() {
    let srv = TestServer::start().await;
    let c = srv.clients().await;
    let url = common::create_queue(&c, "q", &[]).await;
    common::create_table(&c, "txns").await;
    send(&c, &url, ["long".to_string()]).await;

    // 2.5 s of work under a 1 s visibility timeout.
    let mut cfg = consume_cfg(&url, "txns");
    cfg.visibility_timeout = Duration::from_secs(1);
    cfg.work.sleep = Duration::from_millis(2500);
    let consumer = Consumer::new(cfg, c.clone()).expect("config");
    let mut progress = consumer.progress();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(consumer.run(async {
        let _ = stopped.await;
    }));
    within(10, "busy", progress.wait_for(|p| p.status == Status::Busy))
        .await
        .expect("consumer alive");
    // Another consumer polls for 2 s, well past the original 1 s timeout: nothing for it.
    let other = c
        .sqs
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(2)
        .send()
        .await
        .expect("receive");
    assert!(
        other.messages().is_empty(),
        "redelivered mid-work: {other:?}"
    );
    within(10, "delete", progress.wait_for(|p| p.report.deleted == 1))
        .await
        .expect("consumer alive");
    let _ = stop.send(());
    let r = within(10, "exit", run)
        .await
        .expect("join")
        .expect("consume");
    assert_eq!(
        (r.received, r.written, r.deleted, r.delete_failures),
        (1, 1, 1, 0)
    );
    assert!(r.visibility_extensions >= 2, "{r:?}");
    srv.stop().await;
}

/// A Job's consumer (`once`): one receive, the batch worked and deleted, then it exits on its
/// own; on an empty queue it exits after its one long poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_receives_one_batch_works_it_and_exits() {
    let srv = TestServer::start().await;
    let c = srv.clients().await;
    let url = common::create_queue(&c, "jobs", &[]).await;
    common::create_table(&c, "txns").await;
    send(&c, &url, (0..5).map(|i| format!("j{i}"))).await;

    let mut cfg = consume_cfg(&url, "txns");
    cfg.batch = 3;
    cfg.once = true;
    cfg.wait_time = Duration::from_secs(1);
    cfg.work.sleep = Duration::from_millis(10);
    // Never told to stop: it ends on its own.
    let r = within(
        10,
        "first job",
        workload::consume(cfg.clone(), c.clone(), std::future::pending()),
    )
    .await
    .expect("consume");
    assert!((1..=3).contains(&r.received), "{r:?}");
    assert_eq!((r.deleted, r.written), (r.received, r.received), "{r:?}");
    let left = 5 - r.received;
    assert_eq!(common::messages_in_queue(&c, &url).await, left);

    // Jobs until the queue is empty; then one that finds nothing exits after its long poll.
    let mut done = r.received;
    for _ in 0..10 {
        let r = within(
            10,
            "next job",
            workload::consume(cfg.clone(), c.clone(), std::future::pending()),
        )
        .await
        .expect("consume");
        done += r.deleted;
        if r.received == 0 {
            break;
        }
    }
    assert_eq!(done, 5);
    assert_eq!(common::scan_all(&c, "txns").await.len(), 5);
    assert_eq!(common::messages_in_queue(&c, &url).await, 0);
}
