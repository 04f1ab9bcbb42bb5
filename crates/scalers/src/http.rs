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

#[derive(Clone, Debug)]
pub struct HttpClient {
    client: Client<HttpConnector, Empty<Bytes>>,
    timeout: Duration,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new(Duration::from_secs(3))
    }
}

impl HttpClient {
    pub fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        HttpClient {
            client: Client::builder(TokioExecutor::new()).build(connector),
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
        tokio::time::timeout(self.timeout, fut).await.map_err(|_| {
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
