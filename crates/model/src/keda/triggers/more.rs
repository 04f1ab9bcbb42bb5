//! Trigger metadata of the message-broker, database, workload and external scalers: `kafka`,
//! `rabbitmq`, `nats-jetstream`, `mysql`, `aws-dynamodb`, `kubernetes-workload`, `cpu`,
//! `memory`, `external` and `external-push`, with KEDA 2.21's key names, defaults and rules.

use std::collections::BTreeMap;

use super::{IdentityOwner, Meta, Source};
use crate::keda::{MetricType, Trigger};

// ---------------------------------------------------------------------------------------------
// kafka
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetResetPolicy {
    Latest,
    Earliest,
}

/// How the Kafka scaler authenticates (KEDA's `sasl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaSasl {
    None,
    Plaintext,
    ScramSha256,
    ScramSha512,
    OAuthBearer,
    Gssapi,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Kafka {
    /// Comma-separated `host:port` list (literal, `bootstrapServersFromEnv`).
    pub bootstrap_servers: Source,
    pub consumer_group: Source,
    /// Unset: every topic the group has committed offsets for.
    pub topic: Option<Source>,
    /// Partition ids (`"1,2,10-20"`); only with a topic.
    pub partition_limitation: Vec<i32>,
    pub lag_threshold: i64,
    pub activation_lag_threshold: i64,
    pub offset_reset_policy: OffsetResetPolicy,
    pub allow_idle_consumers: bool,
    pub exclude_persistent_lag: bool,
    pub scale_to_zero_on_invalid_offset: bool,
    pub limit_to_partitions_with_lag: bool,
    pub ensure_even_distribution_of_partitions: bool,
    pub tls: bool,
    pub sasl: KafkaSasl,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl Kafka {
    /// KEDA's metric name: `kafka-<topic>` or `kafka-<group>-topics`.
    pub fn metric_name(&self) -> String {
        match (&self.topic, &self.consumer_group) {
            (Some(Source::Literal(t)), _) => format!("kafka-{t}"),
            (None, Source::Literal(g)) => format!("kafka-{g}-topics"),
            _ => "kafka".into(),
        }
    }
}

fn parse_partition_limitation(s: &str) -> Result<Vec<i32>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let a: i32 = a
                    .trim()
                    .parse()
                    .map_err(|_| format!("{part:?} is not a range"))?;
                let b: i32 = b
                    .trim()
                    .parse()
                    .map_err(|_| format!("{part:?} is not a range"))?;
                if a > b {
                    return Err(format!("range {part:?} is backwards"));
                }
                out.extend(a..=b);
            }
            None => out.push(
                part.parse()
                    .map_err(|_| format!("{part:?} is not a partition number"))?,
            ),
        }
    }
    Ok(out)
}

