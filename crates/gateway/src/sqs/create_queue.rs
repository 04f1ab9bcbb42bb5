//! `CreateQueue`: create a queue (or find an identical one) and answer its URL.

use std::collections::HashMap;

use serde_json::{Value, json};

use store::queue::SqsError;

use super::input::{queue_url, req_str, str_map};
use crate::{AppState, Incoming2};

pub(super) struct CreateQueue {
    name: String,
    attributes: HashMap<String, String>,
    tags: HashMap<String, String>,
    host: String,
}

impl CreateQueue {
    pub(super) fn parse(input: &Value, req: &Incoming2) -> Result<Self, SqsError> {
        let name = req_str(input, "QueueName")?.to_owned();
        let attributes = str_map(input, "Attributes")?;
        // `tags` as the JSON protocol names them, else `Tags`.
        let tags = str_map(input, "tags").and_then(|t| {
            if t.is_empty() {
                str_map(input, "Tags")
            } else {
                Ok(t)
            }
        })?;
        Ok(CreateQueue {
            name,
            attributes,
            tags,
            host: req.host.clone(),
        })
    }

    pub(super) async fn apply(self, state: &AppState) -> Result<Value, SqsError> {
        state
            .store
            .queues
            .create_queue(&self.name, &self.attributes, &self.tags)?
            .await?;
        Ok(json!({"QueueUrl": queue_url(&self.host, &self.name)}))
    }
}
