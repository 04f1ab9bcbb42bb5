//! Point-in-time recovery: `RestoreTableToPointInTime` makes a new table from a table as it
//! was at a time within its recovery window.
//!
//! While a table's point-in-time recovery is on (`UpdateContinuousBackups`), every write that
//! changes an item keeps the item it replaced (or that there was none) with the time of the
//! write: the table's [`History`]. The table as of time T is its items now with every write
//! made after T undone, newest first. Entries older than the recovery period are dropped as
//! writes arrive; turning recovery off forgets the history, and turning it on again starts a
//! new window (DynamoDB's `EarliestRestorableDateTime` moves the same way). The window ends
//! five minutes before now (`LatestRestorableDateTime`), as DynamoDB's does.
//!
//! The restored table has the source table's current definition (keys, indexes, billing),
//! changed by the request's overrides, and no stream, TTL, tags or policy, as a restore from
//! a backup; its `RestoreSummary` names the source table and the time restored to.
//!
//! # On-disk format
//! Journaled as a backup is: rows of `ddb_items` under `pitr:<table>` (table names cannot
//! contain `:`), one per entry keyed by its zero-padded sequence number, the item an
//! attribute map `{seq: N, at: N (ms), key: M, old: M (absent when there was no item)}`.
//! Turning recovery off and deleting the table drop them all.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};

use super::TableEngine;
use super::backup::RestoreOverrides;
use super::engine::{Phase, Table};
use super::error::{DdbError, ErrorCode};
use super::meta::{KeySpec, PKey, Pitr, named_table, table_arn};
use super::value::{AttrValue, Item, Number};
use crate::journal::{Record, Ticket};
use crate::table_record::TableRecord;

/// The `ddb_items` table-name prefix of history rows.
pub const PREFIX: &str = "pitr:";

/// One write while recovery was on: the item at `pk` before it (`None`: there was none).
#[derive(Debug, Clone)]
pub struct Entry {
    pub seq: u64,
    pub at_ms: u64,
    pub pk: PKey,
    pub old: Option<Arc<Item>>,
}

/// A table's point-in-time history, oldest first.
#[derive(Debug, Clone, Default)]
pub struct History {
    entries: VecDeque<Entry>,
    last_seq: u64,
}

fn row(table: &str) -> Arc<str> {
    Arc::from(format!("{PREFIX}{table}"))
}

fn seq_key(seq: u64) -> String {
    format!("{seq:020}")
}

fn number(v: u64) -> AttrValue {
    AttrValue::N(Number::from_i64(v.min(i64::MAX as u64) as i64))
}

impl History {
    /// Keep `e` (its `seq` is assigned here), journal it, and drop the entries that fell out
    /// of the recovery period.
    pub fn remember(
        &mut self,
        table: &str,
        pitr: Pitr,
        mut e: Entry,
        keys: Item,
        records: &mut Vec<Record>,
    ) {
        let row = row(table);
        self.last_seq += 1;
        e.seq = self.last_seq;
        let mut item = Item::new();
        item.insert("seq".into(), number(e.seq));
        item.insert("at".into(), number(e.at_ms));
        item.insert("key".into(), AttrValue::M(keys));
        if let Some(old) = &e.old {
            item.insert("old".into(), AttrValue::M((**old).clone()));
        }
        records.push(Record::Table(TableRecord::PutItem {
            table: row.clone(),
            key: seq_key(e.seq),
            item: Arc::new(item),
        }));
        let horizon = e.at_ms.saturating_sub(u64::from(pitr.days) * 86_400_000);
        self.entries.push_back(e);
        while self.entries.front().is_some_and(|f| f.at_ms < horizon) {
            let Some(gone) = self.entries.pop_front() else {
                break;
            };
            records.push(Record::Table(TableRecord::DeleteItem {
                table: row.clone(),
                key: seq_key(gone.seq),
            }));
        }
    }

