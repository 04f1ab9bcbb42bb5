//! `AddPermission`: add a labelled statement to a queue's access policy.

use serde_json::{Value, json};

use store::queue::SqsError;

use super::input::{queue_name, req_str, str_list};
use crate::AppState;

pub(super) struct AddPermission {
    name: String,
    label: String,
    account_ids: Vec<String>,
    actions: Vec<String>,
}

impl AddPermission {
    pub(super) fn parse(input: &Value) -> Result<Self, SqsError> {
        Ok(AddPermission {
            name: queue_name(input)?,
            label: req_str(input, "Label")?.to_owned(),
            account_ids: str_list(input, "AWSAccountIds")?,
            actions: str_list(input, "Actions")?,
        })
    }

    pub(super) async fn apply(self, state: &AppState) -> Result<Value, SqsError> {
        state
            .store
            .queues
            .add_permission(&self.name, &self.label, &self.account_ids, &self.actions)?
            .await?;
        Ok(json!({}))
    }
}
