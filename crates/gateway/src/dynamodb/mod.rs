//! DynamoDB's AWS JSON 1.0 protocol over the table engine (`store::table`).
//!
//! One entry point, [`handle`]: parse the JSON body (malformed JSON is a
//! SerializationException, as DynamoDB answers), run the operation in the engine, wait until
//! its changes are durable, and answer with the headers DynamoDB sends: `Content-Type:
//! application/x-amz-json-1.0`, `x-amzn-RequestId` and `x-amz-crc32` (CRC32 of the body, which
//! the Java and Go SDKs verify). Errors carry AWS's `__type` so SDKs raise their typed
//! exceptions. Operation semantics live in the engine; this file only translates.

use bytes::Bytes;
use hyper::StatusCode;
use store::table::{DdbError, ErrorCode};

const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// Answer one DynamoDB operation.
pub async fn handle(state: &crate::AppState, op: &str, body: Bytes) -> crate::HttpResponse {
    match run(state, op, &body).await {
        Ok(v) => respond(StatusCode::OK, v.to_string()),
        Err(e) => error(&e),
    }
}

async fn run(
    state: &crate::AppState,
    op: &str,
    body: &[u8],
) -> Result<serde_json::Value, DdbError> {
    let req: serde_json::Value = if body.iter().all(|b| b.is_ascii_whitespace()) {
        serde_json::Value::Object(Default::default())
    } else {
        serde_json::from_slice(body).map_err(|e| {
            DdbError::serialization(format!("Unable to parse the request body as JSON: {e}"))
        })?
    };
    let (answer, ticket) = state.store.tables.execute(op, &req)?;
    // Acknowledge only once durable.
    ticket.await.map_err(DdbError::from)?;
    Ok(answer)
}

/// The error body and status for `e`.
pub fn error(e: &DdbError) -> crate::HttpResponse {
    let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    if e.code == ErrorCode::InternalServerError {
        tracing::error!(error = %e.message, "dynamodb request failed");
    }
    respond(status, e.body().to_string())
}

fn respond(status: StatusCode, body: String) -> crate::HttpResponse {
    let crc = crc32fast::hash(body.as_bytes());
    let mut r = crate::json_response(status, CONTENT_TYPE, body);
    r.headers_mut()
        .insert("x-amz-crc32", hyper::header::HeaderValue::from(crc));
    r
}
