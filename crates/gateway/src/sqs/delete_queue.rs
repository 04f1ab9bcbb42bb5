//! `DeleteQueue`: delete a queue and its messages.

use serde_json::{Value, json};

use store::queue::SqsError;

use super::input::queue_name;
use crate::AppState;

pub(super) struct DeleteQueue {
    name: String,
}

impl DeleteQueue {
    pub(super) fn parse(input: &Value) -> Result<Self, SqsError> {
        Ok(DeleteQueue {
            name: queue_name(input)?,
        })
    }

    pub(super) async fn apply(self, state: &AppState) -> Result<Value, SqsError> {
        state.store.queues.delete_queue(&self.name)?.await?;
        Ok(json!({}))
    }
}
