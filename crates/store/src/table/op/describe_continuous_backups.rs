//! `DescribeContinuousBackups`: backups are always on and point-in-time recovery off, for
//! any table that exists; a table that does not is `TableNotFoundException`, as documented.

use serde_json::{Value, json};

use super::super::admin::any_table;
use super::super::req::table_name;
use super::super::{DdbError, ErrorCode, TableEngine, ready};
use crate::journal::Ticket;

pub(super) struct DescribeContinuousBackups<'a> {
    table: &'a str,
}

impl<'a> DescribeContinuousBackups<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        Ok(DescribeContinuousBackups {
            table: table_name(req)?,
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        let g = engine.state.read();
        any_table(&g, self.table).map_err(|_| {
            DdbError::new(
                ErrorCode::TableNotFound,
                format!("Table not found: {}", self.table),
            )
        })?;
        Ok(ready(json!({"ContinuousBackupsDescription": {
            "ContinuousBackupsStatus": "ENABLED",
            "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"}
        }})))
    }
}