pub(super) fn parse_kafka(m: &mut Meta) -> Kafka {
    let bootstrap_servers = m
        .literal_or_env("bootstrapServers", "bootstrapServersFromEnv")
        .unwrap_or_else(|| {
            m.err(
                "bootstrapServers",
                "is required: the brokers as host:port[,host:port...]",
            );
            Source::Literal(String::new())
        });
    let consumer_group = m
        .literal_or_env("consumerGroup", "consumerGroupFromEnv")
        .unwrap_or_else(|| {
            m.err(
                "consumerGroup",
                "is required: the consumer group to measure",
            );
            Source::Literal(String::new())
        });
    let topic = m.literal_or_env("topic", "topicFromEnv");
    let partition_limitation = match m.str("partitionLimitation") {
        None => Vec::new(),
        Some(s) => match parse_partition_limitation(&s) {
            Ok(v) if topic.is_some() => v,
            Ok(_) => Vec::new(), // KEDA ignores it without a topic
            Err(e) => {
                m.err("partitionLimitation", e);
                Vec::new()
            }
        },
    };
    let lag_threshold = m.positive_int("lagThreshold", 10);
    if m.md.get("lagThreshold").is_some_and(|v| v.trim() == "0") {
        // positive_int reports it; KEDA's message names the key.
    }
    let activation_lag_threshold = m.non_negative_int("activationLagThreshold", 0);
    let offset_reset_policy = match m.str("offsetResetPolicy").as_deref() {
        None | Some("latest") => OffsetResetPolicy::Latest,
        Some("earliest") => OffsetResetPolicy::Earliest,
        Some(o) => {
            let o = o.to_string();
            m.err(
                "offsetResetPolicy",
                format!("expected latest or earliest, got {o:?}"),
            );
            OffsetResetPolicy::Latest
        }
    };
    let allow_idle_consumers = m.bool("allowIdleConsumers", false);
    let exclude_persistent_lag = m.bool("excludePersistentLag", false);
    let scale_to_zero_on_invalid_offset = m.bool("scaleToZeroOnInvalidOffset", false);
    let limit_to_partitions_with_lag = m.bool("limitToPartitionsWithLag", false);
    let ensure_even = m.bool("ensureEvenDistributionOfPartitions", false);
    let full_metadata = m.bool("fullMetadata", true);
    if allow_idle_consumers && limit_to_partitions_with_lag {
        m.err(
            "limitToPartitionsWithLag",
            "allowIdleConsumers and limitToPartitionsWithLag cannot be set simultaneously",
        );
    }
    if topic.is_none() && limit_to_partitions_with_lag {
        m.err(
            "topic",
            "topic must be specified when using limitToPartitionsWithLag",
        );
    }
    if limit_to_partitions_with_lag && ensure_even {
        m.err(
            "ensureEvenDistributionOfPartitions",
            "limitToPartitionsWithLag and ensureEvenDistributionOfPartitions cannot be set simultaneously",
        );
    }
    if topic.is_none() && ensure_even {
        m.err(
            "topic",
            "topic must be specified when using ensureEvenDistributionOfPartitions",
        );
    }
    if !full_metadata && topic.is_none() {
        m.err(
            "topic",
            "topic must be specified when fullMetadata is false",
        );
    }
    if let Some(v) = m.str("version")
        && !v.split('.').all(|p| p.parse::<u32>().is_ok())
    {
        m.err(
            "version",
            format!("{v:?} is not a Kafka version such as 2.8.0"),
        );
    }
    let tls = match m.str_or_auth("tls").as_deref() {
        None | Some("disable") => false,
        Some("enable") => true,
        Some(o) => {
            let o = o.to_string();
            m.err("tls", format!("expected enable or disable, got {o:?}"));
            false
        }
    };
    let sasl = match m.str_or_auth("sasl").as_deref() {
        None | Some("none") => KafkaSasl::None,
        Some("plaintext") => KafkaSasl::Plaintext,
        Some("scram_sha256") => KafkaSasl::ScramSha256,
        Some("scram_sha512") => KafkaSasl::ScramSha512,
        Some("oauthbearer") => KafkaSasl::OAuthBearer,
        Some("gssapi") => KafkaSasl::Gssapi,
        Some(o) => {
            let o = o.to_string();
            m.err(
                "sasl",
                format!(
                    "expected none, plaintext, scram_sha256, scram_sha512, oauthbearer or gssapi, got {o:?}"
                ),
            );
            KafkaSasl::None
        }
    };
    if let Some(p) = m.str_or_auth("saslTokenProvider")
        && p != "bearer"
        && p != "aws_msk_iam"
    {
        m.err(
            "saslTokenProvider",
            format!("expected bearer or aws_msk_iam, got {p:?}"),
        );
    }
    m.accept(&["unsafeSsl", "awsRegion"]);
    let username = m.auth.and_then(|a| a.get("username")).cloned();
    let password = m.auth.and_then(|a| a.get("password")).cloned();
    Kafka {
        bootstrap_servers,
        consumer_group,
        topic,
        partition_limitation,
        lag_threshold,
        activation_lag_threshold,
        offset_reset_policy,
        allow_idle_consumers,
        exclude_persistent_lag,
        scale_to_zero_on_invalid_offset,
        limit_to_partitions_with_lag,
        ensure_even_distribution_of_partitions: ensure_even,
        tls,
        sasl,
        username,
        password,
    }
}

