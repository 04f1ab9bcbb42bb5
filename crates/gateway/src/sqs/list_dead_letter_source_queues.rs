//! `ListDeadLetterSourceQueues`: the queues whose redrive policy names this one as their
//! dead-letter queue.

use serde_json::{Map, Value};

use store::queue::SqsError;

use super::input::{opt_int, opt_str, queue_name, queue_url};
use crate::{AppState, Incoming2};

pub(super) struct ListDeadLetterSourceQueues {
    name: String,
    /// `MaxResults` and `NextToken` as read: a missing queue is reported before a bad value
    /// in either, so their errors wait until the queue has been looked up.
    max_results: Result<Option<i64>, SqsError>,
    next_token: Result<Option<String>, SqsError>,
    host: String,
}

impl ListDeadLetterSourceQueues {
    pub(super) fn parse(input: &Value, req: &Incoming2) -> Result<Self, SqsError> {
        Ok(ListDeadLetterSourceQueues {
            name: queue_name(input)?,
            max_results: opt_int(input, "MaxResults"),
            next_token: opt_str(input, "NextToken").map(|t| t.map(str::to_owned)),
            host: req.host.clone(),
        })
    }

    pub(super) fn apply(self, state: &AppState) -> Result<Value, SqsError> {
        let names = state.store.queues.dead_letter_sources(&self.name)?;
        let max = self.max_results?;
        if let Some(m) = max
            && !(1..=1000).contains(&m)
        {
            return Err(SqsError::bad_value(
                "MaxResults",
                m,
                "Must be between 1 and 1000, if provided.",
            ));
        }
        let start = match self.next_token? {
            Some(t) => t
                .parse::<usize>()
                .map_err(|_| SqsError::invalid_param("Invalid or expired next token."))?,
            None => 0,
        };
        let limit = max.map(|m| m as usize).unwrap_or(1000);
        let page: Vec<Value> = names
            .iter()
            .skip(start)
            .take(limit)
            .map(|n| Value::String(queue_url(&self.host, n)))
            .collect();
        let mut out = Map::new();
        out.insert("queueUrls".into(), Value::Array(page));
        if max.is_some() && start + limit < names.len() {
            out.insert(
                "NextToken".into(),
                Value::String((start + limit).to_string()),
            );
        }
        Ok(Value::Object(out))
    }
}
