//! SQS actions over both wire protocols.
//!
//! One handler per action works on the JSON 1.0 input shape and produces the JSON output
//! shape. For the query protocol, form parameters are first normalised to that JSON input
//! (`Attribute.1.Name` → `Attributes`, `SendMessageBatchRequestEntry.2.Id` → `Entries[1].Id`,
//! …) and the JSON output is rendered to the XML AWS sends. Errors carry AWS's codes:
//! `__type` plus the `x-amzn-query-error` header in JSON, `<Error><Code>` in XML.

mod change_message_visibility;
mod change_message_visibility_batch;
mod create_queue;
mod delete_message;
mod delete_message_batch;
mod delete_queue;
mod error;
mod get_queue_attributes;
mod get_queue_url;
mod input;
mod list_queue_tags;
mod list_queues;
mod output;
mod purge_queue;
mod query;
mod receive_message;
mod send_message;
mod send_message_batch;
mod set_queue_attributes;
mod tag_queue;
mod unknown;
mod untag_queue;
mod xml;

use hyper::StatusCode;
use serde_json::{Map, Value, json};

use store::queue::{SqsError, SqsErrorKind};

use crate::{AppState, HttpResponse, Incoming2, json_response};

use change_message_visibility::ChangeMessageVisibility;
use change_message_visibility_batch::ChangeMessageVisibilityBatch;
use create_queue::CreateQueue;
use delete_message::DeleteMessage;
use delete_message_batch::DeleteMessageBatch;
use delete_queue::DeleteQueue;
use get_queue_attributes::GetQueueAttributes;
use get_queue_url::GetQueueUrl;
use list_queue_tags::ListQueueTags;
use list_queues::ListQueues;
use purge_queue::PurgeQueue;
use receive_message::ReceiveMessage;
use send_message::SendMessage;
use send_message_batch::SendMessageBatch;
use set_queue_attributes::SetQueueAttributes;
use tag_queue::TagQueue;
use unknown::Unknown;
use untag_queue::UntagQueue;

pub use error::{error_json, error_xml};
pub use input::queue_url;
use input::{opt_int, opt_str, queue_name, req_str, str_list};
pub use query::query_to_json;
pub use xml::to_xml;

type Out = Result<Value, SqsError>;

/// Answer an `X-Amz-Target: AmazonSQS.<action>` request.
pub async fn handle_json(state: &AppState, action: &str, req: &Incoming2) -> HttpResponse {
    let input: Value = if req.body.is_empty() {
        Value::Object(Map::new())
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                return error_json(&SqsError::invalid_param(
                    "The request body must be a JSON object.",
                ));
            }
            Err(e) => {
                return error_json(&SqsError::invalid_param(format!(
                    "The request body is not valid JSON: {e}"
                )));
            }
        }
    };
    match dispatch(state, action, &input, req).await {
        Ok(v) => json_response(StatusCode::OK, "application/x-amz-json-1.0", v.to_string()),
        Err(e) => error_json(&e),
    }
}

/// Answer a query-protocol request (`Action=…` in the form body or the query string).
pub async fn handle_query(state: &AppState, req: &Incoming2) -> (String, HttpResponse) {
    let mut params: Vec<(String, String)> = Vec::new();
    if let Some(q) = &req.query {
        params.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
    }
    if !req.body.is_empty() {
        if std::str::from_utf8(&req.body).is_err() {
            return (
                "invalid".into(),
                error_xml(&SqsError::invalid_param(
                    "The request body is not valid UTF-8.",
                )),
            );
        }
        params.extend(form_urlencoded::parse(&req.body).into_owned());
    }
    let Some(action) = params
        .iter()
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.clone())
    else {
        return (
            "invalid".into(),
            error_xml(&SqsError::new(
                SqsErrorKind::InvalidAction,
                "The request has no Action parameter and no X-Amz-Target header: send an SQS query-protocol form (Action=...), an AWS JSON 1.0 request, or GET /metrics.",
            )),
        );
    };
    let mut input = query_to_json(&params);
    // In the query protocol the queue URL may be the request path.
    if input.get("QueueUrl").is_none()
        && req.path.trim_matches('/').contains('/')
        && let Value::Object(m) = &mut input
    {
        m.insert("QueueUrl".into(), Value::String(req.path.clone()));
    }
    let resp = match dispatch(state, &action, &input, req).await {
        Ok(v) => json_response(StatusCode::OK, "text/xml", to_xml(&action, &v)),
        Err(e) => error_xml(&e),
    };
    (action, resp)
}

