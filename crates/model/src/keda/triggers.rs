//! Trigger metadata: parsing and validating `spec.triggers[].metadata` for the trigger types
//! kedge implements, into typed configs the scalers consume.
//!
//! KEDA reads some parameters either from the trigger's metadata or from the
//! TriggerAuthentication it references ("auth params"). When an `authenticationRef` is set
//! but the auth params are not known (as in `kedge check`), required auth-capable parameters
//! are assumed to come from it.
//!
//! Metadata keys that are neither documented for the trigger type nor supported are
//! reported by name: a misspelt key would otherwise silently fall back to a default.

use std::collections::BTreeMap;

use super::{MetricType, Trigger, parse_go_bool};
use crate::manifest::FieldError;

pub mod more;

pub use more::{
    AwsDynamoDb, External, Kafka, KafkaSasl, KubernetesWorkload, Mysql, NatsJetStream,
    OffsetResetPolicy, PodResource, RabbitMode, RabbitMq, RabbitOperation, RabbitProtocol,
    Resource,
};

/// Trigger types kedge implements.
pub const SUPPORTED_TYPES: [&str; 17] = [
    "aws-sqs-queue",
    "aws-dynamodb",
    "cron",
    "cpu",
    "memory",
    "external",
    "external-push",
    "kafka",
    "kubernetes-workload",
    "metrics-api",
    "mysql",
    "nats-jetstream",
    "prometheus",
    "rabbitmq",
    "redis",
    "redis-streams",
    "postgresql",
];

/// A value given literally or by the name of an environment variable (`...FromEnv`), which
/// KEDA resolves from the scale target's container and kedge from the environment the
/// substrate provides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Literal(String),
    FromEnv(String),
    /// Comes from the referenced TriggerAuthentication (not known yet when checking files).
    FromAuth,
}

impl Source {
    /// Resolve against an environment.
    pub fn resolve(&self, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
        match self {
            Source::Literal(s) => Some(s.clone()),
            Source::FromEnv(name) => env(name),
            Source::FromAuth => None,
        }
    }
}

/// Who provides AWS credentials for `aws-sqs-queue` (deprecated upstream in favour of
/// TriggerAuthentication, still accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdentityOwner {
    #[default]
    Pod,
    Operator,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AwsSqsQueue {
    pub queue_url: Source,
    /// Target messages per replica (default 5).
    pub queue_length: i64,
    /// Activation threshold (default 0).
    pub activation_queue_length: i64,
    pub aws_region: Option<String>,
    pub aws_endpoint: Option<String>,
    pub identity_owner: IdentityOwner,
    /// Count in-flight (received, not yet deleted) messages (default true).
    pub scale_on_in_flight: bool,
    /// Count delayed messages (default false).
    pub scale_on_delayed: bool,
    pub aws_role_arn: Option<String>,
    pub access_key_id_from_env: Option<String>,
    pub secret_access_key_from_env: Option<String>,
    pub session_token_from_env: Option<String>,
}

impl AwsSqsQueue {
    /// The queue length KEDA scales on from the three `ApproximateNumberOf*` attributes.
    pub fn queue_length_from(&self, visible: i64, not_visible: i64, delayed: i64) -> i64 {
        let mut n = visible;
        if self.scale_on_in_flight {
            n += not_visible;
        }
        if self.scale_on_delayed {
            n += delayed;
        }
        n
    }

