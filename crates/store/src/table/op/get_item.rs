//! `GetItem`: read one item by its full key.

use std::borrow::Cow;

use serde_json::Value;

use super::super::index_keys;
use super::super::items::{Capacity, Projection, Units, read_units};
use super::super::req::{not_null, opt_bool, table_name};
use super::super::value::{Item, item_from_json, item_size};
use super::super::{Answer, DdbError, ErrorCode, TableEngine};
use crate::journal::Ticket;

pub(super) struct GetItem<'a> {
    table: &'a str,
    /// The key as sent; checked against the table's key schema in `apply`.
    key: Item,
    consistent: bool,
    proj: Projection,
    capacity: Capacity,
}

impl<'a> GetItem<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        let table = table_name(req)?;
        let key = item_from_json(
            req.get("Key")
                .filter(|v| !v.is_null())
                .ok_or_else(|| not_null("Key"))?,
        )?;
        let consistent = opt_bool(req, "ConsistentRead")?.unwrap_or(false);
        let proj = Projection::parse(req)?;
        Ok(GetItem {
            table,
            key,
            consistent,
            proj,
            capacity: Capacity::parse(req),
        })
    }

    /// A request read the plain way: only `TableName`, `Key` and `ConsistentRead`.
    pub(super) fn plain(table: &'a str, key: Item, consistent: bool) -> Self {
        GetItem {
            table,
            key,
            consistent,
            // Every attribute (what parsing a request without a projection gives).
            proj: Projection::default(),
            capacity: Capacity::None,
        }
    }

    /// The answer is written straight out as JSON text (no `Value` copy of the item).
    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Answer, Ticket), DdbError> {
        let g = engine.state.read();
        let t = g.get(self.table)?;
        let pk = t.key_from_param(&self.key)?;
        index_keys::scalar_keys(&t.meta, self.proj.nested_heads())?;
        let item = t.get(&pk);
        let mut answer = GetItemAnswer {
            consumed_capacity: None,
            item: item.map(|i| self.proj.view(i)),
        };
        if self.capacity.wanted() {
            let units = read_units(item.map_or(0, |i| item_size(i)), self.consistent);
            answer.consumed_capacity = self.capacity.consumed(self.table, &Units::table(units));
        }
        let text = serde_json::to_string(&answer)
            .map_err(|e| DdbError::new(ErrorCode::InternalServerError, e.to_string()))?;
        Ok((Answer::Text(text), Ticket::ready(Ok(()))))
    }
}

/// GetItem's answer, members in the order a JSON object's keys are written (sorted), as the
/// other operations' `Value` answers have them.
#[derive(serde::Serialize)]
struct GetItemAnswer<'i> {
    #[serde(rename = "ConsumedCapacity", skip_serializing_if = "Option::is_none")]
    consumed_capacity: Option<Value>,
    #[serde(rename = "Item", skip_serializing_if = "Option::is_none")]
    item: Option<Cow<'i, Item>>,
}
