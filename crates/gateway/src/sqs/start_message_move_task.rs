//! `StartMessageMoveTask`: start moving messages out of a dead-letter queue.

use serde_json::{Value, json};

use store::queue::SqsError;

use super::input::{opt_int, opt_str, req_str};
use crate::AppState;

pub(super) struct StartMessageMoveTask {
    source_arn: String,
    destination_arn: Option<String>,
    max_per_second: Option<i64>,
}

impl StartMessageMoveTask {
    pub(super) fn parse(input: &Value) -> Result<Self, SqsError> {
        Ok(StartMessageMoveTask {
            source_arn: req_str(input, "SourceArn")?.to_owned(),
            destination_arn: opt_str(input, "DestinationArn")?.map(str::to_owned),
            max_per_second: opt_int(input, "MaxNumberOfMessagesPerSecond")?,
        })
    }

    pub(super) async fn apply(self, state: &AppState) -> Result<Value, SqsError> {
        let (task, ticket) = state.store.queues.start_move_task(
            &self.source_arn,
            self.destination_arn.as_deref(),
            self.max_per_second,
        )?;
        ticket.await?;
        Ok(json!({"TaskHandle": task.handle}))
    }
}