    /// Queue name: the last path segment of a queue URL, or the value itself.
    pub fn queue_name(url: &str) -> &str {
        url.trim_end_matches('/').rsplit('/').next().unwrap_or(url)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cron {
    /// IANA time zone name, e.g. `Europe/Berlin`.
    pub timezone: String,
    pub start: String,
    pub end: String,
    pub desired_replicas: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsApiFormat {
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    ApiKey,
    Basic,
    Bearer,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricsApi {
    pub url: String,
    pub format: MetricsApiFormat,
    /// gjson-style path into the response, e.g. `components.worker.tasks`.
    pub value_location: String,
    pub target_value: f64,
    pub activation_target_value: f64,
    pub auth_mode: Option<AuthMode>,
    /// apiKey mode: `header` (default) or `query`.
    pub api_key_method: String,
    /// apiKey mode: header or query parameter name (default `X-API-KEY` / `api_key`).
    pub key_param_name: Option<String>,
    pub unsafe_ssl: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Prometheus {
    pub server_address: String,
    pub query: String,
    pub threshold: f64,
    pub activation_threshold: f64,
    pub namespace: Option<String>,
    /// `key=value,key2=value2`
    pub custom_headers: Vec<(String, String)>,
    pub query_parameters: Vec<(String, String)>,
    /// Empty result counts as 0 instead of an error (default true).
    pub ignore_null_values: bool,
    pub unsafe_ssl: bool,
    pub auth_modes: Vec<AuthMode>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RedisConnection {
    pub address: Option<Source>,
    pub host: Option<Source>,
    pub port: Option<Source>,
    pub username: Option<Source>,
    /// `passwordFromEnv`, or `password` from auth params.
    pub password: Option<Source>,
    pub database_index: i64,
    pub enable_tls: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RedisList {
    pub connection: RedisConnection,
    pub list_name: String,
    pub list_length: i64,
    pub activation_list_length: i64,
}

/// What a `redis-streams` trigger measures, chosen by which metadata is set (as KEDA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamScaleFactor {
    /// No consumer group: `XLEN`, target `streamLength`.
    StreamLength,
    /// Consumer group: pending entries (`XPENDING`), target `pendingEntriesCount`.
    PendingEntries,
    /// Consumer group and `lagCount`: the group's lag (`XINFO GROUPS`), target `lagCount`.
    Lag,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RedisStreams {
    pub connection: RedisConnection,
    pub stream: String,
    pub consumer_group: Option<String>,
    pub factor: StreamScaleFactor,
    pub target: i64,
    pub activation_lag_count: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Postgresql {
    /// A full connection string (`connectionFromEnv` or the `connection` auth param).
    pub connection: Option<Source>,
    pub host: Option<String>,
    pub port: Option<String>,
    pub user_name: Option<String>,
    pub db_name: Option<String>,
    pub sslmode: Option<String>,
    pub password: Option<Source>,
    pub query: String,
    pub target_query_value: f64,
    pub activation_target_query_value: f64,
}

/// A trigger's validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum TriggerConfig {
    AwsSqsQueue(AwsSqsQueue),
    Cron(Cron),
    MetricsApi(MetricsApi),
    Prometheus(Prometheus),
    Redis(RedisList),
    RedisStreams(RedisStreams),
    Postgresql(Postgresql),
    Kafka(Kafka),
    RabbitMq(RabbitMq),
    NatsJetStream(NatsJetStream),
    Mysql(Mysql),
    AwsDynamoDb(AwsDynamoDb),
    KubernetesWorkload(KubernetesWorkload),
    Resource(Resource),
    External(External),
}

impl TriggerConfig {
    /// Parse a trigger without its auth params (auth-capable required keys are assumed to
    /// come from the referenced TriggerAuthentication).
    pub fn parse(t: &Trigger) -> Result<TriggerConfig, Vec<FieldError>> {
        Self::parse_with_auth(t, None)
    }

    /// Parse with the resolved auth params of the referenced TriggerAuthentication.
    pub fn parse_with_auth(
        t: &Trigger,
        auth: Option<&BTreeMap<String, String>>,
    ) -> Result<TriggerConfig, Vec<FieldError>> {
        let mut m = Meta {
            md: &t.metadata,
            auth,
            has_auth_ref: t.authentication_ref.is_some(),
            errors: Vec::new(),
            known: Vec::new(),
            accept_all: false,
        };
        let cfg = match t.trigger_type.as_str() {
            "aws-sqs-queue" => TriggerConfig::AwsSqsQueue(parse_sqs(&mut m)),
            "cron" => TriggerConfig::Cron(parse_cron(&mut m, t)),
            "metrics-api" => TriggerConfig::MetricsApi(parse_metrics_api(&mut m)),
            "prometheus" => TriggerConfig::Prometheus(parse_prometheus(&mut m)),
            "redis" => TriggerConfig::Redis(parse_redis(&mut m)),
            "redis-streams" => TriggerConfig::RedisStreams(parse_redis_streams(&mut m)),
            "postgresql" => TriggerConfig::Postgresql(parse_postgresql(&mut m)),
            "kafka" => TriggerConfig::Kafka(more::parse_kafka(&mut m)),
            "rabbitmq" => TriggerConfig::RabbitMq(more::parse_rabbitmq(&mut m)),
            "nats-jetstream" => TriggerConfig::NatsJetStream(more::parse_nats_jetstream(&mut m)),
            "mysql" => TriggerConfig::Mysql(more::parse_mysql(&mut m)),
            "aws-dynamodb" => TriggerConfig::AwsDynamoDb(more::parse_aws_dynamodb(&mut m)),
            "kubernetes-workload" => {
                TriggerConfig::KubernetesWorkload(more::parse_kubernetes_workload(&mut m))
            }
            "cpu" => TriggerConfig::Resource(more::parse_resource(&mut m, t, PodResource::Cpu)),
            "memory" => {
                TriggerConfig::Resource(more::parse_resource(&mut m, t, PodResource::Memory))
            }
            "external" => TriggerConfig::External(more::parse_external(&mut m, false)),
            "external-push" => TriggerConfig::External(more::parse_external(&mut m, true)),
            other => {
                return Err(vec![FieldError::new(
                    "type",
                    format!(
                        "trigger type {other:?} is not supported by kedge; supported: {}",
                        SUPPORTED_TYPES.join(", ")
                    ),
                )]);
            }
        };
        m.check_unknown(&t.trigger_type);
        if m.errors.is_empty() {
            Ok(cfg)
        } else {
            Err(m.errors)
        }
    }

    /// Target value per replica (AverageValue) or in total (Value).
    pub fn target(&self) -> f64 {
        match self {
            TriggerConfig::AwsSqsQueue(c) => c.queue_length as f64,
            // KEDA's cron scaler reports desiredReplicas against a target of 1.
            TriggerConfig::Cron(_) => 1.0,
            TriggerConfig::MetricsApi(c) => c.target_value,
            TriggerConfig::Prometheus(c) => c.threshold,
            TriggerConfig::Redis(c) => c.list_length as f64,
            TriggerConfig::RedisStreams(c) => c.target as f64,
            TriggerConfig::Postgresql(c) => c.target_query_value,
            TriggerConfig::Kafka(c) => c.lag_threshold as f64,
            TriggerConfig::RabbitMq(c) => c.value,
            TriggerConfig::NatsJetStream(c) => c.lag_threshold as f64,
            TriggerConfig::Mysql(c) => c.query_value,
            TriggerConfig::AwsDynamoDb(c) => c.target_value as f64,
            TriggerConfig::KubernetesWorkload(c) => c.value,
            TriggerConfig::Resource(c) => c.target,
            // The external scaler names its target at run time (GetMetricSpec); kedge's
            // external scaler reports value / target, so the target here is 1.
            TriggerConfig::External(_) => 1.0,
        }
    }

    /// The metric counts messages waiting for (or held by) the consumers — a backlog whose
    /// per-replica target a latency objective can set: SQS messages, list and stream lengths,
    /// pending entries and lags, a RabbitMQ queue's length. Rates, queries and resource
    /// metrics are not backlogs.
    pub fn is_backlog(&self) -> bool {
        match self {
            TriggerConfig::AwsSqsQueue(_)
            | TriggerConfig::Redis(_)
            | TriggerConfig::RedisStreams(_)
            | TriggerConfig::Kafka(_)
            | TriggerConfig::NatsJetStream(_) => true,
            TriggerConfig::RabbitMq(c) => c.mode == more::RabbitMode::QueueLength,
            _ => false,
        }
    }

    /// The trigger is active when its metric is strictly greater than this.
    pub fn activation_target(&self) -> f64 {
        match self {
            TriggerConfig::AwsSqsQueue(c) => c.activation_queue_length as f64,
            TriggerConfig::Cron(_) => 0.0,
            TriggerConfig::MetricsApi(c) => c.activation_target_value,
            TriggerConfig::Prometheus(c) => c.activation_threshold,
            TriggerConfig::Redis(c) => c.activation_list_length as f64,
            TriggerConfig::RedisStreams(c) => match c.factor {
                StreamScaleFactor::Lag => c.activation_lag_count as f64,
                _ => 0.0,
            },
            TriggerConfig::Postgresql(c) => c.activation_target_query_value,
            TriggerConfig::Kafka(c) => c.activation_lag_threshold as f64,
            TriggerConfig::RabbitMq(c) => c.activation_value,
            TriggerConfig::NatsJetStream(c) => c.activation_lag_threshold as f64,
            TriggerConfig::Mysql(c) => c.activation_query_value,
            TriggerConfig::AwsDynamoDb(c) => c.activation_target_value as f64,
            TriggerConfig::KubernetesWorkload(c) => c.activation_value,
            // cpu/memory are always active (KEDA); external decides with IsActive.
            TriggerConfig::Resource(_) | TriggerConfig::External(_) => 0.0,
        }
    }

    /// Metric types this trigger may use: cpu/memory take Utilization or AverageValue, the
    /// others AverageValue or Value.
    pub fn supports_metric_type(&self, mt: MetricType) -> bool {
        match self {
            TriggerConfig::Resource(_) => mt != MetricType::Value,
            _ => mt != MetricType::Utilization,
        }
    }
}

/// Metadata reader that records which keys it looked at and every problem it found.
struct Meta<'a> {
    md: &'a BTreeMap<String, String>,
    auth: Option<&'a BTreeMap<String, String>>,
    has_auth_ref: bool,
    errors: Vec<FieldError>,
    known: Vec<&'static str>,
    /// Every key is accepted (the `external` scalers pass metadata through).
    accept_all: bool,
}

impl Meta<'_> {
    fn err(&mut self, key: &str, msg: impl Into<String>) {
        self.errors
            .push(FieldError::new(format!("metadata.{key}"), msg));
    }

    /// Mark keys as documented-and-accepted without reading them (e.g. ignored by design).
    fn accept(&mut self, keys: &[&'static str]) {
        self.known.extend_from_slice(keys);
    }

    fn str(&mut self, key: &'static str) -> Option<String> {
        self.known.push(key);
        self.md
            .get(key)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// From metadata, else from auth params.
    fn str_or_auth(&mut self, key: &'static str) -> Option<String> {
        self.str(key).or_else(|| {
            self.auth
                .and_then(|a| a.get(key))
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
    }

    fn required(&mut self, key: &'static str, what: &str) -> String {
        match self.str(key) {
            Some(v) => v,
            None => {
                self.err(key, format!("is required: {what}"));
                String::new()
            }
        }
    }

    fn int(&mut self, key: &'static str, default: i64) -> i64 {
        match self.str(key) {
            None => default,
            Some(v) => match v.parse::<i64>() {
                Ok(n) => n,
                Err(_) => {
                    // KEDA accepts "2.0"-style integers written as floats? It does not:
                    // strconv.ParseInt rejects them, and so do we.
                    self.err(key, format!("expected an integer, got {v:?}"));
                    default
                }
            },
        }
    }

    fn positive_int(&mut self, key: &'static str, default: i64) -> i64 {
        let v = self.int(key, default);
        if v <= 0
            && self.md.contains_key(key)
            && self.errors.last().map(|e| &e.path) != Some(&format!("metadata.{key}"))
        {
            self.err(key, format!("must be greater than 0, got {v}"));
        }
        v
    }

    fn non_negative_int(&mut self, key: &'static str, default: i64) -> i64 {
        let v = self.int(key, default);
        if v < 0 {
            self.err(key, format!("must be 0 or more, got {v}"));
        }
        v
    }

    fn float(&mut self, key: &'static str, default: Option<f64>, what: &str) -> f64 {
        match self.str(key) {
            None => match default {
                Some(d) => d,
                None => {
                    self.err(key, format!("is required: {what}"));
                    0.0
                }
            },
            Some(v) => match v.parse::<f64>() {
                Ok(n) if n.is_finite() => n,
                _ => {
                    self.err(key, format!("expected a number, got {v:?}"));
                    default.unwrap_or(0.0)
                }
            },
        }
    }

    fn bool(&mut self, key: &'static str, default: bool) -> bool {
        match self.str(key) {
            None => default,
            Some(v) => match parse_go_bool(&v) {
                Some(b) => b,
                None => {
                    self.err(key, format!("expected \"true\" or \"false\", got {v:?}"));
                    default
                }
            },
        }
    }

    fn literal_or_env(&mut self, key: &'static str, env_key: &'static str) -> Option<Source> {
        let lit = self.str_or_auth(key);
        let env = self.str(env_key);
        match (lit, env) {
            (Some(v), _) => Some(Source::Literal(v)),
            (None, Some(e)) => Some(Source::FromEnv(e)),
            (None, None) => None,
        }
    }

    fn check_unknown(&mut self, trigger_type: &str) {
        if self.accept_all {
            return;
        }
        let unknown: Vec<String> = self
            .md
            .keys()
            .filter(|k| !self.known.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in unknown {
            let mut known = self.known.clone();
            known.sort_unstable();
            known.dedup();
            self.err(
                &k,
                format!(
                    "unknown metadata key for trigger type {trigger_type} (kedge supports: {}); remove it or check its spelling",
                    known.join(", ")
                ),
            );
        }
    }
}

fn parse_sqs(m: &mut Meta) -> AwsSqsQueue {
    let queue_url = match m.literal_or_env("queueURL", "queueURLFromEnv") {
        Some(s) => s,
        None => {
            m.err("queueURL", "is required: set queueURL (or queueURLFromEnv)");
            Source::Literal(String::new())
        }
    };
    // As KEDA: a value that is a URL must have the path /<account>/<queue name>; anything
    // else is taken as a bare queue name.
    if let Source::Literal(u) = &queue_url
        && let Some((_, rest)) = u.split_once("://")
    {
        let path = rest.split_once('/').map(|(_, p)| p).unwrap_or("");
        let path = path.split(['?', '#']).next().unwrap_or("");
        let parts: Vec<&str> = path.split('/').collect();
        if parts.len() != 2 || parts[1].is_empty() {
            let u = u.clone();
            m.err(
                "queueURL",
                format!("cannot get the queue name from {u:?}: expected https://sqs.<region>.amazonaws.com/<account>/<queue>"),
            );
        }
    }
    let queue_length = m.positive_int("queueLength", 5);
    let activation_queue_length = m.non_negative_int("activationQueueLength", 0);
    let aws_region = m.str_or_auth("awsRegion");
    let aws_endpoint = m.str("awsEndpoint");
    if let Some(e) = &aws_endpoint
        && !(e.starts_with("http://") || e.starts_with("https://"))
    {
        let e = e.clone();
        m.err(
            "awsEndpoint",
            format!("expected a URL such as http://127.0.0.1:4566, got {e:?}"),
        );
    }
    let identity_owner = match m.str("identityOwner").as_deref() {
        None | Some("pod") => IdentityOwner::Pod,
        Some("operator") => IdentityOwner::Operator,
        Some(other) => {
            let other = other.to_string();
            m.err(
                "identityOwner",
                format!("expected pod or operator, got {other:?}"),
            );
            IdentityOwner::Pod
        }
    };
    let scale_on_in_flight = m.bool("scaleOnInFlight", true);
    let scale_on_delayed = m.bool("scaleOnDelayed", false);
    let aws_role_arn = m.str_or_auth("awsRoleArn");
    let access_key_id_from_env = m.str("awsAccessKeyIDFromEnv");
    let secret_access_key_from_env = m.str("awsSecretAccessKeyFromEnv");
    let session_token_from_env = m.str("awsSessionTokenFromEnv");
    if aws_region.is_none() && aws_endpoint.is_none() {
        // Without either there is nowhere to send the request. The region may also be
        // derived from a full queue URL (sqs.<region>.amazonaws.com).
        let derivable = matches!(&queue_url, Source::Literal(u) if region_from_url(u).is_some());
        if !derivable && (!m.has_auth_ref || m.auth.is_some()) {
            m.err(
                "awsRegion",
                "is required: set awsRegion (e.g. eu-west-1) or awsEndpoint",
            );
        }
    }
    AwsSqsQueue {
        queue_url,
        queue_length,
        activation_queue_length,
        aws_region,
        aws_endpoint,
        identity_owner,
        scale_on_in_flight,
        scale_on_delayed,
        aws_role_arn,
        access_key_id_from_env,
        secret_access_key_from_env,
        session_token_from_env,
    }
}

/// `https://sqs.eu-west-1.amazonaws.com/123/q` → `eu-west-1`.
pub fn region_from_url(url: &str) -> Option<String> {
    let host = url.split("://").nth(1)?.split('/').next()?;
    let mut parts = host.split('.');
    if parts.next()? != "sqs" {
        return None;
    }
    let region = parts.next()?;
    host.ends_with(".amazonaws.com").then(|| region.to_string())
}

fn parse_cron(m: &mut Meta, t: &Trigger) -> Cron {
    let timezone = m.required("timezone", "an IANA time zone such as Europe/Berlin or UTC");
    let start = m.required("start", "a cron expression such as \"0 8 * * *\"");
    let end = m.required("end", "a cron expression such as \"0 18 * * *\"");
    let desired_replicas = match m.str("desiredReplicas") {
        None => {
            m.err(
                "desiredReplicas",
                "is required: the replica count inside the window",
            );
            0
        }
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => n,
            _ => {
                m.err(
                    "desiredReplicas",
                    format!("expected a non-negative integer, got {v:?}"),
                );
                0
            }
        },
    };
    if !timezone.is_empty() && !plausible_timezone(&timezone) {
        m.err(
            "timezone",
            format!("{timezone:?} is not an IANA time zone name (e.g. Europe/Berlin, UTC)"),
        );
    }
    for (key, expr) in [("start", &start), ("end", &end)] {
        if !expr.is_empty()
            && let Err(e) = check_cron(expr)
        {
            m.err(key, format!("invalid cron expression {expr:?}: {e}"));
        }
    }
    if !start.is_empty() && start == end {
        m.err("end", "start and end should not be the same");
    }
    if t.metric_type == Some(MetricType::Value) {
        // KEDA's cron scaler reports replicas; with Value the HPA would divide by the
        // ready pod count. Allowed upstream, kept as is.
    }
    Cron {
        timezone,
        start,
        end,
        desired_replicas,
    }
}

fn plausible_timezone(tz: &str) -> bool {
    tz.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/_-+".contains(c))
        && tz.chars().next().is_some_and(|c| c.is_ascii_uppercase())
}

/// Syntax check of a standard 5-field cron expression (robfig/cron's standard parser, which
/// KEDA uses), or a `@descriptor`. The scalers crate parses it for real.
pub fn check_cron(expr: &str) -> Result<(), String> {
    let expr = expr.trim();
    if let Some(d) = expr.strip_prefix('@') {
        return match d {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            _ => Err(format!("unknown descriptor @{d}")),
        };
    }
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected 5 fields (minute hour day-of-month month day-of-week), got {}",
            fields.len()
        ));
    }
    const MONTHS: [&str; 12] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    let specs: [(&str, u32, u32, &[&str]); 5] = [
        ("minute", 0, 59, &[]),
        ("hour", 0, 23, &[]),
        ("day-of-month", 1, 31, &[]),
        ("month", 1, 12, &MONTHS),
        ("day-of-week", 0, 6, &DAYS),
    ];
    for (field, (name, lo, hi, names)) in fields.iter().zip(specs) {
        for part in field.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => (r, Some(s)),
                None => (part, None),
            };
            if let Some(s) = step
                && s.parse::<u32>().map(|v| v == 0).unwrap_or(true)
            {
                return Err(format!("{name}: bad step {s:?}"));
            }
            if range == "*" || range == "?" {
                continue;
            }
            let value = |s: &str| -> Result<u32, String> {
                if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
                    return Ok(lo + i as u32);
                }
                let v: u32 = s
                    .parse()
                    .map_err(|_| format!("{name}: {s:?} is not a number"))?;
                if v < lo || v > hi {
                    return Err(format!("{name}: {v} is outside {lo}-{hi}"));
                }
                Ok(v)
            };
            match range.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (value(a)?, value(b)?);
                    if a > b {
                        return Err(format!("{name}: range {a}-{b} is backwards"));
                    }
                }
                None => {
                    value(range)?;
                }
            }
        }
    }
    Ok(())
}

fn parse_auth_modes(m: &mut Meta, key: &'static str) -> Vec<AuthMode> {
    let Some(v) = m.str_or_auth(key) else {
        return Vec::new();
    };
    let mut modes = Vec::new();
    for part in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match part {
            "apiKey" => modes.push(AuthMode::ApiKey),
            "basic" => modes.push(AuthMode::Basic),
            "bearer" => modes.push(AuthMode::Bearer),
            other => {
                m.err(
                    key,
                    format!("auth mode {other:?} is not supported by kedge; supported: apiKey, basic, bearer"),
                );
            }
        }
    }
    modes
}

