//! `RestoreTableToPointInTime`: a new table from a table as it was at a time within its
//! point-in-time recovery window ([`crate::table::pitr`]), with the same overrides as a
//! restore from a backup.

use serde_json::Value;

use super::super::meta::validate_table_name;
use super::super::req::{as_boolean, opt_str, req_str};
use super::super::{DdbError, TableEngine};
use super::restore_table_from_backup::Overrides;
use crate::journal::Ticket;

pub(super) struct RestoreTableToPointInTime<'a> {
    /// The source table's name or ARN.
    source: &'a str,
    target: &'a str,
    /// Seconds since the epoch; `None`: the latest restorable time (also when the request
    /// gives neither `RestoreDateTime` nor `UseLatestRestorableTime`).
    at: Option<f64>,
    overrides: Overrides,
}

impl<'a> RestoreTableToPointInTime<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        let target = req_str(req, "TargetTableName")?;
        validate_table_name(target, "targetTableName")?;
        let source = match (
            opt_str(req, "SourceTableName"),
            opt_str(req, "SourceTableArn"),
        ) {
            (Some(_), Some(_)) => {
                return Err(DdbError::validation(
                    "Only one of SourceTableName or SourceTableArn may be specified",
                ));
            }
            (Some(s), None) | (None, Some(s)) => s,
            (None, None) => {
                return Err(DdbError::validation(
                    "Either SourceTableName or SourceTableArn must be specified",
                ));
            }
        };
        let latest = match req.get("UseLatestRestorableTime").filter(|v| !v.is_null()) {
            None => false,
            Some(v) => as_boolean(v).ok_or_else(|| {
                DdbError::serialization("UseLatestRestorableTime must be a boolean")
            })?,
        };
        let at = match req.get("RestoreDateTime").filter(|v| !v.is_null()) {
            None => None,
            Some(v) => Some(v.as_f64().ok_or_else(|| {
                DdbError::serialization(
                    "RestoreDateTime must be a timestamp (seconds since the epoch)",
                )
            })?),
        };
        let at = match (latest, at) {
            (true, Some(_)) => {
                return Err(DdbError::validation(
                    "Only one of RestoreDateTime or UseLatestRestorableTime may be specified",
                ));
            }
            (false, Some(t)) => Some(t),
            // Neither: the latest restorable time (what moto's tests rely on).
            (_, None) => None,
        };
        Ok(RestoreTableToPointInTime {
            source,
            target,
            at,
            overrides: Overrides::parse(req)?,
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        let (defs, ppr) = engine.pitr_definitions(self.source)?;
        let overrides = self.overrides.resolve(&defs, ppr)?;
        engine.restore_table_to_point_in_time(self.source, self.target, self.at, overrides)
    }
}
