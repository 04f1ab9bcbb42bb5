//! Durability of the queue engine: state survives reopening the database exactly as the last
//! acknowledged change left it, and a failed commit stops the store (fail-stop).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clock::{Clock, ManualClock, Timestamp};
use store::journal::{Backend, BackendError, Journal, Record};
use store::queue::{QueueCounts, QueueEngine, ReceiveRequest, SendRequest, SqsErrorKind};
use store::{Durability, Store};

fn open(dir: &std::path::Path, clock: &ManualClock) -> Store {
    let c: Arc<dyn Clock> = Arc::new(clock.clone());
    Store::open(&Durability::Disk(dir.to_path_buf()), c).unwrap()
}

fn send(q: &QueueEngine, name: &str, body: &str, group: Option<&str>) {
    let (r, t) = q
        .send(
            name,
            vec![SendRequest {
                body: body.into(),
                group_id: group.map(str::to_owned),
                dedup_id: group.map(|_| body.to_owned()),
                ..Default::default()
            }],
            "me",
        )
        .unwrap();
    r[0].as_ref().unwrap();
    t.wait().unwrap();
}

fn receive(q: &QueueEngine, name: &str, n: i64) -> Vec<store::queue::ReceivedMessage> {
    let (m, t) = q
        .receive(
            name,
            &ReceiveRequest {
                max_messages: Some(n),
                attribute_names: vec!["All".into()],
                ..Default::default()
            },
        )
        .unwrap();
    t.wait().unwrap();
    m
}

#[test]
fn reopened_store_has_exactly_the_acknowledged_state() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp::from_secs(1_700_000_000));
    let mut attrs = HashMap::new();
    attrs.insert("VisibilityTimeout".to_string(), "60".to_string());
    let mut tags = HashMap::new();
    tags.insert("team".to_string(), "payments".to_string());
    {
        let s = open(dir.path(), &clock);
        s.queues
            .create_queue("jobs", &attrs, &tags)
            .unwrap()
            .wait()
            .unwrap();
        let mut fifo = HashMap::new();
        fifo.insert("FifoQueue".to_string(), "true".to_string());
        s.queues
            .create_queue("f.fifo", &fifo, &HashMap::new())
            .unwrap()
            .wait()
            .unwrap();
        for i in 0..5 {
            send(&s.queues, "jobs", &format!("m{i}"), None);
        }
        send(&s.queues, "f.fifo", "a", Some("g"));
        // Two in flight, one of them deleted.
        let got = receive(&s.queues, "jobs", 2);
        let (r, t) = s
            .queues
            .delete("jobs", std::slice::from_ref(&got[0].receipt_handle))
            .unwrap();
        r[0].as_ref().unwrap();
        t.wait().unwrap();
        assert_eq!(
            s.queues.counts("jobs").unwrap(),
            QueueCounts {
                visible: 3,
                not_visible: 1,
                delayed: 0
            }
        );
    }
    let s = open(dir.path(), &clock);
    assert_eq!(
        s.queues.counts("jobs").unwrap(),
        QueueCounts {
            visible: 3,
            not_visible: 1,
            delayed: 0
        },
        "in-flight state survives a restart"
    );
    assert_eq!(s.queues.list_tags("jobs").unwrap(), tags);
    let vis = s
        .queues
        .get_attributes("jobs", &["VisibilityTimeout".to_string()])
        .unwrap();
    assert_eq!(vis[0].1, "60");
    // The deleted message never returns; the in-flight one returns after its timeout.
    clock.advance(Duration::from_secs(60));
    let mut bodies: Vec<String> = receive(&s.queues, "jobs", 10)
        .iter()
        .map(|m| m.body.to_string())
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["m1", "m2", "m3", "m4"]);
    // FIFO dedup entries survive too: the same dedup id is still a duplicate.
    send(&s.queues, "f.fifo", "a", Some("g"));
    assert_eq!(s.queues.counts("f.fifo").unwrap().visible, 1);
    // New messages get fresh sequence numbers after restart.
    send(&s.queues, "f.fifo", "b", Some("g"));
    let got = receive(&s.queues, "f.fifo", 10);
    assert_eq!(got.len(), 2);
}

