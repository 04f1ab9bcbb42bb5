//! The typed JSON reading (`parse_json`) against the `Value` reading (`parse`): for every body
//! the typed reading accepts, both give the same request or the same error. Bodies come from
//! a valid input per action with every member removed, set to null, or set to a value of
//! each JSON type, plus bodies that are not what SQS expects at all.

use serde_json::{Value, json};

use super::delete_message::DeleteMessage;
use super::delete_message_batch::DeleteMessageBatch;
use super::receive_message::ReceiveMessage;
use super::send_message::SendMessage;
use super::send_message_batch::SendMessageBatch;
use crate::Incoming2;

fn incoming() -> Incoming2 {
    Incoming2 {
        host: "localhost".into(),
        path: "/".into(),
        query: None,
        body: bytes::Bytes::new(),
        access_key: Some("AKIDEXAMPLE".into()),
        trace_id: None,
    }
}

/// Both readings of `body` for `action`; `None` when the typed reading declined it.
fn both(action: &str, body: &[u8]) -> Option<(String, String)> {
    let req = incoming();
    let fast = match action {
        "SendMessage" => format!("{:?}", SendMessage::parse_json(body, &req)?),
        "SendMessageBatch" => format!("{:?}", SendMessageBatch::parse_json(body, &req)?),
        "ReceiveMessage" => format!("{:?}", ReceiveMessage::parse_json(body)?),
        "DeleteMessage" => format!("{:?}", DeleteMessage::parse_json(body)?),
        "DeleteMessageBatch" => format!("{:?}", DeleteMessageBatch::parse_json(body)?),
        other => panic!("no typed reading for {other}"),
    };
    let v: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{action}: typed reading accepted a body that is not JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    });
    assert!(
        v.is_object(),
        "{action}: typed reading accepted a body that is not an object"
    );
    let slow = match action {
        "SendMessage" => format!("{:?}", SendMessage::parse(&v, &req)),
        "SendMessageBatch" => format!("{:?}", SendMessageBatch::parse(&v, &req)),
        "ReceiveMessage" => format!("{:?}", ReceiveMessage::parse(&v)),
        "DeleteMessage" => format!("{:?}", DeleteMessage::parse(&v)),
        "DeleteMessageBatch" => format!("{:?}", DeleteMessageBatch::parse(&v)),
        _ => unreachable!(),
    };
    Some((fast, slow))
}

/// Values a member is replaced with.
fn replacements() -> Vec<Value> {
    vec![
        Value::Null,
        json!(1),
        json!(-3),
        json!(2.5),
        json!(1e300),
        json!(18446744073709551615u64),
        json!("7"),
        json!(""),
        json!("a\"b/é\n"),
        json!("bad id!"),
        json!(true),
        json!([]),
        json!(["s"]),
        json!([null]),
        json!({}),
        json!([{}]),
        json!({"DataType": "String"}),
        json!({"DataType": "Binary", "BinaryValue": "not base64!"}),
        json!({"DataType": "String", "StringListValues": ["a"]}),
        json!({"DataType": "String", "StringValue": 5}),
    ]
}

/// `v` with every member (at any depth) removed or replaced, one change at a time.
fn variants(v: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let mut removed = m.clone();
                removed.remove(k);
                out.push(Value::Object(removed));
                for r in replacements() {
                    let mut changed = m.clone();
                    changed.insert(k.clone(), r);
                    out.push(Value::Object(changed));
                }
                for inner in variants(x) {
                    let mut changed = m.clone();
                    changed.insert(k.clone(), inner);
                    out.push(Value::Object(changed));
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            out.push(Value::Array(Vec::new()));
            out.push(Value::Array(vec![a[0].clone(); 11]));
            out.push(Value::Array(vec![a[0].clone(), a[0].clone()]));
            for (i, x) in a.iter().enumerate() {
                for inner in variants(x) {
                    let mut changed = a.clone();
                    changed[i] = inner;
                    out.push(Value::Array(changed));
                }
            }
        }
        _ => {}
    }
    out
}

const URL: &str = "http://localhost:4566/000000000000/jobs";

