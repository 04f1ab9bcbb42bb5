//! `CancelMessageMoveTask`: stop a running message move task.

use serde_json::{Value, json};

use store::queue::SqsError;

use super::input::req_str;
use crate::AppState;

pub(super) struct CancelMessageMoveTask {
    task_handle: String,
}

impl CancelMessageMoveTask {
    pub(super) fn parse(input: &Value) -> Result<Self, SqsError> {
        Ok(CancelMessageMoveTask {
            task_handle: req_str(input, "TaskHandle")?.to_owned(),
        })
    }

    pub(super) async fn apply(self, state: &AppState) -> Result<Value, SqsError> {
        let (task, ticket) = state.store.queues.cancel_move_task(&self.task_handle)?;
        ticket.await?;
        Ok(json!({"ApproximateNumberOfMessagesMoved": task.moved}))
    }
}
