//! `DescribeBackup`: a backup, its source table and the table's features.

use serde_json::Value;

use super::super::req::req_str;
use super::super::{DdbError, TableEngine};
use crate::journal::Ticket;

pub(super) struct DescribeBackup<'a> {
    arn: &'a str,
}

impl<'a> DescribeBackup<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        Ok(DescribeBackup {
            arn: super::backup_arn(req)?,
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.describe_backup(self.arn)
    }
}

/// `BackupArn`: required, 37 to 1024 characters (the member's constraints).
pub(super) fn backup_arn(req: &Value) -> Result<&str, DdbError> {
    let arn = req_str(req, "BackupArn")?;
    let bound = if arn.len() < 37 {
        Some("greater than or equal to 37")
    } else if arn.len() > 1024 {
        Some("less than or equal to 1024")
    } else {
        None
    };
    match bound {
        Some(b) => Err(DdbError::validation(format!(
            "1 validation error detected: Value '{arn}' at 'backupArn' failed to satisfy constraint: Member must have length {b}"
        ))),
        None => Ok(arn),
    }
}