// ---------------------------------------------------------------------------------------------
// rabbitmq
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RabbitProtocol {
    /// Decided by the host URL's scheme (`amqp(s)://` or `http(s)://`) once it is known.
    Auto,
    Amqp,
    Http,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RabbitMode {
    QueueLength,
    MessageRate,
    DeliverGetRate,
    PublishedToDeliveredRatio,
    ExpectedQueueConsumptionTime,
}

impl RabbitMode {
    fn http_only(self) -> bool {
        self != RabbitMode::QueueLength
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RabbitOperation {
    Sum,
    Avg,
    Max,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RabbitMq {
    /// `amqp://user:pass@host:5672/vhost` or `http://user:pass@host:15672/vhost`.
    pub host: Source,
    pub protocol: RabbitProtocol,
    pub queue_name: String,
    pub mode: RabbitMode,
    pub value: f64,
    pub activation_value: f64,
    pub vhost_name: Option<String>,
    pub use_regex: bool,
    pub exclude_unacknowledged: bool,
    pub page_size: i64,
    pub operation: RabbitOperation,
    pub timeout_ms: Option<u64>,
    pub unsafe_ssl: bool,
    pub username: Option<Source>,
    pub password: Option<Source>,
}

/// The protocol a host URL implies (KEDA's `auto`).
pub fn rabbit_protocol_of(host: &str) -> Option<RabbitProtocol> {
    let scheme = host.split_once("://")?.0;
    match scheme {
        "amqp" | "amqps" => Some(RabbitProtocol::Amqp),
        "http" | "https" => Some(RabbitProtocol::Http),
        _ => None,
    }
}

pub(super) fn parse_rabbitmq(m: &mut Meta) -> RabbitMq {
    let host = m.literal_or_env("host", "hostFromEnv");
    let host = match host {
        Some(h) => h,
        None if m.has_auth_ref && m.auth.is_none() => Source::FromAuth,
        None => {
            m.err(
                "host",
                "is required: set host (amqp://... or http://...), hostFromEnv, or the host auth parameter",
            );
            Source::Literal(String::new())
        }
    };
    let queue_name = m.required("queueName", "the queue to measure");
    let mut protocol = match m.str_or_auth("protocol").as_deref() {
        None | Some("auto") => RabbitProtocol::Auto,
        Some("amqp") => RabbitProtocol::Amqp,
        Some("http") => RabbitProtocol::Http,
        Some(o) => {
            let o = o.to_string();
            m.err(
                "protocol",
                format!("the protocol has to be either `amqp`, `http`, or `auto` but is `{o}`"),
            );
            RabbitProtocol::Auto
        }
    };
    if protocol == RabbitProtocol::Auto
        && let Source::Literal(h) = &host
        && !h.is_empty()
    {
        match rabbit_protocol_of(h) {
            Some(p) => protocol = p,
            None => {
                let scheme = h.split_once("://").map(|(s, _)| s).unwrap_or("");
                let scheme = scheme.to_string();
                m.err("host", format!("unknown host URL scheme: `{scheme}`"));
            }
        }
    }
    let queue_length = m.float("queueLength", Some(0.0), "");
    let mode_str = m.str("mode");
    let value = m.float("value", Some(0.0), "");
    let activation_value = m.float("activationValue", Some(0.0), "");
    let mut mode = RabbitMode::QueueLength;
    let mut target = value;
    match (queue_length != 0.0, mode_str.as_deref(), value != 0.0) {
        (false, None | Some("Unknown"), false) => target = 20.0,
        (true, None | Some("Unknown"), false) => target = queue_length,
        (true, _, _) => m.err(
            "queueLength",
            "queueLength is deprecated; use mode and value",
        ),
        (false, None | Some("Unknown"), true) => m.err("mode", "mode must be specified"),
        (false, Some(s), v) => {
            mode = match s {
                "QueueLength" => RabbitMode::QueueLength,
                "MessageRate" => RabbitMode::MessageRate,
                "DeliverGetRate" => RabbitMode::DeliverGetRate,
                "PublishedToDeliveredRatio" => RabbitMode::PublishedToDeliveredRatio,
                "ExpectedQueueConsumptionTime" => RabbitMode::ExpectedQueueConsumptionTime,
                other => {
                    let other = other.to_string();
                    m.err(
                        "mode",
                        format!("trigger mode {other} must be one of QueueLength, MessageRate, DeliverGetRate, PublishedToDeliveredRatio or ExpectedQueueConsumptionTime"),
                    );
                    RabbitMode::QueueLength
                }
            };
            if !v {
                m.err("value", "value must be specified");
            }
        }
    }
    if mode.http_only() && protocol == RabbitProtocol::Amqp {
        m.err(
            "protocol",
            format!("protocol amqp not supported; must be HTTP to use trigger mode {mode:?}"),
        );
    }
    let vhost_name = m.str_or_auth("vhostName");
    let use_regex = m.bool("useRegex", false);
    let exclude_unacknowledged = m.bool("excludeUnacknowledged", false);
    if use_regex && protocol == RabbitProtocol::Amqp {
        m.err(
            "useRegex",
            "configure useRegex=true only with HTTP protocol",
        );
    }
    if exclude_unacknowledged && protocol == RabbitProtocol::Amqp {
        m.err(
            "excludeUnacknowledged",
            "configure excludeUnacknowledged=true only with HTTP protocol",
        );
    }
    let page_size = m.int("pageSize", 100);
    if page_size < 1 {
        m.err("pageSize", "pageSize should be 1 or greater");
    }
    let operation = match m.str("operation").as_deref() {
        None | Some("sum") => RabbitOperation::Sum,
        Some("avg") => RabbitOperation::Avg,
        Some("max") => RabbitOperation::Max,
        Some(o) => {
            let o = o.to_string();
            m.err(
                "operation",
                format!("operation mode {o} must be one of sum, avg, max"),
            );
            RabbitOperation::Sum
        }
    };
    let timeout_ms = match m.str("timeout") {
        None => None,
        Some(t) => match t.parse::<u64>() {
            Ok(0) | Err(_) => {
                m.err(
                    "timeout",
                    format!("timeout must be a positive number of milliseconds, got {t:?}"),
                );
                None
            }
            Ok(ms) => Some(ms),
        },
    };
    if timeout_ms.is_some() && protocol == RabbitProtocol::Amqp {
        m.err("timeout", "AMQP protocol doesn't support custom timeouts");
    }
    let unsafe_ssl = m.bool("unsafeSsl", false);
    let username = m.literal_or_env("username", "usernameFromEnv");
    let password = m.literal_or_env("password", "passwordFromEnv");
    if username.is_some() != password.is_some() {
        m.err("username", "username and password must be given together");
    }
    if let Some(t) = m.auth.and_then(|a| a.get("tls"))
        && t != "enable"
        && t != "disable"
    {
        let t = t.clone();
        m.err("tls", format!("incorrect value for TLS given: {t}"));
    }
    RabbitMq {
        host,
        protocol,
        queue_name,
        mode,
        value: target,
        activation_value,
        vhost_name,
        use_regex,
        exclude_unacknowledged,
        page_size,
        operation,
        timeout_ms,
        unsafe_ssl,
        username,
        password,
    }
}

// ---------------------------------------------------------------------------------------------
// nats-jetstream
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub struct NatsJetStream {
    /// `host:port` of the server's HTTP monitoring endpoint.
    pub monitoring_endpoint: String,
    /// Account name (`account`) or id (`accountID`); KEDA matches either.
    pub account: String,
    pub account_id: String,
    pub stream: String,
    pub consumer: String,
    pub lag_threshold: i64,
    pub activation_lag_threshold: i64,
    pub use_https: bool,
}

impl NatsJetStream {
    /// `http(s)://<endpoint>/jsz?acc=<id>&consumers=true&config=true`
    pub fn monitoring_url(&self) -> String {
        format!(
            "{}://{}/jsz?acc={}&config=true&consumers=true",
            if self.use_https { "https" } else { "http" },
            self.monitoring_endpoint,
            percent_encode(&self.account_id)
        )
    }
}

/// Percent-encode a query value (RFC 3986 unreserved characters kept).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(super) fn parse_nats_jetstream(m: &mut Meta) -> NatsJetStream {
    let account = m.str_or_auth("account").unwrap_or_default();
    let mut account_id = m.str_or_auth("accountID").unwrap_or_default();
    if account.is_empty() && account_id.is_empty() {
        m.err(
            "account",
            "no account name or id given: set account (e.g. $G)",
        );
    }
    if account_id.is_empty() {
        account_id = account.clone();
    }
    let stream = m.required("stream", "the JetStream stream");
    let consumer = m.required("consumer", "the stream's consumer");
    let lag_threshold = m.int("lagThreshold", 10);
    let activation_lag_threshold = m.int("activationLagThreshold", 0);
    let use_https = m.bool("useHttps", false);
    let monitoring_endpoint = match m.str_or_auth("natsServerMonitoringEndpoint") {
        Some(e) => e,
        None if m.has_auth_ref && m.auth.is_none() => String::new(),
        None => {
            m.err(
                "natsServerMonitoringEndpoint",
                "is required: the server's monitoring host:port, e.g. nats.nats.svc:8222",
            );
            String::new()
        }
    };
    NatsJetStream {
        monitoring_endpoint,
        account,
        account_id,
        stream,
        consumer,
        lag_threshold,
        activation_lag_threshold,
        use_https,
    }
}

// ---------------------------------------------------------------------------------------------
// mysql
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub struct Mysql {
    /// A Go-driver DSN (`user:pass@tcp(host:port)/db`), from `connectionString` or
    /// `connectionStringFromEnv`.
    pub connection_string: Option<Source>,
    pub username: Option<Source>,
    pub password: Option<Source>,
    pub host: Option<String>,
    pub port: Option<String>,
    pub db_name: Option<String>,
    pub query: String,
    pub query_value: f64,
    pub activation_query_value: f64,
}

pub(super) fn parse_mysql(m: &mut Meta) -> Mysql {
    let connection_string = match m.auth.and_then(|a| a.get("connectionString")) {
        Some(c) => Some(Source::Literal(c.clone())),
        None => m.str("connectionStringFromEnv").map(Source::FromEnv),
    };
    let username = m.literal_or_env("username", "usernameFromEnv");
    let password = match m.auth.and_then(|a| a.get("password")) {
        Some(p) => Some(Source::Literal(p.clone())),
        None => m.str("passwordFromEnv").map(Source::FromEnv),
    };
    let host = m.str_or_auth("host");
    let port = m.str_or_auth("port");
    let db_name = m.str_or_auth("dbName");
    if connection_string.is_none() && host.is_none() && !(m.has_auth_ref && m.auth.is_none()) {
        m.err(
            "host",
            "is required: set connectionStringFromEnv, a connectionString auth param, or host/port/username/dbName",
        );
    }
    let query = m.required("query", "a SQL query returning one number");
    let query_value = m.float("queryValue", None, "the target value per replica");
    let activation_query_value = m.float("activationQueryValue", Some(0.0), "");
    m.accept(&["metricName"]);
    Mysql {
        connection_string,
        username,
        password,
        host,
        port,
        db_name,
        query,
        query_value,
        activation_query_value,
    }
}

// ---------------------------------------------------------------------------------------------
// aws-dynamodb
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub struct AwsDynamoDb {
    pub table_name: String,
    pub aws_region: Option<String>,
    pub aws_endpoint: Option<String>,
    pub key_condition_expression: String,
    pub expression_attribute_names: BTreeMap<String, String>,
    /// DynamoDB JSON (`{":v": {"S": "x"}}`).
    pub expression_attribute_values: serde_json::Map<String, serde_json::Value>,
    pub index_name: Option<String>,
    pub filter_expression: Option<String>,
    pub target_value: i64,
    pub activation_target_value: i64,
    pub identity_owner: IdentityOwner,
    pub aws_role_arn: Option<String>,
    pub access_key_id_from_env: Option<String>,
    pub secret_access_key_from_env: Option<String>,
    pub session_token_from_env: Option<String>,
}

pub(super) fn parse_aws_dynamodb(m: &mut Meta) -> AwsDynamoDb {
    let table_name = m.required("tableName", "the DynamoDB table to query");
    let aws_region = m.str_or_auth("awsRegion");
    let aws_endpoint = m.str("awsEndpoint");
    if aws_region.is_none() && !(m.has_auth_ref && m.auth.is_none()) {
        m.err(
            "awsRegion",
            "is required: the table's region, e.g. eu-west-1",
        );
    }
    let key_condition_expression = m.required(
        "keyConditionExpression",
        "a Query key condition such as #k = :v",
    );
    let names_raw = m.required(
        "expressionAttributeNames",
        "a JSON object such as {\"#k\": \"status\"}",
    );
    let expression_attribute_names =
        match serde_json::from_str::<BTreeMap<String, String>>(&names_raw) {
            Ok(v) => v,
            Err(e) if !names_raw.is_empty() => {
                m.err(
                    "expressionAttributeNames",
                    format!("error parsing expressionAttributeNames: {e}"),
                );
                BTreeMap::new()
            }
            Err(_) => BTreeMap::new(),
        };
    let values_raw = m.required(
        "expressionAttributeValues",
        "a JSON object such as {\":v\": {\"S\": \"queued\"}}",
    );
    let expression_attribute_values = match serde_json::from_str::<
        serde_json::Map<String, serde_json::Value>,
    >(&values_raw)
    {
        Ok(v) if v.values().all(|x| x.is_object()) => v,
        Ok(_) => {
            m.err(
                    "expressionAttributeValues",
                    "each value must be a DynamoDB attribute value such as {\"S\": \"x\"} or {\"N\": \"1\"}",
                );
            Default::default()
        }
        Err(e) if !values_raw.is_empty() => {
            m.err(
                "expressionAttributeValues",
                format!("error parsing expressionAttributeValues: {e}"),
            );
            Default::default()
        }
        Err(_) => Default::default(),
    };
    let index_name = m.str("indexName");
    let filter_expression = m.str("filterExpression");
    let target_value = match m.str("targetValue") {
        None => {
            m.err(
                "targetValue",
                "no targetValue given: set the target count per replica",
            );
            0
        }
        Some(_) => m.int("targetValue", 0),
    };
    let activation_target_value = m.int("activationTargetValue", 0);
    let identity_owner = match m.str("identityOwner").as_deref() {
        None | Some("pod") => IdentityOwner::Pod,
        Some("operator") => IdentityOwner::Operator,
        Some(o) => {
            let o = o.to_string();
            m.err(
                "identityOwner",
                format!("expected pod or operator, got {o:?}"),
            );
            IdentityOwner::Pod
        }
    };
    let aws_role_arn = m.str_or_auth("awsRoleArn");
    let access_key_id_from_env = m.str("awsAccessKeyIDFromEnv");
    let secret_access_key_from_env = m.str("awsSecretAccessKeyFromEnv");
    let session_token_from_env = m.str("awsSessionTokenFromEnv");
    AwsDynamoDb {
        table_name,
        aws_region,
        aws_endpoint,
        key_condition_expression,
        expression_attribute_names,
        expression_attribute_values,
        index_name,
        filter_expression,
        target_value,
        activation_target_value,
        identity_owner,
        aws_role_arn,
        access_key_id_from_env,
        secret_access_key_from_env,
        session_token_from_env,
    }
}

// ---------------------------------------------------------------------------------------------
// kubernetes-workload
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub struct KubernetesWorkload {
    /// A label selector (`app=worker,tier in (a,b)`), in the ScaledObject's namespace.
    pub pod_selector: String,
    pub value: f64,
    pub activation_value: f64,
    /// Count distinct nodes of the matching pods instead of pods.
    pub group_by_node: bool,
}

pub(super) fn parse_kubernetes_workload(m: &mut Meta) -> KubernetesWorkload {
    let pod_selector = m.required("podSelector", "a label selector such as app=backend");
    if !pod_selector.is_empty()
        && let Err(e) = parse_label_selector(&pod_selector)
    {
        m.err("podSelector", e);
    }
    let value = m.float("value", Some(0.0), "");
    if value <= 0.0 {
        m.err("value", "value must be a float greater than 0");
    }
    let activation_value = m.float("activationValue", Some(0.0), "");
    let group_by_node = m.bool("groupByNode", false);
    KubernetesWorkload {
        pod_selector,
        value,
        activation_value,
        group_by_node,
    }
}

// ---------------------------------------------------------------------------------------------
// cpu / memory
// ---------------------------------------------------------------------------------------------

/// Which pod resource a `cpu` or `memory` trigger measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodResource {
    Cpu,
    Memory,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub resource: PodResource,
    /// `Utilization` (percent of requests) or `AverageValue` (a quantity per pod).
    pub metric_type: MetricType,
    /// Utilization: the percentage; AverageValue: cores (cpu) or bytes (memory).
    pub target: f64,
    /// Only this container's usage and requests.
    pub container_name: Option<String>,
}

pub(super) fn parse_resource(m: &mut Meta, t: &Trigger, resource: PodResource) -> Resource {
    if m.md.contains_key("type") {
        m.known.push("type");
        m.err(
            "type",
            "the 'type' setting was removed in KEDA 2.18: use the trigger's metricType (Utilization or AverageValue)",
        );
    }
    let metric_type = match t.metric_type {
        Some(mt @ (MetricType::Utilization | MetricType::AverageValue)) => mt,
        other => {
            m.errors.push(crate::manifest::FieldError::new(
                "metricType",
                format!(
                    "unknown metric type: {}, allowed values are 'Utilization' or 'AverageValue'",
                    other.map(|o| format!("{o:?}")).unwrap_or_default()
                ),
            ));
            MetricType::Utilization
        }
    };
    let raw = m.required(
        "value",
        "the target (a percentage, or a quantity such as 500m)",
    );
    let target = if raw.is_empty() {
        0.0
    } else if metric_type == MetricType::Utilization {
        match raw.parse::<i32>() {
            Ok(v) => f64::from(v),
            Err(_) => {
                m.err(
                    "value",
                    format!("expected an integer percentage for Utilization, got {raw:?}"),
                );
                0.0
            }
        }
    } else {
        match raw.parse::<crate::quantity::Quantity>() {
            Ok(q) => q.millis() as f64 / 1000.0,
            Err(_) => {
                m.err(
                    "value",
                    format!("{raw:?} is not a quantity such as 500m or 256Mi"),
                );
                0.0
            }
        }
    };
    let container_name = m.str("containerName");
    Resource {
        resource,
        metric_type,
        target,
        container_name,
    }
}

// ---------------------------------------------------------------------------------------------
// external / external-push
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub struct External {
    /// `host:port` of the gRPC ExternalScaler service.
    pub scaler_address: String,
    pub enable_tls: bool,
    pub unsafe_ssl: bool,
    /// Every metadata entry, sent to the external scaler as `scalerMetadata`.
    pub metadata: BTreeMap<String, String>,
    /// `external-push`: the scaler pushes activity (`StreamIsActive`).
    pub push: bool,
}

pub(super) fn parse_external(m: &mut Meta, push: bool) -> External {
    let scaler_address = m.required("scalerAddress", "the external scaler's host:port");
    let enable_tls = m.bool("enableTLS", false);
    let unsafe_ssl = m.bool("unsafeSsl", false);
    // The rest of the metadata belongs to the external scaler: accepted as is.
    let metadata = m.md.clone();
    m.accept_all = true;
    External {
        scaler_address,
        enable_tls,
        unsafe_ssl,
        metadata,
        push,
    }
}

// ---------------------------------------------------------------------------------------------
// Label selectors (`podSelector`)
// ---------------------------------------------------------------------------------------------

/// One term of a Kubernetes label selector string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectorTerm {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

impl SelectorTerm {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            SelectorTerm::Equals(k, v) => labels.get(k) == Some(v),
            SelectorTerm::NotEquals(k, v) => labels.get(k) != Some(v),
            SelectorTerm::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            SelectorTerm::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            SelectorTerm::Exists(k) => labels.contains_key(k),
            SelectorTerm::DoesNotExist(k) => !labels.contains_key(k),
        }
    }
}

