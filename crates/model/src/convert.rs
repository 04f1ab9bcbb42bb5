//! Conversion of whole objects between the API versions kedge's CRDs serve, the way the
//! upstream conversion webhooks did it (Karpenter 1.0 served `karpenter.sh/v1beta1` and
//! `karpenter.k8s.aws/v1beta1` beside v1 and converted between them).
//!
//! The conversions work on JSON objects as the API server sends them in a `ConversionReview`
//! (metadata with every server field, status included): what a version does not have is
//! dropped, as upstream's typed conversion drops it, and what upstream keeps in annotations to
//! survive a round trip is kept in the same annotations. The per-kind functions live next to
//! their types ([`crate::karpenter::convert`], [`crate::ec2nodeclass::convert`]); [`convert`]
//! picks one by kind and versions.

use serde_json::{Map, Value};

/// Why an object could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversionError {
    /// No conversion between these versions of this kind.
    #[error("cannot convert {kind} from {from} to {to}")]
    Unsupported {
        kind: String,
        from: String,
        to: String,
    },
    /// A field the conversion reads has the wrong shape.
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl ConversionError {
    /// As a field-path error (`kedge check`'s form).
    pub fn field_error(&self) -> crate::manifest::FieldError {
        match self {
            ConversionError::Invalid { path, message } => {
                crate::manifest::FieldError::new(path.as_str(), message.as_str())
            }
            other => crate::manifest::FieldError::new("apiVersion", other.to_string()),
        }
    }

    pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConversionError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Convert `obj` (any served kind and version) to `desired` (an `apiVersion`). An object
/// already at `desired` comes back unchanged.
pub fn convert(obj: &Value, desired: &str) -> Result<Value, ConversionError> {
    let from = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    if from == desired {
        return Ok(obj.clone());
    }
    use crate::{ec2nodeclass as ec2, karpenter as k};
    match (kind, from, desired) {
        ("NodePool", k::API_VERSION_V1BETA1, k::API_VERSION_V1) => k::convert::nodepool_to_v1(obj),
        ("NodePool", k::API_VERSION_V1, k::API_VERSION_V1BETA1) => {
            k::convert::nodepool_to_v1beta1(obj)
        }
        ("NodeClaim", k::API_VERSION_V1BETA1, k::API_VERSION_V1) => {
            k::convert::nodeclaim_to_v1(obj)
        }
        ("NodeClaim", k::API_VERSION_V1, k::API_VERSION_V1BETA1) => {
            k::convert::nodeclaim_to_v1beta1(obj)
        }
        ("EC2NodeClass", ec2::API_VERSION_V1BETA1, ec2::API_VERSION_V1) => ec2::convert::to_v1(obj),
        ("EC2NodeClass", ec2::API_VERSION_V1, ec2::API_VERSION_V1BETA1) => {
            ec2::convert::to_v1beta1(obj)
        }
        _ => Err(ConversionError::Unsupported {
            kind: kind.to_string(),
            from: from.to_string(),
            to: desired.to_string(),
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the per-kind conversions
// ---------------------------------------------------------------------------------------------

/// The object at `key` of `m` (an absent or `null` field reads as empty; another type is an
/// error naming `path`).
pub(crate) fn object<'a>(
    m: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a Map<String, Value>>, ConversionError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(ConversionError::invalid(
            format!("{path}.{key}"),
            "must be an object",
        )),
    }
}

/// The array at `key` of `m` (absent or `null`: `None`).
pub(crate) fn array<'a>(
    m: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a Vec<Value>>, ConversionError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(_) => Err(ConversionError::invalid(
            format!("{path}.{key}"),
            "must be an array",
        )),
    }
}

/// The string at `key` of `m` (absent, `null` or not a string: `None`).
pub(crate) fn string<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str)
}

/// Copy the fields `keys` of `from` that are present (and not `null`) into `to`.
pub(crate) fn copy(from: &Map<String, Value>, to: &mut Map<String, Value>, keys: &[&str]) {
    for k in keys {
        if let Some(v) = from.get(*k).filter(|v| !v.is_null()) {
            to.insert((*k).to_string(), v.clone());
        }
    }
}

/// Each object of `items` (at `path`) with only the fields `keys`.
pub(crate) fn pick_each(
    items: &[Value],
    keys: &[&str],
    path: &str,
) -> Result<Vec<Value>, ConversionError> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Object(o) => {
                let mut out = Map::new();
                copy(o, &mut out, keys);
                Ok(Value::Object(out))
            }
            _ => Err(ConversionError::invalid(
                format!("{path}[{i}]"),
                "must be an object",
            )),
        })
        .collect()
}

/// An object's metadata without its annotations, and the annotations.
pub(crate) type MetadataParts = (Map<String, Value>, Map<String, Value>);

/// The object's metadata (a copy; empty when absent) and its annotations taken out of it.
pub(crate) fn metadata_and_annotations(
    obj: &Map<String, Value>,
) -> Result<MetadataParts, ConversionError> {
    let mut metadata = object(obj, "metadata", "")?.cloned().unwrap_or_default();
    let annotations = match metadata.remove("annotations") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(a)) => a,
        Some(_) => {
            return Err(ConversionError::invalid(
                "metadata.annotations",
                "must be an object",
            ));
        }
    };
    Ok((metadata, annotations))
}

/// Put `annotations` back into `metadata` (left out when empty, as the API server does).
pub(crate) fn with_annotations(
    mut metadata: Map<String, Value>,
    annotations: Map<String, Value>,
) -> Value {
    if !annotations.is_empty() {
        metadata.insert("annotations".into(), Value::Object(annotations));
    }
    Value::Object(metadata)
}

/// The whole object as a map, or an error when it is not an object.
pub(crate) fn root(obj: &Value) -> Result<&Map<String, Value>, ConversionError> {
    obj.as_object()
        .ok_or_else(|| ConversionError::invalid("", "the object is not a JSON object"))
}

/// A new object with `apiVersion`, `kind`, `metadata`, `spec` and (when not empty) `status`.
pub(crate) fn assemble(
    api_version: &str,
    kind: &str,
    metadata: Value,
    spec: Map<String, Value>,
    status: Option<Map<String, Value>>,
) -> Value {
    let mut out = Map::new();
    out.insert("apiVersion".into(), api_version.into());
    out.insert("kind".into(), kind.into());
    out.insert("metadata".into(), metadata);
    out.insert("spec".into(), Value::Object(spec));
    if let Some(s) = status.filter(|s| !s.is_empty()) {
        out.insert("status".into(), Value::Object(s));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn same_version_is_unchanged_and_unknown_pairs_are_refused() {
        let np = json!({"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "spec": {"x": 1}});
        assert_eq!(convert(&np, "karpenter.sh/v1").unwrap(), np);
        let e = convert(&np, "karpenter.sh/v1alpha5").unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot convert NodePool from karpenter.sh/v1 to karpenter.sh/v1alpha5"
        );
        let so = json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject"});
        assert!(matches!(
            convert(&so, "keda.sh/v1"),
            Err(ConversionError::Unsupported { .. })
        ));
    }
}
