//! SQS actions over both wire protocols.
//!
//! One handler per action works on the JSON 1.0 input shape and produces the JSON output
//! shape. For the query protocol, form parameters are first normalised to that JSON input
//! (`Attribute.1.Name` → `Attributes`, `SendMessageBatchRequestEntry.2.Id` → `Entries[1].Id`,
//! …) and the JSON output is rendered to the XML AWS sends. Errors carry AWS's codes:
//! `__type` plus the `x-amzn-query-error` header in JSON, `<Error><Code>` in XML.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use base64::Engine as _;
use hyper::StatusCode;
use serde_json::{Map, Value, json};

use store::queue::{
    MessageAttributeValue, ReceiveRequest, ReceivedMessage, SendRequest, SqsError, SqsErrorKind,
};

use crate::{AppState, HttpResponse, Incoming2, json_response};

const XMLNS: &str = "http://queue.amazonaws.com/doc/2012-11-05/";

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

async fn dispatch(state: &AppState, action: &str, input: &Value, req: &Incoming2) -> Out {
    let q = &state.store.queues;
    match action {
        "CreateQueue" => {
            let name = req_str(input, "QueueName")?;
            let attrs = str_map(input, "Attributes")?;
            let tags = str_map(input, "tags").and_then(|t| {
                if t.is_empty() {
                    str_map(input, "Tags")
                } else {
                    Ok(t)
                }
            })?;
            q.create_queue(name, &attrs, &tags)?.await?;
            Ok(json!({"QueueUrl": queue_url(&req.host, name)}))
        }
        "GetQueueUrl" => {
            let name = req_str(input, "QueueName")?;
            if !q.queue_exists(name) {
                return Err(SqsError::no_queue());
            }
            Ok(json!({"QueueUrl": queue_url(&req.host, name)}))
        }
        "ListQueues" => {
            let (names, token) = q.list_queues(
                opt_str(input, "QueueNamePrefix")?,
                opt_int(input, "MaxResults")?,
                opt_str(input, "NextToken")?,
            )?;
            let mut out = Map::new();
            out.insert(
                "QueueUrls".into(),
                names
                    .iter()
                    .map(|n| Value::String(queue_url(&req.host, n)))
                    .collect(),
            );
            if let Some(t) = token {
                out.insert("NextToken".into(), Value::String(t));
            }
            Ok(Value::Object(out))
        }
        "DeleteQueue" => {
            q.delete_queue(&queue_name(input)?)?.await?;
            Ok(json!({}))
        }
        "PurgeQueue" => {
            q.purge_queue(&queue_name(input)?)?.await?;
            Ok(json!({}))
        }
        "GetQueueAttributes" => {
            let name = queue_name(input)?;
            let names = str_list(input, "AttributeNames")?;
            let attrs = q.get_attributes(&name, &names)?;
            let mut m = Map::new();
            for (k, v) in attrs {
                m.insert(k.into(), Value::String(v));
            }
            if m.is_empty() {
                Ok(json!({}))
            } else {
                Ok(json!({"Attributes": m}))
            }
        }
        "SetQueueAttributes" => {
            let name = queue_name(input)?;
            let attrs = str_map(input, "Attributes")?;
            q.set_attributes(&name, &attrs)?.await?;
            Ok(json!({}))
        }
        "TagQueue" => {
            let name = queue_name(input)?;
            let tags = str_map(input, "Tags")?;
            q.tag_queue(&name, &tags)?.await?;
            Ok(json!({}))
        }
        "UntagQueue" => {
            let name = queue_name(input)?;
            let keys = str_list(input, "TagKeys")?;
            q.untag_queue(&name, &keys)?.await?;
            Ok(json!({}))
        }
        "ListQueueTags" => {
            let tags = q.list_tags(&queue_name(input)?)?;
            if tags.is_empty() {
                Ok(json!({}))
            } else {
                Ok(json!({"Tags": tags}))
            }
        }
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
        other => Err(SqsError::new(
            SqsErrorKind::InvalidAction,
            format!("The action {other} is not valid for this endpoint."),
        )),
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

fn batch_output(ids: &[String], results: Vec<Result<(), SqsError>>) -> Value {
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for (id, r) in ids.iter().zip(results) {
        match r {
            Ok(()) => ok.push(json!({"Id": id})),
            Err(e) => failed.push(failed_entry(id, &e)),
        }
    }
    json!({"Successful": ok, "Failed": failed})
}

fn failed_entry(id: &str, e: &SqsError) -> Value {
    json!({
        "Id": id,
        "SenderFault": e.kind.status() < 500,
        "Code": e.kind.query_code(),
        "Message": e.message,
    })
}

fn sender_id(req: &Incoming2) -> String {
    req.access_key
        .clone()
        .unwrap_or_else(|| store::queue::ACCOUNT_ID.to_owned())
}

/// `http://HOST/<account-id>/<name>`; HOST as the client addressed us.
pub fn queue_url(host: &str, name: &str) -> String {
    format!("http://{host}/{}/{name}", store::queue::ACCOUNT_ID)
}

/// The queue name from `QueueUrl` (full URL, path, or bare name).
fn queue_name(input: &Value) -> Result<String, SqsError> {
    let url = req_str(input, "QueueUrl")?;
    let path = match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            rest.find('/').map(|j| &rest[j..]).unwrap_or("")
        }
        None => url,
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if name.is_empty() {
        return Err(SqsError::new(
            SqsErrorKind::InvalidAddress,
            format!("The address {url} is not valid for this endpoint."),
        ));
    }
    Ok(name.to_owned())
}

fn batch_entries(input: &Value) -> Result<&Vec<Value>, SqsError> {
    let entries = match input.get("Entries") {
        None | Some(Value::Null) => {
            return Err(SqsError::missing("Entries"));
        }
        Some(Value::Array(a)) => a,
        Some(_) => return Err(SqsError::invalid_param("Entries must be a list.")),
    };
    if entries.is_empty() {
        return Err(SqsError::new(
            SqsErrorKind::EmptyBatchRequest,
            "There should be at least one entry in the request.",
        ));
    }
    if entries.len() > 10 {
        return Err(SqsError::new(
            SqsErrorKind::TooManyEntriesInBatchRequest,
            format!(
                "Maximum number of entries per request are 10. You have sent {}.",
                entries.len()
            ),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for e in entries {
        let id = req_str(e, "Id")?;
        if id.is_empty()
            || id.len() > 80
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(SqsError::new(
                SqsErrorKind::InvalidBatchEntryId,
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
            ));
        }
        if !seen.insert(id) {
            return Err(SqsError::new(
                SqsErrorKind::BatchEntryIdsNotDistinct,
                format!("Id {id} repeated."),
            ));
        }
    }
    Ok(entries)
}

fn parse_send_entry(v: &Value) -> Result<SendRequest, SqsError> {
    let body = match v.get("MessageBody") {
        None | Some(Value::Null) => return Err(SqsError::missing("MessageBody")),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(SqsError::invalid_param("MessageBody must be a string.")),
    };
    Ok(SendRequest {
        body,
        delay_seconds: opt_int(v, "DelaySeconds")?,
        attributes: message_attributes(v, "MessageAttributes")?,
        system_attributes: message_attributes(v, "MessageSystemAttributes")?,
        group_id: opt_str(v, "MessageGroupId")?.map(str::to_owned),
        dedup_id: opt_str(v, "MessageDeduplicationId")?.map(str::to_owned),
    })
}

fn message_attributes(
    v: &Value,
    key: &str,
) -> Result<BTreeMap<String, MessageAttributeValue>, SqsError> {
    let mut out = BTreeMap::new();
    let Some(obj) = v.get(key) else {
        return Ok(out);
    };
    let Some(obj) = obj.as_object() else {
        if obj.is_null() {
            return Ok(out);
        }
        return Err(SqsError::invalid_param(format!("{key} must be a map.")));
    };
    for (name, a) in obj {
        let data_type = a
            .get("DataType")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                SqsError::invalid_param(format!(
                    "The message attribute '{name}' must contain non-empty message attribute type."
                ))
            })?
            .to_owned();
        let string_value = a
            .get("StringValue")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let binary_value = match a.get("BinaryValue").and_then(Value::as_str) {
            None => None,
            Some(b) => Some(base64::engine::general_purpose::STANDARD.decode(b).map_err(|_| {
                SqsError::invalid_param(format!(
                    "The message attribute '{name}' has a BinaryValue that is not valid base64."
                ))
            })?),
        };
        if a.get("StringListValues")
            .is_some_and(|x| x.as_array().is_some_and(|l| !l.is_empty()))
            || a.get("BinaryListValues")
                .is_some_and(|x| x.as_array().is_some_and(|l| !l.is_empty()))
        {
            return Err(SqsError::invalid_param(format!(
                "The message attribute '{name}' uses StringListValues or BinaryListValues, which SQS reserves and does not implement."
            )));
        }
        out.insert(
            name.clone(),
            MessageAttributeValue {
                data_type,
                string_value,
                binary_value,
            },
        );
    }
    Ok(out)
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

fn req_str<'a>(v: &'a Value, key: &str) -> Result<&'a str, SqsError> {
    opt_str(v, key)?.ok_or_else(|| SqsError::missing(key))
}

