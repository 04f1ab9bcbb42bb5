//! Test fixtures: the *ApiServerVerifier* pattern (controller-rs `src/fixtures.rs`).
//!
//! A `tower_test::mock::pair` is plugged into a real [`kube::Client`]; a test then plays the
//! API server: for each request the code under test must make, in order, it checks the method,
//! the full URI (path and query) and the JSON body, and answers as the API server would
//! (including 404/409/429 `Status` bodies). Every test awaits its scenario with
//! [`timeout`] so a missing call fails; [`ApiServer::expect_no_more`] makes an extra call fail.

use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// A kube client whose requests go to the returned [`ApiServer`].
pub fn mock_client() -> (kube::Client, ApiServer) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (kube::Client::new(svc, "default"), ApiServer { handle })
}

/// One request as the API server received it.
#[derive(Debug)]
pub struct Received {
    pub method: String,
    /// Path and query, e.g. `/apis/apps/v1/namespaces/ns/deployments/web/scale`.
    pub uri: String,
    /// The request body as JSON (`Value::Null` when empty).
    pub body: Value,
    pub content_type: Option<String>,
    pub accept: Option<String>,
}

/// The test's side of the mock: answers requests in order.
pub struct ApiServer {
    handle: Handle,
}

impl ApiServer {
    /// Wait for the next request and answer it with `status` and `response`.
    pub async fn next(&mut self, status: u16, response: Value) -> Received {
        let (req, send) = self
            .handle
            .next_request()
            .await
            .expect("the code under test dropped its client before the expected request");
        let method = req.method().to_string();
        let uri = req
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default();
        let content_type = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let accept = req
            .headers()
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = req.into_body().collect_bytes().await.unwrap_or_default();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        let resp = Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(&response).unwrap()))
            .unwrap();
        send.send_response(resp);
        Received {
            method,
            uri,
            body,
            content_type,
            accept,
        }
    }

    /// Expect the next request to be `method uri` exactly; answer with `status` and
    /// `response`; return the request body.
    pub async fn expect(&mut self, method: &str, uri: &str, status: u16, response: Value) -> Value {
        let r = self.next(status, response).await;
        assert_eq!(
            (r.method.as_str(), r.uri.as_str()),
            (method, uri),
            "unexpected request (body: {})",
            r.body
        );
        r.body
    }

    /// Fail if the code under test makes another request within `wait` (virtual or real
    /// time, whichever the test runs on).
    pub async fn expect_no_more(&mut self, wait: Duration) {
        if let Ok(Some((req, _))) = tokio::time::timeout(wait, self.handle.next_request()).await {
            panic!("unexpected extra request: {} {}", req.method(), req.uri());
        }
    }
}

/// A `metav1.Status` failure body as the API server sends it.
pub fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

/// `404 NotFound` for `kind` `name`.
pub fn not_found(kind: &str, name: &str) -> Value {
    status(404, "NotFound", &format!("{kind} \"{name}\" not found"))
}

/// `409 Conflict` (stale resourceVersion).
pub fn conflict(kind: &str, name: &str) -> Value {
    status(
        409,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on {kind} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
        ),
    )
}

/// `429 TooManyRequests` as an Eviction blocked by a PodDisruptionBudget answers.
pub fn pdb_blocked() -> Value {
    status(
        429,
        "TooManyRequests",
        "Cannot evict pod as it would violate the pod's disruption budget.",
    )
}

/// Run a scenario (the API server's side) and the code under test together; fail if the
/// scenario does not complete within `limit`.
pub async fn timeout<F: std::future::Future>(limit: Duration, f: F) -> F::Output {
    tokio::time::timeout(limit, f)
        .await
        .expect("scenario timed out: an expected API call never came")
}
