//! `TransactGetItems`: up to 100 items by key, read from one consistent state.

use serde_json::Value;

use super::super::items::{Capacity, KeyRead, Projection};
use super::super::req::{not_null, table_name};
use super::super::value::item_from_json;
use super::super::{DdbError, TableEngine, ready};
use crate::journal::Ticket;

pub(super) struct TransactGetItems {
    gets: Vec<KeyRead>,
    capacity: Capacity,
}

impl TransactGetItems {
    pub(super) fn parse(req: &Value) -> Result<Self, DdbError> {
        let list = super::transact_items(req)?;
        let mut gets = Vec::new();
        for e in list {
            let get = e.get("Get").ok_or_else(|| not_null("Get"))?;
            let table = table_name(get)?.to_string();
            let key = item_from_json(get.get("Key").ok_or_else(|| not_null("Key"))?)?;
            gets.push(KeyRead {
                table,
                key,
                proj: Projection::parse(get)?,
                cond: None,
            });
        }
        Ok(TransactGetItems {
            gets,
            capacity: Capacity::parse(req),
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.transact_reads(&self.gets, self.capacity).map(ready)
    }
}
