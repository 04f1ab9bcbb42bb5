//! `GetQueueUrl`: the URL of an existing queue.

use serde_json::{Value, json};

use store::queue::SqsError;

use super::input::{queue_url, req_str};
use crate::{AppState, Incoming2};

pub(super) struct GetQueueUrl {
    name: String,
    host: String,
}

impl GetQueueUrl {
    pub(super) fn parse(input: &Value, req: &Incoming2) -> Result<Self, SqsError> {
        Ok(GetQueueUrl {
            name: req_str(input, "QueueName")?.to_owned(),
            host: req.host.clone(),
        })
    }

    pub(super) fn apply(self, state: &AppState) -> Result<Value, SqsError> {
        if !state.store.queues.queue_exists(&self.name) {
            return Err(SqsError::no_queue());
        }
        Ok(json!({"QueueUrl": queue_url(&self.host, &self.name)}))
    }
}
