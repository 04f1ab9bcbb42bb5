//! `ChangeMessageVisibilityBatch`: change the visibility of up to ten received messages; each
//! entry succeeds or fails alone.

use serde_json::Value;

use store::queue::SqsError;

use super::input::{batch_entries, opt_int, queue_name, req_str};
use super::output::{BatchAnswer, Succeeded, batch_output};
use crate::AppState;

pub(super) struct ChangeMessageVisibilityBatch {
    name: String,
    ids: Vec<String>,
    /// (receipt handle, visibility timeout) per entry; a missing timeout is 0.
    entries: Vec<(String, i64)>,
}

impl ChangeMessageVisibilityBatch {
    pub(super) fn parse(input: &Value) -> Result<Self, SqsError> {
        let name = queue_name(input)?;
        let batch = batch_entries(input, "ChangeMessageVisibilityBatchRequestEntry")?;
        let mut ids = Vec::new();
        let mut entries = Vec::new();
        for e in batch {
            ids.push(req_str(e, "Id")?.to_owned());
            let t = opt_int(e, "VisibilityTimeout")?.unwrap_or(0);
            entries.push((req_str(e, "ReceiptHandle")?.to_owned(), t));
        }
        Ok(ChangeMessageVisibilityBatch { name, ids, entries })
    }

    pub(super) async fn apply(self, state: &AppState) -> Result<BatchAnswer<Succeeded>, SqsError> {
        let (results, ticket) = state
            .store
            .queues
            .change_visibility(&self.name, &self.entries)?;
        ticket.await?;
        Ok(batch_output(&self.ids, results))
    }
}
