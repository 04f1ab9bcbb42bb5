//! Reading Kubernetes-style manifests (single- and multi-document YAML or JSON) into typed
//! objects, with errors that name the file, the document and the field path.
//!
//! This is the engine behind `kedge check`. It knows nothing about any particular kind: each
//! kind implements [`Manifest`] and is listed once in [`KINDS`]. Registering a new kind (for
//! example Karpenter's `NodePool`) is one line in that table.
//!
//! Error format, shared by every kind and printed verbatim by `kedge check`:
//! `payments.yaml[1] spec.triggers[0].metadata.queueLength: expected an integer, got "two"`
//! where `[1]` is the zero-based index of the document in the file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One problem found in one field of one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted field path from the document root, e.g. `spec.triggers[0].metadata.queueLength`.
    /// `.` means the document as a whole.
    pub path: String,
    pub message: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in one object, returned by [`RawDocument::decode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
pub struct ValidationErrors(pub Vec<FieldError>);

/// A problem located in a file: what `kedge check` prints, one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    pub file: String,
    /// Zero-based document index inside the file; `None` when the file itself is unreadable.
    pub doc: Option<usize>,
    pub path: String,
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.doc {
            Some(doc) => write!(f, "{}[{}] {}: {}", self.file, doc, self.path, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Kubernetes object metadata: the fields kedge reads plus the ones `kubectl get -o yaml`
/// writes, so exported objects are accepted unchanged. Server-managed fields are kept opaque.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_grace_period_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_references: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_fields: Option<serde_json::Value>,
}

impl ObjectMeta {
    /// Problems every named object shares: a missing name, or a name Kubernetes would refuse.
    pub fn validate(&self, errors: &mut Vec<FieldError>) {
        if self.name.is_empty() && self.generate_name.is_none() {
            errors.push(FieldError::new(
                "metadata.name",
                "is required: give the object a name",
            ));
        } else if !self.name.is_empty() && !is_dns_subdomain(&self.name) {
            errors.push(FieldError::new(
                "metadata.name",
                format!(
                    "{:?} is not a valid name: use lower-case letters, digits, '-' and '.', at most 253 characters, starting and ending with a letter or digit",
                    self.name
                ),
            ));
        }
    }
}

fn is_dns_subdomain(s: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    s.len() <= 253
        && s.chars().all(ok_char)
        && s.chars().next().is_some_and(alnum)
        && s.chars().last().is_some_and(alnum)
}

/// A kind kedge reads from manifests. Implement this, then add one line to [`KINDS`].
pub trait Manifest: DeserializeOwned {
    /// The `kind:` value, e.g. `ScaledObject`.
    const KIND: &'static str;
    /// Accepted `apiVersion:` values, e.g. `["keda.sh/v1alpha1"]`.
    const API_VERSIONS: &'static [&'static str];
    /// Semantic checks run after the document deserialised (what an admission webhook
    /// checks). Paths are relative to the document root.
    fn validate(&self) -> Vec<FieldError>;
}

/// A registered kind: what `kedge check` dispatches on.
pub struct KindEntry {
    pub kind: &'static str,
    pub api_versions: &'static [&'static str],
    check: fn(&serde_json::Value) -> Vec<FieldError>,
}

impl KindEntry {
    pub const fn of<T: Manifest>() -> KindEntry {
        KindEntry {
            kind: T::KIND,
            api_versions: T::API_VERSIONS,
            check: check_value::<T>,
        }
    }
}

/// Every kind `kedge check` understands. Add new kinds here (one line each).
pub static KINDS: &[KindEntry] = &[
    KindEntry::of::<crate::keda::ScaledObject>(),
    KindEntry::of::<crate::keda::ScaledJob>(),
    KindEntry::of::<crate::keda::TriggerAuthentication>(),
    KindEntry::of::<crate::keda::ClusterTriggerAuthentication>(),
    KindEntry::of::<crate::karpenter::NodePoolDocument>(),
    KindEntry::of::<crate::karpenter::NodeClaim>(),
    KindEntry::of::<crate::ec2nodeclass::EC2NodeClassDocument>(),
];

fn check_value<T: Manifest>(value: &serde_json::Value) -> Vec<FieldError> {
    match decode_value::<T>(value) {
        Ok(_) => Vec::new(),
        Err(ValidationErrors(errors)) => errors,
    }
}

/// Deserialise `value` as `T` (reporting the first structural error with its path), then run
/// `T::validate`.
pub fn decode_value<T: Manifest>(value: &serde_json::Value) -> Result<T, ValidationErrors> {
    let obj: T = serde_path_to_error::deserialize(value)
        .map_err(|e| ValidationErrors(vec![serde_field_error(&e)]))?;
    let errors = obj.validate();
    if errors.is_empty() {
        Ok(obj)
    } else {
        Err(ValidationErrors(errors))
    }
}

/// Turn a serde error into a field error, moving the name of an unknown field into the path
/// so the path points at the offending field rather than at its parent.
pub fn serde_field_error(e: &serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    let mut path = e.path().to_string();
    let inner = e.inner().to_string();
    // serde_json appends " at line x column y" which is meaningless for a converted YAML value.
    let inner = match inner.find(" at line ") {
        Some(i) => inner[..i].to_string(),
        None => inner,
    };
    if let Some(rest) = inner.strip_prefix("unknown field `")
        && let Some(end) = rest.find('`')
    {
        let field = &rest[..end];
        // serde_path_to_error already ends the path with the unknown key; older versions
        // stop at the parent.
        if !(path == field || path.ends_with(&format!(".{field}"))) {
            path = if path == "." {
                field.to_string()
            } else {
                format!("{path}.{field}")
            };
        }
        let expected = rest[end + 1..].trim_start_matches(", ");
        return FieldError::new(
            path,
            format!(
                "unknown field, not supported by kedge ({expected}); remove it or check its spelling"
            ),
        );
    }
    if let Some(rest) = inner.strip_prefix("missing field `")
        && let Some(end) = rest.find('`')
    {
        let field = &rest[..end];
        path = if path == "." {
            field.to_string()
        } else {
            format!("{path}.{field}")
        };
        return FieldError::new(path, "is required");
    }
    if inner.starts_with("invalid type") && inner.ends_with("expected a string") {
        // Kubernetes declares annotations, labels and trigger metadata as string maps; YAML
        // reads an unquoted 2 or true as a number or boolean.
        return FieldError::new(
            path,
            format!("{inner}; Kubernetes requires a string here: quote the value (e.g. \"2\")"),
        );
    }
    FieldError::new(path, inner)
}

