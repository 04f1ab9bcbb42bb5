//! `CreateBackup`: an on-demand backup of a table ([`super::super::backup`]).

use serde_json::Value;

use super::super::meta::validate_table_name;
use super::super::req::{req_str, table_name};
use super::super::{DdbError, TableEngine};
use crate::journal::Ticket;

pub(super) struct CreateBackup<'a> {
    table: &'a str,
    name: &'a str,
}

impl<'a> CreateBackup<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        let table = table_name(req)?;
        let name = req_str(req, "BackupName")?;
        validate_table_name(name, "backupName")?;
        Ok(CreateBackup { table, name })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.create_backup(self.table, self.name)
    }
}
