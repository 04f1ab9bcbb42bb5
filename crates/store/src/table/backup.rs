//! On-demand backups: `CreateBackup` keeps a copy of a table (its definition and every item
//! as of the request), `RestoreTableFromBackup` makes a new table from one, and
//! `DescribeBackup` / `ListBackups` / `DeleteBackup` manage them.
//!
//! A backup is journaled as a table that no request can name: its definition row is
//! `backup:<id>` in `ddb_tables` (a [`BackupMeta`], not a table's) and its items are rows of
//! `ddb_items` under the same name; deleting the backup drops both, as dropping a table does.
//! Table names cannot contain `:`, so the two never meet.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::engine::{Phase, Table};
use super::error::{DdbError, ErrorCode};
use super::meta::{IndexMeta, KeySpec, TableMeta, table_arn};
use super::value::{Item, item_size};
use super::{TableEngine, ready};
use crate::journal::{Record, Ticket};
use crate::table_record::TableRecord;

/// The `ddb_tables` name prefix of backups.
pub const PREFIX: &str = "backup:";

/// A backup's description: what `DescribeBackup` answers, and the table it copies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupMeta {
    pub arn: String,
    pub name: String,
    /// Seconds since the epoch (with milliseconds) the backup was taken.
    pub created: f64,
    pub size_bytes: usize,
    pub item_count: usize,
    /// The table's definition when the backup was taken.
    pub table: TableMeta,
    /// `USER` (CreateBackup) or `SYSTEM` (taken by DeleteTable of a table with point-in-time
    /// recovery on).
    #[serde(default = "user_kind")]
    pub kind: String,
    /// When a `SYSTEM` backup expires (seconds since the epoch); USER backups do not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<f64>,
}

fn user_kind() -> String {
    "USER".into()
}

/// How long DynamoDB keeps the SYSTEM backup of a deleted table: 35 days.
const SYSTEM_BACKUP_MS: u64 = 35 * 86_400_000;

/// A backup: its description and the items it holds.
#[derive(Debug, Clone)]
pub struct Backup {
    pub meta: BackupMeta,
    pub items: Vec<Arc<Item>>,
}

impl BackupMeta {
    /// The row name the backup is journaled under.
    pub fn row(&self) -> String {
        format!("{PREFIX}{}", self.arn)
    }

    fn details(&self, status: &str) -> Value {
        let mut d = json!({
            "BackupArn": self.arn,
            "BackupName": self.name,
            "BackupSizeBytes": self.size_bytes,
            "BackupStatus": status,
            "BackupType": self.kind,
            "BackupCreationDateTime": self.created,
        });
        if let Some(at) = self.expires {
            d["BackupExpiryDateTime"] = json!(at);
        }
        d
    }

    /// Whether the backup is gone at `now_ms` (a SYSTEM backup past its expiry).
    pub fn expired(&self, now_ms: u64) -> bool {
        self.expires.is_some_and(|at| at * 1000.0 <= now_ms as f64)
    }

    fn summary(&self) -> Value {
        let mut s = json!({
            "TableName": self.table.name,
            "TableId": self.table.id,
            "TableArn": table_arn(&self.table.name),
            "BackupArn": self.arn,
            "BackupName": self.name,
            "BackupCreationDateTime": self.created,
            "BackupStatus": "AVAILABLE",
            "BackupType": self.kind,
            "BackupSizeBytes": self.size_bytes,
        });
        if let Some(at) = self.expires {
            s["BackupExpiryDateTime"] = json!(at);
        }
        s
    }

