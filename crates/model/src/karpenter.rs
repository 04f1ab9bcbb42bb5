//! Karpenter's resource formats: `NodePool` and `NodeClaim` (karpenter.sh/v1), with the
//! upstream defaults, the CRD's validation rules (OpenAPI patterns and CEL) as field-path
//! errors, and conversion of the v1beta1 `NodePool` that Karpenter 0.32–0.37 used.
//!
//! Every struct denies unknown fields so a typo or an unsupported field is an error that names
//! it instead of being silently ignored (`metadata` and `status` excepted: they carry server
//! bookkeeping that `kubectl get -o yaml` includes).
//!
//! Also here because validation needs them: [`KDuration`] (Go-style `720h`, `1h30m`, `Never`)
//! and [`CronSchedule`] (budget windows; robfig/cron standard syntax in UTC).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::kube::{Labels, NodeSelectorRequirement, ObjectMeta, Operator, ResourceList, Taint};

pub mod convert;

pub const API_VERSION_V1: &str = "karpenter.sh/v1";
pub const API_VERSION_V1BETA1: &str = "karpenter.sh/v1beta1";

// Well-known labels (karpenter.sh/v1 and the AWS provider's).
pub const LABEL_NODEPOOL: &str = "karpenter.sh/nodepool";
pub const LABEL_CAPACITY_TYPE: &str = "karpenter.sh/capacity-type";
pub const LABEL_INSTANCE_TYPE: &str = "node.kubernetes.io/instance-type";
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
pub const LABEL_REGION: &str = "topology.kubernetes.io/region";
pub const LABEL_ARCH: &str = "kubernetes.io/arch";
pub const LABEL_OS: &str = "kubernetes.io/os";
pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
pub const LABEL_INSTANCE_CATEGORY: &str = "karpenter.k8s.aws/instance-category";
pub const LABEL_INSTANCE_FAMILY: &str = "karpenter.k8s.aws/instance-family";
pub const LABEL_INSTANCE_GENERATION: &str = "karpenter.k8s.aws/instance-generation";
pub const LABEL_INSTANCE_SIZE: &str = "karpenter.k8s.aws/instance-size";
pub const LABEL_INSTANCE_CPU: &str = "karpenter.k8s.aws/instance-cpu";
pub const LABEL_INSTANCE_MEMORY: &str = "karpenter.k8s.aws/instance-memory";
pub const CAPACITY_TYPE_SPOT: &str = "spot";
pub const CAPACITY_TYPE_ON_DEMAND: &str = "on-demand";
pub const CAPACITY_TYPE_RESERVED: &str = "reserved";
/// Annotation carrying the NodePool template hash a NodeClaim was launched from (drift).
pub const ANNOTATION_NODEPOOL_HASH: &str = "karpenter.sh/nodepool-hash";
/// Where v1 conversion keeps the v1beta1 `kubelet` block (it moved to the NodeClass in v1).
pub const ANNOTATION_KUBELET_COMPAT: &str = "compatibility.karpenter.sh/v1beta1-kubelet-conversion";

/// Label keys a NodePool may not set in requirements or template labels (Karpenter's
/// `RestrictedLabels`): they are set by the system.
const RESTRICTED_LABELS: &[&str] = &[
    LABEL_NODEPOOL,
    LABEL_HOSTNAME,
    "karpenter.sh/initialized",
    "karpenter.sh/registered",
];
/// Label domains a user may not use, except for the well-known labels below.
const RESTRICTED_DOMAINS: &[&str] = &[
    "kubernetes.io",
    "k8s.io",
    "karpenter.sh",
    "karpenter.k8s.aws",
];
const WELL_KNOWN_LABELS: &[&str] = &[
    LABEL_CAPACITY_TYPE,
    LABEL_INSTANCE_TYPE,
    "beta.kubernetes.io/instance-type",
    LABEL_ZONE,
    "failure-domain.beta.kubernetes.io/zone",
    LABEL_REGION,
    LABEL_ARCH,
    "beta.kubernetes.io/arch",
    LABEL_OS,
    "beta.kubernetes.io/os",
    "node.kubernetes.io/windows-build",
    LABEL_INSTANCE_CATEGORY,
    LABEL_INSTANCE_FAMILY,
    LABEL_INSTANCE_GENERATION,
    LABEL_INSTANCE_SIZE,
    LABEL_INSTANCE_CPU,
    LABEL_INSTANCE_MEMORY,
    "karpenter.k8s.aws/instance-cpu-manufacturer",
    "karpenter.k8s.aws/instance-hypervisor",
    "karpenter.k8s.aws/instance-encryption-in-transit-supported",
    "karpenter.k8s.aws/instance-network-bandwidth",
    "karpenter.k8s.aws/instance-ebs-bandwidth",
    "karpenter.k8s.aws/instance-local-nvme",
    "karpenter.k8s.aws/instance-gpu-name",
    "karpenter.k8s.aws/instance-gpu-manufacturer",
    "karpenter.k8s.aws/instance-gpu-count",
    "karpenter.k8s.aws/instance-gpu-memory",
    "karpenter.k8s.aws/instance-accelerator-name",
    "karpenter.k8s.aws/instance-accelerator-manufacturer",
    "karpenter.k8s.aws/instance-accelerator-count",
    "karpenter.k8s.aws/capacity-reservation-id",
];

/// Is `key` one of the well-known labels a NodePool may constrain?
pub fn is_well_known_label(key: &str) -> bool {
    WELL_KNOWN_LABELS.contains(&key)
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// One problem in a document, located by its field path (`spec.disruption.budgets[0].nodes`);
/// the same type `kedge check` prints for every kind.
pub use crate::manifest::FieldError;

/// A NodePool or NodeClaim document that could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KarpenterError {
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<FieldError>),
    #[error("not valid YAML/JSON: {0}")]
    Syntax(String),
}

