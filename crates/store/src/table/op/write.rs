//! The single-item write PutItem, DeleteItem and UpdateItem share: [`WriteReq::parse`]
//! (expressions, placeholders, the item or key as attribute values), then under the engine's
//! write lock the key against the table, the condition, the new item and its journal record.

use serde_json::Value;

use super::super::items::{Capacity, Kind, WriteReq, wants_metrics};
use super::super::{DdbError, TableEngine};
use crate::journal::Ticket;

pub(super) struct SingleWrite {
    write: WriteReq,
    capacity: Capacity,
    /// `ReturnItemCollectionMetrics` is `SIZE`.
    metrics: bool,
}

impl SingleWrite {
    pub(super) fn parse(req: &Value, kind: Kind) -> Result<Self, DdbError> {
        Ok(SingleWrite {
            write: WriteReq::parse(req, kind)?,
            capacity: Capacity::parse(req),
            metrics: wants_metrics(req),
        })
    }

    /// PutItem with only `TableName` and `Item` ([`crate::table::typed`]'s plain reading).
    pub(super) fn put(table: String, item: super::super::value::Item) -> Result<Self, DdbError> {
        Ok(SingleWrite {
            write: WriteReq::put(table, item)?,
            capacity: Capacity::None,
            metrics: false,
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        let (applied, ticket) = engine.apply_one(&self.write, self.metrics, self.capacity)?;
        Ok((
            Value::Object(applied.response(self.capacity, &self.write)),
            ticket,
        ))
    }
}
