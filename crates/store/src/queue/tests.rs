//! Engine-level tests of SQS semantics, driven by a manual clock.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use clock::{ManualClock, Timestamp};

use super::move_task::MoveTaskStatus;
use super::*;
use crate::journal::{Journal, NullBackend};

fn engine() -> (QueueEngine, ManualClock) {
    let clock = ManualClock::new(Timestamp::from_secs(1_700_000_000));
    let j = Journal::start(Box::new(NullBackend), true);
    (QueueEngine::new(j, Arc::new(clock.clone())), clock)
}

fn attrs(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn send(e: &QueueEngine, q: &str, body: &str) -> SendResult {
    let (mut r, t) = e
        .send(
            q,
            vec![SendRequest {
                body: body.into(),
                ..Default::default()
            }],
            "me",
        )
        .unwrap();
    t.wait().unwrap();
    r.pop().unwrap().unwrap()
}

fn send_fifo(e: &QueueEngine, q: &str, body: &str, group: &str, dedup: &str) -> SendResult {
    let (mut r, t) = e
        .send(
            q,
            vec![SendRequest {
                body: body.into(),
                group_id: Some(group.into()),
                dedup_id: Some(dedup.into()),
                ..Default::default()
            }],
            "me",
        )
        .unwrap();
    t.wait().unwrap();
    r.pop().unwrap().unwrap()
}

fn recv(e: &QueueEngine, q: &str, max: i64, vis: Option<i64>) -> Vec<ReceivedMessage> {
    let (m, t) = e
        .receive(
            q,
            &ReceiveRequest {
                max_messages: Some(max),
                visibility_timeout: vis,
                attribute_names: vec!["All".into()],
                message_attribute_names: vec!["All".into()],
                attempt_id: None,
            },
        )
        .unwrap();
    t.wait().unwrap();
    m
}

fn attr<'a>(m: &'a ReceivedMessage, n: &str) -> &'a str {
    m.attributes
        .iter()
        .find(|(k, _)| *k == n)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

#[test]
fn visibility_timeout_hides_then_redelivers_with_a_new_handle() {
    let (e, clock) = engine();
    e.create_queue("q", &attrs(&[("VisibilityTimeout", "30")]), &HashMap::new())
        .unwrap()
        .wait()
        .unwrap();
    send(&e, "q", "a");
    let first = recv(&e, "q", 10, None);
    assert_eq!(first.len(), 1);
    assert_eq!(attr(&first[0], "ApproximateReceiveCount"), "1");
    assert!(
        recv(&e, "q", 10, None).is_empty(),
        "in flight means invisible"
    );
    assert_eq!(e.counts("q").unwrap().not_visible, 1);
    clock.advance(Duration::from_secs(29));
    assert!(recv(&e, "q", 10, None).is_empty());
    clock.advance(Duration::from_secs(1));
    let second = recv(&e, "q", 10, None);
    assert_eq!(second.len(), 1);
    assert_eq!(attr(&second[0], "ApproximateReceiveCount"), "2");
    assert_eq!(
        attr(&second[0], "ApproximateFirstReceiveTimestamp"),
        attr(&first[0], "ApproximateFirstReceiveTimestamp")
    );
    assert_ne!(first[0].receipt_handle, second[0].receipt_handle);
    // A handle from the earlier delivery still names the message: SQS accepts it and the
    // message is gone (deleting again with the fresh handle then succeeds as a no-op).
    let (r, _) = e
        .delete("q", std::slice::from_ref(&first[0].receipt_handle))
        .unwrap();
    assert!(r[0].is_ok());
    assert_eq!(e.counts("q").unwrap(), QueueCounts::default());
    // Deleting again is accepted (idempotent), as in SQS.
    let (r, _) = e
        .delete("q", std::slice::from_ref(&second[0].receipt_handle))
        .unwrap();
    assert!(r[0].is_ok());
}

#[test]
fn delays_count_as_delayed_until_due() {
    let (e, clock) = engine();
    e.create_queue("q", &attrs(&[("DelaySeconds", "10")]), &HashMap::new())
        .unwrap()
        .wait()
        .unwrap();
    send(&e, "q", "queue-delay");
    let (r, _) = e
        .send(
            "q",
            vec![SendRequest {
                body: "msg-delay".into(),
                delay_seconds: Some(2),
                ..Default::default()
            }],
            "me",
        )
        .unwrap();
    r[0].as_ref().unwrap();
    assert_eq!(e.counts("q").unwrap().delayed, 2);
    clock.advance(Duration::from_secs(2));
    let got = recv(&e, "q", 10, None);
    assert_eq!(got.len(), 1);
    assert_eq!(&*got[0].body, "msg-delay");
    clock.advance(Duration::from_secs(8));
    let got = recv(&e, "q", 10, None);
    assert_eq!(&*got[0].body, "queue-delay");
}