impl KarpenterError {
    pub fn field_errors(&self) -> Vec<FieldError> {
        match self {
            KarpenterError::Invalid(v) => v.clone(),
            KarpenterError::Syntax(m) => vec![FieldError::new(".", m.clone())],
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Durations and cron
// ---------------------------------------------------------------------------------------------

/// A Kubernetes/Go duration as Karpenter accepts it (`30s`, `5m`, `720h`, `1h30m`), or
/// `Never` where the field allows it (`expireAfter`, `consolidateAfter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KDuration {
    Never,
    Secs(u64),
}

impl KDuration {
    pub fn secs(self) -> Option<u64> {
        match self {
            KDuration::Never => None,
            KDuration::Secs(s) => Some(s),
        }
    }
    pub fn millis(self) -> Option<u64> {
        self.secs().map(|s| s.saturating_mul(1000))
    }
    /// Parse Go duration syntax restricted to h/m/s integers (Karpenter's CRD pattern
    /// `^(([0-9]+(s|m|h))+|Never)$`), accepting `ms` too since metav1.Duration does.
    pub fn parse(s: &str, allow_never: bool) -> Result<KDuration, String> {
        if s == "Never" {
            return if allow_never {
                Ok(KDuration::Never)
            } else {
                Err("`Never` is not allowed here; use a duration such as 30s, 5m or 48h".into())
            };
        }
        let bad = || {
            format!(
                "`{s}` is not a duration; write e.g. 30s, 5m, 720h or 1h30m{}",
                if allow_never { ", or Never" } else { "" }
            )
        };
        if s.is_empty() {
            return Err(bad());
        }
        let mut total_ms: u64 = 0;
        let mut rest = s;
        while !rest.is_empty() {
            let n_end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if n_end == 0 {
                return Err(bad());
            }
            let n: u64 = rest[..n_end].parse().map_err(|_| bad())?;
            rest = &rest[n_end..];
            let (mult, len) = if rest.starts_with("ms") {
                (1, 2)
            } else if rest.starts_with('h') {
                (3_600_000, 1)
            } else if rest.starts_with('m') {
                (60_000, 1)
            } else if rest.starts_with('s') {
                (1000, 1)
            } else {
                return Err(bad());
            };
            total_ms = total_ms.saturating_add(n.saturating_mul(mult));
            rest = &rest[len..];
        }
        Ok(KDuration::Secs(total_ms / 1000))
    }
}

impl fmt::Display for KDuration {
    /// Go's `time.Duration.String()` shape (`720h0m0s`), which Kubernetes echoes back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KDuration::Never => write!(f, "Never"),
            KDuration::Secs(0) => write!(f, "0s"),
            KDuration::Secs(s) => {
                let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
                if h > 0 {
                    write!(f, "{h}h{m}m{sec}s")
                } else if m > 0 {
                    write!(f, "{m}m{sec}s")
                } else {
                    write!(f, "{sec}s")
                }
            }
        }
    }
}

impl Serialize for KDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// Deserializes any string; the pattern check happens in validation so the error carries the
/// field path and all problems are reported at once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DurationField {
    pub raw: String,
}

impl DurationField {
    pub fn new(s: &str) -> Self {
        DurationField { raw: s.into() }
    }
    pub fn get(&self, allow_never: bool) -> Result<KDuration, String> {
        KDuration::parse(&self.raw, allow_never)
    }
    /// The value, treating anything unparsable as `Never` (validation already rejected it).
    pub fn or_never(&self) -> KDuration {
        KDuration::parse(&self.raw, true).unwrap_or(KDuration::Never)
    }
}

impl Serialize for DurationField {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

/// A Go duration string (`720h`, `Never`); the syntax is checked by validation, with the
/// field path, rather than by a schema pattern.
#[cfg(feature = "schema")]
impl schemars::JsonSchema for DurationField {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DurationField".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string" })
    }
}

impl<'de> Deserialize<'de> for DurationField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(DurationField {
            raw: String::deserialize(d)?,
        })
    }
}

/// A five-field cron schedule (minute hour day-of-month month day-of-week) evaluated in UTC,
/// with robfig/cron's names (`jan`, `mon`) and descriptors (`@daily`, `@hourly`, ...), which is
/// what Karpenter's disruption budgets use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    minute: u64,
    hour: u32,
    dom: u32,
    month: u16,
    dow: u8,
    /// Vixie-cron rule: when both day fields are restricted, either may match.
    dom_star: bool,
    dow_star: bool,
}

impl CronSchedule {
    pub fn parse(s: &str) -> Result<CronSchedule, String> {
        let expanded = match s.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "`{s}` is not a cron schedule; write five fields (minute hour day-of-month month day-of-week), e.g. \"0 9 * * mon-fri\", or @daily"
            ));
        }
        const MONTHS: &[&str] = &[
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ];
        const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
        let minute = parse_cron_field(fields[0], 0, 59, &[], 0)?;
        let hour = parse_cron_field(fields[1], 0, 23, &[], 0)? as u32;
        let dom = parse_cron_field(fields[2], 1, 31, &[], 0)? as u32;
        let month = parse_cron_field(fields[3], 1, 12, MONTHS, 1)? as u16;
        let mut dow = parse_cron_field(fields[4], 0, 7, DAYS, 0)?;
        if dow & (1 << 7) != 0 {
            dow |= 1; // 7 is Sunday too
        }
        Ok(CronSchedule {
            minute,
            hour,
            dom,
            month,
            dow: (dow & 0x7f) as u8,
            dom_star: fields[2].starts_with('*') || fields[2] == "?",
            dow_star: fields[4].starts_with('*') || fields[4] == "?",
        })
    }

    /// Does the schedule fire at the minute starting at `epoch_minute` (UTC)?
    pub fn fires_at_minute(&self, epoch_minute: u64) -> bool {
        let minute = epoch_minute % 60;
        let hour = ((epoch_minute / 60) % 24) as u32;
        let days = (epoch_minute / 1440) as i64;
        let (_, month, day) = civil_from_days(days);
        let weekday = ((days + 4).rem_euclid(7)) as u32; // 1970-01-01 was a Thursday
        if self.minute & (1 << minute) == 0
            || self.hour & (1 << hour) == 0
            || self.month & (1 << month) == 0
        {
            return false;
        }
        let dom_ok = self.dom & (1 << day) != 0;
        let dow_ok = self.dow & (1 << weekday) != 0;
        if self.dom_star || self.dow_star {
            dom_ok && dow_ok
        } else {
            dom_ok || dow_ok
        }
    }

    /// Is `now_ms` inside a window that opened at a firing of the schedule and lasts
    /// `duration_secs`? (Karpenter: a budget is active from each firing for `duration`.)
    pub fn active_at(&self, now_ms: u64, duration_secs: u64) -> bool {
        let now_min = now_ms / 60_000;
        let span = duration_secs.div_ceil(60);
        let earliest = now_min.saturating_sub(span);
        // Walk back minute by minute: at most `duration` minutes (a week is 10,080 checks).
        (earliest..=now_min)
            .rev()
            .any(|m| self.fires_at_minute(m) && (now_ms < m * 60_000 + duration_secs * 1000))
    }
}

