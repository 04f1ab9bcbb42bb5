//! `BatchExecuteStatement`: run PartiQL statements, each on its own.
//!
//! Still reads the wire JSON: the struct holds the validated request and `apply` calls the
//! engine method in `partiql/` that reads it. Typed request: to do.

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
