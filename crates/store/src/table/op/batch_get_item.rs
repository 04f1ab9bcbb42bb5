//! `BatchGetItem`: up to 100 items by key over one or more tables, from one consistent
//! state; what does not fit in the answer comes back as `UnprocessedKeys`.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::super::items::{Capacity, Projection, Units, batch_consumed, read_units};
use super::super::meta::validate_table_name;
use super::super::req::{not_null, vmsg};
use super::super::value::{Item, item_from_json, item_size, item_to_json};
use super::super::{DdbError, TableEngine, ready};
use crate::journal::Ticket;

pub(super) struct BatchGetItem<'a> {
    /// One entry per table, in request order.
    tables: Vec<TableKeys<'a>>,
    capacity: Capacity,
}

/// The reads of one table.
struct TableKeys<'a> {
    table: &'a str,
    /// The keys as sent; checked against the table's key schema in `apply`.
    keys: Vec<Item>,
    proj: Projection,
    consistent: bool,
    /// The table's entry of `RequestItems`, echoed (with the keys left) as `UnprocessedKeys`.
    spec: &'a Value,
}

impl<'a> BatchGetItem<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        let items = req
            .get("RequestItems")
            .and_then(|v| v.as_object())
            .ok_or_else(|| not_null("RequestItems"))?;
        let mut tables = Vec::new();
        let mut total = 0;
        for (table, spec) in items {
            validate_table_name(table, "requestItems.key")?;
            let keys = spec
                .get("Keys")
                .and_then(|v| v.as_array())
                .ok_or_else(|| not_null("Keys"))?;
            if keys.is_empty() {
                return Err(vmsg(vec![
                    "Value null at 'requestItems.member.keys' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
                ]));
            }
            total += keys.len();
            let keys: Vec<Item> = keys.iter().map(item_from_json).collect::<Result<_, _>>()?;
            let proj = Projection::parse(spec)?;
            // The same key twice (in any attribute order) is refused before the table is
            // looked up; at most 100 keys, so pairwise is cheap.
            if keys.iter().enumerate().any(|(i, k)| keys[..i].contains(k)) {
                return Err(DdbError::validation(
                    "Provided list of item keys contains duplicates",
                ));
            }
            tables.push(TableKeys {
                table,
                keys,
                proj,
                consistent: spec
                    .get("ConsistentRead")
                    .and_then(crate::table::req::as_boolean)
                    == Some(true),
                spec,
            });
        }
        if total > 100 {
            return Err(DdbError::validation(
                "Too many items requested for the BatchGetItem call",
            ));
        }
        if total == 0 {
            return Err(vmsg(vec![
                "Value null at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
            ]));
        }
        Ok(BatchGetItem {
            tables,
            capacity: Capacity::parse(req),
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        let g = engine.state.read();
        let mut responses = Map::new();
        let mut unprocessed = Map::new();
        // DynamoDB documents a 16 MB cap, but measured it stops adding items once the answer
        // would pass 1 MB plus one maximum-size item (400 KB) less 3 bytes, and each key it
        // leaves unprocessed still costs one capacity unit (dynalite's batchGetItem tests,
        // checked against DynamoDB). What does not fit comes back as UnprocessedKeys.
        const CAP: usize = 1024 * 1024 + 400 * 1024 - 3;
        let mut size = 0usize;
        let mut units: Vec<(String, Units)> = Vec::new();
        for r in self.tables {
            let t = g.get(r.table)?;
            let mut table_units = 0.0;
            let mut seen = BTreeSet::new();
            let mut out = Vec::new();
            let mut left = Vec::new();
            for k in r.keys {
                let pk = t.key_from_param(&k)?;
                if !seen.insert(pk.clone()) {
                    return Err(DdbError::validation(
                        "Provided list of item keys contains duplicates",
                    ));
                }
                let item = t.get(&pk);
                if let Some(item) = item {
                    let s = item_size(item);
                    if size + s > CAP {
                        table_units += 1.0;
                        left.push(item_to_json(&k));
                        continue;
                    }
                    size += s;
                }
                table_units += read_units(item.map_or(0, |i| item_size(i)), r.consistent);
                if let Some(item) = item {
                    out.push(r.proj.to_json(item));
                }
            }
            units.push((r.table.to_string(), Units::table(table_units)));
            responses.insert(r.table.to_string(), Value::Array(out));
            if !left.is_empty() {
                let mut spec = r.spec.clone();
                spec["Keys"] = Value::Array(left);
                unprocessed.insert(r.table.to_string(), spec);
            }
        }
        let mut out = json!({"Responses": responses, "UnprocessedKeys": unprocessed});
        if let Some(c) = batch_consumed(self.capacity, &units) {
            out["ConsumedCapacity"] = c;
        }
        Ok(ready(out))
    }
}
