//! `DeleteMessageBatch`: delete up to ten received messages; each entry succeeds or fails alone.

use serde_json::Value;

use store::queue::SqsError;

use super::input::{batch_entries, queue_name, req_str};
use super::output::{BatchAnswer, Succeeded, batch_output};
use crate::AppState;

pub(super) struct DeleteMessageBatch {
    name: String,
    ids: Vec<String>,
    receipt_handles: Vec<String>,
}

impl DeleteMessageBatch {
    pub(super) fn parse(input: &Value) -> Result<Self, SqsError> {
        let name = queue_name(input)?;
        let entries = batch_entries(input)?;
        let mut ids = Vec::new();
        let mut receipt_handles = Vec::new();
        for e in entries {
            ids.push(req_str(e, "Id")?.to_owned());
            receipt_handles.push(req_str(e, "ReceiptHandle")?.to_owned());
        }
        Ok(DeleteMessageBatch {
            name,
            ids,
            receipt_handles,
        })
    }

    pub(super) async fn apply(self, state: &AppState) -> Result<BatchAnswer<Succeeded>, SqsError> {
        let (results, ticket) = state
            .store
            .queues
            .delete(&self.name, &self.receipt_handles)?;
        ticket.await?;
        Ok(batch_output(&self.ids, results))
    }
}
