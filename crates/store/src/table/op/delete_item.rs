//! `DeleteItem`: delete an item by its key.

use serde_json::Value;

use super::super::items::Kind;
use super::super::{DdbError, TableEngine};
use super::write::SingleWrite;
use crate::journal::Ticket;

pub(super) struct DeleteItem {
    write: SingleWrite,
}

impl DeleteItem {
    pub(super) fn parse(req: &Value) -> Result<Self, DdbError> {
        Ok(DeleteItem {
            write: SingleWrite::parse(req, Kind::Delete)?,
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        self.write.apply(engine)
    }
}
