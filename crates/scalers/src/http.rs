//! A minimal HTTP GET for the HTTP-based scalers (metrics-api, prometheus), on hyper.
//!
//! Plain `http://` only: TLS for scaler endpoints is not wired up yet and an `https://` URL
//! is reported as a configuration error rather than silently downgraded.

use std::time::Duration;

use autoscale::ScalerError;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// At most this many requests in flight per shared pool: ScaledObjects created together poll
/// together, and without a bound every one of them opens its own connection at the same
/// instant (the pool only helps between bursts).
pub const MAX_IN_FLIGHT: usize = 32;

#[derive(Clone, Debug)]
pub struct HttpClient {
    client: Client<HttpConnector, Empty<Bytes>>,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    timeout: Duration,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new(Duration::from_secs(3))
    }
}

thread_local! {
    /// One connection pool per thread instead of one per scaler: 1,000 ScaledObjects polling
    /// the same endpoint share a handful of keep-alive connections instead of holding 1,000
    /// (each with its own read and write buffers: ~50 KB a scaler, measured with heaptrack under
    /// `kedge bench operator`). Per thread rather than per process because a pooled
    /// connection's task runs on the runtime that opened it, and tests run one runtime each.
    #[allow(clippy::type_complexity)]
    static SHARED: std::cell::RefCell<Option<(Client<HttpConnector, Empty<Bytes>>, std::sync::Arc<tokio::sync::Semaphore>)>> =
        const { std::cell::RefCell::new(None) };
}

fn shared_client() -> (
    Client<HttpConnector, Empty<Bytes>>,
    std::sync::Arc<tokio::sync::Semaphore>,
) {
    SHARED.with(|c| {
        c.borrow_mut()
            .get_or_insert_with(|| {
                let mut connector = HttpConnector::new();
                // Each request is bounded by its scaler's own timeout as a whole.
                connector.set_connect_timeout(Some(Duration::from_secs(30)));
                let client = Client::builder(TokioExecutor::new())
                    .pool_timer(hyper_util::rt::TokioTimer::new())
                    .pool_idle_timeout(Duration::from_secs(30))
                    .pool_max_idle_per_host(16)
                    .build(connector);
                let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
                (client, permits)
            })
            .clone()
    })
}

impl HttpClient {
    pub fn new(timeout: Duration) -> Self {
        let (client, permits) = shared_client();
        HttpClient {
            client,
            permits,
            timeout,
        }
    }

    /// GET `url` with `headers`; returns the body of a 2xx answer.
    pub async fn get(&self, url: &str, headers: &[(String, String)]) -> Result<Bytes, ScalerError> {
        if url.starts_with("https://") {
            return Err(ScalerError::Config(format!(
                "{url}: https is not supported by kedge's HTTP scalers yet; use an http:// endpoint"
            )));
        }
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| ScalerError::Config(format!("invalid URL {url:?}: {e}")))?;
        let mut req = hyper::Request::get(uri);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req
            .body(Empty::<Bytes>::new())
            .map_err(|e| ScalerError::Config(format!("invalid request header: {e}")))?;
        // Waiting for a permit does not count against the endpoint's timeout.
        let _permit = self.permits.acquire().await.ok();
        let fut = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| ScalerError::Connect(format!("{url}: {e}")))?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| ScalerError::Connect(format!("{url}: reading the body: {e}")))?
                .to_bytes();
            if !status.is_success() {
                let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
                return Err(ScalerError::Query(format!(
                    "{url} answered {status}: {text}"
                )));
            }
            Ok(body)
        };
        // Boxed: a poll waiting for its permit holds a small future, not the request's.
        Box::pin(tokio::time::timeout(self.timeout, fut))
            .await
            .map_err(|_| {
                ScalerError::Connect(format!("{url}: no answer within {:?}", self.timeout))
            })?
    }
}

/// Percent-encode a query component (RFC 3986 unreserved characters pass through).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
