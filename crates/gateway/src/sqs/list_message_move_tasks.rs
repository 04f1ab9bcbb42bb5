//! `ListMessageMoveTasks`: the message move tasks of a source queue, newest first.

use serde_json::{Map, Value, json};

use store::queue::SqsError;
use store::queue::move_task::MoveTask;

use super::input::{opt_int, req_str};
use crate::AppState;

pub(super) struct ListMessageMoveTasks {
    source_arn: String,
    max_results: usize,
}

impl ListMessageMoveTasks {
    pub(super) fn parse(input: &Value) -> Result<Self, SqsError> {
        let source_arn = req_str(input, "SourceArn")?.to_owned();
        let max_results = match opt_int(input, "MaxResults")? {
            None => 1,
            Some(m) if (1..=10).contains(&m) => m as usize,
            Some(m) => {
                return Err(SqsError::bad_value(
                    "MaxResults",
                    m,
                    "You must enter a number that's between 1 and 10.",
                ));
            }
        };
        Ok(ListMessageMoveTasks {
            source_arn,
            max_results,
        })
    }

    pub(super) fn apply(self, state: &AppState) -> Result<Value, SqsError> {
        let results: Vec<Value> = state
            .store
            .queues
            .list_move_tasks(&self.source_arn, self.max_results)?
            .iter()
            .map(move_task_json)
            .collect();
        Ok(json!({"Results": results}))
    }
}

/// A task as `ListMessageMoveTasks` reports it.
fn move_task_json(t: &MoveTask) -> Value {
    let mut m = Map::new();
    // Only a running task is reported with its handle (AWS-recorded answers).
    if t.status == store::queue::move_task::MoveTaskStatus::Running {
        m.insert("TaskHandle".into(), t.handle.clone().into());
    }
    m.insert("Status".into(), t.status.as_str().into());
    m.insert("SourceArn".into(), t.source_arn.clone().into());
    if let Some(d) = &t.destination_arn {
        m.insert("DestinationArn".into(), d.clone().into());
    }
    if let Some(r) = t.max_per_second {
        m.insert("MaxNumberOfMessagesPerSecond".into(), r.into());
    }
    m.insert("ApproximateNumberOfMessagesMoved".into(), t.moved.into());
    m.insert("ApproximateNumberOfMessagesToMove".into(), t.to_move.into());
    if let Some(f) = &t.failure_reason {
        m.insert("FailureReason".into(), f.clone().into());
    }
    m.insert("StartedTimestamp".into(), t.started_ms.into());
    Value::Object(m)
}
