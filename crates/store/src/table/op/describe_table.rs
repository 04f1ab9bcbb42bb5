//! `DescribeTable`: describe a table.
//!
//! Still reads the wire JSON: the struct holds the validated request and `apply` calls the
//! engine method in `admin.rs` that reads it. Typed request: to do.

use serde_json::Value;

use super::super::{DdbError, TableEngine, ready};
use crate::journal::Ticket;

pub(super) struct DescribeTable<'a> {
    req: &'a Value,
}

impl<'a> DescribeTable<'a> {
    pub(super) fn parse(req: &'a Value) -> Self {
        DescribeTable { req }
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.describe_table(self.req).map(ready)
    }
}