#[test]
fn deleted_queue_stays_deleted_and_name_can_be_reused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp::from_secs(1_700_000_000));
    {
        let s = open(dir.path(), &clock);
        s.queues
            .create_queue("q", &HashMap::new(), &HashMap::new())
            .unwrap()
            .wait()
            .unwrap();
        send(&s.queues, "q", "old", None);
        s.queues.delete_queue("q").unwrap().wait().unwrap();
        let again = s.queues.create_queue("q", &HashMap::new(), &HashMap::new());
        assert_eq!(
            again.err().map(|e| e.kind),
            Some(SqsErrorKind::QueueDeletedRecently),
            "AWS refuses to reuse a name within 60 s"
        );
        clock.advance(Duration::from_secs(60));
        s.queues
            .create_queue("q", &HashMap::new(), &HashMap::new())
            .unwrap()
            .wait()
            .unwrap();
        send(&s.queues, "q", "new", None);
    }
    let s = open(dir.path(), &clock);
    let got = receive(&s.queues, "q", 10);
    assert_eq!(got.len(), 1);
    assert_eq!(&*got[0].body, "new");
}

/// A backend whose N-th commit fails, like a disk that stops accepting writes.
struct FailingBackend {
    commits: Arc<AtomicUsize>,
    fail_at: usize,
}

impl Backend for FailingBackend {
    fn commit(&mut self, _batch: &[Record]) -> Result<(), BackendError> {
        let n = self.commits.fetch_add(1, Ordering::SeqCst);
        if n >= self.fail_at {
            Err(BackendError("injected: fsync failed (EIO)".into()))
        } else {
            Ok(())
        }
    }
}

#[test]
fn a_failed_commit_is_not_acknowledged_and_stops_the_store() {
    let commits = Arc::new(AtomicUsize::new(0));
    let j = Journal::start(
        Box::new(FailingBackend {
            commits: commits.clone(),
            fail_at: 1,
        }),
        false,
    );
    let clock = ManualClock::new(Timestamp::from_secs(1_700_000_000));
    let q = QueueEngine::new(j.clone(), Arc::new(clock));
    q.create_queue("q", &HashMap::new(), &HashMap::new())
        .unwrap()
        .wait()
        .unwrap();
    let (r, t) = q
        .send(
            "q",
            vec![SendRequest {
                body: "x".into(),
                ..Default::default()
            }],
            "me",
        )
        .unwrap();
    assert!(r[0].is_ok());
    assert!(
        t.wait().is_err(),
        "the send's commit failed, so it must not be acknowledged"
    );
    assert!(j.is_failed());
    let err = q
        .send(
            "q",
            vec![SendRequest {
                body: "y".into(),
                ..Default::default()
            }],
            "me",
        )
        .unwrap_err();
    assert_eq!(err.kind, SqsErrorKind::ServiceUnavailable);
    assert_eq!(
        commits.load(Ordering::SeqCst),
        2,
        "no commit attempted after the failure"
    );
}

