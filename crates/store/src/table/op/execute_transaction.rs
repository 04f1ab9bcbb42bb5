//! `ExecuteTransaction`: run PartiQL statements as one transaction.
//!
//! `parse` parses every statement and binds its parameters. The statements are planned in
//! order against their tables' key schemas in `apply` (`TableEngine::execute_transaction`,
//! partiql/), and an earlier statement's missing table wins over a later statement's own
//! error, so each statement's parse error is kept and raised in its turn.

use serde_json::Value;

use super::super::items::TxOptions;
use super::super::partiql::PartiqlStatement;
use super::super::req::not_null;
use super::super::{DdbError, TableEngine};
use crate::journal::Ticket;

pub(super) struct ExecuteTransaction {
    /// Each statement, or its own error.
    statements: Vec<Result<PartiqlStatement, DdbError>>,
    opts: TxOptions,
}

impl ExecuteTransaction {
    pub(super) fn parse(req: &Value) -> Result<Self, DdbError> {
        let list = req
            .get("TransactStatements")
            .and_then(Value::as_array)
            .ok_or_else(|| not_null("TransactStatements"))?;
        Ok(ExecuteTransaction {
            statements: list
                .iter()
                .map(|s| PartiqlStatement::parse(s, true))
                .collect(),
            opts: TxOptions::parse(req),
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.execute_transaction(self.statements, &self.opts)
    }
}
