//! Message move tasks (`StartMessageMoveTask`, `ListMessageMoveTasks`,
//! `CancelMessageMoveTask`): typed, journaled, run on the engine's clock and recovered after a
//! restart.
//!
//! A task moves the dead-letter queue's available messages, oldest first, to its destination
//! (or each back to the queue it was dead-lettered from). With `MaxNumberOfMessagesPerSecond`
//! it moves the first message at once and then that many a second, so it is `RUNNING` for as
//! long as SQS's would be and can be cancelled meanwhile; without a rate (SQS then "optimizes
//! the rate based on the backlog") kedge moves everything at once. The task counts the
//! source's available messages when it starts (`ApproximateNumberOfMessagesToMove`) and
//! completes once it has moved that many or the source has none left to move; it fails with
//! `AWS.SimpleQueueService.NonExistentQueue` when its source or destination queue is deleted
//! while it runs. Progress is made by [`QueueEngine::advance_move_tasks`], which the server
//! calls on a short interval, and before a task is listed or cancelled. After a restart a
//! running task carries on at its rate from the restart (not from its start: a long outage
//! does not turn into a burst). Finished tasks are kept, as SQS keeps them, so
//! `ListMessageMoveTasks` reports them afterwards — also across restarts.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use clock::Timestamp;
use serde::{Deserialize, Serialize};

use super::persist::QueueRecord;
use super::{MsgState, QueueEngine, SqsError, SqsErrorKind, State, attrs, counts_of, uuid_v4};
use crate::journal::{Record, Ticket};

/// Why a task fails when its source or destination queue no longer exists (SQS's words).
pub const NON_EXISTENT_QUEUE: &str = "AWS.SimpleQueueService.NonExistentQueue";

/// The states SQS reports for a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MoveTaskStatus {
    /// Moving messages.
    Running,
    /// Every message that was movable when the task started has moved.
    Completed,
    /// A cancel was asked for while running (SQS's passing state; kedge stops at once and
    /// goes straight to `Cancelled`, so only a journal written elsewhere holds it).
    Cancelling,
    /// Stopped by `CancelMessageMoveTask`.
    Cancelled,
    /// Stopped by an error; `failure_reason` says which.
    Failed,
}

impl MoveTaskStatus {
    /// The wire spelling (`RUNNING`, `COMPLETED`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            MoveTaskStatus::Running => "RUNNING",
            MoveTaskStatus::Completed => "COMPLETED",
            MoveTaskStatus::Cancelling => "CANCELLING",
            MoveTaskStatus::Cancelled => "CANCELLED",
            MoveTaskStatus::Failed => "FAILED",
        }
    }
}

/// One message move task, as `ListMessageMoveTasks` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveTask {
    /// Opaque handle given to the client (base64 of the task id and source ARN, as SQS does).
    pub handle: String,
    pub source_arn: String,
    /// `None`: each message goes back to the queue it was dead-lettered from.
    pub destination_arn: Option<String>,
    pub max_per_second: Option<i64>,
    pub status: MoveTaskStatus,
    /// When it started, milliseconds since the epoch.
    pub started_ms: u64,
    pub moved: u64,
    pub to_move: u64,
    pub failure_reason: Option<String>,
}

/// A task handle that names its task id and source queue.
pub fn task_handle(task_id: &str, source_arn: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(serde_json::json!({"taskId": task_id, "sourceArn": source_arn}).to_string())
}

/// The source ARN a handle names, or `None` when it is not a handle at all.
pub fn handle_source(handle: &str) -> Option<String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(handle)
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    v.get("sourceArn")?.as_str().map(str::to_owned)
}

/// Where a running task's rate is measured from: its start, or the restart that found it
/// running, and how many it had moved then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    from: Timestamp,
    moved: u64,
}

/// The paces of the tasks a restart finds running: each carries on from `now`.
pub(super) fn paces_after_restart(tasks: &[MoveTask], now: Timestamp) -> HashMap<String, Pace> {
    tasks
        .iter()
        .filter(|t| t.status == MoveTaskStatus::Running)
        .map(|t| {
            (
                t.handle.clone(),
                Pace {
                    from: now,
                    moved: t.moved,
                },
            )
        })
        .collect()
}

