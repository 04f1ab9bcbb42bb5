//! `UpdateTable`: change a table's throughput, indexes, stream or settings.
//!
//! Still reads the wire JSON: the struct holds the validated request and `apply` calls
//! `TableEngine::update_table` (admin.rs), which reads it member by member, interleaved with
//! checks against the table. Typed request: to do.

use serde_json::Value;

use super::super::{DdbError, TableEngine};
use crate::journal::Ticket;

pub(super) struct UpdateTable<'a> {
    req: &'a Value,
}

impl<'a> UpdateTable<'a> {
    pub(super) fn parse(req: &'a Value) -> Self {
        UpdateTable { req }
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.update_table(self.req)
    }
}
