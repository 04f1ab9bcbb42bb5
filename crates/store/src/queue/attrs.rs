//! Queue attributes: parsing and validating what clients set, and the defaults AWS uses.

use std::collections::HashMap;

use super::error::{SqsError, SqsErrorKind};

/// Parsed `RedrivePolicy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedrivePolicy {
    pub dead_letter_target_arn: String,
    pub max_receive_count: u32,
}

/// Parsed `RedriveAllowPolicy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedriveAllow {
    AllowAll,
    DenyAll,
    ByQueue(Vec<String>),
}

/// The settable attributes of a queue, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueAttrs {
    pub delay_seconds: u32,
    pub maximum_message_size: u32,
    pub message_retention_period: u32,
    pub receive_wait_time_seconds: u32,
    pub visibility_timeout: u32,
    pub redrive_policy: Option<RedrivePolicy>,
    pub redrive_allow_policy: Option<RedriveAllow>,
    pub fifo: bool,
    pub content_based_deduplication: bool,
    /// `queue` or `messageGroup`.
    pub deduplication_scope: String,
    /// `perQueue` or `perMessageGroupId`.
    pub fifo_throughput_limit: String,
    /// Attributes kedge stores and reports but that have no local effect (Policy, KMS, SSE).
    pub passthrough: HashMap<String, String>,
    /// The raw strings as last set, reported back verbatim where AWS does so.
    pub raw: HashMap<String, String>,
}

/// The most a SendMessageBatch's messages may add up to, whatever the queue's maximum.
pub const MAX_BATCH_PAYLOAD: usize = 1_048_576;

pub const DEFAULT_MAX_MESSAGE_SIZE: u32 = 1_048_576;

impl QueueAttrs {
    pub fn defaults(fifo: bool) -> Self {
        QueueAttrs {
            delay_seconds: 0,
            maximum_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            message_retention_period: 345_600,
            receive_wait_time_seconds: 0,
            visibility_timeout: 30,
            redrive_policy: None,
            redrive_allow_policy: None,
            fifo,
            content_based_deduplication: false,
            deduplication_scope: "queue".into(),
            fifo_throughput_limit: "perQueue".into(),
            passthrough: HashMap::new(),
            raw: HashMap::new(),
        }
    }