/// How many messages a task should have moved by `now`: the first at once, then
/// `max_per_second` a second from its pace; without a rate, all of them.
pub fn due(task: &MoveTask, pace: Pace, now: Timestamp) -> u64 {
    match task.max_per_second {
        None => task.to_move,
        Some(rate) => {
            let elapsed_ms = now.as_millis().saturating_sub(pace.from.as_millis());
            let since = elapsed_ms.saturating_mul(rate.max(1) as u64) / 1000;
            pace.moved
                .saturating_add(1)
                .saturating_add(since)
                .min(task.to_move)
        }
    }
}

impl QueueEngine {
    /// `StartMessageMoveTask`: start moving the dead-letter queue `source_arn`'s available
    /// messages to `destination_arn` (or back to where each came from). The first message (or,
    /// without a rate, every one) is moved before this returns; the ticket covers the moves and
    /// the task's record.
    pub fn start_move_task(
        &self,
        source_arn: &str,
        destination_arn: Option<&str>,
        max_per_second: Option<i64>,
    ) -> Result<(MoveTask, Ticket), SqsError> {
        self.journal.check()?;
        let not_found = |param: &str| {
            SqsError::new(
                SqsErrorKind::ResourceNotFound,
                format!("The resource that you specified for the {param} parameter doesn't exist."),
            )
        };
        let src = attrs::parse_arn(source_arn)
            .ok_or_else(|| {
                SqsError::bad_value(
                    "SourceArn",
                    source_arn,
                    "The ARN is not a valid SQS queue ARN.",
                )
            })?
            .to_owned();
        if !self.queue_exists(&src) {
            return Err(not_found("SourceArn"));
        }
        if self.dead_letter_sources(&src)?.is_empty() {
            return Err(SqsError::invalid_param(
                "Source queue must be configured as a Dead Letter Queue.",
            ));
        }
        if let Some(r) = max_per_second
            && !(1..=500).contains(&r)
        {
            return Err(SqsError::bad_value(
                "MaxNumberOfMessagesPerSecond",
                r,
                "Value must be between 1 and 500.",
            ));
        }
        if let Some(a) = destination_arn {
            let n = attrs::parse_arn(a).ok_or_else(|| {
                SqsError::bad_value("DestinationArn", a, "The ARN is not a valid SQS queue ARN.")
            })?;
            if !self.queue_exists(n) {
                return Err(not_found("DestinationArn"));
            }
        }
        let now = self.clock.now();
        let mut records = Vec::new();
        let mut st = self.state.lock();
        let st = &mut *st;
        // Bring running tasks up to date first: one that has just finished does not block.
        advance_locked(st, now, &mut records);
        if st
            .move_tasks
            .iter()
            .any(|t| t.status == MoveTaskStatus::Running && t.source_arn == source_arn)
        {
            return Err(SqsError::invalid_param(
                "There is already a task running. Only one active task is allowed for a source queue arn at a given time.",
            ));
        }
        let to_move = match st.queues.get_mut(&src) {
            Some(q) => {
                q.tick(now, &mut records);
                counts_of(q).visible
            }
            None => return Err(not_found("SourceArn")),
        };
        let task_id = uuid_v4(&mut st.rng);
        let handle = task_handle(&task_id, source_arn);
        st.move_tasks.push(MoveTask {
            handle: handle.clone(),
            source_arn: source_arn.to_owned(),
            destination_arn: destination_arn.map(str::to_owned),
            max_per_second,
            status: MoveTaskStatus::Running,
            started_ms: now.as_millis(),
            moved: 0,
            to_move,
            failure_reason: None,
        });
        st.move_pace.insert(
            handle.clone(),
            Pace {
                from: now,
                moved: 0,
            },
        );
        let before = records.len();
        advance_locked(st, now, &mut records);
        let task = st
            .move_tasks
            .iter()
            .rev()
            .find(|t| t.handle == handle)
            .cloned()
            .expect("the task just pushed");
        if !records[before..]
            .iter()
            .any(|r| matches!(r, Record::Queue(QueueRecord::PutMoveTask(t)) if t.handle == handle))
        {
            records.push(Record::Queue(QueueRecord::PutMoveTask(task.clone())));
        }
        Ok((task, self.journal.submit(records)))
    }

