//! `ListTables`: list table names, a page at a time.
//!
//! Still reads the wire JSON: the struct holds the validated request and `apply` calls the
//! engine method in `admin.rs` that reads it. Typed request: to do.

use serde_json::Value;

use super::super::{DdbError, TableEngine, ready};
use crate::journal::Ticket;

pub(super) struct ListTables<'a> {
    req: &'a Value,
}

impl<'a> ListTables<'a> {
    pub(super) fn parse(req: &'a Value) -> Self {
        ListTables { req }
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.list_tables(self.req).map(ready)
    }
}
