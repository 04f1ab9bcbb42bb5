//! `ListQueues`: queue URLs by name prefix, a page at a time.

use serde_json::{Map, Value};

use store::queue::SqsError;

use super::input::{opt_int, opt_str, queue_url};
use crate::{AppState, Incoming2};

pub(super) struct ListQueues {
    prefix: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
    host: String,
}

impl ListQueues {
    pub(super) fn parse(input: &Value, req: &Incoming2) -> Result<Self, SqsError> {
        Ok(ListQueues {
            prefix: opt_str(input, "QueueNamePrefix")?.map(str::to_owned),
            max_results: opt_int(input, "MaxResults")?,
            next_token: opt_str(input, "NextToken")?.map(str::to_owned),
            host: req.host.clone(),
        })
    }

    pub(super) fn apply(self, state: &AppState) -> Result<Value, SqsError> {
        let (names, token) = state.store.queues.list_queues(
            self.prefix.as_deref(),
            self.max_results,
            self.next_token.as_deref(),
        )?;
        let mut out = Map::new();
        // No queue: SQS's JSON answer has no `QueueUrls` member at all.
        if !names.is_empty() {
            out.insert(
                "QueueUrls".into(),
                names
                    .iter()
                    .map(|n| Value::String(queue_url(&self.host, n)))
                    .collect(),
            );
        }
        if let Some(t) = token {
            out.insert("NextToken".into(), Value::String(t));
        }
        Ok(Value::Object(out))
    }
}
