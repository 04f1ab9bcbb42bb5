//! `DeleteBackup`: forget a backup; answers its description with status `DELETED`.

use serde_json::Value;

use super::super::{DdbError, TableEngine};
use crate::journal::Ticket;

pub(super) struct DeleteBackup<'a> {
    arn: &'a str,
}

impl<'a> DeleteBackup<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        Ok(DeleteBackup {
            arn: super::backup_arn(req)?,
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.delete_backup(self.arn)
    }
}
