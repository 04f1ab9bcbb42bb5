//! Table definitions: key schema, indexes, throughput, tags, TTL. Parsed from CreateTable /
//! UpdateTable requests with AWS's validation, persisted as JSON, rendered as the
//! `TableDescription` DynamoDB answers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::DdbError;
use super::req::{opt_str, req_str, vmsg};
use super::value::{AttrValue, Item, KeyVal};

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "000000000000";

/// A key attribute: its name and scalar type (`S`, `N` or `B`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySpec {
    pub name: String,
    pub ty: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexMeta {
    pub name: String,
    /// The first partition key attribute.
    pub hash: KeySpec,
    /// The first sort key attribute.
    pub range: Option<KeySpec>,
    /// A global index's further partition key attributes (DynamoDB's multi-attribute keys,
    /// November 2025: up to four in all), in KeySchema order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_hash: Vec<KeySpec>,
    /// A global index's further sort key attributes (up to four in all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_range: Vec<KeySpec>,
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub projection: String,
    pub non_key: Vec<String>,
    pub rcu: i64,
    pub wcu: i64,
    pub global: bool,
    /// A global index's warm throughput and maximum on-demand request units, as given when
    /// it was created (each unit only once given; see [`Extras`] for the table's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<(Option<i64>, Option<i64>)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_demand: Option<(Option<i64>, Option<i64>)>,
}

impl IndexMeta {
    /// The partition key attributes, in KeySchema order.
    pub fn hash_keys(&self) -> impl Iterator<Item = &KeySpec> + Clone {
        std::iter::once(&self.hash).chain(&self.more_hash)
    }

    /// The sort key attributes, in KeySchema order.
    pub fn range_keys(&self) -> impl Iterator<Item = &KeySpec> + Clone {
        self.range.iter().chain(&self.more_range)
    }

    /// Every key attribute: the partition key's, then the sort key's.
    pub fn key_specs(&self) -> impl Iterator<Item = &KeySpec> + Clone {
        self.hash_keys().chain(self.range_keys())
    }

    /// Whether the partition or the sort key has more than one attribute. Such a key is kept
    /// as a [`KeyVal::Tuple`] of its attributes' values.
    pub fn is_composite(&self) -> bool {
        !self.more_hash.is_empty() || !self.more_range.is_empty()
    }

    /// The `KeySchema` DynamoDB describes: the partition key's attributes as `HASH`, then the
    /// sort key's as `RANGE`.
    pub fn key_schema_json(&self) -> Value {
        let hashes = 1 + self.more_hash.len();
        self.key_specs()
            .enumerate()
            .map(|(n, k)| {
                json!({"AttributeName": k.name, "KeyType": if n < hashes { "HASH" } else { "RANGE" }})
            })
            .collect()
    }

    /// The `Projection` DynamoDB describes.
    pub fn projection_json(&self) -> Value {
        if self.non_key.is_empty() {
            json!({"ProjectionType": self.projection})
        } else {
            json!({"ProjectionType": self.projection, "NonKeyAttributes": self.non_key})
        }
    }

    /// Whether an item of `table` is in this index: it has every key attribute of the index.
    pub fn contains(&self, item: &Item) -> bool {
        self.key_specs().all(|k| item.contains_key(&k.name))
    }

    /// Whether the index's entries hold attribute `name`: its keys, the table's keys and
    /// the projected attributes.
    pub fn holds(&self, table: &TableMeta, name: &str) -> bool {
        self.projection == "ALL"
            || table.is_key_attr(name)
            || self.key_specs().any(|k| k.name == name)
            || self.non_key.iter().any(|n| n == name)
    }

    /// The attributes of `item`'s entry in this index (in name order), `None` when the item
    /// is not in it.
    pub fn entry<'i>(
        &self,
        table: &TableMeta,
        item: &'i Item,
    ) -> Option<impl Iterator<Item = (&'i String, &'i AttrValue)> + Clone> {
        self.contains(item)
            .then(|| item.iter().filter(move |(k, _)| self.holds(table, k)))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableMeta {
    pub name: String,
    pub id: String,
    pub attr_defs: Vec<KeySpec>,
    pub hash: KeySpec,
    pub range: Option<KeySpec>,
    pub billing: String,
    pub rcu: i64,
    pub wcu: i64,
    /// Seconds since the epoch (with milliseconds) of creation.
    pub created: f64,
    pub indexes: Vec<IndexMeta>,
    pub tags: BTreeMap<String, String>,
    /// The TTL attribute when TTL is enabled.
    pub ttl: Option<String>,
    pub deletion_protection: bool,
    /// The stream view type while the table's stream is enabled.
    pub stream: Option<String>,
    /// The label of the table's latest stream (kept after it is disabled, as DynamoDB keeps
    /// `LatestStreamArn`).
    #[serde(default)]
    pub stream_label: Option<String>,
    /// When billing last switched to PAY_PER_REQUEST (seconds since the epoch), if it did.
    #[serde(default)]
    pub ppr_since: Option<f64>,
    /// When provisioned throughput was last raised / lowered (seconds since the epoch).
    #[serde(default)]
    pub last_increase: Option<f64>,
    #[serde(default)]
    pub last_decrease: Option<f64>,
    /// Throughput decreases on one UTC day: (days since the epoch, how many).
    #[serde(default)]
    pub decreases: (u64, u32),
    /// The table's resource-based policy, if it has one.
    #[serde(default)]
    pub policy: Option<ResourcePolicy>,
    /// Point-in-time recovery, while enabled (`UpdateContinuousBackups`).
    #[serde(default)]
    pub pitr: Option<Pitr>,
    /// A table restored from a backup: its `RestoreSummary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<Value>,
    /// Encryption with a KMS key, the table class, warm throughput: kept and reported.
    #[serde(default, skip_serializing_if = "Extras::is_default")]
    pub extras: Extras,
    /// CloudWatch Contributor Insights on the table (key `""`) and its global indexes (their
    /// names), as `UpdateContributorInsights` last set them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub insights: BTreeMap<String, Insights>,
}

/// Contributor insights on a table or a global index: kept and reported (there is no
/// CloudWatch here; no rule is made and nothing is counted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Insights {
    /// `ENABLE` (true) or `DISABLE` asked last.
    pub enabled: bool,
    /// `ACCESSED_AND_THROTTLED_KEYS` or `THROTTLED_KEYS`.
    pub mode: String,
    /// When it was asked (clock ms): `LastUpdateDateTime` and the rules' time stamp.
    pub at_ms: u64,
    /// Until when (clock ms) it is `ENABLING` / `DISABLING`: the table status delay after
    /// `at_ms`.
    pub until_ms: u64,
}