/// A parsed request: one arm per action, each with its typed input.
enum Action {
    CreateQueue(CreateQueue),
    GetQueueUrl(GetQueueUrl),
    ListQueues(ListQueues),
    DeleteQueue(DeleteQueue),
    PurgeQueue(PurgeQueue),
    GetQueueAttributes(GetQueueAttributes),
    SetQueueAttributes(SetQueueAttributes),
    TagQueue(TagQueue),
    UntagQueue(UntagQueue),
    ListQueueTags(ListQueueTags),
    SendMessage(SendMessage),
    SendMessageBatch(SendMessageBatch),
    ReceiveMessage(ReceiveMessage),
    DeleteMessage(DeleteMessage),
    DeleteMessageBatch(DeleteMessageBatch),
    ChangeMessageVisibility(ChangeMessageVisibility),
    ChangeMessageVisibilityBatch(ChangeMessageVisibilityBatch),
    Unknown(Unknown),
}

impl Action {
    /// Read the input of the action called `name` (the JSON input shape, whichever protocol
    /// it came in). Checks that AWS makes only after looking at the queue stay in `apply`.
    fn parse(name: &str, input: &Value, req: &Incoming2) -> Result<Action, SqsError> {
        Ok(match name {
            "CreateQueue" => Action::CreateQueue(CreateQueue::parse(input, req)?),
            "GetQueueUrl" => Action::GetQueueUrl(GetQueueUrl::parse(input, req)?),
            "ListQueues" => Action::ListQueues(ListQueues::parse(input, req)?),
            "DeleteQueue" => Action::DeleteQueue(DeleteQueue::parse(input)?),
            "PurgeQueue" => Action::PurgeQueue(PurgeQueue::parse(input)?),
            "GetQueueAttributes" => Action::GetQueueAttributes(GetQueueAttributes::parse(input)?),
            "SetQueueAttributes" => Action::SetQueueAttributes(SetQueueAttributes::parse(input)?),
            "TagQueue" => Action::TagQueue(TagQueue::parse(input)?),
            "UntagQueue" => Action::UntagQueue(UntagQueue::parse(input)?),
            "ListQueueTags" => Action::ListQueueTags(ListQueueTags::parse(input)?),
            "SendMessage" => Action::SendMessage(SendMessage::parse(input, req)?),
            "SendMessageBatch" => Action::SendMessageBatch(SendMessageBatch::parse(input, req)?),
            "ReceiveMessage" => Action::ReceiveMessage(ReceiveMessage::parse(input)?),
            "DeleteMessage" => Action::DeleteMessage(DeleteMessage::parse(input)?),
            "DeleteMessageBatch" => Action::DeleteMessageBatch(DeleteMessageBatch::parse(input)?),
            "ChangeMessageVisibility" => {
                Action::ChangeMessageVisibility(ChangeMessageVisibility::parse(input)?)
            }
            "ChangeMessageVisibilityBatch" => {
                Action::ChangeMessageVisibilityBatch(ChangeMessageVisibilityBatch::parse(input)?)
            }
            other => Action::Unknown(Unknown::parse(other)),
        })
    }

    /// Carry the action out (durably: writes are journaled before this returns) and answer
    /// in the JSON output shape.
    async fn apply(self, state: &AppState) -> Result<Value, SqsError> {
        match self {
            Action::CreateQueue(a) => a.apply(state).await,
            Action::GetQueueUrl(a) => a.apply(state),
            Action::ListQueues(a) => a.apply(state),
            Action::DeleteQueue(a) => a.apply(state).await,
            Action::PurgeQueue(a) => a.apply(state).await,
            Action::GetQueueAttributes(a) => a.apply(state),
            Action::SetQueueAttributes(a) => a.apply(state).await,
            Action::TagQueue(a) => a.apply(state).await,
            Action::UntagQueue(a) => a.apply(state).await,
            Action::ListQueueTags(a) => a.apply(state),
            Action::SendMessage(a) => a.apply(state).await,
            Action::SendMessageBatch(a) => a.apply(state).await,
            Action::ReceiveMessage(a) => a.apply(state).await,
            Action::DeleteMessage(a) => a.apply(state).await,
            Action::DeleteMessageBatch(a) => a.apply(state).await,
            Action::ChangeMessageVisibility(a) => a.apply(state).await,
            Action::ChangeMessageVisibilityBatch(a) => a.apply(state).await,
            Action::Unknown(a) => Err(a.apply()),
        }
    }
}

