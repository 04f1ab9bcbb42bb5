//! `DescribeContinuousBackups`: backups are always on, point-in-time recovery as
//! `UpdateContinuousBackups` left it, for any table that exists; a table that does not is
//! `TableNotFoundException`, as documented.

use serde_json::Value;

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
        let t = any_table(&g, self.table).map_err(|_| table_not_found(self.table))?;
        Ok(ready(
            t.meta.continuous_backups(engine.clock.now().as_millis()),
        ))
    }
}

/// The backup operations' answer for a table that does not exist.
pub(super) fn table_not_found(table: &str) -> DdbError {
    DdbError::new(
        ErrorCode::TableNotFound,
        format!("Table not found: {table}"),
    )
}