impl Insights {
    /// `ContributorInsightsStatus` at `now_ms`.
    pub fn status(&self, now_ms: u64) -> &'static str {
        match (self.enabled, now_ms < self.until_ms) {
            (true, true) => "ENABLING",
            (true, false) => "ENABLED",
            (false, true) => "DISABLING",
            (false, false) => "DISABLED",
        }
    }
}

/// Table settings DynamoDB keeps and reports that change nothing about how this server
/// stores or serves the table: encryption at rest with a KMS key (`SSESpecification`), the
/// table class (`TableClass`) and warm throughput (`WarmThroughput`). Each is reported only
/// once it was asked for, as DynamoDB reports `SSEDescription` only for a KMS key (a table on
/// DynamoDB's own key has none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Extras {
    /// The KMS key's ARN while the table is encrypted with a KMS key (`SSEDescription`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
    /// The table class given, and when UpdateTable last changed it (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<(String, Option<f64>)>,
    /// Warm throughput asked for: read and write units a second (each only once given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<(Option<i64>, Option<i64>)>,
    /// An on-demand table's maximum read and write request units (`OnDemandThroughput`; each
    /// only once given, -1 for none as DynamoDB takes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_demand: Option<(Option<i64>, Option<i64>)>,
}

/// The stand-in for the `aws/dynamodb` AWS managed KMS key, whose ARN `SSEDescription` shows
/// for a table encrypted with `SSESpecification` `Enabled` and no key of its own (there is no
/// KMS here: nothing is encrypted with it).
pub const MANAGED_KMS_KEY_ID: &str = "00000000-0000-4000-8000-00000000dd6b";

/// What CreateTable or UpdateTable asks of the [`Extras`]: each `None` when not given.
#[derive(Debug, Default)]
pub struct ExtrasChange {
    /// `SSESpecification`, as [`sse_key`] reads it.
    kms_key: Option<Option<String>>,
    class: Option<String>,
    warm: Option<(Option<i64>, Option<i64>)>,
    on_demand: Option<(Option<i64>, Option<i64>)>,
}

/// An `OnDemandThroughput`'s units: each at least 1, or -1 for no maximum, as DynamoDB
/// documents them; anything else is refused (the wording is kedge's).
fn check_max_units(pair: Option<(Option<i64>, Option<i64>)>) -> Result<(), DdbError> {
    let Some((r, w)) = pair else {
        return Ok(());
    };
    for (name, v) in [("MaxReadRequestUnits", r), ("MaxWriteRequestUnits", w)] {
        if let Some(v) = v.filter(|v| *v != -1 && *v < 1) {
            return Err(DdbError::validation(format!(
                "One or more parameter values were invalid: OnDemandThroughput {name} is {v}; it must be at least 1, or -1 for no maximum"
            )));
        }
    }
    Ok(())
}

/// Describe warm throughput `(read, write)` (the units given, `Status` `ACTIVE`).
fn warm_json((r, w): (Option<i64>, Option<i64>)) -> Value {
    let mut warm = json!({"Status": "ACTIVE"});
    if let Some(r) = r {
        warm["ReadUnitsPerSecond"] = json!(r);
    }
    if let Some(w) = w {
        warm["WriteUnitsPerSecond"] = json!(w);
    }
    warm
}

/// Describe maximum on-demand request units `(read, write)` (the units given).
fn on_demand_json((r, w): (Option<i64>, Option<i64>)) -> Value {
    let mut max = json!({});
    if let Some(r) = r {
        max["MaxReadRequestUnits"] = json!(r);
    }
    if let Some(w) = w {
        max["MaxWriteRequestUnits"] = json!(w);
    }
    max
}

/// A `WarmThroughput`- or `OnDemandThroughput`-like member's read and write units, when given
/// (either may be left out).
pub(crate) type UnitPair = Option<(Option<i64>, Option<i64>)>;

/// A global index's `WarmThroughput` and `OnDemandThroughput` units (of an index created, or
/// of UpdateTable's index `Update`), each when given, the maximum units checked.
pub(crate) fn index_units(v: &Value) -> Result<(UnitPair, UnitPair), DdbError> {
    let on_demand = max_units(v, "OnDemandThroughput")?;
    let warm = unit_pair(
        v,
        "WarmThroughput",
        "ReadUnitsPerSecond",
        "WriteUnitsPerSecond",
    );
    Ok((warm, on_demand))
}

/// The maximum on-demand request units of `member` (`OnDemandThroughput`, or a restore's
/// `OnDemandThroughputOverride`) when given, checked.
pub(crate) fn max_units(v: &Value, member: &str) -> Result<UnitPair, DdbError> {
    let units = unit_pair(v, member, "MaxReadRequestUnits", "MaxWriteRequestUnits");
    check_max_units(units)?;
    Ok(units)
}

/// `old` with the units `new` gives in place of its own (a unit not given is kept).
pub(crate) fn merge_units(old: UnitPair, new: UnitPair) -> UnitPair {
    match new {
        None => old,
        Some((r, w)) => {
            let (r0, w0) = old.unwrap_or_default();
            Some((r.or(r0), w.or(w0)))
        }
    }
}

/// A `WarmThroughput`- or `OnDemandThroughput`-like member's two units, when either is given.
fn unit_pair(
    req: &Value,
    member: &str,
    read: &str,
    write: &str,
) -> Option<(Option<i64>, Option<i64>)> {
    let m = req.get(member).filter(|v| !v.is_null())?;
    let units = |f: &str| m.get(f).and_then(Value::as_i64);
    let (r, w) = (units(read), units(write));
    (r.is_some() || w.is_some()).then_some((r, w))
}

/// An `SSESpecification` (or a restore's `SSESpecificationOverride`): `None` when not given,
/// `Some(None)` for DynamoDB's own key (`Enabled` false or left out), `Some(Some(ARN))` for a
/// KMS key. A key given by id or alias becomes its ARN in this server's region and account
/// (an alias is not resolved: there is no KMS here); an ARN is kept as given.
pub fn sse_key(sse: Option<&Value>) -> Option<Option<String>> {
    let sse = sse.filter(|v| !v.is_null())?;
    let enabled = sse
        .get("Enabled")
        .and_then(crate::table::req::as_boolean)
        .unwrap_or(false);
    let key = opt_str(sse, "KMSMasterKeyId");
    Some(enabled.then(|| {
        let key = key.unwrap_or(MANAGED_KMS_KEY_ID);
        if key.starts_with("arn:") {
            key.to_string()
        } else if key.starts_with("alias/") {
            format!("arn:aws:kms:{REGION}:{ACCOUNT}:{key}")
        } else {
            format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{key}")
        }
    }))
}

