//! SQS over both wire protocols, through the gateway's handlers.
//!
//! Every input runs against a fresh in-memory store that already holds a standard queue `q`
//! (with a dead-letter queue `dlq`, `maxReceiveCount` 2) and a FIFO queue `q.fifo`, one
//! message each, so receives, deletes and visibility changes have something to act on.
//!
//! A `$HANDLE` in a request is replaced by the receipt handle of the last message received so
//! far, so inputs can delete and change the visibility of real messages.
//!
//! Input formats (requests separated by [`crate::SEPARATOR`]):
//! - `sqs_json`: `Action` on the first line (the part after `AmazonSQS.` in `X-Amz-Target`),
//!   the JSON body after it.
//! - `sqs_query`: the request path and query string on the first line
//!   (`/000000000000/q?Action=...`), the form body after it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use gateway::{AppState, Incoming2};
use store::queue::SendRequest;

/// The SQS JSON 1.0 protocol.
pub fn json(data: &[u8]) {
    let state = setup();
    let mut handle = String::new();
    for req in crate::requests(data) {
        let (action, body) = crate::first_line(req);
        let Ok(action) = std::str::from_utf8(action) else {
            continue;
        };
        let body = with_handle(body, &handle);
        let inc = incoming("/", None, &body);
        let resp = crate::block_on(gateway::sqs::handle_json(&state, action.trim(), &inc));
        crate::debug(action, &resp);
        last_handle(&resp, "\"ReceiptHandle\":\"", "\"", &mut handle);
    }
    std::hint::black_box(state.metrics.render(&state.store));
}

/// The SQS query protocol (form parameters in, XML out).
pub fn query(data: &[u8]) {
    let state = setup();
    let mut handle = String::new();
    for req in crate::requests(data) {
        let (target, body) = crate::first_line(req);
        // A request line is ASCII in HTTP; hyper hands the handler a `&str`.
        let Ok(target) = std::str::from_utf8(target) else {
            continue;
        };
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (target, None),
        };
        let path = if path.starts_with('/') { path } else { "/" };
        // Form-encoded, as a client would send it.
        let encoded: String = form_urlencoded::byte_serialize(handle.as_bytes()).collect();
        let inc = incoming(path, query, &with_handle(body, &encoded));
        let (action, resp) = crate::block_on(gateway::sqs::handle_query(&state, &inc));
        crate::debug(&action, &resp);
        last_handle(&resp, "<ReceiptHandle>", "<", &mut handle);
    }
    std::hint::black_box(state.metrics.render(&state.store));
}

/// `body` with every `$HANDLE` replaced by `handle`.
fn with_handle(body: &[u8], handle: &str) -> Vec<u8> {
    const MARK: &[u8] = b"$HANDLE";
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while let Some(i) = rest.windows(MARK.len()).position(|w| w == MARK) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(handle.as_bytes());
        rest = &rest[i + MARK.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// Remember the last receipt handle in a response (between `open` and `close`).
fn last_handle(resp: &gateway::HttpResponse, open: &str, close: &str, handle: &mut String) {
    let body = crate::body_of(resp);
    let text = String::from_utf8_lossy(&body);
    if let Some(i) = text.rfind(open) {
        let rest = &text[i + open.len()..];
        if let Some(j) = rest.find(close) {
            *handle = rest[..j].to_owned();
        }
    }
}

fn incoming(path: &str, query: Option<String>, body: &[u8]) -> Incoming2 {
    Incoming2 {
        host: "localhost:4566".into(),
        path: path.to_owned(),
        query,
        body: Bytes::copy_from_slice(body),
        access_key: Some("AKIDFUZZ".into()),
        trace_id: None,
    }
}

fn setup() -> Arc<AppState> {
    let state = crate::fresh_state();
    let q = &state.store.queues;
    let none = HashMap::new();
    let _ = q.create_queue("dlq", &none, &none);
    let redrive = format!(
        r#"{{"deadLetterTargetArn":"{}","maxReceiveCount":"2"}}"#,
        q.arn("dlq")
    );
    let _ = q.create_queue(
        "q",
        &HashMap::from([("RedrivePolicy".to_owned(), redrive)]),
        &none,
    );
    let _ = q.create_queue(
        "q.fifo",
        &HashMap::from([
            ("FifoQueue".to_owned(), "true".to_owned()),
            ("ContentBasedDeduplication".to_owned(), "true".to_owned()),
        ]),
        &none,
    );
    for (name, group) in [("q", None), ("q.fifo", Some("g1".to_owned()))] {
        let _ = q.send(
            name,
            vec![SendRequest {
                body: "seed message".into(),
                delay_seconds: None,
                attributes: BTreeMap::new(),
                system_attributes: BTreeMap::new(),
                group_id: group,
                dedup_id: None,
                http_trace_header: None,
            }],
            "AKIDFUZZ",
        );
    }
    state
}

#[cfg(test)]
mod tests {
    /// The harness's queues exist and hold a message each.
    #[test]
    fn setup_creates_the_queues_with_a_message_each() {
        let state = super::setup();
        for q in ["q", "q.fifo", "dlq"] {
            assert!(state.store.queues.queue_exists(q), "{q}");
        }
        for q in ["q", "q.fifo"] {
            assert_eq!(
                state.store.queues.counts(q).expect("counts").visible,
                1,
                "{q}"
            );
        }
    }
}