/// One document of a manifest file, before it is decoded into a kind.
#[derive(Debug, Clone)]
pub struct RawDocument {
    /// Zero-based position in the file (empty documents keep their number).
    pub index: usize,
    pub value: serde_json::Value,
}

impl RawDocument {
    pub fn kind(&self) -> Option<&str> {
        self.value.get("kind").and_then(|v| v.as_str())
    }
    pub fn api_version(&self) -> Option<&str> {
        self.value.get("apiVersion").and_then(|v| v.as_str())
    }
    /// Decode as `T`, checking `kind`/`apiVersion` first.
    pub fn decode<T: Manifest>(&self) -> Result<T, ValidationErrors> {
        if self.kind() != Some(T::KIND) {
            return Err(ValidationErrors(vec![FieldError::new(
                "kind",
                format!(
                    "expected {:?}, got {:?}",
                    T::KIND,
                    self.kind().unwrap_or("")
                ),
            )]));
        }
        decode_value::<T>(&self.value)
    }
}

/// Errors reading a file at all (before any document can be examined).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read file: {0}")]
    Io(#[from] std::io::Error),
    /// Syntax error in a document; `doc` is the index of the failing document.
    #[error("{message}")]
    Syntax { doc: usize, message: String },
}

/// Split text into documents. JSON is detected by a leading `{` or `[` and may hold several
/// concatenated objects; everything else is read as (multi-document) YAML. Null/empty
/// documents are dropped but keep their index.
pub fn parse_documents(text: &str) -> Result<Vec<RawDocument>, ReadError> {
    let trimmed = text.trim_start();
    let mut docs = Vec::new();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let stream = serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>();
        for (index, value) in stream.enumerate() {
            let value = value.map_err(|e| ReadError::Syntax {
                doc: index,
                message: format!("invalid JSON: {e}"),
            })?;
            push_value(&mut docs, index, value);
        }
        return Ok(docs);
    }
    for (index, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let yaml = serde_yaml_ng::Value::deserialize(de).map_err(|e| ReadError::Syntax {
            doc: index,
            message: format!("invalid YAML: {e}"),
        })?;
        let value = serde_json::to_value(&yaml).map_err(|e| ReadError::Syntax {
            doc: index,
            message: format!("unsupported YAML (map keys must be strings): {e}"),
        })?;
        push_value(&mut docs, index, value);
    }
    Ok(docs)
}

