//! `PutItem`: write a whole item, replacing any item with its key.

use serde_json::Value;

use super::super::items::Kind;
use super::super::{DdbError, TableEngine};
use super::write::SingleWrite;
use crate::journal::Ticket;

pub(super) struct PutItem {
    write: SingleWrite,
}

impl PutItem {
    pub(super) fn parse(req: &Value) -> Result<Self, DdbError> {
        Ok(PutItem {
            write: SingleWrite::parse(req, Kind::Put)?,
        })
    }

    /// A request read the plain way: only `TableName` and `Item`.
    pub(super) fn plain(table: String, item: super::super::value::Item) -> Result<Self, DdbError> {
        Ok(PutItem {
            write: SingleWrite::put(table, item)?,
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        self.write.apply(engine)
    }
}