impl ExtrasChange {
    /// Read `SSESpecification` ([`sse_key`]), `TableClass`, `WarmThroughput` and
    /// `OnDemandThroughput` (their types and enums were checked with the request's other
    /// constraints). A maximum of request units is at least 1, or -1 to have none, as
    /// DynamoDB documents; anything else is refused (the wording is kedge's).
    pub fn parse(req: &Value) -> Result<ExtrasChange, DdbError> {
        let kms_key = sse_key(req.get("SSESpecification"));
        let warm = unit_pair(
            req,
            "WarmThroughput",
            "ReadUnitsPerSecond",
            "WriteUnitsPerSecond",
        );
        let on_demand = max_units(req, "OnDemandThroughput")?;
        Ok(ExtrasChange {
            kms_key,
            class: opt_str(req, "TableClass").map(str::to_string),
            warm,
            on_demand,
        })
    }

    /// Whether the request asks for any of them.
    pub fn is_empty(&self) -> bool {
        self.kms_key.is_none()
            && self.class.is_none()
            && self.warm.is_none()
            && self.on_demand.is_none()
    }

    /// Apply to `extras` at `now` (seconds since the epoch; `None` at creation, when the
    /// class has no last update).
    pub fn apply(self, extras: &mut Extras, now: Option<f64>) {
        if let Some(k) = self.kms_key {
            extras.kms_key = k;
        }
        if let Some(c) = self.class {
            extras.class = Some((c, now));
        }
        extras.warm = merge_units(extras.warm, self.warm);
        extras.on_demand = merge_units(extras.on_demand, self.on_demand);
    }
}

impl Extras {
    pub fn is_default(&self) -> bool {
        *self == Extras::default()
    }

    /// Add `SSEDescription`, `TableClassSummary` and `WarmThroughput` to a table description.
    fn describe(&self, d: &mut Value) {
        if let Some(arn) = &self.kms_key {
            d["SSEDescription"] =
                json!({"Status": "ENABLED", "SSEType": "KMS", "KMSMasterKeyArn": arn});
        }
        if let Some((class, updated)) = &self.class {
            d["TableClassSummary"] = match updated {
                Some(t) => json!({"TableClass": class, "LastUpdateDateTime": t}),
                None => json!({"TableClass": class}),
            };
        }
        if let Some(units) = self.warm {
            d["WarmThroughput"] = warm_json(units);
        }
        if let Some(units) = self.on_demand {
            d["OnDemandThroughput"] = on_demand_json(units);
        }
    }
}

/// Point-in-time recovery as `UpdateContinuousBackups` turned it on: since when (ms since the
/// epoch) and for how many days back (1–35, default 35).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pitr {
    pub since_ms: u64,
    pub days: u32,
}

impl Pitr {
    /// The times (ms) a restore may go back to at `now_ms`: from when recovery was turned on
    /// or the recovery period back, whichever is later, until five minutes ago.
    pub fn window(&self, now_ms: u64) -> (u64, u64) {
        let earliest = self
            .since_ms
            .max(now_ms.saturating_sub(u64::from(self.days) * 86_400_000));
        let latest = now_ms.saturating_sub(300_000).max(earliest);
        (earliest, latest)
    }
}

impl TableMeta {
    /// `ContinuousBackupsDescription` at `now_ms`: backups are always on; point-in-time
    /// recovery as enabled, restorable from when it was enabled (or its period back) until
    /// five minutes ago, as DynamoDB describes it.
    pub fn continuous_backups(&self, now_ms: u64) -> serde_json::Value {
        let pitr = match self.pitr {
            None => serde_json::json!({"PointInTimeRecoveryStatus": "DISABLED"}),
            Some(p) => {
                let (earliest, latest) = p.window(now_ms);
                serde_json::json!({
                    "PointInTimeRecoveryStatus": "ENABLED",
                    "RecoveryPeriodInDays": p.days,
                    "EarliestRestorableDateTime": earliest as f64 / 1000.0,
                    "LatestRestorableDateTime": latest as f64 / 1000.0,
                })
            }
        };
        serde_json::json!({"ContinuousBackupsDescription": {
            "ContinuousBackupsStatus": "ENABLED",
            "PointInTimeRecoveryDescription": pitr,
        }})
    }
}

/// A resource-based policy (`PutResourcePolicy`): the document as given and its revision id
/// (milliseconds since the epoch when it was put, as DynamoDB's are: later revisions compare
/// greater).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourcePolicy {
    pub document: String,
    pub revision: String,
}

/// A provisioned-throughput change in progress: DynamoDB describes the table's old units
/// while it is UPDATING and the new ones once it is ACTIVE again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThroughputChange {
    pub before: (i64, i64),
    pub up: bool,
    pub down: bool,
}

impl TableMeta {
    /// Note the start of a throughput change (at `now_ms`): DynamoDB stamps the direction
    /// of the change when it is requested.
    pub fn begin_throughput_change(&mut self, c: ThroughputChange, now_ms: u64) {
        let at = now_ms as f64 / 1000.0;
        if c.up {
            self.last_increase = Some(at);
        }
        if c.down {
            self.last_decrease = Some(at);
        }
    }

    /// Note the end of a throughput change (at `now_ms`): an increase is stamped again; a
    /// decrease is stamped again and counted against the UTC day.
    pub fn end_throughput_change(&mut self, c: ThroughputChange, now_ms: u64) {
        let at = now_ms as f64 / 1000.0;
        if c.up {
            self.last_increase = Some(at);
        } else if c.down {
            self.last_decrease = Some(at);
            let day = now_ms / 86_400_000;
            self.decreases = (
                day,
                if self.decreases.0 == day {
                    self.decreases.1 + 1
                } else {
                    1
                },
            );
        }
    }

    /// The table's `ProvisionedThroughput` at `now_ms`, showing `units` (read, write).
    pub fn provisioned_throughput(&self, (rcu, wcu): (i64, i64), now_ms: u64) -> Value {
        let mut pt = json!({
            "NumberOfDecreasesToday": self.decreases_today(now_ms),
            "ReadCapacityUnits": rcu,
            "WriteCapacityUnits": wcu,
        });
        if let Some(at) = self.last_increase {
            pt["LastIncreaseDateTime"] = json!(at);
        }
        if let Some(at) = self.last_decrease {
            pt["LastDecreaseDateTime"] = json!(at);
        }
        pt
    }

