//! Reading the JSON input shape: typed accessors that answer in AWS's error vocabulary, the
//! queue name from `QueueUrl`, batch entries and their validation, and message attributes.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};
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
    queue_name_of(opt_str(input, "QueueUrl")?)
}

/// The queue name from a `QueueUrl` value, if one was given.
pub(super) fn queue_name_of(url: Option<&str>) -> Result<String, SqsError> {
    let url = url.ok_or_else(|| SqsError::missing("QueueUrl"))?;
    let path = match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            rest.find('/').map(|j| &rest[j..]).unwrap_or("")
        }
        None => url,
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if name.is_empty() && url.contains("://") {
        // A URL that names no queue (`http://host`): SQS answers that the queue does not exist.
        return Err(SqsError::no_queue());
    }
    if name.is_empty() {
        return Err(SqsError::new(
            SqsErrorKind::InvalidAddress,
            format!("The address {url} is not valid for this endpoint."),
        ));
    }
    Ok(name.to_owned())
}

/// The `Entries` of a batch request whose entries are of type `entry` (for SQS's messages,
/// e.g. `SendMessageBatchRequestEntry`).
pub(super) fn batch_entries<'v>(input: &'v Value, entry: &str) -> Result<&'v Vec<Value>, SqsError> {
    let entries = match input.get("Entries") {
        None | Some(Value::Null) => {
            return Err(SqsError::missing("Entries"));
        }
        Some(Value::Array(a)) => a,
        // The query protocol's empty list (`Entries=`, as AWS's SDKs send `[]`).
        Some(Value::String(s)) if s.is_empty() => return Err(empty_batch(entry)),
        Some(_) => return Err(SqsError::invalid_param("Entries must be a list.")),
    };
    check_batch(entry, entries.len(), |i| req_str(&entries[i], "Id"))?;
    Ok(entries)
}

fn empty_batch(entry: &str) -> SqsError {
    SqsError::new(
        SqsErrorKind::EmptyBatchRequest,
        format!("There should be at least one {entry} in the request."),
    )
}

/// A batch's entry count and ids as SQS checks them: 1 to 10 entries, each id made of
/// letters, digits, `-` and `_` (at most 80), no id twice. `id(i)` reads entry `i`'s id;
/// `entry` names the entries' type in the empty batch's message, as SQS words it.
/// Strings kept in one allocation, in order: a batch's ids or receipt handles.
#[derive(Debug, Default)]
pub(super) struct Strs {
    buf: String,
    ends: Vec<usize>,
}

impl Strs {
    /// Room for `strings` strings of `bytes` bytes in all.
    pub(super) fn with_capacity(strings: usize, bytes: usize) -> Strs {
        Strs {
            buf: String::with_capacity(bytes),
            ends: Vec::with_capacity(strings),
        }
    }

    pub(super) fn push(&mut self, s: &str) {
        self.buf.push_str(s);
        self.ends.push(self.buf.len());
    }

    /// The strings as slices of the one buffer.
    pub(super) fn to_vec(&self) -> Vec<&str> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let s = &self.buf[start..end];
                start = end;
                s
            })
            .collect()
    }
}

pub(super) fn check_batch<'a>(
    entry: &str,
    len: usize,
    mut id: impl FnMut(usize) -> Result<&'a str, SqsError>,
) -> Result<(), SqsError> {
    if len == 0 {
        return Err(empty_batch(entry));
    }
    if len > 10 {
        return Err(SqsError::new(
            SqsErrorKind::TooManyEntriesInBatchRequest,
            format!("Maximum number of entries per request are 10. You have sent {len}."),
        ));
    }
    // At most ten ids: comparing each with those before it beats hashing them.
    let mut seen: Vec<&str> = Vec::with_capacity(len);
    for i in 0..len {
        let id = id(i)?;
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
        if seen.contains(&id) {
            return Err(SqsError::new(
                SqsErrorKind::BatchEntryIdsNotDistinct,
                format!("Id {id} repeated."),
            ));
        }
        seen.push(id);
    }
    Ok(())
}