#[test]
fn message_move_tasks_and_permissions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp::from_secs(1_700_000_000));
    let dlq_arn;
    {
        let s = open(dir.path(), &clock);
        let q = &s.queues;
        q.create_queue("dlq", &HashMap::new(), &HashMap::new())
            .unwrap()
            .wait()
            .unwrap();
        dlq_arn = q.arn("dlq");
        let mut attrs = HashMap::new();
        attrs.insert(
            "RedrivePolicy".to_string(),
            format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"1"}}"#),
        );
        q.create_queue("src", &attrs, &HashMap::new())
            .unwrap()
            .wait()
            .unwrap();
        let (task, t) = q.start_move_task(&dlq_arn, None, Some(10)).unwrap();
        t.wait().unwrap();
        assert_eq!(task.status.as_str(), "COMPLETED");
        q.add_permission(
            "src",
            "send",
            &["111122223333".to_string()],
            &["SendMessage".to_string()],
        )
        .unwrap()
        .wait()
        .unwrap();
        assert_eq!(
            q.add_permission("src", "send", &["1".to_string()], &["*".to_string()])
                .unwrap_err()
                .kind,
            SqsErrorKind::InvalidParameterValue
        );
    }
    let s = open(dir.path(), &clock);
    let tasks = s.queues.list_move_tasks(&dlq_arn, 10).unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].max_per_second, Some(10));
    let policy = s
        .queues
        .get_attributes("src", &["Policy".to_string()])
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&policy[0].1).unwrap();
    assert_eq!(doc["Statement"][0]["Sid"], "send");
    assert_eq!(doc["Statement"][0]["Action"], "SQS:SendMessage");
    assert_eq!(
        doc["Statement"][0]["Principal"]["AWS"],
        "arn:aws:iam::111122223333:root"
    );
    s.queues
        .remove_permission("src", "send")
        .unwrap()
        .wait()
        .unwrap();
    assert!(
        s.queues
            .get_attributes("src", &["Policy".to_string()])
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_running_move_task_carries_on_at_its_rate_after_a_restart() {
    use store::queue::move_task::MoveTaskStatus;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp::from_secs(1_700_000_000));
    let (dlq_arn, handle);
    {
        let s = open(dir.path(), &clock);
        let q = &s.queues;
        for name in ["dlq", "dest"] {
            q.create_queue(name, &HashMap::new(), &HashMap::new())
                .unwrap()
                .wait()
                .unwrap();
        }
        dlq_arn = q.arn("dlq");
        let mut attrs = HashMap::new();
        attrs.insert(
            "RedrivePolicy".to_string(),
            format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"1"}}"#),
        );
        q.create_queue("src", &attrs, &HashMap::new())
            .unwrap()
            .wait()
            .unwrap();
        for i in 0..6 {
            send(q, "src", &format!("m{i}"), None);
        }
        assert_eq!(receive(q, "src", 10).len(), 6);
        clock.advance(Duration::from_secs(31));
        assert!(receive(q, "src", 10).is_empty(), "received once too often");
        assert_eq!(q.counts("dlq").unwrap().visible, 6);
        let (task, t) = q
            .start_move_task(&dlq_arn, Some(&q.arn("dest")), Some(1))
            .unwrap();
        t.wait().unwrap();
        handle = task.handle;
        clock.advance(Duration::from_secs(1));
        q.advance_move_tasks().unwrap().wait().unwrap();
        assert_eq!(q.list_move_tasks(&dlq_arn, 1).unwrap()[0].moved, 2);
    }
    // Down for a minute: the task does not make up for it in a burst.
    clock.advance(Duration::from_secs(60));
    let s = open(dir.path(), &clock);
    let q = &s.queues;
    assert_eq!(q.counts("dest").unwrap().visible, 2);
    let t = &q.list_move_tasks(&dlq_arn, 1).unwrap()[0];
    assert_eq!(
        (t.status, t.handle.as_str()),
        (MoveTaskStatus::Running, handle.as_str())
    );
    assert_eq!(
        (t.moved, t.to_move),
        (3, 6),
        "one at the restart, as at a start"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(q.list_move_tasks(&dlq_arn, 1).unwrap()[0].moved, 4);
    let (c, t) = q.cancel_move_task(&handle).unwrap();
    t.wait().unwrap();
    assert_eq!((c.status, c.moved), (MoveTaskStatus::Cancelled, 4));
    drop(s);
    let s = open(dir.path(), &clock);
    let t = &s.queues.list_move_tasks(&dlq_arn, 1).unwrap()[0];
    assert_eq!((t.status, t.moved), (MoveTaskStatus::Cancelled, 4));
    assert_eq!(s.queues.counts("dest").unwrap().visible, 4);
    assert_eq!(s.queues.counts("dlq").unwrap().visible, 2);
}