fn parse_metrics_api(m: &mut Meta) -> MetricsApi {
    let url = m.required("url", "the HTTP(S) URL that returns the metric");
    let format = match m.str("format").as_deref() {
        None | Some("json") => MetricsApiFormat::Json,
        Some(other) => {
            let other = other.to_string();
            m.err(
                "format",
                format!("format {other:?} is not supported by kedge; supported: json"),
            );
            MetricsApiFormat::Json
        }
    };
    let value_location = m.required(
        "valueLocation",
        "a GJSON path to the value, e.g. components.worker.tasks",
    );
    let target_value = m.float("targetValue", None, "the target value per replica");
    let activation_target_value = m.float("activationTargetValue", Some(0.0), "");
    let auth_mode = parse_auth_modes(m, "authMode").into_iter().next();
    let api_key_method = m.str_or_auth("method").unwrap_or_else(|| "header".into());
    if api_key_method != "header" && api_key_method != "query" {
        let v = api_key_method.clone();
        m.err("method", format!("expected header or query, got {v:?}"));
    }
    let key_param_name = m.str_or_auth("keyParamName");
    let unsafe_ssl = m.bool("unsafeSsl", false);
    MetricsApi {
        url,
        format,
        value_location,
        target_value,
        activation_target_value,
        auth_mode,
        api_key_method,
        key_param_name,
        unsafe_ssl,
    }
}

