//! `DeleteMessageBatch`: delete up to ten received messages; each entry succeeds or fails alone.

use serde_json::Value;

use store::queue::SqsError;

use super::input::{
    Text, batch_entries, check_batch, queue_name, queue_name_of, req_str, text, typed,
};
use super::output::{BatchAnswer, Succeeded, batch_output};
use crate::AppState;

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteMessageBatchIn<'a> {
    #[serde(borrow)]
    queue_url: Option<Text<'a>>,
    #[serde(borrow)]
    entries: Option<Vec<EntryIn<'a>>>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EntryIn<'a> {
    #[serde(borrow)]
    id: Option<Text<'a>>,
    #[serde(borrow)]
    receipt_handle: Option<Text<'a>>,
}

#[derive(Debug)]
pub(super) struct DeleteMessageBatch {
    name: String,
    ids: Vec<String>,
    receipt_handles: Vec<String>,
}

impl DeleteMessageBatch {
    pub(super) fn parse(input: &Value) -> Result<Self, SqsError> {
        let name = queue_name(input)?;
        let entries = batch_entries(input, "DeleteMessageBatchRequestEntry")?;
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

    /// [`parse`](Self::parse) for a JSON body of the documented types, without a `Value`
    /// tree; `None` when the body needs the `Value` reading.
    pub(super) fn parse_json(body: &[u8]) -> Option<Result<Self, SqsError>> {
        let input: DeleteMessageBatchIn = typed(body)?;
        let read = || {
            let name = queue_name_of(text(&input.queue_url))?;
            let entries = input
                .entries
                .as_ref()
                .ok_or_else(|| SqsError::missing("Entries"))?;
            check_batch("DeleteMessageBatchRequestEntry", entries.len(), |i| {
                text(&entries[i].id).ok_or_else(|| SqsError::missing("Id"))
            })?;
            let mut ids = Vec::with_capacity(entries.len());
            let mut receipt_handles = Vec::with_capacity(entries.len());
            for e in entries {
                ids.push(text(&e.id).unwrap_or_default().to_owned());
                receipt_handles.push(
                    text(&e.receipt_handle)
                        .ok_or_else(|| SqsError::missing("ReceiptHandle"))?
                        .to_owned(),
                );
            }
            Ok(DeleteMessageBatch {
                name,
                ids,
                receipt_handles,
            })
        };
        Some(read())
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
