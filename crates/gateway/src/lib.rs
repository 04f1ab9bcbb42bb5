//! HTTP endpoints that speak the SQS and DynamoDB wire protocols over kedge's store, so
//! unmodified AWS SDKs, boto3 and the aws CLI work against `kedge serve`.
//!
//! # Layout
//! - this file: [`AppState`], [`serve`] (takes an already-bound listener and a shutdown
//!   future, so tests bind port 0) and the router that tells protocols apart:
//!   `X-Amz-Target: AmazonSQS.*` → SQS JSON 1.0, `X-Amz-Target: DynamoDB_20120810.*` →
//!   DynamoDB, `X-Amz-Target: DynamoDBStreams_20120810.*` → DynamoDB Streams, a form or query string with `Action=` → SQS query protocol (XML), `GET /metrics`
//!   → Prometheus text, `GET /healthz` → liveness.
//! - [`sigv4`]: optional AWS Signature Version 4 verification (`--credentials`).
//! - [`sqs`]: SQS actions, one file each (one shape for both protocols: query input is
//!   normalised to the JSON input, JSON output is rendered to XML for the query protocol).
//! - [`dynamodb`]: DynamoDB and DynamoDB Streams operations.
//! - [`sts`]: STS's `GetCallerIdentity`, for requests signed for `sts`.
//! - [`metrics`]: request counters and latency histograms, rendered as Prometheus text.

pub mod dynamodb;
mod idle;
pub mod metrics;
pub mod sigv4;
pub mod sqs;
pub mod sts;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// The target prefix of DynamoDB Streams (signed for `dynamodb`, as AWS signs it).
const STREAMS_PREFIX: &str = "DynamoDBStreams_20120810.";

pub type HttpResponse = Response<Full<Bytes>>;

/// The largest request body accepted: DynamoDB's 16 MB (a body one byte longer is answered
/// 413, as DynamoDB answers it). SQS requests are far smaller: a 1 MiB batch is at most ~6 MiB
/// with every character escaped.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// The longest request line, and the most header bytes, a DynamoDB request may have.
pub const MAX_LINE_OR_HEADER_BYTES: usize = 16 * 1024;

/// Server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// When set, requests must carry a valid SigV4 signature made with these credentials.
    pub credentials: Option<sigv4::Credentials>,
    /// Region used in ARNs and expected in signatures' scope when checking.
    pub region: String,
    /// How long a client may take to send a request's head or its body, and how long a
    /// connection may stay open with no request on it; `None`: no limit.
    pub client_timeout: Option<Duration>,
}

/// The default [`Config::client_timeout`]: nginx's for a request's head and body.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

impl Default for Config {
    fn default() -> Self {
        Config {
            credentials: None,
            region: "us-east-1".into(),
            client_timeout: Some(CLIENT_TIMEOUT),
        }
    }
}

/// Everything a request handler needs.
pub struct AppState {
    pub store: store::Store,
    pub config: Config,
    pub metrics: metrics::Metrics,
    /// Resolves when the server is shutting down (long polls return early).
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

impl AppState {
    /// State over an opened store; returns the sender that tells long polls to stop.
    pub fn new(
        store: store::Store,
        config: Config,
    ) -> (Arc<AppState>, tokio::sync::watch::Sender<bool>) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (
            Arc::new(AppState {
                store,
                config,
                metrics: metrics::Metrics::default(),
                shutdown: rx,
            }),
            tx,
        )
    }
}

/// The request as the protocol handlers see it.
pub struct Incoming2 {
    pub host: String,
    pub path: String,
    pub query: Option<String>,
    pub body: Bytes,
    /// The access key id the request was signed with, if any.
    pub access_key: Option<String>,
    /// The `X-Amzn-Trace-Id` header (X-Ray), if any.
    pub trace_id: Option<String>,
}

