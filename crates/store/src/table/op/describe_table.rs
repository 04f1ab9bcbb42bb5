//! `DescribeTable`: a table's description (a table being created or deleted included).

use serde_json::{Value, json};

use super::super::admin::any_table;
use super::super::req::table_name;
use super::super::{DdbError, TableEngine, ready};
use crate::journal::Ticket;

pub(super) struct DescribeTable<'a> {
    table: &'a str,
}

impl<'a> DescribeTable<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        Ok(DescribeTable {
            table: table_name(req)?,
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        let g = engine.state.read();
        let t = any_table(&g, self.table)?;
        Ok(ready(
            json!({ "Table": t.describe(engine.clock.now().as_millis()) }),
        ))
    }
}