fn parse_pairs(m: &mut Meta, key: &'static str) -> Vec<(String, String)> {
    let Some(v) = m.str(key) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for part in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match part.split_once('=') {
            Some((k, val)) if !k.trim().is_empty() => {
                out.push((k.trim().to_string(), val.trim().to_string()))
            }
            _ => m.err(
                key,
                format!("expected key=value pairs separated by commas, got {part:?}"),
            ),
        }
    }
    out
}

fn parse_prometheus(m: &mut Meta) -> Prometheus {
    let server_address = m.required(
        "serverAddress",
        "the Prometheus URL, e.g. http://prometheus:9090",
    );
    let query = m.required("query", "a PromQL query returning one value");
    let threshold = m.float("threshold", None, "the target value per replica");
    let activation_threshold = m.float("activationThreshold", Some(0.0), "");
    let namespace = m.str("namespace");
    let custom_headers = parse_pairs(m, "customHeaders");
    let query_parameters = parse_pairs(m, "queryParameters");
    let ignore_null_values = m.bool("ignoreNullValues", true);
    let unsafe_ssl = m.bool("unsafeSsl", false);
    let auth_modes = parse_auth_modes(m, "authModes");
    Prometheus {
        server_address,
        query,
        threshold,
        activation_threshold,
        namespace,
        custom_headers,
        query_parameters,
        ignore_null_values,
        unsafe_ssl,
        auth_modes,
    }
}