    /// Forget everything (recovery turned off): the record that drops the rows.
    pub fn forget(&mut self, table: &str) -> Record {
        self.entries.clear();
        Record::Table(TableRecord::DeleteTable {
            name: row(table).to_string(),
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The items of `table` as they were at `at_ms`: now's, with every later write undone.
    fn items_at(table: &Table, at_ms: u64) -> Result<Vec<Arc<Item>>, DdbError> {
        let mut items: BTreeMap<PKey, Arc<Item>> = BTreeMap::new();
        for item in table.items.values().flat_map(|p| p.values()) {
            items.insert(table.key_of_item(item)?, item.clone());
        }
        for e in table.history.entries.iter().rev() {
            if e.at_ms <= at_ms {
                break;
            }
            match &e.old {
                Some(old) => items.insert(e.pk.clone(), old.clone()),
                None => items.remove(&e.pk),
            };
        }
        Ok(items.into_values().collect())
    }

    /// Recovery: add the entry journaled as `item` (in any order; [`History::loaded`] sorts).
    pub fn load(table: &mut Table, item: &Item) -> Result<(), String> {
        let num = |field: &str| match item.get(field) {
            Some(AttrValue::N(n)) => Ok(n.to_f64() as u64),
            _ => Err(format!("history entry without a numeric {field}")),
        };
        let (seq, at_ms) = (num("seq")?, num("at")?);
        let pk = match item.get("key") {
            Some(AttrValue::M(keys)) => table.key_of_item(keys).map_err(|e| e.message)?,
            _ => return Err(format!("history entry {seq} without its key")),
        };
        let old = match item.get("old") {
            None => None,
            Some(AttrValue::M(old)) => Some(Arc::new(old.clone())),
            Some(_) => return Err(format!("history entry {seq}: old item is not a map")),
        };
        let h = &mut table.history;
        h.last_seq = h.last_seq.max(seq);
        h.entries.push_back(Entry {
            seq,
            at_ms,
            pk,
            old,
        });
        Ok(())
    }

    /// Recovery: every entry loaded; put them in the order they were made.
    pub fn loaded(&mut self) {
        self.entries.make_contiguous().sort_by_key(|e| e.seq);
    }
}

/// The source table of a point-in-time restore (`given`: a name or an ARN), when it exists
/// and is not being created or deleted.
fn source<'a>(g: &'a super::Tables, given: &str) -> Result<&'a Table, DdbError> {
    let name = named_table(given);
    g.by_name
        .get(name)
        .filter(|t| t.phase == Phase::Active || t.phase == Phase::Updating)
        .ok_or_else(|| {
            DdbError::new(
                ErrorCode::SourceTableNotFound,
                format!("Source table not found: {name}"),
            )
        })
}

/// A request's time `secs` (seconds since the epoch) in milliseconds, when it lies within
/// `(earliest, latest)` (milliseconds; a restore's window, or an export's up to now).
pub(crate) fn within(secs: f64, (earliest, latest): (u64, u64)) -> Option<u64> {
    let ms = (secs * 1000.0).round();
    (ms.is_finite() && ms >= earliest as f64 && ms <= latest as f64).then_some(ms as u64)
}

/// `PointInTimeRecoveryUnavailableException` for table `name` (a restore or an export).
pub(crate) fn recovery_off(name: &str) -> DdbError {
    DdbError::new(
        ErrorCode::PointInTimeRecoveryUnavailable,
        format!("Point in time recovery is not enabled for table '{name}'"),
    )
}

impl TableEngine {
    /// The attribute definitions of a point-in-time restore's source table and whether it is
    /// billed per request.
    pub(crate) fn pitr_definitions(&self, given: &str) -> Result<(Vec<KeySpec>, bool), DdbError> {
        let g = self.state.read();
        let t = source(&g, given)?;
        Ok((
            t.meta.attr_defs.clone(),
            t.meta.billing == "PAY_PER_REQUEST",
        ))
    }

    /// `RestoreTableToPointInTime`: a new table `target` with the items of table `given` (a
    /// name or an ARN) as of `at`
    /// (seconds since the epoch; `None`: the latest restorable time).
    pub(crate) fn restore_table_to_point_in_time(
        &self,
        given: &str,
        target: &str,
        at: Option<f64>,
        overrides: RestoreOverrides,
    ) -> Result<(Value, Ticket), DdbError> {
        self.journal.check()?;
        let (id, created) = self.new_table_id();
        let now_ms = self.clock.now().as_millis();
        let mut g = self.state.write();
        let t = self::source(&g, given)?;
        let name = &*t.name;
        // An existing target is named before the source's recovery is looked at (moto's
        // tests expect that order).
        super::backup::target_free(&g, target)?;
        let pitr = t.meta.pitr.ok_or_else(|| recovery_off(name))?;
        let (earliest, latest) = pitr.window(now_ms);
        let at_ms = match at {
            None => latest,
            Some(secs) => within(secs, (earliest, latest)).ok_or_else(|| {
                DdbError::new(
                    ErrorCode::InvalidRestoreTime,
                    "An invalid restore time was specified. RestoreDateTime must be between EarliestRestorableDateTime and LatestRestorableDateTime.",
                )
            })?,
        };
        let items = History::items_at(t, at_ms)?;
        let source_meta = t.meta.clone();
        let summary = json!({
            "SourceTableArn": table_arn(name),
            "RestoreDateTime": at_ms as f64 / 1000.0,
            "RestoreInProgress": false,
        });
        self.restore_into(
            &mut g,
            (id, created),
            &source_meta,
            items,
            target,
            overrides,
            summary,
        )
    }
}
