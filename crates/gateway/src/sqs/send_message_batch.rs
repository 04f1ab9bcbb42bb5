//! `SendMessageBatch`: send up to ten messages; each entry succeeds or fails alone.

use serde_json::Value;

use store::queue::{SendRequest, SqsError, SqsErrorKind};

use super::input::{batch_entries, parse_send_entry, queue_name, req_str, sender_id};
use super::output::{BatchAnswer, FailedEntry, Sent};
use crate::{AppState, Incoming2};

pub(super) struct SendMessageBatch {
    name: String,
    /// The ids of the entries in `entries`, in order.
    ids: Vec<String>,
    entries: Vec<SendRequest>,
    /// Entries that could not be read; they fail alone.
    parse_failures: Vec<(String, SqsError)>,
    sender: String,
}

impl SendMessageBatch {
    pub(super) fn parse(input: &Value, req: &Incoming2) -> Result<Self, SqsError> {
        let name = queue_name(input)?;
        let batch = batch_entries(input)?;
        // The batch's payload limit is SQS's fixed 1 MiB; an entry over the queue's
        // MaximumMessageSize fails alone in the engine while the others are sent.
        let max_size = store::queue::attrs::MAX_BATCH_PAYLOAD;
        let mut ids = Vec::new();
        let mut entries = Vec::new();
        let mut total = 0usize;
        let mut parse_failures: Vec<(String, SqsError)> = Vec::new();
        for e in batch {
            let id = req_str(e, "Id")?.to_owned();
            match parse_send_entry(e) {
                Ok(r) => {
                    total += r.body.len()
                        + r.attributes
                            .iter()
                            .map(|(k, v)| {
                                k.len()
                                    + v.data_type.len()
                                    + v.string_value.as_ref().map_or(0, |s| s.len())
                                    + v.binary_value.as_ref().map_or(0, |b| b.len())
                            })
                            .sum::<usize>();
                    ids.push(id);
                    entries.push(r);
                }
                Err(err) => parse_failures.push((id, err)),
            }
        }
        if total > max_size {
            return Err(SqsError::new(
                SqsErrorKind::BatchRequestTooLong,
                format!(
                    "Batch requests cannot be longer than {max_size} bytes. You have sent {total} bytes."
                ),
            ));
        }
        Ok(SendMessageBatch {
            name,
            ids,
            entries,
            parse_failures,
            sender: sender_id(req),
        })
    }

    pub(super) async fn apply(self, state: &AppState) -> Result<BatchAnswer<Sent>, SqsError> {
        let (results, ticket) = state
            .store
            .queues
            .send(&self.name, self.entries, &self.sender)?;
        ticket.await?;
        let mut answer = BatchAnswer {
            failed: self
                .parse_failures
                .iter()
                .map(|(id, e)| FailedEntry::new(id, e))
                .collect(),
            successful: Vec::with_capacity(results.len()),
        };
        for (id, r) in self.ids.into_iter().zip(results) {
            match r {
                Ok(r) => answer.successful.push(Sent::new(Some(id), r)),
                Err(e) => answer.failed.push(FailedEntry::new(&id, &e)),
            }
        }
        Ok(answer)
    }
}
