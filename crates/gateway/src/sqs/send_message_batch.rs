//! `SendMessageBatch`: send up to ten messages; each entry succeeds or fails alone.

use serde_json::Value;

use store::queue::{SendRequest, SqsError, SqsErrorKind};

use super::input::{
    SendIn, Text, batch_entries, check_batch, parse_send_entry, queue_name, queue_name_of, req_str,
    sender_id, text, typed,
};
use super::output::{BatchAnswer, FailedEntry, Sent};
use crate::{AppState, Incoming2};

#[derive(Debug)]
pub(super) struct SendMessageBatch {
    name: String,
    /// The ids of the entries in `entries`, in order.
    ids: Vec<String>,
    entries: Vec<SendRequest>,
    /// Entries that could not be read; they fail alone.
    parse_failures: Vec<(String, SqsError)>,
    sender: String,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SendMessageBatchIn<'a> {
    #[serde(borrow)]
    queue_url: Option<Text<'a>>,
    #[serde(borrow)]
    entries: Option<Vec<SendIn<'a>>>,
}

impl SendMessageBatch {
    pub(super) fn parse(input: &Value, req: &Incoming2) -> Result<Self, SqsError> {
        let name = queue_name(input)?;
        let batch = batch_entries(input, "SendMessageBatchRequestEntry")?;
        let mut entries = Vec::with_capacity(batch.len());
        for e in batch {
            entries.push((req_str(e, "Id")?.to_owned(), parse_send_entry(e)));
        }
        Self::new(name, entries, req)
    }

    /// [`parse`](Self::parse) for a JSON body of the documented types, without a `Value`
    /// tree; `None` when the body needs the `Value` reading.
    pub(super) fn parse_json(body: &[u8], req: &Incoming2) -> Option<Result<Self, SqsError>> {
        let input: SendMessageBatchIn = typed(body)?;
        let read = || {
            let name = queue_name_of(text(&input.queue_url))?;
            let batch = input.entries.ok_or_else(|| SqsError::missing("Entries"))?;
            check_batch("SendMessageBatchRequestEntry", batch.len(), |i| {
                text(&batch[i].id).ok_or_else(|| SqsError::missing("Id"))
            })?;
            let entries = batch
                .into_iter()
                .map(|mut e| {
                    let id = e.id.take().map(|t| t.0.into_owned()).unwrap_or_default();
                    (id, e.into_request())
                })
                .collect();
            Self::new(name, entries, req)
        };
        Some(read())
    }

    /// The batch from its entries, each read or failed alone; the whole batch fails when its
    /// payload is over SQS's limit.
    fn new(
        name: String,
        batch: Vec<(String, Result<SendRequest, SqsError>)>,
        req: &Incoming2,
    ) -> Result<Self, SqsError> {
        // The batch's payload limit is SQS's fixed 1 MiB; an entry over the queue's
        // MaximumMessageSize fails alone in the engine while the others are sent.
        let max_size = store::queue::attrs::MAX_BATCH_PAYLOAD;
        let mut ids = Vec::with_capacity(batch.len());
        let mut entries = Vec::with_capacity(batch.len());
        let mut total = 0usize;
        let mut parse_failures: Vec<(String, SqsError)> = Vec::new();
        for (id, entry) in batch {
            match entry {
                Ok(mut r) => {
                    r.http_trace_header = req.trace_id.clone();
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
        let (results, ticket) =
            state
                .store
                .queues
                .send_batch(&self.name, self.entries, &self.sender)?;
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
