//! `DescribeTimeToLive`: whether a table's TTL is on, and on which attribute.

use serde_json::{Value, json};

use super::super::admin::any_table;
use super::super::req::table_name;
use super::super::{DdbError, TableEngine, ready};
use crate::journal::Ticket;

pub(super) struct DescribeTimeToLive<'a> {
    table: &'a str,
}

impl<'a> DescribeTimeToLive<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        Ok(DescribeTimeToLive {
            table: table_name(req)?,
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        let g = engine.state.read();
        let t = any_table(&g, self.table)?;
        Ok(ready(match &t.meta.ttl {
            Some(a) => {
                json!({"TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": a}})
            }
            None => json!({"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}),
        }))
    }
}
