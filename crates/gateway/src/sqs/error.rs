//! Errors in both protocols: `__type` plus the `x-amzn-query-error` header in JSON,
//! `<Error><Code>` in XML.

use hyper::StatusCode;
use serde_json::json;

use store::queue::SqsError;

use super::xml::{XMLNS, xml_escape};
use crate::{HttpResponse, json_response};

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
    // The query protocol words a missing queue as the old API did (AWS-recorded answers).
    let message = if e.kind == store::queue::SqsErrorKind::QueueDoesNotExist
        && e.message == store::queue::SqsError::no_queue().message
    {
        "The specified queue does not exist for this wsdl version."
    } else {
        e.message.as_str()
    };
    xml_escape(message, &mut out);
    out.push_str("</Message><Detail/></Error><RequestId>");
    out.push_str(&crate::request_id());
    out.push_str("</RequestId></ErrorResponse>");
    json_response(
        StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::BAD_REQUEST),
        "text/xml",
        out,
    )
}
