//! The query protocol's input: flattened form parameters normalised to the JSON input shape.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

const NUMERIC: &[&str] = &[
    "DelaySeconds",
    "MaxNumberOfMessages",
    "VisibilityTimeout",
    "WaitTimeSeconds",
    "MaxResults",
    "MaxNumberOfMessagesPerSecond",
];

/// Turn flattened query parameters into the JSON protocol's input shape.
pub fn query_to_json(params: &[(String, String)]) -> Value {
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    normalise(&pairs)
}

fn normalise(pairs: &[(&str, &str)]) -> Value {
    let mut out = Map::new();
    // (list key, index) → sub-pairs
    let mut attrs: BTreeMap<u32, (Option<&str>, Option<&str>)> = BTreeMap::new();
    let mut tags: BTreeMap<u32, (Option<&str>, Option<&str>)> = BTreeMap::new();
    let mut lists: BTreeMap<&str, BTreeMap<u32, &str>> = BTreeMap::new();
    let mut msg_attrs: BTreeMap<(&str, u32), Vec<(&str, &str)>> = BTreeMap::new();
    let mut entries: BTreeMap<u32, Vec<(&str, &str)>> = BTreeMap::new();
    for &(k, v) in pairs {
        let mut parts = k.splitn(3, '.');
        let head = parts.next().unwrap_or("");
        let idx = parts.next().and_then(|i| i.parse::<u32>().ok());
        let rest = parts.next();
        match (head, idx, rest) {
            ("Attribute", Some(i), Some("Name")) => attrs.entry(i).or_default().0 = Some(v),
            ("Attribute", Some(i), Some("Value")) => attrs.entry(i).or_default().1 = Some(v),
            ("Tag", Some(i), Some("Key")) => tags.entry(i).or_default().0 = Some(v),
            ("Tag", Some(i), Some("Value")) => tags.entry(i).or_default().1 = Some(v),
            (
                "AttributeName"
                | "MessageAttributeName"
                | "MessageSystemAttributeName"
                | "TagKey"
                | "AWSAccountId"
                | "ActionName",
                Some(i),
                None,
            ) => {
                lists.entry(head).or_default().insert(i, v);
            }
            ("MessageAttribute" | "MessageSystemAttribute", Some(i), Some(r)) => {
                msg_attrs.entry((head, i)).or_default().push((r, v));
            }
            (h, Some(i), Some(r)) if h.ends_with("BatchRequestEntry") => {
                entries.entry(i).or_default().push((r, v));
            }
            (
                "Action" | "Version" | "AWSAccessKeyId" | "SignatureMethod" | "SignatureVersion"
                | "Signature" | "Timestamp" | "Expires" | "SecurityToken",
                _,
                _,
            ) => {}
            (h, _, _) if h.starts_with("X-Amz-") => {}
            _ => {
                let val = if NUMERIC.contains(&k) {
                    v.parse::<i64>()
                        .map(Value::from)
                        .unwrap_or_else(|_| Value::String(v.into()))
                } else {
                    Value::String(v.into())
                };
                out.insert(k.to_owned(), val);
            }
        }
    }
    if !attrs.is_empty() {
        let m: Map<String, Value> = attrs
            .into_values()
            .filter_map(|(n, v)| Some((n?.to_owned(), Value::String(v.unwrap_or("").into()))))
            .collect();
        out.insert("Attributes".into(), Value::Object(m));
    }
    if !tags.is_empty() {
        let m: Map<String, Value> = tags
            .into_values()
            .filter_map(|(n, v)| Some((n?.to_owned(), Value::String(v.unwrap_or("").into()))))
            .collect();
        out.insert("Tags".into(), Value::Object(m.clone()));
        out.insert("tags".into(), Value::Object(m));
    }
    for (head, items) in lists {
        let key = match head {
            "AttributeName" => "AttributeNames",
            "MessageAttributeName" => "MessageAttributeNames",
            "MessageSystemAttributeName" => "MessageSystemAttributeNames",
            "AWSAccountId" => "AWSAccountIds",
            "ActionName" => "Actions",
            _ => "TagKeys",
        };
        out.insert(
            key.into(),
            Value::Array(
                items
                    .into_values()
                    .map(|s| Value::String(s.into()))
                    .collect(),
            ),
        );
    }
    let mut ma: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for ((head, _), fields) in msg_attrs {
        let mut name = None;
        let mut val = Map::new();
        for (r, v) in fields {
            match r {
                "Name" => name = Some(v),
                "Value.StringValue" => {
                    val.insert("StringValue".into(), v.into());
                }
                "Value.BinaryValue" => {
                    val.insert("BinaryValue".into(), v.into());
                }
                "Value.DataType" => {
                    val.insert("DataType".into(), v.into());
                }
                _ => {}
            }
        }
        if let Some(n) = name {
            let key = if head == "MessageAttribute" {
                "MessageAttributes"
            } else {
                "MessageSystemAttributes"
            };
            ma.entry(key)
                .or_default()
                .insert(n.to_owned(), Value::Object(val));
        }
    }
    for (k, m) in ma {
        out.insert(k.into(), Value::Object(m));
    }
    if !entries.is_empty() {
        out.insert(
            "Entries".into(),
            Value::Array(entries.into_values().map(|e| normalise(&e)).collect()),
        );
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_parameters_normalise_to_json_shape() {
        let p: Vec<(String, String)> = [
            ("Action", "SendMessageBatch"),
            ("QueueUrl", "http://h/000000000000/q"),
            ("SendMessageBatchRequestEntry.1.Id", "a"),
            ("SendMessageBatchRequestEntry.1.MessageBody", "hello"),
            ("SendMessageBatchRequestEntry.1.DelaySeconds", "5"),
            (
                "SendMessageBatchRequestEntry.1.MessageAttribute.1.Name",
                "k",
            ),
            (
                "SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType",
                "String",
            ),
            (
                "SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue",
                "v",
            ),
            ("SendMessageBatchRequestEntry.2.Id", "b"),
            ("SendMessageBatchRequestEntry.2.MessageBody", "world"),
            ("Attribute.1.Name", "VisibilityTimeout"),
            ("Attribute.1.Value", "10"),
            ("AttributeName.2", "B"),
            ("AttributeName.1", "A"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let v = query_to_json(&p);
        assert_eq!(v["Entries"][0]["Id"], "a");
        assert_eq!(v["Entries"][0]["DelaySeconds"], 5);
        assert_eq!(
            v["Entries"][0]["MessageAttributes"]["k"]["StringValue"],
            "v"
        );
        assert_eq!(v["Entries"][1]["MessageBody"], "world");
        assert_eq!(v["Attributes"]["VisibilityTimeout"], "10");
        assert_eq!(v["AttributeNames"], json!(["A", "B"]));
        assert!(v.get("Action").is_none());
    }
}
