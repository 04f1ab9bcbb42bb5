//! The query protocol's output: a JSON-shaped answer rendered as the XML AWS sends.

use serde_json::{Map, Value};

pub(super) const XMLNS: &str = "http://queue.amazonaws.com/doc/2012-11-05/";

pub(super) fn xml_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn elem(out: &mut String, name: &str, v: &Value) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    xml_escape(&scalar(v), out);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn render_fields(action: &str, obj: &Map<String, Value>, out: &mut String) {
    for (k, v) in obj {
        match (k.as_str(), v) {
            ("QueueUrls" | "queueUrls", Value::Array(a)) => {
                for u in a {
                    elem(out, "QueueUrl", u);
                }
            }
            ("Attributes", Value::Object(m)) => {
                for (n, val) in m {
                    out.push_str("<Attribute>");
                    elem(out, "Name", &Value::String(n.clone()));
                    elem(out, "Value", val);
                    out.push_str("</Attribute>");
                }
            }
            ("MessageAttributes", Value::Object(m)) => {
                for (n, val) in m {
                    out.push_str("<MessageAttribute>");
                    elem(out, "Name", &Value::String(n.clone()));
                    out.push_str("<Value>");
                    if let Value::Object(f) = val {
                        for (fk, fv) in f {
                            elem(out, fk, fv);
                        }
                    }
                    out.push_str("</Value></MessageAttribute>");
                }
            }
            ("Tags", Value::Object(m)) => {
                for (n, val) in m {
                    out.push_str("<Tag>");
                    elem(out, "Key", &Value::String(n.clone()));
                    elem(out, "Value", val);
                    out.push_str("</Tag>");
                }
            }
            (list @ ("Messages" | "Successful" | "Failed" | "Results"), Value::Array(a)) => {
                let name = match list {
                    "Messages" => "Message".to_string(),
                    "Failed" => "BatchResultErrorEntry".to_string(),
                    _ => format!("{action}ResultEntry"),
                };
                for item in a {
                    out.push('<');
                    out.push_str(&name);
                    out.push('>');
                    if let Value::Object(m) = item {
                        render_fields(action, m, out);
                    }
                    out.push_str("</");
                    out.push_str(&name);
                    out.push('>');
                }
            }
            (_, v) => elem(out, k, v),
        }
    }
}

/// Render a JSON-shaped result as the query protocol's XML response.
pub fn to_xml(action: &str, result: &Value) -> String {
    let mut out = String::with_capacity(512);
    out.push_str("<?xml version=\"1.0\"?>");
    out.push_str(&format!("<{action}Response xmlns=\"{XMLNS}\">"));
    if let Value::Object(m) = result
        && !m.is_empty()
    {
        out.push_str(&format!("<{action}Result>"));
        render_fields(action, m, &mut out);
        out.push_str(&format!("</{action}Result>"));
    } else if matches!(
        action,
        "ReceiveMessage"
            | "ListQueues"
            | "GetQueueAttributes"
            | "ListQueueTags"
            | "ListDeadLetterSourceQueues"
    ) {
        out.push_str(&format!("<{action}Result/>"));
    }
    out.push_str("<ResponseMetadata><RequestId>");
    out.push_str(&crate::request_id());
    out.push_str(&format!(
        "</RequestId></ResponseMetadata></{action}Response>"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn xml_rendering_escapes_and_names_entries() {
        let x = to_xml(
            "SendMessageBatch",
            &json!({"Successful": [{"Id": "a<b"}], "Failed": []}),
        );
        assert!(x.contains(
            "<SendMessageBatchResultEntry><Id>a&lt;b</Id></SendMessageBatchResultEntry>"
        ));
        let x = to_xml("ReceiveMessage", &json!({}));
        assert!(x.contains("<ReceiveMessageResult/>"));
    }
}