#[test]
fn retention_period_expires_messages() {
    let (e, clock) = engine();
    e.create_queue(
        "q",
        &attrs(&[("MessageRetentionPeriod", "60")]),
        &HashMap::new(),
    )
    .unwrap()
    .wait()
    .unwrap();
    send(&e, "q", "old");
    clock.advance(Duration::from_secs(30));
    send(&e, "q", "new");
    clock.advance(Duration::from_secs(30));
    let c = e.counts("q").unwrap();
    assert_eq!(c.visible, 1);
    assert_eq!(&*recv(&e, "q", 10, None)[0].body, "new");
}

#[test]
fn receive_limits_and_parameter_validation() {
    let (e, _) = engine();
    e.create_queue("q", &HashMap::new(), &HashMap::new())
        .unwrap()
        .wait()
        .unwrap();
    for i in 0..25 {
        send(&e, "q", &format!("m{i}"));
    }
    assert_eq!(recv(&e, "q", 10, None).len(), 10);
    let err = e
        .receive(
            "q",
            &ReceiveRequest {
                max_messages: Some(11),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(err.kind, SqsErrorKind::InvalidParameterValue);
    assert!(err.message.contains("MaxNumberOfMessages"));
    let err = e.receive("nope", &ReceiveRequest::default()).unwrap_err();
    assert_eq!(err.kind, SqsErrorKind::QueueDoesNotExist);
}

#[test]
fn fifo_orders_within_a_group_and_locks_groups_in_flight() {
    let (e, _) = engine();
    e.create_queue("f.fifo", &attrs(&[("FifoQueue", "true")]), &HashMap::new())
        .unwrap()
        .wait()
        .unwrap();
    for i in 0..3 {
        send_fifo(&e, "f.fifo", &format!("a{i}"), "A", &format!("da{i}"));
        send_fifo(&e, "f.fifo", &format!("b{i}"), "B", &format!("db{i}"));
    }
    // One message: the oldest group's head.
    let m1 = recv(&e, "f.fifo", 1, None);
    assert_eq!(&*m1[0].body, "a0");
    // Group A is locked while a0 is in flight: the next receive serves group B.
    let m2 = recv(&e, "f.fifo", 10, None);
    let bodies: Vec<&str> = m2.iter().map(|m| &*m.body).collect();
    assert_eq!(bodies, ["b0", "b1", "b2"]);
    assert!(
        recv(&e, "f.fifo", 10, None).is_empty(),
        "both groups locked"
    );
    e.delete("f.fifo", std::slice::from_ref(&m1[0].receipt_handle))
        .unwrap()
        .1
        .wait()
        .unwrap();
    let m3 = recv(&e, "f.fifo", 10, None);
    let bodies: Vec<&str> = m3.iter().map(|m| &*m.body).collect();
    assert_eq!(bodies, ["a1", "a2"]);
    let seqs: Vec<u64> = m3
        .iter()
        .map(|m| attr(m, "SequenceNumber").parse().unwrap())
        .collect();
    assert!(seqs[0] < seqs[1]);
}

#[test]
fn a_changed_deduplication_scope_applies_to_sends_a_minute_later() {
    let (e, clock) = engine();
    e.create_queue(
        "f.fifo",
        &attrs(&[("FifoQueue", "true"), ("DeduplicationScope", "queue")]),
        &HashMap::new(),
    )
    .unwrap()
    .wait()
    .unwrap();
    let first = send_fifo(&e, "f.fifo", "1", "g1", "d");
    let set = |scope: &str| {
        e.set_attributes("f.fifo", &attrs(&[("DeduplicationScope", scope)]))
            .unwrap()
            .wait()
            .unwrap()
    };
    set("messageGroup");
    // The queue answers with the new scope at once ...
    assert_eq!(
        e.get_attributes("f.fifo", &["DeduplicationScope".to_string()])
            .unwrap()
            .iter()
            .find(|(k, _)| *k == "DeduplicationScope")
            .map(|(_, v)| v.as_str()),
        Some("messageGroup")
    );
    // ... but sends keep deduplicating across groups until the change has propagated.
    clock.advance(Duration::from_secs(59));
    assert_eq!(
        send_fifo(&e, "f.fifo", "2", "g2", "d").message_id,
        first.message_id
    );
    clock.advance(Duration::from_secs(1));
    let third = send_fifo(&e, "f.fifo", "3", "g3", "d");
    assert_ne!(third.message_id, first.message_id);
    assert_eq!(e.counts("f.fifo").unwrap().visible, 2);
    // Back to the queue scope: per-group keys still apply for a minute.
    set("queue");
    assert_ne!(
        send_fifo(&e, "f.fifo", "4", "g4", "d").message_id,
        first.message_id
    );
    assert_eq!(e.counts("f.fifo").unwrap().visible, 3);
    // Changes made before the last one propagated leave sends on the scope in effect
    // (`messageGroup`: a new group's message is no duplicate of the first, which the queue
    // scope would make it).
    set("messageGroup");
    set("queue");
    assert_ne!(
        send_fifo(&e, "f.fifo", "5", "g5", "d").message_id,
        first.message_id
    );
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        send_fifo(&e, "f.fifo", "6", "g6", "d").message_id,
        first.message_id
    );
}

#[test]
fn fifo_deduplicates_within_five_minutes() {
    let (e, clock) = engine();
    e.create_queue(
        "f.fifo",
        &attrs(&[("FifoQueue", "true"), ("ContentBasedDeduplication", "true")]),
        &HashMap::new(),
    )
    .unwrap()
    .wait()
    .unwrap();
    let a = send_fifo(&e, "f.fifo", "x", "g", "d1");
    let b = send_fifo(&e, "f.fifo", "y", "g", "d1");
    assert_eq!(a.message_id, b.message_id);
    assert_eq!(a.sequence_number, b.sequence_number);
    assert_eq!(e.counts("f.fifo").unwrap().visible, 1);
    // Content-based: same body without an explicit id is a duplicate too.
    let (r1, _) = e
        .send(
            "f.fifo",
            vec![SendRequest {
                body: "same".into(),
                group_id: Some("g".into()),
                ..Default::default()
            }],
            "me",
        )
        .unwrap();
    let (r2, _) = e
        .send(
            "f.fifo",
            vec![SendRequest {
                body: "same".into(),
                group_id: Some("g".into()),
                ..Default::default()
            }],
            "me",
        )
        .unwrap();
    assert_eq!(
        r1[0].as_ref().unwrap().message_id,
        r2[0].as_ref().unwrap().message_id
    );
    clock.advance(Duration::from_secs(300));
    let c = send_fifo(&e, "f.fifo", "x", "g", "d1");
    assert_ne!(c.message_id, a.message_id, "window over: accepted as new");
    assert_eq!(e.counts("f.fifo").unwrap().visible, 3);
}

#[test]
fn fifo_send_rules() {
    let (e, _) = engine();
    e.create_queue("f.fifo", &attrs(&[("FifoQueue", "true")]), &HashMap::new())
        .unwrap()
        .wait()
        .unwrap();
    let one = |req: SendRequest| e.send("f.fifo", vec![req], "me").unwrap().0.pop().unwrap();
    let err = one(SendRequest {
        body: "x".into(),
        dedup_id: Some("d".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(err.kind, SqsErrorKind::MissingParameter);
    let err = one(SendRequest {
        body: "x".into(),
        group_id: Some("g".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.message.contains("ContentBasedDeduplication"));
    let err = one(SendRequest {
        body: "x".into(),
        group_id: Some("g".into()),
        dedup_id: Some("d".into()),
        delay_seconds: Some(5),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.message.contains("DelaySeconds"));
    // Naming rules.
    assert!(
        e.create_queue("f", &attrs(&[("FifoQueue", "true")]), &HashMap::new())
            .is_err()
    );
    assert!(
        e.create_queue("g.fifo", &HashMap::new(), &HashMap::new())
            .is_err()
    );
}

#[test]
fn redrive_moves_after_max_receive_count_and_move_task_returns_them() {
    let (e, _) = engine();
    e.create_queue("dlq", &HashMap::new(), &HashMap::new())
        .unwrap()
        .wait()
        .unwrap();
    let dlq_arn = e.arn("dlq");
    e.create_queue(
        "src",
        &attrs(&[(
            "RedrivePolicy",
            &format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":2}}"#),
        )]),
        &HashMap::new(),
    )
    .unwrap()
    .wait()
    .unwrap();
    send(&e, "src", "poison");
    assert_eq!(recv(&e, "src", 1, Some(0)).len(), 1);
    assert_eq!(recv(&e, "src", 1, Some(0)).len(), 1);
    assert!(
        recv(&e, "src", 1, Some(0)).is_empty(),
        "third receive moves it"
    );
    let moved = recv(&e, "dlq", 1, Some(0));
    assert_eq!(&*moved[0].body, "poison");
    assert!(attr(&moved[0], "DeadLetterQueueSourceArn").ends_with(":src"));
    assert_eq!(
        e.dead_letter_sources("dlq").unwrap(),
        vec!["src".to_string()]
    );
    let (task, t) = e.start_move_task(&dlq_arn, None, None).unwrap();
    t.wait().unwrap();
    assert_eq!((task.moved, task.to_move), (1, 1));
    assert_eq!(task.status, MoveTaskStatus::Completed);
    assert_eq!(&*recv(&e, "src", 1, None)[0].body, "poison");
}

/// A source queue `src` whose dead-letter queue `dlq` holds `bodies` (each received past
/// `maxReceiveCount` 1), and an empty `dest`.
fn dead_lettered(e: &QueueEngine, bodies: &[&str]) -> String {
    for q in ["dlq", "dest"] {
        e.create_queue(q, &HashMap::new(), &HashMap::new())
            .unwrap()
            .wait()
            .unwrap();
    }
    let dlq_arn = e.arn("dlq");
    e.create_queue(
        "src",
        &attrs(&[(
            "RedrivePolicy",
            &format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":1}}"#),
        )]),
        &HashMap::new(),
    )
    .unwrap()
    .wait()
    .unwrap();
    for b in bodies {
        send(e, "src", b);
    }
    for _ in 0..2 * bodies.len() {
        recv(e, "src", 10, Some(0));
    }
    assert_eq!(e.counts("dlq").unwrap().visible, bodies.len() as u64);
    dlq_arn
}

fn task_of(e: &QueueEngine, dlq_arn: &str) -> move_task::MoveTask {
    e.list_move_tasks(dlq_arn, 1).unwrap().remove(0)
}

#[test]
fn a_move_task_with_a_rate_moves_the_first_at_once_then_that_many_a_second() {
    let (e, clock) = engine();
    let dlq_arn = dead_lettered(&e, &["m0", "m1", "m2", "m3"]);
    let (task, t) = e
        .start_move_task(&dlq_arn, Some(&e.arn("dest")), Some(1))
        .unwrap();
    t.wait().unwrap();
    assert_eq!(task.status, MoveTaskStatus::Running);
    assert_eq!((task.moved, task.to_move), (1, 4));
    clock.advance(Duration::from_millis(999));
    assert_eq!(task_of(&e, &dlq_arn).moved, 1, "not due before a second");
    clock.advance(Duration::from_millis(1));
    let t = task_of(&e, &dlq_arn);
    assert_eq!((t.status, t.moved), (MoveTaskStatus::Running, 2));
    assert_eq!(e.counts("dest").unwrap().visible, 2);
    clock.advance(Duration::from_secs(2));
    drop(e.advance_move_tasks());
    let t = task_of(&e, &dlq_arn);
    assert_eq!((t.status, t.moved), (MoveTaskStatus::Completed, 4));
    let bodies: Vec<String> = recv(&e, "dest", 10, None)
        .iter()
        .map(|m| m.body.to_string())
        .collect();
    assert_eq!(bodies, ["m0", "m1", "m2", "m3"], "oldest first");
    assert_eq!(e.counts("dlq").unwrap().visible, 0);
    // Past completion nothing more happens.
    clock.advance(Duration::from_secs(5));
    assert!(e.advance_move_tasks().is_none());
}

#[test]
fn a_cancelled_move_task_stops_where_it_is_and_frees_its_source() {
    let (e, clock) = engine();
    let bodies: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let dlq_arn = dead_lettered(&e, &refs);
    let dest = e.arn("dest");
    let (task, _) = e.start_move_task(&dlq_arn, Some(&dest), Some(1)).unwrap();
    let err = e
        .start_move_task(&dlq_arn, Some(&dest), Some(1))
        .unwrap_err();
    assert_eq!(err.kind, SqsErrorKind::InvalidParameterValue);
    assert_eq!(
        err.message,
        "There is already a task running. Only one active task is allowed for a source queue arn at a given time."
    );
    clock.advance(Duration::from_secs(1));
    let (cancelled, t) = e.cancel_move_task(&task.handle).unwrap();
    t.wait().unwrap();
    assert_eq!(
        (cancelled.status, cancelled.moved),
        (MoveTaskStatus::Cancelled, 2)
    );
    clock.advance(Duration::from_secs(5));
    assert!(e.advance_move_tasks().is_none());
    let t = task_of(&e, &dlq_arn);
    assert_eq!(
        (t.status, t.moved, t.to_move),
        (MoveTaskStatus::Cancelled, 2, 10)
    );
    assert_eq!(e.counts("dlq").unwrap().visible, 8, "the rest stay");
    assert_eq!(
        e.cancel_move_task(&task.handle).unwrap_err().kind,
        SqsErrorKind::UnsupportedOperation
    );
    // A new task may start once the first is no longer running; without a rate it moves the
    // rest at once.
    let (again, _) = e.start_move_task(&dlq_arn, Some(&dest), None).unwrap();
    assert_eq!(
        (again.status, again.moved, again.to_move),
        (MoveTaskStatus::Completed, 8, 8)
    );
    assert_eq!(e.counts("dest").unwrap().visible, 10);
}

#[test]
fn a_move_task_fails_when_its_destination_is_deleted_while_it_runs() {
    let (e, clock) = engine();
    let dlq_arn = dead_lettered(&e, &["a", "b", "c"]);
    let (_, t) = e
        .start_move_task(&dlq_arn, Some(&e.arn("dest")), Some(1))
        .unwrap();
    t.wait().unwrap();
    e.delete_queue("dest").unwrap().wait().unwrap();
    clock.advance(Duration::from_secs(1));
    let t = task_of(&e, &dlq_arn);
    assert_eq!(t.status, MoveTaskStatus::Failed);
    assert_eq!(
        t.failure_reason.as_deref(),
        Some("AWS.SimpleQueueService.NonExistentQueue")
    );
    assert_eq!(t.moved, 1);
    assert_eq!(e.counts("dlq").unwrap().visible, 2, "the rest stay");
}

#[test]
fn a_move_task_completes_early_when_its_source_runs_dry() {
    let (e, clock) = engine();
    let dlq_arn = dead_lettered(&e, &["a", "b", "c"]);
    let (_, t) = e
        .start_move_task(&dlq_arn, Some(&e.arn("dest")), Some(1))
        .unwrap();
    t.wait().unwrap();
    // A consumer takes the other two out of the DLQ meanwhile.
    assert_eq!(recv(&e, "dlq", 10, Some(60)).len(), 2);
    e.delete_queue("src").unwrap().wait().unwrap();
    clock.advance(Duration::from_secs(1));
    let t = task_of(&e, &dlq_arn);
    assert_eq!(
        (t.status, t.moved, t.to_move),
        (MoveTaskStatus::Completed, 1, 3)
    );
}

#[test]
fn redrive_allow_policy_and_dlq_type_are_enforced() {
    let (e, _) = engine();
    e.create_queue(
        "dlq",
        &attrs(&[("RedriveAllowPolicy", r#"{"redrivePermission":"denyAll"}"#)]),
        &HashMap::new(),
    )
    .unwrap()
    .wait()
    .unwrap();
    let rp = format!(
        r#"{{"deadLetterTargetArn":"{}","maxReceiveCount":"3"}}"#,
        e.arn("dlq")
    );
    let err = e
        .create_queue("src", &attrs(&[("RedrivePolicy", &rp)]), &HashMap::new())
        .unwrap_err();
    assert_eq!(err.kind, SqsErrorKind::InvalidAttributeValue);
    let rp_missing =
        r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:none","maxReceiveCount":3}"#;
    assert!(
        e.create_queue(
            "src",
            &attrs(&[("RedrivePolicy", rp_missing)]),
            &HashMap::new()
        )
        .is_err()
    );
}

#[test]
fn create_is_idempotent_only_for_equal_attributes() {
    let (e, _) = engine();
    let a = attrs(&[("VisibilityTimeout", "10")]);
    e.create_queue("q", &a, &HashMap::new())
        .unwrap()
        .wait()
        .unwrap();
    e.create_queue("q", &a, &HashMap::new())
        .unwrap()
        .wait()
        .unwrap();
    let err = e
        .create_queue("q", &attrs(&[("VisibilityTimeout", "11")]), &HashMap::new())
        .unwrap_err();
    assert_eq!(err.kind, SqsErrorKind::QueueNameExists);
}

#[test]
fn purge_empties_and_is_rate_limited() {
    let (e, clock) = engine();
    e.create_queue("q", &HashMap::new(), &HashMap::new())
        .unwrap()
        .wait()
        .unwrap();
    send(&e, "q", "a");
    e.purge_queue("q").unwrap().wait().unwrap();
    assert_eq!(e.counts("q").unwrap(), QueueCounts::default());
    assert_eq!(
        e.purge_queue("q").err().unwrap().kind,
        SqsErrorKind::PurgeQueueInProgress
    );
    clock.advance(Duration::from_secs(60));
    assert!(e.purge_queue("q").is_ok());
}

#[test]
fn change_visibility_to_zero_makes_available_and_takes_earlier_handles() {
    let (e, _) = engine();
    e.create_queue("q", &HashMap::new(), &HashMap::new())
        .unwrap()
        .wait()
        .unwrap();
    send(&e, "q", "a");
    let m = recv(&e, "q", 1, None);
    let (r, _) = e
        .change_visibility("q", &[(m[0].receipt_handle.clone(), 0)])
        .unwrap();
    assert!(r[0].is_ok());
    assert_eq!(e.counts("q").unwrap().visible, 1);
    // Visible again: the change succeeds and changes nothing (SQS answers 200 here).
    let (r, _) = e
        .change_visibility("q", &[(m[0].receipt_handle.clone(), 10)])
        .unwrap();
    assert!(r[0].is_ok());
    assert_eq!(e.counts("q").unwrap().visible, 1);
    // Received again: the first delivery's handle still reaches the message in flight.
    let again = recv(&e, "q", 1, None);
    assert_ne!(again[0].receipt_handle, m[0].receipt_handle);
    let (r, _) = e
        .change_visibility("q", &[(m[0].receipt_handle.clone(), 0)])
        .unwrap();
    assert!(r[0].is_ok());
    assert_eq!(e.counts("q").unwrap().visible, 1);
    // Deleted: its handles fail.
    let (r, _) = e.delete("q", &[again[0].receipt_handle.clone()]).unwrap();
    assert!(r[0].is_ok());
    let (r, _) = e
        .change_visibility("q", &[(m[0].receipt_handle.clone(), 10)])
        .unwrap();
    assert_eq!(
        r[0].as_ref().unwrap_err().kind,
        SqsErrorKind::InvalidParameterValue
    );
    let (r, _) = e.change_visibility("q", &[("garbage".into(), 10)]).unwrap();
    assert_eq!(
        r[0].as_ref().unwrap_err().kind,
        SqsErrorKind::ReceiptHandleIsInvalid
    );
}

#[test]
fn message_validation() {
    let (e, _) = engine();
    e.create_queue(
        "q",
        &attrs(&[("MaximumMessageSize", "1024")]),
        &HashMap::new(),
    )
    .unwrap()
    .wait()
    .unwrap();
    let one = |req: SendRequest| e.send("q", vec![req], "me").unwrap().0.pop().unwrap();
    let err = one(SendRequest {
        body: "x".repeat(1025).into(),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.message.contains("shorter than 1024"));
    let err = one(SendRequest {
        body: "bad\u{0}char".into(),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(err.kind, SqsErrorKind::InvalidMessageContents);
    let mut a = BTreeMap::new();
    a.insert(
        "n".to_string(),
        MessageAttributeValue {
            data_type: "Number".into(),
            string_value: Some("abc".into()),
            binary_value: None,
        },
    );
    let err = one(SendRequest {
        body: "x".into(),
        attributes: a,
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.message.contains("number"));
}

#[test]
fn counters_track_every_state() {
    let (e, _) = engine();
    e.create_queue("q", &HashMap::new(), &HashMap::new())
        .unwrap()
        .wait()
        .unwrap();
    for i in 0..5 {
        send(&e, "q", &format!("{i}"));
    }
    let (r, _) = e
        .send(
            "q",
            vec![SendRequest {
                body: "later".into(),
                delay_seconds: Some(60),
                ..Default::default()
            }],
            "me",
        )
        .unwrap();
    r[0].as_ref().unwrap();
    recv(&e, "q", 2, None);
    assert_eq!(
        e.counts("q").unwrap(),
        QueueCounts {
            visible: 3,
            not_visible: 2,
            delayed: 1
        }
    );
}

mod model {
    //! Model-based test: random operation sequences against a trivial reference.
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Send(u8),
        Receive(u8, u8),
        DeleteLast(u8),
        Advance(u8),
        ChangeVis(u8, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u8..5).prop_map(Op::Send),
            3 => (1u8..=10, 0u8..4).prop_map(|(n, v)| Op::Receive(n, v)),
            2 => any::<u8>().prop_map(Op::DeleteLast),
            2 => (0u8..6).prop_map(Op::Advance),
            1 => (any::<u8>(), 0u8..3).prop_map(|(i, v)| Op::ChangeVis(i, v)),
        ]
    }

    /// Reference: each message is (id, visible_at, receive_count, token).
    #[derive(Default)]
    struct Ref {
        msgs: Vec<(u32, u64, u32, u32)>,
        next: u32,
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn standard_queue_agrees_with_reference(ops in proptest::collection::vec(op(), 1..80)) {
            let (e, clock) = engine();
            e.create_queue("q", &attrs(&[("VisibilityTimeout", "3")]), &HashMap::new()).unwrap().wait().unwrap();
            let mut r = Ref::default();
            // Handles we hold: (id, handle, token at issue).
            let mut held: Vec<(u32, String, u32)> = Vec::new();
            for o in ops {
                let now = clock.now().as_secs();
                match o {
                    Op::Send(d) => {
                        let (res, _) = e.send("q", vec![SendRequest {
                            body: format!("{}", r.next).into(),
                            delay_seconds: Some(d as i64),
                            ..Default::default()
                        }], "me").unwrap();
                        prop_assert!(res[0].is_ok());
                        r.msgs.push((r.next, now + d as u64, 0, 0));
                        r.next += 1;
                    }
                    Op::Receive(n, v) => {
                        let got = recv(&e, "q", n as i64, Some(v as i64));
                        let mut avail: Vec<usize> = (0..r.msgs.len()).filter(|&i| r.msgs[i].1 <= now).collect();
                        avail.truncate(n as usize);
                        prop_assert_eq!(got.len(), avail.len());
                        for (g, i) in got.iter().zip(avail) {
                            let m = &mut r.msgs[i];
                            prop_assert_eq!(g.body.parse::<u32>().unwrap(), m.0);
                            m.1 = now + v as u64;
                            m.2 += 1;
                            m.3 += 1;
                            prop_assert_eq!(attr(g, "ApproximateReceiveCount").parse::<u32>().unwrap(), m.2);
                            held.push((m.0, g.receipt_handle.clone(), m.3));
                        }
                    }
                    Op::DeleteLast(i) => {
                        if held.is_empty() { continue; }
                        let (id, h, _) = held.remove(i as usize % held.len());
                        let (res, _) = e.delete("q", &[h]).unwrap();
                        // Any handle of a standard queue's message deletes it, as in SQS.
                        prop_assert!(res[0].is_ok());
                        if let Some(p) = r.msgs.iter().position(|m| m.0 == id) {
                            r.msgs.remove(p);
                        }
                    }
                    Op::Advance(s) => clock.advance(Duration::from_secs(s as u64)),
                    Op::ChangeVis(i, v) => {
                        if held.is_empty() { continue; }
                        let (id, h, tok) = held[i as usize % held.len()].clone();
                        let (res, _) = e.change_visibility("q", &[(h, v as i64)]).unwrap();
                        // SQS: any handle of a standard queue's message that still exists
                        // changes it while it is in flight, and changes nothing (successfully)
                        // once it is visible again; a deleted message's handle fails.
                        let _ = tok;
                        match r.msgs.iter().position(|m| m.0 == id) {
                            Some(p) => {
                                prop_assert!(res[0].is_ok());
                                if r.msgs[p].1 > now && r.msgs[p].2 > 0 {
                                    r.msgs[p].1 = now + v as u64;
                                }
                            }
                            None => prop_assert!(res[0].is_err()),
                        }
                    }
                }
                let now = clock.now().as_secs();
                let c = e.counts("q").unwrap();
                let visible = r.msgs.iter().filter(|m| m.1 <= now).count() as u64;
                let delayed = r.msgs.iter().filter(|m| m.1 > now && m.2 == 0).count() as u64;
                let inflight = r.msgs.iter().filter(|m| m.1 > now && m.2 > 0).count() as u64;
                prop_assert_eq!(c, QueueCounts { visible, not_visible: inflight, delayed });
            }
        }
    }
}

#[test]
fn message_characters_are_sqs_s_both_on_the_ascii_path_and_off_it() {
    use super::valid_sqs_chars;
    assert!(valid_sqs_chars("plain text\twith\r\nbreaks ~\u{7f}"));
    assert!(valid_sqs_chars("caf\u{e9} \u{1F600} \u{E000}\u{FFFD}"));
    assert!(!valid_sqs_chars("bell\u{7}"));
    assert!(!valid_sqs_chars("nul\u{0} after ascii"));
    assert!(!valid_sqs_chars("caf\u{e9}\u{1}"));
    assert!(!valid_sqs_chars("not a character \u{FFFE}"));
    assert!(valid_sqs_chars(""));
}

#[test]
fn message_ids_are_random_version_4_uuids_in_canonical_form() {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let ids: Vec<String> = (0..200).map(|_| uuid_v4(&mut rng)).collect();
    for id in &ids {
        let groups: Vec<&str> = id.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12],
            "{id}"
        );
        assert!(
            id.bytes()
                .all(|c| c == b'-' || c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
            "{id}"
        );
        assert_eq!(&id[14..15], "4", "version nibble of {id}");
        assert!(
            matches!(&id[19..20], "8" | "9" | "a" | "b"),
            "variant of {id}"
        );
    }
    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len());
    // Every hex digit shows up: the nibbles are all written, high and low.
    for c in "0123456789abcdef".chars() {
        assert!(ids.iter().any(|id| id.contains(c)), "no {c}");
    }
}

#[test]
fn receipt_handles_are_base64url_of_queue_seq_and_token() {
    use base64::Engine;
    for (q, s, t) in [
        (0, 0, 0),
        (1, 9, 10),
        (7, 1_234_567, 99_999_999_999),
        (u64::MAX, u64::MAX, u64::MAX),
    ] {
        let h = receipt_handle(q, s, t);
        let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&h)
            .unwrap();
        assert_eq!(String::from_utf8(text).unwrap(), format!("{q}:{s}:{t}"));
        assert_eq!(parse_handle(&h), Some((q, s, t)));
    }
}

#[test]
fn a_fifo_receive_retried_with_its_attempt_id_answers_the_same_messages() {
    let (e, clock) = engine();
    e.create_queue(
        "r.fifo",
        &attrs(&[("FifoQueue", "true"), ("VisibilityTimeout", "30")]),
        &HashMap::new(),
    )
    .unwrap()
    .wait()
    .unwrap();
    for i in 0..3 {
        send_fifo(&e, "r.fifo", &format!("m{i}"), "g", &format!("d{i}"));
    }
    send_fifo(&e, "r.fifo", "other", "h", "dh");
    let attempt = |id: &str, max: i64| {
        let (m, t) = e
            .receive(
                "r.fifo",
                &ReceiveRequest {
                    max_messages: Some(max),
                    visibility_timeout: None,
                    attribute_names: vec!["All".into()],
                    message_attribute_names: vec![],
                    attempt_id: Some(id.into()),
                },
            )
            .unwrap();
        t.wait().unwrap();
        m
    };
    let handles = |ms: &[ReceivedMessage]| {
        ms.iter()
            .map(|m| m.receipt_handle.clone())
            .collect::<Vec<_>>()
    };
    let first = attempt("a1", 2);
    assert_eq!(
        first.iter().map(|m| &*m.body).collect::<Vec<_>>(),
        ["m0", "m1"]
    );
    // The same attempt 20 s later: the same messages and receipt handles, not received again,
    // and their visibility timeout starts over.
    clock.advance(Duration::from_secs(20));
    let again = attempt("a1", 2);
    assert_eq!(handles(&again), handles(&first));
    assert_eq!(attr(&again[0], "ApproximateReceiveCount"), "1");
    clock.advance(Duration::from_secs(20));
    // 40 s after the first receive, 20 s after the retry: still in flight, so the group is
    // still locked and only the other group's message comes.
    let plain = recv(&e, "r.fifo", 10, None);
    assert_eq!(
        plain.iter().map(|m| &*m.body).collect::<Vec<_>>(),
        ["other"]
    );
    // Another attempt id is another receive.
    assert!(attempt("a2", 10).is_empty());
    // A message whose visibility changed makes the retry a new receive (its group is still
    // locked by the other message in flight, so it finds nothing).
    let (r, t) = e
        .change_visibility("r.fifo", &[(first[1].receipt_handle.clone(), 100)])
        .unwrap();
    t.wait().unwrap();
    assert!(r[0].is_ok());
    assert!(attempt("a1", 2).is_empty());
    // Once visible again, an attempt's messages are received afresh, with new handles.
    clock.advance(Duration::from_secs(101));
    let fresh = attempt("a3", 2);
    assert_eq!(&*fresh[0].body, "m0");
    assert_ne!(fresh[0].receipt_handle, first[0].receipt_handle);
    assert_eq!(attr(&fresh[0], "ApproximateReceiveCount"), "2");
    // After the 5-minute deduplication interval the id starts a new receive.
    clock.advance(Duration::from_secs(301));
    let later = attempt("a3", 2);
    assert_ne!(handles(&later), handles(&fresh));
}

#[test]
fn a_fifo_receive_attempt_id_follows_the_deduplication_id_rules() {
    let (e, _clock) = engine();
    for (name, fifo) in [("v.fifo", "true"), ("plain", "false")] {
        let a: &[(&str, &str)] = if fifo == "true" {
            &[("FifoQueue", "true")]
        } else {
            &[]
        };
        e.create_queue(name, &attrs(a), &HashMap::new())
            .unwrap()
            .wait()
            .unwrap();
    }
    let receive = |queue: &str, id: &str| {
        e.receive(
            queue,
            &ReceiveRequest {
                max_messages: Some(1),
                visibility_timeout: None,
                attribute_names: vec![],
                message_attribute_names: vec![],
                attempt_id: Some(id.into()),
            },
        )
        .map(|(m, _)| m.len())
    };
    let longest = "a".repeat(128);
    for good in ["a", "A-z_0.9!~{}", longest.as_str()] {
        assert_eq!(receive("v.fifo", good), Ok(0), "{good:?}");
    }
    let too_long = "a".repeat(129);
    for bad in ["", "has space", "é", too_long.as_str()] {
        let err = receive("v.fifo", bad).unwrap_err();
        assert_eq!(err.kind, SqsErrorKind::InvalidParameterValue, "{bad:?}");
        assert!(
            err.message
                .contains("ReceiveRequestAttemptId can only include alphanumeric"),
            "{bad:?}: {}",
            err.message
        );
        // A standard queue does not read the parameter.
        assert_eq!(receive("plain", bad), Ok(0), "{bad:?}");
    }
}