fn opt_str<'a>(v: &'a Value, key: &str) -> Result<Option<&'a str>, SqsError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(SqsError::bad_value(key, other, "Must be a string.")),
    }
}

/// An integer given as a JSON number or (query protocol) a numeric string.
fn opt_int(v: &Value, key: &str) -> Result<Option<i64>, SqsError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| SqsError::bad_value(key, n, "Must be an integer.")),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| SqsError::bad_value(key, s, "Must be an integer.")),
        Some(other) => Err(SqsError::bad_value(key, other, "Must be an integer.")),
    }
}

fn str_list(v: &Value, key: &str) -> Result<Vec<String>, SqsError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str().map(str::to_owned).ok_or_else(|| {
                    SqsError::invalid_param(format!("{key} must be a list of strings."))
                })
            })
            .collect(),
        Some(_) => Err(SqsError::invalid_param(format!(
            "{key} must be a list of strings."
        ))),
    }
}

fn str_map(v: &Value, key: &str) -> Result<HashMap<String, String>, SqsError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(HashMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, x)| match x {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Number(n) => Ok((k.clone(), n.to_string())),
                Value::Bool(b) => Ok((k.clone(), b.to_string())),
                _ => Err(SqsError::invalid_param(format!(
                    "{key}.{k} must be a string."
                ))),
            })
            .collect(),
        Some(_) => Err(SqsError::invalid_param(format!(
            "{key} must be a map of strings."
        ))),
    }
}