fn parse_cron_field(
    f: &str,
    lo: u64,
    hi: u64,
    names: &[&str],
    name_base: u64,
) -> Result<u64, String> {
    let bad = |why: &str| {
        format!(
            "cron field `{f}` {why}; allowed values are {lo}-{hi}{}",
            if names.is_empty() {
                String::new()
            } else {
                format!(" or names like {}", names[0])
            }
        )
    };
    let value = |s: &str| -> Result<u64, String> {
        if let Ok(v) = s.parse::<u64>() {
            return Ok(v);
        }
        names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(s))
            .map(|i| i as u64 + name_base)
            .ok_or_else(|| bad("has an unknown value"))
    };
    let mut bits = 0u64;
    for part in f.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u64>().map_err(|_| bad("has a bad step"))?),
            None => (part, 1),
        };
        if step == 0 {
            return Err(bad("has a zero step"));
        }
        let (a, b) = if range == "*" || range == "?" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let v = value(range)?;
            (v, if part.contains('/') { hi } else { v })
        };
        if a < lo || b > hi || a > b {
            return Err(bad("is out of range"));
        }
        let mut v = a;
        while v <= b {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

/// Howard Hinnant's days-to-civil: (year, month 1-12, day 1-31) for days since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

// ---------------------------------------------------------------------------------------------
// NodePool v1
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodePool {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub spec: NodePoolSpec,
    /// Server-written; accepted so `kubectl get -o yaml` output round-trips, never read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodePoolSpec {
    pub template: NodeClaimTemplate,
    #[serde(default)]
    pub disruption: Disruption,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceList>,
    /// 1..=100; higher is tried first. Unset sorts as 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    /// Karpenter 1.8+ static capacity: keep exactly this many nodes (no consolidation by
    /// utilization, no weight; only `limits.nodes`). Unset: dynamic provisioning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateMetadata {
    #[serde(default, skip_serializing_if = "crate::map::Map::is_empty")]
    pub labels: Labels,
    #[serde(default, skip_serializing_if = "crate::map::Map::is_empty")]
    pub annotations: Labels,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeClaimTemplate {
    #[serde(default)]
    pub metadata: TemplateMetadata,
    pub spec: NodeClaimTemplateSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeClaimTemplateSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub startup_taints: Vec<Taint>,
    #[serde(default)]
    pub requirements: Vec<RequirementWithMinValues>,
    pub node_class_ref: NodeClassReference,
    #[serde(default = "default_expire_after")]
    pub expire_after: DurationField,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period: Option<DurationField>,
}

fn default_expire_after() -> DurationField {
    DurationField::new("720h")
}

/// A node selector requirement plus Karpenter's `minValues` (flexibility floor: at least this
/// many distinct values of the key must remain among the NodeClaim's instance types).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequirementWithMinValues {
    pub key: String,
    pub operator: Operator,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_values: Option<i32>,
}

impl RequirementWithMinValues {
    pub fn new(key: &str, operator: Operator, values: &[&str]) -> Self {
        RequirementWithMinValues {
            key: key.into(),
            operator,
            values: values.iter().map(|s| s.to_string()).collect(),
            min_values: None,
        }
    }
    pub fn as_node_selector(&self) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: self.key.clone(),
            operator: self.operator,
            values: self.values.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeClassReference {
    pub group: String,
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum ConsolidationPolicy {
    WhenEmpty,
    #[default]
    WhenEmptyOrUnderutilized,
    /// Karpenter v1.14: consolidate only moves whose savings justify their disruption.
    Balanced,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum DisruptionReason {
    Underutilized,
    Empty,
    Drifted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Disruption {
    #[serde(default)]
    pub consolidation_policy: ConsolidationPolicy,
    #[serde(default = "default_consolidate_after")]
    pub consolidate_after: DurationField,
    /// Balanced only: k in {1,2,3} (default 2); a move is approved when
    /// savings_fraction / disruption_fraction >= 1/k.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consolidation_threshold: Option<i32>,
    #[serde(default)]
    pub budgets: Budgets,
}

fn default_consolidate_after() -> DurationField {
    DurationField::new("0s")
}
fn default_budgets() -> Vec<Budget> {
    vec![Budget::nodes("10%")]
}

/// A NodePool's disruption budgets (read as a list), and whether the manifest set them. Unset,
/// they are Karpenter's default, `nodes: 10%`; a scaling policy may choose its own default
/// where the user chose none (`provision::disruption::DisruptionOptions`), never over budgets
/// the user wrote. Serialized as the list alone.
#[derive(Debug, Clone, PartialEq)]
pub struct Budgets {
    list: Vec<Budget>,
    set: bool,
}

impl Budgets {
    /// Budgets as a manifest sets them.
    pub fn new(list: Vec<Budget>) -> Budgets {
        Budgets { list, set: true }
    }

    /// Whether the manifest set them (`false`: Karpenter's default).
    pub fn is_set(&self) -> bool {
        self.set
    }
}

impl Default for Budgets {
    fn default() -> Budgets {
        Budgets {
            list: default_budgets(),
            set: false,
        }
    }
}

impl std::ops::Deref for Budgets {
    type Target = Vec<Budget>;
    fn deref(&self) -> &Vec<Budget> {
        &self.list
    }
}

impl std::ops::DerefMut for Budgets {
    fn deref_mut(&mut self) -> &mut Vec<Budget> {
        self.set = true;
        &mut self.list
    }
}

impl Serialize for Budgets {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.list.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Budgets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Budgets, D::Error> {
        Vec::deserialize(d).map(Budgets::new)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Budgets {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        <Vec<Budget>>::schema_name()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <Vec<Budget>>::json_schema(generator)
    }
}

impl Default for Disruption {
    fn default() -> Self {
        Disruption {
            consolidation_policy: ConsolidationPolicy::default(),
            consolidate_after: default_consolidate_after(),
            consolidation_threshold: None,
            budgets: Budgets::default(),
        }
    }
}

impl Disruption {
    /// Balanced's k (threshold), 2 unless set.
    pub fn balanced_k(&self) -> f64 {
        f64::from(self.consolidation_threshold.unwrap_or(2))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Budget {
    #[serde(default = "default_budget_nodes")]
    pub nodes: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<DurationField>,
    /// Unset: the budget applies to every reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<DisruptionReason>>,
}

fn default_budget_nodes() -> String {
    "10%".into()
}

impl Budget {
    pub fn nodes(n: &str) -> Self {
        Budget {
            nodes: n.into(),
            schedule: None,
            duration: None,
            reasons: None,
        }
    }
    /// Allowed disruptions for a NodePool of `total` nodes: percentages round *up*
    /// (Karpenter uses `intstr.GetScaledValueFromIntOrPercent(..., true)`). `None` when the
    /// value is malformed, which callers treat as 0 (fail closed).
    pub fn allowed(&self, total: u64) -> Option<u64> {
        if let Some(p) = self.nodes.strip_suffix('%') {
            let p: u64 = p.parse().ok().filter(|p| *p <= 100)?;
            Some((p * total).div_ceil(100))
        } else {
            self.nodes.parse().ok()
        }
    }
    /// Is the budget in force at `now_ms`? No schedule: always. A bad schedule or duration:
    /// `None` (callers fail closed: treat as a budget of 0).
    pub fn active_at(&self, now_ms: u64) -> Option<bool> {
        match (&self.schedule, &self.duration) {
            (None, None) => Some(true),
            (Some(s), Some(d)) => {
                let cron = CronSchedule::parse(s).ok()?;
                let d = d.get(false).ok()?.secs()?;
                Some(cron.active_at(now_ms, d))
            }
            _ => None,
        }
    }
    pub fn applies_to(&self, reason: DisruptionReason) -> bool {
        self.reasons.as_ref().is_none_or(|r| r.contains(&reason))
    }
}

impl NodePool {
    pub fn name(&self) -> &str {
        &self.metadata.name
    }
    pub fn weight(&self) -> i32 {
        self.spec.weight.unwrap_or(0)
    }
    pub fn requirements(&self) -> &[RequirementWithMinValues] {
        &self.spec.template.spec.requirements
    }

    /// Parse one NodePool document (v1, or v1beta1 converted to v1) and validate it.
    pub fn from_yaml(text: &str) -> Result<NodePool, KarpenterError> {
        let value: serde_json::Value =
            serde_yaml_ng::from_str(text).map_err(|e| KarpenterError::Syntax(e.to_string()))?;
        NodePool::from_value(&value)
    }

    /// Deserialize from a JSON value (v1 or v1beta1) and validate; all errors at once.
    pub fn from_value(value: &serde_json::Value) -> Result<NodePool, KarpenterError> {
        let api = value
            .get("apiVersion")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let kind = value.get("kind").and_then(|v| v.as_str()).unwrap_or("");
        if kind != "NodePool" {
            return Err(KarpenterError::Invalid(vec![FieldError::new(
                "kind",
                format!("expected NodePool, found `{kind}`"),
            )]));
        }
        let pool = match api {
            API_VERSION_V1 => deserialize_at::<NodePool>(value)?,
            API_VERSION_V1BETA1 => {
                // v1beta1's own rules first (they name v1beta1's fields), then the conversion
                // the CRD's webhook applies on write.
                let old = deserialize_at::<v1beta1::NodePool>(value)?;
                let errs = old.validate();
                if !errs.is_empty() {
                    return Err(KarpenterError::Invalid(errs));
                }
                let v1 = convert::nodepool_to_v1(value)
                    .map_err(|e| KarpenterError::Invalid(vec![e.field_error()]))?;
                deserialize_at::<NodePool>(&v1)?
            }
            other => {
                return Err(KarpenterError::Invalid(vec![FieldError::new(
                    "apiVersion",
                    format!(
                        "unsupported apiVersion `{other}` for NodePool; use karpenter.sh/v1 (karpenter.sh/v1beta1 is converted)"
                    ),
                )]));
            }
        };
        let errs = pool.validate();
        if errs.is_empty() {
            Ok(pool)
        } else {
            Err(KarpenterError::Invalid(errs))
        }
    }

    /// The CRD's OpenAPI and CEL rules, as field-path errors (empty when valid).
    pub fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        if self.api_version != API_VERSION_V1 {
            e.push(FieldError::new(
                "apiVersion",
                format!("expected {API_VERSION_V1}"),
            ));
        }
        if self.metadata.name.is_empty() {
            e.push(FieldError::new(
                "metadata.name",
                "required; give the NodePool a name",
            ));
        }
        let t = &self.spec.template;
        for k in t.metadata.labels.keys() {
            let p = format!("spec.template.metadata.labels[{k}]");
            if let Err(m) = check_label_key(k) {
                e.push(FieldError::new(p, m));
            }
        }
        validate_requirements(
            &t.spec.requirements,
            "spec.template.spec.requirements",
            true,
            &mut e,
        );
        validate_taints(&t.spec.taints, "spec.template.spec.taints", &mut e);
        validate_taints(
            &t.spec.startup_taints,
            "spec.template.spec.startupTaints",
            &mut e,
        );
        let ncr = &t.spec.node_class_ref;
        for (f, v) in [
            ("group", &ncr.group),
            ("kind", &ncr.kind),
            ("name", &ncr.name),
        ] {
            if v.is_empty() {
                e.push(FieldError::new(
                    format!("spec.template.spec.nodeClassRef.{f}"),
                    "must not be empty",
                ));
            }
        }
        if let Err(m) = t.spec.expire_after.get(true) {
            e.push(FieldError::new("spec.template.spec.expireAfter", m));
        }
        if let Some(tgp) = &t.spec.termination_grace_period
            && let Err(m) = tgp.get(false)
        {
            e.push(FieldError::new(
                "spec.template.spec.terminationGracePeriod",
                m,
            ));
        }
        let d = &self.spec.disruption;
        if let Err(m) = d.consolidate_after.get(true) {
            e.push(FieldError::new("spec.disruption.consolidateAfter", m));
        }
        if let Some(k) = d.consolidation_threshold {
            if d.consolidation_policy != ConsolidationPolicy::Balanced {
                e.push(FieldError::new(
                    "spec.disruption.consolidationThreshold",
                    "only allowed with consolidationPolicy: Balanced",
                ));
            }
            if !(1..=3).contains(&k) {
                e.push(FieldError::new(
                    "spec.disruption.consolidationThreshold",
                    format!("{k} is out of range; use 1, 2 (default) or 3"),
                ));
            }
        }
        validate_budgets(&d.budgets, "spec.disruption.budgets", true, &mut e);
        if let Some(w) = self.spec.weight
            && !(1..=100).contains(&w)
        {
            e.push(FieldError::new(
                "spec.weight",
                format!("{w} is out of range; use 1 to 100"),
            ));
        }
        if let Some(r) = self.spec.replicas {
            if r < 0 {
                e.push(FieldError::new(
                    "spec.replicas",
                    format!("must be 0 or more, got {r}"),
                ));
            }
            if self.spec.weight.is_some() {
                e.push(FieldError::new(
                    "spec.weight",
                    "'weight' is not supported on static NodePools",
                ));
            }
            if let Some(l) = &self.spec.limits
                && l.keys().any(|k| k != "nodes")
            {
                e.push(FieldError::new(
                    "spec.limits",
                    "only 'limits.nodes' is supported on static NodePools",
                ));
            }
        }
        if let Some(l) = &self.spec.limits {
            for (k, v) in l {
                if v.millis() < 0 {
                    e.push(FieldError::new(
                        format!("spec.limits[{k}]"),
                        "must not be negative",
                    ));
                }
            }
        }
        e
    }

    /// Hash of the template fields whose change makes existing nodes drifted (Karpenter's
    /// `karpenter.sh/nodepool-hash`): labels, annotations, taints, startup taints and the node
    /// class reference. Requirements are not hashed — requirement drift is detected by checking
    /// node labels against the new requirements; expireAfter and terminationGracePeriod are
    /// excluded upstream too (changing them must not replace every node).
    pub fn template_hash(&self) -> String {
        let t = &self.spec.template;
        let canon = serde_json::json!({
            "labels": t.metadata.labels,
            "annotations": t.metadata.annotations,
            "taints": t.spec.taints,
            "startupTaints": t.spec.startup_taints,
            "nodeClassRef": t.spec.node_class_ref,
        });
        // FNV-1a 64: stable across runs and platforms (std's hasher is randomly seeded).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in canon.to_string().bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h.to_string()
    }
}

fn deserialize_at<T: serde::de::DeserializeOwned>(
    value: &serde_json::Value,
) -> Result<T, KarpenterError> {
    serde_path_to_error::deserialize(value)
        .map_err(|err| KarpenterError::Invalid(vec![crate::manifest::serde_field_error(&err)]))
}

/// Validate any karpenter.sh document (`NodePool` v1/v1beta1 or `NodeClaim`) given as JSON;
/// returns every field error (empty when valid). The hook `kedge check` calls.
pub fn validate_document(value: &serde_json::Value) -> Vec<FieldError> {
    match value.get("kind").and_then(|v| v.as_str()) {
        Some("NodePool") => NodePool::from_value(value)
            .err()
            .map(|e| e.field_errors())
            .unwrap_or_default(),
        Some("NodeClaim") => match deserialize_at::<NodeClaim>(value) {
            Ok(nc) => nc.validate(),
            Err(e) => e.field_errors(),
        },
        other => vec![FieldError::new(
            "kind",
            format!(
                "`{}` is not a karpenter.sh kind; expected NodePool or NodeClaim",
                other.unwrap_or("")
            ),
        )],
    }
}

/// A NodePool document as `kedge check` sees it: kept as raw JSON so that both apiVersions
/// (v1, and v1beta1 converted to v1) are validated with every error reported at once.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct NodePoolDocument(pub serde_json::Value);

impl crate::manifest::Manifest for NodePoolDocument {
    const KIND: &'static str = "NodePool";
    const API_VERSIONS: &'static [&'static str] = &[API_VERSION_V1, API_VERSION_V1BETA1];
    fn validate(&self) -> Vec<FieldError> {
        validate_document(&self.0)
    }
}

impl crate::manifest::Manifest for NodeClaim {
    const KIND: &'static str = "NodeClaim";
    const API_VERSIONS: &'static [&'static str] = &[API_VERSION_V1];
    fn validate(&self) -> Vec<FieldError> {
        NodeClaim::validate(self)
    }
}

/// Alias kept for callers that only handle NodePools.
pub fn validate_nodepool_document(value: &serde_json::Value) -> Vec<FieldError> {
    validate_document(value)
}

fn check_label_key(k: &str) -> Result<(), String> {
    if k.is_empty() || k.len() > 316 {
        return Err("label key must be 1 to 316 characters".into());
    }
    if RESTRICTED_LABELS.contains(&k) {
        return Err(format!(
            "label `{k}` is restricted; Karpenter sets it itself"
        ));
    }
    if let Some((domain, _)) = k.split_once('/') {
        let restricted = RESTRICTED_DOMAINS
            .iter()
            .any(|d| domain == *d || domain.ends_with(&format!(".{d}")));
        // node-restriction.kubernetes.io/ is the documented escape hatch for custom labels.
        let allowed = is_well_known_label(k)
            || domain.ends_with("node-restriction.kubernetes.io")
            || domain.ends_with("node.kubernetes.io") && is_well_known_label(k);
        if restricted && !allowed {
            return Err(format!(
                "label domain `{domain}` is restricted; use a well-known label or your own domain (e.g. node-restriction.kubernetes.io/...)"
            ));
        }
    }
    Ok(())
}

fn validate_requirements(
    reqs: &[RequirementWithMinValues],
    base: &str,
    restricted_keys: bool,
    e: &mut Vec<FieldError>,
) {
    if reqs.len() > 100 {
        e.push(FieldError::new(base, "at most 100 requirements"));
    }
    for (i, r) in reqs.iter().enumerate() {
        let p = format!("{base}[{i}]");
        // NodeClaims carry system labels (karpenter.sh/nodepool) that NodePools may not set.
        if restricted_keys && let Err(m) = check_label_key(&r.key) {
            e.push(FieldError::new(format!("{p}.key"), m));
        }
        match r.operator {
            Operator::In if r.values.is_empty() => e.push(FieldError::new(
                format!("{p}.values"),
                "requirements with operator 'In' must have a value defined",
            )),
            Operator::Gt | Operator::Lt | Operator::Gte | Operator::Lte => {
                let ok = r.values.len() == 1 && r.values[0].parse::<i64>().is_ok_and(|v| v >= 0);
                if !ok {
                    e.push(FieldError::new(format!("{p}.values"), format!("requirements with operator '{:?}' must have a single positive integer value", r.operator)));
                }
            }
            Operator::Exists | Operator::DoesNotExist if !r.values.is_empty() => {
                e.push(FieldError::new(
                    format!("{p}.values"),
                    format!("operator '{:?}' takes no values", r.operator),
                ))
            }
            _ => {}
        }
        if let Some(mv) = r.min_values {
            if !(1..=50).contains(&mv) {
                e.push(FieldError::new(
                    format!("{p}.minValues"),
                    format!("{mv} is out of range; use 1 to 50"),
                ));
            } else if r.operator == Operator::In && r.values.len() < mv as usize {
                e.push(FieldError::new(format!("{p}.minValues"), "requirements with 'minValues' must have at least that many values specified in the 'values' field"));
            }
        }
    }
}

fn validate_taints(taints: &[Taint], base: &str, e: &mut Vec<FieldError>) {
    for (i, t) in taints.iter().enumerate() {
        if t.key.is_empty() {
            e.push(FieldError::new(
                format!("{base}[{i}].key"),
                "must not be empty",
            ));
        }
    }
}

/// Karpenter's budget duration pattern `^((([0-9]+(h|m))|([0-9]+h[0-9]+m))(0s)?)$`: hours,
/// minutes, or hours then minutes, optionally followed by `0s` (how Go prints durations).
fn is_budget_duration(raw: &str) -> bool {
    let s = raw
        .strip_suffix("0s")
        .filter(|r| !r.is_empty() && !r.ends_with(|c: char| c.is_ascii_digit()))
        .unwrap_or(raw);
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if let Some(h) = s.strip_suffix('h') {
        return digits(h);
    }
    if let Some(rest) = s.strip_suffix('m') {
        return match rest.split_once('h') {
            Some((h, m)) => digits(h) && digits(m),
            None => digits(rest),
        };
    }
    false
}

fn validate_budgets(budgets: &[Budget], base: &str, v1: bool, e: &mut Vec<FieldError>) {
    if budgets.len() > 50 {
        e.push(FieldError::new(base, "at most 50 budgets"));
    }
    for (i, b) in budgets.iter().enumerate() {
        let p = format!("{base}[{i}]");
        let nodes_ok = match b.nodes.strip_suffix('%') {
            Some(pct) => {
                !pct.is_empty()
                    && pct.len() <= 3
                    && pct.parse::<u32>().is_ok_and(|v| v <= 100)
                    && pct.bytes().all(|c| c.is_ascii_digit())
            }
            None => !b.nodes.is_empty() && b.nodes.bytes().all(|c| c.is_ascii_digit()),
        };
        if !nodes_ok {
            e.push(FieldError::new(
                format!("{p}.nodes"),
                format!(
                    "`{}` must be a count (e.g. 5) or a percentage 0-100% (e.g. 10%)",
                    b.nodes
                ),
            ));
        }
        match (&b.schedule, &b.duration) {
            (Some(_), None) | (None, Some(_)) => e.push(FieldError::new(
                p.clone(),
                "'schedule' must be set with 'duration'",
            )),
            _ => {}
        }
        if let Some(s) = &b.schedule
            && let Err(m) = CronSchedule::parse(s)
        {
            e.push(FieldError::new(format!("{p}.schedule"), m));
        }
        if let Some(d) = &b.duration {
            let ok = is_budget_duration(&d.raw);
            if !ok {
                e.push(FieldError::new(
                    format!("{p}.duration"),
                    format!(
                        "`{}` is not a budget duration; use hours and minutes, e.g. 8h or 1h30m",
                        d.raw
                    ),
                ));
            }
        }
        if !v1 && b.reasons.is_some() {
            e.push(FieldError::new(
                format!("{p}.reasons"),
                "reasons exist only in karpenter.sh/v1",
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// v1beta1 input
// ---------------------------------------------------------------------------------------------

/// The v1beta1 NodePool (Karpenter 0.32–0.37), accepted as input and converted to v1 the way
/// Karpenter's conversion webhook did.
pub mod v1beta1 {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct NodePool {
        pub api_version: String,
        pub kind: String,
        #[serde(default)]
        pub metadata: ObjectMeta,
        pub spec: NodePoolSpec,
        #[serde(default)]
        pub status: Option<serde_json::Value>,
    }

    #[derive(Debug, Clone, PartialEq, Deserialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct NodePoolSpec {
        pub template: NodeClaimTemplate,
        #[serde(default)]
        pub disruption: Option<Disruption>,
        #[serde(default)]
        pub limits: Option<ResourceList>,
        #[serde(default)]
        pub weight: Option<i32>,
    }

    #[derive(Debug, Clone, PartialEq, Deserialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct NodeClaimTemplate {
        #[serde(default)]
        pub metadata: TemplateMetadata,
        pub spec: NodeClaimTemplateSpec,
    }

    #[derive(Debug, Clone, PartialEq, Deserialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct NodeClaimTemplateSpec {
        #[serde(default)]
        pub taints: Vec<Taint>,
        #[serde(default)]
        pub startup_taints: Vec<Taint>,
        #[serde(default)]
        pub requirements: Vec<RequirementWithMinValues>,
        pub node_class_ref: NodeClassReference,
        /// Moved to the NodeClass in v1; kept verbatim in an annotation by the conversion.
        #[serde(default)]
        pub kubelet: Option<KubeletConfiguration>,
        #[serde(default)]
        pub resources: Option<serde_json::Value>,
    }

    /// v1beta1's `kubelet` block: exactly the fields of its CRD (an unknown one is an error
    /// that names it, as the API server's pruning would silently drop it).
    #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct KubeletConfiguration {
        #[serde(
            default,
            rename = "clusterDNS",
            skip_serializing_if = "Option::is_none"
        )]
        pub cluster_dns: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_pods: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub pods_per_core: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub system_reserved: Option<std::collections::BTreeMap<String, String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub kube_reserved: Option<std::collections::BTreeMap<String, String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub eviction_hard: Option<std::collections::BTreeMap<String, String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub eviction_soft: Option<std::collections::BTreeMap<String, String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub eviction_soft_grace_period: Option<std::collections::BTreeMap<String, String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub eviction_max_pod_grace_period: Option<i64>,
        #[serde(
            default,
            rename = "imageGCHighThresholdPercent",
            skip_serializing_if = "Option::is_none"
        )]
        pub image_gc_high_threshold_percent: Option<i64>,
        #[serde(
            default,
            rename = "imageGCLowThresholdPercent",
            skip_serializing_if = "Option::is_none"
        )]
        pub image_gc_low_threshold_percent: Option<i64>,
        #[serde(
            default,
            rename = "cpuCFSQuota",
            skip_serializing_if = "Option::is_none"
        )]
        pub cpu_cfs_quota: Option<bool>,
    }

    const EVICTION_SIGNALS: &[&str] = &[
        "memory.available",
        "nodefs.available",
        "nodefs.inodesFree",
        "imagefs.available",
        "imagefs.inodesFree",
        "pid.available",
    ];
    const RESERVED_KEYS: &[&str] = &["cpu", "memory", "ephemeral-storage", "pid"];

    impl KubeletConfiguration {
        /// The CRD's rules for the block at `base`.
        pub fn validate(&self, base: &str, e: &mut Vec<FieldError>) {
            for (f, v) in [
                ("maxPods", self.max_pods),
                ("podsPerCore", self.pods_per_core),
            ] {
                if let Some(v) = v
                    && v < 0
                {
                    e.push(FieldError::new(format!("{base}.{f}"), "must be 0 or more"));
                }
            }
            for (f, v) in [
                (
                    "imageGCHighThresholdPercent",
                    self.image_gc_high_threshold_percent,
                ),
                (
                    "imageGCLowThresholdPercent",
                    self.image_gc_low_threshold_percent,
                ),
            ] {
                if let Some(v) = v
                    && !(0..=100).contains(&v)
                {
                    e.push(FieldError::new(
                        format!("{base}.{f}"),
                        format!("{v} is out of range; must be between 0 and 100"),
                    ));
                }
            }
            if let (Some(h), Some(l)) = (
                self.image_gc_high_threshold_percent,
                self.image_gc_low_threshold_percent,
            ) && h <= l
            {
                e.push(FieldError::new(
                    format!("{base}.imageGCHighThresholdPercent"),
                    "imageGCHighThresholdPercent must be greater than imageGCLowThresholdPercent",
                ));
            }
            for (f, m) in [
                ("systemReserved", &self.system_reserved),
                ("kubeReserved", &self.kube_reserved),
            ] {
                for (k, v) in m.iter().flatten() {
                    if !RESERVED_KEYS.contains(&k.as_str()) {
                        e.push(FieldError::new(
                            format!("{base}.{f}[{k}]"),
                            format!(
                                "valid keys for {f} are ['cpu','memory','ephemeral-storage','pid']"
                            ),
                        ));
                    }
                    if v.starts_with('-') {
                        e.push(FieldError::new(
                            format!("{base}.{f}[{k}]"),
                            format!("{f} value cannot be a negative resource quantity"),
                        ));
                    } else if v.parse::<crate::quantity::Quantity>().is_err() {
                        e.push(FieldError::new(
                            format!("{base}.{f}[{k}]"),
                            format!("{v:?} is not a resource quantity"),
                        ));
                    }
                }
            }
            for (f, m) in [
                ("evictionHard", &self.eviction_hard),
                ("evictionSoft", &self.eviction_soft),
                ("evictionSoftGracePeriod", &self.eviction_soft_grace_period),
            ] {
                for k in m.iter().flatten().map(|(k, _)| k) {
                    if !EVICTION_SIGNALS.contains(&k.as_str()) {
                        e.push(FieldError::new(
                            format!("{base}.{f}[{k}]"),
                            format!("valid keys for {f} are {EVICTION_SIGNALS:?}"),
                        ));
                    }
                }
            }
            let soft = self.eviction_soft.as_ref();
            let grace = self.eviction_soft_grace_period.as_ref();
            if let Some(s) = soft
                && s.keys().any(|k| !grace.is_some_and(|g| g.contains_key(k)))
            {
                e.push(FieldError::new(
                    format!("{base}.evictionSoft"),
                    "evictionSoft OwnerKey does not have a matching evictionSoftGracePeriod",
                ));
            }
            if let Some(g) = grace
                && g.keys().any(|k| !soft.is_some_and(|s| s.contains_key(k)))
            {
                e.push(FieldError::new(
                    format!("{base}.evictionSoftGracePeriod"),
                    "evictionSoftGracePeriod OwnerKey does not have a matching evictionSoft",
                ));
            }
        }
    }

    #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct NodeClassReference {
        #[serde(default)]
        pub api_version: String,
        #[serde(default)]
        pub kind: String,
        pub name: String,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    pub enum ConsolidationPolicy {
        WhenEmpty,
        WhenUnderutilized,
    }

    #[derive(Debug, Clone, PartialEq, Deserialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Disruption {
        #[serde(default = "when_underutilized")]
        pub consolidation_policy: ConsolidationPolicy,
        #[serde(default)]
        pub consolidate_after: Option<DurationField>,
        #[serde(default = "super::default_expire_after")]
        pub expire_after: DurationField,
        #[serde(default = "super::default_budgets")]
        pub budgets: Vec<Budget>,
    }

    fn when_underutilized() -> ConsolidationPolicy {
        ConsolidationPolicy::WhenUnderutilized
    }

    impl NodePool {
        /// v1beta1's own CEL rules that have no v1 counterpart.
        pub fn validate(&self) -> Vec<FieldError> {
            let mut e = Vec::new();
            if let Some(d) = &self.spec.disruption {
                match (d.consolidation_policy, &d.consolidate_after) {
                    (ConsolidationPolicy::WhenUnderutilized, Some(_)) => e.push(FieldError::new(
                        "spec.disruption.consolidateAfter",
                        "consolidateAfter cannot be combined with consolidationPolicy=WhenUnderutilized",
                    )),
                    (ConsolidationPolicy::WhenEmpty, None) => e.push(FieldError::new(
                        "spec.disruption.consolidateAfter",
                        "consolidateAfter must be specified with consolidationPolicy=WhenEmpty",
                    )),
                    _ => {}
                }
                validate_budgets(&d.budgets, "spec.disruption.budgets", false, &mut e);
            }
            let t = &self.spec.template.spec;
            for (i, r) in t.requirements.iter().enumerate() {
                if matches!(r.operator, Operator::Gte | Operator::Lte) {
                    e.push(FieldError::new(
                        format!("spec.template.spec.requirements[{i}].operator"),
                        format!(
                            "operator {:?} exists only in karpenter.sh/v1; use Gt or Lt in v1beta1",
                            r.operator
                        ),
                    ));
                }
            }
            if let Some(k) = &t.kubelet {
                k.validate("spec.template.spec.kubelet", &mut e);
            }
            e
        }
    }
}

