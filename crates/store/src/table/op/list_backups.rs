//! `ListBackups`: the backups taken (of one table, within a time range), oldest first, a
//! page of `Limit` (1–100) at a time after `ExclusiveStartBackupArn`.

use serde_json::Value;

use super::super::meta::validate_table_name;
use super::super::req::{opt_i64, opt_str};
use super::super::{DdbError, TableEngine};
use crate::journal::Ticket;

pub(super) struct ListBackups<'a> {
    table: Option<&'a str>,
    /// `BackupType`: USER, SYSTEM, AWS_BACKUP or ALL (USER when not given).
    kind: Option<&'a str>,
    bounds: (Option<f64>, Option<f64>),
    limit: Option<usize>,
    start: Option<&'a str>,
}

impl<'a> ListBackups<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        let table = opt_str(req, "TableName");
        if let Some(t) = table {
            validate_table_name(t, "tableName")?;
        }
        let limit = opt_i64(req, "Limit")?;
        if let Some(l) = limit.filter(|l| !(1..=100).contains(l)) {
            let bound = if l < 1 {
                "greater than or equal to 1"
            } else {
                "less than or equal to 100"
            };
            return Err(DdbError::validation(format!(
                "1 validation error detected: Value '{l}' at 'limit' failed to satisfy constraint: Member must have value {bound}"
            )));
        }
        if let Some(t) = opt_str(req, "BackupType")
            && !["USER", "SYSTEM", "AWS_BACKUP", "ALL"].contains(&t)
        {
            return Err(DdbError::validation(format!(
                "1 validation error detected: Value '{t}' at 'backupType' failed to satisfy constraint: Member must satisfy enum value set: [USER, SYSTEM, AWS_BACKUP, ALL]"
            )));
        }
        let time = |f: &str| req.get(f).and_then(Value::as_f64);
        Ok(ListBackups {
            table,
            kind: opt_str(req, "BackupType"),
            bounds: (time("TimeRangeLowerBound"), time("TimeRangeUpperBound")),
            limit: limit.map(|l| l as usize),
            start: opt_str(req, "ExclusiveStartBackupArn"),
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.list_backups(self.table, self.kind, self.bounds, self.limit, self.start)
    }
}