// ----- query protocol: input normalisation ------------------------------------------------

const NUMERIC: &[&str] = &[
    "DelaySeconds",
    "MaxNumberOfMessages",
    "VisibilityTimeout",
    "WaitTimeSeconds",
    "MaxResults",
    "MaxNumberOfMessagesPerSecond",
];

/// Turn flattened query parameters into the JSON protocol's input shape.
pub fn query_to_json(params: &[(String, String)]) -> Value {
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    normalise(&pairs)
}

fn normalise(pairs: &[(&str, &str)]) -> Value {
    let mut out = Map::new();
    // (list key, index) → sub-pairs
    let mut attrs: BTreeMap<u32, (Option<&str>, Option<&str>)> = BTreeMap::new();
    let mut tags: BTreeMap<u32, (Option<&str>, Option<&str>)> = BTreeMap::new();
    let mut lists: BTreeMap<&str, BTreeMap<u32, &str>> = BTreeMap::new();
    let mut msg_attrs: BTreeMap<(&str, u32), Vec<(&str, &str)>> = BTreeMap::new();
    let mut entries: BTreeMap<u32, Vec<(&str, &str)>> = BTreeMap::new();
    for &(k, v) in pairs {
        let mut parts = k.splitn(3, '.');
        let head = parts.next().unwrap_or("");
        let idx = parts.next().and_then(|i| i.parse::<u32>().ok());
        let rest = parts.next();
        match (head, idx, rest) {
            ("Attribute", Some(i), Some("Name")) => attrs.entry(i).or_default().0 = Some(v),
            ("Attribute", Some(i), Some("Value")) => attrs.entry(i).or_default().1 = Some(v),
            ("Tag", Some(i), Some("Key")) => tags.entry(i).or_default().0 = Some(v),
            ("Tag", Some(i), Some("Value")) => tags.entry(i).or_default().1 = Some(v),
            (
                "AttributeName"
                | "MessageAttributeName"
                | "MessageSystemAttributeName"
                | "TagKey"
                | "AWSAccountId"
                | "ActionName",
                Some(i),
                None,
            ) => {
                lists.entry(head).or_default().insert(i, v);
            }
            ("MessageAttribute" | "MessageSystemAttribute", Some(i), Some(r)) => {
                msg_attrs.entry((head, i)).or_default().push((r, v));
            }
            (h, Some(i), Some(r)) if h.ends_with("BatchRequestEntry") => {
                entries.entry(i).or_default().push((r, v));
            }
            (
                "Action" | "Version" | "AWSAccessKeyId" | "SignatureMethod" | "SignatureVersion"
                | "Signature" | "Timestamp" | "Expires" | "SecurityToken",
                _,
                _,
            ) => {}
            (h, _, _) if h.starts_with("X-Amz-") => {}
            _ => {
                let val = if NUMERIC.contains(&k) {
                    v.parse::<i64>()
                        .map(Value::from)
                        .unwrap_or_else(|_| Value::String(v.into()))
                } else {
                    Value::String(v.into())
                };
                out.insert(k.to_owned(), val);
            }
        }
    }
    if !attrs.is_empty() {
        let m: Map<String, Value> = attrs
            .into_values()
            .filter_map(|(n, v)| Some((n?.to_owned(), Value::String(v.unwrap_or("").into()))))
            .collect();
        out.insert("Attributes".into(), Value::Object(m));
    }
    if !tags.is_empty() {
        let m: Map<String, Value> = tags
            .into_values()
            .filter_map(|(n, v)| Some((n?.to_owned(), Value::String(v.unwrap_or("").into()))))
            .collect();
        out.insert("Tags".into(), Value::Object(m.clone()));
        out.insert("tags".into(), Value::Object(m));
    }
    for (head, items) in lists {
        let key = match head {
            "AttributeName" => "AttributeNames",
            "MessageAttributeName" => "MessageAttributeNames",
            "MessageSystemAttributeName" => "MessageSystemAttributeNames",
            "AWSAccountId" => "AWSAccountIds",
            "ActionName" => "Actions",
            _ => "TagKeys",
        };
        out.insert(
            key.into(),
            Value::Array(
                items
                    .into_values()
                    .map(|s| Value::String(s.into()))
                    .collect(),
            ),
        );
    }
    let mut ma: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for ((head, _), fields) in msg_attrs {
        let mut name = None;
        let mut val = Map::new();
        for (r, v) in fields {
            match r {
                "Name" => name = Some(v),
                "Value.StringValue" => {
                    val.insert("StringValue".into(), v.into());
                }
                "Value.BinaryValue" => {
                    val.insert("BinaryValue".into(), v.into());
                }
                "Value.DataType" => {
                    val.insert("DataType".into(), v.into());
                }
                _ => {}
            }
        }
        if let Some(n) = name {
            let key = if head == "MessageAttribute" {
                "MessageAttributes"
            } else {
                "MessageSystemAttributes"
            };
            ma.entry(key)
                .or_default()
                .insert(n.to_owned(), Value::Object(val));
        }
    }
    for (k, m) in ma {
        out.insert(k.into(), Value::Object(m));
    }
    if !entries.is_empty() {
        out.insert(
            "Entries".into(),
            Value::Array(entries.into_values().map(|e| normalise(&e)).collect()),
        );
    }
    Value::Object(out)
}

