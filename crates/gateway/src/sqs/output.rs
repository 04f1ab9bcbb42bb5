//! Answers: the `Output` of an action, and the answer pieces several actions share.
//!
//! The hot actions (sends, receives, batch deletes) answer with typed structs serialised
//! straight to JSON text; a `serde_json::Value` is built from them only for the query
//! protocol's XML. Their fields are declared in the sorted order serde_json's maps keep, so
//! both ways give what a `Value` answer gave, byte for byte.

use serde::Serialize;
use serde_json::Value;

use store::queue::{SendResult, SqsError};

/// An action's answer in the JSON output shape, rendered by the protocol the request came in.
pub(super) enum Output {
    Value(Value),
    Typed(Box<dyn Answer>),
}

impl Output {
    pub(super) fn typed(answer: impl Answer) -> Output {
        Output::Typed(Box::new(answer))
    }

    /// The JSON protocol's body.
    pub(super) fn into_json(self) -> String {
        match self {
            Output::Value(v) => v.to_string(),
            Output::Typed(a) => a.json(),
        }
    }

    /// The answer as a `Value`, for the query protocol's XML.
    pub(super) fn into_value(self) -> Value {
        match self {
            Output::Value(v) => v,
            Output::Typed(a) => a.value(),
        }
    }
}

/// A typed answer.
pub(super) trait Answer: Send + 'static {
    fn json(&self) -> String;
    fn value(&self) -> Value;
}

impl<T: Serialize + Send + 'static> Answer for T {
    // Serialising strings, numbers, booleans and string-keyed maps cannot fail.
    fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
    fn value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// Append `s` to `out` as a JSON string, escaped exactly as serde_json escapes it. Most
/// strings of the hot answers (bodies, ids, handles, digests) need no escape at all: those are
/// checked in one pass that the compiler vectorises and copied as they are.
pub(super) fn push_json_str(out: &mut Vec<u8>, s: &str) {
    let plain = !s.bytes().fold(false, |esc, b| {
        esc | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if plain {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// A batch's answer: `Failed` entries and `Successful` ones; SQS's JSON answer leaves an
/// empty list out (AWS-recorded answers: no `"Failed": []` when every entry succeeded).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct BatchAnswer<T> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<FailedEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub successful: Vec<T>,
}

/// A batch entry that failed, with the error's code and who is at fault.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct FailedEntry {
    code: &'static str,
    id: String,
    message: String,
    sender_fault: bool,
}

impl FailedEntry {
    pub(super) fn new(id: &str, e: &SqsError) -> FailedEntry {
        FailedEntry {
            code: e.kind.query_code(),
            id: id.to_owned(),
            message: e.message.clone(),
            sender_fault: e.kind.status() < 500,
        }
    }
}

/// A successful batch entry that answers with its id alone.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Succeeded {
    id: String,
}

/// A batch's answer when entries answer with their ids alone, in the order of `ids`.
pub(super) fn batch_output<I: AsRef<str>>(
    ids: &[I],
    results: Vec<Result<(), SqsError>>,
) -> BatchAnswer<Succeeded> {
    let mut answer = BatchAnswer {
        failed: Vec::new(),
        successful: Vec::new(),
    };
    for (id, r) in ids.iter().map(AsRef::as_ref).zip(results) {
        match r {
            Ok(()) => answer.successful.push(Succeeded { id: id.to_owned() }),
            Err(e) => answer.failed.push(FailedEntry::new(id, &e)),
        }
    }
    answer
}

/// A send's answer: `SendMessage`'s whole answer (no `id`), a `SendMessageBatch` entry's.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Sent {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(
        rename = "MD5OfMessageAttributes",
        skip_serializing_if = "Option::is_none"
    )]
    md5_attributes: Option<String>,
    #[serde(rename = "MD5OfMessageBody")]
    md5_body: String,
    #[serde(
        rename = "MD5OfMessageSystemAttributes",
        skip_serializing_if = "Option::is_none"
    )]
    md5_system_attributes: Option<String>,
    message_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sequence_number: Option<String>,
}

impl Sent {
    pub(super) fn new(id: Option<String>, r: SendResult) -> Sent {
        Sent {
            id,
            md5_attributes: r.md5_attributes,
            md5_body: r.md5_body,
            md5_system_attributes: r.md5_system_attributes,
            message_id: r.message_id,
            sequence_number: r.sequence_number,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use store::queue::SqsErrorKind;

    use super::*;

    fn result(n: u32, extras: bool) -> SendResult {
        SendResult {
            message_id: format!("id-{n}"),
            md5_body: format!("md5-{n}"),
            md5_attributes: extras.then(|| "ma".into()),
            md5_system_attributes: extras.then(|| "ms".into()),
            sequence_number: extras.then(|| format!("{n:020}")),
        }
    }

    /// The typed answers give the text and the `Value` the `json!` answers they replace gave.
    #[test]
    fn typed_answers_are_the_value_answers_they_replace() {
        let sent = Sent::new(None, result(1, false));
        let expected = json!({"MessageId": "id-1", "MD5OfMessageBody": "md5-1"});
        assert_eq!(sent.value(), expected);
        assert_eq!(sent.json(), expected.to_string());

        let batch = BatchAnswer {
            failed: vec![FailedEntry::new(
                "b \"2\"",
                &SqsError::new(SqsErrorKind::InvalidMessageContents, "bad body"),
            )],
            successful: vec![Sent::new(Some("a".into()), result(3, true))],
        };
        let expected = json!({
            "Successful": [{
                "Id": "a", "MessageId": "id-3", "MD5OfMessageBody": "md5-3",
                "MD5OfMessageAttributes": "ma", "MD5OfMessageSystemAttributes": "ms",
                "SequenceNumber": "00000000000000000003",
            }],
            "Failed": [{
                "Id": "b \"2\"", "SenderFault": true,
                "Code": SqsErrorKind::InvalidMessageContents.query_code(), "Message": "bad body",
            }],
        });
        assert_eq!(batch.value(), expected);
        assert_eq!(batch.json(), expected.to_string());

        let ids = ["x".to_string(), "y".to_string()];
        let answer = batch_output(&ids, vec![Ok(()), Err(SqsError::no_queue())]);
        let expected = json!({
            "Successful": [{"Id": "x"}],
            "Failed": [{
                "Id": "y", "SenderFault": true,
                "Code": SqsError::no_queue().kind.query_code(),
                "Message": SqsError::no_queue().message,
            }],
        });
        assert_eq!(answer.json(), expected.to_string());
        assert_eq!(
            BatchAnswer::<Succeeded> {
                failed: vec![],
                successful: vec![]
            }
            .json(),
            "{}"
        );
    }
}
