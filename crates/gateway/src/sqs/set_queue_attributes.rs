//! `SetQueueAttributes`: change a queue's attributes.

use std::collections::HashMap;

use serde_json::{Value, json};

use store::queue::SqsError;

use super::input::{queue_name, str_map};
use crate::AppState;

pub(super) struct SetQueueAttributes {
    name: String,
    attributes: HashMap<String, String>,
}

impl SetQueueAttributes {
    pub(super) fn parse(input: &Value) -> Result<Self, SqsError> {
        Ok(SetQueueAttributes {
            name: queue_name(input)?,
            attributes: str_map(input, "Attributes")?,
        })
    }

    pub(super) async fn apply(self, state: &AppState) -> Result<Value, SqsError> {
        state
            .store
            .queues
            .set_attributes(&self.name, &self.attributes)?
            .await?;
        Ok(json!({}))
    }
}