    /// Apply `attrs` (as a client sent them) on top of `self`. `creating` allows `FifoQueue`.
    pub fn apply(
        &mut self,
        attrs: &HashMap<String, String>,
        creating: bool,
    ) -> Result<(), SqsError> {
        // FifoQueue first: other attributes' validity depends on the queue type.
        if let Some(v) = attrs.get("FifoQueue") {
            let b = parse_bool("FifoQueue", v)?;
            if creating {
                self.fifo = b;
            }
            // A standard queue has no such attribute (SQS: even `false` at creation); a FIFO
            // queue's cannot change.
            if !self.fifo {
                return Err(SqsError::new(
                    SqsErrorKind::InvalidAttributeName,
                    "Unknown Attribute FifoQueue.",
                ));
            }
            if !b {
                return Err(SqsError::new(
                    SqsErrorKind::InvalidAttributeValue,
                    "Invalid value for the parameter FifoQueue. Reason: Modifying queue type is not supported.",
                ));
            }
        }
        for (k, v) in attrs {
            match k.as_str() {
                "FifoQueue" => {}
                "DelaySeconds" => self.delay_seconds = parse_range(k, v, 0, 900)?,
                "MaximumMessageSize" => {
                    self.maximum_message_size = parse_range(k, v, 1024, 1_048_576)?
                }
                "MessageRetentionPeriod" => {
                    self.message_retention_period = parse_range(k, v, 60, 1_209_600)?
                }
                "ReceiveMessageWaitTimeSeconds" => {
                    self.receive_wait_time_seconds = parse_range(k, v, 0, 20)?
                }
                "VisibilityTimeout" => self.visibility_timeout = parse_range(k, v, 0, 43_200)?,
                "RedrivePolicy" => {
                    self.redrive_policy = if v.is_empty() {
                        None
                    } else {
                        Some(parse_redrive(v)?)
                    }
                }
                "RedriveAllowPolicy" => {
                    self.redrive_allow_policy = if v.is_empty() {
                        None
                    } else {
                        Some(parse_redrive_allow(v)?)
                    }
                }
                "ContentBasedDeduplication" => {
                    self.require_fifo(k, false)?;
                    self.content_based_deduplication = parse_bool(k, v)?;
                }
                "DeduplicationScope" => {
                    self.require_fifo(k, true)?;
                    if v != "queue" && v != "messageGroup" {
                        return Err(invalid_attr(k, v));
                    }
                    self.deduplication_scope = v.clone();
                }
                "FifoThroughputLimit" => {
                    self.require_fifo(k, true)?;
                    if v != "perQueue" && v != "perMessageGroupId" {
                        return Err(invalid_attr(k, v));
                    }
                    self.fifo_throughput_limit = v.clone();
                }
                // An empty policy or key removes it (it is no longer reported).
                "Policy" | "KmsMasterKeyId" if v.is_empty() => {
                    self.passthrough.remove(k);
                }
                "KmsMasterKeyId" => {
                    // SSE-KMS replaces SQS-managed encryption, which stays off afterwards
                    // (AWS-recorded answers), unless this request turns it on itself.
                    self.passthrough.insert(k.clone(), v.clone());
                    if !attrs.contains_key("SqsManagedSseEnabled") {
                        self.passthrough
                            .insert("SqsManagedSseEnabled".into(), "false".into());
                    }
                }
                "Policy" | "SqsManagedSseEnabled" => {
                    self.passthrough.insert(k.clone(), v.clone());
                }
                "KmsDataKeyReusePeriodSeconds" => {
                    parse_range(k, v, 60, 86_400)?;
                    self.passthrough.insert(k.clone(), v.clone());
                }
                other => {
                    return Err(SqsError::new(
                        SqsErrorKind::InvalidAttributeName,
                        format!("Unknown Attribute {other}."),
                    ));
                }
            }
            self.raw.insert(k.clone(), v.clone());
        }
        if self.deduplication_scope == "messageGroup"
            && self.fifo_throughput_limit == "perQueue"
            && attrs.contains_key("DeduplicationScope")
            && !attrs.contains_key("FifoThroughputLimit")
        {
            // AWS accepts this combination; nothing to adjust locally.
        }
        Ok(())
    }

    /// A FIFO-only attribute on a standard queue, refused as SQS words it: the high-throughput
    /// settings (`setting`) name the rule, the others are unknown there.
    fn require_fifo(&self, name: &str, setting: bool) -> Result<(), SqsError> {
        if self.fifo {
            return Ok(());
        }
        Err(SqsError::new(
            SqsErrorKind::InvalidAttributeName,
            if setting {
                format!("You can specify the {name} only when FifoQueue is set to true.")
            } else {
                format!("Unknown Attribute {name}.")
            },
        ))
    }

    /// Settable attributes as AWS reports them in `GetQueueAttributes`.
    pub fn report(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("DelaySeconds", self.delay_seconds.to_string()),
            ("MaximumMessageSize", self.maximum_message_size.to_string()),
            (
                "MessageRetentionPeriod",
                self.message_retention_period.to_string(),
            ),
            (
                "ReceiveMessageWaitTimeSeconds",
                self.receive_wait_time_seconds.to_string(),
            ),
            ("VisibilityTimeout", self.visibility_timeout.to_string()),
        ];
        if let Some(r) = &self.redrive_policy {
            out.push((
                "RedrivePolicy",
                serde_json::json!({
                    "deadLetterTargetArn": r.dead_letter_target_arn,
                    "maxReceiveCount": r.max_receive_count,
                })
                .to_string(),
            ));
        }
        if let Some(r) = &self.redrive_allow_policy {
            let v = match r {
                RedriveAllow::AllowAll => serde_json::json!({"redrivePermission": "allowAll"}),
                RedriveAllow::DenyAll => serde_json::json!({"redrivePermission": "denyAll"}),
                RedriveAllow::ByQueue(arns) => {
                    serde_json::json!({"redrivePermission": "byQueue", "sourceQueueArns": arns})
                }
            };
            out.push(("RedriveAllowPolicy", v.to_string()));
        }
        if self.fifo {
            out.push(("FifoQueue", "true".into()));
            out.push((
                "ContentBasedDeduplication",
                self.content_based_deduplication.to_string(),
            ));
            out.push(("DeduplicationScope", self.deduplication_scope.clone()));
            out.push(("FifoThroughputLimit", self.fifo_throughput_limit.clone()));
        }
        for key in ["Policy", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds"] {
            // The data key's reuse period is reported only while a KMS key is set.
            if key == "KmsDataKeyReusePeriodSeconds"
                && !self.passthrough.contains_key("KmsMasterKeyId")
            {
                continue;
            }
            if let Some(v) = self.passthrough.get(key) {
                out.push((key, v.clone()));
            }
        }
        // SQS encrypts new queues with SQS-managed keys unless told otherwise (AWS's default
        // since 2022-10) or given a KMS key.
        out.push((
            "SqsManagedSseEnabled",
            self.passthrough
                .get("SqsManagedSseEnabled")
                .cloned()
                .unwrap_or_else(|| (!self.passthrough.contains_key("KmsMasterKeyId")).to_string()),
        ));
        out
    }
}

