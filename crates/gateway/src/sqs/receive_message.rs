//! `ReceiveMessage`: receive up to ten messages, long-polling up to `WaitTimeSeconds`.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use serde::Serialize;
use serde_json::{Map, Value};

use store::queue::{MessageAttributeValue, ReceiveRequest, ReceivedMessage, SqsError};

use super::input::{Text, opt_int, opt_str, queue_name, queue_name_of, str_list, text, typed};
use super::output::{Answer, push_json_str};
use crate::AppState;

#[derive(Debug)]
pub(super) struct ReceiveMessage {
    name: String,
    request: ReceiveRequest,
    /// `WaitTimeSeconds` when given (checked); the queue's default wait when not.
    wait: Option<u64>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReceiveMessageIn<'a> {
    #[serde(borrow)]
    queue_url: Option<Text<'a>>,
    attribute_names: Option<Vec<String>>,
    message_system_attribute_names: Option<Vec<String>>,
    max_number_of_messages: Option<i64>,
    visibility_timeout: Option<i64>,
    message_attribute_names: Option<Vec<String>>,
    receive_request_attempt_id: Option<String>,
    wait_time_seconds: Option<i64>,
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
        Self::new(name, request, opt_int(input, "WaitTimeSeconds")?)
    }

    /// [`parse`](Self::parse) for a JSON body of the documented types, without a `Value`
    /// tree; `None` when the body needs the `Value` reading.
    pub(super) fn parse_json(body: &[u8]) -> Option<Result<Self, SqsError>> {
        let input: ReceiveMessageIn = typed(body)?;
        let read = || {
            let name = queue_name_of(text(&input.queue_url))?;
            let mut attribute_names = input.attribute_names.unwrap_or_default();
            attribute_names.extend(input.message_system_attribute_names.unwrap_or_default());
            let request = ReceiveRequest {
                max_messages: input.max_number_of_messages,
                visibility_timeout: input.visibility_timeout,
                attribute_names,
                message_attribute_names: input.message_attribute_names.unwrap_or_default(),
                attempt_id: input.receive_request_attempt_id,
            };
            Self::new(name, request, input.wait_time_seconds)
        };
        Some(read())
    }

    fn new(name: String, request: ReceiveRequest, wait: Option<i64>) -> Result<Self, SqsError> {
        let wait = match wait {
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

    pub(super) async fn apply(self, state: &AppState) -> Result<ReceiveAnswer, SqsError> {
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
                return Ok(ReceiveAnswer(msgs));
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

/// `ReceiveMessage`'s answer: `{}` when nothing was received, else the messages.
pub(super) struct ReceiveAnswer(pub Vec<ReceivedMessage>);

impl Answer for ReceiveAnswer {
    /// Written by hand in the order and escaping of [`Wire`]'s serde output (a test compares
    /// the two byte for byte): the hot answer of receive+delete, without building a list of
    /// borrowed messages and an attributes map per message first.
    fn json(&self) -> String {
        if self.0.is_empty() {
            return "{}".into();
        }
        let mut out: Vec<u8> = Vec::with_capacity(
            16 + self
                .0
                .iter()
                .map(|m| 160 + m.body.len() + m.receipt_handle.len())
                .sum::<usize>(),
        );
        out.extend_from_slice(b"{\"Messages\":[");
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'{');
            if !m.attributes.is_empty() {
                let mut attributes: Vec<(&str, &str)> =
                    m.attributes.iter().map(|(k, v)| (*k, v.as_str())).collect();
                // The names are distinct (the engine adds each once).
                attributes.sort_unstable_by_key(|(k, _)| *k);
                out.extend_from_slice(b"\"Attributes\":{");
                for (j, (k, v)) in attributes.into_iter().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    push_json_str(&mut out, k);
                    out.push(b':');
                    push_json_str(&mut out, v);
                }
                out.extend_from_slice(b"},");
            }
            out.extend_from_slice(b"\"Body\":");
            push_json_str(&mut out, &m.body);
            out.extend_from_slice(b",\"MD5OfBody\":");
            push_json_str(&mut out, &m.md5_body);
            if let Some(md5) = &m.md5_attributes {
                out.extend_from_slice(b",\"MD5OfMessageAttributes\":");
                push_json_str(&mut out, md5);
                out.extend_from_slice(b",\"MessageAttributes\":");
                // Writing a `Value` into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut out, &attributes_to_json(&m.message_attributes));
            }
            out.extend_from_slice(b",\"MessageId\":");
            push_json_str(&mut out, &m.message_id.text());
            out.extend_from_slice(b",\"ReceiptHandle\":");
            push_json_str(&mut out, &m.receipt_handle);
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
        // Only whole UTF-8 strings and ASCII punctuation were written.
        String::from_utf8(out).unwrap_or_else(|_| "{}".into())
    }

    fn value(&self) -> Value {
        serde_json::to_value(Wire(self)).unwrap_or_default()
    }
}

/// The answer through serde: the query protocol's `Value`, and the reference the hand-written
/// JSON is tested against.
struct Wire<'a>(&'a ReceiveAnswer);

