//! `DeleteMessage`: delete a received message by its receipt handle.

use serde_json::{Value, json};

use store::queue::SqsError;

use super::input::{Text, queue_name, queue_name_of, req_str, text, typed};
use crate::AppState;

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteMessageIn<'a> {
    #[serde(borrow)]
    queue_url: Option<Text<'a>>,
    #[serde(borrow)]
    receipt_handle: Option<Text<'a>>,
}

#[derive(Debug)]
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

    /// [`parse`](Self::parse) for a JSON body of the documented types, without a `Value`
    /// tree; `None` when the body needs the `Value` reading.
    pub(super) fn parse_json(body: &[u8]) -> Option<Result<Self, SqsError>> {
        let input: DeleteMessageIn = typed(body)?;
        Some(queue_name_of(text(&input.queue_url)).and_then(|name| {
            Ok(DeleteMessage {
                name,
                receipt_handle: text(&input.receipt_handle)
                    .ok_or_else(|| SqsError::missing("ReceiptHandle"))?
                    .to_owned(),
            })
        }))
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
