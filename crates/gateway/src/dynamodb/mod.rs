//! DynamoDB's and DynamoDB Streams' AWS JSON 1.0 protocol over the table engine
//! (`store::table`, `store::table::streams`).
//!
//! One entry point, [`handle`]: parse the JSON body (malformed JSON is a
//! SerializationException, as DynamoDB answers), run the operation in the engine, wait until
//! its changes are durable, and answer with the headers DynamoDB sends: `Content-Type:
//! application/x-amz-json-1.0`, `x-amzn-RequestId` and `x-amz-crc32` (CRC32 of the body, which
//! the Java and Go SDKs verify). Errors carry AWS's `__type` so SDKs raise their typed
//! exceptions. Operation semantics live in the engine; this file only translates.

pub mod encoding;

use bytes::Bytes;
use hyper::StatusCode;
use store::table::{Answer, DdbError, ErrorCode};

const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// Which of the two JSON services on this port a request addresses (by its target prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// `DynamoDB_20120810.*`
    DynamoDb,
    /// `DynamoDBStreams_20120810.*`
    Streams,
}

/// Answer one DynamoDB operation.
pub async fn handle(state: &crate::AppState, op: &str, body: Bytes) -> crate::HttpResponse {
    handle_target(state, Service::DynamoDb, Some(op), None, body, None).await
}

/// Answer one DynamoDB or DynamoDB Streams request; `op` is `None` when the target header
/// did not name one, `host` the request's `Host` (what DescribeEndpoints answers with),
/// `coding` how the client accepts a large answer compressed.
pub async fn handle_target(
    state: &crate::AppState,
    service: Service,
    op: Option<&str>,
    host: Option<&str>,
    body: Bytes,
    coding: Option<encoding::Coding>,
) -> crate::HttpResponse {
    match run(state, service, op, host, &body).await {
        // Tagging answers success with an empty body, as DynamoDB does.
        Ok(_) if matches!(op, Some("TagResource" | "UntagResource")) => {
            respond(StatusCode::OK, String::new(), None)
        }
        Ok(v) => respond(StatusCode::OK, v.into_text(), coding),
        Err(e) => error(&e),
    }
}

async fn run(
    state: &crate::AppState,
    service: Service,
    op: Option<&str>,
    host: Option<&str>,
    body: &[u8],
) -> Result<Answer, DdbError> {
    // The most frequent requests in their plain form are read straight into typed values
    // (a plain body is valid JSON for a known operation, so no earlier error applies).
    if service == Service::DynamoDb
        && let Some(op) = op
        && let Some(r) = state.store.tables.execute_plain(op, body)
    {
        let (answer, ticket) = r?;
        ticket.await.map_err(DdbError::from)?;
        return Ok(answer);
    }
    // DynamoDB answers a body that is not JSON, then a missing or unknown target, then an
    // empty body, with the bare exception type (no message).
    let empty = body.iter().all(|b| b.is_ascii_whitespace());
    let req: serde_json::Value = if empty {
        serde_json::Value::Object(Default::default())
    } else {
        serde_json::from_slice(body).map_err(|_| DdbError::serialization(""))?
    };
    let known = match service {
        Service::DynamoDb => store::table::OPERATIONS,
        Service::Streams => store::table::streams::OPERATIONS,
    };
    let op = op.filter(|op| known.contains(op)).ok_or_else(|| {
        // An operation DynamoDB has and kedge does not serve says so (with no body check
        // first: nothing in it would be read).
        let reason = op
            .filter(|_| service == Service::DynamoDb)
            .and_then(|op| store::table::not_served(op).map(|why| (op, why)));
        match reason {
            Some((op, why)) => DdbError::new(
                ErrorCode::UnknownOperation,
                format!("kedge serve does not serve {op}: {why}"),
            ),
            None => DdbError::new(ErrorCode::UnknownOperation, ""),
        }
    })?;
    if empty {
        return Err(DdbError::serialization(""));
    }
    if service == Service::Streams {
        // Stream reads change nothing: there is no ticket to wait for.
        return state
            .store
            .tables
            .execute_streams(op, &req)
            .map(Answer::Tree);
    }
    let (mut answer, ticket) = state.store.tables.execute(op, &req)?;
    // The endpoint is wherever this request reached us, as clients that discover endpoints
    // must be sent back here.
    if op == "DescribeEndpoints"
        && let Some(host) = host
    {
        answer = Answer::Tree(store::table::describe_endpoints(host));
    }
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
    respond(status, e.body().to_string(), None)
}

