//! `UntagQueue`: remove tags from a queue by key.

use serde_json::{Value, json};

use store::queue::SqsError;

use super::input::{queue_name, str_list};
use crate::AppState;

pub(super) struct UntagQueue {
    name: String,
    keys: Vec<String>,
}

impl UntagQueue {
    pub(super) fn parse(input: &Value) -> Result<Self, SqsError> {
        Ok(UntagQueue {
            name: queue_name(input)?,
            keys: str_list(input, "TagKeys")?,
        })
    }

    pub(super) async fn apply(self, state: &AppState) -> Result<Value, SqsError> {
        state
            .store
            .queues
            .untag_queue(&self.name, &self.keys)?
            .await?;
        Ok(json!({}))
    }
}
