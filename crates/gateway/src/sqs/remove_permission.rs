//! `RemovePermission`: remove a labelled statement from a queue's access policy.

use serde_json::{Value, json};

use store::queue::SqsError;

use super::input::{queue_name, req_str};
use crate::AppState;

pub(super) struct RemovePermission {
    name: String,
    label: String,
}

impl RemovePermission {
    pub(super) fn parse(input: &Value) -> Result<Self, SqsError> {
        Ok(RemovePermission {
            name: queue_name(input)?,
            label: req_str(input, "Label")?.to_owned(),
        })
    }

    pub(super) async fn apply(self, state: &AppState) -> Result<Value, SqsError> {
        state
            .store
            .queues
            .remove_permission(&self.name, &self.label)?
            .await?;
        Ok(json!({}))
    }
}