fn invalid_attr(name: &str, value: &str) -> SqsError {
    SqsError::new(
        SqsErrorKind::InvalidAttributeValue,
        format!("Invalid value for the parameter {name}. Value: {value}"),
    )
}

fn parse_bool(name: &str, v: &str) -> Result<bool, SqsError> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid_attr(name, v)),
    }
}

fn parse_range(name: &str, v: &str, lo: u32, hi: u32) -> Result<u32, SqsError> {
    match v.trim().parse::<i64>() {
        Ok(n) if n >= lo as i64 && n <= hi as i64 => Ok(n as u32),
        _ => Err(SqsError::new(
            SqsErrorKind::InvalidAttributeValue,
            format!(
                "Invalid value for the parameter {name}. Value: {v}. Reason: must be an integer from {lo} to {hi}."
            ),
        )),
    }
}

fn parse_redrive(v: &str) -> Result<RedrivePolicy, SqsError> {
    let bad = |why: &str| {
        SqsError::new(
            SqsErrorKind::InvalidAttributeValue,
            format!("Value {v} for parameter RedrivePolicy is invalid. Reason: {why}"),
        )
    };
    let json: serde_json::Value =
        serde_json::from_str(v).map_err(|_| bad("Redrive policy is not a valid JSON map."))?;
    let obj = json
        .as_object()
        .ok_or_else(|| bad("Redrive policy is not a valid JSON map."))?;
    for k in obj.keys() {
        if k != "deadLetterTargetArn" && k != "maxReceiveCount" {
            return Err(bad(&format!(
                "Only following attributes are supported: [deadLetterTargetArn, maxReceiveCount], got {k}."
            )));
        }
    }
    let arn = obj
        .get("deadLetterTargetArn")
        .and_then(|x| x.as_str())
        .ok_or_else(|| {
            bad("Redrive policy does not contain mandatory attribute: deadLetterTargetArn.")
        })?;
    if parse_arn(arn).is_none() {
        return Err(bad("Invalid value for deadLetterTargetArn."));
    }
    let count = match obj.get("maxReceiveCount") {
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<i64>().ok(),
        _ => {
            return Err(bad(
                "Redrive policy does not contain mandatory attribute: maxReceiveCount.",
            ));
        }
    };
    match count {
        Some(n) if (1..=1000).contains(&n) => Ok(RedrivePolicy {
            dead_letter_target_arn: arn.to_owned(),
            max_receive_count: n as u32,
        }),
        _ => Err(bad(
            "Invalid value for maxReceiveCount: must be an integer from 1 to 1000.",
        )),
    }
}