async fn dispatch(state: &AppState, action: &str, input: &Value, req: &Incoming2) -> Out {
    let q = &state.store.queues;
    match action {
        "ListDeadLetterSourceQueues" => {
            let name = queue_name(input)?;
            let names = q.dead_letter_sources(&name)?;
            let max = opt_int(input, "MaxResults")?;
            if let Some(m) = max
                && !(1..=1000).contains(&m)
            {
                return Err(SqsError::bad_value(
                    "MaxResults",
                    m,
                    "Must be between 1 and 1000, if provided.",
                ));
            }
            let start = match opt_str(input, "NextToken")? {
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
                .map(|n| Value::String(queue_url(&req.host, n)))
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
        "StartMessageMoveTask" => {
            let src_arn = req_str(input, "SourceArn")?;
            let (task, ticket) = q.start_move_task(
                src_arn,
                opt_str(input, "DestinationArn")?,
                opt_int(input, "MaxNumberOfMessagesPerSecond")?,
            )?;
            ticket.await?;
            Ok(json!({"TaskHandle": task.handle}))
        }
        "ListMessageMoveTasks" => {
            let src_arn = req_str(input, "SourceArn")?;
            let max = match opt_int(input, "MaxResults")? {
                None => 1,
                Some(m) if (1..=10).contains(&m) => m as usize,
                Some(m) => {
                    return Err(SqsError::bad_value(
                        "MaxResults",
                        m,
                        "You must enter a number that's between 1 and 10.",
                    ));
                }
            };
            let results: Vec<Value> = q
                .list_move_tasks(src_arn, max)?
                .iter()
                .map(move_task_json)
                .collect();
            Ok(json!({"Results": results}))
        }
        "CancelMessageMoveTask" => {
            let handle = req_str(input, "TaskHandle")?;
            let task = q.cancel_move_task(handle)?;
            Ok(json!({"ApproximateNumberOfMessagesMoved": task.moved}))
        }
        "AddPermission" => {
            let name = queue_name(input)?;
            let label = req_str(input, "Label")?;
            let accounts = str_list(input, "AWSAccountIds")?;
            let actions = str_list(input, "Actions")?;
            q.add_permission(&name, label, &accounts, &actions)?.await?;
            Ok(json!({}))
        }
        "RemovePermission" => {
            let name = queue_name(input)?;
            let label = req_str(input, "Label")?;
            q.remove_permission(&name, label)?.await?;
            Ok(json!({}))
        }
        _ => Action::parse(action, input, req)?.apply(state).await,
    }
}

/// A task as `ListMessageMoveTasks` reports it.
fn move_task_json(t: &store::queue::move_task::MoveTask) -> Value {
    let mut m = Map::new();
    m.insert("TaskHandle".into(), t.handle.clone().into());
    m.insert("Status".into(), t.status.as_str().into());
    m.insert("SourceArn".into(), t.source_arn.clone().into());
    if let Some(d) = &t.destination_arn {
        m.insert("DestinationArn".into(), d.clone().into());
    }
    if let Some(r) = t.max_per_second {
        m.insert("MaxNumberOfMessagesPerSecond".into(), r.into());
    }
    m.insert("ApproximateNumberOfMessagesMoved".into(), t.moved.into());
    m.insert("ApproximateNumberOfMessagesToMove".into(), t.to_move.into());
    if let Some(f) = &t.failure_reason {
        m.insert("FailureReason".into(), f.clone().into());
    }
    m.insert("StartedTimestamp".into(), t.started_ms.into());
    Value::Object(m)
}