impl Serialize for Wire<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Answer<'a> {
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            messages: Vec<Message<'a>>,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Message<'a> {
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            attributes: BTreeMap<&'a str, &'a str>,
            body: &'a str,
            #[serde(rename = "MD5OfBody")]
            md5_body: &'a str,
            #[serde(
                rename = "MD5OfMessageAttributes",
                skip_serializing_if = "Option::is_none"
            )]
            md5_attributes: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            message_attributes: Option<Value>,
            message_id: store::queue::message_id::IdText,
            receipt_handle: &'a str,
        }
        Answer {
            messages: self
                .0
                .0
                .iter()
                .map(|m| Message {
                    attributes: m.attributes.iter().map(|(k, v)| (*k, v.as_str())).collect(),
                    body: &m.body,
                    md5_body: &m.md5_body,
                    md5_attributes: m.md5_attributes.as_deref(),
                    // Message attributes are sent only with their digest.
                    message_attributes: m
                        .md5_attributes
                        .as_ref()
                        .map(|_| attributes_to_json(&m.message_attributes)),
                    message_id: m.message_id.text(),
                    receipt_handle: &m.receipt_handle,
                })
                .collect(),
        }
        .serialize(s)
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::super::output::Answer;
    use super::*;

    fn message(n: usize) -> ReceivedMessage {
        ReceivedMessage {
            message_id: store::queue::MessageId::v4((n as u128).to_le_bytes()),
            receipt_handle: format!("handle-{n}"),
            body: Arc::from(format!("body {n} \"quoted\" \\ \u{1}\n\t é ✓")),
            md5_body: store::queue::md5::HexDigest::of(format!("body {n}").as_bytes()),
            attributes: Vec::new(),
            message_attributes: BTreeMap::new(),
            md5_attributes: None,
        }
    }

    /// The answer a `Value` was built for before the typed one replaced it.
    fn value_answer(msgs: &[ReceivedMessage]) -> Value {
        let list: Vec<Value> = msgs
            .iter()
            .map(|m| {
                let mut o = Map::new();
                o.insert("MessageId".into(), m.message_id.to_string().into());
                o.insert("ReceiptHandle".into(), m.receipt_handle.clone().into());
                o.insert("MD5OfBody".into(), m.md5_body.as_str().into());
                o.insert("Body".into(), Value::String(m.body.to_string()));
                if !m.attributes.is_empty() {
                    let a: Map<String, Value> = m
                        .attributes
                        .iter()
                        .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
                        .collect();
                    o.insert("Attributes".into(), Value::Object(a));
                }
                if let Some(md5) = &m.md5_attributes {
                    o.insert("MD5OfMessageAttributes".into(), md5.clone().into());
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
            json!({ "Messages": list })
        }
    }

    #[test]
    fn the_typed_answer_is_the_value_answer_byte_for_byte() {
        assert_eq!(ReceiveAnswer(vec![]).json(), "{}");
        let plain = message(1);
        let mut with_attributes = message(2);
        // Pushed out of order: both answers sort them.
        with_attributes.attributes = vec![
            ("SenderId", "AIDA".into()),
            ("SentTimestamp", "1700000000000".into()),
            ("ApproximateReceiveCount", "3".into()),
            ("MessageGroupId", "g \"1\"".into()),
        ];
        let mut with_message_attributes = message(3);
        with_message_attributes.message_attributes = BTreeMap::from([
            (
                "b".to_string(),
                MessageAttributeValue {
                    data_type: "Binary".into(),
                    string_value: None,
                    binary_value: Some(vec![0, 1, 255]),
                },
            ),
            (
                "a".to_string(),
                MessageAttributeValue {
                    data_type: "Number.int".into(),
                    string_value: Some("42".into()),
                    binary_value: None,
                },
            ),
        ]);
        with_message_attributes.md5_attributes = Some("md5-attrs".into());
        // A body with nothing to escape is copied as it is.
        let mut unescaped = message(4);
        unescaped.body = Arc::from("a plain body, ✓ é and DEL \u{7f} stay raw");
        let all = vec![plain, with_attributes, with_message_attributes, unescaped];
        for msgs in [vec![all[0].clone()], all.clone()] {
            let expected = value_answer(&msgs);
            let answer = ReceiveAnswer(msgs);
            assert_eq!(answer.json(), expected.to_string());
            assert_eq!(answer.value(), expected);
        }
        let parsed: Value = serde_json::from_str(&ReceiveAnswer(all.clone()).json()).unwrap();
        assert_eq!(
            parsed["Messages"][1]["Attributes"]["MessageGroupId"],
            "g \"1\""
        );
        assert_eq!(
            parsed["Messages"][2]["MessageAttributes"]["b"]["BinaryValue"],
            "AAH/"
        );
        assert_eq!(parsed["Messages"][0]["Body"], all[0].body.as_ref());
    }
}
