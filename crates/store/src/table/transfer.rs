//! Exports to and imports from Amazon S3 (`ExportTableToPointInTime`, `ImportTable`).
//!
//! kedge serves no S3: no bucket exists for it. DynamoDB answers a request for a bucket that
//! does not exist by accepting it (`IN_PROGRESS`) and failing it afterwards with `FailureCode`
//! `S3NoSuchBucket` (moto's AWS-verified tests record this), and kedge does the same: every
//! export and import is accepted once DynamoDB's checks pass (the table, point-in-time
//! recovery, the export time; the new table's definition), stays `IN_PROGRESS` for the table
//! status delay and then `FAILED`. Nothing is written or read and an import creates no table.
//! Each one is kept (journaled as a row of `ddb_tables`, like a backup) for `DescribeExport` /
//! `DescribeImport` and the lists, for DynamoDB's 90 days.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{DdbError, ErrorCode, TableEngine, Tables};
use crate::journal::{Record, Ticket};
use crate::table_record::TableRecord;

/// The `ddb_tables` row name of an export (the ARN follows).
pub const EXPORT_PREFIX: &str = "export:";
/// The `ddb_tables` row name of an import (the ARN follows).
pub const IMPORT_PREFIX: &str = "import:";
/// How long DynamoDB lists an export or import.
const KEPT_MS: u64 = 90 * 86_400_000;
/// How long a `ClientToken` makes a request idempotent.
const TOKEN_MS: u64 = 8 * 3_600_000;
const FAILURE_CODE: &str = "S3NoSuchBucket";
const FAILURE_MESSAGE: &str = "The specified bucket does not exist";

/// One export or import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transfer {
    pub arn: String,
    /// An export (else an import).
    pub export: bool,
    pub table_arn: String,
    /// The exported table's id (an import creates no table, so has none).
    pub table_id: Option<String>,
    pub started_ms: u64,
    /// When it fails (the table status delay after it started).
    pub ends_ms: u64,
    /// The members its description repeats from the request, with their defaults filled in.
    pub given: Map<String, Value>,
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

impl Transfer {
    /// Its `ddb_tables` row name.
    pub fn row(&self) -> String {
        let prefix = if self.export {
            EXPORT_PREFIX
        } else {
            IMPORT_PREFIX
        };
        format!("{prefix}{}", self.arn)
    }

    fn status(&self, now_ms: u64) -> &'static str {
        if now_ms >= self.ends_ms {
            "FAILED"
        } else {
            "IN_PROGRESS"
        }
    }

    /// `ExportDescription` or `ImportTableDescription` at `now_ms`; `None`: as the request
    /// that started it is answered (`IN_PROGRESS`, also when it fails at once).
    pub fn describe(&self, now_ms: Option<u64>) -> Value {
        let now_ms = now_ms.unwrap_or(self.started_ms.min(self.ends_ms.saturating_sub(1)));
        let mut d = self.given.clone();
        let (arn, status) = if self.export {
            ("ExportArn", "ExportStatus")
        } else {
            ("ImportArn", "ImportStatus")
        };
        d.insert(arn.into(), json!(self.arn));
        d.insert(status.into(), json!(self.status(now_ms)));
        d.insert("TableArn".into(), json!(self.table_arn));
        if let Some(id) = &self.table_id {
            d.insert("TableId".into(), json!(id));
        }
        d.insert("StartTime".into(), json!(secs(self.started_ms)));
        if !self.export {
            for counter in [
                "ErrorCount",
                "ProcessedSizeBytes",
                "ProcessedItemCount",
                "ImportedItemCount",
            ] {
                d.insert(counter.into(), json!(0));
            }
        }
        if now_ms >= self.ends_ms {
            d.insert("EndTime".into(), json!(secs(self.ends_ms)));
            d.insert("FailureCode".into(), json!(FAILURE_CODE));
            d.insert("FailureMessage".into(), json!(FAILURE_MESSAGE));
        }
        Value::Object(d)
    }

    /// Its entry in `ListExports` / `ListImports`.
    fn summary(&self, now_ms: u64) -> Value {
        if self.export {
            json!({
                "ExportArn": self.arn,
                "ExportStatus": self.status(now_ms),
                "ExportType": self.given.get("ExportType").cloned().unwrap_or(json!("FULL_EXPORT")),
            })
        } else {
            let mut s = json!({
                "ImportArn": self.arn,
                "ImportStatus": self.status(now_ms),
                "TableArn": self.table_arn,
                "S3BucketSource": self.given.get("S3BucketSource").cloned().unwrap_or(Value::Null),
                "InputFormat": self.given.get("InputFormat").cloned().unwrap_or(Value::Null),
                "StartTime": secs(self.started_ms),
            });
            if now_ms >= self.ends_ms {
                s["EndTime"] = json!(secs(self.ends_ms));
            }
            s
        }
    }
}

