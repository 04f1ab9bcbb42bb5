//! `BatchExecuteStatement`: run PartiQL statements, each on its own.
//!
//! Still reads the wire JSON: the struct holds the validated request and `apply` calls
//! `TableEngine::batch_execute_statement` (partiql/). Parsing the statements could move to `parse`;
//! planning them looks up their tables' key schemas, so it stays in `apply`, where a missing
//! table is reported in the same order as now. Typed request: to do.

use serde_json::Value;

use super::super::{DdbError, TableEngine};
use crate::journal::Ticket;

pub(super) struct BatchExecuteStatement<'a> {
    req: &'a Value,
}

impl<'a> BatchExecuteStatement<'a> {
    pub(super) fn parse(req: &'a Value) -> Self {
        BatchExecuteStatement { req }
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.batch_execute_statement(self.req)
    }
}
