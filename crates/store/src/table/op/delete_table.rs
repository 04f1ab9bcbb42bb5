//! `DeleteTable`: delete a table (DELETING for the engine's status delay, then gone); its
//! stream stays readable, disabled, until its records age out.

use serde_json::{Value, json};

use super::super::admin::{any_table, in_use};
use super::super::engine::Phase;
use super::super::req::table_name;
use super::super::{DdbError, TableEngine};
use crate::journal::{Record, Ticket};
use crate::table_record::TableRecord;

pub(super) struct DeleteTable<'a> {
    table: &'a str,
}

impl<'a> DeleteTable<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        Ok(DeleteTable {
            table: table_name(req)?,
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        let name = self.table;
        engine.journal.check()?;
        let mut g = engine.state.write();
        let t = any_table(&g, name)?;
        in_use(t)?;
        if t.meta.deletion_protection {
            return Err(DdbError::validation(
                "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first.",
            ));
        }
        let until = engine.transition_end();
        let mut desc = t.describe(engine.clock.now().as_millis());
        desc["TableStatus"] = json!("DELETING");
        // DeleteTable describes less than DescribeTable: no key schema, attribute
        // definitions, creation time or indexes (as DynamoDB answers it).
        if let Some(o) = desc.as_object_mut() {
            for member in [
                "GlobalSecondaryIndexes",
                "LocalSecondaryIndexes",
                "KeySchema",
                "AttributeDefinitions",
                "CreationDateTime",
            ] {
                o.remove(member);
            }
        }
        let mut records = vec![Record::Table(TableRecord::DeleteTable {
            name: name.to_string(),
        })];
        if let Some(t) = g.by_name.get_mut(name)
            && t.meta.pitr.is_some()
        {
            records.push(t.history.forget(name));
        }
        // With recovery on, DynamoDB keeps the table as it was in a SYSTEM backup.
        engine.deleted_table_backup(&mut g, name, &mut records)?;
        // The table's stream outlives it, disabled, until its records age out.
        let now = engine.clock.now().as_millis();
        if let Some(mut s) = g.by_name.get_mut(name).and_then(|t| t.stream.take()) {
            if s.enabled() {
                records.push(s.disable(now));
            }
            g.old_streams.insert(s.meta.arn.clone(), s);
        }
        match until {
            Some(until) => {
                if let Some(t) = g.by_name.get_mut(name) {
                    t.phase = Phase::Deleting;
                    t.phase_until = until;
                }
                engine.schedule_transition(until);
            }
            None => {
                g.by_name.remove(name);
            }
        }
        let ticket = engine.submit(records);
        Ok((json!({ "TableDescription": desc }), ticket))
    }
}