    /// `NumberOfDecreasesToday` at `now_ms`.
    fn decreases_today(&self, now_ms: u64) -> u32 {
        if self.decreases.0 == now_ms / 86_400_000 {
            self.decreases.1
        } else {
            0
        }
    }
}

/// The primary key of an item: partition key and optional sort key.
pub type PKey = (KeyVal, Option<KeyVal>);

pub fn table_arn(name: &str) -> String {
    format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}")
}

/// The table a `TableName` names: DynamoDB takes the table's ARN there as well as its name
/// (`arn:aws:dynamodb:REGION:ACCOUNT:table/NAME`, this server's region and account); any
/// other text is a name.
pub fn named_table(given: &str) -> &str {
    given
        .strip_prefix("arn:aws:dynamodb:")
        .and_then(|r| r.strip_prefix(REGION))
        .and_then(|r| r.strip_prefix(':'))
        .and_then(|r| r.strip_prefix(ACCOUNT))
        .and_then(|r| r.strip_prefix(":table/"))
        .filter(|n| !n.is_empty() && !n.contains('/'))
        .unwrap_or(given)
}

/// A table name (or, through [`named_table`], a table's ARN), checked as DynamoDB checks it.
pub fn validate_table_name(name: &str, field: &str) -> Result<(), DdbError> {
    let name = named_table(name);
    let mut errs = Vec::new();
    if name.len() < 3 {
        errs.push(format!(
            "Value '{name}' at '{field}' failed to satisfy constraint: Member must have length greater than or equal to 3"
        ));
    }
    if name.len() > 255 {
        errs.push(format!(
            "Value '{name}' at '{field}' failed to satisfy constraint: Member must have length less than or equal to 255"
        ));
    }
    if !name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-')
    {
        errs.push(format!(
            "Value '{name}' at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
        ));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(vmsg(errs))
    }
}

/// A `KeySchema` as sent: each element's attribute name and key type, in order. The member
/// constraints have already required both and checked a table's key types.
fn key_schema(
    v: Option<&Value>,
    field: &str,
    max: usize,
) -> Result<Vec<(String, String)>, DdbError> {
    let arr = v.and_then(|v| v.as_array()).ok_or_else(|| {
        DdbError::validation(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))
    })?;
    if arr.is_empty() || arr.len() > max {
        let (bound, n) = if arr.is_empty() {
            ("greater", 1)
        } else {
            ("less", max)
        };
        return Err(DdbError::validation(format!(
            "1 validation error detected: Value '{}' at '{field}' failed to satisfy constraint: Member must have length {bound} than or equal to {n}",
            Value::Array(arr.clone())
        )));
    }
    arr.iter()
        .map(|e| {
            Ok((
                req_str(e, "AttributeName")?.to_string(),
                req_str(e, "KeyType")?.to_string(),
            ))
        })
        .collect()
}

/// DynamoDB's checks of a table's or an index's key schema against the attribute
/// definitions, in its order: every key defined, two different names, HASH then RANGE.
/// `multi` names a global index, whose key may have up to four HASH attributes followed by
/// up to four RANGE attributes (multi-attribute keys).
fn check_keys(
    keys: &[(String, String)],
    defs: &[KeySpec],
    multi: Option<&str>,
) -> Result<(), DdbError> {
    if keys.iter().any(|(n, _)| !defs.iter().any(|d| &d.name == n)) {
        let names: Vec<&str> = keys.iter().map(|(n, _)| n.as_str()).collect();
        let defined: Vec<&str> = defs.iter().map(|k| k.name.as_str()).collect();
        return Err(DdbError::validation(format!(
            "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [{}], AttributeDefinitions: [{}]",
            names.join(", "),
            defined.join(", ")
        )));
    }
    if let [(a, _), (b, _)] = keys
        && a == b
    {
        return Err(DdbError::validation(
            "Both the Hash Key and the Range Key element in the KeySchema have the same name",
        ));
    }
    let repeated = keys
        .iter()
        .enumerate()
        .find(|(i, (n, _))| keys[..*i].iter().any(|(m, _)| m == n));
    if let (Some(ix), Some((_, (n, _)))) = (multi, repeated) {
        return Err(DdbError::validation(format!(
            "One or more parameter values were invalid: Two KeySchema elements of index {ix} have the same name: {n}"
        )));
    }
    if keys.first().is_some_and(|(_, t)| t != "HASH") {
        return Err(DdbError::validation(
            "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
        ));
    }
    let second = keys.get(1).map(|(_, t)| t.as_str());
    let Some(ix) = multi.filter(|_| second.is_none_or(|t| t == "HASH" || t == "RANGE")) else {
        if second.is_some_and(|t| t != "RANGE") {
            return Err(DdbError::validation(
                "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type",
            ));
        }
        return Ok(());
    };
    if let Some((i, (_, t))) = keys
        .iter()
        .enumerate()
        .find(|(_, (_, t))| t != "HASH" && t != "RANGE")
    {
        return Err(DdbError::validation(format!(
            "Invalid KeySchema: KeySchemaElement {} of index {ix} is neither a HASH nor a RANGE key type: {t}",
            i + 1
        )));
    }
    let hashes = keys.iter().take_while(|(_, t)| t == "HASH").count();
    if keys[hashes..].iter().any(|(_, t)| t == "HASH") {
        return Err(DdbError::validation(format!(
            "One or more parameter values were invalid: Invalid KeySchema of index {ix}: every HASH key element must precede the RANGE key elements"
        )));
    }
    for (kind, n) in [("HASH", hashes), ("RANGE", keys.len() - hashes)] {
        if n > MAX_KEY_ATTRIBUTES {
            return Err(DdbError::validation(format!(
                "One or more parameter values were invalid: Index {ix} has {n} {kind} key attributes; a global secondary index takes at most {MAX_KEY_ATTRIBUTES} {kind} key attributes"
            )));
        }
    }
    Ok(())
}

/// The most attributes a global secondary index's partition key, and its sort key, may have.
pub const MAX_KEY_ATTRIBUTES: usize = 4;

/// The largest throughput DynamoDB takes for a table or an index.
const MAX_UNITS: i64 = 1_000_000_000_000;

