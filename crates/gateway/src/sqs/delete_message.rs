//! `DeleteMessage`: delete a received message by its receipt handle.

use serde_json::{Value, json};

use store::queue::SqsError;

use super::input::{queue_name, req_str};
use crate::AppState;

pub(super) struct DeleteMessage {
    name: String,
    receipt_handle: String,
}

impl DeleteMessage {
    pub(super) fn parse(input: &Value) -> Result<Self, SqsError> {
        Ok(DeleteMessage {
            name: queue_name(input)?,
            receipt_handle: req_str(input, "ReceiptHandle")?.to_owned(),
        })
    }

    pub(super) async fn apply(self, state: &AppState) -> Result<Value, SqsError> {
        let (mut r, ticket) = state
            .store
            .queues
            .delete(&self.name, &[self.receipt_handle])?;
        ticket.await?;
        r.pop().unwrap_or(Ok(()))?;
        Ok(json!({}))
    }
}
