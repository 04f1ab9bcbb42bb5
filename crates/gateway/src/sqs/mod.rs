//! SQS actions over both wire protocols.
//!
//! One handler per action works on the JSON 1.0 input shape and produces the JSON output
//! shape. For the query protocol, form parameters are first normalised to that JSON input
//! (`Attribute.1.Name` → `Attributes`, `SendMessageBatchRequestEntry.2.Id` → `Entries[1].Id`,
//! …) and the JSON output is rendered to the XML AWS sends. Errors carry AWS's codes:
//! `__type` plus the `x-amzn-query-error` header in JSON, `<Error><Code>` in XML.

mod create_queue;
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
mod set_queue_attributes;
mod tag_queue;
mod unknown;
mod untag_queue;
mod xml;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use hyper::StatusCode;
use serde_json::{Map, Value, json};

use store::queue::{
    MessageAttributeValue, ReceiveRequest, ReceivedMessage, SqsError, SqsErrorKind,
};

use crate::{AppState, HttpResponse, Incoming2, json_response};

use create_queue::CreateQueue;
use delete_queue::DeleteQueue;
use get_queue_attributes::GetQueueAttributes;
use get_queue_url::GetQueueUrl;
use list_queue_tags::ListQueueTags;
use list_queues::ListQueues;
use purge_queue::PurgeQueue;
use set_queue_attributes::SetQueueAttributes;
use tag_queue::TagQueue;
use unknown::Unknown;
use untag_queue::UntagQueue;

pub use error::{error_json, error_xml};
pub use input::queue_url;
use input::{
    batch_entries, opt_int, opt_str, parse_send_entry, queue_name, req_str, sender_id, str_list,
};
use output::{batch_output, failed_entry};
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
            Action::Unknown(a) => Err(a.apply()),
        }
    }
}