// ----- rendering ----------------------------------------------------------------------------

fn xml_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn elem(out: &mut String, name: &str, v: &Value) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    xml_escape(&scalar(v), out);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn render_fields(action: &str, obj: &Map<String, Value>, out: &mut String) {
    for (k, v) in obj {
        match (k.as_str(), v) {
            ("QueueUrls" | "queueUrls", Value::Array(a)) => {
                for u in a {
                    elem(out, "QueueUrl", u);
                }
            }
            ("Attributes", Value::Object(m)) => {
                for (n, val) in m {
                    out.push_str("<Attribute>");
                    elem(out, "Name", &Value::String(n.clone()));
                    elem(out, "Value", val);
                    out.push_str("</Attribute>");
                }
            }
            ("MessageAttributes", Value::Object(m)) => {
                for (n, val) in m {
                    out.push_str("<MessageAttribute>");
                    elem(out, "Name", &Value::String(n.clone()));
                    out.push_str("<Value>");
                    if let Value::Object(f) = val {
                        for (fk, fv) in f {
                            elem(out, fk, fv);
                        }
                    }
                    out.push_str("</Value></MessageAttribute>");
                }
            }
            ("Tags", Value::Object(m)) => {
                for (n, val) in m {
                    out.push_str("<Tag>");
                    elem(out, "Key", &Value::String(n.clone()));
                    elem(out, "Value", val);
                    out.push_str("</Tag>");
                }
            }
            (list @ ("Messages" | "Successful" | "Failed" | "Results"), Value::Array(a)) => {
                let name = match list {
                    "Messages" => "Message".to_string(),
                    "Failed" => "BatchResultErrorEntry".to_string(),
                    _ => format!("{action}ResultEntry"),
                };
                for item in a {
                    out.push('<');
                    out.push_str(&name);
                    out.push('>');
                    if let Value::Object(m) = item {
                        render_fields(action, m, out);
                    }
                    out.push_str("</");
                    out.push_str(&name);
                    out.push('>');
                }
            }
            (_, v) => elem(out, k, v),
        }
    }
}

