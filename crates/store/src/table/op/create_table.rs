//! `CreateTable`: create a table (its indexes, stream and throughput).
//!
//! Still reads the wire JSON: the struct holds the validated request and `apply` calls the
//! engine method in `admin.rs` that reads it. Typed request: to do.

use serde_json::Value;

use super::super::{DdbError, TableEngine};
use crate::journal::Ticket;

pub(super) struct CreateTable<'a> {
    req: &'a Value,
}

impl<'a> CreateTable<'a> {
    pub(super) fn parse(req: &'a Value) -> Self {
        CreateTable { req }
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.create_table(self.req)
    }
}
