//! `UpdateItem`: change (or create) an item by its key.

use serde_json::Value;

use super::super::items::Kind;
use super::super::{DdbError, TableEngine};
use super::write::SingleWrite;
use crate::journal::Ticket;

pub(super) struct UpdateItem {
    write: SingleWrite,
}

impl UpdateItem {
    pub(super) fn parse(req: &Value) -> Result<Self, DdbError> {
        Ok(UpdateItem {
            write: SingleWrite::parse(req, Kind::Update)?,
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        self.write.apply(engine)
    }
}
