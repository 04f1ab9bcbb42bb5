//! `SendMessage`: send one message.

use serde_json::Value;

use store::queue::{SendRequest, SqsError};

use super::input::{SendIn, parse_send_entry, queue_name, queue_name_of, sender_id, text, typed};
use super::output::Sent;
use crate::{AppState, Incoming2};

#[derive(Debug)]
pub(super) struct SendMessage {
    name: String,
    entry: SendRequest,
    sender: String,
}

impl SendMessage {
    pub(super) fn parse(input: &Value, req: &Incoming2) -> Result<Self, SqsError> {
        Ok(SendMessage {
            name: queue_name(input)?,
            entry: SendRequest {
                http_trace_header: req.trace_id.clone(),
                ..parse_send_entry(input)?
            },
            sender: sender_id(req),
        })
    }

    /// [`parse`](Self::parse) for a JSON body of the documented types, without a `Value`
    /// tree; `None` when the body needs the `Value` reading.
    pub(super) fn parse_json(body: &[u8], req: &Incoming2) -> Option<Result<Self, SqsError>> {
        let input: SendIn = typed(body)?;
        Some(queue_name_of(text(&input.queue_url)).and_then(|name| {
            Ok(SendMessage {
                name,
                entry: SendRequest {
                    http_trace_header: req.trace_id.clone(),
                    ..input.into_request()?
                },
                sender: sender_id(req),
            })
        }))
    }

    pub(super) async fn apply(self, state: &AppState) -> Result<Sent, SqsError> {
        let q = &state.store.queues;
        let (mut results, ticket) = q.send(&self.name, vec![self.entry], &self.sender)?;
        ticket.await?;
        let r = results
            .pop()
            .unwrap_or_else(|| Err(SqsError::invalid_param("empty send")))?;
        Ok(Sent::new(None, r))
    }
}
