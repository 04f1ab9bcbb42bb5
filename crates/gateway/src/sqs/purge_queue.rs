//! `PurgeQueue`: delete every message of a queue.

use serde_json::{Value, json};

use store::queue::SqsError;

use super::input::queue_name;
use crate::AppState;

pub(super) struct PurgeQueue {
    name: String,
}

impl PurgeQueue {
    pub(super) fn parse(input: &Value) -> Result<Self, SqsError> {
        Ok(PurgeQueue {
            name: queue_name(input)?,
        })
    }

    pub(super) async fn apply(self, state: &AppState) -> Result<Value, SqsError> {
        state.store.queues.purge_queue(&self.name)?.await?;
        Ok(json!({}))
    }
}
