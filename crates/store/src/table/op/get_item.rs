//! `GetItem`: read one item by its full key.

use serde_json::{Map, Value};

use super::super::index_keys;
use super::super::items::{Capacity, Projection, read_units};
use super::super::req::{not_null, opt_bool, table_name};
use super::super::value::{Item, item_from_json, item_size};
use super::super::{DdbError, TableEngine, ready};
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

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        let g = engine.state.read();
        let t = g.get(self.table)?;
        let pk = t.key_from_param(&self.key)?;
        index_keys::scalar_keys(&t.meta, self.proj.nested_heads())?;
        let mut out = Map::new();
        let item = t.get(&pk);
        if let Some(item) = item {
            out.insert("Item".into(), self.proj.to_json(item));
        }
        if self.capacity.wanted() {
            let units = read_units(item.map_or(0, |i| item_size(i)), self.consistent);
            if let Some(c) = self.capacity.consumed(self.table, units) {
                out.insert("ConsumedCapacity".into(), c);
            }
        }
        Ok(ready(Value::Object(out)))
    }
}