    /// `ListMessageMoveTasks`: the newest `max` tasks of a source queue, newest first, brought
    /// up to date.
    pub fn list_move_tasks(&self, source_arn: &str, max: usize) -> Result<Vec<MoveTask>, SqsError> {
        let src = attrs::parse_arn(source_arn).ok_or_else(|| {
            SqsError::bad_value(
                "SourceArn",
                source_arn,
                "The ARN is not a valid SQS queue ARN.",
            )
        })?;
        if !self.queue_exists(src) {
            return Err(SqsError::new(
                SqsErrorKind::ResourceNotFound,
                "The resource that you specified for the SourceArn parameter doesn't exist.",
            ));
        }
        let _ = self.advance_move_tasks();
        let st = self.state.lock();
        Ok(st
            .move_tasks
            .iter()
            .rev()
            .filter(|t| t.source_arn == source_arn)
            .take(max)
            .cloned()
            .collect())
    }

    /// `CancelMessageMoveTask`: stop a running task where it is (the messages it moved stay
    /// moved). Only a running task can be cancelled.
    pub fn cancel_move_task(&self, handle: &str) -> Result<(MoveTask, Ticket), SqsError> {
        self.journal.check()?;
        let now = self.clock.now();
        let mut records = Vec::new();
        let mut st = self.state.lock();
        let st = &mut *st;
        advance_locked(st, now, &mut records);
        let found = st.move_tasks.iter_mut().find(|t| t.handle == handle);
        let err = match found {
            Some(t) if t.status == MoveTaskStatus::Running => {
                t.status = MoveTaskStatus::Cancelled;
                let task = t.clone();
                st.move_pace.remove(handle);
                records.push(Record::Queue(QueueRecord::PutMoveTask(task.clone())));
                return Ok((task, self.journal.submit(records)));
            }
            Some(t) => SqsError::new(
                SqsErrorKind::UnsupportedOperation,
                format!(
                    "Only active tasks can be cancelled: the task is {}.",
                    t.status.as_str()
                ),
            ),
            // SQS's words: the handle is not repeated; a handle naming a queue that does not
            // exist, then one naming an unknown task, are "not found".
            None => match handle_source(handle) {
                None => SqsError::invalid_param("Value for parameter TaskHandle is invalid."),
                Some(src)
                    if attrs::parse_arn(&src).is_none_or(|name| !st.queues.contains_key(name)) =>
                {
                    SqsError::new(
                        SqsErrorKind::ResourceNotFound,
                        "The resource that you specified for the SourceArn parameter doesn't exist.",
                    )
                }
                Some(_) => SqsError::new(SqsErrorKind::ResourceNotFound, "Task does not exist."),
            },
        };
        // What the advance moved is journaled even though the cancel itself failed.
        if !records.is_empty() {
            drop(self.journal.submit(records));
        }
        Err(err)
    }

    /// Move what running tasks are due to move by now, and finish the tasks that are done or
    /// whose queues are gone. The server calls this on a short interval; it returns the ticket
    /// of what it journaled, if anything (nobody needs to wait on it: a receive of a moved
    /// message commits after the move).
    pub fn advance_move_tasks(&self) -> Option<Ticket> {
        if self.journal.check().is_err() {
            return None;
        }
        let now = self.clock.now();
        let mut records = Vec::new();
        let mut st = self.state.lock();
        if st.move_pace.is_empty() {
            return None;
        }
        advance_locked(&mut st, now, &mut records);
        drop(st);
        (!records.is_empty()).then(|| self.journal.submit(records))
    }
}