/// The answer to a body that could not be decoded by its `Content-Encoding`: HTTP 500
/// `InternalServerError` as DynamoDB answers (413 when it decodes past the request limit).
pub fn undecodable(e: encoding::DecodeError) -> crate::HttpResponse {
    let message = match e {
        encoding::DecodeError::TooLarge => {
            return crate::too_large(format!(
                "request body larger than {} bytes once decoded\n",
                crate::MAX_BODY_BYTES
            ));
        }
        encoding::DecodeError::Unsupported(c) => format!("Unsupported Content-Encoding: {c}"),
        encoding::DecodeError::Corrupt(m) => format!("Could not decode the request body: {m}"),
    };
    let e = DdbError::new(ErrorCode::InternalServerError, message);
    respond(
        StatusCode::INTERNAL_SERVER_ERROR,
        e.body().to_string(),
        None,
    )
}

/// An answer with DynamoDB's headers; compressed with `coding` when it is large enough.
fn respond(
    status: StatusCode,
    body: String,
    coding: Option<encoding::Coding>,
) -> crate::HttpResponse {
    let (body, packed_with) =
        match coding.and_then(|c| Some((c, encoding::pack(body.as_bytes(), c)?))) {
            Some((c, packed)) => (Bytes::from(packed), Some(c)),
            None => (Bytes::from(body), None),
        };
    let crc = crc32fast::hash(&body);
    let mut r = hyper::Response::new(http_body_util::Full::new(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(CONTENT_TYPE),
    );
    if let Some(c) = packed_with {
        h.insert(hyper::header::CONTENT_ENCODING, encoding::header(c));
    }
    // DynamoDB names itself so.
    h.insert(
        hyper::header::SERVER,
        hyper::header::HeaderValue::from_static("Server"),
    );
    set_crc_and_request_id(h, crc);
    r
}

/// A DynamoDB request id: 52 characters of upper-case letters and digits, as DynamoDB's are.
pub fn request_id() -> String {
    String::from_utf8_lossy(&request_id_bytes()).into_owned()
}

fn request_id_bytes() -> [u8; 52] {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    // Every answer carries one: one fill from the thread's generator, not 52 draws (the
    // modulo's slight bias does not matter for an id).
    let mut bytes = [0u8; 52];
    rand::fill(&mut bytes);
    for b in &mut bytes {
        *b = ALPHABET[*b as usize % ALPHABET.len()];
    }
    bytes
}

/// Set the `x-amz-crc32` of `body` and a fresh DynamoDB request id on an answer's headers,
/// with names made without an allocation (a `&str` name is copied into a new one on every
/// insert) and the id written straight into its header value.
fn set_crc_and_request_id(h: &mut hyper::HeaderMap, crc: u32) {
    use hyper::header::{HeaderName, HeaderValue};
    h.insert(
        HeaderName::from_static("x-amz-crc32"),
        HeaderValue::from(crc),
    );
    if let Ok(v) = HeaderValue::from_bytes(&request_id_bytes()) {
        h.insert(HeaderName::from_static("x-amzn-requestid"), v);
    }
}

/// Whether a Content-Type names JSON as DynamoDB accepts it (`application/json` or
/// `application/x-amz-json-1.0`, parameters after `;` ignored).
pub fn is_json_content_type(ct: &str) -> bool {
    let base = ct.split(';').next().unwrap_or("").trim();
    base == "application/json" || base == CONTENT_TYPE
}

/// DynamoDB's answer to `GET /`.
pub fn health(region: &str) -> crate::HttpResponse {
    // The region's endpoint name whatever the Host: dynalite's suite, recorded against AWS,
    // expects it from a local server too (ScyllaDB's expects the Host echoed; on AWS the two
    // are the same).
    let body = format!("healthy: dynamodb.{region}.amazonaws.com ");
    let crc = crc32fast::hash(body.as_bytes());
    let mut r = crate::text(StatusCode::OK, body);
    let h = r.headers_mut();
    set_crc_and_request_id(h, crc);
    r
}

/// The answer to a CORS preflight (`OPTIONS` with `Origin`): everything allowed, for two
/// days, echoing the requested headers and method, as DynamoDB answers browsers.
pub fn preflight(req: &hyper::HeaderMap) -> crate::HttpResponse {
    use hyper::header::{self, HeaderValue};
    let mut r = hyper::Response::new(http_body_util::Full::new(Bytes::new()));
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("172800"),
    );
    if let Some(v) = req.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
    }
    if let Some(v) = req.get(header::ACCESS_CONTROL_REQUEST_METHOD) {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v.clone());
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    if let Ok(v) = HeaderValue::from_str(&request_id()) {
        h.insert("x-amzn-requestid", v);
    }
    r
}
