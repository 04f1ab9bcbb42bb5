//! The whole sample pipeline against a real in-process gateway: `produce` N → several
//! `consume` → exactly the acknowledged transactions are in the table, once each.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use common::{TestServer, consume_cfg, within};
use workload::{Consumer, ProduceConfig, Schedule, Transaction};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn produced_transactions_end_up_in_the_table_exactly_once() {
    let srv = TestServer::start().await;
    let c = srv.clients().await;
    let url = common::create_queue(&c, "transactions", &[]).await;
    common::create_table(&c, "transactions").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ack_log = dir.path().join("acked.txt");

    let mut pcfg = ProduceConfig::new(&url);
    pcfg.schedule = Schedule::constant(2000.0);
    pcfg.count = Some(120);
    pcfg.batch = 10;
    pcfg.seed = Some(42);
    pcfg.ack_log = Some(ack_log.clone());
    let report = within(
        30,
        "produce",
        workload::produce(pcfg, c.clone(), std::future::pending()),
    )
    .await
    .expect("produce");
    assert_eq!((report.sent, report.failed, report.groups), (120, 0, None));
    let acked: Vec<String> = std::fs::read_to_string(&ack_log)
        .expect("ack log")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(acked.len(), 120);
    let acked: HashSet<String> = acked.into_iter().collect();
    assert_eq!(acked.len(), 120, "transaction ids are unique");

    // Three consumers share the queue, as replicas of a Deployment would.
    let mut runs = Vec::new();
    let mut watchers = Vec::new();
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    for i in 0..3 {
        let mut cfg = consume_cfg(&url, "transactions");
        cfg.consumer_id = format!("c{i}");
        cfg.concurrency = 4;
        let consumer = Consumer::new(cfg, c.clone()).expect("config");
        watchers.push(consumer.progress());
        let mut stop = stop_tx.subscribe();
        runs.push(tokio::spawn(consumer.run(async move {
            let _ = stop.recv().await;
        })));
    }
    within(30, "all 120 deleted", async {
        loop {
            let deleted: u64 = watchers.iter().map(|w| w.borrow().report.deleted).sum();
            if deleted >= 120 {
                break;
            }
            // Any consumer's progress change re-checks the sum.
            let futs = watchers.iter_mut().map(|w| Box::pin(w.changed()));
            let _ = futures_select_any(futs.collect()).await;
        }
    })
    .await;
    let _ = stop_tx.send(());
    let mut total = workload::ConsumeReport::default();
    for r in runs {
        let r = within(10, "consumer exit", r)
            .await
            .expect("join")
            .expect("consume");
        total.received += r.received;
        total.written += r.written;
        total.deleted += r.deleted;
        total.duplicates += r.duplicates;
        assert_eq!(
            (r.poison, r.write_failures, r.delete_failures),
            (0, 0, 0),
            "{r:?}"
        );
    }
    assert_eq!(total.written + total.duplicates, total.deleted);
    assert_eq!(total.deleted, 120, "{total:?}");

    let items = common::scan_all(&c, "transactions").await;
    let stored: HashSet<String> = items.keys().cloned().collect();
    assert_eq!(
        stored, acked,
        "the table holds exactly the acknowledged transactions"
    );
    for item in items.values() {
        let created: u64 = common::s(item, "created_at").parse().expect("created_at");
        let written: u64 = common::s(item, "written_at").parse().expect("written_at");
        assert!(
            written >= created,
            "written_at {written} before created_at {created}"
        );
        assert!(["c0", "c1", "c2"].contains(&common::s(item, "consumer").as_str()));
        assert!(common::s(item, "amount").parse::<f64>().is_ok());
        assert_eq!(common::s(item, "currency").len(), 3);
    }
    assert_eq!(common::messages_in_queue(&c, &url).await, 0);
    srv.stop().await;
}