// ---------------------------------------------------------------------------------------------
// NodeClaim
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeClaim {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub spec: NodeClaimSpec,
    #[serde(default)]
    pub status: NodeClaimStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeClaimSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub startup_taints: Vec<Taint>,
    #[serde(default)]
    pub requirements: Vec<RequirementWithMinValues>,
    #[serde(default)]
    pub resources: NodeClaimResources,
    pub node_class_ref: NodeClassReference,
    #[serde(default = "default_expire_after")]
    pub expire_after: DurationField,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period: Option<DurationField>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeClaimResources {
    #[serde(default, skip_serializing_if = "crate::map::Map::is_empty")]
    pub requests: ResourceList,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeClaimStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    #[serde(
        default,
        rename = "providerID",
        skip_serializing_if = "Option::is_none"
    )]
    pub provider_id: Option<String>,
    #[serde(default, rename = "imageID", skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    #[serde(default, skip_serializing_if = "crate::map::Map::is_empty")]
    pub capacity: ResourceList,
    #[serde(default, skip_serializing_if = "crate::map::Map::is_empty")]
    pub allocatable: ResourceList,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// "True", "False" or "Unknown".
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Milliseconds since the epoch in kedge (RFC 3339 upstream); kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<serde_json::Value>,
}