    /// `BackupDescription`: the backup, its source table, and the table's features.
    fn description(&self, status: &str) -> Value {
        let t = &self.table;
        let mut source = json!({
            "TableName": t.name,
            "TableId": t.id,
            "TableArn": table_arn(&t.name),
            "TableSizeBytes": self.size_bytes,
            "KeySchema": TableMeta::key_schema_json(&t.hash, &t.range),
            "TableCreationDateTime": t.created,
            "ProvisionedThroughput": {"ReadCapacityUnits": t.rcu, "WriteCapacityUnits": t.wcu},
            "ItemCount": self.item_count,
            "BillingMode": t.billing,
        });
        if t.billing == "PAY_PER_REQUEST" {
            source["ProvisionedThroughput"] =
                json!({"ReadCapacityUnits": 0, "WriteCapacityUnits": 0});
        }
        let index = |i: &IndexMeta| {
            let mut o = json!({
                "IndexName": i.name,
                "KeySchema": i.key_schema_json(),
                "Projection": i.projection_json(),
            });
            if i.global {
                o["ProvisionedThroughput"] =
                    json!({"ReadCapacityUnits": i.rcu, "WriteCapacityUnits": i.wcu});
            }
            o
        };
        let mut features = json!({});
        let lsis: Vec<Value> = t.indexes.iter().filter(|i| !i.global).map(index).collect();
        let gsis: Vec<Value> = t.indexes.iter().filter(|i| i.global).map(index).collect();
        if !lsis.is_empty() {
            features["LocalSecondaryIndexes"] = Value::Array(lsis);
        }
        if !gsis.is_empty() {
            features["GlobalSecondaryIndexes"] = Value::Array(gsis);
        }
        if let Some(view) = &t.stream {
            features["StreamDescription"] = json!({"StreamEnabled": true, "StreamViewType": view});
        }
        if let Some(attr) = &t.ttl {
            features["TimeToLiveDescription"] =
                json!({"TimeToLiveStatus": "ENABLED", "AttributeName": attr});
        }
        json!({
            "BackupDetails": self.details(status),
            "SourceTableDetails": source,
            "SourceTableFeatureDetails": features,
        })
    }
}

/// What a restore may change of the backed-up definition.
#[derive(Debug, Default)]
pub struct RestoreOverrides {
    pub billing: Option<String>,
    pub throughput: Option<(i64, i64)>,
    /// Replaces the global indexes (an empty list drops them all).
    pub gsis: Option<Vec<IndexMeta>>,
    pub lsis: Option<Vec<IndexMeta>>,
    /// `SSESpecificationOverride`: the restored table's KMS key, or `Some(None)` for
    /// DynamoDB's own key (else it keeps the source's).
    pub kms_key: Option<Option<String>>,
    /// `OnDemandThroughputOverride`: the restored table's maximum request units in place of
    /// the source's.
    pub on_demand: super::meta::UnitPair,
}

/// A restore's target must not be a table yet.
pub(crate) fn target_free(g: &super::Tables, target: &str) -> Result<(), DdbError> {
    if g.by_name.contains_key(target) {
        return Err(DdbError::new(
            ErrorCode::TableAlreadyExists,
            format!("Table already exists: {target}"),
        ));
    }
    Ok(())
}

fn backup_not_found(arn: &str) -> DdbError {
    DdbError::new(
        ErrorCode::BackupNotFound,
        format!("Backup not found: {arn}"),
    )
}

impl TableEngine {
    /// `CreateBackup` of table `name`: a copy of its definition and items now.
    pub(crate) fn create_backup(
        &self,
        name: &str,
        backup_name: &str,
    ) -> Result<(Value, Ticket), DdbError> {
        self.journal.check()?;
        let mut g = self.state.write();
        let t = g
            .by_name
            .get(name)
            .filter(|t| t.phase == Phase::Active || t.phase == Phase::Updating)
            .ok_or_else(|| {
                DdbError::new(ErrorCode::TableNotFound, format!("Table not found: {name}"))
            })?;
        let now = self.clock.now().as_millis();
        let (backup, records) = self.snapshot(t, backup_name, "USER", None, now)?;
        let answer = json!({"BackupDetails": backup.meta.details("AVAILABLE")});
        g.backups.insert(backup.meta.arn.clone(), backup);
        Ok((answer, self.submit(records)))
    }

    /// A backup of table `t` as it is at `now` (ms) and the records that journal it.
    fn snapshot(
        &self,
        t: &Table,
        backup_name: &str,
        kind: &str,
        expires: Option<f64>,
        now: u64,
    ) -> Result<(Backup, Vec<Record>), DdbError> {
        // AWS's form: the creation time in milliseconds, then 8 hex digits.
        let id = self.next_id();
        let arn = format!(
            "{}/backup/{now:014}-{}",
            table_arn(&t.meta.name),
            &id.replace('-', "")[..8]
        );
        let items: Vec<Arc<Item>> = t.items.values().flat_map(|p| p.values().cloned()).collect();
        let meta = BackupMeta {
            arn,
            name: backup_name.to_string(),
            created: now as f64 / 1000.0,
            size_bytes: items.iter().map(|i| item_size(i)).sum(),
            item_count: items.len(),
            table: t.meta.clone(),
            kind: kind.to_string(),
            expires,
        };
        let row: Arc<str> = Arc::from(meta.row());
        let mut records = vec![Record::Table(TableRecord::PutTable {
            name: row.to_string(),
            meta: serde_json::to_string(&meta).unwrap_or_default(),
        })];
        for item in &items {
            let pk = t.key_of_item(item)?;
            records.push(Record::Table(TableRecord::PutItem {
                table: row.clone(),
                key: super::engine::key_string(&pk),
                item: item.clone(),
            }));
        }
        Ok((Backup { meta, items }, records))
    }

