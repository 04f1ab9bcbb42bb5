//! Answer pieces shared by several actions.

use serde_json::{Map, Value, json};

use store::queue::{SendResult, SqsError};

/// A batch's answer: `Successful` ids and `Failed` entries, in the order of `ids`.
pub(super) fn batch_output(ids: &[String], results: Vec<Result<(), SqsError>>) -> Value {
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

/// A batch entry that failed, with the error's code and who is at fault.
pub(super) fn failed_entry(id: &str, e: &SqsError) -> Value {
    json!({
        "Id": id,
        "SenderFault": e.kind.status() < 500,
        "Code": e.kind.query_code(),
        "Message": e.message,
    })
}

/// A send's answer: `SendMessage`'s whole answer, a `SendMessageBatch` entry's without its `Id`.
pub(super) fn send_result(r: SendResult) -> Map<String, Value> {
    let mut m = Map::new();
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
    m
}