/// Serve on `listener` until `shutdown` resolves; then stop accepting, let in-flight requests
/// finish (their writes are durable before they answer), commit what is still queued for the
/// journal and return.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
    stop_tx: tokio::sync::watch::Sender<bool>,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let move_tasks = tokio::spawn(run_move_tasks(state.clone()));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let st = state.clone();
                let activity = idle::Activity::new();
                let on_conn = activity.clone();
                let svc = hyper::service::service_fn(move |req| {
                    let st = st.clone();
                    let in_flight = on_conn.begin();
                    async move {
                        let resp = handle(st, req).await;
                        drop(in_flight);
                        Ok::<_, Infallible>(resp)
                    }
                });
                let conn = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                    .into_owned();
                let conn = graceful.watch(conn);
                let limit = state.config.client_timeout;
                tokio::spawn(async move {
                    let ended = match limit {
                        Some(limit) => idle::watch(conn, activity, limit).await,
                        None => Some(conn.await),
                    };
                    match ended {
                        Some(Err(e)) => tracing::debug!(error = %e, "connection ended with an error"),
                        Some(Ok(())) => {}
                        None => tracing::debug!("connection closed: no request for the client timeout"),
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    move_tasks.abort();
    let _ = stop_tx.send(true);
    // Long polls see the stop signal and answer at once; everything else finishes normally.
    if tokio::time::timeout(Duration::from_secs(25), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 25 s; closing them");
    }
    // Changes nobody waited for (the timer records of long polls that found nothing,
    // move-task steps) are committed before the process ends.
    if let Err(e) = state.store.journal.barrier().await {
        tracing::warn!(error = %e, "the last changes could not be committed at shutdown");
    }
    Ok(())
}

/// How often running message move tasks are moved along (a rate of 500 a second moves 50
/// messages a step).
const MOVE_TASK_STEP: Duration = Duration::from_millis(100);

/// Move running message move tasks along on the engine's clock, for as long as the server runs.
async fn run_move_tasks(state: Arc<AppState>) {
    let mut every = tokio::time::interval(MOVE_TASK_STEP);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        every.tick().await;
        drop(state.store.queues.advance_move_tasks());
    }
}

/// The headers a browser may read from an answer to a cross-origin request.
const EXPOSE_HEADERS: &str =
    "x-amzn-RequestId,x-amzn-ErrorType,x-amzn-ErrorMessage,x-amz-crc32,Date";

async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> HttpResponse {
    let cross_origin = req.headers().contains_key(hyper::header::ORIGIN);
    let mut resp = answer(state, req).await;
    // Every answer to a browser's request is readable by it (as DynamoDB answers them).
    if cross_origin {
        let h = resp.headers_mut();
        h.insert(
            hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN,
            hyper::header::HeaderValue::from_static("*"),
        );
        h.insert(
            hyper::header::ACCESS_CONTROL_EXPOSE_HEADERS,
            hyper::header::HeaderValue::from_static(EXPOSE_HEADERS),
        );
    }
    resp
}

async fn answer(state: Arc<AppState>, req: Request<Incoming>) -> HttpResponse {
    let started = tokio::time::Instant::now();
    let (parts, body) = req.into_parts();
    if parts.method == hyper::Method::GET
        && parts.uri.query().is_none_or(|q| !q.contains("Action="))
    {
        return match parts.uri.path() {
            "/metrics" => text(StatusCode::OK, state.metrics.render(&state.store)),
            "/healthz" | "/readyz" => {
                if state.store.journal.is_failed() {
                    text(StatusCode::SERVICE_UNAVAILABLE, "storage failed\n".into())
                } else {
                    text(StatusCode::OK, "ok\n".into())
                }
            }
            // DynamoDB answers a GET of its root with a health line; clients probe it.
            "/" => dynamodb::health(&state.config.region),
            // SQS answers a GET of a queue URL without an Action so (LocalStack's tests
            // recorded against AWS, also with `Accept: application/json`).
            p if sqs::is_queue_path(p) => json_response(
                StatusCode::NOT_FOUND,
                "text/xml",
                "<UnknownOperationException/>".into(),
            ),
            _ => text(
                StatusCode::NOT_FOUND,
                "kedge serve: POST AWS SQS or DynamoDB requests here; GET /metrics or /healthz\n"
                    .into(),
            ),
        };
    }
    if parts.method == hyper::Method::OPTIONS && parts.headers.contains_key(hyper::header::ORIGIN) {
        return dynamodb::preflight(&parts.headers);
    }
    // DynamoDB refuses a request line or headers over 16 KB with a bare 400, before reading
    // the body (hyper's own, larger, limits answer 414 and 431).
    if parts
        .headers
        .get("x-amz-target")
        .is_some_and(|t| t.as_bytes().starts_with(b"DynamoDB"))
    {
        let line = parts.uri.path_and_query().map_or(0, |p| p.as_str().len());
        let headers: usize = parts
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 4)
            .sum();
        if line > MAX_LINE_OR_HEADER_BYTES || headers > MAX_LINE_OR_HEADER_BYTES {
            return text(
                StatusCode::BAD_REQUEST,
                format!(
                    "request {} larger than {MAX_LINE_OR_HEADER_BYTES} bytes\n",
                    if line > MAX_LINE_OR_HEADER_BYTES {
                        "line"
                    } else {
                        "headers"
                    }
                ),
            );
        }
    }
    let body = match read_body(body, state.config.client_timeout).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            return too_large(format!("request body larger than {MAX_BODY_BYTES} bytes\n"));
        }
        Err(BodyError::Stalled(limit)) => {
            return text(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "no part of the request body received for {} s\n",
                    limit.as_secs_f64()
                ),
            );
        }
        Err(BodyError::Broken(e)) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("could not read request body: {e}\n"),
            );
        }
    };
    // Headers are read where they are, not copied: the DynamoDB path needs no owned copy of
    // any of them, and only the SQS and STS paths build an [`Incoming2`].
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
    let target = header("x-amz-target").unwrap_or_default();
    let content_type = header("content-type").unwrap_or_default();
    let protocol = if target.starts_with("DynamoDB_20120810.") || target.starts_with(STREAMS_PREFIX)
    {
        Protocol::DynamoDb
    } else if target.starts_with("AmazonSQS.") {
        Protocol::SqsJson
    } else if !target.is_empty()
        || dynamodb::is_json_content_type(content_type)
        || (sigv4::scope_service(&parts.headers) == Some("dynamodb")
            && !parts.uri.query().is_some_and(|q| q.contains("Action="))
            && !body.windows(7).any(|w| w == b"Action="))
    {
        // A target or a JSON body that is not SQS's, or a request signed for DynamoDB without
        // an SQS Action: SQS JSON always names its target and the query protocol its Action,
        // so this is a DynamoDB request with a missing or wrong target (answered as DynamoDB
        // does).
        Protocol::DynamoDb
    } else if sigv4::scope_service(&parts.headers) == Some("sts") {
        Protocol::Sts
    } else {
        Protocol::SqsQuery
    };
    let access_key = match &state.config.credentials {
        None => sigv4::access_key_of(&parts.headers),
        Some(creds) => match sigv4::verify(
            creds,
            &parts,
            &body,
            &sigv4::Expect {
                service: match protocol {
                    Protocol::DynamoDb => "dynamodb",
                    Protocol::SqsJson | Protocol::SqsQuery => "sqs",
                    Protocol::Sts => "sts",
                },
                region: &state.config.region,
                now: state.store.queues.now(),
            },
        ) {
            Ok(ak) => Some(ak),
            Err(e) => {
                let resp = match protocol {
                    Protocol::DynamoDb => dynamodb_auth_error(&e),
                    Protocol::SqsJson => sqs::error_json(&e.as_sqs()),
                    Protocol::SqsQuery | Protocol::Sts => sqs::error_xml(&e.as_sqs()),
                };
                state.metrics.observe(
                    "auth",
                    "Authenticate",
                    resp.status().as_u16(),
                    started.elapsed(),
                );
                return resp;
            }
        },
    };
    let incoming = |body: Bytes| Incoming2 {
        host: header("host").unwrap_or("localhost").to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        body,
        access_key,
        trace_id: header("x-amzn-trace-id").map(str::to_owned),
    };
    let (proto_name, action, resp) = match protocol {
        Protocol::DynamoDb => {
            let (service, op) = match target.strip_prefix(STREAMS_PREFIX) {
                Some(op) => (dynamodb::Service::Streams, Some(op)),
                None => (
                    dynamodb::Service::DynamoDb,
                    target.strip_prefix("DynamoDB_20120810."),
                ),
            };
            // A compressed body is read once decoded (its signature covers it as sent).
            let body = dynamodb::encoding::decode_request(&parts.headers, body, MAX_BODY_BYTES);
            let mut r = match body {
                Ok(body) => {
                    dynamodb::handle_target(
                        &state,
                        service,
                        op,
                        Some(header("host").unwrap_or("localhost")),
                        body,
                        dynamodb::encoding::negotiate(&parts.headers),
                    )
                    .await
                }
                Err(e) => dynamodb::undecodable(e),
            };
            // DynamoDB answers in the request's content type when it is AWS JSON 1.0 and in
            // application/json otherwise (no content type included).
            if content_type.split(';').next().unwrap_or("").trim() != "application/x-amz-json-1.0" {
                r.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("application/json"),
                );
            }
            (
                "dynamodb",
                std::borrow::Cow::Borrowed(op.unwrap_or("Unknown")),
                r,
            )
        }
        Protocol::SqsJson => {
            let action = &target["AmazonSQS.".len()..];
            let r = sqs::handle_json(&state, action, &incoming(body)).await;
            ("sqs", std::borrow::Cow::Borrowed(action), r)
        }
        Protocol::SqsQuery => {
            let (action, r) = sqs::handle_query(&state, &incoming(body)).await;
            ("sqs", std::borrow::Cow::Owned(action), r)
        }
        Protocol::Sts => {
            let (action, r) = sts::handle(&incoming(body));
            ("sts", std::borrow::Cow::Owned(action), r)
        }
    };
    state.metrics.observe(
        proto_name,
        &action,
        resp.status().as_u16(),
        started.elapsed(),
    );
    resp
}

