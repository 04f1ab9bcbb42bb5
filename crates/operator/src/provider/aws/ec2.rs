//! A small EC2 client: the EC2 Query protocol (form-encoded `POST` with
//! `Action=…&Version=2016-11-15`, XML answers, errors as
//! `<Response><Errors><Error><Code>…`), signed with SigV4, retried with exponential backoff
//! on throttling (`RequestLimitExceeded`, …), 5xx answers and transport failures.
//!
//! Only the actions the provider uses are typed here; [`Ec2Client::call`] sends any action.
//! The signing time comes from the injected clock so tests are deterministic (and so a
//! skewed clock shows up as `AuthFailure`/`RequestExpired` from EC2, not silently).

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use bytes::Bytes;
use clock::Clock;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The EC2 API version every request names (the only Query API version EC2 has).
pub const API_VERSION: &str = "2016-11-15";

/// Error codes EC2 answers when the caller should slow down and retry.
const THROTTLING_CODES: &[&str] = &[
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "EC2ThrottledException",
];
/// Server-side error codes worth retrying (answered with a 5xx).
const TRANSIENT_CODES: &[&str] = &["InternalError", "ServiceUnavailable", "Unavailable"];

/// A failed EC2 call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Ec2Error {
    /// EC2 answered with an error document.
    #[error("EC2 {action}: {code}: {message} (HTTP {status})")]
    Api {
        action: String,
        status: u16,
        code: String,
        message: String,
    },
    /// The request never got an answer (connection refused, TLS, timeout).
    #[error("EC2 {action}: transport: {message}")]
    Transport { action: String, message: String },
    /// The answer could not be read (not XML, or not the shape the action answers with).
    #[error("EC2 {action}: unreadable response: {message}")]
    Parse { action: String, message: String },
    /// No credentials, or the request could not be signed.
    #[error("EC2 {action}: signing: {message}")]
    Signing { action: String, message: String },
}

impl Ec2Error {
    /// The EC2 error code, for API errors.
    pub fn code(&self) -> Option<&str> {
        match self {
            Ec2Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    fn retryable(&self) -> bool {
        match self {
            Ec2Error::Api { status, code, .. } => {
                *status >= 500
                    || THROTTLING_CODES.contains(&code.as_str())
                    || TRANSIENT_CODES.contains(&code.as_str())
            }
            Ec2Error::Transport { .. } => true,
            Ec2Error::Parse { .. } | Ec2Error::Signing { .. } => false,
        }
    }
}

/// How failed calls are retried: `max_attempts` in total, sleeping `base × 2^n` (capped at
/// `max_backoff`) between them. No jitter: kedge is one client per cluster, and a fixed
/// schedule keeps tests exact.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// The AWS SDKs' "standard" mode: 3 attempts, backoff up to 20 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(500),
            max_backoff: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max_backoff)
    }
}

