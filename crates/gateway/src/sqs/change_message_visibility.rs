//! `ChangeMessageVisibility`: change how long a received message stays invisible.

use serde_json::{Value, json};

use store::queue::SqsError;

use super::input::{opt_int, queue_name, req_str};
use crate::AppState;

pub(super) struct ChangeMessageVisibility {
    name: String,
    receipt_handle: String,
    visibility_timeout: i64,
}

impl ChangeMessageVisibility {
    pub(super) fn parse(input: &Value) -> Result<Self, SqsError> {
        let name = queue_name(input)?;
        let receipt_handle = req_str(input, "ReceiptHandle")?.to_owned();
        let visibility_timeout = opt_int(input, "VisibilityTimeout")?
            .ok_or_else(|| SqsError::missing("VisibilityTimeout"))?;
        Ok(ChangeMessageVisibility {
            name,
            receipt_handle,
            visibility_timeout,
        })
    }

    pub(super) async fn apply(self, state: &AppState) -> Result<Value, SqsError> {
        let (mut r, ticket) = state.store.queues.change_visibility(
            &self.name,
            &[(self.receipt_handle, self.visibility_timeout)],
        )?;
        ticket.await?;
        r.pop().unwrap_or(Ok(()))?;
        Ok(json!({}))
    }
}