impl NodeClaim {
    pub fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        if self.api_version != API_VERSION_V1 {
            e.push(FieldError::new(
                "apiVersion",
                format!("expected {API_VERSION_V1}"),
            ));
        }
        validate_requirements(&self.spec.requirements, "spec.requirements", false, &mut e);
        validate_taints(&self.spec.taints, "spec.taints", &mut e);
        if let Err(m) = self.spec.expire_after.get(true) {
            e.push(FieldError::new("spec.expireAfter", m));
        }
        e
    }
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.status.conditions.iter().find(|c| c.type_ == type_)
    }
    pub fn phase(&self) -> NodeClaimPhase {
        let is = |t: &str| self.condition(t).is_some_and(|c| c.status == "True");
        if is(CONDITION_INITIALIZED) {
            NodeClaimPhase::Initialized
        } else if is(CONDITION_REGISTERED) {
            NodeClaimPhase::Registered
        } else if is(CONDITION_LAUNCHED) {
            NodeClaimPhase::Launched
        } else {
            NodeClaimPhase::Pending
        }
    }
}

pub const CONDITION_LAUNCHED: &str = "Launched";
pub const CONDITION_REGISTERED: &str = "Registered";
pub const CONDITION_INITIALIZED: &str = "Initialized";
pub const CONDITION_READY: &str = "Ready";
pub const CONDITION_DRIFTED: &str = "Drifted";
pub const CONDITION_CONSOLIDATABLE: &str = "Consolidatable";