/// A `ProvisionedThroughput` as sent: its read and write units, either absent.
fn units(v: Option<&Value>) -> Option<(Option<i64>, Option<i64>)> {
    let pt = v.filter(|v| !v.is_null())?;
    let get = |f: &str| pt.get(f).and_then(Value::as_i64);
    Some((get("ReadCapacityUnits"), get("WriteCapacityUnits")))
}

/// CreateTable's checks of the table's throughput against its billing mode: none with
/// PAY_PER_REQUEST, both units (within bounds) with PROVISIONED.
fn table_throughput(v: Option<&Value>, billing: Billing) -> Result<(i64, i64), DdbError> {
    let tp = units(v);
    if billing == Billing::PayPerRequest {
        return match tp {
            None => Ok((0, 0)),
            Some(_) => Err(DdbError::validation(
                "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
            )),
        };
    }
    let Some((Some(r), Some(w))) = tp.filter(|t| t.0 != Some(0) && t.1 != Some(0)) else {
        return Err(DdbError::validation(
            "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
        ));
    };
    out_of_bounds(r, w)?;
    if r < 1 || w < 1 {
        return Err(DdbError::validation(
            "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be greater than 0",
        ));
    }
    Ok((r, w))
}

/// DynamoDB's answer to read or write units above its bound (the read units first).
pub fn out_of_bounds(r: i64, w: i64) -> Result<(), DdbError> {
    for (n, what) in [(r, "ReadCapacityUnits"), (w, "WriteCapacityUnits")] {
        if n > MAX_UNITS {
            return Err(DdbError::validation(format!(
                "Given value {n} for {what} is out of bounds"
            )));
        }
    }
    Ok(())
}

/// Parse attribute definitions into name -> type.
pub fn attr_defs(v: Option<&Value>) -> Result<Vec<KeySpec>, DdbError> {
    let arr = v.and_then(|v| v.as_array()).ok_or_else(|| {
        DdbError::validation(
            "1 validation error detected: Value null at 'attributeDefinitions' failed to satisfy constraint: Member must not be null",
        )
    })?;
    let mut out: Vec<KeySpec> = Vec::new();
    for e in arr {
        let name = req_str(e, "AttributeName")?.to_string();
        let ty = req_str(e, "AttributeType")?.to_string();
        if !matches!(ty.as_str(), "S" | "N" | "B") {
            return Err(DdbError::validation(format!(
                "1 validation error detected: Value '{ty}' at 'attributeDefinitions.1.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]"
            )));
        }
        if out.iter().any(|k| k.name == name) {
            return Err(DdbError::validation(format!(
                "Cannot have two attributes with the same name: duplicate AttributeName {name} in AttributeDefinitions"
            )));
        }
        out.push(KeySpec { name, ty });
    }
    Ok(out)
}

/// `BillingMode`: how a table's throughput is paid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Billing {
    Provisioned,
    PayPerRequest,
}

impl Billing {
    /// A `BillingMode` member, or DynamoDB's message for a value it does not know.
    pub fn parse(b: &str) -> Result<Billing, DdbError> {
        match b {
            "PROVISIONED" => Ok(Billing::Provisioned),
            "PAY_PER_REQUEST" => Ok(Billing::PayPerRequest),
            other => Err(vmsg(vec![format!(
                "Value '{other}' at 'billingMode' failed to satisfy constraint: Member must satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]"
            )])),
        }
    }

    /// The wire name, as [`TableMeta::billing`] keeps it.
    pub fn as_str(self) -> &'static str {
        match self {
            Billing::Provisioned => "PROVISIONED",
            Billing::PayPerRequest => "PAY_PER_REQUEST",
        }
    }
}

/// A `StreamSpecification` of CreateTable or UpdateTable: whether `StreamEnabled` is true,
/// and the `StreamViewType`. `None` when the member is absent (or null).
pub fn stream_spec(req: &Value) -> Option<(bool, Option<&str>)> {
    let s = req.get("StreamSpecification").filter(|s| !s.is_null())?;
    let enabled = s
        .get("StreamEnabled")
        .and_then(crate::table::req::as_boolean)
        == Some(true);
    Some((enabled, opt_str(s, "StreamViewType")))
}

/// A GSI or LSI definition as sent. CreateTable checks it step by step in DynamoDB's order
/// ([`IndexDef::check_keys`], [`IndexDef::check_projection`], [`IndexDef::throughput`]);
/// [`IndexDef::resolve`] runs those checks for UpdateTable's Create action.
#[derive(Debug)]
pub struct IndexDef {
    name: String,
    /// The key schema: attribute names and key types, as sent.
    keys: Vec<(String, String)>,
    /// `ProjectionType`, when given.
    projection: Option<String>,
    /// `NonKeyAttributes`, when given.
    non_key: Option<Vec<String>>,
    /// A GSI's `ProvisionedThroughput`, when given (an LSI's is not read).
    throughput: Option<(i64, i64)>,
    global: bool,
    /// A GSI's `WarmThroughput` and `OnDemandThroughput`, when given.
    warm: Option<(Option<i64>, Option<i64>)>,
    on_demand: Option<(Option<i64>, Option<i64>)>,
}