/// A Kubernetes `kind: List` (what `kubectl get -o yaml` prints for several objects) is
/// flattened: its items become documents sharing the list's index.
fn push_value(docs: &mut Vec<RawDocument>, index: usize, value: serde_json::Value) {
    if value.is_null() {
        return;
    }
    if let serde_json::Value::Array(items) = value {
        for item in items {
            docs.push(RawDocument { index, value: item });
        }
        return;
    }
    if value.get("kind").and_then(|k| k.as_str()) == Some("List")
        && let Some(serde_json::Value::Array(items)) = value.get("items")
    {
        for item in items {
            docs.push(RawDocument {
                index,
                value: item.clone(),
            });
        }
        return;
    }
    docs.push(RawDocument { index, value });
}

/// Read a manifest file into documents.
pub fn read_file(path: &Path) -> Result<Vec<RawDocument>, ReadError> {
    let text = std::fs::read_to_string(path)?;
    parse_documents(&text)
}

/// API groups whose kinds `kedge check` knows: KEDA's and Karpenter's. A document of any other
/// group (a `Secret`, a `Deployment` kept in the same file) is skipped, not an error; an unknown
/// kind of these groups is an error (kedge would not act on it).
pub const CHECKED_GROUPS: &[&str] = &[
    "keda.sh",
    // KEDA 1.x's group: its objects are KEDA's, in an apiVersion kedge does not read.
    "keda.k8s.io",
    "eventing.keda.sh",
    "karpenter.sh",
    "karpenter.k8s.aws",
];

/// What checking one document found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A kind kedge checks; the problems found (empty when valid).
    Checked(Vec<FieldError>),
    /// A kind that is neither KEDA's nor Karpenter's: not checked.
    Skipped { kind: String },
}

/// Check one document against the registered kinds; skipped kinds yield no errors (see
/// [`check_document_outcome`]).
pub fn check_document(doc: &RawDocument) -> Vec<FieldError> {
    match check_document_outcome(doc) {
        Outcome::Checked(e) => e,
        Outcome::Skipped { .. } => Vec::new(),
    }
}

/// The API group of an `apiVersion` (`""` for the core group's `v1`).
fn api_group(api_version: &str) -> &str {
    api_version
        .rsplit_once('/')
        .map(|(g, _)| g)
        .unwrap_or_default()
}