async fn dispatch(state: &AppState, action: &str, input: &Value, req: &Incoming2) -> Out {
    let q = &state.store.queues;
    match action {
        "SendMessage" => {
            let name = queue_name(input)?;
            let entry = parse_send_entry(input)?;
            let sender = sender_id(req);
            let (mut results, ticket) = q.send(&name, vec![entry], &sender)?;
            ticket.await?;
            let r = results
                .pop()
                .unwrap_or_else(|| Err(SqsError::invalid_param("empty send")))?;
            let mut out = Map::new();
            out.insert("MD5OfMessageBody".into(), r.md5_body.into());
            out.insert("MessageId".into(), r.message_id.into());
            if let Some(m) = r.md5_attributes {
                out.insert("MD5OfMessageAttributes".into(), m.into());
            }
            if let Some(m) = r.md5_system_attributes {
                out.insert("MD5OfMessageSystemAttributes".into(), m.into());
            }
            if let Some(s) = r.sequence_number {
                out.insert("SequenceNumber".into(), s.into());
            }
            Ok(Value::Object(out))
        }
        "SendMessageBatch" => {
            let name = queue_name(input)?;
            let entries = batch_entries(input)?;
            // The batch's payload limit is SQS's fixed 1 MiB; an entry over the queue's
            // MaximumMessageSize fails alone in the engine while the others are sent.
            let max_size = store::queue::attrs::MAX_BATCH_PAYLOAD;
            let mut ids = Vec::new();
            let mut reqs = Vec::new();
            let mut total = 0usize;
            let mut parse_failures: Vec<(String, SqsError)> = Vec::new();
            for e in entries {
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
                        reqs.push(r);
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
            let sender = sender_id(req);
            let (results, ticket) = q.send(&name, reqs, &sender)?;
            ticket.await?;
            let mut ok = Vec::new();
            let mut failed: Vec<Value> = parse_failures
                .iter()
                .map(|(id, e)| failed_entry(id, e))
                .collect();
            for (id, r) in ids.iter().zip(results) {
                match r {
                    Ok(r) => {
                        let mut m = Map::new();
                        m.insert("Id".into(), id.clone().into());
                        m.insert("MessageId".into(), r.message_id.into());
                        m.insert("MD5OfMessageBody".into(), r.md5_body.into());
                        if let Some(x) = r.md5_attributes {
                            m.insert("MD5OfMessageAttributes".into(), x.into());
                        }
                        if let Some(x) = r.md5_system_attributes {
                            m.insert("MD5OfMessageSystemAttributes".into(), x.into());
                        }
                        if let Some(s) = r.sequence_number {
                            m.insert("SequenceNumber".into(), s.into());
                        }
                        ok.push(Value::Object(m));
                    }
                    Err(e) => failed.push(failed_entry(id, &e)),
                }
            }
            Ok(json!({"Successful": ok, "Failed": failed}))
        }
        "ReceiveMessage" => receive(state, input).await,
        "DeleteMessage" => {
            let name = queue_name(input)?;
            let h = req_str(input, "ReceiptHandle")?.to_owned();
            let (mut r, ticket) = q.delete(&name, &[h])?;
            ticket.await?;
            r.pop().unwrap_or(Ok(()))?;
            Ok(json!({}))
        }
        "DeleteMessageBatch" => {
            let name = queue_name(input)?;
            let entries = batch_entries(input)?;
            let mut ids = Vec::new();
            let mut handles = Vec::new();
            for e in entries {
                ids.push(req_str(e, "Id")?.to_owned());
                handles.push(req_str(e, "ReceiptHandle")?.to_owned());
            }
            let (results, ticket) = q.delete(&name, &handles)?;
            ticket.await?;
            Ok(batch_output(&ids, results))
        }
        "ChangeMessageVisibility" => {
            let name = queue_name(input)?;
            let h = req_str(input, "ReceiptHandle")?.to_owned();
            let t = opt_int(input, "VisibilityTimeout")?
                .ok_or_else(|| SqsError::missing("VisibilityTimeout"))?;
            let (mut r, ticket) = q.change_visibility(&name, &[(h, t)])?;
            ticket.await?;
            r.pop().unwrap_or(Ok(()))?;
            Ok(json!({}))
        }
        "ChangeMessageVisibilityBatch" => {
            let name = queue_name(input)?;
            let entries = batch_entries(input)?;
            let mut ids = Vec::new();
            let mut items = Vec::new();
            for e in entries {
                ids.push(req_str(e, "Id")?.to_owned());
                let t = opt_int(e, "VisibilityTimeout")?.unwrap_or(0);
                items.push((req_str(e, "ReceiptHandle")?.to_owned(), t));
            }
            let (results, ticket) = q.change_visibility(&name, &items)?;
            ticket.await?;
            Ok(batch_output(&ids, results))
        }
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

async fn receive(state: &AppState, input: &Value) -> Out {
    let q = &state.store.queues;
    let name = queue_name(input)?;
    let mut attribute_names = str_list(input, "AttributeNames")?;
    attribute_names.extend(str_list(input, "MessageSystemAttributeNames")?);
    let rr = ReceiveRequest {
        max_messages: opt_int(input, "MaxNumberOfMessages")?,
        visibility_timeout: opt_int(input, "VisibilityTimeout")?,
        attribute_names,
        message_attribute_names: str_list(input, "MessageAttributeNames")?,
        attempt_id: opt_str(input, "ReceiveRequestAttemptId")?.map(str::to_owned),
    };
    let wait = match opt_int(input, "WaitTimeSeconds")? {
        Some(w) if (0..=20).contains(&w) => w as u64,
        Some(w) => {
            return Err(SqsError::bad_value(
                "WaitTimeSeconds",
                w,
                "Must be >= 0 and <= 20, if provided.",
            ));
        }
        None => q.default_wait(&name)? as u64,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let mut shutdown = state.shutdown.clone();
    loop {
        let (notify, next_timer) = q.waiter(&name).ok_or_else(SqsError::no_queue)?;
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (msgs, ticket) = q.receive(&name, &rr)?;
        let now = tokio::time::Instant::now();
        if !msgs.is_empty() || now >= deadline || *shutdown.borrow() {
            ticket.await?;
            return Ok(encode_messages(msgs));
        }
        drop(ticket);
        // Sleep until a send wakes us, a timer falls due, the wait ends, or shutdown.
        let mut until = deadline;
        if let Some(t) = next_timer {
            let in_ms = t.as_millis().saturating_sub(q.now().as_millis());
            until = until.min(now + Duration::from_millis(in_ms.max(1)));
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(until) => {}
            _ = shutdown.changed() => {}
        }
    }
}

fn encode_messages(msgs: Vec<ReceivedMessage>) -> Value {
    let list: Vec<Value> = msgs
        .into_iter()
        .map(|m| {
            let mut o = Map::new();
            o.insert("MessageId".into(), m.message_id.into());
            o.insert("ReceiptHandle".into(), m.receipt_handle.into());
            o.insert("MD5OfBody".into(), m.md5_body.into());
            o.insert("Body".into(), Value::String(m.body.to_string()));
            if !m.attributes.is_empty() {
                let a: Map<String, Value> = m
                    .attributes
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), Value::String(v)))
                    .collect();
                o.insert("Attributes".into(), Value::Object(a));
            }
            if let Some(md5) = m.md5_attributes {
                o.insert("MD5OfMessageAttributes".into(), md5.into());
                o.insert(
                    "MessageAttributes".into(),
                    attributes_to_json(&m.message_attributes),
                );
            }
            Value::Object(o)
        })
        .collect();
    if list.is_empty() {
        json!({})
    } else {
        json!({"Messages": list})
    }
}

fn attributes_to_json(a: &BTreeMap<String, MessageAttributeValue>) -> Value {
    let mut m = Map::new();
    for (k, v) in a {
        let mut o = Map::new();
        o.insert("DataType".into(), v.data_type.clone().into());
        if let Some(s) = &v.string_value {
            o.insert("StringValue".into(), s.clone().into());
        }
        if let Some(b) = &v.binary_value {
            o.insert(
                "BinaryValue".into(),
                base64::engine::general_purpose::STANDARD.encode(b).into(),
            );
        }
        m.insert(k.clone(), Value::Object(o));
    }
    Value::Object(m)
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