/// Where a NodeClaim is in its life. Karpenter's conditions, as one state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeClaimPhase {
    /// Created; the cloud provider has not yet returned an instance.
    Pending,
    /// An instance exists (`Launched=True`); its node has not joined.
    Launched,
    /// The node joined the cluster (`Registered=True`); startup taints may remain.
    Registered,
    /// Resources and startup taints settled (`Initialized=True`): pods can land.
    Initialized,
    /// Deletion requested: cordoned, draining, then the instance is terminated.
    Terminating,
}

/// What happened to a NodeClaim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeClaimEvent {
    Launched,
    Registered,
    Initialized,
    Deleted,
}

impl NodeClaimPhase {
    /// One transition; `None` for an event that cannot happen in this phase (the caller keeps
    /// the phase and records the anomaly). Deletion is possible from every phase.
    pub fn step(self, ev: NodeClaimEvent) -> Option<NodeClaimPhase> {
        use NodeClaimEvent as E;
        use NodeClaimPhase as P;
        match (self, ev) {
            (_, E::Deleted) => Some(P::Terminating),
            (P::Pending, E::Launched) => Some(P::Launched),
            (P::Launched, E::Registered) => Some(P::Registered),
            (P::Registered, E::Initialized) => Some(P::Initialized),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            KDuration::parse("720h", true),
            Ok(KDuration::Secs(720 * 3600))
        );
        assert_eq!(KDuration::parse("1h30m", true), Ok(KDuration::Secs(5400)));
        assert_eq!(KDuration::parse("Never", true), Ok(KDuration::Never));
        assert!(KDuration::parse("Never", false).is_err());
        assert!(KDuration::parse("5d", true).is_err());
        assert!(KDuration::parse("", true).is_err());
        assert_eq!(KDuration::Secs(720 * 3600).to_string(), "720h0m0s");
    }