fn message() -> Value {
    json!({
        "MessageBody": "hello {\"a\": 1}",
        "DelaySeconds": 5,
        "MessageAttributes": {
            "s": {"DataType": "String", "StringValue": "x"},
            "b": {"DataType": "Binary", "BinaryValue": "AAEC"},
            "n": {"DataType": "Number", "StringValue": "12"}
        },
        "MessageSystemAttributes": {
            "AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-5759e988"}
        },
        "MessageGroupId": "g1",
        "MessageDeduplicationId": "d1"
    })
}

fn bases() -> Vec<(&'static str, Value)> {
    let mut send = message();
    send["QueueUrl"] = json!(URL);
    let mut e1 = message();
    e1["Id"] = json!("a-1");
    let e2 = json!({"Id": "b_2", "MessageBody": "second"});
    vec![
        ("SendMessage", send),
        (
            "SendMessageBatch",
            json!({"QueueUrl": URL, "Entries": [e1, e2]}),
        ),
        (
            "ReceiveMessage",
            json!({
                "QueueUrl": URL,
                "MaxNumberOfMessages": 10,
                "VisibilityTimeout": 30,
                "WaitTimeSeconds": 2,
                "AttributeNames": ["All"],
                "MessageSystemAttributeNames": ["SentTimestamp"],
                "MessageAttributeNames": ["s", "b.*"],
                "ReceiveRequestAttemptId": "att"
            }),
        ),
        (
            "DeleteMessage",
            json!({"QueueUrl": URL, "ReceiptHandle": "rh-1"}),
        ),
        (
            "DeleteMessageBatch",
            json!({"QueueUrl": URL, "Entries": [
                {"Id": "x", "ReceiptHandle": "rh-1"},
                {"Id": "y", "ReceiptHandle": "rh-2"}
            ]}),
        ),
    ]
}

#[test]
fn typed_reading_agrees_with_the_value_reading() {
    let mut compared = 0;
    for (action, base) in bases() {
        // The documented shape itself takes the typed reading.
        let body = serde_json::to_vec(&base).unwrap();
        let (fast, slow) = both(action, &body).expect("typed reading declined a valid input");
        assert_eq!(fast, slow, "{action}");
        assert!(fast.starts_with("Ok("), "{action}: {fast}");
        let mut taken = 0;
        for v in variants(&base) {
            let body = serde_json::to_vec(&v).unwrap();
            if let Some((fast, slow)) = both(action, &body) {
                assert_eq!(fast, slow, "{action}: {v}");
                taken += 1;
            }
        }
        assert!(
            taken > 10,
            "{action}: typed reading took only {taken} variants"
        );
        compared += taken;
    }
    assert!(compared > 200, "compared {compared}");
}

#[test]
fn bodies_that_are_not_the_documented_shape_go_to_the_value_reading() {
    let url = format!("{{\"QueueUrl\":\"{URL}\",\"MessageBody\":\"x\"}}");
    for body in [
        String::new(),
        "   ".into(),
        "[]".into(),
        format!("[\"{URL}\", \"x\"]"),
        "{".into(),
        "null".into(),
        format!("{url} trailing"),
        // A key twice: `Value` keeps the last.
        format!("{{\"QueueUrl\":\"a\",\"QueueUrl\":\"{URL}\",\"MessageBody\":\"x\"}}"),
        // A number as a string (the query protocol's spelling).
        format!("{{\"QueueUrl\":\"{URL}\",\"MessageBody\":\"x\",\"DelaySeconds\":\"5\"}}"),
    ] {
        assert!(
            SendMessage::parse_json(body.as_bytes(), &incoming()).is_none(),
            "{body}"
        );
    }
    let mut bad = url.into_bytes();
    bad.insert(bad.len() - 3, 0xff);
    assert!(SendMessage::parse_json(&bad, &incoming()).is_none());
}

#[test]
fn escaped_strings_are_read_like_plain_ones() {
    // Escaped slashes (as some encoders write URLs) and escapes in ids and bodies.
    let body = br#"{"QueueUrl":"http:\/\/localhost:4566\/000000000000\/jobs","Entries":[{"Id":"a\u002d1","MessageBody":"line\nnext \"q\""}]}"#;
    let (fast, slow) = both("SendMessageBatch", body).expect("typed reading declined escapes");
    assert_eq!(fast, slow);
    assert!(fast.contains("name: \"jobs\""), "{fast}");
    assert!(fast.contains("\"a-1\""), "{fast}");
}
