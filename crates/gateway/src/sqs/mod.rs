//! SQS actions over both wire protocols.
//!
//! Each action is parsed from the JSON 1.0 input shape into its typed request, applied to the
//! store and answered in the JSON output shape, as one `Action`. For the query protocol,
//! form parameters are first normalised to that JSON input (`Attribute.1.Name` →
//! `Attributes`, `SendMessageBatchRequestEntry.2.Id` → `Entries[1].Id`, …) and the JSON output
//! is rendered to the XML AWS sends. Errors carry AWS's codes: `__type` plus the
//! `x-amzn-query-error` header in JSON, `<Error><Code>` in XML.
//!
//! # Layout
//! - this file: [`handle_json`], [`handle_query`] and `Action`, which parses an action's
//!   input by name and applies it.
//! - one file per action, named after it (`send_message.rs` for `SendMessage`, …): a struct
//!   with the typed request, its `parse` from the JSON input, and its `apply`, which calls the
//!   store, waits for the write to be durable and encodes the JSON answer. A check AWS makes
//!   only after looking at the queue is made in `apply`, after that look-up.
//! - `unknown.rs`: the answer to an action this endpoint does not implement.
//! - `input.rs`: reading the JSON input (typed fields, the queue name from `QueueUrl`, batch
//!   entries, a message to send and its attributes), and the typed input structs the actions
//!   that carry messages read a JSON body into without a `Value` tree (`Action::parse_json`;
//!   a body they do not accept is read through `Value`, which answers it as before).
//! - `output.rs`: `Output`, an action's answer (typed and serialised straight to JSON for the
//!   hot actions, a `Value` otherwise), and answer pieces several actions share.
//! - `query.rs`: query-protocol parameters normalised to the JSON input.
//! - `xml.rs`: JSON answers rendered as the query protocol's XML.
//! - `error.rs`: errors in either protocol.

mod add_permission;
mod cancel_message_move_task;
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
mod list_dead_letter_source_queues;
mod list_message_move_tasks;
mod list_queue_tags;
mod list_queues;
mod output;
mod purge_queue;
mod query;
mod receive_message;
mod remove_permission;
mod send_message;
mod send_message_batch;
mod set_queue_attributes;
mod start_message_move_task;
mod tag_queue;
mod unknown;
mod untag_queue;
mod xml;

#[cfg(test)]
mod parse_tests;

use hyper::StatusCode;
use serde_json::{Map, Value};

use store::queue::{SqsError, SqsErrorKind};

use crate::{AppState, HttpResponse, Incoming2, json_response};
use output::Output;

