//! `DescribeKinesisStreamingDestination`: the Kinesis data streams a table's changes go to.
//! kedge serves no Kinesis, so no table has one: the list is empty for any table that exists
//! (inventory tools call this for every table); a table that does not is
//! `ResourceNotFoundException`.

use serde_json::{Value, json};

use super::super::admin::any_table;
use super::super::req::table_name;
use super::super::{DdbError, TableEngine, ready};
use crate::journal::Ticket;

pub(super) struct DescribeKinesisStreamingDestination<'a> {
    table: &'a str,
}

impl<'a> DescribeKinesisStreamingDestination<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        Ok(DescribeKinesisStreamingDestination {
            table: table_name(req)?,
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        let g = engine.state.read();
        let t = any_table(&g, self.table)?;
        Ok(ready(json!({
            "TableName": t.meta.name,
            "KinesisDataStreamDestinations": [],
        })))
    }
}