/// Does a label set match every term of a parsed selector?
pub fn selector_matches(terms: &[SelectorTerm], labels: &BTreeMap<String, String>) -> bool {
    terms.iter().all(|t| t.matches(labels))
}

fn label_token_ok(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

/// Parse a label selector string as `kubectl -l` takes it: `a=b`, `a==b`, `a!=b`,
/// `a in (x,y)`, `a notin (x)`, `a`, `!a`, separated by commas outside parentheses.
pub fn parse_label_selector(s: &str) -> Result<Vec<SelectorTerm>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    let bad = |p: &str| {
        format!("{p:?} is not a label selector term (e.g. app=worker, tier in (a,b), !legacy)")
    };
    let mut out = Vec::new();
    for p in parts.iter().map(|p| p.trim()) {
        if p.is_empty() {
            return Err(format!("{s:?} has an empty selector term"));
        }
        let set_op = |p: &str, op: &str| -> Option<(String, Vec<String>)> {
            let (k, rest) = p.split_once(&format!(" {op} "))?;
            let rest = rest.trim();
            let inner = rest.strip_prefix('(')?.strip_suffix(')')?;
            let vals: Vec<String> = inner
                .split(',')
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect();
            Some((k.trim().to_string(), vals))
        };
        let term = if let Some((k, v)) = set_op(p, "notin") {
            SelectorTerm::NotIn(k, v)
        } else if let Some((k, v)) = set_op(p, "in") {
            SelectorTerm::In(k, v)
        } else if let Some((k, v)) = p.split_once("!=") {
            SelectorTerm::NotEquals(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = p.split_once("==") {
            SelectorTerm::Equals(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = p.split_once('=') {
            SelectorTerm::Equals(k.trim().into(), v.trim().into())
        } else if let Some(k) = p.strip_prefix('!') {
            SelectorTerm::DoesNotExist(k.trim().into())
        } else {
            SelectorTerm::Exists(p.into())
        };
        let ok = match &term {
            SelectorTerm::Equals(k, v) | SelectorTerm::NotEquals(k, v) => {
                label_token_ok(k) && (v.is_empty() || label_token_ok(v))
            }
            SelectorTerm::In(k, vs) | SelectorTerm::NotIn(k, vs) => {
                label_token_ok(k) && vs.iter().all(|v| label_token_ok(v))
            }
            SelectorTerm::Exists(k) | SelectorTerm::DoesNotExist(k) => label_token_ok(k),
        };
        if !ok {
            return Err(bad(p));
        }
        out.push(term);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors() {
        let t = parse_label_selector("app=worker, tier in (a, b),!legacy,env!=dev").unwrap();
        let labels: BTreeMap<String, String> = [("app", "worker"), ("tier", "b"), ("env", "prod")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert!(selector_matches(&t, &labels));
        let mut other = labels.clone();
        other.insert("legacy".into(), "1".into());
        assert!(!selector_matches(&t, &other));
        assert!(parse_label_selector("app=worker,").is_err());
        assert!(parse_label_selector("a b").is_err());
    }

    #[test]
    fn partition_limitation() {
        assert_eq!(
            parse_partition_limitation("1, 3-5").unwrap(),
            vec![1, 3, 4, 5]
        );
        assert!(parse_partition_limitation("5-3").is_err());
    }
}