/// Whether `path` is a queue URL's path: `/<12-digit account>/<queue name>`.
pub(crate) fn is_queue_path(path: &str) -> bool {
    let mut parts = path.strip_prefix('/').unwrap_or("").split('/');
    let (Some(account), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && (1..=80).contains(&base.len())
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

use add_permission::AddPermission;
use cancel_message_move_task::CancelMessageMoveTask;
use change_message_visibility::ChangeMessageVisibility;
use change_message_visibility_batch::ChangeMessageVisibilityBatch;
use create_queue::CreateQueue;
use delete_message::DeleteMessage;
use delete_message_batch::DeleteMessageBatch;
use delete_queue::DeleteQueue;
use get_queue_attributes::GetQueueAttributes;
use get_queue_url::GetQueueUrl;
use list_dead_letter_source_queues::ListDeadLetterSourceQueues;
use list_message_move_tasks::ListMessageMoveTasks;
use list_queue_tags::ListQueueTags;
use list_queues::ListQueues;
use purge_queue::PurgeQueue;
use receive_message::ReceiveMessage;
use remove_permission::RemovePermission;
use send_message::SendMessage;
use send_message_batch::SendMessageBatch;
use set_queue_attributes::SetQueueAttributes;
use start_message_move_task::StartMessageMoveTask;
use tag_queue::TagQueue;
use unknown::Unknown;
use untag_queue::UntagQueue;

pub use error::{error_json, error_xml};
pub use input::queue_url;
pub use query::query_to_json;
pub use xml::to_xml;

/// Answer an `X-Amz-Target: AmazonSQS.<action>` request.
pub async fn handle_json(state: &AppState, action: &str, req: &Incoming2) -> HttpResponse {
    if let Some(parsed) = Action::parse_json(action, &req.body, req) {
        return answer_json(match parsed {
            Ok(a) => a.apply(state).await,
            Err(e) => Err(e),
        });
    }
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
    answer_json(dispatch(state, action, &input, req).await)
}

fn answer_json(out: Result<Output, SqsError>) -> HttpResponse {
    match out {
        Ok(out) => json_response(
            StatusCode::OK,
            "application/x-amz-json-1.0",
            out.into_json(),
        ),
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
    // A queue's URL takes the queue's actions only: SQS refuses the service's own there.
    if matches!(action.as_str(), "CreateQueue" | "ListQueues")
        && req.path.trim_matches('/').contains('/')
    {
        return (
            action.clone(),
            error_xml(&SqsError::new(
                SqsErrorKind::InvalidAction,
                format!("The action {action} is not valid for this endpoint."),
            )),
        );
    }
    let mut input = query_to_json(&params);
    // In the query protocol the queue URL may be the request path.
    if input.get("QueueUrl").is_none()
        && req.path.trim_matches('/').contains('/')
        && let Value::Object(m) = &mut input
    {
        m.insert("QueueUrl".into(), Value::String(req.path.clone()));
    }
    let resp = match dispatch(state, &action, &input, req).await {
        Ok(out) => json_response(
            StatusCode::OK,
            "text/xml",
            to_xml(&action, &out.into_value()),
        ),
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
    ListDeadLetterSourceQueues(ListDeadLetterSourceQueues),
    StartMessageMoveTask(StartMessageMoveTask),
    ListMessageMoveTasks(ListMessageMoveTasks),
    CancelMessageMoveTask(CancelMessageMoveTask),
    AddPermission(AddPermission),
    RemovePermission(RemovePermission),
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
            "ListDeadLetterSourceQueues" => {
                Action::ListDeadLetterSourceQueues(ListDeadLetterSourceQueues::parse(input, req)?)
            }
            "StartMessageMoveTask" => {
                Action::StartMessageMoveTask(StartMessageMoveTask::parse(input)?)
            }
            "ListMessageMoveTasks" => {
                Action::ListMessageMoveTasks(ListMessageMoveTasks::parse(input)?)
            }
            "CancelMessageMoveTask" => {
                Action::CancelMessageMoveTask(CancelMessageMoveTask::parse(input)?)
            }
            "AddPermission" => Action::AddPermission(AddPermission::parse(input)?),
            "RemovePermission" => Action::RemovePermission(RemovePermission::parse(input)?),
            other => Action::Unknown(Unknown::parse(other)),
        })
    }

    /// [`parse`](Self::parse) straight from a JSON body, for the actions that carry messages
    /// (most of the traffic): `None` for the others, and for a body that is not a JSON object
    /// of the documented member types, which the `Value` reading then answers.
    fn parse_json(name: &str, body: &[u8], req: &Incoming2) -> Option<Result<Action, SqsError>> {
        Some(match name {
            "SendMessage" => SendMessage::parse_json(body, req)?.map(Action::SendMessage),
            "SendMessageBatch" => {
                SendMessageBatch::parse_json(body, req)?.map(Action::SendMessageBatch)
            }
            "ReceiveMessage" => ReceiveMessage::parse_json(body)?.map(Action::ReceiveMessage),
            "DeleteMessage" => DeleteMessage::parse_json(body)?.map(Action::DeleteMessage),
            "DeleteMessageBatch" => {
                DeleteMessageBatch::parse_json(body)?.map(Action::DeleteMessageBatch)
            }
            _ => return None,
        })
    }

    /// Carry the action out (durably: writes are journaled before this returns) and answer
    /// in the JSON output shape.
    async fn apply(self, state: &AppState) -> Result<Output, SqsError> {
        match self {
            Action::CreateQueue(a) => a.apply(state).await.map(Output::Value),
            Action::GetQueueUrl(a) => a.apply(state).map(Output::Value),
            Action::ListQueues(a) => a.apply(state).map(Output::Value),
            Action::DeleteQueue(a) => a.apply(state).await.map(Output::Value),
            Action::PurgeQueue(a) => a.apply(state).await.map(Output::Value),
            Action::GetQueueAttributes(a) => a.apply(state).map(Output::Value),
            Action::SetQueueAttributes(a) => a.apply(state).await.map(Output::Value),
            Action::TagQueue(a) => a.apply(state).await.map(Output::Value),
            Action::UntagQueue(a) => a.apply(state).await.map(Output::Value),
            Action::ListQueueTags(a) => a.apply(state).map(Output::Value),
            Action::SendMessage(a) => a.apply(state).await.map(Output::typed),
            Action::SendMessageBatch(a) => a.apply(state).await.map(Output::typed),
            Action::ReceiveMessage(a) => a.apply(state).await.map(Output::typed),
            Action::DeleteMessage(a) => a.apply(state).await.map(Output::Value),
            Action::DeleteMessageBatch(a) => a.apply(state).await.map(Output::typed),
            Action::ChangeMessageVisibility(a) => a.apply(state).await.map(Output::Value),
            Action::ChangeMessageVisibilityBatch(a) => a.apply(state).await.map(Output::typed),
            Action::ListDeadLetterSourceQueues(a) => a.apply(state).map(Output::Value),
            Action::StartMessageMoveTask(a) => a.apply(state).await.map(Output::Value),
            Action::ListMessageMoveTasks(a) => a.apply(state).map(Output::Value),
            Action::CancelMessageMoveTask(a) => a.apply(state).await.map(Output::Value),
            Action::AddPermission(a) => a.apply(state).await.map(Output::Value),
            Action::RemovePermission(a) => a.apply(state).await.map(Output::Value),
            Action::Unknown(a) => Err(a.apply()),
        }
    }
}

/// Parse, then apply, the action called `action`.
async fn dispatch(
    state: &AppState,
    action: &str,
    input: &Value,
    req: &Incoming2,
) -> Result<Output, SqsError> {
    Action::parse(action, input, req)?.apply(state).await
}

#[cfg(test)]
mod path_tests {
    use super::is_queue_path;

    #[test]
    fn queue_paths_are_an_account_and_a_queue_name() {
        for p in [
            "/000000000000/q",
            "/123456789012/my-queue_1",
            "/000000000000/f.fifo",
        ] {
            assert!(is_queue_path(p), "{p}");
        }
        for p in [
            "/",
            "/metrics",
            "/000000000000",
            "/000000000000/",
            "/00000000000/q",
            "/0000000000001/q",
            "/00000000000a/q",
            "/000000000000/q/x",
            "/000000000000/q.txt",
            "/000000000000/.fifo",
            "000000000000/q",
        ] {
            assert!(!is_queue_path(p), "{p}");
        }
        assert!(is_queue_path(&format!("/000000000000/{}", "a".repeat(80))));
        assert!(!is_queue_path(&format!("/000000000000/{}", "a".repeat(81))));
    }
}
