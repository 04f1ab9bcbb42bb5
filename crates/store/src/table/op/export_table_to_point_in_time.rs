//! `ExportTableToPointInTime`: export a table as it was at a time in its point-in-time
//! recovery window to an S3 bucket. The checks are DynamoDB's (the table by ARN, recovery on,
//! the time in the window); the export then runs and fails as an export to a bucket that does
//! not exist fails, since kedge serves no S3 (see `transfer.rs`).

use serde_json::{Map, Value, json};

use super::super::admin::table_from_arn;
use super::super::meta::table_arn;
use super::super::pitr::{recovery_off, within};
use super::super::req::req_str;
use super::super::transfer::{Transfer, echoed};
use super::super::{DdbError, ErrorCode, TableEngine};
use crate::journal::Ticket;

pub(super) struct ExportTableToPointInTime<'a> {
    table_arn: &'a str,
    /// `ExportTime` (seconds since the epoch); now when not given.
    at: Option<f64>,
    /// The members the export's description repeats.
    given: Map<String, Value>,
}

/// The members an export's description repeats, and their defaults.
const ECHOED: &[(&str, Option<&str>)] = &[
    ("ClientToken", None),
    ("S3Bucket", None),
    ("S3BucketOwner", None),
    ("S3Prefix", None),
    ("S3SseAlgorithm", Some("AES256")),
    ("S3SseKmsKeyId", None),
    ("ExportFormat", Some("DYNAMODB_JSON")),
    ("ExportType", Some("FULL_EXPORT")),
    ("IncrementalExportSpecification", None),
];

impl<'a> ExportTableToPointInTime<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        let given = echoed(req, ECHOED);
        Ok(ExportTableToPointInTime {
            table_arn: req_str(req, "TableArn")?,
            at: match req.get("ExportTime").filter(|v| !v.is_null()) {
                None => None,
                Some(v) => Some(v.as_f64().ok_or_else(|| {
                    DdbError::serialization(
                        "ExportTime must be a timestamp (seconds since the epoch)",
                    )
                })?),
            },
            given,
        })
    }

    pub(super) fn apply(mut self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.journal.check()?;
        let now_ms = engine.clock.now().as_millis();
        let mut g = engine.state.write();
        // The same request with the same client token is the same export.
        let token = self.given.get("ClientToken").and_then(Value::as_str);
        let at = self.at.map(|s| json!((s * 1000.0).round() / 1000.0));
        let same = |t: &Transfer| {
            t.table_arn == self.table_arn
                && t.given.keys().filter(|k| *k != "ExportTime").count() == self.given.len()
                && self.given.iter().all(|(k, v)| t.given.get(k) == Some(v))
                && at
                    .as_ref()
                    .is_none_or(|a| t.given.get("ExportTime") == Some(a))
        };
        if let Some(answer) =
            engine.repeated_transfer(&g, (true, "ExportDescription"), token, now_ms, same)
        {
            return answer;
        }
        let name = table_from_arn(self.table_arn)?;
        let t = g
            .by_name
            .get(name)
            .filter(|t| table_arn(&t.meta.name) == self.table_arn && t.usable())
            .ok_or_else(|| {
                DdbError::new(
                    ErrorCode::TableNotFound,
                    format!("Table not found: {}", self.table_arn),
                )
            })?;
        let pitr = t.meta.pitr.ok_or_else(|| recovery_off(name))?;
        // Any time recovery can go back to, up to now.
        let (earliest, _) = pitr.window(now_ms);
        let at_ms = match self.at {
            None => now_ms,
            Some(secs) => within(secs, (earliest, now_ms)).ok_or_else(|| {
                DdbError::new(
                    ErrorCode::InvalidExportTime,
                    "The specified ExportTime is outside of the point in time recovery window.",
                )
            })?,
        };
        let table_id = t.meta.id.clone();
        self.given
            .insert("ExportTime".into(), json!(at_ms as f64 / 1000.0));
        if !self.given.contains_key("ClientToken") {
            self.given
                .insert("ClientToken".into(), json!(engine.next_id()));
        }
        let transfer = Transfer {
            arn: engine.transfer_arn(self.table_arn, true, now_ms),
            export: true,
            table_arn: self.table_arn.to_owned(),
            table_id: Some(table_id),
            started_ms: now_ms,
            ends_ms: engine.transition_end().unwrap_or(now_ms),
            given: self.given,
        };
        Ok(engine.start_transfer(&mut g, transfer, "ExportDescription"))
    }
}
