//! `UpdateTimeToLive`: turn a table's TTL on (naming the attribute) or off.

use serde_json::{Value, json};

use super::super::admin::not_found_table;
use super::super::req::{req_str, table_name, vmsg};
use super::super::{DdbError, TableEngine};
use crate::journal::Ticket;

pub(super) struct UpdateTimeToLive<'a> {
    table: &'a str,
    enabled: bool,
    attr: &'a str,
}

impl<'a> UpdateTimeToLive<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        let table = table_name(req)?;
        let spec = req.get("TimeToLiveSpecification").filter(|v| !v.is_null()).ok_or_else(|| {
            vmsg(vec![
                "Value null at 'timeToLiveSpecification' failed to satisfy constraint: Member must not be null".into(),
            ])
        })?;
        let enabled = spec
            .get("Enabled")
            .and_then(crate::table::req::as_boolean)
            .ok_or_else(|| vmsg(vec!["Value null at 'timeToLiveSpecification.enabled' failed to satisfy constraint: Member must not be null".into()]))?;
        let attr = req_str(spec, "AttributeName")?;
        if attr.is_empty() || attr.len() > 255 {
            return Err(vmsg(vec![format!(
                "Value '{attr}' at 'timeToLiveSpecification.attributeName' failed to satisfy constraint: Member must have length greater than or equal to 1"
            )]));
        }
        Ok(UpdateTimeToLive {
            table,
            enabled,
            attr,
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        let (name, enabled, attr) = (self.table, self.enabled, self.attr);
        engine.journal.check()?;
        let mut g = engine.state.write();
        let t = g
            .by_name
            .get_mut(name)
            .ok_or_else(|| not_found_table(name))?;
        match (&t.meta.ttl, enabled) {
            (Some(_), true) => return Err(DdbError::validation("TimeToLive is already enabled")),
            (None, false) => return Err(DdbError::validation("TimeToLive is already disabled")),
            (Some(a), false) if a != attr => {
                return Err(DdbError::validation(format!(
                    "TimeToLive is active on a different AttributeName: current AttributeName is {a}"
                )));
            }
            _ => {}
        }
        t.meta.ttl = enabled.then(|| attr.to_string());
        t.rebuild_derived();
        let ticket = engine.submit(vec![TableEngine::table_record(&t.meta)]);
        Ok((
            json!({"TimeToLiveSpecification": {"Enabled": enabled, "AttributeName": attr}}),
            ticket,
        ))
    }
}
