//! `BatchExecuteStatement`: run PartiQL statements, each on its own.
//!
//! `parse` parses every statement and binds its parameters. A statement that fails does so
//! in its own entry of the answer, and a bad `ConsistentRead` fails the batch only once its
//! SELECT is planned, so both are kept with the statement. Planning needs the tables' key
//! schemas, so `apply` does it (`TableEngine::batch_execute_statement`, partiql/).

use serde_json::Value;

use super::super::items::Capacity;
use super::super::partiql::BatchStatement;
use super::super::req::not_null;
use super::super::{DdbError, TableEngine};
use crate::journal::Ticket;

pub(super) struct BatchExecuteStatement {
    statements: Vec<BatchStatement>,
    capacity: Capacity,
}

impl BatchExecuteStatement {
    pub(super) fn parse(req: &Value) -> Result<Self, DdbError> {
        let list = req
            .get("Statements")
            .and_then(Value::as_array)
            .ok_or_else(|| not_null("Statements"))?;
        Ok(BatchExecuteStatement {
            statements: list.iter().map(BatchStatement::parse).collect(),
            capacity: Capacity::parse(req),
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.batch_execute_statement(self.statements, self.capacity)
    }
}
