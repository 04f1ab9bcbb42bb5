//! Reading the JSON input shape: typed accessors that answer in AWS's error vocabulary, the
//! queue name from `QueueUrl`, batch entries and their validation, and message attributes.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use serde_json::Value;

use store::queue::{MessageAttributeValue, SendRequest, SqsError, SqsErrorKind};

use crate::Incoming2;

pub(super) fn sender_id(req: &Incoming2) -> String {
    req.access_key
        .clone()
        .unwrap_or_else(|| store::queue::ACCOUNT_ID.to_owned())
}

/// `http://HOST/<account-id>/<name>`; HOST as the client addressed us.
pub fn queue_url(host: &str, name: &str) -> String {
    format!("http://{host}/{}/{name}", store::queue::ACCOUNT_ID)
}

/// The queue name from `QueueUrl` (full URL, path, or bare name).
pub(super) fn queue_name(input: &Value) -> Result<String, SqsError> {
    let url = req_str(input, "QueueUrl")?;
    let path = match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            rest.find('/').map(|j| &rest[j..]).unwrap_or("")
        }
        None => url,
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if name.is_empty() {
        return Err(SqsError::new(
            SqsErrorKind::InvalidAddress,
            format!("The address {url} is not valid for this endpoint."),
        ));
    }
    Ok(name.to_owned())
}

pub(super) fn batch_entries(input: &Value) -> Result<&Vec<Value>, SqsError> {
    let entries = match input.get("Entries") {
        None | Some(Value::Null) => {
            return Err(SqsError::missing("Entries"));
        }
        Some(Value::Array(a)) => a,
        Some(_) => return Err(SqsError::invalid_param("Entries must be a list.")),
    };
    if entries.is_empty() {
        return Err(SqsError::new(
            SqsErrorKind::EmptyBatchRequest,
            "There should be at least one entry in the request.",
        ));
    }
    if entries.len() > 10 {
        return Err(SqsError::new(
            SqsErrorKind::TooManyEntriesInBatchRequest,
            format!(
                "Maximum number of entries per request are 10. You have sent {}.",
                entries.len()
            ),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for e in entries {
        let id = req_str(e, "Id")?;
        if id.is_empty()
            || id.len() > 80
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(SqsError::new(
                SqsErrorKind::InvalidBatchEntryId,
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
            ));
        }
        if !seen.insert(id) {
            return Err(SqsError::new(
                SqsErrorKind::BatchEntryIdsNotDistinct,
                format!("Id {id} repeated."),
            ));
        }
    }
    Ok(entries)
}

pub(super) fn parse_send_entry(v: &Value) -> Result<SendRequest, SqsError> {
    let body = match v.get("MessageBody") {
        None | Some(Value::Null) => return Err(SqsError::missing("MessageBody")),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(SqsError::invalid_param("MessageBody must be a string.")),
    };
    Ok(SendRequest {
        body,
        delay_seconds: opt_int(v, "DelaySeconds")?,
        attributes: message_attributes(v, "MessageAttributes")?,
        system_attributes: message_attributes(v, "MessageSystemAttributes")?,
        group_id: opt_str(v, "MessageGroupId")?.map(str::to_owned),
        dedup_id: opt_str(v, "MessageDeduplicationId")?.map(str::to_owned),
    })
}

fn message_attributes(
    v: &Value,
    key: &str,
) -> Result<BTreeMap<String, MessageAttributeValue>, SqsError> {
    let mut out = BTreeMap::new();
    let Some(obj) = v.get(key) else {
        return Ok(out);
    };
    let Some(obj) = obj.as_object() else {
        if obj.is_null() {
            return Ok(out);
        }
        return Err(SqsError::invalid_param(format!("{key} must be a map.")));
    };
    for (name, a) in obj {
        let data_type = a
            .get("DataType")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                SqsError::invalid_param(format!(
                    "The message attribute '{name}' must contain non-empty message attribute type."
                ))
            })?
            .to_owned();
        let string_value = a
            .get("StringValue")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let binary_value = match a.get("BinaryValue").and_then(Value::as_str) {
            None => None,
            Some(b) => Some(base64::engine::general_purpose::STANDARD.decode(b).map_err(|_| {
                SqsError::invalid_param(format!(
                    "The message attribute '{name}' has a BinaryValue that is not valid base64."
                ))
            })?),
        };
        if a.get("StringListValues")
            .is_some_and(|x| x.as_array().is_some_and(|l| !l.is_empty()))
            || a.get("BinaryListValues")
                .is_some_and(|x| x.as_array().is_some_and(|l| !l.is_empty()))
        {
            return Err(SqsError::invalid_param(format!(
                "The message attribute '{name}' uses StringListValues or BinaryListValues, which SQS reserves and does not implement."
            )));
        }
        out.insert(
            name.clone(),
            MessageAttributeValue {
                data_type,
                string_value,
                binary_value,
            },
        );
    }
    Ok(out)
}

pub(super) fn req_str<'a>(v: &'a Value, key: &str) -> Result<&'a str, SqsError> {
    opt_str(v, key)?.ok_or_else(|| SqsError::missing(key))
}

pub(super) fn opt_str<'a>(v: &'a Value, key: &str) -> Result<Option<&'a str>, SqsError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(SqsError::bad_value(key, other, "Must be a string.")),
    }
}

/// An integer given as a JSON number or (query protocol) a numeric string.
pub(super) fn opt_int(v: &Value, key: &str) -> Result<Option<i64>, SqsError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| SqsError::bad_value(key, n, "Must be an integer.")),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| SqsError::bad_value(key, s, "Must be an integer.")),
        Some(other) => Err(SqsError::bad_value(key, other, "Must be an integer.")),
    }
}

pub(super) fn str_list(v: &Value, key: &str) -> Result<Vec<String>, SqsError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str().map(str::to_owned).ok_or_else(|| {
                    SqsError::invalid_param(format!("{key} must be a list of strings."))
                })
            })
            .collect(),
        Some(_) => Err(SqsError::invalid_param(format!(
            "{key} must be a list of strings."
        ))),
    }
}

pub(super) fn str_map(v: &Value, key: &str) -> Result<HashMap<String, String>, SqsError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(HashMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, x)| match x {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Number(n) => Ok((k.clone(), n.to_string())),
                Value::Bool(b) => Ok((k.clone(), b.to_string())),
                _ => Err(SqsError::invalid_param(format!(
                    "{key}.{k} must be a string."
                ))),
            })
            .collect(),
        Some(_) => Err(SqsError::invalid_param(format!(
            "{key} must be a map of strings."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn queue_names_come_from_urls_paths_or_names() {
        for (u, n) in [
            ("http://127.0.0.1:4566/000000000000/jobs", "jobs"),
            (
                "https://sqs.us-east-1.amazonaws.com/123/jobs.fifo",
                "jobs.fifo",
            ),
            ("/000000000000/jobs", "jobs"),
            ("jobs", "jobs"),
        ] {
            assert_eq!(queue_name(&json!({"QueueUrl": u})).unwrap(), n);
        }
        assert!(queue_name(&json!({"QueueUrl": "http://host/"})).is_err());
        assert_eq!(
            queue_name(&json!({})).unwrap_err().kind,
            SqsErrorKind::MissingParameter
        );
    }
}