/// Check one document: errors for a kind kedge knows, or [`Outcome::Skipped`] for other kinds.
pub fn check_document_outcome(doc: &RawDocument) -> Outcome {
    let serde_json::Value::Object(_) = &doc.value else {
        return Outcome::Checked(vec![FieldError::new(
            ".",
            "expected a Kubernetes object (a mapping with apiVersion, kind, metadata, spec)",
        )]);
    };
    let Some(kind) = doc.kind() else {
        return Outcome::Checked(vec![FieldError::new(
            "kind",
            format!("is required; kedge check understands {}", known_kinds()),
        )]);
    };
    let group = doc.api_version().map(api_group);
    let ours = group.is_some_and(|g| CHECKED_GROUPS.contains(&g));
    let Some(entry) = KINDS.iter().find(|k| k.kind == kind) else {
        if ours {
            return Outcome::Checked(vec![FieldError::new(
                "kind",
                format!(
                    "unsupported kind {kind:?} of {}; kedge check understands {}",
                    doc.api_version().unwrap_or(""),
                    known_kinds()
                ),
            )]);
        }
        return Outcome::Skipped {
            kind: kind.to_string(),
        };
    };
    match doc.api_version() {
        Some(v) if entry.api_versions.contains(&v) => {}
        // Same kind name in an unrelated group (e.g. a `ScaledObject` of another project).
        Some(v) if !ours && !v.is_empty() => {
            return Outcome::Skipped {
                kind: kind.to_string(),
            };
        }
        other => {
            return Outcome::Checked(vec![FieldError::new(
                "apiVersion",
                format!(
                    "expected {} for kind {kind}, got {:?}",
                    entry.api_versions.join(" or "),
                    other.unwrap_or("")
                ),
            )]);
        }
    }
    Outcome::Checked((entry.check)(&doc.value))
}