    /// DeleteTable of table `name` with point-in-time recovery on: DynamoDB keeps a SYSTEM
    /// backup of it as it was (`<name>$DeletedTableBackup`) for 35 days, listed with
    /// `BackupType` `SYSTEM` or `ALL` and restorable like any backup. Expired ones go too.
    pub(crate) fn deleted_table_backup(
        &self,
        g: &mut super::Tables,
        name: &str,
        records: &mut Vec<Record>,
    ) -> Result<(), DdbError> {
        let now = self.clock.now().as_millis();
        self.drop_expired_backups(g, now, records);
        let Some(t) = g.by_name.get(name).filter(|t| t.meta.pitr.is_some()) else {
            return Ok(());
        };
        let expires = Some((now + SYSTEM_BACKUP_MS) as f64 / 1000.0);
        let (backup, more) = self.snapshot(
            t,
            &format!("{name}$DeletedTableBackup"),
            "SYSTEM",
            expires,
            now,
        )?;
        records.extend(more);
        g.backups.insert(backup.meta.arn.clone(), backup);
        Ok(())
    }

    /// Forget the SYSTEM backups that expired by `now` (ms).
    fn drop_expired_backups(&self, g: &mut super::Tables, now: u64, records: &mut Vec<Record>) {
        g.backups.retain(|_, b| {
            let keep = !b.meta.expired(now);
            if !keep {
                records.push(Record::Table(TableRecord::DeleteTable {
                    name: b.meta.row(),
                }));
            }
            keep
        });
    }

