//! Answer pieces shared by several actions.

use serde_json::{Value, json};

use store::queue::SqsError;

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

pub(super) fn failed_entry(id: &str, e: &SqsError) -> Value {
    json!({
        "Id": id,
        "SenderFault": e.kind.status() < 500,
        "Code": e.kind.query_code(),
        "Message": e.message,
    })
}
