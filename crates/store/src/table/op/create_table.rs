//! `CreateTable`: create a table (its indexes, stream and throughput).
//!
//! `parse` reads and validates the whole request into a [`TableDef`]. An invalid request
//! still takes a table id from the engine (later ids depend on it), so its error is kept and
//! raised in `apply`, once the id and the creation time are taken.

use serde_json::Value;

use super::super::meta::{TableDef, TableMeta};
use super::super::{DdbError, TableEngine};
use crate::journal::Ticket;

pub(super) struct CreateTable {
    /// The new table, or why the request is invalid.
    def: Result<TableDef, DdbError>,
}

impl CreateTable {
    pub(super) fn parse(req: &Value) -> Self {
        CreateTable {
            def: TableDef::parse(req),
        }
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        let (id, created) = engine.new_table_id();
        engine.create_table(TableMeta::new(self.def?, id, created))
    }
}
