//! `ExecuteTransaction`: run PartiQL statements as one transaction.
//!
//! Still reads the wire JSON: the struct holds the validated request and `apply` calls
//! `TableEngine::execute_transaction` (partiql/). Parsing the statements could move to `parse`;
//! planning them looks up their tables' key schemas, so it stays in `apply`, where a missing
//! table is reported in the same order as now. Typed request: to do.

use serde_json::Value;

use super::super::{DdbError, TableEngine};
use crate::journal::Ticket;

pub(super) struct ExecuteTransaction<'a> {
    req: &'a Value,
}

impl<'a> ExecuteTransaction<'a> {
    pub(super) fn parse(req: &'a Value) -> Self {
        ExecuteTransaction { req }
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.execute_transaction(self.req)
    }
}