enum BodyError {
    TooLarge,
    /// No part of the body came for this long.
    Stalled(Duration),
    Broken(String),
}

/// A request's body, read to its end: at most [`MAX_BODY_BYTES`], waiting at most `limit` for
/// each part of it (nginx's `client_body_timeout` is so: between two reads, not for the whole
/// body, so that a large body on a slow link is not cut off while it keeps coming).
async fn read_body(body: Incoming, limit: Option<Duration>) -> Result<Bytes, BodyError> {
    let mut body = Limited::new(body, MAX_BODY_BYTES);
    let mut first: Option<Bytes> = None;
    let mut more: Option<bytes::BytesMut> = None;
    loop {
        // A body read with its head is ready at the first poll: no timer is armed then.
        let frame = match limit {
            Some(limit) => tokio::time::timeout(limit, body.frame())
                .await
                .map_err(|_| BodyError::Stalled(limit))?,
            None => body.frame().await,
        };
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                BodyError::TooLarge
            } else {
                BodyError::Broken(e.to_string())
            }
        })?;
        // Trailers carry nothing kedge reads.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        match (&mut first, &mut more) {
            (None, _) => first = Some(data),
            (Some(f), None) => {
                let mut m = bytes::BytesMut::with_capacity(f.len() + data.len());
                m.extend_from_slice(f);
                m.extend_from_slice(&data);
                more = Some(m);
            }
            (Some(_), Some(m)) => m.extend_from_slice(&data),
        }
    }
    Ok(match more {
        Some(m) => m.freeze(),
        None => first.unwrap_or_default(),
    })
}