/// Query parameters of one request (`Action` and `Version` are added by the client).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn new() -> Self {
        Params::default()
    }
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.0.push((key.into(), value.into()));
        self
    }
    /// `Filter.N.Name` / `Filter.N.Value.M`, numbered from 1.
    pub fn filters(&mut self, filters: &[Filter]) -> &mut Self {
        for (i, f) in filters.iter().enumerate() {
            self.set(format!("Filter.{}.Name", i + 1), f.name.clone());
            for (j, v) in f.values.iter().enumerate() {
                self.set(format!("Filter.{}.Value.{}", i + 1, j + 1), v.clone());
            }
        }
        self
    }
    /// `prefix.N` for each value, numbered from 1 (e.g. `InstanceId.1`).
    pub fn list(&mut self, prefix: &str, values: &[String]) -> &mut Self {
        for (i, v) in values.iter().enumerate() {
            self.set(format!("{prefix}.{}", i + 1), v.clone());
        }
        self
    }
    /// `prefix.N.Key` / `prefix.N.Value` (`TagSpecification.1.Tag`, …).
    pub fn tags<'a>(
        &mut self,
        prefix: &str,
        tags: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> &mut Self {
        for (i, (k, v)) in tags.into_iter().enumerate() {
            self.set(format!("{prefix}.{}.Key", i + 1), k.clone());
            self.set(format!("{prefix}.{}.Value", i + 1), v.clone());
        }
        self
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// An EC2 `Filter` (`Name` and its values, ORed).
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

impl Filter {
    pub fn new(name: impl Into<String>, values: &[&str]) -> Filter {
        Filter {
            name: name.into(),
            values: values.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Percent-encoding of the form body (RFC 3986 unreserved characters pass through; what
/// SigV4 and EC2 expect).
pub fn percent_encode(s: &str) -> String {
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

/// Where and as whom the client talks to EC2.
#[derive(Debug, Clone)]
pub struct Ec2Config {
    /// `https://ec2.<region>.amazonaws.com` or a mock's `http://127.0.0.1:port`.
    pub endpoint: String,
    pub region: String,
    pub retry: RetryPolicy,
}

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The EC2 Query API client. Cheap to clone.
#[derive(Clone)]
pub struct Ec2Client {
    config: Arc<Ec2Config>,
    credentials: SharedCredentialsProvider,
    http: HttpClient,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Ec2Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ec2Client")
            .field("endpoint", &self.config.endpoint)
            .field("region", &self.config.region)
            .finish()
    }
}

impl Ec2Client {
    /// A client with the given credentials source (`aws-config`'s default chain in
    /// production, static keys in tests).
    pub fn new(
        config: Ec2Config,
        credentials: SharedCredentialsProvider,
        clock: Arc<dyn Clock>,
    ) -> Result<Ec2Client, Ec2Error> {
        crate::init_tls();
        let builder = match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
            Ok(b) => b,
            // A plain-HTTP endpoint (a local mock or proxy) needs no root certificates, so a
            // container without a CA bundle can still use it.
            Err(_) if config.endpoint.starts_with("http://") => {
                let tls = rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth();
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls)
            }
            Err(e) => {
                return Err(Ec2Error::Transport {
                    action: "-".into(),
                    message: format!(
                        "no root certificates for {}: {e} (install the system CA bundle)",
                        config.endpoint
                    ),
                });
            }
        };
        let https = builder.https_or_http().enable_http1().build();
        let http = Client::builder(hyper_util::rt::TokioExecutor::new()).build(https);
        Ok(Ec2Client {
            config: Arc::new(config),
            credentials,
            http,
            clock,
        })
    }

    /// A client with static keys (tests, or keys from a Secret).
    pub fn with_static_keys(
        config: Ec2Config,
        access_key: &str,
        secret_key: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<Ec2Client, Ec2Error> {
        let creds = Credentials::new(access_key, secret_key, None, None, "kedge-static");
        Ec2Client::new(config, SharedCredentialsProvider::new(creds), clock)
    }

    pub fn region(&self) -> &str {
        &self.config.region
    }

    /// Send `action` with `params`, retrying throttling and transient failures; the XML body
    /// of the successful answer.
    pub async fn call(&self, action: &str, params: &Params) -> Result<String, Ec2Error> {
        let mut attempt = 0;
        loop {
            match self.call_once(action, params).await {
                Ok(body) => return Ok(body),
                Err(e) if e.retryable() && attempt + 1 < self.config.retry.max_attempts => {
                    let wait = self.config.retry.backoff(attempt);
                    tracing::debug!(action, error = %e, ?wait, "EC2 call failed; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// [`Ec2Client::call`] and decode the answer into `T`.
    pub async fn call_parse<T: DeserializeOwned>(
        &self,
        action: &str,
        params: &Params,
    ) -> Result<T, Ec2Error> {
        let body = self.call(action, params).await?;
        parse_xml(action, &body)
    }

    async fn call_once(&self, action: &str, params: &Params) -> Result<String, Ec2Error> {
        let mut body = format!("Action={}&Version={API_VERSION}", percent_encode(action));
        for (k, v) in &params.0 {
            body.push('&');
            body.push_str(&percent_encode(k));
            body.push('=');
            body.push_str(&percent_encode(v));
        }
        let uri: http::Uri = self
            .config
            .endpoint
            .parse()
            .map_err(|e| Ec2Error::Transport {
                action: action.into(),
                message: format!("endpoint {:?} is not a URL: {e}", self.config.endpoint),
            })?;
        let host = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .ok_or_else(|| Ec2Error::Transport {
                action: action.into(),
                message: format!("endpoint {:?} has no host", self.config.endpoint),
            })?;
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let mut req = http::Request::builder()
            .method("POST")
            .uri(uri.clone())
            .header(http::header::HOST, &host)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body.clone())))
            .map_err(|e| Ec2Error::Transport {
                action: action.into(),
                message: e.to_string(),
            })?;
        self.sign(action, &mut req, &uri, &host, content_type, body.as_bytes())
            .await?;

        let resp = self
            .http
            .request(req)
            .await
            .map_err(|e| Ec2Error::Transport {
                action: action.into(),
                message: format!("{e}"),
            })?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| Ec2Error::Transport {
                action: action.into(),
                message: format!("reading the response: {e}"),
            })?
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if (200..300).contains(&status) {
            return Ok(text);
        }
        Err(parse_error(action, status, &text))
    }

    async fn sign(
        &self,
        action: &str,
        req: &mut http::Request<Full<Bytes>>,
        uri: &http::Uri,
        host: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<(), Ec2Error> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let signing = |message: String| Ec2Error::Signing {
            action: action.into(),
            message,
        };
        let creds = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| signing(format!("no AWS credentials: {e}")))?;
        let identity = creds.into();
        let time = UNIX_EPOCH + Duration::from_millis(self.clock.now().as_millis());
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.config.region)
            .name("ec2")
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| signing(e.to_string()))?
            .into();
        let uri_s = uri.to_string();
        let headers = [("host", host), ("content-type", content_type)];
        let signable = SignableRequest::new(
            "POST",
            &uri_s,
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| signing(e.to_string()))?;
        let (instructions, _sig) = sign(signable, &params)
            .map_err(|e| signing(e.to_string()))?
            .into_parts();
        instructions.apply_to_request_http1x(req);
        Ok(())
    }
}

/// Decode an XML answer; a document that is not the expected shape is a [`Ec2Error::Parse`]
/// naming the action.
pub fn parse_xml<T: DeserializeOwned>(action: &str, body: &str) -> Result<T, Ec2Error> {
    quick_xml::de::from_str(body).map_err(|e| Ec2Error::Parse {
        action: action.into(),
        message: format!("{e} (body starts with {:?})", truncate(body, 120)),
    })
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[derive(Debug, Deserialize, Default)]
struct ErrorResponse {
    #[serde(rename = "Errors", default)]
    errors: ErrorList,
}

#[derive(Debug, Deserialize, Default)]
struct ErrorList {
    #[serde(rename = "Error", default)]
    error: Vec<ErrorItem>,
}

#[derive(Debug, Deserialize, Default)]
struct ErrorItem {
    #[serde(rename = "Code", default)]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

/// An error answer: EC2's `<Response><Errors><Error>` document, or (from proxies, load
/// balancers) anything else, reported with its HTTP status.
fn parse_error(action: &str, status: u16, body: &str) -> Ec2Error {
    match quick_xml::de::from_str::<ErrorResponse>(body) {
        Ok(r) if !r.errors.error.is_empty() => {
            let e = &r.errors.error[0];
            Ec2Error::Api {
                action: action.into(),
                status,
                code: e.code.clone(),
                message: e.message.clone(),
            }
        }
        _ => Ec2Error::Api {
            action: action.into(),
            status,
            code: if status >= 500 {
                "InternalError".into()
            } else {
                "Unknown".into()
            },
            message: format!("non-EC2 error body: {:?}", truncate(body, 200)),
        },
    }
}

// ----- response shapes (the subset of fields kedge reads) -----

/// EC2's `<xSet><item>…</item></xSet>` lists.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Items<T> {
    #[serde(default = "Vec::new")]
    pub item: Vec<T>,
}

impl<T> Default for Items<T> {
    fn default() -> Self {
        Items { item: Vec::new() }
    }
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
pub struct Tag {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CreateFleetResponse {
    #[serde(default)]
    pub fleet_id: Option<String>,
    #[serde(default)]
    pub error_set: Items<FleetError>,
    #[serde(default)]
    pub fleet_instance_set: Items<FleetInstance>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FleetError {
    #[serde(default)]
    pub error_code: String,
    #[serde(default)]
    pub error_message: String,
    #[serde(default)]
    pub launch_template_and_overrides: Option<LaunchTemplateAndOverrides>,
    #[serde(default)]
    pub lifecycle: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LaunchTemplateAndOverrides {
    #[serde(default)]
    pub overrides: Option<FleetOverrides>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FleetOverrides {
    #[serde(default)]
    pub instance_type: Option<String>,
    #[serde(default)]
    pub subnet_id: Option<String>,
    #[serde(default)]
    pub availability_zone: Option<String>,
    #[serde(default)]
    pub image_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FleetInstance {
    #[serde(default)]
    pub instance_ids: Items<String>,
    #[serde(default)]
    pub instance_type: Option<String>,
    #[serde(default)]
    pub launch_template_and_overrides: Option<LaunchTemplateAndOverrides>,
    #[serde(default)]
    pub lifecycle: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DescribeInstancesResponse {
    #[serde(default)]
    pub reservation_set: Items<Reservation>,
    #[serde(default)]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    #[serde(default)]
    pub instances_set: Items<Ec2Instance>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Ec2Instance {
    pub instance_id: String,
    #[serde(default)]
    pub image_id: Option<String>,
    #[serde(default)]
    pub instance_state: InstanceState,
    #[serde(default)]
    pub instance_type: String,
    #[serde(default)]
    pub placement: Placement,
    /// `spot` (absent for on-demand).
    #[serde(default)]
    pub instance_lifecycle: Option<String>,
    #[serde(default)]
    pub tag_set: Items<Tag>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
pub struct InstanceState {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    #[serde(default)]
    pub availability_zone: String,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TerminateInstancesResponse {
    #[serde(default)]
    pub instances_set: Items<InstanceStateChange>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStateChange {
    #[serde(default)]
    pub instance_id: String,
    #[serde(default)]
    pub current_state: InstanceState,
    #[serde(default)]
    pub previous_state: InstanceState,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DescribeSubnetsResponse {
    #[serde(default)]
    pub subnet_set: Items<Subnet>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Subnet {
    pub subnet_id: String,
    #[serde(default)]
    pub availability_zone: String,
    #[serde(default)]
    pub availability_zone_id: Option<String>,
    #[serde(default)]
    pub available_ip_address_count: Option<i64>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DescribeSecurityGroupsResponse {
    #[serde(default)]
    pub security_group_info: Items<SecurityGroup>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroup {
    pub group_id: String,
    #[serde(default)]
    pub group_name: String,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DescribeImagesResponse {
    #[serde(default)]
    pub images_set: Items<Image>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    pub image_id: String,
    #[serde(default)]
    pub name: String,
    /// `x86_64` or `arm64`.
    #[serde(default)]
    pub architecture: String,
    /// ISO 8601; compares correctly as a string.
    #[serde(default)]
    pub creation_date: String,
    #[serde(default)]
    pub image_state: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LaunchTemplate {
    #[serde(default)]
    pub launch_template_id: String,
    #[serde(default)]
    pub launch_template_name: String,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CreateLaunchTemplateResponse {
    pub launch_template: LaunchTemplate,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLaunchTemplatesResponse {
    #[serde(default)]
    pub launch_templates: Items<LaunchTemplate>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_unreserved_only() {
        assert_eq!(percent_encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(
            percent_encode("tag:kubernetes.io/cluster/x"),
            "tag%3Akubernetes.io%2Fcluster%2Fx"
        );
        assert_eq!(percent_encode("$Latest a"), "%24Latest%20a");
    }

    #[test]
    fn error_document_is_parsed() {
        let e = parse_error(
            "TerminateInstances",
            400,
            "<?xml version=\"1.0\"?><Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code><Message>The instance ID 'i-1' does not exist</Message></Error></Errors><RequestID>r</RequestID></Response>",
        );
        assert_eq!(e.code(), Some("InvalidInstanceID.NotFound"));
        assert!(!e.retryable());
        let t = parse_error(
            "CreateFleet",
            503,
            "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>slow down</Message></Error></Errors></Response>",
        );
        assert!(t.retryable());
        let junk = parse_error("CreateFleet", 502, "<html>bad gateway</html>");
        assert_eq!(junk.code(), Some("InternalError"));
        assert!(junk.retryable());
    }

    #[test]
    fn create_fleet_answer_is_parsed() {
        let xml = r#"<CreateFleetResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>r-1</requestId><fleetId>fleet-1</fleetId>
  <errorSet><item><errorCode>InsufficientInstanceCapacity</errorCode><errorMessage>no</errorMessage>
    <launchTemplateAndOverrides><launchTemplateSpecification><launchTemplateId>lt-1</launchTemplateId><version>1</version></launchTemplateSpecification>
    <overrides><instanceType>m5.large</instanceType><subnetId>subnet-a</subnetId><availabilityZone>us-east-1a</availabilityZone></overrides></launchTemplateAndOverrides>
    <lifecycle>spot</lifecycle></item></errorSet>
  <fleetInstanceSet><item><instanceIds><item>i-0abc</item></instanceIds><instanceType>m5.xlarge</instanceType>
    <launchTemplateAndOverrides><overrides><instanceType>m5.xlarge</instanceType><subnetId>subnet-b</subnetId><availabilityZone>us-east-1b</availabilityZone></overrides></launchTemplateAndOverrides>
    <lifecycle>spot</lifecycle></item></fleetInstanceSet>
</CreateFleetResponse>"#;
        let r: CreateFleetResponse = parse_xml("CreateFleet", xml).unwrap();
        assert_eq!(r.error_set.item.len(), 1);
        assert_eq!(
            r.error_set.item[0].error_code,
            "InsufficientInstanceCapacity"
        );
        let o = r.error_set.item[0]
            .launch_template_and_overrides
            .as_ref()
            .unwrap()
            .overrides
            .as_ref()
            .unwrap();
        assert_eq!(o.availability_zone.as_deref(), Some("us-east-1a"));
        assert_eq!(
            r.fleet_instance_set.item[0].instance_ids.item,
            vec!["i-0abc"]
        );
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_retried_then_reported() {
        // Bind and drop a listener: nothing listens on that port any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let clock = std::sync::Arc::new(clock::ManualClock::new(clock::Timestamp::from_secs(0)));
        let c = Ec2Client::with_static_keys(
            Ec2Config {
                endpoint: format!("http://127.0.0.1:{port}"),
                region: "us-east-1".into(),
                retry: RetryPolicy {
                    max_attempts: 2,
                    base: Duration::from_millis(1),
                    max_backoff: Duration::from_millis(1),
                },
            },
            "k",
            "s",
            clock,
        )
        .unwrap();
        let e = c
            .call("DescribeInstances", &Params::new())
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Ec2Error::Transport { action, .. } if action == "DescribeInstances"),
            "{e:?}"
        );
        let bad = Ec2Client::with_static_keys(
            Ec2Config {
                endpoint: "not a url".into(),
                region: "us-east-1".into(),
                retry: RetryPolicy::default(),
            },
            "k",
            "s",
            std::sync::Arc::new(clock::ManualClock::new(clock::Timestamp::from_secs(0))),
        )
        .unwrap();
        let e = bad
            .call("DescribeInstances", &Params::new())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("is not a URL"), "{e}");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
        };
        assert_eq!(p.backoff(0), Duration::from_millis(100));
        assert_eq!(p.backoff(1), Duration::from_millis(200));
        assert_eq!(p.backoff(2), Duration::from_millis(350));
        assert_eq!(p.backoff(40), Duration::from_millis(350));
    }
}
