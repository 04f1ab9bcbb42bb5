//! `UpdateTable`: change a table's throughput, indexes, stream or settings.
//!
//! `parse` reads every member into a [`TableUpdate`] and makes the checks DynamoDB makes
//! before it looks the table up (the table name, that something is to change, PROVISIONED
//! with its throughput, the throughput's bounds, each index update's action and index).
//! DynamoDB checks the other members only after finding the table, one after the other and
//! between checks against it, so their own errors are kept in the request and
//! `TableEngine::update_table` (admin.rs) raises each where it comes in that order.

use serde_json::Value;

use super::super::admin::TableUpdate;
use super::super::{DdbError, TableEngine};
use crate::journal::Ticket;

pub(super) struct UpdateTable<'a> {
    update: TableUpdate<'a>,
}

impl<'a> UpdateTable<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        Ok(UpdateTable {
            update: TableUpdate::parse(req)?,
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.update_table(self.update)
    }
}
