//! AWS STS's `GetCallerIdentity`, answered for requests signed for `sts`: tools check their
//! credentials and learn the account with it before talking to SQS or DynamoDB (the aws CLI's
//! `sts get-caller-identity`, Terraform's AWS provider, test suites that build ARNs). Every
//! caller is the account's root here (kedge has no IAM); any other STS action is refused
//! as STS refuses an unknown one.

use hyper::StatusCode;

use crate::{HttpResponse, Incoming2, response};

/// The account every caller belongs to (the one in queue URLs and table ARNs).
const ACCOUNT: &str = store::queue::ACCOUNT_ID;

/// Answer an STS query-protocol request.
pub fn handle(req: &Incoming2) -> (String, HttpResponse) {
    let mut params: Vec<(String, String)> = Vec::new();
    if let Some(q) = &req.query {
        params.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
    }
    params.extend(form_urlencoded::parse(&req.body).into_owned());
    let action = params
        .iter()
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let id = crate::request_id();
    if action != "GetCallerIdentity" {
        let body = format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>Could not find operation {} for version 2011-06-15</Message></Error><RequestId>{id}</RequestId></ErrorResponse>",
            action
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
        );
        return (
            "invalid".into(),
            response(StatusCode::BAD_REQUEST, "text/xml", body),
        );
    }
    let body = format!(
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>arn:aws:iam::{ACCOUNT}:root</Arn><UserId>{ACCOUNT}</UserId><Account>{ACCOUNT}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>{id}</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
    );
    let mut r = response(StatusCode::OK, "text/xml", body);
    if let Ok(v) = hyper::header::HeaderValue::from_str(&id) {
        r.headers_mut().insert("x-amzn-requestid", v);
    }
    (action, r)
}
