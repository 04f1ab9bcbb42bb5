//! `BatchWriteItem`: up to 25 puts and deletes over one or more tables, each its own write
//! (no conditions), with one journal submission for all.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::super::items::{
    Action, Capacity, Kind, Metrics, Units, WriteReq, add_units, batch_consumed, wants_metrics,
};
use super::super::meta::{PKey, validate_table_name};
use super::super::req::{not_null, vmsg};
use super::super::{DdbError, TableEngine};
use crate::journal::Ticket;

pub(super) struct BatchWriteItem {
    /// Every write, table by table in request order.
    writes: Vec<WriteReq>,
    capacity: Capacity,
    /// `ReturnItemCollectionMetrics` is `SIZE`.
    metrics: bool,
}

impl BatchWriteItem {
    pub(super) fn parse(req: &Value) -> Result<Self, DdbError> {
        let items = req
            .get("RequestItems")
            .and_then(|v| v.as_object())
            .ok_or_else(|| not_null("RequestItems"))?;
        let mut writes: Vec<WriteReq> = Vec::new();
        let mut total = 0usize;
        for (table, list) in items {
            validate_table_name(table, "requestItems.key")?;
            let list = list
                .as_array()
                .ok_or_else(|| DdbError::serialization("RequestItems values must be lists"))?;
            if list.is_empty() {
                return Err(vmsg(vec![
                    "Value '{}' at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]".into(),
                ]));
            }
            total += list.len();
            for r in list {
                let (kind, body) = match (r.get("PutRequest"), r.get("DeleteRequest")) {
                    (Some(p), None) => (Kind::Put, p),
                    (None, Some(d)) => (Kind::Delete, d),
                    _ => {
                        return Err(DdbError::validation(
                            "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
                        ));
                    }
                };
                let mut sub = body.clone();
                if let Some(o) = sub.as_object_mut() {
                    o.insert("TableName".into(), Value::String(table.clone()));
                }
                writes.push(WriteReq::parse(&sub, kind)?);
            }
        }
        if total == 0 || total > 25 {
            return Err(vmsg(vec![format!(
                "Value '{{{}}}' at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]",
                items.keys().cloned().collect::<Vec<_>>().join(", ")
            )]));
        }
        Ok(BatchWriteItem {
            writes,
            capacity: Capacity::parse(req),
            metrics: wants_metrics(req),
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.journal.check()?;
        let mut g = engine.state.write();
        let change = engine.change();
        let mut planned = Vec::with_capacity(self.writes.len());
        let mut seen: BTreeSet<(String, PKey)> = BTreeSet::new();
        for w in &self.writes {
            let t = g.get(&w.table)?;
            // A put's item without the table's key attributes (or with one of the wrong type)
            // is answered as a key that does not match, unlike PutItem's answer.
            if let Action::Put(item) = &w.action
                && !t.has_key_attributes(item)
            {
                return Err(DdbError::validation(
                    "The provided key element does not match the schema",
                ));
            }
            let pk = w.pk(t)?;
            if !seen.insert((w.table.clone(), pk.clone())) {
                return Err(DdbError::validation(
                    "Provided list of item keys contains duplicates",
                ));
            }
            let new = match &w.action {
                Action::Put(i) => Some(i.clone()),
                _ => None,
            };
            planned.push((w.table.clone(), pk, new));
        }
        let mut records = Vec::with_capacity(planned.len());
        let mut units: Vec<(String, Units)> = Vec::new();
        let mut metrics = Metrics::new(self.metrics);
        for (table, pk, new) in planned {
            if let Ok(t) = g.get_mut(&table) {
                if self.capacity.wanted() {
                    let u = t.write_units(t.get(&pk).map(|i| &**i), new.as_deref());
                    add_units(&mut units, &table, &u);
                }
                let hash = pk.0.clone();
                t.write(pk, new, change, &mut records);
                metrics.add(t, &hash);
            }
        }
        let ticket = engine.submit(records);
        drop(g);
        let mut out = json!({"UnprocessedItems": {}});
        if let Some(c) = batch_consumed(self.capacity, &units) {
            out["ConsumedCapacity"] = c;
        }
        if let Some(m) = metrics.into_json() {
            out["ItemCollectionMetrics"] = m;
        }
        Ok((out, ticket))
    }
}