fn parse_redis_connection(m: &mut Meta) -> RedisConnection {
    let address = m.literal_or_env("address", "addressFromEnv");
    let host = m.literal_or_env("host", "hostFromEnv");
    let port = m.literal_or_env("port", "portFromEnv");
    let username = m.literal_or_env("username", "usernameFromEnv");
    let password = match m.auth.and_then(|a| a.get("password")) {
        Some(p) => Some(Source::Literal(p.clone())),
        None => m.str("passwordFromEnv").map(Source::FromEnv),
    };
    if address.is_none() && host.is_none() && !(m.has_auth_ref && m.auth.is_none()) {
        m.err(
            "address",
            "is required: set address (host:port), addressFromEnv, or host and port",
        );
    }
    if host.is_some() && port.is_none() && address.is_none() {
        m.err("port", "is required when host is set");
    }
    let database_index = m.non_negative_int("databaseIndex", 0);
    let enable_tls = m.bool("enableTLS", false);
    m.accept(&["unsafeSsl"]);
    RedisConnection {
        address,
        host,
        port,
        username,
        password,
        database_index,
        enable_tls,
    }
}

fn parse_redis(m: &mut Meta) -> RedisList {
    let connection = parse_redis_connection(m);
    let list_name = m.required("listName", "the Redis list to measure");
    let list_length = m.positive_int("listLength", 5);
    let activation_list_length = m.non_negative_int("activationListLength", 0);
    RedisList {
        connection,
        list_name,
        list_length,
        activation_list_length,
    }
}