fn known_kinds() -> String {
    KINDS
        .iter()
        .map(|k| format!("{} ({})", k.kind, k.api_versions.join(", ")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A document and the file it came from, for checks that look across documents.
pub struct Located<'a> {
    pub file: &'a str,
    pub doc: &'a RawDocument,
}

/// Checks across all documents given to one `kedge check` run (e.g. two ScaledObjects
/// scaling the same workload). Add new ones here.
pub type SetCheck = fn(&[Located<'_>]) -> Vec<ManifestError>;

pub static SET_CHECKS: &[SetCheck] = &[crate::keda::duplicate_scale_targets];

fn run_set_checks(docs: &[Located<'_>]) -> Vec<ManifestError> {
    SET_CHECKS.iter().flat_map(|c| c(docs)).collect()
}

/// Check already-loaded text as if it were the file `name`.
pub fn check_text(name: &str, text: &str) -> Vec<ManifestError> {
    let mut out = check_text_documents(name, text);
    if let Ok(docs) = parse_documents(text) {
        let located: Vec<Located<'_>> =
            docs.iter().map(|doc| Located { file: name, doc }).collect();
        out.extend(run_set_checks(&located));
    }
    out
}

fn check_text_documents(name: &str, text: &str) -> Vec<ManifestError> {
    check_text_documents_with(name, text, &CheckOptions::default(), &mut Vec::new())
}

fn check_text_documents_with(
    name: &str,
    text: &str,
    opts: &CheckOptions,
    skipped: &mut Vec<Skipped>,
) -> Vec<ManifestError> {
    let docs = match parse_documents(text) {
        Ok(docs) => docs,
        Err(ReadError::Syntax { doc, message }) => {
            return vec![ManifestError {
                file: name.to_string(),
                doc: Some(doc),
                path: ".".into(),
                message,
            }];
        }
        Err(e) => {
            return vec![ManifestError {
                file: name.to_string(),
                doc: None,
                path: ".".into(),
                message: e.to_string(),
            }];
        }
    };
    let mut out = Vec::new();
    if docs.is_empty() {
        out.push(ManifestError {
            file: name.to_string(),
            doc: None,
            path: ".".into(),
            message: "contains no documents".into(),
        });
    }
    for doc in &docs {
        let errors = match check_document_outcome(doc) {
            Outcome::Checked(errors) => errors,
            Outcome::Skipped { kind } if opts.strict => vec![FieldError::new(
                "kind",
                format!(
                    "{kind} ({}) is not a KEDA or Karpenter kind (--strict makes skipped kinds errors)",
                    doc.api_version().unwrap_or("no apiVersion")
                ),
            )],
            Outcome::Skipped { kind } => {
                skipped.push(Skipped {
                    file: name.to_string(),
                    doc: doc.index,
                    kind,
                });
                Vec::new()
            }
        };
        for e in errors {
            out.push(ManifestError {
                file: name.to_string(),
                doc: Some(doc.index),
                path: e.path,
                message: e.message,
            });
        }
    }
    out
}

/// How `kedge check` treats what it does not know.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    /// Documents of other kinds (not KEDA's or Karpenter's) are errors instead of skipped.
    pub strict: bool,
}

/// A document that was not checked because its kind is neither KEDA's nor Karpenter's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub file: String,
    pub doc: usize,
    pub kind: String,
}

impl fmt::Display for Skipped {
    /// `file[doc] kind Secret: skipped`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}] kind {}: skipped", self.file, self.doc, self.kind)
    }
}

/// Result of checking a set of files.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub files: usize,
    pub documents: usize,
    pub errors: Vec<ManifestError>,
    /// Documents of other kinds, not checked (empty with `strict`).
    pub skipped: Vec<Skipped>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Check every file: the function `kedge check FILE...` calls. Files are reported by the
/// path exactly as given.
pub fn check_files<P: AsRef<Path>>(paths: &[P]) -> CheckReport {
    check_files_with(paths, &CheckOptions::default())
}

/// [`check_files`] with options (`--strict`).
pub fn check_files_with<P: AsRef<Path>>(paths: &[P], opts: &CheckOptions) -> CheckReport {
    let mut report = CheckReport::default();
    let mut all: Vec<(String, RawDocument)> = Vec::new();
    for p in paths {
        let p = p.as_ref();
        let name = p.display().to_string();
        report.files += 1;
        match std::fs::read_to_string(p) {
            Ok(text) => {
                let docs = parse_documents(&text).unwrap_or_default();
                report.documents += docs.len();
                report.errors.extend(check_text_documents_with(
                    &name,
                    &text,
                    opts,
                    &mut report.skipped,
                ));
                all.extend(docs.into_iter().map(|d| (name.clone(), d)));
            }
            Err(e) => report.errors.push(ManifestError {
                file: name,
                doc: None,
                path: ".".into(),
                message: format!("cannot read file: {e}"),
            }),
        }
    }
    let located: Vec<Located<'_>> = all
        .iter()
        .map(|(file, doc)| Located { file, doc })
        .collect();
    report.errors.extend(run_set_checks(&located));
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_yaml_keeps_indices() {
        let docs = parse_documents("a: 1\n---\n---\nb: 2\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].index, 0);
        assert_eq!(docs[1].index, 2);
    }

    #[test]
    fn json_stream_is_split() {
        let docs = parse_documents("{\"a\":1}\n{\"b\":2}").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].index, 1);
    }

    #[test]
    fn other_kinds_are_skipped_and_unknown_keda_kinds_named() {
        assert!(check_text("x.yaml", "apiVersion: v1\nkind: Pod\n").is_empty());
        let doc = &parse_documents("apiVersion: v1\nkind: Secret\n").unwrap()[0];
        assert_eq!(
            check_document_outcome(doc),
            Outcome::Skipped {
                kind: "Secret".into()
            }
        );
        let errs = check_text(
            "x.yaml",
            "apiVersion: eventing.keda.sh/v1alpha1\nkind: CloudEventSource\n",
        );
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0]
                .to_string()
                .starts_with("x.yaml[0] kind: unsupported kind \"CloudEventSource\""),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn yaml_syntax_error_has_document_index() {
        let errs = check_text("x.yaml", "a: 1\n---\nb: [\n");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].doc, Some(1));
    }
}