fn parse_redrive_allow(v: &str) -> Result<RedriveAllow, SqsError> {
    let bad = |why: &str| {
        SqsError::new(
            SqsErrorKind::InvalidAttributeValue,
            format!("Value {v} for parameter RedriveAllowPolicy is invalid. Reason: {why}"),
        )
    };
    let json: serde_json::Value = serde_json::from_str(v)
        .map_err(|_| bad("Amazon SQS can't parse the redrive allow policy."))?;
    let perm = json
        .get("redrivePermission")
        .and_then(|x| x.as_str())
        .ok_or_else(|| bad("redrivePermission is required."))?;
    let arns: Option<Vec<String>> = json.get("sourceQueueArns").map(|a| {
        a.as_array()
            .map(|xs| {
                xs.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    });
    match perm {
        "allowAll" | "denyAll" if arns.is_some() => Err(bad(
            "sourceQueueArns can be specified only when redrivePermission is byQueue.",
        )),
        "allowAll" => Ok(RedriveAllow::AllowAll),
        "denyAll" => Ok(RedriveAllow::DenyAll),
        "byQueue" => {
            let arns = arns.unwrap_or_default();
            if arns.is_empty() || arns.len() > 10 {
                return Err(bad(
                    "sourceQueueArns must list from 1 to 10 queue ARNs when redrivePermission is byQueue.",
                ));
            }
            Ok(RedriveAllow::ByQueue(arns))
        }
        _ => Err(bad(
            "redrivePermission must be allowAll, denyAll or byQueue.",
        )),
    }
}

/// `arn:aws:sqs:REGION:ACCOUNT:NAME` → NAME.
pub fn parse_arn(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() == 6 && parts[0] == "arn" && parts[2] == "sqs" && !parts[5].is_empty() {
        Some(parts[5])
    } else {
        None
    }
}

/// Queue names: 1–80 characters of `[A-Za-z0-9_-]`, plus `.fifo` for FIFO queues.
pub fn validate_queue_name(name: &str, fifo: bool) -> Result<(), SqsError> {
    let base = if fifo {
        name.strip_suffix(".fifo").ok_or_else(|| {
            SqsError::invalid_param(
                "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.",
            )
        })?
    } else {
        name
    };
    let ok = !base.is_empty()
        && name.len() <= 80
        && base
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else if fifo {
        Err(SqsError::invalid_param(
            "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.",
        ))
    } else {
        Err(SqsError::invalid_param(
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ranges_are_enforced_with_the_attribute_named() {
        let mut a = QueueAttrs::defaults(false);
        let e = a
            .apply(&m(&[("VisibilityTimeout", "43201")]), true)
            .unwrap_err();
        assert_eq!(e.kind, SqsErrorKind::InvalidAttributeValue);
        assert!(e.message.contains("VisibilityTimeout"));
        a.apply(
            &m(&[("VisibilityTimeout", "0"), ("DelaySeconds", "900")]),
            true,
        )
        .unwrap();
        assert_eq!((a.visibility_timeout, a.delay_seconds), (0, 900));
    }

    #[test]
    fn fifo_only_attributes_are_rejected_on_standard_queues() {
        let mut a = QueueAttrs::defaults(false);
        let e = a
            .apply(&m(&[("ContentBasedDeduplication", "true")]), true)
            .unwrap_err();
        assert_eq!(e.kind, SqsErrorKind::InvalidAttributeName);
        let mut f = QueueAttrs::defaults(false);
        f.apply(
            &m(&[("FifoQueue", "true"), ("ContentBasedDeduplication", "true")]),
            true,
        )
        .unwrap();
        assert!(f.fifo && f.content_based_deduplication);
    }

    #[test]
    fn redrive_policy_accepts_number_or_string_count() {
        let mut a = QueueAttrs::defaults(false);
        a.apply(
            &m(&[(
                "RedrivePolicy",
                r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":"3"}"#,
            )]),
            true,
        )
        .unwrap();
        assert_eq!(a.redrive_policy.as_ref().unwrap().max_receive_count, 3);
        let e = a
            .apply(&m(&[("RedrivePolicy", r#"{"maxReceiveCount":3}"#)]), false)
            .unwrap_err();
        assert!(e.message.contains("deadLetterTargetArn"));
    }

    #[test]
    fn queue_names() {
        assert!(validate_queue_name("jobs-1_a", false).is_ok());
        assert!(validate_queue_name("jobs.fifo", true).is_ok());
        assert!(validate_queue_name("jobs", true).is_err());
        assert!(validate_queue_name("bad name", false).is_err());
        assert!(validate_queue_name(&"x".repeat(81), false).is_err());
        assert!(validate_queue_name("", false).is_err());
    }
}
