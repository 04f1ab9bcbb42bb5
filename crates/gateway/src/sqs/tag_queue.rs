//! `TagQueue`: add or replace a queue's tags.

use std::collections::HashMap;

use serde_json::{Value, json};

use store::queue::SqsError;

use super::input::{queue_name, str_map};
use crate::AppState;

pub(super) struct TagQueue {
    name: String,
    tags: HashMap<String, String>,
}

impl TagQueue {
    pub(super) fn parse(input: &Value) -> Result<Self, SqsError> {
        Ok(TagQueue {
            name: queue_name(input)?,
            tags: str_map(input, "Tags")?,
        })
    }

    pub(super) async fn apply(self, state: &AppState) -> Result<Value, SqsError> {
        state
            .store
            .queues
            .tag_queue(&self.name, &self.tags)?
            .await?;
        Ok(json!({}))
    }
}
