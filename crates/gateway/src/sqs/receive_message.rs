//! `ReceiveMessage`: receive up to ten messages, long-polling up to `WaitTimeSeconds`.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use store::queue::{MessageAttributeValue, ReceiveRequest, ReceivedMessage, SqsError};

use super::input::{opt_int, opt_str, queue_name, str_list};
use crate::AppState;

pub(super) struct ReceiveMessage {
    name: String,
    request: ReceiveRequest,
    /// `WaitTimeSeconds` when given (checked); the queue's default wait when not.
    wait: Option<u64>,
}

impl ReceiveMessage {
    pub(super) fn parse(input: &Value) -> Result<Self, SqsError> {
        let name = queue_name(input)?;
        let mut attribute_names = str_list(input, "AttributeNames")?;
        attribute_names.extend(str_list(input, "MessageSystemAttributeNames")?);
        let request = ReceiveRequest {
            max_messages: opt_int(input, "MaxNumberOfMessages")?,
            visibility_timeout: opt_int(input, "VisibilityTimeout")?,
            attribute_names,
            message_attribute_names: str_list(input, "MessageAttributeNames")?,
            attempt_id: opt_str(input, "ReceiveRequestAttemptId")?.map(str::to_owned),
        };
        let wait = match opt_int(input, "WaitTimeSeconds")? {
            Some(w) if (0..=20).contains(&w) => Some(w as u64),
            Some(w) => {
                return Err(SqsError::bad_value(
                    "WaitTimeSeconds",
                    w,
                    "Must be >= 0 and <= 20, if provided.",
                ));
            }
            None => None,
        };
        Ok(ReceiveMessage {
            name,
            request,
            wait,
        })
    }

    pub(super) async fn apply(self, state: &AppState) -> Result<Value, SqsError> {
        let q = &state.store.queues;
        let wait = match self.wait {
            Some(w) => w,
            None => q.default_wait(&self.name)? as u64,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
        let mut shutdown = state.shutdown.clone();
        loop {
            let (notify, next_timer) = q.waiter(&self.name).ok_or_else(SqsError::no_queue)?;
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (msgs, ticket) = q.receive(&self.name, &self.request)?;
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