    #[test]
    fn cron_matches_weekday_business_hours() {
        let c = CronSchedule::parse("0 9 * * mon-fri").unwrap();
        // 2024-01-01 was a Monday. 09:00 UTC that day:
        let monday_9 = (19_723 * 1440 + 9 * 60) as u64;
        assert!(c.fires_at_minute(monday_9));
        assert!(!c.fires_at_minute(monday_9 + 1));
        assert!(!c.fires_at_minute(monday_9 + 5 * 1440), "saturday");
        assert!(
            c.active_at((monday_9 + 7 * 60) * 60_000, 8 * 3600),
            "16:00 inside the 8h window"
        );
        assert!(
            !c.active_at((monday_9 + 8 * 60) * 60_000, 8 * 3600),
            "17:00 is past the window"
        );
        assert!(!c.active_at((monday_9 - 1) * 60_000, 8 * 3600));
        assert!(
            CronSchedule::parse("@daily")
                .unwrap()
                .fires_at_minute(19_723 * 1440)
        );
        assert!(CronSchedule::parse("61 * * * *").is_err());
        assert!(CronSchedule::parse("* * *").is_err());
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn budget_duration_pattern() {
        for ok in ["8h", "30m", "1h30m", "8h0m0s", "10m0s", "720h"] {
            assert!(is_budget_duration(ok), "{ok}");
        }
        for bad in ["30s", "1d", "", "h", "1h30s", "0s", "m30"] {
            assert!(!is_budget_duration(bad), "{bad}");
        }
    }

    #[test]
    fn budget_rounds_percent_up() {
        assert_eq!(Budget::nodes("10%").allowed(5), Some(1));
        assert_eq!(Budget::nodes("10%").allowed(20), Some(2));
        assert_eq!(Budget::nodes("0").allowed(20), Some(0));
        assert_eq!(Budget::nodes("x").allowed(20), None);
    }

    #[test]
    fn lifecycle() {
        let p = NodeClaimPhase::Pending;
        assert_eq!(p.step(NodeClaimEvent::Registered), None);
        let p = p.step(NodeClaimEvent::Launched).unwrap();
        let p = p.step(NodeClaimEvent::Registered).unwrap();
        assert_eq!(
            p.step(NodeClaimEvent::Initialized),
            Some(NodeClaimPhase::Initialized)
        );
        assert_eq!(
            p.step(NodeClaimEvent::Deleted),
            Some(NodeClaimPhase::Terminating)
        );
    }
}