/// Bring every running task up to `now`.
fn advance_locked(st: &mut State, now: Timestamp, records: &mut Vec<Record>) {
    for i in 0..st.move_tasks.len() {
        let t = &st.move_tasks[i];
        if t.status != MoveTaskStatus::Running {
            continue;
        }
        let pace = st.move_pace.get(&t.handle).copied().unwrap_or(Pace {
            from: Timestamp::from_millis(t.started_ms),
            moved: 0,
        });
        let wanted = due(t, pace, now).saturating_sub(t.moved);
        let source = attrs::parse_arn(&t.source_arn).map(str::to_owned);
        let destination = t
            .destination_arn
            .as_deref()
            .map(|d| attrs::parse_arn(d).map(str::to_owned));
        let outcome = match (source, destination) {
            (Some(src), Some(Some(dst))) => move_some(st, &src, Some(&dst), wanted, now, records),
            (Some(src), None) => move_some(st, &src, None, wanted, now, records),
            _ => Err(NON_EXISTENT_QUEUE),
        };
        let t = &mut st.move_tasks[i];
        let before = (t.status, t.moved);
        match outcome {
            Ok((moved, drained)) => {
                t.moved += moved;
                if t.moved >= t.to_move || drained {
                    t.status = MoveTaskStatus::Completed;
                }
            }
            Err(reason) => {
                t.status = MoveTaskStatus::Failed;
                t.failure_reason = Some(reason.to_owned());
            }
        }
        if (t.status, t.moved) != before {
            records.push(Record::Queue(QueueRecord::PutMoveTask(t.clone())));
        }
        if t.status != MoveTaskStatus::Running {
            let handle = t.handle.clone();
            st.move_pace.remove(&handle);
        }
    }
}

/// Move up to `limit` of `source`'s available messages, oldest first, to `destination` (or,
/// when `None`, each back to the queue it was dead-lettered from; one whose queue is gone, or
/// of the other queue type, stays). Returns how many moved and whether the source has no
/// movable message left, or the failure when a named queue does not exist.
fn move_some(
    st: &mut State,
    source: &str,
    destination: Option<&str>,
    limit: u64,
    now: Timestamp,
    records: &mut Vec<Record>,
) -> Result<(u64, bool), &'static str> {
    if destination.is_some_and(|d| !st.queues.contains_key(d)) {
        return Err(NON_EXISTENT_QUEUE);
    }
    let mut src = st.queues.remove(source).ok_or(NON_EXISTENT_QUEUE)?;
    src.tick(now, records);
    let mut moved = 0u64;
    let mut candidates = src
        .messages
        .iter()
        .filter(|(_, m)| m.state == MsgState::Available)
        .map(|(s, _)| *s);
    let mut drained = true;
    let mut seqs = Vec::new();
    // Gather one more than the limit: whether it exists says if the source is drained.
    for seq in candidates.by_ref() {
        if seqs.len() as u64 == limit {
            drained = false;
            break;
        }
        seqs.push(seq);
    }
    drop(candidates);
    for seq in seqs {
        let target = match destination {
            Some(d) => Some(d.to_owned()),
            None => src
                .messages
                .get(&seq)
                .and_then(|m| m.m.dlq_source_arn.as_deref())
                .and_then(attrs::parse_arn)
                .map(str::to_owned),
        };
        let Some(target) = target else { continue };
        let Some(t) = st.queues.get_mut(&target) else {
            continue;
        };
        if t.attrs.fifo != src.attrs.fifo {
            continue;
        }
        if let Some(msg) = src.remove(seq) {
            let md5_body = msg.md5_body;
            records.push(Record::Queue(QueueRecord::Delete { queue: src.id, seq }));
            let mut m = msg.m;
            m.queue_id = t.id;
            m.seq = st.next_seq;
            st.next_seq += 1;
            m.visible = now;
            m.receive_count = 0;
            m.first_receive = None;
            m.dlq_source_arn = None;
            records.push(Record::Queue(QueueRecord::Insert(Arc::new(m.clone()))));
            t.insert_digested(m, now, md5_body);
            t.notify.notify_waiters();
            moved += 1;
        }
    }
    st.queues.insert(source.to_owned(), src);
    if moved > 0 {
        records.push(Record::Queue(QueueRecord::Meta {
            next_seq: st.next_seq,
            next_queue_id: st.next_queue_id,
        }));
    }
    Ok((moved, drained))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_names_its_source() {
        let h = task_handle("t-1", "arn:aws:sqs:us-east-1:000000000000:dlq");
        assert_eq!(
            handle_source(&h).as_deref(),
            Some("arn:aws:sqs:us-east-1:000000000000:dlq")
        );
        assert_eq!(handle_source("not base64!"), None);
    }
}