impl IndexDef {
    /// Read one GSI/LSI definition: its name, key schema, projection and (for a GSI)
    /// throughput. Its members' own constraints were checked with the request's.
    pub fn parse(v: &Value, global: bool) -> Result<IndexDef, DdbError> {
        let name = req_str(v, "IndexName")?.to_string();
        validate_table_name(&name, "indexName")?;
        let max = if global { usize::MAX } else { 2 };
        let keys = key_schema(v.get("KeySchema"), "keySchema", max)?;
        let p = v
            .get("Projection")
            .filter(|p| !p.is_null())
            .ok_or_else(|| {
                DdbError::validation(
                    "One or more parameter values were invalid: Projection must be specified",
                )
            })?;
        let non_key = p
            .get("NonKeyAttributes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            });
        let throughput = if global {
            units(v.get("ProvisionedThroughput")).map(|(r, w)| (r.unwrap_or(0), w.unwrap_or(0)))
        } else {
            None
        };
        let (warm, on_demand) = if global {
            index_units(v)?
        } else {
            (None, None)
        };
        Ok(IndexDef {
            name,
            keys,
            projection: opt_str(p, "ProjectionType").map(String::from),
            non_key,
            throughput,
            global,
            warm,
            on_demand,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The index's key schema against the attribute definitions `defs`.
    fn check_keys(&self, defs: &[KeySpec]) -> Result<(), DdbError> {
        check_keys(&self.keys, defs, self.global.then_some(self.name.as_str()))
    }

    /// The projection: a type must be given, and NonKeyAttributes with INCLUDE only.
    fn check_projection(&self) -> Result<(), DdbError> {
        match (self.projection.as_deref(), &self.non_key) {
            (None, _) => Err(DdbError::validation(
                "One or more parameter values were invalid: Unknown ProjectionType: null",
            )),
            (Some(ty), Some(_)) if ty != "INCLUDE" => Err(DdbError::validation(format!(
                "One or more parameter values were invalid: ProjectionType is {ty}, but NonKeyAttributes is specified"
            ))),
            (Some("INCLUDE"), None) => Err(DdbError::validation(
                "One or more parameter values were invalid: ProjectionType is INCLUDE, but NonKeyAttributes is not specified",
            )),
            (_, Some(names)) => {
                // Projected names are limited as key attribute names are, 1 to 255 bytes.
                if names.iter().any(|n| n.is_empty() || n.len() > 255) {
                    return Err(DdbError::validation(
                        "One or more parameter values were invalid: Projected attribute names in NonKeyAttributes must be 1 to 255 bytes long",
                    ));
                }
                match names
                    .iter()
                    .enumerate()
                    .find(|(i, n)| names[..*i].contains(n))
                {
                    Some((_, n)) => Err(DdbError::validation(format!(
                        "One or more parameter values were invalid: Duplicate attribute name in NonKeyAttributes: {n}"
                    ))),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// A GSI's throughput checked against the table's billing mode (an LSI has none).
    fn throughput(&self, pay_per_request: bool) -> Result<(i64, i64), DdbError> {
        if !self.global {
            return Ok((0, 0));
        }
        let name = &self.name;
        match self.throughput {
            Some(t) if !pay_per_request => Ok(t),
            None if pay_per_request => Ok((0, 0)),
            Some(_) => Err(DdbError::validation(format!(
                "One or more parameter values were invalid: ProvisionedThroughput should not be specified for index: {name} when BillingMode is PAY_PER_REQUEST"
            ))),
            None => Err(DdbError::validation(format!(
                "One or more parameter values were invalid: ProvisionedThroughput must be specified for index: {name}"
            ))),
        }
    }

    /// The index, once checked, with its key attributes' types from `defs`.
    fn into_meta(self, defs: &[KeySpec], (rcu, wcu): (i64, i64)) -> IndexMeta {
        let spec = |n: &str| {
            defs.iter()
                .find(|d| d.name == n)
                .cloned()
                .unwrap_or_else(|| KeySpec {
                    name: n.to_string(),
                    ty: "S".to_string(),
                })
        };
        let hashes = self
            .keys
            .iter()
            .take_while(|(_, t)| t == "HASH")
            .count()
            .max(1);
        let (hash, range) = self.keys.split_at(hashes.min(self.keys.len()));
        IndexMeta {
            hash: spec(&hash[0].0),
            more_hash: hash[1..].iter().map(|(n, _)| spec(n)).collect(),
            range: range.first().map(|(r, _)| spec(r)),
            more_range: range.iter().skip(1).map(|(n, _)| spec(n)).collect(),
            name: self.name,
            projection: self.projection.unwrap_or_else(|| "ALL".to_string()),
            non_key: self.non_key.unwrap_or_default(),
            rcu,
            wcu,
            global: self.global,
            warm: self.warm,
            on_demand: self.on_demand,
        }
    }

    /// The index checked against the table's attribute definitions `defs` and billing
    /// mode: its keys, its projection, then its throughput.
    pub fn resolve(self, defs: &[KeySpec], pay_per_request: bool) -> Result<IndexMeta, DdbError> {
        self.check_keys(defs)?;
        self.check_projection()?;
        let t = self.throughput(pay_per_request)?;
        Ok(self.into_meta(defs, t))
    }
}

/// A CreateTable request, validated as DynamoDB validates it: the new table's definition,
/// without the id and creation time [`TableMeta::new`] adds.
#[derive(Debug)]
pub struct TableDef {
    name: String,
    attr_defs: Vec<KeySpec>,
    hash: KeySpec,
    range: Option<KeySpec>,
    billing: Billing,
    rcu: i64,
    wcu: i64,
    indexes: Vec<IndexMeta>,
    tags: BTreeMap<String, String>,
    /// The stream view type when the table is created with a stream.
    stream: Option<String>,
    deletion_protection: bool,
    extras: Extras,
}

impl TableDef {
    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl TableDef {
    /// Read and validate a CreateTable request, in DynamoDB's order: the throughput against
    /// the billing mode, the table's key schema, the local indexes, the global ones, then
    /// what DynamoDB checks after them (unused definitions, tags, the stream).
    pub fn parse(req: &Value) -> Result<TableDef, DdbError> {
        let name = req_str(req, "TableName")?.to_string();
        validate_table_name(&name, "tableName")?;
        let defs = attr_defs(req.get("AttributeDefinitions"))?;
        let keys = key_schema(req.get("KeySchema"), "keySchema", 2)?;
        let billing = Billing::parse(opt_str(req, "BillingMode").unwrap_or("PROVISIONED"))?;
        let ppr = billing == Billing::PayPerRequest;
        let (rcu, wcu) = table_throughput(req.get("ProvisionedThroughput"), billing)?;
        if keys.len() > defs.len() {
            return Err(DdbError::validation(
                "Invalid KeySchema: Some index key attribute have no definition",
            ));
        }
        check_keys(&keys, &defs, None)?;
        let list = |field: &str| req.get(field).and_then(Value::as_array);
        let (lsis, gsis) = (
            list("LocalSecondaryIndexes"),
            list("GlobalSecondaryIndexes"),
        );
        if lsis.is_none() && gsis.is_none() && keys.len() != defs.len() {
            return Err(spare_definitions());
        }
        let spec = |n: &str| defs.iter().find(|d| d.name == n).cloned();
        let (Some(hash), range) = (spec(&keys[0].0), keys.get(1).and_then(|(r, _)| spec(r))) else {
            return Err(DdbError::validation(
                "Invalid KeySchema: Some index key attribute have no definition",
            ));
        };
        let mut indexes: Vec<IndexMeta> = Vec::new();
        let duplicate = |indexes: &[IndexMeta], ix: &IndexDef| {
            if indexes.iter().any(|i| i.name == ix.name) {
                Err(DdbError::validation(format!(
                    "One or more parameter values were invalid: Duplicate index name: {}",
                    ix.name
                )))
            } else {
                Ok(())
            }
        };
        if let Some(l) = lsis {
            if l.is_empty() {
                return Err(DdbError::validation(
                    "One or more parameter values were invalid: List of LocalSecondaryIndexes is empty",
                ));
            }
            if range.is_none() {
                return Err(DdbError::validation(
                    "One or more parameter values were invalid: Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex",
                ));
            }
            for i in l {
                let ix = IndexDef::parse(i, false)?;
                ix.check_keys(&defs)?;
                if ix.keys.len() != 2 {
                    return Err(DdbError::validation(format!(
                        "One or more parameter values were invalid: Index KeySchema does not have a range key for index: {}",
                        ix.name
                    )));
                }
                if ix.keys[0].0 != hash.name {
                    return Err(DdbError::validation(format!(
                        "One or more parameter values were invalid: Index KeySchema does not have the same leading hash key as table KeySchema for index: {}. index hash key: {}, table hash key: {}",
                        ix.name, ix.keys[0].0, hash.name
                    )));
                }
                ix.check_projection()?;
                duplicate(&indexes, &ix)?;
                indexes.push(ix.into_meta(&defs, (0, 0)));
            }
            if l.len() > 5 {
                return Err(DdbError::validation(
                    "One or more parameter values were invalid: Number of LocalSecondaryIndexes exceeds per-table limit of 5",
                ));
            }
        }
        if let Some(g) = gsis {
            if g.is_empty() {
                return Err(DdbError::validation(
                    "One or more parameter values were invalid: List of GlobalSecondaryIndexes is empty",
                ));
            }
            for i in g {
                let ix = IndexDef::parse(i, true)?;
                ix.check_keys(&defs)?;
                ix.check_projection()?;
                let t = ix.throughput(ppr)?;
                duplicate(&indexes, &ix)?;
                indexes.push(ix.into_meta(&defs, t));
            }
            if g.len() > 20 {
                return Err(DdbError::validation(
                    "One or more parameter values were invalid: GlobalSecondaryIndex count exceeds the per-table limit of 20",
                ));
            }
        }
        // Every definition must be used by a key: AWS rejects spare ones.
        let used = |n: &str| {
            hash.name == n
                || range.as_ref().is_some_and(|r| r.name == n)
                || indexes.iter().any(|i| i.key_specs().any(|k| k.name == n))
        };
        if defs.iter().any(|d| !used(&d.name)) {
            return Err(spare_definitions());
        }
        let mut tags = BTreeMap::new();
        if let Some(t) = req.get("Tags") {
            tags = parse_tags(t)?;
        }
        let stream = match stream_spec(req) {
            None | Some((false, None)) => None,
            Some((true, Some(view))) => Some(view.to_string()),
            Some((true, None)) => {
                return Err(DdbError::validation(
                    "One or more parameter values were invalid: Table is being created with a stream enabled, UpdateViewType is required",
                ));
            }
            Some((false, Some(_))) => {
                return Err(DdbError::validation(
                    "One or more parameter values were invalid: Table is being created with a stream disabled, UpdateViewType should not be specified",
                ));
            }
        };
        let mut extras = Extras::default();
        ExtrasChange::parse(req)?.apply(&mut extras, None);
        Ok(TableDef {
            name,
            extras,
            attr_defs: defs,
            hash,
            range,
            billing,
            rcu,
            wcu,
            indexes,
            tags,
            stream,
            deletion_protection: req
                .get("DeletionProtectionEnabled")
                .and_then(crate::table::req::as_boolean)
                .unwrap_or(false),
        })
    }
}

impl TableMeta {
    /// The table `def` defines, with its id and creation time (seconds since the epoch).
    pub fn new(def: TableDef, id: String, created: f64) -> TableMeta {
        // The stream is created with the table; its label is the table's creation time.
        let stream_label = def
            .stream
            .as_ref()
            .map(|_| crate::civil::iso8601_millis((created * 1000.0).round() as u64));
        TableMeta {
            name: def.name,
            id,
            attr_defs: def.attr_defs,
            hash: def.hash,
            range: def.range,
            billing: def.billing.as_str().to_string(),
            rcu: def.rcu,
            wcu: def.wcu,
            created,
            indexes: def.indexes,
            tags: def.tags,
            ttl: None,
            deletion_protection: def.deletion_protection,
            stream: def.stream,
            stream_label,
            ppr_since: None,
            last_increase: None,
            last_decrease: None,
            decreases: (0, 0),
            policy: None,
            pitr: None,
            restore: None,
            extras: def.extras,
            insights: BTreeMap::new(),
        }
    }

    /// The ARN of the table's latest stream, if it ever had one.
    pub fn latest_stream_arn(&self) -> Option<String> {
        self.stream_label
            .as_ref()
            .map(|l| super::streams::stream_arn(&self.name, l))
    }

    pub fn index(&self, name: &str) -> Option<&IndexMeta> {
        self.indexes.iter().find(|i| i.name == name)
    }

    pub fn is_key_attr(&self, n: &str) -> bool {
        self.hash.name == n || self.range.as_ref().is_some_and(|r| r.name == n)
    }

    pub(crate) fn key_schema_json(hash: &KeySpec, range: &Option<KeySpec>) -> Value {
        let mut v = vec![json!({"AttributeName": hash.name, "KeyType": "HASH"})];
        if let Some(r) = range {
            v.push(json!({"AttributeName": r.name, "KeyType": "RANGE"}));
        }
        Value::Array(v)
    }

    /// The `TableDescription` object, but for `ProvisionedThroughput`, which depends on the
    /// table's phase ([`TableMeta::provisioned_throughput`]).
    pub fn describe(
        &self,
        status: &str,
        item_count: usize,
        size: usize,
        index_stats: &BTreeMap<String, (usize, usize)>,
        index_status: &BTreeMap<String, &'static str>,
        deleting: &[IndexMeta],
    ) -> Value {
        let arn = table_arn(&self.name);
        let mut d = json!({
            "AttributeDefinitions": self.attr_defs.iter().map(|k| json!({"AttributeName": k.name, "AttributeType": k.ty})).collect::<Vec<_>>(),
            "TableName": self.name,
            "KeySchema": Self::key_schema_json(&self.hash, &self.range),
            "TableStatus": status,
            "CreationDateTime": self.created,
            "TableSizeBytes": size,
            "ItemCount": item_count,
            "TableArn": arn,
            "TableId": self.id,
        });
        if self.deletion_protection {
            d["DeletionProtectionEnabled"] = json!(true);
        }
        if let Some(r) = &self.restore {
            d["RestoreSummary"] = r.clone();
        }
        self.extras.describe(&mut d);
        if self.billing == "PAY_PER_REQUEST" {
            // When the table went on demand: when UpdateTable switched it, else when it was
            // created (stamped once it exists; CreateTable's own answer has none).
            let since = self
                .ppr_since
                .or((status != "CREATING").then_some(self.created));
            d["BillingModeSummary"] = match since {
                Some(t) => {
                    json!({"BillingMode": "PAY_PER_REQUEST", "LastUpdateToPayPerRequestDateTime": t})
                }
                None => json!({"BillingMode": "PAY_PER_REQUEST"}),
            };
            d["TableThroughputModeSummary"] = json!({"TableThroughputMode": "PAY_PER_REQUEST"});
        }
        if let Some(view) = &self.stream {
            d["StreamSpecification"] = json!({"StreamEnabled": true, "StreamViewType": view});
        }
        if let (Some(label), Some(latest)) = (&self.stream_label, self.latest_stream_arn()) {
            d["LatestStreamLabel"] = json!(label);
            d["LatestStreamArn"] = json!(latest);
        }
        let mut gsis = Vec::new();
        let mut lsis = Vec::new();
        for i in self.indexes.iter().chain(deleting) {
            let (count, bytes) = index_stats.get(&i.name).copied().unwrap_or((0, 0));
            let mut o = json!({
                "IndexName": i.name,
                "KeySchema": i.key_schema_json(),
                "Projection": i.projection_json(),
                "IndexSizeBytes": bytes,
                "ItemCount": count,
                "IndexArn": format!("{arn}/index/{}", i.name),
            });
            if i.global {
                // A new table's indexes are created with it (CREATING, without Backfilling);
                // an index added later backfills.
                let added = index_status.get(&i.name).copied();
                let status = added.unwrap_or(if status == "CREATING" {
                    "CREATING"
                } else {
                    "ACTIVE"
                });
                o["IndexStatus"] = json!(status);
                if added == Some("CREATING") {
                    o["Backfilling"] = json!(false);
                }
                o["ProvisionedThroughput"] = json!({"NumberOfDecreasesToday": 0, "ReadCapacityUnits": i.rcu, "WriteCapacityUnits": i.wcu});
                if let Some(units) = i.warm {
                    o["WarmThroughput"] = warm_json(units);
                }
                if let Some(units) = i.on_demand {
                    o["OnDemandThroughput"] = on_demand_json(units);
                }
                gsis.push(o);
            } else {
                lsis.push(o);
            }
        }
        if !gsis.is_empty() {
            d["GlobalSecondaryIndexes"] = Value::Array(gsis);
        }
        if !lsis.is_empty() {
            d["LocalSecondaryIndexes"] = Value::Array(lsis);
        }
        d
    }
}

/// DynamoDB's answer to attribute definitions that no key uses.
fn spare_definitions() -> DdbError {
    DdbError::validation(
        "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
    )
}

pub fn parse_tags(v: &Value) -> Result<BTreeMap<String, String>, DdbError> {
    let arr = v
        .as_array()
        .ok_or_else(|| DdbError::serialization("Tags must be a list"))?;
    let mut out = BTreeMap::new();
    for t in arr {
        let k = req_str(t, "Key")?;
        let val = req_str(t, "Value")?;
        // Lengths in characters; letters, digits, whitespace and `+ - = . _ : / @` only.
        let (kn, vn) = (k.chars().count(), val.chars().count());
        if k.is_empty() || kn > 128 || vn > 256 {
            return Err(DdbError::validation(
                "One or more parameter values were invalid: Tag key or value length is invalid",
            ));
        }
        let allowed = |c: char| c.is_alphanumeric() || c.is_whitespace() || "+-=._:/@".contains(c);
        if !k.chars().all(allowed) || !val.chars().all(allowed) {
            return Err(DdbError::validation(
                "One or more parameter values were invalid: Tag keys and values may contain only letters, digits, whitespace and + - = . _ : / @",
            ));
        }
        out.insert(k.to_string(), val.to_string());
    }
    if out.len() > 50 {
        return Err(DdbError::validation(
            "One or more parameter values were invalid: The number of tags exceeds the limit of 50",
        ));
    }
    Ok(out)
}

/// Where a key value comes from, which DynamoDB's messages about it name.
#[derive(Debug, Clone, Copy)]
pub enum KeyOf<'a> {
    /// An item being written.
    Item,
    /// An item's entry in the named secondary index.
    Index(&'a str),
    /// A `Key` parameter (GetItem, DeleteItem, UpdateItem, batch reads).
    Param,
}

/// A scalar key value of the declared type, or the AWS message for why not.
pub fn key_value(spec: &KeySpec, v: Option<&AttrValue>, of: KeyOf) -> Result<KeyVal, DdbError> {
    let Some(v) = v else {
        return Err(DdbError::validation(format!(
            "One or more parameter values were invalid: Missing the key {} in the item",
            spec.name
        )));
    };
    if v.type_name() != spec.ty {
        return Err(DdbError::validation(match of {
            KeyOf::Item | KeyOf::Param => format!(
                "One or more parameter values were invalid: Type mismatch for key {} expected: {} actual: {}",
                spec.name,
                spec.ty,
                v.type_name()
            ),
            KeyOf::Index(ix) => format!(
                "One or more parameter values were invalid: Type mismatch for Index Key {} Expected: {} Actual: {} IndexName: {ix}",
                spec.name,
                spec.ty,
                v.type_name()
            ),
        }));
    }
    let empty = match v {
        AttrValue::S(s) => s.is_empty().then_some("string"),
        AttrValue::B(b) => b.is_empty().then_some("binary"),
        _ => None,
    };
    if let Some(kind) = empty {
        return Err(DdbError::validation(match of {
            KeyOf::Item => format!(
                "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty {kind} value. Key: {}",
                spec.name
            ),
            // DynamoDB words a key parameter's empty value differently from an item's.
            KeyOf::Param => format!(
                "One or more parameter values were invalid: The AttributeValue for a key attribute cannot contain an empty {kind} value. Key: {}",
                spec.name
            ),
            KeyOf::Index(ix) => format!(
                "One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a key attribute cannot contain an empty {kind} value. IndexName: {ix}, IndexKey: {}",
                spec.name
            ),
        }));
    }
    KeyVal::from_attr(v)
        .ok_or_else(|| DdbError::validation("The provided key element does not match the schema"))
}