enum Protocol {
    DynamoDb,
    SqsJson,
    SqsQuery,
    Sts,
}

fn dynamodb_auth_error(e: &sigv4::AuthError) -> HttpResponse {
    let (ty, msg) = e.as_dynamodb();
    let body = serde_json::json!({"__type": ty, "message": msg}).to_string();
    json_response(StatusCode::BAD_REQUEST, "application/x-amz-json-1.0", body)
}

/// A plain-text response.
pub fn text(status: StatusCode, body: String) -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// The answer to a request body over the limit: 413, its body sent chunked as DynamoDB sends
/// it (dynalite's suite, recorded against DynamoDB, checks the `Transfer-Encoding`).
pub fn too_large(message: String) -> HttpResponse {
    let mut r = text(StatusCode::PAYLOAD_TOO_LARGE, message);
    r.headers_mut().insert(
        hyper::header::TRANSFER_ENCODING,
        hyper::header::HeaderValue::from_static("chunked"),
    );
    r
}

/// A JSON (or XML) response with a request id header.
pub fn json_response(status: StatusCode, content_type: &'static str, body: String) -> HttpResponse {
    let mut r = response(status, content_type, body);
    if let Ok(v) = hyper::header::HeaderValue::from_str(&request_id()) {
        // A name made without an allocation (a `&str` name is copied on every insert).
        r.headers_mut().insert(
            hyper::header::HeaderName::from_static("x-amzn-requestid"),
            v,
        );
    }
    r
}

/// A response with a body and its content type, and no other headers.
pub fn response(status: StatusCode, content_type: &'static str, body: String) -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}

/// A fresh request id (a version-4 UUID, as AWS sends), written as message ids are.
pub fn request_id() -> String {
    store::queue::uuid_v4_text(rand::random())
}

/// Open the store and bind, for `kedge serve` and tests: returns the state and the bound
/// listener's address.
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_are_version_4_uuids_in_lower_case_and_differ() {
        let a = super::request_id();
        let b = super::request_id();
        assert_ne!(a, b);
        for id in [a, b] {
            assert_eq!(id.len(), 36, "{id}");
            for (i, c) in id.chars().enumerate() {
                match i {
                    8 | 13 | 18 | 23 => assert_eq!(c, '-', "{id}"),
                    14 => assert_eq!(c, '4', "{id}"),
                    19 => assert!("89ab".contains(c), "{id}"),
                    _ => assert!(c.is_ascii_hexdigit() && !c.is_ascii_uppercase(), "{id}"),
                }
            }
        }
    }
}