fn parse_redis_streams(m: &mut Meta) -> RedisStreams {
    let connection = parse_redis_connection(m);
    let stream = m.required("stream", "the Redis stream to measure");
    let consumer_group = m.str("consumerGroup");
    let has_lag = m.md.contains_key("lagCount");
    let pending = m.positive_int("pendingEntriesCount", 5);
    let length = m.positive_int("streamLength", 5);
    let lag = m.positive_int("lagCount", 5);
    let activation_lag_count = m.non_negative_int("activationLagCount", 0);
    let (factor, target) = match (&consumer_group, has_lag) {
        (None, _) => (StreamScaleFactor::StreamLength, length),
        (Some(_), true) => (StreamScaleFactor::Lag, lag),
        (Some(_), false) => (StreamScaleFactor::PendingEntries, pending),
    };
    RedisStreams {
        connection,
        stream,
        consumer_group,
        factor,
        target,
        activation_lag_count,
    }
}

fn parse_postgresql(m: &mut Meta) -> Postgresql {
    let connection = match m.auth.and_then(|a| a.get("connection")) {
        Some(c) => Some(Source::Literal(c.clone())),
        None => m.str("connectionFromEnv").map(Source::FromEnv),
    };
    let host = m.str_or_auth("host");
    let port = m.str_or_auth("port");
    let user_name = m.str_or_auth("userName");
    let db_name = m.str_or_auth("dbName");
    let sslmode = m.str_or_auth("sslmode");
    let password = match m.auth.and_then(|a| a.get("password")) {
        Some(p) => Some(Source::Literal(p.clone())),
        None => m.str("passwordFromEnv").map(Source::FromEnv),
    };
    if connection.is_none() && host.is_none() && !(m.has_auth_ref && m.auth.is_none()) {
        m.err(
            "host",
            "is required: set connectionFromEnv, a connection auth param, or host/port/userName/dbName",
        );
    }
    if let Some(s) = &sslmode
        && ![
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
        ]
        .contains(&s.as_str())
    {
        let s = s.clone();
        m.err(
            "sslmode",
            format!(
                "expected disable, allow, prefer, require, verify-ca or verify-full, got {s:?}"
            ),
        );
    }
    let query = m.required("query", "a SQL query returning one number");
    let target_query_value = m.float("targetQueryValue", None, "the target value per replica");
    let activation_target_query_value = m.float("activationTargetQueryValue", Some(0.0), "");
    Postgresql {
        connection,
        host,
        port,
        user_name,
        db_name,
        sslmode,
        password,
        query,
        target_query_value,
        activation_target_query_value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trig(ty: &str, md: &[(&str, &str)]) -> Trigger {
        Trigger {
            trigger_type: ty.into(),
            name: None,
            metadata: md
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            authentication_ref: None,
            metric_type: None,
            use_cached_metrics: false,
        }
    }

    #[test]
    fn sqs_defaults_match_keda() {
        let t = trig(
            "aws-sqs-queue",
            &[
                ("queueURL", "https://sqs.eu-west-1.amazonaws.com/1/q"),
                ("awsRegion", "eu-west-1"),
            ],
        );
        let TriggerConfig::AwsSqsQueue(c) = TriggerConfig::parse(&t).unwrap() else {
            panic!("wrong type")
        };
        assert_eq!(c.queue_length, 5);
        assert_eq!(c.activation_queue_length, 0);
        assert!(c.scale_on_in_flight);
        assert!(!c.scale_on_delayed);
        assert_eq!(c.queue_length_from(10, 3, 7), 13);
    }

    #[test]
    fn bad_integer_names_key_and_value() {
        let t = trig(
            "aws-sqs-queue",
            &[
                ("queueURL", "q"),
                ("awsRegion", "eu-west-1"),
                ("queueLength", "two"),
            ],
        );
        let errs = TriggerConfig::parse(&t).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].path, "metadata.queueLength");
        assert_eq!(errs[0].message, "expected an integer, got \"two\"");
    }

    #[test]
    fn unknown_key_is_reported() {
        let t = trig(
            "redis",
            &[("address", "a:1"), ("listName", "l"), ("listLenght", "3")],
        );
        let errs = TriggerConfig::parse(&t).unwrap_err();
        assert_eq!(errs[0].path, "metadata.listLenght");
    }

    #[test]
    fn cron_syntax() {
        assert!(check_cron("0 8 * * 1-5").is_ok());
        assert!(check_cron("*/15 * * JAN-MAR MON").is_ok());
        assert!(check_cron("0 25 * * *").is_err());
        assert!(check_cron("0 8 * *").is_err());
    }

    #[test]
    fn redis_streams_factor_follows_metadata() {
        let t = trig("redis-streams", &[("address", "a:1"), ("stream", "s")]);
        let TriggerConfig::RedisStreams(c) = TriggerConfig::parse(&t).unwrap() else {
            panic!()
        };
        assert_eq!(c.factor, StreamScaleFactor::StreamLength);
        let t = trig(
            "redis-streams",
            &[
                ("address", "a:1"),
                ("stream", "s"),
                ("consumerGroup", "g"),
                ("lagCount", "7"),
            ],
        );
        let TriggerConfig::RedisStreams(c) = TriggerConfig::parse(&t).unwrap() else {
            panic!()
        };
        assert_eq!((c.factor, c.target), (StreamScaleFactor::Lag, 7));
    }
}