    /// A backup that exists at `now` (expired SYSTEM backups are gone).
    fn live_backup<'g>(&self, g: &'g super::Tables, arn: &str) -> Result<&'g Backup, DdbError> {
        let now = self.clock.now().as_millis();
        g.backups
            .get(arn)
            .filter(|b| !b.meta.expired(now))
            .ok_or_else(|| backup_not_found(arn))
    }

    /// A backup's attribute definitions and whether its table was billed per request.
    pub(crate) fn backup_definitions(&self, arn: &str) -> Result<(Vec<KeySpec>, bool), DdbError> {
        let g = self.state.read();
        let b = self.live_backup(&g, arn)?;
        let t = &b.meta.table;
        Ok((t.attr_defs.clone(), t.billing == "PAY_PER_REQUEST"))
    }

    pub(crate) fn describe_backup(&self, arn: &str) -> Result<(Value, Ticket), DdbError> {
        let g = self.state.read();
        let b = self.live_backup(&g, arn)?;
        Ok(ready(
            json!({"BackupDescription": b.meta.description("AVAILABLE")}),
        ))
    }

    /// `DeleteBackup`: answers the description with status `DELETED`.
    pub(crate) fn delete_backup(&self, arn: &str) -> Result<(Value, Ticket), DdbError> {
        self.journal.check()?;
        let mut g = self.state.write();
        self.live_backup(&g, arn)?;
        let b = g.backups.remove(arn).ok_or_else(|| backup_not_found(arn))?;
        let ticket = self.submit(vec![Record::Table(TableRecord::DeleteTable {
            name: b.meta.row(),
        })]);
        Ok((
            json!({"BackupDescription": b.meta.description("DELETED")}),
            ticket,
        ))
    }

    /// `ListBackups`: the backups of type `kind` (USER when not given; ALL: every type), of
    /// one table when `table` is given, taken within the time bounds, oldest first, `limit` a
    /// page after `start`.
    pub(crate) fn list_backups(
        &self,
        table: Option<&str>,
        kind: Option<&str>,
        bounds: (Option<f64>, Option<f64>),
        limit: Option<usize>,
        start: Option<&str>,
    ) -> Result<(Value, Ticket), DdbError> {
        let g = self.state.read();
        let now = self.clock.now().as_millis();
        // USER unless asked otherwise, as DynamoDB lists them; ALL is USER and SYSTEM.
        let kind = kind.unwrap_or("USER");
        let mut all: Vec<&BackupMeta> = g
            .backups
            .values()
            .map(|b| &b.meta)
            .filter(|m| !m.expired(now))
            .filter(|m| kind == "ALL" || m.kind == kind)
            .filter(|m| table.is_none_or(|t| m.table.name == t))
            .filter(|m| bounds.0.is_none_or(|lo| m.created >= lo))
            .filter(|m| bounds.1.is_none_or(|hi| m.created <= hi))
            .collect();
        all.sort_by(|a, b| a.created.total_cmp(&b.created).then(a.arn.cmp(&b.arn)));
        if let Some(s) = start {
            let at = all.iter().position(|m| m.arn == s).map_or(0, |i| i + 1);
            all.drain(..at);
        }
        let mut out = json!({});
        if let Some(l) = limit
            && all.len() > l
        {
            all.truncate(l);
            out["LastEvaluatedBackupArn"] = json!(all[l - 1].arn);
        }
        out["BackupSummaries"] = Value::Array(all.iter().map(|m| m.summary()).collect());
        Ok(ready(out))
    }

    /// `RestoreTableFromBackup`: a new table `target` with the backup's definition (as
    /// `overrides` change it) and items, CREATING for the status delay like a new table.
    pub(crate) fn restore_table_from_backup(
        &self,
        arn: &str,
        target: &str,
        overrides: RestoreOverrides,
    ) -> Result<(Value, Ticket), DdbError> {
        self.journal.check()?;
        let fresh = self.new_table_id();
        let mut g = self.state.write();
        let b = self.live_backup(&g, arn)?;
        let summary = json!({
            "SourceBackupArn": b.meta.arn,
            "SourceTableArn": table_arn(&b.meta.table.name),
            "RestoreDateTime": fresh.1,
            "RestoreInProgress": false,
        });
        let (source, items) = (b.meta.table.clone(), b.items.clone());
        self.restore_into(&mut g, fresh, &source, items, target, overrides, summary)
    }

    /// A new table `target` (id and creation time `fresh`) with `source`'s definition as
    /// `overrides` change it, holding `items`, described with the `RestoreSummary` `summary`
    /// and CREATING for the status delay like a new table: what both restores make.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn restore_into(
        &self,
        g: &mut super::Tables,
        fresh: (String, f64),
        source: &TableMeta,
        items: Vec<Arc<Item>>,
        target: &str,
        overrides: RestoreOverrides,
        summary: Value,
    ) -> Result<(Value, Ticket), DdbError> {
        let (id, created) = fresh;
        target_free(g, target)?;
        let mut meta = source.clone();
        meta.name = target.to_string();
        meta.id = id;
        meta.created = created;
        meta.ppr_since = None;
        meta.stream = None;
        meta.stream_label = None;
        meta.ttl = None;
        meta.policy = None;
        meta.pitr = None;
        meta.insights = BTreeMap::new();
        meta.tags = BTreeMap::new();
        meta.restore = Some(summary);
        if let Some(billing) = overrides.billing {
            meta.billing = billing;
        }
        if let Some((r, w)) = overrides.throughput {
            meta.rcu = r;
            meta.wcu = w;
        }
        if let Some(k) = overrides.kms_key {
            meta.extras.kms_key = k;
        }
        if let Some(units) = overrides.on_demand {
            meta.extras.on_demand = Some(units);
        }
        if meta.billing == "PAY_PER_REQUEST" {
            meta.rcu = 0;
            meta.wcu = 0;
        }
        if overrides.gsis.is_some() || overrides.lsis.is_some() {
            let keep_gsis = overrides.gsis.is_none();
            let keep_lsis = overrides.lsis.is_none();
            meta.indexes
                .retain(|i| (i.global && keep_gsis) || (!i.global && keep_lsis));
            meta.indexes.extend(overrides.lsis.unwrap_or_default());
            meta.indexes.extend(overrides.gsis.unwrap_or_default());
        }
        let mut records = vec![Self::table_record(&meta)];
        let row: Arc<str> = Arc::from(target);
        let mut table = Table::new(meta);
        for item in items {
            let pk = table.key_of_item(&item)?;
            records.push(Record::Table(TableRecord::PutItem {
                table: row.clone(),
                key: super::engine::key_string(&pk),
                item: item.clone(),
            }));
            table.load((*item).clone())?;
        }
        if let Some(until) = self.transition_end() {
            table.phase = Phase::Creating;
            table.phase_until = until;
            self.schedule_transition(until);
        }
        let desc = table.describe(self.clock.now().as_millis());
        g.by_name.insert(target.to_string(), table);
        Ok((json!({"TableDescription": desc}), self.submit(records)))
    }
}