pub(super) fn parse_send_entry(v: &Value) -> Result<SendRequest, SqsError> {
    let body = match v.get("MessageBody") {
        None | Some(Value::Null) => return Err(SqsError::missing("MessageBody")),
        Some(Value::String(s)) => Arc::from(s.as_str()),
        Some(_) => return Err(SqsError::invalid_param("MessageBody must be a string.")),
    };
    Ok(SendRequest {
        body,
        delay_seconds: opt_int(v, "DelaySeconds")?,
        attributes: message_attributes(v, "MessageAttributes")?,
        system_attributes: message_attributes(v, "MessageSystemAttributes")?,
        group_id: opt_str(v, "MessageGroupId")?.map(str::to_owned),
        dedup_id: opt_str(v, "MessageDeduplicationId")?.map(str::to_owned),
        http_trace_header: None,
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
        let s = |k: &str| a.get(k).and_then(Value::as_str);
        let list = |k: &str| a.get(k).and_then(Value::as_array).map(Vec::len);
        let lists = list("StringListValues").unwrap_or(0) + list("BinaryListValues").unwrap_or(0);
        let value = attribute_value(
            name,
            s("DataType"),
            s("StringValue"),
            s("BinaryValue"),
            lists > 0,
        )?;
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// One message attribute from its members (`lists`: non-empty `StringListValues` or
/// `BinaryListValues`), checked in the order SQS checks them.
fn attribute_value(
    name: &str,
    data_type: Option<&str>,
    string_value: Option<&str>,
    binary_value: Option<&str>,
    lists: bool,
) -> Result<MessageAttributeValue, SqsError> {
    let data_type = data_type.ok_or_else(|| {
        SqsError::invalid_param(format!(
            "The message attribute '{name}' must contain non-empty message attribute type."
        ))
    })?;
    let binary_value = match binary_value {
        None => None,
        Some(b) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|_| {
                    SqsError::invalid_param(format!(
                        "The message attribute '{name}' has a BinaryValue that is not valid base64."
                    ))
                })?,
        ),
    };
    if lists {
        return Err(SqsError::invalid_param(format!(
            "The message attribute '{name}' uses StringListValues or BinaryListValues, which SQS reserves and does not implement."
        )));
    }
    Ok(MessageAttributeValue {
        data_type: data_type.to_owned(),
        string_value: string_value.map(str::to_owned),
        binary_value,
    })
}

// ---- Typed JSON input ------------------------------------------------------------------
//
// The hot actions read a JSON body straight into these structs, without a `Value` tree (which
// took a fifth of the workers' time for SendMessageBatch). They accept only inputs whose
// members have the JSON types AWS documents; anything else (a number as a string, a member of
// the wrong type, a duplicated key, a body that is not an object) fails to deserialize, and
// the action is then read again through `Value`, which gives AWS's answer for it. For an
// input both readings accept they give the same request: the checks after reading are shared.

/// A JSON string, borrowed from the body when it has no escapes.
pub(super) struct Text<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// `Some(&str)` of an optional [`Text`].
pub(super) fn text<'b>(t: &'b Option<Text<'_>>) -> Option<&'b str> {
    t.as_ref().map(|t| &*t.0)
}

/// Deserialize `body` as `T` when it is a JSON object of the documented types; `None`
/// sends the caller to the `Value` reading.
pub(super) fn typed<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Option<T> {
    // A struct would also deserialize from a JSON array; SQS wants an object.
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    serde_json::from_slice(body).ok()
}

/// A message to send as typed input: SendMessage's input or a SendMessageBatch entry.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct SendIn<'a> {
    #[serde(borrow)]
    pub queue_url: Option<Text<'a>>,
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    #[serde(borrow)]
    pub message_body: Option<Text<'a>>,
    pub delay_seconds: Option<i64>,
    #[serde(borrow)]
    pub message_attributes: Option<BTreeMap<String, AttributeIn<'a>>>,
    #[serde(borrow)]
    pub message_system_attributes: Option<BTreeMap<String, AttributeIn<'a>>>,
    pub message_group_id: Option<String>,
    pub message_deduplication_id: Option<String>,
}

/// A message attribute as typed input.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct AttributeIn<'a> {
    #[serde(borrow)]
    data_type: Option<Text<'a>>,
    #[serde(borrow)]
    string_value: Option<Text<'a>>,
    #[serde(borrow)]
    binary_value: Option<Text<'a>>,
    string_list_values: Option<Vec<IgnoredAny>>,
    binary_list_values: Option<Vec<IgnoredAny>>,
}

impl SendIn<'_> {
    /// The message to send, checked as [`parse_send_entry`] checks it.
    pub(super) fn into_request(self) -> Result<SendRequest, SqsError> {
        let body = Arc::from(
            &*self
                .message_body
                .ok_or_else(|| SqsError::missing("MessageBody"))?
                .0,
        );
        Ok(SendRequest {
            body,
            delay_seconds: self.delay_seconds,
            attributes: typed_attributes(self.message_attributes)?,
            system_attributes: typed_attributes(self.message_system_attributes)?,
            group_id: self.message_group_id,
            dedup_id: self.message_deduplication_id,
            http_trace_header: None,
        })
    }
}

fn typed_attributes(
    attrs: Option<BTreeMap<String, AttributeIn<'_>>>,
) -> Result<BTreeMap<String, MessageAttributeValue>, SqsError> {
    let mut out = BTreeMap::new();
    for (name, a) in attrs.unwrap_or_default() {
        let lists = a.string_list_values.as_ref().map_or(0, Vec::len)
            + a.binary_list_values.as_ref().map_or(0, Vec::len);
        let value = attribute_value(
            &name,
            text(&a.data_type),
            text(&a.string_value),
            text(&a.binary_value),
            lists > 0,
        )?;
        out.insert(name, value);
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
        // The query protocol's empty list (`Name=`, as AWS's SDKs send `[]`).
        Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
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
