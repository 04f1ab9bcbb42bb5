//! Message move tasks (`StartMessageMoveTask`, `ListMessageMoveTasks`,
//! `CancelMessageMoveTask`): typed, journaled, and recovered after a restart.
//!
//! kedge moves a dead-letter queue's messages inside one engine call (there is no rate to
//! respect locally), so a task is `COMPLETED` from the moment it is answered; it is still kept,
//! like SQS keeps it, so `ListMessageMoveTasks` reports it afterwards — also across restarts.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The states SQS reports for a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MoveTaskStatus {
    /// Moving messages (never observed here: kedge moves them within the request).
    Running,
    /// Every message that was movable when the task started has moved.
    Completed,
    /// A cancel was asked for while running.
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