/// Render a JSON-shaped result as the query protocol's XML response.
pub fn to_xml(action: &str, result: &Value) -> String {
    let mut out = String::with_capacity(512);
    out.push_str("<?xml version=\"1.0\"?>");
    out.push_str(&format!("<{action}Response xmlns=\"{XMLNS}\">"));
    if let Value::Object(m) = result
        && !m.is_empty()
    {
        out.push_str(&format!("<{action}Result>"));
        render_fields(action, m, &mut out);
        out.push_str(&format!("</{action}Result>"));
    } else if matches!(
        action,
        "ReceiveMessage"
            | "ListQueues"
            | "GetQueueAttributes"
            | "ListQueueTags"
            | "ListDeadLetterSourceQueues"
    ) {
        out.push_str(&format!("<{action}Result/>"));
    }
    out.push_str("<ResponseMetadata><RequestId>");
    out.push_str(&crate::request_id());
    out.push_str(&format!(
        "</RequestId></ResponseMetadata></{action}Response>"
    ));
    out
}

/// An SQS error in the JSON protocol.
pub fn error_json(e: &SqsError) -> HttpResponse {
    let body = json!({
        "__type": format!("com.amazonaws.sqs#{}", e.kind.shape()),
        "message": e.message,
    })
    .to_string();
    let mut r = json_response(
        StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::BAD_REQUEST),
        "application/x-amz-json-1.0",
        body,
    );
    if let Ok(v) =
        hyper::header::HeaderValue::from_str(&format!("{};{}", e.kind.query_code(), e.kind.fault()))
    {
        r.headers_mut().insert("x-amzn-query-error", v);
    }
    r
}

