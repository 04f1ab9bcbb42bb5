//! `Query`: the items of one partition (of the table or an index), in sort-key order, a page
//! at a time.

use serde_json::Value;

use super::super::query::{ReadParams, parse_read};
use super::super::req::opt_bool;
use super::super::{DdbError, TableEngine, ready};
use crate::journal::Ticket;

pub(super) struct Query {
    params: ReadParams,
    /// `ScanIndexForward`: ascending sort-key order.
    forward: bool,
}

impl Query {
    pub(super) fn parse(req: &Value) -> Result<Self, DdbError> {
        let params = parse_read(req, true)?;
        let forward = opt_bool(req, "ScanIndexForward")?.unwrap_or(true);
        Ok(Query { params, forward })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.run_query(&self.params, self.forward).map(ready)
    }
}