/// Resolves when the first of the futures does (a tiny `select_all` without the futures crate).
async fn futures_select_any<F: std::future::Future + Unpin>(mut futs: Vec<F>) {
    std::future::poll_fn(|cx| {
        if futs
            .iter_mut()
            .any(|f| std::pin::Pin::new(f).poll(cx).is_ready())
        {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_messages_are_spread_over_the_configured_groups() {
    let srv = TestServer::start().await;
    let c = srv.clients().await;
    let url = common::create_queue(
        &c,
        "tx.fifo",
        &[(QueueAttributeName::FifoQueue, "true".to_string())],
    )
    .await;
    let mut pcfg = ProduceConfig::new(&url);
    pcfg.schedule = Schedule::constant(1000.0);
    pcfg.count = Some(40);
    pcfg.batch = 10;
    pcfg.groups = 4;
    pcfg.seed = Some(1);
    let report = within(
        30,
        "produce",
        workload::produce(pcfg, c.clone(), std::future::pending()),
    )
    .await
    .expect("produce");
    assert_eq!((report.sent, report.groups), (40, Some(4)));

    let mut per_group: HashMap<String, usize> = HashMap::new();
    let mut seen = 0;
    while seen < 40 {
        let out = within(10, "receive", async {
            c.sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
                .send()
                .await
                .expect("receive")
        })
        .await;
        for m in out.messages() {
            seen += 1;
            let g = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
                .expect("group id")
                .clone();
            *per_group.entry(g).or_default() += 1;
            assert!(Transaction::parse(m.body().unwrap_or_default()).is_ok());
            c.sqs
                .delete_message()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle().expect("receipt"))
                .send()
                .await
                .expect("delete");
        }
    }
    let want: HashMap<String, usize> = (0..4).map(|g| (format!("group-{g}"), 10)).collect();
    assert_eq!(per_group, want);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_producer_paces_to_the_schedule_and_stops_at_its_duration() {
    let srv = TestServer::start().await;
    let c = srv.clients().await;
    let url = common::create_queue(&c, "paced", &[]).await;
    // 40 msgs/s for 0.5 s: 20 messages, the last due at 0.5 s, so the run cannot be shorter.
    let mut pcfg = ProduceConfig::new(&url);
    pcfg.schedule = Schedule::constant(40.0);
    pcfg.duration = Some(Duration::from_millis(500));
    pcfg.batch = 5;
    let report = within(
        30,
        "produce",
        workload::produce(pcfg, c.clone(), std::future::pending()),
    )
    .await
    .expect("produce");
    assert_eq!((report.sent, report.failed), (20, 0));
    assert!(report.elapsed >= Duration::from_millis(500), "{report:?}");
    assert_eq!(common::messages_in_queue(&c, &url).await, 20);

    // A missing queue is fatal, with a message that says what to check.
    let mut bad = ProduceConfig::new(format!("{}/000000000000/nope", srv.url));
    bad.count = Some(1);
    bad.schedule = Schedule::constant(100.0);
    let err = workload::produce(bad, c.clone(), std::future::pending())
        .await
        .expect_err("missing queue");
    assert!(err.to_string().contains("SQS_QUEUE_URL"), "{err}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_the_producer_mid_burst_and_every_ack_is_logged() {
    let srv = TestServer::start().await;
    let c = srv.clients().await;
    let url = common::create_queue(&c, "burst", &[]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ack_log = dir.path().join("acked.txt");
    // 100 000 messages due at once, one request in flight: minutes of work.
    let mut pcfg = ProduceConfig::new(&url);
    pcfg.schedule = Schedule {
        base: workload::schedule::Base::Constant(0.0),
        bursts: vec!["100000@0".parse().expect("burst")],
    };
    pcfg.max_in_flight = 1;
    pcfg.ack_log = Some(ack_log.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(workload::produce(pcfg, c.clone(), async {
        let _ = stopped.await;
    }));
    // Stop once the producer demonstrably sends (the queue has messages).
    within(10, "first sends", async {
        while common::messages_in_queue(&c, &url).await < 5 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let _ = stop.send(());
    let report = within(10, "producer exit", run)
        .await
        .expect("join")
        .expect("produce");
    assert!(report.sent >= 5 && report.sent < 100_000, "{report:?}");
    let logged = std::fs::read_to_string(&ack_log)
        .expect("ack log")
        .lines()
        .count() as u64;
    assert_eq!(logged, report.sent);
    assert_eq!(common::messages_in_queue(&c, &url).await, report.sent);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_pointed_at_a_missing_queue_fails_at_once() {
    let srv = TestServer::start().await;
    let c = srv.clients().await;
    let cfg = common::consume_cfg(&format!("{}/000000000000/nope", srv.url), "txns");
    let err = within(
        10,
        "consume",
        workload::consume(cfg, c, std::future::pending()),
    )
    .await
    .expect_err("missing queue");
    assert_eq!(err.metric_label(), "queue_does_not_exist");
    assert!(err.to_string().contains("SQS_QUEUE_URL"), "{err}");
    srv.stop().await;
}
