//! `ListQueueTags`: a queue's tags.

use serde_json::{Value, json};

use store::queue::SqsError;

use super::input::queue_name;
use crate::AppState;

pub(super) struct ListQueueTags {
    name: String,
}

impl ListQueueTags {
    pub(super) fn parse(input: &Value) -> Result<Self, SqsError> {
        Ok(ListQueueTags {
            name: queue_name(input)?,
        })
    }

    pub(super) fn apply(self, state: &AppState) -> Result<Value, SqsError> {
        let tags = state.store.queues.list_tags(&self.name)?;
        if tags.is_empty() {
            Ok(json!({}))
        } else {
            Ok(json!({"Tags": tags}))
        }
    }
}
