//! `ExecuteStatement`: run one PartiQL statement.
//!
//! `parse` parses the statement and binds its parameters. A SELECT needs no table to be
//! planned, so its paging members (`Limit`, `ConsistentRead`, `NextToken`) are read here
//! too; other statements do not read them, and refuse a `NextToken` only once planned. The
//! plan needs the table's key schema, so `apply` makes it (`TableEngine::execute_statement`,
//! partiql/), where a missing table is reported in the same order as before.

use serde_json::Value;

use super::super::items::Capacity;
use super::super::partiql::{Page, PartiqlStatement};
use super::super::req::opt_str;
use super::super::{DdbError, TableEngine};
use crate::journal::Ticket;

pub(super) struct ExecuteStatement {
    statement: PartiqlStatement,
    /// A SELECT's paging (the default for any other statement).
    page: Page,
    /// A `NextToken` was sent.
    token: bool,
    capacity: Capacity,
}

impl ExecuteStatement {
    pub(super) fn parse(req: &Value) -> Result<Self, DdbError> {
        let statement = PartiqlStatement::parse(req, false)?;
        let page = if statement.is_select() {
            Page::parse(req)?
        } else {
            Page::default()
        };
        Ok(ExecuteStatement {
            statement,
            page,
            token: opt_str(req, "NextToken").is_some(),
            capacity: Capacity::parse(req),
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.execute_statement(self.statement, self.page, self.token, self.capacity)
    }
}
