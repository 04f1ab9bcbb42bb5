//! `CreateTable`: create a table (its indexes, stream and throughput).
//!
//! Still reads the wire JSON: the struct holds the validated request and `apply` calls
//! `TableEngine::create_table` (admin.rs), which reads it into a `TableMeta` with
//! `TableMeta::from_create`. That needs the engine's next table id (taken even when the
//! request turns out invalid, so later ids depend on it) and its clock, so it is not done in
//! `parse`. Typed request: to do.

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