/// An SQS error in the query protocol.
pub fn error_xml(e: &SqsError) -> HttpResponse {
    let mut out = String::new();
    out.push_str(&format!(
        "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"{XMLNS}\"><Error><Type>{}</Type><Code>",
        e.kind.fault()
    ));
    xml_escape(e.kind.query_code(), &mut out);
    out.push_str("</Code><Message>");
    xml_escape(&e.message, &mut out);
    out.push_str("</Message><Detail/></Error><RequestId>");
    out.push_str(&crate::request_id());
    out.push_str("</RequestId></ErrorResponse>");
    json_response(
        StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::BAD_REQUEST),
        "text/xml",
        out,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_normalise_to_json_shape() {
        let p: Vec<(String, String)> = [
            ("Action", "SendMessageBatch"),
            ("QueueUrl", "http://h/000000000000/q"),
            ("SendMessageBatchRequestEntry.1.Id", "a"),
            ("SendMessageBatchRequestEntry.1.MessageBody", "hello"),
            ("SendMessageBatchRequestEntry.1.DelaySeconds", "5"),
            (
                "SendMessageBatchRequestEntry.1.MessageAttribute.1.Name",
                "k",
            ),
            (
                "SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType",
                "String",
            ),
            (
                "SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue",
                "v",
            ),
            ("SendMessageBatchRequestEntry.2.Id", "b"),
            ("SendMessageBatchRequestEntry.2.MessageBody", "world"),
            ("Attribute.1.Name", "VisibilityTimeout"),
            ("Attribute.1.Value", "10"),
            ("AttributeName.2", "B"),
            ("AttributeName.1", "A"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let v = query_to_json(&p);
        assert_eq!(v["Entries"][0]["Id"], "a");
        assert_eq!(v["Entries"][0]["DelaySeconds"], 5);
        assert_eq!(
            v["Entries"][0]["MessageAttributes"]["k"]["StringValue"],
            "v"
        );
        assert_eq!(v["Entries"][1]["MessageBody"], "world");
        assert_eq!(v["Attributes"]["VisibilityTimeout"], "10");
        assert_eq!(v["AttributeNames"], json!(["A", "B"]));
        assert!(v.get("Action").is_none());
    }

    #[test]
    fn queue_names_come_from_urls_paths_or_names() {
        for (u, n) in [
            ("http://127.0.0.1:4566/000000000000/jobs", "jobs"),
            (
                "https://sqs.us-east-1.amazonaws.com/123/jobs.fifo",
                "jobs.fifo",
            ),
            ("/000000000000/jobs", "jobs"),
            ("jobs", "jobs"),
        ] {
            assert_eq!(queue_name(&json!({"QueueUrl": u})).unwrap(), n);
        }
        assert!(queue_name(&json!({"QueueUrl": "http://host/"})).is_err());
        assert_eq!(
            queue_name(&json!({})).unwrap_err().kind,
            SqsErrorKind::MissingParameter
        );
    }

    #[test]
    fn xml_rendering_escapes_and_names_entries() {
        let x = to_xml(
            "SendMessageBatch",
            &json!({"Successful": [{"Id": "a<b"}], "Failed": []}),
        );
        assert!(x.contains(
            "<SendMessageBatchResultEntry><Id>a&lt;b</Id></SendMessageBatchResultEntry>"
        ));
        let x = to_xml("ReceiveMessage", &json!({}));
        assert!(x.contains("<ReceiveMessageResult/>"));
    }
}
