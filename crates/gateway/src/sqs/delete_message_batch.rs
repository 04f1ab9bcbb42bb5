//! `DeleteMessageBatch`: delete up to ten received messages; each entry succeeds or fails alone.

use serde_json::Value;

use store::queue::SqsError;

use super::input::{
    Strs, Text, batch_entries, check_batch, queue_name, queue_name_of, req_str, text, typed,
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
    ids: Strs,
    receipt_handles: Strs,
}

impl DeleteMessageBatch {
    pub(super) fn parse(input: &Value) -> Result<Self, SqsError> {
        let name = queue_name(input)?;
        let entries = batch_entries(input, "DeleteMessageBatchRequestEntry")?;
        let mut ids = Strs::with_capacity(entries.len(), 0);
        let mut receipt_handles = Strs::with_capacity(entries.len(), 0);
        for e in entries {
            ids.push(req_str(e, "Id")?);
            receipt_handles.push(req_str(e, "ReceiptHandle")?);
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
            let len = |t: &Option<Text>| text(t).map_or(0, str::len);
            let mut ids =
                Strs::with_capacity(entries.len(), entries.iter().map(|e| len(&e.id)).sum());
            let mut receipt_handles = Strs::with_capacity(
                entries.len(),
                entries.iter().map(|e| len(&e.receipt_handle)).sum(),
            );
            for e in entries {
                ids.push(text(&e.id).unwrap_or_default());
                receipt_handles.push(
                    text(&e.receipt_handle).ok_or_else(|| SqsError::missing("ReceiptHandle"))?,
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
            .delete(&self.name, &self.receipt_handles.to_vec())?;
        ticket.await?;
        Ok(batch_output(&self.ids.to_vec(), results))
    }
}