/// The members of request `req` a description repeats: each of `members` given, or its
/// default when it has one.
pub(crate) fn echoed(req: &Value, members: &[(&str, Option<&str>)]) -> Map<String, Value> {
    let mut given = Map::new();
    for (member, default) in members {
        if let Some(v) = req.get(*member).filter(|v| !v.is_null()) {
            given.insert((*member).into(), v.clone());
        } else if let Some(d) = default {
            given.insert((*member).into(), json!(d));
        }
    }
    given
}

/// A page token: the last ARN listed, in hex, padded with zeros to a multiple of 16 digits
/// (the form `ListImports` requires: `([0-9a-f]{16})+`).
fn token(arn: &str) -> String {
    let mut t: String = arn.bytes().map(|b| format!("{b:02x}")).collect();
    while !t.len().is_multiple_of(16) {
        t.push('0');
    }
    t
}

/// The ARN a page token names.
fn untoken(t: &str) -> Result<String, DdbError> {
    let bad = || DdbError::validation(format!("Invalid NextToken: {t}"));
    let bytes = (0..t.len() / 2)
        .map(|i| {
            t.get(2 * i..2 * i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    String::from_utf8(bytes[..end].to_vec()).map_err(|_| bad())
}

impl TableEngine {
    /// A request repeated with the `ClientToken` of an export (`export`) or import started in
    /// the last 8 hours: `None` when there is none; else that one's description at `now_ms`
    /// (under `member`) when `same` says the request is the one that started it, and
    /// `ExportConflictException` / `ImportConflictException` when it is another.
    pub(crate) fn repeated_transfer(
        &self,
        g: &Tables,
        (export, member): (bool, &str),
        token: Option<&str>,
        now_ms: u64,
        same: impl Fn(&Transfer) -> bool,
    ) -> Option<Result<(Value, Ticket), DdbError>> {
        let token = token?;
        let t = g.transfers.values().find(|t| {
            t.export == export
                && now_ms < t.started_ms.saturating_add(TOKEN_MS)
                && t.given.get("ClientToken").and_then(Value::as_str) == Some(token)
        })?;
        if same(t) {
            return Some(Ok(super::ready(
                json!({ member: t.describe(Some(now_ms)) }),
            )));
        }
        let (code, kind) = if export {
            (ErrorCode::ExportConflict, "an export")
        } else {
            (ErrorCode::ImportConflict, "an import")
        };
        Some(Err(DdbError::new(
            code,
            format!(
                "ClientToken {token} was used by {kind} with other parameters in the last 8 hours: {}",
                t.arn
            ),
        )))
    }

    /// Keep `t` (started now) and journal it; answers its description as started, under
    /// `member` (`ExportDescription` or `ImportTableDescription`).
    pub(crate) fn start_transfer(
        &self,
        g: &mut Tables,
        t: Transfer,
        member: &str,
    ) -> (Value, Ticket) {
        let answer = json!({ member: t.describe(None) });
        let record = Record::Table(TableRecord::PutTable {
            name: t.row(),
            meta: serde_json::to_string(&t).unwrap_or_default(),
        });
        g.transfers.insert(t.arn.clone(), t);
        (answer, self.submit(vec![record]))
    }

    /// A new export's or import's ARN: `{table ARN}/export/` (or `/import/`), the start time
    /// in milliseconds and 8 hex digits, as DynamoDB forms them.
    pub(crate) fn transfer_arn(&self, table_arn: &str, export: bool, now_ms: u64) -> String {
        let kind = if export { "export" } else { "import" };
        let id = self.next_id().replace('-', "");
        format!("{table_arn}/{kind}/{now_ms:014}-{}", &id[id.len() - 8..])
    }

    /// `ListExports` (`export`) or `ListImports`: a page of `limit` summaries of table
    /// `table_arn`'s (or all) after the page token `next` (see [`Tables::list_transfers`]).
    pub(crate) fn list_transfers_answer(
        &self,
        export: bool,
        table_arn: Option<&str>,
        limit: usize,
        next: Option<&str>,
    ) -> Result<Value, DdbError> {
        let now_ms = self.clock.now().as_millis();
        let g = self.state.read();
        let (summaries, next) = g.list_transfers(export, table_arn, limit, next, now_ms)?;
        let member = if export {
            "ExportSummaries"
        } else {
            "ImportSummaryList"
        };
        let mut answer = json!({ member: summaries });
        if let Some(t) = next {
            answer["NextToken"] = json!(t);
        }
        Ok(answer)
    }

    /// `DescribeExport` (`export`) or `DescribeImport` of `arn`.
    pub(crate) fn describe_transfer(&self, arn: &str, export: bool) -> Result<Value, DdbError> {
        let now_ms = self.clock.now().as_millis();
        let g = self.state.read();
        match g.transfers.get(arn).filter(|t| t.export == export) {
            Some(t) if export => Ok(json!({"ExportDescription": t.describe(Some(now_ms))})),
            Some(t) => Ok(json!({"ImportTableDescription": t.describe(Some(now_ms))})),
            None if export => Err(DdbError::new(
                ErrorCode::ExportNotFound,
                format!("Export not found: {arn}"),
            )),
            None => Err(DdbError::new(
                ErrorCode::ImportNotFound,
                format!("Import not found: {arn}"),
            )),
        }
    }
}

impl Tables {
    /// The exports (`export`) or imports listed at `now_ms`: of `table_arn` when given, newest
    /// ARN first (DynamoDB lists exports in reverse order of their ARNs), `limit` a page after
    /// the page token `next`. Answers the summaries and the next page's token.
    pub(crate) fn list_transfers(
        &self,
        export: bool,
        table_arn: Option<&str>,
        limit: usize,
        next: Option<&str>,
        now_ms: u64,
    ) -> Result<(Vec<Value>, Option<String>), DdbError> {
        let after = next.map(untoken).transpose()?;
        let mut listed = self
            .transfers
            .values()
            .rev()
            .filter(|t| t.export == export && now_ms < t.started_ms.saturating_add(KEPT_MS))
            .filter(|t| table_arn.is_none_or(|a| a == t.table_arn))
            .filter(|t| after.as_deref().is_none_or(|a| t.arn.as_str() < a));
        let page: Vec<&Transfer> = listed.by_ref().take(limit).collect();
        let more = listed.next().is_some();
        let token = more.then(|| page.last().map(|t| token(&t.arn))).flatten();
        Ok((page.iter().map(|t| t.summary(now_ms)).collect(), token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_take_the_form_list_imports_requires_and_read_back() {
        for arn in [
            "arn:aws:dynamodb:us-east-1:000000000000:table/t/import/01700000000000-0a1b2c3d",
            "arn:aws:dynamodb:us-east-1:000000000000:table/abc/export/01700000000000-00000000",
        ] {
            let t = token(arn);
            assert_eq!(t.len() % 16, 0);
            assert!(t.len() >= 112);
            assert!(
                t.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            assert_eq!(untoken(&t).unwrap(), arn);
        }
        assert!(untoken("zz").is_err());
    }
}
