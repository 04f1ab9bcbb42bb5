//! `UpdateContinuousBackups`: turn a table's point-in-time recovery on (with its recovery
//! period, 1–35 days, default 35) or off; answers the table's `ContinuousBackupsDescription`.
//! Turning it on again keeps the time it was first enabled (only the period changes).

use serde_json::Value;

use super::super::meta::Pitr;
use super::super::req::{as_boolean, table_name, vmsg};
use super::super::{DdbError, TableEngine, ready};
use super::describe_continuous_backups::table_not_found;
use crate::journal::Ticket;

pub(super) struct UpdateContinuousBackups<'a> {
    table: &'a str,
    enabled: bool,
    days: Option<u32>,
}

impl<'a> UpdateContinuousBackups<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        let table = table_name(req)?;
        let spec = req
            .get("PointInTimeRecoverySpecification")
            .filter(|v| !v.is_null())
            .ok_or_else(|| {
                vmsg(vec!["Value null at 'pointInTimeRecoverySpecification' failed to satisfy constraint: Member must not be null".into()])
            })?;
        let enabled = spec
            .get("PointInTimeRecoveryEnabled")
            .and_then(as_boolean)
            .ok_or_else(|| {
                vmsg(vec!["Value null at 'pointInTimeRecoverySpecification.pointInTimeRecoveryEnabled' failed to satisfy constraint: Member must not be null".into()])
            })?;
        let days = match spec.get("RecoveryPeriodInDays").filter(|v| !v.is_null()) {
            None => None,
            Some(v) => {
                let d = v.as_i64().ok_or_else(|| {
                    DdbError::serialization("RecoveryPeriodInDays must be a number")
                })?;
                if !(1..=35).contains(&d) {
                    return Err(vmsg(vec![format!(
                        "Value '{d}' at 'pointInTimeRecoverySpecification.recoveryPeriodInDays' failed to satisfy constraint: Member must have value {} {}",
                        if d < 1 {
                            "greater than or equal to"
                        } else {
                            "less than or equal to"
                        },
                        if d < 1 { 1 } else { 35 }
                    )]));
                }
                Some(d as u32)
            }
        };
        Ok(UpdateContinuousBackups {
            table,
            enabled,
            days,
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.journal.check()?;
        let now_ms = engine.clock.now().as_millis();
        let mut g = engine.state.write();
        let t = g
            .by_name
            .get_mut(self.table)
            .ok_or_else(|| table_not_found(self.table))?;
        let pitr = if self.enabled {
            Some(Pitr {
                since_ms: t.meta.pitr.map_or(now_ms, |p| p.since_ms),
                days: self.days.unwrap_or(35),
            })
        } else {
            None
        };
        let answer = |t: &super::super::Table| t.meta.continuous_backups(now_ms);
        if pitr == t.meta.pitr {
            return Ok(ready(answer(t)));
        }
        t.meta.pitr = pitr;
        let out = answer(t);
        let mut records = vec![TableEngine::table_record(&t.meta)];
        if pitr.is_none() {
            // Off: the history goes; turning recovery on again starts a new window.
            records.push(t.history.forget(self.table));
        }
        let ticket = engine.submit(records);
        Ok((out, ticket))
    }
}
